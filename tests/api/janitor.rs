//! `portcullis janitor` (Hydra >= 1.10's options) and the in-process janitor: what goes, what
//! stays, argument and database errors with their exit codes, two janitors at once, and a run
//! while tokens are being issued. Both backends (set `TEST_DATABASE_URL` for PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{cli, cli_line, json, TestApp};
use portcullis::domain::flow::{ConsentResult, Flow, FlowState, LoginSession, LogoutRequest};
use portcullis::domain::token::TokenKind;
use portcullis::store::{Store, TokenRow};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An app, its store and the current time.
async fn spawn_with_store() -> (TestApp, Store, i64) {
    let app = spawn().await;
    let store = app.state().store.clone();
    (app, store, now())
}

/// `portcullis janitor <app's DSN> <flags>`, in-process.
async fn janitor_on(app: &TestApp, flags: &str) -> (i32, String, String) {
    cli_line(&format!("janitor {} {flags}", app.dsn)).await
}

async fn exec(store: &Store, sql: &str) {
    store.execute_raw(sql).await.unwrap();
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn row(
    sig: &str,
    kind: TokenKind,
    request_id: &str,
    requested_at: i64,
    expires_at: i64,
) -> TokenRow {
    TokenRow {
        signature: sig.to_string(),
        kind,
        request_id: request_id.to_string(),
        client_id: "janitor-client".to_string(),
        active: true,
        requested_at,
        expires_at,
        data: "{}".to_string(),
    }
}

/// Inserts `n` token rows of `kind` named `<prefix>-<i>`, in multi-row statements.
async fn insert_many(
    store: &Store,
    prefix: &str,
    kind: TokenKind,
    n: usize,
    requested_at: i64,
    expires_at: i64,
) {
    let rows: Vec<TokenRow> = (0..n)
        .map(|i| {
            row(
                &format!("{prefix}-{i}"),
                kind,
                &format!("{prefix}-grant-{i}"),
                requested_at,
                expires_at,
            )
        })
        .collect();
    for chunk in rows.chunks(500) {
        store.insert_tokens(chunk).await.unwrap();
    }
}

/// The cells of the summary row of `title` (kind, deleted, statements, longest ms).
fn summary_row(out: &str, title: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("| {title} ")))
        .unwrap_or_else(|| panic!("no summary row for {title} in:\n{out}"));
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

fn deleted(out: &str, title: &str) -> u64 {
    summary_row(out, title)[1].parse().unwrap()
}

fn flow(challenge: &str, requested_at: i64, remember: bool, remember_for: i64) -> Flow {
    Flow {
        login_challenge: challenge.to_string(),
        login_verifier: format!("{challenge}-lv"),
        consent_challenge: format!("{challenge}-cc"),
        consent_verifier: format!("{challenge}-cv"),
        client_id: "janitor-client".to_string(),
        subject: "alice".to_string(),
        requested_at,
        consent: Some(ConsentResult {
            remember,
            remember_for,
            ..ConsentResult::default()
        }),
        ..Flow::default()
    }
}

const ALL_TITLES: [&str; 7] = [
    "authorization codes",
    "access tokens",
    "refresh tokens",
    "client assertion jtis",
    "login-consent requests",
    "logout requests",
    "expired login sessions",
];

