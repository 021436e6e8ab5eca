//! `foldsweep export`: the chosen config's fold ensemble on the test set, as a submission.
//!
//! Every job stores its test predictions at its best epoch, so a config's submission is the
//! mean of stored rows and needs no checkpoint; only another test file than `data.test` (or a
//! `data.test` edited since the sweep) is predicted from checkpoints, which sweeps keep only
//! with `[resources] checkpoints = "all"`.
//!
//! Checks before predicting, since a mismatch would otherwise pass silently or panic inside
//! burn: a new test file with precomputed text features needs its own embeddings (the
//! config's belong to its `data.test`), and every checkpoint's input widths must match the
//! test features.

use std::path::{Path, PathBuf};

use crate::config::{Config, TextEncoderKind};
use crate::error::InputError;
use crate::job::{predict_from_checkpoints, test_fingerprint};
use crate::sampling::NUM_BINS;
use crate::store::{FoldMetrics, Store};

#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub config_id: String,
    pub test: Option<PathBuf>,
    /// Precomputed text embeddings of `test` (with the `precomputed` encoder only).
    pub test_embeddings: Option<PathBuf>,
    pub out: PathBuf,
    pub round: bool,
    pub allow_partial: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    pub rows: usize,
    pub folds_used: usize,
    /// Where the fold predictions came from.
    pub source: Source,
    pub histogram: [usize; NUM_BINS],
    pub mean: f64,
}

/// Where a config's test predictions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Predicted by each job at its best epoch and stored with its results.
    Stored,
    /// Predicted now from each fold's checkpoint.
    Checkpoints,
}

/// Averages each finished fold's predictions of the test records, clamps to [0, 10], rounds
/// when asked to, and writes `ID,score` with IDs 1..N in file order.
pub fn export(store: &Store, request: &ExportRequest) -> anyhow::Result<ExportReport> {
    let (scores, folds_used, source) = fold_mean(store, request)?;
    let scores = finish(&scores, request.round);
    write_submission(&request.out, &scores, request.round)?;
    Ok(report(&scores, folds_used, source))
}

/// The mean of a config's fold predictions of the test records (not yet clamped), how many
/// folds, and from where: the stored predictions when they are of this very test file (the
/// config's `data.test`, unchanged since), else the checkpoints.
pub fn fold_mean(
    store: &Store,
    request: &ExportRequest,
) -> anyhow::Result<(Vec<f64>, usize, Source)> {
    let config = stored_config(store, &request.config_id)?;
    let folds = store.fold_metrics(&request.config_id)?;
    check_folds(request, &config, folds.len())?;
    let test_path = request.test.clone().or_else(|| config.data.test.clone()).ok_or_else(|| {
        InputError::new("no test file: name one, or set data.test in the sweep file").field("test")
    })?;
    if let Some(stored) = stored_predictions(store, request, &config, &folds, &test_path)? {
        return Ok((mean_of(&stored), stored.len(), Source::Stored));
    }
    let predictions = checkpoint_predictions(store, request, config, &folds, &test_path)?;
    Ok((mean_of(&predictions), predictions.len(), Source::Checkpoints))
}

fn stored_config(store: &Store, config_id: &str) -> anyhow::Result<Config> {
    let params = store.config_params(config_id)?.ok_or_else(|| {
        InputError::new(format!("no config with id {config_id:?} in this database")).field("config")
    })?;
    Ok(serde_json::from_str(&params)?)
}

fn check_folds(request: &ExportRequest, config: &Config, finished: usize) -> anyhow::Result<()> {
    if finished < config.cv.folds && !request.allow_partial {
        return Err(InputError::new(format!(
            "config {} has {finished} of {} folds finished; finish the sweep or pass --allow-partial",
            request.config_id, config.cv.folds
        ))
        .field("config")
        .into());
    }
    if finished == 0 {
        return Err(InputError::new(format!("config {} has no finished fold", request.config_id))
            .field("config")
            .into());
    }
    Ok(())
}

