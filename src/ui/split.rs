//! «Добавить карту»: one check paid from several bonus accounts. Each card shows its guest, the
//! available balance and its own maximum, with its own amount; below, the check's sum, its
//! maximum, the remainder and the cash received (with «Точная сумма»). It reads the workflow
//! state and pushes events; the holds and the commit run on the worker.

use super::keypad::{code_keypad, field, keypad};
use super::screens::ScreenContext;
use super::theme::{self, Tone, card, value_row, wide_button};
use crate::i18n::{Arg, I18n};
use crate::workflow::{Event, Field, KeypadKey, Screen, SplitLine, SplitPayment, SplitStage, State, TenderMethod};
use egui::{RichText, Ui};

fn heading(ui: &mut Ui, text: &str) {
    ui.label(
        RichText::new(text)
            .text_style(egui::TextStyle::Heading)
            .color(theme::TEXT_STRONG)
            .strong(),
    );
}

pub fn show(ui: &mut Ui, state: &State, split: &SplitPayment, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    if cx.wide {
        ui.columns(2, |columns| {
            cards(&mut columns[0], state, split, cx.i18n, events);
            inputs(&mut columns[1], state, split, cx.i18n, events);
        });
    } else {
        cards(ui, state, split, cx.i18n, events);
        inputs(ui, state, split, cx.i18n, events);
    }
}

/// The cards on the check, each with its amount field.
fn cards(ui: &mut Ui, state: &State, split: &SplitPayment, i18n: &I18n, events: &mut Vec<Event>) {
    heading(ui, &i18n.t("split-title"));
    let editing = split.stage == SplitStage::Editing && !state.is_busy();
    for (index, row) in split.cards.iter().enumerate() {
        card(ui, |ui| {
            let number = Arg::Number(index as i64 + 1);
            let name = row.card.label();
            ui.label(
                RichText::new(i18n.t_args("split-card-title", &[("card", number), ("name", Arg::Text(name))])).strong(),
            );
            value_row(ui, &i18n.t("split-card-available"), &row.card.available.to_string());
            value_row(ui, &i18n.t("split-card-max"), &row.quote.max_spend.to_string());
            field(
                ui,
                state,
                Field::CardAmount(index),
                &i18n.t("payment-amount-placeholder"),
                events,
            );
            if let Some(refused) = &row.refused {
                ui.add(egui::Label::new(RichText::new(i18n.notice(refused)).color(theme::DANGER).strong()).wrap());
            }
            ui.horizontal(|ui| {
                if index == split.owner {
                    ui.label(RichText::new(i18n.t("split-owner")).color(theme::TEXT_MUTED));
                } else if ui
                    .add_enabled(editing, egui::Button::new(i18n.t("split-make-owner")))
                    .clicked()
                {
                    events.push(Event::SetOwner(index));
                }
                if index > 0
                    && ui
                        .add_enabled(editing, egui::Button::new(i18n.t("split-remove")))
                        .clicked()
                {
                    events.push(Event::RemoveCard(index));
                }
            });
        });
    }
}

/// Another card's code, the check's sums, the cash received and the keypad.
fn inputs(ui: &mut Ui, state: &State, split: &SplitPayment, i18n: &I18n, events: &mut Vec<Event>) {
    let editing = split.stage == SplitStage::Editing;
    if editing {
        ui.label(i18n.t("split-next-card"));
        ui.horizontal(|ui| {
            let width = ui.available_width();
            ui.allocate_ui(egui::vec2(width * 0.6, theme::TOUCH_HEIGHT), |ui| {
                field(ui, state, Field::Code, &i18n.t("add-guest-placeholder"), events);
            });
            let add = egui::vec2(ui.available_width(), theme::TOUCH_HEIGHT);
            if theme::sized_button(ui, &i18n.t("split-add"), Tone::Normal, !state.is_busy(), add).clicked() {
                events.push(Event::SubmitCode);
            }
        });
    }
    let quote = split.check_quote();
    card(ui, |ui| {
        value_row(ui, &i18n.t("split-amount-due"), &quote.amount_due.to_string());
        value_row(ui, &i18n.t("split-check-max"), &quote.check_max().to_string());
        match state.split_total(split) {
            Some(total) => {
                value_row(ui, &i18n.t("split-total"), &total.to_string());
                value_row(
                    ui,
                    &i18n.t("payment-remainder"),
                    &State::remainder(quote, total).to_string(),
                );
            }
            None => {
                ui.label(RichText::new(i18n.t("split-total-unknown")).color(theme::TEXT_MUTED));
            }
        }
    });
    ui.horizontal(|ui| {
        let size = egui::vec2(theme::button_width(ui, 2), theme::TOUCH_HEIGHT);
        for (method, key) in [(TenderMethod::Cash, "tender-cash"), (TenderMethod::Card, "tender-card")] {
            let button = egui::Button::new(i18n.t(key))
                .min_size(size)
                .selected(state.tender == method);
            if ui.add(button).clicked() {
                events.push(Event::SetTender(method));
            }
        }
    });
    if state.tender == TenderMethod::Cash {
        ui.label(i18n.t("payment-tendered-label"));
        ui.horizontal(|ui| {
            let width = ui.available_width();
            ui.allocate_ui(egui::vec2(width * 0.55, theme::TOUCH_HEIGHT), |ui| {
                field(
                    ui,
                    state,
                    Field::Tendered,
                    &i18n.t("payment-amount-placeholder"),
                    events,
                );
            });
            let exact = egui::vec2(ui.available_width(), theme::TOUCH_HEIGHT);
            if theme::sized_button(ui, &i18n.t("payment-exact"), Tone::Normal, true, exact).clicked() {
                events.push(Event::ExactAmount);
            }
        });
    }
    if state.active_field == Some(Field::Code) {
        code_keypad(ui, i18n, editing && !state.is_busy(), events);
    } else {
        keypad(ui, i18n, KeypadKey::Comma, true, events);
    }
}

