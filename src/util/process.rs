//! What a coordinator knows about processes and this machine: the time, the host name, and
//! whether a pid still belongs to the process that recorded it (pids are reused).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as the store records times.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}

/// This machine's host name (`localhost` when it cannot be read).
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

/// Whether the coordinator that claimed a job still runs: its pid is alive and, when the
/// claim recorded one, started at the same time (otherwise the pid was reused).
pub fn owner_running(pid: i64, owner_start: Option<i64>) -> bool {
    process_alive(pid)
        && match owner_start {
            Some(start) => process_start_time(pid) == Some(start),
            // Claimed without a start time (a schema 1 file, or no /proc): the pid alone.
            None => true,
        }
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

/// The fields of /proc/<pid>/stat after the command name (which may hold spaces and ')').
fn proc_stat_fields(pid: i64) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn is_zombie(pid: i64) -> bool {
    proc_stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z"))
}

/// A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat; the
/// fields after the name start at field 3). None where /proc is not available.
pub fn process_start_time(pid: i64) -> Option<i64> {
    proc_stat_fields(pid)?.get(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_start_time_is_read_from_proc() {
        let start = process_start_time(std::process::id() as i64);
        assert!(start.is_some_and(|s| s > 0), "{start:?}");
        assert!(owner_running(std::process::id() as i64, start));
        assert!(!owner_running(std::process::id() as i64, start.map(|s| s + 1)));
    }
}
