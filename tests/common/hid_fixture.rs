//! HID fixtures in tests/fixtures/hid: report descriptors and reports of real layouts, as hex.

use loyalty_till::devices::hid::bus::HidDeviceInfo;
use std::path::{Path, PathBuf};

/// A fixture: its descriptor and its labelled reports.
pub struct Fixture {
    pub descriptor: Vec<u8>,
    pub reports: Vec<(String, Vec<u8>)>,
}

impl Fixture {
    pub fn report(&self, label: &str) -> &[u8] {
        &self
            .reports
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no report {label:?}"))
            .1
    }
}

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hid")
}

/// `# comment` lines, `[descriptor]` and `[report label]` headers, hex bytes in between.
pub fn load(name: &str) -> Fixture {
    let text = std::fs::read_to_string(fixture_dir().join(name)).unwrap();
    assert!(text.starts_with("# "), "{name} must say where its layout comes from");
    let mut descriptor = Vec::new();
    let mut reports: Vec<(String, Vec<u8>)> = Vec::new();
    let mut in_descriptor = false;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if line == "[descriptor]" {
            in_descriptor = true;
        } else if let Some(label) = line.strip_prefix("[report ").and_then(|l| l.strip_suffix(']')) {
            in_descriptor = false;
            reports.push((label.to_string(), Vec::new()));
        } else {
            let bytes = line
                .split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).unwrap_or_else(|_| panic!("{name}: bad hex {h:?}")));
            if in_descriptor {
                descriptor.extend(bytes);
            } else {
                reports.last_mut().expect("bytes before any section").1.extend(bytes);
            }
        }
    }
    Fixture { descriptor, reports }
}

/// A Honeywell scanner (page 0x8C) or card reader (page 0x8E) interface as the bus lists it.
pub fn honeywell_info(path: &str, usage_page: u16, product: &str) -> HidDeviceInfo {
    HidDeviceInfo {
        path: path.to_string(),
        vendor_id: 0x0C2E,
        product_id: if usage_page == 0x8E { 0x0002 } else { 0x0B61 },
        serial: Some("17123".to_string()),
        manufacturer: Some("Honeywell".to_string()),
        product: Some(product.to_string()),
        usage_page,
        usage: 2,
        interface_number: 0,
    }
}
