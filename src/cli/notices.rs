//! The library's notices on stderr. The library never prints: what a user should hear about
//! while it works (a fine-tuning's progress, a model reused from the cache, the fallback to the
//! CPU) it logs through the `log` facade, and this logger, installed first thing by
//! [`super::main`], writes each such record as one plain line. Records of other crates (burn,
//! the HTTP stack) are not foldsweep's to show and are dropped.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrNotices;

static NOTICES: StderrNotices = StderrNotices;

impl Log for StderrNotices {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Info && metadata.target().starts_with("foldsweep")
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            eprintln!("{}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the stderr logger; a second call (another logger already set) changes nothing.
pub(super) fn install() {
    if log::set_logger(&NOTICES).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}
