//! Magnetic stripe data (ISO 7811 / ISO 7813) as a card reader types it: tracks framed by start
//! and end sentinels, one after another on one line.
//!
//! Pure parsing: no I/O and no clock (the date for the expiry check comes in as a parameter).
//! Card numbers, names and discretionary data sit in [`Sensitive`], whose `Debug` masks them, so
//! a derived `Debug` of anything in this module never shows a full card number.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest data between the sentinels: ISO 7811 allows 79, 40 and 107 characters per track,
/// counting the start and end sentinels and the LRC.
const TRACK1_MAX: usize = 76;
const TRACK2_MAX: usize = 37;
const TRACK3_MAX: usize = 104;
const PAN_MAX: usize = 19;
const NAME_MAX: usize = 26;
/// A track holding only this letter is the reader's mark for "could not read this track".
const FAILED_MARK: &str = "E";

/// Which part of a swipe identifies the guest, chosen in the settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifyField {
    /// The card number of track 2 (or its whole number for non-bank cards); falls back to the
    /// card number of track 1 when track 2 was not read, because readers often lose one track.
    #[default]
    Track2Pan,
    Track1Pan,
    /// Everything between the track 2 sentinels.
    Track2Whole,
    /// Everything between the track 3 sentinels.
    Track3Whole,
}

/// Text that may hold a card number or a cardholder's name. `Debug` masks it; the plain text is
/// reachable only through [`Sensitive::expose`], so every unmasked use is visible in the code.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    fn new(text: &str) -> Self {
        Sensitive(text.to_string())
    }

    /// The unmasked text, for identification only: never for logs or error messages.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask_pan(&self.0)
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}

/// Why a track gave nothing usable. Carries no track data, so it is safe in messages and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackProblem {
    /// The reader sent its failure mark (`%E?`, `;E?`, `+E?`).
    ReaderMark,
    /// The track started but its end sentinel never came: a partial read.
    NoEndSentinel,
    TooLong,
    BadCharacter,
    Empty,
    /// The characters are valid but not where the track format puts them.
    BadLayout(&'static str),
}

impl fmt::Display for TrackProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackProblem::ReaderMark => f.write_str("the reader marked it as unreadable"),
            TrackProblem::NoEndSentinel => f.write_str("it has no end sentinel"),
            TrackProblem::TooLong => f.write_str("it is longer than ISO 7811 allows"),
            TrackProblem::BadCharacter => f.write_str("it holds a character the track format does not allow"),
            TrackProblem::Empty => f.write_str("it is empty"),
            TrackProblem::BadLayout(what) => write!(f, "bad {what}"),
        }
    }
}

/// How one track of a swipe came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackRead<T> {
    /// The read holds no data for this track.
    Missing,
    Failed(TrackProblem),
    Read(T),
}

impl<T> TrackRead<T> {
    /// The track's data, or the error that names the track and why it is unusable.
    fn usable(&self, track: u8) -> Result<&T, MagError> {
        match self {
            TrackRead::Read(data) => Ok(data),
            TrackRead::Missing => Err(MagError::TrackMissing { track }),
            TrackRead::Failed(problem) => Err(MagError::TrackFailed {
                track,
                problem: *problem,
            }),
        }
    }
}

/// The fields of a bank-style card (track 1 format B, or track 2 with a `=` separator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankCard {
    pub pan: Sensitive,
    /// `YYMM` as on the stripe: 2512 is December 2025.
    pub expiry_yymm: u16,
    /// Three digits.
    pub service_code: String,
    pub discretionary: Sensitive,
    /// Flags rather than errors: loyalty cards in bank format often fail both, and still identify.
    pub luhn_ok: bool,
    pub expired: bool,
}

/// Track 1 (alphanumeric).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Track1 {
    /// Format code `B`: card number, cardholder name, expiry, service code.
    Bank { card: BankCard, name: Sensitive },
    /// Any other format code: kept as it came, after the format code.
    Other { format_code: char, data: Sensitive },
}

