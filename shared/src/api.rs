//! The OpenSandbox Lifecycle API response model.
//!
//! Field names are camelCase. Optional fields are omitted, never `null`:
//! the published Python SDK crashes on an explicit `null` for several of
//! them. `entrypoint` is always present, even when empty.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::SandboxId;
use crate::time::Timestamp;

/// The lifecycle state of a sandbox as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SandboxState {
    /// Accepted; the runtime is provisioning it.
    Pending,
    /// Running and ready for requests.
    Running,
    /// A pause is in progress.
    Pausing,
    /// Frozen; memory is kept.
    Paused,
    /// A resume is in progress.
    Resuming,
    /// Deletion (by request or TTL) is in progress.
    Stopping,
    /// The sandbox's main process ended successfully.
    Terminated,
    /// Provisioning failed, or the sandbox crashed or was lost.
    Failed,
}

impl SandboxState {
    /// Every state, in lifecycle order.
    pub const ALL: [SandboxState; 8] = [
        Self::Pending,
        Self::Running,
        Self::Pausing,
        Self::Paused,
        Self::Resuming,
        Self::Stopping,
        Self::Terminated,
        Self::Failed,
    ];

    /// The wire spelling (`"Running"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Pausing => "Pausing",
            Self::Paused => "Paused",
            Self::Resuming => "Resuming",
            Self::Stopping => "Stopping",
            Self::Terminated => "Terminated",
            Self::Failed => "Failed",
        }
    }

    /// Parses a state name ignoring ASCII case (`"RUNNING"` is `Running`),
    /// as the SDKs' list filters require.
    pub fn parse_ignore_case(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for SandboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `status` of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SandboxStatus {
    /// The lifecycle state.
    pub state: SandboxState,
    /// A short machine-readable reason (`CONTAINER_RUNNING`, `PROVISIONING_ERROR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub reason: Option<String>,
    /// A human-readable explanation, or provisioning progress while `Pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub message: Option<String>,
    /// When the state last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_transition_at: Option<Timestamp>,
}

/// The image a sandbox was created from. Credentials are never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageRef {
    /// The image reference as requested (`python:3.12`).
    pub uri: String,
}

/// A platform constraint: `os` is `linux` or `windows`, `arch` is `amd64` or `arm64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Platform {
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
}

/// A sandbox as `GET /sandboxes/{id}` and the list return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    /// The sandbox id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: SandboxId,
    /// The image, for image-created sandboxes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub image: Option<ImageRef>,
    /// The snapshot, for snapshot-restored sandboxes (which then have no `image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub snapshot_id: Option<String>,
    /// The requested platform, when one was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub platform: Option<Platform>,
    /// Current status.
    pub status: SandboxStatus,
    /// User metadata; omitted when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The entry process, always present.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub entrypoint: Vec<String>,
    /// When the sandbox expires; omitted for manual cleanup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Option<Timestamp>,
    /// When the sandbox was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// The `202` body of `POST /sandboxes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreateSandboxResponse {
    /// The new sandbox's id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: SandboxId,
    /// `Pending` while provisioning runs in the background.
    pub status: SandboxStatus,
    /// The user metadata echoed back; omitted when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The requested platform, when one was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub platform: Option<Platform>,
    /// `createdAt + timeout`; omitted for manual cleanup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Option<Timestamp>,
    /// When the request was accepted.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// The entry process.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub entrypoint: Vec<String>,
}

/// Pagination of a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// The 1-based page number returned.
    pub page: u32,
    /// The page size used.
    pub page_size: u32,
    /// Items matching the filter, over all pages.
    pub total_items: u64,
    /// `ceil(totalItems / pageSize)`; 0 when nothing matches.
    pub total_pages: u64,
    /// Whether a later page exists.
    pub has_next_page: bool,
}

/// The body of `GET /sandboxes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListSandboxesResponse {
    /// One page of sandboxes, newest first.
    pub items: Vec<Sandbox>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// The body of `GET /sandboxes/{id}/endpoints/{port}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    /// `host[:port][/path]`, never with a scheme.
    pub endpoint: String,
    /// Headers the client must send with every request to the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub headers: Option<BTreeMap<String, String>>,
}

/// The body of `POST /sandboxes/{id}/renew-expiration`, both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RenewExpiration {
    /// The new absolute expiry, in UTC.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

/// Every error response: OpenSandbox's envelope, exactly these two keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable code such as `DOCKER::SANDBOX_NOT_FOUND`.
    pub code: String,
    /// A sentence naming the field or object and the rule.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_parsing_ignores_case() {
        assert_eq!(
            SandboxState::parse_ignore_case("RUNNING"),
            Some(SandboxState::Running)
        );
        assert_eq!(
            SandboxState::parse_ignore_case("paused"),
            Some(SandboxState::Paused)
        );
        assert_eq!(SandboxState::parse_ignore_case("Sleeping"), None);
    }

    #[test]
    fn optional_fields_are_omitted_not_null() {
        let sandbox = Sandbox {
            id: "sbx-1".parse().unwrap(),
            image: None,
            snapshot_id: None,
            platform: None,
            status: SandboxStatus {
                state: SandboxState::Running,
                reason: None,
                message: None,
                last_transition_at: None,
            },
            metadata: None,
            entrypoint: vec![],
            expires_at: None,
            created_at: Timestamp::parse("2030-01-01T00:00:00Z").unwrap(),
        };
        let json = serde_json::to_string(&sandbox).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert_eq!(
            json,
            r#"{"id":"sbx-1","status":{"state":"Running"},"entrypoint":[],"createdAt":"2030-01-01T00:00:00Z"}"#
        );
    }
}

/// The body of `GET /sandboxes/{id}/diagnostics/{logs|events}?scope=…`
/// (OpenSandbox's Diagnostics API, inline delivery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticContent {
    /// The sandbox.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub sandbox_id: SandboxId,
    /// `logs` or `events`.
    pub kind: String,
    /// The scope that was asked for.
    pub scope: String,
    /// Always `inline`: the text is in `content`.
    pub delivery: String,
    /// `text/plain; charset=utf-8`.
    pub content_type: String,
    /// The diagnostic text (display-oriented, not a stable format).
    pub content: String,
    /// Whether older material was cut to respect size limits.
    pub truncated: bool,
    /// What could not be collected, if anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
