//! The job queue: registering a sweep's jobs, claiming the next one (exactly once across
//! coordinators), heartbeats, pruning and requeueing, and taking back the jobs of a coordinator
//! that is gone.

use rusqlite::{params, Transaction};

use super::*;
use crate::util::process::{owner_running, process_start_time};

/// A job as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub config_id: String,
    pub fold: usize,
    pub status: JobStatus,
    pub attempt: u32,
}

/// This process as a job owner: its pid and start time (clock ticks since boot), which
/// together name it even after the pid is reused.
pub(super) fn own_identity() -> (u32, Option<i64>) {
    let pid = std::process::id();
    (pid, process_start_time(pid as i64))
}

impl Store {
    /// Registers a sweep (or updates its definition), its configs and the given (config, fold)
    /// jobs, idempotently: jobs already known are left as they are, only new ones are added.
    /// The definition decides the configs: those of an earlier definition that `configs` lacks
    /// are retired (their results stay, they are never run or ranked), and a retired config
    /// that is listed again comes back. Returns the sweep id and how many jobs were added.
    pub fn register_sweep(
        &mut self,
        sweep: &SweepDefinition,
        configs: &[NewConfig],
        jobs: &[(String, usize)],
    ) -> anyhow::Result<(i64, usize)> {
        let tx = self.write()?;
        let t = now();
        tx.execute(
            "INSERT INTO sweeps (name, definition, data_fingerprint, fold_hash, folds, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT(name) DO UPDATE SET definition = ?2, data_fingerprint = ?3, fold_hash = ?4, folds = ?5, updated_at = ?6",
            params![sweep.name, sweep.definition, sweep.data_fingerprint, sweep.fold_hash, sweep.folds as i64, t],
        )?;
        let sweep_id: i64 =
            tx.query_row("SELECT id FROM sweeps WHERE name = ?1", [sweep.name], |r| r.get(0))?;
        // Retire everything, then bring back what the definition lists.
        tx.execute(
            "UPDATE sweep_configs SET retired_at = ?2 WHERE sweep_id = ?1 AND retired_at IS NULL
             AND NOT (?3 AND config_id IN (SELECT config_id FROM trials WHERE sweep_id = ?1))",
            params![sweep_id, t, sweep.keep_trials],
        )?;
        for (position, c) in configs.iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO configs (id, params, fold_hash, data_fingerprint, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.id, c.params_json, sweep.fold_hash, c.data_fingerprint, t],
            )?;
            tx.execute(
                "INSERT INTO sweep_configs (sweep_id, config_id, varying, label, position, retired_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL)
                 ON CONFLICT(sweep_id, config_id) DO UPDATE SET varying = ?3, label = ?4, position = ?5, retired_at = NULL",
                params![sweep_id, c.id, c.varying_json, c.label, position as i64],
            )?;
        }
        let mut added = 0;
        for (config_id, fold) in jobs {
            added += tx.execute(
                "INSERT OR IGNORE INTO jobs (config_id, fold, status) VALUES (?1, ?2, ?3)",
                params![config_id, *fold as i64, JobStatus::Pending],
            )?;
        }
        tx.commit()?;
        Ok((sweep_id, added))
    }

    /// Makes failed and interrupted jobs of a sweep's current configs runnable again (a rerun
    /// retries them), and requeues jobs left `running` by a coordinator that no longer exists.
    pub fn requeue_for_rerun(&mut self, sweep_id: i64) -> anyhow::Result<usize> {
        let tx = self.write()?;
        let mut requeued = requeue_stale(&tx, sweep_id)?;
        requeued += tx.execute(
            "UPDATE jobs SET status = ?2, attempt = 0 WHERE status IN (?3, ?4)
             AND config_id IN (SELECT config_id FROM sweep_configs WHERE sweep_id = ?1 AND retired_at IS NULL)",
            params![sweep_id, JobStatus::Pending, JobStatus::Failed, JobStatus::Interrupted],
        )?;
        tx.commit()?;
        Ok(requeued)
    }

    /// Jobs of a sweep's current configs in a given status, in grid order then fold order.
    pub fn jobs(&self, sweep_id: i64, status: JobStatus) -> anyhow::Result<Vec<JobRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.id, j.config_id, j.fold, j.status, j.attempt FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2 ORDER BY s.position, j.fold",
        )?;
        let rows = stmt.query_map(params![sweep_id, status], job_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Claims the first pending job of the sweep (in grid order) that `filter` admits for this
    /// coordinator, or None when none is left. One write transaction requeues jobs whose owner
    /// is gone and claims, so two coordinators never take the same job and never both decide
    /// that a dead owner's job is theirs.
    /// `racing`: an incumbent first, then fold-major. Until some config has finished every
    /// fold (none diverged), grid order, so the first config's folds run first and become the
    /// incumbent racing compares against; then every config's fold 0 before any fold 1, and so
    /// on, so each config is judged on its first folds before it spends compute on later ones.
    pub fn claim_next(
        &mut self,
        sweep_id: i64,
        device: &str,
        filter: JobFilter,
        racing: bool,
    ) -> anyhow::Result<Option<JobRow>> {
        let (pid, start) = own_identity();
        let tx = self.write()?;
        requeue_stale(&tx, sweep_id)?;
        let fold_major = racing && has_a_complete_config(&tx, sweep_id)?;
        let order = if fold_major { "j.fold, s.position" } else { "s.position, j.fold" };
        let pending: Vec<JobRow> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT j.id, j.config_id, j.fold, j.status, j.attempt FROM jobs j
                 JOIN sweep_configs s ON s.config_id = j.config_id
                 WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2 ORDER BY {order}",
            ))?;
            let rows = stmt.query_map(params![sweep_id, JobStatus::Pending], job_row)?;
            rows.collect::<Result<_, _>>()?
        };
        let Some(mut job) = pending.into_iter().find(|j| filter(&j.config_id, j.fold)) else {
            return Ok(None);
        };
        let t = now();
        tx.execute(
            "UPDATE jobs SET status = ?2, attempt = attempt + 1, device = ?3, host = ?4, pid = ?5, owner_start = ?6,
             worker_pid = NULL, heartbeat = ?7, started_at = ?7, finished_at = NULL, error = NULL, diverged_epoch = NULL
             WHERE id = ?1",
            params![job.id, JobStatus::Running, device, hostname(), pid, start, t],
        )?;
        tx.commit()?;
        job.status = JobStatus::Running;
        job.attempt += 1;
        Ok(Some(job))
    }

    /// How many jobs of the sweep's current configs that `filter` admits are in `status`.
    pub fn count_jobs(
        &self,
        sweep_id: i64,
        status: JobStatus,
        filter: JobFilter,
    ) -> anyhow::Result<usize> {
        Ok(self.jobs(sweep_id, status)?.iter().filter(|j| filter(&j.config_id, j.fold)).count())
    }

    pub fn set_worker_pid(&self, job_id: i64, worker_pid: u32) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE jobs SET worker_pid = ?2 WHERE id = ?1",
            params![job_id, worker_pid],
        )?;
        Ok(())
    }

    pub fn heartbeat(&self, job_id: i64) -> anyhow::Result<()> {
        self.conn
            .execute("UPDATE jobs SET heartbeat = ?2 WHERE id = ?1", params![job_id, now()])?;
        Ok(())
    }

    /// Racing pruned a config: its pending jobs become `pruned` (epoch 0) and never run.
    /// Returns how many.
    pub fn prune_pending(&mut self, config_id: &str, reason: &str) -> anyhow::Result<usize> {
        let tx = self.write()?;
        let n = tx.execute(
            "UPDATE jobs SET status = ?2, pruned_epoch = 0, pruned_reason = ?3, finished_at = ?4
             WHERE config_id = ?1 AND +status IN (?5, ?6)",
            params![
                config_id,
                JobStatus::Pruned,
                reason,
                now(),
                JobStatus::Pending,
                JobStatus::Interrupted
            ],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// `run --no-prune`: the sweep's pruned jobs run again, to the end.
    pub fn requeue_pruned(&mut self, sweep_id: i64) -> anyhow::Result<usize> {
        let tx = self.write()?;
        let n = tx.execute(
            "UPDATE jobs SET status = ?2, attempt = 0, pruned_epoch = NULL, pruned_reason = NULL WHERE status = ?3
             AND config_id IN (SELECT config_id FROM sweep_configs WHERE sweep_id = ?1 AND retired_at IS NULL)",
            params![sweep_id, JobStatus::Pending, JobStatus::Pruned],
        )?;
        tx.commit()?;
        Ok(n)
    }

    pub fn mark_interrupted(&self, job_id: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE jobs SET status = ?2, error = 'interrupted by Ctrl-C', finished_at = ?3, pid = NULL WHERE id = ?1",
            params![job_id, JobStatus::Interrupted, now()],
        )?;
        Ok(())
    }
}

