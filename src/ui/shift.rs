//! «Закрыть смену»: what is left in doubt at this till, each with its own button, and the shift
//! report with «Сохранить CSV». It reads the workflow state and pushes events; the ledger and
//! the file are reached on the worker.

use super::screens::ScreenContext;
use super::theme::{self, Tone, card, value_row, wide_button};
use crate::domain::{LooseEnd, LooseEndKind, ShiftReport};
use crate::i18n::{Arg, I18n};
use crate::money::Kopecks;
use crate::workflow::{Event, ShiftStep, State};
use egui::{RichText, Ui};

pub fn show(ui: &mut Ui, state: &State, step: &ShiftStep, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    let enabled = !state.is_busy();
    match step {
        ShiftStep::List { ends } => {
            title(ui, &i18n.t("shift-title"));
            match ends {
                None => waiting(ui, &i18n.t("shift-loading")),
                Some(ends) if ends.is_empty() => {
                    card(ui, |ui| {
                        ui.label(RichText::new(i18n.t("shift-nothing-left")).strong());
                    });
                }
                Some(ends) => {
                    ui.label(RichText::new(i18n.t("shift-list-hint")).color(theme::TEXT_MUTED));
                    for (index, end) in ends.iter().enumerate() {
                        loose_end(ui, index, end, enabled, i18n, events);
                    }
                }
            }
            ui.add_space(8.0);
            if wide_button(ui, &i18n.t("shift-report-open"), Tone::Primary, enabled).clicked() {
                events.push(Event::ShowShiftReport);
            }
            if wide_button(ui, &i18n.t("back"), Tone::Normal, true).clicked() {
                events.push(Event::Back);
            }
        }
        ShiftStep::Report { report, saved } => {
            title(ui, &i18n.t("shift-report-title"));
            match report {
                None => waiting(ui, &i18n.t("shift-report-loading")),
                Some(report) => {
                    figures(ui, report, i18n);
                    if let Some(path) = saved {
                        ui.label(
                            RichText::new(i18n.t_args(
                                "shift-report-saved-at",
                                &[("path", Arg::Text(path.display().to_string()))],
                            ))
                            .color(theme::TEXT_MUTED),
                        );
                    }
                    if wide_button(ui, &i18n.t("shift-report-save"), Tone::Primary, enabled).clicked() {
                        let (since, until) = (
                            date_time(report.since, report.utc_offset_minutes),
                            date_time(report.until, report.utc_offset_minutes),
                        );
                        events.push(Event::SaveShiftReport {
                            dir: cx.export_folder.clone(),
                            file_name: crate::shift::file_name(&file_day(report.since, report.utc_offset_minutes)),
                            contents: crate::shift::report_csv(report, &since, &until, |key| i18n.t(key)),
                        });
                    }
                }
            }
            if wide_button(ui, &i18n.t("back"), Tone::Normal, true).clicked() {
                events.push(Event::Back);
            }
        }
    }
}

fn title(ui: &mut Ui, text: &str) {
    ui.label(
        RichText::new(text)
            .text_style(egui::TextStyle::Heading)
            .color(theme::TEXT_STRONG)
            .strong(),
    );
}

fn waiting(ui: &mut Ui, text: &str) {
    ui.horizontal(|ui| {
        ui.add(egui::Spinner::new().size(24.0));
        ui.label(text);
    });
}

/// One entry: what it is, its amount, whether it needs the server, and its button.
fn loose_end(ui: &mut Ui, index: usize, end: &LooseEnd, enabled: bool, i18n: &I18n, events: &mut Vec<Event>) {
    let (what, action) = match end.kind {
        LooseEndKind::OpenHold => ("shift-open-hold", "shift-release"),
        LooseEndKind::QueuedPayment => ("shift-queued-payment", "shift-send-now"),
        // A return by lines or of the rest has no amount until the server works it out.
        LooseEndKind::UnsentReturn if end.units > 0 => ("shift-unsent-return-lines", "shift-send-now"),
        LooseEndKind::UnsentReturn if end.amount == Kopecks::ZERO => ("shift-unsent-return-rest", "shift-send-now"),
        LooseEndKind::UnsentReturn => ("shift-unsent-return", "shift-send-now"),
        LooseEndKind::InDoubt => ("shift-in-doubt", "shift-send-now"),
    };
    card(ui, |ui| {
        let args = [("amount", Arg::Money(end.amount)), ("units", Arg::Number(end.units))];
        ui.label(RichText::new(i18n.t_args(what, &args)).strong());
        let place = if end.needs_server {
            "shift-needs-server"
        } else {
            "shift-local"
        };
        ui.label(RichText::new(i18n.t(place)).color(theme::TEXT_MUTED));
        if wide_button(ui, &i18n.t(action), Tone::Normal, enabled).clicked() {
            events.push(Event::SettleLooseEnd(index));
        }
    });
}

fn figures(ui: &mut Ui, report: &ShiftReport, i18n: &I18n) {
    card(ui, |ui| {
        ui.label(
            RichText::new(i18n.t_args(
                "shift-report-period",
                &[
                    ("since", Arg::Text(date_time(report.since, report.utc_offset_minutes))),
                    ("until", Arg::Text(date_time(report.until, report.utc_offset_minutes))),
                ],
            ))
            .color(theme::TEXT_MUTED),
        );
        if let Some(till) = &report.till {
            value_row(ui, &i18n.t("shift-report-till"), till);
        }
        value_row(ui, &i18n.t("shift-report-checks"), &report.checks.to_string());
        value_row(ui, &i18n.t("shift-report-revenue"), &report.revenue.to_string());
        value_row(ui, &i18n.t("shift-report-spent"), &report.spent.to_string());
        value_row(ui, &i18n.t("shift-report-accrued"), &report.accrued.to_string());
        value_row(ui, &i18n.t("shift-report-gifts"), &report.gifts_redeemed.to_string());
        value_row(ui, &i18n.t("shift-report-returns"), &report.returns.to_string());
        value_row(ui, &i18n.t("shift-report-returned"), &report.returned.to_string());
        value_row(ui, &i18n.t("shift-report-new-guests"), &report.new_guests.to_string());
    });
    ui.label(
        RichText::new(i18n.t("shift-report-basis-local-day"))
            .color(theme::TEXT_MUTED)
            .small(),
    );
    if report.till.is_some() {
        ui.label(
            RichText::new(i18n.t("shift-report-basis-server"))
                .color(theme::TEXT_MUTED)
                .small(),
        );
    }
}

/// `DD.MM.YYYY HH:MM` in the programme's time zone (the one its day, and so the shift, is in).
fn date_time(unix: crate::domain::UnixSeconds, offset_minutes: i64) -> String {
    local(unix, offset_minutes, "%d.%m.%Y %H:%M")
}

fn file_day(unix: crate::domain::UnixSeconds, offset_minutes: i64) -> String {
    local(unix, offset_minutes, "%Y-%m-%d")
}

fn local(unix: crate::domain::UnixSeconds, offset_minutes: i64, format: &str) -> String {
    use chrono::TimeZone as _;
    let offset = i32::try_from(offset_minutes * 60)
        .ok()
        .and_then(chrono::FixedOffset::east_opt);
    match offset.and_then(|zone| zone.timestamp_opt(unix, 0).single()) {
        Some(time) => time.format(format).to_string(),
        None => unix.to_string(),
    }
}
