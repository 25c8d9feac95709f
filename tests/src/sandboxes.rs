//! Lifecycle API calls used by the scenarios, typed with the shared wire model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use sandgate_shared::api::{CreateSandboxResponse, ListSandboxesResponse, Sandbox, SandboxState};
use serde_json::{Value, json};

use crate::client::Api;
use crate::prom;

/// The most pages [`Api::list_all`] reads before giving up.
const MAX_PAGES: u32 = 1_000;

/// Every sandbox a filter matches, read page by page.
#[derive(Debug, Clone)]
pub struct Listing {
    /// All items of all pages, in the order served.
    pub items: Vec<Sandbox>,
    /// `pagination.totalItems` of the first page.
    pub total_items: u64,
}

impl Listing {
    /// The ids, in the order served (duplicates kept).
    pub fn ids(&self) -> Vec<String> {
        self.items.iter().map(|s| s.id.to_string()).collect()
    }

    /// How many items are in `state`.
    pub fn count_in(&self, state: SandboxState) -> usize {
        self.items
            .iter()
            .filter(|s| s.status.state == state)
            .count()
    }
}

/// A create body: `python:3.12`, `sleep`, 1 CPU / 1 GiB, `timeout` seconds.
pub fn create_body(timeout: u64, metadata: &BTreeMap<String, String>) -> Value {
    json!({
        "image": {"uri": "python:3.12"},
        "entrypoint": ["sleep", "3600"],
        "resourceLimits": {"cpu": "1", "memory": "1Gi"},
        "timeout": timeout,
        "metadata": metadata,
    })
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, body: Value) -> anyhow::Result<T> {
    serde_json::from_value(body.clone()).with_context(|| format!("{what}: unexpected body {body}"))
}

impl Api {
    /// `POST /v1/sandboxes`; anything but 202 is an error.
    pub async fn create_sandbox(&self, body: &Value) -> anyhow::Result<CreateSandboxResponse> {
        match self.post_json("/v1/sandboxes", body).await? {
            (202, body) => decode("create", body),
            (status, body) => bail!("create → {status}: {body}"),
        }
    }

    /// `GET /v1/sandboxes/{id}`: `Some` on 200, `None` on 404, else an error.
    pub async fn sandbox(&self, id: &str) -> anyhow::Result<Option<Sandbox>> {
        match self.get(&format!("/v1/sandboxes/{id}")).await? {
            (200, body) => decode("get", body).map(Some),
            (404, _) => Ok(None),
            (status, body) => bail!("GET sandbox {id} → {status}: {body}"),
        }
    }

    /// `POST /v1/sandboxes/{id}/renew-expiration` with `at` (RFC 3339).
    pub async fn renew(&self, id: &str, at: &str) -> anyhow::Result<(u16, Value)> {
        self.post_json(
            &format!("/v1/sandboxes/{id}/renew-expiration"),
            &json!({"expiresAt": at}),
        )
        .await
    }

    /// Every page of `GET /v1/sandboxes?{query}` (query without `page`/`pageSize`).
    pub async fn list_all(&self, query: &str) -> anyhow::Result<Listing> {
        let mut listing = Listing {
            items: Vec::new(),
            total_items: 0,
        };
        for page in 1..=MAX_PAGES {
            let path = format!("/v1/sandboxes?{query}&page={page}&pageSize=200");
            let response: ListSandboxesResponse = match self.get(&path).await? {
                (200, body) => decode("list", body)?,
                (status, body) => bail!("GET {path} → {status}: {body}"),
            };
            if page == 1 {
                listing.total_items = response.pagination.total_items;
            }
            listing.items.extend(response.items);
            if !response.pagination.has_next_page {
                return Ok(listing);
            }
        }
        bail!("list {query:?} has more than {MAX_PAGES} pages")
    }

    /// One sample of `GET /metrics` (`sandgate_expiry_timers`, ...).
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let (status, text) = self.get_text("/metrics").await?;
        if status != 200 {
            bail!("GET /metrics → {status}");
        }
        prom::sample(&text, series).with_context(|| format!("/metrics has no sample {series}"))
    }
}

/// The sandbox ids the fake engine holds, read from its state file (which
/// it replaces atomically, so it can be read while the server runs).
pub fn engine_ids(state_file: &Path) -> anyhow::Result<BTreeSet<String>> {
    if !state_file.exists() {
        return Ok(BTreeSet::new());
    }
    let text = std::fs::read_to_string(state_file)?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", state_file.display()))?;
    let object = value
        .as_object()
        .context("the fake engine state is not a JSON object")?;
    Ok(object.keys().cloned().collect())
}
