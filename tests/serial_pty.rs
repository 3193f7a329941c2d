#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The serial reader against real pseudo-terminals: `socat` links two ptys, the reader opens one
//! end and the test writes into the other as the scanner would. Killing socat is the unplug;
//! starting it again with the same link names is plugging the device back in.
//!
//! Needs `socat` on the PATH (`apt-get install -y socat`). Unix only.
#![cfg(unix)]

use loyalty_till::devices::framing::{DropReason, FramingConfig, Terminator};
use loyalty_till::devices::serial::{SerialReader, SerialSettings};
use loyalty_till::devices::{DeviceMessage, DeviceStatus};
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

mod common;
use common::{Socat, WAIT};

/// The scanner's end of the link.
fn scanner(socat: &Socat, baud: u32) -> Box<dyn serialport::SerialPort> {
    serialport::new(socat.b.to_string_lossy(), baud)
        .timeout(Duration::from_secs(2))
        .open()
        .unwrap()
}

fn settings(port: String, baud: u32, terminator: Terminator) -> SerialSettings {
    SerialSettings {
        port,
        baud,
        framing: FramingConfig {
            terminator,
            ..FramingConfig::default()
        },
        ..SerialSettings::default()
    }
}

/// The next message, or a failure after [`WAIT`].
fn next(rx: &Receiver<DeviceMessage>) -> DeviceMessage {
    match rx.recv_timeout(WAIT) {
        Ok(message) => message,
        Err(RecvTimeoutError::Timeout) => panic!("no message from the reader within {WAIT:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("the reader thread ended"),
    }
}

fn expect_status(rx: &Receiver<DeviceMessage>, expected: fn(&DeviceStatus) -> bool) -> DeviceStatus {
    match next(rx) {
        DeviceMessage::Status { status, .. } if expected(&status) => status,
        other => panic!("expected a status, got {other:?}"),
    }
}

fn expect_frame(rx: &Receiver<DeviceMessage>) -> Vec<u8> {
    match next(rx) {
        DeviceMessage::Frame { bytes, .. } => bytes,
        other => panic!("expected a frame, got {other:?}"),
    }
}

fn expect_noise(rx: &Receiver<DeviceMessage>) -> (usize, DropReason) {
    match next(rx) {
        DeviceMessage::Noise { dropped, reason, .. } => (dropped, reason),
        other => panic!("expected noise, got {other:?}"),
    }
}

fn expect_quiet(rx: &Receiver<DeviceMessage>, for_how_long: Duration) {
    if let Ok(message) = rx.recv_timeout(for_how_long) {
        panic!("expected nothing more, got {message:?}");
    }
}

/// A pty pair with a connected reader on `a` and the scanner's end open on `b`.
struct Rig {
    // Field order is drop order: the reader closes its port before socat goes.
    reader: Option<SerialReader>,
    rx: Receiver<DeviceMessage>,
    port: Box<dyn serialport::SerialPort>,
    socat: Socat,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start(baud: u32, terminator: Terminator) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let socat = Socat::start(dir.path());
        let (tx, rx) = sync_channel(64);
        let reader = SerialReader::spawn(settings(socat.a(), baud, terminator), tx).unwrap();
        assert_eq!(reader.source(), socat.a());
        // Writing before the reader has the port open would race its opening.
        expect_status(&rx, |s| *s == DeviceStatus::Connected);
        let port = scanner(&socat, baud);
        Rig {
            reader: Some(reader),
            rx,
            port,
            socat,
            _dir: dir,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).unwrap();
        self.port.flush().unwrap();
    }

    fn stop(&mut self) {
        let reader = self.reader.take().unwrap();
        let started = Instant::now();
        reader.stop();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "stop took {:?}",
            started.elapsed()
        );
    }
}

fn round_trip(terminator: Terminator, wire: &[u8], expected: &[&[u8]]) {
    let mut rig = Rig::start(9600, terminator);
    rig.write(wire);
    for frame in expected {
        assert_eq!(expect_frame(&rig.rx), *frame);
    }
    expect_quiet(&rig.rx, Duration::from_millis(300));
    rig.stop();
}

