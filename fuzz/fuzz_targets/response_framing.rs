//! Fuzzes the fast path's `parse_response` and `ResponseHead::facts` against an independent RFC 9112 head parser and the §6.3 body-length and §9.3 persistence rules (`sandgate_fuzz::reference::{head, framing}`).
//!
//! Invariants checked:
//! - a response head the fast path parses is one the reference grammar
//!   parses, with the same version, status, reason, fields and length,
//!   and the other way round (up to `MAX_HEADERS` fields);
//! - the framing is the RFC's: no body for `HEAD`, 1xx, 204 and 304;
//!   `chunked` when it is the final transfer coding; until close for any
//!   other coding and when there is no length; exactly `Content-Length`
//!   otherwise; and an invalid `Content-Length` (not digits, differing
//!   values) is refused (`None`, answered 502), never framed. A list of
//!   one value (`5, 5`, or the field twice) may be refused too; and the
//!   fast path may refuse such a field even where the RFC ignores it;
//! - one reading stricter than the RFC's is allowed: `chunked` counts as
//!   the final coding only when it ends the last `Transfer-Encoding`
//!   field (as hyper and pingora read it), so `chunked,` or a later empty
//!   field frames the body until close, where RFC 9110 §5.6.1 would drop
//!   the empty element. Clients differ on such a field; until close (and
//!   `Connection: close`) is the answer every one of them frames alike;
//! - `encoded` says whether `Transfer-Encoding` is present;
//! - the upstream connection is only reused when the RFC lets it persist:
//!   not after `Connection: close`, HTTP/1.0 without `keep-alive`, a body
//!   that ends at close, or `Transfer-Encoding` with `Content-Length` or in
//!   HTTP/1.0.
//!
//! Input layout: bit 0 of the first byte says whether the request was
//! `HEAD`; the rest is the response head.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandgate_fuzz::fast::{self, Framing, MAX_HEADERS, Parsed, Response};
use sandgate_fuzz::reference::framing::{ResponseBody, response_rules};
use sandgate_fuzz::reference::head::{self, Field, Head, Parse};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else {
        return;
    };
    let head_request = flags & 1 == 1;
    let parsed = fast::parse_response(raw, head_request);
    let reference = head::parse_response(raw);
    match (&parsed, &reference) {
        (
            Parsed::Complete(res),
            Parse::Complete(Head::Response {
                minor,
                status,
                reason,
                fields,
                len,
            }),
        ) => {
            assert_eq!((res.minor, res.status, res.len), (*minor, *status, *len));
            assert_eq!(res.reason.as_bytes(), reason.as_slice());
            assert_eq!(&fields_of(res), fields);
            check_facts(res, fields, head_request);
        }
        (Parsed::Invalid, Parse::Complete(Head::Response { fields, .. })) => {
            assert!(
                fields.len() > MAX_HEADERS,
                "a valid head refused: {reference:?}"
            );
        }
        (Parsed::Partial, Parse::Partial) | (Parsed::Invalid, Parse::Invalid) => {}
        (Parsed::Invalid, Parse::Partial) => {
            let lines = raw.iter().filter(|b| **b == b'\n').count();
            assert!(lines > MAX_HEADERS, "a partial head refused");
        }
        _ => panic!("fast path {parsed:?}, reference {reference:?}"),
    }
});

fn fields_of(res: &Response) -> Vec<Field> {
    res.headers
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.clone()))
        .collect()
}

/// Whether the `Content-Length` fields are one plain value (or absent):
/// anything else the fast path may refuse wherever it appears.
fn plain_length(fields: &[Field]) -> bool {
    let lengths: Vec<&[u8]> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"content-length"))
        .map(|(_, v)| v.as_slice())
        .collect();
    match lengths.as_slice() {
        [] => true,
        [one] => !one.is_empty() && one.iter().all(u8::is_ascii_digit) && one.len() <= 19,
        _ => false,
    }
}

/// Whether the last `Transfer-Encoding` field's last element is `chunked`.
fn last_field_ends_chunked(fields: &[Field]) -> bool {
    fields
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"transfer-encoding"))
        .and_then(|(_, v)| v.rsplit(|b| *b == b',').next())
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

fn check_facts(res: &Response, fields: &[Field], head_request: bool) {
    let rules = response_rules(res.minor, res.status, fields, head_request);
    let Some(facts) = res.facts else {
        assert!(
            !plain_length(fields) || rules.body == ResponseBody::Refuse,
            "a response refused that the RFC frames as {rules:?}"
        );
        return;
    };
    assert_eq!(facts.encoded, rules.encoded);
    let same = match (rules.body, facts.framing) {
        (ResponseBody::Empty, Framing::Empty)
        | (ResponseBody::Chunked, Framing::Chunked)
        | (ResponseBody::UntilClose, Framing::UntilClose) => true,
        (ResponseBody::Length { n, .. }, Framing::Length(m)) => n == m,
        (ResponseBody::Chunked, Framing::UntilClose) => !last_field_ends_chunked(fields),
        _ => false,
    };
    assert!(
        same,
        "framed {:?}, RFC 9112 says {:?}",
        facts.framing, rules.body
    );
    assert!(
        !facts.reusable || rules.may_persist,
        "the upstream connection is reused after {rules:?}"
    );
}
