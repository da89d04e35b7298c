//! The secret-hashing flood (issue: security hardening §1): wrong secrets and unknown clients
//! cannot exhaust memory or starve verified clients; identical verifications share one hash,
//! failures are remembered, a failing address is throttled, and overload is a quick 503.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::{client, spawn_with};
use super::harness::{json, TestApp};
use super::process::{free_port, serve_dev, wait_ready};
use serde_json::{json, Value};
use std::time::Duration;

const WRONG: &str = "The provided client secret did not match the registered one.";

async fn token(app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    app.http
        .post(app.public("/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

/// `portcullis_secret_verifications_total{outcome=…}` from the admin metrics endpoint.
async fn outcome(app: &TestApp, name: &str) -> u64 {
    let text = app.metrics_text().await;
    let prefix = format!("portcullis_secret_verifications_total{{outcome=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn invalid_client(hint: &str) -> Value {
    json!({
        "error": "invalid_client",
        "error_description": format!("Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method). {hint}"),
    })
}

#[tokio::test]
async fn concurrent_identical_verifications_share_one_hash() {
    let app = spawn_with(|_| {}).await;
    let c = client(&app, json!({})).await;
    let runs = outcome(&app, "run").await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (http, url, id, secret) = (
            app.http.clone(),
            app.public("/oauth2/token"),
            c.id.clone(),
            c.secret.clone(),
        );
        set.spawn(async move {
            http.post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(
        outcome(&app, "run").await - runs,
        1,
        "one argon2 run for 40 requests"
    );
    assert_eq!(
        outcome(&app, "shared").await + outcome(&app, "remembered").await,
        39
    );
    app.stop().await;
}

#[tokio::test]
async fn failures_are_remembered_without_hashing_again() {
    let app = spawn_with(|cfg| cfg.oauth2.hashers.failure_delay = std::time::Duration::ZERO).await;
    let c = client(&app, json!({})).await;
    for _ in 0..2 {
        let res = token(&app, &c.id, "not-the-secret").await;
        assert_eq!(res.status(), 401);
        assert_eq!(json(res).await, invalid_client(WRONG));
    }
    // An unknown client is verified against a dummy hash on the same path, and remembered too.
    for _ in 0..2 {
        let res = token(&app, "no-such-client", "whatever").await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            json(res).await,
            invalid_client("The requested OAuth 2.0 Client does not exist.")
        );
    }
    // Creation hashed the secret; the dummy hash is made once; each distinct failure ran once.
    assert_eq!(outcome(&app, "run").await, 4);
    assert_eq!(outcome(&app, "remembered").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_failing_address_is_throttled_but_a_verified_secret_is_not() {
    let app = spawn_with(|cfg| cfg.oauth2.hashers.failure_delay = std::time::Duration::ZERO).await;
    let c = client(&app, json!({})).await;
    assert_eq!(token(&app, &c.id, &c.secret).await.status(), 200);
    // Ten distinct wrong secrets are hashed and fail; then this address gets 429 without any
    // hashing (one unverified secret per second is still hashed).
    for i in 0..10 {
        let res = token(&app, &c.id, &format!("guess-{i}")).await;
        assert_eq!(res.status(), 401, "guess {i}");
    }
    let runs = outcome(&app, "run").await;
    let res = token(&app, &c.id, "guess-throttled").await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        json(res).await,
        json!({
            "error": "temporarily_unavailable",
            "error_description": "Too many failed client authentications for this client from this address; retry later.",
        })
    );
    assert_eq!(
        outcome(&app, "run").await,
        runs,
        "no hashing while throttled"
    );
    assert_eq!(outcome(&app, "throttled").await, 1);
    // The real client, already verified, is served at once.
    assert_eq!(token(&app, &c.id, &c.secret).await.status(), 200);
    app.stop().await;
}

/// client_credentials naming a client in the form, without any secret.
async fn token_without_secret(app: &TestApp, id: &str) -> reqwest::Response {
    app.http
        .post(app.public("/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", id)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_address_presenting_unknown_ids_gets_no_reads_but_a_verified_client_does() {
    let app = spawn_with(|cfg| cfg.oauth2.hashers.failure_delay = std::time::Duration::ZERO).await;
    let unknown = invalid_client("The requested OAuth 2.0 Client does not exist.");
    let real = client(&app, json!({})).await;
    assert_eq!(token(&app, &real.id, &real.secret).await.status(), 200);
    // Never authenticated. Creating it voids every cached client, the real one's too.
    let fresh = client(&app, json!({})).await;
    // Ten unknown ids from this address, one without a secret: each is read and refused.
    for i in 0..9 {
        let res = token(&app, &format!("unknown-{i}"), "guess").await;
        assert_eq!(res.status(), 401, "unknown-{i}");
        assert_eq!(json(res).await, unknown);
    }
    let res = token_without_secret(&app, "unknown-9").await;
    assert_eq!(res.status(), 401);
    assert_eq!(json(res).await, unknown);
    // Now the address is throttled: a client this replica has not cached is not read for it,
    // so neither an unknown id nor a known client with an unverified secret gets through, and
    // nothing is hashed.
    let runs = outcome(&app, "run").await;
    let throttled = outcome(&app, "throttled").await;
    let address_throttled = json!({
        "error": "temporarily_unavailable",
        "error_description": "Too many failed client authentications from this address; retry later.",
    });
    for res in [
        token(&app, "unknown-10", "guess").await,
        token(&app, &fresh.id, &fresh.secret).await,
        token_without_secret(&app, "unknown-11").await,
    ] {
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()["retry-after"], "1");
        assert_eq!(json(res).await, address_throttled);
    }
    assert_eq!(outcome(&app, "throttled").await, throttled + 3);
    // A secret verified on this replica before is read and served at once, from this address.
    assert_eq!(token(&app, &real.id, &real.secret).await.status(), 200);
    assert_eq!(outcome(&app, "run").await, runs, "nothing hashed");
    // One read per second still goes through: the never-verified client gets in.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(token(&app, &fresh.id, &fresh.secret).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn no_free_worker_in_time_is_a_quick_503() {
    // One worker and slow hashes (32 MiB, 3 passes): concurrent distinct secrets cannot all
    // get the worker within the 1 ms deadline.
    let app = spawn_with(|cfg| {
        cfg.oauth2.hashers.workers = 1;
        cfg.oauth2.hashers.queue_timeout = std::time::Duration::from_millis(1);
        cfg.oauth2.hashers.argon2.memory = json!("32MiB");
        cfg.oauth2.hashers.argon2.iterations = 3;
    })
    .await;
    let c = client(&app, json!({})).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..4 {
        let (http, url, id) = (app.http.clone(), app.public("/oauth2/token"), c.id.clone());
        set.spawn(async move {
            let started = std::time::Instant::now();
            let req = wrong_secret(&http, url, id, format!("wrong-{i}"));
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (status, retry, res.text().await.unwrap(), started.elapsed())
        });
    }
    let mut busy = 0;
    while let Some(r) = set.join_next().await {
        let (status, retry, body, elapsed) = r.unwrap();
        match status {
            401 => {}
            503 => {
                busy += 1;
                assert_eq!(retry.as_deref(), Some("1"));
                assert_eq!(
                    serde_json::from_str::<Value>(&body).unwrap(),
                    json!({
                        "error": "temporarily_unavailable",
                        "error_description": "The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server. All client-secret verifications are busy; retry shortly.",
                    })
                );
                assert!(elapsed < Duration::from_secs(5), "503 must not hang");
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert!(busy >= 1, "at least one request found no worker");
    assert!(outcome(&app, "busy").await >= 1);
    app.stop().await;
}

#[tokio::test]
async fn hasher_settings_apply_to_new_secrets_and_are_validated() {
    let app = spawn_with(|cfg| {
        cfg.oauth2.hashers.argon2.memory = json!(8192);
        cfg.oauth2.hashers.argon2.iterations = 1;
        cfg.oauth2.hashers.argon2.key_length = 48;
    })
    .await;
    let c = client(&app, json!({})).await;
    let stored: String = app
        .state()
        .store
        .get_client(&c.id)
        .await
        .unwrap()
        .secret_hash;
    assert!(
        stored.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
        "{stored}"
    );
    assert_eq!(token(&app, &c.id, &c.secret).await.status(), 200);
    app.stop().await;

    let env = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    for (key, value) in [
        ("OAUTH2_HASHERS_ARGON2_MEMORY", "lots"),
        ("OAUTH2_HASHERS_ARGON2_SALT_LENGTH", "4"),
        ("OAUTH2_HASHERS_ARGON2_ITERATIONS", "0"),
        ("OAUTH2_HASHERS_QUEUE_TIMEOUT", "soon"),
    ] {
        let err = portcullis::config::Config::load_from(None, &env(key, value)).unwrap_err();
        assert!(err.to_string().contains("oauth2.hashers"), "{key}: {err}");
    }
}

/// A client-credentials request for `who` with a wrong `secret`.
fn wrong_secret(
    http: &reqwest::Client,
    url: String,
    who: String,
    secret: String,
) -> reqwest::RequestBuilder {
    let req = http.post(url).basic_auth(who, Some(secret));
    req.form(&[("grant_type", "client_credentials")])
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The release binary under a few hundred concurrent wrong-secret requests (known and unknown
/// clients): every answer is 401/429/503 and quick, and peak resident memory stays bounded.
#[tokio::test]
async fn the_release_binary_survives_a_wrong_secret_flood_in_bounded_memory() {
    let (public, admin) = (free_port(), free_port());
    let mut cmd = serve_dev("memory", public, admin);
    cmd.env("SECRETS_SYSTEM", "flood-test-secret-0123456789")
        .env("OAUTH2_HASHERS_WORKERS", "2")
        .env("LOG_LEVEL", "error")
        .stderr(std::process::Stdio::inherit());
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(400)
        .build()
        .unwrap();
    let admin_url = format!("http://127.0.0.1:{admin}");
    let token_url = format!("http://127.0.0.1:{public}/oauth2/token");
    let ready = format!("{admin_url}/health/ready");
    wait_ready(&http, &ready, Duration::from_secs(60)).await;
    let res = http
        .post(format!("{admin_url}/clients"))
        .json(&json!({"grant_types": ["client_credentials"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let c: Value = res.json().await.unwrap();
    let (id, secret) = (
        c["client_id"].as_str().unwrap().to_string(),
        c["client_secret"].as_str().unwrap().to_string(),
    );
    // The real client authenticates once before the flood: from then on its secret is answered
    // from memory, even from the flooding address.
    let real = || {
        http.post(&token_url)
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(real().await.unwrap().status(), 200);
    let before_kib = vm_hwm_kib(pid);

    let mut set = tokio::task::JoinSet::new();
    for i in 0..300 {
        let (http, url) = (http.clone(), token_url.clone());
        let who = if i % 3 == 0 {
            format!("unknown-{i}")
        } else {
            id.clone()
        };
        set.spawn(async move {
            let started = std::time::Instant::now();
            let req = wrong_secret(&http, url, who, format!("wrong-secret-{i}"));
            let res = req.timeout(Duration::from_secs(20)).send().await.unwrap();
            (res.status().as_u16(), started.elapsed())
        });
    }
    let mut by_status = std::collections::BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let (status, elapsed) = r.unwrap();
        assert!(
            matches!(status, 401 | 429 | 503),
            "unexpected status {status}"
        );
        assert!(elapsed < Duration::from_secs(10), "a request hung");
        // Failures are answered after oauth2.hashers.failure_delay (1 s by default), throttled
        // attempts after four times that, give or take a quarter.
        let least = match status {
            401 => Duration::from_millis(740),
            429 => Duration::from_millis(2960),
            _ => Duration::ZERO,
        };
        assert!(elapsed >= least, "{status} after {elapsed:?}");
        *by_status.entry(status).or_insert(0) += 1;
    }
    // An unknown client named without any secret is answered as slowly (likely 429: the flood
    // has throttled this address for unknown ids).
    let started = std::time::Instant::now();
    let res = http
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "unknown-no-secret"),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let least = match status {
        401 => Duration::from_millis(740),
        429 => Duration::from_millis(2960),
        other => panic!("unexpected status {other}"),
    };
    assert!(
        started.elapsed() >= least,
        "{status} after {:?}",
        started.elapsed()
    );
    // The real client still gets tokens, at once.
    assert_eq!(real().await.unwrap().status(), 200);
    let peak_kib = vm_hwm_kib(pid);
    eprintln!("flood statuses {by_status:?}; VmHWM {before_kib} kB before, {peak_kib} kB after");
    // Two workers × 19 MiB of argon2 memory on top of the idle server: far below the
    // gigabytes an unbounded pool reached.
    assert!(
        peak_kib < 100 * 1024,
        "peak RSS {peak_kib} kB exceeds 100 MiB"
    );
    child.kill().await.unwrap();
}
