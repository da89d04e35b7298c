//! The authorization endpoint and the login/consent state machine, driven like a browser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{json, TestApp};
use serde_json::json;

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn full_flow_redirects_cookies_and_admin_models() {
    let app = spawn().await;
    let c = client(&app, json!({})).await;

    // 1. The browser arrives: CSRF cookie and redirect to the login app.
    let res = browse(
        &app,
        &auth_url(
            &app,
            &c.id,
            &[
                ("login_hint", "alice"),
                ("acr_values", "gold silver"),
                ("ui_locales", "de en"),
                ("display", "page"),
            ],
        ),
    )
    .await;
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let loc = location(&res);
    assert_eq!(without_query(&loc), LOGIN_URL);
    let login = param(&loc, "login_challenge").unwrap();
    assert_eq!(login.len(), 32);
    let cookies = set_cookies(&res);
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

    // 2. The login app reads the request.
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/login?login_challenge={login}"
        )))
        .await;
    assert_eq!(res.status(), 200);
    let req = json(res).await;
    assert_eq!(req["challenge"], login);
    assert_eq!(req["skip"], false);
    assert_eq!(req["subject"], "");
    assert_eq!(req["requested_scope"], json!(["openid", "offline"]));
    assert_eq!(req["requested_access_token_audience"], json!([]));
    assert_eq!(req["client"]["client_id"], c.id.as_str());
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
    let mut keys: Vec<_> = req.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
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

    // 3. Accept; the browser returns with the verifier and is sent to consent.
    let to = accept_login(&app, &login, json!({"subject": "alice", "remember": true, "remember_for": 3600, "acr": "gold", "context": {"k": "v"}})).await;
    assert!(to.contains("login_verifier="), "{to}");
    // The redirect goes to the issuer; the test talks to the real port.
    let to = to.replace("http://127.0.0.1:4444", &app.public);
    let res = browse(&app, &to).await;
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

    // 4. The consent app reads and accepts.
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/consent?consent_challenge={consent}"
        )))
        .await;
    assert_eq!(res.status(), 200);
    let req = json(res).await;
    assert_eq!(req["challenge"], consent);
    assert_eq!(req["subject"], "alice");
    assert_eq!(req["acr"], "gold");
    assert_eq!(req["context"], json!({"k": "v"}));
    assert_eq!(req["login_challenge"], login);
    assert_eq!(req["skip"], false);
    assert_eq!(req["requested_scope"], json!(["openid", "offline"]));
    let to = accept_consent(
        &app,
        &consent,
        json!({"grant_scope": ["openid", "offline"], "remember": true}),
    )
    .await;
    assert!(to.contains("consent_verifier="));
    let res = browse(&app, &to.replace("http://127.0.0.1:4444", &app.public)).await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(without_query(&loc), REDIRECT);
    assert_eq!(param(&loc, "state").unwrap(), "state-123456");
    assert_eq!(param(&loc, "scope").unwrap(), "openid offline");
    let code = param(&loc, "code").unwrap();
    assert_eq!(code.split('.').count(), 2);

    // 5. Spent challenges answer 409.
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/login?login_challenge={login}"
        )))
        .await;
    assert_eq!(res.status(), 409);
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/consent?consent_challenge={consent}"
        )))
        .await;
    assert_eq!(res.status(), 409);
    let res = app
        .put_json(
            app.admin(&format!(
                "/oauth2/auth/requests/consent/accept?consent_challenge={consent}"
            )),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 409);
    app.stop().await;
}

