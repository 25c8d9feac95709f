//! The proxy's HTTP/1.1 fast path (`proxy/src/service/fast/`) end to end:
//! exact bytes between a raw-TCP client, the real `sandgate-proxy` and a
//! scripted raw-TCP upstream — response framing (chunked with extensions
//! and trailers, close-delimited, HEAD, 204/304, 1xx), pipelining, stale
//! pooled connections and retries, broken, silent and slow upstreams
//! (idle and total timeouts; a request timed from its first byte, not the
//! keep-alive wait before it), request bodies, header hygiene, routing
//! modes, `Connection: close`, closed ports, framing the proxy must not
//! pass on (Transfer-Encoding with Content-Length, bare-LF chunk lines,
//! bytes beyond a response), and metrics and the access log.
//!
//! Each test runs its own control plane (fake runtime) and proxy. A fake
//! sandbox's address is 127.0.0.1, so `OpenSandbox-Ingress-To: <id>-<port>`
//! reaches the scripted upstream listening on host port `<port>`.
//!
//! Needs `cargo build --workspace` first (or `SANDGATE_CONTROL_BIN` /
//! `SANDGATE_PROXY_BIN`).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use sandgate_tests::http::full;
use sandgate_tests::raw::{
    End, Message, RawConn, RawRequest, RawResponse, ScriptedUpstream, chunk, decode_chunked,
    tcp_rx_queue,
};
use sandgate_tests::upstream;
use sandgate_tests::{RoutedSandbox, bounded, poll_until, prom};
use serde_json::json;
use tokio::time::Instant;

/// The whole test, stack startup included.
const TEST_BUDGET: Duration = Duration::from_secs(10);
/// Waiting for the sandbox, the route, a metric or a log line.
const SETUP: Duration = Duration::from_secs(8);
/// The marker the proxy puts on every proxied response.
const POWERED_BY: (&str, &str) = ("reverse-proxy-server-powerby", "OpenSandbox-ingress");
/// The edge key of the header-hygiene test.
const EDGE_KEY: &str = "edge-key-fast-path-0123456789";

/// The shared routed-sandbox fixture, plus this suite's request builders.
struct Fixture(RoutedSandbox);

impl std::ops::Deref for Fixture {
    type Target = RoutedSandbox;
    fn deref(&self) -> &RoutedSandbox {
        &self.0
    }
}

impl Fixture {
    /// Starts the stack with `proxy_extra` TOML; `probe` headers go on the
    /// request that checks the route works (e.g. the edge key).
    async fn start(proxy_extra: &str, probe: &[(&str, &str)]) -> Self {
        Self(RoutedSandbox::start(proxy_extra.to_owned(), probe, SETUP).await)
    }

