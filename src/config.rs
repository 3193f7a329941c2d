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
    /// What the log files keep: `error`, `warn`, `info`, `debug` or `trace` (or a filter in
    /// `RUST_LOG` syntax). `LOYALTY_TILL_LOG` wins at start; the settings page applies it at once.
    pub log_level: String,
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
            log_level: DEFAULT_LOG_LEVEL.to_string(),
        }
    }
}

/// What the log keeps unless the owner says otherwise.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// What the settings page changes in the running till's window: the brand name. The window
/// takes it on its next frame; the waker makes that frame come now.
#[derive(Default)]
pub struct LiveWindow {
    brand: std::sync::Mutex<Option<String>>,
    waker: std::sync::Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl LiveWindow {
    /// The one the till's window and its endpoint share.
    pub fn shared() -> &'static LiveWindow {
        static SHARED: std::sync::OnceLock<LiveWindow> = std::sync::OnceLock::new();
        SHARED.get_or_init(LiveWindow::default)
    }

    pub fn set_waker(&self, waker: Box<dyn Fn() + Send>) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker);
    }

    /// Whether a window is there to take the change now.
    pub fn has_window(&self) -> bool {
        self.waker.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    pub fn set_brand(&self, brand: String) {
        *self.brand.lock().unwrap_or_else(|p| p.into_inner()) = Some(brand);
        if let Some(wake) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            wake();
        }
    }

    /// A brand name set since the last call.
    pub fn take_brand(&self) -> Option<String> {
        self.brand.lock().unwrap_or_else(|p| p.into_inner()).take()
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

    /// Reads the config before logging has started (for the log level): a file that cannot be
    /// read gives the defaults here, and [`Config::load`] logs why once logging is on.
    pub fn load_quietly(path: &Path) -> Config {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| toml::from_str(&text).ok())
            .unwrap_or_default()
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

    /// Writes the whole config, replacing the file (the first save of a new till, and tests).
    /// A running till saves through [`edit`], which keeps the owner's comments.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = toml::to_string_pretty(self).map_err(std::io::Error::other)?;
        write_atomically(path, &text)
    }

    /// The keys the till's own screens change (language, layout, on top, devices), written
    /// into the file as it is now: a change made meanwhile by the settings page is kept.
    pub fn save_screen_keys(&self, path: &Path) -> Result<(), ConfigWriteError> {
        // No file yet: the till's first save writes the whole config it runs with, as before.
        if !path.exists() {
            return self.save(path).map_err(ConfigWriteError::Io);
        }
        edit(path, |current| {
            let mut next = current.clone();
            next.language = self.language;
            next.layout = self.layout;
            next.always_on_top = self.always_on_top;
            next.set_device_lines(self.device_lines());
            Ok::<_, ConfigWriteError>((next, SCREEN_KEYS.to_vec()))
        })
        .map(|_| ())
    }
}

/// What the till's screens own in config.toml.
const SCREEN_KEYS: [&str; 6] = [
    "language",
    "layout",
    "always_on_top",
    "serial_devices",
    "keyboard_devices",
    "hid",
];

/// Why config.toml was not written. The file is left as it was in every case.
#[derive(Debug, thiserror::Error)]
pub enum ConfigWriteError {
    /// The file on disk is not TOML or not a config this version reads: writing would lose
    /// what the owner wrote, so it is fixed by hand first.
    #[error("config.toml cannot be read ({0}); fix it by hand, nothing was written")]
    Unreadable(String),
    /// The edited file would not read back as the intended config.
    #[error("the edited config.toml would not read back as intended ({0}); nothing was written")]
    NotFaithful(String),
    #[error("config.toml could not be written: {0}")]
    Io(#[from] std::io::Error),
}

/// One writer of config.toml at a time in this process (the screens' saver and the settings
/// page), so a read-change-write of one never drops the other's change.
static CONFIG_WRITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Changes config.toml in place: reads the file as it is now, lets `change` make the next
/// config and name the keys (dotted paths, e.g. `handhelds.port`) it changed, writes only those
/// into the document, and replaces the file atomically (temporary file, then rename). Comments,
/// the order of keys and keys this version does not know are kept; a value's trailing comment
/// stays on its line. Refused, with the file unchanged, when the file cannot be read as a config
/// or the result would not read back as the next config. Returns the config now in the file.
pub fn edit<E: From<ConfigWriteError>>(
    path: &Path,
    change: impl FnOnce(&Config) -> Result<(Config, Vec<&'static str>), E>,
) -> Result<Config, E> {
    let _one_writer = CONFIG_WRITE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(ConfigWriteError::Io(error).into()),
    };
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| ConfigWriteError::Unreadable(e.to_string()))?;
    let current: Config = toml::from_str(&text).map_err(|e| ConfigWriteError::Unreadable(e.to_string()))?;
    let (next, keys) = change(&current)?;
    let serialized = |config: &Config| -> Result<toml_edit::DocumentMut, ConfigWriteError> {
        toml::to_string(config)
            .map_err(|e| ConfigWriteError::NotFaithful(e.to_string()))?
            .parse()
            .map_err(|e: toml_edit::TomlError| ConfigWriteError::NotFaithful(e.to_string()))
    };
    let fresh = serialized(&next)?;
    let was = serialized(&current)?;
    let mut changed = false;
    for key in keys {
        // A key whose value did not change is not written, not even when the file leaves it
        // to its default: the file stays as the owner wrote it.
        if item_text(was.as_table(), key) == item_text(fresh.as_table(), key) {
            continue;
        }
        changed |= merge_key(document.as_table_mut(), fresh.as_table(), key);
    }
    if !changed {
        return Ok(current);
    }
    let written = document.to_string();
    match toml::from_str::<Config>(&written) {
        Ok(read_back) if read_back == next => {}
        Ok(_) => return Err(ConfigWriteError::NotFaithful("values differ".to_string()).into()),
        Err(error) => return Err(ConfigWriteError::NotFaithful(error.to_string()).into()),
    }
    write_atomically(path, &written).map_err(ConfigWriteError::Io)?;
    Ok(next)
}

