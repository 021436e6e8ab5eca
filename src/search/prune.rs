//! Pruners: stop a job early when it is clearly not going to win.
//!
//! - Over epochs, inside one fold: asynchronous successive halving (ASHA). Rungs come at
//!   epochs r, r·η, r·η², ...; at a rung a job continues only if its value is in the top 1/η
//!   of the values recorded at that rung of that fold (itself included). ASHA never waits for
//!   a rung to fill: the first jobs to arrive are compared with what is there.
//! - Over folds: racing, against an incumbent that finished every fold. Once a config has
//!   `min_folds` folds, either the forgiving rule ([`forgiving_race`]: its mean so far worse
//!   than the incumbent's worst fold; Bergman, Purucker & Hutter, AutoML 2024) or a one-sided
//!   Nadeau-Bengio corrected paired t-test on the folds both have ([`race`]) decides whether
//!   it gets more.
//!
//! Every value is "lower is better". A non-finite value (a diverged run) is always pruned.

use statrs::distribution::{ContinuousCDF, StudentsT};
use std::fmt;

/// What a pruner says about a job or config.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Continue,
    Prune(PruneReason),
}

/// Why a job or config was pruned; stored with the pruned result ("where it stopped").
#[derive(Debug, Clone, PartialEq)]
pub enum PruneReason {
    /// The objective was NaN or infinite.
    NotFinite,
    /// ASHA: ranked `rank` (1 = best) of `of` values at the rung at `epoch`.
    Rung { epoch: usize, rank: usize, of: usize },
    /// Racing: significantly worse than the incumbent on `folds` paired folds (one-sided p),
    /// by `mean_diff` on average.
    Race { folds: usize, p_value: f64, mean_diff: f64 },
    /// Racing, forgiving rule: the mean of `folds` folds is above the incumbent's worst fold.
    Forgiving { folds: usize, mean: f64, incumbent_worst: f64 },
}

impl fmt::Display for PruneReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneReason::NotFinite => write!(f, "objective not finite"),
            PruneReason::Rung { epoch, rank, of } => {
                write!(f, "epoch {epoch}: rank {rank} of {of} at the rung")
            }
            PruneReason::Race { folds, p_value, mean_diff } => write!(
                f,
                "worse than the incumbent by {mean_diff:.4} on {folds} folds (one-sided p = {p_value:.3})"
            ),
            PruneReason::Forgiving { folds, mean, incumbent_worst } => write!(
                f,
                "worse than the incumbent: mean {mean:.4} over {folds} fold(s) is above its worst fold {incumbent_worst:.4}"
            ),
        }
    }
}

/// The rung epochs below `max_epochs`: `min_epochs`, `min_epochs·eta`, ... (a job that
/// reaches its last epoch is finished, not judged).
pub fn rung_epochs(min_epochs: usize, eta: usize, max_epochs: usize) -> Vec<usize> {
    assert!(min_epochs >= 1 && eta >= 2, "min_epochs >= 1 and eta >= 2");
    std::iter::successors(Some(min_epochs), |&r| r.checked_mul(eta))
        .take_while(|&r| r < max_epochs)
        .collect()
}

/// ASHA at one rung: `value` is this job's objective at epoch `rung_epoch`, `others_at_rung`
/// the values other jobs of the same fold recorded at that rung.
///
/// The job continues when it ranks within the top `floor(n / eta)` of the `n` values
/// (itself included; ties go its way). Small-sample rule: with fewer than `eta` values
/// there is no top 1/η to be outside of yet, so the job continues; the early arrivals at a
/// rung are judged by later ones only through those later jobs' own decisions.
pub fn asha_decision(
    rung_epoch: usize,
    value: f64,
    others_at_rung: &[f64],
    eta: usize,
) -> Decision {
    if !value.is_finite() {
        return Decision::Prune(PruneReason::NotFinite);
    }
    let of = others_at_rung.len() + 1;
    if of < eta {
        return Decision::Continue;
    }
    // NaN counts as worse than anything; `<` is false for it, as wanted.
    let rank = 1 + others_at_rung.iter().filter(|&&o| o < value).count();
    if rank <= of / eta {
        Decision::Continue
    } else {
        Decision::Prune(PruneReason::Rung { epoch: rung_epoch, rank, of })
    }
}

