//! Logout: the logout app hand-over, RP-initiated logout, front- and back-channel logout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{json, TestApp};
use serde_json::json;
use std::sync::{Arc, Mutex};

const LOGOUT_URL: &str = "http://127.0.0.1:5555/logout";
const LOGGED_OUT: &str = "http://127.0.0.1:5555/logged-out";

async fn spawn_logout() -> TestApp {
    spawn_with(|c| {
        c.urls.logout = LOGOUT_URL.into();
        c.urls.post_logout_redirect = LOGGED_OUT.into();
    })
    .await
}

/// A relying party's back-channel endpoint that records the logout tokens it receives.
async fn backchannel_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
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
    assert_eq!(param(&location(&res), "error").unwrap(), "invalid_request");

    let _ = run_flow(&app, &c.id, &[], &["openid"]).await;
    let res = browse(&app, &app.public("/oauth2/sessions/logout")).await;
    let loc = location(&res);
    assert_eq!(without_query(&loc), LOGOUT_URL);
    let challenge = param(&loc, "logout_challenge").unwrap();
    assert_eq!(challenge.len(), 36);
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/logout?logout_challenge={challenge}"
        )))
        .await;
    assert_eq!(res.status(), 200);
    let req = json(res).await;
    assert_eq!(req["subject"], "alice");
    assert_eq!(req["rp_initiated"], false);
    assert_eq!(req["sid"].as_str().unwrap().len(), 36);
    assert!(req["request_url"]
        .as_str()
        .unwrap()
        .contains("/oauth2/sessions/logout"));
    let res = app
        .put_json(
            app.admin(&format!(
                "/oauth2/auth/requests/logout/accept?logout_challenge={challenge}"
            )),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let to = json(res).await["redirect_to"].as_str().unwrap().to_string();
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
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/logout?challenge={challenge}"
        )))
        .await;
    assert_eq!(res.status(), 409);
    let res = browse(&app, &to).await;
    assert_eq!(without_query(&location(&res)), ERROR_URL);
    // The session is gone: the next login is not skipped.
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
    let code_ = code(&app, &c.id, &["openid"]).await;
    let id_token = json(exchange(&app, &c, &code_).await).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    let sid = claims(&id_token)["sid"].as_str().unwrap().to_string();

    // A post-logout URI the client did not register is refused.
    let bad = format!(
        "{}?id_token_hint={id_token}&post_logout_redirect_uri=https://evil.example/",
        app.public("/oauth2/sessions/logout")
    );
    let res = browse(&app, &bad).await;
    assert_eq!(param(&location(&res), "error").unwrap(), "invalid_request");

    let url = format!(
        "{}?id_token_hint={id_token}&post_logout_redirect_uri=http://127.0.0.1:5555/bye&state=st-12345678",
        app.public("/oauth2/sessions/logout")
    );
    let res = browse(&app, &url).await;
    let challenge = param(&location(&res), "logout_challenge").unwrap();
    let req = json(
        app.get(app.admin(&format!(
            "/oauth2/auth/requests/logout?logout_challenge={challenge}"
        )))
        .await,
    )
    .await;
    assert_eq!(req["rp_initiated"], true);
    assert_eq!(req["sid"], sid.as_str());
    let res = app
        .put_json(
            app.admin(&format!(
                "/oauth2/auth/requests/logout/accept?logout_challenge={challenge}"
            )),
            &json!({}),
        )
        .await;
    let to = json(res).await["redirect_to"].as_str().unwrap().to_string();
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
    let token = url::form_urlencoded::parse(bodies[0].as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned();
    let cl = claims(&token);
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
    let res = app
        .put_json(
            app.admin(&format!(
                "/oauth2/auth/requests/logout/reject?logout_challenge={challenge}"
            )),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/logout?logout_challenge={challenge}"
        )))
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        json(res).await,
        json!({"error": "Unable to locate the resource", "error_description": ""})
    );
    let res = app
        .put_json(
            app.admin("/oauth2/auth/requests/logout/reject?logout_challenge=unknown"),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let res = app
        .put_json(
            app.admin("/oauth2/auth/requests/logout/accept?logout_challenge=unknown"),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 404);
    // The session survived the rejected logout.
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let req = json(
        app.get(app.admin(&format!("/oauth2/auth/requests/login?challenge={login}")))
            .await,
    )
    .await;
    assert_eq!(req["skip"], true);
    app.stop().await;
}
