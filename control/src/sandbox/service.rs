//! `SandboxService`: the only writer of sandbox state.
//!
//! Every change follows one path: take the sandbox's lock, compute the next
//! record with the state machine, write it durably, then publish it to the
//! registry and the expiry scheduler. Reads never take a lock and never touch
//! the store. Runtime work that can be slow (provisioning) runs in background
//! tasks that report progress into `status.message`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sandgate_shared::api::{ListSandboxesResponse, SandboxState};
use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::error::{Conflict, Operation, SandboxError};
use super::model::{OrphanPolicy, SandboxRecord, Status, reason};
use super::query::ListQuery;
use super::registry::Registry;
use super::request::{CreateRules, CreateSandboxBody};
use super::snapshot_model::{SnapshotCatalog, resolve_restore};
use super::state::{self, Transition};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeError, RuntimeKind};
use crate::store::{StatusEvent, Store};
use crate::ttl::Scheduler;

/// Settings the service needs from the configuration.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Create-time validation limits.
    pub rules: CreateRules,
    /// How long a sandbox that failed provisioning stays visible.
    pub pending_failure_ttl: Duration,
    /// How long an endpoint query waits for a pending sandbox.
    pub endpoint_wait: Duration,
    /// Delay before retrying a failed expiry deletion.
    pub expiry_retry: Duration,
    /// What to do with runtime sandboxes the store does not know.
    pub orphan_policy: OrphanPolicy,
    /// How clients reach sandbox ports.
    pub ingress: crate::ingress::Ingress,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            rules: CreateRules::default(),
            pending_failure_ttl: Duration::from_secs(3600),
            endpoint_wait: Duration::from_secs(30),
            expiry_retry: Duration::from_secs(30),
            orphan_policy: OrphanPolicy::Adopt,
            ingress: crate::ingress::Ingress::default(),
        }
    }
}

pub(super) struct Provisioning {
    pub(super) cancel: CancellationToken,
    pub(super) task: JoinHandle<()>,
}

pub(super) struct Inner {
    pub(super) runtime: Arc<dyn Runtime>,
    pub(super) store: Store,
    pub(super) registry: Registry,
    pub(super) scheduler: Scheduler,
    pub(super) clock: Clock,
    pub(super) settings: ServiceSettings,
    pub(super) engine: RuntimeKind,
    pub(super) metrics: Arc<Metrics>,
    pub(super) provisioning: Mutex<HashMap<SandboxId, Provisioning>>,
    /// Sandboxes the engine reported changes of while provisioning still
    /// owned them: provisioning looks at the engine again when it is done.
    pub(super) deferred: Mutex<HashSet<SandboxId>>,
    /// Sandboxes with an engine look-up queued that has not started yet,
    /// with how the engine last said their process ended: a burst of
    /// events about one sandbox costs one look-up.
    pub(super) following: Mutex<HashMap<SandboxId, Option<crate::runtime::ObservedState>>>,
    /// Snapshots, for restores (written only by the snapshot service).
    pub(super) snapshots: Arc<SnapshotCatalog>,
}

/// The sandbox domain service; cheap to clone.
#[derive(Clone)]
pub struct SandboxService {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for SandboxService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxService")
            .field("sandboxes", &self.inner.registry.len())
            .finish()
    }
}

/// The parts a service is built from.
pub struct ServiceParts {
    /// The container engine.
    pub runtime: Arc<dyn Runtime>,
    /// The durable store.
    pub store: Store,
    /// The expiry scheduler.
    pub scheduler: Scheduler,
    /// Time source.
    pub clock: Clock,
    /// Settings.
    pub settings: ServiceSettings,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
}

