//! Container output, process events and the inspect text for the
//! diagnostics API.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerInspectResponse, HostConfig, PortBinding};
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;

use super::{errors, spec};
use crate::runtime::{LogWindow, ProcessEvent, RuntimeError};

/// The most output returned inline.
const MAX_BYTES: usize = 1 << 20;

/// The last `window.tail` lines of stdout and stderr since `window.since`,
/// with timestamps; `true` when cut.
pub(super) async fn logs(
    docker: &Docker,
    id: &SandboxId,
    window: LogWindow,
) -> Result<(String, bool), RuntimeError> {
    let since = window.since.map_or(0, |at| {
        // The engine takes whole Unix seconds; 0 means "from the start".
        i32::try_from(at.as_utc().timestamp().max(1)).unwrap_or(i32::MAX)
    });
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        timestamps: true,
        since,
        tail: window.tail.saturating_add(1).to_string(),
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
    let mut truncated = lines.len() > window.tail;
    let skip = lines.len().saturating_sub(window.tail);
    let mut text: String = lines.into_iter().skip(skip).collect();
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

/// An engine time, or `None` for Docker's "never" (`0001-01-01T00:00:00Z`).
fn engine_time(text: Option<&str>) -> Option<&str> {
    text.filter(|t| !t.is_empty() && !t.starts_with("0001-"))
}

/// Process milestones from the container's state.
pub(super) fn process_events(container: &ContainerInspectResponse) -> Vec<ProcessEvent> {
    let dated =
        |text: Option<&str>, what: String| match engine_time(text).and_then(Timestamp::parse) {
            Some(at) => ProcessEvent::at(at, what),
            None => ProcessEvent::undated(what),
        };
    let mut events = Vec::new();
    if container.created.is_some() {
        events.push(dated(
            container.created.as_deref(),
            "container created".to_owned(),
        ));
    }
    let Some(state) = &container.state else {
        return events;
    };
    if engine_time(state.started_at.as_deref()).is_some() {
        events.push(dated(
            state.started_at.as_deref(),
            format!("process started (pid {})", state.pid.unwrap_or_default()),
        ));
    }
    if engine_time(state.finished_at.as_deref()).is_some() {
        let code = state.exit_code.unwrap_or_default();
        let oom = if state.oom_killed == Some(true) {
            ", killed by the OOM killer"
        } else {
            ""
        };
        events.push(dated(
            state.finished_at.as_deref(),
            format!("process exited with code {code}{oom}"),
        ));
    }
    if let Some(error) = state.error.clone().filter(|e| !e.is_empty()) {
        events.push(ProcessEvent::undated(format!("engine error: {error}")));
    }
    if state.paused == Some(true) {
        events.push(ProcessEvent::undated("container is paused"));
    }
    events
}

/// The text being built: `Name:  value` lines, aligned, and indented lists.
#[derive(Default)]
struct Text(String);

impl Text {
    fn field(&mut self, indent: usize, name: &str, value: impl Display) {
        let label = format!("{name}:");
        let width = 16usize.saturating_sub(indent);
        let _ = writeln!(self.0, "{:indent$}{label:<width$}{value}", "");
    }

    fn heading(&mut self, name: &str) {
        let _ = writeln!(self.0, "{name}:");
    }

    fn item(&mut self, value: impl Display) {
        let _ = writeln!(self.0, "  {value}");
    }
}

fn or_dash(value: Option<impl Display>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A readable rendering of `docker inspect` for one sandbox container:
/// identity, state, resources, network, ports, mounts and labels. The
/// environment (`Config.Env`) is never rendered: it holds the sandbox's
/// env values, which may be secrets.
pub(super) fn render_inspect(container: &ContainerInspectResponse) -> String {
    let mut text = Text::default();
    let config = container.config.as_ref();
    let short_id: String = container
        .id
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(12)
        .collect();
    text.field(
        0,
        "Container ID",
        or_dash(Some(short_id).filter(|i| !i.is_empty())),
    );
    text.field(
        0,
        "Name",
        or_dash(container.name.as_deref().map(|n| n.trim_start_matches('/'))),
    );
    text.field(0, "Image", or_dash(config.and_then(|c| c.image.as_deref())));
    text.field(0, "Image ID", or_dash(container.image.as_deref()));
    text.field(0, "Platform", or_dash(container.platform.as_deref()));
    text.field(0, "Created", or_dash(container.created.as_deref()));
    render_state(&mut text, container);
    text.field(
        0,
        "Restart count",
        container.restart_count.unwrap_or_default(),
    );
    render_resources(&mut text, container.host_config.as_ref());
    render_network(&mut text, container);
    render_mounts(&mut text, container);
    text.heading("Labels");
    let labels: BTreeMap<_, _> = config
        .and_then(|c| c.labels.as_ref())
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    if labels.is_empty() {
        text.item("(none)");
    }
    for (key, value) in labels {
        text.item(format_args!("{key}={value}"));
    }
    text.0
}

fn render_state(text: &mut Text, container: &ContainerInspectResponse) {
    let Some(state) = &container.state else {
        text.field(0, "Status", "unknown");
        return;
    };
    let flag = |value: Option<bool>| value.unwrap_or(false);
    text.field(0, "Status", or_dash(state.status));
    text.field(0, "Running", flag(state.running));
    text.field(0, "Paused", flag(state.paused));
    text.field(0, "Restarting", flag(state.restarting));
    text.field(0, "OOMKilled", flag(state.oom_killed));
    text.field(0, "Dead", flag(state.dead));
    text.field(0, "PID", state.pid.unwrap_or_default());
    text.field(0, "Exit code", state.exit_code.unwrap_or_default());
    text.field(
        0,
        "Started at",
        or_dash(engine_time(state.started_at.as_deref())),
    );
    text.field(
        0,
        "Finished at",
        or_dash(engine_time(state.finished_at.as_deref())),
    );
    text.field(
        0,
        "Error",
        or_dash(state.error.as_deref().filter(|e| !e.is_empty())),
    );
    if let Some(health) = &state.health {
        text.field(
            0,
            "Health",
            format_args!(
                "{} (failing streak {})",
                or_dash(health.status),
                health.failing_streak.unwrap_or_default()
            ),
        );
    }
}

fn render_resources(text: &mut Text, host: Option<&HostConfig>) {
    text.heading("Resources");
    let host = host.cloned().unwrap_or_default();
    let cpus = match (host.nano_cpus, host.cpu_quota, host.cpu_period) {
        (Some(nano), _, _) if nano > 0 => Some(nano as f64 / 1e9),
        (_, Some(quota), Some(period)) if quota > 0 && period > 0 => {
            Some(quota as f64 / period as f64)
        }
        _ => None,
    };
    text.field(
        2,
        "CPU",
        cpus.map_or_else(|| "unlimited".to_owned(), |c| format!("{c:.2} cores")),
    );
    text.field(
        2,
        "Memory",
        host.memory.filter(|m| *m > 0).map_or_else(
            || "unlimited".to_owned(),
            |m| format!("{:.2} MiB", m as f64 / (1024.0 * 1024.0)),
        ),
    );
    text.field(
        2,
        "PIDs limit",
        host.pids_limit
            .filter(|p| *p > 0)
            .map_or_else(|| "unlimited".to_owned(), |p| p.to_string()),
    );
    let gpus: Vec<String> = host
        .device_requests
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.capabilities
                .iter()
                .flatten()
                .flatten()
                .any(|c| c == "gpu")
        })
        .map(|r| match (r.count, &r.device_ids) {
            (Some(-1), _) => "all".to_owned(),
            (_, Some(ids)) if !ids.is_empty() => ids.join(","),
            (count, _) => count.unwrap_or_default().to_string(),
        })
        .collect();
    text.field(
        2,
        "GPUs",
        if gpus.is_empty() {
            "none".to_owned()
        } else {
            gpus.join(", ")
        },
    );
}

