//! Fuzzes every `sandgate_shared::route_key` parser with arbitrary UTF-8 and checks that none panics and that every accepted key is sane and round-trips.
//!
//! Invariants checked on every `Ok` result:
//! - the port is 1..=65535 (never 0);
//! - `sandbox_id` is non-empty and is a slice of the input (it is borrowed,
//!   so it must point inside the input, not merely be equal to part of it);
//! - a signed part has a signature-shaped signature and a canonical base-36
//!   expiry that decodes to `expires`;
//! - the returned rest (the path to forward) starts with `/`;
//! - the input is exactly the re-formatted key (ports are strict, so there
//!   is one spelling per key), and re-formatting `<id>-<port>` (and, when
//!   signed, `<id>-<port>-<expires_b36>-<signature>`) and parsing it with
//!   `parse_token` gives back the same id, port and signed part;
//! - `parse_uri_path` agrees with `parse_uri_path_unsigned` on the id, the
//!   port and the error, and only moves a well-formed signature out of the
//!   forwarded path;
//! - server-proxy paths never contain a `..` segment.
//!
//! Input layout: the whole input is fed to every parser. For `parse_host`
//! it is also split at its first `\n` into `host` and `domain`, so the
//! fuzzer can choose the domain as well as the host.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandgate_shared::route_key::{
    RouteKey, parse_host, parse_server_proxy_path, parse_token, parse_uri_path,
    parse_uri_path_unsigned,
};
use sandgate_shared::signing::{decode_b36, encode_b36, is_signature_shaped};

/// Domains tried with every input (the second checks case-insensitivity).
const DOMAINS: [&str; 2] = ["sandbox.example.com", "SandBox.Example.COM"];

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    check_token(input);
    for domain in DOMAINS {
        check_host(input, domain);
    }
    if let Some((host, domain)) = input.split_once('\n') {
        check_host(host, domain);
    }
    check_uri_paths(input);
    check_server_proxy_path(input);
});

/// Whether `part` is a sub-slice of `whole` (same memory, not just equal text).
fn is_slice_of(part: &str, whole: &str) -> bool {
    let (start, end) = (
        whole.as_ptr() as usize,
        whole.as_ptr() as usize + whole.len(),
    );
    let p = part.as_ptr() as usize;
    start <= p && p + part.len() <= end
}

/// The invariants every parsed key satisfies, whichever parser produced it.
fn check_key(key: &RouteKey<'_>, input: &str) {
    assert_ne!(key.port, 0, "port 0 accepted: {key:?} from {input:?}");
    assert!(
        !key.sandbox_id.is_empty(),
        "empty id: {key:?} from {input:?}"
    );
    assert!(
        is_slice_of(key.sandbox_id, input) && input.contains(key.sandbox_id),
        "id is not part of the input: {key:?} from {input:?}"
    );
    if let Some(signed) = &key.signed {
        assert!(is_signature_shaped(signed.signature), "{key:?}");
        assert!(is_slice_of(signed.signature, input), "{key:?}");
        assert!(is_slice_of(signed.expires_b36, input), "{key:?}");
        assert_eq!(
            decode_b36(signed.expires_b36),
            Ok(signed.expires),
            "{key:?}"
        );
        assert_eq!(encode_b36(signed.expires), signed.expires_b36, "{key:?}");
    }

    // Re-formatting `<id>-<port>` parses back to the same id and port (the
    // last dash-separated part is the port, at most 5 characters, so it can
    // never be mistaken for a 9-character signature).
    let plain = format!("{}-{}", key.sandbox_id, key.port);
    let reparsed = parse_token(&plain);
    assert_eq!(
        reparsed,
        Ok(RouteKey {
            signed: None,
            ..*key
        }),
        "{plain:?} does not parse back to {key:?}"
    );
    if let Some(signed) = &key.signed {
        let token = signed_token(key);
        assert_eq!(
            parse_token(&token).ok(),
            Some(*key),
            "{token:?} ({signed:?}) does not parse back"
        );
    }
}

fn signed_token(key: &RouteKey<'_>) -> String {
    match &key.signed {
        Some(s) => format!(
            "{}-{}-{}-{}",
            key.sandbox_id, key.port, s.expires_b36, s.signature
        ),
        None => format!("{}-{}", key.sandbox_id, key.port),
    }
}

