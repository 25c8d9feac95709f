//! `GET|PUT|PATCH|DELETE /sandboxes/{id}/networkpolicy`: a sandbox's egress
//! policy, kept by its egress sidecar. As OpenSandbox does, the body is
//! checked here (PUT: a policy; PATCH: a list of rules; DELETE: a list of
//! targets) and the request is then forwarded, as the server's own call,
//! to the sidecar's `/policy` on the egress port, whose answer is returned
//! as it is. Without a sidecar listening there the forwarding fails as any
//! other (502).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::AppState;
use super::forward::Target;
use super::server_proxy::client_address;
use crate::error::ApiError;

/// The largest policy body accepted.
const BODY_LIMIT: usize = 1024 * 1024;

/// The network-policy routes.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/sandboxes/{sandbox_id}/networkpolicy",
        get(handle).put(handle).patch(handle).delete(handle),
    )
}

async fn handle(
    State(state): State<AppState>,
    Path(sandbox_id): Path<String>,
    request: Request,
) -> Response {
    forward(&state, &sandbox_id, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn forward(
    state: &AppState,
    sandbox_id: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|e| ApiError::invalid(format!("request body: cannot be read: {e}")))?;
    check_body(&parts.method, &body)?;
    let client = client_address(&parts.extensions);
    let forwarder = &state.server_proxy.forwarder;
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("/policy?{query}"),
        None => "/policy".to_owned(),
    };
    let target = Target {
        sandbox_id,
        port: forwarder.settings().egress_port,
        path_and_query,
        location_prefix: None,
        internal: true,
        client,
    };
    let request = Request::from_parts(parts, Body::from(body));
    Ok(forwarder.forward(&state.service, target, request).await?)
}

/// The body rules of OpenSandbox's models, checked before anything else.
fn check_body(method: &Method, body: &Bytes) -> Result<(), ApiError> {
    let value = || -> Result<Value, ApiError> { super::extract::parse_json(body) };
    let checked = match *method {
        Method::PUT => policy(&value()?),
        Method::PATCH => list(&value()?, "", rule),
        Method::DELETE => list(&value()?, "", |v, at| string(v, at, false)),
        _ => Ok(()),
    };
    checked.map_err(ApiError::invalid)
}

/// `{defaultAction?: string|null, egress?: [rule]}` (also `default_action`).
fn policy(value: &Value) -> Result<(), String> {
    let Value::Object(fields) = value else {
        return Err(format!(
            "request body: must be a JSON object (got {})",
            kind(value)
        ));
    };
    for key in ["defaultAction", "default_action"] {
        match fields.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => string(v, key, false)?,
        }
    }
    match fields.get("egress") {
        None => Ok(()),
        Some(egress) => list(egress, "egress", rule),
    }
}

/// `{action: string, target: string (at least one character)}`.
fn rule(value: &Value, at: &str) -> Result<(), String> {
    let Value::Object(fields) = value else {
        return Err(format!("{at}: must be a JSON object (got {})", kind(value)));
    };
    for (key, non_empty) in [("action", false), ("target", true)] {
        let field = format!("{at}.{key}");
        let v = fields
            .get(key)
            .ok_or_else(|| format!("{field}: required"))?;
        string(v, &field, non_empty)?;
    }
    Ok(())
}

fn list(
    value: &Value,
    at: &str,
    item: impl Fn(&Value, &str) -> Result<(), String>,
) -> Result<(), String> {
    let Value::Array(items) = value else {
        let name = if at.is_empty() { "request body" } else { at };
        return Err(format!(
            "{name}: must be a JSON array (got {})",
            kind(value)
        ));
    };
    items
        .iter()
        .enumerate()
        .try_for_each(|(i, v)| item(v, &format!("{at}[{i}]")))
}

fn string(value: &Value, at: &str, non_empty: bool) -> Result<(), String> {
    match value {
        Value::String(s) if non_empty && s.is_empty() => {
            Err(format!("{at}: must have at least 1 character"))
        }
        Value::String(_) => Ok(()),
        other => Err(format!("{at}: must be a string (got {})", kind(other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(method: Method, body: Value) -> Result<(), String> {
        check_body(&method, &Bytes::from(body.to_string())).map_err(|e| e.message)
    }

    #[test]
    fn accepts_what_opensandbox_accepts() {
        let rule = json!({"action": "allow", "target": "*.example.com", "extra": 1});
        assert_eq!(check(Method::PUT, json!({})), Ok(()));
        assert_eq!(
            check(
                Method::PUT,
                json!({"defaultAction": null, "egress": [rule]})
            ),
            Ok(())
        );
        assert_eq!(
            check(Method::PUT, json!({"default_action": "whatever"})),
            Ok(())
        );
        assert_eq!(check(Method::PATCH, json!([rule])), Ok(()));
        assert_eq!(check(Method::PATCH, json!([])), Ok(()));
        assert_eq!(check(Method::DELETE, json!(["example.com", ""])), Ok(()));
        assert_eq!(
            check_body(&Method::GET, &Bytes::new()).map_err(|e| e.message),
            Ok(())
        );
    }

    #[test]
    fn names_the_field_and_rule_it_breaks() {
        let cases = [
            (
                Method::PUT,
                json!([]),
                "request body: must be a JSON object (got an array)",
            ),
            (
                Method::PUT,
                json!({"egress": null}),
                "egress: must be a JSON array (got null)",
            ),
            (
                Method::PUT,
                json!({"defaultAction": 1}),
                "defaultAction: must be a string (got a number)",
            ),
            (
                Method::PUT,
                json!({"egress": [{"action": "deny", "target": ""}]}),
                "egress[0].target: must have at least 1 character",
            ),
            (
                Method::PATCH,
                json!({"action": "deny"}),
                "request body: must be a JSON array (got an object)",
            ),
            (
                Method::PATCH,
                json!([{"target": "a.com"}]),
                "[0].action: required",
            ),
            (
                Method::PATCH,
                json!([["allow", "a.com"]]),
                "[0]: must be a JSON object (got an array)",
            ),
            (
                Method::DELETE,
                json!(["a.com", 2]),
                "[1]: must be a string (got a number)",
            ),
        ];
        for (method, body, expected) in cases {
            assert_eq!(
                check(method.clone(), body.clone()),
                Err(expected.to_owned()),
                "{method} {body}"
            );
        }
        let empty = check_body(&Method::DELETE, &Bytes::new()).unwrap_err();
        assert!(
            empty.message.starts_with("request body: required"),
            "{}",
            empty.message
        );
    }
}
