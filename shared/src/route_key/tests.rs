//! Tests of route-key parsing: the reference examples, strictness, and
//! properties over generated input.

use proptest::prelude::*;

use super::*;
use crate::signing;

fn key(id: &str, port: u16) -> RouteKey<'_> {
    RouteKey {
        sandbox_id: id,
        port,
        signed: None,
    }
}

#[test]
fn tokens_split_from_the_right() {
    assert_eq!(parse_token("sandbox-1234"), Ok(key("sandbox", 1234)));
    assert_eq!(parse_token("alpha-beta-8080"), Ok(key("alpha-beta", 8080)));
    let uuid = "a1b2c3d4-5678-90ab-cdef-1234567890ab-44772";
    assert_eq!(
        parse_token(uuid),
        Ok(key("a1b2c3d4-5678-90ab-cdef-1234567890ab", 44772))
    );
    let signed = parse_token("alpha-beta-8080-1a2b3c-abcdef12k").unwrap();
    assert_eq!((signed.sandbox_id, signed.port), ("alpha-beta", 8080));
    let part = signed.signed.unwrap();
    assert_eq!((part.expires_b36, part.signature), ("1a2b3c", "abcdef12k"));
}

#[test]
fn tokens_are_strict() {
    for bad in [
        "",
        "only",
        "-1234",
        "sb-0080",
        "sb-70000",
        "sb-0",
        "sb-",
        "sb-+80",
        "sb-08080-0-abcdef12k",
    ] {
        assert!(parse_token(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn hosts_need_the_configured_domain() {
    let domain = "sandbox.example.com";
    assert_eq!(
        parse_host("sb-1-8080.sandbox.example.com", domain),
        Ok(key("sb-1", 8080))
    );
    assert_eq!(
        parse_host("sb-1-8080.Sandbox.Example.com:443", domain),
        Ok(key("sb-1", 8080))
    );
    for bad in [
        "sandbox.example.com",
        "a.b-80.sandbox.example.com",
        "sb-80.other.com",
        "sb-80.xsandbox.example.com",
        "[::1]:80",
        "",
    ] {
        assert!(parse_host(bad, domain).is_err(), "{bad:?}");
    }
}

#[test]
fn uri_paths_strip_the_prefix_and_keep_encoding() {
    assert_eq!(
        parse_uri_path("/my-sandbox/8080/api/users"),
        Ok((key("my-sandbox", 8080), "/api/users"))
    );
    assert_eq!(parse_uri_path("/sb/8080"), Ok((key("sb", 8080), "/")));
    assert_eq!(parse_uri_path("/sb/8080/"), Ok((key("sb", 8080), "/")));
    assert_eq!(parse_uri_path("/sb/8080/x/"), Ok((key("sb", 8080), "/x/")));
    assert_eq!(
        parse_uri_path("/sb/8080/a%2Fb"),
        Ok((key("sb", 8080), "/a%2Fb"))
    );
    let (signed, rest) = parse_uri_path("/sb/9090/1a2b3c/01234567a/extra/path").unwrap();
    assert_eq!(
        (signed.signed.map(|s| s.expires), rest),
        (Some(signing::decode_b36("1a2b3c").unwrap()), "/extra/path")
    );
    let (legacy, rest) = parse_uri_path_unsigned("/sb/9090/1a2b3c/01234567a/extra").unwrap();
    assert_eq!((legacy.signed, rest), (None, "/1a2b3c/01234567a/extra"));
    for bad in ["/", "/sb", "//8080", "/sb/08080", "/sb/x/y", "sb/80"] {
        assert!(parse_uri_path(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn server_proxy_paths() {
    assert_eq!(
        parse_server_proxy_path("/sandboxes/id/proxy/8080"),
        Ok((key("id", 8080), "/"))
    );
    assert_eq!(
        parse_server_proxy_path("/v1/sandboxes/id/proxy/443/path"),
        Ok((key("id", 443), "/path"))
    );
    for bad in [
        "/proxy/sandboxes/x",
        "/foo/sandboxes/id/proxy/8080",
        "/sandboxes/s1/proxy/not-a-port/x",
        "/sandboxes/s1/proxy/8080x/",
        "/sandboxes/abc/proxy/8080/../other",
        "/sandboxes/../admin/proxy/8080",
        "/sandboxes/x/proxy/80/%2e%2e/admin",
        "/sandboxes/x/proxy/80/.%2E/admin",
    ] {
        assert!(parse_server_proxy_path(bad).is_err(), "{bad:?}");
    }
}

proptest! {
    #[test]
    fn parsers_never_panic(input in ".{0,80}") {
        let _ = parse_token(&input);
        let _ = parse_host(&input, "sandbox.localhost");
        let _ = parse_uri_path(&input);
        let _ = parse_uri_path_unsigned(&input);
        let _ = parse_server_proxy_path(&input);
    }

    /// Every (id, port) written in every form parses back to itself.
    #[test]
    fn formatted_keys_round_trip(id in "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", port in 1u16..) {
        let token = format!("{id}-{port}");
        prop_assert_eq!(parse_token(&token), Ok(key(&id, port)));
        let host = format!("{id}-{port}.sandbox.localhost:28888");
        prop_assert_eq!(parse_host(&host, "sandbox.localhost"), Ok(key(&id, port)));
        let path = format!("/{id}/{port}/rest?q=1");
        prop_assert_eq!(parse_uri_path_unsigned(&path), Ok((key(&id, port), "/rest?q=1")));
    }

    /// Minted signed tokens parse back and verify.
    #[test]
    fn minted_tokens_parse_and_verify(id in "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", port in 1u16.., expires in any::<u64>()) {
        let (b36, signature) = signing::mint(b"k", 'a', &id, port, expires);
        let token = format!("{id}-{port}-{b36}-{signature}");
        let parsed = parse_token(&token).unwrap();
        prop_assert_eq!((parsed.sandbox_id, parsed.port), (id.as_str(), port));
        let signed = parsed.signed.unwrap();
        prop_assert_eq!(signed.expires, expires);
        let keys = |c: char| (c == 'a').then(|| b"k".to_vec());
        prop_assert_eq!(signing::verify(&keys, &id, port, &signed, 0), Ok(()));
    }
}
