#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The scan parsers: magnetic stripe tracks, QR / barcode payloads, diagnostics escapes, and
//! `classify` over all of them, including random input.

mod common;

use common::Rng;
use loyalty_till::domain::{MAX_CODE_LEN, ScanKind};
use loyalty_till::scan::escape::{EscapeError, unescape_line};
use loyalty_till::scan::magstripe::{
    IdentifyField, MagError, Swipe, Track1, Track2, TrackProblem, TrackRead, mask_pan, parse_swipe,
};
use loyalty_till::scan::payload::{Payload, PayloadError, parse_payload, sign_gift_token, sign_guest_token};
use loyalty_till::scan::{MAX_SCAN_BYTES, ParsedScan, ScanDetail, ScanError, ScanParseConfig, classify};

/// 2025-11-23, and the same month as the stripe writes it.
const NOW: i64 = 1_763_900_000;
const TODAY: u16 = 2511;
const SECRET: &[u8] = b"programme-secret";
const MAX_AGE: i64 = 600;

/// The Visa test number (Luhn ok) and the same number with its check digit changed.
const PAN: &str = "4111111111111111";
const BAD_LUHN_PAN: &str = "4111111111111112";

const TRACK1: &str = "%B4111111111111111^DOE/JOHN^2512101123456789000000?";
const TRACK2: &str = ";4111111111111111=25121011234567890000?";
const TRACK3: &str = ";011234567890123456=724724100000000000030300?";

fn config(identify_field: IdentifyField) -> ScanParseConfig {
    ScanParseConfig {
        identify_field,
        token_secret: SECRET.to_vec(),
        token_max_age_secs: MAX_AGE,
        today_yymm: TODAY,
    }
}

fn classify_text(text: &str) -> Result<ParsedScan, ScanError> {
    classify(text.as_bytes(), &config(IdentifyField::default()), NOW)
}

fn swipe(text: &str) -> Swipe {
    parse_swipe(text, TODAY).unwrap()
}

fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

fn assert_masked(shown: &str) {
    assert!(!shown.contains(PAN), "unmasked card number in {shown}");
    assert!(longest_digit_run(shown) < 13, "a long digit run in {shown}");
}

// ----- Magnetic stripe -----

#[test]
fn bank_card_reads_all_three_tracks() {
    let s = swipe(&format!("{TRACK1}{TRACK2}{TRACK3}"));
    let TrackRead::Read(Track1::Bank { card, name }) = &s.track1 else {
        panic!("track 1 not read: {s:?}");
    };
    assert_eq!(card.pan.expose(), PAN);
    assert_eq!(name.expose(), "DOE/JOHN");
    assert_eq!(card.expiry_yymm, 2512);
    assert_eq!(card.service_code, "101");
    assert_eq!(card.discretionary.expose(), "123456789000000");
    assert!(card.luhn_ok);
    assert!(!card.expired);
    let TrackRead::Read(Track2::Bank(card2)) = &s.track2 else {
        panic!("track 2 not read: {s:?}");
    };
    assert_eq!(card2.pan.expose(), PAN);
    assert_eq!(card2.discretionary.expose(), "1234567890000");
    assert!(matches!(s.track3, TrackRead::Read(_)));
    assert_eq!(s.garbage, 0);
    assert_eq!(s.identifier(IdentifyField::Track2Pan).unwrap(), PAN);
    assert_eq!(s.identifier(IdentifyField::Track1Pan).unwrap(), PAN);
    assert_eq!(
        s.identifier(IdentifyField::Track2Whole).unwrap(),
        "4111111111111111=25121011234567890000"
    );
    assert_eq!(
        s.identifier(IdentifyField::Track3Whole).unwrap(),
        "011234567890123456=724724100000000000030300"
    );
}

#[test]
fn track3_may_start_with_plus() {
    let s = swipe("+0123456789=12?");
    assert_eq!(s.identifier(IdentifyField::Track3Whole).unwrap(), "0123456789=12");
    assert_eq!(s.track2, TrackRead::Missing);
}

