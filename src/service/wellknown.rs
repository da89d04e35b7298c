//! The OpenID Connect discovery document (oauth2/handler.go WellKnownHandler), built once from
//! the configuration; the signing algorithms in use are filled in by `Jwks::discovery`.
use crate::config::Config;
use serde_json::json;

fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

fn or(v: &str, fallback: String) -> String {
    if v.is_empty() {
        fallback
    } else {
        v.to_string()
    }
}

pub fn discovery_document(cfg: &Config, issuer: &str, public_url: &str) -> serde_json::Value {
    let d = &cfg.webfinger.oidc_discovery;
    let mut claims = vec!["sub".to_string()];
    claims.extend(d.supported_claims.iter().cloned());
    let mut scopes: Vec<String> = ["offline_access", "offline", "openid"]
        .map(String::from)
        .to_vec();
    scopes.extend(d.supported_scope.iter().cloned());
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": or(&d.auth_url, join(issuer, "/oauth2/auth")),
        "token_endpoint": or(&d.token_url, join(issuer, "/oauth2/token")),
        "jwks_uri": or(&d.jwks_url, join(issuer, "/.well-known/jwks.json")),
        "subject_types_supported": cfg.oidc.subject_identifiers.supported_types,
        "response_types_supported": ["code", "code id_token", "id_token", "token id_token", "token", "token id_token code"],
        "claims_supported": claims,
        "grant_types_supported": ["authorization_code", "implicit", "client_credentials", "refresh_token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "userinfo_endpoint": or(&d.userinfo_url, join(public_url, "/userinfo")),
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt", "none"],
        "userinfo_signing_alg_values_supported": ["none", "RS256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        // Request objects by value and by registered reference (service/oauth2/request_object.rs).
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        "claims_parameter_supported": false,
        "revocation_endpoint": join(issuer, "/oauth2/revoke"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "end_session_endpoint": join(issuer, "/oauth2/sessions/logout"),
        "request_object_signing_alg_values_supported": ["none", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"],
    });
    if d.include_code_challenge_methods {
        doc["code_challenge_methods_supported"] = json!(["S256"]);
    }
    if !d.client_registration_url.is_empty() {
        doc["registration_endpoint"] = json!(d.client_registration_url);
    }
    doc
}
