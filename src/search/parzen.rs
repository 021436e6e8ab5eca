//! One-axis Parzen estimators, built the way Optuna 5.0's TPESampler builds them (its
//! `_ParzenEstimator` with the defaults `prior_weight = 1`, `consider_magic_clip`, no
//! `consider_endpoints`), re-derived here rather than copied:
//! - numeric axes: a mixture of Gaussians truncated to the axis's kernel line (logs for log
//!   axes; integers as the probability mass of their cell `[x - 1/2, x + 1/2]`, on the log
//!   line for log integers), one kernel per observation plus a prior kernel at the centre as
//!   wide as the line. A kernel's bandwidth is the larger gap to its neighbouring observations
//!   (the line's ends count as neighbours, except for the outermost kernels), clipped to
//!   [width / min(100, n + 2), width];
//! - categorical axes: per observation, a distribution with the prior spread over all
//!   choices and one extra count at the observed choice, plus a uniform prior kernel.
//!
//! The reference values in the tests come from Optuna 5.0 itself.

use rand::rngs::StdRng;
use rand::Rng;
use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::erf::erfc;

use super::space::Domain;

const PRIOR_WEIGHT: f64 = 1.0;
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// A fitted one-axis density on the axis's internal line.
#[derive(Debug, Clone)]
pub(crate) enum Parzen {
    Numeric {
        mus: Vec<f64>,
        sigmas: Vec<f64>,
        /// Mixture weights, summing to 1 (the prior kernel last).
        weights: Vec<f64>,
        /// The kernel line (see `Domain::kernel_line`).
        low: f64,
        high: f64,
        /// Integer axes: draws are rounded, densities are cell masses.
        int: Option<IntCells>,
    },
    Categorical {
        /// One probability row per kernel (the prior kernel last).
        rows: Vec<Vec<f64>>,
        weights: Vec<f64>,
    },
}

/// The integer values of an axis and whether its internal line is logarithmic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntCells {
    min: i64,
    max: i64,
    log: bool,
}

impl IntCells {
    fn to_line(self, x: f64) -> f64 {
        if self.log {
            x.ln()
        } else {
            x
        }
    }

    /// The internal coordinate of the integer nearest to internal coordinate `c`.
    fn round(self, c: f64) -> f64 {
        let value = if self.log { c.exp() } else { c };
        self.to_line((value.round() as i64).clamp(self.min, self.max) as f64)
    }

    /// The cell of the integer at internal coordinate `c`, on the internal line.
    fn cell(self, c: f64) -> (f64, f64) {
        let value = if self.log { c.exp().round() } else { c };
        (self.to_line(value - 0.5), self.to_line(value + 0.5))
    }
}

