//! The server-proxy path's forward mode (no edge proxy configured): the
//! control plane itself sends the request to the sandbox's port and
//! streams the answer back, under the edge proxy's forwarding rules.
//!
//! - Target: the runtime address of a Running sandbox
//!   ([`SandboxService::proxy_target`]); a secured sandbox needs its
//!   `OpenSandbox-Secure-Access` token, as at the edge.
//! - Never forwarded: `sandgate_shared::headers::NEVER_TO_SANDBOX` (API key,
//!   routing headers, the secure-access token), hop-by-hop fields and those
//!   a `Connection` option names (never the framing fields); on internal
//!   calls (`/networkpolicy`) also a caller's `OPENSANDBOX-EGRESS-AUTH`.
//! - Rewritten: `X-Forwarded-For` gets the client's address after its
//!   chain, `X-Forwarded-Proto` and `X-Forwarded-Host` are this hop's; a
//!   root-relative `Location` stays under the proxy path.
//! - Bodies stream both ways without buffering; WebSocket (any) upgrades
//!   become byte tunnels. Connecting and the response head are timed out.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use sandgate_shared::headers::NEVER_TO_SANDBOX;
use sandgate_shared::signing::constant_time_eq;

use super::hop::{self, strip_hop_by_hop, wants_upgrade};
use super::upstream::{Upstream, UpstreamError};
use crate::sandbox::error::SandboxError;
use crate::sandbox::service::SandboxService;

/// The egress sidecar's credential, sent only by the server itself.
pub const EGRESS_AUTH: &str = "opensandbox-egress-auth";

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// Bounds and ports of the control plane's own forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardSettings {
    /// How long connecting to a sandbox port may take.
    pub connect_timeout: Duration,
    /// How long the response head may take once the request is sent.
    pub response_timeout: Duration,
    /// The egress sidecar's API port (`/networkpolicy` goes to its `/policy`).
    pub egress_port: u16,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            // OpenSandbox's server proxy waits 180 s for a backend.
            response_timeout: Duration::from_secs(180),
            egress_port: 18080,
        }
    }
}

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Unknown sandbox, a state that takes no traffic, or no address yet.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The sandbox is secured and the caller's token is missing or wrong.
    #[error("sandbox {id} requires its secure-access token")]
    SecureAccess {
        /// The sandbox.
        id: String,
    },
    /// The request target cannot be turned into an upstream URI.
    #[error("the request target cannot be forwarded: {0}")]
    Target(String),
    /// The sandbox port did not serve the request.
    #[error("port {port} of sandbox {id} at {authority}: {source}")]
    Upstream {
        /// The sandbox.
        id: String,
        /// The port.
        port: u16,
        /// Where it was sent (logged, never answered).
        authority: String,
        /// What failed.
        #[source]
        source: UpstreamError,
    },
}

/// Where one request goes.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The sandbox id from the path.
    pub sandbox_id: &'a str,
    /// The sandbox port.
    pub port: u16,
    /// Path and query to send (starting with `/`).
    pub path_and_query: String,
    /// The client-visible prefix a root-relative `Location` is put under
    /// (`None`: left as it is).
    pub location_prefix: Option<String>,
    /// A call the server makes for its own API (egress credential rules).
    pub internal: bool,
    /// The client's address, when known.
    pub client: Option<SocketAddr>,
}

/// Forwards server-proxy requests to sandboxes.
#[derive(Debug, Clone)]
pub struct Forwarder {
    upstream: Upstream,
    settings: ForwardSettings,
}

