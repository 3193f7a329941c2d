//! Logs go to daily-rotated files in the logs folder (kept for support) and to stderr.

use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Lines waiting for the log file's writer thread. The default (128,000) is a 4 MB queue, all of
/// it touched when made: a third of what the till's window costs beyond an empty one. A till
/// writes a few lines a second; the writer empties the queue as fast as the disk takes them.
const LOG_QUEUE_LINES: usize = 8_192;

/// How many daily files are kept: two weeks is what support asks about.
const KEPT_LOG_FILES: usize = 14;

/// Starts logging. Keep the guard alive for the whole run: dropping it flushes the file.
/// A logs folder that cannot be created leaves stderr logging only, and says so.
pub fn init(logs_dir: &Path) -> Option<WorkerGuard> {
    init_with_level(logs_dir, crate::config::DEFAULT_LOG_LEVEL)
}

/// The filter the running process logs through, changed by [`set_level`].
static FILTER: std::sync::OnceLock<reload::Handle<EnvFilter, Registry>> = std::sync::OnceLock::new();

/// Starts logging at `level` (the config's `log_level`); `LOYALTY_TILL_LOG` wins when set.
pub fn init_with_level(logs_dir: &Path, level: &str) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_from_env("LOYALTY_TILL_LOG")
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new(crate::config::DEFAULT_LOG_LEVEL));
    let (filter, handle) = reload::Layer::new(filter);
    let _ = FILTER.set(handle);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    // The appender would log its own complaint about a missing folder before creating it.
    let _ = std::fs::create_dir_all(logs_dir);
    match file_appender(logs_dir) {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .finish(appender);
            let file_layer = tracing_subscriber::fmt::layer()
                .fmt_fields(PlainFields::default())
                .with_writer(writer)
                .with_ansi(false);
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(stderr)
                .with(file_layer)
                .try_init();
            Some(guard)
        }
        Err(error) => {
            let _ = tracing_subscriber::registry().with(filter).with(stderr).try_init();
            tracing::error!(dir = %logs_dir.display(), %error, "cannot write log files; logging to stderr only");
            None
        }
    }
}

/// The daily log files, `loyalty-till.YYYY-MM-DD.log`: at most [`KEPT_LOG_FILES`], the oldest
/// removed when the appender opens and at each day's rollover.
pub fn file_appender(logs_dir: &Path) -> Result<RollingFileAppender, tracing_appender::rolling::InitError> {
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("loyalty-till")
        .filename_suffix("log")
        .max_log_files(KEPT_LOG_FILES)
        .build(logs_dir)
}

/// The file's own field formatter. Span fields are formatted once per formatter type and kept;
/// with one type for both layers, the file would get the terminal's colour codes inside
/// `exchange{request_id=…}`, and support could not search for a request id.
#[derive(Default)]
struct PlainFields(DefaultFields);

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// The log levels the settings page offers.
pub const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Changes what the running process logs, at once. False when logging was not started here
/// (tests), or the level is not one of [`LEVELS`].
pub fn set_level(level: &str) -> bool {
    if !LEVELS.contains(&level) {
        return false;
    }
    let Some(handle) = FILTER.get() else { return false };
    match handle.reload(EnvFilter::new(level)) {
        Ok(()) => {
            tracing::info!(level, "log level changed");
            true
        }
        Err(error) => {
            tracing::error!(%error, "the log level could not be changed");
            false
        }
    }
}
