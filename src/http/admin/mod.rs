//! The admin listener: clients, keys, health, version, metrics; the login/consent endpoints
//! are in `flows`, token administration (introspection, flush, deletion) in `tokens`.
pub mod flows;
pub mod tokens;
use crate::domain::client::Client;
use crate::domain::jwk::Jwk;
use crate::http::error::ApiError;
use crate::http::extract::{AppJson, AppQuery};
use crate::http::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/clients",
            get(list_oauth2_clients).post(create_oauth2_client),
        )
        .route(
            "/clients/{id}",
            get(get_oauth2_client)
                .put(update_oauth2_client)
                .delete(delete_oauth2_client),
        )
        .route(
            "/keys/{set}",
            get(get_json_web_key_set)
                .post(create_json_web_key_set)
                .put(update_json_web_key_set)
                .delete(delete_json_web_key_set),
        )
        .route(
            "/keys/{set}/{kid}",
            get(get_json_web_key)
                .put(update_json_web_key)
                .delete(delete_json_web_key),
        )
        .route("/version", get(get_version))
        .route("/metrics/prometheus", get(prometheus))
        .merge(crate::http::public::health_router(true))
        .merge(flows::router())
        .merge(tokens::router())
}

async fn create_oauth2_client(
    State(s): State<AppState>,
    AppJson(body): AppJson<Client>,
) -> Result<Response, ApiError> {
    let c = s.clients.create(body).await?;
    let location = HeaderValue::from_str(&format!("/clients/{}", c.client_id)).ok();
    let mut res = (StatusCode::CREATED, Json(c)).into_response();
    if let Some(l) = location {
        res.headers_mut().insert(header::LOCATION, l);
    }
    Ok(res)
}

async fn get_oauth2_client(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Client>, ApiError> {
    Ok(Json(s.clients.get(&id).await?))
}

async fn update_oauth2_client(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AppJson(body): AppJson<Client>,
) -> Result<Json<Client>, ApiError> {
    Ok(Json(s.clients.update(&id, body).await?))
}

async fn delete_oauth2_client(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.oauth2.delete_client(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct Page {
    limit: Option<String>,
    offset: Option<String>,
}

const MAX_LIMIT: i64 = 500;

pub(crate) fn parse_page(p: &Page) -> Result<(i64, i64), ApiError> {
    let limit = match &p.limit {
        None => 100,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request("Query parameter limit must be an integer."))?,
    };
    if limit <= 0 {
        return Err(ApiError::bad_request(
            "Query parameter limit must be greater than zero.",
        ));
    }
    let offset = match &p.offset {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request("Query parameter offset must be an integer."))?,
    };
    if offset < 0 {
        return Err(ApiError::bad_request(
            "Query parameter offset must not be negative.",
        ));
    }
    Ok((limit.min(MAX_LIMIT), offset))
}

/// `Link` header entries in the style of ory/x pagination: first, next, prev, last.
/// `X-Total-Count` and `Link` (first/next/prev/last), as Hydra's paginated lists send.
pub(crate) fn pagination_headers(path: &str, limit: i64, offset: i64, total: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        headers.insert("x-total-count", v);
    }
    if let Ok(v) = HeaderValue::from_str(&link_header(path, limit, offset, total)) {
        headers.insert(header::LINK, v);
    }
    headers
}

fn link_header(path: &str, limit: i64, offset: i64, total: i64) -> String {
    let link = |o: i64, rel: &str| format!("<{path}?limit={limit}&offset={o}>; rel=\"{rel}\"");
    let last = if total > 0 {
        ((total - 1) / limit) * limit
    } else {
        0
    };
    let mut parts = vec![link(0, "first")];
    if offset + limit < total {
        parts.push(link(offset + limit, "next"));
    }
    if offset > 0 {
        parts.push(link((offset - limit).max(0), "prev"));
    }
    parts.push(link(last, "last"));
    parts.join(",")
}

async fn list_oauth2_clients(
    State(s): State<AppState>,
    AppQuery(p): AppQuery<Page>,
) -> Result<Response, ApiError> {
    let (limit, offset) = parse_page(&p)?;
    let (list, total) = s.clients.list(limit, offset).await?;
    Ok((
        pagination_headers("/clients", limit, offset, total),
        Json(list),
    )
        .into_response())
}

#[derive(Deserialize)]
struct GeneratorRequest {
    #[serde(default)]
    alg: String,
    #[serde(default, rename = "use")]
    key_use: String,
    #[serde(default)]
    kid: String,
}

fn key_set(keys: Vec<Jwk>) -> Json<Value> {
    Json(json!({ "keys": keys }))
}

async fn create_json_web_key_set(
    State(s): State<AppState>,
    Path(set): Path<String>,
    AppJson(body): AppJson<GeneratorRequest>,
) -> Result<Response, ApiError> {
    let keys = s
        .jwks
        .generate(&set, &body.alg, &body.kid, &body.key_use)
        .await?;
    Ok((StatusCode::CREATED, key_set(keys)).into_response())
}

async fn get_json_web_key_set(
    State(s): State<AppState>,
    Path(set): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(key_set(s.jwks.get_set(&set).await?))
}

#[derive(Deserialize)]
struct KeySetBody {
    #[serde(default)]
    keys: Vec<Jwk>,
}

async fn update_json_web_key_set(
    State(s): State<AppState>,
    Path(set): Path<String>,
    AppJson(body): AppJson<KeySetBody>,
) -> Result<Json<Value>, ApiError> {
    for k in &body.keys {
        checked_jwk(k)?;
    }
    Ok(key_set(s.jwks.replace_set(&set, body.keys).await?))
}

async fn delete_json_web_key_set(
    State(s): State<AppState>,
    Path(set): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.jwks.delete_set(&set).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_json_web_key(
    State(s): State<AppState>,
    Path((set, kid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(key_set(s.jwks.get_key(&set, &kid).await?))
}

/// Hydra stores the key under the kid of the body, not of the path (jwk/handler.go).
async fn update_json_web_key(
    State(s): State<AppState>,
    Path((set, _kid)): Path<(String, String)>,
    AppJson(body): AppJson<Jwk>,
) -> Result<Json<Jwk>, ApiError> {
    checked_jwk(&body)?;
    Ok(Json(s.jwks.replace_key(&set, body).await?))
}

/// JWKs sent to PUT must be well-formed for their type and algorithm; otherwise no SDK could
/// parse the GET that follows.
fn checked_jwk(k: &Jwk) -> Result<(), ApiError> {
    crate::crypto::jwk::validate(k)
        .map_err(|m| ApiError::bad_request(format!("The JSON Web Key is invalid: {m}.")))
}

async fn delete_json_web_key(
    State(s): State<AppState>,
    Path((set, kid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.jwks.delete_key(&set, &kid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The crate version (Hydra 1.9.2 answers an empty string: ory/hydra#2337).
async fn get_version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

async fn prometheus(State(s): State<AppState>) -> Response {
    let pool = s.store.pool_stats();
    s.metrics
        .observe_pool(pool.size, pool.idle, pool.max, pool.timeouts, pool.waits);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}
