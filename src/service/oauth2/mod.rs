//! The OAuth 2.0 / OpenID Connect use cases: the authorization endpoint and its login/consent
//! state machine, the admin flow API, the token endpoint, introspection, revocation, userinfo.
pub mod assertion;
pub mod authorize;
mod batch;
pub mod cache;
pub mod client_auth;
pub mod consent;
pub mod flows;
pub mod introspect;
pub mod logout;
pub mod reader;
pub mod request_object;
pub mod sessions;
pub mod settings;
pub mod storage;
pub mod token;
pub mod types;
pub mod writer;

pub use client_auth::ClientCredentials;
pub use settings::Settings;

use crate::crypto::aead::Aead;
use crate::crypto::token::TokenHmac;
use crate::domain::client::Client;
use crate::oauth2::OAuthError;
use crate::service::clients::Clients;
use crate::service::jwks::Jwks;
use crate::service::secrets::SecretVerifier;
use crate::service::Clock;
use crate::store::{Store, StoreError};
use dashmap::DashMap;
use std::sync::Arc;

#[derive(Debug)]
pub struct OAuth2 {
    settings: Settings,
    store: Store,
    clients: Arc<Clients>,
    jwks: Arc<Jwks>,
    clock: Arc<dyn Clock>,
    hmac: TokenHmac,
    aead: Arc<Aead>,
    /// Bounded, single-flight, remembering secret verification (shared with `Clients`).
    secrets: Arc<SecretVerifier>,
    pub(crate) cache: cache::TokenCache,
    /// Outbound HTTP for back-channel logout and client `jwks_uri`s (5 s timeout, as Hydra).
    http: reqwest::Client,
    /// Group inserts of new tokens.
    writer: writer::TokenWriter,
    /// Coalesced lookups of presented tokens.
    reader: reader::TokenReader,
    /// Bounded fetches of client `jwks_uri`s and `request_uri`s.
    fetcher: crate::service::fetch::Fetcher,
    /// Key sets fetched from client `jwks_uri`s, with the (injected) clock's time of the fetch.
    remote_keys: DashMap<String, (i64, jsonwebtoken::jwk::JwkSet)>,
    /// Tokens issued, authorization outcomes, introspections, back-channel logouts.
    pub(crate) metrics: crate::telemetry::OAuthMetrics,
}

impl OAuth2 {
    /// Only app.rs calls this, with each dependency built once.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Settings,
        store: Store,
        clients: Arc<Clients>,
        jwks: Arc<Jwks>,
        clock: Arc<dyn Clock>,
        system_secrets: &[&[u8]],
        aead: Arc<Aead>,
        metrics: crate::telemetry::OAuthMetrics,
    ) -> OAuth2 {
        let settings_ttl = settings.introspection_cache_ttl;
        let writer = writer::TokenWriter::start(store.clone());
        let secrets = clients.secrets.clone();
        let reader = reader::TokenReader::start(store.clone());
        OAuth2 {
            settings,
            store,
            clients,
            jwks,
            clock,
            hmac: TokenHmac::new(system_secrets),
            aead,
            secrets,
            cache: cache::TokenCache::new(settings_ttl),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            fetcher: crate::service::fetch::Fetcher::default(),
            remote_keys: DashMap::new(),
            writer,
            reader,
            metrics,
        }
    }

    /// The injected clock (tests move time instead of sleeping).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// The `sub` a client sees: a forced identifier from the login app, else the pairwise
    /// identifier for pairwise clients, else the subject itself.
    pub(crate) fn subject_for(
        &self,
        client: &Client,
        subject: &str,
        forced: &str,
    ) -> Result<String, OAuthError> {
        if !forced.is_empty() {
            return Ok(forced.to_string());
        }
        match &self.settings.tokens.pairwise {
            Some(salt) if client.is_pairwise() => {
                crate::oauth2::subject::pairwise(subject, client, salt)
            }
            _ => Ok(subject.to_string()),
        }
    }

    /// Deletes a client; the store cascades to its tokens and flows, and this process forgets
    /// the cached lookups of those tokens.
    pub async fn delete_client(
        &self,
        id: &str,
    ) -> Result<(), crate::service::clients::ClientsError> {
        self.clients.delete(id).await?;
        self.cache.clear();
        Ok(())
    }

    /// Claims of an ID token this server issued (signature checked, expiry not: OIDC allows
    /// expired hints); a bad token is `invalid_request` with `hint`.
    pub(crate) async fn id_token_hint_claims(
        &self,
        token: &str,
        hint: &str,
    ) -> Result<serde_json::Value, OAuthError> {
        let keys = self.jwks.id_token_public_keys().await.map_err(internal)?;
        crate::crypto::jws::verify_ignoring_expiry(token, &keys).map_err(|e| {
            OAuthError::invalid_request()
                .hint(hint)
                .debug(e.to_string())
        })
    }
}

/// A `server_error` that keeps its cause; the HTTP edge logs it once, with the request id.
pub(crate) fn internal(e: impl std::error::Error + Send + Sync + 'static) -> OAuthError {
    OAuthError::server_error().caused_by(e)
}

/// Internal failures that have no error value of their own.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("no system secret to sign opaque tokens with")]
    NoSystemSecret,
    #[error("openid was granted, but the session holds no ID-token claims")]
    NoIdTokenClaims,
}

impl From<batch::BatchError> for OAuthError {
    /// As for `StoreError`: a pool timeout of a coalesced read or group write is overload.
    fn from(e: batch::BatchError) -> Self {
        storage_failure(e.is_pool_timeout(), e)
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        storage_failure(e.is_pool_timeout(), e)
    }
}

/// No free database connection within database.acquire_timeout is overload, not a fault:
/// 503 temporarily_unavailable with Retry-After, so clients back off. Anything else is a 500.
fn storage_failure(
    pool_timeout: bool,
    e: impl std::error::Error + Send + Sync + 'static,
) -> OAuthError {
    if pool_timeout {
        return OAuthError::temporarily_unavailable()
            .hint("The database is busy; retry shortly.")
            .caused_by(e);
    }
    internal(e)
}

/// The client's allowed scopes.
pub fn client_scopes(c: &Client) -> Vec<String> {
    crate::oauth2::split_spaces(&c.scope)
}

/// 32 lowercase hex characters (Hydra's challenges, verifiers and CSRF values).
pub fn new_id() -> String {
    crate::crypto::uuid_v4().simple().to_string()
}
