//! A `model = "gbdt"` job: boosted trees on one fold, on the fold's prototype features (plus
//! optional principal components of the text and the metric embedding). No backend and no
//! GPU: the trees grow on the CPU threads of the job.
//!
//! It reports what a neural job reports (one `EpochLog` per boosting round, the best round's
//! validation metrics, OOF, probe and test predictions), so results, compare, export and
//! ensembles treat both families alike. Early stopping: forust-ml stops after
//! `early_stopping_rounds` rounds without improvement of a weighted RMSE that equals the
//! monitored figure (the shifted RMSE with probes, see `features::gbdt`); the best round is
//! then chosen on the exact monitored figure of each round (predictions clamped to [0, 10], as
//! everywhere), and the model predicts with that many trees.

use std::time::Instant;

use crate::config::{Config, Monitor};
use crate::data::Matrix;
use crate::features::fold::{tree_inputs, TreeExtras};
use crate::features::gbdt::{self, EvalSet};
use crate::features::pca::Pca;
use crate::sampling::Sample;
use crate::train::{EpochLog, EvalMetrics, Predictions};

use super::{FoldSets, TrainedFold, TrainingData};

/// Tree inputs of every sample set of a fold.
struct TreeMatrices {
    train: Matrix,
    val: Matrix,
    probes: Matrix,
    test: Option<Matrix>,
}

fn tree_matrices(config: &Config, data: &TrainingData, sets: &FoldSets) -> TreeMatrices {
    let features = config.features.prototypes.then(|| sets.prototype_features(config, data));
    let settings = &config.train.gbdt;
    let pca = (settings.text_components > 0).then(|| {
        let rows: Vec<usize> =
            sets.train.iter().filter(|s| !s.synthetic).map(|s| s.text_row).collect();
        Pca::fit(&data.texts, &rows, settings.text_components)
    });
    let metrics = settings.metric_embedding.then_some(&data.dataset.metrics.embeddings);
    let on_fold = TreeExtras { components: pca.as_ref().map(|p| (p, &data.texts)), metrics };
    let inputs = |samples: &[Sample], f: Option<&Matrix>| tree_inputs(samples, f, on_fold);
    let test = data.test.as_ref().map(|t| {
        let extras = TreeExtras {
            components: pca.as_ref().map(|p| (p, &t.texts)),
            metrics: settings.metric_embedding.then_some(&t.dataset.metrics.embeddings),
        };
        tree_inputs(&t.samples(), features.as_ref().and_then(|f| f.test.as_ref()), extras)
    });
    TreeMatrices {
        train: inputs(&sets.train, features.as_ref().map(|f| &f.train)),
        val: inputs(&sets.val, features.as_ref().map(|f| &f.val)),
        probes: inputs(&sets.probes, features.as_ref().map(|f| &f.probes)),
        test,
    }
}

/// Validation rows, then probe rows weighted so that the weighted MSE is the monitored one.
fn eval_set(
    config: &Config,
    inputs: &TreeMatrices,
    val: &[Sample],
    probes: &[Sample],
) -> (Matrix, Vec<f32>, Vec<f32>) {
    let shifted = config
        .validation
        .probe
        .as_ref()
        .filter(|_| config.validation.monitor() == Monitor::Shifted && !probes.is_empty());
    let mut data = inputs.val.data.clone();
    let mut targets: Vec<f32> = val.iter().map(|s| s.target).collect();
    let mut weights = vec![1.0f32; val.len()];
    if let Some(probe) = shifted {
        let real = ((1.0 - probe.fraction) / val.len().max(1) as f64) as f32;
        weights.iter_mut().for_each(|w| *w = real);
        data.extend_from_slice(&inputs.probes.data);
        let (middle, _) = probe.target_moments();
        targets.extend(std::iter::repeat_n(middle as f32, probes.len()));
        let share = (probe.fraction / probes.len() as f64) as f32;
        weights.extend(std::iter::repeat_n(share, probes.len()));
    }
    let rows = targets.len();
    (Matrix::new(rows, inputs.val.cols, data), targets, weights)
}

fn clamped(p: &[f64]) -> Vec<f32> {
    p.iter().map(|&v| v.clamp(0.0, 10.0) as f32).collect()
}

/// One log entry per round: the weighted training MSE, the validation RMSE and, with probes,
/// the probe and shifted RMSE, from the predictions of the first r trees.
fn learning_curve(
    config: &Config,
    model: &gbdt::Gbdt,
    inputs: &TreeMatrices,
    train: &[Sample],
    val: &[Sample],
    seconds_per_round: f64,
) -> Vec<EpochLog> {
    let mut log: Vec<EpochLog> = (1..=model.rounds_run)
        .map(|epoch| EpochLog {
            epoch,
            train_loss: f64::NAN,
            val_rmse: f64::NAN,
            lr: config.train.gbdt.learning_rate,
            seconds: seconds_per_round,
            probe_rmse: None,
            shifted_rmse: None,
        })
        .collect();
    let total_weight: f64 = train.iter().map(|s| s.weight as f64).sum::<f64>().max(1e-12);
    model.for_each_round(&inputs.train, |r, p| {
        let loss: f64 = train
            .iter()
            .zip(p)
            .map(|(s, &p)| s.weight as f64 * (p - s.target as f64).powi(2))
            .sum();
        log[r - 1].train_loss = loss / total_weight;
    });
    let truth: Vec<f32> = val.iter().map(|s| s.target).collect();
    model.for_each_round(&inputs.val, |r, p| {
        log[r - 1].val_rmse = EvalMetrics::compute(&truth, &clamped(p)).rmse;
    });
    if let Some(probe) = config.validation.probe.as_ref().filter(|_| inputs.probes.rows > 0) {
        model.for_each_round(&inputs.probes, |r, p| {
            let mse = probe.mse(p.iter().copied());
            log[r - 1].probe_rmse = Some(mse.sqrt());
            log[r - 1].shifted_rmse = Some(probe.shifted_rmse(log[r - 1].val_rmse.powi(2), mse));
        });
    }
    log
}

