//! Reading HID POS scanners and card readers in the background, plugged in at start or later.
//!
//! A named watcher thread lists the bus every [`HidWatchSettings::poll`]: a device whose role is
//! scanner or card reader, and which has no reader running, is opened and given a reader thread
//! of its own. A reader parses the device's report descriptor, turns input reports into reads
//! with [`PosScannerReader`] / [`PosMsrReader`], and sends [`DeviceMessage`]s. When the device
//! goes away its read fails, the reader says "lost" and ends, and the next listing that shows
//! the device again starts a new one: unplug and replug needs no restart.
//!
//! Polling rather than system notifications: hidapi has none, and a listing a second is cheap
//! beside a person walking to the till with a scanner.
//!
//! Windows puts a report-ID byte of 0 before every report of a device without report IDs;
//! hidapi removes it, so reports reach the parsers as the descriptor describes them everywhere.

use super::bus::{HidBus, HidDeviceInfo, HidPort, HidRole, HidSettings};
use super::descriptor::ReportDescriptor;
use super::pos::{PosMsrReader, PosScannerReader};
use crate::devices::framing::DropReason;
use crate::devices::{DeviceMessage, DeviceStatus};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the watcher paces itself.
#[derive(Clone, Copy, Debug)]
pub struct HidWatchSettings {
    /// Between two listings of the bus.
    pub poll: Duration,
    /// A device that would not open is tried again after this long while it stays plugged in.
    pub retry_open: Duration,
    /// How long one read waits for a report before looking at the stop flag again.
    pub read_timeout_ms: i32,
}

impl Default for HidWatchSettings {
    fn default() -> Self {
        HidWatchSettings {
            poll: Duration::from_secs(1),
            retry_open: Duration::from_secs(10),
            read_timeout_ms: 100,
        }
    }
}

/// The watcher and its readers; dropping it stops them all.
pub struct HidReaders {
    stop: Arc<AtomicBool>,
    /// Wakes the watcher out of its wait between listings at once when stopped.
    wake: Arc<Wake>,
    watcher: Option<JoinHandle<()>>,
}

/// What the watcher waits on between listings: the stop, told at once, rather than a flag looked
/// at every few milliseconds (an idle till must not wake for nothing).
#[derive(Default)]
struct Wake {
    stopped: Mutex<bool>,
    signal: Condvar,
}

impl Wake {
    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.signal.notify_all();
    }

    /// Waits `total`, or less if stopped; whether it was stopped.
    fn wait(&self, total: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .signal
            .wait_timeout_while(stopped, total, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }
}

impl HidReaders {
    /// `make_bus` runs on the watcher's thread: opening the system's HID stack enumerates the
    /// bus, which is I/O the window must not wait for. A bus that cannot be made is logged and
    /// nothing is read; the other devices still work.
    pub fn spawn(
        make_bus: impl FnOnce() -> Result<Box<dyn HidBus>, String> + Send + 'static,
        settings: HidSettings,
        watch: HidWatchSettings,
        sink: SyncSender<DeviceMessage>,
    ) -> std::io::Result<HidReaders> {
        let stop = Arc::new(AtomicBool::new(false));
        let watcher_stop = stop.clone();
        let wake = Arc::new(Wake::default());
        let watcher_wake = wake.clone();
        let handle = std::thread::Builder::new()
            .name("hid-watch".to_string())
            .spawn(move || {
                let bus = match make_bus() {
                    Ok(bus) => bus,
                    Err(reason) => {
                        tracing::error!(%reason, "HID devices will not be read");
                        return;
                    }
                };
                let watcher = Watcher {
                    bus,
                    settings,
                    watch,
                    sink,
                    stop: watcher_stop,
                    wake: watcher_wake,
                    running: BTreeMap::new(),
                    refused: BTreeMap::new(),
                    list_failed: false,
                };
                watcher.run();
            })?;
        Ok(HidReaders {
            stop,
            wake,
            watcher: Some(handle),
        })
    }
}

impl Drop for HidReaders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.stop();
        if let Some(handle) = self.watcher.take() {
            let _ = handle.join();
        }
    }
}