    /// A request to `port` of the sandbox: `Host: fast.test`, the routing
    /// header, `extra` fields, and `Content-Length` when `body` is not empty.
    fn request(
        &self,
        method: &str,
        path: &str,
        port: u16,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<u8> {
        let mut out = format!(
            "{method} {path} HTTP/1.1\r\nHost: fast.test\r\nOpenSandbox-Ingress-To: {}\r\n",
            self.route(port)
        );
        for (name, value) in extra {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(body);
        out
    }

    fn get(&self, path: &str, port: u16) -> Vec<u8> {
        self.request("GET", path, port, &[], b"")
    }

    /// Sends `GET /1` through `client` to `up`, answered 200 `ok`, and
    /// returns the upstream connection the proxy now keeps in its pool.
    async fn pooled(&self, up: &mut ScriptedUpstream, client: &mut RawConn) -> RawConn {
        client.send(self.get("/1", up.port())).await.unwrap();
        let mut first = up.next_conn().await.unwrap();
        answer(
            &mut first,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "request 1",
        )
        .await;
        let res = client.read_response(false, "response 1").await.unwrap();
        assert_ok(&res, 200, "ok", "response 1");
        first
    }
}

/// `fields` as [`Message::normalized_headers`] gives them.
fn normalized(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Asserts the exact set of header fields of `msg` (names in any case).
fn assert_fields(msg: &Message, want: &[(&str, &str)], what: &str) {
    assert_eq!(
        msg.normalized_headers(),
        normalized(want),
        "{what}: header fields differ; head was:\n{}",
        msg.head_text()
    );
}

/// Asserts status, body and the proxy's marker of a response forwarded by
/// the fast path. (pingora's pipeline marks its keep-alive responses with
/// `Connection: keep-alive` and adds `Date`; the fast path forwards the
/// upstream's fields as they are and adds no `Connection` unless it closes.)
fn assert_ok(res: &RawResponse, status: u16, body: &str, what: &str) {
    assert_forwarded(res, status, body, what);
    assert_ne!(
        res.header("connection"),
        Some("keep-alive"),
        "{what}: this response came through pingora's pipeline, not the fast path:\n{}",
        res.describe()
    );
}

/// Asserts status, body and the proxy's marker of a forwarded response
/// (either path).
fn assert_forwarded(res: &RawResponse, status: u16, body: &str, what: &str) {
    assert_eq!(
        (res.status, res.msg.text().as_str()),
        (status, body),
        "{what}: unexpected response:\n{}",
        res.describe()
    );
    assert_eq!(
        res.all(POWERED_BY.0),
        vec![POWERED_BY.1],
        "{what}: the ingress marker must be there exactly once:\n{}",
        res.describe()
    );
}

/// Asserts an answer of the proxy itself: status, JSON `{code, message}`,
/// `Connection: close`, no caching.
fn assert_rejected(res: &RawResponse, status: u16, code: &str, message: &str, what: &str) {
    let text = res.describe();
    assert_eq!(res.status, status, "{what}: status:\n{text}");
    assert_eq!(
        res.header("content-type"),
        Some("application/json"),
        "{what}: content type:\n{text}"
    );
    assert_eq!(
        res.header("content-length"),
        Some(res.msg.body.len().to_string().as_str()),
        "{what}: the answer must be framed by its length:\n{text}"
    );
    assert_eq!(
        res.header("connection"),
        Some("close"),
        "{what}: the proxy must close after its own error answer:\n{text}"
    );
    let body = res.msg.json().unwrap();
    assert_eq!(
        body,
        json!({"code": code, "message": message}),
        "{what}: error body:\n{text}"
    );
}

/// Splits `bytes` into pieces of 1, 2, 3, 5, 1, 2, ... bytes.
fn pieces(bytes: &[u8]) -> Vec<&[u8]> {
    const SIZES: [usize; 4] = [1, 2, 3, 5];
    let mut out = Vec::new();
    let mut at = 0;
    for size in SIZES.iter().cycle() {
        if at >= bytes.len() {
            break;
        }
        let end = (at + size).min(bytes.len());
        out.push(&bytes[at..end]);
        at = end;
    }
    out
}

/// Reads the next request on `conn` and answers it with `response`.
async fn answer(conn: &mut RawConn, response: &[u8], what: &str) -> RawRequest {
    let req = conn.read_request(what).await.unwrap();
    conn.send(response).await.unwrap();
    req
}

// ---------------------------------------------------------------------------
// a. Chunked responses, forwarded verbatim however the bytes are split
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_response_with_extensions_and_trailers_arrives_byte_exact_from_tiny_writes() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        client.send(f.get("/chunked", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let req = conn.read_request("request 1").await.unwrap();
        assert_eq!(
            (req.method.as_str(), req.target.as_str()),
            ("GET", "/chunked")
        );

        let head: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
            Transfer-Encoding: chunked\r\nTrailer: X-Checksum, X-Other\r\nX-Up: a\r\n\r\n";
        let mut body = chunk(b"hello", ";name=value");
        body.extend(chunk(b"abcdefghijklmnopqrstuvwxyz", ";quoted=\"a;b\";flag"));
        // Data that looks like the end of the body and a next response.
        body.extend(chunk(b"\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", ""));
        body.extend(chunk(&[b'x'; 300], "")); // a three-digit size (12C)
        body.extend_from_slice(b"1a;lc\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"); // lower-case hex size
        body.extend_from_slice(b"0;final=1\r\nX-Checksum: 42\r\nX-Other: two\r\n\r\n");

        // The head in tiny writes (nothing is forwarded before it is whole:
        // brief pauses let the proxy read the pieces one by one).
        for piece in pieces(head) {
            conn.send(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let got_head = client.read_head("the response head").await.unwrap();
        assert_eq!(got_head.start_line, "HTTP/1.1 200 OK");
        assert_fields(
            &got_head,
            &[
                ("content-type", "text/plain"),
                ("transfer-encoding", "chunked"),
                ("trailer", "X-Checksum, X-Other"),
                ("x-up", "a"),
                POWERED_BY,
            ],
            "the chunked response head",
        );
        assert!(
            client.buffered().is_empty(),
            "no body byte was sent yet, the client got {:?}",
            String::from_utf8_lossy(client.buffered())
        );
        // Each body piece must reach the client before the next is written:
        // the proxy streams, it does not wait for the end of the body.
        let mut sent = 0;
        for piece in pieces(&body) {
            conn.send(piece).await.unwrap();
            sent += piece.len();
            client
                .fill_to(sent, &format!("body byte {sent} of {}", body.len()))
                .await
                .unwrap();
        }
        assert_eq!(
            String::from_utf8_lossy(client.buffered()),
            String::from_utf8_lossy(&body),
            "the chunked body must arrive byte for byte"
        );
        let decoded = decode_chunked(client.buffered()).unwrap().unwrap();
        assert_eq!(decoded.len, body.len());
        assert_eq!(
            decoded.trailers,
            vec![
                ("X-Checksum".to_owned(), "42".to_owned()),
                ("X-Other".to_owned(), "two".to_owned())
            ]
        );
        client.take(body.len());

        // The client connection carries a second request (sent byte by
        // byte), and the upstream connection is reused for it.
        for byte in f.get("/second", up.port()) {
            client.send([byte]).await.unwrap();
            tokio::task::yield_now().await;
        }
        let req = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond",
            "request 2 on the pooled upstream connection",
        )
        .await;
        assert_eq!(req.target, "/second");
        let res = client.read_response(false, "response 2").await.unwrap();
        assert_ok(&res, 200, "second", "the request after the chunked body");
        assert_eq!(up.accepted(), 1, "one upstream connection for both");
    })
    .await;
}

// ---------------------------------------------------------------------------
// b. Close-delimited responses
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_delimited_response_arrives_whole_with_connection_close_then_eof() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();

        // HTTP/1.1 without Content-Length or Transfer-Encoding.
        let mut client = f.client().await;
        client.send(f.get("/until-close", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        conn.read_request("request").await.unwrap();
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Up: b\r\n\r\nfirst part, ")
            .await
            .unwrap();
        let head = client.read_head("the response head").await.unwrap();
        assert_eq!(head.start_line, "HTTP/1.1 200 OK");
        assert_fields(
            &head,
            &[
                ("content-type", "text/plain"),
                ("x-up", "b"),
                POWERED_BY,
                ("connection", "close"),
            ],
            "a close-delimited response",
        );
        client.fill_to(12, "the first part").await.unwrap();
        conn.send(b"second part").await.unwrap();
        conn.close().await;
        let (body, end) = client.read_to_end("the rest of the body").await.unwrap();
        assert_eq!(String::from_utf8_lossy(&body), "first part, second part");
        assert_eq!(end, End::Eof, "the proxy must close cleanly after the body");

        // HTTP/1.0 without a length: the same.
        let mut client = f.client().await;
        client.send(f.get("/old", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        answer(
            &mut conn,
            b"HTTP/1.0 200 OK\r\nX-Up: old\r\n\r\nold-style body",
            "request",
        )
        .await;
        conn.close().await;
        let res = client
            .read_response(false, "the HTTP/1.0 answer")
            .await
            .unwrap();
        assert_ok(
            &res,
            200,
            "old-style body",
            "an HTTP/1.0 close-delimited answer",
        );
        assert_eq!(
            res.header("connection"),
            Some("close"),
            "{}",
            res.describe()
        );
        assert_eq!(client.expect_end("after the body").await.unwrap(), End::Eof);
    })
    .await;
}

// ---------------------------------------------------------------------------
// c, d. Responses without a body
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_responses_with_a_length_have_no_body_and_the_connection_goes_on() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;

        client
            .send(f.request("HEAD", "/h", up.port(), &[], b""))
            .await
            .unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let req = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/html\r\n\r\n",
            "HEAD 1",
        )
        .await;
        assert_eq!((req.method.as_str(), req.target.as_str()), ("HEAD", "/h"));
        let res = client.read_response(true, "HEAD 1").await.unwrap();
        assert_ok(&res, 200, "", "HEAD with Content-Length: 1000");
        assert_fields(
            &res.msg,
            &[
                ("content-length", "1000"),
                ("content-type", "text/html"),
                POWERED_BY,
            ],
            "HEAD with Content-Length: 1000",
        );

        // A HEAD answered with Transfer-Encoding: chunked has no body either.
        client
            .send(f.request("HEAD", "/h2", up.port(), &[], b""))
            .await
            .unwrap();
        answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HEAD 2 on the pooled connection",
        )
        .await;
        let res = client.read_response(true, "HEAD 2").await.unwrap();
        assert_ok(&res, 200, "", "HEAD with Transfer-Encoding: chunked");
        assert_eq!(res.header("transfer-encoding"), Some("chunked"));

        client.send(f.get("/after", up.port())).await.unwrap();
        let req = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter",
            "GET after two HEADs",
        )
        .await;
        assert_eq!(req.target, "/after");
        let res = client
            .read_response(false, "GET after two HEADs")
            .await
            .unwrap();
        assert_ok(&res, 200, "after", "GET after two HEADs");
        assert!(res.header("connection").is_none(), "{}", res.describe());
        assert_eq!(up.accepted(), 1, "the upstream connection is reused");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_204_and_304_have_no_body_and_the_connection_goes_on() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;

        client
            .send(f.request("DELETE", "/item", up.port(), &[], b""))
            .await
            .unwrap();
        let mut conn = up.next_conn().await.unwrap();
        answer(
            &mut conn,
            b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
            "DELETE",
        )
        .await;
        let res = client.read_response(false, "the 204").await.unwrap();
        assert_eq!((res.status, res.reason.as_str()), (204, "No Content"));
        assert_ok(&res, 204, "", "204");
        assert_fields(&res.msg, &[("x-a", "1"), POWERED_BY], "204");

