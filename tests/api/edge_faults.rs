//! Faults and process life (issue 7, points 3, 4 and 6): a database that stops answering or
//! drops connections (through a TCP proxy between the server and PostgreSQL), SIGTERM with an
//! idle keep-alive connection and a half-sent request, and a start with the wrong secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use crate::harness::{json, TestApp};
use crate::process::{free_port, serve_dev, wait_ready};
use serde_json::json;
use std::process::Stdio;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const FORWARD: u8 = 0;
const BLACKHOLE: u8 = 1;
const REFUSE: u8 = 2;

/// A TCP proxy in front of PostgreSQL that can stop forwarding (packets vanish, connections
/// stay open) or close every connection and refuse new ones.
struct Proxy {
    addr: std::net::SocketAddr,
    mode: Arc<AtomicU8>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (m, c) = (mode.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                match m.load(Ordering::SeqCst) {
                    REFUSE => drop(client),
                    BLACKHOLE => {
                        // Accepted but never answered.
                        let h = tokio::spawn(async move {
                            let _keep = client;
                            std::future::pending::<()>().await;
                        });
                        c.lock().unwrap().push(h);
                    }
                    _ => {
                        let up = upstream.clone();
                        let mode = m.clone();
                        let h = tokio::spawn(async move {
                            let Ok(server) = TcpStream::connect(up).await else {
                                return;
                            };
                            let (cr, cw) = client.into_split();
                            let (sr, sw) = server.into_split();
                            let a = tokio::spawn(pump(cr, sw, mode.clone()));
                            let b = tokio::spawn(pump(sr, cw, mode));
                            let _ = tokio::join!(AbortOnDrop(a), AbortOnDrop(b));
                        });
                        c.lock().unwrap().push(h);
                    }
                }
            }
        });
        Proxy {
            addr,
            mode,
            conns,
            accept,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    /// Closes every proxied connection (as a database restart or failover would).
    fn close_all(&self) {
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.close_all();
    }
}

/// Aborts the pump task when the connection task is aborted.
struct AbortOnDrop(JoinHandle<()>);

