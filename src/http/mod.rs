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

/// Everything a handler can reach; built once by `app.rs`. Cloned several times per request
/// (extractors, middleware), so it is one shared pointer: a clone is one reference count, not
/// one per service and metric handle (measured at ~5% of strict introspection's CPU).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services and settings behind `AppState`.
#[derive(Debug)]
pub struct Services {
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