/// Trains boosted trees on one fold and evaluates them as a neural job is evaluated.
pub fn train_trees(
    config: &Config,
    data: &TrainingData,
    sets: &FoldSets,
    on_epoch: &mut dyn FnMut(&EpochLog),
) -> anyhow::Result<TrainedFold> {
    let started = Instant::now();
    let (train, val, probes) = (&sets.train, &sets.val, &sets.probes);
    let inputs = tree_matrices(config, data, sets);
    let (eval_x, eval_y, eval_w) = eval_set(config, &inputs, val, probes);
    let targets: Vec<f32> = train.iter().map(|s| s.target).collect();
    let weights: Vec<f32> = train.iter().map(|s| s.weight).collect();
    let eval = EvalSet { features: &eval_x, targets: &eval_y, weights: &eval_w };
    let seed = config.train.seed.wrapping_mul(1000).wrapping_add(sets.k as u64);
    let settings = &config.train.gbdt;
    let mut model = gbdt::fit(settings, seed, &inputs.train, &targets, &weights, Some(eval))?;
    let per_round = started.elapsed().as_secs_f64() / model.rounds_run.max(1) as f64;
    let log = learning_curve(config, &model, &inputs, train, val, per_round);
    let monitor = if probes.is_empty() { Monitor::Rmse } else { config.validation.monitor() };
    // The first round with the lowest monitored figure, as early stopping picks epochs.
    let best = log
        .iter()
        .min_by(|a, b| a.monitored(monitor).total_cmp(&b.monitored(monitor)))
        .map_or(1, |e| e.epoch);
    model.use_rounds(best);
    for entry in &log {
        on_epoch(entry);
    }
    let predict = |x: &Matrix| -> Vec<f32> {
        model.predict(x).into_iter().map(|v| v.clamp(0.0, 10.0)).collect()
    };
    let val_scores = predict(&inputs.val);
    let truth: Vec<f32> = val.iter().map(|s| s.target).collect();
    Ok(TrainedFold {
        best_epoch: best,
        epochs_run: log.len(),
        val_metrics: EvalMetrics::compute(&truth, &val_scores),
        val_predictions: Predictions { scores: val_scores, logvars: None },
        probe_predictions: predict(&inputs.probes),
        test_predictions: inputs.test.as_ref().map(predict),
        log,
        checkpoint: None,
        train_seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(monitor: &str) -> Config {
        Config::parse(&format!(
            r#"
[data]
train = "t.json"
metric_names = "n.json"
metric_embeddings = "e.npy"

[validation]
probe = {{ fraction = 0.35, score_min = 0, score_max = 3 }}
monitor = "{monitor}"
"#
        ))
        .unwrap()
    }

    fn sample(target: f32) -> Sample {
        Sample { metric_row: 0, text_row: 0, target, weight: 1.0, record: 0, synthetic: false }
    }

    /// The weighted MSE early stopping watches is the shifted MSE less the band's variance, for
    /// any predictions: so both pick the same round.
    #[test]
    fn the_evaluation_weights_make_the_weighted_mse_the_shifted_one() {
        let config = parsed("shifted");
        let val: Vec<Sample> = [9.0, 10.0, 2.0].into_iter().map(sample).collect();
        let probes: Vec<Sample> = (0..5).map(|_| sample(1.5)).collect();
        let inputs = TreeMatrices {
            train: Matrix::new(0, 1, vec![]),
            val: Matrix::new(3, 1, vec![1.0, 2.0, 3.0]),
            probes: Matrix::new(5, 1, vec![4.0; 5]),
            test: None,
        };
        let (x, y, w) = eval_set(&config, &inputs, &val, &probes);
        assert_eq!((x.rows, y.len(), w.len()), (8, 8, 8));
        let probe = config.validation.probe.as_ref().unwrap();
        let (_, variance) = probe.target_moments();
        for predictions in [[8.0f32, 9.5, 3.0, 1.0, 2.0, 0.5, 3.0, 1.5], [5.0; 8]] {
            let weighted: f64 =
                (0..8).map(|i| w[i] as f64 * ((predictions[i] - y[i]) as f64).powi(2)).sum::<f64>()
                    / w.iter().map(|&v| v as f64).sum::<f64>();
            let real_mse =
                (0..3).map(|i| ((predictions[i] - y[i]) as f64).powi(2)).sum::<f64>() / 3.0;
            let probe_mse = probe.mse(predictions[3..].iter().map(|&p| p as f64));
            let shifted_mse = probe.shifted_rmse(real_mse, probe_mse).powi(2);
            assert!(
                (weighted - (shifted_mse - 0.35 * variance)).abs() < 1e-5,
                "{weighted} vs {shifted_mse}"
            );
        }
        // Watching the plain RMSE, the probes stay out.
        let (x, _, w) = eval_set(&parsed("rmse"), &inputs, &val, &probes);
        assert_eq!(x.rows, 3);
        assert_eq!(w, vec![1.0; 3]);
    }
}