#[test]
fn track1_alone_identifies_through_the_fallback() {
    let parsed = classify_text(TRACK1).unwrap();
    assert_eq!(parsed.kind, ScanKind::MagneticCard);
    assert_eq!(parsed.identifier, PAN);
    assert_eq!(parsed.masked, "411111******1111");
}

#[test]
fn bad_luhn_and_expiry_are_flags_not_errors() {
    let s = swipe(&format!(";{BAD_LUHN_PAN}=2001101?"));
    let TrackRead::Read(Track2::Bank(card)) = &s.track2 else {
        panic!("track 2 not read: {s:?}");
    };
    assert!(!card.luhn_ok);
    assert!(card.expired);
    assert_eq!(s.identifier(IdentifyField::Track2Pan).unwrap(), BAD_LUHN_PAN);
    assert!(s.to_string().contains("bad check digit, expired"));
}

#[test]
fn a_card_is_valid_through_its_expiry_month() {
    let expiring = format!(";{PAN}=2511101?");
    let TrackRead::Read(Track2::Bank(card)) = parse_swipe(&expiring, 2511).unwrap().track2 else {
        panic!("track 2 not read");
    };
    assert!(!card.expired);
    let TrackRead::Read(Track2::Bank(card)) = parse_swipe(&expiring, 2512).unwrap().track2 else {
        panic!("track 2 not read");
    };
    assert!(card.expired);
}

#[test]
fn failed_track1_and_good_loyalty_number_on_track2() {
    let parsed = classify_text("%E?;7001000010?").unwrap();
    assert_eq!(parsed.identifier, "7001000010");
    assert_eq!(parsed.masked, "********10");
    let ScanDetail::Swipe(s) = &parsed.detail else {
        panic!("not a swipe: {parsed:?}");
    };
    assert_eq!(s.track1, TrackRead::Failed(TrackProblem::ReaderMark));
    assert!(matches!(&s.track2, TrackRead::Read(Track2::Number(n)) if n.expose() == "7001000010"));
    assert_eq!(
        s.identifier(IdentifyField::Track1Pan),
        Err(MagError::TrackFailed {
            track: 1,
            problem: TrackProblem::ReaderMark
        })
    );
}

#[test]
fn failed_marks_on_every_track() {
    let s = swipe("%E?;E?+E?");
    assert_eq!(s.track1, TrackRead::Failed(TrackProblem::ReaderMark));
    assert_eq!(s.track2, TrackRead::Failed(TrackProblem::ReaderMark));
    assert_eq!(s.track3, TrackRead::Failed(TrackProblem::ReaderMark));
    assert_eq!(
        s.identifier(IdentifyField::Track2Pan),
        Err(MagError::TrackFailed {
            track: 2,
            problem: TrackProblem::ReaderMark
        })
    );
}

#[test]
fn half_swipe_alone_is_an_error_naming_track1() {
    let half = "%B4111111111111111^DOE/J";
    let s = swipe(half);
    assert_eq!(s.track1, TrackRead::Failed(TrackProblem::NoEndSentinel));
    let err = classify_text(half).unwrap_err();
    assert_eq!(
        err,
        ScanError::Magstripe(MagError::TrackFailed {
            track: 1,
            problem: TrackProblem::NoEndSentinel
        })
    );
    assert_eq!(
        err.to_string(),
        "Track 1 could not be read: it has no end sentinel; swipe the card again."
    );
    assert_masked(&err.to_string());
}

#[test]
fn half_swipe_with_a_good_track2_identifies_from_track2() {
    let parsed = classify_text(&format!("%B4111111111111111^DOE/J{TRACK2}")).unwrap();
    assert_eq!(parsed.identifier, PAN);
    let ScanDetail::Swipe(s) = &parsed.detail else {
        panic!("not a swipe");
    };
    assert_eq!(s.track1, TrackRead::Failed(TrackProblem::NoEndSentinel));
    assert!(matches!(s.track2, TrackRead::Read(Track2::Bank(_))));
}

