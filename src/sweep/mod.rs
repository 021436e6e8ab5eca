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

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::backend::Device;
use crate::config::Config;
use crate::cv::FoldAssignment;
use crate::data::{Dataset, MetricTable, Split};
use crate::results::objective;
use crate::search::{Decision, PruneConfig, Strategy};
use crate::store::{JobRow, JobStatus, NewConfig, Store, SweepDefinition};
use crate::train::EpochLog;
pub use spec::{config_id, data_fingerprint, Expansion, GridPoint, SweepFile};
use worker::{JobSpec, WorkerOutcome};

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

/// A sweep's configs with their ids, ready to register.
pub struct Plan {
    pub expansion: Expansion,
    pub ids: Vec<String>,
    /// Per config: the content hash of everything it reads.
    pub fingerprints: Vec<String>,
    /// The sweep's: a hash of its configs' fingerprints.
    pub data_fingerprint: String,
    pub folds: FoldAssignment,
}

/// Expands the grid, validates the data once (bad input fails here, before any job starts)
/// and computes the config ids.
pub fn plan(sweep: &SweepFile) -> anyhow::Result<Plan> {
    let searching = sweep.search.strategy != Strategy::Grid;
    let expansion = if searching {
        Expansion { points: Vec::new(), dropped: Vec::new() }
    } else {
        sweep.expand()?
    };
    let first = match expansion.points.first() {
        Some(first) => first.clone(),
        None if searching => reference_point(sweep)?,
        None => {
            return Err(crate::error::InputError::in_file(
                &sweep.path,
                "the grid leaves no valid config (every model/loss pair was dropped)",
            )
            .into())
        }
    };
    let metrics =
        MetricTable::load(&first.config.data.metric_names, &first.config.data.metric_embeddings)?;
    let dataset = Dataset::load(&first.config.data.train, Split::Train, metrics)?;
    let folds = FoldAssignment::stratified(
        &dataset.score_bins(),
        first.config.cv.folds,
        first.config.cv.seed,
    );
    // Text features of every distinct text section, so a bad .npy fails now, not in a job,
    // and a `text.finetune` model is trained here, once, before any worker needs it.
    let mut seen = Vec::new();
    for point in expansion.points.iter().chain(searching.then_some(&first)) {
        if !seen.contains(&point.config.text) {
            crate::text::text_features(&point.config, &dataset, crate::text::Part::Train)?;
            seen.push(point.config.text.clone());
        }
    }
    let fingerprints = config_fingerprints(&expansion.points)?;
    let ids = expansion
        .points
        .iter()
        .zip(&fingerprints)
        .map(|(p, fingerprint)| config_id(&p.config, fingerprint, &folds.hash()))
        .collect();
    // A search's configs come later, one per trial: its data are the reference config's.
    let data_fingerprint = if searching {
        spec::sweep_fingerprint(&config_fingerprints(std::slice::from_ref(&first))?)
    } else {
        spec::sweep_fingerprint(&fingerprints)
    };
    Ok(Plan { expansion, ids, fingerprints, data_fingerprint, folds })
}

/// A random or tpe sweep's stand-in for its configs before any trial exists (its data, text
/// features and fold assignment are checked with it): the point the sampler proposes for a
/// trial number no trial uses, with no history.
fn reference_point(sweep: &SweepFile) -> anyhow::Result<GridPoint> {
    let sampler = sweep.search.sampler().expect("random or tpe");
    let point = sampler
        .propose(&sweep.space(), &[], &[], u64::MAX, &|p| sweep.is_valid_point(p))
        .map_err(|e| crate::error::InputError::in_file(&sweep.path, e.to_string()))?;
    match sweep.apply(&point)? {
        Ok(grid_point) => Ok(grid_point),
        Err(reason) => Err(crate::error::InputError::in_file(&sweep.path, reason).into()),
    }
}

/// Each config's data fingerprint, reading each distinct set of inputs once.
fn config_fingerprints(points: &[GridPoint]) -> anyhow::Result<Vec<String>> {
    let mut known: HashMap<String, String> = HashMap::new();
    points.iter().map(|p| fingerprint_cached(p, &mut known)).collect()
}

