//! OpenID Connect request objects (OIDC Core 6): the `request` parameter, or a `request_uri`
//! the client registered, as fosite v0.36 reads them (authorize_request_handler.go). Only for
//! requests whose query `scope` contains `openid`; the object is a JWT signed with one of the
//! client's keys (RS*, PS*, ES256/384) or unsigned (`alg: none`), the client's
//! `request_object_signing_alg` is enforced, its claims replace the query parameters and its
//! scope is merged with the query's.
use super::types::Params;
use super::OAuth2;
use crate::domain::client::Client;
use crate::oauth2::{split_spaces, OAuthError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::Value;

/// Signed request objects may use these; anything else is refused.
const ALGS: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
];

fn invalid_object(hint: impl Into<String>) -> OAuthError {
    OAuthError::custom(
        "invalid_request_object",
        "The request parameter contains an invalid Request Object.",
        "",
        "",
        400,
    )
    .hint(hint)
}

fn invalid_uri(hint: impl Into<String>) -> OAuthError {
    OAuthError::custom(
        "invalid_request_uri",
        "The request_uri in the Authorization Request returns an error or contains invalid data.",
        "",
        "",
        400,
    )
    .hint(hint)
}

/// A claim as a form value: strings as they are, lists of strings space-separated (scope,
/// audience, prompt), other JSON as its text.
fn form_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// The JOSE header's `alg`, read before anything is verified.
fn header_alg(jwt: &str) -> Option<String> {
    let header = jwt.split('.').next()?;
    let bytes = B64.decode(header.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_string)
}

/// `exp`, `nbf` and `iat`, when present, against `now` (no leeway, as jwt-go's `Valid`).
fn check_times(claims: &Value, now: i64) -> Result<(), &'static str> {
    let at = |name: &str| claims.get(name).and_then(Value::as_f64);
    if at("exp").is_some_and(|exp| (now as f64) >= exp) {
        return Err("the request object is expired");
    }
    if at("nbf").is_some_and(|nbf| (now as f64) < nbf) {
        return Err("the request object is not valid yet");
    }
    if at("iat").is_some_and(|iat| (now as f64) < iat) {
        return Err("the request object was issued in the future");
    }
    Ok(())
}

impl OAuth2 {
    /// The parameters to authorize with: `params` itself, or with the request object's claims
    /// applied. Errors go to the error page: the redirect URI is not verified yet.
    pub(super) async fn with_request_object(
        &self,
        client: &Client,
        params: &Params,
    ) -> Result<Option<Params>, OAuthError> {
        let query_scope = split_spaces(params.get("scope"));
        if !query_scope.iter().any(|s| s == "openid") {
            return Ok(None);
        }
        let (request, location) = (params.get("request"), params.get("request_uri"));
        if request.is_empty() && location.is_empty() {
            return Ok(None);
        }
        if !request.is_empty() && !location.is_empty() {
            return Err(OAuthError::invalid_request().hint(
                "OpenID Connect parameters 'request' and 'request_uri' were both given, but you can use at most one.",
            ));
        }
        if !has_keys(client) {
            return Err(OAuthError::invalid_request().hint(
                "OpenID Connect 'request' or 'request_uri' context was given, but the OAuth 2.0 Client does not have any JSON Web Keys registered.",
            ));
        }
        let fetched;
        let object = if location.is_empty() {
            request
        } else {
            fetched = self.fetch_request_object(client, location).await?;
            fetched.as_str()
        };
        let claims = self.verify_request_object(client, object).await?;
        let Value::Object(claims) = claims else {
            return Err(invalid_object(
                "The request object's claims are not a JSON object.",
            ));
        };
        let mut out = params.clone();
        for (k, v) in &claims {
            let value = form_value(v);
            // The query went through the edge's checks; the object's claims did not, and they
            // end up in the stored flow (PostgreSQL refuses NUL bytes).
            if k.contains('\0') || value.contains('\0') {
                return Err(invalid_object(
                    "A claim of the request object contains a NUL byte.",
                ));
            }
            out.0.retain(|(name, _)| name != k);
            out.0.push((k.clone(), value));
        }
        let mut scope = split_spaces(out.get("scope"));
        for s in query_scope {
            if !scope.contains(&s) {
                scope.push(s);
            }
        }
        out.0.retain(|(name, _)| name != "scope");
        out.0.push(("scope".into(), scope.join(" ")));
        Ok(Some(out))
    }

