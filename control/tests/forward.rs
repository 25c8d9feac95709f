//! The server-proxy path without an edge proxy: the control plane forwards
//! to the sandbox itself. A real HTTP server on 127.0.0.1 stands in for
//! the sandbox (the fake runtime's sandboxes live at 127.0.0.1, so the
//! proxied port is that server's port), and the control plane is served
//! on a real listener so upgrades and client addresses work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use common::{Knobs, TestApp, body, body_with};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sandgate_control::http::forward::ForwardSettings;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// How long any step may take before the test fails.
const STEP: Duration = Duration::from_secs(5);

type ClientBody = BoxBody<Bytes, Infallible>;

/// The app on the fake runtime, served on 127.0.0.1, with one Running sandbox.
struct Proxied {
    app: TestApp,
    addr: SocketAddr,
    id: String,
}

impl Proxied {
    async fn start(forward: ForwardSettings) -> Self {
        Self::start_with(Knobs {
            forward,
            ..Knobs::default()
        })
        .await
    }

    async fn start_with(knobs: Knobs) -> Self {
        let app = TestApp::start(knobs).await;
        let id = app.create("/v1", body()).await;
        app.wait_state(&id, "Running").await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app.app.router.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Self { app, addr, id }
    }

    fn url(&self, port: u16, rest: &str) -> String {
        format!(
            "http://{}/v1/sandboxes/{}/proxy/{port}{rest}",
            self.addr, self.id
        )
    }

    async fn send(&self, request: Request<ClientBody>) -> hyper::Response<hyper::body::Incoming> {
        let client = Client::builder(TokioExecutor::new()).build_http::<ClientBody>();
        tokio::time::timeout(STEP, client.request(request))
            .await
            .expect("the control plane answers")
            .unwrap()
    }

    async fn get(&self, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.send(request.body(empty()).unwrap()).await;
        json_of(response).await
    }
}

fn empty() -> ClientBody {
    http_body_util::Empty::new().boxed()
}

async fn json_of(response: hyper::Response<hyper::body::Incoming>) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = tokio::time::timeout(STEP, response.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

/// Serves `router` on 127.0.0.1 and returns its port.
async fn sandbox_server(router: axum::Router) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

/// A sandbox service answering every request with what it received.
async fn echo_server() -> u16 {
    let echo = |request: axum::extract::Request| async move {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let headers: serde_json::Map<String, Value> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
            .collect();
        axum::Json(
            json!({"method": parts.method.as_str(), "uri": parts.uri.to_string(),
            "headers": headers, "body": String::from_utf8_lossy(&body)}),
        )
    };
    sandbox_server(axum::Router::new().fallback(echo)).await
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn forwards_path_query_and_body_without_credentials_or_hop_headers() {
    let proxied = Proxied::start(ForwardSettings::default()).await;
    let port = echo_server().await;
    let request = Request::post(proxied.url(port, "/files/search?path=%2Fw&a=1&a=2"))
        .header("open-sandbox-api-key", "lifecycle-secret")
        .header("opensandbox-ingress-to", "other-8080")
        .header("connection", "Content-Length, x-hop")
        .header("x-hop", "1")
        .header("x-trace", "t-1")
        .header("x-forwarded-proto", "gopher")
        .header("content-length", "5")
        .body(http_body_util::Full::new(Bytes::from_static(b"hello")).boxed())
        .unwrap();
    let (status, seen) = json_of(proxied.send(request).await).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/files/search?path=%2Fw&a=1&a=2");
    assert_eq!(seen["body"], "hello", "Connection cannot strip the framing");
    let headers = seen["headers"].as_object().unwrap();
    assert_eq!(headers["content-length"], "5");
    for gone in [
        "open-sandbox-api-key",
        "opensandbox-ingress-to",
        "x-hop",
        "connection",
    ] {
        assert!(!headers.contains_key(gone), "{gone} was forwarded: {seen}");
    }
    assert_eq!(headers["x-trace"], "t-1");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], proxied.addr.to_string());
}

