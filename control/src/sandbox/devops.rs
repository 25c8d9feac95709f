//! OpenSandbox's plain-text ("devops") diagnostics, as `osb devops logs |
//! events | inspect | summary` read them:
//!
//! - **logs**: the container's output only (timestamped lines), the last
//!   `tail` lines, optionally only those of the last `since`; `(no logs)`
//!   when there are none.
//! - **events**: the durable status history and the engine's process
//!   milestones, merged by time, the most recent `limit`; `(no events)`
//!   when there are none.
//! - **inspect**: the runtime's description of the engine object (never
//!   its environment values).
//! - **summary**: the three above framed under one header. A part that
//!   cannot be collected is replaced by a fixed line; its cause is logged,
//!   never sent. A missing sandbox is a 404, as everywhere.
//!
//! Query values out of range answer 400 naming the field and its rule,
//! like every other Sandgate validation error (OpenSandbox answers 422).

use std::time::Duration;

use sandgate_shared::ids::SandboxId;
use sandgate_shared::time::Timestamp;

use super::diagnostics::{history_line, runtime_line};
use super::error::{Operation, SandboxError};
use super::query::parse_number;
use super::rules::FieldProblem;
use super::service::SandboxService;
use crate::error::error_chain;
use crate::runtime::{LogWindow, RuntimeError};

/// The text of logs without any output.
pub const NO_LOGS: &str = "(no logs)";
/// The text of events when there are none.
pub const NO_EVENTS: &str = "(no events)";
/// The window of `since` values that do not parse.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(10 * 60);

/// An integer query parameter: its name, range and default.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The parameter's name.
    pub name: &'static str,
    /// Smallest accepted value.
    pub min: u32,
    /// Largest accepted value.
    pub max: u32,
    /// The value when absent.
    pub default: u32,
}

impl Bounds {
    /// `value` when it is an integer within the bounds; otherwise records
    /// a problem naming the field and its rule, and returns the default.
    fn parse(self, value: &str, problems: &mut Vec<FieldProblem>) -> u32 {
        parse_number(self.name, value, self.min, self.max).unwrap_or_else(|problem| {
            problems.push(problem);
            self.default
        })
    }
}

/// `tail` of the plain-text logs.
pub const LOGS_TAIL: Bounds = Bounds {
    name: "tail",
    min: 1,
    max: 10_000,
    default: 100,
};
/// `limit` of the plain-text events.
pub const EVENTS_LIMIT: Bounds = Bounds {
    name: "limit",
    min: 1,
    max: 500,
    default: 50,
};
/// `tail` of the summary.
pub const SUMMARY_TAIL: Bounds = Bounds {
    default: 50,
    ..LOGS_TAIL
};
/// `event_limit` of the summary.
pub const SUMMARY_EVENT_LIMIT: Bounds = Bounds {
    name: "event_limit",
    default: 20,
    ..EVENTS_LIMIT
};

fn pairs(raw: Option<&str>) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
}

fn finish<T>(value: T, problems: Vec<FieldProblem>) -> Result<T, SandboxError> {
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(SandboxError::Invalid(problems))
    }
}

/// The query of the plain-text logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogsQuery {
    /// At most this many of the last lines.
    pub tail: u32,
    /// Only the output of this last stretch of time.
    pub since: Option<Duration>,
}

impl LogsQuery {
    /// Parses `tail` (1..10000, default 100) and `since` (`30s`, `10m`,
    /// `1h`, `2d`; anything else that is not empty means 10 minutes).
    pub fn parse(raw: Option<&str>) -> Result<Self, SandboxError> {
        let mut query = Self {
            tail: LOGS_TAIL.default,
            since: None,
        };
        let mut problems = Vec::new();
        for (key, value) in pairs(raw) {
            match key.as_ref() {
                "tail" => query.tail = LOGS_TAIL.parse(&value, &mut problems),
                "since" => query.since = parse_since(&value),
                _ => {}
            }
        }
        finish(query, problems)
    }
}

/// `since`: `<digits><s|m|h|d>`; empty means no limit, anything else that
/// does not parse means [`DEFAULT_SINCE`], as in OpenSandbox.
pub fn parse_since(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    let seconds = match unit.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Some(DEFAULT_SINCE),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(DEFAULT_SINCE);
    }
    // Digits only, so the parse fails only on overflow: "forever".
    let count = digits.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(count.saturating_mul(seconds)))
}

/// The query of the plain-text events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsQuery {
    /// At most this many of the most recent events.
    pub limit: u32,
}

