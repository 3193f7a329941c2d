//! Money and bonus points: always integers in minor units (kopecks), never floats.

use std::fmt;

/// An amount in minor units (kopecks). Bonus points use the same unit: one bonus = one rouble.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Kopecks(pub i64);

impl Kopecks {
    pub const ZERO: Kopecks = Kopecks(0);

    pub fn from_roubles(roubles: i64) -> Self {
        Kopecks(roubles * 100)
    }

    /// `self * basis_points / 10_000`, rounded down. Percentages are basis points (5% = 500).
    pub fn percent_floor(self, basis_points: i64) -> Kopecks {
        // i128 keeps the product exact for any i64 amount.
        Kopecks(((self.0 as i128 * basis_points as i128) / 10_000) as i64)
    }

    /// Rounds down to a multiple of `step` (a step of 0 or 1 leaves the amount as it is).
    pub fn floor_to_step(self, step: Kopecks) -> Kopecks {
        if step.0 <= 1 {
            self
        } else {
            Kopecks(self.0 - self.0.rem_euclid(step.0))
        }
    }

    pub fn min(self, other: Kopecks) -> Kopecks {
        if self <= other { self } else { other }
    }

    pub fn saturating_sub(self, other: Kopecks) -> Kopecks {
        Kopecks(self.0.saturating_sub(other.0).max(0))
    }
}

impl std::ops::Add for Kopecks {
    type Output = Kopecks;
    fn add(self, rhs: Kopecks) -> Kopecks {
        Kopecks(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Kopecks {
    type Output = Kopecks;
    fn sub(self, rhs: Kopecks) -> Kopecks {
        Kopecks(self.0 - rhs.0)
    }
}

impl std::iter::Sum for Kopecks {
    fn sum<I: Iterator<Item = Kopecks>>(iter: I) -> Kopecks {
        Kopecks(iter.map(|k| k.0).sum())
    }
}

/// Russian-style display: `1 234,50`. Whole amounts keep their kopecks so columns line up.
impl fmt::Display for Kopecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let roubles = (abs / 100).to_string();
        let mut grouped = String::new();
        for (i, ch) in roubles.chars().enumerate() {
            if i > 0 && (roubles.len() - i).is_multiple_of(3) {
                grouped.push('\u{a0}');
            }
            grouped.push(ch);
        }
        write!(f, "{sign}{grouped},{:02}", abs % 100)
    }
}

/// Why a typed amount was refused. Each maps to one message for the cashier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountError {
    Empty,
    NotANumber,
    TooManyDecimals,
    TooLarge,
}

/// The largest amount the till accepts anywhere: 10 million roubles. Far above any check,
/// far below i64 overflow and JSON's 2^53.
pub const MAX_AMOUNT: Kopecks = Kopecks(1_000_000_000);

/// Parses what a cashier types: `123`, `123,4`, `123.45`, with optional spaces between groups.
pub fn parse_amount(text: &str) -> Result<Kopecks, AmountError> {
    let cleaned: String = text.chars().filter(|c| !c.is_whitespace() && *c != '\u{a0}').collect();
    if cleaned.is_empty() {
        return Err(AmountError::Empty);
    }
    let (whole, fraction) = match cleaned.find([',', '.']) {
        Some(pos) => (&cleaned[..pos], &cleaned[pos + 1..]),
        None => (cleaned.as_str(), ""),
    };
    let digits_only = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits_only(whole) || !digits_only(fraction) || (whole.is_empty() && fraction.is_empty()) {
        return Err(AmountError::NotANumber);
    }
    if fraction.len() > 2 {
        return Err(AmountError::TooManyDecimals);
    }
    if whole.len() > 10 {
        return Err(AmountError::TooLarge);
    }
    let roubles: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| AmountError::NotANumber)?
    };
    let mut kopecks: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| AmountError::NotANumber)?
    };
    if fraction.len() == 1 {
        kopecks *= 10;
    }
    let amount = Kopecks(roubles * 100 + kopecks);
    if amount > MAX_AMOUNT {
        return Err(AmountError::TooLarge);
    }
    Ok(amount)
}

/// The text a field shows for an amount, in the form `parse_amount` reads back.
pub fn amount_input_text(amount: Kopecks) -> String {
    if amount.0 % 100 == 0 {
        (amount.0 / 100).to_string()
    } else {
        format!("{},{:02}", amount.0 / 100, amount.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cashier_amounts() {
        assert_eq!(parse_amount("123"), Ok(Kopecks(12_300)));
        assert_eq!(parse_amount("123,4"), Ok(Kopecks(12_340)));
        assert_eq!(parse_amount("123.45"), Ok(Kopecks(12_345)));
        assert_eq!(parse_amount("1 234,50"), Ok(Kopecks(123_450)));
        assert_eq!(parse_amount(",5"), Ok(Kopecks(50)));
        assert_eq!(parse_amount(""), Err(AmountError::Empty));
        assert_eq!(parse_amount("12a"), Err(AmountError::NotANumber));
        assert_eq!(parse_amount("-5"), Err(AmountError::NotANumber));
        assert_eq!(parse_amount("1,2,3"), Err(AmountError::NotANumber));
        assert_eq!(parse_amount("1,234"), Err(AmountError::TooManyDecimals));
        assert_eq!(parse_amount("99999999999"), Err(AmountError::TooLarge));
        assert_eq!(parse_amount("10000001"), Err(AmountError::TooLarge));
    }

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(Kopecks(123_450).to_string(), "1\u{a0}234,50");
        assert_eq!(Kopecks(5).to_string(), "0,05");
        assert_eq!(Kopecks(-250).to_string(), "-2,50");
        for k in [0, 1, 99, 100, 12_345, 100_000] {
            assert_eq!(parse_amount(&amount_input_text(Kopecks(k))), Ok(Kopecks(k)));
        }
    }

    #[test]
    fn percent_and_step_round_down() {
        assert_eq!(Kopecks(12_345).percent_floor(500), Kopecks(617));
        assert_eq!(Kopecks(10_000).percent_floor(5_000), Kopecks(5_000));
        assert_eq!(Kopecks(12_345).floor_to_step(Kopecks(100)), Kopecks(12_300));
        assert_eq!(Kopecks(12_345).floor_to_step(Kopecks(1)), Kopecks(12_345));
    }
}
