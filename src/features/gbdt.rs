//! Gradient-boosted trees (`model = "gbdt"`), a thin wrapper over forust-ml: squared-error
//! boosting with sample weights and early stopping on the fold's validation rows.
//!
//! forust-ml implements XGBoost's algorithm in pure Rust (histogram splits, depth-wise trees)
//! and takes exactly the settings of `[train.gbdt]`; see Cargo.toml for why it was chosen.
//!
//! Early stopping watches a weighted RMSE over an evaluation set. With probes, the job passes
//! the real validation rows weighted `(1 - fraction) / n_real` and the probe rows with the
//! middle of the probe band as target and weight `fraction / n_probe`: that weighted MSE is the
//! shifted MSE less a constant (the band's variance), so the best round is the best round by
//! the shifted RMSE, as for the other models.

use forust_ml::gradientbooster::{GradientBooster, GrowPolicy, MissingNodeTreatment};
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::sampler::SampleMethod;
use forust_ml::Matrix as ColumnMatrix;

pub use crate::config::GbdtConfig;
use crate::data::Matrix;

/// Rows, targets and weights of an evaluation set (the fold's validation rows, probes too).
#[derive(Debug, Clone, Copy)]
pub struct EvalSet<'a> {
    pub features: &'a Matrix,
    pub targets: &'a [f32],
    pub weights: &'a [f32],
}

/// A fitted booster.
pub struct Gbdt {
    booster: GradientBooster,
    /// Evaluation RMSE after each round (empty without an evaluation set).
    pub history: Vec<f64>,
    /// Rounds used for prediction (1-based: the best round under early stopping).
    pub best_rounds: usize,
    pub rounds_run: usize,
}

/// forust reads column-major f64.
fn column_major(m: &Matrix) -> Vec<f64> {
    let mut out = vec![0.0f64; m.rows * m.cols];
    for r in 0..m.rows {
        for (c, &v) in m.row(r).iter().enumerate() {
            out[c * m.rows + r] = v as f64;
        }
    }
    out
}

fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

/// Fits squared-error boosting on `features` (one row per sample) with sample `weights`;
/// with `eval`, early stopping picks the round with the lowest weighted evaluation RMSE.
pub fn fit(
    config: &GbdtConfig,
    seed: u64,
    features: &Matrix,
    targets: &[f32],
    weights: &[f32],
    eval: Option<EvalSet<'_>>,
) -> anyhow::Result<Gbdt> {
    config.validate()?;
    assert_eq!(features.rows, targets.len(), "one target per row");
    assert_eq!(features.rows, weights.len(), "one weight per row");
    let early = (config.early_stopping_rounds > 0 && eval.is_some())
        .then_some(config.early_stopping_rounds);
    let mut booster = GradientBooster::default()
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(config.trees)
        .set_learning_rate(config.learning_rate as f32)
        .set_max_depth(config.max_depth)
        .set_min_leaf_weight(config.min_child_weight as f32)
        .set_subsample(config.subsample as f32)
        .set_sample_method(if config.subsample < 1.0 {
            SampleMethod::Random
        } else {
            SampleMethod::None
        })
        .set_seed(seed)
        .set_initialize_base_score(true)
        .set_evaluation_metric(eval.is_some().then_some(Metric::RootMeanSquaredError))
        .set_early_stopping_rounds(early);
    // Depth-wise growth and the parent-weight treatment of missing values are forust's
    // defaults; set here so an upgrade cannot change them silently. No value is missing.
    booster.grow_policy = GrowPolicy::DepthWise;
    booster.missing_node_treatment = MissingNodeTreatment::AssignToParent;
    let data = column_major(features);
    let x = ColumnMatrix::new(&data, features.rows, features.cols);
    let (y, w) = (to_f64(targets), to_f64(weights));
    let eval_data = eval.map(|e| (column_major(e.features), to_f64(e.targets), to_f64(e.weights)));
    let eval_sets = eval_data.as_ref().zip(eval).map(|((data, y, w), e)| {
        vec![(
            ColumnMatrix::new(data, e.features.rows, e.features.cols),
            y.as_slice(),
            w.as_slice(),
        )]
    });
    booster.fit(&x, &y, &w, eval_sets).map_err(|e| anyhow::anyhow!("gbdt: {e}"))?;
    let history: Vec<f64> = booster
        .evaluation_history
        .as_ref()
        .map(|h| (0..h.rows).map(|r| *h.get(r, 0)).collect())
        .unwrap_or_default();
    let rounds_run = booster.trees.len();
    let best_rounds = booster.prediction_iteration.unwrap_or(rounds_run);
    Ok(Gbdt { booster, history, best_rounds, rounds_run })
}

impl std::fmt::Debug for Gbdt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gbdt")
            .field("best_rounds", &self.best_rounds)
            .field("rounds_run", &self.rounds_run)
            .finish_non_exhaustive()
    }
}

impl Gbdt {
    /// Predictions of the best round for each row.
    pub fn predict(&self, features: &Matrix) -> Vec<f32> {
        if features.rows == 0 {
            return Vec::new();
        }
        let data = column_major(features);
        let x = ColumnMatrix::new(&data, features.rows, features.cols);
        self.booster.predict(&x, true).into_iter().map(|v| v as f32).collect()
    }

    /// Calls `each(round, predictions)` after every round that was run (1-based), with the
    /// predictions of the first `round` trees: the learning curve, one tree walk per row and
    /// tree in all.
    pub fn for_each_round(&self, features: &Matrix, mut each: impl FnMut(usize, &[f64])) {
        let data = column_major(features);
        let x = ColumnMatrix::new(&data, features.rows, features.cols);
        let mut current = vec![self.booster.base_score; features.rows];
        for (round, tree) in self.booster.trees.iter().enumerate() {
            let step = tree.predict(&x, false, &self.booster.missing);
            current.iter_mut().zip(step).for_each(|(c, v)| *c += v);
            each(round + 1, &current);
        }
    }

    /// Predict with the first `rounds` trees from now on (the caller's choice of best round).
    pub fn use_rounds(&mut self, rounds: usize) {
        let rounds = rounds.clamp(1, self.rounds_run.max(1));
        self.booster.prediction_iteration = Some(rounds);
        self.best_rounds = rounds;
    }
}
