//! A virtual X display of a test's own.
//!
//! Xvfb chooses a free display number itself (`-displayfd`) and writes it only once it accepts
//! connections. Choosing the number from the process id raced other displays and stale lock
//! files, and waiting for the socket file raced the server's start: a client started too early
//! could not open the display.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running Xvfb; killed on drop.
pub struct Xvfb {
    child: Child,
    /// The value for `DISPLAY`, for example `:3`.
    pub display: String,
}

impl Xvfb {
    /// Starts a display of `width`x`height` pixels, 24-bit colour, no TCP listener.
    pub fn start(width: u32, height: u32) -> Xvfb {
        let screen = format!("{width}x{height}x24");
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &screen,
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is needed (scripts/deps.sh installs it)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut number = String::new();
        // Xvfb writes the number when it is ready, or closes the pipe when it gives up.
        let read = BufReader::new(stdout).read_line(&mut number);
        let number = number.trim();
        if read.is_err() || number.is_empty() {
            let _ = child.kill();
            let status = child.wait();
            panic!("Xvfb did not start: {status:?}");
        }
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
