//! What a fold trains on beyond its records: per-score sample weights and synthetic negatives.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::config::{SyntheticConfig, WeightingConfig};
use crate::data::score_bin;

pub const NUM_BINS: usize = 11;

/// One training example: which metric row and which text row to pair, the target and weight.
/// A synthetic negative reuses a real record's text with another metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub metric_row: usize,
    pub text_row: usize,
    pub target: f32,
    pub weight: f32,
    /// The record this sample came from; for a synthetic negative, the record whose text it reuses.
    pub record: usize,
    pub synthetic: bool,
}

/// Weight per integer score: clamp((max_count / count)^temperature, min, max), then the
/// report's boost for the two dominant scores. Empty bins get weight 0 (they weigh nothing).
pub fn bin_weights(counts: &[usize; NUM_BINS], config: &WeightingConfig) -> [f64; NUM_BINS] {
    let max_count = counts.iter().copied().max().unwrap_or(0) as f64;
    let mut weights = [0.0; NUM_BINS];
    for (bin, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let mut w = (max_count / count as f64)
            .powf(config.temperature)
            .clamp(config.min_weight, config.max_weight);
        if config.boost_high_scores {
            w *= match bin {
                9 => 1.5,
                10 => 1.3,
                _ => 1.0,
            };
        }
        weights[bin] = w;
    }
    weights
}

pub fn bin_counts(targets: impl IntoIterator<Item = f32>) -> [usize; NUM_BINS] {
    let mut counts = [0; NUM_BINS];
    for t in targets {
        counts[score_bin(t)] += 1;
    }
    counts
}

/// Sets every sample's weight from the bin counts of these same samples.
pub fn apply_weights(samples: &mut [Sample], config: &WeightingConfig) {
    let weights = bin_weights(&bin_counts(samples.iter().map(|s| s.target)), config);
    for sample in samples {
        sample.weight = weights[score_bin(sample.target)] as f32;
    }
}

/// `ratio` x len(train) negatives copied from the given TRAINING samples (never validation):
/// each keeps its text, gets a different metric drawn uniformly and a random integer score
/// in [score_min, score_max]. Source rows are drawn without replacement while they last.
pub fn synthetic_negatives(
    train: &[Sample],
    num_metrics: usize,
    config: &SyntheticConfig,
    seed: u64,
) -> Vec<Sample> {
    synthetic_negatives_among(train, num_metrics, config, seed, None)
}

/// [`synthetic_negatives`], with `families` (metric row -> family index, see
/// `features::families`): the negative's metric is drawn from the metrics of other
/// families only, since a sibling metric may well fit the text. A source whose family holds
/// every metric has no such metric and falls back to any other metric. Without `families`
/// the draws are exactly those of [`synthetic_negatives`].
pub fn synthetic_negatives_among(
    train: &[Sample],
    num_metrics: usize,
    config: &SyntheticConfig,
    seed: u64,
    families: Option<&[usize]>,
) -> Vec<Sample> {
    let wanted = (config.ratio * train.len() as f64).round() as usize;
    if wanted == 0 || train.is_empty() || num_metrics < 2 {
        return Vec::new();
    }
    let other_families: Option<Vec<Vec<usize>>> = families.map(|family| {
        (0..num_metrics)
            .map(|m| (0..num_metrics).filter(|&o| family[o] != family[m]).collect())
            .collect()
    });
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5e_7e71c);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut negatives = Vec::with_capacity(wanted);
    while negatives.len() < wanted {
        order.shuffle(&mut rng);
        for &i in order.iter().take(wanted - negatives.len()) {
            let source = train[i];
            let metric = match other_families.as_ref().map(|c| &c[source.metric_row]) {
                Some(candidates) if !candidates.is_empty() => {
                    candidates[rng.random_range(0..candidates.len())]
                }
                _ => {
                    // Draw from the other metrics: shift past the source metric to skip it.
                    let metric = rng.random_range(0..num_metrics - 1);
                    metric + usize::from(metric >= source.metric_row)
                }
            };
            negatives.push(Sample {
                metric_row: metric,
                target: rng.random_range(config.score_min..=config.score_max) as f32,
                synthetic: true,
                weight: 1.0,
                ..source
            });
        }
    }
    negatives
}

#[cfg(test)]
mod tests {
    use super::*;

    fn train(metrics: &[usize]) -> Vec<Sample> {
        let sample = |(i, &metric_row): (usize, &usize)| Sample {
            metric_row,
            text_row: i,
            target: 9.0,
            weight: 1.0,
            record: i,
            synthetic: false,
        };
        metrics.iter().enumerate().map(sample).collect()
    }

    fn config() -> SyntheticConfig {
        SyntheticConfig { ratio: 2.0, score_min: 0, score_max: 2, other_family: false }
    }

    #[test]
    fn other_family_negatives_never_pick_a_sibling() {
        // Metrics 0, 1, 2 are one family; 3 and 4 another.
        let families = [0, 0, 0, 1, 1];
        let rows = train(&[0, 1, 2, 3, 4, 0, 3]);
        let negatives = synthetic_negatives_among(&rows, 5, &config(), 3, Some(&families));
        assert_eq!(negatives.len(), 14);
        for n in &negatives {
            let source = rows[n.record].metric_row;
            assert_ne!(families[n.metric_row], families[source], "{n:?} from metric {source}");
        }
        // Any-metric draws do pick siblings on the same rows.
        let any = synthetic_negatives(&rows, 5, &config(), 3);
        assert!(any.iter().any(|n| families[n.metric_row] == families[rows[n.record].metric_row]));
    }

    /// The draws before `other_family` existed (copied from the previous version): results
    /// stored by earlier sweeps must not change.
    fn previous_negatives(
        train: &[Sample],
        num_metrics: usize,
        config: &SyntheticConfig,
        seed: u64,
    ) -> Vec<Sample> {
        let wanted = (config.ratio * train.len() as f64).round() as usize;
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5e_7e71c);
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut negatives = Vec::with_capacity(wanted);
        while negatives.len() < wanted {
            order.shuffle(&mut rng);
            for &i in order.iter().take(wanted - negatives.len()) {
                let source = train[i];
                let mut metric = rng.random_range(0..num_metrics - 1);
                if metric >= source.metric_row {
                    metric += 1;
                }
                negatives.push(Sample {
                    metric_row: metric,
                    target: rng.random_range(config.score_min..=config.score_max) as f32,
                    synthetic: true,
                    weight: 1.0,
                    ..source
                });
            }
        }
        negatives
    }

    #[test]
    fn without_families_the_draws_are_unchanged() {
        let rows = train(&[0, 1, 2, 3, 4, 0, 3]);
        for seed in 0..5 {
            assert_eq!(
                synthetic_negatives_among(&rows, 5, &config(), seed, None),
                previous_negatives(&rows, 5, &config(), seed)
            );
        }
    }

    #[test]
    fn a_single_family_falls_back_to_any_other_metric() {
        let rows = train(&[0, 1, 2]);
        let negatives = synthetic_negatives_among(&rows, 3, &config(), 1, Some(&[0, 0, 0]));
        assert_eq!(negatives.len(), 6);
        assert!(negatives.iter().all(|n| n.metric_row != rows[n.record].metric_row));
    }
}
