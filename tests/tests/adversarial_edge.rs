//! Adversarial end-to-end tests of the edge proxy, as an attacker would
//! try them: raw-TCP clients, the real `sandgate-proxy` (and control plane,
//! for the server-proxy relay), and a scripted raw upstream that records
//! exactly the bytes the sandbox receives.
//!
//! - Smuggling shapes on both proxy paths: `Connection` naming the framing
//!   fields, Content-Length / Transfer-Encoding combinations, duplicate and
//!   list-valued lengths, a second `Host`, pipelines that cross from the
//!   fast path to pingora's and back.
//! - Credential hygiene: the lifecycle API key, the routing headers, the
//!   secure-access token and the edge key never reach the sandbox, in any
//!   route mode (header, legacy header, URI, wildcard, server-proxy, the
//!   control plane's relay), on either path.
//! - A differential check: the same request forwarded by the fast path and
//!   by pingora's path (forced with `Expect`) reaches the sandbox with the
//!   same fields, byte for byte; and h2c requests carry their authority as
//!   `Host`.
//!
//! pingora's path is forced with `Expect: 100-continue` (the fast path
//! never forwards it) or with more header fields than the fast parser takes.
//! Needs `cargo build --workspace` first (or `SANDGATE_CONTROL_BIN` /
//! `SANDGATE_PROXY_BIN`).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sandgate_tests::raw::{RawConn, RawRequest, RawResponse, ScriptedUpstream, chunk};
use sandgate_tests::{RoutedSandbox, bounded};
use tokio::net::TcpStream;

/// The whole test, stack startup included.
const TEST_BUDGET: Duration = Duration::from_secs(20);
/// Waiting for the sandbox and its route.
const SETUP: Duration = Duration::from_secs(8);
/// The edge key every request carries (and the sandbox must never see).
const EDGE_KEY: &str = "edge-key-adversarial-0123456789";
/// Secrets sent along; none may appear in what the sandbox receives.
const API_KEY_A: &str = "lifecycle-key-aaaa";
const API_KEY_B: &str = "lifecycle-key-bbbb";
const SECURE_TOKEN: &str = "secure-access-token-cccc";
/// A short answer that keeps the upstream connection reusable.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Which proxy path a request takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The HTTP/1.1 fast path.
    Fast,
    /// pingora's pipeline (`Expect: 100-continue` hands it over).
    Pingora,
}

const PATHS: [Path; 2] = [Path::Fast, Path::Pingora];

impl Path {
    /// The fields that put a request on this path.
    fn fields(self) -> &'static str {
        match self {
            Self::Fast => "",
            Self::Pingora => "Expect: 100-continue\r\n",
        }
    }
}

/// A control plane and proxy (edge key required) on the fake runtime, with
/// one running sandbox.
struct Fixture(RoutedSandbox);

impl std::ops::Deref for Fixture {
    type Target = RoutedSandbox;
    fn deref(&self) -> &RoutedSandbox {
        &self.0
    }
}

impl Fixture {
    async fn start(proxy_extra: &str) -> Self {
        let proxy_extra = format!("[auth]\nedge_api_key = \"{EDGE_KEY}\"\n{proxy_extra}");
        let probe = [("OpenSandbox-Edge-Key", EDGE_KEY)];
        Self(RoutedSandbox::start(proxy_extra, &probe, SETUP).await)
    }

    /// A request routed by header to `port`, with the edge key, `fields`
    /// (CRLF-terminated lines) and `body` (no framing added).
    fn request(&self, start: &str, port: u16, fields: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "{start} HTTP/1.1\r\nHost: adversarial.test\r\nOpenSandbox-Ingress-To: {}\r\n\
             OpenSandbox-Edge-Key: {EDGE_KEY}\r\n{fields}\r\n",
            self.route(port)
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }
}

/// Reads the next request on `conn` and answers it with `response`.
async fn answer(conn: &mut RawConn, response: &[u8], what: &str) -> RawRequest {
    let req = conn.read_request(what).await.unwrap();
    conn.send(response).await.unwrap();
    req
}

