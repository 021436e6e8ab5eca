//! Sweeps through the real binary: exactly-once jobs, resume, crash safety, failures,
//! the query commands and the submission export.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::common::child::{interrupt, wait_exit, wait_until, StdoutLines};
use crate::common::db::{self, count_status, sql_count};
use crate::common::{assert_bad_input, scratch_with_sweep, stdout, Scratch, TINY_SWEEP};
use foldsweep::store::JobStatus;

/// Every (config, fold) recorded exactly once, with its per-bin rows and OOF predictions.
fn assert_complete(db: &Path, configs: usize) {
    let jobs = db::jobs(db);
    assert_eq!(jobs.len(), configs * 5, "{jobs:?}");
    assert!(jobs.iter().all(|j| j.record.status == JobStatus::Done), "{jobs:?}");
    assert!(jobs.iter().all(|j| j.record.outcome.is_some()), "every done job has its result");
    let distinct: std::collections::BTreeSet<_> =
        jobs.iter().map(|j| (&j.config_id, j.record.fold)).collect();
    assert_eq!(distinct.len(), configs * 5);
    // Schema level: one row per job in each results table, none twice.
    let configs = configs as i64;
    assert_eq!(sql_count(db, "SELECT COUNT(*) FROM jobs"), configs * 5);
    assert_eq!(sql_count(db, "SELECT COUNT(*) FROM fold_results"), configs * 5);
    assert_eq!(sql_count(db, "SELECT COUNT(*) FROM bin_results"), configs * 5 * 11);
    assert_eq!(
        sql_count(db, "SELECT COUNT(*) FROM oof_predictions"),
        configs * 400,
        "every record once per config"
    );
    assert_eq!(
        sql_count(db, "SELECT COUNT(*) FROM (SELECT job_id FROM epochs GROUP BY job_id)"),
        configs * 5
    );
    let integrity = db::sql_strings(db, "PRAGMA integrity_check");
    assert_eq!(integrity, ["ok"]);
}

/// When each job started, by config and fold.
fn start_times(db: &Path) -> Vec<Option<f64>> {
    db::jobs(db).iter().map(|j| j.record.started_at).collect()
}

#[test]
fn sweep_records_every_job_once_and_a_rerun_does_no_work() {
    let s = scratch_with_sweep(TINY_SWEEP);
    let out = s.run_sweep();
    out.expect_success()
        .check(out.stdout().contains("2 configs x 5 folds = 10 jobs"), "the plan line is missing");
    assert_complete(&s.db(), 2);
    let started = start_times(&s.db());
    assert!(started.iter().all(Option::is_some), "{started:?}");

    let again = s.run_sweep();
    again.expect_success().check(
        again.stdout().contains("nothing to do: all 10 jobs"),
        "a complete sweep reruns nothing",
    );
    assert_eq!(started, start_times(&s.db()), "no job ran twice");
}

#[test]
fn adding_grid_values_adds_only_the_new_jobs() {
    let s = scratch_with_sweep(TINY_SWEEP);
    s.run_sweep().expect_success();
    // 0.5 is the default temperature: those configs are the ones already done.
    s.write(
        "sweep.toml",
        TINY_SWEEP.replace("[resources]", "\"weighting.temperature\" = [0.5, 0.0]\n\n[resources]"),
    );
    let out = s.run_sweep();
    out.expect_success().check(
        out.stdout().contains("4 configs x 5 folds = 20 jobs; 10 done, 10 to run"),
        "only the new jobs run",
    );
    assert_complete(&s.db(), 4);
}

#[test]
fn dry_run_lists_configs_and_dropped_pairs_and_runs_nothing() {
    let s = scratch_with_sweep(TINY_SWEEP);
    let out = s.run_ok(&["run", "sweep.toml", "--db", "results.db", "--dry-run"]);
    let text = out.stdout();
    assert!(text.contains("2 configs x 5 folds = 10 jobs"), "{text}");
    assert!(
        text.contains("model=standard loss=hybrid") && text.contains("model=ordinal loss=ordinal"),
        "{text}"
    );
    assert!(text.contains("dropped 2 invalid model/loss combinations"), "{text}");
    assert!(
        text.contains("model=standard loss=ordinal  (model standard cannot use loss ordinal)"),
        "{text}"
    );
    assert!(!s.path("results.db").exists());
}