impl EventsQuery {
    /// Parses `limit` (1..500, default 50).
    pub fn parse(raw: Option<&str>) -> Result<Self, SandboxError> {
        let mut query = Self {
            limit: EVENTS_LIMIT.default,
        };
        let mut problems = Vec::new();
        for (key, value) in pairs(raw) {
            if key == "limit" {
                query.limit = EVENTS_LIMIT.parse(&value, &mut problems);
            }
        }
        finish(query, problems)
    }
}

/// The query of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryQuery {
    /// Log lines (1..10000, default 50).
    pub tail: u32,
    /// Events (1..500, default 20).
    pub event_limit: u32,
}

impl SummaryQuery {
    /// Parses `tail` and `event_limit`, reporting every bad one at once.
    pub fn parse(raw: Option<&str>) -> Result<Self, SandboxError> {
        let mut query = Self {
            tail: SUMMARY_TAIL.default,
            event_limit: SUMMARY_EVENT_LIMIT.default,
        };
        let mut problems = Vec::new();
        for (key, value) in pairs(raw) {
            match key.as_ref() {
                "tail" => query.tail = SUMMARY_TAIL.parse(&value, &mut problems),
                "event_limit" => {
                    query.event_limit = SUMMARY_EVENT_LIMIT.parse(&value, &mut problems);
                }
                _ => {}
            }
        }
        finish(query, problems)
    }
}

/// Width of the summary's outer rules.
const HEADER_RULE: usize = 72;
/// Width of the rules around each section title.
const SECTION_RULE: usize = 40;

impl SandboxService {
    /// The container's output within the query's window, or [`NO_LOGS`].
    pub async fn plain_logs(&self, id: &str, query: LogsQuery) -> Result<String, SandboxError> {
        let record = self.get(id)?;
        let window = LogWindow {
            tail: query.tail as usize,
            since: query.since.map(|ago| self.ago(ago)),
        };
        match self.inner.runtime.logs(&record.id, window).await {
            Ok((text, _)) if !text.is_empty() => Ok(text),
            // No container (yet, or any more) has no output either.
            Ok(_) | Err(RuntimeError::NotFound { .. }) => Ok(NO_LOGS.to_owned()),
            Err(source) => Err(self.query_failed("reading the output of", &record.id, source)),
        }
    }

    /// The status history and the engine's process events, oldest first,
    /// the most recent `limit`; or [`NO_EVENTS`].
    pub async fn plain_events(&self, id: &str, query: EventsQuery) -> Result<String, SandboxError> {
        let record = self.get(id)?;
        let history = self.inner.store.history(&record.id).await?;
        let process = match self.inner.runtime.process_events(&record.id).await {
            Ok(events) => events,
            Err(RuntimeError::NotFound { .. }) => Vec::new(),
            Err(source) => {
                return Err(self.query_failed("reading the events of", &record.id, source));
            }
        };
        let mut lines: Vec<(Option<Timestamp>, String)> = history
            .iter()
            .map(|e| (Some(e.at), history_line(e)))
            .chain(process.iter().map(|e| (e.at, runtime_line(e))))
            .collect();
        // Stable: equal times keep history before engine events; undated
        // standing facts ("container is paused") come last.
        lines.sort_by_key(|(at, _)| (at.is_none(), *at));
        let skip = lines.len().saturating_sub(query.limit as usize);
        if lines.len() == skip {
            return Ok(NO_EVENTS.to_owned());
        }
        Ok(lines
            .into_iter()
            .skip(skip)
            .map(|(_, line)| line + "\n")
            .collect())
    }

    /// The runtime's description of the sandbox's engine object. When the
    /// engine holds nothing for it (still pending, or lost), says so.
    pub async fn inspect(&self, id: &str) -> Result<String, SandboxError> {
        let record = self.get(id)?;
        match self.inner.runtime.inspect(&record.id).await {
            Ok(text) => Ok(text),
            Err(RuntimeError::NotFound { .. }) => Ok(format!(
                "(no container: the runtime holds nothing for sandbox {}; its state is {})\n",
                record.id, record.status.state
            )),
            Err(source) => Err(self.query_failed("inspecting", &record.id, source)),
        }
    }

