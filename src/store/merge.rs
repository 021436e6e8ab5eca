//! The SQL of `foldsweep merge` (the rules are in `sweep::merge`): a shard database is
//! attached and its rows copied across in one transaction.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{JobStatus, Store};
use crate::error::InputError;
use crate::util::same_file;

/// Columns of the per-job result tables, after `job_id`.
const RESULT_TABLES: &[(&str, &str)] = &[
    ("fold_results", "best_epoch, epochs_run, rmse, rounded_rmse, macro_rmse, mean_predictor_rmse, train_rows, synthetic_rows, val_rows, train_seconds, checkpoint, probe_rmse, shifted_rmse, mean_predictor_shifted_rmse, test_fingerprint"),
    ("bin_results", "score, count, rmse"),
    ("epochs", "epoch, train_loss, val_rmse, lr, seconds, probe_rmse, shifted_rmse"),
    ("oof_predictions", "record, truth, prediction, logvar"),
    ("probe_predictions", "probe, record, metric_row, prediction"),
    ("test_predictions", "row, prediction"),
];

impl Store {
    /// Copies a shard database's sweeps, configs and finished jobs (with everything they
    /// recorded) into this one, in one transaction; see `sweep::merge` for the rules.
    /// Returns (jobs added, jobs already done here).
    pub fn merge_shard(&mut self, shard: &Path) -> anyhow::Result<(usize, usize)> {
        let target_dir = self.base_dir();
        let shard_dir = shard
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let conn = &mut self.conn;
        conn.execute("ATTACH DATABASE ?1 AS shard", [shard.to_string_lossy()])?;
        let result = (|| -> anyhow::Result<(usize, usize)> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            check_sweeps_agree(&tx, shard)?;
            tx.execute_batch(
            "INSERT OR IGNORE INTO sweeps (name, definition, data_fingerprint, fold_hash, folds, created_at, updated_at)
                 SELECT name, definition, data_fingerprint, fold_hash, folds, created_at, updated_at FROM shard.sweeps;
             INSERT OR IGNORE INTO configs SELECT * FROM shard.configs;
             INSERT OR IGNORE INTO sweep_configs (sweep_id, config_id, varying, label, position, retired_at)
                 SELECT t.id, s.config_id, s.varying, s.label, s.position, s.retired_at
                 FROM shard.sweep_configs s JOIN shard.sweeps ss ON ss.id = s.sweep_id JOIN main.sweeps t ON t.name = ss.name;
             INSERT OR IGNORE INTO trials (sweep_id, shard, number, config_id, point, created_at)
                 SELECT t.id, tr.shard, tr.number, tr.config_id, tr.point, tr.created_at
                 FROM shard.trials tr JOIN shard.sweeps ss ON ss.id = tr.sweep_id JOIN main.sweeps t ON t.name = ss.name;",
        )?;
            let shard_jobs: Vec<(i64, String, i64, JobStatus)> = {
                let mut stmt = tx.prepare("SELECT id, config_id, fold, status FROM shard.jobs")?;
                let rows =
                    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            let (mut added, mut present) = (0, 0);
            for (shard_job, config_id, fold, status) in shard_jobs {
                let existing: Option<(i64, JobStatus)> = tx
                    .query_row(
                        "SELECT id, status FROM jobs WHERE config_id = ?1 AND fold = ?2",
                        params![config_id, fold],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match (&existing, status) {
                    (Some((_, s)), _) if s.is_result() => {
                        present += 1;
                        continue;
                    }
                    (_, s) if s.is_result() => {}
                    // A job the shard did not finish adds nothing a target does not already know.
                    (Some(_), _) => continue,
                    (None, _) => {}
                }
                if let Some((id, _)) = existing {
                    for (table, _) in RESULT_TABLES {
                        tx.execute(&format!("DELETE FROM {table} WHERE job_id = ?1"), [id])?;
                    }
                    tx.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
                }
                tx.execute(
                "INSERT INTO jobs (config_id, fold, status, attempt, device, host, pid, worker_pid, heartbeat, started_at, finished_at, error, diverged_epoch, pruned_epoch, pruned_reason)
                 SELECT config_id, fold, status, attempt, device, host, NULL, NULL, heartbeat, started_at, finished_at, error, diverged_epoch, pruned_epoch, pruned_reason
                 FROM shard.jobs WHERE id = ?1",
                [shard_job],
            )?;
                let new_id = tx.last_insert_rowid();
                for (table, columns) in RESULT_TABLES {
                    tx.execute(
                    &format!("INSERT INTO {table} (job_id, {columns}) SELECT ?1, {columns} FROM shard.{table} WHERE job_id = ?2"),
                    params![new_id, shard_job],
                )?;
                }
                rebase_checkpoint(&tx, new_id, &shard_dir, &target_dir)?;
                if status.is_result() {
                    added += 1;
                }
            }
            tx.commit()?;
            Ok((added, present))
        })();
        conn.execute("DETACH DATABASE shard", [])?;
        result.with_context(|| format!("merging {}", shard.display()))
    }
}

/// A shard's sweeps must match the target's sweeps of the same name exactly, and all shards
/// of one merge must agree: same definition, same data, same folds.
fn check_sweeps_agree(tx: &rusqlite::Transaction, shard: &Path) -> anyhow::Result<()> {
    let mut stmt = tx.prepare(
        "SELECT s.name, s.definition = t.definition, s.data_fingerprint = t.data_fingerprint, s.fold_hash = t.fold_hash, s.fold_hash, t.fold_hash
         FROM shard.sweeps s JOIN main.sweeps t ON t.name = s.name",
    )?;
    let rows: Vec<(String, bool, bool, bool, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
        .collect::<Result<_, _>>()?;
    for (name, same_definition, same_data, same_folds, shard_folds, target_folds) in rows {
        let why = if !same_folds {
            format!("another fold assignment (fold hash {shard_folds} vs {target_folds})")
        } else if !same_data {
            "other training data (data fingerprint differs)".to_string()
        } else if !same_definition {
            "another sweep definition (the sweep file differs)".to_string()
        } else {
            continue;
        };
        return Err(InputError::in_file(shard, format!("sweep {name:?} was run with {why} than the one already in the target; refusing to merge")).into());
    }
    Ok(())
}

/// Checkpoint paths are stored relative to their database's folder. Shards that write into a
/// shared output folder (the documented layout) keep them as they are; otherwise the path is
/// rewritten to point at the shard's folder.
fn rebase_checkpoint(
    tx: &rusqlite::Transaction,
    job_id: i64,
    shard_dir: &Path,
    target_dir: &Path,
) -> anyhow::Result<()> {
    let checkpoint: Option<String> = tx
        .query_row("SELECT checkpoint FROM fold_results WHERE job_id = ?1", [job_id], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(relative) = checkpoint else { return Ok(()) };
    if same_file(shard_dir, target_dir) || Path::new(&relative).is_absolute() {
        return Ok(());
    }
    let absolute =
        shard_dir.canonicalize().unwrap_or_else(|_| shard_dir.to_path_buf()).join(&relative);
    tx.execute(
        "UPDATE fold_results SET checkpoint = ?2 WHERE job_id = ?1",
        params![job_id, absolute.to_string_lossy()],
    )?;
    Ok(())
}
