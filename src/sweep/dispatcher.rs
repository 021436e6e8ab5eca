//! The dispatcher: the loop that fills device slots with claimed jobs, reads their epochs,
//! asks the pruners, records what finished and reports events. It owns no process; the
//! [`super::launcher`] starts and stops workers.

use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::launcher::describe_failure;
use super::launcher::read_outcome;
use super::launcher::stop_child;
use super::launcher::Launcher;
use super::stopping::{StopReason, Stopper, Verdict};
use super::*;
use super::{recover, retry, signals};
use crate::backend::Device;
use crate::config::Config;
use crate::job::FoldRun;
use crate::results::objective;
use crate::search::{Decision, PruneConfig};
use crate::store::{JobRow, JobStatus, Store};
use crate::train::EpochLog;

pub(super) struct Running {
    pub(super) job: JobRow,
    pub(super) job_ref: JobRef,
    /// What it trains with (ASHA reads its epochs and monitor).
    pub(super) config: Config,
    /// The epochs it reported so far.
    pub(super) epochs: Vec<EpochLog>,
    pub(super) child: Child,
    pub(super) started: Instant,
    pub(super) result_path: PathBuf,
    pub(super) stderr_path: PathBuf,
    pub(super) last_heartbeat: Instant,
    /// Epochs not yet in the database; written about once a second so `serve` shows them live.
    pub(super) unsaved_epochs: Vec<EpochLog>,
    pub(super) epochs_saved: Instant,
}

/// A worker's epoch line, tagged with its slot and job (a pruned job's last lines may still
/// arrive after its slot runs another job).
pub(super) struct EpochLine(pub(super) usize, pub(super) i64, pub(super) EpochLog);

pub(super) struct SweepLoop<'a> {
    pub(super) sweep_id: i64,
    pub(super) plan: &'a Plan,
    pub(super) options: &'a RunOptions,
    pub(super) filter: crate::store::JobFilter<'a>,
    pub(super) launcher: Launcher,
    pub(super) slot_devices: Vec<Device>,
    pub(super) slots: Vec<Option<Running>>,
    pub(super) summary: RunSummary,
    pub(super) durations: Vec<f64>,
    pub(super) stopper: Stopper,
    /// A random or tpe search proposes trials when the queue runs dry.
    pub(super) study: Option<study::Study<'a>>,
    /// The pruners, unless `--no-prune` or none configured.
    pub(super) prune: Option<PruneConfig>,
}

/// How long an idle coordinator waits before looking for work again.
pub(super) const IDLE_POLL: Duration = Duration::from_millis(500);

