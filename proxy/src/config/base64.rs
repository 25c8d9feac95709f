//! Decoding of verification keys: standard-alphabet base64, padding optional.
//!
//! OpenSandbox's server accepts unpadded keys while its ingress demanded
//! padding, so a key one side took could crash the other; this accepts both.

/// Decodes `text`, or says why it is not base64.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, String> {
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    if padding > 0 && (padding > 2 || !text.len().is_multiple_of(4)) {
        return Err("has '=' padding in the wrong place".to_owned());
    }
    if body.len() % 4 == 1 {
        return Err("has a length no base64 text can have".to_owned());
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    let mut buffer = 0u32;
    let mut held = 0u32;
    for (position, byte) in body.bytes().enumerate() {
        let value = value_of(byte)
            .ok_or_else(|| format!("has a character outside the base64 alphabet at {position}"))?;
        buffer = (buffer << 6) | u32::from(value);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((buffer >> held) as u8);
            buffer &= (1 << held) - 1;
        }
    }
    if buffer != 0 {
        return Err("ends in bits that are not zero, so it is not canonical base64".to_owned());
    }
    Ok(out)
}

fn value_of(byte: u8) -> Option<u8> {
    Some(match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::decode;

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
