//! The shared fixture: a server built by `app::build_with_clock` on an in-memory SQLite
//! database, with a clock the test moves by hand, clients made through the client service, and
//! a browser that carries the flow cookies through the login/consent state machine.
//!
//! Everything a test needs from the service layer is named here once, so a type that moves
//! inside `service::oauth2` is followed by one `use` line.
use crate::app::{self, Flags};
use crate::config::Config;
use crate::crypto::aead::Aead;
use crate::domain::client::Client;
use crate::domain::jwk::{Jwk, ACCESS_TOKEN_SET, ID_TOKEN_SET};
use crate::service::clients::Clients;
use crate::service::jwks::Jwks;
use crate::service::oauth2::OAuth2;
use crate::service::Clock;
use crate::store::Store;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use url::Url;

pub use crate::domain::flow::Denial;
pub use crate::oauth2::OAuthError;
pub use crate::service::oauth2::authorize::{BrowserCookies, CookieOp, Params, Redirect};
pub use crate::service::oauth2::flows::{AcceptConsent, AcceptLogin, FlowError};
pub use crate::service::oauth2::introspect::Userinfo;
pub use crate::service::oauth2::token::TokenResponse;
pub use crate::service::oauth2::ClientCredentials;

pub const SECRET: &str = "service-test-system-secret-0123";
pub const ISSUER: &str = "http://127.0.0.1:4444/";
pub const LOGIN_URL: &str = "https://login.example/login";
pub const CONSENT_URL: &str = "https://consent.example/consent";
pub const ERROR_URL: &str = "https://error.example/error";
/// The redirect URI and secret of the default client `app`.
pub const REDIRECT: &str = "https://app.example/cb";
pub const CLIENT_SECRET: &str = "app-secret-0123456789";
pub const STATE: &str = "state-0123456789";
/// The PKCE pair of RFC 7636, appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Defaults of `ttl.*` the tests count with.
pub const TTL_ACCESS: i64 = 3600;
pub const TTL_CODE: i64 = 600;
pub const TTL_FLOW: i64 = 3600;
pub const TTL_REFRESH: i64 = 720 * 3600;
/// `service::changes::BOUND` plus slack for a loaded test machine.
pub const OBSERVED_BOUND: Duration = Duration::from_millis(2500);

/// Request parameters in a table row.
pub type Pairs<'a> = &'a [(&'a str, &'a str)];

/// A clock that stands still until the test moves it.
#[derive(Debug)]
pub struct TestClock(AtomicI64);

