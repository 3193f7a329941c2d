//! Colours, sizes and the few widgets every screen shares. No colour literal lives elsewhere.

use egui::{Color32, FontFamily, FontId, Response, RichText, Stroke, TextStyle, Ui, Vec2};

/// Every control the cashier presses is at least this tall (logical pixels): a finger, not a mouse.
pub const TOUCH_HEIGHT: f32 = 56.0;
/// The main action of a screen is taller still.
pub const PRIMARY_HEIGHT: f32 = 68.0;
/// The brand button on the idle screen.
pub const BRAND_HEIGHT: f32 = 120.0;

pub const ACCENT: Color32 = Color32::from_rgb(0x0b, 0x7a, 0x5c);
pub const ACCENT_TEXT: Color32 = Color32::WHITE;
pub const DANGER: Color32 = Color32::from_rgb(0xc6, 0x28, 0x28);
pub const SUCCESS_BG: Color32 = Color32::from_rgb(0xe3, 0xf4, 0xea);
pub const ERROR_BG: Color32 = Color32::from_rgb(0xfd, 0xe7, 0xe7);
pub const INFO_BG: Color32 = Color32::from_rgb(0xe8, 0xf0, 0xfb);
pub const TEXT_STRONG: Color32 = Color32::from_rgb(0x16, 0x1b, 0x22);
pub const TEXT_MUTED: Color32 = Color32::from_rgb(0x5c, 0x66, 0x70);
pub const PANEL_BG: Color32 = Color32::from_rgb(0xf4, 0xf6, 0xf8);
pub const CARD_BG: Color32 = Color32::WHITE;
pub const CARD_BORDER: Color32 = Color32::from_rgb(0xd5, 0xdb, 0xe1);
pub const GIFT: Color32 = Color32::from_rgb(0xb2, 0x5e, 0x00);
pub const STATUS_BG: Color32 = Color32::from_rgb(0x26, 0x32, 0x38);
pub const STATUS_TEXT: Color32 = Color32::from_rgb(0xec, 0xef, 0xf1);
pub const STATUS_ERROR: Color32 = Color32::from_rgb(0xff, 0x8a, 0x80);

pub fn big_text() -> TextStyle {
    TextStyle::Name("big".into())
}

