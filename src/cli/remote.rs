//! HTTP plumbing shared by the remote commands (`clients`, `keys`, `token`): which server to
//! call, TLS options, the optional bearer token, and turning failures into exit code 1.
use clap::Args;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use std::io::Write;

/// A command failure: the message goes to stderr and the process exits with 1 (cmdx.Must).
#[derive(Debug)]
pub(crate) struct Fail(pub(crate) String);

pub(crate) type Outcome = Result<(), Fail>;

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Self {
        Fail(format!("cannot write output: {e}"))
    }
}

/// Writes one line to `out`.
pub(crate) fn line(out: &mut dyn Write, text: &str) -> Outcome {
    writeln!(out, "{text}")?;
    Ok(())
}

/// Connection flags every remote command group accepts (Hydra's persistent flags).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct RemoteFlags {
    /// Server URL. Defaults to $HYDRA_ADMIN_URL (admin commands) or $HYDRA_URL (public
    /// commands: token client, token user, token revoke); $PORTCULLIS_ADMIN_URL /
    /// $PORTCULLIS_URL also work.
    #[arg(long, global = true)]
    pub(crate) endpoint: Option<String>,
    /// Accept TLS certificates signed by unknown authorities.
    #[arg(long = "skip-tls-verify", global = true, num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true")]
    pub(crate) skip_tls_verify: bool,
    /// Send "X-Forwarded-Proto: https" with every request.
    #[arg(long = "fake-tls-termination", global = true, num_args = 0..=1, require_equals = true,
          default_value_t = false, default_missing_value = "true")]
    pub(crate) fake_tls_termination: bool,
    /// Bearer token for the Authorization header of admin requests.
    #[arg(
        long = "access-token",
        env = "OAUTH2_ACCESS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub(crate) access_token: Option<String>,
    /// Accepted for Hydra compatibility; requests are not retried.
    #[arg(long = "fail-after", global = true, hide = true)]
    pub(crate) fail_after: Option<String>,
}

/// Which listener a command talks to; decides the endpoint's environment defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    Admin,
    Public,
}

/// A configured HTTP client bound to one base URL.
pub(crate) struct Remote {
    base: String,
    http: reqwest::Client,
    fake_tls: bool,
    bearer: Option<String>,
}

/// A response read to the end.
pub(crate) struct Reply {
    pub(crate) status: reqwest::StatusCode,
    pub(crate) body: String,
}

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

impl Remote {
    pub(crate) fn connect(flags: &RemoteFlags, api: Api) -> Result<Remote, Fail> {
        Remote::with_base(flags, &Remote::base_url(flags, api)?)
    }

    /// The server URL: `--endpoint`, else the API's environment variables.
    pub(crate) fn base_url(flags: &RemoteFlags, api: Api) -> Result<String, Fail> {
        let chosen = flags.endpoint.clone().filter(|e| !e.is_empty());
        chosen
            .or_else(|| match api {
                Api::Admin => env_first(&[
                    "HYDRA_ADMIN_URL",
                    "PORTCULLIS_ADMIN_URL",
                    "HYDRA_URL",
                    "PORTCULLIS_URL",
                ]),
                Api::Public => env_first(&["HYDRA_URL", "PORTCULLIS_URL"]),
            })
            .ok_or_else(|| {
                let env = match api {
                    Api::Admin => "HYDRA_ADMIN_URL",
                    Api::Public => "HYDRA_URL",
                };
                Fail(format!(
                    "no server URL given: pass --endpoint or set {env} to the URL of the {} API",
                    match api {
                        Api::Admin => "admin",
                        Api::Public => "public",
                    }
                ))
            })
    }

    /// A client for `base` with the TLS and header options of `flags`.
    pub(crate) fn with_base(flags: &RemoteFlags, base: &str) -> Result<Remote, Fail> {
        let base = base.trim_end_matches('/').to_string();
        match url::Url::parse(&base) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            Ok(u) => {
                return Err(Fail(format!(
                    "unsupported endpoint scheme {:?} in {base}: use http or https",
                    u.scheme()
                )))
            }
            Err(e) => return Err(Fail(format!("cannot parse endpoint URL {base:?}: {e}"))),
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(flags.skip_tls_verify)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Fail(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Remote {
            base,
            http,
            fake_tls: flags.fake_tls_termination,
            bearer: flags.access_token.clone().filter(|t| !t.is_empty()),
        })
    }

    /// A request to `path` (appended to the base URL, which may carry a path prefix).
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if self.fake_tls {
            rb = rb.header("X-Forwarded-Proto", "https");
        }
        if let Some(t) = &self.bearer {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) {
                rb = rb.header(AUTHORIZATION, v);
            }
        }
        rb
    }

    /// The absolute URL of `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to an absolute URL, without the bearer token.
    pub(crate) fn request_to(&self, method: Method, url: &str) -> RequestBuilder {
        let mut rb = self.http.request(method, url);
        if self.fake_tls {
            rb = rb.header("X-Forwarded-Proto", "https");
        }
        rb
    }

    /// A request without the bearer token (public endpoints authenticate the client instead).
    pub(crate) fn request_anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if self.fake_tls {
            rb = rb.header("X-Forwarded-Proto", "https");
        }
        rb
    }

    pub(crate) async fn send(&self, rb: RequestBuilder) -> Result<Reply, Fail> {
        let res = rb
            .send()
            .await
            .map_err(|e| Fail(format!("request to {} failed: {e}", self.base)))?;
        let status = res.status();
        let body = res
            .text()
            .await
            .map_err(|e| Fail(format!("cannot read the response from {}: {e}", self.base)))?;
        Ok(Reply { status, body })
    }

    /// Sends and insists on one of the `ok` statuses.
    pub(crate) async fn expect(&self, rb: RequestBuilder, ok: &[u16]) -> Result<Reply, Fail> {
        let reply = self.send(rb).await?;
        if ok.contains(&reply.status.as_u16()) {
            Ok(reply)
        } else {
            Err(reply.failure())
        }
    }
}

/// Attaches a JSON body.
pub(crate) fn with_json(rb: RequestBuilder, body: &Value) -> RequestBuilder {
    rb.header(CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

impl Reply {
    pub(crate) fn json(&self) -> Result<Value, Fail> {
        serde_json::from_str(&self.body).map_err(|e| {
            Fail(format!(
                "the server sent a response that is not JSON ({e}):\n{}",
                self.body
            ))
        })
    }

    /// The error for an unexpected status, with the (pretty-printed) body.
    pub(crate) fn failure(&self) -> Fail {
        let body = serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| self.body.clone());
        Fail(format!(
            "the request failed: the server answered {}:\n{body}",
            self.status
        ))
    }
}

/// Go's `url.QueryEscape`, used by golang.org/x/oauth2 on Basic-auth credentials (RFC 6749 §2.3.1).
pub(crate) fn form_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Flattens repeated and comma-separated list flags, dropping empty items (pflag StringSlice).
pub(crate) fn list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}
