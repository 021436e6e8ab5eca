//! Where a job stands, and how that is stored (its lower-case name).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;

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
