//! `loyalty-till serve` and `loyalty-till till-token create`.

use super::api::system_clock;
use super::store::{DbUrl, Store};
use super::{ServeOptions, runtime, serve};
use crate::cli::{Command, TillTokenAction};
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
            };
            serve(listener, Arc::new(store), system_clock(), options)
                .await
                .map_err(|e| format!("the server stopped: {e}"))
        }
        Command::TillToken {
            action: TillTokenAction::Create { db, org, till },
        } => {
            let store = open(db).await?;
            let token = store
                .create_token(org, till, system_clock()())
                .await
                .map_err(|e| format!("cannot create the token: {e}"))?;
            // Printed once: only its hash is kept.
            println!("{token}");
            Ok(())
        }
        _ => Err("not a server command".to_string()),
    }
}

async fn open(db: &str) -> Result<Store, String> {
    let url = DbUrl::parse(db)?;
    Store::open(&url)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))
}
