//! Writing the proxy's own answers: JSON `{"code","message"}` for API
//! clients, a small self-contained HTML page for browsers.

use bytes::Bytes;
use http::HeaderValue;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::error::Reject;

/// Which body format the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFormat {
    /// `application/json` (the default: SDKs, curl).
    Json,
    /// `text/html`, when `Accept` prefers it (browsers).
    Html,
}

/// HTML when the `Accept` value gives `text/html` a higher weight than
/// `application/json`; JSON otherwise (also for `*/*` and no header).
pub(crate) fn body_format(accept: Option<&[u8]>) -> BodyFormat {
    let Some(text) = accept.and_then(super::route::header_text) else {
        return BodyFormat::Json;
    };
    let (mut html, mut json) = (0.0f32, 0.0f32);
    for range in text.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|value| value.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media.eq_ignore_ascii_case("text/html") {
            html = html.max(q);
        } else if media.eq_ignore_ascii_case("application/json") {
            json = json.max(q);
        }
    }
    if html > 0.0 && html > json {
        BodyFormat::Html
    } else {
        BodyFormat::Json
    }
}

/// The body and its content type.
pub(crate) fn render(reject: &Reject, format: BodyFormat) -> (Bytes, &'static str) {
    match format {
        BodyFormat::Json => {
            let body = serde_json::json!({ "code": reject.code, "message": reject.message });
            (Bytes::from(body.to_string()), "application/json")
        }
        BodyFormat::Html => (Bytes::from(html_page(reject)), "text/html; charset=utf-8"),
    }
}

fn html_page(reject: &Reject) -> String {
    let message = escape(&reject.message);
    let code = escape(reject.code);
    let status = reject.status;
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{status} · Sandgate</title><style>body{{font:16px/1.5 system-ui,sans-serif;\
max-width:36rem;margin:12vh auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}\
code{{color:#666}}</style></head><body><h1>{message}</h1>\
<p>HTTP {status} · <code>{code}</code></p></body></html>\n"
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Headers of every answer besides its type, length and `Retry-After`.
pub(crate) const FIXED_HEADERS: [(&str, &str); 2] = [
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
];

/// Writes `reject` to the client unless a response has already started.
/// The connection stays reusable: pingora drains any request body first.
pub(crate) async fn write(session: &mut Session, reject: &Reject) -> pingora::Result<()> {
    if session.response_written().is_some() {
        return Ok(());
    }
    let accept = session.req_header().headers.get(ACCEPT);
    let format = body_format(accept.map(HeaderValue::as_bytes));
    let (body, content_type) = render(reject, format);
    let mut header = ResponseHeader::build(reject.status, Some(6))?;
    header.insert_header(CONTENT_TYPE, content_type)?;
    header.insert_header(CONTENT_LENGTH, body.len())?;
    for (name, value) in FIXED_HEADERS {
        header.insert_header(name, value)?;
    }
    if let Some(seconds) = reject.retry_after {
        header.insert_header(RETRY_AFTER, seconds)?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(accept: &str) -> BodyFormat {
        body_format(Some(accept.as_bytes()))
    }

    #[test]
    fn browsers_get_html_and_clients_get_json() {
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(format_of(firefox), BodyFormat::Html);
        assert_eq!(format_of("*/*"), BodyFormat::Json);
        assert_eq!(format_of("application/json"), BodyFormat::Json);
        assert_eq!(format_of("application/json, text/html"), BodyFormat::Json);
        assert_eq!(
            format_of("text/html;q=0.5, application/json;q=0.9"),
            BodyFormat::Json
        );
        assert_eq!(
            format_of("application/json;q=0.5, TEXT/HTML"),
            BodyFormat::Html
        );
        assert_eq!(format_of("text/html;q=0"), BodyFormat::Json);
        assert_eq!(body_format(None), BodyFormat::Json);
    }

    #[test]
    fn renders_json_and_escaped_html() {
        let reject = Reject::for_state(
            "sb-1",
            sandgate_shared::api::SandboxState::Failed,
            Some("<oops> & \"x\""),
        )
        .unwrap();
        let (json, kind) = render(&reject, BodyFormat::Json);
        assert_eq!(kind, "application/json");
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["code"], "PROXY::SANDBOX_FAILED");
        assert_eq!(
            value["message"],
            "Sandbox sb-1 has failed (<oops> & \"x\")."
        );
        let (html, kind) = render(&reject, BodyFormat::Html);
        let html = std::str::from_utf8(&html).unwrap();
        assert!(kind.starts_with("text/html"));
        assert!(html.contains("&lt;oops&gt; &amp; &quot;x&quot;"), "{html}");
        assert!(!html.contains("<oops>"));
    }
}
