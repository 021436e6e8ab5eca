//! Regressions of the command line's checks (issue 13, items 6-9, 13, 14): export checks,
//! numeric ranges in configs and sweep files, exit codes as a property of the error, and
//! arguments parsed into types by clap.

use crate::common::predictions::{
    config_and_checkpoints, mean_of_folds, predictions_per_fold, submission_scores, CSV_RESOLUTION,
};
use crate::common::{
    assert_bad_input, db, f32_bytes, npy_bytes, scratch_with_sweep, Run, Scratch, QUICK_CONFIG,
    TINY_SWEEP,
};

/// A one-config sweep (2 folds, 1 epoch) on precomputed text features of width 8.
const PRECOMPUTED_SWEEP: &str = r#"
name = "pre"

[data]
train = "train_data.json"
test = "test_data.json"
metric_names = "metric_names.json"
metric_embeddings = "metric_name_embeddings.npy"

[text]
encoder = "precomputed"
train_embeddings = "train_text.npy"
test_embeddings = "test_text.npy"

[cv]
folds = 2

[train]
model = "standard"
loss = "hybrid"
hidden_dims = [8]
bilinear_dim = 8
bilinear_rank = 4
epochs = 1

[resources]
devices = "cpu"
# Exporting another test file than data.test predicts from the checkpoints.
checkpoints = "all"
"#;

/// Text features in [-0.5, 0.5): a fixed pattern that `salt` shifts.
fn text_npy(rows: usize, cols: usize, salt: usize) -> Vec<u8> {
    let values: Vec<f32> =
        (0..rows * cols).map(|i| (((i + salt) * 37 % 101) as f32 / 101.0) - 0.5).collect();
    npy_bytes("<f4", &[rows, cols], &f32_bytes(&values))
}

/// The sample data with precomputed text features, after a finished run of PRECOMPUTED_SWEEP.
fn precomputed_sweep_done() -> Scratch {
    let s = scratch_with_sweep(PRECOMPUTED_SWEEP);
    s.write("train_text.npy", text_npy(400, 8, 0));
    s.write("test_text.npy", text_npy(200, 8, 0));
    s.run_sweep().expect_success();
    s
}

/// Regression (issue 13, item 6): `export --test` of a new test file with precomputed text
/// features paired its records with the config's old `text.test_embeddings`. And (issue 22)
/// the test itself passed an export that ignored `--test-embeddings`: the two .npy files were
/// byte-identical and only the line count was checked. The new file's features now differ and
/// the exported scores are checked against the fold models' predictions on them.
#[test]
fn export_of_a_new_test_file_with_precomputed_text_is_not_paired_with_the_old_embeddings() {
    let s = precomputed_sweep_done();
    s.write("other_test.json", s.read("test_data.json"));
    let out = s.run(&["export", "--best", "--test", "other_test.json", "--out", "sub.csv"]);
    assert_bad_input(&out, &["other_test.json", "--test-embeddings"]);
    assert!(!s.path("sub.csv").exists(), "no submission from mismatched features");
    // With its own embeddings (other values than test_text.npy), the new test file exports.
    s.write("other_text.npy", text_npy(200, 8, 5));
    s.run_ok(&[
        "export",
        "--best",
        "--test",
        "other_test.json",
        "--test-embeddings",
        "other_text.npy",
        "--no-round",
        "--out",
        "sub.csv",
    ]);
    let exported = submission_scores(&s.read("sub.csv"));

    let configs = db::config_ids(&s.db());
    assert_eq!(configs.len(), 1, "{configs:?}");
    let (mut config, checkpoints) = config_and_checkpoints(s.dir.path(), &s.db(), &configs[0]);
    assert_eq!(checkpoints.len(), 2, "both folds");
    let on_old_features = mean_of_folds(&predictions_per_fold(&config, s.dir.path(), &checkpoints));
    config.data.test = Some("other_test.json".into());
    config.text.test_embeddings = Some("other_text.npy".into());
    let expected = mean_of_folds(&predictions_per_fold(&config, s.dir.path(), &checkpoints));
    assert_eq!(exported.len(), expected.len(), "one row per record of other_test.json");
    for (row, (got, want)) in exported.iter().zip(&expected).enumerate() {
        assert!(
            (got - want).abs() <= CSV_RESOLUTION,
            "row {row}: exported {got}, the fold models on other_text.npy give {want}"
        );
    }
    // The check can tell the two feature files apart.
    let gap = expected.iter().zip(&on_old_features).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(gap > 1e-2, "both feature files give the same scores (max gap {gap:.2e})");
}

