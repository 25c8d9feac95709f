//! The routing table the control plane publishes to edge proxies, and the
//! messages of its update stream.
//!
//! The table is one immutable, versioned snapshot. The stream
//! (`GET /internal/v1/routes?since=<version>`, newline-delimited JSON) starts
//! with a full [`RouteUpdate::Snapshot`] unless the proxy resumes from a
//! version the control plane still has changes for, then carries one
//! [`RouteUpdate::Upsert`] or [`RouteUpdate::Remove`] per change, each with
//! the next version. A proxy applies changes to a copy and swaps it in whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::SandboxState;
use crate::ids::SandboxId;

/// Everything an edge proxy needs to know to route to one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxRoute {
    /// Lifecycle state: only `Running` is forwarded; `Pending` is held.
    pub state: SandboxState,
    /// Why the sandbox is in that state (shown for Failed/Paused answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Upstream host (IPv4, IPv6 without brackets, or DNS name); the port
    /// is the one in the request. `None` until the runtime knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Lowercase hex SHA-256 of the secure-access token, for sandboxes
    /// created with `secureAccess: true`; the token itself never leaves the
    /// control plane in the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_access_sha256: Option<String>,
}

/// A versioned snapshot of every route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    /// Increases by one with every change.
    pub version: u64,
    /// Routes by sandbox id.
    pub routes: BTreeMap<SandboxId, SandboxRoute>,
}

/// One message of the route stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RouteUpdate {
    /// The whole table (first message, or after a gap).
    Snapshot {
        /// The table.
        table: RouteTable,
    },
    /// A route added or changed.
    Upsert {
        /// The table version after this change.
        version: u64,
        /// Which sandbox.
        id: SandboxId,
        /// Its route.
        route: SandboxRoute,
    },
    /// A route removed.
    Remove {
        /// The table version after this change.
        version: u64,
        /// Which sandbox.
        id: SandboxId,
    },
    /// Nothing changed; sent periodically so proxies can tell a quiet
    /// control plane from a dead connection.
    Heartbeat {
        /// The current version.
        version: u64,
    },
}

/// An update that cannot be applied to a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// A change skipped versions (the stream lost messages): resynchronize.
    #[error("route update for version {got} does not follow version {have}")]
    Gap {
        /// The table's version.
        have: u64,
        /// The update's version.
        got: u64,
    },
}

impl RouteTable {
    /// Applies one update in place. Snapshots replace the table; changes
    /// must carry exactly the next version (older ones are ignored, as
    /// already applied); heartbeats change nothing.
    pub fn apply(&mut self, update: RouteUpdate) -> Result<(), ApplyError> {
        let next = |have: u64, got: u64| -> Result<bool, ApplyError> {
            match got {
                g if g <= have => Ok(false),
                g if g == have + 1 => Ok(true),
                g => Err(ApplyError::Gap { have, got: g }),
            }
        };
        match update {
            RouteUpdate::Snapshot { table } => *self = table,
            RouteUpdate::Upsert { version, id, route } => {
                if next(self.version, version)? {
                    self.routes.insert(id, route);
                    self.version = version;
                }
            }
            RouteUpdate::Remove { version, id } => {
                if next(self.version, version)? {
                    self.routes.remove(&id);
                    self.version = version;
                }
            }
            RouteUpdate::Heartbeat { .. } => {}
        }
        Ok(())
    }

    /// The changes that turn `self` into `newer` (for publishers and tests).
    pub fn diff(&self, newer: &RouteTable) -> Vec<(SandboxId, Option<SandboxRoute>)> {
        let mut changes = Vec::new();
        for (id, route) in &newer.routes {
            if self.routes.get(id) != Some(route) {
                changes.push((id.clone(), Some(route.clone())));
            }
        }
        for id in self.routes.keys() {
            if !newer.routes.contains_key(id) {
                changes.push((id.clone(), None));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(state: SandboxState) -> SandboxRoute {
        SandboxRoute {
            state,
            message: None,
            address: Some("10.0.0.1".into()),
            secure_access_sha256: None,
        }
    }

    #[test]
    fn applies_contiguous_changes_and_detects_gaps() {
        let mut table = RouteTable::default();
        let id: SandboxId = "sb-1".parse().unwrap();
        table
            .apply(RouteUpdate::Upsert {
                version: 1,
                id: id.clone(),
                route: route(SandboxState::Running),
            })
            .unwrap();
        assert_eq!(table.version, 1);
        table
            .apply(RouteUpdate::Upsert {
                version: 1,
                id: id.clone(),
                route: route(SandboxState::Paused),
            })
            .unwrap();
        assert_eq!(
            table.routes[&id].state,
            SandboxState::Running,
            "old versions are ignored"
        );
        let gap = table.apply(RouteUpdate::Remove {
            version: 3,
            id: id.clone(),
        });
        assert_eq!(gap, Err(ApplyError::Gap { have: 1, got: 3 }));
        table.apply(RouteUpdate::Remove { version: 2, id }).unwrap();
        assert!(table.routes.is_empty());
    }

    #[test]
    fn wire_format_is_tagged_camel_case() {
        let update = RouteUpdate::Remove {
            version: 7,
            id: "sb-1".parse().unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&update).unwrap(),
            r#"{"type":"remove","version":7,"id":"sb-1"}"#
        );
    }

    proptest::proptest! {
        /// Applying the diff of two tables as upserts and removes yields the newer table.
        #[test]
        fn diff_then_apply_reaches_the_newer_table(
            old in proptest::collection::btree_map("[a-z]{1,3}", 0u8..3, 0..8),
            new in proptest::collection::btree_map("[a-z]{1,3}", 0u8..3, 0..8),
        ) {
            let states = [SandboxState::Pending, SandboxState::Running, SandboxState::Paused];
            let build = |m: &BTreeMap<String, u8>, version| RouteTable {
                version,
                routes: m.iter().map(|(k, v)| (k.parse().unwrap(), route(states[*v as usize]))).collect(),
            };
            let (a, b) = (build(&old, 10), build(&new, 0));
            let mut applied = a.clone();
            for (i, (id, change)) in a.diff(&b).into_iter().enumerate() {
                let version = 11 + i as u64;
                let update = match change {
                    Some(route) => RouteUpdate::Upsert { version, id, route },
                    None => RouteUpdate::Remove { version, id },
                };
                applied.apply(update).unwrap();
            }
            proptest::prop_assert_eq!(applied.routes, b.routes);
        }
    }
}