/// The next final (non-1xx) response on `client`.
async fn final_response(client: &mut RawConn, what: &str) -> RawResponse {
    loop {
        let res = client.read_response(false, what).await.unwrap();
        if !(100..200).contains(&res.status) {
            return res;
        }
    }
}

/// The head's field lines (no request line), as the sandbox received them.
fn field_lines(req: &RawRequest) -> Vec<String> {
    let text = req.msg.head_text();
    text.split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------
// Smuggling: framing fields named by Connection
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cannot_remove_content_length_or_host_and_the_pooled_connection_stays_in_step() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        for path in PATHS {
            let mut up = ScriptedUpstream::bind().await.unwrap();
            let smuggled = format!(
                "GET /smuggled HTTP/1.1\r\nHost: x\r\nOpenSandbox-Ingress-To: {}\r\n\r\n",
                f.route(up.port())
            );
            let fields = format!(
                "Connection: Content-Length, Host, X-Hop\r\nX-Hop: 1\r\n{}Content-Length: {}\r\n",
                path.fields(),
                smuggled.len()
            );
            let mut client = f.client().await;
            client
                .send(f.request("POST /upload", up.port(), &fields, smuggled.as_bytes()))
                .await
                .unwrap();
            let mut conn = up.next_conn().await.unwrap();
            let req = answer(&mut conn, OK, "the upload").await;
            let head = req.msg.head_text();
            assert_eq!(
                req.all("content-length"),
                vec![smuggled.len().to_string().as_str()],
                "{path:?}: the body's length must reach the sandbox:\n{head}"
            );
            assert_eq!(req.msg.body, smuggled.as_bytes(), "{path:?}: {head}");
            assert_eq!(
                req.all("host"),
                vec!["adversarial.test"],
                "{path:?}: {head}"
            );
            assert!(
                !req.msg.has("x-hop"),
                "{path:?}: X-Hop is hop-by-hop:\n{head}"
            );
            let res = final_response(&mut client, "the upload's response").await;
            assert_eq!(res.status, 200, "{path:?}: {}", res.describe());

            // The next request on the same upstream connection (pooled per
            // worker thread: the same client connection keeps the thread) is
            // the next client request, never the "body" read as a request.
            if path == Path::Fast {
                client
                    .send(f.request("GET /next", up.port(), "", b""))
                    .await
                    .unwrap();
                let next = answer(&mut conn, OK, "the next request").await;
                assert_eq!(
                    next.target, "/next",
                    "{path:?}: the upstream desynchronised"
                );
                let res = final_response(&mut client, "the next response").await;
                assert_eq!(res.status, 200);
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_s_connection_cannot_remove_its_response_framing_towards_the_client() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut client = f.client().await;
        client
            .send(f.request("GET /framed", up.port(), "", b""))
            .await
            .unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let poisoned = b"HTTP/1.1 200 OK\r\nConnection: Content-Length, X-Hop\r\nX-Hop: 1\r\n\
                         Content-Length: 38\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        answer(&mut conn, poisoned, "the request").await;
        let res = final_response(&mut client, "the response").await;
        assert_eq!(
            res.header("content-length"),
            Some("38"),
            "{}",
            res.describe()
        );
        assert_eq!(res.msg.body.len(), 38, "{}", res.describe());
        assert!(res.header("x-hop").is_none(), "{}", res.describe());

        // The client connection is still in step: the next answer is the next response.
        client
            .send(f.request("GET /after", up.port(), "", b""))
            .await
            .unwrap();
        let req = answer(&mut conn, OK, "the next request").await;
        assert_eq!(req.target, "/after");
        let res = final_response(&mut client, "the next response").await;
        assert_eq!(
            (res.status, res.msg.text()),
            (200, "ok".to_owned()),
            "{}",
            res.describe()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_whose_encoding_connection_names_is_still_framed() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut body = chunk(b"GET /smuggled HTTP/1.1\r\n\r\n", "");
        body.extend_from_slice(b"0\r\n\r\n");
        let fields = "Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n";
        let mut client = f.client().await;
        client
            .send(f.request("POST /chunked", up.port(), fields, &body))
            .await
            .unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let req = answer(&mut conn, OK, "the chunked upload").await;
        let framed = req.msg.has("content-length") || req.msg.has("transfer-encoding");
        assert!(framed, "the body must be framed:\n{}", req.msg.head_text());
        assert_eq!(req.msg.body, b"GET /smuggled HTTP/1.1\r\n\r\n");
        let res = final_response(&mut client, "the response").await;
        assert_eq!(res.status, 200, "{}", res.describe());
    })
    .await;
}

// ---------------------------------------------------------------------------
// Smuggling: lengths, encodings and hosts
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_equal_lengths_is_sent_as_one_and_differing_lengths_are_refused() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        for path in PATHS {
            let mut up = ScriptedUpstream::bind().await.unwrap();
            let mut client = f.client().await;
            let fields = format!(
                "{}Content-Length: 5, 5\r\nContent-Length: 5\r\n",
                path.fields()
            );
            client
                .send(f.request("POST /list", up.port(), &fields, b"hello"))
                .await
                .unwrap();
            let mut conn = up.next_conn().await.unwrap();
            let req = answer(&mut conn, OK, "the upload").await;
            assert_eq!(
                req.all("content-length"),
                vec!["5"],
                "{path:?}: one normalised Content-Length:\n{}",
                req.msg.head_text()
            );
            assert_eq!(req.msg.body, b"hello");
            let res = final_response(&mut client, "the response").await;
            assert_eq!(res.status, 200, "{path:?}: {}", res.describe());
        }
        for path in PATHS {
            for lengths in [
                "Content-Length: 5, 6\r\n",
                "Content-Length: 5\r\nContent-Length: 6\r\n",
                "Content-Length: 5,\r\n",
                "Content-Length: +5\r\n",
            ] {
                let up = ScriptedUpstream::bind().await.unwrap();
                let mut client = f.client().await;
                let fields = format!("{}{lengths}", path.fields());
                client
                    .send(f.request("POST /conflict", up.port(), &fields, b"hello!"))
                    .await
                    .unwrap();
                let res = final_response(&mut client, "the refusal").await;
                assert_eq!(res.status, 400, "{path:?} {lengths:?}: {}", res.describe());
                assert_eq!(up.accepted(), 0, "{path:?} {lengths:?} was forwarded");
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_is_refused_on_both_paths() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        for path in PATHS {
            for second in ["Host: other.test\r\n", "Host: adversarial.test\r\n"] {
                let up = ScriptedUpstream::bind().await.unwrap();
                let mut client = f.client().await;
                let fields = format!("{second}{}Content-Length: 0\r\n", path.fields());
                client
                    .send(f.request("POST /hosts", up.port(), &fields, b""))
                    .await
                    .unwrap();
                let res = final_response(&mut client, "the refusal").await;
                assert_eq!(res.status, 400, "{path:?} {second:?}: {}", res.describe());
                assert_eq!(up.accepted(), 0, "{path:?} {second:?} was forwarded");
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_beside_a_chunked_encoding_never_reaches_the_sandbox_with_both() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let mut body = chunk(b"hello", "");
        body.extend_from_slice(b"0\r\n\r\n");
        let fields = "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n";
        let mut client = f.client().await;
        client
            .send(f.request("POST /both", up.port(), fields, &body))
            .await
            .unwrap();
        let res = tokio::select! {
            conn = up.next_conn() => {
                let mut conn = conn.unwrap();
                let req = answer(&mut conn, OK, "the upload").await;
                let head = req.msg.head_text();
                assert!(
                    !(req.msg.has("content-length") && req.msg.has("transfer-encoding")),
                    "both framings reached the sandbox:\n{head}"
                );
                assert_eq!(req.msg.body, b"hello", "{head}");
                final_response(&mut client, "the response").await
            }
            res = final_response(&mut client, "the refusal") => res,
        };
        assert!(res.status == 200 || res.status == 400, "{}", res.describe());
        if res.status == 200 {
            assert_eq!(
                res.header("connection"),
                Some("close"),
                "a request framed both ways must end its connection (RFC 9112 §6.1)"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Pipelines across both paths
// ---------------------------------------------------------------------------

/// Sends `first`, `middle` and `last` in one write and expects three
/// answers in order, each request arriving on its own upstream connection
/// (the upstream closes after each answer).
async fn pipeline_is_served(f: &Fixture, up: &mut ScriptedUpstream, middle: Vec<u8>, what: &str) {
    let mut batch = f.request("GET /one", up.port(), "", b"");
    batch.extend(middle);
    batch.extend(f.request("GET /three", up.port(), "", b""));
    let mut client = f.client().await;
    client.send(&batch).await.unwrap();
    let mut targets = Vec::new();
    for (n, body) in ["one", "two", "three"].iter().enumerate() {
        let mut conn = tokio::select! {
            conn = up.next_conn() => conn.unwrap_or_else(|e| panic!(
                "{what}: request {} never reached the upstream ({e:#}); got {targets:?}", n + 1
            )),
            end = client.read_to_end("the next pipelined request") => panic!(
                "{what}: after {targets:?} the proxy ended the connection ({end:?}) \
                 without forwarding request {}", n + 1
            ),
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let req = answer(&mut conn, response.as_bytes(), body).await;
        targets.push(req.target.clone());
        conn.close().await;
        let res = final_response(&mut client, body).await;
        assert_eq!(
            (res.status, res.msg.text()),
            (200, (*body).to_owned()),
            "{what}: response {}:\n{}",
            n + 1,
            res.describe()
        );
        if n < 2 {
            assert_ne!(
                res.header("connection"),
                Some("close"),
                "{what}: response {} says close although requests follow",
                n + 1
            );
        }
    }
    assert_eq!(targets, ["/one", "/two", "/three"], "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_pipelined_after_an_expect_request_are_all_answered() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let fields = "Expect: 100-continue\r\nContent-Length: 3\r\n";
        let expect = f.request("POST /two", up.port(), fields, b"abc");
        pipeline_is_served(&f, &mut up, expect, "Expect").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_pipelined_after_one_with_too_many_fields_for_the_fast_path_are_all_answered() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let many: String = (0..120).map(|n| format!("X-Field-{n}: {n}\r\n")).collect();
        let crowded = f.request("GET /two", up.port(), &many, b"");
        pipeline_is_served(&f, &mut up, crowded, "120 header fields").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_pipelined_after_one_with_a_head_too_large_for_the_fast_path_are_all_answered() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let large = format!("X-Large: {}\r\n", "a".repeat(40 * 1024));
        let large = f.request("GET /two", up.port(), &large, b"");
        pipeline_is_served(&f, &mut up, large, "a 40 KiB head").await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Credential hygiene in every route mode, on both paths
// ---------------------------------------------------------------------------

/// How a request names its sandbox.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Header,
    LegacyHeader,
    Uri,
    Wildcard,
    ServerProxy,
}

const MODES: [Mode; 5] = [
    Mode::Header,
    Mode::LegacyHeader,
    Mode::Uri,
    Mode::Wildcard,
    Mode::ServerProxy,
];

/// The request line's target, the Host and the routing field of `mode`.
fn routed(f: &Fixture, mode: Mode, port: u16) -> (String, String, String) {
    let (id, route) = (&f.id, f.route(port));
    match mode {
        Mode::Header => (
            "/creds".into(),
            "adversarial.test".into(),
            format!("OpenSandbox-Ingress-To: {route}\r\nopensandbox-INGRESS-TO: {route}\r\n"),
        ),
        Mode::LegacyHeader => (
            "/creds".into(),
            "adversarial.test".into(),
            format!("OPEN-SANDBOX-INGRESS: {route}\r\n"),
        ),
        Mode::Uri => (
            format!("/{id}/{port}/creds"),
            "adversarial.test".into(),
            String::new(),
        ),
        Mode::Wildcard => (
            "/creds".into(),
            format!("{route}.sandbox.localhost"),
            String::new(),
        ),
        Mode::ServerProxy => (
            format!("/sandboxes/{id}/proxy/{port}/creds"),
            "adversarial.test".into(),
            String::new(),
        ),
    }
}

/// The credentials every hygiene request carries, in odd case and twice.
fn credentials() -> String {
    format!(
        "open-SANDBOX-api-KEY: {API_KEY_A}\r\nOPEN-SANDBOX-API-KEY: {API_KEY_B}\r\n\
         OpenSandbox-Secure-Access: {SECURE_TOKEN}\r\nopensandbox-edge-KEY: {EDGE_KEY}\r\n\
         Authorization: Bearer app\r\n"
    )
}

/// Asserts that nothing of Sandgate's own reached the sandbox in `req`.
fn assert_clean(req: &RawRequest, what: &str) {
    let head = req.msg.head_text();
    for name in sandgate_shared::headers::NEVER_TO_SANDBOX
        .iter()
        .chain(&["opensandbox-edge-key"])
    {
        assert!(
            !req.msg.has(name),
            "{what}: the sandbox received {name}:\n{head}"
        );
    }
    for secret in [API_KEY_A, API_KEY_B, SECURE_TOKEN, EDGE_KEY] {
        assert!(
            !head.contains(secret),
            "{what}: the sandbox saw {secret}:\n{head}"
        );
    }
    assert_eq!(
        req.all("authorization"),
        vec!["Bearer app"],
        "{what}: {head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_routing_headers_never_reach_the_sandbox_in_any_mode_on_either_path() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        for path in PATHS {
            for mode in MODES {
                let (target, host, routing) = routed(&f, mode, up.port());
                let request = format!(
                    "POST {target} HTTP/1.1\r\nHost: {host}\r\n{routing}{}{}Content-Length: 2\r\n\r\nhi",
                    credentials(),
                    path.fields()
                );
                let mut client = f.client().await;
                client.send(&request).await.unwrap();
                let mut conn = up.next_conn().await.unwrap();
                let req = answer(
                    &mut conn,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    "the request",
                )
                .await;
                assert_clean(&req, &format!("{path:?} {mode:?}"));
                assert_eq!(req.target, "/creds", "{path:?} {mode:?}");
                let res = final_response(&mut client, "the response").await;
                assert_eq!(res.status, 200, "{path:?} {mode:?}: {}", res.describe());
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_relay_strips_the_api_key_and_cannot_be_redirected_by_a_routing_header() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let request = format!(
            "GET /sandboxes/{}/proxy/{}/relayed HTTP/1.1\r\nHost: localhost\r\n\
             OpenSandbox-Ingress-To: elsewhere-1\r\n{}\r\n",
            f.id,
            up.port(),
            credentials()
        );
        let mut client = RawConn::connect(f.stack.control.port()).await.unwrap();
        client.send(&request).await.unwrap();
        let mut conn = up.next_conn().await.unwrap();
        let req = answer(&mut conn, OK, "the relayed request").await;
        assert_clean(&req, "relay");
        assert_eq!(req.target, "/relayed");
        let res = final_response(&mut client, "the relayed response").await;
        assert_eq!(res.status, 200, "{}", res.describe());
    })
    .await;
}

// ---------------------------------------------------------------------------
// One policy: both paths forward the same fields
// ---------------------------------------------------------------------------

/// A nasty request's fields: Connection naming framing and other fields,
/// duplicate credentials in odd case, a chain of X-Forwarded-For fields,
/// spoofed forwarding headers, a list-valued length.
fn nasty(f: &Fixture, port: u16) -> String {
    format!(
        "Host: diff.test\r\nOpenSandbox-Ingress-To: {}\r\n{}\
         Connection: keep-alive, Content-Length, Host, X-Hop\r\nX-Hop: gone\r\n\
         X-Forwarded-For: 203.0.113.1\r\nX-Forwarded-For: 203.0.113.2, 203.0.113.3\r\n\
         X-Forwarded-Proto: gopher\r\nX-Forwarded-Host: spoofed.test\r\nKeep-Alive: 5\r\n\
         TE: trailers\r\nX-Kept: kept\r\nContent-Length: 5, 5\r\n",
        f.route(port),
        credentials()
    )
}

async fn forwarded_fields(f: &Fixture, up: &mut ScriptedUpstream, path: Path) -> Vec<String> {
    let request = format!(
        "POST /diff?q=1 HTTP/1.1\r\n{}{}\r\nhello",
        nasty(f, up.port()),
        path.fields()
    );
    let mut client = f.client().await;
    client.send(&request).await.unwrap();
    let mut conn = up.next_conn().await.unwrap();
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let req = answer(&mut conn, response, "the nasty request").await;
    assert_eq!(
        (req.target.as_str(), req.msg.body.as_slice()),
        ("/diff?q=1", &b"hello"[..])
    );
    let res = final_response(&mut client, "the response").await;
    assert_eq!(res.status, 200, "{path:?}: {}", res.describe());
    field_lines(&req)
        .into_iter()
        .filter(|l| !l.to_ascii_lowercase().starts_with("expect:"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_and_pingora_s_path_forward_the_same_fields_byte_for_byte() {
    bounded(TEST_BUDGET, async {
        for extra in ["", "[routing]\nhost_policy = \"upstream\"\n"] {
            let f = Fixture::start(extra).await;
            let mut up = ScriptedUpstream::bind().await.unwrap();
            let fast = forwarded_fields(&f, &mut up, Path::Fast).await;
            let slow = forwarded_fields(&f, &mut up, Path::Pingora).await;
            assert_eq!(fast, slow, "the two paths differ ({extra:?})");
            let want_host = if extra.is_empty() {
                "Host: diff.test".to_owned()
            } else {
                format!("host: 127.0.0.1:{}", up.port())
            };
            assert!(fast.contains(&want_host), "{fast:#?}");
            for line in [
                "X-Kept: kept",
                "content-length: 5",
                "x-forwarded-for: 203.0.113.1, 203.0.113.2, 203.0.113.3, 127.0.0.1",
                "x-forwarded-proto: http",
                "x-forwarded-host: diff.test",
            ] {
                assert!(fast.contains(&line.to_owned()), "{line}: {fast:#?}");
            }
            for gone in [
                "x-hop",
                "keep-alive",
                "te:",
                "connection",
                "spoofed",
                "gopher",
            ] {
                assert!(
                    !fast.iter().any(|l| l.to_ascii_lowercase().contains(gone)),
                    "{gone}: {fast:#?}"
                );
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_requests_send_their_authority_as_the_host_never_an_empty_one() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let mut up = ScriptedUpstream::bind().await.unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", f.stack.proxy.port()))
            .await
            .unwrap();
        let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = Request::builder()
            .method(Method::GET)
            .uri("http://h2.authority.test:8443/h2")
            .header("opensandbox-ingress-to", f.route(up.port()))
            .header("opensandbox-edge-key", EDGE_KEY)
            .header("open-sandbox-api-key", API_KEY_A)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let pending = tokio::spawn(sender.send_request(request));
        let mut conn = up.next_conn().await.unwrap();
        let req = answer(&mut conn, OK, "the h2c request").await;
        assert_eq!(
            req.all("host"),
            vec!["h2.authority.test:8443"],
            "{}",
            req.msg.head_text()
        );
        assert_eq!(req.all("x-forwarded-host"), vec!["h2.authority.test:8443"]);
        assert!(
            !req.msg.has("open-sandbox-api-key"),
            "{}",
            req.msg.head_text()
        );
        let response = pending.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");

        // No :authority and no Host: refused, or forwarded with a Host that
        // is not empty; never `Host: ` with nothing.
        let bare = Request::builder()
            .method(Method::GET)
            .uri("/h2-bare")
            .header("opensandbox-ingress-to", f.route(up.port()))
            .header("opensandbox-edge-key", EDGE_KEY)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let pending = tokio::spawn(sender.send_request(bare));
        tokio::select! {
            conn = up.next_conn() => {
                let mut conn = conn.unwrap();
                let req = answer(&mut conn, OK, "the bare h2c request").await;
                let hosts = req.all("host");
                assert!(
                    hosts.iter().all(|h| !h.is_empty()),
                    "an empty Host reached the sandbox:\n{}",
                    req.msg.head_text()
                );
            }
            answered = pending => {
                let status = answered.unwrap().map(|r| r.status().as_u16());
                assert!(
                    status.as_ref().map_or(true, |s| (400..500).contains(s)),
                    "a request without authority must be refused: {status:?}"
                );
            }
        }
    })
    .await;
}