impl SandboxService {
    /// Builds the service. Call [`SandboxService::restore`] before serving.
    pub fn new(parts: ServiceParts) -> Self {
        let engine = parts.runtime.kind();
        let inner = Inner {
            runtime: parts.runtime,
            store: parts.store,
            registry: Registry::default(),
            scheduler: parts.scheduler,
            clock: parts.clock,
            settings: parts.settings,
            engine,
            metrics: parts.metrics,
            provisioning: Mutex::default(),
            deferred: Mutex::default(),
            following: Mutex::default(),
            snapshots: Arc::default(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The in-memory index (read-only use).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The configured runtime.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.runtime
    }

    /// The snapshots restores are resolved against.
    pub fn snapshot_catalog(&self) -> &Arc<SnapshotCatalog> {
        &self.inner.snapshots
    }

    /// The durable store.
    pub(super) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The service's clock.
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// How many expiry/cleanup deadlines are armed.
    pub fn armed_timers(&self) -> usize {
        self.inner.scheduler.len()
    }

    /// The armed deadline of a sandbox, if any.
    pub fn armed_deadline(&self, id: &SandboxId) -> Option<Timestamp> {
        self.inner.scheduler.deadline(id)
    }

    /// Which engine the service drives.
    pub fn engine(&self) -> RuntimeKind {
        self.inner.engine
    }

    /// The runtime failed while doing `action` as part of `operation`.
    pub(super) fn runtime_failed(
        &self,
        operation: Operation,
        action: impl Into<String>,
        source: RuntimeError,
    ) -> SandboxError {
        SandboxError::Runtime {
            operation,
            engine: self.inner.engine,
            action: action.into(),
            source,
        }
    }

    /// Validates and durably records a new sandbox, then provisions it in
    /// the background. Returns the `Pending` record.
    pub async fn create(
        &self,
        body: CreateSandboxBody,
    ) -> Result<Arc<SandboxRecord>, SandboxError> {
        let mut valid = body
            .validate(&self.inner.settings.rules)
            .map_err(SandboxError::Invalid)?;
        resolve_restore(&self.inner.snapshots, &mut valid.spec.source)?;
        self.inner
            .runtime
            .check_spec(&valid.spec)
            .map_err(|source| {
                self.runtime_failed(
                    Operation::Check,
                    "checking the request against the runtime",
                    source,
                )
            })?;
        if valid.spec.secure_access && self.inner.settings.ingress.gateway.is_none() {
            return Err(SandboxError::invalid(
                crate::error::codes::INVALID_PARAMETER,
                "secureAccess: needs ingress.mode = \"gateway\": the edge proxy is what enforces the access token",
            ));
        }
        let secure_access_token = valid
            .spec
            .secure_access
            .then(crate::ingress::new_secure_access_token);
        let now = self.inner.clock.now();
        let expires_at = valid
            .spec
            .timeout_seconds
            .map(|s| self.inner.clock.after(Duration::from_secs(s)));
        let record = SandboxRecord {
            id: SandboxId::generate(),
            spec: Arc::new(valid.spec),
            metadata: valid.metadata,
            status: Status {
                state: SandboxState::Pending,
                reason: reason::PROVISIONING.to_owned(),
                message: "Accepted; provisioning is queued.".to_owned(),
                last_transition_at: now,
            },
            created_at: now,
            expires_at,
            address: None,
            secure_access_token,
        };
        let record = self.commit(record, true).await?;
        tracing::info!(sandbox.id = %record.id, "sandbox accepted; provisioning in the background");
        self.start_provisioning(&record, valid.image_auth);
        Ok(record)
    }

    /// One sandbox.
    pub fn get(&self, id: &str) -> Result<Arc<SandboxRecord>, SandboxError> {
        id.parse::<SandboxId>()
            .ok()
            .and_then(|id| self.inner.registry.get(&id))
            .ok_or_else(|| self.not_found(id))
    }

    /// One page of sandboxes.
    pub fn list(&self, query: &ListQuery) -> ListSandboxesResponse {
        query.apply(&self.inner.registry)
    }

    pub(super) fn not_found(&self, id: &str) -> SandboxError {
        SandboxError::NotFound {
            engine: self.inner.engine,
            id: id.to_owned(),
        }
    }

    /// Takes the sandbox's operation lock and returns it with the current record.
    pub(super) async fn lock(
        &self,
        id: &str,
    ) -> Result<(OwnedMutexGuard<()>, Arc<SandboxRecord>), SandboxError> {
        let parsed: SandboxId = id.parse().map_err(|_| self.not_found(id))?;
        let lock = self
            .inner
            .registry
            .lock_of(&parsed)
            .ok_or_else(|| self.not_found(id))?;
        let guard = lock.lock_owned().await;
        let record = self
            .inner
            .registry
            .get(&parsed)
            .ok_or_else(|| self.not_found(id))?;
        Ok((guard, record))
    }

    /// Durably writes `record`, then publishes it. With `event`, the status
    /// change is appended to the sandbox's history.
    pub(super) async fn commit(
        &self,
        record: SandboxRecord,
        event: bool,
    ) -> Result<Arc<SandboxRecord>, SandboxError> {
        let history = event.then(|| StatusEvent {
            at: record.status.last_transition_at,
            state: record.status.state.to_string(),
            reason: record.status.reason.clone(),
            message: record.status.message.clone(),
        });
        self.inner.store.put(&record, history).await?;
        let record = Arc::new(record);
        self.inner.registry.put(record.clone());
        self.inner
            .scheduler
            .set(&record.id, self.next_deadline(&record));
        Ok(record)
    }

    /// Durably removes a deleted sandbox, then unpublishes it and disarms its timer.
    pub(super) async fn discard(&self, id: &SandboxId) -> Result<(), SandboxError> {
        self.inner.store.remove(id).await?;
        self.inner.registry.remove(id);
        self.inner.scheduler.set(id, None);
        Ok(())
    }

    /// Applies a state-machine transition; an illegal one is a `conflict`.
    pub(super) fn transition(
        &self,
        record: &SandboxRecord,
        transition: Transition,
        reason: &str,
        message: impl Into<String>,
        conflict: Conflict,
    ) -> Result<SandboxRecord, SandboxError> {
        let to =
            state::next(record.status.state, transition).map_err(|_| SandboxError::Conflict {
                reason: conflict,
                engine: self.inner.engine,
                message: format!(
                    "Sandbox {} is {}; cannot {} it.",
                    record.id,
                    record.status.state,
                    verb(transition)
                ),
            })?;
        let mut next = record.clone();
        next.status = Status {
            state: to,
            reason: reason.to_owned(),
            message: message.into(),
            last_transition_at: self.inner.clock.now(),
        };
        self.inner.metrics.transition(record.status.state, to);
        Ok(next)
    }

    /// When the scheduler must look at this sandbox next: its TTL, or the
    /// removal of a sandbox that failed provisioning, whichever is first.
    pub(super) fn next_deadline(&self, record: &SandboxRecord) -> Option<Timestamp> {
        if record.status.state == SandboxState::Stopping {
            return None;
        }
        let failure_cleanup = failed_provisioning(record).then(|| {
            let ttl = chrono::Duration::from_std(self.inner.settings.pending_failure_ttl)
                .unwrap_or(chrono::Duration::MAX);
            let at = record
                .status
                .last_transition_at
                .as_utc()
                .checked_add_signed(ttl);
            Timestamp::from_utc(at.unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC))
        });
        [record.expires_at, failure_cleanup]
            .into_iter()
            .flatten()
            .min()
    }

    /// Metadata replaced wholesale (used by PATCH after validation).
    pub(super) fn with_metadata(
        record: &SandboxRecord,
        metadata: BTreeMap<String, String>,
    ) -> SandboxRecord {
        SandboxRecord {
            metadata,
            ..record.clone()
        }
    }
}

/// Whether the record is a sandbox whose provisioning failed.
pub(super) fn failed_provisioning(record: &SandboxRecord) -> bool {
    record.status.state == SandboxState::Failed
        && record.status.reason == reason::PROVISIONING_ERROR
}

fn verb(transition: Transition) -> &'static str {
    match transition {
        Transition::BeginPause => "pause",
        Transition::BeginResume => "resume",
        Transition::BeginStop => "delete",
        _ => "change",
    }
}
