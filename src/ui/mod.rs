//! The egui/eframe shell: renders the workflow state, turns presses into events, and drains the
//! worker's results in `logic`. The UI thread never touches the ledger.

pub mod device_settings;
pub mod devices;
pub mod keypad;
pub mod paste;
pub mod screens;
pub mod support;
pub mod theme;
pub mod wedge_input;

use crate::backend::{BackendKind, Clock, EmbeddedBackend, LoyaltyBackend, ServerLink, SystemClock};
use crate::cli::{Cli, Scenario};
use crate::config::{Config, ConfigSaver, Layout, Paths, SIDE_PANEL_WIDTH};
use crate::devices::{DeviceMessage, DeviceStatus, classify_frame};
use crate::domain::{LoyaltyError, ScanEvent};
use crate::i18n::{Arg, I18n, Lang};
use crate::worker::{Session, Worker};
use crate::workflow::{BackendStatus, Event, Field, NoticeLevel, PaymentMode, Screen, State};
use egui::RichText;
use std::collections::VecDeque;
use std::path::PathBuf;

/// Everything needed to build the app, from the command line or from a test.
pub struct AppOptions {
    pub paths: Paths,
    pub demo: bool,
    pub config: Config,
    /// Where settings changes are saved; `None` keeps them for this run only.
    pub config_file: Option<PathBuf>,
    pub scenario: Option<Scenario>,
    pub clock: Box<dyn Clock>,
    /// The HID bus to read; `None`: the system's.
    pub hid_bus: Option<devices::HidBusFactory>,
    /// The clipboard «QR из буфера» reads; `None`: the system's.
    pub clipboard: Option<paste::ClipboardSource>,
}

pub struct TillApp {
    session: Session,
    i18n: I18n,
    config: Config,
    config_saver: Option<ConfigSaver>,
    scenario: VecDeque<Event>,
    /// The scenario whose end is still to be logged (the screenshot script checks the line).
    scenario_to_report: Option<Scenario>,
    devices: devices::DeviceInputs,
    paste: paste::ClipboardPaste,
    /// Scanner bursts typed into our window by keyboards not captured by device.
    wedge: wedge_input::WedgeInput,
    menu_open: bool,
    export: support::ExportPanel,
    /// «Устройства»: while it is open, device reads are only shown there.
    device_screen: device_settings::DevicesScreen,
    /// Kept to restart the device readers with the same bus after a settings change.
    hid_bus: Option<devices::HidBusFactory>,
    /// The old device readers are being stopped off the UI thread; the new ones start once this
    /// says they are gone.
    devices_stopping: Option<std::sync::mpsc::Receiver<()>>,
    /// Window placement is applied once the monitor size is known.
    placed: bool,
}

impl TillApp {
    pub fn new(ctx: &egui::Context, options: AppOptions) -> std::io::Result<TillApp> {
        theme::apply(ctx);
        let repaint = ctx.clone();
        let database = options.paths.database(options.demo);
        let demo = options.demo;
        let clock = options.clock;
        // A chain's till talks to the loyalty server, with its journal beside the data.
        let server = (!demo && options.config.server.is_set()).then(|| options.config.server.clone());
        let journal = options.paths.data_dir.join("journal.sqlite");
        let worker = Worker::spawn(
            Box::new(move || match server {
                Some(server) => crate::remote::open_boxed(&server, &journal, clock),
                None => open_embedded(database, demo, clock),
            }),
            Box::new(move || repaint.request_repaint()),
        )?;
        let op_prefix = format!("{}-{}", options.config.till_id, start_stamp());
        let state = State::new(op_prefix, options.demo);
        let devices = start_devices(ctx, &options.config, options.hid_bus.as_ref());
        let mut device_screen = device_settings::DevicesScreen::new(detector(options.hid_bus.clone()));
        if options.scenario == Some(Scenario::Devices) {
            device_screen.open(ctx);
            let scan = crate::diagnostics::scan_config(&options.config.scan.effective(options.demo), 0);
            device_screen.check_typed(r"%E?;7001000010?\r", &scan, 0);
        }
        Ok(TillApp {
            devices,
            paste: paste::ClipboardPaste::new(options.clipboard),
            wedge: wedge_input::WedgeInput::default(),
            session: Session::new(state, worker),
            i18n: I18n::new(options.config.language),
            config: options.config,
            config_saver: options.config_file.map(ConfigSaver::spawn).transpose()?,
            scenario: options
                .scenario
                .map(|s| scenario_events(s, options.demo))
                .unwrap_or_default(),
            scenario_to_report: options.scenario,
            menu_open: false,
            export: support::ExportPanel::new(&options.paths),
            device_screen,
            hid_bus: options.hid_bus,
            devices_stopping: None,
            placed: false,
        })
    }