#[test]
fn track2_without_end_falls_back_to_track1() {
    let s = swipe(&format!("{TRACK1};4111111111111111=2512"));
    assert_eq!(s.track2, TrackRead::Failed(TrackProblem::NoEndSentinel));
    assert_eq!(s.identifier(IdentifyField::Track2Pan).unwrap(), PAN);
    assert_eq!(
        s.identifier(IdentifyField::Track2Whole),
        Err(MagError::TrackFailed {
            track: 2,
            problem: TrackProblem::NoEndSentinel
        })
    );
}

#[test]
fn two_swipes_in_one_read_are_refused() {
    for text in [
        format!("{TRACK1}{TRACK2}{TRACK1}{TRACK2}"),
        format!("{TRACK1}{TRACK1}"),
        format!("{TRACK2}{TRACK1}"),
        "%E?;7001000010?%E?;7001000011?".to_string(),
        ";7001000010?;7001000011?;7001000012?".to_string(),
        "+12?+34?".to_string(),
        "%B4111111111111111^DOE/J%B4111111111111111^DOE/JOHN^2512101?".to_string(),
    ] {
        let err = classify_text(&text).unwrap_err();
        assert_eq!(err, ScanError::Magstripe(MagError::TwoSwipes), "{text}");
        assert_eq!(
            err.to_string(),
            "The read holds two card swipes run together; swipe the card once more."
        );
    }
}

#[test]
fn track1_of_another_format_is_kept_raw() {
    let s = swipe("%A7001000010 LOYALTY?");
    let TrackRead::Read(Track1::Other { format_code, data }) = &s.track1 else {
        panic!("track 1 not read raw: {s:?}");
    };
    assert_eq!(*format_code, 'A');
    assert_eq!(data.expose(), "7001000010 LOYALTY");
    assert_eq!(
        s.identifier(IdentifyField::Track1Pan),
        Err(MagError::NoCardNumber { track: 1 })
    );
}

#[test]
fn track2_with_a_separator_but_no_bank_layout_is_usable_only_whole() {
    let s = swipe(";7001=55?");
    assert!(matches!(&s.track2, TrackRead::Read(Track2::Other(_))));
    assert_eq!(s.identifier(IdentifyField::Track2Whole).unwrap(), "7001=55");
    assert_eq!(
        s.identifier(IdentifyField::Track2Pan),
        Err(MagError::NoCardNumber { track: 2 })
    );
}

#[test]
fn broken_tracks_say_why() {
    assert_eq!(swipe(";70A1?").track2, TrackRead::Failed(TrackProblem::BadCharacter));
    assert_eq!(swipe(";?").track2, TrackRead::Failed(TrackProblem::Empty));
    let long = format!(";{}?", "1".repeat(38));
    assert_eq!(swipe(&long).track2, TrackRead::Failed(TrackProblem::TooLong));
    assert_eq!(
        swipe("%B4111111111111111^DOE?").track1,
        TrackRead::Failed(TrackProblem::BadLayout("field separators"))
    );
    assert_eq!(
        swipe("%B4111111111111111^DOE^25?").track1,
        TrackRead::Failed(TrackProblem::BadLayout("expiry date or service code"))
    );
    assert_eq!(
        swipe("%B41111111111111111111^DOE^2512101?").track1,
        TrackRead::Failed(TrackProblem::BadLayout("card number"))
    );
    let long_name = format!("%B{PAN}^{}^2512101?", "N".repeat(27));
    assert_eq!(
        swipe(&long_name).track1,
        TrackRead::Failed(TrackProblem::BadLayout("cardholder name"))
    );
}

#[test]
fn garbage_outside_sentinels_is_counted_and_the_lrc_is_not() {
    // "ab" before the track, "Z" in the LRC slot, then "zz" of which only the second counts
    // because the first sits in the LRC slot of track 2.
    let s = swipe("ab%E?Z;7001000010?zz");
    assert_eq!(s.garbage, 3);
    assert_eq!(s.identifier(IdentifyField::Track2Pan).unwrap(), "7001000010");
    assert_eq!(parse_swipe("no tracks here", TODAY), Err(MagError::NoTrack));
}

