//! Synchronous sandbox operations: pause, resume, renew, metadata, endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use sandgate_shared::api::{Endpoint, SandboxState};
use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;

use super::error::{Conflict, Operation, SandboxError};
use super::labels;
use super::model::{SandboxRecord, reason};
use super::rules::FieldProblem;
use super::service::SandboxService;
use super::state::Transition;
use crate::error::codes;
use crate::runtime::{ObservedState, RuntimeError};

/// Options of `GET /sandboxes/{id}/endpoints/{port}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOptions {
    /// Route through the control plane's own proxy path.
    pub use_server_proxy: bool,
    /// Sign the route until this Unix time.
    pub expires: Option<u64>,
    /// The request's `Host`, the base of server-proxy endpoints when
    /// `server.eip` is not set.
    pub request_host: Option<String>,
}

/// One freeze or thaw: the three transitions it may take and its wording.
struct FreezeOp {
    begin: (Transition, &'static str, &'static str),
    done: (Transition, &'static str, &'static str),
    failed: (Transition, &'static str, &'static str),
    conflict: Conflict,
    operation: Operation,
    verb: &'static str,
    /// What the engine shows once the operation is done.
    target: ObservedState,
}

impl SandboxService {
    /// Freezes a running sandbox.
    pub async fn pause(&self, id: &str) -> Result<(), SandboxError> {
        let op = FreezeOp {
            begin: (
                Transition::BeginPause,
                reason::PAUSING,
                "Pausing the sandbox.",
            ),
            done: (Transition::Paused, reason::PAUSED, "Sandbox is paused."),
            failed: (
                Transition::PauseFailed,
                reason::RUNNING,
                "Pause failed; the sandbox is still running",
            ),
            conflict: Conflict::NotRunning,
            operation: Operation::Pause,
            verb: "pausing",
            target: ObservedState::Paused,
        };
        self.freeze_op(id, op).await
    }

    /// Unfreezes a paused sandbox.
    pub async fn resume(&self, id: &str) -> Result<(), SandboxError> {
        let op = FreezeOp {
            begin: (
                Transition::BeginResume,
                reason::RESUMING,
                "Resuming the sandbox.",
            ),
            done: (Transition::Resumed, reason::RUNNING, "Sandbox is running."),
            failed: (
                Transition::ResumeFailed,
                reason::PAUSED,
                "Resume failed; the sandbox is still paused",
            ),
            conflict: Conflict::NotPaused,
            operation: Operation::Resume,
            verb: "resuming",
            target: ObservedState::Running,
        };
        self.freeze_op(id, op).await
    }

    /// Begin (durably), ask the runtime, then record the outcome.
    async fn freeze_op(&self, id: &str, op: FreezeOp) -> Result<(), SandboxError> {
        let (_guard, record) = self.lock(id).await?;
        let (transition, why, message) = op.begin;
        let begun = self.transition(&record, transition, why, message, op.conflict)?;
        let record = self.commit(begun, true).await?;
        let outcome = if op.begin.0 == Transition::BeginPause {
            self.inner.runtime.pause(&record.id).await
        } else {
            self.inner.runtime.resume(&record.id).await
        };
        let outcome = match outcome {
            Err(_) if self.engine_already(&record.id, op.target).await => Ok(()),
            other => other,
        };
        match outcome {
            Ok(()) => {
                let (transition, why, message) = op.done;
                let done = self.transition(&record, transition, why, message, op.conflict)?;
                self.commit(done, true).await.map(|_| ())
            }
            Err(source) => {
                let (transition, why, message) = op.failed;
                let message = format!("{message}: {source}");
                let back = self.transition(&record, transition, why, message, op.conflict)?;
                self.commit(back, true).await?;
                let action = format!("{} sandbox {}", op.verb, record.id);
                Err(self.runtime_failed(op.operation, action, source))
            }
        }
    }

    /// Whether the engine already holds the sandbox in `target` (someone
    /// froze or thawed it behind Sandgate's back, so the engine refused).
    async fn engine_already(&self, id: &SandboxId, target: ObservedState) -> bool {
        matches!(
            self.inner.runtime.observe(id).await,
            Ok(Some(seen)) if seen.state == target
        )
    }

