//! Secrets in memory and at rest.
//!
//! [`Secret`] keeps a value out of `Debug` output and logs. [`SecretBox`]
//! seals values with XChaCha20-Poly1305 under the installation's data key, so
//! a copy of the database alone does not hand out honey secrets.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// A string that must not be printed by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The value itself; every call site is a place a secret leaves memory.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

const SEALED_PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the data key must be 32 bytes, base64-encoded (44 characters); generate one with `honeytrail init` or `head -c32 /dev/urandom | base64`")]
    BadKey,
    #[error("a sealed secret in the store is damaged or not in honeytrail's format")]
    Malformed,
    #[error("a sealed secret cannot be opened with this data key: it was sealed under another key; set HONEYTRAIL_SECRET_KEY (or `secret_key_file`) to the key this store was created with")]
    WrongKey,
}

/// Seals and opens secrets with one 256-bit key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// Builds a box from a base64-encoded 32-byte key.
    pub fn from_base64(key: &str) -> Result<SecretBox, SecretError> {
        let bytes = B64.decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Ok(SecretBox { cipher: XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretError::BadKey)? })
    }

    /// A fresh random key, base64-encoded.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        B64.encode(key)
    }

    pub fn seal(&self, secret: &Secret) -> String {
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), secret.expose().as_bytes())
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory input");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", B64.encode(blob))
    }

    pub fn open(&self, sealed: &str) -> Result<Secret, SecretError> {
        let blob = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .filter(|b| b.len() > 24)
            .ok_or(SecretError::Malformed)?;
        let (nonce, body) = blob.split_at(24);
        let plain = self.cipher.decrypt(XNonce::from_slice(nonce), body).map_err(|_| SecretError::WrongKey)?;
        String::from_utf8(plain).map(Secret).map_err(|_| SecretError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_key() {
        let a = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let b = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let sealed = a.seal(&s);
        assert!(!sealed.contains("EXAMPLEKEY"));
        assert_ne!(sealed, a.seal(&s), "nonces must differ");
        assert_eq!(a.open(&sealed).unwrap(), s);
        assert!(matches!(b.open(&sealed), Err(SecretError::WrongKey)));
        assert!(matches!(a.open("v1:!!"), Err(SecretError::Malformed)));
        assert!(matches!(SecretBox::from_base64("c2hvcnQ="), Err(SecretError::BadKey)));
    }

    #[test]
    fn debug_never_shows_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}

/// A random bearer credential (a one-time link, a session, an API token):
/// 32 random bytes, URL-safe base64, with `prefix` so a leaked one is
/// recognisable in a secret scanner.
pub fn new_bearer(prefix: &str) -> Secret {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::new(format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// What is stored of a bearer credential: its SHA-256, hex. Bearer
/// credentials carry 256 random bits, so a fast hash is enough (a password
/// needs a slow one).
pub fn bearer_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod bearer_tests {
    use super::*;

    #[test]
    fn bearers_are_random_prefixed_and_hash_stably() {
        let a = new_bearer("htq_");
        let b = new_bearer("htq_");
        assert!(a.expose().starts_with("htq_") && a.expose().len() == 4 + 43);
        assert_ne!(a.expose(), b.expose());
        // printf abc | sha256sum
        assert_eq!(bearer_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
