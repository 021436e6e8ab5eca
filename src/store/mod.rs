//! The results database (SQLite): sweeps, configs, jobs and everything a job reports.
//!
//! The store owns the SQL: the rest of foldsweep reads and writes through its typed methods.
//! Sweep coordinators write it (one or several on one machine: every write transaction is
//! BEGIN IMMEDIATE, so they queue on the lock instead of failing with "database is locked").
//! WAL mode lets `results` read while a sweep runs; every job's results go in with one
//! transaction, so a crash never leaves half a job. The schema is documented in
//! docs/schema.md; `meta.schema_version` says which one a file has, and an older file is
//! migrated in place when it is opened.

mod merge;
mod overview;
mod queries;
mod queue;
mod results;
mod schema;
mod status;
#[cfg(test)]
pub(crate) mod tests;
mod trials;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::util::process::{hostname, now};

pub use merge::ShardMerge;
pub use overview::{Coordinator, FailedJob, SweepTimes};
pub use queries::{
    ConfigSweep, FoldMetrics, FoldResultRow, JobRecord, OofRow, ProbeRow, RunningJob,
    SweepConfigRow, SweepListing,
};
pub use queue::JobRow;
pub use schema::SCHEMA_VERSION;
use schema::{enable_wal, migrate, schema_version, BUSY_TIMEOUT, SCHEMA};
pub use status::JobStatus;
pub use trials::{NewTrial, TrialRecord};

pub struct Store {
    conn: Connection,
    path: PathBuf,
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

/// Which jobs a coordinator may claim: all of the sweep's, or a shard's slice.
pub type JobFilter<'a> = &'a dyn Fn(&str, usize) -> bool;

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
}
