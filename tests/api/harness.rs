//! Test harness: fresh database per test, shared pre-generated RSA keys, HTTP helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
use portcullis::app::{self, Flags, Listeners, Running};
use portcullis::config::{Config, Secret};
use portcullis::crypto::aead::Aead;
use portcullis::domain::jwk::{Jwk, ACCESS_TOKEN_SET, ID_TOKEN_SET};
use portcullis::service::jwks::Jwks;
use portcullis::service::{Clock, SystemClock};
use portcullis::store::Store;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::OnceCell;

pub const SECRET: &str = "test-system-secret-0123456789";

static KEYS: OnceCell<Vec<Jwk>> = OnceCell::const_new();

/// RSA-4096 generation takes seconds: every test shares one pair.
pub async fn shared_keys() -> Vec<Jwk> {
    KEYS.get_or_init(|| async {
        tokio::task::spawn_blocking(|| {
            portcullis::crypto::jwk::generate("RS256", "shared", "sig").unwrap()
        })
        .await
        .unwrap()
    })
    .await
    .clone()
}

/// System time plus an offset the test moves forward (no sleeping).
#[derive(Debug, Default)]
pub struct TestClock {
    offset: AtomicI64,
}

impl TestClock {
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
            + time::Duration::seconds(self.offset.load(Ordering::SeqCst))
    }
}

pub struct TestApp {
    pub clock: Arc<TestClock>,
    pub public: String,
    pub admin: String,
    pub http: reqwest::Client,
    pub dsn: String,
    running: Option<Running>,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Postgres { admin_url: String, db: String },
}

pub fn base_config(dsn: &str) -> Config {
    let mut cfg = Config {
        dsn: dsn.to_string(),
        ..Config::default()
    };
    cfg.serve.public.host = "127.0.0.1".into();
    cfg.serve.admin.host = "127.0.0.1".into();
    cfg.serve.public.port = 0;
    cfg.serve.admin.port = 0;
    cfg.urls.self_.issuer = "http://127.0.0.1:4444/".into();
    cfg.secrets.system = vec![Secret(SECRET.into())];
    cfg.serve.request_body_limit = 64 * 1024;
    // Wrong secrets are answered at once in tests (timing bounds measure the server, not the
    // tarpit); the release-binary flood test keeps the 1 s default and asserts it.
    cfg.oauth2.hashers.failure_delay = std::time::Duration::ZERO;
    cfg
}

