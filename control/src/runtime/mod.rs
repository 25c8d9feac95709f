//! The runtime abstraction: what a container engine must do for Sandgate.
//!
//! One trait object, [`Runtime`], with domain operations only; the engine's
//! client never leaks out. Implementations: [`fake`] (in memory, for tests,
//! benchmarks and demos) and, in later modules, Docker and Kubernetes.
//! Errors are classified by meaning in [`RuntimeError`], not by origin.

pub mod docker;
pub mod fake;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::sandbox::model::SandboxSpec;

/// Which engine a runtime drives; decides the engine-specific error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Docker Engine.
    Docker,
    /// Kubernetes.
    Kubernetes,
    /// The in-memory fake runtime.
    Fake,
}

impl RuntimeKind {
    /// The config spelling (`runtime.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Kubernetes => "kubernetes",
            Self::Fake => "fake",
        }
    }
}

/// Registry credentials for one pull. Held in memory only, never persisted or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// Registry user name.
    pub username: String,
    /// Registry password or token.
    pub password: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything a runtime needs to provision one sandbox.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    /// The sandbox id; runtimes label their objects with it.
    pub id: SandboxId,
    /// The validated request.
    pub spec: Arc<SandboxSpec>,
    /// User metadata at creation time.
    pub metadata: BTreeMap<String, String>,
    /// Pull credentials, when the request carried `image.auth`.
    pub image_auth: Option<RegistryAuth>,
    /// When the sandbox was accepted.
    pub created_at: Timestamp,
    /// The TTL deadline, if any; runtimes may record it in labels.
    pub expires_at: Option<Timestamp>,
}

/// Reports provisioning progress ("pulling image: 40%") into `status.message`.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(String) + Send + Sync>);

impl Progress {
    /// Wraps a callback.
    pub fn new(report: impl Fn(String) + Send + Sync + 'static) -> Self {
        Self(Arc::new(report))
    }

    /// Reports one progress message.
    pub fn report(&self, message: impl Into<String>) {
        (self.0)(message.into());
    }
}

/// What the engine says about a sandbox right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservedState {
    /// Created but not yet started.
    Creating,
    /// Running.
    Running,
    /// Frozen.
    Paused,
    /// The main process ended.
    Exited {
        /// Its exit code.
        code: i64,
        /// Whether the kernel OOM killer ended it.
        oom_killed: bool,
    },
}

/// What provisioning produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The state right after the start (normally `Running`).
    pub state: ObservedState,
    /// The host (IP or name, no port) where the sandbox's ports are reached
    /// from the edge proxy, when the runtime knows it.
    pub address: Option<String>,
}

/// One sandbox as the engine knows it; used to reconcile and to adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSandbox {
    /// The id from the engine object's labels.
    pub id: SandboxId,
    /// Its observed state.
    pub state: ObservedState,
    /// Creation time as the engine recorded it.
    pub created_at: Option<Timestamp>,
    /// The image reference it runs.
    pub image: Option<String>,
    /// Its entry process (without any bootstrap wrapper).
    pub entrypoint: Vec<String>,
    /// User metadata recorded on the engine object.
    pub metadata: BTreeMap<String, String>,
    /// The TTL deadline recorded on the engine object.
    pub expires_at: Option<Timestamp>,
    /// Where its ports are reached (see [`Provisioned::address`]).
    pub address: Option<String>,
}

/// A change the engine reports on its own (crash, OOM kill, a pause or
/// removal by hand, a restart outside Sandgate).
///
/// An event is a hint, not the truth: it may describe an engine object that
/// no longer backs the sandbox (the container removed when provisioning was
/// restarted after a crash reports its death after the new one runs). The
/// service therefore re-reads the sandbox with [`Runtime::observe`] and
/// records what the engine holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEvent {
    /// The sandbox's main process ended.
    Exited {
        /// Which sandbox.
        id: SandboxId,
        /// Exit code.
        code: i64,
        /// Whether the OOM killer ended it.
        oom_killed: bool,
    },
    /// The engine object disappeared without Sandgate asking.
    Removed {
        /// Which sandbox.
        id: SandboxId,
    },
    /// The sandbox was frozen.
    Frozen {
        /// Which sandbox.
        id: SandboxId,
    },
    /// The sandbox was unfrozen.
    Thawed {
        /// Which sandbox.
        id: SandboxId,
    },
    /// The sandbox's main process started (again).
    Started {
        /// Which sandbox.
        id: SandboxId,
    },
    /// The event stream was interrupted; the consumer must re-read everything.
    Resync,
}

