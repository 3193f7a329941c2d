//! Diagnostics for support and measurement: the `parse-scan` command (JSON lines on stdout) and
//! the devices screen's test view (one [`ReadCheck`] per read), card data masked in both.

use crate::config::ScanSettings;
use crate::domain::{ScanKind, UnixSeconds, civil_date};
use crate::scan::escape::{EscapeError, unescape_line};
use crate::scan::payload::Payload;
use crate::scan::{ScanDetail, ScanError, ScanParseConfig, classify};
use serde_json::json;
use std::io::{BufRead, Write};

/// The parser settings from the till's config, for a given moment.
pub fn scan_config(settings: &ScanSettings, now: UnixSeconds) -> ScanParseConfig {
    ScanParseConfig {
        identify_field: settings.identify_field,
        token_secret: settings.token_secret.as_bytes().to_vec(),
        token_max_age_secs: settings.token_max_age_secs,
        today_yymm: yymm(now),
    }
}

/// `YYMM` of a Unix time (UTC), for card expiry checks.
pub fn yymm(now: UnixSeconds) -> u16 {
    let (year, month, _) = civil_date(now);
    ((year % 100) * 100 + month) as u16
}

/// `loyalty-till parse-scan`: one raw read per input line (escapes `\r \n \t \\ \xNN` allowed),
/// one JSON object per line out: what it is and what would identify the guest, masked, or why
/// it was refused. Returns how many lines were refused.
pub fn parse_scan(
    input: impl BufRead,
    mut out: impl Write,
    config: &ScanParseConfig,
    now: UnixSeconds,
) -> std::io::Result<usize> {
    let mut refused = 0;
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        let number = index + 1;
        let result = match unescape_line(&line) {
            Err(error) => json!({ "line": number, "error": format!("bad escape: {error}") }),
            Ok(raw) => match classify(&raw, config, now) {
                Ok(parsed) => {
                    let detail = match &parsed.detail {
                        ScanDetail::Swipe(swipe) => json!({ "swipe": swipe.to_string() }),
                        ScanDetail::Payload(payload) => json!({ "payload": payload_kind(payload) }),
                    };
                    json!({ "line": number, "kind": parsed.kind, "identifier": parsed.masked, "detail": detail })
                }
                Err(error) => json!({ "line": number, "error": error.to_string() }),
            },
        };
        if result.get("error").is_some() {
            refused += 1;
        }
        writeln!(out, "{result}")?;
    }
    Ok(refused)
}

fn payload_kind(payload: &Payload) -> &'static str {
    match payload {
        Payload::CardCode(_) => "card_code",
        Payload::GuestToken { .. } => "guest_token",
        Payload::GiftToken { .. } => "gift_token",
    }
}

/// Bytes the way `parse-scan` reads them back: printable ASCII as it is, `\r \n \t \\`, every
/// other byte `\xNN`, so the terminator and any stray control byte can be seen.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\x{byte:02X}")),
        }
    }
    out
}

