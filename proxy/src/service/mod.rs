//! [`EdgeProxy`]: the pingora `ProxyHttp` implementation that routes each
//! request to a sandbox port.
//!
//! Per request: `request_filter` finds the route key, checks the edge key,
//! looks the sandbox up in the current index, checks secure access and the
//! sandbox state (holding requests to Pending sandboxes until the table
//! changes), and rewrites the path for URI and server-proxy modes.
//! `upstream_peer` hands pingora the pre-computed address,
//! `upstream_request_filter` applies the forwarding policy (`headers`, the
//! same edits as the fast path's),
//! `fail_to_proxy` turns connect and timeout errors into answers that name
//! the sandbox, and `logging` writes metrics and one access-log line.
//! Bodies are never buffered: pingora streams them, upgrades included.
//!
//! # Layout
//! - `route`: route keys from headers, hosts and paths.
//! - `access`: edge key and OSEP-0011 secure access.
//! - `headers`: the forwarding policy: the upstream request's header edits
//!   and the framing refused, for both paths.
//! - `hold`: waiting for Pending sandboxes.
//! - `respond`: the proxy's own JSON/HTML answers.

mod access;
mod fast;
mod headers;
mod hold;
mod respond;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::{HttpPeer, HttpUpstreamRequestPolicy};
use pingora::{Error, ErrorSource, ErrorType};
use sandgate_shared::api::SandboxState;
use tokio::time::Instant;

use self::hold::Step;
use self::route::RequestView;
use crate::config::{
    AuthConfig, Config, HostPolicy, RouteMode, RoutingConfig, SecureAccessConfig, TimeoutConfig,
};
use crate::error::{Reject, TOTAL_TIMEOUT};
use crate::metrics::Metrics;
use crate::routes::{PortState, RouteEntry, RouteStore, SecureAccess, Upstream};

/// How long an idle upstream connection stays in the reuse pool.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// Sent on every proxied response, as OpenSandbox's ingress does.
const POWERED_BY: (&str, &str) = ("reverse-proxy-server-powerby", "OpenSandbox-ingress");

pub use self::fast::EdgeApp;

/// The edge proxy.
#[derive(Debug, Clone)]
pub struct EdgeProxy {
    store: Arc<RouteStore>,
    metrics: Arc<Metrics>,
    routing: RoutingConfig,
    timeouts: TimeoutConfig,
    auth: AuthConfig,
    secure_access: SecureAccessConfig,
    access_log: bool,
}

/// Per-request state.
#[derive(Debug)]
pub struct RequestCtx {
    start: Instant,
    mode: Option<RouteMode>,
    /// The sandbox and port once the sandbox was found (even if then refused).
    target: Option<(Arc<str>, u16)>,
    routed: Option<Routed>,
    upstream: Option<SocketAddr>,
    reject: Option<&'static str>,
}

/// How a request ended, for metrics and the access log.
#[derive(Debug)]
pub(crate) struct Outcome<'a> {
    /// The request method.
    pub method: &'a http::Method,
    /// The status sent to the client (0: none).
    pub status: u16,
    /// Response body bytes sent to the client.
    pub sent: usize,
    /// Request body bytes read from the client.
    pub received: usize,
    /// The kind of error that ended the request, if any.
    pub error: Option<&'static str>,
}

/// The sandbox port a request goes to; present means the open-connections
/// gauge was incremented and `logging` must close it.
#[derive(Debug)]
struct Routed {
    entry: Arc<RouteEntry>,
    port: Arc<PortState>,
}

/// A request that passed routing and access checks (state not yet considered).
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The sandbox.
    pub entry: Arc<RouteEntry>,
    /// The port asked for.
    pub port: u16,
    /// The request target to forward (path and query) when it changes.
    pub target: Option<String>,
}

/// What the sandbox's state means for a request.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Forward,
    Hold,
    Reject(Reject),
}

