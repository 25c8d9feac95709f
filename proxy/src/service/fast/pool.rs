//! Idle upstream connections of this worker thread, kept for reuse.
//!
//! pingora runs one single-threaded runtime per worker thread
//! (`work_stealing = false`, see `server.rs`), and a request's task never
//! leaves its thread. So the pool is thread-local: taking and returning a
//! connection needs no lock, no atomic and no task watching it. A peer's
//! close is still noticed: tokio records the socket's readiness from epoll
//! whether or not a task waits, so `try_read` on a closed connection yields
//! `Ok(0)` while a live idle one yields `WouldBlock`, usually without a
//! system call. Expired connections are swept as connections are returned.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections kept per upstream address.
const MAX_IDLE_PER_UPSTREAM: usize = 128;
/// Upstream addresses with idle connections kept per thread.
const MAX_UPSTREAMS: usize = 4096;
/// How often expired connections are closed.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Idle {
    stream: TcpStream,
    since: Instant,
}

#[derive(Debug)]
struct Pool {
    idle: HashMap<SocketAddr, Vec<Idle>>,
    last_sweep: Instant,
}

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

/// An idle connection to `addr` used less than `max_idle` ago, if any.
pub(super) fn take(addr: SocketAddr, max_idle: Duration) -> Option<TcpStream> {
    POOL.with_borrow_mut(|pool| pool.as_mut()?.take(addr, max_idle))
}

/// Keeps `stream` (a finished exchange with `addr`) for reuse.
pub(super) fn put(addr: SocketAddr, stream: TcpStream, max_idle: Duration) {
    POOL.with_borrow_mut(|pool| {
        pool.get_or_insert_with(Pool::new)
            .put(addr, stream, max_idle);
    });
}

impl Pool {
    fn new() -> Self {
        Self {
            idle: HashMap::new(),
            last_sweep: Instant::now(),
        }
    }

    fn take(&mut self, addr: SocketAddr, max_idle: Duration) -> Option<TcpStream> {
        let list = self.idle.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(idle) = list.pop() {
            if now.duration_since(idle.since) < max_idle && is_open(&idle.stream) {
                return Some(idle.stream);
            }
        }
        None
    }

    fn put(&mut self, addr: SocketAddr, stream: TcpStream, max_idle: Duration) {
        let now = Instant::now();
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.sweep(now, max_idle);
        }
        if self.idle.len() >= MAX_UPSTREAMS && !self.idle.contains_key(&addr) {
            return;
        }
        let list = self.idle.entry(addr).or_default();
        if list.len() < MAX_IDLE_PER_UPSTREAM {
            list.push(Idle { stream, since: now });
        }
    }

    /// Closes connections idle for `max_idle` or closed by the peer.
    fn sweep(&mut self, now: Instant, max_idle: Duration) {
        self.last_sweep = now;
        self.idle.retain(|_, list| {
            list.retain(|idle| now.duration_since(idle.since) < max_idle && is_open(&idle.stream));
            !list.is_empty()
        });
    }
}

/// Whether an idle connection is still open and has sent nothing unasked.
fn is_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    const IDLE: Duration = Duration::from_secs(60);

    async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn reuses_open_connections_and_drops_closed_ones() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, _open_server) = pair(&listener).await;
        let open_port = open.local_addr().unwrap().port();
        put(addr, open, IDLE);
        let taken = take(addr, IDLE).expect("the open connection comes back");
        assert_eq!(taken.local_addr().unwrap().port(), open_port);
        assert!(
            take(addr, IDLE).is_none(),
            "taken connections leave the pool"
        );

        let (closed, mut closed_server) = pair(&listener).await;
        closed_server.shutdown().await.unwrap();
        drop(closed_server);
        // Wait (bounded) until the runtime has seen the close.
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_open(&closed) {
            assert!(Instant::now() < deadline, "the close was never seen");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        put(addr, closed, IDLE);
        assert!(
            take(addr, IDLE).is_none(),
            "a closed connection is not reused"
        );
    }

    #[tokio::test]
    async fn expired_connections_are_not_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (conn, _server) = pair(&listener).await;
        put(addr, conn, IDLE);
        assert!(take(addr, Duration::ZERO).is_none());
    }
}
