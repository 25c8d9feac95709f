//! OSEP-0011 signed routes, compatible with OpenSandbox: the control plane
//! mints `<id>-<port>-<expires_b36>-<signature>` tokens, the edge proxy
//! verifies them.
//!
//! `signature` is the first 8 hex characters of
//! SHA-256(BE32(len secret) ‖ secret ‖ BE32(len canonical) ‖ canonical),
//! followed by the one-character key id, where canonical is
//! `v1\nshort\n{id}\n{port}\n{expires_b36}\n`.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The longest base-36 expiry (`u64::MAX` is `3w5e11264sgsf`).
pub const MAX_B36_LEN: usize = 13;

/// The `<expires_b36>-<signature>` part of a signed route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedPart<'a> {
    /// Expiry in base 36, as written (it is part of the signed text).
    pub expires_b36: &'a str,
    /// Expiry as Unix seconds.
    pub expires: u64,
    /// 8 lowercase hex characters and a one-character key id.
    pub signature: &'a str,
}

/// Why a signed route is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The route expired.
    Expired,
    /// The signature does not match.
    Mismatch,
    /// No key has this id.
    UnknownKey(char),
    /// The signed part is not well-formed.
    Malformed(String),
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired => f.write_str("the signed route has expired"),
            Self::Mismatch => f.write_str("the route signature does not match"),
            Self::UnknownKey(id) => write!(f, "no signing key has id {id:?}"),
            Self::Malformed(why) => write!(f, "the signed route is malformed: {why}"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// Base 36, lowercase, no leading zeros (`0` is `"0"`).
pub fn encode_b36(mut value: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(MAX_B36_LEN);
    loop {
        out.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Decodes [`encode_b36`]'s output; rejects empty, too long, uppercase,
/// leading zeros and overflow.
pub fn decode_b36(text: &str) -> Result<u64, SignatureError> {
    let malformed = |why: &str| SignatureError::Malformed(format!("expiry {text:?}: {why}"));
    if text.is_empty() || text.len() > MAX_B36_LEN {
        return Err(malformed("must be 1 to 13 base-36 digits"));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(malformed("has a leading zero"));
    }
    text.bytes().try_fold(0u64, |acc, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return Err(malformed("has a character outside 0-9a-z")),
        };
        acc.checked_mul(36)
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or_else(|| malformed("exceeds 2^64-1"))
    })
}

/// Whether `text` has the signature shape: 8 lowercase hex digits and a key id in `[0-9a-z]`.
pub fn is_signature_shaped(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 9
        && bytes[..8]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        && (bytes[8].is_ascii_digit() || bytes[8].is_ascii_lowercase())
}

fn digest8(secret: &[u8], sandbox_id: &str, port: u16, expires_b36: &str) -> String {
    let canonical = format!("v1\nshort\n{sandbox_id}\n{port}\n{expires_b36}\n");
    let mut hasher = Sha256::new();
    hasher.update((secret.len() as u32).to_be_bytes());
    hasher.update(secret);
    hasher.update((canonical.len() as u32).to_be_bytes());
    hasher.update(canonical.as_bytes());
    let digest = hasher.finalize();
    hex::encode(&digest[..4])
}

/// The signature (9 characters) of a route with key `key_id`.
pub fn sign(secret: &[u8], key_id: char, sandbox_id: &str, port: u16, expires_b36: &str) -> String {
    let mut signature = digest8(secret, sandbox_id, port, expires_b36);
    signature.push(key_id);
    signature
}

/// Mints `(expires_b36, signature)` for a route valid until `expires` (Unix seconds).
pub fn mint(
    secret: &[u8],
    key_id: char,
    sandbox_id: &str,
    port: u16,
    expires: u64,
) -> (String, String) {
    let expires_b36 = encode_b36(expires);
    let signature = sign(secret, key_id, sandbox_id, port, &expires_b36);
    (expires_b36, signature)
}

/// Verifies a signed route at `now_unix`; `keys` maps a key id to its secret.
pub fn verify(
    keys: &dyn Fn(char) -> Option<Vec<u8>>,
    sandbox_id: &str,
    port: u16,
    signed: &SignedPart<'_>,
    now_unix: u64,
) -> Result<(), SignatureError> {
    if !is_signature_shaped(signed.signature) {
        return Err(SignatureError::Malformed(
            "the signature is not 8 hex digits and a key id".into(),
        ));
    }
    let key_id = char::from(signed.signature.as_bytes()[8]);
    let secret = keys(key_id).ok_or(SignatureError::UnknownKey(key_id))?;
    let expected = sign(&secret, key_id, sandbox_id, port, signed.expires_b36);
    if !constant_time_eq(expected.as_bytes(), signed.signature.as_bytes()) {
        return Err(SignatureError::Mismatch);
    }
    if now_unix > signed.expires {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compares without an early exit on the first difference (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_round_trips_the_reference_vectors() {
        for (value, text) in [
            (0, "0"),
            (1, "1"),
            (35, "z"),
            (36, "10"),
            (2_000_000_000, "x2qxvk"),
            (u64::MAX, "3w5e11264sgsf"),
        ] {
            assert_eq!(encode_b36(value), text);
            assert_eq!(decode_b36(text), Ok(value));
        }
        for bad in ["", "00", "0a", "A", "x-", "3w5e11264sgsg", "12345678901234"] {
            assert!(decode_b36(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn minted_routes_verify_until_they_expire() {
        let secret = b"top secret";
        let keys = |id: char| (id == 'a').then(|| secret.to_vec());
        let (b36, signature) = mint(secret, 'a', "sbx-001", 8080, 2_000_000_000);
        assert_eq!(signature.len(), 9);
        let signed = SignedPart {
            expires_b36: &b36,
            expires: 2_000_000_000,
            signature: &signature,
        };
        assert_eq!(
            verify(&keys, "sbx-001", 8080, &signed, 1_999_999_999),
            Ok(())
        );
        assert_eq!(
            verify(&keys, "sbx-001", 8080, &signed, 2_000_000_001),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify(&keys, "sbx-001", 8081, &signed, 0),
            Err(SignatureError::Mismatch)
        );
        let other = sign(secret, 'b', "sbx-001", 8080, &b36);
        let unknown = SignedPart {
            signature: &other,
            ..signed
        };
        assert_eq!(
            verify(&keys, "sbx-001", 8080, &unknown, 0),
            Err(SignatureError::UnknownKey('b'))
        );
    }

    #[test]
    fn digests_and_comparison() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"short", b"longer"));
    }
}
