//! Route publication: the control plane's side of the edge proxies' routing
//! table.
//!
//! After every registry change the publisher rebuilds the table from the
//! sandbox records, diffs it against the previous one and appends one
//! versioned change per route to a bounded log. Proxies stream the log
//! (`GET /internal/v1/routes?since=<version>`, see [`crate::http::route_stream`]): a proxy that
//! resumes from a version still in the log gets only what it missed; any
//! other gets a full snapshot first.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::RwLock;
use sandgate_shared::api::SandboxState;
use sandgate_shared::routes::{RouteTable, RouteUpdate, SandboxRoute};
use sandgate_shared::signing::sha256_hex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::sandbox::model::SandboxRecord;
use crate::sandbox::service::SandboxService;

/// How many changes are kept for resuming proxies.
const LOG_LIMIT: usize = 8192;

struct Published {
    table: Arc<RouteTable>,
    log: VecDeque<RouteUpdate>,
}

/// Publishes the routing table; cheap to clone.
#[derive(Clone)]
pub struct RoutePublisher {
    published: Arc<RwLock<Published>>,
    version: watch::Sender<u64>,
}

impl std::fmt::Debug for RoutePublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutePublisher")
            .field("version", &*self.version.borrow())
            .finish()
    }
}

impl RoutePublisher {
    /// Starts following the service's registry. Versions start at the
    /// current Unix time in milliseconds × 1000, so they keep increasing
    /// across control-plane restarts and a resuming proxy never mistakes a
    /// new process's version for one it has seen.
    pub fn start(service: SandboxService, stop: CancellationToken) -> Self {
        let base = u64::try_from(chrono::Utc::now().timestamp_millis())
            .unwrap_or(0)
            .saturating_mul(1000);
        let table = RouteTable {
            version: base,
            routes: Default::default(),
        };
        let publisher = Self {
            published: Arc::new(RwLock::new(Published {
                table: Arc::new(table),
                log: VecDeque::new(),
            })),
            version: watch::Sender::new(base),
        };
        publisher.rebuild(&service);
        tokio::spawn(publisher.clone().follow(service, stop));
        publisher
    }

    async fn follow(self, service: SandboxService, stop: CancellationToken) {
        let mut changes = service.registry().subscribe();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            self.rebuild(&service);
        }
    }

    /// Rebuilds the table; publishes one versioned change per route that differs.
    fn rebuild(&self, service: &SandboxService) {
        let routes = service
            .registry()
            .all()
            .iter()
            .map(|record| (record.id.clone(), route_of(record)))
            .collect();
        let mut published = self.published.write();
        let mut next = RouteTable {
            version: published.table.version,
            routes,
        };
        let changes = published.table.diff(&next);
        if changes.is_empty() {
            return;
        }
        for (id, change) in changes {
            next.version += 1;
            let version = next.version;
            let update = match change {
                Some(route) => RouteUpdate::Upsert { version, id, route },
                None => RouteUpdate::Remove { version, id },
            };
            published.log.push_back(update);
        }
        while published.log.len() > LOG_LIMIT {
            published.log.pop_front();
        }
        let version = next.version;
        published.table = Arc::new(next);
        drop(published);
        self.version.send_replace(version);
        tracing::debug!(routes.version = version, "route table updated");
    }

    /// The current table.
    pub fn snapshot(&self) -> Arc<RouteTable> {
        self.published.read().table.clone()
    }

    /// The changes after `version`, or `None` when they are no longer (or
    /// were never) in the log and a snapshot is needed.
    pub fn since(&self, version: u64) -> Option<Vec<RouteUpdate>> {
        let published = self.published.read();
        let current = published.table.version;
        if version == current {
            return Some(Vec::new());
        }
        let first = published.log.front().map(update_version)?;
        if version < first.saturating_sub(1) || version > current {
            return None;
        }
        Some(
            published
                .log
                .iter()
                .filter(|u| update_version(u) > version)
                .cloned()
                .collect(),
        )
    }

    /// Wakes on every new version.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

fn update_version(update: &RouteUpdate) -> u64 {
    match update {
        RouteUpdate::Snapshot { table } => table.version,
        RouteUpdate::Upsert { version, .. }
        | RouteUpdate::Remove { version, .. }
        | RouteUpdate::Heartbeat { version } => *version,
    }
}

/// The route of one sandbox. Every live sandbox has one, so the proxy can
/// tell "pending", "paused" and "failed" apart from "unknown".
pub fn route_of(record: &SandboxRecord) -> SandboxRoute {
    let message = match record.status.state {
        SandboxState::Running => None,
        _ => Some(record.status.message.clone()).filter(|m| !m.is_empty()),
    };
    SandboxRoute {
        state: record.status.state,
        message,
        address: record.address.clone(),
        secure_access_sha256: record
            .secure_access_token
            .as_deref()
            .map(|t| sha256_hex(t.as_bytes())),
    }
}