/// Optuna's default observation weights: equal for the 25 newest, a linear ramp from `1/n`
/// for older ones, so old trials fade once the study is long. `n` observations, oldest first.
pub(crate) fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut weights: Vec<f64> = (0..ramp)
        .map(|i| {
            let start = 1.0 / n as f64;
            if ramp == 1 {
                start
            } else {
                start + (1.0 - start) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    weights.extend(std::iter::repeat_n(1.0, 25));
    weights
}

impl Parzen {
    /// Fits the estimator of `domain` to `observations` (internal coordinates) with one
    /// weight per observation.
    pub(crate) fn fit(
        domain: &Domain,
        observations: &[f64],
        observation_weights: &[f64],
    ) -> Parzen {
        assert_eq!(observations.len(), observation_weights.len());
        let mut weights = observation_weights.to_vec();
        weights.push(PRIOR_WEIGHT);
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        match domain {
            Domain::Categorical(choices) => {
                let rows = categorical_rows(choices.len(), observations);
                Parzen::Categorical { rows, weights }
            }
            Domain::Float { .. } | Domain::Int { .. } => {
                let (low, high) = domain.kernel_line().expect("numeric axis");
                let (mus, sigmas) = kernels(observations, low, high);
                let int = match domain {
                    Domain::Int { min, max, log } => {
                        Some(IntCells { min: *min, max: *max, log: *log })
                    }
                    _ => None,
                };
                Parzen::Numeric { mus, sigmas, weights, low, high, int }
            }
        }
    }

    /// PED-ANOVA's estimator of a numeric axis binned on a grid of `counts.len()` points
    /// (Optuna's `ScottParzenEstimator`): one kernel per occupied grid index, weighted by its
    /// count, all with Scott's bandwidth (robust form, at least 0.5 / 1.64 grid steps so 90%
    /// of a kernel stays within a step), plus a prior kernel; densities are cell masses on the
    /// grid indices. TPE's bandwidth is too wide for this.
    pub(crate) fn scott_on_grid(counts: &[usize]) -> Parzen {
        let size = counts.len();
        let occupied: Vec<usize> = (0..size).filter(|&i| counts[i] > 0).collect();
        let observations: Vec<f64> = occupied.iter().map(|&i| i as f64).collect();
        let counts: Vec<f64> = occupied.iter().map(|&i| counts[i] as f64).collect();
        let total: f64 = counts.iter().sum();
        let sigma = if occupied.is_empty() { 0.0 } else { scott_sigma(&observations, &counts) };
        let mut mus = observations;
        let mut sigmas = vec![sigma.max(0.5 / 1.64); mus.len()];
        let mut weights = counts;
        let (high, prior_sigma) = ((size - 1) as f64, size as f64);
        mus.push(high / 2.0);
        sigmas.push(prior_sigma);
        weights.push(if occupied.is_empty() { 1.0 } else { PRIOR_WEIGHT });
        let sum = total + weights[weights.len() - 1];
        weights.iter_mut().for_each(|w| *w /= sum);
        let int = Some(IntCells { min: 0, max: size as i64 - 1, log: false });
        Parzen::Numeric { mus, sigmas, weights, low: -0.5, high: high + 0.5, int }
    }

    /// One draw (an internal coordinate; integer draws are rounded to an integer's
    /// coordinate, categorical draws are choice indices).
    pub(crate) fn sample(&self, rng: &mut StdRng) -> f64 {
        match self {
            Parzen::Numeric { mus, sigmas, weights, low, high, int } => {
                let k = pick(weights, rng);
                let x = truncated_normal(mus[k], sigmas[k], *low, *high, rng);
                int.map_or(x, |cells| cells.round(x))
            }
            Parzen::Categorical { rows, weights } => pick(&rows[pick(weights, rng)], rng) as f64,
        }
    }

    /// The log density (log probability for integer and categorical axes) at `x`.
    pub(crate) fn log_pdf(&self, x: f64) -> f64 {
        match self {
            Parzen::Numeric { mus, sigmas, weights, low, high, int } => {
                let terms = mus.iter().zip(sigmas).zip(weights).map(|((&mu, &sigma), &w)| {
                    let normaliser = log_normal_mass((low - mu) / sigma, (high - mu) / sigma);
                    let kernel = match int {
                        Some(cells) => {
                            let (left, right) = cells.cell(x);
                            log_normal_mass((left - mu) / sigma, (right - mu) / sigma)
                        }
                        None => {
                            let z = (x - mu) / sigma;
                            -0.5 * z * z - LN_SQRT_2PI - sigma.ln()
                        }
                    };
                    w.ln() + kernel - normaliser
                });
                log_sum_exp(terms)
            }
            Parzen::Categorical { rows, weights } => {
                let index = x.round() as usize;
                log_sum_exp(rows.iter().zip(weights).map(|(row, w)| w.ln() + row[index].ln()))
            }
        }
    }
}

/// Kernel centres and bandwidths on the line `[low, high]`: the observations, then the
/// prior at the centre.
fn kernels(observations: &[f64], low: f64, high: f64) -> (Vec<f64>, Vec<f64>) {
    let n = observations.len();
    let width = high - low;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| observations[a].total_cmp(&observations[b]));
    let mut padded = vec![low];
    padded.extend(order.iter().map(|&i| observations[i]));
    padded.push(high);
    let mut sorted_sigmas: Vec<f64> = (1..padded.len() - 1)
        .map(|i| (padded[i] - padded[i - 1]).max(padded[i + 1] - padded[i]))
        .collect();
    // The ends of the line are not neighbours of the outermost kernels: they take their
    // inner gap.
    if n >= 2 {
        sorted_sigmas[0] = padded[2] - padded[1];
        sorted_sigmas[n - 1] = padded[n] - padded[n - 1];
    }
    let (min_sigma, max_sigma) = (width / (n as f64 + 2.0).min(100.0), width);
    let mut sigmas = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        sigmas[i] = sorted_sigmas[rank].clamp(min_sigma, max_sigma);
    }
    let mut mus = observations.to_vec();
    mus.push(0.5 * (low + high));
    sigmas.push(width);
    (mus, sigmas)
}

