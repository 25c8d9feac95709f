//! SDK-reported events (`POST /v1/metrics/events`): the body OpenSandbox
//! 1.1.1 accepts and the SDK language read from `User-Agent`
//! (`OpenSandbox-Python-SDK/1.1.1`).

use serde::Deserialize;

/// The one event type defined so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    /// A sandbox create finished (ready or failed), timed by the SDK.
    #[serde(rename = "sandbox.create")]
    SandboxCreate,
}

/// The body of `POST /v1/metrics/events`. Unknown fields are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsEvent {
    /// `sandbox.create`.
    pub event_type: EventType,
    /// The sandbox, when the create got that far.
    pub sandbox_id: Option<String>,
    /// The image URI or snapshot label.
    pub image: Option<String>,
    /// Milliseconds from create start to ready or failure.
    #[schema(minimum = 0)]
    pub create_duration_ms: u64,
    /// Whether the create ended ready.
    pub success: bool,
}

/// SDK languages kept as a metric label; any other is `other`, so a
/// client cannot grow the label set.
const KNOWN_LANGUAGES: [&str; 8] = [
    "python",
    "go",
    "js",
    "javascript",
    "java",
    "kotlin",
    "csharp",
    "rust",
];

/// `(language, version)` from a `User-Agent` holding
/// `OpenSandbox-<Language>-SDK/<version>` (any case), else `unknown`.
pub fn sdk_from_user_agent(user_agent: Option<&str>) -> (String, String) {
    let unknown = || ("unknown".to_owned(), "unknown".to_owned());
    let Some(agent) = user_agent else {
        return unknown();
    };
    let lower = agent.to_ascii_lowercase();
    let prefix = "opensandbox-";
    let mut from = 0;
    while let Some(at) = lower[from..].find(prefix) {
        let start = from + at + prefix.len();
        let rest = &lower[start..];
        let len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        if len > 0 && rest[len..].starts_with("-sdk/") {
            let version_at = start + len + "-sdk/".len();
            let version: String = agent[version_at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            if !version.is_empty() {
                return (rest[..len].to_owned(), version);
            }
        }
        from = start;
    }
    unknown()
}

/// The metric label for a language: known ones as they are, else `other`.
pub fn language_label(language: &str) -> &'static str {
    KNOWN_LANGUAGES
        .into_iter()
        .find(|known| *known == language)
        .unwrap_or(if language == "unknown" {
            "unknown"
        } else {
            "other"
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_is_read_from_the_user_agent() {
        let got = |ua: &str| sdk_from_user_agent(Some(ua));
        assert_eq!(
            got("OpenSandbox-Python-SDK/1.1.1"),
            ("python".into(), "1.1.1".into())
        );
        assert_eq!(
            got("httpx/0.28 opensandbox-go-sdk/0.1.0 extra"),
            ("go".into(), "0.1.0".into())
        );
        assert_eq!(
            got("OpenSandbox-JS-SDK/"),
            ("unknown".into(), "unknown".into())
        );
        assert_eq!(got("curl/8.0"), ("unknown".into(), "unknown".into()));
        assert_eq!(
            sdk_from_user_agent(None),
            ("unknown".into(), "unknown".into())
        );
    }

    #[test]
    fn unknown_languages_share_one_label() {
        assert_eq!(language_label("python"), "python");
        assert_eq!(language_label("cobol"), "other");
        assert_eq!(language_label("unknown"), "unknown");
    }
}
