//! Outbound webhook signing per the Standard Webhooks spec (the scheme Svix uses), so a
//! receiver can check our deliveries with any of that spec's libraries.
//!
//! A delivery carries `webhook-id`, `webhook-timestamp` and `webhook-signature`. The
//! signature is HMAC-SHA256 over `{msg_id}.{timestamp}.{body}`, keyed with the base64 part
//! of a `whsec_` secret, sent as `v1,<base64>`; during secret rotation several entries are
//! sent, separated by single spaces, so receivers holding either secret accept it.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix every secret carries, so a secret is recognisable wherever it is pasted.
const SECRET_PREFIX: &str = "whsec_";
/// Shorter keys make the HMAC guessable; the spec's own libraries generate 24–64 bytes.
const MIN_KEY_LEN: usize = 16;
/// Bytes of randomness in a generated secret (the HMAC-SHA256 block-size sweet spot).
const GENERATED_KEY_LEN: usize = 32;
/// The only signature version this module writes or accepts.
const VERSION: &str = "v1";

/// Why a secret cannot sign. Messages never echo the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The secret does not start with `whsec_`.
    #[error("webhook secret must start with `whsec_`")]
    MissingPrefix,
    /// The part after `whsec_` is not standard, padded base64.
    #[error("webhook secret is not valid base64 after `whsec_`")]
    NotBase64,
    /// The decoded key is too short to be safe.
    #[error("webhook secret key is {len} bytes; at least {MIN_KEY_LEN} are required")]
    TooShort {
        /// Length of the decoded key in bytes.
        len: usize,
    },
    /// No secret was given, which would send an unsigned delivery.
    #[error("no webhook secret to sign with")]
    NoSecrets,
}

