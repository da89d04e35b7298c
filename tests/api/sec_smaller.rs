//! Smaller holes of the security review (issue 11, point 5): each test performs the attack and
//! shows it no longer gets through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{json, TestApp};
use serde_json::{json, Value};

const INSECURE_HINT: &str = "Redirect URL is using an insecure protocol, http is only allowed for hosts with suffix 'localhost', for example: http://myapp.localhost/.";
const INVALID_REQUEST: &str = "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.";
const INVALID_GRANT: &str = "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";
const NO_IMPLICIT: &str =
    "The OAuth 2.0 Client is not allowed to use the authorization grant 'implicit'.";

// --- Redirect URIs ---------------------------------------------------------------------

#[tokio::test]
async fn a_defaulted_plaintext_redirect_uri_is_refused() {
    let app = spawn().await;
    let plain = "http://app.example.com/cb";
    let c = client(&app, json!({"redirect_uris": [plain]})).await;
    // The attack: omit redirect_uri so the single registered plaintext URI is used.
    for extra in [&[("redirect_uri", "")][..], &[("redirect_uri", plain)][..]] {
        let res = authorize(&app, &c.id, extra).await;
        assert_eq!(res.status(), 302);
        let loc = location(&res);
        assert_eq!(without_query(&loc), ERROR_URL, "{extra:?}");
        assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
        assert_eq!(
            param(&loc, "error_description").unwrap(),
            format!("{INVALID_REQUEST} {INSECURE_HINT}")
        );
        assert!(
            param(&loc, "state").is_none(),
            "state is for the client only"
        );
    }
    // Loopback and localhost http URIs may still be defaulted.
    let local = client(&app, json!({"redirect_uris": ["http://localhost:9000/cb"]})).await;
    let res = authorize(&app, &local.id, &[("redirect_uri", "")]).await;
    assert_eq!(without_query(&location(&res)), LOGIN_URL);
    app.stop().await;
}

// --- Implicit ID tokens ----------------------------------------------------------------

#[tokio::test]
async fn id_tokens_in_the_front_channel_need_the_implicit_grant() {
    let app = spawn().await;
    let c = client(
        &app,
        json!({
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code", "id_token", "id_token token", "code id_token"],
        }),
    )
    .await;
    // The attack: ask for an ID token in the fragment without the implicit grant.
    for rt in ["id_token", "id_token token", "token id_token"] {
        let res = authorize(&app, &c.id, &[("response_type", rt)]).await;
        assert_eq!(res.status(), 302);
        let loc = location(&res);
        assert_eq!(without_query(&loc), REDIRECT, "{rt}");
        assert!(loc.query().is_none(), "errors go in the fragment: {loc}");
        let got: Vec<(String, String)> =
            url::form_urlencoded::parse(loc.fragment().unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            got,
            vec![
                ("error".to_string(), "invalid_grant".to_string()),
                (
                    "error_description".to_string(),
                    format!("{INVALID_GRANT} {NO_IMPLICIT}")
                ),
                ("state".to_string(), "state-123456".to_string()),
            ],
            "{rt}"
        );
    }
    // Hybrid `code id_token` needs only authorization_code (fosite flow_hybrid.go): it goes on
    // to the login app.
    let res = authorize(&app, &c.id, &[("response_type", "code id_token")]).await;
    assert_eq!(without_query(&location(&res)), LOGIN_URL);
    app.stop().await;
}

// --- Login sessions --------------------------------------------------------------------

fn session_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(portcullis::http::cookies::SESSION))
        .unwrap_or_else(|| panic!("no session cookie set"))
}

fn max_age(cookie: &str) -> Option<i64> {
    cookie
        .split(';')
        .find_map(|p| p.trim().strip_prefix("Max-Age="))
        .map(|v| v.parse().unwrap())
}

/// Logs alice in with `remember_for`, finishes the flow; returns the session cookie as set.
async fn remembered_login(app: &TestApp, client_id: &str, remember_for: i64) -> String {
    let login = login_challenge(app, client_id, &[("prompt", "login")]).await;
    let to = accept_login(
        app,
        &login,
        json!({"subject": "alice", "remember": true, "remember_for": remember_for}),
    )
    .await;
    let res = browse(app, &to).await;
    let cookie = session_cookie(&res);
    let consent = challenge_of(&res, "consent_challenge").await;
    let to = accept_consent(app, &consent, json!({"grant_scope": ["openid"]})).await;
    assert_eq!(browse(app, &to).await.status(), 302);
    cookie
}

