//! Fuzzes the fast path's `ChunkedScanner::feed` against a reference chunked decoder (`sandgate_fuzz::reference::chunked`, on `httparse::parse_chunk_size`), for one input fed whole, byte by byte and in pieces.
//!
//! Invariants checked, for every split of the body into `feed` calls:
//! - the scanner finds the body end exactly where the reference does;
//! - it asks for more exactly when the reference does, and refuses exactly
//!   what the reference refuses, with one allowed difference: the scanner
//!   takes chunk sizes of at most 15 hex digits (leading zeros count),
//!   the reference 16, so a body with a 16-digit size may be refused;
//! - the three splits give the same answer (the scanner keeps no state
//!   that depends on where reads end).
//!
//! Input layout: the first byte seeds the lengths of the pieces; the rest
//! is the chunked body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandgate_fuzz::fast::{ChunkedScanner, Malformed};
use sandgate_fuzz::reference::chunked::{Decoded, Outcome, decode};

/// The scanner's widest chunk size, in hex digits.
const SCANNER_SIZE_DIGITS: usize = 15;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let reference = decode(body);
    let whole = scan(body, &mut std::iter::repeat(body.len().max(1)));
    let bytewise = scan(body, &mut std::iter::repeat(1));
    let mut lengths = Pieces(u32::from(seed) | 0x100);
    let pieces = scan(body, &mut std::iter::from_fn(|| lengths.next()));
    for (split, result) in [("whole", whole), ("bytewise", bytewise), ("pieces", pieces)] {
        check(reference, result, split);
    }
    assert_eq!(whole, bytewise, "the split changed the answer");
    assert_eq!(whole, pieces, "the split changed the answer");
});

/// The scanner's answer for `body` fed in pieces of the given lengths:
/// as `feed` would report it over the whole body.
fn scan(body: &[u8], lengths: &mut dyn Iterator<Item = usize>) -> Result<Option<usize>, Malformed> {
    let mut scanner = ChunkedScanner::default();
    let mut offset = 0;
    while offset < body.len() {
        let len = lengths.next().unwrap_or(1).clamp(1, body.len() - offset);
        let piece = &body[offset..offset + len];
        if let Some(end) = scanner.feed(piece)? {
            assert!(end <= piece.len(), "end {end} past the piece of {len}");
            return Ok(Some(offset + end));
        }
        offset += len;
    }
    Ok(None)
}

fn check(reference: Decoded, scanned: Result<Option<usize>, Malformed>, split: &str) {
    let agrees = match (reference.outcome, scanned) {
        (Outcome::End(n), Ok(Some(m))) => n == m,
        (Outcome::More, Ok(None)) | (Outcome::Invalid, Err(Malformed)) => true,
        (_, Err(Malformed)) => reference.widest_size > SCANNER_SIZE_DIGITS,
        _ => false,
    };
    assert!(
        agrees,
        "{split}: scanner {scanned:?}, reference {:?} (widest size {} digits)",
        reference.outcome, reference.widest_size
    );
}

/// Piece lengths from a small xorshift: mostly short, sometimes long.
struct Pieces(u32);

impl Pieces {
    fn next(&mut self) -> Option<usize> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        let r = self.0 as usize;
        Some(if r.is_multiple_of(4) { r % 257 } else { r % 7 } + 1)
    }
}
