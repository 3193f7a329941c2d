//! `loyalty-till serve`, `loyalty-till till-token create|revoke` and `loyalty-till owner create`.
//! The command line's changes are in the audit log like the back office's, as made by the
//! system account that ran it.

use super::api::system_clock;
use super::store::{DbUrl, Store};
use super::{ServeOptions, runtime, serve};
use crate::backoffice::auth::{MIN_PASSWORD, hash_password};
use crate::backoffice::db::{AuditEntry, Role, command_line_actor, save_user_logged};
use crate::cli::{Cli, Command, OwnerAction, TillTokenAction};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub fn run(command: &Command) -> ExitCode {
    // Headless: logs go to stderr (a service manager keeps them).
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOYALTY_TILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let result = match runtime() {
        Ok(runtime) => runtime.block_on(run_async(command)),
        Err(error) => Err(error.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loyalty-till: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(command: &Command) -> Result<(), String> {
    match command {
        Command::Serve {
            listen,
            db,
            hold_ttl,
            expire_every,
            max_check_age_hours,
        } => {
            let store = open(db).await?;
            if let Some(secs) = hold_ttl {
                if *secs <= 0 {
                    return Err("--hold-ttl must be positive".to_string());
                }
                store.set_hold_ttl(*secs).await.map_err(|e| e.to_string())?;
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            tracing::info!(%addr, "loyalty server listening");
            // The line a supervisor or a test waits for.
            println!("listening on http://{addr}");
            let options = ServeOptions {
                expire_every: Duration::from_secs((*expire_every).max(1)),
                max_check_age: Duration::from_secs(max_check_age_hours.saturating_mul(3_600)),
                qr: crate::backoffice::QrKey::from_env(),
            };
            serve(listener, Arc::new(store), system_clock(), options)
                .await
                .map_err(|e| format!("the server stopped: {e}"))
        }
        Command::TillToken {
            action: TillTokenAction::Create { db, org, till },
        } => {
            let store = open(db).await?;
            let now = system_clock()();
            let entry = cli_audit(now, "till_token_add", till.clone());
            let token = store
                .create_token_logged(org, till, now, Some(&entry))
                .await
                .map_err(|e| format!("cannot create the token: {e}"))?;
            // Printed once: only its hash is kept.
            println!("{token}");
            Ok(())
        }
        Command::TillToken {
            action: TillTokenAction::Revoke { db, org, till },
        } => {
            let store = open(db).await?;
            let entry = cli_audit(system_clock()(), "till_token_revoke", till.clone());
            let revoked = store
                .revoke_token(org, till, &entry)
                .await
                .map_err(|e| format!("cannot revoke the token: {e}"))?;
            if !revoked {
                return Err(format!("organisation {org} has no till {till}"));
            }
            println!("the token of till {till} ({org}) is revoked");
            Ok(())
        }
        _ => Err("not a server command".to_string()),
    }
}

/// The audit log's row for a change made here.
fn cli_audit(now: i64, action: &str, detail: String) -> AuditEntry {
    AuditEntry {
        at: now,
        actor: command_line_actor(),
        action: action.to_string(),
        guest_id: None,
        detail,
        reason: String::new(),
    }
}

async fn open(db: &str) -> Result<Store, String> {
    let url = DbUrl::parse(db)?;
    Store::open(&url)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))
}

/// `loyalty-till owner create`: an account on the server's database or on the till's ledger.
pub fn owner(cli: &Cli, action: &OwnerAction) -> ExitCode {
    let OwnerAction::Create { login, db, org, role } = action;
    let result = (|| {
        if !crate::server::store::valid_name(login) || !crate::server::store::valid_name(org) {
            return Err("the login and the organisation are 1 to 32 letters, digits, '-', '_' or '.'".to_string());
        }
        let role = Role::parse(role).ok_or("the role is owner or manager")?;
        let url = match db {
            Some(db) => db.clone(),
            None => {
                let paths = crate::config::Paths::resolve(cli.data_dir.as_deref())
                    .ok_or("no data folder: pass --data-dir or --db")?;
                format!("sqlite://{}", paths.database(cli.demo).display())
            }
        };
        let password = read_password()?;
        let hash = hash_password(&password).map_err(|e| e.to_string())?;
        let runtime = runtime().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let store = open(&url).await?;
            let now = system_clock()();
            // The login and role only: never the password or its hash.
            let entry = cli_audit(now, "account_save", format!("{login} ({})", role.as_str()));
            save_user_logged(&store, org, login, &hash, role, now, Some(&entry))
                .await
                .map_err(|e| format!("cannot save the account: {e}"))
        })?;
        println!("account {login} ({}) saved for organisation {org}", role.as_str());
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loyalty-till owner create: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The password: typed twice (unechoed where the terminal allows) or one line of stdin.
fn read_password() -> Result<String, String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt("Password: ")?;
        let second = prompt("Password again: ")?;
        if first != second {
            return Err("the passwords differ".to_string());
        }
        first
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| e.to_string())?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("the password needs at least {MIN_PASSWORD} characters"));
    }
    Ok(password)
}

fn prompt(text: &str) -> Result<String, String> {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{text}");
    let _ = stderr.flush();
    let echo_off = set_echo(false);
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        set_echo(true);
        let _ = writeln!(stderr);
    }
    read.map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns the terminal's echo off or on with `stty` (Unix); false when it could not.
fn set_echo(on: bool) -> bool {
    #[cfg(unix)]
    {
        std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    }
    #[cfg(not(unix))]
    {
        let _ = on;
        false
    }
}
