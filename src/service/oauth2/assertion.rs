//! `private_key_jwt` client authentication (RFC 7523 §2.2, fosite client_authentication.go):
//! a JWT signed with a key from the client's registered `jwks`, iss = sub = client_id, the token
//! URL in `aud`, a single-use `jti`, and time claims within the bounds of
//! [`crate::oauth2::jwt_time`] (the `jti` is remembered for as long as the assertion verifies).
use super::{internal, OAuth2};
use crate::domain::client::Client;
use crate::domain::protocol::ClientAuthMethod;
use crate::oauth2::jwt_time::check_time_claims;
use crate::oauth2::OAuthError;
use jsonwebtoken::Algorithm;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client's `jwks_uri` key set is used before it is fetched again, in seconds.
const REMOTE_KEYS_TTL: i64 = 300;

/// The JOSE name of an algorithm.
fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
    }
}

/// The assertion's algorithm must be the client's `token_endpoint_auth_signing_alg` (RS256
/// when unset), and not an HMAC.
fn check_algorithm(client: &Client, alg: Algorithm) -> Result<(), OAuthError> {
    let expected = if client.token_endpoint_auth_signing_alg.is_empty() {
        "RS256"
    } else {
        client.token_endpoint_auth_signing_alg.as_str()
    };
    // An expected name jsonwebtoken does not know (ES512) matches no assertion.
    if expected.parse::<Algorithm>().ok() != Some(alg) {
        return Err(invalid(format!(
            "The client assertion uses algorithm '{}', but the OAuth 2.0 Client expects '{expected}'.",
            alg_name(alg)
        )));
    }
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(invalid(
            "HMAC-signed client assertions (client_secret_jwt) are not supported.",
        ));
    }
    Ok(())
}

fn invalid(hint: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client().hint(hint)
}

/// The client id an assertion names (`sub`), read before anything is verified.
pub fn unverified_subject(assertion: &str) -> Option<String> {
    use base64::Engine;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    // The subject becomes a client id to look up: a NUL byte would be a database error on
    // PostgreSQL, and no client id holds one.
    v.get("sub")?
        .as_str()
        .filter(|sub| !sub.contains('\0'))
        .map(str::to_string)
}

/// The claims of `jwt` if one of the client's keys (the one named `kid`, when given) verifies
/// it under `validation`.
pub(super) fn decode_with_keys(
    set: &jsonwebtoken::jwk::JwkSet,
    kid: Option<&str>,
    jwt: &str,
    validation: &jsonwebtoken::Validation,
) -> Option<Value> {
    set.keys
        .iter()
        .filter(|key| kid.is_none() || key.common.key_id.as_deref() == kid)
        .filter_map(|key| jsonwebtoken::DecodingKey::from_jwk(key).ok())
        .find_map(|dk| jsonwebtoken::decode::<Value>(jwt, &dk, validation).ok())
        .map(|data| data.claims)
}

impl OAuth2 {
    /// A client's public keys: its inline `jwks`, else the set at its `jwks_uri`. Err is the
    /// reason, for the caller's error.
    pub(super) async fn client_keys(
        &self,
        client: &Client,
        kid: Option<&str>,
    ) -> Result<jsonwebtoken::jwk::JwkSet, String> {
        let inline: Option<jsonwebtoken::jwk::JwkSet> = serde_json::from_value(client.jwks.clone())
            .ok()
            .filter(|s: &jsonwebtoken::jwk::JwkSet| !s.keys.is_empty());
        match inline {
            Some(s) => Ok(s),
            None if !client.jwks_uri.is_empty() => self.remote_jwks(&client.jwks_uri, kid).await,
            None => Err("The OAuth 2.0 Client has no usable JSON Web Keys registered.".into()),
        }
    }

