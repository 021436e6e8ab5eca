//! What a sweep's results say: per-config summaries (pooled OOF, macro, probe and shifted RMSE
//! over the folds that finished), how they sort, which is best, and what a search or pruner
//! minimises ([`objective`]). Everything above reads results through here, so the table, the
//! report, the live view and the search agree on every number.

pub mod objective;
pub mod trials;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::data::score_bin;
use crate::probe::ProbeConfig;
use crate::sampling::NUM_BINS;
use crate::store::{JobStatus, Store, SweepConfigRow};

pub use trials::{trials, TrialRow, TrialState};

/// Everything the results table says about one config.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ConfigSummary {
    pub id: String,
    pub label: String,
    /// Grid key -> value, as shown.
    pub varying: BTreeMap<String, String>,
    pub folds_done: usize,
    pub folds_total: usize,
    pub folds_failed: usize,
    /// Folds whose training diverged (non-finite loss or RMSE): such a config ranks last.
    pub diverged: usize,
    /// Folds a pruner stopped (ASHA or racing): such a config ranks after complete ones and is
    /// never "best".
    pub pruned: usize,
    /// No longer in the sweep's current definition (shown by `results --all` only).
    pub retired: bool,
    /// Validation RMSE of each finished fold, in fold order.
    pub fold_rmse: Vec<(usize, f64)>,
    pub mean_rmse: Option<f64>,
    pub sd_rmse: Option<f64>,
    /// sqrt of the mean squared error over every out-of-fold prediction (not a mean of RMSEs).
    pub oof_rmse: Option<f64>,
    /// Mean of the per-score RMSEs of the pooled out-of-fold predictions (non-empty bins).
    pub macro_rmse: Option<f64>,
    /// Pooled out-of-fold RMSE of the predictions clamped to [0, 10] and rounded to whole
    /// scores, as `export --round` would submit them.
    pub oof_rounded_rmse: Option<f64>,
    /// With `[validation] probe`: the pooled probe rows' RMSE and the shifted RMSE,
    /// `sqrt((1 - F) * MSE(real rows) + F * MSE(probe rows))` over every finished fold.
    pub probe_rmse: Option<f64>,
    pub shifted_rmse: Option<f64>,
    /// The probe settings the config was judged on (the same for a whole sweep).
    #[serde(skip)]
    pub probe: Option<ProbeConfig>,
    pub bin_rmse: Vec<Option<f64>>,
    pub bin_count: Vec<usize>,
    pub fold_hash: String,
    pub position: usize,
}

/// What the results are sorted by: pooled OOF RMSE, mean fold RMSE, macro RMSE, and with
/// validation probes the probe rows' RMSE or the shifted RMSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    Oof,
    Mean,
    Macro,
    Probe,
    Shifted,
}

/// What "best" means when one config is picked (export, compare's reference, ensembles):
/// pooled OOF RMSE, macro RMSE or (with probes) shifted RMSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Criterion {
    Oof,
    Macro,
    Shifted,
}

impl Criterion {
    pub fn sort_key(self) -> SortKey {
        match self {
            Criterion::Oof => SortKey::Oof,
            Criterion::Macro => SortKey::Macro,
            Criterion::Shifted => SortKey::Shifted,
        }
    }

    /// The default: shifted RMSE when the sweep has probes (validation rows alone cannot see
    /// the test set's shift), else pooled OOF RMSE.
    pub fn default_for(rows: &[ConfigSummary]) -> Criterion {
        if has_probes(rows) {
            Criterion::Shifted
        } else {
            Criterion::Oof
        }
    }
}

/// Whether the sweep's configs are judged on validation probes.
pub fn has_probes(rows: &[ConfigSummary]) -> bool {
    rows.iter().any(|r| r.probe.is_some())
}

/// The config with the lowest value of `key` (the first of equals), whatever order `rows`
/// are in; None when no config has a value.
pub fn best(rows: &[ConfigSummary], key: SortKey) -> Option<&ConfigSummary> {
    rows.iter()
        .filter(|r| r.diverged == 0 && r.pruned == 0)
        .filter_map(|r| key.value(r).map(|v| (v, r)))
        .reduce(|best, next| if next.0 < best.0 { next } else { best })
        .map(|(_, r)| r)
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Oof => "oof",
            SortKey::Mean => "mean",
            SortKey::Macro => "macro",
            SortKey::Probe => "probe",
            SortKey::Shifted => "shifted",
        }
    }

    pub fn value(self, s: &ConfigSummary) -> Option<f64> {
        match self {
            SortKey::Oof => s.oof_rmse,
            SortKey::Mean => s.mean_rmse,
            SortKey::Macro => s.macro_rmse,
            SortKey::Probe => s.probe_rmse,
            SortKey::Shifted => s.shifted_rmse,
        }
    }
}

/// Summaries of the current configs of a sweep, best first by `sort`: configs with a pruned
/// fold, then with a diverged fold, then without results, come last.
pub fn summaries(
    store: &Store,
    sweep_id: i64,
    sort: SortKey,
) -> anyhow::Result<Vec<ConfigSummary>> {
    summaries_with(store, sweep_id, sort, Retired::Exclude)
}

/// Which configs a summary lists: the sweep's current definition only, or also those that
/// left it (listed after the current ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    Exclude,
    Include,
}

