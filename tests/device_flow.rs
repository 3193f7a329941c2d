#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
//! A serial scanner on a real pseudo-terminal, read by the real app: bytes written to the
//! scanner's end become the guest card on screen, and unreadable reads become a message.
#![cfg(unix)]

mod common;

use common::{Socat, WAIT};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use loyalty_till::config::Config;
use loyalty_till::devices::serial::SerialSettings;
use loyalty_till::scan::payload::sign_guest_token;
use loyalty_till::ui::TillApp;
use loyalty_till::workflow::{Event, Screen, State};
use std::io::Write;
use std::time::{Duration, Instant};

struct Till {
    harness: Harness<'static, TillApp>,
    socat: Socat,
    scanner: Box<dyn serialport::SerialPort>,
    _dir: tempfile::TempDir,
}

fn till_with_scanner() -> Till {
    let dir = tempfile::tempdir().unwrap();
    let socat = Socat::start(dir.path());
    let config = Config {
        serial_devices: vec![SerialSettings {
            port: socat.a(),
            baud: 115_200,
            ..SerialSettings::default()
        }],
        ..Config::default()
    };
    let harness = common::open_demo_app(dir.path(), config, (1024.0, 1400.0));
    let scanner = serialport::new(socat.b.to_string_lossy(), 115_200)
        .timeout(Duration::from_secs(2))
        .open()
        .unwrap();
    Till {
        harness,
        socat,
        scanner,
        _dir: dir,
    }
}

impl Till {
    fn state(&self) -> &State {
        self.harness.state().state()
    }

    fn wait_for(&mut self, what: &str, done: impl Fn(&State) -> bool) {
        common::step_until(&mut self.harness, WAIT, what, done);
    }

    fn scan(&mut self, bytes: &[u8]) {
        self.scanner.write_all(bytes).unwrap();
        self.scanner.flush().unwrap();
    }
}

#[test]
fn a_scanned_code_shows_the_guest_and_garbage_shows_a_message() {
    let mut till = till_with_scanner();
    till.scan(b"\x00\xff\x00100001\r");
    till.wait_for("the guest from the scanner", |s| s.guest.is_some());
    assert_eq!(till.state().screen, Screen::Guest);
    assert!(
        till.harness
            .query_all_by_label_contains("Анна Смирнова")
            .next()
            .is_some()
    );

    // A second guest scanned while one is attached asks first.
    till.scan(b"100002\r");
    till.wait_for("the replace question", |s| {
        matches!(s.screen, Screen::ConfirmReplace { .. })
    });
    till.harness.state_mut().dispatch(Event::ReplaceGuest(false));

    // A forged app token: refused with a message, the guest stays.
    let forged = sign_guest_token(b"not-the-programme-key", "100002", now());
    till.scan(format!("{forged}\r").as_bytes());
    till.wait_for("the forged-token message", |s| {
        s.notice.as_ref().is_some_and(|n| n.key == "err-qr-forged")
    });
    assert_eq!(
        till.state().guest.as_ref().map(|g| g.name.as_str()),
        Some("Анна Смирнова")
    );

    // A half swipe: swipe again.
    till.scan(b"%B4111111111111111^DOE/J\r");
    till.wait_for("the swipe-again message", |s| {
        s.notice.as_ref().is_some_and(|n| n.key == "err-swipe-again")
    });
    till.socat.unplug();
}

#[test]
fn a_signed_app_token_identifies_the_guest() {
    let mut till = till_with_scanner();
    let token = sign_guest_token(b"demo-programme-secret", "GMB-00005678", now());
    till.scan(format!("{token}\r\n").as_bytes());
    till.wait_for("Иван from his app QR", |s| s.guest.is_some());
    assert_eq!(
        till.state().guest.as_ref().map(|g| g.name.as_str()),
        Some("Иван Петров")
    );
}

/// Scan to guest shown: bytes written to the pty until the guest card is in the app state,
/// over many scans. Run with `cargo test --release --test device_flow -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: prints figures, run on purpose"]
fn bench_scan_to_guest_card() {
    let mut till = till_with_scanner();
    let scans: usize = std::env::var("SCANS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut times = Vec::with_capacity(scans);
    for _ in 0..scans {
        // Мария's VIP group has no daily limit on identifications.
        let started = Instant::now();
        till.scan(b"100003\r");
        till.wait_for("the guest", |s| s.guest.is_some());
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        till.harness.state_mut().dispatch(Event::RemoveGuest);
        till.harness.step();
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "scan-to-guest over {scans} scans: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.99),
        times[times.len() - 1]
    );
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
