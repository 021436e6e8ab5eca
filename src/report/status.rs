//! `foldsweep status`: what happened overnight, per sweep (issue 18): when it ran and for
//! how long, its jobs by status, failures grouped by error, the best config so far, the disk
//! its checkpoints use, and whether a coordinator is running it now (with an ETA). `run`
//! ends with the same summary. Read-only, so it works while a sweep runs.

use std::path::Path;

use serde::Serialize;

use crate::results::{best, summaries, Criterion};
use crate::store::{JobStatus, Store};
use crate::util::process::{now, owner_running};

/// One sweep's morning summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepStatus {
    pub sweep: String,
    /// Unix seconds: the first job's start and the last one's end.
    pub started_at: Option<f64>,
    pub last_finished_at: Option<f64>,
    /// From the first start to the last finish (or to now while a coordinator runs).
    pub wall_seconds: Option<f64>,
    pub jobs: JobCounts,
    pub failures: Vec<FailureGroup>,
    pub best: Option<BestConfig>,
    pub checkpoint_bytes: u64,
    pub coordinators: Vec<CoordinatorStatus>,
    /// Seconds until the pending and running jobs are done at the pace so far; None without
    /// a live coordinator or a finished job to judge by.
    pub eta_seconds: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct JobCounts {
    pub total: usize,
    pub done: usize,
    pub failed: usize,
    pub diverged: usize,
    pub pruned: usize,
    pub interrupted: usize,
    pub running: usize,
    pub pending: usize,
}

/// Failed jobs with the same error (numbers aside: pids and thread ids differ run to run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureGroup {
    /// The error's telling line (for a panic: its message, not "thread 'main' panicked").
    pub first_line: String,
    pub jobs: usize,
    pub configs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BestConfig {
    pub config: String,
    pub label: String,
    /// "oof" or "shifted" (with validation probes): the sweep's criterion.
    pub criterion: &'static str,
    pub value: f64,
    pub folds_done: usize,
    pub folds_total: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoordinatorStatus {
    pub host: String,
    pub pid: i64,
    /// Unix seconds of its latest heartbeat.
    pub heartbeat: Option<f64>,
    pub running_jobs: usize,
    /// Whether the process is alive; None for another host, which cannot be checked here
    /// (judge by the heartbeat: a live coordinator beats every 5 s).
    pub alive: Option<bool>,
}

/// The summary of every sweep in the database, or of one.
pub fn statuses(store: &Store, sweep: Option<&str>) -> anyhow::Result<Vec<SweepStatus>> {
    let sweeps = match sweep {
        Some(name) => vec![store.resolve_sweep(Some(name))?],
        None => store.sweep_list()?.into_iter().map(|s| (s.id, s.name)).collect(),
    };
    sweeps.into_iter().map(|(id, name)| sweep_status(store, id, name)).collect()
}

pub fn sweep_status(store: &Store, sweep_id: i64, name: String) -> anyhow::Result<SweepStatus> {
    let counts = store.status_counts(sweep_id)?;
    let get = |status| counts.get(&status).copied().unwrap_or(0);
    let jobs = JobCounts {
        total: counts.values().sum(),
        done: get(JobStatus::Done),
        failed: get(JobStatus::Failed),
        diverged: get(JobStatus::Diverged),
        pruned: get(JobStatus::Pruned),
        interrupted: get(JobStatus::Interrupted),
        running: get(JobStatus::Running),
        pending: get(JobStatus::Pending),
    };
    let here = crate::util::process::hostname();
    let coordinators: Vec<CoordinatorStatus> = store
        .coordinators(sweep_id)?
        .into_iter()
        .map(|c| CoordinatorStatus {
            alive: (c.host == here).then(|| owner_running(c.pid, c.owner_start)),
            host: c.host,
            pid: c.pid,
            heartbeat: c.heartbeat,
            running_jobs: c.running_jobs,
        })
        .collect();
    let live = coordinators.iter().filter(|c| c.alive != Some(false)).count();
    let times = store.sweep_times(sweep_id)?;
    let end = if live > 0 { Some(now()) } else { times.last_finished };
    let wall_seconds = times.first_started.zip(end).map(|(a, b)| (b - a).max(0.0));
    let eta_seconds = match store.mean_job_seconds(sweep_id)? {
        Some(mean) if live > 0 => {
            let slots = jobs.running.max(1) as f64;
            Some((jobs.pending as f64 + 0.5 * jobs.running as f64) * mean / slots)
        }
        _ => None,
    };
    Ok(SweepStatus {
        sweep: name,
        started_at: times.first_started,
        last_finished_at: times.last_finished,
        wall_seconds,
        jobs,
        failures: failure_groups(store, sweep_id)?,
        best: best_config(store, sweep_id)?,
        checkpoint_bytes: checkpoint_bytes(store, sweep_id)?,
        coordinators,
        eta_seconds,
    })
}

fn best_config(store: &Store, sweep_id: i64) -> anyhow::Result<Option<BestConfig>> {
    let rows = summaries(store, sweep_id, crate::results::SortKey::Oof)?;
    let criterion = Criterion::default_for(&rows);
    let key = criterion.sort_key();
    Ok(best(&rows, key).and_then(|row| {
        Some(BestConfig {
            config: row.id.clone(),
            label: row.label.clone(),
            criterion: key.name(),
            value: key.value(row)?,
            folds_done: row.folds_done,
            folds_total: row.folds_total,
        })
    }))
}

fn failure_groups(store: &Store, sweep_id: i64) -> anyhow::Result<Vec<FailureGroup>> {
    // Keyed by the error with its digits blanked, in the order first seen.
    let mut groups: Vec<(String, FailureGroup)> = Vec::new();
    for job in store.failed_jobs(sweep_id)? {
        let line = headline(&job.error);
        let key: String = line.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
        let index = match groups.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let group = FailureGroup { first_line: line, jobs: 0, configs: Vec::new() };
                groups.push((key, group));
                groups.len() - 1
            }
        };
        let group = &mut groups[index].1;
        group.jobs += 1;
        if !group.configs.contains(&job.config_id) {
            group.configs.push(job.config_id);
        }
    }
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}

