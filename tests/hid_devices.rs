//! HID POS scanners and card readers read in the background: devices plugged in at start and
//! later, unplugged and plugged in again, refused, malformed and ignored, on a scripted bus that
//! stands in for hidapi, with report descriptors and reports from tests/fixtures/hid. Then the
//! real app: a HID scan identifies the guest.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::WAIT;
use common::hid_fixture::{honeywell_info as info, load};
use loyalty_till::config::Config;
use loyalty_till::devices::framing::DropReason;
use loyalty_till::devices::hid::bus::{HidBus, HidDeviceSettings, HidRole, HidSettings};
use loyalty_till::devices::hid::reader::{HidReaders, HidWatchSettings, ScriptedHidBus};
use loyalty_till::devices::{DeviceMessage, DeviceStatus};
use loyalty_till::scan::magstripe::{IdentifyField, parse_swipe};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Duration;

const SCANNER: &str = "/dev/hidraw-scanner";
const READER: &str = "/dev/hidraw-msr";

/// The watcher's bus maker for a scripted bus.
fn scripted(bus: &ScriptedHidBus) -> impl FnOnce() -> Result<Box<dyn HidBus>, String> + Send + 'static {
    let bus = bus.clone();
    move || Ok(Box::new(bus) as Box<dyn HidBus>)
}

fn quick() -> HidWatchSettings {
    HidWatchSettings {
        poll: Duration::from_millis(20),
        retry_open: Duration::from_millis(150),
        read_timeout_ms: 10,
    }
}

fn watch(bus: &ScriptedHidBus, settings: HidSettings) -> (HidReaders, Receiver<DeviceMessage>) {
    let (tx, rx) = sync_channel(64);
    let readers = HidReaders::spawn(scripted(bus), settings, quick(), tx).unwrap();
    (readers, rx)
}

fn next(rx: &Receiver<DeviceMessage>) -> DeviceMessage {
    rx.recv_timeout(WAIT).expect("a message from the HID reader")
}

fn expect_status(rx: &Receiver<DeviceMessage>, want: fn(&DeviceStatus) -> bool) -> (String, DeviceStatus) {
    match next(rx) {
        DeviceMessage::Status { source, status } if want(&status) => (source, status),
        other => panic!("expected a status, got {other:?}"),
    }
}

/// A Honeywell-layout report: ID 2, count, AIM, 56 data bytes, code ID, reserved, flags.
fn honeywell(aim: &[u8; 3], data: &[u8], continued: bool) -> Vec<u8> {
    let mut report = vec![0x02, data.len() as u8];
    report.extend_from_slice(aim);
    report.extend_from_slice(data);
    report.resize(61, 0);
    report.extend_from_slice(&[0x73, 0x00, u8::from(continued)]);
    report
}

#[test]
fn a_scanner_plugged_in_later_is_read_with_its_symbology() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let bus = ScriptedHidBus::new();
    let (_readers, rx) = watch(&bus, HidSettings::default());
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing plugged in, nothing said"
    );

    bus.plug(info(SCANNER, 0x8C, "Voyager 1400g"), fixture.descriptor.clone());
    let (source, _) = expect_status(&rx, |s| *s == DeviceStatus::Connected);
    assert_eq!(source, "Voyager 1400g (HID 0C2E:0B61)");
    bus.send_report(SCANNER, fixture.report("qr part 1"));
    bus.send_report(SCANNER, fixture.report("other report id"));
    bus.send_report(SCANNER, fixture.report("qr part 2"));
    match next(&rx) {
        DeviceMessage::Frame {
            source,
            bytes,
            symbology,
            ..
        } => {
            assert_eq!(source, "Voyager 1400g (HID 0C2E:0B61)");
            assert!(
                bytes.starts_with(b"https://example.org/guest/GMB-00001234?t="),
                "joined over two reports"
            );
            assert!(bytes.ends_with(b"-long-token"));
            assert_eq!(symbology.as_deref(), Some("QR Code"));
        }
        other => panic!("expected the joined QR, got {other:?}"),
    }
    bus.send_report(SCANNER, fixture.report("ean13"));
    match next(&rx) {
        DeviceMessage::Frame { symbology, .. } => assert_eq!(symbology.as_deref(), Some("EAN-13")),
        other => panic!("expected the EAN-13, got {other:?}"),
    }
    assert_eq!(bus.opens(), 1, "one reader per device");
}

