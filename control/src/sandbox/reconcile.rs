//! Following the engine: recovery of the stored records after a restart,
//! reconciliation after a gap in the event stream, and the reaction to a
//! change the engine reports on its own.
//!
//! One rule everywhere: the record is corrected to what the engine holds
//! *now* ([`Runtime::observe`](crate::runtime::Runtime::observe)), read under
//! the sandbox's lock. An event only says which sandbox to look at, so the
//! late echo of an engine object that no longer backs the sandbox (the
//! container removed when provisioning restarted after a crash) changes
//! nothing.
//!
//! Recovery does not hold up the listener: [`SandboxService::restore`]
//! publishes the stored records at once (reads are served from them), takes
//! every sandbox's lock before anything can be written, and releases each
//! lock when that sandbox is recovered, a bounded number at a time. A write
//! to a sandbox therefore waits for its own recovery and no other.

use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use sandgate_shared::api::SandboxState;
use sandgate_shared::ids::SandboxId;
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;

use super::error::{Conflict, SandboxError};
use super::model::{OrphanPolicy, Resources, SandboxRecord, SandboxSpec, Source, Status, reason};
use super::service::SandboxService;
use super::state::{DeleteCause, Transition, exit_outcome};
use crate::runtime::{ObservedState, RuntimeEvent, RuntimeSandbox};

/// How many sandboxes are recovered at the same time.
const RECOVERY_CONCURRENCY: usize = 8;
/// How often one engine read is tried before a sandbox is left as stored.
const OBSERVE_ATTEMPTS: u32 = 3;
/// Pause between those tries.
const OBSERVE_RETRY: Duration = Duration::from_millis(500);

/// Counts of what a reconciliation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Records whose state was corrected from the runtime.
    pub corrected: usize,
    /// Records the runtime no longer had.
    pub lost: usize,
    /// Pending records whose provisioning was restarted.
    pub reprovisioned: usize,
    /// Interrupted deletions finished.
    pub deletions_resumed: usize,
    /// Runtime objects adopted.
    pub adopted: usize,
    /// Runtime objects removed.
    pub removed: usize,
    /// Sandboxes the engine could not be asked about (left as stored).
    pub unobserved: usize,
}

/// The recovery started by [`SandboxService::restore`], running in the background.
#[derive(Debug)]
pub struct Recovery(JoinHandle<ReconcileReport>);

impl Recovery {
    /// Waits until every stored sandbox is recovered.
    pub async fn finished(self) -> ReconcileReport {
        self.0.await.unwrap_or_default()
    }
}

/// A sandbox to recover: its lock, when already held, and its id.
type Gate = (SandboxId, Option<OwnedMutexGuard<()>>);

