//! Background lifecycle work: provisioning, deletion, expiry and the
//! reaction to changes the runtime reports on its own.

use std::sync::Arc;

use sandgate_shared::api::SandboxState;
use sandgate_shared::ids::SandboxId;
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

use super::error::{Conflict, Operation, SandboxError};
use super::model::{SandboxRecord, reason};
use super::service::{Provisioning, SandboxService, failed_provisioning};
use super::state::{Transition, exit_outcome};
use crate::runtime::{
    ObservedState, Progress, ProvisionRequest, Provisioned, RegistryAuth, RuntimeError,
};
use crate::ttl::Due;

pub use super::state::DeleteCause;

impl SandboxService {
    /// Starts provisioning in the background.
    pub(super) fn start_provisioning(
        &self,
        record: &SandboxRecord,
        image_auth: Option<RegistryAuth>,
    ) {
        let cancel = CancellationToken::new();
        let service = self.clone();
        let request = Self::provision_request(record, image_auth);
        let token = cancel.clone();
        let task = tokio::spawn(async move { service.provision(request, token).await });
        self.inner
            .provisioning
            .lock()
            .insert(record.id.clone(), Provisioning { cancel, task });
    }

    /// Provision request for a record (credentials are supplied separately).
    fn provision_request(
        record: &SandboxRecord,
        image_auth: Option<RegistryAuth>,
    ) -> ProvisionRequest {
        ProvisionRequest {
            id: record.id.clone(),
            spec: record.spec.clone(),
            metadata: record.metadata.clone(),
            image_auth,
            created_at: record.created_at,
            expires_at: record.expires_at,
        }
    }

    async fn provision(&self, request: ProvisionRequest, cancel: CancellationToken) {
        let id = request.id.clone();
        let started = tokio::time::Instant::now();
        let progress = self.progress_sink(&id);
        progress.report("Provisioning started.");
        // Not dropped on cancellation: the runtime returns early at a point
        // where nothing is in flight, and the deletion that cancelled it then
        // removes whatever was created.
        let result = self
            .inner
            .runtime
            .provision(&request, &progress, &cancel)
            .await;
        if cancel.is_cancelled() {
            return;
        }
        let guard = tokio::select! {
            locked = self.lock(id.as_str()) => locked,
            () = cancel.cancelled() => return,
        };
        self.inner.provisioning.lock().remove(&id);
        let Ok((guard, record)) = guard else { return };
        if record.status.state != SandboxState::Pending {
            // A runtime event (the process already exited) got there first.
            return;
        }
        let elapsed = started.elapsed();
        let next = self.provision_outcome(&record, result, elapsed);
        if let Err(error) = self.commit_logged(next).await {
            tracing::error!(sandbox.id = %id, %error, "cannot record the provisioning outcome");
        }
        drop(guard);
        self.replay_deferred(&id);
    }

    /// Engine events seen while provisioning owned the sandbox: look at the
    /// engine again now that the outcome is recorded (the events themselves
    /// may be the echo of an earlier container's removal).
    fn replay_deferred(&self, id: &SandboxId) {
        if self.inner.deferred.lock().remove(id) {
            let service = self.clone();
            let id = id.clone();
            tokio::spawn(async move { service.follow_engine(&id).await });
        }
    }

    fn provision_outcome(
        &self,
        record: &SandboxRecord,
        result: Result<Provisioned, RuntimeError>,
        elapsed: std::time::Duration,
    ) -> Result<SandboxRecord, SandboxError> {
        let id = &record.id;
        let elapsed_ms = elapsed.as_millis() as u64;
        let mut with_address = record.clone();
        if let Ok(provisioned) = &result {
            with_address.address = provisioned.address.clone();
        }
        let record = &with_address;
        match result.map(|p| p.state) {
            Ok(ObservedState::Exited { code, oom_killed }) => {
                let (transition, why, message) = exit_outcome(code, oom_killed);
                tracing::warn!(sandbox.id = %id, duration_ms = elapsed_ms, exit.code = code, "sandbox exited right after starting");
                self.transition(record, transition, why, message, Conflict::State)
            }
            Ok(_) => {
                tracing::info!(sandbox.id = %id, duration_ms = elapsed_ms, "sandbox is running");
                self.inner.metrics.provisioned(elapsed);
                self.transition(
                    record,
                    Transition::Provisioned,
                    reason::RUNNING,
                    "Sandbox is running.",
                    Conflict::State,
                )
            }
            Err(error) => {
                let message = format!("Provisioning failed: {error}");
                tracing::warn!(sandbox.id = %id, duration_ms = elapsed_ms, error = %crate::error::error_chain(&error), "sandbox failed to provision");
                self.transition(
                    record,
                    Transition::Fail,
                    reason::PROVISIONING_ERROR,
                    message,
                    Conflict::State,
                )
            }
        }
    }