impl SweepLoop<'_> {
    pub(super) fn run(
        &mut self,
        store: &mut Store,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<()> {
        let (epochs_tx, epochs) = mpsc::channel::<EpochLine>();
        let mut announced_wait = false;
        let mut next_claim = Instant::now();
        loop {
            let verdict = self.stopper.poll();
            let stopping = verdict != Verdict::Run;
            if let Verdict::StopRunning { reason, grace_ran_out } = verdict {
                let stopped = self.stop_all(store)?;
                let counts = self.counts(store)?;
                on_event(&SweepEvent::Interrupted { stopped, reason, grace_ran_out, counts });
                return Ok(());
            }
            if let Verdict::NoNewJobs { reason, announce: true } = verdict {
                let grace = (reason != StopReason::Store).then(|| self.stopper.grace());
                let cause = self.stopper.store_cause().map(str::to_string);
                on_event(&SweepEvent::Stopping {
                    reason,
                    grace,
                    cause,
                    counts: self.counts(store)?,
                });
            }
            let mut queue_empty = false;
            if !stopping && Instant::now() >= next_claim {
                queue_empty = self.fill_slots(store, &epochs_tx, on_event)?;
                if queue_empty {
                    next_claim = Instant::now() + IDLE_POLL;
                }
            }
            if self.slots.iter().all(Option::is_none) {
                if stopping {
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
    pub(super) fn fill_slots(
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
            let expected = store.mean_job_seconds(self.sweep_id)?.map(Duration::from_secs_f64);
            if !self.stopper.admits(expected) {
                // Nothing fits before the deadline (or a stop came): start nothing more.
                if self.stopper.reason().is_none() {
                    self.stopper.stop_for_deadline();
                }
                return Ok(false);
            }
            let claimed =
                self.retried(store, on_event, "claiming a job", |this, store, events| {
                    this.claim(store, &device, events)
                })?;
            let Some(Some(job)) = claimed else {
                return Ok(true);
            };
            let (config, label) = self.job_config(store, &job)?;
            let job_ref = JobRef { config_id: job.config_id.clone(), fold: job.fold, label };
            let spawned =
                self.retried(store, on_event, "writing the job's file", |this, _, _| {
                    let slot_device = (&device, slot);
                    this.launcher.spawn(
                        job.clone(),
                        job_ref.clone(),
                        config.clone(),
                        slot_device,
                        epochs.clone(),
                    )
                })?;
            let Some(running) = spawned else {
                // The job stays claimed by this process; the next run takes it back.
                return Ok(false);
            };
            let (job_id, worker_pid) = (running.job.id, running.child.id());
            self.retried(store, on_event, "recording the worker's pid", |_, store, _| {
                store.set_worker_pid(job_id, worker_pid)
            })?;
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
    pub(super) fn claim(
        &mut self,
        store: &mut Store,
        device: &Device,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<Option<JobRow>> {
        let racing = self.prune.is_some_and(|p| p.folds);
        loop {
            let claimed =
                store.claim_next(self.sweep_id, &device.to_string(), self.filter, racing)?;
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
    pub(super) fn trial_event(
        &self,
        store: &Store,
        trial: study::NewTrialInfo,
    ) -> anyhow::Result<SweepEvent> {
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
    pub(super) fn job_config(
        &self,
        store: &mut Store,
        job: &JobRow,
    ) -> anyhow::Result<(Config, String)> {
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
    pub(super) fn asha(
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
        // Every epoch of every job comes here: off a rung (and always with `prune = true`, whose
        // ASHA is off) gather nothing.
        if !pruning::asha_rung(&prune, running.config.train.epochs, last.epoch) {
            return Ok(false);
        }
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
        let running_ids: Vec<i64> = self.slots.iter().flatten().map(|r| r.job.id).collect();
        let decision = pruning::asha(
            store,
            (self.sweep_id, &prune, running.config.train.epochs),
            running.job.fold,
            (last.epoch, running.config.validation.monitor()),
            value,
            pruning::RunningRung { job_ids: &running_ids, values: &at_rung },
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
    pub(super) fn race(
        &mut self,
        store: &mut Store,
        job: &JobRef,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<()> {
        let Some(prune) = self.prune else { return Ok(()) };
        let Some(reason) = pruning::race_config(store, self.sweep_id, &prune, &job.config_id)?
        else {
            return Ok(());
        };
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
    pub(super) fn reap_finished(
        &mut self,
        store: &mut Store,
        on_event: &mut dyn FnMut(&SweepEvent),
    ) -> anyhow::Result<bool> {
        let mut any = false;
        for slot in 0..self.slots.len() {
            let Some(running) = self.slots[slot].as_mut() else { continue };
            let job_id = running.job.id;
            if running.last_heartbeat.elapsed() > Duration::from_secs(5) {
                running.last_heartbeat = Instant::now();
                self.retried(store, on_event, "a heartbeat", |_, store, _| {
                    store.heartbeat(job_id)
                })?;
            }
            let running = self.slots[slot].as_mut().expect("slot is running");
            if running.epochs_saved.elapsed() > Duration::from_secs(1) {
                running.epochs_saved = Instant::now();
                let unsaved = std::mem::take(&mut running.unsaved_epochs);
                let saved = self.retried(store, on_event, "recording epochs", |_, store, _| {
                    store.record_epochs(job_id, &unsaved)
                })?;
                if saved.is_none() {
                    // Kept for the next try; the result file has them all anyway.
                    let running = self.slots[slot].as_mut().expect("slot is running");
                    running.unsaved_epochs.splice(0..0, unsaved);
                }
            }
            let running = self.slots[slot].as_mut().expect("slot is running");
            let Some(status) = running.child.try_wait()? else { continue };
            let running = self.slots[slot].take().expect("slot is running");
            any = true;
            self.summary.ran += 1;
            let outcome = if status.success() {
                read_outcome(&running.result_path)
            } else {
                Err(describe_failure(status, &running.stderr_path))
            };
            let recorded =
                self.retried(store, on_event, "recording a finished job", |this, store, _| {
                    this.record(store, &running, outcome.clone())
                })?;
            // Not recorded: the result file stays for the next run to record.
            let Some(event) = recorded else { continue };
            on_event(&event);
            if matches!(event, SweepEvent::JobDone { .. }) {
                self.race(store, &running.job_ref, on_event)?;
            }
            let _ = std::fs::remove_file(&running.result_path);
        }
        Ok(any)
    }

    /// Stores what a finished job reported and says so as an event.
    pub(super) fn record(
        &mut self,
        store: &mut Store,
        running: &Running,
        outcome: Result<FoldRun, String>,
    ) -> anyhow::Result<SweepEvent> {
        let job = running.job_ref.clone();
        let seconds = running.started.elapsed().as_secs_f64();
        match outcome {
            Ok(FoldRun::Done(result)) => {
                // Stored relative to the database's folder, so a shard folder can move.
                let checkpoint = result
                    .checkpoint
                    .as_ref()
                    .map(|_| recover::checkpoint_relative(&job.config_id, job.fold));
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
            Ok(FoldRun::Diverged(diverged)) => {
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
                let retry = attempt < max_attempts && self.stopper.reason().is_none();
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
    pub(super) fn stop_all(&mut self, store: &mut Store) -> anyhow::Result<usize> {
        let mut stopped = 0;
        for running in self.slots.iter_mut().filter_map(Option::take) {
            stop_child(running.child);
            // A store that cannot be written leaves the job `running` under this process,
            // which the next run takes back once this one has exited.
            if let Err(e) = store.mark_interrupted(running.job.id) {
                if retry::fault(&e).is_none() {
                    return Err(e);
                }
            }
            stopped += 1;
        }
        self.summary.interrupted += stopped;
        Ok(stopped)
    }

    /// Runs a store write with retries ([`retry::retrying`]). A write that still fails with
    /// a fault (busy, full, I/O) stops the run gracefully and gives None; other errors are
    /// returned.
    pub(super) fn retried<T>(
        &mut self,
        store: &mut Store,
        on_event: &mut dyn FnMut(&SweepEvent),
        what: &str,
        mut op: impl FnMut(&mut Self, &mut Store, &mut dyn FnMut(&SweepEvent)) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        if self.stopper.reason() == Some(StopReason::Store) {
            // Already failed for good: one try, no waiting.
            return match op(self, store, on_event) {
                Ok(v) => Ok(Some(v)),
                Err(e) if retry::fault(&e).is_some() => Ok(None),
                Err(e) => Err(e),
            };
        }
        let db = store.path().to_path_buf();
        let window = self.options.store_retry;
        let stops_at_start = signals::stops();
        let outcome = {
            let events = std::cell::RefCell::new(&mut *on_event);
            let this = &mut *self;
            retry::retrying(
                window,
                || op(this, store, &mut |e| (events.borrow_mut())(e)),
                |error, pause| {
                    let cause = retry::describe(&db, what, error);
                    (events.borrow_mut())(&SweepEvent::StoreRetrying { cause, pause });
                },
                || signals::stops() > stops_at_start + 1,
            )
        };
        match outcome {
            Ok(value) => Ok(Some(value)),
            Err(error) if retry::fault(&error).is_some() => {
                self.stopper.store_failed(retry::describe(&db, what, &error));
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    pub(super) fn counts(&self, store: &Store) -> anyhow::Result<Counts> {
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
pub(super) fn eta(
    durations: &[f64],
    left: usize,
    running: usize,
    slots: usize,
) -> Option<Duration> {
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
pub(super) fn cpu_thread_share(
    slot_devices: &[Device],
    user_set_threads: bool,
    cores: usize,
) -> Option<usize> {
    let cpu_slots = slot_devices.iter().filter(|d| **d == Device::Cpu).count();
    (cpu_slots > 1 && !user_set_threads).then(|| (cores / cpu_slots).max(1))
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