/// Scott's rule on weighted, sorted observations: 1.059 · min(IQR / 1.34, sd) · W^(-1/5),
/// with the quartiles read off the cumulative weights as Optuna does.
fn scott_sigma(observations: &[f64], weights: &[f64]) -> f64 {
    let total: f64 = weights.iter().sum();
    let mean = observations.iter().zip(weights).map(|(x, w)| x * w).sum::<f64>() / total;
    let sum_sq: f64 = observations.iter().zip(weights).map(|(x, w)| (x - mean).powi(2) * w).sum();
    let sd = (sum_sq / (total - 1.0).max(1.0)).sqrt();
    let cumulative: Vec<f64> = weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect();
    let (q1, q3) = ((total / 4.0).floor(), (total * 3.0 / 4.0).floor());
    let q1_index = cumulative.iter().position(|&c| c >= q1).unwrap_or(cumulative.len());
    let q3_index = cumulative.iter().position(|&c| c > q3).unwrap_or(cumulative.len());
    let last = observations.len() - 1;
    let iqr = observations[q3_index.min(last)] - observations[q1_index.min(last)];
    1.059 * (iqr / 1.34).min(sd) * total.powf(-0.2)
}

fn categorical_rows(n_choices: usize, observations: &[f64]) -> Vec<Vec<f64>> {
    let n_kernels = observations.len() + 1;
    let fill = PRIOR_WEIGHT / n_kernels as f64;
    let mut rows: Vec<Vec<f64>> = observations
        .iter()
        .map(|&x| {
            let mut row = vec![fill; n_choices];
            row[x.round() as usize] += 1.0;
            row
        })
        .collect();
    rows.push(vec![fill; n_choices]);
    for row in &mut rows {
        let total: f64 = row.iter().sum();
        row.iter_mut().for_each(|p| *p /= total);
    }
    rows
}

