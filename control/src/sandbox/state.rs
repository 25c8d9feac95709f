//! The sandbox state machine: every legal transition, in one place.
//!
//! ```text
//! Pending ──provisioned──▶ Running ──pause──▶ Pausing ──paused──▶ Paused
//!                            ▲  ▲                │ pause failed      │
//!                            │  └────────────────┘                   │ resume
//!                            └──────resumed────── Resuming ◀─────────┘
//! Pending|Running|Paused|Terminated|Failed|Stopping ──stop──▶ Stopping ──stopped──▶ Terminated
//! Pending|Running|Pausing|Paused|Resuming ──exited(0)──▶ Terminated
//! any ──fail──▶ Failed
//! Pending|Pausing|Paused|Resuming|Terminated|Failed ──observed running──▶ Running
//! Running|Pausing|Resuming|Terminated|Failed ──observed paused──▶ Paused
//! ```
//!
//! The two `observed` moves are how Sandgate follows the engine (recovery
//! after a restart, and changes made behind its back): whatever the record
//! says, a sandbox whose container runs is `Running` and one whose container
//! is frozen is `Paused`, even if it was once recorded as ended.
//!
//! `stop` is also legal from `Pending` (a sandbox may be deleted while it is
//! still being provisioned), from `Terminated` and `Failed` (removing what is
//! left) and from `Stopping` itself (retrying a deletion that failed or was
//! interrupted by a crash).

use sandgate_shared::api::SandboxState;
use sandgate_shared::api::SandboxState::{
    Failed, Paused, Pausing, Pending, Resuming, Running, Stopping, Terminated,
};

use super::model::reason;

/// Something that moves a sandbox from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The runtime finished provisioning.
    Provisioned,
    /// A pause was requested.
    BeginPause,
    /// The runtime froze the sandbox.
    Paused,
    /// The runtime failed to freeze it; it still runs.
    PauseFailed,
    /// A resume was requested.
    BeginResume,
    /// The runtime unfroze it.
    Resumed,
    /// The runtime failed to unfreeze it; it stays frozen.
    ResumeFailed,
    /// Deletion (API or TTL) started.
    BeginStop,
    /// The runtime removed it.
    Stopped,
    /// The main process ended with exit code 0.
    ExitedCleanly,
    /// Provisioning failed, the process crashed, or the runtime lost it.
    Fail,
    /// Reconciliation found the runtime running it.
    ObservedRunning,
    /// Reconciliation found the runtime holding it frozen.
    ObservedPaused,
}

/// A transition that the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {transition:?} a sandbox in state {from}")]
pub struct IllegalTransition {
    /// The current state.
    pub from: SandboxState,
    /// What was attempted.
    pub transition: Transition,
}

/// The state after applying `transition` to `from`, or why it is illegal.
pub fn next(from: SandboxState, transition: Transition) -> Result<SandboxState, IllegalTransition> {
    use Transition as T;
    let to = match (transition, from) {
        (T::Provisioned, Pending) => Running,
        (T::BeginPause, Running) => Pausing,
        (T::Paused, Pausing) => Paused,
        (T::PauseFailed, Pausing) => Running,
        (T::BeginResume, Paused) => Resuming,
        (T::Resumed, Resuming) => Running,
        (T::ResumeFailed, Resuming) => Paused,
        (T::BeginStop, Pending | Running | Paused | Terminated | Failed | Stopping) => Stopping,
        (T::Stopped, Stopping) => Terminated,
        (T::ExitedCleanly, Pending | Running | Pausing | Paused | Resuming) => Terminated,
        (T::Fail, _) => Failed,
        (T::ObservedRunning, Pending | Pausing | Paused | Resuming | Terminated | Failed) => {
            Running
        }
        (T::ObservedPaused, Running | Pausing | Resuming | Terminated | Failed) => Paused,
        _ => return Err(IllegalTransition { from, transition }),
    };
    Ok(to)
}

