//! What is plugged in now, for the devices screen: serial (and USB-COM) ports, HID interfaces and
//! USB devices, each list with the system's reason when it could not be read. Then the rows the
//! screen shows, found devices merged with what `config.toml` says, and the pure changes a role
//! or a port setting makes to the config.
//!
//! Detection does I/O (it may wait on a slow USB device's string descriptors) and runs on a
//! background thread; everything after it is pure.

use crate::devices::DeviceLines;
use crate::devices::framing::Terminator;
use crate::devices::hid::bus::{
    BAR_CODE_SCANNER_PAGE, HidBus, HidDeviceInfo, HidDeviceSettings, MAGNETIC_STRIPE_READER_PAGE,
};
use crate::devices::keyboard::KeyboardDeviceSettings;
use crate::devices::serial::{PortInfo, SerialSettings, UsbId};
use std::time::Duration;

/// What the till does with a device: one set of roles for serial, HID and keyboard-mode devices.
pub use crate::devices::hid::bus::HidRole as DeviceRole;

/// The baud rates offered as buttons: what scanners and card readers are set to in practice.
pub const BAUD_RATES: [u32; 5] = [9600, 19200, 38400, 57600, 115200];

/// The USB class of hubs: they are the bus itself, never a scanner, so they are not listed.
const USB_CLASS_HUB: u8 = 0x09;

/// How long one string descriptor (product, maker, serial number) may take: a device that does
/// not answer must not hold up the whole list.
const USB_STRING_TIMEOUT: Duration = Duration::from_millis(200);

/// The HID usage of a keyboard (Generic Desktop page, Keyboard): a scanner in keyboard mode.
const GENERIC_DESKTOP_PAGE: u16 = 0x01;
const KEYBOARD_USAGE: u16 = 0x06;

/// A USB device as libusb lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbDeviceInfo {
    pub bus: u8,
    pub address: u8,
    pub vendor_id: u16,
    pub product_id: u16,
    pub class_code: u8,
    /// The strings need the device opened, which the system often refuses (no permission, or a
    /// driver that does not allow it): then they are `None`.
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
}

/// The three lists detection reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Serial,
    Hid,
    Usb,
}

/// Everything detected, and which lists could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    pub serial: Vec<PortInfo>,
    pub hid: Vec<HidDeviceInfo>,
    pub usb: Vec<UsbDeviceInfo>,
    /// A list the system would not give, with its reason (no USB on this machine, no hidraw).
    /// Shown on the screen, so that "nothing found" is never mistaken for "nothing plugged in".
    pub unavailable: Vec<(ListKind, String)>,
}

impl Inventory {
    /// Nothing was found in any list.
    pub fn is_empty(&self) -> bool {
        self.serial.is_empty() && self.hid.is_empty() && self.usb.is_empty()
    }
}

/// Lists every device now: serial ports, HID interfaces on the bus `hid_bus` makes, USB devices.
/// Blocking: run it off the UI thread.
pub fn detect(hid_bus: &dyn Fn() -> Result<Box<dyn HidBus>, String>) -> Inventory {
    let serial = crate::devices::serial::try_list_ports().map_err(|error| error.to_string());
    collect(serial, list_hid(hid_bus), list_usb())
}

/// Puts the lists together; a list that failed is logged once here and kept as its reason.
pub fn collect(
    serial: Result<Vec<PortInfo>, String>,
    hid: Result<Vec<HidDeviceInfo>, String>,
    usb: Result<Vec<UsbDeviceInfo>, String>,
) -> Inventory {
    let mut inventory = Inventory::default();
    let mut failed = |kind: ListKind, reason: String| {
        tracing::warn!(list = ?kind, %reason, "device list not available");
        inventory.unavailable.push((kind, reason));
    };
    let serial = serial.unwrap_or_else(|reason| {
        failed(ListKind::Serial, reason);
        Vec::new()
    });
    let hid = hid.unwrap_or_else(|reason| {
        failed(ListKind::Hid, reason);
        Vec::new()
    });
    let usb = usb.unwrap_or_else(|reason| {
        failed(ListKind::Usb, reason);
        Vec::new()
    });
    inventory.serial = serial;
    inventory.hid = hid;
    inventory.usb = usb;
    inventory
}

