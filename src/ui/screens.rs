//! One function per workflow screen. They read the state and push events; nothing else.

use super::keypad::{code_keypad, field, keypad, name_keypad};
use super::theme::{self, Tone, card, value_row, wide_button};
use crate::domain::{SpendLimitKind, SpendQuote};
use crate::i18n::{Arg, I18n};
use crate::money::Kopecks;
use crate::workflow::{
    Enrolment, Event, Field, KeypadKey, PaymentInProgress, PaymentMode, PaymentStage, Screen, SpendPreset, State,
    TenderMethod,
};
use egui::{RichText, Ui};

/// What a screen needs besides the state.
pub struct ScreenContext<'a> {
    pub i18n: &'a I18n,
    pub program_name: &'a str,
    /// Wide enough for two columns (full screen) or one (side panel).
    pub wide: bool,
    /// «QR из буфера» was pressed: the app reads the clipboard (I/O stays out of the screens).
    pub paste_requested: &'a std::cell::Cell<bool>,
    /// A clipboard read is under way.
    pub paste_busy: bool,
    /// The folder the log export saves into (the shift report goes there too).
    pub export_folder: std::path::PathBuf,
}

pub fn show(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    match &state.screen {
        Screen::Idle => idle(ui, state, cx, events),
        Screen::AddGuest => add_guest(ui, state, cx, events),
        Screen::Enrol(enrolment) => enrol(ui, state, enrolment, cx, events),
        Screen::Order => order_editor(ui, state, cx, events),
        Screen::Guest => guest(ui, state, cx, events),
        Screen::Stamps => stamps(ui, state, cx, events),
        Screen::Promotions => promotions(ui, state, cx, events),
        Screen::ConfirmReplace { .. } => confirm_replace(ui, state, cx, events),
        Screen::PaymentChoice { quote } => payment_choice(ui, state, quote, cx, events),
        Screen::Payment { mode, quote } => payment(ui, state, *mode, quote, cx, events),
        Screen::Processing { payment, .. } => processing(ui, payment, cx, events),
        Screen::Done { .. } => done(ui, state, cx, events),
        Screen::Returns(step) => super::returns::show(ui, state, step, cx, events),
        Screen::Shift(step) => super::shift::show(ui, state, step, cx, events),
        Screen::Split(split) => super::split::show(ui, state, split, cx, events),
        Screen::SplitDone { lines } => super::split::done(ui, state, lines, cx, events),
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

fn money_arg(amount: Kopecks) -> Arg {
    Arg::Money(amount)
}

fn idle(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let brand = egui::Button::new(
        RichText::new(cx.program_name)
            .text_style(theme::big_text())
            .color(theme::ACCENT_TEXT)
            .strong(),
    )
    .fill(theme::ACCENT)
    .min_size(egui::vec2(ui.available_width(), theme::BRAND_HEIGHT));
    let pressed = ui.vertical_centered_justified(|ui| ui.add(brand)).inner.clicked();
    if pressed {
        events.push(Event::OpenPlugin);
    }
    ui.label(RichText::new(cx.i18n.t("idle-brand-hint")).color(theme::TEXT_MUTED));
    ui.add_space(8.0);
    order_summary(ui, state, cx, events);
}

/// The order lines and total, with the buttons that change the order.
fn order_summary(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    card(ui, |ui| {
        match &state.pos {
            Some(pos) => {
                title(
                    ui,
                    &i18n.t_args("pos-order-title", &[("number", Arg::Text(pos.number.clone()))]),
                );
                if let Some(table) = &pos.table {
                    ui.label(
                        RichText::new(i18n.t_args("pos-order-table", &[("table", Arg::Text(table.clone()))]))
                            .color(theme::TEXT_MUTED),
                    );
                }
            }
            None => title(ui, &i18n.t("order-title")),
        }
        if state.order.lines.is_empty() {
            ui.label(RichText::new(i18n.t("order-empty")).color(theme::TEXT_MUTED));
        }
        for line in &state.order.lines {
            theme::row(ui, |ui| {
                let name = if line.quantity > 1 {
                    format!("{} × {}", line.name, line.quantity)
                } else {
                    line.name.clone()
                };
                match &line.gift {
                    Some(gift) => {
                        ui.label(RichText::new(name).color(theme::GIFT));
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            let points = i18n.t_args("order-gift-points", &[("points", money_arg(gift.points))]);
                            ui.label(RichText::new(points).color(theme::GIFT));
                        });
                    }
                    None => {
                        ui.label(name);
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            ui.label(line.total().to_string());
                        });
                    }
                }
            });
        }
        ui.separator();
        let total_key = if state.pos.is_some() {
            "pos-order-total"
        } else {
            "order-total"
        };
        value_row(ui, &i18n.t(total_key), &state.order.subtotal().to_string());
        if let Some(held) = state.pos.as_ref().and_then(|p| p.held) {
            ui.label(RichText::new(i18n.t_args("pos-order-held", &[("amount", money_arg(held))])).color(theme::GIFT));
        }
    });
    let in_flow = matches!(state.screen, Screen::Idle | Screen::Guest);
    if in_flow && state.pos.is_some() {
        // The POS's order is the check: nothing to type.
        ui.label(RichText::new(i18n.t("pos-connected-hint")).color(theme::TEXT_MUTED));
    } else if in_flow {
        ui.horizontal(|ui| {
            let n = if state.demo { 2 } else { 1 };
            let size = egui::vec2(theme::button_width(ui, n), theme::TOUCH_HEIGHT);
            if theme::sized_button(ui, &i18n.t("order-edit"), Tone::Normal, true, size).clicked() {
                events.push(Event::OpenOrder);
            }
            if state.demo && theme::sized_button(ui, &i18n.t("order-demo"), Tone::Normal, true, size).clicked() {
                events.push(Event::UseDemoOrder);
            }
        });
    }
}

