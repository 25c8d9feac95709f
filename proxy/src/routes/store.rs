//! The one shared, atomically swapped route index, and the signal that it changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;
use tokio::time::Instant;

use super::index::RouteIndex;

/// Holds the current [`RouteIndex`]. Requests `load` it without locking;
/// the route sync `publish`es a new one with a single atomic store.
#[derive(Debug)]
pub struct RouteStore {
    current: ArcSwap<RouteIndex>,
    swaps: watch::Sender<u64>,
    started: Instant,
    /// Milliseconds after `started` of the last control-plane message, plus one (0 = never).
    last_message_ms: AtomicU64,
}

impl Default for RouteStore {
    fn default() -> Self {
        Self::new()
    }
}

impl RouteStore {
    /// A store with no table yet: [`RouteIndex::is_loaded`] is false.
    pub fn new() -> Self {
        Self {
            current: ArcSwap::from_pointee(RouteIndex::unloaded()),
            swaps: watch::channel(0).0,
            started: Instant::now(),
            last_message_ms: AtomicU64::new(0),
        }
    }

    /// The current index (cheap; no lock, no reference-count traffic in the common case).
    pub fn load(&self) -> Guard<Arc<RouteIndex>> {
        self.current.load()
    }

    /// The current index as an owned `Arc`.
    pub fn load_full(&self) -> Arc<RouteIndex> {
        self.current.load_full()
    }

    /// Swaps in `index` and wakes everything waiting in [`Self::subscribe`].
    pub fn publish(&self, index: RouteIndex) {
        let version = index.version();
        self.current.store(Arc::new(index));
        self.swaps.send_replace(version);
    }

    /// A receiver that sees every later [`Self::publish`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.swaps.subscribe()
    }

    /// Whether a table has arrived.
    pub fn is_ready(&self) -> bool {
        self.current.load().is_loaded()
    }

    /// Records that the control plane just sent something.
    pub fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_message_ms.store(ms + 1, Ordering::Relaxed);
    }

    /// Seconds since the last control-plane message; `None` before the first.
    pub fn age_seconds(&self) -> Option<f64> {
        let stamp = self.last_message_ms.load(Ordering::Relaxed);
        let since = stamp.checked_sub(1)?;
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Some(now.saturating_sub(since) as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandgate_shared::routes::RouteTable;

    #[tokio::test]
    async fn publish_wakes_subscribers_and_marks_ready() {
        let store = RouteStore::new();
        assert!(!store.is_ready());
        assert_eq!(store.age_seconds(), None);
        let mut rx = store.subscribe();
        let table = RouteTable {
            version: 7,
            ..RouteTable::default()
        };
        store.publish(RouteIndex::build(&table, &store.load()).0);
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 7);
        assert!(store.is_ready());
        store.touch();
        assert!(store.age_seconds().unwrap() < 1.0);
    }
}
