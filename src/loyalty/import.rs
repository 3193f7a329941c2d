//! Guests imported from and exported to CSV: the file's format and every rule a row must pass.
//! [`read_file`] decodes and splits a file and checks each row on its own; [`check_rows`] checks
//! the rows against each other and against the organisation (its groups and the identifiers it
//! has), and is what the engine's import ([`super::engine::import_guests`]) decides by.
//!
//! The format (README «Импорт и экспорт гостей»): one guest a row, the columns
//! `name; phone; card; card_kind; group; balance`, an optional header row (the English names
//! below or the Russian ones the export writes). UTF-8 with or without a BOM, or Windows-1251;
//! `;` or `,` between fields, quotes as RFC 4180. A guest with several cards lists them in
//! `card` separated by `|`, with as many kinds (or none: a barcode) in `card_kind`. The balance is
//! in roubles with at most two decimals (`1234`, `1234,5`, `1234.56`), no sign and no spaces,
//! converted to kopecks without floating point; empty is zero.

use crate::domain::{IdentifierKind, guest_name, normalize_phone};
use crate::money::Kopecks;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The columns of a row, in order: the six of every file, then whether the guest is blocked,
/// which a file may leave out (files written before the export carried it have six).
pub const COLUMNS: usize = 7;
/// The columns a row must have.
pub const REQUIRED_COLUMNS: usize = 6;
/// The header the export writes, and the import recognises (with [`HEADER_RU`]).
pub const HEADER_EN: [&str; COLUMNS] = ["name", "phone", "card", "card_kind", "group", "balance", "blocked"];
pub const HEADER_RU: [&str; COLUMNS] = [
    "имя",
    "телефон",
    "карта",
    "тип карты",
    "группа",
    "баланс",
    "заблокирован",
];
/// What the export writes in the blocked column of a blocked guest (empty for the others).
pub const BLOCKED_MARK: &str = "да";
/// The largest opening balance taken: 100 000 000 ₽ (far beyond any real one, far from overflow).
pub const MAX_BALANCE: Kopecks = Kopecks(10_000_000_000);
/// Rows shown as read on the preview.
pub const PREVIEW_ROWS: usize = 10;
/// Between several cards in one field.
pub const CARD_SEPARATOR: char = '|';

/// How the file's bytes were read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8Bom,
    Utf8,
    Windows1251,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8Bom => "UTF-8 (BOM)",
            Encoding::Utf8 => "UTF-8",
            Encoding::Windows1251 => "Windows-1251",
        }
    }
}

/// Why a row is not imported. Nothing personal: the line number says which row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// Neither [`REQUIRED_COLUMNS`] nor [`COLUMNS`] fields.
    ColumnCount {
        found: usize,
    },
    /// A quote opened and never closed (the rest of the file is this one field).
    UnclosedQuote,
    BadName,
    /// Neither a phone nor a card.
    NoIdentifier,
    BadPhone,
    BadCard,
    BadCardKind,
    /// A minus sign.
    NegativeBalance,
    /// Not roubles with at most two decimals.
    BadBalance,
    TooLargeBalance,
    /// The blocked column is neither empty nor a yes or a no.
    BadBlocked,
    UnknownGroup,
    /// The phone or a card of an earlier row of the file.
    DuplicateInFile {
        first_line: usize,
    },
    /// A phone or card another guest of the organisation has.
    TakenInOrg,
}

/// One rejected row: its line in the file (where the row starts) and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub line: usize,
    #[serde(flatten)]
    pub reason: Reason,
}

/// A row read and checked on its own: values as they will be stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRow {
    pub line: usize,
    pub name: String,
    /// Normalised (`+7XXXXXXXXXX`).
    pub phone: Option<String>,
    pub cards: Vec<(IdentifierKind, String)>,
    pub group: String,
    pub balance: Kopecks,
    /// Imported blocked: not identified at a till until unblocked.
    #[serde(default)]
    pub blocked: bool,
}

/// A row's fields as read, for the preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRow {
    pub line: usize,
    pub fields: Vec<String>,
}

/// A file read: how, its rows, and the rows refused on their own.
#[derive(Clone, Debug)]
pub struct ReadFile {
    pub encoding: Encoding,
    pub separator: char,
    pub header: bool,
    /// Data rows in the file (without the header), good or not.
    pub total: usize,
    pub first_rows: Vec<RawRow>,
    pub rows: Vec<ImportRow>,
    pub rejected: Vec<Rejection>,
}

