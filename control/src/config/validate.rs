//! Turns a [`RawConfig`] into a [`Config`], collecting every problem at once.
//!
//! Each check reports through [`Problems`] with the dotted key it concerns,
//! then carries on with the default so later checks still run. Defaults are
//! written here, next to the rule that guards them.

use std::path::PathBuf;
use std::time::Duration;

use super::env::{EnvSource, vars};
use super::model::{
    Config, FakeConfig, LogConfig, OrphanPolicy, RuntimeConfig, RuntimeType, SandgateConfig,
    ServerConfig, StorageConfig, StoreConfig,
};
use super::raw::{
    RawConfig, RawFake, RawLog, RawRuntime, RawSandgate, RawServer, RawStorage, RawStore,
};
use super::{compat, docker, egress, ingress, unbuilt, warnings};

pub(crate) use sandgate_shared::problems::Problems;
pub use sandgate_shared::problems::{ConfigErrors, Problem};

/// Validates `raw`, applying defaults and the environment overrides read from `env`
/// (`OPENSANDBOX_SERVER_API_KEY`, `PENDING_FAILURE_TTL`, `HOME`).
///
/// Every problem is reported, each naming its key. Accepted keys that have
/// no effect in Sandgate become [`Config::warnings`].
pub fn validate(raw: RawConfig, env: &dyn EnvSource) -> Result<Config, ConfigErrors> {
    let mut p = Problems::default();
    let warnings = warnings::collect(&raw);
    let runtime = runtime(&raw.runtime, &mut p);
    let kind = runtime.as_ref().map(|r| r.kind);
    compat::check(&raw, kind, &mut p);
    let grace = p.at_least(
        "server.timeout_graceful_shutdown",
        raw.server.timeout_graceful_shutdown,
        1,
    );
    let server = server(raw.server, env, &mut p);
    if let Some(tenants) = &raw.tenants {
        unbuilt::tenants(tenants, kind, server.api_key.is_some(), &mut p);
    }
    let config = Config {
        server,
        log: log(&raw.log, &mut p),
        runtime: runtime.unwrap_or(RuntimeConfig {
            kind: RuntimeType::Docker,
            execd_image: None,
            execd_run_as_init: false,
        }),
        docker: docker::validate(raw.docker, &mut p),
        ingress: ingress::validate(raw.ingress, &mut p),
        egress: egress::validate(raw.egress, kind, &mut p),
        storage: storage(raw.storage, &mut p),
        store: store(raw.store, env, &mut p),
        sandgate: sandgate(raw.sandgate, grace, env, &mut p),
        warnings,
    };
    p.finish(config)
}

/// Treats blank text as absent (for keys where OpenSandbox does the same).
fn blank_as_none(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.trim().is_empty())
}

/// Whole seconds to a duration (callers have checked the value is not negative).
fn seconds(value: i64) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or_default())
}

/// Whole milliseconds to a duration (callers have checked the value is not negative).
fn millis(value: i64) -> Duration {
    Duration::from_millis(u64::try_from(value).unwrap_or_default())
}

// === sections ===

fn server(raw: RawServer, env: &dyn EnvSource, p: &mut Problems) -> ServerConfig {
    let port = p.in_range("server.port", raw.port, 1..=65535);
    let max = p.at_least(
        "server.max_sandbox_timeout_seconds",
        raw.max_sandbox_timeout_seconds,
        60,
    );
    ServerConfig {
        host: p
            .non_blank("server.host", raw.host)
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
        port: port.and_then(|v| u16::try_from(v).ok()).unwrap_or(8080),
        // The env var wins whenever it is set, even when empty: that is how
        // an operator turns off a key written in a shared file.
        api_key: blank_as_none(env.var(vars::API_KEY).or(raw.api_key)),
        eip: blank_as_none(raw.eip),
        max_sandbox_timeout_seconds: max.and_then(|v| u64::try_from(v).ok()),
    }
}

fn log(raw: &RawLog, p: &mut Problems) -> LogConfig {
    let Some(given) = raw.level.as_deref() else {
        return LogConfig {
            level: "info".to_owned(),
        };
    };
    let level = match given.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "critical" => "error",
        _ => {
            let expected = "trace, debug, info, warn, warning, error, critical (any case)";
            p.push(
                "log.level",
                format!("{given:?} is not a log level; expected one of {expected}"),
            );
            "info"
        }
    };
    LogConfig {
        level: level.to_owned(),
    }
}

