//! The configuration the OAuth 2.0 use cases read, read once at start. Each use case reads
//! its own group (fosite's narrow configuration interfaces): the authorization endpoint
//! `authorize`, token issuance and storage `tokens`, logout `logout`, error answers `errors`.
//! The four fields at the top are shared by several of them.
use crate::config::Config;
use crate::domain::protocol::{AccessTokenStrategy, SubjectType};
use crate::oauth2::redirect::BaseUrl;
use crate::oauth2::scope::ScopeStrategy;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Issuer with a trailing `/`.
    pub issuer: String,
    pub scope_strategy: ScopeStrategy,
    pub ttl_access: i64,
    pub ttl_flow: i64,
    pub authorize: AuthorizeSettings,
    pub tokens: TokenSettings,
    pub logout: LogoutSettings,
    pub errors: ErrorSettings,
    /// `oauth2.introspection_cache_ttl` (zero: no cache).
    pub introspection_cache_ttl: std::time::Duration,
}

/// What the authorization endpoint and its login/consent state machine read.
#[derive(Debug, Clone)]
pub struct AuthorizeSettings {
    /// Public base URL with a trailing `/` (the URL the login app sends the browser back to).
    pub public_url: String,
    pub login_url: BaseUrl,
    pub consent_url: BaseUrl,
    pub error_url: BaseUrl,
    pub ttl_code: i64,
    /// `ttl.authentication_session`, capped at 180 days (Hydra's GetAuthenticationSessionLifespan).
    pub ttl_auth_session: i64,
    pub pkce_enforced: bool,
    pub pkce_enforced_for_public: bool,
}

/// What token issuance, storage and client authentication read.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// The token endpoint's URL (the audience of client assertions).
    pub token_url: String,
    pub ttl_refresh: i64,
    pub ttl_id_token: i64,
    pub encrypt_at_rest: bool,
    /// `oauth2.client_credentials.default_grant_allowed_scope`.
    pub cc_default_scope: bool,
    /// `oidc.subject_identifiers`: pairwise enabled, and its salt.
    pub pairwise: Option<String>,
    /// `strategies.access_token`: with `jwt`, access tokens are RS256 JWTs (fosite
    /// strategy_jwt.go).
    pub access_token_strategy: AccessTokenStrategy,
}

/// What logout reads.
#[derive(Debug, Clone)]
pub struct LogoutSettings {
    /// `{public}oauth2/sessions/logout`: the logout request's URL, as the logout app sees it.
    pub endpoint: String,
    /// `{issuer}oauth2/sessions/logout`: where an accepted logout sends the browser back to.
    pub verifier_url: BaseUrl,
    pub logout_url: BaseUrl,
    pub post_logout_url: BaseUrl,
}

/// A configured URL that does not parse (the process refuses to start).
#[derive(Debug, thiserror::Error)]
#[error("{key} is not an absolute URL: '{value}'")]
pub struct SettingsError {
    key: &'static str,
    value: String,
    #[source]
    source: url::ParseError,
}

/// `value` (for the key `key`) as a URL.
fn url_setting(key: &'static str, value: String) -> Result<BaseUrl, SettingsError> {
    BaseUrl::parse(&value).map_err(|source| SettingsError { key, value, source })
}

/// How errors that travel in redirects are written.
#[derive(Debug, Clone, Copy)]
pub struct ErrorSettings {
    pub legacy: bool,
    pub expose_debug: bool,
}

/// 180 days: the cap Hydra puts on `ttl.authentication_session` (driver/config/provider.go).
const MAX_AUTH_SESSION: i64 = 180 * 24 * 3600;

fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    }
}

