//! Parameter importance from completed trials: PED-ANOVA (Watanabe, Bansal and Hutter,
//! IJCAI 2023) in its closed form.
//!
//! An axis matters when the best trials sit somewhere else on it than the trials overall.
//! PED-ANOVA measures exactly that: the importance of axis d is the Pearson divergence
//! between the axis's density among the top `gamma` quantile of trials (p_top) and among all
//! trials (p_all, the paper's gamma' = 1):
//!
//!   v_d = Σ_x p_all(x) · (p_top(x) / p_all(x) - 1)²
//!
//! on a grid of the axis (50 points on the internal line of a numeric axis, every value of a
//! short integer axis, every choice of a categorical one), then normalised to sum to 1. It
//! needs no model fit, so it is cheap enough to recompute for every report. Numeric densities
//! are Gaussian kernel estimates with Scott's bandwidth (as Optuna's
//! `PedAnovaImportanceEvaluator` uses), categorical ones smoothed counts.

use super::space::{Domain, Space};
use super::Trial;

/// The top quantile that defines "good" trials (Optuna's default).
const TOP_QUANTILE: f64 = 0.1;
/// At least this many trials in the top set, so one lucky trial does not decide.
const MIN_TOP: usize = 2;
const GRID_POINTS: usize = 50;

/// `(key, importance)` per axis, in axis order, summing to 1 (all 0 when no axis matters).
/// Uses complete trials only (pruned and failed ones are left out); `None` with fewer than
/// `MIN_TOP + 1` of them.
pub fn ped_anova(space: &Space, trials: &[Trial]) -> Option<Vec<(String, f64)>> {
    let mut complete: Vec<&Trial> =
        trials.iter().filter(|t| !t.pruned && t.value.is_some_and(f64::is_finite)).collect();
    if complete.len() <= MIN_TOP {
        return None;
    }
    complete.sort_by(|a, b| a.value.unwrap().total_cmp(&b.value.unwrap()));
    let n_top = ((TOP_QUANTILE * complete.len() as f64).ceil() as usize).max(MIN_TOP);
    let raw: Vec<f64> =
        (0..space.axes.len()).map(|axis| divergence(space, axis, &complete, n_top)).collect();
    let total: f64 = raw.iter().sum();
    let scores = raw.iter().map(|v| if total > 0.0 { v / total } else { 0.0 });
    Some(space.axes.iter().map(|a| a.key.clone()).zip(scores).collect())
}

/// The Pearson divergence of axis `axis` between the top `n_top` trials and all `ranked`.
fn divergence(space: &Space, axis: usize, ranked: &[&Trial], n_top: usize) -> f64 {
    let domain = &space.axes[axis].domain;
    let coordinates: Vec<f64> =
        ranked.iter().filter_map(|t| space.coordinate(axis, &t.point)).collect();
    let top: Vec<f64> =
        ranked[..n_top].iter().filter_map(|t| space.coordinate(axis, &t.point)).collect();
    if top.is_empty() {
        return 0.0;
    }
    let grid = grid(domain);
    let p_all = density_on(domain, &coordinates, &grid);
    let p_top = density_on(domain, &top, &grid);
    p_all.iter().zip(&p_top).map(|(a, t)| a * (t / a - 1.0).powi(2)).sum()
}

/// Evaluation points on the internal line of the axis.
fn grid(domain: &Domain) -> Vec<f64> {
    match domain {
        Domain::Categorical(choices) => (0..choices.len()).map(|i| i as f64).collect(),
        Domain::Int { min, max, log } if (max - min) < GRID_POINTS as i64 => {
            (*min..=*max).map(|i| if *log { (i as f64).ln() } else { i as f64 }).collect()
        }
        _ => {
            let (low, high) = domain.internal_range().expect("numeric axis");
            let step = (high - low) / (GRID_POINTS - 1) as f64;
            (0..GRID_POINTS).map(|i| low + step * i as f64).collect()
        }
    }
}

/// The density of `observations` on `grid`, normalised to sum to 1 over it: for a
/// categorical axis the counts plus one prior observation spread over the choices; for a
/// numeric axis a Gaussian kernel density with Scott's bandwidth, at least one grid step, so
/// a handful of top trials gives a smooth density rather than spikes that read as importance.
fn density_on(domain: &Domain, observations: &[f64], grid: &[f64]) -> Vec<f64> {
    let n = observations.len() as f64;
    let mut density: Vec<f64> = match domain {
        Domain::Categorical(choices) => {
            let prior = 1.0 / choices.len() as f64;
            grid.iter()
                .map(|&c| observations.iter().filter(|&&x| x == c).count() as f64 + prior)
                .collect()
        }
        _ => {
            let grid_step = (grid[grid.len() - 1] - grid[0]) / (grid.len() - 1) as f64;
            let h = scott_bandwidth(observations).max(grid_step);
            grid.iter()
                .map(|&g| {
                    observations.iter().map(|&x| (-0.5 * ((g - x) / h).powi(2)).exp()).sum::<f64>()
                })
                .collect()
        }
    };
    let total: f64 = density.iter().sum();
    if total > 0.0 && n > 0.0 {
        density.iter_mut().for_each(|p| *p /= total);
    }
    density
}

/// Scott's rule, robust form: 1.059 · min(sd, IQR / 1.34) · n^(-1/5); 0 for identical values.
fn scott_bandwidth(observations: &[f64]) -> f64 {
    let n = observations.len() as f64;
    let mean = observations.iter().sum::<f64>() / n;
    let sd = (observations.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let mut sorted = observations.to_vec();
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| sorted[((n - 1.0) * q).round() as usize];
    let iqr = quantile(0.75) - quantile(0.25);
    let spread = if iqr > 0.0 { sd.min(iqr / 1.34) } else { sd };
    1.059 * spread * n.powf(-0.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::space::Axis;
    use crate::search::{RandomSampler, Sampler};

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
        // The categorical axis can matter too.
        let importance =
            ped_anova(&space(), &trials(|x| if x[2] == 0.0 { 0.0 } else { 1.0 } + 0.01 * x[0]))
                .unwrap();
        assert!(importance[2].1 > 5.0 * importance[1].1, "{importance:?}");
    }

    #[test]
    fn too_few_trials_give_none_and_pruned_trials_are_left_out() {
        let mut few = trials(|x| x[0]);
        few.truncate(2);
        assert_eq!(ped_anova(&space(), &few), None);
        few.extend(
            trials(|x| x[0]).into_iter().skip(2).take(5).map(|t| Trial { pruned: true, ..t }),
        );
        assert_eq!(ped_anova(&space(), &few), None);
    }
}
