//! One fold's feature matrices, as the two model families take them.
//!
//! - The MLP heads: the prototype features (standardised on the fold's training samples) are
//!   appended to each sample's text vector ([`append_to_texts`]), so the MLP's input
//!   `[metric, text, bilinear(metric, text)]` holds them. The bilinear layer sees them too.
//! - Boosted trees: one row per sample of prototype features, principal components of the
//!   text and, optionally, the metric embedding ([`tree_inputs`]).

use super::pca::Pca;
use super::{FeaturesConfig, FoldPrototypes, Standardizer, TextSet};
use crate::data::Matrix;
use crate::sampling::Sample;

/// The samples of one fold: training (real rows and synthetic negatives), validation, probe
/// rows, and the test set with its own text matrix.
#[derive(Debug, Clone, Copy)]
pub struct FoldSamples<'a> {
    pub texts: &'a Matrix,
    pub train: &'a [Sample],
    pub val: &'a [Sample],
    pub probes: &'a [Sample],
    pub test: Option<(&'a Matrix, &'a [Sample])>,
}

/// Per-sample prototype features of each set, fitted on the fold's training rows only.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldFeatures {
    pub columns: Vec<String>,
    pub train: Matrix,
    pub val: Matrix,
    pub probes: Matrix,
    pub test: Option<Matrix>,
}

impl FoldFeatures {
    pub fn compute(config: FeaturesConfig, fold: FoldSamples<'_>, metric_names: &[String]) -> Self {
        let prototypes = FoldPrototypes::fit(config, fold.texts, fold.train, metric_names);
        let on_fold =
            |samples: &[Sample]| prototypes.features(fold.texts, samples, TextSet::Training);
        FoldFeatures {
            columns: prototypes.column_names(),
            train: on_fold(fold.train),
            val: on_fold(fold.val),
            probes: on_fold(fold.probes),
            test: fold
                .test
                .map(|(texts, samples)| prototypes.features(texts, samples, TextSet::Unseen)),
        }
    }

    /// Standardises every set with the training samples' column means and deviations.
    pub fn standardise(&mut self) {
        let scaler = Standardizer::fit(&self.train);
        for m in
            [&mut self.train, &mut self.val, &mut self.probes].into_iter().chain(self.test.as_mut())
        {
            scaler.apply(m);
        }
    }
}

/// One text matrix for several sample sets: row i of the result is sample i's text followed
/// by its feature row, and each returned sample points at its own row (sets in order: the
/// first set's samples take rows 0.., the next set's follow).
pub fn append_to_texts(
    texts: &Matrix,
    sets: &[(&[Sample], &Matrix)],
) -> (Matrix, Vec<Vec<Sample>>) {
    let extra = sets.first().map_or(0, |(_, f)| f.cols);
    let rows: usize = sets.iter().map(|(s, _)| s.len()).sum();
    let mut data = Vec::with_capacity(rows * (texts.cols + extra));
    let mut remapped = Vec::with_capacity(sets.len());
    let mut next_row = 0;
    for (samples, features) in sets {
        assert_eq!(samples.len(), features.rows, "one feature row per sample");
        assert_eq!(features.cols, extra, "every set has the same feature columns");
        let mut set = Vec::with_capacity(samples.len());
        for (i, sample) in samples.iter().enumerate() {
            data.extend_from_slice(texts.row(sample.text_row));
            data.extend_from_slice(features.row(i));
            set.push(Sample { text_row: next_row, ..*sample });
            next_row += 1;
        }
        remapped.push(set);
    }
    (Matrix::new(rows, texts.cols + extra, data), remapped)
}

/// What the trees read besides the prototype features.
#[derive(Debug, Clone, Copy)]
pub struct TreeExtras<'a> {
    /// Principal components fitted on the fold's training texts, and the text matrix the
    /// samples point into.
    pub components: Option<(&'a Pca, &'a Matrix)>,
    /// The metric table's embeddings, when they are inputs too.
    pub metrics: Option<&'a Matrix>,
}

/// One row per sample: its prototype features (`features`, may have 0 columns), then its
/// text's principal components, then its metric's embedding.
pub fn tree_inputs(
    samples: &[Sample],
    features: Option<&Matrix>,
    extras: TreeExtras<'_>,
) -> Matrix {
    let projected = extras.components.map(|(pca, texts)| {
        let rows: Vec<usize> = samples.iter().map(|s| s.text_row).collect();
        pca.project(&texts.select_rows(&rows))
    });
    let width = features.map_or(0, |f| f.cols)
        + projected.as_ref().map_or(0, |p| p.cols)
        + extras.metrics.map_or(0, |m| m.cols);
    let mut data = Vec::with_capacity(samples.len() * width);
    for (i, sample) in samples.iter().enumerate() {
        if let Some(f) = features {
            data.extend_from_slice(f.row(i));
        }
        if let Some(p) = &projected {
            data.extend_from_slice(p.row(i));
        }
        if let Some(m) = extras.metrics {
            data.extend_from_slice(m.row(sample.metric_row));
        }
    }
    Matrix::new(samples.len(), width, data)
}
