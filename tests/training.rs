//! Folds, weights, synthetic negatives and training behaviour, on labels with the real
//! challenge's score histogram and on the sample data.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::common::{foldsweep, repo_root, sample};
use foldsweep::backend::{cpu_device, initialized, seeded, Cpu, CpuTrain};
use foldsweep::config::{Config, LossKind, ModelKind};
use foldsweep::cv::FoldAssignment;
use foldsweep::data::score_bin;
use foldsweep::job::{FoldResult, TrainingData};
use foldsweep::sampling::{bin_counts, bin_weights, Sample};
use foldsweep::train::{checkpoint, fit, predict};

/// How many of the challenge's 5000 training labels have each score 0..=10 (counted from its
/// y_train_original.npy; its one 9.5 is in 10, where `score_bin` puts it). The labels
/// themselves are not ours to commit; their histogram is a fact about them.
const REAL_TRAIN_SCORE_COUNTS: [usize; 11] = [13, 6, 5, 7, 3, 1, 45, 95, 259, 3123, 1443];

/// Score bins with the real histogram, in a fixed shuffled order (the real file is not sorted).
fn real_train_bins() -> Vec<usize> {
    let mut bins: Vec<usize> = REAL_TRAIN_SCORE_COUNTS
        .iter()
        .enumerate()
        .flat_map(|(score, &count)| std::iter::repeat_n(score, count))
        .collect();
    bins.shuffle(&mut StdRng::seed_from_u64(5401));
    bins
}

fn sample_config() -> Config {
    let mut config = Config::load(&repo_root().join("sweeps/sample.toml")).unwrap();
    for path in
        [&mut config.data.train, &mut config.data.metric_names, &mut config.data.metric_embeddings]
    {
        *path = repo_root().join(&*path);
    }
    config
}

#[test]
fn stratified_folds_on_the_real_labels_keep_every_score_within_one_of_its_share() {
    let bins = real_train_bins();
    assert_eq!(bins.len(), 5000);
    for k in [2, 3, 5, 7, 10] {
        let folds = FoldAssignment::stratified(&bins, k, 42);
        let mut validated = vec![0; bins.len()];
        for fold in 0..k {
            let (train, val) = folds.split(fold);
            assert_eq!(train.len() + val.len(), bins.len());
            val.iter().for_each(|&i| validated[i] += 1);
            for score in 0..11 {
                let total = bins.iter().filter(|&&b| b == score).count() as f64;
                let in_fold = val.iter().filter(|&&i| bins[i] == score).count() as f64;
                assert!(
                    (in_fold - total / k as f64).abs() < 1.0,
                    "k={k} fold={fold} score={score}: {in_fold} of {total}"
                );
            }
        }
        assert!(validated.iter().all(|&n| n == 1), "k={k}: every record validated exactly once");
    }
}

#[test]
fn fold_assignment_is_deterministic_and_its_hash_tells_seeds_apart() {
    let bins = real_train_bins();
    let a = FoldAssignment::stratified(&bins, 5, 42);
    let b = FoldAssignment::stratified(&bins, 5, 42);
    let c = FoldAssignment::stratified(&bins, 5, 43);
    assert_eq!(a, b);
    assert_eq!(a.hash(), b.hash());
    assert_ne!(a.fold_of, c.fold_of);
    assert_ne!(a.hash(), c.hash());
    assert_eq!(a.hash().len(), 16);
}

#[test]
fn synthetic_negatives_come_from_training_rows_with_another_metric_and_a_low_score() {
    let config = sample_config();
    let data = TrainingData::load(&config).unwrap();
    for fold in 0..config.cv.folds {
        let (train, val) = data.fold_samples(&config, fold);
        let val_records: HashSet<usize> = val.iter().map(|s| s.record).collect();
        let real: Vec<&Sample> = train.iter().filter(|s| !s.synthetic).collect();
        let negatives: Vec<&Sample> = train.iter().filter(|s| s.synthetic).collect();
        assert!(val.iter().all(|s| !s.synthetic), "never in validation");
        let expected = (config.train.synthetic.ratio * real.len() as f64).round() as usize;
        assert_eq!(negatives.len(), expected);
        for n in &negatives {
            assert!(
                !val_records.contains(&n.record),
                "fold {fold}: a negative reuses validation record {}",
                n.record
            );
            assert_eq!(n.text_row, n.record, "keeps its record's text");
            assert_ne!(
                n.metric_row, data.dataset.metric_rows[n.record],
                "paired with a different metric"
            );
            let (lo, hi) =
                (config.train.synthetic.score_min as f32, config.train.synthetic.score_max as f32);
            assert!(n.target >= lo && n.target <= hi && n.target.fract() == 0.0);
        }
        let distinct_sources: HashSet<usize> = negatives.iter().map(|n| n.record).collect();
        assert_eq!(distinct_sources.len(), negatives.len(), "sources drawn without replacement");
    }
}