/// The HID interfaces on a bus, sorted by device, each top-level usage once.
pub fn list_hid(hid_bus: &dyn Fn() -> Result<Box<dyn HidBus>, String>) -> Result<Vec<HidDeviceInfo>, String> {
    let mut list = hid_bus()?.list()?;
    list.sort_by(|a, b| {
        (a.vendor_id, a.product_id, &a.serial, &a.path, a.usage_page, a.usage).cmp(&(
            b.vendor_id,
            b.product_id,
            &b.serial,
            &b.path,
            b.usage_page,
            b.usage,
        ))
    });
    list.dedup_by(|a, b| a.path == b.path && a.usage_page == b.usage_page && a.usage == b.usage);
    Ok(list)
}

/// The USB devices through a libusb context of our own: the global one (`rusb::devices()`)
/// panics on a machine without USB, where this returns the reason instead.
pub fn list_usb() -> Result<Vec<UsbDeviceInfo>, String> {
    use rusb::UsbContext as _;
    let context = rusb::Context::new().map_err(|error| format!("USB is not available: {error}"))?;
    let devices = context
        .devices()
        .map_err(|error| format!("USB devices cannot be listed: {error}"))?;
    let mut list = Vec::new();
    for device in devices.iter() {
        let descriptor = match device.device_descriptor() {
            Ok(descriptor) => descriptor,
            Err(error) => {
                tracing::debug!(bus = device.bus_number(), address = device.address(), %error, "USB device skipped");
                continue;
            }
        };
        if descriptor.class_code() == USB_CLASS_HUB {
            continue;
        }
        let (manufacturer, product, serial) = usb_strings(&device, &descriptor);
        list.push(UsbDeviceInfo {
            bus: device.bus_number(),
            address: device.address(),
            vendor_id: descriptor.vendor_id(),
            product_id: descriptor.product_id(),
            class_code: descriptor.class_code(),
            manufacturer,
            product,
            serial,
        });
    }
    list.sort_by_key(|d| (d.vendor_id, d.product_id, d.bus, d.address));
    Ok(list)
}

type UsbStrings = (Option<String>, Option<String>, Option<String>);

/// Maker, product and serial number. Opening the device only reads descriptors: no interface is
/// claimed, so a driver using the device is not disturbed.
fn usb_strings(device: &rusb::Device<rusb::Context>, descriptor: &rusb::DeviceDescriptor) -> UsbStrings {
    let handle = match device.open() {
        Ok(handle) => handle,
        Err(error) => {
            tracing::debug!(vid = descriptor.vendor_id(), pid = descriptor.product_id(), %error, "USB strings not read");
            return (None, None, None);
        }
    };
    let Some(language) = handle
        .read_languages(USB_STRING_TIMEOUT)
        .ok()
        .and_then(|languages| languages.first().copied())
    else {
        return (None, None, None);
    };
    let clean = |text: rusb::Result<String>| text.ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    (
        clean(handle.read_manufacturer_string(language, descriptor, USB_STRING_TIMEOUT)),
        clean(handle.read_product_string(language, descriptor, USB_STRING_TIMEOUT)),
        clean(handle.read_serial_number_string(language, descriptor, USB_STRING_TIMEOUT)),
    )
}

/// Which config line a device's settings go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceKey {
    /// `[[serial_devices]]` by port name; the USB identity, when known, is saved with it so a
    /// port that comes back under another name is found again.
    Serial { port: String, usb: Option<UsbId> },
    /// `[[hid.devices]]`: every interface of the device shares the line.
    Hid {
        vendor_id: u16,
        product_id: u16,
        serial: String,
    },
    /// `[[keyboard_devices]]` by the part of the Windows device path it matches.
    Keyboard { name_contains: String },
}

/// One row of the devices screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEntry {
    /// Unique on the screen and stable across refreshes, so an opened row stays open.
    pub id: String,
    pub key: DeviceKey,
    /// The port name, or the HID device's product and ids.
    pub name: String,
    pub product: Option<String>,
    pub usb: Option<UsbId>,
    /// A HID interface's top-level usage page and usage.
    pub usage: Option<(u16, u16)>,
    /// Listed by the system now; false: only in `config.toml` (unplugged, or a port the system
    /// does not list, such as a pseudo-terminal).
    pub present: bool,
    pub role: DeviceRole,
    /// A serial port's settings in `config.toml`, when it is read.
    pub serial_settings: Option<SerialSettings>,
}

