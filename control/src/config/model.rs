//! The validated configuration: plain typed values that the rest of the control plane reads.
//!
//! Everything here has passed [`validate`](super::validate()): defaults are
//! filled in, environment overrides are applied, and cross-field rules hold.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The capabilities OpenSandbox drops from every sandbox container by default.
pub const DEFAULT_DROP_CAPABILITIES: [&str; 9] = [
    "AUDIT_WRITE",
    "MKNOD",
    "NET_ADMIN",
    "NET_RAW",
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_PTRACE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
];

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[runtime]`.
    pub runtime: RuntimeConfig,
    /// `[docker]` (defaults when the table is absent, whatever the runtime).
    pub docker: DockerConfig,
    /// `[ingress]`.
    pub ingress: IngressConfig,
    /// `[egress]`.
    pub egress: EgressConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[sandgate]`.
    pub sandgate: SandgateConfig,
    /// Keys that were accepted but have no effect, each as `"key: reason"`.
    /// The binary logs them at startup and `--check-config` prints them.
    pub warnings: Vec<String>,
}

/// `[server]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Bind address. The default is `127.0.0.1`, not OpenSandbox's `0.0.0.0`:
    /// with no API key authentication is off, so a zero-setup server must
    /// not be reachable from the network.
    pub host: String,
    /// Listen port (default 8080).
    pub port: u16,
    /// The API key; `None` means authentication is off. The environment
    /// variable `OPENSANDBOX_SERVER_API_KEY` overrides the file whenever it
    /// is set; an empty or whitespace-only value means `None`.
    pub api_key: Option<String>,
    /// Public host (or host/path) used in returned endpoints.
    pub eip: Option<String>,
    /// Upper bound on a sandbox's timeout in seconds (at least 60); `None` means no cap.
    pub max_sandbox_timeout_seconds: Option<u64>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("eip", &self.eip)
            .field(
                "max_sandbox_timeout_seconds",
                &self.max_sandbox_timeout_seconds,
            )
            .finish()
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` level name, lower case: `trace`, `debug`, `info`, `warn` or
    /// `error`. OpenSandbox's names are accepted in any case and mapped
    /// (`WARNING` → `warn`, `CRITICAL` → `error`).
    pub level: String,
}

/// `[runtime]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Which engine runs sandboxes (`runtime.type`, default Docker).
    pub kind: RuntimeType,
    /// The execd image; `None` means the runtime's built-in default.
    pub execd_image: Option<String>,
    /// Runs execd as the sandbox's PID 1 (`EXECD_INIT=1`; default false).
    pub execd_run_as_init: bool,
}

/// The value of `runtime.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeType {
    /// Docker Engine (the default).
    Docker,
    /// Kubernetes (configuration accepted; runtime not built yet).
    Kubernetes,
    /// The in-memory fake runtime, for demos, tests and benchmarks.
    Fake,
}

impl RuntimeType {
    /// Every accepted spelling, in documentation order.
    pub const NAMES: [&'static str; 3] = ["docker", "kubernetes", "fake"];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Kubernetes => "kubernetes",
            Self::Fake => "fake",
        }
    }
}

/// `[docker]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// `bridge` (default), `host`, or a network name. OpenSandbox defaults to
    /// `host`; Sandgate defaults to `bridge` so sandboxes get their own
    /// network namespace and published ports.
    pub network_mode: String,
    /// Timeout of one Docker API call (default 180 s).
    pub api_timeout: Duration,
    /// Host address used in endpoints when the control plane runs in a container.
    pub host_ip: Option<String>,
    /// Capabilities dropped from every sandbox (default [`DEFAULT_DROP_CAPABILITIES`]).
    pub drop_capabilities: Vec<String>,
    /// AppArmor profile; `None` when absent or empty.
    pub apparmor_profile: Option<String>,
    /// Sets `no-new-privileges` (default true).
    pub no_new_privileges: bool,
    /// Seccomp profile name or path; `None` when absent or empty.
    pub seccomp_profile: Option<String>,
    /// Process limit per sandbox (default 4096); `None` means unlimited (`pids_limit = 0`).
    pub pids_limit: Option<i64>,
    /// Environment given to every sandbox; a request's own variables win.
    pub sandbox_env: SandboxEnv,
    /// Binds (`source:target[:options]`) given to every sandbox, before the request's volumes.
    pub sandbox_binds: Vec<String>,
}

