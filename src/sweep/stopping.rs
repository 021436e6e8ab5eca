//! When the sweep loop stops (issue 18), in one place: signals (see [`super::signals`]), the
//! deadline (see [`super::deadline`]) and a store that cannot be written.
//!
//! - A first signal, the deadline, or a store fault: no new job or trial starts.
//! - Running jobs then get the grace period (signals and the deadline; a store fault lets
//!   them finish, since their result files are what the next run records).
//! - When the grace runs out, or at a second signal, running jobs are interrupted.

use std::time::{Duration, Instant};

use super::deadline::Deadline;
use super::signals;

/// Why the run stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A signal, by the name a user knows ("SIGTERM", "Ctrl-C (SIGINT)").
    Signal(&'static str),
    /// `--time-budget`, `--until` or `[resources] time_budget`.
    Deadline,
    /// A database write kept failing past the retry window ([`Stopper::store_cause`]).
    Store,
}

impl StopReason {
    /// The exit code a run stopped for this reason ends with when nothing failed: the
    /// deadline is a planned stop (0), the others are not (1).
    pub fn is_planned(&self) -> bool {
        matches!(self, StopReason::Deadline)
    }
}

/// What the loop must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on as usual.
    Run,
    /// Start nothing new; running jobs go on. `announce` is true the first time.
    NoNewJobs { reason: StopReason, announce: bool },
    /// Stop the running jobs now (a second signal, or the grace period ran out).
    StopRunning { reason: StopReason, grace_ran_out: bool },
}

pub struct Stopper {
    stops_at_start: usize,
    grace: Duration,
    deadline: Option<Deadline>,
    /// The first reason to stop and when it came.
    stopping: Option<(StopReason, Instant)>,
    announced: bool,
    store_cause: Option<String>,
}

impl Stopper {
    pub fn new(grace: Duration, deadline: Option<Deadline>) -> Stopper {
        Stopper {
            stops_at_start: signals::stops(),
            grace,
            deadline,
            stopping: None,
            announced: false,
            store_cause: None,
        }
    }

    /// A database write failed for good: start nothing new, let running jobs finish.
    pub fn store_failed(&mut self, cause: String) {
        if self.stopping.is_none() {
            self.stopping = Some((StopReason::Store, Instant::now()));
        }
        self.store_cause.get_or_insert(cause);
    }

    /// The first write that failed for good: the database and the cause.
    pub fn store_cause(&self) -> Option<&str> {
        self.store_cause.as_deref()
    }

    /// No job fits before the deadline: stop now as at the deadline.
    pub fn stop_for_deadline(&mut self) {
        if self.stopping.is_none() {
            self.stopping = Some((StopReason::Deadline, Instant::now()));
        }
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Signals seen since the run started.
    fn signals(&self) -> usize {
        signals::stops().saturating_sub(self.stops_at_start)
    }

    /// The reason the run is stopping, if it is.
    pub fn reason(&self) -> Option<StopReason> {
        self.stopping.map(|(r, _)| r)
    }

    /// Whether a job expected to take `expected` may start now.
    pub fn admits(&self, expected: Option<Duration>) -> bool {
        self.stopping.is_none() && self.deadline.is_none_or(|d| d.admits(expected))
    }

    pub fn deadline(&self) -> Option<&Deadline> {
        self.deadline.as_ref()
    }

    pub fn poll(&mut self) -> Verdict {
        let signals = self.signals();
        if self.stopping.is_none() {
            if signals > 0 {
                let name = signals::first_name().unwrap_or("a signal");
                self.stopping = Some((StopReason::Signal(name), Instant::now()));
            } else if self.deadline.is_some_and(|d| d.passed()) {
                self.stopping = Some((StopReason::Deadline, Instant::now()));
            }
        }
        let Some((reason, since)) = self.stopping else { return Verdict::Run };
        // A signal after a store fault or the deadline counts as the first; after a signal,
        // the second.
        let second = match reason {
            StopReason::Signal(_) => signals >= 2,
            _ => signals >= 1,
        };
        let has_grace = reason != StopReason::Store;
        let grace_ran_out = has_grace && since.elapsed() >= self.grace;
        if second || grace_ran_out {
            return Verdict::StopRunning { reason, grace_ran_out: grace_ran_out && !second };
        }
        let announce = !self.announced;
        self.announced = true;
        Verdict::NoNewJobs { reason, announce }
    }
}

#[cfg(test)]
mod tests {
    use super::super::deadline::DeadlinePolicy;
    use super::*;

    #[test]
    fn the_deadline_stops_new_jobs_then_running_ones_after_the_grace() {
        let deadline = Deadline::after(Duration::ZERO, DeadlinePolicy::Fit);
        let mut stopper = Stopper::new(Duration::from_millis(50), Some(deadline));
        assert!(!stopper.admits(None));
        assert_eq!(
            stopper.poll(),
            Verdict::NoNewJobs { reason: StopReason::Deadline, announce: true }
        );
        assert_eq!(
            stopper.poll(),
            Verdict::NoNewJobs { reason: StopReason::Deadline, announce: false }
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            stopper.poll(),
            Verdict::StopRunning { reason: StopReason::Deadline, grace_ran_out: true }
        );
    }

    #[test]
    fn a_store_fault_lets_running_jobs_finish() {
        let mut stopper = Stopper::new(Duration::ZERO, None);
        assert_eq!(stopper.poll(), Verdict::Run);
        stopper.store_failed("results.db: no space left on device".into());
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(stopper.poll(), Verdict::NoNewJobs { reason: StopReason::Store, .. }));
        assert_eq!(stopper.store_cause(), Some("results.db: no space left on device"));
        assert!(!stopper.admits(None));
    }
}
