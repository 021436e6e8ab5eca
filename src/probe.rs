//! Validation probes: what a shifted test set would do to a model, measured on validation folds.
//!
//! The hidden test set is far lower-scored than training, most likely because it pairs texts with
//! the wrong metric. Validation folds drawn from training hold no such pairs, so a model that
//! ignores the metric looks best on them. A probe row is a validation text paired with another
//! metric; the user says which share `fraction` of the test set they believe is like that, and
//! which scores `[score_min, score_max]` such pairs would get.
//!
//! A probe row's error is the expected squared error against a target drawn uniformly from the
//! integers in `[score_min, score_max]` (how synthetic negatives are labelled), computed exactly:
//! `(p - mean)^2 + variance`. It needs no random targets (no noise between configs or folds), and
//! it is smallest for the prediction that would be best if the belief holds, the band's middle.
//! The shifted RMSE mixes real and probe rows as the user believes the test set does:
//! `sqrt((1 - fraction) * MSE(real rows) + fraction * MSE(probe rows))`.

use crate::sampling::Sample;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub use crate::config::{Monitor, ProbeConfig, ValidationConfig};

/// Probe rows of one fold, made from that fold's validation rows only: each keeps a
/// validation text and gets another metric, drawn uniformly. Deterministic by seed and fold,
/// and the same for every config (nothing of the config enters).
pub fn probe_rows(
    probe: &ProbeConfig,
    validation: &[Sample],
    num_metrics: usize,
    fold: usize,
) -> Vec<Sample> {
    let wanted = (probe.ratio * validation.len() as f64).round() as usize;
    if wanted == 0 || validation.is_empty() || num_metrics < 2 {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(
        probe.seed ^ (fold as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x009b_0be5,
    );
    let mut order: Vec<usize> = (0..validation.len()).collect();
    let mut probes = Vec::with_capacity(wanted);
    while probes.len() < wanted {
        order.shuffle(&mut rng);
        for &i in order.iter().take(wanted - probes.len()) {
            let source = validation[i];
            let mut metric = rng.random_range(0..num_metrics - 1);
            if metric >= source.metric_row {
                metric += 1;
            }
            let (mean, _) = probe.target_moments();
            probes.push(Sample {
                metric_row: metric,
                target: mean as f32,
                synthetic: true,
                weight: 1.0,
                ..source
            });
        }
    }
    probes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> ProbeConfig {
        ProbeConfig { fraction: 0.4, score_min: 0, score_max: 3, ratio: 1.0, seed: 7 }
    }

    fn validation_rows(n: usize, metrics: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                metric_row: i % metrics,
                text_row: 100 + i,
                target: 9.0,
                weight: 1.0,
                record: 1000 + i,
                synthetic: false,
            })
            .collect()
    }

    #[test]
    fn probe_error_is_the_expected_error_against_a_uniform_integer_target() {
        let p = probe();
        // Targets 0, 1, 2, 3 equally likely: prediction 2 errs by 2, 1, 0, 1 -> mean square 1.5.
        assert!((p.squared_error(2.0) - 1.5).abs() < 1e-12);
        // Middle of the band is best: mean 1.5, variance (16 - 1) / 12.
        assert!((p.squared_error(1.5) - 15.0 / 12.0).abs() < 1e-12);
        assert!(p.squared_error(9.0) > p.squared_error(3.0));
        // Predictions are clamped like every other score.
        assert_eq!(p.squared_error(-4.0), p.squared_error(0.0));
    }

    #[test]
    fn shifted_rmse_mixes_real_and_probe_errors_by_the_fraction() {
        let p = probe();
        assert!((p.shifted_rmse(1.0, 26.0) - (0.6 + 0.4 * 26.0f64).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn probe_rows_come_from_validation_rows_with_another_metric_and_are_deterministic() {
        let p = probe();
        let val = validation_rows(50, 7);
        let probes = probe_rows(&p, &val, 7, 2);
        assert_eq!(probes.len(), 50);
        for probe in &probes {
            let source =
                val.iter().find(|s| s.text_row == probe.text_row).expect("a validation text");
            assert_eq!(probe.record, source.record);
            assert_ne!(probe.metric_row, source.metric_row, "another metric");
            assert!(probe.metric_row < 7);
        }
        assert_eq!(probes, probe_rows(&p, &val, 7, 2), "same seed and fold, same probes");
        assert_ne!(probes, probe_rows(&p, &val, 7, 3), "another fold, other probes");
        let reseeded = ProbeConfig { seed: 8, ..p.clone() };
        assert_ne!(probes, probe_rows(&reseeded, &val, 7, 2), "another seed, other probes");
        let double = ProbeConfig { ratio: 2.0, ..p };
        assert_eq!(probe_rows(&double, &val, 7, 2).len(), 100);
    }

    #[test]
    fn settings_out_of_range_are_errors_naming_the_key() {
        let bad = ProbeConfig { fraction: 1.0, ..probe() };
        assert_eq!(bad.validate().unwrap_err().field.as_deref(), Some("validation.probe.fraction"));
        let bad = ProbeConfig { fraction: f64::NAN, ..probe() };
        assert!(bad.validate().is_err());
        let bad = ProbeConfig { score_min: 4, score_max: 3, ..probe() };
        assert!(bad.validate().is_err());
        let bad = ProbeConfig { ratio: f64::INFINITY, ..probe() };
        assert!(bad.validate().is_err());
        let shifted_without_probes =
            ValidationConfig { probe: None, monitor: Some(Monitor::Shifted) };
        assert_eq!(
            shifted_without_probes.validate().unwrap_err().field.as_deref(),
            Some("validation.monitor")
        );
        assert_eq!(ValidationConfig::default().monitor(), Monitor::Rmse);
        let with_probes = ValidationConfig { probe: Some(probe()), monitor: None };
        assert_eq!(with_probes.monitor(), Monitor::Shifted);
    }
}