#[test]
fn sample_weights_follow_the_bin_counts_of_the_training_rows_including_negatives() {
    let config = sample_config();
    let data = TrainingData::load(&config).unwrap();
    let (train, val) = data.fold_samples(&config, 1);
    let weights = bin_weights(&bin_counts(train.iter().map(|s| s.target)), &config.train.weighting);
    for s in &train {
        assert_eq!(s.weight, weights[score_bin(s.target)] as f32);
    }
    // Rare scores weigh more than the dominant 9s before the boost.
    assert!(weights[0] > weights[9] / 1.5);
    assert!(val.iter().all(|s| s.weight == 1.0));
}

#[test]
fn ordinal_model_trained_on_one_constant_score_predicts_that_score() {
    // The report's ordinal code (targets 1[k <= y] decoded as P(score <= k)) would predict ~0
    // here; the consistent pairing must recover the score.
    let mut config = sample_config();
    config.train.model = ModelKind::Ordinal;
    config.train.loss = LossKind::Ordinal;
    config.train.synthetic.ratio = 0.0;
    config.train.epochs = 30;
    config.train.lr = 1e-2;
    let data = TrainingData::load(&config).unwrap();
    let (train, val) = data.fold_samples(&config, 0);
    let constant = |samples: Vec<Sample>| -> Vec<Sample> {
        samples.into_iter().map(|s| Sample { target: 7.0, ..s }).collect()
    };
    let (train, val) = (constant(train), constant(val));
    let spec = foldsweep::model::ModelSpec::from_config(
        &config.train,
        data.dataset.metrics.dim(),
        data.texts.cols,
    );
    let outcome = fit::<CpuTrain>(
        &spec,
        &config.train,
        data.features(),
        &train,
        &val,
        &cpu_device(),
        &mut |_| {},
    )
    .expect("does not diverge");
    let mean: f32 = outcome.val_predictions.scores.iter().sum::<f32>() / val.len() as f32;
    assert!((mean - 7.0).abs() < 0.25, "mean prediction {mean}");
    assert!(outcome.val_metrics.rmse < 0.3, "rmse {}", outcome.val_metrics.rmse);
}

fn train_sample_fold(out: &std::path::Path) -> FoldResult {
    let output = foldsweep(
        &repo_root(),
        &["train", "sweeps/sample.toml", "--fold", "0", "--out", out.to_str().unwrap()],
    );
    let printed = output.expect_success().stdout();
    output.check(printed.contains("epoch    1/"), "a progress line per epoch");
    output.check(printed.contains("train-mean predictor"), "the mean predictor's RMSE");
    serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap()
}

#[test]
fn end_to_end_train_on_the_sample_data_beats_the_mean_predictor_and_reloads_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let result = train_sample_fold(dir.path());
    let m = &result.metrics;
    assert!(
        m.rmse < 0.85 * result.mean_predictor_rmse,
        "RMSE {} vs train-mean predictor {}",
        m.rmse,
        result.mean_predictor_rmse
    );
    assert_eq!(result.oof.len(), result.val_rows);
    assert_eq!(m.bins.iter().map(|b| b.count).sum::<usize>(), result.val_rows);
    assert_eq!(m.prediction_histogram.iter().sum::<usize>(), result.val_rows);
    assert!(result.best_epoch >= 1 && result.best_epoch <= result.epochs_run);
    assert_eq!(result.epochs.len(), result.epochs_run);

    // The checkpoint predicts exactly the recorded out-of-fold predictions.
    let config = sample_config();
    let data = TrainingData::load(&config).unwrap();
    let (_, val) = data.fold_samples(&config, 0);
    let (_, model) =
        checkpoint::load::<Cpu>(&dir.path().join("checkpoint"), &cpu_device()).unwrap();
    let reloaded = predict(&model, data.features(), &val, &cpu_device());
    assert_eq!(reloaded.scores.len(), result.oof.len(), "one prediction per validation row");
    assert!(!result.oof.is_empty(), "fold 0 has validation rows");
    for (oof, p) in result.oof.iter().zip(&reloaded.scores) {
        assert!((oof.prediction - p).abs() < 1e-5, "{} vs {p}", oof.prediction);
    }
}

