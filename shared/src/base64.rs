//! A small base64 decoder for OSEP-0011 signing keys (standard alphabet,
//! padding optional), used by the control plane and the edge proxy alike:
//! OpenSandbox's server accepted unpadded keys while its ingress demanded
//! padding, so a key one side took could crash the other.
//!
//! Written here rather than pulled in as a dependency: the config needs one
//! strict decode of short strings and nothing else.

/// Decodes standard-alphabet base64, with or without `=` padding.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let unpadded = strip_padding(text)?;
    if unpadded.len() % 4 == 1 {
        return Err("has an impossible length for base64".to_owned());
    }
    let mut out = Vec::with_capacity(unpadded.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for (index, byte) in unpadded.bytes().enumerate() {
        let Some(value) = sextet(byte) else {
            return Err(format!("has a non-base64 character at position {index}"));
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    if acc & ((1 << bits) - 1) != 0 {
        return Err("has non-zero trailing bits; it is not canonical base64".to_owned());
    }
    Ok(out)
}

/// Removes padding after checking it is at most two `=` that complete a 4-character group.
fn strip_padding(text: &str) -> Result<&str, String> {
    let unpadded = text.trim_end_matches('=');
    let pad = text.len() - unpadded.len();
    if pad == 0 {
        return Ok(unpadded);
    }
    if pad > 2 || !text.len().is_multiple_of(4) {
        return Err("has misplaced '=' padding".to_owned());
    }
    Ok(unpadded)
}

/// The value of one base64 character.
fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
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
