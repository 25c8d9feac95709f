//! Configuration of `sandgate-proxy`: parsing and validating the TOML file.
//!
//! # Layering
//! Built-in defaults < the file (`--config FILE`; without it, all defaults)
//! < environment variables (`SANDGATE_ROUTES_TOKEN` replaces
//! `control.token`, `SANDGATE_EDGE_API_KEY` replaces `auth.edge_api_key`,
//! `RUST_LOG` replaces `log.level`) < command-line flags. Unknown keys are
//! errors. `config/proxy.toml` documents every key with its default.
//!
//! # Layout
//! - [`raw`]: the file as written ([`RawConfig`]).
//! - [`validate()`]: [`RawConfig`] → [`Config`], reporting every problem ([`ConfigErrors`]).
//! - model: the validated types re-exported here.

mod access;
mod env;
mod model;
mod problems;
pub mod raw;
mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use access::{DEFAULT_CONTROL_URL, DEFAULT_EDGE_KEY_HEADER};
pub use env::{EnvSource, ProcessEnv, vars};
pub use model::{
    AdminConfig, AuthConfig, Config, ControlConfig, HostPolicy, LogConfig, RouteMode,
    RoutingConfig, SecureAccessConfig, ServerConfig, TimeoutConfig, TlsConfig, VerificationKey,
};
pub use problems::{ConfigErrors, Problem};
pub use raw::RawConfig;
pub use validate::{DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN, DEFAULT_WILDCARD_DOMAIN, validate};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not TOML, has an unknown key or a wrongly typed value.
    #[error("{origin}: {message}")]
    Parse {
        /// The file path (or other origin label).
        origin: String,
        /// toml's message, with line, column and, for unknown keys, the expected ones.
        message: String,
    },
    /// The file parses but breaks one or more rules.
    #[error("{origin}: invalid configuration:\n{errors}")]
    Invalid {
        /// The file path, or `built-in defaults`.
        origin: String,
        /// Every problem found.
        errors: ConfigErrors,
    },
}

/// Loads `path`, or the built-in defaults when `None`.
pub fn load(path: Option<&Path>, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    match path {
        Some(path) => load_file(path, env),
        None => validate(RawConfig::default(), env).map_err(|errors| ConfigError::Invalid {
            origin: "built-in defaults".to_owned(),
            errors,
        }),
    }
}

/// Reads, parses and validates one file.
pub fn load_file(path: &Path, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    load_str(&text, &path.display().to_string(), env)
}

/// Parses and validates TOML text; `origin` labels messages (usually the path).
pub fn load_str(text: &str, origin: &str, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
        origin: origin.to_owned(),
        message: error.to_string().trim_end().to_owned(),
    })?;
    validate(raw, env).map_err(|errors| ConfigError::Invalid {
        origin: origin.to_owned(),
        errors,
    })
}
