//! `classify`: any raw read from any device, with every identify-field setting and without a
//! programme key. Never a panic; an identifier comes out of the read verbatim, its masked form
//! hides it, and the log forms of the result never show a long number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loyalty_till::domain::ScanKind;
use loyalty_till::scan::payload::PayloadError;
use loyalty_till::scan::{ScanDetail, ScanError, classify};
use loyalty_till_fuzz::{
    IDENTIFY_FIELDS, NOW, SECRET, assert_masked, assert_not_shown, longest_digit_run, scan_config,
};

fuzz_target!(|raw: &[u8]| {
    let mut payload_results = Vec::new();
    for field in IDENTIFY_FIELDS {
        for secret in [SECRET, b""] {
            let result = classify(raw, &scan_config(field, secret), NOW);
            match &result {
                Ok(parsed) => {
                    let identifier = parsed.identifier.as_str();
                    assert!(!identifier.is_empty());
                    assert!(
                        raw.windows(identifier.len()).any(|w| w == identifier.as_bytes()),
                        "the identifier is not part of the read"
                    );
                    assert_masked(identifier, &parsed.masked);
                    let shown = format!("{parsed:?}");
                    assert!(shown.contains(&format!("{:?}", parsed.masked)));
                    let is_swipe = matches!(parsed.detail, ScanDetail::Swipe(_));
                    assert_eq!(is_swipe, parsed.kind == ScanKind::MagneticCard);
                    if is_swipe {
                        assert_not_shown(identifier, &shown);
                    }
                    let event = parsed.to_scan_event("fuzz", 0);
                    assert_eq!(event.payload, identifier);
                    assert_eq!(event.kind, parsed.kind);
                }
                Err(e) => {
                    let _ = e.refusal();
                    // Messages hold positions and lengths, never the read; a token's age is
                    // the one number that may be long.
                    if !matches!(e, ScanError::Payload(PayloadError::Expired { .. })) {
                        assert!(longest_digit_run(&e.to_string()) < 6, "an error message shows digits");
                    }
                }
            }
            let is_payload = match &result {
                Ok(parsed) => matches!(parsed.detail, ScanDetail::Payload(_)),
                Err(e) => matches!(e, ScanError::Payload(_)),
            };
            if is_payload && secret == SECRET {
                payload_results.push(result);
            }
        }
    }
    // The identify field only chooses among magnetic tracks: a QR or barcode reads the same.
    assert!(payload_results.windows(2).all(|w| w[0] == w[1]));
});