fn render_network(text: &mut Text, container: &ContainerInspectResponse) {
    let host = container.host_config.as_ref();
    text.field(
        0,
        "Network mode",
        or_dash(host.and_then(|h| h.network_mode.as_deref())),
    );
    let settings = container.network_settings.as_ref();
    text.heading("Networks");
    let networks: BTreeMap<_, _> = settings
        .and_then(|s| s.networks.as_ref())
        .map(|n| n.iter().collect())
        .unwrap_or_default();
    if networks.is_empty() {
        text.item("(none)");
    }
    let set = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    for (name, endpoint) in networks {
        let mut parts = Vec::new();
        match (set(&endpoint.ip_address), endpoint.ip_prefix_len) {
            (Some(ip), Some(len)) if len > 0 => parts.push(format!("{ip}/{len}")),
            (Some(ip), _) => parts.push(ip),
            (None, _) => parts.push("no IPv4 address".to_owned()),
        }
        if let Some(ip) = set(&endpoint.global_ipv6_address) {
            parts.push(ip);
        }
        if let Some(gateway) = set(&endpoint.gateway) {
            parts.push(format!("gateway {gateway}"));
        }
        text.item(format_args!("{name}: {}", parts.join(", ")));
    }
    text.heading("Ports");
    let mut ports: BTreeMap<String, Option<Vec<PortBinding>>> = config_ports(container);
    for (port, bindings) in settings.and_then(|s| s.ports.clone()).unwrap_or_default() {
        ports.insert(port, bindings);
    }
    if ports.is_empty() {
        text.item("(none)");
    }
    for (port, bindings) in ports {
        let published: Vec<String> = bindings
            .unwrap_or_default()
            .iter()
            .map(|b| {
                format!(
                    "{}:{}",
                    b.host_ip
                        .as_deref()
                        .filter(|h| !h.is_empty())
                        .unwrap_or("*"),
                    b.host_port.as_deref().unwrap_or("?")
                )
            })
            .collect();
        if published.is_empty() {
            text.item(format_args!("{port} (not published)"));
        } else {
            text.item(format_args!("{port} -> {}", published.join(", ")));
        }
    }
}

/// The ports the image or the container declare (`ExposedPorts`).
fn config_ports(
    container: &ContainerInspectResponse,
) -> BTreeMap<String, Option<Vec<PortBinding>>> {
    container
        .config
        .as_ref()
        .and_then(|c| c.exposed_ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|port| (port, None))
        .collect()
}

