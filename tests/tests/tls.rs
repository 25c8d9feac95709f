//! TLS termination and HTTP/2 end to end: the real `sandgate-proxy` with a
//! `[tls]` listener, a certificate generated for each test by the `openssl`
//! CLI (self-signed, SAN `*.sandbox.localhost`, `localhost` and
//! `127.0.0.1`, trusted by the client as its only root), and a Rust client
//! (tokio-rustls, hyper's HTTP/1.1 and HTTP/2 connections) that checks the
//! certificate, offers ALPN protocols and asserts which one was negotiated.
//!
//! Covered: HTTP/1.1 over TLS with keep-alive (the fast path, a request
//! handed to pingora's pipeline and back on one connection); HTTP/2 by ALPN
//! (GET, a 1 MiB POST, concurrent streams on one connection); wildcard host
//! routing with SNI `<id>-<port>.sandbox.localhost` over both protocols;
//! `[tls] http2 = false`; and the certificate and key checks of
//! `--check-config` and of startup.
//!
//! Each test runs its own control plane (fake runtime) and proxy. A fake
//! sandbox's address is 127.0.0.1, so a route to `<id>-<port>` reaches the
//! recording upstream listening on host port `<port>`.
//!
//! Needs `cargo build --workspace` first (or `SANDGATE_CONTROL_BIN` /
//! `SANDGATE_PROXY_BIN`) and the `openssl` command.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sandgate_tests::edge::proxy_binary;
use sandgate_tests::http::full;
use sandgate_tests::process::free_port;
use sandgate_tests::upstream::{self, Upstream};
use sandgate_tests::{EdgeStack, ProxyOptions, ProxyProcess, RuntimeKind, StackOptions, bounded};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

/// The whole test, stack startup included.
const TEST_BUDGET: Duration = Duration::from_secs(12);
/// Waiting for the sandbox or the route.
const SETUP: Duration = Duration::from_secs(8);
/// One exchange (handshake, request or response).
const EXCHANGE: Duration = Duration::from_secs(5);
/// The edge key every request carries (and the sandbox must never see).
const EDGE_KEY: &str = "edge-key-tls-0123456789";
/// 1 MiB.
const MIB: usize = 1024 * 1024;
/// How many streams the concurrency test keeps open at once.
const STREAMS: usize = 6;
/// Routing and credential headers, none of which may reach the sandbox.
const NEVER_FORWARDED: [&str; 4] = [
    "opensandbox-ingress-to",
    "open-sandbox-ingress",
    "opensandbox-secure-access",
    "opensandbox-edge-key",
];

