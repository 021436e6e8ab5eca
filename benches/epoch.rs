//! Seconds per training epoch of the report's model on CPU (not a test: run it on a quiet
//! machine).
//!
//!     cargo bench --bench epoch -- [--rows 5000] [--batch 64] [--rank 0] [--dim 768]
//!                                  [--hidden 512,256,128] [--max-steps N]
//!
//! Data are random unit vectors (145 metrics, `rows` texts) with random scores: speed does
//! not depend on the values. `--max-steps` times only the first N batches and scales to a
//! full epoch (the per-step cost is flat after the first step, which is reported apart).

use std::time::Instant;

use foldsweep::backend::{cpu_device, CpuTrain};
use foldsweep::config::{LossKind, ModelKind};
use foldsweep::data::Matrix;
use foldsweep::model::{LossSettings, ModelSpec};
use foldsweep::sampling::Sample;
use foldsweep::train::optim::{Adam, AdamSettings};
use foldsweep::train::{train_epoch, Features};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Options {
    rows: usize,
    batch: usize,
    rank: usize,
    dim: usize,
    hidden: Vec<usize>,
    max_steps: Option<usize>,
}

fn options() -> Options {
    let mut o = Options { rows: 5000, batch: 64, rank: 0, dim: 768, hidden: vec![512, 256, 128], max_steps: None };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--rows" => o.rows = value.parse().expect("--rows N"),
            "--batch" => o.batch = value.parse().expect("--batch N"),
            "--rank" => o.rank = value.parse().expect("--rank R"),
            "--dim" => o.dim = value.parse().expect("--dim D"),
            "--hidden" => o.hidden = value.split(',').map(|v| v.parse().expect("--hidden a,b,c")).collect(),
            "--max-steps" => o.max_steps = Some(value.parse().expect("--max-steps N")),
            other => panic!("unknown option {other}"),
        }
    }
    o
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

fn main() {
    let o = options();
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
    let device = cpu_device();
    let features = Features { metrics: &metrics, texts: &texts };
    let loss = LossSettings::report(LossKind::Heteroscedastic);
    foldsweep::backend::use_all_cores_for_matrix_products();
    let mut adam = Adam::<CpuTrain>::new(AdamSettings::torch_default(1e-5, Some(1.0)));

    let started = Instant::now();
    let mut model = spec.init::<CpuTrain>(&device);
    // The first step pays for lazy parameter initialisation; time it apart.
    (model, _) = train_epoch(model, &mut adam, &loss, features, &samples[..o.batch], o.batch, 1e-4, &device);
    let first_step = started.elapsed().as_secs_f64();

    let steps_per_epoch = o.rows.div_ceil(o.batch);
    let steps = o.max_steps.unwrap_or(steps_per_epoch).min(steps_per_epoch);
    let timed = &samples[..(steps * o.batch).min(o.rows)];
    let started = Instant::now();
    let (_model, train_loss) = train_epoch(model, &mut adam, &loss, features, timed, o.batch, 1e-4, &device);
    let seconds = started.elapsed().as_secs_f64();
    let per_step = seconds / steps as f64;
    let kind = if o.rank == 0 { "full bilinear".to_string() } else { format!("low-rank r={}", o.rank) };
    println!(
        "foldsweep {kind}, dim {}, hidden {:?}, {} rows, batch {}: {:.2} s/step over {steps} steps -> {:.1} s/epoch \
         (first step incl. init {:.1} s; loss {train_loss:.3}; peak RSS {:.0} MiB; threads {})",
        o.dim,
        o.hidden,
        o.rows,
        o.batch,
        per_step,
        per_step * steps_per_epoch as f64,
        first_step,
        peak_rss_mib(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
}