impl RuntimeEvent {
    /// The sandbox the event is about (`None` for [`RuntimeEvent::Resync`]).
    pub fn sandbox(&self) -> Option<&SandboxId> {
        match self {
            Self::Exited { id, .. }
            | Self::Removed { id }
            | Self::Frozen { id }
            | Self::Thawed { id }
            | Self::Started { id } => Some(id),
            Self::Resync => None,
        }
    }
}

/// Where clients reach a sandbox port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEndpoint {
    /// `host:port[/path]`, without a scheme.
    pub endpoint: String,
    /// Headers a client must send.
    pub headers: BTreeMap<String, String>,
}

/// Which part of a sandbox's output [`Runtime::logs`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogWindow {
    /// At most this many of the last lines.
    pub tail: usize,
    /// Only lines written at or after this instant.
    pub since: Option<Timestamp>,
}

/// One thing the engine recorded about a sandbox's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEvent {
    /// When it happened, if the engine says.
    pub at: Option<Timestamp>,
    /// What happened, on one line ("process started (pid 12)").
    pub what: String,
}

impl ProcessEvent {
    /// An event at a known instant.
    pub fn at(at: Timestamp, what: impl Into<String>) -> Self {
        Self {
            at: Some(at),
            what: what.into(),
        }
    }

    /// A standing fact without a time ("container is paused").
    pub fn undated(what: impl Into<String>) -> Self {
        Self {
            at: None,
            what: what.into(),
        }
    }
}

/// A sandbox's filesystem committed for later restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotImage {
    /// The image reference a restore creates its sandbox from.
    pub image: String,
}

/// A runtime failure, classified by what the caller should do about it.
///
/// `Display` says what happened in product terms and is safe to show to
/// clients; the engine's own text (which can name host resources, addresses
/// and container ids) is only reachable through [`std::error::Error::source`],
/// for logs.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine has no such sandbox.
    #[error("sandbox {id} does not exist in the runtime")]
    NotFound {
        /// Which sandbox.
        id: SandboxId,
    },
    /// The engine refused because of the object's current state.
    #[error("the runtime refused because of the sandbox's current state")]
    Conflict(#[source] Detail),
    /// The engine cannot be reached; retrying later may succeed.
    #[error("the container runtime is unavailable; retry later")]
    Unavailable(#[source] Detail),
    /// The request cannot be satisfied by this runtime.
    #[error("{message}")]
    InvalidSpec {
        /// Which rule the request breaks.
        rule: SpecRule,
        /// What is wrong, naming the field.
        message: String,
    },
    /// This build or configuration cannot drive the runtime at all.
    #[error("{0}")]
    Unsupported(String),
    /// The image cannot be made available.
    #[error("image {image} cannot be pulled ({problem})")]
    ImagePull {
        /// The image reference.
        image: String,
        /// Why, as far as the registry says.
        problem: PullProblem,
        /// The engine's text.
        #[source]
        detail: Detail,
    },
    /// The engine refused the sandbox's specification (a limit the host
    /// cannot honour, a value only the engine checks).
    #[error("the container runtime rejected the sandbox's specification")]
    SpecRejected(#[source] Detail),
    /// The sandbox's entry process cannot be started.
    #[error(
        "the entrypoint {program:?} cannot be started: it is missing from the image or not executable"
    )]
    EntrypointNotStartable {
        /// The program, as the request named it.
        program: String,
        /// The engine's text.
        #[source]
        detail: Detail,
    },
    /// The answer is not known yet (an endpoint while still provisioning).
    #[error("not ready: {0}")]
    NotReady(String),
    /// Any other engine failure.
    #[error("the container runtime failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The rule a request breaks on this runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecRule {
    /// A field or feature this runtime does not offer.
    Unsupported,
    /// A host path outside the allow-list.
    HostPathNotAllowed,
    /// A subPath that leaves its volume.
    SubPathOutsideVolume,
    /// A named volume that must exist and does not.
    VolumeNotFound,
    /// A subPath on a volume whose driver cannot offer one.
    SubPathUnsupportedDriver,
    /// A named volume Sandgate did not create and the allow-list does not name.
    VolumeNotAllowed,
    /// A host path or subPath that is not a directory.
    NotADirectory,
    /// A mount path that would hide what the runtime installs.
    MountPathReserved,
    /// A resource limit the engine cannot honour.
    LimitOutOfRange,
}

/// Why an image pull failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PullProblem {
    /// The registry refused the credentials.
    #[error("the registry answered unauthorized: check image.auth username and password")]
    Unauthorized,
    /// No such image or tag.
    #[error("no such image or tag in the registry")]
    NotFound,
    /// Anything else (unreachable registry, broken layer).
    #[error("the registry or the engine failed to provide it")]
    Other,
}

/// An engine's own text, kept for logs only.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Detail(pub String);