fn render_mounts(text: &mut Text, container: &ContainerInspectResponse) {
    text.heading("Mounts");
    let mounts = container.mounts.clone().unwrap_or_default();
    if mounts.is_empty() {
        text.item("(none)");
    }
    for mount in mounts {
        let kind = mount.typ.as_deref().unwrap_or("mount");
        let source = mount
            .name
            .as_deref()
            .filter(|n| !n.is_empty() && kind == "volume")
            .or(mount.source.as_deref())
            .unwrap_or("-");
        let access = if mount.rw.unwrap_or(false) {
            "rw"
        } else {
            "ro"
        };
        text.item(format_args!(
            "{kind} {source} -> {} ({access})",
            mount.destination.as_deref().unwrap_or("-")
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{
        ContainerConfig, ContainerState, ContainerStateStatusEnum, DeviceRequest, EndpointSettings,
        MountPoint, NetworkSettings,
    };

    use super::*;

    fn container() -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("0123456789abcdef0123456789abcdef".to_owned()),
            name: Some("/sandbox-abc".to_owned()),
            image: Some("sha256:feed".to_owned()),
            created: Some("2025-03-01T10:00:00.123456789Z".to_owned()),
            restart_count: Some(2),
            state: Some(ContainerState {
                status: Some(ContainerStateStatusEnum::EXITED),
                running: Some(false),
                oom_killed: Some(true),
                exit_code: Some(137),
                pid: Some(0),
                started_at: Some("2025-03-01T10:00:01Z".to_owned()),
                finished_at: Some("2025-03-01T10:05:00Z".to_owned()),
                ..ContainerState::default()
            }),
            config: Some(ContainerConfig {
                image: Some("python:3.12".to_owned()),
                env: Some(vec![
                    "API_TOKEN=hunter2-secret".to_owned(),
                    "GREETING=plain-visible-value".to_owned(),
                ]),
                exposed_ports: Some(vec!["8080/tcp".to_owned()]),
                labels: Some(HashMap::from([
                    ("opensandbox.io/id".to_owned(), "abc".to_owned()),
                    ("team".to_owned(), "infra".to_owned()),
                ])),
                ..ContainerConfig::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some("bridge".to_owned()),
                nano_cpus: Some(500_000_000),
                memory: Some(128 * 1024 * 1024),
                pids_limit: Some(4096),
                device_requests: Some(vec![DeviceRequest {
                    count: Some(-1),
                    capabilities: Some(vec![vec!["gpu".to_owned()]]),
                    ..DeviceRequest::default()
                }]),
                ..HostConfig::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([(
                    "bridge".to_owned(),
                    EndpointSettings {
                        ip_address: Some("172.17.0.3".to_owned()),
                        ip_prefix_len: Some(16),
                        gateway: Some("172.17.0.1".to_owned()),
                        ..EndpointSettings::default()
                    },
                )])),
                ..NetworkSettings::default()
            }),
            mounts: Some(vec![MountPoint {
                typ: Some("volume".to_owned()),
                name: Some("data".to_owned()),
                source: Some("/var/lib/docker/volumes/data/_data".to_owned()),
                destination: Some("/data".to_owned()),
                rw: Some(false),
                ..MountPoint::default()
            }]),
            ..ContainerInspectResponse::default()
        }
    }

    #[test]
    fn inspect_text_has_the_essentials_and_no_environment() {
        let text = render_inspect(&container());
        for expected in [
            "Container ID:   0123456789ab\n",
            "Name:           sandbox-abc\n",
            "Image:          python:3.12\n",
            "Status:         exited\n",
            "OOMKilled:      true\n",
            "Exit code:      137\n",
            "Started at:     2025-03-01T10:00:01Z\n",
            "Restart count:  2\n",
            "  CPU:          0.50 cores\n",
            "  Memory:       128.00 MiB\n",
            "  PIDs limit:   4096\n",
            "  GPUs:         all\n",
            "Network mode:   bridge\n",
            "  bridge: 172.17.0.3/16, gateway 172.17.0.1\n",
            "  8080/tcp (not published)\n",
            "  volume data -> /data (ro)\n",
            "Labels:\n  opensandbox.io/id=abc\n  team=infra\n",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        for secret in ["hunter2", "plain-visible-value", "API_TOKEN", "GREETING"] {
            assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
        }
    }

    #[test]
    fn an_empty_inspect_still_renders() {
        let text = render_inspect(&ContainerInspectResponse::default());
        assert!(text.starts_with("Container ID:   -\n"), "{text}");
        assert!(text.contains("  CPU:          unlimited\n"), "{text}");
    }

    #[test]
    fn process_events_are_dated_from_the_engine() {
        let events = process_events(&container());
        let whats: Vec<_> = events.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "container created",
                "process started (pid 0)",
                "process exited with code 137, killed by the OOM killer"
            ]
        );
        assert_eq!(
            events[0].at.unwrap().to_string(),
            "2025-03-01T10:00:00.123456Z"
        );
    }
}