/// A config's data fingerprint, from `known` when a config with the same inputs had one.
fn fingerprint_cached(
    p: &GridPoint,
    known: &mut HashMap<String, String>,
) -> anyhow::Result<String> {
    // What data_fingerprint reads; configs that differ only in training settings share it.
    let inputs = serde_json::to_string(&(
        &p.config.data,
        &p.config.text.encoder,
        &p.config.text.train_embeddings,
        &p.config.text.test_embeddings,
        &p.config.text.model,
        p.config.text.finetune.is_some(),
    ))?;
    if let Some(fingerprint) = known.get(&inputs) {
        return Ok(fingerprint.clone());
    }
    let fingerprint = data_fingerprint(&p.config)?;
    known.insert(inputs, fingerprint.clone());
    Ok(fingerprint)
}

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

/// Ctrl-C presses seen by this process (the handler can only be installed once).
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

fn install_interrupt_handler() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            INTERRUPTS.fetch_add(1, Ordering::SeqCst);
        });
    });
}

/// Shares the interrupt counter with callers that need to know (exit codes).
pub fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}

/// A sweep as registered for this run.
struct Registered {
    sweep_id: i64,
    /// The (config, fold) jobs this run is responsible for (the shard's slice, or all).
    selected: Vec<(String, usize)>,
    /// How many jobs the whole sweep has.
    all_jobs: usize,
}

/// Registers the sweep's current definition.
fn register(
    store: &mut Store,
    sweep: &SweepFile,
    plan: &Plan,
    options: &RunOptions,
) -> anyhow::Result<Registered> {
    let points = &plan.expansion.points;
    let labels: Vec<String> = points.iter().map(GridPoint::label).collect();
    let params: Vec<String> =
        points.iter().map(|p| serde_json::to_string(&p.config).expect("json")).collect();
    let varying: Vec<String> = points.iter().map(|p| spec::varying_json(&p.varying)).collect();
    let configs: Vec<NewConfig> = (0..points.len())
        .map(|i| NewConfig {
            id: &plan.ids[i],
            params_json: &params[i],
            varying_json: &varying[i],
            label: &labels[i],
            data_fingerprint: &plan.fingerprints[i],
        })
        .collect();
    let folds = plan.folds.folds;
    let all_jobs: Vec<(String, usize)> =
        plan.ids.iter().flat_map(|id| (0..folds).map(move |f| (id.clone(), f))).collect();
    let searching = sweep.search.strategy != Strategy::Grid;
    let selected: Vec<(String, usize)> = match options.shard {
        // A search shard runs its own trials into its own database: all of that database's.
        Some(_) if searching => Vec::new(),
        Some(shard) => shard.select(&all_jobs).into_iter().cloned().collect(),
        None => all_jobs.clone(),
    };
    let definition = SweepDefinition {
        name: &sweep.name,
        definition: &sweep.source,
        data_fingerprint: &plan.data_fingerprint,
        fold_hash: &plan.folds.hash(),
        folds,
        keep_trials: searching,
    };
    let (sweep_id, _added) = store.register_sweep(&definition, &configs, &selected)?;
    Ok(Registered { sweep_id, selected, all_jobs: all_jobs.len() })
}

