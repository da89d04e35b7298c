//! Composition root: connect the store, migrate, build services, bind the listeners, shut down
//! gracefully on SIGTERM/SIGINT.
use crate::config::{AccessTokenStrategy, Config};
use crate::crypto::aead::Aead;
use crate::domain::jwk::{ACCESS_TOKEN_SET, ID_TOKEN_SET};
use crate::http::conn::JsonErrorsAcceptor;
use crate::http::cookies::CookieCodec;
use crate::http::error::ApiError;
use crate::http::{admin, middleware, public, AppState};
use crate::service::clients::Clients;
use crate::service::dev_ui::{CsrfKeys, DevUi};
use crate::service::jwks::Jwks;
use crate::service::oauth2::{OAuth2, Settings};
use crate::service::{wellknown, Clock, SystemClock};
use crate::store::Store;
use crate::telemetry::Metrics;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use axum_server::Handle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listeners {
    All,
    Public,
    Admin,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot create signing keys: {0}")]
    Keys(#[source] crate::service::jwks::JwksError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, String),
    #[error("{0}")]
    Secrets(String),
}

/// Flags that are not configuration keys (`--dev`, `--dangerous-force-http`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub insecure_http: bool,
    /// `--dev`: also serve the demo login, consent and logout pages under
    /// `/oauth2/fallbacks/*` (a development aid that logs anyone in).
    pub dev: bool,
}

/// Running listeners; dropping does not stop them, `shutdown` does.
pub struct Running {
    pub public: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    handle: Handle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The in-process janitor (`janitor.interval`), when on.
    janitor: Option<tokio::task::JoinHandle<()>>,
    pub state: AppState,
}

