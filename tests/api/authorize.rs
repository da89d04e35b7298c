//! The authorization endpoint and the login/consent state machine, driven like a browser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{assert_body_contains, json, keys_of, TestApp};
use serde_json::json;

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The browser's arrival: CSRF cookie and redirect to the login app; returns the challenge.
fn check_arrival(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let loc = location(res);
    assert_eq!(without_query(&loc), LOGIN_URL);
    let login = param(&loc, "login_challenge").unwrap();
    assert_eq!(login.len(), 32);
    let cookies = set_cookies(res);
    assert_eq!(cookies.len(), 1);
    assert!(
        cookies[0].starts_with("oauth2_authentication_csrf_insecure="),
        "{cookies:?}"
    );
    assert!(
        cookies[0].contains("HttpOnly")
            && cookies[0].contains("Path=/")
            && cookies[0].contains("SameSite=Lax")
    );
    assert!(!cookies[0].contains("Secure"));
    login
}

/// The `kind` (login, consent) request for `challenge`, read as its app reads it (200).
async fn read_request(app: &TestApp, kind: &str, challenge: &str) -> serde_json::Value {
    let res = flow_request(app, kind, &format!("{kind}_challenge={challenge}")).await;
    assert_eq!(res.status(), 200);
    let req = json(res).await;
    assert_eq!(req["challenge"], challenge);
    req
}

/// The login app reads the request: every field of the model.
async fn check_login_request(app: &TestApp, login: &str, client_id: &str) {
    let req = read_request(app, "login", login).await;
    assert_eq!(
        keys_of(&req),
        [
            "challenge",
            "client",
            "oidc_context",
            "request_url",
            "requested_access_token_audience",
            "requested_scope",
            "session_id",
            "skip",
            "subject"
        ]
    );
    assert_eq!(req["skip"], false);
    assert_eq!(req["subject"], "");
    assert_eq!(req["requested_scope"], json!(["openid", "offline"]));
    assert_eq!(req["requested_access_token_audience"], json!([]));
    assert_eq!(req["client"]["client_id"], client_id);
    assert!(req["client"].get("client_secret").is_none());
    assert_eq!(
        req["oidc_context"],
        json!({"acr_values": ["gold", "silver"], "display": "page", "login_hint": "alice", "ui_locales": ["de", "en"]})
    );
    assert!(req["request_url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:4444/oauth2/auth?client_id="));
    assert_eq!(req["session_id"].as_str().unwrap().len(), 36);
}

/// Accept; the browser returns with the verifier and is sent to consent; returns its challenge.
async fn login_to_consent(app: &TestApp, login: &str) -> String {
    let to = accept_login(app, login, json!({"subject": "alice", "remember": true, "remember_for": 3600, "acr": "gold", "context": {"k": "v"}})).await;
    assert!(to.contains("login_verifier="), "{to}");
    // The redirect goes to the issuer; the test talks to the real port.
    let res = browse(app, &to).await;
    let loc = location(&res);
    assert_eq!(without_query(&loc), CONSENT_URL);
    let consent = param(&loc, "consent_challenge").unwrap();
    let cookies = set_cookies(&res);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("oauth2_authentication_session_insecure=")
                && c.contains("Max-Age=3600")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("oauth2_consent_csrf_insecure=")),
        "{cookies:?}"
    );
    consent
}

/// The consent app reads and accepts; the browser lands at the client with a code.
async fn consent_to_client(app: &TestApp, consent: &str, login: &str) {
    let req = read_request(app, "consent", consent).await;
    assert_eq!(req["subject"], "alice");
    assert_eq!(req["acr"], "gold");
    assert_eq!(req["context"], json!({"k": "v"}));
    assert_eq!(req["login_challenge"], login);
    assert_eq!(req["skip"], false);
    assert_eq!(req["requested_scope"], json!(["openid", "offline"]));
    let to = accept_consent(
        app,
        consent,
        json!({"grant_scope": ["openid", "offline"], "remember": true}),
    )
    .await;
    assert!(to.contains("consent_verifier="));
    let res = browse(app, &to).await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(without_query(&loc), REDIRECT);
    assert_eq!(param(&loc, "state").unwrap(), "state-123456");
    assert_eq!(param(&loc, "scope").unwrap(), "openid offline");
    let code = param(&loc, "code").unwrap();
    assert_eq!(code.split('.').count(), 2);
}