impl Forwarder {
    /// A forwarder bounded by `settings`.
    pub fn new(settings: ForwardSettings) -> Self {
        Self {
            upstream: Upstream::new(settings.connect_timeout, settings.response_timeout),
            settings,
        }
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &ForwardSettings {
        &self.settings
    }

    /// Sends `request` to `target` and returns the sandbox's answer.
    pub async fn forward(
        &self,
        service: &SandboxService,
        target: Target<'_>,
        mut request: Request,
    ) -> Result<Response, ForwardError> {
        let id = target.sandbox_id;
        let resolved = service.proxy_target(id, target.port).await?;
        check_secure_access(
            id,
            resolved.secure_access_token.as_deref(),
            request.headers(),
        )?;
        let upgrade = wants_upgrade(request.headers());
        let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let outbound = outbound_request(&target, &resolved.authority, request, upgrade)?;
        let mut response =
            self.upstream
                .send(outbound)
                .await
                .map_err(|source| ForwardError::Upstream {
                    id: id.to_owned(),
                    port: target.port,
                    authority: resolved.authority.clone(),
                    source,
                })?;
        let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switched && let Some(downstream) = downstream_upgrade {
            let upstream = hyper::upgrade::on(&mut response);
            tokio::spawn(hop::tunnel(downstream, upstream));
        }
        let (mut parts, body) = response.into_parts();
        if !switched {
            strip_hop_by_hop(&mut parts.headers);
        }
        if let Some(prefix) = target.location_prefix.as_deref() {
            keep_location_under(prefix, &mut parts.headers);
        }
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

/// OSEP-0011 on the server-proxy path: a secured sandbox needs the header.
fn check_secure_access(
    id: &str,
    expected: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ForwardError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let sent = headers
        .get(sandgate_shared::headers::SECURE_ACCESS)
        .map(|v| v.as_bytes().trim_ascii());
    match sent {
        Some(token) if constant_time_eq(token, expected.as_bytes()) => Ok(()),
        _ => Err(ForwardError::SecureAccess { id: id.to_owned() }),
    }
}

fn outbound_request(
    target: &Target<'_>,
    authority: &str,
    request: Request,
    upgrade: bool,
) -> Result<hyper::Request<Body>, ForwardError> {
    let (mut parts, body) = request.into_parts();
    parts.uri = format!("http://{authority}{}", target.path_and_query)
        .parse()
        .map_err(|e: http::uri::InvalidUri| ForwardError::Target(e.to_string()))?;
    let upgrade_to = parts.headers.get(header::UPGRADE).cloned();
    let client_host = parts.headers.get(header::HOST).cloned();
    strip_hop_by_hop(&mut parts.headers);
    for name in NEVER_TO_SANDBOX {
        parts.headers.remove(name);
    }
    if target.internal {
        parts.headers.remove(EGRESS_AUTH);
    }
    if upgrade && let Some(protocol) = upgrade_to {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol);
    }
    set_forwarded(
        &mut parts.headers,
        target.client.map(|c| c.ip()),
        client_host,
    );
    parts.version = http::Version::HTTP_11;
    Ok(hyper::Request::from_parts(parts, body))
}

/// `X-Forwarded-For`: the client's chain, then its address; proto and host
/// are this hop's (a client cannot choose them).
fn set_forwarded(headers: &mut HeaderMap, client: Option<IpAddr>, host: Option<HeaderValue>) {
    if let Some(ip) = client {
        let mut chain: Vec<String> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        chain.push(ip.to_string());
        if let Ok(value) = HeaderValue::from_str(&chain.join(", ")) {
            headers.insert(HeaderName::from_static(X_FORWARDED_FOR), value);
        }
    }
    headers.insert(
        HeaderName::from_static(X_FORWARDED_PROTO),
        HeaderValue::from_static("http"),
    );
    match host {
        Some(host) => headers.insert(HeaderName::from_static(X_FORWARDED_HOST), host),
        None => headers.remove(X_FORWARDED_HOST),
    };
}

/// A root-relative redirect from the sandbox stays under the proxy path.
fn keep_location_under(prefix: &str, headers: &mut HeaderMap) {
    let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if !location.starts_with('/') || location.starts_with("//") {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{prefix}{location}")) {
        headers.insert(header::LOCATION, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(internal: bool) -> Target<'static> {
        Target {
            sandbox_id: "sb",
            port: 8080,
            path_and_query: "/x?a=%2F&a=2".to_owned(),
            location_prefix: None,
            internal,
            client: Some("10.0.0.7:5000".parse().unwrap()),
        }
    }

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().uri("/sandboxes/sb/proxy/8080/x?a=%2F&a=2");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn never_forwards_credentials_routing_or_hop_headers() {
        let sent = request(&[
            ("Open-Sandbox-Api-Key", "lifecycle-secret"),
            ("OpenSandbox-Ingress-To", "other-8080"),
            ("OPEN-SANDBOX-INGRESS", "other-8080"),
            ("OpenSandbox-Secure-Access", "token"),
            ("Authorization", "Bearer app"),
            ("Connection", "x-hop, Content-Length"),
            ("Content-Length", "0"),
            ("x-hop", "1"),
            ("Host", "control.example"),
            ("X-Forwarded-For", "203.0.113.1"),
            ("X-Forwarded-Proto", "gopher"),
        ]);
        let out = outbound_request(&target(false), "127.0.0.1:9", sent, false).unwrap();
        assert_eq!(out.uri(), "http://127.0.0.1:9/x?a=%2F&a=2");
        let headers = out.headers();
        for name in NEVER_TO_SANDBOX {
            assert!(!headers.contains_key(name), "{name} was forwarded");
        }
        assert!(!headers.contains_key("x-hop"));
        assert!(!headers.contains_key("connection"));
        assert_eq!(headers["content-length"], "0");
        assert_eq!(headers["authorization"], "Bearer app");
        assert_eq!(headers["host"], "control.example");
        assert_eq!(headers["x-forwarded-for"], "203.0.113.1, 10.0.0.7");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "control.example");
    }

    #[test]
    fn only_internal_calls_drop_a_callers_egress_credential() {
        let out = |internal| {
            let sent = request(&[("OPENSANDBOX-EGRESS-AUTH", "forged")]);
            outbound_request(&target(internal), "127.0.0.1:9", sent, false).unwrap()
        };
        assert!(!out(true).headers().contains_key(EGRESS_AUTH));
        assert_eq!(out(false).headers()[EGRESS_AUTH], "forged");
    }

    #[test]
    fn upgrades_keep_only_their_own_hop_headers() {
        let sent = request(&[
            ("Connection", "Upgrade, x-hop"),
            ("Upgrade", "websocket"),
            ("x-hop", "1"),
            ("Sec-WebSocket-Key", "k"),
        ]);
        let out = outbound_request(&target(false), "127.0.0.1:9", sent, true).unwrap();
        let headers = out.headers();
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["sec-websocket-key"], "k");
        assert!(!headers.contains_key("x-hop"));
    }

    #[test]
    fn secure_access_needs_the_exact_token() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("opensandbox-secure-access", value.parse().unwrap());
            headers
        };
        assert!(check_secure_access("sb", None, &HeaderMap::new()).is_ok());
        assert!(check_secure_access("sb", Some("t0k"), &with(" t0k ")).is_ok());
        assert!(check_secure_access("sb", Some("t0k"), &with("t0K")).is_err());
        assert!(check_secure_access("sb", Some("t0k"), &HeaderMap::new()).is_err());
    }

    #[test]
    fn root_relative_redirects_stay_under_the_proxy_path() {
        let location = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::LOCATION, value.parse().unwrap());
            keep_location_under("/v1/sandboxes/sb/proxy/8080", &mut headers);
            headers[header::LOCATION].to_str().unwrap().to_owned()
        };
        assert_eq!(location("/login"), "/v1/sandboxes/sb/proxy/8080/login");
        assert_eq!(location("//cdn.example/x"), "//cdn.example/x");
        assert_eq!(location("https://example.com/"), "https://example.com/");
    }
}