impl EdgeProxy {
    /// A proxy routing with `store`, configured by `config`.
    pub fn new(config: &Config, store: Arc<RouteStore>, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            metrics,
            routing: config.routing.clone(),
            timeouts: config.timeouts,
            auth: config.auth.clone(),
            secure_access: config.secure_access.clone(),
            access_log: config.log.access_log,
        }
    }

    /// Routing, access checks and state handling; `Err` is answered by the proxy.
    async fn route(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<(), Reject> {
        let start = ctx.start;
        headers::check(headers::fields(&session.req_header().headers)).map_err(|r| r.reject())?;
        let admitted = {
            let req = session.req_header();
            let unknown_until = start + self.routing.unknown_wait;
            let wait = self.routing.pending_wait.max(self.routing.unknown_wait);
            hold::until_ready(&self.store, start, wait, || {
                let admitted = match self.admit(req, ctx) {
                    // A sandbox created a moment ago may not have reached
                    // this proxy yet: wait for the next table, briefly.
                    Err(reject) if reject.is_not_found() => {
                        return Ok(Step::WaitUntil(reject, unknown_until));
                    }
                    other => other?,
                };
                match action(&admitted.entry) {
                    Action::Forward => Ok(Step::Ready(admitted)),
                    Action::Hold => Ok(Step::WaitUntil(
                        Reject::pending(&admitted.entry.id),
                        start + self.routing.pending_wait,
                    )),
                    Action::Reject(reject) => Err(reject),
                }
            })
            .await?
        };
        if let Some(target) = admitted.target {
            let uri = http::Uri::try_from(target).map_err(|_| {
                Reject::invalid_route(
                    "the path",
                    &sandgate_shared::route_key::RouteParseError::NotARoutePath,
                )
            })?;
            session.req_header_mut().set_uri(uri);
        }
        let port = admitted.entry.port(admitted.port, &self.metrics);
        port.metrics.opened();
        ctx.routed = Some(Routed {
            entry: admitted.entry,
            port,
        });
        if let Some(idle) = self.timeouts.idle {
            session.set_read_timeout(Some(idle));
            session.set_write_timeout(Some(idle));
        }
        Ok(())
    }

    /// The synchronous checks, in order: table present, route key, edge
    /// key, sandbox known, secure access; then the forwarded target.
    pub(crate) fn admit<R: RequestView>(
        &self,
        req: &R,
        ctx: &mut RequestCtx,
    ) -> Result<Admitted, Reject> {
        let index = self.store.load();
        if !index.is_loaded() {
            return Err(Reject::not_ready());
        }
        let found = route::find(req, &self.routing)?;
        ctx.mode = Some(found.mode);
        if let Some(expected) = self.auth.edge_api_key.as_deref() {
            let name = &self.auth.edge_api_key_header;
            access::check_edge_key(expected, name.as_str(), req.header(name))?;
        }
        let entry = index
            .get(found.key.sandbox_id)
            .ok_or_else(|| Reject::not_found(found.key.sandbox_id))?;
        ctx.target = Some((Arc::clone(&entry.id), found.key.port));
        let secure = matches!(entry.secure, SecureAccess::Required { .. });
        if secure {
            let header = req.header(&route::SECURE_ACCESS);
            let keys = &self.secure_access;
            access::check_secure_access(entry, &found.key, header, keys, now_unix())?;
        }
        let target = found
            .forwarded_path(secure)
            .map(|path| route::rewritten_target(req, path));
        Ok(Admitted {
            entry: Arc::clone(entry),
            port: found.key.port,
            target,
        })
    }

    /// How long an idle upstream connection stays pooled (both paths).
    pub(crate) fn pool_idle(&self) -> Duration {
        self.timeouts
            .idle
            .map_or(POOL_IDLE, |idle| idle.min(POOL_IDLE))
    }

    /// What the forwarding policy needs to know about a request to `port`
    /// (both paths).
    pub(crate) fn forwarding<'a>(
        &'a self,
        client_ip: Option<std::net::IpAddr>,
        tls: bool,
        port: Option<&'a PortState>,
        authority: Option<&'a str>,
        http11: bool,
    ) -> headers::Forwarding<'a> {
        let upstream_host = match (self.routing.host_policy, port) {
            (HostPolicy::Upstream, Some(port)) => Some(&port.upstream_host),
            _ => None,
        };
        headers::Forwarding {
            client_ip,
            tls,
            edge_key_header: self.auth.edge_api_key_header.as_str(),
            upstream_host,
            authority,
            http11,
        }
    }

    /// Logs a failed request once, unless the failure is routine (the
    /// access log and metrics report those); both paths.
    pub(crate) fn log_failure(&self, ctx: &RequestCtx, error: &Error) {
        if is_routine(error) {
            return;
        }
        let sandbox = ctx.target.as_ref().map_or("-", |(id, _)| &**id);
        match ctx.upstream {
            Some(addr) => {
                tracing::warn!(sandbox.id = sandbox, upstream.addr = %addr, error = %error, "proxying failed");
            }
            None => tracing::warn!(sandbox.id = sandbox, error = %error, "proxying failed"),
        }
    }

    /// Fails the request once it has run longer than `timeouts.total_seconds`.
    fn check_total(&self, ctx: &RequestCtx) -> pingora::Result<()> {
        match self.timeouts.total {
            Some(total) if ctx.start.elapsed() > total => {
                Error::e_explain(TOTAL_TIMEOUT, format!("request exceeded {total:?}"))
            }
            _ => Ok(()),
        }
    }

    /// The socket address of a DNS-named upstream (IP upstreams are pre-parsed).
    async fn resolve(&self, entry: &RouteEntry, port: u16) -> pingora::Result<SocketAddr> {
        let Upstream::Name(name) = &entry.upstream else {
            return Err(
                Error::explain(ErrorType::ConnectError, "the sandbox has no address").into_up(),
            );
        };
        let mut addrs = tokio::net::lookup_host((&**name, port))
            .await
            .map_err(|e| {
                Error::because(
                    ErrorType::ConnectNoRoute,
                    "resolving the sandbox address",
                    e,
                )
                .into_up()
            })?;
        addrs.next().ok_or_else(|| {
            Error::explain(
                ErrorType::ConnectNoRoute,
                "the sandbox address resolves to nothing",
            )
            .into_up()
        })
    }

    /// Metrics and the access-log line of a finished request (both paths).
    pub(crate) fn finish(&self, ctx: &RequestCtx, outcome: &Outcome<'_>) {
        let elapsed = ctx.start.elapsed();
        if let Some(routed) = &ctx.routed {
            let received = u64::try_from(outcome.received).unwrap_or(u64::MAX);
            let sent = u64::try_from(outcome.sent).unwrap_or(u64::MAX);
            routed
                .port
                .metrics
                .closed(outcome.status, elapsed.as_secs_f64(), received, sent);
        }
        if let Some(code) = ctx.reject {
            self.metrics.rejected(code);
        }
        if !self.access_log {
            return;
        }
        let (id, port) = match &ctx.target {
            Some((id, port)) => (&**id, *port),
            None => ("-", 0),
        };
        crate::access::log(&crate::access::Line {
            sandbox_id: id,
            sandbox_port: port,
            upstream: ctx.upstream,
            method: outcome.method,
            status: outcome.status,
            duration: elapsed,
            bytes_sent: outcome.sent,
            bytes_received: outcome.received,
            mode: ctx.mode,
            code: ctx.reject,
            error: outcome.error,
        });
    }
}