impl Settings {
    pub fn from_config(
        cfg: &Config,
        issuer: &str,
        public_url: &str,
    ) -> Result<Settings, SettingsError> {
        let issuer = with_slash(issuer);
        let public_url = with_slash(public_url);
        url_setting("issuer", issuer.clone())?;
        url_setting("urls.self.public", public_url.clone())?;
        let secs = |d: &std::time::Duration| d.as_secs() as i64;
        Ok(Settings {
            scope_strategy: ScopeStrategy::from_config(cfg.strategies.scope.as_str()),
            ttl_access: secs(&cfg.ttl.access_token),
            ttl_flow: secs(&cfg.ttl.login_consent_request),
            authorize: AuthorizeSettings::from_config(cfg, &issuer, &public_url)?,
            tokens: TokenSettings::from_config(cfg, &public_url),
            logout: LogoutSettings::from_config(cfg, &issuer, &public_url)?,
            errors: ErrorSettings {
                legacy: cfg.oauth2.include_legacy_error_fields,
                expose_debug: cfg.oauth2.expose_internal_errors,
            },
            introspection_cache_ttl: cfg.oauth2.introspection_cache_ttl,
            issuer,
        })
    }
}

/// A configured URL, or the built-in fallback page under the issuer.
fn or_fallback(
    key: &'static str,
    issuer: &str,
    configured: &str,
    page: &str,
) -> Result<BaseUrl, SettingsError> {
    let value = if configured.is_empty() {
        format!("{issuer}oauth2/fallbacks/{page}")
    } else {
        configured.to_string()
    };
    url_setting(key, value)
}

impl AuthorizeSettings {
    fn from_config(
        cfg: &Config,
        issuer: &str,
        public_url: &str,
    ) -> Result<AuthorizeSettings, SettingsError> {
        let secs = |d: &std::time::Duration| d.as_secs() as i64;
        let urls = &cfg.urls;
        Ok(AuthorizeSettings {
            public_url: public_url.to_string(),
            login_url: or_fallback("urls.login", issuer, &urls.login, "login")?,
            consent_url: or_fallback("urls.consent", issuer, &urls.consent, "consent")?,
            error_url: or_fallback("urls.error", issuer, &urls.error, "error")?,
            ttl_code: secs(&cfg.ttl.auth_code),
            ttl_auth_session: secs(&cfg.ttl.authentication_session).min(MAX_AUTH_SESSION),
            pkce_enforced: cfg.oauth2.pkce.enforced,
            pkce_enforced_for_public: cfg.oauth2.pkce.enforced_for_public_clients,
        })
    }
}

impl TokenSettings {
    fn from_config(cfg: &Config, public_url: &str) -> TokenSettings {
        let secs = |d: &std::time::Duration| d.as_secs() as i64;
        let subjects = &cfg.oidc.subject_identifiers;
        TokenSettings {
            token_url: format!("{public_url}oauth2/token"),
            ttl_refresh: secs(&cfg.ttl.refresh_token),
            ttl_id_token: secs(&cfg.ttl.id_token),
            encrypt_at_rest: cfg.oauth2.session.encrypt_at_rest,
            cc_default_scope: cfg.oauth2.client_credentials.default_grant_allowed_scope,
            pairwise: subjects
                .supported_types
                .contains(&SubjectType::Pairwise)
                .then(|| subjects.pairwise.salt.0.clone()),
            access_token_strategy: cfg.strategies.access_token,
        }
    }
}

impl LogoutSettings {
    fn from_config(
        cfg: &Config,
        issuer: &str,
        public_url: &str,
    ) -> Result<LogoutSettings, SettingsError> {
        let urls = &cfg.urls;
        Ok(LogoutSettings {
            endpoint: format!("{public_url}oauth2/sessions/logout"),
            verifier_url: url_setting("issuer", format!("{issuer}oauth2/sessions/logout"))?,
            logout_url: or_fallback("urls.logout", issuer, &urls.logout, "logout")?,
            post_logout_url: or_fallback(
                "urls.post_logout_redirect",
                issuer,
                &urls.post_logout_redirect,
                "logout/callback",
            )?,
        })
    }
}
