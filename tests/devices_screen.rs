#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
//! «Устройства», driven as a person would through the AccessKit tree: opened from the menu, a
//! socat pseudo-terminal as the serial scanner, a scripted HID bus with report fixtures as the
//! HID devices, and `config.toml` on disk. Needs `socat` (`apt-get install -y socat`). Unix only.
#![cfg(unix)]

mod common;

use common::hid_fixture::{honeywell_info as hid_info, load};
use common::{Socat, WAIT};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use loyalty_till::config::Config;
use loyalty_till::devices::framing::Terminator;
use loyalty_till::devices::hid::bus::{HidDeviceSettings, HidRole};
use loyalty_till::devices::hid::reader::ScriptedHidBus;
use loyalty_till::devices::inventory;
use loyalty_till::devices::serial::SerialSettings;
use loyalty_till::ui::TillApp;
use loyalty_till::ui::device_settings::TestRead;
use loyalty_till::workflow::Screen;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SCANNER: &str = "/dev/hidraw-scanner";
const READER: &str = "/dev/hidraw-msr";
/// Анна's card code in the demo ledger.
const CARD: &str = "2000000000015";
const PAN: &str = "4111111111111111";
const STRIPE: &str = "%B4111111111111111^SMITH/JOHN^2512101123?;4111111111111111=2512101123?";

struct Till {
    harness: Harness<'static, TillApp>,
    dir: tempfile::TempDir,
    socat: Socat,
    scanner: Box<dyn serialport::SerialPort>,
    hid: ScriptedHidBus,
}

/// The demo till with a pty scanner configured, saving its settings to `config.toml` in its
/// folder, reading the HID devices of a scripted bus.
fn open_till(size: (f32, f32), hid: ScriptedHidBus) -> Till {
    let dir = tempfile::tempdir().unwrap();
    let socat = Socat::start(dir.path());
    let config = Config {
        serial_devices: vec![SerialSettings {
            port: socat.a(),
            ..SerialSettings::default()
        }],
        ..Config::default()
    };
    let bus = hid.clone();
    let hid_bus: loyalty_till::app::HidBusFactory =
        std::sync::Arc::new(move || Ok(Box::new(bus.clone()) as Box<dyn loyalty_till::devices::hid::bus::HidBus>));
    let paths = loyalty_till::config::Paths::resolve(Some(dir.path())).unwrap();
    let options = loyalty_till::app::AppOptions {
        config_file: Some(paths.config_file.clone()),
        paths,
        demo: true,
        config,
        scenario: None,
        clock: Box::new(loyalty_till::backend::SystemClock),
        hid_bus: Some(hid_bus),
        clipboard: None,
        after_ledger: None,
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(size.0, size.1))
        .with_max_steps(100_000)
        .build_eframe(move |cc| loyalty_till::app::start(&cc.egui_ctx, options).expect("app starts"));
    common::step_until(&mut harness, WAIT, "the demo ledger to open", |s| {
        matches!(s.backend, loyalty_till::workflow::BackendStatus::Ready(_))
    });
    let scanner = serialport::new(socat.b.to_string_lossy(), 9600)
        .timeout(Duration::from_secs(2))
        .open()
        .unwrap();
    Till {
        harness,
        dir,
        socat,
        scanner,
        hid,
    }
}

impl Till {
    fn app(&self) -> &TillApp {
        self.harness.state()
    }

    /// Lets scrolling settle, so a click lands where the button is.
    fn settle(&mut self) {
        for _ in 0..20 {
            self.harness.step();
        }
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_role_and_label(Role::Button, label).scroll_to_me();
        self.settle();
        self.harness.get_by_role_and_label(Role::Button, label).click();
        self.harness.step();
        self.harness.step();
    }

    /// Presses «Показать все», whatever count of idle ports this machine gives it.
    fn show_all(&mut self) {
        let label = self
            .harness
            .query_all_by_role(Role::Button)
            .filter_map(|node| node.accesskit_node().label())
            .find(|label| label.starts_with("Показать все"))
            .unwrap_or_else(|| panic!("no «Показать все»:\n{}", self.screen_text()));
        self.click(&label);
    }

    fn sees(&self, text: &str) -> bool {
        self.harness.query_all_by_label_contains(text).next().is_some()
    }