        // A 304 may carry the Content-Length of the representation.
        client
            .send(f.request(
                "GET",
                "/cached",
                up.port(),
                &[("If-None-Match", "\"v1\"")],
                b"",
            ))
            .await
            .unwrap();
        let req = answer(
            &mut conn,
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 42\r\n\r\n",
            "conditional GET",
        )
        .await;
        assert_eq!(req.header("if-none-match"), Some("\"v1\""));
        let res = client.read_response(false, "the 304").await.unwrap();
        assert_ok(&res, 304, "", "304");
        assert_fields(
            &res.msg,
            &[("etag", "\"v1\""), ("content-length", "42"), POWERED_BY],
            "304",
        );

        client.send(f.get("/next", up.port())).await.unwrap();
        answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext",
            "GET after 204 and 304",
        )
        .await;
        let res = client.read_response(false, "the 200").await.unwrap();
        assert_ok(&res, 200, "next", "GET after 204 and 304");
        client
            .expect_silence(Duration::from_millis(100), "after three answers")
            .await
            .unwrap();
        assert_eq!(up.accepted(), 1, "the upstream connection is reused");
    })
    .await;
}

// ---------------------------------------------------------------------------
// e. Informational responses
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_hints_arrive_before_the_final_response() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        client.send(f.get("/page", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        conn.read_request("request").await.unwrap();
        conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")
            .await
            .unwrap();
        // The 103 is forwarded at once, before the final answer exists.
        let hints = client.read_response(false, "the 103").await.unwrap();
        assert_eq!(
            (hints.status, hints.reason.as_str()),
            (103, "Early Hints"),
            "{}",
            hints.describe()
        );
        assert_eq!(
            hints.header("link"),
            Some("</style.css>; rel=preload; as=style")
        );
        assert!(hints.msg.raw_body.is_empty());
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npage")
            .await
            .unwrap();
        let res = client.read_response(false, "the 200").await.unwrap();
        assert_ok(&res, 200, "page", "the final response after 103");

        client.send(f.get("/again", up.port())).await.unwrap();
        answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain",
            "request 2",
        )
        .await;
        let res = client.read_response(false, "response 2").await.unwrap();
        assert_ok(&res, 200, "again", "the next request");
    })
    .await;
}

// ---------------------------------------------------------------------------
// f. Pipelining
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_in_one_write_get_their_responses_in_order() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        let mut batch = f.get("/one", up.port());
        batch.extend(f.request("POST", "/two", up.port(), &[], b"hello"));
        batch.extend(f.get("/three", up.port()));
        client.send(&batch).await.unwrap();

        let mut conn = up.next_conn().await.unwrap();
        let one = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none",
            "1",
        )
        .await;
        let two = answer(
            &mut conn,
            b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\ntwo",
            "2",
        )
        .await;
        let three = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthree",
            "3",
        )
        .await;
        assert_eq!(
            [
                one.target.as_str(),
                two.target.as_str(),
                three.target.as_str()
            ],
            ["/one", "/two", "/three"]
        );
        assert_eq!(
            (two.method.as_str(), two.msg.text().as_str()),
            ("POST", "hello")
        );
        assert!(one.msg.body.is_empty() && three.msg.body.is_empty());

        let res = client.read_response(false, "response 1").await.unwrap();
        assert_ok(&res, 200, "one", "response 1");
        let res = client.read_response(false, "response 2").await.unwrap();
        assert_ok(&res, 201, "two", "response 2");
        let res = client.read_response(false, "response 3").await.unwrap();
        assert_ok(&res, 200, "three", "response 3");
        client
            .expect_silence(Duration::from_millis(100), "after three responses")
            .await
            .unwrap();

        // A body split across writes, the second write carrying the rest
        // of the body and a whole next request: the boundary is exact.
        let post = f.request("POST", "/split", up.port(), &[], b"0123456789");
        let cut = post.len() - 6;
        client.send(&post[..cut]).await.unwrap();
        let head = conn.read_head("the split POST's head").await.unwrap();
        assert_eq!(head.start_line, "POST /split HTTP/1.1");
        conn.fill_to(4, "the first 4 body bytes").await.unwrap();
        let mut rest = post[cut..].to_vec();
        rest.extend(f.get("/after-split", up.port()));
        client.send(&rest).await.unwrap();
        conn.fill_to(10, "the whole body").await.unwrap();
        assert_eq!(String::from_utf8_lossy(&conn.take(10)), "0123456789");
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsplit")
            .await
            .unwrap();
        let next = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter",
            "the request after the split body",
        )
        .await;
        assert_eq!(
            (
                next.method.as_str(),
                next.target.as_str(),
                next.msg.body.len()
            ),
            ("GET", "/after-split", 0),
            "the request after the body:\n{}",
            next.msg.head_text()
        );
        let res = client.read_response(false, "the split POST").await.unwrap();
        assert_ok(&res, 200, "split", "the split POST");
        let res = client
            .read_response(false, "the GET after it")
            .await
            .unwrap();
        assert_ok(&res, 200, "after", "the GET after the split POST");
        assert_eq!(up.accepted(), 1, "one upstream connection throughout");
    })
    .await;
}

/// A pipelined batch whose middle request takes pingora's path (chunked
/// body): the request after it must still be answered, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_around_a_handed_over_one_are_all_answered_in_order() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        let mut batch = f.get("/one", up.port());
        let mut chunked = f.request(
            "POST",
            "/two",
            up.port(),
            &[("Transfer-Encoding", "chunked")],
            b"",
        );
        chunked.extend(chunk(b"hello", ""));
        chunked.extend_from_slice(b"0\r\n\r\n");
        batch.extend(chunked);
        batch.extend(f.get("/three", up.port()));
        client.send(&batch).await.unwrap();

        // Every upstream answer closes its connection, so whichever path
        // forwards a request, it arrives on a new connection.
        let mut targets = Vec::new();
        let mut last: Option<RawResponse> = None;
        for (n, body) in ["one", "two", "three"].iter().enumerate() {
            let mut conn = tokio::select! {
                conn = up.next_conn() => conn.unwrap_or_else(|e| panic!(
                    "request {} of the pipelined batch never reached the upstream ({e:#}); got {targets:?}",
                    n + 1,
                )),
                end = client.read_to_end("while waiting for the next pipelined request") => panic!(
                    "after {} answered requests ({targets:?}) the proxy ended the client connection \
                     ({end:?}) without forwarding pipelined request {}; last response:\n{}",
                    n,
                    n + 1,
                    last.as_ref().map_or(String::new(), RawResponse::describe)
                ),
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let req = answer(&mut conn, response.as_bytes(), body).await;
            targets.push((req.target.clone(), req.msg.text()));
            conn.close().await;
            let res = client.read_response(false, body).await.unwrap();
            let what = format!("pipelined response {}", n + 1);
            if n == 1 {
                assert_forwarded(&res, 200, body, &what); // pingora's path
            } else {
                assert_ok(&res, 200, body, &what);
            }
            last = Some(res);
        }
        assert_eq!(
            targets,
            vec![
                ("/one".to_owned(), String::new()),
                ("/two".to_owned(), "hello".to_owned()),
                ("/three".to_owned(), String::new())
            ]
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// g. Stale pooled upstream connections
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_upstream_connection_closed_by_the_sandbox_is_replaced() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        let first = f.pooled(&mut up, &mut client).await;
        // The sandbox closes the idle keep-alive connection.
        first.close().await;

        client.send(f.get("/2", up.port())).await.unwrap();
        let mut second = up.next_conn().await.unwrap();
        let req = answer(
            &mut second,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok2",
            "request 2",
        )
        .await;
        assert_eq!(req.target, "/2");
        let res = client.read_response(false, "response 2").await.unwrap();
        assert_ok(
            &res,
            200,
            "ok2",
            "request 2 after the sandbox closed the idle connection",
        );
        assert_eq!(up.accepted(), 2, "a second upstream connection");

        // An answer with `Connection: close` keeps the client connection
        // but not the upstream one: the next request gets a new connection.
        client.send(f.get("/3", up.port())).await.unwrap();
        answer(
            &mut second,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok3",
            "request 3",
        )
        .await;
        let res = client.read_response(false, "response 3").await.unwrap();
        assert_ok(&res, 200, "ok3", "an answer with Connection: close");
        assert_eq!(res.header("connection"), None, "{}", res.describe());
        second
            .expect_end("the proxy closes the connection the sandbox wants closed")
            .await
            .unwrap();
        client.send(f.get("/4", up.port())).await.unwrap();
        let mut third = up.next_conn().await.unwrap();
        answer(
            &mut third,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok4",
            "request 4",
        )
        .await;
        let res = client.read_response(false, "response 4").await.unwrap();
        assert_ok(&res, 200, "ok4", "request 4");
        assert_eq!(up.accepted(), 3);
    })
    .await;
}

