//! Follows the engine's event stream (no per-sandbox polling): a container
//! that exits, is OOM-killed, paused, unpaused, restarted or removed behind
//! Sandgate's back is reported at once. After any interruption (including a restart of the
//! Docker daemon) the stream is re-opened and a `Resync` asks the service to
//! reconcile everything it may have missed.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use sandgate_shared::ids::SandboxId;

use super::{labels, observe};
use crate::runtime::{EventSink, ObservedState, RuntimeEvent};

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs until the sink's receiver is gone.
pub(super) async fn follow(docker: Docker, instance: String, sink: EventSink) {
    let mut backoff = Duration::from_millis(250);
    let mut first = true;
    loop {
        let mut stream = docker.events(Some(options(&instance)));
        if !first && sink.send(RuntimeEvent::Resync).is_err() {
            return;
        }
        first = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(message) => {
                    backoff = Duration::from_millis(250);
                    if let Some(event) = translate(&docker, &message).await
                        && sink.send(event).is_err()
                    {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "docker event stream interrupted; reconnecting");
                    break;
                }
            }
        }
        if sink.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn options(instance: &str) -> EventsOptions {
    let filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        ("label".to_owned(), labels::instance_filter(instance)),
        (
            "event".to_owned(),
            ["die", "destroy", "pause", "unpause", "start"]
                .map(str::to_owned)
                .to_vec(),
        ),
    ]);
    EventsOptions {
        filters: Some(filters),
        ..EventsOptions::default()
    }
}

async fn translate(docker: &Docker, message: &EventMessage) -> Option<RuntimeEvent> {
    let actor = message.actor.as_ref()?;
    let attributes = actor.attributes.as_ref()?;
    let id: SandboxId = attributes.get(labels::ID)?.parse().ok()?;
    match message.action.as_deref()? {
        "die" => {
            let code = attributes
                .get("exitCode")
                .and_then(|c| c.parse().ok())
                .unwrap_or(-1);
            let oom_killed = match actor.id.as_deref() {
                Some(container) => oom_killed(docker, container).await,
                None => false,
            };
            Some(RuntimeEvent::Exited {
                id,
                code,
                oom_killed,
            })
        }
        "destroy" => Some(RuntimeEvent::Removed { id }),
        "pause" => Some(RuntimeEvent::Frozen { id }),
        "unpause" => Some(RuntimeEvent::Thawed { id }),
        "start" => Some(RuntimeEvent::Started { id }),
        _ => None,
    }
}

async fn oom_killed(docker: &Docker, container: &str) -> bool {
    match docker.inspect_container(container, None).await {
        Ok(inspected) => matches!(
            observe::inspected_state(&inspected),
            ObservedState::Exited {
                oom_killed: true,
                ..
            }
        ),
        Err(_) => false,
    }
}