impl RuntimeError {
    /// A backend error from a message.
    pub fn backend(message: impl Into<String>) -> Self {
        Self::Backend(message.into().into())
    }

    /// A state conflict, with the engine's text for the log.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict(Detail(detail.into()))
    }

    /// An unreachable engine, with the reason for the log.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable(Detail(detail.into()))
    }

    /// A request this runtime cannot serve.
    pub fn invalid_spec(rule: SpecRule, message: impl Into<String>) -> Self {
        Self::InvalidSpec {
            rule,
            message: message.into(),
        }
    }
}

/// Where a runtime sends [`RuntimeEvent`]s.
pub type EventSink = mpsc::UnboundedSender<RuntimeEvent>;

/// A container engine, seen through domain operations only.
///
/// Every method is safe to call concurrently for different sandboxes; the
/// [`SandboxService`](crate::sandbox::service::SandboxService) serializes
/// operations on one sandbox.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Which engine this is.
    fn kind(&self) -> RuntimeKind;

    /// Rejects requests this runtime cannot serve, before anything is stored.
    /// The default accepts everything.
    fn check_spec(&self, _spec: &SandboxSpec) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// Creates and starts the sandbox; returns what it observed right after
    /// the start (normally `Running`; `Exited` when the entry process ended
    /// at once). Long steps report through `progress`.
    ///
    /// `cancel` fires when the sandbox is deleted meanwhile. The runtime then
    /// returns early (with any error), but only at a point where no engine
    /// call it made is still in flight: the deletion runs once this returns
    /// and must find everything that was created. (Dropping a future that is
    /// waiting for the engine does not undo what the engine goes on to do.)
    async fn provision(
        &self,
        request: &ProvisionRequest,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<Provisioned, RuntimeError>;

    /// Freezes a running sandbox.
    async fn pause(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    /// Unfreezes a paused sandbox.
    async fn resume(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    /// Stops and removes the sandbox and what was created for it.
    /// Succeeds when nothing is left, including when it never existed.
    async fn delete(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    /// Every sandbox this runtime holds, for reconciliation.
    async fn list(&self) -> Result<Vec<RuntimeSandbox>, RuntimeError>;

    /// What the engine holds for one sandbox right now (`None`: nothing).
    /// Recovery and the reaction to [`RuntimeEvent`]s record this, never
    /// the event itself.
    async fn observe(&self, id: &SandboxId) -> Result<Option<RuntimeSandbox>, RuntimeError>;

    /// Where clients reach `port` of the sandbox.
    async fn resolve_endpoint(
        &self,
        id: &SandboxId,
        port: u16,
    ) -> Result<ResolvedEndpoint, RuntimeError>;

    /// The sandbox's output (stdout and stderr, each line prefixed with its
    /// RFC 3339 timestamp) within `window`, and whether older output in the
    /// window was cut. The default has none.
    async fn logs(
        &self,
        _id: &SandboxId,
        _window: LogWindow,
    ) -> Result<(String, bool), RuntimeError> {
        Ok((String::new(), false))
    }

    /// What the engine recorded about the sandbox's process (created,
    /// started, finished, exit code, OOM kill), oldest first. The default
    /// has none.
    async fn process_events(&self, _id: &SandboxId) -> Result<Vec<ProcessEvent>, RuntimeError> {
        Ok(Vec::new())
    }

    /// A readable description of the engine object behind the sandbox
    /// (identity, state, resources, network, mounts, labels), for people
    /// troubleshooting it. Never includes environment values or other
    /// secrets. `NotFound` when the engine holds nothing for the sandbox.
    async fn inspect(&self, id: &SandboxId) -> Result<String, RuntimeError>;

    /// Commits the sandbox's filesystem as the snapshot `snapshot_id`; a
    /// running sandbox is frozen for the length of the commit. `NotFound`
    /// when the engine holds nothing for the sandbox.
    async fn snapshot(
        &self,
        id: &SandboxId,
        snapshot_id: &str,
    ) -> Result<SnapshotImage, RuntimeError>;

    /// The image of snapshot `snapshot_id`, if the engine holds it (recovery
    /// of a snapshot interrupted by a restart).
    async fn find_snapshot(&self, snapshot_id: &str)
    -> Result<Option<SnapshotImage>, RuntimeError>;

    /// Removes a snapshot's image. Succeeds when it is already gone;
    /// `Conflict` while a sandbox still uses it.
    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), RuntimeError>;

    /// Whether the engine answers; drives `/health` detail.
    async fn health(&self) -> Result<(), RuntimeError>;

    /// Starts reporting engine-side changes into `sink`.
    /// The default reports nothing.
    fn watch(&self, _sink: EventSink) {}
}
