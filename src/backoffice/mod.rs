//! The owner's back office: server-rendered pages under `/admin`, served by `serve` beside
//! `/api/v1` (a chain) and by the till on 127.0.0.1 over its own ledger (a single cafe).
//!
//! Every change goes through the one loyalty engine ([`Op`]): enrolment, identifiers, manual
//! credits and debits, «Сбросить холды», groups and the programme. [`db`] only reads lists and
//! pages and keeps the accounts. Sessions live in memory (a restart logs everyone out); each
//! has a CSRF token that every form carries; maud escapes everything it prints.

mod account;
pub mod auth;
pub mod db;
mod import;
pub mod local;
mod pages;
mod reports;
// The report's facts, read through the store: the till's shift report on the server reads them too.
pub(crate) use reports::read_facts;
pub mod rewards;

/// The pages' style sheet, shared with the till's settings page.
pub(crate) use pages::STYLE;

use crate::domain::LoyaltyError;
use crate::i18n::{I18n, Lang};
use crate::server::api::ServerClock;
use crate::server::store::Store;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub use auth::{Session, Sessions};
/// The largest CSV file the guests' import takes.
pub use import::MAX_UPLOAD as IMPORT_MAX_UPLOAD;

/// Where the back office lives on the server.
pub const PREFIX: &str = "/admin";

/// The back office's state: the store, the clock, the sessions and the failed logins.
pub struct BackOffice {
    pub store: Arc<Store>,
    pub clock: ServerClock,
    pub sessions: Sessions,
    /// On the till: the only Host headers answered (DNS rebinding would otherwise let a web page
    /// the cashier opens talk to the ledger).
    pub allowed_hosts: Option<Vec<String>>,
    /// The programme's key for signed guest and gift QR tokens (the printable QR pages); `None`:
    /// those pages say no key is set.
    pub qr: Option<QrKey>,
    /// Guest files uploaded for import, waiting for the owner's confirmation.
    staged_imports: import::StagedImports,
}

/// The key the tills verify app QR tokens with (`[scan] token_secret`), and how long they take a
/// token to stay valid (`token_max_age_secs`).
#[derive(Clone)]
pub struct QrKey {
    pub secret: Vec<u8>,
    pub max_age_secs: i64,
}

impl QrKey {
    /// A key, or `None` for an empty secret (the tills refuse every token then).
    pub fn new(secret: &str, max_age_secs: i64) -> Option<QrKey> {
        (!secret.is_empty()).then(|| QrKey {
            secret: secret.as_bytes().to_vec(),
            max_age_secs,
        })
    }

    /// The server's key: `LOYALTY_TOKEN_SECRET` (the same secret as the tills' `token_secret`),
    /// tokens valid for `LOYALTY_TOKEN_MAX_AGE_SECS` (600, the tills' default).
    pub fn from_env() -> Option<QrKey> {
        let secret = std::env::var("LOYALTY_TOKEN_SECRET").ok()?;
        let max_age = std::env::var("LOYALTY_TOKEN_MAX_AGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600);
        QrKey::new(&secret, max_age)
    }
}

/// The secret never reaches a log line.
impl std::fmt::Debug for QrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrKey")
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("max_age_secs", &self.max_age_secs)
            .finish()
    }
}

impl BackOffice {
    pub fn new(store: Arc<Store>, clock: ServerClock) -> Arc<BackOffice> {
        BackOffice::with_qr(store, clock, None)
    }

    /// A chain's back office that signs QR tokens with `qr`.
    pub fn with_qr(store: Arc<Store>, clock: ServerClock, qr: Option<QrKey>) -> Arc<BackOffice> {
        Arc::new(BackOffice {
            store,
            clock,
            sessions: Sessions::default(),
            allowed_hosts: None,
            qr,
            staged_imports: import::StagedImports::default(),
        })
    }

