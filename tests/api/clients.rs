//! `/clients`: CRUD, validation, pagination and error shapes.
#![allow(clippy::unwrap_used)]
use crate::harness::{json, TestApp};
use serde_json::json;

#[tokio::test]
async fn client_lifecycle() {
    let app = TestApp::spawn().await;
    let res = app.admin_post("/clients", &json!({"client_id": "c1", "redirect_uris": ["https://rp.example/cb"], "grant_types": ["authorization_code"]})).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["location"], "/clients/c1");
    let created = json(res).await;
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 26);
    assert_eq!(created["client_id"], "c1");
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(created["scope"], "offline_access offline openid");
    assert_eq!(created["audience"], json!([]));
    assert_eq!(created["contacts"], json!([]));
    assert_eq!(created["response_types"], json!([]));
    assert_eq!(created["userinfo_signed_response_alg"], "none");
    assert_eq!(created["subject_type"], "public");
    assert_eq!(created["client_secret_expires_at"], 0);
    assert_eq!(created["metadata"], json!({}));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let got = app.get_json(app.admin("/clients/c1")).await;
    assert!(
        got.get("client_secret").is_none(),
        "secret is returned only once"
    );
    assert_eq!(got["redirect_uris"], json!(["https://rp.example/cb"]));
    assert_eq!(got["created_at"], created["created_at"]);

    // Update without secret keeps it and does not echo one.
    let res = app
        .admin_put(
            "/clients/c1",
            &json!({"client_name": "renamed", "redirect_uris": ["https://rp.example/cb2"]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let updated = json(res).await;
    assert_eq!(updated["client_name"], "renamed");
    assert_eq!(updated["client_id"], "c1");
    assert!(updated.get("client_secret").is_none());
    let res = app
        .admin_put("/clients/c1", &json!({"client_secret": "new-secret"}))
        .await;
    assert_eq!(json(res).await["client_secret"], "new-secret");

    assert_eq!(app.delete(app.admin("/clients/c1")).await.status(), 204);
    let res = app.get(app.admin("/clients/c1")).await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        json(res).await,
        json!({"error": "Not Found", "error_description": "Unable to locate the resource"})
    );
    assert_eq!(app.delete(app.admin("/clients/c1")).await.status(), 404);
    assert_eq!(app.admin_put("/clients/c1", &json!({})).await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn generated_ids_duplicates_and_public_clients() {
    let app = TestApp::spawn().await;
    let a = json(app.admin_post("/clients", &json!({})).await).await;
    assert_eq!(
        uuid::Uuid::parse_str(a["client_id"].as_str().unwrap())
            .unwrap()
            .get_version_num(),
        4
    );
    let res = app
        .admin_post("/clients", &json!({"client_id": a["client_id"]}))
        .await;
    assert_eq!(res.status(), 409);
    let public = json(
        app.admin_post("/clients", &json!({"token_endpoint_auth_method": "none"}))
            .await,
    )
    .await;
    assert!(public.get("client_secret").is_none());
    app.stop().await;
}

#[tokio::test]
async fn validation_errors() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"client_secret": "short"}), "invalid_client_metadata"),
        (
            json!({"token_endpoint_auth_method": "magic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["not a url"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"userinfo_signed_response_alg": "HS256"}),
            "invalid_client_metadata",
        ),
        (
            json!({"subject_type": "pairwise"}),
            "invalid_client_metadata",
        ),
        (
            json!({"allowed_cors_origins": ["https://a.example/path"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "post_logout_redirect_uris": ["https://b.example/"]}),
            "invalid_client_metadata",
        ),
    ];
    for (body, code) in cases {
        let res = app.admin_post("/clients", &body).await;
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(json(res).await["error"], code, "{body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_hydra_shaped_errors() {
    let app = TestApp::spawn().await;
    let post = |body: Vec<u8>| {
        app.http
            .post(app.admin("/clients"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        b"{not json".to_vec(),
        b"{\"client_name\": 5}".to_vec(),
        b"{\"client_name\": \"\xff\xfe\"}".to_vec(),
    ] {
        let res = post(body).await.unwrap();
        assert_eq!(res.status(), 400);
        let v = json(res).await;
        assert_eq!(v["error"], "invalid_request");
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Unable to decode the request body"));
    }
    let big = format!("{{\"client_name\": \"{}\"}}", "a".repeat(100 * 1024));
    let res = post(big.into_bytes()).await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(json(res).await["error"], "request_entity_too_large");
    // Without a JSON Content-Type, a request with a browser's marks is refused
    // (tests/api/json_bodies.rs covers both sides).
    let res = app
        .http
        .post(app.admin("/clients"))
        .header("origin", "https://evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app.http.patch(app.admin("/clients")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(json(res).await["error"], "Method Not Allowed");
    let res = app.get(app.admin("/nope")).await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        json(res).await,
        json!({"error": "Not Found", "error_description": "The requested resource could not be found"})
    );
    app.stop().await;
}

#[tokio::test]
async fn pagination() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        let res = app
            .admin_post("/clients", &json!({"client_id": format!("p{i}")}))
            .await;
        assert_eq!(res.status(), 201);
    }
    let res = app.get(app.admin("/clients?limit=2&offset=2")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "5");
    assert_eq!(
        res.headers()["link"],
        "</clients?limit=2&offset=0>; rel=\"first\",</clients?limit=2&offset=4>; rel=\"next\",</clients?limit=2&offset=0>; rel=\"prev\",</clients?limit=2&offset=4>; rel=\"last\""
    );
    let page = json(res).await;
    let ids: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p2", "p3"]);
    assert!(page[0].get("client_secret").is_none());
    let all = app.get_json(app.admin("/clients")).await;
    assert_eq!(all.as_array().unwrap().len(), 5);
    for bad in ["limit=0", "limit=-1", "limit=abc", "offset=-3"] {
        let res = app.get(app.admin(&format!("/clients?{bad}"))).await;
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(json(res).await["error"], "invalid_request");
    }
    let empty = app.get(app.admin("/clients?offset=50")).await;
    assert_eq!(json(empty).await, json!([]));
    app.stop().await;
}
