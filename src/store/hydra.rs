//! Read-only access to an ORY Hydra v1.9.2 PostgreSQL database (the schema its migrations leave,
//! persistence/sql/*.go), for `portcullis migrate from-hydra`. Everything is read inside one
//! `REPEATABLE READ, READ ONLY` transaction: PostgreSQL refuses any write in it, and every table
//! is seen at the same instant while Hydra keeps serving. Timestamps come back as Unix seconds
//! (Hydra writes UTC into `timestamp without time zone`). Large tables are read in pages keyed
//! by their primary key.
use super::StoreError;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::time::Duration;

/// `hydra_client`, every column.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct HydraClient {
    pub id: String,
    pub client_name: String,
    pub client_secret: String,
    pub redirect_uris: String,
    pub grant_types: String,
    pub response_types: String,
    pub scope: String,
    pub owner: String,
    pub policy_uri: String,
    pub tos_uri: String,
    pub client_uri: String,
    pub logo_uri: String,
    pub contacts: String,
    pub client_secret_expires_at: i32,
    pub sector_identifier_uri: String,
    pub jwks: String,
    pub jwks_uri: String,
    pub request_uris: String,
    pub token_endpoint_auth_method: String,
    pub request_object_signing_alg: String,
    pub userinfo_signed_response_alg: String,
    pub subject_type: String,
    pub allowed_cors_origins: String,
    pub audience: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub frontchannel_logout_uri: String,
    pub frontchannel_logout_session_required: bool,
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: String,
    pub backchannel_logout_session_required: bool,
    pub metadata: String,
    pub token_endpoint_auth_signing_alg: String,
}

/// `hydra_jwk`: `keydata` is AEAD ciphertext (jwk/aead.go).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HydraKey {
    pub sid: String,
    pub kid: String,
    pub keydata: String,
    pub created_at: i64,
    pub pk: i32,
}

/// `hydra_oauth2_authentication_session`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HydraLoginSession {
    pub id: String,
    pub subject: String,
    pub remember: bool,
    pub authenticated_at: Option<i64>,
}

/// A handled consent with its request (and login request, when Hydra still has it).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct HydraConsent {
    pub challenge: String,
    pub granted_scope: String,
    pub remember_for: i32,
    pub requested_at: i64,
    pub session_access_token: String,
    pub session_id_token: String,
    pub granted_at_audience: Option<String>,
    pub handled_at: Option<i64>,
    pub verifier: String,
    pub client_id: String,
    pub subject: String,
    pub request_url: String,
    pub requested_scope: String,
    pub csrf: String,
    pub authenticated_at: Option<i64>,
    pub oidc_context: String,
    pub forced_subject_identifier: Option<String>,
    pub login_session_id: Option<String>,
    pub login_challenge: Option<String>,
    pub requested_at_audience: Option<String>,
    pub acr: Option<String>,
    pub context: String,
    pub login_verifier: Option<String>,
    pub login_csrf: Option<String>,
    pub login_remember: Option<bool>,
    pub login_remember_for: Option<i32>,
}

/// A row of `hydra_oauth2_{code,access,refresh}` (persister_oauth2.go OAuth2RequestSQL); for
/// codes, the `form_data` of the PKCE row stored under the same signature.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct HydraTokenRow {
    pub signature: String,
    pub request_id: String,
    pub requested_at: i64,
    pub client_id: String,
    pub scope: String,
    pub granted_scope: String,
    pub requested_audience: Option<String>,
    pub granted_audience: Option<String>,
    pub form_data: String,
    pub session_data: String,
    pub subject: String,
    pub active: bool,
    pub challenge_id: Option<String>,
    pub pkce_form: Option<String>,
}

/// The three token tables the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HydraTokenTable {
    Code,
    Access,
    Refresh,
}

impl HydraTokenTable {
    fn name(self) -> &'static str {
        match self {
            HydraTokenTable::Code => "hydra_oauth2_code",
            HydraTokenTable::Access => "hydra_oauth2_access",
            HydraTokenTable::Refresh => "hydra_oauth2_refresh",
        }
    }
}

/// `hydra_oauth2_jti_blacklist`: hex SHA-256 of a spent client-assertion `jti`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HydraJti {
    pub signature: String,
    pub expires_at: i64,
}

