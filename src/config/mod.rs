//! The training configuration: the `data`, `text`, `cv`, `train` and `validation` sections
//! that a `foldsweep train` config and a sweep file share, one file per section.
//!
//! Every section rejects unknown keys, so a typo is an error with its line rather than a
//! silently ignored setting. Every number must be finite and inside its [`Range`]: an
//! infinite ratio or learning rate otherwise passes and crashes (or trains nothing) later.
//! This layer holds only the schema and its checks; what a setting does lives with the code
//! that does it (probes in `probe`, fine-tuning in `text::transformer`).

mod cv;
mod data;
mod features;
mod lines;
mod range;
mod text;
mod train;
mod validation;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use cv::CvConfig;
pub use data::DataConfig;
pub use features::{CosineColumns, FeaturesConfig, GbdtConfig, PrototypeLevel};
pub use lines::{line_of, line_of_key, toml_error, with_line};
pub use range::{check_numbers, Range, MAX_COUNT, MAX_WIDTH};
pub use text::{FinetuneConfig, FinetuneSettings, TextConfig, TextEncoderKind};
pub use train::{
    is_valid_pair, valid_pairs_text, LossKind, ModelKind, Precision, SyntheticConfig, TrainConfig,
    WeightingConfig, VALID_PAIRS,
};
pub use validation::{Monitor, ProbeConfig, ValidationConfig};

use crate::error::{InputError, InputResult};

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
    /// `[validation]`: probes of a shifted test set (the `probe` module uses them). Left out of the
    /// serialized config when unset, so configs without it keep their ids.
    #[serde(default, skip_serializing_if = "ValidationConfig::is_unset")]
    pub validation: ValidationConfig,
    /// `[features]`: prototype features (the `features` module computes them). Left out of the
    /// serialized config when it holds the defaults, so configs without it keep their ids.
    #[serde(default, skip_serializing_if = "FeaturesConfig::is_default")]
    pub features: FeaturesConfig,
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
        self.validation.validate()?;
        self.check_gbdt_inputs()
    }

    /// Boosted trees read the prototype features, text components or the metric embedding;
    /// with none of them they would have no input at all.
    pub fn check_gbdt_inputs(&self) -> InputResult<()> {
        let gbdt = &self.train.gbdt;
        if self.train.model == ModelKind::Gbdt
            && !self.features.prototypes
            && gbdt.text_components == 0
            && !gbdt.metric_embedding
        {
            return Err(InputError::new(
                "model gbdt has no inputs: set features.prototypes = true, \
                 train.gbdt.text_components > 0 or train.gbdt.metric_embedding = true",
            )
            .field("features.prototypes"));
        }
        Ok(())
    }
}