/// A fresh, migrated database with the shared signing keys, and its DSN.
async fn fresh_database() -> (String, Cleanup) {
    let name = format!("pc_{}", uuid::Uuid::new_v4().simple());
    let (dsn, cleanup) = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let admin = Store::connect(&url).await.unwrap();
            admin
                .execute_raw(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            admin.close().await;
            let base = url.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
            (
                format!("{base}/{name}"),
                Cleanup::Postgres {
                    admin_url: url,
                    db: name,
                },
            )
        }
        _ => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            (format!("sqlite://{}", path.display()), Cleanup::File(path))
        }
    };
    let store = Store::connect(&dsn).await.unwrap();
    store.migrate().await.unwrap();
    let jwks = Jwks::new(
        store.clone(),
        Arc::new(Aead::new(&[SECRET])),
        Arc::new(SystemClock),
        vec![],
    );
    let keys = shared_keys().await;
    jwks.replace_set(ID_TOKEN_SET, keys.clone()).await.unwrap();
    jwks.replace_set(ACCESS_TOKEN_SET, keys).await.unwrap();
    store.close().await;
    (dsn, cleanup)
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(edit: impl FnOnce(&mut Config)) -> TestApp {
        let (dsn, cleanup) = fresh_database().await;
        let mut cfg = base_config(&dsn);
        edit(&mut cfg);
        Self::start(cfg, cleanup).await
    }

    /// Without `--dev`/`--dangerous-force-http`: an https issuer and TLS expected in front.
    pub async fn spawn_secure_with(edit: impl FnOnce(&mut Config)) -> TestApp {
        let (dsn, cleanup) = fresh_database().await;
        let mut cfg = base_config(&dsn);
        cfg.urls.self_.issuer = "https://127.0.0.1:4444/".into();
        edit(&mut cfg);
        Self::start_flags(
            cfg,
            cleanup,
            Flags {
                insecure_http: false,
                dev: false,
            },
        )
        .await
    }

    /// As `serve all --dev`: plain HTTP and the demo login/consent/logout pages.
    pub async fn spawn_dev_with(edit: impl FnOnce(&mut Config)) -> TestApp {
        let (dsn, cleanup) = fresh_database().await;
        let mut cfg = base_config(&dsn);
        edit(&mut cfg);
        Self::start_flags(
            cfg,
            cleanup,
            Flags {
                insecure_http: true,
                dev: true,
            },
        )
        .await
    }

    async fn start(cfg: Config, cleanup: Cleanup) -> TestApp {
        Self::start_flags(
            cfg,
            cleanup,
            Flags {
                insecure_http: true,
                dev: false,
            },
        )
        .await
    }

    async fn start_flags(cfg: Config, cleanup: Cleanup, flags: Flags) -> TestApp {
        let dsn = cfg.dsn.clone();
        let clock = Arc::new(TestClock::default());
        let state = app::build_with_clock(cfg, flags, clock.clone())
            .await
            .unwrap();
        let running = app::start(state, Listeners::All, flags).await.unwrap();
        TestApp {
            clock,
            public: format!("http://{}", running.public.unwrap()),
            admin: format!("http://{}", running.admin.unwrap()),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
            dsn,
            running: Some(running),
            cleanup,
        }
    }

    /// Restarts on the same database with another configuration (e.g. rotated secrets).
    pub async fn restart_with(mut self, edit: impl FnOnce(&mut Config)) -> TestApp {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        let mut cfg = base_config(&self.dsn);
        edit(&mut cfg);
        let cleanup =
            std::mem::replace(&mut self.cleanup, Cleanup::File(std::path::PathBuf::new()));
        Self::start(cfg, cleanup).await
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        match &self.cleanup {
            Cleanup::File(p) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
                }
            }
            Cleanup::Postgres { admin_url, db } => {
                let admin = Store::connect(admin_url).await.unwrap();
                let _ = admin
                    .execute_raw(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .await;
                admin.close().await;
            }
        }
    }

    pub async fn get(&self, url: String) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    pub async fn delete(&self, url: String) -> reqwest::Response {
        self.http.delete(url).send().await.unwrap()
    }

    pub async fn post_json(&self, url: String, body: &serde_json::Value) -> reqwest::Response {
        self.http.post(url).json(body).send().await.unwrap()
    }

    pub async fn put_json(&self, url: String, body: &serde_json::Value) -> reqwest::Response {
        self.http.put(url).json(body).send().await.unwrap()
    }

    pub async fn post_form(&self, url: String, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(url).form(form).send().await.unwrap()
    }

    /// POST `body` as JSON to `path` on the admin API.
    pub async fn admin_post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.post_json(self.admin(path), body).await
    }

    /// PUT `body` as JSON to `path` on the admin API.
    pub async fn admin_put(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.put_json(self.admin(path), body).await
    }

    /// GET `url` and its JSON body (whatever the status).
    pub async fn get_json(&self, url: String) -> serde_json::Value {
        json(self.get(url).await).await
    }

    /// GET `url` with the request `headers`.
    pub async fn get_with(&self, url: String, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// The Prometheus exposition of the admin API.
    pub async fn metrics_text(&self) -> String {
        let res = self.get(self.admin("/metrics/prometheus")).await;
        res.text().await.unwrap()
    }

    /// The `kid`s of the public JWKS, in its order.
    pub async fn jwks_kids(&self) -> Vec<String> {
        let jwks = self.get_json(self.public("/.well-known/jwks.json")).await;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    }

    /// POST /keys/`set`: generates a signing key of `alg` named `kid`.
    pub async fn generate_key(&self, set: &str, alg: &str, kid: &str) -> reqwest::Response {
        let body = serde_json::json!({"alg": alg, "use": "sig", "kid": kid});
        self.admin_post(&format!("/keys/{set}"), &body).await
    }

    /// GET with a bearer token.
    pub async fn get_bearer(&self, url: String, token: &str) -> reqwest::Response {
        self.http.get(url).bearer_auth(token).send().await.unwrap()
    }

    /// How many access-token rows the store holds.
    pub async fn access_tokens(&self) -> i64 {
        self.state()
            .store
            .count_tokens(portcullis::domain::token::TokenKind::Access)
            .await
            .unwrap()
    }

    pub fn state(&self) -> &portcullis::http::AppState {
        &self.running.as_ref().unwrap().state
    }

    pub fn admin(&self, path: &str) -> String {
        format!("{}{path}", self.admin)
    }

    pub fn public(&self, path: &str) -> String {
        format!("{}{path}", self.public)
    }
}

pub async fn json(res: reqwest::Response) -> serde_json::Value {
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Sends a prepared request.
pub async fn send(req: reqwest::RequestBuilder) -> reqwest::Response {
    req.send().await.unwrap()
}

/// The sorted top-level keys of a JSON object.
pub fn keys_of(v: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// Runs `portcullis <args>` in-process; returns (exit code, stdout, stderr).
pub async fn cli(args: &[&str]) -> (i32, String, String) {
    let mut argv = vec!["portcullis".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = portcullis::cli::execute(argv, &mut out, &mut err).await;
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// Runs the command line `line` in-process, as a shell would split it (words separated by
/// spaces; single quotes keep a word with spaces together).
pub async fn cli_line(line: &str) -> (i32, String, String) {
    let words = words(line);
    cli(&words.iter().map(String::as_str).collect::<Vec<_>>()).await
}

/// Splits a command line into words: spaces separate, single quotes group.
pub fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            ' ' if !quoted => words.extend(word.take()),
            _ => word.get_or_insert_with(String::new).push(ch),
        }
    }
    words.extend(word);
    words
}

/// Asserts `res` has `status` and a body containing `needle`.
pub async fn assert_body_contains(res: reqwest::Response, status: u16, needle: &str) {
    assert_eq!(res.status(), status);
    let body = res.text().await.unwrap();
    assert!(body.contains(needle), "{body}");
}

/// A new, empty directory under the system's temporary directory.
pub fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts a JSON error answer: `status`, and exactly `error` and `error_description`.
pub async fn assert_error(res: reqwest::Response, status: u16, error: &str, description: &str) {
    assert_eq!(res.status(), status);
    let e = json(res).await;
    assert_eq!(e["error"], error, "{e}");
    assert_eq!(e["error_description"], description, "{e}");
}

/// The text of `s` after the first `start` and before the next `end`.
pub fn between(s: &str, start: &str, end: char) -> String {
    let after = s.split_once(start).unwrap().1;
    after.split(end).next().unwrap().to_string()
}

/// Asserts `status` and the JSON `error` of an answer; returns the body.
pub async fn assert_error_is(
    res: reqwest::Response,
    status: u16,
    error: &str,
) -> serde_json::Value {
    assert_eq!(res.status(), status);
    let body = json(res).await;
    assert_eq!(body["error"], error, "{body}");
    body
}
