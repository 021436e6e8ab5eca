//! The rest of a night left alone (issue 18), through the real binary: a time budget that
//! stops on time and a rerun that completes the rest, `status` while a sweep runs and after,
//! and a schema-v1 claim on a reused pid.

use crate::common::process::{
    assert_every_job_done_once, count_rows, jobs, sweep_with_epochs, Spawned, RUN,
};
use crate::common::{Scratch, TINY_SWEEP};

fn status_json(s: &Scratch) -> serde_json::Value {
    let out = s.run(&["status", "--db", "results.db", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status --format json prints JSON")
}

#[test]
fn a_time_budget_stops_on_time_and_a_rerun_completes_the_rest() {
    // Ten jobs of 300 epochs, one at a time: about 1 s each on a fast machine (CI ran 60-epoch
    // jobs in 0.2 s, and all ten fit in two seconds), so the work is several times the budget.
    let s = sweep_with_epochs(300);
    let launched = foldsweep::util::process::now();
    let mut args = RUN.to_vec();
    args.extend(["--time-budget", "2s"]);
    let (status, output) = Spawned::foldsweep(s.dir.path(), &args).wait();
    assert_eq!(status.code(), Some(0), "a planned stop: exit 0; output:\n{output}");
    assert!(output.contains("stopped at the deadline"), "{output}");
    assert!(output.contains("run the same command to continue"), "{output}");
    assert_eq!(jobs(&s, "running") + jobs(&s, "interrupted"), 0, "running jobs finished");
    assert!(jobs(&s, "pending") >= 1, "jobs left for the next run:\n{output}");
    // No job started after the deadline (2 s after the process started; 5 s of slack for
    // the process's own start on a loaded machine).
    let last_start =
        count_rows(&s.path("results.db"), "SELECT CAST(MAX(started_at) AS INTEGER) FROM jobs");
    assert!(
        (last_start as f64) <= launched + 2.0 + 5.0,
        "a job started {}s after launch",
        last_start as f64 - launched
    );

    let (status, output) = Spawned::foldsweep(s.dir.path(), &RUN).wait();
    assert_eq!(status.code(), Some(0), "the rerun completes; output:\n{output}");
    assert_every_job_done_once(&s.path("results.db"), 2);
}

#[test]
fn a_time_budget_in_the_sweep_file_is_the_default() {
    // As above: the ten jobs take several times the budget even on a fast machine.
    let s = sweep_with_epochs(300);
    let sweep =
        s.read("sweep.toml").replace("[resources]\n", "[resources]\ntime_budget = \"1s\"\n");
    s.write("sweep.toml", sweep);
    let (status, output) = Spawned::foldsweep(s.dir.path(), &RUN).wait();
    assert_eq!(status.code(), Some(0), "output:\n{output}");
    assert!(output.contains("stopped at the deadline"), "{output}");
    assert!(jobs(&s, "pending") >= 1, "{output}");
}

#[test]
fn status_while_a_sweep_runs_and_after_it_was_interrupted_and_resumed() {
    let s = sweep_with_epochs(20_000);
    let mut run = Spawned::foldsweep(s.dir.path(), &RUN);
    run.wait_for("a running job", || jobs(&s, "running") > 0);
    let live = status_json(&s);
    let sweep = &live["sweeps"][0];
    assert_eq!(sweep["sweep"], "tiny");
    assert_eq!(sweep["jobs"]["running"], 1, "{live:#}");
    assert_eq!(sweep["jobs"]["pending"], 9, "{live:#}");
    let coordinator = &sweep["coordinators"][0];
    assert_eq!(coordinator["pid"], run.pid(), "{live:#}");
    assert_eq!(coordinator["alive"], true, "{live:#}");
    let text = s.run(&["status", "--db", "results.db"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains(&format!("pid {}", run.pid())) && text.contains("running"), "{text}");

    // Two SIGTERMs: the running job is interrupted.
    run.signal(libc::SIGTERM, false);
    let output = run.output.clone();
    run.wait_for("the graceful stop", || output.lock().unwrap().contains("SIGTERM"));
    run.signal(libc::SIGTERM, false);
    let (_, output) = run.wait();
    let after = status_json(&s);
    let sweep = &after["sweeps"][0];
    assert_eq!(sweep["jobs"]["interrupted"], 1, "{after:#}\n{output}");
    assert_eq!(sweep["jobs"]["running"], 0, "{after:#}");
    assert_eq!(sweep["coordinators"].as_array().map(Vec::len), Some(0), "{after:#}");
    let text =
        String::from_utf8_lossy(&s.run(&["status", "--db", "results.db"]).stdout).into_owned();
    assert!(text.contains("none running") && text.contains("again to continue"), "{text}");
}

#[test]
fn status_groups_failures_and_names_the_best_config_and_run_ends_with_it() {
    let s = Scratch::new();
    s.write("sweep.toml", TINY_SWEEP);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_foldsweep"))
        .args(RUN)
        .current_dir(s.dir.path())
        .env("FOLDSWEEP_PANIC_ON_FOLD", "2")
        .output()
        .unwrap();
    let run_output = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{run_output}");
    let json = status_json(&s);
    let sweep = &json["sweeps"][0];
    assert_eq!(sweep["jobs"]["done"], 8, "{json:#}");
    assert_eq!(sweep["jobs"]["failed"], 2, "{json:#}");
    let failures = sweep["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "one error, grouped: {json:#}");
    let first_line = failures[0]["first_line"].as_str().unwrap();
    assert!(first_line.starts_with("deliberate panic on fold 2"), "the panic's message: {json:#}");
    assert_eq!(failures[0]["jobs"], 2);
    assert_eq!(failures[0]["configs"].as_array().map(Vec::len), Some(2));
    assert!(sweep["best"]["config"].is_string(), "{json:#}");
    assert_eq!(sweep["best"]["criterion"], "oof");
    assert!(sweep["checkpoint_bytes"].as_u64().unwrap() > 0, "TINY_SWEEP keeps checkpoints");
    assert!(sweep["wall_seconds"].as_f64().unwrap() > 0.0);
    // `run` ended with the same summary as `status` prints.
    let text =
        String::from_utf8_lossy(&s.run(&["status", "--db", "results.db"]).stdout).into_owned();
    let failed_line = text.lines().find(|l| l.contains("failed 2x")).expect("a failure line");
    assert!(
        run_output.contains(failed_line.trim()),
        "run's summary lacks {failed_line:?}:\n{run_output}"
    );
}

#[test]
fn a_schema_1_claim_on_a_reused_pid_does_not_keep_a_rerun_waiting() {
    let s = Scratch::new();
    s.write("sweep.toml", TINY_SWEEP);
    let (status, output) = Spawned::foldsweep(s.dir.path(), &RUN).wait();
    assert_eq!(status.code(), Some(0), "{output}");
    let conn = rusqlite::Connection::open(s.path("results.db")).unwrap();
    // A schema-1 coordinator claimed fold 0 an hour ago (no start time recorded) and died; the
    // test process now has its pid.
    conn.execute(
        "UPDATE jobs SET status = 'running', pid = ?1, host = ?2, owner_start = NULL,
                started_at = ?3, heartbeat = ?3 WHERE fold = 0",
        rusqlite::params![
            std::process::id(),
            foldsweep::util::process::hostname(),
            foldsweep::util::process::now() - 3600.0
        ],
    )
    .unwrap();
    drop(conn);
    let (status, output) = Spawned::foldsweep(s.dir.path(), &RUN).wait();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(jobs(&s, "done"), 10, "{output}");
}

#[test]
fn merging_a_finished_shard_into_a_live_database_leaves_its_coordinator_running() {
    // Jobs of a few seconds, so the live coordinator's first job is still running at the merge.
    let s = sweep_with_epochs(300);
    let (status, output) = Spawned::foldsweep(
        s.dir.path(),
        &["run", "sweep.toml", "--db", "shard.db", "--jobs-per-device", "2"],
    )
    .wait();
    assert_eq!(status.code(), Some(0), "the shard finishes; output:\n{output}");
    let mut live = Spawned::foldsweep(s.dir.path(), &RUN);
    live.wait_for("a running job", || jobs(&s, "running") > 0);
    let merge = s.run(&["merge", "shard.db", "--into", "results.db"]);
    let merge_out = format!(
        "{}{}",
        String::from_utf8_lossy(&merge.stdout),
        String::from_utf8_lossy(&merge.stderr)
    );
    assert!(merge.status.success(), "{merge_out}");
    assert!(
        merge_out.contains("left to"),
        "the running job was left to its coordinator:\n{merge_out}"
    );
    let (status, output) = live.wait();
    assert_eq!(status.code(), Some(0), "the live coordinator finishes; output:\n{output}");
    assert_every_job_done_once(&s.path("results.db"), 2);
}
