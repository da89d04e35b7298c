//! CORS from `serve.{public,admin}.cors.*` (x/oauth2cors/cors.go). Origins: any when the list
//! is empty or holds `*`, else exact matches or `scheme://*.domain` wildcards.
use crate::config::Cors;
use axum::http::{HeaderName, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

fn origin_allowed(patterns: &[String], origin: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    patterns.iter().any(|p| {
        let p = p.to_ascii_lowercase();
        match p.split_once("://*.") {
            Some((scheme, domain)) => origin
                .strip_prefix(&format!("{scheme}://"))
                .is_some_and(|host| host.ends_with(&format!(".{domain}"))),
            None => p == origin,
        }
    })
}

pub fn layer(cfg: &Cors) -> CorsLayer {
    let any = cfg.allowed_origins.is_empty() || cfg.allowed_origins.iter().any(|o| o == "*");
    let patterns = cfg.allowed_origins.clone();
    // With credentials, a wildcard is answered by mirroring the request's origin.
    let origin = if any {
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::predicate(move |o: &HeaderValue, _| {
            o.to_str().is_ok_and(|o| origin_allowed(&patterns, o))
        })
    };
    let methods: Vec<Method> = cfg
        .allowed_methods
        .iter()
        .filter_map(|m| m.parse().ok())
        .collect();
    let headers: Vec<HeaderName> = cfg
        .allowed_headers
        .iter()
        .filter_map(|h| h.parse().ok())
        .collect();
    let exposed: Vec<HeaderName> = cfg
        .exposed_headers
        .iter()
        .filter_map(|h| h.parse().ok())
        .collect();
    let mut layer = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(methods)
        .allow_headers(headers)
        .expose_headers(exposed)
        .allow_credentials(cfg.allow_credentials);
    if cfg.max_age > 0 {
        layer = layer.max_age(Duration::from_secs(cfg.max_age));
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origin_patterns() {
        let p = vec![
            "https://app.example".to_string(),
            "https://*.example.org".to_string(),
        ];
        assert!(origin_allowed(&p, "https://app.example"));
        assert!(origin_allowed(&p, "https://a.example.org"));
        assert!(!origin_allowed(&p, "https://example.org"));
        assert!(!origin_allowed(&p, "http://a.example.org"));
        assert!(!origin_allowed(&p, "https://evil.example"));
    }
}
