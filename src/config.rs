//! Typed configuration with Hydra's key names: defaults < file (`--config`) < environment.
//!
//! Environment names follow Hydra (ory/x configx): the key path upper-cased with `.` as `_`
//! (`URLS_SELF_ISSUER`, `SERVE_PUBLIC_PORT`, `SECRETS_SYSTEM`). Lists from the environment are a
//! comma-separated string or a JSON array. Unknown keys and invalid values stop startup with a
//! message naming the key.
pub use crate::domain::protocol::{AccessTokenStrategy, SubjectType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML/JSON: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration value for key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// A secret string whose Debug output never shows the value.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub dsn: String,
    pub serve: Serve,
    pub urls: Urls,
    pub secrets: Secrets,
    pub ttl: Ttl,
    pub strategies: Strategies,
    pub oauth2: OAuth2,
    pub oidc: Oidc,
    pub webfinger: Webfinger,
    pub log: Log,
    pub profiling: String,
    pub tracing: Value,
    pub sqa: Value,
    pub version: String,
    /// Portcullis addition: database connection bounds (not in Hydra 1.9.2).
    pub database: Database,
    /// Portcullis addition: the in-process janitor (`portcullis janitor` inside the server).
    pub janitor: JanitorConfig,
}

/// The in-process janitor: the clean-up `portcullis janitor --tokens --requests` does, run by
/// the server itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JanitorConfig {
    /// How often the server runs the janitor (env `JANITOR_INTERVAL`); `0s` (the default)
    /// leaves it off, for a scheduled `portcullis janitor` instead.
    #[serde(with = "duration")]
    pub interval: Duration,
}

impl Default for JanitorConfig {
    fn default() -> Self {
        JanitorConfig {
            interval: Duration::ZERO,
        }
    }
}

impl JanitorConfig {
    /// How often the in-process janitor runs, or `None` when it is off (`0s`).
    pub fn every(&self) -> Option<Duration> {
        (!self.interval.is_zero()).then_some(self.interval)
    }
}

