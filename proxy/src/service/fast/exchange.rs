//! One forwarded exchange on the fast path: the upstream connection, the
//! request body, the response head and body; and the answer when it fails.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Buf;
use pingora::protocols::Stream;
use pingora::{Error, ErrorType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::chunked::ChunkedScanner;
use super::head::{self, Framing, Parse, ResponseFacts};
use super::timer::Deadline;
use super::{Conn, Prepared, Progress, READ_SIZE, Step, pool, write};
use crate::config::TimeoutConfig;
use crate::error::{Reject, TOTAL_TIMEOUT};
use crate::service::RequestCtx;

/// Which connection an I/O error happened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Upstream,
}

/// A read or a write, for the errors it can end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

impl Op {
    fn error(self) -> ErrorType {
        match self {
            Self::Read => ErrorType::ReadError,
            Self::Write => ErrorType::WriteError,
        }
    }

    fn timeout(self) -> ErrorType {
        match self {
            Self::Read => ErrorType::ReadTimedout,
            Self::Write => ErrorType::WriteTimedout,
        }
    }
}

/// One request's time limits: `timeouts.idle` for each read or write,
/// `timeouts.total` for the whole request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    idle: Option<Duration>,
    total: Instant,
}

impl Limits {
    /// The limits of a request that arrived at `start`.
    pub(super) fn new(timeouts: &TimeoutConfig, start: Instant) -> Self {
        Self {
            idle: timeouts.idle,
            total: timeouts
                .total
                .map_or_else(|| Deadline::far(start), |total| start + total),
        }
    }

    /// The deadline of the next read or write (idle from now, capped by
    /// the total).
    fn next(&self) -> Instant {
        let now = Instant::now();
        let idle = self
            .idle
            .map_or_else(|| Deadline::far(now), |idle| now + idle);
        idle.min(self.total)
    }

    /// The error for a deadline that passed: the total limit's, else `idle`.
    fn timeout(&self, side: Side, idle: ErrorType) -> Box<Error> {
        let error = if Instant::now() >= self.total {
            Error::explain(TOTAL_TIMEOUT, "the request exceeded timeouts.total_seconds")
        } else {
            Error::new(idle)
        };
        on(side, error)
    }
}

/// Runs one read or write of `side` under `limits`; a failure or a passed
/// deadline becomes the matching proxy error.
async fn timed<T>(
    timer: &mut Deadline,
    limits: &Limits,
    side: Side,
    op: Op,
    io: impl Future<Output = io::Result<T>>,
) -> Result<T, Box<Error>> {
    match timer.run(limits.next(), io).await {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(io_error(side, op.error(), e)),
        None => Err(limits.timeout(side, op.timeout())),
    }
}

/// The response head as forwarded.
#[derive(Debug)]
struct Answer {
    status: u16,
    facts: ResponseFacts,
    /// The client connection stays open after this response.
    keep: bool,
}

/// A failed attempt; `stale` when a reused upstream connection turned out
/// closed before the request could have been acted on (writing it failed,
/// or an idempotent request got no byte back): it may be sent again.
#[derive(Debug)]
struct Failed {
    error: Box<Error>,
    stale: bool,
}

impl From<Box<Error>> for Failed {
    fn from(error: Box<Error>) -> Self {
        Self {
            error,
            stale: false,
        }
    }
}

