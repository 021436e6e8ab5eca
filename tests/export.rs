//! `export` submits the mean of the fold models' predictions: checked through the binary
//! against each fold checkpoint's own predictions, computed here through the library. Only
//! the averaging is checked, not how export arrives at it.

use crate::common::predictions::{
    config_and_checkpoints, mean_of_folds, predictions_per_fold, submission_scores, CSV_RESOLUTION,
};
use crate::common::{db, scratch_with_sweep, TINY_SWEEP};

#[test]
fn export_submits_the_mean_of_the_fold_models_and_not_any_one_fold() {
    let s = scratch_with_sweep(TINY_SWEEP);
    s.run_sweep().expect_success();
    let config_id = db::config_ids(&s.db()).into_iter().min().expect("a config");

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
    export.expect_success();
    let exported = submission_scores(&s.read("x.csv"));

    let (config, checkpoints) = config_and_checkpoints(s.dir.path(), &s.db(), &config_id);
    assert_eq!(checkpoints.len(), 5, "every fold finished");
    let folds = predictions_per_fold(&config, s.dir.path(), &checkpoints);
    let means = mean_of_folds(&folds);
    assert_eq!(exported.len(), means.len(), "one row per test record");
    for (row, (&got, &expected)) in exported.iter().zip(&means).enumerate() {
        assert!(
            (got - expected).abs() <= CSV_RESOLUTION,
            "row {row}: exported {got}, mean of the folds {expected}"
        );
    }
    for (fold, predictions) in folds.iter().enumerate() {
        assert_eq!(predictions.len(), exported.len());
        let largest_gap = exported
            .iter()
            .zip(predictions)
            .map(|(&got, &p)| (got - p as f64).abs())
            .fold(0.0, f64::max);
        assert!(largest_gap > 1e-2, "the export is fold {fold}'s predictions ({largest_gap:.2e})");
    }
}
