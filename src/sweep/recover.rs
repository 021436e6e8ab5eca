//! Results a job wrote that the store never recorded (issue 18). A worker writes its result
//! file before its coordinator records it; when that write to the database failed (a full
//! disk, a lock held past every retry) or the coordinator died in between, the result is
//! still on disk. The next `run` records it instead of training the job again, and only
//! then removes the file.

use std::path::{Path, PathBuf};

use crate::job::FoldRun;
use crate::store::{JobStatus, Store};

/// Where a job's worker writes its result (in the database's `.jobs` folder).
pub fn result_path(work_dir: &Path, config_id: &str, fold: usize) -> PathBuf {
    work_dir.join(format!("{config_id}-fold{fold}")).with_extension("result.json")
}

/// A finished job's checkpoint as the store keeps it: relative to the database's folder,
/// so a shard folder can move.
pub fn checkpoint_relative(config_id: &str, fold: usize) -> String {
    format!("checkpoints/{config_id}/fold{fold}")
}

/// Records the result files of the sweep's pending jobs (what a rerun would otherwise train
/// again); returns how many. A file that does not read as a whole result is left for the
/// job's next worker to replace.
pub fn record_leftover_results(
    store: &mut Store,
    sweep_id: i64,
    work_dir: &Path,
) -> anyhow::Result<usize> {
    let mut recorded = 0;
    for job in store.jobs(sweep_id, JobStatus::Pending)? {
        let path = result_path(work_dir, &job.config_id, job.fold);
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let Ok(outcome) = serde_json::from_slice::<FoldRun>(&bytes) else { continue };
        match outcome {
            FoldRun::Done(result) => {
                let checkpoint = result
                    .checkpoint
                    .as_ref()
                    .map(|_| checkpoint_relative(&job.config_id, job.fold));
                store.record_success(job.id, &result, checkpoint.as_deref())?;
            }
            FoldRun::Diverged(diverged) => {
                let reason = diverged.to_string();
                store.record_diverged(job.id, diverged.epoch, &diverged.log, &reason)?;
            }
        }
        let _ = std::fs::remove_file(&path);
        recorded += 1;
    }
    Ok(recorded)
}