/// Runs the sweep's pending jobs, reporting progress to `on_event`.
pub fn run_sweep(
    sweep: &SweepFile,
    plan: &Plan,
    options: &RunOptions,
    on_event: &mut dyn FnMut(&SweepEvent),
) -> anyhow::Result<RunSummary> {
    install_interrupt_handler();
    let mut store = Store::open(&options.db)?;
    let Registered { sweep_id, selected, all_jobs } = register(&mut store, sweep, plan, options)?;
    store.requeue_for_rerun(sweep_id)?;
    if options.no_prune {
        store.requeue_pruned(sweep_id)?;
    }
    let study = study::Study::new(sweep, options.shard, &plan.folds);
    let slice: Option<HashSet<(String, usize)>> = match (&study, options.shard) {
        (None, Some(_)) => Some(selected.iter().cloned().collect()),
        _ => None,
    };
    let filter = |config_id: &str, fold: usize| {
        slice.as_ref().is_none_or(|s| s.contains(&(config_id.to_string(), fold)))
    };
    // A search's jobs: those of its trials so far, and every fold of the trials to come.
    let trials_to_come = match &study {
        Some(study) => study.budget.saturating_sub(study.trials(&store, sweep_id)?.len() as u64),
        None => 0,
    } as usize
        * plan.folds.folds;
    let jobs_total = match &study {
        Some(_) => store.status_counts(sweep_id)?.values().sum::<usize>() + trials_to_come,
        None => selected.len(),
    };
    let to_run = store.count_jobs(sweep_id, JobStatus::Pending, &filter)? + trials_to_come;
    if to_run == 0 {
        let running = store.count_jobs(sweep_id, JobStatus::Running, &filter)?;
        on_event(&SweepEvent::NothingToDo { sweep: sweep.name.clone(), jobs_total, running });
        if running == 0 {
            let summary = final_summary(&store, sweep_id, &filter, jobs_total)?;
            on_event(&SweepEvent::Finished { summary });
            return Ok(summary);
        }
    }
    let slot_devices: Vec<Device> = options
        .devices
        .iter()
        .flat_map(|d| std::iter::repeat_n(d.clone(), options.jobs_per_device.max(1)))
        .collect();
    if to_run > 0 {
        on_event(&SweepEvent::Started {
            sweep: sweep.name.clone(),
            configs: study.as_ref().map_or(plan.expansion.points.len(), |s| s.budget as usize),
            folds: plan.folds.folds,
            jobs_total,
            already_done: store.count_jobs(sweep_id, JobStatus::Done, &filter)?,
            to_run,
            slots: slot_devices.len(),
            devices: options.devices.iter().map(ToString::to_string).collect(),
            shard: options.shard.map(|s| (s, all_jobs)),
        });
    }
    let launcher = Launcher::new(options, &store, &slot_devices)?;
    let mut run = SweepLoop {
        sweep_id,
        plan,
        options,
        filter: &filter,
        launcher,
        slots: (0..slot_devices.len()).map(|_| None).collect(),
        slot_devices,
        summary: RunSummary { jobs_total, ..Default::default() },
        durations: Vec::new(),
        interrupts_at_start: INTERRUPTS.load(Ordering::SeqCst),
        study,
        prune: if options.no_prune { None } else { sweep.search.prune },
    };
    run.run(&mut store, on_event)?;
    let mut summary = final_summary(&store, sweep_id, &filter, jobs_total)?;
    summary.ran = run.summary.ran;
    summary.interrupted = run.summary.interrupted;
    if INTERRUPTS.load(Ordering::SeqCst) > run.interrupts_at_start {
        summary.not_started = store.count_jobs(sweep_id, JobStatus::Pending, &filter)?;
    }
    on_event(&SweepEvent::Finished { summary });
    Ok(summary)
}

/// Done, failed and diverged as the database has them when the run ends. A rerun first
/// requeues failed jobs, so every failed one failed in this run (here or in another
/// coordinator): the exit code speaks for the whole sweep.
fn final_summary(
    store: &Store,
    sweep_id: i64,
    filter: crate::store::JobFilter,
    jobs_total: usize,
) -> anyhow::Result<RunSummary> {
    Ok(RunSummary {
        jobs_total,
        done: store.count_jobs(sweep_id, JobStatus::Done, filter)?,
        failed: store.count_jobs(sweep_id, JobStatus::Failed, filter)?,
        diverged: store.count_jobs(sweep_id, JobStatus::Diverged, filter)?,
        pruned: store.count_jobs(sweep_id, JobStatus::Pruned, filter)?,
        ..Default::default()
    })
}

