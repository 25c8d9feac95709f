//! Collecting configuration problems so that all of them are reported at
//! once: each check records the dotted key it concerns and carries on (with
//! a default), and validation ends with every problem or the value. Used by
//! the control plane's and the edge proxy's configuration.

use std::fmt;
use std::ops::RangeInclusive;

/// One problem: the dotted key it concerns and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key (`server.port`, `storage.allowed_host_paths[1]`) or variable name.
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
    /// The problems, in check order; never empty.
    pub problems: Vec<Problem>,
}

/// Joins problems one per line.
fn lines(problems: &[Problem]) -> String {
    let text: Vec<String> = problems.iter().map(Problem::to_string).collect();
    text.join("\n")
}

/// Collects problems while validation carries on.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem with `key`.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// `value` when it is at least `min`; records a problem and gives `None` otherwise.
    pub fn at_least(&mut self, key: &str, value: Option<i64>, min: i64) -> Option<i64> {
        let v = value?;
        if v < min {
            self.push(key, format!("{v} must be at least {min}"));
            return None;
        }
        Some(v)
    }

    /// `value` when it lies in `range`; records a problem and gives `None` otherwise.
    pub fn in_range(
        &mut self,
        key: &str,
        value: Option<i64>,
        range: RangeInclusive<i64>,
    ) -> Option<i64> {
        let v = value?;
        if !range.contains(&v) {
            let (lo, hi) = (range.start(), range.end());
            self.push(key, format!("{v} is out of range {lo}..={hi}"));
            return None;
        }
        Some(v)
    }

    /// Maps `value` through `choices`: `Some(default)` when absent, `None`
    /// (with a problem listing the choices) when it matches none of them.
    pub fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        choices: &[(&str, T)],
        default: T,
    ) -> Option<T> {
        let Some(text) = value else {
            return Some(default);
        };
        if let Some((_, found)) = choices.iter().find(|(name, _)| *name == text) {
            return Some(*found);
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
        None
    }

    /// `value` when it is absent or has non-blank text; records a problem for blank text.
    pub fn non_blank(&mut self, key: &str, value: Option<String>) -> Option<String> {
        let text = value?;
        if text.trim().is_empty() {
            self.push(key, "must not be empty");
            return None;
        }
        Some(text)
    }

    /// `Ok(value)` when nothing was recorded, otherwise every problem.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors { problems: self.0 })
        }
    }
}
