//! The one place that says what a sweep minimises, at each level a search or pruner looks at.
//! Lower is better everywhere. With validation probes the shifted RMSE replaces the validation
//! RMSE (see the `probe` module): a search that minimised the validation RMSE alone would find the
//! shift-blind configs first.

use super::ConfigSummary;
use crate::config::Config;
use crate::store::FoldMetrics;
use crate::train::EpochLog;

/// A job's objective after one epoch (ASHA's rungs): the monitored validation value.
pub fn epoch_value(config: &Config, epoch: &EpochLog) -> f64 {
    epoch.monitored(config.validation.monitor())
}

/// A finished fold's objective (racing pairs these across configs): its shifted RMSE with
/// probes, else its validation RMSE.
pub fn fold_value(m: &FoldMetrics) -> f64 {
    m.shifted_rmse.unwrap_or(m.rmse)
}

/// A config's objective over every fold it finished (a trial's value for TPE, the incumbent
/// for racing): the sweep's default criterion, the pooled shifted RMSE with probes, else the
/// pooled out-of-fold RMSE.
pub fn config_value(s: &ConfigSummary) -> Option<f64> {
    if s.probe.is_some() {
        s.shifted_rmse
    } else {
        s.oof_rmse
    }
}
