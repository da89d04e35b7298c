//! Admin endpoints of the login/consent flow: login, consent and logout requests, and the
//! consent and login sessions of a subject. Token administration is in `tokens.rs`.
use crate::domain::client::Client;
use crate::domain::flow::{Denial, Flow, OidcContext};
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AppQuery};
use crate::http::AppState;
use crate::service::oauth2::flows::{AcceptConsent, AcceptLogin};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth2/auth/requests/login", get(get_login_request))
        .route(
            "/oauth2/auth/requests/login/accept",
            put(accept_login_request),
        )
        .route(
            "/oauth2/auth/requests/login/reject",
            put(reject_login_request),
        )
        .route("/oauth2/auth/requests/consent", get(get_consent_request))
        .route(
            "/oauth2/auth/requests/consent/accept",
            put(accept_consent_request),
        )
        .route(
            "/oauth2/auth/requests/consent/reject",
            put(reject_consent_request),
        )
        .route("/oauth2/auth/requests/logout", get(get_logout_request))
        .route(
            "/oauth2/auth/requests/logout/accept",
            put(accept_logout_request),
        )
        .route(
            "/oauth2/auth/requests/logout/reject",
            put(reject_logout_request),
        )
        .route(
            "/oauth2/auth/sessions/consent",
            get(list_subject_consent_sessions).delete(revoke_consent_sessions),
        )
        .route(
            "/oauth2/auth/sessions/login",
            delete(revoke_authentication_session),
        )
}

/// `login_challenge` / `consent_challenge`, or Hydra's older `challenge`.
fn challenge(q: &HashMap<String, String>, name: &str) -> Result<String, ApiError> {
    q.get(name)
        .or_else(|| q.get("challenge"))
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Query parameter '{name}' is not defined but should have been."
            ))
        })
}

/// loginRequest.
#[derive(Serialize)]
struct LoginRequest<'a> {
    challenge: &'a str,
    client: &'a Client,
    oidc_context: &'a OidcContext,
    request_url: &'a str,
    requested_access_token_audience: &'a [String],
    requested_scope: &'a [String],
    session_id: &'a str,
    skip: bool,
    subject: &'a str,
}

/// consentRequest.
#[derive(Serialize)]
struct ConsentRequest<'a> {
    acr: &'a str,
    challenge: &'a str,
    client: &'a Client,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a Value>,
    login_challenge: &'a str,
    login_session_id: &'a str,
    oidc_context: &'a OidcContext,
    request_url: &'a str,
    requested_access_token_audience: &'a [String],
    requested_scope: &'a [String],
    skip: bool,
    subject: &'a str,
}

fn completed(redirect_to: String) -> Json<Value> {
    Json(json!({ "redirect_to": redirect_to }))
}

async fn get_login_request(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (flow, client) = s
        .oauth2
        .get_login_request(&challenge(&q, "login_challenge")?)
        .await?;
    Ok(Json(LoginRequest {
        challenge: &flow.login_challenge,
        client: &client,
        oidc_context: &flow.oidc_context,
        request_url: &flow.request_url,
        requested_access_token_audience: &flow.requested_audience,
        requested_scope: &flow.requested_scope,
        session_id: &flow.login_session_id,
        skip: flow.login_skip,
        subject: &flow.subject,
    })
    .into_response())
}

/// acceptLoginRequest; unknown fields are refused (Hydra decodes with DisallowUnknownFields).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AcceptLoginBody {
    subject: Option<String>,
    remember: Option<bool>,
    remember_for: Option<i64>,
    acr: Option<String>,
    context: Option<Value>,
    force_subject_identifier: Option<String>,
}

async fn accept_login_request(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
    AppJson(b): AppJson<AcceptLoginBody>,
) -> Result<Json<Value>, ApiError> {
    let c = challenge(&q, "login_challenge")?;
    let to = s
        .oauth2
        .accept_login(
            &c,
            AcceptLogin {
                subject: b.subject.unwrap_or_default(),
                remember: b.remember.unwrap_or(false),
                remember_for: b.remember_for.unwrap_or(0),
                acr: b.acr.unwrap_or_default(),
                context: b.context.unwrap_or(Value::Null),
                force_subject_identifier: b.force_subject_identifier.unwrap_or_default(),
            },
        )
        .await?;
    Ok(completed(to))
}

/// rejectRequest.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RejectBody {
    error: Option<String>,
    error_description: Option<String>,
    error_hint: Option<String>,
    error_debug: Option<String>,
    status_code: Option<i64>,
}

impl RejectBody {
    fn denial(self) -> Denial {
        Denial {
            error: self.error.unwrap_or_default(),
            error_description: self.error_description.unwrap_or_default(),
            error_hint: self.error_hint.unwrap_or_default(),
            error_debug: self.error_debug.unwrap_or_default(),
            status_code: self
                .status_code
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..600).contains(c))
                .unwrap_or(0),
        }
    }
}

async fn reject_login_request(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
    AppJson(b): AppJson<RejectBody>,
) -> Result<Json<Value>, ApiError> {
    let c = challenge(&q, "login_challenge")?;
    Ok(completed(s.oauth2.reject_login(&c, b.denial()).await?))
}

