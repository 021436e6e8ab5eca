//! A config's test predictions computed here through the library, fold model by fold model,
//! to check what `export` writes against.

use std::path::{Path, PathBuf};

use foldsweep::backend::{cpu_device, Cpu};
use foldsweep::config::Config;
use foldsweep::data::{Dataset, MetricTable, Split};
use foldsweep::sampling::Sample;
use foldsweep::text::{text_features, Part};
use foldsweep::train::{checkpoint, predict, Features};

use super::db;

/// The export writes 4 decimals: half a unit of the last one, and float noise.
pub const CSV_RESOLUTION: f64 = 5e-5 + 1e-6;

/// A config's resolved settings (paths as written, relative to the sweep's folder) and its
/// finished folds' checkpoint folders, in fold order.
pub fn config_and_checkpoints(dir: &Path, db: &Path, config_id: &str) -> (Config, Vec<PathBuf>) {
    let store = db::store(db);
    let params = store.config_params(config_id).unwrap().expect("the config is stored");
    let checkpoints = store
        .fold_metrics(config_id)
        .unwrap()
        .into_iter()
        .map(|fold| dir.join(fold.checkpoint.expect("a checkpoint per fold")))
        .collect();
    (serde_json::from_str(&params).unwrap(), checkpoints)
}

/// Each checkpoint's predictions for every record of the config's test file (`data.test`,
/// with `text.test_embeddings` for precomputed features), paths relative to `dir`.
pub fn predictions_per_fold(config: &Config, dir: &Path, checkpoints: &[PathBuf]) -> Vec<Vec<f32>> {
    let mut config = config.clone();
    let data = &mut config.data;
    for path in [&mut data.metric_names, &mut data.metric_embeddings] {
        *path = dir.join(&*path);
    }
    data.test = data.test.as_ref().map(|p| dir.join(p));
    config.text.test_embeddings = config.text.test_embeddings.as_ref().map(|p| dir.join(p));
    let data = &config.data;
    let metrics = MetricTable::load(&data.metric_names, &data.metric_embeddings).unwrap();
    let test = Dataset::load(data.test.as_ref().unwrap(), Split::Test, metrics).unwrap();
    let texts = text_features(&config, &test, Part::Test).unwrap();
    let samples: Vec<Sample> = (0..test.len())
        .map(|i| Sample {
            metric_row: test.metric_rows[i],
            text_row: i,
            target: 0.0,
            weight: 1.0,
            record: i,
            synthetic: false,
        })
        .collect();
    let features = Features { metrics: &test.metrics.embeddings, texts: &texts };
    let device = cpu_device();
    checkpoints
        .iter()
        .map(|checkpoint| {
            let (_, model) = checkpoint::load::<Cpu>(checkpoint, &device).unwrap();
            predict(&model, features, &samples, &device).scores
        })
        .collect()
}

/// The mean of the folds' predictions per record, clamped to the score range, as exported.
pub fn mean_of_folds(folds: &[Vec<f32>]) -> Vec<f64> {
    assert!(!folds.is_empty(), "no fold model");
    let rows = folds[0].len();
    assert!(folds.iter().all(|f| f.len() == rows), "every fold predicts every record");
    (0..rows)
        .map(|row| {
            let sum: f64 = folds.iter().map(|fold| fold[row] as f64).sum();
            (sum / folds.len() as f64).clamp(0.0, 10.0)
        })
        .collect()
}

/// The scores of an `ID,score` submission, checking the IDs run 1..N.
pub fn submission_scores(text: &str) -> Vec<f64> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ID,score"));
    lines
        .enumerate()
        .map(|(i, line)| {
            let (id, score) = line.split_once(',').unwrap();
            assert_eq!(id.parse::<usize>().unwrap(), i + 1, "IDs in file order");
            score.parse().unwrap()
        })
        .collect()
}
