//! Tests of route discovery: each mode, their order, and path rewriting.

use std::time::Duration;

use pingora::http::RequestHeader;
use sandgate_shared::signing;

use super::*;
use crate::config::HostPolicy;

fn routing(modes: &[RouteMode]) -> RoutingConfig {
    RoutingConfig {
        modes: modes.to_vec(),
        wildcard_domains: vec!["sandbox.localhost".into(), "sb.example.com".into()],
        pending_wait: Duration::from_secs(30),
        unknown_wait: Duration::from_millis(1000),
        host_policy: HostPolicy::Preserve,
    }
}

fn all() -> RoutingConfig {
    routing(&RouteMode::ALL)
}

fn request(target: &str, headers: &[(&str, &str)]) -> RequestHeader {
    let mut req = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
    for (name, value) in headers {
        req.append_header(name.to_string(), *value).unwrap();
    }
    req
}

/// (mode, id, port, signed?, forwarded path for an open sandbox)
fn found(
    req: &RequestHeader,
    routing: &RoutingConfig,
) -> Result<(RouteMode, String, u16, bool, Option<String>), &'static str> {
    let found = find(req, routing).map_err(|r| r.code)?;
    let forwarded = found.forwarded_path(false).map(str::to_owned);
    Ok((
        found.mode,
        found.key.sandbox_id.to_owned(),
        found.key.port,
        found.key.signed.is_some(),
        forwarded,
    ))
}

#[test]
fn header_mode_takes_precedence_and_keeps_the_path() {
    let req = request(
        "/sb-1/80/x",
        &[
            ("OpenSandbox-Ingress-To", "my-sb-8080"),
            ("Host", "a-1.sandbox.localhost"),
        ],
    );
    assert_eq!(
        found(&req, &all()),
        Ok((RouteMode::Header, "my-sb".into(), 8080, false, None))
    );
    let legacy = request("/", &[("OPEN-SANDBOX-INGRESS", "sb-3000")]);
    assert_eq!(found(&legacy, &all()).unwrap().1, "sb");
    let both = request(
        "/",
        &[
            ("OPEN-SANDBOX-INGRESS", "old-1"),
            ("OpenSandbox-Ingress-To", "new-2"),
        ],
    );
    assert_eq!(found(&both, &all()).unwrap().1, "new");
    let bad = request("/", &[("OpenSandbox-Ingress-To", "sb-08080")]);
    assert_eq!(found(&bad, &all()), Err("PROXY::INVALID_ROUTE"));
    let disabled = routing(&[RouteMode::Uri]);
    assert_eq!(
        found(&req, &disabled).unwrap().0,
        RouteMode::Uri,
        "headers are ignored when the mode is off"
    );
}

#[test]
fn server_proxy_mode_strips_its_prefix() {
    let req = request("/v1/sandboxes/sb-1/proxy/8080/api/x?q=1", &[]);
    assert_eq!(
        found(&req, &all()),
        Ok((
            RouteMode::ServerProxy,
            "sb-1".into(),
            8080,
            false,
            Some("/api/x".into())
        ))
    );
    let bare = request("/sandboxes/sb-1/proxy/8080", &[]);
    assert_eq!(found(&bare, &all()).unwrap().4.as_deref(), Some("/"));
    let bad_port = request("/sandboxes/sb-1/proxy/0/x", &[]);
    assert_eq!(found(&bad_port, &all()), Err("PROXY::INVALID_ROUTE"));
}

