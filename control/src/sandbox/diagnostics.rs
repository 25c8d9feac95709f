//! The Diagnostics API: best-effort text about one sandbox, from the
//! runtime (container output, process milestones) and from Sandgate's own
//! durable status history.

use sandgate_shared::api::DiagnosticContent;

use super::error::SandboxError;
use super::rules::FieldProblem;
use super::service::SandboxService;
use crate::error::codes;
use crate::runtime::{LogWindow, ProcessEvent};
use crate::store::StatusEvent;

/// How many output lines `logs` returns at most.
pub const LOG_TAIL: usize = 2000;

/// `logs` or `events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosticKind {
    /// Output and lifecycle text.
    Logs,
    /// Lifecycle and runtime events.
    Events,
}

impl DiagnosticKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Logs => "logs",
            Self::Events => "events",
        }
    }

    /// The scopes this kind supports.
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Self::Logs => &["container", "lifecycle", "all"],
            Self::Events => &["lifecycle", "runtime", "all"],
        }
    }
}

#[derive(Default)]
struct Collected {
    sections: Vec<String>,
    truncated: bool,
    warnings: Vec<String>,
}

impl SandboxService {
    /// Collects diagnostic text of `kind` for `scope`.
    pub async fn diagnostics(
        &self,
        id: &str,
        kind: DiagnosticKind,
        scope: &str,
    ) -> Result<DiagnosticContent, SandboxError> {
        let record = self.get(id)?;
        let scope = scope.trim().to_ascii_lowercase();
        if !kind.scopes().contains(&scope.as_str()) {
            let message = format!(
                "scope: {scope:?} is not supported for {}; use one of {}",
                kind.as_str(),
                kind.scopes().join(", ")
            );
            return Err(SandboxError::Invalid(vec![FieldProblem::new(
                codes::INVALID_PARAMETER,
                message,
            )]));
        }
        let all = scope == "all";
        let mut collected = Collected::default();
        if kind == DiagnosticKind::Logs && (all || scope == "container") {
            self.collect_output(&record.id, &mut collected).await;
        }
        if all || scope == "lifecycle" {
            self.collect_history(&record.id, &mut collected).await?;
        }
        if kind == DiagnosticKind::Events && (all || scope == "runtime") {
            self.collect_process_events(&record.id, &mut collected)
                .await;
        }
        Ok(DiagnosticContent {
            sandbox_id: record.id.clone(),
            kind: kind.as_str().to_owned(),
            scope,
            delivery: "inline".to_owned(),
            content_type: "text/plain; charset=utf-8".to_owned(),
            content: collected.sections.join("\n"),
            truncated: collected.truncated,
            warnings: collected.warnings,
        })
    }

    async fn collect_output(
        &self,
        id: &sandgate_shared::ids::SandboxId,
        collected: &mut Collected,
    ) {
        let window = LogWindow {
            tail: LOG_TAIL,
            since: None,
        };
        match self.inner.runtime.logs(id, window).await {
            Ok((text, truncated)) => {
                collected.truncated |= truncated;
                collected.sections.push(if text.is_empty() {
                    "(no container output)\n".to_owned()
                } else {
                    text
                });
            }
            Err(error) => collected
                .warnings
                .push(format!("container output unavailable: {error}")),
        }
    }

    async fn collect_history(
        &self,
        id: &sandgate_shared::ids::SandboxId,
        collected: &mut Collected,
    ) -> Result<(), SandboxError> {
        let history = self.inner.store.history(id).await?;
        let lines: String = history
            .iter()
            .map(|e| format!("{}\n", history_line(e)))
            .collect();
        collected.sections.push(lines);
        Ok(())
    }

    async fn collect_process_events(
        &self,
        id: &sandgate_shared::ids::SandboxId,
        collected: &mut Collected,
    ) {
        match self.inner.runtime.process_events(id).await {
            Ok(events) if events.is_empty() => {
                collected.sections.push("(no runtime events)\n".to_owned())
            }
            Ok(events) => collected.sections.push(
                events
                    .iter()
                    .map(|e| format!("{}\n", runtime_line(e)))
                    .collect(),
            ),
            Err(error) => collected
                .warnings
                .push(format!("runtime events unavailable: {error}")),
        }
    }
}

/// One status-history entry as a line: `{at} lifecycle {state} {reason}: {message}`.
pub(super) fn history_line(event: &StatusEvent) -> String {
    format!(
        "{} lifecycle {} {}: {}",
        event.at, event.state, event.reason, event.message
    )
}

/// One engine process event as a line: `[{at} ]runtime {what}`.
pub(super) fn runtime_line(event: &ProcessEvent) -> String {
    match event.at {
        Some(at) => format!("{at} runtime {}", event.what),
        None => format!("runtime {}", event.what),
    }
}
