//! The child side of a job: `foldsweep worker JOB.json` trains one fold and reports.
//!
//! Protocol: each finished epoch is one JSON line on stdout; at the end the
//! [`crate::job::FoldRun`] (the FoldResult, or where training diverged: a result, not a crash,
//! which the coordinator records and does not retry) is written (atomically) to the path named
//! in the job file. Anything on stderr is kept by the coordinator as the job's error text if it
//! fails.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::job::TrainingData;

/// Environment variable that makes a worker panic on the given fold: a test hook for the
/// failure path (retries, error text, the sweep going on). Never set it in real runs.
pub const PANIC_ON_FOLD: &str = "FOLDSWEEP_PANIC_ON_FOLD";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub config: Config,
    pub fold: usize,
    pub device: String,
    /// Where the best epoch's weights go; None when the sweep keeps no checkpoints.
    #[serde(default)]
    pub checkpoint_dir: Option<PathBuf>,
    pub result_path: PathBuf,
}

/// Trains the job file's fold, handing each finished epoch to `on_epoch` (the CLI writes it to
/// the coordinator's pipe), and writes the outcome to the job's result path.
pub fn run_worker(
    job_file: &Path,
    on_epoch: &mut dyn FnMut(&crate::train::EpochLog),
) -> anyhow::Result<()> {
    let spec: JobSpec = serde_json::from_slice(
        &std::fs::read(job_file).with_context(|| format!("reading {}", job_file.display()))?,
    )
    .with_context(|| format!("parsing {}", job_file.display()))?;
    if std::env::var(PANIC_ON_FOLD).ok().and_then(|v| v.parse::<usize>().ok()) == Some(spec.fold) {
        panic!("deliberate panic on fold {} ({PANIC_ON_FOLD} is set)", spec.fold);
    }
    let data = TrainingData::load(&spec.config)?;
    let device: crate::backend::Device = spec.device.parse()?;
    let outcome = crate::job::run_fold_on(
        &device,
        &spec.config,
        &data,
        spec.fold,
        spec.checkpoint_dir.as_deref(),
        on_epoch,
    )?;
    crate::util::write_atomic(&spec.result_path, serde_json::to_string(&outcome)?.as_bytes())
}
