//! Features that see a text/metric mismatch: how close a row's text lies to the **prototype**
//! of the metric it is paired with (the mean text vector of that metric's training rows),
//! against every other metric's prototype (issue 23).
//!
//! Metric definitions are hidden and the metric embeddings come from another model than the
//! texts, so a model that compares the two embedding spaces directly has to learn their
//! relation from few mismatched examples. A prototype puts each metric in the texts' own space:
//! a text paired with the wrong metric lies far from that metric's prototype and close to
//! another one, which the **margin** (own cosine minus the best other cosine) shows.
//!
//! # Leakage rules (each one has a test in `tests.rs`)
//! - Prototypes are fitted inside each fold from that fold's real training rows only
//!   ([`FoldPrototypes::fit`]): validation rows, probe rows, test rows and synthetic negatives
//!   never enter a prototype.
//! - Leave-one-out: a row whose text is a training text sees every prototype without that
//!   text. For a real training row that is its own metric's prototype (so its features are no
//!   more confident than a validation row's); for a synthetic negative (a training text paired
//!   with another metric) it is the prototype of the metric the text came from, which is then
//!   an *other* prototype, as a mismatched test pair's true metric would be.
//! - Synthetic negatives and probe rows get the statistics of the metric they are paired with.
//! - Validation, probe and test rows use the fold's prototypes unchanged ([`TextSet::Unseen`]).
//!
//! # A metric without a prototype
//! A metric with no training rows in the fold (or whose only training row is the row itself,
//! under leave-one-out) has no prototype. A row paired with it gets `has_prototype = 0` and
//! every statistic of its own metric is 0 (cosine, margin, rank, L2, dot); the best other
//! cosine is still computed over the prototypes that exist. Such a metric's column in the
//! all-cosines block is 0 for every row. With `has_prototype` a model can tell this case from a
//! text that is merely orthogonal to its prototype. A row with no other prototype at all gets a
//! best other cosine of 0.
//!
//! # Families
//! Metric names have parents: `rejection_rate/over_rejection` belongs to the family
//! `rejection_rate` (the part before the first `/`; a name without `/` is its own family).
//! Siblings can share almost the same texts, so their prototypes nearly coincide and the
//! metric-level margin says little between them; `prototype_level = "family" | "both"` adds the
//! same statistics against family prototypes (the mean text of all the family's training rows).
//!
//! Everything here is a pure function of row-major f32 matrices and [`Sample`]s.

pub mod fold;
#[cfg(test)]
mod fold_tests;
pub mod gbdt;
#[cfg(test)]
mod gbdt_tests;
pub mod pca;
mod prototype;
#[cfg(test)]
mod tests;

pub use crate::config::{CosineColumns, FeaturesConfig, PrototypeLevel};
use crate::data::Matrix;
use crate::sampling::Sample;
pub use prototype::{PrototypeSet, RowStats, STAT_NAMES};

/// The family of a metric name: the part before the first `/`, or the whole name.
pub fn family_of(name: &str) -> &str {
    name.split_once('/').map_or(name, |(parent, _)| parent)
}

/// Metric row -> family index, and the family names in order of first appearance.
pub fn families(metric_names: &[String]) -> (Vec<usize>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let index = metric_names
        .iter()
        .map(|metric| {
            let family = family_of(metric);
            match names.iter().position(|known| known == family) {
                Some(i) => i,
                None => {
                    names.push(family.to_string());
                    names.len() - 1
                }
            }
        })
        .collect();
    (index, names)
}

/// Whose texts a batch of samples points into: the fold's own text matrix (train and
/// validation records, whose training texts are inside the prototypes) or another one (test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSet {
    /// `texts` is the matrix the prototypes were fitted on: leave-one-out applies to the
    /// training texts.
    Training,
    /// Texts no prototype contains (the test set's matrix).
    Unseen,
}

/// The prototypes of one fold, at the levels the config asks for.
#[derive(Debug, Clone)]
pub struct FoldPrototypes {
    config: FeaturesConfig,
    metric: Option<PrototypeSet>,
    family: Option<(PrototypeSet, Vec<usize>)>,
}

