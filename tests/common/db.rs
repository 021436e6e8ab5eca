//! Reading a results database in tests. Jobs, folds and predictions are read through
//! `foldsweep::store::Store`, as the commands read them; raw SQL ([`sql_count`],
//! [`sql_strings`]) is for tests about the schema itself (rows per table, duplicates,
//! columns, integrity), which no typed read can show.

use std::collections::BTreeSet;
use std::path::Path;

use foldsweep::store::{JobRecord, JobStatus, Store};
use rusqlite::Connection;

/// The database, read-only (as `serve` opens it: never takes a running sweep's write lock).
pub fn store(db: &Path) -> Store {
    Store::open_read_only(db).unwrap_or_else(|e| panic!("open {}: {e:#}", db.display()))
}

/// The database once it exists and has its schema (a coordinator is creating it), else None.
pub fn try_store(db: &Path) -> Option<Store> {
    Store::open_read_only(db).ok()
}

/// A job with the config it belongs to.
#[derive(Debug, Clone)]
pub struct Job {
    pub config_id: String,
    pub record: JobRecord,
}

/// Every job of every config of every sweep in the database (retired configs too), by config
/// in grid order, then fold.
pub fn jobs_in(store: &Store) -> Vec<Job> {
    let mut seen = BTreeSet::new();
    let mut jobs = Vec::new();
    for sweep in store.sweep_list().expect("sweeps") {
        for config in store.sweep_configs(sweep.id, true).expect("sweep configs") {
            if !seen.insert(config.config_id.clone()) {
                continue;
            }
            for record in store.job_records(&config.config_id).expect("job records") {
                jobs.push(Job { config_id: config.config_id.clone(), record });
            }
        }
    }
    jobs
}

pub fn jobs(db: &Path) -> Vec<Job> {
    jobs_in(&store(db))
}

/// How many jobs of the database are in `status`.
pub fn count_status(db: &Path, status: JobStatus) -> usize {
    jobs(db).iter().filter(|j| j.record.status == status).count()
}

/// The config ids of the database's (most recent) sweep, in grid order, retired ones last.
pub fn config_ids(db: &Path) -> Vec<String> {
    let store = store(db);
    let (sweep, _) = store.resolve_sweep(None).expect("a sweep");
    store.sweep_configs(sweep, true).expect("configs").into_iter().map(|c| c.config_id).collect()
}

/// A raw connection, for tests about the schema or that corrupt a database on purpose.
pub fn connection(db: &Path) -> Connection {
    Connection::open(db).unwrap_or_else(|e| panic!("open {}: {e}", db.display()))
}

/// The single integer a schema-level query returns (`SELECT COUNT(*) FROM table ...`).
pub fn sql_count(db: &Path, sql: &str) -> i64 {
    connection(db).query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of every row a schema-level query returns.
pub fn sql_strings(db: &Path, sql: &str) -> Vec<String> {
    let conn = connection(db);
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let rows = stmt.query_map([], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.collect::<Result<_, _>>().unwrap_or_else(|e| panic!("{sql}: {e}"))
}
