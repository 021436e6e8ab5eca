//! Sharded sweeps: every job in exactly one shard, merge idempotent and complete, mismatched
//! shards refused, the Slurm script.

use crate::common::db::{self, sql_count};
use crate::common::{assert_bad_input, scratch_with_sweep, Scratch, TINY_SWEEP};
use foldsweep::store::JobStatus;

/// (config, fold, status) of every job, by config and fold.
fn jobs(db: &std::path::Path) -> Vec<(String, usize, JobStatus)> {
    let mut jobs: Vec<_> =
        db::jobs(db).into_iter().map(|j| (j.config_id, j.record.fold, j.record.status)).collect();
    jobs.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    jobs
}

/// A fingerprint of everything recorded: merging again must not change it.
fn contents(db: &std::path::Path) -> Vec<i64> {
    [
        "jobs",
        "fold_results",
        "bin_results",
        "epochs",
        "oof_predictions",
        "configs",
        "sweep_configs",
        "sweeps",
    ]
    .iter()
    .map(|t| sql_count(db, &format!("SELECT COUNT(*) FROM {t}")))
    .chain([sql_count(db, "SELECT CAST(SUM(prediction) * 1000 AS INTEGER) FROM oof_predictions")])
    .collect()
}

#[test]
fn three_shards_merged_equal_a_single_machine_run_and_merging_twice_changes_nothing() {
    let single = scratch_with_sweep(TINY_SWEEP);
    single.run_sweep().expect_success();

    let s = scratch_with_sweep(TINY_SWEEP);
    let mut sizes = Vec::new();
    for i in 1..=3 {
        let out = s.run(&[
            "run",
            "sweep.toml",
            "--shard",
            &format!("{i}/3"),
            "--db",
            &format!("shard-{i}.db"),
        ]);
        out.expect_success().check(
            out.stdout().contains(&format!("(shard {i}/3 of 10 jobs)")),
            "the shard's share",
        );
        sizes.push(jobs(&s.path(&format!("shard-{i}.db"))).len());
    }
    assert_eq!(sizes.iter().sum::<usize>(), 10);
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");

    let merge = |s: &Scratch| {
        s.run(&["merge", "shard-1.db", "shard-2.db", "shard-3.db", "--into", "results.db"])
    };
    let out = merge(&s);
    out.expect_success().check(out.stdout().contains("10 jobs added, 0 already there"), "added");
    assert_eq!(
        jobs(&s.path("results.db")),
        jobs(&single.path("results.db")),
        "same job set as one machine"
    );
    assert_eq!(sql_count(&s.path("results.db"), "SELECT COUNT(*) FROM oof_predictions"), 800);
    assert_eq!(sql_count(&s.path("results.db"), "SELECT COUNT(*) FROM bin_results"), 110);
    assert_eq!(
        sql_count(
            &s.path("results.db"),
            "SELECT COUNT(*) FROM jobs WHERE host IS NULL OR device IS NULL"
        ),
        0,
        "where each job ran"
    );
    let before = contents(&s.path("results.db"));
    let again = merge(&s);
    again.expect_success().check(
        again.stdout().contains("0 jobs added, 10 already there"),
        "merging again adds nothing",
    );
    assert_eq!(contents(&s.path("results.db")), before);

    // The merged database is a normal one: results and export (checkpoints resolve).
    let results = s.run_ok(&["results", "--db", "results.db"]);
    results.check(results.stdout().contains("5/5"), "every fold of the merged configs");
    s.run_ok(&["export", "--db", "results.db", "--best", "--out", "sub.csv"]);
}

#[test]
fn shards_of_another_fold_assignment_are_refused() {
    let s = scratch_with_sweep(TINY_SWEEP);
    s.run_ok(&["run", "sweep.toml", "--shard", "1/2", "--db", "a.db"]);
    s.write("sweep.toml", TINY_SWEEP.replace("seed = 42", "seed = 7"));
    s.run_ok(&["run", "sweep.toml", "--shard", "2/2", "--db", "b.db"]);
    let out = s.run(&["merge", "a.db", "b.db", "--into", "results.db"]);
    assert_bad_input(&out, &["b.db", "another fold assignment", "refusing to merge"]);
    // The refused shard left nothing behind: the target holds shard a only.
    assert_eq!(jobs(&s.path("results.db")).len(), jobs(&s.path("a.db")).len());
}

#[test]
fn bad_shard_arguments_exit_2() {
    let s = scratch_with_sweep(TINY_SWEEP);
    assert_bad_input(&s.run(&["run", "sweep.toml", "--shard", "4/3"]), &["--shard", "1 <= I <= N"]);
    assert_bad_input(
        &s.run(&["merge", "missing.db", "--into", "r.db"]),
        &["missing.db", "no such shard database"],
    );
}

#[test]
fn slurm_script_runs_one_shard_per_array_task_and_merges_after_any() {
    let s = scratch_with_sweep(TINY_SWEEP);
    let out = s.run_ok(&[
        "slurm",
        "sweep.toml",
        "--tasks",
        "4",
        "--gpus-per-task",
        "1",
        "--partition",
        "gpu",
        "--time",
        "04:00:00",
        "--max-concurrent",
        "2",
        "--out",
        "job.sbatch",
    ]);
    let array = s.read("job.sbatch");
    for line in [
        "#SBATCH --array=1-4%2",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=04:00:00",
        "--shard \"${SLURM_ARRAY_TASK_ID}/4\"",
        "shard-${SLURM_ARRAY_TASK_ID}.db",
        "--devices auto",
    ] {
        assert!(array.contains(line), "{line} missing:\n{array}");
    }
    let merge = s.read("job.merge.sbatch");
    // Absolute, so the scripts run from anywhere; the folder exists before submission, because
    // Slurm opens each job's --output file there before the script's first line runs.
    let out_dir = std::fs::canonicalize(s.path("sweep-out"))
        .expect("foldsweep slurm creates the output folder");
    assert!(
        merge.contains(&format!("merge {0}/shard-*.db --into {0}/results.db", out_dir.display())),
        "{merge}"
    );
    assert!(
        array.contains(&format!("#SBATCH --output={}/slurm-%A_%a.out", out_dir.display())),
        "{array}"
    );
    out.check(out.stdout().contains("--dependency=afterany:$jid"), "the merge waits on the array");
}
