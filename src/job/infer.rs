//! Predicting a test file from saved fold checkpoints on the CPU: the path `export` takes
//! when the stored test predictions do not cover the file it is asked for.

use std::path::{Path, PathBuf};

use super::unlabelled_samples;
use crate::backend::{cpu_device, Cpu};
use crate::config::Config;
use crate::data::{Dataset, MetricTable, Split};
use crate::error::InputError;
use crate::model::ModelSpec;
use crate::text::{text_features, Part};
use crate::train::{checkpoint, predict, Features};

/// Each checkpoint's predictions of `test_path`'s records, in order; `config` must already
/// point at the test file's own text embeddings when it reads precomputed ones.
pub fn predict_from_checkpoints(
    config: &Config,
    test_path: &Path,
    checkpoint_dirs: &[PathBuf],
) -> anyhow::Result<Vec<Vec<f64>>> {
    if config.features.prototypes || !config.train.model.is_neural() {
        // Prototypes are fitted per fold and trees are never saved: only the predictions of
        // `data.test`, made by each job, exist.
        return Err(InputError::in_file(
            test_path,
            "a config with features.prototypes or model gbdt predicts only its own data.test \
             (stored by its jobs); its fold prototypes and trees are not saved",
        )
        .into());
    }
    let metrics = MetricTable::load(&config.data.metric_names, &config.data.metric_embeddings)?;
    let test = Dataset::load(test_path, Split::Test, metrics)?;
    let texts = text_features(config, &test, Part::Test)?;
    let samples = unlabelled_samples(&test);
    let features = Features { metrics: &test.metrics.embeddings, texts: &texts };
    let device = cpu_device();
    let mut out = Vec::with_capacity(checkpoint_dirs.len());
    for dir in checkpoint_dirs {
        let (spec, model) = checkpoint::load::<Cpu>(dir, &device)?;
        check_widths(&spec, dir, test.metrics.dim(), texts.cols)?;
        let scores = predict(&model, features, &samples, &device).scores;
        out.push(scores.into_iter().map(f64::from).collect());
    }
    Ok(out)
}

/// A checkpoint only fits features of the widths it was trained on; say so rather than let
/// burn panic on the shapes.
fn check_widths(
    spec: &ModelSpec,
    checkpoint: &Path,
    metric_width: usize,
    text_width: usize,
) -> Result<(), InputError> {
    if spec.d_metric == metric_width && spec.d_text == text_width {
        return Ok(());
    }
    Err(InputError::in_file(
        checkpoint,
        format!(
            "the checkpoint was trained on metric width {} and text width {}, but the test \
             features have metric width {metric_width} and text width {text_width}",
            spec.d_metric, spec.d_text
        ),
    ))
}
