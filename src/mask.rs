//! Masking of personal data for the screen, logs, errors and exports.
//! Phone numbers, card numbers and track data never leave the identify call unmasked.

/// `+79161234567` -> `+7 *** ***-45-67`. Anything that is not a phone keeps only its last two digits.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 4 {
        return "***".to_string();
    }
    let last4: String = digits[digits.len() - 4..].iter().collect();
    if digits.len() == 11 && (digits[0] == '7' || digits[0] == '8') {
        format!("+7 *** ***-{}-{}", &last4[..2], &last4[2..])
    } else {
        format!("***-{}", &last4[2..])
    }
}

/// Masks a scanned or typed identifier for logs: keeps the first two and last two characters of
/// codes long enough to stay unguessable, and stars the rest.
pub fn mask_code(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len().min(6));
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_phones() {
        assert_eq!(mask_phone("+79161234567"), "+7 *** ***-45-67");
        assert_eq!(mask_phone("89161234567"), "+7 *** ***-45-67");
        assert_eq!(mask_phone("12"), "***");
        assert_eq!(mask_phone("4420712345"), "***-45");
    }

    #[test]
    fn masks_codes() {
        assert_eq!(mask_code("100001"), "******");
        assert_eq!(mask_code("GMB-00001234"), "GM********34");
        assert!(!mask_code("4276380012345678").contains("0012345"));
    }
}
