//! Everything `serve` reads from the results database, in one place.
//!
//! Pages and the JSON API call only this module, and this module calls only the library's
//! public read functions (`report::summaries`, `report::compare`, the report's charts, `Store`)
//! plus a few queries `Store` does not offer yet, each marked `TODO(store)`, so that moving
//! SQL into `Store` changes this file and nothing else under src/serve/.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::report::compare::{compare, CompareReport};
use crate::report::html::{
    axis_figure, histogram_figure, learning_curve_chart, learning_curve_figure, per_score_figure,
    Figure,
};
use crate::report::{summaries, varying_keys, ConfigSummary, SortKey};
use crate::store::Store;

/// A fresh read-only connection for one request: nothing is shared between requests, so a
/// slow client never holds a connection (or a read transaction) open.
pub fn open(db: &Path) -> anyhow::Result<Store> {
    Store::open_read_only(db)
}

/// Job counts of one sweep by status; `left` is what still has to run (pending or interrupted).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobCounts {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub pending: usize,
    pub left: usize,
}

/// The best config so far by pooled out-of-fold RMSE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BestConfig {
    pub id: String,
    pub label: String,
    pub oof_rmse: f64,
}

/// One line of the sweeps list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepOverview {
    pub name: String,
    pub folds: usize,
    pub configs: usize,
    pub updated_at: f64,
    pub jobs: JobCounts,
    pub best: Option<BestConfig>,
}

/// A job being trained now; `epoch` and `val_rmse` are the latest of the epochs the
/// coordinator writes about once a second (empty in the job's first second).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningJob {
    pub config: String,
    pub label: String,
    pub fold: usize,
    pub attempt: u32,
    pub device: Option<String>,
    pub host: Option<String>,
    pub started_at: Option<f64>,
    pub heartbeat: Option<f64>,
    pub epoch: Option<usize>,
    pub val_rmse: Option<f64>,
}

/// The live progress of one sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepProgress {
    pub sweep: String,
    pub now: f64,
    pub jobs: JobCounts,
    pub running: Vec<RunningJob>,
    /// Mean wall time of this sweep's finished jobs.
    pub mean_job_seconds: Option<f64>,
    /// Rough time to finish: mean job time x jobs still to run / jobs running at once.
    pub eta_seconds: Option<f64>,
}

/// One epoch of a fold's learning curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_rmse: f64,
    pub lr: f64,
    pub seconds: f64,
}

/// What a finished fold reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldOutcome {
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub rmse: f64,
    pub rounded_rmse: f64,
    pub macro_rmse: f64,
    pub mean_predictor_rmse: f64,
    pub val_rows: usize,
    pub train_seconds: f64,
}

/// One (config, fold) job with everything it recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldDetail {
    pub fold: usize,
    pub status: String,
    pub attempt: u32,
    pub device: Option<String>,
    pub host: Option<String>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub error: Option<String>,
    pub outcome: Option<FoldOutcome>,
    pub epochs: Vec<EpochRow>,
}

/// One config in detail: its parameters, pooled summary and every fold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigDetail {
    pub id: String,
    pub label: String,
    pub params: serde_json::Value,
    pub sweeps: Vec<String>,
    pub summary: Option<ConfigSummary>,
    pub folds: Vec<FoldDetail>,
}

/// A sweep's id by its name (looked up, never interpolated).
pub fn sweep_id(store: &Store, name: &str) -> anyhow::Result<Option<i64>> {
    store.sweep_id(name)
}