    /// The key set at a client's `jwks_uri`, cached for five minutes and fetched again once
    /// when the wanted `kid` is not in the cached copy (key rotation).
    async fn remote_jwks(
        &self,
        uri: &str,
        kid: Option<&str>,
    ) -> Result<jsonwebtoken::jwk::JwkSet, String> {
        if let Some(hit) = self.remote_keys.get(uri) {
            let has_kid = kid.is_none_or(|k| {
                hit.1
                    .keys
                    .iter()
                    .any(|j| j.common.key_id.as_deref() == Some(k))
            });
            if self.now() - hit.0 < REMOTE_KEYS_TTL && has_kid {
                return Ok(hit.1.clone());
            }
        }
        let body = self.fetcher.get(uri).await.map_err(|e| {
            format!("Unable to fetch the JSON Web Keys from the OAuth 2.0 Client's jwks_uri: {e}.")
        })?;
        let fetched = serde_json::from_slice::<jsonwebtoken::jwk::JwkSet>(&body).map_err(|_| {
            "The document at the OAuth 2.0 Client's jwks_uri is not a JSON Web Key Set.".to_string()
        })?;
        self.remote_keys
            .insert(uri.to_string(), (self.now(), fetched.clone()));
        Ok(fetched)
    }

    /// Verifies a client assertion for `client` and spends its `jti`.
    pub(super) async fn verify_assertion(
        &self,
        client: &Client,
        assertion: &str,
    ) -> Result<(), OAuthError> {
        if client.auth_method() != Some(ClientAuthMethod::PrivateKeyJwt) {
            return Err(invalid(format!(
                "The OAuth 2.0 Client supports client authentication method '{}', but method 'private_key_jwt' was requested.",
                client.token_endpoint_auth_method
            )));
        }
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|e| invalid("Unable to decode the client assertion.").debug(e.to_string()))?;
        check_algorithm(client, header.alg)?;
        let set = self
            .client_keys(client, header.kid.as_deref())
            .await
            .map_err(invalid)?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[self.settings.tokens.token_url.as_str()]);
        validation.set_issuer(&[client.client_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        // Time claims are checked below against the injected clock with our own small skew;
        // jsonwebtoken's checks would use the system clock and a 60 s default leeway that
        // outlives the jti record.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let claims = decode_with_keys(&set, header.kid.as_deref(), assertion, &validation)
            .ok_or_else(|| {
            invalid("The client assertion could not be verified with the OAuth 2.0 Client's keys, or its iss, aud or exp claim is invalid.")
        })?;
        let retain_until = check_time_claims(&claims, self.now())
            .map_err(|e| invalid(format!("The client assertion was refused: {e}")))?;
        if claims.get("sub").and_then(Value::as_str) != Some(client.client_id.as_str()) {
            return Err(invalid(
                "Claim 'sub' of the client assertion must be the client id.",
            ));
        }
        self.spend_jti(&claims, retain_until).await
    }

    /// A `jti` is accepted once while the assertion could still verify.
    async fn spend_jti(&self, claims: &Value, retain_until: i64) -> Result<(), OAuthError> {
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty())
            .ok_or_else(|| invalid("Claim 'jti' of the client assertion is missing."))?;
        let digest = Sha256::digest(jti.as_bytes());
        let key: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if !self
            .store
            .spend_jti(&key, retain_until, self.now())
            .await
            .map_err(internal)?
        {
            return Err(OAuthError::custom(
                "jti_known",
                "The jti was already used.",
                "",
                "",
                400,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_algorithm_is_the_registered_one_and_no_hmac() {
        let mut c = Client::default();
        assert!(check_algorithm(&c, Algorithm::RS256).is_ok());
        let e = check_algorithm(&c, Algorithm::ES256).unwrap_err();
        assert!(e.hint.contains("uses algorithm 'ES256'") && e.hint.contains("expects 'RS256'"));
        c.token_endpoint_auth_signing_alg = "ES512".into();
        assert!(check_algorithm(&c, Algorithm::ES384).is_err());
        c.token_endpoint_auth_signing_alg = "HS256".into();
        assert!(check_algorithm(&c, Algorithm::HS256)
            .unwrap_err()
            .hint
            .contains("HMAC"));
    }

    #[test]
    fn a_subject_with_a_nul_byte_names_no_client() {
        use base64::Engine;
        let jwt = |payload: &str| {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload);
            format!("e30.{b64}.sig")
        };
        assert_eq!(
            unverified_subject(&jwt(r#"{"sub":"c1"}"#)).as_deref(),
            Some("c1")
        );
        assert_eq!(unverified_subject(&jwt(r#"{"sub":"c\u00001"}"#)), None);
    }

    #[test]
    fn algorithm_names_are_the_jose_names() {
        for name in [
            "HS256", "HS384", "HS512", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256",
            "PS384", "PS512", "EdDSA",
        ] {
            let alg: Algorithm = name.parse().unwrap();
            assert_eq!(alg_name(alg), name);
        }
    }
}
