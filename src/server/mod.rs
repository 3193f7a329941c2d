//! The loyalty server: several tills, one ledger. `loyalty-till serve --listen ADDR --db URL`
//! runs it headless, on the embedded SQLite ledger (`sqlite://FILE`) or on PostgreSQL
//! (`postgres://…`), with the same rules as a till's embedded ledger.
//!
//! - [`api`]: the versioned REST API (`/api/v1/…`), till tokens, bad input refused with a reason;
//! - [`store`]: the operations on either store, scoped to the calling till's organisation;
//! - [`pg`]: the PostgreSQL store;
//! - [`openapi`]: the API's OpenAPI document, generated from the wire types (`crate::wire`) and
//!   the handlers, served at `/api/v1/openapi.json`.
//!
//! Plain HTTP: TLS belongs to a reverse proxy in front of the server.

pub mod api;
pub mod cli;
pub mod openapi;
pub mod pg;
pub mod store;
pub mod token_cache;

use crate::domain::LoyaltyError;
use api::{App, ServerClock};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use store::Store;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// How often holds whose time is up are released.
    pub expire_every: Duration,
    /// A payment's check time older than this is booked at the server's time instead.
    pub max_check_age: Duration,
    /// The key the back office signs printable guest and gift QR tokens with.
    pub qr: Option<crate::backoffice::QrKey>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            expire_every: Duration::from_secs(5),
            max_check_age: Duration::from_secs(api::DEFAULT_MAX_CHECK_AGE_SECS as u64),
            qr: None,
        }
    }
}

/// Serves until the process is told to stop (Ctrl-C / SIGTERM) or the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    clock: ServerClock,
    options: ServeOptions,
) -> std::io::Result<()> {
    store.watch_tokens();
    let mut app = App::new(Arc::clone(&store), Arc::clone(&clock));
    app.max_check_age_secs = options.max_check_age.as_secs() as i64;
    let expiry = tokio::spawn(expire_holds_forever(store, clock, options.expire_every));
    let back_office =
        crate::backoffice::BackOffice::with_qr(Arc::clone(&app.store), Arc::clone(&app.clock), options.qr.clone());
    let router = crate::backoffice::router(back_office).merge(api::router(app));
    // With the peer's address: the back office's first-run page answers loopback peers only.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    expiry.abort();
    result
}

/// The server releases holds itself: a till that vanished mid-visit leaves nothing held.
async fn expire_holds_forever(store: Arc<Store>, clock: ServerClock, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match store.expire_holds(clock()).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "released holds whose time was up"),
            Err(error) => tracing::warn!(%error, "could not release expired holds"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("stopping the server");
}

/// A tokio runtime for the server and the server commands.
pub fn runtime() -> Result<tokio::runtime::Runtime, LoyaltyError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("loyalty-server")
        .build()
        .map_err(|e| LoyaltyError::Storage(format!("cannot start the server runtime: {e}")))
}

/// A server on its own thread and runtime, for tests and benchmarks: listens on `addr`
/// (port 0 for any) and stops when dropped.
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ServerHandle {
    /// `open` makes the store on the server's runtime (a PostgreSQL pool's connections live there).
    pub fn start(
        open: impl std::future::Future<Output = Result<Store, LoyaltyError>>,
        clock: ServerClock,
        addr: SocketAddr,
        options: ServeOptions,
    ) -> Result<ServerHandle, LoyaltyError> {
        let runtime = runtime()?;
        let store = Arc::new(runtime.block_on(open)?);
        {
            let _on_the_runtime = runtime.enter();
            store.watch_tokens();
        }
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| LoyaltyError::Unavailable(format!("cannot listen on {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| LoyaltyError::Unavailable(e.to_string()))?;
        let mut app = App::new(Arc::clone(&store), Arc::clone(&clock));
        app.max_check_age_secs = options.max_check_age.as_secs() as i64;
        runtime.spawn(expire_holds_forever(
            Arc::clone(&store),
            Arc::clone(&clock),
            options.expire_every,
        ));
        let back_office =
            crate::backoffice::BackOffice::with_qr(Arc::clone(&store), Arc::clone(&clock), options.qr.clone());
        let router = crate::backoffice::router(back_office).merge(api::router(app));
        runtime.spawn(async move {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            if let Err(error) = axum::serve(listener, service).await {
                tracing::error!(%error, "the server stopped");
            }
        });
        Ok(ServerHandle {
            addr,
            store,
            runtime: Some(runtime),
        })
    }

    /// Runs a store call from outside the runtime (tests seed and check the ledger with it).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match &self.runtime {
            Some(runtime) => runtime.block_on(future),
            None => unreachable_runtime(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn unreachable_runtime() -> ! {
    // The runtime is only taken in Drop.
    panic!("the server runtime is gone")
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}
