//! Training one model on one fold: batches, the epoch loop, evaluation, checkpoints.

pub mod checkpoint;
pub mod fused;
pub mod metrics;
pub mod optim;
pub mod schedule;

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::backend::{initialized, seeded};
use crate::config::TrainConfig;
use crate::data::{score_bin, Matrix};
use crate::model::loss::{predict_logvar, weighted_loss};
use crate::model::{predict_score, LossSettings, ModelSpec, PairModel, Targets};
use crate::probe::{Monitor, ProbeConfig};
use crate::sampling::Sample;
pub use metrics::{BinMetric, EvalMetrics};
use optim::{Adam, AdamSettings};
use schedule::{EarlyStopping, ReduceLrOnPlateau};

/// Rows per evaluation batch: large enough to keep matrix products efficient.
pub const EVAL_BATCH: usize = 256;

/// The feature matrices samples point into.
#[derive(Debug, Clone, Copy)]
pub struct Features<'a> {
    pub metrics: &'a Matrix,
    pub texts: &'a Matrix,
}

impl Features<'_> {
    /// Host-side gather of one batch into device tensors.
    pub fn batch<B: Backend>(
        &self,
        samples: &[Sample],
        device: &B::Device,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let metric_rows: Vec<usize> = samples.iter().map(|s| s.metric_row).collect();
        let text_rows: Vec<usize> = samples.iter().map(|s| s.text_row).collect();
        (gather(self.metrics, &metric_rows, device), gather(self.texts, &text_rows, device))
    }
}

/// The given rows of `matrix` as a device tensor, in the backend's float type (bf16/f16
/// models on a GPU).
fn gather<B: Backend>(matrix: &Matrix, rows: &[usize], device: &B::Device) -> Tensor<B, 2> {
    let mut data = Vec::with_capacity(rows.len() * matrix.cols);
    for &row in rows {
        data.extend_from_slice(matrix.row(row));
    }
    Tensor::from_data(
        TensorData::new(data, [rows.len(), matrix.cols]).convert::<B::FloatElem>(),
        device,
    )
}

fn targets<B: Backend>(samples: &[Sample], device: &B::Device) -> (Targets<B>, Tensor<B, 1>) {
    let n = samples.len();
    let score: Vec<f32> = samples.iter().map(|s| s.target).collect();
    let class: Vec<i64> = samples.iter().map(|s| score_bin(s.target) as i64).collect();
    let weight: Vec<f32> = samples.iter().map(|s| s.weight).collect();
    let targets = Targets {
        score: Tensor::from_data(TensorData::new(score, [n]).convert::<B::FloatElem>(), device),
        class: Tensor::<B, 1, Int>::from_data(TensorData::new(class, [n]), device),
    };
    (targets, Tensor::from_data(TensorData::new(weight, [n]).convert::<B::FloatElem>(), device))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_loss: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub val_rmse: f64,
    /// Learning rate used during this epoch.
    pub lr: f64,
    pub seconds: f64,
    /// With validation probes: the probe rows' RMSE and the shifted RMSE (see [`crate::probe`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_rmse: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shifted_rmse: Option<f64>,
}

impl EpochLog {
    /// The figure early stopping and the plateau schedule watch.
    pub fn monitored(&self, monitor: Monitor) -> f64 {
        match (monitor, self.shifted_rmse) {
            (Monitor::Shifted, Some(shifted)) => shifted,
            _ => self.val_rmse,
        }
    }
}

/// Probe rows of a fold's validation set and how to judge them.
#[derive(Debug, Clone, Copy)]
pub struct Probes<'a> {
    pub rows: &'a [Sample],
    pub config: &'a ProbeConfig,
    pub monitor: Monitor,
}

/// What the probes said at the best epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    pub rmse: f64,
    pub shifted_rmse: f64,
    /// One per probe row, in the probes' order.
    pub predictions: Vec<f32>,
}

/// JSON has no NaN or infinity (serde_json writes null): a diverged epoch's loss reads back
/// as NaN.
fn f64_or_nan<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// Predictions for a set of samples, in their order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Predictions {
    pub scores: Vec<f32>,
    /// Heteroscedastic models only.
    pub logvars: Option<Vec<f32>>,
}

pub fn predict<B: Backend>(
    model: &PairModel<B>,
    features: Features,
    samples: &[Sample],
    device: &B::Device,
) -> Predictions {
    let mut scores = Vec::with_capacity(samples.len());
    let mut logvars: Option<Vec<f32>> = None;
    let interaction = shared_metric_interaction(model, features, samples, device);
    for (c, chunk) in samples.chunks(EVAL_BATCH).enumerate() {
        let (metric, text) = features.batch::<B>(chunk, device);
        let output = match &interaction {
            Some(all) => {
                model.forward_from(metric, text, all.clone().narrow(0, c * EVAL_BATCH, chunk.len()))
            }
            None => model.forward(metric, text),
        };
        if let Some(logvar) = predict_logvar(model.kind(), output.clone()) {
            logvars.get_or_insert_with(Vec::new).extend(to_vec(logvar));
        }
        scores.extend(to_vec(predict_score(model.kind(), output)));
    }
    Predictions { scores, logvars }
}

