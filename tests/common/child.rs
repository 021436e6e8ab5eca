//! Background `foldsweep` processes: signals, their stdout line by line, and waits that end
//! on an observable state or a deadline (never on a bare sleep).

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sends SIGINT (Ctrl-C) to a child process.
pub fn interrupt(child: &Child) {
    // SAFETY: sends SIGINT to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
}

/// Waits for the child to exit, killing it (and failing) after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `done` every 50 ms; fails (killing the child) after `limit` or when it exits first.
pub fn wait_until(child: &mut Child, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the process exited ({status}) before: {what}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("not within {limit:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child's stdout, read line by line on a thread of its own (so the pipe never fills).
pub struct StdoutLines {
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl StdoutLines {
    /// Takes the child's piped stdout.
    pub fn of(child: &mut Child) -> StdoutLines {
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        StdoutLines { lines, reader: Some(reader), seen: Vec::new() }
    }

    /// Waits until a line contains `needle`; fails (killing the child) after `limit`.
    pub fn wait_for(&mut self, child: &mut Child, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.seen.iter().any(|l| l.contains(needle)) {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("no line with {needle:?} within {limit:?}:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    /// Every line, once the child has exited.
    pub fn finish(mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.seen.extend(self.lines.try_iter());
        self.seen
    }
}
