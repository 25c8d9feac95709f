//! One timer per client connection, re-armed lazily.
//!
//! Every read and write of the fast path runs under a deadline (keep-alive,
//! connect, idle, total). Re-registering a timer for each would cost more
//! than the I/O it guards, so the connection keeps one `Sleep`: moving the
//! deadline later only records it, and when the sleep fires early the
//! timer re-arms itself for the recorded deadline. Only a deadline earlier
//! than the armed one resets the sleep.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep_until};

/// Far enough to mean "no deadline".
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A connection's deadline.
#[derive(Debug)]
pub(super) struct Deadline {
    sleep: Pin<Box<Sleep>>,
    want: Instant,
}

impl Deadline {
    /// A timer with no deadline yet.
    pub(super) fn new() -> Self {
        let far = Instant::now() + FAR;
        Self {
            sleep: Box::pin(sleep_until(far)),
            want: far,
        }
    }

    /// The instant [`Self::set`] means when there is no limit.
    pub(super) fn far(now: Instant) -> Instant {
        now + FAR
    }

    /// Sets the deadline the next [`Self::expired`] waits for.
    pub(super) fn set(&mut self, want: Instant) {
        if want < self.sleep.deadline() {
            self.sleep.as_mut().reset(want);
        }
        self.want = want;
    }

    /// Completes once the deadline has passed.
    pub(super) async fn expired(&mut self) {
        loop {
            self.sleep.as_mut().await;
            if Instant::now() >= self.want {
                return;
            }
            let want = self.want;
            self.sleep.as_mut().reset(want);
        }
    }

    /// Runs `io` until the deadline; `None` when the deadline came first.
    pub(super) async fn run<T>(
        &mut self,
        deadline: Instant,
        io: impl Future<Output = std::io::Result<T>>,
    ) -> Option<std::io::Result<T>> {
        self.set(deadline);
        tokio::select! {
            biased;
            result = io => Some(result),
            () = self.expired() => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_latest_deadline_set() {
        let mut timer = Deadline::new();
        let start = Instant::now();
        timer.set(start + Duration::from_secs(1));
        timer.set(start + Duration::from_secs(5));
        timer.expired().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_takes_effect() {
        let mut timer = Deadline::new();
        let start = Instant::now();
        timer.set(start + Duration::from_secs(60));
        timer.set(start + Duration::from_secs(2));
        timer.expired().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn run_returns_the_io_or_none_at_the_deadline() {
        let mut timer = Deadline::new();
        let start = Instant::now();
        let done = timer
            .run(start + Duration::from_secs(1), async { Ok(7) })
            .await;
        assert_eq!(done.map(|r| r.unwrap()), Some(7));
        let never = std::future::pending::<std::io::Result<()>>();
        assert!(
            timer
                .run(start + Duration::from_secs(3), never)
                .await
                .is_none()
        );
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
    }
}
