//! Security: RP-initiated logout with the `id_token_hint` of a pairwise client (or a forced
//! subject identifier) ends the real subject's session and reaches every RP of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{json, TestApp};
use serde_json::json;
use std::collections::BTreeSet;

async fn spawn_pairwise() -> TestApp {
    spawn_with(|c| {
        logout_urls(c);
        pairwise(c);
    })
    .await
}

/// The `aud` of every logout token received, and the `sid` they all carry.
fn delivered(bodies: &[String]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut auds = BTreeSet::new();
    let mut sids = BTreeSet::new();
    for b in bodies {
        let c = logout_token_claims(b);
        auds.insert(c["aud"][0].as_str().unwrap().to_string());
        sids.insert(c["sid"].as_str().unwrap().to_string());
    }
    (auds, sids)
}

/// Runs an RP-initiated logout with `hint` through the logout app; returns the logout
/// request the admin API showed and the final response to the browser.
async fn rp_logout(app: &TestApp, hint: &str) -> (serde_json::Value, reqwest::Response) {
    let res = browse(app, &logout_url(app, &format!("id_token_hint={hint}"))).await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(without_query(&loc), LOGOUT_URL);
    let challenge = param(&loc, "logout_challenge").unwrap();
    let (request, to) = read_and_accept_logout(app, &challenge).await;
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
    let (bc, received) = backchannel_receiver().await;
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
    let login = login_challenge(&app, &public.id, &[]).await;
    let req = login_request(&app, &login).await;
    assert_eq!(req["skip"], false);
    let hint = format!("id_token_hint={pairwise_token}");
    let res = browse(&app, &logout_url(&app, &hint)).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res).as_str(), LOGGED_OUT);
    assert_eq!(received.lock().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn forced_subject_hint_logs_out_the_real_subject() {
    let app = spawn_pairwise().await;
    let (bc, received) = backchannel_receiver().await;
    let c = client(&app, json!({"backchannel_logout_uri": bc})).await;
    let login = login_challenge(&app, &c.id, &[]).await;
    let to = accept_login(
        &app,
        &login,
        json!({"subject": "alice", "remember": true, "remember_for": 3600,
               "force_subject_identifier": "alice-at-partner"}),
    )
    .await;
    let consent = consent_challenge(&app, &to).await;
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
