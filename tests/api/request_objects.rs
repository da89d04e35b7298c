//! `response_mode=form_post` and OpenID Connect request objects (`request`, `request_uri`), as
//! fosite v0.36 answers them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{between, json, TestApp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};

/// The hidden fields of a form_post page, and its action.
fn form_fields(page: &str) -> (String, Vec<(String, String)>) {
    let action = between(page, "action=\"", '"');
    let fields = page
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|s| {
            let name = s.split('"').next().unwrap().to_string();
            let value = s
                .split("value=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap()
                .replace("&amp;", "&")
                .replace("&quot;", "\"");
            (name, value)
        })
        .collect();
    (action, fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Login and consent for `auth`; returns the answer to the final hit of the authorize endpoint.
async fn through_login_and_consent(app: &TestApp, auth: &str) -> reqwest::Response {
    let res = browse(app, auth).await;
    let login = challenge_of(&res, "login_challenge").await;
    let to = accept_login(app, &login, json!({"subject": "alice"})).await;
    let consent = consent_challenge(app, &to).await;
    let req =
        json(flow_request(app, "consent", &format!("consent_challenge={consent}")).await).await;
    let to = accept_consent(
        app,
        &consent,
        json!({"grant_scope": req["requested_scope"].clone()}),
    )
    .await;
    browse(app, &to).await
}

#[tokio::test]
async fn form_post_delivers_codes_and_errors_in_an_auto_submitting_page() {
    let (app, c) = app_and_client().await;
    let d = app
        .get_json(app.public("/.well-known/openid-configuration"))
        .await;
    assert_eq!(
        d["response_modes_supported"],
        json!(["query", "fragment", "form_post"])
    );

    let res = through_login_and_consent(
        &app,
        &auth_url(&app, &c.id, &[("response_mode", "form_post")]),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("location").is_none());
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    assert!(page.contains("document.forms[0].submit()"), "{page}");
    let (action, fields) = form_fields(&page);
    assert_eq!(action, REDIRECT);
    assert_eq!(field(&fields, "state"), Some("state-123456"));
    assert_eq!(field(&fields, "scope"), Some("openid offline"));
    let code = field(&fields, "code").unwrap().to_string();
    assert_eq!(exchange(&app, &c, &code).await.status(), 200);

    // Errors for the client come the same way.
    let res = authorize(
        &app,
        &c.id,
        &[("response_mode", "form_post"), ("scope", "openid admin")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let (action, fields) = form_fields(&res.text().await.unwrap());
    assert_eq!(action, REDIRECT);
    assert_eq!(field(&fields, "error"), Some("invalid_scope"));
    assert_eq!(field(&fields, "state"), Some("state-123456"));

    // Values are escaped: a state cannot break out of its attribute.
    let res = authorize(
        &app,
        &c.id,
        &[
            ("response_mode", "form_post"),
            ("scope", "openid admin"),
            ("state", "\"><script>alert(1)</script>"),
        ],
    )
    .await;
    let page = res.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(page.contains("&quot;&gt;&lt;script&gt;"), "{page}");
    app.stop().await;
}

/// An ES256 key pair: the encoding key and the public JWK (kid `ro-key`).
fn es256_key() -> (jsonwebtoken::EncodingKey, Value) {
    let sk = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let der = sk.to_pkcs8_der().unwrap();
    let mut jwk: Value = serde_json::from_str(&sk.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!("ro-key");
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    (jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes()), jwk)
}

fn signed(key: &jsonwebtoken::EncodingKey, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("ro-key".into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims.to_string())
    )
}

/// The authorize URL with only client_id, response_type, scope and the given extras: the rest
/// comes from the request object.
fn bare_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&app.public("/oauth2/auth")).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid");
    for (k, v) in extra {
        u.query_pairs_mut().append_pair(k, v);
    }
    u.to_string()
}

fn object_claims(client_id: &str, exp_offset: i64) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "iss": client_id,
        "aud": "http://127.0.0.1:4444/",
        "exp": now + exp_offset,
        "iat": now,
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "from-the-object-123",
        "nonce": "nonce-from-object",
        "scope": "openid offline",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    })
}

async fn error_page_says(app: &TestApp, url: &str, error: &str, hint: &str) {
    let res = browse(app, url).await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(without_query(&loc), ERROR_URL, "{loc}");
    assert_eq!(param(&loc, "error").as_deref(), Some(error), "{loc}");
    let got = param(&loc, "error_hint").or_else(|| param(&loc, "error_description"));
    assert!(got.as_deref().unwrap_or("").contains(hint), "{loc}");
}

