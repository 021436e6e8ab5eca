//! Unit tests of the store: migrations, claims, results, merges and trials.

use super::*;
use crate::train::EpochLog;

/// The schema of version 1, as foldsweep 0.1 wrote it.
const SCHEMA_V1: &str = include_str!("../../tests/fixtures/schema_v1.sql");

fn v1_file(dir: &Path) -> PathBuf {
    let path = dir.join("v1.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.execute_batch(
        "INSERT INTO meta VALUES ('schema_version', '1');
         INSERT INTO sweeps VALUES (1, 'old', 'name = \"old\"', 'fp', 'fh', 5, 0, 0);
         INSERT INTO configs VALUES ('c1', '{}', 'fh', 'fp', 0);
         INSERT INTO sweep_configs VALUES (1, 'c1', '{}', '', 0);
         INSERT INTO jobs (id, config_id, fold, status, attempt, pid) VALUES (7, 'c1', 0, 'done', 1, 42);
         INSERT INTO fold_results VALUES (7, 1, 1, 0.5, 0.5, 0.5, 1.0, 10, 0, 2, 0.1, 'checkpoints/c1/fold0');",
    )
    .unwrap();
    path
}

#[test]
fn a_version_1_file_is_migrated_in_place_keeping_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = v1_file(dir.path());
    let mut store = Store::open(&path).unwrap();
    assert_eq!(schema_version(&store.conn).unwrap(), Some(SCHEMA_VERSION));
    let (status, pid): (JobStatus, i64) = store
        .conn
        .query_row("SELECT status, pid FROM jobs WHERE id = 7", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((status, pid), (JobStatus::Done, 42));
    assert_eq!(store.fold_metrics("c1").unwrap().len(), 1, "results still joined to the job");
    store.record_diverged(7, 3, &[], "diverged").unwrap();
    assert_eq!(store.config_jobs_in("c1", JobStatus::Diverged).unwrap(), 1);
    assert_eq!(store.sweep_configs(1, false).unwrap().len(), 1);
    drop(store);
    Store::open(&path).expect("a migrated file opens again");
}

#[test]
fn a_file_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'", [])
        .unwrap();
    let error = Store::open(&path).err().expect("refused").to_string();
    assert!(error.contains("schema version 3"), "{error}");
}

fn one_job_sweep(path: &Path, config_id: &str) -> (Store, i64) {
    fold_zero_sweep(path, &[config_id])
}

/// A new store at `path` with a one-fold sweep "s" of these configs: one pending fold-0 job
/// each, in this order. Shared with the unit tests of the layers above.
pub(crate) fn fold_zero_sweep(path: &Path, config_ids: &[&str]) -> (Store, i64) {
    let mut store = Store::open(path).unwrap();
    let sweep = SweepDefinition {
        name: "s",
        definition: "name = \"s\"",
        data_fingerprint: "fp",
        fold_hash: "fh",
        folds: 1,
        keep_trials: false,
    };
    let configs: Vec<NewConfig> = config_ids
        .iter()
        .map(|id| NewConfig {
            id,
            params_json: "{}",
            varying_json: "{}",
            label: "",
            data_fingerprint: "fp",
        })
        .collect();
    let jobs: Vec<(String, usize)> = config_ids.iter().map(|id| (id.to_string(), 0)).collect();
    let (sweep_id, _) = store.register_sweep(&sweep, &configs, &jobs).unwrap();
    (store, sweep_id)
}

#[test]
fn a_shards_diverged_job_merges_as_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let (mut shard, sweep_id) = one_job_sweep(&dir.path().join("shard.db"), "c1");
    let job = shard.claim_next(sweep_id, "cpu", &|_, _| true, false).unwrap().expect("a job");
    shard.record_diverged(job.id, 2, &[], "diverged").unwrap();
    drop(shard);
    let (mut target, _) = one_job_sweep(&dir.path().join("target.db"), "c1");
    let merged = target.merge_shard(&dir.path().join("shard.db")).unwrap();
    assert_eq!((merged.added, merged.present), (1, 0));
    assert_eq!(target.config_jobs_in("c1", JobStatus::Diverged).unwrap(), 1);
    let merged = target.merge_shard(&dir.path().join("shard.db")).unwrap();
    assert_eq!((merged.added, merged.present), (0, 1), "idempotent");
}