/// Track 2 (digits and `=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Track2 {
    /// `PAN=YYMM SSS discretionary`.
    Bank(BankCard),
    /// Digits without `=`: the plain number many loyalty cards carry.
    Number(Sensitive),
    /// Has a `=` but not the bank layout; usable only as a whole.
    Other(Sensitive),
}

impl Track2 {
    /// The data between the sentinels, rebuilt exactly as it was read.
    pub fn whole(&self) -> String {
        match self {
            Track2::Bank(card) => format!(
                "{}={:04}{}{}",
                card.pan.expose(),
                card.expiry_yymm,
                card.service_code,
                card.discretionary.expose()
            ),
            Track2::Number(text) | Track2::Other(text) => text.expose().to_string(),
        }
    }
}

/// Track 3 (digits and `=`), kept whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track3(pub Sensitive);

/// One swipe as the reader delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swipe {
    pub track1: TrackRead<Track1>,
    pub track2: TrackRead<Track2>,
    pub track3: TrackRead<Track3>,
    /// Characters outside any sentinels, skipped: readers add prefixes and suffixes of their own.
    pub garbage: usize,
}

/// Why a swipe gives no identifier. Never carries track data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MagError {
    #[error("The read holds no magnetic stripe track.")]
    NoTrack,
    #[error("The read holds two card swipes run together; swipe the card once more.")]
    TwoSwipes,
    #[error("Track {track} is not on this card read; swipe again or choose another track in the settings.")]
    TrackMissing { track: u8 },
    #[error("Track {track} could not be read: {problem}; swipe the card again.")]
    TrackFailed { track: u8, problem: TrackProblem },
    #[error("Track {track} holds no card number; choose another track in the settings.")]
    NoCardNumber { track: u8 },
}

impl Swipe {
    /// The text that identifies the guest, taken from the configured field.
    pub fn identifier(&self, field: IdentifyField) -> Result<String, MagError> {
        match field {
            IdentifyField::Track2Pan => self.track2_pan_or_track1(),
            IdentifyField::Track1Pan => self.track1_pan(),
            IdentifyField::Track2Whole => Ok(self.track2.usable(2)?.whole()),
            IdentifyField::Track3Whole => Ok(self.track3.usable(3)?.0.expose().to_string()),
        }
    }

    /// When track 2 was not read, track 1 is tried. If that fails too, the error reported is
    /// track 2's, since track 2 is what the settings ask for, unless track 2 is simply absent
    /// and track 1 was there: then why track 1 failed says more ("no end sentinel").
    fn track2_pan_or_track1(&self) -> Result<String, MagError> {
        match (&self.track2, &self.track1) {
            (TrackRead::Read(_), _) => self.track2_pan(),
            (TrackRead::Missing, TrackRead::Read(_) | TrackRead::Failed(_)) => self.track1_pan(),
            (TrackRead::Missing | TrackRead::Failed(_), _) => self.track1_pan().or_else(|_| self.track2_pan()),
        }
    }

    fn track2_pan(&self) -> Result<String, MagError> {
        match self.track2.usable(2)? {
            Track2::Bank(card) => Ok(card.pan.expose().to_string()),
            Track2::Number(number) => Ok(number.expose().to_string()),
            Track2::Other(_) => Err(MagError::NoCardNumber { track: 2 }),
        }
    }

    fn track1_pan(&self) -> Result<String, MagError> {
        match self.track1.usable(1)? {
            Track1::Bank { card, .. } => Ok(card.pan.expose().to_string()),
            Track1::Other { .. } => Err(MagError::NoCardNumber { track: 1 }),
        }
    }
}

/// A one-line summary for logs and the diagnostics command, with every number masked.
impl fmt::Display for Swipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "track 1: ")?;
        write_track(f, &self.track1, describe_track1)?;
        write!(f, "; track 2: ")?;
        write_track(f, &self.track2, describe_track2)?;
        write!(f, "; track 3: ")?;
        write_track(f, &self.track3, |t| format!("data {}", t.0.masked()))?;
        write!(f, "; {} stray characters", self.garbage)
    }
}

