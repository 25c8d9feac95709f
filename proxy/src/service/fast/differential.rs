//! Differential tests of the forwarding policy: the same raw request goes
//! through the fast path's head writer and through pingora's path (a
//! `RequestHeader` built as pingora's parser builds it, edited by
//! `headers::apply`, serialised by pingora), and the fields the upstream
//! would receive are compared byte for byte.

use std::net::{IpAddr, Ipv4Addr};

use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use pingora::http::RequestHeader;

use super::head::{Parse, parse_request, storage};
use super::write::upstream_request;
use crate::service::headers::{self, Forwarding, Plan};

/// The header block (fields only) the fast path sends for `raw`.
fn fast(raw: &str, fwd: &Forwarding<'_>) -> String {
    let mut storage = storage();
    let Parse::Complete(head) = parse_request(raw.as_bytes(), &mut storage) else {
        panic!("the fast parser refused {raw:?}");
    };
    let length = headers::check(head.fields()).expect("framing accepted");
    let plan = Plan::new(head.fields(), length, fwd);
    let mut out = Vec::new();
    upstream_request(&mut out, &head, None, &plan);
    let text = String::from_utf8(out).unwrap();
    let (_, fields) = text.split_once("\r\n").unwrap();
    fields.to_owned()
}

/// The header block pingora's path sends for `raw`.
fn pingora_path(raw: &str, fwd: &Forwarding<'_>) -> String {
    let mut storage = storage();
    let Parse::Complete(head) = parse_request(raw.as_bytes(), &mut storage) else {
        panic!("unparsable {raw:?}");
    };
    let mut req = RequestHeader::build(head.method, head.target.as_bytes(), None).unwrap();
    for h in head.headers {
        let value = HeaderValue::from_bytes(h.value).unwrap();
        req.append_header(Bytes::copy_from_slice(h.name.as_bytes()), value)
            .unwrap();
    }
    headers::check(headers::fields(&req.headers)).expect("framing accepted");
    headers::apply(&mut req, fwd).unwrap();
    let mut out = BytesMut::new();
    req.header_to_h1_wire(&mut out);
    out.extend_from_slice(b"\r\n");
    String::from_utf8(out.to_vec()).unwrap()
}

fn forwarding(upstream_host: Option<&HeaderValue>) -> Forwarding<'_> {
    Forwarding {
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
        tls: false,
        edge_key_header: "x-edge-key",
        upstream_host,
        authority: None,
        http11: true,
    }
}

