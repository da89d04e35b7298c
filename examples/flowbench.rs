//! Load generator for full OAuth 2.0 authorization-code flows (used by `bench/run.sh`).
//!
//! `flows` mode: N concurrent tasks, each with its own cookie jar and redirects off, loop for a
//! fixed duration over: GET /oauth2/auth -> accept login (admin) -> GET redirect_to -> accept
//! consent (admin) -> GET redirect_to -> code from the 302 to the client -> POST /oauth2/token
//! (client_secret_basic, PKCE S256). Prints completed flows/s, p50/p99 flow latency and errors.
//!
//! `sign` mode: times RS256 signatures of an ID-token-sized claim set with the server's own
//! `hydra.openid.id-token` private key (fetched from the admin API) and signer, on 1 thread and
//! then on every core, to show the CPU bound that 4096-bit RSA puts on flows that issue ID tokens.
//!
//! ```text
//! cargo build --release --example flowbench
//! target/release/examples/flowbench flows --public URL --admin URL --client-id ID \
//!     --client-secret S --redirect-uri URI [--scope "openid offline"] [--concurrency 32] \
//!     [--duration 10] [--subject bench]
//! target/release/examples/flowbench sign --admin URL [--duration 10]
//! ```
//!
//! Summary lines start with `RESULT ` and are `key=value` pairs, for scripts.
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use reqwest::header::{AUTHORIZATION, LOCATION};
use reqwest::{redirect, Client, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

const USAGE: &str = "usage: flowbench flows --public URL --admin URL --client-id ID \
--client-secret S --redirect-uri URI [--scope S] [--concurrency N] [--duration SECS] [--subject SUB]\n       \
flowbench sign --admin URL [--duration SECS] [--threads N]";

struct Args {
    mode: String,
    opts: HashMap<String, String>,
}

impl Args {
    fn parse() -> Res<Args> {
        let mut it = std::env::args().skip(1);
        let mode = it.next().ok_or(USAGE)?;
        let mut opts = HashMap::new();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {k}\n{USAGE}"))?;
            let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            opts.insert(key.to_string(), v);
        }
        Ok(Args { mode, opts })
    }

    fn get(&self, key: &str) -> Res<String> {
        self.opts
            .get(key)
            .cloned()
            .ok_or_else(|| format!("missing --{key}\n{USAGE}"))
    }

    fn get_or(&self, key: &str, default: &str) -> String {
        self.opts
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// Seconds, accepting wrk-style suffixes (`8s`, `1m`) as well as plain numbers.
    fn duration(&self) -> Res<Duration> {
        let raw = self.get_or("duration", "10");
        let (num, mult) = match raw.chars().last() {
            Some('s') => (&raw[..raw.len() - 1], 1.0),
            Some('m') => (&raw[..raw.len() - 1], 60.0),
            Some('h') => (&raw[..raw.len() - 1], 3600.0),
            _ => (raw.as_str(), 1.0),
        };
        let secs: f64 = num.parse().map_err(|_| format!("bad --duration {raw}"))?;
        Ok(Duration::from_secs_f64(secs * mult))
    }
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn query_param(location: &str, base: &str, name: &str) -> Res<String> {
    let url = url::Url::parse(base)
        .and_then(|b| b.join(location))
        .map_err(|e| format!("bad Location {location}: {e}"))?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no {name} in {location}"))
}

// ------------------------------------------------------------------------------- flows

struct FlowCfg {
    public: String,
    admin: String,
    client_id: String,
    basic: String,
    redirect_uri: String,
    scope: String,
    grant_scope: Vec<String>,
    openid: bool,
    subject: String,
}

async fn redirect_location(client: &Client, url: &str, step: &str) -> Res<String> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{step}: {e}"))?;
    let status = resp.status();
    if !status.is_redirection() {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!("{step}: expected a redirect, got {status}: {body}"));
    }
    resp.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| format!("{step}: redirect without Location"))
}

