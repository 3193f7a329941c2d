//! Input devices: barcode scanners and card readers on serial ports, which send each read as a
//! line of bytes, and keyboard-mode ones captured by [`keyboard`] (Windows Raw Input).
//! [`framing`] cuts the byte stream into reads (pure); [`serial`] owns the port on
//! a named thread and sends [`DeviceMessage`]s; [`classify_frame`] turns a read into the
//! [`ScanEvent`] every input source delivers.

pub mod burst_gate;
pub mod framing;
pub mod hid;
pub mod inventory;
pub mod keyboard;
#[cfg(windows)]
pub mod llhook;
#[cfg(windows)]
pub mod rawinput;
pub mod serial;

use crate::domain::ScanEvent;
use crate::scan::{ParsedScan, ScanError, ScanParseConfig, classify};
use framing::DropReason;
use serde::{Deserialize, Serialize};

/// The devices `config.toml` names, with the fields it keeps them in. The config holds them and
/// hands them over: this module never reads the config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceLines {
    /// Scanners and card readers on serial (or USB-COM) ports, read directly by the till.
    pub serial_devices: Vec<serial::SerialSettings>,
    /// Keyboard-mode scanners and card readers, captured by device whatever window has focus
    /// (Windows Raw Input).
    pub keyboard_devices: Vec<keyboard::KeyboardDeviceSettings>,
    /// HID point-of-sale scanners and card readers, read through their reports.
    pub hid: hid::bus::HidSettings,
}
use std::fmt;

/// The state of a device's connection, reported when it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    /// The port is open and being read.
    Connected,
    /// The port could not be opened or went away (unplugged, read error); the reason is the
    /// system's message, which names no scanned data.
    Lost(String),
    /// Reopening attempts have started; `Connected` follows when one succeeds.
    Reopening,
}

/// What a device thread sends to the application.
#[derive(Clone, PartialEq, Eq)]
pub enum DeviceMessage {
    /// One complete read, without its terminator. Unmasked: never log `bytes`.
    Frame {
        /// The port name as configured ("COM3", "/dev/ttyACM0").
        source: String,
        bytes: Vec<u8>,
        /// The barcode symbology, where the device reports it (HID POS scanners send an AIM id).
        symbology: Option<String>,
        /// When the read was complete, milliseconds since the Unix epoch.
        received_at_ms: i64,
    },
    Status {
        source: String,
        status: DeviceStatus,
    },
    /// Bytes thrown away: line noise, an oversize or unfinished read.
    Noise {
        source: String,
        dropped: usize,
        reason: DropReason,
    },
}

impl DeviceMessage {
    pub fn source(&self) -> &str {
        match self {
            DeviceMessage::Frame { source, .. }
            | DeviceMessage::Status { source, .. }
            | DeviceMessage::Noise { source, .. } => source,
        }
    }
}

/// Shows a frame's length, never its bytes, so that `{:?}` is safe in logs.
impl fmt::Debug for DeviceMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceMessage::Frame {
                source,
                bytes,
                symbology,
                received_at_ms,
            } => f
                .debug_struct("Frame")
                .field("source", source)
                .field("bytes", &format_args!("<{} bytes>", bytes.len()))
                .field("symbology", symbology)
                .field("received_at_ms", received_at_ms)
                .finish(),
            DeviceMessage::Status { source, status } => f
                .debug_struct("Status")
                .field("source", source)
                .field("status", status)
                .finish(),
            DeviceMessage::Noise {
                source,
                dropped,
                reason,
            } => f
                .debug_struct("Noise")
                .field("source", source)
                .field("dropped", dropped)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// Keyboard-mode capture running in the background; dropping it stops it.
#[cfg(windows)]
pub type KeyboardCapture = rawinput::RawKeyboardReader;
/// There is no keyboard-mode capture off Windows, so there is never one running.
#[cfg(not(windows))]
pub type KeyboardCapture = std::convert::Infallible;

/// Starts capturing the configured keyboard-mode devices (none configured: nothing to start).
/// The error is the reason, for the log and the status line of every configured device.
pub fn start_keyboard_capture(
    devices: &[keyboard::KeyboardDeviceSettings],
    sink: std::sync::mpsc::SyncSender<DeviceMessage>,
) -> Result<Option<KeyboardCapture>, String> {
    if devices.is_empty() {
        return Ok(None);
    }
    #[cfg(windows)]
    {
        rawinput::RawKeyboardReader::spawn(devices.to_vec(), sink)
            .map(Some)
            .map_err(|e| e.to_string())
    }
    #[cfg(not(windows))]
    {
        drop(sink);
        Err("keyboard-mode devices are captured on Windows only".to_string())
    }
}

/// The low-level keyboard hook keeping loyalty reads out of other programs; dropping it removes
/// the hook.
#[cfg(windows)]
pub type KeyboardGate = llhook::KeyboardGate;
/// There is no keyboard hook off Windows.
#[cfg(not(windows))]
pub type KeyboardGate = std::convert::Infallible;

/// Starts the keyboard gate (Windows only) when `enabled`. `is_loyalty_only` judges a finished
/// burst: true keeps it from the focused program. The error is the reason.
pub fn start_keyboard_gate(
    enabled: bool,
    is_loyalty_only: Box<dyn Fn(&str) -> bool + Send>,
    sink: std::sync::mpsc::SyncSender<DeviceMessage>,
) -> Result<Option<KeyboardGate>, String> {
    if !enabled {
        return Ok(None);
    }
    #[cfg(windows)]
    {
        let gate = burst_gate::BurstGate::new(crate::wedge::BurstConfig::default(), is_loyalty_only);
        llhook::KeyboardGate::spawn(gate, sink)
            .map(Some)
            .map_err(|e| e.to_string())
    }
    #[cfg(not(windows))]
    {
        drop((is_loyalty_only, sink));
        Ok(None)
    }
}

/// Classifies a read from a device and builds its [`ScanEvent`]; token ages are checked against
/// the time the read was received.
pub fn classify_frame(
    source: &str,
    bytes: &[u8],
    received_at_ms: i64,
    config: &ScanParseConfig,
) -> Result<(ParsedScan, ScanEvent), ScanError> {
    let parsed = classify(bytes, config, received_at_ms.div_euclid(1000))?;
    let event = parsed.to_scan_event(source, received_at_ms);
    Ok((parsed, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ScanKind;
    use crate::scan::magstripe::IdentifyField;

    fn config() -> ScanParseConfig {
        ScanParseConfig {
            identify_field: IdentifyField::default(),
            token_secret: b"secret".to_vec(),
            token_max_age_secs: 60,
            today_yymm: 2511,
        }
    }

    #[test]
    fn debug_hides_frame_bytes() {
        let message = DeviceMessage::Frame {
            source: "COM3".to_string(),
            bytes: b"4276380012345678".to_vec(),
            symbology: None,
            received_at_ms: 1,
        };
        let shown = format!("{message:?}");
        assert!(!shown.contains("0012345"), "{shown}");
        assert!(shown.contains("<16 bytes>"));
        assert_eq!(message.source(), "COM3");
    }

    #[test]
    fn a_frame_becomes_a_scan_event() {
        let (parsed, event) = classify_frame("COM3", b"GMB-00001234", 1_700_000_000_123, &config()).unwrap();
        assert_eq!(event.source, "COM3");
        assert_eq!(event.kind, ScanKind::Barcode);
        assert_eq!(event.payload, parsed.identifier);
        assert_eq!(event.received_at_ms, 1_700_000_000_123);
        assert!(classify_frame("COM3", b"", 0, &config()).is_err());
    }
}
