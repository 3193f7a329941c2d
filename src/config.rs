//! Where the till keeps its files, and the settings the owner or cashier can change.

use crate::devices::DeviceLines;
use crate::devices::serial::SerialSettings;
use crate::i18n::Lang;
use crate::scan::magstripe::IdentifyField;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// A narrow panel beside iikoFront, full height.
    #[default]
    SidePanel,
    /// The whole screen.
    FullScreen,
}

/// Width of the side panel in logical pixels: wide enough for the keypad and two columns of
/// numbers, narrow enough to leave iikoFront usable.
pub const SIDE_PANEL_WIDTH: f32 = 420.0;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The brand on the big button and in the title ("GetMeBack").
    pub program_name: String,
    pub language: Lang,
    pub layout: Layout,
    pub always_on_top: bool,
    /// Names this till in operation ids, so two tills never make the same id.
    pub till_id: String,
    pub scan: ScanSettings,
    /// Scanners and card readers on serial (or USB-COM) ports, read directly by the till.
    pub serial_devices: Vec<SerialSettings>,
    /// The chain's loyalty server; unset: the embedded ledger on this till.
    pub server: crate::remote::ServerSettings,
    /// Keyboard-mode scanners and card readers, captured by device whatever window has focus
    /// (Windows Raw Input).
    pub keyboard_devices: Vec<crate::devices::keyboard::KeyboardDeviceSettings>,
    /// HID point-of-sale scanners and card readers, read through their reports.
    pub hid: crate::devices::hid::bus::HidSettings,
    /// Support log export: where «Отправка логов» uploads the zip.
    pub support: crate::support::SupportSettings,
    /// A single cafe's back office («Управление программой»): served by the till on
    /// 127.0.0.1 at this port over the till's own ledger. A chain's is on its server.
    pub back_office_port: u16,
    /// The waiters' handhelds (iikoWaiter's External Loyalty): address, port, path, PINs.
    pub handhelds: crate::handhelds::HandheldSettings,
}

/// The demo programme's token key. Public on purpose: it is only used with `--demo`.
pub const DEMO_TOKEN_SECRET: &str = "demo-programme-secret";

/// How scanned and swiped input is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScanSettings {
    /// Which part of a magnetic stripe identifies the guest.
    pub identify_field: IdentifyField,
    /// The programme's key for signed app QR tokens (a secret: export bundles drop it).
    pub token_secret: String,
    /// How long an app QR token stays valid after it was issued.
    pub token_max_age_secs: i64,
    /// Tell a keyboard-mode scanner's burst from a person's typing inside the till's window, for
    /// scanners not captured by device: a burst identifies the guest instead of typing.
    pub keyboard_bursts: bool,
    /// On Windows: a keyboard-mode scanner's loyalty read (app token, card swipe) typed while
    /// another program has focus is taken out of the keyboard stream and goes to the till only;
    /// any other typing reaches that program as before.
    pub keep_loyalty_reads_from_other_programs: bool,
}

impl ScanSettings {
    /// The settings in force: the demo database checks app tokens with the demo key unless
    /// another key is set.
    pub fn effective(&self, demo: bool) -> ScanSettings {
        let mut settings = self.clone();
        if demo && settings.token_secret.is_empty() {
            settings.token_secret = DEMO_TOKEN_SECRET.to_string();
        }
        settings
    }
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            identify_field: IdentifyField::default(),
            // No key: app tokens are refused until the owner sets the programme's key.
            token_secret: String::new(),
            token_max_age_secs: 600,
            keyboard_bursts: true,
            keep_loyalty_reads_from_other_programs: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            program_name: "GetMeBack".to_string(),
            language: Lang::Ru,
            layout: Layout::SidePanel,
            always_on_top: true,
            till_id: "till-1".to_string(),
            scan: ScanSettings::default(),
            serial_devices: Vec::new(),
            server: crate::remote::ServerSettings::default(),
            keyboard_devices: Vec::new(),
            hid: crate::devices::hid::bus::HidSettings::default(),
            support: crate::support::SupportSettings::default(),
            back_office_port: DEFAULT_BACK_OFFICE_PORT,
            handhelds: crate::handhelds::HandheldSettings::default(),
        }
    }
}

/// A port unlikely to be taken on a cafe's PC (not a usual web, database or iiko port).
pub const DEFAULT_BACK_OFFICE_PORT: u16 = 8765;

impl Config {
    /// Where «Управление программой» opens: the till's own back office, or the chain server's.
    pub fn back_office_url(&self) -> String {
        if self.server.is_set() {
            format!("{}/admin", self.server.url.trim_end_matches('/'))
        } else {
            crate::backoffice::local::url(self.back_office_port)
        }
    }
}

impl Config {
    /// The devices this config names, for the device readers and the devices screen.
    pub fn device_lines(&self) -> DeviceLines {
        DeviceLines {
            serial_devices: self.serial_devices.clone(),
            keyboard_devices: self.keyboard_devices.clone(),
            hid: self.hid.clone(),
        }
    }

