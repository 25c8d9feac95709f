//! End-to-end harness for Sandgate: runs the real `sandgate-control` and
//! `sandgate-proxy` binaries.
//!
//! The tests in `tests/tests/` start the binaries as child processes with
//! generated configurations (fake or Docker runtime, SQLite store,
//! fake-engine state file, all in a temporary directory), talk to them over
//! HTTP on 127.0.0.1, kill them with SIGKILL and start them again on the
//! same store and port. A failing test prints the tail of each process log.
//!
//! # The binaries must be built first
//! Tests never run `cargo build` themselves. CI (and you) run
//! `cargo build --workspace` before `cargo nextest run -p sandgate-tests`.
//! The control plane is taken from the `SANDGATE_CONTROL_BIN` environment
//! variable when set, else from `<workspace>/target/debug/sandgate-control`;
//! the edge proxy from `SANDGATE_PROXY_BIN`, else `sandgate-proxy` next to
//! the control binary. The Docker scenarios (`tests/tests/edge.rs`) also
//! need a Docker engine and the images of `scripts/build-test-images.sh`.
//!
//! # Layout
//! - [`process`]: [`ControlProcess`], the child process and its config.
//! - [`client`]: [`Api`], a small keep-alive JSON client.
//! - [`poll`]: [`poll_until`], condition polling with a deadline (no bare sleeps).
//! - [`ports`]: free ports for the processes under test, below the
//!   ephemeral range (no race with concurrent tests' outgoing connections).
//! - [`prom`]: reading single values out of the Prometheus text format.
//! - [`sandboxes`]: typed Lifecycle API calls ([`Listing`], [`engine_ids`]).
//! - [`edge`]: [`ProxyProcess`] (the edge proxy binary), [`EdgeStack`]
//!   (control plane + proxy wired like `scripts/stack.sh`, on the fake or the
//!   Docker runtime with a per-test `[sandgate] instance`).
//! - [`http`]: [`Http`], a general client for traffic through the proxy, and
//!   streaming bodies.
//! - [`raw`]: raw-TCP HTTP/1.1 clients and scripted upstreams, for framing tests.
//! - [`upstream`]: host-side servers that stand in for ports of fake-runtime
//!   sandboxes (HTTP, WebSocket echo).

pub mod client;
pub mod edge;
pub mod http;
pub mod poll;
pub mod ports;
pub mod process;
pub mod prom;
pub mod raw;
pub mod routed;
pub mod sandboxes;
pub mod upstream;

pub use client::{Api, Response};
pub use edge::{DockerInstance, EdgeStack, ProxyOptions, ProxyProcess, StackOptions};
pub use http::{Http, Reply};
pub use poll::{bounded, poll_until};
pub use process::{ControlOptions, ControlProcess, RuntimeKind, control_binary};
pub use routed::RoutedSandbox;
pub use sandboxes::{Listing, create_body, engine_ids};
