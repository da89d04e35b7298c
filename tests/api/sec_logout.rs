//! Security: RP-initiated logout with the `id_token_hint` of a pairwise client (or a forced
//! subject identifier) ends the real subject's session and reaches every RP of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{json, TestApp};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

const LOGOUT_URL: &str = "http://127.0.0.1:5555/logout";
const LOGGED_OUT: &str = "http://127.0.0.1:5555/logged-out";

async fn spawn_pairwise() -> TestApp {
    spawn_with(|c| {
        c.urls.logout = LOGOUT_URL.into();
        c.urls.post_logout_redirect = LOGGED_OUT.into();
        c.oidc.subject_identifiers.supported_types = vec![
            portcullis::config::SubjectType::Public,
            portcullis::config::SubjectType::Pairwise,
        ];
        c.oidc.subject_identifiers.pairwise.salt =
            portcullis::config::Secret("pairwise-salt".into());
    })
    .await
}

/// A relying parties' back-channel endpoint recording the logout tokens it receives.
async fn backchannel_listener() -> (String, Arc<Mutex<Vec<String>>>) {
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

/// The `aud` of every logout token received, and the `sid` they all carry.
fn delivered(bodies: &[String]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut auds = BTreeSet::new();
    let mut sids = BTreeSet::new();
    for b in bodies {
        let token = url::form_urlencoded::parse(b.as_bytes())
            .find(|(k, _)| k == "logout_token")
            .unwrap()
            .1
            .into_owned();
        let c = claims(&token);
        auds.insert(c["aud"][0].as_str().unwrap().to_string());
        sids.insert(c["sid"].as_str().unwrap().to_string());
    }
    (auds, sids)
}

/// Runs an RP-initiated logout with `hint` through the logout app; returns the logout
/// request the admin API showed and the final response to the browser.
async fn rp_logout(app: &TestApp, hint: &str) -> (serde_json::Value, reqwest::Response) {
    let url = format!(
        "{}?id_token_hint={hint}",
        app.public("/oauth2/sessions/logout")
    );
    let res = browse(app, &url).await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(without_query(&loc), LOGOUT_URL);
    let challenge = param(&loc, "logout_challenge").unwrap();
    let res = app
        .get(app.admin(&format!(
            "/oauth2/auth/requests/logout?logout_challenge={challenge}"
        )))
        .await;
    assert_eq!(res.status(), 200);
    let request = json(res).await;
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
    (request, browse(app, &to).await)
}

async fn id_token(app: &TestApp, c: &TestClient, code_: &str) -> String {
    let res = exchange(app, c, code_).await;
    assert_eq!(res.status(), 200);
    json(res).await["id_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn pairwise_hint_logs_out_the_real_subject_at_every_rp() {
    let app = spawn_pairwise().await;
    let (bc, received) = backchannel_listener().await;
    let public = client(&app, json!({"backchannel_logout_uri": bc})).await;
    let pairwise = client(
        &app,
        json!({"subject_type": "pairwise", "backchannel_logout_uri": bc}),
    )
    .await;
    // One browser session, two RPs.
    let public_token = id_token(&app, &public, &code(&app, &public.id, &["openid"]).await).await;
    let pairwise_token = id_token(
        &app,
        &pairwise,
        &code(&app, &pairwise.id, &["openid"]).await,
    )
    .await;
    let sid = claims(&public_token)["sid"].as_str().unwrap().to_string();
    assert_eq!(claims(&pairwise_token)["sid"], sid.as_str());
    assert_eq!(claims(&public_token)["sub"], "alice");
    let obfuscated = claims(&pairwise_token)["sub"].as_str().unwrap().to_string();
    assert_ne!(obfuscated, "alice");

    let (request, res) = rp_logout(&app, &pairwise_token).await;
    // The logout app sees the real subject, not the pairwise identifier.
    assert_eq!(request["subject"], "alice");
    assert_eq!(request["sid"], sid.as_str());
    assert_eq!(request["rp_initiated"], true);
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res).as_str(), LOGGED_OUT);
    // Both RPs got a back-channel logout for the session (there were 0 before the fix).
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let (auds, sids) = delivered(&bodies);
    assert_eq!(
        auds,
        BTreeSet::from([public.id.clone(), pairwise.id.clone()])
    );
    assert_eq!(sids, BTreeSet::from([sid.clone()]));

    // The session is gone: the next login is not skipped, and the same hint now finds no
    // session and goes straight on to the post-logout URL (as Hydra does).
    let res = browse(&app, &auth_url(&app, &public.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let req = json(
        app.get(app.admin(&format!("/oauth2/auth/requests/login?challenge={login}")))
            .await,
    )
    .await;
    assert_eq!(req["skip"], false);
    let res = browse(
        &app,
        &format!(
            "{}?id_token_hint={pairwise_token}",
            app.public("/oauth2/sessions/logout")
        ),
    )
    .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res).as_str(), LOGGED_OUT);
    assert_eq!(received.lock().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn forced_subject_hint_logs_out_the_real_subject() {
    let app = spawn_pairwise().await;
    let (bc, received) = backchannel_listener().await;
    let c = client(&app, json!({"backchannel_logout_uri": bc})).await;
    let res = browse(&app, &auth_url(&app, &c.id, &[])).await;
    let login = challenge_of(&res, "login_challenge").await;
    let to = accept_login(
        &app,
        &login,
        json!({"subject": "alice", "remember": true, "remember_for": 3600,
               "force_subject_identifier": "alice-at-partner"}),
    )
    .await;
    let consent = challenge_of(&browse(&app, &to).await, "consent_challenge").await;
    let to = accept_consent(&app, &consent, json!({"grant_scope": ["openid"]})).await;
    let code_ = param(&location(&browse(&app, &to).await), "code").unwrap();
    let token = id_token(&app, &c, &code_).await;
    assert_eq!(claims(&token)["sub"], "alice-at-partner");

    let (request, res) = rp_logout(&app, &token).await;
    assert_eq!(request["subject"], "alice");
    assert_eq!(res.status(), 302);
    let bodies = received.lock().unwrap().clone();
    assert_eq!(delivered(&bodies).0, BTreeSet::from([c.id.clone()]));
    app.stop().await;
}
