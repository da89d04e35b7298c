//! Client-secret hashing: argon2id for new secrets; bcrypt (`$2…`) hashes imported from Hydra
//! still verify. Verification runs on the blocking pool.
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

#[derive(Debug, thiserror::Error)]
#[error("secret hashing failed: {0}")]
pub struct HashError(String);

pub fn hash(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Constant-time verification of `secret` against an argon2 or bcrypt hash.
pub fn verify(secret: &str, stored: &str) -> bool {
    if stored.starts_with("$2") {
        return bcrypt::verify(secret, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_and_bcrypt() {
        let h = hash("s3cret-value").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret-value", &h));
        assert!(!verify("wrong", &h));
        let b = bcrypt::hash("imported", 4).unwrap();
        assert!(verify("imported", &b));
        assert!(!verify("nope", &b));
        assert!(!verify("x", "garbage"));
    }
}
