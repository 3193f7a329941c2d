//! Builds the support zip in memory. Every entry goes through [`MaskedZip::add_text`], which runs
//! the masking pass: nothing reaches the zip unmasked, whatever the log lines or the config hold.

use super::exchanges::{self, Exchange};
use super::redact::{REMOVED, is_secret_key, mask_text};
use crate::config::Config;
use crate::devices::keyboard::KeyboardDeviceSettings;
use crate::devices::serial::{PortInfo, SerialSettings, list_ports};
use crate::mask::mask_code;
use std::fmt::Write as _;
use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;

/// How much log text goes in, newest first: the zip stays small enough to mail or upload from
/// a till on a slow line.
pub const MAX_LOG_BYTES: usize = 24 * 1024 * 1024;

/// How many exchanges `last-exchanges.txt` lists.
pub const LAST_EXCHANGES: usize = exchanges::KEPT;

/// The log files' names: `loyalty-till.YYYY-MM-DD.log` (see `logging`).
const LOG_PREFIX: &str = "loyalty-till";

/// What goes into a bundle.
pub struct BundleInput {
    pub logs_dir: PathBuf,
    pub config_file: PathBuf,
    /// The settings in force (devices, till id, support URL).
    pub config: Config,
    /// The last exchanges of the running till; `None` (a separate process): found in the logs.
    pub exchanges: Option<Vec<Exchange>>,
    /// Ports present now; `None`: listed while building.
    pub ports: Option<Vec<PortInfo>>,
    /// When the bundle is made, milliseconds since the Unix epoch.
    pub now_ms: i64,
}

/// A finished zip, not yet saved anywhere.
pub struct Bundle {
    pub file_name: String,
    pub bytes: Vec<u8>,
    /// The entries' names, in order.
    pub entries: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the zip could not be built: {0}")]
pub struct BundleError(String);

/// A zip being written in memory whose only way in is masked text.
struct MaskedZip {
    zip: zip::ZipWriter<Cursor<Vec<u8>>>,
    options: SimpleFileOptions,
    entries: Vec<String>,
}

impl MaskedZip {
    fn new(now_ms: i64) -> MaskedZip {
        let mut options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        if let Some(time) = zip_time(now_ms) {
            options = options.last_modified_time(time);
        }
        MaskedZip {
            zip: zip::ZipWriter::new(Cursor::new(Vec::new())),
            options,
            entries: Vec::new(),
        }
    }

    fn add_text(&mut self, name: &str, text: &str) -> Result<(), BundleError> {
        let masked = mask_text(text);
        self.zip
            .start_file(name, self.options)
            .map_err(|e| BundleError(e.to_string()))?;
        self.zip
            .write_all(masked.as_bytes())
            .map_err(|e| BundleError(e.to_string()))?;
        self.entries.push(name.to_string());
        Ok(())
    }

    fn finish(self) -> Result<(Vec<u8>, Vec<String>), BundleError> {
        let cursor = self.zip.finish().map_err(|e| BundleError(e.to_string()))?;
        Ok((cursor.into_inner(), self.entries))
    }
}

fn zip_time(now_ms: i64) -> Option<zip::DateTime> {
    let secs = now_ms.div_euclid(1000);
    let (year, month, day) = crate::domain::civil_date(secs);
    let in_day = secs.rem_euclid(86_400);
    zip::DateTime::from_date_and_time(
        u16::try_from(year).ok()?,
        u8::try_from(month).ok()?,
        u8::try_from(day).ok()?,
        u8::try_from(in_day / 3600).ok()?,
        u8::try_from(in_day % 3600 / 60).ok()?,
        u8::try_from(in_day % 60).ok()?,
    )
    .ok()
}

/// Builds the zip: `system.txt`, `config.toml`, `devices.txt`, `last-exchanges.txt` and
/// `logs/…`, every one masked.
pub fn build(input: &BundleInput) -> Result<Bundle, BundleError> {
    let logs = read_logs(&input.logs_dir);
    let mut zip = MaskedZip::new(input.now_ms);
    zip.add_text("system.txt", &system_text(input))?;
    zip.add_text("config.toml", &config_text(&input.config_file, &input.config))?;
    let ports = input.ports.clone().unwrap_or_else(list_ports);
    zip.add_text(
        "devices.txt",
        &devices_text(&input.config.serial_devices, &input.config.keyboard_devices, &ports),
    )?;
    zip.add_text("last-exchanges.txt", &exchanges_text(input.exchanges.as_deref(), &logs))?;
    for log in &logs {
        zip.add_text(&format!("logs/{}", log.name), &log.text)?;
    }
    let (bytes, entries) = zip.finish()?;
    Ok(Bundle {
        file_name: file_name(&input.config.till_id, input.now_ms),
        bytes,
        entries,
    })
}

/// `loyalty-till-logs-<till>-YYYYMMDD-HHMMSS.zip`, the till id cut to safe characters.
pub fn file_name(till_id: &str, now_ms: i64) -> String {
    let till: String = till_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    let stamp: String = super::utc_stamp(now_ms).chars().filter(char::is_ascii_digit).collect();
    let (date, time) = stamp.split_at(stamp.len().min(8));
    if till.is_empty() {
        format!("loyalty-till-logs-{date}-{time}.zip")
    } else {
        format!("loyalty-till-logs-{till}-{date}-{time}.zip")
    }
}

struct LogFile {
    name: String,
    text: String,
}

/// The log files, newest first, up to [`MAX_LOG_BYTES`]; a file over what is left keeps its end.
fn read_logs(dir: &Path) -> Vec<LogFile> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.starts_with(LOG_PREFIX) && name.ends_with(".log"))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort_unstable_by(|a, b| b.cmp(a));
    let mut left = MAX_LOG_BYTES;
    let mut logs = Vec::new();
    for name in names {
        if left == 0 {
            break;
        }
        let text = match std::fs::read(dir.join(&name)) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) => format!("[this log file could not be read: {error}]\n"),
        };
        let text = keep_end(text, left);
        left = left.saturating_sub(text.len());
        logs.push(LogFile { name, text });
    }
    logs
}

