//! Writes a large results database through the store, as sweeps would, for `serve`'s load
//! check (scripts/load_serve.sh with DB=...): a sweep "big" over a 20 x 5 x 10 x 2 x 5 grid
//! (10,000 configs), each config's folds with 50 epochs, 80 out-of-fold predictions per
//! fold (the sample data's size), and about 1% of the jobs diverged, 2% pruned, 1% failed.
//!   cargo run --release --example serve_load_db -- OUT.db [CONFIGS] [FOLDS] [EPOCHS]
//! The numbers are made up (a smooth function of the axes plus noise), deterministic per seed.
// A command-line tool of its own: it reports on stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::Context;
use foldsweep::job::{FoldResult, OofPrediction};
use foldsweep::store::{JobStatus, NewConfig, Store, SweepDefinition};
use foldsweep::train::metrics::EvalMetrics;
use foldsweep::train::EpochLog;
use rand::{Rng, SeedableRng};

const VAL_ROWS: usize = 80;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(
        args.get(1).context("usage: serve_load_db OUT.db [CONFIGS] [FOLDS] [EPOCHS]")?,
    );
    let number = |i: usize, default: usize| args.get(i).map_or(Ok(default), |a| a.parse());
    let (configs, folds, epochs) = (number(2, 10_000)?, number(3, 5)?, number(4, 50)?);
    anyhow::ensure!(!out.exists(), "{} exists; give a new file", out.display());
    let mut store = Store::open(&out)?;
    let grid = grid(configs);
    let new: Vec<NewConfig> = grid
        .iter()
        .map(|c| NewConfig {
            id: &c.id,
            params_json: &c.json,
            varying_json: &c.json,
            label: &c.label,
            data_fingerprint: "fp",
        })
        .collect();
    let jobs: Vec<(String, usize)> =
        grid.iter().flat_map(|c| (0..folds).map(move |f| (c.id.clone(), f))).collect();
    let sweep = SweepDefinition {
        name: "big",
        definition: "name = \"big\"\n# made by examples/serve_load_db.rs\n",
        data_fingerprint: "fp",
        fold_hash: "fh",
        folds,
        keep_trials: false,
    };
    let sweep_id = store.register_sweep(&sweep, &new, &jobs)?.0;
    let quality: std::collections::HashMap<&str, f64> =
        grid.iter().map(|c| (c.id.as_str(), c.quality)).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    // Every job as a coordinator would record it, but without claiming each first: the
    // claim query scans the pending jobs, which makes 50,000 claims take an hour.
    let pending = store.jobs(sweep_id, JobStatus::Pending)?;
    for (written, job) in pending.iter().enumerate() {
        let q = quality[job.config_id.as_str()];
        let fate: f64 = rng.random();
        let log = curve(&mut rng, q, epochs);
        if fate < 0.01 {
            let at = rng.random_range(2..=epochs.max(2)).min(epochs);
            let mut log = log[..at].to_vec();
            log[at - 1].val_rmse = f64::INFINITY;
            log[at - 1].train_loss = f64::INFINITY;
            store.record_diverged(job.id, at, &log, "training diverged (made up)")?;
        } else if fate < 0.03 {
            store.record_pruned(job.id, &log[..epochs / 3], "pruned (made up)")?;
        } else if fate < 0.04 {
            store.record_failure(job.id, "made-up failure: out of memory", false)?;
        } else {
            store.record_success(job.id, &result(&mut rng, job.fold, folds, log), None)?;
        }
        if (written + 1) % 10_000 == 0 {
            eprintln!("{} of {} jobs", written + 1, jobs.len());
        }
    }
    fake_times(&mut store)?;
    println!("wrote {} configs x {folds} folds x {epochs} epochs to {}", grid.len(), out.display());
    Ok(())
}

/// Start and end times on four device slots, one job after the other (a claim would have
/// set them): the timeline has something to draw.
/// The database holds this one sweep, so every job is its.
fn fake_times(store: &mut Store) -> anyhow::Result<()> {
    // Raw SQL on a second connection: the store has no (and needs no) method that rewrites
    // claim times.
    rusqlite::Connection::open(store.path())?.execute(
        "UPDATE jobs SET device = 'cuda:' || (id % 4), host = 'gen',
             started_at = 1.7e9 + (id / 4) * 3.0, finished_at = 1.7e9 + (id / 4) * 3.0 + 2.5",
        [],
    )?;
    Ok(())
}

