//! Live progress of a sweep: bars on a terminal, plain lines in a log file.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counts the display needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub failed: usize,
    pub left: usize,
}

pub enum Progress {
    Terminal { multi: MultiProgress, overall: ProgressBar, slots: Vec<ProgressBar> },
    Plain { started: Instant },
}

impl Progress {
    pub fn new(slots: usize, total: usize) -> Progress {
        if std::io::stdout().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template(
                    "{bar:30.green/dim} {pos}/{len} jobs  {msg}  [{elapsed_precise}, ETA {eta}]",
                )
                .expect("template"),
            );
            let slots = (0..slots)
                .map(|_| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {spinner} {msg}").expect("template"),
                    );
                    bar.enable_steady_tick(Duration::from_millis(250));
                    bar
                })
                .collect();
            Progress::Terminal { multi, overall, slots }
        } else {
            Progress::Plain { started: Instant::now() }
        }
    }

    /// A running job's line: its device, config, fold, epoch and current validation RMSE.
    pub fn slot(&self, slot: usize, text: &str) {
        if let Progress::Terminal { slots, .. } = self {
            slots[slot].set_message(text.to_string());
        }
    }

    pub fn counts(&self, c: Counts, eta: Option<Duration>) {
        if let Progress::Terminal { overall, .. } = self {
            overall.set_length(c.total as u64);
            overall.set_position((c.done + c.failed) as u64);
            let eta = eta.map_or(String::new(), |d| format!(", ETA {}", format_duration(d)));
            overall.set_message(format!(
                "done {} | running {} | failed {} | left {}{eta}",
                c.done, c.running, c.failed, c.left
            ));
        }
    }

    /// A line that stays: job finished, failed, retried; printed above the bars.
    pub fn event(&self, c: Counts, eta: Option<Duration>, text: &str) {
        match self {
            Progress::Terminal { multi, .. } => {
                let _ = multi.println(text);
                self.counts(c, eta);
            }
            Progress::Plain { started } => {
                let eta = eta.map_or(String::new(), |d| format!(" ETA {}", format_duration(d)));
                println!(
                    "[{:>7}] {text} | done {}/{} running {} failed {} left {}{eta}",
                    format_duration(started.elapsed()),
                    c.done,
                    c.total,
                    c.running,
                    c.failed,
                    c.left
                );
            }
        }
    }

    pub fn finish(&self) {
        if let Progress::Terminal { overall, slots, .. } = self {
            slots.iter().for_each(ProgressBar::finish_and_clear);
            overall.finish();
        }
    }
}

pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