/// What the engine answers for an import: either every row imported, or nothing and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// Guests added (0 when anything was rejected, or on a dry run).
    pub imported: usize,
    /// Guests the import would add (a dry run) or added.
    pub accepted: usize,
    /// The opening balances credited (or to credit, on a dry run).
    pub credited: Kopecks,
    pub rejected: Vec<Rejection>,
}

/// Text from the file's bytes: UTF-8 (its BOM dropped) when the bytes are valid UTF-8, else
/// Windows-1251 (every byte is a character there, so nothing fails to read).
pub fn decode(bytes: &[u8]) -> (String, Encoding) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return (String::from_utf8_lossy(rest).into_owned(), Encoding::Utf8Bom);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), Encoding::Utf8),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1251.decode(bytes);
            (text.into_owned(), Encoding::Windows1251)
        }
    }
}

/// `;` or `,`: whichever the first line has more of outside quotes (`;` on a tie, as Russian
/// Excel writes it).
pub fn detect_separator(text: &str) -> char {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let (mut semicolons, mut commas, mut quoted) = (0, 0, false);
    for c in first.chars() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => semicolons += 1,
            ',' if !quoted => commas += 1,
            _ => {}
        }
    }
    if commas > semicolons { ',' } else { ';' }
}

/// Splits CSV text into records (RFC 4180 quotes, `\n` or `\r\n`), each with the line it starts
/// on; blank lines are skipped. The error is the line of a quote never closed.
pub fn records(text: &str, separator: char) -> (Vec<RawRow>, Option<usize>) {
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut any = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                any = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                if any || fields.len() > 1 || !fields[0].trim().is_empty() {
                    out.push(RawRow {
                        line: start,
                        fields: std::mem::take(&mut fields),
                    });
                }
                fields.clear();
                line += 1;
                start = line;
                any = false;
            }
            c if c == separator => {
                fields.push(std::mem::take(&mut field));
                any = true;
            }
            _ => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return (out, Some(start));
    }
    fields.push(field);
    if any || fields.len() > 1 || !fields[0].trim().is_empty() {
        out.push(RawRow { line: start, fields });
    }
    (out, None)
}

/// Roubles with at most two decimals (`.` or `,`), as kopecks, exactly; empty is zero.
pub fn parse_balance(text: &str) -> Result<Kopecks, Reason> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Kopecks::ZERO);
    }
    if text.starts_with('-') {
        return Err(Reason::NegativeBalance);
    }
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (!fraction.is_empty() && !digits(fraction)) || fraction.len() > 2 {
        return Err(Reason::BadBalance);
    }
    // More digits than any allowed balance has: refused before the arithmetic could overflow.
    if whole.trim_start_matches('0').len() > 12 {
        return Err(Reason::TooLargeBalance);
    }
    let roubles: i64 = whole.parse().map_err(|_| Reason::BadBalance)?;
    let kopecks: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().map_err(|_| Reason::BadBalance)? * 10,
        _ => fraction.parse().map_err(|_| Reason::BadBalance)?,
    };
    let amount = Kopecks(roubles * 100 + kopecks);
    if amount > MAX_BALANCE {
        return Err(Reason::TooLargeBalance);
    }
    Ok(amount)
}

/// A balance as the export writes it: `1234,56` (what [`parse_balance`] reads back).
pub fn balance_text(amount: Kopecks) -> String {
    format!("{}.{:02}", amount.0 / 100, amount.0 % 100).replace('.', ",")
}

fn is_header(fields: &[String]) -> bool {
    let names: Vec<String> = fields.iter().map(|f| f.trim().to_lowercase()).collect();
    [HEADER_EN, HEADER_RU].iter().any(|header| {
        (REQUIRED_COLUMNS..=COLUMNS).contains(&names.len()) && names.iter().zip(header).all(|(a, b)| a == b)
    })
}

