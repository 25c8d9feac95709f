//! The HTTP error envelope and the one mapping from domain errors to it.
//!
//! Every error response is OpenSandbox's `{"code": "...", "message": "..."}`
//! with the upstream code strings, because the published SDKs parse it.
//! Domain errors ([`SandboxError`], [`RuntimeError`]) say what happened; the
//! choice of status and code string is made here and nowhere else.
//!
//! Messages say what failed in product terms. An internal cause (the
//! engine's text, an I/O error) travels with the response as an
//! [`ErrorCause`] extension and is logged once, in the request's span, by
//! [`crate::http::middleware`]; 5xx messages also carry the request id,
//! except 501, a fixed answer (OpenSandbox's exact message) where nothing failed.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandgate_shared::api::ErrorBody;

use crate::catalog::CatalogError;
use crate::http::forward::ForwardError;
use crate::http::upstream::UpstreamError;
use crate::runtime::{RuntimeError, RuntimeKind, SpecRule};
use crate::sandbox::error::{Conflict, Operation, SandboxError, SnapshotError};

/// Wire error codes (OpenSandbox's strings where one exists).
pub mod codes {
    /// Header absent or empty.
    pub const MISSING_API_KEY: &str = "MISSING_API_KEY";
    /// Header present but wrong.
    pub const INVALID_API_KEY: &str = "INVALID_API_KEY";
    /// Any other error without a better code.
    pub const UNKNOWN: &str = "GENERAL::UNKNOWN_ERROR";
    /// No such route.
    pub const NOT_FOUND: &str = "GENERAL::NOT_FOUND";
    /// Route exists, method does not.
    pub const METHOD_NOT_ALLOWED: &str = "GENERAL::METHOD_NOT_ALLOWED";
    /// A request field or parameter breaks a rule.
    pub const INVALID_PARAMETER: &str = "SANDBOX::INVALID_PARAMETER";
    /// A metadata key or value breaks the label rules.
    pub const INVALID_METADATA_LABEL: &str = "SANDBOX::INVALID_METADATA_LABEL";
    /// PATCH with a reserved key (OpenSandbox uses no prefix here).
    pub const RESERVED_METADATA_LABEL: &str = "INVALID_METADATA_LABEL";
    /// The list `metadata` filter does not parse.
    pub const INVALID_METADATA_FORMAT: &str = "INVALID_METADATA_FORMAT";
    /// `extensions.poolRef` on a runtime without pools.
    pub const UNSUPPORTED_POOL_REF: &str = "SANDBOX::UNSUPPORTED_POOL_REF";
    /// A feature the runtime does not offer.
    pub const API_NOT_SUPPORTED: &str = "SANDBOX::API_NOT_SUPPORTED";
    /// An operation the sandbox's state does not allow (no engine-specific code).
    pub const INVALID_STATE: &str = "SANDBOX::INVALID_STATE";
    /// The durable store failed.
    pub const STORE_FAILED: &str = "SANDBOX::STORE_FAILED";
    /// Endpoint port outside 1..65535 (same code on every runtime).
    pub const INVALID_PORT: &str = "DOCKER::INVALID_PORT";
    /// Renew rejected (same code on every runtime).
    pub const INVALID_EXPIRATION: &str = "DOCKER::INVALID_EXPIRATION";
    /// No such snapshot.
    pub const SNAPSHOT_NOT_FOUND: &str = "SNAPSHOT::NOT_FOUND";
    /// Snapshots are taken of running sandboxes only.
    pub const SNAPSHOT_INVALID_SOURCE_STATE: &str = "SNAPSHOT::INVALID_SOURCE_STATE";
    /// The snapshot's state does not allow the operation.
    pub const SNAPSHOT_INVALID_STATE: &str = "SNAPSHOT::INVALID_STATE";
    /// The snapshot's image is still used by a sandbox.
    pub const SNAPSHOT_DELETE_CONFLICT: &str = "SNAPSHOT::DELETE_CONFLICT";
    /// A restore from a snapshot that is not `Ready`.
    pub const SNAPSHOT_NOT_READY: &str = "SNAPSHOT::NOT_READY";
    /// The engine failed to remove a snapshot's image.
    pub const SNAPSHOT_IMAGE_REMOVE_FAILED: &str = "DOCKER::SNAPSHOT_IMAGE_REMOVE_FAILED";
    /// Duplicate volume name.
    pub const VOLUME_DUPLICATE_NAME: &str = "VOLUME::DUPLICATE_NAME";
    /// Volume name not a DNS label.
    pub const VOLUME_INVALID_NAME: &str = "VOLUME::INVALID_NAME";
    /// Mount path not absolute.
    pub const VOLUME_INVALID_MOUNT_PATH: &str = "VOLUME::INVALID_MOUNT_PATH";
    /// subPath absolute or with `..`.
    pub const VOLUME_INVALID_SUB_PATH: &str = "VOLUME::INVALID_SUB_PATH";
    /// Not exactly one backend.
    pub const VOLUME_INVALID_BACKEND: &str = "VOLUME::INVALID_BACKEND";
    /// Host path malformed.
    pub const VOLUME_INVALID_HOST_PATH: &str = "VOLUME::INVALID_HOST_PATH";
    /// Host path outside the allow-list.
    pub const VOLUME_HOST_PATH_NOT_ALLOWED: &str = "VOLUME::HOST_PATH_NOT_ALLOWED";
    /// Claim name malformed.
    pub const VOLUME_INVALID_PVC_NAME: &str = "VOLUME::INVALID_PVC_NAME";
    /// ossfs bucket malformed.
    pub const VOLUME_INVALID_OSSFS_BUCKET: &str = "VOLUME::INVALID_OSSFS_BUCKET";
    /// ossfs endpoint malformed.
    pub const VOLUME_INVALID_OSSFS_ENDPOINT: &str = "VOLUME::INVALID_OSSFS_ENDPOINT";
    /// ossfs version unknown.
    pub const VOLUME_INVALID_OSSFS_VERSION: &str = "VOLUME::INVALID_OSSFS_VERSION";
    /// ossfs option unsafe.
    pub const VOLUME_INVALID_OSSFS_OPTION: &str = "VOLUME::INVALID_OSSFS_OPTION";
    /// A named volume that must exist does not.
    pub const VOLUME_PVC_NOT_FOUND: &str = "VOLUME::PVC_NOT_FOUND";
    /// A named volume neither Sandgate's own nor in `sandgate.allowed_pvc_names`.
    pub const VOLUME_PVC_NOT_ALLOWED: &str = "VOLUME::PVC_NOT_ALLOWED";
    /// subPath on a volume driver without local directories.
    pub const VOLUME_PVC_SUBPATH_UNSUPPORTED_DRIVER: &str =
        "VOLUME::PVC_SUBPATH_UNSUPPORTED_DRIVER";
    /// ossfs credentials missing.
    pub const VOLUME_INVALID_OSSFS_CREDENTIALS: &str = "VOLUME::INVALID_OSSFS_CREDENTIALS";
    /// Server proxy: a secured sandbox without (or with a wrong) token.
    pub const MISSING_OR_INVALID_SECURE_ACCESS: &str = "MISSING_OR_INVALID_SECURE_ACCESS";
    /// Server proxy: the sandbox port could not be connected to.
    pub const BACKEND_CONNECTION_FAILED: &str = "BACKEND_CONNECTION_FAILED";
    /// Server proxy: the sandbox port did not answer in time.
    pub const BACKEND_TIMEOUT: &str = "BACKEND_TIMEOUT";
    /// Server proxy: the connection broke or the answer was not HTTP.
    pub const BACKEND_RESPONSE_FAILED: &str = "BACKEND_RESPONSE_FAILED";
    /// `/pools` on a runtime other than Kubernetes (OpenSandbox's string).
    pub const POOL_NOT_SUPPORTED: &str = "KUBERNETES::POOL_NOT_SUPPORTED";
    /// `/templates` on a runtime other than Kubernetes (OpenSandbox's string).
    pub const TEMPLATE_NOT_SUPPORTED: &str = "FSB::API_NOT_SUPPORTED";
}

