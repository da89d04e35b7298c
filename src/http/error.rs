//! The only place that picks status codes and bodies for errors: Hydra's
//! `{"error","error_description"}` shape (BEHAVIOR.md §2).
use crate::service::clients::ClientsError;
use crate::service::jwks::JwksError;
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
            ClientsError::Internal(m) => ApiError::internal(&m),
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
            JwksError::Internal(m) => ApiError::internal(&m),
        }
    }
}
