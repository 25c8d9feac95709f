//! Polling a condition until it holds or a deadline passes.
//!
//! Tests must not sleep for a fixed time and hope; they wait for an
//! observable condition, with a generous deadline and a clear error.

use std::future::Future;
use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

/// Interval between two checks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Runs a whole test, failing it when it takes longer than `budget`: a
/// hung exchange ends the test with a message instead of stalling the run.
///
/// # Panics
/// When `budget` passes before `test` finishes.
pub async fn bounded(budget: Duration, test: impl Future<Output = ()>) {
    let started = Instant::now();
    if tokio::time::timeout(budget, test).await.is_err() {
        panic!(
            "the test did not finish within {budget:?} (started {:?} ago)",
            started.elapsed()
        );
    }
}

/// Calls `check` until it returns `Ok(Some(value))` and returns the value.
///
/// `Ok(None)` means "not yet"; an `Err` ends the wait at once. Fails with a
/// message naming `what` when `timeout` passes first.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