fn runtime(raw: &RawRuntime, p: &mut Problems) -> Option<RuntimeConfig> {
    let choices = RuntimeType::NAMES.map(|name| (name, runtime_type(name)));
    let kind = p.choice(
        "runtime.type",
        raw.kind.as_deref(),
        &choices,
        RuntimeType::Docker,
    );
    let execd_image = p.non_blank("runtime.execd_image", raw.execd_image.clone());
    Some(RuntimeConfig {
        kind: kind?,
        execd_image,
        execd_run_as_init: raw.execd_run_as_init.unwrap_or(false),
    })
}

/// The variant for one of [`RuntimeType::NAMES`].
fn runtime_type(name: &str) -> RuntimeType {
    match name {
        "kubernetes" => RuntimeType::Kubernetes,
        "fake" => RuntimeType::Fake,
        _ => RuntimeType::Docker,
    }
}

fn storage(raw: RawStorage, p: &mut Problems) -> StorageConfig {
    let allowed_host_paths = raw.allowed_host_paths.unwrap_or_default();
    for (index, path) in allowed_host_paths.iter().enumerate() {
        if !path.starts_with('/') {
            p.push(
                format!("storage.allowed_host_paths[{index}]"),
                format!("{path:?} must be an absolute path"),
            );
        }
    }
    let root = raw
        .ossfs_mount_root
        .unwrap_or_else(|| "/mnt/ossfs".to_owned());
    if !root.starts_with('/') {
        p.push(
            "storage.ossfs_mount_root",
            format!("{root:?} must be an absolute path"),
        );
    }
    StorageConfig {
        allowed_host_paths,
        volume_default_size: p
            .non_blank("storage.volume_default_size", raw.volume_default_size)
            .unwrap_or_else(|| "1Gi".to_owned()),
        ossfs_mount_root: root,
    }
}

fn store(raw: RawStore, env: &dyn EnvSource, p: &mut Problems) -> StoreConfig {
    let kinds = [("sqlite", false), ("postgresql", true)];
    let is_postgresql = p.choice("store.type", raw.kind.as_deref(), &kinds, false);
    let env_dsn = env.var(vars::POSTGRESQL_DSN);
    unbuilt::postgresql(
        raw.postgresql.as_ref(),
        env_dsn,
        is_postgresql == Some(true),
        p,
    );
    let path = match p.non_blank("store.path", raw.path) {
        Some(text) => expand_home("store.path", &text, env, p),
        None => default_store_path(env, p),
    };
    StoreConfig {
        path: path.unwrap_or_default(),
    }
}

/// `$HOME/.sandgate/sandgate.db`.
fn default_store_path(env: &dyn EnvSource, p: &mut Problems) -> Option<PathBuf> {
    match home(env) {
        Some(home) => Some(home.join(".sandgate").join("sandgate.db")),
        None => {
            p.push(
                "store.path",
                "not set and HOME is not set; set store.path explicitly",
            );
            None
        }
    }
}

/// The home directory, when `HOME` is set and non-empty.
pub(crate) fn home(env: &dyn EnvSource) -> Option<PathBuf> {
    blank_as_none(env.var(vars::HOME)).map(PathBuf::from)
}

/// Expands a leading `~` or `~/` with `HOME`; other paths are returned unchanged.
fn expand_home(key: &str, text: &str, env: &dyn EnvSource, p: &mut Problems) -> Option<PathBuf> {
    let rest = match text.strip_prefix('~') {
        None => return Some(PathBuf::from(text)),
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.trim_start_matches('/'),
        Some(_) => return Some(PathBuf::from(text)),
    };
    let Some(home) = home(env) else {
        p.push(key, format!("{text:?} starts with ~ but HOME is not set"));
        return None;
    };
    Some(if rest.is_empty() {
        home
    } else {
        home.join(rest)
    })
}

