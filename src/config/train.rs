//! `[train]`: the model, its loss and the optimisation settings, with the rule of which
//! model/loss pairs can train together.

use serde::{Deserialize, Serialize};

use super::features::GbdtConfig;
use super::range::{check_numbers, Range, MAX_COUNT, MAX_WIDTH};
use crate::error::{InputError, InputResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Standard,
    Ordinal,
    Heteroscedastic,
    /// Gradient-boosted trees on the prototype features (`[train.gbdt]`), not a neural model.
    Gbdt,
}

impl ModelKind {
    /// The three heads of the bilinear + MLP model, trained by `train`.
    pub fn is_neural(self) -> bool {
        self != ModelKind::Gbdt
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    CrossEntropy,
    Hybrid,
    Focal,
    Ordinal,
    Heteroscedastic,
    /// The boosted trees' objective.
    SquaredError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    F32,
    Bf16,
    F16,
}

/// The spelling used in config files (`heteroscedastic`, `cross_entropy`, ...).
fn config_spelling<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&config_spelling(self))
    }
}

impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&config_spelling(self))
    }
}

/// The model/loss pairs that make sense: a loss needs the outputs its head produces.
pub const VALID_PAIRS: &[(ModelKind, LossKind)] = &[
    (ModelKind::Standard, LossKind::CrossEntropy),
    (ModelKind::Standard, LossKind::Hybrid),
    (ModelKind::Standard, LossKind::Focal),
    (ModelKind::Ordinal, LossKind::Ordinal),
    (ModelKind::Heteroscedastic, LossKind::Heteroscedastic),
    (ModelKind::Gbdt, LossKind::SquaredError),
];

pub fn is_valid_pair(model: ModelKind, loss: LossKind) -> bool {
    VALID_PAIRS.contains(&(model, loss))
}