struct Running {
    job: JobRow,
    job_ref: JobRef,
    /// What it trains with (ASHA reads its epochs and monitor).
    config: Config,
    /// The epochs it reported so far.
    epochs: Vec<EpochLog>,
    child: Child,
    started: Instant,
    result_path: PathBuf,
    stderr_path: PathBuf,
    last_heartbeat: Instant,
    /// Epochs not yet in the database; written about once a second so `serve` shows them live.
    unsaved_epochs: Vec<EpochLog>,
    epochs_saved: Instant,
}

/// Where and how workers start.
struct Launcher {
    work_dir: PathBuf,
    /// Where checkpoints go; None when the sweep keeps none.
    checkpoint_root: Option<PathBuf>,
    worker_exe: PathBuf,
    cpu_threads: Option<usize>,
}

/// A worker's epoch line, tagged with its slot and job (a pruned job's last lines may still
/// arrive after its slot runs another job).
struct EpochLine(usize, i64, EpochLog);

struct SweepLoop<'a> {
    sweep_id: i64,
    plan: &'a Plan,
    options: &'a RunOptions,
    filter: crate::store::JobFilter<'a>,
    launcher: Launcher,
    slot_devices: Vec<Device>,
    slots: Vec<Option<Running>>,
    summary: RunSummary,
    durations: Vec<f64>,
    interrupts_at_start: usize,
    /// A random or tpe search proposes trials when the queue runs dry.
    study: Option<study::Study<'a>>,
    /// The pruners, unless `--no-prune` or none configured.
    prune: Option<PruneConfig>,
}

/// How long an idle coordinator waits before looking for work again.
const IDLE_POLL: Duration = Duration::from_millis(500);

