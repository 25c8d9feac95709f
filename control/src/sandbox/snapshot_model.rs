//! The snapshot domain model: the durable record and the in-memory catalog
//! every snapshot read (and every restore) is served from.
//!
//! The catalog is shared by the sandbox service (which resolves a restore's
//! `snapshotId` to its image) and the snapshot service, its only writer.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use sandgate_shared::ids::SandboxId;
use sandgate_shared::snapshots::{Snapshot, SnapshotState, SnapshotStatus};
use sandgate_shared::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Reason codes, as OpenSandbox writes them.
pub mod reason {
    /// Accepted; the commit runs in the background.
    pub const ACCEPTED: &str = "snapshot_accepted";
    /// The commit succeeded.
    pub const READY: &str = "snapshot_runtime_ready";
    /// The commit failed.
    pub const FAILED: &str = "snapshot_runtime_failed";
    /// Deletion was asked for.
    pub const DELETE_REQUESTED: &str = "snapshot_delete_requested";
    /// A restart found the image of an interrupted commit.
    pub const RECOVERY_READY: &str = "snapshot_recovery_ready";
    /// A restart found no image for an interrupted commit.
    pub const RECOVERY_MISSING_IMAGE: &str = "snapshot_recovery_missing_image";
    /// A restart could not ask the engine about an interrupted commit.
    pub const RECOVERY_INSPECT_FAILED: &str = "snapshot_recovery_inspect_failed";
}

/// A snapshot's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStatusRecord {
    /// The lifecycle state.
    pub state: SnapshotState,
    /// Reason code.
    pub reason: String,
    /// What happened, for people.
    pub message: String,
    /// When the state last changed.
    pub last_transition_at: Timestamp,
}

/// One snapshot, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// The snapshot id (a UUID).
    pub id: String,
    /// The sandbox it was taken from.
    pub sandbox_id: SandboxId,
    /// The name given at creation.
    pub name: Option<String>,
    /// The image restores are created from, once committed.
    pub image: Option<String>,
    /// Current status.
    pub status: SnapshotStatusRecord,
    /// When it was requested.
    pub created_at: Timestamp,
}

impl SnapshotRecord {
    /// The API representation.
    pub fn to_api(&self) -> Snapshot {
        Snapshot {
            id: self.id.clone(),
            sandbox_id: self.sandbox_id.to_string(),
            name: self.name.clone(),
            status: SnapshotStatus {
                state: self.status.state,
                reason: Some(self.status.reason.clone()),
                message: Some(self.status.message.clone()),
                last_transition_at: Some(self.status.last_transition_at),
            },
            created_at: self.created_at,
        }
    }

    /// The record in `state`, with `reason` and `message`, changed at `at`.
    pub fn with_status(
        &self,
        state: SnapshotState,
        reason: &str,
        message: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        Self {
            status: SnapshotStatusRecord {
                state,
                reason: reason.to_owned(),
                message: message.into(),
                last_transition_at: at,
            },
            ..self.clone()
        }
    }
}

/// Live snapshots by id; records are immutable `Arc`s, replaced whole.
#[derive(Debug, Default)]
pub struct SnapshotCatalog {
    records: RwLock<HashMap<String, Arc<SnapshotRecord>>>,
}

impl SnapshotCatalog {
    /// The current record.
    pub fn get(&self, id: &str) -> Option<Arc<SnapshotRecord>> {
        self.records.read().get(id).cloned()
    }

    /// Every record passing `keep`.
    pub fn select(&self, keep: impl Fn(&SnapshotRecord) -> bool) -> Vec<Arc<SnapshotRecord>> {
        self.records
            .read()
            .values()
            .filter(|r| keep(r))
            .cloned()
            .collect()
    }

    /// How many snapshots are in `state`.
    pub fn count(&self, state: SnapshotState) -> usize {
        self.records
            .read()
            .values()
            .filter(|r| r.status.state == state)
            .count()
    }

    /// Inserts or replaces a record.
    pub(super) fn put(&self, record: Arc<SnapshotRecord>) {
        self.records.write().insert(record.id.clone(), record);
    }

    /// Forgets a record.
    pub(super) fn remove(&self, id: &str) {
        self.records.write().remove(id);
    }
}

/// Points a restore's `snapshotId` at the snapshot's image; the snapshot
/// must exist and be `Ready`. Image-created specs pass unchanged.
pub fn resolve_restore(
    catalog: &SnapshotCatalog,
    source: &mut super::model::Source,
) -> Result<(), super::error::SandboxError> {
    use super::error::SandboxError;
    let super::model::Source::Snapshot { id, image } = source else {
        return Ok(());
    };
    let record = catalog
        .get(id)
        .ok_or_else(|| SandboxError::SnapshotNotFound { id: id.clone() })?;
    match (&record.status.state, &record.image) {
        (SnapshotState::Ready, Some(ready)) => {
            *image = Some(ready.clone());
            Ok(())
        }
        _ => Err(SandboxError::SnapshotNotReady { id: id.clone() }),
    }
}
