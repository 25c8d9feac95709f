//! The proxy's framing code, `proxy/src/service/fast/{head,chunked}.rs`
//! compiled from its source files, behind owned copies of what it returns
//! (its types are `pub(super)` there, so they cannot leave this module).

#[allow(dead_code)]
#[path = "../../../proxy/src/service/fast/chunked.rs"]
mod chunked;
#[allow(dead_code)]
#[path = "../../../proxy/src/service/fast/head.rs"]
mod head;

use super::route::RequestView;

/// Most header fields the fast path parses (more: handed to pingora).
pub const MAX_HEADERS: usize = head::MAX_HEADERS;

/// Largest request body the fast path forwards itself.
pub const MAX_BODY: u64 = head::MAX_BODY;

/// `head::Parse`, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    Complete(T),
    Partial,
    Invalid,
}

/// What `head::parse_request` returned for a complete head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// `RequestView::path` and `RequestView::query`.
    pub path: String,
    pub query: Option<String>,
    pub minor: u8,
    pub headers: Vec<(String, Vec<u8>)>,
    pub len: usize,
    /// `RequestView::header(Host)`.
    pub host: Option<Vec<u8>>,
    pub facts: RequestFacts,
    /// `RequestHead::is_fast`.
    pub is_fast: bool,
    /// `RequestHead::extent` of the whole buffer.
    pub extent: Option<usize>,
}

/// `head::RequestFacts`, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts {
    pub content_length: u64,
    pub bad_length: bool,
    pub transfer_encoding: bool,
    pub chunked: bool,
    pub upgrade: bool,
    pub expect: bool,
    pub close: bool,
}

/// `head::parse_request` on `buf`, with everything the fast path then
/// reads from the head.
pub fn parse_request(buf: &[u8]) -> Parsed<Request> {
    let mut storage = head::storage();
    match head::parse_request(buf, &mut storage) {
        head::Parse::Complete(h) => Parsed::Complete(Request {
            method: h.method.to_owned(),
            target: h.target.to_owned(),
            path: h.path().to_owned(),
            query: h.query().map(str::to_owned),
            minor: h.minor,
            headers: owned(h.headers),
            len: h.len,
            host: h.header(&http::header::HOST).map(<[u8]>::to_vec),
            facts: RequestFacts {
                content_length: h.facts.content_length,
                bad_length: h.facts.bad_length,
                transfer_encoding: h.facts.transfer_encoding,
                chunked: h.facts.chunked,
                upgrade: h.facts.upgrade,
                expect: h.facts.expect,
                close: h.facts.close,
            },
            is_fast: h.is_fast(),
            extent: h.extent(buf),
        }),
        head::Parse::Partial => Parsed::Partial,
        head::Parse::Invalid => Parsed::Invalid,
    }
}

/// What `head::parse_response` returned for a complete head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub minor: u8,
    pub headers: Vec<(String, Vec<u8>)>,
    pub len: usize,
    /// `ResponseHead::facts(head_request)`.
    pub facts: Option<ResponseFacts>,
}

/// `head::Framing`, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// `head::ResponseFacts`, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFacts {
    pub framing: Framing,
    pub reusable: bool,
    pub encoded: bool,
}

/// `head::parse_response` on `buf` and the facts of the head, as the
/// answer to a `HEAD` request when `head_request`.
pub fn parse_response(buf: &[u8], head_request: bool) -> Parsed<Response> {
    let mut storage = head::storage();
    match head::parse_response(buf, &mut storage) {
        head::Parse::Complete(h) => Parsed::Complete(Response {
            status: h.status,
            reason: h.reason.to_owned(),
            minor: h.minor,
            headers: owned(h.headers),
            len: h.len,
            facts: h.facts(head_request).map(|f| ResponseFacts {
                framing: match f.framing {
                    head::Framing::Empty => Framing::Empty,
                    head::Framing::Length(n) => Framing::Length(n),
                    head::Framing::Chunked => Framing::Chunked,
                    head::Framing::UntilClose => Framing::UntilClose,
                },
                reusable: f.reusable,
                encoded: f.encoded,
            }),
        }),
        head::Parse::Partial => Parsed::Partial,
        head::Parse::Invalid => Parsed::Invalid,
    }
}

/// `chunked::ChunkedScanner`.
#[derive(Debug, Clone, Default)]
pub struct ChunkedScanner(chunked::ChunkedScanner);

/// `chunked::Malformed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl ChunkedScanner {
    /// `ChunkedScanner::feed`.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, Malformed> {
        self.0.feed(bytes).map_err(|_| Malformed)
    }
}

fn owned(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect()
}
