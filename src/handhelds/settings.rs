//! The till's settings page at `{base}/settings`, on the handhelds' endpoint: the endpoint's
//! address, port and path, the brand name, the backend, the POS's bonus payment type and gift
//! item codes, the log level, and a read-only summary of the configured devices.
//!
//! Protected by `[handhelds] settings_pin` (not a waiter's PIN: a waiter must not reach the
//! till's settings), with the waiters' brake on guessing (its own count, so a wrong settings PIN
//! never locks a handheld out). A session is an HttpOnly, SameSite=Strict cookie; every form
//! carries a CSRF token. Saving writes config.toml through [`crate::config::edit`]: comments and
//! unknown keys kept, the file replaced atomically, nothing written when any field is wrong.

use super::guard::{self, PinGate};
use super::{Handhelds, with_i18n};
use crate::config::{Config, ConfigWriteError};
use crate::i18n::Arg;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A settings form is a few short fields and some gift rows.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// A session ends after this long without a request.
const IDLE: Duration = Duration::from_secs(30 * 60);
/// Sessions kept at most (the oldest goes first).
const MAX_SESSIONS: usize = 32;
/// Gift rows read from one form at most.
const MAX_GIFT_ROWS: usize = 200;
/// Empty gift rows offered under the configured ones.
const BLANK_GIFT_ROWS: usize = 3;
const SESSION_COOKIE: &str = "gmb_settings";
const LOGIN_COOKIE: &str = "gmb_settings_login";

/// The page's own state: where it saves, its sessions and its wrong-PIN count.
pub struct SettingsPage {
    config_file: PathBuf,
    sessions: Mutex<HashMap<String, PageSession>>,
    gate: Mutex<PinGate>,
}

#[derive(Clone)]
struct PageSession {
    csrf: String,
    seen: Instant,
}

impl SettingsPage {
    pub fn new(config_file: PathBuf) -> SettingsPage {
        SettingsPage {
            config_file,
            sessions: Mutex::new(HashMap::new()),
            gate: Mutex::new(PinGate::default()),
        }
    }

    fn open_session(&self) -> Option<(String, PageSession)> {
        let session = PageSession {
            csrf: random_token()?,
            seen: Instant::now(),
        };
        let token = random_token()?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.seen.elapsed() < IDLE);
        while sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.seen).map(|(t, _)| t.clone()) else {
                break;
            };
            sessions.remove(&oldest);
        }
        sessions.insert(token.clone(), session.clone());
        Some((token, session))
    }

    fn find(&self, headers: &HeaderMap) -> Option<PageSession> {
        let token = crate::backoffice::auth::cookie(headers, SESSION_COOKIE)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let session = sessions.get_mut(&token)?;
        if session.seen.elapsed() >= IDLE {
            sessions.remove(&token);
            return None;
        }
        session.seen = Instant::now();
        Some(session.clone())
    }

    fn close(&self, headers: &HeaderMap) {
        if let Some(token) = crate::backoffice::auth::cookie(headers, SESSION_COOKIE) {
            self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&token);
        }
    }
}

fn random_token() -> Option<String> {
    crate::backoffice::auth::random_token().ok()
}

