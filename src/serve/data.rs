//! Everything `serve` reads from the results database, in one place.
//!
//! Pages and the JSON API call only this module, and this module calls only the library's
//! public read functions (`results::summaries_by`, `report::compare`, the report's charts and
//! `Store`'s typed reads): the store owns the SQL, so src/serve holds none.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use super::plots::{self, Curve, CurveEnd};
use crate::report::compare::{compare, CompareReport};
use crate::report::figures::{
    axis_figure, histogram_figure, learning_curve_figure, per_score_figure, Figure,
};
use crate::report::varying_keys;
use crate::results::{
    best, sort_summaries, summaries_by, summaries_with, ConfigSummary, Criterion, Retired, SortKey,
};
use crate::store::RunningJob;
use crate::store::{JobRecord, JobStatus, Store};
use crate::train::EpochLog;

/// A fresh read-only connection for one request: nothing is shared between requests, so a
/// slow client never holds a connection (or a read transaction) open.
pub fn open(db: &Path) -> anyhow::Result<Store> {
    Store::open_read_only(db)
}

/// Job counts of one sweep's current configs by status; `left` is what still has to run
/// (pending or interrupted). Retired configs' jobs are not the sweep's any more.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobCounts {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub failed: usize,
    pub diverged: usize,
    pub pruned: usize,
    pub interrupted: usize,
    pub pending: usize,
    pub left: usize,
}

/// The best config so far by the sweep's default criterion (`criterion` names it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BestConfig {
    pub id: String,
    pub label: String,
    pub criterion: &'static str,
    pub rmse: f64,
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

/// One (config, fold) job with everything it recorded: the store's record, and its epochs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldDetail {
    #[serde(flatten)]
    pub job: JobRecord,
    pub epochs: Vec<EpochLog>,
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

/// Every sweep, most recently updated first, with its best config by its default criterion.
pub fn sweeps(store: &Store) -> anyhow::Result<Vec<SweepOverview>> {
    per_stamp(&OVERVIEWS, store.path().to_path_buf(), store.path(), || overviews(store))
}

/// The index's rows, per database (each reads a sweep's summaries and counts every job).
static OVERVIEWS: StampCache<std::path::PathBuf, Vec<SweepOverview>> = OnceLock::new();

fn overviews(store: &Store) -> anyhow::Result<Vec<SweepOverview>> {
    let mut out = Vec::new();
    for sweep in store.sweep_list()? {
        let (rows, key) = results(store, sweep.id, None)?;
        let best = best(&rows, key).and_then(|r| {
            key.value(r).map(|rmse| BestConfig {
                id: r.id.clone(),
                label: r.label.clone(),
                criterion: key.name(),
                rmse,
            })
        });
        out.push(SweepOverview {
            name: sweep.name,
            folds: sweep.folds,
            configs: rows.len(),
            updated_at: sweep.updated_at,
            jobs: job_counts(store, sweep.id)?,
            best,
        });
    }
    Ok(out)
}

/// How many of a sweep's jobs are in each status.
pub fn job_counts(store: &Store, sweep_id: i64) -> anyhow::Result<JobCounts> {
    let by_status = store.status_counts(sweep_id)?;
    let count = |status| by_status.get(&status).copied().unwrap_or(0);
    Ok(JobCounts {
        total: by_status.values().sum(),
        done: count(JobStatus::Done),
        running: count(JobStatus::Running),
        failed: count(JobStatus::Failed),
        diverged: count(JobStatus::Diverged),
        pruned: count(JobStatus::Pruned),
        interrupted: count(JobStatus::Interrupted),
        pending: count(JobStatus::Pending),
        left: count(JobStatus::Pending) + count(JobStatus::Interrupted),
    })
}

/// Counts, running jobs and an ETA for one sweep. What the database says is read once per
/// state of its files (three aggregates over every job: about 100 ms at 50,000 jobs); `now`
/// is always the present.
pub fn progress(store: &Store, sweep_id: i64, name: &str) -> anyhow::Result<SweepProgress> {
    let key = (store.path().to_path_buf(), sweep_id);
    let (jobs, running, mean_job_seconds) = per_stamp(&PROGRESS, key, store.path(), || {
        Ok((
            job_counts(store, sweep_id)?,
            store.running_jobs(sweep_id)?,
            store.mean_job_seconds(sweep_id)?,
        ))
    })?;
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
        now: crate::util::process::now(),
        jobs,
        running,
        mean_job_seconds,
        eta_seconds,
    })
}

