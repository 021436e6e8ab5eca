//! Regressions of the store and the sweep loop (issue 13, items 1-5 and 16): sweeps whose
//! definition changes, what a config id covers, two coordinators on one database, liveness by
//! process identity, diverging configs, and the loop's event stream.

use crate::common::db::{self, sql_count};
use crate::common::{
    dry_run_ids, results_json, scratch_with_sweep, stderr, stdout, Scratch, TINY_SWEEP,
};
use foldsweep::store::JobStatus;

const ORDINAL_ONLY_IN: &str = "model = [\"standard\", \"ordinal\"]";

/// Regression (issue 13, item 1): a config removed from the grid stayed in the sweep, so a
/// rerun retried its failed jobs and `results` ranked it with the current ones.
#[test]
fn configs_removed_from_the_grid_leave_the_sweep_and_are_neither_run_nor_ranked() {
    let s = scratch_with_sweep(TINY_SWEEP);
    s.run_sweep().expect_success();
    let store = db::store(&s.db());
    let (sweep, _) = store.resolve_sweep(None).unwrap();
    let ordinal: Vec<String> = store
        .sweep_configs(sweep, false)
        .unwrap()
        .into_iter()
        .filter(|c| c.label.contains("model=ordinal"))
        .map(|c| c.config_id)
        .collect();
    assert_eq!(ordinal.len(), 1);
    drop(store);
    // A failed job of the config about to leave the sweep: a rerun would retry it if it stayed.
    db::connection(&s.db())
        .execute(
            "UPDATE jobs SET status = 'failed' WHERE config_id = ?1 AND fold = 0",
            [&ordinal[0]],
        )
        .unwrap();
    s.write("sweep.toml", TINY_SWEEP.replace(ORDINAL_ONLY_IN, "model = [\"standard\"]"));
    let out = s.run_sweep();
    out.expect_success().check(out.stdout().contains("nothing to do: all 5 jobs"), "nothing runs");
    let retired_jobs: Vec<_> =
        db::jobs(&s.db()).into_iter().filter(|j| j.config_id == ordinal[0]).collect();
    let fold0 = retired_jobs.iter().find(|j| j.record.fold == 0).expect("fold 0");
    assert_eq!(fold0.record.status, JobStatus::Failed, "a retired config's job is never run");
    // Its five result rows stay (fold 0's too: the test changed only that job's status).
    assert_eq!(
        retired_jobs.iter().filter(|j| j.record.outcome.is_some()).count(),
        5,
        "its results stay"
    );
    assert_eq!(sql_count(&s.db(), "SELECT COUNT(*) FROM fold_results"), 10, "no row deleted");

    let current = results_json(&s, &[]);
    assert_eq!(current.len(), 1, "{current:?}");
    assert_ne!(current[0]["id"], ordinal[0].as_str());
    let all = results_json(&s, &["--all"]);
    assert_eq!(all.len(), 2, "{all:?}");
    let retired: Vec<_> = all.iter().filter(|r| r["retired"] == true).collect();
    assert_eq!(retired.len(), 1, "{all:?}");
    assert_eq!(retired[0]["id"], ordinal[0].as_str());
    let table = s.run_ok(&["results", "--db", "results.db", "--all"]);
    table.check(table.stdout().contains("retired"), "retired configs are marked");
    let export = s.run_ok(&["export", "--db", "results.db", "--best", "--out", "best.csv"]);
    export.check(export.stdout().contains(current[0]["id"].as_str().unwrap()), "the current best");

    // Putting the value back brings the config (and its results) back.
    s.write("sweep.toml", TINY_SWEEP);
    s.run_sweep().expect_success();
    assert_eq!(results_json(&s, &[]).len(), 2);
}

fn write_npy(s: &Scratch, name: &str, fill: f32) {
    let values: Vec<f32> = (0..400 * 4).map(|i| fill + (i % 7) as f32 * 0.1).collect();
    s.write(name, crate::common::npy_bytes("<f4", &[400, 4], &crate::common::f32_bytes(&values)));
}

/// Regression (issue 13, item 2): a grid over `text.train_embeddings` fingerprinted only the
/// base section's file, so editing another grid point's file kept its config ids.
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

