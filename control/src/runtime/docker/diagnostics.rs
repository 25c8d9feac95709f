//! Container output and process events for the diagnostics API.

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use sandgate_shared::ids::SandboxId;

use super::{errors, spec};
use crate::runtime::RuntimeError;

/// The most output returned inline.
const MAX_BYTES: usize = 1 << 20;

/// The last `tail` lines of stdout and stderr, with timestamps; `true` when cut.
pub(super) async fn logs(
    docker: &Docker,
    id: &SandboxId,
    tail: usize,
) -> Result<(String, bool), RuntimeError> {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: (tail + 1).to_string(),
        ..LogsOptions::default()
    };
    let mut stream = docker.logs(&spec::container_name(id), Some(options));
    let mut lines = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| errors::classify(id, e))?;
        let bytes = match chunk {
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message } => message,
            LogOutput::StdIn { .. } => continue,
        };
        lines.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut truncated = lines.len() > tail;
    let mut text: String = lines.into_iter().skip(usize::from(truncated)).collect();
    if text.len() > MAX_BYTES {
        let cut = text.len() - MAX_BYTES;
        let start = (cut..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text = text[start..].to_owned();
        truncated = true;
    }
    Ok((text, truncated))
}

/// Process milestones from the container's state.
pub(super) fn process_events(container: &ContainerInspectResponse) -> Vec<String> {
    let mut events = Vec::new();
    if let Some(created) = &container.created {
        events.push(format!("{created} container created"));
    }
    let Some(state) = &container.state else {
        return events;
    };
    let set = |t: &Option<String>| {
        t.clone()
            .filter(|t| !t.is_empty() && !t.starts_with("0001-"))
    };
    if let Some(started) = set(&state.started_at) {
        events.push(format!(
            "{started} process started (pid {})",
            state.pid.unwrap_or_default()
        ));
    }
    if let Some(finished) = set(&state.finished_at) {
        let code = state.exit_code.unwrap_or_default();
        let oom = if state.oom_killed == Some(true) {
            ", killed by the OOM killer"
        } else {
            ""
        };
        events.push(format!("{finished} process exited with code {code}{oom}"));
    }
    if let Some(error) = state.error.clone().filter(|e| !e.is_empty()) {
        events.push(format!("engine error: {error}"));
    }
    if state.paused == Some(true) {
        events.push("container is paused".to_owned());
    }
    events
}
