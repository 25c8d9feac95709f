//! Builds the container definition for a sandbox (pure: no engine calls).

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig};

use super::DockerSettings;
use super::labels;
use crate::runtime::{ProvisionRequest, RuntimeError, SpecRule};
use crate::sandbox::model::{GpuRequest, Resources, Source};

/// Docker's smallest CPU limit (0.01 CPU), in millicores.
const MIN_CPU_MILLIS: u64 = 10;
/// Docker's smallest memory limit (6 MiB).
const MIN_MEMORY_BYTES: u64 = 6 << 20;

/// Rejects limits the engine would refuse only when the container is created:
/// less than 0.01 CPU or more CPUs than it has, and less than 6 MiB.
pub(super) fn check_resources(
    resources: &Resources,
    host_cpus: Option<i64>,
) -> Result<(), RuntimeError> {
    let invalid = |message: String| RuntimeError::invalid_spec(SpecRule::LimitOutOfRange, message);
    if let Some(millis) = resources.cpu_millis {
        let raw = resources
            .raw
            .get("cpu")
            .map(String::as_str)
            .unwrap_or_default();
        if millis < MIN_CPU_MILLIS {
            return Err(invalid(format!(
                "resourceLimits.cpu: {raw:?} is less than the engine's minimum of 10m (0.01 CPU)"
            )));
        }
        let ceiling = host_cpus
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0);
        if let Some(cpus) = ceiling.filter(|cpus| millis > cpus.saturating_mul(1000)) {
            return Err(invalid(format!(
                "resourceLimits.cpu: {raw:?} is more than the {cpus} CPUs the engine has"
            )));
        }
    }
    if let Some(bytes) = resources.memory_bytes.filter(|b| *b < MIN_MEMORY_BYTES) {
        let raw = resources
            .raw
            .get("memory")
            .map(String::as_str)
            .unwrap_or_default();
        return Err(invalid(format!(
            "resourceLimits.memory: {raw:?} ({bytes} bytes) is less than the engine's minimum of 6Mi"
        )));
    }
    Ok(())
}

/// The bootstrap that starts execd and then the user's entrypoint.
pub(super) const BOOTSTRAP: &str = "/opt/opensandbox/bootstrap.sh";

/// The container name of a sandbox.
pub(super) fn container_name(id: &sandgate_shared::ids::SandboxId) -> String {
    format!("sandbox-{id}")
}

/// The full create body for `request`.
pub(super) fn container_body(
    request: &ProvisionRequest,
    settings: &DockerSettings,
    binds: Vec<String>,
    managed_volumes: &[String],
    with_execd: bool,
) -> ContainerCreateBody {
    let image = match &request.spec.source {
        Source::Image { uri } => uri.clone(),
        Source::Snapshot { id, image } => image.clone().unwrap_or_else(|| id.clone()),
    };
    let command = user_command(&request.spec.entrypoint);
    let (entrypoint, cmd) = if with_execd {
        (vec![BOOTSTRAP.to_owned()], Some(command))
    } else {
        (command, None)
    };
    let env = environment(request, settings, with_execd);
    ContainerCreateBody {
        image: Some(image),
        entrypoint: Some(entrypoint),
        cmd,
        env: Some(env),
        labels: Some(labels::for_sandbox(
            request,
            &settings.instance,
            managed_volumes,
        )),
        host_config: Some(host_config(request, settings, binds)),
        ..ContainerCreateBody::default()
    }
}

/// `docker.sandbox_env` overlaid with the request's variables (the request
/// wins, as in OpenSandbox), then `EXECD_INIT=1` when execd runs as init.
fn environment(
    request: &ProvisionRequest,
    settings: &DockerSettings,
    with_execd: bool,
) -> Vec<String> {
    let operator = settings
        .sandbox_env
        .0
        .iter()
        .filter(|(name, _)| !request.spec.env.contains_key(*name));
    let mut env: Vec<String> = operator
        .chain(&request.spec.env)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if with_execd && settings.execd_run_as_init {
        env.push("EXECD_INIT=1".to_owned());
    }
    env
}

