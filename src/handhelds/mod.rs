//! The waiters' handhelds: iikoWaiter's "External Loyalty" calls the till at
//! `http://<till>:3000/GetMeBack` to check a guest in on an order from the waiter's device
//! (seed 001). Served on a thread and runtime of its own, like the back office.
//!
//! What iikoWaiter's published protocol says, and what this follows:
//! - `POST {base}/orders/{id}/checkin`, `id` the order's UUID, body `{"Value": "…", "WaiterPin":
//!   "…"}`: `204 No Content` when the guest is bound to the order; `200 OK` with
//!   `{"WaiterMessage": "…"}` when not, the message shown to the waiter in a pop-up.
//! - `DELETE {base}/orders/{id}/checkin`: the check-out. Its answers were not found in the
//!   protocol's published text; they mirror the check-in's (204, or 200 with a `WaiterMessage`).
//!
//! Every decision about a code (who the guest is, which gift, blocked, daily limits) is the
//! engine's, through the till's [`LoyaltyBackend::identify`]; [`orders::OrderBook`] only keeps an
//! order to one guest and a gift to one order.

pub mod guard;
pub mod orders;
pub mod pos;
mod posapi;
pub mod settings;

use crate::backend::LoyaltyBackend;
use crate::config::ScanSettings;
use crate::domain::{Identification, LoyaltyError, ScanEvent};
use crate::i18n::{Arg, I18n, Lang};
use crate::mask::mask_code;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use guard::PinGate;
use orders::{BookError, CheckinRefusal, OrderBook};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest request body accepted: a check-in is two short strings, so 16 KiB leaves room
/// for any scanned value (the scan parsers stop at 4 KiB) and refuses a flood early.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A client that has not sent its body by then is cut off, so slow senders cannot hold the
/// till's connections.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// `[handhelds]` in config.toml.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandheldSettings {
    /// The address to listen on: 127.0.0.1 (iikoWaiter's server on this PC) unless the owner
    /// opens it to the LAN (the till's LAN address, or 0.0.0.0 with `allowed_hosts`).
    pub address: String,
    pub port: u16,
    /// The path before `/orders/…` ("/GetMeBack").
    pub path: String,
    /// The waiters' PINs. None set: the endpoint does not listen at all.
    pub waiter_pins: Vec<String>,
    /// `Host` headers accepted besides `address:port` (and `localhost:port` on loopback), e.g.
    /// "192.168.0.108:3000" when listening on 0.0.0.0.
    pub allowed_hosts: Vec<String>,
    /// The check-out must carry a waiter PIN like the check-in (`{"WaiterPin": "…"}`). The
    /// protocol's text on the check-out body was not found; set false if your iikoWaiter sends
    /// none, and the check-out is then guarded by the address and Host check only.
    pub checkout_requires_pin: bool,
    /// The PIN of the settings page (`{base}/settings`). Empty: the page is not served.
    pub settings_pin: String,
    /// The POS plugin's token (`Authorization: Bearer …`). Empty: the POS calls are not served.
    pub pos_token: String,
    /// The POS payment type id the bonus payment is made with («Bonus payment type»).
    pub bonus_payment_type: String,
    /// Gift name → the POS item code the POS adds for it, for gift codes issued before the back
    /// office's gift catalogue (a catalogue gift's own POS item code comes first).
    pub gift_item_codes: std::collections::BTreeMap<String, String>,
}

impl Default for HandheldSettings {
    fn default() -> Self {
        HandheldSettings {
            address: "127.0.0.1".to_string(),
            port: 3000,
            path: "/GetMeBack".to_string(),
            waiter_pins: Vec::new(),
            allowed_hosts: Vec::new(),
            checkout_requires_pin: true,
            settings_pin: String::new(),
            pos_token: String::new(),
            bonus_payment_type: String::new(),
            gift_item_codes: std::collections::BTreeMap::new(),
        }
    }
}

