//! The forwarding policy of both proxy paths, decided once: which request
//! fields reach the sandbox, which are added or rewritten, and which
//! framing the proxy refuses. The fast path applies a [`Plan`] while it
//! writes the upstream head over borrowed fields; pingora's path applies
//! the same plan to its parsed header ([`apply`]).
//!
//! - Never forwarded: the credential and routing headers of
//!   `sandgate_shared::headers::NEVER_TO_SANDBOX` and the configured
//!   edge-key header; hop-by-hop fields, and fields a `Connection` option
//!   names, except the framing fields (`Content-Length`,
//!   `Transfer-Encoding`, `Host`), which no option can remove.
//! - Rewritten: `Content-Length` is sent once, normalised (`5, 5` is `5`;
//!   differing values are refused); `X-Forwarded-For` gets the client's
//!   address after the client's chain; `X-Forwarded-Proto` and
//!   `X-Forwarded-Host` are this hop's; `Host` follows `host_policy`
//!   (an absent or empty `Host` becomes the HTTP/2 `:authority`).
//! - Refused (400 on both paths): differing `Content-Length` values, more
//!   than one `Host`.

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::{ErrorType, OrErr};
use sandgate_shared::framing::{fold_length, named_fields};
use sandgate_shared::headers::{HOP_BY_HOP, never_to_sandbox};

use crate::error::Reject;

const CONTENT_LENGTH: &str = "content-length";
const HOST: &str = "host";
const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// What the upstream request needs from the downstream connection.
#[derive(Debug)]
pub(crate) struct Forwarding<'a> {
    /// The client's IP address, when known.
    pub client_ip: Option<IpAddr>,
    /// Whether the client connected over TLS.
    pub tls: bool,
    /// Name of the edge-key header (removed whether or not a key is configured).
    pub edge_key_header: &'a str,
    /// The `Host` to send instead of the client's (`host_policy = "upstream"`).
    pub upstream_host: Option<&'a HeaderValue>,
    /// The request's authority when it has one besides `Host` (HTTP/2).
    pub authority: Option<&'a str>,
    /// Whether the client spoke HTTP/1.1, the only version whose WebSocket
    /// handshake (`Connection: upgrade`, `Upgrade: websocket`) is forwarded.
    pub http11: bool,
}

/// A request whose framing the proxy refuses to forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `Content-Length` values that differ or are not numbers.
    Length,
    /// More than one `Host` field (RFC 9112 §3.2).
    Host,
}

impl Refused {
    /// The proxy's answer.
    pub(crate) fn reject(self) -> Reject {
        match self {
            Self::Length => Reject::malformed("conflicting or invalid Content-Length values"),
            Self::Host => Reject::malformed("more than one Host header"),
        }
    }
}

/// The request's body length by its `Content-Length` fields (`None`
/// without one), or why its framing is refused. Both paths decide here.
pub(crate) fn check<'f>(
    fields: impl Iterator<Item = (&'f str, &'f [u8])>,
) -> Result<Option<u64>, Refused> {
    let mut length = None;
    let mut hosts = 0;
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(CONTENT_LENGTH) {
            length = Some(fold_length(length, value).ok_or(Refused::Length)?);
        } else if name.eq_ignore_ascii_case(HOST) {
            hosts += 1;
            if hosts > 1 {
                return Err(Refused::Host);
            }
        }
    }
    Ok(length)
}

/// The fields of pingora's parsed header as the policy reads them.
pub(crate) fn fields(map: &http::HeaderMap) -> impl Iterator<Item = (&str, &[u8])> {
    map.iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
}

/// Where the plan writes the fields it adds: the fast path's head buffer
/// or pingora's header.
pub(crate) trait Sink {
    /// Starts a field named `name`.
    fn start(&mut self, name: &'static str);
    /// Appends bytes to the value of the field started last.
    fn push(&mut self, bytes: &[u8]);
    /// Ends the field started last.
    fn finish(&mut self);
}

/// The fast path's sink: `name: value\r\n` in the head being written.
impl Sink for Vec<u8> {
    fn start(&mut self, name: &'static str) {
        self.extend_from_slice(name.as_bytes());
        self.extend_from_slice(b": ");
    }

