//! The admin listener: `GET /health` (liveness), `GET /ready` (a route
//! table has arrived) and `GET /metrics` (Prometheus text).

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::metrics::Metrics;
use crate::routes::RouteStore;

/// The admin HTTP application.
#[derive(Debug)]
pub struct Admin {
    store: Arc<RouteStore>,
    metrics: Arc<Metrics>,
}

impl Admin {
    /// Serves health and metrics of `store` and `metrics`.
    pub fn new(store: Arc<RouteStore>, metrics: Arc<Metrics>) -> Self {
        Self { store, metrics }
    }

    /// The answer to `method path`.
    pub fn answer(&self, method: &Method, path: &str) -> Response<Vec<u8>> {
        if method != Method::GET && method != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        }
        match path {
            "/health" => text(StatusCode::OK, "ok\n"),
            "/ready" => self.ready(),
            "/metrics" => self.metrics(),
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /health, /ready or /metrics\n",
            ),
        }
    }

    fn ready(&self) -> Response<Vec<u8>> {
        let index = self.store.load();
        if index.is_loaded() {
            let body = format!(
                "ready: route table version {} ({} routes)\n",
                index.version(),
                index.len()
            );
            text(StatusCode::OK, &body)
        } else {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: no route table from the control plane yet\n",
            )
        }
    }

    fn metrics(&self) -> Response<Vec<u8>> {
        if let Some(age) = self.store.age_seconds() {
            self.metrics.routes_age_seconds.set(age);
        }
        let body = self.metrics.render().into_bytes();
        response(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body,
        )
    }
}

fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    response(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Vec<u8>> {
    let length = body.len();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(length),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        self.answer(&req.method, req.uri.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteIndex;
    use sandgate_shared::routes::RouteTable;

    #[test]
    fn ready_only_after_the_first_table() {
        let store = Arc::new(RouteStore::new());
        let admin = Admin::new(Arc::clone(&store), Arc::new(Metrics::new()));
        assert_eq!(admin.answer(&Method::GET, "/health").status(), 200);
        assert_eq!(admin.answer(&Method::GET, "/ready").status(), 503);
        store.publish(RouteIndex::build(&RouteTable::default(), &store.load()).0);
        assert_eq!(admin.answer(&Method::GET, "/ready").status(), 200);
        assert_eq!(admin.answer(&Method::POST, "/ready").status(), 405);
        assert_eq!(admin.answer(&Method::GET, "/nope").status(), 404);
    }

    #[test]
    fn metrics_include_route_gauges() {
        let store = Arc::new(RouteStore::new());
        let admin = Admin::new(Arc::clone(&store), Arc::new(Metrics::new()));
        store.touch();
        let response = admin.answer(&Method::GET, "/metrics");
        let body = String::from_utf8(response.into_body()).unwrap();
        assert!(body.contains("sandgate_proxy_routes_version"), "{body}");
        assert!(body.contains("sandgate_proxy_routes_age_seconds"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
    }
}
