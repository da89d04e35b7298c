//! The `--dev` demo login, consent and logout pages at `/oauth2/fallbacks/{login,consent,logout}`:
//! HTML rendering and thin handlers over `service::dev_ui`. Routed only in development mode;
//! without `--dev` the same paths keep the explanatory pages of `oauth2.rs`.
//!
//! Every page is HTML-escaped, never cached (`no-store`), never framed, and runs under a
//! Content-Security-Policy that allows no script, no remote resource and only its own stylesheet
//! (by hash). The policy has no `form-action`: browsers apply it to the redirects that follow a
//! submission too, and the flow must go on to the client's own redirect URI.
use super::oauth2::escape;
use crate::http::error::{no_store, ApiError};
use crate::http::extract::{AppQuery, Form};
use crate::http::AppState;
use crate::service::dev_ui::{
    ConsentForm, ConsentView, Decision, DevUi, LoginForm, LoginView, LogoutView,
};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/oauth2/fallbacks/login",
            get(dev_login_page).post(dev_login_submit),
        )
        .route(
            "/oauth2/fallbacks/consent",
            get(dev_consent_page).post(dev_consent_submit),
        )
        .route(
            "/oauth2/fallbacks/logout",
            get(dev_logout_page).post(dev_logout_submit),
        )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;\
padding:0 1rem;color:#222}.dev{background:#fff3cd;border:2px solid #c90;padding:.75rem 1rem;\
border-radius:6px}h1{font-size:1.4rem}label{display:block;margin:.5rem 0}\
input[type=text]{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}\
fieldset{border:1px solid #ccc;border-radius:6px}button{font-size:1rem;padding:.4rem 1rem;\
margin:.75rem .5rem 0 0}code{background:#f2f2f2;padding:0 .2rem}";

/// The page's policy: nothing but its own inline stylesheet, named by hash.
fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; \
             frame-ancestors 'none'"
        )
    })
}

fn protect(h: &mut HeaderMap) {
    no_store(h);
    if let Ok(v) = HeaderValue::from_str(content_security_policy()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The challenge is in the URL: do not hand it to anything the page links to.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn html(title: &str, body: &str) -> Response {
    let doc = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} (development)</title><style>{STYLE}</style></head><body>\
         <div class=\"dev\" role=\"note\"><strong>Development aid.</strong> This page is built \
         into <code>portcullis serve --dev</code> for trying OAuth 2.0 flows out: it logs anyone \
         in without a password. Never use <code>--dev</code> in production: set \
         <code>urls.login</code>, <code>urls.consent</code> and <code>urls.logout</code> to \
         your own app.</div><main><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title)
    );
    let mut res = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        doc.into_bytes(),
    )
        .into_response();
    protect(res.headers_mut());
    res
}

/// After a form: on to the flow (303, so the browser follows with GET).
fn see_other(to: &str) -> Response {
    let mut res = match crate::http::error::location(to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(e) => e.into_response(),
    };
    protect(res.headers_mut());
    res
}

fn dev(s: &AppState) -> Result<&Arc<DevUi>, ApiError> {
    s.dev_ui
        .as_ref()
        .ok_or_else(|| ApiError::not_found("The requested resource could not be found"))
}

fn query_challenge(q: &HashMap<String, String>, name: &str) -> Result<String, ApiError> {
    q.get(name)
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Query parameter '{name}' is not defined but should have been."
            ))
        })
}

fn form_challenge(f: &Form, name: &str) -> Result<String, ApiError> {
    match f.0.get(name) {
        "" => Err(ApiError::bad_request(format!(
            "Form field '{name}' is not defined but should have been."
        ))),
        c => Ok(c.to_string()),
    }
}

fn decision(f: &Form) -> Result<Decision, ApiError> {
    match f.0.get("action") {
        "accept" => Ok(Decision::Accept),
        "deny" => Ok(Decision::Deny),
        _ => Err(ApiError::bad_request(
            "Form field 'action' must be 'accept' or 'deny'.",
        )),
    }
}

fn client_label(name: &str, id: &str) -> String {
    if name.is_empty() {
        format!("<strong>{}</strong>", escape(id))
    } else {
        format!(
            "<strong>{}</strong> (client ID <code>{}</code>)",
            escape(name),
            escape(id)
        )
    }
}

fn code_list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|i| format!("<code>{}</code>", escape(i)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        escape(value)
    )
}