/// [`summaries`], with the configs that left the sweep when `retired` says so.
pub fn summaries_with(
    store: &Store,
    sweep_id: i64,
    sort: SortKey,
    retired: Retired,
) -> anyhow::Result<Vec<ConfigSummary>> {
    let (_, folds_total) = store.sweep_head(sweep_id)?;
    let mut out = store
        .sweep_configs(sweep_id, retired == Retired::Include)?
        .into_iter()
        .map(|row| summarize(store, row, folds_total))
        .collect::<anyhow::Result<Vec<_>>>()?;
    sort_summaries(&mut out, sort);
    Ok(out)
}

/// Summaries sorted by `sort`, or when None by the sweep's default criterion (shifted RMSE
/// with probes, else pooled OOF RMSE); returns the key used.
pub fn summaries_by(
    store: &Store,
    sweep_id: i64,
    sort: Option<SortKey>,
    retired: Retired,
) -> anyhow::Result<(Vec<ConfigSummary>, SortKey)> {
    let mut rows = summaries_with(store, sweep_id, sort.unwrap_or(SortKey::Oof), retired)?;
    let key = sort.unwrap_or_else(|| Criterion::default_for(&rows).sort_key());
    sort_summaries(&mut rows, key);
    Ok((rows, key))
}

/// Best first by `sort`: retired configs, configs with a diverged fold and configs without a
/// value come last.
pub fn sort_summaries(rows: &mut [ConfigSummary], sort: SortKey) {
    rows.sort_by(|a, b| {
        let rank =
            |s: &ConfigSummary| (s.retired, s.diverged > 0, s.pruned > 0, sort.value(s).is_none());
        rank(a).cmp(&rank(b)).then_with(|| match (sort.value(a), sort.value(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => a.position.cmp(&b.position),
        })
    });
}

/// The probe settings a config was judged on, from its stored params.
pub fn probe_config(store: &Store, config_id: &str) -> anyhow::Result<Option<ProbeConfig>> {
    let Some(params) = store.config_params(config_id)? else { return Ok(None) };
    let params: serde_json::Value = serde_json::from_str(&params)?;
    match params.pointer("/validation/probe") {
        Some(probe) => Ok(Some(serde_json::from_value(probe.clone())?)),
        None => Ok(None),
    }
}

fn summarize(
    store: &Store,
    row: SweepConfigRow,
    folds_total: usize,
) -> anyhow::Result<ConfigSummary> {
    let id = row.config_id.as_str();
    let varying: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&row.varying_json).unwrap_or_default();
    let varying = varying
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    let fold_rmse: Vec<(usize, f64)> =
        store.fold_metrics(id)?.iter().map(|f| (f.fold, f.rmse)).collect();
    let folds_failed = store.config_jobs_in(id, JobStatus::Failed)?;
    let diverged = store.config_jobs_in(id, JobStatus::Diverged)?;
    let pruned = store.config_jobs_in(id, JobStatus::Pruned)?;
    let (mean_rmse, sd_rmse) = mean_sd(&fold_rmse.iter().map(|(_, r)| *r).collect::<Vec<_>>());
    let oof = store.oof_predictions(id)?;
    let mut sums = [0.0f64; NUM_BINS];
    let mut counts = [0usize; NUM_BINS];
    for (truth, prediction) in &oof {
        let bin = score_bin(*truth as f32);
        sums[bin] += (prediction - truth).powi(2);
        counts[bin] += 1;
    }
    let bin_rmse: Vec<Option<f64>> = (0..NUM_BINS)
        .map(|b| (counts[b] > 0).then(|| (sums[b] / counts[b] as f64).sqrt()))
        .collect();
    let filled: Vec<f64> = bin_rmse.iter().flatten().copied().collect();
    let oof_rounded_rmse = pooled_rmse(oof.iter().map(|(t, p)| (*t, p.clamp(0.0, 10.0).round())));
    let probe = probe_config(store, id)?;
    let real_mse = (!oof.is_empty()).then(|| sums.iter().sum::<f64>() / oof.len() as f64);
    let probe_mse = match &probe {
        Some(config) => {
            let rows = store.probe_rows(id)?;
            (!rows.is_empty()).then(|| config.mse(rows.iter().map(|r| r.prediction)))
        }
        None => None,
    };
    let shifted_rmse = probe
        .as_ref()
        .zip(real_mse.zip(probe_mse))
        .map(|(config, (real, probe))| config.shifted_rmse(real, probe));
    Ok(ConfigSummary {
        id: id.to_string(),
        label: row.label,
        varying,
        folds_done: fold_rmse.len(),
        folds_total,
        folds_failed,
        diverged,
        pruned,
        retired: row.retired,
        fold_rmse,
        mean_rmse,
        sd_rmse,
        oof_rmse: (!oof.is_empty()).then(|| (sums.iter().sum::<f64>() / oof.len() as f64).sqrt()),
        macro_rmse: (!filled.is_empty()).then(|| filled.iter().sum::<f64>() / filled.len() as f64),
        oof_rounded_rmse,
        probe_rmse: probe_mse.map(f64::sqrt),
        shifted_rmse,
        probe,
        bin_rmse,
        bin_count: counts.to_vec(),
        fold_hash: row.fold_hash,
        position: row.position,
    })
}

/// sqrt of the mean squared error over (truth, prediction) pairs; None without pairs.
fn pooled_rmse(pairs: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let (sum, n) = pairs.fold((0.0, 0usize), |(sum, n), (t, p)| (sum + (p - t).powi(2), n + 1));
    (n > 0).then(|| (sum / n as f64).sqrt())
}

/// Mean and sample standard deviation (n - 1).
pub fn mean_sd(values: &[f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.len() > 1)
        .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (Some(mean), sd)
}