#[test]
fn identify_field_is_snake_case_in_settings() {
    assert_eq!(
        serde_json::to_string(&IdentifyField::Track2Pan).unwrap(),
        "\"track2_pan\""
    );
    assert_eq!(
        serde_json::from_str::<IdentifyField>("\"track3_whole\"").unwrap(),
        IdentifyField::Track3Whole
    );
    assert_eq!(
        serde_json::from_str::<IdentifyField>("\"track1_pan\"").unwrap(),
        IdentifyField::Track1Pan
    );
    assert_eq!(IdentifyField::default(), IdentifyField::Track2Pan);
}

#[test]
fn configured_fields_drive_classify() {
    let text = format!("{TRACK1}{TRACK2}{TRACK3}");
    let whole3 = classify(text.as_bytes(), &config(IdentifyField::Track3Whole), NOW).unwrap();
    assert_eq!(whole3.identifier, "011234567890123456=724724100000000000030300");
    assert_masked(&whole3.masked);
    let err = classify(b"%E?;7001000010?", &config(IdentifyField::Track3Whole), NOW).unwrap_err();
    assert_eq!(err, ScanError::Magstripe(MagError::TrackMissing { track: 3 }));
}

#[test]
fn mask_pan_keeps_six_and_four_of_card_numbers_only() {
    assert_eq!(mask_pan("4276380012345678"), "427638******5678");
    assert_eq!(mask_pan("4111111111111111111"), "411111*********1111");
    assert_eq!(mask_pan("411111111111"), "**********11");
    assert_eq!(mask_pan("41111111111111111111"), "******************11");
    assert_eq!(mask_pan("4111-1111-1111-1111"), "*****************11");
}

#[test]
fn nothing_shown_of_a_swipe_holds_the_card_number() {
    let text = format!("{TRACK1}{TRACK2}{TRACK3}");
    let s = swipe(&text);
    let parsed = classify_text(&text).unwrap();
    for shown in [
        format!("{s:?}"),
        format!("{s:#?}"),
        s.to_string(),
        format!("{parsed:?}"),
        parsed.masked.clone(),
    ] {
        assert_masked(&shown);
        assert!(!shown.contains("DOE/JOHN"), "cardholder name in {shown}");
        assert!(!shown.contains("123456789000000"), "discretionary data in {shown}");
    }
    // Track 3 is 43 characters and not a card number: all but its last two are starred.
    let track3_masked = format!("{}00", "*".repeat(41));
    assert_eq!(
        s.to_string(),
        format!(
            "track 1: card 411111******1111 expiry 2512; track 2: card 411111******1111 expiry 2512; \
             track 3: data {track3_masked}; 0 stray characters"
        )
    );
}

// ----- QR and barcode payloads -----

#[test]
fn valid_guest_token() {
    let token = sign_guest_token(SECRET, "G-1001", NOW - 30);
    assert!(token.starts_with("GMB1.G-1001."));
    let payload = parse_payload(&token, SECRET, NOW, MAX_AGE).unwrap();
    assert_eq!(
        payload,
        Payload::GuestToken {
            guest_code: "G-1001".to_string(),
            issued_at: NOW - 30
        }
    );
    let parsed = classify_text(&format!("{token}\r\n")).unwrap();
    assert_eq!(parsed.kind, ScanKind::Qr);
    assert_eq!(parsed.identifier, "G-1001");
}

#[test]
fn valid_gift_token_identifies_by_the_gift_code() {
    let token = sign_gift_token(SECRET, "G-1001", "GIFT-77", NOW);
    let payload = parse_payload(&token, SECRET, NOW, MAX_AGE).unwrap();
    assert_eq!(
        payload,
        Payload::GiftToken {
            guest_code: "G-1001".to_string(),
            gift_code: "GIFT-77".to_string(),
            issued_at: NOW
        }
    );
    let parsed = classify_text(&token).unwrap();
    assert_eq!(parsed.kind, ScanKind::Qr);
    assert_eq!(parsed.identifier, "GIFT-77");
    assert_eq!(parsed.masked, "GI***77");
}

