//! JSON Web Signatures for ID tokens, signed userinfo and logout tokens: RS256, ES256 and
//! EdDSA (Ed25519). The private key is parsed once into an aws-lc-rs key pair (parsing a
//! 4096-bit key per signature would double the cost; aws-lc's RSA is also markedly faster than
//! ring's).
use crate::domain::jwk::Jwk;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::BigUint;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    #[error("the signing key is not a usable private key: {0}")]
    Key(String),
    #[error("signing failed")]
    Sign,
    #[error("token rejected: {0}")]
    Verify(String),
}

/// The JWS algorithm a private JWK signs with, if Portcullis can sign with it.
pub fn signing_alg(jwk: &Jwk) -> Option<&'static str> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    match (member("kty"), member("crv")) {
        (Some("RSA"), _) => Some("RS256"),
        (Some("EC"), Some("P-256")) => Some("ES256"),
        (Some("OKP"), Some("Ed25519")) => Some("EdDSA"),
        _ => None,
    }
}

enum Pair {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

pub struct Signer {
    /// The `kid` put in headers: the public twin of the private key (`public:<id>`).
    pub kid: String,
    /// The header's `alg`: RS256, ES256 or EdDSA.
    pub alg: &'static str,
    pair: Pair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({}, {})", self.alg, self.kid)
    }
}

fn bytes(jwk: &Jwk, name: &str) -> Result<Vec<u8>, JwsError> {
    let s = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JwsError::Key(format!("missing `{name}`")))?;
    B64.decode(s.trim_end_matches('='))
        .map_err(|_| JwsError::Key(format!("`{name}` is not base64url")))
}

fn big(jwk: &Jwk, name: &str) -> Result<BigUint, JwsError> {
    Ok(BigUint::from_bytes_be(&bytes(jwk, name)?))
}

/// A big-endian integer left-padded to `len` bytes (JWK encoders may drop leading zeros).
fn padded(mut v: Vec<u8>, len: usize, name: &str) -> Result<Vec<u8>, JwsError> {
    if v.len() > len {
        return Err(JwsError::Key(format!("`{name}` is too long")));
    }
    let mut out = vec![0u8; len - v.len()];
    out.append(&mut v);
    Ok(out)
}

fn rsa_pair(jwk: &Jwk) -> Result<Pair, JwsError> {
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
    aws_lc_rs::rsa::KeyPair::from_der(der.as_bytes())
        .map(Pair::Rsa)
        .map_err(|e| JwsError::Key(e.to_string()))
}

fn es256_pair(jwk: &Jwk) -> Result<Pair, JwsError> {
    let d = padded(bytes(jwk, "d")?, 32, "d")?;
    let mut public = vec![4u8];
    public.extend(padded(bytes(jwk, "x")?, 32, "x")?);
    public.extend(padded(bytes(jwk, "y")?, 32, "y")?);
    EcdsaKeyPair::from_private_key_and_public_key(&ECDSA_P256_SHA256_FIXED_SIGNING, &d, &public)
        .map(Pair::Es256)
        .map_err(|e| JwsError::Key(e.to_string()))
}

fn ed25519_pair(jwk: &Jwk) -> Result<Pair, JwsError> {
    Ed25519KeyPair::from_seed_and_public_key(&bytes(jwk, "d")?, &bytes(jwk, "x")?)
        .map(Pair::Ed25519)
        .map_err(|e| JwsError::Key(e.to_string()))
}

impl Signer {
    /// From a private JWK (kid `private:<id>`; the header carries `public:<id>`): RSA, EC P-256
    /// or OKP Ed25519.
    pub fn from_jwk(jwk: &Jwk) -> Result<Signer, JwsError> {
        let alg = signing_alg(jwk)
            .ok_or_else(|| JwsError::Key("not an RSA, P-256 or Ed25519 key".into()))?;
        let pair = match alg {
            "RS256" => rsa_pair(jwk)?,
            "ES256" => es256_pair(jwk)?,
            _ => ed25519_pair(jwk)?,
        };
        let kid = crate::domain::jwk::kid(jwk);
        let kid = match kid.strip_prefix("private:") {
            Some(id) => format!("public:{id}"),
            None => kid.to_string(),
        };
        Ok(Signer {
            kid,
            alg,
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// Compact JWS of `claims` with header `{alg, kid, typ: JWT}`.
    pub fn sign(&self, claims: &Value) -> Result<String, JwsError> {
        let header = json!({"alg": self.alg, "kid": self.kid, "typ": "JWT"});
        let mut out = B64.encode(header.to_string());
        out.push('.');
        out.push_str(&B64.encode(claims.to_string()));
        let sig = match &self.pair {
            Pair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig)
                    .map_err(|_| JwsError::Sign)?;
                sig
            }
            Pair::Es256(pair) => pair
                .sign(&self.rng, out.as_bytes())
                .map_err(|_| JwsError::Sign)?
                .as_ref()
                .to_vec(),
            Pair::Ed25519(pair) => pair.sign(out.as_bytes()).as_ref().to_vec(),
        };
        out.push('.');
        out.push_str(&B64.encode(sig));
        Ok(out)
    }
}

/// The key a token's signature is checked with, and the algorithm it must carry.
fn decoding_key(key: &Jwk) -> Option<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)> {
    use jsonwebtoken::{Algorithm, DecodingKey};
    let member = |name: &str| key.get(name).and_then(Value::as_str);
    match (member("kty")?, member("crv")) {
        ("RSA", _) => DecodingKey::from_rsa_components(member("n")?, member("e")?)
            .ok()
            .map(|k| (k, Algorithm::RS256)),
        ("EC", Some("P-256")) => DecodingKey::from_ec_components(member("x")?, member("y")?)
            .ok()
            .map(|k| (k, Algorithm::ES256)),
        ("OKP", Some("Ed25519")) => DecodingKey::from_ed_components(member("x")?)
            .ok()
            .map(|k| (k, Algorithm::EdDSA)),
        _ => None,
    }
}

/// Verifies a token signed by one of these public JWKs (RS256, ES256 or EdDSA, the algorithm
/// fixed by the key, never by the token), ignoring expiry as `id_token_hint` requires, and
/// returns its claims.
pub fn verify_ignoring_expiry(token: &str, keys: &[Jwk]) -> Result<Value, JwsError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| JwsError::Verify(e.to_string()))?;
    for key in keys {
        if let Some(kid) = &header.kid {
            if crate::domain::jwk::kid(key) != kid {
                continue;
            }
        }
        let Some((dk, alg)) = decoding_key(key) else {
            continue;
        };
        if header.alg != alg {
            continue;
        }
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
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