    /// The till's back office: answers only to `127.0.0.1:PORT` and `localhost:PORT`, and signs
    /// QR tokens with the till's own key.
    pub fn local(store: Arc<Store>, clock: ServerClock, port: u16, qr: Option<QrKey>) -> Arc<BackOffice> {
        Arc::new(BackOffice {
            store,
            clock,
            sessions: Sessions::default(),
            allowed_hosts: Some(vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")]),
            qr,
            staged_imports: import::StagedImports::default(),
        })
    }
}

/// The back office's routes, to merge beside the API.
pub fn router(back_office: Arc<BackOffice>) -> Router {
    let checked = Arc::clone(&back_office);
    pages::routes()
        .layer(axum::middleware::from_fn(move |request: Request<Body>, next: Next| {
            let back_office = Arc::clone(&checked);
            async move { guard(&back_office, request, next).await }
        }))
        .with_state(back_office)
}

/// The Host check (on the till) and the headers every page gets.
async fn guard(back_office: &BackOffice, request: Request<Body>, next: Next) -> Response {
    if let Some(allowed) = &back_office.allowed_hosts {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !allowed.iter().any(|a| a == host) {
            tracing::warn!("back office: request with a foreign Host header refused");
            return (StatusCode::MISDIRECTED_REQUEST, "wrong Host header").into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // No framing (clickjacking), no sniffing, no inline script except the page's own.
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// The language of the page: the `lt_lang` cookie, Russian by default.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    match auth::cookie(headers, "lt_lang").as_deref() {
        Some("en") => Lang::En,
        _ => Lang::Ru,
    }
}

thread_local! {
    // Parsed once per worker thread: a Fluent bundle is not Sync.
    static RU: I18n = I18n::new(Lang::Ru);
    static EN: I18n = I18n::new(Lang::En);
}

/// The page's translations.
#[derive(Clone, Copy)]
pub struct Tr(pub Lang);

/// Between the Russian and the English text of an audit entry's detail: a control character no
/// name, code or reason can hold (names and reasons are refused with control characters).
const DETAIL_LANGUAGES: char = '\u{1f}';

/// An audit entry's detail in both languages, so that the log reads in the language of whoever
/// reads it, not of whoever made the change: `text` is called once per language.
pub fn in_both_languages(text: impl Fn(Tr) -> String) -> String {
    format!("{}{DETAIL_LANGUAGES}{}", text(Tr(Lang::Ru)), text(Tr(Lang::En)))
}

impl Tr {
    pub fn t(&self, key: &str) -> String {
        match self.0 {
            Lang::Ru => RU.with(|i| i.t(key)),
            Lang::En => EN.with(|i| i.t(key)),
        }
    }

    /// An audit entry's detail in this language ([`in_both_languages`]); a detail written in
    /// one language only (older entries, the till's and the command line's) as it is.
    pub fn detail<'a>(&self, detail: &'a str) -> &'a str {
        match (detail.split_once(DETAIL_LANGUAGES), self.0) {
            (Some((ru, _)), Lang::Ru) => ru,
            (Some((_, en)), Lang::En) => en,
            (None, _) => detail,
        }
    }

    pub fn t_args(&self, key: &str, args: &[(&str, crate::i18n::Arg)]) -> String {
        match self.0 {
            Lang::Ru => RU.with(|i| i.t_args(key, args)),
            Lang::En => EN.with(|i| i.t_args(key, args)),
        }
    }

    /// The reason an engine refusal is shown with.
    pub fn error(&self, error: &LoyaltyError) -> String {
        use crate::domain::IdentifierKind;
        use crate::i18n::Arg;
        match error {
            LoyaltyError::IdentifierTaken(IdentifierKind::Phone) => self.t("bo-err-phone-taken"),
            LoyaltyError::IdentifierTaken(_) => self.t("bo-err-card-taken"),
            LoyaltyError::GroupThresholdClash(name) => {
                self.t_args("bo-err-threshold-clash", &[("group", Arg::Text(name.clone()))])
            }
            LoyaltyError::OverMaximum { max, .. } => self.t_args("bo-err-over-available", &[("max", Arg::Money(*max))]),
            LoyaltyError::NonPositiveAmount => self.t("bo-err-amount"),
            LoyaltyError::OutOfRange(_) => self.t("bo-err-out-of-range"),
            LoyaltyError::BadCode { .. } => self.t("bo-err-bad-code"),
            LoyaltyError::UnknownCode => self.t("bo-err-not-found"),
            LoyaltyError::OperationIdConflict => self.t("bo-err-op-conflict"),
            LoyaltyError::GuestBlocked => self.t("bo-err-blocked"),
            LoyaltyError::EnrolmentOff => self.t("bo-err-enrolment-off"),
            LoyaltyError::AccountNameTaken(name) => {
                self.t_args("bo-err-account-name-taken", &[("name", Arg::Text(name.clone()))])
            }
            LoyaltyError::InvalidReward(problem) => self.t(rewards::problem_key(*problem)),
            _ => self.t("bo-err-storage"),
        }
    }
}
