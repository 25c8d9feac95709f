//! Maps bollard's errors onto [`RuntimeError`] by meaning.

use bollard::errors::Error as DockerError;
use sandgate_shared::ids::SandboxId;

use crate::runtime::RuntimeError;

/// Classifies an engine error met while working on `id`.
pub(super) fn classify(id: &SandboxId, error: DockerError) -> RuntimeError {
    match &error {
        DockerError::DockerResponseServerError {
            status_code: 404, ..
        } => RuntimeError::NotFound { id: id.clone() },
        DockerError::DockerResponseServerError {
            status_code: 409,
            message,
        } => RuntimeError::conflict(message.clone()),
        _ => general(error),
    }
}

/// Classifies an error that is not about one sandbox.
pub(super) fn general(error: DockerError) -> RuntimeError {
    match error {
        DockerError::HyperResponseError { .. }
        | DockerError::IOError { .. }
        | DockerError::RequestTimeoutError
        | DockerError::SocketNotFoundError(_) => RuntimeError::unavailable(error.to_string()),
        other => RuntimeError::Backend(Box::new(other)),
    }
}

/// Whether the engine answered 404.
pub(super) fn is_not_found(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether the engine answered 304 (nothing to do: already stopped).
pub(super) fn is_not_modified(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 304,
            ..
        }
    )
}

/// Whether the engine answered 409.
pub(super) fn is_conflict(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}