/// One row checked on its own.
fn read_row(row: &RawRow) -> Result<ImportRow, Reason> {
    if !(REQUIRED_COLUMNS..=COLUMNS).contains(&row.fields.len()) {
        return Err(Reason::ColumnCount {
            found: row.fields.len(),
        });
    }
    let f = |i: usize| row.fields[i].trim();
    // The export's guard against formulas (see [`csv_field`]) read back as the name it was.
    let name = f(0);
    let name = match name.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => name,
    };
    let name = guest_name(name).map_err(|_| Reason::BadName)?;
    let phone = match f(1) {
        "" => None,
        phone => Some(normalize_phone(phone).ok_or(Reason::BadPhone)?),
    };
    let codes: Vec<&str> = match f(2) {
        "" => Vec::new(),
        codes => codes.split(CARD_SEPARATOR).map(str::trim).collect(),
    };
    let kinds: Vec<&str> = match f(3) {
        "" => Vec::new(),
        kinds => kinds.split(CARD_SEPARATOR).map(str::trim).collect(),
    };
    if !kinds.is_empty() && kinds.len() != codes.len() {
        return Err(Reason::BadCardKind);
    }
    let mut cards = Vec::with_capacity(codes.len());
    for (i, code) in codes.iter().enumerate() {
        let kind = match kinds.get(i) {
            None => IdentifierKind::CardBarcode,
            Some(kind) => match IdentifierKind::parse(kind) {
                Some(IdentifierKind::Phone) | None => return Err(Reason::BadCardKind),
                Some(kind) => kind,
            },
        };
        let code = super::rules::identifier_value(kind, code).map_err(|_| Reason::BadCard)?;
        cards.push((kind, code));
    }
    if phone.is_none() && cards.is_empty() {
        return Err(Reason::NoIdentifier);
    }
    let balance = parse_balance(f(5))?;
    let blocked = match row.fields.get(6) {
        None => false,
        Some(text) => parse_blocked(text).ok_or(Reason::BadBlocked)?,
    };
    Ok(ImportRow {
        line: row.line,
        name,
        phone,
        cards,
        group: f(4).to_string(),
        balance,
        blocked,
    })
}

/// The blocked column: empty or a no is false, a yes true (Russian or English, any case).
pub fn parse_blocked(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "" | "нет" | "no" | "0" | "false" => Some(false),
        "да" | "yes" | "1" | "true" => Some(true),
        _ => None,
    }
}

/// Reads a file: decoded, split, each row checked on its own (see [`check_rows`] for the rest).
pub fn read_file(bytes: &[u8]) -> ReadFile {
    let (text, encoding) = decode(bytes);
    let separator = detect_separator(&text);
    let (mut raw, unclosed) = records(&text, separator);
    let header = raw.first().is_some_and(|r| is_header(&r.fields));
    if header {
        raw.remove(0);
    }
    let mut rows = Vec::with_capacity(raw.len());
    let mut rejected = Vec::new();
    for row in &raw {
        match read_row(row) {
            Ok(row) => rows.push(row),
            Err(reason) => rejected.push(Rejection { line: row.line, reason }),
        }
    }
    if let Some(line) = unclosed {
        rejected.push(Rejection {
            line,
            reason: Reason::UnclosedQuote,
        });
    }
    ReadFile {
        encoding,
        separator,
        header,
        total: raw.len() + usize::from(unclosed.is_some()),
        first_rows: raw.into_iter().take(PREVIEW_ROWS).collect(),
        rows,
        rejected,
    }
}

/// Every identifier value of the rows (phones and cards), as the organisation's are looked up.
pub fn identifier_values(rows: &[ImportRow]) -> Vec<String> {
    rows.iter()
        .flat_map(|r| r.phone.iter().cloned().chain(r.cards.iter().map(|(_, v)| v.clone())))
        .collect()
}