/// PINs are left out, so that the settings can be logged.
impl std::fmt::Debug for HandheldSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandheldSettings")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("waiter_pins", &format_args!("<{} PINs>", self.waiter_pins.len()))
            .field("allowed_hosts", &self.allowed_hosts)
            .field("checkout_requires_pin", &self.checkout_requires_pin)
            .field(
                "settings_pin",
                &format_args!("<{}>", if self.settings_pin.is_empty() { "unset" } else { "set" }),
            )
            .field(
                "pos_token",
                &format_args!("<{}>", if self.pos_token.is_empty() { "unset" } else { "set" }),
            )
            .field("bonus_payment_type", &self.bonus_payment_type)
            .field("gift_item_codes", &self.gift_item_codes)
            .finish()
    }
}

impl HandheldSettings {
    /// The base path, with one leading slash and none at the end ("" for the root).
    pub fn base_path(&self) -> String {
        let trimmed = self.path.trim().trim_matches('/');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        }
    }

    /// What to type into iikoWaiter's "Server Address".
    pub fn base_url(&self) -> String {
        format!("http://{}:{}{}", self.address, self.port, self.base_path())
    }

    /// Whether the endpoint listens: only with at least one waiter PIN, a POS token or a
    /// settings PIN configured.
    pub fn enabled(&self) -> bool {
        self.waiter_pins.iter().any(|p| !p.is_empty()) || self.pos_enabled() || self.settings_enabled()
    }

    /// Whether the settings page is served: only with its PIN set.
    pub fn settings_enabled(&self) -> bool {
        !self.settings_pin.trim().is_empty()
    }

    /// Whether the POS calls are served: only with a POS token.
    pub fn pos_enabled(&self) -> bool {
        !self.pos_token.trim().is_empty()
    }

    /// The `Host` headers answered.
    fn hosts(&self, port: u16) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .allowed_hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let address = self.address.trim().to_ascii_lowercase();
        let unspecified = address == "0.0.0.0" || address == "::" || address == "[::]";
        if !unspecified {
            hosts.push(format!("{address}:{port}"));
        }
        let loopback = address == "127.0.0.1" || address == "localhost" || address == "::1" || address == "[::1]";
        if loopback || unspecified {
            hosts.push(format!("127.0.0.1:{port}"));
            hosts.push(format!("localhost:{port}"));
        }
        let mut seen = std::collections::HashSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        hosts
    }
}

/// Opens the loyalty backend the check-ins use (the till's own: embedded ledger or server).
pub type OpenBackend = Box<dyn FnOnce() -> Result<Box<dyn LoyaltyBackend>, LoyaltyError> + Send>;

/// What the handlers share.
struct Handhelds {
    settings: HandheldSettings,
    hosts: Vec<String>,
    lang: Lang,
    scan: ScanSettings,
    /// The backend and the order book, used one request at a time: identify and the order's
    /// update happen together, so concurrent check-ins on one order never interleave.
    core: Arc<Mutex<Core>>,
    gate: Mutex<PinGate>,
    feed: Arc<pos::PosFeed>,
    /// Changed by the settings page while the endpoint runs.
    pos_config: Arc<std::sync::RwLock<pos::PosConfig>>,
    /// The settings page, when the endpoint knows its config file.
    settings_page: Option<settings::SettingsPage>,
}

struct Core {
    backend: Box<dyn LoyaltyBackend>,
    orders: OrderBook,
    pos: pos::PosBook,
    /// Operation ids of the POS calls are `pos-<start>-<what>-<call id>`.
    op_prefix: String,
}

impl Core {
    fn pos<'a>(&'a mut self, config: &'a pos::PosConfig, now: i64) -> pos::PosCore<'a> {
        pos::PosCore {
            backend: self.backend.as_mut(),
            book: &self.pos,
            orders: &self.orders,
            config,
            op_prefix: &self.op_prefix,
            now,
        }
    }
}

#[derive(Deserialize)]
struct CheckinRequest {
    #[serde(rename = "Value")]
    value: String,
    #[serde(rename = "WaiterPin", default)]
    waiter_pin: Option<String>,
}

#[derive(Deserialize, Default)]
struct CheckoutRequest {
    #[serde(rename = "WaiterPin", default)]
    waiter_pin: Option<String>,
}

#[derive(Serialize)]
struct WaiterMessage {
    #[serde(rename = "WaiterMessage")]
    message: String,
}

thread_local! {
    // Parsed once per runtime thread: a Fluent bundle is not Sync.
    static RU: I18n = I18n::new(Lang::Ru);
    static EN: I18n = I18n::new(Lang::En);
}