/// The last `budget` bytes of `text`, from a line start, with a note of what was left out.
fn keep_end(text: String, budget: usize) -> String {
    if text.len() <= budget {
        return text;
    }
    let mut cut = text.len() - budget;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    let start = text[cut..].find('\n').map_or(text.len(), |n| cut + n + 1);
    format!("[{start} earlier bytes of this file left out]\n{}", &text[start..])
}

/// The chronological text of all kept logs, oldest file first.
fn log_lines(logs: &[LogFile]) -> impl Iterator<Item = &str> {
    logs.iter().rev().flat_map(|log| log.text.lines())
}

fn exchanges_text(ring: Option<&[Exchange]>, logs: &[LogFile]) -> String {
    let mut text = String::new();
    match ring {
        Some(ring) => {
            let _ = writeln!(
                text,
                "# The last {} backend exchanges of the running till (oldest first)",
                ring.len()
            );
            for exchange in ring {
                let _ = writeln!(text, "{}", exchange.line());
            }
        }
        None => {
            let found = exchanges::from_log_lines(log_lines(logs), LAST_EXCHANGES);
            let _ = writeln!(
                text,
                "# The last {} backend exchanges found in the log files (oldest first)",
                found.len()
            );
            for line in found {
                let _ = writeln!(text, "{line}");
            }
        }
    }
    text
}

fn system_text(input: &BundleInput) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    let _ = writeln!(text, "created: {}", super::utc_stamp(input.now_ms));
    let _ = writeln!(
        text,
        "os: {} ({}), {}{}",
        std::env::consts::OS,
        std::env::consts::FAMILY,
        std::env::consts::ARCH,
        os_release().map(|name| format!(", {name}")).unwrap_or_default()
    );
    let _ = writeln!(text, "till_id: {}", input.config.till_id);
    let _ = writeln!(text, "language: {:?}", input.config.language);
    let _ = writeln!(text, "layout: {:?}", input.config.layout);
    let _ = writeln!(text, "config file: {}", input.config_file.display());
    let _ = writeln!(text, "logs folder: {}", input.logs_dir.display());
    let upload = match input.config.support.upload_url() {
        Some(url) => match reqwest::Url::parse(url) {
            Ok(url) => format!("configured ({})", url.host_str().unwrap_or("no host")),
            Err(_) => "configured, not a valid URL".to_string(),
        },
        None => "not configured".to_string(),
    };
    let _ = writeln!(text, "support upload: {upload}");
    text
}

/// The Windows version as `ver` prints it ("Microsoft Windows [Version 10.0.19045.3803]").
#[cfg(windows)]
fn os_release() -> Option<String> {
    use std::os::windows::process::CommandExt as _;
    // No console window flashes up over the till.
    const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    let output = std::process::Command::new("cmd")
        .args(["/C", "ver"])
        .creation_flags(CREATE_NO_WINDOW)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The Linux distribution's name, where there is one.
#[cfg(not(windows))]
fn os_release() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map(|name| name.trim_matches('"').to_string())
}

/// The config file as it is, secrets removed (a missing file: the defaults in force).
fn config_text(path: &Path, config: &Config) -> String {
    match std::fs::read_to_string(path) {
        Ok(raw) => redact_config(&raw),
        Err(error) => {
            let defaults = toml::to_string_pretty(config).unwrap_or_default();
            format!(
                "# {} could not be read ({error}); the settings in force:\n{}",
                path.display(),
                redact_config(&defaults)
            )
        }
    }
}

/// Removes every value whose key names a secret (`token_secret`, `[server] token`, passwords),
/// keeping the key so support sees that one is set. An empty value stays empty: "no key set" is
/// what support needs to know. A config that does not parse is cleaned line by line.
pub fn redact_config(raw: &str) -> String {
    match toml::from_str::<toml::Table>(raw) {
        Ok(mut table) => {
            redact_table(&mut table);
            toml::to_string_pretty(&table).unwrap_or_else(|_| redact_lines(raw))
        }
        Err(_) => format!(
            "# config.toml does not parse: the till runs on its defaults; secrets removed line by line\n{}",
            redact_lines(raw)
        ),
    }
}

