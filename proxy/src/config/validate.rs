//! Turns a [`RawConfig`] into a [`Config`]: defaults, environment overrides
//! and every rule, with all problems collected before giving up.
//!
//! Each check records its problem against the dotted key and carries on with
//! the default, so later checks still run. Defaults live next to the rule
//! that guards them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::access;
use super::env::EnvSource;
use super::model::{
    AdminConfig, Config, HostPolicy, LogConfig, RouteMode, RoutingConfig, ServerConfig,
    TimeoutConfig, TlsConfig,
};
use super::problems::{ConfigErrors, Problems, ProxyChecks};
use super::raw::{RawAdmin, RawConfig, RawLog, RawRouting, RawServer, RawTimeouts, RawTls};

/// The default plain-HTTP listener (OpenSandbox's ingress port, loopback only).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 28888);
/// The default admin listener.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 28889);
/// The default wildcard domain (`*.localhost` resolves to loopback in most resolvers).
pub const DEFAULT_WILDCARD_DOMAIN: &str = "sandbox.localhost";

/// Validates `raw`, reading the overrides `SANDGATE_ROUTES_TOKEN` and
/// `SANDGATE_EDGE_API_KEY` from `env`. Every problem is reported, each
/// naming its key; dubious but valid settings become [`Config::warnings`].
pub fn validate(raw: RawConfig, env: &dyn EnvSource) -> Result<Config, ConfigErrors> {
    let mut p = Problems::default();
    let mut warnings = Vec::new();
    let server = server(raw.server, &mut p);
    let tls = tls(raw.tls, &mut p, &mut warnings);
    let admin = admin(raw.admin, &mut p);
    check_listeners_distinct(&server, tls.as_ref(), &admin, &mut p);
    let config = Config {
        server,
        tls,
        admin,
        routing: routing(raw.routing, &mut p, &mut warnings),
        timeouts: timeouts(&raw.timeouts, &mut p),
        control: access::control(raw.control, env, &mut p, &mut warnings),
        auth: access::auth(raw.auth, env, &mut p),
        secure_access: access::secure_access(raw.secure_access, &mut p),
        log: log(raw.log, &mut p),
        warnings,
    };
    p.finish(config)
}

fn seconds(value: u64) -> Duration {
    Duration::from_secs(value)
}

/// `Some(duration)`, or `None` for zero ("no limit").
fn optional_seconds(value: u64) -> Option<Duration> {
    (value > 0).then(|| seconds(value))
}

// === sections ===

fn server(raw: RawServer, p: &mut Problems) -> ServerConfig {
    let listen = match raw.listen {
        Some(list) => p.addresses("server.listen", list.into_vec()),
        None => vec![DEFAULT_LISTEN],
    };
    let threads = p.in_range_or("server.threads", raw.threads, 1..=1024, 2);
    let grace = p.in_range_or(
        "server.grace_period_seconds",
        raw.grace_period_seconds,
        0..=3600,
        10,
    );
    ServerConfig {
        listen,
        threads: usize::try_from(threads).unwrap_or(2),
        grace_period: seconds(grace),
        h2c: raw.h2c.unwrap_or(true),
    }
}

/// `[tls]` is on when `enabled = true`, or when `enabled` is absent and
/// `listen`, `cert_file` or `key_file` is set (`http2` alone does not turn
/// it on, and is ignored without a warning while it is off: its default is
/// a valid setting either way).
fn tls(raw: RawTls, p: &mut Problems, warnings: &mut Vec<String>) -> Option<TlsConfig> {
    let set = [
        ("tls.listen", raw.listen.is_some()),
        ("tls.cert_file", raw.cert_file.is_some()),
        ("tls.key_file", raw.key_file.is_some()),
    ];
    let any_set = set.iter().any(|(_, present)| *present);
    if !raw.enabled.unwrap_or(any_set) {
        for (key, _) in set.iter().filter(|(_, present)| *present) {
            warnings.push(format!("{key}: ignored because tls.enabled = false"));
        }
        return None;
    }
    let listen = match raw.listen {
        Some(list) => p.addresses("tls.listen", list.into_vec()),
        None => {
            p.push("tls.listen", "required when TLS is enabled");
            Vec::new()
        }
    };
    let cert_file = pem_file("tls.cert_file", raw.cert_file, p);
    let key_file = pem_file("tls.key_file", raw.key_file, p);
    Some(TlsConfig {
        listen,
        cert_file: cert_file.unwrap_or_default(),
        key_file: key_file.unwrap_or_default(),
        http2: raw.http2.unwrap_or(true),
    })
}

