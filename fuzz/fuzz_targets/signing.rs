//! Fuzzes `sandgate_shared::signing`: base-36 expiries round-trip, `verify` never panics on arbitrary input, and a minted signature verifies before expiry and never for another port.
//!
//! Invariants checked:
//! - `decode_b36(text) == Ok(v)` implies `encode_b36(v) == text` (one
//!   spelling per value), and `decode_b36(encode_b36(v)) == Ok(v)` for every
//!   `v`;
//! - `is_signature_shaped` matches a reference definition (8 lowercase hex
//!   digits and a key id in `[0-9a-z]`);
//! - `verify` never panics on an arbitrary id, port, expiry, signature and
//!   time, returns `Malformed` exactly for non-signature-shaped signatures,
//!   `UnknownKey` for key ids without a secret, and `Ok` only for the right
//!   signature before expiry;
//! - `sign` and `mint` agree with `reference_sign`, an independent
//!   implementation of the OSEP-0011 digest written here from its
//!   definition; every expected result (and the collision exception below)
//!   is computed with it, never with the code under test;
//! - a route minted with a key id in `[0-9a-z]` verifies at any time up to
//!   its expiry, is `Expired` after it, is `Mismatch` for another port
//!   (unless the 32-bit truncated digests genuinely collide, which the
//!   8-hex-digit OSEP-0011 format allows and which is not a bug), and its
//!   `<id>-<port>-<expires_b36>-<signature>` token parses back with
//!   `parse_token` to the same, still valid, signed part.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sandgate_shared::route_key::{SignedPart, parse_token};
use sandgate_shared::signing::{
    MAX_B36_LEN, SignatureError, decode_b36, encode_b36, is_signature_shaped, mint, sign, verify,
};
use sha2::{Digest, Sha256};

/// The key ids a signature can carry (the last signature character).
const KEY_IDS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// Text for `decode_b36`.
    b36_text: &'a str,
    /// Value for `encode_b36`.
    value: u64,
    sandbox_id: &'a str,
    port: u16,
    /// Port to verify a minted route against (made different from `port`).
    other_port: u16,
    /// Expiry used both for minting and as the arbitrary `SignedPart`'s expiry.
    expires: u64,
    /// Arbitrary `SignedPart` fields for the no-panic check.
    expires_b36: &'a str,
    signature: &'a str,
    now: u64,
    secret: &'a [u8],
    /// Which of `KEY_IDS` has `secret` (index mod 36).
    key_index: u8,
}

/// The OSEP-0011 signature, written from the format's definition (see
/// `shared/src/signing.rs`) rather than by calling `sign`, so that a bug in
/// `sign` cannot hide itself: the first 8 hex digits of
/// SHA-256(BE32(len secret) ‖ secret ‖ BE32(len canonical) ‖ canonical)
/// and the key id, with canonical `v1\nshort\n{id}\n{port}\n{expires_b36}\n`.
fn reference_sign(secret: &[u8], key_id: char, id: &str, port: u16, expires_b36: &str) -> String {
    let canonical = format!("v1\nshort\n{id}\n{port}\n{expires_b36}\n");
    let be32 = |n: usize| {
        u32::try_from(n)
            .unwrap_or_else(|_| unreachable!())
            .to_be_bytes()
    };
    let digest = Sha256::new()
        .chain_update(be32(secret.len()))
        .chain_update(secret)
        .chain_update(be32(canonical.len()))
        .chain_update(canonical.as_bytes())
        .finalize();
    let word = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    format!("{word:08x}{key_id}")
}

fuzz_target!(|input: Input<'_>| {
    check_b36(&input);
    check_shape(input.signature);
    check_arbitrary_verify(&input);
    check_minted(&input);
});

fn check_b36(input: &Input<'_>) {
    if let Ok(value) = decode_b36(input.b36_text) {
        assert_eq!(encode_b36(value), input.b36_text, "{value}");
    }
    let text = encode_b36(input.value);
    assert!(!text.is_empty() && text.len() <= MAX_B36_LEN, "{text:?}");
    assert_eq!(decode_b36(&text), Ok(input.value), "{text:?}");
}

fn check_shape(text: &str) {
    let b = text.as_bytes();
    let reference = b.len() == 9
        && b[..8]
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && matches!(b[8], b'0'..=b'9' | b'a'..=b'z');
    assert_eq!(is_signature_shaped(text), reference, "{text:?}");
}

