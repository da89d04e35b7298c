//! AES-256-GCM at rest, as Hydra's jwk/aead.go: key = SHA-256(secret), output
//! `base64url_padded(nonce ‖ ciphertext ‖ tag)`; decryption tries the current then rotated keys.
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AeadError {
    #[error("no system secret is configured")]
    NoKey,
    #[error("ciphertext could not be decrypted with any configured system secret")]
    Decrypt,
    #[error("random number generator failure")]
    Random,
}

pub struct Aead {
    keys: Vec<LessSafeKey>,
}

impl std::fmt::Debug for Aead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Aead({} keys)", self.keys.len())
    }
}

impl Aead {
    /// `secrets[0]` encrypts; all of them decrypt.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Aead {
        let keys = secrets
            .iter()
            .filter_map(|s| {
                let digest = ring::digest::digest(&ring::digest::SHA256, s.as_ref());
                UnboundKey::new(&AES_256_GCM, digest.as_ref())
                    .ok()
                    .map(LessSafeKey::new)
            })
            .collect();
        Aead { keys }
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, AeadError> {
        let key = self.keys.first().ok_or(AeadError::NoKey)?;
        // A random 96-bit nonce from the thread-local CSPRNG (ChaCha, seeded and reseeded from
        // the OS): no system call per encryption on the token hot path.
        let mut nonce = [0u8; NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
        let mut buf = plaintext.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| AeadError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(URL_SAFE.encode(out))
    }

    pub fn decrypt(&self, ciphertext: &str) -> Result<Vec<u8>, AeadError> {
        let raw = URL_SAFE
            .decode(ciphertext.trim())
            .map_err(|_| AeadError::Decrypt)?;
        if raw.len() < NONCE_LEN {
            return Err(AeadError::Decrypt);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        for key in &self.keys {
            let mut buf = body.to_vec();
            let n = Nonce::try_assume_unique_for_key(nonce).map_err(|_| AeadError::Decrypt)?;
            if let Ok(plain) = key.open_in_place(n, Aad::empty(), &mut buf) {
                return Ok(plain.to_vec());
            }
        }
        Err(AeadError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rotation() {
        let old = Aead::new(&["old-secret-0123456789"]);
        let sealed = old.encrypt(b"hello").unwrap();
        let rotated = Aead::new(&["new-secret-0123456789", "old-secret-0123456789"]);
        assert_eq!(rotated.decrypt(&sealed).unwrap(), b"hello");
        let fresh = rotated.encrypt(b"again").unwrap();
        assert_eq!(old.decrypt(&fresh), Err(AeadError::Decrypt));
        let other = Aead::new(&["unrelated-secret-0123"]);
        assert_eq!(other.decrypt(&sealed), Err(AeadError::Decrypt));
        assert_eq!(other.decrypt("not base64!"), Err(AeadError::Decrypt));
    }
}
