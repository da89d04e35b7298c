//! The public listener: discovery, JWKS, health, (in `oauth2`) the OAuth 2.0 endpoints, and (in
//! `dev_ui`, with `--dev` only) the demo login, consent and logout pages.
pub mod dev_ui;
pub mod oauth2;
use crate::http::error::ApiError;
use crate::http::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// `dev`: serve the demo login/consent/logout app in place of the explanatory fallback pages.
pub fn router(dev: bool) -> Router<AppState> {
    let (cors, rest) = split_router(dev);
    cors.merge(rest)
}

/// The routes that get CORS when `serve.public.cors.enabled`, and the others.
pub fn split_router(dev: bool) -> (Router<AppState>, Router<AppState>) {
    let cors = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discover_openid_configuration).options(preflight),
        )
        .route("/.well-known/jwks.json", get(well_known).options(preflight));
    let (oauth_cors, oauth_rest) = oauth2::routers(dev);
    (
        cors.merge(oauth_cors),
        health_router(false).merge(oauth_rest),
    )
}

/// Hydra registers empty OPTIONS handlers on its CORS endpoints; the CORS layer fills them in.
async fn preflight() -> StatusCode {
    StatusCode::OK
}

/// `/health/*` for either listener; the public one hides database error details.
pub fn health_router(admin: bool) -> Router<AppState> {
    Router::new()
        .route("/health/alive", get(is_instance_alive))
        .route(
            "/health/ready",
            get(move |s: State<AppState>| is_instance_ready(s, admin)),
        )
}

async fn is_instance_alive() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Bounded by `database.ping_timeout`, so an unreachable database gives a quick 503 rather
/// than a probe that hangs on the pool (Kubernetes would otherwise time the probe out).
async fn is_instance_ready(State(s): State<AppState>, admin: bool) -> Response {
    match s.store.ping_within(s.config.database.ping_timeout).await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => {
            let reason = if admin {
                e.to_string()
            } else {
                "error may contain sensitive information and was obfuscated".into()
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "errors": { "database": reason } })),
            )
                .into_response()
        }
    }
}

fn json_bytes(body: axum::body::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn discover_openid_configuration(State(s): State<AppState>) -> Result<Response, ApiError> {
    let doc = s.jwks.discovery(&s.discovery).await?;
    Ok(json_bytes(doc))
}

async fn well_known(State(s): State<AppState>) -> Result<Response, ApiError> {
    let doc = s.jwks.public_document().await?;
    Ok(json_bytes(doc))
}
