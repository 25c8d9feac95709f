//! The sandbox domain model: the validated spec and the durable record.

use std::collections::BTreeMap;
use std::sync::Arc;

use sandgate_shared::api::{self, SandboxState};
use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Where the sandbox's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A container image reference.
    Image {
        /// The reference as requested.
        uri: String,
    },
    /// A snapshot id.
    Snapshot {
        /// The snapshot id.
        id: String,
        /// The snapshot's image, resolved when the create was accepted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
}

/// Parsed `resourceLimits`; `raw` keeps every key as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU in millicores (`500m` → 500, `2` → 2000).
    pub cpu_millis: Option<u64>,
    /// Memory in bytes (`512Mi` → 536870912).
    pub memory_bytes: Option<u64>,
    /// GPU devices: `Some(None)` means all.
    pub gpu: Option<GpuRequest>,
    /// Every key as the request sent it.
    pub raw: BTreeMap<String, String>,
}

/// A GPU request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuRequest {
    /// This many devices.
    Count(u32),
    /// Every device.
    All,
}

/// A requested platform, normalized to lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformSpec {
    /// `linux` or `windows`.
    pub os: String,
    /// `amd64` or `arm64`.
    pub arch: String,
}

/// One storage mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// DNS-label name, unique in the request.
    pub name: String,
    /// Absolute path inside the sandbox.
    pub mount_path: String,
    /// Mount read-only.
    pub read_only: bool,
    /// Relative path inside the backend, without `..`.
    pub sub_path: Option<String>,
    /// The storage backend.
    pub backend: VolumeBackend,
}

/// A volume's backend: exactly one per volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeBackend {
    /// A host directory (subject to `storage.allowed_host_paths`).
    Host {
        /// Absolute host path.
        path: String,
    },
    /// A named volume (Docker) or persistent volume claim (Kubernetes).
    Pvc {
        /// Volume or claim name.
        claim_name: String,
        /// Create it when missing.
        create_if_not_exists: bool,
        /// Remove it with the sandbox, if Sandgate created it.
        delete_on_sandbox_termination: bool,
        /// Kubernetes storage class.
        storage_class: Option<String>,
        /// Kubernetes requested size.
        storage: Option<String>,
        /// Kubernetes access modes.
        access_modes: Vec<String>,
    },
    /// An Alibaba OSS bucket through ossfs.
    Ossfs {
        /// Bucket name.
        bucket: String,
        /// OSS endpoint.
        endpoint: String,
        /// ossfs major version (`1.0` or `2.0`).
        version: String,
        /// Extra mount options.
        options: Vec<String>,
    },
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyAction {
    /// Permit the traffic.
    Allow,
    /// Block the traffic.
    Deny,
}

/// One egress rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressRule {
    /// What to do on a match.
    pub action: PolicyAction,
    /// A domain, wildcard domain, IP or CIDR.
    pub target: String,
}

/// The outbound network policy (enforced by an egress sidecar).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicy {
    /// What happens to traffic no rule matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<PolicyAction>,
    /// Rules, first match wins.
    #[serde(default)]
    pub egress: Vec<EgressRule>,
}

/// A validated create request; immutable once stored. Image credentials are
/// deliberately not part of it (see [`crate::runtime::RegistryAuth`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Image or snapshot.
    pub source: Source,
    /// The entry process.
    pub entrypoint: Vec<String>,
    /// Environment for the entry process.
    pub env: BTreeMap<String, String>,
    /// Resource limits.
    pub resources: Resources,
    /// Platform constraint.
    pub platform: Option<PlatformSpec>,
    /// Storage mounts.
    pub volumes: Vec<VolumeSpec>,
    /// Outbound network policy.
    pub network_policy: Option<NetworkPolicy>,
    /// Whether endpoints require the secure-access token.
    pub secure_access: bool,
    /// Opaque provider extensions.
    pub extensions: BTreeMap<String, String>,
    /// TTL in seconds; `None` is manual cleanup.
    pub timeout_seconds: Option<u64>,
    /// Whether the pull needed `image.auth`, which is never stored: an
    /// interrupted provisioning cannot then be retried after a restart.
    #[serde(default)]
    pub needs_registry_auth: bool,
}