    async fn commit_logged(
        &self,
        next: Result<SandboxRecord, SandboxError>,
    ) -> Result<(), SandboxError> {
        self.commit(next?, true).await.map(|_| ())
    }

    fn progress_sink(&self, id: &SandboxId) -> Progress {
        let service = self.clone();
        let id = id.clone();
        Progress::new(move |message| {
            service.inner.registry.update_if(
                &id,
                |r| r.status.state == SandboxState::Pending,
                |r| r.status.message = message,
            );
        })
    }

    /// Deletes a sandbox: `Stopping` (durably), then the runtime removes it,
    /// then the record goes. For [`DeleteCause::Expiry`], a renewal that was
    /// acknowledged first wins and nothing happens.
    pub async fn delete(&self, id: &str, cause: DeleteCause) -> Result<(), SandboxError> {
        let (guard, record) = self.lock(id).await?;
        self.delete_locked(guard, record, cause).await
    }

    /// [`SandboxService::delete`] with the sandbox's lock already held.
    pub(super) async fn delete_locked(
        &self,
        _guard: OwnedMutexGuard<()>,
        record: Arc<SandboxRecord>,
        cause: DeleteCause,
    ) -> Result<(), SandboxError> {
        if !self.still_due(&record, cause) {
            return Ok(());
        }
        let started = tokio::time::Instant::now();
        let stopping = self.transition(
            &record,
            Transition::BeginStop,
            cause.reason(),
            cause.message(),
            Conflict::State,
        )?;
        let record = self.commit(stopping, true).await?;
        self.stop_provisioning(&record.id).await;
        if let Err(source) = self.inner.runtime.delete(&record.id).await {
            let message = format!("Deletion failed and will be retried: {source}");
            let mut failed = SandboxRecord::clone(&record);
            failed.status.message = message;
            self.commit(failed, false).await?;
            if cause != DeleteCause::User {
                let retry = self.inner.clock.after(self.inner.settings.expiry_retry);
                self.inner.scheduler.set(&record.id, Some(retry));
            }
            let action = format!("deleting sandbox {}", record.id);
            return Err(self.runtime_failed(Operation::Delete, action, source));
        }
        self.discard(&record.id).await?;
        self.inner.metrics.deleted(record.status.state);
        tracing::info!(sandbox.id = %record.id, cause = ?cause, duration_ms = started.elapsed().as_millis() as u64, "sandbox deleted");
        Ok(())
    }

    fn still_due(&self, record: &SandboxRecord, cause: DeleteCause) -> bool {
        let now = self.inner.clock.now();
        match cause {
            DeleteCause::User => true,
            DeleteCause::Expiry => record.expires_at.is_some_and(|at| at <= now),
            DeleteCause::FailureCleanup => failed_provisioning(record),
        }
    }

    async fn stop_provisioning(&self, id: &SandboxId) {
        self.inner.deferred.lock().remove(id);
        let running = self.inner.provisioning.lock().remove(id);
        if let Some(provisioning) = running {
            provisioning.cancel.cancel();
            let _ = provisioning.task.await;
        }
    }

    /// Handles a deadline from the scheduler.
    pub async fn on_due(&self, due: Due) {
        let Some(record) = self.inner.registry.get(&due.id) else {
            return;
        };
        let now = self.inner.clock.now();
        let cause = if record.expires_at.is_some_and(|at| at <= now) {
            DeleteCause::Expiry
        } else if self.next_deadline(&record).is_some_and(|at| at <= now) {
            DeleteCause::FailureCleanup
        } else {
            // Renewed or changed since the deadline was set: re-arm.
            self.inner
                .scheduler
                .set(&record.id, self.next_deadline(&record));
            return;
        };
        let lag = (now.as_utc() - due.deadline.as_utc())
            .to_std()
            .unwrap_or_default();
        self.inner.metrics.expiry_lag(lag);
        if let Err(error) = self.delete(record.id.as_str(), cause).await {
            tracing::warn!(sandbox.id = %record.id, %error, "scheduled deletion failed; retrying later");
        }
    }
}
