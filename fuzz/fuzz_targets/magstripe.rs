//! ISO 7811 / 7813 track parsing: any text a card reader may type. Never a panic, the identifier
//! is taken verbatim from the read, and no log text shows a long number unmasked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loyalty_till::scan::magstripe::{BankCard, Swipe, Track1, Track2, TrackRead, luhn_ok, mask_pan, parse_swipe};
use loyalty_till_fuzz::{IDENTIFY_FIELDS, TODAY, assert_masked, assert_not_shown, longest_digit_run};

fuzz_target!(|data: &[u8]| {
    // `classify` hands over UTF-8 text only.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    assert_masked(text, &mask_pan(text));
    let _ = luhn_ok(text);

    let swipe = match parse_swipe(text, TODAY) {
        Ok(swipe) => swipe,
        Err(e) => {
            // Errors name a track and a reason, never the data.
            assert!(longest_digit_run(&e.to_string()) < 5, "an error message shows digits");
            return;
        }
    };
    assert!(swipe.garbage <= text.chars().count());
    for field in IDENTIFY_FIELDS {
        if let Ok(identifier) = swipe.identifier(field) {
            assert!(!identifier.is_empty());
            // The identifier is cut out of the read, never made up or reordered.
            assert!(text.contains(&identifier), "the identifier is not part of the read");
            assert_masked(&identifier, &mask_pan(&identifier));
        }
    }
    if let TrackRead::Read(track2) = &swipe.track2 {
        // `whole` rebuilds the track exactly as it was read.
        assert!(text.contains(&track2.whole()));
    }
    let shown = format!("{swipe} {swipe:?}");
    for secret in sensitive_texts(&swipe) {
        assert_not_shown(secret, &shown);
    }
});

/// Every piece of track data the swipe holds.
fn sensitive_texts(swipe: &Swipe) -> Vec<&str> {
    let mut texts = Vec::new();
    if let TrackRead::Read(track1) = &swipe.track1 {
        match track1 {
            Track1::Bank { card: c, name } => {
                check_card(c);
                texts.extend([c.pan.expose(), c.discretionary.expose(), name.expose()]);
            }
            Track1::Other { data, .. } => texts.push(data.expose()),
        }
    }
    if let TrackRead::Read(track2) = &swipe.track2 {
        match track2 {
            Track2::Bank(c) => {
                check_card(c);
                texts.extend([c.pan.expose(), c.discretionary.expose()]);
            }
            Track2::Number(number) | Track2::Other(number) => texts.push(number.expose()),
        }
    }
    if let TrackRead::Read(track3) = &swipe.track3 {
        texts.push(track3.0.expose());
    }
    texts
}

/// The fields of a bank-style card agree with what they were parsed from.
fn check_card(card: &BankCard) {
    let pan = card.pan.expose();
    assert!((1..=19).contains(&pan.len()) && pan.bytes().all(|b| b.is_ascii_digit()));
    assert!(card.expiry_yymm <= 9999);
    assert!(card.service_code.len() == 3 && card.service_code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(card.luhn_ok, luhn_ok(pan));
    assert_eq!(card.expired, card.expiry_yymm < TODAY);
}
