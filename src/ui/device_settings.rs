//! «Устройства» in the menu: every port, HID interface and USB device the system lists, merged
//! with `config.toml`; a role per device (and a serial port's baud rate and end of read); and a
//! test view of every read while the screen is open. Detection runs on a thread of its own and
//! `logic` takes its result; reads reach [`DevicesScreen::record`] from the app, which does not
//! identify a guest with them while the screen is open. The config changes are
//! [`inventory::apply`]'s, made by the app.

use super::theme;
use crate::devices::framing::{DropReason, Terminator};
use crate::devices::inventory::{self, DeviceChange, DeviceEntry, DeviceKey, DeviceRole, Inventory, ListKind};
use crate::devices::{DeviceMessage, DeviceStatus};
use crate::diagnostics::{ReadCheck, ReadDetail, check_line, check_read};
use crate::domain::ScanKind;
use crate::i18n::{Arg, I18n};
use crate::scan::escape::EscapeError;
use crate::scan::{ScanError, ScanParseConfig};
use egui::{RichText, Ui};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};

/// Lists what is plugged in; blocking, so it runs on the detection thread.
pub type Detector = Arc<dyn Fn() -> Inventory + Send + Sync>;

/// The test view keeps the latest reads only: it is for watching a device now.
const KEPT_READS: usize = 20;

/// One line of the test view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestRead {
    Read {
        source: String,
        check: ReadCheck,
    },
    /// Bytes the framer threw away.
    Dropped {
        source: String,
        dropped: usize,
        reason: DropReason,
    },
}

/// What the screen asks the app to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicesCommand {
    /// Change the config, save it and restart the device readers with it.
    Change(DeviceChange),
    Close,
}

pub struct DevicesScreen {
    open: bool,
    detector: Detector,
    detecting: Option<Receiver<Inventory>>,
    inventory: Option<Inventory>,
    /// Detection could not start or ended without a list: the message key (the reason is logged).
    detect_error: Option<&'static str>,
    /// «Показать все»: also the serial ports the system lists with nothing known on them (the
    /// legacy COM1..COM4 of a motherboard), and the manual line check for a technician.
    show_all: bool,
    /// The row whose settings are shown, by [`DeviceEntry::id`].
    expanded: Option<String>,
    /// Newest first.
    reads: VecDeque<TestRead>,
    typed: String,
    typed_check: Option<Result<ReadCheck, EscapeError>>,
}

impl DevicesScreen {
    pub fn new(detector: Detector) -> DevicesScreen {
        DevicesScreen {
            open: false,
            detector,
            detecting: None,
            inventory: None,
            detect_error: None,
            show_all: false,
            expanded: None,
            reads: VecDeque::new(),
            typed: String::new(),
            typed_check: None,
        }
    }

