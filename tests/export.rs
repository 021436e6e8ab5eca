//! `export` submits the mean of the fold models' predictions: checked through the binary
//! against each fold checkpoint's own predictions, computed here through the library. Only
//! the averaging is checked, not how export arrives at it.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::common::{stderr, Scratch, TINY_SWEEP};
use foldsweep::backend::{cpu_device, Cpu};
use foldsweep::config::Config;
use foldsweep::data::{Dataset, MetricTable, Split};
use foldsweep::sampling::Sample;
use foldsweep::text::{text_features, Part};
use foldsweep::train::{checkpoint, predict, Features};

/// The export writes 4 decimals: half a unit of the last one, and float noise.
const CSV_RESOLUTION: f64 = 5e-5 + 1e-6;

/// A config's resolved settings (paths as written, relative to the sweep's folder) and its
/// finished folds' checkpoint folders, in fold order.
fn config_and_checkpoints(s: &Scratch, config_id: &str) -> (Config, Vec<PathBuf>) {
    let conn = Connection::open(s.path("results.db")).unwrap();
    let params: String = conn
        .query_row("SELECT params FROM configs WHERE id = ?1", [config_id], |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT r.checkpoint FROM jobs j JOIN fold_results r ON r.job_id = j.id
             WHERE j.config_id = ?1 AND j.status = 'done' ORDER BY j.fold",
        )
        .unwrap();
    let checkpoints = stmt
        .query_map([config_id], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|path| s.path(&path.unwrap()))
        .collect();
    (serde_json::from_str(&params).unwrap(), checkpoints)
}

/// Each checkpoint's predictions for every record of the config's test file.
fn predictions_per_fold(config: &Config, dir: &Path, checkpoints: &[PathBuf]) -> Vec<Vec<f32>> {
    let data = &config.data;
    let metrics =
        MetricTable::load(&dir.join(&data.metric_names), &dir.join(&data.metric_embeddings))
            .unwrap();
    let test = Dataset::load(&dir.join(data.test.as_ref().unwrap()), Split::Test, metrics).unwrap();
    let texts = text_features(config, &test, Part::Test).unwrap();
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

/// The scores of an `ID,score` submission, checking the IDs run 1..N.
fn submission_scores(text: &str) -> Vec<f64> {
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

#[test]
fn export_submits_the_mean_of_the_fold_models_and_not_any_one_fold() {
    let s = Scratch::new();
    s.write("sweep.toml", TINY_SWEEP);
    let run = s.run(&["run", "sweep.toml", "--db", "results.db"]);
    assert!(run.status.success(), "sweep failed:\n{}", stderr(&run));
    let config_id: String = Connection::open(s.path("results.db"))
        .unwrap()
        .query_row("SELECT MIN(config_id) FROM jobs", [], |r| r.get(0))
        .unwrap();

    let export = s.run(&[
        "export",
        "--db",
        "results.db",
        "--config",
        &config_id,
        "--no-round",
        "--out",
        "x.csv",
    ]);
    assert!(export.status.success(), "export failed:\n{}", stderr(&export));
    let exported = submission_scores(&s.read("x.csv"));

    let (config, checkpoints) = config_and_checkpoints(&s, &config_id);
    assert_eq!(checkpoints.len(), 5, "every fold finished");
    let folds = predictions_per_fold(&config, s.dir.path(), &checkpoints);
    assert_eq!(exported.len(), folds[0].len(), "one row per test record");
    for (row, &got) in exported.iter().enumerate() {
        let mean = folds.iter().map(|fold| fold[row] as f64).sum::<f64>() / folds.len() as f64;
        let expected = mean.clamp(0.0, 10.0);
        assert!(
            (got - expected).abs() <= CSV_RESOLUTION,
            "row {row}: exported {got}, mean of the folds {expected}"
        );
    }
    for (fold, predictions) in folds.iter().enumerate() {
        let largest_gap = exported
            .iter()
            .zip(predictions)
            .map(|(&got, &p)| (got - p as f64).abs())
            .fold(0.0, f64::max);
        assert!(largest_gap > 1e-2, "the export is fold {fold}'s predictions ({largest_gap:.2e})");
    }
}