/// Regression (issue 13, item 6): the checkpoint's spec was discarded, so text features of
/// another width than the model was trained on panicked inside burn instead of exiting 2.
#[test]
fn export_with_text_features_of_another_width_than_the_checkpoint_names_both_widths() {
    let s = precomputed_sweep_done();
    s.write("test_text.npy", text_npy(200, 5, 0));
    let out = s.run(&["export", "--best", "--out", "sub.csv"]);
    assert_bad_input(&out, &["checkpoint", "fold0", "text width 8", "5"]);
}

/// `train` with QUICK_CONFIG after replacing `from` by `to` (which must occur).
fn train_with(from: &str, to: &str) -> (Run, usize) {
    assert!(QUICK_CONFIG.contains(from), "{from}");
    let config = QUICK_CONFIG.replacen(from, to, 1);
    let line = config.lines().position(|l| l.contains(to.lines().last().unwrap())).unwrap() + 1;
    let s = Scratch::new();
    s.write("config.toml", &config);
    (s.train(), line)
}

/// Regression (issue 13, item 7): `lr = inf` was accepted and `synthetic.ratio = inf` ended in
/// a capacity-overflow panic; every number must be finite and in range, named with its line.
#[test]
fn non_finite_or_out_of_range_numbers_in_a_config_name_key_and_line() {
    let train = "lr = 3e-3";
    let cases: &[(&str, &str, &str)] = &[
        (train, "lr = 3e-3\nlr_factor = nan", "train.lr_factor"),
        (train, "lr = inf", "train.lr"),
        (train, "lr = 3e-3\nweight_decay = inf", "train.weight_decay"),
        (train, "lr = 3e-3\nmin_lr = -1.0", "train.min_lr"),
        (train, "lr = 3e-3\ngrad_clip = inf", "train.grad_clip"),
        (train, "lr = 3e-3\ndropout = nan", "train.dropout"),
        (train, "lr = 3e-3\nce_weight = inf", "train.ce_weight"),
        (train, "lr = 3e-3\nmse_weight = -inf", "train.mse_weight"),
        (train, "lr = 3e-3\nfocal_alpha = nan", "train.focal_alpha"),
        (train, "lr = 3e-3\nfocal_gamma = inf", "train.focal_gamma"),
        (train, "lr = 3e-3\nsynthetic = { ratio = inf }", "train.synthetic.ratio"),
        (train, "lr = 3e-3\nweighting = { temperature = inf }", "train.weighting.temperature"),
        (train, "lr = 3e-3\nweighting = { max_weight = inf }", "train.weighting.max_weight"),
        (train, "lr = 3e-3\nweighting = { min_weight = nan }", "train.weighting.min_weight"),
    ];
    for (from, to, key) in cases {
        let (out, line) = train_with(from, to);
        assert_bad_input(&out, &["config.toml", &format!("`{key}`"), &format!("line {line}")]);
    }
}