fn with_i18n<T>(lang: Lang, f: impl FnOnce(&I18n) -> T) -> T {
    match lang {
        Lang::Ru => RU.with(f),
        Lang::En => EN.with(f),
    }
}

impl Handhelds {
    /// The POS settings in force now.
    fn pos_config(&self) -> pos::PosConfig {
        self.pos_config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn t(&self, key: &str) -> String {
        with_i18n(self.lang, |i| i.t(key))
    }

    /// A refusal the protocol defines: 200 with the message the waiter sees.
    fn refuse(&self, text: String) -> Response {
        (StatusCode::OK, axum::Json(WaiterMessage { message: text })).into_response()
    }

    /// A request refused before any loyalty decision; the body still carries a message.
    fn reject(&self, status: StatusCode, key: &str) -> Response {
        (status, axum::Json(WaiterMessage { message: self.t(key) })).into_response()
    }
}

/// Starts serving in the background when PINs are configured; returns at once. A port already
/// taken is logged and the till works on without it.
pub fn start(
    settings: HandheldSettings,
    lang: Lang,
    scan: ScanSettings,
    orders: PathBuf,
    open: OpenBackend,
    feed: Arc<pos::PosFeed>,
    config_file: Option<PathBuf>,
) {
    if !settings.enabled() {
        tracing::info!(
            "handhelds endpoint off: no waiter PIN in [handhelds] waiter_pins, no pos_token and no settings_pin"
        );
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("handhelds".to_string())
        .spawn(move || {
            let runtime = match crate::server::runtime() {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "the handhelds endpoint could not start");
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind((settings.address.as_str(), settings.port)).await {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::error!(%error, address = %settings.address, port = settings.port,
                        "the handhelds endpoint could not listen (is the port taken?)");
                        return;
                    }
                };
                if let Err(error) = serve(listener, settings, lang, scan, orders, open, feed, config_file).await {
                    tracing::error!(%error, "the handhelds endpoint stopped");
                }
            });
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "the handhelds thread could not start");
    }
}

/// Serves on `listener` until the runtime stops. The backend opens on a blocking thread. With
/// `config_file` (and a settings PIN) the settings page is served too, and saves to that file.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: HandheldSettings,
    lang: Lang,
    scan: ScanSettings,
    orders: PathBuf,
    open: OpenBackend,
    feed: Arc<pos::PosFeed>,
    config_file: Option<PathBuf>,
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let opened = tokio::task::spawn_blocking(move || -> Result<Core, String> {
        let backend = open().map_err(|e| e.to_string())?;
        let pos = pos::PosBook::open(&orders).map_err(|e| format!("POS book {}: {e}", orders.display()))?;
        let orders = OrderBook::open(&orders).map_err(|e| format!("order book {}: {e}", orders.display()))?;
        let op_prefix = format!("pos-{}", unix_now());
        Ok(Core {
            backend,
            orders,
            pos,
            op_prefix,
        })
    })
    .await
    .map_err(std::io::Error::other)?
    .map_err(std::io::Error::other)?;
    let pos_config = pos::PosConfig {
        bonus_payment_type: settings.bonus_payment_type.clone(),
        gift_item_codes: settings.gift_item_codes.clone(),
    };
    let app = Arc::new(Handhelds {
        hosts: settings.hosts(port),
        settings,
        lang,
        scan,
        core: Arc::new(Mutex::new(opened)),
        gate: Mutex::new(PinGate::default()),
        feed,
        pos_config: Arc::new(std::sync::RwLock::new(pos_config)),
        settings_page: config_file.map(settings::SettingsPage::new),
    });
    if app.settings.pos_enabled() {
        posapi::connect_feed(&app);
    }
    tracing::info!(url = %app.settings.base_url(), ?app.settings, "handhelds endpoint listening");
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

fn router(app: Arc<Handhelds>) -> Router {
    let route = format!("{}/orders/{{order_id}}/checkin", app.settings.base_path());
    let checked = Arc::clone(&app);
    let mut router = if app.settings.pos_enabled() {
        posapi::routes(&app.settings.base_path())
    } else {
        Router::new()
    };
    if app.settings.settings_enabled() && app.settings_page.is_some() {
        router = router.merge(settings::routes(&app.settings.base_path()));
    }
    router
        .route(&route, post(checkin).delete(checkout))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(move |request: Request<Body>, next: Next| {
            let app = Arc::clone(&checked);
            async move { host_guard(&app, request, next).await }
        }))
        .with_state(app)
}