/// Runs `what` within [`EXCHANGE`].
async fn within<T>(what: &str, future: impl Future<Output = anyhow::Result<T>>) -> T {
    match tokio::time::timeout(EXCHANGE, future).await {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("{what}: {error:#}"),
        Err(_) => panic!("{what}: no answer within {EXCHANGE:?}"),
    }
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// A self-signed certificate and its key, in a temporary directory.
struct TestCert {
    dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl TestCert {
    /// Generates a P-256 certificate for `*.sandbox.localhost`, `localhost`
    /// and `127.0.0.1`, valid for a day. `CA:FALSE` and `serverAuth` are
    /// explicit: openssl's defaults make a CA certificate, which webpki
    /// refuses as a server's own certificate.
    fn generate() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sandgate-e2e-tls-")
            .tempdir()
            .unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=sandgate-tls-test",
            "-addext",
            "subjectAltName=DNS:*.sandbox.localhost,DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
            path_str(&key),
            "-out",
            path_str(&cert),
        ]);
        Self { dir, cert, key }
    }

    /// Another P-256 private key, not the certificate's, in the same directory.
    fn other_key(&self) -> PathBuf {
        let other = self.dir.path().join("other-key.pem");
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-out",
            path_str(&other),
        ]);
        other
    }

    /// The proxy's `[tls]` table listening on 127.0.0.1:`port`, plus `extra` lines.
    fn tls_toml(&self, port: u16, extra: &str) -> String {
        format!(
            "[tls]\nlisten = \"127.0.0.1:{port}\"\ncert_file = {cert}\nkey_file = {key}\n{extra}\n",
            cert = toml_path(&self.cert),
            key = toml_path(&self.key),
        )
    }

    /// A client configuration trusting only this certificate and offering `alpn`.
    fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let der = CertificateDer::from_pem_file(&self.cert)
            .with_context(|| format!("reading {}", self.cert.display()))
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(der).unwrap();
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// Runs `openssl args`; fails clearly when the command is missing or fails.
fn openssl(args: &[&str]) {
    let output = match Command::new("openssl").args(args).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "these tests generate their certificate with the `openssl` command, which is not \
             installed (Debian: apt-get install openssl)"
        ),
        Err(error) => panic!("running openssl: {error}"),
    };
    assert!(
        output.status.success(),
        "openssl {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `sandgate-proxy --check-config <config>`, with no environment variable
/// that would stand in for a file key.
fn check_config(config: &Path) -> Output {
    Command::new(proxy_binary().unwrap())
        .arg("--check-config")
        .arg(config)
        .env_remove("SANDGATE_ROUTES_TOKEN")
        .env_remove("SANDGATE_EDGE_API_KEY")
        .output()
        .unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// A path as a TOML basic string.
fn toml_path(path: &Path) -> String {
    serde_json::to_string(path_str(path)).unwrap()
}

// ---------------------------------------------------------------------------
// The recording upstream
// ---------------------------------------------------------------------------

/// One request as the sandbox received it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body_len: usize,
}

/// A host-side HTTP/1.1 server standing in for a sandbox port: records
/// every request; `POST` echoes the body, anything else answers
/// `hello <path>`. Requests to `/together…` are held until [`STREAMS`] of
/// them have arrived (then they all answer), so they only succeed when
/// the proxy forwards them concurrently.
struct Recorder {
    upstream: Upstream,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let barrier = Arc::new(Barrier::new(STREAMS));
        let log = Arc::clone(&seen);
        let upstream = upstream::serve(move |request: Request<Incoming>| {
            let log = Arc::clone(&log);
            let barrier = Arc::clone(&barrier);
            async move {
                let (parts, body) = request.into_parts();
                let body = match body.collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(error) => {
                        return status(StatusCode::BAD_REQUEST, format!("body: {error}"));
                    }
                };
                let path = parts.uri.path().to_owned();
                log.lock().unwrap().push(Seen {
                    method: parts.method.clone(),
                    path: path.clone(),
                    headers: parts.headers.clone(),
                    body_len: body.len(),
                });
                if path.starts_with("/together") {
                    let waited = tokio::time::timeout(EXCHANGE, barrier.wait()).await;
                    if waited.is_err() {
                        return status(
                            StatusCode::GATEWAY_TIMEOUT,
                            format!("{path}: the other streams never arrived"),
                        );
                    }
                }
                if parts.method == Method::POST {
                    Response::new(full(body))
                } else {
                    Response::new(full(format!("hello {path}")))
                }
            }
        })
        .await
        .unwrap();
        Self { upstream, seen }
    }

    fn port(&self) -> u16 {
        self.upstream.port()
    }

    /// The requests that reached `path`, oldest first.
    fn seen(&self, path: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }

    /// The only request that reached `path`.
    fn one(&self, path: &str) -> Seen {
        let seen = self.seen(path);
        assert_eq!(seen.len(), 1, "requests to {path}: {seen:#?}");
        seen.into_iter().next().unwrap()
    }
}

fn status(code: StatusCode, text: String) -> Response<sandgate_tests::http::BoxBody> {
    let mut response = Response::new(full(text));
    *response.status_mut() = code;
    response
}

/// Asserts what the sandbox received: forwarded as HTTPS, and no routing
/// or credential header.
fn assert_forwarded_as_https(seen: &Seen, what: &str) {
    let proto: Vec<_> = seen.headers.get_all("x-forwarded-proto").iter().collect();
    assert_eq!(proto, ["https"], "{what}: X-Forwarded-Proto {seen:#?}");
    for name in NEVER_FORWARDED {
        assert!(
            !seen.headers.contains_key(name),
            "{what}: the sandbox received {name}: {seen:#?}"
        );
    }
    assert!(
        !seen
            .headers
            .values()
            .any(|v| v.as_bytes() == EDGE_KEY.as_bytes()),
        "{what}: the edge key reached the sandbox: {seen:#?}"
    );
}

