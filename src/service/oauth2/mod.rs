//! The OAuth 2.0 / OpenID Connect use cases: the authorization endpoint and its login/consent
//! state machine, the admin flow API, the token endpoint, introspection, revocation, userinfo.
pub mod assertion;
pub mod authorize;
pub mod cache;
pub mod flows;
pub mod introspect;
pub mod logout;
pub mod reader;
pub mod request_object;
pub mod sessions;
pub mod token;
pub mod writer;

use crate::config::Config;
use crate::crypto::aead::Aead;
use crate::crypto::token::TokenHmac;
use crate::domain::client::Client;
use crate::domain::token::{TokenKind, TokenSession};
use crate::oauth2::scope::ScopeStrategy;
use crate::oauth2::OAuthError;
use crate::service::clients::Clients;
use crate::service::jwks::Jwks;
use crate::service::secrets::{SecretVerifier, Verdict};
use crate::service::Clock;
use crate::store::{Store, StoreError, TokenRow};
use dashmap::DashMap;
use std::sync::Arc;

/// Settings read once from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Issuer with a trailing `/`.
    pub issuer: String,
    /// Public base URL with a trailing `/`.
    pub public_url: String,
    pub login_url: String,
    pub consent_url: String,
    pub error_url: String,
    pub logout_url: String,
    pub post_logout_url: String,
    pub ttl_access: i64,
    pub ttl_refresh: i64,
    pub ttl_id_token: i64,
    pub ttl_code: i64,
    pub ttl_flow: i64,
    /// `ttl.authentication_session`, capped at 180 days (Hydra's GetAuthenticationSessionLifespan).
    pub ttl_auth_session: i64,
    pub scope_strategy: ScopeStrategy,
    pub pkce_enforced: bool,
    pub pkce_enforced_for_public: bool,
    pub encrypt_at_rest: bool,
    pub legacy_errors: bool,
    pub expose_debug: bool,
    pub cc_default_scope: bool,
    pub introspection_cache_ttl: std::time::Duration,
    /// `oidc.subject_identifiers`: pairwise enabled, and its salt.
    pub pairwise: Option<String>,
    /// `strategies.access_token: jwt`: access tokens are RS256 JWTs (fosite strategy_jwt.go).
    pub jwt_access_tokens: bool,
}

impl Settings {
    pub fn from_config(cfg: &Config, issuer: &str, public_url: &str) -> Settings {
        let slash = |s: &str| {
            if s.ends_with('/') {
                s.to_string()
            } else {
                format!("{s}/")
            }
        };
        let issuer = slash(issuer);
        let or_fallback = |v: &str, page: &str| {
            if v.is_empty() {
                format!("{issuer}oauth2/fallbacks/{page}")
            } else {
                v.to_string()
            }
        };
        let secs = |d: std::time::Duration| d.as_secs() as i64;
        Settings {
            public_url: slash(public_url),
            login_url: or_fallback(&cfg.urls.login, "login"),
            consent_url: or_fallback(&cfg.urls.consent, "consent"),
            error_url: or_fallback(&cfg.urls.error, "error"),
            logout_url: or_fallback(&cfg.urls.logout, "logout"),
            post_logout_url: or_fallback(&cfg.urls.post_logout_redirect, "logout/callback"),
            ttl_access: secs(cfg.ttl.access_token),
            ttl_refresh: secs(cfg.ttl.refresh_token),
            ttl_id_token: secs(cfg.ttl.id_token),
            ttl_code: secs(cfg.ttl.auth_code),
            ttl_flow: secs(cfg.ttl.login_consent_request),
            ttl_auth_session: secs(cfg.ttl.authentication_session).min(MAX_AUTH_SESSION),
            scope_strategy: ScopeStrategy::from_config(cfg.strategies.scope.as_str()),
            pkce_enforced: cfg.oauth2.pkce.enforced,
            pkce_enforced_for_public: cfg.oauth2.pkce.enforced_for_public_clients,
            encrypt_at_rest: cfg.oauth2.session.encrypt_at_rest,
            legacy_errors: cfg.oauth2.include_legacy_error_fields,
            expose_debug: cfg.oauth2.expose_internal_errors,
            cc_default_scope: cfg.oauth2.client_credentials.default_grant_allowed_scope,
            jwt_access_tokens: cfg.strategies.access_token
                == crate::config::AccessTokenStrategy::Jwt,
            pairwise: cfg
                .oidc
                .subject_identifiers
                .pairwise_enabled()
                .then(|| cfg.oidc.subject_identifiers.pairwise.salt.0.clone()),
            introspection_cache_ttl: cfg.oauth2.introspection_cache_ttl,
            issuer,
        }
    }
}

