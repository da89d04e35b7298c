//! `token client|user|introspect|revoke|flush|delete`: token operations against the public and
//! admin APIs, with the output of Hydra v1.9.2's `hydra token` (cmd/cli/handler_token.go,
//! handler_introspection.go, cmd/token_client.go). `token user` lives in `token_user.rs`.
use super::output::{go_json, shape, INTROSPECTION};
use super::remote::{form_escape, line, list, with_json, Api, Fail, Outcome, Remote, RemoteFlags};
use clap::{ArgAction, Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write;

#[derive(Args, Debug)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    remote: RemoteFlags,
    #[command(subcommand)]
    cmd: TokenCmd,
}

#[derive(Args, Debug)]
pub(super) struct ClientCredentials {
    /// OAuth 2.0 client ID.
    #[arg(long = "client-id", env = "OAUTH2_CLIENT_ID")]
    pub(super) client_id: Option<String>,
    /// OAuth 2.0 client secret.
    #[arg(
        long = "client-secret",
        env = "OAUTH2_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub(super) client_secret: Option<String>,
}

impl ClientCredentials {
    fn required(&self) -> Result<(String, String), Fail> {
        match (self.client_id.as_deref(), self.client_secret.as_deref()) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                Ok((id.to_string(), secret.to_string()))
            }
            _ => Err(Fail(
                "client credentials missing: pass --client-id and --client-secret, or set \
                 OAUTH2_CLIENT_ID and OAUTH2_CLIENT_SECRET"
                    .into(),
            )),
        }
    }
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// Get an access token with the client_credentials grant (public API) and print it.
    Client {
        #[command(flatten)]
        creds: ClientCredentials,
        /// Scopes to request (repeat or comma-separate).
        #[arg(long, action = ArgAction::Append)]
        scope: Vec<String>,
        /// Audiences to request (repeat or comma-separate).
        #[arg(long, action = ArgAction::Append)]
        audience: Vec<String>,
        /// Print the whole token response as JSON instead of the bare access token.
        #[arg(short = 'v', long)]
        verbose: bool,
    },
    /// An example OAuth 2.0 client: runs the authorization code flow (with PKCE) through a
    /// browser, with a callback listener on 127.0.0.1, and prints the tokens. For manual tests
    /// and demos only.
    User(Box<super::token_user::UserArgs>),
    /// Introspect a token (admin API) and print the result as JSON.
    Introspect {
        /// The token. It may start with `-` (tokens are base64url), so it is never read as a flag.
        #[arg(allow_hyphen_values = true)]
        token: String,
        /// Scopes the token must have been granted.
        #[arg(long, action = ArgAction::Append)]
        scope: Vec<String>,
        /// Ignored (introspection on the admin API takes no client credentials).
        #[arg(long = "client-id", hide = true)]
        client_id: Option<String>,
        /// Ignored (introspection on the admin API takes no client credentials).
        #[arg(long = "client-secret", hide = true)]
        client_secret: Option<String>,
    },
    /// Revoke an access or refresh token (public API, authenticated as its client).
    Revoke {
        /// The token. It may start with `-` (tokens are base64url), so it is never read as a flag.
        #[arg(allow_hyphen_values = true)]
        token: String,
        #[command(flatten)]
        creds: ClientCredentials,
    },
    /// Remove inactive (expired) access tokens from the database (admin API).
    Flush {
        /// Keep tokens younger than this (e.g. 1h, 30m, 1h30m).
        #[arg(long = "min-age", default_value = "0s")]
        min_age: String,
    },
    /// Delete all access tokens of a client (admin API).
    Delete {
        /// The client whose access tokens are deleted.
        #[arg(long = "client-id", env = "OAUTH2_CLIENT_ID")]
        client_id: Option<String>,
    },
}

pub(crate) async fn run(args: TokenArgs, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let flags = &args.remote;
    match &args.cmd {
        TokenCmd::Client {
            creds,
            scope,
            audience,
            verbose,
        } => client_token(flags, creds, scope, audience, *verbose, out).await,
        TokenCmd::User(user) => super::token_user::run(user, flags, out, err).await,
        TokenCmd::Introspect {
            token,
            scope,
            client_id,
            client_secret,
        } => {
            if client_id.is_some() || client_secret.is_some() {
                writeln!(
                    err,
                    "Note: --client-id and --client-secret are ignored; the admin API's \
                     introspection endpoint takes no client credentials."
                )?;
            }
            introspect(flags, token, scope, out).await
        }
        TokenCmd::Revoke { token, creds } => revoke(flags, token, creds, out).await,
        TokenCmd::Flush { min_age } => flush(flags, min_age, out).await,
        TokenCmd::Delete { client_id } => delete_tokens(flags, client_id.as_deref(), out).await,
    }
}

