//! Serialising the fast path's heads: the request as it goes to the sandbox
//! (with the forwarding policy's [`Plan`], as pingora's path applies it),
//! the response as it goes to the client, and the proxy's own answers.

use super::head::{
    RequestHead, ResponseFacts, ResponseHead, connection_options, is_listed, is_response_hop_header,
};
use crate::error::Reject;
use crate::service::POWERED_BY;
use crate::service::headers::Plan;
use crate::service::respond::{BodyFormat, FIXED_HEADERS, render};

/// Writes the upstream request head for `head` into `out` (cleared first):
/// the fields `plan` keeps, in order, then the ones it adds. `target`
/// replaces the request target when the route rewrites it.
pub(super) fn upstream_request(
    out: &mut Vec<u8>,
    head: &RequestHead<'_, '_>,
    target: Option<&str>,
    plan: &Plan<'_, '_>,
) {
    out.clear();
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.unwrap_or(head.target).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in head.headers {
        if plan.keeps(h.name) {
            field(out, h.name.as_bytes(), h.value);
        }
    }
    plan.write_additions(head.fields(), out);
    out.extend_from_slice(b"\r\n");
}

/// Writes the client's response head into `out` (cleared first): the
/// upstream's status and fields, hop-by-hop fields replaced, the ingress
/// marker added, and `Connection: close` when the connection ends after it.
/// With `Transfer-Encoding`, any `Content-Length` is dropped (RFC 9112
/// §6.3: the encoding decides, and no one after this proxy may frame the
/// body by the length).
pub(super) fn client_response(
    out: &mut Vec<u8>,
    head: &ResponseHead<'_, '_>,
    facts: &ResponseFacts,
    close: bool,
) {
    out.clear();
    status_line(out, head.status, head.reason);
    let options = connection_options(head.headers);
    for h in head.headers {
        let stale_length = facts.encoded && h.name.eq_ignore_ascii_case("content-length");
        if !is_response_hop_header(h.name)
            && !stale_length
            && !is_listed(options.as_deref(), h.name)
        {
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use http::HeaderValue;

    use super::*;
    use crate::service::fast::head::{Parse, parse_request, parse_response, storage};
    use crate::service::headers::{Forwarding, check};

    fn rewrite(raw: &str, target: Option<&str>, fwd: &Forwarding<'_>) -> String {
        let mut storage = storage();
        let Parse::Complete(head) = parse_request(raw.as_bytes(), &mut storage) else {
            panic!("complete head expected");
        };
        let mut out = Vec::new();
        let length = check(head.fields()).unwrap();
        let plan = Plan::new(head.fields(), length, fwd);
        upstream_request(&mut out, &head, target, &plan);
        String::from_utf8(out).unwrap()
    }

    fn forwarding(upstream_host: Option<&HeaderValue>) -> Forwarding<'_> {
        Forwarding {
            client_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
            tls: false,
            edge_key_header: "x-edge-key",
            upstream_host,
            authority: None,
            http11: true,
        }
    }

    #[test]
    fn the_upstream_request_loses_credentials_and_gains_forwarding_headers() {
        let raw = "GET /sb/80/app?q=1 HTTP/1.1\r\nHost: edge.example\r\n\
                   OpenSandbox-Ingress-To: sb-80\r\nOPEN-SANDBOX-INGRESS: sb-80\r\n\
                   OpenSandbox-Secure-Access: t0ken\r\nX-Edge-Key: k3y\r\n\
                   Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                   X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n\
                   X-Forwarded-Host: evil\r\nAuthorization: Bearer app\r\n\r\n";
        let out = rewrite(raw, Some("/app?q=1"), &forwarding(None));
        assert_eq!(
            out,
            "GET /app?q=1 HTTP/1.1\r\nHost: edge.example\r\nAuthorization: Bearer app\r\n\
             x-forwarded-for: 1.2.3.4, 10.0.0.7\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: edge.example\r\n\r\n"
        );
        for secret in ["t0ken", "k3y", "sb-80", "evil"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
    }

    #[test]
    fn fields_named_by_connection_are_hop_by_hop() {
        let raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Hop, TE\r\n\
                   X-Hop: 1\r\nTE: trailers\r\nX-Kept: 2\r\n\r\n";
        let out = rewrite(raw, None, &forwarding(None));
        assert!(!out.contains("X-Hop") && !out.contains("TE:"), "{out}");
        assert!(out.contains("X-Kept: 2\r\n"), "{out}");
    }

    #[test]
    fn the_upstream_host_policy_replaces_host() {
        let host = HeaderValue::from_static("172.17.0.2:8080");
        let out = rewrite(
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            None,
            &forwarding(Some(&host)),
        );
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nx-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: a\r\nhost: 172.17.0.2:8080\r\n\r\n"
        );
    }

    #[test]
    fn the_client_response_gets_one_ingress_marker_and_managed_connection_headers() {
        let raw = "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\
                   Keep-Alive: timeout=5\r\nreverse-proxy-server-powerby: other\r\n\
                   Set-Cookie: a=1\r\n\r\n";
        let mut storage = storage();
        let Parse::Complete(head) = parse_response(raw.as_bytes(), &mut storage) else {
            panic!("complete head expected");
        };
        let mut out = Vec::new();
        client_response(&mut out, &head, &head.facts(false).unwrap(), true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nSet-Cookie: a=1\r\n\
             reverse-proxy-server-powerby: OpenSandbox-ingress\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_response_s_connection_cannot_remove_its_framing() {
        let raw = "HTTP/1.1 200 OK\r\nConnection: Content-Length, Transfer-Encoding, X-Hop\r\n\
                   X-Hop: 1\r\nContent-Length: 2\r\n\r\nok";
        let mut storage = storage();
        let Parse::Complete(head) = parse_response(raw.as_bytes(), &mut storage) else {
            panic!("complete head expected");
        };
        let mut out = Vec::new();
        client_response(&mut out, &head, &head.facts(false).unwrap(), false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\
             reverse-proxy-server-powerby: OpenSandbox-ingress\r\n\r\n"
        );
    }

    #[test]
    fn a_length_beside_a_transfer_encoding_is_not_forwarded() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\
                   Connection: X-Hop\r\nX-Hop: 1\r\n\r\n";
        let mut storage = storage();
        let Parse::Complete(head) = parse_response(raw.as_bytes(), &mut storage) else {
            panic!("complete head expected");
        };
        let mut out = Vec::new();
        client_response(&mut out, &head, &head.facts(false).unwrap(), false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
             reverse-proxy-server-powerby: OpenSandbox-ingress\r\n\r\n"
        );
    }

    #[test]
    fn answers_match_the_pipeline_s() {
        let reject = Reject::from_proxy_error(
            &pingora::Error::new(pingora::ErrorType::ConnectRefused).into_up(),
            Some(("sb", 8080)),
        )
        .unwrap();
        let mut out = Vec::new();
        let body_len = super::reject(&mut out, &reject, BodyFormat::Json, false);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body.len(), body_len);
        assert!(head.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{head}");
        assert!(head.contains("content-type: application/json\r\n"));
        assert!(head.contains(&format!("content-length: {body_len}\r\n")));
        assert!(head.contains("cache-control: no-store\r\n"));
        assert!(head.ends_with("connection: close"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], "PROXY::PORT_NOT_LISTENING");
        let mut head_only = Vec::new();
        assert_eq!(
            super::reject(&mut head_only, &reject, BodyFormat::Json, true),
            0
        );
        assert!(head_only.ends_with(b"\r\n\r\n"));
    }
}