/// `c` replaced by another lowercase hex digit or letter.
fn flip(c: char) -> char {
    if c == '0' { '1' } else { '0' }
}

fn flip_at(text: &str, index: usize) -> String {
    text.char_indices()
        .map(|(i, c)| if i == index { flip(c) } else { c })
        .collect()
}

#[test]
fn forged_tokens_are_refused() {
    let token = sign_guest_token(SECRET, "G1001", NOW);
    let last = token.len() - 1;
    let sig_flipped = flip_at(&token, last);
    assert_eq!(
        parse_payload(&sig_flipped, SECRET, NOW, MAX_AGE),
        Err(PayloadError::Forged)
    );
    let code_flipped = flip_at(&token, "GMB1.G100".len());
    assert!(code_flipped.starts_with("GMB1.G1000."), "{code_flipped}");
    assert_eq!(
        parse_payload(&code_flipped, SECRET, NOW, MAX_AGE),
        Err(PayloadError::Forged)
    );
    let gift = sign_gift_token(SECRET, "G1001", "GIFT1", NOW).replace("GIFT1", "GIFT0");
    assert_eq!(parse_payload(&gift, SECRET, NOW, MAX_AGE), Err(PayloadError::Forged));
    assert_eq!(
        parse_payload(&token, b"another secret", NOW, MAX_AGE),
        Err(PayloadError::Forged)
    );
    // A guest token relabelled as a gift token is not signed for that shape.
    let relabelled = token.replacen("GMB1.", "GMB1G.GIFT9.", 1);
    assert_eq!(
        parse_payload(&relabelled, SECRET, NOW, MAX_AGE),
        Err(PayloadError::Forged)
    );
}

#[test]
fn forged_wins_over_expired() {
    let old = sign_guest_token(SECRET, "G1001", NOW - 10 * MAX_AGE);
    let forged = flip_at(&old, old.len() - 1);
    assert_eq!(parse_payload(&forged, SECRET, NOW, MAX_AGE), Err(PayloadError::Forged));
}

#[test]
fn expired_and_future_tokens_are_refused() {
    let old = sign_guest_token(SECRET, "G1001", NOW - MAX_AGE - 1);
    assert_eq!(
        parse_payload(&old, SECRET, NOW, MAX_AGE),
        Err(PayloadError::Expired { age: MAX_AGE + 1 })
    );
    let edge = sign_guest_token(SECRET, "G1001", NOW - MAX_AGE);
    assert!(parse_payload(&edge, SECRET, NOW, MAX_AGE).is_ok());
    let skewed = sign_guest_token(SECRET, "G1001", NOW + 300);
    assert!(parse_payload(&skewed, SECRET, NOW, MAX_AGE).is_ok());
    let future = sign_guest_token(SECRET, "G1001", NOW + 301);
    assert_eq!(
        parse_payload(&future, SECRET, NOW, MAX_AGE),
        Err(PayloadError::FromTheFuture)
    );
    let err = classify_text(&old).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The QR code expired 601 seconds after it was issued; ask the guest to refresh it in the app."
    );
}

#[test]
fn malformed_tokens_say_what_is_wrong() {
    let sig = "0123456789abcdef0123456789abcdef";
    let cases = [
        ("GMB1.".to_string(), "wrong number of fields"),
        ("GMB1.G1".to_string(), "wrong number of fields"),
        (format!("GMB1.G1.{sig}"), "wrong number of fields"),
        (format!("GMB1.a.b.{NOW}.{sig}"), "wrong number of fields"),
        (format!("GMB1G.G1.{NOW}.{sig}"), "wrong number of fields"),
        (format!("GMB1..{NOW}.{sig}"), "empty code"),
        (format!("GMB1G.G1..{NOW}.{sig}"), "empty code"),
        (format!("GMB1.G 1.{NOW}.{sig}"), "code is not printable or too long"),
        (format!("GMB1.G1.17639x.{sig}"), "issue time is not a number of seconds"),
        (format!("GMB1.G1.-5.{sig}"), "issue time is not a number of seconds"),
        (
            format!("GMB1.G1.99999999999999999999.{sig}"),
            "issue time is not a number of seconds",
        ),
        (format!("GMB1.G1.{NOW}.abc"), "signature is not 32 lowercase hex digits"),
        (format!("GMB1.G1.{NOW}."), "signature is not 32 lowercase hex digits"),
        (
            format!("GMB1.G1.{NOW}.{}", sig.replace('a', "g")),
            "signature is not 32 lowercase hex digits",
        ),
    ];
    for (text, reason) in cases {
        assert_eq!(
            parse_payload(&text, SECRET, NOW, MAX_AGE),
            Err(PayloadError::Malformed(reason)),
            "{text}"
        );
    }
}