    /// Puts back the device lines the devices screen changed.
    pub fn set_device_lines(&mut self, lines: DeviceLines) {
        self.serial_devices = lines.serial_devices;
        self.keyboard_devices = lines.keyboard_devices;
        self.hid = lines.hid;
    }

    /// Reads the config; a missing file gives the defaults, a broken one is logged and
    /// replaced by the defaults so the till still starts.
    pub fn load(path: &Path) -> Config {
        match std::fs::read_to_string(path) {
            Ok(text) => match toml::from_str(&text) {
                Ok(config) => config,
                Err(error) => {
                    tracing::error!(path = %path.display(), %error, "config unreadable, using defaults");
                    Config::default()
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "config unreadable, using defaults");
                Config::default()
            }
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = toml::to_string_pretty(self).map_err(std::io::Error::other)?;
        // Write then rename, so a power cut never leaves half a config.
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// Saves settings on a named background thread, one after another in the order they were
/// changed, so the UI thread does no file I/O and two quick changes never write at once.
pub struct ConfigSaver {
    queue: std::sync::mpsc::SyncSender<Config>,
}

impl ConfigSaver {
    pub fn spawn(path: PathBuf) -> std::io::Result<ConfigSaver> {
        let (queue, pending) = std::sync::mpsc::sync_channel::<Config>(8);
        std::thread::Builder::new()
            .name("config-save".to_string())
            .spawn(move || {
                for config in pending {
                    if let Err(error) = config.save(&path) {
                        tracing::error!(path = %path.display(), %error, "settings not saved");
                    }
                }
            })?;
        Ok(ConfigSaver { queue })
    }

    pub fn save(&self, config: Config) {
        if self.queue.send(config).is_err() {
            tracing::error!("settings not saved: the saving thread has stopped");
        }
    }
}

/// The till's files. From `directories` on every OS, or all under `--data-dir`.
#[derive(Clone, Debug)]
pub struct Paths {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    pub logs_dir: PathBuf,
}

impl Paths {
    pub fn resolve(data_dir_override: Option<&Path>) -> Option<Paths> {
        if let Some(dir) = data_dir_override {
            return Some(Paths {
                config_file: dir.join("config.toml"),
                data_dir: dir.to_path_buf(),
                logs_dir: dir.join("logs"),
            });
        }
        let dirs = directories::ProjectDirs::from("ru", "loyalty-till", "loyalty-till")?;
        let data_dir = dirs.data_local_dir().to_path_buf();
        Some(Paths {
            config_file: dirs.config_dir().join("config.toml"),
            logs_dir: data_dir.join("logs"),
            data_dir,
        })
    }

    /// The demo ledger is a file of its own, so demo visits never mix with a real programme.
    pub fn database(&self, demo: bool) -> PathBuf {
        self.data_dir.join(if demo { "demo.sqlite" } else { "loyalty.sqlite" })
    }

    /// What the waiters' handhelds put on orders, beside the ledger it belongs to.
    pub fn handheld_orders(&self, demo: bool) -> PathBuf {
        self.data_dir.join(if demo {
            "demo-handhelds.sqlite"
        } else {
            "handhelds.sqlite"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_survives_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert_eq!(Config::load(&path), Config::default());
        let config = Config {
            program_name: "Кофейня".into(),
            language: Lang::En,
            ..Config::default()
        };
        config.save(&path).unwrap();
        assert_eq!(Config::load(&path), config);
        std::fs::write(&path, "language = 42 [").unwrap();
        assert_eq!(Config::load(&path), Config::default());
    }

    /// The device example in README.md is a config this version reads.
    #[test]
    fn readme_device_example_parses() {
        let readme = include_str!("../README.md");
        let start = readme.find("    [[serial_devices]]").unwrap();
        let block: String = readme[start..]
            .lines()
            .take_while(|l| l.is_empty() || l.starts_with("    "))
            .map(|l| l.trim_start().replace("\"…\"", "\"secret\""))
            .collect::<Vec<_>>()
            .join("\n");
        let config: Config = toml::from_str(&block).unwrap();
        assert_eq!(config.serial_devices.len(), 1);
        assert_eq!(config.serial_devices[0].port, "COM3");
        assert_eq!(config.scan.token_max_age_secs, 600);
    }

    /// The handhelds example in README.md is a config this version reads, with the defaults.
    #[test]
    fn readme_handhelds_example_parses() {
        let readme = include_str!("../README.md");
        let start = readme.find("    [handhelds]").unwrap();
        let block: String = readme[start..]
            .lines()
            .take_while(|l| l.starts_with("    "))
            .map(str::trim_start)
            .collect::<Vec<_>>()
            .join("\n");
        let config: Config = toml::from_str(&block).unwrap();
        let defaults = crate::handhelds::HandheldSettings::default();
        assert_eq!(config.handhelds.waiter_pins, ["4921", "7730"]);
        assert_eq!(
            (
                config.handhelds.address.as_str(),
                config.handhelds.port,
                config.handhelds.path.as_str()
            ),
            (defaults.address.as_str(), defaults.port, defaults.path.as_str())
        );
        assert!(config.handhelds.checkout_requires_pin);
    }
}
