//! The prototype features against a numpy reference, and one test per leakage rule.

use super::*;
use crate::data::Matrix;
use crate::sampling::Sample;

fn sample(text_row: usize, metric_row: usize, synthetic: bool) -> Sample {
    Sample { metric_row, text_row, target: 0.0, weight: 1.0, record: text_row, synthetic }
}

fn both_all() -> FeaturesConfig {
    FeaturesConfig {
        prototypes: true,
        prototype_cosines: CosineColumns::All,
        prototype_level: PrototypeLevel::Both,
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// 10 texts of width 3 (deterministic, no two alike); metrics 0..4, families {0,1} {2} {3}.
fn toy() -> (Matrix, Vec<String>, Vec<usize>) {
    let data: Vec<f32> =
        (0..30).map(|i| ((i * 7 + 3) % 11) as f32 - 5.0 + 0.1 * (i % 3) as f32).collect();
    let metric_rows = vec![0, 0, 1, 1, 2, 2, 3, 0, 1, 2];
    (Matrix::new(10, 3, data), names(&["p", "p/q", "r", "s"]), metric_rows)
}

/// Training rows 0..7, validation rows 7..10.
fn toy_fold(metric_rows: &[usize]) -> (Vec<Sample>, Vec<Sample>) {
    let train = (0..7).map(|r| sample(r, metric_rows[r], false)).collect();
    let val = (7..10).map(|r| sample(r, metric_rows[r], false)).collect();
    (train, val)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn mean_of(texts: &Matrix, rows: &[usize]) -> Vec<f32> {
    let mut mean = vec![0.0f64; texts.cols];
    for &r in rows {
        for (m, v) in mean.iter_mut().zip(texts.row(r)) {
            *m += *v as f64 / rows.len() as f64;
        }
    }
    mean.into_iter().map(|m| m as f32).collect()
}

fn column(prototypes: &FoldPrototypes, name: &str) -> usize {
    prototypes.column_names().iter().position(|c| c == name).expect("column exists")
}

#[test]
fn matches_the_numpy_reference() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/prototypes/prototypes.json");
    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("fixture present")).unwrap();
    let matrix = |key: &str| {
        let rows: Vec<Vec<f32>> = serde_json::from_value(fixture[key].clone()).unwrap();
        let cols = rows[0].len();
        Matrix::new(rows.len(), cols, rows.concat())
    };
    let (texts, test_texts) = (matrix("texts"), matrix("test_texts"));
    let metric_names: Vec<String> =
        serde_json::from_value(fixture["metric_names"].clone()).unwrap();
    let samples = |kind: &str, synthetic: bool| -> Vec<Sample> {
        let pairs: Vec<(usize, usize)> =
            serde_json::from_value(fixture["samples"][kind].clone()).unwrap();
        pairs.into_iter().map(|(t, m)| sample(t, m, synthetic)).collect()
    };
    let mut train = samples("train", false);
    train.extend(samples("synthetic", true));
    let prototypes = FoldPrototypes::fit(both_all(), &texts, &train, &metric_names);
    let columns: Vec<String> = serde_json::from_value(fixture["columns"].clone()).unwrap();
    assert_eq!(prototypes.column_names(), columns);
    let mut checked = 0;
    for (kind, synthetic, matrix, set) in [
        ("train", false, &texts, TextSet::Training),
        ("synthetic", true, &texts, TextSet::Training),
        ("val", false, &texts, TextSet::Training),
        ("probe", false, &texts, TextSet::Training),
        ("test", false, &test_texts, TextSet::Unseen),
    ] {
        let got = prototypes.features(matrix, &samples(kind, synthetic), set);
        let want: Vec<Vec<f64>> =
            serde_json::from_value(fixture["expected"][kind].clone()).unwrap();
        assert_eq!(got.rows, want.len(), "{kind}");
        for (r, want_row) in want.iter().enumerate() {
            for (c, &w) in want_row.iter().enumerate() {
                let g = got.row(r)[c] as f64;
                assert!(
                    (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{kind} row {r} {}: {g} vs {w}",
                    columns[c]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "compared {checked} numbers");
}

#[test]
fn a_validation_text_moves_no_prototype() {
    let (texts, metric_names, metric_rows) = toy();
    let (train, val) = toy_fold(&metric_rows);
    let fit = |texts: &Matrix| FoldPrototypes::fit(both_all(), texts, &train, &metric_names);
    let mut moved = texts.clone();
    for row in 7..10 {
        for v in &mut moved.data[row * 3..row * 3 + 3] {
            *v = *v * 40.0 + 3.0;
        }
    }
    let (before, after) = (fit(&texts), fit(&moved));
    let metric_set = |p: &FoldPrototypes| p.metric.clone().unwrap();
    for g in 0..metric_names.len() {
        assert_eq!(metric_set(&before).mean(g), metric_set(&after).mean(g), "metric {g}");
    }
    let family_set = |p: &FoldPrototypes| p.family.clone().unwrap().0;
    for g in 0..3 {
        assert_eq!(family_set(&before).mean(g), family_set(&after).mean(g), "family {g}");
    }
    // What the training rows see is unchanged; the validation rows' own features do move.
    assert_eq!(
        before.features(&texts, &train, TextSet::Training),
        after.features(&moved, &train, TextSet::Training)
    );
    assert_ne!(
        before.features(&texts, &val, TextSet::Training),
        after.features(&moved, &val, TextSet::Training)
    );
}

#[test]
fn synthetic_and_validation_samples_never_enter_a_prototype() {
    let (texts, metric_names, metric_rows) = toy();
    let (train, val) = toy_fold(&metric_rows);
    let mut with_extra = train.clone();
    with_extra.push(sample(0, 3, true)); // a synthetic negative: text 0 with metric 3
    let plain = FoldPrototypes::fit(both_all(), &texts, &train, &metric_names);
    let extra = FoldPrototypes::fit(both_all(), &texts, &with_extra, &metric_names);
    let set = |p: &FoldPrototypes| p.metric.clone().unwrap();
    assert_eq!(set(&plain).count(3), 1);
    assert_eq!(set(&extra).count(3), 1);
    assert_eq!(set(&extra).mean(3), Some(texts.row(6).to_vec()));
    assert_eq!(set(&plain).mean(0), Some(mean_of(&texts, &[0, 1])), "row 7 is validation");
    let all = plain.features(&texts, &val, TextSet::Training);
    assert_eq!(all, extra.features(&texts, &val, TextSet::Training));
}

#[test]
fn a_training_row_sees_its_own_prototype_without_itself() {
    let (texts, metric_names, metric_rows) = toy();
    let (train, _) = toy_fold(&metric_rows);
    let config = both_all();
    let prototypes = FoldPrototypes::fit(config, &texts, &train, &metric_names);
    for left_out in 0..7 {
        let rest: Vec<Sample> = train.iter().copied().filter(|s| s.text_row != left_out).collect();
        let without = FoldPrototypes::fit(config, &texts, &rest, &metric_names);
        let row = [train[left_out]];
        // Refitted without the row, the row is an unseen text: exactly what leave-one-out gives.
        let loo = prototypes.features(&texts, &row, TextSet::Training);
        let refit = without.features(&texts, &row, TextSet::Unseen);
        for (a, b) in loo.data.iter().zip(&refit.data) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "training row {left_out}: {a} vs {b}");
        }
    }
    // Without leave-one-out the row would look closer to its prototype than it is.
    let own = column(&prototypes, "metric.own_cosine");
    let loo = prototypes.features(&texts, &train[..1], TextSet::Training).row(0)[own];
    let seen = prototypes.features(&texts, &train[..1], TextSet::Unseen).row(0)[own];
    assert!(seen > loo + 0.02, "in-sample {seen} vs leave-one-out {loo}");
}

#[test]
fn synthetic_negatives_get_the_paired_metric_with_their_source_left_out() {
    let (texts, metric_names, metric_rows) = toy();
    let (mut train, _) = toy_fold(&metric_rows);
    let negative = sample(0, 2, true); // text 0 (metric 0) paired with metric 2
    train.push(negative);
    let config = FeaturesConfig { prototype_level: PrototypeLevel::Metric, ..both_all() };
    let prototypes = FoldPrototypes::fit(config, &texts, &train, &metric_names);
    let row = prototypes.features(&texts, &[negative], TextSet::Training);
    let x = texts.row(0);
    let cos = |c: &str| row.row(0)[column(&prototypes, c)] as f64;
    assert!((cos("metric.own_cosine") - cosine(x, &mean_of(&texts, &[4, 5]))).abs() < 1e-6);
    // Its source metric 0 is an other prototype, seen without text 0 (only text 1 is left).
    assert!((cos("metric.cos[0]") - cosine(x, texts.row(1))).abs() < 1e-6);
    let others =
        [cosine(x, texts.row(1)), cosine(x, &mean_of(&texts, &[2, 3])), cosine(x, texts.row(6))];
    let best = others.iter().copied().fold(f64::MIN, f64::max);
    assert!((cos("metric.best_other_cosine") - best).abs() < 1e-6);
}

#[test]
fn probe_and_test_rows_use_the_fold_prototypes_as_they_are() {
    let (texts, metric_names, metric_rows) = toy();
    let (train, _) = toy_fold(&metric_rows);
    let prototypes = FoldPrototypes::fit(both_all(), &texts, &train, &metric_names);
    let own = column(&prototypes, "metric.own_cosine");
    // A probe: validation text 8 paired with metric 0.
    let probe = prototypes.features(&texts, &[sample(8, 0, false)], TextSet::Training);
    let want = cosine(texts.row(8), &mean_of(&texts, &[0, 1]));
    assert!((probe.row(0)[own] as f64 - want).abs() < 1e-6);
    // A test text equal to training text 0 is still an unseen text: no leave-one-out.
    let test_texts = Matrix::new(1, 3, texts.row(0).to_vec());
    let test = prototypes.features(&test_texts, &[sample(0, 0, false)], TextSet::Unseen);
    let want = cosine(texts.row(0), &mean_of(&texts, &[0, 1]));
    assert!((test.row(0)[own] as f64 - want).abs() < 1e-6);
}

#[test]
fn a_metric_without_training_rows_has_no_prototype() {
    let (texts, metric_names, metric_rows) = toy();
    // Metric 3's only training row (6) is left out: it has no prototype in this fold.
    let train: Vec<Sample> = (0..6).map(|r| sample(r, metric_rows[r], false)).collect();
    let prototypes = FoldPrototypes::fit(both_all(), &texts, &train, &metric_names);
    let row = prototypes.features(&texts, &[sample(6, 3, false)], TextSet::Training);
    let get = |c: &str| row.row(0)[column(&prototypes, c)];
    for stat in ["has_prototype", "own_cosine", "margin", "own_rank", "own_l2", "own_dot", "cos[3]"]
    {
        assert_eq!(get(&format!("metric.{stat}")), 0.0, "{stat}");
    }
    let others = [&[0usize, 1][..], &[2, 3], &[4, 5]]
        .map(|rows| cosine(texts.row(6), &mean_of(&texts, rows)));
    let best = others.iter().copied().fold(f64::MIN, f64::max);
    assert!((get("metric.best_other_cosine") as f64 - best).abs() < 1e-6);
    // Its family (s) has no training row either; family p still has a prototype.
    assert_eq!(get("family.has_prototype"), 0.0);
    let p_row = prototypes.features(&texts, &[sample(6, 1, false)], TextSet::Training);
    assert_eq!(p_row.row(0)[column(&prototypes, "family.has_prototype")], 1.0);
}

#[test]
fn a_lone_training_row_has_no_prototype_of_its_own() {
    let (texts, metric_names, metric_rows) = toy();
    let (train, _) = toy_fold(&metric_rows); // metric 3 has one training row: row 6
    let prototypes = FoldPrototypes::fit(both_all(), &texts, &train, &metric_names);
    let row = prototypes.features(&texts, &[train[6]], TextSet::Training);
    assert_eq!(row.row(0)[column(&prototypes, "metric.has_prototype")], 0.0);
    // A validation text paired with metric 3 does see row 6's text as the prototype.
    let val = prototypes.features(&texts, &[sample(9, 3, false)], TextSet::Training);
    let want = cosine(texts.row(9), texts.row(6));
    assert!((val.row(0)[column(&prototypes, "metric.own_cosine")] as f64 - want).abs() < 1e-6);
}

#[test]
fn rank_and_margin_follow_the_cosines() {
    let (texts, metric_names, metric_rows) = toy();
    let (train, val) = toy_fold(&metric_rows);
    let config = FeaturesConfig { prototype_level: PrototypeLevel::Metric, ..both_all() };
    let prototypes = FoldPrototypes::fit(config, &texts, &train, &metric_names);
    let features = prototypes.features(&texts, &val, TextSet::Training);
    for (i, s) in val.iter().enumerate() {
        let row = features.row(i);
        let cos: Vec<f32> = (0..4).map(|g| row[7 + g]).collect();
        let own = cos[s.metric_row];
        let closer = cos.iter().enumerate().filter(|&(g, &c)| g != s.metric_row && c > own).count();
        assert_eq!(row[4], 1.0 + closer as f32);
        assert!((row[3] - (row[1] - row[2])).abs() < 1e-6);
        assert_eq!(row[1], own);
    }
}

#[test]
fn widths_and_names_per_setting() {
    let (texts, metric_names, metric_rows) = toy();
    let (train, _) = toy_fold(&metric_rows);
    let width = |level, cosines| {
        let config =
            FeaturesConfig { prototypes: true, prototype_cosines: cosines, prototype_level: level };
        let p = FoldPrototypes::fit(config, &texts, &train, &metric_names);
        assert_eq!(p.column_names().len(), p.width());
        assert_eq!(p.features(&texts, &train, TextSet::Training).cols, p.width());
        p.width()
    };
    assert_eq!(width(PrototypeLevel::Metric, CosineColumns::Own), 7);
    assert_eq!(width(PrototypeLevel::Family, CosineColumns::Own), 7);
    assert_eq!(width(PrototypeLevel::Both, CosineColumns::Own), 14);
    assert_eq!(width(PrototypeLevel::Metric, CosineColumns::All), 11);
    assert_eq!(width(PrototypeLevel::Both, CosineColumns::All), 7 + 4 + 7 + 3);
}

#[test]
fn families_come_from_the_name_before_the_slash() {
    assert_eq!(family_of("rejection_rate/over_rejection"), "rejection_rate");
    assert_eq!(family_of("truthfulness"), "truthfulness");
    let (index, names) = families(&names(&["b/x", "a", "b", "a/y/z", "c/w"]));
    assert_eq!(index, vec![0, 1, 0, 1, 2]);
    assert_eq!(names, vec!["b", "a", "c"]);
}

#[test]
fn standardizer_centres_and_scales_training_columns() {
    let mut m = Matrix::new(3, 2, vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0]);
    let s = Standardizer::fit(&m);
    s.apply(&mut m);
    let sd = (2.0f32 / 3.0).sqrt();
    assert_eq!(s.scale, vec![sd, 1.0], "a constant column keeps scale 1");
    assert!((m.row(0)[0] + 1.0 / sd).abs() < 1e-6 && m.row(1)[0].abs() < 1e-6);
    assert_eq!(m.row(2)[1], 0.0);
}
