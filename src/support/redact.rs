//! The masking pass over everything that goes into a support bundle, on top of the masking done
//! when lines are logged: magnetic track data, signed app QR tokens, bearer tokens, values of
//! secret-looking keys, card numbers (12 to 19 digits and longer) and phone numbers.
//!
//! Works on ASCII patterns byte by byte, so text in any language passes through unchanged.

use crate::mask::mask_phone;

/// What replaces a removed secret value.
pub const REMOVED: &str = "[removed]";

/// Masks every kind of personal or secret data this module knows in `text`.
pub fn mask_text(text: &str) -> String {
    let text = mask_track1(text);
    let text = mask_track23(&text);
    let text = mask_tokens(&text);
    let text = mask_bearer(&text);
    let text = mask_secret_values(&text);
    mask_digit_runs(&text)
}

/// Whether a key (config key, log field, JSON member) names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "passwd",
        "api_key",
        "apikey",
        "api-key",
        "authorization",
        "private_key",
        "credential",
    ]
    .iter()
    .any(|word| key.contains(word))
        || is_pin_key(&key)
}

/// Waiters' PINs (`waiter_pins`, iikoWaiter's `WaiterPin`), without catching words that merely
/// contain "pin" ("shipping"). Their values are digits, so unlike other secrets' numbers they go.
fn is_pin_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.split(['_', '-']).any(|word| word == "pin" || word == "pins") || key.ends_with("pin")
}

/// A stretch of text to replace: bytes `from..to` become `with`.
struct Replace {
    from: usize,
    to: usize,
    with: &'static str,
}