impl DeviceEntry {
    /// A serial port the system lists with nothing known on it: no USB device behind it, no
    /// product name, not read by the till (the motherboard's COM1..COM4, `/dev/ttyS*`). The
    /// screen lists these only when asked to show everything.
    pub fn is_idle_legacy_port(&self) -> bool {
        matches!(self.key, DeviceKey::Serial { .. })
            && self.present
            && self.usb.is_none()
            && self.product.as_deref().is_none_or(|p| p.trim().is_empty())
            && self.role == DeviceRole::Ignore
            // Linux without libudev lists USB adapters without their ids; their names tell.
            && !["ttyUSB", "ttyACM"].iter().any(|usb| self.name.contains(usb))
    }

    /// A HID POS page the till reads without being told to.
    pub fn pos_page(&self) -> Option<DeviceRole> {
        match self.usage {
            Some((BAR_CODE_SCANNER_PAGE, _)) => Some(DeviceRole::Scanner),
            Some((MAGNETIC_STRIPE_READER_PAGE, _)) => Some(DeviceRole::CardReader),
            _ => None,
        }
    }
}

/// `VID_0C2E&PID_0B61`: how Windows names a device in its path, which keyboard-mode lines match.
pub fn keyboard_pattern(vendor_id: u16, product_id: u16) -> String {
    format!("VID_{vendor_id:04X}&PID_{product_id:04X}")
}

fn is_keyboard(info: &HidDeviceInfo) -> bool {
    info.usage_page == GENERIC_DESKTOP_PAGE && info.usage == KEYBOARD_USAGE
}

/// The configured line of a serial port: by name, or by USB identity when it came back under
/// another name.
fn serial_line<'a>(config: &'a DeviceLines, port: &PortInfo) -> Option<&'a SerialSettings> {
    config.serial_devices.iter().find(|line| {
        line.port == port.name
            || line
                .usb_id
                .as_ref()
                .is_some_and(|wanted| port.usb.as_ref().is_some_and(|found| wanted.matches(found)))
    })
}

fn keyboard_line<'a>(config: &'a DeviceLines, info: &HidDeviceInfo) -> Option<&'a KeyboardDeviceSettings> {
    let pattern = keyboard_pattern(info.vendor_id, info.product_id);
    config
        .keyboard_devices
        .iter()
        .find(|line| line.matches(&info.path) || line.matches(&pattern))
}

