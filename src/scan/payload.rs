//! What a QR code or barcode means: one of our signed app tokens, or a plain card code.
//!
//! Tokens (`GMB1.<guest>.<issued_at>.<sig>`, `GMB1G.<guest>.<gift>.<issued_at>.<sig>`) carry an
//! HMAC-SHA256 over the text before the last dot, truncated to 16 bytes and written as 32
//! lowercase hex digits, so a screenshot cannot be altered and cannot be reused for long.

use crate::domain::{MAX_CODE_LEN, UnixSeconds};
use crate::mask::mask_code;
use hmac::digest::{Digest, Key};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

pub(crate) type HmacSha256 = Hmac<Sha256>;

const GUEST_VERSION: &str = "GMB1";
const GIFT_VERSION: &str = "GMB1G";
/// Bytes of the HMAC kept in a token: 128 bits resist forgery and keep the QR code small.
const SIG_BYTES: usize = 16;
/// How far ahead of the till's clock a token may claim to be issued: phones and tills are
/// rarely more than a few minutes apart.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// An `i64` has at most 19 decimal digits.
const MAX_TIMESTAMP_DIGITS: usize = 19;

/// The meaning of a scanned code.
#[derive(Clone, PartialEq, Eq)]
pub enum Payload {
    /// A printed card's code, passed to `identify` as it is.
    CardCode(String),
    GuestToken {
        guest_code: String,
        issued_at: UnixSeconds,
    },
    GiftToken {
        guest_code: String,
        gift_code: String,
        issued_at: UnixSeconds,
    },
}

impl Payload {
    /// What to pass to `identify`. For a gift token that is the gift code: the ledger resolves a
    /// gift code to its owner and the gift in one step ("authorise and give a gift").
    pub fn identify_code(&self) -> &str {
        match self {
            Payload::CardCode(code) => code,
            Payload::GuestToken { guest_code, .. } => guest_code,
            Payload::GiftToken { gift_code, .. } => gift_code,
        }
    }
}

/// Codes are masked: a card code may be a bank card number printed as a barcode.
impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::CardCode(code) => f.debug_tuple("CardCode").field(&mask_code(code)).finish(),
            Payload::GuestToken { guest_code, issued_at } => f
                .debug_struct("GuestToken")
                .field("guest_code", &mask_code(guest_code))
                .field("issued_at", issued_at)
                .finish(),
            Payload::GiftToken {
                guest_code,
                gift_code,
                issued_at,
            } => f
                .debug_struct("GiftToken")
                .field("guest_code", &mask_code(guest_code))
                .field("gift_code", &mask_code(gift_code))
                .field("issued_at", issued_at)
                .finish(),
        }
    }
}

/// Why a scanned code means nothing to us. Never carries the scanned text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("The QR code's signature does not match: it was not issued by this programme or was altered.")]
    Forged,
    #[error("The QR code expired {age} seconds after it was issued; ask the guest to refresh it in the app.")]
    Expired { age: i64 },
    #[error("The QR code was issued in the future; check the clock of this till.")]
    FromTheFuture,
    #[error("The QR code looks like a loyalty token but is malformed: {0}.")]
    Malformed(&'static str),
    #[error("The code is neither a loyalty QR code nor a printable card code.")]
    UnknownFormat,
    #[error("App QR codes cannot be checked: this till has no programme key in its settings.")]
    NoKey,
}

/// A guest token as the app shows it. Codes must be non-empty printable ASCII without '.', and
/// `issued_at` not negative, or [`parse_payload`] will reject the token as malformed.
pub fn sign_guest_token(secret: &[u8], guest_code: &str, issued_at: UnixSeconds) -> String {
    signed(secret, format!("{GUEST_VERSION}.{guest_code}.{issued_at}"))
}

/// A guest + gift token; the same rules as [`sign_guest_token`] apply to the codes.
pub fn sign_gift_token(secret: &[u8], guest_code: &str, gift_code: &str, issued_at: UnixSeconds) -> String {
    signed(secret, format!("{GIFT_VERSION}.{guest_code}.{gift_code}.{issued_at}"))
}

/// Reads a scanned code. Tokens are checked for shape, then signature, then age: a forged
/// token is reported as forged whatever time it claims.
pub fn parse_payload(text: &str, secret: &[u8], now: UnixSeconds, max_age_secs: i64) -> Result<Payload, PayloadError> {
    let is_token = [GUEST_VERSION, GIFT_VERSION]
        .iter()
        .any(|version| text.strip_prefix(version).is_some_and(|rest| rest.starts_with('.')));
    if is_token {
        parse_token(text, secret, now, max_age_secs)
    } else {
        plain_code(text)
    }
}

