//! «Возврат чека»: the returns screen, one function per step. It reads the workflow state and
//! pushes events; the search, the preview and the return itself run on the worker.

use super::keypad::{field, keypad};
use super::screens::ScreenContext;
use super::theme::{self, Tone, card, value_row, wide_button};
use crate::domain::{CheckLine, CheckSummary, RefundReceipt, ReturnPart};
use crate::i18n::{Arg, I18n};
use crate::money::Kopecks;
use crate::workflow::{Event, Field, KeypadKey, ReturnMode, ReturnSearch, ReturnStep, State};
use egui::{RichText, Ui};

pub fn show(ui: &mut Ui, state: &State, step: &ReturnStep, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    ui.label(
        RichText::new(i18n.t("returns-title"))
            .text_style(egui::TextStyle::Heading)
            .color(theme::TEXT_STRONG)
            .strong(),
    );
    match step {
        ReturnStep::Find { checks } => find(ui, state, checks.as_deref(), i18n, events),
        ReturnStep::Choose { check } => choose(ui, state, check, i18n, events),
        // «Подтвердить возврат» is pinned at the bottom ([`actions`]): on screen at any height.
        ReturnStep::Preview {
            check, part, preview, ..
        } => {
            check_card(ui, check, i18n);
            returned_lines(ui, check, part, i18n);
            changes_card(ui, preview, i18n, false);
        }
        ReturnStep::Sending {
            check, part, preview, ..
        } => {
            check_card(ui, check, i18n);
            returned_lines(ui, check, part, i18n);
            changes_card(ui, preview, i18n, false);
            ui.horizontal(|ui| {
                ui.add(egui::Spinner::new().size(24.0));
                ui.label(i18n.t("returns-sending"));
            });
        }
        ReturnStep::Done { check, receipt } => {
            egui::Frame::new()
                .fill(theme::SUCCESS_BG)
                .corner_radius(8.0)
                .inner_margin(16.0)
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.label(
                        RichText::new(i18n.t_args("returns-done-title", &[("number", Arg::Number(check.number))]))
                            .text_style(egui::TextStyle::Heading)
                            .strong(),
                    );
                });
            changes_card(ui, receipt, i18n, true);
        }
    }
}

/// The step's main action, pinned above the status line with the notice: the preview's
/// «Подтвердить возврат» (and «Назад»), the result's «Готово».
pub fn actions(ui: &mut Ui, state: &State, step: &ReturnStep, i18n: &I18n, events: &mut Vec<Event>) {
    match step {
        ReturnStep::Preview { .. } => {
            ui.horizontal(|ui| {
                let back_width = (ui.available_width() * 0.32).max(110.0);
                let confirm = egui::vec2(
                    ui.available_width() - back_width - ui.spacing().item_spacing.x,
                    theme::PRIMARY_HEIGHT,
                );
                let enabled = !state.is_busy();
                if theme::sized_button(ui, &i18n.t("returns-confirm"), Tone::Primary, enabled, confirm).clicked() {
                    events.push(Event::ConfirmReturn);
                }
                let back = egui::vec2(ui.available_width(), theme::PRIMARY_HEIGHT);
                if theme::sized_button(ui, &i18n.t("back"), Tone::Normal, true, back).clicked() {
                    events.push(Event::Back);
                }
            });
        }
        ReturnStep::Done { .. } => {
            if wide_button(ui, &i18n.t("returns-finish"), Tone::Primary, true).clicked() {
                events.push(Event::Back);
            }
        }
        ReturnStep::Find { .. } | ReturnStep::Choose { .. } | ReturnStep::Sending { .. } => {}
    }
}

/// Whether [`actions`] draws anything for the step.
pub fn has_actions(step: &ReturnStep) -> bool {
    matches!(step, ReturnStep::Preview { .. } | ReturnStep::Done { .. })
}

fn back_button(ui: &mut Ui, i18n: &I18n, events: &mut Vec<Event>) {
    if wide_button(ui, &i18n.t("back"), Tone::Normal, true).clicked() {
        events.push(Event::Back);
    }
}

