//! Server-sent events: `GET /api/events?sweep=NAME` sends a `progress` event (the progress
//! JSON of `/api/sweeps/{name}/progress`, plus `written_at`) whenever the results database
//! changes; without `sweep`, a `change` event (`{"written_at": ...}`). Pages listen and
//! re-render their `<main>` (assets/app.js); polling is only the fallback.
//!
//! A change is seen from the database files themselves: every commit of the sweep's
//! coordinator writes the WAL (and a checkpoint the main file), which moves their size or
//! modification time, while readers such as this server touch neither. Checking that costs
//! two `stat` calls every quarter second per stream; the database is read only after a
//! change, through the same bounded pool as every other request. `written_at` is that file
//! time, so a client can tell how far behind the store it is.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;

use super::http::{parse_query, Response};
use super::routes::Context;
use super::{api, data};

/// How often the files are looked at.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// A comment this often keeps the connection inside the idle timeout.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// After this a stream ends and the browser reconnects (EventSource does so by itself), so
/// no connection is held forever.
const STREAM_FOR: Duration = Duration::from_secs(30 * 60);

/// The size and modification time of the database and its WAL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stamp {
    files: [(u64, Option<SystemTime>); 2],
}

impl Stamp {
    pub(super) fn of(db: &Path) -> Stamp {
        let file = |path: &Path| match std::fs::metadata(path) {
            Ok(meta) => (meta.len(), meta.modified().ok()),
            Err(_) => (0, None),
        };
        Stamp { files: [file(db), file(&wal_of(db))] }
    }

    /// The latest write, in seconds since the epoch.
    fn written_at(&self) -> f64 {
        let latest = self.files.iter().filter_map(|(_, t)| *t).max();
        latest
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

fn wal_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

pub async fn events(
    State(context): State<Arc<Context>>,
    RawQuery(raw): RawQuery,
) -> axum::response::Response {
    let sweep = parse_query(raw.as_deref().unwrap_or("")).remove("sweep");
    if let Some(name) = &sweep {
        let name = name.clone();
        let found =
            context.read_value(move |db| Ok(api::sweep(&data::open(db)?, &name)?.is_some())).await;
        match found {
            Some(true) => {}
            Some(false) => return Response::json_error(404, "no such sweep").into_response(),
            None => {
                return Response::json_error(500, "internal error reading the results database")
                    .into_response()
            }
        }
    }
    let live = Live { context, sweep, stamp: None, started: Instant::now() };
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        let event = live.next().await?;
        Some((Ok::<Event, Infallible>(event), live))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

struct Live {
    context: Arc<Context>,
    sweep: Option<String>,
    stamp: Option<Stamp>,
    started: Instant,
}

impl Live {
    /// The next event, after the next change (the first one at once); None ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.started.elapsed() > STREAM_FOR {
                return None;
            }
            let stamp = Stamp::of(&self.context.db);
            if self.stamp != Some(stamp) {
                self.stamp = Some(stamp);
                if let Some(event) = self.event(stamp.written_at()).await {
                    return Some(event);
                }
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }

    async fn event(&self, written_at: f64) -> Option<Event> {
        let Some(name) = self.sweep.clone() else {
            let data = serde_json::json!({ "written_at": written_at });
            return Some(Event::default().event("change").data(data.to_string()));
        };
        let progress = self
            .context
            .read_value(move |db| {
                let store = data::open(db)?;
                let Some(id) = api::sweep(&store, &name)? else { return Ok(None) };
                Ok(Some(serde_json::to_value(data::progress(&store, id, &name)?)?))
            })
            .await??;
        let mut progress = progress;
        progress["written_at"] = written_at.into();
        Some(Event::default().event("progress").data(progress.to_string()))
    }
}
