//! HTTP/2 over plain TCP with prior knowledge (h2c) on the proxy's plain
//! listener, end to end: an HTTP/2 client reaches a sandbox port with
//! concurrent streams while HTTP/1.1 keeps working on the same listener; a
//! preface split across writes is still recognised, and a short HTTP/1
//! request is not held waiting for a preface's worth of bytes; with
//! `server.h2c = false` the preface is refused as an HTTP/1 request.
//!
//! Each test runs its own control plane (fake runtime) and proxy. A fake
//! sandbox's address is 127.0.0.1, so `OpenSandbox-Ingress-To: <id>-<port>`
//! reaches the test's upstream on host port `<port>`.
//!
//! Needs `cargo build --workspace` first (or `SANDGATE_CONTROL_BIN` /
//! `SANDGATE_PROXY_BIN`).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sandgate_tests::http::full;
use sandgate_tests::raw::RawConn;
use sandgate_tests::upstream::{self, Upstream};
use sandgate_tests::{EdgeStack, RuntimeKind, StackOptions, bounded};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// The whole test, stack startup included.
const TEST_BUDGET: Duration = Duration::from_secs(10);
/// Waiting for the sandbox and its route.
const SETUP: Duration = Duration::from_secs(8);
/// One exchange (handshake, request or response).
const EXCHANGE: Duration = Duration::from_secs(5);
/// How many streams the concurrency check keeps open at once.
const STREAMS: usize = 4;
/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A control plane and proxy on the fake runtime, with one running sandbox
/// whose port is a host-side upstream. The upstream answers
/// `<path> routed=<whether the routing header reached it>`, and holds
/// requests to `/together…` until [`STREAMS`] of them have arrived.
struct Fixture {
    stack: EdgeStack,
    up: Upstream,
    id: String,
}

impl Fixture {
    async fn start(proxy_server: &str) -> Self {
        let barrier = Arc::new(Barrier::new(STREAMS));
        let up = upstream::serve(move |request: Request<Incoming>| {
            let barrier = Arc::clone(&barrier);
            async move {
                let path = request.uri().path().to_owned();
                let routed = request.headers().contains_key("opensandbox-ingress-to");
                if path.starts_with("/together")
                    && tokio::time::timeout(EXCHANGE, barrier.wait())
                        .await
                        .is_err()
                {
                    return http::Response::new(full(format!("{path}: streams missing")));
                }
                http::Response::new(full(format!("{path} routed={routed}")))
            }
        })
        .await
        .unwrap();
        let stack = EdgeStack::start(StackOptions {
            runtime: RuntimeKind::Fake,
            proxy_server: proxy_server.to_owned(),
            ..StackOptions::default()
        })
        .await
        .unwrap();
        let id = stack
            .routed_fake_sandbox(up.port(), &[], "/probe routed=false", SETUP)
            .await;
        Self { stack, up, id }
    }

    fn route(&self) -> String {
        format!("{}-{}", self.id, self.up.port())
    }

    /// An h2c connection (HTTP/2 from the first byte) to the proxy.
    async fn h2c(&self) -> http2::SendRequest<Full<Bytes>> {
        let stream = TcpStream::connect(("127.0.0.1", self.stack.proxy.port()))
            .await
            .unwrap();
        let handshake = http2::handshake(TokioExecutor::new(), TokioIo::new(stream));
        let (sender, conn) = tokio::time::timeout(EXCHANGE, handshake)
            .await
            .expect("the HTTP/2 handshake timed out")
            .unwrap_or_else(|e| panic!("h2c handshake: {e}\n{}", self.stack.logs()));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender
    }