fn find(ui: &mut Ui, state: &State, checks: Option<&[CheckSummary]>, i18n: &I18n, events: &mut Vec<Event>) {
    let enabled = !state.is_busy();
    ui.label(RichText::new(i18n.t("returns-find-hint")).color(theme::TEXT_MUTED));
    let response = field(
        ui,
        state,
        Field::ReturnQuery,
        &i18n.t("returns-query-placeholder"),
        events,
    );
    if response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
        events.push(Event::FindChecks(ReturnSearch::Number));
    }
    ui.horizontal(|ui| {
        let size = egui::vec2(theme::button_width(ui, 3), theme::TOUCH_HEIGHT);
        for (key, how) in [
            ("returns-by-number", ReturnSearch::Number),
            ("returns-by-guest", ReturnSearch::Guest),
            ("returns-today", ReturnSearch::Today),
        ] {
            if theme::sized_button(ui, &i18n.t(key), Tone::Normal, enabled, size).clicked() {
                events.push(Event::FindChecks(how));
            }
        }
    });
    match checks {
        None => {
            ui.horizontal(|ui| {
                ui.add(egui::Spinner::new().size(24.0));
                ui.label(i18n.t("returns-searching"));
            });
        }
        Some(checks) => {
            if state.is_busy() {
                ui.horizontal(|ui| {
                    ui.add(egui::Spinner::new().size(24.0));
                    ui.label(i18n.t("returns-searching"));
                });
            }
            for check in checks {
                check_button(ui, check, i18n, enabled, events);
            }
        }
    }
    keypad(ui, i18n, KeypadKey::Plus, enabled, events);
    back_button(ui, i18n, events);
}

/// One check of the list, as a big button: number, time, guest, amount, and what was returned.
fn check_button(ui: &mut Ui, check: &CheckSummary, i18n: &I18n, enabled: bool, events: &mut Vec<Event>) {
    let mut text = i18n.t_args(
        "returns-check-line",
        &[
            ("number", Arg::Number(check.number)),
            ("time", Arg::Text(super::local_time_of_day(check.at))),
            ("guest", Arg::Text(check.guest_name.clone())),
            ("amount", Arg::Money(check.amount_due)),
        ],
    );
    let left = check.left();
    if left <= Kopecks::ZERO {
        text.push('\n');
        text.push_str(&i18n.t("returns-check-returned"));
    } else if check.refunded > Kopecks::ZERO {
        text.push('\n');
        text.push_str(&i18n.t_args("returns-check-partly", &[("refunded", Arg::Money(check.refunded))]));
    }
    let button = egui::Button::new(RichText::new(text))
        .min_size(egui::vec2(ui.available_width(), theme::TOUCH_HEIGHT))
        .wrap();
    if ui.add_enabled(enabled && left > Kopecks::ZERO, button).clicked() {
        events.push(Event::ChooseCheck(check.number));
    }
}

fn check_card(ui: &mut Ui, check: &CheckSummary, i18n: &I18n) {
    card(ui, |ui| {
        ui.label(RichText::new(i18n.t_args("returns-check-title", &[("number", Arg::Number(check.number))])).strong());
        value_row(ui, &i18n.t("returns-guest"), &check.guest_name);
        value_row(ui, &i18n.t("returns-paid-at"), &super::local_time_of_day(check.at));
        value_row(ui, &i18n.t("returns-amount-due"), &check.amount_due.to_string());
        value_row(ui, &i18n.t("returns-spent"), &check.spent.to_string());
        value_row(ui, &i18n.t("returns-accrued"), &check.accrued.to_string());
        if check.refunded > Kopecks::ZERO {
            value_row(ui, &i18n.t("returns-refunded"), &check.refunded.to_string());
        }
        value_row(ui, &i18n.t("returns-left"), &check.left().to_string());
    });
}

