//! `portcullis migrate from-hydra`: a Hydra v1.9.2 database is built here from Hydra's own
//! schema (tests/fixtures/hydra-v1.9.2.postgres.sql) with rows written the way Hydra writes
//! them (pipe-joined lists, AES-GCM sealed keys and sessions, fosite HMAC tokens), imported,
//! and then the server is driven over HTTP with what Hydra's clients and users hold.
//! PostgreSQL only: without TEST_DATABASE_URL the test says so and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
use crate::flow::{
    self, accept_login, assert_oauth_error, claims, consent_challenge, flow_request, introspect,
    login_challenge, userinfo, TestClient, CHALLENGE, REDIRECT,
};
use crate::harness::{base_config, json, shared_keys, TestApp, SECRET};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use portcullis::domain::token::TokenKind;
use portcullis::service::importer::{self, Options, Report};
use portcullis::store::Store;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512_256};
use sqlx::PgPool;

const CLIENT: &str = "hydra-app";
const CLIENT_SECRET: &str = "the-old-hydra-secret";
const KEY_ID: &str = "3f1d3c2e-hydra-key";
const CONSENT: &str = "c0a5e17000000000000000000000000a";
const LOGIN: &str = "10a1000000000000000000000000000a";

/// jwk/aead.go: AES-256-GCM under SHA-256 of the secret (config.GetSystemSecret hashes it),
/// nonce first, URL-safe base64 with padding.
fn hydra_seal(plain: &[u8]) -> String {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &Sha256::digest(SECRET)).unwrap());
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
        .unwrap();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    URL_SAFE.encode(out)
}

/// fosite token/hmac/hmacsha.go: 32 random bytes, HMAC-SHA512/256 keyed by the hashed system
/// secret; returns (token, signature).
fn hydra_token() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let mut mac = <Hmac<Sha512_256> as Mac>::new_from_slice(&Sha256::digest(SECRET)).unwrap();
    mac.update(&raw);
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    (format!("{}.{sig}", URL_SAFE_NO_PAD.encode(raw)), sig)
}

fn go_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Hydra's oauth2.Session JSON as encoding/json writes it (fosite DefaultSession inside).
fn session(subject: &str, consent: &str, expires: &[(&str, i64)], now: i64) -> String {
    let exp: serde_json::Map<String, Value> = expires
        .iter()
        .map(|(k, t)| (k.to_string(), json!(go_time(*t))))
        .collect();
    let via_consent = !consent.is_empty();
    json!({
        "idToken": {
            "Claims": {
                "JTI": "", "Issuer": "http://127.0.0.1:4444/",
                "Subject": if via_consent { subject } else { "" },
                "Audience": if via_consent { json!([CLIENT]) } else { json!(null) },
                "Nonce": if via_consent { "nonce-from-hydra" } else { "" },
                "ExpiresAt": "0001-01-01T00:00:00Z",
                "IssuedAt": go_time(now - 100),
                "RequestedAt": if via_consent { go_time(now - 120) } else { "0001-01-01T00:00:00Z".into() },
                "AuthTime": if via_consent { go_time(now - 130) } else { "0001-01-01T00:00:00Z".into() },
                "AccessTokenHash": "", "AuthenticationContextClassReference": "",
                "AuthenticationMethodsReference": "", "CodeHash": "",
                "Extra": if via_consent { json!({"sid": "sess-1", "email": "alice@example.com"}) } else { json!({}) }
            },
            "Headers": {"Extra": {"kid": format!("public:{KEY_ID}")}},
            "ExpiresAt": exp,
            "Username": "",
            "Subject": subject
        },
        "extra": if via_consent { json!({"tenant": "t1"}) } else { json!({}) },
        "KID": "",
        "ClientID": CLIENT,
        "ConsentChallenge": consent
    })
    .to_string()
}

struct Fixture {
    dsn: String,
    db: String,
    admin_url: String,
    access: String,
    expired_access: String,
    cc_access: String,
    refresh: String,
    code: String,
}

