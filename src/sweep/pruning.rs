//! The pruners against the database: which values a decision compares, read where the sweep
//! loop stands. The decisions themselves are [`crate::search::asha_decision`] and
//! [`crate::search::race`].
//!
//! - ASHA, at a rung epoch of a running job: the job's objective against the value at that
//!   epoch of every other job of the same fold (finished ones from the `epochs` table, running
//!   ones of this coordinator as they stream).
//! - Racing, when a job finishes and its config still has folds to run: the config's folds
//!   against the incumbent's on the folds both have. The incumbent is the best complete config
//!   by [`objective::config_value`]; while none is complete (fold-major order), the best
//!   config with the most folds.

use crate::results::objective;
use crate::results::{summaries, ConfigSummary, SortKey};
use crate::search::{asha_decision, race, rung_epochs, Decision, PruneConfig};
use crate::store::{JobStatus, Store};

/// ASHA at `epoch` (1-based) of a job whose objective there is `value`; Continue off a rung.
#[allow(clippy::too_many_arguments)]
pub fn asha(
    store: &Store,
    sweep_id: i64,
    prune: &PruneConfig,
    max_epochs: usize,
    (job_id, fold): (i64, usize),
    (epoch, monitor): (usize, crate::probe::Monitor),
    value: f64,
    running_at_rung: &[f64],
) -> anyhow::Result<Decision> {
    if !prune.epochs || !rung_epochs(prune.min_epochs, prune.eta, max_epochs).contains(&epoch) {
        return Ok(Decision::Continue);
    }
    let mut others = store.rung_values(sweep_id, fold, epoch, job_id, monitor)?;
    others.extend_from_slice(running_at_rung);
    Ok(asha_decision(epoch, value, &others, prune.eta))
}

/// Racing for `config_id` after one of its folds finished.
pub fn race_config(
    store: &Store,
    sweep_id: i64,
    prune: &PruneConfig,
    config_id: &str,
) -> anyhow::Result<Decision> {
    let left = store.config_jobs_in(config_id, JobStatus::Pending)?;
    if !prune.folds || left == 0 {
        return Ok(Decision::Continue);
    }
    let candidate_folds = store.fold_metrics(config_id)?;
    let rows = summaries(store, sweep_id, SortKey::Oof)?;
    let Some(incumbent) = incumbent(&rows, config_id) else { return Ok(Decision::Continue) };
    let incumbent_folds = store.fold_metrics(&incumbent.id)?;
    let pairs = |folds: &[crate::store::FoldMetrics]| -> Vec<(usize, f64)> {
        folds.iter().map(|m| (m.fold, objective::fold_value(m))).collect()
    };
    let n = candidate_folds.len().max(1) as f64;
    let n_test = candidate_folds.iter().map(|m| m.val_rows as f64).sum::<f64>() / n;
    let n_train = candidate_folds.iter().map(|m| m.train_rows as f64).sum::<f64>() / n;
    Ok(race(
        &pairs(&incumbent_folds),
        &pairs(&candidate_folds),
        prune.min_folds,
        prune.alpha,
        n_test,
        n_train.max(1.0),
    ))
}

/// The config to race against: another config with a value and nothing pruned or diverged;
/// complete ones first, then the most folds, then the lowest value.
fn incumbent<'a>(rows: &'a [ConfigSummary], candidate: &str) -> Option<&'a ConfigSummary> {
    rows.iter()
        .filter(|r| r.id != candidate && r.pruned == 0 && r.diverged == 0)
        .filter_map(|r| objective::config_value(r).map(|v| (v, r)))
        .min_by(|(va, a), (vb, b)| b.folds_done.cmp(&a.folds_done).then_with(|| va.total_cmp(vb)))
        .map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, folds_done: usize, oof: f64, pruned: usize) -> ConfigSummary {
        ConfigSummary {
            id: id.into(),
            folds_done,
            folds_total: 5,
            pruned,
            oof_rmse: Some(oof),
            ..Default::default()
        }
    }

    #[test]
    fn the_incumbent_is_the_best_config_with_the_most_folds_never_the_candidate_or_a_pruned_one() {
        let rows =
            [row("a", 5, 2.0, 0), row("b", 5, 1.5, 0), row("c", 2, 1.0, 0), row("d", 5, 0.5, 1)];
        assert_eq!(incumbent(&rows, "x").unwrap().id, "b");
        assert_eq!(incumbent(&rows, "b").unwrap().id, "a");
        assert!(incumbent(&rows[3..], "x").is_none());
    }
}
