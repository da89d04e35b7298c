//! Bad input at the edge (issue 7, point 5 and "some errors are not JSON"): NUL bytes, invalid
//! UTF-8, bad percent-encoding and over-long values are refused with Hydra's JSON error before
//! they reach the store, on whichever backend the suite runs; malformed JWKs and non-object
//! client metadata are refused with 400.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use crate::harness::{json, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends a request and returns status and JSON body, failing on a non-JSON body.
async fn call(app: &TestApp, method: &str, url: String, body: Option<Body>) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.http.request(m, url.clone());
    match body {
        Some(Body::Json(v)) => req = req.json(&v),
        Some(Body::Form(f)) => {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(f)
        }
        None => {}
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ct.starts_with("application/json"), "{method} {url}: {ct}");
    (status, json(res).await)
}

/// POST the already encoded `form` to `path` on the public API with Basic credentials.
async fn post_raw_form(
    app: &TestApp,
    path: &str,
    (id, secret): (&str, &str),
    form: &str,
) -> reqwest::Response {
    let req = app.http.post(app.public(path)).basic_auth(id, Some(secret));
    let req = req.header("content-type", "application/x-www-form-urlencoded");
    req.body(form.to_string()).send().await.unwrap()
}

enum Body {
    Json(Value),
    Form(String),
}

fn assert_refused(what: &str, status: u16, body: &Value) {
    assert!(
        status == 400 || status == 404,
        "{what}: status {status} {body}"
    );
    assert!(body["error"].is_string(), "{what}: {body}");
    assert!(body.get("error_description").is_some(), "{what}: {body}");
}

/// Admin requests carrying a NUL byte in the path, the query or a JSON string.
fn admin_requests_with_nul() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/clients/a%00b", None),
        ("DELETE", "/clients/a%00b", None),
        ("PUT", "/clients/a%00b", Some(json!({"client_id": "a"}))),
        ("GET", "/keys/a%00b", None),
        ("DELETE", "/keys/a%00b", None),
        (
            "POST",
            "/keys/a%00b",
            Some(json!({"alg": "HS256", "kid": "k", "use": "sig"})),
        ),
        ("GET", "/keys/set/k%00", None),
        ("DELETE", "/keys/set/k%00", None),
        (
            "GET",
            "/oauth2/auth/requests/login?login_challenge=%00",
            None,
        ),
        (
            "PUT",
            "/oauth2/auth/requests/login/accept?login_challenge=%00",
            Some(json!({"subject": "s"})),
        ),
        (
            "PUT",
            "/oauth2/auth/requests/login/reject?login_challenge=%00",
            Some(json!({})),
        ),
        (
            "GET",
            "/oauth2/auth/requests/consent?consent_challenge=%00",
            None,
        ),
        (
            "PUT",
            "/oauth2/auth/requests/consent/accept?consent_challenge=%00",
            Some(json!({})),
        ),
        (
            "PUT",
            "/oauth2/auth/requests/consent/reject?consent_challenge=%00",
            Some(json!({})),
        ),
        (
            "GET",
            "/oauth2/auth/requests/logout?logout_challenge=%00",
            None,
        ),
        (
            "PUT",
            "/oauth2/auth/requests/logout/accept?logout_challenge=%00",
            None,
        ),
        (
            "PUT",
            "/oauth2/auth/requests/logout/reject?logout_challenge=%00",
            Some(json!({})),
        ),
        ("DELETE", "/oauth2/auth/sessions/login?subject=%00", None),
        ("GET", "/oauth2/auth/sessions/consent?subject=%00", None),
        ("DELETE", "/oauth2/auth/sessions/consent?subject=%00", None),
        (
            "DELETE",
            "/oauth2/auth/sessions/consent?subject=s&client=%00",
            None,
        ),
        ("DELETE", "/oauth2/tokens?client_id=%00", None),
        ("GET", "/clients?limit=%00", None),
        // NUL inside JSON strings.
        ("POST", "/clients", Some(json!({"client_id": "a\u{0}b"}))),
        ("POST", "/clients", Some(json!({"client_name": "x\u{0}"}))),
        (
            "PUT",
            "/clients/edge",
            Some(json!({"client_id": "edge", "metadata": {"k": "\u{0}"}})),
        ),
        (
            "PUT",
            "/oauth2/auth/requests/login/accept?login_challenge=abc",
            Some(json!({"subject": "a\u{0}"})),
        ),
        (
            "PUT",
            "/keys/set/k",
            Some(json!({"kty": "oct", "kid": "k\u{0}", "k": "AAAA"})),
        ),
    ]
}

