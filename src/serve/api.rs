//! The JSON API behind the pages, for scripts that poll (documented in the README):
//! - `GET /api/sweeps`: every sweep with its job counts and best config;
//! - `GET /api/sweeps/{name}/results?sort=oof|mean|macro`: `results --format json`'s rows;
//! - `GET /api/sweeps/{name}/progress`: job counts, running jobs, ETA;
//! - `GET /api/configs/{id}`: one config, its folds, learning curves and errors.

use std::path::Path;

use serde_json::json;

use super::http::{Request, Response};
use super::{data, is_config_id, is_plausible_sweep_name};
use crate::report::SortKey;

pub fn route(db: &Path, segments: &[&str], request: &Request) -> anyhow::Result<Response> {
    match segments {
        ["sweeps"] => {
            let store = data::open(db)?;
            Ok(Response::json(200, &json!({ "sweeps": data::sweeps(&store)? })))
        }
        ["sweeps", name, "results"] => results(db, name, request),
        ["sweeps", name, "progress"] => {
            let store = data::open(db)?;
            let Some(id) = sweep(&store, name)? else { return Ok(no_sweep(name)) };
            Ok(Response::json(200, &data::progress(&store, id, name)?))
        }
        ["configs", id] if is_config_id(id) => {
            let store = data::open(db)?;
            Ok(match data::config(&store, id)? {
                Some(detail) => Response::json(200, &detail),
                None => Response::json_error(404, &format!("no config {id}")),
            })
        }
        ["configs", _] => Ok(Response::json_error(404, "a config id is 12 hex digits")),
        _ => Ok(Response::json_error(404, "no such endpoint")),
    }
}

fn results(db: &Path, name: &str, request: &Request) -> anyhow::Result<Response> {
    let sort_text = request.query.get("sort").map_or("oof", String::as_str);
    let sort = match SortKey::parse(sort_text) {
        Ok(sort) => sort,
        Err(_) => {
            let message = format!("unknown sort {sort_text:?}; use oof, mean or macro");
            return Ok(Response::json_error(400, &message));
        }
    };
    let store = data::open(db)?;
    let Some(id) = sweep(&store, name)? else { return Ok(no_sweep(name)) };
    let rows = data::results(&store, id, sort)?;
    Ok(Response::json(200, &json!({ "sweep": name, "sort": sort_text, "results": rows })))
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
