//! Keeps the route index in step with the control plane: a pingora
//! background service that follows `GET /internal/v1/routes?since=<v>`.
//!
//! The stream is newline-delimited JSON [`RouteUpdate`]s. Updates are
//! applied to a local [`RouteTable`]; all complete lines of one received
//! chunk are applied first and then published with a single store, so a
//! burst costs one index build. On any failure the last good table stays in
//! service, one `warn!` marks the outage, and the client reconnects with
//! exponential backoff, resuming from its version.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use sandgate_shared::routes::{ApplyError, RouteTable, RouteUpdate};
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

use super::index::{BuildReport, RouteIndex};
use super::store::RouteStore;
use crate::config::ControlConfig;
use crate::metrics::Metrics;

/// The control plane sends a heartbeat about every 5 s; silence for this
/// long means the connection is dead even if TCP has not noticed.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Connecting and receiving the response head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first reconnect delay; doubled per failure up to `reconnect_max`.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// A single line longer than this is a protocol error, not a route table.
const MAX_LINE: usize = 256 * 1024 * 1024;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Why one stream session ended.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("cannot reach the control plane: {0}")]
    Connect(#[source] hyper_util::client::legacy::Error),
    #[error("the control plane did not answer within {0:?}")]
    Timeout(Duration),
    #[error(
        "the control plane rejected the route-stream token (HTTP {0}); check control.token / SANDGATE_ROUTES_TOKEN"
    )]
    Unauthorized(u16),
    #[error("the control plane answered HTTP {0}")]
    Status(u16),
    #[error("the route stream broke: {0}")]
    Body(#[source] hyper::Error),
    #[error("the route stream was silent for {0:?}")]
    Silent(Duration),
    #[error("the control plane closed the route stream")]
    Ended,
    #[error("a route-stream message is not valid JSON: {0}")]
    Decode(#[source] serde_json::Error),
    #[error("a route-stream line exceeds {MAX_LINE} bytes")]
    LineTooLong,
    #[error("a route-stream line is not UTF-8")]
    NotText(#[source] std::io::Error),
    #[error("the stream sent a change before any snapshot")]
    NoSnapshot,
    #[error("{0}; resynchronizing")]
    Gap(#[source] ApplyError),
    #[error("heartbeat version {heartbeat} is ahead of the table's {have}; resynchronizing")]
    Behind { heartbeat: u64, have: u64 },
}

/// The route-sync background service.
#[derive(Debug)]
pub struct RouteSync {
    store: Arc<RouteStore>,
    metrics: Arc<Metrics>,
    control: ControlConfig,
}

impl RouteSync {
    /// A sync that fills `store` from the control plane in `control`.
    pub fn new(store: Arc<RouteStore>, metrics: Arc<Metrics>, control: ControlConfig) -> Self {
        Self {
            store,
            metrics,
            control,
        }
    }

    /// Follows the stream forever, reconnecting on failure.
    pub async fn run(&self) {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(REQUEST_TIMEOUT));
        connector.set_nodelay(true);
        let client: HttpClient = Client::builder(TokioExecutor::new()).build(connector);
        let mut table: Option<RouteTable> = None;
        let mut backoff = INITIAL_BACKOFF;
        let mut in_outage = false;
        loop {
            let mut progressed = false;
            let error = self.session(&client, &mut table, &mut progressed).await;
            if progressed {
                // The session delivered messages, so this failure starts a
                // new outage that deserves its own warning.
                backoff = INITIAL_BACKOFF;
                in_outage = false;
            }
            if in_outage {
                tracing::debug!(%error, "route stream attempt failed");
            } else {
                match table.as_ref() {
                    Some(t) => {
                        tracing::warn!(control.url = %self.control.url, routes.version = t.version, %error, "route stream lost; serving the last good route table and reconnecting")
                    }
                    None => {
                        tracing::warn!(control.url = %self.control.url, %error, "no route table yet; answering 503 and retrying")
                    }
                }
                in_outage = true;
            }
            tokio::time::sleep(jittered(backoff)).await;
            backoff = (backoff * 2).min(self.control.reconnect_max);
        }
    }

    /// One connection: request, then apply messages until something breaks.
    async fn session(
        &self,
        client: &HttpClient,
        table: &mut Option<RouteTable>,
        progressed: &mut bool,
    ) -> SyncError {
        let body = match self.open(client, table.as_ref().map(|t| t.version)).await {
            Ok(body) => body,
            Err(error) => return error,
        };
        tracing::info!(control.url = %self.control.url, "route stream connected");
        let mut body = body;
        let mut buffer = BytesMut::new();
        let mut lines = LinesCodec::new_with_max_length(MAX_LINE);
        loop {
            let frame = match tokio::time::timeout(STREAM_IDLE_TIMEOUT, body.frame()).await {
                Err(_) => return SyncError::Silent(STREAM_IDLE_TIMEOUT),
                Ok(None) => return SyncError::Ended,
                Ok(Some(Err(error))) => return SyncError::Body(error),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buffer.extend_from_slice(&data);
            let outcome = self.apply_lines(&mut lines, &mut buffer, table);
            if outcome.messages > 0 {
                *progressed = true;
                self.store.touch();
            }
            if let Some(table) = table.as_ref().filter(|_| outcome.changed) {
                self.publish(table);
            }
            if let Some(error) = outcome.error {
                return error;
            }
        }
    }

    /// Sends the request and checks the response head.
    async fn open(&self, client: &HttpClient, since: Option<u64>) -> Result<Incoming, SyncError> {
        let query = since.map(|v| format!("?since={v}")).unwrap_or_default();
        let uri = format!(
            "http://{}/internal/v1/routes{query}",
            self.control.authority
        );
        let mut request =
            http::Request::get(uri).header(http::header::ACCEPT, "application/x-ndjson");
        if let Some(token) = &self.control.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let Ok(request) = request.body(Empty::new()) else {
            return Err(SyncError::Status(0));
        };
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, client.request(request)).await {
            Err(_) => return Err(SyncError::Timeout(REQUEST_TIMEOUT)),
            Ok(Err(error)) => return Err(SyncError::Connect(error)),
            Ok(Ok(response)) => response,
        };
        match response.status().as_u16() {
            200 => Ok(response.into_body()),
            code @ (401 | 403) => Err(SyncError::Unauthorized(code)),
            code => Err(SyncError::Status(code)),
        }
    }

    /// Applies every complete line in `buffer`, leaving a partial last line there.
    fn apply_lines(
        &self,
        lines: &mut LinesCodec,
        buffer: &mut BytesMut,
        table: &mut Option<RouteTable>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        loop {
            let line = match lines.decode(buffer) {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(LinesCodecError::MaxLineLengthExceeded) => {
                    outcome.error = Some(SyncError::LineTooLong);
                    break;
                }
                Err(LinesCodecError::Io(error)) => {
                    outcome.error = Some(SyncError::NotText(error));
                    break;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            outcome.messages += 1;
            let update = match serde_json::from_str::<RouteUpdate>(&line) {
                Ok(update) => update,
                Err(error) => {
                    outcome.error = Some(SyncError::Decode(error));
                    break;
                }
            };
            match apply(table, update) {
                Ok(changed) => outcome.changed |= changed,
                Err(error) => {
                    outcome.error = Some(error);
                    break;
                }
            }
        }
        outcome
    }

    /// Builds the index once and swaps it in.
    fn publish(&self, table: &RouteTable) {
        let previous = self.store.load_full();
        let first = !previous.is_loaded();
        let (index, report) = RouteIndex::build(table, &previous);
        let count = index.len();
        self.store.publish(index);
        self.metrics
            .routes_version
            .set(i64::try_from(table.version).unwrap_or(i64::MAX));
        self.metrics
            .routes
            .set(i64::try_from(count).unwrap_or(i64::MAX));
        self.report(&report);
        if first {
            tracing::info!(
                routes.version = table.version,
                routes.count = count,
                "first route table received; routing requests"
            );
        } else {
            tracing::debug!(
                routes.version = table.version,
                routes.count = count,
                "route table updated"
            );
        }
    }

    fn report(&self, report: &BuildReport) {
        for entry in &report.removed {
            self.metrics.forget(&entry.id, &entry.ports_seen());
        }
        for id in &report.bad_addresses {
            tracing::warn!(sandbox.id = %id, "route address is neither an IP address nor a DNS name; the sandbox is unreachable until it is fixed");
        }
        for id in &report.bad_digests {
            tracing::warn!(sandbox.id = %id, "route secure-access digest is not 64 hex characters; only signed routes can reach the sandbox");
        }
    }
}

/// What one chunk of the stream did.
#[derive(Debug, Default)]
struct Outcome {
    messages: usize,
    changed: bool,
    error: Option<SyncError>,
}

/// Applies one update; `Ok(true)` when the table changed.
fn apply(table: &mut Option<RouteTable>, update: RouteUpdate) -> Result<bool, SyncError> {
    match (table.as_mut(), update) {
        (_, RouteUpdate::Snapshot { table: snapshot }) => {
            *table = Some(snapshot);
            Ok(true)
        }
        (None, _) => Err(SyncError::NoSnapshot),
        (Some(have), RouteUpdate::Heartbeat { version }) if version > have.version => {
            Err(SyncError::Behind {
                heartbeat: version,
                have: have.version,
            })
        }
        (Some(have), update) => {
            let before = have.version;
            have.apply(update).map_err(SyncError::Gap)?;
            Ok(have.version != before)
        }
    }
}

/// `base` plus up to a quarter more, so proxies do not reconnect in lockstep.
fn jittered(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

#[async_trait]
impl BackgroundService for RouteSync {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            () = self.run() => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests;
