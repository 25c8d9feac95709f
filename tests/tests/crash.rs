//! Crash safety of the real `sandgate-control` binary.
//!
//! "Killed with SIGKILL while creates, renews and deletes are in flight →
//! after restart every acknowledged change is there, nothing is duplicated,
//! every timer is back." Workers record every change the server
//! acknowledged (2xx received); the one request per worker that was in
//! flight at the kill is unacknowledged and may or may not have applied, so
//! both outcomes are accepted for it and only for it.
//!
//! Needs `target/debug/sandgate-control`: run `cargo build --workspace` first
//! (or set `SANDGATE_CONTROL_BIN`).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, SubsecRound, Utc};
use sandgate_shared::api::{Sandbox, SandboxState};
use sandgate_tests::{
    Api, ControlOptions, ControlProcess, Listing, create_body, engine_ids, poll_until,
};
use serde_json::json;

/// Concurrent workers sending writes.
const WORKERS: usize = 8;
/// Sandboxes created before the workers start, shared out among them.
const INITIAL: usize = 40;
/// The kill happens once this many writes were acknowledged.
const KILL_AFTER_ACKS: usize = 200;
/// Upper bound on the writes of one worker (the kill normally ends them far earlier).
const MAX_OPS_PER_WORKER: u64 = 5_000;
/// Sandbox timeout: far enough that nothing expires during the test.
const TIMEOUT_S: u64 = 3600;
/// Generous deadlines for a noisy 2-core machine.
const LONG: Duration = Duration::from_secs(120);

/// A write a worker sent.
#[derive(Debug, Clone)]
enum Attempt {
    Create,
    Renew { id: String, at: DateTime<Utc> },
    Patch { id: String, value: String },
    Delete { id: String },
}

/// What one worker knows was acknowledged.
#[derive(Debug, Default)]
struct Ledger {
    /// Acknowledged-created ids not (yet) acknowledged-deleted.
    live: Vec<String>,
    /// Every acknowledged-created id (including initial ones handed over).
    created: BTreeSet<String>,
    /// Acknowledged-deleted ids.
    deleted: BTreeSet<String>,
    /// Last acknowledged `expiresAt` of each id (from create or renew).
    expires: HashMap<String, DateTime<Utc>>,
    /// Last acknowledged value of metadata key `round` (absent: never patched).
    round: HashMap<String, String>,
    /// The write whose answer never came (the server was killed).
    unacknowledged: Option<Attempt>,
    /// How many writes were acknowledged.
    acked: u64,
}

impl Ledger {
    fn adopt(&mut self, id: String, expires_at: DateTime<Utc>) {
        self.created.insert(id.clone());
        self.expires.insert(id.clone(), expires_at);
        self.live.push(id);
    }

    /// The unacknowledged attempt, when it concerns `id`.
    fn pending_on(&self, id: &str) -> Option<&Attempt> {
        self.unacknowledged.as_ref().filter(|a| match a {
            Attempt::Create => false,
            Attempt::Renew { id: x, .. }
            | Attempt::Patch { id: x, .. }
            | Attempt::Delete { id: x } => x == id,
        })
    }
}

/// A tiny deterministic generator (no `rand` dependency needed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

struct Worker {
    index: usize,
    api: Api,
    ledger: Ledger,
    rng: Lcg,
    acks: Arc<AtomicUsize>,
    renew_base: DateTime<Utc>,
}

impl Worker {
    /// Sends writes until one gets no answer (the kill), then returns the ledger.
    async fn run(mut self) -> anyhow::Result<Ledger> {
        for n in 0..MAX_OPS_PER_WORKER {
            let attempt = self.choose(n);
            match self.send(&attempt).await {
                Ok(response) => self.record(attempt, response)?,
                Err(_) => {
                    self.ledger.unacknowledged = Some(attempt);
                    break;
                }
            }
            self.acks.fetch_add(1, Ordering::SeqCst);
        }
        Ok(self.ledger)
    }

    fn choose(&mut self, n: u64) -> Attempt {
        let live = &self.ledger.live;
        if live.len() < 3 {
            return Attempt::Create;
        }
        let id = live[self.rng.below(live.len())].clone();
        match self.rng.below(10) {
            0..=2 => Attempt::Create,
            3..=5 => {
                // Distinct per worker and per write, so the last value is known.
                let offset = self.index as i64 * 1_000_000 + n as i64;
                Attempt::Renew {
                    id,
                    at: self.renew_base + chrono::Duration::seconds(offset),
                }
            }
            6..=7 => Attempt::Patch {
                id,
                value: format!("w{}-{n}", self.index),
            },
            _ => Attempt::Delete { id },
        }
    }

