//! h2c, HTTP/2 over plain TCP with prior knowledge (RFC 9113 §3.3): a plain
//! connection that opens with the HTTP/2 connection preface is handed to
//! pingora's HTTP/2 server instead of the HTTP/1 fast path.

use pingora::protocols::Stream;
use pingora::protocols::l4::stream::Stream as TcpStream;

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a plain connection's first bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opening {
    /// The HTTP/2 connection preface.
    H2c,
    /// Anything else: HTTP/1.x (or garbage, which the HTTP/1 side refuses).
    Http1,
}

/// What `first` (the bytes read so far) opens, or `None` while it is a
/// proper prefix of the preface and more bytes must decide.
pub(super) fn classify(first: &[u8]) -> Option<Opening> {
    if first.len() >= PREFACE.len() {
        let opening = if first.starts_with(PREFACE) {
            Opening::H2c
        } else {
            Opening::Http1
        };
        return Some(opening);
    }
    (!PREFACE.starts_with(first)).then_some(Opening::Http1)
}

/// `stream` with `read` put back in front of its unread bytes, so the
/// HTTP/2 server reads the preface itself. `None` when `stream` is not a
/// plain TCP stream, which a plain listener never gives.
pub(super) fn unread(stream: Stream, read: &[u8]) -> Option<Stream> {
    let mut tcp = stream.into_any().downcast::<TcpStream>().ok()?;
    tcp.rewind(read);
    Some(tcp)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn the_whole_preface_is_h2c_and_anything_else_http1() {
        assert_eq!(classify(PREFACE), Some(Opening::H2c));
        let mut with_settings = PREFACE.to_vec();
        with_settings.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(classify(&with_settings), Some(Opening::H2c));
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(Opening::Http1)
        );
        // Short requests decide at once, without waiting for 24 bytes.
        assert_eq!(classify(b"GET / HTTP/1.1\r\n\r\n"), Some(Opening::Http1));
        assert_eq!(classify(b"P"), None);
        assert_eq!(classify(b"PRI * HTTP/2.0\r\n"), None);
        assert_eq!(classify(b"POST / HTTP/1.1\r\n"), Some(Opening::Http1));
        assert_eq!(
            classify(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"),
            Some(Opening::Http1)
        );
        assert_eq!(classify(b""), None);
    }

    #[tokio::test]
    async fn unread_bytes_are_read_again_before_the_rest() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b"abcdef").await.unwrap();
        client.shutdown().await.unwrap();

        let mut stream: Stream = Box::new(TcpStream::from(server));
        let mut first = [0u8; 3];
        stream.read_exact(&mut first).await.unwrap();
        let mut stream = unread(stream, &first).unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"abcdef");
    }
}
