//! OAuth 2.0 / OpenID Connect protocol rules as pure functions: RFC error codes, scope and
//! audience strategies, redirect-URI matching, PKCE. No I/O here.
pub mod error;
pub mod jwt_time;
pub mod pkce;
pub mod redirect;
pub mod scope;
pub mod subject;
#[cfg(test)]
mod tests;

pub use error::OAuthError;

/// Space-separated parameter to a list, dropping empty entries.
pub fn split_spaces(s: &str) -> Vec<String> {
    s.split(' ')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// True when `scopes` contain `offline` or `offline_access` (refresh tokens are then issued).
pub fn has_offline(scopes: &[String]) -> bool {
    scopes
        .iter()
        .any(|s| s == "offline" || s == "offline_access")
}