impl FoldPrototypes {
    /// Fits the prototypes on the real (non-synthetic) rows of `train`; `texts` is the matrix
    /// their `text_row`s index, `metric_names` the metric table (row i = metric i).
    pub fn fit(
        config: FeaturesConfig,
        texts: &Matrix,
        train: &[Sample],
        metric_names: &[String],
    ) -> FoldPrototypes {
        let real: Vec<&Sample> = train.iter().filter(|s| !s.synthetic).collect();
        let metric = config.prototype_level.uses_metrics().then(|| {
            let members: Vec<(usize, usize)> =
                real.iter().map(|s| (s.text_row, s.metric_row)).collect();
            PrototypeSet::fit(texts, &members, metric_names.len())
        });
        let family = config.prototype_level.uses_families().then(|| {
            let (family_index, family_names) = families(metric_names);
            let members: Vec<(usize, usize)> =
                real.iter().map(|s| (s.text_row, family_index[s.metric_row])).collect();
            (PrototypeSet::fit(texts, &members, family_names.len()), family_index)
        });
        FoldPrototypes { config, metric, family }
    }

    /// Feature columns per row.
    pub fn width(&self) -> usize {
        let per_level = |set: &PrototypeSet| {
            STAT_NAMES.len()
                + if self.config.prototype_cosines == CosineColumns::All { set.groups() } else { 0 }
        };
        self.metric.as_ref().map_or(0, per_level)
            + self.family.as_ref().map_or(0, |(set, _)| per_level(set))
    }

    /// Column names, in the order of [`FoldPrototypes::features`]: `metric.margin`, ...,
    /// `metric.cos[3]`, then the same for `family.`.
    pub fn column_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.width());
        let levels =
            [("metric", self.metric.as_ref()), ("family", self.family.as_ref().map(|f| &f.0))];
        for (level, set) in levels {
            let Some(set) = set else { continue };
            names.extend(STAT_NAMES.iter().map(|stat| format!("{level}.{stat}")));
            if self.config.prototype_cosines == CosineColumns::All {
                names.extend((0..set.groups()).map(|g| format!("{level}.cos[{g}]")));
            }
        }
        names
    }

    /// One row of features per sample (`samples.len()` x [`Self::width`]).
    ///
    /// With [`TextSet::Training`], a sample whose text is a training text sees the prototype
    /// that text helped build without it (leave-one-out); validation texts are in no
    /// prototype, so they see the fold's prototypes as they are.
    pub fn features(&self, texts: &Matrix, samples: &[Sample], text_set: TextSet) -> Matrix {
        let all = self.config.prototype_cosines == CosineColumns::All;
        let width = self.width();
        let mut data = Vec::with_capacity(samples.len() * width);
        let metric_stats = self.metric.as_ref().map(|set| {
            let pairs: Vec<(usize, usize)> =
                samples.iter().map(|s| (s.text_row, s.metric_row)).collect();
            set.row_stats(texts, &pairs, text_set, all)
        });
        let family_stats = self.family.as_ref().map(|(set, family_index)| {
            let pairs: Vec<(usize, usize)> =
                samples.iter().map(|s| (s.text_row, family_index[s.metric_row])).collect();
            set.row_stats(texts, &pairs, text_set, all)
        });
        for i in 0..samples.len() {
            for stats in [&metric_stats, &family_stats].into_iter().flatten() {
                stats[i].push_columns(&mut data, all);
            }
        }
        Matrix::new(samples.len(), width, data)
    }
}

/// Per-column standardisation fitted on training rows (the MLP heads need inputs on one
/// scale; a rank runs to 145 while a cosine stays within [-1, 1]).
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Standardizer {
    /// Mean and standard deviation of each column; a constant column gets scale 1.
    pub fn fit(features: &Matrix) -> Standardizer {
        let n = features.rows.max(1) as f64;
        let mut mean = vec![0.0f64; features.cols];
        let mut square = vec![0.0f64; features.cols];
        for r in 0..features.rows {
            for (c, &v) in features.row(r).iter().enumerate() {
                mean[c] += v as f64;
                square[c] += (v as f64) * (v as f64);
            }
        }
        let mut scale = Vec::with_capacity(features.cols);
        for c in 0..features.cols {
            mean[c] /= n;
            let variance = (square[c] / n - mean[c] * mean[c]).max(0.0);
            scale.push(if variance > 1e-12 { variance.sqrt() as f32 } else { 1.0 });
        }
        Standardizer { mean: mean.into_iter().map(|m| m as f32).collect(), scale }
    }

    pub fn apply(&self, features: &mut Matrix) {
        for row in features.data.chunks_mut(features.cols.max(1)) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - m) / s;
            }
        }
    }
}
