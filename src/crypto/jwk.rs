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
    // aws-lc generates RSA-4096 in a fraction of the time the pure-Rust `rsa` crate takes
    // (seconds, with a long tail), so key creation stays well inside the request deadline.
    use aws_lc_rs::encoding::AsDer;
    use rsa::pkcs8::DecodePrivateKey;
    let size = match bits {
        2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
        3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
        4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
        8192 => aws_lc_rs::rsa::KeySize::Rsa8192,
        other => {
            return Err(JwkError::Generation(format!(
                "unsupported RSA size {other}"
            )))
        }
    };
    let generated =
        aws_lc_rs::rsa::KeyPair::generate(size).map_err(|e| JwkError::Generation(e.to_string()))?;
    let der = generated
        .as_der()
        .map_err(|e| JwkError::Generation(e.to_string()))?;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(der.as_ref())
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

/// Members that must be strings wherever they appear (RFC 7517 §4, RFC 7518 §6).
const STRING_MEMBERS: [&str; 20] = [
    "kty", "use", "alg", "kid", "x5u", "x5t", "x5t#S256", "crv", "x", "y", "n", "e", "d", "p", "q",
    "dp", "dq", "qi", "k", "ext",
];

fn member<'a>(k: &'a Jwk, name: &str) -> Option<&'a str> {
    k.get(name).and_then(Value::as_str)
}

fn bytes_of(k: &Jwk, name: &str) -> Result<Vec<u8>, String> {
    let v = member(k, name).ok_or_else(|| format!("the key is missing the member `{name}`"))?;
    let bytes = B64
        .decode(v.trim_end_matches('='))
        .map_err(|_| format!("the member `{name}` is not base64url"))?;
    if bytes.is_empty() {
        return Err(format!("the member `{name}` is empty"));
    }
    Ok(bytes)
}

/// Validates a JWK sent to `PUT /keys/…`: member types, the members each `kty` requires, an
/// `alg` that fits the key, and key material that parses (RFC 7517/7518/8037). Hydra stores
/// whatever go-jose accepts; storing less strict data would give SDKs a GET they cannot parse.
pub fn validate(k: &Jwk) -> Result<(), String> {
    check_member_types(k)?;
    check_required_members(k)?;
    let kty = member(k, "kty").unwrap_or("");
    let alg = member(k, "alg").unwrap_or("");
    match kty {
        "RSA" => validate_rsa(k, alg),
        "EC" => validate_ec(k, alg),
        "OKP" => validate_okp(k, alg),
        "oct" => validate_oct(k, alg),
        "" => Err("every key needs a `kty`".into()),
        other => Err(format!("the key type `{other}` is not supported")),
    }
}

/// String members are strings, `ext` a boolean, `key_ops`/`x5c` string arrays, `oth` objects.
fn check_member_types(k: &Jwk) -> Result<(), String> {
    for name in STRING_MEMBERS {
        if name == "ext" {
            if k.get(name).is_some_and(|v| !v.is_boolean()) {
                return Err("the member `ext` must be a boolean".into());
            }
            continue;
        }
        if k.get(name).is_some_and(|v| !v.is_string()) {
            return Err(format!("the member `{name}` must be a string"));
        }
    }
    for name in ["key_ops", "x5c"] {
        if let Some(v) = k.get(name) {
            let ok = v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
            if !ok {
                return Err(format!("the member `{name}` must be an array of strings"));
            }
        }
    }
    if let Some(v) = k.get("oth") {
        if !v.as_array().is_some_and(|a| a.iter().all(Value::is_object)) {
            return Err("the member `oth` must be an array of objects".into());
        }
    }
    Ok(())
}