#[tokio::test]
async fn remembered_login_and_consent_are_skipped() {
    let app = spawn().await;
    let c = client(&app, json!({})).await;
    let first = run_flow(&app, &c.id, &[], &["openid", "offline"]).await;
    assert!(param(&first, "code").is_some());

    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let req = json(
        app.get(app.admin(&format!("/oauth2/auth/requests/login?challenge={login}")))
            .await,
    )
    .await;
    assert_eq!(req["skip"], true);
    assert_eq!(req["subject"], "alice");
    // A skipped login must be accepted for the same subject.
    let res = app
        .put_json(
            app.admin(&format!(
                "/oauth2/auth/requests/login/accept?login_challenge={login}"
            )),
            &json!({"subject": "bob"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    let res = browse(&app, &to).await;
    let consent = challenge_of(&res, "consent_challenge").await;
    let req = json(
        app.get(app.admin(&format!(
            "/oauth2/auth/requests/consent?challenge={consent}"
        )))
        .await,
    )
    .await;
    assert_eq!(req["skip"], true);

    // prompt=consent forces the consent screen; prompt=login a fresh login.
    let res = browse(&app, &auth_url(&app, &c.id, &[("prompt", "login")])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let req = json(
        app.get(app.admin(&format!("/oauth2/auth/requests/login?challenge={login}")))
            .await,
    )
    .await;
    assert_eq!(req["skip"], false);
    assert_eq!(req["subject"], "");

    // A scope beyond the remembered grant is not skipped.
    let res = browse(
        &app,
        &auth_url(&app, &c.id, &[("scope", "openid offline read")]),
    )
    .await;
    let login = challenge_of(&res, "login_challenge").await;
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    let consent = challenge_of(&browse(&app, &to).await, "consent_challenge").await;
    let req = json(
        app.get(app.admin(&format!(
            "/oauth2/auth/requests/consent?challenge={consent}"
        )))
        .await,
    )
    .await;
    assert_eq!(req["skip"], false);
    app.stop().await;
}

#[tokio::test]
async fn prompt_none_without_session_is_login_required() {
    let app = spawn().await;
    let c = client(&app, json!({})).await;
    let res = browse(&app, &auth_url(&app, &c.id, &[("prompt", "none")])).await;
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
    let app = spawn().await;
    let c = client(&app, json!({})).await;
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
        let res = browse(&app, &auth_url(&app, &c.id, extra)).await;
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
        let res = browse(&app, &auth_url(&app, &c.id, extra)).await;
        assert_eq!(res.status(), 302);
        let loc = location(&res);
        assert_eq!(without_query(&loc), ERROR_URL, "{extra:?}");
        assert!(param(&loc, "error").is_some());
        assert!(param(&loc, "state").is_none());
    }
    // Loopback redirect URIs match on any port (RFC 8252 §7.3).
    let res = browse(
        &app,
        &auth_url(&app, &c.id, &[("redirect_uri", "http://127.0.0.1:7777/cb")]),
    )
    .await;
    assert_eq!(without_query(&location(&res)), LOGIN_URL);
    app.stop().await;
}

#[tokio::test]
async fn csrf_cookie_must_match() {
    let app = spawn().await;
    let c = client(&app, json!({})).await;
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
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
    assert_eq!(param(&location(&res), "error").unwrap(), "invalid_request");

    // A forged cookie value does not decrypt and counts as missing.
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    let res = stranger
        .get(on_app(&app, &to))
        .header("cookie", "oauth2_authentication_csrf_insecure=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(
        param(&location(&res), "error").unwrap(),
        "request_forbidden"
    );
    app.stop().await;
}

#[tokio::test]
async fn expired_flow_is_refused() {
    let app =
        spawn_with(|c| c.ttl.login_consent_request = std::time::Duration::from_secs(600)).await;
    let c = client(&app, json!({})).await;
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
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
    let app = spawn().await;
    let c = client(&app, json!({})).await;
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let res = app
        .put_json(
            app.admin(&format!("/oauth2/auth/requests/login/reject?login_challenge={login}")),
            &json!({"error": "access_denied", "error_description": "The user said no", "status_code": 403}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let to = json(res).await["redirect_to"].as_str().unwrap().to_string();
    let loc = location(&browse(&app, &to).await);
    assert_eq!(without_query(&loc), REDIRECT);
    assert_eq!(param(&loc, "error").unwrap(), "access_denied");
    assert_eq!(
        param(&loc, "error_description").unwrap(),
        "The user said no"
    );
    assert_eq!(param(&loc, "state").unwrap(), "state-123456");

    // Consent rejection.
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    let consent = challenge_of(&browse(&app, &to).await, "consent_challenge").await;
    let res = app
        .put_json(
            app.admin(&format!(
                "/oauth2/auth/requests/consent/reject?consent_challenge={consent}"
            )),
            &json!({"error": "access_denied"}),
        )
        .await;
    let to = json(res).await["redirect_to"].as_str().unwrap().to_string();
    let loc = location(&browse(&app, &to).await);
    assert_eq!(param(&loc, "error").unwrap(), "access_denied");
    app.stop().await;
}

#[tokio::test]
async fn admin_flow_api_errors() {
    let app = spawn().await;
    let c = client(&app, json!({})).await;
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
            .put_json(
                app.admin(&format!("{path}/accept?challenge=unknown")),
                &body,
            )
            .await;
        assert_eq!(res.status(), 404);
    }
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
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
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/login?login_challenge={login}"
        )))
        .await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn fallback_pages_when_urls_are_not_configured() {
    let app = TestApp::spawn().await;
    let c = client(&app, json!({})).await;
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let loc = location(&res);
    assert_eq!(
        without_query(&loc),
        "http://127.0.0.1:4444/oauth2/fallbacks/login"
    );
    let res = app.get(app.public("/oauth2/fallbacks/login")).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("urls.login"));
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
    let c = client(
        &app,
        json!({
            "grant_types": ["authorization_code", "implicit", "refresh_token"],
            "response_types": ["code", "token id_token", "code id_token", "id_token"],
        }),
    )
    .await;
    // Implicit: tokens in the fragment, never in the query.
    let loc = run_flow(
        &app,
        &c.id,
        &[("response_type", "token id_token")],
        &["openid"],
    )
    .await;
    assert!(loc.query().is_none(), "{loc}");
    assert_eq!(param(&loc, "token_type").unwrap(), "bearer");
    assert_eq!(param(&loc, "expires_in").unwrap(), "3600");
    assert_eq!(param(&loc, "state").unwrap(), "state-123456");
    let access = param(&loc, "access_token").unwrap();
    let id = claims(&param(&loc, "id_token").unwrap());
    assert_eq!(id["at_hash"], portcullis::crypto::jws::at_hash(&access));
    assert_eq!(id["nonce"], "nonce-abcdefgh");
    assert_eq!(introspect(&app, &access).await["active"], true);
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
        let res = browse(&app, &auth_url(&app, &c.id, extra)).await;
        assert_eq!(
            param(&location(&res), "error").as_deref(),
            Some(error),
            "{extra:?}"
        );
    }
    // `token` needs the implicit grant.
    let no_implicit = client(&app, json!({"response_types": ["token id_token"]})).await;
    let res = browse(
        &app,
        &auth_url(
            &app,
            &no_implicit.id,
            &[("response_type", "token id_token")],
        ),
    )
    .await;
    assert_eq!(param(&location(&res), "error").unwrap(), "invalid_grant");
    app.stop().await;
}