/// The screen's rows: serial ports found, then serial ports only in the config, HID interfaces
/// found, HID lines and keyboard-mode lines only in the config.
pub fn entries(inventory: &Inventory, config: &DeviceLines) -> Vec<DeviceEntry> {
    let mut rows = Vec::new();
    let mut serial_lines_shown = vec![false; config.serial_devices.len()];
    for port in &inventory.serial {
        let line = serial_line(config, port);
        if let Some(line) = line
            && let Some(i) = config.serial_devices.iter().position(|l| l == line)
        {
            serial_lines_shown[i] = true;
        }
        rows.push(DeviceEntry {
            id: format!("serial:{}", port.name),
            key: DeviceKey::Serial {
                port: port.name.clone(),
                usb: port.usb.clone(),
            },
            name: port.name.clone(),
            product: port.product.clone(),
            usb: port.usb.clone(),
            usage: None,
            present: true,
            role: line.map_or(DeviceRole::Ignore, |l| l.role),
            serial_settings: line.filter(|l| l.role != DeviceRole::Ignore).cloned(),
        });
    }
    for (line, shown) in config.serial_devices.iter().zip(serial_lines_shown) {
        if shown {
            continue;
        }
        rows.push(DeviceEntry {
            id: format!("serial:{}", line.source_name()),
            key: DeviceKey::Serial {
                port: line.port.clone(),
                usb: line.usb_id.clone(),
            },
            name: line.source_name(),
            product: None,
            usb: line.usb_id.clone(),
            usage: None,
            present: false,
            role: line.role,
            serial_settings: (line.role != DeviceRole::Ignore).then(|| line.clone()),
        });
    }
    let mut hid_lines_shown = vec![false; config.hid.devices.len()];
    let mut keyboard_lines_shown = vec![false; config.keyboard_devices.len()];
    for info in &inventory.hid {
        let usb = Some(UsbId {
            vid: info.vendor_id,
            pid: info.product_id,
            serial: info.serial.clone(),
        });
        let (key, role) = if is_keyboard(info) {
            let line = keyboard_line(config, info);
            if let Some(i) = line.and_then(|line| config.keyboard_devices.iter().position(|l| l == line)) {
                keyboard_lines_shown[i] = true;
            }
            let key = DeviceKey::Keyboard {
                name_contains: line
                    .map(|l| l.name_contains.clone())
                    .filter(|pattern| pattern.trim() != "*")
                    .unwrap_or_else(|| keyboard_pattern(info.vendor_id, info.product_id)),
            };
            (key, line.map_or(DeviceRole::Ignore, |l| l.role))
        } else {
            for (i, line) in config.hid.devices.iter().enumerate() {
                if line.matches(info) {
                    hid_lines_shown[i] = true;
                }
            }
            let key = DeviceKey::Hid {
                vendor_id: info.vendor_id,
                product_id: info.product_id,
                serial: info.serial.clone().unwrap_or_default(),
            };
            (key, config.hid.role_of(info))
        };
        rows.push(DeviceEntry {
            id: format!("hid:{}:{:04x}:{:04x}", info.path, info.usage_page, info.usage),
            key,
            name: config.hid.source_name(info),
            product: info.product.clone(),
            usb,
            usage: Some((info.usage_page, info.usage)),
            present: true,
            role,
            serial_settings: None,
        });
    }
    for (line, shown) in config.hid.devices.iter().zip(hid_lines_shown) {
        if shown {
            continue;
        }
        let ids = format!("HID {:04X}:{:04X}", line.vendor_id, line.product_id);
        rows.push(DeviceEntry {
            id: format!(
                "hid-line:{:04x}:{:04x}:{}",
                line.vendor_id, line.product_id, line.serial
            ),
            key: DeviceKey::Hid {
                vendor_id: line.vendor_id,
                product_id: line.product_id,
                serial: line.serial.clone(),
            },
            name: if line.label.trim().is_empty() {
                ids
            } else {
                format!("{} ({ids})", line.label)
            },
            product: None,
            usb: Some(UsbId {
                vid: line.vendor_id,
                pid: line.product_id,
                serial: Some(line.serial.clone()).filter(|s| !s.trim().is_empty()),
            }),
            usage: None,
            present: false,
            role: line.role,
            serial_settings: None,
        });
    }
    for (line, shown) in config.keyboard_devices.iter().zip(keyboard_lines_shown) {
        if shown {
            continue;
        }
        rows.push(DeviceEntry {
            id: format!("keyboard:{}", line.name_contains),
            key: DeviceKey::Keyboard {
                name_contains: line.name_contains.clone(),
            },
            name: line.source_name(),
            product: None,
            usb: None,
            usage: Some((GENERIC_DESKTOP_PAGE, KEYBOARD_USAGE)),
            present: false,
            role: line.role,
            serial_settings: None,
        });
    }
    rows
}

/// USB devices that are neither a serial port nor a HID interface on the list: the till cannot
/// read them as they are set up (a scanner in a vendor's own USB mode, a printer…).
pub fn other_usb(inventory: &Inventory) -> Vec<&UsbDeviceInfo> {
    let listed = |vid: u16, pid: u16| {
        inventory
            .serial
            .iter()
            .any(|p| p.usb.as_ref().is_some_and(|u| u.vid == vid && u.pid == pid))
            || inventory.hid.iter().any(|h| h.vendor_id == vid && h.product_id == pid)
    };
    inventory
        .usb
        .iter()
        .filter(|d| !listed(d.vendor_id, d.product_id))
        .collect()
}

/// A change made on the devices screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceChange {
    Role { key: DeviceKey, role: DeviceRole },
    Baud { port: String, baud: u32 },
    Terminator { port: String, terminator: Terminator },
}

