//! The typed reads of the results database: what `results`, `show`, `report`, `serve` and
//! the sweep loop ask of it.

use anyhow::Context;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::*;
use crate::train::EpochLog;

/// A config as a sweep lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepConfigRow {
    pub config_id: String,
    pub label: String,
    pub varying_json: String,
    pub position: usize,
    pub fold_hash: String,
    /// No longer in the sweep's current definition (its results stay).
    pub retired: bool,
}

/// One finished fold's headline numbers, what the pruners, the objective and compare read
/// (fewer than a [`FoldResultRow`], with the row counts racing needs).
#[derive(Debug, Clone, PartialEq)]
pub struct FoldMetrics {
    pub fold: usize,
    pub rmse: f64,
    pub macro_rmse: f64,
    /// With probes: the fold's probe and shifted RMSE.
    pub probe_rmse: Option<f64>,
    pub shifted_rmse: Option<f64>,
    /// With data.test: the fingerprint of the test files the fold predicted.
    pub test_fingerprint: Option<String>,
    pub val_rows: usize,
    pub train_rows: usize,
    pub checkpoint: Option<String>,
}

/// A validation row's out-of-fold prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OofRow {
    pub fold: usize,
    pub record: usize,
    pub truth: f64,
    pub prediction: f64,
}

/// A probe row's prediction (a validation record's text with another metric).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeRow {
    pub fold: usize,
    pub probe: usize,
    pub record: usize,
    pub metric_row: usize,
    pub prediction: f64,
}

/// A sweep as the sweeps list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepListing {
    pub id: i64,
    pub name: String,
    pub folds: usize,
    pub updated_at: f64,
}

/// A running job of a sweep with the latest epoch its coordinator has written, if any
/// (`epoch`, `val_rmse`, `shifted_rmse`: empty in the job's first second).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningJob {
    #[serde(rename = "config")]
    pub config_id: String,
    pub label: String,
    pub fold: usize,
    pub attempt: u32,
    pub device: Option<String>,
    pub host: Option<String>,
    pub started_at: Option<f64>,
    pub heartbeat: Option<f64>,
    pub epoch: Option<usize>,
    pub val_rmse: Option<f64>,
    pub shifted_rmse: Option<f64>,
}

/// A sweep that lists a config, with the config's label there.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSweep {
    pub sweep_id: i64,
    pub name: String,
    pub label: String,
}

/// A finished fold's `fold_results` row: the figures of the [`crate::job::FoldResult`] the
/// store keeps, as `show` and `status` read them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldResultRow {
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub rmse: f64,
    pub rounded_rmse: f64,
    pub macro_rmse: f64,
    pub mean_predictor_rmse: f64,
    pub val_rows: usize,
    pub train_seconds: f64,
    pub probe_rmse: Option<f64>,
    pub shifted_rmse: Option<f64>,
}

/// One job of a config with its times, error and result (`show`, `serve`'s config page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    #[serde(skip)]
    pub id: i64,
    pub fold: usize,
    pub status: JobStatus,
    pub attempt: u32,
    pub device: Option<String>,
    pub host: Option<String>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub error: Option<String>,
    pub diverged_epoch: Option<usize>,
    pub outcome: Option<FoldResultRow>,
}

/// The query behind [`Store::oof_predictions`], the one `results` runs for every config.
pub(super) const OOF_OF_CONFIG: &str = "SELECT o.truth, o.prediction FROM oof_predictions o
     JOIN jobs j ON j.id = o.job_id WHERE j.config_id = ?1 AND +j.status = ?2";

