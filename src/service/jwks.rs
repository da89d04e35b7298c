//! JSON Web Key sets: generation, encryption at rest, the cached public JWKS document.
//! Signers, public keys and the JWKS document are cached per process and kept coherent across
//! replicas by `service::changes`: an entry is served only while no key-set change has been
//! seen since it was read, and never more than `changes::BOUND` after a change anywhere.
use super::changes::{Changes, Kind};
use crate::crypto::aead::{Aead, AeadError};
use crate::crypto::jwk as gen;
use crate::crypto::jws::{JwsError, Signer};
use crate::domain::jwk::ID_TOKEN_SET;
use crate::domain::jwk::{is_public, kid, Jwk};
use crate::store::{Store, StoreError, StoredKey};
use arc_swap::ArcSwapOption;
use axum::body::Bytes;
use dashmap::DashMap;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("The requested resource could not be found")]
    SetNotFound,
    #[error("Unable to locate the resource")]
    KeyNotFound,
    #[error("a key with this kid exists already in the set")]
    Conflict,
    #[error("{0}")]
    BadRequest(String),
    /// The database failed (not found and conflicts have their own variants).
    #[error("internal error: {0}")]
    Store(#[source] StoreError),
    /// A key could not be encoded to or decoded from JSON.
    #[error("internal error: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored key did not decrypt with the system secrets, or sealing failed.
    #[error("internal error: {0}")]
    Seal(#[from] AeadError),
    /// Key generation failed.
    #[error("internal error: {0}")]
    Generate(#[from] gen::JwkError),
    /// The newest signing key did not load.
    #[error("internal error: {0}")]
    Signer(#[from] JwsError),
    /// A set that must sign holds no private key Portcullis can sign with.
    #[error("internal error: no RSA, P-256 or Ed25519 private key in the set {set}")]
    NoSigningKey { set: String },
    /// A blocking task (key generation, key parsing) panicked or was cancelled.
    #[error("internal error: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<StoreError> for JwksError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => JwksError::KeyNotFound,
            StoreError::Conflict(_) => JwksError::Conflict,
            other => JwksError::Store(other),
        }
    }
}

#[derive(Debug)]
pub struct Jwks {
    pub store: Store,
    pub aead: Arc<Aead>,
    pub clock: Arc<dyn super::Clock>,
    pub broadcast: Vec<String>,
    changes: Changes,
    /// The JWKS document, tagged with the generation it was read under.
    cache: ArcSwapOption<(u64, Bytes)>,
    /// The discovery document with the signing algorithms of the ID-token keys, tagged the same.
    discovery: ArcSwapOption<(u64, Bytes)>,
    signers: DashMap<String, (u64, Arc<Signer>)>,
    public_keys: DashMap<String, (u64, Arc<Vec<Jwk>>)>,
}

impl Jwks {
    pub fn new(
        store: Store,
        aead: Arc<Aead>,
        clock: Arc<dyn super::Clock>,
        broadcast: Vec<String>,
    ) -> Jwks {
        Jwks {
            store,
            aead,
            clock,
            broadcast,
            changes: Changes::local(),
            cache: ArcSwapOption::empty(),
            discovery: ArcSwapOption::empty(),
            signers: DashMap::new(),
            public_keys: DashMap::new(),
        }
    }

    /// Keeps the caches coherent with key-set changes made by other replicas.
    pub fn watching(mut self, changes: Changes) -> Jwks {
        self.changes = changes;
        self
    }

    fn seal(&self, set: &str, key: &Jwk) -> Result<StoredKey, JwksError> {
        let plain = serde_json::to_vec(key)?;
        Ok(StoredKey {
            set_id: set.to_string(),
            kid: kid(key).to_string(),
            keydata: self.aead.encrypt(&plain)?,
            created_at: self.clock.now().unix_timestamp(),
        })
    }

    fn open(&self, k: &StoredKey) -> Result<Jwk, JwksError> {
        let plain = self.aead.decrypt(&k.keydata)?;
        Ok(serde_json::from_slice(&plain)?)
    }

    fn invalidate(&self) {
        self.changes.changed_here(Kind::Keys);
        self.cache.store(None);
        self.discovery.store(None);
        self.signers.clear();
        self.public_keys.clear();
    }

    /// The signer of `set`: its newest private key that signs (RSA for RS256, P-256 for ES256,
    /// Ed25519 for EdDSA, as Hydra 2.x picks the newest key), parsed once and kept until a key
    /// change here or on any replica (jwk/helper.go picks the newest pair). A signer is never
    /// used once a change to the key sets has been seen, so no token is signed with a key
    /// deleted more than `changes::BOUND` ago.
    pub async fn signer(&self, set: &str) -> Result<Arc<Signer>, JwksError> {
        if let Some(s) = self.signers.get(set) {
            if self.changes.valid(Kind::Keys, s.0) {
                return Ok(s.1.clone());
            }
        }
        let tag = self.changes.generation(Kind::Keys);
        let keys = self.get_set(set).await?;
        let private = keys
            .iter()
            .find(|k| {
                kid(k).starts_with("private:") && crate::crypto::jws::signing_alg(k).is_some()
            })
            .ok_or_else(|| JwksError::NoSigningKey { set: set.into() })?
            .clone();
        let signer = tokio::task::spawn_blocking(move || Signer::from_jwk(&private)).await??;
        let signer = Arc::new(signer);
        self.signers.insert(set.to_string(), (tag, signer.clone()));
        Ok(signer)
    }

    pub async fn id_token_signer(&self) -> Result<Arc<Signer>, JwksError> {
        self.signer(ID_TOKEN_SET).await
    }

    /// Public keys of `set` (to verify `id_token_hint` and JWT access tokens), cached.
    pub async fn public_keys(&self, set: &str) -> Result<Arc<Vec<Jwk>>, JwksError> {
        if let Some(k) = self.public_keys.get(set) {
            if self.changes.valid(Kind::Keys, k.0) {
                return Ok(k.1.clone());
            }
        }
        let tag = self.changes.generation(Kind::Keys);
        let keys: Arc<Vec<Jwk>> = Arc::new(
            self.get_set(set)
                .await?
                .into_iter()
                .filter(is_public)
                .collect(),
        );
        self.public_keys
            .insert(set.to_string(), (tag, keys.clone()));
        Ok(keys)
    }

    pub async fn id_token_public_keys(&self) -> Result<Arc<Vec<Jwk>>, JwksError> {
        self.public_keys(ID_TOKEN_SET).await
    }

    /// Generates keys for `alg` into `set` (201 with private material, as Hydra).
    pub async fn generate(
        &self,
        set: &str,
        alg: &str,
        kid: &str,
        key_use: &str,
    ) -> Result<Vec<Jwk>, JwksError> {
        if !gen::SUPPORTED.contains(&alg) {
            return Err(JwksError::BadRequest(
                gen::JwkError::UnknownAlg(alg.to_string()).to_string(),
            ));
        }
        let kid = if kid.is_empty() {
            crate::crypto::uuid_v4().to_string()
        } else {
            kid.to_string()
        };
        let key_use = if key_use.is_empty() {
            "sig".to_string()
        } else {
            key_use.to_string()
        };
        let alg_owned = alg.to_string();
        let keys = tokio::task::spawn_blocking(move || gen::generate(&alg_owned, &kid, &key_use))
            .await??;
        let rows = keys
            .iter()
            .map(|k| self.seal(set, k))
            .collect::<Result<Vec<_>, _>>()?;
        self.store.add_keys(&rows).await?;
        self.invalidate();
        Ok(keys)
    }

    pub async fn get_set(&self, set: &str) -> Result<Vec<Jwk>, JwksError> {
        let rows = self.store.get_set(set).await?;
        if rows.is_empty() {
            return Err(JwksError::SetNotFound);
        }
        rows.iter().map(|r| self.open(r)).collect()
    }

    pub async fn get_key(&self, set: &str, kid_: &str) -> Result<Vec<Jwk>, JwksError> {
        let row = self.store.get_key(set, kid_).await?;
        Ok(vec![self.open(&row)?])
    }

    pub async fn replace_set(&self, set: &str, keys: Vec<Jwk>) -> Result<Vec<Jwk>, JwksError> {
        for k in &keys {
            validate(k)?;
        }
        let rows = keys
            .iter()
            .map(|k| self.seal(set, k))
            .collect::<Result<Vec<_>, _>>()?;
        self.store.replace_set(set, &rows).await?;
        self.invalidate();
        Ok(keys)
    }

    pub async fn replace_key(&self, set: &str, key: Jwk) -> Result<Jwk, JwksError> {
        validate(&key)?;
        self.store.replace_key(&self.seal(set, &key)?).await?;
        self.invalidate();
        Ok(key)
    }

    pub async fn delete_set(&self, set: &str) -> Result<(), JwksError> {
        self.store.delete_set(set).await?;
        self.invalidate();
        Ok(())
    }

    pub async fn delete_key(&self, set: &str, kid_: &str) -> Result<(), JwksError> {
        self.store.delete_key(set, kid_).await?;
        self.invalidate();
        Ok(())
    }

    /// Ensures the RS256 sets Hydra creates on first start exist. Replicas starting together
    /// may all generate a key, but only the first to commit stores it
    /// (`add_keys_if_set_empty`); the others drop theirs and use the stored set.
    pub async fn ensure_set(&self, set: &str) -> Result<(), JwksError> {
        if !self.store.get_set(set).await?.is_empty() {
            return Ok(());
        }
        let keys = tokio::task::spawn_blocking(move || {
            gen::generate("RS256", &crate::crypto::uuid_v4().to_string(), "sig")
        })
        .await??;
        let rows = keys
            .iter()
            .map(|k| self.seal(set, k))
            .collect::<Result<Vec<_>, _>>()?;
        match self.store.add_keys_if_set_empty(set, &rows).await {
            Ok(_) => {}
            // Serializable backends (CockroachDB) may abort the loser of the race: the winner's
            // set is there, which is all this asks for.
            Err(e) if !self.store.get_set(set).await?.is_empty() => {
                tracing::debug!(error = %e, set, "another replica created the key set first");
            }
            Err(e) => return Err(e.into()),
        }
        self.invalidate();
        Ok(())
    }

    /// The discovery document: `base` plus the algorithms ID tokens and userinfo JWTs are
    /// signed with, the current signer's first, then those of the set's older private keys.
    /// Cached like the JWKS document, until a key changes on any replica.
    pub async fn discovery(&self, base: &Value) -> Result<Bytes, JwksError> {
        if let Some(doc) = self.discovery.load_full() {
            if self.changes.valid(Kind::Keys, doc.0) {
                return Ok(Bytes::clone(&doc.1));
            }
        }
        let tag = self.changes.generation(Kind::Keys);
        let mut algs: Vec<&'static str> = Vec::new();
        for k in self.get_set(ID_TOKEN_SET).await? {
            if !kid(&k).starts_with("private:") {
                continue;
            }
            if let Some(alg) = crate::crypto::jws::signing_alg(&k) {
                if !algs.contains(&alg) {
                    algs.push(alg);
                }
            }
        }
        if algs.is_empty() {
            algs.push("RS256");
        }
        let mut doc = base.clone();
        doc["id_token_signing_alg_values_supported"] = json!(algs);
        let mut userinfo = vec!["none"];
        userinfo.extend(algs.iter().copied());
        doc["userinfo_signing_alg_values_supported"] = json!(userinfo);
        let doc = Bytes::from(serde_json::to_vec(&doc)?);
        self.discovery.store(Some(Arc::new((tag, doc.clone()))));
        Ok(doc)
    }

    /// The public JWKS document over the broadcast sets, rendered once and cached until a
    /// key changes.
    pub async fn public_document(&self) -> Result<Bytes, JwksError> {
        if let Some(doc) = self.cache.load_full() {
            if self.changes.valid(Kind::Keys, doc.0) {
                return Ok(Bytes::clone(&doc.1));
            }
        }
        let tag = self.changes.generation(Kind::Keys);
        let mut keys: Vec<Value> = Vec::new();
        for set in &self.broadcast {
            for k in self.get_set(set).await? {
                if kid(&k).starts_with("public:") && is_public(&k) {
                    keys.push(Value::Object(k));
                }
            }
        }
        let doc = Bytes::from(serde_json::to_vec(&json!({ "keys": keys }))?);
        self.cache.store(Some(Arc::new((tag, doc.clone()))));
        Ok(doc)
    }
}

/// Keys sent by users must at least name their type and id.
fn validate(k: &Jwk) -> Result<(), JwksError> {
    if k.get("kty")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(JwksError::BadRequest("every key needs a `kty`".into()));
    }
    if kid(k).is_empty() {
        return Err(JwksError::BadRequest("every key needs a `kid`".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// Not found and conflicts keep their meaning; every other failure wraps its cause and
    /// reads as before (`internal error: <cause>`).
    #[test]
    fn errors_keep_their_cause() {
        assert!(matches!(
            JwksError::from(StoreError::NotFound),
            JwksError::KeyNotFound
        ));
        assert!(matches!(
            JwksError::from(StoreError::Conflict("kid".into())),
            JwksError::Conflict
        ));
        let json = serde_json::from_str::<Jwk>("{").map(|_| ()).unwrap_err();
        for (e, cause) in [
            (
                JwksError::from(StoreError::Corrupt("row 7".into())),
                "stored data is unreadable: row 7",
            ),
            (
                JwksError::from(AeadError::Decrypt),
                "ciphertext could not be decrypted with any configured system secret",
            ),
            (
                JwksError::from(gen::JwkError::Generation("rng".into())),
                "key generation failed: rng",
            ),
            (
                JwksError::from(JwsError::Key("no d".into())),
                "the signing key is not a usable private key: no d",
            ),
            (
                JwksError::from(json),
                "EOF while parsing an object at line 1 column 1",
            ),
        ] {
            assert_eq!(e.to_string(), format!("internal error: {cause}"));
            let source = e.source().map(ToString::to_string);
            assert_eq!(source.as_deref(), Some(cause), "{e:?}");
        }
        let none = JwksError::NoSigningKey { set: "s".into() };
        assert_eq!(
            none.to_string(),
            "internal error: no RSA, P-256 or Ed25519 private key in the set s"
        );
    }
}
