//! Extractors that turn every malformed input into Hydra's error shape, never a 500.
use super::error::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json_type && browser_marks(req.headers()) {
            return Err(ApiError::bad_request(
                "The request body must be JSON (Content-Type: application/json).",
            ));
        }
        let body = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => return Err(ApiError::bad_request(e.body_text())),
        };
        // Walk the document once for NUL bytes and over-long ids before it becomes a typed
        // value (PostgreSQL refuses NUL; indexes refuse huge entries).
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(decode_error)?;
        super::guard::check_json(&value)?;
        let mut de = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut de)
            .map(AppJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    decode_error(inner)
                } else {
                    decode_error(format!("{path}: {inner}"))
                }
            })
    }
}

/// Whether a request may come from a web page. A page can send a cross-site "simple" POST
/// (`text/plain` or a form Content-Type) to the unauthenticated admin API without any
/// preflight, so a JSON body under another Content-Type is only decoded when the request
/// carries none of a browser's marks: no `Origin`, and `Sec-Fetch-Site`/`Sec-Fetch-Mode`
/// absent or `same-origin`/`none`. Scripts (`curl -d '{...}'`, which sends a form
/// Content-Type, as Hydra accepts) send neither.
pub fn browser_marks(headers: &axum::http::HeaderMap) -> bool {
    if headers.contains_key(axum::http::header::ORIGIN) {
        return true;
    }
    ["sec-fetch-site", "sec-fetch-mode"].iter().any(|name| {
        headers.get_all(*name).iter().any(|v| {
            !matches!(
                v.to_str().map(|s| s.trim().to_ascii_lowercase()).as_deref(),
                Ok("same-origin" | "none")
            )
        })
    })
}

fn decode_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "Unable to decode the request body: Failed to deserialize the JSON body into the target type: {e}"
    ))
}

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_entity_too_large",
        "The request body exceeds the allowed size.",
    )
}

pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| AppQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request(format!("Invalid query parameters: {}", e.body_text()))
            })
    }
}

/// A `application/x-www-form-urlencoded` body as ordered pairs (duplicates kept).
pub struct Form(pub crate::service::oauth2::types::Params);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            })
            .unwrap_or(false);
        let body = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => return Err(ApiError::bad_request(e.body_text())),
        };
        if !form_type {
            return Ok(Form(Default::default()));
        }
        // Strict decoding: bad escapes, invalid UTF-8, NUL and over-long values are a 400
        // here rather than a U+FFFD or a storage error later.
        Ok(Form(crate::service::oauth2::types::Params(
            super::guard::parse_form(&body, "form")?,
        )))
    }
}

/// HTTP Basic credentials; both parts are form-url-decoded after base64 (RFC 6749 §2.3.1).
pub fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // Strict form decoding: credentials with bad escapes or NUL bytes are no credentials.
    let unescape = |s: &str| {
        super::guard::decode(s.as_bytes(), true, super::guard::MAX_VALUE_BYTES)
            .ok()
            .map(std::borrow::Cow::into_owned)
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// A bearer token from `Authorization: Bearer …`.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}
