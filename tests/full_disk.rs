//! A disk that fills mid-sweep (issue 18), on a small tmpfs that the test mounts. Mounting
//! needs root (CI runs as root); where it is not permitted the tests say so on stderr and
//! skip, and FOLDSWEEP_REQUIRE_TMPFS=1 (set by .ci/run) makes that a failure instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::process::{assert_every_job_done_once, count_rows, Spawned};
use crate::common::{Scratch, TINY_SWEEP};

const REQUIRE_TMPFS: &str = "FOLDSWEEP_REQUIRE_TMPFS";

/// A tmpfs of a few MB mounted on a temporary folder; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(test: &str, size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match mounted {
            Ok(out) if out.status.success() => return Some(Tmpfs { dir }),
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => format!("cannot run mount: {e}"),
        };
        let how = format!("mounting a tmpfs failed ({why}); run the tests as root to include it");
        assert!(std::env::var(REQUIRE_TMPFS).as_deref() != Ok("1"), "{REQUIRE_TMPFS}=1 but {how}");
        // Straight to stderr: libtest captures eprintln! of a passing test, and a skip must show.
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED {test}: {how}\n(set {REQUIRE_TMPFS}=1 to make this a failure, as .ci/run does)\n"
        );
        None
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fills every free byte with a file named `filler`.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.path("filler")).expect("create the filler");
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        // The last bytes: smaller writes until not one byte fits.
        for size in [4096, 512, 1] {
            while file.write_all(&chunk[..size]).is_ok() {}
        }
        let _ = file.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path("filler")).expect("remove the filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// TINY_SWEEP, one job at a time, jobs of about half a second, no checkpoints (the database
/// and the jobs' folder are what fills).
fn sweep(s: &Scratch) {
    s.write(
        "sweep.toml",
        TINY_SWEEP
            .replace("epochs = 3", "epochs = 60\npatience = 0")
            .replace("jobs_per_device = 2", "jobs_per_device = 1")
            .replace("checkpoints = \"all\"", "checkpoints = \"none\""),
    );
}

fn run_args<'a>(db: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "sweep.toml", "--db", db.to_str().unwrap()];
    args.extend(extra);
    args
}

fn done(db: &Path) -> i64 {
    count_rows(db, "SELECT COUNT(*) FROM jobs WHERE status = 'done'")
}

#[test]
fn a_disk_full_past_the_retry_window_stops_with_the_cause_and_a_rerun_completes() {
    let Some(disk) = Tmpfs::mount("full_disk::a_disk_full_past_the_retry_window", "16m") else {
        return;
    };
    let s = Scratch::new();
    sweep(&s);
    let db = disk.path("results.db");
    let mut run = Spawned::foldsweep(s.dir.path(), &run_args(&db, &["--store-retry", "3s"]));
    run.wait_for("two jobs done", || done(&db) >= 2);
    disk.fill();
    let done_when_full = done(&db);
    let (status, output) = run.wait();
    assert_eq!(status.code(), Some(1), "exit code; output:\n{output}");
    assert!(output.contains("no space left on device"), "the cause, in words:\n{output}");
    assert!(output.contains("results.db"), "the database, by name:\n{output}");
    assert!(!output.contains("panicked"), "{output}");
    assert!(done(&db) >= done_when_full, "nothing recorded is lost");
    assert!(done(&db) < 10, "the disk filled mid-sweep, not after it:\n{output}");

    disk.free();
    let (status, output) = Spawned::foldsweep(s.dir.path(), &run_args(&db, &[])).wait();
    assert_eq!(status.code(), Some(0), "the rerun completes; output:\n{output}");
    assert_every_job_done_once(&db, 2);
}

#[test]
fn a_disk_full_for_a_moment_is_retried_and_the_sweep_finishes() {
    let Some(disk) = Tmpfs::mount("full_disk::a_disk_full_for_a_moment", "16m") else {
        return;
    };
    let s = Scratch::new();
    sweep(&s);
    let db = disk.path("results.db");
    let mut run = Spawned::foldsweep(s.dir.path(), &run_args(&db, &["--store-retry", "5m"]));
    run.wait_for("two jobs done", || done(&db) >= 2);
    disk.fill();
    // Until the coordinator has met the full disk and said it retries.
    let output = run.output.clone();
    run.wait_for("a retried write", || output.lock().unwrap().contains("retrying"));
    disk.free();
    let (status, output) = run.wait();
    assert_eq!(status.code(), Some(0), "exit code; output:\n{output}");
    assert_every_job_done_once(&db, 2);
}
