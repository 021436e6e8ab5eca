//! Errors a user can fix: bad input files, bad configs, bad command lines.
//!
//! Everything else is an internal failure. The CLI maps an [`InputError`] anywhere in an
//! error chain to exit code 2, so library code only has to pick the right type.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with something the user gave us, located as precisely as we can:
/// the file, the record (0-based index in the file) and the field.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub file: Option<PathBuf>,
    pub record: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn new(message: impl Into<String>) -> Self {
        InputError { file: None, record: None, field: None, message: message.into() }
    }

    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        InputError::new(message).file(file)
    }

    pub fn file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_path_buf());
        self
    }

    pub fn record(mut self, index: usize) -> Self {
        self.record = Some(index);
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut location = Vec::new();
        if let Some(file) = &self.file {
            location.push(file.display().to_string());
        }
        if let Some(record) = self.record {
            location.push(format!("record {record}"));
        }
        if let Some(field) = &self.field {
            location.push(format!("field `{field}`"));
        }
        if location.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", location.join(", "), self.message)
        }
    }
}

impl std::error::Error for InputError {}

pub type InputResult<T> = Result<T, InputError>;

/// True when the error (or anything it wraps) is the user's to fix.
pub fn is_input_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.downcast_ref::<InputError>().is_some())
}
