//! A single cafe's back office: the till serves it on 127.0.0.1 over its own ledger file, on a
//! thread and runtime of its own (never the UI thread). A port already taken is logged and the
//! till works on without it.

use super::BackOffice;
use crate::server::api::system_clock;
use crate::server::store::{SqliteStore, Store};
use std::path::PathBuf;
use std::sync::Arc;

/// The address the till's menu opens.
pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/admin")
}

/// Starts serving in the background; returns at once.
pub fn start(database: PathBuf, port: u16, qr: Option<super::QrKey>) {
    let spawned = std::thread::Builder::new()
        .name("back-office".to_string())
        .spawn(move || {
            let runtime = match crate::server::runtime() {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "the back office could not start");
                    return;
                }
            };
            runtime.block_on(async move {
                let store = match SqliteStore::open(&database) {
                    Ok(store) => Arc::new(Store::new(store)),
                    Err(error) => {
                        tracing::error!(%error, "the back office could not open the ledger");
                        return;
                    }
                };
                let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::error!(%error, port, "the back office could not listen (is the port taken?)");
                        return;
                    }
                };
                tracing::info!(url = %url(port), "back office listening");
                let router = super::router(BackOffice::local(store, system_clock(), port, qr));
                let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
                if let Err(error) = axum::serve(listener, service).await {
                    tracing::error!(%error, "the back office stopped");
                }
            });
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "the back office thread could not start");
    }
}