/// `kid`, `alg` and `use` are present, and `use` is `sig` or `enc`.
fn check_required_members(k: &Jwk) -> Result<(), String> {
    if member(k, "kid").is_none_or(str::is_empty) {
        return Err("every key needs a `kid`".into());
    }
    // The JSONWebKey model of Hydra's API (and so every generated SDK) requires these too.
    for name in ["alg", "use"] {
        if member(k, name).is_none_or(str::is_empty) {
            return Err(format!("every key needs `{name}`"));
        }
    }
    if let Some(u) = member(k, "use") {
        if !matches!(u, "sig" | "enc") {
            return Err(format!(
                "the member `use` must be `sig` or `enc`, not `{u}`"
            ));
        }
    }
    Ok(())
}

fn validate_rsa(k: &Jwk, alg: &str) -> Result<(), String> {
    if !matches!(
        alg,
        "" | "RS256"
            | "RS384"
            | "RS512"
            | "PS256"
            | "PS384"
            | "PS512"
            | "RSA-OAEP"
            | "RSA-OAEP-256"
            | "RSA1_5"
    ) {
        return Err(format!("the algorithm `{alg}` does not fit an RSA key"));
    }
    let n = rsa::BigUint::from_bytes_be(&bytes_of(k, "n")?);
    let e = rsa::BigUint::from_bytes_be(&bytes_of(k, "e")?);
    if k.contains_key("d") {
        let d = rsa::BigUint::from_bytes_be(&bytes_of(k, "d")?);
        let p = rsa::BigUint::from_bytes_be(&bytes_of(k, "p")?);
        let q = rsa::BigUint::from_bytes_be(&bytes_of(k, "q")?);
        let key = rsa::RsaPrivateKey::from_components(n, e, d, vec![p, q])
            .map_err(|e| format!("the RSA private key is invalid: {e}"))?;
        key.validate()
            .map_err(|e| format!("the RSA private key is invalid: {e}"))?;
    } else {
        // RFC 7518 §3.3: RSA signing keys of at least 2048 bits.
        if (alg.starts_with("RS") || alg.starts_with("PS")) && n.bits() < 2048 {
            return Err("RSA keys for RS*/PS* need at least 2048 bits".into());
        }
        rsa::RsaPublicKey::new(n, e).map_err(|e| format!("the RSA public key is invalid: {e}"))?;
    }
    Ok(())
}

fn validate_ec(k: &Jwk, alg: &str) -> Result<(), String> {
    let crv = member(k, "crv").unwrap_or("");
    let fits = matches!(
        (crv, alg),
        ("P-256", "" | "ES256" | "ECDH-ES")
            | ("P-384", "" | "ES384" | "ECDH-ES")
            | ("P-521", "" | "ES512" | "ECDH-ES")
    );
    if !fits {
        return Err(format!(
            "the curve `{crv}` and algorithm `{alg}` do not fit an EC key"
        ));
    }
    let private = k.contains_key("d");
    if crv == "P-384" {
        // No P-384 arithmetic in the build: check the coordinate sizes.
        let sized = |n: &str| bytes_of(k, n).map(|b| b.len() == 48);
        if sized("x")? && sized("y")? && (!private || sized("d")?) {
            return Ok(());
        }
        return Err("the P-384 key has coordinates of the wrong size".into());
    }
    // The elliptic-curve crates parse only the key members (kid, alg, use refused).
    let mut bare = serde_json::Map::new();
    for name in ["kty", "crv", "x", "y", "d"] {
        if let Some(v) = k.get(name) {
            bare.insert(name.into(), v.clone());
        }
    }
    let text = serde_json::to_string(&bare).map_err(|e| e.to_string())?;
    let parsed = match (crv, private) {
        ("P-256", false) => p256::PublicKey::from_jwk_str(&text).map(|_| ()),
        ("P-256", true) => p256::SecretKey::from_jwk_str(&text).map(|_| ()),
        ("P-521", false) => p521::PublicKey::from_jwk_str(&text).map(|_| ()),
        _ => p521::SecretKey::from_jwk_str(&text).map(|_| ()),
    };
    parsed.map_err(|_| format!("the {crv} key does not parse"))
}

