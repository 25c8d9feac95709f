//! Sandgate control plane: the OpenSandbox Lifecycle API over pluggable
//! container runtimes, with durable state and exact TTLs.
//!
//! # Layout
//! - [`config`]: the TOML configuration (OpenSandbox's keys plus `[sandgate]`).
//! - [`app`]: assembles store, runtime, scheduler, service and router.
//! - [`http`]: routes, middleware (request id, auth, CORS), handlers.
//! - [`sandbox`]: the domain: model, validation, state machine, and
//!   [`sandbox::service::SandboxService`], the only writer of sandbox state.
//! - [`runtime`]: the [`runtime::Runtime`] trait and its implementations.
//! - [`routes`]: the routing table published to edge proxies.
//! - [`store`]: durable state in SQLite.
//! - [`ttl`]: the expiry scheduler.
//! - [`metrics`], [`clock`], [`error`]: supporting pieces.

pub mod app;
pub mod bootstrap;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod ingress;
pub mod metrics;
pub mod routes;
pub mod runtime;
pub mod sandbox;
pub mod sdk_events;
pub mod store;
pub mod ttl;
