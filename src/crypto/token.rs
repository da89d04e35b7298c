//! Opaque tokens in fosite's HMAC format (fosite token/hmac/hmacsha.go):
//! `b64url(32 random bytes) "." b64url(HMAC-SHA512/256(key, random bytes))`, key = SHA-256 of a
//! system secret. Only the part after the dot (the signature) is ever stored.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512_256};

type HmacSha = Hmac<Sha512_256>;

const ENTROPY: usize = 32;

#[derive(Clone)]
pub struct TokenHmac {
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for TokenHmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHmac({} keys)", self.keys.len())
    }
}

impl TokenHmac {
    /// `secrets[0]` signs new tokens; every entry validates.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> TokenHmac {
        TokenHmac {
            keys: secrets
                .iter()
                .map(|s| Sha256::digest(s.as_ref()).into())
                .collect(),
        }
    }

    /// HMAC takes keys of any length, so this is always `Some`.
    fn mac(key: &[u8; 32]) -> Option<HmacSha> {
        <HmacSha as Mac>::new_from_slice(key).ok()
    }

    /// A new token and its signature.
    pub fn generate(&self) -> Option<(String, String)> {
        let key = self.keys.first()?;
        let mut raw = [0u8; ENTROPY];
        // Thread-local CSPRNG (ChaCha, seeded from the OS): no system call per token.
        rand::thread_rng().fill_bytes(&mut raw);
        let mut mac = Self::mac(key)?;
        mac.update(&raw);
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Some((format!("{}.{sig}", URL_SAFE_NO_PAD.encode(raw)), sig))
    }

    /// The signature of a well-formed token whose HMAC verifies under any configured key.
    pub fn validate<'t>(&self, token: &'t str) -> Option<&'t str> {
        let (raw, sig) = token.split_once('.')?;
        let raw = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let sig_bytes = URL_SAFE_NO_PAD.decode(sig).ok()?;
        if raw.is_empty() {
            return None;
        }
        self.keys
            .iter()
            .filter_map(Self::mac)
            .any(|mut mac| {
                mac.update(&raw);
                mac.verify_slice(&sig_bytes).is_ok()
            })
            .then_some(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rotation() {
        let old = TokenHmac::new(&["old-secret-0123456789"]);
        let (token, sig) = old.generate().unwrap();
        assert_eq!(old.validate(&token), Some(sig.as_str()));
        let rotated = TokenHmac::new(&["new-secret-0123456789", "old-secret-0123456789"]);
        assert_eq!(rotated.validate(&token), Some(sig.as_str()));
        let other = TokenHmac::new(&["new-secret-0123456789"]);
        assert_eq!(other.validate(&token), None);
        assert_eq!(other.validate("garbage"), None);
        assert_eq!(other.validate("a.b.c"), None);
        // 32 random bytes and a 32-byte MAC: 43 characters each, no padding.
        let (raw, mac) = token.split_once('.').unwrap();
        assert_eq!((raw.len(), mac.len()), (43, 43));
    }
}
