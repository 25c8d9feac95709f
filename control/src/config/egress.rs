//! `[egress]`: the file's form and OpenSandbox 1.1.1's rules for it.
//!
//! Sandgate has no egress sidecar yet, so only `image`, `mode` and
//! `disable_ipv6` reach [`EgressConfig`]; the rest is validated so a file
//! OpenSandbox refuses is refused here too. Messages about
//! `upstream_proxy` never repeat its values: they may carry credentials.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::model::{EgressConfig, RuntimeType};
use super::quantity;
use super::url::{self, Authority};
use sandgate_shared::problems::Problems;

/// `[egress]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEgress {
    /// Egress sidecar image; needed for `networkPolicy`.
    pub image: Option<String>,
    /// `dns` (default) or `dns+nft`.
    pub mode: Option<String>,
    /// Disables IPv6 inside sandboxes that have a network policy (default true).
    pub disable_ipv6: Option<bool>,
    /// OTLP/HTTP endpoint where the sidecar exports metrics (`http(s)://host...`).
    pub otlp_endpoint: Option<String>,
    /// How long the Docker runtime waits for the sidecar to be ready, greater than 0.
    pub readiness_timeout_seconds: Option<f64>,
    /// Kubernetes resource requests of the sidecar.
    pub requests: Option<BTreeMap<String, String>>,
    /// Kubernetes resource limits of the sidecar.
    pub limits: Option<BTreeMap<String, String>>,
    /// `[egress.upstream_proxy]`: a chained CONNECT proxy; needs `mode = "dns+nft"`.
    pub upstream_proxy: Option<RawUpstreamProxy>,
}

/// `[egress.upstream_proxy]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamProxy {
    /// `http://host[:port]` or `https://host[:port]`; required.
    pub url: Option<String>,
    /// The whole `Proxy-Authorization` value; a secret.
    pub authorization: Option<String>,
    /// Docker only: absolute path of a PEM CA bundle on the engine host.
    pub ca_cert_path: Option<String>,
    /// Kubernetes only: Secret holding the CA bundle.
    pub ca_secret_name: Option<String>,
}

/// Validates `[egress]`; `runtime` is `None` when `runtime.type` was invalid.
pub(crate) fn validate(
    raw: RawEgress,
    runtime: Option<RuntimeType>,
    p: &mut Problems,
) -> EgressConfig {
    let modes = [("dns", "dns"), ("dns+nft", "dns+nft")];
    let mode = p.choice("egress.mode", raw.mode.as_deref(), &modes, "dns");
    if let Some(endpoint) = raw.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        otlp_endpoint(endpoint, p);
    }
    if let Some(v) = raw
        .readiness_timeout_seconds
        .filter(|v| v.is_nan() || *v <= 0.0)
    {
        p.push(
            "egress.readiness_timeout_seconds",
            format!("{v} must be greater than 0"),
        );
    }
    resources(raw.requests.as_ref(), raw.limits.as_ref(), p);
    if let Some(proxy) = &raw.upstream_proxy {
        if mode.is_some_and(|m| m != "dns+nft") {
            p.push(
                "egress.upstream_proxy",
                "requires egress.mode = \"dns+nft\"",
            );
        }
        upstream_proxy(proxy, runtime, p);
    }
    EgressConfig {
        image: p.non_blank("egress.image", raw.image),
        mode: mode.unwrap_or("dns").to_owned(),
        disable_ipv6: raw.disable_ipv6.unwrap_or(true),
    }
}

fn otlp_endpoint(endpoint: &str, p: &mut Problems) {
    let ok = url::authority(endpoint)
        .is_some_and(|a| matches!(a.scheme.as_str(), "http" | "https") && a.has_host());
    if !ok {
        p.push(
            "egress.otlp_endpoint",
            format!("{endpoint:?} must be an http(s) URL with a collector host (the sidecar exports OTLP over HTTP)"),
        );
    }
}

