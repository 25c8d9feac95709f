//! Raw HTTP/1.1 over TCP on both sides of the proxy, for framing tests.
//!
//! - [`RawConn`]: one TCP connection with a read buffer; as a client it
//!   writes exact request bytes and parses exact response bytes
//!   ([`RawConn::read_response`], chunked bodies kept verbatim), as an
//!   upstream it parses requests ([`RawConn::read_request`]) and writes
//!   whatever the test scripts.
//! - [`ScriptedUpstream`]: a listener on 127.0.0.1:0 whose accepted
//!   connections are handed to the test in order, and counted.
//!
//! Every read has a deadline ([`IO_TIMEOUT`]), so a proxy that hangs fails
//! the test quickly with a message naming what was awaited and what had
//! arrived so far. The parsers are strict (CRLF line ends, one space after
//! the version): what the proxy sends must be well-formed HTTP/1.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The deadline of every read and write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A header field: name as sent, value without surrounding whitespace.
pub type Field = (String, String);

/// One TCP connection with what has been read but not yet consumed.
#[derive(Debug)]
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    label: &'static str,
}

/// What a read found at the end of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// An orderly close (FIN).
    Eof,
    /// The peer reset the connection.
    Reset,
}

/// A parsed response (or request) head and its body as it was on the wire.
#[derive(Debug, Clone)]
pub struct Message {
    /// The start line without CRLF (`HTTP/1.1 200 OK`, `GET / HTTP/1.1`).
    pub start_line: String,
    /// The header fields in order.
    pub headers: Vec<Field>,
    /// The head's bytes, start line to blank line included.
    pub head: Vec<u8>,
    /// The body bytes exactly as received (chunk framing included).
    pub raw_body: Vec<u8>,
    /// The body's content (de-chunked).
    pub body: Vec<u8>,
    /// Chunked trailer fields.
    pub trailers: Vec<Field>,
}

/// A response read by [`RawConn::read_response`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Head, fields and body.
    pub msg: Message,
}

/// A request read by [`RawConn::read_request`].
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The method token.
    pub method: String,
    /// The request target.
    pub target: String,
    /// Head, fields and body.
    pub msg: Message,
}

impl Message {
    /// Every value of the fields named `name` (any case), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of the field `name`; `None` when absent. Panics when the
    /// field is repeated (a test must say which one it means).
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(
            all.len() <= 1,
            "header {name} appears {} times: {:?}\nhead:\n{}",
            all.len(),
            all,
            self.head_text()
        );
        all.first().copied()
    }

    /// Whether any field is named `name`.
    pub fn has(&self, name: &str) -> bool {
        !self.all(name).is_empty()
    }

    /// The head as text (for messages).
    pub fn head_text(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("the body is not JSON: {:?}", self.text()))
    }

    /// The fields as `(lowercase name, value)`, sorted by name only, so the
    /// relative order of repeated fields is kept.
    pub fn normalized_headers(&self) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields
    }
}

impl RawResponse {
    /// See [`Message::header`].
    pub fn header(&self, name: &str) -> Option<&str> {
        self.msg.header(name)
    }

    /// See [`Message::all`].
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.msg.all(name)
    }

    /// The head and body as text, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{}{}",
            self.msg.head_text(),
            String::from_utf8_lossy(&self.msg.raw_body)
        )
    }
}

impl RawRequest {
    /// See [`Message::header`].
    pub fn header(&self, name: &str) -> Option<&str> {
        self.msg.header(name)
    }

    /// See [`Message::all`].
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.msg.all(name)
    }
}

