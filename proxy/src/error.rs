//! Every answer the proxy gives on its own, in one place: status, stable
//! `PROXY::*` code and a human sentence naming the sandbox.
//!
//! Mapping of pingora errors (connect refused, timeouts, ...) to these
//! answers lives in [`Reject::from_proxy_error`], in the order linkerd's
//! `ServerRescue` uses: our own typed errors first, then connect failures,
//! then timeouts, then everything else.

use std::borrow::Cow;

use pingora::{Error, ErrorSource, ErrorType};
use sandgate_shared::api::SandboxState;
use sandgate_shared::route_key::RouteParseError;
use sandgate_shared::signing::SignatureError;

/// A request that ran over `timeouts.total_seconds` (raised by the service).
pub const TOTAL_TIMEOUT: ErrorType = ErrorType::new("SandgateTotalTimeout");

/// An answer the proxy writes itself instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code, `PROXY::...`.
    pub code: &'static str,
    /// One sentence for humans.
    pub message: Cow<'static, str>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u32>,
}

impl Reject {
    fn new(status: u16, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// No route table has arrived yet.
    pub fn not_ready() -> Self {
        Self::new(
            503,
            "PROXY::NOT_READY",
            "The proxy has not received its route table yet; retry shortly.",
        )
        .retry(1)
    }

    /// Nothing in the request names a sandbox.
    pub fn no_route(hint: &str) -> Self {
        Self::new(
            400,
            "PROXY::NO_ROUTE",
            format!("This request does not name a sandbox: {hint}."),
        )
    }

    /// A routing source was present but malformed.
    pub fn invalid_route(source: &str, error: &RouteParseError) -> Self {
        Self::new(
            400,
            "PROXY::INVALID_ROUTE",
            format!("Invalid route in {source}: {error}."),
        )
    }

    /// A routing header that is not text.
    pub fn unreadable_header(name: &str) -> Self {
        Self::new(
            400,
            "PROXY::INVALID_ROUTE",
            format!("The {name} header is not valid text."),
        )
    }

    /// A request whose framing the proxy refuses to forward (`what` says why).
    pub fn malformed(what: &'static str) -> Self {
        Self::new(
            400,
            "PROXY::BAD_REQUEST",
            format!("The request is not valid HTTP: {what}."),
        )
    }

    /// The edge key is required but absent.
    pub fn missing_edge_key(header: &str) -> Self {
        Self::new(
            401,
            "PROXY::MISSING_EDGE_KEY",
            format!("This proxy requires the {header} header."),
        )
    }

    /// The edge key does not match.
    pub fn invalid_edge_key(header: &str) -> Self {
        Self::new(
            401,
            "PROXY::INVALID_EDGE_KEY",
            format!("The {header} header does not hold the right key."),
        )
    }

    /// The sandbox is not in the route table.
    /// Whether this is the answer for an unknown sandbox.
    pub(crate) fn is_not_found(&self) -> bool {
        self.code == "PROXY::SANDBOX_NOT_FOUND"
    }

    pub fn not_found(id: &str) -> Self {
        // The id comes from the request: echo it only when it could be a real one.
        let plausible = id.len() <= sandgate_shared::ids::MAX_SANDBOX_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let message = if plausible {
            format!("Sandbox {id} does not exist.")
        } else {
            "The sandbox named in this request does not exist.".to_owned()
        };
        Self::new(404, "PROXY::SANDBOX_NOT_FOUND", message)
    }

    /// The static secure-access header was sent and is wrong.
    pub fn secure_access_mismatch(id: &str) -> Self {
        Self::new(
            401,
            "PROXY::SECURE_ACCESS_DENIED",
            format!("The OpenSandbox-Secure-Access token does not match sandbox {id}."),
        )
    }

    /// Neither the header nor a signed route was sent to a secured sandbox.
    pub fn signature_required(id: &str) -> Self {
        Self::new(
            401,
            "PROXY::SIGNATURE_REQUIRED",
            format!(
                "Sandbox {id} requires secure access: send the OpenSandbox-Secure-Access header or use a signed route."
            ),
        )
    }

    /// A signed route failed verification.
    pub fn signature(id: &str, error: &SignatureError) -> Self {
        match error {
            SignatureError::Expired => Self::new(
                401,
                "PROXY::SIGNATURE_EXPIRED",
                format!("The signed route to sandbox {id} has expired."),
            ),
            other => Self::new(
                401,
                "PROXY::SIGNATURE_INVALID",
                format!("The signed route to sandbox {id} is not valid: {other}."),
            ),
        }
    }

    /// A signed route arrived but the proxy has no verification keys.
    pub fn verifier_not_configured() -> Self {
        Self::new(
            503,
            "PROXY::VERIFIER_NOT_CONFIGURED",
            "Signed routes cannot be verified: the proxy has no secure_access keys.",
        )
    }

    /// The sandbox is still starting (answered after the pending wait).
    pub fn pending(id: &str) -> Self {
        Self::new(
            503,
            "PROXY::SANDBOX_PENDING",
            format!("Sandbox {id} is still starting; retry shortly."),
        )
        .retry(1)
    }

    /// The answer for a sandbox in `state` that cannot take traffic; `None`
    /// for states that forward (Running) or are held (Pending, Resuming).
    pub fn for_state(id: &str, state: SandboxState, message: Option<&str>) -> Option<Self> {
        let reason = message.map(|m| format!(" ({m})")).unwrap_or_default();
        Some(match state {
            SandboxState::Running | SandboxState::Pending | SandboxState::Resuming => return None,
            SandboxState::Paused => Self::new(
                503,
                "PROXY::SANDBOX_PAUSED",
                format!("Sandbox {id} is paused; resume it to reach it."),
            ),
            SandboxState::Pausing => Self::new(
                503,
                "PROXY::SANDBOX_PAUSED",
                format!("Sandbox {id} is pausing; resume it to reach it."),
            ),
            SandboxState::Failed => Self::new(
                502,
                "PROXY::SANDBOX_FAILED",
                format!("Sandbox {id} has failed{reason}."),
            ),
            SandboxState::Stopping => Self::new(
                410,
                "PROXY::SANDBOX_GONE",
                format!("Sandbox {id} is being deleted."),
            ),
            SandboxState::Terminated => Self::new(
                410,
                "PROXY::SANDBOX_GONE",
                format!("Sandbox {id} has terminated{reason}."),
            ),
        })
    }

    /// Maps a pingora error that ended a proxied request. `None` when the
    /// client is gone and nothing can be written.
    pub fn from_proxy_error(error: &Error, target: Option<(&str, u16)>) -> Option<Self> {
        let (id, port) = target.unwrap_or(("?", 0));
        let etype = error.etype();
        if let ErrorType::HTTPStatus(code) = etype {
            return Some(Self::new(
                *code,
                "PROXY::HTTP_ERROR",
                "The request could not be served.",
            ));
        }
        if *etype == TOTAL_TIMEOUT {
            return Some(Self::new(
                504,
                "PROXY::UPSTREAM_TIMEOUT",
                format!(
                    "The request to port {port} of sandbox {id} exceeded the total time limit."
                ),
            ));
        }
        Some(match (error.esource(), etype) {
            (
                ErrorSource::Downstream,
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed,
            ) => return None,
            (ErrorSource::Downstream, ErrorType::ReadTimedout | ErrorType::WriteTimedout) => {
                Self::new(
                    408,
                    "PROXY::CLIENT_TIMEOUT",
                    "The client was idle for too long.",
                )
            }
            (ErrorSource::Downstream, _) => {
                Self::new(400, "PROXY::BAD_REQUEST", "The request is not valid HTTP.")
            }
            (_, ErrorType::ConnectRefused) => Self::new(
                502,
                "PROXY::PORT_NOT_LISTENING",
                format!("Nothing listens on port {port} of sandbox {id}."),
            ),
            (_, ErrorType::ConnectTimedout) => Self::new(
                504,
                "PROXY::UPSTREAM_TIMEOUT",
                format!("Connecting to port {port} of sandbox {id} timed out."),
            ),
            (_, ErrorType::ReadTimedout | ErrorType::WriteTimedout) => Self::new(
                504,
                "PROXY::UPSTREAM_TIMEOUT",
                format!("Port {port} of sandbox {id} did not answer in time."),
            ),
            (
                _,
                ErrorType::ConnectNoRoute
                | ErrorType::ConnectError
                | ErrorType::SocketError
                | ErrorType::BindError,
            ) => Self::new(
                502,
                "PROXY::UPSTREAM_UNREACHABLE",
                format!("Cannot connect to port {port} of sandbox {id}."),
            ),
            (ErrorSource::Upstream, _) => Self::new(
                502,
                "PROXY::UPSTREAM_ERROR",
                format!(
                    "Port {port} of sandbox {id} broke the connection or sent an invalid response."
                ),
            ),
            _ => Self::new(
                500,
                "PROXY::INTERNAL",
                "The proxy failed to handle this request.",
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_state() {
        let status =
            |state| Reject::for_state("sb", state, Some("oom")).map(|r| (r.status, r.code));
        assert_eq!(status(SandboxState::Running), None);
        assert_eq!(status(SandboxState::Pending), None);
        assert_eq!(status(SandboxState::Resuming), None);
        assert_eq!(
            status(SandboxState::Paused),
            Some((503, "PROXY::SANDBOX_PAUSED"))
        );
        assert_eq!(
            status(SandboxState::Pausing),
            Some((503, "PROXY::SANDBOX_PAUSED"))
        );
        assert_eq!(
            status(SandboxState::Failed),
            Some((502, "PROXY::SANDBOX_FAILED"))
        );
        assert_eq!(
            status(SandboxState::Stopping),
            Some((410, "PROXY::SANDBOX_GONE"))
        );
        assert_eq!(
            status(SandboxState::Terminated),
            Some((410, "PROXY::SANDBOX_GONE"))
        );
        let paused = Reject::for_state("sb-1", SandboxState::Paused, None).unwrap();
        assert_eq!(
            paused.message,
            "Sandbox sb-1 is paused; resume it to reach it."
        );
        let failed =
            Reject::for_state("sb-1", SandboxState::Failed, Some("image pull failed")).unwrap();
        assert_eq!(
            failed.message,
            "Sandbox sb-1 has failed (image pull failed)."
        );
    }

    #[test]
    fn pending_and_not_ready_ask_to_retry() {
        assert_eq!(Reject::pending("sb").retry_after, Some(1));
        assert_eq!(Reject::not_ready().status, 503);
    }

    #[test]
    fn maps_proxy_errors() {
        let target = Some(("sb-1", 8080));
        let map = |source: fn(ErrorType) -> Box<Error>, etype| {
            Reject::from_proxy_error(&source(etype), target).map(|r| (r.status, r.code))
        };
        assert_eq!(
            map(Error::new_up, ErrorType::ConnectRefused),
            Some((502, "PROXY::PORT_NOT_LISTENING"))
        );
        assert_eq!(
            map(Error::new_up, ErrorType::ConnectTimedout),
            Some((504, "PROXY::UPSTREAM_TIMEOUT"))
        );
        assert_eq!(
            map(Error::new_up, ErrorType::ReadTimedout),
            Some((504, "PROXY::UPSTREAM_TIMEOUT"))
        );
        assert_eq!(
            map(Error::new_up, ErrorType::ConnectNoRoute),
            Some((502, "PROXY::UPSTREAM_UNREACHABLE"))
        );
        assert_eq!(
            map(Error::new_up, ErrorType::ConnectionClosed),
            Some((502, "PROXY::UPSTREAM_ERROR"))
        );
        assert_eq!(map(Error::new_down, ErrorType::ConnectionClosed), None);
        assert_eq!(
            map(Error::new_down, ErrorType::InvalidHTTPHeader),
            Some((400, "PROXY::BAD_REQUEST"))
        );
        assert_eq!(
            map(Error::new_in, TOTAL_TIMEOUT),
            Some((504, "PROXY::UPSTREAM_TIMEOUT"))
        );
        assert_eq!(
            map(Error::new_in, ErrorType::InternalError),
            Some((500, "PROXY::INTERNAL"))
        );
        let refused =
            Reject::from_proxy_error(&Error::new_up(ErrorType::ConnectRefused), target).unwrap();
        assert_eq!(
            refused.message,
            "Nothing listens on port 8080 of sandbox sb-1."
        );
    }
}