pub(super) fn job_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        config_id: r.get(1)?,
        fold: r.get::<_, i64>(2)? as usize,
        status: r.get(3)?,
        attempt: r.get(4)?,
    })
}

/// A live coordinator heartbeats its jobs every 5 s; ten minutes of silence means it is gone.
fn heartbeat_fresh(heartbeat: Option<f64>) -> bool {
    heartbeat.is_some_and(|hb| now() - hb < 600.0)
}

/// Who holds a running job.
pub(super) struct Claim {
    job_id: i64,
    host: Option<String>,
    pid: Option<i64>,
    owner_start: Option<i64>,
    heartbeat: Option<f64>,
}

impl Claim {
    /// Whether the coordinator that claimed the job still runs (as seen from `host`).
    pub(super) fn owner_alive(&self, host: &str) -> bool {
        match (self.host.as_deref(), self.pid) {
            // A claim without a start time (schema 1) cannot tell its coordinator from a
            // process that reused the pid: it also needs a heartbeat, as on another machine.
            (Some(h), Some(pid)) if h == host => {
                owner_running(pid, self.owner_start)
                    && (self.owner_start.is_some() || heartbeat_fresh(self.heartbeat))
            }
            _ => heartbeat_fresh(self.heartbeat),
        }
    }

    /// The claim on job `job_id`, read in `tx`; None when the job is not running.
    pub(super) fn of_running_job(tx: &Transaction, job_id: i64) -> rusqlite::Result<Option<Claim>> {
        use rusqlite::OptionalExtension;
        tx.query_row(
            "SELECT id, host, pid, owner_start, heartbeat FROM jobs WHERE id = ?1 AND status = ?2",
            params![job_id, JobStatus::Running],
            |r| {
                Ok(Claim {
                    job_id: r.get(0)?,
                    host: r.get(1)?,
                    pid: r.get(2)?,
                    owner_start: r.get(3)?,
                    heartbeat: r.get(4)?,
                })
            },
        )
        .optional()
    }
}