/// «Провести оплату» and «Одна карта», pinned above the status line; a disabled payment says why.
pub fn actions(ui: &mut Ui, state: &State, i18n: &I18n, events: &mut Vec<Event>) {
    match &state.screen {
        Screen::Split(split) => {
            let busy_key = match &split.stage {
                SplitStage::Editing => None,
                SplitStage::Holding => Some("split-holding"),
                SplitStage::Committing { .. } => Some("processing-commit"),
                SplitStage::InDoubt { .. } => None,
            };
            if let Some(key) = busy_key {
                ui.horizontal(|ui| {
                    ui.add(egui::Spinner::new().size(24.0));
                    ui.label(i18n.t(key));
                });
                return;
            }
            let in_doubt = matches!(split.stage, SplitStage::InDoubt { .. });
            let blocker = if in_doubt { None } else { state.split_blocker(split) };
            if let Some(problem) = &blocker {
                ui.add(egui::Label::new(RichText::new(i18n.notice(problem)).color(theme::DANGER).strong()).wrap());
            }
            let can_pay = !state.is_busy() && blocker.is_none();
            let pay_key = if in_doubt { "split-retry" } else { "payment-confirm" };
            ui.horizontal(|ui| {
                let back_width = (ui.available_width() * 0.32).max(110.0);
                let pay = egui::vec2(
                    ui.available_width() - back_width - ui.spacing().item_spacing.x,
                    theme::PRIMARY_HEIGHT,
                );
                if theme::sized_button(ui, &i18n.t(pay_key), Tone::Primary, can_pay, pay).clicked() {
                    events.push(Event::ConfirmPayment);
                }
                let back = egui::vec2(ui.available_width(), theme::PRIMARY_HEIGHT);
                if theme::sized_button(ui, &i18n.t("split-one-card"), Tone::Normal, !in_doubt, back).clicked() {
                    events.push(Event::CancelPayment);
                }
            });
        }
        Screen::SplitDone { .. } if wide_button(ui, &i18n.t("done-new-order"), Tone::Primary, true).clicked() => {
            events.push(Event::NewOrder);
        }
        _ => {}
    }
}

/// The closed check: what each card paid and its balance now, and the owner's accrual.
pub fn done(ui: &mut Ui, state: &State, lines: &[SplitLine], cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    egui::Frame::new()
        .fill(theme::SUCCESS_BG)
        .corner_radius(8.0)
        .inner_margin(16.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            heading(ui, &i18n.t("done-title"));
            if let Some(notice) = &state.notice {
                ui.label(RichText::new(i18n.notice(notice)).strong());
            }
            // The gifts of the order were redeemed with the owner's payment, as on one card.
            super::screens::gift_lines(ui, state, i18n, "done-gift");
            if let Some(group) = lines
                .iter()
                .find(|l| l.owner)
                .and_then(|l| l.receipt.new_group.as_ref())
            {
                ui.label(i18n.t_args("done-new-group", &[("group", Arg::Text(group.clone()))]));
            }
        });
    for (index, line) in lines.iter().enumerate() {
        card(ui, |ui| {
            let title = i18n.t_args(
                "split-card-title",
                &[
                    ("card", Arg::Number(index as i64 + 1)),
                    ("name", Arg::Text(line.name.clone())),
                ],
            );
            ui.label(RichText::new(title).strong());
            value_row(ui, &i18n.t("split-card-spent"), &line.receipt.spent.to_string());
            if line.owner {
                value_row(ui, &i18n.t("split-card-accrued"), &line.receipt.accrued.to_string());
            }
            value_row(ui, &i18n.t("done-balance"), &line.receipt.balance_after.to_string());
        });
    }
    if wide_button(ui, &i18n.t("done-return"), Tone::Normal, !state.is_busy()).clicked() {
        events.push(Event::OpenReturns { last_check: true });
    }
}
