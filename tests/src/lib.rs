//! End-to-end harness for Sandgate: runs the real `sandgate-control` binary.
//!
//! The tests in `tests/tests/` start the binary as a child process with a
//! generated configuration (fake runtime, SQLite store, fake-engine state
//! file, all in a temporary directory), talk to it over HTTP on 127.0.0.1,
//! kill it with SIGKILL and start it again on the same store and port.
//!
//! # The binary must be built first
//! Tests never run `cargo build` themselves. CI (and you) run
//! `cargo build --workspace` (or `cargo build -p sandgate-control`) before
//! `cargo nextest run -p sandgate-tests`. The binary is taken from the
//! `SANDGATE_CONTROL_BIN` environment variable when set, else from
//! `<workspace>/target/debug/sandgate-control`.
//!
//! # Layout
//! - [`process`]: [`ControlProcess`], the child process and its config.
//! - [`client`]: [`Api`], a small keep-alive JSON client.
//! - [`poll`]: [`poll_until`], condition polling with a deadline (no bare sleeps).
//! - [`prom`]: reading single values out of the Prometheus text format.
//! - [`sandboxes`]: typed Lifecycle API calls ([`Listing`], [`engine_ids`]).

pub mod client;
pub mod poll;
pub mod process;
pub mod prom;
pub mod sandboxes;

pub use client::{Api, Response};
pub use poll::poll_until;
pub use process::{ControlOptions, ControlProcess, control_binary};
pub use sandboxes::{Listing, create_body, engine_ids};
