//! HTTP/1.1 framing rules every hop applies (RFC 9110 §7.6.1, §8.6;
//! RFC 9112 §6): which fields `Connection` may never remove and how a
//! `Content-Length` list folds. Pure functions on bytes, shared by both
//! proxy paths, the control plane's relay and the fuzz targets.

/// Fields a `Connection` option never removes: they frame the message or
/// name its target, so dropping them would change how the next hop splits
/// the byte stream into requests.
pub const FRAMING: [&str; 3] = ["content-length", "transfer-encoding", "host"];

/// Whether `Connection` may remove the field `name` (any case).
pub fn removable_by_connection(name: &str) -> bool {
    !FRAMING
        .iter()
        .any(|framing| name.eq_ignore_ascii_case(framing))
}

/// Whether a `Connection` option names no field to drop: the connection
/// options themselves, and the framing fields no option may remove (in
/// requests and in responses alike).
pub fn is_connection_token_kept(token: &[u8]) -> bool {
    token.is_empty()
        || token.eq_ignore_ascii_case(b"close")
        || token.eq_ignore_ascii_case(b"keep-alive")
        || FRAMING
            .iter()
            .any(|f| token.eq_ignore_ascii_case(f.as_bytes()))
}

/// The fields one `Connection` value names for removal: its options
/// except those [`is_connection_token_kept`] keeps.
pub fn named_fields(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|token| !is_connection_token_kept(token))
}

/// Folds one `Content-Length` field value into the length seen so far:
/// a comma-separated list of identical numbers is that number (RFC 9110
/// §8.6). `None` for a value that is not a number or differs.
pub fn fold_length(prior: Option<u64>, value: &[u8]) -> Option<u64> {
    let mut length = prior;
    for item in value.split(|b| *b == b',') {
        let n = parse_length(item)?;
        match length {
            Some(seen) if seen != n => return None,
            _ => length = Some(n),
        }
    }
    length
}

/// One `Content-Length` value: decimal digits only (at most 19, so it
/// fits), surrounding whitespace ignored.
pub fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_lengths_fold_and_differing_ones_do_not() {
        assert_eq!(fold_length(None, b"5"), Some(5));
        assert_eq!(fold_length(None, b"5, 5"), Some(5));
        assert_eq!(fold_length(Some(5), b"5"), Some(5));
        assert_eq!(fold_length(None, b"5, 6"), None);
        assert_eq!(fold_length(Some(4), b"5"), None);
        for bad in [&b""[..], b"+5", b"0x5", b"5;", b"99999999999999999999"] {
            assert_eq!(fold_length(None, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn connection_never_removes_framing_fields() {
        for name in ["Content-Length", "HOST", "transfer-encoding"] {
            assert!(!removable_by_connection(name), "{name}");
            assert!(is_connection_token_kept(name.as_bytes()), "{name}");
        }
        assert!(removable_by_connection("x-hop"));
        let named: Vec<&[u8]> =
            named_fields(b"close, Content-Length,X-Hop ,, keep-alive").collect();
        assert_eq!(named, [&b"X-Hop"[..]]);
        assert!(!is_connection_token_kept(b"x-hop"));
    }
}
