//! Where environment variables come from: the process, or a map in tests.
//!
//! Reading through [`EnvSource`] keeps the overrides testable without
//! `std::env::set_var`, which races with other tests in the same process.

use std::collections::HashMap;

/// A source of environment variables.
pub trait EnvSource {
    /// The value of `name`, or `None` when it is unset (or not valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Names of the environment variables the configuration reads.
pub mod vars {
    /// Replaces `control.token` whenever set; empty means no token.
    pub const ROUTES_TOKEN: &str = "SANDGATE_ROUTES_TOKEN";
    /// Replaces `auth.edge_api_key` whenever set; empty means no key.
    pub const EDGE_API_KEY: &str = "SANDGATE_EDGE_API_KEY";
}
