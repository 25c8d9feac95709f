//! Where environment variables come from: the process, or a map in tests.
//!
//! Reading through [`EnvSource`] keeps env overrides testable without
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
    /// Path of the config file, used when `--config` is not given.
    pub const SANDBOX_CONFIG_PATH: &str = "SANDBOX_CONFIG_PATH";
    /// Overrides `server.api_key` whenever set; empty means no key.
    pub const API_KEY: &str = "OPENSANDBOX_SERVER_API_KEY";
    /// Overrides `sandgate.pending_failure_ttl_seconds` (whole seconds).
    pub const PENDING_FAILURE_TTL: &str = "PENDING_FAILURE_TTL";
    /// Replaces `store.postgresql.dsn` (OpenSandbox's; counted by the DSN rule).
    pub const POSTGRESQL_DSN: &str = "OPENSANDBOX_STORE_POSTGRESQL_DSN";
    /// Home directory: `~` expansion and default paths.
    pub const HOME: &str = "HOME";
}
