//! Random and tpe searches inside the sweep loop: a study proposes one trial at a time, when
//! the coordinator has a free slot and no pending job, and registers it with its config and
//! fold jobs in one transaction.
//!
//! Its state is the database: the history (finished trials in number order, with
//! [`super::objective::config_value`] and the pruned flag) and the running trials are read
//! back before every proposal, and the samplers are deterministic in (seed, trial number,
//! history, running), so a rerun after kill -9 continues the same study: no trial is lost
//! (one is registered whole or not at all) and none is duplicated (numbers are unique per
//! stream; a coordinator that loses the race for a number reads the history again).
//!
//! Shards: `run --shard I/N` runs stream `I/N`, its own trials numbered from 0, seeded by
//! (seed, I), with its share of `trials` (trials / N, one more for the first trials % N
//! shards), so N shards run `trials` trials in all; `merge` keeps each trial's stream.

use std::collections::HashMap;

use super::shard::Shard;
use super::{config_id, spec, GridPoint, SweepFile};
use crate::cv::FoldAssignment;
use crate::results::{trials, TrialRow, TrialState};
use crate::search::{Point, Sampler, Space, Trial};
use crate::store::{NewConfig, NewTrial, Store};

/// A random or tpe search as one coordinator runs it.
pub struct Study<'a> {
    sweep: &'a SweepFile,
    sampler: Box<dyn Sampler>,
    space: Space,
    /// `""` for a whole run, `"I/N"` for a shard.
    pub stream: String,
    /// Trials this stream runs.
    pub budget: u64,
    fold_hash: String,
    folds: usize,
    fingerprints: HashMap<String, String>,
}

/// A newly registered trial.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrialInfo {
    pub number: u64,
    pub config_id: String,
    pub label: String,
}

