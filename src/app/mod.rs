//! The wiring of the till: opens the backend on the worker thread (seeding the demo programme),
//! starts and restarts the device readers, and hands the ui the handles it draws from. The ui
//! itself never opens a backend, starts a reader or seeds a database.

pub mod devices;

pub use devices::HidBusFactory;

use crate::backend::{Clock, EmbeddedBackend, LoyaltyBackend, SystemClock};
use crate::cli::{Cli, Scenario};
use crate::config::{Config, ConfigSaver, Layout, Paths, SIDE_PANEL_WIDTH, ScanSettings};
use crate::devices::{DeviceLines, DeviceMessage, DeviceStatus};
use crate::domain::{LoyaltyError, ScanEvent};
use crate::money::Kopecks;
use crate::startup;
use crate::ui::{TillApp, TillParts, device_settings, paste, window_level};
use crate::worker::{Session, Worker};
use crate::workflow::{Event, Field, PaymentMode, ReturnMode, State};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};

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
    pub hid_bus: Option<HidBusFactory>,
    /// The clipboard «QR из буфера» reads; `None`: the system's.
    pub clipboard: Option<paste::ClipboardSource>,
    /// Started on the worker once it has opened the ledger (or failed to): the back office and
    /// the handhelds' endpoint open the same file, and two connections making a new SQLite file
    /// at once can be refused at once with "database is locked", whatever the busy timeout.
    pub after_ledger: Option<Box<dyn FnOnce() + Send>>,
}

/// Builds the till: the worker with its backend, the device readers, the devices screen's
/// detector, and the scenario's events.
pub fn start(ctx: &egui::Context, options: AppOptions) -> std::io::Result<TillApp> {
    let repaint = ctx.clone();
    let database = options.paths.database(options.demo);
    let demo = options.demo;
    let clock = options.clock;
    // A chain's till talks to the loyalty server, with its journal beside the data.
    let server = (!demo && options.config.server.is_set()).then(|| options.config.server.clone());
    let journal = options.paths.data_dir.join("journal.sqlite");
    // The «Закрыть смену» picture shows a hold left open, as a till stopped mid-payment leaves it.
    let stopped_hold = demo && options.scenario == Some(Scenario::Shift);
    let after_ledger = options.after_ledger;
    let worker = Worker::spawn(
        Box::new(move || {
            // Opening the ledger (a first start makes and seeds it) takes a core the window's
            // first frame needs on a two-core till; the first screen shows nothing from it.
            startup::wait_for_first_frame();
            let backend = match server {
                Some(server) => crate::remote::open_boxed(&server, &journal, clock),
                None => open_embedded(database, demo, stopped_hold, clock),
            };
            if let Some(start) = after_ledger {
                start();
            }
            backend
        }),
        Box::new(move || repaint.request_repaint()),
    )?;
    startup::step("worker started (the ledger opens on it after the first frame)");
    let op_prefix = format!("{}-{}", options.config.till_id, start_stamp());
    let state = State::new(op_prefix, options.demo);
    let devices = Devices::start(ctx, &options.config, options.hid_bus);
    startup::step("device readers started");
    let mut device_screen = device_settings::DevicesScreen::new(devices.detector());
    if options.scenario == Some(Scenario::Devices) {
        device_screen.open(ctx);
        let scan = crate::diagnostics::scan_config(&options.config.scan.effective(options.demo), 0);
        device_screen.check_typed(r"%E?;7001000010?\r", &scan, 0);
    }
    Ok(TillApp::from_parts(
        ctx,
        TillParts {
            session: Session::new(state, worker),
            devices,
            paste: paste::ClipboardPaste::new(options.clipboard),
            config_saver: options.config_file.map(ConfigSaver::spawn).transpose()?,
            scenario: options
                .scenario
                .map(|s| scenario_events(s, options.demo))
                .unwrap_or_default(),
            scenario_to_report: options.scenario,
            device_screen,
            paths: options.paths,
            config: options.config,
        },
    ))
}

/// The device readers of the config in force, restarted when the devices screen changes it.
pub struct Devices {
    inputs: devices::DeviceInputs,
    /// Kept to restart the readers with the same bus after a settings change.
    hid_bus: Option<HidBusFactory>,
    /// The old readers are being stopped off the UI thread; the new ones start once this says
    /// they are gone, with these settings.
    stopping: Option<(Receiver<()>, DeviceLines, ScanSettings)>,
}

impl Devices {
    fn start(ctx: &egui::Context, config: &Config, hid_bus: Option<HidBusFactory>) -> Devices {
        let inputs = start_inputs(ctx, &config.device_lines(), &config.scan, hid_bus.as_ref());
        Devices {
            inputs,
            hid_bus,
            stopping: None,
        }
    }

    /// What the devices screen lists: the system's devices, HID through the bus the readers use.
    pub fn detector(&self) -> device_settings::Detector {
        let hid_bus = self.hid_bus.clone();
        std::sync::Arc::new(move || match &hid_bus {
            Some(factory) => crate::devices::inventory::detect(factory.as_ref()),
            None => crate::devices::inventory::detect(&crate::devices::hid::bus::system_bus),
        })
    }