#[tokio::test]
async fn a_streamed_response_arrives_before_the_sandbox_finishes() {
    let (release, released) = oneshot::channel::<()>();
    let released = std::sync::Arc::new(parking_lot::Mutex::new(Some(released)));
    let sse = move || {
        let released = released.lock().take().unwrap();
        async move {
            let first = futures_util::stream::once(async {
                Ok::<_, Infallible>(Bytes::from_static(b"data: one\n\n"))
            });
            let rest = futures_util::stream::once(async move {
                released.await.unwrap();
                Ok::<_, Infallible>(Bytes::from_static(b"data: two\n\n"))
            });
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(futures_util::StreamExt::chain(first, rest)),
            )
        }
    };
    let port =
        sandbox_server(axum::Router::new().route("/command", axum::routing::post(sse))).await;
    let proxied = Proxied::start(ForwardSettings::default()).await;
    let request = Request::post(proxied.url(port, "/command"))
        .body(empty())
        .unwrap();
    let response = proxied.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let first = tokio::time::timeout(STEP, body.frame())
        .await
        .expect("the first event arrives while the sandbox still streams")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "data: one\n\n");
    release.send(()).unwrap();
    let rest = tokio::time::timeout(STEP, body.collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest.to_bytes(), "data: two\n\n");
}

#[tokio::test]
async fn a_request_body_is_streamed_to_the_sandbox() {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Bytes>();
    let upload = move |request: axum::extract::Request| {
        let seen_tx = seen_tx.clone();
        async move {
            let mut body = request.into_body();
            let mut total = Vec::new();
            while let Some(frame) = body.frame().await {
                let data = frame.unwrap().into_data().unwrap_or_default();
                seen_tx.send(data.clone()).unwrap();
                total.extend_from_slice(&data);
            }
            String::from_utf8(total).unwrap()
        }
    };
    let port = sandbox_server(axum::Router::new().fallback(upload)).await;
    let proxied = Proxied::start(ForwardSettings::default()).await;
    let (chunks_tx, chunks_rx) = mpsc::unbounded_channel::<Bytes>();
    let stream = futures_util::stream::unfold(chunks_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(hyper::body::Frame::data(chunk)), rx))
    });
    let request = Request::put(proxied.url(port, "/files/upload"))
        .body(http_body_util::StreamBody::new(stream).boxed())
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<ClientBody>();
    let pending = tokio::spawn(async move { client.request(request).await });
    chunks_tx.send(Bytes::from_static(b"part one;")).unwrap();
    let arrived = tokio::time::timeout(STEP, seen_rx.recv())
        .await
        .expect("the first chunk reaches the sandbox before the upload ends")
        .unwrap();
    assert_eq!(arrived, "part one;");
    chunks_tx.send(Bytes::from_static(b"part two")).unwrap();
    drop(chunks_tx);
    let response = tokio::time::timeout(STEP, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let (status, text) = json_of(response).await;
    assert_eq!((status, text), (StatusCode::OK, json!("part one;part two")));
}

/// A sandbox service that accepts one upgrade, reports the request head it
/// got, and then echoes bytes.
async fn upgrade_echo_server() -> (u16, oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (head_tx, head_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let head = read_head(&mut socket).await;
        head_tx.send(head).unwrap();
        socket
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .await
            .unwrap();
        let (mut reader, mut writer) = socket.split();
        let _ = tokio::io::copy(&mut reader, &mut writer).await;
    });
    (port, head_rx)
}

async fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(socket.read(&mut byte).await.unwrap(), 1, "head cut short");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn websocket_upgrades_become_byte_tunnels() {
    let (port, head) = upgrade_echo_server().await;
    let proxied = Proxied::start(ForwardSettings::default()).await;
    let mut socket = TcpStream::connect(proxied.addr).await.unwrap();
    let request = format!(
        "GET /v1/sandboxes/{}/proxy/{port}/pty/ws HTTP/1.1\r\nHost: {}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOPEN-SANDBOX-API-KEY: lifecycle-secret\r\n\r\n",
        proxied.id, proxied.addr
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(STEP, read_head(&mut socket))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    let head = tokio::time::timeout(STEP, head)
        .await
        .unwrap()
        .unwrap()
        .to_ascii_lowercase();
    assert!(head.starts_with("get /pty/ws http/1.1"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(
        head.contains("sec-websocket-key: dghlihnhbxbszsbub25jzq=="),
        "{head}"
    );
    assert!(!head.contains("open-sandbox-api-key"), "{head}");
    socket.write_all(b"\x81\x05hello").await.unwrap();
    let mut echoed = [0u8; 7];
    tokio::time::timeout(STEP, socket.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"\x81\x05hello");
}

#[tokio::test]
async fn unknown_paused_and_bad_ports_are_answered_by_the_control_plane() {
    let proxied = Proxied::start(ForwardSettings::default()).await;
    let port = echo_server().await;
    let unknown = format!("http://{}/v1/sandboxes/nope/proxy/{port}/x", proxied.addr);
    let (status, error) = proxied.get(&unknown, &[]).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("DOCKER::SANDBOX_NOT_FOUND")),
        "{error}"
    );
    for bad in ["0", "65536", "99999999999"] {
        let uri = format!(
            "http://{}/sandboxes/{}/proxy/{bad}/x",
            proxied.addr, proxied.id
        );
        let (status, error) = proxied.get(&uri, &[]).await;
        assert_eq!(
            (status, error["code"].as_str(), error["message"].as_str()),
            (
                StatusCode::BAD_REQUEST,
                Some("DOCKER::INVALID_PORT"),
                Some("Port must be between 1 and 65535.")
            )
        );
    }
    let (status, _) = proxied
        .app
        .call(
            Method::POST,
            &format!("/v1/sandboxes/{}/pause", proxied.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    proxied.app.wait_state(&proxied.id, "Paused").await;
    let (status, error) = proxied.get(&proxied.url(port, "/x"), &[]).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::CONFLICT, Some("DOCKER::SANDBOX_NOT_RUNNING")),
        "{error}"
    );
}

#[tokio::test]
async fn refused_is_502_and_slow_is_504_naming_no_address() {
    let proxied = Proxied::start(ForwardSettings {
        response_timeout: Duration::from_millis(300),
        ..ForwardSettings::default()
    })
    .await;
    let (status, error) = proxied.get(&proxied.url(closed_port(), "/x"), &[]).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("BACKEND_CONNECTION_FAILED")),
        "{error}"
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Could not connect to port "),
        "{message}"
    );
    assert!(!message.contains("127.0.0.1"), "{message}");

    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let (status, error) = proxied.get(&proxied.url(port, "/x"), &[]).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::GATEWAY_TIMEOUT, Some("BACKEND_TIMEOUT")),
        "{error}"
    );
    assert!(
        !error["message"].as_str().unwrap().contains("127.0.0.1"),
        "{error}"
    );
    held.abort();
}

