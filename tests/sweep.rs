//! Sweeps through the real binary: exactly-once jobs, resume, crash safety, failures,
//! the query commands and the submission export.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{assert_bad_input, stderr, stdout, Scratch, TINY_SWEEP};
use rusqlite::Connection;

fn scratch_with_sweep(sweep: &str) -> Scratch {
    let s = Scratch::new();
    s.write("sweep.toml", sweep);
    s
}

/// `foldsweep run sweep.toml --db results.db` in the background, output discarded.
fn spawn_sweep(s: &Scratch) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_foldsweep"))
        .args(["run", "sweep.toml", "--db", "results.db"])
        .current_dir(s.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn run_sweep(s: &Scratch) -> std::process::Output {
    s.run(&["run", "sweep.toml", "--db", "results.db"])
}

fn db(s: &Scratch) -> Connection {
    Connection::open(s.path("results.db")).unwrap()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every (config, fold) recorded exactly once, with its per-bin rows and OOF predictions.
fn assert_complete(conn: &Connection, configs: i64) {
    assert_eq!(count(conn, "SELECT COUNT(*) FROM jobs"), configs * 5);
    assert_eq!(count(conn, "SELECT COUNT(*) FROM jobs WHERE status = 'done'"), configs * 5);
    assert_eq!(
        count(conn, "SELECT COUNT(DISTINCT config_id || '/' || fold) FROM jobs"),
        configs * 5
    );
    assert_eq!(count(conn, "SELECT COUNT(*) FROM fold_results"), configs * 5);
    assert_eq!(count(conn, "SELECT COUNT(*) FROM bin_results"), configs * 5 * 11);
    assert_eq!(
        count(conn, "SELECT COUNT(*) FROM oof_predictions"),
        configs * 400,
        "every record once per config"
    );
    assert_eq!(
        count(conn, "SELECT COUNT(*) FROM (SELECT job_id FROM epochs GROUP BY job_id)"),
        configs * 5
    );
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn sweep_records_every_job_once_and_a_rerun_does_no_work() {
    let s = scratch_with_sweep(TINY_SWEEP);
    let out = run_sweep(&s);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("2 configs x 5 folds = 10 jobs"), "{}", stdout(&out));
    assert_complete(&db(&s), 2);
    let started: Vec<f64> = db(&s)
        .prepare("SELECT started_at FROM jobs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();

    let again = run_sweep(&s);
    assert!(again.status.success());
    assert!(stdout(&again).contains("nothing to do: all 10 jobs"), "{}", stdout(&again));
    let started_again: Vec<f64> = db(&s)
        .prepare("SELECT started_at FROM jobs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(started, started_again, "no job ran twice");
}

#[test]
fn adding_grid_values_adds_only_the_new_jobs() {
    let s = scratch_with_sweep(TINY_SWEEP);
    assert!(run_sweep(&s).status.success());
    // 0.5 is the default temperature: those configs are the ones already done.
    s.write(
        "sweep.toml",
        TINY_SWEEP.replace("[resources]", "\"weighting.temperature\" = [0.5, 0.0]\n\n[resources]"),
    );
    let out = run_sweep(&s);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("4 configs x 5 folds = 20 jobs; 10 done, 10 to run"),
        "{}",
        stdout(&out)
    );
    assert_complete(&db(&s), 4);
}

#[test]
fn dry_run_lists_configs_and_dropped_pairs_and_runs_nothing() {
    let s = scratch_with_sweep(TINY_SWEEP);
    let out = s.run(&["run", "sweep.toml", "--db", "results.db", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
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
    let ids = |s: &Scratch| -> Vec<String> {
        let out = s.run(&["run", "sweep.toml", "--dry-run"]);
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("  ") && !l.contains('('))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
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
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let done = Connection::open(s.path("results.db"))
            .ok()
            .and_then(|c| {
                c.query_row("SELECT COUNT(*) FROM jobs WHERE status = 'done'", [], |r| {
                    r.get::<_, i64>(0)
                })
                .ok()
            })
            .unwrap_or(0);
        if done >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the sweep made no progress");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let conn = db(&s);
    let done = count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'done'");
    assert!(done < 10, "killed mid-sweep, not after it ({done} done)");
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM fold_results"), done, "no half-recorded job");
    drop(conn);

    let out = run_sweep(&s);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_complete(&db(&s), 2);
}

#[test]
fn a_panicking_job_is_retried_then_failed_while_the_rest_finish() {
    let s = scratch_with_sweep(TINY_SWEEP);
    let out = Command::new(env!("CARGO_BIN_EXE_foldsweep"))
        .args(["run", "sweep.toml", "--db", "results.db"])
        .current_dir(s.dir.path())
        .env("FOLDSWEEP_PANIC_ON_FOLD", "2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "some jobs failed: exit 1\n{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("retry ") && text.contains("FAILED"), "{text}");
    let conn = db(&s);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'done'"), 8);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM jobs WHERE status = 'failed' AND fold = 2 AND attempt = 2"
        ),
        2
    );
    let error: String = conn
        .query_row("SELECT error FROM jobs WHERE status = 'failed' LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert!(error.contains("deliberate panic on fold 2"), "{error}");
    assert!(error.contains("worker exited with code"), "{error}");

    let results = s.run(&["results", "--db", "results.db"]);
    assert!(stdout(&results).contains("4/5 (1 failed)"), "{}", stdout(&results));
    // An incomplete config is not exported unless asked.
    let id: String =
        conn.query_row("SELECT config_id FROM jobs LIMIT 1", [], |r| r.get(0)).unwrap();
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
    assert!(partial.status.success(), "{}", stderr(&partial));

    // The next run retries the failed jobs (and they succeed without the hook).
    assert!(run_sweep(&s).status.success());
    assert_complete(&db(&s), 2);
}

#[test]
fn results_compare_and_export_outputs() {
    let s = scratch_with_sweep(TINY_SWEEP);
    assert!(run_sweep(&s).status.success());

    let table = stdout(&s.run(&["results", "--db", "results.db"]));
    for column in
        ["config", "model", "loss", "folds", "mean ± sd", "OOF RMSE", "macro", "@9", "@10"]
    {
        assert!(table.contains(column), "{column} missing:\n{table}");
    }
    let csv_text = stdout(&s.run(&["results", "--db", "results.db", "--format", "csv"]));
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..4], ["rank", "config", "model", "loss"]);
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 2);
    let oof = header.iter().position(|h| h == "oof_rmse").unwrap();
    let oofs: Vec<f64> = rows.iter().map(|r| r[oof].parse().unwrap()).collect();
    assert!(oofs[0] <= oofs[1], "sorted best first: {oofs:?}");

    // Pooled OOF RMSE is sqrt(mean of squared errors over all records), recomputed here.
    let json: serde_json::Value = serde_json::from_str(&stdout(&s.run(&[
        "results",
        "--db",
        "results.db",
        "--format",
        "json",
    ])))
    .unwrap();
    let best = &json[0];
    let conn = db(&s);
    let id = best["id"].as_str().unwrap();
    let mse: f64 = conn
        .query_row(
            "SELECT AVG((o.prediction - o.truth) * (o.prediction - o.truth)) FROM oof_predictions o JOIN jobs j ON j.id = o.job_id WHERE j.config_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert!((best["oof_rmse"].as_f64().unwrap() - mse.sqrt()).abs() < 1e-9);
    assert_eq!(best["folds_done"], 5);

    // compare: the t statistic recomputed from the per-fold RMSEs in the database.
    let report: serde_json::Value = serde_json::from_str(&stdout(&s.run(&[
        "compare",
        "--db",
        "results.db",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(report["reference"].as_str().unwrap(), id);
    let c = &report["comparisons"][0];
    let fold_rmse = |config: &str| -> Vec<(f64, f64, f64)> {
        conn.prepare("SELECT r.rmse, r.val_rows, r.train_rows FROM jobs j JOIN fold_results r ON r.job_id = j.id WHERE j.config_id = ?1 ORDER BY j.fold")
            .unwrap()
            .query_map([config], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as f64, r.get::<_, i64>(2)? as f64)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let (a, b) = (fold_rmse(c["config"].as_str().unwrap()), fold_rmse(id));
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
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("pooled OOF RMSE")
            && stdout(&out).contains("prediction distribution"),
        "{}",
        stdout(&out)
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
    assert!(raw.status.success());
    assert!(s.read("raw.csv").lines().skip(1).any(|l| !l.ends_with(".0000")), "unrounded scores");
}

fn bad_sweep(edit: impl Fn(&str) -> String, fragments: &[&str]) {
    let s = scratch_with_sweep(&edit(TINY_SWEEP));
    assert_bad_input(&run_sweep(&s), fragments);
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

/// Starts a sweep whose jobs take a few seconds each and waits until one job runs.
fn start_slow_sweep(s: &Scratch) -> std::process::Child {
    s.write(
        "sweep.toml",
        TINY_SWEEP
            .replace("epochs = 3", "epochs = 400\npatience = 0")
            .replace("jobs_per_device = 2", "jobs_per_device = 1"),
    );
    let child = spawn_sweep(s);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Connection::open(s.path("results.db"))
        .ok()
        .and_then(|c| {
            c.query_row("SELECT COUNT(*) FROM jobs WHERE status = 'running'", [], |r| {
                r.get::<_, i64>(0)
            })
            .ok()
        })
        .unwrap_or(0)
        == 0
    {
        assert!(Instant::now() < deadline, "no job started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn interrupt(child: &std::process::Child) {
    // SAFETY: sends SIGINT to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
}

#[test]
fn ctrl_c_once_lets_running_jobs_finish_and_starts_no_new_one() {
    let s = Scratch::new();
    let mut child = start_slow_sweep(&s);
    interrupt(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "stopped early: exit 1");
    let conn = db(&s);
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM jobs WHERE status IN ('running', 'interrupted')"),
        0
    );
    assert!(
        count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'done'") >= 1,
        "the running job finished"
    );
    assert!(
        count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'pending'") >= 8,
        "no new job started"
    );
}

#[test]
fn ctrl_c_twice_stops_running_jobs_and_marks_them_interrupted() {
    let s = Scratch::new();
    let mut child = start_slow_sweep(&s);
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let conn = db(&s);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'running'"), 0);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'interrupted'"), 1);
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM fold_results"),
        count(&conn, "SELECT COUNT(*) FROM jobs WHERE status = 'done'")
    );
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
        Command::new(env!("CARGO_BIN_EXE_foldsweep"))
            .args(["run", "sweep.toml", "--db", db])
            .current_dir(s.dir.path())
            .env("FOLDSWEEP_CACHE", s.path("cache"))
            .output()
            .unwrap()
    };
    let first = run("a.db");
    assert!(first.status.success(), "{}\n{}", stdout(&first), stderr(&first));
    let cache: Vec<_> =
        std::fs::read_dir(s.path("cache")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cache.len(), 1, "one cache file for the model: {cache:?}");
    let written = std::fs::metadata(&cache[0]).unwrap().modified().unwrap();

    let second = run("b.db");
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        std::fs::metadata(&cache[0]).unwrap().modified().unwrap(),
        written,
        "nothing re-encoded"
    );
    let oof = |db: &str| -> Vec<f64> {
        Connection::open(s.path(db)).unwrap()
            .prepare("SELECT o.prediction FROM oof_predictions o JOIN jobs j ON j.id = o.job_id ORDER BY j.config_id, j.fold, o.record").unwrap()
            .query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(oof("a.db").len(), 800);
    assert_eq!(oof("a.db"), oof("b.db"), "cached features give the same results");
}
