//! Key generation for the `/keys` API, emitted as JWKs (RFC 7517/7518/8037).
use crate::domain::jwk::Jwk;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{json, Value};

pub const SUPPORTED: [&str; 6] = ["RS256", "ES256", "ES512", "HS256", "HS512", "EdDSA"];

#[derive(Debug, thiserror::Error)]
pub enum JwkError {
    #[error("Generator for algorithm '{0}' not found; supported are RS256, ES256, ES512, HS256, HS512 and EdDSA")]
    UnknownAlg(String),
    #[error("key generation failed: {0}")]
    Generation(String),
}

fn obj(v: Value) -> Jwk {
    match v {
        Value::Object(m) => m,
        _ => Jwk::new(),
    }
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(B64.encode(bytes))
}

/// Generates keys for `alg`. Asymmetric algorithms give `[private:<kid>, public:<kid>]`,
/// symmetric ones a single key named `kid` (jwk/generator_*.go).
pub fn generate(alg: &str, kid: &str, key_use: &str) -> Result<Vec<Jwk>, JwkError> {
    let private: Jwk = match alg {
        "RS256" => rsa_jwk(4096)?,
        "ES256" => {
            let k = p256::SecretKey::random(&mut OsRng);
            obj(serde_json::from_str(&k.to_jwk_string())
                .map_err(|e| JwkError::Generation(e.to_string()))?)
        }
        "ES512" => {
            let k = p521::SecretKey::random(&mut OsRng);
            obj(serde_json::from_str(&k.to_jwk_string())
                .map_err(|e| JwkError::Generation(e.to_string()))?)
        }
        "EdDSA" => {
            let k = ed25519_dalek::SigningKey::generate(&mut OsRng);
            obj(
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.verifying_key().as_bytes()), "d": b64(&k.to_bytes())}),
            )
        }
        "HS256" | "HS512" => {
            let mut k = vec![0u8; if alg == "HS256" { 32 } else { 64 }];
            OsRng.fill_bytes(&mut k);
            let mut m = obj(json!({"kty": "oct", "k": b64(&k)}));
            finish(&mut m, alg, kid, key_use);
            return Ok(vec![m]);
        }
        other => return Err(JwkError::UnknownAlg(other.to_string())),
    };
    let mut private = private;
    let mut public = public_of(&private);
    finish(&mut private, alg, &format!("private:{kid}"), key_use);
    finish(&mut public, alg, &format!("public:{kid}"), key_use);
    Ok(vec![private, public])
}

fn finish(k: &mut Jwk, alg: &str, kid: &str, key_use: &str) {
    k.insert("alg".into(), alg.into());
    k.insert("kid".into(), kid.into());
    k.insert("use".into(), key_use.into());
}

/// The public half of an asymmetric JWK.
pub fn public_of(private: &Jwk) -> Jwk {
    let mut p = private.clone();
    for m in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
        p.remove(m);
    }
    p
}

fn rsa_jwk(bits: usize) -> Result<Jwk, JwkError> {
    let key = rsa::RsaPrivateKey::new(&mut OsRng, bits)
        .map_err(|e| JwkError::Generation(e.to_string()))?;
    let primes = key.primes();
    let (p, q) = match primes {
        [p, q] => (p, q),
        _ => return Err(JwkError::Generation("unexpected prime count".into())),
    };
    let one = rsa::BigUint::from(1u8);
    let dp = key.d() % (p - &one);
    let dq = key.d() % (q - &one);
    let qi = key
        .crt_coefficient()
        .ok_or_else(|| JwkError::Generation("missing CRT coefficient".into()))?;
    Ok(obj(json!({
        "kty": "RSA",
        "n": b64(&key.n().to_bytes_be()),
        "e": b64(&key.e().to_bytes_be()),
        "d": b64(&key.d().to_bytes_be()),
        "p": b64(&p.to_bytes_be()),
        "q": b64(&q.to_bytes_be()),
        "dp": b64(&dp.to_bytes_be()),
        "dq": b64(&dq.to_bytes_be()),
        "qi": b64(&qi.to_bytes_be()),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::jwk::is_public;

    #[test]
    fn generates_every_alg() {
        for alg in ["ES256", "ES512", "EdDSA"] {
            let keys = generate(alg, "k", "sig").unwrap();
            assert_eq!(keys.len(), 2);
            assert_eq!(keys[0]["kid"], "private:k");
            assert!(!is_public(&keys[0]));
            assert!(is_public(&keys[1]));
        }
        for alg in ["HS256", "HS512"] {
            let keys = generate(alg, "k", "sig").unwrap();
            assert_eq!(keys.len(), 1);
            assert!(!is_public(&keys[0]));
        }
        assert!(generate("XX", "k", "sig").is_err());
    }
}