/// Racing over folds: prune `candidate` when it is significantly worse than `incumbent`.
///
/// Both are `(fold, objective)` lists. Nothing is decided before the candidate has
/// `min_folds` folds. On the folds both have, the differences d = candidate - incumbent get
/// the Nadeau-Bengio corrected resampled t-test (as `report::compare::corrected_t_test`:
/// se = sqrt((1/k + n_test/n_train) · var(d)), k - 1 degrees of freedom), one-sided
/// (H1: mean d > 0); prune when p < `alpha`. Identical differences (zero variance) prune
/// when positive. The incumbent raced against itself has d = 0 and is never pruned.
pub fn race(
    incumbent: &[(usize, f64)],
    candidate: &[(usize, f64)],
    min_folds: usize,
    alpha: f64,
    n_test: f64,
    n_train: f64,
) -> Decision {
    if candidate.iter().any(|(_, v)| !v.is_finite()) {
        return Decision::Prune(PruneReason::NotFinite);
    }
    if candidate.len() < min_folds {
        return Decision::Continue;
    }
    let diffs: Vec<f64> = candidate
        .iter()
        .filter_map(|&(fold, c)| {
            let (_, i) = incumbent.iter().find(|(f, i)| *f == fold && i.is_finite())?;
            Some(c - i)
        })
        .collect();
    match one_sided_p(&diffs, n_test, n_train) {
        Some((p_value, mean_diff)) if p_value < alpha => {
            Decision::Prune(PruneReason::Race { folds: diffs.len(), p_value, mean_diff })
        }
        _ => Decision::Continue,
    }
}

/// Racing by the forgiving rule: prune `candidate` (its `(fold, objective)` so far) once it
/// has `min_folds` folds and their mean is worse than the incumbent's *worst* fold. Equal
/// goes the candidate's way; an incumbent with no finite fold decides nothing.
pub fn forgiving_race(
    incumbent: &[(usize, f64)],
    candidate: &[(usize, f64)],
    min_folds: usize,
) -> Decision {
    if candidate.iter().any(|(_, v)| !v.is_finite()) {
        return Decision::Prune(PruneReason::NotFinite);
    }
    if candidate.is_empty() || candidate.len() < min_folds {
        return Decision::Continue;
    }
    let worst = incumbent
        .iter()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite())
        .fold(None, |w: Option<f64>, v| Some(w.map_or(v, |w| w.max(v))));
    let Some(incumbent_worst) = worst else { return Decision::Continue };
    let mean = candidate.iter().map(|&(_, v)| v).sum::<f64>() / candidate.len() as f64;
    if mean > incumbent_worst {
        Decision::Prune(PruneReason::Forgiving { folds: candidate.len(), mean, incumbent_worst })
    } else {
        Decision::Continue
    }
}

/// One-sided corrected t-test p-value for mean(d) > 0, and the mean; `None` below 2 pairs.
fn one_sided_p(diffs: &[f64], n_test: f64, n_train: f64) -> Option<(f64, f64)> {
    let k = diffs.len();
    if k < 2 {
        return None;
    }
    let mean = diffs.iter().sum::<f64>() / k as f64;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (k as f64 - 1.0);
    let se = ((1.0 / k as f64 + n_test / n_train) * var).sqrt();
    if se == 0.0 {
        // The same difference on every fold: certain in its sign.
        return Some((if mean > 0.0 { 0.0 } else { 1.0 }, mean));
    }
    let dist = StudentsT::new(0.0, 1.0, (k - 1) as f64).ok()?;
    Some(((1.0 - dist.cdf(mean / se)).clamp(0.0, 1.0), mean))
}