#[test]
fn unplug_and_plug_in_again_without_a_restart() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let bus = ScriptedHidBus::new();
    bus.plug(info(SCANNER, 0x8C, "Voyager"), fixture.descriptor.clone());
    let (_readers, rx) = watch(&bus, HidSettings::default());
    expect_status(&rx, |s| *s == DeviceStatus::Connected);

    // Unplugged in the middle of a continued code: the half is dropped, never delivered.
    bus.send_report(SCANNER, &honeywell(b"]Q1", b"GMB-0000", true));
    std::thread::sleep(Duration::from_millis(50));
    bus.unplug(SCANNER);
    let (_, lost) = expect_status(&rx, |s| matches!(s, DeviceStatus::Lost(_)));
    assert_eq!(lost, DeviceStatus::Lost("device disconnected".to_string()));

    bus.plug(info(SCANNER, 0x8C, "Voyager"), fixture.descriptor.clone());
    expect_status(&rx, |s| *s == DeviceStatus::Connected);
    bus.send_report(SCANNER, &honeywell(b"]E0", b"2000000000015", false));
    match next(&rx) {
        DeviceMessage::Frame { bytes, .. } => assert_eq!(bytes, b"2000000000015"),
        other => panic!("expected the read after replugging, got {other:?}"),
    }
    assert_eq!(bus.opens(), 2);
}

#[test]
fn a_device_that_will_not_open_is_tried_again() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let bus = ScriptedHidBus::new();
    bus.refuse_open(SCANNER, "Permission denied");
    bus.plug(info(SCANNER, 0x8C, "Voyager"), fixture.descriptor.clone());
    let (_readers, rx) = watch(&bus, HidSettings::default());
    let (_, status) = expect_status(&rx, |s| matches!(s, DeviceStatus::Lost(_)));
    assert_eq!(status, DeviceStatus::Lost("Permission denied".to_string()));
    // Not tried at every listing: within the retry period nothing more is said.
    assert!(rx.recv_timeout(Duration::from_millis(80)).is_err());
    bus.allow_open(SCANNER);
    expect_status(&rx, |s| *s == DeviceStatus::Connected);
}

#[test]
fn a_malformed_report_is_dropped_and_the_next_read_works() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let bus = ScriptedHidBus::new();
    bus.plug(info(SCANNER, 0x8C, "Voyager"), fixture.descriptor.clone());
    let (_readers, rx) = watch(&bus, HidSettings::default());
    expect_status(&rx, |s| *s == DeviceStatus::Connected);
    bus.send_report(SCANNER, &[0x02, 0x05, 0x5D]);
    match next(&rx) {
        DeviceMessage::Noise { dropped, reason, .. } => {
            assert_eq!(dropped, 3);
            assert_eq!(reason, DropReason::BadReport);
        }
        other => panic!("expected the short report dropped, got {other:?}"),
    }
    bus.send_report(SCANNER, &honeywell(b"]C0", b"100001", false));
    match next(&rx) {
        DeviceMessage::Frame { bytes, symbology, .. } => {
            assert_eq!(bytes, b"100001");
            assert_eq!(symbology.as_deref(), Some("Code 128"));
        }
        other => panic!("expected a read, got {other:?}"),
    }
}

#[test]
fn a_card_reader_swipe_becomes_track_text() {
    let fixture = load("spec_msr_magtek_layout.hex");
    let bus = ScriptedHidBus::new();
    bus.plug(info(READER, 0x8E, "Card reader"), fixture.descriptor.clone());
    let (_readers, rx) = watch(&bus, HidSettings::default());
    expect_status(&rx, |s| *s == DeviceStatus::Connected);
    bus.send_report(READER, fixture.report("tracks 1 and 2 without sentinels"));
    let bytes = match next(&rx) {
        DeviceMessage::Frame { bytes, symbology, .. } => {
            assert_eq!(symbology, None);
            bytes
        }
        other => panic!("expected a swipe, got {other:?}"),
    };
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with('%') && text.contains(";"), "sentinels added");
    let swipe = parse_swipe(&text, 2511).unwrap();
    assert_eq!(swipe.identifier(IdentifyField::Track2Pan).unwrap(), "4111111111111111");
}

