//! Parsers for what input devices deliver: magnetic stripe tracks, QR and barcode payloads, and
//! the escaped lines of the `parse-scan` diagnostics command. Pure functions: no device I/O and
//! no clock; the current time comes in as a parameter.

pub mod escape;
pub mod magstripe;
pub mod payload;

use crate::domain::{ScanEvent, ScanKind, ScanRefusal, UnixSeconds};
use crate::mask::mask_code;
use magstripe::{IdentifyField, MagError, Swipe, mask_pan, parse_swipe};
use payload::{Payload, PayloadError, parse_payload};
use std::fmt;

/// Longest raw read accepted: three full tracks are under 250 bytes and a QR code of ours under
/// 300, so anything near this is a stuck key or a device sending something else.
pub const MAX_SCAN_BYTES: usize = 4096;

/// What `classify` needs to know about the programme and the till.
#[derive(Clone, PartialEq, Eq)]
pub struct ScanParseConfig {
    pub identify_field: IdentifyField,
    /// The programme's key for app tokens.
    pub token_secret: Vec<u8>,
    pub token_max_age_secs: i64,
    /// Today as `YYMM` (2511 for November 2025), for the expiry flag of bank-style cards.
    pub today_yymm: u16,
}

/// The secret is left out, so that the configuration can be logged.
impl fmt::Debug for ScanParseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScanParseConfig")
            .field("identify_field", &self.identify_field)
            .field("token_secret", &format_args!("<{} bytes>", self.token_secret.len()))
            .field("token_max_age_secs", &self.token_max_age_secs)
            .field("today_yymm", &self.today_yymm)
            .finish()
    }
}

/// The parsed form of a read, as far as the parsers could tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanDetail {
    Swipe(Swipe),
    Payload(Payload),
}

/// One classified read.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedScan {
    pub kind: ScanKind,
    /// What to pass to `identify`. Unmasked: never log it; log `masked`.
    pub identifier: String,
    pub masked: String,
    pub detail: ScanDetail,
}

impl ParsedScan {
    /// The event every input source delivers into the workflow; its payload is the identifier.
    pub fn to_scan_event(&self, source: impl Into<String>, received_at_ms: i64) -> ScanEvent {
        ScanEvent {
            source: source.into(),
            kind: self.kind,
            payload: self.identifier.clone(),
            symbology: None,
            received_at_ms,
        }
    }
}

/// Shows `masked` in place of the identifier, so that `{:?}` is safe in logs.
impl fmt::Debug for ParsedScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedScan")
            .field("kind", &self.kind)
            .field("identifier", &self.masked)
            .field("detail", &self.detail)
            .finish()
    }
}

/// Why a read gives no identifier. The messages never hold the scanned data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("The read is {len} bytes long; at most {max} bytes are accepted.")]
    TooLong { len: usize, max: usize },
    #[error("The read is not UTF-8 text (bad byte at position {at}); check the device's settings.")]
    NotUtf8 { at: usize },
    #[error("The read is empty.")]
    Empty,
    #[error(transparent)]
    Magstripe(#[from] MagError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

impl ScanError {
    /// The message the cashier sees for this refusal.
    pub fn refusal(&self) -> ScanRefusal {
        match self {
            ScanError::TooLong { .. } | ScanError::NotUtf8 { .. } | ScanError::Empty => ScanRefusal::Garbled,
            ScanError::Magstripe(_) => ScanRefusal::SwipeAgain,
            ScanError::Payload(PayloadError::Forged) => ScanRefusal::QrForged,
            ScanError::Payload(PayloadError::Expired { .. }) => ScanRefusal::QrExpired,
            ScanError::Payload(PayloadError::FromTheFuture) => ScanRefusal::QrClock,
            ScanError::Payload(PayloadError::NoKey) => ScanRefusal::QrNoKey,
            ScanError::Payload(PayloadError::Malformed(_) | PayloadError::UnknownFormat) => ScanRefusal::QrUnknown,
        }
    }
}

/// Decides what a raw read is and what identifies the guest in it. Reads starting with a track
/// start sentinel (`%`, `;`, `+`) are magnetic stripes; anything else is a QR or barcode payload.
/// A plain card code is reported as a barcode: only the device knows the symbology.
pub fn classify(raw: &[u8], config: &ScanParseConfig, now: UnixSeconds) -> Result<ParsedScan, ScanError> {
    if raw.len() > MAX_SCAN_BYTES {
        return Err(ScanError::TooLong {
            len: raw.len(),
            max: MAX_SCAN_BYTES,
        });
    }
    let text = std::str::from_utf8(strip_terminator(raw)).map_err(|e| ScanError::NotUtf8 { at: e.valid_up_to() })?;
    if text.is_empty() {
        return Err(ScanError::Empty);
    }
    if looks_like_swipe(text) {
        classify_swipe(text, config)
    } else {
        classify_payload(text, config, now)
    }
}

/// `%` and `;` open a track; `+` (track 3) only counts with an end sentinel somewhere, so that a
/// scanned phone number such as `+79161234567` stays a code.
fn looks_like_swipe(text: &str) -> bool {
    text.starts_with(['%', ';']) || (text.starts_with('+') && text.contains('?'))
}

/// Removes one line terminator the way readers end a read: CRLF, CR, LF or ETX.
fn strip_terminator(raw: &[u8]) -> &[u8] {
    if let Some(rest) = raw.strip_suffix(b"\r\n") {
        return rest;
    }
    match raw.split_last() {
        Some((b'\r' | b'\n' | 0x03, rest)) => rest,
        _ => raw,
    }
}

fn classify_swipe(text: &str, config: &ScanParseConfig) -> Result<ParsedScan, ScanError> {
    let swipe = parse_swipe(text, config.today_yymm)?;
    let identifier = swipe.identifier(config.identify_field)?;
    Ok(ParsedScan {
        kind: ScanKind::MagneticCard,
        masked: mask_pan(&identifier),
        identifier,
        detail: ScanDetail::Swipe(swipe),
    })
}

fn classify_payload(text: &str, config: &ScanParseConfig, now: UnixSeconds) -> Result<ParsedScan, ScanError> {
    let payload = parse_payload(text, &config.token_secret, now, config.token_max_age_secs)?;
    let kind = match payload {
        Payload::CardCode(_) => ScanKind::Barcode,
        Payload::GuestToken { .. } | Payload::GiftToken { .. } => ScanKind::Qr,
    };
    let identifier = payload.identify_code().to_string();
    Ok(ParsedScan {
        kind,
        masked: mask_code(&identifier),
        identifier,
        detail: ScanDetail::Payload(payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_exactly_one_terminator() {
        assert_eq!(strip_terminator(b"abc\r\n"), b"abc");
        assert_eq!(strip_terminator(b"abc\n\n"), b"abc\n");
        assert_eq!(strip_terminator(b"abc\x03"), b"abc");
        assert_eq!(strip_terminator(b"abc\r"), b"abc");
        assert_eq!(strip_terminator(b"abc"), b"abc");
        assert_eq!(strip_terminator(b""), b"");
    }

    #[test]
    fn config_debug_hides_the_secret() {
        let config = ScanParseConfig {
            identify_field: IdentifyField::default(),
            token_secret: b"top-secret".to_vec(),
            token_max_age_secs: 60,
            today_yymm: 2511,
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("top-secret"));
        assert!(shown.contains("<10 bytes>"));
    }
}