/// Serves `body` at `/ro.jwt` on a loopback port; returns the URL.
async fn serve_object(body: String) -> String {
    let app = axum::Router::new().route("/ro.jwt", axum::routing::get(move || async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ro.jwt", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn request_objects_by_value_and_by_reference() {
    let app = spawn().await;
    let d = app
        .get_json(app.public("/.well-known/openid-configuration"))
        .await;
    assert_eq!(d["request_parameter_supported"], true);
    assert_eq!(d["request_uri_parameter_supported"], true);

    let (key, public) = es256_key();
    let (other_key, _) = es256_key();
    let c = client(
        &app,
        json!({
            "jwks": {"keys": [public]},
            "request_object_signing_alg": "ES256",
        }),
    )
    .await;
    let claims = object_claims(&c.id, 300);

    // By value: the object's claims replace the query's, and its scope is merged in.
    let object = signed(&key, &claims);
    let url = bare_url(
        &app,
        &c.id,
        &[("request", &object), ("state", "query-state-999")],
    );
    let res = browse(&app, &url).await;
    let login = challenge_of(&res, "login_challenge").await;
    let req = json(flow_request(&app, "login", &format!("login_challenge={login}")).await).await;
    assert_eq!(req["requested_scope"], json!(["openid", "offline"]));
    let res = through_login_and_consent(&app, &url).await;
    let loc = location(&res);
    assert_eq!(without_query(&loc), REDIRECT);
    assert_eq!(param(&loc, "state").as_deref(), Some("from-the-object-123"));
    let t = json(exchange(&app, &c, &param(&loc, "code").unwrap()).await).await;
    assert_eq!(claims_of(&t)["nonce"], "nonce-from-object");

    // The client's algorithm is enforced, signatures are checked, and so is expiry.
    let refused = [
        (unsigned(&claims), "enforces signing algorithm 'ES256'"),
        (signed(&other_key, &claims), "signature"),
        (signed(&key, &object_claims(&c.id, -10)), "expiry"),
    ];
    for (bad, hint) in refused {
        let url = bare_url(&app, &c.id, &[("request", &bad)]);
        error_page_says(&app, &url, "invalid_request_object", hint).await;
    }
    by_reference(&app, &c, &object).await;
    app.stop().await;
}

/// By reference: only a registered request_uri is fetched, and never with `request` too.
async fn by_reference(app: &TestApp, c: &TestClient, object: &str) {
    let served = serve_object(object.to_string()).await;
    let url = bare_url(app, &c.id, &[("request_uri", &served)]);
    error_page_says(app, &url, "invalid_request_uri", "is not whitelisted").await;
    let res = app
        .admin_put(
            &format!("/clients/{}", c.id),
            &json!({
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "scope": "openid offline",
                "jwks": {"keys": [registered_key(app, &c.id).await]},
                "request_object_signing_alg": "ES256",
                "request_uris": [served.clone()],
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = through_login_and_consent(app, &url).await;
    let loc = location(&res);
    assert_eq!(param(&loc, "state").as_deref(), Some("from-the-object-123"));
    let both = bare_url(app, &c.id, &[("request_uri", &served), ("request", object)]);
    error_page_says(app, &both, "invalid_request", "at most one").await;
}

/// The client's registered public key, read back (the update must keep it).
async fn registered_key(app: &TestApp, id: &str) -> Value {
    let c = app.get_json(app.admin(&format!("/clients/{id}"))).await;
    c["jwks"]["keys"][0].clone()
}

fn claims_of(t: &Value) -> Value {
    let id_token = t["id_token"].as_str().unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn unsigned_objects_without_openid_or_keys() {
    let app = spawn().await;
    let (_, public) = es256_key();
    let c = client(&app, json!({"jwks": {"keys": [public]}})).await;
    let claims = object_claims(&c.id, 300);

    // No algorithm required: `none` is accepted.
    let res = through_login_and_consent(
        &app,
        &bare_url(&app, &c.id, &[("request", &unsigned(&claims))]),
    )
    .await;
    assert_eq!(
        param(&location(&res), "state").as_deref(),
        Some("from-the-object-123")
    );
    // Without openid in the query's scope the object is ignored (fosite): the query's own
    // parameters are used, and here they lack a redirect-worthy state.
    let mut u = url::Url::parse(&auth_url(&app, &c.id, &[("scope", "offline")])).unwrap();
    u.query_pairs_mut()
        .append_pair("request", &unsigned(&claims));
    let res = browse(&app, u.as_str()).await;
    assert_eq!(res.status(), 302);
    let login = challenge_of(&res, "login_challenge").await;
    assert!(!login.is_empty());

    // A NUL byte in a claim is refused before anything is stored (PostgreSQL refuses NUL).
    let mut nul = claims.clone();
    nul["state"] = json!("state\u{0}with-nul");
    let url = bare_url(&app, &c.id, &[("request", &unsigned(&nul))]);
    error_page_says(&app, &url, "invalid_request_object", "NUL byte").await;

    // A client without keys cannot use request objects.
    let plain = client(&app, json!({})).await;
    let url = bare_url(&app, &plain.id, &[("request", &unsigned(&claims))]);
    let hint = "does not have any JSON Web Keys registered";
    error_page_says(&app, &url, "invalid_request", hint).await;
    app.stop().await;
}
