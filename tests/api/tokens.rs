//! The token endpoint and what tokens unlock: introspection, userinfo, revocation, flush.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{json, keys_of, send, TestApp};
use serde_json::{json, Value};

#[tokio::test]
async fn code_exchange_issues_verified_tokens() {
    let (app, c) = app_and_client().await;
    let code = code(&app, &c.id, &["openid", "offline"]).await;
    let res = exchange(&app, &c, &code).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    assert_eq!(
        res.headers()["content-type"],
        "application/json;charset=UTF-8"
    );
    let t = json(res).await;
    assert_eq!(
        keys_of(&t),
        [
            "access_token",
            "expires_in",
            "id_token",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["scope"], "openid offline");
    assert_eq!(t["expires_in"], 3600);
    let access = s(&t, "access_token");
    assert_eq!(access.len(), 87);
    check_id_token(&app, &c, &s(&t, "id_token"), &access).await;
    check_introspection(&app, &c, &access, &s(&t, "refresh_token")).await;
    check_userinfo(&app, &c, &access).await;
    app.stop().await;
}

/// The ID token verifies against the published JWKS and carries Hydra's claims.
async fn check_id_token(app: &TestApp, c: &TestClient, id_token: &str, access: &str) {
    let jwks = app.get_json(app.public("/.well-known/jwks.json")).await;
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let kid = header.kid.unwrap();
    assert!(kid.starts_with("public:"));
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let dk = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[&c.id]);
    v.set_issuer(&["http://127.0.0.1:4444/"]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &dk, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "alice", "consent claims cannot override sub");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["nonce"], "nonce-abcdefgh");
    assert_eq!(claims["aud"], json!([c.id]));
    assert_eq!(claims["at_hash"], portcullis::crypto::jws::at_hash(access));
    assert_eq!(claims["sid"].as_str().unwrap().len(), 36);
    for k in ["iat", "exp", "auth_time", "rat"] {
        assert!(claims[k].is_i64(), "{k}");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims.get("acr").is_none());
}

/// Introspection: every field of the model.
async fn check_introspection(app: &TestApp, c: &TestClient, access: &str, refresh: &str) {
    let i = introspect(app, access).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], "alice");
    assert_eq!(i["client_id"], c.id.as_str());
    assert_eq!(i["scope"], "openid offline");
    assert_eq!(i["aud"], json!([]));
    assert_eq!(i["iss"], "http://127.0.0.1:4444/");
    assert_eq!(i["token_type"], "Bearer");
    assert_eq!(i["token_use"], "access_token");
    assert_eq!(i["ext"], json!({"role": "admin"}));
    assert!(i["exp"].as_i64().unwrap() > i["iat"].as_i64().unwrap());
    let r = introspect(app, refresh).await;
    assert_eq!(r["token_use"], "refresh_token");
    assert_eq!(
        introspect(app, "not-a-token").await,
        json!({"active": false})
    );
    let url = app.admin("/oauth2/introspect");
    let res = app
        .post_form(url.clone(), &[("token", access), ("scope", "openid")])
        .await;
    assert_eq!(json(res).await["active"], true);
    let res = app
        .post_form(url.clone(), &[("token", access), ("scope", "write")])
        .await;
    assert_eq!(json(res).await, json!({"active": false}));
    assert_eq!(send(app.http.post(url)).await.status(), 400);
}

/// Userinfo by header and by form.
async fn check_userinfo(app: &TestApp, c: &TestClient, access: &str) {
    let res = userinfo(app, access).await;
    assert_eq!(res.status(), 200);
    let u = json(res).await;
    assert_eq!(u["sub"], "alice");
    assert_eq!(u["email"], "alice@example.com");
    assert_eq!(u["aud"], json!([c.id]));
    for k in ["nonce", "at_hash", "exp", "sid", "jti"] {
        assert!(u.get(k).is_none(), "{k}");
    }
    let res = app
        .post_form(app.public("/userinfo"), &[("access_token", access)])
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn code_reuse_revokes_the_grant() {
    let (app, c) = app_and_client().await;
    let code = code(&app, &c.id, &["openid", "offline"]).await;
    let t = json(exchange(&app, &c, &code).await).await;
    let res = exchange(&app, &c, &code).await;
    let body = assert_oauth_error(res, 400, "invalid_grant").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("already been used"));
    assert_active(&app, &s(&t, "access_token"), false).await;
    assert_active(&app, &s(&t, "refresh_token"), false).await;
    app.stop().await;
}

