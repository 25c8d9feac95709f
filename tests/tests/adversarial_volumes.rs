//! The host-volume race against the real `sandgate-control` binary on Docker
//! (issue 10, defect 3): sandbox code that can write into an allowed host
//! directory swaps a subdirectory for a symlink to a directory outside the
//! allow-list while other sandboxes are created with that subdirectory as
//! `host.path` or `subPath`. Whatever the timing, a create is refused (400 or
//! `Failed`) or mounts the real subdirectory; it never mounts the outside one.
//!
//! Needs `target/debug/sandgate-control` (`cargo build --workspace`) and the
//! images from `scripts/build-test-images.sh`; the control plane runs as root
//! in the engine's mount namespace (as host volumes require).

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sandgate_tests::{ControlOptions, ControlProcess, DockerInstance, RuntimeKind, poll_until};
use serde_json::{Value, json};

/// Creates attempted while the swap runs.
const CREATES: usize = 30;
/// How long each state of the swapped name lasts.
const SWAP_EVERY: Duration = Duration::from_millis(20);
/// Deadline of one sandbox reaching a settled state.
const SETTLE: Duration = Duration::from_secs(60);

/// Exchanges two names (`renameat2(RENAME_EXCHANGE)`, so both always exist)
/// every [`SWAP_EVERY`] until stopped; counts the swaps.
struct Swapper {
    stop: mpsc::Sender<()>,
    swaps: Arc<(Mutex<u64>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

impl Swapper {
    fn start(a: PathBuf, b: PathBuf) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let swaps = Arc::new((Mutex::new(0), Condvar::new()));
        let counter = swaps.clone();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(SWAP_EVERY) {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &a,
                    rustix::fs::CWD,
                    &b,
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
                *counter.0.lock().unwrap() += 1;
                counter.1.notify_all();
            }
        });
        Self {
            stop,
            swaps,
            thread,
        }
    }

    /// Waits (at most 5 s) for the next swap: refused creates take no time,
    /// and must not all land in the same state.
    fn wait_for_swap(&self) {
        let (count, changed) = &*self.swaps;
        let seen = *count.lock().unwrap();
        let (guard, timeout) = changed
            .wait_timeout_while(count.lock().unwrap(), Duration::from_secs(5), |n| {
                *n == seen
            })
            .unwrap();
        drop(guard);
        assert!(!timeout.timed_out(), "the swapper stopped swapping");
    }

    fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.thread.join().unwrap();
        *self.swaps.0.lock().unwrap()
    }
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn create_body(volume: Value) -> Value {
    json!({
        "image": {"uri": "sandgate-test/busybox:latest"},
        "entrypoint": ["sleep", "600"],
        "resourceLimits": {"cpu": "250m", "memory": "64Mi"},
        "timeout": 600,
        "volumes": [volume],
    })
}

/// What a create ended as.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Refused,
    Inside,
    Escaped,
}

/// Which directory the container of `id` has at `/data`, seen from the host.
fn mounted(id: &str) -> Outcome {
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &format!("sandbox-{id}")]);
    let data = Path::new("/proc").join(pid).join("root/data");
    if data.join("outside-marker").exists() {
        Outcome::Escaped
    } else {
        assert!(
            data.join("inside-marker").exists(),
            "{id} mounted neither directory"
        );
        Outcome::Inside
    }
}

async fn attempt(control: &ControlProcess, volume: Value) -> anyhow::Result<Outcome> {
    let api = control.api();
    let (status, created) = api.post_json("/v1/sandboxes", &create_body(volume)).await?;
    if status == 400 {
        return Ok(Outcome::Refused);
    }
    anyhow::ensure!(status == 202, "create answered {status}: {created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let state = poll_until(&format!("{id} to settle"), SETTLE, || async {
        let (_, sandbox) = api.get(&format!("/v1/sandboxes/{id}")).await?;
        let state = sandbox["status"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(matches!(state.as_str(), "Running" | "Failed").then_some(state))
    })
    .await?;
    let outcome = if state == "Running" {
        mounted(&id)
    } else {
        Outcome::Refused
    };
    let (status, _) = api.delete(&format!("/v1/sandboxes/{id}")).await?;
    anyhow::ensure!(status == 204, "delete of {id} answered {status}");
    Ok(outcome)
}

#[tokio::test]
async fn swapping_a_directory_for_a_symlink_never_mounts_outside_the_allow_list() {
    let instance = DockerInstance::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(allowed.join("victim")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(allowed.join("victim/inside-marker"), "in").unwrap();
    std::fs::write(outside.join("outside-marker"), "out").unwrap();
    std::os::unix::fs::symlink(&outside, allowed.join("swap")).unwrap();
    let allowed_text = allowed.to_str().unwrap().to_owned();
    let control = ControlProcess::start(ControlOptions {
        runtime: RuntimeKind::Docker,
        instance: Some(instance.name().to_owned()),
        extra_toml: format!(
            "[storage]\nallowed_host_paths = [{}]\n",
            serde_json::to_string(&allowed_text).unwrap()
        ),
        ..ControlOptions::default()
    })
    .await
    .unwrap();

    let swapper = Swapper::start(allowed.join("victim"), allowed.join("swap"));
    let mut outcomes = Vec::new();
    for n in 0..CREATES {
        let volume = if n % 2 == 0 {
            json!({"name": "data", "mountPath": "/data", "host": {"path": format!("{allowed_text}/victim")}})
        } else {
            json!({"name": "data", "mountPath": "/data", "subPath": "victim", "host": {"path": allowed_text}})
        };
        let outcome = attempt(&control, volume)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", control.log_tail(40)));
        if outcome == Outcome::Refused {
            swapper.wait_for_swap();
        }
        outcomes.push(outcome);
    }
    let swaps = swapper.stop();
    let count = |o: Outcome| outcomes.iter().filter(|x| **x == o).count();
    let (escaped, inside) = (count(Outcome::Escaped), count(Outcome::Inside));
    eprintln!(
        "{CREATES} creates, {swaps} swaps: {escaped} escaped, {inside} inside, {} refused",
        count(Outcome::Refused)
    );
    assert_eq!(
        escaped, 0,
        "{escaped} of {CREATES} creates mounted the directory outside the allow-list"
    );
    assert!(
        inside > 0,
        "no create mounted anything: the race was not exercised"
    );
    assert!(
        instance.containers().unwrap().is_empty(),
        "every sandbox was deleted"
    );
}
