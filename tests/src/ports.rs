//! Free TCP ports for the processes under test, picked below the kernel's
//! ephemeral range.
//!
//! Why: a port found free by binding `127.0.0.1:0` comes from the ephemeral
//! range, the same range every outgoing connection takes its source port
//! from. Between the check and the moment the child process binds it, a
//! connection made by a concurrent test could take it, and the child then
//! fails to start. Ports below that range are never handed out as source
//! ports, so only another test picking the same port could collide: each
//! process walks the range from its own starting point, and never probes
//! a port twice.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

/// The lowest port handed out.
const LOWEST: u32 = 10_000;
/// A prime stride: the walk visits every port of the span (unless the span
/// is a multiple of it, when it visits a share of them).
const STRIDE: u32 = 7_919;

/// Ports probed so far by this process: the walk's position.
static PROBES: AtomicU32 = AtomicU32::new(0);

/// A port that was free a moment ago on 127.0.0.1, outside the ephemeral
/// range when the kernel leaves room below it.
pub fn free_port() -> anyhow::Result<u16> {
    let Some((low, high)) = below_ephemeral() else {
        return any_free_port();
    };
    let span = high - low;
    let start = seed() % span;
    for _ in 0..span {
        let probe = PROBES.fetch_add(1, Ordering::Relaxed) % span;
        let offset = (u64::from(start) + u64::from(probe) * u64::from(STRIDE)) % u64::from(span);
        let Ok(port) = u16::try_from(u64::from(low) + offset) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port on 127.0.0.1 in {low}..{high}")
}

/// A free port from the kernel (ephemeral range).
fn any_free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `[LOWEST, first ephemeral port)`, when that holds at least 1,000 ports.
fn below_ephemeral() -> Option<(u32, u32)> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let first: u32 = range.split_whitespace().next()?.parse().ok()?;
    (first >= LOWEST + 1_000).then_some((LOWEST, first))
}

/// The walk's starting point in this process: its id and the clock's
/// nanoseconds, fixed at the first call.
fn seed() -> u32 {
    static SEED: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *SEED.get_or_init(new_seed)
}

fn new_seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::process::id().wrapping_mul(2_654_435_761) ^ nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_distinct_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        if let Some((low, high)) = below_ephemeral() {
            for port in &ports {
                assert!(
                    (low..high).contains(&u32::from(*port)),
                    "{port} outside {low}..{high}"
                );
            }
        }
    }
}