/// The race the retry exists for: the pooled connection looks open, the
/// request goes out on it, and the sandbox closes it without answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_on_a_pooled_connection_closed_without_an_answer_is_retried_on_a_new_one() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        let mut first = f.pooled(&mut up, &mut client).await;

        client.send(f.get("/2", up.port())).await.unwrap();
        let req = first
            .read_request("request 2 on the pooled connection")
            .await
            .unwrap();
        assert_eq!(req.target, "/2");
        first.close().await;
        let mut second = up.next_conn().await.unwrap();
        let req = answer(
            &mut second,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok2",
            "retry",
        )
        .await;
        assert_eq!(req.target, "/2", "the retried request");
        let res = client.read_response(false, "response 2").await.unwrap();
        assert_ok(&res, 200, "ok2", "the retried GET");
        assert_eq!(up.accepted(), 2);
    })
    .await;
}

/// RFC 9110 §9.2.2: "A proxy MUST NOT automatically retry non-idempotent
/// requests." The sandbox may have acted on the POST before closing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_on_a_pooled_connection_closed_without_an_answer_is_not_sent_twice() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        let mut first = f.pooled(&mut up, &mut client).await;

        client
            .send(f.request("POST", "/charge", up.port(), &[], b"amount=100"))
            .await
            .unwrap();
        let req = first.read_request("the POST").await.unwrap();
        assert_eq!(
            (req.target.as_str(), req.msg.text().as_str()),
            ("/charge", "amount=100")
        );
        first.close().await;
        // Either the client gets its answer, or the POST shows up again.
        let res = tokio::select! {
            res = client.read_response(false, "the answer to the POST") => res.unwrap(),
            Ok(mut again) = up.next_conn() => {
                let dup = again.read_request("a second copy of the POST").await.unwrap();
                panic!(
                    "the proxy sent the POST again on a new upstream connection: {} {} with body {:?}",
                    dup.method,
                    dup.target,
                    dup.msg.text()
                );
            }
        };
        assert_rejected(
            &res,
            502,
            "PROXY::UPSTREAM_ERROR",
            &format!(
                "Port {} of sandbox {} broke the connection or sent an invalid response.",
                up.port(),
                f.id
            ),
            "a POST whose connection closed",
        );
        assert_eq!(up.accepted(), 1, "the POST must not be sent again");
    })
    .await;
}