/// The order beside the flow when the window is wide enough for two columns.
pub fn order_column(ui: &mut Ui, state: &State, i18n: &I18n, events: &mut Vec<Event>) {
    let no_paste = std::cell::Cell::new(false);
    let cx = ScreenContext {
        i18n,
        program_name: "",
        wide: true,
        paste_requested: &no_paste,
        paste_busy: false,
        export_folder: std::path::PathBuf::new(),
    };
    order_summary(ui, state, &cx, events);
}

fn busy_line(ui: &mut Ui, text: &str) {
    ui.horizontal(|ui| {
        ui.add(egui::Spinner::new().size(24.0));
        ui.label(text);
    });
}

/// Whether the field holds the keyboard focus within the window, whether or not the window has
/// the system's focus. `Response::has_focus` is false while the window is not focused (the POS
/// beside it has the focus, or no window manager gives it any): asking for focus again in every
/// frame then restarts the input method every time, whose answer wakes the window for the next
/// frame, and the till drew ~50 frames a second doing nothing.
fn holds_focus(ui: &Ui, response: &egui::Response) -> bool {
    ui.memory(|memory| memory.has_focus(response.id))
}

fn add_guest(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    title(ui, &i18n.t("add-guest-title"));
    ui.label(RichText::new(i18n.t("add-guest-hint")).color(theme::TEXT_MUTED));
    let response = field(ui, state, Field::Code, &i18n.t("add-guest-placeholder"), events);
    // Read before focus is taken back below: once it is, the field no longer reports it lost.
    if response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
        events.push(Event::SubmitCode);
    }
    if !state.is_busy() && !holds_focus(ui, &response) && state.active_field == Some(Field::Code) {
        // Keyboard typing (and keyboard-mode scanners inside our window) lands in the code field.
        response.request_focus();
    }
    if state.is_busy() {
        busy_line(ui, &i18n.t("add-guest-searching"));
    }
    code_keypad(ui, i18n, !state.is_busy(), events);
    let paste_enabled = !state.is_busy() && !cx.paste_busy;
    if wide_button(ui, &i18n.t("add-guest-paste"), Tone::Normal, paste_enabled).clicked() {
        cx.paste_requested.set(true);
    }
    if wide_button(ui, &i18n.t("back"), Tone::Normal, true).clicked() {
        events.push(Event::Back);
    }
}

