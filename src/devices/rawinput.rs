//! Windows Raw Input: keyboard-mode scanners and card readers read by the till whatever window
//! has focus (iikoFront, usually). A named thread owns a message-only window registered for every
//! keyboard with `RIDEV_INPUTSINK`, so `WM_INPUT` arrives in the background with the device
//! handle; keys of the devices configured as scanners are decoded through the US layout and
//! framed by [`KeyboardReader`], and each read goes out as a [`DeviceMessage`] like a serial read.
//!
//! Raw Input only listens: the keystrokes also reach the focused program, unless the keyboard
//! gate (`devices::llhook`) takes a loyalty read out of the stream first.
#![allow(unsafe_code)]

use super::keyboard::{KeyboardDeviceSettings, KeyboardReader};
use super::{DeviceMessage, DeviceStatus, framing::FrameEvent};
use std::collections::HashMap;
use std::sync::mpsc::{self, SyncSender};
use std::time::Instant;
use windows_sys::Win32::Foundation::{HANDLE, HWND};
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::Input::{
    GetRawInputData, GetRawInputDeviceInfoW, HRAWINPUT, RAWINPUT, RAWINPUTDEVICE, RAWINPUTHEADER, RID_INPUT,
    RIDEV_INPUTSINK, RIDI_DEVICENAME, RIM_TYPEKEYBOARD, RegisterRawInputDevices,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DestroyWindow, DispatchMessageW, GetMessageW, HWND_MESSAGE, MSG, PostThreadMessageW, RI_KEY_BREAK,
    RI_KEY_E0, SetTimer, WM_INPUT, WM_QUIT, WM_TIMER,
};

/// How often idle timeouts of the framers are checked.
const TICK_MS: u32 = 50;

/// The capture thread; dropping it ends the thread.
pub struct RawKeyboardReader {
    thread_id: u32,
}

impl Drop for RawKeyboardReader {
    fn drop(&mut self) {
        // SAFETY: posts a message to a thread id; a finished thread makes the call fail harmlessly.
        unsafe { PostThreadMessageW(self.thread_id, WM_QUIT, 0, 0) };
    }
}

impl RawKeyboardReader {
    /// Starts capturing the configured devices. Fails when the thread or the registration fails;
    /// the reason is then also on the status line of every configured device.
    pub fn spawn(
        devices: Vec<KeyboardDeviceSettings>,
        sink: SyncSender<DeviceMessage>,
    ) -> std::io::Result<RawKeyboardReader> {
        let (started_tx, started_rx) = mpsc::sync_channel::<Result<u32, String>>(1);
        std::thread::Builder::new()
            .name("raw-keyboard".to_string())
            .spawn(move || run(devices, sink, started_tx))?;
        match started_rx.recv() {
            Ok(Ok(thread_id)) => Ok(RawKeyboardReader { thread_id }),
            Ok(Err(reason)) => Err(std::io::Error::other(reason)),
            Err(_) => Err(std::io::Error::other("the raw keyboard thread ended at start")),
        }
    }
}

/// A keyboard seen by the thread: a configured scanner with its reader, or ignored.
enum Seen {
    Scanner { source: String, reader: KeyboardReader },
    Ignored,
}

fn run(
    devices: Vec<KeyboardDeviceSettings>,
    sink: SyncSender<DeviceMessage>,
    started: SyncSender<Result<u32, String>>,
) {
    let labels: Vec<String> = devices.iter().map(KeyboardDeviceSettings::source_name).collect();
    let window = match listen() {
        Ok(window) => window,
        Err(reason) => {
            let _ = started.send(Err(reason));
            return;
        }
    };
    // SAFETY: returns this thread's id.
    let thread_id = unsafe { GetCurrentThreadId() };
    if started.send(Ok(thread_id)).is_err() {
        return;
    }
    tracing::info!(
        devices = devices.len(),
        "capturing keyboard-mode devices in the background"
    );
    for label in &labels {
        let _ = sink.try_send(DeviceMessage::Status {
            source: label.clone(),
            status: DeviceStatus::Connected,
        });
    }

    let clock = Instant::now();
    let now_ms = || u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut seen: HashMap<usize, Seen> = HashMap::new();
    // SAFETY: MSG is plain data; GetMessageW fills it.
    let mut msg: MSG = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `msg` is a valid out pointer; null hwnd takes every message of this thread.
        let got = unsafe { GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) };
        if got <= 0 {
            break; // WM_QUIT (dropped reader) or an error
        }
        let mut events: Vec<(String, FrameEvent)> = Vec::new();
        match msg.message {
            WM_INPUT => {
                if let Some((device, make_code, flags)) = read_keyboard(msg.lParam as HRAWINPUT) {
                    let entry = seen
                        .entry(device as usize)
                        .or_insert_with(|| recognise(device, &devices));
                    if let Seen::Scanner { source, reader } = entry {
                        let extended = u32::from(flags) & RI_KEY_E0 != 0;
                        let down = u32::from(flags) & RI_KEY_BREAK == 0;
                        for event in reader.key(make_code, extended, down, now_ms()) {
                            events.push((source.clone(), event));
                        }
                    }
                }
            }
            WM_TIMER => {
                let now = now_ms();
                for entry in seen.values_mut() {
                    if let Seen::Scanner { source, reader } = entry {
                        for event in reader.tick(now) {
                            events.push((source.clone(), event));
                        }
                    }
                }
            }
            _ => {}
        }
        // SAFETY: `msg` came from GetMessageW; the default procedure frees WM_INPUT's data.
        unsafe { DispatchMessageW(&msg) };
        for (source, event) in events {
            if !deliver(&sink, source, event) {
                break;
            }
        }
    }
    // SAFETY: the window was created by this thread and is destroyed once.
    unsafe { DestroyWindow(window) };
}

