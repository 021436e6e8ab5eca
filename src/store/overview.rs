//! What a sweep's jobs did, for `foldsweep status` (issue 18): when they ran, which failed
//! and why, and which coordinators own running jobs now. Reads only.

use rusqlite::params;
use serde::Serialize;

use super::*;

/// The first start and the last finish among a sweep's current jobs (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct SweepTimes {
    pub first_started: Option<f64>,
    pub last_finished: Option<f64>,
}

/// A failed job with its stored error text.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedJob {
    pub config_id: String,
    pub fold: usize,
    pub error: String,
}

/// A coordinator that owns running jobs of a sweep, as the jobs table has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coordinator {
    pub host: String,
    pub pid: i64,
    /// Its start time (clock ticks since boot); None for a schema-v1 claim.
    #[serde(skip)]
    pub owner_start: Option<i64>,
    /// Its latest heartbeat over its running jobs (unix seconds).
    pub heartbeat: Option<f64>,
    pub running_jobs: usize,
}

impl Store {
    pub fn sweep_times(&self, sweep_id: i64) -> anyhow::Result<SweepTimes> {
        Ok(self.conn.query_row(
            "SELECT MIN(j.started_at), MAX(j.finished_at) FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL",
            [sweep_id],
            |r| Ok(SweepTimes { first_started: r.get(0)?, last_finished: r.get(1)? }),
        )?)
    }

    /// The failed jobs of a sweep's current configs, in the sweep's order.
    pub fn failed_jobs(&self, sweep_id: i64) -> anyhow::Result<Vec<FailedJob>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.config_id, j.fold, COALESCE(j.error, '') FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2
             ORDER BY s.position, j.fold",
        )?;
        let rows = stmt.query_map(params![sweep_id, JobStatus::Failed], |r| {
            Ok(FailedJob {
                config_id: r.get(0)?,
                fold: r.get::<_, i64>(1)? as usize,
                error: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The coordinators that own the sweep's running jobs, grouped by host and pid.
    pub fn coordinators(&self, sweep_id: i64) -> anyhow::Result<Vec<Coordinator>> {
        let mut stmt = self.conn.prepare(
            "SELECT COALESCE(j.host, ''), j.pid, j.owner_start, MAX(j.heartbeat), COUNT(*) FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2 AND j.pid IS NOT NULL
             GROUP BY j.host, j.pid, j.owner_start ORDER BY MIN(j.started_at)",
        )?;
        let rows = stmt.query_map(params![sweep_id, JobStatus::Running], |r| {
            Ok(Coordinator {
                host: r.get(0)?,
                pid: r.get(1)?,
                owner_start: r.get(2)?,
                heartbeat: r.get(3)?,
                running_jobs: r.get::<_, i64>(4)? as usize,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The ids of a sweep's current configs.
    pub fn current_config_ids(&self, sweep_id: i64) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT config_id FROM sweep_configs WHERE sweep_id = ?1 AND retired_at IS NULL
             ORDER BY position",
        )?;
        let rows = stmt.query_map([sweep_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
