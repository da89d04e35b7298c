//! `sector_identifier_uri` is fetched on client create and update (Hydra client/validator.go):
//! over https, trusting `SSL_CERT_FILE`, with a deadline and a size limit; the document must be
//! a JSON array naming every redirect URI, else 400 `invalid_client_metadata`.
//! The release binary runs against the test's fresh database (either backend), with a private
//! CA in `SSL_CERT_FILE`, and fetches from an https server in the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::harness::{json, send, temp_dir, words, TestApp, SECRET};
use super::process::{free_port, serve_dev, wait_ready};
use axum::routing::get;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const REDIRECT: &str = "https://rp.example/cb";

/// Runs `openssl` with the arguments of the command line `line` in `dir`.
fn openssl(dir: &Path, line: &str) {
    let args = words(line);
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA and a certificate for 127.0.0.1 it signed.
fn certificates(dir: &Path) {
    openssl(
        dir,
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=sector test CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
    );
    openssl(
        dir,
        "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1",
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext",
    );
}

/// An https server with the sector documents; returns its base URL.
async fn sector_server(dir: &Path) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    )
    .await
    .unwrap();
    let big = format!("[\"{REDIRECT}\", \"{}\"]", "x".repeat(600 * 1024));
    let app = axum::Router::new()
        .route(
            "/sector.json",
            get(|| async { axum::Json(json!([REDIRECT, "https://rp.example/other"])) }),
        )
        .route(
            "/other.json",
            get(|| async { axum::Json(json!(["https://other.example/cb"])) }),
        )
        .route("/empty.json", get(|| async { axum::Json(json!([])) }))
        .route("/text", get(|| async { "not json" }))
        .route("/big.json", get(move || async move { big }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, config)
            .serve(app.into_make_service())
            .await
            .unwrap();
    });
    format!("https://127.0.0.1:{port}")
}

struct Server(std::process::Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The release binary on `dsn`, trusting only the test CA.
async fn binary_on(dsn: &str, ca: &Path) -> Server {
    let (public, admin) = (free_port(), free_port());
    let child = serve_dev(dsn, public, admin)
        .env("SECRETS_SYSTEM", SECRET)
        .env("SSL_CERT_FILE", ca)
        .env("LOG_LEVEL", "warn")
        .env(
            "OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES",
            "public,pairwise",
        )
        .env(
            "OIDC_SUBJECT_IDENTIFIERS_PAIRWISE_SALT",
            "sector-test-salt-0123456789",
        )
        .spawn()
        .unwrap();
    let server = Server(child, format!("http://127.0.0.1:{admin}"));
    let ready = format!("{}/health/ready", server.1);
    wait_ready(&reqwest::Client::new(), &ready, Duration::from_secs(60)).await;
    server
}

async fn create(http: &reqwest::Client, admin: &str, id: &str, sector: &str) -> reqwest::Response {
    http.post(format!("{admin}/clients"))
        .json(&json!({
            "client_id": id,
            "redirect_uris": [REDIRECT],
            "subject_type": "pairwise",
            "sector_identifier_uri": sector,
        }))
        .send()
        .await
        .unwrap()
}

async fn refused(res: reqwest::Response, description: &str) {
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    let got = body["error_description"].as_str().unwrap();
    assert!(got.contains(description), "{got}");
}

/// Updates are checked the same way, and a refused update changes nothing.
async fn updates_are_checked_too(http: &reqwest::Client, admin: &str, base: &str) {
    let update = |sector: String| {
        http.put(format!("{admin}/clients/sector-ok"))
            .json(&json!({
                "redirect_uris": [REDIRECT],
                "subject_type": "pairwise",
                "sector_identifier_uri": sector,
            }))
            .send()
    };
    refused(
        update(format!("{base}/other.json")).await.unwrap(),
        "does not match values from sector_identifier_uri",
    )
    .await;
    let stored = json(send(http.get(format!("{admin}/clients/sector-ok"))).await).await;
    assert_eq!(
        stored["sector_identifier_uri"],
        format!("{base}/sector.json")
    );
    let res = update(format!("{base}/sector.json")).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn sector_identifier_documents_are_fetched_and_checked() {
    let app = TestApp::spawn().await;
    let dir = temp_dir("sector");
    certificates(&dir);
    let base = sector_server(&dir).await;
    let server = binary_on(&app.dsn, &dir.join("ca.pem")).await;
    let (http, admin) = (reqwest::Client::new(), server.1.clone());

    // Listed: created, and the document's address is kept as the sector.
    let res = create(&http, &admin, "sector-ok", &format!("{base}/sector.json")).await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        json(res).await["sector_identifier_uri"],
        format!("{base}/sector.json")
    );

    // Another RP's sector: refused, so it cannot receive that RP's pairwise subjects.
    let mismatch =
        format!("Redirect URL '{REDIRECT}' does not match values from sector_identifier_uri.");
    let cases = [
        (
            "sector-thief",
            format!("{base}/other.json"),
            mismatch.as_str(),
        ),
        (
            "sector-empty",
            format!("{base}/empty.json"),
            "Array from sector_identifier_uri contains no items",
        ),
        (
            "sector-text",
            format!("{base}/text"),
            "Unable to decode values from sector_identifier_uri",
        ),
        (
            "sector-big",
            format!("{base}/big.json"),
            "Unable to connect to URL set by sector_identifier_uri: the document is larger than",
        ),
        (
            "sector-404",
            format!("{base}/missing.json"),
            "status code '200' was expected, but got '404'",
        ),
        (
            "sector-down",
            "https://127.0.0.1:1/sector.json".into(),
            "Unable to connect to URL set by sector_identifier_uri",
        ),
    ];
    for (id, sector, description) in &cases {
        refused(create(&http, &admin, id, sector).await, description).await;
    }
    for id in [
        "sector-thief",
        "sector-empty",
        "sector-text",
        "sector-big",
        "sector-down",
    ] {
        let res = send(http.get(format!("{admin}/clients/{id}"))).await;
        assert_eq!(res.status(), 404, "{id} was stored");
    }

    updates_are_checked_too(&http, &admin, &base).await;

    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    app.stop().await;
}
