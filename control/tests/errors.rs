//! Engine and internal error text never reaches clients: bodies and status
//! messages say what failed in product terms (5xx with the request id),
//! against the real Docker engine and the server-proxy relay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::docker::{DockerApp, busybox, docker};
use common::{Knobs, TestApp};
use serde_json::{Value, json};

/// Text that only the engine or the host would write.
const INTERNAL: [&str; 10] = [
    "OCI",
    "runc",
    "shim",
    "CPUs available",
    "dial tcp",
    "connection refused",
    "127.0.0.1",
    "Docker",
    "daemon",
    "lookup",
];

fn assert_clean(text: &str, extra: &[&str]) {
    for needle in INTERNAL.iter().chain(extra) {
        assert!(!text.contains(needle), "{needle:?} leaked: {text}");
    }
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn failed_message(app: &DockerApp, body: Value) -> Option<String> {
    let (status, created) = app
        .app
        .call(Method::POST, "/v1/sandboxes", Some(body))
        .await;
    if status == StatusCode::BAD_REQUEST {
        // Rejected at validation: also fine, as long as the text is ours.
        assert_clean(&created.to_string(), &[]);
        return None;
    }
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let id = created["id"].as_str().unwrap();
    let failed = app.app.wait_state(id, "Failed").await;
    Some(failed["status"]["message"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn engine_failures_during_provisioning_are_described_in_product_terms() {
    let app = DockerApp::start(|_| {}).await;

    let missing = failed_message(&app, busybox(&["/no/such/program"])).await;
    let message = missing.expect("a missing program is only found by the engine");
    assert!(
        message.contains("\"/no/such/program\" cannot be started"),
        "{message}"
    );
    assert_clean(&message, &["stat "]);

    let cpus = std::thread::available_parallelism().map_or(2, usize::from) + 1;
    let mut greedy = busybox(&["sleep", "600"]);
    greedy["resourceLimits"] = json!({"cpu": cpus.to_string(), "memory": "64Mi"});
    if let Some(message) = failed_message(&app, greedy).await {
        assert!(message.starts_with("Provisioning failed: "), "{message}");
        assert_clean(&message, &[]);
    }

    let unreachable = format!("127.0.0.1:{}/sandgate/none:latest", closed_port());
    let mut pull = busybox(&["sleep", "600"]);
    pull["image"] = json!({"uri": unreachable});
    let message = failed_message(&app, pull)
        .await
        .expect("pulls fail in the engine");
    assert!(message.contains("cannot be pulled"), "{message}");
    let without_image = message.replace(&unreachable, "<image>");
    assert_clean(&without_image, &[]);
}

#[tokio::test]
async fn a_pause_the_engine_already_did_answers_without_the_engines_text() {
    let app = DockerApp::start(|_| {}).await;
    let id = app.app.create("/v1", busybox(&["sleep", "600"])).await;
    app.app.wait_state(&id, "Running").await;
    let container_id = docker(&["inspect", "-f", "{{.Id}}", &format!("sandbox-{id}")]);
    docker(&["pause", &format!("sandbox-{id}")]);
    // The engine refuses the pause ("already paused") unless the event
    // stream got there first (then the state machine refuses it): either
    // way the client learns nothing about the engine.
    let (status, body) = app
        .app
        .call(Method::POST, &format!("/v1/sandboxes/{id}/pause"), None)
        .await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::CONFLICT,
        "{status}: {body}"
    );
    assert_clean(
        &body.to_string(),
        &[&container_id, &container_id[..12], "already paused"],
    );
    app.app.wait_state(&id, "Paused").await;
    docker(&["unpause", &format!("sandbox-{id}")]);
}

/// A server-proxy request relayed to an edge proxy that is not listening.
async fn relay_to_nowhere(
    request_id: &str,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let edge: axum::http::Uri = format!("http://127.0.0.1:{}", closed_port())
        .parse()
        .unwrap();
    let app = TestApp::start(Knobs {
        edge_proxy: Some(edge),
        ..Knobs::default()
    })
    .await;
    app.call_with(
        Method::GET,
        "/v1/sandboxes/abc/proxy/8080/x",
        None,
        &[("x-request-id", request_id)],
    )
    .await
}

#[tokio::test]
async fn a_relay_failure_names_no_address_and_carries_the_request_id() {
    let (status, headers, error) = relay_to_nowhere("relay-failure-1").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("GENERAL::UNKNOWN_ERROR"))
    );
    assert_eq!(headers["x-request-id"], "relay-failure-1");
    let message = error["message"].as_str().unwrap();
    assert_eq!(
        message,
        "The server proxy could not reach the edge proxy (request id relay-failure-1)."
    );
    assert_clean(message, &["client error", "hyper"]);
}

/// Log lines written while the test runs (on this thread).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_cause_is_logged_once_in_the_requests_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (status, _, _) = relay_to_nowhere("logged-once-7").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let causes: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("Connection refused"))
        .collect();
    assert_eq!(causes.len(), 1, "logged once: {text}");
    assert!(
        causes[0].contains("request{request.id=\"logged-once-7\"")
            && causes[0].contains("error.code=\"GENERAL::UNKNOWN_ERROR\""),
        "in the request's span, with the code: {}",
        causes[0]
    );
}