#[test]
fn config_ids_are_stable_for_the_same_sweep_and_data() {
    let ids = crate::common::dry_run_ids;
    let (a, b) = (scratch_with_sweep(TINY_SWEEP), scratch_with_sweep(TINY_SWEEP));
    assert_eq!(ids(&a).len(), 2);
    assert_eq!(ids(&a), ids(&b));
    let c = scratch_with_sweep(&TINY_SWEEP.replace("seed = 42", "seed = 7"));
    assert_ne!(ids(&a), ids(&c), "another fold assignment gives other ids");
}

#[test]
fn sigkill_mid_sweep_then_rerun_records_every_job_exactly_once() {
    let s = scratch_with_sweep(
        &TINY_SWEEP
            .replace("epochs = 3", "epochs = 25")
            .replace("jobs_per_device = 2", "jobs_per_device = 1"),
    );
    let mut child = spawn_sweep(&s);
    wait_until(&mut child, "two jobs done", Duration::from_secs(120), || {
        jobs_with(&s, JobStatus::Done) >= 2
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = count_status(&s.db(), JobStatus::Done);
    assert!(done < 10, "killed mid-sweep, not after it ({done} done)");
    assert_eq!(
        sql_count(&s.db(), "SELECT COUNT(*) FROM fold_results"),
        done as i64,
        "no half-recorded job"
    );

    s.run_sweep().expect_success();
    assert_complete(&s.db(), 2);
}

#[test]
fn a_panicking_job_is_retried_then_failed_while_the_rest_finish() {
    let s = scratch_with_sweep(TINY_SWEEP);
    let out = s
        .command()
        .args(["run", "sweep.toml", "--db", "results.db"])
        .env("FOLDSWEEP_PANIC_ON_FOLD", "2")
        .output();
    out.expect_code(1);
    let text = out.stdout();
    out.check(text.contains("retry ") && text.contains("FAILED"), "a retry, then FAILED");
    let jobs = db::jobs(&s.db());
    assert_eq!(jobs.iter().filter(|j| j.record.status == JobStatus::Done).count(), 8);
    let failed: Vec<_> = jobs.iter().filter(|j| j.record.status == JobStatus::Failed).collect();
    assert_eq!(failed.len(), 2, "{jobs:?}");
    assert!(failed.iter().all(|j| j.record.fold == 2 && j.record.attempt == 2), "{failed:?}");
    let error = failed[0].record.error.clone().expect("a failed job's error");
    assert!(error.contains("deliberate panic on fold 2"), "{error}");
    assert!(error.contains("worker exited with code"), "{error}");

    let results = s.run_ok(&["results", "--db", "results.db"]);
    results.check(results.stdout().contains("4/5 (1 failed)"), "the failed fold is shown");
    // An incomplete config is not exported unless asked.
    let id = jobs[0].config_id.clone();
    let refused = s.run(&["export", "--db", "results.db", "--config", &id, "--out", "sub.csv"]);
    assert_bad_input(&refused, &["4 of 5 folds finished", "--allow-partial"]);
    let partial = s.run(&[
        "export",
        "--db",
        "results.db",
        "--config",
        &id,
        "--out",
        "sub.csv",
        "--allow-partial",
    ]);
    partial.expect_success();

    // The next run retries the failed jobs (and they succeed without the hook).
    s.run_sweep().expect_success();
    assert_complete(&s.db(), 2);
}

#[test]
fn results_compare_and_export_outputs() {
    let s = scratch_with_sweep(TINY_SWEEP);
    s.run_sweep().expect_success();

    let table = s.run_ok(&["results", "--db", "results.db"]).stdout();
    for column in
        ["config", "model", "loss", "folds", "mean ± sd", "OOF RMSE", "macro", "@9", "@10"]
    {
        assert!(table.contains(column), "{column} missing:\n{table}");
    }
    let csv_text = s.run_ok(&["results", "--db", "results.db", "--format", "csv"]).stdout();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..4], ["rank", "config", "model", "loss"]);
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 2);
    let oof = header.iter().position(|h| h == "oof_rmse").unwrap();
    let oofs: Vec<f64> = rows.iter().map(|r| r[oof].parse().unwrap()).collect();
    assert!(oofs[0] <= oofs[1], "sorted best first: {oofs:?}");

    // Pooled OOF RMSE is sqrt(mean of squared errors over all records), recomputed here.
    let json: serde_json::Value = serde_json::from_str(
        &s.run_ok(&["results", "--db", "results.db", "--format", "json"]).stdout(),
    )
    .unwrap();
    let best = &json[0];
    let store = db::store(&s.db());
    let id = best["id"].as_str().unwrap();
    let pairs = store.oof_predictions(id).unwrap();
    assert_eq!(pairs.len(), 400, "every record's out-of-fold prediction");
    let mse = pairs.iter().map(|(t, p)| (p - t).powi(2)).sum::<f64>() / pairs.len() as f64;
    assert!((best["oof_rmse"].as_f64().unwrap() - mse.sqrt()).abs() < 1e-9);
    assert_eq!(best["folds_done"], 5);

    // compare: the t statistic recomputed from the per-fold RMSEs in the database.
    let report: serde_json::Value = serde_json::from_str(
        &s.run_ok(&["compare", "--db", "results.db", "--format", "json"]).stdout(),
    )
    .unwrap();
    assert_eq!(report["reference"].as_str().unwrap(), id);
    let c = &report["comparisons"][0];
    let fold_rmse = |config: &str| -> Vec<(f64, f64, f64)> {
        let folds = store.fold_metrics(config).unwrap();
        folds.iter().map(|f| (f.rmse, f.val_rows as f64, f.train_rows as f64)).collect()
    };
    let (a, b) = (fold_rmse(c["config"].as_str().unwrap()), fold_rmse(id));
    assert_eq!((a.len(), b.len()), (5, 5), "five folds each");
    let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x.0 - y.0).collect();
    let mean = d.iter().sum::<f64>() / 5.0;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
    let ratio = a.iter().map(|x| x.1).sum::<f64>() / a.iter().map(|x| x.2).sum::<f64>();
    let t = mean / ((0.2 + ratio) * var).sqrt();
    assert!((c["t"].as_f64().unwrap() - t).abs() < 1e-9, "t {} vs {t}", c["t"]);
    assert!(mean >= 0.0, "the reference is the best by OOF RMSE");
    let p = c["p"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p) && c["p_holm"].as_f64().unwrap() >= p);
    assert!(stdout(&s.run(&["compare", "--db", "results.db"])).contains("Nadeau-Bengio"));

    // export --round: header, one row per test record, IDs 1..N in order, integer scores.
    let out =
        s.run(&["export", "--db", "results.db", "--best", "--round", "--out", "submission.csv"]);
    out.expect_success().check(
        out.stdout().contains("pooled OOF RMSE")
            && out.stdout().contains("prediction distribution"),
        "export summarises the submission",
    );
    let text = s.read("submission.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ID,score"));
    let rows: Vec<(usize, f64)> = lines
        .map(|l| {
            let (id, score) = l.split_once(',').unwrap();
            (id.parse().unwrap(), score.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 200);
    for (i, (id, score)) in rows.iter().enumerate() {
        assert_eq!(*id, i + 1);
        assert!((0.0..=10.0).contains(score) && score.fract() == 0.0, "{score}");
    }
    let raw = s.run(&[
        "export",
        "--db",
        "results.db",
        "--best",
        "--by",
        "macro",
        "--no-round",
        "--out",
        "raw.csv",
    ]);
    raw.expect_success();
    assert!(s.read("raw.csv").lines().skip(1).any(|l| !l.ends_with(".0000")), "unrounded scores");
}

fn bad_sweep(edit: impl Fn(&str) -> String, fragments: &[&str]) {
    let s = scratch_with_sweep(&edit(TINY_SWEEP));
    assert_bad_input(&s.run_sweep(), fragments);
}

fn line_of(text: &str, needle: &str) -> String {
    format!("line {}", text.lines().position(|l| l.contains(needle)).unwrap() + 1)
}

#[test]
fn bad_sweep_files_name_the_key_and_line() {
    bad_sweep(
        |t| t.replace("[grid]", "[grid]\nlearning_rate = [0.1]"),
        &[
            "sweep.toml",
            "grid key `learning_rate`",
            "unknown key",
            &line_of(
                &TINY_SWEEP.replace("[grid]", "[grid]\nlearning_rate = [0.1]"),
                "learning_rate",
            ),
        ],
    );
    bad_sweep(|t| t.replace("[grid]", "[grid]\nlr = []"), &["grid key `lr`", "empty"]);
    bad_sweep(|t| t.replace("[grid]", "[grid]\nlr = 0.1"), &["grid key `lr`", "expected a list"]);
    bad_sweep(
        |t| t.replace("[grid]", "[grid]\nlr = [\"fast\"]"),
        &["grid key `lr`", "invalid type"],
    );
    bad_sweep(
        |t| t.replace("[grid]", "[grid]\ndropout = [1.5]"),
        &["grid key `dropout`", "[0, 1)"],
    );
    bad_sweep(
        |t| t.replace("name = \"tiny\"", "name = \"tiny\"\ncolour = \"red\""),
        &["sweep.toml", "unknown key `colour`", "line 3"],
    );
    bad_sweep(|t| t.replace("name = \"tiny\"", ""), &["sweep.toml", "name"]);
    let typo = TINY_SWEEP.replace("epochs = 3", "epoch = 3");
    bad_sweep(
        |_| typo.clone(),
        &["sweep.toml", "unknown field `epoch`", &line_of(&typo, "epoch = 3")],
    );
    bad_sweep(
        |t| t.replace("epochs = 3", "epochs = \"three\""),
        &["sweep.toml", "epochs = \"three\"", "invalid type"],
    );
    bad_sweep(
        |t| t.replace("jobs_per_device = 2", "jobs_per_device = \"two\""),
        &["sweep.toml", "[resources]"],
    );
    bad_sweep(
        |t| {
            t.replace("model = [\"standard\", \"ordinal\"]", "model = [\"ordinal\"]")
                .replace("loss = [\"hybrid\", \"ordinal\"]", "loss = [\"hybrid\"]")
        },
        &["no valid config"],
    );
}

/// `foldsweep run sweep.toml --db results.db` in the background, output discarded.
fn spawn_sweep(s: &Scratch) -> Child {
    s.command().args(["run", "sweep.toml", "--db", "results.db"]).spawn_quiet()
}

/// How many jobs are in `status` now (0 while the coordinator is still creating the file).
fn jobs_with(s: &Scratch, status: JobStatus) -> usize {
    db::try_store(&s.db())
        .map_or(0, |store| db::jobs_in(&store).iter().filter(|j| j.record.status == status).count())
}

/// TINY_SWEEP one job at a time, each of `epochs` epochs (about a millisecond each).
fn slow_sweep(epochs: usize) -> String {
    TINY_SWEEP
        .replace("epochs = 3", &format!("epochs = {epochs}\npatience = 0"))
        .replace("jobs_per_device = 2", "jobs_per_device = 1")
}

/// Starts [`slow_sweep`] and waits until one job runs.
fn start_slow_sweep(s: &Scratch, epochs: usize, child: impl FnOnce(&Scratch) -> Child) -> Child {
    s.write("sweep.toml", slow_sweep(epochs));
    let mut child = child(s);
    wait_until(&mut child, "a job runs", Duration::from_secs(60), || {
        jobs_with(s, JobStatus::Running) > 0
    });
    child
}

#[test]
fn ctrl_c_once_lets_running_jobs_finish_and_starts_no_new_one() {
    let s = Scratch::new();
    // Jobs of about half a second: the running one finishes while the test waits.
    let mut child = start_slow_sweep(&s, 400, spawn_sweep);
    interrupt(&child);
    let status = wait_exit(&mut child, Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "stopped early: exit 1");
    let jobs = db::jobs(&s.db());
    let with = |status| jobs.iter().filter(|j| j.record.status == status).count();
    assert_eq!(with(JobStatus::Running) + with(JobStatus::Interrupted), 0, "{jobs:?}");
    assert!(with(JobStatus::Done) >= 1, "the running job finished: {jobs:?}");
    assert!(with(JobStatus::Pending) >= 8, "no new job started: {jobs:?}");
}

/// Regression (issue 22): the second Ctrl-C came on a 300 ms sleep after the first, while
/// jobs took about 0.4 s, so the running job could finish in between and nothing was left to
/// interrupt. Now the job would run for minutes, and the second signal waits for what the
/// first one observably did: the coordinator's "no new jobs will start" line.
#[test]
fn ctrl_c_twice_stops_running_jobs_and_marks_them_interrupted() {
    let s = Scratch::new();
    let mut child = start_slow_sweep(&s, 200_000, |s: &Scratch| {
        s.command().args(["run", "sweep.toml", "--db", "results.db"]).spawn()
    });
    let mut stdout = StdoutLines::of(&mut child);
    interrupt(&child);
    stdout.wait_for(&mut child, "no new jobs will start", Duration::from_secs(30));
    assert_eq!(jobs_with(&s, JobStatus::Running), 1, "the job still runs after one Ctrl-C");
    interrupt(&child);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let seen = stdout.finish();
    assert_eq!(status.code(), Some(1), "{}", seen.join("\n"));
    assert!(seen.iter().any(|l| l.contains("interrupted: running jobs stopped")), "{seen:?}");
    let jobs = db::jobs(&s.db());
    let with = |status| jobs.iter().filter(|j| j.record.status == status).count();
    assert_eq!(with(JobStatus::Running), 0, "{jobs:?}");
    assert_eq!(with(JobStatus::Interrupted), 1, "{jobs:?}");
    assert_eq!(with(JobStatus::Done), 0, "no job of 200000 epochs finished: {jobs:?}");
    assert_eq!(sql_count(&s.db(), "SELECT COUNT(*) FROM fold_results"), 0, "no partial result");
}

#[test]
fn transformer_text_features_are_encoded_once_and_read_from_the_cache_by_later_runs() {
    let s = Scratch::new();
    let model = crate::common::fixture("encoder/tiny-bert");
    s.write(
        "sweep.toml",
        TINY_SWEEP.replace(
            "encoder = \"hashing\"\ndim = 64",
            &format!("encoder = \"transformer\"\nmodel = {:?}", model.to_str().unwrap()),
        ),
    );
    let run = |db: &str| {
        s.command()
            .args(["run", "sweep.toml", "--db", db])
            .env("FOLDSWEEP_CACHE", s.path("cache"))
            .run()
    };
    run("a.db");
    let cache: Vec<_> =
        std::fs::read_dir(s.path("cache")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cache.len(), 1, "one cache file for the model: {cache:?}");
    let written = std::fs::metadata(&cache[0]).unwrap().modified().unwrap();

    run("b.db");
    assert_eq!(
        std::fs::metadata(&cache[0]).unwrap().modified().unwrap(),
        written,
        "nothing re-encoded"
    );
    let oof = |name: &str| -> Vec<f64> {
        let db = s.path(name);
        let store = db::store(&db);
        let mut configs = db::config_ids(&db);
        configs.sort();
        configs
            .iter()
            .flat_map(|c| store.oof_rows(c).unwrap().into_iter().map(|r| r.prediction))
            .collect()
    };
    assert_eq!(oof("a.db").len(), 800);
    assert_eq!(oof("a.db"), oof("b.db"), "cached features give the same results");
}
