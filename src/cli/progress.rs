//! Renders a sweep's events: bars on a terminal (per running job its device, fold, epoch and
//! validation RMSE), one line per finished job otherwise (for logs of overnight runs). The
//! library only reports events; how they look is the CLI's business.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sweep::{Counts, JobRef, SweepEvent};

pub enum Progress {
    /// Before the sweep starts (or when it has nothing to do): plain lines.
    Idle {
        started: Instant,
        terminal: bool,
    },
    Terminal {
        multi: MultiProgress,
        overall: ProgressBar,
        slots: Vec<ProgressBar>,
    },
    Plain {
        started: Instant,
    },
}

impl Progress {
    pub fn new() -> Progress {
        Progress::Idle { started: Instant::now(), terminal: std::io::stdout().is_terminal() }
    }

    pub fn render(&mut self, event: &SweepEvent) {
        match event {
            SweepEvent::Started { .. } => self.start(event),
            SweepEvent::NothingToDo { sweep, jobs_total, running } => {
                if *running == 0 {
                    println!("nothing to do: all {jobs_total} jobs of sweep {sweep:?} are done");
                } else {
                    println!(
                        "nothing to start: {running} of the {jobs_total} jobs of sweep {sweep:?} \
                         run in another coordinator; waiting for them"
                    );
                }
            }
            SweepEvent::JobStarted { slot, device, job, .. } => {
                self.slot(*slot, &format!("{device} {}: starting", name(job)));
            }
            SweepEvent::Epoch { slot, device, job, epoch } => self.slot(
                *slot,
                &format!(
                    "{device} {}: epoch {} val_rmse {:.4}",
                    name(job),
                    epoch.epoch,
                    epoch.val_rmse
                ),
            ),
            SweepEvent::JobDone { job, rmse, macro_rmse, best_epoch, epochs_run, seconds, counts } => {
                self.line(
                    counts,
                    &format!(
                        "done   {}: rmse {rmse:.4} macro {macro_rmse:.4} (best epoch {best_epoch}/{epochs_run}) in {seconds:.1}s",
                        name(job)
                    ),
                );
            }
            SweepEvent::JobRetried { job, attempt, max_attempts, error, counts } => {
                self.line(counts, &failure("retry ", job, *attempt, *max_attempts, error));
            }
            SweepEvent::JobFailed { job, attempt, max_attempts, error, counts } => {
                self.line(counts, &failure("FAILED", job, *attempt, *max_attempts, error));
            }
            SweepEvent::JobDiverged { job, epoch, counts } => self.line(
                counts,
                &format!("DIVERGED {} at epoch {epoch} (not retried)", name(job)),
            ),
            SweepEvent::TrialStarted { number, label, trials, progress } => {
                let best = progress.best.map_or("-".into(), |b| format!("{b:.4}"));
                self.note(&format!(
                    "trial  {number} of {trials} [{label}] | trials complete {} running {} pruned {} | best {best}",
                    progress.complete, progress.running, progress.pruned
                ));
            }
            SweepEvent::JobPruned { job, epochs, reason, counts } => self.line(
                counts,
                &format!("pruned {} after {epochs} epoch(s): {reason}", name(job)),
            ),
            SweepEvent::Waiting { running, counts } => self.line(
                counts,
                &format!("waiting for {running} job(s) another coordinator runs"),
            ),
            SweepEvent::Stopping { reason, grace, cause, counts } => {
                self.line(counts, &stopping_message(*reason, *grace, cause.as_deref()))
            }
            SweepEvent::Interrupted { counts, grace_ran_out, .. } => self.line(
                counts,
                &format!(
                    "interrupted{}: running jobs stopped and marked interrupted (run the same command again to resume)",
                    if *grace_ran_out { " (the grace period ran out)" } else { "" }
                ),
            ),
            SweepEvent::StoreRetrying { cause, pause } => {
                self.note(&format!("{cause}; retrying in {:.1}s", pause.as_secs_f64()))
            }
            SweepEvent::Finished { .. } => self.finish(),
        }
    }