/// How long the process waits on the database before giving up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// Longest wait for a pooled connection; a request that needs the database fails with a
    /// JSON error after it (env `DATABASE_ACQUIRE_TIMEOUT`).
    #[serde(with = "duration")]
    pub acquire_timeout: Duration,
    /// Longest wait for the readiness probe's round trip (`/health/ready` answers 503 after it).
    #[serde(with = "duration")]
    pub ping_timeout: Duration,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            acquire_timeout: Duration::from_secs(3),
            ping_timeout: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Serve {
    pub public: Listener,
    pub admin: Listener,
    pub tls: Tls,
    pub cookies: Cookies,
    /// Largest accepted request body in bytes (Portcullis addition).
    pub request_body_limit: usize,
    /// Portcullis: longest time to receive a request head. For HTTP/1.1 hyper starts this
    /// clock as soon as a keep-alive connection goes idle, so it also ends idle connections.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// Portcullis: idle keep-alive limit. HTTP/1.1 connections idle for
    /// min(idle_timeout, header_read_timeout); HTTP/2 ones are pinged at this interval and
    /// dropped when the ping goes unanswered.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Portcullis: longest time a request may run before it is answered with 503.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Portcullis: on SIGTERM/SIGINT, how long requests in flight may finish before the
    /// remaining connections are closed and the process exits.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            public: Listener {
                port: 4444,
                ..Listener::default()
            },
            admin: Listener {
                port: 4445,
                ..Listener::default()
            },
            tls: Tls::default(),
            cookies: Cookies::default(),
            request_body_limit: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listener {
    pub port: u16,
    pub host: String,
    pub cors: Cors,
    pub access_log: Value,
    pub socket: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cors {
    pub enabled: bool,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: u64,
    pub debug: bool,
}

impl Default for Cors {
    fn default() -> Self {
        Cors {
            enabled: false,
            allowed_origins: vec![],
            allowed_methods: ["POST", "GET", "PUT", "PATCH", "DELETE"]
                .map(String::from)
                .to_vec(),
            allowed_headers: ["Authorization", "Content-Type"].map(String::from).to_vec(),
            exposed_headers: vec!["Content-Type".into()],
            allow_credentials: true,
            max_age: 0,
            debug: false,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    pub cert: PathOrBase64,
    pub key: PathOrBase64,
    pub allow_termination_from: Vec<Cidr>,
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`), parsed at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub ipnet::IpNet);

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        s.parse()
            .map(Cidr)
            .map_err(|_| format!("`{s}` is not a CIDR network like 10.0.0.0/8"))
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathOrBase64 {
    pub path: String,
    pub base64: Secret,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cookies {
    pub same_site_mode: SameSiteMode,
    pub same_site_legacy_workaround: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Urls {
    #[serde(rename = "self")]
    pub self_: SelfUrls,
    pub login: String,
    pub consent: String,
    pub logout: String,
    pub error: String,
    pub post_logout_redirect: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfUrls {
    pub issuer: String,
    pub public: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Secrets {
    pub system: Vec<Secret>,
    pub cookie: Vec<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ttl {
    #[serde(with = "duration")]
    pub login_consent_request: Duration,
    /// Upper bound on how long a remembered login skips the login app (Hydra >= 2's key;
    /// capped at 180 days as Hydra caps it).
    #[serde(with = "duration")]
    pub authentication_session: Duration,
    #[serde(with = "duration")]
    pub access_token: Duration,
    #[serde(with = "duration")]
    pub refresh_token: Duration,
    #[serde(with = "duration")]
    pub id_token: Duration,
    #[serde(with = "duration")]
    pub auth_code: Duration,
}

const HOUR: Duration = Duration::from_secs(3600);

impl Default for Ttl {
    fn default() -> Self {
        Ttl {
            login_consent_request: HOUR,
            authentication_session: HOUR * 720,
            access_token: HOUR,
            refresh_token: HOUR * 720,
            id_token: HOUR,
            auth_code: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Strategies {
    pub scope: ScopeStrategyName,
    pub access_token: AccessTokenStrategy,
}

/// `strategies.scope`, by Hydra's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScopeStrategyName {
    #[default]
    #[serde(rename = "wildcard")]
    Wildcard,
    #[serde(rename = "exact")]
    Exact,
    /// Accepted for Hydra configuration files; treated as `wildcard`.
    #[serde(rename = "DEPRECATED_HIERARCHICAL_SCOPE_STRATEGY")]
    DeprecatedHierarchical,
}

impl ScopeStrategyName {
    /// Hydra's name of the strategy.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeStrategyName::Wildcard => "wildcard",
            ScopeStrategyName::Exact => "exact",
            ScopeStrategyName::DeprecatedHierarchical => "DEPRECATED_HIERARCHICAL_SCOPE_STRATEGY",
        }
    }
}

/// `serve.cookies.same_site_mode`; unset (`""`) is `None` over HTTPS and `Lax` over plain HTTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SameSiteMode {
    #[default]
    #[serde(rename = "")]
    Unset,
    Strict,
    Lax,
    None,
}

impl SameSiteMode {
    /// The configured name (`""` when unset).
    pub fn as_str(self) -> &'static str {
        match self {
            SameSiteMode::Unset => "",
            SameSiteMode::Strict => "Strict",
            SameSiteMode::Lax => "Lax",
            SameSiteMode::None => "None",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth2 {
    pub expose_internal_errors: bool,
    pub include_legacy_error_fields: bool,
    pub hashers: Hashers,
    pub pkce: Pkce,
    pub session: OAuth2Session,
    pub client_credentials: ClientCredentials,
    /// Portcullis, opt-in: how long one process may answer introspection and userinfo for an
    /// access token from memory. Revocations through the same process apply at once; another
    /// replica's revocation is seen after at most this long. The default `0s` keeps the cache
    /// off, so every revocation is seen by the next request to any replica, as in Hydra.
    #[serde(with = "duration")]
    pub introspection_cache_ttl: Duration,
}

impl Default for OAuth2 {
    fn default() -> Self {
        OAuth2 {
            expose_internal_errors: false,
            include_legacy_error_fields: false,
            hashers: Hashers::default(),
            pkce: Pkce::default(),
            session: OAuth2Session::default(),
            client_credentials: ClientCredentials::default(),
            introspection_cache_ttl: Duration::ZERO,
        }
    }
}

/// `oauth2.hashers`: Hydra 1.9's `bcrypt.cost` is accepted (it only tuned hashing of new
/// secrets, which Portcullis does with argon2id); `argon2` is Hydra ≥ 1.10's block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hashers {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcrypt: Option<Bcrypt>,
    pub argon2: Argon2Hasher,
    /// Portcullis: hashing threads (0 = the number of cores). Each holds `argon2.memory`.
    pub workers: usize,
    /// Portcullis: how long a request waits for a free hashing thread before 503.
    #[serde(with = "duration")]
    pub queue_timeout: Duration,
    /// Portcullis: how long a failed client authentication waits before its 401/429.
    #[serde(with = "duration")]
    pub failure_delay: Duration,
}

impl Default for Hashers {
    fn default() -> Self {
        Hashers {
            bcrypt: None,
            argon2: Argon2Hasher::default(),
            workers: 0,
            queue_timeout: Duration::from_secs(3),
            failure_delay: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bcrypt {
    pub cost: u32,
}

impl Default for Bcrypt {
    fn default() -> Self {
        Bcrypt { cost: 10 }
    }
}

/// argon2id parameters for new client secrets (existing hashes keep their own parameters).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Hasher {
    /// Memory per hash: a number of KiB, or a size such as `19MiB`, `64MB`.
    pub memory: Value,
    pub iterations: u32,
    pub parallelism: u32,
    pub salt_length: usize,
    pub key_length: usize,
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        let d = crate::crypto::hasher::Argon2Settings::default();
        Argon2Hasher {
            memory: Value::String(format!("{}KiB", d.memory_kib)),
            iterations: d.iterations,
            parallelism: d.parallelism,
            salt_length: d.salt_length,
            key_length: d.key_length,
        }
    }
}

impl Argon2Hasher {
    /// The validated argon2 settings, or why they are invalid (naming the key).
    pub fn settings(&self) -> Result<crate::crypto::hasher::Argon2Settings, ConfigError> {
        let memory_kib = parse_kib(&self.memory).ok_or_else(|| {
            invalid(
                "oauth2.hashers.argon2.memory",
                "must be a number of KiB or a size like 19MiB or 64MB",
            )
        })?;
        let s = crate::crypto::hasher::Argon2Settings {
            memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
            salt_length: self.salt_length,
            key_length: self.key_length,
        };
        s.params()
            .map_err(|m| invalid("oauth2.hashers.argon2", m))?;
        Ok(s)
    }
}

/// A memory size in KiB: a bare number is KiB (Hydra 1.10); units B, KB, MB, GB (decimal) and
/// KiB, MiB, GiB (binary) are accepted.
fn parse_kib(v: &Value) -> Option<u32> {
    let text = match v {
        Value::Number(n) => return n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let bytes = match unit.trim() {
        "" => return u32::try_from(n).ok(),
        "B" => n,
        "KB" => n.checked_mul(1000)?,
        "MB" => n.checked_mul(1000 * 1000)?,
        "GB" => n.checked_mul(1000 * 1000 * 1000)?,
        "KiB" => n.checked_mul(1024)?,
        "MiB" => n.checked_mul(1024 * 1024)?,
        "GiB" => n.checked_mul(1024 * 1024 * 1024)?,
        _ => return None,
    };
    u32::try_from(bytes / 1024).ok()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pkce {
    pub enforced: bool,
    pub enforced_for_public_clients: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth2Session {
    pub encrypt_at_rest: bool,
}

impl Default for OAuth2Session {
    fn default() -> Self {
        OAuth2Session {
            encrypt_at_rest: true,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientCredentials {
    pub default_grant_allowed_scope: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Oidc {
    pub subject_identifiers: SubjectIdentifiers,
    pub dynamic_client_registration: DynamicClientRegistration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubjectIdentifiers {
    pub supported_types: Vec<SubjectType>,
    pub pairwise: Pairwise,
}

impl Default for SubjectIdentifiers {
    fn default() -> Self {
        SubjectIdentifiers {
            supported_types: vec![SubjectType::Public],
            pairwise: Pairwise::default(),
        }
    }
}

impl SubjectIdentifiers {
    /// Whether pairwise subjects are enabled.
    pub fn pairwise_enabled(&self) -> bool {
        self.supported_types.contains(&SubjectType::Pairwise)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pairwise {
    pub salt: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicClientRegistration {
    pub default_scope: Vec<String>,
}

impl Default for DynamicClientRegistration {
    fn default() -> Self {
        DynamicClientRegistration {
            default_scope: ["offline_access", "offline", "openid"]
                .map(String::from)
                .to_vec(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webfinger {
    pub jwks: WebfingerJwks,
    pub oidc_discovery: OidcDiscovery,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebfingerJwks {
    pub broadcast_keys: Vec<String>,
}

impl Default for WebfingerJwks {
    fn default() -> Self {
        WebfingerJwks {
            broadcast_keys: vec![crate::domain::jwk::ID_TOKEN_SET.into()],
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcDiscovery {
    pub auth_url: String,
    pub token_url: String,
    pub jwks_url: String,
    pub client_registration_url: String,
    pub userinfo_url: String,
    pub supported_claims: Vec<String>,
    pub supported_scope: Vec<String>,
    /// Portcullis addition, off by default: adds `code_challenge_methods_supported` (RFC 8414).
    /// The Hydra v1.9.2 SDKs reject unknown discovery fields, so it is opt-in.
    pub include_code_challenge_methods: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    pub level: LogLevel,
    pub format: LogFormat,
    pub leak_sensitive_values: bool,
}

/// `log.level`, by Hydra's (logrus) names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Panic,
    Fatal,
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

/// `log.format`: `text` for people, `json` for log collectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Hydra's duration syntax (config.schema.json, `definitions.duration`).
pub const DURATION_PATTERN: &str = "^[0-9]+(ns|us|ms|s|m|h)$";

/// Parses Hydra's duration syntax (`^[0-9]+(ns|us|ms|s|m|h)$`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "ns" => Duration::from_nanos(n),
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

/// Writes a duration in Hydra's syntax, in the largest unit that holds it exactly.
pub fn format_duration(d: Duration) -> String {
    const UNITS: [(&str, u128); 5] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ];
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    UNITS
        .iter()
        .find(|(_, size)| nanos.is_multiple_of(*size))
        .map_or_else(
            || format!("{nanos}ns"),
            |(unit, size)| format!("{}{unit}", nanos / size),
        )
}

/// Serde for duration keys: a string in Hydra's syntax, parsed once at load.
mod duration {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).ok_or_else(|| {
            D::Error::custom(format!(
                "`{text}` does not match pattern '{}': use a duration like 30m or 1h",
                super::DURATION_PATTERN
            ))
        })
    }
}

impl Config {
    /// Loads defaults, then the optional file, then the process environment.
    pub fn load(file: Option<&str>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    pub fn load_from(file: Option<&str>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut tree = serde_json::to_value(Config::default()).map_err(|e| invalid("", e))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.into(),
                source,
            })?;
            let overlay: Value = serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?;
            merge(&mut tree, overlay);
        }
        let defaults = serde_json::to_value(Config::default()).map_err(|e| invalid("", e))?;
        let mut leaves = Vec::new();
        collect_leaves(&defaults, String::new(), &mut leaves);
        for (path, template) in leaves {
            let name = path.replace('.', "_").to_ascii_uppercase();
            if let Some((_, raw)) = env.iter().find(|(k, _)| *k == name) {
                let value = env_value(raw, template).map_err(|m| invalid(&path, m))?;
                set_path(&mut tree, &path, value);
            }
        }
        let cfg: Config =
            serde_path_to_error::deserialize(tree).map_err(|e| ConfigError::Invalid {
                key: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what the types alone do not: ranges, lengths and URLs.
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_timeouts()?;
        self.check_janitor_interval()?;
        self.check_hashers()?;
        self.check_secrets()?;
        self.check_urls()?;
        Ok(())
    }

    /// Time limits of zero would end every connection or request at once.
    fn check_timeouts(&self) -> Result<(), ConfigError> {
        let serve = &self.serve;
        for (key, d) in [
            ("serve.header_read_timeout", serve.header_read_timeout),
            ("serve.idle_timeout", serve.idle_timeout),
            ("serve.request_timeout", serve.request_timeout),
            ("serve.shutdown_timeout", serve.shutdown_timeout),
            ("database.acquire_timeout", self.database.acquire_timeout),
            ("database.ping_timeout", self.database.ping_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be longer than 0s"));
            }
        }
        Ok(())
    }

    fn check_janitor_interval(&self) -> Result<(), ConfigError> {
        let d = self.janitor.interval;
        if !d.is_zero() && d < Duration::from_secs(1) {
            return Err(invalid(
                "janitor.interval",
                "must be 0s (off) or at least 1s",
            ));
        }
        Ok(())
    }

    fn check_hashers(&self) -> Result<(), ConfigError> {
        self.oauth2.hashers.argon2.settings()?;
        if let Some(b) = &self.oauth2.hashers.bcrypt {
            if !(4..=31).contains(&b.cost) {
                return Err(invalid(
                    "oauth2.hashers.bcrypt.cost",
                    "must be between 4 and 31",
                ));
            }
        }
        Ok(())
    }

    fn check_secrets(&self) -> Result<(), ConfigError> {
        if let Some(first) = self.secrets.system.first() {
            if first.0.len() < 16 {
                return Err(invalid(
                    "secrets.system",
                    "the current secret needs at least 16 characters",
                ));
            }
        }
        let subjects = &self.oidc.subject_identifiers;
        if subjects.pairwise_enabled() && subjects.pairwise.salt.0.len() < 8 {
            return Err(invalid(
                "oidc.subject_identifiers.pairwise.salt",
                "needs at least 8 characters",
            ));
        }
        Ok(())
    }

    /// Every `urls.*` key that is set must be an absolute http(s) URL (Hydra's `format: uri`).
    fn check_urls(&self) -> Result<(), ConfigError> {
        let u = &self.urls;
        for (key, value) in [
            ("urls.self.issuer", &u.self_.issuer),
            ("urls.self.public", &u.self_.public),
            ("urls.login", &u.login),
            ("urls.consent", &u.consent),
            ("urls.logout", &u.logout),
            ("urls.error", &u.error),
            ("urls.post_logout_redirect", &u.post_logout_redirect),
        ] {
            check_url(key, value)?;
        }
        Ok(())
    }
}

/// An empty value (the default) or an absolute http or https URL.
fn check_url(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Ok(());
    }
    let url = url::Url::parse(value)
        .map_err(|e| invalid(key, format!("`{value}` is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            key,
            format!("`{value}` must be an http:// or https:// URL"),
        ));
    }
    Ok(())
}

fn invalid(key: &str, message: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.to_string(),
    }
}

fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn collect_leaves<'a>(v: &'a Value, prefix: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect_leaves(child, p, out);
            }
        }
        _ => out.push((prefix, v)),
    }
}

fn set_path(tree: &mut Value, path: &str, value: Value) {
    let mut cur = tree;
    for part in path.split('.') {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let Value::Object(map) = cur else { return };
        cur = map.entry(part.to_string()).or_insert(Value::Null);
    }
    *cur = value;
}

fn env_value(raw: &str, template: &Value) -> Result<Value, String> {
    match template {
        Value::Array(_) => {
            let t = raw.trim();
            if t.starts_with('[') {
                serde_json::from_str(t).map_err(|e| format!("not a JSON array: {e}"))
            } else if t.is_empty() {
                Ok(Value::Array(vec![]))
            } else {
                Ok(Value::Array(
                    t.split(',')
                        .map(|s| Value::String(s.trim().to_string()))
                        .collect(),
                ))
            }
        }
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" | "" => Ok(Value::Bool(false)),
            other => Err(format!("`{other}` is not a boolean")),
        },
        Value::Number(_) => raw
            .trim()
            .parse::<u64>()
            .map(|n| Value::Number(n.into()))
            .map_err(|_| format!("`{raw}` is not a non-negative integer")),
        Value::Object(_) | Value::Null => {
            Ok(serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())))
        }
        Value::String(_) => Ok(Value::String(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_overrides_with_hydra_names() {
        let cfg = Config::load_from(
            None,
            &env(&[
                ("DSN", "memory"),
                ("URLS_SELF_ISSUER", "https://auth.example/"),
                ("SERVE_PUBLIC_PORT", "9000"),
                ("SECRETS_SYSTEM", "aaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbb"),
                ("SERVE_ADMIN_CORS_ENABLED", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.dsn, "memory");
        assert_eq!(cfg.urls.self_.issuer, "https://auth.example/");
        assert_eq!(cfg.serve.public.port, 9000);
        assert_eq!(cfg.secrets.system.len(), 2);
        assert!(cfg.serve.admin.cors.enabled);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = Config::load_from(None, &env(&[("SERVE_PUBLIC_PORT", "http")])).unwrap_err();
        assert!(err.to_string().contains("serve.public.port"), "{err}");
        let err = Config::load_from(None, &env(&[("TTL_ACCESS_TOKEN", "1 hour")])).unwrap_err();
        assert!(err.to_string().contains("ttl.access_token"), "{err}");
        let err = Config::load_from(None, &env(&[("JANITOR_INTERVAL", "500ms")])).unwrap_err();
        assert!(err.to_string().contains("janitor.interval"), "{err}");
        let err = Config::load_from(None, &env(&[("JANITOR_INTERVAL", "hourly")])).unwrap_err();
        assert!(err.to_string().contains("janitor.interval"), "{err}");
        let cfg = Config::load_from(None, &env(&[("JANITOR_INTERVAL", "10m")])).unwrap();
        assert_eq!(cfg.janitor.every(), Some(Duration::from_secs(600)));
        assert_eq!(Config::default().janitor.every(), None);
    }

    #[test]
    fn durations_parse_in_hydra_syntax() {
        for (text, want) in [
            ("0s", Some(Duration::ZERO)),
            ("1500ns", Some(Duration::from_nanos(1500))),
            ("250us", Some(Duration::from_micros(250))),
            ("20ms", Some(Duration::from_millis(20))),
            ("45s", Some(Duration::from_secs(45))),
            ("10m", Some(Duration::from_secs(600))),
            ("720h", Some(Duration::from_secs(720 * 3600))),
            ("", None),
            ("10", None),
            ("h", None),
            ("1 h", None),
            ("1h30m", None),
            ("1.5h", None),
            ("-1s", None),
            ("10d", None),
            ("99999999999999999999s", None),
            ("9999999999999999999h", None),
        ] {
            assert_eq!(parse_duration(text), want, "{text:?}");
        }
    }

    #[test]
    fn durations_format_back_in_the_largest_exact_unit() {
        for (d, want) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(3600 * 720), "720h"),
            (Duration::from_secs(600), "10m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(7), "7us"),
            (Duration::from_nanos(3), "3ns"),
        ] {
            assert_eq!(format_duration(d), want);
            assert_eq!(parse_duration(want), Some(d), "{want}");
        }
    }

    #[test]
    fn every_duration_key_is_parsed_once_at_load() {
        let cfg = Config::load_from(
            None,
            &env(&[
                ("TTL_ACCESS_TOKEN", "15m"),
                ("TTL_AUTH_CODE", "30s"),
                ("SERVE_REQUEST_TIMEOUT", "2500ms"),
                ("DATABASE_PING_TIMEOUT", "2s"),
                ("OAUTH2_HASHERS_FAILURE_DELAY", "0s"),
                ("OAUTH2_INTROSPECTION_CACHE_TTL", "5s"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.ttl.access_token, Duration::from_secs(900));
        assert_eq!(cfg.ttl.auth_code, Duration::from_secs(30));
        assert_eq!(cfg.ttl.refresh_token, Duration::from_secs(720 * 3600));
        assert_eq!(cfg.serve.request_timeout, Duration::from_millis(2500));
        assert_eq!(cfg.database.ping_timeout, Duration::from_secs(2));
        assert_eq!(cfg.oauth2.hashers.failure_delay, Duration::ZERO);
        assert_eq!(cfg.oauth2.introspection_cache_ttl, Duration::from_secs(5));
    }

    /// Bad values: (variable, value, key named in the error, reason given).
    const BAD_VALUES: &[(&str, &str, &str, &str)] = &[
        (
            "SERVE_TLS_ALLOW_TERMINATION_FROM",
            "10.0.0.0/8,10.0.0.1",
            "serve.tls.allow_termination_from",
            "`10.0.0.1` is not a CIDR network",
        ),
        (
            "TTL_ID_TOKEN",
            "1 hour",
            "ttl.id_token",
            "does not match pattern",
        ),
        (
            "TTL_REFRESH_TOKEN",
            "-1",
            "ttl.refresh_token",
            "does not match pattern",
        ),
        (
            "SERVE_IDLE_TIMEOUT",
            "60",
            "serve.idle_timeout",
            "does not match pattern",
        ),
        (
            "SERVE_REQUEST_TIMEOUT",
            "0s",
            "serve.request_timeout",
            "longer than 0s",
        ),
        (
            "SERVE_SHUTDOWN_TIMEOUT",
            "0ms",
            "serve.shutdown_timeout",
            "longer than 0s",
        ),
        (
            "DATABASE_ACQUIRE_TIMEOUT",
            "0s",
            "database.acquire_timeout",
            "longer than 0s",
        ),
        (
            "JANITOR_INTERVAL",
            "999ms",
            "janitor.interval",
            "at least 1s",
        ),
        (
            "STRATEGIES_ACCESS_TOKEN",
            "JWT",
            "strategies.access_token",
            "`opaque`",
        ),
        (
            "STRATEGIES_SCOPE",
            "prefix",
            "strategies.scope",
            "`wildcard`",
        ),
        ("LOG_LEVEL", "verbose", "log.level", "`info`"),
        ("LOG_LEVEL", "INFO", "log.level", "`info`"),
        ("LOG_FORMAT", "xml", "log.format", "`json`"),
        (
            "SERVE_COOKIES_SAME_SITE_MODE",
            "lax",
            "serve.cookies.same_site_mode",
            "`Lax`",
        ),
        (
            "OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES",
            "public,secret",
            "oidc.subject_identifiers.supported_types",
            "`pairwise`",
        ),
        (
            "OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES",
            "pairwise",
            "oidc.subject_identifiers.pairwise.salt",
            "8 characters",
        ),
        ("URLS_LOGIN", "/login", "urls.login", "not an absolute URL"),
        (
            "URLS_CONSENT",
            "consent.example.com",
            "urls.consent",
            "not an absolute URL",
        ),
        (
            "URLS_ERROR",
            "mailto:ops@example.com",
            "urls.error",
            "http:// or https://",
        ),
        (
            "URLS_SELF_ISSUER",
            "https://",
            "urls.self.issuer",
            "not an absolute URL",
        ),
        (
            "URLS_POST_LOGOUT_REDIRECT",
            "ftp://x.example/",
            "urls.post_logout_redirect",
            "http:// or https://",
        ),
    ];

    /// Each bad value stops the load with a message naming the key and the reason.
    #[test]
    fn bad_values_are_refused_with_the_key() {
        for (var, value, key, reason) in BAD_VALUES {
            let err = Config::load_from(None, &env(&[(*var, *value)]))
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("`{key}")), "{var}={value}: {err}");
            assert!(err.contains(reason), "{var}={value}: {err}");
        }
    }

    #[test]
    fn protocol_values_load_as_types() {
        let cfg = Config::load_from(
            None,
            &env(&[
                ("STRATEGIES_ACCESS_TOKEN", "jwt"),
                ("STRATEGIES_SCOPE", "DEPRECATED_HIERARCHICAL_SCOPE_STRATEGY"),
                (
                    "OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES",
                    "public,pairwise",
                ),
                ("OIDC_SUBJECT_IDENTIFIERS_PAIRWISE_SALT", "some-salt"),
                ("LOG_LEVEL", "warn"),
                ("LOG_FORMAT", "json"),
                ("SERVE_COOKIES_SAME_SITE_MODE", "Strict"),
                ("URLS_LOGIN", "https://login.example/login?x=1"),
                ("URLS_SELF_ISSUER", "http://127.0.0.1:4444/"),
                ("SERVE_TLS_ALLOW_TERMINATION_FROM", "10.0.0.0/8, fd00::/8"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.strategies.access_token, AccessTokenStrategy::Jwt);
        assert_eq!(
            cfg.strategies.scope,
            ScopeStrategyName::DeprecatedHierarchical
        );
        assert_eq!(
            cfg.oidc.subject_identifiers.supported_types,
            [SubjectType::Public, SubjectType::Pairwise]
        );
        assert!(cfg.oidc.subject_identifiers.pairwise_enabled());
        assert_eq!(cfg.log.level, LogLevel::Warn);
        assert_eq!(cfg.log.format, LogFormat::Json);
        assert_eq!(cfg.serve.cookies.same_site_mode, SameSiteMode::Strict);
        let networks: Vec<String> = cfg
            .serve
            .tls
            .allow_termination_from
            .iter()
            .map(|c| c.0.to_string())
            .collect();
        assert_eq!(networks, ["10.0.0.0/8", "fd00::/8"]);
        let defaults = Config::default();
        assert_eq!(
            defaults.strategies.access_token,
            AccessTokenStrategy::Opaque
        );
        assert_eq!(defaults.strategies.scope.as_str(), "wildcard");
        assert_eq!(defaults.serve.cookies.same_site_mode.as_str(), "");
        assert!(!defaults.oidc.subject_identifiers.pairwise_enabled());
    }

    /// Defaults serialize in Hydra's spelling (the environment overlay and the documentation
    /// table are built from this tree).
    #[test]
    fn defaults_serialize_with_hydra_names() {
        let tree = serde_json::to_value(Config::default()).unwrap();
        for (pointer, want) in [
            ("/ttl/access_token", "1h"),
            ("/ttl/refresh_token", "720h"),
            ("/ttl/auth_code", "10m"),
            ("/serve/idle_timeout", "1m"),
            ("/janitor/interval", "0s"),
            ("/strategies/access_token", "opaque"),
            ("/strategies/scope", "wildcard"),
            ("/log/level", "info"),
            ("/log/format", "text"),
            ("/serve/cookies/same_site_mode", ""),
            ("/oidc/subject_identifiers/supported_types/0", "public"),
        ] {
            assert_eq!(tree.pointer(pointer), Some(&Value::from(want)), "{pointer}");
        }
    }

    #[test]
    fn typo_in_file_names_the_key() {
        let dir = std::env::temp_dir().join(format!("pc-cfg-{}", crate::crypto::uuid_v4()));
        std::fs::write(&dir, "serve:\n  pubic:\n    port: 1\n").unwrap();
        let err = Config::load_from(Some(dir.to_str().unwrap()), &[]).unwrap_err();
        std::fs::remove_file(&dir).ok();
        assert!(err.to_string().contains("pubic"), "{err}");
    }
}

#[cfg(test)]
mod example_file {
    /// The documented example must load as it is.
    #[test]
    fn example_config_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/portcullis.yaml");
        let cfg = super::Config::load_from(Some(path), &[]).unwrap();
        assert_eq!(cfg.serve.public.port, 4444);
        assert_eq!(
            cfg.ttl.refresh_token,
            super::Duration::from_secs(720 * 3600)
        );
    }
}