    /// Lists with this from the next refresh on.
    pub fn set_detector(&mut self, detector: Detector) {
        self.detector = detector;
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Opens the screen with a fresh list.
    pub fn open(&mut self, ctx: &egui::Context) {
        self.open = true;
        self.refresh(ctx);
    }

    pub fn close(&mut self) {
        self.open = false;
    }

    /// The last list detected, once detection has finished.
    pub fn inventory(&self) -> Option<&Inventory> {
        self.inventory.as_ref()
    }

    pub fn detecting(&self) -> bool {
        self.detecting.is_some()
    }

    /// The test view's lines, newest first.
    pub fn reads(&self) -> impl Iterator<Item = &TestRead> {
        self.reads.iter()
    }

    /// Fills the typed line and checks it (the `--scenario devices` screenshot shows one, so the
    /// technician's view under «Показать все» is opened).
    pub fn check_typed(&mut self, line: &str, config: &ScanParseConfig, now: i64) {
        self.show_all = true;
        self.typed = line.to_string();
        self.typed_check = Some(check_line(line, config, now));
    }

    /// Starts detection on its own thread, unless it is already running.
    pub fn refresh(&mut self, ctx: &egui::Context) {
        if self.detecting.is_some() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let detector = Arc::clone(&self.detector);
        let repaint = ctx.clone();
        let started = std::thread::Builder::new()
            .name("device-detect".to_string())
            .spawn(move || {
                // The screen may have been closed meanwhile; then nobody wants the list.
                let _ = tx.send(detector());
                repaint.request_repaint();
            });
        match started {
            Ok(_) => {
                self.detecting = Some(rx);
                self.detect_error = None;
            }
            Err(error) => {
                tracing::error!(%error, "device detection not started");
                self.detect_error = Some("devices-detect-not-started");
            }
        }
    }

    /// Takes the detection thread's list; called from `logic`.
    pub fn poll(&mut self) {
        let Some(rx) = &self.detecting else { return };
        match rx.try_recv() {
            Ok(inventory) => {
                self.inventory = Some(inventory);
                self.detecting = None;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                tracing::error!("device detection ended without a list");
                self.detect_error = Some("devices-detect-no-list");
                self.detecting = None;
            }
        }
    }

    /// A device's message while the screen is open: reads and dropped bytes go to the test view
    /// (masked as they are recorded, so no card data is kept); statuses are on the rows already.
    pub fn record(&mut self, message: &DeviceMessage, scan_config: impl FnOnce(i64) -> ScanParseConfig) {
        let line = match message {
            DeviceMessage::Frame {
                source,
                bytes,
                received_at_ms,
                ..
            } => {
                let now = received_at_ms.div_euclid(1000);
                let check = check_read(bytes, &scan_config(now), now);
                // The screen says it in the cashier's words; the parser's own go here.
                match &check.outcome {
                    Err(error) => tracing::info!(%source, %error, "device test read refused"),
                    Ok(parsed) => {
                        if let ReadDetail::Swipe(tracks) = &parsed.detail {
                            tracing::info!(%source, %tracks, "device test read");
                        }
                    }
                }
                TestRead::Read {
                    source: source.clone(),
                    check,
                }
            }
            DeviceMessage::Noise {
                source,
                dropped,
                reason,
            } => TestRead::Dropped {
                source: source.clone(),
                dropped: *dropped,
                reason: *reason,
            },
            DeviceMessage::Status { .. } => return,
        };
        self.reads.push_front(line);
        self.reads.truncate(KEPT_READS);
    }

    /// Draws the screen; returns what the app should do.
    pub fn show(
        &mut self,
        ui: &mut Ui,
        i18n: &I18n,
        config: &crate::devices::DeviceLines,
        statuses: &BTreeMap<String, DeviceStatus>,
        scan_config: &ScanParseConfig,
    ) -> Vec<DevicesCommand> {
        let mut commands = Vec::new();
        ui.label(
            RichText::new(i18n.t("devices-title"))
                .text_style(egui::TextStyle::Heading)
                .color(theme::TEXT_STRONG)
                .strong(),
        );
        ui.horizontal(|ui| {
            let size = egui::vec2(theme::button_width(ui, 2), theme::TOUCH_HEIGHT);
            if theme::sized_button(
                ui,
                &i18n.t("devices-refresh"),
                theme::Tone::Normal,
                !self.detecting(),
                size,
            )
            .clicked()
            {
                self.refresh(ui.ctx());
            }
            if theme::sized_button(ui, &i18n.t("devices-close"), theme::Tone::Normal, true, size).clicked() {
                commands.push(DevicesCommand::Close);
            }
        });
        // Full screen: the devices beside the test view, so a read shows while a role is chosen.
        if ui.available_width() >= 760.0 {
            // Columns justify wrapped text; a plain top-down layout keeps it ragged, as elsewhere.
            let plain = egui::Layout::top_down(egui::Align::Min);
            ui.columns(2, |columns| {
                columns[0].with_layout(plain, |ui| {
                    theme::card(ui, |ui| self.device_list(ui, i18n, config, statuses, &mut commands))
                });
                columns[1].with_layout(plain, |ui| theme::card(ui, |ui| self.test_view(ui, i18n, scan_config)));
            });
        } else {
            theme::card(ui, |ui| self.device_list(ui, i18n, config, statuses, &mut commands));
            theme::card(ui, |ui| self.test_view(ui, i18n, scan_config));
        }
        commands
    }

    fn device_list(
        &mut self,
        ui: &mut Ui,
        i18n: &I18n,
        config: &crate::devices::DeviceLines,
        statuses: &BTreeMap<String, DeviceStatus>,
        commands: &mut Vec<DevicesCommand>,
    ) {
        ui.label(RichText::new(i18n.t("devices-found")).strong());
        if self.detecting() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(i18n.t("devices-searching"));
            });
        }
        if let Some(key) = self.detect_error {
            error_box(ui, &i18n.t(key));
        }
        let Some(inventory) = &self.inventory else { return };
        let all_rows = inventory::entries(inventory, config);
        let hidden = all_rows.iter().filter(|row| row.is_idle_legacy_port()).count();
        let rows: Vec<&DeviceEntry> = all_rows
            .iter()
            .filter(|row| self.show_all || !row.is_idle_legacy_port())
            .collect();
        let others = inventory::other_usb(inventory);
        if rows.is_empty() && others.is_empty() {
            ui.label(
                RichText::new(i18n.t("devices-none"))
                    .text_style(egui::TextStyle::Heading)
                    .color(theme::TEXT_STRONG),
            );
            muted(ui, &i18n.t("devices-none-hint"));
        } else if !rows.is_empty() {
            muted(ui, &i18n.t("devices-tap-hint"));
        }
        for row in rows.iter().copied() {
            let label = i18n.t_args(
                "devices-row",
                &[
                    ("device", Arg::Text(row.name.clone())),
                    ("role", Arg::Text(role_text(i18n, row.role))),
                ],
            );
            let open = self.expanded.as_deref() == Some(row.id.as_str());
            // No colour of our own: the open row takes the selected style, light on the accent.
            let button = egui::Button::new(label)
                .min_size(egui::vec2(ui.available_width(), theme::TOUCH_HEIGHT))
                .selected(open);
            if ui.add(button).clicked() {
                self.expanded = if open { None } else { Some(row.id.clone()) };
            }
            if open {
                row_settings(ui, i18n, row, statuses, commands);
            }
        }
        if !others.is_empty() {
            ui.add_space(6.0);
            ui.label(RichText::new(i18n.t("devices-other-usb")).strong());
            muted(ui, &i18n.t("devices-other-usb-hint"));
            for device in others {
                let name = [device.manufacturer.as_deref(), device.product.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                ui.label(format!("USB {:04X}:{:04X} {name}", device.vendor_id, device.product_id).trim_end());
            }
        }
        // «Показать все» / back: always there, it also opens the manual line check.
        ui.add_space(6.0);
        let key = match (self.show_all, hidden) {
            (true, _) => "devices-show-less",
            (false, 0) => "devices-show-check",
            (false, _) => "devices-show-all",
        };
        let text = i18n.t_args(
            key,
            &[("count", Arg::Number(i64::try_from(hidden).unwrap_or(i64::MAX)))],
        );
        let button = egui::Button::new(text)
            .min_size(egui::vec2(ui.available_width(), theme::TOUCH_HEIGHT))
            .selected(self.show_all);
        if ui.add(button).clicked() {
            self.show_all = !self.show_all;
        }
        // Last: why a list is missing explains an empty screen, but is not what one looks for.
        // The system's own words were logged when the list was made.
        for (kind, _) in &inventory.unavailable {
            let list = i18n.t(match kind {
                ListKind::Serial => "devices-list-serial",
                ListKind::Hid => "devices-list-hid",
                ListKind::Usb => "devices-list-usb",
            });
            ui.add(
                egui::Label::new(
                    RichText::new(i18n.t_args("devices-list-unavailable", &[("list", Arg::Text(list))]))
                        .small()
                        .color(theme::TEXT_MUTED),
                )
                .wrap(),
            );
        }
    }

    fn test_view(&mut self, ui: &mut Ui, i18n: &I18n, scan_config: &ScanParseConfig) {
        ui.label(RichText::new(i18n.t("devices-test-title")).strong());
        muted(ui, &i18n.t("devices-test-hint"));
        if self.reads.is_empty() {
            muted(ui, &i18n.t("devices-test-empty"));
        }
        for read in &self.reads {
            match read {
                TestRead::Read { source, check } => check_box(ui, i18n, Some(source), check),
                TestRead::Dropped {
                    source,
                    dropped,
                    reason,
                } => error_box(
                    ui,
                    &i18n.t_args(
                        "devices-test-dropped",
                        &[
                            ("source", Arg::Text(source_text(i18n, source))),
                            ("dropped", Arg::Number(i64::try_from(*dropped).unwrap_or(i64::MAX))),
                            ("reason", Arg::Text(drop_text(i18n, *reason))),
                        ],
                    ),
                ),
            }
        }
        // The manual line check speaks in escapes (\r, \x03): a technician's tool, shown with
        // «Показать все».
        if !self.show_all {
            return;
        }
        ui.add_space(6.0);
        ui.label(RichText::new(i18n.t("devices-typed-title")).strong());
        muted(ui, &i18n.t("devices-typed-hint"));
        let id = ui.make_persistent_id("devices_typed_line");
        let focused = ui.memory(|m| m.has_focus(id));
        let field = ui.add(
            egui::TextEdit::singleline(&mut self.typed)
                .id(id)
                .font(egui::TextStyle::Monospace)
                .hint_text(i18n.t("devices-typed-placeholder"))
                .min_size(egui::vec2(0.0, theme::TOUCH_HEIGHT))
                // The whole width with the margins inside it, not the margins on top of it.
                .desired_width(f32::INFINITY)
                .margin(egui::vec2(12.0, 12.0))
                .background_color(if focused { theme::CARD_BG } else { theme::PANEL_BG }),
        );
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let pressed = theme::wide_button(ui, &i18n.t("devices-typed-check"), theme::Tone::Primary, true).clicked();
        if pressed || entered {
            let now = unix_seconds();
            let check = check_line(&self.typed, scan_config, now);
            if let Ok(ReadCheck {
                outcome: Err(error), ..
            }) = &check
            {
                tracing::info!(%error, "typed line refused");
            }
            self.typed_check = Some(check);
        }
        match &self.typed_check {
            None => {}
            Some(Ok(check)) => check_box(ui, i18n, None, check),
            Some(Err(error)) => error_box(ui, &escape_text(i18n, error)),
        }
    }
}

