//! Message body length and connection persistence (RFC 9112 §6 and §9.3)
//! from the header fields, written from the RFC's rules: what the fast
//! path's framing decisions must be allowed by.

use super::head::Field;
use super::{list, named, trim_ows};

/// How a request's body is framed (RFC 9112 §6.1, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// Neither `Transfer-Encoding` nor `Content-Length`: no body.
    Empty,
    /// `Content-Length: n`; `listed` when it came as several fields or a
    /// list of the same value (`5, 5`), which a recipient may also reject
    /// (RFC 9110 §8.6).
    Length { n: u64, listed: bool },
    /// `chunked` is the final transfer coding. `close_after`: the message
    /// also has a `Content-Length` (§6.1: the server "MUST close the
    /// connection after responding"), so nothing after it may be served.
    Chunked { close_after: bool },
    /// The length cannot be determined reliably: 400 and close (a
    /// `Transfer-Encoding` whose final coding is not `chunked`, an invalid
    /// `Content-Length`, or `Transfer-Encoding` in HTTP/1.0, §6.1 "faulty").
    Refuse,
}

/// The request body framing of a head with these `fields`.
pub fn request_body(minor: u8, fields: &[Field]) -> RequestBody {
    let te = values(fields, "transfer-encoding");
    let cl = values(fields, "content-length");
    if !te.is_empty() {
        if minor == 0 {
            return RequestBody::Refuse;
        }
        return match list(te).last() {
            Some(last) if last.eq_ignore_ascii_case(b"chunked") => RequestBody::Chunked {
                close_after: !cl.is_empty(),
            },
            _ => RequestBody::Refuse,
        };
    }
    match content_length(&cl) {
        Length::Absent => RequestBody::Empty,
        Length::Valid { n, listed } => RequestBody::Length { n, listed },
        Length::Invalid => RequestBody::Refuse,
    }
}

/// How a response's body is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body: an answer to `HEAD`, 1xx, 204, 304 (rules 1–2).
    Empty,
    /// `Content-Length` (rule 6); `listed` as for requests: may be refused.
    Length { n: u64, listed: bool },
    /// Final transfer coding `chunked` (rule 4).
    Chunked,
    /// Until the connection closes (rule 4 other codings, rule 8).
    UntilClose,
    /// An invalid `Content-Length` without `Transfer-Encoding` (rule 5:
    /// "unrecoverable error").
    Refuse,
}

/// What the RFC says about a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRules {
    pub body: ResponseBody,
    /// Whether the connection may carry another request afterwards
    /// (§9.3); `false` means it must not.
    pub may_persist: bool,
    /// `Transfer-Encoding` is present.
    pub encoded: bool,
}

/// The rules for a response `status` with these `fields`, as the answer
/// to a `HEAD` request when `head_request`.
pub fn response_rules(
    minor: u8,
    status: u16,
    fields: &[Field],
    head_request: bool,
) -> ResponseRules {
    let te = values(fields, "transfer-encoding");
    let cl = values(fields, "content-length");
    let encoded = !te.is_empty();
    let body = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        ResponseBody::Empty
    } else if encoded {
        match list(te.iter().copied()).last() {
            Some(last) if last.eq_ignore_ascii_case(b"chunked") => ResponseBody::Chunked,
            _ => ResponseBody::UntilClose,
        }
    } else {
        match content_length(&cl) {
            Length::Absent => ResponseBody::UntilClose,
            Length::Valid { n, listed } => ResponseBody::Length { n, listed },
            Length::Invalid => ResponseBody::Refuse,
        }
    };
    let connection = list(values(fields, "connection"));
    let has = |option: &str| {
        connection
            .iter()
            .any(|o| o.eq_ignore_ascii_case(option.as_bytes()))
    };
    let may_persist = !has("close")
        && (minor == 1 || has("keep-alive"))
        && body != ResponseBody::UntilClose
        && body != ResponseBody::Refuse
        // §6.3 rule 3: TE and CL together "ought to be handled as an
        // error"; §6.1: TE in HTTP/1.0 is faulty framing; either way the
        // connection is not trusted again.
        && !(encoded && (!cl.is_empty() || minor == 0));
    ResponseRules {
        body,
        may_persist,
        encoded,
    }
}

