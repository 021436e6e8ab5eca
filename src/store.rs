//! The results database (SQLite): sweeps, configs, jobs and everything a job reports.
//!
//! One process writes it (the sweep coordinator). WAL mode lets `results` read while a sweep
//! runs; every job's results go in with one transaction, so a crash never leaves half a job.
//! The schema is documented in docs/schema.md; `meta.schema_version` says which one a file has.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::job::FoldResult;

pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,          -- the sweep file's text, as last run
    data_fingerprint TEXT NOT NULL,    -- content hash of the training data
    fold_hash TEXT NOT NULL,           -- hash of the fold assignment
    folds INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS configs (
    id TEXT PRIMARY KEY,               -- hash of config + data fingerprint + fold hash
    params TEXT NOT NULL,              -- the full resolved config, JSON
    fold_hash TEXT NOT NULL,
    data_fingerprint TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_configs (
    sweep_id INTEGER NOT NULL REFERENCES sweeps(id),
    config_id TEXT NOT NULL REFERENCES configs(id),
    varying TEXT NOT NULL,             -- the grid values of this config in this sweep, JSON
    label TEXT NOT NULL,               -- the same, as `key=value ...`
    position INTEGER NOT NULL,         -- order in the grid
    PRIMARY KEY (sweep_id, config_id)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs(id),
    fold INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted')),
    attempt INTEGER NOT NULL DEFAULT 0,
    device TEXT, host TEXT,
    pid INTEGER,                       -- the coordinator that owns the job while it runs
    worker_pid INTEGER,                -- the child process training it
    heartbeat REAL, started_at REAL, finished_at REAL,
    error TEXT,
    UNIQUE (config_id, fold)
);
CREATE TABLE IF NOT EXISTS fold_results (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
    best_epoch INTEGER NOT NULL, epochs_run INTEGER NOT NULL,
    rmse REAL NOT NULL, rounded_rmse REAL NOT NULL, macro_rmse REAL NOT NULL,
    mean_predictor_rmse REAL NOT NULL,
    train_rows INTEGER NOT NULL, synthetic_rows INTEGER NOT NULL, val_rows INTEGER NOT NULL,
    train_seconds REAL NOT NULL,
    checkpoint TEXT                    -- relative to the database's folder
);
CREATE TABLE IF NOT EXISTS bin_results (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    score INTEGER NOT NULL, count INTEGER NOT NULL, rmse REAL,
    PRIMARY KEY (job_id, score)
);
CREATE TABLE IF NOT EXISTS epochs (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    epoch INTEGER NOT NULL, train_loss REAL NOT NULL, val_rmse REAL NOT NULL, lr REAL NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY (job_id, epoch)
);
CREATE TABLE IF NOT EXISTS oof_predictions (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    record INTEGER NOT NULL, truth REAL NOT NULL, prediction REAL NOT NULL, logvar REAL,
    PRIMARY KEY (job_id, record)
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status);
"#;

pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".into()
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
    pub status: String,
    pub attempt: u32,
}

