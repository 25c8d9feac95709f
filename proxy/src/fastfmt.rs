//! Fast formatting for the per-request path (forwarding headers and the
//! access log): integers by `itoa`, IPv4 addresses by hand. Performance: `core::fmt` costs several hundred
//! instructions per `write!`, and `Ipv4Addr`'s `Display` over a thousand;
//! these produce the same text with a few dozen.

use std::net::{Ipv4Addr, SocketAddr};

/// Appends the decimal digits of `value`.
pub(crate) fn push_u64(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// Appends `value` in decimal, with a `-` when negative.
pub(crate) fn push_i64(out: &mut String, value: i64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// `a.b.c.d` in `buf`; returns its length (at most 15).
pub(crate) fn ipv4(ip: Ipv4Addr, buf: &mut [u8; 15]) -> usize {
    let mut len = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            buf[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            buf[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        buf[len] = b'0' + octet % 10;
        len += 1;
    }
    len
}

/// Writes `addr` as its `Display` does (`a.b.c.d:port`, `[v6]:port`).
pub(crate) fn write_socket_addr(
    f: &mut std::fmt::Formatter<'_>,
    addr: &SocketAddr,
) -> std::fmt::Result {
    match addr {
        SocketAddr::V4(v4) => {
            let mut ip = [0u8; 15];
            let len = ipv4(*v4.ip(), &mut ip);
            f.write_str(std::str::from_utf8(&ip[..len]).unwrap_or_default())?;
            f.write_str(":")?;
            f.write_str(itoa::Buffer::new().format(v4.port()))
        }
        SocketAddr::V6(_) => std::fmt::Display::fmt(addr, f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_match_display() {
        for value in [0, 7, 10, 99, 100, 65_535, 1_234_567_890, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
        for value in [0, -1, 42, i64::MIN, i64::MAX] {
            let mut out = String::new();
            push_i64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    #[test]
    fn addresses_match_display() {
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "1.20.3.4",
            "127.0.0.1",
        ] {
            let ip: Ipv4Addr = text.parse().unwrap();
            let mut buf = [0u8; 15];
            let len = ipv4(ip, &mut buf);
            assert_eq!(&buf[..len], text.as_bytes());
        }
        struct Shown(SocketAddr);
        impl std::fmt::Display for Shown {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write_socket_addr(f, &self.0)
            }
        }
        for text in [
            "127.0.0.1:8080",
            "10.1.2.3:1",
            "[::1]:443",
            "[fd00::1]:65535",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(Shown(addr).to_string(), text);
        }
    }
}