/// Applies a change to the device lines of the config; false when it changed nothing (no save, no restart then).
///
/// A serial port or keyboard-mode device set to «ignore» loses its line: without one it is not
/// read. A HID device keeps an explicit line whatever its role, because a POS device without one
/// would be read by its usage page.
pub fn apply(config: &mut DeviceLines, change: &DeviceChange) -> bool {
    let before = config.clone();
    match change {
        DeviceChange::Role {
            key: DeviceKey::Serial { port, usb },
            role,
        } => {
            let is_port = |line: &SerialSettings| line.port == *port;
            if *role == DeviceRole::Ignore {
                config.serial_devices.retain(|line| !is_port(line));
            } else if let Some(line) = config.serial_devices.iter_mut().find(|line| is_port(line)) {
                line.role = *role;
            } else {
                config.serial_devices.push(SerialSettings {
                    port: port.clone(),
                    usb_id: usb.clone(),
                    role: *role,
                    ..SerialSettings::default()
                });
            }
        }
        DeviceChange::Role {
            key:
                DeviceKey::Hid {
                    vendor_id,
                    product_id,
                    serial,
                },
            role,
        } => {
            let same = |line: &HidDeviceSettings| {
                line.vendor_id == *vendor_id && line.product_id == *product_id && line.serial.trim() == serial.trim()
            };
            match config.hid.devices.iter_mut().find(|line| same(line)) {
                Some(line) => line.role = *role,
                None => config.hid.devices.push(HidDeviceSettings {
                    vendor_id: *vendor_id,
                    product_id: *product_id,
                    serial: serial.clone(),
                    role: *role,
                    label: String::new(),
                }),
            }
        }
        DeviceChange::Role {
            key: DeviceKey::Keyboard { name_contains },
            role,
        } => {
            let same = |line: &KeyboardDeviceSettings| line.name_contains.trim() == name_contains.trim();
            if *role == DeviceRole::Ignore {
                config.keyboard_devices.retain(|line| !same(line));
            } else if let Some(line) = config.keyboard_devices.iter_mut().find(|line| same(line)) {
                line.role = *role;
            } else {
                config.keyboard_devices.push(KeyboardDeviceSettings {
                    name_contains: name_contains.clone(),
                    role: *role,
                    ..KeyboardDeviceSettings::default()
                });
            }
        }
        DeviceChange::Baud { port, baud } => {
            for line in config.serial_devices.iter_mut().filter(|line| line.port == *port) {
                line.baud = *baud;
            }
        }
        DeviceChange::Terminator { port, terminator } => {
            for line in config.serial_devices.iter_mut().filter(|line| line.port == *port) {
                line.framing.terminator = *terminator;
            }
        }
    }
    *config != before
}

