//! `portcullis token user` end to end: the real binary as the OAuth 2.0 client, the test as the
//! browser (following every redirect by hand through the `--dev` login and consent pages), and
//! its exit codes on success and on each failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use crate::dev_ui::{
    assert_see_other, consent, input_value, log_in, login_page_from, spawn_dev, submit,
};
use crate::flow::{location, param, without_query};
use crate::harness::{assert_body_contains, json, TestApp};
use crate::process::free_port;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const SECRET: &str = "token-user-client-secret";
const LIMIT: Duration = Duration::from_secs(30);

/// A confidential code-flow client whose redirect URI is the CLI's callback on `port`.
async fn client(app: &TestApp, port: u16, scheme: &str) -> String {
    let res = app
        .admin_post(
            "/clients",
            &json!({
                "client_name": "token user test",
                "client_secret": SECRET,
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "scope": "openid offline",
                "redirect_uris": [format!("{scheme}://127.0.0.1:{port}/callback")],
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    json(res).await["client_id"].as_str().unwrap().to_string()
}

/// The release binary with no endpoint or client taken from the environment.
fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    for k in [
        "HYDRA_URL",
        "PORTCULLIS_URL",
        "HYDRA_ADMIN_URL",
        "PORTCULLIS_ADMIN_URL",
        "OAUTH2_CLIENT_ID",
        "OAUTH2_CLIENT_SECRET",
    ] {
        cmd.env_remove(k);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Everything printed before the authorization URL, and the URL.
    banner: Vec<String>,
    auth_url: String,
}

/// Starts `token user` and reads its banner up to the authorization URL.
async fn start(args: &[&str]) -> Running {
    let mut child = command(&[&["token", "user"], args].concat())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let auth_url = tokio::time::timeout(LIMIT, async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("stdout closed before the URL");
            banner.push(line.clone());
            if let Some(url) = line.strip_prefix('\t') {
                // The URL stands between blank lines, as in Hydra's banner.
                let blank = lines.next_line().await.unwrap().unwrap();
                banner.push(blank);
                return url.to_string();
            }
        }
    })
    .await
    .expect("no authorization URL printed");
    Running {
        child,
        lines,
        banner,
        auth_url,
    }
}

impl Running {
    /// Waits for the exit: (code, rest of stdout, stderr).
    async fn finish(mut self) -> (i32, String, String) {
        let status = tokio::time::timeout(LIMIT, self.child.wait())
            .await
            .expect("token user did not exit")
            .unwrap();
        let mut rest = String::new();
        while let Some(l) = self.lines.next_line().await.unwrap() {
            rest.push_str(&l);
            rest.push('\n');
        }
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        (status.code().unwrap(), rest, err)
    }
}

/// Runs a command that must fail before listening: (code, stdout, stderr).
async fn run_to_end(args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(LIMIT, command(args).output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A client for a free port and `token user` started for it with `--endpoint` and
/// `--client-id` set, then `args` (`{port}` in them stands for the port); returns the run
/// and the port.
async fn launch(app: &TestApp, scheme: &str, args: &[&str]) -> (Running, u16, String) {
    let port = free_port();
    let id = client(app, port, scheme).await;
    let p = port.to_string();
    let mut all = vec!["--endpoint", &app.public, "--client-id", &id];
    all.extend(
        args.iter()
            .map(|a| if *a == "{port}" { p.as_str() } else { a }),
    );
    (start(&all).await, port, id)
}

/// Plays the browser from the authorization URL through login and consent, as `user`; returns
/// the client's callback URL the server redirected to.
async fn authorize_in_browser(app: &TestApp, auth_url: &str, user: &str) -> url::Url {
    let (login, page) = login_page_from(app, auth_url).await;
    let (challenge, page) = log_in(app, &login, &page, user, false).await;
    consent(app, &challenge, &page, &["openid", "offline"], "accept").await
}

#[tokio::test]
async fn token_user_prints_tokens_after_a_browser_flow() {
    let app = spawn_dev().await;
    let args = ["--client-secret", SECRET, "--port", "{port}"];
    let (run, port, id) = launch(&app, "http", &args).await;
    let home = format!("http://127.0.0.1:{port}/");
    assert_eq!(
        run.banner,
        vec![
            format!("Setting up home route on {home}"),
            format!("Setting up callback listener on {home}callback"),
            "Press ctrl + c on Linux / Windows or cmd + c on OSX to end the process.".to_string(),
            "Open this URL in a browser to log in and authorize:".to_string(),
            String::new(),
            format!("\t{}", run.auth_url),
            String::new(),
        ]
    );
    // The URL: the server's authorization endpoint, code flow with PKCE S256, state and nonce.
    let u = url::Url::parse(&run.auth_url).unwrap();
    assert_eq!(without_query(&u), format!("{}/oauth2/auth", app.public));
    assert_eq!(param(&u, "client_id").as_deref(), Some(id.as_str()));
    assert_eq!(param(&u, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&u, "redirect_uri"), Some(format!("{home}callback")));
    assert_eq!(param(&u, "scope").as_deref(), Some("offline openid"));
    assert_eq!(param(&u, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param(&u, "code_challenge").unwrap().len(), 43);
    assert_eq!(param(&u, "state").unwrap().len(), 32);
    assert_eq!(param(&u, "nonce").unwrap().len(), 32);
    assert!(param(&u, "prompt").is_none() && param(&u, "max_age").is_none());

    // The home page links to the same URL.
    let res = app.http.get(&home).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(&format!(
        "<a href=\"{}\">",
        run.auth_url.replace('&', "&amp;")
    )));

    let callback = authorize_in_browser(&app, &run.auth_url, "erin").await;
    assert_eq!(without_query(&callback), format!("{home}callback"));
    let res = app.http.get(callback.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    assert!(page.contains("<h1>Tokens received</h1>"), "{page}");

    let (code, out, err) = run.finish().await;
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9, "{out}");
    assert_eq!(
        [lines[0], lines[2], lines[4], lines[6], lines[8]],
        [
            "Access Token:",
            "Refresh Token:",
            "Expires in:",
            "ID Token:",
            ""
        ]
    );
    let field = |i: usize| lines[i].strip_prefix('\t').unwrap().to_string();
    let (access, refresh, expiry, id_token) = (field(1), field(3), field(5), field(7));
    assert!(expiry.ends_with(" UTC") && expiry.len() == 29, "{expiry}");
    assert_eq!(id_token.split('.').count(), 3);
    assert!(!refresh.is_empty());
    assert!(page.contains(&format!("Access Token: <code>{access}</code>")));

    let intro = json(
        app.post_form(app.admin("/oauth2/introspect"), &[("token", &access)])
            .await,
    )
    .await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["sub"], "erin");
    assert_eq!(intro["client_id"], id.as_str());
    assert_eq!(intro["scope"], "offline openid");
    // The listener is gone.
    assert!(app.http.get(&home).send().await.is_err());
    app.stop().await;
}

#[tokio::test]
async fn token_user_denied_login_and_failed_exchange_exit_1() {
    let app = spawn_dev().await;

    // Denied at the login page: the error callback ends the command.
    let args = [
        "--client-secret",
        SECRET,
        "-p",
        "{port}",
        "--scope",
        "openid,offline",
    ];
    let (run, _, _) = launch(&app, "http", &args).await;
    let (login, page) = login_page_from(&app, &run.auth_url).await;
    let csrf = input_value(&page, "csrf_token");
    let res = submit(&app, "login", &login, &csrf, &[("action", "deny")]).await;
    let back = assert_see_other(&res, "oauth2/auth", "login_verifier");
    let res = app
        .http
        .get(crate::flow::on_app(&app, back.as_str()))
        .send()
        .await
        .unwrap();
    let callback = location(&res);
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
    let res = app.http.get(callback.as_str()).send().await.unwrap();
    assert_body_contains(res, 400, "<h1>An error occurred</h1><h2>access_denied</h2>").await;
    let (code, out, err) = run.finish().await;
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "Got error: access_denied: The resource owner denied the request\n"
    );

    // A wrong secret: the flow succeeds, the exchange does not.
    let args = ["--client-secret", "wrong", "--port", "{port}"];
    let (run, _, _) = launch(&app, "http", &args).await;
    let callback = authorize_in_browser(&app, &run.auth_url, "frank").await;
    assert!(param(&callback, "code").is_some());
    let res = app.http.get(callback.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 502);
    let (code, out, err) = run.finish().await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("Unable to exchange code for token: the request failed: the server answered 401 Unauthorized:\n"),
        "{err}"
    );
    assert!(err.contains("\"error\": \"invalid_client\""), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn token_user_state_mismatch_over_https_and_startup_errors() {
    let app = spawn_dev().await;
    let (run, port, _) = launch(
        &app,
        "https",
        &[
            "--port",
            "{port}",
            "--https",
            "--prompt",
            "login",
            "--max-age",
            "60",
            "--audience",
            "a,b",
        ],
    )
    .await;
    let home = format!("https://127.0.0.1:{port}/");
    assert_eq!(run.banner[0], format!("Setting up home route on {home}"));
    let u = url::Url::parse(&run.auth_url).unwrap();
    assert_eq!(param(&u, "redirect_uri"), Some(format!("{home}callback")));
    assert_eq!(param(&u, "prompt").as_deref(), Some("login"));
    assert_eq!(param(&u, "max_age").as_deref(), Some("60"));
    assert_eq!(param(&u, "audience").as_deref(), Some("a b"));
    let state = param(&u, "state").unwrap();

    // A callback with someone else's state (over the self-signed TLS listener).
    let browser = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let res = browser
        .get(format!("{home}callback?code=stolen&state=forged"))
        .send()
        .await
        .unwrap();
    assert_body_contains(res, 400, "<h1>States do not match</h1>").await;
    let (code, out, err) = run.finish().await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!("States do not match. Expected {state}, got forged\n")
    );

    // Nothing listens without a client ID, a server URL or a free port.
    let (code, out, err) = run_to_end(&["token", "user", "--endpoint", &app.public]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("client ID missing: pass --client-id"),
        "{err}"
    );
    let (code, _, err) = run_to_end(&["token", "user", "--client-id", "x"]).await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "no server URL given: pass --endpoint or set HYDRA_URL to the URL of the public API\n"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let (code, _, err) = run_to_end(&[
        "token",
        "user",
        "--endpoint",
        &app.public,
        "--client-id",
        "x",
        "--port",
        &taken_port,
    ])
    .await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("cannot listen on 127.0.0.1:{taken_port}: ")),
        "{err}"
    );
    drop(taken);
    let (code, _, err) = run_to_end(&["token", "user", "--port", "70000"]).await;
    assert_eq!(code, 2, "{err}");
    app.stop().await;
}
