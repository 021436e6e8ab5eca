//! The schema of the results database, its migrations from older files, and the connection
//! settings every opener applies (busy timeout, WAL).

use std::time::Duration;

use anyhow::{bail, Context};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

pub const SCHEMA_VERSION: i64 = 2;

/// The current schema (version 2), for a new file. docs/schema.md documents it; an older file
/// is brought up to it by [`migrate`].
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,          -- the sweep file's text, as last run
    data_fingerprint TEXT NOT NULL,    -- hash of the sorted fingerprints of its configs
    fold_hash TEXT NOT NULL,           -- hash of the fold assignment
    folds INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS configs (
    id TEXT PRIMARY KEY,               -- hash of config + data fingerprint + fold hash
    params TEXT NOT NULL,              -- the full resolved config, JSON
    fold_hash TEXT NOT NULL,
    data_fingerprint TEXT NOT NULL,    -- content hash of everything this config reads
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_configs (
    sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
    config_id TEXT NOT NULL REFERENCES configs(id),
    varying TEXT NOT NULL,             -- the grid values of this config in this sweep, JSON
    label TEXT NOT NULL,               -- the same, as `key=value ...`
    position INTEGER NOT NULL,         -- order in the grid
    retired_at REAL,                   -- set when the sweep's definition no longer has it
    PRIMARY KEY (sweep_id, config_id)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs(id),
    fold INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted', 'diverged', 'pruned')),
    attempt INTEGER NOT NULL DEFAULT 0,
    device TEXT, host TEXT,
    pid INTEGER,                       -- the coordinator that owns the job while it runs
    owner_start INTEGER,               -- that coordinator's start time (/proc/<pid>/stat field 22)
    worker_pid INTEGER,                -- the child process training it
    heartbeat REAL, started_at REAL, finished_at REAL,
    error TEXT,
    diverged_epoch INTEGER,            -- the epoch whose loss or RMSE was not finite
    pruned_epoch INTEGER,              -- a pruned job: the epochs it ran (0: never started)
    pruned_reason TEXT,                -- and why a pruner stopped it
    UNIQUE (config_id, fold)
);
CREATE TABLE IF NOT EXISTS fold_results (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
    best_epoch INTEGER NOT NULL, epochs_run INTEGER NOT NULL,
    rmse REAL NOT NULL, rounded_rmse REAL NOT NULL, macro_rmse REAL NOT NULL,
    mean_predictor_rmse REAL NOT NULL,
    train_rows INTEGER NOT NULL, synthetic_rows INTEGER NOT NULL, val_rows INTEGER NOT NULL,
    train_seconds REAL NOT NULL,
    checkpoint TEXT,                   -- relative to the database's folder; NULL when not kept
    probe_rmse REAL,                   -- with [validation] probe: the probe rows' RMSE
    shifted_rmse REAL,                 -- sqrt((1 - F) MSE(real rows) + F MSE(probe rows))
    mean_predictor_shifted_rmse REAL,  -- the train-mean predictor's shifted RMSE
    test_fingerprint TEXT              -- with data.test: hash of the test files predicted
);
CREATE TABLE IF NOT EXISTS bin_results (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    score INTEGER NOT NULL, count INTEGER NOT NULL, rmse REAL,
    PRIMARY KEY (job_id, score)
);
CREATE TABLE IF NOT EXISTS epochs (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    epoch INTEGER NOT NULL, train_loss REAL NOT NULL, val_rmse REAL NOT NULL, lr REAL NOT NULL, seconds REAL NOT NULL,
    probe_rmse REAL, shifted_rmse REAL,
    PRIMARY KEY (job_id, epoch)
);
CREATE TABLE IF NOT EXISTS oof_predictions (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    record INTEGER NOT NULL, truth REAL NOT NULL, prediction REAL NOT NULL, logvar REAL,
    PRIMARY KEY (job_id, record)
);
CREATE TABLE IF NOT EXISTS probe_predictions (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    probe INTEGER NOT NULL,            -- 0-based, in the fold's probe order
    record INTEGER NOT NULL,           -- the validation record whose text it pairs
    metric_row INTEGER NOT NULL,       -- the other metric (row of the metric table)
    prediction REAL NOT NULL,
    PRIMARY KEY (job_id, probe)
);
CREATE TABLE IF NOT EXISTS test_predictions (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    row INTEGER NOT NULL,              -- 0-based, in the test file's order
    prediction REAL NOT NULL,
    PRIMARY KEY (job_id, row)
);
CREATE TABLE IF NOT EXISTS trials (
    sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
    shard TEXT NOT NULL DEFAULT '',    -- '' for a whole run, 'I/N' for `run --shard I/N`
    number INTEGER NOT NULL,           -- 0, 1, ... within (sweep, shard)
    config_id TEXT NOT NULL REFERENCES configs(id),
    point TEXT NOT NULL,               -- the sampled values, JSON [[key, value], ...] in axis order
    created_at REAL NOT NULL,
    UNIQUE (sweep_id, shard, number)
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status);
"#;

/// Version 1 -> 2: configs can leave a sweep (`sweep_configs.retired_at`), a job can end
/// `diverged` (with `diverged_epoch`) or `pruned` (with `pruned_epoch` and `pruned_reason`),
/// random and tpe searches record their trials (the `trials` table, created by [`SCHEMA`]), and a running job names its coordinator by pid and
/// start time (`owner_start`). SQLite cannot alter a CHECK constraint, so `jobs` is rebuilt
/// (the documented 12-step procedure: new table, copy, drop, rename). Runs inside the caller's
/// transaction, with foreign keys off. Later versions add a `migrate_v2_to_v3` beside it.
pub(super) fn migrate_v1_to_v2(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        r#"
ALTER TABLE sweep_configs ADD COLUMN retired_at REAL;
ALTER TABLE fold_results ADD COLUMN probe_rmse REAL;
ALTER TABLE fold_results ADD COLUMN shifted_rmse REAL;
ALTER TABLE fold_results ADD COLUMN mean_predictor_shifted_rmse REAL;
ALTER TABLE fold_results ADD COLUMN test_fingerprint TEXT;
ALTER TABLE epochs ADD COLUMN probe_rmse REAL;
ALTER TABLE epochs ADD COLUMN shifted_rmse REAL;
CREATE TABLE IF NOT EXISTS probe_predictions (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    probe INTEGER NOT NULL,            -- 0-based, in the fold's probe order
    record INTEGER NOT NULL,           -- the validation record whose text it pairs
    metric_row INTEGER NOT NULL,       -- the other metric (row of the metric table)
    prediction REAL NOT NULL,
    PRIMARY KEY (job_id, probe)
);
CREATE TABLE IF NOT EXISTS test_predictions (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    row INTEGER NOT NULL,              -- 0-based, in the test file's order
    prediction REAL NOT NULL,
    PRIMARY KEY (job_id, row)
);
CREATE TABLE jobs_v2 (
    id INTEGER PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs(id),
    fold INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted', 'diverged', 'pruned')),
    attempt INTEGER NOT NULL DEFAULT 0,
    device TEXT, host TEXT,
    pid INTEGER,
    owner_start INTEGER,
    worker_pid INTEGER,
    heartbeat REAL, started_at REAL, finished_at REAL,
    error TEXT,
    diverged_epoch INTEGER,
    pruned_epoch INTEGER,
    pruned_reason TEXT,
    UNIQUE (config_id, fold)
);
INSERT INTO jobs_v2 (id, config_id, fold, status, attempt, device, host, pid, worker_pid, heartbeat, started_at, finished_at, error)
    SELECT id, config_id, fold, status, attempt, device, host, pid, worker_pid, heartbeat, started_at, finished_at, error FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v2 RENAME TO jobs;
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status);
"#,
    )
}