/// «Новый гость»: the phone (required) and name for the code that was not found; the keypad
/// types the phone, the keyboard either field.
fn enrol(ui: &mut Ui, state: &State, enrolment: &Enrolment, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    title(ui, &i18n.t("enrol-title"));
    value_row(ui, &i18n.t("enrol-card"), &enrolment.code.payload);
    if enrolment.welcome_bonus > Kopecks::ZERO {
        value_row(ui, &i18n.t("enrol-welcome-bonus"), &enrolment.welcome_bonus.to_string());
    }
    ui.label(RichText::new(i18n.t("enrol-phone")).color(theme::TEXT_MUTED));
    let phone = field(ui, state, Field::Phone, &i18n.t("enrol-phone-placeholder"), events);
    ui.label(RichText::new(i18n.t("enrol-name")).color(theme::TEXT_MUTED));
    let name = field(ui, state, Field::Name, &i18n.t("enrol-name-placeholder"), events);
    let enter = ui.input(|i| i.key_pressed(egui::Key::Enter));
    if (phone.lost_focus() || name.lost_focus()) && enter {
        events.push(Event::SubmitEnrol);
    }
    let focus = match state.active_field {
        Some(Field::Phone) => Some(&phone),
        Some(Field::Name) => Some(&name),
        _ => None,
    };
    if let Some(response) = focus
        && !state.is_busy()
        && !holds_focus(ui, response)
    {
        response.request_focus();
    }
    if state.is_busy() {
        busy_line(ui, &i18n.t("enrol-busy"));
    }
    if state.active_field == Some(Field::Name) {
        name_keypad(ui, i18n, !state.is_busy(), events);
    } else {
        keypad(ui, i18n, KeypadKey::Plus, !state.is_busy(), events);
    }
    if wide_button(ui, &i18n.t("back"), Tone::Normal, true).clicked() {
        events.push(Event::Back);
    }
}

fn order_editor(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    if !cx.wide {
        order_summary(ui, state, cx, events);
    }
    ui.label(RichText::new(i18n.t("order-line-hint")).color(theme::TEXT_MUTED));
    field(ui, state, Field::LinePrice, &i18n.t("order-line-placeholder"), events);
    let buttons = [
        ("order-add-line", Tone::Primary, Event::AddOrderLine),
        ("order-clear", Tone::Normal, Event::ClearOrder),
    ];
    if cx.wide {
        ui.horizontal(|ui| {
            let size = egui::vec2(theme::button_width(ui, 2), theme::TOUCH_HEIGHT);
            for (key, tone, event) in buttons {
                if theme::sized_button(ui, &i18n.t(key), tone, true, size).clicked() {
                    events.push(event);
                }
            }
        });
    } else {
        // Stacked in the side panel: side by side, the labels are wider than half of it and
        // would widen the screen past its right edge.
        for (key, tone, event) in buttons {
            if wide_button(ui, &i18n.t(key), tone, true).clicked() {
                events.push(event);
            }
        }
    }
    keypad(ui, i18n, KeypadKey::Comma, true, events);
}

