//! What create validation works with, shared by the request and the volume
//! rules without either importing the other: the server-side limits, one
//! field problem, and the set of names already seen.

use std::collections::HashSet;

use crate::error::codes;

/// One rule violation: the wire code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Error code (`SANDBOX::INVALID_PARAMETER`).
    pub code: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl FieldProblem {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn param(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMETER, message)
    }
}

/// Server-side limits that validation applies.
#[derive(Debug, Clone, Default)]
pub struct CreateRules {
    /// `server.max_sandbox_timeout_seconds`.
    pub max_timeout_seconds: Option<u64>,
    /// `storage.allowed_host_paths`.
    pub allowed_host_paths: Vec<String>,
}

/// Names already used, for duplicate detection.
pub(crate) type SeenNames = HashSet<String>;

/// Pushes a problem when `value` holds a NUL byte, which no engine accepts
/// (Docker fails deep inside with an unhelpful message); true when clean.
pub(crate) fn no_nul(field: &str, value: &str, problems: &mut Vec<FieldProblem>) -> bool {
    if value.contains('\0') {
        problems.push(FieldProblem::param(format!(
            "{field}: must not contain a NUL byte"
        )));
        return false;
    }
    true
}