/// Brings a file of schema `from` up to [`SCHEMA_VERSION`], one step at a time, in one
/// transaction: a failure leaves the file as it was.
pub(super) fn migrate(conn: &mut Connection, from: i64) -> anyhow::Result<()> {
    // Rebuilding a table that others reference needs foreign keys off (outside a transaction).
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = (|| -> anyhow::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated the file since we looked.
        if schema_version(&tx)? != Some(from) {
            return Ok(());
        }
        if from < 2 {
            migrate_v1_to_v2(&tx)?;
        }
        let violations: i64 =
            tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
        if violations > 0 {
            bail!("migrating to schema version {SCHEMA_VERSION}: {violations} dangling references");
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [SCHEMA_VERSION.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}

/// How long a writer waits for another process's write lock.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// WAL mode, so readers never block the writer. Switching a new file needs it alone for a
/// moment, and SQLite answers a second process doing the same "database is locked" at once,
/// without its busy handler; so wait here as the busy timeout would.
pub(super) fn enable_wal(conn: &Connection) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result.context("switching the database to WAL mode"),
        }
    }
}

pub(super) fn schema_version(conn: &Connection) -> anyhow::Result<Option<i64>> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    let text: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .optional()?;
    text.map(|v| v.parse::<i64>().with_context(|| format!("unreadable schema version {v:?}")))
        .transpose()
}
