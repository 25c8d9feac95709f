//! The one list of accepted keys that have no effect in Sandgate (yet).
//!
//! When a feature lands, delete its rows from [`IGNORED`] (or the Kubernetes
//! rule in [`collect`]). Each warning reads `"<key>: <reason>"`.

use super::model::RuntimeType;
use super::raw::RawConfig;

const PYTHON_SERVER: &str = "Python-server specific; ignored";
const FILE_LOGGING: &str = "file logging is not built yet; logs go to stderr";
const KUBERNETES: &str =
    "the Kubernetes runtime is not built yet; accepted and validated but has no effect";
const SECURE_RUNTIME: &str =
    "secure runtimes are not built yet; sandboxes use the engine's default runtime";
const RENEW_INTENT: &str = "renew-on-access is not built yet; ignored";
const EGRESS: &str = "egress sidecars are not built yet; ignored";
const PUBLISH: &str = "Sandgate does not publish sandbox ports on the host; sandboxes are reached at their container address; ignored";
const OTEL: &str = "OTLP export is not built yet; metrics are served at GET /metrics; ignored";
const POSTGRESQL: &str =
    "the PostgreSQL store is not built yet; state is kept in the SQLite file at store.path";

/// One accepted key and the condition under which it is reported.
struct Ignored {
    /// Dotted key or table name.
    key: &'static str,
    /// Why it has no effect.
    reason: &'static str,
    /// Whether the file sets it in a way that would matter.
    applies: fn(&RawConfig) -> bool,
}

