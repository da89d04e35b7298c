//! Helpers that play the browser, the login/consent app and the relying party.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]
use super::harness::{json, TestApp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

pub const REDIRECT: &str = "http://127.0.0.1:5555/cb";
pub const LOGIN_URL: &str = "http://127.0.0.1:5555/login";
pub const CONSENT_URL: &str = "http://127.0.0.1:5555/consent";
pub const ERROR_URL: &str = "http://127.0.0.1:5555/error";
pub const LOGOUT_URL: &str = "http://127.0.0.1:5555/logout";
pub const LOGGED_OUT: &str = "http://127.0.0.1:5555/logged-out";
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

/// Points the logout and post-logout URLs at the loopback app.
pub fn logout_urls(c: &mut portcullis::config::Config) {
    c.urls.logout = LOGOUT_URL.into();
    c.urls.post_logout_redirect = LOGGED_OUT.into();
}

/// Enables pairwise subject identifiers with a fixed salt.
pub fn pairwise(c: &mut portcullis::config::Config) {
    c.oidc.subject_identifiers.supported_types = vec![
        portcullis::config::SubjectType::Public,
        portcullis::config::SubjectType::Pairwise,
    ];
    c.oidc.subject_identifiers.pairwise.salt = portcullis::config::Secret("pairwise-salt".into());
}

/// The public logout endpoint with `query`.
pub fn logout_url(app: &TestApp, query: &str) -> String {
    format!("{}?{query}", app.public("/oauth2/sessions/logout"))
}

/// An app (as `spawn`) and a default client (as `client` with no extras).
pub async fn app_and_client() -> (TestApp, TestClient) {
    let app = spawn().await;
    let c = client(&app, json!({})).await;
    (app, c)
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
    let res = app.admin_post("/clients", &body).await;
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
/// The issuer's origin is replaced wherever it stands as a whole origin (not followed by
/// another digit, so a URL already on an app port such as 44441 is left alone).
pub fn on_app(app: &TestApp, url: &str) -> String {
    const ISSUER: &str = "http://127.0.0.1:4444";
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find(ISSUER) {
        let after = &rest[i + ISSUER.len()..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(ISSUER);
        } else {
            out.push_str(&app.public);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

pub async fn browse(app: &TestApp, url: &str) -> reqwest::Response {
    app.http.get(on_app(app, url)).send().await.unwrap()
}

pub async fn challenge_of(res: &reqwest::Response, name: &str) -> String {
    assert_eq!(res.status(), 302, "expected a redirect");
    param(&location(res), name).unwrap_or_else(|| panic!("no {name} in {}", location(res)))
}

pub async fn accept_login(app: &TestApp, challenge: &str, body: Value) -> String {
    let res = flow_answer(app, "login", "accept", challenge, body).await;
    assert_eq!(res.status(), 200);
    redirect_to(res).await
}

pub async fn accept_consent(app: &TestApp, challenge: &str, body: Value) -> String {
    let res = flow_answer(app, "consent", "accept", challenge, body).await;
    assert_eq!(res.status(), 200);
    redirect_to(res).await
}

/// Runs login and consent for `subject` granting `scopes`; returns the final redirect URL.
pub async fn run_flow(
    app: &TestApp,
    client_id: &str,
    extra: &[(&str, &str)],
    scopes: &[&str],
) -> url::Url {
    let login = login_challenge(app, client_id, extra).await;
    let to = accept_login(
        app,
        &login,
        json!({"subject": "alice", "remember": true, "remember_for": 3600}),
    )
    .await;
    let consent = consent_challenge(app, &to).await;
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
        .post_form(app.admin("/oauth2/introspect"), &[("token", token)])
        .await;
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

/// A string field of a JSON object.
pub fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_string()
}

/// Starts an authorization request with `extra` and returns the login challenge.
pub async fn login_challenge(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let res = authorize(app, client_id, extra).await;
    challenge_of(&res, "login_challenge").await
}

/// Follows the redirect `to` (after an accepted login) and returns the consent challenge.
pub async fn consent_challenge(app: &TestApp, to: &str) -> String {
    challenge_of(&browse(app, to).await, "consent_challenge").await
}

/// The `error` parameter of a redirect.
pub fn redirect_error(res: &reqwest::Response) -> String {
    param(&location(res), "error").unwrap_or_else(|| panic!("no error in {}", location(res)))
}

/// GET `/oauth2/auth/requests/{kind}?{query}` on the admin API.
pub async fn flow_request(app: &TestApp, kind: &str, query: &str) -> reqwest::Response {
    app.get(app.admin(&format!("/oauth2/auth/requests/{kind}?{query}")))
        .await
}

/// The login request for `challenge`, as the login app reads it.
pub async fn login_request(app: &TestApp, challenge: &str) -> Value {
    json(flow_request(app, "login", &format!("challenge={challenge}")).await).await
}

/// The consent request for `challenge`, as the consent app reads it.
pub async fn consent_request(app: &TestApp, challenge: &str) -> Value {
    json(flow_request(app, "consent", &format!("challenge={challenge}")).await).await
}

/// PUT `/oauth2/auth/requests/{kind}/{action}?{kind}_challenge={challenge}` with `body`.
pub async fn flow_answer(
    app: &TestApp,
    kind: &str,
    action: &str,
    challenge: &str,
    body: Value,
) -> reqwest::Response {
    let url = format!("/oauth2/auth/requests/{kind}/{action}?{kind}_challenge={challenge}");
    app.put_json(app.admin(&url), &body).await
}

/// The `redirect_to` of an accept or reject answer.
pub async fn redirect_to(res: reqwest::Response) -> String {
    json(res).await["redirect_to"].as_str().unwrap().to_string()
}

/// The refresh-token grant.
pub async fn refresh(app: &TestApp, c: &TestClient, refresh_token: &str) -> reqwest::Response {
    token(
        app,
        c,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// The token endpoint with `grant_type` and `extra` parameters.
pub async fn grant(
    app: &TestApp,
    c: &TestClient,
    grant_type: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", grant_type)];
    form.extend_from_slice(extra);
    token(app, c, &form).await
}

/// The client-credentials grant with `extra` parameters; returns the token response body.
pub async fn client_credentials(app: &TestApp, c: &TestClient, extra: &[(&str, &str)]) -> Value {
    json(grant(app, c, "client_credentials", extra).await).await
}

/// The code flow for `scopes` and its exchange; returns the token response body.
pub async fn tokens(app: &TestApp, c: &TestClient, scopes: &[&str]) -> Value {
    let code_ = code(app, &c.id, scopes).await;
    json(exchange(app, c, &code_).await).await
}

/// Asserts what introspection says of `token`'s `active`.
pub async fn assert_active(app: &TestApp, token: &str, active: bool) {
    assert_eq!(introspect(app, token).await["active"], active, "{token}");
}

/// GET /userinfo with `token` as bearer.
pub async fn userinfo(app: &TestApp, token: &str) -> reqwest::Response {
    app.get_bearer(app.public("/userinfo"), token).await
}

/// A relying party's back-channel endpoint that records the logout tokens it receives.
pub async fn backchannel_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    let app = axum::Router::new().route(
        "/bc",
        axum::routing::post(move |body: String| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/bc"), got)
}

/// The `logout_token` claims of a back-channel request body.
pub fn logout_token_claims(body: &str) -> Value {
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned();
    claims(&token)
}

/// Reads the logout request for `challenge` (asserting 200) and accepts it (asserting 200);
/// returns the request and where the browser goes next.
pub async fn read_and_accept_logout(app: &TestApp, challenge: &str) -> (Value, String) {
    let res = flow_request(app, "logout", &format!("logout_challenge={challenge}")).await;
    assert_eq!(res.status(), 200);
    let request = json(res).await;
    let res = flow_answer(app, "logout", "accept", challenge, json!({})).await;
    assert_eq!(res.status(), 200);
    (request, redirect_to(res).await)
}

/// POST /oauth2/revoke for `token`, authenticated as `who`.
pub async fn revoke(app: &TestApp, who: &TestClient, token: &str) -> reqwest::Response {
    let req = app.http.post(app.public("/oauth2/revoke"));
    let req = req.basic_auth(&who.id, Some(&who.secret));
    req.form(&[("token", token)]).send().await.unwrap()
}

/// The implicit flow (`token id_token`) granting `openid`; returns the redirect to the client.
pub async fn implicit_flow(app: &TestApp, client_id: &str) -> url::Url {
    run_flow(
        app,
        client_id,
        &[("response_type", "token id_token")],
        &["openid"],
    )
    .await
}

/// Client metadata for a client with the implicit grant and `response_types`.
pub fn implicit_client(response_types: &[&str]) -> Value {
    json!({
        "grant_types": ["authorization_code", "implicit", "refresh_token"],
        "response_types": response_types,
    })
}

/// A new authorization request, its login accepted with `login`; returns the consent challenge.
pub async fn consent_for(app: &TestApp, client_id: &str, login: Value) -> String {
    let challenge = login_challenge(app, client_id, &[]).await;
    let to = accept_login(app, &challenge, login).await;
    consent_challenge(app, &to).await
}

/// The browser opens the authorization URL for `client_id` with `extra` (see `auth_url`).
pub async fn authorize(
    app: &TestApp,
    client_id: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    browse(app, &auth_url(app, client_id, extra)).await
}

/// Rejects the `kind` (login, consent, logout) request `challenge` with `body`.
pub async fn reject(app: &TestApp, kind: &str, challenge: &str, body: Value) -> reqwest::Response {
    flow_answer(app, kind, "reject", challenge, body).await
}
