//! RS256 JSON Web Signatures for ID tokens and signed userinfo. The private key is parsed once
//! into a ring key pair (parsing a 4096-bit key per signature would double the cost).
use crate::domain::jwk::Jwk;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::BigUint;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    #[error("the signing key is not a usable RSA private key: {0}")]
    Key(String),
    #[error("signing failed")]
    Sign,
    #[error("token rejected: {0}")]
    Verify(String),
}

pub struct Signer {
    /// The `kid` put in headers: the public twin of the private key (`public:<id>`).
    pub kid: String,
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.kid)
    }
}

fn big(jwk: &Jwk, name: &str) -> Result<BigUint, JwsError> {
    let s = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JwsError::Key(format!("missing `{name}`")))?;
    let bytes = B64
        .decode(s.trim_end_matches('='))
        .map_err(|_| JwsError::Key(format!("`{name}` is not base64url")))?;
    Ok(BigUint::from_bytes_be(&bytes))
}

impl Signer {
    /// From an RSA private JWK (kid `private:<id>`; the header carries `public:<id>`).
    pub fn from_jwk(jwk: &Jwk) -> Result<Signer, JwsError> {
        let key = rsa::RsaPrivateKey::from_components(
            big(jwk, "n")?,
            big(jwk, "e")?,
            big(jwk, "d")?,
            vec![big(jwk, "p")?, big(jwk, "q")?],
        )
        .map_err(|e| JwsError::Key(e.to_string()))?;
        let der = key
            .to_pkcs1_der()
            .map_err(|e| JwsError::Key(e.to_string()))?;
        let pair =
            RsaKeyPair::from_der(der.as_bytes()).map_err(|e| JwsError::Key(e.to_string()))?;
        let kid = crate::domain::jwk::kid(jwk);
        let kid = match kid.strip_prefix("private:") {
            Some(id) => format!("public:{id}"),
            None => kid.to_string(),
        };
        Ok(Signer {
            kid,
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// Compact JWS of `claims` with header `{alg: RS256, kid, typ: JWT}`.
    pub fn sign(&self, claims: &Value) -> Result<String, JwsError> {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let mut out = B64.encode(header.to_string());
        out.push('.');
        out.push_str(&B64.encode(claims.to_string()));
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig)
            .map_err(|_| JwsError::Sign)?;
        out.push('.');
        out.push_str(&B64.encode(sig));
        Ok(out)
    }
}

/// Verifies an RS256 token against public JWKs, ignoring expiry (as `id_token_hint` requires),
/// and returns its claims.
pub fn verify_ignoring_expiry(token: &str, keys: &[Jwk]) -> Result<Value, JwsError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| JwsError::Verify(e.to_string()))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    for key in keys {
        if let Some(kid) = &header.kid {
            if crate::domain::jwk::kid(key) != kid {
                continue;
            }
        }
        let (Some(n), Some(e)) = (
            key.get("n").and_then(Value::as_str),
            key.get("e").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Ok(dk) = jsonwebtoken::DecodingKey::from_rsa_components(n, e) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<Value>(token, &dk, &validation) {
            return Ok(data.claims);
        }
    }
    Err(JwsError::Verify("no key verifies the signature".into()))
}

/// `at_hash`: base64url of the left half of SHA-256 of the access token (OIDC Core 3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    B64.encode(&digest.as_ref()[..16])
}
