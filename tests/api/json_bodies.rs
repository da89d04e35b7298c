//! Admin JSON bodies under a non-JSON Content-Type: accepted from scripts (`curl -d '{…}'` sends
//! a form Content-Type, and Hydra accepts it), refused when the request carries a browser's
//! marks, so a web page cannot create or change clients with a cross-site "simple" POST.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::harness::{json, TestApp};
use serde_json::json;

async fn post(app: &TestApp, id: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.admin("/clients"))
        .body(json!({"client_id": id, "redirect_uris": ["https://rp.example/cb"]}).to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn scripts_may_omit_the_json_content_type_browsers_may_not() {
    let app = TestApp::spawn().await;
    let form = ("content-type", "application/x-www-form-urlencoded");
    let text = ("content-type", "text/plain;charset=UTF-8");

    // What scripts send.
    for (id, headers) in [
        ("curl-form", vec![form]),
        ("curl-text", vec![text]),
        ("no-type", vec![]),
        (
            "same-origin",
            vec![
                form,
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-mode", "same-origin"),
            ],
        ),
        (
            "typed-page",
            vec![
                ("content-type", "application/json"),
                ("origin", "https://ops.example"),
            ],
        ),
    ] {
        let res = post(&app, id, &headers).await;
        assert_eq!(res.status(), 201, "{id}");
        assert_eq!(json(res).await["client_id"], id);
    }

    // What a cross-site page can send without a preflight.
    for (id, headers) in [
        (
            "page-origin",
            vec![text, ("origin", "https://evil.example")],
        ),
        ("page-null-origin", vec![form, ("origin", "null")]),
        ("page-site", vec![form, ("sec-fetch-site", "cross-site")]),
        (
            "page-same-site",
            vec![form, ("sec-fetch-site", "same-site")],
        ),
        ("page-mode", vec![text, ("sec-fetch-mode", "no-cors")]),
    ] {
        let res = post(&app, id, &headers).await;
        assert_eq!(res.status(), 400, "{id}");
        assert_eq!(
            res.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        let body = json(res).await;
        assert_eq!(body["error"], "invalid_request", "{id}");
        assert_eq!(
            body["error_description"],
            "The request body must be JSON (Content-Type: application/json).",
            "{id}"
        );
        let res = app.get(app.admin(&format!("/clients/{id}"))).await;
        assert_eq!(res.status(), 404, "{id} was created");
    }

    // Updates follow the same rule.
    let update = |headers: Vec<(&'static str, &'static str)>| {
        let mut req = app.http.put(app.admin("/clients/curl-form")).body(
            json!({"client_name": "renamed", "redirect_uris": ["https://rp.example/cb"]})
                .to_string(),
        );
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let res = update(vec![text, ("origin", "https://evil.example")])
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = update(vec![text]).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["client_name"], "renamed");
    app.stop().await;
}
