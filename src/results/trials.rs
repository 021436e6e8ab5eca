//! A search's trials as the sampler's history and the report's plots see them: the stored
//! trial with its config's objective (over the folds it finished) and where it stands.

use serde::Serialize;

use super::objective::config_value;
use super::{summaries_with, Retired, SortKey};
use crate::store::{JobStatus, Store};

/// One trial of a random or tpe search, as the sampler's history and the report's plots see
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    /// 0, 1, ... within its stream (the whole run, or one shard).
    pub number: u64,
    /// `""` for a whole run, `"I/N"` for a trial of `run --shard I/N`.
    pub shard: String,
    pub config_id: String,
    /// The sampled values, one `(key, value)` per axis, in axis order.
    pub point: crate::search::Point,
    /// The config's objective over the folds it finished ([`super::objective::config_value`]);
    /// None before any fold finished.
    pub value: Option<f64>,
    /// A pruner stopped one of its jobs (or all its remaining folds).
    pub pruned: bool,
    pub state: TrialState,
}

/// Where a trial stands, from its config's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialState {
    /// A job is pending, running or interrupted.
    Running,
    /// Every fold done.
    Complete,
    /// Every job has its outcome and a pruner stopped at least one.
    Pruned,
    /// Every job has its outcome and at least one diverged.
    Diverged,
    /// Some job failed for good.
    Failed,
}

/// Every trial of a sweep, by shard then number, with its value and state.
pub fn trials(store: &Store, sweep_id: i64) -> anyhow::Result<Vec<TrialRow>> {
    let records = store.trial_records(sweep_id)?;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let summaries = summaries_with(store, sweep_id, SortKey::Oof, Retired::Include)?;
    let rows = records.into_iter().map(|r| {
        let value = summaries.iter().find(|s| s.id == r.config_id).and_then(config_value);
        TrialRow {
            number: r.number,
            pruned: r.statuses.iter().any(|(s, _)| *s == JobStatus::Pruned),
            state: trial_state(&r.statuses),
            shard: r.shard,
            config_id: r.config_id,
            point: r.point,
            value,
        }
    });
    Ok(rows.collect())
}

/// A trial runs while any job of its config is unfinished; then a failure, a divergence or
/// a prune says how it ended (in that order), else it is complete.
fn trial_state(statuses: &[(JobStatus, usize)]) -> TrialState {
    let has = |wanted: JobStatus| statuses.iter().any(|(s, _)| *s == wanted);
    if has(JobStatus::Pending) || has(JobStatus::Running) || has(JobStatus::Interrupted) {
        TrialState::Running
    } else if has(JobStatus::Failed) {
        TrialState::Failed
    } else if has(JobStatus::Diverged) {
        TrialState::Diverged
    } else if has(JobStatus::Pruned) {
        TrialState::Pruned
    } else {
        TrialState::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_is_running_until_every_job_ends_then_failed_diverged_pruned_or_complete() {
        use JobStatus::*;
        assert_eq!(trial_state(&[(Done, 2), (Running, 1)]), TrialState::Running);
        assert_eq!(trial_state(&[(Done, 2), (Interrupted, 1)]), TrialState::Running);
        assert_eq!(trial_state(&[(Failed, 1), (Pruned, 1)]), TrialState::Failed);
        assert_eq!(trial_state(&[(Diverged, 1), (Pruned, 1)]), TrialState::Diverged);
        assert_eq!(trial_state(&[(Done, 1), (Pruned, 2)]), TrialState::Pruned);
        assert_eq!(trial_state(&[(Done, 3)]), TrialState::Complete);
    }
}