/// Escaped bytes with card data masked: tracks, card numbers, phones and app tokens by the
/// support bundle's masking, and what follows a track 1 field separator (`^`), so the holder's
/// name and the discretionary data stay hidden even in a swipe cut short before its `?`.
pub fn masked_escaped(bytes: &[u8]) -> String {
    let text = crate::support::redact::mask_text(&escape_bytes(bytes));
    let mut out = String::with_capacity(text.len());
    let mut hiding = false;
    for c in text.chars() {
        match c {
            '^' => {
                out.push('^');
                hiding = true;
            }
            '?' => {
                out.push('?');
                hiding = false;
            }
            _ if hiding => {
                if !out.ends_with('*') {
                    out.push_str("***");
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// What a read became: its kind, the identifier masked, and a masked technical summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadParsed {
    pub kind: ScanKind,
    pub masked: String,
    pub detail: ReadDetail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadDetail {
    /// The tracks, as `parse-scan` prints them (numbers masked).
    Swipe(String),
    /// `card_code`, `guest_token` or `gift_token`.
    Payload(&'static str),
}

/// One read in the devices screen's test view. Holds no unmasked card data, so it can be kept
/// and drawn freely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadCheck {
    pub len: usize,
    /// [`masked_escaped`] of the read.
    pub raw: String,
    pub outcome: Result<ReadParsed, ScanError>,
}

/// Parses a read as a device delivered it, the way the till would identify with it.
pub fn check_read(raw: &[u8], config: &ScanParseConfig, now: UnixSeconds) -> ReadCheck {
    let outcome = classify(raw, config, now).map(|parsed| ReadParsed {
        kind: parsed.kind,
        detail: match &parsed.detail {
            ScanDetail::Swipe(swipe) => ReadDetail::Swipe(swipe.to_string()),
            ScanDetail::Payload(payload) => ReadDetail::Payload(payload_kind(payload)),
        },
        masked: parsed.masked,
    });
    ReadCheck {
        len: raw.len(),
        raw: masked_escaped(raw),
        outcome,
    }
}

/// A line typed with `parse-scan`'s escapes, parsed as if a device had sent it.
pub fn check_line(line: &str, config: &ScanParseConfig, now: UnixSeconds) -> Result<ReadCheck, EscapeError> {
    Ok(check_read(&unescape_line(line)?, config, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ScanParseConfig {
        scan_config(&ScanSettings::default(), 1_764_547_200) // 2025-12-01
    }

    #[test]
    fn escaping_shows_control_bytes_and_reads_back() {
        let raw = b"%E?;70\\01?\r\n\t\x02\x03\xff";
        let escaped = escape_bytes(raw);
        assert_eq!(escaped, r"%E?;70\\01?\r\n\t\x02\x03\xFF");
        assert_eq!(unescape_line(&escaped).unwrap(), raw.to_vec());
        assert_eq!(escape_bytes("Ж".as_bytes()), r"\xD0\x96", "not ASCII: byte by byte");
    }

    #[test]
    fn the_test_view_never_shows_card_data() {
        let stripe = b"%B4111111111111111^SMITH/JOHN^2512101123?;4111111111111111=2512101123?\r";
        let check = check_read(stripe, &config(), 1_764_547_200);
        assert_eq!(check.len, stripe.len());
        assert_eq!(check.raw, r"[track 1 masked][track 2 masked]\r");
        let parsed = check.outcome.unwrap();
        assert_eq!(parsed.kind, ScanKind::MagneticCard);
        assert_eq!(parsed.masked, "411111******1111");
        assert!(matches!(&parsed.detail, ReadDetail::Swipe(text) if !text.contains("4111111111111111")));

        // Cut short before the end sentinel: the name still does not show.
        let cut = check_read(b"%B4111111111111111^SMITH/JOHN^25121", &config(), 0);
        assert!(
            !cut.raw.contains("SMITH") && !cut.raw.contains("4111111111111111"),
            "{}",
            cut.raw
        );
        assert!(cut.outcome.is_err());

        for (raw, hidden) in [
            (&b"2000000000015\r"[..], "2000000000015"),
            (b"+79161234567\r", "9161234567"),
            (b";4111111111111111=2512101?", "4111111111111111"),
        ] {
            let check = check_read(raw, &config(), 0);
            assert!(!check.raw.contains(hidden), "{}", check.raw);
            assert!(check.raw.ends_with(r"\r") || !raw.ends_with(b"\r"));
        }
    }

    #[test]
    fn a_typed_line_is_checked_like_a_read() {
        let check = check_line(r"GMB-00001234\r", &config(), 0).unwrap();
        assert_eq!(check.raw, r"GMB-00001234\r");
        assert_eq!(check.len, 13);
        let parsed = check.outcome.unwrap();
        assert_eq!(parsed.kind, ScanKind::Barcode);
        assert_eq!(parsed.detail, ReadDetail::Payload("card_code"));
        assert_eq!(parsed.masked, "GM********34");
        assert_eq!(
            check_line(r"abc\q", &config(), 0),
            Err(EscapeError::UnknownEscape { at: 3, found: 'q' })
        );
        assert_eq!(check_line(r"abc\x4", &config(), 0), Err(EscapeError::BadHex { at: 3 }));
        let empty = check_line(r"\r", &config(), 0).unwrap();
        assert_eq!(empty.outcome, Err(ScanError::Empty));
    }

    #[test]
    fn yymm_of_known_dates() {
        assert_eq!(yymm(0), 7001);
        assert_eq!(yymm(1_795_392_000), 2611); // 2026-11-23
        assert_eq!(yymm(951_782_400), 2); // 2000-02-29
    }
}
