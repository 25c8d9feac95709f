//! The wire timestamp: RFC 3339 in UTC with a `Z`, microsecond precision.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, SubsecRound, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant as the Lifecycle API writes it.
///
/// Output is `2024-01-15T10:30:00Z`, or `2024-01-15T10:30:00.123456Z` when
/// the fraction is non-zero (trailing zero groups are dropped). Values are
/// truncated to microseconds on construction so that what is stored, sent and
/// read back compares equal.
///
/// Input accepts RFC 3339 with `Z` or any offset, a naive date-time (taken as
/// UTC), and a numeric Unix timestamp in seconds, as OpenSandbox does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Wraps an instant, truncated to microseconds.
    pub fn from_utc(at: DateTime<Utc>) -> Self {
        Self(at.trunc_subsecs(6))
    }

    /// The instant as a chrono value.
    pub fn as_utc(&self) -> DateTime<Utc> {
        self.0
    }

    /// Parses the accepted input forms (see the type docs).
    pub fn parse(input: &str) -> Option<Self> {
        let trimmed = input.trim();
        if let Ok(at) = DateTime::parse_from_rfc3339(trimmed) {
            return Some(Self::from_utc(at.with_timezone(&Utc)));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(trimmed, format) {
                return Some(Self::from_utc(Utc.from_utc_datetime(&naive)));
            }
        }
        None
    }

    fn from_unix_seconds(seconds: f64) -> Option<Self> {
        if !seconds.is_finite() {
            return None;
        }
        let whole = seconds.floor();
        let micros = ((seconds - whole) * 1e6).round() as u32;
        DateTime::from_timestamp(whole as i64, micros * 1000).map(Self::from_utc)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Self::from_utc(at)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(f64),
        }
        let invalid = |shown: String| {
            serde::de::Error::custom(format!(
                "{shown} is not a date-time; expected RFC 3339 such as 2030-01-31T12:00:00Z"
            ))
        };
        match Raw::deserialize(deserializer).map_err(|_| invalid("the value".to_owned()))? {
            Raw::Text(text) => Self::parse(&text).ok_or_else(|| invalid(format!("{text:?}"))),
            Raw::Seconds(seconds) => {
                Self::from_unix_seconds(seconds).ok_or_else(|| invalid(seconds.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_z_and_trims_zero_fraction() {
        let at = Timestamp::parse("2024-01-15T10:30:00+00:00").unwrap();
        assert_eq!(at.to_string(), "2024-01-15T10:30:00Z");
        let at = Timestamp::parse("2024-01-15T10:30:00.123456789Z").unwrap();
        assert_eq!(at.to_string(), "2024-01-15T10:30:00.123456Z");
    }

    #[test]
    fn converts_offsets_and_naive_input_to_utc() {
        let at = Timestamp::parse("2024-01-15T12:30:00+02:00").unwrap();
        assert_eq!(at.to_string(), "2024-01-15T10:30:00Z");
        let naive = Timestamp::parse("2024-01-15T10:30:00").unwrap();
        assert_eq!(naive.to_string(), "2024-01-15T10:30:00Z");
    }

    #[test]
    fn deserializes_strings_and_unix_seconds() {
        let at: Timestamp = serde_json::from_str("\"2030-01-01T00:00:00Z\"").unwrap();
        let secs: Timestamp = serde_json::from_str("1893456000").unwrap();
        assert_eq!(at, secs);
        let err = serde_json::from_str::<Timestamp>("\"not-a-date\"").unwrap_err();
        assert!(err.to_string().contains("not a date-time"), "{err}");
    }
}
