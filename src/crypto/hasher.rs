//! Client-secret hashing: argon2id for new secrets; bcrypt (`$2…`) hashes imported from Hydra
//! still verify. The caller owns the argon2 working memory (`Scratch`), so a bounded pool of
//! workers keeps a bounded, reused amount of memory instead of allocating 19 MiB per call.
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

#[derive(Debug, thiserror::Error)]
#[error("secret hashing failed: {0}")]
pub struct HashError(String);

/// The largest argon2 memory a stored hash may ask for (4 GiB, in KiB). A hash asking for more
/// cannot have been written by Portcullis or Hydra's defaults and is refused, not computed.
pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// argon2id parameters for new hashes (`oauth2.hashers.argon2.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Memory per hash, in KiB. Each concurrent hash holds this much.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub salt_length: usize,
    pub key_length: usize,
}

impl Default for Argon2Settings {
    /// OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane), the argon2 crate's defaults.
    fn default() -> Self {
        Argon2Settings {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
            salt_length: 16,
            key_length: 32,
        }
    }
}

impl Argon2Settings {
    /// The argon2 parameters, or why they are not usable.
    pub fn params(&self) -> Result<Params, String> {
        if !(8..=48).contains(&self.salt_length) {
            return Err("salt_length must be between 8 and 48 bytes".into());
        }
        if !(16..=64).contains(&self.key_length) {
            return Err("key_length must be between 16 and 64 bytes".into());
        }
        if self.memory_kib > MAX_MEMORY_KIB {
            return Err("memory must be at most 4GiB".into());
        }
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(self.key_length),
        )
        .map_err(|e| e.to_string())
    }
}

/// Reusable argon2 working memory; grows to the largest hash it has computed.
#[derive(Default)]
pub struct Scratch(Vec<Block>);

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scratch({} KiB)", self.0.len())
    }
}

impl Scratch {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        if self.0.len() < n {
            self.0.resize(n, Block::new());
        }
        &mut self.0[..n]
    }

    /// Memory held, in KiB.
    pub fn kib(&self) -> usize {
        self.0.len()
    }
}

/// A new argon2id hash of `secret` in PHC string form.
pub fn hash(
    secret: &str,
    settings: &Argon2Settings,
    scratch: &mut Scratch,
) -> Result<String, HashError> {
    let params = settings.params().map_err(HashError)?;
    let mut salt = vec![0u8; settings.salt_length];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    let mut salt_raw = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_raw)
        .map_err(|e| HashError(e.to_string()))?;
    let mut out = vec![0u8; settings.key_length];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            secret.as_bytes(),
            salt_bytes,
            &mut out,
            scratch.blocks(&params),
        )
        .map_err(|e| HashError(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| HashError(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| HashError(e.to_string()))?),
    };
    Ok(phc.to_string())
}

/// Constant-time verification of `secret` against an argon2 or bcrypt hash. Unparseable
/// hashes and argon2 hashes asking for more than `MAX_MEMORY_KIB` never verify.
pub fn verify(secret: &str, stored: &str, scratch: &mut Scratch) -> bool {
    if stored.starts_with("$2") {
        return bcrypt::verify(secret, stored).unwrap_or(false);
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_raw = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_raw) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        secret.as_bytes(),
        salt_bytes,
        &mut out,
        scratch.blocks(&params),
    );
    computed.is_ok() && subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    #[test]
    fn argon2_and_bcrypt() {
        let mut scratch = Scratch::default();
        let settings = Argon2Settings::default();
        let h = hash("s3cret-value", &settings, &mut scratch).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("s3cret-value", &h, &mut scratch));
        assert!(!verify("wrong", &h, &mut scratch));
        assert_eq!(scratch.kib(), 19456);
        let b = bcrypt::hash("imported", 4).unwrap();
        assert!(verify("imported", &b, &mut scratch));
        assert!(!verify("nope", &b, &mut scratch));
        assert!(!verify("x", "garbage", &mut scratch));
    }

    #[test]
    fn verifies_hashes_made_elsewhere_and_with_other_settings() {
        let mut scratch = Scratch::default();
        // A hash written by the argon2 crate's own API (as earlier Portcullis versions did).
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"legacy", &salt)
            .unwrap()
            .to_string();
        assert!(verify("legacy", &theirs, &mut scratch));
        assert!(!verify("legacy!", &theirs, &mut scratch));
        let custom = Argon2Settings {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 2,
            salt_length: 32,
            key_length: 48,
        };
        let h = hash("other", &custom, &mut scratch).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8192,t=1,p=2$"));
        assert!(verify("other", &h, &mut scratch));
        assert!(!verify(
            "other",
            &h.replace("m=8192", "m=9999999"),
            &mut scratch
        ));
    }

    #[test]
    fn settings_are_validated() {
        let bad = |f: fn(&mut Argon2Settings)| {
            let mut s = Argon2Settings::default();
            f(&mut s);
            s.params().is_err()
        };
        assert!(bad(|s| s.salt_length = 4));
        assert!(bad(|s| s.key_length = 8));
        assert!(bad(|s| s.iterations = 0));
        assert!(bad(|s| s.parallelism = 0));
        assert!(bad(|s| s.memory_kib = 4)); // below 8 KiB per lane
        assert!(bad(|s| s.memory_kib = MAX_MEMORY_KIB + 1));
        assert!(Argon2Settings::default().params().is_ok());
    }
}