#[tokio::test]
async fn code_binding_pkce_redirect_uri_and_client() {
    let (app, c) = app_and_client().await;
    let other = client(&app, json!({})).await;
    let code_ = code(&app, &c.id, &["openid"]).await;
    let bad_verifier = "x".repeat(43);
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a TestClient, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("code_verifier", bad_verifier.as_str()),
                ("redirect_uri", REDIRECT),
            ],
            &c,
            400,
            "invalid_grant",
        ),
        (vec![("redirect_uri", REDIRECT)], &c, 400, "invalid_grant"),
        (
            vec![
                ("code_verifier", VERIFIER),
                ("redirect_uri", "http://127.0.0.1:5555/other"),
            ],
            &c,
            400,
            "invalid_grant",
        ),
        (
            vec![("code_verifier", VERIFIER), ("redirect_uri", REDIRECT)],
            &other,
            400,
            "invalid_grant",
        ),
    ];
    for (extra, who, status, error) in cases {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code_.as_str()),
        ];
        form.extend(extra);
        assert_oauth_error(token(&app, who, &form).await, status, error).await;
    }
    // Failed attempts do not spend the code.
    let res = exchange(&app, &c, &code_).await;
    assert_eq!(res.status(), 200);
    let t = json(res).await;
    assert!(t.get("refresh_token").is_none(), "offline was not granted");
    app.stop().await;
}

/// POST /oauth2/token with `form` and no Authorization header.
async fn token_form(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.post_form(app.public("/oauth2/token"), form).await
}

/// A client-credentials form carrying the client's credentials.
fn secret_in_form(c: &TestClient) -> [(&'static str, &str); 3] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", c.id.as_str()),
        ("client_secret", c.secret.as_str()),
    ]
}

fn with_secret(c: &TestClient, secret: &str) -> TestClient {
    TestClient {
        id: c.id.clone(),
        secret: secret.into(),
    }
}