/// The seed of shard `I`'s stream: the sweep's seed for a whole run, else a fixed odd step
/// (2^64 / golden ratio) per shard index, so streams never share trial streams.
pub fn stream_seed(seed: u64, shard: Option<Shard>) -> u64 {
    match shard {
        None => seed,
        Some(s) => seed.wrapping_add((s.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    }
}

/// How many of `trials` shard `I/N` runs: trials / N, one more for the first trials % N.
pub fn stream_budget(trials: u64, shard: Option<Shard>) -> u64 {
    match shard {
        None => trials,
        Some(s) => {
            let (n, i) = (s.count as u64, s.index as u64 - 1);
            trials / n + u64::from(i < trials % n)
        }
    }
}

impl<'a> Study<'a> {
    /// The study of a random or tpe sweep; None for a grid.
    pub fn new(sweep: &'a SweepFile, shard: Option<Shard>, folds: &FoldAssignment) -> Option<Self> {
        let mut search = sweep.search.clone();
        search.seed = stream_seed(search.seed, shard);
        let sampler = search.sampler()?;
        Some(Study {
            sweep,
            sampler,
            space: sweep.space(),
            stream: shard.map(|s| format!("{}/{}", s.index, s.count)).unwrap_or_default(),
            budget: stream_budget(search.trials.unwrap_or(0), shard),
            fold_hash: folds.hash(),
            folds: folds.folds,
            fingerprints: HashMap::new(),
        })
    }

    /// This stream's trials, in number order.
    pub fn trials(&self, store: &Store, sweep_id: i64) -> anyhow::Result<Vec<TrialRow>> {
        Ok(trials(store, sweep_id)?.into_iter().filter(|t| t.shard == self.stream).collect())
    }

    /// Proposes and registers the next trial; None once the stream has its `budget`.
    pub fn next_trial(
        &mut self,
        store: &mut Store,
        sweep_id: i64,
    ) -> anyhow::Result<Option<NewTrialInfo>> {
        loop {
            let rows = self.trials(store, sweep_id)?;
            let number = rows.len() as u64;
            if number >= self.budget {
                return Ok(None);
            }
            let (history, running) = history_of(&rows);
            let sweep = self.sweep;
            let point = self
                .sampler
                .propose(&self.space, &history, &running, number, &|p| sweep.is_valid_point(p))?;
            let grid_point = match sweep.apply(&point)? {
                Ok(grid_point) => grid_point,
                Err(reason) => anyhow::bail!("the sampler proposed an invalid point: {reason}"),
            };
            let info = self.register(store, sweep_id, number, &point, &grid_point)?;
            if info.is_some() {
                return Ok(info);
            }
            // Another coordinator registered this number first: propose again from its history.
        }
    }

    fn register(
        &mut self,
        store: &mut Store,
        sweep_id: i64,
        number: u64,
        point: &Point,
        grid_point: &GridPoint,
    ) -> anyhow::Result<Option<NewTrialInfo>> {
        let fingerprint =
            super::fingerprint::fingerprint_cached(grid_point, &mut self.fingerprints)?;
        let id = config_id(&grid_point.config, &fingerprint, &self.fold_hash);
        let label = grid_point.label();
        let params = serde_json::to_string(&grid_point.config)?;
        let varying = spec::varying_json(&grid_point.varying);
        let trial = NewTrial {
            sweep_id,
            shard: &self.stream,
            number,
            point,
            config: NewConfig {
                id: &id,
                params_json: &params,
                varying_json: &varying,
                label: &label,
                data_fingerprint: &fingerprint,
            },
            fold_hash: &self.fold_hash,
            folds: self.folds,
        };
        Ok(store.register_trial(&trial)?.then_some(NewTrialInfo { number, config_id: id, label }))
    }
}

/// The sampler's view of the trials: finished ones (complete, pruned, diverged, failed) as
/// history, the points of running ones (TPE's constant liars), both in number order.
fn history_of(rows: &[TrialRow]) -> (Vec<Trial>, Vec<Point>) {
    let mut history = Vec::new();
    let mut running = Vec::new();
    for row in rows {
        match row.state {
            TrialState::Running => running.push(row.point.clone()),
            TrialState::Failed => {
                history.push(Trial { point: row.point.clone(), value: None, pruned: false })
            }
            TrialState::Diverged => history.push(Trial {
                point: row.point.clone(),
                value: Some(f64::INFINITY),
                pruned: false,
            }),
            TrialState::Complete | TrialState::Pruned => history.push(Trial {
                point: row.point.clone(),
                value: row.value,
                pruned: row.pruned,
            }),
        }
    }
    (history, running)
}

/// A sweep's trials for the report's search plots, numbered in the order the store lists them
/// (shard, then number), and its search space (None for a grid sweep, whose plots then treat
/// each varying key as categorical).
pub fn report_trials(
    store: &Store,
    sweep_id: i64,
) -> anyhow::Result<(Vec<crate::search::TrialPoint>, Option<Space>)> {
    let rows = trials(store, sweep_id)?;
    if rows.is_empty() {
        return Ok((Vec::new(), None));
    }
    let definition = store.sweep_definition(sweep_id)?;
    let space = SweepFile::parse(std::path::Path::new("sweep.toml"), definition)
        .ok()
        .filter(|sweep| sweep.search.strategy != crate::search::Strategy::Grid)
        .map(|sweep| sweep.space());
    let points = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| crate::search::TrialPoint {
            number: i as u64,
            point: r.point,
            value: r.value,
            pruned: r.pruned,
        })
        .collect();
    Ok((points, space))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(number: u64, state: TrialState, value: Option<f64>) -> TrialRow {
        TrialRow {
            number,
            shard: String::new(),
            config_id: format!("c{number}"),
            point: vec![("lr".into(), toml::Value::Float(number as f64))],
            value,
            pruned: state == TrialState::Pruned,
            state,
        }
    }

    #[test]
    fn the_sampler_sees_finished_trials_as_history_and_running_ones_as_liars() {
        let rows = [
            row(0, TrialState::Complete, Some(2.0)),
            row(1, TrialState::Running, None),
            row(2, TrialState::Pruned, Some(3.0)),
            row(3, TrialState::Diverged, None),
            row(4, TrialState::Failed, None),
        ];
        let (history, running) = history_of(&rows);
        let summary: Vec<(Option<f64>, bool)> =
            history.iter().map(|t| (t.value, t.pruned)).collect();
        assert_eq!(
            summary,
            vec![
                (Some(2.0), false),
                (Some(3.0), true),
                (Some(f64::INFINITY), false),
                (None, false)
            ]
        );
        assert_eq!(running, vec![rows[1].point.clone()]);
    }

    #[test]
    fn shards_split_the_trials_and_seed_their_own_streams() {
        let shard = |index, count| Some(Shard { index, count });
        assert_eq!(stream_budget(10, None), 10);
        let budgets: Vec<u64> = (1..=3).map(|i| stream_budget(10, shard(i, 3))).collect();
        assert_eq!(budgets, vec![4, 3, 3]);
        assert_eq!(stream_seed(5, None), 5);
        assert_ne!(stream_seed(5, shard(1, 2)), stream_seed(5, shard(2, 2)));
    }
}
