//! A reference parser for HTTP/1.1 request and response heads (RFC 9112
//! §2–§5), written from the grammar, byte by byte: what the fast path's
//! httparse-based parser must agree with.
//!
//! Where RFC 9112 lets a recipient choose, the choice is httparse's
//! (default configuration), and each is named here:
//! - a bare LF ends a line like CRLF does (§2.2 "MAY recognize a single LF");
//! - empty lines before a request-line are skipped (§2.2 "SHOULD ignore at
//!   least one empty line"), and before a status-line too;
//! - the request-target may hold obs-text bytes (0x80–0xFF; the RFC's
//!   request-target is ASCII), but must then be UTF-8;
//! - a response's reason phrase with obs-text reads as empty;
//! - only `HTTP/1.0` and `HTTP/1.1`; no obs-fold (§5.2 "MUST reject" in a
//!   request; in a response httparse refuses it too); no whitespace
//!   between a field name and its colon (§5.1 "MUST reject").

/// One header field: name and value (OWS trimmed) as sent.
pub type Field = (Vec<u8>, Vec<u8>);

/// A parsed request or response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    Request {
        method: Vec<u8>,
        target: Vec<u8>,
        minor: u8,
        fields: Vec<Field>,
        len: usize,
    },
    Response {
        minor: u8,
        status: u16,
        reason: Vec<u8>,
        fields: Vec<Field>,
        len: usize,
    },
}

/// The result of parsing what has arrived so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    Complete(Head),
    Partial,
    Invalid,
}

/// Why a parse stopped early.
enum Stop {
    Partial,
    Invalid,
}

type Step<T> = Result<T, Stop>;

/// A cursor over the head's bytes; running out means "partial".
struct Cursor<'b> {
    buf: &'b [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Step<u8> {
        self.buf.get(self.at).copied().ok_or(Stop::Partial)
    }

    fn next(&mut self) -> Step<u8> {
        let b = self.peek()?;
        self.at += 1;
        Ok(b)
    }

    fn expect(&mut self, wanted: u8) -> Step<()> {
        if self.next()? == wanted {
            Ok(())
        } else {
            Err(Stop::Invalid)
        }
    }

    /// A line end (CRLF or a bare LF) whose first byte has been read.
    fn line_end(&mut self, first: u8) -> Step<()> {
        match first {
            b'\r' => self.expect(b'\n'),
            b'\n' => Ok(()),
            _ => Err(Stop::Invalid),
        }
    }

    /// `1*tchar` ended by `delimiter` (consumed).
    fn token(&mut self, delimiter: u8) -> Step<Vec<u8>> {
        let start = self.at;
        loop {
            let b = self.next()?;
            if b == delimiter && self.at - 1 > start {
                return Ok(self.buf[start..self.at - 1].to_vec());
            }
            if !is_tchar(b) {
                return Err(Stop::Invalid);
            }
        }
    }
}

/// `tchar` (RFC 9110 §5.6.2).
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte of a field value or reason phrase: HTAB, SP, VCHAR, obs-text.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// Parses a request head at the start of `buf`.
pub fn parse_request(buf: &[u8]) -> Parse {
    finish(request(&mut Cursor { buf, at: 0 }))
}

/// Parses a response head at the start of `buf`.
pub fn parse_response(buf: &[u8]) -> Parse {
    finish(response(&mut Cursor { buf, at: 0 }))
}

fn finish(step: Step<Head>) -> Parse {
    match step {
        Ok(head) => Parse::Complete(head),
        Err(Stop::Partial) => Parse::Partial,
        Err(Stop::Invalid) => Parse::Invalid,
    }
}

/// Empty lines before the start-line (see the module docs).
fn skip_empty_lines(c: &mut Cursor<'_>) -> Step<()> {
    loop {
        match c.peek()? {
            b'\r' => {
                c.at += 1;
                c.expect(b'\n')?;
            }
            b'\n' => c.at += 1,
            _ => return Ok(()),
        }
    }
}