// ---------------------------------------------------------------------------
// The stack
// ---------------------------------------------------------------------------

/// A control plane and a proxy with a TLS listener on the fake runtime, one
/// running sandbox the proxy routes to, and the recording upstream.
struct Fixture {
    stack: EdgeStack,
    cert: TestCert,
    tls_port: u16,
    id: String,
    up: Recorder,
}

impl Fixture {
    /// Starts the stack; `tls_extra` lines go into `[tls]`, `proxy_extra`
    /// after it (the edge key is always configured).
    async fn start(tls_extra: &str, proxy_extra: &str) -> Self {
        let cert = TestCert::generate();
        let up = Recorder::start().await;
        let tls_port = free_port().unwrap();
        let extra = format!(
            "{tls}\n[auth]\nedge_api_key = \"{EDGE_KEY}\"\n\n{proxy_extra}\n",
            tls = cert.tls_toml(tls_port, tls_extra),
        );
        let stack = EdgeStack::start(StackOptions {
            runtime: RuntimeKind::Fake,
            proxy_extra: extra,
            ..StackOptions::default()
        })
        .await
        .unwrap();
        // The route works over plain HTTP first: the proxy has it.
        let probe = [("OpenSandbox-Edge-Key", EDGE_KEY)];
        let id = stack
            .routed_fake_sandbox(up.port(), &probe, "hello /probe", SETUP)
            .await;
        Self {
            stack,
            cert,
            tls_port,
            id,
            up,
        }
    }

    /// `<id>-<port>` of the recording upstream.
    fn route(&self) -> String {
        format!("{}-{}", self.id, self.up.port())
    }

    /// A TLS connection to the proxy's HTTPS listener with SNI (and
    /// certificate check) `server_name`, offering `alpn`; and the protocol
    /// the handshake selected.
    async fn connect(
        &self,
        server_name: &str,
        alpn: &[&[u8]],
    ) -> (TlsStream<TcpStream>, Option<Vec<u8>>) {
        let config = self.cert.client_config(alpn);
        let port = self.tls_port;
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        let what = format!("the TLS handshake with 127.0.0.1:{port} as {server_name}");
        let stream = within(&what, async {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            tcp.set_nodelay(true)?;
            Ok(TlsConnector::from(config).connect(name, tcp).await?)
        })
        .await;
        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        (stream, alpn)
    }

    /// An HTTP/1.1 connection over TLS (asserting ALPN chose `http/1.1`).
    async fn h1(&self, server_name: &str) -> http1::SendRequest<Full<Bytes>> {
        let (stream, alpn) = self.connect(server_name, &[b"http/1.1"]).await;
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]), "negotiated ALPN");
        h1_over(stream).await
    }

    /// An HTTP/2 connection over TLS (asserting ALPN chose `h2`).
    async fn h2(&self, server_name: &str) -> http2::SendRequest<Full<Bytes>> {
        let (stream, alpn) = self.connect(server_name, &[b"h2", b"http/1.1"]).await;
        assert_eq!(
            alpn.as_deref(),
            Some(&b"h2"[..]),
            "negotiated ALPN (h2 offered first)\n{}",
            self.stack.logs()
        );
        let (sender, conn) = within("the HTTP/2 handshake", async {
            Ok(http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?)
        })
        .await;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender
    }

    /// A request through the header route: `uri` (a path for HTTP/1.1, an
    /// absolute `https://` URI for HTTP/2), the routing header and the edge key.
    fn request(&self, method: Method, uri: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("opensandbox-ingress-to", self.route())
            .header("opensandbox-edge-key", EDGE_KEY);
        if uri.starts_with('/') {
            builder = builder.header("host", "localhost");
        }
        builder.body(Full::new(body)).unwrap()
    }

    /// `https://localhost:<tls port><path>`.
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.tls_port)
    }
}

