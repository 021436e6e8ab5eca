//! What every job of a fold shares, whatever the model family: its sample sets (training rows
//! and synthetic negatives, validation rows, probe rows), the inputs of the neural heads with
//! prototype features, and the [`FoldResult`] made of what a family's training returned.

use std::path::PathBuf;

use crate::config::Config;
use crate::data::Matrix;
use crate::features::fold::{append_to_texts, FoldFeatures, FoldSamples};
use crate::sampling::Sample;
use crate::train::{EpochLog, EvalMetrics, Features, Predictions};

use super::{
    FoldResult, OofPrediction, ProbePrediction, ProbeResult, TestPredictions, TrainingData,
};

/// The samples of fold `k`: what trains, what validates and the probe rows.
#[derive(Debug, Clone)]
pub struct FoldSets {
    pub k: usize,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub probes: Vec<Sample>,
}

impl FoldSets {
    pub fn new(config: &Config, data: &TrainingData, k: usize) -> FoldSets {
        let (train, val) = data.fold_samples(config, k);
        let probes = config
            .validation
            .probe
            .as_ref()
            .map(|p| crate::probe::probe_rows(p, &val, data.dataset.metrics.len(), k))
            .unwrap_or_default();
        FoldSets { k, train, val, probes }
    }

    /// The prototype features of every set (and of the test records), fitted on this fold's
    /// real training rows only.
    pub fn prototype_features(&self, config: &Config, data: &TrainingData) -> FoldFeatures {
        let test = data.test.as_ref().map(|t| (t, t.samples()));
        let fold = FoldSamples {
            texts: &data.texts,
            train: &self.train,
            val: &self.val,
            probes: &self.probes,
            test: test.as_ref().map(|(t, samples)| (&t.texts, samples.as_slice())),
        };
        FoldFeatures::compute(config.features, fold, &data.dataset.metrics.names)
    }
}

/// The neural heads' inputs: with prototypes, every sample's text row followed by its
/// standardised prototype features, and the samples pointing at those rows.
pub struct NeuralInputs {
    pub texts: Matrix,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub probes: Vec<Sample>,
    pub test: Option<(Matrix, Vec<Sample>)>,
}

impl NeuralInputs {
    /// `None` without `features.prototypes`: the data's own matrices serve as they are.
    pub fn build(config: &Config, data: &TrainingData, sets: &FoldSets) -> Option<NeuralInputs> {
        if !config.features.prototypes {
            return None;
        }
        let mut features = sets.prototype_features(config, data);
        features.standardise();
        let (texts, mut remapped) = append_to_texts(
            &data.texts,
            &[
                (&sets.train, &features.train),
                (&sets.val, &features.val),
                (&sets.probes, &features.probes),
            ],
        );
        let probes = remapped.pop().unwrap_or_default();
        let val = remapped.pop().unwrap_or_default();
        let train = remapped.pop().unwrap_or_default();
        let test = data.test.as_ref().zip(features.test.as_ref()).map(|(t, f)| {
            let samples = t.samples();
            let (matrix, mut sets) = append_to_texts(&t.texts, &[(&samples, f)]);
            (matrix, sets.pop().unwrap_or_default())
        });
        Some(NeuralInputs { texts, train, val, probes, test })
    }

    pub fn features<'a>(&'a self, data: &'a TrainingData) -> Features<'a> {
        Features { metrics: &data.dataset.metrics.embeddings, texts: &self.texts }
    }
}

/// What training a fold produced, in any family, at its best epoch (or boosting round): the
/// raw predictions, before [`fold_result`] scores them into the [`FoldResult`] a job reports.
pub struct TrainedFold {
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub log: Vec<EpochLog>,
    pub val_metrics: EvalMetrics,
    pub val_predictions: Predictions,
    /// One per probe row, in the probes' order (empty without probes).
    pub probe_predictions: Vec<f32>,
    /// The test records' predictions, in file order.
    pub test_predictions: Option<Vec<f32>>,
    pub checkpoint: Option<PathBuf>,
    pub train_seconds: f64,
}

/// The job's report: OOF rows, the probes' figures against the train-mean predictor's, and
/// the test predictions.
pub fn fold_result(
    config: &Config,
    data: &TrainingData,
    sets: &FoldSets,
    outcome: TrainedFold,
) -> FoldResult {
    let (train, val) = (&sets.train, &sets.val);
    let real_train: Vec<f32> = train.iter().filter(|s| !s.synthetic).map(|s| s.target).collect();
    let train_mean = real_train.iter().sum::<f32>() / real_train.len().max(1) as f32;
    let val_truth: Vec<f32> = val.iter().map(|s| s.target).collect();
    let mean_predictor_rmse = EvalMetrics::compute(&val_truth, &vec![train_mean; val.len()]).rmse;
    let probe = config.validation.probe.as_ref().map(|probe_config| {
        let probe_mse = probe_config.mse(outcome.probe_predictions.iter().map(|&p| p as f64));
        ProbeResult {
            rmse: probe_mse.sqrt(),
            shifted_rmse: probe_config.shifted_rmse(outcome.val_metrics.rmse.powi(2), probe_mse),
            mean_predictor_shifted_rmse: probe_config.shifted_rmse(
                mean_predictor_rmse.powi(2),
                probe_config.mse(std::iter::repeat_n(train_mean as f64, sets.probes.len())),
            ),
            rows: sets
                .probes
                .iter()
                .zip(&outcome.probe_predictions)
                .map(|(row, &prediction)| ProbePrediction {
                    record: row.record,
                    metric_row: row.metric_row,
                    prediction,
                })
                .collect(),
        }
    });
    let oof = val
        .iter()
        .enumerate()
        .map(|(i, sample)| OofPrediction {
            record: sample.record,
            truth: sample.target,
            prediction: outcome.val_predictions.scores[i],
            logvar: outcome.val_predictions.logvars.as_ref().map(|v| v[i]),
        })
        .collect();
    let test = data.test.as_ref().zip(outcome.test_predictions).map(|(test, predictions)| {
        TestPredictions { fingerprint: test.fingerprint.clone(), predictions }
    });
    FoldResult {
        fold: sets.k,
        folds: config.cv.folds,
        fold_hash: data.folds.hash(),
        train_rows: train.iter().filter(|s| !s.synthetic).count(),
        synthetic_rows: train.iter().filter(|s| s.synthetic).count(),
        val_rows: val.len(),
        best_epoch: outcome.best_epoch,
        epochs_run: outcome.epochs_run,
        metrics: outcome.val_metrics,
        mean_predictor_rmse,
        epochs: outcome.log,
        oof,
        checkpoint: outcome.checkpoint,
        train_seconds: outcome.train_seconds,
        probe,
        test,
    }
}
