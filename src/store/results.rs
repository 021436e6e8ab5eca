//! Recording what a job reported: every result goes in with one transaction (a crash never
//! leaves half a job), and a rerun replaces what an earlier attempt left.

use rusqlite::{params, Transaction};

use super::*;
use crate::job::{FoldResult, ProbeResult, TestPredictions};
use crate::train::EpochLog;

impl Store {
    /// Records a finished job and all it reported, in one transaction.
    pub fn record_success(
        &mut self,
        job_id: i64,
        result: &FoldResult,
        checkpoint: Option<&str>,
    ) -> anyhow::Result<()> {
        let tx = self.write()?;
        clear_results(&tx, job_id)?;
        insert_result(&tx, job_id, result, checkpoint)?;
        insert_epochs(&tx, job_id, &result.epochs)?;
        tx.execute(
            "UPDATE jobs SET status = ?3, finished_at = ?2, heartbeat = ?2, error = NULL WHERE id = ?1",
            params![job_id, now(), JobStatus::Done],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A job whose training diverged: a result (never retried), with the epoch where it
    /// happened and the learning curve up to there.
    pub fn record_diverged(
        &mut self,
        job_id: i64,
        epoch: usize,
        epochs: &[EpochLog],
        reason: &str,
    ) -> anyhow::Result<()> {
        let tx = self.write()?;
        clear_results(&tx, job_id)?;
        insert_epochs(&tx, job_id, epochs)?;
        tx.execute(
            "UPDATE jobs SET status = ?2, diverged_epoch = ?3, error = ?4, finished_at = ?5, pid = NULL, worker_pid = NULL
             WHERE id = ?1",
            params![job_id, JobStatus::Diverged, epoch as i64, reason, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A job a pruner stopped after `epochs.len()` epochs: a result (never retried), with its
    /// learning curve, where it stopped and why. It has no fold_results row, so no view
    /// counts it as a finished fold.
    pub fn record_pruned(
        &mut self,
        job_id: i64,
        epochs: &[EpochLog],
        reason: &str,
    ) -> anyhow::Result<()> {
        let tx = self.write()?;
        clear_results(&tx, job_id)?;
        insert_epochs(&tx, job_id, epochs)?;
        tx.execute(
            "UPDATE jobs SET status = ?2, pruned_epoch = ?3, pruned_reason = ?4, finished_at = ?5, pid = NULL, worker_pid = NULL
             WHERE id = ?1",
            params![job_id, JobStatus::Pruned, epochs.len() as i64, reason, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A failed attempt: back to pending while attempts remain, else failed for good.
    pub fn record_failure(&self, job_id: i64, error: &str, retry: bool) -> anyhow::Result<()> {
        let status = if retry { JobStatus::Pending } else { JobStatus::Failed };
        self.conn.execute(
            "UPDATE jobs SET status = ?2, error = ?3, finished_at = ?4, pid = NULL, worker_pid = NULL WHERE id = ?1",
            params![job_id, status, error, now()],
        )?;
        Ok(())
    }

    /// A running job's epochs as they come, so `serve` can show them live. Rows from an
    /// earlier attempt at or after the first epoch given are replaced; `record_success`
    /// rewrites them all when the job finishes.
    pub fn record_epochs(&mut self, job_id: i64, epochs: &[EpochLog]) -> anyhow::Result<()> {
        let Some(first) = epochs.first() else {
            return Ok(());
        };
        let tx = self.write()?;
        tx.execute(
            "DELETE FROM epochs WHERE job_id = ?1 AND epoch >= ?2",
            params![job_id, first.epoch as i64],
        )?;
        insert_epochs(&tx, job_id, epochs)?;
        tx.commit()?;
        Ok(())
    }
}

/// A rerun of a job replaces what an earlier attempt may have left.
pub(super) fn clear_results(tx: &Transaction, job_id: i64) -> anyhow::Result<()> {
    for table in [
        "fold_results",
        "bin_results",
        "epochs",
        "oof_predictions",
        "probe_predictions",
        "test_predictions",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE job_id = ?1"), [job_id])?;
    }
    Ok(())
}

pub(super) fn insert_result(
    tx: &Transaction,
    job_id: i64,
    r: &FoldResult,
    checkpoint: Option<&str>,
) -> anyhow::Result<()> {
    let m = &r.metrics;
    tx.execute(
        "INSERT INTO fold_results (job_id, best_epoch, epochs_run, rmse, rounded_rmse, macro_rmse, mean_predictor_rmse,
         train_rows, synthetic_rows, val_rows, train_seconds, checkpoint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            job_id, r.best_epoch as i64, r.epochs_run as i64, m.rmse, m.rounded_rmse, m.macro_rmse, r.mean_predictor_rmse,
            r.train_rows as i64, r.synthetic_rows as i64, r.val_rows as i64, r.train_seconds, checkpoint
        ],
    )?;
    let mut bins =
        tx.prepare("INSERT INTO bin_results (job_id, score, count, rmse) VALUES (?1, ?2, ?3, ?4)")?;
    for b in &m.bins {
        bins.execute(params![job_id, b.score as i64, b.count as i64, b.rmse])?;
    }
    let mut oof = tx.prepare("INSERT INTO oof_predictions (job_id, record, truth, prediction, logvar) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for o in &r.oof {
        oof.execute(params![job_id, o.record as i64, o.truth, o.prediction, o.logvar])?;
    }
    if let Some(probe) = &r.probe {
        insert_probe_result(tx, job_id, probe)?;
    }
    if let Some(test) = &r.test {
        insert_test_predictions(tx, job_id, test)?;
    }
    Ok(())
}

pub(super) fn insert_probe_result(
    tx: &Transaction,
    job_id: i64,
    probe: &ProbeResult,
) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE fold_results SET probe_rmse = ?2, shifted_rmse = ?3, mean_predictor_shifted_rmse = ?4
         WHERE job_id = ?1",
        params![job_id, probe.rmse, probe.shifted_rmse, probe.mean_predictor_shifted_rmse],
    )?;
    let mut stmt = tx.prepare(
        "INSERT INTO probe_predictions (job_id, probe, record, metric_row, prediction)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (i, row) in probe.rows.iter().enumerate() {
        stmt.execute(params![
            job_id,
            i as i64,
            row.record as i64,
            row.metric_row as i64,
            row.prediction
        ])?;
    }
    Ok(())
}

pub(super) fn insert_test_predictions(
    tx: &Transaction,
    job_id: i64,
    test: &TestPredictions,
) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE fold_results SET test_fingerprint = ?2 WHERE job_id = ?1",
        params![job_id, test.fingerprint],
    )?;
    let mut stmt =
        tx.prepare("INSERT INTO test_predictions (job_id, row, prediction) VALUES (?1, ?2, ?3)")?;
    for (row, prediction) in test.predictions.iter().enumerate() {
        stmt.execute(params![job_id, row as i64, prediction])?;
    }
    Ok(())
}

/// The learning curve, one row per epoch.
pub(super) fn insert_epochs(
    tx: &Transaction,
    job_id: i64,
    epochs: &[EpochLog],
) -> anyhow::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO epochs (job_id, epoch, train_loss, val_rmse, lr, seconds, probe_rmse, shifted_rmse)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for e in epochs {
        stmt.execute(params![
            job_id,
            e.epoch as i64,
            storable(e.train_loss),
            storable(e.val_rmse),
            e.lr,
            e.seconds,
            e.probe_rmse.map(storable),
            e.shifted_rmse.map(storable),
        ])?;
    }
    Ok(())
}

/// SQLite stores NaN as NULL, which the epochs table's NOT NULL columns refuse; a diverged
/// epoch's NaN is kept as infinity (still "not a number you can rank").
pub(super) fn storable(value: f64) -> f64 {
    if value.is_nan() {
        f64::INFINITY
    } else {
        value
    }
}
