//! Configuration of `sandgate-control`: finding, parsing and validating the TOML file.
//!
//! # Layering
//! Built-in defaults < the file < environment variables < command-line flags.
//! - **File:** `--config FILE`, else `SANDBOX_CONFIG_PATH`, else
//!   `~/.sandbox.toml` if it exists, else no file (all defaults: the Docker
//!   runtime on `127.0.0.1:8080`). The keys are OpenSandbox's, so an
//!   existing OpenSandbox file loads unchanged; Sandgate's own keys are in
//!   `[sandgate]`. Unlike OpenSandbox, unknown keys are errors.
//! - **Environment:** `OPENSANDBOX_SERVER_API_KEY` replaces `server.api_key`
//!   whenever set; `PENDING_FAILURE_TTL` replaces
//!   `sandgate.pending_failure_ttl_seconds`; `OPENSANDBOX_STORE_POSTGRESQL_DSN`
//!   counts as `store.postgresql.dsn`; `HOME` expands `~`.
//! - **Flags:** applied by the binary after [`load`].
//!
//! # Layout
//! - [`raw`]: the file as written ([`RawConfig`]).
//! - [`validate()`]: [`RawConfig`] → [`Config`], reporting every problem ([`ConfigErrors`]).
//! - model: the validated types re-exported here ([`Config`] and its sections).
//! - docker, egress, kubernetes, unbuilt: per-table forms and rules.
//! - compat / warnings: OpenSandbox keys Sandgate accepts but does not use yet.

mod compat;
mod docker;
mod egress;
mod env;
mod ingress;
mod kubernetes;
mod model;
mod quantity;
pub mod raw;
mod unbuilt;
mod url;
mod validate;
mod warnings;
mod web;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use env::{EnvSource, ProcessEnv, vars};
pub use model::{
    Config, DEFAULT_DROP_CAPABILITIES, DockerConfig, EgressConfig, FakeConfig, GatewayConfig,
    IngressConfig, IngressMode, LogConfig, OrphanPolicy, RouteMode, RuntimeConfig, RuntimeType,
    SandboxEnv, SandgateConfig, SecureAccessConfig, ServerConfig, SigningKey, StorageConfig,
    StoreConfig,
};
pub use raw::RawConfig;
pub use validate::{ConfigErrors, Problem, validate};
pub use web::WebConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file that was asked for by name does not exist.
    #[error("config file {} (given by {origin}) does not exist", .path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
        /// Who named it: `--config`, `SANDBOX_CONFIG_PATH`, ...
        origin: &'static str,
    },
    /// The file exists but cannot be read.
    #[error("cannot read config file {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (shown in the message, so not also exposed as a source).
        error: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a wrongly typed value.
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
        /// The file path, or `built-in defaults` when no file was used.
        origin: String,
        /// Every problem found.
        errors: ConfigErrors,
    },
}

/// Where the config file path came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSource {
    /// `--config FILE`: it must exist.
    Flag(PathBuf),
    /// The `SANDBOX_CONFIG_PATH` variable: it must exist.
    Env(PathBuf),
    /// `~/.sandbox.toml`, used because it exists.
    Home(PathBuf),
}

impl PathSource {
    /// The file path.
    pub fn path(&self) -> &Path {
        match self {
            Self::Flag(path) | Self::Env(path) | Self::Home(path) => path,
        }
    }

    /// Who named the file, for messages.
    pub fn origin(&self) -> &'static str {
        match self {
            Self::Flag(_) => "--config",
            Self::Env(_) => vars::SANDBOX_CONFIG_PATH,
            Self::Home(_) => "the default ~/.sandbox.toml",
        }
    }
}

/// Which file to load: `explicit` (`--config`), else `SANDBOX_CONFIG_PATH`
/// (when non-empty), else `~/.sandbox.toml` if it exists, else `None`.
/// A leading `~` in either path is expanded with `HOME`.
pub fn resolve_path(explicit: Option<&Path>, env: &dyn EnvSource) -> Option<PathSource> {
    if let Some(path) = explicit {
        return Some(PathSource::Flag(expand_tilde(path, env)));
    }
    let from_env = env
        .var(vars::SANDBOX_CONFIG_PATH)
        .filter(|text| !text.trim().is_empty());
    if let Some(text) = from_env {
        return Some(PathSource::Env(expand_tilde(Path::new(&text), env)));
    }
    let home_file = validate::home(env)?.join(".sandbox.toml");
    home_file.is_file().then_some(PathSource::Home(home_file))
}

/// Loads the configuration: the file [`resolve_path`] picks, or all defaults
/// when there is none. A file named by `--config` or `SANDBOX_CONFIG_PATH`
/// that does not exist is an error.
pub fn load(explicit: Option<&Path>, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    match resolve_path(explicit, env) {
        Some(source) => load_from(source.path(), source.origin(), env),
        None => validate(RawConfig::default(), env).map_err(|errors| ConfigError::Invalid {
            origin: "built-in defaults".to_owned(),
            errors,
        }),
    }
}

/// Reads, parses and validates one file.
pub fn load_file(path: &Path, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    load_from(path, "the caller", env)
}

/// `--check-config FILE`: like [`load_file`]; the caller prints
/// [`Config::warnings`] on success and the error otherwise.
pub fn check(path: &Path, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    load_from(path, "--check-config", env)
}

/// Parses and validates TOML text; `origin` labels messages (usually the file path).
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

fn load_from(
    path: &Path,
    origin: &'static str,
    env: &dyn EnvSource,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound {
            path: path.to_owned(),
            origin,
        },
        _ => ConfigError::Read {
            path: path.to_owned(),
            error,
        },
    })?;
    load_str(&text, &path.display().to_string(), env)
}

/// `~` or `~/rest` → `$HOME/rest`; any other path, or no `HOME`, unchanged.
fn expand_tilde(path: &Path, env: &dyn EnvSource) -> PathBuf {
    let Ok(rest) = path.strip_prefix("~") else {
        return path.to_owned();
    };
    match validate::home(env) {
        Some(home) if rest.as_os_str().is_empty() => home,
        Some(home) => home.join(rest),
        None => path.to_owned(),
    }
}