fn write_track<T>(f: &mut fmt::Formatter<'_>, track: &TrackRead<T>, describe: impl Fn(&T) -> String) -> fmt::Result {
    match track {
        TrackRead::Missing => f.write_str("missing"),
        TrackRead::Failed(problem) => write!(f, "failed ({problem})"),
        TrackRead::Read(data) => f.write_str(&describe(data)),
    }
}

fn describe_track1(track: &Track1) -> String {
    match track {
        Track1::Bank { card, .. } => describe_card(card),
        Track1::Other { format_code, data } => format!("format {format_code} {}", data.masked()),
    }
}

fn describe_track2(track: &Track2) -> String {
    match track {
        Track2::Bank(card) => describe_card(card),
        Track2::Number(number) => format!("number {}", number.masked()),
        Track2::Other(data) => format!("data {}", data.masked()),
    }
}

fn describe_card(card: &BankCard) -> String {
    format!(
        "card {} expiry {:04}{}{}",
        card.pan.masked(),
        card.expiry_yymm,
        if card.luhn_ok { "" } else { ", bad check digit" },
        if card.expired { ", expired" } else { "" }
    )
}

/// `4276380012345678` -> `427638******5678` for card-number-shaped text (13 to 19 digits);
/// anything else keeps only its last two characters, and text of four characters or fewer is
/// starred whole, since two of four characters give too much away.
pub fn mask_pan(pan: &str) -> String {
    let chars: Vec<char> = pan.chars().collect();
    let n = chars.len();
    let looks_like_pan = (13..=PAN_MAX).contains(&n) && chars.iter().all(char::is_ascii_digit);
    let (head, tail) = match (looks_like_pan, n) {
        (true, _) => (6, 4),
        (false, 0..=4) => (0, 0),
        (false, _) => (0, 2),
    };
    let head_text: String = chars[..head].iter().collect();
    let tail_text: String = chars[n - tail..].iter().collect();
    format!("{head_text}{}{tail_text}", "*".repeat(n - head - tail))
}

/// The Luhn (mod 10) check digit test of ISO/IEC 7812. Non-digits fail.
pub fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(d) = c.to_digit(10) else { return false };
        let d = if i % 2 == 1 { d * 2 } else { d };
        sum += if d > 9 { d - 9 } else { d };
    }
    !digits.is_empty() && sum % 10 == 0
}

/// Parses a reader's line of tracks. `today_yymm` (2511 for November 2025) sets the `expired`
/// flags. A read with no track at all, or with two swipes run together, is an error; a single
/// track that failed is not, so that another good track still identifies the guest.
pub fn parse_swipe(text: &str, today_yymm: u16) -> Result<Swipe, MagError> {
    let (segments, garbage) = split_segments(text);
    if segments.is_empty() {
        return Err(MagError::NoTrack);
    }
    let mut swipe = Swipe {
        track1: TrackRead::Missing,
        track2: TrackRead::Missing,
        track3: TrackRead::Missing,
        garbage,
    };
    let mut last_track = 0;
    for segment in segments {
        let track = track_number(segment.sentinel, last_track);
        // Readers send tracks in the order 1, 2, 3: a track number that does not go up is
        // the start of a second swipe, and merging two cards' tracks would mix two guests.
        if track <= last_track {
            return Err(MagError::TwoSwipes);
        }
        last_track = track;
        store_track(&mut swipe, track, &segment, today_yymm);
    }
    Ok(swipe)
}

/// The text between a start sentinel and its end sentinel (or the next start, or the end of
/// the input when the end sentinel never came).
struct Segment<'a> {
    sentinel: char,
    body: &'a str,
    ended: bool,
}

