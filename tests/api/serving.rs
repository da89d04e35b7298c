//! Listener selection, TLS, and graceful shutdown.
#![allow(clippy::unwrap_used)]
use crate::harness::{base_config, json, words, TestApp};
use portcullis::app::{self, Flags, Listeners};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn serve_public_or_admin_alone() {
    let insecure = Flags {
        insecure_http: true,
        dev: false,
    };
    for (which, public, admin) in [
        (Listeners::Public, true, false),
        (Listeners::Admin, false, true),
    ] {
        let state = app::build(base_config("memory"), insecure).await.unwrap();
        let running = app::start(state, which, insecure).await.unwrap();
        assert_eq!(running.public.is_some(), public);
        assert_eq!(running.admin.is_some(), admin);
        let addr = running.public.or(running.admin).unwrap();
        let res = reqwest::get(format!("http://{addr}/health/alive"))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        running.shutdown().await;
    }
}

/// TLS from `serve.tls.{cert,key}.path`, with a self-signed certificate made by openssl.
#[tokio::test]
async fn serves_tls_from_pem_files() {
    let dir = super::harness::temp_dir("pc-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args(words(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1",
        ))
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut cfg = base_config("memory");
    cfg.urls.self_.issuer = "https://127.0.0.1:4444/".into();
    cfg.serve.tls.cert.path = cert.display().to_string();
    cfg.serve.tls.key.path = key.display().to_string();
    let secure = Flags {
        insecure_http: false,
        dev: false,
    };
    let state = app::build(cfg, secure).await.unwrap();
    let running = app::start(state, Listeners::All, secure).await.unwrap();
    let url = format!("https://{}/health/alive", running.public.unwrap());
    let out = tokio::process::Command::new("curl")
        .args(["-sk", &url])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"status\":\"ok\"}");
    let plain = reqwest::get(format!("http://{}/health/alive", running.public.unwrap())).await;
    assert!(
        plain.is_err() || plain.unwrap().status() != 200,
        "plain HTTP must not be served"
    );
    running.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// Waits until the request is in the server's hands: a connection to `port` has received
/// bytes and the server has read them all (`ss`: receive queue empty, bytes_received > 0).
/// Panics after `limit`.
async fn wait_for_request_read(port: u16, limit: Duration) {
    let start = Instant::now();
    loop {
        let filter = format!("( sport = :{port} )");
        let out = tokio::process::Command::new("ss")
            .args(["-tniH", "state", "established", &filter])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ss: {stderr}");
        if request_read(&String::from_utf8_lossy(&out.stdout)) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "no request was read on port {port} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// In `ss -tniH state established` output (per socket a line starting with Recv-Q, then an
/// indented line of details): a socket that received bytes and has none left unread.
fn request_read(ss: &str) -> bool {
    let mut lines = ss.lines();
    while let Some(socket) = lines.next() {
        let unread = socket.split_whitespace().next();
        let details = lines.next().unwrap_or("");
        let received = details
            .split_whitespace()
            .find_map(|f| f.strip_prefix("bytes_received:"))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if unread == Some("0") && received > 0 {
            return true;
        }
    }
    false
}

/// A request in flight when shutdown starts still completes (RSA-4096 generation takes seconds).
#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let app = TestApp::spawn().await;
    let url = app.admin("/keys/slow");
    let http = app.http.clone();
    let inflight = tokio::spawn(async move {
        http.post(url)
            .json(&json!({"alg": "RS256", "use": "sig", "kid": "s"}))
            .send()
            .await
    });
    let port = url::Url::parse(&app.admin).unwrap().port().unwrap();
    wait_for_request_read(port, Duration::from_secs(10)).await;
    let admin = app.admin.clone();
    app.stop().await;
    let res = inflight.await.unwrap().unwrap();
    assert_eq!(res.status(), 201);
    assert!(
        reqwest::get(format!("{admin}/health/alive")).await.is_err(),
        "listener still open after shutdown"
    );
}

#[tokio::test]
async fn tls_termination_is_enforced() {
    let app = TestApp::spawn_secure_with(|c| {
        c.serve.tls.allow_termination_from = vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
    })
    .await;
    let discovery = app.public("/.well-known/openid-configuration");
    // Plain HTTP without the terminator's header: 502.
    let res = app.get(discovery.clone()).await;
    assert_eq!(res.status(), 502);
    assert_eq!(json(res).await["error"], "Bad Gateway");
    // Forwarded as HTTPS by a trusted peer: served.
    let res = app
        .get_with(discovery.clone(), &[("x-forwarded-proto", "https")])
        .await;
    assert_eq!(res.status(), 200);
    // Health and metrics stay reachable for probes.
    assert_eq!(app.get(app.public("/health/alive")).await.status(), 200);
    assert_eq!(
        app.get(app.admin("/metrics/prometheus")).await.status(),
        200
    );
    app.stop().await;

    // A peer outside the allowed networks needs a trusted hop in X-Forwarded-For.
    let app = TestApp::spawn_secure_with(|c| {
        c.serve.tls.allow_termination_from = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let url = app.admin("/clients");
    let res = app
        .get_with(url.clone(), &[("x-forwarded-proto", "https")])
        .await;
    assert_eq!(res.status(), 502);
    let res = app
        .get_with(
            url.clone(),
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-for", "203.0.113.9, 10.1.2.3"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}
