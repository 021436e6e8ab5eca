//! The results database (SQLite): sweeps, configs, jobs and everything a job reports.
//!
//! The store owns the SQL: the rest of foldsweep reads and writes through its typed methods.
//! Sweep coordinators write it (one or several on one machine: every write transaction is
//! BEGIN IMMEDIATE, so they queue on the lock instead of failing with "database is locked").
//! WAL mode lets `results` read while a sweep runs; every job's results go in with one
//! transaction, so a crash never leaves half a job. The schema is documented in
//! docs/schema.md; `meta.schema_version` says which one a file has, and an older file is
//! migrated in place when it is opened.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::util::process::{hostname, now};
use crate::util::process::{owner_running, process_start_time};
use anyhow::{bail, Context};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior};
use serde::Serialize;

mod merge;
mod trials;

pub use trials::NewTrial;

use crate::job::{FoldResult, ProbeResult, TestPredictions};
use crate::train::EpochLog;

pub const SCHEMA_VERSION: i64 = 2;

/// The current schema (version 2), for a new file. docs/schema.md documents it; an older file
/// is brought up to it by [`migrate`].
const SCHEMA: &str = r#"
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
fn migrate_v1_to_v2(tx: &Transaction) -> rusqlite::Result<()> {
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
fn migrate(conn: &mut Connection, from: i64) -> anyhow::Result<()> {
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
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// WAL mode, so readers never block the writer. Switching a new file needs it alone for a
/// moment, and SQLite answers a second process doing the same "database is locked" at once,
/// without its busy handler; so wait here as the busy timeout would.
fn enable_wal(conn: &Connection) -> anyhow::Result<()> {
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

fn schema_version(conn: &Connection) -> anyhow::Result<Option<i64>> {
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

/// Where a job stands. Stored as its lower-case name (the `jobs.status` CHECK lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Done,
    Failed,
    Interrupted,
    /// Training produced a non-finite loss or validation RMSE: a result, not an error.
    Diverged,
    /// Stopped early by a pruner (ASHA over epochs, racing over folds): a result, not an
    /// error; never retried, and rerun only by `run --no-prune`.
    Pruned,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
        JobStatus::Interrupted,
        JobStatus::Diverged,
        JobStatus::Pruned,
    ];

    /// Done, diverged or pruned: the job has its outcome and is never run again.
    pub fn is_result(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Diverged | JobStatus::Pruned)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Interrupted => "interrupted",
            JobStatus::Diverged => "diverged",
            JobStatus::Pruned => "pruned",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        JobStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown job status {text:?}"))
    }
}

impl ToSql for JobStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for JobStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str()?.parse().map_err(|e: String| FromSqlError::Other(e.into()))
    }
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// A job as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub config_id: String,
    pub fold: usize,
    pub status: JobStatus,
    pub attempt: u32,
}

/// What a new config row needs.
pub struct NewConfig<'a> {
    pub id: &'a str,
    pub params_json: &'a str,
    pub varying_json: &'a str,
    pub label: &'a str,
    /// Content hash of everything this config reads.
    pub data_fingerprint: &'a str,
}

/// What identifies a sweep's definition.
pub struct SweepDefinition<'a> {
    pub name: &'a str,
    pub definition: &'a str,
    pub data_fingerprint: &'a str,
    pub fold_hash: &'a str,
    pub folds: usize,
    /// A random or tpe search: its configs are its trials', which stay current.
    pub keep_trials: bool,
}

/// A config as a sweep lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepConfigRow {
    pub config_id: String,
    pub label: String,
    pub varying_json: String,
    pub position: usize,
    pub fold_hash: String,
    /// No longer in the sweep's current definition (its results stay).
    pub retired: bool,
}

/// One finished fold's headline numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldMetrics {
    pub fold: usize,
    pub rmse: f64,
    pub macro_rmse: f64,
    /// With probes: the fold's probe and shifted RMSE.
    pub probe_rmse: Option<f64>,
    pub shifted_rmse: Option<f64>,
    /// With data.test: the fingerprint of the test files the fold predicted.
    pub test_fingerprint: Option<String>,
    pub val_rows: usize,
    pub train_rows: usize,
    pub checkpoint: Option<String>,
}

/// A validation row's out-of-fold prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OofRow {
    pub fold: usize,
    pub record: usize,
    pub truth: f64,
    pub prediction: f64,
}

/// A probe row's prediction (a validation record's text with another metric).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeRow {
    pub fold: usize,
    pub probe: usize,
    pub record: usize,
    pub metric_row: usize,
    pub prediction: f64,
}

/// A sweep as the sweeps list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepListing {
    pub id: i64,
    pub name: String,
    pub folds: usize,
    pub updated_at: f64,
}

/// A running job of a sweep with the latest epoch its coordinator has written, if any
/// (`epoch`, `val_rmse`, `shifted_rmse`: empty in the job's first second).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningJob {
    #[serde(rename = "config")]
    pub config_id: String,
    pub label: String,
    pub fold: usize,
    pub attempt: u32,
    pub device: Option<String>,
    pub host: Option<String>,
    pub started_at: Option<f64>,
    pub heartbeat: Option<f64>,
    pub epoch: Option<usize>,
    pub val_rmse: Option<f64>,
    pub shifted_rmse: Option<f64>,
}

/// A sweep that lists a config, with the config's label there.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSweep {
    pub sweep_id: i64,
    pub name: String,
    pub label: String,
}