/// `%` starts track 1, `;` track 2 (or 3), `+` track 3.
pub(crate) fn is_start_sentinel(c: char) -> bool {
    matches!(c, '%' | ';' | '+')
}

/// Cuts the line into track segments and counts the characters outside them. The one
/// character right after an end sentinel is the track's LRC when it is not a start sentinel.
fn split_segments(text: &str) -> (Vec<Segment<'_>>, usize) {
    let mut segments = Vec::new();
    let mut garbage = 0;
    let mut open: Option<(char, usize)> = None;
    let mut after_end = false;
    for (i, c) in text.char_indices() {
        if let Some((sentinel, start)) = open {
            if c == '?' || is_start_sentinel(c) {
                segments.push(Segment {
                    sentinel,
                    body: &text[start..i],
                    ended: c == '?',
                });
                open = None;
                after_end = c == '?';
            }
        } else if !is_start_sentinel(c) {
            if !after_end {
                garbage += 1;
            }
            after_end = false;
        }
        if open.is_none() && is_start_sentinel(c) {
            open = Some((c, i + c.len_utf8()));
            after_end = false;
        }
    }
    if let Some((sentinel, start)) = open {
        segments.push(Segment {
            sentinel,
            body: &text[start..],
            ended: false,
        });
    }
    (segments, garbage)
}

/// `;` starts track 2, or track 3 when track 2 has already been read.
fn track_number(sentinel: char, last_track: u8) -> u8 {
    match sentinel {
        '%' => 1,
        ';' if last_track < 2 => 2,
        _ => 3,
    }
}

fn store_track(swipe: &mut Swipe, track: u8, segment: &Segment<'_>, today_yymm: u16) {
    let body = segment.body;
    match track {
        1 => swipe.track1 = framed(segment, TRACK1_MAX, is_track1_data, || parse_track1(body, today_yymm)),
        2 => swipe.track2 = framed(segment, TRACK2_MAX, is_bcd_data, || parse_track2(body, today_yymm)),
        _ => swipe.track3 = framed(segment, TRACK3_MAX, is_bcd_data, || Ok(Track3(Sensitive::new(body)))),
    }
}

