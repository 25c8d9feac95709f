//! Checks on OpenSandbox keys that Sandgate accepts but does not use yet.
//!
//! A file OpenSandbox would reject is rejected here too, so a config that
//! passes `--check-config` stays valid when the feature lands. Whether each
//! key has an effect is [`warnings`](super::warnings)' concern, not this one's.

use super::model::RuntimeType;
use super::raw::{
    RawAgentSandbox, RawConfig, RawKubernetes, RawLog, RawRenewIntent, RawSecureRuntime, RawServer,
};
use super::unbuilt::float_at_least;
use sandgate_shared::problems::Problems;

/// Checks every OpenSandbox-only table; `runtime` is `None` when `runtime.type` was invalid.
pub(crate) fn check(raw: &RawConfig, runtime: Option<RuntimeType>, p: &mut Problems) {
    python_server(&raw.server, p);
    file_logging(&raw.log, p);
    if let Some(kind) = runtime {
        kubernetes_tables(raw, kind, p);
        secure_runtime(&raw.secure_runtime, kind, p);
    }
    renew_intent(&raw.renew_intent, p);
    super::unbuilt::otel(&raw.otel, p);
}

fn python_server(raw: &RawServer, p: &mut Problems) {
    p.at_least("server.timeout_keep_alive", raw.timeout_keep_alive, 1);
    p.at_least("server.limit_concurrency", raw.limit_concurrency, 0);
    p.at_least("server.backlog", raw.backlog, 1);
    p.at_least("server.thread_pool_size", raw.thread_pool_size, 1);
    let loops = [("auto", ()), ("uvloop", ()), ("asyncio", ())];
    p.choice("server.loop", raw.event_loop.as_deref(), &loops, ());
    let https = [("auto", ()), ("httptools", ()), ("h11", ())];
    p.choice("server.http", raw.http.as_deref(), &https, ());
}

fn file_logging(raw: &RawLog, p: &mut Problems) {
    p.at_least("log.file_max_bytes", raw.file_max_bytes, 1);
    p.at_least("log.file_backup_count", raw.file_backup_count, 0);
}

/// `[kubernetes]` and `[agent_sandbox]`: only with the Kubernetes runtime.
fn kubernetes_tables(raw: &RawConfig, kind: RuntimeType, p: &mut Problems) {
    if kind == RuntimeType::Kubernetes {
        if let Some(k8s) = &raw.kubernetes {
            kubernetes_values(k8s, p);
        }
        if let Some(agent) = &raw.agent_sandbox {
            let provider = raw
                .kubernetes
                .as_ref()
                .and_then(|k| k.workload_provider.as_deref());
            agent_sandbox(agent, provider, p);
        }
        return;
    }
    let why = format!(
        "table not allowed when runtime.type = \"{}\"",
        kind.as_str()
    );
    if raw.kubernetes.is_some() {
        p.push("kubernetes", why.clone());
    }
    if raw.agent_sandbox.is_some() {
        p.push("agent_sandbox", why);
    }
}

fn kubernetes_values(raw: &RawKubernetes, p: &mut Problems) {
    let policies = [("Always", ()), ("IfNotPresent", ()), ("Never", ())];
    let pull_policy = raw.image_pull_policy.as_deref();
    p.choice("kubernetes.image_pull_policy", pull_policy, &policies, ());
    p.non_blank(
        "kubernetes.workload_provider",
        raw.workload_provider.clone(),
    );
    let integers = [
        (
            "sandbox_create_timeout_seconds",
            raw.sandbox_create_timeout_seconds,
            1,
        ),
        (
            "snapshot_create_timeout_seconds",
            raw.snapshot_create_timeout_seconds,
            1,
        ),
        (
            "pool_acquisition_timeout_seconds",
            raw.pool_acquisition_timeout_seconds,
            1,
        ),
        ("informer_resync_seconds", raw.informer_resync_seconds, 1),
        (
            "informer_watch_timeout_seconds",
            raw.informer_watch_timeout_seconds,
            1,
        ),
        ("read_burst", raw.read_burst, 0),
        ("write_burst", raw.write_burst, 0),
    ];
    for (key, value, min) in integers {
        p.at_least(&format!("kubernetes.{key}"), value, min);
    }
    let poll = raw.sandbox_create_poll_interval_seconds;
    let floats = [
        ("sandbox_create_poll_interval_seconds", poll, 0.0, false),
        ("read_qps", raw.read_qps, 0.0, true),
        ("write_qps", raw.write_qps, 0.0, true),
        (
            "fastpath_timeout_seconds",
            raw.fastpath_timeout_seconds,
            1.0,
            true,
        ),
        (
            "fastpath_wait_ready_seconds",
            raw.fastpath_wait_ready_seconds,
            1.0,
            true,
        ),
    ];
    for (key, value, min, inclusive) in floats {
        float_at_least(p, &format!("kubernetes.{key}"), value, min, inclusive);
    }
    let secret = raw.template_s3_publish_secret.as_deref();
    if secret.is_some_and(str::is_empty) {
        p.push("kubernetes.template_s3_publish_secret", "must not be empty");
    }
}