    fn push(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn finish(&mut self) {
        self.extend_from_slice(b"\r\n");
    }
}

/// The edits for one request, computed over its fields (borrowed: no
/// allocation unless `Connection` names other fields).
#[derive(Debug)]
pub(crate) struct Plan<'f, 'a> {
    fwd: &'f Forwarding<'a>,
    /// Fields named by `Connection` options (framing fields excepted).
    options: Option<Vec<&'f [u8]>>,
    /// A WebSocket upgrade handshake, forwarded as one.
    websocket: bool,
    /// The normalised `Content-Length`.
    length: Option<u64>,
    /// The client's `Host` when it is not empty, else the authority.
    host: Option<&'f [u8]>,
    /// The `Host` sent instead of the client's, if any.
    host_out: Option<&'f [u8]>,
}

impl<'f, 'a> Plan<'f, 'a> {
    /// The plan for a request with `fields` whose [`check`] gave `length`.
    pub(crate) fn new<I>(fields: I, length: Option<u64>, fwd: &'f Forwarding<'a>) -> Self
    where
        I: Iterator<Item = (&'f str, &'f [u8])> + Clone,
    {
        let mut options: Option<Vec<&'f [u8]>> = None;
        let mut lists_upgrade = false;
        let mut websocket_value = false;
        let mut client_host: Option<&'f [u8]> = None;
        for (name, value) in fields {
            if name.eq_ignore_ascii_case("connection") {
                for token in named_fields(value) {
                    lists_upgrade |= token.eq_ignore_ascii_case(b"upgrade");
                    options.get_or_insert_with(Vec::new).push(token);
                }
            } else if name.eq_ignore_ascii_case("upgrade") {
                websocket_value = value.trim_ascii().eq_ignore_ascii_case(b"websocket");
            } else if name.eq_ignore_ascii_case(HOST) {
                client_host.get_or_insert(value);
            }
        }
        let authority = fwd.authority.map(str::as_bytes).filter(|a| !a.is_empty());
        let host = client_host.filter(|h| !h.is_empty()).or(authority);
        let host_out = match fwd.upstream_host {
            Some(upstream) => Some(upstream.as_bytes()),
            None if client_host.is_none_or(<[u8]>::is_empty) => authority,
            None => None,
        };
        Self {
            fwd,
            options,
            websocket: fwd.http11 && lists_upgrade && websocket_value,
            length,
            host,
            host_out,
        }
    }

    /// Whether the client's field `name` is forwarded as it is.
    pub(crate) fn keeps(&self, name: &str) -> bool {
        let fwd = self.fwd;
        let replaced = name.eq_ignore_ascii_case(CONTENT_LENGTH)
            || (fwd.client_ip.is_some() && name.eq_ignore_ascii_case(X_FORWARDED_FOR))
            || name.eq_ignore_ascii_case(X_FORWARDED_PROTO)
            || name.eq_ignore_ascii_case(X_FORWARDED_HOST)
            || (self.host_out.is_some() && name.eq_ignore_ascii_case(HOST));
        !(replaced
            || never_to_sandbox(name)
            || name.eq_ignore_ascii_case(fwd.edge_key_header)
            || HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || self.is_named_by_connection(name))
    }

    fn is_named_by_connection(&self, name: &str) -> bool {
        self.options.as_deref().is_some_and(|options| {
            options
                .iter()
                .any(|o| o.eq_ignore_ascii_case(name.as_bytes()))
        })
    }

