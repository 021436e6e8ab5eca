//! The training configuration: the `data`, `text`, `cv` and `train` sections that a
//! `foldsweep train` config and a sweep file share.
//!
//! Every section rejects unknown keys, so a typo is an error with its line rather than a
//! silently ignored setting. Every number must be finite and inside its [`Range`]: an
//! infinite ratio or learning rate otherwise passes and crashes (or trains nothing) later.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{InputError, InputResult};
use crate::probe::ValidationConfig;
use crate::text::transformer::FinetuneSettings;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data: DataConfig,
    #[serde(default)]
    pub text: TextConfig,
    #[serde(default)]
    pub cv: CvConfig,
    #[serde(default)]
    pub train: TrainConfig,
    /// `[validation]`: probes of a shifted test set (see [`crate::probe`]). Left out of the
    /// serialized config when unset, so configs without it keep their ids.
    #[serde(default, skip_serializing_if = "ValidationConfig::is_unset")]
    pub validation: ValidationConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub train: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    pub metric_names: PathBuf,
    pub metric_embeddings: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoderKind {
    Hashing,
    Precomputed,
    Transformer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    #[serde(default = "default_encoder")]
    pub encoder: TextEncoderKind,
    /// Number of hashing buckets (`hashing` only).
    #[serde(default = "default_hashing_dim")]
    pub dim: usize,
    /// Character n-gram lengths of the hashing featurizer, inclusive.
    #[serde(default = "default_ngram_min")]
    pub ngram_min: usize,
    #[serde(default = "default_ngram_max")]
    pub ngram_max: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_embeddings: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_embeddings: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// SimCSE fine-tuning of `model` on the train and test texts before encoding
    /// (`transformer` only). Left out of the serialized form when unset, so the ids of
    /// configs without it (a hash of that form) stay what they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneConfig>,
}

/// `[text] finetune = {...}`: the settings of [`FinetuneSettings`] a sweep may choose;
/// every key defaults to the SimCSE recipe, so `finetune = {}` is the recipe itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_fraction: f64,
    pub scale: f64,
    pub weight_decay: f64,
    pub seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<usize>,
}

impl FinetuneConfig {
    /// Every key, for the sweep grid (which cannot find `max_steps` in the serialized defaults).
    pub const KEYS: &'static [&'static str] = &[
        "epochs",
        "batch_size",
        "lr",
        "warmup_fraction",
        "scale",
        "weight_decay",
        "seed",
        "max_steps",
    ];

    pub fn settings(&self) -> FinetuneSettings {
        FinetuneSettings {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            warmup_fraction: self.warmup_fraction,
            scale: self.scale,
            weight_decay: self.weight_decay,
            seed: self.seed,
            max_steps: self.max_steps,
            ..FinetuneSettings::default()
        }
    }

    fn validate(&self) -> InputResult<()> {
        if self.batch_size < 2 {
            return Err(InputError::new(
                "must be at least 2 (the other texts of a batch are the negatives)",
            )
            .field("text.finetune.batch_size"));
        }
        let mut numbers = vec![
            ("text.finetune.epochs", self.epochs as f64, Range::closed(1.0, MAX_COUNT)),
            ("text.finetune.batch_size", self.batch_size as f64, Range::closed(2.0, MAX_WIDTH)),
            ("text.finetune.lr", self.lr, Range::POSITIVE),
            ("text.finetune.warmup_fraction", self.warmup_fraction, Range::FRACTION),
            ("text.finetune.scale", self.scale, Range::POSITIVE),
            ("text.finetune.weight_decay", self.weight_decay, Range::NON_NEGATIVE),
        ];
        if let Some(steps) = self.max_steps {
            numbers.push(("text.finetune.max_steps", steps as f64, Range::closed(1.0, MAX_COUNT)));
        }
        check_numbers(&numbers)
    }
}

