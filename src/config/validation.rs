//! `[validation]`: the probes of a shifted test set (what share of it is believed to be
//! mismatched pairs, and their scores) and what early stopping watches. The maths of a probe
//! row's expected error is here with its settings; making probe rows is `probe`'s.

use serde::{Deserialize, Serialize};

use crate::error::{InputError, InputResult};

/// `[validation] probe = { fraction, score_min, score_max, ratio, seed }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Share of the test set believed to be mismatched pairs, in (0, 1).
    pub fraction: f64,
    /// The scores such pairs would get (inclusive, integers 0..=10).
    pub score_min: u32,
    pub score_max: u32,
    /// Probe rows per validation row.
    #[serde(default = "one")]
    pub ratio: f64,
    #[serde(default)]
    pub seed: u64,
}

fn one() -> f64 {
    1.0
}

/// What early stopping and the plateau schedule watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Monitor {
    /// The real validation rows' RMSE (the only choice without probes).
    Rmse,
    /// The shifted RMSE (the default with probes).
    #[default]
    Shifted,
}

impl ProbeConfig {
    pub fn validate(&self) -> InputResult<()> {
        let field = |name: &str| format!("validation.probe.{name}");
        if !(self.fraction.is_finite() && self.fraction > 0.0 && self.fraction < 1.0) {
            return Err(InputError::new(format!("must be in (0, 1), got {}", self.fraction))
                .field(field("fraction")));
        }
        if self.score_max > 10 || self.score_min > self.score_max {
            return Err(InputError::new(format!(
                "need 0 <= score_min <= score_max <= 10, got [{}, {}]",
                self.score_min, self.score_max
            ))
            .field(field("score_max")));
        }
        if !(self.ratio.is_finite() && self.ratio > 0.0 && self.ratio <= 100.0) {
            return Err(InputError::new(format!("must be in (0, 100], got {}", self.ratio))
                .field(field("ratio")));
        }
        Ok(())
    }

    /// Mean and variance of a uniform integer score in [score_min, score_max].
    pub fn target_moments(&self) -> (f64, f64) {
        let (a, b) = (self.score_min as f64, self.score_max as f64);
        let n = b - a + 1.0;
        ((a + b) / 2.0, (n * n - 1.0) / 12.0)
    }

    /// Expected squared error of a prediction (clamped to [0, 10]) on a probe row.
    pub fn squared_error(&self, prediction: f64) -> f64 {
        let (mean, variance) = self.target_moments();
        (prediction.clamp(0.0, 10.0) - mean).powi(2) + variance
    }

    /// RMSE over probe rows' predictions.
    pub fn rmse(&self, predictions: &[f32]) -> f64 {
        (self.mse(predictions.iter().map(|&p| p as f64))).sqrt()
    }

    pub fn mse(&self, predictions: impl IntoIterator<Item = f64>) -> f64 {
        let (sum, n) = predictions
            .into_iter()
            .fold((0.0, 0usize), |(sum, n), p| (sum + self.squared_error(p), n + 1));
        sum / n.max(1) as f64
    }

    /// `sqrt((1 - F) * real_mse + F * probe_mse)`.
    pub fn shifted_rmse(&self, real_mse: f64, probe_mse: f64) -> f64 {
        ((1.0 - self.fraction) * real_mse + self.fraction * probe_mse).sqrt()
    }
}

/// `[validation]`: sweep-wide, never a grid axis; part of every config's identity (its id),
/// so configs judged on other probes are other results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Monitor>,
}

impl ValidationConfig {
    /// No `[validation]` section: serialized configs (and so config ids) stay as before.
    pub fn is_unset(&self) -> bool {
        self.probe.is_none() && self.monitor.is_none()
    }

    /// What early stopping watches: `shifted` with probes unless told otherwise, else `rmse`.
    pub fn monitor(&self) -> Monitor {
        match (self.monitor, &self.probe) {
            (Some(monitor), _) => monitor,
            (None, Some(_)) => Monitor::Shifted,
            (None, None) => Monitor::Rmse,
        }
    }

    pub fn validate(&self) -> InputResult<()> {
        if let Some(probe) = &self.probe {
            probe.validate()?;
        } else if self.monitor == Some(Monitor::Shifted) {
            return Err(InputError::new(
                "\"shifted\" needs probes: add validation.probe = { fraction, score_min, score_max }",
            )
            .field("validation.monitor"));
        }
        Ok(())
    }
}