/// The device lines the readers start with: serial and keyboard-mode lines set to «ignore»
/// (written by hand; the screen removes them) are left out, so they are never opened.
pub fn readable(config: &DeviceLines) -> DeviceLines {
    let mut config = config.clone();
    config.serial_devices.retain(|line| line.role != DeviceRole::Ignore);
    config.keyboard_devices.retain(|line| line.role != DeviceRole::Ignore);
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::hid::bus::HidPort;

    /// A HID bus that lists what it was given and opens nothing.
    struct FakeBus(Result<Vec<HidDeviceInfo>, String>);

    impl HidBus for FakeBus {
        fn list(&mut self) -> Result<Vec<HidDeviceInfo>, String> {
            self.0.clone()
        }

        fn open(&mut self, _info: &HidDeviceInfo) -> Result<Box<dyn HidPort>, String> {
            Err("the fake bus opens nothing".to_string())
        }
    }

    fn hid(path: &str, vid: u16, pid: u16, serial: Option<&str>, page: u16, usage: u16) -> HidDeviceInfo {
        HidDeviceInfo {
            path: path.to_string(),
            vendor_id: vid,
            product_id: pid,
            serial: serial.map(str::to_string),
            manufacturer: Some("Honeywell".to_string()),
            product: Some("1900".to_string()),
            usage_page: page,
            usage,
            interface_number: 0,
        }
    }

    fn scanner() -> HidDeviceInfo {
        hid("/dev/hidraw1", 0x0C2E, 0x0B61, Some("17123"), 0x8C, 0x02)
    }

    fn card_reader() -> HidDeviceInfo {
        hid("/dev/hidraw2", 0x0801, 0x0002, None, 0x8E, 0x01)
    }

    fn keyboard() -> HidDeviceInfo {
        hid("/dev/hidraw0", 0x0C2E, 0x0B61, Some("17123"), 0x01, 0x06)
    }

    fn mouse() -> HidDeviceInfo {
        hid("/dev/hidraw3", 0x046D, 0xC077, None, 0x01, 0x02)
    }

    fn bus(devices: Vec<HidDeviceInfo>) -> impl Fn() -> Result<Box<dyn HidBus>, String> {
        move || Ok(Box::new(FakeBus(Ok(devices.clone()))) as Box<dyn HidBus>)
    }

    fn inventory(hid_devices: Vec<HidDeviceInfo>) -> Inventory {
        collect(
            Ok(vec![PortInfo {
                name: "COM3".to_string(),
                usb: Some(UsbId {
                    vid: 0x1EAB,
                    pid: 0x1D06,
                    serial: Some("A1".to_string()),
                }),
                product: Some("Newland".to_string()),
            }]),
            list_hid(&bus(hid_devices)),
            Err("USB is not available: no USB here".to_string()),
        )
    }

    fn entry<'a>(rows: &'a [DeviceEntry], id_part: &str) -> &'a DeviceEntry {
        rows.iter()
            .find(|row| row.id.contains(id_part))
            .unwrap_or_else(|| panic!("no row {id_part} in {rows:#?}"))
    }

    #[test]
    fn hid_interfaces_come_from_the_bus_sorted_and_once_each() {
        let twice = vec![mouse(), scanner(), keyboard(), scanner(), card_reader()];
        let list = list_hid(&bus(twice)).unwrap();
        let paths: Vec<&str> = list.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/dev/hidraw3", "/dev/hidraw2", "/dev/hidraw0", "/dev/hidraw1"],
            "by vendor, product, serial, path; the doubled scanner once"
        );
        let broken = || Ok(Box::new(FakeBus(Err("hidraw: permission denied".to_string()))) as Box<dyn HidBus>);
        assert_eq!(list_hid(&broken), Err("hidraw: permission denied".to_string()));
        let no_bus = || Err::<Box<dyn HidBus>, String>("no HID stack".to_string());
        assert_eq!(list_hid(&no_bus), Err("no HID stack".to_string()));
    }

    #[test]
    fn detect_lists_the_fake_bus_and_never_panics_without_usb() {
        let found = detect(&bus(vec![scanner(), card_reader()]));
        assert_eq!(found.hid.len(), 2);
        assert!(!found.unavailable.iter().any(|(kind, _)| *kind == ListKind::Hid));
        // Reaching here is the test for USB: on a machine without it (this container), libusb's
        // global context would have panicked; ours gives a reason, which names USB.
        for (kind, reason) in &found.unavailable {
            if *kind == ListKind::Usb {
                assert!(reason.contains("USB"), "{reason}");
            }
        }
    }

    #[test]
    fn idle_legacy_ports_are_told_apart() {
        let port = |name: &str, usb: bool, product: Option<&str>| PortInfo {
            name: name.to_string(),
            usb: usb.then_some(UsbId {
                vid: 0x1EAB,
                pid: 0x1D06,
                serial: None,
            }),
            product: product.map(str::to_string),
        };
        let found = collect(
            Ok(vec![
                port("/dev/ttyS0", false, None),
                port("COM1", false, Some("")),
                port("/dev/ttyUSB0", false, None),
                port("COM3", true, None),
                port("COM4", false, Some("Newland")),
                port("/dev/ttyS1", false, None),
            ]),
            Ok(Vec::new()),
            Ok(Vec::new()),
        );
        let lines = DeviceLines {
            serial_devices: vec![SerialSettings {
                port: "/dev/ttyS1".to_string(),
                ..SerialSettings::default()
            }],
            ..DeviceLines::default()
        };
        let rows = entries(&found, &lines);
        let idle: Vec<&str> = rows
            .iter()
            .filter(|r| r.is_idle_legacy_port())
            .map(|r| r.name.as_str())
            .collect();
        // A port the till reads, one behind USB (by ids or by name) and a named one stay listed.
        assert_eq!(idle, ["/dev/ttyS0", "COM1"], "{rows:#?}");
    }

    #[test]
    fn failed_lists_keep_their_reason() {
        let found = collect(Err("no ports".into()), Err("no hidraw".into()), Err("no USB".into()));
        assert!(found.is_empty());
        assert_eq!(
            found.unavailable,
            vec![
                (ListKind::Serial, "no ports".to_string()),
                (ListKind::Hid, "no hidraw".to_string()),
                (ListKind::Usb, "no USB".to_string())
            ]
        );
    }

    #[test]
    fn rows_show_pos_pages_roles_and_keyboards() {
        let found = inventory(vec![scanner(), card_reader(), keyboard(), mouse()]);
        let rows = entries(&found, &DeviceLines::default());
        assert_eq!(rows.len(), 5, "{rows:#?}");
        let com = entry(&rows, "serial:COM3");
        assert_eq!(com.role, DeviceRole::Ignore, "a port nobody configured is not read");
        assert!(com.present && com.serial_settings.is_none());
        assert_eq!(com.usb.as_ref().map(|u| u.vid), Some(0x1EAB));
        let pos = entry(&rows, "/dev/hidraw1");
        assert_eq!(pos.role, DeviceRole::Scanner, "page 0x8C is read by default");
        assert_eq!(pos.pos_page(), Some(DeviceRole::Scanner));
        assert_eq!(pos.name, "1900 (HID 0C2E:0B61)");
        let msr = entry(&rows, "/dev/hidraw2");
        assert_eq!(msr.role, DeviceRole::CardReader);
        assert_eq!(msr.pos_page(), Some(DeviceRole::CardReader));
        let kbd = entry(&rows, "/dev/hidraw0");
        assert_eq!(
            kbd.key,
            DeviceKey::Keyboard {
                name_contains: "VID_0C2E&PID_0B61".to_string()
            }
        );
        assert_eq!(kbd.role, DeviceRole::Ignore);
        let mouse = entry(&rows, "/dev/hidraw3");
        assert_eq!(mouse.role, DeviceRole::Ignore);
        assert_eq!(mouse.pos_page(), None);
    }

    #[test]
    fn roles_go_into_the_config_and_come_back_as_rows() {
        let found = inventory(vec![scanner(), card_reader(), keyboard()]);
        let mut config = DeviceLines::default();
        let rows = entries(&found, &config);

        // The serial port becomes a card reader: a line with its USB identity.
        let com = entry(&rows, "serial:COM3").key.clone();
        assert!(apply(
            &mut config,
            &DeviceChange::Role {
                key: com.clone(),
                role: DeviceRole::CardReader
            }
        ));
        assert_eq!(config.serial_devices.len(), 1);
        assert_eq!(config.serial_devices[0].port, "COM3");
        assert_eq!(config.serial_devices[0].role, DeviceRole::CardReader);
        assert_eq!(config.serial_devices[0].baud, 9600);
        assert_eq!(config.serial_devices[0].usb_id.as_ref().map(|u| u.pid), Some(0x1D06));
        assert!(apply(
            &mut config,
            &DeviceChange::Baud {
                port: "COM3".into(),
                baud: 115_200
            }
        ));
        assert!(apply(
            &mut config,
            &DeviceChange::Terminator {
                port: "COM3".into(),
                terminator: Terminator::Etx
            }
        ));
        assert!(
            !apply(
                &mut config,
                &DeviceChange::Baud {
                    port: "COM3".into(),
                    baud: 115_200
                }
            ),
            "the same value changes nothing"
        );

        // The POS scanner is ignored: an explicit line, since its page would be read otherwise.
        let pos = entry(&rows, "/dev/hidraw1").key.clone();
        assert!(apply(
            &mut config,
            &DeviceChange::Role {
                key: pos,
                role: DeviceRole::Ignore
            }
        ));
        assert_eq!(
            config.hid.devices,
            vec![HidDeviceSettings {
                vendor_id: 0x0C2E,
                product_id: 0x0B61,
                serial: "17123".into(),
                role: DeviceRole::Ignore,
                label: String::new()
            }]
        );

        // The keyboard interface of the same scanner is read in keyboard mode.
        let kbd = entry(&rows, "/dev/hidraw0").key.clone();
        assert!(apply(
            &mut config,
            &DeviceChange::Role {
                key: kbd.clone(),
                role: DeviceRole::Scanner
            }
        ));
        assert_eq!(config.keyboard_devices.len(), 1);
        assert_eq!(config.keyboard_devices[0].name_contains, "VID_0C2E&PID_0B61");
        assert!(config.keyboard_devices[0].matches(r"\\?\HID#VID_0C2E&PID_0B61&MI_00#7&1a2b#{884b96c3}"));

        let rows = entries(&found, &config);
        let com = entry(&rows, "serial:COM3");
        assert_eq!(com.role, DeviceRole::CardReader);
        let settings = com.serial_settings.as_ref().expect("a read port has settings");
        assert_eq!((settings.baud, settings.framing.terminator), (115_200, Terminator::Etx));
        assert_eq!(entry(&rows, "/dev/hidraw1").role, DeviceRole::Ignore);
        assert_eq!(
            entry(&rows, "/dev/hidraw2").role,
            DeviceRole::CardReader,
            "the other device keeps its page's role"
        );
        assert_eq!(entry(&rows, "/dev/hidraw0").role, DeviceRole::Scanner);
        assert_eq!(rows.len(), 4, "no line is shown twice: {rows:#?}");

        // «Ignore» removes the serial and keyboard lines.
        assert!(apply(
            &mut config,
            &DeviceChange::Role {
                key: com.key.clone(),
                role: DeviceRole::Ignore
            }
        ));
        assert!(apply(
            &mut config,
            &DeviceChange::Role {
                key: kbd,
                role: DeviceRole::Ignore
            }
        ));
        assert!(config.serial_devices.is_empty() && config.keyboard_devices.is_empty());
        assert_eq!(config.hid.devices.len(), 1);
    }

    #[test]
    fn configured_devices_not_present_are_still_rows() {
        let mut config = DeviceLines::default();
        config.serial_devices.push(SerialSettings {
            port: "/tmp/pty-a".into(),
            ..SerialSettings::default()
        });
        config.hid.devices.push(HidDeviceSettings {
            vendor_id: 0x05E0,
            product_id: 0x1200,
            serial: String::new(),
            role: DeviceRole::Scanner,
            label: "Сканер у кассы".into(),
        });
        config.keyboard_devices.push(KeyboardDeviceSettings {
            name_contains: "VID_0C2E".into(),
            ..KeyboardDeviceSettings::default()
        });
        let rows = entries(&collect(Ok(vec![]), Ok(vec![]), Ok(vec![])), &config);
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert!(rows.iter().all(|row| !row.present));
        let pty = entry(&rows, "serial:/tmp/pty-a");
        assert_eq!(pty.role, DeviceRole::Scanner, "a line without a role is read");
        assert!(pty.serial_settings.is_some());
        assert_eq!(
            entry(&rows, "hid-line:05e0:1200").name,
            "Сканер у кассы (HID 05E0:1200)"
        );
        assert_eq!(entry(&rows, "keyboard:VID_0C2E").role, DeviceRole::Scanner);
    }

    #[test]
    fn a_port_found_under_a_new_name_keeps_its_line() {
        let mut config = DeviceLines::default();
        config.serial_devices.push(SerialSettings {
            port: "COM7".into(),
            usb_id: Some(UsbId {
                vid: 0x1EAB,
                pid: 0x1D06,
                serial: None,
            }),
            role: DeviceRole::CardReader,
            ..SerialSettings::default()
        });
        let rows = entries(&inventory(vec![]), &config);
        assert_eq!(rows.len(), 1, "{rows:#?}");
        assert_eq!(rows[0].name, "COM3");
        assert_eq!(rows[0].role, DeviceRole::CardReader);
    }

    #[test]
    fn ignored_lines_are_not_started() {
        let mut config = DeviceLines::default();
        for (port, role) in [("COM1", DeviceRole::Ignore), ("COM2", DeviceRole::Scanner)] {
            config.serial_devices.push(SerialSettings {
                port: port.into(),
                role,
                ..SerialSettings::default()
            });
        }
        config.keyboard_devices.push(KeyboardDeviceSettings {
            name_contains: "*".into(),
            role: DeviceRole::Ignore,
            ..KeyboardDeviceSettings::default()
        });
        let started = readable(&config);
        assert_eq!(started.serial_devices.len(), 1);
        assert_eq!(started.serial_devices[0].port, "COM2");
        assert!(started.keyboard_devices.is_empty());
    }

    #[test]
    fn usb_devices_already_listed_are_not_repeated() {
        let mut found = inventory(vec![scanner()]);
        let usb = |vid, pid| UsbDeviceInfo {
            bus: 1,
            address: 2,
            vendor_id: vid,
            product_id: pid,
            class_code: 0,
            manufacturer: None,
            product: None,
            serial: None,
        };
        found.usb = vec![usb(0x0C2E, 0x0B61), usb(0x1EAB, 0x1D06), usb(0x04B8, 0x0202)];
        let others = other_usb(&found);
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].vendor_id, 0x04B8);
    }

    #[test]
    fn roles_round_trip_through_toml() {
        let mut config = DeviceLines::default();
        apply(
            &mut config,
            &DeviceChange::Role {
                key: DeviceKey::Serial {
                    port: "COM3".into(),
                    usb: None,
                },
                role: DeviceRole::CardReader,
            },
        );
        let text = toml::to_string_pretty(&config).unwrap();
        assert!(text.contains("role = \"card_reader\""), "{text}");
        let back: DeviceLines = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
        let old: DeviceLines = toml::from_str("[[serial_devices]]\nport = \"COM3\"\n").unwrap();
        assert_eq!(
            old.serial_devices[0].role,
            DeviceRole::Scanner,
            "configs from before roles"
        );
    }
}
