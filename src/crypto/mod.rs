//! Cryptography: AES-GCM at rest, client-secret hashing, key generation.
pub mod aead;
pub mod hasher;
pub mod jwk;
pub mod jws;
pub mod token;

use rand::RngCore;

/// Random alphanumeric-plus string from Hydra's secret alphabet (`[a-zA-Z0-9_-.~]`).
pub fn random_secret(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.~";
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| {
            // 66 symbols: rejection sampling keeps the distribution uniform.
            loop {
                let b = (rng.next_u32() & 0x7f) as usize;
                if b < ALPHABET.len() {
                    return ALPHABET[b] as char;
                }
            }
        })
        .collect()
}

/// A random (version 4) UUID from the thread-local CSPRNG: no system call per id.
pub fn uuid_v4() -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
