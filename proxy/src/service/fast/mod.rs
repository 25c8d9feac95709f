//! [`EdgeApp`]: the listener's application. Plain HTTP/1.1 requests to
//! running sandboxes take a short path here; everything else goes through
//! pingora's proxy pipeline with [`EdgeProxy`](super::EdgeProxy).
//!
//! Why: pingora's HTTP/1 pipeline costs about 25 µs of CPU per request on
//! the benchmark machine (a header clone, two channels and a joined pair of
//! tasks, a boxed 14 KB future, a locked pool with a watch task per idle
//! connection, a timer per read and write), which is nginx's whole cost
//! per request (bench/results/proxy.md). The fast path parses the head
//! with httparse in place, runs the same routing and access checks
//! (`EdgeProxy::admit`), writes the upstream head in one buffer, reuses
//! upstream connections from a lock-free per-thread pool, forwards the
//! response body as it arrives (chunked bodies verbatim), and keeps one
//! lazily re-armed timer per connection.
//!
//! What takes pingora's path (the request is handed over, unread bytes
//! and all, through pingora's pipelined-prefix hook; when its extent is not
//! known, pingora serves the rest of that connection, pipelining on, so no
//! pipelined request is lost): HTTP/2 (ALPN on TLS,
//! or h2c on a plain connection that opens with the preface), HTTP/1.0,
//! upgrades (WebSocket), `Expect`, chunked or large (> 64 KiB) request
//! bodies, heads the fast parser refuses, and every request the proxy
//! answers itself before forwarding (no route, unknown or not running
//! sandbox, failed credentials, DNS upstreams). Answers are
//! then byte-for-byte the pipeline's. Failures after forwarding began
//! (connect refused, timeouts, a broken upstream) are answered here with
//! the same [`Reject`]s.

mod chunked;
mod exchange;
mod h2c;
mod head;
mod pool;
mod timer;
mod write;

#[cfg(test)]
mod differential;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, HttpServerOptions, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{ALPN, Stream};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use pingora::server::configuration::ServerConf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use self::h2c::Opening;
use self::head::{Parse, RequestHead};
use self::timer::Deadline;
use super::headers::{self, Plan};
use super::respond::{self, BodyFormat};
use super::route::RequestView;
use super::{Action, EdgeProxy, Outcome, RequestCtx, Routed, action};

/// How long an idle client connection waits for its next request
/// (pingora's HTTP/1 keep-alive default).
const KEEPALIVE: Duration = Duration::from_secs(60);

/// How long closing a client connection may take.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Read size of the client and upstream buffers.
const READ_SIZE: usize = 16 * 1024;

/// The proxy listener's application: fast path plus pingora's pipeline.
pub struct EdgeApp {
    edge: EdgeProxy,
    pipeline: Arc<HttpProxy<EdgeProxy>>,
}

impl EdgeApp {
    /// An application forwarding with `edge` (pingora's pipeline gets a
    /// copy); `h2c` as `server.h2c`.
    pub fn new(conf: &Arc<ServerConf>, edge: EdgeProxy, h2c: bool) -> Self {
        let mut pipeline = pingora::proxy::http_proxy(conf, edge.clone());
        if h2c {
            let mut options = HttpServerOptions::default();
            options.h2c = true;
            pipeline.server_options = Some(options);
        }
        let pipeline = Arc::new(pipeline);
        Self { edge, pipeline }
    }

    /// Whether plain connections that open with the HTTP/2 preface are
    /// served as HTTP/2 (set on the pipeline, which then accepts them).
    fn h2c(&self) -> bool {
        self.pipeline.server_options.as_ref().is_some_and(|o| o.h2c)
    }
}

impl std::fmt::Debug for EdgeApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeApp").field("edge", &self.edge).finish()
    }
}

#[async_trait]
impl ServerApp for EdgeApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.pipeline, stream, shutdown).await;
        }
        serve(self, stream, shutdown).await;
        None
    }

    async fn cleanup(&self) {
        self.pipeline.http_cleanup().await;
    }
}

/// What to do after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Read the next request.
    Continue,
    /// Finish sending and close.
    Close,
    /// Drop the connection (the client is gone or idle).
    Drop,
    /// Let pingora's pipeline serve the request at the start of the buffer:
    /// these many bytes of it when known, else everything buffered.
    Handover(Option<usize>),
}