impl std::future::Future for AbortOnDrop {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: Arc<AtomicU8>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Black-holed: the bytes vanish and the peer waits forever.
        if mode.load(Ordering::SeqCst) == FORWARD && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Polls `/health/ready` until it answers `want`; returns how long that took.
async fn ready_within(app: &TestApp, want: u16, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let res = tokio::time::timeout(
            Duration::from_secs(3),
            app.http.get(app.admin("/health/ready")).send(),
        )
        .await;
        if let Ok(Ok(res)) = res {
            if res.status().as_u16() == want {
                let body = json(res).await;
                if want == 503 {
                    assert!(body["errors"]["database"].is_string(), "{body}");
                }
                return start.elapsed();
            }
        }
        assert!(
            start.elapsed() < limit,
            "/health/ready did not answer {want} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Requests that need the database answer a JSON error within `limit`, concurrently.
async fn bounded_errors(app: &TestApp, limit: Duration) {
    let start = Instant::now();
    let mut calls = Vec::new();
    for i in 0..16 {
        let http = app.http.clone();
        let url = if i % 2 == 0 {
            app.admin("/clients/fault")
        } else {
            app.admin("/clients")
        };
        calls.push(tokio::spawn(async move {
            let res = http.get(url).send().await.unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, body)
        }));
    }
    for c in calls {
        let (status, body) = c.await.unwrap();
        assert!(status >= 500, "{status} {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    assert!(start.elapsed() < limit, "errors took {:?}", start.elapsed());
}

#[tokio::test]
async fn database_outage_is_bounded_and_recovers() {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: needs TEST_DATABASE_URL (PostgreSQL)");
        return;
    };
    if base.is_empty() {
        return;
    }
    let upstream = url::Url::parse(&base).unwrap();
    let upstream = format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(upstream.clone()).await;
    let proxied = proxy.addr.to_string();
    let app = TestApp::spawn_with(|cfg| {
        cfg.dsn = cfg.dsn.replacen(&upstream, &proxied, 1);
        cfg.database.acquire_timeout = std::time::Duration::from_secs(1);
        cfg.serve.request_timeout = std::time::Duration::from_secs(4);
    })
    .await;
    assert!(app.dsn.contains(&proxied), "{}", app.dsn);
    let res = app
        .admin_post("/clients", &json!({"client_id": "fault"}))
        .await;
    assert_eq!(res.status(), 201);
    ready_within(&app, 200, Duration::from_secs(2)).await;

    // 1. Packets vanish: connections stay open, nothing answers.
    proxy.set(BLACKHOLE);
    let took = ready_within(&app, 503, Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    bounded_errors(&app, Duration::from_secs(6)).await;
    ready_within(&app, 503, Duration::from_secs(2)).await;

    // 2. The database goes away: every connection closes, new ones are refused.
    proxy.set(REFUSE);
    proxy.close_all();
    ready_within(&app, 503, Duration::from_secs(2)).await;
    bounded_errors(&app, Duration::from_secs(6)).await;

    // 3. It is back: ready and serving within 2 s, no restart.
    proxy.set(FORWARD);
    let took = ready_within(&app, 200, Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    let res = app.get(app.admin("/clients/fault")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["client_id"], "fault");
    app.stop().await;
}

/// Waits for the child to exit, at most `limit`.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test]
async fn sigterm_exits_within_the_deadline() {
    let (public, admin) = (free_port(), free_port());
    let mut child = serve_dev("memory", public, admin)
        .env("LOG_LEVEL", "info")
        .env("SECRETS_SYSTEM", "sigterm-test-secret-0123")
        .env("SERVE_SHUTDOWN_TIMEOUT", "3s")
        .env("SERVE_HEADER_READ_TIMEOUT", "60s")
        .env("SERVE_IDLE_TIMEOUT", "60s")
        .spawn()
        .unwrap();
    let alive = format!("http://127.0.0.1:{admin}/health/alive");
    wait_ready(&reqwest::Client::new(), &alive, Duration::from_secs(60)).await;
    // An idle keep-alive connection (one request answered, connection kept).
    let mut idle = TcpStream::connect(("127.0.0.1", public)).await.unwrap();
    idle.write_all(b"GET /health/alive HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // A half-sent head, and a request whose body never finishes.
    let mut half_head = TcpStream::connect(("127.0.0.1", admin)).await.unwrap();
    half_head
        .write_all(b"POST /clients HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    let mut half_body = TcpStream::connect(("127.0.0.1", admin)).await.unwrap();
    half_body
        .write_all(b"POST /clients HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"client")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sent = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // The idle connection is closed at once, not at the deadline.
    let closed = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle keep-alive connection was not closed promptly"
    );
    // New connections are refused once shutdown began.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(TcpStream::connect(("127.0.0.1", public)).await.is_err());
    let status = tokio::task::spawn_blocking(move || {
        let s = wait_exit(&mut child, Duration::from_secs(8));
        if s.is_none() {
            let _ = child.kill();
        }
        s
    })
    .await
    .unwrap();
    let status = status.expect("the process was still running 8 s after SIGTERM");
    assert!(status.success(), "{status:?}");
    let took = sent.elapsed();
    // Deadline 3 s, plus the pool's grace.
    assert!(took < Duration::from_secs(6), "exit took {took:?}");
    drop((half_head, half_body));
}

#[tokio::test]
async fn start_with_the_wrong_secret_exits_naming_secrets_system() {
    // The harness seals the stored keys with its own secret.
    let app = TestApp::spawn().await;
    for secret in [Some("a-completely-different-secret"), None] {
        let mut cmd = serve_dev(&app.dsn, free_port(), free_port());
        cmd.env("LOG_LEVEL", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(s) = secret {
            cmd.env("SECRETS_SYSTEM", s);
        }
        let child = cmd.spawn().unwrap();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(!out.status.success(), "started with secret {secret:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("secrets.system"), "{text}");
        assert!(text.contains("cannot be decrypted"), "{text}");
        // Logs to a pipe carry no terminal colour codes.
        assert!(!text.contains('\u{1b}'), "{text:?}");
        if secret.is_none() {
            // --dev, a persistent DSN and no secret: said plainly.
            assert!(text.contains("will be readable after a restart"), "{text}");
        }
    }
    // The keys are untouched: the right secret still serves JWKS.
    let res = app.get(app.public("/.well-known/jwks.json")).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}
