//! Reconciliation of the durable store with what the runtime actually holds,
//! at startup and whenever the runtime's event stream had a gap.

use std::collections::HashMap;
use std::sync::Arc;

use sandgate_shared::api::SandboxState;
use sandgate_shared::ids::SandboxId;

use super::error::{Conflict, Operation, SandboxError};
use super::lifecycle::{DeleteCause, exit_outcome};
use super::model::{Resources, SandboxRecord, SandboxSpec, Source, Status, reason};
use super::service::SandboxService;
use super::state::Transition;
use crate::runtime::{ObservedState, RuntimeSandbox};

/// What to do with labelled runtime objects the store does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OrphanPolicy {
    /// Record them as sandboxes (the default: nothing is destroyed).
    #[default]
    Adopt,
    /// Remove them from the runtime.
    Remove,
}

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
}

impl SandboxService {
    /// Loads the stored records, reconciles them with the runtime and re-arms
    /// every timer (sandboxes that expired while Sandgate was down are due at once).
    pub async fn restore(
        &self,
        records: Vec<SandboxRecord>,
    ) -> Result<ReconcileReport, SandboxError> {
        for record in records {
            self.inner.registry.put(Arc::new(record));
        }
        let report = self.reconcile().await?;
        for record in self.inner.registry.all() {
            self.inner
                .scheduler
                .set(&record.id, self.next_deadline(&record));
        }
        Ok(report)
    }

    /// Compares the registry with the runtime's list and fixes differences.
    pub async fn reconcile(&self) -> Result<ReconcileReport, SandboxError> {
        let listed = self.inner.runtime.list().await.map_err(|source| {
            self.runtime_failed(Operation::Query, "listing the runtime's sandboxes", source)
        })?;
        let mut observed: HashMap<SandboxId, RuntimeSandbox> =
            listed.into_iter().map(|s| (s.id.clone(), s)).collect();
        let mut report = ReconcileReport::default();
        for record in self.inner.registry.all() {
            let seen = observed.remove(&record.id);
            self.reconcile_one(&record, seen, &mut report).await?;
        }
        for orphan in observed.into_values() {
            self.handle_orphan(orphan, &mut report).await?;
        }
        tracing::info!(?report, "reconciled the state store with the runtime");
        Ok(report)
    }

    async fn reconcile_one(
        &self,
        record: &Arc<SandboxRecord>,
        seen: Option<RuntimeSandbox>,
        report: &mut ReconcileReport,
    ) -> Result<(), SandboxError> {
        let provisioning = self.inner.provisioning.lock().contains_key(&record.id);
        match (record.status.state, seen.map(|s| s.state)) {
            (SandboxState::Stopping, _) => {
                report.deletions_resumed += 1;
                let service = self.clone();
                let id = record.id.clone();
                tokio::spawn(async move {
                    if let Err(error) = service.delete(id.as_str(), DeleteCause::User).await {
                        tracing::warn!(sandbox.id = %id, %error, "resuming an interrupted deletion failed");
                    }
                });
            }
            (SandboxState::Terminated | SandboxState::Failed, _) => {}
            (SandboxState::Pending, Some(ObservedState::Running)) => {
                self.correct(record, Transition::ObservedRunning, report)
                    .await?;
            }
            (SandboxState::Pending, _) if provisioning => {}
            (SandboxState::Pending, existing) => {
                self.reprovision(record, existing.is_some(), report).await?;
            }
            (_, Some(observed)) => self.sync_observed(record, observed, report).await?,
            (_, None) => {
                report.lost += 1;
                self.mark_lost(record).await?;
            }
        }
        Ok(())
    }

    async fn sync_observed(
        &self,
        record: &Arc<SandboxRecord>,
        observed: ObservedState,
        report: &mut ReconcileReport,
    ) -> Result<(), SandboxError> {
        let transition = match (record.status.state, observed) {
            (SandboxState::Running, ObservedState::Running)
            | (SandboxState::Paused, ObservedState::Paused) => return Ok(()),
            (_, ObservedState::Running) => Transition::ObservedRunning,
            (_, ObservedState::Paused) => Transition::ObservedPaused,
            (_, ObservedState::Creating) => return Ok(()),
            (_, ObservedState::Exited { code, oom_killed }) => {
                let (transition, why, message) = exit_outcome(code, oom_killed);
                let next = self.transition(record, transition, why, message, Conflict::State)?;
                report.corrected += 1;
                return self.commit(next, true).await.map(|_| ());
            }
        };
        self.correct(record, transition, report).await
    }

    async fn correct(
        &self,
        record: &Arc<SandboxRecord>,
        transition: Transition,
        report: &mut ReconcileReport,
    ) -> Result<(), SandboxError> {
        let (why, message) = match transition {
            Transition::ObservedPaused => (
                reason::PAUSED,
                "Sandbox is paused (found so by reconciliation).",
            ),
            _ => (
                reason::RUNNING,
                "Sandbox is running (found so by reconciliation).",
            ),
        };
        let next = self.transition(record, transition, why, message, Conflict::State)?;
        report.corrected += 1;
        self.commit(next, true).await.map(|_| ())
    }

    async fn reprovision(
        &self,
        record: &Arc<SandboxRecord>,
        partially_created: bool,
        report: &mut ReconcileReport,
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
        report.reprovisioned += 1;
        tracing::info!(sandbox.id = %record.id, "restarting provisioning interrupted by a restart");
        self.start_provisioning(record, None);
        Ok(())
    }

    async fn handle_orphan(
        &self,
        orphan: RuntimeSandbox,
        report: &mut ReconcileReport,
    ) -> Result<(), SandboxError> {
        match self.inner.settings.orphan_policy {
            OrphanPolicy::Remove => {
                report.removed += 1;
                tracing::warn!(sandbox.id = %orphan.id, "removing a runtime sandbox the state store does not know");
                if let Err(error) = self.inner.runtime.delete(&orphan.id).await {
                    tracing::warn!(sandbox.id = %orphan.id, %error, "cannot remove an unknown runtime sandbox");
                }
                Ok(())
            }
            OrphanPolicy::Adopt => {
                report.adopted += 1;
                tracing::warn!(sandbox.id = %orphan.id, "adopting a runtime sandbox the state store does not know");
                self.commit(adopted_record(orphan, self.inner.clock.now()), true)
                    .await
                    .map(|_| ())
            }
        }
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
