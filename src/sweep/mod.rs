//! Sweeps: a grid of configs x folds run as isolated jobs, results in SQLite.
//!
//! The coordinator (this module) is the only writer of the database. Each job runs in its own
//! child process (`foldsweep worker`), so a panic, an out-of-memory kill or a crash fails only
//! that job; it is retried up to `max_attempts` and the sweep goes on.

pub mod merge;
pub mod progress;
pub mod shard;
pub mod slurm;
pub mod spec;
pub mod worker;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::backend::Device;
use crate::cv::FoldAssignment;
use crate::data::{Dataset, MetricTable, Split};
use crate::job::FoldResult;
use crate::store::{JobRow, NewConfig, Store};
use crate::train::EpochLog;
use progress::{Counts, Progress};
pub use spec::{config_id, data_fingerprint, Expansion, GridPoint, SweepFile};
use worker::JobSpec;

/// How a sweep runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub db: PathBuf,
    pub devices: Vec<Device>,
    pub jobs_per_device: usize,
    pub max_attempts: u32,
    /// Run only this slice of the jobs (into its own database).
    pub shard: Option<shard::Shard>,
}

/// A sweep's configs with their ids, ready to register.
pub struct Plan {
    pub expansion: Expansion,
    pub ids: Vec<String>,
    pub data_fingerprint: String,
    pub folds: FoldAssignment,
}