#[test]
fn merge_leaves_a_job_that_a_live_coordinator_runs_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (mut shard, sweep_id) = one_job_sweep(&dir.path().join("shard.db"), "c1");
    let job = shard.claim_next(sweep_id, "cpu", &|_, _| true, false).unwrap().expect("a job");
    shard.record_diverged(job.id, 2, &[], "diverged").unwrap();
    drop(shard);
    // This process is the target's live coordinator, running the same job.
    let (mut target, target_sweep) = one_job_sweep(&dir.path().join("target.db"), "c1");
    let running = target.claim_next(target_sweep, "cpu", &|_, _| true, false).unwrap().unwrap();
    let merged = target.merge_shard(&dir.path().join("shard.db")).unwrap();
    assert_eq!(merged, ShardMerge { added: 0, present: 0, left_to_live: 1 });
    assert_eq!(target.config_jobs_in("c1", JobStatus::Running).unwrap(), 1);
    // The coordinator's own write still finds its job.
    target.record_diverged(running.id, 3, &[], "diverged here").unwrap();
    assert_eq!(target.config_jobs_in("c1", JobStatus::Diverged).unwrap(), 1);
}

#[test]
fn registering_a_definition_without_a_config_retires_it_and_listing_it_again_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, sweep_id) = one_job_sweep(&dir.path().join("r.db"), "c1");
    let sweep = SweepDefinition {
        name: "s",
        definition: "",
        data_fingerprint: "fp",
        fold_hash: "fh",
        folds: 1,
        keep_trials: false,
    };
    store.register_sweep(&sweep, &[], &[]).unwrap();
    assert!(store.sweep_configs(sweep_id, false).unwrap().is_empty());
    assert!(store.claim_next(sweep_id, "cpu", &|_, _| true, false).unwrap().is_none(), "never run");
    assert!(store.sweep_configs(sweep_id, true).unwrap()[0].retired);
    drop(store);
    let (store, _) = one_job_sweep(&dir.path().join("r.db"), "c1");
    assert!(!store.sweep_configs(sweep_id, false).unwrap()[0].retired);
}

fn epoch(epoch: usize, probe_rmse: Option<f64>, shifted_rmse: Option<f64>) -> EpochLog {
    EpochLog {
        epoch,
        train_loss: 1.0,
        val_rmse: 2.0,
        lr: 1e-3,
        seconds: 0.1,
        probe_rmse,
        shifted_rmse,
    }
}

#[test]
fn a_running_jobs_live_epochs_keep_their_probe_and_shifted_rmse() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, sweep_id) = one_job_sweep(&dir.path().join("e.db"), "c1");
    let job = store.claim_next(sweep_id, "cpu", &|_, _| true, false).unwrap().expect("a job");
    store.record_epochs(job.id, &[epoch(1, Some(3.0), Some(2.5))]).unwrap();
    // The next write starts where the last left off; a repeated epoch replaces its row.
    store
        .record_epochs(job.id, &[epoch(1, Some(3.0), Some(2.4)), epoch(2, Some(2.8), Some(2.2))])
        .unwrap();
    let epochs = store.job_epochs(job.id).unwrap();
    assert_eq!(epochs, vec![epoch(1, Some(3.0), Some(2.4)), epoch(2, Some(2.8), Some(2.2))]);
    let running = store.running_jobs(sweep_id).unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!((running[0].epoch, running[0].shifted_rmse), (Some(2), Some(2.2)));
}

