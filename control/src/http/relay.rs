//! `/sandboxes/{id}/proxy/{port}/...`: the server-proxy path that SDKs use
//! with `use_server_proxy`. The control plane does not forward to sandboxes
//! itself: it relays the request, unchanged but for hop-by-hop headers, its
//! own API key and the routing headers (`sandgate_shared::headers::
//! RELAY_STRIPPED`, the list the edge proxy strips too), to the edge proxy, whose server-proxy route mode does
//! the routing, access checks, state handling and forwarding. WebSocket
//! upgrades are relayed as raw byte tunnels.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use sandgate_shared::framing::removable_by_connection;
use sandgate_shared::headers::HOP_BY_HOP;

use super::AppState;
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

/// The handler for every method on the server-proxy paths.
pub async fn relay(State(state): State<AppState>, request: Request) -> Response {
    let Some(relay) = state.relay.clone() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::UNKNOWN,
            "The server proxy needs an edge proxy: set [sandgate] edge_proxy_url.",
        )
        .into_response();
    };
    match forward(&relay, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn forward(relay: &Arc<Relay>, mut request: Request) -> Result<Response, ApiError> {
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
        tokio::spawn(tunnel(downstream, upstream));
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

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|name| removable_by_connection(name))
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

async fn tunnel(downstream: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (Ok(downstream), Ok(upstream)) = (downstream.await, upstream.await) else {
        tracing::debug!("a relayed upgrade did not complete");
        return;
    };
    let (mut client, mut sandbox) = (TokioIo::new(downstream), TokioIo::new(upstream));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut sandbox).await {
        tracing::debug!(%error, "relayed upgrade tunnel ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-hop-temp"),
        );
        headers.insert("x-hop-temp", HeaderValue::from_static("1"));
        headers.insert("x-trace", HeaderValue::from_static("2"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(
            headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-trace"]
        );
    }

    #[test]
    fn connection_cannot_remove_the_framing_or_the_host() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("Content-Length, Host, Transfer-Encoding"),
        );
        headers.insert("content-length", HeaderValue::from_static("2"));
        headers.insert("host", HeaderValue::from_static("control.test"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers["content-length"], "2");
        assert_eq!(headers["host"], "control.test");
    }

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

    #[test]
    fn recognises_upgrades_in_token_lists() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&headers));
        headers.remove("upgrade");
        assert!(!wants_upgrade(&headers));
    }
}