async fn accept(admin: &Client, url: String, body: Value, step: &str) -> Res<String> {
    let resp = admin
        .put(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{step}: {e}"))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| format!("{step}: {status}: bad JSON: {e}"))?;
    if status != StatusCode::OK {
        return Err(format!("{step}: {status}: {v}"));
    }
    v.get("redirect_to")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{step}: no redirect_to in {v}"))
}

async fn one_flow(cfg: &FlowCfg, browser: &Client, admin: &Client) -> Res<()> {
    let state = random_b64(16);
    let nonce = random_b64(16);
    let verifier = random_b64(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));

    let mut auth = url::Url::parse(&format!("{}/oauth2/auth", cfg.public))
        .map_err(|e| format!("bad --public: {e}"))?;
    auth.query_pairs_mut()
        .append_pair("client_id", &cfg.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", &cfg.scope)
        .append_pair("redirect_uri", &cfg.redirect_uri)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");

    let loc = redirect_location(browser, auth.as_str(), "GET /oauth2/auth").await?;
    let login_challenge = query_param(&loc, &cfg.public, "login_challenge")?;

    let mut url = url::Url::parse(&format!("{}/oauth2/auth/requests/login/accept", cfg.admin))
        .map_err(|e| format!("bad --admin: {e}"))?;
    url.query_pairs_mut()
        .append_pair("login_challenge", &login_challenge);
    let next = accept(
        admin,
        url.into(),
        json!({"subject": cfg.subject}),
        "login accept",
    )
    .await?;

    let loc = redirect_location(browser, &next, "GET login redirect_to").await?;
    let consent_challenge = query_param(&loc, &cfg.public, "consent_challenge")?;

    let mut url = url::Url::parse(&format!(
        "{}/oauth2/auth/requests/consent/accept",
        cfg.admin
    ))
    .map_err(|e| format!("bad --admin: {e}"))?;
    url.query_pairs_mut()
        .append_pair("consent_challenge", &consent_challenge);
    let body = json!({"grant_scope": cfg.grant_scope});
    let next = accept(admin, url.into(), body, "consent accept").await?;

    let loc = redirect_location(browser, &next, "GET consent redirect_to").await?;
    if !loc.starts_with(&cfg.redirect_uri) {
        return Err(format!("final redirect is not to the client: {loc}"));
    }
    if query_param(&loc, &cfg.public, "state")? != state {
        return Err(format!("state mismatch in {loc}"));
    }
    let code = query_param(&loc, &cfg.public, "code")?;

    let resp = browser
        .post(format!("{}/oauth2/token", cfg.public))
        .header(AUTHORIZATION, &cfg.basic)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", cfg.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .map_err(|e| format!("POST /oauth2/token: {e}"))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| format!("POST /oauth2/token: {status}: bad JSON: {e}"))?;
    if status != StatusCode::OK || v.get("access_token").is_none() {
        return Err(format!("POST /oauth2/token: {status}: {v}"));
    }
    if cfg.openid && v.get("id_token").is_none() {
        return Err(format!("POST /oauth2/token: no id_token in {v}"));
    }
    Ok(())
}

#[derive(Default)]
struct TaskOut {
    latencies_ms: Vec<f64>,
    errors: u64,
    first_errors: Vec<String>,
}

fn build_client(cookies: bool) -> Res<Client> {
    Client::builder()
        .redirect(redirect::Policy::none())
        .cookie_store(cookies)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

async fn run_flows(args: &Args) -> Res<()> {
    let client_id = args.get("client-id")?;
    let secret = args.get("client-secret")?;
    let scope = args.get_or("scope", "openid offline");
    let concurrency: usize = args
        .get_or("concurrency", "32")
        .parse()
        .map_err(|_| "bad --concurrency")?;
    let duration = args.duration()?;
    let cfg = Arc::new(FlowCfg {
        public: args.get("public")?.trim_end_matches('/').to_string(),
        admin: args.get("admin")?.trim_end_matches('/').to_string(),
        basic: format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}"))),
        client_id,
        redirect_uri: args.get("redirect-uri")?,
        grant_scope: scope.split_whitespace().map(str::to_string).collect(),
        openid: scope.split_whitespace().any(|s| s == "openid"),
        subject: args.get_or("subject", "bench"),
        scope,
    });
    let admin = build_client(false)?;

    // One flow first, so that a misconfiguration fails loudly instead of as N errors.
    let probe = build_client(true)?;
    one_flow(&cfg, &probe, &admin)
        .await
        .map_err(|e| format!("probe flow failed: {e}"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (cfg, admin, stop) = (cfg.clone(), admin.clone(), stop.clone());
        let browser = build_client(true)?;
        tasks.push(tokio::spawn(async move {
            let mut out = TaskOut::default();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                match one_flow(&cfg, &browser, &admin).await {
                    Ok(()) => out.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0),
                    Err(e) => {
                        out.errors += 1;
                        if out.first_errors.len() < 3 {
                            out.first_errors.push(e);
                        }
                    }
                }
            }
            out
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);

    let mut all = TaskOut::default();
    for t in tasks {
        let out = t.await.map_err(|e| format!("task failed: {e}"))?;
        all.latencies_ms.extend(out.latencies_ms);
        all.errors += out.errors;
        for e in out.first_errors {
            if all.first_errors.len() < 5 {
                all.first_errors.push(e);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies_ms.sort_by(f64::total_cmp);
    for e in &all.first_errors {
        eprintln!("flowbench error: {e}");
    }
    let n = all.latencies_ms.len();
    println!(
        "RESULT mode=flows scope={} concurrency={concurrency} elapsed_s={elapsed:.2} flows={n} \
         errors={} flows_per_s={:.1} p50_ms={:.2} p99_ms={:.2}",
        cfg.scope.replace(' ', "+"),
        all.errors,
        n as f64 / elapsed,
        percentile(&all.latencies_ms, 50.0),
        percentile(&all.latencies_ms, 99.0),
    );
    Ok(())
}

// -------------------------------------------------------------------------------- sign

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat` (Linux, in
/// USER_HZ = 100 ticks), so that contention on a shared machine does not inflate the cost.
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Signs until `until`; returns the count and the thread's CPU seconds spent (if known).
fn sign_loop(
    signer: &portcullis::crypto::jws::Signer,
    claims: &Value,
    until: Instant,
) -> Res<(u64, Option<f64>)> {
    let cpu0 = thread_cpu_secs();
    let mut n = 0u64;
    while Instant::now() < until {
        signer.sign(claims).map_err(|e| e.to_string())?;
        n += 1;
    }
    let cpu = match (cpu0, thread_cpu_secs()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok((n, cpu))
}

async fn run_sign(args: &Args) -> Res<()> {
    let admin = args.get("admin")?.trim_end_matches('/').to_string();
    let duration = args.duration()?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads: usize = args
        .get_or("threads", &cores.to_string())
        .parse()
        .map_err(|_| "bad --threads")?;

    let set = portcullis::domain::jwk::ID_TOKEN_SET;
    let resp = build_client(false)?
        .get(format!("{admin}/keys/{set}"))
        .send()
        .await
        .map_err(|e| format!("GET /keys/{set}: {e}"))?;
    let v: Value = resp
        .json()
        .await
        .map_err(|e| format!("GET /keys/{set}: {e}"))?;
    let jwk = v
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .find(|k| k.get("kty").and_then(Value::as_str) == Some("RSA") && k.contains_key("d"))
        .cloned()
        .ok_or_else(|| format!("no RSA private key in /keys/{set}"))?;
    let bits = jwk
        .get("n")
        .and_then(Value::as_str)
        .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
        .map_or(0, |n| {
            n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize)
        });
    let signer = Arc::new(
        portcullis::crypto::jws::Signer::from_jwk(&jwk).map_err(|e| format!("signer: {e}"))?,
    );
    // About the size of the ID token the flow issues.
    let claims = Arc::new(json!({
        "iss": "http://127.0.0.1:14444/", "sub": "bench", "aud": ["bench-client"],
        "exp": 1_900_000_000u64, "iat": 1_800_000_000u64, "auth_time": 1_800_000_000u64,
        "rat": 1_800_000_000u64, "at_hash": random_b64(16), "nonce": random_b64(16),
        "acr": "0", "amr": [], "jti": uuid::Uuid::new_v4().to_string(), "sid": uuid::Uuid::new_v4().to_string(),
    }));

    let half = duration / 2;
    for t in [1, threads] {
        let until = Instant::now() + half;
        let started = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..t {
            let (signer, claims) = (signer.clone(), claims.clone());
            handles.push(tokio::task::spawn_blocking(move || {
                sign_loop(&signer, &claims, until)
            }));
        }
        let (mut total, mut cpu) = (0u64, Some(0.0));
        for h in handles {
            let (n, c) = h.await.map_err(|e| format!("sign task: {e}"))??;
            total += n;
            cpu = cpu.zip(c).map(|(a, b)| a + b);
        }
        let elapsed = started.elapsed().as_secs_f64();
        // Without a CPU clock, fall back to thread wall time (an upper bound under contention).
        let busy = cpu.unwrap_or(elapsed * t as f64);
        println!(
            "RESULT mode=sign bits={bits} threads={t} signatures={total} elapsed_s={elapsed:.2} \
             signs_per_s={:.1} cpu_ms_per_sign={:.2} cpu_share={:.2}",
            total as f64 / elapsed,
            busy * 1000.0 / total.max(1) as f64,
            busy / (elapsed * t as f64),
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let res = match Args::parse() {
        Ok(args) if args.mode == "flows" => run_flows(&args).await,
        Ok(args) if args.mode == "sign" => run_sign(&args).await,
        Ok(args) => Err(format!("unknown mode {}\n{USAGE}", args.mode)),
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowbench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
