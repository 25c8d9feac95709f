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
//! Pending|Pausing|Paused|Resuming ──observed running──▶ Running   (reconciliation)
//! Running|Pausing|Resuming ──observed paused──▶ Paused            (reconciliation)
//! ```
//!
//! `stop` is also legal from `Pending` (a sandbox may be deleted while it is
//! still being provisioned), from `Terminated` and `Failed` (removing what is
//! left) and from `Stopping` itself (retrying a deletion that failed or was
//! interrupted by a crash).

use sandgate_shared::api::SandboxState;
use sandgate_shared::api::SandboxState::{
    Failed, Paused, Pausing, Pending, Resuming, Running, Stopping, Terminated,
};

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
        (T::ObservedRunning, Pending | Pausing | Paused | Resuming) => Running,
        (T::ObservedPaused, Running | Pausing | Resuming) => Paused,
        _ => return Err(IllegalTransition { from, transition }),
    };
    Ok(to)
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
            (Pending | Pausing | Paused | Resuming, T::ObservedRunning) => Running,
            (Running | Pausing | Resuming, T::ObservedPaused) => Paused,
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
            legal, 34,
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