/// One consistent, read-only view of a Hydra database.
pub struct HydraSource {
    pool: PgPool,
    tx: Option<Transaction<'static, Postgres>>,
}

impl std::fmt::Debug for HydraSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HydraSource")
    }
}

const EPOCH: &str = "CAST(EXTRACT(EPOCH FROM {}) AS BIGINT)";

fn epoch(column: &str) -> String {
    EPOCH.replace("{}", column)
}

/// Hydra's DSN forms (`postgres://`, `postgresql://`, `cockroach://`) with its pool
/// parameters removed (sqlx would refuse them).
fn normalize(dsn: &str) -> Result<String, StoreError> {
    let dsn = dsn.trim();
    let rest = ["postgres://", "postgresql://", "cockroach://", "pgx://"]
        .iter()
        .find_map(|p| dsn.strip_prefix(p))
        .ok_or_else(|| {
            StoreError::Dsn(format!(
                "{} (Hydra's database must be PostgreSQL or CockroachDB)",
                redact(dsn)
            ))
        })?;
    let url = format!("postgres://{rest}");
    Ok(super::strip_params(
        &url,
        &["max_conns", "max_idle_conns", "max_conn_lifetime"],
    ))
}

/// The DSN without its password, for messages.
pub fn redact(dsn: &str) -> String {
    match url::Url::parse(dsn) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.set_query(None);
            u.to_string()
        }
        Err(_) => dsn.split('@').next_back().unwrap_or("").to_string(),
    }
}

impl HydraSource {
    /// Connects and opens the read-only snapshot transaction.
    pub async fn open(dsn: &str) -> Result<HydraSource, StoreError> {
        let url = normalize(dsn)?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await?;
        let tx = pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let mut source = HydraSource { pool, tx: Some(tx) };
        // A database without Hydra's tables is refused before anything is written anywhere.
        source
            .count("hydra_client", "TRUE")
            .await
            .map_err(|e| StoreError::Corrupt(format!("not a Hydra v1.9 database: {e}")))?;
        Ok(source)
    }

