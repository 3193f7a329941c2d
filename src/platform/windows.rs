//! Win32 calls behind `platform`. Each `unsafe` block is one documented Win32 call with
//! arguments owned by the caller for the duration of the call.
#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ALREADY_EXISTS, GetLastError, HANDLE, HWND, INVALID_HANDLE_VALUE, LPARAM, RECT,
};
use windows_sys::Win32::System::Console::{ATTACH_PARENT_PROCESS, AttachConsole, GetStdHandle, STD_OUTPUT_HANDLE};
use windows_sys::Win32::System::Threading::CreateMutexW;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    EnumWindows, GetWindowThreadProcessId, IsIconic, IsWindowVisible, SPI_GETWORKAREA, SW_RESTORE, SetForegroundWindow,
    ShowWindow, SystemParametersInfoW,
};

const PID_FILE: &str = "till.pid";

pub struct MutexGuard {
    handle: HANDLE,
    pid_file: PathBuf,
}

impl Drop for MutexGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pid_file);
        // SAFETY: the handle came from CreateMutexW and is closed exactly once, here.
        unsafe { CloseHandle(self.handle) };
    }
}

/// Creates the session-wide named mutex for this data folder. `None` when another process holds
/// it: that process's window is then brought to the front.
pub fn claim(data_dir: &Path) -> Option<MutexGuard> {
    let name = mutex_name(data_dir);
    let wide: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call; no security
    // attributes; the mutex is not owned, it only marks presence.
    let handle = unsafe { CreateMutexW(std::ptr::null(), 0, wide.as_ptr()) };
    // SAFETY: reads this thread's last error, set by the call above.
    let already = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
    let pid_file = data_dir.join(PID_FILE);
    if handle.is_null() {
        // No mutex at all (out of handles): better a second window than no till.
        tracing::warn!(%name, "could not create the single-instance mutex");
        return Some(MutexGuard {
            handle: INVALID_HANDLE_VALUE,
            pid_file,
        });
    }
    if already {
        // SAFETY: our own handle to the existing mutex, closed once.
        unsafe { CloseHandle(handle) };
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let raised = pid.map(bring_forward).unwrap_or(false);
        tracing::info!(?pid, raised, "the till is already running; brought it forward");
        return None;
    }
    if let Err(error) = std::fs::write(&pid_file, std::process::id().to_string()) {
        tracing::warn!(%error, "could not record the running till's process id");
    }
    Some(MutexGuard { handle, pid_file })
}

/// `Local\` keeps the name within this Windows session; the data folder's hash keeps a test or
/// support run on another folder apart from the cashier's till.
fn mutex_name(data_dir: &Path) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data_dir.to_string_lossy().to_lowercase().hash(&mut hasher);
    format!("Local\\loyalty-till.{:016x}", hasher.finish())
}

struct Search {
    pid: u32,
    window: HWND,
}

unsafe extern "system" fn match_window(window: HWND, lparam: LPARAM) -> i32 {
    // SAFETY: `lparam` is the `Search` passed to EnumWindows below, alive for the whole enumeration.
    let search = unsafe { &mut *(lparam as *mut Search) };
    let mut pid = 0u32;
    // SAFETY: `window` is a live top-level window handed to us by EnumWindows.
    unsafe { GetWindowThreadProcessId(window, &mut pid) };
    // SAFETY: as above.
    if pid == search.pid && unsafe { IsWindowVisible(window) } != 0 {
        search.window = window;
        return 0; // stop
    }
    1
}

/// Restores and raises the visible top-level window of process `pid`.
fn bring_forward(pid: u32) -> bool {
    let mut search = Search {
        pid,
        window: std::ptr::null_mut(),
    };
    // SAFETY: the callback only touches `search` through lparam while EnumWindows runs.
    unsafe { EnumWindows(Some(match_window), &mut search as *mut Search as LPARAM) };
    if search.window.is_null() {
        return false;
    }
    // SAFETY: a window handle just found; a stale handle makes these calls fail harmlessly.
    unsafe {
        if IsIconic(search.window) != 0 {
            ShowWindow(search.window, SW_RESTORE);
        }
        SetForegroundWindow(search.window) != 0
    }
}

pub fn attach_parent_console() {
    // SAFETY: plain queries of this process's standard handle and console.
    unsafe {
        let out = GetStdHandle(STD_OUTPUT_HANDLE);
        if out.is_null() || out == INVALID_HANDLE_VALUE {
            AttachConsole(ATTACH_PARENT_PROCESS);
        }
    }
}

pub fn work_area_px() -> Option<[i32; 4]> {
    let mut rect = RECT {
        left: 0,
        top: 0,
        right: 0,
        bottom: 0,
    };
    // SAFETY: SPI_GETWORKAREA writes one RECT into the buffer we own.
    let ok = unsafe { SystemParametersInfoW(SPI_GETWORKAREA, 0, (&mut rect as *mut RECT).cast(), 0) };
    (ok != 0 && rect.right > rect.left && rect.bottom > rect.top).then_some([
        rect.left,
        rect.top,
        rect.right,
        rect.bottom,
    ])
}
