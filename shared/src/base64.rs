//! Decoding the base64 signing keys both the control plane and the edge
//! proxy are configured with (standard alphabet, padding optional):
//! OpenSandbox's server accepted unpadded keys while its ingress demanded
//! padding, so a key one side took could crash the other. One function, so
//! both sides accept exactly the same keys.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard alphabet; trailing bits must be zero. Padding is checked by
/// [`decode`]: the crate's `Indifferent` mode also takes partial padding
/// (`Zg=`), which OpenSandbox's ingress refuses.
const KEYS: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes standard-alphabet base64, with or without `=` padding. The error
/// says what is wrong and where, never which byte: the text is a secret.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    if text.ends_with('=') && !text.len().is_multiple_of(4) {
        return Err("has misplaced '=' padding".to_owned());
    }
    KEYS.decode(text).map_err(|err| match err {
        base64::DecodeError::InvalidByte(offset, b'=') => {
            format!("has misplaced '=' padding at position {offset}")
        }
        base64::DecodeError::InvalidByte(offset, _) => {
            format!("has a non-base64 character at position {offset}")
        }
        base64::DecodeError::InvalidLength(_) => "has an impossible length for base64".to_owned(),
        base64::DecodeError::InvalidLastSymbol(..) => {
            "has non-zero trailing bits; it is not canonical base64".to_owned()
        }
        base64::DecodeError::InvalidPadding => "has misplaced '=' padding".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_padded_and_unpadded() {
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode("Zg==").unwrap(), b"f");
        assert_eq!(decode("Zg").unwrap(), b"f");
        assert_eq!(decode("Zm8=").unwrap(), b"fo");
        assert_eq!(decode("Zm8").unwrap(), b"fo");
        assert_eq!(decode("Zm9v").unwrap(), b"foo");
        assert_eq!(decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(decode("+/+/").unwrap(), vec![0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn rejects_malformed_input() {
        assert!(decode("Z").is_err(), "one leftover character");
        assert!(decode("Zm9v!").is_err(), "bad character");
        assert!(decode("Zm-_").is_err(), "URL-safe alphabet");
        assert!(decode("Zg=").is_err(), "padding does not complete a group");
        assert!(decode("Z===").is_err(), "too much padding");
        assert!(decode("Zh==").is_err(), "non-canonical trailing bits");
        assert!(decode("Zg==Zg==").is_err(), "padding in the middle");
    }

    #[test]
    fn accepts_padded_and_unpadded_text() {
        assert_eq!(decode("c2VjcmV0").unwrap(), b"secret");
        assert_eq!(decode("YQ==").unwrap(), b"a");
        assert_eq!(decode("YQ").unwrap(), b"a");
        assert_eq!(decode("YWI=").unwrap(), b"ab");
        assert_eq!(decode("YWI").unwrap(), b"ab");
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode("//8=").unwrap(), vec![0xff, 0xff]);
    }

    #[test]
    fn rejects_what_is_not_base64() {
        for bad in ["Y", "YQ=", "Y===", "YR==", "YQ==YQ==", "YW-_", "a b="] {
            assert!(decode(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