#[test]
fn regression_cpu_training_is_reproducible_run_to_run() {
    // burn-ndarray's simd/rayon features made the same seed end at RMSE 0.89 one run and
    // 1.30 the next. On flex (gemm splits the output, never a sum, between threads) two runs
    // must agree exactly.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let strip = |mut r: FoldResult| {
        r.train_seconds = 0.0;
        r.checkpoint = None;
        r.epochs.iter_mut().for_each(|e| e.seconds = 0.0);
        r
    };
    assert_eq!(strip(train_sample_fold(a.path())), strip(train_sample_fold(b.path())));
}

#[test]
fn sample_data_has_the_real_schema() {
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sample("train_data.json")).unwrap()).unwrap();
    let first = records[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["metric_name", "response", "score", "system_prompt", "user_prompt"]);
    assert!(first["score"].is_string(), "scores are strings like \"9.0\" in the real file");
}

/// The CPU path that never builds the full bilinear weight's gradient (train::fused) against
/// burn's autodiff with the tensor-op Adam, which the parity tests hold to PyTorch. Clipping is
/// set low so that the gradient-norm shortcut decides the update, with weight decay on.
#[test]
fn fused_bilinear_weight_update_matches_autodiff() {
    use foldsweep::data::Matrix;
    use foldsweep::model::import::to_state_dict;
    use foldsweep::model::{LossSettings, ModelSpec};
    use foldsweep::train::optim::{Adam, AdamSettings};
    use foldsweep::train::{train_epoch, EpochSteps, Features};

    let values = |n: usize, seed: u32| -> Vec<f32> {
        (0..n).map(|i| (((i as u32 * 2654435761u32) ^ seed) % 1000) as f32 / 500.0 - 1.0).collect()
    };
    let metrics = Matrix::new(5, 6, values(30, 7));
    let texts = Matrix::new(20, 4, values(80, 11));
    let samples: Vec<Sample> = (0..20)
        .map(|i| Sample {
            metric_row: i % 5,
            text_row: i,
            target: (i % 11) as f32,
            weight: 0.5 + (i % 3) as f32,
            record: i,
            synthetic: false,
        })
        .collect();
    let spec = ModelSpec {
        kind: ModelKind::Heteroscedastic,
        d_metric: 6,
        d_text: 4,
        d_bilinear: 3,
        bilinear_rank: 0,
        hidden_dims: vec![7, 5],
        dropout: 0.0,
    };
    let loss = LossSettings::report(LossKind::Heteroscedastic);
    let features = Features { metrics: &metrics, texts: &texts };
    // (weights before, weights after) two epochs; both runs start from the same seeded draw.
    let train = |tensor_ops: bool| {
        let device = cpu_device();
        let model = seeded::<CpuTrain, _>(&device, 3, || initialized(spec.init(&device)));
        let before = to_state_dict(&spec, &burn::module::AutodiffModule::valid(&model));
        let mut adam = Adam::<CpuTrain>::new(AdamSettings::torch_default(1e-2, Some(0.05)))
            .with_tensor_ops(tensor_ops);
        assert_eq!(adam.on_host(), !tensor_ops);
        let steps = EpochSteps { loss: &loss, batch_size: 8, lr: 1e-2 };
        let (model, _) = train_epoch(model, &mut adam, steps, features, &samples, &device);
        let (model, _) = train_epoch(model, &mut adam, steps, features, &samples, &device);
        (before, to_state_dict(&spec, &burn::module::AutodiffModule::valid(&model)))
    };
    let ((fused_start, fused), (start, reference)) = (train(false), train(true));
    assert_eq!(fused_start, start, "both runs start from the same weights");
    assert_eq!(fused.len(), reference.len());
    for (name, expected) in &reference {
        let got = &fused[name];
        assert_eq!(got.shape, expected.shape, "{name}");
        for (i, (a, b)) in got.values.iter().zip(&expected.values).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "{name}[{i}]: fused {a} vs autodiff {b}"
            );
        }
        // Equal weights prove nothing if neither run changed them.
        let moved: f64 = expected
            .values
            .iter()
            .zip(&start[name].values)
            .map(|(after, before)| (after - before).abs())
            .sum();
        assert!(moved > 1e-3, "{name}: the update moved it by {moved:.3e} in all");
    }
}

