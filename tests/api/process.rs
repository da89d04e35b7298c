//! Helpers for tests that run the release binary as a child process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port for a child process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The release binary without the settings of the test environment
/// (`SERVE_*`, `SECRETS_*`, `OIDC_*`, `DSN`).
pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    for (k, _) in std::env::vars() {
        let inherited = ["SERVE_", "SECRETS_", "OIDC_"];
        if inherited.iter().any(|p| k.starts_with(p)) || k == "DSN" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// `serve all --dev` on `dsn` with both listeners on 127.0.0.1 at the given ports; output
/// discarded.
pub fn serve_dev(dsn: &str, public: u16, admin: u16) -> Command {
    let mut cmd = binary();
    cmd.args(["serve", "all", "--dev"])
        .env("DSN", dsn)
        .env("SERVE_PUBLIC_HOST", "127.0.0.1")
        .env("SERVE_ADMIN_HOST", "127.0.0.1")
        .env("SERVE_PUBLIC_PORT", public.to_string())
        .env("SERVE_ADMIN_PORT", admin.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Polls `url` until it answers 200; panics after `limit`.
pub async fn wait_ready(http: &reqwest::Client, url: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            start.elapsed() < limit,
            "{url} did not answer 200 in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
