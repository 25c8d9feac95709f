//! Wall-clock time for the API and the expiry scheduler.
//!
//! Deadlines are wall-clock instants (`expiresAt`), but waiting uses tokio's
//! timer. The anchored clock follows tokio's clock, so tests that pause and
//! advance tokio time move the wall clock with it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sandgate_shared::time::Timestamp;
use tokio::time::Instant;

/// The source of "now".
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock.
    System,
    /// `wall` at tokio instant `at`, advancing with tokio's clock.
    Anchored {
        /// Wall time at the anchor.
        wall: DateTime<Utc>,
        /// Tokio time at the anchor.
        at: Instant,
    },
}

impl Clock {
    /// A clock anchored at `wall` now, following tokio's (possibly paused) clock.
    pub fn anchored(wall: DateTime<Utc>) -> Self {
        Self::Anchored {
            wall,
            at: Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::from_utc(Utc::now()),
            Self::Anchored { wall, at } => {
                let elapsed = chrono::Duration::from_std(at.elapsed()).unwrap_or_default();
                Timestamp::from_utc(*wall + elapsed)
            }
        }
    }

    /// How long until `deadline`; zero when it has passed.
    pub fn until(&self, deadline: Timestamp) -> Duration {
        (deadline.as_utc() - self.now().as_utc())
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    /// `now + seconds`.
    pub fn after(&self, duration: Duration) -> Timestamp {
        let delta = chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let now = self.now().as_utc();
        Timestamp::from_utc(
            now.checked_add_signed(delta)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }
}