    /// Everything the devices sent since the last call; starts the new readers of a restart once
    /// the old ones are gone.
    pub fn drain(&mut self, ctx: &egui::Context) -> Vec<DeviceMessage> {
        self.finish_restart(ctx);
        self.inputs.drain()
    }

    /// The last status of every device, by source name, for the status line.
    pub fn statuses(&self) -> &BTreeMap<String, DeviceStatus> {
        &self.inputs.statuses
    }

    /// Restarts the readers with these settings, so a change on the devices screen takes effect
    /// without restarting the till. The old readers are stopped on a thread of their own
    /// (joining them takes a read timeout or so) and the new ones start only when they are gone,
    /// because a serial port is opened by one reader at a time.
    pub fn restart(&mut self, ctx: &egui::Context, config: &Config) {
        let nothing = DeviceLines {
            hid: crate::devices::hid::bus::HidSettings {
                pick_up_pos_devices: false,
                ..Default::default()
            },
            ..DeviceLines::default()
        };
        let no_gate = ScanSettings {
            keep_loyalty_reads_from_other_programs: false,
            ..config.scan.clone()
        };
        let old = std::mem::replace(&mut self.inputs, start_inputs(ctx, &nothing, &no_gate, None));
        if let Some((_, lines, scan)) = &mut self.stopping {
            // Already waiting for a stop: `old` reads nothing, and the latest settings win.
            *lines = config.device_lines();
            *scan = config.scan.clone();
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
            Ok(_) => self.stopping = Some((stopped, config.device_lines(), config.scan.clone())),
            // The readers went with the closure that could not start: start the new ones now.
            Err(error) => {
                tracing::error!(%error, "device stop thread not started; stopped the readers here");
                self.inputs = start_inputs(ctx, &config.device_lines(), &config.scan, self.hid_bus.as_ref());
            }
        }
    }

    fn finish_restart(&mut self, ctx: &egui::Context) {
        let Some((stopped, _, _)) = &self.stopping else { return };
        if matches!(stopped.try_recv(), Err(TryRecvError::Empty)) {
            return;
        }
        if let Some((_, lines, scan)) = self.stopping.take() {
            self.inputs = start_inputs(ctx, &lines, &scan, self.hid_bus.as_ref());
        }
    }
}

/// The device readers for a config: lines set to «ignore» are not opened.
fn start_inputs(
    ctx: &egui::Context,
    lines: &DeviceLines,
    scan: &ScanSettings,
    hid_bus: Option<&HidBusFactory>,
) -> devices::DeviceInputs {
    devices::DeviceInputs::start(ctx, &crate::devices::inventory::readable(lines), scan, hid_bus)
}

/// Opens the embedded ledger on the worker thread; in demo mode, creates the demo programme on
/// first run.
fn open_embedded(
    path: PathBuf,
    demo: bool,
    stopped_hold: bool,
    clock: Box<dyn Clock>,
) -> Result<Box<dyn LoyaltyBackend>, LoyaltyError> {
    let now = clock.now();
    let mut backend = EmbeddedBackend::open(path, clock)?;
    if demo && backend.ledger().seed_demo(now)? {
        tracing::info!("demo programme created");
    }
    if stopped_hold {
        let check = crate::domain::CheckInfo {
            subtotal: Kopecks::from_roubles(500),
            gift_codes: Vec::new(),
            lines: Vec::new(),
        };
        let guest = backend
            .ledger()
            .identify("100002", crate::domain::ScanKind::Manual, now)?
            .card
            .guest_id;
        backend
            .ledger()
            .hold("scenario-stopped-till", guest, Kopecks::from_roubles(50), &check, now)?;
    }
    Ok(Box::new(backend))
}

