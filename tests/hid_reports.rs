//! HID POS scanners and magnetic stripe readers: report descriptors and input reports from
//! tests/fixtures/hid (each file says where its layout comes from) through the pure parsers of
//! `devices::hid`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::hid_fixture::{Fixture, fixture_dir, load};
use loyalty_till::devices::hid::descriptor::{DescriptorError, ReportDescriptor, Usage};
use loyalty_till::devices::hid::pos::{
    MAX_READ_BYTES, PosMsrReader, PosScannerReader, ReportError, USAGE_DECODED_DATA, aim_symbology_name,
};
use loyalty_till::scan::magstripe::{IdentifyField, parse_swipe};

fn scanner(fixture: &Fixture) -> PosScannerReader {
    PosScannerReader::new(&ReportDescriptor::parse(&fixture.descriptor).unwrap()).unwrap()
}

/// A Honeywell-layout report: ID 2, count, AIM, 56 data bytes, code ID, reserved, flags.
fn honeywell(aim: &[u8; 3], data: &[u8], continued: bool) -> Vec<u8> {
    assert!(data.len() <= 56);
    let mut report = vec![0x02, data.len() as u8];
    report.extend_from_slice(aim);
    report.extend_from_slice(data);
    report.resize(61, 0);
    report.extend_from_slice(&[0x73, 0x00, u8::from(continued)]);
    report
}

#[test]
fn every_fixture_descriptor_parses() {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hex"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in &names {
        let fixture = load(name);
        let parsed = ReportDescriptor::parse(&fixture.descriptor).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!parsed.input_reports().is_empty(), "{name}");
        assert!(!fixture.reports.is_empty(), "{name} has no sample report");
    }
}

#[test]
fn honeywell_layout_is_found_by_usage() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let parsed = ReportDescriptor::parse(&fixture.descriptor).unwrap();
    assert!(parsed.uses_report_ids());
    let report = parsed.input_report(2).unwrap();
    assert_eq!(report.byte_len(), 63);
    let data = report.fields_with(USAGE_DECODED_DATA).next().unwrap();
    assert_eq!((data.bit_offset, data.bit_size, data.count), (32, 8, 56));
    assert!(!data.constant);
    let symbology: Vec<u32> = (0xFB..=0xFD)
        .map(|id| report.fields_with(Usage::new(0x8C, id)).next().unwrap().bit_offset)
        .collect();
    assert_eq!(symbology, [8, 16, 24]);
    let continued = report.fields_with(Usage::new(0x8C, 0xFF)).next().unwrap();
    assert_eq!((continued.bit_offset, continued.bit_size), (62 * 8, 1));
    assert!(report.fields.iter().filter(|f| f.constant).count() >= 2);
    let reader = scanner(&fixture);
    assert_eq!(reader.layout().report_id(), 2);
    assert_eq!(reader.layout().data_capacity(), 56);
}

#[test]
fn a_code_split_over_continued_reports_joins() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let mut reader = scanner(&fixture);
    assert_eq!(reader.feed(fixture.report("qr part 1")).unwrap(), None);
    let read = reader.feed(fixture.report("qr part 2")).unwrap().unwrap();
    assert_eq!(
        read.data,
        b"https://example.org/guest/GMB-00001234?t=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-long-token".to_vec()
    );
    assert_eq!(read.aim_id.as_deref(), Some("]Q1"));
    assert_eq!(read.symbology(), Some("QR Code"));
    // The next read starts afresh.
    let read = reader.feed(fixture.report("ean13")).unwrap().unwrap();
    assert_eq!(read.data, b"4600000012342");
    assert_eq!(read.symbology(), Some("EAN-13"));
}

#[test]
fn a_byte_count_keeps_nuls_inside_the_data() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let read = scanner(&fixture)
        .feed(fixture.report("code128 with nul"))
        .unwrap()
        .unwrap();
    assert_eq!(read.data, b"AB\0CD");
    assert_eq!(read.symbology(), Some("Code 128"));
}

#[test]
fn reports_with_another_id_are_ignored_even_mid_read() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let mut reader = scanner(&fixture);
    assert_eq!(reader.feed(fixture.report("other report id")).unwrap(), None);
    assert_eq!(reader.feed(fixture.report("qr part 1")).unwrap(), None);
    assert_eq!(reader.feed(fixture.report("other report id")).unwrap(), None);
    let read = reader.feed(fixture.report("qr part 2")).unwrap().unwrap();
    assert_eq!(read.data.len(), 88);
}