impl Conn<'_> {
    /// Forwards the prepared request and streams back the response.
    /// `Ok(keep)`: whether the client connection can carry another request.
    pub(super) async fn exchange(
        &mut self,
        stream: &mut Stream,
        p: &Prepared,
        limits: &Limits,
        progress: &mut Progress,
    ) -> Result<bool, Box<Error>> {
        progress.received = usize::try_from(p.body_len - p.body_left).unwrap_or(usize::MAX);
        let mut retried = false;
        let (mut upstream, answer) = loop {
            let (mut upstream, reused) = match pool::take(p.addr, self.pool_idle()) {
                Some(upstream) => (upstream, true),
                None => (self.connect(p.addr, limits).await?, false),
            };
            match self.send(stream, &mut upstream, p, limits, progress).await {
                Ok(answer) => break (upstream, answer),
                Err(failed) if failed.stale && reused && !retried && p.body_left == 0 => {
                    retried = true;
                }
                Err(failed) => return Err(failed.error),
            }
        };
        let clean = self
            .forward_body(stream, &mut upstream, &answer, limits, progress)
            .await;
        match clean {
            Ok(true) if answer.facts.reusable => pool::put(p.addr, upstream, self.pool_idle()),
            Ok(_) => {}
            Err(error) => return Err(error),
        }
        Ok(answer.keep)
    }

    /// Sends the request (head, then the rest of its body) and forwards
    /// the response head.
    async fn send(
        &mut self,
        stream: &mut Stream,
        upstream: &mut TcpStream,
        p: &Prepared,
        limits: &Limits,
        progress: &mut Progress,
    ) -> Result<Answer, Failed> {
        let head = upstream.write_all(&self.req_out);
        timed(&mut self.timer, limits, Side::Upstream, Op::Write, head)
            .await
            .map_err(|error| Failed {
                // A write that failed (not one that timed out) never reached
                // a sandbox that would act on it.
                stale: *error.etype() == ErrorType::WriteError,
                error,
            })?;
        self.send_body(stream, upstream, p.body_left, limits, progress)
            .await?;
        self.read_head(stream, upstream, p, limits).await
    }

    /// Streams the rest of a request body from the client to the upstream.
    async fn send_body(
        &mut self,
        stream: &mut Stream,
        upstream: &mut TcpStream,
        mut left: u64,
        limits: &Limits,
        progress: &mut Progress,
    ) -> Result<(), Box<Error>> {
        while left > 0 {
            if self.buf.is_empty() {
                self.buf.reserve(READ_SIZE);
                let read = stream.read_buf(&mut self.buf);
                if timed(&mut self.timer, limits, Side::Client, Op::Read, read).await? == 0 {
                    return Err(Error::explain(
                        ErrorType::ConnectionClosed,
                        "the client closed before sending its whole body",
                    )
                    .into_down());
                }
            }
            let n = usize::try_from(left).map_or(self.buf.len(), |l| l.min(self.buf.len()));
            let write = upstream.write_all(&self.buf[..n]);
            timed(&mut self.timer, limits, Side::Upstream, Op::Write, write).await?;
            self.buf.advance(n);
            left -= n as u64;
            progress.received += n;
        }
        Ok(())
    }

    /// Reads the response head (forwarding any 1xx) and prepares the
    /// client's head in `res_out`; the body bytes read with it stay in
    /// `up_buf`.
    async fn read_head(
        &mut self,
        stream: &mut Stream,
        upstream: &mut TcpStream,
        p: &Prepared,
        limits: &Limits,
    ) -> Result<Answer, Failed> {
        self.up_buf.clear();
        let mut informational = false;
        loop {
            let mut storage = head::storage();
            match head::parse_response(&self.up_buf, &mut storage) {
                Parse::Complete(head) if (100..200).contains(&head.status) => {
                    if head.status == 101 {
                        return Err(invalid("a 101 answer to a request without Upgrade").into());
                    }
                    write::informational(&mut self.res_out, &head);
                    let len = head.len;
                    self.write_client(stream, limits).await?;
                    self.up_buf.advance(len);
                    informational = true;
                    continue;
                }
                Parse::Complete(head) => {
                    let head_request = p.method == http::Method::HEAD;
                    let facts = head
                        .facts(head_request)
                        .ok_or_else(|| invalid("an invalid Content-Length"))?;
                    let keep = !p.close
                        && facts.framing != Framing::UntilClose
                        && !*self.shutdown.borrow();
                    write::client_response(&mut self.res_out, &head, &facts, !keep);
                    let (status, len) = (head.status, head.len);
                    self.up_buf.advance(len);
                    return Ok(Answer {
                        status,
                        facts,
                        keep,
                    });
                }
                Parse::Invalid => return Err(invalid("an invalid response head").into()),
                Parse::Partial if self.up_buf.len() > head::MAX_HEAD => {
                    return Err(invalid("a response head over 32 KiB").into());
                }
                Parse::Partial => {}
            }
            // A reused connection that closes without a byte was most likely
            // closed by the sandbox while idle. The request can be sent again
            // unless it may have been acted on: only idempotent methods are.
            let nothing_yet = self.up_buf.is_empty() && !informational && p.method.is_idempotent();
            self.up_buf.reserve(READ_SIZE);
            let read = upstream.read_buf(&mut self.up_buf);
            match timed(&mut self.timer, limits, Side::Upstream, Op::Read, read).await {
                Ok(0) => {
                    return Err(Failed {
                        error: Error::explain(
                            ErrorType::ConnectionClosed,
                            "the sandbox closed the connection before answering",
                        )
                        .into_up(),
                        stale: nothing_yet,
                    });
                }
                Ok(_) => {}
                Err(error) => {
                    return Err(Failed {
                        stale: nothing_yet && *error.etype() == ErrorType::ReadError,
                        error,
                    });
                }
            }
        }
    }

    /// Sends the response head (with the body bytes read along with it)
    /// and then the rest of the body. `Ok(true)` when the body ended
    /// exactly where its framing says (the upstream is reusable).
    async fn forward_body(
        &mut self,
        stream: &mut Stream,
        upstream: &mut TcpStream,
        answer: &Answer,
        limits: &Limits,
        progress: &mut Progress,
    ) -> Result<bool, Box<Error>> {
        let framing = answer.facts.framing;
        let mut left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        let mut chunks = ChunkedScanner::default();
        let mut first = true;
        loop {
            let (take, done) = match framing {
                Framing::Empty => (0, true),
                Framing::Length(_) => {
                    let take = usize::try_from(left)
                        .map_or(self.up_buf.len(), |l| l.min(self.up_buf.len()));
                    left -= take as u64;
                    (take, left == 0)
                }
                Framing::Chunked => match chunks.feed(&self.up_buf) {
                    Ok(Some(end)) => (end, true),
                    Ok(None) => (self.up_buf.len(), false),
                    Err(_) => return Err(invalid("a malformed chunked body")),
                },
                Framing::UntilClose => (self.up_buf.len(), false),
            };
            if !first {
                // (The first write carries the head already in `res_out`.)
                self.res_out.clear();
            }
            self.res_out.extend_from_slice(&self.up_buf[..take]);
            let extra = self.up_buf.len() > take;
            self.up_buf.clear();
            self.write_client(stream, limits).await?;
            if first {
                progress.status = answer.status;
                first = false;
            }
            progress.sent += take;
            if done {
                return Ok(!extra);
            }
            self.up_buf.reserve(READ_SIZE);
            let read = upstream.read_buf(&mut self.up_buf);
            if timed(&mut self.timer, limits, Side::Upstream, Op::Read, read).await? == 0 {
                if framing == Framing::UntilClose {
                    return Ok(false);
                }
                return Err(Error::explain(
                    ErrorType::ConnectionClosed,
                    "the sandbox closed the connection in the middle of the body",
                )
                .into_up());
            }
        }
    }

    /// Writes `res_out` to the client and flushes.
    async fn write_client(
        &mut self,
        stream: &mut Stream,
        limits: &Limits,
    ) -> Result<(), Box<Error>> {
        let write = async {
            stream.write_all(&self.res_out).await?;
            stream.flush().await
        };
        timed(&mut self.timer, limits, Side::Client, Op::Write, write).await
    }

    async fn connect(
        &mut self,
        addr: SocketAddr,
        limits: &Limits,
    ) -> Result<TcpStream, Box<Error>> {
        let deadline = (Instant::now() + self.edge().timeouts.connect).min(limits.total);
        match self.timer.run(deadline, TcpStream::connect(addr)).await {
            Some(Ok(upstream)) => {
                // Heads and bodies are written whole; do not delay them.
                let _ = upstream.set_nodelay(true);
                Ok(upstream)
            }
            Some(Err(e)) => Err(connect_error(e)),
            None => Err(limits.timeout(Side::Upstream, ErrorType::ConnectTimedout)),
        }
    }

    /// Answers a failed exchange if nothing was sent yet; then closes.
    pub(super) async fn fail(
        &mut self,
        stream: &mut Stream,
        p: &Prepared,
        ctx: &mut RequestCtx,
        progress: &mut Progress,
        error: &Error,
    ) -> Step {
        self.edge().log_failure(ctx, error);
        let target = ctx.routed.as_ref().map(|r| (&*r.entry.id, r.port.port));
        if progress.status != 0 {
            // The response has started: nothing more can be said.
            return Step::Drop;
        }
        let Some(reject) = Reject::from_proxy_error(error, target) else {
            return Step::Drop;
        };
        ctx.reject = Some(reject.code);
        let head_only = p.method == http::Method::HEAD;
        let body = write::reject(&mut self.res_out, &reject, p.format, head_only);
        let limits = Limits::new(&self.edge().timeouts, ctx.start);
        if self.write_client(stream, &limits).await.is_ok() {
            progress.status = reject.status;
            progress.sent = body;
        }
        Step::Close
    }

    fn pool_idle(&self) -> Duration {
        self.edge().pool_idle()
    }
}

fn on(side: Side, error: Box<Error>) -> Box<Error> {
    match side {
        Side::Client => error.into_down(),
        Side::Upstream => error.into_up(),
    }
}

fn io_error(side: Side, etype: ErrorType, e: io::Error) -> Box<Error> {
    on(side, Error::because(etype, "", e))
}

fn invalid(what: &'static str) -> Box<Error> {
    Error::explain(ErrorType::InvalidHTTPHeader, what).into_up()
}

fn connect_error(e: io::Error) -> Box<Error> {
    let etype = match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorType::ConnectRefused,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            ErrorType::ConnectNoRoute
        }
        io::ErrorKind::TimedOut => ErrorType::ConnectTimedout,
        _ => ErrorType::ConnectError,
    };
    Error::because(etype, "connecting to the sandbox", e).into_up()
}