/// Starts a new authorization with the browser's cookies; returns the login request's `skip`.
async fn login_skipped(app: &TestApp, client_id: &str) -> bool {
    let login = login_challenge(app, client_id, &[]).await;
    let req = login_request(app, &login).await;
    req["skip"].as_bool().unwrap()
}

#[tokio::test]
async fn remembered_logins_expire_on_the_server() {
    let (app, c) = app_and_client().await;
    let cookie = remembered_login(&app, &c.id, 60).await;
    assert_eq!(max_age(&cookie), Some(60));
    assert!(login_skipped(&app, &c.id).await);
    // The attack: the browser (or a thief) still holds the cookie after remember_for.
    app.clock.advance(61);
    assert!(!login_skipped(&app, &c.id).await);
    // prompt=none finds no session either.
    let res = authorize(&app, &c.id, &[("prompt", "none")]).await;
    assert_eq!(
        param(&location(&res), "error").as_deref(),
        Some("login_required")
    );
    app.stop().await;
}

#[tokio::test]
async fn remembered_logins_are_bounded_by_ttl_authentication_session() {
    let app =
        spawn_with(|c| c.ttl.authentication_session = std::time::Duration::from_secs(2 * 3600))
            .await;
    let c = client(&app, json!({})).await;
    // A huge remember_for is cut down to the bound, in the cookie and on the server.
    let cookie = remembered_login(&app, &c.id, 10 * 365 * 24 * 3600).await;
    assert_eq!(max_age(&cookie), Some(7200));
    app.clock.advance(7100);
    assert!(login_skipped(&app, &c.id).await);
    app.clock.advance(101);
    assert!(!login_skipped(&app, &c.id).await);
    // remember_for 0: a browser-session cookie (Hydra 1.9.2), still ended by the server.
    let cookie = remembered_login(&app, &c.id, 0).await;
    assert_eq!(max_age(&cookie), None);
    app.clock.advance(7100);
    assert!(login_skipped(&app, &c.id).await);
    app.clock.advance(101);
    assert!(!login_skipped(&app, &c.id).await);
    app.stop().await;
}

// --- Userinfo --------------------------------------------------------------------------

/// An access token whose consent put ID-token-only claims into `session.id_token`.
async fn token_with_claims(app: &TestApp, c: &TestClient) -> String {
    let login = login_challenge(app, &c.id, &[]).await;
    let to = accept_login(app, &login, json!({"subject": "alice"})).await;
    let consent = consent_challenge(app, &to).await;
    let to = accept_consent(
        app,
        &consent,
        json!({
            "grant_scope": ["openid"],
            "session": {"id_token": {
                "email": "alice@example.com",
                "nonce": "n-from-consent", "at_hash": "a", "c_hash": "c",
                "exp": 1, "sid": "s", "jti": "j"
            }}
        }),
    )
    .await;
    let code = param(&location(&browse(app, &to).await), "code").unwrap();
    let t = json(exchange(app, c, &code).await).await;
    t["access_token"].as_str().unwrap().to_string()
}

/// Userinfo for `token`, asserting 200 and the no-cache headers.
async fn userinfo_ok(app: &TestApp, token: &str) -> reqwest::Response {
    let res = userinfo(app, token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    res
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn userinfo_is_not_cached_and_drops_id_token_only_claims() {
    let (app, c) = app_and_client().await;
    let token = token_with_claims(&app, &c).await;
    let body = json(userinfo_ok(&app, &token).await).await;
    assert_eq!(
        keys(&body),
        ["aud", "auth_time", "email", "iss", "rat", "sub"],
        "{body}"
    );
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["aud"], json!([c.id]));
    assert_eq!(body["email"], "alice@example.com");

    // The signed form: the same claims plus a fresh jti and iat, nothing from the consent.
    let signed = client(&app, json!({"userinfo_signed_response_alg": "RS256"})).await;
    let token = token_with_claims(&app, &signed).await;
    let res = userinfo_ok(&app, &token).await;
    assert_eq!(res.headers()["content-type"], "application/jwt");
    let claims = claims(&res.text().await.unwrap());
    assert_eq!(
        keys(&claims),
        [
            "aud",
            "auth_time",
            "email",
            "iat",
            "iss",
            "jti",
            "rat",
            "sub"
        ],
        "{claims}"
    );
    assert_ne!(claims["jti"], "j");
    app.stop().await;
}