#[tokio::test]
async fn full_flow_redirects_cookies_and_admin_models() {
    let (app, c) = app_and_client().await;

    // 1. The browser arrives: CSRF cookie and redirect to the login app.
    let res = authorize(
        &app,
        &c.id,
        &[
            ("login_hint", "alice"),
            ("acr_values", "gold silver"),
            ("ui_locales", "de en"),
            ("display", "page"),
        ],
    )
    .await;
    let login = check_arrival(&res);

    // 2. The login app reads the request.
    check_login_request(&app, &login, &c.id).await;

    // 3. Accept; the browser returns with the verifier and is sent to consent.
    let consent = login_to_consent(&app, &login).await;

    // 4. The consent app reads and accepts.
    consent_to_client(&app, &consent, &login).await;

    // 5. Spent challenges answer 409.
    let res = flow_request(&app, "login", &format!("login_challenge={login}")).await;
    assert_eq!(res.status(), 409);
    let res = flow_request(&app, "consent", &format!("consent_challenge={consent}")).await;
    assert_eq!(res.status(), 409);
    let res = flow_answer(&app, "consent", "accept", &consent, json!({})).await;
    assert_eq!(res.status(), 409);
    app.stop().await;
}

#[tokio::test]
async fn remembered_login_and_consent_are_skipped() {
    let (app, c) = app_and_client().await;
    let first = run_flow(&app, &c.id, &[], &["openid", "offline"]).await;
    assert!(param(&first, "code").is_some());

    let login = login_challenge(&app, &c.id, &[]).await;
    let req = login_request(&app, &login).await;
    assert_eq!(req["skip"], true);
    assert_eq!(req["subject"], "alice");
    // A skipped login must be accepted for the same subject.
    let res = flow_answer(&app, "login", "accept", &login, json!({"subject": "bob"})).await;
    assert_eq!(res.status(), 400);
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    let consent = consent_challenge(&app, &to).await;
    let req = consent_request(&app, &consent).await;
    assert_eq!(req["skip"], true);

    // prompt=consent forces the consent screen; prompt=login a fresh login.
    let login = login_challenge(&app, &c.id, &[("prompt", "login")]).await;
    let req = login_request(&app, &login).await;
    assert_eq!(req["skip"], false);
    assert_eq!(req["subject"], "");

    // A scope beyond the remembered grant is not skipped.
    let login = login_challenge(&app, &c.id, &[("scope", "openid offline read")]).await;
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    let consent = consent_challenge(&app, &to).await;
    let req = consent_request(&app, &consent).await;
    assert_eq!(req["skip"], false);
    app.stop().await;
}

#[tokio::test]
async fn prompt_none_without_session_is_login_required() {
    let (app, c) = app_and_client().await;
    let res = authorize(&app, &c.id, &[("prompt", "none")]).await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(without_query(&loc), REDIRECT);
    assert_eq!(param(&loc, "error").unwrap(), "login_required");
    assert_eq!(param(&loc, "state").unwrap(), "state-123456");
    assert!(param(&loc, "error_description")
        .unwrap()
        .contains("no existing login session"));
    app.stop().await;
}

#[tokio::test]
async fn invalid_requests_redirect_to_client_or_error_page() {
    let (app, c) = app_and_client().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("state", "short")], "invalid_state"),
        (&[("scope", "openid admin")], "invalid_scope"),
        (&[("prompt", "select_account")], "invalid_request"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (
            &[("audience", "https://api.example.com")],
            "invalid_request",
        ),
    ];
    for (extra, error) in cases {
        let res = authorize(&app, &c.id, extra).await;
        assert_eq!(res.status(), 302);
        let loc = location(&res);
        assert_eq!(without_query(&loc), REDIRECT, "{extra:?}");
        assert_eq!(
            param(&loc, "error").as_deref(),
            Some(*error),
            "{extra:?}: {loc}"
        );
    }
    // No trustworthy redirect URI: the error page, never the client.
    for extra in [
        &[("redirect_uri", "http://127.0.0.1:5555/other")][..],
        &[("redirect_uri", "https://evil.example/cb")][..],
        &[("client_id", "nope")][..],
    ] {
        let res = authorize(&app, &c.id, extra).await;
        assert_eq!(res.status(), 302);
        let loc = location(&res);
        assert_eq!(without_query(&loc), ERROR_URL, "{extra:?}");
        assert!(param(&loc, "error").is_some());
        assert!(param(&loc, "state").is_none());
    }
    // Loopback redirect URIs match on any port (RFC 8252 §7.3).
    let res = authorize(&app, &c.id, &[("redirect_uri", "http://127.0.0.1:7777/cb")]).await;
    assert_eq!(without_query(&location(&res)), LOGIN_URL);
    app.stop().await;
}

