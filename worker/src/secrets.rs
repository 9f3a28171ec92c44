//! Secret header values: sealed at rest with AES-256-GCM under `LEADRELAY_SECRET_KEY`,
//! and never shown whole (ARCHITECTURE §7).

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{Aead, Payload},
};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use leadrelay_entity::integration_header;
use std::fmt;

/// Marks a sealed value (and its format version).
const SEALED_PREFIX: &str = "v1.";
/// Length of an AES-GCM nonce.
const NONCE_LEN: usize = 12;

/// The key that seals secret values at rest: 32 bytes, given as 64 hex digits or base64.
#[derive(Clone)]
pub struct SecretKey(Aes256Gcm);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(redacted)")
    }
}

/// A sealed value that does not open under this key (another key, or tampered).
#[derive(Debug, thiserror::Error)]
#[error(
    "a secret value does not open with LEADRELAY_SECRET_KEY (another key sealed it, or it was altered)"
)]
pub struct Unsealable;

impl SecretKey {
    /// Parses 32 bytes written as 64 hex digits or as base64 (standard or URL-safe).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|e| e.to_string())?
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|_| "must be 32 bytes as 64 hex digits or base64".to_owned())?
        };
        Self::from_bytes(&bytes)
    }

    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Aes256Gcm::new_from_slice(bytes)
            .map(Self)
            .map_err(|_| format!("must be 32 bytes, not {}", bytes.len()))
    }

    /// A fresh random key and its base64 text (for embedded mode's data dir).
    pub fn generate() -> (Self, String) {
        let bytes: [u8; 32] = rand::random();
        let text = STANDARD.encode(bytes);
        (Self::from_bytes(&bytes).expect("32 bytes"), text)
    }

    /// Seals `value`, bound to `context` (e.g. the integration id and header name), so a
    /// sealed value copied to another row does not open there.
    pub fn seal(&self, value: &str, context: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .0
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: value.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed by [`SecretKey::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, Unsealable> {
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(Unsealable)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .0
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Unsealable)?;
        String::from_utf8(plain).map_err(|_| Unsealable)
    }
}

/// Whether a stored value is sealed (values written before sealing existed are not).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// What a header value is bound to when sealed: its integration and (lower-case) name.
pub fn header_context(integration_id: &str, name: &str) -> String {
    format!("header:{integration_id}:{}", name.to_ascii_lowercase())
}

/// Opens a stored header's value.
pub fn open_header(key: &SecretKey, h: &integration_header::Model) -> Result<String, Unsealable> {
    key.open(&h.value, &header_context(&h.integration_id, &h.name))
}

/// The preview of a secret header value: its first 4 characters when it has 12 or
/// more, else `••••`, so short secrets reveal nothing.
pub fn preview(value: &str) -> String {
    if value.chars().count() >= 12 {
        format!("{}••••", value.chars().take(4).collect::<String>())
    } else {
        "••••".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::parse(&"ab".repeat(32)).unwrap()
    }

    #[test]
    fn long_values_show_four_characters() {
        assert_eq!(preview("Bearer abcdefghijkl"), "Bear••••");
    }

    #[test]
    fn short_values_show_nothing() {
        assert_eq!(preview("short-key"), "••••");
        assert_eq!(preview(""), "••••");
    }

    #[test]
    fn sealed_values_open_with_the_same_key_and_context() {
        let sealed = key().seal("Bearer s3cret", "header:int_1:authorization");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            key().open(&sealed, "header:int_1:authorization").unwrap(),
            "Bearer s3cret"
        );
    }

    #[test]
    fn sealing_twice_gives_different_text() {
        assert_ne!(key().seal("x", "c"), key().seal("x", "c"));
    }

    #[test]
    fn another_context_key_or_a_flipped_byte_does_not_open() {
        let sealed = key().seal("Bearer s3cret", "header:int_1:authorization");
        assert!(key().open(&sealed, "header:int_2:authorization").is_err());
        let (other, _) = SecretKey::generate();
        assert!(other.open(&sealed, "header:int_1:authorization").is_err());
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        bytes[NONCE_LEN] ^= 1;
        let tampered = format!("v1.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert!(key().open(&tampered, "header:int_1:authorization").is_err());
        assert!(key().open("plain text", "c").is_err());
    }

    #[test]
    fn keys_parse_from_hex_and_base64_only_at_32_bytes() {
        assert!(SecretKey::parse(&"0f".repeat(32)).is_ok());
        let (_, text) = SecretKey::generate();
        assert!(SecretKey::parse(&text).is_ok());
        assert!(SecretKey::parse(&STANDARD.encode([1u8; 16])).is_err());
        assert!(SecretKey::parse("not a key").is_err());
        assert!(format!("{:?}", key()).contains("redacted"));
    }
}
