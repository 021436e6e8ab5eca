//! Parameter importance from completed trials: PED-ANOVA (Watanabe, Bansal and Hutter,
//! IJCAI 2023) in its closed form, computed as Optuna 5.0's `PedAnovaImportanceEvaluator`
//! does with its defaults.
//!
//! An axis matters when the best trials sit somewhere else on it than the trials overall.
//! PED-ANOVA measures exactly that: the importance of axis d is
//!
//!   v_d = q² · Σ_x p_all(x) · (p_top(x) / p_all(x) - 1)²
//!
//! where p_top is the axis's density among the top 10% of trials (every trial at or below
//! the value at rank ceil(n / 10), ties included), p_all its density among all complete
//! trials (the paper's region quantile 1), and q = |top| / n. The densities live on a grid
//! of the axis: each numeric axis binned onto 50 points of its internal line (fewer for short
//! integer axes), with Optuna's Scott-rule Parzen estimator on the bins; each choice of a
//! categorical axis, with TPE's categorical estimator. The v_d are then normalised to sum
//! to 1 (equal shares when all are 0). No model is fitted, so it is cheap enough for every
//! report.

use super::parzen::Parzen;
use super::space::{Domain, Space};
use super::Trial;

/// The top quantile that defines "good" trials (Optuna's default).
const TOP_QUANTILE: f64 = 0.1;
/// Grid points of a numeric axis (Optuna's `n_steps`).
const GRID_STEPS: usize = 50;
/// Keeps the ratio finite where a density vanishes (as Optuna does).
const EPS: f64 = 1e-12;

/// `(key, importance)` per axis, in axis order, summing to 1. Uses complete trials only
/// (pruned and failed ones are left out); `None` with fewer than 2 of them.
pub fn ped_anova(space: &Space, trials: &[Trial]) -> Option<Vec<(String, f64)>> {
    let complete: Vec<&Trial> =
        trials.iter().filter(|t| !t.pruned && t.value.is_some_and(f64::is_finite)).collect();
    if complete.len() < 2 {
        return None;
    }
    let mut values: Vec<f64> = complete.iter().map(|t| t.value.unwrap()).collect();
    values.sort_by(f64::total_cmp);
    let cutoff = values[(TOP_QUANTILE * values.len() as f64).ceil() as usize - 1];
    let is_top: Vec<bool> = complete.iter().map(|t| t.value.unwrap() <= cutoff).collect();
    let n_top = is_top.iter().filter(|&&top| top).count();
    let quantile = n_top as f64 / complete.len() as f64;
    let raw: Vec<f64> = (0..space.axes.len())
        .map(|axis| {
            let (all, top) = coordinates(space, axis, &complete, &is_top);
            if top.is_empty() || all.len() < 2 {
                return 0.0;
            }
            // The share of trials that have this axis (all of them unless the space changed).
            let (alpha, beta) =
                (top.len() as f64 / n_top as f64, all.len() as f64 / complete.len() as f64);
            let domain = &space.axes[axis].domain;
            quantile.powi(2) * alpha.powi(2) / beta * divergence(domain, &all, &top)
        })
        .collect();
    let total: f64 = raw.iter().sum();
    let share = |v: f64| if total > 0.0 { v / total } else { 1.0 / raw.len() as f64 };
    Some(space.axes.iter().map(|a| a.key.clone()).zip(raw.iter().map(|&v| share(v))).collect())
}

/// The internal coordinates of axis `axis` over all trials and over the top ones.
fn coordinates(
    space: &Space,
    axis: usize,
    trials: &[&Trial],
    is_top: &[bool],
) -> (Vec<f64>, Vec<f64>) {
    let (mut all, mut top) = (Vec::new(), Vec::new());
    for (trial, &in_top) in trials.iter().zip(is_top) {
        if let Some(x) = space.coordinate(axis, &trial.point) {
            all.push(x);
            if in_top {
                top.push(x);
            }
        }
    }
    (all, top)
}

/// The Pearson divergence of the top trials' density from all trials' on the axis's grid.
fn divergence(domain: &Domain, all: &[f64], top: &[f64]) -> f64 {
    let (p_all, p_top) = (grid_density(domain, all), grid_density(domain, top));
    p_all
        .iter()
        .zip(&p_top)
        .map(|(a, t)| {
            let (a, t) = (a + EPS, t + EPS);
            a * (t / a - 1.0).powi(2)
        })
        .sum()
}

/// The probability of each grid point (each choice of a categorical axis).
fn grid_density(domain: &Domain, coordinates: &[f64]) -> Vec<f64> {
    let counts = grid_counts(domain, coordinates);
    let parzen = match domain {
        Domain::Categorical(_) => {
            let occupied: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
            let observations: Vec<f64> = occupied.iter().map(|&i| i as f64).collect();
            let weights: Vec<f64> = occupied.iter().map(|&i| counts[i] as f64).collect();
            Parzen::fit(domain, &observations, &weights)
        }
        _ => Parzen::scott_on_grid(&counts),
    };
    (0..counts.len()).map(|i| parzen.log_pdf(i as f64).exp()).collect()
}

