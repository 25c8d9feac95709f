//! Independent reference implementations the fuzz targets check the
//! proxy's framing code against. They are written from RFC 9112 (and, for
//! chunk-size lines, on `httparse::parse_chunk_size`, the parser pingora
//! and hyper's users rely on), never by calling the code under test.

pub mod chunked;
pub mod framing;
pub mod head;

/// Whether `name` equals `expected` ignoring ASCII case.
pub(crate) fn named(name: &[u8], expected: &str) -> bool {
    name.eq_ignore_ascii_case(expected.as_bytes())
}

/// The elements of a comma-separated list field value (RFC 9110 §5.6.1),
/// each trimmed of optional whitespace, empty elements dropped.
pub(crate) fn list<'v>(values: impl IntoIterator<Item = &'v [u8]>) -> Vec<&'v [u8]> {
    values
        .into_iter()
        .flat_map(|v| v.split(|b| *b == b','))
        .map(trim_ows)
        .filter(|e| !e.is_empty())
        .collect()
}

/// `value` without leading and trailing SP and HTAB (OWS, RFC 9110 §5.6.3).
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}
