//! The command line. No arguments runs the till.

use crate::config::Layout;
use crate::i18n::Lang;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "loyalty-till",
    version,
    about = "Loyalty programme till for the cashier's touchscreen"
)]
pub struct Cli {
    /// Use the demo database (created with demo guests on first run).
    #[arg(long)]
    pub demo: bool,

    /// Keep config, data and logs in this folder instead of the platform's folders.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Interface language for this run (overrides the saved setting).
    #[arg(long, value_enum)]
    pub lang: Option<Lang>,

    /// Window layout for this run (overrides the saved setting).
    #[arg(long, value_enum)]
    pub layout: Option<Layout>,

    /// Window size for this run, WIDTHxHEIGHT in logical pixels (screenshots, small screens).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub window_size: Option<(f32, f32)>,

    /// Drive a demo visit to a screen at start-up (for screenshots and support); without --demo
    /// on the configured ledger or loyalty server, with a typed order.
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,

    /// Print each start-up step's time on stderr (they are always in the log).
    #[arg(long)]
    pub trace_startup: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Tools for support and measurement; without one, the till runs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reads raw scanner or card-reader lines on stdin (escapes \r \n \t \\ \xNN allowed) and prints
    /// one JSON object per line: the parsed event with card data masked, or a clear error.
    ParseScan,
    /// Decodes a QR code from each image file (PNG or JPEG) and prints one JSON object per file:
    /// {"file":…, "text":… or null, "ms":…}, or an "error" for a file that cannot be read.
    DecodeImage {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Reads the clipboard as «QR из буфера» does (a QR code in a picture, or copied text) and
    /// prints one JSON object: {"source": "qr"|"text", "kind":…, "identifier": masked} or an
    /// "error". Exits with failure when nothing usable was found.
    DecodeClipboard,
    /// Makes the support zip (recent logs, config without secrets, version, OS, devices, last
    /// backend exchanges; personal data masked) in DIR (default: the Desktop), and uploads it
    /// when `[support] url` is set in config.toml. Prints the zip's path.
    ExportLogs {
        /// The folder to save the zip in.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Save only, even when a support URL is set.
        #[arg(long)]
        no_upload: bool,
    },
    /// Runs the loyalty server for several tills, headless: the REST API at /api/v1 on ADDR.
    Serve {
        /// Address to listen on (plain HTTP; put TLS in a reverse proxy).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// sqlite://FILE (one cafe) or postgres://USER@HOST/DB (a chain).
        #[arg(long, value_name = "URL")]
        db: String,
        /// How long a hold lasts before the server releases it (saved in the programme).
        #[arg(long, value_name = "SECS")]
        hold_ttl: Option<i64>,
        /// How often the server looks for holds whose time is up.
        #[arg(long, value_name = "SECS", default_value_t = 5)]
        expire_every: u64,
        /// A payment queued by a till while offline is booked at its check's time if that is at
        /// most this old (and at most 5 minutes ahead); otherwise at the server's time, and the
        /// answer says so.
        #[arg(long, value_name = "HOURS", default_value_t = 72)]
        max_check_age_hours: u64,
    },
    /// Till tokens for the server (each change is in the back office's audit log).
    TillToken {
        #[command(subcommand)]
        action: TillTokenAction,
    },
    /// Back-office accounts (owners and managers).
    Owner {
        #[command(subcommand)]
        action: OwnerAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum OwnerAction {
    /// Creates an account (or sets a new password on an existing login). Asks for the password
    /// twice on a terminal; reads one line from stdin otherwise. There is no default password.
    Create {
        #[arg(long)]
        login: String,
        /// sqlite://FILE or postgres://… of the server; without it, the till's own ledger (in
        /// `--data-dir` or the platform's data folder; with `--demo`, the demo ledger).
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// The organisation the account manages (a single cafe's till uses `default`).
        #[arg(long, default_value = "default")]
        org: String,
        /// `owner` (everything) or `manager` (guests, accounts and holds only).
        #[arg(long, default_value = "owner", value_parser = ["owner", "manager"])]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TillTokenAction {
    /// Creates (or replaces) the token of a till and prints it once; only its SHA-256 is stored.
    Create {
        /// sqlite://FILE or postgres://…, as for `serve`.
        #[arg(long, value_name = "URL")]
        db: String,
        /// The organisation whose guests the till sees.
        #[arg(long)]
        org: String,
        /// The till's name, unique within the organisation.
        #[arg(long)]
        till: String,
    },
    /// Revokes a till's token: every server on the database refuses it on its next request.
    /// Fails when the organisation has no such till.
    Revoke {
        /// sqlite://FILE or postgres://…, as for `serve`.
        #[arg(long, value_name = "URL")]
        db: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        till: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The idle screen with the demo order.
    Idle,
    /// «Добавить гостя»: the code field, the keypad and «QR из буфера обмена».
    AddGuest,
    /// A demo guest with a gift identified.
    Guest,
    /// «Информация о штампах» for the demo guest.
    Stamps,
    /// «Проверка акций» for the demo guest.
    Promotions,
    /// A second guest scanned while one is attached: the replace question.
    Replace,
    /// The spend-bonuses payment form with «Точная сумма» pressed.
    Payment,
    /// The success message after paying part of the check with bonuses.
    Done,
    /// The receipt after paying the whole check and keeping bonuses (on a loyalty server that
    /// is away: the provisional receipt).
    Kept,
    /// «Устройства»: the devices found and the test view, with a sample line checked.
    Devices,
    /// A code no guest has: the not-found message offering «Новый гость».
    NotFound,
    /// «Новый гость»: the enrolment form for that code, phone and name typed.
    Enrol,
    /// «Возврат чека» from the menu after the `done` visit: today's checks.
    ReturnFind,
    /// «Возврат этого чека» on the success screen, one unit of two of its lines picked with «+».
    ReturnLines,
    /// «Возврат этого чека» on the success screen, «Вернуть полностью»: what would change.
    ReturnPreview,
    /// The same return confirmed: what changed.
    ReturnDone,
    /// «Закрыть смену» from the menu after the `done` visit: what is left in doubt.
    Shift,
    /// Its «Отчёт за смену».
    ShiftReport,
    /// «Добавить карту» on the spend form: a second guest's card added, «Точная сумма» pressed.
    Split,
    /// The same check paid from both cards.
    SplitDone,
    /// «Добавить карту» with the demo guest's own corporate account (700001): two accounts of
    /// one guest on the check, told apart by the account's name.
    SplitAccounts,
}

fn parse_size(text: &str) -> Result<(f32, f32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or("expected WIDTHxHEIGHT, e.g. 1024x768")?;
    let w: f32 = w.trim().parse().map_err(|_| "width is not a number")?;
    let h: f32 = h.trim().parse().map_err(|_| "height is not a number")?;
    if !(200.0..=10_000.0).contains(&w) || !(200.0..=10_000.0).contains(&h) {
        return Err("size must be between 200 and 10000".to_string());
    }
    Ok((w, h))
}
