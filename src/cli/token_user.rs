//! `token user`: Hydra v1.9.2's exemplary OAuth 2.0 client (cmd/token_user.go). It listens on
//! 127.0.0.1, prints the authorization URL, and once the browser comes back to `/callback`
//! exchanges the code, prints the tokens, shows them to the browser, and exits.
//!
//! Beyond Hydra: the code flow always carries PKCE (S256), so public clients (no secret) work
//! too; the listener binds loopback only; the browser is opened only with `--open`; and every
//! failure (error callback, state mismatch, token endpoint) exits 1 with a message on stderr.
use super::remote::{form_escape, line, list, Api, Fail, Outcome, Remote, RemoteFlags};
use super::token::ClientCredentials;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::{ArgAction, Args};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Args, Debug)]
pub(crate) struct UserArgs {
    #[command(flatten)]
    creds: ClientCredentials,
    /// Port of the local callback listener on 127.0.0.1 (0 picks a free one).
    #[arg(short = 'p', long, default_value_t = 4446)]
    port: u16,
    /// Scopes to request (repeat or comma-separate).
    #[arg(long, action = ArgAction::Append, default_values_t = ["offline".to_string(), "openid".to_string()])]
    scope: Vec<String>,
    /// Access token audiences to request (repeat or comma-separate).
    #[arg(long, action = ArgAction::Append)]
    audience: Vec<String>,
    /// The OpenID Connect prompt parameter (repeat or comma-separate: login, consent, none).
    #[arg(long, action = ArgAction::Append)]
    prompt: Vec<String>,
    /// The OpenID Connect max_age parameter in seconds (0: not sent).
    #[arg(long = "max-age", default_value_t = 0)]
    max_age: u64,
    /// Redirect URL to send instead of http(s)://127.0.0.1:<port>/callback.
    #[arg(long)]
    redirect: Option<String>,
    /// Authorization endpoint, when it is not <endpoint>/oauth2/auth.
    #[arg(long = "auth-url")]
    auth_url: Option<String>,
    /// Token endpoint, when it is not <endpoint>/oauth2/token.
    #[arg(long = "token-url")]
    token_url: Option<String>,
    /// Serve the callback over HTTPS with a fresh self-signed certificate.
    #[arg(long)]
    https: bool,
    /// Open the authorization URL in a browser (xdg-open; a failure is only reported).
    #[arg(long)]
    open: bool,
    /// Accepted for Hydra scripts: the browser is only opened with --open.
    #[arg(long = "no-open", hide = true)]
    no_open: bool,
}

/// The tokens of a successful exchange.
struct Tokens {
    access: String,
    refresh: String,
    id: String,
    expiry: String,
}

/// What the first callback brought; later callbacks are ignored.
type Verdict = Result<Tokens, String>;

/// Everything the callback handler needs.
struct Exchange {
    remote: Remote,
    token_url: String,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    state: String,
    verifier: String,
    auth_url: String,
    done: Mutex<Option<mpsc::Sender<Verdict>>>,
}

pub(crate) async fn run(
    args: &UserArgs,
    remote: &RemoteFlags,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Outcome {
    let client_id = client_id(args)?;
    let client_secret = args.creds.client_secret.clone().filter(|s| !s.is_empty());
    let (auth_endpoint, token_url, http) = endpoints(args, remote)?;
    let (listener, home) = callback_listener(args)?;
    let redirect_uri = args
        .redirect
        .clone()
        .unwrap_or_else(|| format!("{home}callback"));

    let state = crate::crypto::random_secret(32);
    let verifier = crate::crypto::random_secret(64);
    let auth_url = authorization_url(
        &auth_endpoint,
        args,
        &client_id,
        &redirect_uri,
        &state,
        &verifier,
    )?;

    let (tx, mut rx) = mpsc::channel::<Verdict>(1);
    let exchange = Arc::new(Exchange {
        remote: http,
        token_url,
        client_id,
        client_secret,
        redirect_uri,
        state,
        verifier,
        auth_url: auth_url.clone(),
        done: Mutex::new(Some(tx)),
    });
    let router = Router::new()
        .route("/", get(home_page))
        .route("/callback", get(callback))
        .with_state(exchange);
    let handle = axum_server::Handle::new();
    let server = serve(listener, router, handle.clone(), args.https).await?;

    print_instructions(out, &home, &auth_url)?;
    if args.open {
        open_browser(&auth_url, err);
    }

    let verdict = rx.recv().await;
    // Let the browser receive its page, then stop listening.
    handle.graceful_shutdown(Some(Duration::from_secs(2)));
    let _ = tokio::time::timeout(Duration::from_secs(3), server).await;
    print_verdict(out, verdict)
}

/// `--client-id` (or `OAUTH2_CLIENT_ID`), which is required.
fn client_id(args: &UserArgs) -> Result<String, Fail> {
    args.creds
        .client_id
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Fail(
                "client ID missing: pass --client-id (and --client-secret for a confidential \
                 client), or set OAUTH2_CLIENT_ID and OAUTH2_CLIENT_SECRET"
                    .into(),
            )
        })
}

