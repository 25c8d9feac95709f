//! The expiry scheduler: one task, one ordered set of deadlines.
//!
//! Built like mini-redis's purge task: a `BTreeSet<(deadline, id)>` plus a
//! `Notify`; the task sleeps until the earliest deadline or until a change
//! wakes it. Each sandbox has at most one deadline. When one passes, the id is
//! sent on a channel; the [`SandboxService`](crate::sandbox::service::SandboxService)
//! decides what is due (TTL expiry or removal of a failed sandbox) under the
//! sandbox's lock, so a renewal acknowledged before the deadline always wins.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// A deadline that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Which sandbox.
    pub id: SandboxId,
    /// The deadline that passed.
    pub deadline: Timestamp,
}

#[derive(Default)]
struct Deadlines {
    ordered: BTreeSet<(Timestamp, SandboxId)>,
    by_id: HashMap<SandboxId, Timestamp>,
}

struct Shared {
    deadlines: Mutex<Deadlines>,
    changed: Notify,
}

/// Handle to the scheduler; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("pending", &self.len())
            .finish()
    }
}

impl Scheduler {
    /// Starts the scheduler task; due deadlines arrive on the returned channel.
    /// The task stops when `shutdown` is cancelled.
    pub fn start(
        clock: Clock,
        shutdown: CancellationToken,
    ) -> (Self, mpsc::UnboundedReceiver<Due>) {
        let shared = Arc::new(Shared {
            deadlines: Mutex::default(),
            changed: Notify::new(),
        });
        let (due_tx, due_rx) = mpsc::unbounded_channel();
        tokio::spawn(run(shared.clone(), clock, due_tx, shutdown));
        (Self { shared }, due_rx)
    }

    /// Sets (or, with `None`, clears) the sandbox's deadline.
    pub fn set(&self, id: &SandboxId, deadline: Option<Timestamp>) {
        let mut guard = self.shared.deadlines.lock();
        let state = &mut *guard;
        if let Some(old) = state.by_id.remove(id) {
            state.ordered.remove(&(old, id.clone()));
        }
        if let Some(at) = deadline {
            state.by_id.insert(id.clone(), at);
            state.ordered.insert((at, id.clone()));
        }
        drop(guard);
        self.shared.changed.notify_one();
    }

    /// The sandbox's current deadline.
    pub fn deadline(&self, id: &SandboxId) -> Option<Timestamp> {
        self.shared.deadlines.lock().by_id.get(id).copied()
    }

    /// How many deadlines are pending.
    pub fn len(&self) -> usize {
        self.shared.deadlines.lock().by_id.len()
    }

    /// Whether no deadline is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

async fn run(
    shared: Arc<Shared>,
    clock: Clock,
    due: mpsc::UnboundedSender<Due>,
    shutdown: CancellationToken,
) {
    loop {
        let next = pop_due(&shared, &clock, &due);
        let wait = next.map(|at| clock.until(at));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = shared.changed.notified() => {}
            () = sleep_or_forever(wait) => {}
        }
    }
}

async fn sleep_or_forever(wait: Option<std::time::Duration>) {
    match wait {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// Sends every passed deadline and returns the earliest remaining one.
fn pop_due(shared: &Shared, clock: &Clock, due: &mpsc::UnboundedSender<Due>) -> Option<Timestamp> {
    let now = clock.now();
    let mut guard = shared.deadlines.lock();
    let state = &mut *guard;
    while let Some((at, id)) = state.ordered.first().cloned() {
        if at > now {
            return Some(at);
        }
        state.ordered.pop_first();
        state.by_id.remove(&id);
        let _ = due.send(Due { id, deadline: at });
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(s: &str) -> SandboxId {
        s.parse().unwrap()
    }

    fn start() -> (Scheduler, mpsc::UnboundedReceiver<Due>, Clock) {
        let clock = Clock::anchored(chrono::Utc::now());
        let (scheduler, rx) = Scheduler::start(clock, CancellationToken::new());
        (scheduler, rx, clock)
    }

    #[tokio::test(start_paused = true)]
    async fn fires_in_deadline_order() {
        let (scheduler, mut rx, clock) = start();
        scheduler.set(&id("b"), Some(clock.after(Duration::from_secs(120))));
        scheduler.set(&id("a"), Some(clock.after(Duration::from_secs(60))));
        let first = rx.recv().await.unwrap();
        assert_eq!(first.id, id("a"));
        assert!(clock.now() >= first.deadline);
        assert_eq!(rx.recv().await.unwrap().id, id("b"));
        assert!(scheduler.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn moving_a_deadline_replaces_it() {
        let (scheduler, mut rx, clock) = start();
        scheduler.set(&id("a"), Some(clock.after(Duration::from_secs(60))));
        let later = clock.after(Duration::from_secs(600));
        scheduler.set(&id("a"), Some(later));
        let due = rx.recv().await.unwrap();
        assert_eq!(due.deadline, later);
        assert!(clock.now() >= later);
    }

    #[tokio::test(start_paused = true)]
    async fn cleared_deadlines_never_fire() {
        let (scheduler, mut rx, clock) = start();
        scheduler.set(&id("a"), Some(clock.after(Duration::from_secs(60))));
        scheduler.set(&id("a"), None);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn past_deadlines_fire_at_once() {
        let (scheduler, mut rx, clock) = start();
        let past = Timestamp::from_utc(clock.now().as_utc() - chrono::Duration::seconds(5));
        scheduler.set(&id("a"), Some(past));
        let due = tokio::time::timeout(Duration::from_millis(1), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(due.deadline, past);
    }
}