fn guest(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    let Some(card_data) = &state.guest else {
        return;
    };
    card(ui, |ui| {
        // «Удалить гостя» at the top of the card, by the name it removes: far from «Касса» in the
        // action bar, and never under it however long the card grows.
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(&card_data.name)
                    .text_style(egui::TextStyle::Heading)
                    .strong(),
            );
            if !state.confirm_remove {
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let remove = i18n.t("guest-remove");
                    let size = egui::vec2(0.0, theme::TOUCH_HEIGHT);
                    if theme::sized_button(ui, &remove, Tone::Danger, true, size).clicked() {
                        events.push(Event::AskRemoveGuest(true));
                    }
                });
            }
        });
        if state.confirm_remove {
            let name = card_data.name.clone();
            problem_line(ui, &i18n.t_args("guest-remove-question", &[("name", Arg::Text(name))]));
            ui.horizontal(|ui| {
                let half = egui::vec2(theme::button_width(ui, 2), theme::TOUCH_HEIGHT);
                if theme::sized_button(ui, &i18n.t("guest-remove-yes"), Tone::Danger, true, half).clicked() {
                    events.push(Event::RemoveGuest);
                }
                if theme::sized_button(ui, &i18n.t("guest-remove-no"), Tone::Normal, true, half).clicked() {
                    events.push(Event::AskRemoveGuest(false));
                }
            });
        }
        if let Some(account) = &card_data.account {
            let text = i18n.t_args("guest-account", &[("account", Arg::Text(account.clone()))]);
            ui.label(RichText::new(text).strong().color(theme::ACCENT));
        }
        if !card_data.phone_masked.is_empty() {
            ui.label(RichText::new(&card_data.phone_masked).color(theme::TEXT_MUTED));
        }
        ui.horizontal(|ui| {
            ui.label(RichText::new(i18n.t("guest-balance")).color(theme::TEXT_MUTED));
            ui.label(
                RichText::new(card_data.balance.to_string())
                    .text_style(theme::big_text())
                    .color(theme::ACCENT),
            );
        });
        value_row(ui, &i18n.t("guest-available"), &card_data.available.to_string());
        let group = i18n.t_args(
            "guest-group-value",
            &[
                ("group", Arg::Text(card_data.group.name.clone())),
                ("discount", Arg::Text(percent_text(card_data.group.discount_bp))),
            ],
        );
        value_row(ui, &i18n.t("guest-group"), &group);
        for stamp in &card_data.stamps {
            value_row(ui, &stamp.card_name, &format!("{} / {}", stamp.collected, stamp.needed));
        }
        let promos = i18n.t_args(
            "guest-promotions-count",
            &[("count", Arg::Number(card_data.promotions.len() as i64))],
        );
        value_row(ui, &i18n.t("guest-promotions"), &promos);
        if let Some(visits) = card_data.daily_visits {
            let left = i18n.t_args(
                "guest-visits-left-value",
                &[
                    ("left", Arg::Number(visits.left())),
                    ("limit", Arg::Number(visits.limit)),
                ],
            );
            value_row(ui, &i18n.t("guest-visits-left"), &left);
        }
    });
    // Side by side on a wide screen; stacked in the side panel, where the labels would not fit.
    let views = [
        ("guest-stamps", Event::ShowStamps),
        ("guest-check-promotions", Event::ShowPromotions),
    ];
    if cx.wide {
        ui.horizontal(|ui| {
            let half = egui::vec2(theme::button_width(ui, 2), theme::TOUCH_HEIGHT);
            for (key, event) in views {
                if theme::sized_button(ui, &i18n.t(key), Tone::Normal, true, half).clicked() {
                    events.push(event);
                }
            }
        });
    } else {
        for (key, event) in views {
            if wide_button(ui, &i18n.t(key), Tone::Normal, true).clicked() {
                events.push(event);
            }
        }
    }
    if !cx.wide {
        order_summary(ui, state, cx, events);
    }
    if state.is_busy() {
        busy_line(ui, &i18n.t("payment-calculating"));
    }
}

/// Basis points as a percentage for people: 500 -> "5", 1250 -> "12,5".
pub fn percent_text(bp: i64) -> String {
    if bp % 100 == 0 {
        (bp / 100).to_string()
    } else {
        format!("{},{}", bp / 100, format!("{:02}", bp % 100).trim_end_matches('0'))
    }
}

fn stamps(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    title(ui, &i18n.t("stamps-title"));
    let Some(card_data) = &state.guest else {
        return;
    };
    if card_data.stamps.is_empty() {
        ui.label(i18n.t("stamps-none"));
    }
    for stamp in &card_data.stamps {
        card(ui, |ui| {
            ui.label(RichText::new(&stamp.card_name).strong());
            let progress = i18n.t_args(
                "stamps-progress",
                &[
                    ("collected", Arg::Number(stamp.collected)),
                    ("needed", Arg::Number(stamp.needed)),
                ],
            );
            stamp_dots(ui, stamp.collected, stamp.needed);
            ui.label(RichText::new(progress).strong());
            let reward_key = if stamp.collected >= stamp.needed {
                "stamps-reward-ready"
            } else {
                "stamps-reward"
            };
            ui.label(i18n.t_args(reward_key, &[("reward", Arg::Text(stamp.reward.clone()))]));
        });
    }
    if wide_button(ui, &i18n.t("back"), Tone::Normal, true).clicked() {
        events.push(Event::Back);
    }
}