/// Fold-major job order: every config's fold 0, then every config's fold 1, ..., so racing
/// sees each config's first folds before any config spends compute on its later ones.
pub fn fold_major(configs: usize, folds: usize) -> Vec<(usize, usize)> {
    (0..folds).flat_map(|fold| (0..configs).map(move |config| (config, fold))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_are_geometric_and_stop_before_the_last_epoch() {
        assert_eq!(rung_epochs(5, 3, 100), vec![5, 15, 45]);
        assert_eq!(rung_epochs(1, 2, 9), vec![1, 2, 4, 8]);
        assert_eq!(rung_epochs(5, 3, 5), Vec::<usize>::new());
    }

    #[test]
    fn asha_prunes_a_clearly_worse_job_at_the_first_rung_and_keeps_the_best() {
        let others = [0.9, 1.0, 1.1, 1.2, 1.3];
        assert_eq!(
            asha_decision(5, 9.0, &others, 3),
            Decision::Prune(PruneReason::Rung { epoch: 5, rank: 6, of: 6 })
        );
        assert_eq!(asha_decision(5, 0.5, &others, 3), Decision::Continue);
        // Top floor(6 / 3) = 2: second place continues, third does not.
        assert_eq!(asha_decision(5, 0.95, &others, 3), Decision::Continue);
        assert!(matches!(asha_decision(5, 1.05, &others, 3), Decision::Prune(_)));
        // Ties go the job's way.
        assert_eq!(asha_decision(5, 1.0, &[1.0, 1.0], 3), Decision::Continue);
    }

    #[test]
    fn asha_lets_early_arrivals_continue_but_never_a_diverged_job() {
        assert_eq!(asha_decision(5, 9.0, &[0.1], 3), Decision::Continue);
        assert_eq!(asha_decision(5, f64::NAN, &[], 3), Decision::Prune(PruneReason::NotFinite));
        assert_eq!(
            asha_decision(5, f64::INFINITY, &[], 3),
            Decision::Prune(PruneReason::NotFinite)
        );
        // A diverged other job counts as worse than this one.
        assert_eq!(asha_decision(5, 2.0, &[f64::NAN, f64::NAN], 3), Decision::Continue);
    }

    #[test]
    fn race_prunes_a_clearly_worse_config_after_min_folds() {
        let incumbent = [(0, 1.00), (1, 1.02), (2, 0.98), (3, 1.01), (4, 0.99)];
        let worse = [(0, 1.50), (1, 1.55), (2, 1.47)];
        // One fold is not enough to decide.
        assert_eq!(race(&incumbent, &worse[..1], 2, 0.1, 200.0, 800.0), Decision::Continue);
        match race(&incumbent, &worse[..2], 2, 0.1, 200.0, 800.0) {
            Decision::Prune(PruneReason::Race { folds: 2, p_value, mean_diff }) => {
                assert!(p_value < 0.1 && (mean_diff - 0.515).abs() < 1e-9, "p {p_value}");
            }
            other => panic!("expected a race prune, got {other:?}"),
        }
    }

    #[test]
    fn race_keeps_the_incumbent_and_close_or_better_configs() {
        let incumbent = [(0, 1.00), (1, 1.02), (2, 0.98)];
        assert_eq!(race(&incumbent, &incumbent, 2, 0.1, 200.0, 800.0), Decision::Continue);
        let better = [(0, 0.90), (1, 0.95)];
        assert_eq!(race(&incumbent, &better, 2, 0.1, 200.0, 800.0), Decision::Continue);
        // Noisy: worse on one fold, better on the other.
        let noisy = [(0, 1.20), (1, 0.90)];
        assert_eq!(race(&incumbent, &noisy, 2, 0.1, 200.0, 800.0), Decision::Continue);
    }

    #[test]
    fn race_zero_variance_positive_difference_prunes_and_pairs_only_shared_folds() {
        let incumbent = [(0, 1.0), (1, 1.0)];
        let shifted = [(0, 1.1), (1, 1.1)];
        assert!(matches!(
            race(&incumbent, &shifted, 2, 0.1, 200.0, 800.0),
            Decision::Prune(PruneReason::Race { p_value, .. }) if p_value == 0.0
        ));
        // Folds 3 and 4 are not in the incumbent: one pair only, no test yet.
        let elsewhere = [(0, 5.0), (3, 5.0), (4, 5.0)];
        assert_eq!(race(&incumbent, &elsewhere, 2, 0.1, 200.0, 800.0), Decision::Continue);
        let diverged = [(0, f64::NAN)];
        assert_eq!(
            race(&incumbent, &diverged, 2, 0.1, 200.0, 800.0),
            Decision::Prune(PruneReason::NotFinite)
        );
    }

    #[test]
    fn forgiving_race_prunes_only_a_mean_above_the_incumbents_worst_fold() {
        let incumbent = [(0, 1.00), (1, 1.20), (2, 0.90), (3, 1.05), (4, 0.95)];
        // Worse than the incumbent's mean (1.02) but not than its worst fold: kept, where a
        // mean-vs-mean rule would stop it.
        assert_eq!(forgiving_race(&incumbent, &[(0, 1.10), (1, 1.15)], 2), Decision::Continue);
        assert_eq!(forgiving_race(&incumbent, &[(0, 1.20), (1, 1.20)], 2), Decision::Continue);
        match forgiving_race(&incumbent, &[(0, 1.50), (1, 1.10)], 2) {
            Decision::Prune(PruneReason::Forgiving { folds: 2, mean, incumbent_worst }) => {
                assert!((mean - 1.30).abs() < 1e-12 && incumbent_worst == 1.20);
            }
            other => panic!("expected a forgiving prune, got {other:?}"),
        }
        // Before min_folds nothing is decided, however bad.
        assert_eq!(forgiving_race(&incumbent, &[(0, 9.0)], 2), Decision::Continue);
        assert!(matches!(forgiving_race(&incumbent, &[(0, 9.0)], 1), Decision::Prune(_)));
        assert_eq!(
            forgiving_race(&incumbent, &[(0, f64::NAN)], 2),
            Decision::Prune(PruneReason::NotFinite)
        );
        assert_eq!(forgiving_race(&[], &[(0, 9.0), (1, 9.0)], 2), Decision::Continue);
    }

    #[test]
    fn one_sided_p_is_half_the_two_sided_compare_value() {
        // The hand-computed case of report::compare: t = 2.828427 with 4 df, two-sided 0.047421.
        let (p, mean) = one_sided_p(&[0.1, 0.2, 0.3, 0.4, 0.5], 1000.0, 4000.0).unwrap();
        assert!((p - 0.047421 / 2.0).abs() < 1e-5 && (mean - 0.3).abs() < 1e-12, "p = {p}");
    }

    #[test]
    fn fold_major_runs_every_first_fold_first() {
        assert_eq!(fold_major(2, 3), vec![(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]);
    }
}
