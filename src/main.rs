// Release builds on Windows have no console window behind the till.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser;
use loyalty_till::cli::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match loyalty_till::ui::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loyalty-till: {message}");
            ExitCode::FAILURE
        }
    }
}
