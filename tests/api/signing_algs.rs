//! ES256 and EdDSA ID-token keys: when the newest key of `hydra.openid.id-token` is a P-256 or
//! Ed25519 key, ID tokens, userinfo JWTs and `id_token_hint` verification use it, discovery
//! lists it, and deleting it brings RS256 back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{json, TestApp};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

const LOGOUT_URL: &str = "http://127.0.0.1:5555/logout";

async fn spawn_app() -> TestApp {
    spawn_with(|c| {
        c.urls.logout = LOGOUT_URL.into();
    })
    .await
}

/// The JWKS key named `kid` as a jsonwebtoken decoding key for `alg`.
async fn published_key(app: &TestApp, kid: &str, alg: Algorithm) -> DecodingKey {
    let jwks = app.get_json(app.public("/.well-known/jwks.json")).await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("{kid} is not published: {jwks}"))
        .clone();
    assert!(key.get("d").is_none(), "private material published");
    let s = |m: &str| key[m].as_str().unwrap().to_string();
    match alg {
        Algorithm::ES256 => DecodingKey::from_ec_components(&s("x"), &s("y")).unwrap(),
        Algorithm::EdDSA => DecodingKey::from_ed_components(&s("x")).unwrap(),
        _ => DecodingKey::from_rsa_components(&s("n"), &s("e")).unwrap(),
    }
}

async fn id_token_of(app: &TestApp, c: &TestClient) -> (String, String) {
    let code_ = code(app, &c.id, &["openid"]).await;
    let res = exchange(app, c, &code_).await;
    assert_eq!(res.status(), 200);
    let t = json(res).await;
    (
        t["id_token"].as_str().unwrap().to_string(),
        t["access_token"].as_str().unwrap().to_string(),
    )
}

/// New ID tokens are signed with the newest key and verify against the published JWKS; a
/// client asking for signed userinfo gets a JWT under the same key.
async fn check_signed_with_newest(
    app: &TestApp,
    c: &TestClient,
    id_token: &str,
    access: &str,
    alg: Algorithm,
) {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, alg);
    assert_eq!(header.kid.as_deref(), Some("public:newest"));
    let mut v = Validation::new(alg);
    v.set_audience(&[&c.id]);
    v.set_issuer(&["http://127.0.0.1:4444/"]);
    let key = published_key(app, "public:newest", alg).await;
    let claims: Value = jsonwebtoken::decode(id_token, &key, &v).unwrap().claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], json!([c.id]));

    // A client asking for signed userinfo gets a JWT under the same key.
    let res = userinfo(app, access).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/jwt");
    let jwt = res.text().await.unwrap();
    assert_eq!(jsonwebtoken::decode_header(&jwt).unwrap().alg, alg);
    let mut uv = Validation::new(alg);
    uv.validate_aud = false;
    uv.required_spec_claims.clear();
    let info: Value = jsonwebtoken::decode(&jwt, &key, &uv).unwrap().claims;
    assert_eq!(info["sub"], "alice");
}

/// The hint verifies: RP-initiated logout reaches the logout app with the right subject; a
/// forged hint (the signature of another token) is refused.
async fn check_logout_hints(app: &TestApp, id_token: &str, before: &str) {
    let res = browse(app, &logout_url(app, &format!("id_token_hint={id_token}"))).await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(without_query(&loc), LOGOUT_URL, "{loc}");
    let challenge = param(&loc, "logout_challenge").unwrap();
    let req =
        json(flow_request(app, "logout", &format!("logout_challenge={challenge}")).await).await;
    assert_eq!(req["subject"], "alice");
    assert_eq!(req["rp_initiated"], true);

    // A forged hint (the signature of another token) is refused.
    let forged = {
        let parts: Vec<&str> = id_token.split('.').collect();
        let other: Vec<&str> = before.split('.').collect();
        format!("{}.{}.{}", parts[0], parts[1], other[2])
    };
    let res = browse(app, &logout_url(app, &format!("id_token_hint={forged}"))).await;
    assert_eq!(redirect_error(&res), "invalid_request");
}

async fn check_alg(wire: &str, alg: Algorithm) {
    let app = spawn_app().await;
    let c = client(&app, json!({"userinfo_signed_response_alg": "RS256"})).await;

    // RS256 until another key is added.
    let (before, _) = id_token_of(&app, &c).await;
    assert_eq!(
        jsonwebtoken::decode_header(&before).unwrap().alg,
        Algorithm::RS256
    );

    let res = app
        .generate_key("hydra.openid.id-token", wire, "newest")
        .await;
    assert_eq!(res.status(), 201);

    // Discovery lists the algorithm in use first, then the older RSA key's.
    let d = app
        .get_json(app.public("/.well-known/openid-configuration"))
        .await;
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!([wire, "RS256"])
    );
    assert_eq!(
        d["userinfo_signing_alg_values_supported"],
        json!(["none", wire, "RS256"])
    );

    let (id_token, access) = id_token_of(&app, &c).await;
    check_signed_with_newest(&app, &c, &id_token, &access, alg).await;

    check_logout_hints(&app, &id_token, &before).await;

    // Deleting the newest key brings RS256 back, on this replica at once.
    for kid in ["private:newest", "public:newest"] {
        let res = app
            .delete(app.admin(&format!("/keys/hydra.openid.id-token/{kid}")))
            .await;
        assert_eq!(res.status(), 204);
    }
    let (after, _) = id_token_of(&app, &c).await;
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().alg,
        Algorithm::RS256
    );
    let d = app
        .get_json(app.public("/.well-known/openid-configuration"))
        .await;
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    app.stop().await;
}

#[tokio::test]
async fn es256_id_token_key() {
    check_alg("ES256", Algorithm::ES256).await;
}

#[tokio::test]
async fn eddsa_id_token_key() {
    check_alg("EdDSA", Algorithm::EdDSA).await;
}
