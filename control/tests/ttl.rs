//! TTL tests on paused tokio time: expiry, renewal, renewal racing expiry,
//! timers restored after a restart, and expiry of sandboxes that expired
//! while the control plane was down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Knobs, TestApp, body, body_with};
use sandgate_control::clock::Clock;
use sandgate_control::runtime::fake::Op;
use sandgate_control::sandbox::lifecycle::DeleteCause;
use sandgate_shared::api::SandboxState;
use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;
use serde_json::json;

async fn paused_app(knobs: Knobs) -> TestApp {
    TestApp::start(Knobs {
        clock: Some(Clock::anchored(chrono::Utc::now())),
        ..knobs
    })
    .await
}

async fn create(app: &TestApp, timeout: u64) -> SandboxId {
    let body = serde_json::from_value(body_with("timeout", json!(timeout))).unwrap();
    let record = app.app.service.create(body).await.unwrap();
    record.id.clone()
}

fn exists(app: &TestApp, id: &SandboxId) -> bool {
    app.app.service.get(id.as_str()).is_ok()
}

/// Sleeps in paused time, then lets spawned deletions finish.
async fn advance(seconds: f64) {
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

async fn wait_gone(app: &TestApp, id: &SandboxId) {
    for _ in 0..200 {
        if !exists(app, id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("sandbox {id} was not removed");
}

#[tokio::test(start_paused = true)]
async fn expiry_removes_the_sandbox_through_the_delete_path() {
    let app = paused_app(Knobs::default()).await;
    let id = create(&app, 60).await;
    advance(59.0).await;
    assert!(exists(&app, &id), "not before its deadline");
    advance(2.0).await;
    wait_gone(&app, &id).await;
    assert!(!app.fake.contains(&id), "the runtime object is gone too");
    assert!(app.fake.calls().contains(&(Op::Delete, Some(id.clone()))));
}

#[tokio::test(start_paused = true)]
async fn renewal_moves_the_deadline() {
    let app = paused_app(Knobs::default()).await;
    let id = create(&app, 60).await;
    let new_deadline = app.app.service.clock().after(Duration::from_secs(300));
    app.app
        .service
        .renew(id.as_str(), new_deadline)
        .await
        .unwrap();
    assert_eq!(app.app.service.armed_deadline(&id), Some(new_deadline));
    advance(120.0).await;
    assert!(exists(&app, &id), "the old deadline no longer applies");
    advance(200.0).await;
    wait_gone(&app, &id).await;
}

#[tokio::test(start_paused = true)]
async fn a_renewal_acknowledged_before_the_deadline_wins() {
    let app = paused_app(Knobs::default()).await;
    let id = create(&app, 60).await;
    let deadline = app
        .app
        .service
        .get(id.as_str())
        .unwrap()
        .expires_at
        .unwrap();
    // Renew in the last millisecond before the deadline.
    tokio::time::sleep(app.app.service.clock().until(deadline) - Duration::from_millis(1)).await;
    let renewed = app.app.service.clock().after(Duration::from_secs(600));
    app.app.service.renew(id.as_str(), renewed).await.unwrap();
    // The scheduler fires for the old deadline at the latest now; it must not delete.
    let stale = app
        .app
        .service
        .delete(id.as_str(), DeleteCause::Expiry)
        .await;
    assert!(stale.is_ok());
    advance(5.0).await;
    assert!(
        exists(&app, &id),
        "a renewal acknowledged before the deadline always wins"
    );
    assert_eq!(
        app.app.service.get(id.as_str()).unwrap().expires_at,
        Some(renewed)
    );
}

#[tokio::test(start_paused = true)]
async fn an_expiry_that_started_first_makes_a_late_renewal_fail() {
    let app = paused_app(Knobs::default()).await;
    let id = create(&app, 60).await;
    advance(61.0).await;
    wait_gone(&app, &id).await;
    let late = app.app.service.clock().after(Duration::from_secs(600));
    assert!(
        app.app.service.renew(id.as_str(), late).await.is_err(),
        "renewing a deleted sandbox is refused"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_restores_every_timer() {
    let app = paused_app(Knobs::default()).await;
    let short = create(&app, 60).await;
    let long = create(&app, 600).await;
    let manual = {
        let body = serde_json::from_value(body_with("timeout", serde_json::Value::Null)).unwrap();
        app.app.service.create(body).await.unwrap().id.clone()
    };
    let renewed = app.app.service.clock().after(Duration::from_secs(120));
    app.app
        .service
        .renew(short.as_str(), renewed)
        .await
        .unwrap();
    let app = app.restart().await;
    assert_eq!(
        app.app.service.armed_deadline(&short),
        Some(renewed),
        "the renewed deadline survived"
    );
    assert!(app.app.service.armed_deadline(&long).is_some());
    assert_eq!(
        app.app.service.armed_deadline(&manual),
        None,
        "manual cleanup has no timer"
    );
    advance(121.0).await;
    wait_gone(&app, &short).await;
    assert!(exists(&app, &long) && exists(&app, &manual));
}

#[tokio::test(start_paused = true)]
async fn sandboxes_that_expired_while_down_are_reaped_at_once() {
    let app = paused_app(Knobs::default()).await;
    let expired = create(&app, 60).await;
    let alive = create(&app, 3600).await;
    app.app.stop();
    advance(120.0).await;
    assert!(
        app.fake.contains(&expired),
        "nothing ran while the control plane was down"
    );
    let app = app.restart().await;
    wait_gone(&app, &expired).await;
    assert!(!app.fake.contains(&expired));
    assert!(exists(&app, &alive));
}

#[tokio::test(start_paused = true)]
async fn failed_provisioning_is_removed_after_the_failure_ttl() {
    let knobs = Knobs {
        pending_failure_ttl: Duration::from_secs(30),
        ..Knobs::default()
    };
    let app = paused_app(knobs).await;
    let body =
        serde_json::from_value(body_with("image", json!({"uri": "fake/fail-pull"}))).unwrap();
    let id = app.app.service.create(body).await.unwrap().id.clone();
    advance(1.0).await;
    assert_eq!(
        app.app.service.get(id.as_str()).unwrap().status.state,
        SandboxState::Failed
    );
    advance(20.0).await;
    assert!(
        exists(&app, &id),
        "kept for inspection until the failure TTL passes"
    );
    advance(15.0).await;
    wait_gone(&app, &id).await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_expiry_deletion_is_retried() {
    let app = paused_app(Knobs::default()).await;
    let id = create(&app, 60).await;
    app.fake.fail_next(Op::Delete, "engine busy");
    advance(61.0).await;
    let record = app.app.service.get(id.as_str()).unwrap();
    assert_eq!(record.status.state, SandboxState::Stopping);
    assert!(
        record
            .status
            .message
            .contains("Deletion failed and will be retried")
    );
    assert!(
        !record.status.message.contains("engine busy"),
        "engine text leaked"
    );
    advance(31.0).await;
    wait_gone(&app, &id).await;
}

#[tokio::test(start_paused = true)]
async fn renew_keeps_the_wire_instant() {
    let app = paused_app(Knobs::default()).await;
    let id = create(&app, 600).await;
    let at = Timestamp::parse("2999-01-01T00:00:00.123456Z").unwrap();
    let err = app.app.service.renew(id.as_str(), at).await.unwrap_err();
    assert!(err.to_string().contains("maximum"), "{err}");
    let _ = body();
}