struct Config {
    id: String,
    json: String,
    label: String,
    /// The RMSE this config tends to: good near lr 3e-3, hidden 64, dropout 0.1.
    quality: f64,
}

fn grid(count: usize) -> Vec<Config> {
    let lrs: Vec<f64> = (0..20).map(|i| 1e-4 * 10f64.powf(i as f64 * 3.0 / 19.0)).collect();
    let hidden = [8, 16, 32, 64, 128];
    let dropout: Vec<f64> = (0..10).map(|i| i as f64 * 0.05).collect();
    let models = ["standard", "ordinal"];
    let losses = ["mse", "hybrid", "huber", "ordinal", "pairwise"];
    let mut out = Vec::new();
    for (a, lr) in lrs.iter().enumerate() {
        for h in hidden {
            for d in &dropout {
                for m in models {
                    for l in losses {
                        if out.len() == count {
                            return out;
                        }
                        let i = out.len() as u64;
                        let quality = 0.9
                            + 0.08 * (lr.log10() + 2.5).powi(2)
                            + 0.02 * ((h as f64).log2() - 6.0).powi(2)
                            + 0.4 * (d - 0.1).powi(2)
                            + if m == "ordinal" { 0.03 } else { 0.0 }
                            + 0.01 * losses.iter().position(|x| *x == l).unwrap() as f64
                            + 0.001 * a as f64;
                        out.push(Config {
                            id: format!("{:012x}", i.wrapping_mul(0x9e37_79b9_7f4a) & 0xffff_ffff_ffff),
                            json: format!(
                                "{{\"dropout\":{d:.2},\"hidden_dims\":{h},\"loss\":\"{l}\",\"lr\":{lr:.3e},\"model\":\"{m}\"}}"
                            ),
                            label: format!("lr={lr:.1e} hidden={h} dropout={d:.2} {m}/{l}"),
                            quality,
                        });
                    }
                }
            }
        }
    }
    out
}

/// A learning curve falling from about 3 to about `q`, with noise.
fn curve(rng: &mut impl Rng, q: f64, epochs: usize) -> Vec<EpochLog> {
    (1..=epochs)
        .map(|epoch| {
            let t = epoch as f64 / epochs as f64;
            let rmse = q + (3.0 - q) * (-6.0 * t).exp() + 0.02 * rng.random::<f64>();
            EpochLog {
                epoch,
                train_loss: rmse * rmse * 0.9,
                val_rmse: rmse,
                lr: 3e-3,
                seconds: 0.05,
                probe_rmse: None,
                shifted_rmse: None,
            }
        })
        .collect()
}

fn result(rng: &mut impl Rng, fold: usize, folds: usize, epochs: Vec<EpochLog>) -> FoldResult {
    let best = epochs.iter().min_by(|a, b| a.val_rmse.total_cmp(&b.val_rmse)).unwrap();
    let oof: Vec<OofPrediction> = (0..VAL_ROWS)
        .map(|r| {
            let truth = (r % 11) as f32;
            let noise = (rng.random::<f32>() - 0.5) * 2.0 * best.val_rmse as f32 * 1.7;
            OofPrediction {
                record: fold * VAL_ROWS + r,
                truth,
                prediction: truth + noise,
                logvar: None,
            }
        })
        .collect();
    let truth: Vec<f32> = oof.iter().map(|o| o.truth).collect();
    let predictions: Vec<f32> = oof.iter().map(|o| o.prediction).collect();
    FoldResult {
        fold,
        folds,
        fold_hash: "fh".into(),
        train_rows: VAL_ROWS * (folds - 1),
        synthetic_rows: 0,
        val_rows: VAL_ROWS,
        best_epoch: best.epoch,
        epochs_run: epochs.len(),
        metrics: EvalMetrics::compute(&truth, &predictions),
        mean_predictor_rmse: 3.2,
        oof,
        checkpoint: None,
        train_seconds: epochs.len() as f64 * 0.05,
        probe: None,
        test: None,
        epochs,
    }
}
