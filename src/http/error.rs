//! The only place that picks status codes and bodies for errors: Hydra's
//! `{"error","error_description"}` shape (BEHAVIOR.md §2).
use crate::config::OAuth2 as OAuth2Config;
use crate::oauth2::OAuthError;
use crate::service::clients::ClientsError;
use crate::service::dev_ui::DevUiError;
use crate::service::jwks::JwksError;
use crate::service::oauth2::flows::FlowError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: String,
    pub error_description: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, description: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            error_description: description.into().replace('"', "'"),
        }
    }

    pub fn bad_request(description: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn not_found(description: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "Not Found", description)
    }

    /// Internal failures are logged once and never described to the caller.
    pub fn internal(detail: &str) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The authorization server encountered an unexpected condition that prevented it from fulfilling the request.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        retry_after(&mut res);
        res
    }
}

impl From<ClientsError> for ApiError {
    fn from(e: ClientsError) -> Self {
        match e {
            ClientsError::Invalid(v) => ApiError::new(StatusCode::BAD_REQUEST, v.code(), v.to_string()),
            ClientsError::NotFound => ApiError::not_found("Unable to locate the resource"),
            ClientsError::Conflict => ApiError::new(
                StatusCode::CONFLICT,
                "Unable to insert or update resource because a resource with that value exists already",
                "",
            ),
            ClientsError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The server is hashing too many client secrets at once; retry shortly.",
            ),
            // Storage, encoding and hashing failures: the cause is logged, never sent.
            internal => ApiError::internal(&internal.to_string()),
        }
    }
}

impl From<JwksError> for ApiError {
    fn from(e: JwksError) -> Self {
        match e {
            JwksError::SetNotFound => ApiError::not_found("The requested resource could not be found"),
            JwksError::KeyNotFound => ApiError::new(StatusCode::NOT_FOUND, "Unable to locate the resource", ""),
            JwksError::Conflict => ApiError::new(
                StatusCode::CONFLICT,
                "Unable to insert or update resource because a resource with that value exists already",
                "",
            ),
            JwksError::BadRequest(m) => ApiError::bad_request(m),
            // Storage, sealing, encoding and key failures: the cause is logged, never sent.
            internal => ApiError::internal(&internal.to_string()),
        }
    }
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, &e.name.clone(), e.joined(false))
    }
}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::NotFound => ApiError::not_found("Unable to locate the requested resource"),
            FlowError::Conflict(hint) => ApiError::new(
                StatusCode::CONFLICT,
                "Conflict",
                format!("Unable to process the requested resource because of conflict in the current state. {hint}"),
            ),
            FlowError::BadRequest(m) => ApiError::bad_request(m),
            FlowError::Internal(m) => ApiError::internal(&m),
        }
    }
}

impl From<DevUiError> for ApiError {
    fn from(e: DevUiError) -> Self {
        match e {
            DevUiError::Csrf => ApiError::new(
                StatusCode::FORBIDDEN,
                "request_forbidden",
                "The form's CSRF token is missing or invalid. Go back, reload the page and try again.",
            ),
            DevUiError::BadRequest(m) => ApiError::bad_request(m),
            DevUiError::Flow(f) => f.into(),
        }
    }
}

impl ApiError {
    /// Logout requests answer "not found" in the sqlcon form, as Hydra's do.
    pub fn from_logout(e: FlowError) -> ApiError {
        match e {
            FlowError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "Unable to locate the resource", "")
            }
            other => other.into(),
        }
    }

    /// A plain request that no trusted TLS terminator forwarded (x/tls_termination.go).
    pub fn untrusted_termination() -> ApiError {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "Bad Gateway",
            "The request was neither made over HTTPS nor forwarded as HTTPS by a trusted TLS terminator (serve.tls.allow_termination_from).",
        )
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, as fosite sends on token responses.
pub fn no_store(h: &mut axum::http::HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A JSON body the way fosite writes token-endpoint answers.
pub fn oauth_json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    no_store(h);
    res
}

/// An OAuth error at the token, revocation and userinfo endpoints (fosite's writer), legacy
/// fields and debug text as configured.
pub fn oauth_error(cfg: &OAuth2Config, e: &OAuthError) -> Response {
    let body = e.body(cfg.include_legacy_error_fields, cfg.expose_internal_errors);
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = oauth_json(status, body.to_string().into_bytes());
    retry_after(&mut res);
    res
}

/// Overload answers (503, 429) tell the client when to come back (RFC 9110 §10.2.3).
fn retry_after(res: &mut Response) {
    if matches!(
        res.status(),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
    ) {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
}

/// Userinfo errors also carry `WWW-Authenticate` (RFC 6750 §3, Hydra's field layout).
pub fn userinfo_error(cfg: &OAuth2Config, e: &OAuthError) -> Response {
    let mut res = oauth_error(cfg, e);
    let challenge = format!(
        "error={},error_description={},error_hint={}",
        e.name,
        e.description.replace('"', "'"),
        e.hint.replace('"', "'")
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}