// ---------------------------------------------------------------------------
// h, i, j. Broken and silent upstreams
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_answering_garbage_gets_a_502_json_answer_and_the_connection_closes() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        client.send(f.get("/garbage", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        answer(
            &mut conn,
            b"SSH-2.0-OpenSSH_9.6\r\nthis is not http\r\n\r\n",
            "request",
        )
        .await;
        let res = client.read_response(false, "the 502").await.unwrap();
        assert_rejected(
            &res,
            502,
            "PROXY::UPSTREAM_ERROR",
            &format!(
                "Port {} of sandbox {} broke the connection or sent an invalid response.",
                up.port(),
                f.id
            ),
            "garbage from the upstream",
        );
        assert_eq!(client.expect_end("after the 502").await.unwrap(), End::Eof);
        // The proxy does not keep the broken connection.
        conn.expect_end("the proxy closes the broken upstream connection")
            .await
            .unwrap();

        // Other answers that are not a usable response: a 101 to a request
        // without Upgrade, and a Content-Length that is not a number.
        for (bad, what) in [
            (
                &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"[..],
                "an unrequested 101",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n12abc",
                "an invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                "conflicting Content-Lengths",
            ),
        ] {
            let mut client = f.client().await;
            client.send(f.get("/bad", up.port())).await.unwrap();
            let mut conn = up.next_conn().await.unwrap();
            answer(&mut conn, bad, what).await;
            let res = client.read_response(false, what).await.unwrap();
            assert_rejected(
                &res,
                502,
                "PROXY::UPSTREAM_ERROR",
                &format!(
                    "Port {} of sandbox {} broke the connection or sent an invalid response.",
                    up.port(),
                    f.id
                ),
                what,
            );
            assert_eq!(client.expect_end(what).await.unwrap(), End::Eof, "{what}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_answers_gets_a_504_after_the_idle_timeout() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("[timeouts]\nidle_seconds = 1\n", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        let sent = Instant::now();
        client.send(f.get("/silent", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        conn.read_request("request").await.unwrap();
        // The upstream keeps the connection open and says nothing.
        let res = client.read_response(false, "the 504").await.unwrap();
        let waited = sent.elapsed();
        assert_rejected(
            &res,
            504,
            "PROXY::UPSTREAM_TIMEOUT",
            &format!(
                "Port {} of sandbox {} did not answer in time.",
                up.port(),
                f.id
            ),
            "a silent upstream",
        );
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "answered after {waited:?}; idle_seconds is 1"
        );
        assert_eq!(client.expect_end("after the 504").await.unwrap(), End::Eof);
        drop(conn);

        // Silence in the middle of a body: the response has started, so
        // the proxy can only end the connection, about a second later.
        let mut client = f.client().await;
        client.send(f.get("/stalls", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst",
            "request 2",
        )
        .await;
        let head = client
            .read_head("the stalled response's head")
            .await
            .unwrap();
        assert_eq!(head.header("content-length"), Some("100"));
        client.fill_to(5, "the first body bytes").await.unwrap();
        let stalled = Instant::now();
        let (rest, _) = client.read_to_end("the stalled response").await.unwrap();
        let waited = stalled.elapsed();
        assert_eq!(String::from_utf8_lossy(&rest), "first");
        assert!(
            waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
            "the stalled response ended after {waited:?}; idle_seconds is 1"
        );
        conn.expect_end("the proxy closes the stalled upstream connection")
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_total_time_limit_gets_a_504_even_while_bytes_trickle() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("[timeouts]\ntotal_seconds = 1\n", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        let sent = Instant::now();
        client.send(f.get("/slow-head", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        conn.read_request("request").await.unwrap();
        // The head trickles in, a byte every 100 ms: never idle, never done.
        let head = b"HTTP/1.1 200 OK\r\nX-Slow: 1234567890abcdefghijklmnopqrstuvwxyz\r\n";
        let mut answered = None;
        for byte in head {
            tokio::select! {
                res = client.read_response(false, "the 504") => {
                    answered = Some(res.unwrap());
                    break;
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            if conn.send([*byte]).await.is_err() {
                break;
            }
        }
        let res = match answered {
            Some(res) => res,
            None => client.read_response(false, "the 504").await.unwrap(),
        };
        let waited = sent.elapsed();
        assert_rejected(
            &res,
            504,
            "PROXY::UPSTREAM_TIMEOUT",
            &format!(
                "The request to port {} of sandbox {} exceeded the total time limit.",
                up.port(),
                f.id
            ),
            "a response head slower than total_seconds",
        );
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "answered after {waited:?}; total_seconds is 1"
        );
        assert_eq!(client.expect_end("after the 504").await.unwrap(), End::Eof);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_after_a_long_keep_alive_wait_is_timed_from_its_first_byte() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("[timeouts]\ntotal_seconds = 1\n", &[]).await;
        let server = upstream::serve(|_: Request<Incoming>| async { Response::new(full("fresh")) })
            .await
            .unwrap();
        let port = server.port();
        let mut client = f.client().await;
        client.send(f.get("/first", port)).await.unwrap();
        let res = client.read_response(false, "first").await.unwrap();
        assert_ok(&res, 200, "fresh", "the first request");

        // The connection then idles for longer than total_seconds: that
        // wait is not part of the next request.
        client
            .expect_silence(Duration::from_millis(1300), "the keep-alive wait")
            .await
            .unwrap();
        client.send(f.get("/second", port)).await.unwrap();
        let res = client.read_response(false, "second").await.unwrap();
        assert_ok(&res, 200, "fresh", "a request after 1.3 s of keep-alive");

        // Both durations are the requests' own (milliseconds here), not
        // the keep-alive wait.
        let series = |name: &str| format!("{name}{{sandbox=\"{}\",port=\"{port}\"}}", f.id);
        let (count, sum) = (
            series("sandgate_proxy_request_duration_seconds_count"),
            series("sandgate_proxy_request_duration_seconds_sum"),
        );
        let admin = f.stack.proxy.admin();
        let text = poll_until("both requests to be counted", SETUP, || async {
            let text = admin.get_text("/metrics").await?.1;
            Ok((prom::sample(&text, &count) == Some(2.0)).then_some(text))
        })
        .await
        .unwrap();
        let total = prom::sample(&text, &sum).unwrap();
        assert!(total < 0.5, "the two requests took {total} s in all");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_closing_mid_body_ends_the_client_connection_without_a_complete_body() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        // A second request is pipelined behind the first: it must never be
        // answered on this connection (the first response is unfinished).
        let mut batch = f.get("/truncated", up.port());
        batch.extend(f.get("/never", up.port()));
        client.send(&batch).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
            "request",
        )
        .await;
        let head = client.read_head("the response head").await.unwrap();
        assert_eq!(head.start_line, "HTTP/1.1 200 OK");
        assert_eq!(head.header("content-length"), Some("100"));
        client.fill_to(10, "the first 10 body bytes").await.unwrap();
        conn.close().await;
        let (rest, end) = client
            .read_to_end("the end of the connection")
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&rest),
            "0123456789",
            "exactly the 10 bytes the upstream sent, then the end ({end:?}); no second response"
        );
        assert!(
            up.try_next_conn().is_none() && up.accepted() == 1,
            "the pipelined request must not be forwarded after a broken response"
        );

        // A chunked body that turns malformed: what came before is
        // forwarded, the bad bytes are not, and the connection ends.
        let mut client = f.client().await;
        client.send(f.get("/bad-chunks", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        response.extend(chunk(b"good", ""));
        answer(&mut conn, &response, "the chunked request").await;
        let head = client.read_head("the chunked head").await.unwrap();
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
        client.fill_to(9, "the good chunk").await.unwrap();
        conn.send(b"zz\r\nHTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        let (rest, _) = client.read_to_end("after a malformed chunk").await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&rest),
            "4\r\ngood\r\n",
            "only the well-formed chunk, then the end"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// k. Request bodies
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_arrive_exactly_whether_sized_split_chunked_or_large() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let body: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();

        // 5000 bytes with Content-Length, the head and 1000 bytes in one
        // write, the rest once the upstream has seen those.
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        let whole = f.request("PUT", "/upload", up.port(), &[], &body);
        let split = whole.len() - 4000;
        client.send(&whole[..split]).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let head = conn.read_head("the request head").await.unwrap();
        assert_eq!(head.start_line, "PUT /upload HTTP/1.1");
        assert_eq!(head.header("content-length"), Some("5000"));
        conn.fill_to(1000, "the first 1000 body bytes")
            .await
            .unwrap();
        client.send(&whole[split..]).await.unwrap();
        conn.fill_to(5000, "the whole body").await.unwrap();
        assert!(
            conn.take(5000) == body,
            "the upstream received a different body"
        );
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ngot 5000")
            .await
            .unwrap();
        let res = client
            .read_response(false, "the upload answer")
            .await
            .unwrap();
        assert_ok(&res, 200, "got 5000", "a split 5000-byte body");
        conn.expect_silence(Duration::from_millis(100), "no stray bytes after the body")
            .await
            .unwrap();

        // A chunked body (pingora's path): the content arrives intact, and
        // the client connection goes on with a fast-path request.
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        let mut chunked = f.request(
            "POST",
            "/chunked-upload",
            up.port(),
            &[("Transfer-Encoding", "chunked")],
            b"",
        );
        chunked.extend(chunk(&body[..3000], ";ext=1"));
        chunked.extend(chunk(&body[3000..], ""));
        chunked.extend_from_slice(b"0\r\n\r\n");
        client.send(&chunked).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let req = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nchunked",
            "the chunked upload",
        )
        .await;
        assert_eq!(req.target, "/chunked-upload");
        assert!(
            req.msg.body == body,
            "the upstream received {} different bytes from a chunked upload (head: {})",
            req.msg.body.len(),
            req.msg.head_text()
        );
        conn.close().await;
        let res = client
            .read_response(false, "the chunked upload answer")
            .await
            .unwrap();
        assert_forwarded(&res, 200, "chunked", "a chunked upload (pingora's path)");
        client
            .send(f.get("/after-chunked", up.port()))
            .await
            .unwrap();
        let mut conn = up.next_conn().await.unwrap();
        answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter",
            "GET after",
        )
        .await;
        let res = client
            .read_response(false, "GET after the upload")
            .await
            .unwrap();
        assert_ok(&res, 200, "after", "the request after a chunked upload");

        // Over the fast path's 64 KiB limit (pingora's path).
        let large: Vec<u8> = (0..100 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        client
            .send(f.request("POST", "/large", up.port(), &[], &large))
            .await
            .unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let req = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nlarge",
            "the 100 KiB upload",
        )
        .await;
        assert!(
            req.msg.body == large,
            "the upstream received {} different bytes from a 100 KiB upload",
            req.msg.body.len()
        );
        let res = client
            .read_response(false, "the large upload answer")
            .await
            .unwrap();
        assert_forwarded(&res, 200, "large", "a 100 KiB upload (pingora's path)");
    })
    .await;
}

// ---------------------------------------------------------------------------
// l. Header hygiene
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_credentials_and_hop_headers_never_reach_the_sandbox_and_forwarding_headers_do() {
    bounded(TEST_BUDGET, async {
        let extra = format!("[auth]\nedge_api_key = \"{EDGE_KEY}\"\n");
        let f = Fixture::start(&extra, &[("OpenSandbox-Edge-Key", EDGE_KEY)]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let route = f.route(up.port());
        let mut client = f.client().await;
        let request = format!(
            "GET /hygiene?q=1 HTTP/1.1\r\n\
             Host: app.example.test:8443\r\n\
             OpenSandbox-Ingress-To: {route}\r\n\
             OPEN-SANDBOX-INGRESS: {route}\r\n\
             OpenSandbox-Secure-Access: secure-token-value\r\n\
             OpenSandbox-Edge-Key: {EDGE_KEY}\r\n\
             Connection: keep-alive\r\n\
             Keep-Alive: timeout=5\r\n\
             X-Forwarded-For: 1.2.3.4\r\n\
             X-Forwarded-Proto: gopher\r\n\
             X-Forwarded-Host: spoofed.example\r\n\
             Authorization: Bearer app-token\r\n\
             X-Custom: kept\r\n\r\n"
        );
        client.send(&request).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let req = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\
              Reverse-Proxy-Server-Powerby: upstream-own\r\n\
              Connection: keep-alive\r\nKeep-Alive: timeout=5, max=100\r\nX-Up: l\r\n\r\nok",
            "the request",
        )
        .await;
        let head = req.msg.head_text();
        assert_eq!(req.target, "/hygiene?q=1");
        for gone in [
            "OpenSandbox-Ingress-To",
            "OPEN-SANDBOX-INGRESS",
            "OpenSandbox-Secure-Access",
            "OpenSandbox-Edge-Key",
            "Connection",
            "Keep-Alive",
        ] {
            assert!(!req.msg.has(gone), "the sandbox received {gone}:\n{head}");
        }
        for secret in [EDGE_KEY, "secure-token-value", "spoofed.example", "gopher"] {
            assert!(
                !head.contains(secret),
                "the sandbox saw {secret:?}:\n{head}"
            );
        }
        assert_eq!(
            req.all("x-forwarded-for"),
            vec!["1.2.3.4, 127.0.0.1"],
            "{head}"
        );
        assert_eq!(req.all("x-forwarded-proto"), vec!["http"], "{head}");
        assert_eq!(
            req.all("x-forwarded-host"),
            vec!["app.example.test:8443"],
            "{head}"
        );
        assert_eq!(req.all("host"), vec!["app.example.test:8443"], "{head}");
        assert_eq!(req.all("authorization"), vec!["Bearer app-token"], "{head}");
        assert_eq!(req.all("x-custom"), vec!["kept"], "{head}");

        let res = client.read_response(false, "the response").await.unwrap();
        assert_ok(&res, 200, "ok", "a response with its own marker");
        assert_fields(
            &res.msg,
            &[("content-length", "2"), ("x-up", "l"), POWERED_BY],
            "the upstream's Connection and Keep-Alive are the proxy's business",
        );

        // Without a chain from the client, X-Forwarded-For starts one.
        let plain = f.request(
            "GET",
            "/plain",
            up.port(),
            &[("OpenSandbox-Edge-Key", EDGE_KEY)],
            b"",
        );
        client.send(&plain).await.unwrap();
        let req = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "request 2",
        )
        .await;
        assert_eq!(req.all("x-forwarded-for"), vec!["127.0.0.1"]);
        assert_eq!(req.all("x-forwarded-host"), vec!["fast.test"]);
        assert!(!req.msg.has("OpenSandbox-Edge-Key"));
        let res = client.read_response(false, "response 2").await.unwrap();
        assert_ok(&res, 200, "ok", "request 2");
    })
    .await;
}

// ---------------------------------------------------------------------------
// m. Connection: close from the client
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_from_the_client_is_answered_with_close_and_the_proxy_closes() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        // A request pipelined after the closing one is never forwarded.
        let mut batch = f.request("GET", "/bye", up.port(), &[("Connection", "close")], b"");
        batch.extend(f.get("/never", up.port()));
        client.send(&batch).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let req = answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye",
            "request",
        )
        .await;
        assert!(
            !req.msg.has("connection"),
            "the client's Connection is hop-by-hop:\n{}",
            req.msg.head_text()
        );
        let res = client.read_response(false, "the response").await.unwrap();
        assert_ok(&res, 200, "bye", "Connection: close");
        assert_fields(
            &res.msg,
            &[("content-length", "3"), POWERED_BY, ("connection", "close")],
            "the answer to Connection: close",
        );
        assert_eq!(
            client.expect_end("after the response").await.unwrap(),
            End::Eof
        );
        conn.expect_silence(
            Duration::from_millis(100),
            "no request after the closing one",
        )
        .await
        .unwrap();
        assert_eq!(up.accepted(), 1);

        // A client that half-closes right after its request (`nc -N`)
        // still gets the whole response, then the end.
        // (A fresh upstream: nothing pooled, so a new connection.)
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        client.send(f.get("/half", up.port())).await.unwrap();
        client.shutdown_write().await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        answer(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhalf",
            "the half-closed client's request",
        )
        .await;
        let res = client.read_response(false, "the response").await.unwrap();
        assert_forwarded(&res, 200, "half", "a half-closed client");
        assert_eq!(
            client.expect_end("after the response").await.unwrap(),
            End::Eof
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// n. Nothing listening
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_with_nothing_listening_gets_a_502_json_answer_naming_the_sandbox() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut client = f.client().await;
        client.send(f.get("/", port)).await.unwrap();
        let res = client.read_response(false, "the 502").await.unwrap();
        assert_rejected(
            &res,
            502,
            "PROXY::PORT_NOT_LISTENING",
            &format!("Nothing listens on port {port} of sandbox {}.", f.id),
            "a closed port",
        );
        assert_eq!(client.expect_end("after the 502").await.unwrap(), End::Eof);

        // A browser gets the same answer as a page; HEAD gets the head only.
        let mut client = f.client().await;
        client
            .send(f.request("GET", "/", port, &[("Accept", "text/html")], b""))
            .await
            .unwrap();
        let res = client.read_response(false, "the HTML 502").await.unwrap();
        assert_eq!(res.status, 502);
        assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(
            res.msg.text().contains("PROXY::PORT_NOT_LISTENING"),
            "{}",
            res.describe()
        );
        let mut client = f.client().await;
        client
            .send(f.request("HEAD", "/", port, &[], b""))
            .await
            .unwrap();
        let res = client.read_response(true, "the HEAD 502").await.unwrap();
        assert_eq!(res.status, 502, "{}", res.describe());
        assert_eq!(res.header("connection"), Some("close"));
        assert_eq!(
            client.expect_end("after the HEAD 502").await.unwrap(),
            End::Eof
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Response framing the proxy must not pass on as is
// ---------------------------------------------------------------------------

/// RFC 9112 §6.3: a response with both Transfer-Encoding and Content-Length
/// is framed by the chunked coding, and "an intermediary that chooses to
/// forward the message MUST first remove the received Content-Length field".
/// Forwarding both lets a downstream cache or proxy that trusts the length
/// read a different response than the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_with_both_chunked_and_content_length_is_not_forwarded_with_both() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        client.send(f.get("/both", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let mut response =
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        response.extend(chunk(b"smuggled-length", ""));
        response.extend_from_slice(b"0\r\n\r\n");
        answer(&mut conn, &response, "request").await;
        let head = client.read_head("the response head").await.unwrap();
        assert!(
            !(head.has("content-length") && head.has("transfer-encoding")),
            "the client got both framings:\n{}",
            head.head_text()
        );
    })
    .await;
}

/// Bytes after the end of a response (in the same read, or arriving while
/// the connection is idle in the pool) are not a response to anything:
/// they are never forwarded, and the connection is not used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_beyond_a_response_are_never_forwarded_and_that_connection_is_not_reused() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let spoof: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nspoof!";
        for late in [false, true] {
            let what = if late {
                "an unsolicited response sent while the connection is idle"
            } else {
                "a second response in the same write as the first"
            };
            let mut up = ScriptedUpstream::bind().await.unwrap();
            let mut client = f.client().await;
            client.send(f.get("/1", up.port())).await.unwrap();
            let mut first = up.next_conn().await.unwrap();
            let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
            if !late {
                response.extend_from_slice(spoof);
            }
            answer(&mut first, &response, "request 1").await;
            let res = client.read_response(false, "response 1").await.unwrap();
            assert_ok(&res, 200, "ok", what);
            if late {
                first.send(spoof).await.unwrap();
                // Wait until the bytes sit in the proxy's socket (then the
                // proxy can know; before, nobody could).
                let (proxy_port, port) = (first.peer_port(), up.port());
                let arrived = poll_until(
                    "the unsolicited bytes to reach the proxy",
                    SETUP,
                    || async move {
                        let queued = tcp_rx_queue(proxy_port, port)?;
                        Ok((queued >= Some(spoof.len() as u64)).then_some(()))
                    },
                )
                .await;
                arrived.unwrap();
            }
            client.send(f.get("/2", up.port())).await.unwrap();
            let mut second = tokio::select! {
                conn = up.next_conn() => conn.unwrap(),
                Ok(req) = first.read_request("request 2 on the first connection") => panic!(
                    "{what}: the proxy reused the connection for {:?}",
                    req.target
                ),
            };
            answer(
                &mut second,
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal",
                "request 2",
            )
            .await;
            let res = client.read_response(false, "response 2").await.unwrap();
            assert_ok(&res, 200, "real", what);
        }
    })
    .await;
}

