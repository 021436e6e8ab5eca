//! The SQL of random and tpe searches: a trial is registered with its config and fold jobs in
//! one transaction (so a kill -9 loses or duplicates no trial), and read back in trial order
//! as the sampler's history.

use rusqlite::{params, OptionalExtension};

use super::{now, JobStatus, NewConfig, Store};
use crate::search::Point;

/// One trial as stored: its stream position, config, point and the (status, count) of its
/// config's jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRecord {
    pub number: u64,
    pub shard: String,
    pub config_id: String,
    pub point: Point,
    pub statuses: Vec<(JobStatus, usize)>,
}

/// A trial to register: its stream position, its config and the config's fold jobs.
pub struct NewTrial<'a> {
    pub sweep_id: i64,
    pub shard: &'a str,
    pub number: u64,
    pub point: &'a Point,
    pub config: NewConfig<'a>,
    pub fold_hash: &'a str,
    pub folds: usize,
}

impl Store {
    /// Registers a trial, its config (in the sweep, current) and the config's fold jobs, in one
    /// IMMEDIATE transaction. False (and nothing written) when another coordinator already
    /// registered this trial number: the caller reads the history again and proposes the next.
    pub fn register_trial(&mut self, trial: &NewTrial) -> anyhow::Result<bool> {
        let point_json = serde_json::to_string(trial.point)?;
        let tx = self.write()?;
        let taken: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM trials WHERE sweep_id = ?1 AND shard = ?2 AND number = ?3",
                params![trial.sweep_id, trial.shard, trial.number as i64],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Ok(false);
        }
        let t = now();
        let c = &trial.config;
        tx.execute(
            "INSERT OR IGNORE INTO configs (id, params, fold_hash, data_fingerprint, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.id, c.params_json, trial.fold_hash, c.data_fingerprint, t],
        )?;
        let position: i64 = tx.query_row(
            "SELECT COUNT(*) FROM sweep_configs WHERE sweep_id = ?1",
            [trial.sweep_id],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO sweep_configs (sweep_id, config_id, varying, label, position, retired_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL)
             ON CONFLICT(sweep_id, config_id) DO UPDATE SET retired_at = NULL",
            params![trial.sweep_id, c.id, c.varying_json, c.label, position],
        )?;
        for fold in 0..trial.folds {
            tx.execute(
                "INSERT OR IGNORE INTO jobs (config_id, fold, status) VALUES (?1, ?2, ?3)",
                params![c.id, fold as i64, JobStatus::Pending],
            )?;
        }
        tx.execute(
            "INSERT INTO trials (sweep_id, shard, number, config_id, point, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![trial.sweep_id, trial.shard, trial.number as i64, c.id, point_json, t],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Retires the sweep's configs that no trial lists (a search's configs are its trials').
    pub fn retire_non_trials(&mut self, sweep_id: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE sweep_configs SET retired_at = ?2 WHERE sweep_id = ?1 AND retired_at IS NULL
             AND config_id NOT IN (SELECT config_id FROM trials WHERE sweep_id = ?1)",
            params![sweep_id, now()],
        )?;
        Ok(())
    }

    /// Every trial of a sweep, by shard then number, with its config's job statuses; what
    /// they add up to (value, state) is `results::trials`'.
    pub fn trial_records(&self, sweep_id: i64) -> anyhow::Result<Vec<TrialRecord>> {
        let raw: Vec<(i64, String, String, String)> = {
            let mut stmt = self.conn.prepare(
                "SELECT number, shard, config_id, point FROM trials WHERE sweep_id = ?1 ORDER BY shard, number",
            )?;
            let rows =
                stmt.query_map([sweep_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        raw.into_iter()
            .map(|(number, shard, config_id, point)| {
                let point: Point = serde_json::from_str(&point)?;
                let statuses = self.config_status_counts(&config_id)?;
                Ok(TrialRecord { number: number as u64, shard, config_id, point, statuses })
            })
            .collect()
    }

    /// (status, count) of a config's jobs.
    fn config_status_counts(&self, config_id: &str) -> anyhow::Result<Vec<(JobStatus, usize)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM jobs WHERE config_id = ?1 GROUP BY status")?;
        let rows =
            stmt.query_map([config_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