async fn h1_over(stream: TlsStream<TcpStream>) -> http1::SendRequest<Full<Bytes>> {
    let (sender, conn) = within("the HTTP/1.1 handshake", async {
        Ok(http1::handshake(TokioIo::new(stream)).await?)
    })
    .await;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// A response with its whole body.
#[derive(Debug)]
struct Got {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Got {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts `200` with exactly `body`.
    fn assert_ok(&self, body: &[u8], what: &str) {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{what}: {} {}",
            self.status,
            self.text()
        );
        assert!(
            self.body == body,
            "{what}: body of {} bytes, want {} bytes (starts {:?})",
            self.body.len(),
            body.len(),
            String::from_utf8_lossy(&self.body[..self.body.len().min(80)])
        );
    }
}

async fn collect(response: Response<Incoming>) -> anyhow::Result<Got> {
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Got {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    })
}

async fn send_h1(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    what: &str,
) -> Got {
    within(what, async {
        sender
            .ready()
            .await
            .context("the connection is not usable")?;
        collect(sender.send_request(request).await?).await
    })
    .await
}

async fn send_h2(
    sender: &http2::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    what: &str,
) -> Got {
    let mut sender = sender.clone();
    within(what, async move {
        sender
            .ready()
            .await
            .context("the connection is not usable")?;
        collect(sender.send_request(request).await?).await
    })
    .await
}

/// 1 MiB that is not a repeated pattern of any short length.
fn mib_body() -> Bytes {
    (0..MIB)
        .map(|i| (i % 251) as u8 ^ (i / 251 % 7) as u8)
        .collect::<Vec<u8>>()
        .into()
}

// ---------------------------------------------------------------------------
// a. HTTP/1.1 over TLS
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_over_tls_keeps_the_connection_alive_and_forwards_as_https() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", "").await;
        let mut h1 = f.h1("localhost").await;

        let first = send_h1(
            &mut h1,
            f.request(Method::GET, "/one?x=1", Bytes::new()),
            "GET /one",
        )
        .await;
        first.assert_ok(b"hello /one", "GET /one over TLS");
        assert_eq!(first.version, Version::HTTP_11);
        assert_ne!(
            first.headers.get("connection").map(|v| v.as_bytes()),
            Some(&b"close"[..]),
            "the proxy closes the TLS connection after one request: {:?}",
            first.headers
        );
        let second = send_h1(
            &mut h1,
            f.request(Method::GET, "/two", Bytes::new()),
            "GET /two on the same TLS connection",
        )
        .await;
        second.assert_ok(b"hello /two", "the second request on one TLS connection");

        // A body over 64 KiB is handed to pingora's pipeline; the connection
        // comes back to the fast path afterwards.
        let big = Bytes::from(vec![b'b'; 100 * 1024]);
        let handed = send_h1(
            &mut h1,
            f.request(Method::POST, "/big", big.clone()),
            "POST /big (100 KiB) on the same TLS connection",
        )
        .await;
        handed.assert_ok(&big, "a 100 KiB POST over TLS (pingora's path)");
        let third = send_h1(
            &mut h1,
            f.request(Method::GET, "/three", Bytes::new()),
            "GET /three after the handover",
        )
        .await;
        third.assert_ok(b"hello /three", "a GET after a request pingora served");

        for path in ["/one", "/two", "/big", "/three"] {
            let seen = f.up.one(path);
            assert_forwarded_as_https(&seen, path);
        }
        assert_eq!(f.up.one("/big").body_len, big.len());
        assert_eq!(f.up.one("/one").method, Method::GET);
        let one = f.up.one("/one");
        let host: Vec<_> = one.headers.get_all("x-forwarded-host").iter().collect();
        assert_eq!(host, ["localhost"], "X-Forwarded-Host: {one:#?}");
    })
    .await;
}

