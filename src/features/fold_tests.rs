//! Principal components against numpy, and the fold's matrices for both model families.

use super::fold::{append_to_texts, tree_inputs, FoldFeatures, FoldSamples, TreeExtras};
use super::pca::Pca;
use super::{CosineColumns, FeaturesConfig, PrototypeLevel};
use crate::data::Matrix;
use crate::sampling::Sample;

fn fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/prototypes/prototypes.json");
    serde_json::from_slice(&std::fs::read(path).expect("fixture present")).unwrap()
}

fn rows(value: &serde_json::Value) -> Matrix {
    let rows: Vec<Vec<f32>> = serde_json::from_value(value.clone()).unwrap();
    Matrix::new(rows.len(), rows[0].len(), rows.concat())
}

fn sample(text_row: usize, metric_row: usize, synthetic: bool) -> Sample {
    Sample { metric_row, text_row, target: 1.0, weight: 1.0, record: text_row, synthetic }
}

#[test]
fn principal_components_match_numpy() {
    let pca_fixture = &fixture()["pca"];
    let texts = rows(&pca_fixture["rows"]);
    let fit_rows: Vec<usize> = serde_json::from_value(pca_fixture["fit_rows"].clone()).unwrap();
    let pca = Pca::fit(&texts, &fit_rows, 3);
    let want_components: Vec<Vec<f64>> =
        serde_json::from_value(pca_fixture["components"].clone()).unwrap();
    for (got, want) in pca.components.chunks(6).zip(&want_components) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "component {got:?} vs {want:?}");
        }
    }
    let want: Vec<Vec<f64>> = serde_json::from_value(pca_fixture["projections"].clone()).unwrap();
    let got = pca.project(&texts);
    for (r, want_row) in want.iter().enumerate() {
        for (c, w) in want_row.iter().enumerate() {
            let g = got.row(r)[c] as f64;
            assert!((g - w).abs() < 1e-4 * (1.0 + w.abs()), "row {r} pc {c}: {g} vs {w}");
        }
    }
}

#[test]
fn more_components_than_columns_are_capped() {
    let texts = Matrix::new(3, 2, vec![1.0, 0.0, 0.0, 2.0, 3.0, 1.0]);
    let pca = Pca::fit(&texts, &[0, 1, 2], 5);
    assert_eq!(pca.k, 2);
    assert_eq!(pca.project(&texts).cols, 2);
}

/// The fixture's fold as `FoldSamples`.
fn fixture_fold(f: &serde_json::Value) -> (Matrix, Matrix, Vec<Vec<Sample>>, Vec<String>) {
    let set = |kind: &str, synthetic: bool| -> Vec<Sample> {
        let pairs: Vec<(usize, usize)> =
            serde_json::from_value(f["samples"][kind].clone()).unwrap();
        pairs.into_iter().map(|(t, m)| sample(t, m, synthetic)).collect()
    };
    let mut train = set("train", false);
    train.extend(set("synthetic", true));
    let names = serde_json::from_value(f["metric_names"].clone()).unwrap();
    (
        rows(&f["texts"]),
        rows(&f["test_texts"]),
        vec![train, set("val", false), set("probe", false), set("test", false)],
        names,
    )
}

#[test]
fn fold_features_use_training_rows_and_standardise_on_them() {
    let f = fixture();
    let (texts, test_texts, sets, names) = fixture_fold(&f);
    let config = FeaturesConfig {
        prototypes: true,
        prototype_cosines: CosineColumns::All,
        prototype_level: PrototypeLevel::Both,
    };
    let fold = FoldSamples {
        texts: &texts,
        train: &sets[0],
        val: &sets[1],
        probes: &sets[2],
        test: Some((&test_texts, &sets[3])),
    };
    let mut features = FoldFeatures::compute(config, fold, &names);
    // The synthetic rows follow the real ones in the fixture's expected training block.
    let want_train: Vec<Vec<f64>> = serde_json::from_value(f["expected"]["train"].clone()).unwrap();
    assert!((features.train.row(0)[1] as f64 - want_train[0][1]).abs() < 1e-6);
    let want_test: Vec<Vec<f64>> = serde_json::from_value(f["expected"]["test"].clone()).unwrap();
    assert!((features.test.as_ref().unwrap().row(3)[3] as f64 - want_test[3][3]).abs() < 1e-6);
    features.standardise();
    for c in 0..features.train.cols {
        let column: Vec<f64> =
            (0..features.train.rows).map(|r| features.train.row(r)[c] as f64).collect();
        let mean = column.iter().sum::<f64>() / column.len() as f64;
        assert!(mean.abs() < 1e-5, "column {} has training mean {mean}", features.columns[c]);
    }
}

#[test]
fn features_are_appended_to_each_samples_text() {
    let texts = Matrix::new(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let train = [sample(2, 0, false), sample(2, 1, true)];
    let val = [sample(0, 1, false)];
    let f_train = Matrix::new(2, 1, vec![0.5, -0.5]);
    let f_val = Matrix::new(1, 1, vec![9.0]);
    let (joined, sets) = append_to_texts(&texts, &[(&train, &f_train), (&val, &f_val)]);
    assert_eq!(joined, Matrix::new(3, 3, vec![5.0, 6.0, 0.5, 5.0, 6.0, -0.5, 1.0, 2.0, 9.0]));
    assert_eq!(sets[0].iter().map(|s| s.text_row).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(sets[1][0], Sample { text_row: 2, ..val[0] });
    assert_eq!(sets[0][1].metric_row, 1, "the pairing is kept");
}

#[test]
fn tree_inputs_put_features_components_and_metric_side_by_side() {
    let texts = Matrix::new(3, 2, vec![1.0, 0.0, -1.0, 0.0, 0.0, 0.5]);
    let metrics = Matrix::new(2, 1, vec![7.0, 8.0]);
    let pca = Pca::fit(&texts, &[0, 1, 2], 1);
    let samples = [sample(0, 1, false), sample(1, 0, false)];
    let features = Matrix::new(2, 2, vec![0.1, 0.2, 0.3, 0.4]);
    let extras = TreeExtras { components: Some((&pca, &texts)), metrics: Some(&metrics) };
    let x = tree_inputs(&samples, Some(&features), extras);
    assert_eq!(x.cols, 4);
    // The first component is the x axis (variance 2/3 against 1/18): +-1 minus the mean 0.
    assert_eq!(&x.row(0)[..2], &[0.1, 0.2]);
    assert!((x.row(0)[2].abs() - 1.0).abs() < 1e-5 && (x.row(0)[2] + x.row(1)[2]).abs() < 1e-5);
    assert_eq!((x.row(0)[3], x.row(1)[3]), (8.0, 7.0));
    let bare =
        tree_inputs(&samples, None, TreeExtras { components: None, metrics: Some(&metrics) });
    assert_eq!(bare, Matrix::new(2, 1, vec![8.0, 7.0]));
}
