//! Admin endpoints of token administration: introspection (RFC 7662), flush of inactive
//! tokens, and deletion of a client's access tokens.
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AppQuery, Form};
use crate::http::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth2/introspect", post(introspect_oauth2_token))
        .route("/oauth2/flush", post(flush_inactive_oauth2_tokens))
        .route("/oauth2/tokens", delete(delete_oauth2_token))
}

/// RFC 7662 for resource servers: any invalid token is `{"active":false}` with 200.
async fn introspect_oauth2_token(
    State(s): State<AppState>,
    Form(form): Form,
) -> Result<Response, ApiError> {
    if form.0.is_empty() {
        return Err(ApiError::bad_request("The POST body can not be empty."));
    }
    let out = s
        .oauth2
        .introspect(
            form.get("token"),
            form.get("token_type_hint"),
            form.get("scope"),
        )
        .await?;
    Ok(Json(out).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlushBody {
    #[serde(rename = "notAfter", default)]
    not_after: Option<String>,
}

async fn flush_inactive_oauth2_tokens(
    State(s): State<AppState>,
    AppJson(b): AppJson<FlushBody>,
) -> Result<StatusCode, ApiError> {
    let not_after = match b.not_after.as_deref() {
        None | Some("") => None,
        Some(t) => {
            let parsed =
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        ApiError::bad_request("Field 'notAfter' must be an RFC 3339 date-time.")
                    })?;
            let ts = parsed.unix_timestamp();
            // Go's zero time means "now" in Hydra.
            (ts > 0).then_some(ts)
        }
    };
    s.oauth2.flush(not_after).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_oauth2_token(
    State(s): State<AppState>,
    AppQuery(q): AppQuery<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let client_id = q
        .get("client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "Query parameter 'client_id' is not defined but should have been.",
            )
        })?;
    s.oauth2.delete_client_tokens(client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