/// The settings of an opened row: what it is, its role, a serial port's baud rate and end of read.
fn row_settings(
    ui: &mut Ui,
    i18n: &I18n,
    row: &DeviceEntry,
    statuses: &BTreeMap<String, DeviceStatus>,
    commands: &mut Vec<DevicesCommand>,
) {
    egui::Frame::new()
        .fill(theme::PANEL_BG)
        .corner_radius(8.0)
        .inner_margin(10.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            for line in describe(i18n, row, statuses) {
                ui.add(egui::Label::new(RichText::new(line).color(theme::TEXT_MUTED)).wrap());
            }
            ui.label(RichText::new(i18n.t("devices-role")).strong());
            let mut role_button = |ui: &mut Ui, role: DeviceRole, width: f32| {
                let button = egui::Button::new(role_text(i18n, role))
                    .min_size(egui::vec2(width, theme::TOUCH_HEIGHT))
                    .selected(row.role == role);
                if ui.add(button).clicked() && row.role != role {
                    commands.push(DevicesCommand::Change(DeviceChange::Role {
                        key: row.key.clone(),
                        role,
                    }));
                }
            };
            // Three in a row where they fit; in the side panel the two roles share a row and
            // «ignore» takes the next, so no button is squeezed below its text.
            if ui.available_width() >= 540.0 {
                ui.horizontal(|ui| {
                    let width = theme::button_width(ui, 3);
                    for role in [DeviceRole::Scanner, DeviceRole::CardReader, DeviceRole::Ignore] {
                        role_button(ui, role, width);
                    }
                });
            } else {
                ui.horizontal(|ui| {
                    let width = theme::button_width(ui, 2);
                    role_button(ui, DeviceRole::Scanner, width);
                    role_button(ui, DeviceRole::CardReader, width);
                });
                let width = ui.available_width();
                role_button(ui, DeviceRole::Ignore, width);
            }
            let (Some(settings), DeviceKey::Serial { port, .. }) = (&row.serial_settings, &row.key) else {
                return;
            };
            ui.label(RichText::new(i18n.t("devices-baud")).strong());
            let mut rates = inventory::BAUD_RATES.to_vec();
            if !rates.contains(&settings.baud) {
                rates.push(settings.baud);
            }
            ui.horizontal_wrapped(|ui| {
                for baud in rates {
                    let button = egui::Button::new(baud.to_string())
                        .min_size(egui::vec2(96.0, theme::TOUCH_HEIGHT))
                        .selected(settings.baud == baud);
                    if ui.add(button).clicked() && settings.baud != baud {
                        commands.push(DevicesCommand::Change(DeviceChange::Baud {
                            port: port.clone(),
                            baud,
                        }));
                    }
                }
            });
            ui.label(RichText::new(i18n.t("devices-terminator")).strong());
            ui.horizontal_wrapped(|ui| {
                for terminator in [
                    Terminator::Cr,
                    Terminator::Lf,
                    Terminator::CrLf,
                    Terminator::Etx,
                    Terminator::IdleGap,
                ] {
                    let button = egui::Button::new(terminator_text(i18n, terminator))
                        .min_size(egui::vec2(96.0, theme::TOUCH_HEIGHT))
                        .selected(settings.framing.terminator == terminator);
                    if ui.add(button).clicked() && settings.framing.terminator != terminator {
                        commands.push(DevicesCommand::Change(DeviceChange::Terminator {
                            port: port.clone(),
                            terminator,
                        }));
                    }
                }
            });
        });
}

