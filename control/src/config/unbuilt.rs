//! OpenSandbox 1.1.1 tables with no Sandgate counterpart yet: `[tenants]`, `[otel]`, `[proxy]`, `[store.postgresql]`.
//!
//! Each is parsed and held to OpenSandbox's rules, so a file that passes
//! here would pass there; [`warnings`](super::warnings) says what is ignored.
//! Secrets (`tenants.auth_token`, `store.postgresql.dsn`) are never echoed.

use serde::Deserialize;

use super::env::vars::POSTGRESQL_DSN as POSTGRESQL_DSN_VAR;
use super::model::RuntimeType;
use sandgate_shared::problems::Problems;

/// `[tenants]`: multi-tenant mode (Kubernetes only).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenants {
    /// `file` (default) or `http`.
    pub provider: Option<String>,
    /// The HTTP provider's URL; required with `provider = "http"`.
    pub endpoint: Option<String>,
    /// How long a stale tenant list may be served, at least 0.
    pub max_stale_seconds: Option<f64>,
    /// HTTP provider request timeout, greater than 0.
    pub timeout_seconds: Option<f64>,
    /// Header carrying `auth_token` to the HTTP provider.
    pub auth_header: Option<String>,
    /// Token sent to the HTTP provider; a secret.
    pub auth_token: Option<String>,
}

/// `[otel]`: OTLP metrics export.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOtel {
    /// Turns the export on (default false).
    pub enabled: Option<bool>,
    /// OTLP/HTTP metrics endpoint.
    pub endpoint: Option<String>,
    /// `service.name` of the exported metrics.
    pub service_name: Option<String>,
    /// Export period in milliseconds, at least 1000.
    pub export_interval_millis: Option<i64>,
}

/// `[proxy]`: how OpenSandbox's own server-proxy routes reach sandboxes.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    /// `true` (default): the container address; `false`: the host-published port.
    pub resolve_internal: Option<bool>,
}

/// `[store.postgresql]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgresql {
    /// Connection string; a secret. Env `OPENSANDBOX_STORE_POSTGRESQL_DSN` replaces it.
    pub dsn: Option<String>,
    /// Connections kept open, at least 0 and at most `max_pool_size`.
    pub min_pool_size: Option<i64>,
    /// Connection ceiling, at least 1.
    pub max_pool_size: Option<i64>,
    /// Connect timeout in whole seconds, at least 1.
    pub connect_timeout_seconds: Option<i64>,
    /// Pool wait timeout in seconds, greater than 0.
    pub pool_timeout_seconds: Option<f64>,
    /// Snapshot recovery scan period in seconds, greater than 0.
    pub snapshot_recovery_interval_seconds: Option<f64>,
}

/// Records a problem unless `value` is absent or above (or, with `inclusive`, equal to) `min`.
pub(crate) fn float_at_least(
    p: &mut Problems,
    key: &str,
    value: Option<f64>,
    min: f64,
    inclusive: bool,
) {
    let Some(v) = value else { return };
    if v.is_nan() || v < min || (!inclusive && v == min) {
        let rule = if inclusive {
            "at least"
        } else {
            "greater than"
        };
        p.push(key, format!("{v} must be {rule} {min}"));
    }
}

/// `[tenants]`: its own rules, then OpenSandbox's startup rules (Kubernetes only, no `server.api_key`).
pub(crate) fn tenants(
    raw: &RawTenants,
    runtime: Option<RuntimeType>,
    has_api_key: bool,
    p: &mut Problems,
) {
    let providers = [("file", "file"), ("http", "http")];
    let provider = p.choice(
        "tenants.provider",
        raw.provider.as_deref(),
        &providers,
        "file",
    );
    if provider == Some("http") && raw.endpoint.as_deref().is_none_or(str::is_empty) {
        p.push(
            "tenants.endpoint",
            "required when tenants.provider = \"http\"",
        );
    }
    float_at_least(
        p,
        "tenants.max_stale_seconds",
        raw.max_stale_seconds,
        0.0,
        true,
    );
    float_at_least(
        p,
        "tenants.timeout_seconds",
        raw.timeout_seconds,
        0.0,
        false,
    );
    if let Some(kind) = runtime.filter(|k| *k != RuntimeType::Kubernetes) {
        let why = format!(
            "requires runtime.type = \"kubernetes\" (multi-tenancy uses Kubernetes namespaces), not \"{}\"",
            kind.as_str()
        );
        p.push("tenants", why);
    }
    if has_api_key {
        let why = "must be removed when [tenants] is configured (tenant API keys come from the tenant provider)";
        p.push("server.api_key", why);
    }
}

pub(crate) fn otel(raw: &RawOtel, p: &mut Problems) {
    p.at_least(
        "otel.export_interval_millis",
        raw.export_interval_millis,
        1000,
    );
}

/// `[store.postgresql]` (with the DSN from `env_dsn` when set) and the DSN rule of `store.type = "postgresql"`.
pub(crate) fn postgresql(
    raw: Option<&RawPostgresql>,
    env_dsn: Option<String>,
    is_postgresql: bool,
    p: &mut Problems,
) {
    let default = RawPostgresql::default();
    let raw = raw.unwrap_or(&default);
    let min = p.at_least("store.postgresql.min_pool_size", raw.min_pool_size, 0);
    let max = p.at_least("store.postgresql.max_pool_size", raw.max_pool_size, 1);
    if min.unwrap_or(1) > max.unwrap_or(10) {
        p.push(
            "store.postgresql.min_pool_size",
            "must be at most store.postgresql.max_pool_size",
        );
    }
    p.at_least(
        "store.postgresql.connect_timeout_seconds",
        raw.connect_timeout_seconds,
        1,
    );
    let waits = [
        ("pool_timeout_seconds", raw.pool_timeout_seconds),
        (
            "snapshot_recovery_interval_seconds",
            raw.snapshot_recovery_interval_seconds,
        ),
    ];
    for (key, value) in waits {
        float_at_least(p, &format!("store.postgresql.{key}"), value, 0.0, false);
    }
    let dsn = env_dsn.or_else(|| raw.dsn.clone());
    if is_postgresql && dsn.as_deref().is_none_or(|d| d.trim().is_empty()) {
        let why = format!(
            "store.postgresql.dsn or {POSTGRESQL_DSN_VAR} must be set when store.type = \"postgresql\""
        );
        p.push("store.postgresql.dsn", why);
    }
}
