//! Fuzzes the fast path's `parse_request` (head, facts, `is_fast`, `extent`) against an independent RFC 9112 head parser and body-length rules (`sandgate_fuzz::reference::{head, framing, chunked}`).
//!
//! Invariants checked:
//! - a head the fast path parses is one the reference grammar parses,
//!   with the same method, target (and path/query split), version, fields
//!   (names and OWS-trimmed values, in order), `Host` and length; a head
//!   the grammar accepts with at most `MAX_HEADERS` fields is parsed, and
//!   one with more is refused (handed to pingora);
//! - partial and invalid agree, except that the fast parser may refuse a
//!   head that is still arriving once it holds more than `MAX_HEADERS`
//!   lines;
//! - a request the fast path forwards itself (`is_fast`) has no
//!   `Transfer-Encoding`, and exactly the body length RFC 9112 §6 gives
//!   (no body, or the one valid `Content-Length`); the facts flag what
//!   the rules refuse (`bad_length` for an invalid `Content-Length`);
//! - the extent of a request handed to pingora (the bytes it is given,
//!   the rest staying with the fast path as the next request) is the
//!   RFC's message length: head plus `Content-Length`, or head plus the
//!   chunked body as the reference decoder ends it; and there is none
//!   when the framing is refused or the connection must close after the
//!   request (`Transfer-Encoding` with `Content-Length`, or in HTTP/1.0).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandgate_fuzz::fast::{self, MAX_HEADERS, Parsed, Request};
use sandgate_fuzz::reference::chunked::{Outcome, decode};
use sandgate_fuzz::reference::framing::{RequestBody, request_body};
use sandgate_fuzz::reference::head::{self, Field, Head, Parse};

fuzz_target!(|data: &[u8]| {
    let parsed = fast::parse_request(data);
    let reference = head::parse_request(data);
    match (&parsed, &reference) {
        (
            Parsed::Complete(req),
            Parse::Complete(Head::Request {
                method,
                target,
                minor,
                fields,
                len,
            }),
        ) => {
            same_head(req, method, target, *minor, fields, *len);
            check_framing(req, fields, data);
        }
        (Parsed::Invalid, Parse::Complete(Head::Request { fields, .. })) => {
            assert!(
                fields.len() > MAX_HEADERS,
                "a valid head refused: {reference:?}"
            );
        }
        (Parsed::Partial, Parse::Partial) | (Parsed::Invalid, Parse::Invalid) => {}
        (Parsed::Invalid, Parse::Partial) => {
            let lines = data.iter().filter(|b| **b == b'\n').count();
            assert!(lines > MAX_HEADERS, "a partial head refused");
        }
        _ => panic!("fast path {parsed:?}, reference {reference:?}"),
    }
});

fn same_head(req: &Request, method: &[u8], target: &[u8], minor: u8, fields: &[Field], len: usize) {
    assert_eq!(req.method.as_bytes(), method);
    assert_eq!(req.target.as_bytes(), target);
    assert_eq!(req.minor, minor);
    assert_eq!(req.len, len);
    let headers: Vec<Field> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.clone()))
        .collect();
    assert_eq!(headers, fields);
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.target.as_str(), None),
    };
    assert_eq!((req.path.as_str(), req.query.as_deref()), (path, query));
    let host = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"host"))
        .map(|(_, v)| v.clone());
    assert_eq!(req.host, host);
}

/// Whether a `Content-Length` value has more than 19 characters.
fn long_length(fields: &[Field]) -> bool {
    fields
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(b"content-length") && v.len() > 19)
}

fn check_framing(req: &Request, fields: &[Field], data: &[u8]) {
    let rule = request_body(req.minor, fields);
    let facts = &req.facts;
    let te = fields
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(b"transfer-encoding"));
    assert_eq!(
        facts.transfer_encoding, te,
        "Transfer-Encoding seen: {rule:?}"
    );
    if !te {
        match rule {
            // (A length of over 19 digits, leading zeros and all, is
            // refused: handed to pingora.)
            RequestBody::Length { n, listed: false } if !long_length(fields) => {
                assert!(
                    !facts.bad_length && facts.content_length == n,
                    "{facts:?} for {rule:?}"
                );
            }
            RequestBody::Refuse => assert!(facts.bad_length, "an invalid Content-Length unseen"),
            _ => {}
        }
    }
    if req.is_fast {
        let n = match rule {
            RequestBody::Empty => 0,
            RequestBody::Length { n, .. } => n,
            _ => panic!("the fast path forwards a request framed {rule:?}"),
        };
        assert_eq!(
            facts.content_length, n,
            "the fast path forwards a body of the wrong length"
        );
    }
    if let Some(extent) = req.extent {
        let body = &data[req.len..];
        let expected = match rule {
            RequestBody::Empty => Some(req.len),
            RequestBody::Length { n, .. } => usize::try_from(n).ok().map(|n| req.len + n),
            RequestBody::Chunked { close_after: false } => match decode(body).outcome {
                Outcome::End(n) => Some(req.len + n),
                _ => None,
            },
            _ => None,
        };
        assert_eq!(
            Some(extent),
            expected,
            "extent of a request framed {rule:?} (nothing may follow a refused or closing one)"
        );
        assert!(extent <= data.len());
    }
}
