//! Security: client URIs that end up in a page, a redirect or an outgoing request must be
//! absolute http(s) URLs; a `javascript:` front-channel URI never reaches the logout page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::flow::*;
use super::harness::{json, TestApp};
use serde_json::{json, Value};

const LOGOUT_URL: &str = "http://127.0.0.1:5555/logout";
const LOGGED_OUT: &str = "http://127.0.0.1:5555/logged-out";

fn metadata_error(field: &str, value: &str) -> Value {
    json!({
        "error": "invalid_client_metadata",
        "error_description": format!(
            "Field {field} must hold absolute http or https URLs only, but '{value}' is not one."
        ),
    })
}

#[tokio::test]
async fn script_and_non_web_uris_are_refused_at_registration() {
    let app = TestApp::spawn().await;
    let single = [
        "frontchannel_logout_uri",
        "backchannel_logout_uri",
        "client_uri",
        "logo_uri",
        "policy_uri",
        "tos_uri",
        "jwks_uri",
        "sector_identifier_uri",
    ];
    let lists = ["post_logout_redirect_uris", "request_uris"];
    let bad = [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "/relative/path",
        "ftp://files.example/x",
    ];
    for value in bad {
        for field in single {
            let res = app.admin_post("/clients", &json!({ field: value })).await;
            assert_eq!(res.status(), 400, "{field}={value}");
            assert_eq!(json(res).await, metadata_error(field, value), "{field}");
        }
        for field in lists {
            let body = json!({"redirect_uris": ["https://rp.example/cb"], field: ["https://rp.example/ok", value]});
            let res = app.admin_post("/clients", &body).await;
            assert_eq!(res.status(), 400, "{field}={value}");
            assert_eq!(json(res).await, metadata_error(field, value), "{field}");
        }
    }
    // Redirect URIs keep private-use schemes for native apps, but not script schemes.
    for value in ["javascript:alert(1)", "data:text/html,x", "vbscript:x"] {
        let res = app
            .admin_post("/clients", &json!({"redirect_uris": [value]}))
            .await;
        assert_eq!(res.status(), 400, "{value}");
        let scheme = value.split(':').next().unwrap();
        assert_eq!(
            json(res).await,
            json!({
                "error": "invalid_redirect_uri",
                "error_description": format!("Redirect URIs must not use the {scheme} scheme."),
            })
        );
    }
    let res = app
        .admin_post(
            "/clients",
            &json!({"redirect_uris": ["com.example.app:/callback"]}),
        )
        .await;
    assert_eq!(res.status(), 201);

    // Web URLs pass; an update to a script URI is refused and changes nothing.
    let res = app
        .admin_post(
            "/clients",
            &json!({
                "redirect_uris": ["https://rp.example/cb"],
                "frontchannel_logout_uri": "https://rp.example/fc",
                "backchannel_logout_uri": "http://127.0.0.1:9/bc",
                "post_logout_redirect_uris": ["https://rp.example/bye"],
                "logo_uri": "https://rp.example/logo.png",
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let mut created = json(res).await;
    let id = created["client_id"].as_str().unwrap().to_string();
    created["frontchannel_logout_uri"] = json!("javascript:alert(1)");
    let res = app.admin_put(&format!("/clients/{id}"), &created).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        json(res).await,
        metadata_error("frontchannel_logout_uri", "javascript:alert(1)")
    );
    let stored = app.get_json(app.admin(&format!("/clients/{id}"))).await;
    assert_eq!(stored["frontchannel_logout_uri"], "https://rp.example/fc");
    app.stop().await;
}

/// Rewrites a stored client's JSON directly, as a row written before the rule would be.
async fn make_legacy(app: &TestApp, id: &str, edit: Value) {
    let store = &app.state().store;
    let mut row = store.get_client(id).await.unwrap();
    let mut data: Value = serde_json::from_str(&row.data).unwrap();
    for (k, v) in edit.as_object().unwrap() {
        data[k] = v.clone();
    }
    row.data = data.to_string();
    store.update_client(&row).await.unwrap();
}

#[tokio::test]
async fn a_legacy_script_uri_never_reaches_the_logout_page() {
    let app = spawn_with(|c| {
        c.urls.logout = LOGOUT_URL.into();
        c.urls.post_logout_redirect = LOGGED_OUT.into();
    })
    .await;
    let good = client(
        &app,
        json!({"frontchannel_logout_uri": "http://127.0.0.1:5555/fc?a=1&b=2"}),
    )
    .await;
    let legacy = client(
        &app,
        json!({
            "frontchannel_logout_uri": "http://127.0.0.1:5555/legacy-fc",
            "post_logout_redirect_uris": ["http://127.0.0.1:5555/bye"],
        }),
    )
    .await;
    make_legacy(
        &app,
        &legacy.id,
        json!({
            "frontchannel_logout_uri": "javascript:alert(document.cookie)//",
            "post_logout_redirect_uris": ["javascript:alert(2)//"],
        }),
    )
    .await;
    let _ = code(&app, &good.id, &["openid"]).await;
    let code_ = code(&app, &legacy.id, &["openid"]).await;
    let hint = json(exchange(&app, &legacy, &code_).await).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();

    // A stored javascript: post-logout URI is not a place to send the browser.
    let res = browse(
        &app,
        &format!(
            "{}?id_token_hint={hint}&post_logout_redirect_uri={}",
            app.public("/oauth2/sessions/logout"),
            urlencoding("javascript:alert(2)//")
        ),
    )
    .await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(without_query(&loc), ERROR_URL);
    assert_eq!(param(&loc, "error").unwrap(), "invalid_request");

    // The front-channel page lists the good RP (escaped) and skips the legacy one.
    let res = browse(
        &app,
        &format!(
            "{}?id_token_hint={hint}",
            app.public("/oauth2/sessions/logout")
        ),
    )
    .await;
    let challenge = param(&location(&res), "logout_challenge").unwrap();
    let res = flow_answer(&app, "logout", "accept", &challenge, json!({})).await;
    let to = redirect_to(res).await;
    let res = browse(&app, &to).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(!page.to_lowercase().contains("javascript:"), "{page}");
    assert_eq!(page.matches("<iframe").count(), 1, "{page}");
    assert!(
        page.contains("<iframe src=\"http://127.0.0.1:5555/fc?a=1&amp;b=2&amp;iss="),
        "{page}"
    );
    assert!(page.contains(LOGGED_OUT), "{page}");
    app.stop().await;
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
