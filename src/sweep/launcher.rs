//! The launcher: starts a job's worker process with its job file, streams its epoch lines,
//! and reads back or explains its outcome.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;

use super::dispatcher::cpu_thread_share;
use super::dispatcher::EpochLine;
use super::dispatcher::Running;
use super::worker::JobSpec;
use super::*;
use crate::backend::Device;
use crate::config::Config;
use crate::job::FoldRun;
use crate::store::{JobRow, Store};
use crate::train::EpochLog;

/// Where and how workers start.
pub(super) struct Launcher {
    pub(super) work_dir: PathBuf,
    /// Where checkpoints go; None when the sweep keeps none.
    pub(super) checkpoint_root: Option<PathBuf>,
    pub(super) worker_exe: PathBuf,
    pub(super) cpu_threads: Option<usize>,
}

impl Launcher {
    pub(super) fn new(
        options: &RunOptions,
        store: &Store,
        slot_devices: &[Device],
    ) -> anyhow::Result<Self> {
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

    pub(super) fn spawn(
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

pub(super) fn read_outcome(path: &Path) -> Result<FoldRun, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("the worker exited without a result ({e})"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("unreadable worker result: {e}"))
}

/// The tail of the worker's stderr and how it ended (exit code or signal).
pub(super) fn describe_failure(status: std::process::ExitStatus, stderr_path: &Path) -> String {
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

pub(super) fn stop_child(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}
