//! Shared fixtures for the control plane's tests: an app on the fake
//! runtime with a temporary store, and a JSON request helper.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod docker;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use sandgate_control::app::{App, AppOptions};
use sandgate_control::clock::Clock;
use sandgate_control::runtime::Runtime;
use sandgate_control::runtime::fake::{FakeRuntime, FakeSettings};
use sandgate_control::sandbox::request::CreateRules;
use sandgate_control::sandbox::service::ServiceSettings;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

/// A running app on the fake runtime.
pub struct TestApp {
    pub app: App,
    pub fake: Arc<FakeRuntime>,
    pub dir: Arc<TempDir>,
    pub options: AppOptions,
}

/// Builder-style knobs.
#[derive(Clone)]
pub struct Knobs {
    pub api_key: Option<String>,
    pub provision_latency: Duration,
    pub max_timeout: Option<u64>,
    pub allowed_host_paths: Vec<String>,
    pub pending_failure_ttl: Duration,
    pub clock: Option<Clock>,
    pub ingress: sandgate_control::ingress::Ingress,
    pub edge_proxy: Option<axum::http::Uri>,
    pub forward: sandgate_control::http::forward::ForwardSettings,
    pub web: sandgate_control::config::WebConfig,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            api_key: None,
            provision_latency: Duration::ZERO,
            max_timeout: Some(86_400),
            allowed_host_paths: vec!["/data".to_owned()],
            pending_failure_ttl: Duration::from_secs(3600),
            clock: None,
            ingress: Default::default(),
            edge_proxy: None,
            forward: Default::default(),
            web: Default::default(),
        }
    }
}

impl TestApp {
    pub async fn start(knobs: Knobs) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let settings = FakeSettings {
            provision_latency: knobs.provision_latency,
            ..FakeSettings::default()
        };
        let fake = Arc::new(FakeRuntime::new(settings).unwrap());
        let options = AppOptions {
            store_path: dir.path().join("state.db"),
            api_key: knobs.api_key.clone(),
            service: ServiceSettings {
                rules: CreateRules {
                    max_timeout_seconds: knobs.max_timeout,
                    allowed_host_paths: knobs.allowed_host_paths.clone(),
                },
                pending_failure_ttl: knobs.pending_failure_ttl,
                ingress: knobs.ingress.clone(),
                ..ServiceSettings::default()
            },
            clock: knobs.clock.unwrap_or(Clock::System),
            shutdown_grace: Duration::from_secs(1),
            routes_token: Some("test-routes-token-0123456789".to_owned()),
            edge_proxy: knobs.edge_proxy.clone(),
            forward: knobs.forward,
            web: knobs.web.clone(),
        };
        let app = App::start(options.clone(), fake.clone() as Arc<dyn Runtime>)
            .await
            .unwrap();
        Self {
            app,
            fake,
            dir,
            options,
        }
    }

    /// Stops this app and starts another on the same store and fake engine,
    /// as a control-plane restart would.
    pub async fn restart(self) -> Self {
        self.app.stop();
        let app = App::start(self.options.clone(), self.fake.clone() as Arc<dyn Runtime>)
            .await
            .unwrap();
        Self {
            app,
            fake: self.fake,
            dir: self.dir,
            options: self.options,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self.call_with(method, uri, body, &[]).await;
        (status, value)
    }

    pub async fn call_with(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !typed {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self
            .app
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(
            !text.contains(":null"),
            "responses never carry null: {text}"
        );
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(text))
        };
        (status, headers, value)
    }

    pub async fn raw(&self, method: Method, uri: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = self.app.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Creates a sandbox and returns its id.
    pub async fn create(&self, prefix: &str, body: Value) -> String {
        let (status, value) = self
            .call(Method::POST, &format!("{prefix}/sandboxes"), Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{value}");
        value["id"].as_str().unwrap().to_owned()
    }

    /// Polls until the sandbox reaches `state` (deadline 10 s).
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, value) = self
                .call(Method::GET, &format!("/v1/sandboxes/{id}"), None)
                .await;
            if status == StatusCode::OK && value["status"]["state"] == state {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sandbox {id} never reached {state}: {value}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Polls until `GET` answers 404 for the sandbox (deadline 10 s): the
    /// record goes after the engine's container, never before.
    pub async fn wait_gone(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, value) = self
                .call(Method::GET, &format!("/v1/sandboxes/{id}"), None)
                .await;
            if status == StatusCode::NOT_FOUND {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sandbox {id} is still listed: {status} {value}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A valid create body.
pub fn body() -> Value {
    json!({
        "image": {"uri": "python:3.12"},
        "entrypoint": ["python", "-m", "http.server"],
        "resourceLimits": {"cpu": "500m", "memory": "512Mi"},
        "timeout": 600,
        "metadata": {"team": "infra"}
    })
}

/// `body()` with `key` replaced (or removed with `Value::Null` when `remove`).
pub fn body_with(key: &str, value: Value) -> Value {
    let mut b = body();
    b[key] = value;
    b
}

pub fn body_without(key: &str) -> Value {
    let mut b = body();
    b.as_object_mut().unwrap().remove(key);
    b
}

pub const PREFIXES: [&str; 2] = ["", "/v1"];
