//! Extractors that report rejections in the API's error envelope, naming
//! the offending field.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body parsed with field paths in errors (`resourceLimits.cpu: ...`).
/// The request must declare a JSON content type: a web page can send
/// `text/plain` (or no type) across origins without a CORS pre-flight,
/// `application/json` it cannot.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(request.headers())?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::invalid(format!("request body: cannot be read: {e}")))?;
        parse_json_object(&bytes).map(ApiJson)
    }
}

/// Accepts `application/json` and `application/*+json`, with parameters.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers.get(header::CONTENT_TYPE);
    let essence = declared
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let json = essence.as_deref().is_some_and(|t| {
        t == "application/json"
            || t.strip_prefix("application/")
                .is_some_and(|sub| sub.ends_with("+json") && !sub.contains('/'))
    });
    if json {
        return Ok(());
    }
    let got = declared.map_or_else(
        || "none".to_owned(),
        |v| format!("{:?}", String::from_utf8_lossy(v.as_bytes())),
    );
    Err(ApiError::invalid(format!(
        "Content-Type: must be application/json (or an application/*+json type) for a JSON body (got {got})"
    )))
}

/// Parses a body that must be one JSON object (every endpoint taking
/// [`ApiJson`]): anything else is refused as such before its fields are read.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some() && first != Some(&b'{') {
        let syntax_ok = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        return Err(ApiError::invalid(if syntax_ok {
            "request body: must be a JSON object".to_owned()
        } else {
            "request body: is not valid JSON; send a JSON object".to_owned()
        }));
    }
    parse_json(bytes)
}

/// Parses a JSON body of any shape; errors name the JSON path and the rule.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "request body: required; send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        let location = if path == "." || syntax {
            "request body".to_owned()
        } else {
            path
        };
        ApiError::invalid(format!("{location}: {}", describe(&inner)))
    })?;
    deserializer.end().map_err(|e| {
        ApiError::invalid(format!(
            "request body: trailing characters after the JSON value ({e})"
        ))
    })?;
    Ok(value)
}

fn describe(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof => format!("is not valid JSON ({error})"),
        Category::Data | Category::Io => error.to_string(),
    }
}
