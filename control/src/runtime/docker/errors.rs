//! Maps bollard's errors onto [`RuntimeError`] by meaning.

use bollard::errors::Error as DockerError;
use sandgate_shared::ids::SandboxId;

use crate::runtime::{Detail, RuntimeError};

/// Classifies an engine error met while working on `id`.
pub(super) fn classify(id: &SandboxId, error: DockerError) -> RuntimeError {
    if let DockerError::DockerResponseServerError { message, .. } = &error
        && let Some(program) = unstartable_program(message)
    {
        return RuntimeError::EntrypointNotStartable {
            program,
            detail: Detail(message.clone()),
        };
    }
    match &error {
        DockerError::DockerResponseServerError {
            status_code: 404, ..
        } => RuntimeError::NotFound { id: id.clone() },
        DockerError::DockerResponseServerError {
            status_code: 409,
            message,
        } => RuntimeError::conflict(message.clone()),
        DockerError::DockerResponseServerError {
            status_code: 400,
            message,
        } => RuntimeError::SpecRejected(Detail(message.clone())),
        _ => general(error),
    }
}

/// The program in the OCI runtime's `exec: "PROGRAM": ...` failure.
fn unstartable_program(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("exec: \"")?;
    let (program, _) = rest.split_once('"')?;
    Some(program.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(status_code: u16, message: &str) -> DockerError {
        DockerError::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        }
    }

    #[test]
    fn classifies_by_meaning_keeping_the_engine_text_out_of_display() {
        let id = SandboxId::generate();
        let oci = "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"/no/such/program\": stat /no/such/program: no such file or directory: unknown";
        let error = classify(&id, server_error(400, oci));
        assert_eq!(
            error.to_string(),
            "the entrypoint \"/no/such/program\" cannot be started: it is missing from the image or not executable"
        );
        let cpus = "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available";
        let error = classify(&id, server_error(400, cpus));
        assert!(matches!(error, RuntimeError::SpecRejected(_)));
        assert!(!error.to_string().contains("CPUs"), "{error}");
        assert!(crate::error::error_chain(&error).contains(cpus));
        let error = classify(&id, server_error(409, "Container 0123abcd is not running"));
        assert!(!error.to_string().contains("0123abcd"), "{error}");
    }
}