/// A readable file containing a PEM block.
fn pem_file(key: &str, value: Option<String>, p: &mut Problems) -> Option<PathBuf> {
    let Some(text) = value.filter(|text| !text.trim().is_empty()) else {
        p.push(key, "required when TLS is enabled");
        return None;
    };
    let path = PathBuf::from(text);
    match std::fs::read(&path) {
        Ok(bytes) if contains(&bytes, b"-----BEGIN ") => Some(path),
        Ok(_) => {
            p.push(
                key,
                format!(
                    "{} is not a PEM file (no \"-----BEGIN\" line)",
                    path.display()
                ),
            );
            None
        }
        Err(error) => {
            p.push(key, format!("cannot read {}: {error}", path.display()));
            None
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn admin(raw: RawAdmin, p: &mut Problems) -> AdminConfig {
    let listen = match raw.listen {
        Some(text) => p.addresses("admin.listen", vec![text]).first().copied(),
        None => Some(DEFAULT_ADMIN_LISTEN),
    };
    AdminConfig {
        listen: listen.unwrap_or(DEFAULT_ADMIN_LISTEN),
    }
}

/// No two listeners may bind the same port on overlapping addresses.
fn check_listeners_distinct(
    server: &ServerConfig,
    tls: Option<&TlsConfig>,
    admin: &AdminConfig,
    p: &mut Problems,
) {
    let mut all: Vec<(&str, SocketAddr)> = server
        .listen
        .iter()
        .map(|a| ("server.listen", *a))
        .collect();
    if let Some(tls) = tls {
        all.extend(tls.listen.iter().map(|a| ("tls.listen", *a)));
    }
    all.push(("admin.listen", admin.listen));
    for (i, (key, addr)) in all.iter().enumerate() {
        let clash = all[..i]
            .iter()
            .find(|(other_key, other)| *other_key != *key && overlaps(*addr, *other));
        if let Some((other_key, other)) = clash {
            p.push(*key, format!("{addr} collides with {other_key} {other}"));
        }
    }
}

fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn routing(raw: RawRouting, p: &mut Problems, warnings: &mut Vec<String>) -> RoutingConfig {
    let modes = match raw.modes {
        Some(names) => modes(&names, p),
        None => RouteMode::ALL.to_vec(),
    };
    let domains_set = raw.wildcard_domains.is_some();
    let wildcard_domains = match raw.wildcard_domains {
        Some(list) => domains(list, p),
        None => vec![DEFAULT_WILDCARD_DOMAIN.to_owned()],
    };
    if modes.contains(&RouteMode::Wildcard) && wildcard_domains.is_empty() && domains_set {
        p.push(
            "routing.wildcard_domains",
            "must list at least one domain while the \"wildcard\" mode is enabled",
        );
    }
    if !modes.contains(&RouteMode::Wildcard) && domains_set {
        warnings.push(
            "routing.wildcard_domains: ignored because the \"wildcard\" mode is not enabled"
                .to_owned(),
        );
    }
    let wait = p.in_range_or(
        "routing.pending_wait_seconds",
        raw.pending_wait_seconds,
        0..=3600,
        30,
    );
    let unknown_wait = p.in_range_or(
        "routing.unknown_wait_ms",
        raw.unknown_wait_ms,
        0..=60_000,
        1000,
    );
    let policies = [
        ("preserve", HostPolicy::Preserve),
        ("upstream", HostPolicy::Upstream),
    ];
    RoutingConfig {
        modes,
        wildcard_domains,
        pending_wait: seconds(wait),
        unknown_wait: Duration::from_millis(unknown_wait),
        host_policy: p.choice_or(
            "routing.host_policy",
            raw.host_policy.as_deref(),
            &policies,
            HostPolicy::Preserve,
        ),
    }
}

fn modes(names: &[String], p: &mut Problems) -> Vec<RouteMode> {
    if names.is_empty() {
        p.push("routing.modes", "must enable at least one mode");
    }
    let choices = RouteMode::ALL.map(|mode| (mode.as_str(), Some(mode)));
    let mut out = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let key = format!("routing.modes[{index}]");
        match p.choice_or(&key, Some(name), &choices, None) {
            Some(mode) if out.contains(&mode) => p.push(key, format!("{name:?} is listed twice")),
            Some(mode) => out.push(mode),
            None => {}
        }
    }
    // Kept in examination order, whatever order the file lists them in.
    out.sort_by_key(|mode| RouteMode::ALL.iter().position(|m| m == mode));
    out
}

fn domains(list: Vec<String>, p: &mut Problems) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (index, text) in list.into_iter().enumerate() {
        let key = format!("routing.wildcard_domains[{index}]");
        let domain = text.trim().to_ascii_lowercase();
        if let Err(why) = check_domain(&domain) {
            p.push(key, format!("{text:?} {why}"));
        } else if out.contains(&domain) {
            p.push(key, format!("{text:?} is listed twice"));
        } else {
            out.push(domain);
        }
    }
    out
}

/// A DNS name without wildcard, port or trailing dot; the error completes "`<domain>` ...".
fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.starts_with("*.") || domain.starts_with('.') {
        return Err(
            "must be the suffix only, e.g. \"sandbox.example.com\" for *.sandbox.example.com",
        );
    }
    if domain.is_empty() || domain.len() > 253 {
        return Err("must be a DNS name of 1 to 253 characters");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if domain.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("must be a DNS name: labels of letters, digits and inner hyphens, without a port")
    }
}

fn timeouts(raw: &RawTimeouts, p: &mut Problems) -> TimeoutConfig {
    let connect = p.in_range_or("timeouts.connect_ms", raw.connect_ms, 1..=600_000, 5000);
    let idle = p.in_range_or("timeouts.idle_seconds", raw.idle_seconds, 0..=86_400, 300);
    let total = p.in_range_or("timeouts.total_seconds", raw.total_seconds, 0..=604_800, 0);
    TimeoutConfig {
        connect: Duration::from_millis(connect),
        idle: optional_seconds(idle),
        total: optional_seconds(total),
    }
}

fn log(raw: RawLog, p: &mut Problems) -> LogConfig {
    let levels = ["trace", "debug", "info", "warn", "error"].map(|level| (level, level));
    let lower = raw.level.map(|level| level.trim().to_ascii_lowercase());
    LogConfig {
        level: p
            .choice_or("log.level", lower.as_deref(), &levels, "info")
            .to_owned(),
        access_log: raw.access_log.unwrap_or(true),
    }
}