/// What a finished fold reported (its `fold_results` row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldOutcome {
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub rmse: f64,
    pub rounded_rmse: f64,
    pub macro_rmse: f64,
    pub mean_predictor_rmse: f64,
    pub val_rows: usize,
    pub train_seconds: f64,
    pub probe_rmse: Option<f64>,
    pub shifted_rmse: Option<f64>,
}

/// One job of a config with its times, error and result (`show`, `serve`'s config page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    #[serde(skip)]
    pub id: i64,
    pub fold: usize,
    pub status: JobStatus,
    pub attempt: u32,
    pub device: Option<String>,
    pub host: Option<String>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub error: Option<String>,
    pub diverged_epoch: Option<usize>,
    pub outcome: Option<FoldOutcome>,
}

/// Which jobs a coordinator may claim: all of the sweep's, or a shard's slice.
pub type JobFilter<'a> = &'a dyn Fn(&str, usize) -> bool;

/// This process as a job owner: its pid and start time (clock ticks since boot), which
/// together name it even after the pid is reused.
fn own_identity() -> (u32, Option<i64>) {
    let pid = std::process::id();
    (pid, process_start_time(pid as i64))
}

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("opening results database {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        enable_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        match schema_version(&conn)? {
            Some(v) if v > SCHEMA_VERSION => bail!(
                "{} has schema version {v}, newer than this foldsweep reads ({SCHEMA_VERSION}); \
                 use a newer foldsweep",
                path.display()
            ),
            Some(v) if v < 1 => bail!("{} has an unknown schema version {v}", path.display()),
            Some(v) if v < SCHEMA_VERSION => migrate(&mut conn, v).with_context(|| {
                format!("migrating {} to schema {SCHEMA_VERSION}", path.display())
            })?,
            _ => {}
        }
        // One IMMEDIATE transaction: each `CREATE TABLE IF NOT EXISTS` alone reads the schema,
        // then writes, and a write by another process in between fails that upgrade at once
        // with "database is locked" (SQLite skips the busy handler there). Taking the write
        // lock first makes two coordinators opening a new file wait for each other instead.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            [SCHEMA_VERSION.to_string()],
        )?;
        tx.commit()?;
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// Opens an existing database read-mostly (for queries); a missing file is an input error.
    pub fn open_existing(path: &Path) -> anyhow::Result<Store> {
        if !path.exists() {
            return Err(crate::error::InputError::in_file(
                path,
                "no such results database (run a sweep first)",
            )
            .into());
        }
        Store::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// For `merge`, which attaches another database file.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The folder relative checkpoint paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// A write transaction that takes the write lock at once. A deferred one that reads and
    /// then writes gets SQLITE_BUSY without waiting when another writer got there first.
    fn write(&mut self) -> rusqlite::Result<Transaction<'_>> {
        self.conn.transaction_with_behavior(TransactionBehavior::Immediate)
    }

    /// Registers a sweep (or updates its definition), its configs and the given (config, fold)
    /// jobs, idempotently: jobs already known are left as they are, only new ones are added.
    /// The definition decides the configs: those of an earlier definition that `configs` lacks
    /// are retired (their results stay, they are never run or ranked), and a retired config
    /// that is listed again comes back. Returns the sweep id and how many jobs were added.
    pub fn register_sweep(
        &mut self,
        sweep: &SweepDefinition,
        configs: &[NewConfig],
        jobs: &[(String, usize)],
    ) -> anyhow::Result<(i64, usize)> {
        let tx = self.write()?;
        let t = now();
        tx.execute(
            "INSERT INTO sweeps (name, definition, data_fingerprint, fold_hash, folds, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT(name) DO UPDATE SET definition = ?2, data_fingerprint = ?3, fold_hash = ?4, folds = ?5, updated_at = ?6",
            params![sweep.name, sweep.definition, sweep.data_fingerprint, sweep.fold_hash, sweep.folds as i64, t],
        )?;
        let sweep_id: i64 =
            tx.query_row("SELECT id FROM sweeps WHERE name = ?1", [sweep.name], |r| r.get(0))?;
        // Retire everything, then bring back what the definition lists.
        tx.execute(
            "UPDATE sweep_configs SET retired_at = ?2 WHERE sweep_id = ?1 AND retired_at IS NULL
             AND NOT (?3 AND config_id IN (SELECT config_id FROM trials WHERE sweep_id = ?1))",
            params![sweep_id, t, sweep.keep_trials],
        )?;
        for (position, c) in configs.iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO configs (id, params, fold_hash, data_fingerprint, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.id, c.params_json, sweep.fold_hash, c.data_fingerprint, t],
            )?;
            tx.execute(
                "INSERT INTO sweep_configs (sweep_id, config_id, varying, label, position, retired_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL)
                 ON CONFLICT(sweep_id, config_id) DO UPDATE SET varying = ?3, label = ?4, position = ?5, retired_at = NULL",
                params![sweep_id, c.id, c.varying_json, c.label, position as i64],
            )?;
        }
        let mut added = 0;
        for (config_id, fold) in jobs {
            added += tx.execute(
                "INSERT OR IGNORE INTO jobs (config_id, fold, status) VALUES (?1, ?2, ?3)",
                params![config_id, *fold as i64, JobStatus::Pending],
            )?;
        }
        tx.commit()?;
        Ok((sweep_id, added))
    }

    /// Makes failed and interrupted jobs of a sweep's current configs runnable again (a rerun
    /// retries them), and requeues jobs left `running` by a coordinator that no longer exists.
    pub fn requeue_for_rerun(&mut self, sweep_id: i64) -> anyhow::Result<usize> {
        let tx = self.write()?;
        let mut requeued = requeue_stale(&tx, sweep_id)?;
        requeued += tx.execute(
            "UPDATE jobs SET status = ?2, attempt = 0 WHERE status IN (?3, ?4)
             AND config_id IN (SELECT config_id FROM sweep_configs WHERE sweep_id = ?1 AND retired_at IS NULL)",
            params![sweep_id, JobStatus::Pending, JobStatus::Failed, JobStatus::Interrupted],
        )?;
        tx.commit()?;
        Ok(requeued)
    }

    /// Jobs of a sweep's current configs in a given status, in grid order then fold order.
    pub fn jobs(&self, sweep_id: i64, status: JobStatus) -> anyhow::Result<Vec<JobRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.id, j.config_id, j.fold, j.status, j.attempt FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2 ORDER BY s.position, j.fold",
        )?;
        let rows = stmt.query_map(params![sweep_id, status], job_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Claims the first pending job of the sweep (in grid order) that `filter` admits for this
    /// coordinator, or None when none is left. One write transaction requeues jobs whose owner
    /// is gone and claims, so two coordinators never take the same job and never both decide
    /// that a dead owner's job is theirs.
    /// `fold_major` (racing): every config's fold 0 before any fold 1, and so on.
    pub fn claim_next(
        &mut self,
        sweep_id: i64,
        device: &str,
        filter: JobFilter,
        fold_major: bool,
    ) -> anyhow::Result<Option<JobRow>> {
        let (pid, start) = own_identity();
        let tx = self.write()?;
        requeue_stale(&tx, sweep_id)?;
        let order = if fold_major { "j.fold, s.position" } else { "s.position, j.fold" };
        let pending: Vec<JobRow> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT j.id, j.config_id, j.fold, j.status, j.attempt FROM jobs j
                 JOIN sweep_configs s ON s.config_id = j.config_id
                 WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2 ORDER BY {order}",
            ))?;
            let rows = stmt.query_map(params![sweep_id, JobStatus::Pending], job_row)?;
            rows.collect::<Result<_, _>>()?
        };
        let Some(mut job) = pending.into_iter().find(|j| filter(&j.config_id, j.fold)) else {
            return Ok(None);
        };
        let t = now();
        tx.execute(
            "UPDATE jobs SET status = ?2, attempt = attempt + 1, device = ?3, host = ?4, pid = ?5, owner_start = ?6,
             worker_pid = NULL, heartbeat = ?7, started_at = ?7, finished_at = NULL, error = NULL, diverged_epoch = NULL
             WHERE id = ?1",
            params![job.id, JobStatus::Running, device, hostname(), pid, start, t],
        )?;
        tx.commit()?;
        job.status = JobStatus::Running;
        job.attempt += 1;
        Ok(Some(job))
    }

    /// How many jobs of the sweep's current configs that `filter` admits are in `status`.
    pub fn count_jobs(
        &self,
        sweep_id: i64,
        status: JobStatus,
        filter: JobFilter,
    ) -> anyhow::Result<usize> {
        Ok(self.jobs(sweep_id, status)?.iter().filter(|j| filter(&j.config_id, j.fold)).count())
    }

    pub fn config_params(&self, config_id: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT params FROM configs WHERE id = ?1", [config_id], |r| r.get(0))
            .optional()?)
    }

    pub fn set_worker_pid(&self, job_id: i64, worker_pid: u32) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE jobs SET worker_pid = ?2 WHERE id = ?1",
            params![job_id, worker_pid],
        )?;
        Ok(())
    }

    pub fn heartbeat(&self, job_id: i64) -> anyhow::Result<()> {
        self.conn
            .execute("UPDATE jobs SET heartbeat = ?2 WHERE id = ?1", params![job_id, now()])?;
        Ok(())
    }

    /// Records a finished job and all it reported, in one transaction.
    pub fn record_success(
        &mut self,
        job_id: i64,
        result: &FoldResult,
        checkpoint: Option<&str>,
    ) -> anyhow::Result<()> {
        let tx = self.write()?;
        clear_results(&tx, job_id)?;
        insert_result(&tx, job_id, result, checkpoint)?;
        insert_epochs(&tx, job_id, &result.epochs)?;
        tx.execute(
            "UPDATE jobs SET status = ?3, finished_at = ?2, heartbeat = ?2, error = NULL WHERE id = ?1",
            params![job_id, now(), JobStatus::Done],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A job whose training diverged: a result (never retried), with the epoch where it
    /// happened and the learning curve up to there.
    pub fn record_diverged(
        &mut self,
        job_id: i64,
        epoch: usize,
        epochs: &[EpochLog],
        reason: &str,
    ) -> anyhow::Result<()> {
        let tx = self.write()?;
        clear_results(&tx, job_id)?;
        insert_epochs(&tx, job_id, epochs)?;
        tx.execute(
            "UPDATE jobs SET status = ?2, diverged_epoch = ?3, error = ?4, finished_at = ?5, pid = NULL, worker_pid = NULL
             WHERE id = ?1",
            params![job_id, JobStatus::Diverged, epoch as i64, reason, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A job a pruner stopped after `epochs.len()` epochs: a result (never retried), with its
    /// learning curve, where it stopped and why. It has no fold_results row, so no view
    /// counts it as a finished fold.
    pub fn record_pruned(
        &mut self,
        job_id: i64,
        epochs: &[EpochLog],
        reason: &str,
    ) -> anyhow::Result<()> {
        let tx = self.write()?;
        clear_results(&tx, job_id)?;
        insert_epochs(&tx, job_id, epochs)?;
        tx.execute(
            "UPDATE jobs SET status = ?2, pruned_epoch = ?3, pruned_reason = ?4, finished_at = ?5, pid = NULL, worker_pid = NULL
             WHERE id = ?1",
            params![job_id, JobStatus::Pruned, epochs.len() as i64, reason, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Racing pruned a config: its pending jobs become `pruned` (epoch 0) and never run.
    /// Returns how many.
    pub fn prune_pending(&mut self, config_id: &str, reason: &str) -> anyhow::Result<usize> {
        let tx = self.write()?;
        let n = tx.execute(
            "UPDATE jobs SET status = ?2, pruned_epoch = 0, pruned_reason = ?3, finished_at = ?4
             WHERE config_id = ?1 AND status IN (?5, ?6)",
            params![
                config_id,
                JobStatus::Pruned,
                reason,
                now(),
                JobStatus::Pending,
                JobStatus::Interrupted
            ],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// `run --no-prune`: the sweep's pruned jobs run again, to the end.
    pub fn requeue_pruned(&mut self, sweep_id: i64) -> anyhow::Result<usize> {
        let tx = self.write()?;
        let n = tx.execute(
            "UPDATE jobs SET status = ?2, attempt = 0, pruned_epoch = NULL, pruned_reason = NULL WHERE status = ?3
             AND config_id IN (SELECT config_id FROM sweep_configs WHERE sweep_id = ?1 AND retired_at IS NULL)",
            params![sweep_id, JobStatus::Pending, JobStatus::Pruned],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// (value at `epoch`) of every other job of this sweep's fold `fold` that recorded it.
    pub fn rung_values(
        &self,
        sweep_id: i64,
        fold: usize,
        epoch: usize,
        except_job: i64,
        monitor: crate::probe::Monitor,
    ) -> anyhow::Result<Vec<f64>> {
        // The monitored figure (`EpochLog::monitored`): shifted RMSE where the job recorded one.
        let column = match monitor {
            crate::probe::Monitor::Shifted => "COALESCE(e.shifted_rmse, e.val_rmse)",
            crate::probe::Monitor::Rmse => "e.val_rmse",
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {column} FROM epochs e JOIN jobs j ON j.id = e.job_id
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.fold = ?2 AND e.epoch = ?3 AND j.id != ?4"
        ))?;
        let rows =
            stmt.query_map(params![sweep_id, fold as i64, epoch as i64, except_job], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A failed attempt: back to pending while attempts remain, else failed for good.
    pub fn record_failure(&self, job_id: i64, error: &str, retry: bool) -> anyhow::Result<()> {
        let status = if retry { JobStatus::Pending } else { JobStatus::Failed };
        self.conn.execute(
            "UPDATE jobs SET status = ?2, error = ?3, finished_at = ?4, pid = NULL, worker_pid = NULL WHERE id = ?1",
            params![job_id, status, error, now()],
        )?;
        Ok(())
    }

    pub fn mark_interrupted(&self, job_id: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE jobs SET status = ?2, error = 'interrupted by Ctrl-C', finished_at = ?3, pid = NULL WHERE id = ?1",
            params![job_id, JobStatus::Interrupted, now()],
        )?;
        Ok(())
    }

    pub fn sweep_id(&self, name: &str) -> anyhow::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT id FROM sweeps WHERE name = ?1", [name], |r| r.get(0))
            .optional()?)
    }

    /// The named sweep, or the most recently updated one.
    pub fn resolve_sweep(&self, name: Option<&str>) -> anyhow::Result<(i64, String)> {
        let row = match name {
            Some(name) => self
                .conn
                .query_row("SELECT id, name FROM sweeps WHERE name = ?1", [name], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?,
            None => self
                .conn
                .query_row(
                    "SELECT id, name FROM sweeps ORDER BY updated_at DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?,
        };
        row.ok_or_else(|| {
            let what = name.map_or("no sweep".to_string(), |n| format!("no sweep named {n:?}"));
            crate::error::InputError::in_file(&self.path, format!("{what} in this database")).into()
        })
    }

    /// A sweep's name and fold count.
    pub fn sweep_head(&self, sweep_id: i64) -> anyhow::Result<(String, usize)> {
        let (name, folds): (String, i64) = self
            .conn
            .query_row("SELECT name, folds FROM sweeps WHERE id = ?1", [sweep_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .with_context(|| format!("no sweep with id {sweep_id} in {}", self.path.display()))?;
        Ok((name, folds as usize))
    }

    /// The sweep's configs in grid order; retired ones only when asked.
    pub fn sweep_configs(
        &self,
        sweep_id: i64,
        include_retired: bool,
    ) -> anyhow::Result<Vec<SweepConfigRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.config_id, s.label, s.varying, s.position, c.fold_hash, s.retired_at IS NOT NULL
             FROM sweep_configs s JOIN configs c ON c.id = s.config_id
             WHERE s.sweep_id = ?1 AND (?2 OR s.retired_at IS NULL) ORDER BY s.retired_at IS NOT NULL, s.position",
        )?;
        let rows = stmt.query_map(params![sweep_id, include_retired], |r| {
            Ok(SweepConfigRow {
                config_id: r.get(0)?,
                label: r.get(1)?,
                varying_json: r.get(2)?,
                position: r.get::<_, i64>(3)? as usize,
                fold_hash: r.get(4)?,
                retired: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Job counts per status of the sweep's current configs.
    pub fn status_counts(
        &self,
        sweep_id: i64,
    ) -> anyhow::Result<std::collections::BTreeMap<JobStatus, usize>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.status, COUNT(*) FROM jobs j JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL GROUP BY j.status",
        )?;
        let rows = stmt.query_map([sweep_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many jobs of a config are in `status`.
    pub fn config_jobs_in(&self, config_id: &str, status: JobStatus) -> anyhow::Result<usize> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM jobs WHERE config_id = ?1 AND status = ?2",
            params![config_id, status],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    /// The finished folds of a config, in fold order.
    pub fn fold_metrics(&self, config_id: &str) -> anyhow::Result<Vec<FoldMetrics>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, r.rmse, r.macro_rmse, r.val_rows, r.train_rows, r.checkpoint,
                    r.probe_rmse, r.shifted_rmse, r.test_fingerprint
             FROM jobs j JOIN fold_results r ON r.job_id = j.id
             WHERE j.config_id = ?1 AND j.status = ?2 ORDER BY j.fold",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok(FoldMetrics {
                fold: r.get::<_, i64>(0)? as usize,
                rmse: r.get(1)?,
                macro_rmse: r.get(2)?,
                val_rows: r.get::<_, i64>(3)? as usize,
                train_rows: r.get::<_, i64>(4)? as usize,
                checkpoint: r.get(5)?,
                probe_rmse: r.get(6)?,
                shifted_rmse: r.get(7)?,
                test_fingerprint: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (truth, prediction) of every finished fold's validation rows of a config.
    pub fn oof_predictions(&self, config_id: &str) -> anyhow::Result<Vec<(f64, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT o.truth, o.prediction FROM oof_predictions o JOIN jobs j ON j.id = o.job_id
             WHERE j.config_id = ?1 AND j.status = ?2",
        )?;
        let rows =
            stmt.query_map(params![config_id, JobStatus::Done], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every finished fold's validation rows of a config, in record order.
    pub fn oof_rows(&self, config_id: &str) -> anyhow::Result<Vec<OofRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, o.record, o.truth, o.prediction FROM oof_predictions o
             JOIN jobs j ON j.id = o.job_id WHERE j.config_id = ?1 AND j.status = ?2
             ORDER BY o.record",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok(OofRow {
                fold: r.get::<_, i64>(0)? as usize,
                record: r.get::<_, i64>(1)? as usize,
                truth: r.get(2)?,
                prediction: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every finished fold's probe rows of a config, in fold then probe order (the same rows
    /// for every config of a sweep).
    pub fn probe_rows(&self, config_id: &str) -> anyhow::Result<Vec<ProbeRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, p.probe, p.record, p.metric_row, p.prediction FROM probe_predictions p
             JOIN jobs j ON j.id = p.job_id WHERE j.config_id = ?1 AND j.status = ?2
             ORDER BY j.fold, p.probe",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok(ProbeRow {
                fold: r.get::<_, i64>(0)? as usize,
                probe: r.get::<_, i64>(1)? as usize,
                record: r.get::<_, i64>(2)? as usize,
                metric_row: r.get::<_, i64>(3)? as usize,
                prediction: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Each finished fold's test predictions of a config: (fold, predictions in test order).
    pub fn test_predictions(&self, config_id: &str) -> anyhow::Result<Vec<(usize, Vec<f64>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, t.prediction FROM test_predictions t JOIN jobs j ON j.id = t.job_id
             WHERE j.config_id = ?1 AND j.status = ?2 ORDER BY j.fold, t.row",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok((r.get::<_, i64>(0)? as usize, r.get::<_, f64>(1)?))
        })?;
        let mut folds: Vec<(usize, Vec<f64>)> = Vec::new();
        for row in rows {
            let (fold, prediction) = row?;
            match folds.last_mut() {
                Some((last, predictions)) if *last == fold => predictions.push(prediction),
                _ => folds.push((fold, vec![prediction])),
            }
        }
        Ok(folds)
    }

    /// (fold, epoch, validation RMSE) of a config's finished folds, in fold then epoch order.
    pub fn learning_curves(&self, config_id: &str) -> anyhow::Result<Vec<(usize, usize, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.fold, e.epoch, e.val_rmse FROM epochs e JOIN jobs j ON j.id = e.job_id
             WHERE j.config_id = ?1 AND j.status = ?2 ORDER BY j.fold, e.epoch",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok((r.get::<_, i64>(0)? as usize, r.get::<_, i64>(1)? as usize, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Validation RMSE per epoch of one job.
    pub fn job_curve(&self, job_id: i64) -> anyhow::Result<Vec<f64>> {
        let mut stmt =
            self.conn.prepare("SELECT val_rmse FROM epochs WHERE job_id = ?1 ORDER BY epoch")?;
        let rows = stmt.query_map([job_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (score, count, mean squared error, mean prediction) of a config's pooled out-of-fold
    /// predictions per rounded true score.
    pub fn oof_by_score(&self, config_id: &str) -> anyhow::Result<Vec<(i64, i64, f64, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT CAST(ROUND(o.truth) AS INTEGER) AS s, COUNT(*), AVG((o.prediction - o.truth) * (o.prediction - o.truth)), AVG(o.prediction)
             FROM oof_predictions o JOIN jobs j ON j.id = o.job_id WHERE j.config_id = ?1 AND j.status = ?2 GROUP BY s ORDER BY s",
        )?;
        let rows = stmt.query_map(params![config_id, JobStatus::Done], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A config's label in (one of) the sweeps that list it.
    pub fn config_label(&self, config_id: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT label FROM sweep_configs WHERE config_id = ?1 ORDER BY retired_at IS NOT NULL LIMIT 1",
                [config_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The sweep file's text as last run.
    pub fn sweep_definition(&self, sweep_id: i64) -> anyhow::Result<String> {
        Ok(self
            .conn
            .query_row("SELECT definition FROM sweeps WHERE id = ?1", [sweep_id], |r| r.get(0))?)
    }

    /// A sweep that lists the config (a current one first).
    pub fn sweep_of_config(&self, config_id: &str) -> anyhow::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sweep_id FROM sweep_configs WHERE config_id = ?1 ORDER BY retired_at IS NOT NULL LIMIT 1",
                [config_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Opens an existing database for reading only (`foldsweep serve`): no schema or pragma
    /// writes, so it never takes the write lock a running sweep needs. WAL readers do not block
    /// the writer; the short busy timeout only covers the moment a checkpoint holds the WAL
    /// index, so a reader gives up quickly rather than queue behind the sweep.
    pub fn open_read_only(path: &Path) -> anyhow::Result<Store> {
        use rusqlite::OpenFlags;
        if !path.exists() {
            return Err(crate::error::InputError::in_file(
                path,
                "no such results database (run a sweep first)",
            )
            .into());
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .with_context(|| format!("opening results database {} read-only", path.display()))?;
        conn.busy_timeout(Duration::from_secs(2))?;
        let version = schema_version(&conn)
            .with_context(|| format!("{} is not a foldsweep results database", path.display()))?;
        if version != Some(SCHEMA_VERSION) {
            bail!(
                "{} has schema version {}; this foldsweep reads version {SCHEMA_VERSION} \
                 (open it once with another command to migrate it)",
                path.display(),
                version.map_or("none".to_string(), |v| v.to_string())
            );
        }
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// A running job's epochs as they come, so `serve` can show them live. Rows from an
    /// earlier attempt at or after the first epoch given are replaced; `record_success`
    /// rewrites them all when the job finishes.
    pub fn record_epochs(&mut self, job_id: i64, epochs: &[EpochLog]) -> anyhow::Result<()> {
        let Some(first) = epochs.first() else {
            return Ok(());
        };
        let tx = self.write()?;
        tx.execute(
            "DELETE FROM epochs WHERE job_id = ?1 AND epoch >= ?2",
            params![job_id, first.epoch as i64],
        )?;
        insert_epochs(&tx, job_id, epochs)?;
        tx.commit()?;
        Ok(())
    }

    /// Every sweep, most recently updated first.
    pub fn sweep_list(&self) -> anyhow::Result<Vec<SweepListing>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, folds, updated_at FROM sweeps ORDER BY updated_at DESC")?;
        let rows = stmt.query_map([], |r| {
            Ok(SweepListing {
                id: r.get(0)?,
                name: r.get(1)?,
                folds: r.get::<_, i64>(2)? as usize,
                updated_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The running jobs of a sweep's current configs, oldest first, each with the latest
    /// epoch the coordinator has written (about once a second).
    pub fn running_jobs(&self, sweep_id: i64) -> anyhow::Result<Vec<RunningJob>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.config_id, s.label, j.fold, j.attempt, j.device, j.host, j.started_at, j.heartbeat,
                    e.epoch, e.val_rmse, e.shifted_rmse
             FROM jobs j JOIN sweep_configs s ON s.config_id = j.config_id
             LEFT JOIN epochs e ON e.job_id = j.id
                  AND e.epoch = (SELECT MAX(epoch) FROM epochs WHERE job_id = j.id)
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2
             ORDER BY j.started_at, s.position, j.fold",
        )?;
        let rows = stmt.query_map(params![sweep_id, JobStatus::Running], |r| {
            Ok(RunningJob {
                config_id: r.get(0)?,
                label: r.get(1)?,
                fold: r.get::<_, i64>(2)? as usize,
                attempt: r.get(3)?,
                device: r.get(4)?,
                host: r.get(5)?,
                started_at: r.get(6)?,
                heartbeat: r.get(7)?,
                epoch: r.get::<_, Option<i64>>(8)?.map(|e| e as usize),
                val_rmse: r.get(9)?,
                shifted_rmse: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Mean wall time of the finished jobs of a sweep's current configs; None before the first.
    pub fn mean_job_seconds(&self, sweep_id: i64) -> anyhow::Result<Option<f64>> {
        Ok(self.conn.query_row(
            "SELECT AVG(j.finished_at - j.started_at) FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND s.retired_at IS NULL AND j.status = ?2
                   AND j.started_at IS NOT NULL AND j.finished_at IS NOT NULL",
            params![sweep_id, JobStatus::Done],
            |r| r.get(0),
        )?)
    }

    /// The sweeps that list a config, most recently updated first.
    pub fn config_sweeps(&self, config_id: &str) -> anyhow::Result<Vec<ConfigSweep>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.sweep_id, w.name, s.label FROM sweep_configs s JOIN sweeps w ON w.id = s.sweep_id
             WHERE s.config_id = ?1 ORDER BY s.retired_at IS NOT NULL, w.updated_at DESC",
        )?;
        let rows = stmt.query_map([config_id], |r| {
            Ok(ConfigSweep { sweep_id: r.get(0)?, name: r.get(1)?, label: r.get(2)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every job of a config with its times, error and result, in fold order.
    pub fn job_records(&self, config_id: &str) -> anyhow::Result<Vec<JobRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.id, j.fold, j.status, j.attempt, j.device, j.host, j.started_at, j.finished_at,
                    j.error, j.diverged_epoch, r.best_epoch, r.epochs_run, r.rmse, r.rounded_rmse,
                    r.macro_rmse, r.mean_predictor_rmse, r.val_rows, r.train_seconds, r.probe_rmse,
                    r.shifted_rmse
             FROM jobs j LEFT JOIN fold_results r ON r.job_id = j.id
             WHERE j.config_id = ?1 ORDER BY j.fold",
        )?;
        let rows = stmt.query_map([config_id], |r| {
            let outcome = match r.get::<_, Option<i64>>(10)? {
                Some(best_epoch) => Some(FoldOutcome {
                    best_epoch: best_epoch as usize,
                    epochs_run: r.get::<_, i64>(11)? as usize,
                    rmse: r.get(12)?,
                    rounded_rmse: r.get(13)?,
                    macro_rmse: r.get(14)?,
                    mean_predictor_rmse: r.get(15)?,
                    val_rows: r.get::<_, i64>(16)? as usize,
                    train_seconds: r.get(17)?,
                    probe_rmse: r.get(18)?,
                    shifted_rmse: r.get(19)?,
                }),
                None => None,
            };
            Ok(JobRecord {
                id: r.get(0)?,
                fold: r.get::<_, i64>(1)? as usize,
                status: r.get(2)?,
                attempt: r.get(3)?,
                device: r.get(4)?,
                host: r.get(5)?,
                started_at: r.get(6)?,
                finished_at: r.get(7)?,
                error: r.get(8)?,
                diverged_epoch: r.get::<_, Option<i64>>(9)?.map(|e| e as usize),
                outcome,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every epoch one job has recorded so far (a running job's too), in order.
    pub fn job_epochs(&self, job_id: i64) -> anyhow::Result<Vec<EpochLog>> {
        let mut stmt = self.conn.prepare(
            "SELECT epoch, train_loss, val_rmse, lr, seconds, probe_rmse, shifted_rmse
             FROM epochs WHERE job_id = ?1 ORDER BY epoch",
        )?;
        let rows = stmt.query_map([job_id], |r| {
            Ok(EpochLog {
                epoch: r.get::<_, i64>(0)? as usize,
                train_loss: r.get(1)?,
                val_rmse: r.get(2)?,
                lr: r.get(3)?,
                seconds: r.get(4)?,
                probe_rmse: r.get(5)?,
                shifted_rmse: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn job_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        config_id: r.get(1)?,
        fold: r.get::<_, i64>(2)? as usize,
        status: r.get(3)?,
        attempt: r.get(4)?,
    })
}

/// Who holds a running job.
struct Claim {
    job_id: i64,
    host: Option<String>,
    pid: Option<i64>,
    owner_start: Option<i64>,
    heartbeat: Option<f64>,
}

/// Requeues the sweep's jobs left `running` by a coordinator that is gone. On this machine the
/// owner is identified by pid and start time, so a reused pid (PID 1 of a restarted container)
/// does not keep a dead coordinator's jobs alive; another machine's jobs count as alive while
/// their heartbeat is under ten minutes old.
fn requeue_stale(tx: &Transaction, sweep_id: i64) -> anyhow::Result<usize> {
    let host = hostname();
    let running: Vec<Claim> = {
        let mut stmt = tx.prepare(
            "SELECT j.id, j.host, j.pid, j.owner_start, j.heartbeat FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND j.status = ?2",
        )?;
        let rows = stmt.query_map(params![sweep_id, JobStatus::Running], |r| {
            Ok(Claim {
                job_id: r.get(0)?,
                host: r.get(1)?,
                pid: r.get(2)?,
                owner_start: r.get(3)?,
                heartbeat: r.get(4)?,
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut requeued = 0;
    for claim in running {
        let owner_alive = match (claim.host.as_deref(), claim.pid) {
            (Some(h), Some(pid)) if h == host => owner_running(pid, claim.owner_start),
            _ => claim.heartbeat.is_some_and(|hb| now() - hb < 600.0),
        };
        if !owner_alive {
            requeued += tx.execute(
                "UPDATE jobs SET status = ?2, pid = NULL, owner_start = NULL, worker_pid = NULL WHERE id = ?1",
                params![claim.job_id, JobStatus::Pending],
            )?;
        }
    }
    Ok(requeued)
}

/// A rerun of a job replaces what an earlier attempt may have left.
fn clear_results(tx: &Transaction, job_id: i64) -> anyhow::Result<()> {
    for table in [
        "fold_results",
        "bin_results",
        "epochs",
        "oof_predictions",
        "probe_predictions",
        "test_predictions",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE job_id = ?1"), [job_id])?;
    }
    Ok(())
}

fn insert_result(
    tx: &Transaction,
    job_id: i64,
    r: &FoldResult,
    checkpoint: Option<&str>,
) -> anyhow::Result<()> {
    let m = &r.metrics;
    tx.execute(
        "INSERT INTO fold_results (job_id, best_epoch, epochs_run, rmse, rounded_rmse, macro_rmse, mean_predictor_rmse,
         train_rows, synthetic_rows, val_rows, train_seconds, checkpoint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            job_id, r.best_epoch as i64, r.epochs_run as i64, m.rmse, m.rounded_rmse, m.macro_rmse, r.mean_predictor_rmse,
            r.train_rows as i64, r.synthetic_rows as i64, r.val_rows as i64, r.train_seconds, checkpoint
        ],
    )?;
    let mut bins =
        tx.prepare("INSERT INTO bin_results (job_id, score, count, rmse) VALUES (?1, ?2, ?3, ?4)")?;
    for b in &m.bins {
        bins.execute(params![job_id, b.score as i64, b.count as i64, b.rmse])?;
    }
    let mut oof = tx.prepare("INSERT INTO oof_predictions (job_id, record, truth, prediction, logvar) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for o in &r.oof {
        oof.execute(params![job_id, o.record as i64, o.truth, o.prediction, o.logvar])?;
    }
    if let Some(probe) = &r.probe {
        insert_probe_result(tx, job_id, probe)?;
    }
    if let Some(test) = &r.test {
        insert_test_predictions(tx, job_id, test)?;
    }
    Ok(())
}

fn insert_probe_result(tx: &Transaction, job_id: i64, probe: &ProbeResult) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE fold_results SET probe_rmse = ?2, shifted_rmse = ?3, mean_predictor_shifted_rmse = ?4
         WHERE job_id = ?1",
        params![job_id, probe.rmse, probe.shifted_rmse, probe.mean_predictor_shifted_rmse],
    )?;
    let mut stmt = tx.prepare(
        "INSERT INTO probe_predictions (job_id, probe, record, metric_row, prediction)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (i, row) in probe.rows.iter().enumerate() {
        stmt.execute(params![
            job_id,
            i as i64,
            row.record as i64,
            row.metric_row as i64,
            row.prediction
        ])?;
    }
    Ok(())
}

fn insert_test_predictions(
    tx: &Transaction,
    job_id: i64,
    test: &TestPredictions,
) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE fold_results SET test_fingerprint = ?2 WHERE job_id = ?1",
        params![job_id, test.fingerprint],
    )?;
    let mut stmt =
        tx.prepare("INSERT INTO test_predictions (job_id, row, prediction) VALUES (?1, ?2, ?3)")?;
    for (row, prediction) in test.predictions.iter().enumerate() {
        stmt.execute(params![job_id, row as i64, prediction])?;
    }
    Ok(())
}

/// The learning curve, one row per epoch.
fn insert_epochs(tx: &Transaction, job_id: i64, epochs: &[EpochLog]) -> anyhow::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO epochs (job_id, epoch, train_loss, val_rmse, lr, seconds, probe_rmse, shifted_rmse)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for e in epochs {
        stmt.execute(params![
            job_id,
            e.epoch as i64,
            storable(e.train_loss),
            storable(e.val_rmse),
            e.lr,
            e.seconds,
            e.probe_rmse.map(storable),
            e.shifted_rmse.map(storable),
        ])?;
    }
    Ok(())
}

/// SQLite stores NaN as NULL, which the epochs table's NOT NULL columns refuse; a diverged
/// epoch's NaN is kept as infinity (still "not a number you can rank").
fn storable(value: f64) -> f64 {
    if value.is_nan() {
        f64::INFINITY
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema of version 1, as foldsweep 0.1 wrote it.
    const SCHEMA_V1: &str = include_str!("../tests/fixtures/schema_v1.sql");

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
            .query_row("SELECT status, pid FROM jobs WHERE id = 7", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
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
        let mut store = Store::open(path).unwrap();
        let sweep = SweepDefinition {
            name: "s",
            definition: "name = \"s\"",
            data_fingerprint: "fp",
            fold_hash: "fh",
            folds: 1,
            keep_trials: false,
        };
        let config = NewConfig {
            id: config_id,
            params_json: "{}",
            varying_json: "{}",
            label: "",
            data_fingerprint: "fp",
        };
        let (sweep_id, _) =
            store.register_sweep(&sweep, &[config], &[(config_id.to_string(), 0)]).unwrap();
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
        assert_eq!(target.merge_shard(&dir.path().join("shard.db")).unwrap(), (1, 0));
        assert_eq!(target.config_jobs_in("c1", JobStatus::Diverged).unwrap(), 1);
        assert_eq!(target.merge_shard(&dir.path().join("shard.db")).unwrap(), (0, 1), "idempotent");
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
        assert!(
            store.claim_next(sweep_id, "cpu", &|_, _| true, false).unwrap().is_none(),
            "never run"
        );
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
            .record_epochs(
                job.id,
                &[epoch(1, Some(3.0), Some(2.4)), epoch(2, Some(2.8), Some(2.2))],
            )
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
}