/// What a new job row needs.
pub struct NewConfig<'a> {
    pub id: &'a str,
    pub params_json: &'a str,
    pub varying_json: &'a str,
    pub label: &'a str,
}

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening results database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()
            .unwrap_or(None);
        match version {
            Some(v) if v != SCHEMA_VERSION.to_string() => {
                bail!(
                    "{} has schema version {v}; this foldsweep reads version {SCHEMA_VERSION}",
                    path.display()
                )
            }
            _ => {}
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            [SCHEMA_VERSION.to_string()],
        )?;
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

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The folder relative checkpoint paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// Registers a sweep (or updates its definition), its configs and the given (config, fold)
    /// jobs, idempotently: jobs already known are left as they are, only new ones are added.
    /// Returns the sweep id and how many jobs were added.
    pub fn register_sweep(
        &mut self,
        name: &str,
        definition: &str,
        data_fingerprint: &str,
        fold_hash: &str,
        folds: usize,
        configs: &[NewConfig],
        jobs: &[(String, usize)],
    ) -> anyhow::Result<(i64, usize)> {
        let tx = self.conn.transaction()?;
        let t = now();
        tx.execute(
            "INSERT INTO sweeps (name, definition, data_fingerprint, fold_hash, folds, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT(name) DO UPDATE SET definition = ?2, data_fingerprint = ?3, fold_hash = ?4, folds = ?5, updated_at = ?6",
            params![name, definition, data_fingerprint, fold_hash, folds as i64, t],
        )?;
        let sweep_id: i64 =
            tx.query_row("SELECT id FROM sweeps WHERE name = ?1", [name], |r| r.get(0))?;
        let mut added = 0;
        for (position, c) in configs.iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO configs (id, params, fold_hash, data_fingerprint, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.id, c.params_json, fold_hash, data_fingerprint, t],
            )?;
            tx.execute(
                "INSERT INTO sweep_configs (sweep_id, config_id, varying, label, position) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(sweep_id, config_id) DO UPDATE SET varying = ?3, label = ?4, position = ?5",
                params![sweep_id, c.id, c.varying_json, c.label, position as i64],
            )?;
        }
        for (config_id, fold) in jobs {
            added += tx.execute(
                "INSERT OR IGNORE INTO jobs (config_id, fold, status) VALUES (?1, ?2, 'pending')",
                params![config_id, *fold as i64],
            )?;
        }
        tx.commit()?;
        Ok((sweep_id, added))
    }

    /// Makes failed and interrupted jobs of a sweep runnable again (a rerun retries them),
    /// and requeues jobs left `running` by a coordinator that no longer exists.
    pub fn requeue_for_rerun(&mut self, sweep_id: i64) -> anyhow::Result<usize> {
        let host = hostname();
        let stale: Vec<(i64, Option<String>, Option<i64>, Option<f64>)> = {
            let mut stmt = self.conn.prepare(
                "SELECT j.id, j.host, j.pid, j.heartbeat FROM jobs j JOIN sweep_configs s ON s.config_id = j.config_id
                 WHERE s.sweep_id = ?1 AND j.status = 'running'",
            )?;
            let rows =
                stmt.query_map([sweep_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let tx = self.conn.transaction()?;
        let mut requeued = 0;
        for (id, job_host, pid, heartbeat) in stale {
            let owner_alive = match (job_host.as_deref(), pid) {
                (Some(h), Some(pid)) if h == host => process_alive(pid),
                // Another machine's job: trust its heartbeat for ten minutes.
                _ => heartbeat.is_some_and(|hb| now() - hb < 600.0),
            };
            if !owner_alive {
                requeued += tx.execute("UPDATE jobs SET status = 'pending', pid = NULL, worker_pid = NULL WHERE id = ?1", [id])?;
            }
        }
        requeued += tx.execute(
            "UPDATE jobs SET status = 'pending', attempt = 0 WHERE status IN ('failed', 'interrupted')
             AND config_id IN (SELECT config_id FROM sweep_configs WHERE sweep_id = ?1)",
            [sweep_id],
        )?;
        tx.commit()?;
        Ok(requeued)
    }

    /// Jobs of a sweep in a given status, in grid order then fold order.
    pub fn jobs(&self, sweep_id: i64, status: &str) -> anyhow::Result<Vec<JobRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT j.id, j.config_id, j.fold, j.status, j.attempt FROM jobs j
             JOIN sweep_configs s ON s.config_id = j.config_id
             WHERE s.sweep_id = ?1 AND j.status = ?2 ORDER BY s.position, j.fold",
        )?;
        let rows = stmt.query_map(params![sweep_id, status], |r| {
            Ok(JobRow {
                id: r.get(0)?,
                config_id: r.get(1)?,
                fold: r.get::<_, i64>(2)? as usize,
                status: r.get(3)?,
                attempt: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn config_params(&self, config_id: &str) -> anyhow::Result<String> {
        Ok(self
            .conn
            .query_row("SELECT params FROM configs WHERE id = ?1", [config_id], |r| r.get(0))?)
    }

    /// Claims a pending job for this coordinator; false if another process got it first.
    pub fn claim(&self, job_id: i64, device: &str) -> anyhow::Result<bool> {
        let t = now();
        let claimed = self.conn.execute(
            "UPDATE jobs SET status = 'running', attempt = attempt + 1, device = ?2, host = ?3, pid = ?4, worker_pid = NULL,
             heartbeat = ?5, started_at = ?5, finished_at = NULL, error = NULL WHERE id = ?1 AND status = 'pending'",
            params![job_id, device, hostname(), std::process::id(), t],
        )?;
        Ok(claimed == 1)
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
        let tx = self.conn.transaction()?;
        insert_result(&tx, job_id, result, checkpoint)?;
        tx.execute(
            "UPDATE jobs SET status = 'done', finished_at = ?2, heartbeat = ?2, error = NULL WHERE id = ?1",
            params![job_id, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A failed attempt: back to pending while attempts remain, else failed for good.
    pub fn record_failure(&self, job_id: i64, error: &str, retry: bool) -> anyhow::Result<()> {
        let status = if retry { "pending" } else { "failed" };
        self.conn.execute(
            "UPDATE jobs SET status = ?2, error = ?3, finished_at = ?4, pid = NULL, worker_pid = NULL WHERE id = ?1",
            params![job_id, status, error, now()],
        )?;
        Ok(())
    }

    pub fn mark_interrupted(&self, job_id: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE jobs SET status = 'interrupted', error = 'interrupted by Ctrl-C', finished_at = ?2, pid = NULL WHERE id = ?1",
            params![job_id, now()],
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
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()
            .with_context(|| format!("{} is not a foldsweep results database", path.display()))?;
        if version.as_deref() != Some(SCHEMA_VERSION.to_string().as_str()) {
            bail!(
                "{} has schema version {}; this foldsweep reads version {SCHEMA_VERSION}",
                path.display(),
                version.as_deref().unwrap_or("none")
            );
        }
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// A running job's epochs as they come, so `serve` can show them live. Rows from an
    /// earlier attempt at or after the first epoch given are replaced; `record_success`
    /// rewrites them all when the job finishes.
    pub fn record_epochs(
        &mut self,
        job_id: i64,
        epochs: &[crate::train::EpochLog],
    ) -> anyhow::Result<()> {
        let Some(first) = epochs.first() else {
            return Ok(());
        };
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM epochs WHERE job_id = ?1 AND epoch >= ?2",
            params![job_id, first.epoch as i64],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO epochs (job_id, epoch, train_loss, val_rmse, lr, seconds)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for e in epochs {
                insert.execute(params![
                    job_id,
                    e.epoch as i64,
                    e.train_loss,
                    e.val_rmse,
                    e.lr,
                    e.seconds
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn insert_result(
    tx: &Transaction,
    job_id: i64,
    r: &FoldResult,
    checkpoint: Option<&str>,
) -> anyhow::Result<()> {
    // A rerun of a job replaces what an earlier attempt may have left.
    for table in ["fold_results", "bin_results", "epochs", "oof_predictions"] {
        tx.execute(&format!("DELETE FROM {table} WHERE job_id = ?1"), [job_id])?;
    }
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
    let mut epochs = tx.prepare("INSERT INTO epochs (job_id, epoch, train_loss, val_rmse, lr, seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
    for e in &r.epochs {
        epochs.execute(params![
            job_id,
            e.epoch as i64,
            e.train_loss,
            e.val_rmse,
            e.lr,
            e.seconds
        ])?;
    }
    let mut oof = tx.prepare("INSERT INTO oof_predictions (job_id, record, truth, prediction, logvar) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for o in &r.oof {
        oof.execute(params![job_id, o.record as i64, o.truth, o.prediction, o.logvar])?;
    }
    Ok(())
}

/// Whether a live (not zombie) process with this pid exists on this machine.
pub fn process_alive(pid: i64) -> bool {
    // SAFETY: signal 0 checks for existence and permission only; nothing is delivered.
    let exists = pid > 0
        && (unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM));
    // A killed process whose parent never reaps it stays a zombie and still "exists".
    exists && !is_zombie(pid)
}

fn is_zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}