/// Serves one client connection until it closes.
async fn serve(app: &Arc<EdgeApp>, mut stream: Stream, shutdown: &ShutdownWatch) {
    let mut conn = Conn::new(app, &stream, shutdown.clone());
    if app.h2c() && !conn.client.tls {
        match conn.opening(&mut stream).await {
            None => return,
            Some(Opening::H2c) => {
                if let Some(stream) = h2c::unread(stream, &conn.buf) {
                    let _ = ServerApp::process_new(&app.pipeline, stream, shutdown).await;
                }
                return;
            }
            Some(Opening::Http1) => {}
        }
    }
    loop {
        match conn.next(&mut stream).await {
            Step::Continue => {}
            Step::Close => {
                // Bounded: a TLS close or a stalled client must not hold the task.
                let deadline = Instant::now() + CLOSE_WAIT;
                let _ = conn.timer.run(deadline, stream.shutdown()).await;
                return;
            }
            Step::Drop => return,
            Step::Handover(extent) => {
                let mut session = ServerSession::new_http1(stream);
                session.set_keepalive(Some(KEEPALIVE.as_secs()));
                let prefix = match extent {
                    Some(len) => conn.buf.split_to(len),
                    None => conn.buf.split(),
                };
                // Unknown extent: the bytes handed over, or those pingora
                // reads for the body, may hold the next requests. pingora
                // then keeps them and serves the rest of the connection.
                session.set_pipelining_enabled(extent.is_none());
                session.set_pipelined_prefix(prefix);
                let Some(reused) = app.pipeline.process_new_http(session, shutdown).await else {
                    return;
                };
                let (reused, settings) = reused.consume();
                if extent.is_none() {
                    pipeline_rest(app, reused, settings, shutdown).await;
                    return;
                }
                stream = reused;
            }
        }
    }
}

/// Lets pingora's pipeline serve the rest of a connection, pipelined
/// requests it already read included (`settings` carry them).
async fn pipeline_rest(
    app: &EdgeApp,
    mut stream: Stream,
    mut settings: Option<HttpPersistentSettings>,
    shutdown: &ShutdownWatch,
) {
    loop {
        let mut session = ServerSession::new_http1(stream);
        match settings.take() {
            Some(settings) => settings.apply_to_session(&mut session),
            None => session.set_keepalive(Some(KEEPALIVE.as_secs())),
        }
        let Some(reused) = app.pipeline.process_new_http(session, shutdown).await else {
            return;
        };
        (stream, settings) = reused.consume();
    }
}

/// A request ready to forward; the upstream head is in `Conn::req_out`.
#[derive(Debug)]
struct Prepared {
    addr: SocketAddr,
    /// The request body's length.
    body_len: u64,
    /// Request body bytes still to read from the client.
    body_left: u64,
    /// Client bytes the head and buffered body took.
    consumed: usize,
    method: http::Method,
    format: BodyFormat,
    /// The client asked to close after this request.
    close: bool,
}

/// Progress of one exchange, for the answer, the log and metrics.
#[derive(Debug, Default)]
struct Progress {
    /// The status sent to the client (0: nothing sent yet).
    status: u16,
    sent: usize,
    received: usize,
}

/// One client connection's state, reused across its requests.
struct Conn<'a> {
    app: &'a EdgeApp,
    shutdown: ShutdownWatch,
    client: Client,
    /// Client bytes not yet consumed.
    buf: BytesMut,
    /// Upstream bytes not yet forwarded.
    up_buf: BytesMut,
    /// The upstream request head (and buffered body).
    req_out: Vec<u8>,
    /// The client response head (and first body bytes).
    res_out: Vec<u8>,
    timer: Deadline,
}

impl<'a> Conn<'a> {
    fn new(app: &'a EdgeApp, stream: &Stream, shutdown: ShutdownWatch) -> Self {
        let client_ip = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        Self {
            app,
            shutdown,
            client: Client {
                ip: client_ip,
                tls: stream.get_ssl_digest().is_some(),
            },
            buf: BytesMut::with_capacity(READ_SIZE),
            up_buf: BytesMut::with_capacity(READ_SIZE),
            req_out: Vec::with_capacity(1024),
            res_out: Vec::with_capacity(1024),
            timer: Deadline::new(),
        }
    }

