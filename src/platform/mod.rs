//! What differs between the Windows till and the Linux development machine: the single running
//! instance per session and the console of command-line subcommands.

use std::path::Path;

#[cfg(windows)]
mod windows;

/// Whether this process may open the till window.
pub enum Instance {
    /// No other till runs on this data folder; keep the guard alive while the window is open.
    First(InstanceGuard),
    /// Another till already runs; it has been brought to the front and this process should exit.
    AlreadyRunning,
}

/// Held by the one running till; releasing it lets the next start open a window.
pub struct InstanceGuard {
    #[cfg(windows)]
    _inner: windows::MutexGuard,
}

/// Claims the single till of this Windows session and data folder. A second start brings the
/// running window forward instead of opening another one over iikoFront. On other systems (used
/// for development only) every start is allowed.
pub fn claim_single_instance(data_dir: &Path) -> Instance {
    #[cfg(windows)]
    {
        match windows::claim(data_dir) {
            Some(inner) => Instance::First(InstanceGuard { _inner: inner }),
            None => Instance::AlreadyRunning,
        }
    }
    #[cfg(not(windows))]
    {
        let _ = data_dir;
        Instance::First(InstanceGuard {})
    }
}

/// On X11 with no input method configured (`XMODIFIERS` unset, as under a bare Xvfb), winit's
/// input-method connection sometimes put the window into a redraw loop while a text field had
/// focus: about 55 frames a second and three quarters of a core with software GL, in 7 of 16
/// starts on the add-guest screen, none with `@im=none`. Saying there is none stops it; a
/// configured input method (ibus, fcitx) is left alone. Call first in `main`, before any thread
/// starts.
pub fn no_input_method_unless_configured() {
    #[cfg(all(unix, not(target_os = "macos")))]
    if std::env::var_os("XMODIFIERS").is_none() {
        // SAFETY: called first in `main`, before any other thread exists, so nothing reads or
        // writes the environment at the same time.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("XMODIFIERS", "@im=none");
        }
    }
}

/// Release builds on Windows have no console; a subcommand started from a console (support
/// running `export-logs` or `parse-scan`) writes to that console instead of nowhere. Redirected
/// output (a pipe or file) is left as it is.
pub fn attach_parent_console() {
    #[cfg(windows)]
    windows::attach_parent_console();
}

/// The desktop's work area (the screen without the taskbar) in physical pixels, as
/// `[left, top, right, bottom]`; `None` where the system does not say.
pub fn work_area_px() -> Option<[i32; 4]> {
    #[cfg(windows)]
    {
        windows::work_area_px()
    }
    #[cfg(not(windows))]
    {
        None
    }
}

/// Opens the address in the default browser, off the UI thread; a failure is logged (the menu
/// shows the address beside the button, so it can be typed in by hand).
pub fn open_in_browser(url: &str) {
    let url = url.to_string();
    let spawned = std::thread::Builder::new()
        .name("open-browser".to_string())
        .spawn(move || {
            #[cfg(windows)]
            let mut command = {
                let mut command = std::process::Command::new("rundll32.exe");
                command.arg("url.dll,FileProtocolHandler");
                command
            };
            #[cfg(target_os = "macos")]
            let mut command = std::process::Command::new("open");
            #[cfg(all(unix, not(target_os = "macos")))]
            let mut command = std::process::Command::new("xdg-open");
            // Waited for, so no zombie is left behind.
            match command.arg(&url).status() {
                Ok(status) if status.success() => tracing::info!("back office opened in the browser"),
                Ok(status) => tracing::warn!(%status, "the browser could not be opened"),
                Err(error) => tracing::warn!(%error, "the browser could not be opened"),
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "the browser could not be opened");
    }
}
