//! `[kubernetes]` and `[agent_sandbox]` as written: accepted and validated; the runtime is not built yet.
//!
//! The keys are OpenSandbox 1.1.1's plus three older ones Sandgate kept
//! (`service_account`, `informer_enabled`, `snapshot_create_timeout_seconds`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[kubernetes]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    /// Path to a kubeconfig; absent means in-cluster credentials.
    pub kubeconfig_path: Option<String>,
    /// Skips TLS verification of the API server.
    pub insecure_skip_tls_verify: Option<bool>,
    /// Namespace for sandbox workloads.
    pub namespace: Option<String>,
    /// Service account for sandbox pods (older OpenSandbox key).
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
    /// How long create waits for pool capacity, at least 1 second.
    pub pool_acquisition_timeout_seconds: Option<i64>,
    /// How long a snapshot may take, at least 1 second (older OpenSandbox key).
    pub snapshot_create_timeout_seconds: Option<i64>,
    /// Uses a watch-backed cache for reads (older OpenSandbox key).
    pub informer_enabled: Option<bool>,
    /// Informer resync period in seconds, at least 1.
    pub informer_resync_seconds: Option<i64>,
    /// Informer watch timeout in seconds, at least 1.
    pub informer_watch_timeout_seconds: Option<i64>,
    /// Client-side read rate limit (0: unlimited).
    pub read_qps: Option<f64>,
    /// Client-side read burst (0: unlimited).
    pub read_burst: Option<i64>,
    /// Client-side write rate limit (0: unlimited).
    pub write_qps: Option<f64>,
    /// Client-side write burst (0: unlimited).
    pub write_burst: Option<i64>,
    /// fast-sandbox Fast-Path gRPC endpoint.
    pub fastpath_endpoint: Option<String>,
    /// Per-call Fast-Path deadline in seconds, at least 1.
    pub fastpath_timeout_seconds: Option<f64>,
    /// Fast-Path readiness wait in seconds, at least 1.
    pub fastpath_wait_ready_seconds: Option<f64>,
    /// Default fast-sandbox SandboxPool.
    pub fastpath_resource_pool: Option<String>,
    /// Secret holding object-store credentials for SandboxTemplates; non-empty.
    pub template_s3_publish_secret: Option<String>,
    /// Resources of the execd init container.
    pub execd_init_resources: Option<RawExecdInitResources>,
}

impl RawKubernetes {
    /// The keys present in the table, in declaration order.
    pub fn present_keys(&self) -> Vec<&'static str> {
        let flags = [
            ("kubeconfig_path", self.kubeconfig_path.is_some()),
            (
                "insecure_skip_tls_verify",
                self.insecure_skip_tls_verify.is_some(),
            ),
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
                "pool_acquisition_timeout_seconds",
                self.pool_acquisition_timeout_seconds.is_some(),
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
            ("fastpath_endpoint", self.fastpath_endpoint.is_some()),
            (
                "fastpath_timeout_seconds",
                self.fastpath_timeout_seconds.is_some(),
            ),
            (
                "fastpath_wait_ready_seconds",
                self.fastpath_wait_ready_seconds.is_some(),
            ),
            (
                "fastpath_resource_pool",
                self.fastpath_resource_pool.is_some(),
            ),
            (
                "template_s3_publish_secret",
                self.template_s3_publish_secret.is_some(),
            ),
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
