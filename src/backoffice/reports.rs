//! «Отчёты»: per local day and per till, the checks with a guest, bonuses accrued and spent,
//! gifts redeemed, new guests and returns, over dates the user picks; a chart of accrued against
//! spent drawn on the server as SVG; the same table as a CSV file.
//!
//! The figures are [`crate::loyalty::report`]'s, the same the till's shift report adds up; this
//! module only reads the facts through the store and draws them. Owners and managers both see
//! reports: they hold totals, no guest's name, phone or card.

use super::db;
use super::pages::{Ctx, Page, Refusal, St, bad_input, ctx, field, money, page, refused};
use super::{BackOffice, Tr};
use crate::loyalty::engine::Op;
use crate::loyalty::report::{self, Day, Facts, Figures, Source};
use crate::money::Kopecks;
use axum::extract::Query;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use chrono::NaiveDate;
use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

/// The period asked for: local days, both ends included, and the zone they are in.
struct Period {
    from: Day,
    to: Day,
    utc_offset_minutes: i64,
}

impl Period {
    fn since(&self) -> i64 {
        report::day_start(self.from, self.utc_offset_minutes)
    }

    fn until(&self) -> i64 {
        report::day_start(self.to + 1, self.utc_offset_minutes)
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// A local day as `YYYY-MM-DD`.
fn date(day: Day) -> String {
    epoch()
        .checked_add_signed(chrono::Duration::days(day))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn parse_day(text: &str) -> Option<Day> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .map(|d| d.signed_duration_since(epoch()).num_days())
}

/// `UTC+03:00`.
fn zone(utc_offset_minutes: i64) -> String {
    let sign = if utc_offset_minutes < 0 { '-' } else { '+' };
    let abs = utc_offset_minutes.abs();
    format!("UTC{sign}{:02}:{:02}", abs / 60, abs % 60)
}

/// The period of the query (`from`, `to`), in the organisation's programme's zone; the last seven
/// days by default. A bad date or an inverted or too long period is refused with the reason.
async fn period(bo: &BackOffice, ctx: &Ctx, query: &HashMap<String, String>) -> Result<Period, Refusal> {
    let program = bo
        .store
        .run(&ctx.caller(), Op::Program, (bo.clock)())
        .await
        .and_then(|answer| answer.into_program())
        .map_err(|e| refused(ctx, &e))?;
    let offset = program.utc_offset_minutes;
    let today = report::day_of((bo.clock)(), offset);
    let day = |key: &str, default: Day| match field(query, key) {
        "" => Ok(default),
        text => parse_day(text).ok_or_else(|| bad_input(ctx, "bo-rep-err-date")),
    };
    let to = day("to", today)?;
    let from = day("from", to - 6)?;
    if from > to {
        return Err(bad_input(ctx, "bo-rep-err-order"));
    }
    if to - from + 1 > report::MAX_DAYS {
        return Err(bad_input(ctx, "bo-rep-err-too-long"));
    }
    Ok(Period {
        from,
        to,
        utc_offset_minutes: offset,
    })
}

/// What the report's statements book for the organisation and period, per local day
/// `utc_offset_minutes` east of UTC, through the store (either database).
pub async fn read_facts(
    store: &crate::server::store::Store,
    org: &str,
    since: i64,
    until: i64,
    utc_offset_minutes: i64,
) -> Result<Facts, crate::domain::LoyaltyError> {
    let params = report::params(Some(org), since, until, utc_offset_minutes);
    let mut facts = Facts::new();
    for (statement, sql) in report::STATEMENTS {
        facts.extend(report::booked(statement, &db::query(store, sql, params.clone()).await?));
    }
    Ok(facts)
}

fn source_label(tr: Tr, source: &Source) -> String {
    match source {
        Source::Till(name) => name.clone(),
        Source::ThisTill => tr.t("bo-rep-this-till"),
        Source::BackOffice => tr.t("bo-rep-back-office"),
        Source::Unknown => tr.t("bo-rep-unknown"),
    }
}

/// A column of the table and the CSV: its caption's key, its figure, and whether that is money.
type Column = (&'static str, fn(&Figures) -> i64, bool);

const COLUMNS: [Column; 10] = [
    ("bo-rep-checks", |f| f.checks, false),
    ("bo-rep-revenue", |f| f.revenue.0, true),
    ("bo-rep-accrued", |f| f.accrued.0, true),
    ("bo-rep-spent", |f| f.spent.0, true),
    ("bo-rep-gifts", |f| f.gifts_redeemed, false),
    ("bo-rep-new-guests", |f| f.new_guests, false),
    ("bo-rep-returns", |f| f.returns, false),
    ("bo-rep-returned", |f| f.returned.0, true),
    ("bo-rep-accrual-taken", |f| f.accrual_taken.0, true),
    ("bo-rep-spend-returned", |f| f.spend_returned.0, true),
];

fn query_string(period: &Period) -> String {
    format!("from={}&to={}", date(period.from), date(period.to))
}

/// The period the query asks for and its figures per local day and till, for the page and the
/// CSV alike.
async fn report_rows(
    bo: &BackOffice,
    ctx: &Ctx,
    query: &HashMap<String, String>,
) -> Result<(Period, BTreeMap<(Day, Source), Figures>), Refusal> {
    let period = period(bo, ctx, query).await?;
    let facts = read_facts(
        &bo.store,
        &ctx.session.org,
        period.since(),
        period.until(),
        period.utc_offset_minutes,
    )
    .await
    .map_err(|e| refused(ctx, &e))?;
    Ok((period, report::per_day_and_source(&facts)))
}

/// «Отчёты»: the period form, the chart, the table per day and till, the CSV link.
pub async fn report_page(
    axum::extract::State(bo): St,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Page {
    let ctx = ctx(&bo, &headers, false)?;
    let tr = ctx.tr;
    let (period, rows) = report_rows(&bo, &ctx, &query).await?;
    let days = report::per_day(&rows);
    let mut sum = Figures::default();
    for figures in rows.values() {
        sum.add(figures);
    }
    let body = html! {
        form.box method="get" action="/admin/reports" {
            label { (tr.t("bo-rep-from")) " " input type="date" name="from" value=(date(period.from)) required; }
            label { (tr.t("bo-rep-to")) " " input type="date" name="to" value=(date(period.to)) required; }
            button type="submit" { (tr.t("bo-rep-show")) }
            " " a #csv href={ "/admin/reports.csv?" (query_string(&period)) } { (tr.t("bo-rep-csv")) }
        }
        p #zone { (tr.t_args("bo-rep-zone", &[("zone", crate::i18n::Arg::Text(zone(period.utc_offset_minutes)))])) }
        section.box {
            h2 { (tr.t("bo-rep-chart")) }
            (chart(tr, &period, &days))
        }
        @if rows.is_empty() {
            p.muted #empty { (tr.t("bo-rep-none")) }
        } @else {
            section.box { table #report {
                tr {
                    th { (tr.t("bo-rep-day")) } th { (tr.t("bo-till")) }
                    @for (key, _, _) in COLUMNS { th.num { (tr.t(key)) } }
                }
                @for ((day, source), figures) in &rows {
                    tr {
                        td { (date(*day)) } td { (source_label(tr, source)) }
                        @for (_, value, is_money) in COLUMNS { td.num { (cell(value(figures), is_money)) } }
                    }
                }
                tr #total {
                    th { (tr.t("bo-rep-total")) } th {}
                    @for (_, value, is_money) in COLUMNS { th.num { (cell(value(&sum), is_money)) } }
                }
            } }
        }
        p.muted { (tr.t("bo-rep-definitions")) }
        p.muted #expiry { (tr.t("bo-rep-expiry-not-built")) }
    };
    page(&ctx, &tr.t("bo-nav-reports"), body)
}

fn cell(value: i64, is_money: bool) -> String {
    if is_money { money(value) } else { value.to_string() }
}

/// Accrued against spent per day: two bars a day, the scale on the left, drawn here so the page
/// needs no script. Days without a figure are drawn empty, so the axis is the period itself.
fn chart(tr: Tr, period: &Period, days: &BTreeMap<Day, Figures>) -> Markup {
    const WIDTH: i64 = 900;
    const HEIGHT: i64 = 260;
    const LEFT: i64 = 80;
    const BOTTOM: i64 = 40;
    const TOP: i64 = 30;
    let count = period.to - period.from + 1;
    let plot_w = WIDTH - LEFT - 10;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = days
        .values()
        .flat_map(|f| [f.accrued.0, f.spent.0])
        .max()
        .unwrap_or(0)
        .max(100);
    // A round top for the scale: 1, 2 or 5 times a power of ten, in kopecks.
    let mut top = 100;
    while top < max {
        top = match top.to_string().as_bytes().first() {
            Some(b'1') => top * 2,
            Some(b'2') => top / 2 * 5,
            _ => top * 2,
        };
    }
    let y = |value: i64| TOP + plot_h - value * plot_h / top;
    let slot = plot_w as f64 / count as f64;
    let bar = (slot * 0.38).max(1.0);
    // Label every n-th day so that the dates never overlap.
    let every = (count as f64 * 80.0 / plot_w as f64).ceil().max(1.0) as i64;
    let accrued_label = tr.t("bo-rep-accrued");
    let spent_label = tr.t("bo-rep-spent");
    html! {
        svg #chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width="100%"
            role="img" aria-label=(tr.t("bo-rep-chart")) style="max-width:900px;background:#fff" {
            @for step in 0..=4 {
                @let value = top * step / 4;
                line x1=(LEFT) x2=(WIDTH - 10) y1=(y(value)) y2=(y(value)) stroke="#e3e3e3" {}
                text x=(LEFT - 6) y=(y(value) + 4) text-anchor="end" font-size="11" fill="#555" { (money(value)) }
            }
            line x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(TOP + plot_h) stroke="#999" {}
            @for i in 0..count {
                @let day = period.from + i;
                @let figures = days.get(&day).copied().unwrap_or_default();
                @let x = LEFT as f64 + slot * i as f64 + slot * 0.1;
                rect.accrued x=(format!("{x:.1}")) y=(y(figures.accrued.0)) width=(format!("{bar:.1}"))
                    height=(TOP + plot_h - y(figures.accrued.0)) fill="#2e7d4f" {
                    title { (date(day)) " — " (accrued_label) ": " (money(figures.accrued.0)) }
                }
                rect.spent x=(format!("{:.1}", x + bar)) y=(y(figures.spent.0)) width=(format!("{bar:.1}"))
                    height=(TOP + plot_h - y(figures.spent.0)) fill="#d08a1e" {
                    title { (date(day)) " — " (spent_label) ": " (money(figures.spent.0)) }
                }
                @if i % every == 0 {
                    text x=(format!("{:.1}", x + bar)) y=(HEIGHT - BOTTOM + 16) text-anchor="middle" font-size="11" fill="#555" {
                        (date(day).get(5..).unwrap_or_default())
                    }
                }
            }
            rect x=(LEFT + 10) y="8" width="12" height="12" fill="#2e7d4f" {}
            text x=(LEFT + 28) y="18" font-size="12" { (accrued_label) }
            rect x=(LEFT + 180) y="8" width="12" height="12" fill="#d08a1e" {}
            text x=(LEFT + 198) y="18" font-size="12" { (spent_label) }
        }
    }
}

/// The same table as a CSV file for Excel (UTF-8 with a BOM, `;`, decimal commas, as the till's
/// shift report): no guest's name, phone or card is in it.
pub async fn report_csv(
    axum::extract::State(bo): St,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Page {
    let ctx = ctx(&bo, &headers, false)?;
    let tr = ctx.tr;
    let (period, rows) = report_rows(&bo, &ctx, &query).await?;
    let mut sum = Figures::default();
    let mut out = String::from("\u{feff}");
    let line = |out: &mut String, cells: Vec<String>| {
        let cells: Vec<String> = cells.iter().map(|c| crate::shift::csv_field(c)).collect();
        out.push_str(&cells.join(";"));
        out.push_str("\r\n");
    };
    let mut head = vec![tr.t("bo-rep-day"), tr.t("bo-till")];
    head.extend(COLUMNS.iter().map(|(key, _, _)| tr.t(key)));
    line(&mut out, head);
    let csv_cell = |value: i64, is_money: bool| {
        if is_money {
            crate::shift::csv_money(Kopecks(value))
        } else {
            value.to_string()
        }
    };
    for ((day, source), figures) in &rows {
        sum.add(figures);
        let mut cells = vec![date(*day), source_label(tr, source)];
        cells.extend(
            COLUMNS
                .iter()
                .map(|(_, value, is_money)| csv_cell(value(figures), *is_money)),
        );
        line(&mut out, cells);
    }
    let mut cells = vec![tr.t("bo-rep-total"), String::new()];
    cells.extend(
        COLUMNS
            .iter()
            .map(|(_, value, is_money)| csv_cell(value(&sum), *is_money)),
    );
    line(&mut out, cells);
    line(
        &mut out,
        vec![tr.t_args(
            "bo-rep-zone",
            &[("zone", crate::i18n::Arg::Text(zone(period.utc_offset_minutes)))],
        )],
    );
    tracing::info!(
        user = ctx.session.user_id,
        days = period.to - period.from + 1,
        "back office: report downloaded"
    );
    let name = format!("report-{}-{}.csv", date(period.from), date(period.to));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_zones_read_as_offsets() {
        let day = parse_day("2025-03-10").unwrap_or_default();
        assert_eq!(date(day), "2025-03-10");
        assert_eq!(report::day_start(day, 0), 1_741_564_800);
        assert_eq!(parse_day("2025-02-30"), None);
        assert_eq!(parse_day("10.03.2025"), None);
        assert_eq!(zone(180), "UTC+03:00");
        assert_eq!(zone(-330), "UTC-05:30");
        assert_eq!(zone(0), "UTC+00:00");
    }
}