/// The line of an error text that says what went wrong: the first non-empty one, except
/// that a Rust panic's "thread '...' panicked at FILE:LINE:" header gives way to its message.
pub fn headline(error: &str) -> String {
    let lines: Vec<&str> = error.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let is_header = |l: &str| l.starts_with("thread '") && l.contains("panicked at");
    lines
        .iter()
        .position(|l| !is_header(l))
        .map_or_else(|| lines.first().copied().unwrap_or("(no error text)"), |i| lines[i])
        .to_string()
}

/// Bytes under `checkpoints/<config id>/` next to the database, for the sweep's configs.
fn checkpoint_bytes(store: &Store, sweep_id: i64) -> anyhow::Result<u64> {
    let root = store.base_dir().join("checkpoints");
    Ok(store.current_config_ids(sweep_id)?.iter().map(|id| dir_bytes(&root.join(id))).sum())
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The text form, one block per sweep.
pub fn render(statuses: &[SweepStatus]) -> String {
    statuses.iter().map(render_one).collect::<Vec<_>>().join("\n")
}

fn render_one(s: &SweepStatus) -> String {
    let mut out = format!("sweep \"{}\"\n", s.sweep);
    let ran = match (s.started_at, s.wall_seconds) {
        (Some(start), Some(wall)) => {
            format!("{} for {}", local_time(start), human_duration(wall))
        }
        _ => "not yet".to_string(),
    };
    out += &format!("  ran:         {ran}\n");
    let j = &s.jobs;
    out += &format!(
        "  jobs:        {} done, {} failed, {} diverged, {} pruned, {} interrupted, {} running, {} pending (of {})\n",
        j.done, j.failed, j.diverged, j.pruned, j.interrupted, j.running, j.pending, j.total
    );
    for group in &s.failures {
        out += &format!(
            "  failed {}x:   {} (configs {})\n",
            group.jobs,
            group.first_line,
            group.configs.join(", ")
        );
    }
    out += &match &s.best {
        Some(b) => format!(
            "  best:        {} [{}] {} RMSE {:.4} ({}/{} folds)\n",
            b.config, b.label, b.criterion, b.value, b.folds_done, b.folds_total
        ),
        None => "  best:        none yet\n".to_string(),
    };
    out += &format!("  checkpoints: {}\n", human_bytes(s.checkpoint_bytes));
    if s.coordinators.is_empty() {
        out += "  coordinator: none running\n";
    }
    for c in &s.coordinators {
        let state = match c.alive {
            Some(true) => "running",
            Some(false) => "gone (its jobs are requeued by the next run)",
            None => "on another host",
        };
        let beat = c.heartbeat.map_or("never".to_string(), |h| {
            format!("{} ago", human_duration((now() - h).max(0.0)))
        });
        out += &format!(
            "  coordinator: pid {} on {}, {state}, {} job(s), last heartbeat {beat}\n",
            c.pid, c.host, c.running_jobs
        );
    }
    if let Some(eta) = s.eta_seconds {
        out += &format!("  eta:         {}\n", human_duration(eta));
    }
    let unfinished = j.pending + j.interrupted + j.failed;
    if s.coordinators.is_empty() && unfinished > 0 {
        out += &format!(
            "  {unfinished} job(s) left: run the sweep's `foldsweep run` command again to continue\n"
        );
    }
    out
}

/// `3h 12m`, `4m 05s`, `12s`.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn human_bytes(bytes: u64) -> String {
    let units = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in units {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} B")
}

/// Local `YYYY-MM-DD HH:MM` of unix seconds.
fn local_time(unix: f64) -> String {
    // SAFETY: localtime_r writes only the tm we own.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let t = unix as libc::time_t;
        if libc::localtime_r(&t, &mut tm).is_null() {
            return format!("{unix:.0}");
        }
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panics_headline_is_its_message() {
        let error = "\nthread 'main' (4242) panicked at src/job.rs:10:5:\ndeliberate panic on fold 2\nnote: run with RUST_BACKTRACE=1\nworker exited with code 101";
        assert_eq!(headline(error), "deliberate panic on fold 2");
        assert_eq!(
            headline("worker killed by SIGKILL (out of memory?)"),
            "worker killed by SIGKILL (out of memory?)"
        );
        assert_eq!(headline(""), "(no error text)");
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(human_duration(12.4), "12s");
        assert_eq!(human_duration(245.0), "4m 05s");
        assert_eq!(human_duration(3.0 * 3600.0 + 12.0 * 60.0), "3h 12m");
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