fn check_rest(rest: &str, input: &str) {
    assert!(rest.starts_with('/'), "rest {rest:?} from {input:?}");
    // The rest is either borrowed from the input or the literal "/".
    assert!(
        rest == "/" || is_slice_of(rest, input),
        "rest {rest:?} from {input:?}"
    );
}

fn check_token(input: &str) {
    let Ok(key) = parse_token(input) else {
        return;
    };
    check_key(&key, input);
    // Strict ports mean one spelling per key: the input is the key.
    assert_eq!(signed_token(&key), input, "{key:?}");
}

fn check_host(host: &str, domain: &str) {
    let Ok(key) = parse_host(host, domain) else {
        return;
    };
    check_key(&key, host);
    // host = <token> "." <domain, any ASCII case> [":" <digits>]
    let token = signed_token(&key);
    assert!(!token.contains('.'), "label with a dot: {host:?}");
    let after_token = host
        .strip_prefix(token.as_str())
        .and_then(|r| r.strip_prefix('.'))
        .unwrap_or_else(|| panic!("{host:?} does not start with {token:?}."));
    let (name_domain, port) = after_token
        .split_at_checked(domain.len())
        .unwrap_or_else(|| {
            panic!("{host:?} accepted for {domain:?} but has no room for the domain")
        });
    assert!(
        name_domain.eq_ignore_ascii_case(domain),
        "{host:?} accepted for domain {domain:?}"
    );
    assert!(
        port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())),
        "{host:?} accepted with trailing {port:?}"
    );
    // The same token under the same domain is the same key.
    let rebuilt = format!("{token}.{domain}");
    assert_eq!(parse_host(&rebuilt, domain), Ok(key), "{rebuilt:?}");
}

fn check_uri_paths(input: &str) {
    let unsigned = parse_uri_path_unsigned(input);
    let signed = parse_uri_path(input);
    match (&unsigned, &signed) {
        (Err(a), Err(b)) => assert_eq!(a, b, "{input:?}"),
        (Ok((ukey, urest)), Ok((skey, srest))) => {
            assert!(ukey.signed.is_none(), "{input:?}");
            for (key, rest) in [(ukey, urest), (skey, srest)] {
                check_key(key, input);
                check_rest(rest, input);
                assert!(!key.sandbox_id.contains('/'), "{key:?} from {input:?}");
            }
            assert_eq!(
                (ukey.sandbox_id, ukey.port),
                (skey.sandbox_id, skey.port),
                "{input:?}"
            );
            // /<id>/<port><rest>, where a rest of "/" may stand for nothing.
            let prefix = format!("/{}/{}", ukey.sandbox_id, ukey.port);
            assert!(
                input == format!("{prefix}{urest}") || (*urest == "/" && input == prefix),
                "{input:?} is not {prefix:?} + {urest:?}"
            );
            match &skey.signed {
                None => assert_eq!(urest, srest, "{input:?}"),
                Some(s) => {
                    let moved = format!("/{}/{}", s.expires_b36, s.signature);
                    assert!(
                        *urest == format!("{moved}{srest}") || (*srest == "/" && *urest == moved),
                        "{input:?}: signed rest {srest:?} vs unsigned {urest:?}"
                    );
                }
            }
        }
        _ => panic!(
            "parse_uri_path and its unsigned form disagree on {input:?}: {unsigned:?} vs {signed:?}"
        ),
    }
}

fn check_server_proxy_path(input: &str) {
    let Ok((key, rest)) = parse_server_proxy_path(input) else {
        return;
    };
    check_key(&key, input);
    check_rest(rest, input);
    assert!(key.signed.is_none(), "{input:?}");
    assert!(!key.sandbox_id.contains('/'), "{key:?} from {input:?}");
    assert!(
        !input.split('/').any(|segment| segment == ".."),
        "`..` segment accepted: {input:?}"
    );
    let ok = ["", "/v1"].iter().any(|v1| {
        let prefix = format!("{v1}/sandboxes/{}/proxy/{}", key.sandbox_id, key.port);
        input == format!("{prefix}{rest}") || (rest == "/" && input == prefix)
    });
    assert!(
        ok,
        "{input:?} is not a server-proxy path for {key:?} + {rest:?}"
    );
}
