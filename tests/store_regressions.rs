//! Regressions of the store and the sweep loop (issue 13, items 1-5 and 16): sweeps whose
//! definition changes, what a config id covers, two coordinators on one database, liveness by
//! process identity, diverging configs, and the loop's event stream.

use std::process::{Command, Output, Stdio};

use rusqlite::Connection;

use crate::common::{stderr, stdout, Scratch, TINY_SWEEP};

fn scratch_with_sweep(sweep: &str) -> Scratch {
    let s = Scratch::new();
    s.write("sweep.toml", sweep);
    s
}

fn run_sweep(s: &Scratch) -> Output {
    s.run(&["run", "sweep.toml", "--db", "results.db"])
}

fn db(s: &Scratch) -> Connection {
    Connection::open(s.path("results.db")).unwrap()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn strings(conn: &Connection, sql: &str) -> Vec<String> {
    conn.prepare(sql).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

/// The config ids `run --dry-run` prints, in grid order.
fn dry_run_ids(s: &Scratch) -> Vec<String> {
    let out = s.run(&["run", "sweep.toml", "--dry-run"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| l.starts_with("  ") && !l.contains('('))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn results_json(s: &Scratch, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["results", "--db", "results.db", "--format", "json"];
    args.extend(extra);
    let out = s.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap().as_array().unwrap().clone()
}

const ORDINAL_ONLY_IN: &str = "model = [\"standard\", \"ordinal\"]";

#[test]
fn configs_removed_from_the_grid_leave_the_sweep_and_are_neither_run_nor_ranked() {
    let s = scratch_with_sweep(TINY_SWEEP);
    assert!(run_sweep(&s).status.success());
    let ordinal =
        strings(&db(&s), "SELECT config_id FROM sweep_configs WHERE label LIKE '%model=ordinal%'");
    assert_eq!(ordinal.len(), 1);
    // A failed job of the config about to leave the sweep: a rerun would retry it if it stayed.
    db(&s)
        .execute(
            "UPDATE jobs SET status = 'failed' WHERE config_id = ?1 AND fold = 0",
            [&ordinal[0]],
        )
        .unwrap();
    s.write("sweep.toml", TINY_SWEEP.replace(ORDINAL_ONLY_IN, "model = [\"standard\"]"));
    let out = run_sweep(&s);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("nothing to do: all 5 jobs"), "{}", stdout(&out));
    let conn = db(&s);
    let status: String = conn
        .query_row(
            "SELECT status FROM jobs WHERE config_id = ?1 AND fold = 0",
            [&ordinal[0]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "failed", "a retired config's job is never run");
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM fold_results"), 10, "its results stay");

    let current = results_json(&s, &[]);
    assert_eq!(current.len(), 1, "{current:?}");
    assert_ne!(current[0]["id"], ordinal[0].as_str());
    let all = results_json(&s, &["--all"]);
    assert_eq!(all.len(), 2, "{all:?}");
    let retired: Vec<_> = all.iter().filter(|r| r["retired"] == true).collect();
    assert_eq!(retired.len(), 1, "{all:?}");
    assert_eq!(retired[0]["id"], ordinal[0].as_str());
    let table = stdout(&s.run(&["results", "--db", "results.db", "--all"]));
    assert!(table.contains("retired"), "{table}");
    let export = s.run(&["export", "--db", "results.db", "--best", "--out", "best.csv"]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert!(stdout(&export).contains(current[0]["id"].as_str().unwrap()), "{}", stdout(&export));

    // Putting the value back brings the config (and its results) back.
    s.write("sweep.toml", TINY_SWEEP);
    let out = run_sweep(&s);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(results_json(&s, &[]).len(), 2);
}

fn write_npy(s: &Scratch, name: &str, fill: f32) {
    let values: Vec<f32> = (0..400 * 4).map(|i| fill + (i % 7) as f32 * 0.1).collect();
    s.write(name, crate::common::npy_bytes("<f4", &[400, 4], &crate::common::f32_bytes(&values)));
}

#[test]
fn every_grid_point_fingerprints_its_own_text_embeddings() {
    let s = Scratch::new();
    write_npy(&s, "a.npy", 0.0);
    write_npy(&s, "b.npy", 1.0);
    let sweep = TINY_SWEEP
        .replace(
            "encoder = \"hashing\"\ndim = 64",
            "encoder = \"precomputed\"\ntrain_embeddings = \"a.npy\"",
        )
        .replace(
            "[resources]",
            "\"text.train_embeddings\" = [\"a.npy\", \"b.npy\"]\n\n[resources]",
        );
    s.write("sweep.toml", sweep);
    let before = dry_run_ids(&s);
    assert_eq!(before.len(), 4, "{before:?}");
    write_npy(&s, "b.npy", 2.0);
    let after = dry_run_ids(&s);
    assert_eq!(before[0], after[0], "a.npy configs keep their ids");
    assert_ne!(before[1], after[1], "b.npy changed: its configs get new ids");
    assert_ne!(before[3], after[3]);
}

#[test]
fn editing_a_file_inside_the_model_folder_changes_the_config_id() {
    let s = Scratch::new();
    let model = s.path("model");
    copy_dir(&crate::common::fixture("encoder/tiny-bert"), &model);
    s.write(
        "sweep.toml",
        TINY_SWEEP.replace(
            "encoder = \"hashing\"\ndim = 64",
            "encoder = \"transformer\"\nmodel = \"model\"",
        ),
    );
    let run = |s: &Scratch| {
        let out = Command::new(env!("CARGO_BIN_EXE_foldsweep"))
            .args(["run", "sweep.toml", "--dry-run"])
            .current_dir(s.dir.path())
            .env("FOLDSWEEP_CACHE", s.path("cache"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let before = run(&s);
    let mut config = std::fs::read_to_string(model.join("config.json")).unwrap();
    config.push_str("\n\n");
    std::fs::write(model.join("config.json"), config).unwrap();
    let after = run(&s);
    let first_id =
        |text: &str| text.lines().nth(1).unwrap().trim().split(' ').next().unwrap().to_string();
    assert_ne!(first_id(&before), first_id(&after), "{before}\n{after}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::write(&target, std::fs::read(entry.path()).unwrap()).unwrap();
        }
    }
}

#[test]
fn two_coordinators_on_one_database_finish_every_job_exactly_once() {
    for round in 0..2 {
        let s = scratch_with_sweep(&TINY_SWEEP.replace("epochs = 3", "epochs = 2"));
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_foldsweep"))
                .args(["run", "sweep.toml", "--db", "results.db"])
                .current_dir(s.dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for out in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
            let text = format!("{}\n{}", stdout(&out), stderr(&out));
            assert!(out.status.success(), "round {round}: {text}");
            assert!(!text.contains("locked"), "round {round}: {text}");
            // Exit 0 means the sweep is complete, not "my share of the queue is gone".
            assert!(text.contains("10 of 10 jobs done"), "round {round}: {text}");
        }
        let conn = db(&s);
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM jobs"), 10);
        assert_eq!(
            count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'done' AND attempt = 1"),
            10
        );
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM fold_results"), 10);
        assert_eq!(
            count(&conn, "SELECT COUNT(*) FROM (SELECT job_id FROM fold_results GROUP BY job_id HAVING COUNT(*) = 1)"),
            10
        );
    }
}

#[test]
fn a_running_job_whose_owner_pid_now_belongs_to_another_process_is_requeued() {
    let s = scratch_with_sweep(TINY_SWEEP);
    assert!(run_sweep(&s).status.success());
    let conn = db(&s);
    // The test process is alive, but it is not the coordinator that claimed the job: its start
    // time differs (PID reuse, or PID 1 of a restarted container).
    conn.execute(
        "UPDATE jobs SET status = 'running', pid = ?1, host = ?2 WHERE fold = 0",
        rusqlite::params![std::process::id(), foldsweep::util::process::hostname()],
    )
    .unwrap();
    let columns = strings(&conn, "SELECT name FROM pragma_table_info('jobs')");
    if columns.iter().any(|c| c == "owner_start") {
        conn.execute("UPDATE jobs SET owner_start = 1 WHERE fold = 0", []).unwrap();
    }
    drop(conn);
    let out = run_sweep(&s);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let conn = db(&s);
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'done'"),
        10,
        "{}",
        stdout(&out)
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM jobs WHERE fold = 0 AND attempt = 2"), 2);
}

#[test]
fn a_diverging_config_is_recorded_as_diverged_not_retried_and_listed_last() {
    let s = scratch_with_sweep(
        &TINY_SWEEP
            .replace("lr = 3e-3\n", "")
            .replace("[resources]", "lr = [3e-3, 1e30]\n\n[resources]"),
    );
    let out = run_sweep(&s);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    let conn = db(&s);
    let diverged = count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'diverged'");
    assert!(diverged >= 5, "at least the lr=1e30 configs diverge: {}", stdout(&out));
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'diverged' AND attempt != 1"),
        0,
        "no retry"
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'diverged' AND diverged_epoch >= 1"),
        diverged
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM jobs j WHERE status = 'diverged' AND NOT EXISTS (SELECT 1 FROM epochs e WHERE e.job_id = j.id)"),
        0,
        "the learning curve so far is kept"
    );
    let rows = results_json(&s, &[]);
    let flags: Vec<bool> = rows.iter().map(|r| r["diverged"].as_u64().unwrap() > 0).collect();
    assert!(flags.iter().any(|d| *d) && !flags[0], "{rows:?}");
    let first_diverged = flags.iter().position(|d| *d).unwrap();
    assert!(flags[first_diverged..].iter().all(|d| *d), "diverged configs come last: {flags:?}");
    let table = stdout(&s.run(&["results", "--db", "results.db"]));
    assert!(table.contains("diverged"), "{table}");
}
/// The same sweep with absolute data paths, so the library can run it from any folder.
fn absolute_sweep(s: &Scratch) -> String {
    let mut sweep = TINY_SWEEP.replace("epochs = 3", "epochs = 2");
    for name in
        ["train_data.json", "test_data.json", "metric_names.json", "metric_name_embeddings.npy"]
    {
        sweep = sweep.replace(&format!("\"{name}\""), &format!("{:?}", s.path(name)));
    }
    sweep
}

#[test]
fn the_sweep_loop_reports_its_progress_as_events() {
    use foldsweep::sweep::{plan, run_sweep, RunOptions, SweepEvent, SweepFile};
    let s = Scratch::new();
    s.write("sweep.toml", absolute_sweep(&s));
    let sweep = SweepFile::load(&s.path("sweep.toml")).unwrap();
    let plan = plan(&sweep).unwrap();
    let options = RunOptions {
        db: s.path("results.db"),
        devices: vec![foldsweep::backend::Device::Cpu],
        jobs_per_device: 2,
        max_attempts: 2,
        shard: None,
        worker_exe: Some(env!("CARGO_BIN_EXE_foldsweep").into()),
        keep_checkpoints: false,
        no_prune: false,
    };
    let mut events = Vec::new();
    let summary =
        run_sweep(&sweep, &plan, &options, &mut |e: &SweepEvent| events.push(e.clone())).unwrap();
    assert_eq!((summary.done, summary.failed), (10, 0));
    assert!(matches!(events.first(), Some(SweepEvent::Started { to_run: 10, .. })), "{events:?}");
    assert!(matches!(events.last(), Some(SweepEvent::Finished { .. })), "{events:?}");
    let started = events.iter().filter(|e| matches!(e, SweepEvent::JobStarted { .. })).count();
    let done = events.iter().filter(|e| matches!(e, SweepEvent::JobDone { .. })).count();
    assert_eq!((started, done), (10, 10));
    // Each job: started, then its epochs, then done.
    for (i, event) in events.iter().enumerate() {
        if let SweepEvent::Epoch { job, .. } = event {
            let begun = events[..i]
                .iter()
                .any(|e| matches!(e, SweepEvent::JobStarted { job: j, .. } if j == job));
            let ended = events[..i]
                .iter()
                .any(|e| matches!(e, SweepEvent::JobDone { job: j, .. } if j == job));
            assert!(begun && !ended, "epoch outside its job: {event:?}");
        }
    }
    assert!(events.iter().any(|e| matches!(e, SweepEvent::Epoch { .. })));

    let mut again = Vec::new();
    run_sweep(&sweep, &plan, &options, &mut |e: &SweepEvent| again.push(e.clone())).unwrap();
    assert!(
        matches!(
            again.as_slice(),
            [SweepEvent::NothingToDo { jobs_total: 10, .. }, SweepEvent::Finished { .. }]
        ),
        "{again:?}"
    );
}
