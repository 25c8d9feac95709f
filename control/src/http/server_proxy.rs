//! `/sandboxes/{id}/proxy/{port}[/...]`: the server-proxy path that SDKs use
//! with `use_server_proxy`, in one of two modes chosen at startup: relayed
//! to the edge proxy when one is configured ([`super::relay`]), otherwise
//! forwarded by the control plane itself ([`super::forward`]). Either way
//! the path needs no API key (see [`super::auth`]). The server's own calls
//! to sandboxes (`/networkpolicy`) are always forwarded by the control plane.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, OriginalUri, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Deserialize;

use super::AppState;
use super::forward::{ForwardSettings, Forwarder, Target};
use super::relay::{self, Relay};
use crate::error::ApiError;

/// How server-proxy requests reach sandboxes, decided at startup.
#[derive(Debug)]
pub enum Mode {
    /// Through the edge proxy.
    Relay(Box<Relay>),
    /// Straight from the control plane.
    Forward,
}

/// The server proxy: its mode and the control plane's own forwarder.
#[derive(Debug)]
pub struct ServerProxy {
    /// Relay or forward.
    pub mode: Mode,
    /// The control plane's forwarding (forward mode and internal calls).
    pub forwarder: Forwarder,
}

impl ServerProxy {
    /// Relay when an edge proxy is configured, forward otherwise.
    pub fn new(edge: Option<axum::http::Uri>, forward: ForwardSettings) -> Self {
        let mode = match edge {
            Some(edge) => Mode::Relay(Box::new(Relay::new(edge))),
            None => Mode::Forward,
        };
        Self {
            mode,
            forwarder: Forwarder::new(forward),
        }
    }
}

/// The server-proxy routes (every method).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sandboxes/{sandbox_id}/proxy/{port}", any(handle))
        .route("/sandboxes/{sandbox_id}/proxy/{port}/", any(handle))
        .route("/sandboxes/{sandbox_id}/proxy/{port}/{*rest}", any(handle))
}

#[derive(Debug, Deserialize)]
struct ProxyPath {
    sandbox_id: String,
    port: String,
}

async fn handle(
    State(state): State<AppState>,
    Path(path): Path<ProxyPath>,
    request: Request,
) -> Response {
    let proxy = &state.server_proxy;
    let answered = match &proxy.mode {
        Mode::Relay(relay) => relay::relay(relay, request).await,
        Mode::Forward => forward(&state, &proxy.forwarder, path, request).await,
    };
    answered.unwrap_or_else(IntoResponse::into_response)
}

async fn forward(
    state: &AppState,
    forwarder: &Forwarder,
    path: ProxyPath,
    request: Request,
) -> Result<Response, ApiError> {
    let port = super::sandboxes::parse_port(&path.port)?;
    let (path_and_query, location_prefix) = split_target(&request);
    let target = Target {
        sandbox_id: &path.sandbox_id,
        port,
        path_and_query,
        location_prefix: Some(location_prefix),
        internal: false,
        client: client_address(request.extensions()),
    };
    Ok(forwarder.forward(&state.service, target, request).await?)
}

/// The part after `/sandboxes/{id}/proxy/{port}` (with the query, still
/// encoded as sent), and the client-visible path up to it.
fn split_target(request: &Request) -> (String, String) {
    let original = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().clone(), |o| o.0.clone());
    let full = original.path();
    // `/v1` (if any), then `/sandboxes/{id}/proxy/{port}`: five slashes in.
    let cut = full
        .match_indices('/')
        .nth(if full.starts_with("/v1/") { 5 } else { 4 })
        .map_or(full.len(), |(at, _)| at);
    let (prefix, rest) = full.split_at(cut);
    let rest = if rest.is_empty() { "/" } else { rest };
    let with_query = match original.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    (with_query, prefix.to_owned())
}

/// The client's address (present when served with connect info).
pub(super) fn client_address(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn split(uri: &str) -> (String, String) {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        split_target(&request)
    }

    #[test]
    fn splits_the_forwarded_target_from_the_proxy_prefix() {
        assert_eq!(
            split("/v1/sandboxes/sb/proxy/44772/files/search?path=%2Fw&x"),
            (
                "/files/search?path=%2Fw&x".to_owned(),
                "/v1/sandboxes/sb/proxy/44772".to_owned()
            )
        );
        assert_eq!(
            split("/sandboxes/sb/proxy/8080"),
            ("/".to_owned(), "/sandboxes/sb/proxy/8080".to_owned())
        );
        assert_eq!(
            split("/sandboxes/sb/proxy/8080/?q=1"),
            ("/?q=1".to_owned(), "/sandboxes/sb/proxy/8080".to_owned())
        );
        assert_eq!(split("/sandboxes/sb/proxy/8080/a//b").0, "/a//b");
    }
}