#[test]
fn without_report_ids_or_byte_count_nul_padding_is_trimmed_and_parts_join() {
    let fixture = load("spec_scanner_no_report_ids.hex");
    let parsed = ReportDescriptor::parse(&fixture.descriptor).unwrap();
    assert!(!parsed.uses_report_ids());
    // The Output and Feature items add nothing to the input report: 3 + 32 bytes and a flag byte.
    assert_eq!(parsed.input_reports().len(), 1);
    assert_eq!(parsed.input_reports()[0].byte_len(), 36);
    let mut reader = scanner(&fixture);
    let read = reader.feed(fixture.report("ean8")).unwrap().unwrap();
    assert_eq!(read.data, b"46000003");
    assert_eq!(read.symbology(), Some("EAN-8"));
    assert_eq!(reader.feed(fixture.report("gs1-128 part 1")).unwrap(), None);
    let read = reader.feed(fixture.report("gs1-128 part 2")).unwrap().unwrap();
    assert_eq!(read.data, b"\x1d010460000000000821ABCDEFGHIJKLMNOPQRSTUV");
    assert_eq!(read.symbology(), Some("GS1-128"));
    let read = reader.feed(fixture.report("datamatrix")).unwrap().unwrap();
    assert_eq!(read.symbology(), Some("GS1 DataMatrix"));
    // Debug shows the length, not the code.
    let shown = format!("{read:?}");
    assert!(!shown.contains("0104600"), "{shown}");
    assert!(shown.contains("<16 bytes>"), "{shown}");
}

#[test]
fn symbology_identifiers_map_to_names() {
    let cases = [
        ("]A0", Some("Code 39")),
        ("]C0", Some("Code 128")),
        ("]C1", Some("GS1-128")),
        ("]E0", Some("EAN-13")),
        ("]E4", Some("EAN-8")),
        ("]Q1", Some("QR Code")),
        ("]d1", Some("Data Matrix")),
        ("]L0", Some("PDF417")),
        ("]e0", Some("GS1 DataBar")),
        ("]I0", Some("ITF")),
        ("]z0", Some("Aztec")),
        ("]X0", None),
        ("E0", None),
    ];
    for (aim, name) in cases {
        assert_eq!(aim_symbology_name(aim), name, "{aim}");
    }
    // Read from a report: a missing identifier (all NUL) gives no symbology.
    let fixture = load("honeywell_voyager_1400g.hex");
    let read = scanner(&fixture)
        .feed(&honeywell(&[0, 0, 0], b"123", false))
        .unwrap()
        .unwrap();
    assert_eq!((read.aim_id, read.data), (None, b"123".to_vec()));
}

#[test]
fn magnetic_stripe_tracks_become_text_the_swipe_parser_reads() {
    let fixture = load("spec_msr_magtek_layout.hex");
    let reader = PosMsrReader::new(&ReportDescriptor::parse(&fixture.descriptor).unwrap()).unwrap();
    assert_eq!(reader.layout().report_id(), 0);
    let swipe = reader
        .feed(fixture.report("tracks 1 and 2 without sentinels"))
        .unwrap()
        .unwrap();
    assert!(swipe.tracks[2].is_none());
    let text = swipe.to_swipe_text();
    assert!(
        text.starts_with("%B4111111111111111^GUEST/TEST^2912"),
        "length {}",
        text.len()
    );
    let parsed = parse_swipe(&text, 2511).unwrap();
    assert_eq!(parsed.identifier(IdentifyField::Track2Pan).unwrap(), "4111111111111111");
    assert_eq!(parsed.identifier(IdentifyField::Track1Pan).unwrap(), "4111111111111111");
    assert!(!format!("{swipe:?}").contains("411111"));

    let swipe = reader.feed(fixture.report("track 2 with sentinels")).unwrap().unwrap();
    let text = swipe.to_swipe_text();
    assert_eq!(text, ";4111111111111111=29121010000000000?");
    assert_eq!(
        parse_swipe(&text, 2511)
            .unwrap()
            .identifier(IdentifyField::Track2Pan)
            .unwrap(),
        "4111111111111111"
    );

    assert_eq!(
        reader.feed(fixture.report("length beyond data")),
        Err(ReportError::LengthBeyondData {
            length: 120,
            capacity: 110
        })
    );
    let short = &fixture.report("track 2 with sentinels")[..300];
    assert_eq!(reader.feed(short), Err(ReportError::TooShort { len: 300, need: 337 }));
}

