//! The egui/eframe shell: renders the workflow state, turns presses into events, and drains the
//! worker's results in `logic`. The UI thread never touches the ledger.

pub mod device_settings;
pub mod keypad;
pub mod paste;
pub mod returns;
pub mod screens;
pub mod shift;
pub mod split;
pub mod support;
pub mod theme;
pub mod wedge_input;

use crate::app::Devices;
use crate::cli::Scenario;
use crate::config::{Config, ConfigSaver, Layout, Paths, SIDE_PANEL_WIDTH};
use crate::devices::{DeviceMessage, DeviceStatus, classify_frame};
use crate::domain::{BackendKind, ServerLink};
use crate::i18n::{Arg, I18n, Lang};
use crate::worker::Session;
use crate::workflow::{BackendStatus, Event, NoticeLevel, Screen, State};
use egui::RichText;
use std::collections::VecDeque;
use std::path::PathBuf;

pub struct TillApp {
    session: Session,
    i18n: I18n,
    config: Config,
    config_saver: Option<ConfigSaver>,
    scenario: VecDeque<Event>,
    /// The scenario whose end is still to be logged (the screenshot script checks the line).
    scenario_to_report: Option<Scenario>,
    devices: Devices,
    paste: paste::ClipboardPaste,
    /// Scanner bursts typed into our window by keyboards not captured by device.
    wedge: wedge_input::WedgeInput,
    menu_open: bool,
    export: support::ExportPanel,
    /// «Устройства»: while it is open, device reads are only shown there.
    device_screen: device_settings::DevicesScreen,
    /// Window placement is applied once the monitor size is known.
    placed: bool,
    /// The POS's open order as the endpoint publishes it, and the last one handed to the core.
    pos_feed: std::sync::Arc<crate::handhelds::pos::PosFeed>,
    pos_seen: Option<crate::handhelds::pos::PosView>,
}

/// What `app` hands the window: the session with its worker, the device readers and the rest.
pub struct TillParts {
    pub session: Session,
    pub devices: Devices,
    pub paste: paste::ClipboardPaste,
    pub config_saver: Option<ConfigSaver>,
    pub scenario: VecDeque<Event>,
    /// The scenario to report once its events are done.
    pub scenario_to_report: Option<Scenario>,
    pub device_screen: device_settings::DevicesScreen,
    pub paths: Paths,
    pub config: Config,
}

impl TillApp {
    pub fn from_parts(ctx: &egui::Context, parts: TillParts) -> TillApp {
        theme::apply(ctx);
        let pos_feed = crate::handhelds::pos::shared_feed();
        let repaint = ctx.clone();
        // The endpoint wakes the window only when the POS's order changed.
        pos_feed.set_waker(Box::new(move || repaint.request_repaint()));
        // The settings page's brand name reaches the window without a restart.
        let repaint = ctx.clone();
        crate::config::LiveWindow::shared().set_waker(Box::new(move || repaint.request_repaint()));
        TillApp {
            pos_feed,
            pos_seen: None,
            session: parts.session,
            i18n: I18n::new(parts.config.language),
            devices: parts.devices,
            paste: parts.paste,
            wedge: wedge_input::WedgeInput::default(),
            config_saver: parts.config_saver,
            scenario: parts.scenario,
            scenario_to_report: parts.scenario_to_report,
            menu_open: false,
            export: support::ExportPanel::new(&parts.paths),
            device_screen: parts.device_screen,
            config: parts.config,
            placed: false,
        }
    }

    /// A window given its size on the command line is not moved to the screen's edge.
    pub fn set_placed(&mut self, placed: bool) {
        self.placed = placed;
    }

    pub fn state(&self) -> &State {
        &self.session.state
    }

    /// The last status of every device, by source name, as the status line shows it.
    pub fn device_statuses(&self) -> &std::collections::BTreeMap<String, crate::devices::DeviceStatus> {
        self.devices.statuses()
    }

    /// «Отправка логов» in the menu: its last result, for tests.
    pub fn export_panel(&self) -> &support::ExportPanel {
        &self.export
    }