fn values<'f>(fields: &'f [Field], name: &str) -> Vec<&'f [u8]> {
    fields
        .iter()
        .filter(|(n, _)| named(n, name))
        .map(|(_, v)| v.as_slice())
        .collect()
}

enum Length {
    Absent,
    Valid { n: u64, listed: bool },
    Invalid,
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), over every field and list
/// element (an empty element is not a length).
fn content_length(values: &[&[u8]]) -> Length {
    let mut elements = values
        .iter()
        .flat_map(|v| v.split(|b| *b == b','))
        .map(trim_ows)
        .peekable();
    if elements.peek().is_none() {
        return Length::Absent;
    }
    let mut seen: Option<u64> = None;
    let mut count = 0;
    for element in elements {
        count += 1;
        if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
            return Length::Invalid;
        }
        let n = element.iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        match (n, seen) {
            (None, _) => return Length::Invalid,
            (Some(n), Some(prior)) if n != prior => return Length::Invalid,
            (Some(n), _) => seen = Some(n),
        }
    }
    seen.map_or(Length::Invalid, |n| Length::Valid {
        n,
        listed: count > 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(raw: &[(&str, &str)]) -> Vec<Field> {
        raw.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn request_rules() {
        let body = |minor, raw: &[(&str, &str)]| request_body(minor, &fields(raw));
        assert_eq!(body(1, &[]), RequestBody::Empty);
        assert_eq!(
            body(1, &[("content-length", "007")]),
            RequestBody::Length {
                n: 7,
                listed: false
            }
        );
        assert_eq!(
            body(1, &[("Content-Length", "5, 5")]),
            RequestBody::Length { n: 5, listed: true }
        );
        assert_eq!(body(1, &[("Content-Length", "5, 6")]), RequestBody::Refuse);
        assert_eq!(body(1, &[("Content-Length", "5,")]), RequestBody::Refuse);
        assert_eq!(
            body(1, &[("Content-Length", "99999999999999999999")]),
            RequestBody::Refuse
        );
        assert_eq!(
            body(
                1,
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "3")]
            ),
            RequestBody::Chunked { close_after: true }
        );
        assert_eq!(
            body(1, &[("Transfer-Encoding", "chunked, identity")]),
            RequestBody::Refuse
        );
        assert_eq!(
            body(1, &[("Transfer-Encoding", "gzip,chunked,")]),
            RequestBody::Chunked { close_after: false }
        );
        assert_eq!(
            body(0, &[("Transfer-Encoding", "chunked")]),
            RequestBody::Refuse
        );
    }

    #[test]
    fn response_rules_follow_rfc_9112() {
        let rules = |minor, status, raw: &[(&str, &str)]| {
            response_rules(minor, status, &fields(raw), false)
        };
        assert_eq!(
            rules(1, 204, &[("content-length", "x")]).body,
            ResponseBody::Empty
        );
        assert_eq!(rules(1, 200, &[]).body, ResponseBody::UntilClose);
        assert!(!rules(1, 200, &[]).may_persist);
        let both = rules(
            1,
            200,
            &[("transfer-encoding", "chunked"), ("content-length", "1")],
        );
        assert_eq!(
            (both.body, both.may_persist),
            (ResponseBody::Chunked, false)
        );
        assert!(!rules(0, 200, &[("content-length", "1")]).may_persist);
        assert!(
            rules(
                0,
                200,
                &[("content-length", "1"), ("connection", "keep-alive")]
            )
            .may_persist
        );
        assert!(
            !rules(
                0,
                200,
                &[
                    ("transfer-encoding", "chunked"),
                    ("connection", "keep-alive")
                ]
            )
            .may_persist
        );
    }
}