#[test]
fn a_code_with_a_dot_makes_an_unreadable_token() {
    let token = sign_guest_token(SECRET, "G.1", NOW);
    assert_eq!(
        parse_payload(&token, SECRET, NOW, MAX_AGE),
        Err(PayloadError::Malformed("wrong number of fields"))
    );
}

#[test]
fn plain_codes_are_card_codes() {
    for code in ["GMB-00001234", "GMB10001", "4601234567893", "GMB1", "A B", "x"] {
        assert_eq!(
            parse_payload(code, SECRET, NOW, MAX_AGE),
            Ok(Payload::CardCode(code.to_string())),
            "{code}"
        );
    }
    let parsed = classify_text("GMB-00001234\x03").unwrap();
    assert_eq!(parsed.kind, ScanKind::Barcode);
    assert_eq!(parsed.identifier, "GMB-00001234");
    assert_eq!(parsed.masked, "GM********34");
    let longest = "7".repeat(MAX_CODE_LEN);
    assert!(parse_payload(&longest, SECRET, NOW, MAX_AGE).is_ok());
}

#[test]
fn unknown_formats_are_refused() {
    for text in [
        String::new(),
        "   ".to_string(),
        "abc\x07def".to_string(),
        "abc\tdef".to_string(),
        "Гость-1".to_string(),
        "7".repeat(MAX_CODE_LEN + 1),
    ] {
        assert_eq!(
            parse_payload(&text, SECRET, NOW, MAX_AGE),
            Err(PayloadError::UnknownFormat),
            "{text:?}"
        );
    }
    let err = classify_text("\x01\x02\x1b[0m").unwrap_err();
    assert_eq!(err, ScanError::Payload(PayloadError::UnknownFormat));
    assert_eq!(
        err.to_string(),
        "The code is neither a loyalty QR code nor a printable card code."
    );
}

#[test]
fn payload_debug_masks_codes() {
    let shown = format!("{:?}", Payload::CardCode(PAN.to_string()));
    assert_masked(&shown);
    let token = sign_gift_token(SECRET, "GUEST-SECRET-1", "GIFT-SECRET-2", NOW);
    let parsed = classify_text(&token).unwrap();
    let shown = format!("{parsed:?}");
    assert!(
        !shown.contains("GUEST-SECRET-1") && !shown.contains("GIFT-SECRET-2"),
        "{shown}"
    );
}

// ----- classify: framing and limits -----

#[test]
fn oversized_reads_are_refused() {
    let line = vec![b'7'; 10_000];
    let err = classify(&line, &config(IdentifyField::default()), NOW).unwrap_err();
    assert_eq!(err, ScanError::TooLong { len: 10_000, max: 4096 });
    assert_eq!(
        err.to_string(),
        "The read is 10000 bytes long; at most 4096 bytes are accepted."
    );
    let at_limit = vec![b'7'; MAX_SCAN_BYTES];
    assert_eq!(
        classify(&at_limit, &config(IdentifyField::default()), NOW),
        Err(ScanError::Payload(PayloadError::UnknownFormat))
    );
}

#[test]
fn non_utf8_and_empty_reads_are_refused() {
    let cfg = config(IdentifyField::default());
    assert_eq!(classify(b"%B\xff?", &cfg, NOW), Err(ScanError::NotUtf8 { at: 2 }));
    assert_eq!(classify(b"", &cfg, NOW), Err(ScanError::Empty));
    assert_eq!(classify(b"\r\n", &cfg, NOW), Err(ScanError::Empty));
    assert_eq!(classify(b"\x03", &cfg, NOW), Err(ScanError::Empty));
    // Only one terminator goes: a second one is part of the read.
    assert_eq!(
        classify(b"GMB-00001234\r\n\r\n", &cfg, NOW),
        Err(ScanError::Payload(PayloadError::UnknownFormat))
    );
}