#[tokio::test]
async fn argument_errors_exit_2_without_touching_anything() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["janitor", "--tokens"],
            "error: a DSN is required as a positional argument when not passing any of the following flags:\n- Using the environment variable with flag -e, --read-from-env\n- Using the config file with flag -c, --config\n",
        ),
        (
            &["janitor", "sqlite:///nonexistent/x.db"],
            "error: Janitor requires either --tokens or --requests or both to be set\n",
        ),
        (
            &["janitor", "--tokens", "--limit", "0", "sqlite:///nonexistent/x.db"],
            "error: Values for --limit and --batch-size should both be greater than 0\n",
        ),
        (
            &["janitor", "--requests", "--batch-size", "-5", "sqlite:///nonexistent/x.db"],
            "error: Values for --limit and --batch-size should both be greater than 0\n",
        ),
        (
            &["janitor", "--tokens", "--limit", "10", "--batch-size", "20", "-e"],
            "error: Value for --batch-size must not be greater than value for --limit\n",
        ),
    ];
    for (args, first) in cases {
        let (code, out, err) = cli(args).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(out, "");
        assert!(err.starts_with(first), "{args:?}: {err}");
        assert!(
            err.ends_with("For more information, try 'portcullis janitor --help'.\n"),
            "{err}"
        );
    }
    // Values clap refuses: a bad duration, an unknown flag.
    let (code, out, err) = cli_line("janitor --tokens --keep-if-younger soon -e").await;
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("invalid value 'soon' for '--keep-if-younger <KEEP_IF_YOUNGER>'"),
        "{err}"
    );
    assert!(
        err.contains("`soon` is not a duration like 30s, 10m or 24h"),
        "{err}"
    );
    let (code, _, err) = cli(&["janitor", "--tokens", "--everything", "-e"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '--everything'"), "{err}");
    // Help lists Hydra's options.
    let (code, out, _) = cli(&["janitor", "--help"]).await;
    assert_eq!(code, 0);
    for flag in [
        "--read-from-env",
        "--config",
        "--tokens",
        "--requests",
        "--keep-if-younger",
        "--access-lifespan",
        "--refresh-lifespan",
        "--consent-request-lifespan",
        "--limit",
        "--batch-size",
        "[DSN]",
    ] {
        assert!(out.contains(flag), "{flag} missing from:\n{out}");
    }
}

#[tokio::test]
async fn database_errors_exit_1() {
    // Nothing listens on port 1.
    let (code, out, err) = cli(&["janitor", "--tokens", "postgres://u:pw@127.0.0.1:1/db"]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("error: cannot connect to the database at postgres://u:***@127.0.0.1:1/db"),
        "{err}"
    );
    assert!(!err.contains("pw"), "{err}");

    let (code, out, err) = cli(&["janitor", "--tokens", "memory"]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("error: DSN=memory lives inside one server process"),
        "{err}"
    );

    // A configuration file without a dsn.
    let dir = super::harness::temp_dir("pc-janitor");
    let file = dir.join("empty.yaml");
    std::fs::write(&file, "log:\n  level: error\n").unwrap();
    let (code, out, err) = cli(&["janitor", "--tokens", "-c", file.to_str().unwrap()]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("error: no database URL"), "{err}");
    // A broken configuration file.
    std::fs::write(&file, "janitor:\n  interval: sometimes\n").unwrap();
    let (code, _, err) = cli(&["janitor", "--tokens", "-c", file.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("janitor.interval"), "{err}");

    // A database without the janitor's migration: refused until `migrate sql` ran.
    let db = dir.join("fresh.db");
    let dsn = format!("sqlite://{}", db.display());
    let (code, out, err) = cli(&["janitor", "--tokens", "--requests", &dsn]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains(
            "lacks the janitor's indexes (migration 5); run `portcullis migrate sql` first"
        ),
        "{err}"
    );
    let (code, _, err) = cli(&["migrate", "sql", &dsn, "--yes"]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&["janitor", "--tokens", "--requests", &dsn]).await;
    assert_eq!(code, 0, "{err}");
    for title in ALL_TITLES {
        assert_eq!(deleted(&out, title), 0);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Token rows and jtis around `t`: expired ones (spent or not), and live ones.
async fn seed_tokens(store: &Store, t: i64) {
    let (old, expired, live) = (t - 7200, t - 3600, t + 3600);
    insert_many(store, "old-access", TokenKind::Access, 120, old, expired).await;
    insert_many(store, "old-refresh", TokenKind::Refresh, 30, old, expired).await;
    insert_many(store, "old-code", TokenKind::Code, 20, old, expired).await;
    let mut spent = row(
        "spent-refresh",
        TokenKind::Refresh,
        "spent-grant",
        old,
        expired,
    );
    spent.active = false;
    store.insert_tokens(&[spent]).await.unwrap();
    let live_refresh = row(
        "live-refresh",
        TokenKind::Refresh,
        "kept-grant-cc",
        old,
        live,
    );
    store
        .insert_tokens(&[
            row("live-access", TokenKind::Access, "live-grant", old, live),
            live_refresh,
            row("live-code", TokenKind::Code, "live-grant", t, live),
        ])
        .await
        .unwrap();
    // Client-assertion jtis: the expired one goes.
    assert!(store.spend_jti("old-jti", expired, old).await.unwrap());
    assert!(store.spend_jti("live-jti", live, old).await.unwrap());
}

/// Flows, all older than the request lifespan (1h) except the last.
async fn seed_flows(store: &Store, t: i64) {
    let old = t - 7200;
    // Abandoned before the login app answered: the consent columns are still empty.
    let mut abandoned = flow("abandoned", old, false, 0);
    abandoned.consent_challenge.clear();
    abandoned.consent_verifier.clear();
    abandoned.consent = None;
    store
        .insert_flow(&abandoned, FlowState::LoginUnhandled)
        .await
        .unwrap();
    let flows = [
        ("consent-unanswered", false, 0, FlowState::ConsentUnhandled),
        ("finished-forgotten", false, 0, FlowState::ConsentUsed),
        ("remembered-expired", true, 60, FlowState::ConsentUsed),
        ("remembered-forever", true, 0, FlowState::ConsentUsed),
        ("remembered-live", true, 86400, FlowState::ConsentUsed),
        // A finished grant whose refresh token still lives: its flow must stay.
        ("kept-grant", false, 0, FlowState::ConsentUsed),
    ];
    for (challenge, remember, remember_for, state) in flows {
        let f = flow(challenge, old, remember, remember_for);
        store.insert_flow(&f, state).await.unwrap();
    }
    let fresh = flow("fresh", t, false, 0);
    store
        .insert_flow(&fresh, FlowState::LoginUnhandled)
        .await
        .unwrap();
}

/// Logout requests (an hour-old one goes, a fresh one stays) and remembered login sessions
/// (the expired one goes).
async fn seed_logouts_and_sessions(store: &Store, t: i64) {
    for (challenge, at) in [("old-logout", t - 7200), ("new-logout", t)] {
        let l = LogoutRequest {
            challenge: challenge.into(),
            verifier: format!("{challenge}-v"),
            subject: "alice".into(),
            ..LogoutRequest::default()
        };
        store.insert_logout(&l, at).await.unwrap();
    }
    for (id, exp) in [("expired-session", t - 3600), ("live-session", t + 3600)] {
        store
            .insert_login_session(&LoginSession {
                id: id.into(),
                subject: "alice".into(),
                authenticated_at: t - 7200,
                remember: true,
                expires_at: exp,
            })
            .await
            .unwrap();
    }
}

/// The janitor's report of the run over the seeded rows, batch size 50.
fn assert_report(out: &str, err: &str) {
    // A kind stops at its first batch that comes back short.
    let expected = [
        ("authorization codes", 20, 1),
        ("access tokens", 120, 3),
        ("refresh tokens", 31, 1),
        ("client assertion jtis", 1, 1),
        ("login-consent requests", 4, 1),
        ("logout requests", 1, 1),
        ("expired login sessions", 1, 1),
    ];
    for (title, n, statements) in expected {
        assert!(
            out.contains(&format!("Successfully completed Janitor run on {title}\n")),
            "{out}"
        );
        let cells = summary_row(out, title);
        assert_eq!(cells[1], n.to_string(), "{title}:\n{out}");
        assert_eq!(cells[2], statements.to_string(), "{title}:\n{out}");
    }
    assert!(
        out.starts_with("Successfully completed Janitor run on authorization codes\n"),
        "{out}"
    );
    assert!(
        out.contains("|          KIND          | DELETED | STATEMENTS | LONGEST MS |\n"),
        "{out}"
    );
    assert!(out.contains("Deleted 178 rows in "), "{out}");
    assert!(err.starts_with("Cleaning up "), "{err}");
}

/// What is left of the seeded rows after the run.
async fn assert_survivors(store: &Store, t: i64) {
    assert_eq!(store.count_tokens(TokenKind::Access).await.unwrap(), 1);
    assert_eq!(store.count_tokens(TokenKind::Refresh).await.unwrap(), 1);
    assert_eq!(store.count_tokens(TokenKind::Code).await.unwrap(), 1);
    for (sig, kind, kept) in [
        ("live-access", TokenKind::Access, true),
        ("live-refresh", TokenKind::Refresh, true),
        ("spent-refresh", TokenKind::Refresh, false),
    ] {
        let found = store.get_token(sig, kind).await.unwrap();
        assert_eq!(found.is_some(), kept, "token {sig}");
    }
    // The live jti is still spent; the expired one can be used again.
    assert!(!store.spend_jti("live-jti", t + 3600, t).await.unwrap());
    for (challenge, kept) in [
        ("abandoned", false),
        ("consent-unanswered", false),
        ("finished-forgotten", false),
        ("remembered-expired", false),
        ("remembered-forever", true),
        ("remembered-live", true),
        ("kept-grant", true),
        ("fresh", true),
    ] {
        let found = store.flow_by_login_challenge(challenge).await.unwrap();
        assert_eq!(found.is_some(), kept, "flow {challenge}");
    }
    for (challenge, kept) in [("old-logout", false), ("new-logout", true)] {
        let found = store.get_logout(challenge, false).await.unwrap();
        assert_eq!(found.is_some(), kept, "logout {challenge}");
    }
    for (id, kept) in [("expired-session", false), ("live-session", true)] {
        let found = store.get_remembered_session(id).await.unwrap();
        assert_eq!(found.is_some(), kept, "session {id}");
    }
}

#[tokio::test]
async fn deletes_what_nothing_needs_and_keeps_the_rest() {
    let (app, store, t) = spawn_with_store().await;
    seed_tokens(&store, t).await;
    seed_flows(&store, t).await;
    seed_logouts_and_sessions(&store, t).await;

    let (code, out, err) = janitor_on(&app, "--tokens --requests --batch-size 50").await;
    assert_eq!(code, 0, "{err}");
    assert_report(&out, &err);
    assert_survivors(&store, t).await;

    // Only tokens: requests are left alone; a second run finds nothing.
    let (code, out, err) = cli(&["janitor", &app.dsn, "--tokens"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Successfully completed Janitor run on access tokens\n"));
    assert!(!out.contains("login-consent requests"), "{out}");
    assert!(out.contains("Deleted 0 rows in "), "{out}");
    app.stop().await;
}

#[tokio::test]
async fn a_real_grant_keeps_its_flow_while_a_token_or_remembered_consent_needs_it() {
    let app = spawn().await;
    let store = app.state().store.clone();
    let c = client(&app, json!({})).await;
    let tokens = tokens(&app, &c, &["openid", "offline"]).await;
    let refresh_token = s(&tokens, "refresh_token");
    // Two hours later: the flow is past its lifespan, its remembered consent lapsed, the code
    // and the access token expired; the refresh token lives on and keeps the grant's flow.
    store
        .execute_raw(
            "UPDATE portcullis_flow SET requested_at = requested_at - 7200, consent_expires_at = 1",
        )
        .await
        .unwrap();
    exec(
        &store,
        "UPDATE portcullis_token SET expires_at = 1 WHERE kind IN ('code', 'access')",
    )
    .await;
    let (status, out, err) = cli(&["janitor", &app.dsn, "--tokens", "--requests"]).await;
    assert_eq!(status, 0, "{err}");
    assert_eq!(deleted(&out, "authorization codes"), 1, "{out}");
    assert_eq!(deleted(&out, "access tokens"), 1, "{out}");
    assert_eq!(deleted(&out, "login-consent requests"), 0, "{out}");
    let res = refresh(&app, &c, &refresh_token).await;
    assert_eq!(res.status(), 200);
    let access = s(&json(res).await, "access_token");
    assert_active(&app, &access, true).await;

    // Every token expires, but a remembered consent that never lapses keeps the flow...
    exec(&store, "UPDATE portcullis_token SET expires_at = 1").await;
    exec(&store, "UPDATE portcullis_flow SET consent_expires_at = 0").await;
    let (status, out, _) = cli(&["janitor", &app.dsn, "--tokens", "--requests"]).await;
    assert_eq!(status, 0);
    assert_eq!(deleted(&out, "access tokens"), 1, "{out}");
    assert_eq!(deleted(&out, "refresh tokens"), 2, "{out}");
    assert_eq!(deleted(&out, "login-consent requests"), 0, "{out}");
    // ...until the remembered consent lapses too.
    exec(&store, "UPDATE portcullis_flow SET consent_expires_at = 2").await;
    let (status, out, _) = cli(&["janitor", &app.dsn, "--requests"]).await;
    assert_eq!(status, 0);
    assert_eq!(deleted(&out, "login-consent requests"), 1, "{out}");
    app.stop().await;
}

#[tokio::test]
async fn keep_if_younger_lifespans_limit_and_batch_size() {
    let (app, store, t) = spawn_with_store().await;
    // 250 expired access tokens: --limit 100 --batch-size 30 takes 100 in 4 statements.
    insert_many(&store, "a", TokenKind::Access, 250, t - 7200, t - 3600).await;
    let (code, out, err) = janitor_on(&app, "--tokens --limit 100 --batch-size 30").await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary_row(&out, "access tokens")[1..3], ["100", "4"]);
    assert_eq!(store.count_tokens(TokenKind::Access).await.unwrap(), 150);

    // Requested 10 minutes ago, expired 5 minutes ago: --keep-if-younger 30m keeps them.
    insert_many(&store, "young", TokenKind::Access, 10, t - 600, t - 300).await;
    let (code, out, _) = janitor_on(&app, "--tokens --keep-if-younger 30m --limit 1000").await;
    assert_eq!(code, 0);
    assert_eq!(deleted(&out, "access tokens"), 150);
    assert_eq!(store.count_tokens(TokenKind::Access).await.unwrap(), 10);

    // Hydra's lifespans: tokens requested longer ago count as expired, whatever their stored
    // expiry. A 20-minute-old refresh token still valid for a day goes with --refresh-lifespan 15m.
    insert_many(&store, "r", TokenKind::Refresh, 5, t - 1200, t + 86400).await;
    insert_many(&store, "r-new", TokenKind::Refresh, 5, t - 60, t + 86400).await;
    let (code, out, _) =
        janitor_on(&app, "--tokens --refresh-lifespan 15m --access-lifespan 1h").await;
    assert_eq!(code, 0);
    assert_eq!(deleted(&out, "refresh tokens"), 5);
    assert_eq!(deleted(&out, "access tokens"), 0);
    assert_eq!(store.count_tokens(TokenKind::Refresh).await.unwrap(), 5);
    app.stop().await;
}

#[tokio::test]
async fn configuration_file_and_environment_supply_the_dsn() {
    let (app, store, t) = spawn_with_store().await;
    insert_many(&store, "cfg", TokenKind::Access, 7, t - 7200, t - 3600).await;
    let file =
        std::env::temp_dir().join(format!("pc-janitor-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &file,
        format!("dsn: \"{}\"\nlog:\n  level: error\n", app.dsn),
    )
    .unwrap();
    let (code, out, err) = cli(&["janitor", "-c", file.to_str().unwrap(), "--tokens"]).await;
    std::fs::remove_file(&file).ok();
    assert_eq!(code, 0, "{err}");
    assert_eq!(deleted(&out, "access tokens"), 7);

    // -e, in a real process (the environment is per process): exit codes as the shell sees them.
    insert_many(&store, "env", TokenKind::Access, 3, t - 7200, t - 3600).await;
    let run = |dsn: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["janitor", "-e", "--tokens", "--requests"])
            .env("DSN", dsn)
            .env("LOG_LEVEL", "error")
            .output()
            .unwrap()
    };
    let done = run(&app.dsn);
    let out = String::from_utf8(done.stdout).unwrap();
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(deleted(&out, "access tokens"), 3);
    let failed = run("");
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).starts_with("error: no database URL"));
    let usage = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["janitor", "-e"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    app.stop().await;
}

#[tokio::test]
async fn two_janitors_at_once_delete_each_row_once() {
    let (app, store, t) = spawn_with_store().await;
    insert_many(&store, "race", TokenKind::Access, 3000, t - 7200, t - 3600).await;
    insert_many(
        &store,
        "race-r",
        TokenKind::Refresh,
        1000,
        t - 7200,
        t - 3600,
    )
    .await;
    store
        .insert_tokens(&[row("race-live", TokenKind::Access, "g", t, t + 3600)])
        .await
        .unwrap();
    let args = [
        "janitor",
        app.dsn.as_str(),
        "--tokens",
        "--requests",
        "--batch-size",
        "50",
        "--limit",
        "100000",
    ];
    let (a, b) = tokio::join!(cli(&args), cli(&args));
    assert_eq!(a.0, 0, "{}", a.2);
    assert_eq!(b.0, 0, "{}", b.2);
    assert_eq!(
        deleted(&a.1, "access tokens") + deleted(&b.1, "access tokens"),
        3000
    );
    assert_eq!(
        deleted(&a.1, "refresh tokens") + deleted(&b.1, "refresh tokens"),
        1000
    );
    assert_eq!(store.count_tokens(TokenKind::Access).await.unwrap(), 1);
    assert_eq!(store.count_tokens(TokenKind::Refresh).await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_run_during_live_traffic_deletes_no_live_token() {
    let app = Arc::new(spawn().await);
    let c = Arc::new(client(&app, json!({})).await);
    let store = app.state().store.clone();
    let t = now();
    insert_many(
        &store,
        "backlog",
        TokenKind::Access,
        4000,
        t - 7200,
        t - 3600,
    )
    .await;
    insert_many(
        &store,
        "backlog-code",
        TokenKind::Code,
        500,
        t - 7200,
        t - 3600,
    )
    .await;

    // Four clients issue tokens until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (app, c, stop) = (app.clone(), c.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut issued = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let res = grant(&app, &c, "client_credentials", &[("scope", "read")]).await;
                assert_eq!(res.status(), 200);
                issued.push(s(&json(res).await, "access_token"));
            }
            issued
        }));
    }
    // Traffic is flowing before the janitor starts and keeps flowing after it ends.
    while store.count_tokens(TokenKind::Access).await.unwrap() < 4010 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (code, out, err) =
        janitor_on(&app, "--tokens --requests --batch-size 100 --limit 100000").await;
    let during = store.count_tokens(TokenKind::Access).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let mut issued = Vec::new();
    for w in workers {
        issued.extend(w.await.unwrap());
    }
    assert_eq!(code, 0, "{err}");
    assert_eq!(deleted(&out, "access tokens"), 4000);
    assert_eq!(deleted(&out, "authorization codes"), 500);
    assert!(during >= 10, "live tokens remained: {during}");
    // Every token issued before, during and after the run is still there and active.
    assert_eq!(
        store.count_tokens(TokenKind::Access).await.unwrap(),
        issued.len() as i64
    );
    assert!(issued.len() > 10, "only {} tokens issued", issued.len());
    for tok in &issued {
        assert_active(&app, tok, true).await;
    }
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

#[tokio::test]
async fn in_process_janitor_runs_on_its_interval() {
    let app = spawn_with(|c| c.janitor.interval = std::time::Duration::from_secs(1)).await;
    let store = app.state().store.clone();
    let t = now();
    insert_many(&store, "bg", TokenKind::Access, 40, t - 7200, t - 3600).await;
    insert_many(&store, "bg-live", TokenKind::Access, 2, t, t + 3600).await;
    let mut abandoned = flow("bg-flow", t - 7200, false, 0);
    abandoned.consent = None;
    store
        .insert_flow(&abandoned, FlowState::LoginUnhandled)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while store.count_tokens(TokenKind::Access).await.unwrap() > 2
        || store
            .flow_by_login_challenge("bg-flow")
            .await
            .unwrap()
            .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the in-process janitor did not run"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("portcullis_janitor_deleted_rows_total{kind=\"access_token\"} 40\n"),
        "{metrics}"
    );
    assert!(metrics
        .contains("portcullis_janitor_deleted_rows_total{kind=\"login_consent_request\"} 1\n"));
    assert!(metrics.contains("portcullis_janitor_runs_total{result=\"ok\"} "));
    assert!(metrics.contains("portcullis_janitor_runs_total{result=\"failed\"} 0\n"));
    app.stop().await;
}