    /// Inspect, events and logs under one header. A part that fails with
    /// anything but "no such sandbox" is replaced by
    /// `[error] Failed to collect {part} diagnostics.`; the cause is logged.
    pub async fn summary(&self, id: &str, query: SummaryQuery) -> Result<String, SandboxError> {
        let record = self.get(id)?;
        let id = record.id.to_string();
        let events = EventsQuery {
            limit: query.event_limit,
        };
        let logs = LogsQuery {
            tail: query.tail,
            since: None,
        };
        let (inspect, events, logs) = tokio::join!(
            self.inspect(&id),
            self.plain_events(&id, events),
            self.plain_logs(&id, logs),
        );
        let sections = [
            ("INSPECT".to_owned(), part(&record.id, "inspect", inspect)?),
            ("EVENTS".to_owned(), part(&record.id, "event", events)?),
            (
                format!("LOGS (last {} lines)", query.tail),
                part(&record.id, "log", logs)?,
            ),
        ];
        let header_rule = "=".repeat(HEADER_RULE);
        let section_rule = "-".repeat(SECTION_RULE);
        let mut lines = vec![
            header_rule.clone(),
            "SANDBOX DIAGNOSTICS SUMMARY".to_owned(),
            format!("Sandbox ID: {id}"),
            header_rule,
        ];
        for (title, body) in sections {
            lines.extend([
                String::new(),
                section_rule.clone(),
                title,
                section_rule.clone(),
                body.trim_end_matches('\n').to_owned(),
            ]);
        }
        let mut text = lines.join("\n");
        text.push('\n');
        Ok(text)
    }

    /// `now - ago`, or the earliest instant when that is before it.
    fn ago(&self, ago: Duration) -> Timestamp {
        let now = self.clock().now().as_utc();
        let at = chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| now.checked_sub_signed(ago))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        Timestamp::from_utc(at)
    }

    fn query_failed(&self, action: &str, id: &SandboxId, source: RuntimeError) -> SandboxError {
        self.runtime_failed(Operation::Query, format!("{action} sandbox {id}"), source)
    }
}

/// One summary part: its text, the fixed error line in its place, or the
/// error itself when the sandbox is gone.
fn part(
    id: &SandboxId,
    name: &str,
    collected: Result<String, SandboxError>,
) -> Result<String, SandboxError> {
    match collected {
        Ok(text) => Ok(text),
        Err(error @ (SandboxError::NotFound { .. } | SandboxError::Invalid(_))) => Err(error),
        Err(error) => {
            tracing::warn!(
                sandbox.id = %id,
                error = %error_chain(&error),
                "summary: cannot collect the {name} diagnostics"
            );
            Ok(format!("[error] Failed to collect {name} diagnostics."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(error: SandboxError) -> Vec<String> {
        match error {
            SandboxError::Invalid(problems) => problems.into_iter().map(|p| p.message).collect(),
            other => panic!("not a validation error: {other}"),
        }
    }

    #[test]
    fn since_takes_seconds_minutes_hours_days_and_defaults_to_ten_minutes() {
        let minutes = |m: u64| Some(Duration::from_secs(m * 60));
        assert_eq!(parse_since("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_since("10m"), minutes(10));
        assert_eq!(parse_since(" 1h "), minutes(60));
        assert_eq!(parse_since("2d"), minutes(2 * 24 * 60));
        assert_eq!(parse_since("2D"), minutes(2 * 24 * 60));
        for bad in [
            "yesterday",
            "10",
            "m",
            "-5m",
            "1.5h",
            "10w",
            "5 m",
            "5é",
            "é",
        ] {
            assert_eq!(parse_since(bad), Some(DEFAULT_SINCE), "{bad:?}");
        }
        assert_eq!(parse_since(""), None);
        assert_eq!(
            parse_since("99999999999999999999999d"),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            LogsQuery::parse(None).unwrap(),
            LogsQuery {
                tail: 100,
                since: None
            }
        );
        assert_eq!(EventsQuery::parse(Some("x=1")).unwrap().limit, 50);
        assert_eq!(
            SummaryQuery::parse(None).unwrap(),
            SummaryQuery {
                tail: 50,
                event_limit: 20
            }
        );
        assert_eq!(LogsQuery::parse(Some("tail=10000")).unwrap().tail, 10_000);
        assert_eq!(EventsQuery::parse(Some("limit=1")).unwrap().limit, 1);
        assert_eq!(
            problems(LogsQuery::parse(Some("tail=0")).unwrap_err()),
            [r#"tail: "0" must be an integer from 1 to 10000"#]
        );
        assert_eq!(
            problems(EventsQuery::parse(Some("limit=501")).unwrap_err()),
            [r#"limit: "501" must be an integer from 1 to 500"#]
        );
        assert_eq!(
            problems(SummaryQuery::parse(Some("tail=abc&event_limit=-1")).unwrap_err()),
            [
                r#"tail: "abc" must be an integer from 1 to 10000"#,
                r#"event_limit: "-1" must be an integer from 1 to 500"#
            ]
        );
    }
}