fn key_id(input: &Input<'_>) -> char {
    char::from(KEY_IDS[usize::from(input.key_index) % KEY_IDS.len()])
}

fn check_arbitrary_verify(input: &Input<'_>) {
    let id = key_id(input);
    let keys = |k: char| (k == id).then(|| input.secret.to_vec());
    let signed = SignedPart {
        expires_b36: input.expires_b36,
        expires: input.expires,
        signature: input.signature,
    };
    let result = verify(&keys, input.sandbox_id, input.port, &signed, input.now);
    if !is_signature_shaped(input.signature) {
        assert!(
            matches!(result, Err(SignatureError::Malformed(_))),
            "{result:?}"
        );
        return;
    }
    let carried = char::from(input.signature.as_bytes()[8]);
    if carried != id {
        assert_eq!(result, Err(SignatureError::UnknownKey(carried)));
        return;
    }
    let expected = reference_sign(
        input.secret,
        id,
        input.sandbox_id,
        input.port,
        input.expires_b36,
    );
    assert_eq!(
        sign(
            input.secret,
            id,
            input.sandbox_id,
            input.port,
            input.expires_b36
        ),
        expected,
        "sign disagrees with the OSEP-0011 definition"
    );
    let want = if expected != input.signature {
        Err(SignatureError::Mismatch)
    } else if input.now > input.expires {
        Err(SignatureError::Expired)
    } else {
        Ok(())
    };
    assert_eq!(result, want, "{input:?}");
}

fn check_minted(input: &Input<'_>) {
    let id = key_id(input);
    let keys = |k: char| (k == id).then(|| input.secret.to_vec());
    let no_keys = |_: char| None;
    let (sandbox_id, port, expires) = (input.sandbox_id, input.port, input.expires);

    let (b36, signature) = mint(input.secret, id, sandbox_id, port, expires);
    assert_eq!(b36, encode_b36(expires));
    assert_eq!(
        signature,
        reference_sign(input.secret, id, sandbox_id, port, &b36),
        "mint disagrees with the OSEP-0011 definition"
    );
    assert!(is_signature_shaped(&signature), "{signature:?}");
    assert!(signature.ends_with(id), "{signature:?}");
    let signed = SignedPart {
        expires_b36: &b36,
        expires,
        signature: &signature,
    };

    let before = input.now.min(expires);
    assert_eq!(
        verify(&keys, sandbox_id, port, &signed, before),
        Ok(()),
        "{input:?}"
    );
    assert_eq!(
        verify(&keys, sandbox_id, port, &signed, expires),
        Ok(()),
        "{input:?}"
    );
    if let Some(after) = expires.checked_add(1) {
        let at = input.now.max(after);
        assert_eq!(
            verify(&keys, sandbox_id, port, &signed, at),
            Err(SignatureError::Expired),
            "{input:?}"
        );
    }
    assert_eq!(
        verify(&no_keys, sandbox_id, port, &signed, before),
        Err(SignatureError::UnknownKey(id))
    );

    let other_port = if input.other_port == port {
        port.wrapping_add(1)
    } else {
        input.other_port
    };
    let other = verify(&keys, sandbox_id, other_port, &signed, before);
    if reference_sign(input.secret, id, sandbox_id, other_port, &b36) == signature {
        // A genuine collision of the 32-bit truncated digest (probability
        // 2^-32 per input): the signature is valid for both ports by design.
        assert_eq!(other, Ok(()));
    } else {
        assert_eq!(
            other,
            Err(SignatureError::Mismatch),
            "{input:?} port {other_port}"
        );
    }

    // The minted token survives the route-key parser and still verifies.
    if !sandbox_id.is_empty() && port != 0 {
        let token = format!("{sandbox_id}-{port}-{b36}-{signature}");
        let key = parse_token(&token).unwrap_or_else(|e| panic!("{token:?}: {e}"));
        assert_eq!((key.sandbox_id, key.port), (sandbox_id, port), "{token:?}");
        assert_eq!(key.signed, Some(signed), "{token:?}");
        let parsed = key.signed.unwrap_or_else(|| unreachable!());
        assert_eq!(
            verify(&keys, key.sandbox_id, key.port, &parsed, before),
            Ok(())
        );
    }
}
