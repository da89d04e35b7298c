//! JSON Web Key sets as Hydra names and uses them.
use serde_json::{Map, Value};

pub const ID_TOKEN_SET: &str = "hydra.openid.id-token";
pub const ACCESS_TOKEN_SET: &str = "hydra.jwt.access-token";

/// Members that carry private key material in any key type (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A JWK as a JSON object; generated and validated by `crypto::jwk`.
pub type Jwk = Map<String, Value>;

pub fn kid(jwk: &Jwk) -> &str {
    jwk.get("kid").and_then(Value::as_str).unwrap_or("")
}

/// True when the key holds no private or symmetric material.
pub fn is_public(jwk: &Jwk) -> bool {
    jwk.get("kty").and_then(Value::as_str) != Some("oct")
        && PRIVATE_MEMBERS.iter().all(|m| !jwk.contains_key(*m))
}
