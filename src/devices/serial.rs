//! A serial-port scanner or card reader: the port settings, the list of ports, and
//! [`SerialReader`], the named thread that owns the port, cuts its bytes into reads and survives
//! the device being unplugged and plugged back in.

use super::framing::{FrameEvent, Framer, FramingConfig};
use super::hid::bus::HidRole;
use super::{DeviceMessage, DeviceStatus};
use crate::mask::mask_code;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one read waits for bytes: also how soon `stop` and the idle rules are noticed.
pub const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// How often a lost port is tried again.
pub const REOPEN_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    #[default]
    None,
    Odd,
    Even,
}

/// A USB device's identity, which survives the port name changing when it is plugged into
/// another socket (COM3 becomes COM7, ttyACM0 becomes ttyACM1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsbId {
    pub vid: u16,
    pub pid: u16,
    /// When set, only the device with this serial number matches.
    #[serde(default)]
    pub serial: Option<String>,
}

impl UsbId {
    /// Whether a port's USB identity is this one; a missing serial in `self` matches any.
    pub fn matches(&self, other: &UsbId) -> bool {
        self.vid == other.vid
            && self.pid == other.pid
            && self
                .serial
                .as_ref()
                .is_none_or(|serial| other.serial.as_ref() == Some(serial))
    }
}

/// How to open and read one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SerialSettings {
    /// "COM3" on Windows, "/dev/ttyACM0" on Linux.
    pub port: String,
    pub baud: u32,
    /// 5..=8.
    pub data_bits: u8,
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
    pub framing: FramingConfig,
    /// When set, a lost port is looked up again by this identity, in case it came back under
    /// another name.
    pub usb_id: Option<UsbId>,
    /// Scanner or card reader, as chosen on the devices screen (the same roles as HID devices);
    /// a port set to `ignore` is not opened.
    pub role: HidRole,
}

/// 9600 8N1 with CR: what most scanners leave the factory with.
impl Default for SerialSettings {
    fn default() -> Self {
        SerialSettings {
            port: if cfg!(windows) { "COM1" } else { "/dev/ttyUSB0" }.to_string(),
            baud: 9600,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            framing: FramingConfig::default(),
            usb_id: None,
            role: HidRole::Scanner,
        }
    }
}

/// Settings a port cannot be opened with. Checked before the thread starts, so that a typo in
/// the configuration is an error at once rather than an endless reopening loop.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("no port name and no USB identity to find the port by")]
    NoPort,
    #[error("the baud rate must be positive")]
    ZeroBaud,
    #[error("data bits must be 5 to 8, not {0}")]
    DataBits(u8),
    #[error("stop bits must be 1 or 2, not {0}")]
    StopBits(u8),
    #[error("the longest read must be at least 1 byte")]
    ZeroMaxFrameLen,
    #[error("the idle gap must be at least 1 ms")]
    ZeroIdleGap,
}

impl SerialSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.port.trim().is_empty() && self.usb_id.is_none() {
            return Err(SettingsError::NoPort);
        }
        if self.baud == 0 {
            return Err(SettingsError::ZeroBaud);
        }
        if !(5..=8).contains(&self.data_bits) {
            return Err(SettingsError::DataBits(self.data_bits));
        }
        if !matches!(self.stop_bits, 1 | 2) {
            return Err(SettingsError::StopBits(self.stop_bits));
        }
        if self.framing.max_frame_len == 0 {
            return Err(SettingsError::ZeroMaxFrameLen);
        }
        if self.framing.idle_gap_ms == 0 {
            return Err(SettingsError::ZeroIdleGap);
        }
        Ok(())
    }

    /// The name messages carry: the configured port, or the USB identity when only that is set.
    pub fn source_name(&self) -> String {
        match (&self.usb_id, self.port.trim().is_empty()) {
            (Some(usb), true) => format!("usb {:04x}:{:04x}", usb.vid, usb.pid),
            _ => self.port.clone(),
        }
    }

    fn builder(&self, port: &str) -> serialport::SerialPortBuilder {
        let data_bits = match self.data_bits {
            5 => serialport::DataBits::Five,
            6 => serialport::DataBits::Six,
            7 => serialport::DataBits::Seven,
            _ => serialport::DataBits::Eight,
        };
        let parity = match self.parity {
            Parity::None => serialport::Parity::None,
            Parity::Odd => serialport::Parity::Odd,
            Parity::Even => serialport::Parity::Even,
        };
        let stop_bits = match self.stop_bits {
            2 => serialport::StopBits::Two,
            _ => serialport::StopBits::One,
        };
        serialport::new(port, self.baud)
            .data_bits(data_bits)
            .parity(parity)
            .stop_bits(stop_bits)
            .flow_control(serialport::FlowControl::None)
            .timeout(READ_TIMEOUT)
    }
}