/// `[agent_sandbox]` under the Kubernetes runtime: needs the matching provider.
fn agent_sandbox(raw: &RawAgentSandbox, provider: Option<&str>, p: &mut Problems) {
    if !provider.is_some_and(|name| name.trim().eq_ignore_ascii_case("agent-sandbox")) {
        let why = "only allowed when kubernetes.workload_provider = \"agent-sandbox\"";
        p.push("agent_sandbox", why);
    }
    let policies = [("Delete", ()), ("Retain", ())];
    let policy = raw.shutdown_policy.as_deref();
    p.choice("agent_sandbox.shutdown_policy", policy, &policies, ());
}

/// OpenSandbox's rules for `[secure_runtime]`.
fn secure_runtime(raw: &RawSecureRuntime, kind: RuntimeType, p: &mut Problems) {
    let named = |value: &Option<String>| value.as_deref().is_some_and(|s| !s.trim().is_empty());
    let (docker, k8s) = (named(&raw.docker_runtime), named(&raw.k8s_runtime_class));
    let absent = "must be absent when secure_runtime.type is empty";
    match raw.kind.as_deref().unwrap_or("") {
        "" => {
            let keys = [("docker_runtime", docker), ("k8s_runtime_class", k8s)];
            for (key, _) in keys.into_iter().filter(|(_, set)| *set) {
                p.push(format!("secure_runtime.{key}"), absent);
            }
        }
        "gvisor" | "kata" if !docker && !k8s => {
            let why = "gvisor and kata need secure_runtime.docker_runtime or secure_runtime.k8s_runtime_class";
            p.push("secure_runtime.type", why);
        }
        "firecracker" => firecracker(k8s, kind, p),
        "gvisor" | "kata" => {}
        other => {
            let expected = "expected one of \"\", \"gvisor\", \"kata\", \"firecracker\"";
            p.push(
                "secure_runtime.type",
                format!("{other:?} is not supported; {expected}"),
            );
        }
    }
}

/// Firecracker needs a RuntimeClass and is not available with Docker.
fn firecracker(has_k8s_class: bool, kind: RuntimeType, p: &mut Problems) {
    if !has_k8s_class {
        let why = "required when secure_runtime.type = \"firecracker\"";
        p.push("secure_runtime.k8s_runtime_class", why);
    }
    if kind == RuntimeType::Docker {
        let why = "firecracker is not available with runtime.type = \"docker\"";
        p.push("secure_runtime.type", why);
    }
}

fn renew_intent(raw: &RawRenewIntent, p: &mut Problems) {
    p.at_least(
        "renew_intent.min_interval_seconds",
        raw.min_interval_seconds,
        1,
    );
    let Some(redis) = &raw.redis else {
        return;
    };
    p.at_least(
        "renew_intent.redis.consumer_concurrency",
        redis.consumer_concurrency,
        1,
    );
    p.non_blank("renew_intent.redis.queue_key", redis.queue_key.clone());
    let has_dsn = redis
        .dsn
        .as_deref()
        .is_some_and(|dsn| !dsn.trim().is_empty());
    if redis.enabled == Some(true) && !has_dsn {
        p.push(
            "renew_intent.redis.dsn",
            "required when renew_intent.redis.enabled = true",
        );
    }
}
