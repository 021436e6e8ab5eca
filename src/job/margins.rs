//! Where the prototype margin puts a config's real validation rows and its probe rows (for
//! `show`): the margin is what separates a text paired with its own metric from one paired
//! with another, if the prototypes work.

use crate::config::Config;

use super::{FoldSets, TrainingData};

/// The margins of every fold's real validation rows and probe rows, pooled over the folds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Margins {
    pub real: Vec<f32>,
    pub probes: Vec<f32>,
    /// At which level the margin was taken (`metric` or `family`).
    pub level: &'static str,
}

/// Recomputes each fold's prototypes as its jobs did (the same folds, negatives and probes)
/// and reads the first margin column (`metric.margin`, or `family.margin` at the family level
/// alone). `None` without `features.prototypes`.
pub fn margins(config: &Config, data: &TrainingData) -> Option<Margins> {
    if !config.features.prototypes {
        return None;
    }
    let mut out = Margins::default();
    for k in 0..config.cv.folds {
        let sets = FoldSets::new(config, data, k);
        let features = sets.prototype_features(config, data);
        let column = features.columns.iter().position(|c| c.ends_with(".margin"))?;
        out.level =
            if features.columns[column].starts_with("metric") { "metric" } else { "family" };
        out.real.extend((0..features.val.rows).map(|r| features.val.row(r)[column]));
        out.probes.extend((0..features.probes.rows).map(|r| features.probes.row(r)[column]));
    }
    Some(out)
}

/// Counts per bin of `width` over [-1, 1] (the margin is a difference of cosines, so it lies
/// in [-2, 2]; values outside [-1, 1] land in the end bins).
pub fn histogram(values: &[f32], bins: usize) -> Vec<usize> {
    let mut counts = vec![0usize; bins];
    for &v in values {
        let position = ((v as f64 + 1.0) / 2.0 * bins as f64).floor();
        counts[(position.max(0.0) as usize).min(bins - 1)] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::histogram;

    #[test]
    fn histogram_bins_cover_minus_one_to_one() {
        assert_eq!(histogram(&[-1.5, -1.0, -0.01, 0.0, 0.49, 0.5, 1.0, 3.0], 4), vec![2, 1, 2, 3]);
    }
}