/// Status as stored: the state plus why and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Lifecycle state.
    pub state: SandboxState,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// When the state last changed.
    pub last_transition_at: Timestamp,
}

/// What to do with labelled runtime objects the store does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OrphanPolicy {
    /// Record them as sandboxes (the default: nothing is destroyed).
    #[default]
    Adopt,
    /// Remove them from the runtime.
    Remove,
}

/// Reason codes Sandgate itself sets.
pub mod reason {
    /// Accepted, provisioning queued or running.
    pub const PROVISIONING: &str = "PROVISIONING";
    /// Provisioning failed.
    pub const PROVISIONING_ERROR: &str = "PROVISIONING_ERROR";
    /// Running.
    pub const RUNNING: &str = "SANDBOX_RUNNING";
    /// Pause in progress.
    pub const PAUSING: &str = "PAUSING";
    /// Paused.
    pub const PAUSED: &str = "SANDBOX_PAUSED";
    /// Resume in progress.
    pub const RESUMING: &str = "RESUMING";
    /// Deleted by the API.
    pub const USER_DELETE: &str = "user_delete";
    /// Deleted because its TTL passed.
    pub const TTL_EXPIRY: &str = "ttl_expiry";
    /// The main process exited with code 0.
    pub const EXITED: &str = "CONTAINER_EXITED";
    /// The main process exited with a non-zero code.
    pub const EXITED_ERROR: &str = "CONTAINER_EXITED_ERROR";
    /// The OOM killer ended the main process.
    pub const OOM_KILLED: &str = "CONTAINER_OOM_KILLED";
    /// The runtime object disappeared without Sandgate asking.
    pub const RUNTIME_LOST: &str = "RUNTIME_LOST";
    /// Found in the runtime without a stored record, and adopted.
    pub const ADOPTED: &str = "ADOPTED";
}

/// Everything Sandgate knows about one sandbox; what the store persists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// Identity.
    pub id: SandboxId,
    /// The validated request.
    pub spec: Arc<SandboxSpec>,
    /// User metadata (after merge patches).
    pub metadata: BTreeMap<String, String>,
    /// Current status.
    pub status: Status,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// TTL deadline (after renewals); `None` is manual cleanup.
    pub expires_at: Option<Timestamp>,
    /// Where the edge proxy reaches the sandbox's ports (host, no port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The secure-access token (when created with `secureAccess: true`);
    /// returned as an endpoint header, only its digest is published to proxies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_access_token: Option<String>,
}

impl SandboxRecord {
    /// The record as `GET /sandboxes/{id}` returns it.
    pub fn to_api(&self) -> api::Sandbox {
        let (image, snapshot_id) = match &self.spec.source {
            Source::Image { uri } => (Some(api::ImageRef { uri: uri.clone() }), None),
            Source::Snapshot { id, .. } => (None, Some(id.clone())),
        };
        api::Sandbox {
            id: self.id.clone(),
            image,
            snapshot_id,
            platform: self.api_platform(),
            status: self.api_status(),
            metadata: self.api_metadata(),
            entrypoint: self.spec.entrypoint.clone(),
            expires_at: self.expires_at,
            created_at: self.created_at,
        }
    }

    /// The record as the `202` body of `POST /sandboxes`.
    pub fn to_create_response(&self) -> api::CreateSandboxResponse {
        api::CreateSandboxResponse {
            id: self.id.clone(),
            status: self.api_status(),
            metadata: self.api_metadata(),
            platform: self.api_platform(),
            expires_at: self.expires_at,
            created_at: self.created_at,
            entrypoint: self.spec.entrypoint.clone(),
        }
    }

    fn api_status(&self) -> api::SandboxStatus {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        api::SandboxStatus {
            state: self.status.state,
            reason: non_empty(&self.status.reason),
            message: non_empty(&self.status.message),
            last_transition_at: Some(self.status.last_transition_at),
        }
    }

    fn api_metadata(&self) -> Option<BTreeMap<String, String>> {
        (!self.metadata.is_empty()).then(|| self.metadata.clone())
    }

    fn api_platform(&self) -> Option<api::Platform> {
        self.spec.platform.as_ref().map(|p| api::Platform {
            os: p.os.clone(),
            arch: p.arch.clone(),
        })
    }
}
