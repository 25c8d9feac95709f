//! The configuration file as written: serde structs that mirror OpenSandbox's TOML keys.
//!
//! Every table denies unknown keys, so a typo fails loudly with the key's
//! name instead of being silently ignored (OpenSandbox ignores them). Every
//! value is an `Option` so "absent" stays distinguishable from "set to the
//! default"; numbers are `i64` so out-of-range values reach
//! [`validate`](super::validate()) and are reported with the other problems
//! rather than aborting the parse. Sandgate's own keys live in `[sandgate]`.

use std::collections::BTreeMap;

use serde::Deserialize;

pub use super::egress::{RawEgress, RawUpstreamProxy};
pub use super::kubernetes::{RawAgentSandbox, RawExecdInitResources, RawKubernetes};
pub use super::unbuilt::{RawOtel, RawPostgresql, RawProxy, RawTenants};

/// The whole file. Every table is optional; an empty file is a valid config.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`: the HTTP listener and API key.
    #[serde(default)]
    pub server: RawServer,
    /// `[proxy]`: OpenSandbox's server-proxy upstream choice (accepted, validated).
    #[serde(default)]
    pub proxy: RawProxy,
    /// `[log]`: log level (file logging keys are accepted and ignored).
    #[serde(default)]
    pub log: RawLog,
    /// `[tenants]`: multi-tenant mode; Kubernetes only (accepted, validated).
    pub tenants: Option<RawTenants>,
    /// `[otel]`: OTLP metrics export (accepted, validated).
    #[serde(default)]
    pub otel: RawOtel,
    /// `[runtime]`: which engine runs sandboxes.
    #[serde(default)]
    pub runtime: RawRuntime,
    /// `[docker]`: Docker engine settings.
    #[serde(default)]
    pub docker: RawDocker,
    /// `[kubernetes]`: Kubernetes settings; must be absent unless `runtime.type = "kubernetes"`.
    pub kubernetes: Option<RawKubernetes>,
    /// `[agent_sandbox]`: only with `kubernetes.workload_provider = "agent-sandbox"`.
    pub agent_sandbox: Option<RawAgentSandbox>,
    /// `[ingress]`: how clients reach sandbox ports.
    #[serde(default)]
    pub ingress: RawIngress,
    /// `[egress]`: the egress-policy sidecar.
    #[serde(default)]
    pub egress: RawEgress,
    /// `[storage]`: volume policy.
    #[serde(default)]
    pub storage: RawStorage,
    /// `[store]`: the durable state store.
    #[serde(default)]
    pub store: RawStore,
    /// `[secure_runtime]`: sandboxed container runtimes (gVisor, Kata, Firecracker).
    #[serde(default)]
    pub secure_runtime: RawSecureRuntime,
    /// `[renew_intent]`: OpenSandbox's experimental renew-on-access queue.
    #[serde(default)]
    pub renew_intent: RawRenewIntent,
    /// `[pause]`: a legacy OpenSandbox table; any content is accepted and ignored.
    pub pause: Option<toml::Table>,
    /// `[sandgate]`: settings that exist only in Sandgate.
    #[serde(default)]
    pub sandgate: RawSandgate,
}

/// `[server]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Bind address (Sandgate default `127.0.0.1`).
    pub host: Option<String>,
    /// Listen port, 1..=65535 (default 8080).
    pub port: Option<i64>,
    /// API key clients send in `OPEN-SANDBOX-API-KEY`; env `OPENSANDBOX_SERVER_API_KEY` overrides.
    pub api_key: Option<String>,
    /// Public host (or host/path) used in returned endpoints.
    pub eip: Option<String>,
    /// Upper bound on a sandbox's `timeout`, at least 60 (absent: no cap).
    pub max_sandbox_timeout_seconds: Option<i64>,
    /// uvicorn keep-alive timeout; Python-server specific, ignored.
    pub timeout_keep_alive: Option<i64>,
    /// uvicorn concurrency limit; Python-server specific, ignored.
    pub limit_concurrency: Option<i64>,
    /// Seconds shutdown waits for in-flight requests, at least 1; applied when
    /// `sandgate.shutdown_grace_seconds` is absent.
    pub timeout_graceful_shutdown: Option<i64>,
    /// uvicorn listen backlog; Python-server specific, ignored.
    pub backlog: Option<i64>,
    /// Python worker pool size; Python-server specific, ignored.
    pub thread_pool_size: Option<i64>,
    /// uvicorn event loop (`auto`, `uvloop`, `asyncio`); ignored.
    #[serde(rename = "loop")]
    pub event_loop: Option<String>,
    /// uvicorn HTTP implementation (`auto`, `httptools`, `h11`); ignored.
    pub http: Option<String>,
}