#[test]
fn cr_terminator() {
    // The LF of a CR LF pair must not make an empty read.
    round_trip(Terminator::Cr, b"CARD0001\rCARD0002\r\n", &[b"CARD0001", b"CARD0002"]);
}

#[test]
fn lf_terminator() {
    round_trip(Terminator::Lf, b"CARD0001\nCARD0002\r\n", &[b"CARD0001", b"CARD0002"]);
}

#[test]
fn cr_lf_terminator() {
    round_trip(
        Terminator::CrLf,
        b"CARD0001\r\nCARD0002\r\n",
        &[b"CARD0001", b"CARD0002"],
    );
}

#[test]
fn etx_terminator() {
    round_trip(
        Terminator::Etx,
        b"\x02CARD0001\x03\x02CARD0002\x03",
        &[b"CARD0001", b"CARD0002"],
    );
}

#[test]
fn idle_gap_terminator() {
    let mut rig = Rig::start(9600, Terminator::IdleGap);
    let started = Instant::now();
    rig.write(b"CARD0001");
    assert_eq!(expect_frame(&rig.rx), b"CARD0001");
    // The read ends with the 100 ms gap, not before.
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    rig.write(b"CARD");
    std::thread::sleep(Duration::from_millis(20));
    rig.write(b"0002");
    assert_eq!(expect_frame(&rig.rx), b"CARD0002");
    expect_quiet(&rig.rx, Duration::from_millis(300));
    rig.stop();
}

#[test]
fn a_read_split_across_writes_with_pauses_is_joined() {
    let mut rig = Rig::start(9600, Terminator::Cr);
    // Pauses longer than the idle gap: with a real terminator only the terminator ends a read.
    for part in [&b"GMB-"[..], b"0000", b"12", b"34\r"] {
        rig.write(part);
        std::thread::sleep(Duration::from_millis(150));
    }
    assert_eq!(expect_frame(&rig.rx), b"GMB-00001234");
    expect_quiet(&rig.rx, Duration::from_millis(300));
    rig.stop();
}

#[test]
fn garbage_before_a_read_is_dropped_and_counted() {
    let mut rig = Rig::start(9600, Terminator::Cr);
    rig.write(b"\x00\xff\x00\xfeCARD0001\r");
    assert_eq!(expect_noise(&rig.rx), (4, DropReason::Noise));
    assert_eq!(expect_frame(&rig.rx), b"CARD0001");
    rig.stop();
}

#[test]
fn a_ten_thousand_byte_line_is_dropped_and_the_next_read_arrives() {
    let mut rig = Rig::start(115_200, Terminator::Cr);
    let mut long = vec![b'9'; 10_000];
    long.push(b'\r');
    rig.write(&long);
    rig.write(b"CARD0001\r");
    assert_eq!(expect_noise(&rig.rx), (10_000, DropReason::TooLong));
    assert_eq!(expect_frame(&rig.rx), b"CARD0001");
    rig.stop();
}

#[test]
fn an_unfinished_read_is_dropped_as_incomplete() {
    let mut rig = Rig::start(9600, Terminator::Cr);
    rig.write(b"HALF");
    // 10 × the 100 ms gap is below the 2 s floor.
    assert_eq!(expect_noise(&rig.rx), (4, DropReason::Incomplete));
    rig.write(b"CARD0001\r");
    assert_eq!(expect_frame(&rig.rx), b"CARD0001");
    rig.stop();
}

#[test]
fn reads_at_9600_baud() {
    round_trip_at(9600);
}

#[test]
fn reads_at_115200_baud() {
    round_trip_at(115_200);
}

fn round_trip_at(baud: u32) {
    let mut rig = Rig::start(baud, Terminator::Cr);
    let code: Vec<u8> = (0..200).map(|i| b'A' + (i % 26) as u8).collect();
    let mut wire = code.clone();
    wire.push(b'\r');
    rig.write(&wire);
    assert_eq!(expect_frame(&rig.rx), code);
    rig.stop();
}

