//! `GET /snapshots` query parsing, filtering and pagination, as OpenSandbox
//! does them: `sandboxId` and `name` match exactly, `state` repeats (OR,
//! exact names), newest first.

use std::sync::Arc;

use sandgate_shared::api::Pagination;
use sandgate_shared::snapshots::{ListSnapshotsResponse, SnapshotState};

use super::query::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, parse_number};
use super::rules::FieldProblem;
use super::snapshot_model::{SnapshotCatalog, SnapshotRecord};

/// A parsed snapshot list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotQuery {
    /// Only snapshots of this sandbox.
    pub sandbox_id: Option<String>,
    /// Only snapshots with exactly this name.
    pub name: Option<String>,
    /// The states asked for, as given (empty = all; unknown names match nothing).
    pub states: Vec<String>,
    /// 1-based page.
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
}

impl Default for SnapshotQuery {
    fn default() -> Self {
        Self {
            sandbox_id: None,
            name: None,
            states: Vec::new(),
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl SnapshotQuery {
    /// Parses the raw query string (without `?`); unknown keys are ignored.
    pub fn parse(raw: Option<&str>) -> Result<Self, FieldProblem> {
        let mut query = Self::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "sandboxId" => query.sandbox_id = Some(value.into_owned()),
                "name" => query.name = Some(value.into_owned()),
                "state" => query.states.push(value.into_owned()),
                "page" => query.page = parse_number("page", &value, 1, u32::MAX)?,
                "pageSize" => query.page_size = parse_number("pageSize", &value, 1, MAX_PAGE_SIZE)?,
                _ => {}
            }
        }
        Ok(query)
    }

    /// Whether a record passes the filters.
    pub fn matches(&self, record: &SnapshotRecord) -> bool {
        let state_ok = self.states.is_empty()
            || self
                .states
                .iter()
                .any(|s| SnapshotState::parse(s) == Some(record.status.state));
        state_ok
            && self
                .sandbox_id
                .as_deref()
                .is_none_or(|id| record.sandbox_id.as_str() == id)
            && self
                .name
                .as_deref()
                .is_none_or(|name| record.name.as_deref() == Some(name))
    }

    /// Filters, sorts newest first (ties by id, descending) and cuts this page.
    pub fn apply(&self, catalog: &SnapshotCatalog) -> ListSnapshotsResponse {
        let mut matching: Vec<Arc<SnapshotRecord>> = catalog.select(|r| self.matches(r));
        matching.sort_unstable_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        let total_items = matching.len() as u64;
        let total_pages = total_items.div_ceil(u64::from(self.page_size));
        let start = (u64::from(self.page) - 1).saturating_mul(u64::from(self.page_size));
        let items = matching
            .iter()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(self.page_size as usize)
            .map(|r| r.to_api())
            .collect();
        ListSnapshotsResponse {
            items,
            pagination: Pagination {
                page: self.page,
                page_size: self.page_size,
                total_items,
                total_pages,
                has_next_page: u64::from(self.page) < total_pages,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filters_and_bounds_pages() {
        let q = SnapshotQuery::parse(Some(
            "sandboxId=s1&name=nightly%20build&state=Ready&state=Failed&page=2&pageSize=5&x=1",
        ))
        .unwrap();
        assert_eq!(q.sandbox_id.as_deref(), Some("s1"));
        assert_eq!(q.name.as_deref(), Some("nightly build"));
        assert_eq!(q.states, vec!["Ready", "Failed"]);
        assert_eq!((q.page, q.page_size), (2, 5));
        for bad in ["page=0", "pageSize=0", "pageSize=201", "page=x"] {
            assert!(SnapshotQuery::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