/// `[sandgate]`; `server_grace` is `server.timeout_graceful_shutdown`, used
/// when `sandgate.shutdown_grace_seconds` is absent.
fn sandgate(
    raw: RawSandgate,
    server_grace: Option<i64>,
    env: &dyn EnvSource,
    p: &mut Problems,
) -> SandgateConfig {
    let policies = [
        ("adopt", OrphanPolicy::Adopt),
        ("remove", OrphanPolicy::Remove),
    ];
    let orphan_policy = p.choice(
        "sandgate.orphan_policy",
        raw.orphan_policy.as_deref(),
        &policies,
        OrphanPolicy::Adopt,
    );
    let grace = p.at_least(
        "sandgate.shutdown_grace_seconds",
        raw.shutdown_grace_seconds,
        0,
    );
    let stop_grace = p.at_least(
        "sandgate.docker_stop_grace_seconds",
        raw.docker_stop_grace_seconds,
        0,
    );
    let instance = raw.instance.unwrap_or_else(|| "default".to_owned());
    if crate::sandbox::labels::check_value("sandgate.instance", &instance).is_err()
        || instance.is_empty()
    {
        p.push(
            "sandgate.instance",
            format!("{instance:?} must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"),
        );
    }
    let routes_token = env
        .var("SANDGATE_ROUTES_TOKEN")
        .or(raw.routes_token)
        .filter(|t| !t.trim().is_empty());
    if routes_token.as_ref().is_some_and(|t| t.len() < 16) {
        p.push(
            "sandgate.routes_token",
            "must be at least 16 characters (it guards the routing table)",
        );
    }
    let edge_proxy_url = raw
        .edge_proxy_url
        .and_then(|text| match text.parse::<http::Uri>() {
            Ok(uri)
                if uri.scheme_str() == Some("http")
                    && uri.authority().is_some()
                    && uri.path() == "/" =>
            {
                Some(uri)
            }
            _ => {
                p.push(
                    "sandgate.edge_proxy_url",
                    format!("{text:?} must be http://host:port (no path)"),
                );
                None
            }
        });
    SandgateConfig {
        edge_proxy_url,
        routes_token,
        instance,
        docker_stop_grace: seconds(stop_grace.unwrap_or(3)),
        pending_failure_ttl: pending_failure_ttl(raw.pending_failure_ttl_seconds, env, p),
        orphan_policy: orphan_policy.unwrap_or(OrphanPolicy::Adopt),
        shutdown_grace: seconds(grace.or(server_grace).unwrap_or(30)),
        allowed_pvc_names: allowed_pvc_names(raw.allowed_pvc_names, p),
        fake: fake(raw.fake, env, p),
        web: super::web::validate(raw.cors_allowed_origins, raw.allowed_hosts, p),
    }
}

/// Each entry must be a name a `pvc.claimName` can hold, or it could never match.
fn allowed_pvc_names(names: Option<Vec<String>>, p: &mut Problems) -> Vec<String> {
    let names = names.unwrap_or_default();
    for (index, name) in names.iter().enumerate() {
        if !crate::sandbox::labels::matches_dns_label_pattern(name, 253) {
            p.push(
                format!("sandgate.allowed_pvc_names[{index}]"),
                format!("{name:?} must be 1-253 lowercase letters, digits or '-', starting and ending with a letter or digit (the claimName rule)"),
            );
        }
    }
    names
}

/// `sandgate.pending_failure_ttl_seconds`, overridden by a non-blank `PENDING_FAILURE_TTL`.
fn pending_failure_ttl(file: Option<i64>, env: &dyn EnvSource, p: &mut Problems) -> Duration {
    let from_file = p.at_least("sandgate.pending_failure_ttl_seconds", file, 1);
    let Some(text) = blank_as_none(env.var(vars::PENDING_FAILURE_TTL)) else {
        return seconds(from_file.unwrap_or(3600));
    };
    match text.trim().parse::<u64>() {
        Ok(secs) if secs >= 1 => Duration::from_secs(secs),
        _ => {
            let message = format!("{text:?} is not a whole number of seconds of at least 1");
            p.push(vars::PENDING_FAILURE_TTL, message);
            Duration::from_secs(3600)
        }
    }
}

fn fake(raw: RawFake, env: &dyn EnvSource, p: &mut Problems) -> FakeConfig {
    let provision = p.at_least(
        "sandgate.fake.provision_latency_ms",
        raw.provision_latency_ms,
        0,
    );
    let operation = p.at_least(
        "sandgate.fake.operation_latency_ms",
        raw.operation_latency_ms,
        0,
    );
    let state_file = p
        .non_blank("sandgate.fake.state_file", raw.state_file)
        .and_then(|text| expand_home("sandgate.fake.state_file", &text, env, p));
    FakeConfig {
        provision_latency: millis(provision.unwrap_or(0)),
        operation_latency: millis(operation.unwrap_or(0)),
        endpoint_host: p
            .non_blank("sandgate.fake.endpoint_host", raw.endpoint_host)
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
        state_file,
    }
}
