//! Holding requests to sandboxes that are still starting: re-check after
//! every route-table swap until the sandbox can take traffic or the
//! pending wait runs out.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Reject;
use crate::routes::RouteStore;

/// The outcome of one look at the route table.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// Go ahead with `T`.
    Ready(T),
    /// Not yet; answer this at `Instant` at the latest (or when the overall
    /// wait runs out, if that is sooner).
    WaitUntil(Reject, Instant),
}

/// Runs `attempt` now and again after each table swap, until it is ready,
/// fails, or `wait` (counted from `since`) has passed. A zero `wait`
/// answers at once.
pub(crate) async fn until_ready<T>(
    store: &RouteStore,
    since: Instant,
    wait: Duration,
    mut attempt: impl FnMut() -> Result<Step<T>, Reject>,
) -> Result<T, Reject> {
    let mut swaps = None;
    loop {
        let (reject, deadline) = match attempt()? {
            Step::Ready(value) => return Ok(value),
            Step::WaitUntil(reject, until) => (reject, until.min(since + wait)),
        };
        if Instant::now() >= deadline {
            return Err(reject);
        }
        let Some(swaps) = swaps.as_mut() else {
            // Subscribe, then look again, so a swap that happens between
            // the first look and the subscription is not missed.
            let mut receiver = store.subscribe();
            receiver.borrow_and_update();
            swaps = Some(receiver);
            continue;
        };
        tokio::select! {
            changed = swaps.changed() => if changed.is_err() { return Err(reject) },
            () = tokio::time::sleep_until(deadline) => return Err(reject),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sandgate_shared::api::SandboxState;
    use sandgate_shared::routes::{RouteTable, SandboxRoute};

    use super::*;
    use crate::routes::RouteIndex;

    fn publish(store: &RouteStore, version: u64, state: SandboxState) {
        let route = SandboxRoute {
            state,
            message: None,
            address: Some("10.0.0.1".into()),
            secure_access_sha256: None,
        };
        let table = RouteTable {
            version,
            routes: [("sb".parse().unwrap(), route)].into(),
        };
        store.publish(RouteIndex::build(&table, &store.load()).0);
    }

    fn attempt(store: &RouteStore) -> Result<Step<u64>, Reject> {
        let index = store.load();
        match index.get("sb").map(|e| e.state) {
            Some(SandboxState::Running) => Ok(Step::Ready(index.version())),
            Some(_) => Ok(Step::WaitUntil(
                Reject::pending("sb"),
                Instant::now() + Duration::from_secs(3600),
            )),
            None => Err(Reject::not_found("sb")),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wakes_when_the_sandbox_starts() {
        let store = Arc::new(RouteStore::new());
        publish(&store, 1, SandboxState::Pending);
        let later = Arc::clone(&store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            publish(&later, 2, SandboxState::Pending);
            tokio::time::sleep(Duration::from_secs(1)).await;
            publish(&later, 3, SandboxState::Running);
        });
        let start = Instant::now();
        let got = until_ready(&store, start, Duration::from_secs(30), || attempt(&store)).await;
        assert_eq!(got, Ok(3));
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(2),
            "woke on the swap, not by polling"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_wait() {
        let store = RouteStore::new();
        publish(&store, 1, SandboxState::Pending);
        let start = Instant::now();
        let got = until_ready(&store, start, Duration::from_secs(30), || attempt(&store)).await;
        assert_eq!(got.unwrap_err().code, "PROXY::SANDBOX_PENDING");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_wait_answers_at_once_and_errors_pass_through() {
        let store = RouteStore::new();
        publish(&store, 1, SandboxState::Pending);
        let got = until_ready(&store, Instant::now(), Duration::ZERO, || attempt(&store)).await;
        assert_eq!(got.unwrap_err().code, "PROXY::SANDBOX_PENDING");
        let empty = RouteStore::new();
        let got = until_ready(&empty, Instant::now(), Duration::from_secs(5), || {
            attempt(&empty)
        })
        .await;
        assert_eq!(got.unwrap_err().code, "PROXY::SANDBOX_NOT_FOUND");
    }

    /// The caller's policy for unknown ids: wait (shortly) for a table that
    /// knows the sandbox, as a just-created one may not have arrived yet.
    fn attempt_waiting_for_unknown(
        store: &RouteStore,
        until: Instant,
    ) -> Result<Step<u64>, Reject> {
        match attempt(store) {
            Err(reject) if reject.is_not_found() => Ok(Step::WaitUntil(reject, until)),
            other => other,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_id_is_served_once_its_route_arrives() {
        let store = Arc::new(RouteStore::new());
        let later = Arc::clone(&store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            publish(&later, 1, SandboxState::Running);
        });
        let start = Instant::now();
        let until = start + Duration::from_secs(1);
        let got = until_ready(&store, start, Duration::from_secs(30), || {
            attempt_waiting_for_unknown(&store, until)
        })
        .await;
        assert_eq!(got, Ok(1));
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn an_id_that_never_appears_gets_404_after_the_short_wait() {
        let store = RouteStore::new();
        let start = Instant::now();
        let until = start + Duration::from_secs(1);
        let got = until_ready(&store, start, Duration::from_secs(30), || {
            attempt_waiting_for_unknown(&store, until)
        })
        .await;
        assert_eq!(got.unwrap_err().code, "PROXY::SANDBOX_NOT_FOUND");
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "not the 30 s pending wait"
        );
    }
}
