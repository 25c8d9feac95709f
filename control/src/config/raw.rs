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

/// The whole file. Every table is optional; an empty file is a valid config.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`: the HTTP listener and API key.
    #[serde(default)]
    pub server: RawServer,
    /// `[log]`: log level (file logging keys are accepted and ignored).
    #[serde(default)]
    pub log: RawLog,
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
}

/// `[kubernetes]`: accepted and validated; the Kubernetes runtime is not built yet.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    /// Path to a kubeconfig; absent means in-cluster credentials.
    pub kubeconfig_path: Option<String>,
    /// Namespace for sandbox workloads.
    pub namespace: Option<String>,
    /// Service account for sandbox pods.
    pub service_account: Option<String>,
    /// `batchsandbox` (default) or `agent-sandbox`, case-insensitive.
    pub workload_provider: Option<String>,
    /// BatchSandbox manifest template file.
    pub batchsandbox_template_file: Option<String>,
    /// Image pull policy for BatchSandbox pods.
    pub image_pull_policy: Option<String>,
    /// How long create waits for readiness, at least 1 second.
    pub sandbox_create_timeout_seconds: Option<i64>,
    /// Readiness poll interval in seconds, greater than 0.
    pub sandbox_create_poll_interval_seconds: Option<f64>,
    /// How long a snapshot may take, at least 1 second.
    pub snapshot_create_timeout_seconds: Option<i64>,
    /// Uses a watch-backed cache for reads.
    pub informer_enabled: Option<bool>,
    /// Informer resync period in seconds.
    pub informer_resync_seconds: Option<i64>,
    /// Informer watch timeout in seconds.
    pub informer_watch_timeout_seconds: Option<i64>,
    /// Client-side read rate limit (0: unlimited).
    pub read_qps: Option<f64>,
    /// Client-side read burst (0: unlimited).
    pub read_burst: Option<i64>,
    /// Client-side write rate limit (0: unlimited).
    pub write_qps: Option<f64>,
    /// Client-side write burst (0: unlimited).
    pub write_burst: Option<i64>,
    /// Resources of the execd init container.
    pub execd_init_resources: Option<RawExecdInitResources>,
}

impl RawKubernetes {
    /// The keys present in the table, in file-documentation order.
    pub fn present_keys(&self) -> Vec<&'static str> {
        let flags = [
            ("kubeconfig_path", self.kubeconfig_path.is_some()),
            ("namespace", self.namespace.is_some()),
            ("service_account", self.service_account.is_some()),
            ("workload_provider", self.workload_provider.is_some()),
            (
                "batchsandbox_template_file",
                self.batchsandbox_template_file.is_some(),
            ),
            ("image_pull_policy", self.image_pull_policy.is_some()),
            (
                "sandbox_create_timeout_seconds",
                self.sandbox_create_timeout_seconds.is_some(),
            ),
            (
                "sandbox_create_poll_interval_seconds",
                self.sandbox_create_poll_interval_seconds.is_some(),
            ),
            (
                "snapshot_create_timeout_seconds",
                self.snapshot_create_timeout_seconds.is_some(),
            ),
            ("informer_enabled", self.informer_enabled.is_some()),
            (
                "informer_resync_seconds",
                self.informer_resync_seconds.is_some(),
            ),
            (
                "informer_watch_timeout_seconds",
                self.informer_watch_timeout_seconds.is_some(),
            ),
            ("read_qps", self.read_qps.is_some()),
            ("read_burst", self.read_burst.is_some()),
            ("write_qps", self.write_qps.is_some()),
            ("write_burst", self.write_burst.is_some()),
            ("execd_init_resources", self.execd_init_resources.is_some()),
        ];
        flags
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(key, _)| key)
            .collect()
    }
}

/// `[kubernetes.execd_init_resources]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExecdInitResources {
    /// Resource limits, e.g. `{ cpu = "100m", memory = "64Mi" }`.
    pub limits: Option<BTreeMap<String, String>>,
    /// Resource requests, same shape as `limits`.
    pub requests: Option<BTreeMap<String, String>>,
}

/// `[agent_sandbox]`: accepted and validated; not built yet.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentSandbox {
    /// Sandbox manifest template file.
    pub template_file: Option<String>,
    /// `Delete` (default) or `Retain`.
    pub shutdown_policy: Option<String>,
    /// Unused by OpenSandbox as well.
    pub ingress_enabled: Option<bool>,
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

/// `[egress]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEgress {
    /// Egress sidecar image; needed for `networkPolicy`.
    pub image: Option<String>,
    /// `dns` (default) or `dns+nft`.
    pub mode: Option<String>,
    /// Disables IPv6 inside sandboxes that have a network policy (default true).
    pub disable_ipv6: Option<bool>,
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
    /// `sqlite`, the only store.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Database file; a leading `~` is expanded (default `~/.sandgate/sandgate.db`).
    pub path: Option<String>,
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