struct RunningReader {
    end: Arc<AtomicU8>,
    handle: JoinHandle<()>,
}

/// How a reader ended, as its `end` flag says.
const RUNNING: u8 = 0;
/// Stopped, or the device failed a read (gone): open it again when it is listed.
const ENDED: u8 = 1;
/// The device is not what its role needs (descriptor): open it again only after the retry period,
/// not at every listing.
const UNUSABLE: u8 = 2;

struct Watcher {
    bus: Box<dyn HidBus>,
    settings: HidSettings,
    watch: HidWatchSettings,
    sink: SyncSender<DeviceMessage>,
    stop: Arc<AtomicBool>,
    wake: Arc<Wake>,
    /// Readers by device path.
    running: BTreeMap<String, RunningReader>,
    /// Devices that would not open, by path, with when they were last tried.
    refused: BTreeMap<String, Instant>,
    /// The last listing failed; logged once until one succeeds.
    list_failed: bool,
}

impl Watcher {
    fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            self.look();
            if self.wake.wait(self.watch.poll) {
                break;
            }
        }
        for (_, reader) in std::mem::take(&mut self.running) {
            let _ = reader.handle.join();
        }
    }

    /// One listing: forget readers that ended, start readers for devices with none.
    fn look(&mut self) {
        let refused = &mut self.refused;
        self.running
            .retain(|path, reader| match reader.end.load(Ordering::Relaxed) {
                RUNNING => true,
                UNUSABLE => {
                    refused.insert(path.clone(), Instant::now());
                    false
                }
                _ => false,
            });
        let listed = match self.bus.list() {
            Ok(listed) => {
                if self.list_failed {
                    tracing::info!("HID devices listed again");
                    self.list_failed = false;
                }
                listed
            }
            Err(error) => {
                if !self.list_failed {
                    tracing::error!(%error, "HID devices not listed");
                    self.list_failed = true;
                }
                return;
            }
        };
        self.refused.retain(|path, _| listed.iter().any(|d| &d.path == path));
        for info in listed {
            let role = self.settings.role_of(&info);
            if role == HidRole::Ignore || self.running.contains_key(&info.path) {
                continue;
            }
            if self
                .refused
                .get(&info.path)
                .is_some_and(|at| at.elapsed() < self.watch.retry_open)
            {
                continue;
            }
            self.start(info, role);
        }
    }

    fn start(&mut self, info: HidDeviceInfo, role: HidRole) {
        let source = self.settings.source_name(&info);
        let port = match self.bus.open(&info) {
            Ok(port) => port,
            Err(reason) => {
                // Logged once per retry period: a device without access rights stays plugged in.
                tracing::warn!(%source, %reason, "HID device not opened");
                self.refused.insert(info.path.clone(), Instant::now());
                send_status(&self.sink, &self.stop, &source, DeviceStatus::Lost(reason));
                return;
            }
        };
        self.refused.remove(&info.path);
        let end = Arc::new(AtomicU8::new(RUNNING));
        let reader = DeviceReader {
            source: source.clone(),
            role,
            sink: self.sink.clone(),
            stop: self.stop.clone(),
            end: end.clone(),
            read_timeout_ms: self.watch.read_timeout_ms,
        };
        let thread_name = format!("hid-{:04x}-{:04x}", info.vendor_id, info.product_id);
        match std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || reader.run(port))
        {
            Ok(handle) => {
                tracing::info!(%source, ?role, "HID device opened");
                self.running.insert(info.path, RunningReader { end, handle });
            }
            Err(error) => {
                tracing::error!(%source, %error, "HID reader thread not started");
                send_status(&self.sink, &self.stop, &source, DeviceStatus::Lost(error.to_string()));
            }
        }
    }
}

/// The parser a device's role calls for, built from its descriptor.
enum Decoder {
    Scanner(PosScannerReader),
    CardReader(PosMsrReader),
}

