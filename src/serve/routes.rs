//! The route table and what every request shares.
//!
//! Routes are a fixed table (nothing is ever read from disk but the database); a path
//! parameter is percent-decoded by axum, so a sweep named `a/b` is `/sweeps/a%2Fb`. Database
//! work runs on tokio's blocking pool, at most `workers` at once, each with its own
//! read-only connection, built and dropped before the response is written.
//!
//! Layers, outermost first: safety headers on every answer; the body limit (413 on a
//! Content-Length over it); the body deadline; the guard (Host, drain, method, token, see
//! [`super::guard`]); the handler timeout (503).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as Segment, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{middleware, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use super::auth::AllowedHosts;
use super::http::{parse_query, Query, Response};
use super::net::Limits;
use super::{api, guard, live, not_found, pages, ServeEvent};

/// What every request needs.
pub struct Context {
    pub db: PathBuf,
    pub token: Option<String>,
    pub cookie: String,
    pub hosts: AllowedHosts,
    pub limits: Limits,
    /// One permit per database read running at once (`--workers`).
    pub db_slots: Arc<tokio::sync::Semaphore>,
    pub events: Arc<dyn Fn(ServeEvent) + Send + Sync>,
}

type Shared = State<Arc<Context>>;

pub fn router(context: Arc<Context>) -> Router {
    let limits = context.limits;
    let timeout =
        TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limits.handler_timeout);
    Router::new()
        .route("/", get(index))
        .route("/sweeps/{name}", get(sweep_page))
        .route("/configs/{id}", get(config_page))
        .route("/assets/{name}", get(asset))
        .route("/api/sweeps", get(api_sweeps))
        .route("/api/sweeps/{name}/results", get(api_results))
        .route("/api/sweeps/{name}/progress", get(api_progress))
        .route("/api/configs/{id}", get(api_config))
        .route("/api/events", get(live::events))
        .fallback(fallback)
        .layer(timeout)
        .layer(middleware::from_fn_with_state(Arc::clone(&context), guard::admit))
        .layer(RequestBodyTimeoutLayer::new(limits.body_deadline))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(middleware::map_response(guard::secure))
        .with_state(context)
}

/// Whether the live refresh asks for only the page's `<main>`.
fn fragment(headers: &HeaderMap) -> bool {
    headers.get("x-fragment").is_some_and(|v| v == "main")
}

fn query(raw: Option<String>) -> Query {
    parse_query(raw.as_deref().unwrap_or(""))
}

async fn index(State(c): Shared, headers: HeaderMap) -> Response {
    let fragment = fragment(&headers);
    c.read(false, "/".into(), move |db| pages::index(db, fragment)).await
}

async fn sweep_page(
    State(c): Shared,
    Segment(name): Segment<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (fragment, query) = (fragment(&headers), query(raw));
    let what = format!("sweep page {name:?}");
    c.read(false, what, move |db| pages::sweep(db, &name, &query, fragment)).await
}

async fn config_page(
    State(c): Shared,
    Segment(id): Segment<String>,
    headers: HeaderMap,
) -> Response {
    let fragment = fragment(&headers);
    let what = format!("config page {id:?}");
    c.read(false, what, move |db| pages::config(db, &id, fragment)).await
}

async fn asset(Segment(name): Segment<String>) -> Response {
    pages::asset(&name).unwrap_or_else(not_found)
}

async fn api_sweeps(State(c): Shared) -> Response {
    c.read(true, "/api/sweeps".into(), api::sweeps).await
}

async fn api_results(
    State(c): Shared,
    Segment(name): Segment<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = query(raw);
    let what = format!("results of {name:?}");
    c.read(true, what, move |db| api::results(db, &name, &query)).await
}

async fn api_progress(State(c): Shared, Segment(name): Segment<String>) -> Response {
    let what = format!("progress of {name:?}");
    c.read(true, what, move |db| api::progress(db, &name)).await
}

async fn api_config(State(c): Shared, Segment(id): Segment<String>) -> Response {
    let what = format!("config {id:?}");
    c.read(true, what, move |db| api::config(db, &id)).await
}

async fn fallback(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return Response::json_error(404, "no such endpoint");
    }
    not_found()
}

impl Context {
    /// Runs a database read on the blocking pool and answers with its response; an error is
    /// 500 without details.
    async fn read(
        self: &Arc<Self>,
        is_api: bool,
        what: String,
        work: impl FnOnce(&Path) -> anyhow::Result<Response> + Send + 'static,
    ) -> Response {
        self.read_told(what, work).await.unwrap_or_else(|| internal_error(is_api))
    }

    /// [`Context::read`]'s value, None on an error (told to the CLI).
    pub async fn read_value<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Path) -> anyhow::Result<T> + Send + 'static,
    ) -> Option<T> {
        self.read_told("event stream".into(), work).await
    }

    /// Runs `work` on the blocking pool, at most `workers` at once. An error or a panic is
    /// told to the CLI (through `events`) and gives None.
    async fn read_told<T: Send + 'static>(
        self: &Arc<Self>,
        what: String,
        work: impl FnOnce(&Path) -> anyhow::Result<T> + Send + 'static,
    ) -> Option<T> {
        let permit = Arc::clone(&self.db_slots).acquire_owned().await.ok()?;
        let db = self.db.clone();
        let done = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&db)
        })
        .await;
        let error = match done {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(error)) => format!("{error:#}"),
            Err(join) => format!("the handler panicked: {join}"),
        };
        (self.events)(ServeEvent::ReadFailed { request: what, error });
        None
    }
}

/// A database that cannot be read right now (locked past the busy timeout, corrupt): say so
/// without echoing internals to a client.
fn internal_error(is_api: bool) -> Response {
    if is_api {
        Response::json_error(500, "internal error reading the results database")
    } else {
        Response::text(500, "500: internal error reading the results database")
    }
}
