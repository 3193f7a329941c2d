#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // Shared by several test binaries.
//! Test helpers shared by several test binaries: a `socat` pseudo-terminal pair, stepping the
//! real app until its state says so, and a reproducible random number generator.

pub mod hid_fixture;
pub mod till;
pub mod xvfb;

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

/// Steps the app until `done` holds for its state; fails after `limit` with the state shown.
/// The background worker answers on its own thread, hence the short sleeps between steps.
pub fn step_until(
    harness: &mut egui_kittest::Harness<'static, loyalty_till::ui::TillApp>,
    limit: Duration,
    what: &str,
    done: impl Fn(&loyalty_till::workflow::State) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        harness.step();
        if done(harness.state().state()) {
            harness.step();
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; state: {:#?}",
            harness.state().state()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// xorshift64: reproducible from its seed, so a failure can be replayed; no extra crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`, in the caller's integer type.
    pub fn below<T>(&mut self, n: T) -> T
    where
        T: TryInto<u64> + TryFrom<u64>,
    {
        let n: u64 = n.try_into().ok().expect("a positive bound");
        T::try_from(self.next() % n).ok().expect("below the bound")
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

/// The real app on a fresh demo database in `dir`, stepped until the ledger is open. Its HID bus
/// is an empty scripted one, so a test never reads a device plugged into the machine.
pub fn open_demo_app(
    dir: &Path,
    config: loyalty_till::config::Config,
    size: (f32, f32),
) -> egui_kittest::Harness<'static, loyalty_till::ui::TillApp> {
    open_demo_app_with(
        dir,
        config,
        size,
        loyalty_till::devices::hid::reader::ScriptedHidBus::new(),
        None,
    )
}

/// [`open_demo_app`] reading the HID devices of `bus` and, when given, this clipboard.
pub fn open_demo_app_with(
    dir: &Path,
    config: loyalty_till::config::Config,
    size: (f32, f32),
    bus: loyalty_till::devices::hid::reader::ScriptedHidBus,
    clipboard: Option<loyalty_till::ui::paste::ClipboardSource>,
) -> egui_kittest::Harness<'static, loyalty_till::ui::TillApp> {
    let hid_bus: loyalty_till::app::HidBusFactory =
        std::sync::Arc::new(move || Ok(Box::new(bus.clone()) as Box<dyn loyalty_till::devices::hid::bus::HidBus>));
    let options = loyalty_till::app::AppOptions {
        paths: loyalty_till::config::Paths::resolve(Some(dir)).expect("paths"),
        demo: true,
        config,
        config_file: None,
        scenario: None,
        clock: Box::new(loyalty_till::backend::SystemClock),
        hid_bus: Some(hid_bus),
        clipboard,
        after_ledger: None,
    };
    let mut harness = egui_kittest::Harness::builder()
        .with_size(egui::vec2(size.0, size.1))
        .with_max_steps(100_000)
        .build_eframe(move |cc| loyalty_till::app::start(&cc.egui_ctx, options).expect("app starts"));
    step_until(&mut harness, WAIT, "the demo ledger to open", |s| {
        matches!(s.backend, loyalty_till::workflow::BackendStatus::Ready(_))
    });
    harness
}