#[tokio::test]
async fn consent_and_login_session_management() {
    let app = spawn().await;
    let c = client(&app, json!({})).await;
    let other = client(&app, json!({})).await;
    let code_a = code(&app, &c.id, &["openid", "offline"]).await;
    let t = json(exchange(&app, &c, &code_a).await).await;
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
    assert_eq!(introspect(&app, &s(&t)).await["active"], false);
    let list = json(
        app.get(app.admin("/oauth2/auth/sessions/consent?subject=alice"))
            .await,
    )
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
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let req = json(
        app.get(app.admin(&format!("/oauth2/auth/requests/login?challenge={login}")))
            .await,
    )
    .await;
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
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let req = json(
        app.get(app.admin(&format!("/oauth2/auth/requests/login?challenge={login}")))
            .await,
    )
    .await;
    assert_eq!(req["skip"], false);
    app.stop().await;
}

fn s(t: &serde_json::Value) -> String {
    t["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn flush_purges_abandoned_flows_but_keeps_consents() {
    let app = spawn().await;
    let c = client(&app, json!({})).await;
    // A consent remembered forever (remember_for 0).
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let to = accept_login(&app, &login, json!({"subject": "alice"})).await;
    let consent = challenge_of(&browse(&app, &to).await, "consent_challenge").await;
    let to = accept_consent(
        &app,
        &consent,
        json!({"grant_scope": ["openid"], "remember": true, "remember_for": 0}),
    )
    .await;
    assert_eq!(browse(&app, &to).await.status(), 302);
    let res = browse(&app, &auth_url(&app, &c.id, &[("prompt", "login")])).await;
    let abandoned = challenge_of(&res, "login_challenge").await;
    app.clock.advance(2 * 3600);
    let res = app.post_json(app.admin("/oauth2/flush"), &json!({})).await;
    assert_eq!(res.status(), 204);
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/login?challenge={abandoned}"
        )))
        .await;
    assert_eq!(res.status(), 404);
    let list = json(
        app.get(app.admin("/oauth2/auth/sessions/consent?subject=alice"))
            .await,
    )
    .await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the answered consent is kept"
    );
    app.stop().await;
}
