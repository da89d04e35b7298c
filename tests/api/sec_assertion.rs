//! Security: `private_key_jwt` client assertions cannot be replayed, and their time claims are
//! bounded (expired, far-future `exp`, `exp` beyond i64, future `nbf`/`iat` are refused).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::TestApp;
use portcullis::service::Clock;
use serde_json::{json, Value};

const TOKEN_URL: &str = "http://127.0.0.1:4444/oauth2/token";

struct Assertions {
    signer: portcullis::crypto::jws::Signer,
    client_id: String,
}

impl Assertions {
    async fn new(app: &TestApp) -> Assertions {
        let keys = super::harness::shared_keys().await;
        let find = |prefix: &str| {
            keys.iter()
                .find(|k| k["kid"].as_str().unwrap().starts_with(prefix))
                .unwrap()
                .clone()
        };
        let (private, public) = (find("private:"), find("public:"));
        let c = client(
            app,
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [public]}}),
        )
        .await;
        Assertions {
            signer: portcullis::crypto::jws::Signer::from_jwk(&private).unwrap(),
            client_id: c.id,
        }
    }

    /// A signed assertion with the right iss/sub/aud, a `jti`, and the given extra claims.
    fn sign(&self, jti: &str, extra: Value) -> String {
        let mut claims =
            json!({"iss": self.client_id, "sub": self.client_id, "aud": TOKEN_URL, "jti": jti});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        self.signer.sign(&claims).unwrap()
    }
}

async fn send(app: &TestApp, assertion: &str) -> reqwest::Response {
    app.http
        .post(app.public("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

/// An app, a `private_key_jwt` client's assertions, and the app's current time.
async fn with_assertions() -> (TestApp, Assertions, i64) {
    let app = spawn().await;
    let a = Assertions::new(&app).await;
    let t = now(&app);
    (app, a, t)
}

fn now(app: &TestApp) -> i64 {
    app.clock.now().unix_timestamp()
}

/// Asserts a 401 invalid_client whose description names the refused claim.
async fn refused(app: &TestApp, assertion: &str, reason: &str) {
    let body = assert_oauth_error(send(app, assertion).await, 401, "invalid_client").await;
    let text = body["error_description"].as_str().unwrap();
    assert!(text.contains(reason), "{text}");
}

#[tokio::test]
async fn a_spent_assertion_is_never_accepted_again_until_it_expires() {
    let app = spawn().await;
    let a = Assertions::new(&app).await;
    let exp = now(&app) + 3;
    let assertion = a.sign("short-lived", json!({"exp": exp, "iat": exp - 3}));
    assert_eq!(send(&app, &assertion).await.status(), 200);
    assert_oauth_error(send(&app, &assertion).await, 400, "jti_known").await;
    // Past exp but inside the tolerated skew: the assertion still verifies, so its jti must
    // still be on record (it used to be purged at exp and the replay went through).
    app.clock.advance(4);
    assert!(now(&app) > exp);
    assert_oauth_error(send(&app, &assertion).await, 400, "jti_known").await;
    app.clock.advance(2);
    assert_oauth_error(send(&app, &assertion).await, 400, "jti_known").await;
    // Beyond exp + skew it is refused as expired, however often it is sent.
    app.clock.advance(4);
    for _ in 0..3 {
        refused(&app, &assertion, "expired").await;
    }
    // Much later still (the jti record purged by then), it stays refused.
    app.clock.advance(3600);
    let other = a.sign("purge-trigger", json!({"exp": now(&app) + 60}));
    assert_eq!(send(&app, &other).await.status(), 200);
    refused(&app, &assertion, "expired").await;
    app.stop().await;
}

#[tokio::test]
async fn expired_and_unbounded_expiry_times_are_refused() {
    let (app, a, t) = with_assertions().await;
    // exp 30 s ago: inside jsonwebtoken's old 60 s default leeway, refused now, every time.
    let stale = a.sign("stale", json!({"exp": t - 30}));
    for _ in 0..3 {
        refused(&app, &stale, "expired").await;
    }
    // exp = u64::MAX used to become 0 and be purged at once: every replay was accepted.
    let huge = a.sign("huge", json!({"exp": u64::MAX}));
    assert!(huge.len() > 10);
    let payload = {
        use base64::Engine;
        let part = huge.split('.').nth(1).unwrap();
        String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert!(payload.contains("18446744073709551615"), "{payload}");
    for _ in 0..3 {
        refused(&app, &huge, "'exp'").await;
    }
    // i64::MAX fits but lies absurdly far ahead; two hours is beyond the one-hour bound.
    refused(&app, &a.sign("i64max", json!({"exp": i64::MAX})), "'exp'").await;
    refused(
        &app,
        &a.sign("two-hours", json!({"exp": t + 7200})),
        "'exp'",
    )
    .await;
    // Just inside the bound is fine.
    let ok = a.sign("fifty-nine-minutes", json!({"exp": t + 3540}));
    assert_eq!(send(&app, &ok).await.status(), 200);
    assert_oauth_error(send(&app, &ok).await, 400, "jti_known").await;
    app.stop().await;
}

#[tokio::test]
async fn future_nbf_and_iat_are_refused() {
    let (app, a, t) = with_assertions().await;
    refused(
        &app,
        &a.sign("nbf", json!({"exp": t + 300, "nbf": t + 60})),
        "'nbf'",
    )
    .await;
    refused(
        &app,
        &a.sign("iat", json!({"exp": t + 300, "iat": t + 60})),
        "'iat'",
    )
    .await;
    refused(
        &app,
        &a.sign("iat-huge", json!({"exp": t + 300, "iat": u64::MAX})),
        "'iat'",
    )
    .await;
    // A client clock a second or two ahead is tolerated.
    let skewed = a.sign(
        "skewed",
        json!({"exp": t + 300, "iat": t + 2, "nbf": t + 2}),
    );
    assert_eq!(send(&app, &skewed).await.status(), 200);
    // Once the clock reaches nbf, a fresh assertion with that nbf is accepted.
    let later = a.sign(
        "later",
        json!({"exp": t + 300, "nbf": t + 60, "iat": t + 60}),
    );
    refused(&app, &later, "'nbf'").await;
    app.clock.advance(60);
    assert_eq!(send(&app, &later).await.status(), 200);
    app.stop().await;
}