#[test]
fn every_terminator_is_stripped() {
    for end in ["", "\r", "\n", "\r\n", "\x03"] {
        let parsed = classify_text(&format!("%E?;7001000010?{end}")).unwrap();
        assert_eq!(parsed.identifier, "7001000010", "{end:?}");
        let ScanDetail::Swipe(s) = &parsed.detail else {
            panic!("not a swipe");
        };
        assert_eq!(s.garbage, 0, "{end:?}");
    }
}

#[test]
fn parsed_scan_becomes_a_scan_event() {
    let parsed = classify_text(TRACK2).unwrap();
    let event = parsed.to_scan_event("COM3", 1_763_900_000_123);
    assert_eq!(event.source, "COM3");
    assert_eq!(event.kind, ScanKind::MagneticCard);
    assert_eq!(event.payload, PAN);
    assert_eq!(event.symbology, None);
    assert_eq!(event.received_at_ms, 1_763_900_000_123);
}

// ----- Diagnostics escapes -----

#[test]
fn escapes_become_bytes() {
    assert_eq!(
        unescape_line(r"%E?;7001000010?\r\n\t\\\x03").unwrap(),
        b"%E?;7001000010?\r\n\t\\\x03".to_vec()
    );
    assert_eq!(unescape_line("").unwrap(), Vec::<u8>::new());
    assert_eq!(unescape_line(r"\xFF").unwrap(), vec![0xff]);
    let bytes = unescape_line(r"%E?;7001000010?\r").unwrap();
    assert_eq!(
        classify(&bytes, &config(IdentifyField::default()), NOW)
            .unwrap()
            .identifier,
        "7001000010"
    );
}

#[test]
fn bad_escapes_are_errors() {
    assert_eq!(unescape_line(r"abc\"), Err(EscapeError::TrailingBackslash));
    assert_eq!(
        unescape_line(r"ab\q"),
        Err(EscapeError::UnknownEscape { at: 2, found: 'q' })
    );
    assert_eq!(unescape_line(r"\x4"), Err(EscapeError::BadHex { at: 0 }));
    assert_eq!(unescape_line(r"a\xZZ"), Err(EscapeError::BadHex { at: 1 }));
    assert_eq!(
        unescape_line(r"\0"),
        Err(EscapeError::UnknownEscape { at: 0, found: '0' })
    );
    assert_eq!(
        unescape_line(r"ab\q").unwrap_err().to_string(),
        r"Unknown escape \q at byte 2; use \r, \n, \t, \\ or \xNN."
    );
}

// ----- Random input -----

/// Bytes the parsers care about, so that random reads often look almost right.
const INTERESTING: &[u8] = b"%;+?=^BE0123456789GMB1.\r\n\x03\xff\xd0";

fn random_read(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(3) {
        // A valid read with a few bytes changed, dropped or added.
        0 => {
            let mut bytes = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len() + 1);
                let byte = INTERESTING[rng.below(INTERESTING.len())];
                match rng.below(3) {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, byte),
                }
            }
            bytes
        }
        // Interesting bytes only.
        1 => (0..rng.below(200))
            .map(|_| INTERESTING[rng.below(INTERESTING.len())])
            .collect(),
        // Anything at all.
        _ => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
    }
}