/// Only the configured `Host` headers are answered: a web page the waiter (or anyone) opens
/// cannot reach the till through a DNS name that resolves to it. No CORS headers are ever sent,
/// so a browser's cross-site call fails its preflight.
async fn host_guard(app: &Handhelds, request: Request<Body>, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !app.hosts.contains(&host) {
        tracing::warn!(host = %host.chars().take(64).collect::<String>(), "handhelds: request with a foreign Host header refused");
        return app.reject(StatusCode::MISDIRECTED_REQUEST, "waiter-wrong-host");
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

async fn not_found(State(app): State<Arc<Handhelds>>) -> Response {
    app.reject(StatusCode::NOT_FOUND, "waiter-not-found")
}

/// The order id as the protocol has it: a UUID, kept in lower case.
fn order_id(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let dashes = [8, 13, 18, 23];
    let ok = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| {
            if dashes.contains(&i) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    ok.then(|| raw.to_ascii_lowercase())
}

/// Reads the body within the size and time limits.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, (StatusCode, &'static str)> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "waiter-too-large"));
    }
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err((StatusCode::PAYLOAD_TOO_LARGE, "waiter-too-large")),
        Err(_) => Err((StatusCode::REQUEST_TIMEOUT, "waiter-bad-request")),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The PIN check with its lock-out: `None` when the PIN is right, else the answer to send.
fn check_pin(app: &Handhelds, ip: std::net::IpAddr, pin: Option<&str>) -> Option<Response> {
    let now = Instant::now();
    let mut gate = app.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(wait) = gate.locked(ip, now) {
        tracing::warn!(%ip, "handhelds: PIN attempts locked out");
        return Some(locked_out(app, wait));
    }
    match pin {
        Some(pin) if guard::pin_matches(pin, &app.settings.waiter_pins) => {
            gate.right(ip);
            None
        }
        _ => {
            let locked = gate.wrong(ip, now);
            tracing::warn!(%ip, locked = locked.is_some(), "handhelds: wrong or missing waiter PIN");
            Some(match locked {
                Some(wait) => locked_out(app, wait),
                None => app.refuse(app.t(if pin.is_some_and(|p| !p.is_empty()) {
                    "waiter-wrong-pin"
                } else {
                    "waiter-no-pin"
                })),
            })
        }
    }
}

fn locked_out(app: &Handhelds, wait: Duration) -> Response {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let text = with_i18n(app.lang, |i| {
        i.t_args("waiter-pin-locked", &[("minutes", Arg::Number(minutes as i64))])
    });
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(WaiterMessage { message: text }),
    )
        .into_response();
    if let Ok(value) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What a check-in came to, decided on the blocking thread.
enum Outcome {
    CheckedIn { guest: i64, gift: bool },
    Refused(String),
}

async fn checkin(
    State(app): State<Arc<Handhelds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(raw_order): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_json(&headers) {
        return app.reject(StatusCode::UNSUPPORTED_MEDIA_TYPE, "waiter-bad-request");
    }
    let bytes = match read_body(&headers, body).await {
        Ok(bytes) => bytes,
        Err((status, key)) => return app.reject(status, key),
    };
    let Ok(request) = serde_json::from_slice::<CheckinRequest>(&bytes) else {
        tracing::warn!(
            bytes = bytes.len(),
            "handhelds: check-in body is not the protocol's JSON"
        );
        return app.reject(StatusCode::BAD_REQUEST, "waiter-bad-request");
    };
    if let Some(response) = check_pin(&app, peer.ip(), request.waiter_pin.as_deref()) {
        return response;
    }
    let Some(order) = order_id(&raw_order) else {
        return app.reject(StatusCode::NOT_FOUND, "waiter-bad-order");
    };
    let started = Instant::now();
    let masked = mask_code(&request.value);
    let worker = Arc::clone(&app);
    let decided = tokio::task::spawn_blocking(move || decide_checkin(&worker, &order, &request.value)).await;
    match decided {
        Ok(Outcome::CheckedIn { guest, gift }) => {
            tracing::info!(order = %raw_order.to_ascii_lowercase(), code = %masked, guest, gift,
                ms = started.elapsed().as_millis() as u64, "handhelds: checked in");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Outcome::Refused(text)) => {
            tracing::info!(order = %raw_order.to_ascii_lowercase(), code = %masked, reason = %text, "handhelds: check-in refused");
            app.refuse(text)
        }
        Err(error) => {
            tracing::error!(%error, "handhelds: check-in task failed");
            app.refuse(app.t("err-storage"))
        }
    }
}

/// Classifies the value like a scan at the till, identifies it through the backend (the
/// engine decides), and puts the result on the order.
fn decide_checkin(app: &Handhelds, order: &str, value: &str) -> Outcome {
    let now = unix_now();
    let config = crate::diagnostics::scan_config(&app.scan, now);
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Outcome::Refused(app.t("err-code-empty"));
    }
    let parsed = match crate::scan::classify(trimmed.as_bytes(), &config, now) {
        Ok(parsed) => parsed,
        Err(error) => {
            let key = crate::workflow::refusal_key(error.refusal());
            return Outcome::Refused(app.t(key));
        }
    };
    let scan: ScanEvent = parsed.to_scan_event("iikoWaiter", now * 1_000);
    let mut core = app.core.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let found: Identification = match core.backend.identify(&scan) {
        Ok(found) => found,
        Err(error) => {
            let notice = crate::workflow::error_notice(&error);
            if matches!(error, LoyaltyError::Storage(_) | LoyaltyError::Unavailable(_)) {
                tracing::error!(%error, "handhelds: identify failed");
            }
            return Outcome::Refused(with_i18n(app.lang, |i| i.notice(&notice)));
        }
    };
    match core.orders.check_in(order, &found, now) {
        Ok(()) => Outcome::CheckedIn {
            guest: found.card.guest_id,
            gift: found.gift.is_some(),
        },
        Err(BookError::Refused(refusal)) => Outcome::Refused(app.t(match refusal {
            CheckinRefusal::OtherGuest => "waiter-other-guest",
            CheckinRefusal::OtherGuestsGifts => "waiter-other-guests-gifts",
            CheckinRefusal::GiftOnOtherOrder => "waiter-gift-on-other-order",
        })),
        Err(BookError::Storage(error)) => {
            tracing::error!(%error, "handhelds: order book failed");
            Outcome::Refused(app.t("err-storage"))
        }
    }
}

async fn checkout(
    State(app): State<Arc<Handhelds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(raw_order): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_body(&headers, body).await {
        Ok(bytes) => bytes,
        Err((status, key)) => return app.reject(status, key),
    };
    // The body is optional (its shape was not found in the protocol); when there is one it must
    // be JSON, so a browser's form post is never taken for a check-out.
    let request = if bytes.iter().all(u8::is_ascii_whitespace) {
        CheckoutRequest::default()
    } else if !is_json(&headers) {
        return app.reject(StatusCode::UNSUPPORTED_MEDIA_TYPE, "waiter-bad-request");
    } else {
        match serde_json::from_slice::<CheckoutRequest>(&bytes) {
            Ok(request) => request,
            Err(_) => return app.reject(StatusCode::BAD_REQUEST, "waiter-bad-request"),
        }
    };
    if app.settings.checkout_requires_pin
        && let Some(response) = check_pin(&app, peer.ip(), request.waiter_pin.as_deref())
    {
        return response;
    }
    let Some(order) = order_id(&raw_order) else {
        return app.reject(StatusCode::NOT_FOUND, "waiter-bad-order");
    };
    let worker = Arc::clone(&app);
    let logged = order.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut core = worker.core.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        core.orders.check_out(&order, unix_now())
    })
    .await;
    match done {
        Ok(Ok(true)) => {
            tracing::info!(order = %logged, "handhelds: checked out");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Ok(false)) => {
            tracing::info!(order = %logged, "handhelds: check-out of an order with no guest");
            app.refuse(app.t("waiter-not-checked-in"))
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "handhelds: check-out failed");
            app.refuse(app.t("err-storage"))
        }
        Err(error) => {
            tracing::error!(%error, "handhelds: check-out task failed");
            app.refuse(app.t("err-storage"))
        }
    }
}