/// Expands the grid, validates the data once (bad input fails here, before any job starts)
/// and computes the config ids.
pub fn plan(sweep: &SweepFile) -> anyhow::Result<Plan> {
    let expansion = sweep.expand()?;
    let Some(first) = expansion.points.first() else {
        return Err(crate::error::InputError::in_file(
            &sweep.path,
            "the grid leaves no valid config (every model/loss pair was dropped)",
        )
        .into());
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
    for point in &expansion.points {
        if !seen.contains(&point.config.text) {
            crate::text::text_features(&point.config, &dataset, crate::text::Part::Train)?;
            seen.push(point.config.text.clone());
        }
    }
    let data_fingerprint = data_fingerprint(&first.config)?;
    let ids = expansion
        .points
        .iter()
        .map(|p| config_id(&p.config, &data_fingerprint, &folds.hash()))
        .collect();
    Ok(Plan { expansion, ids, data_fingerprint, folds })
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub jobs_total: usize,
    pub ran: usize,
    pub done: usize,
    pub failed: usize,
    pub interrupted: usize,
    /// Jobs left pending because Ctrl-C stopped the run before they started.
    pub not_started: usize,
}

struct Running {
    job: JobRow,
    label: String,
    child: Child,
    started: Instant,
    result_path: PathBuf,
    stderr_path: PathBuf,
    last_epoch: Option<EpochLog>,
    last_heartbeat: Instant,
    /// Epochs not yet in the database; written about once a second so `serve` shows them live.
    unsaved_epochs: Vec<EpochLog>,
    epochs_saved: Instant,
}

enum Event {
    Epoch(usize, EpochLog),
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

pub fn run_sweep(
    sweep: &SweepFile,
    plan: &Plan,
    options: &RunOptions,
) -> anyhow::Result<RunSummary> {
    install_interrupt_handler();
    let mut store = Store::open(&options.db)?;
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
        })
        .collect();
    let folds = plan.folds.folds;
    let all_jobs: Vec<(String, usize)> =
        plan.ids.iter().flat_map(|id| (0..folds).map(move |f| (id.clone(), f))).collect();
    let selected: Vec<(String, usize)> = match options.shard {
        Some(shard) => shard.select(&all_jobs).into_iter().cloned().collect(),
        None => all_jobs.clone(),
    };
    let (sweep_id, _added) = store.register_sweep(
        &sweep.name,
        &sweep.source,
        &plan.data_fingerprint,
        &plan.folds.hash(),
        folds,
        &configs,
        &selected,
    )?;
    store.requeue_for_rerun(sweep_id)?;
    let label_of = |config_id: &str| {
        plan.ids
            .iter()
            .position(|id| id == config_id)
            .map_or_else(String::new, |i| labels[i].clone())
    };

    let in_slice = |job: &JobRow| {
        options.shard.is_none()
            || selected.iter().any(|(c, f)| *c == job.config_id && *f == job.fold)
    };
    let mut queue: VecDeque<JobRow> =
        store.jobs(sweep_id, "pending")?.into_iter().filter(|j| in_slice(j)).collect();
    let already_done = store.jobs(sweep_id, "done")?.into_iter().filter(|j| in_slice(j)).count();
    let jobs_total = selected.len();
    if queue.is_empty() {
        println!("nothing to do: all {jobs_total} jobs of sweep {:?} are done", sweep.name);
        return Ok(RunSummary { jobs_total, done: already_done, ..Default::default() });
    }
    let slot_devices: Vec<Device> = options
        .devices
        .iter()
        .flat_map(|d| std::iter::repeat_n(d.clone(), options.jobs_per_device.max(1)))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu_threads =
        cpu_thread_share(&slot_devices, std::env::var_os("RAYON_NUM_THREADS").is_some(), cores);
    let work_dir = options.db.with_extension("jobs");
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let checkpoint_root = store.base_dir().join("checkpoints");
    let shard_note = options.shard.map_or(String::new(), |s| {
        format!(" (shard {}/{} of {} jobs)", s.index, s.count, all_jobs.len())
    });
    println!(
        "sweep {:?}: {} configs x {folds} folds = {jobs_total} jobs{shard_note}; {already_done} done, {} to run on {} slot(s) [{}]",
        sweep.name,
        points.len(),
        queue.len(),
        slot_devices.len(),
        options.devices.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    );

    let progress = Progress::new(slot_devices.len(), jobs_total);
    let (events_tx, events) = mpsc::channel::<Event>();
    let mut slots: Vec<Option<Running>> = (0..slot_devices.len()).map(|_| None).collect();
    let mut summary = RunSummary { jobs_total, done: already_done, ..Default::default() };
    let mut durations: Vec<f64> = Vec::new();
    let interrupts_at_start = INTERRUPTS.load(Ordering::SeqCst);
    let mut announced_stop = false;

    loop {
        let interrupts = INTERRUPTS.load(Ordering::SeqCst) - interrupts_at_start;
        if interrupts >= 2 {
            for running in slots.iter_mut().filter_map(Option::take) {
                stop_child(running.child);
                store.mark_interrupted(running.job.id)?;
                summary.interrupted += 1;
            }
            progress.event(
                counts(&summary, &slots, &queue),
                None,
                "interrupted: running jobs stopped and marked interrupted (rerun to resume)",
            );
            break;
        }
        if interrupts == 1 && !announced_stop {
            announced_stop = true;
            progress.event(counts(&summary, &slots, &queue), None, "Ctrl-C: no new jobs will start; waiting for the running ones (Ctrl-C again to stop them)");
        }
        if interrupts == 0 {
            for (slot, device) in slot_devices.iter().enumerate() {
                if slots[slot].is_some() {
                    continue;
                }
                let Some(job) = queue.pop_front() else { break };
                if !store.claim(job.id, &device.to_string())? {
                    continue; // another coordinator on this database took it
                }
                let config: crate::config::Config =
                    serde_json::from_str(&store.config_params(&job.config_id)?)?;
                let running = spawn_job(
                    &work_dir,
                    &checkpoint_root,
                    job,
                    config,
                    (device, cpu_threads),
                    slot,
                    label_of,
                    events_tx.clone(),
                )?;
                store.set_worker_pid(running.job.id, running.child.id())?;
                slots[slot] = Some(running);
            }
        }
        if slots.iter().all(Option::is_none) {
            break;
        }
        // Wait briefly for news, then take what is queued, but never loop on the channel: a
        // job streaming epochs every few milliseconds must not starve Ctrl-C, heartbeats and
        // exit checks below.
        let first = events.recv_timeout(Duration::from_millis(100)).ok();
        for Event::Epoch(slot, epoch) in first.into_iter().chain(events.try_iter().take(1000)) {
            if let Some(running) = slots[slot].as_mut() {
                progress.slot(
                    slot,
                    &format!(
                        "{} {} fold {} [{}]: epoch {} val_rmse {:.4}",
                        slot_devices[slot],
                        running.job.config_id,
                        running.job.fold,
                        running.label,
                        epoch.epoch,
                        epoch.val_rmse
                    ),
                );
                running.unsaved_epochs.push(epoch.clone());
                running.last_epoch = Some(epoch);
            }
        }
        for slot in 0..slots.len() {
            let Some(running) = slots[slot].as_mut() else { continue };
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
            let running = slots[slot].take().expect("slot is running");
            summary.ran += 1;
            let seconds = running.started.elapsed().as_secs_f64();
            let outcome = if status.success() {
                read_result(&running.result_path)
            } else {
                Err(describe_failure(status, &running.stderr_path))
            };
            let name =
                format!("{} fold {} [{}]", running.job.config_id, running.job.fold, running.label);
            match outcome {
                Ok(result) => {
                    let checkpoint =
                        format!("checkpoints/{}/fold{}", running.job.config_id, running.job.fold);
                    store.record_success(running.job.id, &result, Some(&checkpoint))?;
                    summary.done += 1;
                    durations.push(seconds);
                    let c = counts(&summary, &slots, &queue);
                    progress.event(
                        c,
                        eta(&durations, &c, slot_devices.len()),
                        &format!(
                            "done   {name}: rmse {:.4} macro {:.4} (best epoch {}/{}) in {:.1}s",
                            result.metrics.rmse,
                            result.metrics.macro_rmse,
                            result.best_epoch,
                            result.epochs_run,
                            seconds
                        ),
                    );
                }
                Err(error) => {
                    let retry = running.job.attempt + 1 < options.max_attempts
                        && INTERRUPTS.load(Ordering::SeqCst) == interrupts_at_start;
                    store.record_failure(running.job.id, &error, retry)?;
                    let attempt = running.job.attempt + 1;
                    if retry {
                        queue.push_back(JobRow { attempt, ..running.job.clone() });
                    } else {
                        summary.failed += 1;
                    }
                    let c = counts(&summary, &slots, &queue);
                    let what = if retry { "retry " } else { "FAILED" };
                    let first_line = error.lines().last().unwrap_or("").trim();
                    progress.event(
                        c,
                        eta(&durations, &c, slot_devices.len()),
                        &format!(
                            "{what} {name} (attempt {attempt}/{}): {first_line}",
                            options.max_attempts
                        ),
                    );
                }
            }
            let _ = std::fs::remove_file(&running.result_path);
        }
        let c = counts(&summary, &slots, &queue);
        progress.counts(c, eta(&durations, &c, slot_devices.len()));
    }
    progress.finish();
    if INTERRUPTS.load(Ordering::SeqCst) > interrupts_at_start {
        summary.not_started = queue.len();
    }
    Ok(summary)
}