/// Why a sandbox is being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteCause {
    /// `DELETE /sandboxes/{id}`.
    User,
    /// Its TTL passed.
    Expiry,
    /// It failed provisioning and its `PENDING_FAILURE_TTL` passed.
    FailureCleanup,
}

impl DeleteCause {
    /// The `status.reason` of the `Stopping` record.
    pub fn reason(self) -> &'static str {
        match self {
            Self::User => reason::USER_DELETE,
            Self::Expiry => reason::TTL_EXPIRY,
            Self::FailureCleanup => reason::PROVISIONING_ERROR,
        }
    }

    /// The `status.message` of the `Stopping` record.
    pub fn message(self) -> &'static str {
        match self {
            Self::User => "Deleting the sandbox as requested.",
            Self::Expiry => "Deleting the sandbox: its timeout expired.",
            Self::FailureCleanup => "Removing the sandbox that failed provisioning.",
        }
    }
}

/// Transition, reason and message for an exited main process.
pub fn exit_outcome(code: i64, oom_killed: bool) -> (Transition, &'static str, String) {
    if oom_killed {
        let message = format!("Sandbox container was killed by the OOM killer (exit code {code}).");
        (Transition::Fail, reason::OOM_KILLED, message)
    } else if code == 0 {
        (
            Transition::ExitedCleanly,
            reason::EXITED,
            "Sandbox container exited successfully.".to_owned(),
        )
    } else {
        (
            Transition::Fail,
            reason::EXITED_ERROR,
            format!("Sandbox container exited with code {code}."),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_TRANSITIONS: [Transition; 13] = [
        Transition::Provisioned,
        Transition::BeginPause,
        Transition::Paused,
        Transition::PauseFailed,
        Transition::BeginResume,
        Transition::Resumed,
        Transition::ResumeFailed,
        Transition::BeginStop,
        Transition::Stopped,
        Transition::ExitedCleanly,
        Transition::Fail,
        Transition::ObservedRunning,
        Transition::ObservedPaused,
    ];

    /// The complete table of legal moves; everything else must be rejected.
    fn expected(from: SandboxState, t: Transition) -> Option<SandboxState> {
        use Transition as T;
        Some(match (from, t) {
            (Pending, T::Provisioned) => Running,
            (Running, T::BeginPause) => Pausing,
            (Pausing, T::Paused) => Paused,
            (Pausing, T::PauseFailed) => Running,
            (Paused, T::BeginResume) => Resuming,
            (Resuming, T::Resumed) => Running,
            (Resuming, T::ResumeFailed) => Paused,
            (Pending | Running | Paused | Terminated | Failed | Stopping, T::BeginStop) => Stopping,
            (Stopping, T::Stopped) => Terminated,
            (Pending | Running | Pausing | Paused | Resuming, T::ExitedCleanly) => Terminated,
            (_, T::Fail) => Failed,
            (Pending | Pausing | Paused | Resuming | Terminated | Failed, T::ObservedRunning) => {
                Running
            }
            (Running | Pausing | Resuming | Terminated | Failed, T::ObservedPaused) => Paused,
            _ => return None,
        })
    }

    #[test]
    fn every_state_and_transition_pair_matches_the_table() {
        let mut legal = 0;
        for from in SandboxState::ALL {
            for t in ALL_TRANSITIONS {
                match (next(from, t), expected(from, t)) {
                    (Ok(to), Some(want)) => {
                        assert_eq!(to, want, "{from} + {t:?}");
                        legal += 1;
                    }
                    (Err(e), None) => assert_eq!(
                        e,
                        IllegalTransition {
                            from,
                            transition: t
                        }
                    ),
                    (got, want) => panic!("{from} + {t:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(
            legal, 38,
            "count of legal moves changed; update the diagram"
        );
    }

    #[test]
    fn pausing_a_paused_sandbox_is_illegal() {
        assert!(next(Paused, Transition::BeginPause).is_err());
        assert!(next(Running, Transition::BeginResume).is_err());
        assert!(next(Pending, Transition::BeginPause).is_err());
    }
}
