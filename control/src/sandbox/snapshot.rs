//! `SnapshotService`: the only writer of snapshot state.
//!
//! A create is recorded durably as `Creating` and answered at once; the
//! engine commit runs in a background task under the source sandbox's lock
//! (so the sandbox is neither paused, resumed nor deleted mid-commit) and
//! ends the snapshot `Ready` or `Failed`. Every change is written to the
//! store before it is published to the catalog. On startup, [`recover`]
//! settles what a restart interrupted: a `Creating` snapshot becomes `Ready`
//! when the engine holds its image, else `Failed` saying so; a `Deleting`
//! one is deleted again.
//!
//! [`recover`]: SnapshotService::recover

use std::sync::Arc;

use sandgate_shared::api::SandboxState;
use sandgate_shared::snapshots::{CreateSnapshotRequest, ListSnapshotsResponse, SnapshotState};
use tokio::sync::Mutex;

use super::error::SnapshotError;
use super::service::SandboxService;
use super::snapshot_model::{SnapshotCatalog, SnapshotRecord, SnapshotStatusRecord, reason};
use super::snapshot_query::SnapshotQuery;
use crate::error::error_chain;
use crate::runtime::{RuntimeError, SnapshotImage};
use crate::store::StoreError;

/// The snapshot domain service; cheap to clone.
#[derive(Clone)]
pub struct SnapshotService {
    inner: Arc<Inner>,
}

struct Inner {
    sandboxes: SandboxService,
    catalog: Arc<SnapshotCatalog>,
    /// Serializes check-then-write sequences on snapshot records.
    writes: Mutex<()>,
}

impl std::fmt::Debug for SnapshotService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotService")
    }
}

impl SnapshotService {
    /// The service over `sandboxes`' runtime, store and snapshot catalog.
    /// Call [`SnapshotService::recover`] before serving.
    pub fn new(sandboxes: SandboxService) -> Self {
        let catalog = sandboxes.snapshot_catalog().clone();
        Self {
            inner: Arc::new(Inner {
                sandboxes,
                catalog,
                writes: Mutex::new(()),
            }),
        }
    }

    /// Accepts a snapshot of a `Running` sandbox and commits it in the
    /// background; returns the `Creating` record.
    pub async fn create(
        &self,
        sandbox_id: &str,
        request: CreateSnapshotRequest,
    ) -> Result<Arc<SnapshotRecord>, SnapshotError> {
        if request.name.as_deref() == Some("") {
            return Err(SnapshotError::Invalid(
                "name: must be at least 1 character long when given".to_owned(),
            ));
        }
        let sandbox = self.inner.sandboxes.get(sandbox_id)?;
        if sandbox.status.state != SandboxState::Running {
            return Err(SnapshotError::SourceNotRunning);
        }
        let now = self.inner.sandboxes.clock().now();
        let record = SnapshotRecord {
            id: uuid::Uuid::new_v4().to_string(),
            sandbox_id: sandbox.id.clone(),
            name: request.name,
            image: None,
            status: SnapshotStatusRecord {
                state: SnapshotState::Creating,
                reason: reason::ACCEPTED.to_owned(),
                message: "Snapshot creation accepted.".to_owned(),
                last_transition_at: now,
            },
            created_at: now,
        };
        let record = {
            let _writes = self.inner.writes.lock().await;
            self.commit(record).await?
        };
        tracing::info!(sandbox.id = %sandbox.id, snapshot.id = %record.id, "snapshot accepted; committing in the background");
        let service = self.clone();
        let accepted = record.clone();
        tokio::spawn(async move { service.run_commit(&accepted).await });
        Ok(record)
    }

    /// One snapshot.
    pub fn get(&self, id: &str) -> Result<Arc<SnapshotRecord>, SnapshotError> {
        self.inner
            .catalog
            .get(id)
            .ok_or_else(|| SnapshotError::NotFound { id: id.to_owned() })
    }

    /// One page of snapshots.
    pub fn list(&self, query: &SnapshotQuery) -> ListSnapshotsResponse {
        query.apply(&self.inner.catalog)
    }

    /// How many snapshots are in `state`.
    pub fn count(&self, state: SnapshotState) -> usize {
        self.inner.catalog.count(state)
    }

    /// Removes a `Ready` or `Failed` snapshot and its image. A snapshot whose
    /// image a sandbox still uses is kept as it was.
    pub async fn delete(&self, id: &str) -> Result<(), SnapshotError> {
        let before = {
            let _writes = self.inner.writes.lock().await;
            let record = self.get(id)?;
            match record.status.state {
                SnapshotState::Creating => {
                    return Err(SnapshotError::StillCreating { id: id.to_owned() });
                }
                SnapshotState::Deleting => record,
                SnapshotState::Ready | SnapshotState::Failed => {
                    let deleting = record.with_status(
                        SnapshotState::Deleting,
                        reason::DELETE_REQUESTED,
                        "Snapshot deletion requested.",
                        self.inner.sandboxes.clock().now(),
                    );
                    self.commit(deleting).await?;
                    record
                }
            }
        };
        match self.runtime().delete_snapshot(id).await {
            Ok(()) => self.discard(id).await,
            Err(source @ RuntimeError::Conflict(_)) => {
                if before.status.state != SnapshotState::Deleting {
                    let _writes = self.inner.writes.lock().await;
                    self.commit(SnapshotRecord::clone(&before)).await?;
                }
                Err(SnapshotError::InUse(source))
            }
            Err(source) => Err(SnapshotError::RemoveFailed {
                id: id.to_owned(),
                source,
            }),
        }
    }