/// Engine-specific codes, chosen by the configured runtime as OpenSandbox does.
#[derive(Debug, Clone, Copy)]
struct EngineCodes(RuntimeKind);

impl EngineCodes {
    fn pick(self, docker: &'static str, kubernetes: &'static str) -> &'static str {
        match self.0 {
            RuntimeKind::Kubernetes => kubernetes,
            RuntimeKind::Docker | RuntimeKind::Fake => docker,
        }
    }

    fn not_found(self) -> &'static str {
        self.pick("DOCKER::SANDBOX_NOT_FOUND", "KUBERNETES::SANDBOX_NOT_FOUND")
    }

    fn conflict(self, reason: Conflict) -> &'static str {
        match reason {
            Conflict::State => codes::INVALID_STATE,
            Conflict::NoExpiration => codes::INVALID_EXPIRATION,
            Conflict::NotRunning => {
                self.pick("DOCKER::SANDBOX_NOT_RUNNING", "KUBERNETES::INVALID_STATE")
            }
            Conflict::NotPaused => {
                self.pick("DOCKER::SANDBOX_NOT_PAUSED", "KUBERNETES::INVALID_STATE")
            }
        }
    }

    /// The code of an engine failure during `operation`.
    fn failed(self, operation: Operation) -> &'static str {
        match operation {
            Operation::Check => codes::INVALID_PARAMETER,
            Operation::Pause => self.pick("DOCKER::SANDBOX_PAUSE_FAILED", "KUBERNETES::API_ERROR"),
            Operation::Resume => {
                self.pick("DOCKER::SANDBOX_RESUME_FAILED", "KUBERNETES::API_ERROR")
            }
            Operation::Delete => {
                self.pick("DOCKER::SANDBOX_DELETE_FAILED", "KUBERNETES::API_ERROR")
            }
            Operation::ResolveEndpoint => self.pick(
                "DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE",
                "KUBERNETES::POD_IP_NOT_AVAILABLE",
            ),
            Operation::Query => self.pick("DOCKER::SANDBOX_QUERY_FAILED", "KUBERNETES::API_ERROR"),
        }
    }
}