fn host_config(
    request: &ProvisionRequest,
    settings: &DockerSettings,
    request_binds: Vec<String>,
) -> HostConfig {
    let resources = &request.spec.resources;
    let binds: Vec<String> = settings
        .sandbox_binds
        .iter()
        .cloned()
        .chain(request_binds)
        .collect();
    HostConfig {
        network_mode: Some(settings.network_mode.clone()),
        binds: (!binds.is_empty()).then_some(binds),
        cap_drop: Some(settings.drop_capabilities.clone()),
        security_opt: Some(security_options(settings)),
        pids_limit: settings.pids_limit,
        nano_cpus: resources
            .cpu_millis
            .map(|m| i64::try_from(m.saturating_mul(1_000_000)).unwrap_or(i64::MAX)),
        memory: resources
            .memory_bytes
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
        device_requests: resources.gpu.map(|gpu| vec![gpu_request(gpu)]),
        ..HostConfig::default()
    }
}

fn security_options(settings: &DockerSettings) -> Vec<String> {
    let mut options = Vec::new();
    if settings.no_new_privileges {
        options.push("no-new-privileges:true".to_owned());
    }
    if let Some(profile) = &settings.apparmor_profile {
        options.push(format!("apparmor={profile}"));
    }
    if let Some(profile) = &settings.seccomp_profile {
        options.push(format!("seccomp={profile}"));
    }
    options
}

fn gpu_request(gpu: GpuRequest) -> DeviceRequest {
    let count = match gpu {
        GpuRequest::All => -1,
        GpuRequest::Count(n) => i64::from(n),
    };
    DeviceRequest {
        count: Some(count),
        capabilities: Some(vec![vec!["gpu".to_owned()]]),
        ..DeviceRequest::default()
    }
}

/// The entrypoint as a process argv. A single element containing spaces
/// (`["python app.py"]`) is split like a shell would, as OpenSandbox does.
pub(super) fn user_command(entrypoint: &[String]) -> Vec<String> {
    match entrypoint {
        [only] if only.contains(char::is_whitespace) => shell_words(only),
        _ => entrypoint.to_vec(),
    }
}