impl Running {
    /// Stops accepting and closes idle keep-alive connections at once, lets requests in flight
    /// finish for at most `serve.shutdown_timeout`, then drops every remaining connection
    /// (half-sent requests included) and closes the pool. Returns within the deadline plus
    /// the pool's 2 s grace.
    pub async fn shutdown(self) {
        let deadline = self.state.config.serve.shutdown_timeout;
        if let Some(j) = &self.janitor {
            j.abort();
        }
        self.handle.graceful_shutdown(Some(deadline));
        let tasks = async {
            for t in self.tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(deadline + Duration::from_millis(500), tasks)
            .await
            .is_err()
        {
            self.handle.shutdown();
            tracing::warn!("listeners did not stop within serve.shutdown_timeout; closing them");
        }
        self.state.store.close_within(Duration::from_secs(2)).await;
    }
}

fn issuer_of(cfg: &Config, flags: Flags) -> Result<String, AppError> {
    let mut issuer = cfg.urls.self_.issuer.clone();
    if issuer.is_empty() {
        let scheme = if flags.insecure_http { "http" } else { "https" };
        issuer = format!("{scheme}://localhost:{}/", cfg.serve.public.port);
    }
    let parsed = url::Url::parse(&issuer)
        .map_err(|e| AppError::Config(format!("urls.self.issuer `{issuer}` is not a URL: {e}")))?;
    if parsed.scheme() != "https" && !flags.insecure_http {
        return Err(AppError::Config(format!(
            "urls.self.issuer `{issuer}` must use https; pass --dev or --dangerous-force-http to allow plain HTTP"
        )));
    }
    if !issuer.ends_with('/') {
        issuer.push('/');
    }
    Ok(issuer)
}

/// Builds the state: store, migrations for in-memory SQLite, services, first-start keys.
pub async fn build(cfg: Config, flags: Flags) -> Result<AppState, AppError> {
    build_with_clock(cfg, flags, Arc::new(SystemClock)).await
}

/// As `build`, with an injected clock (tests move time instead of sleeping).
pub async fn build_with_clock(
    mut cfg: Config,
    flags: Flags,
    clock: Arc<dyn Clock>,
) -> Result<AppState, AppError> {
    if cfg.dsn.is_empty() {
        return Err(AppError::Config(
            "dsn is required: set DSN (memory, sqlite://…, postgres://…)".into(),
        ));
    }
    let issuer = issuer_of(&cfg, flags)?;
    let public_url = if cfg.urls.self_.public.is_empty() {
        issuer.clone()
    } else {
        cfg.urls.self_.public.clone()
    };
    let random_secret = ensure_system_secret(&mut cfg);
    let store = open_store(&cfg).await?;
    let system: Vec<&[u8]> = cfg.secrets.system.iter().map(|s| s.0.as_bytes()).collect();
    let aead = Arc::new(Aead::new(&system));
    let broadcast = broadcast_sets(&cfg);
    let mut checked: Vec<&str> = vec![ID_TOKEN_SET, ACCESS_TOKEN_SET];
    checked.extend(broadcast.iter().map(String::as_str));
    check_stored_keys(&store, &aead, &checked, random_secret).await?;
    // Replicas agree on keys and clients: see service/changes.rs.
    let changes = crate::service::changes::Changes::watch(store.clone()).await?;
    let jwks = Arc::new(
        Jwks::new(store.clone(), aead.clone(), clock.clone(), broadcast).watching(changes.clone()),
    );
    ensure_signing_keys(&jwks).await?;
    let metrics = Metrics::new().map_err(|e| AppError::Config(e.to_string()))?;
    let clients = Arc::new(
        Clients::new(
            store.clone(),
            clock.clone(),
            cfg.oidc.dynamic_client_registration.default_scope.clone(),
            subject_type_names(&cfg),
            secret_verifier(&cfg, &metrics)?,
        )
        .watching(changes),
    );
    let discovery = Arc::new(wellknown::discovery_document(&cfg, &issuer, &public_url));
    let oauth2 = Arc::new(OAuth2::new(
        Settings::from_config(&cfg, &issuer, &public_url)
            .map_err(|e| AppError::Config(e.to_string()))?,
        store.clone(),
        clients.clone(),
        jwks.clone(),
        clock,
        &system,
        aead,
        metrics.oauth.clone(),
    ));
    let cookie_secrets: Vec<&[u8]> = if cfg.secrets.cookie.is_empty() {
        system
    } else {
        cfg.secrets.cookie.iter().map(|s| s.0.as_bytes()).collect()
    };
    let dev_ui = dev_ui(flags, &oauth2, &cookie_secrets);
    let cookies = Arc::new(CookieCodec::new(
        &cookie_secrets,
        !flags.insecure_http,
        cfg.serve.cookies.same_site_mode.as_str(),
    ));
    Ok(AppState::new(crate::http::Services {
        oauth2,
        cookies,
        dev_ui,
        config: Arc::new(cfg),
        store,
        clients,
        jwks,
        metrics,
        discovery,
    }))
}

/// Without `secrets.system`, a random secret for this process only (with a warning); true
/// when one was made up.
fn ensure_system_secret(cfg: &mut Config) -> bool {
    if !cfg.secrets.system.is_empty() {
        return false;
    }
    let persistent =
        !(cfg.dsn == "memory" || cfg.dsn.contains(":memory:") || cfg.dsn.contains("mode=memory"));
    if persistent {
        tracing::warn!(
            "secrets.system is not set, but the database is persistent: this process encrypts keys and sessions with a random secret that dies with it. Nothing it stores will be readable after a restart, and the next start will refuse to run on these keys. Set SECRETS_SYSTEM (secrets.system) to a fixed secret of at least 16 characters."
        );
    } else {
        tracing::warn!("secrets.system is not set: using a random secret; keys and tokens will not survive a restart");
    }
    cfg.secrets
        .system
        .push(crate::config::Secret(crate::crypto::random_secret(32)));
    true
}

/// Connects the pool; SQLite is the embedded store, so it migrates itself.
async fn open_store(cfg: &Config) -> Result<Store, AppError> {
    let store = Store::connect_with(&cfg.dsn, cfg.database.acquire_timeout).await?;
    if store.backend() == crate::store::Backend::Sqlite {
        store.migrate().await?;
    }
    Ok(store)
}

/// `webfinger.jwks.broadcast_keys`, plus the access-token set when access tokens are JWTs.
fn broadcast_sets(cfg: &Config) -> Vec<String> {
    let mut broadcast = cfg.webfinger.jwks.broadcast_keys.clone();
    if cfg.strategies.access_token == AccessTokenStrategy::Jwt
        && !broadcast.iter().any(|b| b == ACCESS_TOKEN_SET)
    {
        broadcast.push(ACCESS_TOKEN_SET.into());
    }
    broadcast
}

/// Creates the ID-token and access-token key sets on first start.
async fn ensure_signing_keys(jwks: &Jwks) -> Result<(), AppError> {
    let started = Instant::now();
    let (a, b) = tokio::join!(
        jwks.ensure_set(ID_TOKEN_SET),
        jwks.ensure_set(ACCESS_TOKEN_SET)
    );
    a.and(b).map_err(AppError::Keys)?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "signing keys ready"
    );
    Ok(())
}

