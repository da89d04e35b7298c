//! JSON Web Key rows; `keydata` is always AEAD ciphertext (encrypted by the service). Every
//! write bumps the `keys` change counter in its transaction, so other replicas drop their
//! cached signers and JWKS documents (service/changes.rs).
use super::changes::{bump, KEYS};
use super::{map_err, Store, StoreError};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct StoredKey {
    pub set_id: String,
    pub kid: String,
    pub keydata: String,
    pub created_at: i64,
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    keys: &[StoredKey],
) -> Result<(), StoreError> {
    for k in keys {
        sqlx::query(
            "INSERT INTO portcullis_jwk (set_id, kid, keydata, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&k.set_id)
        .bind(&k.kid)
        .bind(&k.keydata)
        .bind(k.created_at)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

fn from_row(r: sqlx::any::AnyRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        set_id: r.try_get("set_id")?,
        kid: r.try_get("kid")?,
        keydata: r.try_get("keydata")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Inserts keys atomically; a duplicate (set, kid) is a conflict and inserts nothing.
    pub async fn add_keys(&self, keys: &[StoredKey]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        bump(&mut tx, KEYS).await?;
        insert(&mut tx, keys).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Inserts `keys` into `set` only if the set is empty; false (nothing written) when another
    /// writer got there first. The counter bump comes first: it locks the `keys` row, so two
    /// replicas generating first-start keys at once take turns, and the second sees the first's
    /// keys (PostgreSQL READ COMMITTED reads each statement afresh; SQLite has one writer;
    /// CockroachDB's serializable isolation makes the loser retry or fail, never both win).
    pub async fn add_keys_if_set_empty(
        &self,
        set: &str,
        keys: &[StoredKey],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        bump(&mut tx, KEYS).await?;
        let existing = sqlx::query("SELECT kid FROM portcullis_jwk WHERE set_id = $1 LIMIT 1")
            .bind(set)
            .fetch_optional(&mut *tx)
            .await?;
        if existing.is_some() {
            tx.rollback().await?;
            return Ok(false);
        }
        insert(&mut tx, keys).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces a whole set in one transaction.
    pub async fn replace_set(&self, set: &str, keys: &[StoredKey]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        bump(&mut tx, KEYS).await?;
        sqlx::query("DELETE FROM portcullis_jwk WHERE set_id = $1")
            .bind(set)
            .execute(&mut *tx)
            .await?;
        insert(&mut tx, keys).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces one key (delete + insert) in one transaction.
    pub async fn replace_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        bump(&mut tx, KEYS).await?;
        sqlx::query("DELETE FROM portcullis_jwk WHERE set_id = $1 AND kid = $2")
            .bind(&key.set_id)
            .bind(&key.kid)
            .execute(&mut *tx)
            .await?;
        insert(&mut tx, std::slice::from_ref(key)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One key of a set, by kid.
    pub async fn get_key(&self, set: &str, kid: &str) -> Result<StoredKey, StoreError> {
        let row = sqlx::query("SELECT set_id, kid, keydata, created_at FROM portcullis_jwk WHERE set_id = $1 AND kid = $2")
            .bind(set)
            .bind(kid)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        from_row(row)
    }

    /// Keys of a set, newest first.
    pub async fn get_set(&self, set: &str) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query("SELECT set_id, kid, keydata, created_at FROM portcullis_jwk WHERE set_id = $1 ORDER BY created_at DESC, pk DESC")
            .bind(set)
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    pub async fn delete_set(&self, set: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        bump(&mut tx, KEYS).await?;
        sqlx::query("DELETE FROM portcullis_jwk WHERE set_id = $1")
            .bind(set)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_key(&self, set: &str, kid: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        bump(&mut tx, KEYS).await?;
        sqlx::query("DELETE FROM portcullis_jwk WHERE set_id = $1 AND kid = $2")
            .bind(set)
            .bind(kid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