    /// Loads the stored snapshots and settles those a restart interrupted.
    pub async fn recover(&self) -> Result<(), StoreError> {
        let records = self.inner.sandboxes.store().snapshots().await?;
        for record in &records {
            self.inner.catalog.put(Arc::new(record.clone()));
        }
        for record in records {
            match record.status.state {
                SnapshotState::Creating => self.recover_creating(&record).await,
                SnapshotState::Deleting => self.recover_deleting(&record).await,
                SnapshotState::Ready | SnapshotState::Failed => {}
            }
        }
        Ok(())
    }

    async fn recover_creating(&self, record: &SnapshotRecord) {
        let found = self.runtime().find_snapshot(&record.id).await;
        let now = self.inner.sandboxes.clock().now();
        let next = match found {
            Ok(Some(SnapshotImage { image })) => SnapshotRecord {
                image: Some(image),
                ..record.with_status(
                    SnapshotState::Ready,
                    reason::RECOVERY_READY,
                    "Recovered snapshot image after server restart.",
                    now,
                )
            },
            Ok(None) => record.with_status(
                SnapshotState::Failed,
                reason::RECOVERY_MISSING_IMAGE,
                "Snapshot creation was interrupted and no snapshot image was found.",
                now,
            ),
            Err(error) => record.with_status(
                SnapshotState::Failed,
                reason::RECOVERY_INSPECT_FAILED,
                format!(
                    "Snapshot creation was interrupted and its image cannot be inspected: {error}"
                ),
                now,
            ),
        };
        tracing::info!(snapshot.id = %record.id, state = %next.status.state, "settled a snapshot interrupted by a restart");
        self.finish(next).await;
    }

    async fn recover_deleting(&self, record: &SnapshotRecord) {
        match self.runtime().delete_snapshot(&record.id).await {
            Ok(()) => {
                if let Err(error) = self.discard(&record.id).await {
                    tracing::warn!(snapshot.id = %record.id, error = %error_chain(&error), "cannot forget a deleted snapshot");
                }
            }
            Err(error) => {
                tracing::warn!(snapshot.id = %record.id, error = %error_chain(&error), "cannot finish deleting a snapshot; DELETE retries it");
            }
        }
    }

    /// The background half of a create: commit, then record the outcome.
    async fn run_commit(&self, record: &SnapshotRecord) {
        let committed = self.take_snapshot(record).await;
        let now = self.inner.sandboxes.clock().now();
        let next = match committed {
            Ok(SnapshotImage { image }) => SnapshotRecord {
                image: Some(image),
                ..record.with_status(
                    SnapshotState::Ready,
                    reason::READY,
                    "Docker snapshot image created successfully.",
                    now,
                )
            },
            Err(message) => record.with_status(SnapshotState::Failed, reason::FAILED, message, now),
        };
        self.finish(next).await;
    }

    /// Commits the source sandbox under its lock; the error is the message to record.
    async fn take_snapshot(&self, record: &SnapshotRecord) -> Result<SnapshotImage, String> {
        let source = record.sandbox_id.to_string();
        let (_guard, sandbox) = self
            .inner
            .sandboxes
            .lock(&source)
            .await
            .map_err(|e| e.to_string())?;
        let started = tokio::time::Instant::now();
        let committed = self.runtime().snapshot(&sandbox.id, &record.id).await;
        let duration_ms = started.elapsed().as_millis();
        match committed {
            Ok(image) => {
                tracing::info!(sandbox.id = %sandbox.id, snapshot.id = %record.id, duration_ms, "snapshot committed");
                Ok(image)
            }
            Err(error) => {
                tracing::warn!(sandbox.id = %sandbox.id, snapshot.id = %record.id, duration_ms, error = %error_chain(&error), "snapshot commit failed");
                Err(format!("Snapshot of sandbox {source} failed: {error}"))
            }
        }
    }

    /// Records the end of a commit, unless the snapshot left `Creating` meanwhile.
    async fn finish(&self, next: SnapshotRecord) {
        let _writes = self.inner.writes.lock().await;
        let current = self.inner.catalog.get(&next.id);
        if current.is_none_or(|c| c.status.state != SnapshotState::Creating) {
            return;
        }
        if let Err(error) = self.commit(next.clone()).await {
            tracing::error!(snapshot.id = %next.id, error = %error_chain(&error), "cannot record a snapshot's outcome; the next start settles it");
        }
    }

    /// Durably writes `record`, then publishes it. Callers hold `writes`.
    async fn commit(&self, record: SnapshotRecord) -> Result<Arc<SnapshotRecord>, StoreError> {
        self.inner.sandboxes.store().put_snapshot(&record).await?;
        let record = Arc::new(record);
        self.inner.catalog.put(record.clone());
        Ok(record)
    }

    /// Durably removes a deleted snapshot, then unpublishes it.
    async fn discard(&self, id: &str) -> Result<(), SnapshotError> {
        let _writes = self.inner.writes.lock().await;
        self.inner.sandboxes.store().remove_snapshot(id).await?;
        self.inner.catalog.remove(id);
        Ok(())
    }

    fn runtime(&self) -> &Arc<dyn crate::runtime::Runtime> {
        self.inner.sandboxes.runtime()
    }
}