/// URI, server-proxy and wildcard routes on the fast path: the prefix is
/// stripped, the query and percent-encoding are kept, Host is preserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_and_host_routes_forward_the_rewritten_target_on_the_fast_path() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let (id, port) = (f.id.clone(), up.port());
        let wildcard = format!("{id}-{port}.sandbox.localhost");
        let cases = [
            (
                format!("/{id}/{port}/a%20b/%2541?x=1&y=%2F&z"),
                "fast.test",
                "/a%20b/%2541?x=1&y=%2F&z",
            ),
            (format!("/{id}/{port}?q=1"), "fast.test", "/?q=1"),
            (format!("/{id}/{port}"), "fast.test", "/"),
            (format!("/{id}/{port}//double"), "fast.test", "//double"),
            (
                format!("/v1/sandboxes/{id}/proxy/{port}/p%2Fq?k=v"),
                "fast.test",
                "/p%2Fq?k=v",
            ),
            (format!("/sandboxes/{id}/proxy/{port}"), "fast.test", "/"),
            ("/w?x=%41".to_owned(), wildcard.as_str(), "/w?x=%41"),
        ];
        let mut client = f.client().await;
        let mut conn: Option<RawConn> = None;
        for (path, host, want) in &cases {
            client
                .send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"))
                .await
                .unwrap();
            let mut current = match conn.take() {
                Some(conn) => conn,
                None => up.next_conn().await.unwrap(),
            };
            let req = answer(
                &mut current,
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                path,
            )
            .await;
            assert_eq!(&req.target, want, "{path} (Host {host})");
            assert_eq!(req.all("host"), vec![*host], "{path}");
            assert_eq!(req.all("x-forwarded-host"), vec![*host], "{path}");
            let res = client.read_response(false, path).await.unwrap();
            assert_ok(&res, 200, "ok", path);
            conn = Some(current);
        }
        assert_eq!(
            up.accepted(),
            1,
            "one pooled upstream connection throughout"
        );
    })
    .await;
}

