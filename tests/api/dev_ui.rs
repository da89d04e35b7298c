//! The `--dev` demo login, consent and logout pages, driven over HTTP as a browser would:
//! accept and deny paths, remembered sessions, logout, CSRF, escaping, and the refusal outside
//! development mode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use crate::flow::{
    auth_url, authorize, browse, client, exchange, flow_request, introspect, location, param,
    without_query, REDIRECT,
};
use crate::harness::{assert_error, json, TestApp};
use serde_json::json;

const ISSUER: &str = "http://127.0.0.1:4444/";

pub async fn spawn_dev() -> TestApp {
    TestApp::spawn_dev_with(|_| {}).await
}

/// The value of a hidden (or any) input, as the page renders it.
pub fn input_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no input {name} in {page}"))
        + marker.len();
    let len = page[start..].find('"').unwrap();
    page[start..start + len].to_string()
}

/// The security headers every demo page and redirect carries.
fn assert_protected(res: &reqwest::Response) {
    let h = res.headers();
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["pragma"], "no-cache");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(
        csp.ends_with("; base-uri 'none'; frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
}

/// GETs a demo page (a URL on the issuer) and checks it is a protected HTML page.
async fn page(app: &TestApp, url: &str) -> String {
    let res = browse(app, url).await;
    assert_eq!(res.status(), 200, "{url}");
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert_protected(&res);
    let body = res.text().await.unwrap();
    assert!(body.contains("<strong>Development aid.</strong>"), "{body}");
    body
}

pub async fn post(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(app.public(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// A 303 to the issuer's authorization endpoint (or logout endpoint) carrying `param`.
pub fn assert_see_other(res: &reqwest::Response, path: &str, name: &str) -> url::Url {
    assert_eq!(res.status(), 303);
    assert_protected(res);
    let to = location(res);
    assert_eq!(without_query(&to), format!("{ISSUER}{path}"));
    assert!(param(&to, name).is_some(), "no {name} in {to}");
    to
}

/// A 302 to the demo `page` (login, consent, logout): its `<page>_challenge` and URL.
fn fallback_redirect(res: &reqwest::Response, page: &str) -> (String, url::Url) {
    assert_eq!(res.status(), 302);
    let to = location(res);
    assert_eq!(
        without_query(&to),
        format!("{ISSUER}oauth2/fallbacks/{page}")
    );
    let challenge = param(&to, &format!("{page}_challenge")).unwrap();
    (challenge, to)
}

/// Submits the form of the demo `page` for `challenge` with `csrf` and then `fields`.
pub async fn submit(
    app: &TestApp,
    page: &str,
    challenge: &str,
    csrf: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let name = format!("{page}_challenge");
    let mut form = vec![(name.as_str(), challenge), ("csrf_token", csrf)];
    form.extend_from_slice(fields);
    post(app, &format!("/oauth2/fallbacks/{page}"), &form).await
}

/// From `/oauth2/auth` to the demo login page: its URL's challenge and the page.
async fn start(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> (String, String) {
    login_page_from(app, &auth_url(app, client_id, extra)).await
}

/// Opens an authorization URL and lands on the demo login page: its challenge and the page.
pub async fn login_page_from(app: &TestApp, authorization_url: &str) -> (String, String) {
    let res = browse(app, authorization_url).await;
    let (challenge, to) = fallback_redirect(&res, "login");
    (challenge, page(app, to.as_str()).await)
}

/// Submits the consent page with the given scopes ticked; returns the client's redirect.
pub async fn consent(
    app: &TestApp,
    challenge: &str,
    consent_page: &str,
    scopes: &[&str],
    action: &str,
) -> url::Url {
    let csrf = input_value(consent_page, "csrf_token");
    let mut fields = vec![("action", action)];
    fields.extend(scopes.iter().map(|s| ("grant_scope", *s)));
    let res = submit(app, "consent", challenge, &csrf, &fields).await;
    let back = assert_see_other(&res, "oauth2/auth", "consent_verifier");
    let res = browse(app, back.as_str()).await;
    assert_eq!(res.status(), 302);
    location(&res)
}

/// Logs in as `user` and lands on the consent page: its challenge and the page.
pub async fn log_in(
    app: &TestApp,
    challenge: &str,
    login_page: &str,
    user: &str,
    remember: bool,
) -> (String, String) {
    let csrf = input_value(login_page, "csrf_token");
    let mut fields = vec![("username", user), ("action", "accept")];
    if remember {
        fields.push(("remember", "true"));
    }
    let res = submit(app, "login", challenge, &csrf, &fields).await;
    let back = assert_see_other(&res, "oauth2/auth", "login_verifier");
    let res = browse(app, back.as_str()).await;
    let (consent, to) = fallback_redirect(&res, "consent");
    (consent, page(app, to.as_str()).await)
}

#[tokio::test]
async fn accept_path_ends_with_tokens_for_the_typed_user() {
    let app = spawn_dev().await;
    let c = client(&app, json!({"client_name": "Demo App"})).await;
    let (login, body) = start(&app, &c.id, &[("scope", "openid offline read")]).await;
    assert!(body.contains("<h1>Log in</h1>"), "{body}");
    assert!(body.contains(&format!(
        "<strong>Demo App</strong> (client ID <code>{}</code>)",
        c.id
    )));
    assert!(body
        .contains("Requested scopes: <code>openid</code> <code>offline</code> <code>read</code>"));
    assert_eq!(input_value(&body, "login_challenge"), login);
    assert!(body.contains("value=\"\" autofocus"));
    assert!(body.contains("<form method=\"post\" action=\"login\">"));

    let (consent_challenge, body) = log_in(&app, &login, &body, "  alice ", false).await;
    assert!(body.contains("<h1>Allow access</h1>"));
    assert!(
        body.contains("on behalf of <strong>alice</strong>"),
        "{body}"
    );
    for s in ["openid", "offline", "read"] {
        assert!(body.contains(&format!(
            "<input type=\"checkbox\" name=\"grant_scope\" value=\"{s}\" checked>"
        )));
    }
    // Untick `read`; a scope that was never requested is not granted either.
    let cb = consent(
        &app,
        &consent_challenge,
        &body,
        &["openid", "offline", "write"],
        "accept",
    )
    .await;
    assert_eq!(without_query(&cb), REDIRECT);
    assert_eq!(param(&cb, "state").as_deref(), Some("state-123456"));
    assert_eq!(param(&cb, "scope").as_deref(), Some("openid offline"));
    let code = param(&cb, "code").unwrap();

    let res = exchange(&app, &c, &code).await;
    assert_eq!(res.status(), 200);
    let t = json(res).await;
    assert_eq!(t["scope"], "openid offline");
    assert!(t["refresh_token"].is_string() && t["id_token"].is_string());
    let intro = introspect(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["sub"], "alice");

    // The challenge is spent: the page and the form both answer 409 now.
    let res = browse(
        &app,
        &format!("{ISSUER}oauth2/fallbacks/login?login_challenge={login}"),
    )
    .await;
    assert_eq!(res.status(), 409);
    assert_eq!(json(res).await["error"], "Conflict");
    app.stop().await;
}

#[tokio::test]
async fn deny_at_login_and_at_consent_reach_the_client_as_access_denied() {
    let app = spawn_dev().await;
    let c = client(&app, json!({})).await;

    // Deny needs no username.
    let (login, body) = start(&app, &c.id, &[]).await;
    let csrf = input_value(&body, "csrf_token");
    let fields = [("username", ""), ("action", "deny")];
    let res = submit(&app, "login", &login, &csrf, &fields).await;
    let back = assert_see_other(&res, "oauth2/auth", "login_verifier");
    let res = browse(&app, back.as_str()).await;
    assert_eq!(res.status(), 302);
    let cb = location(&res);
    assert_eq!(without_query(&cb), REDIRECT);
    assert_eq!(param(&cb, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        param(&cb, "error_description").as_deref(),
        Some("The resource owner denied the request")
    );
    assert_eq!(param(&cb, "state").as_deref(), Some("state-123456"));
    assert!(param(&cb, "code").is_none());

    // Deny at consent.
    let (login, body) = start(&app, &c.id, &[]).await;
    let (consent_challenge, body) = log_in(&app, &login, &body, "bob", false).await;
    let cb = consent(&app, &consent_challenge, &body, &["openid"], "deny").await;
    assert_eq!(without_query(&cb), REDIRECT);
    assert_eq!(param(&cb, "error").as_deref(), Some("access_denied"));
    assert!(param(&cb, "code").is_none());
    app.stop().await;
}

#[tokio::test]
async fn csrf_escaping_and_bad_forms_are_refused() {
    let app = spawn_dev().await;
    let name = "<script>alert(1)</script>\"&'";
    let c = client(&app, json!({ "client_name": name })).await;
    let (login, body) = start(&app, &c.id, &[]).await;
    assert!(
        body.contains("<strong>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&#39;</strong>"),
        "{body}"
    );
    assert!(!body.contains("<script>"));
    let csrf = input_value(&body, "csrf_token");

    let refused = |res: reqwest::Response| {
        let why =
            "The form's CSRF token is missing or invalid. Go back, reload the page and try again.";
        assert_error(res, 403, "request_forbidden", why)
    };
    // Missing, forged, and minted for another page of the same challenge.
    let base = [
        ("login_challenge", login.as_str()),
        ("username", "mallory"),
        ("action", "accept"),
    ];
    refused(post(&app, "/oauth2/fallbacks/login", &base).await).await;
    let mut forged = base.to_vec();
    forged.push(("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    refused(post(&app, "/oauth2/fallbacks/login", &forged).await).await;
    let res = submit(&app, "consent", &login, &csrf, &[("action", "accept")]).await;
    refused(res).await;

    // Bad input: 400 in Hydra's shape; the flow is still open afterwards.
    let bad = |res, description| assert_error(res, 400, "invalid_request", description);
    let with = |user: &'static str, action: &'static str| {
        vec![
            ("login_challenge", login.clone()),
            ("csrf_token", csrf.clone()),
            ("username", user.to_string()),
            ("action", action.to_string()),
        ]
    };
    let send = |form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(app, "/oauth2/fallbacks/login", &form).await
        }
    };
    bad(
        send(with("  ", "accept")).await,
        "Enter a username: any name is accepted in development mode.",
    )
    .await;
    bad(
        send(with("alice", "maybe")).await,
        "Form field 'action' must be 'accept' or 'deny'.",
    )
    .await;
    bad(
        send(vec![
            ("csrf_token", csrf.clone()),
            ("action", "accept".into()),
        ])
        .await,
        "Form field 'login_challenge' is not defined but should have been.",
    )
    .await;
    let res = app.get(app.public("/oauth2/fallbacks/login")).await;
    bad(
        res,
        "Query parameter 'login_challenge' is not defined but should have been.",
    )
    .await;
    let res = app
        .get(app.public("/oauth2/fallbacks/consent?consent_challenge=nope"))
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(json(res).await["error"], "Not Found");

    // The right token still works, once.
    let (_, _) = log_in(&app, &login, &body, "alice", false).await;
    let res = send(with("alice", "accept")).await;
    assert_eq!(res.status(), 409);
    app.stop().await;
}

/// Starts a logout at the public endpoint: the demo page's challenge and URL.
async fn logout_challenge(app: &TestApp) -> (String, url::Url) {
    let res = app.get(app.public("/oauth2/sessions/logout")).await;
    fallback_redirect(&res, "logout")
}

#[tokio::test]
async fn remembered_login_and_logout_with_confirmation() {
    let app = spawn_dev().await;
    let c = client(&app, json!({})).await;
    let (login, body) = start(&app, &c.id, &[]).await;
    let (consent_challenge, body) = log_in(&app, &login, &body, "carol", true).await;
    let cb = consent(
        &app,
        &consent_challenge,
        &body,
        &["openid", "offline"],
        "accept",
    )
    .await;
    assert!(param(&cb, "code").is_some());

    // The next flow remembers carol: the name is fixed, and another one is refused.
    let (login, body) = start(&app, &c.id, &[("state", "second-state")]).await;
    assert!(body.contains("value=\"carol\" readonly"), "{body}");
    let csrf = input_value(&body, "csrf_token");
    let fields = [("username", "dave"), ("action", "accept")];
    let res = submit(&app, "login", &login, &csrf, &fields).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        json(res).await["error_description"],
        "Field 'subject' does not match subject from previous authentication: expected 'carol', got 'dave'."
    );

    // Logout: the page asks; "no" keeps the session.
    let (challenge, to) = logout_challenge(&app).await;
    let body = page(&app, to.as_str()).await;
    assert!(
        body.contains("<p>Log out <strong>carol</strong>?</p>"),
        "{body}"
    );
    let csrf = input_value(&body, "csrf_token");
    let res = submit(&app, "logout", &challenge, &csrf, &[("action", "deny")]).await;
    assert_eq!(res.status(), 200);
    assert_protected(&res);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("<h1>You are still logged in</h1>"));
    let res = flow_request(&app, "logout", &format!("logout_challenge={challenge}")).await;
    assert_eq!(res.status(), 404);

    // "Yes" ends it: on to the logout endpoint, then to the post-logout page.
    let (challenge, to) = logout_challenge(&app).await;
    let body = page(&app, to.as_str()).await;
    let csrf = input_value(&body, "csrf_token");
    let res = submit(&app, "logout", &challenge, &csrf, &[("action", "accept")]).await;
    let back = assert_see_other(&res, "oauth2/sessions/logout", "logout_verifier");
    let res = browse(&app, back.as_str()).await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        location(&res).as_str(),
        format!("{ISSUER}oauth2/fallbacks/logout/callback")
    );
    // A logout token cannot be replayed, and the next login asks for a name again.
    let res = submit(&app, "logout", &challenge, &csrf, &[("action", "accept")]).await;
    assert_eq!(res.status(), 409);
    let (_, body) = start(&app, &c.id, &[]).await;
    assert!(body.contains("value=\"\" autofocus"));
    app.stop().await;
}

#[tokio::test]
async fn outside_dev_mode_the_fallbacks_only_explain() {
    let app = TestApp::spawn().await;
    for page in ["login", "consent", "logout"] {
        let res = app
            .get(app.public(&format!("/oauth2/fallbacks/{page}")))
            .await;
        assert_eq!(res.status(), 200);
        assert!(!res.text().await.unwrap().contains("<form"));
        // Nothing accepts a form: the same answer as any GET-only route.
        let path = format!("/oauth2/fallbacks/{page}");
        let res = post(&app, &path, &[("action", "accept")]).await;
        assert_eq!(res.status(), 405);
        assert_eq!(json(res).await["error"], "Method Not Allowed");
    }
    // The authorization endpoint sends the browser to a page that only explains.
    let c = client(&app, json!({})).await;
    let res = authorize(&app, &c.id, &[]).await;
    let (_, to) = fallback_redirect(&res, "login");
    let res = browse(&app, to.as_str()).await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("The login provider is not configured"));
    assert!(body.contains("<code>portcullis serve all --dev</code>"));
    assert!(!body.contains("<form") && !body.contains("csrf_token"));
    app.stop().await;
}
