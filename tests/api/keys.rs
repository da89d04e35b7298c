//! `/keys` and `/.well-known/jwks.json`: generation, CRUD, encryption at rest, rotation.
#![allow(clippy::unwrap_used)]
use crate::harness::{assert_error_is, json, TestApp, SECRET};
use portcullis::config::Secret;
use serde_json::json;

#[tokio::test]
async fn generate_every_algorithm() {
    let app = TestApp::spawn().await;
    for (alg, kty, count) in [
        ("ES256", "EC", 2),
        ("ES512", "EC", 2),
        ("EdDSA", "OKP", 2),
        ("HS256", "oct", 1),
        ("HS512", "oct", 1),
    ] {
        let res = app
            .admin_post(
                &format!("/keys/set-{alg}"),
                &json!({"alg": alg, "use": "sig", "kid": "k1"}),
            )
            .await;
        assert_eq!(res.status(), 201, "{alg}");
        let body = json(res).await;
        let keys = body["keys"].as_array().unwrap();
        assert_eq!(keys.len(), count, "{alg}");
        assert_eq!(keys[0]["kty"], kty);
        assert_eq!(keys[0]["alg"], alg);
        assert_eq!(keys[0]["use"], "sig");
        if count == 2 {
            assert_eq!(keys[0]["kid"], "private:k1");
            assert_eq!(keys[1]["kid"], "public:k1");
            assert!(keys[0].get("d").is_some());
            assert!(keys[1].get("d").is_none());
        } else {
            assert_eq!(keys[0]["kid"], "k1");
        }
    }
    let res = app.generate_key("x", "XX1", "a").await;
    assert_eq!(res.status(), 400);
    assert_eq!(json(res).await["error"], "invalid_request");
    let res = app.generate_key("set-HS256", "HS256", "k1").await;
    assert_eq!(res.status(), 409);
    app.stop().await;
}

#[tokio::test]
async fn key_set_crud() {
    let app = TestApp::spawn().await;
    assert_error_is(app.get(app.admin("/keys/missing")).await, 404, "Not Found").await;
    app.generate_key("s", "ES256", "a").await;
    let set = app.get_json(app.admin("/keys/s")).await;
    assert_eq!(set["keys"].as_array().unwrap().len(), 2);
    let one = app.get_json(app.admin("/keys/s/public%3Aa")).await;
    assert_eq!(one["keys"][0]["kid"], "public:a");
    let res = app.get(app.admin("/keys/s/nope")).await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        json(res).await,
        json!({"error": "Unable to locate the resource", "error_description": ""})
    );

    // PUT key stores the body under its own kid.
    let mut key = one["keys"][0].clone();
    key["use"] = json!("enc");
    let res = app.admin_put("/keys/s/public%3Aa", &key).await;
    assert_eq!(res.status(), 200);
    let again = app.get_json(app.admin("/keys/s/public%3Aa")).await;
    assert_eq!(again["keys"][0]["use"], "enc");
    let res = app.admin_put("/keys/s/x", &json!({"kid": "x"})).await;
    assert_eq!(res.status(), 400);

    // PUT set replaces all keys.
    let res = app.admin_put("/keys/s", &json!({"keys": [key]})).await;
    assert_eq!(res.status(), 200);
    let set = app.get_json(app.admin("/keys/s")).await;
    assert_eq!(set["keys"].as_array().unwrap().len(), 1);

    assert_eq!(
        app.delete(app.admin("/keys/s/public%3Aa")).await.status(),
        204
    );
    assert_eq!(app.get(app.admin("/keys/s")).await.status(), 404);
    app.generate_key("t", "HS256", "h").await;
    assert_eq!(app.delete(app.admin("/keys/t")).await.status(), 204);
    assert_eq!(app.get(app.admin("/keys/t")).await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn public_jwks_serves_only_public_keys_and_tracks_changes() {
    let app = TestApp::spawn().await;
    let res = app.get(app.public("/.well-known/jwks.json")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc = json(res).await;
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], "public:shared");
    assert!(keys[0].get("d").is_none());
    app.generate_key("hydra.openid.id-token", "ES256", "rot")
        .await;
    let kids = app.jwks_kids().await;
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&"public:rot".to_string()));
    app.stop().await;
}

#[tokio::test]
async fn keys_are_encrypted_at_rest_and_survive_secret_rotation() {
    let app = TestApp::spawn().await;
    let created = json(app.generate_key("enc", "HS256", "h").await).await;
    let k = created["keys"][0]["k"].as_str().unwrap().to_string();
    let store = portcullis::store::Store::connect(&app.dsn).await.unwrap();
    let rows = store.raw_keydata("enc").await.unwrap();
    assert_eq!(rows.len(), 1, "one sealed row for the HS256 key");
    for raw in &rows {
        assert!(!raw.contains(&k), "key material stored in plaintext");
        assert!(!raw.contains("\"kty\""));
    }
    store.close().await;
    let app = app
        .restart_with(|c| {
            c.secrets.system = vec![
                Secret("a-brand-new-secret-value".into()),
                Secret(SECRET.into()),
            ]
        })
        .await;
    let got = app.get_json(app.admin("/keys/enc/h")).await;
    assert_eq!(got["keys"][0]["k"], k.as_str());
    app.stop().await;
}
