//! `GET /internal/v1/routes?since=<version>`: the route stream edge proxies
//! subscribe to, as newline-delimited JSON, authenticated with a bearer token.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sandgate_shared::routes::RouteUpdate;
use sandgate_shared::signing::constant_time_eq;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::AppState;
use crate::error::ApiError;
use crate::routes::RoutePublisher;

/// How often an idle stream carries a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Who may subscribe, and when streams end.
#[derive(Clone)]
pub struct RouteStreamAccess {
    /// The shared secret proxies send as `Authorization: Bearer <token>`;
    /// `None` disables the stream.
    pub token: Option<String>,
    /// Cancelled on shutdown, ending every stream.
    pub stop: CancellationToken,
}

impl std::fmt::Debug for RouteStreamAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteStreamAccess")
            .field("enabled", &self.token.is_some())
            .finish()
    }
}

/// The handler.
pub async fn routes(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    authorize(&state.route_access, &headers)?;
    let since = parse_since(query.as_deref())?;
    let publisher = state.routes.clone();
    let first = match since.and_then(|v| publisher.since(v)) {
        Some(changes) => changes,
        None => vec![RouteUpdate::Snapshot {
            table: (*publisher.snapshot()).clone(),
        }],
    };
    let stream = Stream {
        last: first
            .iter()
            .map(version_of)
            .max()
            .unwrap_or_else(|| since.unwrap_or(0)),
        changes: publisher.subscribe(),
        publisher,
        pending: first.into(),
        stop: state.route_access.stop.clone(),
    };
    let body = Body::from_stream(futures_util::stream::unfold(stream, Stream::next_line));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

fn authorize(access: &RouteStreamAccess, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &access.token else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ROUTES::DISABLED",
            "Route publication is off: set [sandgate] routes_token (or SANDGATE_ROUTES_TOKEN) to let edge proxies subscribe.",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ROUTES::INVALID_TOKEN",
            "The route stream needs the routes token as a bearer token.",
        ))
    }
}

fn parse_since(query: Option<&str>) -> Result<Option<u64>, ApiError> {
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "since" {
            let version = value.parse().map_err(|_| {
                ApiError::invalid(format!("since: {value:?} is not a version number"))
            })?;
            return Ok(Some(version));
        }
    }
    Ok(None)
}

fn version_of(update: &RouteUpdate) -> u64 {
    match update {
        RouteUpdate::Snapshot { table } => table.version,
        RouteUpdate::Upsert { version, .. }
        | RouteUpdate::Remove { version, .. }
        | RouteUpdate::Heartbeat { version } => *version,
    }
}

struct Stream {
    publisher: RoutePublisher,
    changes: watch::Receiver<u64>,
    pending: VecDeque<RouteUpdate>,
    last: u64,
    stop: CancellationToken,
}

impl Stream {
    async fn next_line(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if let Some(update) = self.pending.pop_front() {
                self.last = self.last.max(version_of(&update));
                let mut line = serde_json::to_vec(&update).unwrap_or_default();
                line.push(b'\n');
                return Some((Ok(Bytes::from(line)), self));
            }
            tokio::select! {
                () = self.stop.cancelled() => return None,
                changed = self.changes.changed() => {
                    changed.ok()?;
                    self.catch_up();
                }
                () = tokio::time::sleep(HEARTBEAT) => {
                    self.pending.push_back(RouteUpdate::Heartbeat { version: self.last });
                }
            }
        }
    }

    fn catch_up(&mut self) {
        match self.publisher.since(self.last) {
            Some(changes) => self.pending.extend(changes),
            None => {
                let table = (*self.publisher.snapshot()).clone();
                self.pending.push_back(RouteUpdate::Snapshot { table });
            }
        }
    }
}
