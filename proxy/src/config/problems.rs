//! Collecting configuration problems so that all of them are reported at once.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;

/// One problem: the dotted key it concerns and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key (`server.threads`, `secure_access.keys[1].key_id`) or variable name.
    pub key: String,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in one configuration; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.problems))]
pub struct ConfigErrors {
    /// The problems in check order; never empty.
    pub problems: Vec<Problem>,
}

fn lines(problems: &[Problem]) -> String {
    let text: Vec<String> = problems.iter().map(Problem::to_string).collect();
    text.join("\n")
}

/// Collects problems while validation carries on with defaults.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem with `key`.
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// `value` (or `default` when absent) if it lies in `range`; otherwise a
    /// problem and `default`.
    pub(crate) fn in_range(
        &mut self,
        key: &str,
        value: Option<i64>,
        range: RangeInclusive<i64>,
        default: u64,
    ) -> u64 {
        let Some(v) = value else {
            return default;
        };
        match u64::try_from(v) {
            Ok(ok) if range.contains(&v) => ok,
            _ => {
                let (lo, hi) = (range.start(), range.end());
                self.push(key, format!("{v} is out of range {lo}..={hi}"));
                default
            }
        }
    }

    /// Maps `value` through `choices`; `default` when absent, and a problem
    /// listing the choices (then `default`) when it matches none.
    pub(crate) fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        choices: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(text) = value else {
            return default;
        };
        if let Some((_, found)) = choices.iter().find(|(name, _)| *name == text) {
            return *found;
        }
        let names: Vec<String> = choices
            .iter()
            .map(|(name, _)| format!("{name:?}"))
            .collect();
        let expected = names.join(", ");
        self.push(
            key,
            format!("{text:?} is not supported; expected one of {expected}"),
        );
        default
    }

    /// Parses `ip:port` socket addresses, reporting each bad or repeated one.
    pub(crate) fn addresses(&mut self, key: &str, values: Vec<String>) -> Vec<SocketAddr> {
        if values.is_empty() {
            self.push(key, "must name at least one ip:port address");
        }
        let mut out: Vec<SocketAddr> = Vec::with_capacity(values.len());
        for (index, text) in values.iter().enumerate() {
            let entry = if values.len() == 1 {
                key.to_owned()
            } else {
                format!("{key}[{index}]")
            };
            match text.trim().parse::<SocketAddr>() {
                Ok(addr) if out.contains(&addr) => {
                    self.push(entry, format!("{addr} is listed twice"))
                }
                Ok(addr) => out.push(addr),
                Err(_) => self.push(
                    entry,
                    format!("{text:?} is not an ip:port address (IPv6 as \"[::1]:28888\")"),
                ),
            }
        }
        out
    }

    /// `Ok(value)` when nothing was recorded, otherwise every problem.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors { problems: self.0 })
        }
    }
}
