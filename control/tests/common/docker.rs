//! Fixtures for tests against the real Docker engine: an app on the Docker
//! runtime with its own instance label, and cleanup of everything it made.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sandgate_control::app::{App, AppOptions};
use sandgate_control::clock::Clock;
use sandgate_control::runtime::Runtime;
use sandgate_control::runtime::docker::{DockerRuntime, DockerSettings};
use sandgate_control::sandbox::request::CreateRules;
use sandgate_control::sandbox::service::ServiceSettings;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The sandbox image built by `scripts/build-test-images.sh`.
pub const BUSYBOX: &str = "sandgate-test/busybox:latest";
/// The test execd image built by the same script.
pub const EXECD: &str = "sandgate-test/execd:latest";

/// A control plane on the real engine; removes its containers on drop.
pub struct DockerApp {
    pub app: super::TestApp,
    pub settings: DockerSettings,
}

impl DockerApp {
    pub async fn start(configure: impl FnOnce(&mut DockerSettings)) -> Self {
        require_images();
        let mut settings = DockerSettings {
            instance: format!("test-{}", uuid::Uuid::new_v4().simple()),
            stop_grace: Duration::from_secs(1),
            ..DockerSettings::default()
        };
        configure(&mut settings);
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let app = start_app(&settings, dir).await;
        Self { app, settings }
    }

    /// A control-plane restart on the same store and engine.
    pub async fn restart(&mut self) {
        self.app.app.stop();
        self.app = start_app(&self.settings, self.app.dir.clone()).await;
    }

    pub fn remove_all(&self) {
        let filter = format!("label=sandgate.io/instance={}", self.settings.instance);
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        for id in ids.split_whitespace() {
            docker(&["rm", "-f", id]);
        }
        // Snapshot images carry the instance label too.
        let images = docker(&["image", "ls", "-q", "--filter", &filter]);
        for id in images.split_whitespace() {
            docker(&["rmi", "-f", id]);
        }
    }
}

impl Drop for DockerApp {
    fn drop(&mut self) {
        self.remove_all();
    }
}

async fn start_app(settings: &DockerSettings, dir: Arc<TempDir>) -> super::TestApp {
    let runtime = Arc::new(
        DockerRuntime::connect(settings.clone())
            .await
            .expect("a running Docker engine"),
    );
    let options = AppOptions {
        store_path: dir.path().join("state.db"),
        api_key: None,
        service: ServiceSettings {
            rules: CreateRules {
                max_timeout_seconds: Some(86_400),
                allowed_host_paths: settings.allowed_host_paths.clone(),
            },
            ..ServiceSettings::default()
        },
        clock: Clock::System,
        shutdown_grace: Duration::from_secs(1),
        routes_token: Some("test-routes-token-0123456789".to_owned()),
        edge_proxy: None,
        forward: Default::default(),
        web: Default::default(),
    };
    let app = App::start(options.clone(), runtime as Arc<dyn Runtime>)
        .await
        .unwrap();
    let fake =
        Arc::new(sandgate_control::runtime::fake::FakeRuntime::new(Default::default()).unwrap());
    super::TestApp {
        app,
        fake,
        dir,
        options,
    }
}

/// Runs the docker CLI and returns its stdout.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn require_images() {
    for image in [BUSYBOX, EXECD] {
        assert!(
            !docker(&["image", "ls", "-q", image]).is_empty(),
            "test image {image} is missing: run scripts/build-test-images.sh (scripts/test.sh does)"
        );
    }
}

/// A create body for the busybox image running `entrypoint`.
pub fn busybox(entrypoint: &[&str]) -> Value {
    json!({
        "image": {"uri": BUSYBOX},
        "entrypoint": entrypoint,
        "resourceLimits": {"cpu": "500m", "memory": "128Mi"},
        "timeout": 600,
    })
}

/// An HTTP/1.0 GET to `http://{endpoint}{path}` from the host (which routes
/// to container addresses): (status, body).
pub async fn http_get(endpoint: &str, path: &str) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(endpoint)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {endpoint}\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(String::from_utf8_lossy(&response).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| format!("no answer from {endpoint} within 2s"))??;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `http_get` until it answers (deadline 10 s).
pub async fn wait_http(endpoint: &str, path: &str) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match http_get(endpoint, path).await {
            Ok(answer) => return answer,
            Err(error) => assert!(tokio::time::Instant::now() < deadline, "{error}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