/// The endpoint on its own thread and runtime, for tests: listens on `127.0.0.1:0` and stops
/// when dropped.
pub struct HandheldServer {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HandheldServer {
    pub fn spawn(
        settings: HandheldSettings,
        lang: Lang,
        scan: ScanSettings,
        orders: PathBuf,
        open: OpenBackend,
    ) -> std::io::Result<HandheldServer> {
        HandheldServer::spawn_with_feed(settings, lang, scan, orders, open, pos::PosFeed::new())
    }

    /// As [`HandheldServer::spawn`], with the settings page saving to `config_file`.
    pub fn spawn_with_config(
        settings: HandheldSettings,
        lang: Lang,
        scan: ScanSettings,
        orders: PathBuf,
        open: OpenBackend,
        config_file: PathBuf,
    ) -> std::io::Result<HandheldServer> {
        HandheldServer::spawn_inner(
            settings,
            lang,
            scan,
            orders,
            open,
            pos::PosFeed::new(),
            Some(config_file),
        )
    }

    /// As [`HandheldServer::spawn`], publishing the POS's open order (and the cashier's confirm
    /// call) on `feed`.
    pub fn spawn_with_feed(
        settings: HandheldSettings,
        lang: Lang,
        scan: ScanSettings,
        orders: PathBuf,
        open: OpenBackend,
        feed: Arc<pos::PosFeed>,
    ) -> std::io::Result<HandheldServer> {
        HandheldServer::spawn_inner(settings, lang, scan, orders, open, feed, None)
    }

