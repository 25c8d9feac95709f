//! `GET /sandboxes` query parsing, filtering and pagination.
//!
//! The query string is parsed by hand: `state` repeats (OR, any case), and
//! `metadata` is itself a query string (`k=v&k2=v2`, AND, exact), which the
//! SDKs percent-encode as one value.

use std::collections::BTreeMap;
use std::sync::Arc;

use sandgate_shared::api::{ListSandboxesResponse, Pagination, SandboxState};

use super::model::SandboxRecord;
use super::registry::Registry;
use super::rules::FieldProblem;
use crate::error::codes;

/// Default and maximum page sizes.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest page size accepted.
pub const MAX_PAGE_SIZE: u32 = 200;

/// A parsed list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// States to include (empty = all).
    pub states: Vec<SandboxState>,
    /// Metadata that must match exactly (empty = no filter).
    pub metadata: BTreeMap<String, String>,
    /// 1-based page.
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
    /// Only states unknown to Sandgate were asked for, so nothing matches.
    pub matches_nothing: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            states: Vec::new(),
            metadata: BTreeMap::new(),
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
            matches_nothing: false,
        }
    }
}

impl ListQuery {
    /// Parses the raw query string (without `?`).
    pub fn parse(raw: Option<&str>) -> Result<Self, FieldProblem> {
        let mut query = Self::default();
        let mut unknown_states = Vec::new();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "state" => match SandboxState::parse_ignore_case(&value) {
                    Some(state) => query.states.push(state),
                    None => unknown_states.push(value.into_owned()),
                },
                "metadata" => query.metadata = parse_metadata_filter(&value)?,
                "page" => query.page = parse_number("page", &value, 1, u32::MAX)?,
                "pageSize" => query.page_size = parse_number("pageSize", &value, 1, MAX_PAGE_SIZE)?,
                _ => {}
            }
        }
        // Clients must tolerate new state names, so asking only for unknown
        // ones is an empty result, not an error.
        query.matches_nothing = !unknown_states.is_empty() && query.states.is_empty();
        Ok(query)
    }

    /// Whether a record passes the filters.
    pub fn matches(&self, record: &SandboxRecord) -> bool {
        !self.matches_nothing
            && (self.states.is_empty() || self.states.contains(&record.status.state))
            && self
                .metadata
                .iter()
                .all(|(k, v)| record.metadata.get(k) == Some(v))
    }

    /// Sorts matching records newest first (ties by id) and cuts this page.
    pub fn page(
        &self,
        mut matching: Vec<Arc<SandboxRecord>>,
    ) -> (Vec<Arc<SandboxRecord>>, Pagination) {
        matching.sort_unstable_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        let total_items = matching.len() as u64;
        let size = u64::from(self.page_size);
        let total_pages = total_items.div_ceil(size);
        let start = (u64::from(self.page) - 1).saturating_mul(size);
        let start = usize::try_from(start)
            .unwrap_or(usize::MAX)
            .min(matching.len());
        let end = start
            .saturating_add(self.page_size as usize)
            .min(matching.len());
        let pagination = Pagination {
            page: self.page,
            page_size: self.page_size,
            total_items,
            total_pages,
            has_next_page: u64::from(self.page) < total_pages,
        };
        (matching.drain(start..end).collect(), pagination)
    }

    /// Filters, sorts and paginates into the typed response.
    pub fn apply(&self, registry: &Registry) -> ListSandboxesResponse {
        let (items, pagination) = self.page(registry.select(|r| self.matches(r)));
        let items = items.iter().map(|record| record.to_api()).collect();
        ListSandboxesResponse { items, pagination }
    }
}

/// Parses `k=v&k2=v2`; a segment without `=` is an error. Later keys win.
pub fn parse_metadata_filter(text: &str) -> Result<BTreeMap<String, String>, FieldProblem> {
    let mut filter = BTreeMap::new();
    for segment in text.split('&').filter(|s| !s.is_empty()) {
        if !segment.contains('=') {
            return Err(FieldProblem::new(
                codes::INVALID_METADATA_FORMAT,
                format!(
                    "metadata: invalid format, bad query field: {segment:?}; expected key=value pairs joined by '&'"
                ),
            ));
        }
        for (key, value) in form_urlencoded::parse(segment.as_bytes()) {
            filter.insert(key.into_owned(), value.into_owned());
        }
    }
    Ok(filter)
}

/// `value` as an integer in `min..=max`, else a problem naming `field` and the rule.
pub(super) fn parse_number(
    field: &str,
    value: &str,
    min: u32,
    max: u32,
) -> Result<u32, FieldProblem> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            FieldProblem::new(
                codes::INVALID_PARAMETER,
                format!("{field}: {value:?} must be an integer from {min} to {max}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_states_case_insensitively() {
        let q = ListQuery::parse(Some("state=RUNNING&state=paused&page=2&pageSize=5")).unwrap();
        assert_eq!(q.states, vec![SandboxState::Running, SandboxState::Paused]);
        assert_eq!((q.page, q.page_size), (2, 5));
    }

    #[test]
    fn parses_the_encoded_metadata_filter() {
        let q =
            ListQuery::parse(Some("metadata=team%3Dinfra%26project%3Dalpha%26note%3D")).unwrap();
        let want: BTreeMap<_, _> = [("team", "infra"), ("project", "alpha"), ("note", "")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(q.metadata, want);
    }

    #[test]
    fn rejects_bad_metadata_and_page_bounds() {
        let err = ListQuery::parse(Some("metadata=team%3Dinfra%26broken")).unwrap_err();
        assert_eq!(err.code, codes::INVALID_METADATA_FORMAT);
        assert!(err.message.contains("bad query field"));
        for bad in ["page=0", "pageSize=0", "pageSize=201", "page=x"] {
            let err = ListQuery::parse(Some(bad)).unwrap_err();
            assert_eq!(err.code, codes::INVALID_PARAMETER, "{bad}");
        }
    }
}