impl Decoder {
    fn new(role: HidRole, descriptor: &[u8]) -> Result<Decoder, String> {
        let descriptor = ReportDescriptor::parse(descriptor).map_err(|e| format!("report descriptor: {e}"))?;
        match role {
            HidRole::Scanner => PosScannerReader::new(&descriptor)
                .map(Decoder::Scanner)
                .map_err(|e| format!("not a HID POS scanner: {e}")),
            HidRole::CardReader => PosMsrReader::new(&descriptor)
                .map(Decoder::CardReader)
                .map_err(|e| format!("not a HID POS card reader: {e}")),
            HidRole::Ignore => Err("ignored".to_string()),
        }
    }

    /// The read a report completes, if it does.
    fn feed(&mut self, report: &[u8]) -> Result<Option<HidRead>, super::pos::ReportError> {
        match self {
            Decoder::Scanner(reader) => Ok(reader.feed(report)?.map(|read| HidRead {
                symbology: read.symbology().map(str::to_string),
                bytes: read.data,
            })),
            Decoder::CardReader(reader) => Ok(reader.feed(report)?.map(|swipe| HidRead {
                bytes: swipe.to_swipe_text().into_bytes(),
                symbology: None,
            })),
        }
    }
}

/// One complete read: the bytes as a keyboard-mode device would type them, and the symbology.
struct HidRead {
    bytes: Vec<u8>,
    symbology: Option<String>,
}

struct DeviceReader {
    source: String,
    role: HidRole,
    sink: SyncSender<DeviceMessage>,
    stop: Arc<AtomicBool>,
    end: Arc<AtomicU8>,
    read_timeout_ms: i32,
}

/// Why a reader stopped reading.
enum ReadEnd {
    /// Not this role's device: its descriptor says otherwise.
    Unusable(String),
    /// A read failed: unplugged, or broken.
    Gone(String),
}

impl DeviceReader {
    fn run(self, mut port: Box<dyn HidPort>) {
        let outcome = self.read_until_gone(port.as_mut());
        // Closed before the watcher may open the device again.
        drop(port);
        let end = match outcome {
            Ok(()) => ENDED,
            Err(ReadEnd::Unusable(reason)) => {
                tracing::warn!(source = %self.source, %reason, "HID device not usable");
                send_status(&self.sink, &self.stop, &self.source, DeviceStatus::Lost(reason));
                UNUSABLE
            }
            Err(ReadEnd::Gone(reason)) => {
                tracing::warn!(source = %self.source, %reason, "HID device lost");
                send_status(&self.sink, &self.stop, &self.source, DeviceStatus::Lost(reason));
                ENDED
            }
        };
        self.end.store(end, Ordering::Relaxed);
    }