pub fn valid_pairs_text() -> String {
    "standard with cross_entropy, hybrid or focal; ordinal with ordinal; \
     heteroscedastic with heteroscedastic; gbdt with squared_error"
        .to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeightingConfig {
    /// 0 gives every sample weight 1; 0.5 is the report's square-root inverse frequency.
    pub temperature: f64,
    pub min_weight: f64,
    pub max_weight: f64,
    pub boost_high_scores: bool,
}

impl Default for WeightingConfig {
    fn default() -> Self {
        WeightingConfig {
            temperature: 0.5,
            min_weight: 0.5,
            max_weight: 8.0,
            boost_high_scores: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// Synthetic negatives per training row (0.1 = one for every ten rows).
    pub ratio: f64,
    pub score_min: u32,
    pub score_max: u32,
    /// Draw a negative's metric from another family only (`a/b` belongs to `a`): a sibling
    /// metric may well fit the text. Left out of the serialized config when false, so configs
    /// without it keep their ids.
    #[serde(skip_serializing_if = "is_false")]
    pub other_family: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig { ratio: 0.1, score_min: 1, score_max: 6, other_family: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub model: ModelKind,
    pub loss: LossKind,
    pub hidden_dims: Vec<usize>,
    /// Output size of the bilinear layer; 0 means "the metric embedding size", as in the report.
    pub bilinear_dim: usize,
    /// 0 = the full bilinear layer; r > 0 = the low-rank factorisation P((U m) * (V t)).
    pub bilinear_rank: usize,
    pub dropout: f64,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    /// Early stopping: epochs without a better validation RMSE before training stops.
    pub patience: usize,
    pub lr_patience: usize,
    pub lr_factor: f64,
    pub min_lr: f64,
    /// Global L2 norm the gradients are clipped to; 0 turns clipping off.
    pub grad_clip: f64,
    pub precision: Precision,
    pub seed: u64,
    pub ce_weight: f64,
    pub mse_weight: f64,
    pub focal_alpha: f64,
    pub focal_gamma: f64,
    pub weighting: WeightingConfig,
    pub synthetic: SyntheticConfig,
    /// `[train.gbdt]`: only `model = "gbdt"` reads it; left out of the serialized config when
    /// it holds the defaults, so configs without it keep their ids.
    #[serde(skip_serializing_if = "GbdtConfig::is_default")]
    pub gbdt: GbdtConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: ModelKind::Heteroscedastic,
            loss: LossKind::Heteroscedastic,
            hidden_dims: vec![512, 256, 128],
            bilinear_dim: 0,
            bilinear_rank: 0,
            dropout: 0.4,
            batch_size: 64,
            lr: 1e-4,
            weight_decay: 1e-5,
            epochs: 100,
            patience: 20,
            lr_patience: 5,
            lr_factor: 0.5,
            min_lr: 1e-6,
            grad_clip: 1.0,
            precision: Precision::F32,
            seed: 0,
            ce_weight: 1.0,
            mse_weight: 0.1,
            focal_alpha: 1.0,
            focal_gamma: 2.0,
            weighting: WeightingConfig::default(),
            synthetic: SyntheticConfig::default(),
            gbdt: GbdtConfig::default(),
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> InputResult<()> {
        if !is_valid_pair(self.model, self.loss) {
            return Err(InputError::new(format!(
                "model {} cannot be trained with loss {}; valid pairs: {}",
                self.model,
                self.loss,
                valid_pairs_text()
            ))
            .field("train.loss"));
        }
        if self.hidden_dims.is_empty() {
            return Err(InputError::new("needs at least one layer").field("train.hidden_dims"));
        }
        check_numbers(&self.numbers())?;
        self.gbdt.validate()?;
        let checks: [(bool, &str, &str); 2] = [
            (
                self.weighting.min_weight > self.weighting.max_weight,
                "train.weighting.min_weight",
                "need 0 < min_weight <= max_weight",
            ),
            (
                self.synthetic.score_min > self.synthetic.score_max,
                "train.synthetic.score_max",
                "need score_min <= score_max <= 10",
            ),
        ];
        for (bad, field, message) in checks {
            if bad {
                return Err(InputError::new(message).field(field));
            }
        }
        if self.precision != Precision::F32 && !cfg!(feature = "cuda") {
            return Err(InputError::new("reduced precision needs a GPU build (--features cuda)")
                .field("train.precision"));
        }
        Ok(())
    }
}

impl TrainConfig {
    /// Every number of `[train]` with its key and range (`seed` takes any value).
    fn numbers(&self) -> Vec<(&'static str, f64, Range)> {
        let width = Range::closed(1.0, MAX_WIDTH);
        let count = Range::closed(0.0, MAX_COUNT);
        let mut numbers: Vec<(&str, f64, Range)> =
            self.hidden_dims.iter().map(|&d| ("train.hidden_dims", d as f64, width)).collect();
        numbers.extend([
            ("train.bilinear_dim", self.bilinear_dim as f64, Range::closed(0.0, MAX_WIDTH)),
            ("train.bilinear_rank", self.bilinear_rank as f64, Range::closed(0.0, MAX_WIDTH)),
            ("train.dropout", self.dropout, Range::FRACTION),
            ("train.batch_size", self.batch_size as f64, width),
            ("train.lr", self.lr, Range::POSITIVE),
            ("train.weight_decay", self.weight_decay, Range::NON_NEGATIVE),
            ("train.epochs", self.epochs as f64, Range::closed(1.0, MAX_COUNT)),
            ("train.patience", self.patience as f64, count),
            ("train.lr_patience", self.lr_patience as f64, count),
            ("train.lr_factor", self.lr_factor, Range::open(0.0, 1.0)),
            ("train.min_lr", self.min_lr, Range::NON_NEGATIVE),
            ("train.grad_clip", self.grad_clip, Range::NON_NEGATIVE),
            ("train.ce_weight", self.ce_weight, Range::NON_NEGATIVE),
            ("train.mse_weight", self.mse_weight, Range::NON_NEGATIVE),
            ("train.focal_alpha", self.focal_alpha, Range::NON_NEGATIVE),
            ("train.focal_gamma", self.focal_gamma, Range::NON_NEGATIVE),
            ("train.weighting.temperature", self.weighting.temperature, Range::closed(0.0, 10.0)),
            ("train.weighting.min_weight", self.weighting.min_weight, Range::POSITIVE),
            ("train.weighting.max_weight", self.weighting.max_weight, Range::POSITIVE),
            // Synthetic rows per training row: 100 is far beyond use, and bounds the memory.
            ("train.synthetic.ratio", self.synthetic.ratio, Range::closed(0.0, 100.0)),
            (
                "train.synthetic.score_min",
                self.synthetic.score_min as f64,
                Range::closed(0.0, 10.0),
            ),
            (
                "train.synthetic.score_max",
                self.synthetic.score_max as f64,
                Range::closed(0.0, 10.0),
            ),
        ]);
        numbers
    }
}
