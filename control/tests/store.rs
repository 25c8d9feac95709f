//! The state store on disk: private files from creation, and a store that
//! cannot be written stops startup instead of serving read-only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::{Knobs, TestApp, body_with};
use sandgate_control::app::App;
use sandgate_control::runtime::Runtime;
use serde_json::json;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A second app on the same fake engine whose store lives at `relative`
/// under the first app's temporary directory.
async fn app_with_store_at(relative: &str) -> (TestApp, std::path::PathBuf) {
    let base = TestApp::start(Knobs::default()).await;
    let mut options = base.options.clone();
    options.store_path = base.dir.path().join(relative);
    let app = App::start(options.clone(), base.fake.clone() as Arc<dyn Runtime>)
        .await
        .unwrap();
    let path = options.store_path.clone();
    let test = TestApp {
        app,
        fake: base.fake.clone(),
        dir: base.dir.clone(),
        options,
    };
    (test, path)
}

#[tokio::test]
async fn every_file_of_the_store_is_private_after_writes() {
    let (app, db) = app_with_store_at("data/sandgate/state.db").await;
    for _ in 0..3 {
        let id = app
            .create(
                "/v1",
                body_with(
                    "env",
                    json!({"DB_PASSWORD": "hunter2-never-world-readable"}),
                ),
            )
            .await;
        app.wait_state(&id, "Running").await;
        let (status, _) = app
            .call(Method::POST, &format!("/v1/sandboxes/{id}/pause"), None)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        app.wait_state(&id, "Paused").await;
    }
    let dir = db.parent().unwrap();
    assert_eq!(mode(dir), 0o700, "the store's directory");
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"state.db-wal".to_owned()),
        "WAL mode: {names:?}"
    );
    assert!(
        names.contains(&"state.db-shm".to_owned()),
        "WAL mode: {names:?}"
    );
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn a_store_that_cannot_be_written_stops_startup_naming_path_and_cause() {
    let base = TestApp::start(Knobs::default()).await;
    let db = base.dir.path().join("readonly/state.db");
    std::fs::create_dir(db.parent().unwrap()).unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE sandboxes (id TEXT PRIMARY KEY, record TEXT NOT NULL);
             CREATE TABLE sandbox_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, sandbox_id TEXT NOT NULL, event TEXT NOT NULL);
             CREATE INDEX sandbox_events_by_id ON sandbox_events (sandbox_id, seq);",
        )
        .unwrap();
    }
    // A write format version above 2 makes SQLite open the file read-only
    // (as a 0400 file would for a non-root user), whoever runs the test.
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[18] = 3;
    std::fs::write(&db, bytes).unwrap();
    let mut options = base.options.clone();
    options.store_path = db.clone();
    let started = App::start(options, base.fake.clone() as Arc<dyn Runtime>).await;
    let Err(error) = started else {
        panic!("a read-only store must stop startup");
    };
    let text = format!("{error:#}");
    assert!(
        text.contains(&db.display().to_string()),
        "names the path: {text}"
    );
    assert!(
        text.contains("cannot be written"),
        "says what is wrong: {text}"
    );
    assert!(text.contains("readonly"), "gives SQLite's cause: {text}");
}

#[tokio::test]
async fn health_is_degraded_while_store_writes_fail_and_the_body_names_no_cause() {
    let app = TestApp::start(Knobs::default()).await;
    let health = |app: &TestApp| {
        let app = app.app.router.clone();
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let request = axum::http::Request::get("/health")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        }
    };
    assert_eq!(health(&app).await["status"], "healthy");
    let db = app.options.store_path.clone();
    let outside = rusqlite::Connection::open(&db).unwrap();
    // Another writer makes every insert fail, as a failing disk would.
    outside
        .execute_batch(
            "CREATE TRIGGER fail_inserts BEFORE INSERT ON sandboxes
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
        )
        .unwrap();
    let (status, error) = app
        .call(Method::POST, "/v1/sandboxes", Some(common::body()))
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("SANDBOX::STORE_FAILED")
        )
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        !message.contains("disk on fire") && !message.contains(&db.display().to_string()),
        "{message}"
    );
    let degraded = health(&app).await;
    assert_eq!(
        (
            degraded["status"].as_str(),
            degraded["storeStatus"].as_str()
        ),
        (
            Some("degraded"),
            Some("writes are failing: changes cannot be saved")
        )
    );
    outside.execute_batch("DROP TRIGGER fail_inserts;").unwrap();
    app.create("/v1", common::body()).await;
    assert_eq!(health(&app).await["status"], "healthy");
}

#[tokio::test]
async fn the_fake_engines_state_file_is_private_too() {
    use sandgate_control::runtime::fake::{FakeRuntime, FakeSettings};
    let base = TestApp::start(Knobs::default()).await;
    let state_file = base.dir.path().join("engine.json");
    std::fs::write(state_file.with_extension("tmp"), b"{}").unwrap();
    std::fs::set_permissions(
        state_file.with_extension("tmp"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let fake = Arc::new(
        FakeRuntime::new(FakeSettings {
            state_file: Some(state_file.clone()),
            ..FakeSettings::default()
        })
        .unwrap(),
    );
    let mut options = base.options.clone();
    options.store_path = base.dir.path().join("second/state.db");
    let app = App::start(options.clone(), fake.clone() as Arc<dyn Runtime>)
        .await
        .unwrap();
    let app = TestApp {
        app,
        fake,
        dir: base.dir.clone(),
        options,
    };
    let id = app.create("/v1", common::body()).await;
    app.wait_state(&id, "Running").await;
    assert_eq!(mode(&state_file), 0o600);
}
