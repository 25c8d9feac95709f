//! The route stream edge proxies subscribe to: authentication, a snapshot
//! first, one change per sandbox change, and resuming from a version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Knobs, TestApp, body};
use http_body_util::BodyExt;
use sandgate_shared::api::SandboxState;
use sandgate_shared::routes::{RouteTable, RouteUpdate};
use tower::ServiceExt;

const TOKEN: &str = "test-routes-token-0123456789";

struct Lines {
    body: Body,
    buffer: Vec<u8>,
}

impl Lines {
    async fn next(&mut self) -> RouteUpdate {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line).unwrap();
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            self.buffer.extend_from_slice(&frame.into_data().unwrap());
        }
    }

    /// The next non-heartbeat update.
    async fn next_change(&mut self) -> RouteUpdate {
        loop {
            match self.next().await {
                RouteUpdate::Heartbeat { .. } => {}
                other => return other,
            }
        }
    }
}

async fn subscribe(app: &TestApp, query: &str, token: &str) -> (StatusCode, Lines) {
    let request = Request::get(format!("/internal/v1/routes{query}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.app.router.clone().oneshot(request).await.unwrap();
    (
        response.status(),
        Lines {
            body: response.into_body(),
            buffer: Vec::new(),
        },
    )
}

#[tokio::test]
async fn proxies_get_a_snapshot_then_every_change() {
    let app = TestApp::start(Knobs {
        provision_latency: Duration::from_millis(100),
        ..Knobs::default()
    })
    .await;
    let (status, _) = subscribe(&app, "", "wrong-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, mut lines) = subscribe(&app, "", TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let RouteUpdate::Snapshot { table } = lines.next().await else {
        panic!("snapshot first")
    };
    assert!(table.routes.is_empty());
    let mut mirror = table;

    let id = app.create("/v1", body()).await;
    let mut states = Vec::new();
    while states.last() != Some(&SandboxState::Running) {
        let update = lines.next_change().await;
        mirror.apply(update.clone()).unwrap();
        if let RouteUpdate::Upsert { id: got, route, .. } = update {
            assert_eq!(got.as_str(), id);
            states.push(route.state);
        }
    }
    assert_eq!(
        states.first(),
        Some(&SandboxState::Pending),
        "pending sandboxes are published (the proxy holds their requests)"
    );
    let route = &mirror.routes[&id.parse().unwrap()];
    assert_eq!(route.address.as_deref(), Some("127.0.0.1"));

    // A proxy that resumes from its version gets only what it missed.
    let version = mirror.version;
    app.call(
        axum::http::Method::DELETE,
        &format!("/v1/sandboxes/{id}"),
        None,
    )
    .await;
    let (_, mut resumed) = subscribe(&app, &format!("?since={version}"), TOKEN).await;
    let update = resumed.next_change().await;
    assert!(
        matches!(
            update,
            RouteUpdate::Upsert { .. } | RouteUpdate::Remove { .. }
        ),
        "{update:?}"
    );
    let mut resumed_table = RouteTable { ..mirror.clone() };
    resumed_table.apply(update).unwrap();
    while resumed_table.routes.contains_key(&id.parse().unwrap()) {
        resumed_table.apply(resumed.next_change().await).unwrap();
    }
    // An unknown version gets a snapshot.
    let (_, mut fresh) = subscribe(&app, "?since=12", TOKEN).await;
    assert!(matches!(fresh.next().await, RouteUpdate::Snapshot { .. }));
}