    /// Writes the fields this hop adds, after the kept ones, in a fixed
    /// order; `fields` are the client's (for the `X-Forwarded-For` chain).
    pub(crate) fn write_additions<I, S>(&self, fields: I, sink: &mut S)
    where
        I: Iterator<Item = (&'f str, &'f [u8])>,
        S: Sink,
    {
        if let Some(length) = self.length {
            let mut digits = itoa::Buffer::new();
            field(sink, CONTENT_LENGTH, digits.format(length).as_bytes());
        }
        if self.websocket {
            field(sink, "Connection", b"Upgrade");
            field(sink, "Upgrade", b"websocket");
        }
        if let Some(ip) = self.fwd.client_ip {
            forwarded_for(sink, fields, ip);
        }
        let proto: &[u8] = if self.fwd.tls { b"https" } else { b"http" };
        field(sink, X_FORWARDED_PROTO, proto);
        if let Some(host) = self.host {
            field(sink, X_FORWARDED_HOST, host);
        }
        if let Some(host) = self.host_out {
            field(sink, HOST, host);
        }
    }
}

fn field<S: Sink>(sink: &mut S, name: &'static str, value: &[u8]) {
    sink.start(name);
    sink.push(value);
    sink.finish();
}

/// `X-Forwarded-For`: every value of the client's chain, in order, then
/// the client's address.
fn forwarded_for<'f, S: Sink>(
    sink: &mut S,
    fields: impl Iterator<Item = (&'f str, &'f [u8])>,
    ip: IpAddr,
) {
    sink.start(X_FORWARDED_FOR);
    for (_, prior) in fields.filter(|(n, _)| n.eq_ignore_ascii_case(X_FORWARDED_FOR)) {
        let prior = prior.trim_ascii();
        if !prior.is_empty() {
            sink.push(prior);
            sink.push(b", ");
        }
    }
    match ip {
        IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let len = crate::fastfmt::ipv4(v4, &mut buf);
            sink.push(&buf[..len]);
        }
        IpAddr::V6(v6) => sink.push(v6.to_string().as_bytes()),
    }
    sink.finish();
}

/// pingora's sink: appends to its header (the first invalid value is kept
/// as the error).
struct HeaderSink<'r> {
    req: &'r mut RequestHeader,
    name: &'static str,
    value: Vec<u8>,
    error: Option<Box<pingora::Error>>,
}

impl Sink for HeaderSink<'_> {
    fn start(&mut self, name: &'static str) {
        self.name = name;
        self.value.clear();
    }

    fn push(&mut self, bytes: &[u8]) {
        self.value.extend_from_slice(bytes);
    }

    fn finish(&mut self) {
        let appended = HeaderValue::from_bytes(&self.value)
            .or_err(ErrorType::InvalidHTTPHeader, "invalid value while append")
            .and_then(|value| self.req.append_header(self.name, value));
        if let Err(error) = appended
            && self.error.is_none()
        {
            self.error = Some(error);
        }
    }
}

/// Applies the plan to pingora's copy of the request that goes upstream:
/// its fields are rebuilt in order, kept ones first, then the additions,
/// as the fast path writes them.
pub(crate) fn apply(req: &mut RequestHeader, fwd: &Forwarding<'_>) -> pingora::Result<()> {
    let fields = snapshot(req);
    let view = || {
        fields
            .iter()
            .map(|(name, value)| (std::str::from_utf8(name).unwrap_or(""), value.as_bytes()))
    };
    // (`request_filter` has answered a refused request already.)
    let length = check(view()).map_err(|_| {
        pingora::Error::explain(ErrorType::InvalidHTTPHeader, "refused request framing").into_down()
    })?;
    let plan = Plan::new(view(), length, fwd);
    let names: Vec<HeaderName> = req.headers.keys().cloned().collect();
    for name in &names {
        req.remove_header(name);
    }
    for (name, value) in &fields {
        if plan.keeps(std::str::from_utf8(name).unwrap_or("")) {
            req.append_header(name.clone(), value.clone())?;
        }
    }
    let mut sink = HeaderSink {
        req,
        name: "",
        value: Vec::new(),
        error: None,
    };
    plan.write_additions(view(), &mut sink);
    sink.error.map_or(Ok(()), Err)
}

/// The request's fields in wire order, names as the client spelled them.
fn snapshot(req: &RequestHeader) -> Vec<(Bytes, HeaderValue)> {
    if req.has_case() {
        req.case_header_iter()
            .map(|(name, value)| (Bytes::copy_from_slice(name.as_slice()), value.clone()))
            .collect()
    } else {
        req.headers
            .iter()
            .map(|(name, value)| {
                (
                    Bytes::copy_from_slice(name.as_str().as_bytes()),
                    value.clone(),
                )
            })
            .collect()
    }
}
