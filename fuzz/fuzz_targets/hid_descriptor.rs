//! HID report descriptors as a device returns them: any bytes. Never a panic; a parsed
//! descriptor keeps every field inside its report and within the size limit, an error points
//! into the descriptor, and the POS layouts found in it can read a report of its size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loyalty_till::devices::hid::descriptor::{DescriptorError, MAX_REPORT_BITS, ReportDescriptor};
use loyalty_till::devices::hid::pos::{PosMsrReader, PosScannerReader};

fuzz_target!(|data: &[u8]| {
    let descriptor = match ReportDescriptor::parse(data) {
        Ok(descriptor) => descriptor,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let at = match e {
                DescriptorError::UnclosedCollection => None,
                DescriptorError::Truncated { at }
                | DescriptorError::PopWithoutPush { at }
                | DescriptorError::PushTooDeep { at }
                | DescriptorError::EndCollectionWithoutStart { at }
                | DescriptorError::CollectionTooDeep { at }
                | DescriptorError::ReportTooLarge { at }
                | DescriptorError::BadReportId { at, .. }
                | DescriptorError::BadUsageRange { at }
                | DescriptorError::TooManyUsages { at }
                | DescriptorError::ReportIdAfterUnnumberedReport { at }
                | DescriptorError::UnnumberedReportAfterReportIds { at } => Some(at),
            };
            assert!(at.is_none_or(|at| at < data.len()), "an error outside the descriptor");
            return;
        }
    };
    let reports = descriptor.input_reports();
    for (i, report) in reports.iter().enumerate() {
        assert!(
            reports[..i].iter().all(|r| r.report_id != report.report_id),
            "report ID {} listed twice",
            report.report_id
        );
        // Report ID 0 is reserved: it stands for "no report IDs", and with report IDs every
        // report starts with its own, non-zero one (HID 1.11, 6.2.2.7).
        assert_eq!(
            report.report_id == 0,
            !descriptor.uses_report_ids(),
            "report ID {} in a descriptor {} report IDs",
            report.report_id,
            if descriptor.uses_report_ids() {
                "with"
            } else {
                "without"
            }
        );
        assert!(u64::from(report.bit_len) <= MAX_REPORT_BITS);
        for field in &report.fields {
            assert!(field.bit_size > 0 && field.count > 0);
            let end = u64::from(field.bit_offset) + u64::from(field.bit_size) * u64::from(field.count);
            assert!(end <= u64::from(report.bit_len), "a field past the end of its report");
        }
        assert_eq!(descriptor.input_report(report.report_id), Some(report));
    }

    // A report of exactly the size the descriptor gives is never "too short".
    if let Ok(mut scanner) = PosScannerReader::new(&descriptor) {
        let report = zero_report(&descriptor, scanner.layout().report_id());
        assert!(scanner.feed(&report).is_ok());
    }
    if let Ok(msr) = PosMsrReader::new(&descriptor) {
        let report = zero_report(&descriptor, msr.layout().report_id());
        assert!(msr.feed(&report).is_ok());
    }
});

/// An all-zero input report of `report_id`, with its ID byte when the descriptor uses IDs.
fn zero_report(descriptor: &ReportDescriptor, report_id: u8) -> Vec<u8> {
    let len = descriptor.input_report(report_id).map_or(0, |r| r.byte_len());
    let mut report = vec![0; len + usize::from(descriptor.uses_report_ids())];
    if descriptor.uses_report_ids() {
        report[0] = report_id;
    }
    report
}