/// One circle per stamp: filled when collected. A card of more than 20 stamps is drawn as 20.
fn stamp_dots(ui: &mut Ui, collected: i64, needed: i64) {
    const RADIUS: f32 = 12.0;
    const MAX_DRAWN: i64 = 20;
    let shown = needed.clamp(0, MAX_DRAWN);
    let filled = if needed > MAX_DRAWN {
        collected * MAX_DRAWN / needed.max(1)
    } else {
        collected
    };
    let step = RADIUS * 2.0 + 6.0;
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(step * shown as f32, RADIUS * 2.0 + 4.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    for i in 0..shown {
        let center = egui::pos2(rect.left() + RADIUS + 2.0 + step * i as f32, rect.center().y);
        if i < filled {
            painter.circle_filled(center, RADIUS, theme::ACCENT);
        } else {
            painter.circle_stroke(center, RADIUS, egui::Stroke::new(2.0, theme::CARD_BORDER));
        }
    }
}

fn promotions(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    title(ui, &i18n.t("promotions-title"));
    let Some(card_data) = &state.guest else {
        return;
    };
    if card_data.promotions.is_empty() {
        ui.label(i18n.t("promotions-none"));
    }
    for promo in &card_data.promotions {
        card(ui, |ui| {
            ui.label(RichText::new(&promo.name).strong());
            ui.label(&promo.description);
            let until = i18n.t_args("promotions-until", &[("date", Arg::Text(date_text(promo.ends_at)))]);
            ui.label(RichText::new(until).color(theme::TEXT_MUTED));
        });
    }
    if wide_button(ui, &i18n.t("back"), Tone::Normal, true).clicked() {
        events.push(Event::Back);
    }
}

/// `dd.mm.yyyy` (UTC) from Unix seconds.
pub fn date_text(unix: i64) -> String {
    let (year, month, day) = crate::domain::civil_date(unix);
    format!("{day:02}.{month:02}.{year}")
}

fn confirm_replace(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    let name = state.guest.as_ref().map(|g| g.name.clone()).unwrap_or_default();
    let new_name = match &state.screen {
        Screen::ConfirmReplace { identification } => identification.card.name.clone(),
        _ => String::new(),
    };
    title(ui, &i18n.t("replace-title"));
    ui.label(i18n.t_args(
        "replace-question",
        &[("name", Arg::Text(name)), ("new", Arg::Text(new_name))],
    ));
    if wide_button(ui, &i18n.t("replace-yes"), Tone::Primary, true).clicked() {
        events.push(Event::ReplaceGuest(true));
    }
    if wide_button(ui, &i18n.t("replace-no"), Tone::Normal, true).clicked() {
        events.push(Event::ReplaceGuest(false));
    }
}

fn amounts_card(ui: &mut Ui, quote: &SpendQuote, cx: &ScreenContext<'_>, state: &State) {
    let i18n = cx.i18n;
    card(ui, |ui| {
        value_row(ui, &i18n.t("payment-subtotal"), &state.order.subtotal().to_string());
        let discount = state.order.subtotal().saturating_sub(quote.amount_due);
        if discount > Kopecks::ZERO {
            value_row(ui, &i18n.t("payment-discount"), &format!("−{discount}"));
        }
        value_row(ui, &i18n.t("payment-due"), &quote.amount_due.to_string());
        gift_lines(ui, state, i18n, "payment-gift");
    });
}

/// The gifts on the order, one line each: redeemed when the check is paid, and listed on the
/// payment screens (`payment-gift`) and the receipt (`done-gift`).
pub(super) fn gift_lines(ui: &mut Ui, state: &State, i18n: &I18n, key: &str) {
    for gift in state.order.lines.iter().filter_map(|l| l.gift.as_ref()) {
        let text = i18n.t_args(key, &[("gift", Arg::Text(gift.name.clone()))]);
        ui.add(egui::Label::new(RichText::new(text).color(theme::GIFT).strong()).wrap());
    }
}

fn payment_choice(ui: &mut Ui, state: &State, quote: &SpendQuote, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    title(ui, &i18n.t("payment-choice-title"));
    amounts_card(ui, quote, cx, state);
    let keep = i18n.t_args(
        "payment-keep",
        &[("accrual", money_arg(quote.accrual_for(Kopecks::ZERO)))],
    );
    if wide_button(ui, &keep, Tone::Primary, true).clicked() {
        events.push(Event::ChoosePaymentMode(PaymentMode::Keep));
    }
    let spend = i18n.t_args("payment-spend", &[("max", money_arg(quote.max_spend))]);
    let can_spend = quote.max_spend > Kopecks::ZERO;
    if wide_button(ui, &spend, Tone::Primary, can_spend).clicked() {
        events.push(Event::ChoosePaymentMode(PaymentMode::Spend));
    }
    if !can_spend {
        ui.label(RichText::new(i18n.t("payment-nothing-to-spend")).color(theme::TEXT_MUTED));
        limits_explanation(ui, quote, cx);
    }
    if wide_button(ui, &i18n.t("cancel"), Tone::Normal, true).clicked() {
        events.push(Event::CancelPayment);
    }
}

/// Why the maximum is what it is: every limit, the deciding one marked.
fn limits_explanation(ui: &mut Ui, quote: &SpendQuote, cx: &ScreenContext<'_>) {
    let i18n = cx.i18n;
    let binding = quote.binding_limit().map(|l| l.kind);
    card(ui, |ui| {
        ui.label(RichText::new(i18n.t("limits-title")).strong());
        for limit in &quote.limits {
            let label = match limit.kind {
                SpendLimitKind::Available => i18n.t("limit-available"),
                SpendLimitKind::CheckPercent => i18n.t_args(
                    "limit-check-percent",
                    &[("percent", Arg::Text(percent_text(quote.max_check_bp)))],
                ),
                SpendLimitKind::DailyLimit => i18n.t("limit-daily"),
                SpendLimitKind::AmountDue => i18n.t("limit-amount-due"),
            };
            let deciding = Some(limit.kind) == binding;
            theme::row(ui, |ui| {
                let marker = if deciding { "• " } else { "   " };
                let text = RichText::new(format!("{marker}{label}"));
                ui.label(if deciding {
                    text.strong().color(theme::ACCENT)
                } else {
                    text.color(theme::TEXT_MUTED)
                });
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let value = RichText::new(limit.amount.to_string());
                    ui.label(if deciding {
                        value.strong().color(theme::ACCENT)
                    } else {
                        value
                    });
                });
            });
        }
        if quote.spend_step > Kopecks(1) {
            let step = i18n.t_args("limit-step", &[("step", money_arg(quote.spend_step))]);
            ui.label(RichText::new(step).color(theme::TEXT_MUTED).small());
        }
    });
}

