//! One forwarded exchange on the fast path: the upstream connection, the
//! request body, the response head and body; and the answer when it fails.

use std::io;
use std::net::SocketAddr;

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
use crate::error::{Reject, TOTAL_TIMEOUT};
use crate::service::{POOL_IDLE, RequestCtx, is_routine};

/// Which connection an I/O error happened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Upstream,
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
        start: Instant,
        progress: &mut Progress,
    ) -> Result<bool, Box<Error>> {
        progress.received = usize::try_from(p.body_len - p.body_left).unwrap_or(usize::MAX);
        let mut retried = false;
        let (mut upstream, answer) = loop {
            let (mut upstream, reused) = match pool::take(p.addr, self.pool_idle()) {
                Some(upstream) => (upstream, true),
                None => (self.connect(p.addr, start).await?, false),
            };
            match self.send(stream, &mut upstream, p, start, progress).await {
                Ok(answer) => break (upstream, answer),
                Err(failed) if failed.stale && reused && !retried && p.body_left == 0 => {
                    retried = true;
                }
                Err(failed) => return Err(failed.error),
            }
        };
        let clean = self
            .forward_body(stream, &mut upstream, &answer, start, progress)
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
        start: Instant,
        progress: &mut Progress,
    ) -> Result<Answer, Failed> {
        let deadline = self.io_deadline(start);
        match self
            .timer
            .run(deadline, upstream.write_all(&self.req_out))
            .await
        {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(Failed {
                    error: io_error(Side::Upstream, ErrorType::WriteError, e),
                    stale: true,
                });
            }
            None => {
                return Err(self
                    .timeout(start, Side::Upstream, ErrorType::WriteTimedout)
                    .into());
            }
        }
        self.send_body(stream, upstream, p.body_left, start, progress)
            .await?;
        self.read_head(stream, upstream, p, start).await
    }

    /// Streams the rest of a request body from the client to the upstream.
    async fn send_body(
        &mut self,
        stream: &mut Stream,
        upstream: &mut TcpStream,
        mut left: u64,
        start: Instant,
        progress: &mut Progress,
    ) -> Result<(), Box<Error>> {
        while left > 0 {
            if self.buf.is_empty() {
                self.buf.reserve(READ_SIZE);
                let deadline = self.io_deadline(start);
                match self
                    .timer
                    .run(deadline, stream.read_buf(&mut self.buf))
                    .await
                {
                    Some(Ok(0)) => {
                        return Err(Error::explain(
                            ErrorType::ConnectionClosed,
                            "the client closed before sending its whole body",
                        )
                        .into_down());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(io_error(Side::Client, ErrorType::ReadError, e)),
                    None => return Err(self.timeout(start, Side::Client, ErrorType::ReadTimedout)),
                }
            }
            let n = usize::try_from(left).map_or(self.buf.len(), |l| l.min(self.buf.len()));
            let deadline = self.io_deadline(start);
            match self
                .timer
                .run(deadline, upstream.write_all(&self.buf[..n]))
                .await
            {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(io_error(Side::Upstream, ErrorType::WriteError, e)),
                None => {
                    return Err(self.timeout(start, Side::Upstream, ErrorType::WriteTimedout));
                }
            }
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
        start: Instant,
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
                    self.write_client(stream, start).await?;
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
                    write::client_response(&mut self.res_out, &head, !keep);
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
            let deadline = self.io_deadline(start);
            match self
                .timer
                .run(deadline, upstream.read_buf(&mut self.up_buf))
                .await
            {
                Some(Ok(0)) => {
                    return Err(Failed {
                        error: Error::explain(
                            ErrorType::ConnectionClosed,
                            "the sandbox closed the connection before answering",
                        )
                        .into_up(),
                        stale: nothing_yet,
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return Err(Failed {
                        error: io_error(Side::Upstream, ErrorType::ReadError, e),
                        stale: nothing_yet,
                    });
                }
                None => {
                    return Err(self
                        .timeout(start, Side::Upstream, ErrorType::ReadTimedout)
                        .into());
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
        start: Instant,
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
            self.write_client(stream, start).await?;
            if first {
                progress.status = answer.status;
                first = false;
            }
            progress.sent += take;
            if done {
                return Ok(!extra);
            }
            self.up_buf.reserve(READ_SIZE);
            let deadline = self.io_deadline(start);
            match self
                .timer
                .run(deadline, upstream.read_buf(&mut self.up_buf))
                .await
            {
                Some(Ok(0)) if framing == Framing::UntilClose => return Ok(false),
                Some(Ok(0)) => {
                    return Err(Error::explain(
                        ErrorType::ConnectionClosed,
                        "the sandbox closed the connection in the middle of the body",
                    )
                    .into_up());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(io_error(Side::Upstream, ErrorType::ReadError, e)),
                None => return Err(self.timeout(start, Side::Upstream, ErrorType::ReadTimedout)),
            }
        }
    }

    /// Writes `res_out` to the client and flushes.
    async fn write_client(
        &mut self,
        stream: &mut Stream,
        start: Instant,
    ) -> Result<(), Box<Error>> {
        let deadline = self.io_deadline(start);
        let write = async {
            stream.write_all(&self.res_out).await?;
            stream.flush().await
        };
        match self.timer.run(deadline, write).await {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(io_error(Side::Client, ErrorType::WriteError, e)),
            None => Err(self.timeout(start, Side::Client, ErrorType::WriteTimedout)),
        }
    }

    async fn connect(&mut self, addr: SocketAddr, start: Instant) -> Result<TcpStream, Box<Error>> {
        let timeouts = &self.edge().timeouts;
        let deadline = (Instant::now() + timeouts.connect).min(self.total_deadline(start));
        match self.timer.run(deadline, TcpStream::connect(addr)).await {
            Some(Ok(upstream)) => {
                // Heads and bodies are written whole; do not delay them.
                let _ = upstream.set_nodelay(true);
                Ok(upstream)
            }
            Some(Err(e)) => Err(connect_error(e)),
            None => Err(self.timeout(start, Side::Upstream, ErrorType::ConnectTimedout)),
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
        let target = ctx.routed.as_ref().map(|r| (&*r.entry.id, r.port.port));
        if !is_routine(error) {
            tracing::warn!(
                sandbox.id = target.map_or("-", |t| t.0),
                upstream.addr = %p.addr,
                error = %error,
                "proxying failed"
            );
        }
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
        let start = ctx.start;
        if self.write_client(stream, start).await.is_ok() {
            progress.status = reject.status;
            progress.sent = body;
        }
        Step::Close
    }

    /// The deadline of the next read or write: the idle timeout from now,
    /// capped by the request's total limit.
    fn io_deadline(&self, start: Instant) -> Instant {
        let now = Instant::now();
        let idle = self
            .edge()
            .timeouts
            .idle
            .map_or_else(|| Deadline::far(now), |idle| now + idle);
        idle.min(self.total_deadline(start))
    }

    fn total_deadline(&self, start: Instant) -> Instant {
        match self.edge().timeouts.total {
            Some(total) => start + total,
            None => Deadline::far(start),
        }
    }

    /// The error for a deadline that passed: the total limit's, else `idle`.
    fn timeout(&self, start: Instant, side: Side, idle: ErrorType) -> Box<Error> {
        let error = if Instant::now() >= self.total_deadline(start) {
            Error::explain(TOTAL_TIMEOUT, "the request exceeded timeouts.total_seconds")
        } else {
            Error::new(idle)
        };
        on(side, error)
    }

    fn pool_idle(&self) -> std::time::Duration {
        self.edge()
            .timeouts
            .idle
            .map_or(POOL_IDLE, |idle| idle.min(POOL_IDLE))
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