#[tokio::test]
async fn nul_bytes_never_reach_the_store() {
    let app = TestApp::spawn().await;
    let created = app.admin_post("/clients", &json!({"client_id": "edge", "client_secret": "secret-secret", "grant_types": ["client_credentials"]})).await;
    assert_eq!(created.status(), 201);
    for (method, path, body) in admin_requests_with_nul() {
        let (status, v) = call(&app, method, app.admin(path), body.map(Body::Json)).await;
        assert_refused(&format!("{method} {path}"), status, &v);
    }
    let forms = [
        ("/oauth2/introspect", "token=%00"),
        ("/oauth2/introspect", "token=abc&scope=%00"),
    ];
    for (path, form) in forms {
        let (status, v) = call(&app, "POST", app.admin(path), Some(Body::Form(form.into()))).await;
        assert_refused(&format!("POST {path} {form}"), status, &v);
    }
    // Public: revocation and token with client credentials, authorization request.
    for (path, form) in [
        ("/oauth2/revoke", "token=%00"),
        ("/oauth2/revoke", "token=abc&token_type_hint=%00"),
        ("/oauth2/token", "grant_type=client_credentials&scope=%00"),
        ("/oauth2/token", "grant_type=%00"),
    ] {
        let res = post_raw_form(&app, path, ("edge", "secret-secret"), form).await;
        let status = res.status().as_u16();
        let v = json(res).await;
        assert_refused(&format!("POST {path} {form}"), status, &v);
    }
    // Basic credentials whose id decodes to a NUL byte are no credentials, never a lookup.
    let res = app
        .http
        .post(app.public("/oauth2/revoke"))
        .basic_auth("a%00b", Some("secret"))
        .form(&[("token", "abc")])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    assert!(json(res).await["error"].is_string());
    let (status, v) = call(
        &app,
        "GET",
        app.public("/oauth2/auth?client_id=%00&response_type=code&state=abcdefghijkl"),
        None,
    )
    .await;
    assert_refused("GET /oauth2/auth", status, &v);
    // The valid client is still intact.
    assert_eq!(app.get(app.admin("/clients/edge")).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn bad_percent_encoding_and_invalid_utf8_are_json_400() {
    let app = TestApp::spawn().await;
    for path in [
        "/clients/%zz",
        "/clients/a%2",
        "/clients/%ff%fe",
        "/keys/%c3%28",
        "/keys/set/%e2%82",
        "/oauth2/auth/requests/login?login_challenge=%zz",
        "/oauth2/auth/requests/login?login_challenge=%ff",
        "/oauth2/auth/sessions/consent?subject=%c3",
        "/clients?limit=1&offset=%",
    ] {
        let (status, v) = call(&app, "GET", app.admin(path), None).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["error"], "invalid_request", "{path}: {v}");
    }
    // Form bodies: invalid UTF-8 and escapes are refused, not replaced by U+FFFD.
    for form in ["token=%ff", "token=%zz", "token=%"] {
        let res = post_raw_form(&app, "/oauth2/revoke", ("x", "y"), form).await;
        assert_eq!(res.status(), 400, "{form}");
        assert_eq!(json(res).await["error"], "invalid_request", "{form}");
    }
    // Invalid UTF-8 inside a JSON body.
    let res = app
        .http
        .post(app.admin("/clients"))
        .header("content-type", "application/json")
        .body(b"{\"client_name\": \"\xff\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_request");
    app.stop().await;
}

/// Writes raw bytes on a fresh connection and returns the whole answer.
async fn raw(addr: &str, request: &[u8]) -> String {
    let host = addr.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    // The server may answer (and close) before reading everything: ignore write errors.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn body_of(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").unwrap_or(("", ""));
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {answer}"))
}

#[tokio::test]
async fn over_long_values_and_heads_get_json_errors() {
    let app = TestApp::spawn().await;
    // An id that cannot exist.
    let (status, v) = call(
        &app,
        "GET",
        app.admin(&format!("/clients/{}", "a".repeat(2000))),
        None,
    )
    .await;
    assert_eq!(status, 404, "{v}");
    // Over-long ids in JSON bodies (indexed columns).
    let (status, v) = call(
        &app,
        "POST",
        app.admin("/clients"),
        Some(Body::Json(json!({"client_id": "a".repeat(5000)}))),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = call(
        &app,
        "GET",
        app.admin(&format!(
            "/oauth2/auth/requests/login?login_challenge={}",
            "a".repeat(20_000)
        )),
        None,
    )
    .await;
    assert_eq!(status, 400, "{v}");
    // A URI over our limit, and one over hyper's own limit: both 414 in JSON.
    for len in [40_000, 70_000] {
        let req = format!(
            "GET /clients/{} HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(len)
        );
        let answer = raw_status(&app, &req, 414, len).await;
        assert_eq!(body_of(&answer)["error"], "invalid_request");
    }
    // An over-long header line: ours (431 JSON), and one over hyper's buffer (also JSON).
    for len in [40_000, 500_000] {
        let req = format!(
            "GET /health/alive HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
            "a".repeat(len)
        );
        let answer = raw_status(&app, &req, 431, len).await;
        assert!(
            answer.contains("content-type: application/json"),
            "{answer}"
        );
        assert_eq!(body_of(&answer)["error"], "invalid_request");
    }
    // A head hyper cannot parse at all.
    let answer = raw(&app.public, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(body_of(&answer)["error"], "invalid_request");
    app.stop().await;
}

/// PUT `body` to `path` on the admin API: (status, answer).
async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    call(app, "PUT", app.admin(path), Some(Body::Json(body))).await
}

/// Sends `req` to the admin listener as raw bytes; asserts the status line says `status`
/// (an over-long request of `len` bytes) and returns the whole answer.
async fn raw_status(app: &TestApp, req: &str, status: u16, len: usize) -> String {
    let answer = raw(&app.admin, req.as_bytes()).await;
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status}")),
        "{len}: {}",
        &answer[..answer.len().min(200)]
    );
    answer
}