/// Requeues the sweep's jobs left `running` by a coordinator that is gone. On this machine the
/// owner is identified by pid and start time, so a reused pid (PID 1 of a restarted container)
/// does not keep a dead coordinator's jobs alive (a schema-1 claim, with no start time, also
/// needs a fresh heartbeat); another machine's jobs count as alive while
/// their heartbeat is under ten minutes old.
pub(super) fn requeue_stale(tx: &Transaction, sweep_id: i64) -> anyhow::Result<usize> {
    let host = hostname();
    let running: Vec<Claim> = {
        let mut stmt = tx.prepare(
            "SELECT j.id, j.host, j.pid, j.owner_start, j.heartbeat FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND j.status = ?2",
        )?;
        let rows = stmt.query_map(params![sweep_id, JobStatus::Running], |r| {
            Ok(Claim {
                job_id: r.get(0)?,
                host: r.get(1)?,
                pid: r.get(2)?,
                owner_start: r.get(3)?,
                heartbeat: r.get(4)?,
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut requeued = 0;
    for claim in running {
        if !claim.owner_alive(&host) {
            requeued += tx.execute(
                "UPDATE jobs SET status = ?2, pid = NULL, owner_start = NULL, worker_pid = NULL WHERE id = ?1",
                params![claim.job_id, JobStatus::Pending],
            )?;
        }
    }
    Ok(requeued)
}

/// Whether a current config of the sweep has every job done and none diverged.
fn has_a_complete_config(tx: &Transaction, sweep_id: i64) -> anyhow::Result<bool> {
    let complete: i64 = tx.query_row(
        "SELECT COUNT(*) FROM (SELECT j.config_id FROM jobs j
         JOIN sweep_configs s ON s.config_id = j.config_id
         WHERE s.sweep_id = ?1 AND s.retired_at IS NULL GROUP BY j.config_id
         HAVING SUM(j.status = ?2 AND j.diverged_epoch IS NULL) = COUNT(*))",
        params![sweep_id, JobStatus::Done],
        |r| r.get(0),
    )?;
    Ok(complete > 0)
}
