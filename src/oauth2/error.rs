//! RFC 6749 / 6750 / OIDC Core error codes with fosite's status codes and the joined
//! `error_description` ("<description> <hint>") Hydra sends (fosite errors.go).
use serde_json::{json, Map, Value};
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    pub name: String,
    pub description: String,
    pub hint: String,
    pub debug: String,
    pub status: u16,
    /// The internal failure behind this error, for the log at the HTTP edge; never sent.
    pub cause: Option<Cause>,
}

/// An internal failure with its chain of sources, cheap to clone so the HTTP edge can carry it
/// in a response's extensions to the one place that logs it (with the request id).
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Cause {
        Cause(Arc::new(e))
    }

    pub fn error(&self) -> &(dyn std::error::Error + 'static) {
        &*self.0
    }
}

/// The error and each of its sources, `: `-separated.
impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cause({self})")
    }
}

/// The same failure, not an equal one.
impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

macro_rules! errors {
    ($($fn_name:ident => ($name:literal, $status:literal, $desc:literal)),* $(,)?) => {
        impl OAuthError {
            $(
                pub fn $fn_name() -> OAuthError {
                    OAuthError {
                        name: $name.into(),
                        description: $desc.into(),
                        hint: String::new(),
                        debug: String::new(),
                        status: $status,
                        cause: None,
                    }
                }
            )*
        }
    };
}

errors! {
    invalid_request => ("invalid_request", 400, "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed."),
    unauthorized_client => ("unauthorized_client", 400, "The client is not authorized to request a token using this method."),
    access_denied => ("access_denied", 403, "The resource owner or authorization server denied the request."),
    unsupported_response_type => ("unsupported_response_type", 400, "The authorization server does not support obtaining a token using this method."),
    unsupported_response_mode => ("unsupported_response_mode", 400, "The authorization server does not support obtaining a response using this response mode."),
    invalid_scope => ("invalid_scope", 400, "The requested scope is invalid, unknown, or malformed."),
    server_error => ("server_error", 500, "The authorization server encountered an unexpected condition that prevented it from fulfilling the request."),
    unsupported_grant_type => ("unsupported_grant_type", 400, "The authorization grant type is not supported by the authorization server."),
    invalid_grant => ("invalid_grant", 400, "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."),
    invalid_client => ("invalid_client", 401, "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)."),
    invalid_state => ("invalid_state", 400, "The state is missing or does not have enough characters and is therefore considered too weak."),
    request_unauthorized => ("request_unauthorized", 401, "The request could not be authorized."),
    request_forbidden => ("request_forbidden", 403, "The request is not allowed."),
    login_required => ("login_required", 400, "The Authorization Server requires End-User authentication."),
    consent_required => ("consent_required", 400, "The Authorization Server requires End-User consent."),
    interaction_required => ("interaction_required", 400, "The Authorization Server requires End-User interaction of some form to proceed."),
    registration_not_supported => ("registration_not_supported", 400, "The OP does not support use of the registration parameter."),
    request_not_supported => ("request_not_supported", 400, "The OP does not support use of the request parameter."),
    request_uri_not_supported => ("request_uri_not_supported", 400, "The OP does not support use of the request_uri parameter."),
    scope_not_granted => ("scope_not_granted", 403, "The token was not granted the requested scope."),
    token_expired => ("token_expired", 401, "Token expired."),
    temporarily_unavailable => ("temporarily_unavailable", 503, "The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server."),
    throttled => ("temporarily_unavailable", 429, "Too many failed client authentications for this client from this address; retry later."),
    address_throttled => ("temporarily_unavailable", 429, "Too many failed client authentications from this address; retry later."),
    token_inactive => ("token_inactive", 401, "Token is inactive because it is malformed, expired or otherwise invalid."),
}

impl OAuthError {
    pub fn hint(mut self, hint: impl Into<String>) -> OAuthError {
        self.hint = hint.into();
        self
    }

    pub fn debug(mut self, debug: impl Into<String>) -> OAuthError {
        self.debug = debug.into();
        self
    }

    /// A denial stored by the login/consent app (`PUT …/reject`), replayed to the client.
    pub fn custom(
        name: &str,
        description: &str,
        hint: &str,
        debug: &str,
        status: u16,
    ) -> OAuthError {
        OAuthError {
            name: name.into(),
            description: description.into(),
            hint: hint.into(),
            debug: debug.into(),
            status,
            cause: None,
        }
    }

    /// Keeps the internal failure behind this error (logged at the HTTP edge, never sent).
    pub fn caused_by(mut self, e: impl std::error::Error + Send + Sync + 'static) -> OAuthError {
        self.cause = Some(Cause::new(e));
        self
    }

    /// `description [hint] [debug]`, double quotes turned into single ones (fosite).
    pub fn joined(&self, expose_debug: bool) -> String {
        let mut out = self.description.clone();
        for part in [
            self.hint.as_str(),
            if expose_debug {
                self.debug.as_str()
            } else {
                ""
            },
        ] {
            if !part.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(part);
            }
        }
        out.replace('"', "'")
    }

    /// JSON body: non-legacy `{error, error_description}`, or the legacy field set.
    pub fn body(&self, legacy: bool, expose_debug: bool) -> Value {
        if !legacy {
            return json!({"error": self.name, "error_description": self.joined(expose_debug)});
        }
        let mut m = Map::new();
        m.insert("error".into(), json!(self.name));
        for (k, v) in [
            ("error_description", &self.description),
            ("error_hint", &self.hint),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v.replace('"', "'")));
            }
        }
        m.insert("status_code".into(), json!(self.status));
        if expose_debug && !self.debug.is_empty() {
            m.insert("error_debug".into(), json!(self.debug));
        }
        Value::Object(m)
    }

    /// Query/fragment parameters for an error redirect.
    pub fn params(&self, legacy: bool, expose_debug: bool) -> Vec<(String, String)> {
        let mut out = vec![("error".to_string(), self.name.clone())];
        if legacy {
            out.push((
                "error_description".into(),
                self.description.replace('"', "'"),
            ));
            if !self.hint.is_empty() {
                out.push(("error_hint".into(), self.hint.clone()));
            }
            if expose_debug && !self.debug.is_empty() {
                out.push(("error_debug".into(), self.debug.clone()));
            }
        } else {
            out.push(("error_description".into(), self.joined(expose_debug)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_hint_and_hides_debug() {
        let e = OAuthError::invalid_grant()
            .hint("The \"code\" was used.")
            .debug("row gone");
        assert_eq!(e.status, 400);
        assert!(e.joined(false).ends_with("client. The 'code' was used."));
        assert!(e.joined(true).ends_with("used. row gone"));
        let legacy = e.body(true, false);
        assert_eq!(legacy["error_hint"], "The 'code' was used.");
        assert_eq!(legacy["status_code"], 400);
        assert!(legacy.get("error_debug").is_none());
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reading the row failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_cause_keeps_its_chain_and_is_never_sent() {
        let e = OAuthError::server_error().caused_by(Outer(std::io::Error::other("disk gone")));
        let cause = e.cause.clone().unwrap();
        assert_eq!(cause.to_string(), "reading the row failed: disk gone");
        assert!(!e.body(true, true).to_string().contains("disk"));
        assert!(e
            .params(true, true)
            .iter()
            .all(|(_, v)| !v.contains("disk")));
        assert_eq!(e, e.clone());
        assert_ne!(
            e,
            OAuthError::server_error().caused_by(std::io::Error::other("x"))
        );
    }
}
