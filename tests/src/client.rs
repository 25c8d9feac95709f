//! A small keep-alive HTTP/1.1 JSON client for the Lifecycle API.
//!
//! Every call has a timeout, so a wedged server fails the test instead of
//! hanging it. Transport failures (connection refused or reset, timeout)
//! are `Err`; any HTTP response, whatever its status, is `Ok`.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How long one request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A status and a JSON body (`Value::Null` when the body is empty).
pub type Response = (u16, Value);

/// A client bound to one server; cheap to clone (connections are shared).
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Api {
    /// A client for `base` (`http://127.0.0.1:PORT`, no trailing slash).
    pub fn new(base: impl Into<String>) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            base: base.into(),
            client,
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET path` with a JSON answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<Response> {
        self.json(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Response> {
        self.json(Method::POST, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch_json(&self, path: &str, body: &Value) -> anyhow::Result<Response> {
        self.json(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Response> {
        self.json(Method::DELETE, path, None).await
    }

    /// `GET path` with a text answer (`/metrics`).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let (status, body) = self.send(Method::GET, path, None).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Response> {
        let payload = body.map(serde_json::to_vec).transpose()?;
        let (status, bytes) = self.send(method.clone(), path, payload).await?;
        if bytes.is_empty() {
            return Ok((status, Value::Null));
        }
        let value = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{method} {path} → {status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok((status, value))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base));
        if body.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = builder.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, bytes))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result.with_context(|| format!("{method} {path}")),
            Err(_) => bail!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"),
        }
    }
}