/// `token client`: a client-credentials token, bare or (`--verbose`) the whole response.
async fn client_token(
    flags: &RemoteFlags,
    creds: &ClientCredentials,
    scope: &[String],
    audience: &[String],
    verbose: bool,
    out: &mut dyn Write,
) -> Outcome {
    let (id, secret) = creds.required()?;
    let remote = Remote::connect(flags, Api::Public)?;
    let scope = list(scope).join(" ");
    let audience = list(audience).join(" ");
    let token = client_credentials(&remote, &id, &secret, &scope, &audience).await?;
    if verbose {
        return line(out, &go_json(&token));
    }
    let access = token
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| Fail("the token response has no access_token".into()))?;
    line(out, access)
}

async fn introspect(
    flags: &RemoteFlags,
    token: &str,
    scope: &[String],
    out: &mut dyn Write,
) -> Outcome {
    let remote = Remote::connect(flags, Api::Admin)?;
    let mut form = vec![("token", token.to_string())];
    let scope = list(scope).join(" ");
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    let rb = remote
        .request(Method::POST, "/oauth2/introspect")
        .form(&form);
    let result = remote.expect(rb, &[200]).await?.json()?;
    line(out, &go_json(&shape(&result, INTROSPECTION)))
}

async fn revoke(
    flags: &RemoteFlags,
    token: &str,
    creds: &ClientCredentials,
    out: &mut dyn Write,
) -> Outcome {
    let (id, secret) = creds.required()?;
    let remote = Remote::connect(flags, Api::Public)?;
    let rb = remote
        .request_anonymous(Method::POST, "/oauth2/revoke")
        .basic_auth(form_escape(&id), Some(form_escape(&secret)))
        .form(&[("token", token)]);
    remote.expect(rb, &[200]).await?;
    line(out, &format!("Revoked OAuth 2.0 Access Token: {token}"))
}

async fn flush(flags: &RemoteFlags, min_age: &str, out: &mut dyn Write) -> Outcome {
    let age = parse_duration(min_age)?;
    let remote = Remote::connect(flags, Api::Admin)?;
    let not_after = time::OffsetDateTime::now_utc() - age;
    let stamp = not_after
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Fail(format!("cannot format the flush time: {e}")))?;
    let rb = with_json(
        remote.request(Method::POST, "/oauth2/flush"),
        &json!({"notAfter": stamp}),
    );
    remote.expect(rb, &[204]).await?;
    line(out, "Successfully flushed inactive access tokens")
}

async fn delete_tokens(
    flags: &RemoteFlags,
    client_id: Option<&str>,
    out: &mut dyn Write,
) -> Outcome {
    let id = client_id.filter(|c| !c.is_empty()).ok_or_else(|| {
        Fail("client ID missing: pass --client-id or set OAUTH2_CLIENT_ID".into())
    })?;
    let remote = Remote::connect(flags, Api::Admin)?;
    let rb = remote
        .request(Method::DELETE, "/oauth2/tokens")
        .query(&[("client_id", id)]);
    remote.expect(rb, &[204]).await?;
    line(
        out,
        &format!("Successfully deleted access tokens for client {id}"),
    )
}

/// Go-style durations: "0", "90s", "15m", "1h30m", "1.5h" (and humantime's spellings).
fn parse_duration(s: &str) -> Result<time::Duration, Fail> {
    let bad = || {
        Fail(format!(
            "invalid --min-age {s:?}: use a duration such as 30m or 1h"
        ))
    };
    let t = s.trim();
    if t == "0" {
        return Ok(time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => {
                return humantime::parse_duration(t)
                    .ok()
                    .and_then(|d| time::Duration::try_from(d).ok())
                    .ok_or_else(bad)
            }
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Ok(time::Duration::seconds_f64(total))
}

/// The client_credentials grant as golang.org/x/oauth2/clientcredentials performs it: HTTP
/// Basic first, then the credentials in the form body if the server refused Basic.
async fn client_credentials(
    remote: &Remote,
    id: &str,
    secret: &str,
    scope: &str,
    audience: &str,
) -> Result<Value, Fail> {
    let mut form = vec![("grant_type", "client_credentials"), ("audience", audience)];
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    let basic = remote
        .request_anonymous(Method::POST, "/oauth2/token")
        .basic_auth(form_escape(id), Some(form_escape(secret)))
        .form(&form);
    let mut reply = remote.send(basic).await?;
    if !reply.status.is_success() {
        let mut in_body = form.clone();
        in_body.push(("client_id", id));
        in_body.push(("client_secret", secret));
        let post = remote
            .request_anonymous(Method::POST, "/oauth2/token")
            .form(&in_body);
        reply = remote.send(post).await?;
    }
    if !reply.status.is_success() {
        return Err(Fail(format!(
            "could not get an access token: the server answered {}:\n{}",
            reply.status, reply.body
        )));
    }
    reply.json()
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("0").ok(), Some(time::Duration::ZERO));
        assert_eq!(
            parse_duration("1h30m").ok(),
            Some(time::Duration::seconds(5400))
        );
        assert_eq!(
            parse_duration("1.5h").ok(),
            Some(time::Duration::seconds(5400))
        );
        assert!(parse_duration("soon").is_err());
    }
}