    fn tx(&mut self) -> Result<&mut Transaction<'static, Postgres>, StoreError> {
        self.tx
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("the Hydra snapshot is closed".into()))
    }

    /// Ends the snapshot (a rollback: nothing was written) and closes the connection.
    pub async fn close(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.rollback().await;
        }
        self.pool.close().await;
    }

    /// Rows of `table` matching `filter` (a fixed SQL fragment, never user input).
    pub async fn count(&mut self, table: &str, filter: &str) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {filter}");
        let row: PgRow = sqlx::query(&sql).fetch_one(&mut **self.tx()?).await?;
        Ok(row.try_get("n")?)
    }

    pub async fn clients(
        &mut self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<HydraClient>, StoreError> {
        let sql = format!(
            "SELECT id, client_name, client_secret, redirect_uris, grant_types, response_types, scope, owner, policy_uri, tos_uri, client_uri, logo_uri, contacts, client_secret_expires_at, sector_identifier_uri, jwks, jwks_uri, request_uris, token_endpoint_auth_method, request_object_signing_alg, userinfo_signed_response_alg, subject_type, allowed_cors_origins, audience, {} AS created_at, {} AS updated_at, frontchannel_logout_uri, frontchannel_logout_session_required, post_logout_redirect_uris, backchannel_logout_uri, backchannel_logout_session_required, metadata, token_endpoint_auth_signing_alg FROM hydra_client WHERE id > $1 ORDER BY id LIMIT $2",
            epoch("created_at"),
            epoch("updated_at")
        );
        Ok(sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **self.tx()?)
            .await?)
    }

    /// Every key, oldest first (a small table).
    pub async fn keys(&mut self) -> Result<Vec<HydraKey>, StoreError> {
        let sql = format!(
            "SELECT sid, kid, keydata, {} AS created_at, pk FROM hydra_jwk ORDER BY created_at, pk",
            epoch("created_at")
        );
        Ok(sqlx::query_as(&sql).fetch_all(&mut **self.tx()?).await?)
    }

    pub async fn login_sessions(
        &mut self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<HydraLoginSession>, StoreError> {
        let sql = format!(
            "SELECT id, subject, remember, {} AS authenticated_at FROM hydra_oauth2_authentication_session WHERE id > $1 ORDER BY id LIMIT $2",
            epoch("authenticated_at")
        );
        Ok(sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **self.tx()?)
            .await?)
    }

    /// The filter Hydra applies to find a remembered consent
    /// (persister_consent.go FindGrantedAndRememberedConsentRequests).
    pub const REMEMBERED: &'static str = "h.remember = TRUE AND h.error = '{}' AND r.skip = FALSE";

    /// Remembered consents that Hydra would still find: per subject and client only the newest
    /// one counts (Hydra looks at that one alone, then checks its `remember_for`).
    pub async fn remembered_consents(
        &mut self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<HydraConsent>, StoreError> {
        let sql = format!(
            "SELECT h.challenge, h.granted_scope, h.remember_for, {} AS requested_at, h.session_access_token, h.session_id_token, h.granted_at_audience, {} AS handled_at, \
             r.verifier, r.client_id, r.subject, r.request_url, r.requested_scope, r.csrf, {} AS authenticated_at, r.oidc_context, r.forced_subject_identifier, r.login_session_id, r.login_challenge, r.requested_at_audience, r.acr, r.context, \
             l.verifier AS login_verifier, l.csrf AS login_csrf, lh.remember AS login_remember, lh.remember_for AS login_remember_for \
             FROM hydra_oauth2_consent_request_handled h \
             JOIN hydra_oauth2_consent_request r ON r.challenge = h.challenge \
             LEFT JOIN hydra_oauth2_authentication_request l ON l.challenge = r.login_challenge \
             LEFT JOIN hydra_oauth2_authentication_request_handled lh ON lh.challenge = r.login_challenge \
             WHERE {rem} AND h.challenge > $1 \
             AND NOT EXISTS (SELECT 1 FROM hydra_oauth2_consent_request_handled h2 JOIN hydra_oauth2_consent_request r2 ON r2.challenge = h2.challenge \
               WHERE r2.subject = r.subject AND r2.client_id = r.client_id AND h2.remember = TRUE AND h2.error = '{{}}' AND r2.skip = FALSE AND h2.requested_at > h.requested_at) \
             ORDER BY h.challenge LIMIT $2",
            epoch("h.requested_at"),
            epoch("h.handled_at"),
            epoch("r.authenticated_at"),
            rem = Self::REMEMBERED,
        );
        Ok(sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **self.tx()?)
            .await?)
    }

    /// Remembered consents in total, including the superseded ones.
    pub async fn count_remembered(&mut self) -> Result<i64, StoreError> {
        self.count(
            "hydra_oauth2_consent_request_handled h JOIN hydra_oauth2_consent_request r ON r.challenge = h.challenge",
            Self::REMEMBERED,
        )
        .await
    }

    pub async fn tokens(
        &mut self,
        table: HydraTokenTable,
        after: &str,
        limit: i64,
    ) -> Result<Vec<HydraTokenRow>, StoreError> {
        let (pkce_col, pkce_join) = if table == HydraTokenTable::Code {
            (
                "p.form_data",
                "LEFT JOIN hydra_oauth2_pkce p ON p.signature = t.signature",
            )
        } else {
            ("CAST(NULL AS TEXT)", "")
        };
        let sql = format!(
            "SELECT t.signature, t.request_id, {} AS requested_at, t.client_id, t.scope, t.granted_scope, t.requested_audience, t.granted_audience, t.form_data, t.session_data, t.subject, t.active, t.challenge_id, {pkce_col} AS pkce_form \
             FROM {} t {pkce_join} WHERE t.signature > $1 ORDER BY t.signature LIMIT $2",
            epoch("t.requested_at"),
            table.name(),
        );
        Ok(sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **self.tx()?)
            .await?)
    }

    pub async fn count_tokens(&mut self, table: HydraTokenTable) -> Result<i64, StoreError> {
        self.count(table.name(), "TRUE").await
    }

    pub async fn jtis(&mut self, after: &str, limit: i64) -> Result<Vec<HydraJti>, StoreError> {
        let sql = format!(
            "SELECT signature, {} AS expires_at FROM hydra_oauth2_jti_blacklist WHERE signature > $1 ORDER BY signature LIMIT $2",
            epoch("expires_at")
        );
        Ok(sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **self.tx()?)
            .await?)
    }
}
