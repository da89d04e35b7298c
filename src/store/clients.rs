//! OAuth 2.0 client rows: id, secret hash, the model as JSON, timestamps (unix seconds). Every
//! write bumps the `clients` change counter in its transaction, so other replicas drop their
//! cached clients and secret hashes (service/changes.rs).
use super::changes::{bump, CLIENTS};
use super::{map_err, Store, StoreError};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct StoredClient {
    pub id: String,
    pub secret_hash: String,
    pub data: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(r: sqlx::any::AnyRow) -> Result<StoredClient, StoreError> {
    Ok(StoredClient {
        id: r.try_get("id")?,
        secret_hash: r.try_get("secret_hash")?,
        data: r.try_get("data")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_client(&self, c: &StoredClient) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        bump(&mut tx, CLIENTS).await?;
        sqlx::query("INSERT INTO portcullis_client (id, secret_hash, data, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&c.id)
            .bind(&c.secret_hash)
            .bind(&c.data)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_client(&self, id: &str) -> Result<StoredClient, StoreError> {
        let row = sqlx::query("SELECT id, secret_hash, data, created_at, updated_at FROM portcullis_client WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        from_row(row)
    }

    /// Replaces the row; `created_at` is kept.
    pub async fn update_client(&self, c: &StoredClient) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        bump(&mut tx, CLIENTS).await?;
        let r = sqlx::query("UPDATE portcullis_client SET secret_hash = $1, data = $2, updated_at = $3 WHERE id = $4")
            .bind(&c.secret_hash)
            .bind(&c.data)
            .bind(c.updated_at)
            .bind(&c.id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the client with its tokens and login/consent flows, as Hydra's `ON DELETE
    /// CASCADE` foreign keys do, in one transaction.
    pub async fn delete_client(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        bump(&mut tx, CLIENTS).await?;
        let r = sqlx::query("DELETE FROM portcullis_client WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        for sql in [
            "DELETE FROM portcullis_token WHERE client_id = $1",
            "DELETE FROM portcullis_flow WHERE client_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A page ordered by id, and the total count.
    pub async fn list_clients(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<StoredClient>, i64), StoreError> {
        let rows = sqlx::query("SELECT id, secret_hash, data, created_at, updated_at FROM portcullis_client ORDER BY id LIMIT $1 OFFSET $2")
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM portcullis_client")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let list = rows
            .into_iter()
            .map(from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((list, total))
    }
}