/// The non-blocking local listener for the callback (`--port`), and its home URL.
fn callback_listener(args: &UserArgs) -> Result<(std::net::TcpListener, String), Fail> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", args.port))
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| Fail(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    let port = listener
        .local_addr()
        .map_err(|e| Fail(format!("cannot read the listener's address: {e}")))?
        .port();
    let scheme = if args.https { "https" } else { "http" };
    Ok((listener, format!("{scheme}://127.0.0.1:{port}/")))
}

/// Hydra's lines: where the listener runs and which URL to open.
fn print_instructions(out: &mut dyn Write, home: &str, auth_url: &str) -> Outcome {
    line(out, &format!("Setting up home route on {home}"))?;
    line(
        out,
        &format!("Setting up callback listener on {home}callback"),
    )?;
    line(
        out,
        "Press ctrl + c on Linux / Windows or cmd + c on OSX to end the process.",
    )?;
    line(
        out,
        &format!("Open this URL in a browser to log in and authorize:\n\n\t{auth_url}\n"),
    )?;
    out.flush()?;
    Ok(())
}

/// The tokens, or why the exchange failed.
fn print_verdict(out: &mut dyn Write, verdict: Option<Verdict>) -> Outcome {
    match verdict {
        Some(Ok(t)) => {
            let text = format!(
                "Access Token:\n\t{}\nRefresh Token:\n\t{}\nExpires in:\n\t{}\nID Token:\n\t{}\n",
                t.access, t.refresh, t.expiry, t.id
            );
            line(out, &text)
        }
        Some(Err(message)) => Err(Fail(message)),
        None => Err(Fail("the callback listener stopped unexpectedly".into())),
    }
}

/// The authorization endpoint, the token endpoint, and an HTTP client with the TLS options.
fn endpoints(args: &UserArgs, flags: &RemoteFlags) -> Result<(String, String, Remote), Fail> {
    let given = |v: &Option<String>| v.clone().filter(|u| !u.is_empty());
    let (auth, token) = (given(&args.auth_url), given(&args.token_url));
    let base = match (&auth, &token) {
        (Some(_), Some(t)) => t.clone(),
        _ => Remote::base_url(flags, Api::Public)?,
    };
    let remote = Remote::with_base(flags, &base)?;
    let auth = auth.unwrap_or_else(|| remote.url("/oauth2/auth"));
    let token = token.unwrap_or_else(|| remote.url("/oauth2/token"));
    Ok((auth, token, remote))
}

fn authorization_url(
    endpoint: &str,
    args: &UserArgs,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    verifier: &str,
) -> Result<String, Fail> {
    let mut url = url::Url::parse(endpoint).map_err(|e| {
        Fail(format!(
            "cannot parse the authorization URL {endpoint:?}: {e}"
        ))
    })?;
    // Hydra's CLI also sends a nonce: ID tokens then carry it.
    let nonce = crate::crypto::random_secret(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &list(&args.scope).join(" "))
            .append_pair("state", state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let audience = list(&args.audience);
        if !audience.is_empty() {
            q.append_pair("audience", &audience.join(" "));
        }
        let prompt = list(&args.prompt);
        if !prompt.is_empty() {
            q.append_pair("prompt", &prompt.join(" "));
        }
        if args.max_age > 0 {
            q.append_pair("max_age", &args.max_age.to_string());
        }
    }
    Ok(url.to_string())
}

/// Serves the router on the bound listener (HTTPS with a fresh self-signed certificate).
async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    handle: axum_server::Handle,
    https: bool,
) -> Result<tokio::task::JoinHandle<()>, Fail> {
    let svc = router.into_make_service();
    if !https {
        let server = axum_server::from_tcp(listener).handle(handle);
        return Ok(tokio::spawn(async move {
            let _ = server.serve(svc).await;
        }));
    }
    let (cert, key) = super::self_signed::certificate().map_err(Fail)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = axum_server::tls_rustls::RustlsConfig::from_der(vec![cert], key)
        .await
        .map_err(|e| Fail(format!("cannot set up TLS for the callback listener: {e}")))?;
    let server = axum_server::from_tcp_rustls(listener, tls).handle(handle);
    Ok(tokio::spawn(async move {
        let _ = server.serve(svc).await;
    }))
}

/// Best effort: a machine without a browser (or without xdg-open) only gets a note.
fn open_browser(url: &str, err: &mut dyn Write) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        let _ = writeln!(
            err,
            "Could not open a browser ({program}: {e}); open the URL above yourself."
        );
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let doc = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        doc,
    )
        .into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

async fn home_page(State(x): State<Arc<Exchange>>) -> Response {
    page(
        StatusCode::OK,
        "Portcullis example OAuth 2.0 client",
        &format!(
            "<p>This page stands in for your application: it runs the authorization code flow \
             (with PKCE) against the server and shows the tokens it gets.</p>\
             <p><a href=\"{}\">Authorize application</a></p>",
            escape(&x.auth_url)
        ),
    )
}