    /// «Устройства» in the menu: its device list and test view, for tests.
    pub fn device_screen(&self) -> &device_settings::DevicesScreen {
        &self.device_screen
    }

    /// Replaces what the devices screen lists: tests and demonstrations without the hardware.
    pub fn set_device_detector(&mut self, detector: device_settings::Detector) {
        self.device_screen.set_detector(detector);
    }

    /// Hands the POS's open order to the core when it changed since the last frame.
    fn take_pos_order(&mut self) {
        let current = self.pos_feed.current();
        if current != self.pos_seen {
            let shown = current.as_ref().map(crate::handhelds::pos::PosView::shown);
            self.pos_seen = current;
            self.session.dispatch(Event::PosOrder(shown));
        }
    }

    /// For tests and the scenario driver: the same path a button press takes.
    pub fn dispatch(&mut self, event: Event) {
        self.session.dispatch(event);
    }

    fn save_config(&self) {
        if let Some(saver) = &self.config_saver {
            saver.save(self.config.clone());
        }
    }

    fn apply_app_command(&mut self, ctx: &egui::Context, command: AppCommand) {
        match command {
            AppCommand::SetLanguage(lang) => {
                self.config.language = lang;
                self.i18n = I18n::new(lang);
            }
            AppCommand::SetLayout(layout) => {
                self.config.layout = layout;
                ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(layout == Layout::FullScreen));
                self.placed = false;
            }
            AppCommand::SetAlwaysOnTop(on_top) => {
                self.config.always_on_top = on_top;
                ctx.send_viewport_cmd(egui::ViewportCommand::WindowLevel(window_level(on_top)));
            }
            AppCommand::ToggleMenu => {
                self.menu_open = !self.menu_open;
                self.device_screen.close();
                return;
            }
            AppCommand::OpenReturns => {
                self.menu_open = false;
                self.device_screen.close();
                self.session.dispatch(Event::OpenReturns { last_check: false });
                return;
            }
            AppCommand::OpenShift => {
                self.menu_open = false;
                self.device_screen.close();
                self.session.dispatch(Event::OpenShift);
                return;
            }
            AppCommand::OpenDevices => {
                self.menu_open = false;
                self.device_screen.open(ctx);
                return;
            }
            AppCommand::Devices(device_settings::DevicesCommand::Close) => {
                self.device_screen.close();
                return;
            }
            AppCommand::Devices(device_settings::DevicesCommand::Change(change)) => {
                let mut lines = self.config.device_lines();
                if !crate::devices::inventory::apply(&mut lines, &change) {
                    return;
                }
                self.config.set_device_lines(lines);
                tracing::info!(?change, "device settings changed");
                self.devices.restart(ctx, &self.config);
            }
            AppCommand::ExportLogs(folder) => {
                self.export.start(ctx, folder, &self.config);
                return;
            }
            AppCommand::OpenBackOffice(url) => {
                crate::platform::open_in_browser(&url);
                return;
            }
        }
        self.save_config();
    }

    /// The side panel hugs the right edge of the screen, full height, beside iikoFront.
    fn place_window(&mut self, ctx: &egui::Context) {
        if self.placed || self.config.layout != Layout::SidePanel {
            return;
        }
        let (monitor, pixels_per_point, outer, inner) = ctx.input(|i| {
            let viewport = i.viewport();
            (
                viewport.monitor_size,
                viewport.native_pixels_per_point.unwrap_or(1.0),
                viewport.outer_rect,
                viewport.inner_rect,
            )
        });
        let Some(monitor) = monitor else { return };
        // The work area leaves the Windows taskbar visible; elsewhere the whole monitor.
        let area = crate::platform::work_area_px()
            .map(|[left, top, right, bottom]| {
                egui::Rect::from_min_max(
                    egui::pos2(left as f32, top as f32) / pixels_per_point,
                    egui::pos2(right as f32, bottom as f32) / pixels_per_point,
                )
            })
            .unwrap_or(egui::Rect::from_min_size(egui::Pos2::ZERO, monitor));
        // The title bar and borders are outside the inner size: without them the bottom of the
        // window (the status line) would hang below the screen.
        let frame = match (outer, inner) {
            (Some(outer), Some(inner)) => (outer.size() - inner.size()).max(egui::Vec2::ZERO),
            _ => egui::Vec2::ZERO,
        };
        ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(egui::vec2(
            SIDE_PANEL_WIDTH,
            area.height() - frame.y,
        )));
        ctx.send_viewport_cmd(egui::ViewportCommand::OuterPosition(egui::pos2(
            area.max.x - SIDE_PANEL_WIDTH - frame.x,
            area.min.y,
        )));
        self.placed = true;
    }

    /// Turns device reads into identifications. A read brings the window forward, so a guest
    /// scanned while iikoFront has focus still lands here.
    fn take_device_input(&mut self, ctx: &egui::Context) {
        for message in self.devices.drain(ctx) {
            self.take_message(ctx, message);
        }
    }

    /// One message from any input (a device, a burst typed into the window, the clipboard): on
    /// the devices screen a test read, otherwise a read identifies the guest or is refused.
    fn take_message(&mut self, ctx: &egui::Context, message: DeviceMessage) {
        if self.device_screen.is_open() {
            // The devices screen tests devices: its reads identify no one.
            let scan = self.config.scan.effective(self.session.state.demo);
            self.device_screen
                .record(&message, |now| crate::diagnostics::scan_config(&scan, now));
            return;
        }
        match message {
            DeviceMessage::Frame {
                source,
                bytes,
                symbology,
                received_at_ms,
            } => {
                let config = crate::diagnostics::scan_config(
                    &self.config.scan.effective(self.session.state.demo),
                    received_at_ms.div_euclid(1000),
                );
                let event = match classify_frame(&source, &bytes, received_at_ms, &config) {
                    Ok((parsed, mut scan)) => {
                        tracing::info!(%source, kind = ?parsed.kind, code = %parsed.masked, ?symbology, "device read");
                        scan.symbology = symbology;
                        Event::Scan(scan)
                    }
                    Err(error) => {
                        tracing::warn!(%source, %error, "device read refused");
                        Event::ScanRefused(error.refusal())
                    }
                };
                ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
                ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                self.session.dispatch(event);
            }
            DeviceMessage::Status { source, status } => tracing::info!(%source, ?status, "device status"),
            DeviceMessage::Noise {
                source,
                dropped,
                reason,
            } => {
                tracing::warn!(%source, dropped, reason = reason.as_str(), "device noise dropped");
            }
        }
    }

    /// Scanner bursts typed into the window (keyboard-mode devices nobody configured): taken out of
    /// the frame's raw input before egui sees it, and identified like a scanner's read. eframe
    /// calls this through `raw_input_hook`; tests call it with the events they send.
    pub fn filter_keyboard(&mut self, ctx: &egui::Context, events: &mut Vec<egui::Event>) {
        if !self.config.scan.keyboard_bursts {
            return;
        }
        for text in self.wedge.filter(events) {
            let message = DeviceMessage::Frame {
                source: "keyboard".to_string(),
                bytes: text.into_bytes(),
                symbology: None,
                received_at_ms: crate::devices::serial::unix_ms(),
            };
            self.take_message(ctx, message);
        }
    }

    /// A finished «QR из буфера» read: identified like a scanner's read, or refused with the reason.
    fn take_clipboard_read(&mut self, ctx: &egui::Context) {
        let Some(result) = self.paste.poll() else {
            return;
        };
        match result {
            Ok(read) => {
                tracing::info!(?read, "clipboard read");
                let message = DeviceMessage::Frame {
                    source: "clipboard".to_string(),
                    bytes: read.text().as_bytes().to_vec(),
                    symbology: read.symbology().map(str::to_string),
                    received_at_ms: crate::devices::serial::unix_ms(),
                };
                self.take_message(ctx, message);
            }
            Err(error) => {
                tracing::warn!(%error, "clipboard read refused");
                self.session.dispatch(Event::ScanRefused(match error {
                    crate::clipboard::ClipboardError::NoQr { .. } => crate::domain::ScanRefusal::ClipboardNoQr,
                    _ => crate::domain::ScanRefusal::ClipboardEmpty,
                }));
            }
        }
    }

    fn run_scenario(&mut self) {
        let ready = matches!(self.session.state.backend, BackendStatus::Ready(_));
        while ready && !self.session.state.is_busy() {
            let Some(event) = self.scenario.pop_front() else {
                break;
            };
            self.session.dispatch(event);
        }
        if ready
            && !self.session.state.is_busy()
            && self.scenario.is_empty()
            && let Some(scenario) = self.scenario_to_report.take()
        {
            let screen = if self.device_screen.is_open() {
                "devices"
            } else {
                screen_name(&self.session.state.screen)
            };
            let error = match &self.session.state.notice {
                Some(notice) if notice.level == NoticeLevel::Error => notice.key,
                _ => "none",
            };
            tracing::info!("{}", scenario_report(scenario, screen, error));
        }
    }

    fn top_bar(&self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(&self.config.program_name)
                    .text_style(egui::TextStyle::Heading)
                    .color(theme::ACCENT)
                    .strong(),
            );
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let menu = egui::Button::new(self.i18n.t("menu")).min_size(egui::vec2(110.0, theme::TOUCH_HEIGHT));
                if ui.add(menu).clicked() {
                    commands.push(AppCommand::ToggleMenu);
                }
            });
        });
    }

    fn menu(&mut self, ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
        let i18n = &self.i18n;
        theme::card(ui, |ui| {
            ui.label(RichText::new(i18n.t("menu-language")).strong());
            ui.horizontal(|ui| {
                let size = egui::vec2(theme::button_width(ui, 2), theme::TOUCH_HEIGHT);
                for (lang, key) in [(Lang::Ru, "lang-ru"), (Lang::En, "lang-en")] {
                    let button = egui::Button::new(i18n.t(key))
                        .min_size(size)
                        .selected(i18n.lang() == lang);
                    if ui.add(button).clicked() {
                        commands.push(AppCommand::SetLanguage(lang));
                    }
                }
            });
            ui.label(RichText::new(i18n.t("menu-layout")).strong());
            ui.horizontal(|ui| {
                let size = egui::vec2(theme::button_width(ui, 2), theme::TOUCH_HEIGHT);
                for (layout, key) in [(Layout::SidePanel, "layout-side"), (Layout::FullScreen, "layout-full")] {
                    let button = egui::Button::new(i18n.t(key))
                        .min_size(size)
                        .selected(self.config.layout == layout);
                    if ui.add(button).clicked() {
                        commands.push(AppCommand::SetLayout(layout));
                    }
                }
            });
            let on_top = self.config.always_on_top;
            let button = egui::Button::new(i18n.t("menu-on-top"))
                .min_size(egui::vec2(ui.available_width(), theme::TOUCH_HEIGHT))
                .selected(on_top);
            if ui.add(button).clicked() {
                commands.push(AppCommand::SetAlwaysOnTop(!on_top));
            }
            if let Some(folder) = self.export.show(ui, i18n, &self.config) {
                commands.push(AppCommand::ExportLogs(folder));
            }
            ui.add_space(6.0);
            let back_office = self.config.back_office_url();
            if theme::wide_button(ui, &i18n.t("menu-back-office"), theme::Tone::Normal, true).clicked() {
                commands.push(AppCommand::OpenBackOffice(back_office.clone()));
            }
            ui.label(RichText::new(back_office).small().color(theme::TEXT_MUTED));
            if theme::wide_button(ui, &i18n.t("returns-menu"), theme::Tone::Normal, true).clicked() {
                commands.push(AppCommand::OpenReturns);
            }
            if theme::wide_button(ui, &i18n.t("shift-menu"), theme::Tone::Normal, true).clicked() {
                commands.push(AppCommand::OpenShift);
            }
            if theme::wide_button(ui, &i18n.t("devices-menu"), theme::Tone::Normal, true).clicked() {
                commands.push(AppCommand::OpenDevices);
            }
            if theme::wide_button(ui, &i18n.t("menu-close"), theme::Tone::Normal, true).clicked() {
                commands.push(AppCommand::ToggleMenu);
            }
        });
    }

    fn screen_context<'a>(
        &'a self,
        wide: bool,
        paste_requested: &'a std::cell::Cell<bool>,
    ) -> screens::ScreenContext<'a> {
        screens::ScreenContext {
            i18n: &self.i18n,
            program_name: &self.config.program_name,
            wide,
            paste_requested,
            paste_busy: self.paste.is_busy(),
            export_folder: self.export.folder(),
        }
    }

    fn notice_banner(&self, ui: &mut egui::Ui, events: &mut Vec<Event>) {
        let Some(notice) = &self.session.state.notice else {
            return;
        };
        if matches!(self.session.state.screen, Screen::Done { .. }) {
            return; // The success screen shows it as its message.
        }
        let fill = match notice.level {
            NoticeLevel::Error => theme::ERROR_BG,
            NoticeLevel::Success => theme::SUCCESS_BG,
            NoticeLevel::Info => theme::INFO_BG,
        };
        egui::Frame::new()
            .fill(fill)
            .corner_radius(8.0)
            .inner_margin(10.0)
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.horizontal(|ui| {
                    let close = egui::Button::new("×").min_size(egui::vec2(theme::TOUCH_HEIGHT, theme::TOUCH_HEIGHT));
                    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                        if ui.add(close).on_hover_text(self.i18n.t("notice-dismiss")).clicked() {
                            events.push(Event::DismissNotice);
                        }
                        ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                            ui.add(
                                egui::Label::new(RichText::new(self.i18n.notice(notice)).color(theme::TEXT_STRONG))
                                    .wrap(),
                            );
                        });
                    });
                });
                // A code no guest has, which the programme lets the cashier enrol.
                let state = &self.session.state;
                if state.enrol_offer.is_some() && matches!(state.screen, Screen::AddGuest) {
                    let enabled = !state.is_busy();
                    if theme::wide_button(ui, &self.i18n.t("enrol-offer"), theme::Tone::Primary, enabled).clicked() {
                        events.push(Event::StartEnrol);
                    }
                }
            });
    }

    fn status_line(&self, ui: &mut egui::Ui) {
        // Read, not pressed: one line of text, not a touch row.
        ui.spacing_mut().interact_size.y = 20.0;
        let i18n = &self.i18n;
        let (text, error) = match &self.session.state.backend {
            BackendStatus::Starting => (i18n.t("status-starting"), false),
            BackendStatus::Ready(BackendKind::Embedded { path }) => (
                i18n.t_args("status-embedded", &[("path", Arg::Text(path.display().to_string()))]),
                false,
            ),
            BackendStatus::Ready(BackendKind::Server { url, link }) => match link {
                ServerLink::Online => (i18n.t_args("status-server", &[("url", Arg::Text(url.clone()))]), false),
                ServerLink::Offline { since } => (
                    i18n.t_args(
                        "status-offline",
                        &[
                            ("url", Arg::Text(url.clone())),
                            ("since", Arg::Text(local_time_of_day(*since))),
                        ],
                    ),
                    true,
                ),
                ServerLink::TokenRefused => (
                    i18n.t_args("status-token-refused", &[("url", Arg::Text(url.clone()))]),
                    true,
                ),
            },
            BackendStatus::Failed(error) => {
                let reason = i18n.notice(&crate::workflow::error_notice(error));
                (i18n.t_args("status-failed", &[("reason", Arg::Text(reason))]), true)
            }
        };
        let mut label = RichText::new(text).small();
        label = label.color(if error { theme::STATUS_ERROR } else { theme::STATUS_TEXT });
        let demo = self.session.state.demo.then(|| i18n.t("status-demo"));
        ui.horizontal(|ui| {
            if let Some(demo) = demo {
                ui.label(RichText::new(demo).small().strong().color(theme::STATUS_TEXT));
            }
            for (device, status) in self.devices.statuses() {
                let (key, lost) = match status {
                    DeviceStatus::Connected => ("status-device-connected", false),
                    DeviceStatus::Lost(_) => ("status-device-lost", true),
                    DeviceStatus::Reopening => ("status-device-reopening", true),
                };
                let text = i18n.t_args(key, &[("device", Arg::Text(device.clone()))]);
                ui.label(RichText::new(text).small().color(if lost {
                    theme::STATUS_ERROR
                } else {
                    theme::STATUS_TEXT
                }));
            }
            // A problem is read in full (it says what to do); a plain status may be cut short.
            let label = egui::Label::new(label);
            ui.add(if error { label.wrap() } else { label.truncate() });
        });
    }
}