/// Every config of a sweep, best first by `sort`, or when None by the sweep's default
/// criterion (shifted RMSE with probes, else pooled OOF RMSE); returns the key used.
///
/// Computed once per state of the database files and kept ([`per_stamp`]): a sweep of
/// 10,000 configs takes seconds to summarise, and every page and API call of it needs this.
pub fn results(
    store: &Store,
    sweep_id: i64,
    sort: Option<SortKey>,
) -> anyhow::Result<(Vec<ConfigSummary>, SortKey)> {
    let key = (store.path().to_path_buf(), sweep_id, sort.map(SortKey::name));
    let rows = per_stamp(&SUMMARIES, key, store.path(), || {
        Ok(Arc::new(summaries_by(store, sweep_id, sort, Retired::Exclude)?))
    })?;
    Ok((*rows).clone())
}

type ProgressParts = (JobCounts, Vec<RunningJob>, Option<f64>);
static PROGRESS: StampCache<(std::path::PathBuf, i64), ProgressParts> = OnceLock::new();

/// The last summaries per database, sweep and sort, with the database's stamp then.
static SUMMARIES: StampCache<SummaryKey, Summaries> = OnceLock::new();

type SummaryKey = (std::path::PathBuf, i64, Option<&'static str>);
type Summaries = Arc<(Vec<ConfigSummary>, SortKey)>;

/// Values computed from a database, each kept with the stamp of its files when it was read.
pub(super) type StampCache<K, V> = OnceLock<Mutex<HashMap<K, (super::live::Stamp, V)>>>;

/// `compute()`'s value for `key`, computed again only when the database's files changed since
/// (the stamp is taken before reading, so a write meanwhile makes the next call read again).
/// At most 8 keys are kept.
pub(super) fn per_stamp<K: std::hash::Hash + Eq, V: Clone>(
    cache: &'static StampCache<K, V>,
    key: K,
    db: &Path,
    compute: impl FnOnce() -> anyhow::Result<V>,
) -> anyhow::Result<V> {
    let stamp = super::live::Stamp::of(db);
    let lock = || cache.get_or_init(Mutex::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, value)) = lock().get(&key).filter(|(s, _)| *s == stamp) {
        return Ok(value.clone());
    }
    let value = compute()?;
    let mut entries = lock();
    if entries.len() >= 8 {
        entries.clear();
    }
    entries.insert(key, (stamp, value.clone()));
    Ok(value)
}

/// Whether a sort key reads figures only a sweep with validation probes has.
pub fn needs_probes(key: SortKey) -> bool {
    matches!(key, SortKey::Probe | SortKey::Shifted)
}

/// `compare`'s verdicts against the best config by the sweep's default criterion (as
/// `foldsweep compare` without --by); None until some config has a value for it.
pub fn verdicts(store: &Store, rows: &[ConfigSummary]) -> anyhow::Result<Option<CompareReport>> {
    let criterion = Criterion::default_for(rows);
    if best(rows, criterion.sort_key()).is_none() {
        return Ok(None);
    }
    compare(store, rows, None, criterion).map(Some)
}

/// The report's charts for a sweep, as HTML figures (inline SVG), from the same code.
pub fn sweep_charts(store: &Store, rows: &[ConfigSummary]) -> anyhow::Result<Vec<String>> {
    // The report's order of rows and criterion: the sweep's default (shifted RMSE with
    // probes), so "the best configs" are the results table's first rows (issue 20: they were
    // re-sorted by OOF RMSE, and the chart's #4 and #5 were not the table's).
    let sort = Criterion::default_for(rows).sort_key();
    let mut sorted = rows.to_vec();
    sort_summaries(&mut sorted, sort);
    let best = sorted.first().filter(|r| sort.value(r).is_some());
    let mut figures = vec![per_score_figure(&sorted)?];
    for key in varying_keys(&sorted) {
        figures.push(axis_figure(&sorted, &key, sort)?);
    }
    figures.push(learning_curve_figure(store, best)?);
    figures.push(histogram_figure(store, best)?);
    Ok(figures.iter().map(Figure::html).collect())
}

