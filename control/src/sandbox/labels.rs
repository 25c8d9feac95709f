//! Metadata label rules (Kubernetes label syntax), shared by create and PATCH.
//!
//! Metadata never becomes a container label as it is: the Docker runtime
//! stores each key under its own `sandgate.io/metadata.` prefix, so a key such
//! as `traefik.enable` or `com.docker.compose.project` cannot steer tools that
//! read labels. Keys under Sandgate's and OpenSandbox's own prefixes would
//! collide with the labels the runtime writes and are refused.

/// The prefixes reserved for Sandgate's and OpenSandbox's own labels.
pub const RESERVED_PREFIXES: [&str; 2] = ["opensandbox.io/", "sandgate.io/"];

const MAX_NAME: usize = 63;
const MAX_PREFIX: usize = 253;
const MAX_VALUE: usize = 63;

/// Checks a metadata key: `name` or `prefix/name`, where the prefix is a DNS
/// subdomain of at most 253 characters and the name at most 63 characters of
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || prefix.len() > MAX_PREFIX || !is_dns_subdomain(prefix))
    {
        return Err(format!(
            "metadata key {key:?}: the prefix before '/' must be a lowercase DNS subdomain of at most {MAX_PREFIX} characters"
        ));
    }
    if name.is_empty() || name.len() > MAX_NAME || !is_label_name(name) {
        return Err(format!(
            "metadata key {key:?}: the name must be 1-{MAX_NAME} characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks a metadata value: empty, or at most 63 characters of
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub fn check_value(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || (value.len() <= MAX_VALUE && is_label_name(value)) {
        Ok(())
    } else {
        Err(format!(
            "metadata value {value:?} for key {key:?} must be empty or at most {MAX_VALUE} characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// The reserved prefix `key` uses, if any.
pub fn reserved_prefix(key: &str) -> Option<&'static str> {
    RESERVED_PREFIXES
        .into_iter()
        .find(|prefix| key.starts_with(prefix))
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let edge = |b: u8| b.is_ascii_alphanumeric();
    let inner = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    match bytes {
        [] => false,
        [only] => edge(*only),
        [first, middle @ .., last] => {
            edge(*first) && edge(*last) && middle.iter().all(|b| inner(*b))
        }
    }
}

/// `label(.label)*` with `label = [a-z0-9]([-a-z0-9]*[a-z0-9])?`.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(is_dns_label)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    matches_dns_label_pattern(s, 63)
}

/// The DNS-label character pattern with a custom length limit
/// (claim names follow it with up to 253 characters).
pub fn matches_dns_label_pattern(s: &str, max_len: usize) -> bool {
    let bytes = s.as_bytes();
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let inner = |b: u8| edge(b) || b == b'-';
    s.len() <= max_len
        && match bytes {
            [] => false,
            [only] => edge(*only),
            [first, middle @ .., last] => {
                edge(*first) && edge(*last) && middle.iter().all(|b| inner(*b))
            }
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubernetes_style_keys_and_values() {
        for key in ["k8s.io/name", "example.com/label", "team", "a", "A1_b-2.c"] {
            assert!(check_key(key).is_ok(), "{key}");
        }
        assert!(check_value("team", "A1_b-2.c").is_ok());
        assert!(check_value("team", "").is_ok());
        let long_prefix = format!("{}.io/name", "a".repeat(60));
        assert!(check_key(&long_prefix).is_ok());
    }

    #[test]
    fn rejects_malformed_keys_and_values() {
        for key in [
            "Bad Key",
            "INVALID_PREFIX.io/name",
            "/name",
            "pre/",
            "",
            "-a",
            "a-",
        ] {
            assert!(check_key(key).is_err(), "{key}");
        }
        assert!(check_key(&"n".repeat(64)).is_err());
        assert!(check_value("k", &"v".repeat(64)).is_err());
        assert!(check_value("k", "has space").is_err());
        assert!(check_value("k", "-lead").is_err());
    }

    #[test]
    fn reserved_prefixes() {
        assert_eq!(
            reserved_prefix("opensandbox.io/id"),
            Some("opensandbox.io/")
        );
        assert_eq!(
            reserved_prefix("sandgate.io/metadata"),
            Some("sandgate.io/")
        );
        assert_eq!(reserved_prefix("opensandbox.io.evil/key"), None);
        assert_eq!(reserved_prefix("traefik.enable"), None);
    }
}