    /// Sets a new absolute expiry. It must be in the future and within
    /// `server.max_sandbox_timeout_seconds` of now; manual-cleanup sandboxes
    /// cannot be renewed (409).
    pub async fn renew(&self, id: &str, expires_at: Timestamp) -> Result<Timestamp, SandboxError> {
        let (_guard, record) = self.lock(id).await?;
        let now = self.inner.clock.now();
        if expires_at <= now {
            return Err(SandboxError::invalid(
                codes::INVALID_EXPIRATION,
                format!(
                    "expiresAt: new expiration time must be in the future (got {expires_at}, now {now})."
                ),
            ));
        }
        if record.expires_at.is_none() {
            return Err(SandboxError::Conflict {
                reason: Conflict::NoExpiration,
                engine: self.inner.engine,
                message: format!(
                    "Sandbox {} does not have automatic expiration enabled.",
                    record.id
                ),
            });
        }
        if record.status.state == SandboxState::Stopping {
            return Err(SandboxError::Conflict {
                reason: Conflict::State,
                engine: self.inner.engine,
                message: format!(
                    "Sandbox {} is being deleted; it cannot be renewed.",
                    record.id
                ),
            });
        }
        self.check_max_timeout(now, expires_at)?;
        let renewed = SandboxRecord {
            expires_at: Some(expires_at),
            ..SandboxRecord::clone(&record)
        };
        self.commit(renewed, false).await?;
        tracing::info!(sandbox.id = %record.id, expires_at = %expires_at, "sandbox expiration renewed");
        Ok(expires_at)
    }

    fn check_max_timeout(&self, now: Timestamp, expires_at: Timestamp) -> Result<(), SandboxError> {
        let Some(max) = self.inner.settings.rules.max_timeout_seconds else {
            return Ok(());
        };
        let requested = (expires_at.as_utc() - now.as_utc()).num_seconds();
        if requested > i64::try_from(max).unwrap_or(i64::MAX) {
            return Err(SandboxError::invalid(
                codes::INVALID_EXPIRATION,
                format!(
                    "expiresAt: {requested}s from now exceeds the configured maximum of {max}s (server.max_sandbox_timeout_seconds)."
                ),
            ));
        }
        Ok(())
    }

