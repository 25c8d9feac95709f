//! Extractors that report rejections in the API's error envelope, naming
//! the offending field.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body parsed with field paths in errors (`resourceLimits.cpu: ...`).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::invalid(format!("request body: cannot be read: {e}")))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body; errors name the JSON path and the rule.
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
        let location = if path == "." {
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