    async fn fetch_request_object(
        &self,
        client: &Client,
        location: &str,
    ) -> Result<String, OAuthError> {
        if !client.request_uris.iter().any(|u| u == location) {
            return Err(invalid_uri(format!(
                "Request URI '{location}' is not whitelisted by the OAuth 2.0 Client."
            )));
        }
        let body = self.fetcher.get(location).await.map_err(|e| {
            invalid_uri(format!(
                "Unable to fetch OpenID Connect request parameters from 'request_uri' because: {e}."
            ))
        })?;
        String::from_utf8(body).map(|s| s.trim().to_string()).map_err(|_| {
            invalid_uri("Unable to fetch OpenID Connect request parameters from 'request_uri' because the body is not UTF-8.")
        })
    }

    /// The claims of a request object whose signature (or `none`) the client's policy accepts.
    async fn verify_request_object(&self, client: &Client, jwt: &str) -> Result<Value, OAuthError> {
        let alg = header_alg(jwt)
            .ok_or_else(|| invalid_object("Unable to decode the request object's header."))?;
        let required = client.request_object_signing_alg.as_str();
        if !required.is_empty() && required != alg {
            return Err(invalid_object(format!(
                "The request object uses signing algorithm '{alg}', but the requested OAuth 2.0 Client enforces signing algorithm '{required}'."
            )));
        }
        let claims = if alg == "none" {
            unsigned_claims(jwt)?
        } else if ALGS.contains(&alg.as_str()) {
            self.signed_claims(client, jwt).await?
        } else {
            return Err(invalid_object(format!(
                "This request object uses unsupported signing algorithm '{alg}'."
            )));
        };
        check_times(&claims, self.now()).map_err(|e| {
            invalid_object(format!(
                "Unable to verify the request object because its claims could not be validated, check if the expiry time is set correctly: {e}."
            ))
        })?;
        Ok(claims)
    }

    async fn signed_claims(&self, client: &Client, jwt: &str) -> Result<Value, OAuthError> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|e| {
            invalid_object("Unable to decode the request object.").debug(e.to_string())
        })?;
        let set = self
            .client_keys(client, header.kid.as_deref())
            .await
            .map_err(|reason| {
                invalid_object(format!(
                    "Unable to retrieve the signing key from the OAuth 2.0 Client: {reason}"
                ))
            })?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        super::assertion::decode_with_keys(&set, header.kid.as_deref(), jwt, &validation)
            .ok_or_else(|| invalid_object("Unable to verify the request object's signature."))
    }
}

fn has_keys(client: &Client) -> bool {
    let inline = client
        .jwks
        .get("keys")
        .and_then(Value::as_array)
        .is_some_and(|k| !k.is_empty());
    inline || !client.jwks_uri.is_empty()
}

/// `alg: none`: header and payload, and an empty signature.
fn unsigned_claims(jwt: &str) -> Result<Value, OAuthError> {
    let mut parts = jwt.split('.');
    let (Some(_), Some(payload), Some(""), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_object(
            "An unsigned request object must have an empty signature.",
        ));
    };
    let bytes = B64
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid_object("Unable to decode the request object's claims."))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| invalid_object("Unable to decode the request object's claims."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_become_form_values() {
        assert_eq!(form_value(&json!("a b")), "a b");
        assert_eq!(form_value(&json!(["openid", "email"])), "openid email");
        assert_eq!(form_value(&json!(3600)), "3600");
        assert_eq!(form_value(&json!(true)), "true");
    }

    #[test]
    fn times_without_leeway() {
        assert!(check_times(&json!({}), 100).is_ok());
        assert!(check_times(&json!({"exp": 101, "nbf": 100, "iat": 100}), 100).is_ok());
        assert!(check_times(&json!({"exp": 100}), 100).is_err());
        assert!(check_times(&json!({"nbf": 101}), 100).is_err());
        assert!(check_times(&json!({"iat": 101}), 100).is_err());
    }

    #[test]
    fn unsigned_objects_need_an_empty_signature() {
        let payload = B64.encode(br#"{"state":"abcdefghij"}"#);
        let header = B64.encode(br#"{"alg":"none"}"#);
        assert_eq!(
            unsigned_claims(&format!("{header}.{payload}.")).unwrap()["state"],
            "abcdefghij"
        );
        assert!(unsigned_claims(&format!("{header}.{payload}.sig")).is_err());
        assert!(unsigned_claims(&format!("{header}.{payload}")).is_err());
        assert_eq!(
            header_alg(&format!("{header}.{payload}.")).as_deref(),
            Some("none")
        );
    }
}