impl SandboxService {
    /// Publishes the stored records, re-arms every timer (sandboxes that
    /// expired while Sandgate was down are due at once, and their deletion
    /// waits for their recovery), and recovers them in the background.
    pub fn restore(&self, records: Vec<SandboxRecord>) -> Recovery {
        let mut gates = Vec::with_capacity(records.len());
        for record in records {
            let id = record.id.clone();
            self.inner.registry.put(Arc::new(record));
            let guard = self
                .inner
                .registry
                .lock_of(&id)
                .and_then(|lock| lock.try_lock_owned().ok());
            gates.push((id, guard));
        }
        for record in self.inner.registry.all() {
            self.inner
                .scheduler
                .set(&record.id, self.next_deadline(&record));
        }
        let service = self.clone();
        Recovery(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let report = service.recover_all(gates).await;
            let duration_ms = started.elapsed().as_millis() as u64;
            tracing::info!(?report, duration_ms, "recovered the stored sandboxes");
            report
        }))
    }

    /// Compares every sandbox with the runtime and fixes differences (after
    /// a gap in the event stream).
    pub async fn reconcile(&self) -> ReconcileReport {
        let gates = self
            .inner
            .registry
            .all()
            .into_iter()
            .map(|record| (record.id.clone(), None))
            .collect();
        let report = self.recover_all(gates).await;
        tracing::info!(?report, "reconciled the state store with the runtime");
        report
    }

    async fn recover_all(&self, gates: Vec<Gate>) -> ReconcileReport {
        let report = Mutex::new(ReconcileReport::default());
        futures_util::stream::iter(gates)
            .for_each_concurrent(RECOVERY_CONCURRENCY, |(id, guard)| {
                let report = &report;
                async move {
                    let guard = match guard {
                        Some(guard) => Some(guard),
                        None => self.lock(id.as_str()).await.ok().map(|(guard, _)| guard),
                    };
                    if let Some(guard) = guard {
                        self.recover_one(guard, &id, report).await;
                    }
                }
            })
            .await;
        self.handle_orphans(&report).await;
        report.into_inner()
    }

    /// Recovers one sandbox while holding its lock.
    async fn recover_one(
        &self,
        guard: OwnedMutexGuard<()>,
        id: &SandboxId,
        report: &Mutex<ReconcileReport>,
    ) {
        let Some(record) = self.inner.registry.get(id) else {
            return;
        };
        let outcome = self.recover_locked(guard, &record, report).await;
        if let Err(error) = outcome {
            tracing::warn!(sandbox.id = %id, %error, "recovering the sandbox failed");
        }
    }

    async fn recover_locked(
        &self,
        guard: OwnedMutexGuard<()>,
        record: &Arc<SandboxRecord>,
        report: &Mutex<ReconcileReport>,
    ) -> Result<(), SandboxError> {
        if record.status.state == SandboxState::Stopping {
            report.lock().deletions_resumed += 1;
            return self
                .delete_locked(guard, record.clone(), DeleteCause::User)
                .await;
        }
        let Some(seen) = self.observe_patiently(&record.id).await else {
            report.lock().unobserved += 1;
            return Ok(());
        };
        let provisioning = self.inner.provisioning.lock().contains_key(&record.id);
        let running = seen
            .as_ref()
            .is_some_and(|s| s.state == ObservedState::Running);
        match record.status.state {
            SandboxState::Pending if provisioning && !running => Ok(()),
            SandboxState::Pending if !running => {
                report.lock().reprovisioned += 1;
                self.reprovision(record, seen.is_some()).await
            }
            _ => {
                let lost = seen.is_none();
                if self.converge(record, seen.as_ref()).await? {
                    let mut report = report.lock();
                    if lost {
                        report.lost += 1
                    } else {
                        report.corrected += 1
                    }
                }
                Ok(())
            }
        }
    }

    /// Reacts to a change the runtime reported on its own: queues a look at
    /// the engine for that sandbox (one for a burst of events about it, in
    /// the order they came) and returns the task that does it, if it started
    /// one. Called in stream order, without waiting.
    pub fn on_runtime_event(&self, event: RuntimeEvent) -> Option<JoinHandle<()>> {
        let service = self.clone();
        let Some(id) = event.sandbox().cloned() else {
            return Some(tokio::spawn(async move {
                service.reconcile().await;
            }));
        };
        let ended = match event {
            RuntimeEvent::Exited {
                code, oom_killed, ..
            } => Some(ObservedState::Exited { code, oom_killed }),
            _ => None,
        };
        match self.inner.following.lock().entry(id.clone()) {
            Entry::Occupied(mut queued) => {
                if ended.is_some() {
                    queued.insert(ended);
                }
                None
            }
            Entry::Vacant(slot) => {
                slot.insert(ended);
                Some(tokio::spawn(
                    async move { service.follow_engine(&id).await },
                ))
            }
        }
    }

    /// Records what the engine holds for `id` now, unless provisioning or a
    /// deletion owns the sandbox (provisioning looks again when it is done).
    /// How the engine said the process ended (queued with the event) names
    /// the outcome only when the engine holds nothing any more (removed
    /// right after it died), never when another container now backs the
    /// sandbox.
    pub(super) async fn follow_engine(&self, id: &SandboxId) {
        let locked = self.lock(id.as_str()).await;
        let ended = self.inner.following.lock().remove(id).flatten();
        let Ok((_guard, record)) = locked else {
            return;
        };
        match record.status.state {
            SandboxState::Pending => {
                if self.inner.provisioning.lock().contains_key(id) {
                    self.inner.deferred.lock().insert(id.clone());
                }
                return;
            }
            SandboxState::Stopping => return,
            _ => {}
        }
        let Some(mut seen) = self.observe_patiently(id).await else {
            return;
        };
        if let (None, Some(state)) = (&seen, ended) {
            seen = Some(RuntimeSandbox { state, ..gone(id) });
        }
        if let Err(error) = self.converge(&record, seen.as_ref()).await {
            tracing::error!(sandbox.id = %id, %error, "cannot record a runtime-reported change");
        }
    }

    /// The engine's view of one sandbox, retried briefly; `None` when the
    /// engine cannot be asked.
    async fn observe_patiently(&self, id: &SandboxId) -> Option<Option<RuntimeSandbox>> {
        for attempt in 1..=OBSERVE_ATTEMPTS {
            match self.inner.runtime.observe(id).await {
                Ok(seen) => return Some(seen),
                Err(error) => {
                    tracing::warn!(sandbox.id = %id, %error, attempt, "cannot read the sandbox from the runtime");
                }
            }
            if attempt < OBSERVE_ATTEMPTS {
                tokio::time::sleep(OBSERVE_RETRY).await;
            }
        }
        None
    }

    /// Commits the record the engine's view implies; `true` if it changed.
    async fn converge(
        &self,
        record: &SandboxRecord,
        seen: Option<&RuntimeSandbox>,
    ) -> Result<bool, SandboxError> {
        let Some(next) = self.converged(record, seen)? else {
            return Ok(false);
        };
        tracing::warn!(
            sandbox.id = %record.id,
            state.from = %record.status.state,
            state.to = %next.status.state,
            state.reason = %next.status.reason,
            "recording what the runtime holds"
        );
        self.commit(next, true).await?;
        Ok(true)
    }

    /// The record as the engine's view implies, or `None` when it already says so.
    fn converged(
        &self,
        record: &SandboxRecord,
        seen: Option<&RuntimeSandbox>,
    ) -> Result<Option<SandboxRecord>, SandboxError> {
        use SandboxState as S;
        let observed = seen.map(|s| s.state);
        let (transition, why, message) = match (record.status.state, observed) {
            (S::Stopping, _) => return Ok(None),
            (S::Pending, observed) if observed != Some(ObservedState::Running) => {
                return Ok(None);
            }
            (S::Running, Some(ObservedState::Running))
            | (S::Paused, Some(ObservedState::Paused))
            | (_, Some(ObservedState::Creating))
            | (S::Terminated | S::Failed, Some(ObservedState::Exited { .. }) | None) => {
                return Ok(None);
            }
            (_, Some(ObservedState::Running)) => (
                Transition::ObservedRunning,
                reason::RUNNING,
                "Sandbox is running (as the runtime reports).".to_owned(),
            ),
            (_, Some(ObservedState::Paused)) => (
                Transition::ObservedPaused,
                reason::PAUSED,
                "Sandbox is paused (as the runtime reports).".to_owned(),
            ),
            (_, Some(ObservedState::Exited { code, oom_killed })) => exit_outcome(code, oom_killed),
            (_, None) => (
                Transition::Fail,
                reason::RUNTIME_LOST,
                "The runtime no longer has this sandbox (removed outside Sandgate).".to_owned(),
            ),
        };
        let mut next = self.transition(record, transition, why, message, Conflict::State)?;
        if let Some(address) = seen.and_then(|s| s.address.clone()) {
            next.address = Some(address);
        }
        Ok(Some(next))
    }

    async fn reprovision(
        &self,
        record: &Arc<SandboxRecord>,
        partially_created: bool,
    ) -> Result<(), SandboxError> {
        if record.spec.needs_registry_auth {
            let message = "Provisioning was interrupted by a control-plane restart, and registry credentials are never stored; create the sandbox again.";
            let next = self.transition(
                record,
                Transition::Fail,
                reason::PROVISIONING_ERROR,
                message,
                Conflict::State,
            )?;
            return self.commit(next, true).await.map(|_| ());
        }
        if partially_created && let Err(error) = self.inner.runtime.delete(&record.id).await {
            tracing::warn!(sandbox.id = %record.id, %error, "cannot clear a half-provisioned sandbox before retrying");
        }
        tracing::info!(sandbox.id = %record.id, "restarting provisioning interrupted by a restart");
        self.start_provisioning(record, None);
        Ok(())
    }

    async fn handle_orphans(&self, report: &Mutex<ReconcileReport>) {
        let listed = match self.inner.runtime.list().await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(%error, "cannot list the runtime's sandboxes to find unknown ones");
                return;
            }
        };
        for orphan in listed {
            if self.inner.registry.get(&orphan.id).is_some() {
                continue;
            }
            // Deleted by Sandgate since the list was taken?
            let Some(Some(orphan)) = self.observe_patiently(&orphan.id).await else {
                continue;
            };
            if self.inner.registry.get(&orphan.id).is_some() {
                continue;
            }
            if let Err(error) = self.handle_orphan(orphan, report).await {
                tracing::warn!(%error, "cannot handle a runtime sandbox the state store does not know");
            }
        }
    }

    async fn handle_orphan(
        &self,
        orphan: RuntimeSandbox,
        report: &Mutex<ReconcileReport>,
    ) -> Result<(), SandboxError> {
        match self.inner.settings.orphan_policy {
            OrphanPolicy::Remove => {
                report.lock().removed += 1;
                tracing::warn!(sandbox.id = %orphan.id, "removing a runtime sandbox the state store does not know");
                if let Err(error) = self.inner.runtime.delete(&orphan.id).await {
                    tracing::warn!(sandbox.id = %orphan.id, %error, "cannot remove an unknown runtime sandbox");
                }
                Ok(())
            }
            OrphanPolicy::Adopt => {
                report.lock().adopted += 1;
                tracing::warn!(sandbox.id = %orphan.id, "adopting a runtime sandbox the state store does not know");
                self.commit(adopted_record(orphan, self.inner.clock.now()), true)
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// A sandbox the engine no longer holds, described by its last known state.
fn gone(id: &SandboxId) -> RuntimeSandbox {
    RuntimeSandbox {
        id: id.clone(),
        state: ObservedState::Creating,
        created_at: None,
        image: None,
        entrypoint: Vec::new(),
        metadata: Default::default(),
        expires_at: None,
        address: None,
    }
}

fn adopted_record(orphan: RuntimeSandbox, now: sandgate_shared::time::Timestamp) -> SandboxRecord {
    let (state, why, message) = match orphan.state {
        ObservedState::Running => (
            SandboxState::Running,
            reason::ADOPTED,
            "Adopted from the runtime; it was running.".to_owned(),
        ),
        ObservedState::Paused => (
            SandboxState::Paused,
            reason::ADOPTED,
            "Adopted from the runtime; it was paused.".to_owned(),
        ),
        ObservedState::Creating => (
            SandboxState::Failed,
            reason::ADOPTED,
            "Adopted from the runtime before it had started.".to_owned(),
        ),
        ObservedState::Exited { code, oom_killed } => {
            let (transition, why, message) = exit_outcome(code, oom_killed);
            let state = if transition == Transition::ExitedCleanly {
                SandboxState::Terminated
            } else {
                SandboxState::Failed
            };
            (state, why, message)
        }
    };
    let spec = SandboxSpec {
        source: Source::Image {
            uri: orphan.image.unwrap_or_else(|| "unknown".to_owned()),
        },
        entrypoint: orphan.entrypoint,
        env: Default::default(),
        resources: Resources::default(),
        platform: None,
        volumes: Vec::new(),
        network_policy: None,
        secure_access: false,
        extensions: Default::default(),
        timeout_seconds: None,
        needs_registry_auth: false,
    };
    SandboxRecord {
        id: orphan.id,
        spec: Arc::new(spec),
        metadata: orphan.metadata,
        status: Status {
            state,
            reason: why.to_owned(),
            message,
            last_transition_at: now,
        },
        created_at: orphan.created_at.unwrap_or(now),
        expires_at: orphan.expires_at,
        address: orphan.address,
        secure_access_token: None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::clock::Clock;
    use crate::metrics::Metrics;
    use crate::runtime::Runtime;
    use crate::runtime::fake::{FakeRuntime, FakeSettings};
    use crate::sandbox::service::{ServiceParts, ServiceSettings};
    use crate::store::Store;
    use crate::ttl::{Due, Scheduler};

    /// A service on a fake engine and a store in `dir`, as the control
    /// plane runs it: engine events followed, recovery started.
    struct Harness {
        service: SandboxService,
        recovery: Recovery,
        _due: mpsc::UnboundedReceiver<Due>,
        _stop: tokio_util::sync::DropGuard,
    }

    fn launch(fake: Arc<FakeRuntime>, dir: &tempfile::TempDir) -> Harness {
        let (store, records) = Store::open(&dir.path().join("state.db")).unwrap();
        let stop = CancellationToken::new();
        let (scheduler, due) = Scheduler::start(Clock::System, stop.child_token());
        let (events_tx, mut events) = mpsc::unbounded_channel();
        fake.watch(events_tx);
        let service = SandboxService::new(ServiceParts {
            runtime: fake as Arc<dyn Runtime>,
            store,
            scheduler,
            clock: Clock::System,
            settings: ServiceSettings::default(),
            metrics: Arc::new(Metrics::new()),
        });
        let recovery = service.restore(records);
        let follower = service.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                follower.on_runtime_event(event);
            }
        });
        Harness {
            service,
            recovery,
            _due: due,
            _stop: stop.drop_guard(),
        }
    }

    async fn running_sandbox(service: &SandboxService) -> SandboxId {
        let body = serde_json::from_value(serde_json::json!({
            "image": {"uri": "python:3.12"},
            "entrypoint": ["sleep", "3600"],
            "resourceLimits": {"cpu": "1", "memory": "1Gi"},
        }))
        .unwrap();
        let id = service.create(body).await.unwrap().id.clone();
        wait_for(service, &id, SandboxState::Running).await;
        id
    }

    async fn wait_for(service: &SandboxService, id: &SandboxId, want: SandboxState) {
        let mut changes = service.registry().subscribe();
        let wait = async {
            while service.registry().get(id).map(|r| r.status.state) != Some(want) {
                changes.changed().await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("{id} never became {want}"));
    }

    #[tokio::test]
    async fn an_event_of_a_container_that_no_longer_backs_the_sandbox_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(FakeRuntime::new(FakeSettings::default()).unwrap());
        let app = launch(fake.clone(), &dir);
        let id = running_sandbox(&app.service).await;
        // The echo of an earlier container's death and removal (the engine
        // still runs the sandbox).
        for event in [
            RuntimeEvent::Exited {
                id: id.clone(),
                code: 137,
                oom_killed: false,
            },
            RuntimeEvent::Removed { id: id.clone() },
        ] {
            if let Some(task) = app.service.on_runtime_event(event) {
                task.await.unwrap();
            }
        }
        let record = app.service.registry().get(&id).unwrap();
        assert_eq!(
            record.status.state,
            SandboxState::Running,
            "{:?}",
            record.status
        );
    }

    #[tokio::test]
    async fn a_freeze_behind_the_back_is_recorded_and_the_api_resumes_it() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(FakeRuntime::new(FakeSettings::default()).unwrap());
        let app = launch(fake.clone(), &dir);
        let id = running_sandbox(&app.service).await;
        fake.freeze_behind_back(&id);
        wait_for(&app.service, &id, SandboxState::Paused).await;
        app.service.resume(id.as_str()).await.unwrap();
        assert_eq!(
            app.service.registry().get(&id).unwrap().status.state,
            SandboxState::Running
        );
    }

    #[tokio::test]
    async fn a_write_waits_for_the_recovery_of_its_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let engine = FakeSettings {
            state_file: Some(dir.path().join("engine.json")),
            ..FakeSettings::default()
        };
        let fake = Arc::new(FakeRuntime::new(engine.clone()).unwrap());
        let app = launch(fake.clone(), &dir);
        let id = running_sandbox(&app.service).await;
        drop(app);
        // Frozen while Sandgate was down; the store still says Running.
        fake.freeze_behind_back(&id);
        let slow = FakeSettings {
            operation_latency: Duration::from_millis(300),
            ..engine
        };
        let slow = Arc::new(FakeRuntime::new(slow).unwrap());
        let app = launch(slow, &dir);
        let stored = app.service.registry().get(&id).unwrap();
        assert_eq!(
            stored.status.state,
            SandboxState::Running,
            "reads see the store at once"
        );
        // Without waiting for recovery this resume meets "Running" and is refused.
        app.service.resume(id.as_str()).await.unwrap();
        assert_eq!(app.recovery.finished().await.corrected, 1);
        assert_eq!(
            app.service.registry().get(&id).unwrap().status.state,
            SandboxState::Running
        );
    }

    #[tokio::test]
    async fn recovery_brings_a_failed_record_whose_sandbox_runs_back_to_running() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(FakeRuntime::new(FakeSettings::default()).unwrap());
        let app = launch(fake.clone(), &dir);
        let id = running_sandbox(&app.service).await;
        let record = app.service.registry().get(&id).unwrap();
        let failed = app
            .service
            .transition(
                &record,
                Transition::Fail,
                reason::RUNTIME_LOST,
                "stale",
                Conflict::State,
            )
            .unwrap();
        app.service.commit(failed, true).await.unwrap();
        drop(app);

        let app = launch(fake, &dir);
        let report = app.recovery.finished().await;
        assert_eq!(report.corrected, 1, "{report:?}");
        let record = app.service.registry().get(&id).unwrap();
        assert_eq!(
            record.status.state,
            SandboxState::Running,
            "{:?}",
            record.status
        );
    }
}
