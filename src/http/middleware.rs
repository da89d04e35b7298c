//! Request ids, access logs and metrics for every request.
use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Request ids: a random per-process prefix and a counter, so no syscall per request.
fn next_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix =
        PREFIX.get_or_init(|| crate::crypto::uuid_v4().simple().to_string()[..12].to_string());
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // Only copy the path when the access log will be written.
    let path = tracing::enabled!(tracing::Level::INFO).then(|| req.uri().path().to_string());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(next_request_id);
    let mut res = next.run(req).await;
    log_cause(&res, &request_id);
    let status = res.status().as_u16().to_string();
    let elapsed = start.elapsed();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let labels = [route, method.as_str(), status.as_str()];
    state.metrics.requests.with_label_values(&labels).inc();
    state
        .metrics
        .latency
        .with_label_values(&labels)
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        request_id = %request_id,
        method = %method,
        path = path.as_deref().unwrap_or(""),
        status = res.status().as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// The one log line of an internal failure (see `error::with_cause`): an error, or a warning
/// when it only made the server answer "busy".
fn log_cause(res: &Response, request_id: &str) {
    let Some(cause) = res.extensions().get::<crate::oauth2::error::Cause>() else {
        return;
    };
    let status = res.status().as_u16();
    if res.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(request_id, status, error = %cause, "server busy");
    } else {
        tracing::error!(request_id, status, error = %cause, "internal error");
    }
}

/// Networks whose TLS terminators may forward plain HTTP (`serve.tls.allow_termination_from`).
#[derive(Clone, Debug)]
pub struct TrustedTerminators(pub std::sync::Arc<Vec<ipnet::IpNet>>);

/// Hydra's RejectInsecureRequests (x/tls_termination.go): when HTTPS is expected but served by a
/// terminator in front, a plain request passes only if it comes from (or was forwarded by) an
/// allowed network and says `X-Forwarded-Proto: https`. Health and metrics stay reachable.
pub async fn require_tls_termination(
    State(trusted): State<TrustedTerminators>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if matches!(
        path,
        "/health/alive" | "/health/ready" | "/metrics/prometheus"
    ) {
        return next.run(req).await;
    }
    let allowed = |ip: std::net::IpAddr| trusted.0.iter().any(|net| net.contains(&ip));
    let forwarded_ok = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse().ok())
        .any(allowed);
    let proto_https = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if (allowed(peer.ip()) || forwarded_ok) && proto_https {
        return next.run(req).await;
    }
    axum::response::IntoResponse::into_response(super::error::ApiError::untrusted_termination())
}
