//! Finding the end of a chunked body whose bytes are forwarded verbatim:
//! a byte-level scanner over chunk sizes, data, and trailers (RFC 9112 §7.1).
//! Data is skipped in whole slices; only sizes and line ends are inspected.

/// A malformed chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub(super) struct Malformed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size (`digits` so far).
    Size { digits: u8 },
    /// Whitespace after a chunk size, before `;` or the line end.
    SizeWs,
    /// A chunk extension, up to the line end.
    Extension,
    /// The `\n` after a size line's `\r`.
    SizeLf,
    /// This many data bytes remain.
    Data(u64),
    /// The `\r` after chunk data.
    DataCr,
    /// The `\n` after chunk data.
    DataLf,
    /// The start of a trailer line (or the final blank line).
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// The `\n` after a trailer line's `\r`.
    TrailerLf,
    /// The `\n` of the final blank line.
    EndLf,
    /// The body has ended.
    Done,
}

/// Tracks where a chunked body ends across reads.
#[derive(Debug, Clone)]
pub(super) struct ChunkedScanner {
    state: State,
    size: u64,
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        Self {
            state: State::Size { digits: 0 },
            size: 0,
        }
    }
}

impl ChunkedScanner {
    /// Scans `bytes`, the next part of the body. `Ok(Some(n))`: the body
    /// ends after the first `n` bytes; `Ok(None)`: it continues past them.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, Malformed> {
        let mut at = 0;
        while at < bytes.len() {
            if let State::Data(left) = self.state {
                let available = (bytes.len() - at) as u64;
                let step = left.min(available);
                at += usize::try_from(step).map_err(|_| Malformed)?;
                self.state = if step == left {
                    State::DataCr
                } else {
                    State::Data(left - step)
                };
                continue;
            }
            self.step(bytes[at])?;
            at += 1;
            if self.state == State::Done {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// One byte of framing. Line ends must be CRLF: a bare LF is refused,
    /// since the bytes are forwarded as they are and a stricter parser
    /// after this proxy must see the same body end.
    fn step(&mut self, byte: u8) -> Result<(), Malformed> {
        self.state = match (self.state, byte) {
            (State::Size { digits }, _) if byte.is_ascii_hexdigit() => {
                if digits >= 15 {
                    return Err(Malformed);
                }
                let digit = (byte as char).to_digit(16).ok_or(Malformed)?;
                self.size = self.size * 16 + u64::from(digit);
                State::Size { digits: digits + 1 }
            }
            (State::Size { digits: 0 }, _) => return Err(Malformed),
            // Only whitespace and then `;` or the line end may follow the
            // digits (as httparse and hyper require): `5 5` is not 5.
            (State::Size { .. } | State::SizeWs, b' ' | b'\t') => State::SizeWs,
            (State::Size { .. } | State::SizeWs, b';') => State::Extension,
            (State::Size { .. } | State::SizeWs | State::Extension, b'\r') => State::SizeLf,
            (State::SizeLf, b'\n') => self.size_line_end(),
            (State::Extension, b'\n') => return Err(Malformed),
            (State::Extension, _) => State::Extension,
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Size { digits: 0 },
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart | State::Trailer, b'\n') => return Err(Malformed),
            (State::Trailer, b'\r') => State::TrailerLf,
            (State::TrailerStart | State::Trailer, _) => State::Trailer,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            (
                State::Size { .. }
                | State::SizeWs
                | State::SizeLf
                | State::DataCr
                | State::DataLf
                | State::TrailerLf
                | State::EndLf
                | State::Data(_)
                | State::Done,
                _,
            ) => return Err(Malformed),
        };
        Ok(())
    }

    fn size_line_end(&mut self) -> State {
        let size = std::mem::take(&mut self.size);
        if size == 0 {
            State::TrailerStart
        } else {
            State::Data(size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(body: &[u8], piece: usize) -> Result<Option<usize>, Malformed> {
        let mut scanner = ChunkedScanner::default();
        let mut offset = 0;
        for part in body.chunks(piece) {
            if let Some(n) = scanner.feed(part)? {
                return Ok(Some(offset + n));
            }
            offset += part.len();
        }
        Ok(None)
    }

    #[test]
    fn finds_the_end_however_the_bytes_are_split() {
        let body = b"5\r\nhello\r\n1A;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for piece in 1..=body.len() {
            assert_eq!(scan_in_pieces(body, piece), Ok(Some(end)), "piece {piece}");
        }
    }

    #[test]
    fn an_unfinished_body_needs_more() {
        for body in [&b"5\r\nhel"[..], b"0\r\n", b"0\r\nX: 1\r\n", b"3\r\nabc\r"] {
            assert_eq!(scan_in_pieces(body, 2), Ok(None), "{body:?}");
        }
        assert_eq!(scan_in_pieces(b"0\r\n\r\n", 100), Ok(Some(5)));
    }

    #[test]
    fn only_whitespace_and_an_extension_may_follow_a_size() {
        // httparse and hyper refuse these; a parser that skips the
        // whitespace would read `5 5` as 0x55.
        for body in [
            &b"5 5\r\nhello\r\n0\r\n\r\n"[..],
            b"5 x\r\n",
            b"5\t\x00;a\r\n",
        ] {
            assert_eq!(scan_in_pieces(body, 1), Err(Malformed), "{body:?}");
        }
        let body = b"5 \t;a\r\nhello\r\n3 \r\nabc\r\n0\r\n\r\n";
        assert_eq!(scan_in_pieces(body, 1), Ok(Some(body.len())));
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"1234567890abcdef0\r\n",
            b"0\r\n\rX",
            b"0\n\n",
            b"5;ext\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n",
            b"5\r\nhello\r\n0\r\nX-T: 1\r\r\n",
        ] {
            assert!(scan_in_pieces(body, 3).is_err(), "{body:?}");
        }
    }
}
