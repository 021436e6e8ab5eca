//! The JSON API behind the pages, for scripts (documented in the README):
//! - `GET /api/sweeps`: every sweep with its job counts and best config;
//! - `GET /api/sweeps/{name}/results?sort=oof|mean|macro|probe|shifted&offset=N&limit=N`:
//!   `results --format json`'s rows; without `sort`, the sweep's default (shifted with
//!   probes, else oof); `total` counts them all;
//! - `GET /api/sweeps/{name}/progress`: job counts, running jobs, ETA;
//! - `GET /api/configs/{id}`: one config, its folds, learning curves and errors.

use std::path::Path;

use serde_json::json;

use super::http::{Query, Response};
use super::{data, is_config_id, is_plausible_sweep_name};
use crate::results::SortKey;

/// `GET /api/sweeps`.
pub fn sweeps(db: &Path) -> anyhow::Result<Response> {
    let store = data::open(db)?;
    Ok(Response::json(200, &json!({ "sweeps": data::sweeps(&store)? })))
}

/// `GET /api/sweeps/{name}/progress`.
pub fn progress(db: &Path, name: &str) -> anyhow::Result<Response> {
    let store = data::open(db)?;
    let Some(id) = sweep(&store, name)? else { return Ok(no_sweep(name)) };
    Ok(Response::json(200, &data::progress(&store, id, name)?))
}

/// `GET /api/configs/{id}`.
pub fn config(db: &Path, id: &str) -> anyhow::Result<Response> {
    if !is_config_id(id) {
        return Ok(Response::json_error(404, "a config id is 12 hex digits"));
    }
    let store = data::open(db)?;
    Ok(match data::config(&store, id)? {
        Some(detail) => Response::json(200, &detail),
        None => Response::json_error(404, &format!("no config {id}")),
    })
}

/// `GET /api/sweeps/{name}/results?sort=...`.
pub fn results(db: &Path, name: &str, query: &Query) -> anyhow::Result<Response> {
    let sort = match query.get("sort") {
        None => None,
        Some(text) => match sort_key(text) {
            Some(sort) => Some(sort),
            None => {
                let message =
                    format!("unknown sort {text:?}; use one of oof, mean, macro, probe, shifted");
                return Ok(Response::json_error(400, &message));
            }
        },
    };
    let store = data::open(db)?;
    let Some(id) = sweep(&store, name)? else { return Ok(no_sweep(name)) };
    let (rows, sort) = data::results(&store, id, sort)?;
    if data::needs_probes(sort) && !crate::results::has_probes(&rows) {
        // As `foldsweep results --sort` refuses it.
        let message = format!(
            "sweep {name:?} has no validation probes to sort by {}; use oof, mean or macro",
            sort.name()
        );
        return Ok(Response::json_error(400, &message));
    }
    // `offset` and `limit` page the rows (a sweep of 10,000 configs is megabytes of JSON).
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<usize>().ok());
    let offset = number("offset").unwrap_or(0).min(rows.len());
    let limit = number("limit").unwrap_or(usize::MAX);
    let page = &rows[offset..offset.saturating_add(limit).min(rows.len())];
    let body = json!({
        "sweep": name, "sort": sort.name(), "total": rows.len(), "offset": offset, "results": page
    });
    Ok(Response::json(200, &body))
}

/// A sort key as the CLI's `--sort` spells it (case-insensitive); None if it is not one.
pub fn sort_key(text: &str) -> Option<SortKey> {
    <SortKey as clap::ValueEnum>::from_str(text, true).ok()
}

/// The sweep's id if the name is one (looked up as a parameter, never interpolated).
pub fn sweep(store: &crate::store::Store, name: &str) -> anyhow::Result<Option<i64>> {
    if !is_plausible_sweep_name(name) {
        return Ok(None);
    }
    data::sweep_id(store, name)
}

fn no_sweep(name: &str) -> Response {
    Response::json_error(404, &format!("no sweep named {name:?}"))
}