fn parse_token(text: &str, secret: &[u8], now: UnixSeconds, max_age_secs: i64) -> Result<Payload, PayloadError> {
    // Anyone can sign with an empty key: without the programme's key no token is trusted.
    if secret.is_empty() {
        return Err(PayloadError::NoKey);
    }
    let (signed_text, sig_hex) = text.rsplit_once('.').ok_or(PayloadError::Malformed("no signature"))?;
    let fields: Vec<&str> = signed_text.split('.').collect();
    let (payload, issued_at) = match fields.as_slice() {
        [GUEST_VERSION, guest, issued] => {
            let issued_at = timestamp(issued)?;
            let guest_code = token_code(guest)?;
            (Payload::GuestToken { guest_code, issued_at }, issued_at)
        }
        [GIFT_VERSION, guest, gift, issued] => {
            let issued_at = timestamp(issued)?;
            let payload = Payload::GiftToken {
                guest_code: token_code(guest)?,
                gift_code: token_code(gift)?,
                issued_at,
            };
            (payload, issued_at)
        }
        _ => return Err(PayloadError::Malformed("wrong number of fields")),
    };
    let sig = decode_sig(sig_hex)?;
    keyed_mac(secret)
        .chain_update(signed_text)
        .verify_truncated_left(&sig)
        .map_err(|_| PayloadError::Forged)?;
    check_age(issued_at, now, max_age_secs)?;
    Ok(payload)
}

fn token_code(field: &str) -> Result<String, PayloadError> {
    if field.is_empty() {
        return Err(PayloadError::Malformed("empty code"));
    }
    if field.len() > MAX_CODE_LEN || !field.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PayloadError::Malformed("code is not printable or too long"));
    }
    Ok(field.to_string())
}

/// Digits only: `i64::from_str` would also take a sign, which no issuer writes.
fn timestamp(field: &str) -> Result<UnixSeconds, PayloadError> {
    let bad = PayloadError::Malformed("issue time is not a number of seconds");
    if field.is_empty() || field.len() > MAX_TIMESTAMP_DIGITS || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    field.parse().map_err(|_| bad)
}

fn decode_sig(hex: &str) -> Result<Vec<u8>, PayloadError> {
    let bad = PayloadError::Malformed("signature is not 32 lowercase hex digits");
    if hex.len() != SIG_BYTES * 2 {
        return Err(bad);
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some(lower_hex_value(pair[0])? * 16 + lower_hex_value(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(bad)
}

fn lower_hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn check_age(issued_at: UnixSeconds, now: UnixSeconds, max_age_secs: i64) -> Result<(), PayloadError> {
    if issued_at > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(PayloadError::FromTheFuture);
    }
    // Within the allowed skew a token may be slightly ahead of us: its age counts as zero.
    let age = now.saturating_sub(issued_at).max(0);
    if age > max_age_secs {
        return Err(PayloadError::Expired { age });
    }
    Ok(())
}

/// Printable ASCII of 1..=MAX_CODE_LEN characters that is not all spaces.
fn plain_code(text: &str) -> Result<Payload, PayloadError> {
    let printable = text.bytes().all(|b| (b' '..=b'~').contains(&b));
    if !printable || text.len() > MAX_CODE_LEN || text.trim().is_empty() {
        return Err(PayloadError::UnknownFormat);
    }
    Ok(Payload::CardCode(text.to_string()))
}

fn signed(secret: &[u8], signed_text: String) -> String {
    let tag = keyed_mac(secret).chain_update(&signed_text).finalize().into_bytes();
    let hex: String = tag[..SIG_BYTES].iter().map(|b| format!("{b:02x}")).collect();
    format!("{signed_text}.{hex}")
}

/// HMAC-SHA256 keyed with a secret of any length. The key block is derived as RFC 2104 says
/// (longer keys hashed, shorter ones zero-padded) so that the infallible `new` can be used
/// instead of `new_from_slice`, whose error cannot happen for HMAC but would need handling.
pub(crate) fn keyed_mac(secret: &[u8]) -> HmacSha256 {
    let mut key = Key::<HmacSha256>::default();
    if secret.len() <= key.len() {
        key[..secret.len()].copy_from_slice(secret);
    } else {
        let hash = Sha256::digest(secret);
        key[..hash.len()].copy_from_slice(&hash);
    }
    HmacSha256::new(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac_hex(key: &[u8], data: &[u8]) -> String {
        let tag = keyed_mac(key).chain_update(data).finalize().into_bytes();
        tag.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn key_derivation_matches_rfc_4231() {
        // Test case 1: a short key.
        assert_eq!(
            hmac_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 6: a key longer than the block, hashed first.
        assert_eq!(
            hmac_hex(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signature_is_32_lowercase_hex_digits() {
        let token = sign_guest_token(b"k", "G1", 1_700_000_000);
        let sig = token.rsplit_once('.').unwrap().1;
        assert_eq!(sig.len(), 32);
        assert!(sig.bytes().all(|b| lower_hex_value(b).is_some()));
    }

    #[test]
    fn uppercase_hex_is_malformed() {
        let token = sign_guest_token(b"k", "G1", 100);
        let (head, sig) = token.rsplit_once('.').unwrap();
        assert_ne!(sig, sig.to_uppercase(), "the fixture needs a letter in its signature");
        let text = format!("{head}.{}", sig.to_uppercase());
        assert_eq!(
            parse_payload(&text, b"k", 100, 60),
            Err(PayloadError::Malformed("signature is not 32 lowercase hex digits"))
        );
    }

    #[test]
    fn age_within_skew_counts_as_zero() {
        assert_eq!(check_age(1_000, 900, 0), Ok(()));
        assert_eq!(check_age(1_301, 1_000, 60), Err(PayloadError::FromTheFuture));
        assert_eq!(check_age(0, 61, 60), Err(PayloadError::Expired { age: 61 }));
    }
}