#[test]
fn only_pos_devices_and_listed_roles_are_opened() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let bus = ScriptedHidBus::new();
    // A keyboard (page 1) and a vendor-page device: not POS, not listed, never opened.
    bus.plug(
        info("/dev/hidraw-keyboard", 0x01, "Keyboard"),
        fixture.descriptor.clone(),
    );
    bus.plug(info("/dev/hidraw-vendor", 0xFF00, "Vendor"), fixture.descriptor.clone());
    // A POS scanner the owner marked "ignore".
    let mut ignored = info(SCANNER, 0x8C, "Voyager");
    ignored.product_id = 0x0C01;
    bus.plug(ignored, fixture.descriptor.clone());
    let settings = HidSettings {
        pick_up_pos_devices: true,
        devices: vec![
            HidDeviceSettings {
                vendor_id: 0x0C2E,
                product_id: 0x0C01,
                role: HidRole::Ignore,
                ..HidDeviceSettings::default()
            },
            // A vendor-page device the owner says is a scanner; its descriptor is not a POS
            // scanner's, so it is refused with the reason.
            HidDeviceSettings {
                vendor_id: 0x0C2E,
                product_id: 0x0B61,
                serial: "17123".into(),
                role: HidRole::CardReader,
                label: "Ридер у кассы".into(),
            },
        ],
    };
    let (tx, rx) = sync_channel(64);
    let slow_retry = HidWatchSettings {
        retry_open: Duration::from_secs(60),
        ..quick()
    };
    let _readers = HidReaders::spawn(scripted(&bus), settings, slow_retry, tx).unwrap();
    // Both the keyboard and the vendor device match the listed card reader by VID/PID/serial:
    // each is opened and refused for its descriptor.
    for _ in 0..2 {
        let (source, status) = expect_status(&rx, |s| matches!(s, DeviceStatus::Lost(_)));
        assert_eq!(source, "Ридер у кассы");
        let DeviceStatus::Lost(reason) = status else {
            unreachable!()
        };
        assert!(reason.starts_with("not a HID POS card reader"), "{reason}");
    }
    // The unusable devices are not opened again at every listing, and the ignored scanner never.
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing more opened"
    );
    assert_eq!(bus.opens(), 2);
}

#[test]
fn a_bad_descriptor_is_reported_not_read() {
    let bus = ScriptedHidBus::new();
    bus.plug(info(SCANNER, 0x8C, "Broken"), vec![0x05, 0x8C, 0x09]);
    let (_readers, rx) = watch(&bus, HidSettings::default());
    let (_, status) = expect_status(&rx, |s| matches!(s, DeviceStatus::Lost(_)));
    let DeviceStatus::Lost(reason) = status else {
        unreachable!()
    };
    assert!(reason.starts_with("report descriptor:"), "{reason}");
}

#[test]
fn dropping_the_readers_stops_every_thread() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let bus = ScriptedHidBus::new();
    bus.plug(info(SCANNER, 0x8C, "Voyager"), fixture.descriptor.clone());
    let (readers, rx) = watch(&bus, HidSettings::default());
    expect_status(&rx, |s| *s == DeviceStatus::Connected);
    drop(readers);
    // Every sender is gone once the watcher and its reader have ended.
    loop {
        match rx.recv_timeout(WAIT) {
            Ok(_) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("threads still running: {e}"),
        }
    }
}

/// The real app: a HID scanner's code identifies the guest, and the event says where it came
/// from and in which symbology.
#[test]
fn a_hid_scan_identifies_the_guest_in_the_app() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let dir = tempfile::tempdir().unwrap();
    let bus = ScriptedHidBus::new();
    let mut harness = common::open_demo_app_with(dir.path(), Config::default(), (1024.0, 1400.0), bus.clone(), None);
    bus.plug(info(SCANNER, 0x8C, "Voyager"), fixture.descriptor.clone());
    bus.send_report(SCANNER, &honeywell(b"]E0", b"2000000000015", false));
    common::step_until(&mut harness, WAIT, "the guest from the HID scan", |s| s.guest.is_some());
    let state = harness.state().state();
    assert_eq!(state.guest.as_ref().unwrap().name, "Анна Смирнова");
    let statuses = &harness.state().device_statuses();
    assert_eq!(
        statuses.get("Voyager (HID 0C2E:0B61)"),
        Some(&DeviceStatus::Connected),
        "{statuses:?}"
    );
}

/// The watcher waits between listings without waking; a stop ends that wait at once rather
/// than after the period (an hour here), and it lists the bus once per period, not more.
#[test]
fn the_watcher_sleeps_between_listings_and_stops_at_once() {
    let bus = ScriptedHidBus::new();
    let (tx, _rx) = sync_channel(64);
    let hourly = HidWatchSettings {
        poll: Duration::from_secs(3600),
        ..quick()
    };
    let readers = HidReaders::spawn(scripted(&bus), HidSettings::default(), hourly, tx).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while bus.listings() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(bus.listings(), 1, "one listing, then the wait");
    let stopping = std::time::Instant::now();
    drop(readers);
    assert!(
        stopping.elapsed() < WAIT,
        "stopped in {:?}, not after the hour",
        stopping.elapsed()
    );
}