/// Every ignored key except the per-key `[kubernetes]` rule in [`collect`].
#[rustfmt::skip]
const IGNORED: &[Ignored] = &[
    Ignored { key: "server.timeout_keep_alive", reason: PYTHON_SERVER, applies: |r| r.server.timeout_keep_alive.is_some() },
    Ignored { key: "server.limit_concurrency", reason: PYTHON_SERVER, applies: |r| r.server.limit_concurrency.is_some() },
    Ignored { key: "server.backlog", reason: PYTHON_SERVER, applies: |r| r.server.backlog.is_some() },
    Ignored { key: "server.thread_pool_size", reason: PYTHON_SERVER, applies: |r| r.server.thread_pool_size.is_some() },
    Ignored { key: "server.loop", reason: PYTHON_SERVER, applies: |r| r.server.event_loop.is_some() },
    Ignored { key: "server.http", reason: PYTHON_SERVER, applies: |r| r.server.http.is_some() },
    Ignored { key: "server.timeout_graceful_shutdown", reason: "overridden by sandgate.shutdown_grace_seconds", applies: |r| r.server.timeout_graceful_shutdown.is_some() && r.sandgate.shutdown_grace_seconds.is_some() },
    Ignored { key: "proxy.resolve_internal", reason: "Sandgate always reaches sandboxes at their container address; ignored", applies: |r| r.proxy.resolve_internal == Some(false) },
    Ignored { key: "log.file_enabled", reason: FILE_LOGGING, applies: |r| r.log.file_enabled == Some(true) },
    Ignored { key: "log.file_path", reason: FILE_LOGGING, applies: |r| r.log.file_path.is_some() },
    Ignored { key: "log.access_file_path", reason: FILE_LOGGING, applies: |r| r.log.access_file_path.is_some() },
    Ignored { key: "log.file_max_bytes", reason: FILE_LOGGING, applies: |r| r.log.file_max_bytes.is_some() },
    Ignored { key: "log.file_backup_count", reason: FILE_LOGGING, applies: |r| r.log.file_backup_count.is_some() },
    Ignored { key: "pause", reason: "legacy table, ignored", applies: |r| r.pause.is_some() },
    Ignored { key: "tenants", reason: "multi-tenancy is not built yet; ignored", applies: |r| r.tenants.is_some() },
    Ignored { key: "otel.enabled", reason: OTEL, applies: |r| r.otel.enabled == Some(true) },
    Ignored { key: "otel.endpoint", reason: OTEL, applies: |r| r.otel.endpoint.is_some() },
    Ignored { key: "otel.service_name", reason: OTEL, applies: |r| r.otel.service_name.is_some() },
    Ignored { key: "otel.export_interval_millis", reason: OTEL, applies: |r| r.otel.export_interval_millis.is_some() },
    Ignored { key: "runtime.execd_run_as_init", reason: "no effect without runtime.execd_image (Sandgate injects execd only when it is set)", applies: |r| r.runtime.execd_run_as_init == Some(true) && r.runtime.execd_image.is_none() },
    Ignored { key: "runtime.type", reason: KUBERNETES, applies: |r| r.runtime.kind.as_deref() == Some(RuntimeType::Kubernetes.as_str()) },
    Ignored { key: "agent_sandbox", reason: KUBERNETES, applies: |r| r.agent_sandbox.is_some() },
    Ignored { key: "secure_runtime.type", reason: SECURE_RUNTIME, applies: |r| r.secure_runtime.kind.as_deref().is_some_and(|t| !t.is_empty()) },
    Ignored { key: "renew_intent.enabled", reason: RENEW_INTENT, applies: |r| r.renew_intent.enabled == Some(true) },
    Ignored { key: "renew_intent.redis.enabled", reason: RENEW_INTENT, applies: |r| r.renew_intent.redis.as_ref().is_some_and(|x| x.enabled == Some(true)) },
    Ignored { key: "docker.port_range_min", reason: PUBLISH, applies: |r| r.docker.port_range_min.is_some() },
    Ignored { key: "docker.port_range_max", reason: PUBLISH, applies: |r| r.docker.port_range_max.is_some() },
    Ignored { key: "docker.publish_host", reason: PUBLISH, applies: |r| r.docker.publish_host.is_some() },
    Ignored { key: "egress.image", reason: EGRESS, applies: |r| r.egress.image.is_some() },
    Ignored { key: "egress.mode", reason: EGRESS, applies: |r| r.egress.mode.is_some() },
    Ignored { key: "egress.disable_ipv6", reason: EGRESS, applies: |r| r.egress.disable_ipv6.is_some() },
    Ignored { key: "egress.otlp_endpoint", reason: EGRESS, applies: |r| r.egress.otlp_endpoint.is_some() },
    Ignored { key: "egress.readiness_timeout_seconds", reason: EGRESS, applies: |r| r.egress.readiness_timeout_seconds.is_some() },
    Ignored { key: "egress.requests", reason: EGRESS, applies: |r| r.egress.requests.is_some() },
    Ignored { key: "egress.limits", reason: EGRESS, applies: |r| r.egress.limits.is_some() },
    Ignored { key: "egress.upstream_proxy", reason: EGRESS, applies: |r| r.egress.upstream_proxy.is_some() },
    Ignored { key: "store.type", reason: POSTGRESQL, applies: |r| r.store.kind.as_deref() == Some("postgresql") },
    Ignored { key: "store.postgresql", reason: "the PostgreSQL store is not built yet; ignored", applies: |r| r.store.postgresql.is_some() },
];

/// The warnings for `raw`, in table order, then one per `[kubernetes]` key.
pub(crate) fn collect(raw: &RawConfig) -> Vec<String> {
    let mut out: Vec<String> = IGNORED
        .iter()
        .filter(|rule| (rule.applies)(raw))
        .map(|rule| format!("{}: {}", rule.key, rule.reason))
        .collect();
    if let Some(k8s) = &raw.kubernetes {
        out.extend(
            k8s.present_keys()
                .into_iter()
                .map(|key| format!("kubernetes.{key}: {KUBERNETES}")),
        );
    }
    out
}

/// Every key [`collect`] can name, for documentation and tests.
#[cfg(test)]
pub(crate) fn keys() -> Vec<&'static str> {
    IGNORED.iter().map(|rule| rule.key).collect()
}
