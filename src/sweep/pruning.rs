//! The pruners against the database: which values a decision compares, read where the sweep
//! loop stands. The decisions themselves are [`crate::search::asha_decision`] and
//! [`crate::search::race`].
//!
//! - ASHA, at a rung epoch of a running job: the job's objective against the value at that
//!   epoch of every other job of the same fold (finished ones from the `epochs` table, running
//!   ones of this coordinator as they stream).
//! - Racing, when a job finishes and its config still has folds to run: the config's folds
//!   against the incumbent's, by the forgiving rule or the t-test. The incumbent is the best
//!   config that finished every fold, by [`objective::config_value`]; while none has, racing
//!   waits (the queue runs one config's folds first, [`Store::claim_next`]).

use crate::results::objective;
use crate::results::{summaries, ConfigSummary, SortKey};
use crate::search::{
    asha_decision, forgiving_race, race, rung_epochs, Decision, PruneConfig, RaceRule,
};
use crate::store::{JobStatus, Store};

/// The jobs of this coordinator that are running, by what ASHA needs of them.
pub struct RunningRung<'a> {
    /// The ids of every running job of this coordinator, the asking one included: their
    /// values come from memory, so the store's copies of them (flushed about once a second)
    /// must not count again.
    pub job_ids: &'a [i64],
    /// The other running jobs' values at the rung, for those that reached it.
    pub values: &'a [f64],
}

/// Whether ASHA judges a job of `max_epochs` epochs at `epoch` (1-based): it is on and the
/// epoch is a rung. Off a rung there is nothing to gather.
pub fn asha_rung(prune: &PruneConfig, max_epochs: usize, epoch: usize) -> bool {
    prune.epochs && rung_epochs(prune.min_epochs, prune.eta, max_epochs).contains(&epoch)
}

/// ASHA at `epoch` (1-based) of a job whose objective there is `value`; Continue off a rung.
/// Every job of the fold counts once: finished jobs and other coordinators' running jobs from
/// the store, this coordinator's running jobs from `running`.
pub fn asha(
    store: &Store,
    (sweep_id, prune, max_epochs): (i64, &PruneConfig, usize),
    fold: usize,
    (epoch, monitor): (usize, crate::probe::Monitor),
    value: f64,
    running: RunningRung,
) -> anyhow::Result<Decision> {
    if !asha_rung(prune, max_epochs, epoch) {
        return Ok(Decision::Continue);
    }
    let mut others = store.rung_values(sweep_id, fold, epoch, running.job_ids, monitor)?;
    others.extend_from_slice(running.values);
    Ok(asha_decision(epoch, value, &others, prune.eta))
}

/// Racing for `config_id` after one of its folds finished: the reason to give it no more
/// folds, naming the incumbent and its fold values so the decision can be checked later, or
/// None to go on.
pub fn race_config(
    store: &Store,
    sweep_id: i64,
    prune: &PruneConfig,
    config_id: &str,
) -> anyhow::Result<Option<String>> {
    let left = store.config_jobs_in(config_id, JobStatus::Pending)?;
    if !prune.folds || left == 0 {
        return Ok(None);
    }
    let candidate_folds = store.fold_metrics(config_id)?;
    let rows = summaries(store, sweep_id, SortKey::Oof)?;
    let Some(incumbent) = incumbent(&rows, config_id) else { return Ok(None) };
    let incumbent_folds = store.fold_metrics(&incumbent.id)?;
    let pairs = |folds: &[crate::store::FoldMetrics]| -> Vec<(usize, f64)> {
        folds.iter().map(|m| (m.fold, objective::fold_value(m))).collect()
    };
    let (theirs, ours) = (pairs(&incumbent_folds), pairs(&candidate_folds));
    let decision = match prune.race {
        RaceRule::Forgiving => forgiving_race(&theirs, &ours, prune.min_folds),
        RaceRule::Ttest => {
            let n = candidate_folds.len().max(1) as f64;
            let n_test = candidate_folds.iter().map(|m| m.val_rows as f64).sum::<f64>() / n;
            let n_train = candidate_folds.iter().map(|m| m.train_rows as f64).sum::<f64>() / n;
            race(&theirs, &ours, prune.min_folds, prune.alpha, n_test, n_train.max(1.0))
        }
    };
    let Decision::Prune(reason) = decision else { return Ok(None) };
    let values: Vec<String> = theirs.iter().map(|(fold, v)| format!("{fold}: {v:.4}")).collect();
    Ok(Some(format!(
        "{} ({}): {reason}; incumbent {} folds {}",
        "racing",
        prune.race.name(),
        incumbent.id,
        values.join(", ")
    )))
}

