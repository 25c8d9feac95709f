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
    Ignored { key: "log.file_enabled", reason: FILE_LOGGING, applies: |r| r.log.file_enabled == Some(true) },
    Ignored { key: "log.file_path", reason: FILE_LOGGING, applies: |r| r.log.file_path.is_some() },
    Ignored { key: "log.access_file_path", reason: FILE_LOGGING, applies: |r| r.log.access_file_path.is_some() },
    Ignored { key: "log.file_max_bytes", reason: FILE_LOGGING, applies: |r| r.log.file_max_bytes.is_some() },
    Ignored { key: "log.file_backup_count", reason: FILE_LOGGING, applies: |r| r.log.file_backup_count.is_some() },
    Ignored { key: "pause", reason: "legacy table, ignored", applies: |r| r.pause.is_some() },
    Ignored { key: "runtime.type", reason: KUBERNETES, applies: |r| r.runtime.kind.as_deref() == Some(RuntimeType::Kubernetes.as_str()) },
    Ignored { key: "agent_sandbox", reason: KUBERNETES, applies: |r| r.agent_sandbox.is_some() },
    Ignored { key: "secure_runtime.type", reason: SECURE_RUNTIME, applies: |r| r.secure_runtime.kind.as_deref().is_some_and(|t| !t.is_empty()) },
    Ignored { key: "renew_intent.enabled", reason: RENEW_INTENT, applies: |r| r.renew_intent.enabled == Some(true) },
    Ignored { key: "renew_intent.redis.enabled", reason: RENEW_INTENT, applies: |r| r.renew_intent.redis.as_ref().is_some_and(|x| x.enabled == Some(true)) },
    Ignored { key: "egress.image", reason: EGRESS, applies: |r| r.egress.image.is_some() },
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