/// The defaults are the library's, so the CLI's `finetune` and a sweep's agree.
impl Default for FinetuneConfig {
    fn default() -> Self {
        let s = FinetuneSettings::default();
        FinetuneConfig {
            epochs: s.epochs,
            batch_size: s.batch_size,
            lr: s.lr,
            warmup_fraction: s.warmup_fraction,
            scale: s.scale,
            weight_decay: s.weight_decay,
            seed: s.seed,
            max_steps: s.max_steps,
        }
    }
}

fn default_encoder() -> TextEncoderKind {
    TextEncoderKind::Hashing
}
fn default_hashing_dim() -> usize {
    768
}
fn default_ngram_min() -> usize {
    3
}
fn default_ngram_max() -> usize {
    5
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            encoder: default_encoder(),
            dim: default_hashing_dim(),
            ngram_min: default_ngram_min(),
            ngram_max: default_ngram_max(),
            train_embeddings: None,
            test_embeddings: None,
            model: None,
            finetune: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvConfig {
    #[serde(default = "default_folds")]
    pub folds: usize,
    #[serde(default = "default_cv_seed")]
    pub seed: u64,
}

fn default_folds() -> usize {
    5
}
fn default_cv_seed() -> u64 {
    42
}

impl Default for CvConfig {
    fn default() -> Self {
        CvConfig { folds: default_folds(), seed: default_cv_seed() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Standard,
    Ordinal,
    Heteroscedastic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    CrossEntropy,
    Hybrid,
    Focal,
    Ordinal,
    Heteroscedastic,
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
];

pub fn is_valid_pair(model: ModelKind, loss: LossKind) -> bool {
    VALID_PAIRS.contains(&(model, loss))
}

pub fn valid_pairs_text() -> String {
    "standard with cross_entropy, hybrid or focal; ordinal with ordinal; \
     heteroscedastic with heteroscedastic"
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
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig { ratio: 0.1, score_min: 1, score_max: 6 }
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
        }
    }
}

/// Largest layer or feature width, batch size or rank a config may ask for: far above any real
/// use, far below a size whose allocation aborts the process.
const MAX_WIDTH: f64 = 1_048_576.0;
/// Largest epoch, step or patience count.
const MAX_COUNT: f64 = 1e9;

/// An interval a config number must lie in; NaN and infinities never do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
    pub min_open: bool,
    pub max_open: bool,
}

impl Range {
    /// (0, inf): learning rates, scales.
    pub const POSITIVE: Range =
        Range { min: 0.0, max: f64::INFINITY, min_open: true, max_open: true };
    /// [0, inf): weights, decays, norms.
    pub const NON_NEGATIVE: Range =
        Range { min: 0.0, max: f64::INFINITY, min_open: false, max_open: true };
    /// [0, 1): dropout, warm-up fraction.
    pub const FRACTION: Range = Range { min: 0.0, max: 1.0, min_open: false, max_open: true };

    pub const fn closed(min: f64, max: f64) -> Range {
        Range { min, max, min_open: false, max_open: false }
    }

    pub const fn open(min: f64, max: f64) -> Range {
        Range { min, max, min_open: true, max_open: true }
    }

    pub fn contains(&self, value: f64) -> bool {
        let above = if self.min_open { value > self.min } else { value >= self.min };
        let below = if self.max_open { value < self.max } else { value <= self.max };
        value.is_finite() && above && below
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (open, close) =
            (if self.min_open { '(' } else { '[' }, if self.max_open { ')' } else { ']' });
        write!(f, "{open}{}, {}{close}", self.min, self.max)
    }
}

/// The first (key, value, range) whose value is not a finite number inside its range.
fn check_numbers(numbers: &[(&str, f64, Range)]) -> InputResult<()> {
    match numbers.iter().find(|(_, value, range)| !range.contains(*value)) {
        Some((key, value, range)) => {
            Err(InputError::new(format!("must be a finite number in {range}; got {value}"))
                .field(*key))
        }
        None => Ok(()),
    }
}