/// Puts `fresh`'s item at the dotted `key` into `document`; true when the file changes. An
/// equal value is left alone (its spelling too), a changed value keeps its comments, an inline
/// table stays inline, and a key the fresh config does not have is removed.
fn merge_key(document: &mut toml_edit::Table, fresh: &toml_edit::Table, key: &str) -> bool {
    use toml_edit::{Item, Table, TableLike};
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(leaf) = parts.pop() else { return false };
    let mut source: &dyn TableLike = fresh;
    for part in &parts {
        match source.get(part).and_then(Item::as_table_like) {
            Some(table) => source = table,
            None => return false,
        }
    }
    let mut target: &mut dyn TableLike = document;
    for part in &parts {
        if target.get(part).and_then(Item::as_table_like).is_none() {
            target.insert(part, Item::Table(Table::new()));
        }
        match target.get_mut(part).and_then(Item::as_table_like_mut) {
            Some(table) => target = table,
            None => return false,
        }
    }
    let Some(new_item) = source.get(leaf).cloned() else {
        return target.remove(leaf).is_some();
    };
    match (target.get_mut(leaf), new_item) {
        (Some(Item::Value(old)), Item::Value(mut new)) => {
            if same_value(old, &new) {
                return false;
            }
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        (Some(Item::Value(old)), Item::Table(table)) if old.is_inline_table() => {
            let mut inline = table.into_inline_table();
            inline.fmt();
            let mut new = toml_edit::Value::InlineTable(inline);
            if same_value(old, &new) {
                return false;
            }
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        (Some(Item::Table(old)), Item::Table(mut new)) => {
            if old.to_string() == new.to_string() {
                return false;
            }
            *new.decor_mut() = old.decor().clone();
            new.set_position(old.position());
            *old = new;
        }
        (_, new) => {
            target.insert(leaf, new);
        }
    }
    true
}

/// The item at a dotted key, as text (None when absent).
fn item_text(table: &toml_edit::Table, key: &str) -> Option<String> {
    let mut item = table.get(key.split('.').next()?)?;
    for part in key.split('.').skip(1) {
        item = item.as_table_like()?.get(part)?;
    }
    Some(item.to_string())
}

fn same_value(a: &toml_edit::Value, b: &toml_edit::Value) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    a.decor_mut().clear();
    b.decor_mut().clear();
    if let (Some(a), Some(b)) = (a.as_inline_table_mut(), b.as_inline_table_mut()) {
        a.fmt();
        b.fmt();
    }
    a.to_string().trim() == b.to_string().trim()
}

/// Writes `text` to a temporary file beside `path`, flushes it to disk, then renames it over
/// `path`: a power cut or a crash leaves the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("toml.tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
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
                    if let Err(error) = config.save_screen_keys(&path) {
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

    /// The screens' save writes only their keys into the file as it is now: a change the
    /// settings page made meanwhile is kept, and so are the owner's comments.
    #[test]
    fn the_screens_save_keeps_the_pages_change_and_the_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "# owner's note\nprogram_name = \"GetMeBack\" # brand\n\n[handhelds]\nport = 3000\n",
        )
        .unwrap();
        let mut screens = Config::load(&path);
        edit(&path, |current| {
            let mut next = current.clone();
            next.handhelds.port = 3100;
            Ok::<_, ConfigWriteError>((next, vec!["handhelds.port"]))
        })
        .unwrap();
        screens.language = Lang::En;
        screens.serial_devices.push(crate::devices::serial::SerialSettings {
            port: "COM3".into(),
            ..crate::devices::serial::SerialSettings::default()
        });
        screens.save_screen_keys(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::load(&path);
        assert_eq!(config.handhelds.port, 3100, "the page's change survives:\n{text}");
        assert_eq!(config.language, Lang::En);
        assert_eq!(config.serial_devices.len(), 1);
        assert!(
            text.starts_with("# owner's note\nprogram_name = \"GetMeBack\" # brand\n"),
            "{text}"
        );
    }

    /// A file that is not a config this version reads is never overwritten.
    #[test]
    fn a_broken_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        for broken in ["language = 42 [", "language = \"klingon\"\n"] {
            std::fs::write(&path, broken).unwrap();
            let result = edit(&path, |current| {
                let mut next = current.clone();
                next.program_name = "Кофейня".into();
                Ok::<_, ConfigWriteError>((next, vec!["program_name"]))
            });
            assert!(matches!(result, Err(ConfigWriteError::Unreadable(_))), "{result:?}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
        }
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