#[tokio::test]
async fn put_keys_refuses_malformed_jwks() {
    let app = TestApp::spawn().await;
    let res = app.generate_key("good", "ES256", "a").await;
    assert_eq!(res.status(), 201);
    let set = app.get_json(app.admin("/keys/good")).await;
    let public = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "public:a")
        .unwrap()
        .clone();
    let bad = [
        ("kid", json!({"a": 1})),
        ("kty", json!(5)),
        ("x", json!({"nested": true})),
        ("y", json!(12)),
        ("use", json!(["sig"])),
        ("alg", json!("RS256")),
        ("crv", json!("P-384")),
        ("x", json!("not base64!")),
        ("key_ops", json!("sign")),
        ("x5c", json!([1, 2])),
    ];
    for (member, value) in bad {
        let mut k = public.clone();
        k[member] = value.clone();
        let (status, v) = put(&app, "/keys/good/public%3Aa", k.clone()).await;
        assert_eq!(status, 400, "{member}={value}: {v}");
        let (status, v) = put(&app, "/keys/other", json!({"keys": [k]})).await;
        assert_eq!(status, 400, "set {member}={value}: {v}");
    }
    // The SDKs' JSONWebKey model requires `alg` and `use`.
    let without = |m: &str| {
        let mut k = public.clone();
        k.as_object_mut().unwrap().remove(m);
        k
    };
    for k in [
        without("alg"),
        without("use"),
        json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB", "alg": "RS256"}),
        json!({"kty": "oct", "kid": "o"}),
        json!({"kty": "OKP", "kid": "e", "crv": "Ed25519", "x": "AAAA"}),
        json!({"kty": "XYZ", "kid": "z"}),
        json!({"kid": "none"}),
    ] {
        let (status, v) = put(&app, "/keys/other/x", k.clone()).await;
        assert_eq!(status, 400, "{k}: {v}");
    }
    // Nothing malformed was stored; the good key is unchanged and still parses.
    assert_eq!(app.get(app.admin("/keys/other")).await.status(), 404);
    let again = app.get_json(app.admin("/keys/good/public%3Aa")).await;
    assert_eq!(again["keys"][0], public);
    // A well-formed key is still accepted.
    let mut k = public.clone();
    k["use"] = json!("enc");
    let res = app.admin_put("/keys/good/public%3Aa", &k).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn client_metadata_must_be_an_object() {
    let app = TestApp::spawn().await;
    for metadata in [json!("text"), json!(5), json!([1, 2]), json!(true)] {
        let (status, v) = call(
            &app,
            "POST",
            app.admin("/clients"),
            Some(Body::Json(json!({"metadata": metadata}))),
        )
        .await;
        assert_eq!(status, 400, "{metadata}: {v}");
        assert_eq!(v["error"], "invalid_client_metadata");
    }
    let res = app
        .admin_post(
            "/clients",
            &json!({"client_id": "m", "metadata": {"a": [1]}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .admin_put("/clients/m", &json!({"client_id": "m", "metadata": "x"}))
        .await;
    assert_eq!(res.status(), 400);
    let c = app.get_json(app.admin("/clients/m")).await;
    assert_eq!(c["metadata"], json!({"a": [1]}));
    app.stop().await;
}