/// `--dev`: the demo login, consent and logout pages.
fn dev_ui(flags: Flags, oauth2: &Arc<OAuth2>, cookie_secrets: &[&[u8]]) -> Option<Arc<DevUi>> {
    flags.dev.then(|| {
        tracing::warn!("development mode: /oauth2/fallbacks/{{login,consent,logout}} serve a demo app that logs anyone in without a password; never use --dev in production");
        Arc::new(DevUi::new(oauth2.clone(), CsrfKeys::new(cookie_secrets)))
    })
}

/// `oidc.subject_identifiers.supported_types` by name, as client validation compares them.
fn subject_type_names(cfg: &Config) -> Vec<String> {
    cfg.oidc
        .subject_identifiers
        .supported_types
        .iter()
        .map(|t| t.as_str().to_string())
        .collect()
}

/// The bounded secret-hashing pool (`oauth2.hashers.*`), its outcome counter registered.
fn secret_verifier(
    cfg: &Config,
    metrics: &Metrics,
) -> Result<Arc<crate::service::secrets::SecretVerifier>, AppError> {
    use crate::service::secrets::{outcomes_metric, HashingSettings, SecretVerifier};
    let hashers = &cfg.oauth2.hashers;
    let argon2 = hashers
        .argon2
        .settings()
        .map_err(|e| AppError::Config(e.to_string()))?;
    let workers = if hashers.workers == 0 {
        std::thread::available_parallelism().map_or(2, usize::from)
    } else {
        hashers.workers
    };
    let outcomes = outcomes_metric().map_err(|e| AppError::Config(e.to_string()))?;
    metrics
        .register(Box::new(outcomes.clone()))
        .map_err(|e| AppError::Config(e.to_string()))?;
    let settings = HashingSettings {
        argon2,
        workers,
        queue_timeout: hashers.queue_timeout,
        failure_delay: hashers.failure_delay,
        trusted_proxies: cfg
            .serve
            .tls
            .allow_termination_from
            .iter()
            .map(|c| c.0)
            .collect(),
    };
    SecretVerifier::start(settings, outcomes).map_err(|e| AppError::Config(e.to_string()))
}

/// Start safety: every stored key must open with the configured secrets, or the server would
/// report ready and then answer 500 on JWKS and every token request (issue 7, point 8).
async fn check_stored_keys(
    store: &Store,
    aead: &Aead,
    sets: &[&str],
    random_secret: bool,
) -> Result<(), AppError> {
    for set in sets {
        for key in store.get_set(set).await? {
            if aead.decrypt(&key.keydata).is_ok() {
                continue;
            }
            let cause = if random_secret {
                "secrets.system is not set, so this process made up a random secret"
            } else {
                "secrets.system differs from the secret they were written with"
            };
            return Err(AppError::Secrets(format!(
                "the stored key set `{set}` cannot be decrypted: {cause}. Set secrets.system \
                 (env SECRETS_SYSTEM) to the secret used when the keys were created; to rotate, \
                 list the new secret first and the old one after it (SECRETS_SYSTEM=new,old). \
                 If the old secret is lost, delete the stored key sets so new ones are generated."
            )));
        }
    }
    Ok(())
}

async fn not_found() -> ApiError {
    ApiError::not_found("The requested resource could not be found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        "The request method is not allowed for this resource.",
    )
}