/// The internal cause behind an error response, for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCause {
    /// The wire code answered.
    pub code: &'static str,
    /// `cause: source: source`.
    pub chain: String,
}

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Wire code.
    pub code: &'static str,
    /// Message for the client.
    pub message: String,
    /// What really went wrong, logged and never sent.
    pub cause: Option<String>,
}

impl ApiError {
    /// An error with explicit parts.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            cause: None,
        }
    }

    /// 400 with `SANDBOX::INVALID_PARAMETER`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_PARAMETER, message)
    }

    /// An error whose `cause` is logged with the request and hidden from the client.
    pub fn internal(
        status: StatusCode,
        code: &'static str,
        public: impl Into<String>,
        cause: &dyn std::error::Error,
    ) -> Self {
        Self::new(status, code, public).caused_by(cause)
    }

    /// Attaches `cause` (with its sources) for the log.
    pub fn caused_by(mut self, cause: &dyn std::error::Error) -> Self {
        self.cause = Some(error_chain(cause));
        self
    }
}

/// `cause: source: source` on one line (what anyhow prints for `{:#}`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match crate::http::middleware::current_request_id() {
            Some(id)
                if self.status.is_server_error() && self.status != StatusCode::NOT_IMPLEMENTED =>
            {
                format!("{} (request id {id}).", self.message.trim_end_matches('.'))
            }
            _ => self.message,
        };
        let body = ErrorBody {
            code: self.code.to_owned(),
            message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(chain) = self.cause {
            response.extensions_mut().insert(ErrorCause {
                code: self.code,
                chain,
            });
        }
        response
    }
}

impl From<SandboxError> for ApiError {
    fn from(error: SandboxError) -> Self {
        match error {
            SandboxError::NotFound { engine, .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                EngineCodes(engine).not_found(),
                error.to_string(),
            ),
            SandboxError::Invalid(ref problems) => {
                let code = problems
                    .first()
                    .map_or(codes::INVALID_PARAMETER, |p| p.code);
                ApiError::new(StatusCode::BAD_REQUEST, code, error.to_string())
            }
            SandboxError::Conflict {
                reason,
                engine,
                message,
            } => ApiError::new(
                StatusCode::CONFLICT,
                EngineCodes(engine).conflict(reason),
                message,
            ),
            SandboxError::SnapshotNotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::SNAPSHOT_NOT_FOUND,
                error.to_string(),
            ),
            SandboxError::SnapshotNotReady { .. } => ApiError::new(
                StatusCode::CONFLICT,
                codes::SNAPSHOT_NOT_READY,
                error.to_string(),
            ),
            SandboxError::Runtime {
                operation,
                engine,
                action,
                source,
            } => runtime_error(EngineCodes(engine).failed(operation), &action, source),
            SandboxError::Store(source) => ApiError::internal(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::STORE_FAILED,
                "The state store failed; the change was not made.",
                &source,
            ),
        }
    }
}