    fn start(&mut self, event: &SweepEvent) {
        let SweepEvent::Started {
            sweep,
            configs,
            folds,
            jobs_total,
            already_done,
            to_run,
            slots,
            devices,
            shard,
        } = event
        else {
            return;
        };
        let shard_note = shard.map_or(String::new(), |(s, all)| {
            format!(" (shard {}/{} of {all} jobs)", s.index, s.count)
        });
        println!(
            "sweep {sweep:?}: {configs} configs x {folds} folds = {jobs_total} jobs{shard_note}; {already_done} done, {to_run} to run on {slots} slot(s) [{}]",
            devices.join(", ")
        );
        let (started, terminal) = match self {
            Progress::Idle { started, terminal } => (*started, *terminal),
            _ => return,
        };
        *self =
            if terminal { terminal_bars(*slots, *jobs_total) } else { Progress::Plain { started } };
    }

    fn slot(&self, slot: usize, text: &str) {
        if let Progress::Terminal { slots, .. } = self {
            if let Some(bar) = slots.get(slot) {
                bar.set_message(text.to_string());
            }
        }
    }

    /// A line that stays, without counts (a new trial); printed above the bars.
    fn note(&self, text: &str) {
        match self {
            Progress::Terminal { multi, .. } => {
                let _ = multi.println(text);
            }
            Progress::Plain { started } | Progress::Idle { started, .. } => {
                println!("[{:>7}] {text}", format_duration(started.elapsed()));
            }
        }
    }

    /// A line that stays: job finished, failed, retried, diverged; printed above the bars.
    fn line(&self, c: &Counts, text: &str) {
        match self {
            Progress::Terminal { multi, overall, .. } => {
                let _ = multi.println(text);
                overall.set_length(c.total as u64);
                overall.set_position((c.done + c.failed + c.diverged + c.pruned) as u64);
                let eta = c.eta.map_or(String::new(), |d| format!(", ETA {}", format_duration(d)));
                overall.set_message(format!(
                    "done {} | running {} | failed {} | diverged {} | pruned {} | left {}{eta}",
                    c.done, c.running, c.failed, c.diverged, c.pruned, c.left
                ));
            }
            Progress::Plain { started } | Progress::Idle { started, .. } => {
                let eta = c.eta.map_or(String::new(), |d| format!(" ETA {}", format_duration(d)));
                let diverged = if c.diverged > 0 {
                    format!(" diverged {}", c.diverged)
                } else {
                    String::new()
                };
                let pruned =
                    if c.pruned > 0 { format!(" pruned {}", c.pruned) } else { String::new() };
                println!(
                    "[{:>7}] {text} | done {}/{} running {} failed {}{diverged}{pruned} left {}{eta}",
                    format_duration(started.elapsed()),
                    c.done,
                    c.total,
                    c.running,
                    c.failed,
                    c.left
                );
            }
        }
    }

    fn finish(&self) {
        if let Progress::Terminal { overall, slots, .. } = self {
            slots.iter().for_each(ProgressBar::finish_and_clear);
            overall.finish();
        }
    }
}

fn terminal_bars(slots: usize, total: usize) -> Progress {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
    let overall = multi.add(ProgressBar::new(total as u64));
    overall.set_style(
        ProgressStyle::with_template(
            "{bar:30.green/dim} {pos}/{len} jobs  {msg}  [{elapsed_precise}, ETA {eta}]",
        )
        .expect("template"),
    );
    let slots = (0..slots)
        .map(|_| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("template"));
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        })
        .collect();
    Progress::Terminal { multi, overall, slots }
}

fn name(job: &JobRef) -> String {
    format!("{} fold {} [{}]", job.config_id, job.fold, job.label)
}

fn failure(what: &str, job: &JobRef, attempt: u32, max_attempts: u32, error: &str) -> String {
    let last_line = error.lines().last().unwrap_or("").trim();
    format!("{what} {} (attempt {attempt}/{max_attempts}): {last_line}", name(job))
}

pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// What a graceful stop says: why, what happens to the running jobs, and how to go on.
fn stopping_message(
    reason: crate::sweep::StopReason,
    grace: Option<std::time::Duration>,
    cause: Option<&str>,
) -> String {
    use crate::sweep::StopReason;
    let wait = match grace {
        Some(g) => format!("waiting up to {}s for the running ones", g.as_secs()),
        None => "letting the running ones finish into their result files".to_string(),
    };
    match reason {
        StopReason::Signal(name) => format!(
            "{name}: no new jobs will start; {wait} (a second signal stops them); run the same command again to resume"
        ),
        StopReason::Deadline => format!(
            "the deadline: no new jobs will start; {wait}; run the same command to continue"
        ),
        StopReason::Store => format!(
            "{}: no new jobs will start; {wait}; free the cause, then run the same command again (it records their results)",
            cause.unwrap_or("the database cannot be written")
        ),
    }
}
