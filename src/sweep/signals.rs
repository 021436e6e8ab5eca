//! Stop requests from signals, for the sweep loop (issue 18).
//!
//! SIGINT (Ctrl-C), SIGHUP (the terminal closed, an SSH logout) and SIGTERM (systemd, Slurm,
//! `kill`) all ask for a graceful stop; a second one asks to stop at once. A signal that was
//! ignored when the process started stays ignored: `nohup` ignores SIGHUP, and a
//! non-interactive shell starts `cmd &` with SIGINT ignored; installing a handler over that
//! (as ctrlc's `termination` feature did) turned a logout into a stopped sweep.
//!
//! signal-hook does the handler side (its handler only writes to a pipe; a thread counts);
//! whether a signal is ignored is one `sigaction` query, which signal-hook does not offer.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::OnceLock;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Stop requests this process has received.
static STOPS: AtomicUsize = AtomicUsize::new(0);
/// The first request's signal number (0: none yet).
static FIRST: AtomicI32 = AtomicI32::new(0);

/// Installs the handlers once per process; later calls do nothing. Returns the signals left
/// ignored because they were ignored at start (for the log).
pub fn install() -> &'static [&'static str] {
    static IGNORED: OnceLock<Vec<&'static str>> = OnceLock::new();
    IGNORED.get_or_init(|| {
        let (watched, ignored): (Vec<i32>, Vec<i32>) =
            [SIGINT, SIGHUP, SIGTERM].into_iter().partition(|&s| !ignored_at_start(s));
        // A failure to install leaves the default action (the process ends), as before.
        if let Ok(mut signals) = signal_hook::iterator::Signals::new(&watched) {
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    let _ = FIRST.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
                    STOPS.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        ignored.into_iter().map(name).collect()
    })
}

/// How many stop requests arrived so far.
pub fn stops() -> usize {
    STOPS.load(Ordering::SeqCst)
}

/// The name of the signal that asked first, as a user knows it ("Ctrl-C", "SIGHUP",
/// "SIGTERM"); None before any.
pub fn first_name() -> Option<&'static str> {
    match FIRST.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(name(signal)),
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Ctrl-C (SIGINT)",
        SIGHUP => "SIGHUP",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Whether `signal`'s disposition is "ignore" right now (inherited from the parent).
fn ignored_at_start(signal: i32) -> bool {
    // SAFETY: a query only (no new action): sigaction fills `old` and changes nothing.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ignored_signal_is_seen_as_ignored() {
        // SIGUSR2 is not one we handle; ignore it, check, restore the default.
        // SAFETY: changes the disposition of a signal nothing else in the tests uses.
        unsafe {
            libc::signal(libc::SIGUSR2, libc::SIG_IGN);
            assert!(ignored_at_start(libc::SIGUSR2));
            libc::signal(libc::SIGUSR2, libc::SIG_DFL);
            assert!(!ignored_at_start(libc::SIGUSR2));
        }
    }
}
