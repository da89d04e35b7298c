//! Helpers that play the browser, the login/consent app and the relying party.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
use super::harness::{json, TestApp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const REDIRECT: &str = "http://127.0.0.1:5555/cb";
pub const LOGIN_URL: &str = "http://127.0.0.1:5555/login";
pub const CONSENT_URL: &str = "http://127.0.0.1:5555/consent";
pub const ERROR_URL: &str = "http://127.0.0.1:5555/error";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An app with login, consent and error URLs pointing at a (never contacted) loopback app.
pub async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(edit: impl FnOnce(&mut portcullis::config::Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        c.urls.login = LOGIN_URL.into();
        c.urls.consent = CONSENT_URL.into();
        c.urls.error = ERROR_URL.into();
        edit(c);
    })
    .await
}

pub struct TestClient {
    pub id: String,
    pub secret: String,
}

/// A confidential client for the code flow with refresh tokens, merged with `extra`.
pub async fn client(app: &TestApp, extra: Value) -> TestClient {
    let mut body = json!({
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types": ["code"],
        "scope": "openid offline read write",
        "redirect_uris": [REDIRECT],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let res = app.post_json(app.admin("/clients"), &body).await;
    assert_eq!(res.status(), 201);
    let c = json(res).await;
    TestClient {
        id: c["client_id"].as_str().unwrap().to_string(),
        secret: c["client_secret"].as_str().unwrap_or("").to_string(),
    }
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn location(res: &reqwest::Response) -> url::Url {
    let loc = res
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {}", res.status()))
        .to_str()
        .unwrap();
    url::Url::parse(loc).unwrap()
}

/// A parameter from the query, or from the fragment (fragment response mode).
pub fn param(u: &url::Url, name: &str) -> Option<String> {
    u.query_pairs()
        .chain(url::form_urlencoded::parse(
            u.fragment().unwrap_or("").as_bytes(),
        ))
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn without_query(u: &url::Url) -> String {
    let mut u = u.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The authorization URL with the usual parameters, overridden or extended by `extra`.
pub fn auth_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("client_id".into(), client_id.into()),
        ("response_type".into(), "code".into()),
        ("scope".into(), "openid offline".into()),
        ("redirect_uri".into(), REDIRECT.into()),
        ("state".into(), "state-123456".into()),
        ("nonce".into(), "nonce-abcdefgh".into()),
        ("code_challenge".into(), CHALLENGE.into()),
        ("code_challenge_method".into(), "S256".into()),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k.to_string(), v.to_string()));
        }
    }
    let mut u = url::Url::parse(&app.public("/oauth2/auth")).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// GET `url` with the app's cookie-keeping, non-redirecting client.
/// Redirects point at the configured issuer (port 4444); the app listens on another port.
pub fn on_app(app: &TestApp, url: &str) -> String {
    url.replace("http://127.0.0.1:4444", &app.public)
}

pub async fn browse(app: &TestApp, url: &str) -> reqwest::Response {
    app.http.get(on_app(app, url)).send().await.unwrap()
}

pub async fn challenge_of(res: &reqwest::Response, name: &str) -> String {
    assert_eq!(res.status(), 302, "expected a redirect");
    param(&location(res), name).unwrap_or_else(|| panic!("no {name} in {}", location(res)))
}

pub async fn accept_login(app: &TestApp, challenge: &str, body: Value) -> String {
    let res = app
        .put_json(
            app.admin(&format!(
                "/oauth2/auth/requests/login/accept?login_challenge={challenge}"
            )),
            &body,
        )
        .await;
    assert_eq!(res.status(), 200);
    json(res).await["redirect_to"].as_str().unwrap().to_string()
}

pub async fn accept_consent(app: &TestApp, challenge: &str, body: Value) -> String {
    let res = app
        .put_json(
            app.admin(&format!(
                "/oauth2/auth/requests/consent/accept?consent_challenge={challenge}"
            )),
            &body,
        )
        .await;
    assert_eq!(res.status(), 200);
    json(res).await["redirect_to"].as_str().unwrap().to_string()
}

/// Runs login and consent for `subject` granting `scopes`; returns the final redirect URL.
pub async fn run_flow(
    app: &TestApp,
    client_id: &str,
    extra: &[(&str, &str)],
    scopes: &[&str],
) -> url::Url {
    let res = browse(app, &auth_url(app, client_id, extra)).await;
    let login = challenge_of(&res, "login_challenge").await;
    let to = accept_login(
        app,
        &login,
        json!({"subject": "alice", "remember": true, "remember_for": 3600}),
    )
    .await;
    let res = browse(app, &to).await;
    let consent = challenge_of(&res, "consent_challenge").await;
    let to = accept_consent(
        app,
        &consent,
        json!({
            "grant_scope": scopes,
            "remember": true,
            "remember_for": 3600,
            "session": {"id_token": {"email": "alice@example.com", "sub": "mallory"}, "access_token": {"role": "admin"}}
        }),
    )
    .await;
    let res = browse(app, &to).await;
    assert_eq!(res.status(), 302);
    location(&res)
}

/// A code for `client_id` with the default PKCE challenge.
pub async fn code(app: &TestApp, client_id: &str, scopes: &[&str]) -> String {
    let u = run_flow(app, client_id, &[], scopes).await;
    param(&u, "code").unwrap_or_else(|| panic!("no code in {u}"))
}

pub async fn token(app: &TestApp, c: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(app.public("/oauth2/token"))
        .basic_auth(&c.id, Some(&c.secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

pub async fn exchange(app: &TestApp, c: &TestClient, code: &str) -> reqwest::Response {
    token(
        app,
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub async fn introspect(app: &TestApp, token: &str) -> Value {
    let res = app
        .http
        .post(app.admin("/oauth2/introspect"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    json(res).await
}

/// Asserts an OAuth error JSON response.
pub async fn assert_oauth_error(res: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(
        res.headers()["content-type"],
        "application/json;charset=UTF-8"
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = json(res).await;
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().unwrap().len() > 10);
    body
}

/// Decodes the claims of a compact JWS without verifying it (verification is tested apart).
pub fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