/// Regression (issue 13, item 7): integers out of range (a huge `text.dim`, `cv.folds = 1`)
/// were accepted and failed later, some with an allocation abort.
#[test]
fn integers_out_of_range_in_a_config_name_key_and_line() {
    let cases: &[(&str, &str, &str)] = &[
        ("dim = 64", "dim = 1000000000000", "text.dim"),
        ("dim = 64", "dim = 64\nngram_max = 1000", "text.ngram_max"),
        ("folds = 5", "folds = 1", "cv.folds"),
        ("epochs = 2", "epochs = 0", "train.epochs"),
        ("hidden_dims = [16]", "hidden_dims = [16, 100000000]", "train.hidden_dims"),
        ("bilinear_rank = 4", "bilinear_rank = 100000000", "train.bilinear_rank"),
        ("lr = 3e-3", "lr = 3e-3\nbatch_size = 0", "train.batch_size"),
        ("lr = 3e-3", "lr = 3e-3\nsynthetic = { score_max = 11 }", "train.synthetic.score_max"),
    ];
    for (from, to, key) in cases {
        let (out, line) = train_with(from, to);
        assert_bad_input(&out, &["config.toml", &format!("`{key}`"), &format!("line {line}")]);
    }
}

/// Regression (issue 13, item 7): the `[text] finetune` numbers were not range-checked.
#[test]
fn non_finite_finetune_settings_name_key_and_line() {
    let transformer = "encoder = \"transformer\"\nmodel = \"no-model-needed\"\n";
    for (setting, key) in [
        ("lr = inf", "text.finetune.lr"),
        ("scale = nan", "text.finetune.scale"),
        ("weight_decay = inf", "text.finetune.weight_decay"),
        ("warmup_fraction = nan", "text.finetune.warmup_fraction"),
    ] {
        let to = format!("{transformer}finetune = {{ {setting} }}");
        let (out, line) = train_with("encoder = \"hashing\"", &to);
        assert_bad_input(&out, &["config.toml", &format!("`{key}`"), &format!("line {line}")]);
    }
}

/// `run --dry-run` of TINY_SWEEP after replacing `from` by `to`; the line of `to`'s last line.
fn dry_run_with(from: &str, to: &str) -> (Run, usize) {
    assert!(TINY_SWEEP.contains(from), "{from}");
    let sweep = TINY_SWEEP.replacen(from, to, 1);
    let line = sweep.lines().position(|l| l.contains(to.lines().last().unwrap())).unwrap() + 1;
    let s = Scratch::new();
    s.write("sweep.toml", &sweep);
    (s.run(&["run", "sweep.toml", "--db", "results.db", "--dry-run"]), line)
}

/// Regression (issue 13, item 7): a sweep file's base sections and grid values skipped the
/// range checks a config gets.
#[test]
fn non_finite_numbers_in_a_sweep_file_name_key_and_line() {
    // In a base section.
    let (out, line) = dry_run_with("lr = 3e-3", "lr = inf");
    assert_bad_input(&out, &["sweep.toml", "`train.lr`", &format!("line {line}")]);
    let (out, line) = dry_run_with("ratio = 0.3", "ratio = inf");
    assert_bad_input(&out, &["sweep.toml", "`train.synthetic.ratio`", &format!("line {line}")]);
    // A grid value.
    let (out, line) = dry_run_with(
        "loss = [\"hybrid\", \"ordinal\"]",
        "loss = [\"hybrid\", \"ordinal\"]\nlr = [1e-3, inf]",
    );
    assert_bad_input(&out, &["sweep.toml", "grid key `lr`", &format!("line {line}")]);
    let (out, line) = dry_run_with(
        "loss = [\"hybrid\", \"ordinal\"]",
        "loss = [\"hybrid\", \"ordinal\"]\n\"synthetic.ratio\" = [0.1, nan]",
    );
    assert_bad_input(&out, &["sweep.toml", "grid key `synthetic.ratio`", &format!("line {line}")]);
}

/// `train` of QUICK_CONFIG with the transformer encoder on `model`, the cache at `cache`.
fn train_transformer(s: &Scratch, model: &str, cache: &std::path::Path) -> Run {
    s.write(
        "config.toml",
        QUICK_CONFIG.replace(
            "encoder = \"hashing\"",
            &format!("encoder = \"transformer\"\nmodel = {model:?}"),
        ),
    );
    s.command()
        .args(["train", "config.toml", "--fold", "0", "--out", "out", "--quiet"])
        .env("FOLDSWEEP_CACHE", cache)
        .output()
}