#[test]
fn seven_data_bits_even_parity_two_stop_bits_open_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let socat = Socat::start(dir.path());
    let (tx, rx) = sync_channel(64);
    let mut settings = settings(socat.a(), 9600, Terminator::Cr);
    settings.data_bits = 7;
    settings.parity = loyalty_till::devices::serial::Parity::Even;
    settings.stop_bits = 2;
    let reader = SerialReader::spawn(settings, tx).unwrap();
    expect_status(&rx, |s| *s == DeviceStatus::Connected);
    let mut port = scanner(&socat, 9600);
    port.write_all(b"CARD0001\r").unwrap();
    assert_eq!(expect_frame(&rx), b"CARD0001");
    reader.stop();
}

#[test]
fn frames_carry_the_port_name_and_the_time() {
    let mut rig = Rig::start(9600, Terminator::Cr);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    rig.write(b"CARD0001\r");
    match next(&rig.rx) {
        DeviceMessage::Frame {
            source, received_at_ms, ..
        } => {
            assert_eq!(source, rig.socat.a());
            assert!(received_at_ms >= before && received_at_ms < before + 5_000);
        }
        other => panic!("expected a frame, got {other:?}"),
    }
    rig.stop();
}

#[test]
fn unplug_and_replug_without_a_restart() {
    let mut rig = Rig::start(9600, Terminator::Cr);
    rig.write(b"BEFORE01\r");
    assert_eq!(expect_frame(&rig.rx), b"BEFORE01");
    // Half a read is on the wire when the cable goes.
    rig.write(b"HALF");
    std::thread::sleep(Duration::from_millis(200));

    rig.socat.unplug();
    assert_eq!(expect_noise(&rig.rx), (4, DropReason::Incomplete));
    let lost = expect_status(&rig.rx, |s| matches!(s, DeviceStatus::Lost(_)));
    assert!(matches!(lost, DeviceStatus::Lost(reason) if !reason.is_empty()));
    expect_status(&rig.rx, |s| *s == DeviceStatus::Reopening);
    // While the device is away the reader keeps trying, quietly.
    expect_quiet(&rig.rx, Duration::from_millis(1_200));

    let dir = rig.socat.a.parent().unwrap().to_path_buf();
    rig.socat = Socat::start(&dir);
    expect_status(&rig.rx, |s| *s == DeviceStatus::Connected);
    rig.port = scanner(&rig.socat, 9600);
    rig.write(b"AFTER001\r");
    assert_eq!(expect_frame(&rig.rx), b"AFTER001");
    assert!(rig.reader.as_ref().unwrap().is_running());
    rig.stop();
}

#[test]
fn a_missing_port_is_retried_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = sync_channel(64);
    let port = dir.path().join("a").to_string_lossy().into_owned();
    let reader = SerialReader::spawn(settings(port, 9600, Terminator::Cr), tx).unwrap();
    expect_status(&rx, |s| matches!(s, DeviceStatus::Lost(_)));
    expect_status(&rx, |s| *s == DeviceStatus::Reopening);
    let socat = Socat::start(dir.path());
    expect_status(&rx, |s| *s == DeviceStatus::Connected);
    let mut port = scanner(&socat, 9600);
    port.write_all(b"CARD0001\r").unwrap();
    assert_eq!(expect_frame(&rx), b"CARD0001");
    let started = Instant::now();
    reader.stop();
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn stop_is_prompt_while_reopening() {
    let (tx, rx) = sync_channel(64);
    let reader = SerialReader::spawn(settings("/nonexistent/tty".to_string(), 9600, Terminator::Cr), tx).unwrap();
    expect_status(&rx, |s| matches!(s, DeviceStatus::Lost(_)));
    let started = Instant::now();
    reader.stop();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        started.elapsed()
    );
}

#[test]
fn invalid_settings_are_refused_before_the_thread_starts() {
    let (tx, _rx) = sync_channel(1);
    let mut bad = settings("/dev/null".to_string(), 9600, Terminator::Cr);
    bad.data_bits = 9;
    let error = SerialReader::spawn(bad, tx).err().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn the_thread_ends_when_nobody_listens() {
    let (tx, rx) = sync_channel(1);
    drop(rx);
    let reader = SerialReader::spawn(settings("/nonexistent/tty".to_string(), 9600, Terminator::Cr), tx).unwrap();
    let deadline = Instant::now() + WAIT;
    while reader.is_running() {
        assert!(
            Instant::now() < deadline,
            "the reader kept running with nobody listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.stop();
}
