//! The one place that says what a sweep minimises, at each level a search or pruner looks at.
//! Lower is better everywhere. The shift work (probes) changes these bodies only: with probes
//! the shifted RMSE replaces the validation RMSE.

use crate::config::Config;
use crate::report::ConfigSummary;
use crate::store::FoldMetrics;
use crate::train::EpochLog;

/// A job's objective after one epoch (ASHA's rungs): the monitored validation value.
pub fn epoch_value(config: &Config, epoch: &EpochLog) -> f64 {
    epoch.monitored(config.validation.monitor())
}

/// A finished fold's objective (racing pairs these across configs).
pub fn fold_value(m: &FoldMetrics) -> f64 {
    m.rmse
}

/// A config's objective over every fold it finished (a trial's value for TPE, the incumbent
/// for racing): its pooled out-of-fold RMSE.
pub fn config_value(s: &ConfigSummary) -> Option<f64> {
    s.oof_rmse
}
