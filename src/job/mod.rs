//! A job: one resolved config trained and evaluated on one fold. Sweeps run many of them;
//! `foldsweep train` runs one.

pub mod bench;
mod device;
pub mod fold;
pub mod gbdt;
mod infer;
pub mod margins;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, TextEncoderKind};
use crate::cv::FoldAssignment;
use crate::data::{Dataset, Matrix, MetricTable, Split};
use crate::error::{InputError, InputResult};
use crate::features::families;
use crate::model::ModelSpec;
use crate::sampling::{apply_weights, synthetic_negatives_among, Sample};
use crate::text::{text_features, Part};
use crate::train::{
    checkpoint, fit_probed, predict, Diverged, EpochLog, EvalMetrics, Features, FitRows, Probes,
};
pub use device::{bench_epoch_on, run_fold_on};
pub use fold::{fold_result, FoldSets, NeuralInputs, TrainedFold};
pub use infer::predict_from_checkpoints;

/// The training data of a config, loaded once and shared by all its folds.
#[derive(Debug, Clone)]
pub struct TrainingData {
    pub dataset: Dataset,
    pub texts: Matrix,
    pub folds: FoldAssignment,
    /// The test records and their text features, when `data.test` is set: every job predicts
    /// them at its best epoch, so `export` needs no checkpoint.
    pub test: Option<TestData>,
}

/// The test records of a config, as a job predicts them.
#[derive(Debug, Clone)]
pub struct TestData {
    pub dataset: Dataset,
    pub texts: Matrix,
    /// Content hash of what the predictions depend on (the records and precomputed text).
    pub fingerprint: String,
}

impl TestData {
    pub fn load(config: &Config, path: &Path) -> anyhow::Result<TestData> {
        let metrics = MetricTable::load(&config.data.metric_names, &config.data.metric_embeddings)?;
        let dataset = Dataset::load(path, Split::Test, metrics)?;
        let texts = text_features(config, &dataset, Part::Test)?;
        Ok(TestData { fingerprint: test_fingerprint(config, path)?, dataset, texts })
    }

    pub fn features(&self) -> Features<'_> {
        Features { metrics: &self.dataset.metrics.embeddings, texts: &self.texts }
    }

    pub fn samples(&self) -> Vec<Sample> {
        unlabelled_samples(&self.dataset)
    }
}

/// One sample per record of an unlabelled (test) dataset, in file order: record i pairs its
/// metric with text row i.
pub fn unlabelled_samples(dataset: &Dataset) -> Vec<Sample> {
    (0..dataset.len())
        .map(|i| Sample {
            metric_row: dataset.metric_rows[i],
            text_row: i,
            target: 0.0,
            weight: 1.0,
            record: i,
            synthetic: false,
        })
        .collect()
}

/// Hash of the test records file and, for a precomputed encoder, the test embeddings.
pub fn test_fingerprint(config: &Config, path: &Path) -> InputResult<String> {
    let mut hasher = Sha256::new();
    let embeddings = match config.text.encoder {
        TextEncoderKind::Precomputed => config.text.test_embeddings.as_deref(),
        _ => None,
    };
    for file in std::iter::once(path).chain(embeddings) {
        let bytes = std::fs::read(file)
            .map_err(|e| InputError::in_file(file, format!("cannot read: {e}")))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(crate::util::hex16(&hasher.finalize()))
}

impl TrainingData {
    pub fn load(config: &Config) -> anyhow::Result<TrainingData> {
        let metrics = MetricTable::load(&config.data.metric_names, &config.data.metric_embeddings)?;
        let dataset = Dataset::load(&config.data.train, Split::Train, metrics)?;
        if dataset.len() < config.cv.folds {
            return Err(InputError::in_file(
                &config.data.train,
                format!("{} records cannot be split into {} folds", dataset.len(), config.cv.folds),
            )
            .into());
        }
        let texts = text_features(config, &dataset, Part::Train)?;
        let folds =
            FoldAssignment::stratified(&dataset.score_bins(), config.cv.folds, config.cv.seed);
        let test =
            config.data.test.as_deref().map(|path| TestData::load(config, path)).transpose()?;
        Ok(TrainingData { dataset, texts, folds, test })
    }

    pub fn features(&self) -> Features<'_> {
        Features { metrics: &self.dataset.metrics.embeddings, texts: &self.texts }
    }

    /// Training samples (real rows, then synthetic negatives made from them, all weighted)
    /// and validation samples (real rows only) of fold `k`.
    pub fn fold_samples(&self, config: &Config, k: usize) -> (Vec<Sample>, Vec<Sample>) {
        let (train_rows, val_rows) = self.folds.split(k);
        let real = |rows: &[usize]| -> Vec<Sample> {
            rows.iter()
                .map(|&i| Sample {
                    metric_row: self.dataset.metric_rows[i],
                    text_row: i,
                    target: self.dataset.records[i].score.expect("train records have scores"),
                    weight: 1.0,
                    record: i,
                    synthetic: false,
                })
                .collect()
        };
        let mut train = real(&train_rows);
        let seed = config.train.seed.wrapping_mul(1000).wrapping_add(k as u64);
        let synthetic = &config.train.synthetic;
        let family = synthetic.other_family.then(|| families(&self.dataset.metrics.names).0);
        let num_metrics = self.dataset.metrics.len();
        let negatives =
            synthetic_negatives_among(&train, num_metrics, synthetic, seed, family.as_deref());
        train.extend(negatives);
        apply_weights(&mut train, &config.train.weighting);
        (train, real(&val_rows))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OofPrediction {
    pub record: usize,
    pub truth: f32,
    pub prediction: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logvar: Option<f32>,
}

/// Everything one job reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    pub fold: usize,
    pub folds: usize,
    pub fold_hash: String,
    pub train_rows: usize,
    pub synthetic_rows: usize,
    pub val_rows: usize,
    pub best_epoch: usize,
    pub epochs_run: usize,
    /// Validation metrics of the best epoch.
    pub metrics: EvalMetrics,
    /// RMSE on the same validation rows of always predicting the training rows' mean score:
    /// the bar any model has to clear.
    pub mean_predictor_rmse: f64,
    pub epochs: Vec<EpochLog>,
    pub oof: Vec<OofPrediction>,
    pub checkpoint: Option<PathBuf>,
    pub train_seconds: f64,
    /// With `[validation] probe`: what the probe rows said at the best epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeResult>,
    /// With `data.test`: the test records' predictions at the best epoch, in file order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestPredictions>,
}

/// A fold's probe figures (see [`crate::probe`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub rmse: f64,
    pub shifted_rmse: f64,
    /// The train-mean predictor's shifted RMSE on the same rows: the bar to clear.
    pub mean_predictor_shifted_rmse: f64,
    pub rows: Vec<ProbePrediction>,
}