async fn create_database(url: &str, name: &str) -> String {
    let admin = Store::connect(url).await.unwrap();
    admin
        .execute_raw(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    admin.close().await;
    format!("{}/{name}", url.rsplit_once('/').unwrap().0)
}

#[allow(clippy::too_many_arguments)]
async fn insert_token(
    pool: &PgPool,
    table: &str,
    signature: &str,
    request_id: &str,
    requested_at: i64,
    scope: &str,
    form: &str,
    session_data: &str,
    subject: &str,
    challenge: Option<&str>,
) {
    sqlx::query(&format!(
        "INSERT INTO {table} (signature, request_id, requested_at, client_id, scope, granted_scope, form_data, session_data, subject, active, requested_audience, granted_audience, challenge_id) \
         VALUES ($1, $2, to_timestamp($3) AT TIME ZONE 'UTC', $4, $5, $5, $6, $7, $8, TRUE, '', '', $9)"
    ))
    .bind(signature)
    .bind(request_id)
    .bind(requested_at as f64)
    .bind(CLIENT)
    .bind(scope)
    .bind(form)
    .bind(session_data)
    .bind(subject)
    .bind(challenge)
    .execute(pool)
    .await
    .unwrap();
}

/// `to_timestamp(t)` in UTC, for SQL.
fn ts(t: i64) -> String {
    format!("to_timestamp({t}) AT TIME ZONE 'UTC'")
}

/// A token row of Alice's grant (request id and challenge: her consent).
async fn alice_token(
    pool: &PgPool,
    table: &str,
    sig: &str,
    requested_at: i64,
    form: &str,
    session: &str,
) {
    let scope = "openid|offline|read";
    let request = Some(CONSENT);
    insert_token(
        pool,
        table,
        sig,
        CONSENT,
        requested_at,
        scope,
        form,
        session,
        "alice",
        request,
    )
    .await;
}

async fn insert_client(pool: &PgPool, now: i64) {
    // client/client.go: lists pipe-joined, the secret bcrypt-hashed (Hydra's cost 10).
    let hash = bcrypt::hash(CLIENT_SECRET, 10).unwrap();
    sqlx::query(&format!(
        "INSERT INTO hydra_client (id, client_name, client_secret, redirect_uris, grant_types, response_types, scope, owner, policy_uri, tos_uri, client_uri, logo_uri, contacts, client_secret_expires_at, sector_identifier_uri, jwks, jwks_uri, request_uris, token_endpoint_auth_method, request_object_signing_alg, userinfo_signed_response_alg, subject_type, allowed_cors_origins, audience, created_at, updated_at, frontchannel_logout_uri, frontchannel_logout_session_required, post_logout_redirect_uris, backchannel_logout_uri, backchannel_logout_session_required, metadata, token_endpoint_auth_signing_alg) \
         VALUES ($1, 'Hydra App', $2, $3, 'authorization_code|refresh_token|client_credentials', 'code|id_token', 'openid offline read write', 'ops', '', '', '', '', 'a@example.com|b@example.com', 0, '', '{{}}', '', '', 'client_secret_basic', '', 'none', 'public', '', 'api.example.com', {}, {}, '', FALSE, '', '', FALSE, '{{\"tier\":\"gold\"}}', '')",
        ts(now - 86400),
        ts(now - 3600)
    ))
    .bind(CLIENT)
    .bind(&hash)
    .bind(REDIRECT)
    .execute(pool)
    .await
    .unwrap();
}

async fn insert_keys(pool: &PgPool, now: i64) {
    // The ID-token key pair, sealed as jwk/aead.go seals it.
    let private = {
        let mut k = shared_keys().await[0].clone();
        k.insert("kid".into(), json!(format!("private:{KEY_ID}")));
        k
    };
    let public = portcullis::crypto::jwk::public_of(&private);
    let mut public = public;
    public.insert("kid".into(), json!(format!("public:{KEY_ID}")));
    for (k, age) in [(&private, 200), (&public, 200)] {
        sqlx::query(&format!(
            "INSERT INTO hydra_jwk (sid, kid, version, keydata, created_at) VALUES ('hydra.openid.id-token', $1, 0, $2, {})",
            ts(now - 86400 * 30 - age)
        ))
        .bind(k["kid"].as_str().unwrap())
        .bind(hydra_seal(&serde_json::to_vec(k).unwrap()))
        .execute(pool)
        .await
        .unwrap();
    }
}

async fn insert_sessions_and_consents(pool: &PgPool, now: i64) {
    // Login sessions: one remembered, one browser-session only.
    for (id, remember) in [("sess-1", true), ("sess-2", false)] {
        sqlx::query(&format!("INSERT INTO hydra_oauth2_authentication_session (id, authenticated_at, subject, remember) VALUES ($1, {}, 'alice', $2)", ts(now - 130)))
            .bind(id)
            .bind(remember)
            .execute(pool)
            .await
            .unwrap();
    }

    // Alice's remembered consent (forever), and Bob's that ran out an hour ago.
    for (login, consent, subject, remember_for, at) in [
        (LOGIN, CONSENT, "alice", 0, now - 120),
        (
            "10b1000000000000000000000000000b",
            "c0b5e17000000000000000000000000b",
            "bob",
            60,
            now - 7200,
        ),
    ] {
        sqlx::query(&format!(
            "INSERT INTO hydra_oauth2_authentication_request (challenge, requested_scope, verifier, csrf, subject, request_url, skip, client_id, requested_at, authenticated_at, oidc_context, login_session_id, requested_at_audience) \
             VALUES ($1, 'openid|offline|read', $2, $3, $4, 'http://127.0.0.1:4444/oauth2/auth?client_id=hydra-app', FALSE, $5, {t}, {t}, '{{}}', 'sess-1', '')", t = ts(at)))
            .bind(login).bind(format!("lv{login}")).bind(format!("lc{login}")).bind(subject).bind(CLIENT)
            .execute(pool).await.unwrap();
        sqlx::query(&format!(
            "INSERT INTO hydra_oauth2_authentication_request_handled (challenge, subject, remember, remember_for, error, acr, requested_at, authenticated_at, was_used, forced_subject_identifier, context) \
             VALUES ($1, $2, TRUE, 3600, '{{}}', '', {t}, {t}, TRUE, '', '{{}}')", t = ts(at)))
            .bind(login).bind(subject)
            .execute(pool).await.unwrap();
        sqlx::query(&format!(
            "INSERT INTO hydra_oauth2_consent_request (challenge, verifier, client_id, subject, request_url, skip, requested_scope, csrf, authenticated_at, requested_at, oidc_context, forced_subject_identifier, login_session_id, login_challenge, requested_at_audience, acr, context) \
             VALUES ($1, $2, $3, $4, 'http://127.0.0.1:4444/oauth2/auth?client_id=hydra-app', FALSE, 'openid|offline|read', $5, {t}, {t}, '{{}}', '', 'sess-1', $6, '', '', '{{}}')", t = ts(at)))
            .bind(consent).bind(format!("cv{consent}")).bind(CLIENT).bind(subject).bind(format!("cc{consent}")).bind(login)
            .execute(pool).await.unwrap();
        sqlx::query(&format!(
            "INSERT INTO hydra_oauth2_consent_request_handled (challenge, granted_scope, remember, remember_for, error, requested_at, session_access_token, session_id_token, authenticated_at, was_used, granted_at_audience, handled_at) \
             VALUES ($1, 'openid|offline|read', TRUE, $2, '{{}}', {t}, '{{\"tenant\":\"t1\"}}', '{{\"email\":\"alice@example.com\"}}', {t}, TRUE, '', {t})", t = ts(at)))
            .bind(consent).bind(remember_for)
            .execute(pool).await.unwrap();
    }
}

/// Hydra's tokens; returns (access, expired access, client-credentials access, refresh, code).
async fn insert_tokens(pool: &PgPool, now: i64) -> (String, String, String, String, String) {
    // Tokens of Alice's grant (request id = consent challenge), sealed sessions.
    let alive = [
        ("access_token", now + 3000),
        ("refresh_token", now + 86400),
        ("authorize_code", now + 500),
    ];
    let (access, sig) = hydra_token();
    let sealed = hydra_seal(session("alice", CONSENT, &alive, now).as_bytes());
    alice_token(pool, "hydra_oauth2_access", &sig, now - 100, "", &sealed).await;
    let (refresh, sig) = hydra_token();
    alice_token(pool, "hydra_oauth2_refresh", &sig, now - 100, "", &sealed).await;
    let (expired_access, sig) = hydra_token();
    let dead = hydra_seal(session("alice", CONSENT, &[("access_token", now - 10)], now).as_bytes());
    alice_token(pool, "hydra_oauth2_access", &sig, now - 4000, "", &dead).await;
    // A code with its PKCE and OIDC rows (fosite stores the sanitized forms).
    let (code, sig) = hydra_token();
    let form = format!(
        "redirect_uri={}",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    alice_token(pool, "hydra_oauth2_code", &sig, now - 30, &form, &sealed).await;
    let pkce = format!("code_challenge={CHALLENGE}&code_challenge_method=S256");
    alice_token(pool, "hydra_oauth2_pkce", &sig, now - 30, &pkce, &sealed).await;
    let oidc = "nonce=nonce-from-hydra";
    alice_token(pool, "hydra_oauth2_oidc", &sig, now - 30, oidc, &sealed).await;
    // A client_credentials token written while encrypt_at_rest was off: plain JSON.
    let (cc_access, sig) = hydra_token();
    let plain = session(CLIENT, "", &[("access_token", now + 3000)], now);
    insert_token(
        pool,
        "hydra_oauth2_access",
        &sig,
        "5a0b6c7d-cc",
        now - 50,
        "read",
        "",
        &plain,
        CLIENT,
        None,
    )
    .await;
    (access, expired_access, cc_access, refresh, code)
}

async fn insert_jtis(pool: &PgPool, now: i64) {
    // The jti blacklist: one live, one expired.
    for (sig, exp) in [("a".repeat(64), now + 600), ("b".repeat(64), now - 600)] {
        sqlx::query(&format!(
            "INSERT INTO hydra_oauth2_jti_blacklist (signature, expires_at) VALUES ($1, {})",
            ts(exp)
        ))
        .bind(sig)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// A Hydra v1.9.2 database with one client, its keys, a remembered login and consent, and
/// live, expired and spent artefacts.
async fn hydra_fixture(url: &str, now: i64) -> Fixture {
    let db = format!("hydra_{}", uuid::Uuid::new_v4().simple());
    let dsn = create_database(url, &db).await;
    let store = Store::connect(&dsn).await.unwrap();
    store
        .execute_raw(include_str!("../fixtures/hydra-v1.9.2.postgres.sql"))
        .await
        .unwrap();
    store.close().await;
    let pool = PgPool::connect(&dsn).await.unwrap();
    insert_client(&pool, now).await;
    insert_keys(&pool, now).await;
    insert_sessions_and_consents(&pool, now).await;
    let (access, expired_access, cc_access, refresh, code) = insert_tokens(&pool, now).await;
    insert_jtis(&pool, now).await;
    pool.close().await;
    Fixture {
        dsn,
        db,
        admin_url: url.to_string(),
        access,
        expired_access,
        cc_access,
        refresh,
        code,
    }
}

fn counts(r: &Report, kind: &str) -> (u64, u64, u64) {
    let k = r.kind(kind).unwrap_or_else(|| panic!("no {kind} in\n{r}"));
    (k.read, k.imported, k.skipped_total())
}

/// Runs the release binary with the import's environment.
fn binary(args: &[&str], dsn: &str, secret: &str) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("DSN", dsn)
        .env("SECRETS_SYSTEM", secret)
        .env("LOG_LEVEL", "error")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `portcullis migrate from-hydra <fixture> <flags>` into the app's database, with `secret`.
fn from_hydra(fx: &Fixture, app: &TestApp, flags: &[&str], secret: &str) -> (i32, String, String) {
    let args = [&["migrate", "from-hydra", fx.dsn.as_str()], flags].concat();
    binary(&args, &app.dsn, secret)
}

async fn spawn_target(app: Option<TestApp>) -> TestApp {
    let edit = |c: &mut portcullis::config::Config| {
        c.urls.login = flow::LOGIN_URL.into();
        c.urls.consent = flow::CONSENT_URL.into();
        c.urls.error = flow::ERROR_URL.into();
    };
    match app {
        None => flow::spawn().await,
        Some(a) => a.restart_with(edit).await,
    }
}

/// The binary's dry run, its refusals, and the import itself.
async fn import_through_the_binary(fx: &Fixture, app: &TestApp, target: &Store) {
    // Rehearsal: counts, writes nothing.
    let (code, out, err) = from_hydra(fx, app, &["--dry-run"], SECRET);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Dry run: nothing was written."), "{out}");
    assert!(out.contains("access tokens"), "{out}");
    assert_eq!(target.count_tokens(TokenKind::Access).await.unwrap(), 0);
    // Without --yes and without an answer nothing happens.
    let (code, _, err) = from_hydra(fx, app, &[], SECRET);
    assert_eq!(code, 1);
    assert!(err.contains("Aborted"), "{err}");
    // Another secret cannot open Hydra's keys: refused before anything is written.
    let (code, _, err) = from_hydra(fx, app, &["--yes"], "some-other-secret-0123456789");
    assert_eq!(code, 1);
    assert!(err.contains("SECRETS_SYSTEM does not decrypt"), "{err}");
    assert!(target.get_client(CLIENT).await.is_err());

    // The import itself, through the binary.
    let (code, out, err) = from_hydra(fx, app, &["--yes"], SECRET);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("clients"), "{out}");
    assert!(
        err.contains("replaced 2 key(s) generated by Portcullis"),
        "{err}"
    );
}

/// A second run (library call) changes nothing: the report field by field.
async fn second_run_changes_nothing(fx: &Fixture, app: &TestApp, target: &Store, now: i64) {
    // A second run changes nothing (library call: the report is checked field by field).
    let cfg = base_config(&app.dsn);
    let mut progress = Vec::new();
    let again = importer::run(&cfg, &Options::new(&fx.dsn), now, &mut progress)
        .await
        .unwrap();
    assert_eq!(again.imported_total(), 0, "{again}");
    assert_eq!(counts(&again, "clients"), (1, 0, 1));
    assert_eq!(counts(&again, "json web keys"), (2, 0, 2));
    assert_eq!(counts(&again, "login sessions"), (2, 0, 2));
    assert_eq!(counts(&again, "remembered consents"), (2, 0, 2));
    assert_eq!(counts(&again, "authorization codes"), (1, 0, 1));
    assert_eq!(counts(&again, "access tokens"), (3, 0, 3));
    assert_eq!(counts(&again, "refresh tokens"), (1, 0, 1));
    assert_eq!(counts(&again, "spent assertion jtis"), (2, 0, 2));
    let ak = again.kind("access tokens").unwrap();
    assert_eq!(ak.skipped.get("expired"), Some(&1));
    assert_eq!(ak.skipped.get("already imported"), Some(&2));
    let ck = again.kind("remembered consents").unwrap();
    assert_eq!(ck.skipped.get("remember_for elapsed"), Some(&1));
    assert_eq!(target.count_tokens(TokenKind::Access).await.unwrap(), 2);
}

/// The imported client (every column, the old bcrypt secret) and Hydra's keys.
async fn client_and_keys_survive(app: &TestApp, hydra: &TestClient) {
    // Clients: every column, and the old secret (bcrypt) still authenticates.
    let c = app.get_json(app.admin(&format!("/clients/{CLIENT}"))).await;
    assert_eq!(c["client_name"], "Hydra App");
    assert_eq!(
        c["grant_types"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(c["contacts"], json!(["a@example.com", "b@example.com"]));
    assert_eq!(c["audience"], json!(["api.example.com"]));
    assert_eq!(c["metadata"], json!({"tier": "gold"}));
    let res = flow::token(
        app,
        hydra,
        &[("grant_type", "client_credentials"), ("scope", "read")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let wrong = TestClient {
        id: CLIENT.into(),
        secret: "not-the-secret".into(),
    };
    let res = flow::token(app, &wrong, &[("grant_type", "client_credentials")]).await;
    assert_oauth_error(res, 401, "invalid_client").await;

    // JWKS: exactly Hydra's kid.
    assert_eq!(app.jwks_kids().await, vec![format!("public:{KEY_ID}")]);
}

/// Hydra's tokens answer as Hydra answered them.
async fn tokens_survive(app: &TestApp, hydra: &TestClient, fx: &Fixture, now: i64) {
    // Hydra's access token introspects as Hydra answered it.
    let i = introspect(app, &fx.access).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], "alice");
    assert_eq!(i["client_id"], CLIENT);
    assert_eq!(i["scope"], "openid offline read");
    assert_eq!(i["ext"], json!({"tenant": "t1"}));
    assert_eq!(i["exp"], now + 3000);
    assert_eq!(i["iat"], now - 100);
    assert_eq!(i["token_use"], "access_token");
    let i = introspect(app, &fx.cc_access).await;
    assert_eq!(
        (i["active"].clone(), i["sub"].clone(), i["scope"].clone()),
        (json!(true), json!(CLIENT), json!("read"))
    );
    // Nothing expired comes back.
    assert_eq!(
        introspect(app, &fx.expired_access).await,
        json!({"active": false})
    );

    // Userinfo answers for Hydra's token.
    let res = userinfo(app, &fx.access).await;
    assert_eq!(res.status(), 200);
    let u = json(res).await;
    assert_eq!(
        (u["sub"].clone(), u["email"].clone()),
        (json!("alice"), json!("alice@example.com"))
    );

    // Hydra's code redeems with its PKCE verifier; the ID token carries Hydra's nonce and kid.
    let res = flow::exchange(app, hydra, &fx.code).await;
    assert_eq!(res.status(), 200);
    let t = json(res).await;
    let id = t["id_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], format!("public:{KEY_ID}"));
    assert_eq!(claims(id)["nonce"], "nonce-from-hydra");
    assert_eq!(claims(id)["sid"], "sess-1");

    // Hydra's refresh token redeems once; the second time it is refused.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", fx.refresh.as_str()),
    ];
    let res = flow::token(app, hydra, &form).await;
    assert_eq!(res.status(), 200);
    let t = json(res).await;
    assert_eq!(claims(t["id_token"].as_str().unwrap())["sub"], "alice");
    let res = flow::token(app, hydra, &form).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

/// Alice's remembered consent is skipped; Bob's had run out, so he is asked again.
async fn consents_survive(app: &TestApp) {
    for (subject, skip) in [("alice", true), ("bob", false)] {
        let login = login_challenge(app, CLIENT, &[("scope", "openid read")]).await;
        let to = accept_login(app, &login, json!({"subject": subject})).await;
        let consent = consent_challenge(app, &to).await;
        let query = format!("consent_challenge={consent}");
        let req = json(flow_request(app, "consent", &query).await).await;
        assert_eq!(req["skip"], skip, "{req}");
    }
}

/// The same import into SQLite: everything written once, nothing on the second run.
async fn import_into_sqlite(fx: &Fixture, now: i64) {
    let path = std::env::temp_dir().join(format!("pc_import_{}.db", uuid::Uuid::new_v4().simple()));
    let sqlite = format!("sqlite://{}", path.display());
    let cfg = base_config(&sqlite);
    let first = importer::run(&cfg, &Options::new(&fx.dsn), now, &mut Vec::new())
        .await
        .unwrap();
    let written: Vec<(&str, u64)> = first.kinds.iter().map(|k| (k.kind, k.imported)).collect();
    assert_eq!(
        written,
        vec![
            ("clients", 1),
            ("json web keys", 2),
            ("login sessions", 1),
            ("remembered consents", 1),
            ("authorization codes", 1),
            ("access tokens", 2),
            ("refresh tokens", 1),
            ("spent assertion jtis", 1),
        ],
        "{first}"
    );
    let second = importer::run(&cfg, &Options::new(&fx.dsn), now, &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(second.imported_total(), 0, "{second}");
    let store = Store::connect(&sqlite).await.unwrap();
    assert_eq!(store.count_tokens(TokenKind::Access).await.unwrap(), 2);
    assert!(store
        .get_client(CLIENT)
        .await
        .unwrap()
        .secret_hash
        .starts_with("$2"));
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

async fn drop_fixture(fx: Fixture) {
    let admin = Store::connect(&fx.admin_url).await.unwrap();
    let _ = admin
        .execute_raw(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", fx.db))
        .await;
    admin.close().await;
}

#[tokio::test]
async fn hydra_database_imports_and_everything_keeps_working() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: the Hydra import test needs PostgreSQL (set TEST_DATABASE_URL)");
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let fx = hydra_fixture(&url, now).await;
    let app = spawn_target(None).await;
    let target = Store::connect(&app.dsn).await.unwrap();
    import_through_the_binary(&fx, &app, &target).await;
    second_run_changes_nothing(&fx, &app, &target, now).await;
    target.close().await;

    // Serve on the imported database (a restart, as after a real migration).
    let app = spawn_target(Some(app)).await;
    let hydra = TestClient {
        id: CLIENT.into(),
        secret: CLIENT_SECRET.into(),
    };
    client_and_keys_survive(&app, &hydra).await;
    tokens_survive(&app, &hydra, &fx, now).await;
    consents_survive(&app).await;
    app.stop().await;

    import_into_sqlite(&fx, now).await;
    drop_fixture(fx).await;
}
