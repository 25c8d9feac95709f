//! Per-hop header rules both server-proxy modes apply (the relay to the
//! edge proxy and the control plane's own forwarding): hop-by-hop fields
//! and fields a `Connection` option names go (framing fields never do, see
//! `sandgate_shared::framing`), upgrades are recognised, and upgraded
//! connections become byte tunnels.

use axum::http::{HeaderMap, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use sandgate_shared::framing::removable_by_connection;
use sandgate_shared::headers::HOP_BY_HOP;

/// Whether the request asks for a protocol upgrade (`Connection: upgrade`
/// among its options, and an `Upgrade` field).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// Removes the hop-by-hop fields and those `Connection` names, except the
/// framing fields no option may remove.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|name| !name.is_empty() && removable_by_connection(name))
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// Copies bytes both ways between the two upgraded connections until
/// either side closes.
pub async fn tunnel(downstream: OnUpgrade, upstream: OnUpgrade) {
    let (Ok(downstream), Ok(upstream)) = (downstream.await, upstream.await) else {
        tracing::debug!("an upgrade did not complete");
        return;
    };
    let (mut client, mut sandbox) = (TokioIo::new(downstream), TokioIo::new(upstream));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut sandbox).await {
        tracing::debug!(%error, "upgrade tunnel ended");
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-hop-temp"),
        );
        headers.insert("x-hop-temp", HeaderValue::from_static("1"));
        headers.insert("x-trace", HeaderValue::from_static("2"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(
            headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-trace"]
        );
    }

    #[test]
    fn connection_cannot_remove_the_framing_or_the_host() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("Content-Length, Host, Transfer-Encoding"),
        );
        headers.insert("content-length", HeaderValue::from_static("2"));
        headers.insert("host", HeaderValue::from_static("control.test"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers["content-length"], "2");
        assert_eq!(headers["host"], "control.test");
    }

    #[test]
    fn recognises_upgrades_in_token_lists() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&headers));
        headers.remove("upgrade");
        assert!(!wants_upgrade(&headers));
    }
}
