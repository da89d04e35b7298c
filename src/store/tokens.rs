//! Codes, access and refresh tokens, keyed by their HMAC signature. Redemption and rotation
//! are conditional updates inside a transaction: of two racing requests exactly one wins.
use super::{map_err, Store, StoreError};
use crate::domain::token::TokenKind;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub signature: String,
    pub kind: TokenKind,
    pub request_id: String,
    pub client_id: String,
    pub active: bool,
    pub requested_at: i64,
    pub expires_at: i64,
    /// Session JSON, AES-GCM sealed when `oauth2.session.encrypt_at_rest`.
    pub data: String,
}

/// The outcome of `Store::exchange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    Exchanged,
    /// The code or refresh token was already inactive (reuse, or a lost race).
    AlreadySpent,
    /// The consent behind the grant was revoked meanwhile.
    GrantRevoked,
}

const INSERT: &str = "INSERT INTO portcullis_token (signature, kind, request_id, client_id, active, requested_at, expires_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

async fn insert<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
    t: &TokenRow,
) -> Result<(), StoreError> {
    sqlx::query(INSERT)
        .bind(&t.signature)
        .bind(t.kind.as_str())
        .bind(&t.request_id)
        .bind(&t.client_id)
        .bind(i64::from(t.active))
        .bind(t.requested_at)
        .bind(t.expires_at)
        .bind(&t.data)
        .execute(ex)
        .await
        .map_err(map_err)?;
    Ok(())
}