impl Store {
    pub fn config_params(&self, config_id: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT params FROM configs WHERE id = ?1", [config_id], |r| r.get(0))
            .optional()?)
    }

    /// (value at `epoch`) of every job of this sweep's fold `fold` that recorded it, except the
    /// jobs in `except_jobs`: the asking job and the ones whose values the caller holds in
    /// memory (its running slots), so that every job counts once.
    pub fn rung_values(
        &self,
        sweep_id: i64,
        fold: usize,
        epoch: usize,
        except_jobs: &[i64],
        monitor: crate::probe::Monitor,
    ) -> anyhow::Result<Vec<f64>> {
        // The monitored figure (`EpochLog::monitored`): shifted RMSE where the job recorded one.
        let column = match monitor {
            crate::probe::Monitor::Shifted => "COALESCE(e.shifted_rmse, e.val_rmse)",
            crate::probe::Monitor::Rmse => "e.val_rmse",
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT j.id, {column} FROM epochs e JOIN jobs j ON j.id = e.job_id
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.fold = ?2 AND e.epoch = ?3"
        ))?;
        let rows = stmt.query_map(params![sweep_id, fold as i64, epoch as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
        })?;
        let mut values = Vec::new();
        for row in rows {
            let (job, value) = row?;
            if !except_jobs.contains(&job) {
                values.push(value);
            }
        }
        Ok(values)
    }

    pub fn sweep_id(&self, name: &str) -> anyhow::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT id FROM sweeps WHERE name = ?1", [name], |r| r.get(0))
            .optional()?)
    }

    /// The named sweep, or the most recently updated one.
    pub fn resolve_sweep(&self, name: Option<&str>) -> anyhow::Result<(i64, String)> {
        let row = match name {
            Some(name) => self
                .conn
                .query_row("SELECT id, name FROM sweeps WHERE name = ?1", [name], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?,
            None => self
                .conn
                .query_row(
                    "SELECT id, name FROM sweeps ORDER BY updated_at DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
        };
        row.ok_or_else(|| {
            let what = name.map_or("no sweep".to_string(), |n| format!("no sweep named {n:?}"));
            crate::error::InputError::in_file(&self.path, format!("{what} in this database")).into()
        })
    }

    /// A sweep's name and fold count.
    pub fn sweep_head(&self, sweep_id: i64) -> anyhow::Result<(String, usize)> {
        let (name, folds): (String, i64) = self
            .conn
            .query_row("SELECT name, folds FROM sweeps WHERE id = ?1", [sweep_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .with_context(|| format!("no sweep with id {sweep_id} in {}", self.path.display()))?;
        Ok((name, folds as usize))
    }

    /// The sweep's configs in grid order; retired ones only when asked.
    pub fn sweep_configs(
        &self,
        sweep_id: i64,
        include_retired: bool,
    ) -> anyhow::Result<Vec<SweepConfigRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.config_id, s.label, s.varying, s.position, c.fold_hash, s.retired_at IS NOT NULL
             FROM sweep_configs s JOIN configs c ON c.id = s.config_id
             WHERE s.sweep_id = ?1 AND (?2 OR s.retired_at IS NULL) ORDER BY s.retired_at IS NOT NULL, s.position",
        )?;
        let rows = stmt.query_map(params![sweep_id, include_retired], |r| {
            Ok(SweepConfigRow {
                config_id: r.get(0)?,
                label: r.get(1)?,
                varying_json: r.get(2)?,
                position: r.get::<_, i64>(3)? as usize,
                fold_hash: r.get(4)?,
                retired: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Job counts per status of the sweep's current configs.
    pub fn status_counts(
        &self,
        sweep_id: i64,
    ) -> anyhow::Result<std::collections::BTreeMap<JobStatus, usize>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.status, COUNT(*) FROM jobs j JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL GROUP BY j.status",
        )?;
        let rows = stmt.query_map([sweep_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // The queries of one config's jobs write `+status` (and `+j.status`): the unary plus keeps
    // SQLite from choosing the `jobs_by_status` index over the (config_id, fold) one. Without
    // statistics it picked status, and each query scanned every done job of the database: a
    // config's OOF rows took 9 ms in a 10,000-config sweep, and `results` 73 s (issue 20).

    /// How many jobs of a config are in `status`.
    pub fn config_jobs_in(&self, config_id: &str, status: JobStatus) -> anyhow::Result<usize> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM jobs WHERE config_id = ?1 AND +status = ?2",
            params![config_id, status],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    /// The finished folds of a config, in fold order.
    pub fn fold_metrics(&self, config_id: &str) -> anyhow::Result<Vec<FoldMetrics>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, r.rmse, r.macro_rmse, r.val_rows, r.train_rows, r.checkpoint,
                    r.probe_rmse, r.shifted_rmse, r.test_fingerprint
             FROM jobs j JOIN fold_results r ON r.job_id = j.id
             WHERE j.config_id = ?1 AND +j.status = ?2 ORDER BY j.fold",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok(FoldMetrics {
                fold: r.get::<_, i64>(0)? as usize,
                rmse: r.get(1)?,
                macro_rmse: r.get(2)?,
                val_rows: r.get::<_, i64>(3)? as usize,
                train_rows: r.get::<_, i64>(4)? as usize,
                checkpoint: r.get(5)?,
                probe_rmse: r.get(6)?,
                shifted_rmse: r.get(7)?,
                test_fingerprint: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (truth, prediction) of every finished fold's validation rows of a config.
    pub fn oof_predictions(&self, config_id: &str) -> anyhow::Result<Vec<(f64, f64)>> {
        let mut stmt = self.conn.prepare(OOF_OF_CONFIG)?;
        let rows =
            stmt.query_map(params![config_id, JobStatus::Done], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every finished fold's validation rows of a config, in record order.
    pub fn oof_rows(&self, config_id: &str) -> anyhow::Result<Vec<OofRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, o.record, o.truth, o.prediction FROM oof_predictions o
             JOIN jobs j ON j.id = o.job_id WHERE j.config_id = ?1 AND +j.status = ?2
             ORDER BY o.record",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok(OofRow {
                fold: r.get::<_, i64>(0)? as usize,
                record: r.get::<_, i64>(1)? as usize,
                truth: r.get(2)?,
                prediction: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every finished fold's probe rows of a config, in fold then probe order (the same rows
    /// for every config of a sweep).
    pub fn probe_rows(&self, config_id: &str) -> anyhow::Result<Vec<ProbeRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, p.probe, p.record, p.metric_row, p.prediction FROM probe_predictions p
             JOIN jobs j ON j.id = p.job_id WHERE j.config_id = ?1 AND +j.status = ?2
             ORDER BY j.fold, p.probe",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok(ProbeRow {
                fold: r.get::<_, i64>(0)? as usize,
                probe: r.get::<_, i64>(1)? as usize,
                record: r.get::<_, i64>(2)? as usize,
                metric_row: r.get::<_, i64>(3)? as usize,
                prediction: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Each finished fold's test predictions of a config: (fold, predictions in test order).
    pub fn test_predictions(&self, config_id: &str) -> anyhow::Result<Vec<(usize, Vec<f64>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, t.prediction FROM test_predictions t JOIN jobs j ON j.id = t.job_id
             WHERE j.config_id = ?1 AND +j.status = ?2 ORDER BY j.fold, t.row",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok((r.get::<_, i64>(0)? as usize, r.get::<_, f64>(1)?))
        })?;
        let mut folds: Vec<(usize, Vec<f64>)> = Vec::new();
        for row in rows {
            let (fold, prediction) = row?;
            match folds.last_mut() {
                Some((last, predictions)) if *last == fold => predictions.push(prediction),
                _ => folds.push((fold, vec![prediction])),
            }
        }
        Ok(folds)
    }

    /// (fold, epoch, validation RMSE) of a config's finished folds, in fold then epoch order.
    pub fn learning_curves(&self, config_id: &str) -> anyhow::Result<Vec<(usize, usize, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, e.epoch, e.val_rmse FROM epochs e JOIN jobs j ON j.id = e.job_id
             WHERE j.config_id = ?1 AND +j.status = ?2 ORDER BY j.fold, e.epoch",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok((r.get::<_, i64>(0)? as usize, r.get::<_, i64>(1)? as usize, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Validation RMSE per epoch of one job.
    pub fn job_curve(&self, job_id: i64) -> anyhow::Result<Vec<f64>> {
        let mut stmt =
            self.conn.prepare("SELECT val_rmse FROM epochs WHERE job_id = ?1 ORDER BY epoch")?;
        let rows = stmt.query_map([job_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (score, count, mean squared error, mean prediction) of a config's pooled out-of-fold
    /// predictions per rounded true score.
    pub fn oof_by_score(&self, config_id: &str) -> anyhow::Result<Vec<(i64, i64, f64, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT CAST(ROUND(o.truth) AS INTEGER) AS s, COUNT(*), AVG((o.prediction - o.truth) * (o.prediction - o.truth)), AVG(o.prediction)
             FROM oof_predictions o JOIN jobs j ON j.id = o.job_id WHERE j.config_id = ?1 AND +j.status = ?2 GROUP BY s ORDER BY s",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A config's label in (one of) the sweeps that list it.
    pub fn config_label(&self, config_id: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT label FROM sweep_configs WHERE config_id = ?1 ORDER BY retired_at IS NOT NULL LIMIT 1",
                [config_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The sweep file's text as last run.
    pub fn sweep_definition(&self, sweep_id: i64) -> anyhow::Result<String> {
        Ok(self
            .conn
            .query_row("SELECT definition FROM sweeps WHERE id = ?1", [sweep_id], |r| r.get(0))?)
    }

    /// A sweep that lists the config (a current one first).
    pub fn sweep_of_config(&self, config_id: &str) -> anyhow::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sweep_id FROM sweep_configs WHERE config_id = ?1 ORDER BY retired_at IS NOT NULL LIMIT 1",
                [config_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every sweep, most recently updated first.
    pub fn sweep_list(&self) -> anyhow::Result<Vec<SweepListing>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, folds, updated_at FROM sweeps ORDER BY updated_at DESC")?;
        let rows = stmt.query_map([], |r| {
            Ok(SweepListing {
                id: r.get(0)?,
                name: r.get(1)?,
                folds: r.get::<_, i64>(2)? as usize,
                updated_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The running jobs of a sweep's current configs, oldest first, each with the latest
    /// epoch the coordinator has written (about once a second).
    pub fn running_jobs(&self, sweep_id: i64) -> anyhow::Result<Vec<RunningJob>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.config_id, s.label, j.fold, j.attempt, j.device, j.host, j.started_at, j.heartbeat,
                    e.epoch, e.val_rmse, e.shifted_rmse
             FROM jobs j JOIN sweep_configs s ON s.config_id = j.config_id
             LEFT JOIN epochs e ON e.job_id = j.id
                  AND e.epoch = (SELECT MAX(epoch) FROM epochs WHERE job_id = j.id)
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2
             ORDER BY j.started_at, s.position, j.fold",
        )?;
        let rows = stmt.query_map(params![sweep_id, JobStatus::Running], |r| {
            Ok(RunningJob {
                config_id: r.get(0)?,
                label: r.get(1)?,
                fold: r.get::<_, i64>(2)? as usize,
                attempt: r.get(3)?,
                device: r.get(4)?,
                host: r.get(5)?,
                started_at: r.get(6)?,
                heartbeat: r.get(7)?,
                epoch: r.get::<_, Option<i64>>(8)?.map(|e| e as usize),
                val_rmse: r.get(9)?,
                shifted_rmse: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Mean wall time of the finished jobs of a sweep's current configs; None before the first.
    pub fn mean_job_seconds(&self, sweep_id: i64) -> anyhow::Result<Option<f64>> {
        Ok(self.conn.query_row(
            "SELECT AVG(j.finished_at - j.started_at) FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2
                   AND j.started_at IS NOT NULL AND j.finished_at IS NOT NULL",
            params![sweep_id, JobStatus::Done],
            |r| r.get(0),
        )?)
    }

    /// The sweeps that list a config, most recently updated first.
    pub fn config_sweeps(&self, config_id: &str) -> anyhow::Result<Vec<ConfigSweep>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.sweep_id, w.name, s.label FROM sweep_configs s JOIN sweeps w ON w.id = s.sweep_id
             WHERE s.config_id = ?1 ORDER BY s.retired_at IS NOT NULL, w.updated_at DESC",
        )?;
        let rows = stmt.query_map([config_id], |r| {
            Ok(ConfigSweep { sweep_id: r.get(0)?, name: r.get(1)?, label: r.get(2)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every job of a config with its times, error and result, in fold order.
    pub fn job_records(&self, config_id: &str) -> anyhow::Result<Vec<JobRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.id, j.fold, j.status, j.attempt, j.device, j.host, j.started_at, j.finished_at,
                    j.error, j.diverged_epoch, r.best_epoch, r.epochs_run, r.rmse, r.rounded_rmse,
                    r.macro_rmse, r.mean_predictor_rmse, r.val_rows, r.train_seconds, r.probe_rmse,
                    r.shifted_rmse
             FROM jobs j LEFT JOIN fold_results r ON r.job_id = j.id
             WHERE j.config_id = ?1 ORDER BY j.fold",
        )?;
        let rows = stmt.query_map([config_id], |r| {
            let outcome = match r.get::<_, Option<i64>>(10)? {
                Some(best_epoch) => Some(FoldResultRow {
                    best_epoch: best_epoch as usize,
                    epochs_run: r.get::<_, i64>(11)? as usize,
                    rmse: r.get(12)?,
                    rounded_rmse: r.get(13)?,
                    macro_rmse: r.get(14)?,
                    mean_predictor_rmse: r.get(15)?,
                    val_rows: r.get::<_, i64>(16)? as usize,
                    train_seconds: r.get(17)?,
                    probe_rmse: r.get(18)?,
                    shifted_rmse: r.get(19)?,
                }),
                None => None,
            };
            Ok(JobRecord {
                id: r.get(0)?,
                fold: r.get::<_, i64>(1)? as usize,
                status: r.get(2)?,
                attempt: r.get(3)?,
                device: r.get(4)?,
                host: r.get(5)?,
                started_at: r.get(6)?,
                finished_at: r.get(7)?,
                error: r.get(8)?,
                diverged_epoch: r.get::<_, Option<i64>>(9)?.map(|e| e as usize),
                outcome,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every epoch one job has recorded so far (a running job's too), in order.
    pub fn job_epochs(&self, job_id: i64) -> anyhow::Result<Vec<EpochLog>> {
        let mut stmt = self.conn.prepare(
            "SELECT epoch, train_loss, val_rmse, lr, seconds, probe_rmse, shifted_rmse
             FROM epochs WHERE job_id = ?1 ORDER BY epoch",
        )?;
        let rows = stmt.query_map([job_id], |r| {
            Ok(EpochLog {
                epoch: r.get::<_, i64>(0)? as usize,
                train_loss: r.get(1)?,
                val_rmse: r.get(2)?,
                lr: r.get(3)?,
                seconds: r.get(4)?,
                probe_rmse: r.get(5)?,
                shifted_rmse: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
