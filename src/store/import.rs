//! Idempotent writes for the Hydra importer: every insert is `ON CONFLICT DO NOTHING` (PostgreSQL,
//! SQLite and CockroachDB all accept it), so a second run, or a run resumed after an
//! interruption, leaves rows that are already there untouched and reports how many were new.
use super::{map_err, Store, StoreError, StoredClient, TokenRow};
use crate::domain::flow::LoginSession;

impl Store {
    /// Inserts a client unless one with its id exists; true when it was inserted.
    pub async fn import_client(&self, c: &StoredClient) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO portcullis_client (id, secret_hash, data, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING")
            .bind(&c.id)
            .bind(&c.secret_hash)
            .bind(&c.data)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts a login session unless its id exists; true when it was inserted.
    pub async fn import_login_session(&self, s: &LoginSession) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO portcullis_login_session (id, subject, authenticated_at, remember, expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING")
            .bind(&s.id)
            .bind(&s.subject)
            .bind(s.authenticated_at)
            .bind(i64::from(s.remember))
            .bind(s.expires_at)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts token rows in one statement, skipping signatures already stored; returns how
    /// many were new. One batch is one transaction, so an interrupted run loses no half batch.
    pub async fn import_tokens(&self, rows: &[TokenRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut sql = String::from("INSERT INTO portcullis_token (signature, kind, request_id, client_id, active, requested_at, expires_at, data) VALUES ");
        for i in 0..rows.len() {
            let b = i * 8;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for j in 1..=8 {
                if j > 1 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", b + j));
            }
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT (signature) DO NOTHING");
        let mut q = sqlx::query(&sql);
        for t in rows {
            q = q
                .bind(&t.signature)
                .bind(t.kind.as_str())
                .bind(&t.request_id)
                .bind(&t.client_id)
                .bind(i64::from(t.active))
                .bind(t.requested_at)
                .bind(t.expires_at)
                .bind(&t.data);
        }
        let done = q.execute(self.pool()).await.map_err(map_err)?;
        Ok(done.rows_affected())
    }

    /// Records a spent client-assertion `jti` digest unless present; true when it was new.
    pub async fn import_jti(&self, signature: &str, expires_at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO portcullis_jti (signature, expires_at) VALUES ($1, $2) ON CONFLICT (signature) DO NOTHING")
            .bind(signature)
            .bind(expires_at)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}
