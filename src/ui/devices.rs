//! The till's scanners and card readers, as the window sees them: reader threads feed one
//! channel, a named relay wakes the UI for every message, and `logic` drains them.

use crate::devices::keyboard::KeyboardDeviceSettings;
use crate::devices::serial::{SerialReader, SerialSettings};
use crate::devices::{DeviceMessage, DeviceStatus};
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, TryRecvError};

/// Reads come one at a time from a person's hand; a deep queue would only hide a stuck device.
const QUEUE_DEPTH: usize = 64;

pub struct DeviceInputs {
    /// Held so the readers live as long as the window; dropping one stops its thread.
    _readers: Vec<SerialReader>,
    _keyboards: Option<crate::devices::KeyboardCapture>,
    messages: Receiver<DeviceMessage>,
    /// The last status of every device, by source name, for the status line.
    pub statuses: BTreeMap<String, DeviceStatus>,
}

impl DeviceInputs {
    /// Starts a reader per configured port. A port that fails its settings check is logged and
    /// shown as lost; the others still start.
    pub fn start(ctx: &egui::Context, serial: &[SerialSettings], keyboards: &[KeyboardDeviceSettings]) -> DeviceInputs {
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
        drop(reader_tx);
        if !readers.is_empty() || keyboards_started.is_some() {
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
