//! HTTP/1.x heads for the fast path, parsed with httparse: the request as a
//! borrowed view that routing reads, the response's status, and the facts
//! that decide how each body is framed.

use http::HeaderName;
use httparse::{EMPTY_HEADER, Header, Status};

use crate::service::route::RequestView;

/// Most header fields a fast-path head may have (more: pingora's path).
pub(super) const MAX_HEADERS: usize = 96;

/// Largest request head the fast path reads before handing over.
pub(super) const MAX_HEAD: usize = 32 * 1024;

/// Largest request body the fast path forwards. It is sent before the
/// response is read, so it must fit the sockets' buffers: larger uploads
/// (and chunked ones) take pingora's full-duplex path.
pub(super) const MAX_BODY: u64 = 64 * 1024;

/// Header storage for one parse.
pub(super) fn storage<'b>() -> [Header<'b>; MAX_HEADERS] {
    [EMPTY_HEADER; MAX_HEADERS]
}

/// The result of parsing what has arrived so far.
#[derive(Debug)]
pub(super) enum Parse<T> {
    /// A whole head.
    Complete(T),
    /// More bytes are needed.
    Partial,
    /// Not something the fast path parses (invalid, or too many fields).
    Invalid,
}

/// A parsed request head borrowing the connection's buffer.
#[derive(Debug)]
pub(super) struct RequestHead<'h, 'b> {
    /// The method token.
    pub method: &'b str,
    /// The request target as sent (path and query).
    pub target: &'b str,
    path: &'b str,
    query: Option<&'b str>,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor: u8,
    /// The header fields, in order.
    pub headers: &'h [Header<'b>],
    /// Length of the head in bytes (up to and including the blank line).
    pub len: usize,
    /// Framing and connection facts.
    pub facts: RequestFacts,
}

/// What the request's header fields say about framing and the connection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct RequestFacts {
    /// `Content-Length` (0 without one).
    pub content_length: u64,
    /// `Content-Length` repeated with different values, or not a number.
    pub bad_length: bool,
    /// Any `Transfer-Encoding`.
    pub transfer_encoding: bool,
    /// The last transfer coding is `chunked`.
    pub chunked: bool,
    /// `Upgrade` (WebSocket and friends).
    pub upgrade: bool,
    /// `Expect` (`100-continue`).
    pub expect: bool,
    /// `Connection: close`.
    pub close: bool,
}

impl RequestHead<'_, '_> {
    /// Whether the fast path forwards this request; everything else (and
    /// every request the proxy answers itself) goes through pingora.
    pub(super) fn is_fast(&self) -> bool {
        let f = &self.facts;
        self.minor == 1
            && self.target.starts_with('/')
            && self.method != "CONNECT"
            && !(f.bad_length || f.transfer_encoding || f.upgrade || f.expect)
            && f.content_length <= MAX_BODY
    }
}

impl<'b> RequestHead<'_, 'b> {
    /// The header fields as `(name, value)`, in order (what the forwarding
    /// policy reads).
    pub(super) fn fields(&self) -> impl Iterator<Item = (&'b str, &'b [u8])> + Clone + use<'_, 'b> {
        self.headers.iter().map(|h| (h.name, h.value))
    }

    /// How many bytes at the start of `buf` (where this head was parsed)
    /// the whole request takes, when they have all arrived. A request
    /// handed to pingora's pipeline gets exactly these bytes, so a request
    /// pipelined after it stays with the fast path instead of being read
    /// (and, pingora not pipelining, dropped) by the pipeline.
    pub(super) fn extent(&self, buf: &[u8]) -> Option<usize> {
        let f = &self.facts;
        if f.upgrade || f.expect || f.bad_length || self.method == "CONNECT" || self.must_close() {
            return None;
        }
        let body = buf.get(self.len..)?;
        let body_len = if f.transfer_encoding {
            if !f.chunked {
                return None;
            }
            super::chunked::ChunkedScanner::default()
                .feed(body)
                .ok()??
        } else {
            usize::try_from(f.content_length).ok()?
        };
        (body.len() >= body_len).then_some(self.len + body_len)
    }

    /// Whether RFC 9112 §6.1 says the connection closes after this request
    /// (its framing is in doubt): `Transfer-Encoding` together with
    /// `Content-Length`, or in HTTP/1.0. Nothing after it is served.
    fn must_close(&self) -> bool {
        self.facts.transfer_encoding
            && (self.minor == 0
                || self
                    .headers
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case("content-length")))
    }
}