/// 1-based line of a dotted config key (`train.synthetic.ratio`) in a TOML text: a
/// `key = ...` line in its `[section]`, a dotted key, or an inline table that holds it.
pub fn line_of_key(source: &str, key: &str) -> Option<usize> {
    let unquote = |k: &str| k.replace(['"', '\'', ' '], "");
    let mut section = String::new();
    for (i, line) in source.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            section = unquote(header.trim_end_matches([']', ' ']));
            continue;
        }
        let Some((name, value)) = line.split_once('=') else { continue };
        let name = unquote(name);
        let full = if section.is_empty() { name } else { format!("{section}.{name}") };
        if full == key {
            return Some(i + 1);
        }
        let inner = key.strip_prefix(&format!("{full}.")).and_then(|rest| rest.rsplit('.').next());
        if let Some(leaf) = inner {
            let holds = value.trim_start().starts_with('{')
                && value
                    .split(['{', ','])
                    .any(|kv| kv.split_once('=').is_some_and(|(k, _)| unquote(k) == leaf));
            if holds {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Adds the line of the error's field (when it can be found in `source`) to its message.
pub fn with_line(source: &str, mut error: InputError) -> InputError {
    let line = error.field.as_deref().and_then(|key| line_of_key(source, key));
    if let Some(line) = line {
        let content = source.lines().nth(line - 1).unwrap_or("").trim();
        error.message = format!("line {line} (`{content}`): {}", error.message);
    }
    error
}

impl Config {
    /// Reads and validates a config file. Errors name the file and, for TOML problems, the line.
    pub fn load(path: &Path) -> InputResult<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::in_file(path, format!("cannot read config: {e}")))?;
        Config::parse(&text).map_err(|e| e.file(path))
    }

    pub fn parse(text: &str) -> InputResult<Config> {
        let config: Config = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        config.validate().map_err(|e| with_line(text, e))?;
        Ok(config)
    }

    pub fn validate(&self) -> InputResult<()> {
        self.text.validate()?;
        check_numbers(&[("cv.folds", self.cv.folds as f64, Range::closed(2.0, 1000.0))])?;
        self.train.validate()?;
        self.validation.validate()
    }
}

impl TextConfig {
    pub fn validate_public(&self) -> InputResult<()> {
        self.validate()
    }

    fn validate(&self) -> InputResult<()> {
        if let Some(finetune) = &self.finetune {
            if self.encoder != TextEncoderKind::Transformer {
                return Err(InputError::new(
                    "only valid with text.encoder = \"transformer\" (it fine-tunes text.model)",
                )
                .field("text.finetune"));
            }
            finetune.validate()?;
        }
        check_numbers(&[
            ("text.dim", self.dim as f64, Range::closed(1.0, MAX_WIDTH)),
            ("text.ngram_min", self.ngram_min as f64, Range::closed(1.0, 64.0)),
            ("text.ngram_max", self.ngram_max as f64, Range::closed(1.0, 64.0)),
        ])?;
        match self.encoder {
            TextEncoderKind::Hashing => {
                if self.ngram_min > self.ngram_max {
                    return Err(
                        InputError::new("need 1 <= ngram_min <= ngram_max").field("text.ngram_min")
                    );
                }
            }
            TextEncoderKind::Precomputed => {
                if self.train_embeddings.is_none() {
                    return Err(InputError::new("required when text.encoder = \"precomputed\"")
                        .field("text.train_embeddings"));
                }
            }
            TextEncoderKind::Transformer => {
                if self.model.is_none() {
                    return Err(InputError::new("required when text.encoder = \"transformer\" (a sentence-transformers model folder)")
                        .field("text.model"));
                }
            }
        }
        Ok(())
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

/// Turns a TOML error into an InputError that carries the line number and quotes the line,
/// so the offending key is named even when TOML's own message does not name it.
pub fn toml_error(text: &str, error: &toml::de::Error) -> InputError {
    let message = error.message().trim().to_string();
    match error.span() {
        Some(span) => {
            let line = line_of(text, span.start);
            let content = text.lines().nth(line - 1).unwrap_or("").trim();
            InputError::new(format!("line {line} (`{content}`): {message}"))
        }
        None => InputError::new(message),
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
