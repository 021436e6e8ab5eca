//! Prototype features and the gbdt family through the real binary (issue 23): a sweep over
//! `features.prototypes` x model (the three heads and gbdt) runs, resumes, shows and exports,
//! and bad settings are input errors.

use rusqlite::Connection;
use serde_json::Value;

use crate::common::{assert_bad_input, stderr, stdout, Scratch};

const SWEEP: &str = r#"
name = "prototypes"

[data]
train = "train_data.json"
test = "test_data.json"
metric_names = "metric_names.json"
metric_embeddings = "metric_name_embeddings.npy"

[text]
encoder = "hashing"
dim = 64

[cv]
folds = 3
seed = 42

[train]
hidden_dims = [8]
bilinear_dim = 8
bilinear_rank = 4
batch_size = 64
lr = 3e-3
epochs = 2
synthetic = { ratio = 0.5, score_min = 0, score_max = 3, other_family = true }
gbdt = { trees = 40, learning_rate = 0.2, max_depth = 3, early_stopping_rounds = 5 }

[features]
prototype_level = "both"

[validation]
probe = { fraction = 0.35, score_min = 0, score_max = 3 }

[grid]
model = ["standard", "ordinal", "heteroscedastic", "gbdt"]
loss = ["hybrid", "ordinal", "heteroscedastic", "squared_error"]
"features.prototypes" = [false, true]

[resources]
devices = "cpu"
jobs_per_device = 2
"#;

fn run_ok(s: &Scratch, args: &[&str]) -> String {
    let out = s.run(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}\n{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn results(s: &Scratch) -> Vec<Value> {
    let json = run_ok(s, &["results", "--db", "results.db", "--format", "json"]);
    serde_json::from_str(&json).expect("results json")
}

fn varying<'a>(row: &'a Value, key: &str) -> &'a str {
    row["varying"][key].as_str().unwrap_or_else(|| panic!("{key} in {row}"))
}

#[test]
fn a_sweep_over_prototypes_and_every_model_family_runs_resumes_and_exports() {
    let s = Scratch::new();
    s.write("sweep.toml", SWEEP);
    let first = run_ok(&s, &["run", "sweep.toml", "--db", "results.db"]);
    // 4 valid model/loss pairs x 2; gbdt without prototypes has no inputs and is dropped.
    let rows = results(&s);
    assert_eq!(rows.len(), 7, "{first}\n{rows:#?}");
    let gbdt: Vec<&Value> = rows.iter().filter(|r| varying(r, "model") == "gbdt").collect();
    assert_eq!(gbdt.len(), 1);
    assert_eq!(varying(gbdt[0], "features.prototypes"), "true");
    for row in &rows {
        assert!(row["shifted_rmse"].as_f64().is_some_and(f64::is_finite), "{row}");
        assert_eq!(row["folds_done"].as_u64(), Some(3), "{row}");
    }
    let conn = Connection::open(s.path("results.db")).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM fold_results"), 21);
    assert_eq!(count("SELECT COUNT(*) FROM fold_results WHERE shifted_rmse IS NULL"), 0);
    // Every job stored its test predictions (200 records), gbdt's too.
    assert_eq!(count("SELECT COUNT(*) FROM test_predictions"), 21 * 200);

    // Resuming runs nothing and changes nothing.
    run_ok(&s, &["run", "sweep.toml", "--db", "results.db"]);
    assert_eq!(count("SELECT COUNT(*) FROM jobs"), 21);
    assert_eq!(results(&s), rows);

    // Exports: the gbdt config's fold ensemble, the best, and an ensemble across families.
    let id = gbdt[0]["id"].as_str().unwrap();
    run_ok(&s, &["export", "--db", "results.db", "--config", id, "--out", "gbdt.csv"]);
    assert_eq!(s.read("gbdt.csv").lines().count(), 201);
    run_ok(&s, &["export", "--db", "results.db", "--best", "--out", "best.csv"]);
    let ensemble =
        run_ok(&s, &["export", "--db", "results.db", "--ensemble", "5", "--out", "ens.csv"]);
    assert_eq!(s.read("ens.csv").lines().count(), 201, "{ensemble}");
    // Another test file needs what is not saved: the fold prototypes and the trees.
    let other = s.run(&[
        "export",
        "--db",
        "results.db",
        "--config",
        id,
        "--test",
        "train_data.json",
        "--out",
        "o.csv",
    ]);
    assert_bad_input(&other, &["train_data.json", "prototypes", "data.test"]);

    // `show` prints where the margin puts real and probe rows.
    let shown = run_ok(&s, &["show", "--db", "results.db", id]);
    assert!(shown.contains("margin"), "{shown}");
    assert!(shown.contains("probe") && shown.contains("real"), "{shown}");
}

#[test]
fn gbdt_settings_are_checked_and_named() {
    let s = Scratch::new();
    let bad = SWEEP.replace("max_depth = 3", "max_depth = 3, subsample = 1.5");
    s.write("sweep.toml", &bad);
    let out = s.run(&["run", "sweep.toml", "--db", "results.db", "--dry-run"]);
    assert_bad_input(&out, &["subsample"]);
    let unknown = SWEEP.replace("max_depth = 3", "max_depht = 3");
    s.write("sweep.toml", &unknown);
    let out = s.run(&["run", "sweep.toml", "--db", "results.db", "--dry-run"]);
    assert_bad_input(&out, &["max_depht"]);
    let level = SWEEP.replace("prototype_level = \"both\"", "prototype_level = \"topic\"");
    s.write("sweep.toml", &level);
    let out = s.run(&["run", "sweep.toml", "--db", "results.db", "--dry-run"]);
    assert_bad_input(&out, &["prototype_level"]);
}

#[test]
fn a_single_gbdt_config_trains_one_fold() {
    let s = Scratch::new();
    let config = crate::common::QUICK_CONFIG.replace(
        "model = \"standard\"\nloss = \"hybrid\"",
        "model = \"gbdt\"\nloss = \"squared_error\"\ngbdt = { trees = 20 }",
    );
    s.write("config.toml", format!("{config}\n[features]\nprototypes = true\n"));
    let out = s.train();
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    // Without prototypes nor other inputs the trees would have nothing to read.
    s.write("config.toml", &config);
    let out = s.train();
    assert_bad_input(&out, &["prototypes"]);
}