#[test]
fn malformed_descriptors_are_errors() {
    let cases: [(&[u8], DescriptorError); 9] = [
        (&[0x05], DescriptorError::Truncated { at: 0 }),
        (&[0x05, 0x8C, 0x27, 0xFF, 0xFF], DescriptorError::Truncated { at: 2 }),
        (&[0xFE, 0x05, 0x00, 0x01], DescriptorError::Truncated { at: 0 }),
        (&[0x05, 0x8C, 0xB4], DescriptorError::PopWithoutPush { at: 2 }),
        (&[0xC0], DescriptorError::EndCollectionWithoutStart { at: 0 }),
        (&[0x09, 0x02, 0xA1, 0x01], DescriptorError::UnclosedCollection),
        (
            // Report Size 65535 × Report Count 65535.
            &[0x77, 0xFF, 0xFF, 0x00, 0x00, 0x97, 0xFF, 0xFF, 0x00, 0x00, 0x81, 0x02],
            DescriptorError::ReportTooLarge { at: 10 },
        ),
        (&[0x85, 0x00], DescriptorError::BadReportId { at: 0, id: 0 }),
        (&[0x19, 0x10, 0x29, 0x01], DescriptorError::BadUsageRange { at: 2 }),
    ];
    for (bytes, expected) in cases {
        assert_eq!(ReportDescriptor::parse(bytes), Err(expected.clone()), "{bytes:02x?}");
        assert!(!expected.to_string().is_empty());
    }
    // A report growing past the limit item by item.
    let mut growing = vec![0x75, 0x08, 0x96, 0x00, 0x10];
    growing.extend(std::iter::repeat_n([0x81, 0x02], 20).flatten());
    assert!(matches!(
        ReportDescriptor::parse(&growing),
        Err(DescriptorError::ReportTooLarge { .. })
    ));
    // A descriptor with no Decoded Data is no scanner.
    let mouse = [
        0x05, 0x01, 0x09, 0x02, 0xA1, 0x01, 0x75, 0x08, 0x95, 0x03, 0x81, 0x02, 0xC0,
    ];
    assert!(PosScannerReader::new(&ReportDescriptor::parse(&mouse).unwrap()).is_err());
    assert!(PosMsrReader::new(&ReportDescriptor::parse(&mouse).unwrap()).is_err());
}

#[test]
fn malformed_reports_are_errors_and_reset_the_read() {
    let fixture = load("honeywell_voyager_1400g.hex");
    let mut reader = scanner(&fixture);
    assert_eq!(reader.feed(&[]), Err(ReportError::Empty));
    assert_eq!(
        reader.feed(&[0x02, 0x03]),
        Err(ReportError::TooShort { len: 2, need: 64 })
    );
    let mut too_long_count = honeywell(b"]Q1", b"abc", false);
    too_long_count[1] = 57;
    assert_eq!(
        reader.feed(&too_long_count),
        Err(ReportError::LengthBeyondData {
            length: 57,
            capacity: 56
        })
    );
    // A partial read is dropped by an error: the next read holds only its own data.
    assert_eq!(reader.feed(&honeywell(b"]Q1", b"first-", true)).unwrap(), None);
    assert!(reader.feed(&[0x02, 0x00]).is_err());
    let read = reader
        .feed(&honeywell(b"]E0", b"4600000012342", false))
        .unwrap()
        .unwrap();
    assert_eq!(read.data, b"4600000012342");
    // A continuation that never ends.
    let endless = honeywell(b"]Q1", &[b'x'; 56], true);
    let mut result = Ok(None);
    for _ in 0..=MAX_READ_BYTES / 56 {
        result = reader.feed(&endless);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(ReportError::TooLong { max: MAX_READ_BYTES }));
    let read = reader.feed(&honeywell(b"]A0", b"ABC", false)).unwrap().unwrap();
    assert_eq!((read.data.as_slice(), read.symbology()), (&b"ABC"[..], Some("Code 39")));
}

/// xorshift64: deterministic, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next() % (max_len as u64 + 1)) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let fixtures: Vec<Fixture> = [
        "honeywell_voyager_1400g.hex",
        "spec_scanner_no_report_ids.hex",
        "spec_msr_magtek_layout.hex",
    ]
    .iter()
    .map(|n| load(n))
    .collect();
    let mut parsed_ok = 0;
    for round in 0..2_000 {
        // Pure noise, and a fixture descriptor with a few bytes changed (which reaches further).
        let noise = rng.bytes(96);
        let mut mutated = fixtures[round % fixtures.len()].descriptor.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % mutated.len();
            mutated[at] = rng.next() as u8;
        }
        for descriptor in [noise, mutated] {
            let Ok(parsed) = ReportDescriptor::parse(&descriptor) else {
                continue;
            };
            parsed_ok += 1;
            if let Ok(mut reader) = PosScannerReader::new(&parsed) {
                for _ in 0..4 {
                    let _ = reader.feed(&rng.bytes(80));
                }
            }
            if let Ok(reader) = PosMsrReader::new(&parsed) {
                let _ = reader.feed(&rng.bytes(400));
            }
        }
        // Random reports into the fixtures' readers.
        let mut reader = scanner(&fixtures[round % 2]);
        for _ in 0..3 {
            let mut report = rng.bytes(70);
            if let Some(first) = report.first_mut()
                && rng.next().is_multiple_of(2)
            {
                *first = 0x02;
            }
            if let Ok(Some(read)) = reader.feed(&report) {
                assert!(read.data.len() <= MAX_READ_BYTES);
            }
        }
        let msr = PosMsrReader::new(&ReportDescriptor::parse(&fixtures[2].descriptor).unwrap()).unwrap();
        let _ = msr.feed(&rng.bytes(400));
    }
    // The loop did reach the readers, not only the parser's first error.
    assert!(parsed_ok > 100, "{parsed_ok}");
}