/// Light, high-contrast, large: a touchscreen at arm's length in a bright room.
pub fn apply(ctx: &egui::Context) {
    ctx.set_theme(egui::ThemePreference::Light);
    // egui's fonts have no rouble sign: a subset of DejaVu Sans with it (assets/fonts/README.md)
    // comes after them in every family.
    let families = [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
        .into_iter()
        .map(|family| egui::epaint::text::InsertFontFamily {
            family,
            priority: egui::epaint::text::FontPriority::Lowest,
        })
        .collect();
    ctx.add_font(egui::epaint::text::FontInsert::new(
        "DejaVuSans-rouble",
        egui::FontData::from_static(include_bytes!("../../assets/fonts/DejaVuSans-rouble.ttf")),
        families,
    ));
    ctx.all_styles_mut(|style| {
        style.visuals = egui::Visuals::light();
        style.visuals.panel_fill = PANEL_BG;
        style.visuals.selection.bg_fill = ACCENT;
        style.visuals.selection.stroke = Stroke::new(1.0, ACCENT_TEXT);
        // A blinking cursor redraws the whole window twice a second for as long as the code
        // field waits for a guest (most of a till's day); a steady one costs nothing at idle.
        style.visuals.text_cursor.blink = false;
        style.text_styles = [
            // Nothing the cashier must read is under 16 px.
            (TextStyle::Small, FontId::new(16.0, FontFamily::Proportional)),
            (TextStyle::Body, FontId::new(20.0, FontFamily::Proportional)),
            (TextStyle::Button, FontId::new(22.0, FontFamily::Proportional)),
            (TextStyle::Heading, FontId::new(28.0, FontFamily::Proportional)),
            (TextStyle::Monospace, FontId::new(20.0, FontFamily::Monospace)),
            (big_text(), FontId::new(40.0, FontFamily::Proportional)),
        ]
        .into();
        style.spacing.interact_size.y = TOUCH_HEIGHT;
        style.spacing.button_padding = Vec2::new(14.0, 10.0);
        style.spacing.item_spacing = Vec2::new(10.0, 10.0);
        // Each glyph once per size, not at four sub-pixel offsets: the first frame's glyphs are
        // rasterised in about 5 ms instead of 6 (scripts/till-bench.sh's runs, this machine), and
        // at 16 px and up the offsets' evener spacing cannot be seen (egui: they also blur).
        style.visuals.text_options.subpixel_binning = false;
    });
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Normal,
    Primary,
    Danger,
}

/// A full-width touch button, its text centred.
pub fn wide_button(ui: &mut Ui, text: &str, tone: Tone, enabled: bool) -> Response {
    ui.vertical_centered_justified(|ui| {
        sized_button(
            ui,
            text,
            tone,
            enabled,
            Vec2::new(ui.available_width(), height_for(tone)),
        )
    })
    .inner
}

/// Height of a line of text in a card: rows are read, not pressed, so they need not be
/// touch-sized.
pub const ROW_HEIGHT: f32 = 30.0;

/// A horizontal row of text, as tall as the text rather than a touch target.
pub fn row<R>(ui: &mut Ui, add: impl FnOnce(&mut Ui) -> R) -> R {
    ui.scope(|ui| {
        ui.spacing_mut().interact_size.y = ROW_HEIGHT;
        ui.spacing_mut().item_spacing.y = 4.0;
        ui.horizontal(add).inner
    })
    .inner
}

/// A touch button of a given width (for rows of buttons).
pub fn sized_button(ui: &mut Ui, text: &str, tone: Tone, enabled: bool, size: Vec2) -> Response {
    let (fill, color) = match tone {
        Tone::Normal => (None, TEXT_STRONG),
        Tone::Primary => (Some(ACCENT), ACCENT_TEXT),
        Tone::Danger => (Some(DANGER), ACCENT_TEXT),
    };
    let mut button = egui::Button::new(RichText::new(text).color(color)).min_size(size);
    if let Some(fill) = fill {
        button = button.fill(fill);
    }
    ui.add_enabled(enabled, button)
}

fn height_for(tone: Tone) -> f32 {
    if tone == Tone::Primary {
        PRIMARY_HEIGHT
    } else {
        TOUCH_HEIGHT
    }
}

/// Lays out `n` equal buttons across the available width.
pub fn button_width(ui: &Ui, n: usize) -> f32 {
    let spacing = ui.spacing().item_spacing.x;
    ((ui.available_width() - spacing * (n as f32 - 1.0)) / n as f32).max(60.0)
}

/// A white card with a border, for the guest card and lists.
pub fn card<R>(ui: &mut Ui, add: impl FnOnce(&mut Ui) -> R) -> R {
    egui::Frame::new()
        .fill(CARD_BG)
        .stroke(Stroke::new(1.0, CARD_BORDER))
        .corner_radius(8.0)
        .inner_margin(12.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            add(ui)
        })
        .inner
}

/// A label / value row: the label muted on the left, the value strong on the right.
pub fn value_row(ui: &mut Ui, label: &str, value: &str) {
    row(ui, |ui| {
        ui.label(RichText::new(label).color(TEXT_MUTED));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(RichText::new(value).color(TEXT_STRONG).strong());
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character of every string in `locales/` has a glyph in the fonts the till draws
    /// with (no empty boxes, such as «Цена, ₽» had), in every text style the screens use.
    #[test]
    fn every_locale_character_has_a_glyph() {
        let ctx = egui::Context::default();
        apply(&ctx);
        let mut output = ctx.run_ui(egui::RawInput::default(), |_| {});
        output.textures_delta.clear();
        let mut missing = std::collections::BTreeSet::new();
        for (name, text) in [
            ("ru", include_str!("../../locales/ru/main.ftl")),
            ("en", include_str!("../../locales/en/main.ftl")),
        ] {
            let values = text
                .lines()
                .filter(|line| !line.trim_start().starts_with('#'))
                .filter_map(|line| line.split_once('=').map(|(_, value)| value));
            for ch in values.flat_map(str::chars).filter(|c| !c.is_control()) {
                for family in [FontFamily::Proportional, FontFamily::Monospace] {
                    let font = FontId::new(20.0, family.clone());
                    if !ctx.fonts_mut(|fonts| fonts.has_glyph(&font, ch)) {
                        missing.insert(format!("{name}: {ch:?} (U+{:04X}) in {family:?}", ch as u32));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "no glyph for:\n{}",
            missing.into_iter().collect::<Vec<_>>().join("\n")
        );
    }

    /// Nothing the cashier must read is drawn under 16 px.
    #[test]
    fn no_text_style_is_under_16_px() {
        let ctx = egui::Context::default();
        apply(&ctx);
        ctx.global_style().text_styles.iter().for_each(|(style, font)| {
            assert!(font.size >= 16.0, "{style:?} is {} px", font.size);
        });
    }
}