    /// Applies a JSON merge patch to the metadata (RFC 7396).
    pub async fn patch_metadata(
        &self,
        id: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> Result<Arc<SandboxRecord>, SandboxError> {
        let (_guard, record) = self.lock(id).await?;
        check_patch(&patch)?;
        if patch.is_empty() {
            return Ok(record);
        }
        let mut metadata = record.metadata.clone();
        for (key, value) in patch {
            match value {
                Some(value) => metadata.insert(key, value),
                None => metadata.remove(&key),
            };
        }
        self.commit(Self::with_metadata(&record, metadata), false)
            .await
    }

    /// Where clients reach `port` of the sandbox: through the gateway (signed
    /// when `expires` is given), through the control plane's proxy path, or
    /// directly. A direct endpoint of a sandbox still being provisioned waits
    /// (bounded) until the runtime can answer.
    pub async fn endpoint(
        &self,
        id: &str,
        port: u16,
        options: EndpointOptions,
    ) -> Result<Endpoint, SandboxError> {
        check_endpoint_options(&options)?;
        let record = self.get(id)?;
        let ingress = &self.inner.settings.ingress;
        let secure = record.secure_access_token.as_deref();
        if let Some(expires) = options.expires {
            return self.signed_endpoint(&record, port, expires);
        }
        if options.use_server_proxy {
            let host = options.request_host.as_deref();
            let endpoint = ingress
                .server_proxy_endpoint(host, id, port)
                .ok_or_else(|| {
                    SandboxError::invalid(
                        codes::INVALID_PARAMETER,
                        "use_server_proxy: set server.eip (the request had no Host header)",
                    )
                })?;
            return Ok(with_headers(
                Endpoint {
                    endpoint,
                    headers: None,
                },
                secure,
            ));
        }
        if let Some(endpoint) = ingress.gateway_endpoint(record.id.as_str(), port, None) {
            return Ok(with_headers(endpoint, secure));
        }
        self.direct_endpoint(&record, port).await
    }

    fn signed_endpoint(
        &self,
        record: &SandboxRecord,
        port: u16,
        expires: u64,
    ) -> Result<Endpoint, SandboxError> {
        let now = u64::try_from(self.inner.clock.now().as_utc().timestamp()).unwrap_or(0);
        if expires <= now {
            return Err(SandboxError::invalid(
                codes::INVALID_PARAMETER,
                format!("expires ({expires}) must be greater than current time ({now})."),
            ));
        }
        let ingress = &self.inner.settings.ingress;
        let id = record.id.as_str();
        let signed = ingress
            .sign(id, port, expires)
            .map_err(|m| SandboxError::invalid(codes::INVALID_PARAMETER, m))?;
        ingress
            .gateway_endpoint(id, port, Some(&signed))
            .ok_or_else(|| {
                SandboxError::invalid(codes::INVALID_PARAMETER, "signed routes need the gateway")
            })
    }

    async fn direct_endpoint(
        &self,
        record: &SandboxRecord,
        port: u16,
    ) -> Result<Endpoint, SandboxError> {
        let id = record.id.as_str();
        let mut changes = self.inner.registry.subscribe();
        let deadline = tokio::time::Instant::now() + self.inner.settings.endpoint_wait;
        loop {
            let state = self.get(id)?.status.state;
            match self.inner.runtime.resolve_endpoint(&record.id, port).await {
                Ok(resolved) => {
                    let headers = (!resolved.headers.is_empty()).then_some(resolved.headers);
                    return Ok(Endpoint {
                        endpoint: resolved.endpoint,
                        headers,
                    });
                }
                Err(RuntimeError::NotReady(_)) if state == SandboxState::Pending => {
                    let wait = tokio::time::timeout_at(deadline, changes.changed()).await;
                    if wait.is_err() {
                        let source = RuntimeError::NotReady("still provisioning".to_owned());
                        return Err(self.endpoint_error(record, source));
                    }
                }
                Err(RuntimeError::NotFound { .. }) => return Err(self.not_found(id)),
                Err(error) => return Err(self.endpoint_error(record, error)),
            }
        }
    }

    fn endpoint_error(&self, record: &SandboxRecord, source: RuntimeError) -> SandboxError {
        self.runtime_failed(
            Operation::ResolveEndpoint,
            format!("resolving an endpoint of sandbox {}", record.id),
            source,
        )
    }
}

fn check_patch(patch: &BTreeMap<String, Option<String>>) -> Result<(), SandboxError> {
    let mut problems = Vec::new();
    for (key, value) in patch {
        if let Some(prefix) = labels::reserved_prefix(key) {
            problems.push(FieldProblem::new(
                codes::RESERVED_METADATA_LABEL,
                format!("Metadata key {key:?} is reserved ({prefix} prefix)."),
            ));
            continue;
        }
        let checked = labels::check_key(key).and_then(|()| match value {
            Some(v) => labels::check_value(key, v),
            None => Ok(()),
        });
        if let Err(message) = checked {
            problems.push(FieldProblem::new(codes::INVALID_METADATA_LABEL, message));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SandboxError::Invalid(problems))
    }
}

fn check_endpoint_options(options: &EndpointOptions) -> Result<(), SandboxError> {
    if options.use_server_proxy && options.expires.is_some() {
        return Err(SandboxError::invalid(
            codes::INVALID_PARAMETER,
            "use_server_proxy cannot be combined with expires; signed endpoints require the gateway route.",
        ));
    }
    Ok(())
}

/// Adds the secure-access header of a secured sandbox.
fn with_headers(mut endpoint: Endpoint, secure_access_token: Option<&str>) -> Endpoint {
    let extra = crate::ingress::secure_access_headers(secure_access_token);
    if !extra.is_empty() {
        endpoint
            .headers
            .get_or_insert_with(BTreeMap::new)
            .extend(extra);
    }
    endpoint
}
