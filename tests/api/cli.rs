//! The Hydra-compatible remote CLI (`clients`, `keys`, `token`) against a running app: exact
//! output lines and the effects on the server.
#![allow(clippy::unwrap_used)]
use crate::harness::{cli, cli_line, json, TestApp};
use serde_json::json;

const WARNING: &str =
    "Warning: a secret given on the command line can end up in shell history and process lists.\n";

#[tokio::test]
async fn client_lifecycle_and_client_credentials_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin.as_str();
    let public = app.public.as_str();

    let (code, out, err) = cli_line(&format!("clients create --endpoint {admin} --id my-client --secret s3cret -g client_credentials -a 'read write' --audience api-a,api-b"))
    .await;
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, format!("{WARNING}OAuth 2.0 Client ID: my-client\n"));
    let stored = app.get_json(app.admin("/clients/my-client")).await;
    assert_eq!(stored["grant_types"], json!(["client_credentials"]));
    assert_eq!(stored["response_types"], json!(["code"]));
    assert_eq!(stored["scope"], "read write");
    assert_eq!(stored["audience"], json!(["api-a", "api-b"]));
    assert_eq!(stored["token_endpoint_auth_method"], "client_secret_basic");

    // `token client` prints the bare access token, which introspects active.
    let (code, token, err) = cli_line(&format!("token client --endpoint {public} --client-id my-client --client-secret s3cret --scope read --audience api-a"))
    .await;
    assert_eq!((code, err.as_str()), (0, ""));
    let token = token.strip_suffix('\n').unwrap().to_string();
    assert!(!token.is_empty() && !token.contains('\n'));
    let res = app
        .http
        .post(app.admin("/oauth2/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    let intro = json(res).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["client_id"], "my-client");
    assert_eq!(intro["scope"], "read");
    assert_eq!(intro["aud"], json!(["api-a"]));

    // `token introspect` prints Go's model: alphabetical, tab-indented, empty members dropped.
    let (code, out, _) = cli_line(&format!("token introspect --endpoint {admin} {token}")).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("{\n\t\"active\": true,\n\t\"aud\": [\n\t\t\"api-a\"\n\t],\n\t\"client_id\": \"my-client\",\n\t\"exp\": "), "{out}");
    assert!(out.contains("\n\t\"scope\": \"read\",\n\t\"sub\": \"my-client\",\n\t\"token_type\": \"Bearer\",\n\t\"token_use\": \"access_token\"\n}\n"), "{out}");

    // `token revoke` authenticates as the client; the token then introspects inactive.
    let (code, out, _) = cli_line(&format!(
        "token revoke --endpoint {public} --client-id my-client --client-secret s3cret {token}"
    ))
    .await;
    assert_eq!(code, 0);
    assert_eq!(out, format!("Revoked OAuth 2.0 Access Token: {token}\n"));
    let (code, out, _) = cli_line(&format!("token introspect --endpoint {admin} {token}")).await;
    assert_eq!(code, 0);
    assert_eq!(out, "{\n\t\"active\": false,\n\t\"aud\": null\n}\n");

    // Wrong secret: exit 1 and the server's answer on stderr.
    let (code, out, err) = cli_line(&format!(
        "token client --endpoint {public} --client-id my-client --client-secret wrong1"
    ))
    .await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("401") && err.contains("invalid_client"),
        "{err}"
    );

    // `update` replaces the client; a new secret is echoed.
    let (code, out, _) = cli_line(&format!("clients update my-client --endpoint {admin} -n renamed -g client_credentials --secret n3w-secret"))
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!("{WARNING}my-client OAuth 2.0 Client updated\nUpdated OAuth 2.0 Client Secret: n3w-secret\n")
    );
    let stored = app.get_json(app.admin("/clients/my-client")).await;
    assert_eq!(stored["client_name"], "renamed");
    assert_eq!(stored["scope"], "offline_access offline openid");

    // `get` prints the client as Hydra's Go model.
    let (code, out, _) = cli_line(&format!("clients get my-client --endpoint {admin}")).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("{\n\t\"client_id\": \"my-client\",\n\t\"client_name\": \"renamed\",\n\t\"created_at\": \""), "{out}");
    assert!(
        out.contains("\n\t\"grant_types\": [\n\t\t\"client_credentials\"\n\t],\n"),
        "{out}"
    );
    assert!(!out.contains("\"client_secret\""), "{out}");
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(parsed["updated_at"].as_str().unwrap().ends_with(".000Z"));

    let (code, out, _) = cli_line(&format!("clients delete my-client --endpoint {admin}")).await;
    assert_eq!((code, out.as_str()), (0, "OAuth 2.0 Client(s) deleted\n"));
    assert_eq!(app.get(app.admin("/clients/my-client")).await.status(), 404);
    let (code, out, err) = cli_line(&format!("clients get my-client --endpoint {admin}")).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("404 Not Found"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn create_prints_generated_secret_and_list_draws_a_table() {
    let app = TestApp::spawn().await;
    let admin = app.admin.as_str();
    let (code, out, _) = cli_line(&format!("clients create --endpoint {admin} --id web -n 'Web App' -c https://rp.example/cb,https://rp.example/cb2 -g authorization_code,refresh_token -r code -a openid,offline"))
    .await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "OAuth 2.0 Client ID: web");
    let secret = lines[1].strip_prefix("OAuth 2.0 Client Secret: ").unwrap();
    assert_eq!(secret.len(), 26);

    let (code, out, _) = cli_line(&format!(
        "clients create --endpoint {admin} --id spa --token-endpoint-auth-method none"
    ))
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "OAuth 2.0 Client ID: spa\nThis OAuth 2.0 Client has no secret\n"
    );

    let (code, out, _) = cli(&["clients", "list", "--endpoint", admin]).await;
    assert_eq!(code, 0);
    // tablewriter layout: centred upper-case headers, cells wrapped, multi-line redirect URIs.
    let expected = concat!(
        "| CLIENT ID |  NAME   | RESPONSE TYPES |             SCOPE             |     REDIRECT URIS      |           GRANT TYPES            | TOKEN ENDPOINT AUTH METHOD |\n",
        "|-----------|---------|----------------|-------------------------------|------------------------|----------------------------------|----------------------------|\n",
        "| spa       |         | code           | offline_access offline openid |                        | authorization_code               | none                       |\n",
        "| web       | Web App | code           | openid offline                | https://rp.example/cb  | authorization_code,refresh_token | client_secret_basic        |\n",
        "|           |         |                |                               | https://rp.example/cb2 |                                  |                            |\n",
    );
    assert_eq!(out, expected);

    let (code, out, _) = cli_line(&format!(
        "clients list --endpoint {admin} --limit 1 --page 2"
    ))
    .await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.lines().nth(2).unwrap().starts_with("| web "), "{out}");

    // Import: a file without secret gets one generated and printed.
    let dir = super::harness::temp_dir("pc-cli");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    std::fs::write(
        &a,
        r#"{"client_id": "imp-a", "grant_types": ["client_credentials"]}"#,
    )
    .unwrap();
    std::fs::write(
        &b,
        r#"{"client_id": "imp-b", "client_secret": "imported-secret"}"#,
    )
    .unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (code, out, _) = cli_line(&format!("clients import --endpoint {admin} {a} {b}")).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Imported OAuth 2.0 Client imp-a:")
            && lines[0].ends_with(&format!(" from: {a}")),
        "{out}"
    );
    assert_eq!(
        lines[1],
        format!("Imported OAuth 2.0 Client imp-b from: {b}")
    );
    assert_eq!(app.get(app.admin("/clients/imp-b")).await.status(), 200);
    let _ = std::fs::remove_dir_all(&dir);

    // PGP/Keybase encryption is refused up front.
    let (code, out, err) = cli_line(&format!(
        "clients create --endpoint {admin} --keybase someone"
    ))
    .await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("--keybase is not supported"), "{err}");
    app.stop().await;
}