impl RequestView for RequestHead<'_, '_> {
    fn path(&self) -> &str {
        self.path
    }

    fn query(&self) -> Option<&str> {
        self.query
    }

    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        let name = name.as_str();
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    fn authority(&self) -> Option<&str> {
        None
    }
}

/// Parses a request head at the start of `buf`.
pub(super) fn parse_request<'h, 'b>(
    buf: &'b [u8],
    storage: &'h mut [Header<'b>],
) -> Parse<RequestHead<'h, 'b>> {
    let mut req = httparse::Request::new(storage);
    let len = match req.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Parse::Partial,
        Err(_) => return Parse::Invalid,
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Parse::Invalid;
    };
    let headers: &'h [Header<'b>] = req.headers;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    Parse::Complete(RequestHead {
        method,
        target,
        path,
        query,
        minor,
        headers,
        len,
        facts: request_facts(headers),
    })
}

fn request_facts(headers: &[Header<'_>]) -> RequestFacts {
    let mut facts = RequestFacts::default();
    let mut length: Option<u64> = None;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            // The forwarding policy's rule: `5, 5` is 5, differing values are refused.
            match sandgate_shared::framing::fold_length(length, h.value) {
                Some(n) => length = Some(n),
                None => facts.bad_length = true,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            facts.transfer_encoding = true;
            facts.chunked = last_coding_is_chunked(h.value);
        } else if name.eq_ignore_ascii_case("upgrade") {
            facts.upgrade = true;
        } else if name.eq_ignore_ascii_case("expect") {
            facts.expect = true;
        } else if name.eq_ignore_ascii_case("connection") {
            facts.close |= has_token(h.value, "close");
        }
    }
    facts.content_length = length.unwrap_or(0);
    facts
}