/// `[log]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// Level name, case-insensitive (`INFO`, `debug`, ...); default `info`.
    pub level: Option<String>,
    /// Enables file logging; not built yet, so `true` only produces a warning.
    pub file_enabled: Option<bool>,
    /// Server log file path; ignored.
    pub file_path: Option<String>,
    /// Access log file path; ignored.
    pub access_file_path: Option<String>,
    /// Rotation size in bytes, at least 1; ignored.
    pub file_max_bytes: Option<i64>,
    /// Rotated files kept, at least 0; ignored.
    pub file_backup_count: Option<i64>,
}

/// `[runtime]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    /// `docker` (default), `kubernetes` or `fake`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The execd image injected into sandboxes; non-empty when set.
    pub execd_image: Option<String>,
    /// Sets `EXECD_INIT=1` so execd runs as the sandbox's PID 1 (default false).
    pub execd_run_as_init: Option<bool>,
}

/// `[docker]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDocker {
    /// `bridge` (Sandgate default), `host`, or a user-defined network name.
    pub network_mode: Option<String>,
    /// Docker API call timeout in seconds, at least 1 (default 180).
    pub api_timeout: Option<i64>,
    /// Host address used in endpoints when the control plane itself runs in a container.
    pub host_ip: Option<String>,
    /// Capabilities dropped from every sandbox container.
    pub drop_capabilities: Option<Vec<String>>,
    /// AppArmor profile name; empty means unset.
    pub apparmor_profile: Option<String>,
    /// Sets `no-new-privileges` on sandbox containers (default true).
    pub no_new_privileges: Option<bool>,
    /// Seccomp profile name or absolute path; empty means unset.
    pub seccomp_profile: Option<String>,
    /// Process limit per sandbox (default 4096); 0 disables the limit.
    pub pids_limit: Option<i64>,
    /// Lowest host port OpenSandbox publishes on, 1024..=65535 (checked, unused).
    pub port_range_min: Option<i64>,
    /// Highest host port, 1024..=65535, at least 100 above the lowest (checked, unused).
    pub port_range_max: Option<i64>,
    /// IPv4 address host ports are published on (checked, unused).
    pub publish_host: Option<String>,
    /// Environment variables given to every sandbox; a request's variables win.
    pub sandbox_env: Option<BTreeMap<String, String>>,
    /// `host_path:container_path[:options]` binds given to every sandbox.
    pub sandbox_binds: Option<Vec<String>>,
}

/// `[ingress]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngress {
    /// `direct` (default) or `gateway`.
    pub mode: Option<String>,
    /// `[ingress.gateway]`: required exactly when `mode = "gateway"`.
    pub gateway: Option<RawGateway>,
    /// `[ingress.secure_access]`: signed endpoint keys; gateway mode only.
    pub secure_access: Option<RawSecureAccess>,
}

/// `[ingress.gateway]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// Public gateway address without a scheme; its shape depends on the route mode.
    pub address: Option<String>,
    /// `[ingress.gateway.route]`.
    pub route: Option<RawGatewayRoute>,
}

/// `[ingress.gateway.route]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayRoute {
    /// `wildcard`, `header` or `uri`.
    pub mode: Option<String>,
}

/// `[ingress.secure_access]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecureAccess {
    /// The key id used to sign new endpoints; must name one of `keys`.
    pub active_key: Option<String>,
    /// `[[ingress.secure_access.keys]]`: all keys accepted when verifying.
    pub keys: Option<Vec<RawSigningKey>>,
}

/// One `[[ingress.secure_access.keys]]` entry.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigningKey {
    /// One character, `0-9` or `a-z`, unique among the keys.
    pub key_id: Option<String>,
    /// The secret, base64 (standard alphabet, padding optional), at least one byte.
    pub key: Option<String>,
}

