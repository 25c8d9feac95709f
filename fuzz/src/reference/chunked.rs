//! A reference decoder for chunked message bodies (RFC 9112 §7.1), line by
//! line: chunk-size lines through `httparse::parse_chunk_size` plus the
//! rules httparse leaves to its caller (at least one digit, CRLF only).

/// Most hex digits a chunk size may have here (httparse and hyper: 16).
pub const MAX_SIZE_DIGITS: usize = 16;

/// Where a chunked body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// After its first `n` bytes.
    End(usize),
    /// Well-formed so far; more bytes are needed.
    More,
    /// Malformed.
    Invalid,
}

/// The decoded body: its [`Outcome`] and the widest chunk size met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub outcome: Outcome,
    /// Hex digits of the longest chunk-size seen, complete or not (leading
    /// zeros count).
    pub widest_size: usize,
}

/// Decodes the chunked body at the start of `body`.
pub fn decode(body: &[u8]) -> Decoded {
    let mut widest_size = 0;
    let outcome = decode_into(body, &mut widest_size);
    Decoded {
        outcome,
        widest_size,
    }
}

fn decode_into(body: &[u8], widest: &mut usize) -> Outcome {
    let mut at = 0;
    loop {
        let digits = body[at..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        *widest = (*widest).max(digits);
        let (line_len, size) = match size_line(&body[at..]) {
            Line::Complete { len, value } => (len, value),
            Line::More => return Outcome::More,
            Line::Invalid => return Outcome::Invalid,
        };
        at += line_len;
        if size == 0 {
            return trailer_section(body, at);
        }
        // chunk-data: exactly `size` bytes, then CRLF.
        let left = (body.len() - at) as u64;
        if left < size {
            return Outcome::More;
        }
        at += size as usize;
        match crlf(&body[at..]) {
            Line::Complete { len, .. } => at += len,
            Line::More => return Outcome::More,
            Line::Invalid => return Outcome::Invalid,
        }
    }
}

/// The result of reading one line.
enum Line {
    /// A line `len` bytes long (CRLF included) with this value.
    Complete {
        len: usize,
        value: u64,
    },
    More,
    Invalid,
}

/// `chunk-size [ chunk-ext ] CRLF` at the start of `rest`.
fn size_line(rest: &[u8]) -> Line {
    // httparse reads an empty size as 0 (a last chunk); RFC 9112 says
    // chunk-size = 1*HEXDIG.
    match rest.first() {
        None => return Line::More,
        Some(b) if !b.is_ascii_hexdigit() => return Line::Invalid,
        Some(_) => {}
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits > MAX_SIZE_DIGITS {
        return Line::Invalid;
    }
    match rest.iter().position(|b| *b == b'\n') {
        // A bare LF ends nothing: httparse would skip one inside an
        // extension, a CRLF-only parser would not see a line end there.
        Some(lf) if lf == 0 || rest[lf - 1] != b'\r' => Line::Invalid,
        Some(lf) => match httparse::parse_chunk_size(&rest[..=lf]) {
            Ok(httparse::Status::Complete((len, value))) if len == lf + 1 => {
                Line::Complete { len, value }
            }
            _ => Line::Invalid,
        },
        None => match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Partial) => Line::More,
            _ => Line::Invalid,
        },
    }
}

/// CRLF at the start of `rest`.
fn crlf(rest: &[u8]) -> Line {
    match rest {
        [] | [b'\r'] => Line::More,
        [b'\r', b'\n', ..] => Line::Complete { len: 2, value: 0 },
        _ => Line::Invalid,
    }
}

/// `*( field-line CRLF ) CRLF` from `at`: the body ends after the first
/// empty line. Trailer fields are forwarded, not interpreted, so only
/// their line ends matter: no bare CR or LF.
fn trailer_section(body: &[u8], mut at: usize) -> Outcome {
    loop {
        let rest = &body[at..];
        let Some(end) = rest.iter().position(|b| *b == b'\r' || *b == b'\n') else {
            return Outcome::More;
        };
        if rest[end] == b'\n' {
            return Outcome::Invalid;
        }
        match rest.get(end + 1) {
            None => return Outcome::More,
            Some(b'\n') => {}
            Some(_) => return Outcome::Invalid,
        }
        at += end + 2;
        if end == 0 {
            return Outcome::End(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_rfc_shapes() {
        let end = |b: &[u8]| decode(b).outcome;
        assert_eq!(end(b"5\r\nhello\r\n0\r\n\r\nX"), Outcome::End(15));
        assert_eq!(
            end(b"5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n"),
            Outcome::End(25)
        );
        assert_eq!(end(b"5 ;a\r\nhello\r\n0\r\n\r\n"), Outcome::End(18));
        assert_eq!(end(b"5\r\nhel"), Outcome::More);
        assert_eq!(end(b"\r\n\r\n"), Outcome::Invalid);
        assert_eq!(end(b"5;a\nb\r\nhello\r\n0\r\n\r\n"), Outcome::Invalid);
        assert_eq!(end(b"5\nhello\r\n0\r\n\r\n"), Outcome::Invalid);
        assert_eq!(end(b"5 x\r\nhello\r\n0\r\n\r\n"), Outcome::Invalid);
        assert_eq!(end(b"0\r\nT: 1\n\r\n"), Outcome::Invalid);
        assert_eq!(end(b"00000000000000001\r\n"), Outcome::Invalid);
        assert_eq!(decode(b"0000000000000000\r\n\r\n").widest_size, 16);
    }
}
