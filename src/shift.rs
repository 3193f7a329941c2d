//! The shift report as a file for Excel: UTF-8 with a BOM (so Excel reads Cyrillic), `;` between
//! fields (Excel's separator where the decimal mark is a comma). Only totals: no phone, card or
//! guest name can end up in it. The back office's report (`backoffice::reports`) writes its
//! file with the same two helpers.

use crate::domain::ShiftReport;
use crate::money::Kopecks;

/// The CSV text. `label` gives each row's caption in the till's language: the keys are the
/// locale keys `shift-report-*`.
pub fn report_csv(report: &ShiftReport, since: &str, until: &str, label: impl Fn(&str) -> String) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("shift-report-since", since.to_string()),
        ("shift-report-until", until.to_string()),
        ("shift-report-checks", report.checks.to_string()),
        ("shift-report-revenue", csv_money(report.revenue)),
        ("shift-report-spent", csv_money(report.spent)),
        ("shift-report-accrued", csv_money(report.accrued)),
        ("shift-report-gifts", report.gifts_redeemed.to_string()),
        ("shift-report-returns", report.returns.to_string()),
        ("shift-report-returned", csv_money(report.returned)),
        ("shift-report-new-guests", report.new_guests.to_string()),
        ("shift-report-basis", label("shift-report-basis-local-day")),
    ];
    // A till on a loyalty server: the figures are this till's among the chain's, so the file
    // names the till they belong to.
    if let Some(till) = &report.till {
        rows.insert(2, ("shift-report-till", till.clone()));
    }
    let mut out = String::from("\u{feff}");
    out.push_str(&csv_field(&label("shift-report-csv-what")));
    out.push(';');
    out.push_str(&csv_field(&label("shift-report-csv-value")));
    out.push_str("\r\n");
    for (key, value) in rows {
        out.push_str(&csv_field(&label(key)));
        out.push(';');
        out.push_str(&csv_field(&value));
        out.push_str("\r\n");
    }
    out
}

/// Roubles with a decimal comma and no grouping, which Excel in a Russian locale reads as a number.
pub fn csv_money(amount: Kopecks) -> String {
    let sign = if amount.0 < 0 { "-" } else { "" };
    let abs = amount.0.unsigned_abs();
    format!("{sign}{},{:02}", abs / 100, abs % 100)
}

/// Quotes a field that holds the separator, a quote or a line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The file's name: the shift's date, so that one shift's saves replace each other.
pub fn file_name(day: &str) -> String {
    format!("shift-report-{day}.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_bom_semicolons_and_comma_decimals() {
        let report = ShiftReport {
            since: 0,
            until: 0,
            utc_offset_minutes: 0,
            till: None,
            checks: 3,
            revenue: Kopecks(123_456),
            spent: Kopecks(10_000),
            accrued: Kopecks(-5),
            gifts_redeemed: 1,
            returns: 2,
            returned: Kopecks(50_005),
            new_guests: 4,
        };
        let csv = report_csv(&report, "06.12.2026 00:00", "06.12.2026 18:00", |k| {
            if k == "shift-report-checks" {
                "Чеки; с гостем".to_string()
            } else {
                k.to_string()
            }
        });
        assert!(csv.starts_with('\u{feff}'));
        let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(lines[0], "shift-report-csv-what;shift-report-csv-value");
        assert_eq!(lines[3], "\"Чеки; с гостем\";3");
        assert_eq!(lines[4], "shift-report-revenue;1234,56");
        assert_eq!(lines[6], "shift-report-accrued;-0,05");
        assert_eq!(lines[9], "shift-report-returned;500,05");
        assert_eq!(lines.len(), 13, "12 rows and the trailing empty split");

        let on_server = ShiftReport {
            till: Some("kassa-2".to_string()),
            ..report
        };
        let csv = report_csv(&on_server, "a", "b", |k| k.to_string());
        let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(lines[3], "shift-report-till;kassa-2");
        assert_eq!(lines[4], "shift-report-checks;3");
        assert_eq!(lines.len(), 14);
    }
}
