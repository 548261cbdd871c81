//! Graceful interrupts: SIGINT (Ctrl-C) and SIGTERM (a Slurm time limit) ask the training loop
//! to finish its current step, write a checkpoint and stop with [`TrainError::Interrupted`];
//! a second SIGINT / SIGTERM ends the process at once (exit 130 / 143).
//!
//! A library does not take signals on its own: the program calls [`install`] once (the CLI
//! does). [`request`] asks for the same stop without a signal (tests, embedding programs).
//!
//! [`TrainError::Interrupted`]: crate::TrainError::Interrupted

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// SIGINT's number, as the exit status 128 + signal counts it.
pub const SIGINT: i32 = 2;
/// SIGTERM's number.
pub const SIGTERM: i32 = 15;

/// The signal that asked to stop, 0 while none has (shared with the signal handlers).
fn cell() -> &'static Arc<AtomicUsize> {
    static REQUESTED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    REQUESTED.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// The signal that asked training to stop, if one has.
pub fn requested() -> Option<i32> {
    match cell().load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal as i32),
    }
}

/// Ask training to stop after its current step, as `signal` would.
pub fn request(signal: i32) {
    cell().store(signal as usize, Ordering::SeqCst);
}

/// Forget a request (before another run in the same process).
pub fn clear() {
    cell().store(0, Ordering::SeqCst);
}

/// The conventional exit status after `signal`: 130 for SIGINT, 143 for SIGTERM.
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// The signal's name for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Route SIGINT and SIGTERM to [`requested`]; a second one ends the process at once. On
/// platforms without Unix signals this does nothing (Ctrl-C then ends the process).
#[cfg(unix)]
pub fn install() -> std::io::Result<()> {
    use std::sync::atomic::AtomicBool;
    let seen = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so that it sees the state before this signal's own handlers.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            exit_code(signal),
            Arc::clone(&seen),
        )?;
        signal_hook::flag::register(signal, Arc::clone(&seen))?;
        signal_hook::flag::register_usize(signal, Arc::clone(cell()), signal as usize)?;
    }
    Ok(())
}

/// Without Unix signals there is nothing to install.
#[cfg(not(unix))]
pub fn install() -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only test of this crate's unit tests that touches the request: nothing here trains.
    #[test]
    fn a_request_is_seen_until_cleared_and_gives_the_conventional_status() {
        assert_eq!(requested(), None);
        request(SIGTERM);
        assert_eq!(requested(), Some(SIGTERM));
        assert_eq!((name(SIGTERM), exit_code(SIGTERM)), ("SIGTERM", 143));
        clear();
        assert_eq!(requested(), None);
        assert_eq!((name(SIGINT), exit_code(SIGINT)), ("SIGINT", 130));
    }
}