/// One config with its folds, or None if no config has this id.
pub fn config(store: &Store, id: &str) -> anyhow::Result<Option<ConfigDetail>> {
    let Some(params) = store.config_params(id)? else { return Ok(None) };
    let sweeps = store.config_sweeps(id)?;
    let summary = match sweeps.first() {
        // The sweep's (cached) summaries; a retired config's are read with the retired ones:
        // its page still shows what it got.
        Some(sweep) => {
            match results(store, sweep.sweep_id, None)?.0.into_iter().find(|s| s.id == id) {
                Some(summary) => Some(summary),
                None => summaries_with(store, sweep.sweep_id, SortKey::Oof, Retired::Include)?
                    .into_iter()
                    .find(|s| s.id == id),
            }
        }
        None => None,
    };
    Ok(Some(ConfigDetail {
        id: id.to_string(),
        label: sweeps.first().map(|s| s.label.clone()).unwrap_or_default(),
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
        sweeps: sweeps.into_iter().map(|s| s.name).collect(),
        summary,
        folds: folds(store, id)?,
    }))
}

/// Every job of a config with the epochs it has recorded so far (running ones too).
fn folds(store: &Store, config_id: &str) -> anyhow::Result<Vec<FoldDetail>> {
    store
        .job_records(config_id)?
        .into_iter()
        .map(|job| Ok(FoldDetail { epochs: store.job_epochs(job.id)?, job }))
        .collect()
}

/// A config's charts: every fold's learning curve (running folds too, as far as recorded;
/// a diverged fold up to its last finite epoch, marked) and its prediction histogram.
pub fn config_charts(store: &Store, detail: &ConfigDetail) -> anyhow::Result<Vec<String>> {
    let curves: Vec<Curve> = detail
        .folds
        .iter()
        .filter(|f| !f.epochs.is_empty() || f.job.diverged_epoch.is_some())
        .map(|f| Curve {
            label: format!("fold {}", f.job.fold),
            color: css(crate::report::svg::color(f.job.fold)),
            values: f.epochs.iter().map(|e| e.val_rmse).collect(),
            end: curve_end(&f.job),
        })
        .collect();
    let mut learning = learning_curve_figure(store, None)?;
    learning.title = "Learning curves".into();
    learning.caption = "Validation RMSE after each epoch, one line per fold; a cross marks \
                        where a fold diverged (its last finite epoch), a square where a pruner \
                        stopped it."
        .into();
    if !curves.is_empty() {
        learning.svg = plots::curves(&curves, "validation RMSE");
        learning.legend = detail
            .folds
            .iter()
            .filter(|f| !f.epochs.is_empty() || f.job.diverged_epoch.is_some())
            .map(|f| {
                let mut text = format!("fold {}", f.job.fold);
                if let Some(epoch) = f.job.diverged_epoch {
                    text += &format!(" (diverged at epoch {epoch})");
                }
                (crate::report::svg::color(f.job.fold), text)
            })
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

/// How a job's learning curve ended, for its mark.
pub fn curve_end(job: &JobRecord) -> CurveEnd {
    match (job.status, job.diverged_epoch) {
        (_, Some(epoch)) => CurveEnd::Diverged(epoch),
        (JobStatus::Pruned, None) => CurveEnd::Pruned,
        (JobStatus::Running, None) => CurveEnd::Running,
        _ => CurveEnd::Finished,
    }
}

/// A chart colour as CSS.
pub fn css(color: plotters::style::RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", color.0, color.1, color.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewConfig, SweepDefinition};

    fn register(store: &mut Store, configs: &[&str]) -> i64 {
        let sweep = SweepDefinition {
            name: "s",
            definition: "",
            data_fingerprint: "fp",
            fold_hash: "fh",
            folds: 1,
            keep_trials: false,
        };
        let new: Vec<NewConfig> = configs
            .iter()
            .map(|&id| NewConfig {
                id,
                params_json: "{}",
                varying_json: "{}",
                label: id,
                data_fingerprint: "fp",
            })
            .collect();
        let jobs: Vec<(String, usize)> = configs.iter().map(|id| (id.to_string(), 0)).collect();
        store.register_sweep(&sweep, &new, &jobs).unwrap().0
    }

    #[test]
    fn job_counts_show_diverged_jobs_and_leave_out_retired_configs() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("c.db")).unwrap();
        let sweep_id = register(&mut store, &["c1", "c2", "c3"]);
        let job = store.claim_next(sweep_id, "cpu", &|id, _| id == "c1", false).unwrap().unwrap();
        store.record_diverged(job.id, 2, &[], "diverged").unwrap();
        register(&mut store, &["c1", "c2"]);
        let counts = job_counts(&store, sweep_id).unwrap();
        let expected =
            JobCounts { total: 2, diverged: 1, pending: 1, left: 1, ..JobCounts::default() };
        assert_eq!(counts, expected);
    }
}
