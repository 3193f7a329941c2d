//! Windows low-level keyboard hook around [`BurstGate`]: a keyboard-mode scanner's loyalty read
//! (a signed app token, a card swipe) typed while another program has focus is taken out of the
//! keyboard stream before that program sees it, and handed to the till. Every other key reaches
//! the program as before: at once when nothing is held, or re-injected in order once judged.
//!
//! A named thread installs the hook and runs the message loop the hook is called from; a timer
//! lets held typing out on time. Re-injection happens in the loop, after the hook has returned,
//! so that injected keys never overtake the key being decided. Injected keys (ours, or another
//! program's) pass untouched.
#![allow(unsafe_code)]

use super::DeviceMessage;
use super::burst_gate::{BurstGate, GateOutput, RawKey, Verdict};
use std::cell::RefCell;
use std::sync::mpsc::{self, SyncSender};
use windows_sys::Win32::Foundation::{LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::System::SystemInformation::GetTickCount;
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::Input::KeyboardAndMouse::{
    INPUT, INPUT_0, INPUT_KEYBOARD, KEYBDINPUT, KEYEVENTF_EXTENDEDKEY, KEYEVENTF_KEYUP, SendInput,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CallNextHookEx, DispatchMessageW, GetMessageW, KBDLLHOOKSTRUCT, KillTimer, LLKHF_EXTENDED, LLKHF_INJECTED, MSG,
    PostThreadMessageW, SetTimer, SetWindowsHookExW, UnhookWindowsHookEx, WH_KEYBOARD_LL, WM_APP, WM_KEYDOWN, WM_QUIT,
    WM_SYSKEYDOWN, WM_TIMER,
};

/// How often held typing is looked at; below the classifier's 50 ms gap.
const TICK_MS: u32 = 20;
/// Posted by the hook when keys wait to be re-injected.
const WM_REINJECT: u32 = WM_APP + 1;
/// The source of the reads on the status line and in the log.
pub const SOURCE: &str = "keyboard";

/// The hook's thread; dropping it removes the hook.
pub struct KeyboardGate {
    thread_id: u32,
}

impl Drop for KeyboardGate {
    fn drop(&mut self) {
        // SAFETY: posts a message to a thread id; a finished thread makes the call fail harmlessly.
        unsafe { PostThreadMessageW(self.thread_id, WM_QUIT, 0, 0) };
    }
}

struct HookState {
    gate: BurstGate,
    sink: SyncSender<DeviceMessage>,
    /// Keys judged typing, waiting for the loop to re-inject them.
    to_reinject: Vec<RawKey>,
    thread_id: u32,
    clock: TickClock,
}

/// The system's tick count (`GetTickCount`, the clock of the hook's key times) as milliseconds
/// that never go back: the 32-bit count wraps after 49.7 days of uptime.
#[derive(Default)]
struct TickClock {
    last: Option<u32>,
    total: u64,
}

impl TickClock {
    fn at(&mut self, ticks: u32) -> u64 {
        if let Some(last) = self.last {
            // Wrapping difference; a time a little before the last one (a key stamped before the
            // timer fired) counts as no time.
            let delta = ticks.wrapping_sub(last);
            if delta < u32::MAX / 2 {
                self.total += u64::from(delta);
                self.last = Some(ticks);
            }
        } else {
            self.last = Some(ticks);
        }
        self.total
    }
}

thread_local! {
    /// The hook procedure is a plain function called on the hook's thread: its state lives here.
    static STATE: RefCell<Option<HookState>> = const { RefCell::new(None) };
}

impl KeyboardGate {
    pub fn spawn(gate: BurstGate, sink: SyncSender<DeviceMessage>) -> std::io::Result<KeyboardGate> {
        let (started_tx, started_rx) = mpsc::sync_channel::<Result<u32, String>>(1);
        std::thread::Builder::new()
            .name("keyboard-gate".to_string())
            .spawn(move || run(gate, sink, started_tx))?;
        match started_rx.recv() {
            Ok(Ok(thread_id)) => Ok(KeyboardGate { thread_id }),
            Ok(Err(reason)) => Err(std::io::Error::other(reason)),
            Err(_) => Err(std::io::Error::other("the keyboard gate thread ended at start")),
        }
    }
}

fn run(gate: BurstGate, sink: SyncSender<DeviceMessage>, started: SyncSender<Result<u32, String>>) {
    // SAFETY: returns this thread's id.
    let thread_id = unsafe { GetCurrentThreadId() };
    STATE.with(|state| {
        *state.borrow_mut() = Some(HookState {
            gate,
            sink,
            to_reinject: Vec::new(),
            thread_id,
            clock: TickClock::default(),
        })
    });
    // SAFETY: the hook procedure is a function of this module; a low-level hook needs the module
    // handle of the process (null name: this executable).
    let hook = unsafe { SetWindowsHookExW(WH_KEYBOARD_LL, Some(hook_proc), GetModuleHandleW(std::ptr::null()), 0) };
    if hook.is_null() {
        let _ = started.send(Err(format!(
            "the keyboard hook was refused: {}",
            std::io::Error::last_os_error()
        )));
        return;
    }
    // SAFETY: a thread timer (no window); WM_TIMER comes to this thread's queue.
    let timer = unsafe { SetTimer(std::ptr::null_mut(), 0, TICK_MS, None) };
    if started.send(Ok(thread_id)).is_err() {
        // SAFETY: `hook` was returned by SetWindowsHookExW above.
        unsafe { UnhookWindowsHookEx(hook) };
        return;
    }
    tracing::info!("keyboard gate on: loyalty reads typed into other programs go to the till only");
    // SAFETY: MSG is plain data; GetMessageW fills it.
    let mut msg: MSG = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `msg` is a valid out pointer; null hwnd takes every message of this thread.
        let got = unsafe { GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) };
        if got <= 0 {
            break;
        }
        match msg.message {
            WM_TIMER => {
                // SAFETY: returns the tick count; the hook's key times are on the same clock.
                let ticks = unsafe { GetTickCount() };
                with_state(|state| {
                    let now = state.clock.at(ticks);
                    let outputs = state.gate.tick(now);
                    state.deliver(outputs);
                });
                reinject_pending();
            }
            WM_REINJECT => reinject_pending(),
            _ => {
                // SAFETY: `msg` came from GetMessageW.
                unsafe { DispatchMessageW(&msg) };
            }
        }
    }
    // SAFETY: both were created on this thread above.
    unsafe {
        KillTimer(std::ptr::null_mut(), timer);
        UnhookWindowsHookEx(hook);
    }
    // Whatever was held goes back to the program: a key is never lost by stopping.
    with_state(|state| {
        let outputs = state.gate.tick(u64::MAX);
        state.deliver(outputs);
    });
    reinject_pending();
    tracing::info!("keyboard gate off");
}