impl Store {
    /// Inserts several rows with one multi-row statement (one round trip, one commit).
    pub async fn insert_tokens(&self, rows: &[TokenRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut sql = String::from("INSERT INTO portcullis_token (signature, kind, request_id, client_id, active, requested_at, expires_at, data) VALUES ");
        for i in 0..rows.len() {
            let b = i * 8;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8
            ));
        }
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
        q.execute(self.pool()).await.map_err(map_err)?;
        Ok(())
    }

    #[cfg(any(test, feature = "test-support"))]
    pub async fn get_token(
        &self,
        signature: &str,
        kind: TokenKind,
    ) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query("SELECT signature, request_id, client_id, active, requested_at, expires_at, data FROM portcullis_token WHERE signature = $1 AND kind = $2")
            .bind(signature)
            .bind(kind.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(TokenRow {
                signature: r.try_get("signature")?,
                kind,
                request_id: r.try_get("request_id")?,
                client_id: r.try_get("client_id")?,
                active: r.try_get::<i64, _>("active")? == 1,
                requested_at: r.try_get("requested_at")?,
                expires_at: r.try_get("expires_at")?,
                data: r.try_get("data")?,
            })
        })
        .transpose()
    }

    /// The rows of several signatures in one statement (coalesced lookups, see
    /// service/oauth2/reader.rs); each row with its kind. Duplicates must be removed first.
    /// Without `with_data` the sealed session is not read (`data` is left empty): the caller
    /// already holds the decoded session, which never changes for a signature.
    pub async fn get_tokens(
        &self,
        signatures: &[&str],
        with_data: bool,
    ) -> Result<Vec<TokenRow>, StoreError> {
        if signatures.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(if with_data {
            "SELECT signature, kind, request_id, client_id, active, requested_at, expires_at, data FROM portcullis_token WHERE signature IN ("
        } else {
            "SELECT signature, kind, request_id, client_id, active, requested_at, expires_at FROM portcullis_token WHERE signature IN ("
        });
        for i in 0..signatures.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", i + 1));
        }
        sql.push(')');
        let mut q = sqlx::query(&sql);
        for s in signatures {
            q = q.bind(*s);
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let kind = match r.try_get::<String, _>("kind")?.as_str() {
                "code" => TokenKind::Code,
                "access" => TokenKind::Access,
                "refresh" => TokenKind::Refresh,
                _ => continue,
            };
            out.push(TokenRow {
                signature: r.try_get("signature")?,
                kind,
                request_id: r.try_get("request_id")?,
                client_id: r.try_get("client_id")?,
                active: r.try_get::<i64, _>("active")? == 1,
                requested_at: r.try_get("requested_at")?,
                expires_at: r.try_get("expires_at")?,
                data: if with_data {
                    r.try_get("data")?
                } else {
                    String::new()
                },
            });
        }
        Ok(out)
    }

    /// Spends the active token `spent` (a code or refresh token) and, in the same transaction,
    /// deletes the access tokens of `revoke_access_of` and inserts `new`. Nothing is written
    /// unless it returns `Exchanged`.
    ///
    /// `grant` is the consent challenge the token was issued under: its flow row is locked
    /// first (a no-op UPDATE, portable to every backend), so a concurrent consent revocation,
    /// which deletes that row before the tokens, either waits for this commit and then deletes
    /// the new tokens too, or wins and leaves nothing to exchange (Hydra's foreign keys from
    /// every token table to the flow give the same guarantee).
    pub async fn exchange(
        &self,
        spent: (&str, TokenKind),
        grant: &str,
        revoke_access_of: Option<&str>,
        new: &[TokenRow],
    ) -> Result<Exchange, StoreError> {
        let mut tx = self.pool().begin().await?;
        let flow =
            sqlx::query("UPDATE portcullis_flow SET state = state WHERE consent_challenge = $1")
                .bind(grant)
                .execute(&mut *tx)
                .await?;
        if flow.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Exchange::GrantRevoked);
        }
        let done = sqlx::query("UPDATE portcullis_token SET active = 0 WHERE signature = $1 AND kind = $2 AND active = 1")
            .bind(spent.0)
            .bind(spent.1.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Exchange::AlreadySpent);
        }
        if let Some(request_id) = revoke_access_of {
            sqlx::query("DELETE FROM portcullis_token WHERE request_id = $1 AND kind = 'access'")
                .bind(request_id)
                .execute(&mut *tx)
                .await?;
        }
        for t in new {
            insert(&mut *tx, t).await?;
        }
        tx.commit().await?;
        Ok(Exchange::Exchanged)
    }

    /// Revokes a whole grant: every access and refresh token sharing `request_id`.
    pub async fn revoke_request(&self, request_id: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM portcullis_token WHERE request_id = $1 AND kind IN ('access', 'refresh')",
        )
        .bind(request_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// `DELETE /oauth2/tokens?client_id=`: the client's access tokens (Hydra deletes access only).
    pub async fn delete_access_tokens_of_client(&self, client_id: &str) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM portcullis_token WHERE client_id = $1 AND kind = 'access'")
                .bind(client_id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }

    /// `POST /oauth2/flush`: access tokens requested before `access_before`, and codes and
    /// refresh tokens that expired before `expired_before` (spent ones are kept until then so
    /// reuse is still detected).
    pub async fn flush_tokens(
        &self,
        access_before: i64,
        expired_before: i64,
    ) -> Result<u64, StoreError> {
        let a =
            sqlx::query("DELETE FROM portcullis_token WHERE kind = 'access' AND requested_at < $1")
                .bind(access_before)
                .execute(self.pool())
                .await?;
        let b = sqlx::query(
            "DELETE FROM portcullis_token WHERE kind IN ('code', 'refresh') AND expires_at < $1",
        )
        .bind(expired_before)
        .execute(self.pool())
        .await?;
        Ok(a.rows_affected() + b.rows_affected())
    }

    /// Number of tokens of a kind (tests and tooling).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn count_tokens(&self, kind: TokenKind) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM portcullis_token WHERE kind = $1")
            .bind(kind.as_str())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Stored session data of every token row (tests check it is sealed at rest).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn raw_token_data(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT data FROM portcullis_token")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get("data").map_err(StoreError::from))
            .collect()
    }
}

impl Store {
    /// Records a client-assertion `jti` until `expires_at`; false when it was seen before.
    /// Expired entries are purged first (persister_oauth2.go does the same on insert).
    pub async fn spend_jti(
        &self,
        signature: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM portcullis_jti WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        match sqlx::query("INSERT INTO portcullis_jti (signature, expires_at) VALUES ($1, $2)")
            .bind(signature)
            .bind(expires_at)
            .execute(self.pool())
            .await
            .map_err(map_err)
        {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
