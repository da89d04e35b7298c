//! Consent revocation kills every artefact of the grant: codes issued before the revocation
//! no longer redeem, and the tokens they or earlier codes produced are inactive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::json;
use serde_json::{json, Value};

const INVALID_GRANT: &str = "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_string()
}

fn expected(hint: &str) -> Value {
    json!({"error": "invalid_grant", "error_description": format!("{INVALID_GRANT} {hint}")})
}

async fn refresh(app: &super::harness::TestApp, c: &TestClient, token: &str) -> reqwest::Response {
    super::flow::token(
        app,
        c,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

#[tokio::test]
async fn revoked_consent_takes_its_unredeemed_codes_along() {
    let (app, c) = app_and_client().await;
    let other = client(&app, json!({})).await;
    // One grant already redeemed, one code still waiting in the browser, and a grant of
    // another client that must survive.
    let t = tokens(&app, &c, &["openid", "offline"]).await;
    let pending = code(&app, &c.id, &["openid", "offline"]).await;
    let kept = json(exchange(&app, &other, &code(&app, &other.id, &["openid"]).await).await).await;
    assert_active(&app, &s(&t, "access_token"), true).await;

    let res = app
        .delete(app.admin(&format!(
            "/oauth2/auth/sessions/consent?subject=alice&client={}",
            c.id
        )))
        .await;
    assert_eq!(res.status(), 204);

    // The attack: redeem the code issued before the revocation.
    let res = exchange(&app, &c, &pending).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        json(res).await,
        expected("The authorization code is unknown or malformed.")
    );
    // Everything from before is dead, refresh included.
    assert_eq!(
        introspect(&app, &s(&t, "access_token")).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&app, &s(&t, "refresh_token")).await,
        json!({"active": false})
    );
    let res = refresh(&app, &c, &s(&t, "refresh_token")).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        json(res).await,
        expected("The refresh token is unknown, malformed or revoked.")
    );
    // Userinfo (which goes through the per-process cache) refuses the old token too.
    let res = userinfo(&app, &s(&t, "access_token")).await;
    assert_eq!(res.status(), 401);
    // The other client's grant is untouched.
    assert_active(&app, &s(&kept, "access_token"), true).await;
    app.stop().await;
}

#[tokio::test]
async fn revoking_all_consents_kills_implicit_tokens_and_cached_lookups() {
    let app =
        spawn_with(|c| c.oauth2.introspection_cache_ttl = std::time::Duration::from_secs(3600))
            .await;
    let c = client(&app, implicit_client(&["code", "token id_token"])).await;
    let loc = implicit_flow(&app, &c.id).await;
    let implicit = param(&loc, "access_token").unwrap();
    let pending = code(&app, &c.id, &["openid", "offline"]).await;
    // Warm the cache: the revocation must void the cached lookup, not only the row.
    assert_active(&app, &implicit, true).await;

    let res = app
        .delete(app.admin("/oauth2/auth/sessions/consent?subject=alice&all=true"))
        .await;
    assert_eq!(res.status(), 204);

    assert_eq!(introspect(&app, &implicit).await, json!({"active": false}));
    let res = exchange(&app, &c, &pending).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        json(res).await,
        expected("The authorization code is unknown or malformed.")
    );
    // Nothing left to revoke.
    let res = app
        .delete(app.admin("/oauth2/auth/sessions/consent?subject=alice&all=true"))
        .await;
    assert_eq!(res.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_code_that_outlived_its_consent_does_not_redeem() {
    // A code written concurrently with a revocation (its row landed after the revocation's
    // DELETE) is left behind without its flow: redemption must refuse it and write nothing.
    let (app, c) = app_and_client().await;
    let pending = code(&app, &c.id, &["openid", "offline"]).await;
    app.state()
        .store
        .execute_raw("DELETE FROM portcullis_flow")
        .await
        .unwrap();
    let res = exchange(&app, &c, &pending).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        json(res).await,
        expected("The authorization code is unknown or malformed.")
    );
    assert_eq!(
        app.state()
            .store
            .count_tokens(portcullis::domain::token::TokenKind::Access)
            .await
            .unwrap(),
        0
    );
    app.stop().await;
}