/// One probe row: a validation record's text with another metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbePrediction {
    pub record: usize,
    pub metric_row: usize,
    pub prediction: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestPredictions {
    /// [`test_fingerprint`] of the files predicted.
    pub fingerprint: String,
    pub predictions: Vec<f32>,
}

/// How training a fold ended. Divergence is an outcome, not an error: a sweep records it and
/// never retries it, `train` reports it; `Err` is kept for what went wrong (bad input, I/O).
/// A worker writes this to its result file (the variant names are that file's format).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FoldRun {
    Done(Box<FoldResult>),
    Diverged(Diverged),
}

/// Trains fold `k` of `config` and evaluates it on the untouched validation rows.
/// With `checkpoint_dir`, the best epoch's weights are saved there. A `gbdt` config trains
/// its trees instead (on the CPU, whatever `B` is; see [`gbdt`]).
pub fn run_fold<B: AutodiffBackend>(
    config: &Config,
    data: &TrainingData,
    k: usize,
    checkpoint_dir: Option<&Path>,
    device: &B::Device,
    on_epoch: &mut dyn FnMut(&EpochLog),
) -> anyhow::Result<FoldRun> {
    if k >= config.cv.folds {
        return Err(InputError::new(format!(
            "fold {k} does not exist: folds are 0..{}",
            config.cv.folds - 1
        ))
        .field("fold")
        .into());
    }
    let sets = FoldSets::new(config, data, k);
    let outcome = if config.train.model.is_neural() {
        match train_neural::<B>(config, data, &sets, checkpoint_dir, device, on_epoch)? {
            Ok(trained) => trained,
            Err(diverged) => return Ok(FoldRun::Diverged(diverged)),
        }
    } else {
        gbdt::train_trees(config, data, &sets, on_epoch)?
    };
    Ok(FoldRun::Done(Box::new(fold_result(config, data, &sets, outcome))))
}

/// The bilinear + MLP model on one fold, or where it diverged; with prototypes, their
/// features ride along with each sample's text (see [`fold::NeuralInputs`]).
fn train_neural<B: AutodiffBackend>(
    config: &Config,
    data: &TrainingData,
    sets: &FoldSets,
    checkpoint_dir: Option<&Path>,
    device: &B::Device,
    on_epoch: &mut dyn FnMut(&EpochLog),
) -> anyhow::Result<Result<TrainedFold, Diverged>> {
    let inputs = NeuralInputs::build(config, data, sets);
    let (features, train, val, probe_rows) = match &inputs {
        Some(i) => (i.features(data), &i.train, &i.val, &i.probes),
        None => (data.features(), &sets.train, &sets.val, &sets.probes),
    };
    let probes = config.validation.probe.as_ref().map(|config_probe| Probes {
        rows: probe_rows,
        config: config_probe,
        monitor: config.validation.monitor(),
    });
    let spec =
        ModelSpec::from_config(&config.train, data.dataset.metrics.dim(), features.texts.cols);
    let started = Instant::now();
    let rows = FitRows { features, train, val, probes };
    let fitted = fit_probed::<B>(&spec, &config.train, rows, device, on_epoch);
    let outcome = match fitted {
        Ok(outcome) => outcome,
        Err(diverged) => return Ok(Err(diverged)),
    };
    let train_seconds = started.elapsed().as_secs_f64();
    let test_predictions =
        data.test.as_ref().map(|test| match inputs.as_ref().and_then(|i| i.test.as_ref()) {
            Some((texts, samples)) => {
                let features = Features { metrics: &test.dataset.metrics.embeddings, texts };
                predict(&outcome.model, features, samples, device).scores
            }
            None => predict(&outcome.model, test.features(), &test.samples(), device).scores,
        });
    let checkpoint = match checkpoint_dir {
        Some(dir) => Some(checkpoint::save(dir, &spec, &outcome.model)?),
        None => None,
    };
    Ok(Ok(TrainedFold {
        best_epoch: outcome.best_epoch,
        epochs_run: outcome.epochs_run,
        log: outcome.log,
        val_metrics: outcome.val_metrics,
        val_predictions: outcome.val_predictions,
        probe_predictions: outcome.probe.map(|p| p.predictions).unwrap_or_default(),
        test_predictions,
        checkpoint,
        train_seconds,
    }))
}
