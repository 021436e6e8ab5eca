//! Tree-structured Parzen Estimator search, as Optuna 5.0's `TPESampler` does it with its
//! defaults (independent, one axis at a time):
//! 1. until `n_startup_trials` trials have finished (complete or pruned), sample uniformly;
//! 2. rank the finished trials and take the best `gamma(n) = min(ceil(n / 10), 25)` as good,
//!    the rest as bad;
//! 3. per axis, fit a Parzen estimator l(x) to the good trials and g(x) to the bad ones (see
//!    `parzen`), draw `n_ei_candidates` values from l and keep the one with the largest
//!    log l(x) - log g(x) (the candidate that maximises expected improvement).
//!
//! Ranking: complete trials by value, then pruned trials by their last reported value
//! (those without one last): a pruned trial is only "good" when there are too few complete
//! trials to fill the good set, as in Optuna. Failed trials (no value) are ignored. A
//! complete trial with a NaN or infinite value (a diverged run) ranks after every pruned
//! one: unlike Optuna, which fails such a trial, it stays in the bad set and steers the
//! search away from, say, a learning rate that diverges.
//!
//! Constant liar: running trials join the bad set (as if they had the worst value), so
//! parallel slots that propose while others run are pushed away from the running points
//! instead of all proposing the same one. They do not count towards `n` or the start-up.

use super::parzen::{default_weights, Parzen};
use super::random::sample_uniform;
use super::space::{Point, Space};
use super::{first_valid, trial_rng, Sampler, SearchError, Trial};
use rand::rngs::StdRng;

/// TPE with Optuna's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpeSampler {
    pub seed: u64,
    /// Uniform trials before the model is used (Optuna's default: 10).
    pub n_startup_trials: usize,
    /// Candidates drawn from l(x) per axis and proposal (Optuna's default: 24).
    pub n_ei_candidates: usize,
}

impl TpeSampler {
    /// Optuna's defaults: 10 start-up trials, 24 candidates.
    pub fn new(seed: u64) -> TpeSampler {
        TpeSampler { seed, n_startup_trials: 10, n_ei_candidates: 24 }
    }
}

/// The size of the good set among `n` finished trials.
pub fn gamma(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

impl Sampler for TpeSampler {
    fn propose(
        &self,
        space: &Space,
        history: &[Trial],
        running: &[Point],
        trial_number: u64,
        valid: &dyn Fn(&Point) -> bool,
    ) -> Result<Point, SearchError> {
        let mut rng = trial_rng(self.seed, trial_number);
        let finished = history.iter().filter(|t| t.value.is_some() || t.pruned).count();
        if finished < self.n_startup_trials.max(1) {
            return first_valid(space, &mut rng, valid, |rng| sample_uniform(space, rng));
        }
        let (good, bad) = split(history, running, gamma(finished));
        let models: Vec<(Parzen, Parzen)> = (0..space.axes.len())
            .map(|axis| (fit(space, axis, &good), fit(space, axis, &bad)))
            .collect();
        first_valid(space, &mut rng, valid, |rng| {
            let coordinates: Vec<f64> = models
                .iter()
                .map(|(l, g)| best_candidate(l, g, self.n_ei_candidates.max(1), rng))
                .collect();
            space.point_from_internal(&coordinates)
        })
    }
}

/// Good and bad points, each in trial order (history, then running), which the observation
/// weights rely on (older trials fade once there are more than 25).
fn split<'a>(
    history: &'a [Trial],
    running: &'a [Point],
    n_good: usize,
) -> (Vec<&'a Point>, Vec<&'a Point>) {
    // Sort key: complete, then pruned, then diverged (a complete trial with a NaN or
    // infinite value); by value within each; missing and NaN values rank last.
    let key = |t: &Trial| {
        let value = t.value.filter(|v| !v.is_nan()).unwrap_or(f64::INFINITY);
        let class = match (t.pruned, value.is_finite()) {
            (false, true) => 0,
            (true, _) => 1,
            (false, false) => 2,
        };
        (class, value)
    };
    let mut ranked: Vec<usize> =
        (0..history.len()).filter(|&i| history[i].value.is_some() || history[i].pruned).collect();
    ranked.sort_by(|&a, &b| {
        let (ka, kb) = (key(&history[a]), key(&history[b]));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(a.cmp(&b))
    });
    let mut is_good = vec![false; history.len()];
    ranked.iter().take(n_good).for_each(|&i| is_good[i] = true);
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for &i in &ranked_in_order(&ranked) {
        if is_good[i] {
            good.push(&history[i].point);
        } else {
            bad.push(&history[i].point);
        }
    }
    bad.extend(running);
    (good, bad)
}

