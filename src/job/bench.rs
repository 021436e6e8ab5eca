//! Seconds per training epoch of the report's model on random data: the body of
//! `cargo bench --bench epoch` and of `foldsweep bench-epoch` (which runs it on any device,
//! for the GPU check). Speed does not depend on the values, so data are random unit vectors.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{LossKind, ModelKind};
use crate::data::Matrix;
use crate::model::{LossSettings, ModelSpec, PairModel};
use crate::sampling::Sample;
use crate::train::optim::{Adam, AdamSettings};
use crate::train::{predict, train_epoch, EpochSteps, Features, EVAL_BATCH};

#[derive(Debug, Clone)]
pub struct EpochBench {
    pub rows: usize,
    pub batch: usize,
    pub rank: usize,
    pub dim: usize,
    pub hidden: Vec<usize>,
    /// Time only the first N batches and scale to a full epoch.
    pub max_steps: Option<usize>,
}

impl Default for EpochBench {
    fn default() -> Self {
        EpochBench {
            rows: 5000,
            batch: 64,
            rank: 0,
            dim: 768,
            hidden: vec![512, 256, 128],
            max_steps: None,
        }
    }
}

fn unit_rows(rng: &mut StdRng, rows: usize, cols: usize) -> Matrix {
    let mut data: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
    for row in data.chunks_mut(cols) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    Matrix::new(rows, cols, data)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Rows of the evaluation benchmark (a validation fold of the 5000 training rows).
const EVAL_ROWS: usize = 1000;

/// Seconds to predict `samples` with [`predict`] (for the full bilinear layer: one m @ W per
/// distinct metric) and with the plain forward pass in evaluation batches, as one phrase.
fn evaluation_seconds<B: Backend>(
    model: &PairModel<B>,
    features: Features,
    samples: &[Sample],
    device: &B::Device,
) -> String {
    let started = Instant::now();
    predict(model, features, samples, device);
    let grouped = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for chunk in samples.chunks(EVAL_BATCH) {
        let (metric, text) = features.batch::<B>(chunk, device);
        model.forward(metric, text).into_data();
    }
    let plain = started.elapsed().as_secs_f64();
    format!(
        "evaluation of {} rows: {grouped:.2} s (predict), {plain:.2} s (plain forward)",
        samples.len()
    )
}

/// Runs the benchmark on `device` and returns the one-line report.
pub fn run<B: AutodiffBackend>(o: &EpochBench, device: &B::Device, device_name: &str) -> String {
    let mut rng = StdRng::seed_from_u64(7);
    let metrics = unit_rows(&mut rng, 145, o.dim);
    let texts = unit_rows(&mut rng, o.rows, o.dim);
    let samples: Vec<Sample> = (0..o.rows)
        .map(|i| Sample {
            metric_row: rng.random_range(0..145),
            text_row: i,
            target: rng.random_range(0..=10) as f32,
            weight: 1.0,
            record: i,
            synthetic: false,
        })
        .collect();
    let spec = ModelSpec {
        kind: ModelKind::Heteroscedastic,
        d_metric: o.dim,
        d_text: o.dim,
        d_bilinear: o.dim,
        bilinear_rank: o.rank,
        hidden_dims: o.hidden.clone(),
        dropout: 0.4,
    };
    let features = Features { metrics: &metrics, texts: &texts };
    let loss = LossSettings::report(LossKind::Heteroscedastic);
    let mut adam = Adam::<B>::new(AdamSettings::torch_default(1e-5, Some(1.0)));

    let started = Instant::now();
    let mut model = spec.init::<B>(device);
    // The first step pays for lazy parameter initialisation (and kernel compilation on a GPU).
    let settings = EpochSteps { loss: &loss, batch_size: o.batch, lr: 1e-4 };
    let first = &samples[..o.batch.min(o.rows)];
    (model, _) = train_epoch(model, &mut adam, settings, features, first, device);
    let first_step = started.elapsed().as_secs_f64();

    let steps_per_epoch = o.rows.div_ceil(o.batch);
    let steps = o.max_steps.unwrap_or(steps_per_epoch).min(steps_per_epoch);
    let timed = &samples[..(steps * o.batch).min(o.rows)];
    let started = Instant::now();
    let (model, train_loss) = train_epoch(model, &mut adam, settings, features, timed, device);
    let per_step = started.elapsed().as_secs_f64() / steps as f64;
    let evaluation =
        evaluation_seconds(&model.valid(), features, &samples[..o.rows.min(EVAL_ROWS)], device);
    let kind =
        if o.rank == 0 { "full bilinear".to_string() } else { format!("low-rank r={}", o.rank) };
    format!(
        "foldsweep {kind} on {device_name}, dim {}, hidden {:?}, {} rows, batch {}: {:.4} s/step over {steps} steps -> {:.2} s/epoch \
         (first step incl. init {:.1} s; loss {train_loss:.3}; peak RSS {:.0} MiB; threads {}); {evaluation}",
        o.dim,
        o.hidden,
        o.rows,
        o.batch,
        per_step,
        per_step * steps_per_epoch as f64,
        first_step,
        peak_rss_mib(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    )
}
