//! The edge guard: refuses input no store can hold (NUL bytes, invalid UTF-8, bad
//! percent-encoding, over-long values) before any handler runs, bounds every request in time, and
//! turns the few plain-text rejections left in axum into Hydra's JSON error shape.
//!
//! PostgreSQL refuses NUL in `text` and its B-tree indexes refuse entries over ~2.7 kB, so either
//! would surface as a storage error (500) if it reached SQL; refused here, it is a 400.
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::borrow::Cow;
use std::time::Duration;

/// Longest request target accepted; longer ones get 414 (Go's net/http, which Hydra uses,
/// bounds the whole head at 1 MB; we stay well below hyper's own 64 kB URI limit).
pub const MAX_URI_BYTES: usize = 32 * 1024;
/// Longest path segment: an id longer than this cannot exist (ids are indexed columns).
pub const MAX_SEGMENT_BYTES: usize = 1024;
/// Longest decoded query or form value (signed request objects and hints fit easily).
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Longest JSON string member that names an indexed id (client_id, subject, kid, …).
pub const MAX_ID_BYTES: usize = 1024;
/// Largest sum of header names and values; larger heads get 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Why a value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    Encoding,
    Utf8,
    Nul,
    TooLong,
}

impl Bad {
    fn describe(self, what: &str) -> String {
        match self {
            Bad::Encoding => format!("The {what} contains an invalid percent-encoding."),
            Bad::Utf8 => format!("The {what} is not valid UTF-8."),
            Bad::Nul => format!("The {what} contains a NUL byte."),
            Bad::TooLong => format!("The {what} is too long."),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes strictly: every `%` must start a two-digit escape, the result must be UTF-8
/// without NUL, and at most `max` bytes. `plus` decodes `+` as a space (form encoding).
pub fn decode(raw: &[u8], plus: bool, max: usize) -> Result<Cow<'_, str>, Bad> {
    if !raw.iter().any(|&b| b == b'%' || (plus && b == b'+')) {
        let s = std::str::from_utf8(raw).map_err(|_| Bad::Utf8)?;
        if s.contains('\0') {
            return Err(Bad::Nul);
        }
        if s.len() > max {
            return Err(Bad::TooLong);
        }
        return Ok(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex);
                let lo = raw.get(i + 2).copied().and_then(hex);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(Bad::Encoding),
                }
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let s = String::from_utf8(out).map_err(|_| Bad::Utf8)?;
    if s.contains('\0') {
        return Err(Bad::Nul);
    }
    if s.len() > max {
        return Err(Bad::TooLong);
    }
    Ok(Cow::Owned(s))
}

/// Decodes an `application/x-www-form-urlencoded` string into ordered pairs, strictly.
pub fn parse_form(raw: &[u8], what: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs = Vec::new();
    for part in raw.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|&b| b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        let k = decode(k, true, MAX_VALUE_BYTES)
            .map_err(|e| ApiError::bad_request(e.describe(&format!("{what} parameter name"))))?;
        let v = decode(v, true, MAX_VALUE_BYTES).map_err(|e| {
            ApiError::bad_request(e.describe(&format!("{what} parameter `{}`", printable(&k))))
        })?;
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Ok(pairs)
}

/// Names in error text stay printable and short.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Checks the request target: length, path segments, query pairs.
pub fn check_uri(uri: &Uri) -> Result<(), ApiError> {
    let target = uri.path_and_query().map_or("", |p| p.as_str());
    if target.len() > MAX_URI_BYTES {
        return Err(uri_too_long());
    }
    for seg in uri.path().split('/') {
        match decode(seg.as_bytes(), false, MAX_SEGMENT_BYTES) {
            Ok(_) => {}
            Err(Bad::TooLong) => {
                return Err(ApiError::not_found(
                    "The requested resource could not be found",
                ))
            }
            Err(e) => return Err(ApiError::bad_request(e.describe("request path"))),
        }
    }
    if let Some(q) = uri.query() {
        parse_form(q.as_bytes(), "query")?;
    }
    Ok(())
}

pub fn uri_too_long() -> ApiError {
    ApiError::new(
        StatusCode::URI_TOO_LONG,
        "invalid_request",
        "The request URI is too long.",
    )
}

pub fn headers_too_large() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "invalid_request",
        "The request header fields are too large.",
    )
}

