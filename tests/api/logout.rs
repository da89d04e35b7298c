//! Logout: the logout app hand-over, RP-initiated logout, front- and back-channel logout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{json, TestApp};
use serde_json::json;

async fn spawn_logout() -> TestApp {
    spawn_with(logout_urls).await
}

#[tokio::test]
async fn logout_without_hint_hands_over_to_the_logout_app() {
    let app = spawn_logout().await;
    let c = client(&app, json!({})).await;
    // No session: straight to the post-logout URL.
    let res = browse(&app, &app.public("/oauth2/sessions/logout")).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res).as_str(), LOGGED_OUT);
    // state without id_token_hint is refused.
    let res = browse(&app, &app.public("/oauth2/sessions/logout?state=abcdefgh")).await;
    assert_eq!(without_query(&location(&res)), ERROR_URL);
    assert_eq!(redirect_error(&res), "invalid_request");

    let _ = run_flow(&app, &c.id, &[], &["openid"]).await;
    let res = browse(&app, &app.public("/oauth2/sessions/logout")).await;
    let loc = location(&res);
    assert_eq!(without_query(&loc), LOGOUT_URL);
    let challenge = param(&loc, "logout_challenge").unwrap();
    assert_eq!(challenge.len(), 36);
    let (req, to) = read_and_accept_logout(&app, &challenge).await;
    assert_eq!(req["subject"], "alice");
    assert_eq!(req["rp_initiated"], false);
    assert_eq!(req["sid"].as_str().unwrap().len(), 36);
    assert!(req["request_url"]
        .as_str()
        .unwrap()
        .contains("/oauth2/sessions/logout"));
    assert!(to.starts_with("http://127.0.0.1:4444/oauth2/sessions/logout?logout_verifier="));
    let res = browse(&app, &to).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res).as_str(), LOGGED_OUT);
    let cleared = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("oauth2_authentication_session_insecure=;")
            && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // Used: 409 for the app, error page for the browser.
    let res = flow_request(&app, "logout", &format!("challenge={challenge}")).await;
    assert_eq!(res.status(), 409);
    let res = browse(&app, &to).await;
    assert_eq!(without_query(&location(&res)), ERROR_URL);
    // The session is gone: the next login is not skipped.
    let login = login_challenge(&app, &c.id, &[]).await;
    let req = login_request(&app, &login).await;
    assert_eq!(req["skip"], false);
    app.stop().await;
}

#[tokio::test]
async fn rp_initiated_logout_with_front_and_back_channel() {
    let app = spawn_logout().await;
    let (bc_url, received) = backchannel_receiver().await;
    let c = client(
        &app,
        json!({
            "post_logout_redirect_uris": ["http://127.0.0.1:5555/bye"],
            "frontchannel_logout_uri": "http://127.0.0.1:5555/fc",
            "backchannel_logout_uri": bc_url,
        }),
    )
    .await;
    let id_token = s(&tokens(&app, &c, &["openid"]).await, "id_token");
    let sid = claims(&id_token)["sid"].as_str().unwrap().to_string();

    // A post-logout URI the client did not register is refused.
    let bad = format!("id_token_hint={id_token}&post_logout_redirect_uri=https://evil.example/");
    let res = browse(&app, &logout_url(&app, &bad)).await;
    assert_eq!(redirect_error(&res), "invalid_request");

    let query = format!(
        "id_token_hint={id_token}&post_logout_redirect_uri=http://127.0.0.1:5555/bye&state=st-12345678"
    );
    let res = browse(&app, &logout_url(&app, &query)).await;
    let challenge = param(&location(&res), "logout_challenge").unwrap();
    let (req, to) = read_and_accept_logout(&app, &challenge).await;
    assert_eq!(req["rp_initiated"], true);
    assert_eq!(req["sid"], sid.as_str());
    let res = browse(&app, &to).await;
    // Front-channel: a page with one iframe per client, then on to the RP's URI with state.
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains(&format!(
            "http://127.0.0.1:5555/fc?iss=http%3A%2F%2F127.0.0.1%3A4444%2F&amp;sid={sid}"
        )),
        "{page}"
    );
    assert!(page.contains("http://127.0.0.1:5555/bye?state=st-12345678"));
    // Back-channel: a signed logout token with sid and the event, without sub or exp.
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let cl = logout_token_claims(&bodies[0]);
    assert_eq!(cl["sid"], sid.as_str());
    assert_eq!(cl["aud"], json!([c.id]));
    assert_eq!(cl["iss"], "http://127.0.0.1:4444/");
    assert_eq!(
        cl["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(cl.get("sub").is_none() && cl.get("exp").is_none());
    app.stop().await;
}

#[tokio::test]
async fn rejected_and_unknown_logout_requests() {
    let app = spawn_logout().await;
    let c = client(&app, json!({})).await;
    let _ = run_flow(&app, &c.id, &[], &["openid"]).await;
    let res = browse(&app, &app.public("/oauth2/sessions/logout")).await;
    let challenge = param(&location(&res), "logout_challenge").unwrap();
    let res = reject(&app, "logout", &challenge, json!({})).await;
    assert_eq!(res.status(), 204);
    let res = flow_request(&app, "logout", &format!("logout_challenge={challenge}")).await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        json(res).await,
        json!({"error": "Unable to locate the resource", "error_description": ""})
    );
    let res = reject(&app, "logout", "unknown", json!({})).await;
    assert_eq!(res.status(), 204);
    let res = flow_answer(&app, "logout", "accept", "unknown", json!({})).await;
    assert_eq!(res.status(), 404);
    // The session survived the rejected logout.
    let login = login_challenge(&app, &c.id, &[]).await;
    let req = login_request(&app, &login).await;
    assert_eq!(req["skip"], true);
    app.stop().await;
}