/// How many coordinates fall on each grid point: choices for a categorical axis; for a
/// numeric one the nearest of `steps` evenly spaced points of the internal line (ties to the
/// lower one), with `steps` 50, or one per value of a short linear integer axis, or about
/// log2(range) for a log integer axis.
fn grid_counts(domain: &Domain, coordinates: &[f64]) -> Vec<usize> {
    let steps = match domain {
        Domain::Categorical(choices) => {
            let mut counts = vec![0; choices.len()];
            coordinates.iter().for_each(|&c| counts[c as usize] += 1);
            return counts;
        }
        Domain::Float { .. } => GRID_STEPS,
        Domain::Int { min, max, log: false } => ((max - min + 1) as usize).min(GRID_STEPS),
        Domain::Int { min, max, log: true } => {
            let log2_size = ((max - min + 1) as f64).log2().ceil() as usize + 1;
            log2_size.min(GRID_STEPS)
        }
    };
    let (low, high) = domain.internal_range().expect("numeric axis");
    let step = (high - low) / (steps - 1) as f64;
    let mut counts = vec![0; steps];
    for &c in coordinates {
        let index = ((c - low) / step - 0.5).ceil().clamp(0.0, (steps - 1) as f64);
        counts[index as usize] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::space::Axis;
    use crate::search::{RandomSampler, Sampler};
    use toml::Value;

    fn space() -> Space {
        let axis = |key: &str, domain| Axis { key: key.into(), domain };
        Space::new(vec![
            axis("a", Domain::Float { min: 0.0, max: 1.0, log: false }),
            axis("b", Domain::Float { min: 1e-3, max: 1.0, log: true }),
            axis("c", Domain::Categorical(vec![1.into(), 2.into(), 3.into()])),
        ])
        .unwrap()
    }

    fn trials(objective: impl Fn(&[f64]) -> f64) -> Vec<Trial> {
        let space = space();
        let sampler = RandomSampler { seed: 21 };
        (0..200)
            .map(|n| {
                let point = sampler.propose(&space, &[], &[], n, &|_| true).unwrap();
                let x: Vec<f64> = (0..3).map(|i| space.coordinate(i, &point).unwrap()).collect();
                Trial { value: Some(objective(&x)), point, pruned: false }
            })
            .collect()
    }

    #[test]
    fn the_axis_the_objective_depends_on_dominates() {
        let importance = ped_anova(&space(), &trials(|x| (x[0] - 0.3).powi(2))).unwrap();
        let (a, b, c) = (importance[0].1, importance[1].1, importance[2].1);
        assert!(a > 5.0 * b && a > 5.0 * c, "{importance:?}");
        assert!(((a + b + c) - 1.0).abs() < 1e-9);
        // The categorical axis can matter too. (Ties keep the sampling order, so the top
        // trials are random on a and b.)
        let importance = ped_anova(&space(), &trials(|x| f64::from(x[2] != 0.0))).unwrap();
        let (a, b, c) = (importance[0].1, importance[1].1, importance[2].1);
        assert!(c > 5.0 * a && c > 5.0 * b, "{importance:?}");
    }

    #[test]
    fn too_few_trials_give_none_and_pruned_trials_are_left_out() {
        let mut few = trials(|x| x[0]);
        few.truncate(1);
        assert_eq!(ped_anova(&space(), &few), None);
        few.extend(
            trials(|x| x[0]).into_iter().skip(1).take(5).map(|t| Trial { pruned: true, ..t }),
        );
        assert_eq!(ped_anova(&space(), &few), None);
    }

    /// Importances from Optuna's `get_param_importances(study,
    /// evaluator=PedAnovaImportanceEvaluator())` on the fixture's 60 trials (added with
    /// `create_trial`), for two objectives (tests/fixtures/optuna/importance.json).
    #[test]
    fn importances_match_optuna() {
        use crate::search::parzen::tests::{fixture_domain, optuna_fixture};
        let fixture = optuna_fixture("importance.json");
        let axes: Vec<(String, &serde_json::Value)> = fixture["axes"]
            .as_array()
            .expect("axes")
            .iter()
            .map(|a| (a["key"].as_str().unwrap().to_string(), &a["domain"]))
            .collect();
        let space = Space::new(
            axes.iter()
                .map(|(key, domain)| Axis { key: key.clone(), domain: fixture_domain(domain) })
                .collect(),
        )
        .unwrap();
        let points = fixture["points"].as_array().expect("points");
        let cases = fixture["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 2, "both objectives of make_optuna.py");
        for case in cases {
            let values = case["values"].as_array().expect("values");
            assert_eq!(values.len(), points.len(), "one objective value per trial");
            let trials: Vec<Trial> = points
                .iter()
                .zip(values)
                .map(|(point, value)| {
                    let point = point.as_array().expect("a point");
                    assert_eq!(point.len(), axes.len(), "one value per axis");
                    let point = axes
                        .iter()
                        .zip(point)
                        .map(|((key, domain), v)| {
                            let v = if domain["kind"] == "float" {
                                Value::Float(v.as_f64().unwrap())
                            } else {
                                Value::Integer(v.as_i64().unwrap())
                            };
                            (key.clone(), v)
                        })
                        .collect();
                    Trial { point, value: value.as_f64(), pruned: false }
                })
                .collect();
            let ours = ped_anova(&space, &trials).expect("importances");
            let optuna: Vec<f64> = case["importances"]
                .as_array()
                .expect("importances")
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(ours.len(), optuna.len(), "{}: one importance per axis", case["objective"]);
            for (((key, o), (axis, _)), p) in ours.iter().zip(&axes).zip(&optuna) {
                assert_eq!(key, axis, "axis order");
                assert!(
                    (o - p).abs() < 1e-9,
                    "{}: ours {ours:?}, Optuna's {optuna:?}",
                    case["objective"]
                );
            }
        }
    }
}