fn finish(router: Router<AppState>, state: &AppState) -> Router {
    let limits = crate::http::guard::Limits {
        request_timeout: state.config.serve.request_timeout,
    };
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.serve.request_body_limit))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            crate::http::guard::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state.clone())
}

/// Hydra applies public CORS only to the endpoints browsers call directly (x/oauth2cors).
pub fn public_router(state: &AppState) -> Router {
    let cors = &state.config.serve.public.cors;
    let router = if cors.enabled {
        let layer = crate::http::cors::layer(cors);
        let (with_cors, rest) = public::split_router(state.dev_ui.is_some());
        with_cors.layer(layer).merge(rest)
    } else {
        public::router(state.dev_ui.is_some())
    };
    finish(router, state)
}

pub fn admin_router(state: &AppState) -> Router {
    let cors = &state.config.serve.admin.cors;
    let router = if cors.enabled {
        admin::router().layer(crate::http::cors::layer(cors))
    } else {
        admin::router()
    };
    finish(router, state)
}

fn addr(host: &str, port: u16) -> Result<SocketAddr, AppError> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    format!(
        "{}:{port}",
        if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        }
    )
    .parse()
    .map_err(|e| AppError::Bind(format!("{host}:{port}"), format!("{e}")))
}

async fn tls_config(
    cfg: &Config,
) -> Result<Option<axum_server::tls_rustls::RustlsConfig>, AppError> {
    let t = &cfg.serve.tls;
    if t.cert.path.is_empty() && t.cert.base64.0.is_empty() {
        return Ok(None);
    }
    use base64::Engine;
    let read = |p: &crate::config::PathOrBase64, what: &str| -> Result<Vec<u8>, AppError> {
        if !p.path.is_empty() {
            std::fs::read(&p.path)
                .map_err(|e| AppError::Config(format!("serve.tls.{what}.path: {e}")))
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(p.base64.0.trim())
                .map_err(|e| AppError::Config(format!("serve.tls.{what}.base64: {e}")))
        }
    };
    let cert = read(&t.cert, "cert")?;
    let key = read(&t.key, "key")?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem(cert, key)
        .await
        .map(Some)
        .map_err(|e| AppError::Config(format!("serve.tls: {e}")))
}

/// Listener timeouts from `serve.*_timeout`.
struct Timeouts {
    header_read: Duration,
    idle: Duration,
}

impl Timeouts {
    fn from_config(cfg: &Config) -> Timeouts {
        Timeouts {
            header_read: cfg.serve.header_read_timeout,
            idle: cfg.serve.idle_timeout,
        }
    }
}

/// Every listener gets a header-read timeout (slow-loris clients) and an idle limit. hyper's
/// HTTP/1 header-read clock also runs while a keep-alive connection waits for its next request
/// (hyper `proto/h1/conn.rs`), so it bounds idle HTTP/1.1 connections too; HTTP/2 connections
/// are pinged and dropped when the ping goes unanswered.
fn tune(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    t: &Timeouts,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(t.header_read.min(t.idle));
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(t.idle)
        .keep_alive_timeout(t.header_read);
}

/// Binds the requested listeners. Port 0 picks a free port (tests).
pub async fn start(state: AppState, which: Listeners, flags: Flags) -> Result<Running, AppError> {
    let cfg = state.config.clone();
    let tls = tls_config(&cfg).await?;
    let terminators = trusted_terminators(&cfg, tls.is_some(), flags)?;
    let serving = Serving {
        tls,
        terminators,
        timeouts: Timeouts::from_config(&cfg),
        handle: Handle::new(),
    };
    let mut tasks = Vec::new();
    let mut public = None;
    if which != Listeners::Admin {
        let (local, task) = serving.listen("public", &cfg.serve.public, public_router(&state))?;
        public = Some(local);
        tasks.push(task);
    }
    let mut admin = None;
    if which != Listeners::Public {
        let (local, task) = serving.listen("admin", &cfg.serve.admin, admin_router(&state))?;
        admin = Some(local);
        tasks.push(task);
    }
    let janitor = start_janitor(&state);
    Ok(Running {
        public,
        admin,
        handle: serving.handle,
        tasks,
        janitor,
        state,
    })
}