/// The waiters' handhelds endpoint, on the till's own backend: the embedded ledger file, or the
/// chain's server with a journal of its own (two backends never share one journal file).
fn start_handhelds(paths: &Paths, config: &Config, demo: bool) {
    let database = paths.database(demo);
    let server = (!demo && config.server.is_set()).then(|| config.server.clone());
    let journal = paths.data_dir.join("handhelds-journal.sqlite");
    crate::handhelds::start(
        config.handhelds.clone(),
        config.language,
        config.scan.effective(demo),
        paths.handheld_orders(demo),
        Box::new(move || match server {
            Some(server) => crate::remote::open_boxed(&server, &journal, Box::new(SystemClock)),
            None => Ok(Box::new(EmbeddedBackend::open(database, Box::new(SystemClock))?)),
        }),
        crate::handhelds::pos::shared_feed(),
        Some(paths.config_file.clone()),
    );
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
    if matches!(scenario, Scenario::NotFound | Scenario::Enrol) {
        events.extend([
            Event::OpenPlugin,
            Event::FieldEdited(Field::Code, "777001".to_string()),
            Event::SubmitCode,
        ]);
        if scenario == Scenario::Enrol {
            events.extend([
                Event::StartEnrol,
                Event::FieldEdited(Field::Phone, "+7 916 555-11-22".to_string()),
                Event::FieldEdited(Field::Name, "Вера".to_string()),
                // The name field in use: its keypad of Russian letters shows.
                Event::FocusField(Field::Name),
            ]);
        }
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
        Scenario::Idle
        | Scenario::AddGuest
        | Scenario::Guest
        | Scenario::Devices
        | Scenario::NotFound
        | Scenario::Enrol => {}
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
        Scenario::ReturnFind | Scenario::ReturnLines | Scenario::ReturnPreview | Scenario::ReturnDone => {
            events.extend([
                Event::StartPayment,
                Event::ChoosePaymentMode(PaymentMode::Spend),
                Event::ExactAmount,
                Event::ConfirmPayment,
                Event::OpenReturns {
                    last_check: scenario != Scenario::ReturnFind,
                },
            ]);
            if scenario == Scenario::ReturnLines {
                events.extend([
                    Event::StepReturnLine { line: 0, more: true },
                    Event::StepReturnLine { line: 1, more: true },
                ]);
            } else if scenario != Scenario::ReturnFind {
                events.push(Event::PreviewReturn(ReturnMode::Full));
            }
            if scenario == Scenario::ReturnDone {
                events.push(Event::ConfirmReturn);
            }
        }
        Scenario::Shift | Scenario::ShiftReport => {
            events.extend([
                Event::StartPayment,
                Event::ChoosePaymentMode(PaymentMode::Spend),
                Event::ExactAmount,
                Event::ConfirmPayment,
                Event::OpenShift,
            ]);
            if scenario == Scenario::ShiftReport {
                events.push(Event::ShowShiftReport);
            }
        }
        Scenario::Split | Scenario::SplitDone | Scenario::SplitAccounts => {
            let second = if scenario == Scenario::SplitAccounts {
                "700001"
            } else {
                "100002"
            };
            events.extend([
                Event::StartPayment,
                Event::ChoosePaymentMode(PaymentMode::Spend),
                Event::AddCard,
                Event::FieldEdited(Field::Code, second.to_string()),
                Event::SubmitCode,
                Event::ExactAmount,
            ]);
            if scenario == Scenario::SplitDone {
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

/// Runs the till window until it is closed.
pub fn run(cli: Cli) -> Result<(), String> {
    let paths = Paths::resolve(cli.data_dir.as_deref()).ok_or("no home folder to keep the till's data in")?;
    std::fs::create_dir_all(&paths.data_dir)
        .map_err(|e| format!("cannot create the data folder {}: {e}", paths.data_dir.display()))?;
    startup::step("data folder");
    let _log_guard =
        crate::logging::init_with_level(&paths.logs_dir, &Config::load_quietly(&paths.config_file).log_level);
    startup::log_opened();
    startup::step("log opened");
    let _instance = match crate::platform::claim_single_instance(&paths.data_dir) {
        crate::platform::Instance::First(guard) => guard,
        crate::platform::Instance::AlreadyRunning => return Ok(()),
    };
    startup::step("single instance claimed");
    let mut config = Config::load(&paths.config_file);
    startup::step("config read");
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
    // 64 px, 8 bits: the title bar and the task switcher show it small, and the 256 px 16-bit
    // icon (the installer's) cost a millisecond to decode and 256 KB to send to the display
    // before the window could open.
    match eframe::icon_data::from_png_bytes(include_bytes!("../../assets/window-icon.png")) {
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
    // A single cafe's back office, over the same ledger file (a chain's is on its server), and
    // the handhelds' endpoint: once the ledger is made.
    let (later_paths, later_config, demo) = (paths.clone(), config.clone(), cli.demo);
    let after_ledger: Box<dyn FnOnce() + Send> = Box::new(move || {
        if !later_config.server.is_set() {
            let scan = later_config.scan.effective(demo);
            let qr = crate::backoffice::QrKey::new(&scan.token_secret, scan.token_max_age_secs);
            crate::backoffice::local::start(later_paths.database(demo), later_config.back_office_port, qr);
        }
        start_handhelds(&later_paths, &later_config, demo);
    });
    let options = AppOptions {
        config_file: Some(paths.config_file.clone()),
        paths,
        demo: cli.demo,
        config,
        scenario: cli.scenario,
        clock: Box::new(SystemClock),
        hid_bus: None,
        clipboard: None,
        after_ledger: Some(after_ledger),
    };
    let fixed_size = cli.window_size.is_some();
    startup::step("window options");
    eframe::run_native(
        "loyalty-till",
        native,
        Box::new(move |cc| {
            startup::window_created();
            let mut app = start(&cc.egui_ctx, options)?;
            startup::step("app built");
            app.set_placed(fixed_size);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| format!("the window could not be opened: {e}"))
}
