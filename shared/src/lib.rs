//! Types shared by the Sandgate control plane and the edge proxy.
//!
//! Nothing heavy lives here: no async runtime, no HTTP framework, no container
//! engine client. Both sides, and any Rust client, can depend on it cheaply.
//!
//! # Layout
//! - [`ids`]: validated identifiers ([`ids::SandboxId`]).
//! - [`time`]: the wire timestamp ([`time::Timestamp`]): RFC 3339, UTC, `Z`.
//! - [`api`]: the OpenSandbox Lifecycle API response model (camelCase, nulls omitted).

pub mod api;
pub mod ids;
pub mod time;