impl SweepLoop<'_> {
    fn run(
        &mut self,
        store: &mut Store,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<()> {
        let (epochs_tx, epochs) = mpsc::channel::<EpochLine>();
        let mut announced_stop = false;
        let mut announced_wait = false;
        let mut next_claim = Instant::now();
        loop {
            let interrupts = INTERRUPTS.load(Ordering::SeqCst) - self.interrupts_at_start;
            if interrupts >= 2 {
                let stopped = self.stop_all(store)?;
                on_event(&SweepEvent::Interrupted { stopped, counts: self.counts(store)? });
                return Ok(());
            }
            if interrupts == 1 && !announced_stop {
                announced_stop = true;
                on_event(&SweepEvent::Stopping { counts: self.counts(store)? });
            }
            let mut queue_empty = false;
            if interrupts == 0 && Instant::now() >= next_claim {
                queue_empty = self.fill_slots(store, &epochs_tx, on_event)?;
                if queue_empty {
                    next_claim = Instant::now() + IDLE_POLL;
                }
            }
            if self.slots.iter().all(Option::is_none) {
                if interrupts > 0 {
                    return Ok(());
                }
                if queue_empty {
                    let running =
                        store.count_jobs(self.sweep_id, JobStatus::Running, self.filter)?;
                    if running == 0 {
                        return Ok(());
                    }
                    if !announced_wait {
                        announced_wait = true;
                        on_event(&SweepEvent::Waiting { running, counts: self.counts(store)? });
                    }
                }
            }
            // Wait briefly for news, then take what is queued, but never loop on the channel: a
            // job streaming epochs every few milliseconds must not starve Ctrl-C, heartbeats and
            // exit checks below.
            let first = epochs.recv_timeout(Duration::from_millis(100)).ok();
            for EpochLine(slot, job_id, epoch) in
                first.into_iter().chain(epochs.try_iter().take(1000))
            {
                let Some(running) = self.slots[slot].as_mut().filter(|r| r.job.id == job_id) else {
                    continue;
                };
                running.epochs.push(epoch.clone());
                running.unsaved_epochs.push(epoch.clone());
                on_event(&SweepEvent::Epoch {
                    slot,
                    device: self.slot_devices[slot].to_string(),
                    job: running.job_ref.clone(),
                    epoch,
                });
                if self.asha(store, slot, on_event)? {
                    next_claim = Instant::now();
                }
            }
            if self.reap_finished(store, on_event)? {
                next_claim = Instant::now();
            }
        }
    }

    /// Claims a job for every empty slot; true when the database had none left to claim.
    fn fill_slots(
        &mut self,
        store: &mut Store,
        epochs: &mpsc::Sender<EpochLine>,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<bool> {
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_some() {
                continue;
            }
            let device = self.slot_devices[slot].clone();
            let Some(job) = self.claim(store, &device, on_event)? else {
                return Ok(true);
            };
            let (config, label) = self.job_config(store, &job)?;
            let job_ref = JobRef { config_id: job.config_id.clone(), fold: job.fold, label };
            let running =
                self.launcher.spawn(job, job_ref, config, (&device, slot), epochs.clone())?;
            store.set_worker_pid(running.job.id, running.child.id())?;
            on_event(&SweepEvent::JobStarted {
                slot,
                device: device.to_string(),
                job: running.job_ref.clone(),
                attempt: running.job.attempt,
            });
            self.slots[slot] = Some(running);
        }
        Ok(false)
    }

    /// The next job for a slot: a pending one, or (in a search) the first job of a new trial.
    fn claim(
        &mut self,
        store: &mut Store,
        device: &Device,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<Option<JobRow>> {
        let fold_major = self.prune.is_some_and(|p| p.folds);
        loop {
            let claimed =
                store.claim_next(self.sweep_id, &device.to_string(), self.filter, fold_major)?;
            if claimed.is_some() {
                return Ok(claimed);
            }
            let Some(study) = self.study.as_mut() else { return Ok(None) };
            let Some(trial) = study.next_trial(store, self.sweep_id)? else { return Ok(None) };
            let event = self.trial_event(store, trial)?;
            on_event(&event);
        }
    }

    /// A new trial, with where the study stands.
    fn trial_event(&self, store: &Store, trial: study::NewTrialInfo) -> anyhow::Result<SweepEvent> {
        let study = self.study.as_ref().expect("a search");
        let rows = study.trials(store, self.sweep_id)?;
        let count = |state| rows.iter().filter(|r| r.state == state).count();
        let best = rows
            .iter()
            .filter(|r| r.state == crate::results::TrialState::Complete)
            .filter_map(|r| r.value)
            .min_by(f64::total_cmp);
        Ok(SweepEvent::TrialStarted {
            number: trial.number,
            label: trial.label,
            trials: study.budget,
            progress: TrialCounts {
                complete: count(crate::results::TrialState::Complete),
                running: count(crate::results::TrialState::Running),
                pruned: count(crate::results::TrialState::Pruned),
                best,
            },
        })
    }

    /// The config and label of a claimed job: from the grid, or (a search's trial) from the
    /// database, where the trial registered it.
    fn job_config(&self, store: &mut Store, job: &JobRow) -> anyhow::Result<(Config, String)> {
        if let Some(index) = self.plan.ids.iter().position(|id| *id == job.config_id) {
            let point = &self.plan.expansion.points[index];
            return Ok((point.config.clone(), point.label()));
        }
        if self.study.is_some() {
            if let Some(params) = store.config_params(&job.config_id)? {
                let config: Config = serde_json::from_str(&params)
                    .with_context(|| format!("reading config {}", job.config_id))?;
                let label = store.config_label(&job.config_id)?.unwrap_or_default();
                return Ok((config, label));
            }
        }
        // Only current configs are claimed: another run registered another definition of this
        // sweep meanwhile. Hand the job back and stop, rather than run it with settings this
        // run does not know.
        let why = "the sweep's definition changed while this run was going";
        store.record_failure(job.id, why, true)?;
        anyhow::bail!("{why} (config {} is not in this run's grid)", job.config_id);
    }

    /// ASHA after the latest epoch of the job in `slot`: on Prune the worker is stopped and the
    /// job recorded as pruned, with its curve so far. True when the slot was freed.
    fn asha(
        &mut self,
        store: &mut Store,
        slot: usize,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<bool> {
        let Some(prune) = self.prune else { return Ok(false) };
        let running = self.slots[slot].as_ref().expect("a running slot");
        // A gbdt job reports its boosting rounds after the fit (under a second): pruning one
        // saves nothing, and its early rounds are no measure against neural epochs.
        if !running.config.train.model.is_neural() {
            return Ok(false);
        }
        let last = running.epochs.last().expect("an epoch");
        let value = objective::epoch_value(&running.config, last);
        let at_rung: Vec<f64> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != slot)
            .filter_map(|(_, r)| r.as_ref().filter(|r| r.job.fold == running.job.fold))
            .filter_map(|r| {
                let log = r.epochs.iter().find(|e| e.epoch == last.epoch)?;
                Some(objective::epoch_value(&r.config, log))
            })
            .collect();
        let decision = pruning::asha(
            store,
            self.sweep_id,
            &prune,
            running.config.train.epochs,
            (running.job.id, running.job.fold),
            (last.epoch, running.config.validation.monitor()),
            value,
            &at_rung,
        )?;
        let Decision::Prune(reason) = decision else { return Ok(false) };
        let running = self.slots[slot].take().expect("a running slot");
        stop_child(running.child);
        self.summary.ran += 1;
        let reason = format!("ASHA: {reason}");
        store.record_pruned(running.job.id, &running.epochs, &reason)?;
        let _ = std::fs::remove_file(&running.result_path);
        on_event(&SweepEvent::JobPruned {
            job: running.job_ref,
            epochs: running.epochs.len(),
            reason,
            counts: self.counts(store)?,
        });
        Ok(true)
    }

    /// Racing after a fold of `job`'s config finished: a config significantly worse than the
    /// incumbent gets no more folds (its pending jobs become pruned).
    fn race(
        &mut self,
        store: &mut Store,
        job: &JobRef,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<()> {
        let Some(prune) = self.prune else { return Ok(()) };
        let decision = pruning::race_config(store, self.sweep_id, &prune, &job.config_id)?;
        let Decision::Prune(reason) = decision else { return Ok(()) };
        let reason = format!("racing: {reason}");
        let pruned = store.prune_pending(&job.config_id, &reason)?;
        if pruned > 0 {
            on_event(&SweepEvent::JobPruned {
                job: JobRef { fold: job.fold, ..job.clone() },
                epochs: 0,
                reason: format!("{reason}; its {pruned} remaining fold(s) will not run"),
                counts: self.counts(store)?,
            });
        }
        Ok(())
    }

    /// Heartbeats the running jobs and records the ones that ended; true if any did.
    fn reap_finished(
        &mut self,
        store: &mut Store,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<bool> {
        let mut any = false;
        for slot in 0..self.slots.len() {
            let Some(running) = self.slots[slot].as_mut() else { continue };
            if running.last_heartbeat.elapsed() > Duration::from_secs(5) {
                store.heartbeat(running.job.id)?;
                running.last_heartbeat = Instant::now();
            }
            if running.epochs_saved.elapsed() > Duration::from_secs(1) {
                store.record_epochs(running.job.id, &running.unsaved_epochs)?;
                running.unsaved_epochs.clear();
                running.epochs_saved = Instant::now();
            }
            let Some(status) = running.child.try_wait()? else { continue };
            let running = self.slots[slot].take().expect("slot is running");
            any = true;
            self.summary.ran += 1;
            let outcome = if status.success() {
                read_outcome(&running.result_path)
            } else {
                Err(describe_failure(status, &running.stderr_path))
            };
            let event = self.record(store, &running, outcome)?;
            on_event(&event);
            if matches!(event, SweepEvent::JobDone { .. }) {
                self.race(store, &running.job_ref, on_event)?;
            }
            let _ = std::fs::remove_file(&running.result_path);
        }
        Ok(any)
    }

    /// Stores what a finished job reported and says so as an event.
    fn record(
        &mut self,
        store: &mut Store,
        running: &Running,
        outcome: Result<WorkerOutcome, String>,
    ) -> anyhow::Result<SweepEvent> {
        let job = running.job_ref.clone();
        let seconds = running.started.elapsed().as_secs_f64();
        match outcome {
            Ok(WorkerOutcome::Done(result)) => {
                // Stored relative to the database's folder, so a shard folder can move.
                let checkpoint = result
                    .checkpoint
                    .as_ref()
                    .map(|_| format!("checkpoints/{}/fold{}", job.config_id, job.fold));
                store.record_success(running.job.id, &result, checkpoint.as_deref())?;
                self.durations.push(seconds);
                Ok(SweepEvent::JobDone {
                    job,
                    rmse: result.metrics.rmse,
                    macro_rmse: result.metrics.macro_rmse,
                    best_epoch: result.best_epoch,
                    epochs_run: result.epochs_run,
                    seconds,
                    counts: self.counts(store)?,
                })
            }
            Ok(WorkerOutcome::Diverged(diverged)) => {
                let reason = diverged.to_string();
                store.record_diverged(running.job.id, diverged.epoch, &diverged.log, &reason)?;
                self.durations.push(seconds);
                Ok(SweepEvent::JobDiverged {
                    job,
                    epoch: diverged.epoch,
                    counts: self.counts(store)?,
                })
            }
            Err(error) => {
                let attempt = running.job.attempt;
                let max_attempts = self.options.max_attempts;
                let retry = attempt < max_attempts
                    && INTERRUPTS.load(Ordering::SeqCst) == self.interrupts_at_start;
                store.record_failure(running.job.id, &error, retry)?;
                let counts = self.counts(store)?;
                Ok(if retry {
                    SweepEvent::JobRetried { job, attempt, max_attempts, error, counts }
                } else {
                    SweepEvent::JobFailed { job, attempt, max_attempts, error, counts }
                })
            }
        }
    }

    /// Ctrl-C twice: stops every running job and marks it interrupted.
    fn stop_all(&mut self, store: &mut Store) -> anyhow::Result<usize> {
        let mut stopped = 0;
        for running in self.slots.iter_mut().filter_map(Option::take) {
            stop_child(running.child);
            store.mark_interrupted(running.job.id)?;
            stopped += 1;
        }
        self.summary.interrupted += stopped;
        Ok(stopped)
    }

    fn counts(&self, store: &Store) -> anyhow::Result<Counts> {
        let count = |status| store.count_jobs(self.sweep_id, status, self.filter);
        let running_here = self.slots.iter().filter(|s| s.is_some()).count();
        let left = count(JobStatus::Pending)?;
        Ok(Counts {
            total: self.summary.jobs_total,
            done: count(JobStatus::Done)?,
            running: running_here,
            failed: count(JobStatus::Failed)?,
            diverged: count(JobStatus::Diverged)?,
            pruned: count(JobStatus::Pruned)?,
            left,
            eta: eta(&self.durations, left, running_here, self.slots.len()),
        })
    }
}

/// Mean job time so far x jobs still to run / slots.
fn eta(durations: &[f64], left: usize, running: usize, slots: usize) -> Option<Duration> {
    if durations.is_empty() {
        return None;
    }
    let mean = durations.iter().sum::<f64>() / durations.len() as f64;
    let remaining = (left as f64 + running as f64 * 0.5) * mean / slots.max(1) as f64;
    Some(Duration::from_secs_f64(remaining))
}

/// Threads for each CPU worker when several jobs share the CPU: the cores divided among them.
/// Every worker's thread pool would otherwise take all cores, N jobs each fighting N-1 others
/// for them. A RAYON_NUM_THREADS the user set is left to decide.
fn cpu_thread_share(
    slot_devices: &[Device],
    user_set_threads: bool,
    cores: usize,
) -> Option<usize> {
    let cpu_slots = slot_devices.iter().filter(|d| **d == Device::Cpu).count();
    (cpu_slots > 1 && !user_set_threads).then(|| (cores / cpu_slots).max(1))
}

impl Launcher {
    fn new(options: &RunOptions, store: &Store, slot_devices: &[Device]) -> anyhow::Result<Self> {
        let worker_exe = match &options.worker_exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().context("locating the foldsweep binary")?,
        };
        let work_dir = options.db.with_extension("jobs");
        std::fs::create_dir_all(&work_dir)
            .with_context(|| format!("creating {}", work_dir.display()))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let user_set_threads = std::env::var_os("RAYON_NUM_THREADS").is_some();
        Ok(Launcher {
            work_dir,
            checkpoint_root: options.keep_checkpoints.then(|| store.base_dir().join("checkpoints")),
            worker_exe,
            cpu_threads: cpu_thread_share(slot_devices, user_set_threads, cores),
        })
    }

    fn spawn(
        &self,
        job: JobRow,
        job_ref: JobRef,
        config: Config,
        (device, slot): (&Device, usize),
        epochs: mpsc::Sender<EpochLine>,
    ) -> anyhow::Result<Running> {
        let stem = self.work_dir.join(format!("{}-fold{}", job.config_id, job.fold));
        let job_file = stem.with_extension("job.json");
        let result_path = stem.with_extension("result.json");
        let stderr_path = stem.with_extension("stderr.log");
        let _ = std::fs::remove_file(&result_path);
        let spec_config = config.clone();
        let spec = JobSpec {
            config,
            fold: job.fold,
            device: device.to_string(),
            checkpoint_dir: self
                .checkpoint_root
                .as_ref()
                .map(|root| root.join(&job.config_id).join(format!("fold{}", job.fold))),
            result_path: result_path.clone(),
        };
        crate::util::write_atomic(&job_file, serde_json::to_string(&spec)?.as_bytes())?;
        let mut command = Command::new(&self.worker_exe);
        command
            .arg("worker")
            .arg(&job_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path)?)
            // Own process group: a terminal's Ctrl-C reaches only the coordinator, which decides.
            .process_group(0);
        if let (Device::Cpu, Some(threads)) = (device, self.cpu_threads) {
            command.env("RAYON_NUM_THREADS", threads.to_string());
        }
        // SAFETY: prctl is async-signal-safe; it asks the kernel to kill the child if we die
        // (kill -9 of the coordinator must not leave jobs running unrecorded).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().with_context(|| {
            format!("starting a worker process ({})", self.worker_exe.display())
        })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let job_id = job.id;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(epoch) = serde_json::from_str::<EpochLog>(&line) {
                    if epochs.send(EpochLine(slot, job_id, epoch)).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Running {
            job,
            job_ref,
            config: spec_config,
            epochs: Vec::new(),
            child,
            started: Instant::now(),
            result_path,
            stderr_path,
            last_heartbeat: Instant::now(),
            unsaved_epochs: Vec::new(),
            epochs_saved: Instant::now(),
        })
    }
}