/// What a row is, in lines: kind and ids, connection, and what its role means here.
fn describe(i18n: &I18n, row: &DeviceEntry, statuses: &BTreeMap<String, DeviceStatus>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut what = match (&row.key, row.usage) {
        (DeviceKey::Serial { .. }, _) => i18n.t("devices-kind-serial"),
        (DeviceKey::Keyboard { .. }, _) => i18n.t("devices-kind-keyboard"),
        (DeviceKey::Hid { .. }, _) if row.pos_page() == Some(DeviceRole::Scanner) => i18n.t("devices-kind-hid-scanner"),
        (DeviceKey::Hid { .. }, _) if row.pos_page() == Some(DeviceRole::CardReader) => {
            i18n.t("devices-kind-hid-card-reader")
        }
        (DeviceKey::Hid { .. }, Some((page, _))) => {
            i18n.t_args("devices-kind-hid", &[("page", Arg::Text(format!("0x{page:02X}")))])
        }
        (DeviceKey::Hid { .. }, None) => i18n.t("devices-kind-hid-unknown"),
    };
    if let Some(product) = row.product.as_deref().filter(|p| !p.trim().is_empty()) {
        what = format!("{what}, {product}");
    }
    lines.push(what);
    if let Some(usb) = &row.usb {
        let ids = format!("{:04X}:{:04X}", usb.vid, usb.pid);
        lines.push(match usb.serial.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(serial) => i18n.t_args(
                "devices-usb-serial",
                &[("ids", Arg::Text(ids)), ("serial", Arg::Text(serial.to_string()))],
            ),
            None => i18n.t_args("devices-usb", &[("ids", Arg::Text(ids))]),
        });
    }
    let status_source = match &row.key {
        DeviceKey::Serial { .. } => row.serial_settings.as_ref().map(|s| s.source_name()),
        _ => Some(row.name.clone()),
    };
    let status = status_source.and_then(|source| statuses.get(&source));
    // A port the system does not list may still be open (a pseudo-terminal): then it is there.
    if !row.present && status != Some(&DeviceStatus::Connected) {
        lines.push(i18n.t("devices-not-present"));
    }
    if let Some(status) = status {
        lines.push(match status {
            DeviceStatus::Connected => i18n.t("devices-status-connected"),
            // The system's reason is in the log, written when the reader lost the device.
            DeviceStatus::Lost(_) => i18n.t("devices-status-lost"),
            DeviceStatus::Reopening => i18n.t("devices-status-reopening"),
        });
    }
    if matches!(row.key, DeviceKey::Keyboard { .. }) && !cfg!(windows) {
        lines.push(i18n.t("devices-keyboard-windows-only"));
    }
    lines
}

