//! Signals through the real binary (issue 18): a signal that was ignored when `run` started
//! stays ignored (SIGHUP under nohup, SIGINT in a shell's background job); SIGHUP and SIGTERM
//! stop gracefully (no new job, running ones get `--grace`, a line says how to resume); a
//! second signal stops at once.

use std::process::Command;

use crate::common::process::{assert_every_job_done_once, jobs, sweep_with_epochs, Spawned, RUN};
use crate::common::Scratch;

fn wait_for_a_running_job(s: &Scratch, run: &mut Spawned) {
    run.wait_for("a running job", || jobs(s, "running") > 0);
}

#[test]
fn nohup_and_two_sighups_finish_every_job_and_exit_0() {
    let s = sweep_with_epochs(60);
    let mut nohup = Command::new("nohup");
    nohup.arg(env!("CARGO_BIN_EXE_foldsweep")).args(RUN);
    let mut run = Spawned::start(nohup, s.dir.path());
    wait_for_a_running_job(&s, &mut run);
    // The terminal closes (the whole job gets SIGHUP), then the shell resends it.
    run.signal(libc::SIGHUP, true);
    std::thread::sleep(std::time::Duration::from_millis(200));
    run.signal(libc::SIGHUP, true);
    let (status, output) = run.wait();
    assert_eq!(status.code(), Some(0), "exit code; output:\n{output}");
    assert!(!output.contains("no new jobs"), "a hangup under nohup stopped the run:\n{output}");
    assert_every_job_done_once(&s.path("results.db"), 2);
}

#[test]
fn sigint_ignored_at_start_stays_ignored() {
    // What a non-interactive shell does for `foldsweep run ... &`: SIGINT ignored.
    let s = sweep_with_epochs(60);
    let mut sh = Command::new("sh");
    sh.args(["-c", "trap '' INT; exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_foldsweep")]).args(RUN);
    let mut run = Spawned::start(sh, s.dir.path());
    wait_for_a_running_job(&s, &mut run);
    run.signal(libc::SIGINT, true);
    run.signal(libc::SIGINT, true);
    let (status, output) = run.wait();
    assert_eq!(status.code(), Some(0), "exit code; output:\n{output}");
    assert_every_job_done_once(&s.path("results.db"), 2);
}

#[test]
fn sigterm_lets_running_jobs_finish_says_how_to_resume_and_a_rerun_completes() {
    let s = sweep_with_epochs(60);
    let mut run = Spawned::foldsweep(s.dir.path(), &RUN);
    wait_for_a_running_job(&s, &mut run);
    run.signal(libc::SIGTERM, false);
    let (status, output) = run.wait();
    assert_eq!(status.code(), Some(1), "stopped early: exit 1; output:\n{output}");
    assert!(output.contains("SIGTERM"), "the message names the signal:\n{output}");
    assert!(output.contains("run the same command"), "the message says how to resume:\n{output}");
    assert_eq!(jobs(&s, "running") + jobs(&s, "interrupted"), 0, "the running job finished");
    assert!(jobs(&s, "done") >= 1, "the running job was recorded:\n{output}");
    assert!(jobs(&s, "pending") >= 1, "jobs were left for the rerun:\n{output}");

    let (status, output) = Spawned::foldsweep(s.dir.path(), &RUN).wait();
    assert_eq!(status.code(), Some(0), "the rerun finishes; output:\n{output}");
    assert_every_job_done_once(&s.path("results.db"), 2);
}

#[test]
fn sigterm_interrupts_a_job_that_outlives_the_grace_period() {
    // A job of minutes; one second of grace.
    let s = sweep_with_epochs(20_000);
    let mut run = Spawned::foldsweep(
        s.dir.path(),
        &["run", "sweep.toml", "--db", "results.db", "--grace", "1s"],
    );
    wait_for_a_running_job(&s, &mut run);
    let signalled = std::time::Instant::now();
    run.signal(libc::SIGTERM, false);
    let (status, output) = run.wait();
    assert_eq!(status.code(), Some(1), "exit code; output:\n{output}");
    assert!(
        signalled.elapsed() < std::time::Duration::from_secs(60),
        "stopped {:?} after the signal",
        signalled.elapsed()
    );
    assert!(output.contains("grace"), "the message says the grace period ran out:\n{output}");
    assert_eq!(jobs(&s, "running"), 0);
    assert_eq!(jobs(&s, "interrupted"), 1, "output:\n{output}");
    assert_eq!(jobs(&s, "done"), 0);
}

#[test]
fn a_second_sighup_stops_running_jobs_at_once() {
    let s = sweep_with_epochs(20_000);
    let mut run = Spawned::foldsweep(s.dir.path(), &RUN);
    wait_for_a_running_job(&s, &mut run);
    run.signal(libc::SIGHUP, false);
    let output = run.output.clone();
    run.wait_for("the graceful stop's message", || output.lock().unwrap().contains("SIGHUP"));
    let signalled = std::time::Instant::now();
    run.signal(libc::SIGHUP, false);
    let (status, output) = run.wait();
    assert_eq!(status.code(), Some(1), "exit code; output:\n{output}");
    assert!(
        signalled.elapsed() < std::time::Duration::from_secs(30),
        "the second signal did not stop at once ({:?})",
        signalled.elapsed()
    );
    assert_eq!(jobs(&s, "running"), 0);
    assert_eq!(jobs(&s, "interrupted"), 1, "output:\n{output}");
    assert!(output.contains("run the same command"), "how to resume:\n{output}");
}
