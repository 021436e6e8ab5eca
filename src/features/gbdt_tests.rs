//! The boosted trees learn, weigh, stop early and repeat themselves.

use super::gbdt::{fit, EvalSet, GbdtConfig};
use crate::data::Matrix;

/// y = 3 * [x0 > 0] + x1^2 on a deterministic grid of two columns.
fn problem(n: usize, offset: usize) -> (Matrix, Vec<f32>) {
    let mut data = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let a = (((i + offset) * 37) % 101) as f32 / 50.0 - 1.0;
        let b = (((i + offset) * 61) % 97) as f32 / 48.0 - 1.0;
        data.extend([a, b]);
        y.push(if a > 0.0 { 3.0 } else { 0.0 } + b * b);
    }
    (Matrix::new(n, 2, data), y)
}

fn rmse(a: &[f32], b: &[f32]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

fn quick() -> GbdtConfig {
    GbdtConfig {
        trees: 200,
        learning_rate: 0.1,
        max_depth: 3,
        subsample: 1.0,
        ..GbdtConfig::default()
    }
}

#[test]
fn learns_a_step_and_a_square() {
    let (x, y) = problem(400, 0);
    let (vx, vy) = problem(200, 1000);
    let model = fit(&quick(), 1, &x, &y, &vec![1.0; 400], None).unwrap();
    let mean = y.iter().sum::<f32>() / y.len() as f32;
    let baseline = rmse(&vec![mean; vy.len()], &vy);
    let got = rmse(&model.predict(&vx), &vy);
    assert!(got < 0.2 * baseline, "rmse {got} vs mean predictor {baseline}");
    assert_eq!(model.rounds_run, 200);
    assert_eq!(model.best_rounds, 200, "without an evaluation set every round is used");
}

#[test]
fn sample_weights_pull_the_fit() {
    // One input column that says nothing: the prediction is the weighted mean of the targets.
    let x = Matrix::new(4, 1, vec![0.0; 4]);
    let y = [0.0, 0.0, 10.0, 10.0];
    let config = GbdtConfig { trees: 50, learning_rate: 0.5, ..quick() };
    let model = fit(&config, 1, &x, &y, &[1.0, 1.0, 3.0, 3.0], None).unwrap();
    let p = model.predict(&x)[0];
    assert!((p - 7.5).abs() < 0.05, "weighted mean 7.5, got {p}");
}

#[test]
fn early_stopping_keeps_the_best_round() {
    let (x, y) = problem(300, 0);
    // A validation set with the opposite relation: more rounds only hurt it.
    let (vx, vy) = problem(100, 500);
    let flipped: Vec<f32> = vy.iter().map(|v| 4.0 - v).collect();
    let config = GbdtConfig { trees: 500, early_stopping_rounds: 10, ..quick() };
    let eval = EvalSet { features: &vx, targets: &flipped, weights: &vec![1.0; 100] };
    let model = fit(&config, 1, &x, &y, &vec![1.0; 300], Some(eval)).unwrap();
    assert!(model.rounds_run < 500, "stopped at {}", model.rounds_run);
    assert_eq!(model.history.len(), model.rounds_run);
    assert_eq!(model.rounds_run, model.best_rounds + 10);
    let best = model.history.iter().copied().fold(f64::MAX, f64::min);
    assert_eq!(model.history[model.best_rounds - 1], best);
    assert!(
        (rmse(&model.predict(&vx), &flipped) - best).abs() < 1e-4,
        "predicts at the best round"
    );
}

#[test]
fn the_same_seed_gives_the_same_trees() {
    let (x, y) = problem(200, 0);
    let config = GbdtConfig { subsample: 0.5, ..quick() };
    let w = vec![1.0; 200];
    let a = fit(&config, 7, &x, &y, &w, None).unwrap().predict(&x);
    let b = fit(&config, 7, &x, &y, &w, None).unwrap().predict(&x);
    let c = fit(&config, 8, &x, &y, &w, None).unwrap().predict(&x);
    assert_eq!(a, b);
    assert_ne!(a, c, "subsampling depends on the seed");
}

#[test]
fn bad_settings_name_their_field() {
    for (config, field) in [
        (GbdtConfig { trees: 0, ..quick() }, "train.gbdt.trees"),
        (GbdtConfig { learning_rate: 0.0, ..quick() }, "train.gbdt.learning_rate"),
        (GbdtConfig { subsample: 1.5, ..quick() }, "train.gbdt.subsample"),
        (GbdtConfig { max_depth: 0, ..quick() }, "train.gbdt.max_depth"),
    ] {
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn the_learning_curve_ends_at_the_full_model_and_rounds_can_be_chosen() {
    let (x, y) = problem(200, 0);
    let config = GbdtConfig { trees: 30, ..quick() };
    let mut model = fit(&config, 1, &x, &y, &vec![1.0; 200], None).unwrap();
    let mut curve = Vec::new();
    let mut last = Vec::new();
    model.for_each_round(&x, |round, p| {
        curve.push((round, rmse(&p.iter().map(|&v| v as f32).collect::<Vec<_>>(), &y)));
        last = p.to_vec();
    });
    assert_eq!(curve.len(), 30);
    assert!(curve[29].1 < curve[0].1, "training error falls: {curve:?}");
    let full = model.predict(&x);
    assert!(full.iter().zip(&last).all(|(a, b)| (*a as f64 - b).abs() < 1e-4));
    let mut at_ten = Vec::new();
    model.for_each_round(&x, |round, p| {
        if round == 10 {
            at_ten = p.to_vec()
        }
    });
    model.use_rounds(10);
    assert_eq!(model.best_rounds, 10);
    assert!(model.predict(&x).iter().zip(&at_ten).all(|(a, b)| (*a as f64 - b).abs() < 1e-4));
}