/// A read's source for people: the till's own inputs by name, a port or device as it is called.
pub fn source_text(i18n: &I18n, source: &str) -> String {
    match source {
        "keyboard" => i18n.t("devices-source-keyboard"),
        "clipboard" => i18n.t("devices-source-clipboard"),
        other => other.to_string(),
    }
}

/// What a refused swipe lacked, in the screen's language; `None` when the refusal says it all.
fn detail_text(i18n: &I18n, error: &ScanError) -> Option<String> {
    use crate::scan::magstripe::MagError;
    let track = |track: &u8| [("track", Arg::Number(i64::from(*track)))];
    Some(match error {
        ScanError::Magstripe(MagError::NoTrack) => i18n.t("devices-detail-no-track"),
        ScanError::Magstripe(MagError::TwoSwipes) => i18n.t("devices-detail-two-swipes"),
        ScanError::Magstripe(MagError::TrackMissing { track: t }) => {
            i18n.t_args("devices-detail-track-missing", &track(t))
        }
        ScanError::Magstripe(MagError::TrackFailed { track: t, .. }) => {
            i18n.t_args("devices-detail-track-failed", &track(t))
        }
        ScanError::Magstripe(MagError::NoCardNumber { track: t }) => {
            i18n.t_args("devices-detail-no-card-number", &track(t))
        }
        _ => return None,
    })
}

