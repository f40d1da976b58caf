//! Termination signals while reading a recording. Left to their default, SIGINT (from `kill`:
//! in raw mode Ctrl-C is a key) or SIGTERM would end `top` with the terminal still raw and in
//! the alternate screen. Live tracing installs its own handlers, which end the stream with a
//! summary that `top` quits on; so these are for the other inputs only.
//!
//! SIGHUP keeps its default: the terminal is gone, there is nothing to restore, and crossterm
//! would spin reading the hung-up tty instead of returning to the loop that checks the flag.
use std::sync::atomic::{AtomicBool, Ordering};

static RECEIVED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    RECEIVED.store(true, Ordering::Relaxed);
}

pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
}

/// One of them arrived: time to restore the terminal and quit.
pub fn received() -> bool {
    RECEIVED.load(Ordering::Relaxed)
}