#[test]
fn random_reads_never_panic_nor_leak_long_numbers() {
    let seeds: Vec<Vec<u8>> = [
        format!("{TRACK1}{TRACK2}{TRACK3}\r"),
        "%E?;7001000010?".to_string(),
        format!("%B{BAD_LUHN_PAN}^DOE/J"),
        sign_guest_token(SECRET, "G1001", NOW),
        sign_gift_token(SECRET, "G1001", "GIFT1", NOW),
        "GMB-00001234\r\n".to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut failed) = (0, 0);
    for fields in [IdentifyField::Track2Pan, IdentifyField::Track3Whole] {
        for _ in 0..2_500 {
            let read = random_read(&mut rng, &seeds);
            match classify(&read, &config(fields), NOW) {
                Ok(parsed) => {
                    ok += 1;
                    assert_masked(&format!("{parsed:?}"));
                    assert_masked(&parsed.masked);
                }
                Err(err) => {
                    failed += 1;
                    let shown = err.to_string();
                    assert!(longest_digit_run(&shown) < 13, "{shown} for {read:?}");
                }
            }
        }
    }
    assert_eq!(ok + failed, 5_000);
    // Both outcomes must be exercised, or the loop tests less than it seems.
    assert!(ok > 100 && failed > 100, "ok {ok}, failed {failed}");
}

/// Known-answer tokens, written from the format's definition alone (`src/scan/payload.rs`: the
/// HMAC-SHA256 of the text before the last dot, keyed with the programme's key, its first 16
/// bytes as 32 lowercase hex digits), not by our signer. Made with Python's standard library:
///
/// ```text
/// import hmac, hashlib
/// def tok(key, text): return text + "." + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]
/// tok(b"programme-key-7Q", "GMB1.100001.1741608000")
/// tok(b"programme-key-7Q", "GMB1G.100001.G100001.1741608000")
/// tok(b"K" * 100, "GMB1.GMB-00001234.1700000000")   # a key longer than SHA-256's block
/// ```
fn token_vectors() -> Vec<(&'static [u8], &'static str, Payload)> {
    let guest = |code: &str, issued_at| Payload::GuestToken {
        guest_code: code.to_string(),
        issued_at,
    };
    vec![
        (
            b"programme-key-7Q",
            "GMB1.100001.1741608000.3e0dd94052f59be4b7a4fa697fd3e976",
            guest("100001", 1_741_608_000),
        ),
        (
            b"programme-key-7Q",
            "GMB1G.100001.G100001.1741608000.dc298d6c461c6212b92550efe87ff98a",
            Payload::GiftToken {
                guest_code: "100001".to_string(),
                gift_code: "G100001".to_string(),
                issued_at: 1_741_608_000,
            },
        ),
        (
            &[b'K'; 100],
            "GMB1.GMB-00001234.1700000000.6f9f6c33a04988c7a14d3e548653b2dc",
            guest("GMB-00001234", 1_700_000_000),
        ),
    ]
}

#[test]
fn app_tokens_match_known_answers() {
    for (n, (key, token, expected)) in token_vectors().into_iter().enumerate() {
        // Our signer writes exactly the known token...
        let (signed, issued_at) = match &expected {
            Payload::GuestToken { guest_code, issued_at } => {
                (sign_guest_token(key, guest_code, *issued_at), *issued_at)
            }
            Payload::GiftToken {
                guest_code,
                gift_code,
                issued_at,
            } => (sign_gift_token(key, guest_code, gift_code, *issued_at), *issued_at),
            Payload::CardCode(_) => unreachable!(),
        };
        assert_eq!(signed, token, "vector {n}");
        // ...and the parser accepts it a minute later, and refuses it with another key or with
        // any one signature digit changed.
        assert_eq!(
            parse_payload(token, key, issued_at + 60, 600),
            Ok(expected),
            "vector {n}"
        );
        assert_eq!(
            parse_payload(token, b"another-key", issued_at + 60, 600),
            Err(PayloadError::Forged),
            "vector {n}"
        );
        let (text, sig) = token.rsplit_once('.').unwrap();
        for i in 0..sig.len() {
            let mut altered = sig.as_bytes().to_vec();
            altered[i] = if altered[i] == b'0' { b'1' } else { b'0' };
            let altered = format!("{text}.{}", String::from_utf8(altered).unwrap());
            assert_eq!(
                parse_payload(&altered, key, issued_at + 60, 600),
                Err(PayloadError::Forged),
                "vector {n}, digit {i}"
            );
        }
    }
}
