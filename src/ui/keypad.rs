//! The on-screen keypad and the text field it types into.

use super::theme;
use crate::i18n::I18n;
use crate::workflow::{Event, Field, KeypadKey, State};
use egui::{RichText, Ui, Vec2};

/// A field bound to the workflow state. Keyboard edits and focus become events; the field text
/// itself lives in the state, so the keypad and the keyboard type into the same place.
pub fn field(ui: &mut Ui, state: &State, field: Field, hint: &str, events: &mut Vec<Event>) -> egui::Response {
    let mut text = state.fields.get(field).to_string();
    let active = state.active_field == Some(field);
    let response = ui.add(
        egui::TextEdit::singleline(&mut text)
            .hint_text(hint)
            .font(egui::TextStyle::Heading)
            .min_size(Vec2::new(ui.available_width(), theme::TOUCH_HEIGHT))
            .desired_width(ui.available_width())
            .margin(Vec2::new(12.0, 12.0))
            .background_color(if active { theme::CARD_BG } else { theme::PANEL_BG }),
    );
    if response.changed() {
        events.push(Event::FieldEdited(field, text));
    }
    if response.gained_focus() || (response.clicked() && !active) {
        events.push(Event::FocusField(field));
    }
    response
}

/// Digits in a 3x4 grid with one extra key (`+` for phones on the code screen, `,` for
/// amounts), backspace and clear.
pub fn keypad(ui: &mut Ui, i18n: &I18n, extra: KeypadKey, enabled: bool, events: &mut Vec<Event>) {
    digit_rows(ui, i18n, extra, enabled, events);
    clear_row(ui, i18n, enabled, events);
}

/// «Очистить», the keypad's full width.
fn clear_row(ui: &mut Ui, i18n: &I18n, enabled: bool, events: &mut Vec<Event>) {
    let clear = theme::sized_button(
        ui,
        &i18n.t("keypad-clear"),
        theme::Tone::Normal,
        enabled,
        Vec2::new(ui.available_width(), theme::TOUCH_HEIGHT),
    );
    if clear.clicked() {
        events.push(Event::Keypad(KeypadKey::Clear));
    }
}

/// A letter key's size with `per_row` of them across: below the usual 60 px minimum width in
/// the side panel (about 50 px at seven, 46 at eight), at full touch height. Letter rows set the
/// buttons' side padding to 2 px, as a letter is narrower than the usual padding allows for.
fn letter_key_size(ui: &Ui, per_row: usize) -> Vec2 {
    let spacing = ui.spacing().item_spacing.x;
    let width = ((ui.available_width() - spacing * (per_row as f32 - 1.0)) / per_row as f32).floor();
    Vec2::new(width, theme::TOUCH_HEIGHT + 4.0)
}

/// The letters codes are made of (gift codes such as G100002; codes are Latin capitals, digits
/// and the hyphen), seven to a row, with backspace in the last place.
const LETTER_ROWS: [&str; 4] = ["ABCDEFG", "HIJKLMN", "OPQRSTU", "VWXYZ-"];

/// The code screen's keypad: the digits with `+`, or the letters, switched by «ABC» / «123»
/// beside «Очистить». Which one shows is the screen's own matter, kept in egui's memory.
pub fn code_keypad(ui: &mut Ui, i18n: &I18n, enabled: bool, events: &mut Vec<Event>) {
    let id = ui.make_persistent_id("code_keypad_letters");
    let letters = ui.data(|d| d.get_temp::<bool>(id)).unwrap_or(false);
    if letters {
        let size = letter_key_size(ui, 7);
        for (i, row) in LETTER_ROWS.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.spacing_mut().button_padding.x = 2.0;
                let mut keys: Vec<KeypadKey> = row.chars().map(KeypadKey::Letter).collect();
                if i + 1 == LETTER_ROWS.len() {
                    keys.push(KeypadKey::Backspace);
                }
                for key in keys {
                    let label = match key {
                        KeypadKey::Backspace => i18n.t("keypad-backspace-short"),
                        key => key_label(i18n, key),
                    };
                    let button =
                        egui::Button::new(RichText::new(label).text_style(egui::TextStyle::Heading)).min_size(size);
                    let response = ui.add_enabled(enabled, button);
                    let response = if key == KeypadKey::Backspace {
                        response.on_hover_text(i18n.t("keypad-backspace"))
                    } else {
                        response
                    };
                    if response.clicked() {
                        events.push(Event::Keypad(key));
                    }
                }
            });
        }
    } else {
        digit_rows(ui, i18n, KeypadKey::Plus, enabled, events);
    }
    ui.horizontal(|ui| {
        let size = Vec2::new(theme::button_width(ui, 2), theme::TOUCH_HEIGHT);
        let switch = if letters { "keypad-digits" } else { "keypad-letters" };
        if theme::sized_button(ui, &i18n.t(switch), theme::Tone::Normal, enabled, size).clicked() {
            ui.data_mut(|d| d.insert_temp(id, !letters));
        }
        if theme::sized_button(ui, &i18n.t("keypad-clear"), theme::Tone::Normal, enabled, size).clicked() {
            events.push(Event::Keypad(KeypadKey::Clear));
        }
    });
}

