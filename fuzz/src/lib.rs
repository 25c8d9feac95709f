//! Shared code of the fuzz targets: the proxy's HTTP/1.1 framing files
//! compiled from their sources ([`fast`]) and the independent reference
//! implementations the targets compare them with ([`reference`]).
//!
//! The fast path's framing code lives in `proxy/src/service/fast/head.rs`
//! and `chunked.rs`, which need only `httparse`, `http` and `thiserror`.
//! Depending on `sandgate-proxy` would build pingora and its C libraries
//! under the sanitizer for no gain, so [`service`] compiles those two files
//! with `#[path]` inside a copy of the module names they refer to
//! (`crate::service::route::RequestView`, `super::super::POWERED_BY`).
//! A new `use` of another proxy module in those files needs its name added
//! to `src/service.rs` (the fuzz build in `scripts/test.sh` says so).
//! Their inline unit tests run here too (`cargo test --lib` in `fuzz/`).

mod service;

pub mod reference;

pub use service::fast;
