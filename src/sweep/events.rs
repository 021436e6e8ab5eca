//! What the sweep loop reports instead of printing: [`SweepEvent`]s to a callback, which the
//! CLI renders as bars or log lines and a test simply collects, and the run's summary.

use std::time::Duration;

use super::*;
use crate::train::EpochLog;

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub jobs_total: usize,
    /// Jobs done when the run ended (by any coordinator).
    pub done: usize,
    /// Jobs this run started.
    pub ran: usize,
    pub failed: usize,
    pub diverged: usize,
    /// Jobs a pruner stopped: results, like done ones.
    pub pruned: usize,
    pub interrupted: usize,
    /// Jobs left pending because Ctrl-C stopped the run before they started.
    pub not_started: usize,
}

/// A job as events name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub config_id: String,
    pub fold: usize,
    /// The config's grid values, `key=value ...`.
    pub label: String,
}

/// Where the sweep stands, for progress displays.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub failed: usize,
    pub diverged: usize,
    pub pruned: usize,
    pub left: usize,
    /// Mean job time so far x jobs still to run / slots.
    pub eta: Option<Duration>,
}

/// Where a search stands: trials finished, running and pruned, and the best objective of a
/// complete trial so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrialCounts {
    pub complete: usize,
    pub running: usize,
    pub pruned: usize,
    pub best: Option<f64>,
}

/// What the sweep loop reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepEvent {
    Started {
        sweep: String,
        configs: usize,
        folds: usize,
        jobs_total: usize,
        already_done: usize,
        to_run: usize,
        slots: usize,
        devices: Vec<String>,
        /// The shard and how many jobs the whole sweep has.
        shard: Option<(shard::Shard, usize)>,
    },
    /// No job left to start; `running` are other coordinators' jobs this run will wait for.
    NothingToDo {
        sweep: String,
        jobs_total: usize,
        running: usize,
    },
    /// A random or tpe search registered trial `number` (of `trials` in this stream).
    TrialStarted {
        number: u64,
        label: String,
        trials: u64,
        progress: TrialCounts,
    },
    /// A pruner stopped a job: ASHA after `epochs` epochs, or racing before it started (0).
    JobPruned {
        job: JobRef,
        epochs: usize,
        reason: String,
        counts: Counts,
    },
    JobStarted {
        slot: usize,
        device: String,
        job: JobRef,
        attempt: u32,
    },
    Epoch {
        slot: usize,
        device: String,
        job: JobRef,
        epoch: EpochLog,
    },
    JobDone {
        job: JobRef,
        rmse: f64,
        macro_rmse: f64,
        best_epoch: usize,
        epochs_run: usize,
        seconds: f64,
        counts: Counts,
    },
    /// A failed attempt that will be retried.
    JobRetried {
        job: JobRef,
        attempt: u32,
        max_attempts: u32,
        error: String,
        counts: Counts,
    },
    /// A failed attempt that was the last.
    JobFailed {
        job: JobRef,
        attempt: u32,
        max_attempts: u32,
        error: String,
        counts: Counts,
    },
    /// Training produced a non-finite loss or RMSE at `epoch`: recorded, not retried.
    JobDiverged {
        job: JobRef,
        epoch: usize,
        counts: Counts,
    },
    /// Waiting for jobs other coordinators run (once, when this run has none left itself).
    Waiting {
        running: usize,
        counts: Counts,
    },
    /// Ctrl-C once: no new jobs start; the running ones finish.
    Stopping {
        counts: Counts,
    },
    /// Ctrl-C twice: the running jobs were stopped and marked interrupted.
    Interrupted {
        stopped: usize,
        counts: Counts,
    },
    Finished {
        summary: RunSummary,
    },
}
