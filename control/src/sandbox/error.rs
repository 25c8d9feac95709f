//! Domain errors of sandbox operations, each carrying its wire code.

use axum::http::StatusCode;

use super::rules::FieldProblem;
use crate::error::{ApiError, codes, error_chain};
use crate::runtime::RuntimeError;
use crate::store::StoreError;

/// Why a sandbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No such sandbox.
    #[error("Sandbox {id} not found.")]
    NotFound {
        /// Engine-specific code.
        code: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The request breaks one or more rules (400).
    #[error("{}", join(.0))]
    Invalid(Vec<FieldProblem>),
    /// The sandbox's state does not allow the operation (409).
    #[error("{message}")]
    Conflict {
        /// Wire code.
        code: &'static str,
        /// What is in the way.
        message: String,
    },
    /// The snapshot to restore does not exist.
    #[error("Snapshot {id} not found.")]
    SnapshotNotFound {
        /// The snapshot id.
        id: String,
    },
    /// The runtime failed; `code` is the operation's engine-specific code.
    #[error("{action} failed: {source}")]
    Runtime {
        /// Wire code for an engine failure of this operation.
        code: &'static str,
        /// What was being done ("pausing sandbox X").
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
    /// A single-problem 400.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldProblem::new(code, message)])
    }
}

impl From<SandboxError> for ApiError {
    fn from(error: SandboxError) -> Self {
        match error {
            SandboxError::NotFound { code, .. } => {
                ApiError::new(StatusCode::NOT_FOUND, code, error.to_string())
            }
            SandboxError::Invalid(ref problems) => {
                let code = problems
                    .first()
                    .map_or(codes::INVALID_PARAMETER, |p| p.code);
                ApiError::new(StatusCode::BAD_REQUEST, code, error.to_string())
            }
            SandboxError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            SandboxError::SnapshotNotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::SNAPSHOT_NOT_FOUND,
                error.to_string(),
            ),
            SandboxError::Runtime {
                code,
                action,
                source,
            } => runtime_error(code, &action, source),
            SandboxError::Store(source) => ApiError::internal(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::STORE_FAILED,
                "The state store failed; the change was not made.",
                &source,
            ),
        }
    }
}

fn runtime_error(code: &'static str, action: &str, source: RuntimeError) -> ApiError {
    match source {
        RuntimeError::InvalidSpec { code, message } => {
            ApiError::new(StatusCode::BAD_REQUEST, code, message)
        }
        RuntimeError::Conflict(message) => ApiError::new(
            StatusCode::CONFLICT,
            code,
            format!("{action} failed: {message}"),
        ),
        RuntimeError::NotReady(message) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            format!("{action}: not ready yet ({message}); retry shortly"),
        ),
        RuntimeError::Unavailable(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            format!("{action} failed: {}", error_chain(&source)),
        ),
        RuntimeError::NotFound { .. } | RuntimeError::Backend(_) => {
            tracing::error!(error.code = code, error = %error_chain(&source), "{action} failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                format!("{action} failed: {}", error_chain(&source)),
            )
        }
    }
}