    async fn send(&self, attempt: &Attempt) -> anyhow::Result<(u16, serde_json::Value)> {
        match attempt {
            Attempt::Create => {
                let metadata = BTreeMap::from([("team".to_owned(), format!("t{}", self.index))]);
                self.api
                    .post_json("/v1/sandboxes", &create_body(TIMEOUT_S, &metadata))
                    .await
            }
            Attempt::Renew { id, at } => self.api.renew(id, &at.to_rfc3339()).await,
            Attempt::Patch { id, value } => {
                let patch = json!({"round": value, "never-set": null});
                self.api
                    .patch_json(&format!("/v1/sandboxes/{id}/metadata"), &patch)
                    .await
            }
            Attempt::Delete { id } => self.api.delete(&format!("/v1/sandboxes/{id}")).await,
        }
    }

    /// Records an answered write; any answer but the expected 2xx fails the test.
    fn record(
        &mut self,
        attempt: Attempt,
        (status, body): (u16, serde_json::Value),
    ) -> anyhow::Result<()> {
        let ledger = &mut self.ledger;
        match (attempt, status) {
            (Attempt::Create, 202) => {
                let id = body["id"].as_str().context("create without id")?.to_owned();
                ledger.adopt(id, expires_at(&body)?);
            }
            (Attempt::Renew { id, at }, 200) => {
                let acknowledged = expires_at(&body)?;
                if acknowledged != at {
                    bail!(
                        "worker {}: renew of {id} to {at} acknowledged as {acknowledged}",
                        self.index
                    );
                }
                ledger.expires.insert(id, acknowledged);
            }
            (Attempt::Patch { id, value }, 200) => {
                ledger.round.insert(id, value);
            }
            (Attempt::Delete { id }, 204) => {
                ledger.live.retain(|x| *x != id);
                ledger.deleted.insert(id);
            }
            (attempt, status) => bail!(
                "worker {}: {attempt:?} answered {status}: {body}",
                self.index
            ),
        }
        ledger.acked += 1;
        Ok(())
    }
}

fn expires_at(body: &serde_json::Value) -> anyhow::Result<DateTime<Utc>> {
    let text = body["expiresAt"]
        .as_str()
        .with_context(|| format!("no expiresAt in {body}"))?;
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}

/// Creates the initial sandboxes and deals them out round-robin.
async fn initial_ledgers(api: &Api) -> anyhow::Result<Vec<Ledger>> {
    let mut ledgers: Vec<Ledger> = (0..WORKERS).map(|_| Ledger::default()).collect();
    for n in 0..INITIAL {
        let metadata = BTreeMap::from([("team".to_owned(), "initial".to_owned())]);
        let created = api
            .create_sandbox(&create_body(TIMEOUT_S, &metadata))
            .await?;
        let expires = created
            .expires_at
            .context("initial sandbox without expiresAt")?;
        ledgers[n % WORKERS].adopt(created.id.to_string(), expires.as_utc());
    }
    Ok(ledgers)
}

/// Runs the workers, kills the server once enough writes were acknowledged,
/// and returns every worker's ledger.
async fn writes_then_kill(control: &mut ControlProcess) -> anyhow::Result<Vec<Ledger>> {
    let acks = Arc::new(AtomicUsize::new(0));
    // Whole seconds: the server keeps microseconds, so these round-trip exactly.
    let renew_base = Utc::now().trunc_subsecs(0) + chrono::Duration::hours(2);
    let mut tasks = Vec::new();
    for (index, ledger) in initial_ledgers(&control.api())
        .await?
        .into_iter()
        .enumerate()
    {
        let worker = Worker {
            index,
            api: control.api(),
            ledger,
            rng: Lcg(index as u64 + 7),
            acks: acks.clone(),
            renew_base,
        };
        tasks.push(tokio::spawn(worker.run()));
    }
    poll_until("enough acknowledged writes", LONG, || {
        let done = acks.load(Ordering::SeqCst) >= KILL_AFTER_ACKS;
        async move { Ok(done.then_some(())) }
    })
    .await?;
    control.kill_hard()?;
    let mut ledgers = Vec::new();
    for task in tasks {
        ledgers.push(
            tokio::time::timeout(LONG, task)
                .await
                .context("a worker did not stop after the kill")???,
        );
    }
    Ok(ledgers)
}