fn choose(ui: &mut Ui, state: &State, check: &CheckSummary, i18n: &I18n, events: &mut Vec<Event>) {
    let enabled = !state.is_busy();
    let full = i18n.t_args("returns-full", &[("amount", Arg::Money(check.left()))]);
    let whole = |ui: &mut Ui, events: &mut Vec<Event>| {
        check_card(ui, check, i18n);
        if wide_button(ui, &full, Tone::Primary, enabled).clicked() {
            events.push(Event::PreviewReturn(ReturnMode::Full));
        }
    };
    if check.lines.is_empty() {
        // A check paid without its lines (the POS's, or one from before lines were kept).
        whole(ui, events);
        ui.add_space(6.0);
        ui.label(RichText::new(i18n.t("returns-partial-hint")).color(theme::TEXT_MUTED));
        ui.label(
            RichText::new(i18n.t("returns-lines-not-recorded"))
                .small()
                .color(theme::TEXT_MUTED),
        );
    } else {
        if ui.available_width() >= 700.0 {
            // On a wide screen the lines sit beside the check, above the fold.
            ui.columns(2, |columns| {
                whole(&mut columns[0], events);
                lines_card(&mut columns[1], state, check, i18n, enabled, events);
            });
        } else {
            whole(ui, events);
            ui.add_space(6.0);
            lines_card(ui, state, check, i18n, enabled, events);
        }
        ui.add_space(6.0);
        ui.label(RichText::new(i18n.t("returns-amount-hint")).color(theme::TEXT_MUTED));
    }
    field(
        ui,
        state,
        Field::ReturnAmount,
        &i18n.t("returns-amount-placeholder"),
        events,
    );
    if wide_button(ui, &i18n.t("returns-partial"), Tone::Normal, enabled).clicked() {
        events.push(Event::PreviewReturn(ReturnMode::Partial));
    }
    if state.is_busy() {
        ui.horizontal(|ui| {
            ui.add(egui::Spinner::new().size(24.0));
            ui.label(i18n.t("returns-previewing"));
        });
    }
    keypad(ui, i18n, KeypadKey::Comma, enabled, events);
    back_button(ui, i18n, events);
}

/// A return by lines names them before it is confirmed: «Капучино × 1, Круассан × 1».
fn returned_lines(ui: &mut Ui, check: &CheckSummary, part: &ReturnPart, i18n: &I18n) {
    let ReturnPart::Lines(lines) = part else {
        return;
    };
    let named: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            check
                .lines
                .get(l.line)
                .map(|line| format!("{} × {}", line.name, l.quantity))
        })
        .collect();
    let text = i18n.t_args("returns-lines-returned", &[("lines", Arg::Text(named.join(", ")))]);
    ui.add(egui::Label::new(RichText::new(text).strong()).wrap());
}

/// The check's lines, each with «−», the units picked and «+» (up to what is left of it), and
/// «Вернуть выбранное» with what the picked units are worth.
fn lines_card(ui: &mut Ui, state: &State, check: &CheckSummary, i18n: &I18n, enabled: bool, events: &mut Vec<Event>) {
    card(ui, |ui| {
        ui.label(RichText::new(i18n.t("returns-lines-title")).strong());
        for (index, line) in check.lines.iter().enumerate() {
            line_row(ui, state, index, line, i18n, enabled, events);
        }
    });
    let chosen = crate::workflow::chosen_lines(&state.return_lines);
    let label = match chosen
        .as_deref()
        .map(|lines| crate::domain::lines_value(&check.lines, check.amount_due, lines))
    {
        Some(Ok(value)) => i18n.t_args("returns-lines-button", &[("amount", Arg::Money(value))]),
        _ => i18n.t("returns-lines-button-none"),
    };
    if wide_button(ui, &label, Tone::Primary, enabled && chosen.is_some()).clicked() {
        events.push(Event::PreviewReturn(ReturnMode::Lines));
    }
}

