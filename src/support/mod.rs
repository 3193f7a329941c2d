//! Support log export («Отправка логов»): one zip with the recent logs, the config without its
//! secrets, the app version, OS and devices, and the last backend exchanges, masked; saved where
//! the cashier chooses and, when a support URL is configured, uploaded.
//!
//! - [`redact`]: the masking pass every entry of the zip goes through;
//! - [`exchanges`]: request ids and the ring of the last backend exchanges;
//! - [`bundle`]: builds the zip in memory;
//! - [`export`]: saves it (with a fallback folder) and uploads it ([`upload`]), on a named thread
//!   for the window or in the foreground for the `export-logs` command ([`cli`]).

pub mod bundle;
pub mod cli;
pub mod exchanges;
pub mod export;
pub mod redact;
pub mod upload;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[support]` in config.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SupportSettings {
    /// Where «Отправка логов» uploads the zip (HTTP POST, body = the zip); empty: save only.
    pub url: String,
}

impl SupportSettings {
    /// The upload address, when one is set.
    pub fn upload_url(&self) -> Option<&str> {
        let url = self.url.trim();
        (!url.is_empty()).then_some(url)
    }
}

/// Where the zip goes unless the cashier picks another folder: the Desktop, or else the
/// documents folder, or else the home folder.
pub fn default_save_dir() -> Option<PathBuf> {
    let dirs = directories::UserDirs::new()?;
    [dirs.desktop_dir(), dirs.document_dir()]
        .into_iter()
        .flatten()
        .find(|dir| dir.is_dir())
        .map(PathBuf::from)
        .or_else(|| Some(dirs.home_dir().to_path_buf()))
}

/// `2025-06-01T10:11:12Z` (UTC) for a time in milliseconds since the Unix epoch.
pub fn utc_stamp(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (year, month, day) = crate::domain::civil_date(secs);
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_stamp(1_795_392_000_000 + 3_661_500), "2026-11-23T01:01:01Z");
    }

    #[test]
    fn an_empty_url_means_no_upload() {
        assert_eq!(SupportSettings::default().upload_url(), None);
        let set = SupportSettings {
            url: " http://support.example/upload ".to_string(),
        };
        assert_eq!(set.upload_url(), Some("http://support.example/upload"));
    }
}