#[tokio::test]
async fn client_authentication_methods() {
    let app = spawn().await;
    let basic = client(&app, json!({})).await;
    let post = client(
        &app,
        json!({"token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    let form = [("grant_type", "client_credentials"), ("scope", "read")];
    // Basic works; a wrong secret, an unknown client and the wrong method do not.
    assert_eq!(token(&app, &basic, &form).await.status(), 200);
    let wrong = with_secret(&basic, "wrong");
    assert_oauth_error(token(&app, &wrong, &form).await, 401, "invalid_client").await;
    let unknown = TestClient {
        id: "nobody".into(),
        secret: "x".into(),
    };
    assert_oauth_error(token(&app, &unknown, &form).await, 401, "invalid_client").await;
    assert_oauth_error(token(&app, &post, &form).await, 401, "invalid_client").await;
    let res = token_form(&app, &secret_in_form(&basic)).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // client_secret_post works with form credentials.
    let res = token_form(&app, &secret_in_form(&post)).await;
    assert_eq!(res.status(), 200);
    // Basic credentials are form-url-decoded: an id with reserved characters.
    let odd = client(
        &app,
        json!({"client_id": "a:b c", "client_secret": "s3cr3t+/&=x"}),
    )
    .await;
    use base64::Engine;
    let header = base64::engine::general_purpose::STANDARD.encode("a%3Ab+c:s3cr3t%2B%2F%26%3Dx");
    let req = app.http.post(app.public("/oauth2/token"));
    let res = send(
        req.header("authorization", format!("Basic {header}"))
            .form(&form),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", odd.id);
    // Missing grant type, empty body, unknown grant.
    let res = token(&app, &basic, &[("scope", "read")]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let req = app.http.post(app.public("/oauth2/token"));
    let res = send(req.basic_auth(&basic.id, Some(&basic.secret))).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = token(&app, &basic, &[("grant_type", "password")]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    app.stop().await;
}

#[tokio::test]
async fn client_credentials_scopes_audience_and_disabled_grants() {
    let app = spawn().await;
    let c = client(&app, json!({"audience": ["https://api.example.com"]})).await;
    let cc = "client_credentials";
    let extra = [
        ("scope", "read write"),
        ("audience", "https://api.example.com/v1"),
    ];
    let res = grant(&app, &c, cc, &extra).await;
    assert_eq!(res.status(), 200);
    let t = json(res).await;
    assert_eq!(t["scope"], "read write");
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    let i = introspect(&app, &s(&t, "access_token")).await;
    assert_eq!(i["sub"], c.id.as_str());
    assert_eq!(i["aud"], json!(["https://api.example.com/v1"]));
    let res = grant(&app, &c, cc, &[("scope", "admin")]).await;
    assert_oauth_error(res, 400, "invalid_scope").await;
    let res = grant(&app, &c, cc, &[("audience", "https://other.example.com")]).await;
    assert_oauth_error(res, 400, "invalid_request").await;

    // A client without the grant.
    let code_only = client(&app, json!({"grant_types": ["authorization_code"]})).await;
    let res = grant(&app, &code_only, cc, &[]).await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
    // No refresh_token grant: offline is granted but no refresh token comes back.
    let t = tokens(&app, &code_only, &["openid", "offline"]).await;
    assert!(t.get("refresh_token").is_none());
    let res = refresh(&app, &code_only, "x.y").await;
    assert_oauth_error(res, 400, "unauthorized_client").await;

    // Public clients may not use client_credentials.
    let public = client(&app, json!({"token_endpoint_auth_method": "none"})).await;
    let form = [("grant_type", cc), ("client_id", public.id.as_str())];
    assert_oauth_error(token_form(&app, &form).await, 400, "invalid_grant").await;
    app.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let (app, c) = app_and_client().await;
    let t1 = tokens(&app, &c, &["openid", "offline"]).await;
    let refresh1 = s(&t1, "refresh_token");
    let res = refresh(&app, &c, &refresh1).await;
    assert_eq!(res.status(), 200);
    let t2 = json(res).await;
    assert_eq!(t2["scope"], "openid offline");
    let id2 = claims(&s(&t2, "id_token"));
    let id1 = claims(&s(&t1, "id_token"));
    assert_eq!(id2["auth_time"], id1["auth_time"]);
    assert_ne!(id2["jti"], id1["jti"]);
    // Rotation: the old pair is dead, the new pair lives.
    assert_active(&app, &s(&t1, "access_token"), false).await;
    assert_active(&app, &refresh1, false).await;
    assert_active(&app, &s(&t2, "access_token"), true).await;
    // Reuse of the old refresh token fails and kills the whole family.
    let res = refresh(&app, &c, &refresh1).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    assert_active(&app, &s(&t2, "access_token"), false).await;
    let res = refresh(&app, &c, &s(&t2, "refresh_token")).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    // Another client cannot use a refresh token.
    let t = tokens(&app, &c, &["offline"]).await;
    let other = client(&app, json!({})).await;
    let res = refresh(&app, &other, &s(&t, "refresh_token")).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    // Expired refresh tokens are refused.
    app.clock.advance(721 * 3600);
    let res = refresh(&app, &c, &s(&t, "refresh_token")).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    app.stop().await;
}

/// Asserts that exactly one of `results` succeeded.
fn assert_one_success(results: &[reqwest::Response]) {
    let ok = results.iter().filter(|r| r.status() == 200).count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        results.iter().map(|r| r.status()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn parallel_redemptions_yield_exactly_one_success() {
    let (app, c) = app_and_client().await;
    let code_ = code(&app, &c.id, &["openid", "offline"]).await;
    let attempts = (0..8).map(|_| exchange(&app, &c, &code_));
    let results = join_all(attempts).await;
    assert_one_success(&results);
    assert!(results
        .iter()
        .all(|r| r.status() == 200 || r.status() == 400));

    let t = tokens(&app, &c, &["openid", "offline"]).await;
    let refresh_token = s(&t, "refresh_token");
    let attempts = (0..8).map(|_| refresh(&app, &c, &refresh_token));
    assert_one_success(&join_all(attempts).await);
    app.stop().await;
}

/// Polls all futures together, so the requests are in flight at the same time.
async fn join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::Poll;
    let mut futs: Vec<Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => out[i] = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(out.iter_mut().map(|o| o.take().unwrap()).collect())
        }
    })
    .await
}

#[tokio::test]
async fn revocation_userinfo_errors_flush_and_delete() {
    let app = spawn().await;
    let c = client(&app, json!({"userinfo_signed_response_alg": "RS256"})).await;
    let t = tokens(&app, &c, &["openid", "offline"]).await;
    let access = s(&t, "access_token");

    // Signed userinfo.
    let res = userinfo(&app, &access).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/jwt");
    let jwt = res.text().await.unwrap();
    assert_eq!(claims(&jwt)["sub"], "alice");

    // Userinfo failures carry WWW-Authenticate.
    let res = app.get(app.public("/userinfo")).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("error=request_unauthorized"));
    let res = userinfo(&app, &s(&t, "refresh_token")).await;
    assert_eq!(res.status(), 401);

    check_revocation(&app, &c, &access, &s(&t, "refresh_token")).await;

    // Expired access tokens: userinfo says token_expired.
    let cc = client_credentials(&app, &c, &[("scope", "read")]).await;
    let cc_token = s(&cc, "access_token");
    app.clock.advance(3601);
    let res = userinfo(&app, &cc_token).await;
    assert_eq!(res.status(), 401);
    assert_eq!(json(res).await["error"], "token_expired");
    assert_active(&app, &cc_token, false).await;

    check_flush_and_delete(&app, &c).await;
    app.stop().await;
}

/// Revocation by another client is a silent no-op; by the owner it kills the grant.
async fn check_revocation(app: &TestApp, c: &TestClient, access: &str, refresh: &str) {
    let other = client(app, json!({})).await;
    let res = revoke(app, &other, access).await;
    assert_eq!(res.status(), 200);
    assert_active(app, access, true).await;
    let res = revoke(app, c, access).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "");
    assert_active(app, access, false).await;
    assert_active(app, refresh, false).await;
    assert_eq!(revoke(app, c, "unknown.token").await.status(), 200);
    let wrong = with_secret(c, "nope");
    assert_oauth_error(revoke(app, &wrong, access).await, 401, "invalid_client").await;
}

/// Flush removes access tokens older than the TTL; DELETE /oauth2/tokens a client's tokens.
async fn check_flush_and_delete(app: &TestApp, c: &TestClient) {
    assert_eq!(app.access_tokens().await, 1);
    let flush = |body: Value| async move { app.admin_post("/oauth2/flush", &body).await };
    assert_eq!(flush(json!({})).await.status(), 204);
    assert_eq!(app.access_tokens().await, 0);
    let res = flush(json!({"notAfter": "yesterday"})).await;
    assert_eq!(res.status(), 400);
    let fresh = client_credentials(app, c, &[]).await;
    let res = flush(json!({"notAfter": "2100-01-01T00:00:00Z"})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        introspect(app, &s(&fresh, "access_token")).await["active"],
        true,
        "younger than the TTL"
    );
    let res = app.delete(app.admin("/oauth2/tokens")).await;
    assert_eq!(res.status(), 400);
    let res = app
        .delete(app.admin(&format!("/oauth2/tokens?client_id={}", c.id)))
        .await;
    assert_eq!(res.status(), 204);
    assert_active(app, &s(&fresh, "access_token"), false).await;
}

#[tokio::test]
async fn sessions_are_sealed_and_tokens_survive_secret_rotation() {
    let (app, c) = app_and_client().await;
    let t = tokens(&app, &c, &["openid", "offline"]).await;
    let access = s(&t, "access_token");
    // Rows hold neither the token nor readable session data.
    let rows = app.state().store.raw_token_data().await.unwrap();
    assert_eq!(rows.len(), 3, "code, access and refresh rows");
    for row in &rows {
        assert!(!row.contains("alice") && !row.starts_with('{'), "{row}");
    }
    // Rotate: the new secret signs, the old one still validates and decrypts.
    let app = app
        .restart_with(|cfg| {
            cfg.urls.login = LOGIN_URL.into();
            cfg.urls.consent = CONSENT_URL.into();
            cfg.secrets.system = vec![
                portcullis::config::Secret("a-brand-new-system-secret".into()),
                portcullis::config::Secret(super::harness::SECRET.into()),
            ];
        })
        .await;
    let i = introspect(&app, &access).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], "alice");
    let res = refresh(&app, &c, &s(&t, "refresh_token")).await;
    assert_eq!(res.status(), 200);
    // Without the old secret the stored keys no longer open: the server refuses to start and
    // names secrets.system, instead of serving 500s (start safety, issue 7).
    let mut cfg = super::harness::base_config(&app.dsn);
    cfg.secrets.system = vec![portcullis::config::Secret(
        "a-brand-new-system-secret".into(),
    )];
    let Err(err) = portcullis::app::build(
        cfg,
        portcullis::app::Flags {
            insecure_http: true,
            dev: false,
        },
    )
    .await
    else {
        panic!("start must be refused");
    };
    assert!(err.to_string().contains("secrets.system"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn max_age_and_id_token_hint() {
    let (app, c) = app_and_client().await;
    let id_token = s(&tokens(&app, &c, &["openid", "offline"]).await, "id_token");

    // A hint for the session's subject keeps the remembered login.
    let extra = [("id_token_hint", id_token.as_str()), ("prompt", "none")];
    let login = login_challenge(&app, &c.id, &extra).await;
    let req = login_request(&app, &login).await;
    assert_eq!(req["skip"], true);
    assert_eq!(req["oidc_context"]["id_token_hint_claims"]["sub"], "alice");
    // A forged hint is an invalid request.
    let forged = [("id_token_hint", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA")];
    let res = browse(&app, &auth_url(&app, &c.id, &forged)).await;
    assert_eq!(redirect_error(&res), "invalid_request");

    // max_age: an old session with prompt=none is login_required; without prompt, a fresh login.
    app.clock.advance(120);
    let extra = [("max_age", "60"), ("prompt", "none")];
    let res = browse(&app, &auth_url(&app, &c.id, &extra)).await;
    assert_eq!(redirect_error(&res), "login_required");
    let login = login_challenge(&app, &c.id, &[("max_age", "60")]).await;
    assert_eq!(login_request(&app, &login).await["skip"], false);
    let login = login_challenge(&app, &c.id, &[("max_age", "600")]).await;
    assert_eq!(login_request(&app, &login).await["skip"], true);
    app.stop().await;
}

#[tokio::test]
async fn jwt_access_token_strategy() {
    let app =
        spawn_with(|c| c.strategies.access_token = portcullis::config::AccessTokenStrategy::Jwt)
            .await;
    let c = client(&app, json!({})).await;
    let t = client_credentials(&app, &c, &[("scope", "read")]).await;
    let access = s(&t, "access_token");
    assert_eq!(access.split('.').count(), 3);
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert!(header.kid.unwrap().starts_with("public:"));
    let cl = claims(&access);
    assert_eq!(cl["sub"], c.id.as_str());
    assert_eq!(cl["client_id"], c.id.as_str());
    assert_eq!(cl["scp"], json!(["read"]));
    assert_eq!(cl["iss"], "http://127.0.0.1:4444/");
    assert_eq!(
        cl["exp"].as_i64().unwrap() - cl["iat"].as_i64().unwrap(),
        3600
    );
    let i = introspect(&app, &access).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["token_use"], "access_token");
    // A token with a tampered payload does not verify.
    let parts: Vec<&str> = access.split('.').collect();
    use base64::Engine;
    let forged_claims =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"root"}"#);
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    assert_eq!(introspect(&app, &forged).await, json!({"active": false}));
    // The code flow issues JWT access tokens too, and revocation finds them.
    let t = tokens(&app, &c, &["openid", "offline"]).await;
    let access = s(&t, "access_token");
    assert_eq!(claims(&access)["sub"], "alice");
    assert_eq!(claims(&access)["ext"], json!({"role": "admin"}));
    assert_eq!(revoke(&app, &c, &access).await.status(), 200);
    assert_active(&app, &access, false).await;
    app.stop().await;
}

#[tokio::test]
async fn private_key_jwt_client_assertions() {
    let app = spawn().await;
    let keys = super::harness::shared_keys().await;
    let private = keys
        .iter()
        .find(|k| k["kid"].as_str().unwrap().starts_with("private:"))
        .unwrap();
    let public = keys
        .iter()
        .find(|k| k["kid"].as_str().unwrap().starts_with("public:"))
        .unwrap();
    let c = client(
        &app,
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [public]}}),
    )
    .await;
    let signer = portcullis::crypto::jws::Signer::from_jwk(private).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let assertion = |jti: &str, aud: &str| {
        signer
            .sign(&json!({"iss": c.id, "sub": c.id, "aud": aud, "jti": jti, "exp": now + 300, "iat": now}))
            .unwrap()
    };
    let token_url = "http://127.0.0.1:4444/oauth2/token";
    let send = |a: String| {
        app.http
            .post(app.public("/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials".to_string()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
                ),
                ("client_assertion", a),
            ])
            .send()
    };
    let res = send(assertion("jti-1", token_url)).await.unwrap();
    assert_eq!(res.status(), 200);
    // A replayed jti, a wrong audience and a secret instead of an assertion are refused.
    assert_oauth_error(
        send(assertion("jti-1", token_url)).await.unwrap(),
        400,
        "jti_known",
    )
    .await;
    assert_oauth_error(
        send(assertion("jti-2", "https://elsewhere/token"))
            .await
            .unwrap(),
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(
        token(&app, &c, &[("grant_type", "client_credentials")]).await,
        401,
        "invalid_client",
    )
    .await;
    // Another client's key does not verify.
    let other = client(&app, json!({})).await;
    let forged = signer.sign(&json!({"iss": other.id, "sub": other.id, "aud": token_url, "jti": "x", "exp": now + 300})).unwrap();
    assert_oauth_error(send(forged).await.unwrap(), 401, "invalid_client").await;

    // Keys published at a jwks_uri are fetched.
    let doc = json!({"keys": [public]});
    let jwks_app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || async move { axum::Json(doc) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, jwks_app).await.unwrap() });
    let remote = client(
        &app,
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks_uri}),
    )
    .await;
    let a = signer.sign(&json!({"iss": remote.id, "sub": remote.id, "aud": token_url, "jti": "r-1", "exp": now + 300})).unwrap();
    assert_eq!(send(a).await.unwrap().status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_client_revokes_its_tokens() {
    let (app, c) = app_and_client().await;
    let t = client_credentials(&app, &c, &[]).await;
    let access = s(&t, "access_token");
    assert_active(&app, &access, true).await;
    let res = app.delete(app.admin(&format!("/clients/{}", c.id))).await;
    assert_eq!(res.status(), 204);
    assert_eq!(introspect(&app, &access).await, json!({"active": false}));
    assert_eq!(app.access_tokens().await, 0);
    app.stop().await;
}

// Hydra hashes Go's url.Host, port included: the same sub after a move from Hydra.
#[tokio::test]
async fn pairwise_and_forced_subject_identifiers() {
    let app = spawn_with(pairwise).await;
    let c = client(&app, json!({"subject_type": "pairwise"})).await;
    let t = tokens(&app, &c, &["openid"]).await;
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(b"127.0.0.1:5555alicepairwise-salt")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(claims(&s(&t, "id_token"))["sub"], expected.as_str());
    let i = introspect(&app, &s(&t, "access_token")).await;
    assert_eq!(i["sub"], "alice");
    assert_eq!(i["obfuscated_subject"], expected.as_str());
    let u = json(userinfo(&app, &s(&t, "access_token")).await).await;
    assert_eq!(u["sub"], expected.as_str());

    // A forced identifier from the login app wins.
    let public = client(&app, json!({})).await;
    let login = login_challenge(&app, &public.id, &[("prompt", "login")]).await;
    let to = accept_login(
        &app,
        &login,
        json!({"subject": "alice", "force_subject_identifier": "alice-at-partner"}),
    )
    .await;
    let consent = consent_challenge(&app, &to).await;
    let to = accept_consent(&app, &consent, json!({"grant_scope": ["openid"]})).await;
    let code_ = param(&location(&browse(&app, &to).await), "code").unwrap();
    let t = json(exchange(&app, &public, &code_).await).await;
    assert_eq!(claims(&s(&t, "id_token"))["sub"], "alice-at-partner");
    let i = introspect(&app, &s(&t, "access_token")).await;
    assert_eq!(i["sub"], "alice");
    assert!(i.get("obfuscated_subject").is_none());
    app.stop().await;
}