/// Fields grouped by name in order of first appearance (pingora's header
/// map keeps repeated fields together; the fast path keeps wire order).
fn grouped(block: &str) -> Vec<String> {
    let lines: Vec<&str> = block.lines().filter(|l| !l.is_empty()).collect();
    let mut names: Vec<String> = Vec::new();
    for line in &lines {
        let name = line.split(':').next().unwrap().to_ascii_lowercase();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .iter()
        .flat_map(|name| {
            lines
                .iter()
                .filter(move |l| l.split(':').next().unwrap().eq_ignore_ascii_case(name))
                .map(|l| (*l).to_owned())
        })
        .collect()
}

const NASTY: [&str; 8] = [
    // Connection names the framing fields: they stay.
    "POST /a HTTP/1.1\r\nHost: h\r\nConnection: Content-Length, Host, Transfer-Encoding, X-Hop\r\n\
     X-Hop: 1\r\nContent-Length: 5\r\nX-Kept: k\r\n\r\n",
    // Duplicate credentials and routing headers in odd case.
    "GET / HTTP/1.1\r\nHost: h\r\nopen-SANDBOX-api-KEY: one\r\nOPEN-SANDBOX-API-KEY: two\r\n\
     opensandbox-INGRESS-to: sb-1\r\nOpen-Sandbox-Ingress: sb-1\r\n\
     OPENSANDBOX-SECURE-ACCESS: t\r\nX-EDGE-KEY: e\r\nAuthorization: Bearer app\r\n\r\n",
    // A chain of X-Forwarded-For fields, and spoofed proto/host.
    "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.1\r\n\
     X-Forwarded-For: 203.0.113.2, 203.0.113.3\r\nX-Forwarded-Proto: gopher\r\n\
     X-Forwarded-Host: spoofed\r\n\r\n",
    // A list of identical lengths is one length.
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
    // Hop-by-hop fields of every kind.
    "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close, TE\r\nKeep-Alive: 5\r\n\
     Proxy-Connection: x\r\nTE: trailers\r\nTrailer: X-T\r\nProxy-Authorization: p\r\n\
     HTTP2-Settings: s\r\nUpgrade: h2c\r\n\r\n",
    // Connection options spelled oddly.
    "GET / HTTP/1.1\r\nHost: h\r\nConnection: ,, x-a ,X-B,\r\nX-A: 1\r\nx-b: 2\r\nX-C: 3\r\n\r\n",
    // No Host at all.
    "GET / HTTP/1.1\r\nX-Only: 1\r\n\r\n",
    // An empty Host.
    "GET / HTTP/1.1\r\nHost:\r\nX-Only: 1\r\n\r\n",
];

#[test]
fn both_paths_send_the_same_fields_byte_for_byte() {
    let upstream = HeaderValue::from_static("10.0.0.9:8080");
    for fwd in [forwarding(None), forwarding(Some(&upstream))] {
        for raw in NASTY {
            assert_eq!(
                fast(raw, &fwd),
                pingora_path(raw, &fwd),
                "{raw:?} with Host policy {:?}",
                fwd.upstream_host
            );
        }
    }
}

#[test]
fn interleaved_repeats_differ_only_in_pingora_s_grouping() {
    let raw = "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\n\
               OPEN-SANDBOX-API-KEY: k\r\nX-Forwarded-For: 198.51.100.1\r\nX-B: 4\r\n\
               X-Forwarded-For: 198.51.100.2\r\n\r\n";
    let fwd = forwarding(None);
    let (fast, slow) = (fast(raw, &fwd), pingora_path(raw, &fwd));
    assert_eq!(grouped(&fast), grouped(&slow));
    assert!(
        fast.contains("x-forwarded-for: 198.51.100.1, 198.51.100.2, 192.0.2.7\r\n"),
        "{fast}"
    );
}

#[test]
fn framing_fields_survive_connection_and_credentials_never_do() {
    let fwd = forwarding(None);
    let smuggle = fast(NASTY[0], &fwd);
    assert_eq!(
        smuggle,
        "Host: h\r\nX-Kept: k\r\ncontent-length: 5\r\nx-forwarded-for: 192.0.2.7\r\n\
         x-forwarded-proto: http\r\nx-forwarded-host: h\r\n\r\n"
    );
    let creds = fast(NASTY[1], &fwd).to_ascii_lowercase();
    for secret in ["one", "two", "sb-1", ": t\r", ": e\r"] {
        assert!(!creds.contains(secret), "{secret:?} leaked: {creds}");
    }
    assert!(creds.contains("authorization: bearer app\r\n"), "{creds}");
    assert!(fast(NASTY[3], &fwd).contains("content-length: 5\r\n"));
    assert_eq!(fast(NASTY[3], &fwd).matches("content-length").count(), 1);
}

#[test]
fn differing_lengths_and_repeated_hosts_are_refused() {
    for (raw, refused) in [
        (
            "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
            headers::Refused::Length,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            headers::Refused::Length,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n",
            headers::Refused::Length,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            headers::Refused::Host,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            headers::Refused::Host,
        ),
    ] {
        let mut storage = storage();
        let Parse::Complete(head) = parse_request(raw.as_bytes(), &mut storage) else {
            panic!("unparsable {raw:?}");
        };
        assert_eq!(headers::check(head.fields()), Err(refused), "{raw:?}");
    }
}

#[test]
fn an_absent_host_becomes_the_authority() {
    let fwd = Forwarding {
        authority: Some("sb-80.example:8443"),
        ..forwarding(None)
    };
    for raw in [NASTY[6], NASTY[7]] {
        let slow = pingora_path(raw, &fwd);
        assert!(slow.contains("host: sb-80.example:8443\r\n"), "{slow}");
        assert!(
            slow.contains("x-forwarded-host: sb-80.example:8443\r\n"),
            "{slow}"
        );
        assert_eq!(
            slow.to_ascii_lowercase().matches("host:").count(),
            2,
            "{slow}"
        );
    }
}

#[test]
fn only_an_http11_websocket_handshake_is_forwarded_as_an_upgrade() {
    let raw = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n\
               Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n";
    let upgraded = pingora_path(raw, &forwarding(None));
    assert!(
        upgraded.contains("Connection: Upgrade\r\nUpgrade: websocket\r\n"),
        "{upgraded}"
    );
    assert!(upgraded.contains("Sec-WebSocket-Key: k\r\n"), "{upgraded}");
    let http10 = Forwarding {
        http11: false,
        ..forwarding(None)
    };
    let h2c = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    for (raw, fwd) in [(raw, &http10), (h2c, &forwarding(None))] {
        let plain = pingora_path(raw, fwd).to_ascii_lowercase();
        assert!(
            !plain.contains("upgrade") && !plain.contains("connection"),
            "{plain}"
        );
    }
}