/// Walks a JSON document: no NUL in any key or string, id-like members bounded.
pub fn check_json(v: &Value) -> Result<(), ApiError> {
    fn walk(v: &Value, key: &str, depth: usize) -> Result<(), String> {
        if depth > 64 {
            return Err("The JSON document is nested too deeply.".into());
        }
        match v {
            Value::String(s) => {
                if s.contains('\0') {
                    return Err(format!(
                        "The JSON member `{}` contains a NUL byte.",
                        printable(key)
                    ));
                }
                if is_id_member(key) && s.len() > MAX_ID_BYTES {
                    return Err(format!("The JSON member `{}` is too long.", printable(key)));
                }
            }
            Value::Array(items) => {
                for i in items {
                    walk(i, key, depth + 1)?;
                }
            }
            Value::Object(map) => {
                for (k, child) in map {
                    if k.contains('\0') {
                        return Err("A JSON member name contains a NUL byte.".into());
                    }
                    walk(child, k, depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    walk(v, "", 0).map_err(ApiError::bad_request)
}

/// Members stored in indexed columns (client id, subjects, key ids, sessions).
fn is_id_member(key: &str) -> bool {
    matches!(
        key,
        "client_id" | "subject" | "kid" | "set" | "session_id" | "sid" | "login_session_id"
    )
}

/// Per-request guard on both listeners: refuses bad targets and oversized heads in JSON, bounds
/// the request's run time, and re-shapes plain-text rejections as JSON errors.
pub async fn guard(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    if let Err(e) = check_uri(req.uri()) {
        return e.into_response();
    }
    let head: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if head > MAX_HEADER_BYTES {
        return headers_too_large().into_response();
    }
    // Generating an RSA-4096 key set is CPU work that takes seconds on a busy machine, not a
    // sign of a stuck database: it gets a longer deadline.
    let limit =
        if req.method() == axum::http::Method::POST && req.uri().path().starts_with("/keys/") {
            limits.request_timeout.max(KEY_GENERATION_TIMEOUT)
        } else {
            limits.request_timeout
        };
    let res = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            // Typically a database that stopped answering: fail in bounded time instead of
            // holding the client (issue: survive database faults).
            tracing::warn!(timeout_ms = limit.as_millis() as u64, "request timed out");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The authorization server is currently unable to handle the request: it did not complete in time.",
            )
            .into_response();
        }
    };
    if res.status().is_client_error() || res.status().is_server_error() {
        return json_shaped(res).await;
    }
    res
}

/// The least time `POST /keys/{set}` (key generation) is given.
const KEY_GENERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Time limits the guard applies (from `serve.request_timeout`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub request_timeout: Duration,
}

/// axum's own rejections (path, query, media type) are plain text: give them Hydra's shape.
async fn json_shaped(res: Response) -> Response {
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !plain {
        return res;
    }
    let status = res.status();
    let text = match axum::body::to_bytes(res.into_body(), 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let name = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request"
    };
    ApiError::new(status, name, text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding() {
        assert_eq!(decode(b"a%20b+c", true, 100).unwrap(), "a b c");
        assert_eq!(decode(b"a+b", false, 100).unwrap(), "a+b");
        assert_eq!(decode(b"a%zz", false, 100).unwrap_err(), Bad::Encoding);
        assert_eq!(decode(b"a%2", false, 100).unwrap_err(), Bad::Encoding);
        assert_eq!(decode(b"a%00b", false, 100).unwrap_err(), Bad::Nul);
        assert_eq!(decode(b"%ff%fe", false, 100).unwrap_err(), Bad::Utf8);
        assert_eq!(decode(b"abcd", false, 3).unwrap_err(), Bad::TooLong);
        assert_eq!(decode("é".as_bytes(), false, 3).unwrap(), "é");
    }

    #[test]
    fn json_nul_and_ids() {
        assert!(check_json(&serde_json::json!({"a": ["x\u{0}"]})).is_err());
        assert!(check_json(&serde_json::json!({"client_id": "x".repeat(2000)})).is_err());
        assert!(check_json(&serde_json::json!({"metadata": {"k": "v"}})).is_ok());
    }
}
