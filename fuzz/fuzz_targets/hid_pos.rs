//! HID POS scanner and magnetic stripe reader reports against a parsed descriptor, then on into
//! the scan parsers as the till does.
//!
//! Input: one byte choosing the descriptor (0-2: the fixtures of tests/fixtures/hid, in the order
//! of `HID_FIXTURES`; 3: the descriptor follows, a 16-bit little-endian length then its bytes),
//! then reports, each a 16-bit little-endian length then its bytes. Checked: never a panic,
//! reads stay within their limits, tracks are printable, and no `Debug` shows the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loyalty_till::devices::hid::descriptor::ReportDescriptor;
use loyalty_till::devices::hid::pos::{MAX_READ_BYTES, PosMsrReader, PosScannerReader};
use loyalty_till::scan::classify;
use loyalty_till::scan::magstripe::{IdentifyField, parse_swipe};
use loyalty_till_fuzz::{HID_FIXTURES, Input, NOW, SECRET, TODAY, assert_masked, fixture_descriptor, scan_config};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let fixture;
    let descriptor_bytes = match usize::from(input.u8()) % (HID_FIXTURES.len() + 1) {
        i if i < HID_FIXTURES.len() => {
            fixture = fixture_descriptor(HID_FIXTURES[i]);
            fixture.as_slice()
        }
        _ => {
            let len = usize::from(input.u16());
            input.bytes(len)
        }
    };
    let Ok(descriptor) = ReportDescriptor::parse(descriptor_bytes) else {
        return;
    };
    let mut scanner = PosScannerReader::new(&descriptor).ok();
    let msr = PosMsrReader::new(&descriptor).ok();
    if scanner.is_none() && msr.is_none() {
        return;
    }
    let config = scan_config(IdentifyField::default(), SECRET);
    while !input.is_empty() {
        let len = usize::from(input.u16());
        let report = input.bytes(len);
        if let Some(scanner) = scanner.as_mut()
            && let Ok(Some(read)) = scanner.feed(report)
        {
            assert!(read.data.len() <= MAX_READ_BYTES);
            if let Some(aim) = &read.aim_id {
                assert!((1..=3).contains(&aim.len()) && aim.bytes().all(|b| b.is_ascii_graphic()));
            }
            let _ = read.symbology();
            let shown = format!("{read:?} {scanner:?}");
            // Longer than any number the layout shows, so only the data itself could match.
            if let Ok(digits) = std::str::from_utf8(&read.data)
                && digits.len() >= 8
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                assert!(!shown.contains(digits), "a scanned number is shown unmasked");
            }
            if let Ok(parsed) = classify(&read.data, &config, NOW) {
                assert_masked(&parsed.identifier, &parsed.masked);
            }
        }
        if let Some(msr) = &msr
            && let Ok(Some(swipe)) = msr.feed(report)
        {
            for track in swipe.tracks.iter().flatten() {
                assert!(!track.is_empty() && track.bytes().all(|b| (0x20..0x7F).contains(&b)));
                assert!(track.len() <= report.len());
            }
            let shown = format!("{swipe:?}");
            for track in swipe.tracks.iter().flatten() {
                if track.len() >= 6 && track.bytes().all(|b| b.is_ascii_digit()) {
                    assert!(!shown.contains(track.as_str()));
                }
            }
            let text = swipe.to_swipe_text();
            let _ = parse_swipe(&text, TODAY);
            if let Ok(parsed) = classify(text.as_bytes(), &config, NOW) {
                assert_masked(&parsed.identifier, &parsed.masked);
            }
        }
    }
});
