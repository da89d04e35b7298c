//! `keys create|get|delete|import`: JSON Web Key sets over the admin API, printed as Hydra
//! v1.9.2's `hydra keys` does (cmd/cli/handler_jwk.go).
use super::clients::path_segment;
use super::output::{go_json, shape_key_set};
use super::remote::{line, with_json, Api, Fail, Outcome, Remote, RemoteFlags};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use clap::{Args, Subcommand};
use reqwest::Method;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{json, Map, Value};
use std::io::Write;

#[derive(Args, Debug)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    remote: RemoteFlags,
    #[command(subcommand)]
    cmd: KeysCmd,
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// Generate a key (pair) in a set and print the set.
    Create {
        set: String,
        /// Key ID (a UUID when omitted); key pairs get private:/public: prefixes.
        kid: Option<String>,
        /// RS256, ES256, ES512, HS256, HS512 or EdDSA.
        #[arg(short = 'a', long = "alg", default_value = "RS256")]
        alg: String,
        /// Key use: sig or enc.
        #[arg(short = 'u', long = "use", default_value = "sig")]
        key_use: String,
    },
    /// Print a key set (wrapped in {"Payload": ...}, as Hydra v1.9.2 prints it).
    Get { set: String },
    /// Delete a key set.
    Delete { set: String },
    /// Add keys from files to a set (created if missing), then store the set.
    ///
    /// Accepts JWK JSON files (one key, or a set with "keys") and PEM-encoded RSA keys
    /// (PKCS#1 or PKCS#8, private or public). Other PEM key types are refused.
    Import {
        set: String,
        #[arg(required = true)]
        files: Vec<String>,
        /// "use" for keys that do not name one.
        #[arg(long = "use", default_value = "sig")]
        key_use: String,
        /// Key ID for keys that do not carry one (a UUID otherwise).
        #[arg(long = "default-key-id", default_value = "")]
        default_key_id: String,
    },
}

pub(crate) async fn run(args: KeysArgs, out: &mut dyn Write) -> Outcome {
    let remote = Remote::connect(&args.remote, Api::Admin)?;
    match &args.cmd {
        KeysCmd::Create {
            set,
            kid,
            alg,
            key_use,
        } => {
            let body = json!({"alg": alg, "kid": kid.clone().unwrap_or_default(), "use": key_use});
            let path = format!("/keys/{}", path_segment(set));
            let rb = with_json(remote.request(Method::POST, &path), &body);
            let created = remote.expect(rb, &[200, 201]).await?.json()?;
            line(out, &go_json(&shape_key_set(&created)))
        }
        KeysCmd::Get { set } => {
            let path = format!("/keys/{}", path_segment(set));
            let got = remote
                .expect(remote.request(Method::GET, &path), &[200])
                .await?
                .json()?;
            // Hydra v1.9.2 prints the whole go-swagger response object, hence "Payload".
            let wrapped = json!({"Payload": shape_key_set(&got)});
            line(out, &go_json(&wrapped))
        }
        KeysCmd::Delete { set } => {
            let path = format!("/keys/{}", path_segment(set));
            remote
                .expect(remote.request(Method::DELETE, &path), &[204])
                .await?;
            line(out, &format!("JSON Web Key Set deleted: {set}"))
        }
        KeysCmd::Import {
            set,
            files,
            key_use,
            default_key_id,
        } => {
            let path = format!("/keys/{}", path_segment(set));
            let existing = remote
                .expect(remote.request(Method::GET, &path), &[200, 404])
                .await?;
            let mut keys: Vec<Value> = if existing.status.as_u16() == 200 {
                existing
                    .json()?
                    .get("keys")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            for file in files {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| Fail(format!("cannot read {file}: {e}")))?;
                for mut key in load_keys(&text).map_err(|e| Fail(format!("{file}: {e}")))? {
                    name_key(&mut key, key_use, default_key_id);
                    let kid = key.get("kid").cloned();
                    keys.retain(|k| k.get("kid") != kid.as_ref());
                    keys.push(Value::Object(key));
                }
                line(out, &format!("Successfully loaded key from file: {file}"))?;
            }
            let rb = with_json(remote.request(Method::PUT, &path), &json!({"keys": keys}));
            remote.expect(rb, &[200]).await?;
            line(out, "JSON Web Key Set successfully imported!")
        }
    }
}

/// Sets `use` and `kid` when the key lacks them; generated kids get Hydra's private:/public:
/// prefix depending on whether the key holds private material.
fn name_key(key: &mut Map<String, Value>, key_use: &str, default_kid: &str) {
    if key
        .get("use")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        key.insert("use".into(), key_use.into());
    }
    if key
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        let base = if default_kid.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            default_kid.to_string()
        };
        let prefix = if crate::domain::jwk::is_public(key) {
            "public"
        } else {
            "private"
        };
        key.insert("kid".into(), format!("{prefix}:{base}").into());
    }
}

/// Keys in a file: a JWK, a JWK set, or a PEM-encoded RSA key.
fn load_keys(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let keys = match v.get("keys").and_then(Value::as_array) {
            Some(a) => a.clone(),
            None => vec![v],
        };
        return keys
            .into_iter()
            .map(|k| match k {
                Value::Object(m) if m.get("kty").and_then(Value::as_str).is_some() => Ok(m),
                _ => Err("every JSON Web Key needs a \"kty\" member".to_string()),
            })
            .collect();
    }
    if trimmed.starts_with("-----BEGIN") {
        return rsa_pem(trimmed).map(|k| vec![k]);
    }
    Err("neither a JSON Web Key nor a PEM-encoded key".into())
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(B64.encode(bytes))
}

fn rsa_pem(pem: &str) -> Result<Map<String, Value>, String> {
    use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .ok();
    if let Some(key) = private {
        let (p, q) = match key.primes() {
            [p, q] => (p, q),
            _ => return Err("multi-prime RSA keys are not supported".into()),
        };
        let one = rsa::BigUint::from(1u8);
        let dp = key.d() % (p - &one);
        let dq = key.d() % (q - &one);
        let qi = key
            .crt_coefficient()
            .ok_or("the RSA key has no CRT coefficient")?;
        let v = json!({
            "kty": "RSA",
            "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
            "d": b64(&key.d().to_bytes_be()), "p": b64(&p.to_bytes_be()), "q": b64(&q.to_bytes_be()),
            "dp": b64(&dp.to_bytes_be()), "dq": b64(&dq.to_bytes_be()), "qi": b64(&qi.to_bytes_be()),
        });
        return Ok(v.as_object().cloned().unwrap_or_default());
    }
    let public = rsa::RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|_| {
            "only RSA keys are supported in PEM form (PKCS#1 or PKCS#8); convert other keys to JWK"
                .to_string()
        })?;
    let v = json!({"kty": "RSA", "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())});
    Ok(v.as_object().cloned().unwrap_or_default())
}