fn validate_okp(k: &Jwk, alg: &str) -> Result<(), String> {
    if member(k, "crv") != Some("Ed25519") || !matches!(alg, "" | "EdDSA") {
        return Err("only Ed25519 keys with alg EdDSA are supported for kty OKP".into());
    }
    let x: [u8; 32] = bytes_of(k, "x")?
        .try_into()
        .map_err(|_| "the member `x` must hold 32 bytes".to_string())?;
    ed25519_dalek::VerifyingKey::from_bytes(&x)
        .map_err(|_| "the Ed25519 public key does not parse".to_string())?;
    if k.contains_key("d") && bytes_of(k, "d")?.len() != 32 {
        return Err("the member `d` must hold 32 bytes".into());
    }
    Ok(())
}

fn validate_oct(k: &Jwk, alg: &str) -> Result<(), String> {
    if !matches!(
        alg,
        "" | "HS256" | "HS384" | "HS512" | "A128KW" | "A256KW" | "dir"
    ) {
        return Err(format!(
            "the algorithm `{alg}` does not fit a symmetric key"
        ));
    }
    bytes_of(k, "k")?;
    Ok(())
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

    /// Each step of `validate` names what is wrong, in the order the steps run.
    #[test]
    fn validation_steps_explain_the_refusal() {
        let ec = || generate("ES256", "k", "sig").unwrap().remove(1);
        let with = |mut k: Jwk, name: &str, v: Value| {
            k.insert(name.into(), v);
            k
        };
        let without = |mut k: Jwk, name: &str| {
            k.remove(name);
            k
        };
        for (key, want) in [
            (
                with(ec(), "ext", json!("yes")),
                "the member `ext` must be a boolean",
            ),
            (with(ec(), "x", json!(1)), "the member `x` must be a string"),
            (
                with(ec(), "x5c", json!([1])),
                "the member `x5c` must be an array of strings",
            ),
            (
                with(ec(), "oth", json!([1])),
                "the member `oth` must be an array of objects",
            ),
            (without(ec(), "kid"), "every key needs a `kid`"),
            (without(ec(), "alg"), "every key needs `alg`"),
            (
                with(ec(), "use", json!("wrap")),
                "the member `use` must be `sig` or `enc`, not `wrap`",
            ),
            (without(ec(), "kty"), "every key needs a `kty`"),
            (
                with(ec(), "kty", json!("XYZ")),
                "the key type `XYZ` is not supported",
            ),
            (
                with(ec(), "alg", json!("ES384")),
                "the curve `P-256` and algorithm `ES384` do not fit an EC key",
            ),
            (
                with(ec(), "x", json!("AAAA")),
                "the P-256 key does not parse",
            ),
            (
                with(with(ec(), "kty", json!("RSA")), "alg", json!("HS256")),
                "the algorithm `HS256` does not fit an RSA key",
            ),
            (
                with(with(ec(), "kty", json!("OKP")), "alg", json!("EdDSA")),
                "only Ed25519 keys with alg EdDSA are supported for kty OKP",
            ),
            (
                with(with(ec(), "kty", json!("oct")), "alg", json!("RS256")),
                "the algorithm `RS256` does not fit a symmetric key",
            ),
        ] {
            assert_eq!(validate(&key), Err(want.to_string()), "{key:?}");
        }
    }

    #[test]
    fn validates_generated_and_refuses_malformed() {
        for alg in ["ES256", "ES512", "EdDSA", "HS256"] {
            for k in generate(alg, "k", "sig").unwrap() {
                validate(&k).unwrap();
            }
        }
        let mut k = generate("ES256", "k", "sig").unwrap().remove(1);
        k.insert("x".into(), json!({"a": 1}));
        assert!(validate(&k).is_err());
        let mut k = generate("ES256", "k", "sig").unwrap().remove(1);
        k.insert("kid".into(), json!(5));
        assert!(validate(&k).is_err());
        let mut k = generate("ES256", "k", "sig").unwrap().remove(1);
        k.insert("alg".into(), json!("RS256"));
        assert!(validate(&k).is_err());
        let k: Jwk =
            serde_json::from_value(json!({"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB"}))
                .unwrap();
        assert!(validate(&k).is_err());
    }
}
