//! The OpenSandbox 1.1.1 snapshot API model (`/snapshots`,
//! `/sandboxes/{id}/snapshots`): camelCase, optional fields omitted.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::api::Pagination;
use crate::time::Timestamp;

/// The lifecycle state of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SnapshotState {
    /// Accepted; the image is being committed.
    Creating,
    /// The image exists; sandboxes can be restored from it.
    Ready,
    /// Creation failed; `status.message` says why.
    Failed,
    /// Deletion is in progress.
    Deleting,
}

impl SnapshotState {
    /// Every state.
    pub const ALL: [Self; 4] = [Self::Creating, Self::Ready, Self::Failed, Self::Deleting];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "Creating",
            Self::Ready => "Ready",
            Self::Failed => "Failed",
            Self::Deleting => "Deleting",
        }
    }

    /// The state with exactly this wire name (OpenSandbox matches case-sensitively).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for SnapshotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `status` of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    /// The lifecycle state.
    pub state: SnapshotState,
    /// A short machine-readable reason (`snapshot_accepted`, `snapshot_runtime_ready`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub reason: Option<String>,
    /// A human-readable explanation (the failure, for `Failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub message: Option<String>,
    /// When the state last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_transition_at: Option<Timestamp>,
}

/// A snapshot as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The snapshot id (a UUID).
    pub id: String,
    /// The sandbox it was taken from.
    pub sandbox_id: String,
    /// The name given at creation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub name: Option<String>,
    /// Current status.
    pub status: SnapshotStatus,
    /// When the snapshot was requested.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// The optional body of `POST /sandboxes/{id}/snapshots`. Unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateSnapshotRequest {
    /// A human-readable name (at least one character); `GET /snapshots?name=` matches it exactly.
    #[serde(default)]
    pub name: Option<String>,
}

/// The body of `GET /snapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListSnapshotsResponse {
    /// One page of snapshots, newest first.
    pub items: Vec<Snapshot>,
    /// Where this page sits.
    pub pagination: Pagination,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_only_their_exact_wire_names() {
        for state in SnapshotState::ALL {
            assert_eq!(SnapshotState::parse(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
        }
        assert_eq!(SnapshotState::parse("ready"), None);
    }
}