fn payment(
    ui: &mut Ui,
    state: &State,
    mode: PaymentMode,
    quote: &SpendQuote,
    cx: &ScreenContext<'_>,
    events: &mut Vec<Event>,
) {
    if cx.wide {
        // Full screen: what the guest owes and why on the left, what the cashier types on the right.
        ui.columns(2, |columns| {
            payment_summary(&mut columns[0], state, mode, quote, cx);
            payment_inputs(&mut columns[1], state, mode, quote, cx, events);
        });
    } else {
        payment_summary(ui, state, mode, quote, cx);
        payment_inputs(ui, state, mode, quote, cx, events);
    }
}

fn payment_summary(ui: &mut Ui, state: &State, mode: PaymentMode, quote: &SpendQuote, cx: &ScreenContext<'_>) {
    let i18n = cx.i18n;
    let title_key = if mode == PaymentMode::Spend {
        "payment-spend-title"
    } else {
        "payment-keep-title"
    };
    title(ui, &i18n.t(title_key));
    amounts_card(ui, quote, cx, state);
    if mode == PaymentMode::Spend {
        let max = i18n.t_args("payment-max", &[("max", money_arg(quote.max_spend))]);
        ui.label(RichText::new(max).strong());
        limits_explanation(ui, quote, cx);
    } else {
        let accrual = i18n.t_args(
            "payment-accrual-preview",
            &[("accrual", money_arg(quote.accrual_for(Kopecks::ZERO)))],
        );
        ui.label(accrual);
    }
}