impl TestClock {
    fn starting_now() -> TestClock {
        TestClock(AtomicI64::new(
            time::OffsetDateTime::now_utc().unix_timestamp(),
        ))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(self.unix())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

/// RSA-4096 generation takes seconds: every server of this test binary shares one pair.
fn shared_keys() -> Vec<Jwk> {
    static KEYS: OnceLock<Vec<Jwk>> = OnceLock::new();
    KEYS.get_or_init(|| crate::crypto::jwk::generate("RS256", "svc-tests", "sig").unwrap())
        .clone()
}

/// The configuration, as Hydra's environment variables name it; `overrides` win.
fn config(dsn: &str, overrides: &[(&str, &str)]) -> Config {
    let base = [
        ("DSN", dsn),
        ("URLS_SELF_ISSUER", ISSUER),
        ("URLS_LOGIN", LOGIN_URL),
        ("URLS_CONSENT", CONSENT_URL),
        ("URLS_ERROR", ERROR_URL),
        ("SECRETS_SYSTEM", SECRET),
        // Cheap secret hashing and no failure tarpit: the tests measure rules, not costs.
        ("OAUTH2_HASHERS_ARGON2_MEMORY", "64"),
        ("OAUTH2_HASHERS_ARGON2_ITERATIONS", "1"),
        ("OAUTH2_HASHERS_WORKERS", "1"),
        ("OAUTH2_HASHERS_FAILURE_DELAY", "0s"),
    ];
    let env: Vec<(String, String)> = overrides
        .iter()
        .chain(base.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load_from(None, &env).unwrap()
}

/// One service instance: the objects the HTTP handlers call.
pub struct Server {
    pub clock: Arc<TestClock>,
    pub oauth2: Arc<OAuth2>,
    pub clients: Arc<Clients>,
    pub jwks: Arc<Jwks>,
    dsn: String,
    overrides: Vec<(String, String)>,
    /// Holds the named in-memory database open for every instance on it.
    keeper: Store,
}

impl Server {
    /// A fresh in-memory database with the shared signing keys, and an instance on it.
    pub async fn start(overrides: &[(&str, &str)]) -> Server {
        // A named in-memory database, shared by every connection of this process that names
        // it: SQLite shares the cache only for a `file:` URI name, whose colon is
        // percent-encoded here so the DSN stays a parseable URL.
        let dsn = format!(
            "sqlite:file%3Asvc_{}?mode=memory&cache=shared",
            crate::crypto::uuid_v4().simple()
        );
        let keeper = Store::connect(&dsn).await.unwrap();
        keeper.migrate().await.unwrap();
        let clock = Arc::new(TestClock::starting_now());
        let seed = Jwks::new(
            keeper.clone(),
            Arc::new(Aead::new(&[SECRET])),
            clock.clone(),
            vec![],
        );
        let keys = shared_keys();
        seed.replace_set(ID_TOKEN_SET, keys.clone()).await.unwrap();
        seed.replace_set(ACCESS_TOKEN_SET, keys).await.unwrap();
        let overrides: Vec<(String, String)> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::build(dsn, overrides, clock, keeper).await
    }

    async fn build(
        dsn: String,
        overrides: Vec<(String, String)>,
        clock: Arc<TestClock>,
        keeper: Store,
    ) -> Server {
        let pairs: Vec<(&str, &str)> = overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let cfg = config(&dsn, &pairs);
        let flags = Flags {
            insecure_http: true,
            dev: false,
        };
        let state = app::build_with_clock(cfg, flags, clock.clone())
            .await
            .unwrap();
        Server {
            clock,
            oauth2: state.oauth2.clone(),
            clients: state.clients.clone(),
            jwks: state.jwks.clone(),
            dsn,
            overrides,
            keeper,
        }
    }

    /// Another instance on the same database and clock, with its own caches (a replica).
    pub async fn replica(&self) -> Server {
        Self::build(
            self.dsn.clone(),
            self.overrides.clone(),
            self.clock.clone(),
            self.keeper.clone(),
        )
        .await
    }

    /// Registers a client: the default `app` (confidential, code + refresh + client
    /// credentials) with the top-level fields of `fields` replacing its own.
    pub async fn client(&self, fields: Value) -> Client {
        self.clients.create(client_model(fields)).await.unwrap()
    }

    /// `POST /oauth2/token` with these form fields.
    pub async fn token(
        &self,
        form: &[(&str, &str)],
        creds: &ClientCredentials,
    ) -> Result<TokenResponse, OAuthError> {
        self.oauth2.token(&params(form), creds).await
    }

    /// Redeems a code at the token endpoint as `app` would, `form` replacing fields.
    pub async fn exchange(
        &self,
        code: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, OAuthError> {
        let base = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ];
        let form = merged(&base, form);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.token(&form, &basic("app", CLIENT_SECRET)).await
    }

    /// Uses a refresh token as `app` would.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, OAuthError> {
        self.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            &basic("app", CLIENT_SECRET),
        )
        .await
    }

    /// Whether introspection calls the token active.
    pub async fn active(&self, token: &str) -> bool {
        self.oauth2.introspect(token, "", "").await.unwrap().active
    }

    /// Runs one authorization request through login and consent; returns the last redirect.
    pub async fn flow(
        &self,
        browser: &mut Browser,
        request: &[(&str, &str)],
        login: AcceptLogin,
        consent: AcceptConsent,
    ) -> Redirect {
        let r = browser.authorize(self, request).await;
        let challenge = param(&r, "login_challenge")
            .unwrap_or_else(|| panic!("no login challenge in {}", r.location));
        let back = self.oauth2.accept_login(&challenge, login).await.unwrap();
        let r = browser.follow(self, &back).await;
        let challenge = param(&r, "consent_challenge")
            .unwrap_or_else(|| panic!("no consent challenge in {}", r.location));
        let back = self
            .oauth2
            .accept_consent(&challenge, consent)
            .await
            .unwrap();
        browser.follow(self, &back).await
    }

    /// An authorization code for `alice`, every requested scope granted.
    pub async fn code(&self, request: &[(&str, &str)]) -> String {
        let wanted = merged(&auth_base(), request);
        let scope = wanted
            .iter()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        let r = self
            .flow(
                &mut Browser::default(),
                request,
                login("alice"),
                grant(&scopes),
            )
            .await;
        param(&r, "code").unwrap_or_else(|| panic!("no code in {}", r.location))
    }

    /// Tokens for `alice` through the code flow of `app`, with this `scope` requested and granted.
    pub async fn tokens(&self, scope: &str) -> TokenResponse {
        let code = self.code(&[("scope", scope)]).await;
        self.exchange(&code, &[]).await.unwrap()
    }

    /// The claims of an ID token, its signature checked with the published keys.
    pub async fn id_claims(&self, id_token: &str) -> Value {
        let keys = self.jwks.id_token_public_keys().await.unwrap();
        crate::crypto::jws::verify_ignoring_expiry(id_token, &keys).unwrap()
    }
}

/// The default client `app`, `fields` replacing its top-level fields.
pub fn client_model(fields: Value) -> Client {
    let mut body = json!({
        "client_id": "app",
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types": ["code"],
        "scope": "openid offline offline_access profile photos.*",
        "audience": ["https://api.example/v1"],
    });
    if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
        b.extend(f);
    }
    serde_json::from_value(body).unwrap()
}