#[test]
fn wildcard_mode_reads_the_host() {
    let req = request(
        "/path?x=1",
        &[("Host", "sb-1-8080.sandbox.localhost:28888")],
    );
    assert_eq!(
        found(&req, &all()),
        Ok((RouteMode::Wildcard, "sb-1".into(), 8080, false, None))
    );
    let second = request("/", &[("Host", "sb-1-3000.SB.Example.com")]);
    assert_eq!(
        found(&second, &all()).unwrap().2,
        3000,
        "any configured domain, case-insensitive"
    );
    let other = request("/sb-2/81/", &[("Host", "sb-1-8080.other.com")]);
    assert_eq!(
        found(&other, &all()).unwrap().0,
        RouteMode::Uri,
        "other hosts fall through"
    );
    let bad = request("/", &[("Host", "www.sandbox.localhost")]);
    assert_eq!(found(&bad, &all()), Err("PROXY::INVALID_ROUTE"));
    let mut authority = request("/x", &[]);
    authority.set_uri(http::Uri::from_static(
        "http://sb-1-8080.sandbox.localhost/x",
    ));
    assert_eq!(
        found(&authority, &all()).unwrap().0,
        RouteMode::Wildcard,
        "HTTP/2-style authority"
    );
}

#[test]
fn uri_mode_strips_the_prefix_and_keeps_encoding_and_query() {
    let req = request("/my-sandbox/8080/api/a%2Fb/c%20d/?x=1&y=%2F", &[]);
    let (mode, id, port, _, forwarded) = found(&req, &all()).unwrap();
    assert_eq!(
        (mode, id.as_str(), port),
        (RouteMode::Uri, "my-sandbox", 8080)
    );
    let forwarded = forwarded.unwrap();
    assert_eq!(forwarded, "/api/a%2Fb/c%20d/");
    let target = rewritten_target(&req, &forwarded);
    assert_eq!(target, "/api/a%2Fb/c%20d/?x=1&y=%2F");
    for (path, expect) in [
        ("/sb/8080", "/"),
        ("/sb/8080/", "/"),
        ("/sb/8080/x/", "/x/"),
    ] {
        assert_eq!(
            found(&request(path, &[]), &all()).unwrap().4.as_deref(),
            Some(expect),
            "{path}"
        );
    }
    assert_eq!(rewritten_target(&request("/sb/1/x", &[]), "/x"), "/x");
    assert_eq!(
        found(&request("/sb/08080/x", &[]), &all()),
        Err("PROXY::INVALID_ROUTE")
    );
}

#[test]
fn signed_uri_routes_strip_the_signature_only_for_secured_sandboxes() {
    let (b36, sig) = signing::mint(b"k", 'a', "sb", 9090, 4_000_000_000);
    let path = format!("/sb/9090/{b36}/{sig}/extra/path");
    let req = request(&path, &[]);
    let found = find(&req, &all()).unwrap();
    assert!(found.key.signed.is_some());
    assert_eq!(found.forwarded_path(true), Some("/extra/path"));
    let legacy = format!("/{b36}/{sig}/extra/path");
    assert_eq!(
        found.forwarded_path(false),
        Some(legacy.as_str()),
        "open sandboxes keep exp/sig in the path"
    );
}

#[test]
fn nothing_routable_is_a_400_with_a_hint() {
    let reject = find(&request("/", &[("Host", "127.0.0.1:28888")]), &all()).unwrap_err();
    assert_eq!((reject.status, reject.code), (400, "PROXY::NO_ROUTE"));
    assert!(
        reject.message.contains("OpenSandbox-Ingress-To"),
        "{}",
        reject.message
    );
    assert!(
        reject
            .message
            .contains("<sandbox-id>-<port>.sandbox.localhost"),
        "{}",
        reject.message
    );
    let only_header = routing(&[RouteMode::Header]);
    let reject = find(&request("/sb/80/", &[]), &only_header).unwrap_err();
    assert_eq!(reject.code, "PROXY::NO_ROUTE");
    assert!(
        !reject.message.contains("/<sandbox-id>/<port>/"),
        "{}",
        reject.message
    );
    let favicon = find(&request("/favicon.ico", &[]), &all()).unwrap_err();
    assert_eq!(favicon.code, "PROXY::NO_ROUTE");
}

#[test]
fn dot_dot_paths_are_not_server_proxy_paths() {
    let req = request("/sandboxes/sb/proxy/80/../../x", &[]);
    assert_ne!(
        find(&req, &all()).map(|f| f.mode),
        Ok(RouteMode::ServerProxy)
    );
}