fn counts(summary: &RunSummary, slots: &[Option<Running>], queue: &VecDeque<JobRow>) -> Counts {
    let running = slots.iter().filter(|s| s.is_some()).count();
    Counts {
        total: summary.jobs_total,
        done: summary.done,
        running,
        failed: summary.failed,
        left: queue.len(),
    }
}

/// Mean job time so far x jobs still to run / slots.
fn eta(durations: &[f64], c: &Counts, slots: usize) -> Option<Duration> {
    if durations.is_empty() {
        return None;
    }
    let mean = durations.iter().sum::<f64>() / durations.len() as f64;
    let remaining = (c.left as f64 + c.running as f64 * 0.5) * mean / slots.max(1) as f64;
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

#[allow(clippy::too_many_arguments)]
fn spawn_job(
    work_dir: &Path,
    checkpoint_root: &Path,
    job: JobRow,
    config: crate::config::Config,
    (device, cpu_threads): (&Device, Option<usize>),
    slot: usize,
    label_of: impl Fn(&str) -> String,
    events: mpsc::Sender<Event>,
) -> anyhow::Result<Running> {
    let stem = work_dir.join(format!("{}-fold{}", job.config_id, job.fold));
    let job_file = stem.with_extension("job.json");
    let result_path = stem.with_extension("result.json");
    let stderr_path = stem.with_extension("stderr.log");
    let _ = std::fs::remove_file(&result_path);
    let spec = JobSpec {
        config,
        fold: job.fold,
        device: device.to_string(),
        checkpoint_dir: checkpoint_root.join(&job.config_id).join(format!("fold{}", job.fold)),
        result_path: result_path.clone(),
    };
    crate::util::write_atomic(&job_file, serde_json::to_string(&spec)?.as_bytes())?;
    let mut command =
        Command::new(std::env::current_exe().context("locating the foldsweep binary")?);
    command
        .arg("worker")
        .arg(&job_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path)?)
        // Own process group: a terminal's Ctrl-C reaches only the coordinator, which decides.
        .process_group(0);
    if let (Device::Cpu, Some(threads)) = (device, cpu_threads) {
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
    let mut child = command.spawn().context("starting a worker process")?;
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(epoch) = serde_json::from_str::<EpochLog>(&line) {
                if events.send(Event::Epoch(slot, epoch)).is_err() {
                    break;
                }
            }
        }
    });
    Ok(Running {
        label: label_of(&job.config_id),
        job,
        child,
        started: Instant::now(),
        result_path,
        stderr_path,
        last_epoch: None,
        last_heartbeat: Instant::now(),
        unsaved_epochs: Vec::new(),
        epochs_saved: Instant::now(),
    })
}

fn read_result(path: &Path) -> Result<FoldResult, String> {
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

/// Shares the interrupt counter with callers that need to know (exit codes).
pub fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
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