fn payment_inputs(
    ui: &mut Ui,
    state: &State,
    mode: PaymentMode,
    quote: &SpendQuote,
    cx: &ScreenContext<'_>,
    events: &mut Vec<Event>,
) {
    let i18n = cx.i18n;
    if mode == PaymentMode::Spend {
        ui.label(i18n.t("payment-spend-label"));
        field(ui, state, Field::Spend, &i18n.t("payment-amount-placeholder"), events);
        ui.horizontal(|ui| {
            let size = egui::vec2(theme::button_width(ui, 3), theme::TOUCH_HEIGHT);
            let presets = [
                ("payment-preset-max", SpendPreset::Max),
                ("payment-preset-half", SpendPreset::Half),
                ("payment-preset-zero", SpendPreset::Zero),
            ];
            for (key, preset) in presets {
                if theme::sized_button(ui, &i18n.t(key), Tone::Normal, !state.is_busy(), size).clicked() {
                    events.push(Event::SpendPreset(preset));
                }
            }
        });
        // Seed 003: more cards, of this guest or another, pay the same check.
        let add_card = egui::vec2(ui.available_width(), theme::TOUCH_HEIGHT);
        if theme::sized_button(ui, &i18n.t("split-add-card"), Tone::Normal, !state.is_busy(), add_card).clicked() {
            events.push(Event::AddCard);
        }
    }
    // A wrong amount shows its reason under the field at once, and no remainder or change
    // computed from it.
    let spend_problem = state.spend_problem(quote, mode);
    match (&spend_problem, state.form_spent(mode)) {
        (None, Ok(spent)) => {
            let remainder = State::remainder(quote, spent);
            card(ui, |ui| {
                value_row(ui, &i18n.t("payment-remainder"), &remainder.to_string());
                if mode == PaymentMode::Spend {
                    value_row(ui, &i18n.t("payment-accrual"), &quote.accrual_for(spent).to_string());
                }
            });
        }
        (Some(problem), _) => problem_line(ui, &i18n.notice(problem)),
        (None, Err(_)) => {}
    }
    ui.horizontal(|ui| {
        let size = egui::vec2(theme::button_width(ui, 2), theme::TOUCH_HEIGHT);
        for (method, key) in [(TenderMethod::Cash, "tender-cash"), (TenderMethod::Card, "tender-card")] {
            let selected = state.tender == method;
            let button = egui::Button::new(i18n.t(key)).min_size(size).selected(selected);
            if ui.add(button).clicked() {
                events.push(Event::SetTender(method));
            }
        }
    });
    let blocker = state.payment_blocker(quote, mode);
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
        if blocker.is_none()
            && let Some(change) = state.change(quote, mode)
        {
            value_row(ui, &i18n.t("payment-change"), &change.to_string());
        }
    }
    keypad(ui, i18n, KeypadKey::Comma, true, events);
}

/// Whether [`actions`] draws anything for this screen.
pub fn has_actions(state: &State) -> bool {
    match &state.screen {
        Screen::Returns(step) => super::returns::has_actions(step),
        screen => matches!(
            screen,
            Screen::AddGuest
                | Screen::Enrol(_)
                | Screen::Order
                | Screen::Guest
                | Screen::Payment { .. }
                | Screen::Done { .. }
                | Screen::Split(_)
                | Screen::SplitDone { .. }
        ),
    }
}