/// A parsed response head borrowing the upstream buffer.
#[derive(Debug)]
pub(super) struct ResponseHead<'h, 'b> {
    /// The status code.
    pub status: u16,
    /// The reason phrase as sent.
    pub reason: &'b str,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor: u8,
    /// The header fields, in order.
    pub headers: &'h [Header<'b>],
    /// Length of the head in bytes.
    pub len: usize,
}

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`, forwarded as is.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// What the upstream's response head says about its body and connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ResponseFacts {
    /// Where the body ends.
    pub framing: Framing,
    /// Whether the upstream connection may carry another request.
    pub reusable: bool,
    /// `Transfer-Encoding` is present, so any `Content-Length` is stale.
    pub encoded: bool,
}

/// Parses a response head at the start of `buf`.
pub(super) fn parse_response<'h, 'b>(
    buf: &'b [u8],
    storage: &'h mut [Header<'b>],
) -> Parse<ResponseHead<'h, 'b>> {
    let mut res = httparse::Response::new(storage);
    let len = match res.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Parse::Partial,
        Err(_) => return Parse::Invalid,
    };
    let (Some(status), Some(minor)) = (res.code, res.version) else {
        return Parse::Invalid;
    };
    Parse::Complete(ResponseHead {
        status,
        reason: res.reason.unwrap_or(""),
        minor,
        headers: res.headers,
        len,
    })
}

impl ResponseHead<'_, '_> {
    /// Framing (RFC 9112 §6.3) and reuse; `None` for an unusable
    /// `Content-Length` (conflicting or not a number).
    pub(super) fn facts(&self, head_request: bool) -> Option<ResponseFacts> {
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut encoded = false;
        let (mut close, mut keep_alive) = (false, false);
        for h in self.headers {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                match (sandgate_shared::framing::parse_length(h.value), length) {
                    (Some(n), None) => length = Some(n),
                    (Some(n), Some(prior)) if n == prior => {}
                    _ => return None,
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                encoded = true;
                chunked = last_coding_is_chunked(h.value);
            } else if name.eq_ignore_ascii_case("connection") {
                close |= has_token(h.value, "close");
                keep_alive |= has_token(h.value, "keep-alive");
            }
        }
        // `close` in any field wins; HTTP/1.0 persists only with `keep-alive`.
        let close = close || (self.minor == 0 && !keep_alive);
        let framing = if head_request || matches!(self.status, 100..=199 | 204 | 304) {
            Framing::Empty
        } else if encoded {
            // Transfer-Encoding overrides Content-Length (§6.3 rule 3).
            if chunked {
                Framing::Chunked
            } else {
                Framing::UntilClose
            }
        } else {
            length.map_or(Framing::UntilClose, Framing::Length)
        };
        // With Transfer-Encoding, a Content-Length or HTTP/1.0 means the
        // framing is in doubt (RFC 9112 §6.1, §6.3): never reused.
        let doubtful = encoded && (length.is_some() || self.minor == 0);
        let reusable = !close && framing != Framing::UntilClose && !doubtful;
        Some(ResponseFacts {
            framing,
            reusable,
            encoded,
        })
    }
}

/// Whether the header `name` of a response is replaced or dropped on the
/// way to the client (hop-by-hop headers the proxy manages itself).
pub(super) fn is_response_hop_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("connection")
        || name.eq_ignore_ascii_case("keep-alive")
        || name.eq_ignore_ascii_case(crate::service::POWERED_BY.0)
}

/// The fields that a response's `Connection` names besides `close`,
/// `keep-alive` and the framing fields (which no option removes): they are
/// hop-by-hop and are not forwarded (RFC 9110 §7.6.1). `None` in
/// the usual case of none (no allocation).
pub(super) fn connection_options<'b>(headers: &[Header<'b>]) -> Option<Vec<&'b [u8]>> {
    let mut options: Option<Vec<&'b [u8]>> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
    {
        for token in sandgate_shared::framing::named_fields(h.value) {
            options.get_or_insert_with(Vec::new).push(token);
        }
    }
    options
}

/// Whether `name` is among the `options` of [`connection_options`].
pub(super) fn is_listed(options: Option<&[&[u8]]>, name: &str) -> bool {
    options.is_some_and(|list| list.iter().any(|o| o.eq_ignore_ascii_case(name.as_bytes())))
}

/// Whether the comma-separated list `value` holds `token` (any case).
pub(super) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn last_coding_is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|b| *b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent_of(raw: &str) -> Option<usize> {
        let mut storage = storage();
        match parse_request(raw.as_bytes(), &mut storage) {
            Parse::Complete(head) => head.extent(raw.as_bytes()),
            other => panic!("{raw:?} did not parse: {other:?}"),
        }
    }

    #[test]
    fn a_handed_over_request_is_measured_when_it_has_all_arrived() {
        let get = "GET / HTTP/1.1\r\n\r\n";
        assert_eq!(extent_of(&format!("{get}GET /next")), Some(get.len()));
        let post = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(extent_of(&format!("{post}GET")), Some(post.len()));
        assert_eq!(
            extent_of("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab"),
            None
        );
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
        assert_eq!(extent_of(&format!("{chunked}GET")), Some(chunked.len()));
        assert_eq!(extent_of(&chunked[..chunked.len() - 2]), None);
        for unknown in [
            // RFC 9112 §6.1: the connection closes after these, so nothing
            // after them may be served as the next request.
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert_eq!(extent_of(unknown), None, "{unknown:?}");
        }
    }

    fn request_facts_of(raw: &str) -> (RequestFacts, bool) {
        let mut storage = storage();
        match parse_request(raw.as_bytes(), &mut storage) {
            Parse::Complete(head) => (head.facts, head.is_fast()),
            other => panic!("{raw:?} did not parse: {other:?}"),
        }
    }

    #[test]
    fn parses_a_request_into_a_routing_view() {
        let raw = b"GET /sb/80/a%2Fb?x=1 HTTP/1.1\r\nHost: h\r\nOpenSandbox-Ingress-To: sb-80\r\n\r\nBODY";
        let mut storage = storage();
        let Parse::Complete(head) = parse_request(raw, &mut storage) else {
            panic!("complete head expected");
        };
        assert_eq!(head.len, raw.len() - 4);
        assert_eq!((head.path(), head.query()), ("/sb/80/a%2Fb", Some("x=1")));
        assert_eq!(head.target, "/sb/80/a%2Fb?x=1");
        let ingress = HeaderName::from_static("opensandbox-ingress-to");
        assert_eq!(head.header(&ingress), Some(&b"sb-80"[..]));
        assert!(head.is_fast());
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nHost:", &mut super::storage()),
            Parse::Partial
        ));
        assert!(matches!(
            parse_request(b"GET / HTTP/9.9\r\n\r\n", &mut super::storage()),
            Parse::Invalid
        ));
    }

    #[test]
    fn only_plain_requests_take_the_fast_path() {
        let fast = "POST / HTTP/1.1\r\nContent-Length: 10\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(request_facts_of(fast).0.content_length, 10);
        assert!(request_facts_of(fast).1);
        for slow in [
            "GET / HTTP/1.0\r\n\r\n",
            "GET http://h/ HTTP/1.1\r\n\r\n",
            "CONNECT h:443 HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n",
        ] {
            assert!(!request_facts_of(slow).1, "{slow:?}");
        }
        let close = request_facts_of("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(close.0.close && close.1);
    }

    fn response_facts(raw: &str, head_request: bool) -> Option<ResponseFacts> {
        let mut storage = storage();
        match parse_response(raw.as_bytes(), &mut storage) {
            Parse::Complete(head) => head.facts(head_request),
            other => panic!("{raw:?} did not parse: {other:?}"),
        }
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let facts = |raw: &str| response_facts(raw, false).map(|f| (f.framing, f.reusable));
        assert_eq!(
            facts("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Some((Framing::Length(5), true))
        );
        assert_eq!(
            facts("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Some((Framing::Chunked, true))
        );
        assert_eq!(
            facts("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            Some((Framing::Chunked, false)),
            "both: chunked wins, the connection is not trusted again"
        );
        assert_eq!(
            facts("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Some((Framing::UntilClose, false))
        );
        assert_eq!(
            facts("HTTP/1.1 200 OK\r\n\r\n"),
            Some((Framing::UntilClose, false))
        );
        assert_eq!(
            facts("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            Some((Framing::Empty, true))
        );
        assert_eq!(
            facts("HTTP/1.1 304 Not Modified\r\n\r\n"),
            Some((Framing::Empty, true))
        );
        assert_eq!(
            facts("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"),
            Some((Framing::Length(5), false))
        );
        assert_eq!(
            facts("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Some((Framing::Length(5), false))
        );
        assert_eq!(
            facts("HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n"),
            Some((Framing::Length(5), true))
        );
        assert_eq!(
            facts(
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
            ),
            Some((Framing::Chunked, false)),
            "HTTP/1.0 with Transfer-Encoding: faulty framing, close after (RFC 9112 §6.1)"
        );
        assert_eq!(
            facts(
                "HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n"
            ),
            Some((Framing::Length(5), false)),
            "a close anywhere closes, whatever field follows"
        );
        assert_eq!(
            facts("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            None
        );
        let head = response_facts("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true);
        assert_eq!(head.map(|f| f.framing), Some(Framing::Empty));
    }
}