impl RawConn {
    /// Connects to `127.0.0.1:port` (no Nagle delay: writes go out as made).
    pub async fn connect(port: u16) -> anyhow::Result<Self> {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(("127.0.0.1", port)))
            .await
            .with_context(|| format!("connecting to 127.0.0.1:{port} timed out"))?
            .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
        Ok(Self::new(stream, "client"))
    }

    /// Wraps an accepted or connected stream; `label` names it in errors.
    pub fn new(stream: TcpStream, label: &'static str) -> Self {
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            buf: Vec::new(),
            label,
        }
    }

    /// The local port of the connection.
    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().map_or(0, |a| a.port())
    }

    /// The remote port of the connection.
    pub fn peer_port(&self) -> u16 {
        self.stream.peer_addr().map_or(0, |a| a.port())
    }

    /// Bytes read and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Writes `bytes` whole.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
        let bytes = bytes.as_ref();
        tokio::time::timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .with_context(|| format!("{}: writing {} bytes timed out", self.label, bytes.len()))?
            .with_context(|| format!("{}: writing {} bytes", self.label, bytes.len()))
    }

    /// Closes the write side only (the peer reads the end of the stream).
    pub async fn shutdown_write(&mut self) -> anyhow::Result<()> {
        self.stream
            .shutdown()
            .await
            .with_context(|| format!("{}: shutting down the write side", self.label))
    }

    /// Closes the write side and drops the connection.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Reads once more into the buffer; `Ok(None)` at the end of the stream.
    async fn fill(&mut self, what: &str) -> anyhow::Result<Option<usize>> {
        let mut chunk = [0u8; 16 * 1024];
        let read = tokio::time::timeout(IO_TIMEOUT, self.stream.read(&mut chunk))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{}: no bytes within {IO_TIMEOUT:?} while waiting for {what}; buffered so far: {:?}",
                    self.label,
                    String::from_utf8_lossy(&self.buf)
                )
            })?;
        match read {
            Ok(0) => Ok(None),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(Some(n))
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(None),
            Err(e) => Err(e).with_context(|| format!("{}: reading {what}", self.label)),
        }
    }

    /// Reads until at least `n` bytes are buffered; fails at the end of the
    /// stream.
    pub async fn fill_to(&mut self, n: usize, what: &str) -> anyhow::Result<()> {
        while self.buf.len() < n {
            if self.fill(what).await?.is_none() {
                bail!(
                    "{}: the connection ended after {} of {n} bytes while waiting for {what}: {:?}",
                    self.label,
                    self.buf.len(),
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
        Ok(())
    }

    /// Removes and returns the first `n` buffered bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        self.buf.drain(..n.min(self.buf.len())).collect()
    }

    /// Waits for the end of the stream; fails if any byte arrives first
    /// (or is already buffered). Tells a FIN from a reset.
    pub async fn expect_end(&mut self, what: &str) -> anyhow::Result<End> {
        ensure!(
            self.buf.is_empty(),
            "{}: expected the connection to end ({what}), but {} unexpected bytes are buffered: {:?}",
            self.label,
            self.buf.len(),
            String::from_utf8_lossy(&self.buf)
        );
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(IO_TIMEOUT, self.stream.read(&mut chunk))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{}: the connection was still open {IO_TIMEOUT:?} later ({what})",
                    self.label
                )
            })?;
        match read {
            Ok(0) => Ok(End::Eof),
            Ok(n) => bail!(
                "{}: expected the connection to end ({what}), got {n} more bytes: {:?}",
                self.label,
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(End::Reset),
            Err(e) => {
                Err(e).with_context(|| format!("{}: waiting for the end ({what})", self.label))
            }
        }
    }

    /// Reads until the end of the stream; returns everything after what was
    /// already consumed, and how the stream ended.
    pub async fn read_to_end(&mut self, what: &str) -> anyhow::Result<(Vec<u8>, End)> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let read = tokio::time::timeout(IO_TIMEOUT, self.stream.read(&mut chunk))
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "{}: the connection was still open {IO_TIMEOUT:?} later ({what}); buffered: {:?}",
                        self.label,
                        String::from_utf8_lossy(&self.buf)
                    )
                })?;
            match read {
                Ok(0) => return Ok((std::mem::take(&mut self.buf), End::Eof)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok((std::mem::take(&mut self.buf), End::Reset));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("{}: reading ({what})", self.label));
                }
            }
        }
    }

    /// Fails if any byte is buffered or arrives within `quiet`; the
    /// connection must stay open meanwhile.
    pub async fn expect_silence(&mut self, quiet: Duration, what: &str) -> anyhow::Result<()> {
        ensure!(
            self.buf.is_empty(),
            "{}: unexpected bytes ({what}): {:?}",
            self.label,
            String::from_utf8_lossy(&self.buf)
        );
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(quiet, self.stream.read(&mut chunk)).await {
            Err(_) => Ok(()),
            Ok(Ok(0)) => bail!("{}: the connection ended ({what})", self.label),
            Ok(Ok(n)) => bail!(
                "{}: unexpected bytes ({what}): {:?}",
                self.label,
                String::from_utf8_lossy(&chunk[..n])
            ),
            Ok(Err(e)) => Err(e).with_context(|| format!("{}: ({what})", self.label)),
        }
    }

    /// Reads a head (through the blank line) and returns its start line
    /// and fields; the bytes after it stay buffered.
    pub async fn read_head(&mut self, what: &str) -> anyhow::Result<Message> {
        let end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            if self.fill(what).await?.is_none() {
                bail!(
                    "{}: the connection ended before a whole head ({what}); got {:?}",
                    self.label,
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head = self.take(end);
        parse_head(head).with_context(|| format!("{}: parsing the head of {what}", self.label))
    }

    /// Reads a response; `head_request`: it answers a HEAD (no body).
    /// Bodies are framed by RFC 9112 §6.3 (1xx/204/304/HEAD: none; chunked;
    /// Content-Length; else until the connection ends).
    pub async fn read_response(
        &mut self,
        head_request: bool,
        what: &str,
    ) -> anyhow::Result<RawResponse> {
        let mut msg = self.read_head(what).await?;
        let (status, reason) = parse_status_line(&msg.start_line)
            .with_context(|| format!("{}: {what}: head {:?}", self.label, msg.head_text()))?;
        let no_body =
            head_request || (100..200).contains(&status) || status == 204 || status == 304;
        if !no_body {
            self.read_body(&mut msg, true, what).await?;
        }
        Ok(RawResponse {
            status,
            reason,
            msg,
        })
    }

    /// Reads a request (head and a Content-Length or chunked body).
    pub async fn read_request(&mut self, what: &str) -> anyhow::Result<RawRequest> {
        let mut msg = self.read_head(what).await?;
        let mut parts = msg.start_line.splitn(3, ' ');
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            bail!("{}: bad request line {:?}", self.label, msg.start_line);
        };
        ensure!(
            version == "HTTP/1.1",
            "{}: request line {:?} is not HTTP/1.1",
            self.label,
            msg.start_line
        );
        let (method, target) = (method.to_owned(), target.to_owned());
        self.read_body(&mut msg, false, what).await?;
        Ok(RawRequest {
            method,
            target,
            msg,
        })
    }

    /// Reads the body `msg`'s fields announce into `msg`.
    async fn read_body(
        &mut self,
        msg: &mut Message,
        until_close: bool,
        what: &str,
    ) -> anyhow::Result<()> {
        let chunked = msg.all("transfer-encoding").last().is_some_and(|v| {
            v.rsplit(',')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
        });
        if chunked {
            loop {
                if let Some(done) = decode_chunked(&self.buf)? {
                    msg.raw_body = self.take(done.len);
                    msg.body = done.content;
                    msg.trailers = done.trailers;
                    return Ok(());
                }
                if self.fill(what).await?.is_none() {
                    bail!(
                        "{}: the connection ended inside a chunked body ({what}): {:?}",
                        self.label,
                        String::from_utf8_lossy(&self.buf)
                    );
                }
            }
        }
        let lengths = msg.all("content-length");
        if let Some(first) = lengths.first() {
            ensure!(
                lengths.iter().all(|l| l == first),
                "{}: conflicting Content-Length fields {lengths:?}",
                self.label
            );
            let len: usize = first
                .parse()
                .with_context(|| format!("{}: Content-Length {first:?}", self.label))?;
            self.fill_to(len, what).await?;
            msg.raw_body = self.take(len);
            msg.body = msg.raw_body.clone();
            return Ok(());
        }
        if until_close {
            while self.fill(what).await?.is_some() {}
            msg.raw_body = std::mem::take(&mut self.buf);
            msg.body = msg.raw_body.clone();
        }
        Ok(())
    }
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: Vec<u8>) -> anyhow::Result<Message> {
    let text = std::str::from_utf8(&head).context("the head is not UTF-8")?;
    let body = text
        .strip_suffix("\r\n\r\n")
        .context("the head does not end with CRLF CRLF")?;
    let mut lines = body.split("\r\n");
    let start_line = lines.next().unwrap_or_default().to_owned();
    ensure!(
        !body.split("\r\n").any(|l| l.contains(['\r', '\n'])),
        "a line of the head ends with a bare CR or LF: {text:?}"
    );
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("header line without a colon: {line:?}"))?;
        ensure!(
            !name.is_empty() && !name.contains([' ', '\t']),
            "bad header name in {line:?}"
        );
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Message {
        start_line,
        headers,
        head,
        raw_body: Vec::new(),
        body: Vec::new(),
        trailers: Vec::new(),
    })
}