#[derive(Debug)]
pub struct OAuth2 {
    pub settings: Settings,
    pub store: Store,
    pub clients: Arc<Clients>,
    pub jwks: Arc<Jwks>,
    pub clock: Arc<dyn Clock>,
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
    /// Key sets fetched from client `jwks_uri`s.
    remote_keys: DashMap<String, (std::time::Instant, jsonwebtoken::jwk::JwkSet)>,
    /// Tokens issued, authorization outcomes, introspections, back-channel logouts.
    pub(crate) metrics: crate::telemetry::OAuthMetrics,
}

/// 180 days: the cap Hydra puts on `ttl.authentication_session` (driver/config/provider.go).
const MAX_AUTH_SESSION: i64 = 180 * 24 * 3600;

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
        match &self.settings.pairwise {
            Some(salt) if client.subject_type == "pairwise" => {
                crate::oauth2::subject::pairwise(subject, client, salt)
            }
            _ => Ok(subject.to_string()),
        }
    }

    /// Seals a session for storage (AES-GCM unless `oauth2.session.encrypt_at_rest` is off).
    fn seal(&self, s: &TokenSession) -> Result<String, OAuthError> {
        let json = serde_json::to_string(s).map_err(internal)?;
        if !self.settings.encrypt_at_rest {
            return Ok(json);
        }
        self.aead.encrypt(json.as_bytes()).map_err(internal)
    }

    /// Opens stored session data; plaintext JSON rows are read as they are (Hydra does too).
    fn open(&self, data: &str) -> Result<TokenSession, OAuthError> {
        if data.starts_with('{') {
            return serde_json::from_str(data).map_err(internal);
        }
        let plain = self.aead.decrypt(data).map_err(internal)?;
        serde_json::from_slice(&plain).map_err(internal)
    }

    /// Stores a new token (group-inserted with concurrent ones).
    async fn write_token(&self, row: TokenRow) -> Result<(), OAuthError> {
        self.writer.insert(row).await.map_err(internal)
    }

    /// The row storing a new token's signature and sealed session.
    fn token_row(
        &self,
        signature: String,
        kind: TokenKind,
        request_id: &str,
        session: &TokenSession,
    ) -> Result<TokenRow, OAuthError> {
        Ok(TokenRow {
            signature,
            kind,
            request_id: request_id.to_string(),
            client_id: session.client_id.clone(),
            active: true,
            requested_at: session.issued_at,
            expires_at: session.expires_at,
            data: self.seal(session)?,
        })
    }

    /// A new opaque token of `kind` for `session`, and the row that stores its signature.
    fn mint(
        &self,
        kind: TokenKind,
        request_id: &str,
        session: &TokenSession,
    ) -> Result<(String, TokenRow), OAuthError> {
        let (token, signature) = self
            .hmac
            .generate()
            .ok_or_else(|| internal("no system secret"))?;
        let row = self.token_row(signature, kind, request_id, session)?;
        Ok((token, row))
    }

    /// A new access token: opaque, or an RS256 JWT with the `jwt` strategy. JWT rows are keyed
    /// by the hex SHA-384 of the signature segment, as Hydra stores them.
    async fn mint_access(
        &self,
        request_id: &str,
        session: &TokenSession,
    ) -> Result<(String, TokenRow), OAuthError> {
        if !self.settings.jwt_access_tokens {
            return self.mint(TokenKind::Access, request_id, session);
        }
        let claims = serde_json::json!({
            "jti": crate::crypto::uuid_v4().to_string(),
            "sub": session.subject,
            "iss": self.settings.issuer,
            "aud": session.granted_audience,
            "iat": session.issued_at,
            "nbf": session.issued_at,
            "exp": session.expires_at,
            "scp": session.granted_scope,
            "client_id": session.client_id,
            "ext": session.ext,
        });
        let signer = self
            .jwks
            .signer(crate::domain::jwk::ACCESS_TOKEN_SET)
            .await
            .map_err(internal)?;
        let jwt = tokio::task::spawn_blocking(move || signer.sign(&claims))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let signature = jwt_signature_key(&jwt);
        let row = self.token_row(signature, TokenKind::Access, request_id, session)?;
        Ok((jwt, row))
    }

    /// The storage key of a presented token: the HMAC signature of an opaque token that
    /// verifies, or (JWT strategy, access tokens) the digest of a JWT whose RS256 signature
    /// verifies. None for forgeries, without a database trip.
    async fn storage_key(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<Option<String>, OAuthError> {
        if kind == TokenKind::Access
            && self.settings.jwt_access_tokens
            && token.split('.').count() == 3
        {
            let keys = self
                .jwks
                .public_keys(crate::domain::jwk::ACCESS_TOKEN_SET)
                .await
                .map_err(internal)?;
            return Ok(crate::crypto::jws::verify_ignoring_expiry(token, &keys)
                .ok()
                .map(|_| jwt_signature_key(token)));
        }
        Ok(self.hmac.validate(token).map(str::to_string))
    }

    /// An access token for introspection and userinfo: from the database (a coalesced read),
    /// or from the opt-in per-process cache when `oauth2.introspection_cache_ttl` is set.
    async fn lookup_access_cached(&self, token: &str) -> Result<Option<cache::Entry>, OAuthError> {
        let Some(sig) = self.storage_key(token, TokenKind::Access).await? else {
            return Ok(None);
        };
        let entry = match self.cache.get(&sig) {
            Some(e) => e,
            None => {
                let started = self.cache.stamp();
                let found = self
                    .reader
                    .get_with_session(sig, TokenKind::Access, |data| self.open(data))
                    .await
                    .map_err(|e| match e {
                        reader::ReadError::Store(e) => internal(e),
                        reader::ReadError::Open(e) => e,
                    })?;
                let Some((row, session)) = found else {
                    return Ok(None);
                };
                let entry = Arc::new((row, session));
                self.cache.put(started, entry.clone());
                entry
            }
        };
        Ok(Some(entry))
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

    /// A registered client, or `invalid_client` (storage failures stay server errors).
    pub(crate) async fn known_client(&self, id: &str) -> Result<Arc<Client>, OAuthError> {
        match self.clients.get_shared(id).await {
            Ok(c) => Ok(c),
            Err(crate::service::clients::ClientsError::NotFound) => {
                Err(OAuthError::invalid_client()
                    .hint("The requested OAuth 2.0 Client does not exist."))
            }
            Err(e) => Err(internal(e)),
        }
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

    /// Revokes every access and refresh token of a grant.
    async fn revoke_grant(&self, request_id: &str) -> Result<(), OAuthError> {
        self.store.revoke_request(request_id).await?;
        self.cache.revoke_request(request_id);
        Ok(())
    }

    /// Looks a presented token up: signature first (no database trip for forgeries), then the row.
    async fn lookup(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<Option<(TokenRow, TokenSession)>, OAuthError> {
        let Some(sig) = self.storage_key(token, kind).await? else {
            return Ok(None);
        };
        let Some(row) = self.reader.get(sig, kind).await.map_err(internal)? else {
            return Ok(None);
        };
        let session = self.open(&row.data)?;
        Ok(Some((row, session)))
    }

    /// Client authentication at the token and revocation endpoints (fosite
    /// client_authentication.go): `client_secret_basic` (id and secret form-url-decoded),
    /// `client_secret_post`, or `none` for public clients; the registered method is enforced.
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<Arc<Client>, OAuthError> {
        if let Some((kind, assertion)) = &creds.assertion {
            if kind != assertion::ASSERTION_TYPE {
                return Err(OAuthError::invalid_client()
                    .hint(format!("Unknown client_assertion_type '{kind}'.")));
            }
            let id = if creds.form_id.is_empty() {
                assertion::unverified_subject(assertion).unwrap_or_default()
            } else {
                creds.form_id.clone()
            };
            let client = self.known_client(&id).await?;
            self.verify_assertion(&client, assertion).await?;
            return Ok(client);
        }
        let (id, secret, via_basic) = match &creds.basic {
            Some((id, secret)) => (id.as_str(), Some(secret.as_str()), true),
            None => (creds.form_id.as_str(), creds.form_secret.as_deref(), false),
        };
        if id.is_empty() {
            return Err(OAuthError::invalid_client()
                .hint("Client credentials missing or malformed in both HTTP Authorization header and HTTP POST body."));
        }
        let found = self.clients.get_for_auth(id).await;
        let (client, hash) = match found {
            Ok(v) => v,
            Err(crate::service::clients::ClientsError::NotFound) => {
                // An unknown client costs what a known one costs, on the same bounded path.
                if let Some(s) = secret.filter(|s| !s.is_empty()) {
                    let origin = self
                        .secrets
                        .origin(creds.peer, creds.forwarded_for.as_deref());
                    let verdict = self.secrets.verify(id, None, s, origin).await;
                    if verdict != Verdict::Busy {
                        self.secrets.delay_failure().await;
                    }
                    overload(verdict)?;
                }
                return Err(OAuthError::invalid_client()
                    .hint("The requested OAuth 2.0 Client does not exist."));
            }
            Err(crate::service::clients::ClientsError::Busy) => {
                return Err(OAuthError::temporarily_unavailable()
                    .hint("The database is busy; retry shortly."))
            }
            Err(e) => return Err(internal(e)),
        };
        let method = client.token_endpoint_auth_method.as_str();
        if method == "private_key_jwt" {
            return Err(OAuthError::invalid_client().hint(
                "The OAuth 2.0 Client must authenticate with a client assertion (private_key_jwt).",
            ));
        }
        if method == "none" {
            return Ok(client);
        }
        let used = if via_basic {
            "client_secret_basic"
        } else {
            "client_secret_post"
        };
        if method != used {
            return Err(OAuthError::invalid_client().hint(format!(
                "The OAuth 2.0 Client supports client authentication method '{method}', but method '{used}' was requested. You must configure the OAuth 2.0 client's 'token_endpoint_auth_method' value to accept '{used}'."
            )));
        }
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            return Err(OAuthError::invalid_client().hint("The client secret is missing."));
        };
        let origin = self
            .secrets
            .origin(creds.peer, creds.forwarded_for.as_deref());
        let verdict = self
            .secrets
            .verify(&client.client_id, Some(&hash), secret, origin)
            .await;
        if matches!(verdict, Verdict::Invalid | Verdict::Throttled) {
            self.secrets.delay_failure().await;
        }
        overload(verdict)?;
        if verdict != Verdict::Valid {
            return Err(OAuthError::invalid_client()
                .hint("The provided client secret did not match the registered one."));
        }
        Ok(client)
    }
}

/// 503 when no hashing worker was free in time, 429 for a throttled client and address.
fn overload(verdict: Verdict) -> Result<(), OAuthError> {
    match verdict {
        Verdict::Busy => Err(OAuthError::temporarily_unavailable()
            .hint("All client-secret verifications are busy; retry shortly.")),
        Verdict::Throttled => Err(OAuthError::throttled()),
        Verdict::Valid | Verdict::Invalid => Ok(()),
    }
}

/// Credentials as presented: HTTP Basic (already decoded) or form fields.
#[derive(Debug, Default)]
pub struct ClientCredentials {
    pub basic: Option<(String, String)>,
    /// `client_assertion_type` and `client_assertion` (private_key_jwt).
    pub assertion: Option<(String, String)>,
    pub form_id: String,
    pub form_secret: Option<String>,
    /// The TCP peer and its `X-Forwarded-For`, for the per-address failure throttle.
    pub peer: Option<std::net::IpAddr>,
    pub forwarded_for: Option<String>,
}

/// Logged once; the caller sees only `server_error`.
pub(crate) fn internal(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "internal error");
    OAuthError::server_error()
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        // No free database connection within database.acquire_timeout is overload, not a
        // fault: 503 temporarily_unavailable with Retry-After, so clients back off.
        if matches!(e, StoreError::Database(sqlx::Error::PoolTimedOut)) {
            tracing::warn!("database pool exhausted");
            return OAuthError::temporarily_unavailable()
                .hint("The database is busy; retry shortly.");
        }
        internal(e)
    }
}

/// The effective grant and response types (fosite defaults when the client lists none).
pub fn grant_types(c: &Client) -> Vec<&str> {
    if c.grant_types.is_empty() {
        vec!["authorization_code"]
    } else {
        c.grant_types.iter().map(String::as_str).collect()
    }
}

pub fn response_types(c: &Client) -> Vec<&str> {
    if c.response_types.is_empty() {
        vec!["code"]
    } else {
        c.response_types.iter().map(String::as_str).collect()
    }
}

/// The client's allowed scopes.
pub fn client_scopes(c: &Client) -> Vec<String> {
    crate::oauth2::split_spaces(&c.scope)
}

/// Hex SHA-384 of a JWT's signature segment (Hydra's storage key for JWT access tokens).
fn jwt_signature_key(jwt: &str) -> String {
    let segment = jwt.rsplit('.').next().unwrap_or("");
    let digest = ring::digest::digest(&ring::digest::SHA384, segment.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 lowercase hex characters (Hydra's challenges, verifiers and CSRF values).
pub fn new_id() -> String {
    crate::crypto::uuid_v4().simple().to_string()
}
