//! Which HID devices the till reads, and the narrow boundary to the operating system's HID stack:
//! a [`HidBus`] lists devices and opens them, a [`HidPort`] gives the report descriptor and
//! input reports. [`HidApiBus`] is the real one (hidapi: hidraw on Linux, the HID API on Windows);
//! tests put scripted devices behind the same traits.

use serde::{Deserialize, Serialize};

/// The HID Point of Sale usage pages the till reads without being told to.
pub const BAR_CODE_SCANNER_PAGE: u16 = 0x8C;
pub const MAGNETIC_STRIPE_READER_PAGE: u16 = 0x8E;

/// What the till does with a HID device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HidRole {
    /// Read as a barcode scanner (reports on page 0x8C).
    Scanner,
    /// Read as a magnetic stripe reader (reports on page 0x8E).
    CardReader,
    /// Never opened.
    #[default]
    Ignore,
}

/// One HID device the owner named in settings.
///
/// ```toml
/// [[hid.devices]]
/// vendor_id = 0x0C2E
/// product_id = 0x0B61
/// role = "scanner"
/// label = "Сканер у кассы"
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HidDeviceSettings {
    pub vendor_id: u16,
    pub product_id: u16,
    /// The USB serial number, to tell two devices of one model apart; empty: any.
    pub serial: String,
    pub role: HidRole,
    /// The name on the status line and in the log; the product string when empty.
    pub label: String,
}

impl HidDeviceSettings {
    pub fn matches(&self, info: &HidDeviceInfo) -> bool {
        self.vendor_id == info.vendor_id
            && self.product_id == info.product_id
            && (self.serial.trim().is_empty() || Some(self.serial.trim()) == info.serial.as_deref())
    }
}

/// HID devices in settings: the POS devices found by usage page are read unless told otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HidSettings {
    /// Read every device whose top-level usage is on page 0x8C or 0x8E, plugged in at start or
    /// later, without a line in `devices`.
    pub pick_up_pos_devices: bool,
    pub devices: Vec<HidDeviceSettings>,
}

impl Default for HidSettings {
    fn default() -> Self {
        HidSettings {
            pick_up_pos_devices: true,
            devices: Vec::new(),
        }
    }
}

impl HidSettings {
    /// The role a listed device gets: its line in settings first, then its usage page.
    pub fn role_of(&self, info: &HidDeviceInfo) -> HidRole {
        if let Some(listed) = self.devices.iter().find(|d| d.matches(info)) {
            return listed.role;
        }
        if !self.pick_up_pos_devices {
            return HidRole::Ignore;
        }
        match info.usage_page {
            BAR_CODE_SCANNER_PAGE => HidRole::Scanner,
            MAGNETIC_STRIPE_READER_PAGE => HidRole::CardReader,
            _ => HidRole::Ignore,
        }
    }

    /// The device's name for the status line and the log.
    pub fn source_name(&self, info: &HidDeviceInfo) -> String {
        self.devices
            .iter()
            .find(|d| d.matches(info) && !d.label.trim().is_empty())
            .map(|d| d.label.clone())
            .unwrap_or_else(|| info.display_name())
    }
}

/// A HID interface as the system lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HidDeviceInfo {
    /// The system's path for opening it (`/dev/hidraw3`, `\\?\HID#VID_…`): unique per interface
    /// while plugged in.
    pub path: String,
    pub vendor_id: u16,
    pub product_id: u16,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    /// The top-level collection's usage page and usage.
    pub usage_page: u16,
    pub usage: u16,
    pub interface_number: i32,
}

impl HidDeviceInfo {
    /// "Honeywell 1900 (HID 0C2E:0B61)": product string when there is one, always the ids.
    pub fn display_name(&self) -> String {
        let ids = format!("{:04X}:{:04X}", self.vendor_id, self.product_id);
        match self.product.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(product) => format!("{product} (HID {ids})"),
            None => format!("HID {ids}"),
        }
    }
}

/// The system's HID stack: what is plugged in, and opening it.
pub trait HidBus: Send {
    /// Every HID interface present now.
    fn list(&mut self) -> Result<Vec<HidDeviceInfo>, String>;
    fn open(&mut self, info: &HidDeviceInfo) -> Result<Box<dyn HidPort>, String>;
}

/// An open HID interface.
pub trait HidPort: Send {
    /// The report descriptor as the device gives it (on Windows, rebuilt by the system from the
    /// device's preparsed data).
    fn report_descriptor(&mut self) -> Result<Vec<u8>, String>;
    /// The next input report, or `None` when none came within `timeout_ms`. An error means the
    /// device is gone or broken; the reader stops and waits for it to be listed again.
    fn read_report(&mut self, timeout_ms: i32) -> Result<Option<Vec<u8>>, String>;
}

/// The system's HID stack (hidapi), boxed for the readers and the devices screen. Enumerates the
/// bus: call it off the UI thread.
pub fn system_bus() -> Result<Box<dyn HidBus>, String> {
    HidApiBus::new().map(|bus| Box::new(bus) as Box<dyn HidBus>)
}

