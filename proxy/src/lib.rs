//! Sandgate's edge proxy: the data plane that routes HTTP (and WebSocket,
//! SSE, large bodies, unbuffered) from clients to sandbox ports, on pingora.
//!
//! The route table comes from the control plane's stream
//! (`/internal/v1/routes`); until the first table arrives every request is
//! answered 503 `PROXY::NOT_READY`.
//!
//! # Layout
//! - [`config`]: the TOML file → validated [`config::Config`] (`--check-config`).
//! - [`routes`]: route index, atomic store, and the background sync.
//! - [`service`]: [`service::EdgeProxy`], the `ProxyHttp` implementation.
//! - [`error`]: every answer the proxy gives itself ([`error::Reject`]).
//! - [`logging`]: tracing setup and the fast access-log layer.
//! - [`metrics`]: Prometheus metrics per sandbox and port.
//! - [`access`]: the access-log line.
//! - [`admin`]: `/health`, `/ready`, `/metrics`.
//! - [`server`]: assembling the pingora [`pingora::server::Server`].

pub mod access;
pub mod admin;
pub mod config;
pub mod error;
mod fastfmt;
pub mod logging;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod service;

pub use server::{BuildError, build_server, check_tls};
