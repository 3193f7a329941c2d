//! Command-line diagnostics for support and measurement: JSON lines on stdout, card data masked.

use crate::config::ScanSettings;
use crate::domain::{UnixSeconds, civil_date};
use crate::scan::escape::unescape_line;
use crate::scan::payload::Payload;
use crate::scan::{ScanDetail, ScanParseConfig, classify};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yymm_of_known_dates() {
        assert_eq!(yymm(0), 7001);
        assert_eq!(yymm(1_795_392_000), 2611); // 2026-11-23
        assert_eq!(yymm(951_782_400), 2); // 2000-02-29
    }
}
