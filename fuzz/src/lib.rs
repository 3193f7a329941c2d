//! Helpers shared by the fuzz targets: the fixed programme settings the parsers run with, a
//! reader that cuts the fuzzer's bytes into the parts of a structured input, a deterministic
//! chunker, the HID fixtures, and the masking checks every target makes.

use loyalty_till::scan::ScanParseConfig;
use loyalty_till::scan::magstripe::IdentifyField;

/// 2025-11-23, as in the parser tests, so that the committed token seeds stay valid.
pub const NOW: i64 = 1_763_900_000;
pub const TODAY: u16 = 2511;
pub const SECRET: &[u8] = b"programme-secret";
pub const MAX_AGE: i64 = 600;

pub const IDENTIFY_FIELDS: [IdentifyField; 4] = [
    IdentifyField::Track2Pan,
    IdentifyField::Track1Pan,
    IdentifyField::Track2Whole,
    IdentifyField::Track3Whole,
];

pub fn scan_config(identify_field: IdentifyField, secret: &[u8]) -> ScanParseConfig {
    ScanParseConfig {
        identify_field,
        token_secret: secret.to_vec(),
        token_max_age_secs: MAX_AGE,
        today_yymm: TODAY,
    }
}

/// Takes the parts of a structured input off the front of the fuzzer's bytes. A part past the
/// end reads as zeros, so that every input means something and no mutation is wasted.
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Input<'a> {
        Input { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((first, rest)) => {
                self.bytes = rest;
                *first
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes: fewer when the input runs out.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        taken
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

/// A tiny xorshift generator: cuts a stream into chunks that depend on one seed byte of the
/// input, so the fuzzer explores chunkings by mutating that byte.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u8) -> XorShift {
        // Never zero: xorshift stays at zero forever.
        XorShift(u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The HID fixtures of the integration tests, so that the fuzzer starts from real layouts.
pub const HID_FIXTURES: [&str; 3] = [
    include_str!("../../tests/fixtures/hid/honeywell_voyager_1400g.hex"),
    include_str!("../../tests/fixtures/hid/spec_msr_magtek_layout.hex"),
    include_str!("../../tests/fixtures/hid/spec_scanner_no_report_ids.hex"),
];

/// The `[descriptor]` bytes of a fixture (`# comment` lines, `[section]` headers, hex bytes).
pub fn fixture_descriptor(text: &str) -> Vec<u8> {
    let mut descriptor = Vec::new();
    let mut in_descriptor = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            in_descriptor = line == "[descriptor]";
        } else if in_descriptor {
            descriptor.extend(line.split_whitespace().filter_map(|h| u8::from_str_radix(h, 16).ok()));
        }
    }
    descriptor
}

/// Whether masking `original` as `masked` hid enough of it. Both maskers (`mask_pan`,
/// `mask_code`) keep the length in characters and star at least one character of anything five
/// characters or longer, so the masked text equals the original only when the original was
/// already mostly stars.
pub fn assert_masked(original: &str, masked: &str) {
    assert_eq!(
        original.chars().count(),
        masked.chars().count(),
        "masking changed the length"
    );
    if original.chars().count() >= 5 && !original.contains('*') {
        assert_ne!(
            original,
            masked,
            "masking left {} characters as they were",
            original.len()
        );
    }
}

/// A card number or other long digit string that must never be shown: `shown` is a `Debug` or
/// `Display` meant for logs. Shorter runs are left out because the timestamps and counts those
/// texts show legitimately may hold them.
pub fn assert_not_shown(secret: &str, shown: &str) {
    if secret.len() >= 11 && secret.bytes().all(|b| b.is_ascii_digit()) {
        assert!(
            !shown.contains(secret),
            "a {}-digit number is shown unmasked",
            secret.len()
        );
    }
}

/// The longest run of ASCII digits in `text`.
pub fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}