/// The full bilinear layer's output for every sample, m @ W computed once per distinct metric
/// (see [`crate::model::Bilinear::forward_shared_metrics`]); `None` for the low-rank layer or
/// when no two samples share a metric.
fn shared_metric_interaction<B: Backend>(
    model: &PairModel<B>,
    features: Features,
    samples: &[Sample],
    device: &B::Device,
) -> Option<Tensor<B, 2>> {
    let full = model.bilinear.as_ref()?;
    let mut distinct: Vec<usize> = samples.iter().map(|s| s.metric_row).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() >= samples.len() {
        return None;
    }
    let metric_of: Vec<usize> = samples
        .iter()
        .map(|s| distinct.binary_search(&s.metric_row).expect("listed above"))
        .collect();
    let text_rows: Vec<usize> = samples.iter().map(|s| s.text_row).collect();
    Some(full.forward_shared_metrics(
        gather(features.metrics, &distinct, device),
        &metric_of,
        gather(features.texts, &text_rows, device),
    ))
}

fn to_vec<B: Backend>(tensor: Tensor<B, 1>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().into_vec().expect("f32 data")
}

/// Training reached a non-finite loss or validation RMSE (a learning rate far too high, say).
/// That is a result of the config, not a failure: rerunning it diverges the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diverged {
    /// The epoch whose loss or RMSE was not finite (1-based).
    pub epoch: usize,
    /// The learning curve up to and including that epoch.
    pub log: Vec<EpochLog>,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last = self.log.last();
        write!(
            f,
            "training diverged at epoch {} (train loss {}, validation RMSE {})",
            self.epoch,
            last.map_or(f64::NAN, |e| e.train_loss),
            last.map_or(f64::NAN, |e| e.val_rmse)
        )
    }
}

impl std::error::Error for Diverged {}

/// What training one neural fold produced: the best epoch's weights with its log and
/// predictions, on backend `B` (the job turns it into a `job::TrainedFold`).
pub struct FitOutcome<B: Backend> {
    /// The weights of the best validation epoch.
    pub model: PairModel<B>,
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub log: Vec<EpochLog>,
    pub val_metrics: EvalMetrics,
    pub val_predictions: Predictions,
    /// With probes: their figures and predictions at the best epoch.
    pub probe: Option<ProbeOutcome>,
}

/// How an epoch's optimiser steps are taken: the loss, the batch size and the learning rate.
#[derive(Debug, Clone, Copy)]
pub struct EpochSteps<'a> {
    pub loss: &'a LossSettings,
    pub batch_size: usize,
    pub lr: f64,
}

/// One pass over `samples` in the given order; returns the model and the mean training loss.
pub fn train_epoch<B: AutodiffBackend>(
    mut model: PairModel<B>,
    adam: &mut Adam<B>,
    steps: EpochSteps,
    features: Features,
    samples: &[Sample],
    device: &B::Device,
) -> (PairModel<B>, f64) {
    let EpochSteps { loss: loss_settings, batch_size, lr } = steps;
    let mut loss_sum = 0.0;
    // CPU with the full bilinear layer: its 1.8 GB weight gradient is never built (train::fused).
    let fused = adam.on_host() && model.bilinear.is_some();
    for batch in samples.chunks(batch_size) {
        let (metric, text) = features.batch::<B>(batch, device);
        let (targets, weights) = targets::<B>(batch, device);
        let (output, bilinear_leaf) = if fused {
            let (output, leaf) = model.forward_with_bilinear_leaf(metric.clone(), text.clone());
            (output, Some(leaf))
        } else {
            (model.forward(metric.clone(), text.clone()), None)
        };
        let loss = weighted_loss(loss_settings, output, &targets, weights);
        loss_sum += loss.clone().into_scalar().elem::<f64>() * batch.len() as f64;
        let grads = loss.backward();
        model = match bilinear_leaf {
            Some(leaf) => {
                let leaf_grad = leaf.grad(&grads).expect("the bilinear product reaches the loss");
                let bilinear_batch =
                    fused::BilinearBatch::new(metric.inner(), text.inner(), leaf_grad);
                let grads = GradientsParams::from_grads(grads, &model);
                adam.step_with_fused_bilinear(lr, model, grads, &bilinear_batch).0
            }
            None => {
                let grads = GradientsParams::from_grads(grads, &model);
                adam.step(lr, model, grads).0
            }
        };
    }
    (model, loss_sum / samples.len().max(1) as f64)
}

/// Trains with Adam, plateau schedule and early stopping, keeping the best epoch.
/// `on_epoch` sees each epoch as it ends (progress output, heartbeats). A non-finite training
/// loss or validation RMSE ends training with [`Diverged`].
pub fn fit<B: AutodiffBackend>(
    spec: &ModelSpec,
    config: &TrainConfig,
    features: Features,
    train: &[Sample],
    val: &[Sample],
    device: &B::Device,
    on_epoch: &mut dyn FnMut(&EpochLog),
) -> Result<FitOutcome<B::InnerBackend>, Diverged> {
    let rows = FitRows { features, train, val, probes: None };
    fit_probed::<B>(spec, config, rows, device, on_epoch)
}