/// The rules rows must pass together: each row valid on its own (again: the engine may be
/// handed rows from anywhere), a known group, no phone or card twice in the file, none that a
/// guest of the organisation (`taken`) has. `groups` maps a group's name to its id. Answers each
/// row's group id, or every rejection.
pub fn check_rows(
    rows: &[ImportRow],
    groups: &HashMap<String, i64>,
    taken: &HashSet<String>,
) -> Result<Vec<i64>, Vec<Rejection>> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(rows.len() * 2);
    let mut group_ids = Vec::with_capacity(rows.len());
    let mut rejected = Vec::new();
    for row in rows {
        let reason = (|| {
            if !guest_name(&row.name).is_ok_and(|n| n == row.name) {
                return Some(Reason::BadName);
            }
            if row
                .phone
                .as_deref()
                .is_some_and(|p| normalize_phone(p).as_deref() != Some(p))
            {
                return Some(Reason::BadPhone);
            }
            if row.cards.iter().any(|(kind, value)| {
                *kind == IdentifierKind::Phone
                    || super::rules::identifier_value(*kind, value).as_deref() != Ok(value.as_str())
            }) {
                return Some(Reason::BadCard);
            }
            if row.phone.is_none() && row.cards.is_empty() {
                return Some(Reason::NoIdentifier);
            }
            if row.balance < Kopecks::ZERO {
                return Some(Reason::NegativeBalance);
            }
            if row.balance > MAX_BALANCE {
                return Some(Reason::TooLargeBalance);
            }
            let values: Vec<&str> = row
                .phone
                .iter()
                .map(String::as_str)
                .chain(row.cards.iter().map(|(_, v)| v.as_str()))
                .collect();
            // Within the row too: a card that is the row's own phone is one identifier twice.
            for (i, value) in values.iter().enumerate() {
                if values[..i].contains(value) {
                    return Some(Reason::DuplicateInFile { first_line: row.line });
                }
                if let Some(first) = seen.get(value) {
                    return Some(Reason::DuplicateInFile { first_line: *first });
                }
            }
            if values.iter().any(|v| taken.contains(*v)) {
                return Some(Reason::TakenInOrg);
            }
            for value in values {
                seen.insert(value, row.line);
            }
            None
        })();
        let group = groups.get(row.group.trim()).copied();
        match (reason, group) {
            (Some(reason), _) => rejected.push(Rejection { line: row.line, reason }),
            (None, None) => rejected.push(Rejection {
                line: row.line,
                reason: Reason::UnknownGroup,
            }),
            (None, Some(id)) => group_ids.push(id),
        }
    }
    if rejected.is_empty() {
        Ok(group_ids)
    } else {
        Err(rejected)
    }
}