/// Regression (issue 13, item 13): any encoder failure was relabelled as bad input, so a full
/// disk in the cache exited 2; the exit code is the error's kind.
#[test]
fn a_cache_that_cannot_be_written_exits_1_but_a_missing_model_folder_exits_2() {
    let s = Scratch::new();
    // A regular file where the cache folder should be: creating the folder fails (I/O).
    s.write("not-a-folder", "x");
    let model = crate::common::fixture("encoder/tiny-bert");
    let out = train_transformer(&s, model.to_str().unwrap(), &s.path("not-a-folder"));
    out.expect_code(1).check(!out.stderr().contains("panicked"), "an I/O failure, not a panic");
    let out = train_transformer(&s, "no-such-model", &s.path("cache"));
    assert_bad_input(&out, &["no-such-model", "model folder not found"]);
}

/// Regression (issue 13, item 14): formats, sorts, devices and shards were strings checked
/// late (or not at all); clap parses them into types and names the flag.
#[test]
fn arguments_are_parsed_by_clap_into_types() {
    let s = Scratch::new();
    s.write("sweep.toml", TINY_SWEEP);
    let out = s.run(&["run", "sweep.toml", "--shard", "5/4", "--dry-run"]);
    assert_bad_input(&out, &["--shard", "5/4"]);
    let out = s.run(&["results", "--sort", "median"]);
    assert_bad_input(&out, &["--sort", "possible values: oof, mean, macro"]);
    let out = s.run(&["results", "--format", "yaml"]);
    assert_bad_input(&out, &["--format", "possible values: table, csv, json"]);
    let out = s.run(&["compare", "--by", "median"]);
    assert_bad_input(&out, &["--by", "possible values: oof, macro"]);
    let out = s.run(&["export", "--best", "--by", "mean", "--out", "x.csv"]);
    assert_bad_input(&out, &["--by", "possible values: oof, macro"]);
    let out = s.run(&["bench-epoch", "--precision", "f64"]);
    assert_bad_input(&out, &["--precision", "possible values: f32, bf16, f16"]);
    let out = s.run(&["train", "config.toml", "--fold", "0", "--device", "tpu"]);
    assert_bad_input(&out, &["--device", "tpu"]);
}

/// Regression (issue 13, item 14): library errors named CLI flags; only the CLI renames a
/// field to its flag.
#[test]
fn no_library_error_names_a_command_line_flag() {
    let src = crate::common::repo_root().join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path != src.join("cli.rs") && !path.starts_with(src.join("cli")) {
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("field(\"--") || text.contains("field(format!(\"--") {
                    offenders.push(path.display().to_string());
                }
            }
        }
    }
    assert!(offenders.is_empty(), "library errors naming flags in {offenders:?}");
}

