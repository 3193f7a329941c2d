//! The till's real window under Xvfb waiting on the add-guest screen (most of a till's day), with
//! the focus and a digit typed in the code field, or without the focus (the POS beside it has it):
//! it draws no frame. A blinking cursor redrew the whole window twice a second (2.7 % of a core at
//! idle); asking for the field's focus in every frame while the window had none restarted the input
//! method every time, and its answer woke the next frame (~50 frames a second, three quarters of a
//! core). Frames are counted from the till's own log (`frames` at trace level: one line per frame).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// A process killed on drop: the virtual display or the till.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn xdotool(display: &str, args: &[&str]) -> String {
    let output = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("xdotool is needed (scripts/deps.sh installs it)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Frames logged so far in the till's log files under `data`.
fn frames(data: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(data.join("logs")) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .map(|text| text.lines().filter(|line| line.contains("frames: frame")).count())
        .sum()
}

/// Frames the till draws in 4 s of idle on the add-guest screen, after 2 s to settle; with
/// `focused`, xdotool first focuses the window and types a digit.
fn idle_frames(focused: bool) -> usize {
    let xvfb = common::xvfb::Xvfb::start(1280, 1024);
    let display = xvfb.display.clone();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("till.log");
    let _till = Killed(
        Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
            .args(["--demo", "--data-dir"])
            .arg(dir.path())
            .args([
                "--scenario",
                "add-guest",
                "--layout",
                "side-panel",
                "--window-size",
                "420x700",
            ])
            .env("DISPLAY", &display)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("LOYALTY_TILL_LOG", "info,frames=trace")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("till.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let reached = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(dir.path().join("till.err")).unwrap_or_default();
        text.contains("scenario add-guest reached screen add-guest")
    };
    while !reached() {
        assert!(started.elapsed() < WAIT, "the till never reached the add-guest screen");
        std::thread::sleep(Duration::from_millis(50));
    }
    if focused {
        let window = xdotool(&display, &["search", "--name", "GetMeBack"]);
        let window = window.lines().next().expect("the till's window").to_string();
        xdotool(&display, &["windowfocus", "--sync", &window]);
        // A person's digit: the field shows it and its cursor.
        xdotool(&display, &["type", "--delay", "120", "1"]);
    }
    std::thread::sleep(Duration::from_secs(2));
    let before = frames(dir.path());
    assert!(before > 0, "the till logs its frames");
    std::thread::sleep(Duration::from_secs(4));
    frames(dir.path()) - before
}

#[test]
fn the_focused_add_guest_screen_draws_no_frame_at_idle() {
    let drawn = idle_frames(true);
    assert!(drawn <= 1, "{drawn} frames drawn in 4 s of idle");
}

/// Without the focus (a bare Xvfb has no window manager to give it), the old code drew ~50
/// frames a second in about three starts of four.
#[test]
fn the_unfocused_add_guest_screen_draws_no_frame_at_idle() {
    let drawn = idle_frames(false);
    assert!(drawn <= 1, "{drawn} frames drawn in 4 s of idle");
}