fn login_page(v: &LoginView) -> Response {
    let (attrs, note) = match &v.remembered_subject {
        Some(s) => (
            format!("value=\"{}\" readonly", escape(s)),
            "<p>You are still logged in from an earlier visit: continue as this user, or deny.</p>",
        ),
        None => (
            "value=\"\" autofocus".to_string(),
            "<p>Type any username: there is no password in development mode.</p>",
        ),
    };
    let body = format!(
        "<p>{client} asks you to log in.</p><p>Requested scopes: {scopes}</p>{note}\
         <form method=\"post\" action=\"login\">{c}{t}\
         <label for=\"username\">Username</label>\
         <input type=\"text\" id=\"username\" name=\"username\" required maxlength=\"128\" \
         autocomplete=\"username\" {attrs}>\
         <label><input type=\"checkbox\" name=\"remember\" value=\"true\"> Remember me</label>\
         <button type=\"submit\" name=\"action\" value=\"accept\">Log in</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\" formnovalidate>Deny</button>\
         </form>",
        client = client_label(&v.client_name, &v.client_id),
        scopes = code_list(&v.requested_scope),
        c = hidden("login_challenge", &v.challenge),
        t = hidden("csrf_token", &v.csrf),
    );
    html("Log in", &body)
}

fn consent_page(v: &ConsentView) -> Response {
    let scopes: String = v
        .requested_scope
        .iter()
        .map(|s| {
            format!(
                "<label><input type=\"checkbox\" name=\"grant_scope\" value=\"{e}\" checked> \
                 <code>{e}</code></label>",
                e = escape(s)
            )
        })
        .collect();
    let scopes = if scopes.is_empty() {
        "<p>No scopes were requested.</p>".to_string()
    } else {
        format!("<fieldset><legend>Scopes to grant</legend>{scopes}</fieldset>")
    };
    let audience = if v.requested_audience.is_empty() {
        String::new()
    } else {
        format!(
            "<p>Requested audience: {}</p>",
            code_list(&v.requested_audience)
        )
    };
    let remembered = if v.skip {
        "<p>You allowed this before; that decision is remembered.</p>"
    } else {
        ""
    };
    let body = format!(
        "<p>{client} asks for access on behalf of <strong>{subject}</strong>.</p>{remembered}\
         <form method=\"post\" action=\"consent\">{c}{t}{scopes}{audience}\
         <label><input type=\"checkbox\" name=\"remember\" value=\"true\"> Remember this \
         decision</label>\
         <button type=\"submit\" name=\"action\" value=\"accept\">Allow</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>",
        client = client_label(&v.client_name, &v.client_id),
        subject = escape(&v.subject),
        c = hidden("consent_challenge", &v.challenge),
        t = hidden("csrf_token", &v.csrf),
    );
    html("Allow access", &body)
}

fn logout_page(v: &LogoutView) -> Response {
    let who = if v.subject.is_empty() {
        "this browser".to_string()
    } else {
        format!("<strong>{}</strong>", escape(&v.subject))
    };
    let origin = if v.rp_initiated {
        "<p>An application asked to end your session.</p>"
    } else {
        ""
    };
    let body = format!(
        "{origin}<p>Log out {who}?</p><form method=\"post\" action=\"logout\">{c}{t}\
         <button type=\"submit\" name=\"action\" value=\"accept\">Yes, log out</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\">No, stay logged in</button>\
         </form>",
        c = hidden("logout_challenge", &v.challenge),
        t = hidden("csrf_token", &v.csrf),
    );
    html("Log out", &body)
}

async fn dev_login_page(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let challenge = query_challenge(&q, "login_challenge")?;
    Ok(login_page(&dev(&s)?.login(&challenge).await?))
}

async fn dev_login_submit(State(s): State<AppState>, f: Form) -> Result<Response, ApiError> {
    let form = LoginForm {
        challenge: form_challenge(&f, "login_challenge")?,
        csrf: f.0.get("csrf_token").to_string(),
        username: f.0.get("username").to_string(),
        remember: f.0.get("remember") == "true",
        decision: decision(&f)?,
    };
    Ok(see_other(&dev(&s)?.submit_login(form).await?))
}

async fn dev_consent_page(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let challenge = query_challenge(&q, "consent_challenge")?;
    Ok(consent_page(&dev(&s)?.consent(&challenge).await?))
}

async fn dev_consent_submit(State(s): State<AppState>, f: Form) -> Result<Response, ApiError> {
    let form = ConsentForm {
        challenge: form_challenge(&f, "consent_challenge")?,
        csrf: f.0.get("csrf_token").to_string(),
        grant_scope: f.0.all("grant_scope").map(str::to_string).collect(),
        remember: f.0.get("remember") == "true",
        decision: decision(&f)?,
    };
    Ok(see_other(&dev(&s)?.submit_consent(form).await?))
}

async fn dev_logout_page(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let challenge = query_challenge(&q, "logout_challenge")?;
    Ok(logout_page(&dev(&s)?.logout(&challenge).await?))
}

async fn dev_logout_submit(State(s): State<AppState>, f: Form) -> Result<Response, ApiError> {
    let challenge = form_challenge(&f, "logout_challenge")?;
    let decision = decision(&f)?;
    let done = dev(&s)?
        .submit_logout(&challenge, f.0.get("csrf_token"), decision)
        .await?;
    Ok(match done {
        Some(to) => see_other(&to),
        None => html(
            "You are still logged in",
            "<p>The logout was cancelled; your session goes on.</p>",
        ),
    })
}
