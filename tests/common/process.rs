//! Long-running commands for the black-box tests of signals, deadlines and faults: a child
//! whose output is collected while it runs, and waits on observable state (a row in the
//! store, a line of output) with generous timeouts instead of fixed sleeps, so the tests hold
//! on a loaded machine.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Scratch, TINY_SWEEP};

/// How long a test waits for something that takes a second when the machine is idle.
pub const PATIENCE: Duration = Duration::from_secs(180);

/// A running command; its stdout and stderr are read as they come. Killed when dropped.
pub struct Spawned {
    pub child: Child,
    pub output: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Spawned {
    /// Starts `command` in `dir`, in a process group of its own (as a shell starts a job).
    pub fn start(mut command: Command, dir: &Path) -> Spawned {
        use std::os::unix::process::CommandExt;
        super::command::default_signals(&mut command);
        let mut child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start the command");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let pipes: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for mut pipe in pipes {
            let output = Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
        }
        Spawned { child, output, readers }
    }

    /// `foldsweep ARGS` started by [`Spawned::start`].
    pub fn foldsweep(dir: &Path, args: &[&str]) -> Spawned {
        let mut command = Command::new(env!("CARGO_BIN_EXE_foldsweep"));
        command.args(args);
        Spawned::start(command, dir)
    }

    /// Everything it printed so far (stdout and stderr, interleaved as they arrived).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the process (`group`: to its whole process group, as a terminal's
    /// hangup reaches every process of the job).
    pub fn signal(&self, signal: i32, group: bool) {
        let target = if group { -self.pid() } else { self.pid() };
        // SAFETY: kill(2) on our own child (or its process group); no memory is involved.
        let rc = unsafe { libc::kill(target, signal) };
        assert_eq!(rc, 0, "kill({target}, {signal}): {}", std::io::Error::last_os_error());
    }

    /// Polls `done` until it holds; fails after `PATIENCE`, or as soon as the process has
    /// exited with `done` still false (with its output either way).
    pub fn wait_for(&mut self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            if let Ok(Some(status)) = self.child.try_wait() {
                if !done() {
                    std::thread::sleep(Duration::from_millis(200)); // the last output
                    panic!("exited ({status}) before {what}; output:\n{}", self.output());
                }
                return;
            }
            let waited = started.elapsed();
            assert!(waited < PATIENCE, "waited {waited:?} for {what}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for it to exit (at most `PATIENCE`) and returns its status and all its output.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                for reader in std::mem::take(&mut self.readers) {
                    let _ = reader.join();
                }
                return (status, self.output());
            }
            if started.elapsed() > PATIENCE {
                let output = self.output();
                panic!("still running after {PATIENCE:?}; output so far:\n{output}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: as in `signal`: our own child's process group.
            unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

/// Polls `done` until it holds, failing with `what` (and `context()`) after `PATIENCE`.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < PATIENCE, "waited {PATIENCE:?} for {what}:\n{}", context());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `SELECT COUNT(*) ...` on a results database that may not exist yet (then 0), opened
/// read-only so the test never takes the coordinator's write lock.
pub fn count_rows(db: &Path, sql: &str) -> i64 {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(db, flags)
        .ok()
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)).ok())
        .unwrap_or(0)
}

/// Every job of a sweep of `configs` configs x 5 folds recorded exactly once, done, with its
/// fold result and OOF predictions, and the database intact.
pub fn assert_every_job_done_once(db: &Path, configs: i64) {
    let count = |sql: &str| count_rows(db, sql);
    assert_eq!(count("SELECT COUNT(*) FROM jobs"), configs * 5, "jobs");
    assert_eq!(count("SELECT COUNT(*) FROM jobs WHERE status = 'done'"), configs * 5, "done");
    assert_eq!(
        count("SELECT COUNT(DISTINCT config_id || '/' || fold) FROM jobs"),
        configs * 5,
        "distinct jobs"
    );
    assert_eq!(count("SELECT COUNT(*) FROM fold_results"), configs * 5, "fold results");
    assert_eq!(count("SELECT COUNT(*) FROM oof_predictions"), configs * 400, "OOF rows");
    let conn = rusqlite::Connection::open(db).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
}

/// TINY_SWEEP (2 configs x 5 folds) with jobs of `epochs` epochs (about 10 ms each on an
/// idle machine), one at a time.
pub fn sweep_with_epochs(epochs: usize) -> Scratch {
    let s = Scratch::new();
    s.write(
        "sweep.toml",
        TINY_SWEEP
            .replace("epochs = 3", &format!("epochs = {epochs}\npatience = 0"))
            .replace("jobs_per_device = 2", "jobs_per_device = 1"),
    );
    s
}

pub const RUN: [&str; 4] = ["run", "sweep.toml", "--db", "results.db"];

/// How many of the scratch database's jobs have `status`.
pub fn jobs(s: &Scratch, status: &str) -> i64 {
    count_rows(
        &s.path("results.db"),
        &format!("SELECT COUNT(*) FROM jobs WHERE status = '{status}'"),
    )
}
