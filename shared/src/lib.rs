//! Types shared by the Sandgate control plane and the edge proxy.
//!
//! Nothing heavy lives here: no async runtime, no HTTP framework, no container
//! engine client. Both sides, and any Rust client, can depend on it cheaply.
//!
//! # Layout
//! - [`ids`]: validated identifiers ([`ids::SandboxId`]).
//! - [`time`]: the wire timestamp ([`time::Timestamp`]): RFC 3339, UTC, `Z`.
//! - [`api`]: the OpenSandbox Lifecycle API response model (camelCase, nulls omitted).
//! - [`snapshots`]: the OpenSandbox snapshot API model.
//! - [`routes`]: the routing table published to edge proxies and its update stream.
//! - [`route_key`]: parsing `<id>-<port>` route keys from hosts, paths and headers.
//! - [`signing`]: OSEP-0011 signed routes (mint and verify).
//! - [`headers`]: credential and routing header names, and which hop strips them.
//! - [`framing`]: the HTTP/1.1 framing rules every hop applies.
//! - [`base64`]: decoding the base64 signing keys both sides are configured with.

pub mod api;
pub mod base64;
pub mod framing;
pub mod headers;
pub mod ids;
pub mod problems;
pub mod route_key;
pub mod routes;
pub mod signing;
pub mod snapshots;
pub mod time;