/// The screen's main action, in a bar pinned above the status line: on screen at 420x700 and
/// 1024x768 whatever the length of what scrolls above it. A disabled action says why above it.
pub fn actions(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    let single = match &state.screen {
        Screen::AddGuest => Some(("add-guest-find", !state.is_busy(), Event::SubmitCode)),
        Screen::Enrol(_) => Some(("enrol-submit", !state.is_busy(), Event::SubmitEnrol)),
        Screen::Order => Some(("order-done", true, Event::Back)),
        Screen::Done { .. } => Some(("done-new-order", true, Event::NewOrder)),
        _ => None,
    };
    if let Some((key, enabled, event)) = single {
        if wide_button(ui, &i18n.t(key), Tone::Primary, enabled).clicked() {
            events.push(event);
        }
        return;
    }
    match &state.screen {
        Screen::Returns(step) => super::returns::actions(ui, state, step, i18n, events),
        Screen::Split(_) | Screen::SplitDone { .. } => super::split::actions(ui, state, i18n, events),
        Screen::Guest => {
            let blocker = state.start_payment_blocker();
            if let Some(problem) = &blocker {
                problem_line(ui, &i18n.notice(problem));
            }
            let can_pay = !state.is_busy() && blocker.is_none();
            if wide_button(ui, &i18n.t("guest-pay"), Tone::Primary, can_pay).clicked() {
                events.push(Event::StartPayment);
            }
        }
        Screen::Payment { mode, quote } => {
            let blocker = state.payment_blocker(quote, *mode);
            if let Some(problem) = &blocker {
                problem_line(ui, &i18n.notice(problem));
            }
            let can_pay = !state.is_busy() && blocker.is_none();
            ui.horizontal(|ui| {
                let cancel_width = (ui.available_width() * 0.32).max(110.0);
                let pay = egui::vec2(
                    ui.available_width() - cancel_width - ui.spacing().item_spacing.x,
                    theme::PRIMARY_HEIGHT,
                );
                if theme::sized_button(ui, &i18n.t("payment-confirm"), Tone::Primary, can_pay, pay).clicked() {
                    events.push(Event::ConfirmPayment);
                }
                let cancel = egui::vec2(ui.available_width(), theme::PRIMARY_HEIGHT);
                if theme::sized_button(ui, &i18n.t("cancel"), Tone::Normal, true, cancel).clicked() {
                    events.push(Event::CancelPayment);
                }
            });
        }
        _ => {}
    }
}

/// A refusal where the cashier is looking: under the field or beside the disabled button.
fn problem_line(ui: &mut Ui, text: &str) {
    ui.add(egui::Label::new(RichText::new(text).color(theme::DANGER).strong()).wrap());
}

fn processing(ui: &mut Ui, payment: &PaymentInProgress, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    let key = match payment.stage {
        PaymentStage::Holding => "processing-hold",
        PaymentStage::Committing => "processing-commit",
        PaymentStage::Voiding => "processing-void",
    };
    busy_line(ui, &i18n.t(key));
    let can_cancel = payment.stage == PaymentStage::Holding && !payment.cancel_requested;
    if wide_button(ui, &i18n.t("cancel"), Tone::Normal, can_cancel).clicked() {
        events.push(Event::CancelPayment);
    }
}

fn done(ui: &mut Ui, state: &State, cx: &ScreenContext<'_>, events: &mut Vec<Event>) {
    let i18n = cx.i18n;
    let Screen::Done {
        receipt, provisional, ..
    } = &state.screen
    else {
        return;
    };
    // A receipt the till made alone must not look final.
    let (fill, title_key, balance_key) = if *provisional {
        (theme::INFO_BG, "done-title-provisional", "done-balance-provisional")
    } else {
        (theme::SUCCESS_BG, "done-title", "done-balance")
    };
    egui::Frame::new()
        .fill(fill)
        .corner_radius(8.0)
        .inner_margin(16.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(
                RichText::new(i18n.t(title_key))
                    .text_style(egui::TextStyle::Heading)
                    .strong(),
            );
            if let Some(notice) = &state.notice {
                ui.label(RichText::new(i18n.notice(notice)).text_style(egui::TextStyle::Heading));
            }
            if *provisional {
                ui.label(RichText::new(i18n.t("done-provisional-note")).color(theme::TEXT_MUTED));
            }
            gift_lines(ui, state, i18n, "done-gift");
            value_row(ui, &i18n.t(balance_key), &receipt.balance_after.to_string());
            if let Some(group) = &receipt.new_group {
                ui.label(i18n.t_args("done-new-group", &[("group", Arg::Text(group.clone()))]));
            }
        });
    // A provisional check is not on the server yet: it cannot be returned until it is.
    if !*provisional && wide_button(ui, &i18n.t("done-return"), Tone::Normal, !state.is_busy()).clicked() {
        events.push(Event::OpenReturns { last_check: true });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_percents_for_people() {
        assert_eq!(date_text(0), "01.01.1970");
        assert_eq!(date_text(1_795_392_000), "23.11.2026");
        assert_eq!(date_text(951_782_400), "29.02.2000");
        assert_eq!(percent_text(500), "5");
        assert_eq!(percent_text(1250), "12,5");
        assert_eq!(percent_text(5), "0,05");
    }
}