/// `HH:MM` of a moment in the till's local time zone (the status line's "offline since").
pub(crate) fn local_time_of_day(unix: crate::domain::UnixSeconds) -> String {
    use chrono::TimeZone as _;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(time) => time.format("%H:%M").to_string(),
        None => String::from("--:--"),
    }
}

/// Settings changes: not part of a guest's visit, so not workflow events.
enum AppCommand {
    SetLanguage(Lang),
    SetLayout(Layout),
    SetAlwaysOnTop(bool),
    ToggleMenu,
    /// «Отправка логов»: makes the support zip in this folder (and uploads it if configured).
    ExportLogs(PathBuf),
    /// «Устройства»: opens the devices screen with a fresh device list.
    OpenDevices,
    /// «Управление программой»: the back office in the default browser.
    OpenBackOffice(String),
    /// What the devices screen asks for: a settings change (saved, readers restarted) or closing.
    Devices(device_settings::DevicesCommand),
    /// «Возврат чека»: closes the menu and opens the returns screen.
    OpenReturns,
    /// «Закрыть смену»: closes the menu and lists what is left in doubt.
    OpenShift,
}

impl eframe::App for TillApp {
    fn raw_input_hook(&mut self, ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        self.filter_keyboard(ctx, &mut raw_input.events);
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.session.poll();
        self.take_pos_order();
        if let Some(brand) = crate::config::LiveWindow::shared().take_brand() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(brand.clone()));
            self.config.program_name = brand;
        }
        self.export.poll();
        self.device_screen.poll();
        self.take_device_input(ctx);
        self.take_clipboard_read(ctx);
        self.run_scenario();
        self.place_window(ctx);
        if let Some(wait) = self.wedge.wake_after() {
            // Held-back typing must come out even if no other event wakes the window.
            ctx.request_repaint_after(wait);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let mut events = Vec::new();
        let mut commands = Vec::new();
        egui::Panel::top("top_bar").show(ui, |ui| self.top_bar(ui, &mut commands));
        egui::Panel::bottom("status_line")
            .frame(egui::Frame::new().fill(theme::STATUS_BG).inner_margin(8.0))
            .show(ui, |ui| self.status_line(ui));
        let wide = ui.available_width() >= 760.0;
        let order_beside = matches!(
            self.session.state.screen,
            Screen::AddGuest
                | Screen::Enrol(_)
                | Screen::Order
                | Screen::Guest
                | Screen::Stamps
                | Screen::Promotions
                | Screen::ConfirmReplace { .. }
        );
        if wide && order_beside {
            egui::Panel::left("order_column")
                .exact_size(ui.available_width() * 0.4)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().id_salt("order_scroll").show(ui, |ui| {
                        screens::order_column(ui, &self.session.state, &self.i18n, &mut events);
                    });
                });
        }
        let paste_requested = std::cell::Cell::new(false);
        egui::CentralPanel::default().show(ui, |ui| {
            if self.device_screen.is_open() {
                egui::ScrollArea::vertical().id_salt("devices_scroll").show(ui, |ui| {
                    let scan = crate::diagnostics::scan_config(
                        &self.config.scan.effective(self.session.state.demo),
                        device_settings::unix_seconds(),
                    );
                    let asked = self.device_screen.show(
                        ui,
                        &self.i18n,
                        &self.config.device_lines(),
                        self.devices.statuses(),
                        &scan,
                    );
                    commands.extend(asked.into_iter().map(AppCommand::Devices));
                });
                return;
            }
            // The notice and the screen's main action are pinned at the bottom: a notice grows
            // the bar upwards, over the end of what scrolls, and moves nothing the cashier is
            // about to tap.
            let state = &self.session.state;
            let shows_notice = state.notice.is_some() && !matches!(state.screen, Screen::Done { .. });
            if shows_notice || screens::has_actions(state) {
                egui::Panel::bottom("actions")
                    .frame(egui::Frame::new().inner_margin(egui::Margin::symmetric(0, 8)))
                    .show(ui, |ui| {
                        self.notice_banner(ui, &mut events);
                        let cx = self.screen_context(wide, &paste_requested);
                        screens::actions(ui, &self.session.state, &cx, &mut events);
                    });
            }
            egui::ScrollArea::vertical().id_salt("screen_scroll").show(ui, |ui| {
                if self.menu_open {
                    self.menu(ui, &mut commands);
                }
                let cx = self.screen_context(wide, &paste_requested);
                screens::show(ui, &self.session.state, &cx, &mut events);
            });
        });
        if paste_requested.get() {
            self.paste.start(ui.ctx());
        }
        let ctx = ui.ctx().clone();
        for command in commands {
            self.apply_app_command(&ctx, command);
        }
        for event in events {
            self.session.dispatch(event);
        }
        crate::startup::first_frame();
        // For scripts/measure-latency.sh (LOYALTY_TILL_LOG=info,frames=trace): when each frame
        // was laid out, on which screen, how many input events it took, and what the previous
        // frame cost (layout, tessellation and painting); for scripts/measure-pos-push.sh, the
        // number of the POS order shown.
        tracing::trace!(
            target: "frames",
            screen = %screen_name(&self.session.state.screen),
            busy = self.session.state.is_busy(),
            input = ui.ctx().input(|i| i.events.len()),
            prev_cpu_ms = frame.info().cpu_usage.map(|s| s * 1000.0),
            pos = self.session.state.pos.as_ref().map_or("-", |p| p.number.as_str()),
            "frame"
        );
    }
}