/// Each fold's stored predictions, when every finished fold stored them for the test files
/// as they are now; None otherwise (another test file, or data.test changed since).
fn stored_predictions(
    store: &Store,
    request: &ExportRequest,
    config: &Config,
    folds: &[FoldMetrics],
    test_path: &Path,
) -> anyhow::Result<Option<Vec<Vec<f64>>>> {
    let is_data_test = config.data.test.as_deref() == Some(test_path);
    if !is_data_test || request.test_embeddings.is_some() {
        return Ok(None);
    }
    let fingerprint = test_fingerprint(config, test_path)?;
    if folds.iter().any(|f| f.test_fingerprint.as_deref() != Some(fingerprint.as_str())) {
        return Ok(None);
    }
    let stored = store.test_predictions(&request.config_id)?;
    Ok((stored.len() == folds.len()).then(|| stored.into_iter().map(|(_, p)| p).collect()))
}

/// Each fold's predictions from its checkpoint; a sweep that kept none says what is missing.
fn checkpoint_predictions(
    store: &Store,
    request: &ExportRequest,
    mut config: Config,
    folds: &[FoldMetrics],
    test_path: &Path,
) -> anyhow::Result<Vec<Vec<f64>>> {
    if config.features.prototypes || !config.train.model.is_neural() {
        return Err(InputError::in_file(
            test_path,
            format!(
                "config {} has no stored predictions of this test file, and a config with \
                 features.prototypes or model gbdt cannot predict another one (its fold \
                 prototypes and trees are not saved): rerun the sweep with this file as data.test",
                request.config_id
            ),
        )
        .field("test")
        .into());
    }
    if let Some(fold) = folds.iter().find(|f| f.checkpoint.is_none()) {
        return Err(InputError::in_file(
            test_path,
            format!(
                "config {} has no stored predictions of this test file, and fold {} kept no \
                 checkpoint (resources.checkpoints = \"none\"): rerun the sweep with this file \
                 as data.test, or with [resources] checkpoints = \"all\" to export other test \
                 files",
                request.config_id, fold.fold
            ),
        )
        .field("test")
        .into());
    }
    config.text.test_embeddings = test_embeddings(&config, request, test_path)?;
    let dirs: Vec<PathBuf> = folds
        .iter()
        .map(|fold| store.base_dir().join(fold.checkpoint.as_deref().expect("checked above")))
        .collect();
    predict_from_checkpoints(&config, test_path, &dirs)
}

fn mean_of(folds: &[Vec<f64>]) -> Vec<f64> {
    let len = folds.first().map_or(0, Vec::len);
    (0..len).map(|i| folds.iter().map(|f| f[i]).sum::<f64>() / folds.len() as f64).collect()
}

/// Clamped to [0, 10], and rounded to whole scores when asked.
pub fn finish(scores: &[f64], round: bool) -> Vec<f64> {
    scores.iter().map(|s| s.clamp(0.0, 10.0)).map(|s| if round { s.round() } else { s }).collect()
}

pub fn report(scores: &[f64], folds_used: usize, source: Source) -> ExportReport {
    let mut histogram = [0usize; NUM_BINS];
    scores.iter().for_each(|s| histogram[s.round() as usize] += 1);
    ExportReport {
        rows: scores.len(),
        folds_used,
        source,
        histogram,
        mean: scores.iter().sum::<f64>() / scores.len().max(1) as f64,
    }
}

/// The text embeddings of `test_path` when the config reads precomputed ones: the config's own
/// `text.test_embeddings` belong to its `data.test`, so any other test file needs its own.
fn test_embeddings(
    config: &Config,
    request: &ExportRequest,
    test_path: &Path,
) -> Result<Option<PathBuf>, InputError> {
    let precomputed = config.text.encoder == TextEncoderKind::Precomputed;
    match (&request.test_embeddings, precomputed) {
        (Some(_), false) => Err(InputError::new(
            "test embeddings are only read with text.encoder = \"precomputed\"",
        )
        .field("test_embeddings")),
        (Some(path), true) => Ok(Some(path.clone())),
        (None, true) if config.data.test.as_deref() != Some(test_path) => Err(InputError::in_file(
            test_path,
            "this config reads precomputed text embeddings, and the configured ones \
                 (text.test_embeddings) belong to data.test: give this file's own embeddings",
        )
        .field("test_embeddings")),
        (None, _) => Ok(config.text.test_embeddings.clone()),
    }
}

pub fn write_submission(path: &Path, scores: &[f64], rounded: bool) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["ID", "score"])?;
    for (i, s) in scores.iter().enumerate() {
        let value = if rounded { format!("{s:.1}") } else { format!("{s:.4}") };
        w.write_record([(i + 1).to_string(), value])?;
    }
    crate::util::write_atomic(path, &w.into_inner()?)
}
