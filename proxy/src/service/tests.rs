//! Tests of the state → action mapping and of which errors stay out of the error log.

use sandgate_shared::routes::SandboxRoute;

use super::*;

fn entry(state: SandboxState, address: Option<&str>) -> RouteEntry {
    let route = SandboxRoute {
        state,
        message: Some("why".into()),
        address: address.map(str::to_owned),
        secure_access_sha256: None,
    };
    RouteEntry::new("sb-1", &route)
}

fn outcome(state: SandboxState, address: Option<&str>) -> (&'static str, u16) {
    match action(&entry(state, address)) {
        Action::Forward => ("forward", 0),
        Action::Hold => ("hold", 0),
        Action::Reject(reject) => (reject.code, reject.status),
    }
}

#[test]
fn states_map_to_actions_and_statuses() {
    let ip = Some("10.0.0.1");
    assert_eq!(outcome(SandboxState::Running, ip), ("forward", 0));
    assert_eq!(
        outcome(SandboxState::Running, Some("pod.ns.svc")),
        ("forward", 0)
    );
    assert_eq!(
        outcome(SandboxState::Running, None),
        ("hold", 0),
        "no address yet"
    );
    assert_eq!(outcome(SandboxState::Pending, ip), ("hold", 0));
    assert_eq!(outcome(SandboxState::Resuming, ip), ("hold", 0));
    assert_eq!(
        outcome(SandboxState::Paused, ip),
        ("PROXY::SANDBOX_PAUSED", 503)
    );
    assert_eq!(
        outcome(SandboxState::Pausing, ip),
        ("PROXY::SANDBOX_PAUSED", 503)
    );
    assert_eq!(
        outcome(SandboxState::Failed, ip),
        ("PROXY::SANDBOX_FAILED", 502)
    );
    assert_eq!(
        outcome(SandboxState::Stopping, ip),
        ("PROXY::SANDBOX_GONE", 410)
    );
    assert_eq!(
        outcome(SandboxState::Terminated, ip),
        ("PROXY::SANDBOX_GONE", 410)
    );
}

#[test]
fn routine_errors_skip_the_error_log() {
    assert!(is_routine(&Error::new_up(ErrorType::ConnectRefused)));
    assert!(is_routine(&Error::new_up(ErrorType::ReadTimedout)));
    assert!(is_routine(&Error::new_down(ErrorType::ConnectionClosed)));
    assert!(is_routine(&Error::new_in(TOTAL_TIMEOUT)));
    assert!(
        !is_routine(&Error::new_up(ErrorType::ConnectionClosed)),
        "an upstream reset is worth a log line"
    );
    assert!(!is_routine(&Error::new_in(ErrorType::InternalError)));
}