/// Regression (issue 13, item 8): `compare --by-macro` compared against the best config by
/// pooled OOF RMSE instead of the best by macro RMSE.
#[test]
fn compare_by_macro_compares_against_the_best_config_by_macro() {
    let s = scratch_with_sweep(TINY_SWEEP);
    s.run_sweep().expect_success();
    let results = s.run_ok(&["results", "--sort", "macro", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&results.stdout()).unwrap();
    let best_macro = rows[0]["id"].as_str().unwrap().to_string();
    for args in [
        &["compare", "--by-macro", "--format", "json"][..],
        &["compare", "--by", "macro", "--format", "json"],
    ] {
        let report: serde_json::Value = serde_json::from_str(&s.run_ok(args).stdout()).unwrap();
        assert_eq!(report["reference"], best_macro.as_str(), "{args:?}");
        assert_eq!(report["metric"], "macro RMSE");
    }
}

/// Regression (issue 13, item 9): export rounded to whole scores by default (which raised the
/// RMSE measured on the shifted test labels), and results did not show the rounded RMSE.
#[test]
fn results_json_shows_the_pooled_rounded_rmse_and_export_rounds_only_when_asked() {
    let s = scratch_with_sweep(TINY_SWEEP);
    s.run_sweep().expect_success();
    let results = s.run_ok(&["results", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&results.stdout()).unwrap();
    let store = db::store(&s.db());
    assert_eq!(rows.as_array().unwrap().len(), 2, "both configs");
    for row in rows.as_array().unwrap() {
        let id = row["id"].as_str().unwrap();
        let pairs = store.oof_predictions(id).unwrap();
        assert_eq!(pairs.len(), 400, "{id}: every record's out-of-fold prediction");
        let expected =
            (pairs.iter().map(|(t, p)| (p.clamp(0.0, 10.0).round() - t).powi(2)).sum::<f64>()
                / pairs.len() as f64)
                .sqrt();
        let shown = row["oof_rounded_rmse"].as_f64().expect("oof_rounded_rmse in the JSON");
        assert!((shown - expected).abs() < 1e-9, "{id}: {shown} vs {expected}");
    }
    let scores = |args: &[&str]| -> Vec<f64> {
        s.run_ok(args);
        s.read("sub.csv")
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
            .collect()
    };
    let rounded = scores(&["export", "--best", "--round", "--out", "sub.csv"]);
    assert!(rounded.iter().all(|v| v.fract() == 0.0));
    let raw = scores(&["export", "--best", "--no-round", "--out", "sub.csv"]);
    assert!(raw.iter().any(|v| v.fract() != 0.0), "--no-round keeps the averaged scores");
    assert_eq!(scores(&["export", "--best", "--out", "sub.csv"]), raw, "the default: no rounding");
}

/// Regression: `foldsweep results | head -1` panicked in println! ("failed printing to
/// stdout: Broken pipe") once head closed the pipe. Issue 22: the test checked only that
/// stderr had no "panicked", never the exit status, so a silent crash or an error exit passed.
#[test]
fn regression_results_piped_into_a_closed_pipe_ends_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let s = scratch_with_sweep(TINY_SWEEP);
    s.run_sweep().expect_success();
    let mut child = s.command().args(["results", "--db", "results.db", "--format", "csv"]).spawn();
    // The reader goes before the command prints its first line, as `| head -0` would.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!err.contains("panicked"), "{err}");
    // As other Unix tools end there: killed by SIGPIPE (or done, had it written everything
    // before the pipe closed), with nothing on stderr.
    let status = output.status;
    assert!(status.success() || status.signal() == Some(libc::SIGPIPE), "{status}: {err}");
    assert!(err.is_empty(), "{err}");
}

/// `results` on an 80-column terminal (a pseudo-terminal from util-linux's `script`):
/// regression for issue 20, where the table was 21 columns and about 230 characters wide
/// wherever it was printed. Piped, it keeps every column, as scripts expect.
#[test]
fn results_on_a_terminal_fits_its_width_and_piped_keeps_every_column() {
    let s = crate::serve::tiny_sweep_done();
    let on_terminal = |flags: &str| {
        let inner = format!(
            "stty cols 80 rows 50; exec {} results --db results.db{flags}",
            env!("CARGO_BIN_EXE_foldsweep")
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &inner, "/dev/null"])
            .current_dir(s.dir.path())
            .output()
            .expect("util-linux's script runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).replace('\r', "")
    };
    let table_lines = |text: &str| -> Vec<String> {
        text.lines().filter(|l| l.starts_with(['┌', '│', '╞', '└'])).map(String::from).collect()
    };
    let text = on_terminal("");
    let lines = table_lines(&text);
    assert!(lines.len() >= 6, "a table of four configs:\n{text}");
    let widest = lines.iter().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 80, "{widest} characters on an 80-column terminal:\n{text}");
    assert!(!lines.iter().any(|l| l.contains("@10") || l.contains("mean ± sd")), "{text}");
    assert!(lines.iter().any(|l| l.contains("OOF RMSE")), "{text}");

    let wide = on_terminal(" --wide");
    assert!(table_lines(&wide).iter().any(|l| l.contains("@10")), "--wide:\n{wide}");
    let piped = s.run_ok(&["results", "--db", "results.db"]);
    let piped = piped.stdout();
    assert!(table_lines(&piped).iter().any(|l| l.contains("mean ± sd") && l.contains("@10")));
}
