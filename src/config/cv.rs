//! `[cv]`: how many folds, and the seed that draws them.

use serde::{Deserialize, Serialize};

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
