//! The create request's `lifecycle` field (OSEP-0020 hooks: `preStart` and
//! `periodic`), checked with OpenSandbox 1.1.1's schema rules. No runtime
//! here runs hooks (OpenSandbox's Docker provider refuses them too), so a
//! well-formed `lifecycle` is refused by [`check`] after the shape checks.

use std::collections::HashSet;

use serde::Deserialize;

use super::rules::FieldProblem;

/// Upper bound of `preStart.timeoutSeconds`.
pub const PRE_START_MAX_TIMEOUT: u64 = 10_800;
/// Upper bound of `periodic[].timeoutSeconds`.
pub const PERIODIC_MAX_TIMEOUT: u64 = 300;

/// `lifecycle`. Unknown fields are refused, as OpenSandbox does.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleBody {
    /// Run by execd before the entrypoint.
    pub pre_start: Option<PreStartHook>,
    /// Run by execd on a schedule while the sandbox runs; names are unique.
    pub periodic: Option<Vec<PeriodicHook>>,
}

/// `lifecycle.preStart`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreStartHook {
    /// The command; the first element names the program.
    #[schema(min_items = 1)]
    pub command: Vec<String>,
    /// 1 to 10800 seconds.
    #[schema(minimum = 1, maximum = 10800)]
    pub timeout_seconds: Option<u64>,
}

/// One `lifecycle.periodic` entry.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeriodicHook {
    /// Unique, non-blank name.
    #[schema(min_length = 1)]
    pub name: String,
    /// Cron expression or `@every <duration>`.
    #[schema(min_length = 1)]
    pub schedule: String,
    /// The command; the first element names the program.
    #[schema(min_items = 1)]
    pub command: Vec<String>,
    /// 1 to 300 seconds.
    #[schema(minimum = 1, maximum = 300)]
    pub timeout_seconds: Option<u64>,
}

/// Checks `lifecycle`'s shape, then refuses it: hooks are not run here.
pub fn check(body: &LifecycleBody, problems: &mut Vec<FieldProblem>) {
    let before = problems.len();
    if let Some(hook) = &body.pre_start {
        command("lifecycle.preStart.command", &hook.command, problems);
        timeout(
            "lifecycle.preStart.timeoutSeconds",
            hook.timeout_seconds,
            PRE_START_MAX_TIMEOUT,
            problems,
        );
    }
    let mut names = HashSet::new();
    for (i, hook) in body.periodic.iter().flatten().enumerate() {
        periodic(i, hook, &mut names, problems);
    }
    if problems.len() == before {
        problems.push(FieldProblem::param(
            "lifecycle: lifecycle hooks are not supported by the Docker runtime; omit lifecycle",
        ));
    }
}

fn periodic(
    i: usize,
    hook: &PeriodicHook,
    names: &mut HashSet<String>,
    problems: &mut Vec<FieldProblem>,
) {
    let field = format!("lifecycle.periodic[{i}]");
    let name = hook.name.trim();
    if name.is_empty() {
        problems.push(FieldProblem::param(format!(
            "{field}.name: must not be blank"
        )));
    } else if !names.insert(name.to_owned()) {
        problems.push(FieldProblem::param(format!(
            "{field}.name: {name:?} is used twice; periodic hook names must be unique"
        )));
    }
    if hook.schedule.trim().is_empty() {
        problems.push(FieldProblem::param(format!(
            "{field}.schedule: must not be blank"
        )));
    }
    command(&format!("{field}.command"), &hook.command, problems);
    timeout(
        &format!("{field}.timeoutSeconds"),
        hook.timeout_seconds,
        PERIODIC_MAX_TIMEOUT,
        problems,
    );
}

fn command(field: &str, command: &[String], problems: &mut Vec<FieldProblem>) {
    if command
        .first()
        .is_none_or(|program| program.trim().is_empty())
    {
        problems.push(FieldProblem::param(format!(
            "{field}: must be a non-empty list whose first element names the program"
        )));
    }
}

fn timeout(field: &str, value: Option<u64>, max: u64, problems: &mut Vec<FieldProblem>) {
    if let Some(seconds) = value.filter(|s| !(1..=max).contains(s)) {
        problems.push(FieldProblem::param(format!(
            "{field}: must be from 1 to {max} seconds (got {seconds})"
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(json: &str) -> Vec<String> {
        let body: LifecycleBody = serde_json::from_str(json).unwrap();
        let mut problems = Vec::new();
        check(&body, &mut problems);
        problems.into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn a_well_formed_lifecycle_is_refused_as_unsupported() {
        assert_eq!(
            problems_of(r#"{"preStart": {"command": ["true"], "timeoutSeconds": 60}}"#),
            ["lifecycle: lifecycle hooks are not supported by the Docker runtime; omit lifecycle"]
        );
        assert_eq!(problems_of("{}").len(), 1);
    }

    #[test]
    fn shape_rules_name_the_field() {
        let got = problems_of(
            r#"{"preStart": {"command": [" "], "timeoutSeconds": 10801},
                "periodic": [{"name": "a", "schedule": "@every 1m", "command": ["x"], "timeoutSeconds": 0},
                             {"name": " a ", "schedule": " ", "command": []}]}"#,
        );
        assert_eq!(
            got,
            [
                "lifecycle.preStart.command: must be a non-empty list whose first element names the program",
                "lifecycle.preStart.timeoutSeconds: must be from 1 to 10800 seconds (got 10801)",
                "lifecycle.periodic[0].timeoutSeconds: must be from 1 to 300 seconds (got 0)",
                "lifecycle.periodic[1].name: \"a\" is used twice; periodic hook names must be unique",
                "lifecycle.periodic[1].schedule: must not be blank",
                "lifecycle.periodic[1].command: must be a non-empty list whose first element names the program",
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = serde_json::from_str::<LifecycleBody>(r#"{"bogus": 1}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `bogus`"),
            "{error}"
        );
    }
}