/// Printable ASCII: ISO 7811 track 1 is upper case, but readers set to other keyboard layouts
/// or case modes deliver other printable characters, and those must not fail the track.
fn is_track1_data(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Digits and the field separator: what tracks 2 and 3 carry in practice.
fn is_bcd_data(c: char) -> bool {
    c.is_ascii_digit() || c == '='
}

/// The checks every track shares (framing, failure mark, length, character set), then the
/// track's own layout.
fn framed<T>(
    segment: &Segment<'_>,
    max_len: usize,
    allowed: impl Fn(char) -> bool,
    parse: impl FnOnce() -> Result<T, TrackProblem>,
) -> TrackRead<T> {
    let body = segment.body;
    let problem = if !segment.ended {
        Some(TrackProblem::NoEndSentinel)
    } else if body == FAILED_MARK {
        Some(TrackProblem::ReaderMark)
    } else if body.is_empty() {
        Some(TrackProblem::Empty)
    } else if body.chars().count() > max_len {
        Some(TrackProblem::TooLong)
    } else if !body.chars().all(allowed) {
        Some(TrackProblem::BadCharacter)
    } else {
        None
    };
    match problem {
        Some(problem) => TrackRead::Failed(problem),
        None => parse().map_or_else(TrackRead::Failed, TrackRead::Read),
    }
}

/// `B` PAN `^` NAME `^` YYMM SSS discretionary (ISO 7813 format B), or another format kept raw.
fn parse_track1(body: &str, today_yymm: u16) -> Result<Track1, TrackProblem> {
    let mut chars = body.chars();
    let format_code = chars.next().ok_or(TrackProblem::Empty)?;
    let rest = chars.as_str();
    if format_code != 'B' {
        return Ok(Track1::Other {
            format_code,
            data: Sensitive::new(rest),
        });
    }
    let mut fields = rest.splitn(3, '^');
    let (Some(pan), Some(name), Some(tail)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(TrackProblem::BadLayout("field separators"));
    };
    if name.chars().count() > NAME_MAX {
        return Err(TrackProblem::BadLayout("cardholder name"));
    }
    Ok(Track1::Bank {
        card: bank_card(pan, tail, today_yymm)?,
        name: Sensitive::new(name),
    })
}

/// PAN `=` YYMM SSS discretionary, or a plain number; other layouts are kept whole.
fn parse_track2(body: &str, today_yymm: u16) -> Result<Track2, TrackProblem> {
    let Some((pan, tail)) = body.split_once('=') else {
        return Ok(Track2::Number(Sensitive::new(body)));
    };
    Ok(bank_card(pan, tail, today_yymm).map_or_else(|_| Track2::Other(Sensitive::new(body)), Track2::Bank))
}

/// The fields shared by tracks 1 and 2: the PAN, and after the separator the expiry, the
/// service code and the discretionary data.
fn bank_card(pan: &str, tail: &str, today_yymm: u16) -> Result<BankCard, TrackProblem> {
    if pan.is_empty() || pan.len() > PAN_MAX || !pan.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TrackProblem::BadLayout("card number"));
    }
    let expiry = tail.get(..4).filter(|s| all_digits(s));
    let service = tail.get(4..7).filter(|s| all_digits(s));
    let (Some(expiry), Some(service_code), Some(discretionary)) = (expiry, service, tail.get(7..)) else {
        return Err(TrackProblem::BadLayout("expiry date or service code"));
    };
    let expiry_yymm = expiry
        .parse::<u16>()
        .map_err(|_| TrackProblem::BadLayout("expiry date"))?;
    Ok(BankCard {
        pan: Sensitive::new(pan),
        expiry_yymm,
        service_code: service_code.to_string(),
        discretionary: Sensitive::new(discretionary),
        luhn_ok: luhn_ok(pan),
        // A card is valid through the last day of its expiry month.
        expired: expiry_yymm < today_yymm,
    })
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_changed_digits() {
        assert!(luhn_ok("4111111111111111"));
        assert!(luhn_ok("79927398713"));
        assert!(!luhn_ok("4111111111111112"));
        assert!(!luhn_ok(""));
        assert!(!luhn_ok("41a1"));
    }

    #[test]
    fn masks_card_numbers_and_other_text() {
        assert_eq!(mask_pan("4276380012345678"), "427638******5678");
        assert_eq!(mask_pan("4111111111111"), "411111***1111");
        assert_eq!(mask_pan("7001000010"), "********10");
        assert_eq!(mask_pan("12345678901234567890"), "******************90");
        assert_eq!(mask_pan("1234"), "****");
        assert_eq!(mask_pan(""), "");
    }

    #[test]
    fn splits_segments_and_counts_garbage_but_not_the_lrc() {
        let (segments, garbage) = split_segments("xx%B1?Z;22?\r");
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0].body, "B1");
        assert_eq!(segments[1].body, "22");
        // "Z" and the CR each sit in the LRC slot after an end sentinel: only "xx" counts.
        assert_eq!(garbage, 2);
    }

    #[test]
    fn a_start_sentinel_inside_a_track_ends_it_as_partial() {
        let (segments, _) = split_segments("%B41^DOE;123?");
        assert!(!segments[0].ended);
        assert_eq!(segments[1].body, "123");
        assert!(segments[1].ended);
    }

    #[test]
    fn semicolon_after_track_two_starts_track_three() {
        assert_eq!(track_number(';', 0), 2);
        assert_eq!(track_number(';', 1), 2);
        assert_eq!(track_number(';', 2), 3);
        assert_eq!(track_number('+', 1), 3);
    }

    #[test]
    fn track2_whole_is_rebuilt_exactly() {
        let body = "4111111111111111=0512101123456";
        let track = parse_track2(body, 2511).unwrap();
        assert_eq!(track.whole(), body);
    }
}
