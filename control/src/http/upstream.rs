//! The control plane's HTTP/1.1 client to sandbox ports, for its own
//! server-proxy forwarding: pooled connections, a connect timeout, a
//! deadline for the response head, and failures sorted by what the caller
//! should hear (could not connect, no answer in time, broken exchange).
//! Bodies stream both ways; nothing is buffered here.

use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long an idle pooled connection to a sandbox is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Why a forwarded exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made (refused, unreachable, timed out).
    #[error("connecting failed")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// Connected, but the response head did not arrive in time.
    #[error("no response head within {0:?}")]
    Timeout(Duration),
    /// The connection broke, or the answer was not valid HTTP.
    #[error("the exchange failed")]
    Exchange(#[source] hyper_util::client::legacy::Error),
}

/// The client; cheap to share.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Body>,
    response_timeout: Duration,
}

impl Upstream {
    /// A client that gives up connecting after `connect_timeout` and waits
    /// `response_timeout` for a response head after connecting.
    pub fn new(connect_timeout: Duration, response_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        Self {
            client,
            response_timeout,
        }
    }

    /// Sends `request` (an absolute `http://` URI) and returns the response
    /// head with its body still streaming.
    pub async fn send(
        &self,
        request: hyper::Request<Body>,
    ) -> Result<hyper::Response<Incoming>, UpstreamError> {
        let exchange = self.client.request(request);
        match tokio::time::timeout(self.response_timeout, exchange).await {
            Err(_) => Err(UpstreamError::Timeout(self.response_timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) if error.is_connect() => Err(UpstreamError::Connect(error)),
            Ok(Err(error)) => Err(UpstreamError::Exchange(error)),
        }
    }
}