pub(crate) fn window_level(on_top: bool) -> egui::WindowLevel {
    if on_top {
        egui::WindowLevel::AlwaysOnTop
    } else {
        egui::WindowLevel::Normal
    }
}

/// The line `--scenario` logs once its events are done, read by `scripts/screenshots.sh` to
/// check that each picture shows the screen it is named after and no error:
/// `scenario done reached screen done, error none`.
pub fn scenario_report(scenario: Scenario, screen: &str, error: &str) -> String {
    let name = clap::ValueEnum::to_possible_value(&scenario).map(|v| v.get_name().to_string());
    format!(
        "scenario {} reached screen {screen}, error {error}",
        name.unwrap_or_default()
    )
}

/// A screen's name as `--scenario` spells the scenario that ends on it.
pub fn screen_name(screen: &Screen) -> &'static str {
    match screen {
        Screen::Idle => "idle",
        Screen::AddGuest => "add-guest",
        Screen::Enrol(_) => "enrol",
        Screen::Order => "order",
        Screen::Guest => "guest",
        Screen::Stamps => "stamps",
        Screen::Promotions => "promotions",
        Screen::ConfirmReplace { .. } => "replace",
        Screen::PaymentChoice { .. } => "payment-choice",
        Screen::Payment { .. } => "payment",
        Screen::Processing { .. } => "processing",
        Screen::Done { .. } => "done",
        Screen::Split(_) => "split",
        Screen::SplitDone { .. } => "split-done",
        Screen::Shift(crate::workflow::ShiftStep::List { .. }) => "shift",
        Screen::Shift(crate::workflow::ShiftStep::Report { .. }) => "shift-report",
        Screen::Returns(step) => match step {
            crate::workflow::ReturnStep::Find { .. } => "return-find",
            crate::workflow::ReturnStep::Choose { .. } => "return-choose",
            crate::workflow::ReturnStep::Preview { .. } => "return-preview",
            crate::workflow::ReturnStep::Sending { .. } => "return-sending",
            crate::workflow::ReturnStep::Done { .. } => "return-done",
        },
    }
}