/// One line: its name and price on the left, «−», the units picked and «+» on the right.
fn line_row(
    ui: &mut Ui,
    state: &State,
    index: usize,
    line: &CheckLine,
    i18n: &I18n,
    enabled: bool,
    events: &mut Vec<Event>,
) {
    let picked = state.return_lines.get(index).copied().unwrap_or(0);
    let step = egui::vec2(theme::TOUCH_HEIGHT, theme::TOUCH_HEIGHT);
    let count_width = 48.0;
    let gap = ui.spacing().item_spacing.x;
    ui.horizontal(|ui| {
        let text_width = (ui.available_width() - 2.0 * step.x - count_width - 3.0 * gap).max(80.0);
        let layout = egui::Layout::top_down(egui::Align::Min);
        ui.allocate_ui_with_layout(egui::vec2(text_width, theme::TOUCH_HEIGHT), layout, |ui| {
            ui.set_width(text_width);
            ui.add(egui::Label::new(RichText::new(&line.name).strong()).wrap());
            let mut detail = i18n.t_args(
                "returns-line-detail",
                &[
                    ("quantity", Arg::Number(line.quantity)),
                    ("price", Arg::Money(line.price)),
                ],
            );
            if line.returned > 0 {
                detail.push_str(" · ");
                detail.push_str(&i18n.t_args("returns-line-returned", &[("returned", Arg::Number(line.returned))]));
            }
            ui.label(RichText::new(detail).small().color(theme::TEXT_MUTED));
        });
        // The keys show «−» and «+»; a screen reader (and the tests) hear which line.
        let name = [("line", Arg::Text(line.name.clone()))];
        let mut key = |ui: &mut Ui, text: &str, label_key: &str, on: bool, more: bool| {
            let button = egui::Button::new(RichText::new(text).text_style(egui::TextStyle::Heading)).min_size(step);
            let response = ui.add_enabled(enabled && on, button);
            let label = i18n.t_args(label_key, &name);
            ui.ctx()
                .accesskit_node_builder(response.id, |node| node.set_label(label));
            if response.clicked() {
                events.push(Event::StepReturnLine { line: index, more });
            }
        };
        key(ui, "−", "returns-line-less", picked > 0, false);
        ui.add_sized(
            egui::vec2(count_width, theme::TOUCH_HEIGHT),
            egui::Label::new(RichText::new(picked.to_string()).text_style(egui::TextStyle::Heading)),
        );
        key(ui, "+", "returns-line-more", picked < line.left(), true);
    });
}

/// What the return changes (or would change): every line the cashier must see before
/// confirming, the shortfall in red.
/// `done`: the result of a return made (its own words: «возвращены», not «вернутся»).
fn changes_card(ui: &mut Ui, receipt: &RefundReceipt, i18n: &I18n, done: bool) {
    let key = |will: &'static str, did: &'static str| if done { did } else { will };
    card(ui, |ui| {
        let title = key("returns-preview-title", "returns-done-changes");
        ui.label(RichText::new(i18n.t(title)).strong());
        let amount = key("returns-returned-amount", "returns-returned-amount-done");
        value_row(ui, &i18n.t(amount), &receipt.amount.to_string());
        value_row(
            ui,
            &i18n.t(key("returns-bonuses-back", "returns-bonuses-back-done")),
            &format!("+{}", receipt.spend_returned),
        );
        value_row(
            ui,
            &i18n.t(key("returns-accrual-taken", "returns-accrual-taken-done")),
            &format!("−{}", receipt.accrual_taken),
        );
        // A check paid with several cards: the other cards get their share back too.
        if receipt.others_returned > Kopecks::ZERO {
            value_row(
                ui,
                &i18n.t(key("returns-others-back", "returns-others-back-done")),
                &format!("+{}", receipt.others_returned),
            );
        }
        if receipt.unrecovered > Kopecks::ZERO {
            let text = i18n.t_args(
                key("returns-shortfall", "returns-shortfall-done"),
                &[("amount", Arg::Money(receipt.unrecovered))],
            );
            ui.add(egui::Label::new(RichText::new(text).color(theme::DANGER).strong()).wrap());
        }
        for gift in &receipt.gifts_restored {
            let text = i18n.t_args(
                key("returns-gift-back", "returns-gift-back-done"),
                &[("gift", Arg::Text(gift.clone()))],
            );
            ui.add(egui::Label::new(RichText::new(text).color(theme::GIFT).strong()).wrap());
        }
        if receipt.stamps_taken > 0 {
            value_row(
                ui,
                &i18n.t(key("returns-stamps-taken", "returns-stamps-taken-done")),
                &receipt.stamps_taken.to_string(),
            );
        }
        match &receipt.new_group {
            Some(group) => {
                let text = i18n.t_args(
                    key("returns-group-down", "returns-group-down-done"),
                    &[("group", Arg::Text(group.clone()))],
                );
                ui.label(text);
            }
            None => {
                ui.label(RichText::new(i18n.t("returns-group-same")).color(theme::TEXT_MUTED));
            }
        }
        if !receipt.full {
            ui.label(
                RichText::new(i18n.t("returns-partial-note"))
                    .small()
                    .color(theme::TEXT_MUTED),
            );
        }
        ui.separator();
        let balance = key("returns-balance-after", "returns-balance-after-done");
        value_row(ui, &i18n.t(balance), &receipt.balance_after.to_string());
    });
}