#[tokio::test]
async fn the_network_policy_is_checked_then_forwarded_to_the_egress_policy_api() {
    let egress_port = echo_server().await;
    let proxied = Proxied::start(ForwardSettings {
        egress_port,
        ..ForwardSettings::default()
    })
    .await;
    let path = format!("/v1/sandboxes/{}/networkpolicy", proxied.id);
    let (status, error) = proxied
        .app
        .call(Method::PATCH, &path, Some(json!([{"action": "deny"}])))
        .await;
    assert_eq!(
        (status, error["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("[0].target: required")),
        "{error}"
    );
    let (status, error) = proxied
        .app
        .call(
            Method::PUT,
            "/v1/sandboxes/nope/networkpolicy",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("DOCKER::SANDBOX_NOT_FOUND"))
    );

    let policy =
        json!({"defaultAction": "deny", "egress": [{"action": "allow", "target": "pypi.org"}]});
    let cases = [
        (Method::GET, None),
        (Method::PUT, Some(policy)),
        (
            Method::PATCH,
            Some(json!([{"action": "deny", "target": "*.example.com"}])),
        ),
        (Method::DELETE, Some(json!(["pypi.org"]))),
    ];
    for (method, body) in cases {
        let sent = body.as_ref().map(Value::to_string).unwrap_or_default();
        let (status, _, seen) = proxied
            .app
            .call_with(
                method.clone(),
                &format!("{path}?x=1"),
                body,
                &[
                    ("opensandbox-egress-auth", "forged"),
                    ("open-sandbox-api-key", "k"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{method}: {seen}");
        assert_eq!(seen["method"], method.as_str());
        assert_eq!(seen["uri"], "/policy?x=1");
        assert_eq!(seen["body"], sent);
        let headers = seen["headers"].as_object().unwrap();
        assert!(!headers.contains_key("opensandbox-egress-auth"), "{seen}");
        assert!(!headers.contains_key("open-sandbox-api-key"), "{seen}");
    }
}

#[tokio::test]
async fn without_an_egress_sidecar_the_network_policy_answers_502() {
    let proxied = Proxied::start(ForwardSettings {
        egress_port: closed_port(),
        ..ForwardSettings::default()
    })
    .await;
    let path = format!("/v1/sandboxes/{}/networkpolicy", proxied.id);
    let (status, error) = proxied.app.call(Method::GET, &path, None).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("BACKEND_CONNECTION_FAILED")),
        "{error}"
    );
}

#[tokio::test]
async fn a_secured_sandbox_is_forwarded_to_only_with_its_exact_token() {
    // Gateway ingress (secure access needs it) and no edge proxy configured:
    // the control plane forwards, so it is the one enforcing the token.
    let ingress = sandgate_control::ingress::Ingress {
        gateway: Some(sandgate_control::ingress::GatewayRoute::Uri {
            address: "127.0.0.1:28888".into(),
        }),
        signing: None,
        eip: None,
    };
    let proxied = Proxied::start_with(Knobs {
        ingress,
        ..Knobs::default()
    })
    .await;
    let port = echo_server().await;
    let secured = proxied
        .app
        .create("/v1", body_with("secureAccess", json!(true)))
        .await;
    proxied.app.wait_state(&secured, "Running").await;
    let (_, endpoint) = proxied
        .app
        .call(
            Method::GET,
            &format!("/v1/sandboxes/{secured}/endpoints/{port}"),
            None,
        )
        .await;
    let token = endpoint["headers"]["OpenSandbox-Secure-Access"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = format!(
        "http://{}/v1/sandboxes/{secured}/proxy/{port}/x",
        proxied.addr
    );
    let wrong = format!("{}0", &token[..token.len() - 1]);
    let prefix = &token[..token.len() - 1];
    for headers in [
        vec![],
        vec![("OpenSandbox-Secure-Access", wrong.as_str())],
        vec![("OpenSandbox-Secure-Access", prefix)],
        vec![("OpenSandbox-Secure-Access", "")],
        // Another sandbox's credentials do not open this one.
        vec![("OPEN-SANDBOX-API-KEY", "k"), ("Authorization", "Bearer x")],
    ] {
        let (status, error) = proxied.get(&uri, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {error}");
        assert_eq!(error["code"], "MISSING_OR_INVALID_SECURE_ACCESS", "{error}");
        assert!(!error["message"].as_str().unwrap().contains(&token[..8]));
    }
    let (status, seen) = proxied
        .get(&uri, &[("OpenSandbox-Secure-Access", &token)])
        .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["uri"], "/x");
    // The unsecured sandbox next to it needs no token.
    let (status, _) = proxied.get(&proxied.url(port, "/x"), &[]).await;
    assert_eq!(status, StatusCode::OK);
}