/// What a fit reads: the feature matrices, the training and validation samples over them, and
/// with `[validation] probe` the probe rows.
#[derive(Clone, Copy)]
pub struct FitRows<'a> {
    pub features: Features<'a>,
    pub train: &'a [Sample],
    pub val: &'a [Sample],
    pub probes: Option<Probes<'a>>,
}

/// [`fit`] that also scores validation probes every epoch; early stopping and the plateau
/// schedule then watch what `probes.monitor` says (the shifted RMSE by default).
pub fn fit_probed<B: AutodiffBackend>(
    spec: &ModelSpec,
    config: &TrainConfig,
    rows: FitRows,
    device: &B::Device,
    on_epoch: &mut dyn FnMut(&EpochLog),
) -> Result<FitOutcome<B::InnerBackend>, Diverged> {
    let FitRows { features, train, val, probes } = rows;
    let mut model: PairModel<B> =
        seeded::<B, _>(device, config.seed, || initialized(spec.init(device)));
    let clip = (config.grad_clip > 0.0).then_some(config.grad_clip);
    let mut adam = Adam::<B>::new(AdamSettings::torch_default(config.weight_decay, clip));
    let mut plateau = ReduceLrOnPlateau::new(
        config.lr,
        config.lr_factor,
        config.lr_patience,
        1e-4,
        config.min_lr,
    );
    let mut stopping = EarlyStopping::new(config.patience);
    let loss_settings = LossSettings::from_config(config);
    let val_truth: Vec<f32> = val.iter().map(|s| s.target).collect();
    // Real rows then probe rows, predicted together (one shared-metric product per epoch).
    let eval_rows: Vec<Sample> =
        val.iter().chain(probes.iter().flat_map(|p| p.rows)).copied().collect();
    let monitor = probes.map_or(Monitor::Rmse, |p| p.monitor);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<Sample> = train.to_vec();
    let mut best = None;
    let mut log = Vec::new();

    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let lr = plateau.lr();
        order.shuffle(&mut rng);
        let train_loss;
        let steps = EpochSteps { loss: &loss_settings, batch_size: config.batch_size, lr };
        (model, train_loss) = train_epoch(model, &mut adam, steps, features, &order, device);
        let inference = model.valid();
        // Weights that are no longer numbers predict nothing worth evaluating.
        let (predictions, metrics, probe) = if train_loss.is_finite() {
            let mut predictions = predict(&inference, features, &eval_rows, device);
            let probe_predictions = split_off_probes(&mut predictions, val.len());
            let metrics = EvalMetrics::compute(&val_truth, &predictions.scores);
            let probe = probes.map(|p| probe_outcome(p.config, probe_predictions, metrics.rmse));
            (predictions, Some(metrics), probe)
        } else {
            (Predictions::default(), None, None)
        };
        let val_rmse = metrics.as_ref().map_or(f64::NAN, |m| m.rmse);
        let entry = EpochLog {
            epoch,
            train_loss,
            val_rmse,
            lr,
            seconds: started.elapsed().as_secs_f64(),
            probe_rmse: probe.as_ref().map(|p| p.rmse),
            shifted_rmse: probe.as_ref().map(|p| p.shifted_rmse),
        };
        on_epoch(&entry);
        let watched = entry.monitored(monitor);
        log.push(entry);
        let Some(metrics) = metrics.filter(|m| m.rmse.is_finite() && watched.is_finite()) else {
            return Err(Diverged { epoch, log });
        };
        if stopping.record(epoch, watched) {
            best = Some((inference, metrics.clone(), predictions, probe));
        }
        plateau.step(watched);
        if stopping.should_stop() {
            break;
        }
    }
    // Every epoch's RMSE was finite, so the first one at least was the best so far.
    let (model, val_metrics, val_predictions, probe) = best.expect("at least one epoch ran");
    Ok(FitOutcome {
        model,
        best_epoch: stopping.best_epoch(),
        epochs_run: log.len(),
        log,
        val_metrics,
        val_predictions,
        probe,
    })
}

/// The predictions of the rows after the first `real_rows` (the probe rows), taken off.
fn split_off_probes(predictions: &mut Predictions, real_rows: usize) -> Vec<f32> {
    if let Some(logvars) = predictions.logvars.as_mut() {
        logvars.truncate(real_rows);
    }
    predictions.scores.split_off(real_rows)
}

fn probe_outcome(config: &ProbeConfig, predictions: Vec<f32>, real_rmse: f64) -> ProbeOutcome {
    let probe_mse = config.mse(predictions.iter().map(|&p| p as f64));
    ProbeOutcome {
        rmse: probe_mse.sqrt(),
        shifted_rmse: config.shifted_rmse(real_rmse.powi(2), probe_mse),
        predictions,
    }
}