impl From<ForwardError> for ApiError {
    fn from(error: ForwardError) -> Self {
        let (id, port, source) = match error {
            ForwardError::Sandbox(error) => return error.into(),
            ForwardError::SecureAccess { .. } => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    codes::MISSING_OR_INVALID_SECURE_ACCESS,
                    format!(
                        "This sandbox requires the {} header for access.",
                        crate::ingress::SECURE_ACCESS_HEADER
                    ),
                );
            }
            ForwardError::Target(message) => {
                return ApiError::invalid(format!("path: cannot be forwarded: {message}"));
            }
            ForwardError::Upstream {
                ref id,
                port,
                ref source,
                ..
            } => (id.clone(), port, source),
        };
        let (status, code, public) = match source {
            UpstreamError::Connect(_) => (
                StatusCode::BAD_GATEWAY,
                codes::BACKEND_CONNECTION_FAILED,
                format!("Could not connect to port {port} of sandbox {id}."),
            ),
            UpstreamError::Timeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                codes::BACKEND_TIMEOUT,
                format!("Port {port} of sandbox {id} did not respond in time."),
            ),
            UpstreamError::Exchange(_) => (
                StatusCode::BAD_GATEWAY,
                codes::BACKEND_RESPONSE_FAILED,
                format!(
                    "Port {port} of sandbox {id} dropped the connection or sent an invalid response."
                ),
            ),
        };
        ApiError::internal(status, code, public, &error)
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        let code = match error {
            CatalogError::PoolsNeedKubernetes => codes::POOL_NOT_SUPPORTED,
            CatalogError::TemplatesNeedKubernetes => codes::TEMPLATE_NOT_SUPPORTED,
        };
        ApiError::new(StatusCode::NOT_IMPLEMENTED, code, error.to_string())
    }
}

impl From<SnapshotError> for ApiError {
    fn from(error: SnapshotError) -> Self {
        let conflict = |code| ApiError::new(StatusCode::CONFLICT, code, error.to_string());
        match error {
            SnapshotError::NotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                codes::SNAPSHOT_NOT_FOUND,
                error.to_string(),
            ),
            SnapshotError::Invalid(ref message) => ApiError::invalid(message.clone()),
            SnapshotError::SourceNotRunning => conflict(codes::SNAPSHOT_INVALID_SOURCE_STATE),
            SnapshotError::StillCreating { .. } => conflict(codes::SNAPSHOT_INVALID_STATE),
            SnapshotError::InUse(ref source) => {
                conflict(codes::SNAPSHOT_DELETE_CONFLICT).caused_by(source)
            }
            SnapshotError::RemoveFailed { id, source } => runtime_error(
                codes::SNAPSHOT_IMAGE_REMOVE_FAILED,
                &format!("deleting snapshot {id}"),
                source,
            ),
            SnapshotError::Sandbox(inner) => inner.into(),
            SnapshotError::Store(source) => SandboxError::Store(source).into(),
        }
    }
}

fn spec_code(rule: SpecRule) -> &'static str {
    match rule {
        SpecRule::Unsupported => codes::INVALID_PARAMETER,
        SpecRule::HostPathNotAllowed => codes::VOLUME_HOST_PATH_NOT_ALLOWED,
        SpecRule::SubPathOutsideVolume => codes::VOLUME_INVALID_SUB_PATH,
        SpecRule::VolumeNotFound => codes::VOLUME_PVC_NOT_FOUND,
        SpecRule::SubPathUnsupportedDriver => codes::VOLUME_PVC_SUBPATH_UNSUPPORTED_DRIVER,
        SpecRule::VolumeNotAllowed => codes::VOLUME_PVC_NOT_ALLOWED,
        SpecRule::NotADirectory => codes::VOLUME_INVALID_HOST_PATH,
        SpecRule::MountPathReserved => codes::VOLUME_INVALID_MOUNT_PATH,
        SpecRule::LimitOutOfRange => codes::INVALID_PARAMETER,
    }
}

/// `code` is the operation's code for an engine failure.
fn runtime_error(code: &'static str, action: &str, source: RuntimeError) -> ApiError {
    let failed = format!("{action} failed: {source}");
    match source {
        RuntimeError::InvalidSpec { rule, message } => {
            ApiError::new(StatusCode::BAD_REQUEST, spec_code(rule), message)
        }
        RuntimeError::Unsupported(message) => {
            ApiError::new(StatusCode::BAD_REQUEST, codes::API_NOT_SUPPORTED, message)
        }
        RuntimeError::Conflict(_) => {
            ApiError::internal(StatusCode::CONFLICT, code, failed, &source)
        }
        RuntimeError::NotReady(ref message) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            format!("{action}: not ready yet ({message}); retry shortly"),
        ),
        RuntimeError::Unavailable(_) => {
            ApiError::internal(StatusCode::SERVICE_UNAVAILABLE, code, failed, &source)
        }
        RuntimeError::NotFound { .. }
        | RuntimeError::ImagePull { .. }
        | RuntimeError::SpecRejected(_)
        | RuntimeError::EntrypointNotStartable { .. }
        | RuntimeError::Backend(_) => {
            ApiError::internal(StatusCode::INTERNAL_SERVER_ERROR, code, failed, &source)
        }
    }
}
