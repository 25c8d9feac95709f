//! Serialising the fast path's heads: the request as it goes to the sandbox
//! (same edits as `service::headers` makes on pingora's path), the response
//! as it goes to the client, and the proxy's own answers.

use std::net::IpAddr;

use super::head::{RequestHead, ResponseHead, is_response_hop_header};
use crate::error::Reject;
use crate::service::POWERED_BY;
use crate::service::headers::{Forwarding, STRIPPED};
use crate::service::respond::{BodyFormat, FIXED_HEADERS, render};

/// Request headers that never reach the sandbox from the client: routing
/// and credentials (`STRIPPED` plus the edge-key header), hop-by-hop
/// connection management, and the forwarding headers this hop sets.
fn is_dropped(name: &str, fwd: &Forwarding<'_>) -> bool {
    STRIPPED
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s.as_str()))
        || name.eq_ignore_ascii_case(fwd.edge_key_header)
        || name.eq_ignore_ascii_case("connection")
        || name.eq_ignore_ascii_case("keep-alive")
        || name.eq_ignore_ascii_case("proxy-connection")
        || name.eq_ignore_ascii_case("x-forwarded-for")
        || name.eq_ignore_ascii_case("x-forwarded-proto")
        || name.eq_ignore_ascii_case("x-forwarded-host")
        || (fwd.upstream_host.is_some() && name.eq_ignore_ascii_case("host"))
}

/// Writes the upstream request head for `head` into `out` (cleared first).
/// `target` replaces the request target when the route rewrites it.
pub(super) fn upstream_request(
    out: &mut Vec<u8>,
    head: &RequestHead<'_, '_>,
    target: Option<&str>,
    fwd: &Forwarding<'_>,
) {
    out.clear();
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.unwrap_or(head.target).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut prior_for: Option<&[u8]> = None;
    let mut host: Option<&[u8]> = None;
    for h in head.headers {
        if h.name.eq_ignore_ascii_case("x-forwarded-for") {
            prior_for.get_or_insert(h.value);
        } else if h.name.eq_ignore_ascii_case("host") {
            host.get_or_insert(h.value);
        }
        if !is_dropped(h.name, fwd) {
            field(out, h.name.as_bytes(), h.value);
        }
    }
    if let Some(ip) = fwd.client_ip {
        forwarded_for(out, prior_for, ip);
    }
    let proto: &[u8] = if fwd.tls { b"https" } else { b"http" };
    field(out, b"x-forwarded-proto", proto);
    if let Some(host) = host {
        field(out, b"x-forwarded-host", host);
    }
    if let Some(upstream) = fwd.upstream_host {
        field(out, b"host", upstream.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `X-Forwarded-For`: the client's chain (if any) plus the client's address.
fn forwarded_for(out: &mut Vec<u8>, prior: Option<&[u8]>, ip: IpAddr) {
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prior) = prior.map(<[u8]>::trim_ascii).filter(|p| !p.is_empty()) {
        out.extend_from_slice(prior);
        out.extend_from_slice(b", ");
    }
    match ip {
        IpAddr::V4(v4) => {
            let mut buf = [0u8; 15];
            let len = crate::fastfmt::ipv4(v4, &mut buf);
            out.extend_from_slice(&buf[..len]);
        }
        IpAddr::V6(v6) => out.extend_from_slice(v6.to_string().as_bytes()),
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the client's response head into `out` (cleared first): the
/// upstream's status and fields, hop-by-hop fields replaced, the ingress
/// marker added, and `Connection: close` when the connection ends after it.
pub(super) fn client_response(out: &mut Vec<u8>, head: &ResponseHead<'_, '_>, close: bool) {
    out.clear();
    status_line(out, head.status, head.reason);
    for h in head.headers {
        if !is_response_hop_header(h.name) {
            field(out, h.name.as_bytes(), h.value);
        }
    }
    field(out, POWERED_BY.0.as_bytes(), POWERED_BY.1.as_bytes());
    if close {
        field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

/// An informational (1xx) response head as received, for the client.
pub(super) fn informational(out: &mut Vec<u8>, head: &ResponseHead<'_, '_>) {
    out.clear();
    status_line(out, head.status, head.reason);
    for h in head.headers {
        field(out, h.name.as_bytes(), h.value);
    }
    out.extend_from_slice(b"\r\n");
}

/// The proxy's own answer, as `respond::write` gives it on pingora's path,
/// closing the connection. Returns the length of the body written.
pub(super) fn reject(
    out: &mut Vec<u8>,
    reject: &Reject,
    format: BodyFormat,
    head_only: bool,
) -> usize {
    let (body, content_type) = render(reject, format);
    out.clear();
    let reason = http::StatusCode::from_u16(reject.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    status_line(out, reject.status, reason);
    field(out, b"content-type", content_type.as_bytes());
    field(out, b"content-length", body.len().to_string().as_bytes());
    for (name, value) in FIXED_HEADERS {
        field(out, name.as_bytes(), value.as_bytes());
    }
    if let Some(seconds) = reject.retry_after {
        field(out, b"retry-after", seconds.to_string().as_bytes());
    }
    field(out, b"connection", b"close");
    out.extend_from_slice(b"\r\n");
    if head_only {
        return 0;
    }
    out.extend_from_slice(&body);
    body.len()
}

fn status_line(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(b"HTTP/1.1 ");
    let mut digits = [b'0'; 3];
    for (i, d) in digits.iter_mut().enumerate() {
        let place = 10u16.pow(2 - i as u32);
        *d = b'0' + ((status / place) % 10) as u8;
    }
    out.extend_from_slice(&digits);
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