#[test]
fn evaluation_with_one_bilinear_product_per_metric_matches_the_per_sample_forward() {
    use burn::tensor::{Tensor, TensorData};
    use foldsweep::data::Matrix;
    use foldsweep::model::ModelSpec;
    use foldsweep::train::Features;
    let device = cpu_device();
    let values = |n: usize, salt: usize| {
        (0..n)
            .map(|i| (((i * 7919 + salt) % 1009) as f32 / 1009.0 - 0.5) * 0.6)
            .collect::<Vec<f32>>()
    };
    let metrics = Matrix::new(5, 6, values(30, 1));
    let texts = Matrix::new(40, 4, values(160, 2));
    let features = Features { metrics: &metrics, texts: &texts };
    // 300 samples over 5 metrics, in no particular order: more than one evaluation batch (256).
    let samples: Vec<Sample> = (0..300)
        .map(|i| Sample {
            metric_row: (i * 3 + i / 7) % 5,
            text_row: (i * 11) % 40,
            target: 5.0,
            weight: 1.0,
            record: i,
            synthetic: false,
        })
        .collect();
    for kind in [ModelKind::Standard, ModelKind::Heteroscedastic] {
        let spec = ModelSpec {
            kind,
            d_metric: 6,
            d_text: 4,
            d_bilinear: 3,
            bilinear_rank: 0,
            hidden_dims: vec![7, 5],
            dropout: 0.0,
        };
        // Seeded like every draw in this binary: an unseeded one could land between another
        // test's seed and its draws.
        let model = seeded::<Cpu, _>(&device, 5, || initialized(spec.init(&device)));
        let grouped = predict(&model, features, &samples, &device);
        // The plain forward pass, one sample at a time through the whole model.
        let (mut scores, mut logvars) = (Vec::new(), Vec::new());
        for sample in &samples {
            let row = |m: &Matrix, r: usize| {
                Tensor::<Cpu, 2>::from_data(
                    TensorData::new(m.row(r).to_vec(), [1, m.cols]),
                    &device,
                )
            };
            let output =
                model.forward(row(&metrics, sample.metric_row), row(&texts, sample.text_row));
            scores.push(foldsweep::model::predict_score(kind, output.clone()).into_scalar());
            if kind == ModelKind::Heteroscedastic {
                logvars.push(output.slice([0..1, 1..2]).clamp(-10.0, 10.0).into_scalar());
            }
        }
        assert_eq!(grouped.scores.len(), samples.len(), "{kind:?}: one grouped score per sample");
        assert_eq!(scores.len(), samples.len());
        for (i, (a, b)) in grouped.scores.iter().zip(&scores).enumerate() {
            assert!((a - b).abs() < 1e-5, "{kind:?} sample {i}: grouped {a}, per-sample {b}");
        }
        if kind == ModelKind::Heteroscedastic {
            let grouped_logvars = grouped.logvars.expect("heteroscedastic log-variances");
            assert_eq!(grouped_logvars.len(), samples.len(), "one log-variance per sample");
            assert_eq!(logvars.len(), samples.len());
            assert!(
                grouped_logvars.iter().zip(&logvars).all(|(a, b)| (a - b).abs() < 1e-5),
                "log-variances differ"
            );
        }
    }
}
