//! The HTTP error envelope and the one mapping from domain errors to it.
//!
//! Every error response is OpenSandbox's `{"code": "...", "message": "..."}`
//! with the upstream code strings, because the published SDKs parse it.
//! 5xx responses carry a generic message; the cause is logged once, here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandgate_shared::api::ErrorBody;

use crate::runtime::RuntimeKind;

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
    /// ossfs credentials missing.
    pub const VOLUME_INVALID_OSSFS_CREDENTIALS: &str = "VOLUME::INVALID_OSSFS_CREDENTIALS";
}

/// Engine-specific codes, chosen by the configured runtime as OpenSandbox does.
#[derive(Debug, Clone, Copy)]
pub struct EngineCodes(pub RuntimeKind);

impl EngineCodes {
    fn pick(self, docker: &'static str, kubernetes: &'static str) -> &'static str {
        match self.0 {
            RuntimeKind::Kubernetes => kubernetes,
            RuntimeKind::Docker | RuntimeKind::Fake => docker,
        }
    }

    /// No such sandbox.
    pub fn not_found(self) -> &'static str {
        self.pick("DOCKER::SANDBOX_NOT_FOUND", "KUBERNETES::SANDBOX_NOT_FOUND")
    }
    /// Pause of a sandbox that is not running.
    pub fn not_running(self) -> &'static str {
        self.pick("DOCKER::SANDBOX_NOT_RUNNING", "KUBERNETES::INVALID_STATE")
    }
    /// Resume of a sandbox that is not paused.
    pub fn not_paused(self) -> &'static str {
        self.pick("DOCKER::SANDBOX_NOT_PAUSED", "KUBERNETES::INVALID_STATE")
    }
    /// Engine failure during pause.
    pub fn pause_failed(self) -> &'static str {
        self.pick("DOCKER::SANDBOX_PAUSE_FAILED", "KUBERNETES::API_ERROR")
    }
    /// Engine failure during resume.
    pub fn resume_failed(self) -> &'static str {
        self.pick("DOCKER::SANDBOX_RESUME_FAILED", "KUBERNETES::API_ERROR")
    }
    /// Engine failure during delete.
    pub fn delete_failed(self) -> &'static str {
        self.pick("DOCKER::SANDBOX_DELETE_FAILED", "KUBERNETES::API_ERROR")
    }
    /// Engine failure while resolving an endpoint.
    pub fn endpoint_unavailable(self) -> &'static str {
        self.pick(
            "DOCKER::NETWORK_MODE_ENDPOINT_UNAVAILABLE",
            "KUBERNETES::POD_IP_NOT_AVAILABLE",
        )
    }
    /// The engine does not answer.
    pub fn unavailable(self) -> &'static str {
        self.pick(
            "DOCKER::INITIALIZATION_ERROR",
            "KUBERNETES::INITIALIZATION_ERROR",
        )
    }
    /// Other engine failures.
    pub fn query_failed(self) -> &'static str {
        self.pick("DOCKER::SANDBOX_QUERY_FAILED", "KUBERNETES::API_ERROR")
    }
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
}

impl ApiError {
    /// An error with explicit parts.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with `SANDBOX::INVALID_PARAMETER`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_PARAMETER, message)
    }

    /// A 5xx whose cause is logged here and hidden from the client.
    pub fn internal(
        status: StatusCode,
        code: &'static str,
        public: &str,
        cause: &dyn std::error::Error,
    ) -> Self {
        tracing::error!(error.code = code, error = %error_chain(cause), "{public}");
        Self::new(status, code, public)
    }
}

/// `cause: source: source` on one line.
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
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}