/// Waits until no sandbox is mid-provisioning or mid-deletion.
async fn settled(api: &Api) -> anyhow::Result<Listing> {
    poll_until(
        "reconciliation to settle (no Pending or Stopping sandbox)",
        LONG,
        || async {
            let listing = api.list_all("").await?;
            let busy =
                listing.count_in(SandboxState::Pending) + listing.count_in(SandboxState::Stopping);
            Ok((busy == 0).then_some(listing))
        },
    )
    .await
}

/// Checks one worker's acknowledged changes against the restarted server.
async fn check_ledger(
    api: &Api,
    ledger: &Ledger,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    for id in &ledger.deleted {
        if api.sandbox(id).await?.is_some() {
            problems.push(format!("{id}: acknowledged delete, but it is back"));
        }
    }
    for id in &ledger.live {
        let pending = ledger.pending_on(id);
        match api.sandbox(id).await? {
            None if matches!(pending, Some(Attempt::Delete { .. })) => {}
            None => problems.push(format!("{id}: acknowledged create, but it is gone")),
            Some(sandbox) => check_sandbox(&sandbox, ledger, pending, problems),
        }
    }
    Ok(())
}

/// `expiresAt` and metadata equal the last acknowledged values, or the
/// value of the one unacknowledged write on this sandbox.
fn check_sandbox(
    sandbox: &Sandbox,
    ledger: &Ledger,
    pending: Option<&Attempt>,
    problems: &mut Vec<String>,
) {
    let id = sandbox.id.to_string();
    let actual = sandbox.expires_at.map(|t| t.as_utc());
    let acked = ledger.expires.get(&id).copied();
    let in_flight = match pending {
        Some(Attempt::Renew { at, .. }) => Some(*at),
        _ => None,
    };
    if actual != acked && (in_flight.is_none() || actual != in_flight) {
        problems.push(format!(
            "{id}: expiresAt {actual:?}, last acknowledged {acked:?} (in flight {in_flight:?})"
        ));
    }
    let round = sandbox
        .metadata
        .as_ref()
        .and_then(|m| m.get("round"))
        .cloned();
    let acked = ledger.round.get(&id).cloned();
    let in_flight = match pending {
        Some(Attempt::Patch { value, .. }) => Some(value.clone()),
        _ => None,
    };
    if round != acked && (in_flight.is_none() || round != in_flight) {
        problems.push(format!(
            "{id}: metadata.round {round:?}, last acknowledged {acked:?} (in flight {in_flight:?})"
        ));
    }
}

/// Nothing duplicated or leaked: unique ids across pages, totals agree,
/// unknown ids at most one per unacknowledged create, engine == store.
fn check_listing(
    listing: &Listing,
    ledgers: &[Ledger],
    engine: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let ids = listing.ids();
    let distinct: BTreeSet<String> = ids.iter().cloned().collect();
    if distinct.len() != ids.len() {
        problems.push(format!(
            "the list repeats ids: {} items, {} distinct",
            ids.len(),
            distinct.len()
        ));
    }
    if listing.total_items != distinct.len() as u64 {
        problems.push(format!(
            "totalItems {} but {} distinct ids",
            listing.total_items,
            distinct.len()
        ));
    }
    let known: BTreeSet<String> = ledgers
        .iter()
        .flat_map(|l| l.created.iter().cloned())
        .collect();
    let unknown = distinct.difference(&known).count();
    let uncertain_creates = ledgers
        .iter()
        .filter(|l| matches!(l.unacknowledged, Some(Attempt::Create)))
        .count();
    if unknown > uncertain_creates {
        problems.push(format!(
            "{unknown} unknown sandboxes, but only {uncertain_creates} creates were unacknowledged"
        ));
    }
    if *engine != distinct {
        let only_engine: Vec<_> = engine.difference(&distinct).collect();
        let only_store: Vec<_> = distinct.difference(engine).collect();
        problems.push(format!("engine and store disagree: only in engine {only_engine:?}, only in store {only_store:?}"));
    }
    let not_running: Vec<_> = listing
        .items
        .iter()
        .filter(|s| s.status.state != SandboxState::Running)
        .collect();
    if !not_running.is_empty() {
        problems.push(format!(
            "sandboxes not Running after restart: {not_running:?}"
        ));
    }
}