fn consent_view<'a>(flow: &'a Flow, client: &'a Client) -> ConsentRequest<'a> {
    let login = flow.login.as_ref();
    let context = login
        .map(|l| &l.context)
        .filter(|c| c.as_object().is_some_and(|m| !m.is_empty()));
    ConsentRequest {
        acr: login.map(|l| l.acr.as_str()).unwrap_or(""),
        challenge: &flow.consent_challenge,
        client,
        context,
        login_challenge: &flow.login_challenge,
        login_session_id: &flow.login_session_id,
        oidc_context: &flow.oidc_context,
        request_url: &flow.request_url,
        requested_access_token_audience: &flow.requested_audience,
        requested_scope: &flow.requested_scope,
        skip: flow.consent_skip,
        subject: &flow.subject,
    }
}

async fn get_consent_request(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (flow, client) = s
        .oauth2
        .get_consent_request(&challenge(&q, "consent_challenge")?)
        .await?;
    Ok(Json(consent_view(&flow, &client)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ConsentSessionBody {
    access_token: Option<Map<String, Value>>,
    id_token: Option<Map<String, Value>>,
}

/// acceptConsentRequest; `handled_at` is accepted and replaced with the server's time.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AcceptConsentBody {
    grant_scope: Option<Vec<String>>,
    grant_access_token_audience: Option<Vec<String>>,
    session: Option<ConsentSessionBody>,
    remember: Option<bool>,
    remember_for: Option<i64>,
    #[allow(dead_code)]
    handled_at: Option<Value>,
}

async fn accept_consent_request(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
    AppJson(b): AppJson<AcceptConsentBody>,
) -> Result<Json<Value>, ApiError> {
    let c = challenge(&q, "consent_challenge")?;
    let session = b.session.unwrap_or_default();
    let to = s
        .oauth2
        .accept_consent(
            &c,
            AcceptConsent {
                grant_scope: b.grant_scope.unwrap_or_default(),
                grant_access_token_audience: b.grant_access_token_audience.unwrap_or_default(),
                access_token: session.access_token.unwrap_or_default(),
                id_token: session.id_token.unwrap_or_default(),
                remember: b.remember.unwrap_or(false),
                remember_for: b.remember_for.unwrap_or(0),
            },
        )
        .await?;
    Ok(completed(to))
}

async fn reject_consent_request(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
    AppJson(b): AppJson<RejectBody>,
) -> Result<Json<Value>, ApiError> {
    let c = challenge(&q, "consent_challenge")?;
    Ok(completed(s.oauth2.reject_consent(&c, b.denial()).await?))
}

fn subject_param(q: &HashMap<String, String>) -> Result<String, ApiError> {
    q.get("subject")
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request("Query parameter 'subject' is not defined but should have been.")
        })
}

/// PreviousConsentSession.
#[derive(Serialize)]
struct PreviousConsentSession<'a> {
    consent_request: ConsentRequest<'a>,
    grant_access_token_audience: &'a [String],
    grant_scope: &'a [String],
    handled_at: String,
    remember: bool,
    remember_for: i64,
    session: Value,
}

async fn list_subject_consent_sessions(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let subject = subject_param(&q)?;
    let page = super::Page {
        limit: q.get("limit").cloned(),
        offset: q.get("offset").cloned(),
    };
    let (limit, offset) = super::parse_page(&page)?;
    let (page, total) = s.oauth2.consent_sessions(&subject, limit, offset).await?;
    let mut out = Vec::with_capacity(page.len());
    for (f, client) in &page {
        let Some(c) = &f.consent else { continue };
        out.push(PreviousConsentSession {
            consent_request: consent_view(f, client),
            grant_access_token_audience: &c.grant_access_token_audience,
            grant_scope: &c.grant_scope,
            handled_at: time::OffsetDateTime::from_unix_timestamp(c.handled_at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
            remember: c.remember,
            remember_for: c.remember_for,
            session: json!({"access_token": c.access_token_claims, "id_token": c.id_token_claims}),
        });
    }
    // Hydra sends no pagination headers for an empty list.
    if total == 0 {
        return Ok(Json(out).into_response());
    }
    let headers = super::pagination_headers("/oauth2/auth/sessions/consent", limit, offset, total);
    Ok((headers, Json(out)).into_response())
}

async fn revoke_consent_sessions(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let subject = subject_param(&q)?;
    // Hydra compares with "true" exactly, but its own Python SDK sends "True": accept both.
    let all = q.get("all").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let client = q.get("client").filter(|c| !c.is_empty());
    if !all && client.is_none() {
        return Err(ApiError::bad_request(
            "Query parameter 'client' or 'all=true' must be set.",
        ));
    }
    let client = if all {
        None
    } else {
        client.map(String::as_str)
    };
    s.oauth2.revoke_consent_sessions(&subject, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_authentication_session(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let subject = subject_param(&q)?;
    s.oauth2.revoke_login_sessions(&subject).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// logoutRequest.
async fn get_logout_request(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let l = s
        .oauth2
        .get_logout_request(&challenge(&q, "logout_challenge")?)
        .await
        .map_err(ApiError::from_logout)?;
    Ok(Json(json!({
        "request_url": l.request_url,
        "rp_initiated": l.rp_initiated,
        "sid": l.sid,
        "subject": l.subject,
    })))
}

async fn accept_logout_request(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let c = challenge(&q, "logout_challenge")?;
    Ok(completed(
        s.oauth2
            .accept_logout(&c)
            .await
            .map_err(ApiError::from_logout)?,
    ))
}

/// Always 204 (Hydra does not check that the request exists).
async fn reject_logout_request(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let c = challenge(&q, "logout_challenge")?;
    s.oauth2.reject_logout(&c).await?;
    Ok(StatusCode::NO_CONTENT)
}
