//! What part of a sweep a page shows, all of it in the URL so a view can be shared: a
//! filter by config state (`state=done`) and by axis values (`f.lr=0.001`, repeatable per
//! axis), the page of the results table (`page=2`), the contour's axes (`cx=`, `cy=`) and the
//! fold whose learning curves are drawn (`fold=`). Filters are links, not a form (the pages'
//! policy allows no form submission and no inline script).

use std::collections::BTreeMap;

use super::http::{percent_encode, Query};
use crate::results::ConfigSummary;

/// Rows of the results table per page.
pub const PER_PAGE: usize = 100;

/// The states a config can be filtered by, in the order the filter lists them.
pub const STATES: [&str; 5] = ["done", "unfinished", "failed", "pruned", "diverged"];

/// A config's state from its folds: diverged, pruned or failed if any fold was, done when
/// every fold is, else unfinished (pending or running).
pub fn state(row: &ConfigSummary) -> &'static str {
    if row.diverged > 0 {
        "diverged"
    } else if row.pruned > 0 {
        "pruned"
    } else if row.folds_failed > 0 {
        "failed"
    } else if row.folds_total > 0 && row.folds_done == row.folds_total {
        "done"
    } else {
        "unfinished"
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub state: Option<String>,
    /// Axis -> the one value kept.
    pub axes: BTreeMap<String, String>,
    /// 1-based.
    pub page: usize,
    pub sort: Option<String>,
    pub contour: (Option<String>, Option<String>),
    pub fold: Option<usize>,
}

impl View {
    pub fn from_query(query: &Query) -> View {
        let axes = query
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("f.")?.to_string(), v.clone())))
            .collect();
        View {
            state: query.get("state").filter(|s| STATES.contains(&s.as_str())).cloned(),
            axes,
            page: query.get("page").and_then(|p| p.parse().ok()).filter(|&p| p >= 1).unwrap_or(1),
            sort: query.get("sort").cloned(),
            contour: (query.get("cx").cloned(), query.get("cy").cloned()),
            fold: query.get("fold").and_then(|f| f.parse().ok()),
        }
    }

    pub fn keeps(&self, row: &ConfigSummary) -> bool {
        self.state.as_deref().is_none_or(|s| state(row) == s)
            && self.axes.iter().all(|(k, v)| row.varying.get(k) == Some(v))
    }

    /// The rows this view keeps, in their order.
    pub fn filter<'a>(&self, rows: &'a [ConfigSummary]) -> Vec<&'a ConfigSummary> {
        rows.iter().filter(|r| self.keeps(r)).collect()
    }

    /// The page's slice of `rows` and the number of pages (at least 1).
    pub fn page_of<'a, T>(&self, rows: &'a [T]) -> (&'a [T], usize) {
        let pages = rows.len().div_ceil(PER_PAGE).max(1);
        let page = self.page.min(pages);
        let start = (page - 1) * PER_PAGE;
        (&rows[start.min(rows.len())..(start + PER_PAGE).min(rows.len())], pages)
    }

    /// This view's query string with some parameters changed (None removes one), for links.
    pub fn link(&self, changes: &[(&str, Option<&str>)]) -> String {
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        if let Some(s) = &self.sort {
            params.insert("sort".into(), s.clone());
        }
        if let Some(s) = &self.state {
            params.insert("state".into(), s.clone());
        }
        for (k, v) in &self.axes {
            params.insert(format!("f.{k}"), v.clone());
        }
        if self.page > 1 {
            params.insert("page".into(), self.page.to_string());
        }
        if let Some(x) = &self.contour.0 {
            params.insert("cx".into(), x.clone());
        }
        if let Some(y) = &self.contour.1 {
            params.insert("cy".into(), y.clone());
        }
        if let Some(f) = self.fold {
            params.insert("fold".into(), f.to_string());
        }
        for (k, v) in changes {
            match v {
                Some(v) => params.insert(k.to_string(), v.to_string()),
                None => params.remove(*k),
            };
        }
        let text: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        if text.is_empty() {
            String::new()
        } else {
            format!("?{}", text.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::http::parse_query;

    fn row(model: &str, done: usize, diverged: usize) -> ConfigSummary {
        ConfigSummary {
            varying: [("model".to_string(), model.to_string())].into(),
            folds_done: done,
            folds_total: 5,
            diverged,
            ..ConfigSummary::default()
        }
    }

    #[test]
    fn the_url_says_what_is_kept_and_links_keep_the_rest() {
        let view =
            View::from_query(&parse_query("state=done&f.model=ordinal&page=2&cx=lr&bogus=1"));
        assert!(view.keeps(&row("ordinal", 5, 0)));
        assert!(!view.keeps(&row("standard", 5, 0)) && !view.keeps(&row("ordinal", 4, 0)));
        assert_eq!(state(&row("ordinal", 2, 1)), "diverged");
        assert_eq!(view.link(&[("page", None)]), "?cx=lr&f.model=ordinal&state=done");
        assert_eq!(View::from_query(&parse_query("state=nonsense")).state, None);
        let rows: Vec<usize> = (0..250).collect();
        let (slice, pages) = view.page_of(&rows);
        assert_eq!((slice.first(), slice.len(), pages), (Some(&100), 100, 3));
        let far = View { page: 9, ..View::default() };
        assert_eq!(far.page_of(&rows).0.first(), Some(&200), "past the end is the last page");
        assert_eq!(View::default().page_of::<usize>(&[]), (&[][..], 1));
    }
}
