//! `foldsweep export`: the chosen config's fold ensemble on the test set, as a submission.
//!
//! Checks before predicting, since a mismatch would otherwise pass silently or panic inside
//! burn: a new test file with precomputed text features needs its own embeddings (the
//! config's belong to its `data.test`), and every checkpoint's input widths must match the
//! test features.

use std::path::{Path, PathBuf};

use crate::backend::{cpu_device, Cpu};
use crate::config::{Config, TextEncoderKind};
use crate::data::{Dataset, MetricTable, Split};
use crate::error::InputError;
use crate::model::ModelSpec;
use crate::sampling::{Sample, NUM_BINS};
use crate::store::Store;
use crate::text::{text_features, Part};
use crate::train::{checkpoint, predict, Features};

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
    pub histogram: [usize; NUM_BINS],
    pub mean: f64,
}

/// Predicts every test record with each finished fold's checkpoint, averages, clamps to
/// [0, 10], rounds when asked to, and writes `ID,score` with IDs 1..N in file order.
pub fn export(store: &Store, request: &ExportRequest) -> anyhow::Result<ExportReport> {
    let params = store.config_params(&request.config_id)?.ok_or_else(|| {
        InputError::new(format!("no config with id {:?} in this database", request.config_id))
            .field("config")
    })?;
    let mut config: Config = serde_json::from_str(&params)?;
    let folds: Vec<(usize, Option<String>)> = store
        .fold_metrics(&request.config_id)?
        .into_iter()
        .map(|f| (f.fold, f.checkpoint))
        .collect();
    if folds.len() < config.cv.folds && !request.allow_partial {
        return Err(InputError::new(format!(
            "config {} has {} of {} folds finished; finish the sweep or pass --allow-partial",
            request.config_id,
            folds.len(),
            config.cv.folds
        ))
        .field("config")
        .into());
    }
    if folds.is_empty() {
        return Err(InputError::new(format!("config {} has no finished fold", request.config_id))
            .field("config")
            .into());
    }
    let test_path = request.test.clone().or_else(|| config.data.test.clone()).ok_or_else(|| {
        InputError::new("no test file: name one, or set data.test in the sweep file").field("test")
    })?;
    config.text.test_embeddings = test_embeddings(&config, request, &test_path)?;
    let metrics = MetricTable::load(&config.data.metric_names, &config.data.metric_embeddings)?;
    let test = Dataset::load(&test_path, Split::Test, metrics)?;
    let texts = text_features(&config, &test, Part::Test)?;
    let samples: Vec<Sample> = (0..test.len())
        .map(|i| Sample {
            metric_row: test.metric_rows[i],
            text_row: i,
            target: 0.0,
            weight: 1.0,
            record: i,
            synthetic: false,
        })
        .collect();
    let features = Features { metrics: &test.metrics.embeddings, texts: &texts };
    let device = cpu_device();
    let mut sum = vec![0.0f64; test.len()];
    for (fold, path) in &folds {
        let dir = store
            .base_dir()
            .join(path.as_deref().ok_or_else(|| anyhow::anyhow!("fold {fold} has no checkpoint"))?);
        let (spec, model) = checkpoint::load::<Cpu>(&dir, &device)?;
        check_widths(&spec, &dir, test.metrics.dim(), texts.cols)?;
        for (s, p) in sum.iter_mut().zip(predict(&model, features, &samples, &device).scores) {
            *s += p as f64;
        }
    }
    let scores: Vec<f64> = sum
        .iter()
        .map(|s| (s / folds.len() as f64).clamp(0.0, 10.0))
        .map(|s| if request.round { s.round() } else { s })
        .collect();
    write_submission(&request.out, &scores, request.round)?;
    let mut histogram = [0usize; NUM_BINS];
    scores.iter().for_each(|s| histogram[s.round() as usize] += 1);
    Ok(ExportReport {
        rows: scores.len(),
        folds_used: folds.len(),
        histogram,
        mean: scores.iter().sum::<f64>() / scores.len().max(1) as f64,
    })
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

/// A checkpoint only fits features of the widths it was trained on; say so rather than let
/// burn panic on the shapes.
fn check_widths(
    spec: &ModelSpec,
    checkpoint: &Path,
    metric_width: usize,
    text_width: usize,
) -> Result<(), InputError> {
    if spec.d_metric == metric_width && spec.d_text == text_width {
        return Ok(());
    }
    Err(InputError::in_file(
        checkpoint,
        format!(
            "the checkpoint was trained on metric width {} and text width {}, but the test \
             features have metric width {metric_width} and text width {text_width}",
            spec.d_metric, spec.d_text
        ),
    ))
}

fn write_submission(path: &Path, scores: &[f64], rounded: bool) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["ID", "score"])?;
    for (i, s) in scores.iter().enumerate() {
        let value = if rounded { format!("{s:.1}") } else { format!("{s:.4}") };
        w.write_record([(i + 1).to_string(), value])?;
    }
    crate::util::write_atomic(path, &w.into_inner()?)
}