/// The config to race against: another config that finished every fold with nothing pruned
/// or diverged, the one with the lowest value. Racing against a partial config would judge
/// the candidate by folds the incumbent may never confirm.
fn incumbent<'a>(rows: &'a [ConfigSummary], candidate: &str) -> Option<&'a ConfigSummary> {
    rows.iter()
        .filter(|r| r.id != candidate && r.pruned == 0 && r.diverged == 0)
        .filter(|r| r.folds_total > 0 && r.folds_done == r.folds_total)
        .filter_map(|r| objective::config_value(r).map(|v| (v, r)))
        .min_by(|(va, _), (vb, _)| va.total_cmp(vb))
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

    /// A sweep of `configs` x one fold, every job claimed (running here): their ids.
    fn running_fold_zero(path: &std::path::Path, configs: &[&str]) -> (Store, i64, Vec<i64>) {
        let (mut store, sweep_id) = crate::store::tests::fold_zero_sweep(path, configs);
        let ids = configs
            .iter()
            .map(|_| store.claim_next(sweep_id, "cpu", &|_, _| true, false).unwrap().unwrap().id)
            .collect();
        (store, sweep_id, ids)
    }

    fn first_epoch(val_rmse: f64) -> crate::train::EpochLog {
        crate::train::EpochLog {
            epoch: 1,
            train_loss: 1.0,
            val_rmse,
            lr: 1e-3,
            seconds: 0.1,
            probe_rmse: None,
            shifted_rmse: None,
        }
    }

    #[test]
    fn asha_counts_a_running_job_once_when_the_store_holds_its_flushed_epochs_too() {
        // Regression (issue 19): a running job's rung value came from memory and again from
        // its epochs flushed to the store, so two jobs on one fold looked like three.
        let dir = tempfile::tempdir().unwrap();
        let (mut store, sweep_id, ids) =
            running_fold_zero(&dir.path().join("r.db"), &["a", "b", "c"]);
        let (a, b, c) = (ids[0], ids[1], ids[2]);
        store.record_epochs(b, &[first_epoch(2.0)]).unwrap();
        let prune = PruneConfig { epochs: true, min_epochs: 1, eta: 3, ..Default::default() };
        let ask = |store: &Store, running: &[i64], values: &[f64]| {
            let running = RunningRung { job_ids: running, values };
            asha(store, (sweep_id, &prune, 10), 0, (1, crate::probe::Monitor::Rmse), 3.0, running)
                .unwrap()
        };
        assert_eq!(ask(&store, &[a, b], &[2.0]), Decision::Continue, "two values, eta 3");
        // A third job that really reached the rung does make a rung of three: `a` is worst.
        store.record_epochs(c, &[first_epoch(2.5)]).unwrap();
        assert!(matches!(ask(&store, &[a, b], &[2.0]), Decision::Prune(_)));
    }

    #[test]
    fn the_incumbent_is_the_best_complete_config_never_the_candidate_a_partial_or_a_pruned_one() {
        let rows =
            [row("a", 5, 2.0, 0), row("b", 5, 1.5, 0), row("c", 2, 1.0, 0), row("d", 5, 0.5, 1)];
        assert_eq!(incumbent(&rows, "x").unwrap().id, "b");
        assert_eq!(incumbent(&rows, "b").unwrap().id, "a");
        assert!(incumbent(&rows[2..], "x").is_none(), "a partial config is no incumbent");
        assert!(incumbent(&rows[3..], "x").is_none());
    }
}
