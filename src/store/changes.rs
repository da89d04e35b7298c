//! Change counters (`portcullis_changes`): one row per kind of data that replicas cache. A write
//! bumps the counter inside its own transaction, so a replica that reads the counter after the
//! commit knows its cache of that kind is stale. Plain UPDATE/SELECT: no triggers, no NOTIFY,
//! so the same SQL runs on PostgreSQL, SQLite and CockroachDB.
use super::{Store, StoreError};
use sqlx::Row;

/// Key sets (`portcullis_jwk`).
pub const KEYS: &str = "keys";
/// OAuth 2.0 clients (`portcullis_client`).
pub const CLIENTS: &str = "clients";

/// Bumps the counter of `kind` inside `tx`. On PostgreSQL the UPDATE also takes the row lock,
/// which serialises concurrent writers of the same kind until they commit.
pub(crate) async fn bump(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE portcullis_changes SET version = version + 1 WHERE kind = $1")
        .bind(kind)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        // The migration seeds every kind; recreate a row someone removed.
        sqlx::query("INSERT INTO portcullis_changes (kind, version) VALUES ($1, 1)")
            .bind(kind)
            .execute(&mut **tx)
            .await
            .map_err(super::map_err)?;
    }
    Ok(())
}

impl Store {
    /// Every change counter: one cheap read of a table of a few rows.
    pub async fn change_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT kind, version FROM portcullis_changes")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("version")?)))
            .collect()
    }
}