fn parse_status_line(line: &str) -> anyhow::Result<(u16, String)> {
    let rest = line
        .strip_prefix("HTTP/1.1 ")
        .with_context(|| format!("status line {line:?} does not start with HTTP/1.1"))?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    ensure!(code.len() == 3, "status line {line:?}: bad status code");
    let status = code
        .parse()
        .with_context(|| format!("status line {line:?}: bad status code"))?;
    Ok((status, reason.to_owned()))
}

/// A whole chunked body found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunked {
    /// Its length on the wire, trailers and final CRLF included.
    pub len: usize,
    /// The data.
    pub content: Vec<u8>,
    /// The trailer fields.
    pub trailers: Vec<Field>,
}

/// Decodes a chunked body at the start of `buf` (strict: CRLF line ends);
/// `Ok(None)` while it is incomplete.
pub fn decode_chunked(buf: &[u8]) -> anyhow::Result<Option<Chunked>> {
    let mut at = 0;
    let mut content = Vec::new();
    loop {
        let Some(line_len) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[at..at + line_len]).context("chunk size line")?;
        let size_text = line.split(';').next().unwrap_or_default().trim_end();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size line {line:?}"))?;
        at += line_len + 2;
        if size == 0 {
            break;
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        content.extend_from_slice(&buf[at..at + size]);
        at += size;
        ensure!(
            &buf[at..at + 2] == b"\r\n",
            "chunk data not followed by CRLF at byte {at}"
        );
        at += 2;
    }
    let mut trailers = Vec::new();
    loop {
        let Some(line_len) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[at..at + line_len]).context("trailer line")?;
        at += line_len + 2;
        if line.is_empty() {
            return Ok(Some(Chunked {
                len: at,
                content,
                trailers,
            }));
        }
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("bad trailer line {line:?}"))?;
        trailers.push((name.to_owned(), value.trim().to_owned()));
    }
}