fn redact_table(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        if is_secret_key(key) {
            let keep = match value {
                toml::Value::String(text) => text.is_empty(),
                // Durations of secrets (`token_max_age_secs`) are settings, not secrets.
                toml::Value::Integer(_) => ["_secs", "_ms", "_timeout", "_ttl"].iter().any(|s| key.ends_with(s)),
                _ => false,
            };
            if !keep {
                *value = toml::Value::String(REMOVED.to_string());
            }
            continue;
        }
        redact_value(value);
    }
}

fn redact_value(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => redact_table(table),
        toml::Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

fn redact_lines(raw: &str) -> String {
    let mut out = String::new();
    for line in raw.lines() {
        let key = line.split('=').next().unwrap_or_default().trim().trim_matches('"');
        if line.contains('=') && is_secret_key(key) {
            let _ = writeln!(out, "{key} = \"{REMOVED}\"");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

fn devices_text(configured: &[SerialSettings], keyboards: &[KeyboardDeviceSettings], ports: &[PortInfo]) -> String {
    let mut text = String::from("# Serial devices in config.toml\n");
    if configured.is_empty() {
        text.push_str("(none)\n");
    }
    for device in configured {
        let _ = writeln!(
            text,
            "- {}: baud={} data_bits={} parity={:?} stop_bits={} framing={:?}{}",
            device.port,
            device.baud,
            device.data_bits,
            device.parity,
            device.stop_bits,
            device.framing,
            device
                .usb_id
                .as_ref()
                .map(|usb| format!(
                    " usb={:04x}:{:04x}{}",
                    usb.vid,
                    usb.pid,
                    usb.serial
                        .as_deref()
                        .map(|s| format!(" serial={}", mask_code(s)))
                        .unwrap_or_default()
                ))
                .unwrap_or_default()
        );
    }
    text.push_str("\n# Keyboard-mode devices in config.toml (Windows Raw Input)\n");
    if keyboards.is_empty() {
        text.push_str("(none)\n");
    }
    for device in keyboards {
        let _ = writeln!(
            text,
            "- {:?}: name_contains={:?} framing={:?}",
            device.label, device.name_contains, device.framing
        );
    }
    text.push_str("\n# Serial ports present now\n");
    if ports.is_empty() {
        text.push_str("(none found)\n");
    }
    for port in ports {
        let _ = write!(text, "- {}", port.name);
        if let Some(usb) = &port.usb {
            let _ = write!(text, " usb={:04x}:{:04x}", usb.vid, usb.pid);
            if let Some(serial) = &usb.serial {
                let _ = write!(text, " serial={}", mask_code(serial));
            }
        }
        if let Some(product) = &port.product {
            let _ = write!(text, " product={product}");
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_secrets_are_removed_and_settings_kept() {
        let raw = "program_name = \"Кофейня\"\ntill_id = \"till-7\"\n\n[scan]\ntoken_secret = \"prog-key-1\"\n\
                   token_max_age_secs = 600\n\n[server]\nurl = \"http://10.0.0.5:8080\"\ntoken = \"srv-tok-2\"\n\
                   [server.auth]\npassword = \"pw-3\"\n";
        let clean = redact_config(raw);
        for secret in ["prog-key-1", "srv-tok-2", "pw-3"] {
            assert!(!clean.contains(secret), "{secret} left in:\n{clean}");
        }
        assert!(clean.contains("token_max_age_secs = 600"), "{clean}");
        assert!(clean.contains("till-7") && clean.contains("Кофейня"), "{clean}");
        assert!(clean.contains("token_secret = \"[removed]\""), "{clean}");

        let broken = redact_config("till_id = \"x\"\ntoken_secret = \"prog-key-1\"\nbroken = [");
        assert!(!broken.contains("prog-key-1"), "{broken}");
        assert!(broken.contains("does not parse"), "{broken}");
        // No key set is what support needs to see.
        assert!(redact_config("[scan]\ntoken_secret = \"\"\n").contains("token_secret = \"\""));
        // The waiters' PINs go; the endpoint's address and port stay.
        let handhelds = redact_config("[handhelds]\nport = 3000\nwaiter_pins = [\"4921\", \"7730\"]\n");
        assert!(
            !handhelds.contains("4921") && !handhelds.contains("7730"),
            "{handhelds}"
        );
        assert!(handhelds.contains("port = 3000"), "{handhelds}");
        // And so does the settings page's PIN.
        let page = redact_config("[handhelds]\nsettings_pin = \"2468\"\n");
        assert!(!page.contains("2468"), "{page}");
    }

    #[test]
    fn long_logs_keep_their_end_from_a_line_start() {
        let text = "line one\nline two\nline three\n".to_string();
        let kept = keep_end(text, 15);
        assert!(kept.ends_with("line three\n"), "{kept}");
        assert!(!kept.contains("line two"), "{kept}");
        assert!(kept.starts_with("[18 earlier bytes"), "{kept}");
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            file_name("till/1 ..", 1_795_392_000_000),
            "loyalty-till-logs-till1-20261123-000000.zip"
        );
        assert_eq!(file_name("", 0), "loyalty-till-logs-19700101-000000.zip");
    }
}