impl RequestCtx {
    /// The context of a request that arrived at `start`.
    pub(crate) fn starting(start: Instant) -> Self {
        Self {
            start,
            mode: None,
            target: None,
            routed: None,
            upstream: None,
            reject: None,
        }
    }
}

/// What `entry`'s state means: forward, hold (starting up), or an answer.
fn action(entry: &RouteEntry) -> Action {
    if let Some(reject) = Reject::for_state(&entry.id, entry.state, entry.message.as_deref()) {
        return Action::Reject(reject);
    }
    match (entry.state, &entry.upstream) {
        (SandboxState::Running, Upstream::Ip(_) | Upstream::Name(_)) => Action::Forward,
        _ => Action::Hold,
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Errors that are the sandbox's or the client's business, reported by the
/// access log and metrics rather than pingora's error log.
fn is_routine(error: &Error) -> bool {
    let etype = error.etype();
    *etype == TOTAL_TIMEOUT
        || matches!(
            etype,
            ErrorType::ConnectRefused
                | ErrorType::ConnectTimedout
                | ErrorType::ConnectNoRoute
                | ErrorType::ReadTimedout
                | ErrorType::WriteTimedout
        )
        || (*error.esource() == ErrorSource::Downstream
            && matches!(
                etype,
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed
            ))
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestCtx;

    /// No downstream modules: pingora's default adds a (disabled)
    /// compression module that still costs a context per request.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::starting(Instant::now())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        match self.route(session, ctx).await {
            Ok(()) => Ok(false),
            Err(reject) => {
                ctx.reject = Some(reject.code);
                if !session.is_body_empty() {
                    // Close rather than drain an upload nobody will read.
                    session.set_keepalive(None);
                }
                respond::write(session, &reject).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let Some(routed) = ctx.routed.as_ref() else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no route was selected",
            ));
        };
        let addr = match routed.port.peer {
            Some(addr) => addr,
            None => self.resolve(&routed.entry, routed.port.port).await?,
        };
        ctx.upstream = Some(addr);
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(self.timeouts.connect);
        peer.options.read_timeout = self.timeouts.idle;
        peer.options.write_timeout = self.timeouts.idle;
        peer.options.idle_timeout = Some(self.pool_idle());
        // The forwarding policy (`headers::apply`) makes every edit, as on
        // the fast path; pingora's own sanitising would strip framing
        // fields a `Connection` option names before the policy sees them.
        peer.options.http_upstream_request_policy = HttpUpstreamRequestPolicy::preserve();
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let port = ctx.routed.as_ref().map(|routed| &*routed.port);
        let downstream = session.req_header();
        let authority = downstream.uri.authority().map(|a| a.as_str());
        let http11 = downstream.version == http::Version::HTTP_11;
        let fwd = self.forwarding(client_ip, tls, port, authority, http11);
        headers::apply(upstream_request, &fwd)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        self.check_total(ctx)
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        self.check_total(ctx)
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<Duration>> {
        self.check_total(ctx).map(|()| None)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        upstream_response.insert_header(POWERED_BY.0, HeaderValue::from_static(POWERED_BY.1))
    }

    /// Failures are logged by `logging` (`EdgeProxy::log_failure`), as on
    /// the fast path.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        true
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let target = ctx.routed.as_ref().map(|r| (&*r.entry.id, r.port.port));
        // Once a response has started (mid-stream failure) nothing more can
        // be said; the connection is closed.
        let reject = Reject::from_proxy_error(error, target)
            .filter(|_| session.response_written().is_none());
        let mut error_code = 0;
        if let Some(reject) = reject {
            ctx.reject = Some(reject.code);
            error_code = reject.status;
            // pingora closes the client connection after a proxy failure;
            // say so (`Connection: close`) so the client does not reuse it.
            session.set_keepalive(None);
            if let Err(write_error) = respond::write(session, &reject).await {
                tracing::debug!(error = %write_error, "cannot write the error response");
            }
        }
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut RequestCtx) {
        let down = session.as_downstream();
        let outcome = Outcome {
            method: &session.req_header().method,
            status: session.response_written().map_or(0, |r| r.status.as_u16()),
            sent: down.body_bytes_sent(),
            received: down.body_bytes_read(),
            error: error.map(|e| e.etype().as_str()),
        };
        if let Some(error) = error {
            self.log_failure(ctx, error);
        }
        self.finish(ctx, &outcome);
    }
}

#[cfg(test)]
mod tests;
