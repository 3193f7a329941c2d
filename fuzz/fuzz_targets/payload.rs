//! QR and barcode payloads: plain card codes and signed app tokens. Never a panic; a token that
//! passes is exactly what its issuer signed, fails under another key, and is refused whole
//! without any key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loyalty_till::domain::MAX_CODE_LEN;
use loyalty_till::mask::mask_code;
use loyalty_till::scan::payload::{
    MAX_CLOCK_SKEW_SECS, Payload, PayloadError, parse_payload, sign_gift_token, sign_guest_token,
};
use loyalty_till_fuzz::{MAX_AGE, NOW, SECRET, assert_masked, assert_not_shown};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_payload(text, SECRET, NOW, MAX_AGE);

    // Without the programme's key a token is never trusted; anything else reads the same.
    let is_token = text.starts_with("GMB1.") || text.starts_with("GMB1G.");
    let keyless = parse_payload(text, b"", NOW, MAX_AGE);
    if is_token {
        assert_eq!(keyless, Err(PayloadError::NoKey));
    } else {
        assert_eq!(keyless, parsed);
    }

    let payload = match parsed {
        Ok(payload) => payload,
        Err(e) => {
            // Messages never carry the scanned text.
            if text.len() >= 8 {
                assert!(!e.to_string().contains(text), "the error message shows the code");
            }
            return;
        }
    };
    let code = payload.identify_code();
    assert!(!code.is_empty() && code.len() <= MAX_CODE_LEN);
    assert_masked(code, &mask_code(code));
    let shown = format!("{payload:?}");
    match &payload {
        Payload::CardCode(card) => {
            assert!(!is_token);
            assert_eq!(card, text);
            assert!(card.bytes().all(|b| (b' '..=b'~').contains(&b)));
            assert_not_shown(card, &shown);
        }
        Payload::GuestToken { guest_code, issued_at } => {
            assert!(text.starts_with("GMB1."));
            check_token_fields(&[guest_code], *issued_at, &shown);
            let signed = sign_guest_token(SECRET, guest_code, *issued_at);
            assert_eq!(parse_payload(&signed, SECRET, NOW, MAX_AGE).as_ref(), Ok(&payload));
        }
        Payload::GiftToken {
            guest_code,
            gift_code,
            issued_at,
        } => {
            assert!(text.starts_with("GMB1G."));
            check_token_fields(&[guest_code, gift_code], *issued_at, &shown);
            let signed = sign_gift_token(SECRET, guest_code, gift_code, *issued_at);
            assert_eq!(parse_payload(&signed, SECRET, NOW, MAX_AGE).as_ref(), Ok(&payload));
        }
    }
    if is_token {
        // A signature made with one key says nothing under another.
        assert_eq!(
            parse_payload(text, b"another-programme", NOW, MAX_AGE),
            Err(PayloadError::Forged)
        );
    }
});

/// Codes of an accepted token are printable without dots, and its age is within the limits.
fn check_token_fields(codes: &[&String], issued_at: i64, shown: &str) {
    for code in codes {
        assert!(!code.is_empty() && code.len() <= MAX_CODE_LEN);
        assert!(code.bytes().all(|b| b.is_ascii_graphic() && b != b'.'));
        // `Debug` shows the issue time: a code that happens to be the same digits is no leak.
        if !issued_at.to_string().contains(code.as_str()) {
            assert_not_shown(code, shown);
        }
    }
    assert!(issued_at <= NOW + MAX_CLOCK_SKEW_SECS);
    assert!(issued_at >= NOW - MAX_AGE);
}