/// `[storage]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// Absolute host path prefixes that `host` volumes may use; empty disables host mounts.
    pub allowed_host_paths: Option<Vec<String>>,
    /// Size of auto-created volumes (default `1Gi`).
    pub volume_default_size: Option<String>,
    /// Absolute directory under which OSSFS volumes are mounted (default `/mnt/ossfs`).
    pub ossfs_mount_root: Option<String>,
}

/// `[store]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `sqlite` or `postgresql` (accepted; Sandgate still uses SQLite).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Database file; a leading `~` is expanded (default `~/.sandgate/sandgate.db`).
    pub path: Option<String>,
    /// `[store.postgresql]`: accepted and validated.
    pub postgresql: Option<RawPostgresql>,
}

/// `[secure_runtime]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecureRuntime {
    /// `""` (default, none), `gvisor`, `kata` or `firecracker`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Docker runtime name (e.g. `runsc`).
    pub docker_runtime: Option<String>,
    /// Kubernetes RuntimeClass name.
    pub k8s_runtime_class: Option<String>,
}

/// `[renew_intent]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRenewIntent {
    /// Renews sandboxes when they are accessed (default false).
    pub enabled: Option<bool>,
    /// Minimum seconds between two renewals of one sandbox, at least 1 (default 60).
    pub min_interval_seconds: Option<i64>,
    /// `[renew_intent.redis]`, also written as dotted `redis.*` keys.
    pub redis: Option<RawRedis>,
}

/// `[renew_intent.redis]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// Uses a Redis queue for renew intents (default false).
    pub enabled: Option<bool>,
    /// Redis connection string; required when `enabled`.
    pub dsn: Option<String>,
    /// Queue key, non-empty.
    pub queue_key: Option<String>,
    /// Consumer tasks, at least 1 (default 8).
    pub consumer_concurrency: Option<i64>,
}

/// `[sandgate]`: Sandgate's own settings.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSandgate {
    /// How long a sandbox that failed while pending stays visible, at least 1 (default 3600).
    pub pending_failure_ttl_seconds: Option<i64>,
    /// `adopt` (default) or `remove`: what startup does with labelled runtime objects the store does not know.
    pub orphan_policy: Option<String>,
    /// How long shutdown waits for in-flight work, at least 0 (default 30).
    pub shutdown_grace_seconds: Option<i64>,
    /// The edge proxy (`http://host:port`) that serves `/sandboxes/{id}/proxy/{port}/...` for `use_server_proxy` clients.
    pub edge_proxy_url: Option<String>,
    /// Shared secret edge proxies present (as a bearer token) to stream the routing table; unset disables the stream.
    pub routes_token: Option<String>,
    /// Name of this control plane on a shared engine; it only sees runtime objects labelled with it (default `default`).
    pub instance: Option<String>,
    /// Docker runtime: seconds between SIGTERM and SIGKILL when a sandbox is deleted, at least 0 (default 3).
    pub docker_stop_grace_seconds: Option<i64>,
    /// Browser origins (`scheme://host[:port]`) allowed to call the API with CORS (default none).
    pub cors_allowed_origins: Option<Vec<String>>,
    /// Host names accepted in `Host` while authentication is off, besides IP addresses and `localhost` (default none).
    pub allowed_hosts: Option<Vec<String>>,
    /// Named volumes Sandgate did not create that `pvc` volumes may still mount (default none).
    pub allowed_pvc_names: Option<Vec<String>>,
    /// `[sandgate.fake]`: the in-memory runtime.
    #[serde(default)]
    pub fake: RawFake,
}

/// `[sandgate.fake]`: settings of `runtime.type = "fake"`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFake {
    /// Simulated time to provision a sandbox, in milliseconds (default 0).
    pub provision_latency_ms: Option<i64>,
    /// Simulated time of every other engine call, in milliseconds (default 0).
    pub operation_latency_ms: Option<i64>,
    /// Host returned in fake endpoints (default `127.0.0.1`).
    pub endpoint_host: Option<String>,
    /// When set, the fake engine persists its state in this file.
    pub state_file: Option<String>,
}