// ---------------------------------------------------------------------------
// b. HTTP/2 over TLS
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_negotiated_by_alpn_and_carries_gets_large_posts_and_concurrent_streams() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("", "").await;
        let h2 = f.h2("localhost").await;

        let get = send_h2(
            &h2,
            f.request(Method::GET, &f.url("/h2-get?q=2"), Bytes::new()),
            "GET over HTTP/2",
        )
        .await;
        get.assert_ok(b"hello /h2-get", "GET over HTTP/2");
        assert_eq!(get.version, Version::HTTP_2);
        assert_forwarded_as_https(&f.up.one("/h2-get"), "GET over HTTP/2");

        let body = mib_body();
        let post = send_h2(
            &h2,
            f.request(Method::POST, &f.url("/h2-post"), body.clone()),
            "POST 1 MiB over HTTP/2",
        )
        .await;
        post.assert_ok(&body, "a 1 MiB POST over HTTP/2, echoed");
        let seen = f.up.one("/h2-post");
        assert_eq!(seen.method, Method::POST);
        assert_eq!(seen.body_len, MIB, "the sandbox received the whole body");
        assert_forwarded_as_https(&seen, "POST over HTTP/2");

        // STREAMS requests the upstream holds until all of them arrived: they
        // only complete if the proxy serves the streams concurrently.
        let requests = (0..STREAMS).map(|i| {
            let request = f.request(Method::GET, &f.url(&format!("/together/{i}")), Bytes::new());
            let h2 = h2.clone();
            async move { (i, send_h2(&h2, request, &format!("stream {i}")).await) }
        });
        for (i, got) in futures_util::future::join_all(requests).await {
            got.assert_ok(
                format!("hello /together/{i}").as_bytes(),
                &format!("concurrent stream {i}"),
            );
            assert_eq!(got.version, Version::HTTP_2);
            assert_forwarded_as_https(&f.up.one(&format!("/together/{i}")), "a concurrent stream");
        }
        assert!(
            !h2.is_closed(),
            "the HTTP/2 connection is still open after {} streams",
            STREAMS + 2
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// c. Wildcard host routing with SNI
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_hosts_route_over_tls_with_sni_on_both_protocols() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start(
            "",
            "[routing]\nwildcard_domains = [\"sandbox.localhost\"]\n",
        )
        .await;
        let host = format!("{}.sandbox.localhost", f.route());

        // HTTP/1.1: SNI and Host name the sandbox; no routing header.
        let mut h1 = f.h1(&host).await;
        let request = Request::builder()
            .uri("/wild-h1")
            .header("host", format!("{host}:{}", f.tls_port))
            .header("opensandbox-edge-key", EDGE_KEY)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let got = send_h1(&mut h1, request, "GET /wild-h1 by wildcard host").await;
        got.assert_ok(b"hello /wild-h1", "wildcard host over HTTP/1.1 and TLS");
        assert_forwarded_as_https(&f.up.one("/wild-h1"), "wildcard over HTTP/1.1");

        // HTTP/2: the host is the :authority (no Host header).
        let h2 = f.h2(&host).await;
        let request = Request::builder()
            .uri(format!("https://{host}:{}/wild-h2", f.tls_port))
            .header("opensandbox-edge-key", EDGE_KEY)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let got = send_h2(&h2, request, "GET /wild-h2 by :authority").await;
        got.assert_ok(b"hello /wild-h2", "wildcard :authority over HTTP/2");
        assert_eq!(got.version, Version::HTTP_2);
        assert_forwarded_as_https(&f.up.one("/wild-h2"), "wildcard over HTTP/2");

        // On the same connection, a host outside the wildcard domains names
        // no sandbox (and nothing else in the request does).
        let request = Request::builder()
            .uri(format!("https://localhost:{}/wild-none", f.tls_port))
            .header("opensandbox-edge-key", EDGE_KEY)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let got = send_h2(&h2, request, "GET /wild-none").await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.text());
        assert!(got.text().contains("PROXY::NO_ROUTE"), "{}", got.text());
        assert!(f.up.seen("/wild-none").is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------
// d. [tls] http2 = false
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_http2_off_no_alpn_protocol_is_selected_and_http1_still_works() {
    bounded(TEST_BUDGET, async {
        let f = Fixture::start("http2 = false", "").await;
        // The client prefers h2; the listener offers no ALPN protocol, so
        // none is selected and the connection speaks HTTP/1.1.
        let (stream, alpn) = f.connect("localhost", &[b"h2", b"http/1.1"]).await;
        assert_eq!(
            alpn.as_deref(),
            None,
            "with http2 = false the listener selects no ALPN protocol (least of all h2)"
        );
        let mut h1 = h1_over(stream).await;
        for path in ["/off-1", "/off-2"] {
            let got = send_h1(
                &mut h1,
                f.request(Method::GET, path, Bytes::new()),
                &format!("GET {path} with http2 off"),
            )
            .await;
            got.assert_ok(format!("hello {path}").as_bytes(), path);
            assert_eq!(got.version, Version::HTTP_11);
            assert_forwarded_as_https(&f.up.one(path), path);
        }
        // A client that offers only http/1.1 is served as well.
        let (stream, alpn) = f.connect("localhost", &[b"http/1.1"]).await;
        assert_eq!(alpn, None);
        let mut h1 = h1_over(stream).await;
        let got = send_h1(
            &mut h1,
            f.request(Method::GET, "/off-3", Bytes::new()),
            "GET /off-3",
        )
        .await;
        got.assert_ok(b"hello /off-3", "HTTP/1.1-only client with http2 off");
    })
    .await;
}

// ---------------------------------------------------------------------------
// e. Certificate and key checks
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_rejects_a_tls_table_whose_key_file_is_missing() {
    bounded(TEST_BUDGET, async {
        let cert = TestCert::generate();
        let missing = cert.dir.path().join("missing-key.pem");
        let config = cert.dir.path().join("proxy.toml");
        let text = format!(
            "[tls]\nlisten = \"127.0.0.1:{port}\"\ncert_file = {cert}\nkey_file = {key}\nhttp2 = true\n",
            port = free_port().unwrap(),
            cert = toml_path(&cert.cert),
            key = toml_path(&missing),
        );
        std::fs::write(&config, text).unwrap();
        let output = check_config(&config);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("invalid"), "{stderr}");
        let line = stderr
            .lines()
            .find(|line| line.contains("tls.key_file"))
            .unwrap_or_else(|| panic!("no problem names tls.key_file:\n{stderr}"));
        assert!(
            line.contains(path_str(&missing)) && line.contains("cannot read"),
            "{line}"
        );
        assert!(
            !stderr.contains("tls.cert_file"),
            "the certificate is fine: {stderr}"
        );

        // The same file with the key present is valid.
        std::fs::write(
            &config,
            cert.tls_toml(free_port().unwrap(), "http2 = false"),
        )
        .unwrap();
        let output = check_config(&config);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_match_the_certificate_stops_the_proxy_at_startup() {
    bounded(TEST_BUDGET, async {
        let cert = TestCert::generate();
        let other = cert.other_key();
        let extra = format!(
            "[tls]\nlisten = \"127.0.0.1:{port}\"\ncert_file = {cert}\nkey_file = {key}\n",
            port = free_port().unwrap(),
            cert = toml_path(&cert.cert),
            key = toml_path(&other),
        );
        // No control plane is needed: the proxy must exit before it asks
        // (a proxy that keeps running never becomes ready without one).
        let started = ProxyProcess::start(ProxyOptions {
            control_url: format!("http://127.0.0.1:{}", free_port().unwrap()),
            extra_toml: extra.clone(),
            ..ProxyOptions::default()
        });
        let error = match tokio::time::timeout(SETUP, started).await {
            Err(_) => panic!(
                "the proxy kept running for {SETUP:?} with a key that is not its certificate's \
                 (the TLS listener failing in its own thread instead of at startup?)"
            ),
            Ok(Ok(proxy)) => panic!(
                "the proxy started with a key that is not its certificate's:\n{}",
                proxy.log_tail(20)
            ),
            Ok(Err(error)) => format!("{error:#}"),
        };
        assert!(error.contains("exited during startup"), "{error}");
        assert!(
            error.contains("cannot set up the TLS listener")
                && error.contains(path_str(&other))
                && error.contains("cannot serve the certificate"),
            "{error}"
        );
        assert!(!error.contains("panicked"), "{error}");

        // `--check-config` refuses the same pair, before anything starts.
        let config = cert.dir.path().join("mismatched.toml");
        std::fs::write(&config, &extra).unwrap();
        let output = check_config(&config);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("invalid") && stderr.contains("cannot serve the certificate"),
            "{stderr}"
        );
    })
    .await;
}