/// Every sandbox with an expiry has its timer armed again.
async fn check_timers(
    api: &Api,
    listing: &Listing,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let with_expiry = listing
        .items
        .iter()
        .filter(|s| s.expires_at.is_some())
        .count();
    let timers = api.metric("sandgate_expiry_timers").await?;
    if timers != with_expiry as f64 {
        problems.push(format!(
            "sandgate_expiry_timers is {timers}, but {with_expiry} sandboxes have an expiresAt"
        ));
    }
    let running = api.metric("sandgate_sandboxes{state=\"Running\"}").await?;
    if running != listing.count_in(SandboxState::Running) as f64 {
        problems.push(format!(
            "sandgate_sandboxes{{state=\"Running\"}} is {running}, the list has {}",
            listing.count_in(SandboxState::Running)
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_and_duplicates_nothing() {
    let mut control = ControlProcess::start(ControlOptions::default())
        .await
        .unwrap();
    let ledgers = writes_then_kill(&mut control).await.unwrap();
    let acked: u64 = ledgers.iter().map(|l| l.acked).sum();
    assert!(
        acked >= KILL_AFTER_ACKS as u64,
        "only {acked} worker writes acknowledged"
    );
    control.restart().await.unwrap();
    let api = control.api();
    let listing = settled(&api).await.unwrap();
    let mut problems = Vec::new();
    for ledger in &ledgers {
        check_ledger(&api, ledger, &mut problems).await.unwrap();
    }
    let engine = engine_ids(&control.engine_state_path()).unwrap();
    check_listing(&listing, &ledgers, &engine, &mut problems);
    check_timers(&api, &listing, &mut problems).await.unwrap();
    let unacknowledged: Vec<_> = ledgers
        .iter()
        .filter_map(|l| l.unacknowledged.as_ref())
        .collect();
    eprintln!(
        "{acked} worker writes acknowledged before the kill; {} sandboxes after restart; \
         in flight at the kill: {unacknowledged:?}",
        listing.items.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems after restart ({acked} writes acknowledged, {} sandboxes listed, in flight at the kill: {unacknowledged:?}):\n{}\n--- log tail ---\n{}",
        problems.len(),
        listing.items.len(),
        problems.join("\n"),
        control.log_tail(30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_that_expired_while_down_is_deleted_on_restart() {
    let mut control = ControlProcess::start(ControlOptions::default())
        .await
        .unwrap();
    let api = control.api();
    let short = api
        .create_sandbox(&create_body(TIMEOUT_S, &BTreeMap::new()))
        .await
        .unwrap()
        .id
        .to_string();
    let long = api
        .create_sandbox(&create_body(TIMEOUT_S, &BTreeMap::new()))
        .await
        .unwrap();
    let long_id = long.id.to_string();
    for id in [&short, &long_id] {
        wait_running(&api, id).await.unwrap();
    }
    let expiry = Utc::now() + chrono::Duration::seconds(2);
    let (status, body) = api.renew(&short, &expiry.to_rfc3339()).await.unwrap();
    assert_eq!(status, 200, "renew: {body}");
    control.kill_hard().unwrap();
    let engine = engine_ids(&control.engine_state_path()).unwrap();
    assert!(
        engine.contains(&short),
        "the sandbox was already removed before the kill; the restart path is not exercised"
    );
    poll_until(
        "the wall clock to pass the expiry",
        Duration::from_secs(30),
        || async { Ok((Utc::now() > expiry).then_some(())) },
    )
    .await
    .unwrap();

    control.restart().await.unwrap();
    let api = control.api();
    poll_until(
        "the expired sandbox to be deleted",
        Duration::from_secs(10),
        || async { Ok(api.sandbox(&short).await?.is_none().then_some(())) },
    )
    .await
    .unwrap();
    let kept = api
        .sandbox(&long_id)
        .await
        .unwrap()
        .expect("the far-expiry sandbox is gone");
    assert_eq!(kept.expires_at, long.expires_at);
    assert_eq!(kept.status.state, SandboxState::Running);
    poll_until(
        "the engine to drop the expired sandbox",
        Duration::from_secs(10),
        || async {
            Ok((!engine_ids(&control.engine_state_path())?.contains(&short)).then_some(()))
        },
    )
    .await
    .unwrap();
    assert_eq!(api.metric("sandgate_expiry_timers").await.unwrap(), 1.0);
}

async fn wait_running(api: &Api, id: &str) -> anyhow::Result<()> {
    poll_until(&format!("{id} to be Running"), LONG, || async {
        let state = api.sandbox(id).await?.map(|s| s.status.state);
        Ok((state == Some(SandboxState::Running)).then_some(()))
    })
    .await
}
