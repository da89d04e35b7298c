//! The janitor's statements: each deletes at most `n` rows that can no longer be used, found
//! through an index (migration 0005), as `DELETE … WHERE key IN (SELECT key … LIMIT n)`, which
//! PostgreSQL, SQLite and CockroachDB all accept. One statement is one short transaction, so
//! live traffic is never blocked for long. Two janitors may run the same statement at once: a
//! row is deleted once, and the other janitor's statement skips it (PostgreSQL re-checks a row
//! it waited for, SQLite serialises writers).
use super::{Store, StoreError};
use crate::domain::token::TokenKind;
use sqlx::Row;

/// Which token rows count as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCutoff {
    /// Rows whose stored expiry is before `expired_before` and that were requested before
    /// `requested_before` (`--keep-if-younger`).
    Expiry {
        expired_before: i64,
        requested_before: i64,
    },
    /// Rows requested before this time, whatever their stored expiry (`--access-lifespan`,
    /// `--refresh-lifespan`: Hydra's definition).
    Requested(i64),
}

/// Where a scan of the flow table stands: the last (requested_at, login_challenge) seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowCursor {
    pub requested_at: i64,
    pub login_challenge: String,
}

/// One page of the flow scan: how many rows it deleted, and where the next page starts
/// (`None` once the scan reached the end of the eligible range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPage {
    pub deleted: u64,
    pub next: Option<FlowCursor>,
}

/// The newest migration the janitor needs.
pub const JANITOR_SCHEMA: i64 = 5;

/// True for errors that a retry of the same statement can clear: serialization failures and
/// deadlocks (PostgreSQL, CockroachDB's transaction restarts) and a busy SQLite file.
pub fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => matches!(
            db.code().as_deref(),
            Some("40001") | Some("40P01") | Some("5") | Some("6") | Some("517")
        ),
        StoreError::Database(sqlx::Error::PoolTimedOut) => true,
        _ => false,
    }
}

impl Store {
    /// Whether migration `version` has been applied (false when no migration ever ran).
    pub async fn has_migration(&self, version: i64) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .fetch_one(self.pool())
            .await;
        match row {
            Ok(r) => Ok(r.try_get::<i64, _>("n")? > 0),
            Err(sqlx::Error::Database(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes at most `n` expired rows of one token kind (codes also carry the grant's OIDC
    /// and PKCE session, so they go with them).
    pub async fn janitor_tokens(
        &self,
        kind: TokenKind,
        cutoff: TokenCutoff,
        n: i64,
    ) -> Result<u64, StoreError> {
        let done = match cutoff {
            TokenCutoff::Expiry {
                expired_before,
                requested_before,
            } => sqlx::query(
                "DELETE FROM portcullis_token WHERE signature IN (SELECT signature FROM portcullis_token WHERE kind = $1 AND expires_at < $2 AND requested_at < $3 ORDER BY kind, expires_at LIMIT $4)",
            )
            .bind(kind.as_str())
            .bind(expired_before)
            .bind(requested_before)
            .bind(n),
            TokenCutoff::Requested(before) => sqlx::query(
                "DELETE FROM portcullis_token WHERE signature IN (SELECT signature FROM portcullis_token WHERE kind = $1 AND requested_at < $2 ORDER BY kind, requested_at LIMIT $3)",
            )
            .bind(kind.as_str())
            .bind(before)
            .bind(n),
        }
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes at most `n` client-assertion jtis that expired before `before`.
    pub async fn janitor_jtis(&self, before: i64, n: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM portcullis_jti WHERE signature IN (SELECT signature FROM portcullis_jti WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
        )
        .bind(before)
        .bind(n)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes at most `n` logout requests created before `before`, whatever their state: an
    /// unfinished one can no longer be finished usefully, a finished one is never read again.
    pub async fn janitor_logouts(&self, before: i64, n: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM portcullis_logout_request WHERE challenge IN (SELECT challenge FROM portcullis_logout_request WHERE requested_at < $1 ORDER BY requested_at LIMIT $2)",
        )
        .bind(before)
        .bind(n)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes at most `n` remembered login sessions that expired before `expired_before`
    /// (they no longer skip login) and were authenticated before `authenticated_before`.
    pub async fn janitor_login_sessions(
        &self,
        expired_before: i64,
        authenticated_before: i64,
        n: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM portcullis_login_session WHERE id IN (SELECT id FROM portcullis_login_session WHERE expires_at < $1 AND authenticated_at < $2 ORDER BY expires_at LIMIT $3)",
        )
        .bind(expired_before)
        .bind(authenticated_before)
        .bind(n)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Scans the next `n` flows requested before `before` (in (requested_at, login_challenge)
    /// order, after `after`) and deletes those that nothing needs any more:
    /// - no remembered consent that is still valid at `now` (a remembered consent lets later
    ///   flows skip the consent app), and
    /// - no token row of the grant left (codes, access and refresh tokens carry the consent
    ///   challenge as their `request_id`; a refresh locks the flow row, so a grant with tokens
    ///   must keep its flow).
    ///
    /// That covers flows abandoned at any step (never answered, answered but the browser never
    /// came back, rejected) and completed ones whose tokens are all gone. The conditions are
    /// checked again by the DELETE itself, so a concurrent change is never overridden. Flows
    /// that stay are skipped by the cursor, so a page costs at most `n` rows whatever the
    /// table holds.
    pub async fn janitor_flows(
        &self,
        before: i64,
        now: i64,
        after: &FlowCursor,
        n: i64,
    ) -> Result<FlowPage, StoreError> {
        let rows = sqlx::query(
            "SELECT login_challenge, requested_at FROM portcullis_flow WHERE requested_at < $1 AND (requested_at > $2 OR (requested_at = $2 AND login_challenge > $3)) ORDER BY requested_at, login_challenge LIMIT $4",
        )
        .bind(before)
        .bind(after.requested_at)
        .bind(&after.login_challenge)
        .bind(n)
        .fetch_all(self.pool())
        .await?;
        let mut keys = Vec::with_capacity(rows.len());
        let mut next = None;
        for r in &rows {
            let key: String = r.try_get("login_challenge")?;
            next = Some(FlowCursor {
                requested_at: r.try_get("requested_at")?,
                login_challenge: key.clone(),
            });
            keys.push(key);
        }
        let mut deleted = 0;
        if !keys.is_empty() {
            let list = (0..keys.len())
                .map(|i| format!("${}", i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "DELETE FROM portcullis_flow WHERE login_challenge IN ({list}) AND requested_at < $1 \
                 AND (consent_remember = 0 OR (consent_expires_at > 0 AND consent_expires_at < $2)) \
                 AND (consent_challenge IS NULL OR NOT EXISTS (SELECT 1 FROM portcullis_token t WHERE t.request_id = portcullis_flow.consent_challenge))"
            );
            let mut q = sqlx::query(&sql).bind(before).bind(now);
            for k in &keys {
                q = q.bind(k);
            }
            deleted = q.execute(self.pool()).await?.rows_affected();
        }
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= n;
        Ok(FlowPage {
            deleted,
            next: if full { next } else { None },
        })
    }
}