/// Where a bare LF (no CR before it) is in `bytes`.
fn bare_lf(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find(|&i| bytes[i] == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

/// Chunk framing is forwarded verbatim, so the proxy's view of where a
/// body ends must be the only possible one. Line ends of a bare LF are
/// read leniently by some parsers and not at all by others (RFC 9112
/// §7.1 frames chunks with CRLF; §2.2 allows a lone LF only in the head):
/// passed on as they are, a sandbox (untrusted code) can make the proxy
/// and a strict downstream parser (a CDN or load balancer pooling
/// connections to this proxy) disagree on where a response ends, so the
/// rest of its bytes are read as the next response on that connection —
/// possibly one meant for another sandbox. The proxy must refuse such a
/// body or normalise it; it must never forward a bare-LF chunk line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_framing_with_bare_lf_line_ends_is_never_forwarded_verbatim() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let mut up = ScriptedUpstream::bind().await.unwrap();

        // A head with bare LF line ends is rewritten with CRLF (control).
        let mut client = f.client().await;
        client.send(f.get("/lf-head", up.port())).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        answer(
            &mut conn,
            b"HTTP/1.1 200 OK\nContent-Length: 2\nX-Up: lf\n\nok",
            "lf head",
        )
        .await;
        let res = client
            .read_response(false, "an LF-only head")
            .await
            .unwrap();
        assert_ok(&res, 200, "ok", "an LF-only head");
        assert_eq!(res.header("x-up"), Some("lf"));

        let cases: [(&[u8], &str); 5] = [
            (
                b"5;ext\nhello\r\n0\r\n\r\n",
                "a size line with an extension ending in LF",
            ),
            (b"5\nhello\r\n0\r\n\r\n", "a size line ending in LF"),
            (b"5\r\nhello\n0\r\n\r\n", "chunk data followed by LF"),
            (
                b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n",
                "a trailer line ending in LF",
            ),
            (b"5\r\nhello\r\n0\n\n", "a last chunk and end in LF"),
        ];
        let mut failures = Vec::new();
        for (body, what) in cases {
            // A fresh upstream each time: nothing pooled, a new connection.
            let mut up = ScriptedUpstream::bind().await.unwrap();
            let mut client = f.client().await;
            client.send(f.get("/lf-chunks", up.port())).await.unwrap();
            let mut conn = up.next_conn().await.unwrap();
            let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            response.extend_from_slice(body);
            answer(&mut conn, &response, what).await;
            conn.close().await;
            let head = client.read_head(what).await.unwrap();
            if head.start_line.starts_with("HTTP/1.1 502") {
                continue; // refused before anything was sent: fine
            }
            assert_eq!(head.start_line, "HTTP/1.1 200 OK", "{what}");
            // Whatever follows the head (the proxy may also end the
            // connection early, refusing the body): no bare LF.
            let _ = client.fill_to(body.len(), what).await;
            let got = client.buffered();
            if let Some(at) = bare_lf(got) {
                failures.push(format!(
                    "{what}: upstream sent {:?}, client got {:?} (bare LF at byte {at})",
                    String::from_utf8_lossy(body),
                    String::from_utf8_lossy(got)
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "the proxy forwarded chunk framing with bare LF line ends verbatim:\n{}",
            failures.join("\n")
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// 2. Metrics and access log
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_path_requests_are_counted_in_metrics_and_the_access_log() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", &[]).await;
        let server = upstream::serve(|request: Request<Incoming>| async move {
            let status = match (request.method(), request.uri().path()) {
                (&Method::POST, _) => StatusCode::CREATED,
                (_, "/missing") => StatusCode::NOT_FOUND,
                _ => StatusCode::OK,
            };
            let body = match status {
                StatusCode::CREATED => "created",
                StatusCode::NOT_FOUND => "nope",
                _ => "hello world",
            };
            let mut response = Response::new(full(body));
            *response.status_mut() = status;
            response
        })
        .await
        .unwrap();
        let port = server.port();
        let series = |name: &str, class: Option<&str>| match class {
            Some(class) => format!(
                "{name}{{sandbox=\"{}\",port=\"{port}\",class=\"{class}\"}}",
                f.id
            ),
            None => format!("{name}{{sandbox=\"{}\",port=\"{port}\"}}", f.id),
        };

        // Five 2xx (three GETs, a POST with a 7-byte body, a HEAD) and a
        // 404, all on one keep-alive connection.
        let mut client = f.client().await;
        for n in 0..3 {
            client.send(f.get(&format!("/get{n}"), port)).await.unwrap();
            let res = client.read_response(false, "GET").await.unwrap();
            assert_ok(&res, 200, "hello world", "GET");
        }
        client
            .send(f.request("POST", "/post", port, &[], b"payload"))
            .await
            .unwrap();
        let res = client.read_response(false, "POST").await.unwrap();
        assert_ok(&res, 201, "created", "POST");
        client
            .send(f.request("HEAD", "/head", port, &[], b""))
            .await
            .unwrap();
        let res = client.read_response(true, "HEAD").await.unwrap();
        assert_ok(&res, 200, "", "HEAD");
        client.send(f.get("/missing", port)).await.unwrap();
        let res = client.read_response(false, "404").await.unwrap();
        assert_ok(&res, 404, "nope", "404");

        let proxy = &f.stack.proxy;
        // A request is counted after its response went out: wait until the
        // last one is (its duration is recorded last).
        let twos = series("sandgate_proxy_requests_total", Some("2xx"));
        let durations = series("sandgate_proxy_request_duration_seconds_count", None);
        let counted = poll_until("six requests to be counted", SETUP, || async {
            let text = proxy.admin().get_text("/metrics").await?.1;
            let done = prom::sample(&text, &durations) == Some(6.0);
            Ok(done.then_some(text))
        })
        .await;
        let text = match counted {
            Ok(text) => text,
            Err(e) => {
                let text = proxy.admin().get_text("/metrics").await.unwrap().1;
                let mine: Vec<&str> = text.lines().filter(|l| l.contains(&f.id)).collect();
                panic!("{e:#}\nthe sandbox's series:\n{}", mine.join("\n"));
            }
        };
        let value = |name: &str, class: Option<&str>| prom::sample(&text, &series(name, class));
        assert_eq!(prom::sample(&text, &twos), Some(5.0), "2xx");
        assert_eq!(
            value("sandgate_proxy_requests_total", Some("4xx")),
            Some(1.0)
        );
        assert_eq!(
            value("sandgate_proxy_requests_total", Some("5xx")),
            Some(0.0)
        );
        assert_eq!(
            value("sandgate_proxy_response_bytes_total", None),
            Some((3 * 11 + 7 + 4) as f64),
            "response body bytes: three 11-byte GETs, 7 for the POST, 4 for the 404"
        );
        assert_eq!(
            value("sandgate_proxy_request_bytes_total", None),
            Some(7.0),
            "request body bytes: the POST's 7"
        );
        assert_eq!(
            value("sandgate_proxy_request_duration_seconds_count", None),
            Some(6.0)
        );
        assert_eq!(value("sandgate_proxy_open_connections", None), Some(0.0));

        // A failure on the fast path is counted too: as a 5xx of its port
        // and by its code.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let code = "sandgate_proxy_rejected_total{code=\"PROXY::PORT_NOT_LISTENING\"}";
        let before = prom::sample(&text, code).unwrap_or(0.0);
        let mut refused = f.client().await;
        refused.send(f.get("/", closed)).await.unwrap();
        let res = refused.read_response(false, "the 502").await.unwrap();
        assert_eq!(res.status, 502, "{}", res.describe());
        let closed_5xx = format!(
            "sandgate_proxy_requests_total{{sandbox=\"{}\",port=\"{closed}\",class=\"5xx\"}}",
            f.id
        );
        let counted = poll_until("the 502 to be counted", SETUP, || async {
            let text = proxy.admin().get_text("/metrics").await?.1;
            let five = prom::sample(&text, &closed_5xx);
            let rejected = prom::sample(&text, code);
            Ok((five == Some(1.0) && rejected == Some(before + 1.0)).then_some(()))
        })
        .await;
        counted.unwrap();

        // One access-log line per request.
        let marker = format!("sandbox.port={port} ");
        let logged = poll_until("six access-log lines", SETUP, || async {
            let log = std::fs::read_to_string(proxy.log_path())?;
            let lines: Vec<String> = log
                .lines()
                .filter(|l| l.contains(&f.id) && l.contains(&marker))
                .map(str::to_owned)
                .collect();
            Ok((lines.len() >= 6).then_some(lines))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\nproxy log:\n{}", proxy.log_tail(30)));
        assert_eq!(logged.len(), 6, "{logged:#?}");
        for (line, status) in logged.iter().zip([200, 200, 200, 201, 200, 404]) {
            assert!(
                line.contains(&format!("http.status={status}")),
                "want status {status} in {line}"
            );
        }
    })
    .await;
}