/// A new random secret: `whsec_` + base64 (standard alphabet, padded) of 32 random bytes.
pub fn generate_secret() -> String {
    // `rand::random` draws from the thread-local CSPRNG, seeded from the OS.
    let key: [u8; GENERATED_KEY_LEN] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` value for `secrets` (each `whsec_…`), space-separated `v1,<b64>`
/// entries in the given order. Fails on the first malformed secret, or when there are none.
pub fn signature_header(
    secrets: &[&str],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SigningError> {
    if secrets.is_empty() {
        return Err(SigningError::NoSecrets);
    }
    let entries = secrets
        .iter()
        .map(|secret| {
            let key = decode_secret(secret)?;
            Ok(format!("{VERSION},{}", sign(&key, msg_id, timestamp, body)))
        })
        .collect::<Result<Vec<_>, SigningError>>()?;
    Ok(entries.join(" "))
}

/// Whether `header` (a `webhook-signature` value, possibly several space-separated entries)
/// holds a valid v1 signature by `secret` for this message. Entries of other versions or
/// malformed ones are ignored; a malformed secret verifies nothing. Timestamp freshness
/// (replay protection) is the caller's check.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Ok(key) = decode_secret(secret) else {
        return false;
    };
    let expected = sign(&key, msg_id, timestamp, body);
    let expected = expected.as_bytes();
    header
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .any(|(_, candidate)| {
            let candidate = candidate.as_bytes();
            // Length first: comparing only the common prefix would accept a truncated
            // signature. The length of a signature is public, so this leaks nothing.
            candidate.len() == expected.len() && bool::from(candidate.ct_eq(expected))
        })
}

/// The HMAC key of a `whsec_` secret, tolerating surrounding whitespace from copy-paste.
fn decode_secret(secret: &str) -> Result<Vec<u8>, SigningError> {
    let encoded = secret
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SigningError::MissingPrefix)?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| SigningError::NotBase64)?;
    if key.len() < MIN_KEY_LEN {
        return Err(SigningError::TooShort { len: key.len() });
    }
    Ok(key)
}

/// Base64 of HMAC-SHA256(`key`, `{msg_id}.{timestamp}.{body}`), fed in pieces so the body
/// is not copied.
fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks test vector ("sign function works" in the spec repository's
    // libraries/javascript/src/webhook.test.ts).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    /// A second, unrelated secret (bytes 0..32) for rotation cases.
    const OTHER_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn signature_header_matches_the_standard_webhooks_test_vector() {
        assert_eq!(
            signature_header(&[SECRET], MSG_ID, TIMESTAMP, BODY).as_deref(),
            Ok(SIGNATURE)
        );
    }

    #[test]
    fn signature_header_cases() {
        let cases: &[(&str, &[&str], Result<&str, SigningError>)] = &[
            ("spec vector", &[SECRET], Ok(SIGNATURE)),
            (
                "secret with surrounding whitespace",
                &["  whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"],
                Ok(SIGNATURE),
            ),
            ("no secrets", &[], Err(SigningError::NoSecrets)),
            (
                "one malformed secret among good ones",
                &[SECRET, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                Err(SigningError::MissingPrefix),
            ),
        ];
        for (name, secrets, expected) in cases {
            assert_eq!(
                signature_header(secrets, MSG_ID, TIMESTAMP, BODY).as_deref(),
                expected.as_deref(),
                "case: {name}"
            );
        }
    }

    #[test]
    fn malformed_secrets_are_signing_errors() {
        let cases = [
            (
                "no prefix",
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SigningError::MissingPrefix,
            ),
            (
                "upper-case prefix",
                "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SigningError::MissingPrefix,
            ),
            ("empty string", "", SigningError::MissingPrefix),
            (
                "not base64",
                "whsec_not base64 at all!",
                SigningError::NotBase64,
            ),
            (
                "url-safe alphabet",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La-_Sw",
                SigningError::NotBase64,
            ),
            (
                "missing padding",
                "whsec_AAECAwQFBgcICQoLDA0ODw",
                SigningError::NotBase64,
            ),
            ("empty key", "whsec_", SigningError::TooShort { len: 0 }),
            (
                "15-byte key",
                "whsec_AAECAwQFBgcICQoLDA0O",
                SigningError::TooShort { len: 15 },
            ),
        ];
        for (name, secret, expected) in cases {
            assert_eq!(
                signature_header(&[secret], MSG_ID, TIMESTAMP, BODY),
                Err(expected),
                "case: {name}"
            );
            assert!(
                !verify(secret, MSG_ID, TIMESTAMP, BODY, SIGNATURE),
                "case: {name} verified"
            );
        }
    }

    #[test]
    fn sixteen_byte_key_is_enough() {
        let secret = "whsec_AAECAwQFBgcICQoLDA0ODw==";
        let header = signature_header(&[secret], MSG_ID, TIMESTAMP, BODY);
        assert!(header.is_ok_and(|header| verify(secret, MSG_ID, TIMESTAMP, BODY, &header)));
    }

    #[test]
    fn two_secrets_give_two_entries_in_order_and_either_verifies() {
        let header = signature_header(&[SECRET, OTHER_SECRET], MSG_ID, TIMESTAMP, BODY)
            .expect("both secrets are valid");
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2, "header: {header}");
        assert_eq!(entries[0], SIGNATURE);
        assert!(entries[1].starts_with("v1,") && entries[1] != SIGNATURE);

        let reversed = signature_header(&[OTHER_SECRET, SECRET], MSG_ID, TIMESTAMP, BODY)
            .expect("both secrets are valid");
        assert_eq!(reversed, format!("{} {}", entries[1], entries[0]));

        for (name, secret, expected) in [
            ("first secret", SECRET, true),
            ("second secret", OTHER_SECRET, true),
            ("unrelated secret", "whsec_AAECAwQFBgcICQoLDA0ODw==", false),
        ] {
            assert_eq!(
                verify(secret, MSG_ID, TIMESTAMP, BODY, &header),
                expected,
                "case: {name}"
            );
        }
    }

    /// One `verify` call and its expected answer; cases override fields of `SPEC_CASE`.
    struct VerifyCase<'a> {
        name: &'a str,
        secret: &'a str,
        msg_id: &'a str,
        timestamp: i64,
        body: &'a [u8],
        header: &'a str,
        valid: bool,
    }

    const SPEC_CASE: VerifyCase<'static> = VerifyCase {
        name: "spec vector",
        secret: SECRET,
        msg_id: MSG_ID,
        timestamp: TIMESTAMP,
        body: BODY,
        header: SIGNATURE,
        valid: true,
    };

    #[test]
    fn verify_cases() {
        let sig = SIGNATURE.trim_start_matches("v1,");
        let v2 = format!("v2,{sig}");
        let v2_then_v1 = format!("v2,{sig} {SIGNATURE}");
        let garbage_then_valid = format!("nonsense v1 v1,!!! ,{sig} v1,{sig}");
        let extended = format!("{SIGNATURE}AAAA");
        let cases = [
            SPEC_CASE,
            VerifyCase {
                name: "secret with surrounding whitespace",
                secret: " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\t",
                ..SPEC_CASE
            },
            VerifyCase {
                name: "v2 entry before the v1 one",
                header: &v2_then_v1,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "garbage entries ignored",
                header: &garbage_then_valid,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "tampered body",
                body: br#"{"test": 2432232315}"#,
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "empty body",
                body: b"",
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "tampered id",
                msg_id: "msg_p5jXN8AQM9LWM0D4loKWxJeK",
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "tampered timestamp",
                timestamp: TIMESTAMP + 1,
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "other secret",
                secret: OTHER_SECRET,
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "malformed secret",
                secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "truncated by one character",
                header: &SIGNATURE[..SIGNATURE.len() - 1],
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "truncated to eight characters",
                header: &SIGNATURE[.."v1,".len() + 8],
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "truncated to nothing",
                header: "v1,",
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "extended signature",
                header: &extended,
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "right signature labelled v2",
                header: &v2,
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "right signature without version",
                header: sig,
                valid: false,
                ..SPEC_CASE
            },
            VerifyCase {
                name: "empty header",
                header: "",
                valid: false,
                ..SPEC_CASE
            },
        ];
        for case in cases {
            assert_eq!(
                verify(
                    case.secret,
                    case.msg_id,
                    case.timestamp,
                    case.body,
                    case.header
                ),
                case.valid,
                "case: {}",
                case.name
            );
        }
    }

    #[test]
    fn generated_secret_decodes_to_32_bytes_and_round_trips() {
        let secret = generate_secret();
        assert!(secret.starts_with("whsec_"), "secret: {secret}");
        assert_eq!(decode_secret(&secret).map(|key| key.len()), Ok(32));
        assert_ne!(secret, generate_secret(), "two secrets should differ");

        let header = signature_header(&[&secret], MSG_ID, TIMESTAMP, BODY)
            .expect("a generated secret signs");
        assert!(verify(&secret, MSG_ID, TIMESTAMP, BODY, &header));
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP, BODY, &header));
    }
}