/// One port the system knows about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    pub name: String,
    pub usb: Option<UsbId>,
    pub product: Option<String>,
}

/// The serial ports present now, sorted by name. Without libudev, Linux lists only what /sys
/// shows, often without USB details; on Windows the list is complete. Never fails: a port list
/// that cannot be read is an empty one, and the reason is logged.
pub fn list_ports() -> Vec<PortInfo> {
    try_list_ports().unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot list serial ports");
        Vec::new()
    })
}

/// [`list_ports`], with the reason when the system would not list them (for the devices screen,
/// which says so rather than showing an empty list as if nothing were plugged in).
pub fn try_list_ports() -> Result<Vec<PortInfo>, serialport::Error> {
    let ports = serialport::available_ports()?;
    let mut list: Vec<PortInfo> = ports
        .into_iter()
        .map(|port| match port.port_type {
            serialport::SerialPortType::UsbPort(usb) => PortInfo {
                name: port.port_name,
                usb: Some(UsbId {
                    vid: usb.vid,
                    pid: usb.pid,
                    serial: usb.serial_number,
                }),
                product: usb.product,
            },
            _ => PortInfo {
                name: port.port_name,
                usb: None,
                product: None,
            },
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// The name of the first port with this USB identity.
pub fn find_port(usb: &UsbId, ports: &[PortInfo]) -> Option<String> {
    ports
        .iter()
        .find(|port| port.usb.as_ref().is_some_and(|found| usb.matches(found)))
        .map(|port| port.name.clone())
}

/// Reads one device on a named thread until [`SerialReader::stop`] (or drop).
pub struct SerialReader {
    source: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SerialReader {
    /// Starts the thread. It reports `Connected` once the port is open, or `Lost` and
    /// `Reopening` while it is not, and keeps trying. Fails only for invalid settings or when
    /// the thread cannot be started.
    pub fn spawn(settings: SerialSettings, sink: SyncSender<DeviceMessage>) -> io::Result<SerialReader> {
        settings
            .validate()
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let source = settings.source_name();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_name = format!("serial {source}");
        let link = Link {
            source: source.clone(),
            sink,
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || run(settings, link))?;
        Ok(SerialReader {
            source,
            stop,
            thread: Some(thread),
        })
    }

    /// The name this reader's messages carry.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// False once the thread has ended: stopped, or the receiver of its messages is gone.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|thread| !thread.is_finished())
    }

    /// Ends the thread (within about one read timeout) and waits for it; the port is closed.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(source = %self.source, "the serial reader thread panicked");
        }
    }
}

/// A dropped reader must not keep the port open behind the application's back.
impl Drop for SerialReader {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The thread's way out: its messages, and the flag that ends it.
struct Link {
    source: String,
    sink: SyncSender<DeviceMessage>,
    stop: Arc<AtomicBool>,
}

impl Link {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Waits while the queue is full rather than dropping a read; gives up when the reader is
    /// stopped or nobody listens any more. Returns false then.
    fn send(&self, mut message: DeviceMessage) -> bool {
        loop {
            match self.sink.try_send(message) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if self.stopping() {
                        return false;
                    }
                    message = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    fn status(&self, status: DeviceStatus) -> bool {
        self.send(DeviceMessage::Status {
            source: self.source.clone(),
            status,
        })
    }

    fn deliver(&self, events: Vec<FrameEvent>) -> bool {
        for event in events {
            let message = match event {
                FrameEvent::Frame(bytes) => {
                    // The text is masked: a read may be a card number.
                    tracing::debug!(
                        source = %self.source,
                        len = bytes.len(),
                        read = %mask_code(&String::from_utf8_lossy(&bytes)),
                        "read"
                    );
                    DeviceMessage::Frame {
                        source: self.source.clone(),
                        bytes,
                        symbology: None,
                        received_at_ms: unix_ms(),
                    }
                }
                FrameEvent::Dropped { len, reason } => {
                    tracing::warn!(source = %self.source, dropped = len, %reason, "bytes dropped");
                    DeviceMessage::Noise {
                        source: self.source.clone(),
                        dropped: len,
                        reason,
                    }
                }
            };
            if !self.send(message) {
                return false;
            }
        }
        true
    }

    /// Sleeps `total` in read-timeout steps; false when asked to stop meanwhile.
    fn pause(&self, total: Duration) -> bool {
        let until = Instant::now() + total;
        while !self.stopping() {
            let now = Instant::now();
            if now >= until {
                return true;
            }
            std::thread::sleep((until - now).min(READ_TIMEOUT));
        }
        false
    }
}

/// Why a connection ended.
enum Ended {
    /// Stop was asked for, or nobody listens: the thread ends.
    Quit,
    /// The device went away.
    Lost(String),
}

fn run(settings: SerialSettings, link: Link) {
    let clock = Instant::now();
    let now_ms = || u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut framer = Framer::new(settings.framing.clone());
    let mut last_name = settings.port.clone();
    let mut first_attempt = true;
    loop {
        if link.stopping() {
            return;
        }
        match open(&settings, &last_name, first_attempt) {
            Ok((port, name)) => {
                tracing::info!(source = %link.source, port = %name, baud = settings.baud, "serial device connected");
                last_name = name;
                if !link.status(DeviceStatus::Connected) {
                    return;
                }
                match read_until_lost(port, &mut framer, &link, &now_ms) {
                    Ended::Quit => return,
                    Ended::Lost(reason) => {
                        tracing::warn!(source = %link.source, %reason, "serial device lost");
                        // A read cut off by the unplug would be joined to the next one otherwise.
                        if !link.deliver(framer.reset())
                            || !link.status(DeviceStatus::Lost(reason))
                            || !link.status(DeviceStatus::Reopening)
                        {
                            return;
                        }
                    }
                }
            }
            Err(reason) => {
                if first_attempt {
                    tracing::warn!(source = %link.source, %reason, "cannot open the serial device; retrying");
                    if !link.status(DeviceStatus::Lost(reason)) || !link.status(DeviceStatus::Reopening) {
                        return;
                    }
                } else {
                    tracing::debug!(source = %link.source, %reason, "serial device still absent");
                }
            }
        }
        first_attempt = false;
        if !link.pause(REOPEN_INTERVAL) {
            return;
        }
    }
}

/// Opens the port: on reopening, first under the name its USB identity has now, then under the
/// last name that worked (a USB identity is often unknown without libudev).
fn open(
    settings: &SerialSettings,
    last_name: &str,
    first_attempt: bool,
) -> Result<(Box<dyn serialport::SerialPort>, String), String> {
    let mut names = Vec::new();
    if let Some(usb) = &settings.usb_id
        && (!first_attempt || last_name.trim().is_empty())
        && let Some(found) = find_port(usb, &list_ports())
    {
        names.push(found);
    }
    if !last_name.trim().is_empty() && !names.iter().any(|name| name == last_name) {
        names.push(last_name.to_string());
    }
    let mut last_error = "the port was not found by its USB identity".to_string();
    for name in names {
        match settings.builder(&name).open() {
            Ok(port) => return Ok((port, name)),
            Err(error) => last_error = format!("{name}: {error}"),
        }
    }
    Err(last_error)
}

fn read_until_lost(
    mut port: Box<dyn serialport::SerialPort>,
    framer: &mut Framer,
    link: &Link,
    now_ms: &dyn Fn() -> u64,
) -> Ended {
    let mut buf = [0u8; 512];
    loop {
        if link.stopping() {
            return Ended::Quit;
        }
        let events = match port.read(&mut buf) {
            // A tty that reads zero bytes after a wait has hung up: the other side is gone.
            Ok(0) => return Ended::Lost("end of stream".to_string()),
            Ok(n) => framer.push(&buf[..n], now_ms()),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Vec::new()
            }
            Err(error) => return Ended::Lost(error.to_string()),
        };
        if !link.deliver(events) || !link.deliver(framer.tick(now_ms())) {
            return Ended::Quit;
        }
    }
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::framing::Terminator;

    #[test]
    fn defaults_are_9600_8n1_with_cr() {
        let settings = SerialSettings::default();
        assert_eq!(
            (settings.baud, settings.data_bits, settings.parity, settings.stop_bits),
            (9600, 8, Parity::None, 1)
        );
        assert_eq!(settings.framing.terminator, Terminator::Cr);
        assert_eq!(settings.framing.max_frame_len, 1024);
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn settings_round_trip_through_json_and_fill_in_defaults() {
        let settings: SerialSettings = serde_json::from_str(
            r#"{"port":"COM3","baud":115200,"parity":"even","framing":{"terminator":"etx"},
                "usb_id":{"vid":1234,"pid":5678}}"#,
        )
        .unwrap();
        assert_eq!(settings.port, "COM3");
        assert_eq!(settings.baud, 115200);
        assert_eq!(settings.parity, Parity::Even);
        assert_eq!(settings.data_bits, 8);
        assert_eq!(settings.framing.terminator, Terminator::Etx);
        assert_eq!(settings.framing.idle_gap_ms, 100);
        assert_eq!(settings.usb_id.as_ref().map(|usb| usb.serial.clone()), Some(None));
        let json = serde_json::to_string(&settings).unwrap();
        assert_eq!(serde_json::from_str::<SerialSettings>(&json).unwrap(), settings);
    }

    #[test]
    fn invalid_settings_are_refused() {
        let bad = |change: fn(&mut SerialSettings)| {
            let mut settings = SerialSettings::default();
            change(&mut settings);
            settings.validate()
        };
        assert_eq!(bad(|s| s.data_bits = 9), Err(SettingsError::DataBits(9)));
        assert_eq!(bad(|s| s.data_bits = 4), Err(SettingsError::DataBits(4)));
        assert_eq!(bad(|s| s.stop_bits = 3), Err(SettingsError::StopBits(3)));
        assert_eq!(bad(|s| s.baud = 0), Err(SettingsError::ZeroBaud));
        assert_eq!(bad(|s| s.port.clear()), Err(SettingsError::NoPort));
        assert_eq!(
            bad(|s| s.framing.max_frame_len = 0),
            Err(SettingsError::ZeroMaxFrameLen)
        );
        assert_eq!(bad(|s| s.framing.idle_gap_ms = 0), Err(SettingsError::ZeroIdleGap));
        assert_eq!(
            bad(|s| {
                s.port.clear();
                s.usb_id = Some(UsbId {
                    vid: 1,
                    pid: 2,
                    serial: None,
                });
            }),
            Ok(())
        );
    }

    #[test]
    fn source_name_falls_back_to_the_usb_identity() {
        let settings = SerialSettings {
            port: String::new(),
            usb_id: Some(UsbId {
                vid: 0x0c2e,
                pid: 0x0b61,
                serial: None,
            }),
            ..SerialSettings::default()
        };
        assert_eq!(settings.source_name(), "usb 0c2e:0b61");
    }

    #[test]
    fn ports_are_found_by_usb_identity() {
        let usb = |vid, pid, serial: Option<&str>| UsbId {
            vid,
            pid,
            serial: serial.map(str::to_string),
        };
        let ports = vec![
            PortInfo {
                name: "COM1".into(),
                usb: None,
                product: None,
            },
            PortInfo {
                name: "COM5".into(),
                usb: Some(usb(0x0c2e, 0x0b61, Some("A1"))),
                product: Some("Scanner".into()),
            },
            PortInfo {
                name: "COM7".into(),
                usb: Some(usb(0x0c2e, 0x0b61, Some("B2"))),
                product: Some("Scanner".into()),
            },
        ];
        assert_eq!(find_port(&usb(0x0c2e, 0x0b61, None), &ports).as_deref(), Some("COM5"));
        assert_eq!(
            find_port(&usb(0x0c2e, 0x0b61, Some("B2")), &ports).as_deref(),
            Some("COM7")
        );
        assert_eq!(find_port(&usb(0x0c2e, 0x0b61, Some("C3")), &ports), None);
        assert_eq!(find_port(&usb(0x0c2e, 0x0001, None), &ports), None);
    }

    #[test]
    fn listing_ports_does_not_fail() {
        let ports = list_ports();
        assert!(ports.windows(2).all(|pair| pair[0].name <= pair[1].name));
    }
}
