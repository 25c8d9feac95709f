//! Reading containers back: state, identity, and addresses.

use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary, ContainerSummaryStateEnum,
};
use sandgate_shared::time::Timestamp;

use super::labels;
use crate::runtime::{ObservedState, RuntimeSandbox};

/// The observed state of an inspected container.
pub(super) fn inspected_state(container: &ContainerInspectResponse) -> ObservedState {
    let Some(state) = &container.state else {
        return ObservedState::Creating;
    };
    let exited = ObservedState::Exited {
        code: state.exit_code.unwrap_or_default(),
        oom_killed: state.oom_killed.unwrap_or(false),
    };
    match state.status {
        Some(ContainerStateStatusEnum::PAUSED) => ObservedState::Paused,
        Some(ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::RESTARTING) => {
            ObservedState::Running
        }
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => exited,
        _ if state.paused == Some(true) => ObservedState::Paused,
        _ if state.running == Some(true) => ObservedState::Running,
        _ => ObservedState::Creating,
    }
}

/// A sandbox as an inspected container describes it.
pub(super) fn from_inspect(container: &ContainerInspectResponse) -> Option<RuntimeSandbox> {
    let config = container.config.as_ref()?;
    let recorded = labels::read(config.labels.as_ref()?);
    let command = || {
        let mut argv = config.entrypoint.clone().unwrap_or_default();
        argv.extend(config.cmd.clone().unwrap_or_default());
        argv
    };
    Some(RuntimeSandbox {
        id: recorded.id?,
        state: inspected_state(container),
        created_at: container.created.as_deref().and_then(Timestamp::parse),
        image: recorded.image.or_else(|| config.image.clone()),
        entrypoint: recorded.entrypoint.unwrap_or_else(command),
        metadata: recorded.metadata,
        expires_at: recorded.expires_at,
        address: None,
    })
}

/// Whether a listed container needs an inspect to know how it ended.
pub(super) fn summary_is_settled(summary: &ContainerSummary) -> bool {
    !matches!(
        summary.state,
        Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD)
    )
}

/// The observed state of a listed container that is not exited.
pub(super) fn summary_state(summary: &ContainerSummary) -> ObservedState {
    match summary.state {
        Some(ContainerSummaryStateEnum::PAUSED) => ObservedState::Paused,
        Some(ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::RESTARTING) => {
            ObservedState::Running
        }
        _ => ObservedState::Creating,
    }
}

/// A sandbox as a listed (not exited) container describes it.
pub(super) fn from_summary(
    summary: &ContainerSummary,
    settings: &super::DockerSettings,
) -> Option<RuntimeSandbox> {
    let recorded = labels::read(summary.labels.as_ref()?);
    Some(RuntimeSandbox {
        id: recorded.id?,
        state: summary_state(summary),
        created_at: summary
            .created
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(Timestamp::from_utc),
        image: recorded.image.or_else(|| summary.image.clone()),
        entrypoint: recorded.entrypoint.unwrap_or_default(),
        metadata: recorded.metadata,
        expires_at: recorded.expires_at,
        address: summary_address(summary, settings),
    })
}

fn summary_address(summary: &ContainerSummary, settings: &super::DockerSettings) -> Option<String> {
    if settings.network_mode == "host" {
        return Some(settings.endpoint_host.clone());
    }
    let networks = summary.network_settings.as_ref()?.networks.as_ref()?;
    let usable = |ip: &Option<String>| ip.clone().filter(|ip| !ip.is_empty());
    networks
        .get(&settings.network_mode)
        .and_then(|endpoint| usable(&endpoint.ip_address))
        .or_else(|| {
            networks
                .values()
                .find_map(|endpoint| usable(&endpoint.ip_address))
        })
}

/// The container's IP on `network` (or its first network).
pub(super) fn ip_address(container: &ContainerInspectResponse, network: &str) -> Option<String> {
    let networks = container.network_settings.as_ref()?.networks.as_ref()?;
    let usable = |ip: &Option<String>| ip.clone().filter(|ip| !ip.is_empty());
    networks
        .get(network)
        .and_then(|endpoint| usable(&endpoint.ip_address))
        .or_else(|| {
            networks
                .values()
                .find_map(|endpoint| usable(&endpoint.ip_address))
        })
}