/// Plain HTTP needs `--dev`/`--dangerous-force-http`, or TLS terminated in front of us by
/// the networks of `serve.tls.allow_termination_from`, which are then enforced.
fn trusted_terminators(
    cfg: &Config,
    tls: bool,
    flags: Flags,
) -> Result<Option<middleware::TrustedTerminators>, AppError> {
    if tls || flags.insecure_http {
        return Ok(None);
    }
    let networks = &cfg.serve.tls.allow_termination_from;
    if networks.is_empty() {
        return Err(AppError::Config(
            "TLS is required: set serve.tls.cert.path and serve.tls.key.path, or pass --dev / --dangerous-force-http".into(),
        ));
    }
    Ok(Some(middleware::TrustedTerminators(Arc::new(
        networks.iter().map(|c| c.0).collect(),
    ))))
}

/// What the listeners of this process share.
struct Serving {
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    terminators: Option<middleware::TrustedTerminators>,
    timeouts: Timeouts,
    handle: Handle,
}

type MakeService = axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr>;

impl Serving {
    /// Binds `listener` and serves `router` on it: the bound address and the serving task.
    fn listen(
        &self,
        name: &str,
        listener: &crate::config::Listener,
        router: Router,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), AppError> {
        let (std_listener, local) = bind(listener)?;
        let router = match &self.terminators {
            Some(t) => router.layer(axum::middleware::from_fn_with_state(
                t.clone(),
                middleware::require_tls_termination,
            )),
            None => router,
        };
        let task = self.spawn(std_listener, router.into_make_service_with_connect_info());
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!("{name} listener on {scheme}://{local}");
        Ok((local, task))
    }

    fn spawn(
        &self,
        std_listener: std::net::TcpListener,
        svc: MakeService,
    ) -> tokio::task::JoinHandle<()> {
        let h = self.handle.clone();
        match &self.tls {
            Some(t) => {
                let mut server = axum_server::from_tcp_rustls(std_listener, t.clone())
                    .handle(h)
                    .map(JsonErrorsAcceptor);
                tune(server.http_builder(), &self.timeouts);
                tokio::spawn(async move {
                    if let Err(e) = server.serve(svc).await {
                        tracing::error!(error = %e, "listener stopped");
                    }
                })
            }
            None => {
                let mut server = axum_server::from_tcp(std_listener)
                    .handle(h)
                    .map(JsonErrorsAcceptor);
                tune(server.http_builder(), &self.timeouts);
                tokio::spawn(async move {
                    if let Err(e) = server.serve(svc).await {
                        tracing::error!(error = %e, "listener stopped");
                    }
                })
            }
        }
    }
}

/// A non-blocking socket bound to the listener's host and port, and its local address.
fn bind(
    listener: &crate::config::Listener,
) -> Result<(std::net::TcpListener, SocketAddr), AppError> {
    let socket = addr(&listener.host, listener.port)?;
    let fail = |e: std::io::Error| AppError::Bind(socket.to_string(), e.to_string());
    let std_listener = std::net::TcpListener::bind(socket).map_err(fail)?;
    std_listener.set_nonblocking(true).map_err(fail)?;
    let local = std_listener.local_addr().map_err(fail)?;
    Ok((std_listener, local))
}

/// Starts the in-process janitor when `janitor.interval` is not zero: the same clean-up as
/// `portcullis janitor --tokens --requests`, with the configured lifespans. Every replica may
/// run it; concurrent runs are safe.
fn start_janitor(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    use crate::service::janitor::{self, Janitor, Options};
    let interval = state.config.janitor.every()?;
    tracing::info!(
        interval = %crate::config::format_duration(interval),
        "in-process janitor on"
    );
    Some(janitor::spawn(
        Janitor::new(state.store.clone()).counting(state.metrics.janitor_deleted.clone()),
        Options::from_config(&state.config),
        interval,
        state.oauth2.clock(),
        state.metrics.janitor_runs.clone(),
    ))
}

/// Waits for SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
