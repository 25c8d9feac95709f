//! Validated identifiers used on the wire, in labels and in route keys.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest sandbox id accepted: one DNS label, so `<id>-<port>.<domain>`
/// host names stay valid.
pub const MAX_SANDBOX_ID_LEN: usize = 63;

/// A sandbox identifier.
///
/// Sandgate generates lowercase UUIDv4 strings (36 characters, with hyphens),
/// as OpenSandbox does. Ids adopted from a runtime are accepted when they are a
/// lowercase DNS label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters),
/// which every route form can carry.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(String);

/// Why a string is not a [`SandboxId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    /// The string is empty.
    #[error("sandbox id is empty")]
    Empty,
    /// The string is longer than [`MAX_SANDBOX_ID_LEN`].
    #[error("sandbox id is {0} characters long; the limit is {MAX_SANDBOX_ID_LEN}")]
    TooLong(usize),
    /// The string is not a lowercase DNS label.
    #[error("sandbox id {0:?} must be lowercase letters, digits and inner hyphens")]
    Invalid(String),
}

impl SandboxId {
    /// A fresh random id (lowercase UUIDv4 with hyphens).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SandboxId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseIdError::Empty);
        }
        if s.len() > MAX_SANDBOX_ID_LEN {
            return Err(ParseIdError::TooLong(s.len()));
        }
        let bytes = s.as_bytes();
        let inner_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        let ends_ok = bytes[0] != b'-' && bytes[bytes.len() - 1] != b'-';
        if inner_ok && ends_ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseIdError::Invalid(s.to_owned()))
        }
    }
}

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for SandboxId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for SandboxId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SandboxId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = SandboxId::generate();
        assert_eq!(id.as_str().len(), 36);
        assert_eq!(id.as_str().parse::<SandboxId>(), Ok(id));
    }

    #[test]
    fn rejects_non_labels() {
        assert_eq!("".parse::<SandboxId>(), Err(ParseIdError::Empty));
        assert!("-abc".parse::<SandboxId>().is_err());
        assert!("abc-".parse::<SandboxId>().is_err());
        assert!("ABC".parse::<SandboxId>().is_err());
        assert!("a/b".parse::<SandboxId>().is_err());
        assert!("a".repeat(64).parse::<SandboxId>().is_err());
        assert!("sbx-001".parse::<SandboxId>().is_ok());
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in ".*") {
            let _ = s.parse::<SandboxId>();
        }
    }
}
