//! The till's start-up, step by step: each step's time since the process began goes to the log
//! (`startup` lines, once the log is open) and, with `--trace-startup`, to stderr, so that what
//! delays the first frame is measured rather than guessed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

static BEGAN: OnceLock<Instant> = OnceLock::new();
static PRINT: AtomicBool = AtomicBool::new(false);
/// Steps taken before the log was open, written to it by [`log_opened`].
static EARLY: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());
static LOG_OPEN: AtomicBool = AtomicBool::new(false);

/// The process began now; `print`: every step also goes to stderr.
pub fn begin(print: bool) {
    BEGAN.get_or_init(Instant::now);
    PRINT.store(print, Ordering::Relaxed);
}

/// Whether the command line asks for the trace on stderr (read before the arguments are parsed,
/// so that parsing is timed too).
pub fn asked_for(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter().any(|arg| arg == "--trace-startup")
}

/// Milliseconds since [`begin`].
fn elapsed_ms() -> f64 {
    BEGAN.get().map_or(0.0, |began| began.elapsed().as_secs_f64() * 1000.0)
}

/// One step of the start-up is done.
pub fn step(name: &'static str) {
    if BEGAN.get().is_none() {
        return;
    }
    let at = elapsed_ms();
    if PRINT.load(Ordering::Relaxed) {
        eprintln!("startup {at:8.1} ms  {name}");
    }
    if LOG_OPEN.load(Ordering::Relaxed) {
        tracing::info!(step = name, at_ms = format!("{at:.1}"), "startup");
    } else if let Ok(mut early) = EARLY.lock() {
        early.push((name, at));
    }
}

/// The log is open: the steps taken before it go there now.
pub fn log_opened() {
    LOG_OPEN.store(true, Ordering::Relaxed);
    let early = EARLY.lock().map(|mut e| std::mem::take(&mut *e)).unwrap_or_default();
    for (name, at) in early {
        tracing::info!(step = name, at_ms = format!("{at:.1}"), "startup");
    }
}

/// Whether the first frame is laid out, and the waiters woken when it is.
static FIRST_FRAME: Mutex<bool> = Mutex::new(false);
static LAID_OUT: Condvar = Condvar::new();

/// The longest [`wait_for_first_frame`] waits for a first frame that does not come (a window
/// that starts hidden lays nothing out).
const FIRST_FRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Blocks until the first frame is laid out, at the latest [`FIRST_FRAME_WAIT`] from now; at once
/// in a process that is not the till's window (tests: [`begin`] was not called). What the window
/// does not need (the ledger, and the servers that share its file) then does not take the cores
/// from the window and GL context being made. For the servers alone, measured here under Xvfb,
/// the window and context took 52–88 ms (median 63) with them started before, 54–70 ms (median
/// 58.5) after.
pub fn wait_for_first_frame() {
    if BEGAN.get().is_none() {
        return;
    }
    // A poisoned lock only means a panic elsewhere: waiting on would gain nothing.
    let Ok(laid_out) = FIRST_FRAME.lock() else {
        return;
    };
    let _ = LAID_OUT.wait_timeout_while(laid_out, FIRST_FRAME_WAIT, |laid_out| !*laid_out);
}

/// With `--trace-startup`, the wall-clock time of a step, for scripts/till-bench.sh, which knows
/// when it launched the process (the minimal window it compares with prints the same lines).
fn print_epoch(what: &str) {
    if PRINT.load(Ordering::Relaxed) {
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        eprintln!("startup {what} at epoch {epoch_ms:.1} ms");
    }
}

/// eframe made the window and its GL context and now builds the app.
pub fn window_created() {
    step("window and GL context created");
    print_epoch("window and GL context created");
}

/// A frame was laid out; the first one ends the start-up.
pub fn first_frame() {
    let Ok(mut laid_out) = FIRST_FRAME.lock() else {
        return;
    };
    if !*laid_out {
        *laid_out = true;
        drop(laid_out);
        step("first frame laid out");
        print_epoch("first frame laid out");
        LAID_OUT.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_found_among_the_arguments() {
        let args = |list: &[&str]| {
            list.iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert!(asked_for(args(&["loyalty-till", "--demo", "--trace-startup"])));
        assert!(!asked_for(args(&["loyalty-till", "--demo"])));
        assert!(!asked_for(args(&["loyalty-till", "--trace-startup-not"])));
    }

    /// The ledger's opening waits for the first frame, and goes on as soon as it is laid out.
    #[test]
    fn a_wait_for_the_first_frame_ends_with_it() {
        begin(false);
        let (done, returned) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("waits-for-the-first-frame".to_string())
            .spawn(move || {
                wait_for_first_frame();
                let _ = done.send(());
            })
            .unwrap();
        assert!(
            returned.recv_timeout(std::time::Duration::from_millis(200)).is_err(),
            "the wait ended before any frame"
        );
        first_frame();
        returned
            .recv_timeout(std::time::Duration::from_millis(1_000))
            .expect("the wait ends with the first frame, well before the 2 s fallback");
        // Once the first frame is out, nothing waits.
        let began = Instant::now();
        wait_for_first_frame();
        assert!(began.elapsed() < std::time::Duration::from_millis(500));
    }
}