/// The default authorization request of `app`.
pub fn auth_base() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client_id", "app"),
        ("response_type", "code"),
        ("scope", "openid offline"),
        ("state", STATE),
        ("redirect_uri", REDIRECT),
    ]
}

/// `base` with `over` replacing equal keys and adding new ones (an empty value stands for an
/// absent parameter: the service reads both as "").
pub fn merged(base: &[(&str, &str)], over: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in over {
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => out.push((k.to_string(), v.to_string())),
        }
    }
    out
}

pub fn params(pairs: &[(&str, &str)]) -> Params {
    Params(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub fn basic(id: &str, secret: &str) -> ClientCredentials {
    ClientCredentials {
        basic: Some((id.into(), secret.into())),
        ..ClientCredentials::default()
    }
}

/// `client_secret_post`, or a public client's bare `client_id` when `secret` is None.
pub fn form_creds(id: &str, secret: Option<&str>) -> ClientCredentials {
    ClientCredentials {
        form_id: id.into(),
        form_secret: secret.map(str::to_string),
        ..ClientCredentials::default()
    }
}

pub fn login(subject: &str) -> AcceptLogin {
    AcceptLogin {
        subject: subject.into(),
        ..AcceptLogin::default()
    }
}

pub fn grant(scopes: &[&str]) -> AcceptConsent {
    AcceptConsent {
        grant_scope: scopes.iter().map(|s| s.to_string()).collect(),
        ..AcceptConsent::default()
    }
}

/// Every parameter a redirect delivers: the form_post fields, else query and fragment.
pub fn delivered(r: &Redirect) -> Vec<(String, String)> {
    if let Some(form) = &r.form {
        return form.clone();
    }
    let Ok(u) = Url::parse(&r.location) else {
        return vec![];
    };
    let mut out: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    out.extend(url::form_urlencoded::parse(u.fragment().unwrap_or("").as_bytes()).into_owned());
    out
}

pub fn param(r: &Redirect, name: &str) -> Option<String> {
    delivered(r)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The OAuth error a redirect carries: `error` and `error_description`.
pub fn redirect_error(r: &Redirect) -> (String, String) {
    (
        param(r, "error").unwrap_or_else(|| panic!("no error in {}", r.location)),
        param(r, "error_description").unwrap_or_default(),
    )
}

/// Asserts an error by name and a part of its hint.
#[track_caller]
pub fn assert_oauth(e: &OAuthError, name: &str, hint: &str, case: &str) {
    assert_eq!(e.name, name, "{case}: {e:?}");
    assert!(
        e.hint.contains(hint),
        "{case}: hint {:?} lacks {hint:?}",
        e.hint
    );
}

#[track_caller]
pub fn err<T: std::fmt::Debug>(r: Result<T, OAuthError>, case: &str) -> OAuthError {
    match r {
        Ok(v) => panic!("{case}: expected an error, got {v:?}"),
        Err(e) => e,
    }
}

/// A browser: the flow cookies the server set, sent back on every authorization request.
#[derive(Debug, Default)]
pub struct Browser {
    pub cookies: BrowserCookies,
}

impl Browser {
    fn keep(&mut self, ops: &[CookieOp]) {
        for op in ops {
            match op {
                CookieOp::LoginCsrf(v) => self.cookies.login_csrf = Some(v.clone()),
                CookieOp::ConsentCsrf(v) => self.cookies.consent_csrf = Some(v.clone()),
                CookieOp::Session { sid, .. } => self.cookies.session = Some(sid.clone()),
                CookieOp::ClearSession => self.cookies.session = None,
            }
        }
    }

    /// `GET /oauth2/auth`: the default request of `app` with `over` applied.
    pub async fn authorize(&mut self, srv: &Server, over: &[(&str, &str)]) -> Redirect {
        let pairs = merged(&auth_base(), over);
        let r = srv
            .oauth2
            .authorize(&Params(pairs), "", &self.cookies)
            .await;
        self.keep(&r.cookies);
        r
    }

    /// Follows a URL the login or consent API answered with back to `/oauth2/auth`.
    pub async fn follow(&mut self, srv: &Server, url: &str) -> Redirect {
        let u = Url::parse(url).unwrap();
        let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        let r = srv
            .oauth2
            .authorize(&Params(pairs), u.query().unwrap_or(""), &self.cookies)
            .await;
        self.keep(&r.cookies);
        r
    }
}

/// Evaluates `$cond` until it holds, failing after `OBSERVED_BOUND`; yields the time it took.
macro_rules! eventually {
    ($what:expr, $cond:expr) => {{
        let started = std::time::Instant::now();
        loop {
            if $cond {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < $crate::service::tests::fixture::OBSERVED_BOUND,
                "{} not seen within {:?}",
                $what,
                $crate::service::tests::fixture::OBSERVED_BOUND
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }};
}
pub(crate) use eventually;
