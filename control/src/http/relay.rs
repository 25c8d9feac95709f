//! The server-proxy path's relay mode (an edge proxy is configured): the
//! request goes to the edge proxy unchanged but for hop-by-hop headers, the
//! control plane's own API key and the routing headers
//! (`sandgate_shared::headers::RELAY_STRIPPED`, the list the edge proxy
//! strips too); the edge's server-proxy route mode does the routing,
//! access checks, state handling and forwarding. WebSocket upgrades are
//! relayed as raw byte tunnels.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::hop::{self, strip_hop_by_hop, wants_upgrade};
use crate::error::{ApiError, codes};

/// The relay to the edge proxy.
pub struct Relay {
    edge: Uri,
    client: Client<HttpConnector, Body>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("edge", &self.edge).finish()
    }
}

impl Relay {
    /// A relay to the edge proxy at `edge` (`http://host:port`).
    pub fn new(edge: Uri) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            edge,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

/// Relays `request` to the edge proxy and its answer back.
pub async fn relay(relay: &Relay, mut request: Request) -> Result<Response, ApiError> {
    let upgrade = wants_upgrade(request.headers());
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let outbound = outbound_request(relay, request, upgrade)?;
    let mut response = relay.client.request(outbound).await.map_err(|e| {
        ApiError::internal(
            StatusCode::BAD_GATEWAY,
            codes::UNKNOWN,
            "The server proxy could not reach the edge proxy.",
            &e,
        )
    })?;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(downstream) = downstream_upgrade
    {
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(hop::tunnel(downstream, upstream));
    }
    let (parts, body) = response.into_parts();
    let mut response = Response::from_parts(parts, Body::new(body));
    if !upgrade {
        strip_hop_by_hop(response.headers_mut());
    }
    Ok(response)
}

fn outbound_request(
    relay: &Relay,
    request: Request,
    upgrade: bool,
) -> Result<hyper::Request<Body>, ApiError> {
    let (mut parts, body) = request.into_parts();
    // Under `/v1` the router strips the prefix; relay what the client sent.
    let original = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|o| o.0.clone());
    let original = original.unwrap_or_else(|| parts.uri.clone());
    let path = original.path_and_query().map_or("/", |p| p.as_str());
    let authority = relay
        .edge
        .authority()
        .map(|a| a.as_str())
        .unwrap_or_default();
    parts.uri = format!("http://{authority}{path}")
        .parse()
        .map_err(|e| ApiError::invalid(format!("path: cannot be relayed: {e}")))?;
    let original_host = parts.headers.get(header::HOST).cloned();
    if !upgrade {
        strip_hop_by_hop(&mut parts.headers);
    }
    parts.headers.remove(header::HOST);
    for name in sandgate_shared::headers::RELAY_STRIPPED {
        parts.headers.remove(name);
    }
    if let Some(host) = original_host
        && !parts.headers.contains_key("x-forwarded-host")
    {
        parts.headers.insert("x-forwarded-host", host);
    }
    if !parts.headers.contains_key("x-forwarded-proto") {
        parts
            .headers
            .insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    parts.version = http::Version::HTTP_11;
    Ok(hyper::Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relayed_request_loses_the_api_key_and_routing_headers_but_keeps_secure_access() {
        let relay = Relay::new(Uri::from_static("http://127.0.0.1:1"));
        let request = Request::builder()
            .uri("/sandboxes/sb/proxy/8080/x")
            .header("Open-Sandbox-Api-Key", "lifecycle-secret")
            .header("OpenSandbox-Ingress-To", "other-8080")
            .header("OPEN-SANDBOX-INGRESS", "other-8080")
            .header("OpenSandbox-Secure-Access", "token")
            .header("Authorization", "Bearer app")
            .body(Body::empty())
            .unwrap();
        let outbound = outbound_request(&relay, request, false).unwrap();
        let headers = outbound.headers();
        for name in sandgate_shared::headers::RELAY_STRIPPED {
            assert!(!headers.contains_key(name), "{name} was relayed");
        }
        assert_eq!(headers["opensandbox-secure-access"], "token");
        assert_eq!(headers["authorization"], "Bearer app");
    }
}