/// Runs `find` at every byte position; where it matches, the text is replaced and scanning goes
/// on after the match. One loop for every pattern below, so none can get the copying wrong.
fn replace_matches(text: &str, find: impl Fn(&[u8], usize) -> Option<Replace>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match find(bytes, i) {
            Some(found) if found.to > i => {
                out.push_str(&text[copied..found.from]);
                out.push_str(found.with);
                i = found.to;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Track 1 (`%B<pan>^<name>^<expiry…>?`): the whole track, with the card holder's name.
fn mask_track1(text: &str) -> String {
    replace_matches(text, |bytes, i| {
        if bytes[i] != b'%' || !bytes.get(i + 1).is_some_and(u8::is_ascii_uppercase) {
            return None;
        }
        let mut j = i + 2;
        while j < bytes.len() && j - i <= 80 && bytes[j] != b'?' && bytes[j] != b'\n' {
            j += 1;
        }
        let has_digit = bytes[i + 2..j.min(bytes.len())].iter().any(u8::is_ascii_digit);
        (j < bytes.len() && bytes[j] == b'?' && has_digit).then_some(Replace {
            from: i,
            to: j + 1,
            with: "[track 1 masked]",
        })
    })
}

/// Tracks 2 and 3 (`;<pan>=<expiry…>?`): digits and separators between `;` and `?`.
fn mask_track23(text: &str) -> String {
    replace_matches(text, |bytes, i| {
        if bytes[i] != b';' || !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let mut j = i + 1;
        let mut digits = 0;
        while j < bytes.len() && j - i <= 108 && (bytes[j].is_ascii_digit() || bytes[j] == b'=') {
            digits += usize::from(bytes[j].is_ascii_digit());
            j += 1;
        }
        (j < bytes.len() && bytes[j] == b'?' && digits >= 6).then_some(Replace {
            from: i,
            to: j + 1,
            with: "[track 2 masked]",
        })
    })
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~' | b'+' | b'/' | b'=')
}

fn at_word_start(bytes: &[u8], i: usize) -> bool {
    i == 0 || !bytes[i - 1].is_ascii_alphanumeric()
}

/// Signed app QR tokens (`GMB1.…`, `GMB1G.…`, see `scan::payload`): only the version stays.
fn mask_tokens(text: &str) -> String {
    replace_matches(text, |bytes, i| {
        if !at_word_start(bytes, i) || !bytes[i..].starts_with(b"GMB1") {
            return None;
        }
        let dot = if bytes[i + 4..].starts_with(b"G.") {
            i + 5
        } else if bytes[i + 4..].starts_with(b".") {
            i + 4
        } else {
            return None;
        };
        let mut j = dot + 1;
        while j < bytes.len() && is_token_char(bytes[j]) {
            j += 1;
        }
        (j > dot + 1).then_some(Replace {
            from: dot + 1,
            to: j,
            with: "[token masked]",
        })
    })
}

/// `Bearer <token>`, whatever the case of the word.
fn mask_bearer(text: &str) -> String {
    replace_matches(text, |bytes, i| {
        if i + 6 >= bytes.len() || !at_word_start(bytes, i) || !bytes[i..i + 6].eq_ignore_ascii_case(b"bearer") {
            return None;
        }
        let mut j = i + 6;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let start = j;
        while j < bytes.len() && is_token_char(bytes[j]) {
            j += 1;
        }
        (start > i + 6 && j > start && &bytes[start..j] != REMOVED.as_bytes()).then_some(Replace {
            from: start,
            to: j,
            with: REMOVED,
        })
    })
}

/// `token_secret = "…"`, `"password":"…"`, `api_key=…`: the value of a secret-looking key is
/// replaced. Numbers and booleans stay (`token_max_age_secs = 600` is no secret).
fn mask_secret_values(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') && (i == 0 || !is_ident(bytes[i - 1]));
        if !starts_word {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len() && is_ident(bytes[j]) {
            j += 1;
        }
        let key = &text[i..j];
        if !is_secret_key(key) {
            i = j;
            continue;
        }
        // Past a JSON key's closing quote and spaces, to the `=` or `:`.
        let mut k = j;
        if bytes.get(k) == Some(&b'"') {
            k += 1;
        }
        while bytes.get(k) == Some(&b' ') {
            k += 1;
        }
        if !matches!(bytes.get(k), Some(b'=' | b':')) {
            i = j;
            continue;
        }
        k += 1;
        while bytes.get(k) == Some(&b' ') {
            k += 1;
        }
        let (start, end) = if bytes.get(k) == Some(&b'"') {
            let start = k + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end] != b'"' && bytes[end] != b'\n' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            (start, end.min(bytes.len()))
        } else if key.eq_ignore_ascii_case("authorization") {
            let mut end = k;
            while end < bytes.len() && bytes[end] != b'\n' && bytes[end] != b'"' {
                end += 1;
            }
            (k, end)
        } else {
            let mut end = k;
            while end < bytes.len() && !bytes[end].is_ascii_whitespace() && !b",;}])\"'".contains(&bytes[end]) {
                end += 1;
            }
            (k, end)
        };
        let value = &text[start..end];
        let harmless = value.is_empty()
            || value == REMOVED
            || value == "true"
            || value == "false"
            || (value.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') && !is_pin_key(key));
        if harmless {
            i = end.max(j);
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(REMOVED);
        copied = end;
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Runs of digits, joined across the separators people write in numbers (`+7 (916) 123-45-67`,
/// `4111 1111 1111 1111`): 12 digits or more are a card number and keep their last four; a
/// phone number is masked as on screen; shorter numbers (amounts, dates, ids) stay.
fn mask_digit_runs(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_run = bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit());
        if !starts_run {
            i += 1;
            continue;
        }
        let plus = i > 0 && bytes[i - 1] == b'+';
        let mut digits = String::new();
        let mut j = i;
        let mut end = i;
        loop {
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                digits.push(char::from(bytes[j]));
                j += 1;
            }
            end = end.max(j);
            let mut k = j;
            while k < bytes.len() && k - j < 2 && matches!(bytes[k], b' ' | b'-' | b'(' | b')') {
                k += 1;
            }
            if k > j && k < bytes.len() && bytes[k].is_ascii_digit() {
                j = k;
            } else {
                break;
            }
        }
        let first = digits.as_bytes()[0];
        let count = digits.len();
        let replacement = if count >= 12 {
            let mut masked = format!("****{}", &digits[count - 4..]);
            // The rest of a track 2 after the card number: expiry, service code, data.
            if bytes.get(end) == Some(&b'=') {
                let mut k = end + 1;
                while k < bytes.len() && bytes[k].is_ascii_digit() {
                    k += 1;
                }
                if k > end + 1 {
                    masked.push_str("=****");
                    end = k;
                }
            }
            Some(masked)
        } else if (plus && (10..=15).contains(&count))
            || (count == 11 && matches!(first, b'7' | b'8'))
            || (count == 10 && first == b'9')
        {
            Some(mask_phone(&digits))
        } else {
            None
        };
        if let Some(masked) = replacement {
            let start = if plus { i - 1 } else { i };
            out.push_str(&text[copied..start]);
            out.push_str(&masked);
            copied = end;
        }
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_track_data_with_the_holder_name() {
        let text = "read %B4111111111111111^SMITH/JOHN^2512101?;4111111111111111=2512101? done";
        let masked = mask_text(text);
        assert_eq!(masked, "read [track 1 masked][track 2 masked] done");
        let bare = mask_text("pan 4111111111111111=25121010000 end");
        assert_eq!(bare, "pan ****1111=**** end");
        // The error marker of an empty track carries nothing.
        assert_eq!(mask_text("%E?"), "%E?");
    }

    #[test]
    fn masks_cards_and_phones_in_every_spelling() {
        for (text, expected) in [
            ("card 2000000000015.", "card ****0015."),
            ("pan=4111 1111 1111 1111", "pan=****1111"),
            ("phone +79161234567 ok", "phone +7 *** ***-45-67 ok"),
            ("phone +7 (916) 123-45-67", "phone +7 *** ***-45-67"),
            ("phone 8-916-123-45-67", "phone +7 *** ***-45-67"),
            ("phone 9161234567,", "phone ***-67,"),
            ("x79161234567y", "x+7 *** ***-45-67y"),
        ] {
            assert_eq!(mask_text(text), expected, "{text}");
        }
    }

    #[test]
    fn leaves_dates_amounts_and_ids_alone() {
        for text in [
            "2025-06-01T10:11:12.123456Z  INFO backend call succeeded request=12 subtotal=107000",
            "op=till-1-lq3k9xab-3 guest=1 amount=20000 ms=3",
            "issued_at=1700000000 token_max_age_secs = 600",
            "Анна Смирнова, +7 *** ***-45-67, 350,00",
            "GMB-00001234 and %E?",
        ] {
            assert_eq!(mask_text(text), text);
        }
    }

    #[test]
    fn masks_tokens_bearers_and_secret_values() {
        let token = "GMB1G.100001.G100001.1700000000.0123456789abcdef0123456789abcdef";
        assert_eq!(mask_text(&format!("scan {token} ok")), "scan GMB1G.[token masked] ok");
        assert_eq!(mask_text("qr=GMB1.100002.17.ab"), "qr=GMB1.[token masked]");
        assert_eq!(
            mask_text("Authorization: Bearer abc.DEF-123_x"),
            "Authorization: [removed]"
        );
        assert_eq!(mask_text("header bearer abc.DEF-123_x"), "header bearer [removed]");
        assert_eq!(mask_text("token_secret = \"hunter2\""), "token_secret = \"[removed]\"");
        assert_eq!(
            mask_text("{\"api_key\":\"k-1\",\"n\":1}"),
            "{\"api_key\":\"[removed]\",\"n\":1}"
        );
        assert_eq!(mask_text("password=swordfish next"), "password=[removed] next");
        assert_eq!(
            mask_text("{\"Value\":\"x\",\"WaiterPin\":\"4921\"}"),
            "{\"Value\":\"x\",\"WaiterPin\":\"[removed]\"}"
        );
        assert_eq!(mask_text("WaiterPin=4921 ok"), "WaiterPin=[removed] ok");
        assert_eq!(mask_text("token_max_age_secs = 600"), "token_max_age_secs = 600");
        assert_eq!(mask_text("shipping = \"fast\""), "shipping = \"fast\"");
        assert_eq!(mask_text("token = \"\""), "token = \"\"");
        assert_eq!(mask_text("kind=GuestToken"), "kind=GuestToken");
    }

    #[test]
    fn masking_is_stable() {
        let text = "%B4111111111111111^A/B^2512?;4111111111111111=2512? +79161234567 GMB1.x Bearer y";
        let once = mask_text(text);
        assert_eq!(mask_text(&once), once);
    }
}
