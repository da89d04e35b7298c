//! Discovery, health, readiness, version and metrics.
#![allow(clippy::unwrap_used)]
use crate::harness::{between, json, TestApp};
use serde_json::json;

#[tokio::test]
async fn discovery_document() {
    let app = TestApp::spawn().await;
    let res = app
        .get(app.public("/.well-known/openid-configuration"))
        .await;
    assert_eq!(res.status(), 200);
    let d = json(res).await;
    assert_eq!(d["issuer"], "http://127.0.0.1:4444/");
    assert_eq!(
        d["authorization_endpoint"],
        "http://127.0.0.1:4444/oauth2/auth"
    );
    assert_eq!(d["token_endpoint"], "http://127.0.0.1:4444/oauth2/token");
    assert_eq!(d["jwks_uri"], "http://127.0.0.1:4444/.well-known/jwks.json");
    assert_eq!(d["userinfo_endpoint"], "http://127.0.0.1:4444/userinfo");
    assert_eq!(
        d["revocation_endpoint"],
        "http://127.0.0.1:4444/oauth2/revoke"
    );
    assert_eq!(
        d["end_session_endpoint"],
        "http://127.0.0.1:4444/oauth2/sessions/logout"
    );
    assert_eq!(d["subject_types_supported"], json!(["public"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert!(
        d.get("code_challenge_methods_supported").is_none(),
        "not in the v1.9.2 model"
    );
    assert_eq!(
        d["scopes_supported"],
        json!(["offline_access", "offline", "openid"])
    );
    assert_eq!(
        d["grant_types_supported"],
        json!([
            "authorization_code",
            "implicit",
            "client_credentials",
            "refresh_token"
        ])
    );
    assert_eq!(d["frontchannel_logout_supported"], true);
    assert!(d.get("registration_endpoint").is_none());
    app.stop().await;

    let app = TestApp::spawn_with(|c| {
        c.webfinger.oidc_discovery.include_code_challenge_methods = true;
        c.webfinger.oidc_discovery.client_registration_url = "https://reg.example/".into();
    })
    .await;
    let d = app
        .get_json(app.public("/.well-known/openid-configuration"))
        .await;
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["registration_endpoint"], "https://reg.example/");
    app.stop().await;
}

#[tokio::test]
async fn health_version_metrics() {
    let app = TestApp::spawn().await;
    for base in [&app.public, &app.admin] {
        let res = app.get(format!("{base}/health/alive")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(json(res).await, json!({"status": "ok"}));
        let res = app.get(format!("{base}/health/ready")).await;
        assert_eq!(json(res).await, json!({"status": "ok"}));
    }
    let v = app.get_json(app.admin("/version")).await;
    assert_eq!(v, json!({"version": env!("CARGO_PKG_VERSION")}));
    assert_eq!(app.get(app.public("/version")).await.status(), 404);
    let res = app.get(app.admin("/metrics/prometheus")).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.contains("http_requests_total{endpoint=\"/version\",method=\"GET\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("hydra_response_time_seconds_bucket{endpoint=\"/version\""));
    app.stop().await;
}

/// Readiness follows the database: a TCP relay in front of PostgreSQL is closed and reopened.
#[tokio::test]
async fn readiness_flips_with_the_database() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    if url.is_empty() {
        return;
    }
    let app = TestApp::spawn().await;
    let target = between(&url, "@", '/');
    let relay = Relay::start(target.clone()).await;
    let port = relay.port;
    let db_name = app.dsn.rsplit('/').next().unwrap().to_string();
    let user = url
        .trim_start_matches("postgres://")
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let app = app
        .restart_with(|c| c.dsn = format!("postgres://{user}@127.0.0.1:{port}/{db_name}"))
        .await;
    let ready = |app: &TestApp| app.http.get(app.admin("/health/ready")).send();
    assert_eq!(ready(&app).await.unwrap().status(), 200);
    relay.stop().await;
    let res = ready(&app).await.unwrap();
    assert_eq!(res.status(), 503);
    let body = json(res).await;
    assert!(body["errors"]["database"].is_string());
    let res = app.get(app.public("/health/ready")).await;
    assert_eq!(res.status(), 503);
    let relay = Relay::start_on(target, port).await;
    let mut ok = false;
    for _ in 0..50 {
        if ready(&app).await.unwrap().status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "readiness did not come back");
    app.stop().await;
    relay.stop().await;
}

struct Relay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        Self::start_on(target, 0).await
    }

    async fn start_on(target: String, port: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { port, task }
    }

    /// Aborting the accept loop drops its JoinSet, which aborts every relayed connection.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Without `--dev`/`--dangerous-force-http` an http issuer is refused with a clear message,
/// and so is serving without TLS material.
#[tokio::test]
async fn plain_http_needs_an_explicit_flag() {
    use portcullis::app::{self, Flags, Listeners};
    let secure = Flags {
        insecure_http: false,
        dev: false,
    };
    let cfg = crate::harness::base_config("memory");
    let err = app::build(cfg, secure).await.unwrap_err().to_string();
    assert!(
        err.contains("urls.self.issuer") && err.contains("must use https"),
        "{err}"
    );
    let mut cfg = crate::harness::base_config("memory");
    cfg.urls.self_.issuer = "https://auth.example/".into();
    let state = app::build(cfg, secure).await.unwrap();
    let err = app::start(state, Listeners::All, secure)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("TLS is required"), "{err}");
}

/// The `Access-Control-Allow-Origin` answered to a GET of `url` from `origin`.
async fn allowed_origin(app: &TestApp, url: String, origin: &str) -> Option<String> {
    let res = app.get_with(url, &[("origin", origin)]).await;
    let header = res.headers().get("access-control-allow-origin");
    header.map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn cors_when_enabled() {
    let app = TestApp::spawn_with(|c| {
        c.serve.public.cors.enabled = true;
        c.serve.public.cors.allowed_origins = vec!["https://app.example".into()];
        c.serve.admin.cors.enabled = true;
    })
    .await;
    let res = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            app.public("/.well-known/jwks.json"),
        )
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let jwks = app.public("/.well-known/jwks.json");
    assert_eq!(
        allowed_origin(&app, jwks, "https://evil.example").await,
        None
    );
    // Health is not a CORS endpoint on the public listener.
    let alive = app.public("/health/alive");
    assert_eq!(
        allowed_origin(&app, alive, "https://app.example").await,
        None
    );
    // Admin: any origin when the list is empty.
    let alive = app.admin("/health/alive");
    let allowed = allowed_origin(&app, alive, "https://x.example").await;
    assert_eq!(allowed.as_deref(), Some("https://x.example"));
    app.stop().await;
}
