//! A general HTTP/1.1 client for traffic through the edge proxy, and the
//! request/response bodies the scenarios stream.
//!
//! Unlike [`crate::Api`] (JSON in, JSON out), [`Http`] sends any method,
//! headers (an explicit `Host` wins over the URL's) and body, and either
//! collects the answer ([`Http::send`]) or hands back the live response
//! for streaming ([`Http::open`]). Every call has a deadline.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::mpsc;

/// The body type of every request the client sends and every response
/// the host-side upstreams answer.
pub type BoxBody = UnsyncBoxBody<Bytes, Infallible>;

/// How long a collected exchange may take by default.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// An empty body.
pub fn empty() -> BoxBody {
    Empty::new().boxed_unsync()
}

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into()).boxed_unsync()
}

/// A body of `total` bytes made of repeated `chunk`s, produced lazily, with
/// an exact size hint (so it is sent with `Content-Length`).
#[derive(Debug)]
pub struct RepeatBody {
    chunk: Bytes,
    remaining: u64,
}

impl RepeatBody {
    /// `total` bytes of the byte `fill`, in chunks of `chunk_size`.
    pub fn new(total: u64, chunk_size: usize, fill: u8) -> Self {
        Self {
            chunk: Bytes::from(vec![fill; chunk_size.max(1)]),
            remaining: total,
        }
    }

    /// Boxed for [`Http`] and the upstreams.
    pub fn boxed(self) -> BoxBody {
        BodyExt::boxed_unsync(self)
    }
}

impl Body for RepeatBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let len = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.chunk.len());
        self.remaining -= len as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..len)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A body whose chunks are pushed through a channel; it ends when every
/// sender is dropped. Sent chunked (no length known).
#[derive(Debug)]
pub struct ChannelBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    /// The body and the sender that feeds it.
    pub fn new() -> (mpsc::Sender<Bytes>, Self) {
        let (sender, receiver) = mpsc::channel(16);
        (sender, Self { receiver })
    }

    /// Boxed for [`Http`] and the upstreams.
    pub fn boxed(self) -> BoxBody {
        BodyExt::boxed_unsync(self)
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.receiver
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// A collected answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `code` of a JSON error body (`""` when absent).
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A keep-alive HTTP/1.1 client; cheap to clone.
#[derive(Clone, Debug)]
pub struct Http {
    client: Client<HttpConnector, BoxBody>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// A client with its own connection pool.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// A request for `url` with `headers` and `body`.
    pub fn request(
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: BoxBody,
    ) -> anyhow::Result<Request<BoxBody>> {
        let mut builder = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder
            .body(body)
            .with_context(|| format!("building a request for {url}"))
    }

    /// `GET url` with `headers`, collected.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> anyhow::Result<Reply> {
        self.send(Self::request(Method::GET, url, headers, empty())?)
            .await
    }

    /// Sends `request` and collects the answer within [`EXCHANGE_TIMEOUT`].
    pub async fn send(&self, request: Request<BoxBody>) -> anyhow::Result<Reply> {
        self.send_within(request, EXCHANGE_TIMEOUT).await
    }

    /// Sends `request` and collects the answer within `timeout`.
    pub async fn send_within(
        &self,
        request: Request<BoxBody>,
        timeout: Duration,
    ) -> anyhow::Result<Reply> {
        let what = format!("{} {}", request.method(), request.uri());
        let exchange = async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            anyhow::Ok(Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result.with_context(|| what.clone()),
            Err(_) => bail!("{what}: no complete answer within {timeout:?}"),
        }
    }

    /// Sends `request` and returns the response as soon as its head
    /// arrived (within `timeout`), for reading the body as a stream.
    pub async fn open(
        &self,
        request: Request<BoxBody>,
        timeout: Duration,
    ) -> anyhow::Result<Response<Incoming>> {
        let what = format!("{} {}", request.method(), request.uri());
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Ok(result) => result.with_context(|| what.clone()),
            Err(_) => bail!("{what}: no response head within {timeout:?}"),
        }
    }
}