fn with_state(f: impl FnOnce(&mut HookState)) {
    STATE.with(|state| {
        if let Ok(mut state) = state.try_borrow_mut()
            && let Some(state) = state.as_mut()
        {
            f(state);
        }
    });
}

impl HookState {
    fn deliver(&mut self, outputs: Vec<GateOutput>) {
        for output in outputs {
            match output {
                GateOutput::Reinject(keys) => self.to_reinject.extend(keys),
                GateOutput::Scan(text) => {
                    tracing::info!(len = text.len(), "a loyalty read kept from the focused program");
                    let message = DeviceMessage::Frame {
                        source: SOURCE.to_string(),
                        bytes: text.into_bytes(),
                        symbology: None,
                        received_at_ms: super::serial::unix_ms(),
                    };
                    if self.sink.try_send(message).is_err() {
                        tracing::warn!("a loyalty read was lost: the till is not taking device reads");
                    }
                }
            }
        }
        if !self.to_reinject.is_empty() {
            // SAFETY: posts to this very thread; handled by the loop after the hook returns.
            unsafe { PostThreadMessageW(self.thread_id, WM_REINJECT, 0, 0) };
        }
    }
}

fn reinject_pending() {
    let mut keys = Vec::new();
    with_state(|state| keys = std::mem::take(&mut state.to_reinject));
    if keys.is_empty() {
        return;
    }
    let inputs: Vec<INPUT> = keys
        .iter()
        .map(|key| {
            let mut flags = 0;
            if !key.down {
                flags |= KEYEVENTF_KEYUP;
            }
            if key.extended {
                flags |= KEYEVENTF_EXTENDEDKEY;
            }
            INPUT {
                r#type: INPUT_KEYBOARD,
                Anonymous: INPUT_0 {
                    ki: KEYBDINPUT {
                        wVk: key.vk,
                        wScan: key.scan_code,
                        dwFlags: flags,
                        time: 0,
                        dwExtraInfo: 0,
                    },
                },
            }
        })
        .collect();
    // SAFETY: `inputs` is a valid array of INPUT of the given length and size.
    let sent = unsafe {
        SendInput(
            inputs.len() as u32,
            inputs.as_ptr(),
            std::mem::size_of::<INPUT>() as i32,
        )
    };
    if sent as usize != inputs.len() {
        tracing::error!(
            sent,
            keys = inputs.len(),
            error = %std::io::Error::last_os_error(),
            "typing not given back to the focused program"
        );
    }
}

unsafe extern "system" fn hook_proc(code: i32, wparam: WPARAM, lparam: LPARAM) -> LRESULT {
    if code >= 0 {
        // SAFETY: for WH_KEYBOARD_LL with code >= 0, lparam points to a KBDLLHOOKSTRUCT.
        let info = unsafe { &*(lparam as *const KBDLLHOOKSTRUCT) };
        if info.flags & LLKHF_INJECTED == 0 {
            let mut verdict = Verdict::Pass;
            with_state(|state| {
                let key = RawKey {
                    vk: info.vkCode as u16,
                    scan_code: info.scanCode as u16,
                    extended: info.flags & LLKHF_EXTENDED != 0,
                    down: matches!(wparam as u32, WM_KEYDOWN | WM_SYSKEYDOWN),
                    time_ms: state.clock.at(info.time),
                };
                let (decided, outputs) = state.gate.key(key);
                state.deliver(outputs);
                verdict = decided;
                if verdict == Verdict::Pass && !state.to_reinject.is_empty() {
                    // Keys judged earlier still wait to be re-injected: this one goes after
                    // them, not ahead.
                    state.to_reinject.push(key);
                    verdict = Verdict::Hold;
                }
            });
            if verdict == Verdict::Hold {
                return 1;
            }
        }
    }
    // SAFETY: passes the event on to the next hook unchanged.
    unsafe { CallNextHookEx(std::ptr::null_mut(), code, wparam, lparam) }
}
