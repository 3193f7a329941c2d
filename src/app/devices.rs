//! The till's scanners and card readers, as the window sees them: reader threads feed one
//! channel, a named relay wakes the UI for every message, and `logic` drains them.

use crate::config::ScanSettings;
use crate::devices::DeviceLines;
use crate::devices::hid::bus::HidBus;
use crate::devices::hid::reader::{HidReaders, HidWatchSettings};
use crate::devices::serial::{SerialReader, SerialSettings};
use crate::devices::{DeviceMessage, DeviceStatus};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};

/// Makes the HID bus the readers list and open: the system's (hidapi), or a scripted one in tests.
pub type HidBusFactory = Arc<dyn Fn() -> Result<Box<dyn HidBus>, String> + Send + Sync>;

/// Reads come one at a time from a person's hand; a deep queue would only hide a stuck device.
const QUEUE_DEPTH: usize = 64;

pub struct DeviceInputs {
    /// Held so the readers live as long as the window; dropping one stops its thread.
    _readers: Vec<SerialReader>,
    _keyboards: Option<crate::devices::KeyboardCapture>,
    _hid: Option<HidReaders>,
    _gate: Option<crate::devices::KeyboardGate>,
    messages: Receiver<DeviceMessage>,
    /// The last status of every device, by source name, for the status line.
    pub statuses: BTreeMap<String, DeviceStatus>,
}

impl DeviceInputs {
    /// Starts a reader per configured port, the keyboard-mode capture, and the HID watcher. A
    /// port that fails its settings check is logged and shown as lost; the others still start.
    /// `hid_bus`: `None` reads the system's HID devices.
    pub fn start(
        ctx: &egui::Context,
        config: &DeviceLines,
        scan: &ScanSettings,
        hid_bus: Option<&HidBusFactory>,
    ) -> DeviceInputs {
        let serial: &[SerialSettings] = &config.serial_devices;
        let keyboards = &config.keyboard_devices;
        let (reader_tx, reader_rx) = mpsc::sync_channel::<DeviceMessage>(QUEUE_DEPTH);
        let (app_tx, app_rx) = mpsc::sync_channel::<DeviceMessage>(QUEUE_DEPTH);
        let mut statuses = BTreeMap::new();
        let mut readers = Vec::new();
        for settings in serial {
            match SerialReader::spawn(settings.clone(), reader_tx.clone()) {
                Ok(reader) => readers.push(reader),
                Err(error) => {
                    tracing::error!(port = %settings.port, %error, "serial device not started");
                    statuses.insert(settings.source_name(), DeviceStatus::Lost(error.to_string()));
                }
            }
        }
        let keyboards_started = match crate::devices::start_keyboard_capture(keyboards, reader_tx.clone()) {
            Ok(capture) => capture,
            Err(reason) => {
                tracing::error!(%reason, "keyboard-mode devices not captured");
                for device in keyboards {
                    statuses.insert(device.source_name(), DeviceStatus::Lost(reason.clone()));
                }
                None
            }
        };
        let hid = start_hid(&config.hid, hid_bus, reader_tx.clone());
        // The gate and Raw Input capture are alternatives: the gate cannot tell keyboards apart,
        // and keys it takes away never reach Raw Input. Configured keyboard-mode devices are read
        // by device (every read, listen-only); without any, the gate keeps loyalty reads out of
        // other programs.
        let gate = if keyboards.is_empty() {
            let settings = scan.effective(false);
            let is_loyalty_only = Box::new(move |text: &str| {
                let now = crate::devices::serial::unix_ms().div_euclid(1000);
                let config = crate::diagnostics::scan_config(&settings, now);
                crate::devices::burst_gate::is_loyalty_only(text, &config, now)
            });
            let enabled = scan.keep_loyalty_reads_from_other_programs;
            crate::devices::start_keyboard_gate(enabled, is_loyalty_only, reader_tx.clone()).unwrap_or_else(|reason| {
                tracing::error!(%reason, "loyalty reads typed into other programs will reach them");
                None
            })
        } else {
            None
        };
        drop(reader_tx);
        if !readers.is_empty() || keyboards_started.is_some() || hid.is_some() || gate.is_some() {
            let ctx = ctx.clone();
            let relay = std::thread::Builder::new()
                .name("device-relay".to_string())
                .spawn(move || {
                    for message in reader_rx {
                        if app_tx.send(message).is_err() {
                            break;
                        }
                        ctx.request_repaint();
                    }
                });
            if let Err(error) = relay {
                tracing::error!(%error, "device relay not started: scanners will not be read");
            }
        }
        DeviceInputs {
            _readers: readers,
            _keyboards: keyboards_started,
            _hid: hid,
            _gate: gate,
            messages: app_rx,
            statuses,
        }
    }

    /// Everything the devices sent since the last call. Status changes are also recorded here.
    pub fn drain(&mut self) -> Vec<DeviceMessage> {
        let mut out = Vec::new();
        loop {
            match self.messages.try_recv() {
                Ok(message) => {
                    if let DeviceMessage::Status { source, status } = &message {
                        self.statuses.insert(source.clone(), status.clone());
                    }
                    out.push(message);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return out,
            }
        }
    }
}

/// The HID watcher, unless nothing could be read: POS devices are not picked up and none is
/// listed with a role. The bus is made on the watcher's thread.
fn start_hid(
    settings: &crate::devices::hid::bus::HidSettings,
    bus: Option<&HidBusFactory>,
    sink: mpsc::SyncSender<DeviceMessage>,
) -> Option<HidReaders> {
    use crate::devices::hid::bus::HidRole;
    if !settings.pick_up_pos_devices && settings.devices.iter().all(|d| d.role == HidRole::Ignore) {
        return None;
    }
    let factory = bus.cloned();
    let make_bus = move || match factory {
        Some(factory) => factory(),
        None => crate::devices::hid::bus::system_bus(),
    };
    match HidReaders::spawn(make_bus, settings.clone(), HidWatchSettings::default(), sink) {
        Ok(readers) => Some(readers),
        Err(error) => {
            tracing::error!(%error, "HID watcher thread not started: HID devices will not be read");
            None
        }
    }
}