/// `docker.sandbox_env`: its values may be secrets, so `Debug` shows only the names.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SandboxEnv(pub BTreeMap<String, String>);

impl fmt::Debug for SandboxEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// `[ingress]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressConfig {
    /// `direct` (default) or `gateway`.
    pub mode: IngressMode,
    /// Present exactly when `mode` is [`IngressMode::Gateway`].
    pub gateway: Option<GatewayConfig>,
    /// Signed endpoint keys; only in gateway mode.
    pub secure_access: Option<SecureAccessConfig>,
}

/// The value of `ingress.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressMode {
    /// Clients reach sandbox ports directly (the default).
    Direct,
    /// Clients go through a gateway (Sandgate's edge proxy).
    Gateway,
}

/// `[ingress.gateway]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The public address, without a scheme; shape checked against `route_mode`.
    pub address: String,
    /// How the gateway finds the sandbox in a request.
    pub route_mode: RouteMode,
}

/// The value of `ingress.gateway.route.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMode {
    /// `<id>-<port>.<domain>`; the address is `*.domain`.
    Wildcard,
    /// A request header names the sandbox; the address is `host[:port]`.
    Header,
    /// The path names the sandbox; the address is a host with an optional path.
    Uri,
}

/// `[ingress.secure_access]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureAccessConfig {
    /// The id of the key that signs new endpoints; always one of `keys`.
    pub active_key: char,
    /// Every key accepted when verifying; ids are unique.
    pub keys: Vec<SigningKey>,
}

/// One signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// One character, `0-9` or `a-z`.
    pub key_id: char,
    /// The decoded secret, at least one byte.
    pub key: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// `[egress]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConfig {
    /// Sidecar image; `None` means network policies cannot be enforced.
    pub image: Option<String>,
    /// `dns` (default) or `dns+nft`.
    pub mode: String,
    /// Disables IPv6 in sandboxes with a network policy (default true).
    pub disable_ipv6: bool,
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Absolute path prefixes that host volumes may use; empty disables host mounts.
    pub allowed_host_paths: Vec<String>,
    /// Size of auto-created volumes (default `1Gi`).
    pub volume_default_size: String,
    /// Absolute directory for OSSFS mounts (default `/mnt/ossfs`).
    pub ossfs_mount_root: String,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The SQLite database file (default `$HOME/.sandgate/sandgate.db`), `~` expanded.
    pub path: PathBuf,
}

/// `[sandgate]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandgateConfig {
    /// How long a sandbox that failed while pending stays visible (default 1 h;
    /// env `PENDING_FAILURE_TTL`, in seconds, overrides).
    pub pending_failure_ttl: Duration,
    /// What startup does with labelled runtime objects the store does not know.
    pub orphan_policy: OrphanPolicy,
    /// How long shutdown waits for in-flight work (default 30 s).
    pub shutdown_grace: Duration,
    /// The edge proxy behind the server-proxy path, if any.
    pub edge_proxy_url: Option<http::Uri>,
    /// The route-stream token (env `SANDGATE_ROUTES_TOKEN` overrides); `None` disables the stream.
    pub routes_token: Option<String>,
    /// This control plane's name on a shared engine (default `default`).
    pub instance: String,
    /// Docker runtime: time between SIGTERM and SIGKILL on delete (default 3 s).
    pub docker_stop_grace: Duration,
    /// Named volumes Sandgate did not create that `pvc` volumes may mount
    /// (default none: only volumes labelled as Sandgate's).
    pub allowed_pvc_names: Vec<String>,
    /// `[sandgate.fake]`.
    pub fake: FakeConfig,
    /// `sandgate.cors_allowed_origins` and `sandgate.allowed_hosts`.
    pub web: super::web::WebConfig,
}

/// The value of `sandgate.orphan_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanPolicy {
    /// Rebuild a sandbox record from the object's labels (the default).
    Adopt,
    /// Delete the object.
    Remove,
}

/// `[sandgate.fake]`: the in-memory runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeConfig {
    /// Simulated provisioning time (default 0).
    pub provision_latency: Duration,
    /// Simulated time of every other engine call (default 0).
    pub operation_latency: Duration,
    /// Host returned in endpoints (default `127.0.0.1`).
    pub endpoint_host: String,
    /// When set, the fake engine persists its state here, so it outlives the control plane.
    pub state_file: Option<PathBuf>,
}