fn read_outcome(path: &Path) -> Result<WorkerOutcome, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("the worker exited without a result ({e})"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("unreadable worker result: {e}"))
}

/// The tail of the worker's stderr and how it ended (exit code or signal).
fn describe_failure(status: std::process::ExitStatus, stderr_path: &Path) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("worker exited with code {code}"),
        (None, Some(9)) => "worker killed by SIGKILL (out of memory?)".to_string(),
        (None, Some(signal)) => format!("worker killed by signal {signal}"),
        _ => "worker ended abnormally".to_string(),
    };
    let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = tail[tail.len().saturating_sub(20)..].join("\n");
    if tail.is_empty() {
        how
    } else {
        format!("{tail}\n{how}")
    }
}

fn stop_child(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_workers_share_the_cores_unless_the_user_set_threads() {
        let four_cpu = vec![Device::Cpu; 4];
        assert_eq!(cpu_thread_share(&four_cpu, false, 16), Some(4));
        assert_eq!(cpu_thread_share(&four_cpu, false, 2), Some(1), "never zero threads");
        assert_eq!(cpu_thread_share(&four_cpu, true, 16), None, "RAYON_NUM_THREADS decides");
        assert_eq!(cpu_thread_share(&[Device::Cpu], false, 16), None, "one job keeps every core");
        let gpus = vec![Device::Cuda(0), Device::Cuda(0), Device::Cuda(1)];
        assert_eq!(cpu_thread_share(&gpus, false, 16), None, "GPU jobs are left alone");
    }
}