/// Creates the message-only window, registers it for every keyboard in the background and
/// starts the framers' timer.
fn listen() -> Result<HWND, String> {
    let class: Vec<u16> = "STATIC\0".encode_utf16().collect();
    // SAFETY: a message-only window of the system STATIC class; the class name outlives the call.
    let window = unsafe {
        CreateWindowExW(
            0,
            class.as_ptr(),
            std::ptr::null(),
            0,
            0,
            0,
            0,
            0,
            HWND_MESSAGE,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null(),
        )
    };
    if window.is_null() {
        return Err(format!(
            "cannot create the input window: {}",
            std::io::Error::last_os_error()
        ));
    }
    let device = RAWINPUTDEVICE {
        usUsagePage: 0x01, // generic desktop
        usUsage: 0x06,     // keyboard
        dwFlags: RIDEV_INPUTSINK,
        hwndTarget: window,
    };
    // SAFETY: one RAWINPUTDEVICE with its size, alive during the call.
    let registered = unsafe { RegisterRawInputDevices(&device, 1, size_of::<RAWINPUTDEVICE>() as u32) };
    if registered == 0 {
        let error = std::io::Error::last_os_error();
        // SAFETY: our own window, destroyed once.
        unsafe { DestroyWindow(window) };
        return Err(format!("cannot register for raw keyboard input: {error}"));
    }
    // SAFETY: a timer on our own window; WM_TIMER arrives in this thread's queue.
    unsafe { SetTimer(window, 1, TICK_MS, None) };
    Ok(window)
}

/// The device, make code and flags of a keyboard WM_INPUT; `None` for anything else.
fn read_keyboard(handle: HRAWINPUT) -> Option<(HANDLE, u16, u16)> {
    let mut input: RAWINPUT = RAWINPUT::default();
    let mut size = size_of::<RAWINPUT>() as u32;
    // SAFETY: `input` is large enough for a keyboard or mouse record and `size` says so; a HID
    // record that does not fit makes the call fail, and it is then ignored.
    let copied = unsafe {
        GetRawInputData(
            handle,
            RID_INPUT,
            (&mut input as *mut RAWINPUT).cast(),
            &mut size,
            size_of::<RAWINPUTHEADER>() as u32,
        )
    };
    if copied == u32::MAX || input.header.dwType != RIM_TYPEKEYBOARD {
        return None;
    }
    // SAFETY: the header says the union holds a keyboard record.
    let keyboard = unsafe { input.data.keyboard };
    Some((input.header.hDevice, keyboard.MakeCode, keyboard.Flags))
}

/// Looks a new device up by its system path among the configured ones.
fn recognise(device: HANDLE, devices: &[KeyboardDeviceSettings]) -> Seen {
    let path = device_path(device);
    match devices.iter().find(|settings| settings.matches(&path)) {
        Some(settings) => {
            tracing::info!(device = %path, "keyboard-mode scanner found");
            Seen::Scanner {
                source: settings.source_name(),
                reader: KeyboardReader::new(settings.framing.clone()),
            }
        }
        None => {
            tracing::debug!(device = %path, "keyboard not configured as a scanner; ignored");
            Seen::Ignored
        }
    }
}

/// The device's system path (`\\?\HID#VID_…&PID_…#…`); empty when Windows does not say.
fn device_path(device: HANDLE) -> String {
    let mut len = 0u32;
    // SAFETY: a size query: null buffer, `len` receives the length in characters.
    unsafe { GetRawInputDeviceInfoW(device, RIDI_DEVICENAME, std::ptr::null_mut(), &mut len) };
    if len == 0 || len > 4096 {
        return String::new();
    }
    let mut buf = vec![0u16; len as usize];
    // SAFETY: `buf` holds `len` characters, as the size query asked.
    let copied = unsafe { GetRawInputDeviceInfoW(device, RIDI_DEVICENAME, buf.as_mut_ptr().cast(), &mut len) };
    if copied == u32::MAX {
        return String::new();
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

/// Sends a read or a drop notice on; `false` when nobody listens any more.
fn deliver(sink: &SyncSender<DeviceMessage>, source: String, event: FrameEvent) -> bool {
    let message = match event {
        FrameEvent::Frame(bytes) => DeviceMessage::Frame {
            source,
            bytes,
            symbology: None,
            received_at_ms: unix_ms(),
        },
        FrameEvent::Dropped { len, reason } => DeviceMessage::Noise {
            source,
            dropped: len,
            reason,
        },
    };
    !matches!(sink.try_send(message), Err(mpsc::TrySendError::Disconnected(_)))
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
