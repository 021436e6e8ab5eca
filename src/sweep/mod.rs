//! Sweeps: a grid of configs x folds run as isolated jobs, results in SQLite.
//!
//! Each job runs in its own child process (`foldsweep worker`), so a panic, an out-of-memory
//! kill or a crash fails only that job; it is retried up to `max_attempts` and the sweep goes
//! on. A job that diverges is a result (status `diverged`), never retried.
//!
//! The queue is the database: a coordinator claims the next pending job in one write
//! transaction, so several coordinators on one database share the work and each job runs
//! once. A coordinator ends only when none of its jobs is pending or running anywhere: it
//! waits for the other coordinators' running jobs, so that its exit code speaks for the whole
//! sweep, and so that it takes over a job whose coordinator died (requeued by the claim).
//!
//! A random or tpe sweep ([`study`]) registers its configs one trial at a time as slots free
//! up; pruners ([`pruning`], `[search] prune`) stop jobs early and record them as `pruned`
//! results. What every search and pruner minimises is in `results::objective`.
//!
//! The loop does not print: it reports [`SweepEvent`]s to a callback, which the CLI renders
//! as bars or log lines (and a test can simply collect).

pub mod merge;

mod pruning;

pub mod shard;

pub mod slurm;

pub mod spec;

pub mod study;

pub mod worker;

mod dispatcher;
mod events;
mod fingerprint;
mod interrupt;
mod launcher;
mod plan;
mod run;

use std::path::PathBuf;

use crate::backend::Device;

pub use events::{Counts, JobRef, RunSummary, SweepEvent, TrialCounts};
pub use plan::{plan, Plan};
pub use run::run_sweep;
pub use spec::{config_id, data_fingerprint, Expansion, GridPoint, SweepFile};

/// How a sweep runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub db: PathBuf,
    pub devices: Vec<Device>,
    pub jobs_per_device: usize,
    pub max_attempts: u32,
    /// Run only this slice of the jobs (into its own database).
    pub shard: Option<shard::Shard>,
    /// The `foldsweep` executable that runs each job [default: this process's own].
    pub worker_exe: Option<PathBuf>,
    /// Keep every finished fold's best weights (`[resources] checkpoints = "all"`).
    pub keep_checkpoints: bool,
    /// `run --no-prune`: pruned jobs run again, and nothing is pruned.
    pub no_prune: bool,
}
