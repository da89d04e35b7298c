//! HTTP edge: axum routers for the two listeners, extractors, the wire error shape.
pub mod admin;
pub mod conn;
pub mod cookies;
pub mod cors;
pub mod error;
pub mod extract;
pub mod guard;
pub mod middleware;
pub mod public;

use crate::config::Config;
use crate::service::clients::Clients;
use crate::service::jwks::Jwks;
use crate::service::oauth2::OAuth2;
use crate::store::Store;
use crate::telemetry::Metrics;
use std::sync::Arc;

/// Everything a handler can reach; built once by `app.rs`.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub clients: Arc<Clients>,
    pub jwks: Arc<Jwks>,
    pub metrics: Metrics,
    /// The discovery document without the signing algorithms (see `Jwks::discovery`).
    pub discovery: std::sync::Arc<serde_json::Value>,
    pub oauth2: Arc<OAuth2>,
    pub cookies: Arc<cookies::CookieCodec>,
    /// The demo login/consent/logout app; only with `--dev`.
    pub dev_ui: Option<Arc<crate::service::dev_ui::DevUi>>,
}
