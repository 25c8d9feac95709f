//! Validation of `[docker]`: OpenSandbox 1.1.1's rules, and the form the Docker runtime applies.
//!
//! `sandbox_env` and `sandbox_binds` are applied to every sandbox, as
//! OpenSandbox does; the binds are operator-trusted (OpenSandbox does not put
//! them through `storage.allowed_host_paths` either), so only their syntax is
//! checked. The port-publishing keys are checked and then unused: Sandgate
//! reaches sandboxes at their container address.

use std::net::{IpAddr, Ipv4Addr};

use super::model::{DEFAULT_DROP_CAPABILITIES, DockerConfig, SandboxEnv};
use super::raw::RawDocker;
use sandgate_shared::problems::Problems;

/// Docker's `-v` mode options accepted in `sandbox_binds`.
const BIND_OPTIONS: [&str; 14] = [
    "ro",
    "rw",
    "z",
    "Z",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
    "nocopy",
    "consistent",
    "cached",
    "delegated",
];

pub(crate) fn validate(raw: RawDocker, p: &mut Problems) -> DockerConfig {
    let pids_limit = match raw.pids_limit {
        None => Some(4096),
        Some(0) => None,
        Some(v) => p.at_least("docker.pids_limit", Some(v), 0),
    };
    let api_timeout = p.at_least("docker.api_timeout", raw.api_timeout, 1);
    port_range(raw.port_range_min, raw.port_range_max, p);
    if let Some(host) = raw.publish_host.as_deref() {
        publish_host(host, p);
    }
    DockerConfig {
        network_mode: p
            .non_blank("docker.network_mode", raw.network_mode)
            .unwrap_or_else(|| "bridge".to_owned()),
        api_timeout: std::time::Duration::from_secs(
            api_timeout
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(180),
        ),
        host_ip: raw.host_ip.filter(|h| !h.trim().is_empty()),
        drop_capabilities: drop_capabilities(raw.drop_capabilities, p),
        apparmor_profile: raw.apparmor_profile.filter(|s| !s.trim().is_empty()),
        no_new_privileges: raw.no_new_privileges.unwrap_or(true),
        seccomp_profile: raw.seccomp_profile.filter(|s| !s.trim().is_empty()),
        pids_limit,
        sandbox_env: sandbox_env(raw.sandbox_env.unwrap_or_default(), p),
        sandbox_binds: sandbox_binds(raw.sandbox_binds.unwrap_or_default(), p),
    }
}

/// The configured list (entries must not be blank), or OpenSandbox's nine.
fn drop_capabilities(raw: Option<Vec<String>>, p: &mut Problems) -> Vec<String> {
    let Some(caps) = raw else {
        return DEFAULT_DROP_CAPABILITIES.map(str::to_owned).to_vec();
    };
    for (index, cap) in caps.iter().enumerate() {
        if cap.trim().is_empty() {
            p.push(
                format!("docker.drop_capabilities[{index}]"),
                "must not be empty",
            );
        }
    }
    caps
}

/// Each bound in 1024..=65535 (defaults 40000 and 60000), min below max by at least 100.
fn port_range(min: Option<i64>, max: Option<i64>, p: &mut Problems) {
    let lo = p.in_range("docker.port_range_min", min, 1024..=65535);
    let hi = p.in_range("docker.port_range_max", max, 1024..=65535);
    let (Some(lo), Some(hi)) = (
        lo.or(min.is_none().then_some(40000)),
        hi.or(max.is_none().then_some(60000)),
    ) else {
        return;
    };
    if lo >= hi {
        p.push(
            "docker.port_range_min",
            format!("{lo} must be less than docker.port_range_max ({hi})"),
        );
    } else if hi - lo < 100 {
        p.push(
            "docker.port_range_max",
            format!("the range {lo}-{hi} is too narrow; it must span at least 100 ports"),
        );
    }
}

/// An IPv4 address; blank means the default `0.0.0.0`.
fn publish_host(host: &str, p: &mut Problems) {
    let host = host.trim();
    if host.is_empty() {
        return;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => {}
        Ok(IpAddr::V6(_)) => p.push(
            "docker.publish_host",
            format!("{host:?} must be an IPv4 address (OpenSandbox probes ports with an IPv4 socket)"),
        ),
        Err(_) => p.push(
            "docker.publish_host",
            format!("{host:?} must be an IP address (Docker publishes ports on addresses, not names); e.g. {}", Ipv4Addr::LOCALHOST),
        ),
    }
}

/// Names must be expressible as `NAME=value` in a container environment.
fn sandbox_env(env: std::collections::BTreeMap<String, String>, p: &mut Problems) -> SandboxEnv {
    for (name, value) in &env {
        let key = format!("docker.sandbox_env.{name}");
        if name.is_empty() || name.contains(['=', '\0']) {
            p.push(key, "the name must be non-empty, without '=' or NUL");
        } else if value.contains('\0') {
            p.push(key, "the value must not contain NUL");
        }
    }
    SandboxEnv(env)
}

/// `source:target[:options]`: source an absolute host path or a volume name, target absolute.
fn sandbox_binds(binds: Vec<String>, p: &mut Problems) -> Vec<String> {
    for (index, bind) in binds.iter().enumerate() {
        if let Err(why) = check_bind(bind) {
            p.push(
                format!("docker.sandbox_binds[{index}]"),
                format!("{bind:?} {why}"),
            );
        }
    }
    binds
}

fn check_bind(bind: &str) -> Result<(), String> {
    let parts: Vec<&str> = bind.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [source, target] => (*source, *target, None),
        [source, target, options] => (*source, *target, Some(*options)),
        _ => return Err("must be host_path:container_path[:options]".to_owned()),
    };
    let volume_name = source.starts_with(|c: char| c.is_ascii_alphanumeric())
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !source.starts_with('/') && !volume_name {
        return Err("needs an absolute host path or a volume name before the first ':'".to_owned());
    }
    if !target.starts_with('/') || target.contains('\0') {
        return Err("needs an absolute container path after the first ':'".to_owned());
    }
    for option in options.into_iter().flat_map(|o| o.split(',')) {
        if !BIND_OPTIONS.contains(&option) {
            let allowed = BIND_OPTIONS.join(", ");
            return Err(format!(
                "has the unknown option {option:?}; expected any of {allowed}"
            ));
        }
    }
    Ok(())
}