fn role_text(i18n: &I18n, role: DeviceRole) -> String {
    i18n.t(match role {
        DeviceRole::Scanner => "devices-role-scanner",
        DeviceRole::CardReader => "devices-role-card-reader",
        DeviceRole::Ignore => "devices-role-ignore",
    })
}

fn terminator_text(i18n: &I18n, terminator: Terminator) -> String {
    i18n.t(match terminator {
        Terminator::Cr => "devices-terminator-cr",
        Terminator::Lf => "devices-terminator-lf",
        Terminator::CrLf => "devices-terminator-cr-lf",
        Terminator::Etx => "devices-terminator-etx",
        Terminator::IdleGap => "devices-terminator-idle",
    })
}

fn drop_text(i18n: &I18n, reason: DropReason) -> String {
    i18n.t(match reason {
        DropReason::Noise => "devices-drop-noise",
        DropReason::TooLong => "devices-drop-too-long",
        DropReason::Incomplete => "devices-drop-incomplete",
        DropReason::BadReport => "devices-drop-bad-report",
    })
}

fn kind_text(i18n: &I18n, kind: ScanKind, detail: &ReadDetail) -> String {
    match (kind, detail) {
        (_, ReadDetail::Payload("guest_token")) => i18n.t("devices-kind-guest-token"),
        (_, ReadDetail::Payload("gift_token")) => i18n.t("devices-kind-gift-token"),
        (ScanKind::MagneticCard, _) => i18n.t("devices-kind-magnetic"),
        (ScanKind::Qr, _) => i18n.t("devices-kind-qr"),
        (ScanKind::Barcode | ScanKind::Manual, _) => i18n.t("devices-kind-card-code"),
    }
}

/// Why a read identifies no one, in the cashier's words; the parser's own (technical, masked)
/// words follow as details.
fn refusal_text(i18n: &I18n, error: &ScanError) -> String {
    match error {
        ScanError::TooLong { len, max } => i18n.t_args(
            "devices-error-too-long",
            &[
                ("len", Arg::Number(i64::try_from(*len).unwrap_or(i64::MAX))),
                ("max", Arg::Number(i64::try_from(*max).unwrap_or(i64::MAX))),
            ],
        ),
        ScanError::NotUtf8 { at } => i18n.t_args(
            "devices-error-not-utf8",
            &[("at", Arg::Number(i64::try_from(*at).unwrap_or(i64::MAX)))],
        ),
        ScanError::Empty => i18n.t("devices-error-empty"),
        ScanError::Magstripe(_) | ScanError::Payload(_) => i18n.t(crate::workflow::refusal_key(error.refusal())),
    }
}