/// `requests` and `limits`: Kubernetes names and quantities, each request at most its limit.
fn resources(
    requests: Option<&BTreeMap<String, String>>,
    limits: Option<&BTreeMap<String, String>>,
    p: &mut Problems,
) {
    let mut parsed: [BTreeMap<&str, f64>; 2] = Default::default();
    for (index, (table, map)) in [("requests", requests), ("limits", limits)]
        .into_iter()
        .enumerate()
    {
        for (name, text) in map.into_iter().flatten() {
            let key = format!("egress.{table}.{name}");
            if !quantity::is_resource_name(name) {
                p.push(
                    key,
                    format!("{name:?} is not a Kubernetes container resource name"),
                );
                continue;
            }
            match quantity::parse(text).filter(|v| *v >= 0.0) {
                Some(value) => {
                    parsed[index].insert(name, value);
                }
                None => p.push(
                    key,
                    format!("{text:?} is not a non-negative Kubernetes quantity"),
                ),
            }
        }
    }
    let [requests, limits] = &parsed;
    for (name, request) in requests {
        if limits.get(name).is_some_and(|limit| request > limit) {
            p.push(
                format!("egress.requests.{name}"),
                format!("must not exceed egress.limits.{name}"),
            );
        }
    }
}

fn upstream_proxy(raw: &RawUpstreamProxy, runtime: Option<RuntimeType>, p: &mut Problems) {
    match raw.url.as_deref() {
        None => p.push("egress.upstream_proxy.url", "required"),
        Some(text) => {
            if let Err(why) = proxy_url(text.trim()) {
                p.push("egress.upstream_proxy.url", why);
            }
        }
    }
    if raw
        .authorization
        .as_deref()
        .is_some_and(|a| a.contains(['\r', '\n']))
    {
        p.push(
            "egress.upstream_proxy.authorization",
            "must not contain newlines",
        );
    }
    if let Some(path) = raw.ca_cert_path.as_deref().map(str::trim) {
        let why = match path {
            "" => Some("must not be empty"),
            _ if path.contains('\0') => Some("must not contain NUL"),
            _ if !path.starts_with('/') || path.contains(':') => {
                Some("must be an absolute POSIX path without ':'")
            }
            _ => None,
        };
        if let Some(why) = why {
            p.push("egress.upstream_proxy.ca_cert_path", why);
        }
        if runtime == Some(RuntimeType::Kubernetes) {
            p.push(
                "egress.upstream_proxy.ca_cert_path",
                "requires runtime.type = \"docker\"",
            );
        }
    }
    if let Some(name) = raw.ca_secret_name.as_deref().map(str::trim) {
        if name.is_empty() || !quantity::is_dns_subdomain(name) {
            p.push(
                "egress.upstream_proxy.ca_secret_name",
                "must be a DNS-1123 subdomain",
            );
        }
        if runtime == Some(RuntimeType::Docker) {
            p.push(
                "egress.upstream_proxy.ca_secret_name",
                "requires runtime.type = \"kubernetes\"",
            );
        }
    }
}

/// OpenSandbox's (and the egress sidecar's) rules for the proxy URL. The
/// error never contains the URL.
fn proxy_url(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("must not be empty");
    }
    if text.chars().any(|c| c < ' ' || c == '\x7f') {
        return Err("control characters are not allowed");
    }
    if !text.contains("://") {
        return Err("missing scheme; want http://host:port or https://host:port");
    }
    let Some(Authority {
        scheme,
        netloc,
        path,
        host,
        port,
    }) = url::authority(text)
    else {
        return Err("invalid URL");
    };
    if scheme != "http" && scheme != "https" {
        return Err("unsupported scheme; want http or https");
    }
    if netloc.contains('@') {
        return Err("userinfo is not allowed; use authorization for credentials");
    }
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return Err("missing host");
    };
    if text.contains(['?', '#']) {
        return Err("query and fragment are not allowed");
    }
    if !matches!(path.as_str(), "" | "/") {
        return Err("path is not allowed");
    }
    if port
        .as_deref()
        .is_some_and(|p| !p.is_empty() && !valid_port(p))
    {
        return Err("invalid port; want 1-65535");
    }
    if !url::valid_host(&host, netloc.starts_with('[')) {
        return Err("invalid host");
    }
    Ok(())
}

fn valid_port(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u16>().is_ok_and(|n| n >= 1)
}