    fn edge(&self) -> &'a EdgeProxy {
        &self.app.edge
    }

    /// Reads the next request head and forwards the request, or says why not.
    ///
    /// The request's clock (its duration in the log and metrics, and
    /// `timeouts.total_seconds`) starts with its first byte, not with the
    /// keep-alive wait before it.
    async fn next(&mut self, stream: &mut Stream) -> Step {
        if self.buf.is_empty()
            && let Some(step) = self.read_more(stream).await
        {
            return step;
        }
        let start = Instant::now();
        let mut ctx = RequestCtx::starting(start);
        let prepared = loop {
            let mut storage = head::storage();
            match head::parse_request(&self.buf, &mut storage) {
                Parse::Complete(head) => {
                    let out = &mut self.req_out;
                    match prepare(self.app, &self.client, out, &self.buf, &head, &mut ctx) {
                        Some(prepared) => {
                            self.buf.advance(prepared.consumed);
                            break prepared;
                        }
                        None => return Step::Handover(head.extent(&self.buf)),
                    }
                }
                Parse::Invalid => return Step::Handover(None),
                Parse::Partial if self.buf.len() > head::MAX_HEAD => return Step::Handover(None),
                Parse::Partial => {}
            }
            if let Some(step) = self.read_more(stream).await {
                return step;
            }
        };
        let mut progress = Progress::default();
        let limits = exchange::Limits::new(&self.edge().timeouts, start);
        let result = self
            .exchange(stream, &prepared, &limits, &mut progress)
            .await;
        let error = result.as_ref().err();
        let step = match &result {
            Ok(keep) if *keep && !*self.shutdown.borrow() => Step::Continue,
            Ok(_) => Step::Close,
            Err(error) => {
                self.fail(stream, &prepared, &mut ctx, &mut progress, error)
                    .await
            }
        };
        let outcome = Outcome {
            method: &prepared.method,
            status: progress.status,
            sent: progress.sent,
            received: progress.received,
            error: error.map(|e| e.etype().as_str()),
        };
        self.edge().finish(&ctx, &outcome);
        step
    }

    /// Reads until the first bytes tell h2c from HTTP/1 (`None`: the
    /// connection ended first). The bytes stay buffered for the HTTP/1 side.
    async fn opening(&mut self, stream: &mut Stream) -> Option<Opening> {
        loop {
            if let Some(opening) = h2c::classify(&self.buf) {
                return Some(opening);
            }
            if self.read_more(stream).await.is_some() {
                return None;
            }
        }
    }

    /// Waits for more client bytes (keep-alive wait, shutdown-aware).
    /// `Some(step)` when the connection ends instead.
    async fn read_more(&mut self, stream: &mut Stream) -> Option<Step> {
        if self.buf.is_empty() && *self.shutdown.borrow() {
            return Some(Step::Drop);
        }
        self.buf.reserve(READ_SIZE);
        self.timer.set(Instant::now() + KEEPALIVE);
        let read = tokio::select! {
            biased;
            read = stream.read_buf(&mut self.buf) => read,
            () = self.timer.expired() => return Some(Step::Drop),
            _ = self.shutdown.changed(), if self.buf.is_empty() => return Some(Step::Drop),
        };
        match read {
            Ok(0) | Err(_) => Some(Step::Drop),
            Ok(_) => None,
        }
    }
}

/// Facts of the client connection.
#[derive(Debug, Clone, Copy)]
struct Client {
    ip: Option<IpAddr>,
    tls: bool,
}

/// Routing and checks for a parsed `head` at the start of `buf`; writes
/// the upstream head, with the body bytes already read, to `out`. `None`
/// hands the request to pingora's pipeline.
fn prepare(
    app: &EdgeApp,
    client: &Client,
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead<'_, '_>,
    ctx: &mut RequestCtx,
) -> Option<Prepared> {
    if !head.is_fast() {
        return None;
    }
    // Framing the policy refuses is answered (400) on pingora's path.
    let length = headers::check(head.fields()).ok()?;
    let edge = &app.edge;
    let admitted = edge.admit(head, ctx).ok()?;
    if action(&admitted.entry) != Action::Forward {
        return None;
    }
    let port = admitted.entry.port(admitted.port, &edge.metrics);
    let addr = port.peer?;
    let method = http::Method::from_bytes(head.method.as_bytes()).ok()?;
    let fwd = edge.forwarding(client.ip, client.tls, Some(&port), None, true);
    let plan = Plan::new(head.fields(), length, &fwd);
    write::upstream_request(out, head, admitted.target.as_deref(), &plan);
    // The head and the body bytes already here go out in one write.
    // One length frames both what is declared upstream and what is sent.
    let body_len = length.unwrap_or(0);
    let available = buf.len() - head.len;
    let buffered = usize::try_from(body_len).map_or(available, |n| n.min(available));
    out.extend_from_slice(&buf[head.len..head.len + buffered]);
    port.metrics.opened();
    ctx.upstream = Some(addr);
    ctx.routed = Some(Routed {
        entry: admitted.entry,
        port,
    });
    Some(Prepared {
        addr,
        body_len,
        body_left: body_len - buffered as u64,
        consumed: head.len + buffered,
        method,
        format: respond::body_format(head.header(&http::header::ACCEPT)),
        close: head.facts.close,
    })
}