pub(super) fn routes(base: &str) -> Router<Arc<Handhelds>> {
    Router::new()
        .route(&format!("{base}/settings"), get(show).post(save))
        .route(&format!("{base}/settings/login"), post(login))
        .route(&format!("{base}/settings/logout"), post(logout))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

type Fields = Form<HashMap<String, String>>;

fn page_of(app: &Handhelds) -> &SettingsPage {
    // The routes are only added when the page exists (see `router`).
    static NONE: std::sync::OnceLock<SettingsPage> = std::sync::OnceLock::new();
    app.settings_page
        .as_ref()
        .unwrap_or_else(|| NONE.get_or_init(|| SettingsPage::new(PathBuf::new())))
}

fn base(app: &Handhelds) -> String {
    format!("{}/settings", app.settings.base_path())
}

fn t(app: &Handhelds, key: &str) -> String {
    with_i18n(app.lang, |i| i.t(key))
}

fn t_args(app: &Handhelds, key: &str, args: &[(&str, Arg)]) -> String {
    with_i18n(app.lang, |i| i.t_args(key, args))
}

/// The headers every page of it gets: no framing, no sniffing, no script, forms to itself.
fn secured(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

const EXTRA_STYLE: &str = ".field-error{color:#a00;display:block;margin-top:.2em}
input[aria-invalid=true]{border:2px solid #c00}fieldset{border:1px solid #ddd;background:#fff;margin:.8em 0;padding:.6em .8em}
legend{font-weight:bold}.hint{color:#666;font-size:.9em;display:block}td input{width:100%}
input,select{max-width:100%;box-sizing:border-box}fieldset{min-width:0}";

fn layout(app: &Handhelds, session: Option<&PageSession>, title: &str, body: Markup) -> Markup {
    let lang = if app.lang == crate::i18n::Lang::En { "en" } else { "ru" };
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (crate::backoffice::STYLE) (EXTRA_STYLE) }
            }
            body {
                header {
                    strong { (t(app, "st-title")) }
                    @if let Some(session) = session {
                        span.who {
                            form method="post" action={ (base(app)) "/logout" } {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" { (t(app, "st-logout")) }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

// ----- Login -----

fn login_page(app: &Handhelds, error: Option<String>, status: StatusCode) -> Response {
    let Some(token) = random_token() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = html! {
        @if let Some(error) = &error { p.error role="alert" { (error) } }
        form.box method="post" action={ (base(app)) "/login" } {
            input type="hidden" name="csrf" value=(token);
            label { (t(app, "st-pin")) br;
                input name="pin" type="password" inputmode="numeric" autocomplete="off" required autofocus;
            }
            button type="submit" { (t(app, "st-sign-in")) }
        }
        p.muted { (t(app, "st-login-hint")) }
    };
    let mut response = secured(status, layout(app, None, &t(app, "st-login-title"), body));
    let cookie = format!("{LOGIN_COOKIE}={token}; Path={}; HttpOnly; SameSite=Strict", base(app));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn login(
    State(app): State<Arc<Handhelds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    let page = page_of(&app);
    let expected = crate::backoffice::auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    if expected.is_empty() || !crate::backoffice::auth::same_secret(sent, &expected) {
        tracing::warn!(ip = %peer.ip(), "settings: a login without its CSRF token refused");
        return login_page(&app, Some(t(&app, "st-err-csrf")), StatusCode::FORBIDDEN);
    }
    let ip = peer.ip();
    let now = Instant::now();
    let pin = form.get("pin").map(String::as_str).unwrap_or_default();
    let verdict = {
        let mut gate = page.gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = gate.locked(ip, now) {
            Err(Some(wait))
        } else if guard::pin_matches(pin, std::slice::from_ref(&app.settings.settings_pin)) {
            gate.right(ip);
            Ok(())
        } else {
            Err(gate.wrong(ip, now))
        }
    };
    match verdict {
        Ok(()) => {
            let Some((token, _)) = page.open_session() else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            tracing::info!(%ip, "settings: signed in");
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path={}; HttpOnly; SameSite=Strict",
                base(&app)
            );
            let mut response = Redirect::to(&base(&app)).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(Some(wait)) => {
            tracing::warn!(%ip, "settings: PIN attempts locked out");
            let minutes = wait.as_secs().div_ceil(60).max(1) as i64;
            let text = t_args(&app, "st-err-locked", &[("minutes", Arg::Number(minutes))]);
            let mut response = login_page(&app, Some(text), StatusCode::TOO_MANY_REQUESTS);
            if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Err(None) => {
            tracing::warn!(%ip, "settings: wrong PIN");
            login_page(&app, Some(t(&app, "st-err-pin")), StatusCode::UNAUTHORIZED)
        }
    }
}

async fn logout(State(app): State<Arc<Handhelds>>, headers: HeaderMap, Form(form): Fields) -> Response {
    let page = page_of(&app);
    if let Some(session) = page.find(&headers)
        && crate::backoffice::auth::same_secret(form.get("csrf").map(String::as_str).unwrap_or_default(), &session.csrf)
    {
        page.close(&headers);
        tracing::info!("settings: signed out");
    }
    let cookie = format!(
        "{SESSION_COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
        base(&app)
    );
    let mut response = Redirect::to(&base(&app)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

// ----- The form -----

/// The form's fields as text, as shown and as posted.
#[derive(Clone, Debug, Default)]
struct Values {
    address: String,
    port: String,
    path: String,
    program_name: String,
    backend: String,
    server_url: String,
    bonus_payment_type: String,
    gifts: Vec<(String, String)>,
    log_level: String,
}

impl Values {
    fn of(config: &Config) -> Values {
        Values {
            address: config.handhelds.address.clone(),
            port: config.handhelds.port.to_string(),
            path: config.handhelds.path.clone(),
            program_name: config.program_name.clone(),
            backend: if config.server.is_set() { "server" } else { "embedded" }.to_string(),
            server_url: config.server.url.clone(),
            bonus_payment_type: config.handhelds.bonus_payment_type.clone(),
            gifts: config
                .handhelds
                .gift_item_codes
                .iter()
                .map(|(name, code)| (name.clone(), code.clone()))
                .collect(),
            log_level: config.log_level.clone(),
        }
    }

    fn posted(form: &HashMap<String, String>) -> Values {
        let field = |name: &str| form.get(name).map(|v| v.trim().to_string()).unwrap_or_default();
        let rows = field("gift_rows").parse::<usize>().unwrap_or(0).min(MAX_GIFT_ROWS);
        let mut gifts: Vec<(String, String)> = (0..rows)
            .map(|i| (field(&format!("gift_name_{i}")), field(&format!("gift_code_{i}"))))
            .collect();
        // Blank rows at the end are offered again when the form is shown back, not piled up.
        while gifts
            .last()
            .is_some_and(|(gift, code)| gift.is_empty() && code.is_empty())
        {
            gifts.pop();
        }
        Values {
            address: field("address"),
            port: field("port"),
            path: field("path"),
            program_name: field("program_name"),
            backend: field("backend"),
            server_url: field("server_url"),
            bonus_payment_type: field("bonus_payment_type"),
            gifts,
            log_level: field("log_level"),
        }
    }
}

/// What the token field asked for: it is write-only, so empty keeps the one in the file.
struct TokenChange {
    new: String,
    clear: bool,
}

/// Field name → the message shown next to it.
type FieldErrors = BTreeMap<String, String>;

/// Checks every field, collecting every problem, and makes the next config from `current`.
fn validate(app: &Handhelds, values: &Values, token: &TokenChange, current: &Config) -> Result<Config, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut next = current.clone();
    let mut bad = |field: &str, key: &str| {
        errors.insert(field.to_string(), t(app, key));
    };
    let address = values.address.as_str();
    if address.parse::<std::net::IpAddr>().is_ok() || address.eq_ignore_ascii_case("localhost") {
        next.handhelds.address = address.to_string();
    } else {
        bad("address", "st-err-address");
    }
    match values.port.parse::<u16>() {
        Ok(port) if port > 0 => next.handhelds.port = port,
        _ => bad("port", "st-err-port"),
    }
    let path = values.path.as_str();
    let path_ok = path.starts_with('/')
        && path.len() <= 64
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if path_ok {
        next.handhelds.path = path.to_string();
    } else {
        bad("path", "st-err-path");
    }
    let name = values.program_name.as_str();
    if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
        bad("program_name", "st-err-brand");
    } else {
        next.program_name = name.to_string();
    }
    let mut token_bad = false;
    if token.clear {
        next.server.token = String::new();
    } else if !token.new.is_empty() {
        if token.new.chars().any(char::is_whitespace) || token.new.len() > 512 {
            token_bad = true;
            bad("server_token", "st-err-token");
        } else {
            next.server.token = token.new.clone();
        }
    }
    match values.backend.as_str() {
        "embedded" => next.server.url = String::new(),
        "server" => {
            if server_url_ok(&values.server_url) {
                next.server.url = values.server_url.trim_end_matches('/').to_string();
                if next.server.token.is_empty() && !token_bad {
                    bad("server_token", "st-err-token-needed");
                }
            } else {
                bad("server_url", "st-err-url");
            }
        }
        _ => bad("backend", "st-err-backend"),
    }
    let payment = values.bonus_payment_type.as_str();
    if payment.is_empty() {
        next.handhelds.bonus_payment_type = String::new();
    } else if super::order_id(payment).is_some() {
        next.handhelds.bonus_payment_type = payment.to_ascii_lowercase();
    } else {
        bad("bonus_payment_type", "st-err-bonus-type");
    }
    let mut gifts = BTreeMap::new();
    for (i, (gift, code)) in values.gifts.iter().enumerate() {
        if gift.is_empty() && code.is_empty() {
            continue;
        }
        let code_ok = !code.is_empty() && code.len() <= 32 && !code.chars().any(char::is_whitespace);
        if gift.is_empty() || gift.chars().count() > 100 || !code_ok {
            bad(&format!("gift_{i}"), "st-err-gift");
        } else if gifts.insert(gift.clone(), code.clone()).is_some() {
            bad(&format!("gift_{i}"), "st-err-gift-twice");
        }
    }
    next.handhelds.gift_item_codes = gifts;
    if crate::logging::LEVELS.contains(&values.log_level.as_str()) {
        next.log_level = values.log_level.clone();
    } else {
        bad("log_level", "st-err-log-level");
    }
    if errors.is_empty() { Ok(next) } else { Err(errors) }
}

/// A loyalty server's address the till can reach: plain `http://host[:port][/path]` (the till
/// carries no TLS library; HTTPS goes through a relay, see README).
fn server_url_ok(text: &str) -> bool {
    match reqwest::Url::parse(text) {
        Ok(url) => {
            url.scheme() == "http"
                && url.host_str().is_some_and(|h| !h.is_empty())
                && url.username().is_empty()
                && url.password().is_none()
                && url.query().is_none()
                && url.fragment().is_none()
        }
        Err(_) => false,
    }
}

/// The keys the page may write, as dotted paths into config.toml.
const PAGE_KEYS: [&str; 9] = [
    "handhelds.address",
    "handhelds.port",
    "handhelds.path",
    "program_name",
    "server.url",
    "server.token",
    "handhelds.bonus_payment_type",
    "handhelds.gift_item_codes",
    "log_level",
];

/// What a save came to, for the message above the form.
struct Saved {
    changed: bool,
    now: Vec<String>,
    restart: Vec<String>,
    moved_to: Option<String>,
}

enum SaveError {
    Invalid(FieldErrors),
    Write(ConfigWriteError),
}

impl From<ConfigWriteError> for SaveError {
    fn from(error: ConfigWriteError) -> Self {
        SaveError::Write(error)
    }
}

/// Reads the config as it is in the file now, for the form.
fn read_current(app: &Handhelds) -> Result<Config, String> {
    let path = &page_of(app).config_file;
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| e.to_string()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(error) => Err(error.to_string()),
    }
}

async fn show(State(app): State<Arc<Handhelds>>, headers: HeaderMap) -> Response {
    let Some(session) = page_of(&app).find(&headers) else {
        return login_page(&app, None, StatusCode::OK);
    };
    let worker = Arc::clone(&app);
    let current = tokio::task::spawn_blocking(move || read_current(&worker))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match current {
        Ok(config) => form_page(
            &app,
            &session,
            &Values::of(&config),
            &config,
            &FieldErrors::new(),
            None,
            StatusCode::OK,
        ),
        Err(error) => {
            tracing::error!(%error, "settings: config.toml cannot be read");
            let text = t_args(&app, "st-unreadable", &[("reason", Arg::Text(error))]);
            let body = html! { p.error role="alert" { (text) } };
            secured(
                StatusCode::INTERNAL_SERVER_ERROR,
                layout(&app, Some(&session), &t(&app, "st-title"), body),
            )
        }
    }
}

async fn save(State(app): State<Arc<Handhelds>>, headers: HeaderMap, Form(form): Fields) -> Response {
    let Some(session) = page_of(&app).find(&headers) else {
        tracing::warn!("settings: a save without a session refused");
        return Redirect::to(&base(&app)).into_response();
    };
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !crate::backoffice::auth::same_secret(sent, &session.csrf) {
        tracing::warn!("settings: a save without the session's CSRF token refused; nothing written");
        let body = html! {
            p.error role="alert" { (t(&app, "st-err-csrf")) }
            p { a href=(base(&app)) { (t(&app, "st-back")) } }
        };
        return secured(
            StatusCode::FORBIDDEN,
            layout(&app, Some(&session), &t(&app, "st-title"), body),
        );
    }
    let values = Values::posted(&form);
    let token = TokenChange {
        new: form
            .get("server_token")
            .map(|v| v.trim().to_string())
            .unwrap_or_default(),
        clear: form.get("clear_token").is_some_and(|v| v == "on"),
    };
    let worker = Arc::clone(&app);
    let shown = values.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut before = None;
        let written = crate::config::edit(&page_of(&worker).config_file, |current| {
            before = Some(current.clone());
            validate(&worker, &values, &token, current)
                .map(|next| (next, PAGE_KEYS.to_vec()))
                .map_err(SaveError::Invalid)
        });
        (before, written)
    })
    .await;
    let (before, written) = match done {
        Ok(done) => done,
        Err(error) => {
            tracing::error!(%error, "settings: the save task failed");
            (
                None,
                Err(SaveError::Write(ConfigWriteError::Io(std::io::Error::other(
                    error.to_string(),
                )))),
            )
        }
    };
    match (before, written) {
        (Some(before), Ok(after)) => {
            let saved = apply(&app, &before, &after);
            form_page(
                &app,
                &session,
                &Values::of(&after),
                &after,
                &FieldErrors::new(),
                Some(Ok(saved)),
                StatusCode::OK,
            )
        }
        (before, Err(SaveError::Invalid(errors))) => {
            let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
            tracing::warn!(?fields, "settings: bad input refused; config.toml unchanged");
            for (field, message) in &errors {
                tracing::info!(field = %field, reason = %message, "settings: field refused");
            }
            let config = before.unwrap_or_default();
            form_page(
                &app,
                &session,
                &shown,
                &config,
                &errors,
                Some(Err(t(&app, "st-not-saved"))),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        (before, Err(SaveError::Write(error))) => {
            tracing::error!(%error, "settings: not saved");
            let text = t_args(&app, "st-write-failed", &[("reason", Arg::Text(error.to_string()))]);
            let config = before.unwrap_or_default();
            form_page(
                &app,
                &session,
                &shown,
                &config,
                &FieldErrors::new(),
                Some(Err(text)),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
        (None, Ok(_)) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Applies what can change while the till runs, and says what waits for a restart.
fn apply(app: &Handhelds, before: &Config, after: &Config) -> Saved {
    let mut saved = Saved {
        changed: before != after,
        now: Vec::new(),
        restart: Vec::new(),
        moved_to: None,
    };
    if before.program_name != after.program_name {
        let live = crate::config::LiveWindow::shared();
        let has_window = live.has_window();
        live.set_brand(after.program_name.clone());
        let what = t(app, "st-what-brand");
        if has_window {
            saved.now.push(what)
        } else {
            saved.restart.push(what)
        }
    }
    if before.log_level != after.log_level {
        let what = t(app, "st-what-log");
        if crate::logging::set_level(&after.log_level) {
            saved.now.push(what);
        } else {
            saved.restart.push(what);
        }
    }
    let (b, a) = (&before.handhelds, &after.handhelds);
    if b.bonus_payment_type != a.bonus_payment_type || b.gift_item_codes != a.gift_item_codes {
        let mut config = app.pos_config.write().unwrap_or_else(|p| p.into_inner());
        config.bonus_payment_type = a.bonus_payment_type.clone();
        config.gift_item_codes = a.gift_item_codes.clone();
        saved.now.push(t(app, "st-what-pos"));
    }
    if (&b.address, b.port, b.base_path()) != (&a.address, a.port, a.base_path()) {
        saved.restart.push(t(app, "st-what-endpoint"));
        saved.moved_to = Some(format!("{}/settings", a.base_url()));
    }
    if before.server.url != after.server.url || before.server.token != after.server.token {
        saved.restart.push(t(app, "st-what-backend"));
    }
    tracing::info!(
        changed = saved.changed,
        applied = saved.now.len(),
        waiting_for_restart = saved.restart.len(),
        "settings: saved to config.toml"
    );
    saved
}

fn field_error(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @if let Some(message) = errors.get(field) {
            span.field-error id={ "invalid_" (field) } role="alert" { (message) }
        }
    }
}

fn invalid(errors: &FieldErrors, field: &str) -> &'static str {
    if errors.contains_key(field) { "true" } else { "false" }
}

fn role_key(role: crate::devices::hid::bus::HidRole) -> &'static str {
    use crate::devices::hid::bus::HidRole;
    match role {
        HidRole::Scanner => "st-role-scanner",
        HidRole::CardReader => "st-role-card-reader",
        HidRole::Ignore => "st-role-ignore",
    }
}

/// The configured devices, one line each (read-only here: the till's devices screen sets them).
fn devices(app: &Handhelds, config: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    for device in &config.serial_devices {
        lines.push(t_args(
            app,
            "st-device-serial",
            &[
                ("port", Arg::Text(device.port.clone())),
                ("baud", Arg::Number(i64::from(device.baud))),
                ("role", Arg::Text(t(app, role_key(device.role)))),
            ],
        ));
    }
    for device in &config.keyboard_devices {
        let name = if device.label.is_empty() {
            device.name_contains.clone()
        } else {
            device.label.clone()
        };
        lines.push(t_args(
            app,
            "st-device-keyboard",
            &[
                ("name", Arg::Text(name)),
                ("role", Arg::Text(t(app, role_key(device.role)))),
            ],
        ));
    }
    for device in &config.hid.devices {
        let id = format!("{:04X}:{:04X}", device.vendor_id, device.product_id);
        let name = if device.label.is_empty() {
            id
        } else {
            format!("{} ({id})", device.label)
        };
        lines.push(t_args(
            app,
            "st-device-hid",
            &[
                ("name", Arg::Text(name)),
                ("role", Arg::Text(t(app, role_key(device.role)))),
            ],
        ));
    }
    lines
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    app: &Handhelds,
    session: &PageSession,
    values: &Values,
    config: &Config,
    errors: &FieldErrors,
    outcome: Option<Result<Saved, String>>,
    status: StatusCode,
) -> Response {
    let gift_rows: Vec<(String, String)> = values
        .gifts
        .iter()
        .cloned()
        .chain(std::iter::repeat_n((String::new(), String::new()), BLANK_GIFT_ROWS))
        .collect();
    let token_set = !config.server.token.is_empty();
    let device_lines = devices(app, config);
    let body = html! {
        @match &outcome {
            Some(Ok(saved)) => {
                div.ok role="status" id="saved" {
                    p { (t(app, if saved.changed { "st-saved" } else { "st-saved-nothing" })) }
                    @if !saved.now.is_empty() {
                        p { (t_args(app, "st-applied-now", &[("what", Arg::Text(saved.now.join(", ")))])) }
                    }
                    @if !saved.restart.is_empty() {
                        p id="restart" { strong { (t_args(app, "st-needs-restart", &[("what", Arg::Text(saved.restart.join(", ")))])) } }
                    }
                    @if let Some(url) = &saved.moved_to {
                        p { (t_args(app, "st-moved", &[("url", Arg::Text(url.clone()))])) }
                    }
                }
            }
            Some(Err(text)) => { p.error role="alert" id="not_saved" { (text) } }
            None => {}
        }
        form method="post" action=(base(app)) {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="gift_rows" value=(gift_rows.len());
            fieldset {
                legend { (t(app, "st-section-endpoint")) }
                span.hint { (t_args(app, "st-endpoint-now", &[("url", Arg::Text(app.settings.base_url()))])) }
                label { (t(app, "st-address")) br;
                    input name="address" value=(values.address) aria-invalid=(invalid(errors, "address")) size="20";
                    span.hint { (t(app, "st-address-hint")) }
                    (field_error(errors, "address"))
                }
                label { (t(app, "st-port")) br;
                    input name="port" value=(values.port) inputmode="numeric" aria-invalid=(invalid(errors, "port")) size="6";
                    (field_error(errors, "port"))
                }
                label { (t(app, "st-path")) br;
                    input name="path" value=(values.path) aria-invalid=(invalid(errors, "path")) size="20";
                    (field_error(errors, "path"))
                }
                span.hint { (t(app, "st-endpoint-restart")) }
            }
            fieldset {
                legend { (t(app, "st-section-brand")) }
                label { (t(app, "st-brand")) br;
                    input name="program_name" value=(values.program_name) aria-invalid=(invalid(errors, "program_name")) size="30";
                    (field_error(errors, "program_name"))
                }
            }
            fieldset {
                legend { (t(app, "st-section-backend")) }
                label { input type="radio" name="backend" value="embedded" checked[values.backend != "server"]; " " (t(app, "st-backend-embedded")) }
                label { input type="radio" name="backend" value="server" checked[values.backend == "server"]; " " (t(app, "st-backend-server")) }
                (field_error(errors, "backend"))
                label { (t(app, "st-server-url")) br;
                    input name="server_url" value=(values.server_url) placeholder="http://loyalty.example:8080" aria-invalid=(invalid(errors, "server_url")) size="40";
                    (field_error(errors, "server_url"))
                }
                label { (t(app, "st-server-token")) " ("
                    span id="token-state" { (t(app, if token_set { "st-token-set" } else { "st-token-unset" })) } ")" br;
                    input name="server_token" type="password" autocomplete="new-password" value="" aria-invalid=(invalid(errors, "server_token")) size="40";
                    span.hint { (t(app, "st-token-hint")) }
                    (field_error(errors, "server_token"))
                }
                @if token_set {
                    label { input type="checkbox" name="clear_token"; " " (t(app, "st-token-clear")) }
                }
                span.hint { (t(app, "st-backend-restart")) }
            }
            fieldset {
                legend { (t(app, "st-section-pos")) }
                label { (t(app, "st-bonus-type")) br;
                    input name="bonus_payment_type" value=(values.bonus_payment_type) aria-invalid=(invalid(errors, "bonus_payment_type")) size="40";
                    span.hint { (t(app, "st-bonus-type-hint")) }
                    (field_error(errors, "bonus_payment_type"))
                }
                p { strong { (t(app, "st-gifts")) } }
                table {
                    tr { th { (t(app, "st-gift-name")) } th { (t(app, "st-gift-code")) } }
                    @for (i, (gift, code)) in gift_rows.iter().enumerate() {
                        @let field = format!("gift_{i}");
                        tr {
                            td { input name={ "gift_name_" (i) } value=(gift) aria-invalid=(invalid(errors, &field)); }
                            td { input name={ "gift_code_" (i) } value=(code) aria-invalid=(invalid(errors, &field));
                                (field_error(errors, &field)) }
                        }
                    }
                }
                span.hint { (t(app, "st-gifts-hint")) }
            }
            fieldset {
                legend { (t(app, "st-section-log")) }
                label { (t(app, "st-log-level")) br;
                    select name="log_level" aria-invalid=(invalid(errors, "log_level")) {
                        @for level in crate::logging::LEVELS {
                            option value=(level) selected[values.log_level == level] { (t(app, &format!("st-level-{level}"))) }
                        }
                    }
                    (field_error(errors, "log_level"))
                }
            }
            p { button type="submit" { (t(app, "st-save")) } }
        }
        section.box id="devices" {
            h2 { (t(app, "st-section-devices")) }
            @if device_lines.is_empty() {
                p.muted { (t(app, "st-devices-none")) }
            } @else {
                ul { @for line in &device_lines { li { (line) } } }
            }
            p.muted { (t(app, if config.hid.pick_up_pos_devices { "st-devices-hid-auto-on" } else { "st-devices-hid-auto-off" })) }
            p.muted { (t(app, "st-devices-hint")) }
        }
        section.box id="iiko" {
            h2 { (t(app, "st-section-iiko")) }
            p { (t(app, "st-iiko-note")) }
        }
    };
    secured(status, layout(app, Some(session), &t(app, "st-title"), body))
}
