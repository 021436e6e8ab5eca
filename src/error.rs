//! Errors and what they mean for the process: [`InputError`] is something the user can fix
//! (bad input files, bad configs, bad command lines); [`Error`] is the one type the command
//! line ends with, and its [`ErrorKind`] alone decides the exit code (see [`Error`]).
//!
//! Library code picks the type where the problem is found: an [`InputError`] for what the user
//! gave, anything else (I/O, a full disk, a bug) stays a plain `anyhow::Error`. Nothing later
//! relabels one as the other.

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

/// Exit code: something failed that the input does not explain: some jobs failed, the run
/// was stopped early, or an I/O or internal failure (a full disk, an unwritable cache).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad input or usage; the message names the file, the record and the field.
pub const EXIT_BAD_INPUT: u8 = 2;

/// What kind of failure ended a command; the kind alone decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's to fix: a file, a config value or an argument ([`InputError`]).
    BadInput,
    /// Anything else: I/O, the environment, a bug.
    Failed,
}

/// The error a command ends with (in the spirit of cargo-nextest's `ExpectedError`).
///
/// Exit codes, documented here and only here (the README links to this):
/// - 0: success (`ExitCode::SUCCESS`);
/// - 1 ([`EXIT_FAILED`]): some jobs failed or the run stopped early, or an error of kind
///   [`ErrorKind::Failed`] (I/O, a full disk or an unwritable cache, an internal error);
/// - 2 ([`EXIT_BAD_INPUT`]): an error of kind [`ErrorKind::BadInput`], or a usage error.
///
/// The kind is taken from the error itself: an `anyhow::Error` is bad input only when it *is*
/// an [`InputError`] (with any context added on top), never because some cause down its
/// chain happens to be one.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    error: anyhow::Error,
}

impl Error {
    pub fn process_exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::BadInput => EXIT_BAD_INPUT,
            ErrorKind::Failed => EXIT_FAILED,
        }
    }

    /// The input error inside, to locate it further (the CLI names its flags this way).
    pub fn input_mut(&mut self) -> Option<&mut InputError> {
        self.error.downcast_mut::<InputError>()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl From<anyhow::Error> for Error {
    fn from(error: anyhow::Error) -> Self {
        let kind = if error.downcast_ref::<InputError>().is_some() {
            ErrorKind::BadInput
        } else {
            ErrorKind::Failed
        };
        Error { kind, error }
    }
}

impl From<InputError> for Error {
    fn from(error: InputError) -> Self {
        Error { kind: ErrorKind::BadInput, error: error.into() }
    }
}

macro_rules! failed_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(error: $t) -> Self {
                Error { kind: ErrorKind::Failed, error: error.into() }
            }
        }
    )*};
}
failed_from!(std::io::Error, serde_json::Error, rusqlite::Error);

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_kind_of_the_error_itself_decides_the_exit_code() {
        let input: Error = InputError::new("bad").field("fold").into();
        assert_eq!(input.process_exit_code(), EXIT_BAD_INPUT);
        let with_context: Error =
            Err::<(), _>(InputError::new("bad")).context("loading").unwrap_err().into();
        assert_eq!(with_context.process_exit_code(), EXIT_BAD_INPUT);
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let io: Error = anyhow::Error::from(io).context("writing the cache").into();
        assert_eq!(io.process_exit_code(), EXIT_FAILED);
    }
}