/// Splits on unquoted whitespace, honouring '…', "…" and backslash escapes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(next) = chars.next() {
                    word.get_or_insert_with(String::new).push(next);
                }
            }
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::sandbox::model::{Resources, SandboxSpec};

    fn request(entrypoint: &[&str]) -> ProvisionRequest {
        let spec = SandboxSpec {
            source: Source::Image {
                uri: "python:3.12".to_owned(),
            },
            entrypoint: entrypoint.iter().map(|s| (*s).to_owned()).collect(),
            env: BTreeMap::from([
                ("A".to_owned(), "1".to_owned()),
                ("EMPTY".to_owned(), String::new()),
            ]),
            resources: Resources {
                cpu_millis: Some(500),
                memory_bytes: Some(512 << 20),
                gpu: Some(GpuRequest::Count(2)),
                raw: BTreeMap::new(),
            },
            platform: None,
            volumes: vec![],
            network_policy: None,
            secure_access: false,
            extensions: BTreeMap::new(),
            timeout_seconds: None,
            needs_registry_auth: false,
        };
        ProvisionRequest {
            id: "sbx-1".parse().unwrap(),
            spec: Arc::new(spec),
            metadata: BTreeMap::from([("team".to_owned(), "infra".to_owned())]),
            image_auth: None,
            created_at: sandgate_shared::time::Timestamp::parse("2030-01-01T00:00:00Z").unwrap(),
            expires_at: None,
        }
    }

    #[test]
    fn maps_limits_security_and_labels() {
        let body = container_body(
            &request(&["sleep", "1"]),
            &DockerSettings::default(),
            vec![],
            &[],
            false,
        );
        let host = body.host_config.unwrap();
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.memory, Some(536_870_912));
        assert_eq!(host.pids_limit, Some(4096));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges:true".to_owned()])
        );
        assert!(host.cap_drop.unwrap().contains(&"NET_RAW".to_owned()));
        let gpu = &host.device_requests.unwrap()[0];
        assert_eq!(
            (gpu.count, gpu.capabilities.clone()),
            (Some(2), Some(vec![vec!["gpu".to_owned()]]))
        );
        assert_eq!(host.binds, None, "no binds key without volumes");
        assert_eq!(body.env.unwrap(), vec!["A=1", "EMPTY="]);
        let labels = body.labels.unwrap();
        assert_eq!(labels["opensandbox.io/id"], "sbx-1");
        assert_eq!(labels["opensandbox.io/manual-cleanup"], "true");
        assert_eq!(labels["sandgate.io/metadata.team"], "infra");
        assert!(
            !labels.contains_key("team"),
            "metadata only under its prefix"
        );
        assert_eq!(labels["sandgate.io/image"], "python:3.12");
        assert_eq!(body.entrypoint.unwrap(), vec!["sleep", "1"]);
        assert_eq!(body.cmd, None);
    }

    #[test]
    fn limits_the_engine_refuses_are_rejected_first() {
        let resources = |cpu: Option<u64>, memory: Option<u64>| Resources {
            cpu_millis: cpu,
            memory_bytes: memory,
            gpu: None,
            raw: BTreeMap::from([("cpu".to_owned(), "x".to_owned())]),
        };
        assert!(check_resources(&resources(Some(2000), Some(6 << 20)), Some(2)).is_ok());
        assert!(check_resources(&resources(Some(1_000_000), None), None).is_ok());
        for (bad, rule) in [
            (resources(Some(2001), None), "more than the 2 CPUs"),
            (resources(Some(9), None), "minimum of 10m"),
            (resources(None, Some(1 << 20)), "minimum of 6Mi"),
        ] {
            let error = check_resources(&bad, Some(2)).unwrap_err().to_string();
            assert!(error.contains(rule), "{error}");
        }
    }

    #[test]
    fn execd_wraps_the_user_command() {
        let body = container_body(
            &request(&["python app.py"]),
            &DockerSettings::default(),
            vec![],
            &[],
            true,
        );
        assert_eq!(body.entrypoint.unwrap(), vec![BOOTSTRAP]);
        assert_eq!(body.cmd.unwrap(), vec!["python", "app.py"]);
    }

    #[test]
    fn operator_env_and_binds_come_first_and_the_request_wins() {
        let settings = DockerSettings {
            sandbox_env: crate::config::SandboxEnv(BTreeMap::from([
                ("A".to_owned(), "operator".to_owned()),
                ("CA".to_owned(), "/etc/ca.crt".to_owned()),
            ])),
            sandbox_binds: vec!["/opt/ca.crt:/etc/ca.crt:ro".to_owned()],
            execd_run_as_init: true,
            ..DockerSettings::default()
        };
        let binds = vec!["/data:/data".to_owned()];
        let body = container_body(
            &request(&["sleep", "1"]),
            &settings,
            binds.clone(),
            &[],
            false,
        );
        assert_eq!(body.env.unwrap(), vec!["CA=/etc/ca.crt", "A=1", "EMPTY="]);
        assert_eq!(
            body.host_config.unwrap().binds.unwrap(),
            vec!["/opt/ca.crt:/etc/ca.crt:ro", "/data:/data"]
        );
        let with_execd = container_body(&request(&["sleep", "1"]), &settings, binds, &[], true);
        assert_eq!(
            with_execd.env.unwrap().last().map(String::as_str),
            Some("EXECD_INIT=1"),
            "EXECD_INIT only when execd is injected, and after the request's variables"
        );
    }

    #[test]
    fn splits_single_element_entrypoints_like_a_shell() {
        assert_eq!(
            shell_words(r#"python -c "print('a b')" x\ y"#),
            vec!["python", "-c", "print('a b')", "x y"]
        );
        assert_eq!(shell_words("  a   ''  b "), vec!["a", "", "b"]);
        assert_eq!(user_command(&["one".to_owned()]), vec!["one"]);
    }
}