/// The real HID stack through hidapi.
pub struct HidApiBus {
    api: hidapi::HidApi,
}

impl HidApiBus {
    pub fn new() -> Result<HidApiBus, String> {
        let api = hidapi::HidApi::new().map_err(|e| e.to_string())?;
        Ok(HidApiBus { api })
    }
}

impl HidBus for HidApiBus {
    fn list(&mut self) -> Result<Vec<HidDeviceInfo>, String> {
        self.api.refresh_devices().map_err(|e| e.to_string())?;
        Ok(self
            .api
            .device_list()
            .map(|d| HidDeviceInfo {
                path: d.path().to_string_lossy().into_owned(),
                vendor_id: d.vendor_id(),
                product_id: d.product_id(),
                serial: d.serial_number().map(str::to_string).filter(|s| !s.is_empty()),
                manufacturer: d.manufacturer_string().map(str::to_string),
                product: d.product_string().map(str::to_string),
                usage_page: d.usage_page(),
                usage: d.usage(),
                interface_number: d.interface_number(),
            })
            .collect())
    }

    fn open(&mut self, info: &HidDeviceInfo) -> Result<Box<dyn HidPort>, String> {
        let path = std::ffi::CString::new(info.path.clone()).map_err(|e| e.to_string())?;
        let device = self.api.open_path(&path).map_err(|e| e.to_string())?;
        Ok(Box::new(HidApiPort { device }))
    }
}

struct HidApiPort {
    device: hidapi::HidDevice,
}

/// The longest report descriptor HID allows to be fetched (HID_MAX_DESCRIPTOR_SIZE).
const MAX_DESCRIPTOR_LEN: usize = 4096;
/// Larger than any POS report (full-speed interrupt reports are at most 64 bytes, high-speed 1024).
const MAX_REPORT_LEN: usize = 1025;

impl HidPort for HidApiPort {
    fn report_descriptor(&mut self) -> Result<Vec<u8>, String> {
        let mut buffer = vec![0u8; MAX_DESCRIPTOR_LEN];
        let len = self
            .device
            .get_report_descriptor(&mut buffer)
            .map_err(|e| e.to_string())?;
        buffer.truncate(len);
        Ok(buffer)
    }

    fn read_report(&mut self, timeout_ms: i32) -> Result<Option<Vec<u8>>, String> {
        let mut buffer = vec![0u8; MAX_REPORT_LEN];
        let len = self
            .device
            .read_timeout(&mut buffer, timeout_ms)
            .map_err(|e| e.to_string())?;
        if len == 0 {
            return Ok(None);
        }
        buffer.truncate(len);
        Ok(Some(buffer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(page: u16) -> HidDeviceInfo {
        HidDeviceInfo {
            path: "/dev/hidraw0".into(),
            vendor_id: 0x0C2E,
            product_id: 0x0B61,
            serial: Some("17123".into()),
            manufacturer: Some("Honeywell".into()),
            product: Some("1900".into()),
            usage_page: page,
            usage: 2,
            interface_number: 0,
        }
    }

    #[test]
    fn pos_pages_are_picked_up_and_settings_win() {
        let mut settings = HidSettings::default();
        assert_eq!(settings.role_of(&info(0x8C)), HidRole::Scanner);
        assert_eq!(settings.role_of(&info(0x8E)), HidRole::CardReader);
        assert_eq!(settings.role_of(&info(0x01)), HidRole::Ignore);
        settings.devices.push(HidDeviceSettings {
            vendor_id: 0x0C2E,
            product_id: 0x0B61,
            serial: "other".into(),
            role: HidRole::Ignore,
            label: String::new(),
        });
        assert_eq!(settings.role_of(&info(0x8C)), HidRole::Scanner, "another serial number");
        settings.devices[0].serial = "17123".into();
        assert_eq!(settings.role_of(&info(0x8C)), HidRole::Ignore);
        settings.devices[0].role = HidRole::CardReader;
        settings.devices[0].label = "Ридер".into();
        assert_eq!(settings.role_of(&info(0xFF00)), HidRole::CardReader);
        assert_eq!(settings.source_name(&info(0xFF00)), "Ридер");
        settings.pick_up_pos_devices = false;
        settings.devices.clear();
        assert_eq!(settings.role_of(&info(0x8C)), HidRole::Ignore);
        assert_eq!(settings.source_name(&info(0x8C)), "1900 (HID 0C2E:0B61)");
    }

    #[test]
    fn settings_read_from_toml() {
        let settings: HidSettings =
            toml::from_str("[[devices]]\nvendor_id = 0x0C2E\nproduct_id = 0x0B61\nrole = \"card_reader\"\n").unwrap();
        assert!(settings.pick_up_pos_devices);
        assert_eq!(settings.devices[0].role, HidRole::CardReader);
        assert_eq!(settings.devices[0].vendor_id, 0x0C2E);
    }
}
