//! Tests of the route sync: applying updates, coalescing, and a real stream
//! from a scripted fake control plane (reconnect, resume, token).

use std::time::Duration;

use sandgate_shared::api::SandboxState;
use sandgate_shared::routes::SandboxRoute;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

fn route(state: SandboxState) -> SandboxRoute {
    SandboxRoute {
        state,
        message: None,
        address: Some("10.0.0.1".into()),
        secure_access_sha256: None,
    }
}

fn line(update: &RouteUpdate) -> String {
    format!("{}\n", serde_json::to_string(update).unwrap())
}

fn snapshot(version: u64, ids: &[&str]) -> RouteUpdate {
    let routes = ids
        .iter()
        .map(|id| (id.parse().unwrap(), route(SandboxState::Running)))
        .collect();
    RouteUpdate::Snapshot {
        table: RouteTable { version, routes },
    }
}

fn upsert(version: u64, id: &str) -> RouteUpdate {
    RouteUpdate::Upsert {
        version,
        id: id.parse().unwrap(),
        route: route(SandboxState::Running),
    }
}

fn sync_to(authority: String, token: Option<&str>) -> RouteSync {
    let control = ControlConfig {
        url: format!("http://{authority}"),
        authority,
        token: token.map(str::to_owned),
        reconnect_max: Duration::from_secs(1),
    };
    RouteSync::new(
        Arc::new(RouteStore::new()),
        Arc::new(Metrics::new()),
        control,
    )
}

#[test]
fn applies_snapshots_changes_and_heartbeats() {
    let mut table = None;
    assert!(matches!(
        apply(&mut table, upsert(1, "a")),
        Err(SyncError::NoSnapshot)
    ));
    assert!(apply(&mut table, snapshot(5, &["a"])).unwrap());
    assert!(!apply(&mut table, RouteUpdate::Heartbeat { version: 5 }).unwrap());
    assert!(apply(&mut table, upsert(6, "b")).unwrap());
    assert!(
        !apply(&mut table, upsert(6, "c")).unwrap(),
        "already applied"
    );
    assert!(matches!(
        apply(&mut table, upsert(8, "c")),
        Err(SyncError::Gap(_))
    ));
    let behind = apply(&mut table, RouteUpdate::Heartbeat { version: 9 });
    assert!(matches!(
        behind,
        Err(SyncError::Behind {
            heartbeat: 9,
            have: 6
        })
    ));
    assert_eq!(table.map(|t| t.routes.len()), Some(2));
}

#[test]
fn applies_complete_lines_and_keeps_the_partial_one() {
    let sync = sync_to("127.0.0.1:1".into(), None);
    let mut table = None;
    let text = format!(
        "{}\n{}{}",
        line(&snapshot(1, &["a"])),
        line(&upsert(2, "b")),
        r#"{"type":"heart"#
    );
    let mut buffer = BytesMut::from(text.as_bytes());
    let mut lines = LinesCodec::new_with_max_length(MAX_LINE);
    let outcome = sync.apply_lines(&mut lines, &mut buffer, &mut table);
    assert_eq!(outcome.messages, 2, "blank lines are skipped");
    assert!(outcome.changed && outcome.error.is_none());
    assert_eq!(&buffer[..], br#"{"type":"heart"#);
    assert_eq!(table.as_ref().map(|t| t.version), Some(2));
    buffer.extend_from_slice(b"beat\",\"version\":2}\nnot json\n");
    let outcome = sync.apply_lines(&mut lines, &mut buffer, &mut table);
    assert_eq!(outcome.messages, 2);
    assert!(!outcome.changed);
    assert!(matches!(outcome.error, Some(SyncError::Decode(_))));
}

#[test]
fn a_line_longer_than_the_limit_is_refused_before_it_ends() {
    let sync = sync_to("127.0.0.1:1".into(), None);
    let mut table = None;
    let mut lines = LinesCodec::new_with_max_length(16);
    let mut buffer = BytesMut::from(&b"{\"type\":\"snapshot\",\"version\":1"[..]);
    let outcome = sync.apply_lines(&mut lines, &mut buffer, &mut table);
    assert!(matches!(outcome.error, Some(SyncError::LineTooLong)));
}

/// Reads one request head and returns it.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

async fn write_chunk(stream: &mut TcpStream, text: &str) {
    let chunk = format!("{:x}\r\n{text}\r\n", text.len());
    stream.write_all(chunk.as_bytes()).await.unwrap();
}

const STREAM_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";

#[tokio::test]
async fn follows_the_stream_and_resumes_from_its_version_after_a_drop() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sync = Arc::new(sync_to(
        listener.local_addr().unwrap().to_string(),
        Some("t0k"),
    ));
    let store = Arc::clone(&sync.store);
    let runner = tokio::spawn({
        let sync = Arc::clone(&sync);
        async move { sync.run().await }
    });

    let (mut first, _) = listener.accept().await.unwrap();
    let head = read_head(&mut first).await;
    assert!(
        head.starts_with("GET /internal/v1/routes HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer t0k\r\n"),
        "{head}"
    );
    first.write_all(STREAM_HEAD).await.unwrap();
    let burst = format!("{}{}", line(&snapshot(1, &["a"])), line(&upsert(2, "b")));
    write_chunk(&mut first, &burst).await;
    first.write_all(b"0\r\n\r\n").await.unwrap();
    drop(first);

    let (mut second, _) = listener.accept().await.unwrap();
    let head = read_head(&mut second).await;
    assert!(
        head.starts_with("GET /internal/v1/routes?since=2 HTTP/1.1\r\n"),
        "{head}"
    );
    assert_eq!(store.load().version(), 2, "the table survived the drop");
    second.write_all(STREAM_HEAD).await.unwrap();
    write_chunk(&mut second, &line(&upsert(3, "c"))).await;

    let mut swaps = store.subscribe();
    tokio::time::timeout(Duration::from_secs(5), async {
        while store.load().version() < 3 {
            swaps.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    let index = store.load();
    assert!(index.get("a").is_some() && index.get("b").is_some() && index.get("c").is_some());
    assert_eq!(sync.metrics.routes_version.get(), 3);
    assert!(store.age_seconds().is_some());
    runner.abort();
}

#[tokio::test]
async fn a_wrong_token_is_reported_as_such() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sync = sync_to(listener.local_addr().unwrap().to_string(), Some("wrong"));
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_head(&mut stream).await;
        stream
            .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
    });
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let error = sync.open(&client, None).await.unwrap_err();
    assert!(matches!(error, SyncError::Unauthorized(401)), "{error}");
    assert!(error.to_string().contains("SANDGATE_ROUTES_TOKEN"));
    server.await.unwrap();
    assert!(!sync.store.is_ready());
}