    pub fn state(&self) -> &State {
        &self.session.state
    }

    /// The last status of every device, by source name, as the status line shows it.
    pub fn device_statuses(&self) -> &std::collections::BTreeMap<String, crate::devices::DeviceStatus> {
        &self.devices.statuses
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
                if !crate::devices::inventory::apply(&mut self.config, &change) {
                    return;
                }
                tracing::info!(?change, "device settings changed");
                self.restart_devices(ctx);
            }
            AppCommand::ExportLogs(folder) => {
                self.export.start(ctx, folder, &self.config);
                return;
            }
        }
        self.save_config();
    }

    /// Restarts the device readers with the settings in force, so a change on the devices screen
    /// takes effect without restarting the till. The old readers are stopped on a thread of their
    /// own (joining them takes a read timeout or so) and the new ones start only when they are
    /// gone, because a serial port is opened by one reader at a time.
    fn restart_devices(&mut self, ctx: &egui::Context) {
        let old = std::mem::replace(&mut self.devices, start_devices(ctx, &reading_nothing(), None));
        if self.devices_stopping.is_some() {
            // Already waiting for a stop: `old` reads nothing, and the latest settings win.
            return;
        }
        let (done, stopped) = std::sync::mpsc::sync_channel(1);
        let repaint = ctx.clone();
        let stopper = std::thread::Builder::new()
            .name("device-stop".to_string())
            .spawn(move || {
                drop(old);
                let _ = done.send(());
                repaint.request_repaint();
            });
        match stopper {
            Ok(_) => self.devices_stopping = Some(stopped),
            // The readers went with the closure that could not start: start the new ones now.
            Err(error) => {
                tracing::error!(%error, "device stop thread not started; stopped the readers here");
                self.devices = start_devices(ctx, &self.config, self.hid_bus.as_ref());
            }
        }
    }

    /// Starts the new device readers once the old ones have stopped; called from `logic`.
    fn finish_device_restart(&mut self, ctx: &egui::Context) {
        let Some(stopped) = &self.devices_stopping else { return };
        if matches!(stopped.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty)) {
            return;
        }
        self.devices_stopping = None;
        self.devices = start_devices(ctx, &self.config, self.hid_bus.as_ref());
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
        for message in self.devices.drain() {
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
        for text in self.wedge.filter(ctx, events) {
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
            if theme::wide_button(ui, &i18n.t("devices-menu"), theme::Tone::Normal, true).clicked() {
                commands.push(AppCommand::OpenDevices);
            }
            if theme::wide_button(ui, &i18n.t("menu-close"), theme::Tone::Normal, true).clicked() {
                commands.push(AppCommand::ToggleMenu);
            }
        });
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
            });
    }

    fn status_line(&self, ui: &mut egui::Ui) {
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
            for (device, status) in &self.devices.statuses {
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
fn local_time_of_day(unix: crate::domain::UnixSeconds) -> String {
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
    /// What the devices screen asks for: a settings change (saved, readers restarted) or closing.
    Devices(device_settings::DevicesCommand),
}

impl eframe::App for TillApp {
    fn raw_input_hook(&mut self, ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        self.filter_keyboard(ctx, &mut raw_input.events);
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.session.poll();
        self.export.poll();
        self.device_screen.poll();
        self.finish_device_restart(ctx);
        self.take_device_input(ctx);
        self.take_clipboard_read(ctx);
        self.run_scenario();
        self.place_window(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
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
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("screen_scroll").show(ui, |ui| {
                if self.device_screen.is_open() {
                    let scan = crate::diagnostics::scan_config(
                        &self.config.scan.effective(self.session.state.demo),
                        device_settings::unix_seconds(),
                    );
                    let asked = self
                        .device_screen
                        .show(ui, &self.i18n, &self.config, &self.devices.statuses, &scan);
                    commands.extend(asked.into_iter().map(AppCommand::Devices));
                    return;
                }
                if self.menu_open {
                    self.menu(ui, &mut commands);
                }
                self.notice_banner(ui, &mut events);
                let paste_requested = std::cell::Cell::new(false);
                let cx = screens::ScreenContext {
                    i18n: &self.i18n,
                    program_name: &self.config.program_name,
                    wide,
                    paste_requested: &paste_requested,
                    paste_busy: self.paste.is_busy(),
                };
                screens::show(ui, &self.session.state, &cx, &mut events);
                if paste_requested.get() {
                    self.paste.start(ui.ctx());
                }
            });
        });
        let ctx = ui.ctx().clone();
        for command in commands {
            self.apply_app_command(&ctx, command);
        }
        for event in events {
            self.session.dispatch(event);
        }
    }
}

fn window_level(on_top: bool) -> egui::WindowLevel {
    if on_top {
        egui::WindowLevel::AlwaysOnTop
    } else {
        egui::WindowLevel::Normal
    }
}

/// Opens the embedded ledger on the worker thread; in demo mode, creates the demo programme on
/// first run.
fn open_embedded(path: PathBuf, demo: bool, clock: Box<dyn Clock>) -> Result<Box<dyn LoyaltyBackend>, LoyaltyError> {
    let now = clock.now();
    let mut backend = EmbeddedBackend::open(path, clock)?;
    if demo && backend.ledger().seed_demo(now)? {
        tracing::info!("demo programme created");
    }
    Ok(Box::new(backend))
}

/// A per-start stamp for operation ids (base 36 milliseconds), so ids never repeat across runs.
fn start_stamp() -> String {
    let mut n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut digits = Vec::new();
    while n > 0 {
        let d = (n % 36) as u8;
        digits.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
        n /= 36;
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
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
        Screen::Order => "order",
        Screen::Guest => "guest",
        Screen::Stamps => "stamps",
        Screen::Promotions => "promotions",
        Screen::ConfirmReplace { .. } => "replace",
        Screen::PaymentChoice { .. } => "payment-choice",
        Screen::Payment { .. } => "payment",
        Screen::Processing { .. } => "processing",
        Screen::Done { .. } => "done",
    }
}

/// The demo visit a scenario drives, event by event, through the real workflow.
fn scenario_events(scenario: Scenario, demo: bool) -> VecDeque<Event> {
    // Without the demo ledger (a till on a loyalty server) the demo order is typed as one line.
    let mut events = if demo {
        vec![Event::UseDemoOrder]
    } else {
        vec![
            Event::FieldEdited(Field::LinePrice, "1070".to_string()),
            Event::AddOrderLine,
        ]
    };
    if matches!(scenario, Scenario::Idle | Scenario::Devices) {
        return events.into();
    }
    if scenario == Scenario::AddGuest {
        events.push(Event::OpenPlugin);
        return events.into();
    }
    // A guest with a gift; on a server, the guest's card (a gift needs the server).
    let code = if demo || scenario != Scenario::Kept {
        "G100001"
    } else {
        "2000000000015"
    };
    events.extend([Event::FieldEdited(Field::Code, code.to_string()), Event::SubmitCode]);
    match scenario {
        Scenario::Idle | Scenario::AddGuest | Scenario::Guest | Scenario::Devices => {}
        Scenario::Stamps => events.push(Event::ShowStamps),
        Scenario::Promotions => events.push(Event::ShowPromotions),
        Scenario::Replace => events.push(Event::Scan(ScanEvent::manual("100002", 0))),
        Scenario::Payment | Scenario::Done => {
            events.extend([
                Event::StartPayment,
                Event::ChoosePaymentMode(PaymentMode::Spend),
                Event::ExactAmount,
            ]);
            if scenario == Scenario::Done {
                events.push(Event::ConfirmPayment);
            }
        }
        Scenario::Kept => events.extend([
            Event::StartPayment,
            Event::ChoosePaymentMode(PaymentMode::Keep),
            Event::ExactAmount,
            Event::ConfirmPayment,
        ]),
    }
    events.into()
}

/// The device readers for a config: lines set to «ignore» are not opened.
fn start_devices(
    ctx: &egui::Context,
    config: &Config,
    hid_bus: Option<&devices::HidBusFactory>,
) -> devices::DeviceInputs {
    devices::DeviceInputs::start(ctx, &crate::devices::inventory::readable(config), hid_bus)
}

/// A config with no device to read: starts no thread, so swapping it in stops the readers.
fn reading_nothing() -> Config {
    let mut config = Config::default();
    config.hid.pick_up_pos_devices = false;
    config
}

/// What the devices screen lists: the system's devices, HID through the bus the readers use.
fn detector(hid_bus: Option<devices::HidBusFactory>) -> device_settings::Detector {
    std::sync::Arc::new(move || match &hid_bus {
        Some(factory) => crate::devices::inventory::detect(factory.as_ref()),
        None => crate::devices::inventory::detect(&crate::devices::hid::bus::system_bus),
    })
}

/// Runs the till window until it is closed.
pub fn run(cli: Cli) -> Result<(), String> {
    let paths = Paths::resolve(cli.data_dir.as_deref()).ok_or("no home folder to keep the till's data in")?;
    std::fs::create_dir_all(&paths.data_dir)
        .map_err(|e| format!("cannot create the data folder {}: {e}", paths.data_dir.display()))?;
    let _log_guard = crate::logging::init(&paths.logs_dir);
    let _instance = match crate::platform::claim_single_instance(&paths.data_dir) {
        crate::platform::Instance::First(guard) => guard,
        crate::platform::Instance::AlreadyRunning => return Ok(()),
    };
    let mut config = Config::load(&paths.config_file);
    if let Some(lang) = cli.lang {
        config.language = lang;
    }
    if let Some(layout) = cli.layout {
        config.layout = layout;
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), demo = cli.demo, data = %paths.data_dir.display(), "starting");
    let size = cli.window_size.unwrap_or(match config.layout {
        Layout::SidePanel => (SIDE_PANEL_WIDTH, 768.0),
        Layout::FullScreen => (1024.0, 768.0),
    });
    let mut viewport = egui::ViewportBuilder::default()
        .with_title(config.program_name.clone())
        .with_app_id("loyalty-till")
        .with_inner_size(egui::vec2(size.0, size.1))
        .with_min_inner_size(egui::vec2(360.0, 480.0))
        .with_window_level(window_level(config.always_on_top));
    match eframe::icon_data::from_png_bytes(include_bytes!("../../assets/icon.png")) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(error) => tracing::warn!(%error, "the window icon could not be read"),
    }
    // An explicit size (screenshots) wins over full screen.
    if config.layout == Layout::FullScreen && cli.window_size.is_none() {
        viewport = viewport.with_fullscreen(true);
    }
    let native = eframe::NativeOptions {
        viewport,
        ..Default::default()
    };
    let options = AppOptions {
        config_file: Some(paths.config_file.clone()),
        paths,
        demo: cli.demo,
        config: config.clone(),
        scenario: cli.scenario,
        clock: Box::new(SystemClock),
        hid_bus: None,
        clipboard: None,
    };
    let fixed_size = cli.window_size.is_some();
    eframe::run_native(
        "loyalty-till",
        native,
        Box::new(move |cc| {
            let mut app = TillApp::new(&cc.egui_ctx, options)?;
            app.placed = fixed_size;
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| format!("the window could not be opened: {e}"))
}