/// An index drawn with probability proportional to `weights`.
fn pick(weights: &[f64], rng: &mut StdRng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// Standard normal CDF, and its upper tail, without cancellation.
fn phi(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// ln P(a < Z < b) for a standard normal Z, using the tail where it is accurate; far in a
/// tail, where the mass underflows, the midpoint density times the width.
fn log_normal_mass(a: f64, b: f64) -> f64 {
    let mass = if a > 0.0 { upper_tail(a) - upper_tail(b) } else { phi(b) - phi(a) };
    if mass > 1e-300 {
        mass.ln()
    } else {
        let mid = 0.5 * (a + b);
        -0.5 * mid * mid - LN_SQRT_2PI + (b - a).ln()
    }
}

/// A normal(mu, sigma) draw truncated to [low, high], by inverting the CDF. `mu` lies in
/// [low, high] for every kernel, so the truncated mass is never vanishingly small.
fn truncated_normal(mu: f64, sigma: f64, low: f64, high: f64, rng: &mut StdRng) -> f64 {
    let standard = Normal::new(0.0, 1.0).expect("standard normal");
    let (lo, hi) = (phi((low - mu) / sigma), phi((high - mu) / sigma));
    let u = lo + (hi - lo) * rng.random::<f64>();
    let z = standard.inverse_cdf(u.clamp(1e-300, 1.0 - 1e-16));
    (mu + sigma * z).clamp(low, high)
}

fn log_sum_exp(terms: impl Iterator<Item = f64>) -> f64 {
    let terms: Vec<f64> = terms.collect();
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::search::trial_rng;

    fn integrate(parzen: &Parzen, low: f64, high: f64) -> f64 {
        let n = 20_000;
        let h = (high - low) / n as f64;
        (0..n).map(|i| parzen.log_pdf(low + (i as f64 + 0.5) * h).exp() * h).sum()
    }

    #[test]
    fn numeric_density_integrates_to_one_and_peaks_at_the_observations() {
        let domain = Domain::Float { min: 0.0, max: 10.0, log: false };
        let observations = [2.0, 2.5, 3.0];
        let parzen = Parzen::fit(&domain, &observations, &[1.0; 3]);
        assert!((integrate(&parzen, 0.0, 10.0) - 1.0).abs() < 1e-3);
        assert!(parzen.log_pdf(2.5) > parzen.log_pdf(8.0) + 1.0);
        let mut rng = trial_rng(0, 0);
        let draws: Vec<f64> = (0..2000).map(|_| parzen.sample(&mut rng)).collect();
        assert!(draws.iter().all(|x| (0.0..=10.0).contains(x)));
        let near = draws.iter().filter(|x| (1.0..4.0).contains(*x)).count();
        // Uniform draws would put 30% there; the observation kernels (sigma clipped to
        // range / 5 with three observations) and the prior give about half.
        assert!(near > 900, "{near} of 2000 draws near the observations");
    }

    #[test]
    fn integer_and_categorical_masses_sum_to_one() {
        let domain = Domain::Int { min: 1, max: 6, log: false };
        let parzen = Parzen::fit(&domain, &[2.0, 2.0, 5.0], &[1.0; 3]);
        let total: f64 = (1..=6).map(|x| parzen.log_pdf(x as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let mut rng = trial_rng(0, 1);
        assert!((0..500).all(|_| {
            let x = parzen.sample(&mut rng);
            x.fract() == 0.0 && (1.0..=6.0).contains(&x)
        }));
        let choices = Domain::Categorical(vec![toml::Value::Integer(0); 3]);
        let parzen = Parzen::fit(&choices, &[0.0, 0.0, 2.0], &[1.0; 3]);
        let masses: Vec<f64> = (0..3).map(|c| parzen.log_pdf(c as f64).exp()).collect();
        assert!((masses.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(masses[0] > masses[2] && masses[2] > masses[1], "{masses:?}");
    }

    /// A reference file of tests/fixtures/optuna (made by make_optuna.py, Optuna pinned).
    pub(crate) fn optuna_fixture(name: &str) -> serde_json::Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/optuna")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).expect("fixture JSON")
    }

    /// A fixture's domain (`{"kind": "float", "min": .., "max": .., "log": ..}`, `int`
    /// alike, or `{"kind": "categorical", "choices": n}`).
    pub(crate) fn fixture_domain(domain: &serde_json::Value) -> Domain {
        let log = domain["log"].as_bool().unwrap_or(false);
        match domain["kind"].as_str().expect("kind") {
            "float" => Domain::Float {
                min: domain["min"].as_f64().unwrap(),
                max: domain["max"].as_f64().unwrap(),
                log,
            },
            "int" => Domain::Int {
                min: domain["min"].as_i64().unwrap(),
                max: domain["max"].as_i64().unwrap(),
                log,
            },
            "categorical" => {
                let n = domain["choices"].as_i64().unwrap();
                Domain::Categorical((0..n).map(toml::Value::Integer).collect())
            }
            other => panic!("unknown domain kind {other}"),
        }
    }

    /// Optuna's external value as foldsweep's coordinate: the logarithm on a log axis.
    pub(crate) fn internal(domain: &serde_json::Value, x: f64) -> f64 {
        if domain["log"].as_bool().unwrap_or(false) {
            x.ln()
        } else {
            x
        }
    }

    fn numbers(value: &serde_json::Value) -> Vec<f64> {
        value.as_array().expect("a list").iter().map(|v| v.as_f64().unwrap()).collect()
    }

    /// log_pdf of Optuna's `_ParzenEstimator` as TPESampler builds it by default
    /// (prior_weight 1, magic clip, no endpoints, default_weights) at the fixture's points.
    #[test]
    fn log_densities_match_optuna() {
        let fixture = optuna_fixture("parzen.json");
        let cases = fixture["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 7, "every case of make_optuna.py");
        for case in cases {
            let domain = fixture_domain(&case["domain"]);
            let internal = |xs: Vec<f64>| -> Vec<f64> {
                xs.into_iter().map(|x| internal(&case["domain"], x)).collect()
            };
            let observations = internal(numbers(&case["observations"]));
            let points = internal(numbers(&case["points"]));
            let expected = numbers(&case["log_pdf"]);
            assert_eq!(points.len(), expected.len(), "{domain:?}: one density per point");
            assert!(!points.is_empty(), "{domain:?}: no point to check");
            let parzen = Parzen::fit(&domain, &observations, &default_weights(observations.len()));
            for (x, want) in points.iter().zip(expected) {
                let got = parzen.log_pdf(*x);
                assert!((got - want).abs() < 1e-9, "{domain:?} at {x}: {got} vs Optuna's {want}");
            }
        }
    }

    #[test]
    fn default_weights_ramp_old_observations_after_25() {
        assert_eq!(default_weights(3), vec![1.0; 3]);
        let w = default_weights(30);
        assert_eq!(w.len(), 30);
        assert!(
            (w[0] - 1.0 / 30.0).abs() < 1e-12 && w[3] < 1.0 && w[4..].iter().all(|&x| x == 1.0)
        );
    }
}