    /// Reads until stopped (`Ok`) or until the device fails or turns out unusable.
    fn read_until_gone(&self, port: &mut dyn HidPort) -> Result<(), ReadEnd> {
        let descriptor = port.report_descriptor().map_err(ReadEnd::Gone)?;
        let mut decoder = Decoder::new(self.role, &descriptor).map_err(ReadEnd::Unusable)?;
        send_status(&self.sink, &self.stop, &self.source, DeviceStatus::Connected);
        while !self.stop.load(Ordering::Relaxed) {
            let Some(report) = port.read_report(self.read_timeout_ms).map_err(ReadEnd::Gone)? else {
                continue;
            };
            let message = match decoder.feed(&report) {
                Ok(None) => continue,
                Ok(Some(HidRead { bytes, symbology })) => {
                    tracing::debug!(source = %self.source, len = bytes.len(), ?symbology, "HID read");
                    DeviceMessage::Frame {
                        source: self.source.clone(),
                        bytes,
                        symbology,
                        received_at_ms: crate::devices::serial::unix_ms(),
                    }
                }
                Err(error) => {
                    tracing::warn!(source = %self.source, %error, "HID report dropped");
                    DeviceMessage::Noise {
                        source: self.source.clone(),
                        dropped: report.len(),
                        reason: DropReason::BadReport,
                    }
                }
            };
            if !send_unless_stopped(&self.sink, &self.stop, message) {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Sends, waiting while the queue is full, but never past a stop: a window that no longer drains
/// the queue must not keep the readers (and whoever stops them) waiting. `false`: not sent.
fn send_unless_stopped(sink: &SyncSender<DeviceMessage>, stop: &AtomicBool, mut message: DeviceMessage) -> bool {
    loop {
        match sink.try_send(message) {
            Ok(()) => return true,
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return false,
            Err(std::sync::mpsc::TrySendError::Full(back)) => {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                message = back;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn send_status(sink: &SyncSender<DeviceMessage>, stop: &AtomicBool, source: &str, status: DeviceStatus) {
    let message = DeviceMessage::Status {
        source: source.to_string(),
        status,
    };
    send_unless_stopped(sink, stop, message);
}

/// A scripted HID bus for tests and demonstrations without hardware: devices are plugged in and
/// out and reports queued from another thread, through a cloneable handle.
#[derive(Clone, Default)]
pub struct ScriptedHidBus {
    inner: Arc<Mutex<ScriptedState>>,
}

#[derive(Default)]
struct ScriptedState {
    devices: BTreeMap<String, ScriptedDevice>,
    /// Paths whose `open` fails, with the reason.
    refuse_open: BTreeMap<String, String>,
    opens: usize,
    listings: usize,
}

struct ScriptedDevice {
    info: HidDeviceInfo,
    descriptor: Vec<u8>,
    /// Reports not yet read, shared with the open port.
    reports: Arc<Mutex<std::collections::VecDeque<Vec<u8>>>>,
    /// Set when unplugged: the open port's next read fails.
    gone: Arc<AtomicBool>,
}

impl ScriptedHidBus {
    pub fn new() -> ScriptedHidBus {
        ScriptedHidBus::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ScriptedState> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn plug(&self, info: HidDeviceInfo, descriptor: Vec<u8>) {
        let device = ScriptedDevice {
            info: info.clone(),
            descriptor,
            reports: Arc::default(),
            gone: Arc::default(),
        };
        self.state().devices.insert(info.path, device);
    }

    pub fn unplug(&self, path: &str) {
        if let Some(device) = self.state().devices.remove(path) {
            device.gone.store(true, Ordering::Relaxed);
        }
    }

    /// Queues an input report on a plugged-in device.
    pub fn send_report(&self, path: &str, report: &[u8]) {
        if let Some(device) = self.state().devices.get(path) {
            device
                .reports
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push_back(report.to_vec());
        }
    }

    pub fn refuse_open(&self, path: &str, reason: &str) {
        self.state().refuse_open.insert(path.to_string(), reason.to_string());
    }

    pub fn allow_open(&self, path: &str) {
        self.state().refuse_open.remove(path);
    }

    /// How many times a device was opened.
    pub fn opens(&self) -> usize {
        self.state().opens
    }

    /// How many times the devices were listed.
    pub fn listings(&self) -> usize {
        self.state().listings
    }
}

impl HidBus for ScriptedHidBus {
    fn list(&mut self) -> Result<Vec<HidDeviceInfo>, String> {
        let mut state = self.state();
        state.listings += 1;
        Ok(state.devices.values().map(|d| d.info.clone()).collect())
    }

    fn open(&mut self, info: &HidDeviceInfo) -> Result<Box<dyn HidPort>, String> {
        let mut state = self.state();
        if let Some(reason) = state.refuse_open.get(&info.path) {
            return Err(reason.clone());
        }
        let device = state.devices.get(&info.path).ok_or("no such device")?;
        let port = ScriptedPort {
            descriptor: device.descriptor.clone(),
            reports: device.reports.clone(),
            gone: device.gone.clone(),
        };
        state.opens += 1;
        Ok(Box::new(port))
    }
}

struct ScriptedPort {
    descriptor: Vec<u8>,
    reports: Arc<Mutex<std::collections::VecDeque<Vec<u8>>>>,
    gone: Arc<AtomicBool>,
}

impl HidPort for ScriptedPort {
    fn report_descriptor(&mut self) -> Result<Vec<u8>, String> {
        Ok(self.descriptor.clone())
    }

    fn read_report(&mut self, timeout_ms: i32) -> Result<Option<Vec<u8>>, String> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
        loop {
            if self.gone.load(Ordering::Relaxed) {
                return Err("device disconnected".to_string());
            }
            if let Some(report) = self
                .reports
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop_front()
            {
                return Ok(Some(report));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
