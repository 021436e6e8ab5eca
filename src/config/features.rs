//! `[features]` (prototype features, issue 23) and `[train.gbdt]` (the boosted trees' settings);
//! what they do lives in `features`.

use serde::{Deserialize, Serialize};

use super::range::{check_numbers, Range, MAX_COUNT, MAX_WIDTH};
use crate::error::InputResult;

/// Which prototypes a row is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrototypeLevel {
    #[default]
    Metric,
    Family,
    Both,
}

impl PrototypeLevel {
    pub fn uses_metrics(self) -> bool {
        matches!(self, PrototypeLevel::Metric | PrototypeLevel::Both)
    }

    pub fn uses_families(self) -> bool {
        matches!(self, PrototypeLevel::Family | PrototypeLevel::Both)
    }
}

/// `prototype_cosines`: only the statistics of the own prototype, or also the row's cosine to
/// every prototype (one column per metric or family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CosineColumns {
    #[default]
    Own,
    All,
}

/// The `[features]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeaturesConfig {
    pub prototypes: bool,
    pub prototype_cosines: CosineColumns,
    pub prototype_level: PrototypeLevel,
}

impl FeaturesConfig {
    pub fn is_default(&self) -> bool {
        *self == FeaturesConfig::default()
    }
}

/// `[train.gbdt]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbdtConfig {
    /// Boosting rounds at most (early stopping may end sooner).
    pub trees: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    /// Least sum of (weighted) hessians in a leaf; for squared error, the summed sample weight.
    pub min_child_weight: f64,
    /// Share of the training rows each tree is grown on (1 = all).
    pub subsample: f64,
    /// Stop when the evaluation RMSE has not improved for this many rounds; 0 = never stop early
    /// (then every round is used).
    pub early_stopping_rounds: usize,
    /// Inputs besides the prototype features: this many principal components of the text
    /// embedding, fitted on the fold's training texts.
    pub text_components: usize,
    /// Also the metric embedding itself.
    pub metric_embedding: bool,
}

impl Default for GbdtConfig {
    fn default() -> Self {
        GbdtConfig {
            trees: 300,
            learning_rate: 0.05,
            max_depth: 4,
            min_child_weight: 1.0,
            subsample: 0.8,
            early_stopping_rounds: 30,
            text_components: 0,
            metric_embedding: false,
        }
    }
}

impl GbdtConfig {
    pub fn is_default(&self) -> bool {
        *self == GbdtConfig::default()
    }

    pub fn validate(&self) -> InputResult<()> {
        check_numbers(&[
            ("train.gbdt.trees", self.trees as f64, Range::closed(1.0, MAX_COUNT)),
            (
                "train.gbdt.learning_rate",
                self.learning_rate,
                Range { max_open: false, ..Range::open(0.0, 1.0) },
            ),
            ("train.gbdt.max_depth", self.max_depth as f64, Range::closed(1.0, 64.0)),
            ("train.gbdt.min_child_weight", self.min_child_weight, Range::NON_NEGATIVE),
            (
                "train.gbdt.subsample",
                self.subsample,
                Range { max_open: false, ..Range::open(0.0, 1.0) },
            ),
            (
                "train.gbdt.early_stopping_rounds",
                self.early_stopping_rounds as f64,
                Range::closed(0.0, MAX_COUNT),
            ),
            (
                "train.gbdt.text_components",
                self.text_components as f64,
                Range::closed(0.0, MAX_WIDTH),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const MINIMAL: &str = r#"
[data]
train = "t.json"
metric_names = "n.json"
metric_embeddings = "e.npy"
"#;

    /// A config's id hashes its serialized form: the new sections must not appear in configs
    /// that do not use them, or every stored result would lose its config.
    #[test]
    fn configs_without_the_new_settings_serialize_as_before() {
        let json = serde_json::to_string(&Config::parse(MINIMAL).unwrap()).unwrap();
        for key in ["features", "gbdt", "other_family"] {
            assert!(!json.contains(key), "{key} in {json}");
        }
        let with = format!(
            "{MINIMAL}\n[features]\nprototypes = true\n[train]\nmodel = \"gbdt\"\nloss = \
             \"squared_error\"\ngbdt = {{ trees = 5 }}\nsynthetic = {{ other_family = true }}\n"
        );
        let json = serde_json::to_string(&Config::parse(&with).unwrap()).unwrap();
        for key in ["\"features\"", "\"gbdt\"", "\"other_family\":true"] {
            assert!(json.contains(key), "{key} missing from {json}");
        }
    }

    #[test]
    fn gbdt_settings_outside_their_range_name_the_key() {
        let config = format!("{MINIMAL}\n[train]\ngbdt = {{ learning_rate = 0.0 }}\n");
        let err = Config::parse(&config).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("train.gbdt.learning_rate"), "{err}");
    }
}