/// The Russian alphabet, eight to a row, for a guest's name; the last row has the space and the
/// hyphen. The workflow writes a word's first letter capital and the rest small.
const NAME_ROWS: [&str; 4] = ["АБВГДЕЁЖ", "ЗИЙКЛМНО", "ПРСТУФХЦ", "ЧШЩЪЫЬЭЮ"];

/// The name field's keypad: the letters, then «Я», the hyphen, «Пробел» and backspace, then
/// «Очистить».
pub fn name_keypad(ui: &mut Ui, i18n: &I18n, enabled: bool, events: &mut Vec<Event>) {
    let spacing = ui.spacing().item_spacing.x;
    let size = letter_key_size(ui, 8);
    let width = size.x;
    let mut key = |ui: &mut Ui, label: String, key: KeypadKey, size: Vec2| {
        let button = egui::Button::new(RichText::new(label).text_style(egui::TextStyle::Heading)).min_size(size);
        if ui.add_enabled(enabled, button).clicked() {
            events.push(Event::Keypad(key));
        }
    };
    for row in NAME_ROWS {
        ui.horizontal(|ui| {
            ui.spacing_mut().button_padding.x = 2.0;
            for c in row.chars() {
                key(ui, c.to_string(), KeypadKey::Letter(c), size);
            }
        });
    }
    ui.horizontal(|ui| {
        ui.spacing_mut().button_padding.x = 2.0;
        key(ui, "Я".to_string(), KeypadKey::Letter('Я'), size);
        key(ui, "-".to_string(), KeypadKey::Letter('-'), size);
        let space = Vec2::new(width * 4.0 + spacing * 3.0, size.y);
        key(ui, i18n.t("keypad-space"), KeypadKey::Letter(' '), space);
        let backspace = Vec2::new(width * 2.0 + spacing, size.y);
        key(ui, i18n.t("keypad-backspace-short"), KeypadKey::Backspace, backspace);
    });
    clear_row(ui, i18n, enabled, events);
}

fn digit_rows(ui: &mut Ui, i18n: &I18n, extra: KeypadKey, enabled: bool, events: &mut Vec<Event>) {
    let width = theme::button_width(ui, 3);
    let size = Vec2::new(width, theme::TOUCH_HEIGHT + 4.0);
    let rows: [[KeypadKey; 3]; 4] = [
        [KeypadKey::Digit(1), KeypadKey::Digit(2), KeypadKey::Digit(3)],
        [KeypadKey::Digit(4), KeypadKey::Digit(5), KeypadKey::Digit(6)],
        [KeypadKey::Digit(7), KeypadKey::Digit(8), KeypadKey::Digit(9)],
        [extra, KeypadKey::Digit(0), KeypadKey::Backspace],
    ];
    for row in rows {
        ui.horizontal(|ui| {
            for key in row {
                let label = key_label(i18n, key);
                let button =
                    egui::Button::new(RichText::new(label).text_style(egui::TextStyle::Heading)).min_size(size);
                if ui.add_enabled(enabled, button).clicked() {
                    events.push(Event::Keypad(key));
                }
            }
        });
    }
}

fn key_label(i18n: &I18n, key: KeypadKey) -> String {
    match key {
        KeypadKey::Digit(d) => d.to_string(),
        KeypadKey::Comma => ",".to_string(),
        KeypadKey::Plus => "+".to_string(),
        KeypadKey::Letter(c) => c.to_string(),
        KeypadKey::Backspace => i18n.t("keypad-backspace"),
        KeypadKey::Clear => i18n.t("keypad-clear"),
    }
}