#[tokio::test]
async fn csrf_cookie_must_match() {
    let (app, c) = app_and_client().await;
    let login = login_challenge(&app, &c.id, &[]).await;
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    // Another browser (no CSRF cookie) follows the verifier link.
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = stranger.get(on_app(&app, &to)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(without_query(&loc), REDIRECT);
    assert_eq!(param(&loc, "error").unwrap(), "request_forbidden");
    // The verifier is spent even so.
    let res = browse(&app, &to).await;
    assert_eq!(redirect_error(&res), "invalid_request");

    // A forged cookie value does not decrypt and counts as missing.
    let login = login_challenge(&app, &c.id, &[]).await;
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    let res = stranger
        .get(on_app(&app, &to))
        .header("cookie", "oauth2_authentication_csrf_insecure=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect_error(&res), "request_forbidden");
    app.stop().await;
}

#[tokio::test]
async fn expired_flow_is_refused() {
    let app =
        spawn_with(|c| c.ttl.login_consent_request = std::time::Duration::from_secs(600)).await;
    let c = client(&app, json!({})).await;
    let login = login_challenge(&app, &c.id, &[]).await;
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    app.clock.advance(11 * 60);
    let res = browse(&app, &to).await;
    let loc = location(&res);
    assert_eq!(without_query(&loc), REDIRECT);
    assert_eq!(param(&loc, "error").unwrap(), "request_unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn rejections_reach_the_client() {
    let (app, c) = app_and_client().await;
    let login = login_challenge(&app, &c.id, &[]).await;
    let res = reject(&app, "login", &login, json!({"error": "access_denied", "error_description": "The user said no", "status_code": 403})).await;
    assert_eq!(res.status(), 200);
    let to = redirect_to(res).await;
    let loc = location(&browse(&app, &to).await);
    assert_eq!(without_query(&loc), REDIRECT);
    assert_eq!(param(&loc, "error").unwrap(), "access_denied");
    assert_eq!(
        param(&loc, "error_description").unwrap(),
        "The user said no"
    );
    assert_eq!(param(&loc, "state").unwrap(), "state-123456");

    // Consent rejection.
    let consent = consent_for(&app, &c.id, json!({"subject": "alice"})).await;
    let res = reject(&app, "consent", &consent, json!({"error": "access_denied"})).await;
    let to = redirect_to(res).await;
    let loc = location(&browse(&app, &to).await);
    assert_eq!(param(&loc, "error").unwrap(), "access_denied");
    app.stop().await;
}

#[tokio::test]
async fn admin_flow_api_errors() {
    let (app, c) = app_and_client().await;
    for (path, body) in [
        ("/oauth2/auth/requests/login", json!({"subject": "a"})),
        ("/oauth2/auth/requests/consent", json!({})),
    ] {
        let res = app.get(app.admin(path)).await;
        assert_eq!(res.status(), 400);
        assert_eq!(json(res).await["error"], "invalid_request");
        let res = app
            .get(app.admin(&format!("{path}?challenge=unknown")))
            .await;
        assert_eq!(res.status(), 404);
        let res = app
            .admin_put(&format!("{path}/accept?challenge=unknown"), &body)
            .await;
        assert_eq!(res.status(), 404);
    }
    let login = login_challenge(&app, &c.id, &[]).await;
    let accept = app.admin(&format!(
        "/oauth2/auth/requests/login/accept?login_challenge={login}"
    ));
    // Unknown fields, a missing subject and wrong types are refused.
    let res = app
        .put_json(accept.clone(), &json!({"subject": "a", "subjekt": "b"}))
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .put_json(accept.clone(), &json!({"remember": true}))
        .await;
    assert_eq!(res.status(), 400);
    assert!(json(res).await["error_description"]
        .as_str()
        .unwrap()
        .contains("subject"));
    let res = app.put_json(accept.clone(), &json!({"subject": 7})).await;
    assert_eq!(res.status(), 400);
    // Accepted once; a second answer conflicts, but reading still works until the verifier is used.
    let res = app
        .put_json(accept.clone(), &json!({"subject": "alice"}))
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .put_json(accept.clone(), &json!({"subject": "alice"}))
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(json(res).await["error"], "Conflict");
    let res = flow_request(&app, "login", &format!("login_challenge={login}")).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn fallback_pages_when_urls_are_not_configured() {
    let app = TestApp::spawn().await;
    let c = client(&app, json!({})).await;
    let res = authorize(&app, &c.id, &[]).await;
    let loc = location(&res);
    assert_eq!(
        without_query(&loc),
        "http://127.0.0.1:4444/oauth2/fallbacks/login"
    );
    let res = app.get(app.public("/oauth2/fallbacks/login")).await;
    assert_body_contains(res, 200, "urls.login").await;
    let res =
        app.get(app.public(
            "/oauth2/fallbacks/error?error=invalid_request&error_description=%3Cscript%3E",
        ))
        .await;
    assert_eq!(res.status(), 500);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("invalid_request")
            && page.contains("&lt;script&gt;")
            && !page.contains("<script>")
    );
    app.stop().await;
}

#[tokio::test]
async fn implicit_and_hybrid_flows() {
    let app = spawn().await;
    let kinds = ["code", "token id_token", "code id_token", "id_token"];
    let c = client(&app, implicit_client(&kinds)).await;
    // Implicit: tokens in the fragment, never in the query.
    let loc = implicit_flow(&app, &c.id).await;
    assert!(loc.query().is_none(), "{loc}");
    assert_eq!(param(&loc, "token_type").unwrap(), "bearer");
    assert_eq!(param(&loc, "expires_in").unwrap(), "3600");
    assert_eq!(param(&loc, "state").unwrap(), "state-123456");
    let access = param(&loc, "access_token").unwrap();
    let id = claims(&param(&loc, "id_token").unwrap());
    assert_eq!(id["at_hash"], portcullis::crypto::jws::at_hash(&access));
    assert_eq!(id["nonce"], "nonce-abcdefgh");
    assert_active(&app, &access, true).await;
    // Hybrid: a code plus an ID token carrying c_hash; the code still redeems.
    let loc = run_flow(
        &app,
        &c.id,
        &[("response_type", "code id_token")],
        &["openid"],
    )
    .await;
    let code = param(&loc, "code").unwrap();
    let id = claims(&param(&loc, "id_token").unwrap());
    assert_eq!(id["c_hash"], portcullis::crypto::jws::at_hash(&code));
    assert!(id.get("at_hash").is_none());
    assert_eq!(exchange(&app, &c, &code).await.status(), 200);
    // Front-channel tokens need a nonce and may not use the query.
    for (extra, error) in [
        (
            &[("response_type", "id_token"), ("nonce", "")][..],
            "invalid_request",
        ),
        (
            &[("response_type", "id_token"), ("nonce", "short")][..],
            "insufficient_entropy",
        ),
        (
            &[
                ("response_type", "token id_token"),
                ("response_mode", "query"),
            ][..],
            "unsupported_response_mode",
        ),
    ] {
        let res = authorize(&app, &c.id, extra).await;
        assert_eq!(
            param(&location(&res), "error").as_deref(),
            Some(error),
            "{extra:?}"
        );
    }
    // `token` needs the implicit grant.
    let no_implicit = client(&app, json!({"response_types": ["token id_token"]})).await;
    let res = authorize(
        &app,
        &no_implicit.id,
        &[("response_type", "token id_token")],
    )
    .await;
    assert_eq!(redirect_error(&res), "invalid_grant");
    app.stop().await;
}

#[tokio::test]
async fn consent_and_login_session_management() {
    let (app, c) = app_and_client().await;
    let other = client(&app, json!({})).await;
    let t = tokens(&app, &c, &["openid", "offline"]).await;
    app.clock.advance(1);
    let _ = run_flow(&app, &other.id, &[], &["openid"]).await;

    // Listing: newest first, full consent request with the client, pagination headers.
    let res = app
        .get(app.admin("/oauth2/auth/sessions/consent?subject=alice"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "2");
    assert!(res.headers()["link"]
        .to_str()
        .unwrap()
        .contains("rel=\"first\""));
    let list = json(res).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0]["consent_request"]["client"]["client_id"],
        other.id.as_str()
    );
    assert_eq!(list[1]["grant_scope"], json!(["openid", "offline"]));
    assert_eq!(list[1]["session"]["access_token"], json!({"role": "admin"}));
    assert_eq!(list[1]["remember"], true);
    assert!(list[1]["handled_at"].as_str().unwrap().ends_with('Z'));
    let res = app
        .get(app.admin("/oauth2/auth/sessions/consent?subject=alice&limit=1&offset=1"))
        .await;
    assert_eq!(json(res).await.as_array().unwrap().len(), 1);
    let res = app
        .get(app.admin("/oauth2/auth/sessions/consent?subject=nobody"))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("x-total-count").is_none());
    assert_eq!(json(res).await, json!([]));
    assert_eq!(
        app.get(app.admin("/oauth2/auth/sessions/consent"))
            .await
            .status(),
        400
    );

    // Revoking one client's consent kills its tokens and leaves the other.
    let del = |q: &str| app.delete(app.admin(&format!("/oauth2/auth/sessions/consent?{q}")));
    assert_eq!(del("subject=alice").await.status(), 400);
    assert_eq!(
        del(&format!("subject=alice&client={}", c.id))
            .await
            .status(),
        204
    );
    assert_active(&app, &s(&t), false).await;
    let list = app
        .get_json(app.admin("/oauth2/auth/sessions/consent?subject=alice"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        del(&format!("subject=alice&client={}", c.id))
            .await
            .status(),
        404
    );
    assert_eq!(del("subject=alice&all=True").await.status(), 204);

    // Forgetting logins: the remembered session no longer skips login.
    let login = login_challenge(&app, &c.id, &[]).await;
    let req = login_request(&app, &login).await;
    assert_eq!(req["skip"], true);
    assert_eq!(
        app.delete(app.admin("/oauth2/auth/sessions/login"))
            .await
            .status(),
        400
    );
    assert_eq!(
        app.delete(app.admin("/oauth2/auth/sessions/login?subject=alice"))
            .await
            .status(),
        204
    );
    let login = login_challenge(&app, &c.id, &[]).await;
    let req = login_request(&app, &login).await;
    assert_eq!(req["skip"], false);
    app.stop().await;
}

fn s(t: &serde_json::Value) -> String {
    t["access_token"].as_str().unwrap().to_string()
}

/// A consent of alice's remembered forever (remember_for 0).
async fn remember_consent_forever(app: &TestApp, client_id: &str) {
    let consent = consent_for(app, client_id, json!({"subject": "alice"})).await;
    let answer = json!({"grant_scope": ["openid"], "remember": true, "remember_for": 0});
    let to = accept_consent(app, &consent, answer).await;
    assert_eq!(browse(app, &to).await.status(), 302);
}

#[tokio::test]
async fn flush_purges_abandoned_flows_but_keeps_consents() {
    let (app, c) = app_and_client().await;
    remember_consent_forever(&app, &c.id).await;
    let abandoned = login_challenge(&app, &c.id, &[("prompt", "login")]).await;
    app.clock.advance(2 * 3600);
    let res = app.admin_post("/oauth2/flush", &json!({})).await;
    assert_eq!(res.status(), 204);
    let res = flow_request(&app, "login", &format!("challenge={abandoned}")).await;
    assert_eq!(res.status(), 404);
    let list = app
        .get_json(app.admin("/oauth2/auth/sessions/consent?subject=alice"))
        .await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the answered consent is kept"
    );
    app.stop().await;
}
