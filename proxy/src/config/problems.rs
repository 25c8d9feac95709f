//! The edge proxy's configuration checks on top of the shared problem
//! collector ([`sandgate_shared::problems`]): values with defaults, and
//! socket address lists.

use std::net::SocketAddr;
use std::ops::RangeInclusive;

pub(crate) use sandgate_shared::problems::Problems;
pub use sandgate_shared::problems::{ConfigErrors, Problem};

/// The proxy's checks: each records a problem and falls back to a default.
pub(crate) trait ProxyChecks {
    /// `value` (or `default` when absent) if it lies in `range`; otherwise a
    /// problem and `default`.
    fn in_range_or(
        &mut self,
        key: &str,
        value: Option<i64>,
        range: RangeInclusive<i64>,
        default: u64,
    ) -> u64;

    /// Maps `value` through `choices`; `default` when absent, and a problem
    /// listing the choices (then `default`) when it matches none.
    fn choice_or<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        choices: &[(&str, T)],
        default: T,
    ) -> T;

    /// Parses `ip:port` socket addresses, reporting each bad or repeated one.
    fn addresses(&mut self, key: &str, values: Vec<String>) -> Vec<SocketAddr>;
}

impl ProxyChecks for Problems {
    fn in_range_or(
        &mut self,
        key: &str,
        value: Option<i64>,
        range: RangeInclusive<i64>,
        default: u64,
    ) -> u64 {
        // (Every range here starts at 0 or above, so the value converts.)
        self.in_range(key, value, range)
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(default)
    }

    fn choice_or<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        choices: &[(&str, T)],
        default: T,
    ) -> T {
        self.choice(key, value, choices, default).unwrap_or(default)
    }

    fn addresses(&mut self, key: &str, values: Vec<String>) -> Vec<SocketAddr> {
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
}