fn escape_text(i18n: &I18n, error: &EscapeError) -> String {
    match error {
        EscapeError::TrailingBackslash => i18n.t("devices-typed-error-trailing"),
        EscapeError::UnknownEscape { at, found } => i18n.t_args(
            "devices-typed-error-unknown",
            &[
                ("found", Arg::Text(found.to_string())),
                ("at", Arg::Number(i64::try_from(*at).unwrap_or(i64::MAX))),
            ],
        ),
        EscapeError::BadHex { at } => i18n.t_args(
            "devices-typed-error-hex",
            &[("at", Arg::Number(i64::try_from(*at).unwrap_or(i64::MAX)))],
        ),
    }
}

/// One checked read: where from and how long, the bytes (escaped, masked), and the result.
fn check_box(ui: &mut Ui, i18n: &I18n, source: Option<&String>, check: &ReadCheck) {
    let ok = check.outcome.is_ok();
    egui::Frame::new()
        .fill(if ok { theme::SUCCESS_BG } else { theme::ERROR_BG })
        .corner_radius(8.0)
        .inner_margin(10.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            let len = ("len", Arg::Number(i64::try_from(check.len).unwrap_or(i64::MAX)));
            let heading = match source {
                Some(source) => i18n.t_args(
                    "devices-test-read",
                    &[("source", Arg::Text(source_text(i18n, source))), len],
                ),
                None => i18n.t_args("devices-test-typed", &[len]),
            };
            ui.label(RichText::new(heading).small().color(theme::TEXT_MUTED));
            ui.add(
                egui::Label::new(
                    RichText::new(local_markers(i18n, &check.raw))
                        .text_style(egui::TextStyle::Monospace)
                        .color(theme::TEXT_STRONG),
                )
                .wrap(),
            );
            let (result, detail) = match &check.outcome {
                Ok(parsed) => (
                    i18n.t_args(
                        "devices-test-parsed",
                        &[
                            ("kind", Arg::Text(kind_text(i18n, parsed.kind, &parsed.detail))),
                            ("code", Arg::Text(parsed.masked.clone())),
                        ],
                    ),
                    // The tracks' summary (masked, in the parser's words) is in the log only.
                    None,
                ),
                Err(error) => (
                    i18n.t_args(
                        "devices-test-refused",
                        &[("reason", Arg::Text(refusal_text(i18n, error)))],
                    ),
                    // What the swipe lacked, where the cashier's message is a general one.
                    detail_text(i18n, error),
                ),
            };
            ui.add(egui::Label::new(RichText::new(result).color(theme::TEXT_STRONG).strong()).wrap());
            if let Some(detail) = detail {
                ui.add(
                    egui::Label::new(
                        RichText::new(i18n.t_args("devices-test-detail", &[("detail", Arg::Text(detail))]))
                            .small()
                            .color(theme::TEXT_MUTED),
                    )
                    .wrap(),
                );
            }
        });
}

/// The masking's markers in the screen's language (the support bundle keeps them in English).
fn local_markers(i18n: &I18n, raw: &str) -> String {
    [
        ("[track 1 masked]", "devices-masked-track1"),
        ("[track 2 masked]", "devices-masked-track2"),
        ("[token masked]", "devices-masked-token"),
    ]
    .iter()
    .fold(raw.to_string(), |text, (marker, key)| {
        text.replace(marker, &format!("[{}]", i18n.t(key)))
    })
}

fn error_box(ui: &mut Ui, text: &str) {
    egui::Frame::new()
        .fill(theme::ERROR_BG)
        .corner_radius(8.0)
        .inner_margin(10.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.add(egui::Label::new(RichText::new(text).color(theme::TEXT_STRONG)).wrap());
        });
}

fn muted(ui: &mut Ui, text: &str) {
    ui.add(egui::Label::new(RichText::new(text).color(theme::TEXT_MUTED)).wrap());
}

/// Now, for checking a typed line (app QR tokens are checked against the till's clock).
pub fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}
