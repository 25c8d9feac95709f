//! Domain errors of sandbox operations: what happened, never how it is
//! answered over HTTP (that mapping lives in [`crate::error`]).

use super::rules::FieldProblem;
use crate::runtime::{RuntimeError, RuntimeKind};
use crate::store::StoreError;

/// What a sandbox operation was doing when the runtime failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Checking a create request against the runtime.
    Check,
    /// Freezing a sandbox.
    Pause,
    /// Thawing a sandbox.
    Resume,
    /// Removing a sandbox.
    Delete,
    /// Resolving where a sandbox port is reached.
    ResolveEndpoint,
    /// Reading what the runtime holds (list, logs, inspect).
    Query,
}

/// What about the sandbox's state is in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The state machine does not allow the step.
    State,
    /// Pausing needs a running sandbox.
    NotRunning,
    /// Resuming needs a paused sandbox.
    NotPaused,
    /// Renewal of a sandbox without automatic expiration.
    NoExpiration,
}

/// Why a sandbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No such sandbox.
    #[error("Sandbox {id} not found.")]
    NotFound {
        /// The engine the service drives.
        engine: RuntimeKind,
        /// The id asked for.
        id: String,
    },
    /// The request breaks one or more rules.
    #[error("{}", join(.0))]
    Invalid(Vec<FieldProblem>),
    /// The sandbox's state does not allow the operation.
    #[error("{message}")]
    Conflict {
        /// What is in the way.
        reason: Conflict,
        /// The engine the service drives.
        engine: RuntimeKind,
        /// What is in the way, for people.
        message: String,
    },
    /// The snapshot to restore does not exist.
    #[error("Snapshot {id} not found.")]
    SnapshotNotFound {
        /// The snapshot id.
        id: String,
    },
    /// The snapshot to restore is not `Ready`.
    #[error("Snapshot {id} is not ready for restore.")]
    SnapshotNotReady {
        /// The snapshot id.
        id: String,
    },
    /// The runtime failed during `operation`.
    #[error("{action} failed: {source}")]
    Runtime {
        /// What was being done.
        operation: Operation,
        /// The engine the service drives.
        engine: RuntimeKind,
        /// What was being done, for people ("pausing sandbox X").
        action: String,
        /// The runtime's error.
        #[source]
        source: RuntimeError,
    },
    /// The durable store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn join(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

impl SandboxError {
    /// A single-problem validation error.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldProblem::new(code, message)])
    }
}

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No such snapshot.
    #[error("Snapshot {id} not found")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The request breaks a rule (the message names the field).
    #[error("{0}")]
    Invalid(String),
    /// Snapshots are taken of running sandboxes only.
    #[error("Snapshot can only be created from a Running sandbox.")]
    SourceNotRunning,
    /// A snapshot cannot be deleted while it is being created.
    #[error("Snapshot {id} is still being created and cannot be deleted")]
    StillCreating {
        /// The snapshot id.
        id: String,
    },
    /// The engine refuses to remove the image: a sandbox still uses it.
    #[error("snapshot image cannot be deleted due to a conflict")]
    InUse(#[source] RuntimeError),
    /// The engine failed to remove the image.
    #[error("deleting snapshot {id} failed: {source}")]
    RemoveFailed {
        /// The snapshot id.
        id: String,
        /// The runtime's error.
        #[source]
        source: RuntimeError,
    },
    /// The source sandbox's part failed (not found).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The durable store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
