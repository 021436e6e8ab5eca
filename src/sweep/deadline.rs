//! When a sweep must stop (issue 18): `run --time-budget 8h`, `run --until 07:00`, or
//! `[resources] time_budget = "8h"` in the sweep file.
//!
//! At the deadline no new job or trial starts, running jobs get the grace period, and the
//! rest stay pending for the next run. Before it, a job whose expected duration (the mean
//! of the sweep's finished jobs) would end past it does not start, unless the policy is
//! [`DeadlinePolicy::Start`].

use std::time::{Duration, Instant, SystemTime};

/// Whether a job that would end past the deadline still starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeadlinePolicy {
    /// Only jobs expected to finish in time start (the default).
    #[default]
    Fit,
    /// Every job starts until the deadline itself.
    Start,
}

/// A point in time the run must stop at, as an `Instant` for the loop and as wall-clock time
/// for messages.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub wall: SystemTime,
    pub policy: DeadlinePolicy,
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration, policy: DeadlinePolicy) -> Deadline {
        Deadline { at: Instant::now() + budget, wall: SystemTime::now() + budget, policy }
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Whether a job expected to take `expected` may start now.
    pub fn admits(&self, expected: Option<Duration>) -> bool {
        match (self.policy, expected) {
            _ if self.passed() => false,
            (DeadlinePolicy::Start, _) | (_, None) => true,
            (DeadlinePolicy::Fit, Some(expected)) => Instant::now() + expected <= self.at,
        }
    }
}

/// `90m`, `8h`, `20s`, `1h30m`, `2d`: whole numbers, each with a unit (s, m, h, d).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (use e.g. 90m, 8h, 20s or 1h30m)");
    let mut total = 0u64;
    let mut digits = String::new();
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let value: u64 = digits.parse().map_err(|_| bad())?;
        total = value.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!("`{text}` needs a unit (s, m, h or d), e.g. {digits}m"));
    }
    if total == 0 {
        return Err(format!("`{text}`: a time budget must be longer than 0"));
    }
    Ok(Duration::from_secs(total))
}

/// `HH:MM` (24-hour, local time): how long from now until the next such time (today's if
/// it is still ahead, else tomorrow's).
pub fn until(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a time of day (use HH:MM, e.g. 07:00)");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let hour: i32 = h.parse().map_err(|_| bad())?;
    let minute: i32 = m.parse().map_err(|_| bad())?;
    if !(0..24).contains(&hour) || !(0..60).contains(&minute) || m.len() != 2 {
        return Err(bad());
    }
    let now = unix_now();
    let today = local_time_today(now, hour, minute).ok_or_else(bad)?;
    let target = if today > now {
        today
    } else {
        // The same wall-clock time tomorrow (mktime normalises the day, and DST).
        local_time_on_day(now, 1, hour, minute).ok_or_else(bad)?
    };
    Ok(Duration::from_secs((target - now) as u64))
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn local_time_today(now: i64, hour: i32, minute: i32) -> Option<i64> {
    local_time_on_day(now, 0, hour, minute)
}

/// Unix time of `hour:minute` local time, `days_ahead` days after `now`'s local date.
fn local_time_on_day(now: i64, days_ahead: i32, hour: i32, minute: i32) -> Option<i64> {
    // SAFETY: localtime_r and mktime read and write only the tm we own.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let now = now as libc::time_t;
        if libc::localtime_r(&now, &mut tm).is_null() {
            return None;
        }
        tm.tm_mday += days_ahead;
        tm.tm_hour = hour;
        tm.tm_min = minute;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        let t = libc::mktime(&mut tm);
        (t != -1).then_some(t as i64)
    }
}

/// Local wall-clock `HH:MM` of a time point, for messages.
pub fn local_hh_mm(time: SystemTime) -> String {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    // SAFETY: as above.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let t = secs as libc::time_t;
        if libc::localtime_r(&t, &mut tm).is_null() {
            return "?".into();
        }
        format!("{:02}:{:02}", tm.tm_hour, tm.tm_min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_issues_forms() {
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "90", "8 hours", "h", "-5m", "0s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("90").unwrap_err().contains("needs a unit"));
    }

    #[test]
    fn until_is_the_next_such_time_within_a_day() {
        for text in ["00:00", "07:00", "23:59"] {
            let d = until(text).unwrap();
            assert!(d > Duration::ZERO && d <= Duration::from_secs(86_400 + 3600), "{text}: {d:?}");
        }
        for bad in ["7", "24:00", "07:60", "7:5", "aa:bb"] {
            assert!(until(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_fitting_deadline_admits_only_jobs_that_end_before_it() {
        let deadline = Deadline::after(Duration::from_secs(60), DeadlinePolicy::Fit);
        assert!(deadline.admits(None), "no finished job yet: nothing to judge by");
        assert!(deadline.admits(Some(Duration::from_secs(10))));
        assert!(!deadline.admits(Some(Duration::from_secs(120))));
        let start = Deadline { policy: DeadlinePolicy::Start, ..deadline };
        assert!(start.admits(Some(Duration::from_secs(120))));
        let past = Deadline::after(Duration::ZERO, DeadlinePolicy::Start);
        assert!(!past.admits(None));
    }
}