    /// Every label on screen, for failure messages.
    fn screen_text(&self) -> String {
        // A label's text is its AccessKit value; a button's, its label.
        self.harness
            .query_all_by(|_| true)
            .filter_map(|node| {
                let node = node.accesskit_node();
                if node.role() == Role::Label {
                    node.value()
                } else {
                    node.label()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Steps until `done` holds for the app, or fails after [`WAIT`] with the screen's text.
    fn wait_for(&mut self, what: &str, done: impl Fn(&TillApp) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.harness.step();
            if done(self.harness.state()) {
                self.harness.step();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen shows:\n{}",
                self.screen_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn open_devices_screen(&mut self) {
        self.click("Меню");
        self.click("Устройства: сканеры и ридеры");
        assert!(self.app().device_screen().is_open());
        self.wait_for("the device list", |app| {
            app.device_screen().inventory().is_some() && !app.device_screen().detecting()
        });
        assert!(self.sees("Проверка чтения"), "{}", self.screen_text());
    }

    fn reads(&self) -> usize {
        self.app().device_screen().reads().count()
    }

    /// The scanner sends `bytes`; waits for the test view to show one more line.
    fn scan(&mut self, bytes: &[u8]) {
        self.scan_lines(bytes, 1);
    }

    /// The scanner sends `bytes`; waits for `lines` more lines in the test view.
    fn scan_lines(&mut self, bytes: &[u8], lines: usize) {
        let before = self.reads();
        self.scanner.write_all(bytes).unwrap();
        self.scanner.flush().unwrap();
        self.wait_for("the read in the test view", |app| {
            app.device_screen().reads().count() >= before + lines
        });
    }

    fn config_file(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Waits until the saved config satisfies `done` (saving happens on a background thread).
    fn wait_for_saved(&mut self, what: &str, done: impl Fn(&Config) -> bool) -> Config {
        let deadline = Instant::now() + WAIT;
        loop {
            self.harness.step();
            if let Ok(text) = std::fs::read_to_string(self.config_file()) {
                let saved: Config = toml::from_str(&text).expect("config.toml parses");
                if done(&saved) {
                    return saved;
                }
                assert!(Instant::now() < deadline, "config.toml never had {what}:\n{text}");
            }
            assert!(Instant::now() < deadline, "config.toml was never written ({what})");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn assert_never_shows(&self, raw: &[&str]) {
        for text in raw {
            assert!(!self.sees(text), "{text} is on screen:\n{}", self.screen_text());
        }
    }
}

#[test]
fn reads_are_shown_masked_and_identify_no_one_while_the_screen_is_open() {
    let msr = load("spec_msr_magtek_layout.hex");
    let hid = ScriptedHidBus::new();
    hid.plug(hid_info(READER, 0x8E, "Card reader"), msr.descriptor.clone());
    let mut till = open_till((420.0, 1400.0), hid);
    till.open_devices_screen();
    assert!(till.sees("Отсканируйте код или проведите картой"));

    // The guest's card code from the serial scanner: shown, masked, parsed, nobody identified.
    // The framer has taken the CR off: a read is shown as the till classifies it.
    till.scan(format!("{CARD}\r").as_bytes());
    let pty = till.socat.a();
    assert!(till.sees(&format!("{pty}, 13 байт")), "{}", till.screen_text());
    assert!(till.sees("****0015"), "the raw bytes, masked: {}", till.screen_text());
    assert!(till.sees("Разобрано: код карты (штрихкод), код 20*********15"));

    // A bank card's stripe: neither the number nor the holder's name shows anywhere.
    till.scan(format!("{STRIPE}\r").as_bytes());
    assert!(
        till.sees("[дорожка 1 скрыта][дорожка 2 скрыта]"),
        "{}",
        till.screen_text()
    );
    assert!(till.sees("Разобрано: магнитная карта, код 411111******1111"));

    // A phone number typed by a scanner, and garbage bytes the parser refuses.
    till.scan(b"+79161234567\r");
    assert!(till.sees("+7 *** ***-45-67"), "{}", till.screen_text());
    till.scan_lines(b"\x01\x02AB\xff\tCD\r", 2);
    assert!(
        till.sees("отброшено 2 байта (помехи перед чтением)"),
        "{}",
        till.screen_text()
    );
    assert!(till.sees(r"AB\xFF\tCD"), "{}", till.screen_text());
    assert!(
        till.sees("Не принято: это не текст (неверный байт на позиции 2)"),
        "{}",
        till.screen_text()
    );

    // A swipe on the HID card reader lands in the same view.
    till.hid
        .send_report(READER, msr.report("tracks 1 and 2 without sentinels"));
    till.wait_for("the HID swipe", |app| {
        app.device_screen()
            .reads()
            .any(|read| matches!(read, TestRead::Read { source, .. } if source.contains("HID 0C2E:0002")))
    });
    assert!(till.sees("Card reader (HID 0C2E:0002)"), "{}", till.screen_text());

    till.assert_never_shows(&[CARD, PAN, "SMITH", "9161234567", "2512101123"]);
    let state = till.app().state();
    assert!(state.guest.is_none(), "a test read identified a guest");
    assert!(
        state.notice.is_none(),
        "a test read reached the workflow: {:?}",
        state.notice
    );
    assert_eq!(state.screen, Screen::Idle);

    // Closed, the screen lets reads identify guests again.
    till.click("Закрыть");
    assert!(!till.app().device_screen().is_open());
    till.scanner.write_all(format!("{CARD}\r").as_bytes()).unwrap();
    till.scanner.flush().unwrap();
    till.wait_for("the guest identified by the scanner", |app| app.state().guest.is_some());
    assert!(till.sees("Анна Смирнова"));
}

#[test]
fn roles_are_saved_to_config_toml_and_take_effect_at_once() {
    let voyager = load("honeywell_voyager_1400g.hex");
    let hid = ScriptedHidBus::new();
    hid.plug(hid_info(SCANNER, 0x8C, "Voyager 1400g"), voyager.descriptor.clone());
    let mut till = open_till((420.0, 1400.0), hid);
    till.open_devices_screen();

    // The HID POS scanner is read by its usage page; the owner makes it a card reader.
    let hid_row = "Voyager 1400g (HID 0C2E:0B61): Сканер";
    assert!(till.sees(hid_row), "{}", till.screen_text());
    till.click(hid_row);
    assert!(till.sees("HID POS-сканер (страница 0x8C)"), "{}", till.screen_text());
    assert!(till.sees("USB 0C2E:0B61, серийный номер 17123"));
    till.click("Ридер карт");
    let saved = till.wait_for_saved("the HID line", |c| !c.hid.devices.is_empty());
    assert_eq!(
        saved.hid.devices,
        vec![HidDeviceSettings {
            vendor_id: 0x0C2E,
            product_id: 0x0B61,
            serial: "17123".to_string(),
            role: HidRole::CardReader,
            label: String::new(),
        }]
    );
    assert!(till.sees("Voyager 1400g (HID 0C2E:0B61): Ридер карт"));

    // The pty scanner: 115200 baud and ETX at the end of a read.
    let pty = till.socat.a();
    till.click(&format!("{pty}: Сканер"));
    assert!(till.sees("COM-порт"), "{}", till.screen_text());
    till.click("115200");
    till.click("ETX");
    let saved = till.wait_for_saved("the serial settings", |c| {
        c.serial_devices
            .first()
            .is_some_and(|d| d.framing.terminator == Terminator::Etx)
    });
    assert_eq!(saved.serial_devices.len(), 1);
    assert_eq!(saved.serial_devices[0].port, pty);
    assert_eq!(saved.serial_devices[0].baud, 115_200);
    assert_eq!(saved.serial_devices[0].role, HidRole::Scanner);
    let text = std::fs::read_to_string(till.config_file()).unwrap();
    assert!(text.contains("terminator = \"etx\""), "{text}");

    // Restarted with the new settings: a read ended by ETX arrives whole.
    till.wait_for("the restarted reader", |app| {
        app.device_statuses().get(&pty) == Some(&loyalty_till::devices::DeviceStatus::Connected)
    });
    till.scan(b"GMB-00001234\x03");
    assert!(
        till.sees("Разобрано: код карты (штрихкод), код GM********34"),
        "{}",
        till.screen_text()
    );

    // «Не использовать» removes the line, and the port is no longer read.
    till.click("Не использовать");
    till.wait_for_saved("no serial line", |c| c.serial_devices.is_empty());
    till.wait_for("the reader stopped", |app| !app.device_statuses().contains_key(&pty));
    let before = till.reads();
    till.scanner.write_all(b"100001\x03").unwrap();
    till.scanner.flush().unwrap();
    let until = Instant::now() + Duration::from_millis(700);
    while Instant::now() < until {
        till.harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(till.reads(), before, "an ignored port was read");
    assert!(
        !till.sees(&format!("{pty}: ")),
        "a pty the system does not list goes with its line"
    );
}

#[test]
fn a_typed_line_is_checked_and_a_bad_one_gets_a_clear_error() {
    let mut till = open_till((1024.0, 1400.0), ScriptedHidBus::new());
    till.open_devices_screen();
    // The manual check speaks in escapes: a technician's tool, behind «Показать все».
    assert!(
        till.harness.query_by_role(Role::TextInput).is_none(),
        "{}",
        till.screen_text()
    );
    till.assert_never_shows(&["parse-scan", r"\xNN"]);
    till.show_all();
    till.assert_never_shows(&["parse-scan", r"\xNN"]);
    let field = till.harness.get_by_role(Role::TextInput);
    field.set_text_value_accesskit(r"%B123\q");
    till.harness.run_steps(2);
    till.click("Разобрать строку");
    assert!(
        till.sees("Ошибка в строке: неизвестная последовательность «\\q» на позиции 5"),
        "{}",
        till.screen_text()
    );

    let field = till.harness.get_by_role(Role::TextInput);
    field.set_text_value_accesskit(r"abc\x4");
    till.harness.run_steps(2);
    till.click("Разобрать строку");
    assert!(
        till.sees("после «\\x» на позиции 3 нужны две шестнадцатеричные цифры"),
        "{}",
        till.screen_text()
    );

    // A demo loyalty stripe with its reader's error mark for track 1, as `parse-scan` takes it.
    let field = till.harness.get_by_role(Role::TextInput);
    field.set_text_value_accesskit(r"%E?;7001000010?\r");
    till.harness.run_steps(2);
    till.click("Разобрать строку");
    assert!(till.sees("Введённая строка, 16 байт"), "{}", till.screen_text());
    assert!(
        till.sees("Разобрано: магнитная карта, код ********10"),
        "{}",
        till.screen_text()
    );
    // Track 2 with a `=` but no bank layout: the reason in the screen's language only.
    let field = till.harness.get_by_role(Role::TextInput);
    field.set_text_value_accesskit(r";7001=55?\r");
    till.harness.run_steps(2);
    till.click("Разобрать строку");
    assert!(
        till.sees("на дорожке 2 нет номера карты: выберите другую дорожку в настройках"),
        "{}",
        till.screen_text()
    );
    till.assert_never_shows(&["Track 2", "holds no card number", "track 1:"]);
    assert!(till.app().state().guest.is_none(), "a typed check identifies no one");
}

#[test]
fn without_devices_the_screen_says_so_and_why() {
    let mut till = open_till((420.0, 1000.0), ScriptedHidBus::new());
    till.harness.state_mut().set_device_detector(std::sync::Arc::new(|| {
        let legacy = |name: &str| loyalty_till::devices::serial::PortInfo {
            name: name.to_string(),
            usb: None,
            product: None,
        };
        inventory::collect(
            Ok(vec![legacy("/dev/ttyS0"), legacy("/dev/ttyS1")]),
            Ok(Vec::new()),
            Err("USB is not available: Other error".to_string()),
        )
    }));
    till.open_devices_screen();
    // Ports the system lists with nothing on them wait behind «Показать все».
    till.assert_never_shows(&["/dev/ttyS0", "/dev/ttyS1"]);
    // The configured pty is a row until its line goes; then nothing is left to show.
    assert!(!till.sees("Устройства не найдены"), "{}", till.screen_text());
    let pty = till.socat.a();
    till.click(&format!("{pty}: Сканер"));
    till.click("Не использовать");
    till.wait_for_saved("no serial line", |c| c.serial_devices.is_empty());
    assert!(till.sees("Устройства не найдены"), "{}", till.screen_text());
    assert!(till.sees("Подключите сканер или ридер карт"));
    assert!(till.sees("USB-устройства: список недоступен"), "{}", till.screen_text());
    // The system's own words are for the log, not the owner.
    till.assert_never_shows(&["USB is not available", "Other error"]);
    till.click("Показать все (2 порта без устройств и ручная проверка строки)");
    assert!(till.sees("/dev/ttyS0: Не использовать"), "{}", till.screen_text());
    till.click("Скрыть порты без устройств и ручную проверку");
    till.assert_never_shows(&["/dev/ttyS0"]);
    till.click("Обновить список");
    till.wait_for("the list again", |app| {
        app.device_screen().inventory().is_some() && !app.device_screen().detecting()
    });
    assert!(till.sees("Устройства не найдены"));
}

#[test]
fn the_real_detection_finishes_on_this_machine() {
    // Whatever this machine has (here: no USB at all), detection ends with a list, never a panic.
    let mut till = open_till((420.0, 1000.0), ScriptedHidBus::new());
    till.open_devices_screen();
    let found = till.app().device_screen().inventory().unwrap().clone();
    if found.usb.is_empty() {
        let usb_reason = found
            .unavailable
            .iter()
            .any(|(kind, _)| *kind == inventory::ListKind::Usb);
        assert!(
            usb_reason == till.sees("USB-устройства: список недоступен"),
            "an unavailable list is said on screen: {}",
            till.screen_text()
        );
    }
}

/// Every button and text field of the screen is at least 56 logical pixels tall.
#[test]
fn every_control_on_the_screen_is_touch_sized() {
    let mut till = open_till((420.0, 2400.0), ScriptedHidBus::new());
    till.open_devices_screen();
    let pty = till.socat.a();
    till.click(&format!("{pty}: Сканер"));
    till.scan(b"100001\r");
    let mut checked = 0;
    for role in [Role::Button, Role::TextInput] {
        for node in till.harness.query_all_by_role(role) {
            let rect = node.rect();
            assert!(
                rect.height() >= 55.9,
                "{role:?} {:?} is {} px tall",
                node.accesskit_node().label(),
                rect.height()
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} controls found");
}