    /// `GET <path>` with the routing header, over `sender`: status,
    /// version, body.
    async fn get(
        &self,
        sender: &http2::SendRequest<Full<Bytes>>,
        path: &str,
    ) -> (StatusCode, Version, String) {
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!(
                "http://localhost:{}{path}",
                self.stack.proxy.port()
            ))
            .header("opensandbox-ingress-to", self.route())
            .body(Full::new(Bytes::new()))
            .unwrap();
        let mut sender = sender.clone();
        let exchange = async move {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            anyhow::Ok((parts.status, parts.version, body))
        };
        let (status, version, body) = tokio::time::timeout(EXCHANGE, exchange)
            .await
            .unwrap_or_else(|_| panic!("GET {path} over h2c timed out"))
            .unwrap_or_else(|e| panic!("GET {path} over h2c: {e:#}\n{}", self.stack.logs()));
        (status, version, String::from_utf8_lossy(&body).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_clients_get_http2_with_concurrent_streams_beside_http1_on_one_listener() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;
        let h2 = f.h2c().await;

        let (status, version, body) = f.get(&h2, "/h2c-get").await;
        assert_eq!(
            (status, version, body.as_str()),
            (StatusCode::OK, Version::HTTP_2, "/h2c-get routed=false"),
            "one GET over h2c; the routing header must not reach the sandbox"
        );

        // The upstream holds these until all of them arrived: they only
        // complete if the streams are served concurrently.
        let streams = (0..STREAMS).map(|i| {
            let (f, h2) = (&f, &h2);
            async move { (i, f.get(h2, &format!("/together/{i}")).await) }
        });
        for (i, got) in futures_util::future::join_all(streams).await {
            let want = format!("/together/{i} routed=false");
            assert_eq!(got, (StatusCode::OK, Version::HTTP_2, want), "stream {i}");
        }
        assert!(!h2.is_closed(), "the h2c connection is still open");

        // HTTP/1.1 on the same listener is unaffected.
        let mut h1 = RawConn::connect(f.stack.proxy.port()).await.unwrap();
        let request = format!(
            "GET /h1 HTTP/1.1\r\nHost: localhost\r\nOpenSandbox-Ingress-To: {}\r\n\r\n",
            f.route()
        );
        h1.send(request).await.unwrap();
        let res = h1
            .read_response(false, "HTTP/1.1 beside h2c")
            .await
            .unwrap();
        assert_eq!(res.status, 200, "{}", res.describe());
        assert_eq!(res.msg.text(), "/h1 routed=false");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preface_split_across_writes_is_http2_and_a_short_http1_request_is_not_held() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("").await;

        // Half a preface: the proxy waits for the rest and answers nothing.
        let mut raw = RawConn::connect(f.stack.proxy.port()).await.unwrap();
        raw.send(&PREFACE[..10]).await.unwrap();
        raw.expect_silence(Duration::from_millis(300), "after half a preface")
            .await
            .unwrap();
        let mut rest = PREFACE[10..].to_vec();
        rest.extend_from_slice(&EMPTY_SETTINGS);
        raw.send(rest).await.unwrap();
        // The server's connection preface is a SETTINGS frame on stream 0.
        raw.fill_to(9, "the server's first frame").await.unwrap();
        let frame = raw.take(9);
        assert_eq!(frame[3], 4, "frame type SETTINGS; header {frame:?}");
        assert_eq!(&frame[5..9], &[0, 0, 0, 0], "stream 0; header {frame:?}");

        // 18 bytes, shorter than a preface: answered at once, not held
        // until 24 bytes arrive (an HTTP/1.1 request without Host: 400).
        let mut short = RawConn::connect(f.stack.proxy.port()).await.unwrap();
        short.send("GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let res = short
            .read_response(false, "a short HTTP/1 request")
            .await
            .unwrap();
        assert_eq!(res.status, 400, "{}", res.describe());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_h2c_off_the_preface_is_refused_as_an_http1_request() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("h2c = false").await;
        let mut raw = RawConn::connect(f.stack.proxy.port()).await.unwrap();
        let mut opening = PREFACE.to_vec();
        opening.extend_from_slice(&EMPTY_SETTINGS);
        raw.send(opening).await.unwrap();
        let res = raw
            .read_response(false, "the preface with h2c off")
            .await
            .unwrap();
        assert_eq!(res.status, 400, "{}", res.describe());
    })
    .await;
}
