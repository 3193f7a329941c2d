#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // Shared by several test binaries.
//! Test helpers shared by the serial tests: a `socat` pseudo-terminal pair.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every wait is bounded, so that a broken reader fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running socat linking `a` (the reader's side) and `b` (the scanner's side). Killed on drop.
pub struct Socat {
    child: Option<Child>,
    pub a: PathBuf,
    pub b: PathBuf,
}

impl Socat {
    pub fn start(dir: &Path) -> Socat {
        let a = dir.join("a");
        let b = dir.join("b");
        // Links left behind by a killed socat would be taken for the new ones.
        let _ = std::fs::remove_file(&a);
        let _ = std::fs::remove_file(&b);
        let child = Command::new("socat")
            .arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat must be installed: apt-get install -y socat");
        let socat = Socat {
            child: Some(child),
            a,
            b,
        };
        let deadline = Instant::now() + WAIT;
        while !(socat.a.exists() && socat.b.exists()) {
            assert!(Instant::now() < deadline, "socat did not create its ptys");
            std::thread::sleep(Duration::from_millis(10));
        }
        socat
    }

    /// The unplug: socat ends (SIGTERM, so it removes its links) and both ptys hang up.
    pub fn unplug(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(status.success());
            let deadline = Instant::now() + WAIT;
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    pub fn a(&self) -> String {
        self.a.to_string_lossy().into_owned()
    }
}

impl Drop for Socat {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