/// One field of the export, quoted when it must be (and a leading `=`, `+`, `-`, `@` made plain
/// text, so a spreadsheet never runs a guest's name as a formula).
pub fn csv_field(value: &str, separator: char) -> String {
    let mut chars = value.chars();
    let formula = match chars.next() {
        Some('=' | '-' | '@') => true,
        // A phone starts with `+` and a digit; anything else after `+` a spreadsheet would compute.
        Some('+') => !chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    };
    let value = if formula {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([separator, '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn balances_are_exact_kopecks() {
        assert_eq!(parse_balance(""), Ok(Kopecks(0)));
        assert_eq!(parse_balance("12"), Ok(Kopecks(1200)));
        assert_eq!(parse_balance("12,5"), Ok(Kopecks(1250)));
        assert_eq!(parse_balance("12.05"), Ok(Kopecks(1205)));
        assert_eq!(parse_balance("0.1"), Ok(Kopecks(10)));
        // 0.1 + 0.2 in floating point is not 0.3; here 0,29 is 29 kopecks exactly.
        assert_eq!(parse_balance("0,29"), Ok(Kopecks(29)));
        assert_eq!(parse_balance("-5"), Err(Reason::NegativeBalance));
        assert_eq!(parse_balance("1.234"), Err(Reason::BadBalance));
        assert_eq!(parse_balance("1 000"), Err(Reason::BadBalance));
        assert_eq!(parse_balance("abc"), Err(Reason::BadBalance));
        assert_eq!(parse_balance("1e3"), Err(Reason::BadBalance));
        assert_eq!(parse_balance(".5"), Err(Reason::BadBalance));
        assert_eq!(parse_balance("100000000"), Ok(MAX_BALANCE));
        assert_eq!(parse_balance("100000000,01"), Err(Reason::TooLargeBalance));
        assert_eq!(parse_balance("99999999999999999999"), Err(Reason::TooLargeBalance));
        for k in [0, 1, 9, 10, 99, 100, 123_456, MAX_BALANCE.0] {
            assert_eq!(parse_balance(&balance_text(Kopecks(k))), Ok(Kopecks(k)), "{k}");
        }
    }

    #[test]
    fn encodings_and_separators_are_detected() {
        let text = "name;phone;card;card_kind;group;balance\nВера;+79161234567;;;Гость;10\n";
        let utf8 = read_file(text.as_bytes());
        assert_eq!(
            (utf8.encoding, utf8.separator, utf8.header),
            (Encoding::Utf8, ';', true)
        );
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(read_file(&bom).encoding, Encoding::Utf8Bom);
        assert_eq!(read_file(&bom).rows, utf8.rows);
        let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(text);
        let read = read_file(&cp1251);
        assert_eq!(read.encoding, Encoding::Windows1251);
        assert_eq!(read.rows, utf8.rows);
        assert_eq!(read.rows[0].name, "Вера");
        let commas = read_file("Вера,+79161234567,,,Гость,\"10,50\"\r\n".as_bytes());
        assert_eq!((commas.separator, commas.header), (',', false));
        assert_eq!(commas.rows[0].balance, Kopecks(1050));
        assert_eq!(commas.rows[0].line, 1);
    }

    #[test]
    fn quoted_fields_keep_separators_quotes_and_newlines() {
        let (rows, unclosed) = records("\"a;b\";\"say \"\"hi\"\"\"\n\"two\nlines\";x\n\nlast;y", ';');
        assert_eq!(unclosed, None);
        assert_eq!(rows[0].fields, vec!["a;b", "say \"hi\""]);
        assert_eq!((rows[1].line, rows[1].fields[0].as_str()), (2, "two\nlines"));
        assert_eq!(rows[2].line, 5, "the line the row starts on, blank lines counted");
        let (_, unclosed) = records("a;b\n\"never closed;x\ny;z", ';');
        assert_eq!(unclosed, Some(2));
    }

    #[test]
    fn each_row_is_checked_on_its_own() {
        let file = "Вера;+79161234567;;;Гость;10\n\
                    Bad;12345;;;Гость;0\n\
                    Short;+79161234568;;Гость;0\n\
                    Neg;+79161234569;;;Гость;-1\n\
                    Frac;+79161234570;;;Гость;1.005\n\
                    None;;;;Гость;0\n\
                    Kind;;C1;phone;Гость;0\n\
                    Two;;C2|C3;manual_code|app_qr;Гость;0\n\
                    Blocked;+79161234571;;;Гость;0;Да\n\
                    Unsure;+79161234572;;;Гость;0;может\n\
                    Long;+79161234573;;;Гость;0;;\n";
        let read = read_file(file.as_bytes());
        let reasons: Vec<(usize, Reason)> = read.rejected.iter().map(|r| (r.line, r.reason.clone())).collect();
        assert_eq!(
            reasons,
            vec![
                (2, Reason::BadPhone),
                (3, Reason::ColumnCount { found: 5 }),
                (4, Reason::NegativeBalance),
                (5, Reason::BadBalance),
                (6, Reason::NoIdentifier),
                (7, Reason::BadCardKind),
                (10, Reason::BadBlocked),
                (11, Reason::ColumnCount { found: 8 }),
            ]
        );
        assert_eq!(read.total, 11);
        assert_eq!(read.rows.len(), 3);
        assert!(!read.rows[0].blocked && read.rows[2].blocked, "a seventh «да» blocks");
        assert_eq!(
            read.rows[1].cards,
            vec![
                (IdentifierKind::ManualCode, "C2".to_string()),
                (IdentifierKind::AppQr, "C3".to_string())
            ]
        );
    }

    #[test]
    fn rows_are_checked_together_and_against_the_organisation() {
        let read = read_file(
            "A;+79161234567;C1;;Гость;1\nB;8 916 123-45-67;;;Гость;1\nC;;C1;;Гость;1\nD;;TAKEN;;Гость;1\nE;;C9;;Нет;1\n"
                .as_bytes(),
        );
        let groups = HashMap::from([("Гость".to_string(), 7)]);
        let taken = HashSet::from(["TAKEN".to_string()]);
        let rejected = check_rows(&read.rows, &groups, &taken).unwrap_err();
        let reasons: Vec<(usize, Reason)> = rejected.into_iter().map(|r| (r.line, r.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                (2, Reason::DuplicateInFile { first_line: 1 }),
                (3, Reason::DuplicateInFile { first_line: 1 }),
                (4, Reason::TakenInOrg),
                (5, Reason::UnknownGroup),
            ]
        );
        assert_eq!(check_rows(&read.rows[..1], &groups, &taken), Ok(vec![7]));
    }

    #[test]
    fn export_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("Анна", ';'), "Анна");
        assert_eq!(csv_field("a;b", ';'), "\"a;b\"");
        assert_eq!(csv_field("say \"hi\"", ';'), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")", ';'), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+79161234567", ';'), "+79161234567");
    }
}