/// Every sweep, most recently updated first.
pub fn sweeps(store: &Store) -> anyhow::Result<Vec<SweepOverview>> {
    // TODO(store): move into Store
    let mut stmt = store
        .conn()
        .prepare("SELECT id, name, folds, updated_at FROM sweeps ORDER BY updated_at DESC")?;
    let heads: Vec<(i64, String, i64, f64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(heads.len());
    for (id, name, folds, updated_at) in heads {
        let rows = summaries(store, id, SortKey::Oof)?;
        let best = rows.first().and_then(|r| {
            r.oof_rmse.map(|oof| BestConfig {
                id: r.id.clone(),
                label: r.label.clone(),
                oof_rmse: oof,
            })
        });
        out.push(SweepOverview {
            name,
            folds: folds as usize,
            configs: rows.len(),
            updated_at,
            jobs: job_counts(store, id)?,
            best,
        });
    }
    Ok(out)
}

/// How many of a sweep's jobs are in each status.
pub fn job_counts(store: &Store, sweep_id: i64) -> anyhow::Result<JobCounts> {
    // TODO(store): move into Store
    let mut stmt = store.conn().prepare(
        "SELECT j.status, COUNT(*) FROM jobs j JOIN sweep_configs s ON s.config_id = j.config_id
         WHERE s.sweep_id = ?1 GROUP BY j.status",
    )?;
    let by_status: BTreeMap<String, usize> = stmt
        .query_map([sweep_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?
        .collect::<Result<_, _>>()?;
    let count = |status: &str| by_status.get(status).copied().unwrap_or(0);
    Ok(JobCounts {
        total: by_status.values().sum(),
        done: count("done"),
        running: count("running"),
        failed: count("failed"),
        interrupted: count("interrupted"),
        pending: count("pending"),
        left: count("pending") + count("interrupted"),
    })
}

/// Counts, running jobs and an ETA for one sweep.
pub fn progress(store: &Store, sweep_id: i64, name: &str) -> anyhow::Result<SweepProgress> {
    let jobs = job_counts(store, sweep_id)?;
    let running = running_jobs(store, sweep_id)?;
    let mean_job_seconds = mean_job_seconds(store, sweep_id)?;
    let eta_seconds = match (jobs.left + jobs.running, mean_job_seconds) {
        (0, _) => Some(0.0),
        (_, None) => None,
        (_, Some(mean)) => {
            // Running jobs are on average half done; they run `running` at a time.
            let parallel = jobs.running.max(1) as f64;
            Some(mean * (jobs.left as f64 + 0.5 * jobs.running as f64) / parallel)
        }
    };
    Ok(SweepProgress {
        sweep: name.to_string(),
        now: crate::store::now(),
        jobs,
        running,
        mean_job_seconds,
        eta_seconds,
    })
}

fn running_jobs(store: &Store, sweep_id: i64) -> anyhow::Result<Vec<RunningJob>> {
    // TODO(store): move into Store
    let mut stmt = store.conn().prepare(
        "SELECT j.config_id, s.label, j.fold, j.attempt, j.device, j.host, j.started_at, j.heartbeat,
                e.epoch, e.val_rmse
         FROM jobs j JOIN sweep_configs s ON s.config_id = j.config_id
         LEFT JOIN epochs e ON e.job_id = j.id
              AND e.epoch = (SELECT MAX(epoch) FROM epochs WHERE job_id = j.id)
         WHERE s.sweep_id = ?1 AND j.status = 'running' ORDER BY j.started_at, s.position, j.fold",
    )?;
    let rows = stmt.query_map([sweep_id], |r| {
        Ok(RunningJob {
            config: r.get(0)?,
            label: r.get(1)?,
            fold: r.get::<_, i64>(2)? as usize,
            attempt: r.get(3)?,
            device: r.get(4)?,
            host: r.get(5)?,
            started_at: r.get(6)?,
            heartbeat: r.get(7)?,
            epoch: r.get::<_, Option<i64>>(8)?.map(|e| e as usize),
            val_rmse: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn mean_job_seconds(store: &Store, sweep_id: i64) -> anyhow::Result<Option<f64>> {
    // TODO(store): move into Store
    Ok(store.conn().query_row(
        "SELECT AVG(j.finished_at - j.started_at) FROM jobs j
         JOIN sweep_configs s ON s.config_id = j.config_id
         WHERE s.sweep_id = ?1 AND j.status = 'done' AND j.started_at IS NOT NULL
               AND j.finished_at IS NOT NULL",
        [sweep_id],
        |r| r.get(0),
    )?)
}

/// Every config of a sweep, best first by `sort`.
pub fn results(store: &Store, sweep_id: i64, sort: SortKey) -> anyhow::Result<Vec<ConfigSummary>> {
    summaries(store, sweep_id, sort)
}

/// `compare`'s verdicts against the best config; None until some config has a finished fold.
pub fn verdicts(store: &Store, rows: &[ConfigSummary]) -> anyhow::Result<Option<CompareReport>> {
    if !rows.iter().any(|r| r.oof_rmse.is_some()) {
        return Ok(None);
    }
    compare(store, rows, None, false).map(Some)
}

/// The report's charts for a sweep, as HTML figures (inline SVG), from the same code.
pub fn sweep_charts(store: &Store, rows: &[ConfigSummary]) -> anyhow::Result<Vec<String>> {
    // The report's order of rows: best by pooled OOF RMSE first.
    let mut by_oof = rows.to_vec();
    by_oof.sort_by(|a, b| match (a.oof_rmse, b.oof_rmse) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.position.cmp(&b.position),
    });
    let best = by_oof.first().filter(|r| r.oof_rmse.is_some());
    let mut figures = vec![per_score_figure(&by_oof)?];
    for key in varying_keys(&by_oof) {
        figures.push(axis_figure(&by_oof, &key)?);
    }
    figures.push(learning_curve_figure(store, best)?);
    figures.push(histogram_figure(store, best)?);
    Ok(figures.iter().map(Figure::html).collect())
}

/// One config with its folds, or None if no config has this id.
pub fn config(store: &Store, id: &str) -> anyhow::Result<Option<ConfigDetail>> {
    // TODO(store): move into Store
    let conn = store.conn();
    let Some(params) = conn
        .query_row("SELECT params FROM configs WHERE id = ?1", [id], |r| r.get::<_, String>(0))
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT s.sweep_id, w.name, s.label FROM sweep_configs s JOIN sweeps w ON w.id = s.sweep_id
         WHERE s.config_id = ?1 ORDER BY w.updated_at DESC",
    )?;
    let sweeps: Vec<(i64, String, String)> = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let summary = match sweeps.first() {
        Some((sweep_id, _, _)) => {
            summaries(store, *sweep_id, SortKey::Oof)?.into_iter().find(|s| s.id == id)
        }
        None => None,
    };
    Ok(Some(ConfigDetail {
        id: id.to_string(),
        label: sweeps.first().map(|s| s.2.clone()).unwrap_or_default(),
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
        sweeps: sweeps.into_iter().map(|s| s.1).collect(),
        summary,
        folds: folds(store, id)?,
    }))
}

fn folds(store: &Store, config_id: &str) -> anyhow::Result<Vec<FoldDetail>> {
    // TODO(store): move into Store
    let mut stmt = store.conn().prepare(
        "SELECT j.id, j.fold, j.status, j.attempt, j.device, j.host, j.started_at, j.finished_at, j.error,
                r.best_epoch, r.epochs_run, r.rmse, r.rounded_rmse, r.macro_rmse, r.mean_predictor_rmse,
                r.val_rows, r.train_seconds
         FROM jobs j LEFT JOIN fold_results r ON r.job_id = j.id
         WHERE j.config_id = ?1 ORDER BY j.fold",
    )?;
    let rows = stmt.query_map([config_id], |r| {
        let outcome = match r.get::<_, Option<i64>>(9)? {
            Some(best_epoch) => Some(FoldOutcome {
                best_epoch: best_epoch as usize,
                epochs_run: r.get::<_, i64>(10)? as usize,
                rmse: r.get(11)?,
                rounded_rmse: r.get(12)?,
                macro_rmse: r.get(13)?,
                mean_predictor_rmse: r.get(14)?,
                val_rows: r.get::<_, i64>(15)? as usize,
                train_seconds: r.get(16)?,
            }),
            None => None,
        };
        let job_id: i64 = r.get(0)?;
        Ok((
            job_id,
            FoldDetail {
                fold: r.get::<_, i64>(1)? as usize,
                status: r.get(2)?,
                attempt: r.get(3)?,
                device: r.get(4)?,
                host: r.get(5)?,
                started_at: r.get(6)?,
                finished_at: r.get(7)?,
                error: r.get(8)?,
                outcome,
                epochs: Vec::new(),
            },
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (job_id, mut fold) = row?;
        fold.epochs = epochs(store, job_id)?;
        out.push(fold);
    }
    Ok(out)
}

fn epochs(store: &Store, job_id: i64) -> anyhow::Result<Vec<EpochRow>> {
    // TODO(store): move into Store
    let mut stmt = store.conn().prepare(
        "SELECT epoch, train_loss, val_rmse, lr, seconds FROM epochs WHERE job_id = ?1 ORDER BY epoch",
    )?;
    let rows = stmt.query_map([job_id], |r| {
        Ok(EpochRow {
            epoch: r.get::<_, i64>(0)? as usize,
            train_loss: r.get(1)?,
            val_rmse: r.get(2)?,
            lr: r.get(3)?,
            seconds: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A config's charts: every fold's learning curve (running folds too, as far as recorded)
/// and its prediction histogram, drawn by the report's code.
pub fn config_charts(store: &Store, detail: &ConfigDetail) -> anyhow::Result<Vec<String>> {
    let curves: BTreeMap<usize, Vec<(f64, f64)>> = detail
        .folds
        .iter()
        .filter(|f| !f.epochs.is_empty())
        .map(|f| (f.fold, f.epochs.iter().map(|e| (e.epoch as f64, e.val_rmse)).collect()))
        .collect();
    let mut learning = learning_curve_figure(store, None)?;
    learning.title = "Learning curves".into();
    learning.caption = "Validation RMSE after each epoch, one line per fold.".into();
    if !curves.is_empty() {
        learning.svg = Some(learning_curve_chart(&curves)?);
        learning.legend = curves
            .keys()
            .map(|&fold| (crate::report::html::color(fold), format!("fold {fold}")))
            .collect();
    }
    let mut histogram = histogram_figure(store, detail.summary.as_ref())?;
    histogram.caption = format!(
        "How often each score is predicted by config {} (its pooled out-of-fold predictions, \
         rounded to 0..10) next to how often it occurs among the validated records.",
        detail.id
    );
    Ok(vec![learning.html(), histogram.html()])
}
