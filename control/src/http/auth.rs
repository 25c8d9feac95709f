//! API-key authentication (`OPEN-SANDBOX-API-KEY`), compared in constant time.

use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::error::{ApiError, codes};

/// The header carrying the key.
pub static API_KEY_HEADER: HeaderName =
    HeaderName::from_static(sandgate_shared::headers::LIFECYCLE_API_KEY);

/// The route stream, guarded by its own bearer token.
const ROUTE_STREAM: &str = "/internal/v1/routes";

/// Paths (prefixes, as OpenSandbox matches them) that never need the key.
const EXEMPT_PREFIXES: [&str; 6] = [
    "/health",
    "/version",
    "/docs",
    "/redoc",
    "/openapi.json",
    ROUTE_STREAM,
];

/// The configured key, kept only as a SHA-256 digest.
#[derive(Clone)]
pub struct ApiKeyAuth {
    digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuth")
            .field("enabled", &self.enabled())
            .finish()
    }
}

impl ApiKeyAuth {
    /// Auth with `key`; `None` (or blank) turns auth off.
    pub fn new(key: Option<&str>) -> Self {
        let digest = key.map(str::trim).filter(|k| !k.is_empty()).map(digest);
        Self { digest }
    }

    /// Whether a key is required.
    pub fn enabled(&self) -> bool {
        self.digest.is_some()
    }

    /// Checks a presented key.
    pub fn check(&self, presented: Option<&[u8]>) -> Result<(), ApiError> {
        let Some(expected) = &self.digest else {
            return Ok(());
        };
        let presented = presented.filter(|p| !p.iter().all(u8::is_ascii_whitespace));
        let Some(presented) = presented else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::MISSING_API_KEY,
                "Authentication credentials are missing. Provide API key via OPEN-SANDBOX-API-KEY header.",
            ));
        };
        if constant_time_eq(&digest_bytes(presented), expected) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::INVALID_API_KEY,
                "Authentication credentials are invalid. Check your API key and try again.",
            ))
        }
    }
}

fn digest(key: &str) -> [u8; 32] {
    digest_bytes(key.as_bytes())
}

fn digest_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares fixed-size digests without early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `path` is served without a key.
/// The server-proxy paths (`(/v1)?/sandboxes/{id}/proxy/{port}[/...]`,
/// without `..` segments) are exempt too: the edge proxy behind them checks
/// each sandbox's own access rules.
pub fn is_exempt(path: &str) -> bool {
    EXEMPT_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
        || sandgate_shared::route_key::parse_server_proxy_path(path).is_ok()
}

/// Rejects requests without the right key (CORS pre-flights pass). With
/// auth off, rejects `Host` values a DNS-rebinding page could send instead
/// (except on the route stream, which has its own bearer token).
pub async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !state.auth.enabled() && !request.uri().path().starts_with(ROUTE_STREAM) {
        return match super::web::check_host(&state.web, request.headers(), request.uri()) {
            Ok(()) => next.run(request).await,
            Err(error) => error.into_response(),
        };
    }
    if request.method() == Method::OPTIONS || is_exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request.headers().get(&API_KEY_HEADER).map(|v| v.as_bytes());
    match state.auth.check(presented) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_keys() {
        let auth = ApiKeyAuth::new(Some("secret"));
        assert!(auth.check(Some(b"secret")).is_ok());
        assert_eq!(
            auth.check(Some(b"wrong")).unwrap_err().code,
            codes::INVALID_API_KEY
        );
        assert_eq!(auth.check(None).unwrap_err().code, codes::MISSING_API_KEY);
        assert_eq!(
            auth.check(Some(b"  ")).unwrap_err().code,
            codes::MISSING_API_KEY
        );
        assert!(ApiKeyAuth::new(Some("  ")).check(None).is_ok());
        assert!(ApiKeyAuth::new(None).check(None).is_ok());
    }

    #[test]
    fn exempt_paths_match_by_prefix() {
        assert!(is_exempt("/health"));
        assert!(is_exempt("/docs/index.html"));
        assert!(!is_exempt("/v1/health"));
        assert!(!is_exempt("/metrics"));
        assert!(is_exempt("/v1/sandboxes/id/proxy/8080/x"));
        assert!(!is_exempt("/sandboxes/abc/proxy/8080/../other"));
        assert!(!is_exempt("/sandboxes/s1/proxy/not-a-port/x"));
    }
}