    fn spawn_inner(
        settings: HandheldSettings,
        lang: Lang,
        scan: ScanSettings,
        orders: PathBuf,
        open: OpenBackend,
        feed: Arc<pos::PosFeed>,
        config_file: Option<PathBuf>,
    ) -> std::io::Result<HandheldServer> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("handhelds-test".to_string())
            .spawn(move || {
                let Ok(runtime) = crate::server::runtime() else { return };
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::select! {
                        result = serve(listener, settings, lang, scan, orders, open, feed, config_file) => {
                            if let Err(error) = result {
                                tracing::error!(%error, "handhelds test server stopped");
                            }
                        }
                        _ = stop => {}
                    }
                });
            })?;
        Ok(HandheldServer {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for HandheldServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_uuids() {
        assert_eq!(
            order_id("0E7A1C4D-8B9F-4A2E-9C3D-1F2E3D4C5B6A").as_deref(),
            Some("0e7a1c4d-8b9f-4a2e-9c3d-1f2e3d4c5b6a")
        );
        assert_eq!(order_id("0e7a1c4d8b9f4a2e9c3d1f2e3d4c5b6a"), None);
        assert_eq!(order_id("12"), None);
        assert_eq!(order_id("0e7a1c4d-8b9f-4a2e-9c3d-1f2e3d4c5b6g"), None);
    }

    #[test]
    fn base_path_and_hosts_follow_the_settings() {
        let mut settings = HandheldSettings::default();
        assert_eq!(settings.base_url(), "http://127.0.0.1:3000/GetMeBack");
        assert_eq!(settings.hosts(3000), ["127.0.0.1:3000", "localhost:3000"]);
        settings.path = "GetMeBack/".into();
        assert_eq!(settings.base_path(), "/GetMeBack");
        settings.path = "/".into();
        assert_eq!(settings.base_path(), "");
        settings.address = "192.168.0.108".into();
        assert_eq!(settings.hosts(3000), ["192.168.0.108:3000"]);
        settings.address = "0.0.0.0".into();
        settings.allowed_hosts = vec!["Till.local:3000".into()];
        assert_eq!(
            settings.hosts(3000),
            ["till.local:3000", "127.0.0.1:3000", "localhost:3000"]
        );
        assert!(!settings.enabled());
        settings.waiter_pins = vec![String::new()];
        assert!(!settings.enabled(), "an empty PIN opens nothing");
        settings.waiter_pins = vec!["1234".into()];
        assert!(settings.enabled());
        assert!(!format!("{settings:?}").contains("1234"));
    }
}