/// Encodes `data` as one chunk with the extension `ext` (`";a=b"` or "").
pub fn chunk(data: &[u8], ext: &str) -> Vec<u8> {
    let mut out = format!("{:X}{ext}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Bytes received and not yet read by the IPv4 TCP socket bound to local
/// port `local` and connected to remote port `remote` (from
/// `/proc/net/tcp`); `None` when there is no such socket. Lets a test wait
/// until bytes it sent have reached a peer's socket, which user space
/// cannot otherwise observe.
pub fn tcp_rx_queue(local: u16, remote: u16) -> anyhow::Result<Option<u64>> {
    let table = std::fs::read_to_string("/proc/net/tcp").context("reading /proc/net/tcp")?;
    let port_of = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(_, port)| u16::from_str_radix(port, 16).ok())
    };
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(l), Some(r), Some(queues)) = (fields.get(1), fields.get(2), fields.get(4)) else {
            continue;
        };
        if port_of(l) == Some(local) && port_of(r) == Some(remote) {
            let rx = queues.split_once(':').map_or("", |(_, rx)| rx);
            let rx =
                u64::from_str_radix(rx, 16).with_context(|| format!("rx_queue in {line:?}"))?;
            return Ok(Some(rx));
        }
    }
    Ok(None)
}

/// A listener on 127.0.0.1:0 whose connections the test takes in order.
#[derive(Debug)]
pub struct ScriptedUpstream {
    port: u16,
    accepted: Arc<AtomicUsize>,
    conns: mpsc::UnboundedReceiver<RawConn>,
    task: JoinHandle<()>,
}

impl ScriptedUpstream {
    /// Binds a fresh port and starts accepting.
    pub async fn bind() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a scripted upstream on 127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (sender, conns) = mpsc::unbounded_channel();
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                if sender.send(RawConn::new(stream, "upstream")).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            port,
            accepted,
            conns,
            task,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The next accepted connection (waits up to [`IO_TIMEOUT`]).
    pub async fn next_conn(&mut self) -> anyhow::Result<RawConn> {
        let accepted = self.accepted();
        tokio::time::timeout(IO_TIMEOUT, self.conns.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the proxy opened no new connection to upstream port {} within {IO_TIMEOUT:?} ({accepted} so far)",
                    self.port
                )
            })?
            .context("the accept loop stopped")
    }

    /// An accepted connection not yet taken, if any (does not wait).
    pub fn try_next_conn(&mut self) -> Option<RawConn> {
        self.conns.try_recv().ok()
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunked_bodies_with_extensions_and_trailers() {
        let mut body = chunk(b"hello", ";a=b");
        body.extend(chunk(b"0\r\n\r\n", ""));
        body.extend_from_slice(b"0;last\r\nX-T: 1\r\n\r\nNEXT");
        let done = decode_chunked(&body).unwrap().unwrap();
        assert_eq!(done.len, body.len() - 4);
        assert_eq!(done.content, b"hello0\r\n\r\n");
        assert_eq!(done.trailers, vec![("X-T".to_owned(), "1".to_owned())]);
        for cut in 0..body.len() - 4 {
            assert_eq!(decode_chunked(&body[..cut]).unwrap(), None, "cut {cut}");
        }
    }
}