fn request(c: &mut Cursor<'_>) -> Step<Head> {
    skip_empty_lines(c)?;
    let method = c.token(b' ')?;
    let target = target(c)?;
    let minor = version(c)?;
    let end = c.next()?;
    c.line_end(end)?;
    let fields = fields(c)?;
    Ok(Head::Request {
        method,
        target,
        minor,
        fields,
        len: c.at,
    })
}

/// `request-target SP`: visible bytes (and obs-text, see the module docs).
fn target(c: &mut Cursor<'_>) -> Step<Vec<u8>> {
    let start = c.at;
    loop {
        let b = c.next()?;
        if b == b' ' && c.at - 1 > start {
            let target = &c.buf[start..c.at - 1];
            if std::str::from_utf8(target).is_err() {
                return Err(Stop::Invalid);
            }
            return Ok(target.to_vec());
        }
        if !(b'!'..=b'~').contains(&b) && b < 0x80 {
            return Err(Stop::Invalid);
        }
    }
}

/// `HTTP/1.0` or `HTTP/1.1`: the minor version.
fn version(c: &mut Cursor<'_>) -> Step<u8> {
    for &b in b"HTTP/1." {
        c.expect(b)?;
    }
    match c.next()? {
        b'0' => Ok(0),
        b'1' => Ok(1),
        _ => Err(Stop::Invalid),
    }
}

fn response(c: &mut Cursor<'_>) -> Step<Head> {
    skip_empty_lines(c)?;
    let minor = version(c)?;
    c.expect(b' ')?;
    let mut status = 0u16;
    for _ in 0..3 {
        let b = c.next()?;
        if !b.is_ascii_digit() {
            return Err(Stop::Invalid);
        }
        status = status * 10 + u16::from(b - b'0');
    }
    // SP reason-phrase, or (httparse) no reason at all.
    let mut reason = Vec::new();
    let b = c.next()?;
    if b == b' ' {
        loop {
            let b = c.next()?;
            if b == b'\r' || b == b'\n' {
                c.line_end(b)?;
                break;
            }
            if !is_value_byte(b) {
                return Err(Stop::Invalid);
            }
            reason.push(b);
        }
    } else {
        c.line_end(b)?;
    }
    if reason.iter().any(|b| *b >= 0x80) {
        reason.clear();
    }
    let fields = fields(c)?;
    Ok(Head::Response {
        minor,
        status,
        reason,
        fields,
        len: c.at,
    })
}

/// `*( field-line CRLF ) CRLF`.
fn fields(c: &mut Cursor<'_>) -> Step<Vec<Field>> {
    let mut fields = Vec::new();
    loop {
        let b = c.peek()?;
        if b == b'\r' || b == b'\n' {
            c.at += 1;
            c.line_end(b)?;
            return Ok(fields);
        }
        let name = c.token(b':')?;
        let mut value = Vec::new();
        loop {
            let b = c.next()?;
            if b == b'\r' || b == b'\n' {
                c.line_end(b)?;
                break;
            }
            if !is_value_byte(b) {
                return Err(Stop::Invalid);
            }
            value.push(b);
        }
        fields.push((name, super::trim_ows(&value).to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        let Parse::Complete(Head::Request { fields, len, .. }) =
            parse_request(b"\r\nGET /a?b HTTP/1.1\r\nHost:  h \r\nX:\r\n\r\nbody")
        else {
            panic!("complete expected");
        };
        assert_eq!(len, 38);
        assert_eq!(
            fields,
            [(b"Host".to_vec(), b"h".to_vec()), (b"X".to_vec(), vec![])]
        );
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost"), Parse::Partial);
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHo st: h\r\n"),
            Parse::Invalid
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
            Parse::Invalid
        );
        assert_eq!(parse_request(b"GET  / HTTP/1.1\r\n\r\n"), Parse::Invalid);
        assert!(matches!(
            parse_response(b"HTTP/1.1 204\r\n\r\n"),
            Parse::Complete(Head::Response { status: 204, .. })
        ));
    }
}
