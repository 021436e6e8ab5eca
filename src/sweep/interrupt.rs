//! Ctrl-C: the first press stops new jobs, the second stops running ones. The handler can
//! only be installed once per process, so it only counts presses; the loop reads the count.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Ctrl-C presses seen by this process (the handler can only be installed once).
pub(super) static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

pub(super) fn install_interrupt_handler() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            INTERRUPTS.fetch_add(1, Ordering::SeqCst);
        });
    });
}