#[test]
fn running_jobs_and_mean_job_seconds_leave_out_retired_configs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, sweep_id) = one_job_sweep(&dir.path().join("r.db"), "c1");
    let job = store.claim_next(sweep_id, "cpu", &|_, _| true, false).unwrap().expect("a job");
    store.record_epochs(job.id, &[epoch(1, None, None)]).unwrap();
    assert_eq!(store.running_jobs(sweep_id).unwrap()[0].val_rmse, Some(2.0));
    let sweep = SweepDefinition {
        name: "s",
        definition: "",
        data_fingerprint: "fp",
        fold_hash: "fh",
        folds: 1,
        keep_trials: false,
    };
    store.register_sweep(&sweep, &[], &[]).unwrap();
    assert!(store.running_jobs(sweep_id).unwrap().is_empty());
    assert!(store.status_counts(sweep_id).unwrap().is_empty());
    assert_eq!(store.mean_job_seconds(sweep_id).unwrap(), None);
    // The config's own page still finds it and its sweep.
    assert_eq!(store.config_sweeps("c1").unwrap()[0].name, "s");
    assert_eq!(store.job_records("c1").unwrap()[0].status, JobStatus::Running);
}

#[test]
fn a_read_only_store_reads_a_sweep_but_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let (mut store, sweep_id) = one_job_sweep(&path, "c1");
    let job = store.claim_next(sweep_id, "cpu", &|_, _| true, false).unwrap().expect("a job");
    let mut reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.sweep_list().unwrap()[0].name, "s");
    assert_eq!(reader.status_counts(sweep_id).unwrap()[&JobStatus::Running], 1);
    assert!(reader.record_epochs(job.id, &[epoch(1, None, None)]).is_err());
    let missing = Store::open_read_only(&dir.path().join("none.db")).err().expect("refused");
    assert!(missing.to_string().contains("none.db"), "{missing}");
}

#[test]
fn a_trial_registers_once_with_its_jobs_and_reads_back_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, sweep_id) = one_job_sweep(&dir.path().join("t.db"), "grid");
    let point: crate::search::Point = vec![("lr".into(), toml::Value::Float(0.01))];
    let trial = |number| NewTrial {
        sweep_id,
        shard: "",
        number,
        point: &point,
        config: NewConfig {
            id: "trial0",
            params_json: "{}",
            varying_json: "{\"lr\":0.01}",
            label: "lr=0.01",
            data_fingerprint: "fp",
        },
        fold_hash: "fh",
        folds: 3,
    };
    assert!(store.register_trial(&trial(0)).unwrap());
    assert!(!store.register_trial(&trial(0)).unwrap(), "trial 0 exists: nothing written");
    store.retire_non_trials(sweep_id).unwrap();
    let rows = store.trial_records(sweep_id).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].number, rows[0].config_id.as_str()), (0, "trial0"));
    assert_eq!(rows[0].point, point);
    assert_eq!(rows[0].statuses, vec![(JobStatus::Pending, 3)]);
    let pending = store.jobs(sweep_id, JobStatus::Pending).unwrap();
    assert_eq!(pending.len(), 3, "the grid config retired, the trial's 3 folds pending");
    assert_eq!(store.prune_pending("trial0", "raced").unwrap(), 3);
    let rows = store.trial_records(sweep_id).unwrap();
    assert_eq!(rows[0].statuses, vec![(JobStatus::Pruned, 3)]);
    assert_eq!(store.requeue_pruned(sweep_id).unwrap(), 3);
}

#[test]
fn job_status_round_trips_through_its_stored_name() {
    for status in JobStatus::ALL {
        assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
    }
    assert!("finished".parse::<JobStatus>().is_err());
}

#[test]
fn a_configs_oof_rows_are_found_through_its_jobs_not_every_done_job() {
    // Regression (issue 20): SQLite chose the status index for "this config's done jobs" and
    // scanned every done job of the database per config (results took 73 s at 10,000 configs).
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = one_job_sweep(&dir.path().join("plan.db"), "c1");
    let plan: Vec<String> = store
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", super::queries::OOF_OF_CONFIG))
        .unwrap()
        .query_map(rusqlite::params!["c1", JobStatus::Done], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let jobs = plan.iter().find(|step| step.contains(" j ")).expect("a step over jobs");
    assert!(jobs.contains("(config_id=?)"), "jobs searched by config: {plan:?}");
    assert!(!plan.iter().any(|step| step.contains("jobs_by_status")), "{plan:?}");
}
