// Release builds on Windows have no console window behind the till.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser;
use loyalty_till::cli::{Cli, Command};
use loyalty_till::config::{Config, Paths};
use std::process::ExitCode;

fn main() -> ExitCode {
    loyalty_till::platform::no_input_method_unless_configured();
    loyalty_till::startup::begin(loyalty_till::startup::asked_for(std::env::args_os()));
    // Before parsing, so `--help` and argument errors reach the console too.
    if std::env::args_os().len() > 1 {
        loyalty_till::platform::attach_parent_console();
    }
    let cli = Cli::parse();
    loyalty_till::startup::step("arguments read");
    match &cli.command {
        Some(Command::ParseScan) => return parse_scan(&cli),
        Some(Command::DecodeImage { files }) => return decode_image(files),
        Some(Command::DecodeClipboard) => return decode_clipboard(&cli),
        Some(command @ (Command::Serve { .. } | Command::TillToken { .. })) => {
            return loyalty_till::server::cli::run(command);
        }
        Some(Command::Owner { action }) => {
            return loyalty_till::server::cli::owner(&cli, action);
        }
        Some(Command::ExportLogs { out, no_upload }) => {
            return loyalty_till::support::cli::run(cli.data_dir.as_deref(), out.as_deref(), *no_upload);
        }
        None => {}
    }
    match loyalty_till::app::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loyalty-till: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The parser settings of the till's config, and the time now in Unix seconds.
fn scan_config_now(cli: &Cli) -> (loyalty_till::scan::ScanParseConfig, i64) {
    let config = Paths::resolve(cli.data_dir.as_deref())
        .map(|paths| Config::load(&paths.config_file))
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    (
        loyalty_till::diagnostics::scan_config(&config.scan.effective(cli.demo), now),
        now,
    )
}

fn decode_clipboard(cli: &Cli) -> ExitCode {
    let (scan_config, now) = scan_config_now(cli);
    let result = loyalty_till::clipboard::read();
    let ok = result.is_ok();
    println!("{}", loyalty_till::clipboard::describe(&result, &scan_config, now));
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn parse_scan(cli: &Cli) -> ExitCode {
    let (scan_config, now) = scan_config_now(cli);
    let stdin = std::io::stdin().lock();
    match loyalty_till::diagnostics::parse_scan(stdin, std::io::stdout().lock(), &scan_config, now) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loyalty-till parse-scan: {error}");
            ExitCode::FAILURE
        }
    }
}

fn decode_image(files: &[std::path::PathBuf]) -> ExitCode {
    match loyalty_till::qr::decode_files_json(files, std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loyalty-till decode-image: {error}");
            ExitCode::FAILURE
        }
    }
}
