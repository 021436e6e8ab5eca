//! Store writes from the sweep loop, retried (issue 18). A write that fails because the
//! database is busy past its timeout, the disk is full, or the file system reports an I/O
//! error is tried again with a growing pause, for a bounded time (`run --store-retry`,
//! 10 minutes by default); the running jobs keep training meanwhile (they are separate
//! processes). Other errors, and a write still failing at the end, are returned with a
//! message that names the database and the cause in the words a user searches for.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;

/// The default retry window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);

/// What kind of failure an error is, for retrying and for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Busy,
    Full,
    Io,
}

impl Fault {
    pub fn words(self) -> &'static str {
        match self {
            Fault::Busy => "the database is locked by another process past the busy timeout",
            Fault::Full => "no space left on device",
            Fault::Io => "an I/O error",
        }
    }
}

/// The retryable fault in an error's chain, if any.
pub fn fault(error: &anyhow::Error) -> Option<Fault> {
    for cause in error.chain() {
        if let Some(rusqlite::Error::SqliteFailure(e, _)) = cause.downcast_ref::<rusqlite::Error>()
        {
            return match e.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Some(Fault::Busy),
                ErrorCode::DiskFull => Some(Fault::Full),
                ErrorCode::SystemIoFailure | ErrorCode::CannotOpen => Some(Fault::Io),
                _ => None,
            };
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.raw_os_error() {
                Some(libc::ENOSPC) | Some(libc::EDQUOT) => Some(Fault::Full),
                Some(libc::EIO) => Some(Fault::Io),
                _ => None,
            };
        }
    }
    None
}

/// A write that kept failing: the database, the cause and what happened.
pub fn describe(db: &Path, what: &str, error: &anyhow::Error) -> String {
    match fault(error) {
        Some(fault) => format!("{}: {what} failed: {} ({error:#})", db.display(), fault.words()),
        None => format!("{}: {what} failed: {error:#}", db.display()),
    }
}

/// Runs `op` until it succeeds, fails with an error that is not a [`Fault`], or `window`
/// has passed since the first failure; `on_retry` hears each retried failure and the pause.
/// `give_up` is polled between tries (a second Ctrl-C must not wait out the window).
pub fn retrying<T>(
    window: Duration,
    mut op: impl FnMut() -> anyhow::Result<T>,
    mut on_retry: impl FnMut(&anyhow::Error, Duration),
    give_up: impl Fn() -> bool,
) -> anyhow::Result<T> {
    let first_failure = Instant::now();
    let mut pause = Duration::from_millis(200);
    loop {
        let error = match op() {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if fault(&error).is_none() || first_failure.elapsed() >= window || give_up() {
            return Err(error);
        }
        let pause_now = pause.min(window.saturating_sub(first_failure.elapsed()));
        on_retry(&error, pause_now);
        sleep_unless(pause_now, &give_up);
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

fn sleep_unless(pause: Duration, give_up: &impl Fn() -> bool) {
    let until = Instant::now() + pause;
    while Instant::now() < until && !give_up() {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn full() -> anyhow::Error {
        anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC)).context("writing x")
    }

    #[test]
    fn a_full_disk_is_retried_until_it_clears() {
        let tries = Cell::new(0);
        let retried = Cell::new(0);
        let value = retrying(
            Duration::from_secs(60),
            || {
                tries.set(tries.get() + 1);
                if tries.get() < 3 {
                    Err(full())
                } else {
                    Ok(7)
                }
            },
            |_, _| retried.set(retried.get() + 1),
            || false,
        );
        assert_eq!(value.unwrap(), 7);
        assert_eq!(retried.get(), 2);
    }

    #[test]
    fn other_errors_and_an_expired_window_are_returned() {
        let tries = Cell::new(0);
        let err = retrying(
            Duration::from_secs(60),
            || -> anyhow::Result<()> {
                tries.set(tries.get() + 1);
                anyhow::bail!("a bug")
            },
            |_, _| {},
            || false,
        );
        assert!(err.is_err());
        assert_eq!(tries.get(), 1, "not a fault: no retry");
        let err = retrying(
            Duration::from_millis(300),
            || -> anyhow::Result<()> { Err(full()) },
            |_, _| {},
            || false,
        )
        .unwrap_err();
        assert_eq!(fault(&err), Some(Fault::Full));
        let message = describe(Path::new("results.db"), "recording a result", &err);
        assert!(
            message.contains("results.db") && message.contains("no space left on device"),
            "{message}"
        );
    }

    #[test]
    fn sqlite_codes_are_classified() {
        let sqlite = |code| {
            anyhow::Error::new(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        assert_eq!(fault(&sqlite(rusqlite::ffi::SQLITE_FULL)), Some(Fault::Full));
        assert_eq!(fault(&sqlite(rusqlite::ffi::SQLITE_BUSY)), Some(Fault::Busy));
        assert_eq!(fault(&sqlite(rusqlite::ffi::SQLITE_IOERR)), Some(Fault::Io));
        assert_eq!(fault(&sqlite(rusqlite::ffi::SQLITE_CONSTRAINT)), None);
    }
}