fn ranked_in_order(ranked: &[usize]) -> Vec<usize> {
    let mut order = ranked.to_vec();
    order.sort_unstable();
    order
}

/// The Parzen estimator of axis `axis` over the points that have a value on it.
fn fit(space: &Space, axis: usize, points: &[&Point]) -> Parzen {
    let observations: Vec<f64> = points.iter().filter_map(|p| space.coordinate(axis, p)).collect();
    Parzen::fit(&space.axes[axis].domain, &observations, &default_weights(observations.len()))
}

/// The candidate drawn from `good` with the largest log good(x) - log bad(x).
fn best_candidate(good: &Parzen, bad: &Parzen, candidates: usize, rng: &mut StdRng) -> f64 {
    let mut best = (f64::NEG_INFINITY, f64::NAN);
    for _ in 0..candidates {
        let x = good.sample(rng);
        let score = good.log_pdf(x) - bad.log_pdf(x);
        if score > best.0 || best.1.is_nan() {
            best = (score, x);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::random::tests::mixed_space;
    use crate::search::space::{Axis, Domain};
    use crate::search::RandomSampler;
    use toml::Value;

    fn line() -> Space {
        let domain = Domain::Float { min: -10.0, max: 10.0, log: false };
        Space::new(vec![Axis { key: "x".into(), domain }]).unwrap()
    }

    fn x_of(point: &Point) -> f64 {
        point[0].1.as_float().unwrap()
    }

    /// Runs `trials` sequential trials on (x - 3)^2 and returns the proposed x values.
    fn run(sampler: &dyn Sampler, trials: u64) -> Vec<f64> {
        let space = line();
        let mut history = Vec::new();
        for n in 0..trials {
            let point = sampler.propose(&space, &history, &[], n, &|_| true).unwrap();
            let x = x_of(&point);
            history.push(Trial { point, value: Some((x - 3.0).powi(2)), pruned: false });
        }
        history.iter().map(|t| x_of(&t.point)).collect()
    }

    fn median(mut values: Vec<f64>) -> f64 {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    #[test]
    fn gamma_is_a_tenth_rounded_up_capped_at_25() {
        assert_eq!([gamma(1), gamma(10), gamma(11), gamma(300)], [1, 1, 2, 25]);
    }

    #[test]
    fn tpe_concentrates_near_the_optimum_of_a_quadratic_and_random_does_not() {
        let (mut tpe, mut random) = (Vec::new(), Vec::new());
        for seed in 0..20 {
            let last_ten =
                |xs: Vec<f64>| xs[20..].iter().map(|x| (x - 3.0).abs()).collect::<Vec<_>>();
            tpe.extend(last_ten(run(&TpeSampler::new(seed), 30)));
            random.extend(last_ten(run(&RandomSampler { seed }, 30)));
        }
        let (tpe, random) = (median(tpe), median(random));
        // Here 1.98 and 5.15; Optuna 5.0's TPESampler and RandomSampler on the same problem
        // (seeds 0-19, last 10 of 30 trials): 2.15 and 5.26.
        assert!(tpe < 0.5 * random, "median distance: tpe {tpe}, random {random}");
    }

    #[test]
    fn same_inputs_same_point_and_history_matters() {
        let space = mixed_space();
        let sampler = TpeSampler::new(11);
        let random = RandomSampler { seed: 5 };
        let history: Vec<Trial> = (0..15)
            .map(|n| {
                let point = random.propose(&space, &[], &[], n, &|_| true).unwrap();
                Trial { point, value: Some(n as f64), pruned: n % 4 == 3 }
            })
            .collect();
        let propose = |h: &[Trial]| sampler.propose(&space, h, &[], 15, &|_| true).unwrap();
        assert_eq!(propose(&history), propose(&history));
        let mut reversed = history.clone();
        for (n, trial) in reversed.iter_mut().enumerate() {
            trial.value = Some(-(n as f64));
        }
        assert_ne!(propose(&history), propose(&reversed));
    }

    #[test]
    fn proposals_respect_bounds_integers_and_validity() {
        let space = mixed_space();
        let sampler = TpeSampler::new(2);
        let only_mlp = |p: &Point| p[4].1.as_str() == Some("mlp");
        let mut history = Vec::new();
        for n in 0..40 {
            let point = sampler.propose(&space, &history, &[], n, &only_mlp).unwrap();
            assert!(only_mlp(&point), "trial {n}: {point:?}");
            for (axis, (_, value)) in space.axes.iter().zip(&point) {
                assert!(axis.domain.to_internal(value).is_some(), "{} = {value}", axis.key);
            }
            assert!(
                matches!(point[2].1, Value::Integer(_)) && matches!(point[3].1, Value::Integer(_))
            );
            let value = point[0].1.as_float().unwrap().ln() + point[1].1.as_float().unwrap();
            history.push(Trial { point, value: Some(value), pruned: false });
        }
    }

    #[test]
    fn constant_liar_moves_the_proposal_away_from_a_running_trial() {
        let space = line();
        let sampler = TpeSampler::new(4);
        let history: Vec<Trial> = (0..20)
            .map(|n| {
                let x = -10.0 + n as f64;
                let point = vec![("x".to_string(), Value::Float(x))];
                Trial { point, value: Some((x - 3.0).powi(2)), pruned: false }
            })
            .collect();
        let alone = sampler.propose(&space, &history, &[], 20, &|_| true).unwrap();
        let running = vec![alone.clone(); 3];
        let beside = sampler.propose(&space, &history, &running, 20, &|_| true).unwrap();
        assert_ne!(alone, beside);
        // The lie lowers l/g at the running point, so the proposal moves away from it
        // (here from 2.86 to 0.45), rather than to a nearby candidate.
        let (a, b) = (x_of(&alone), x_of(&beside));
        assert!((b - a).abs() > 0.5, "alone {a}, beside running {b}");
    }

    #[test]
    fn split_ranks_complete_before_pruned_and_puts_running_and_failed_aside() {
        let trial = |x: f64, value: Option<f64>, pruned: bool| Trial {
            point: vec![("x".to_string(), Value::Float(x))],
            value,
            pruned,
        };
        let history = vec![
            trial(0.0, Some(5.0), false),
            trial(1.0, Some(0.1), true), // pruned: ranks after every complete trial
            trial(2.0, Some(3.0), false),
            trial(3.0, None, false),           // failed: in neither set
            trial(4.0, Some(f64::NAN), false), // diverged: after every pruned trial
            trial(5.0, None, true),            // pruned without a value: last of all
            trial(6.0, Some(0.5), true),
        ];
        let running = vec![vec![("x".to_string(), Value::Float(7.0))]];
        let xs = |points: Vec<&Point>| points.iter().map(|p| x_of(p)).collect::<Vec<f64>>();
        let (good, bad) = split(&history, &running, 2);
        assert_eq!((xs(good), xs(bad)), (vec![0.0, 2.0], vec![1.0, 4.0, 5.0, 6.0, 7.0]));
        let (good, bad) = split(&history, &running, 4);
        assert_eq!((xs(good), xs(bad)), (vec![0.0, 1.0, 2.0, 6.0], vec![4.0, 5.0, 7.0]));
        let (good, bad) = split(&history, &running, 5);
        assert_eq!((xs(good), xs(bad)), (vec![0.0, 1.0, 2.0, 5.0, 6.0], vec![4.0, 7.0]));
    }

    #[test]
    fn failed_trials_do_not_count_towards_the_start_up() {
        let space = line();
        let sampler = TpeSampler::new(9);
        let failed: Vec<Trial> = (0..12)
            .map(|n| Trial {
                point: vec![("x".into(), Value::Float(n as f64 - 5.0))],
                value: None,
                pruned: false,
            })
            .collect();
        // With only failed trials the proposal is the start-up (uniform) one for that trial.
        let uniform = sampler.propose(&space, &[], &[], 12, &|_| true).unwrap();
        assert_eq!(sampler.propose(&space, &failed, &[], 12, &|_| true).unwrap(), uniform);
    }
}
