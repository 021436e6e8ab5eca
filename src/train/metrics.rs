//! Validation metrics: overall, rounded, per-bin and macro RMSE, and a prediction histogram.
//!
//! Per-bin RMSE matters more here than the overall number: the hidden test set is far
//! lower-scored than training, so a model that is good on 9s and 10s only looks good.

use serde::{Deserialize, Serialize};

use crate::data::score_bin;
use crate::sampling::NUM_BINS;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinMetric {
    pub score: usize,
    pub count: usize,
    /// `None` for an empty bin.
    pub rmse: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    pub count: usize,
    /// RMSE of the predictions clamped to [0, 10].
    pub rmse: f64,
    /// RMSE after rounding the predictions to integers, as a submission is scored.
    pub rounded_rmse: f64,
    /// Mean of the per-bin RMSEs over non-empty bins: every score counts the same.
    pub macro_rmse: f64,
    pub bins: Vec<BinMetric>,
    /// How many predictions round to each score 0..10.
    pub prediction_histogram: Vec<usize>,
}

impl EvalMetrics {
    pub fn compute(truth: &[f32], predictions: &[f32]) -> EvalMetrics {
        assert_eq!(truth.len(), predictions.len(), "one prediction per record");
        let clamped: Vec<f64> = predictions.iter().map(|&p| (p as f64).clamp(0.0, 10.0)).collect();
        let mut sums = [0.0f64; NUM_BINS];
        let mut counts = [0usize; NUM_BINS];
        let mut histogram = vec![0usize; NUM_BINS];
        let (mut total, mut total_rounded) = (0.0, 0.0);
        for (&t, &p) in truth.iter().zip(&clamped) {
            let error = (p - t as f64).powi(2);
            total += error;
            total_rounded += (p.round() - t as f64).powi(2);
            let bin = score_bin(t);
            sums[bin] += error;
            counts[bin] += 1;
            histogram[p.round() as usize] += 1;
        }
        let n = truth.len().max(1) as f64;
        let bins: Vec<BinMetric> = (0..NUM_BINS)
            .map(|score| BinMetric {
                score,
                count: counts[score],
                rmse: (counts[score] > 0).then(|| (sums[score] / counts[score] as f64).sqrt()),
            })
            .collect();
        let filled: Vec<f64> = bins.iter().filter_map(|b| b.rmse).collect();
        EvalMetrics {
            count: truth.len(),
            rmse: (total / n).sqrt(),
            rounded_rmse: (total_rounded / n).sqrt(),
            macro_rmse: filled.iter().sum::<f64>() / filled.len().max(1) as f64,
            bins,
            prediction_histogram: histogram,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_rmse_weighs_every_bin_equally() {
        // Nine perfect 10s and one 0 predicted as 10: overall RMSE sqrt(10), macro (0 + 10) / 2.
        let mut truth = vec![10.0; 9];
        truth.push(0.0);
        let predictions = vec![10.0; 10];
        let m = EvalMetrics::compute(&truth, &predictions);
        assert!((m.rmse - 10f64.sqrt()).abs() < 1e-9);
        assert!((m.macro_rmse - 5.0).abs() < 1e-9);
        assert_eq!(m.bins[0].rmse, Some(10.0));
        assert_eq!(m.bins[5].rmse, None);
        assert_eq!(m.prediction_histogram[10], 10);
    }

    #[test]
    fn predictions_are_clamped_before_scoring() {
        let m = EvalMetrics::compute(&[10.0, 0.0], &[12.0, -3.0]);
        assert_eq!(m.rmse, 0.0);
    }
}