/// `portcullis keys <args> --endpoint <admin API>`, in-process.
async fn keys_cmd(app: &TestApp, args: &str) -> (i32, String, String) {
    cli_line(&format!("keys {args} --endpoint {}", app.admin)).await
}

#[tokio::test]
async fn keys_create_get_import_delete() {
    let app = TestApp::spawn().await;
    let (code, out, _) = keys_cmd(&app, "create my-set k1 -a HS256").await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("{\n\t\"keys\": [\n\t\t{\n\t\t\t\"alg\": \"HS256\",\n\t\t\t\"k\": \""),
        "{out}"
    );
    assert!(out.ends_with("\t\t\t\"kid\": \"k1\",\n\t\t\t\"kty\": \"oct\",\n\t\t\t\"use\": \"sig\",\n\t\t\t\"x5c\": null\n\t\t}\n\t]\n}\n"), "{out}");

    let (code, out, _) = keys_cmd(&app, "get my-set").await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("{\n\t\"Payload\": {\n\t\t\"keys\": [\n"),
        "{out}"
    );

    let dir = super::harness::temp_dir("pc-cli");
    let file = dir.join("pub.json");
    let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    std::fs::write(&file, jwk.to_string()).unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = keys_cmd(
        &app,
        &format!("import my-set {path} --default-key-id imported"),
    )
    .await;
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        format!(
            "Successfully loaded key from file: {path}\nJSON Web Key Set successfully imported!\n"
        )
    );
    let set = app.get_json(app.admin("/keys/my-set")).await;
    let mut kids: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    kids.sort_unstable();
    assert_eq!(kids, vec!["k1", "public:imported"]);
    let _ = std::fs::remove_dir_all(&dir);

    let (code, out, _) = keys_cmd(&app, "delete my-set").await;
    assert_eq!(
        (code, out.as_str()),
        (0, "JSON Web Key Set deleted: my-set\n")
    );
    assert_eq!(app.get(app.admin("/keys/my-set")).await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn token_flush_and_delete() {
    let app = TestApp::spawn().await;
    let (admin, public) = (app.admin.as_str(), app.public.as_str());
    let (code, _, _) = cli_line(&format!(
        "clients create --endpoint {admin} --id svc --secret svc-secret -g client_credentials"
    ))
    .await;
    assert_eq!(code, 0);
    let (code, token, _) = cli_line(&format!(
        "token client --endpoint {public} --client-id svc --client-secret svc-secret"
    ))
    .await;
    assert_eq!(code, 0);
    let token = token.trim_end().to_string();

    let (code, out, _) = cli_line(&format!("token flush --endpoint {admin} --min-age 1h")).await;
    assert_eq!(
        (code, out.as_str()),
        (0, "Successfully flushed inactive access tokens\n")
    );

    let (code, out, _) =
        cli_line(&format!("token delete --endpoint {admin} --client-id svc")).await;
    assert_eq!(
        (code, out.as_str()),
        (0, "Successfully deleted access tokens for client svc\n")
    );
    let (_, out, _) = cli_line(&format!("token introspect --endpoint {admin} {token}")).await;
    assert_eq!(out, "{\n\t\"active\": false,\n\t\"aud\": null\n}\n");

    let (code, _, err) = cli(&["token", "user", "--endpoint", public]).await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("client ID missing: pass --client-id"),
        "{err}"
    );
    let (code, _, err) = cli_line(&format!("token revoke --endpoint {public} {token}")).await;
    assert_eq!(code, 1);
    assert!(err.contains("--client-id"), "{err}");
    app.stop().await;
}