async fn callback(State(x): State<Arc<Exchange>>, RawQuery(q): RawQuery) -> Response {
    let Some(tx) = x.done.lock().ok().and_then(|mut d| d.take()) else {
        return page(
            StatusCode::GONE,
            "This flow is over",
            "<p>The callback was answered already; run the command again for another flow.</p>",
        );
    };
    let q: HashMap<String, String> = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (verdict, res) = if !get("error").is_empty() {
        let message = format!(
            "Got error: {}: {}{}",
            get("error"),
            get("error_description"),
            match get("error_hint") {
                h if h.is_empty() => String::new(),
                h => format!(" ({h})"),
            }
        );
        let body = format!(
            "<h2>{}</h2><p>{}</p><p>{}</p><p>{}</p>",
            escape(&get("error")),
            escape(&get("error_description")),
            escape(&get("error_hint")),
            escape(&get("error_debug"))
        );
        (
            Err(message),
            page(StatusCode::BAD_REQUEST, "An error occurred", &body),
        )
    } else if get("state") != x.state {
        let message = format!(
            "States do not match. Expected {}, got {}",
            x.state,
            get("state")
        );
        let body = "<p>The callback's state parameter is not the one this flow sent.</p>";
        (
            Err(message),
            page(StatusCode::BAD_REQUEST, "States do not match", body),
        )
    } else {
        match exchange_code(&x, &get("code")).await {
            Ok(t) => {
                let body = format!(
                    "<ul><li>Access Token: <code>{}</code></li><li>Refresh Token: <code>{}</code></li>\
                     <li>Expires in: <code>{}</code></li><li>ID Token: <code>{}</code></li></ul>\
                     <p>The tokens are printed in the terminal too; you can close this page.</p>",
                    escape(&t.access),
                    escape(&t.refresh),
                    escape(&t.expiry),
                    escape(&t.id)
                );
                (Ok(t), page(StatusCode::OK, "Tokens received", &body))
            }
            Err(message) => {
                let body = format!("<p>{}</p>", escape(&message));
                (
                    Err(message),
                    page(
                        StatusCode::BAD_GATEWAY,
                        "Unable to exchange code for token",
                        &body,
                    ),
                )
            }
        }
    };
    let _ = tx.send(verdict).await;
    res
}

/// The code exchange with PKCE, as golang.org/x/oauth2 authenticates: HTTP Basic first, then the
/// credentials in the form if the server refused Basic; a public client sends only its ID.
async fn exchange_code(x: &Exchange, code: &str) -> Result<Tokens, String> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", x.redirect_uri.as_str()),
        ("code_verifier", x.verifier.as_str()),
    ];
    let post = |form: &[(&str, &str)]| x.remote.request_to(Method::POST, &x.token_url).form(form);
    let fail = |e: Fail| format!("Unable to exchange code for token: {}", e.0);
    let reply = match &x.client_secret {
        Some(secret) => {
            let basic =
                post(&form).basic_auth(form_escape(&x.client_id), Some(form_escape(secret)));
            let reply = x.remote.send(basic).await.map_err(fail)?;
            if reply.status == reqwest::StatusCode::UNAUTHORIZED {
                form.push(("client_id", x.client_id.as_str()));
                form.push(("client_secret", secret.as_str()));
                x.remote.send(post(&form)).await.map_err(fail)?
            } else {
                reply
            }
        }
        None => {
            form.push(("client_id", x.client_id.as_str()));
            x.remote.send(post(&form)).await.map_err(fail)?
        }
    };
    if !reply.status.is_success() {
        return Err(fail(reply.failure()));
    }
    let t = reply.json().map_err(fail)?;
    let text = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let access = text("access_token");
    if access.is_empty() {
        return Err("Unable to exchange code for token: the response has no access_token".into());
    }
    let id = match text("id_token") {
        s if s.is_empty() => "<nil>".to_string(),
        s => s,
    };
    Ok(Tokens {
        access,
        refresh: text("refresh_token"),
        id,
        expiry: expiry(t.get("expires_in").and_then(Value::as_i64)),
    })
}

/// Go's `time.RFC1123` of now + expires_in, in UTC (Go's zero time when there is none).
fn expiry(expires_in: Option<i64>) -> String {
    let Some(secs) = expires_in.filter(|s| *s > 0) else {
        return "Mon, 01 Jan 0001 00:00:00 UTC".into();
    };
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] UTC"
    );
    at.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::expiry;

    #[test]
    fn expiry_is_rfc1123() {
        assert_eq!(expiry(None), "Mon, 01 Jan 0001 00:00:00 UTC");
        let e = expiry(Some(3600));
        assert_eq!(e.len(), "Mon, 02 Jan 2006 15:04:05 UTC".len(), "{e}");
        assert!(e.ends_with(" UTC") && e.as_bytes()[3] == b',');
    }
}
