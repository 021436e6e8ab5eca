//! `foldsweep merge SHARD.db... --into results.db`: combine shard databases.
//!
//! Idempotent (a job already done in the target is left alone, so merging twice changes
//! nothing), refuses a shard whose sweep has another definition, data or fold assignment than
//! the target's, and keeps everything a job recorded (per-fold, per-bin, per-epoch, OOF) plus
//! where it ran (host, device). Each shard goes in with one transaction.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::InputError;
use crate::store::Store;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeSummary {
    pub shards: usize,
    pub jobs_added: usize,
    pub jobs_already_there: usize,
}

pub fn merge(shards: &[PathBuf], into: &Path) -> anyhow::Result<MergeSummary> {
    let mut target = Store::open(into)?;
    let mut summary = MergeSummary::default();
    for shard in shards {
        if !shard.exists() {
            return Err(InputError::in_file(shard, "no such shard database").into());
        }
        if crate::util::same_file(shard, into) {
            return Err(InputError::in_file(shard, "is the target database itself").into());
        }
        Store::open(shard).with_context(|| format!("checking {}", shard.display()))?; // schema version check
        let (added, present) = target.merge_shard(shard)?;
        summary.shards += 1;
        summary.jobs_added += added;
        summary.jobs_already_there += present;
    }
    Ok(summary)
}
