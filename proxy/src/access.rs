//! The access log: one line per request at target `sandgate_proxy::access`.
//!
//! Only routing facts, sizes and timings are logged; never header values,
//! paths (a signed route carries its signature), tokens or keys.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::RouteMode;

/// The facts of one finished request.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    pub sandbox_id: &'a str,
    pub sandbox_port: u16,
    pub upstream: Option<SocketAddr>,
    pub method: &'a http::Method,
    pub status: u16,
    pub duration: Duration,
    pub bytes_sent: usize,
    pub bytes_received: usize,
    pub mode: Option<RouteMode>,
    pub code: Option<&'static str>,
    pub error: Option<&'static str>,
}

/// Writes `line` (cheap when the target is filtered out).
pub(crate) fn log(line: &Line<'_>) {
    tracing::info!(
        sandbox.id = line.sandbox_id,
        sandbox.port = line.sandbox_port,
        upstream.addr = %UpstreamAddr(line.upstream),
        http.method = %line.method,
        http.status = line.status,
        duration_ms = line.duration.as_micros() as f64 / 1000.0,
        bytes.sent = line.bytes_sent,
        bytes.received = line.bytes_received,
        route.mode = line.mode.map_or("-", RouteMode::as_str),
        error.code = line.code.unwrap_or("-"),
        error.kind = line.error.unwrap_or("-"),
        "request"
    );
}

/// Displays the address or `-` (performance: IPv4 formatted by hand).
struct UpstreamAddr(Option<SocketAddr>);

impl fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(addr) => crate::fastfmt::write_socket_addr(f, addr),
            None => f.write_str("-"),
        }
    }
}