/// Regression (issue 13, item 2): a transformer model folder was fingerprinted by its path, so
/// editing a file inside it kept the config ids (and the cached results of the old model).
#[test]
fn editing_a_file_inside_the_model_folder_changes_the_config_id() {
    let s = Scratch::new();
    let model = s.path("model");
    crate::common::copy_dir(&crate::common::fixture("encoder/tiny-bert"), &model);
    s.write(
        "sweep.toml",
        TINY_SWEEP.replace(
            "encoder = \"hashing\"\ndim = 64",
            "encoder = \"transformer\"\nmodel = \"model\"",
        ),
    );
    let run = |s: &Scratch| {
        s.command()
            .args(["run", "sweep.toml", "--dry-run"])
            .env("FOLDSWEEP_CACHE", s.path("cache"))
            .run()
            .stdout()
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

/// Regression (issue 13, item 3): with two coordinators on one database, a claim lost to the
/// other left its slot empty, and a pass whose claims all failed ended the run (exit 0) while
/// jobs were still queued; SQLite's "database is locked" also surfaced.
#[test]
fn two_coordinators_on_one_database_finish_every_job_exactly_once() {
    for round in 0..2 {
        let s = scratch_with_sweep(&TINY_SWEEP.replace("epochs = 3", "epochs = 2"));
        let spawn = || s.command().args(["run", "sweep.toml", "--db", "results.db"]).spawn();
        let (a, b) = (spawn(), spawn());
        for out in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
            let text = format!("{}\n{}", stdout(&out), stderr(&out));
            assert!(out.status.success(), "round {round}: {text}");
            assert!(!text.contains("locked"), "round {round}: {text}");
            // Exit 0 means the sweep is complete, not "my share of the queue is gone".
            assert!(text.contains("10 of 10 jobs done"), "round {round}: {text}");
        }
        let jobs = db::jobs(&s.db());
        assert_eq!(jobs.len(), 10);
        assert!(
            jobs.iter().all(|j| j.record.status == JobStatus::Done && j.record.attempt == 1),
            "round {round}: every job done at its first attempt: {jobs:?}"
        );
        // Schema level: exactly one result row per job.
        let db = s.db();
        assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM jobs"), 10);
        assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM fold_results"), 10);
        assert_eq!(
            sql_count(&db, "SELECT COUNT(*) FROM (SELECT job_id FROM fold_results GROUP BY job_id HAVING COUNT(*) = 1)"),
            10
        );
    }
}

/// Regression (issue 13, item 4): liveness was `kill(pid, 0)` alone, so a job whose owner's
/// pid was reused by a live process (PID 1 of a restarted container) stayed `running` forever
/// and the sweep said "nothing to do". The owner is its pid and its start time.
#[test]
fn a_running_job_whose_owner_pid_now_belongs_to_another_process_is_requeued() {
    let s = scratch_with_sweep(TINY_SWEEP);
    s.run_sweep().expect_success();
    // The test process is alive, but it is not the coordinator that claimed the job: its start
    // time differs (PID reuse, or PID 1 of a restarted container).
    let changed = db::connection(&s.db())
        .execute(
            "UPDATE jobs SET status = 'running', pid = ?1, host = ?2, owner_start = 1 WHERE fold = 0",
            rusqlite::params![std::process::id(), foldsweep::util::process::hostname()],
        )
        .unwrap();
    assert_eq!(changed, 2, "fold 0 of both configs");
    let out = s.run_sweep();
    out.expect_success();
    let jobs = db::jobs(&s.db());
    out.check(
        jobs.iter().all(|j| j.record.status == JobStatus::Done),
        &format!("every job done: {jobs:?}"),
    );
    let rerun: Vec<_> = jobs.iter().filter(|j| j.record.attempt == 2).collect();
    assert_eq!(rerun.len(), 2, "{jobs:?}");
    assert!(rerun.iter().all(|j| j.record.fold == 0), "only the requeued jobs ran again");
}

/// Regression (issue 13, item 5): a config whose loss turned NaN panicked with "at least one
/// epoch ran", was retried with the same result, and failed the sweep.
#[test]
fn a_diverging_config_is_recorded_as_diverged_not_retried_and_listed_last() {
    let s = scratch_with_sweep(
        &TINY_SWEEP
            .replace("lr = 3e-3\n", "")
            .replace("[resources]", "lr = [3e-3, 1e30]\n\n[resources]"),
    );
    s.run_sweep().expect_success();
    let jobs = db::jobs(&s.db());
    let diverged: Vec<_> = jobs.iter().filter(|j| j.record.status == JobStatus::Diverged).collect();
    assert!(diverged.len() >= 5, "at least the lr=1e30 configs diverge: {jobs:?}");
    assert!(diverged.iter().all(|j| j.record.attempt == 1), "no retry: {diverged:?}");
    assert!(
        diverged.iter().all(|j| j.record.diverged_epoch.is_some_and(|e| e >= 1)),
        "the epoch where it diverged: {diverged:?}"
    );
    let store = db::store(&s.db());
    for job in &diverged {
        assert!(!store.job_epochs(job.record.id).unwrap().is_empty(), "the curve so far is kept");
    }
    let rows = results_json(&s, &[]);
    let flags: Vec<bool> = rows.iter().map(|r| r["diverged"].as_u64().unwrap() > 0).collect();
    assert!(flags.iter().any(|d| *d) && !flags[0], "{rows:?}");
    let first_diverged = flags.iter().position(|d| *d).unwrap();
    assert!(flags[first_diverged..].iter().all(|d| *d), "diverged configs come last: {flags:?}");
    let table = s.run_ok(&["results", "--db", "results.db"]);
    table.check(table.stdout().contains("diverged"), "the table marks diverged configs");
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

/// Regression (issue 13, item 16): the sweep loop printed its progress itself; it now emits
/// events in order (started, each job's start, epochs and end, finished).
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
        grace: std::time::Duration::from_secs(60),
        deadline: None,
        store_retry: foldsweep::sweep::retry::DEFAULT_WINDOW,
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
