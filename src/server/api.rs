//! The versioned REST API: JSON in and out, one handler per operation, every error a JSON body
//! with a reason. The bodies are the wire types of [`crate::wire`]; amounts are integers in
//! kopecks, at most 2^53 − 1 so that every JSON reader keeps them exact.

use super::store::{Caller, Store, token_hash, valid_name};
use crate::domain::{CheckInfo, LoyaltyError, ReturnPart, UnixSeconds};
use crate::loyalty::engine::{Answer, Op};
use crate::mask::mask_code;
use crate::money::Kopecks;
use crate::wire::{self, Amount, ErrorBody, MAX_GIFT_CODES, MAX_OP_ID_LEN};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub use crate::wire::MAX_AMOUNT;

/// Requests are small; anything bigger is refused before it is read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much of a too-large body is read and dropped before answering.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;
/// How often a till's «last seen» is written (seconds): every request reads its token (so a
/// revocation on any server of the database is refused at once), but writes its last use only
/// when the one noted is older than this.
const TOUCH_EVERY: UnixSeconds = 30;

/// Where "now" comes from: the system clock, or a test's hand.
pub type ServerClock = Arc<dyn Fn() -> UnixSeconds + Send + Sync>;

pub fn system_clock() -> ServerClock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    })
}

/// How far ahead of the server's clock a check time may be (a till's clock running fast).
pub const CHECK_TIME_AHEAD_SECS: i64 = 300;
/// How old a check time the server books at by default (`--max-check-age-hours`).
pub const DEFAULT_MAX_CHECK_AGE_SECS: i64 = 72 * 3_600;

#[derive(Clone)]
pub struct App {
    pub store: Arc<Store>,
    pub clock: ServerClock,
    /// A payment's `check_time` older than this is booked at the server's time instead.
    pub max_check_age_secs: i64,
}

impl App {
    pub fn new(store: Arc<Store>, clock: ServerClock) -> App {
        App {
            store,
            clock,
            max_check_age_secs: DEFAULT_MAX_CHECK_AGE_SECS,
        }
    }

    fn now(&self) -> UnixSeconds {
        (self.clock)()
    }

    /// The time a payment without a hold is booked at: the check's own time within the bounds,
    /// else now.
    fn booking_time(&self, check_time: Option<UnixSeconds>) -> (UnixSeconds, wire::CheckTimeUse) {
        let now = self.now();
        match check_time {
            None => (now, wire::CheckTimeUse::Absent),
            Some(at) if at > now + CHECK_TIME_AHEAD_SECS => (now, wire::CheckTimeUse::InFuture),
            Some(at) if at < now - self.max_check_age_secs => (now, wire::CheckTimeUse::TooOld),
            Some(at) => (at.min(now), wire::CheckTimeUse::Used),
        }
    }
}

/// A payment's receipt with the time it was booked at and why; logged when out of bounds.
fn paid(
    caller: &Caller,
    op: &str,
    receipt: crate::domain::PaymentReceipt,
    (booked_at, check_time): (UnixSeconds, wire::CheckTimeUse),
) -> ApiResult<wire::PaymentReceipt> {
    if matches!(check_time, wire::CheckTimeUse::TooOld | wire::CheckTimeUse::InFuture) {
        tracing::warn!(till = %caller.till, op = %op, ?check_time, booked_at,
            "a payment's check time is out of bounds: booked at the server's time");
    }
    let mut answer = wire::PaymentReceipt::from(receipt);
    answer.booked_at = Some(booked_at);
    answer.check_time = Some(check_time);
    Ok(axum::Json(answer))
}

/// The routes, each written down as it is added, so that a test holds the list against the
/// OpenAPI document.
pub struct Routes {
    router: Router<App>,
    served: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Routes {
        Routes {
            router: Router::new(),
            served: Vec::new(),
        }
    }

    fn get<H: Handler<T, App>, T: 'static>(mut self, path: &'static str, handler: H) -> Routes {
        self.router = self.router.route(path, axum::routing::get(handler));
        self.served.push((Method::GET, path));
        self
    }

    fn post<H: Handler<T, App>, T: 'static>(mut self, path: &'static str, handler: H) -> Routes {
        self.router = self.router.route(path, axum::routing::post(handler));
        self.served.push((Method::POST, path));
        self
    }

    /// Every (method, path) the router serves.
    pub fn served(&self) -> &[(Method, &'static str)] {
        &self.served
    }
}

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/openapi.json", openapi)
        .get("/api/v1/health", health)
        .get("/api/v1/till", till)
        .post("/api/v1/identify", identify)
        .get("/api/v1/enrolment", enrolment)
        .post("/api/v1/guests", enrol)
        .get("/api/v1/guests/{guest}", guest_card)
        .post("/api/v1/guests/{guest}/calculate", calculate)
        .get("/api/v1/guests/{guest}/holds", open_holds)
        .post("/api/v1/guests/{guest}/holds/reset", reset_holds)
        .get("/api/v1/guests/{guest}/history", history)
        .post("/api/v1/holds", hold)
        .post("/api/v1/holds/{hold}/void", void)
        .post("/api/v1/payments", commit)
        .post("/api/v1/shared-holds", shared_hold)
        .post("/api/v1/shared-payments", shared_commit)
        .post("/api/v1/accruals", accrue)
        .post("/api/v1/offline-payments", offline_payment)
        .post("/api/v1/refunds", refund)
        .post("/api/v1/refunds/preview", refund_preview)
        .post("/api/v1/checks/search", search_checks)
        .get("/api/v1/shift-report", shift_report)
}

pub fn router(app: App) -> Router {
    routes()
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(errors_as_json))
        .with_state(app)
}

// ----- Errors -----

/// An error answer: status, a machine-readable code, a reason for people, and for ledger errors
/// the error itself so that a till can show the same message as with the embedded ledger.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    reason: String,
    ledger: Option<LoyaltyError>,
}

impl ApiError {
    fn bad(code: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, reason)
    }

    fn new(status: StatusCode, code: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            reason: reason.into(),
            ledger: None,
        }
    }

    fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a till token is required: Authorization: Bearer <token>",
        )
    }

    fn invalid_amount(field: &str) -> ApiError {
        ApiError::bad(
            "invalid_amount",
            format!("{field}: amounts are whole kopecks from 0 to {MAX_AMOUNT}"),
        )
    }
}

impl From<LoyaltyError> for ApiError {
    fn from(error: LoyaltyError) -> ApiError {
        let (status, code) = match &error {
            LoyaltyError::UnknownCode => (StatusCode::NOT_FOUND, "unknown_guest"),
            LoyaltyError::UnknownHold => (StatusCode::NOT_FOUND, "unknown_hold"),
            LoyaltyError::UnknownPayment => (StatusCode::NOT_FOUND, "unknown_payment"),
            LoyaltyError::BadCode { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "bad_code"),
            LoyaltyError::GiftAlreadyUsed => (StatusCode::CONFLICT, "gift_already_used"),
            LoyaltyError::DailyOperationsLimit { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "daily_operations_limit"),
            LoyaltyError::OverMaximum { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "over_maximum"),
            LoyaltyError::NotAMultipleOfStep { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_multiple_of_step"),
            LoyaltyError::NonPositiveAmount => (StatusCode::UNPROCESSABLE_ENTITY, "non_positive_amount"),
            LoyaltyError::HoldNotOpen { .. } => (StatusCode::CONFLICT, "hold_not_open"),
            LoyaltyError::CommitOverHold { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "commit_over_hold"),
            LoyaltyError::RefundOverPayment { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "refund_over_payment"),
            LoyaltyError::LineOverReturn { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "line_over_return"),
            LoyaltyError::OperationIdConflict => (StatusCode::CONFLICT, "operation_id_conflict"),
            LoyaltyError::OutOfRange(_) => (StatusCode::UNPROCESSABLE_ENTITY, "out_of_range"),
            LoyaltyError::IdentifierTaken(_) => (StatusCode::CONFLICT, "identifier_taken"),
            LoyaltyError::GroupThresholdClash(_) => (StatusCode::CONFLICT, "group_threshold_clash"),
            LoyaltyError::GuestBlocked => (StatusCode::UNPROCESSABLE_ENTITY, "guest_blocked"),
            LoyaltyError::SameAccountOnCheck => (StatusCode::UNPROCESSABLE_ENTITY, "same_account_on_check"),
            LoyaltyError::CardRefused { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "card_refused"),
            LoyaltyError::EnrolmentOff => (StatusCode::FORBIDDEN, "enrolment_off"),
            LoyaltyError::AccountNameTaken(_) => (StatusCode::CONFLICT, "account_name_taken"),
            LoyaltyError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            LoyaltyError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
            // Made by a till about its server; the server never returns it.
            LoyaltyError::ServerAway(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            // Made by the back office's definitions, never by a till's call.
            LoyaltyError::InvalidReward(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_reward"),
        };
        if status.is_server_error() {
            // The store's own words (a database's error text, a path) stay in the log.
            tracing::error!(%error, "request failed");
            return ApiError::new(status, code, "the server could not complete the request; try again");
        }
        ApiError {
            status,
            code,
            reason: error.to_string(),
            ledger: Some(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            reason: self.reason,
            ledger: self.ledger,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

type ApiResult<T> = Result<axum::Json<T>, ApiError>;

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /api/v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take this method; see /api/v1/openapi.json",
    )
}

/// The last guard: an error answer made outside our handlers (an extractor's or the framework's
/// plain-text refusal) becomes a JSON body too. Its text is not passed on, only its status.
async fn errors_as_json(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "server_error",
        _ => "bad_request",
    };
    let reason = status.canonical_reason().unwrap_or("refused").to_lowercase();
    ApiError::new(status, code, reason).into_response()
}

// ----- Input -----

/// The check of a request, its amount and gift codes checked.
fn check_info(check: &wire::Check) -> Result<CheckInfo, ApiError> {
    if check.gift_codes.len() > MAX_GIFT_CODES {
        return Err(ApiError::bad(
            "too_many_gift_codes",
            format!("at most {MAX_GIFT_CODES} gift codes"),
        ));
    }
    for code in &check.gift_codes {
        plain_text(code, "gift code")?;
    }
    if check
        .gift_codes
        .iter()
        .any(|c| c.is_empty() || c.chars().count() > crate::domain::MAX_CODE_LEN)
    {
        return Err(ApiError::bad(
            "bad_gift_code",
            format!("gift codes are 1 to {} characters", crate::domain::MAX_CODE_LEN),
        ));
    }
    if check.lines.len() > crate::domain::MAX_CHECK_LINES {
        return Err(ApiError::bad(
            "too_many_lines",
            format!("at most {} lines", crate::domain::MAX_CHECK_LINES),
        ));
    }
    let mut lines = Vec::with_capacity(check.lines.len());
    for line in &check.lines {
        plain_text(&line.name, "line name")?;
        if line.quantity <= 0 || line.returned != 0 {
            return Err(ApiError::bad(
                "bad_line",
                "a line's quantity is a whole number from 1; returned is not sent with a check",
            ));
        }
        lines.push(
            line.to_domain()
                .ok_or_else(|| ApiError::invalid_amount("check.lines.price"))?,
        );
    }
    Ok(CheckInfo {
        subtotal: kopecks(&check.subtotal, "check.subtotal")?,
        gift_codes: check.gift_codes.clone(),
        lines,
    })
}

fn kopecks(amount: &Amount, field: &str) -> Result<Kopecks, ApiError> {
    amount.kopecks().ok_or_else(|| ApiError::invalid_amount(field))
}

/// Codes are printable text: a control character (NUL included, which PostgreSQL cannot store)
/// is refused here, before any store sees it.
fn plain_text(text: &str, what: &str) -> Result<(), ApiError> {
    if text.chars().any(char::is_control) {
        return Err(ApiError::bad(
            "control_character",
            format!("the {what} contains a control character"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
pub(super) struct HistoryQuery {
    limit: Option<usize>,
}

#[derive(Deserialize)]
pub(super) struct ShiftReportQuery {
    day: Option<String>,
}

/// Reads a JSON body (declared `application/json`, at most [`MAX_BODY_BYTES`]) and parses it as
/// `T`. A body that is too large is read on and dropped (up to [`DRAIN_BYTES`]) before the 413,
/// so that the client, still sending, gets the answer instead of a reset connection.
async fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
    use http_body_util::BodyExt;
    let declared_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if !declared_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON: Content-Type: application/json",
        ));
    }
    let mut body = body;
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::bad("bad_body", "the body could not be read"))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                bytes.extend_from_slice(&data);
            } else if seen > DRAIN_BYTES {
                break;
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| refused_body(&e))
}

/// Why a body was not a request, without quoting it: serde's messages can repeat a value
/// (a phone number sent as a number, say), and values are never echoed.
fn refused_body(error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let message = error.to_string();
    let at = format!("line {}, column {}", error.line(), error.column());
    // serde_json refuses a number beyond f64's range while parsing, before any type sees it.
    if message.starts_with("number out of range") {
        return ApiError::bad(
            "invalid_amount",
            format!("a number is out of range ({at}): amounts are whole kopecks from 0 to {MAX_AMOUNT}"),
        );
    }
    let reason = match error.classify() {
        Category::Syntax | Category::Io => format!("the body is not JSON ({at})"),
        Category::Eof => "the body ends too soon".to_string(),
        Category::Data if message.starts_with("missing field") => {
            let field = message.split(" at line").next().unwrap_or("missing field");
            format!("{field} ({at})")
        }
        Category::Data if message.starts_with("unknown field") => {
            format!("a field this request does not have ({at})")
        }
        Category::Data => format!("a value is of the wrong type or not one of the allowed ({at})"),
    };
    ApiError::bad("malformed_json", format!("the body is not a valid request: {reason}"))
}

fn op_id(id: &str) -> Result<&str, ApiError> {
    let ok =
        !id.is_empty() && id.len() <= MAX_OP_ID_LEN && id.chars().all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
    if ok {
        Ok(id)
    } else {
        Err(ApiError::bad(
            "bad_op_id",
            format!("op_id must be 1 to {MAX_OP_ID_LEN} printable ASCII characters without '/' or ':'"),
        ))
    }
}

/// A positive id from the path; a segment that is not (a bad escape included) is a 400.
fn path_id(path: Result<Path<String>, PathRejection>, what: &'static str) -> Result<i64, ApiError> {
    path.ok()
        .and_then(|Path(text)| text.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad("bad_id", format!("the {what} id must be a positive integer")))
}

/// The till behind the `Authorization: Bearer` token; 401 without a known one.
async fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(ApiError::unauthorized)?;
    let hash = token_hash(token);
    // Kept in memory only while the database tells this server of every change to the tokens.
    let (caller, last_seen) = app.store.caller_for(&hash).await?.ok_or_else(ApiError::unauthorized)?;
    let now = app.now();
    // «Last seen» on the back office's till list: a write per till every TOUCH_EVERY seconds.
    if last_seen.is_none_or(|at| now - at >= TOUCH_EVERY || at > now)
        && let Err(error) = app.store.touch_token(&hash, now).await
    {
        tracing::warn!(%error, till = %caller.till, "the token's last use could not be noted");
    }
    Ok(caller)
}

// ----- Handlers -----
//
// Each handler's doc comment is its summary in the OpenAPI document; every operation also
// answers errors as `ErrorBody` (added to the document in one place, `openapi.rs`).

/// This document
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "server",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json")))]
pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::document_json(),
    )
        .into_response()
}

/// Liveness and the server's clock
#[utoipa::path(get, path = "/api/v1/health", tag = "server",
    responses((status = 200, description = "ok", body = wire::Health)))]
pub(super) async fn health(State(app): State<App>) -> ApiResult<wire::Health> {
    Ok(axum::Json(wire::Health {
        status: "ok".to_string(),
        now: app.now(),
    }))
}

/// The calling till and the server's clock: the tills' cheap probe (401 for a token the server refuses)
#[utoipa::path(get, path = "/api/v1/till", tag = "server",
    responses((status = 200, description = "the till", body = wire::TillAnswer)))]
pub(super) async fn till(State(app): State<App>, headers: HeaderMap) -> ApiResult<wire::TillAnswer> {
    let caller = caller(&app, &headers).await?;
    Ok(axum::Json(wire::TillAnswer {
        org: caller.org,
        till: caller.till,
        now: app.now(),
    }))
}

/// Resolve a scanned or typed code (card, phone, app QR, gift code) to a guest card
#[utoipa::path(post, path = "/api/v1/identify", tag = "guests", request_body = wire::IdentifyRequest,
    responses((status = 200, description = "the guest, and the gift for a gift code", body = wire::Identification)))]
pub(super) async fn identify(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<wire::Identification> {
    let caller = caller(&app, &headers).await?;
    let request: wire::IdentifyRequest = json_body(&headers, body).await?;
    plain_text(&request.payload, "code")?;
    let result = app
        .store
        .identify(&caller, &request.payload, request.kind.into(), app.now())
        .await;
    if let Err(error) = &result {
        tracing::info!(till = %caller.till, code = %mask_code(&request.payload), %error, "identify refused");
    }
    Ok(axum::Json(result?.into()))
}

/// Whether cashiers may enrol guests at the till, and the welcome bonus
#[utoipa::path(get, path = "/api/v1/enrolment", tag = "guests",
    responses((status = 200, description = "the programme's enrolment settings", body = wire::EnrolmentAnswer)))]
pub(super) async fn enrolment(State(app): State<App>, headers: HeaderMap) -> ApiResult<wire::EnrolmentAnswer> {
    let caller = caller(&app, &headers).await?;
    let program = app.store.run(&caller, Op::Program, app.now()).await?.into_program()?;
    Ok(axum::Json(wire::EnrolmentAnswer {
        allowed: program.till_enrolment,
        welcome_bonus: program.welcome_bonus.into(),
    }))
}

/// Enrol a guest whose code was not found: the code becomes their card, the welcome bonus is credited
#[utoipa::path(post, path = "/api/v1/guests", tag = "guests", request_body = wire::EnrolRequest,
    responses((status = 200, description = "the new guest", body = wire::Identification)))]
pub(super) async fn enrol(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<wire::Identification> {
    let caller = caller(&app, &headers).await?;
    let request: wire::EnrolRequest = json_body(&headers, body).await?;
    let op = op_id(&request.op_id)?;
    for (text, what) in [
        (&request.code, "code"),
        (&request.phone, "phone"),
        (&request.name, "name"),
    ] {
        plain_text(text, what)?;
    }
    let enrol = Op::EnrolAtTill {
        op_key: caller.op(op),
        name: request.name.clone(),
        phone: request.phone.clone(),
        code: request.code.clone(),
        kind: request.kind.into(),
    };
    let entry = crate::backoffice::db::AuditEntry {
        at: app.now(),
        actor: format!("till {}", caller.till),
        action: "enrol".to_string(),
        guest_id: None,
        detail: format!(
            "{}, {}",
            crate::mask::mask_phone(&request.phone),
            mask_code(&request.code)
        ),
        reason: String::new(),
    };
    let logged = crate::backoffice::db::Audit {
        org: caller.org.clone(),
        // Keyed by the till's op id: a repeat that learns a lost answer is not logged again.
        op_key: Some(caller.op(op)),
        // The new guest's id is the enrolment's answer; the row is in the enrolment's transaction.
        entry: Box::new(move |answer| crate::backoffice::db::AuditEntry {
            guest_id: match answer {
                Answer::Id(id) => Some(*id),
                _ => None,
            },
            ..entry.clone()
        }),
    };
    let result = app
        .store
        .run_audited(&caller, enrol, app.now(), logged)
        .await
        .and_then(Answer::into_id);
    let guest = match result {
        Ok(guest) => guest,
        Err(error) => {
            tracing::info!(till = %caller.till, code = %mask_code(&request.code), %error, "enrolment refused");
            return Err(error.into());
        }
    };
    tracing::info!(till = %caller.till, guest, code = %mask_code(&request.code), "guest enrolled at the till");
    let card = app.store.guest_card(&caller, guest, app.now()).await?;
    Ok(axum::Json(crate::domain::Identification { card, gift: None }.into()))
}

/// Guest card: balance, available, group, stamps, promotions, and the gifts waiting (codes masked)
#[utoipa::path(get, path = "/api/v1/guests/{guest}", tag = "guests",
    params(("guest" = i64, Path, description = "the guest's id, a positive integer")),
    responses((status = 200, description = "the card", body = wire::CardAnswer)))]
pub(super) async fn guest_card(
    State(app): State<App>,
    headers: HeaderMap,
    guest: Result<Path<String>, PathRejection>,
) -> ApiResult<wire::CardAnswer> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(guest, "guest")?;
    let card = app.store.guest_card(&caller, guest, app.now()).await?;
    let gifts = app.store.gifts(&caller, guest, app.now()).await?;
    Ok(axum::Json(wire::CardAnswer {
        card: card.into(),
        gifts: gifts.into_iter().map(Into::into).collect(),
    }))
}

/// The most the guest may spend on this check, every limit, and the accrual preview
#[utoipa::path(post, path = "/api/v1/guests/{guest}/calculate", tag = "payments",
    params(("guest" = i64, Path, description = "the guest's id")),
    request_body = wire::CalculateRequest,
    responses((status = 200, description = "the quote", body = wire::Quote)))]
pub(super) async fn calculate(
    State(app): State<App>,
    headers: HeaderMap,
    guest: Result<Path<String>, PathRejection>,
    body: Body,
) -> ApiResult<wire::Quote> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(guest, "guest")?;
    let request: wire::CalculateRequest = json_body(&headers, body).await?;
    let check = check_info(&request.check)?;
    let quote = app.store.calculate(&caller, guest, &check, app.now()).await?;
    Ok(axum::Json(quote.into()))
}

/// Reserve bonuses for a payment (first phase); expires after the programme's hold time
#[utoipa::path(post, path = "/api/v1/holds", tag = "payments", request_body = wire::HoldRequest,
    responses((status = 200, description = "the hold", body = wire::HoldReceipt)))]
pub(super) async fn hold(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<wire::HoldReceipt> {
    let caller = caller(&app, &headers).await?;
    let request: wire::HoldRequest = json_body(&headers, body).await?;
    let op = op_id(&request.op_id)?;
    let amount = kopecks(&request.amount, "amount")?;
    let check = check_info(&request.check)?;
    let receipt = app
        .store
        .hold(&caller, op, request.guest_id, amount, &check, app.now())
        .await?;
    Ok(axum::Json(receipt.into()))
}

/// Close a paid check: commit the hold (possibly for less), accrue on the rest, redeem gifts, add stamps
#[utoipa::path(post, path = "/api/v1/payments", tag = "payments", request_body = wire::PaymentRequest,
    responses((status = 200, description = "the receipt", body = wire::PaymentReceipt)))]
pub(super) async fn commit(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<wire::PaymentReceipt> {
    let caller = caller(&app, &headers).await?;
    let request: wire::PaymentRequest = json_body(&headers, body).await?;
    let op = op_id(&request.op_id)?;
    let spent = kopecks(&request.spent, "spent")?;
    let check = check_info(&request.check)?;
    // A payment on a hold is booked when it is committed: the hold is the server's own record
    // of the moment. A payment without one (an accrual, possibly queued offline) at its check time.
    let booking = match request.hold_id {
        Some(_) => (app.now(), wire::CheckTimeUse::OnHold),
        None => app.booking_time(request.check_time),
    };
    let receipt = app
        .store
        .commit(&caller, op, request.guest_id, request.hold_id, spent, &check, booking.0)
        .await?;
    paid(&caller, op, receipt, booking)
}

/// The most cards one check is paid from: far above a real table, low enough that one request
/// cannot lock a crowd of guests.
const MAX_CARDS: usize = 16;

fn card_count(count: usize) -> Result<(), ApiError> {
    if count == 0 || count > MAX_CARDS {
        return Err(ApiError::bad(
            "bad_card_count",
            format!("one check is paid from 1 to {MAX_CARDS} cards"),
        ));
    }
    Ok(())
}

/// Hold bonuses on several accounts for one check (cards presented one after another), all or none
#[utoipa::path(post, path = "/api/v1/shared-holds", tag = "payments", request_body = wire::SharedHoldRequest,
    responses((status = 200, description = "each account's hold", body = wire::SharedHoldAnswer)))]
pub(super) async fn shared_hold(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<wire::SharedHoldAnswer> {
    let caller = caller(&app, &headers).await?;
    let request: wire::SharedHoldRequest = json_body(&headers, body).await?;
    let op = op_id(&request.op_id)?;
    card_count(request.shares.len())?;
    let shares = request
        .shares
        .iter()
        .map(|share| {
            Ok(crate::domain::CardShare {
                guest: share.guest_id,
                amount: kopecks(&share.amount, "amount")?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let hold = Op::HoldShared {
        op_key: caller.op(op),
        owner: request.owner_id,
        shares,
        check: check_info(&request.check)?,
    };
    let holds = app
        .store
        .run(&caller, hold, app.now())
        .await
        .and_then(Answer::into_shared_holds)?;
    Ok(axum::Json(wire::SharedHoldAnswer {
        holds: holds.into_iter().map(|h| h.map(Into::into)).collect(),
    }))
}

/// Close a check paid from several accounts, all or nothing; the accrual goes to the owner
#[utoipa::path(post, path = "/api/v1/shared-payments", tag = "payments", request_body = wire::SharedPaymentRequest,
    responses((status = 200, description = "each account's receipt", body = wire::SharedPaymentAnswer)))]
pub(super) async fn shared_commit(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<wire::SharedPaymentAnswer> {
    let caller = caller(&app, &headers).await?;
    let request: wire::SharedPaymentRequest = json_body(&headers, body).await?;
    let op = op_id(&request.op_id)?;
    card_count(request.payments.len())?;
    let payments = request
        .payments
        .iter()
        .map(|payment| {
            Ok(crate::domain::CardPayment {
                guest: payment.guest_id,
                hold: payment.hold_id,
                spent: kopecks(&payment.spent, "spent")?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let commit = Op::CommitShared {
        op_key: caller.op(op),
        owner: request.owner_id,
        payments,
        check: check_info(&request.check)?,
    };
    // Paid on holds: booked when committed, as a one-card payment on a hold.
    let receipts = app
        .store
        .run(&caller, commit, app.now())
        .await
        .and_then(Answer::into_payments)?;
    Ok(axum::Json(wire::SharedPaymentAnswer {
        receipts: receipts.into_iter().map(Into::into).collect(),
    }))
}

/// Close a paid check without spending bonuses: the accrual (what an offline till sends later)
#[utoipa::path(post, path = "/api/v1/accruals", tag = "payments", request_body = wire::AccrualRequest,
    responses((status = 200, description = "the receipt", body = wire::PaymentReceipt)))]
pub(super) async fn accrue(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<wire::PaymentReceipt> {
    let caller = caller(&app, &headers).await?;
    let request: wire::AccrualRequest = json_body(&headers, body).await?;
    let op = op_id(&request.op_id)?;
    let check = check_info(&request.check)?;
    let booking = app.booking_time(request.check_time);
    let receipt = app
        .store
        .commit(&caller, op, request.guest_id, None, Kopecks::ZERO, &check, booking.0)
        .await?;
    paid(&caller, op, receipt, booking)
}

/// A check a till closed with bonuses while the server was away (the owner's opt-in, capped by
/// the till)
///
/// The guest is debited what they still have, at most the amount due: `spent` in the receipt may
/// be less than asked.
#[utoipa::path(post, path = "/api/v1/offline-payments", tag = "payments", request_body = wire::OfflinePaymentRequest,
    responses((status = 200, description = "the receipt", body = wire::PaymentReceipt)))]
pub(super) async fn offline_payment(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<wire::PaymentReceipt> {
    let caller = caller(&app, &headers).await?;
    let request: wire::OfflinePaymentRequest = json_body(&headers, body).await?;
    let op = op_id(&request.op_id)?;
    let spent = kopecks(&request.spent, "spent")?;
    let check = check_info(&request.check)?;
    let booking = app.booking_time(request.check_time);
    let receipt = app
        .store
        .commit_offline(&caller, op, request.guest_id, spent, &check, booking.0)
        .await?;
    if receipt.spent < spent {
        tracing::warn!(till = %caller.till, op = %op, requested = spent.0, debited = receipt.spent.0,
            "an offline payment found fewer bonuses than it spent");
    }
    paid(&caller, op, receipt, booking)
}

/// Release a hold; voiding a voided or expired hold succeeds, a committed one is refused
#[utoipa::path(post, path = "/api/v1/holds/{hold}/void", tag = "payments",
    params(("hold" = i64, Path, description = "the hold's id")),
    request_body = wire::VoidRequest,
    responses((status = 200, description = "released", body = wire::VoidAnswer)))]
pub(super) async fn void(
    State(app): State<App>,
    headers: HeaderMap,
    hold: Result<Path<String>, PathRejection>,
    body: Body,
) -> ApiResult<wire::VoidAnswer> {
    let caller = caller(&app, &headers).await?;
    let hold = path_id(hold, "hold")?;
    let request: wire::VoidRequest = json_body(&headers, body).await?;
    let op = op_id(&request.op_id)?;
    app.store.void(&caller, op, hold, app.now()).await?;
    Ok(axum::Json(wire::VoidAnswer { voided: hold }))
}

/// Return part or all of a paid check: bonuses spent on the returned part come back, its accrual
/// is taken back
#[utoipa::path(post, path = "/api/v1/refunds", tag = "payments", request_body = wire::RefundRequest,
    responses((status = 200, description = "the refund", body = wire::RefundReceipt)))]
pub(super) async fn refund(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<wire::RefundReceipt> {
    let caller = caller(&app, &headers).await?;
    let request: wire::RefundRequest = json_body(&headers, body).await?;
    let op = op_id(&request.op_id)?;
    let (payment, part) = returned_part(
        &caller,
        &request.payment_op_id,
        request.payment_till.as_deref(),
        request.amount.as_ref(),
        request.lines.as_deref(),
    )?;
    let receipt = app.store.refund(&caller, op, &payment, part, app.now()).await?;
    Ok(axum::Json(receipt.into()))
}

/// What a return of part or all of a paid check would change; nothing is written
#[utoipa::path(post, path = "/api/v1/refunds/preview", tag = "payments", request_body = wire::RefundPreviewRequest,
    responses((status = 200, description = "what the refund would do", body = wire::RefundReceipt)))]
pub(super) async fn refund_preview(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<wire::RefundReceipt> {
    let caller = caller(&app, &headers).await?;
    let request: wire::RefundPreviewRequest = json_body(&headers, body).await?;
    let (payment, part) = returned_part(
        &caller,
        &request.payment_op_id,
        request.payment_till.as_deref(),
        request.amount.as_ref(),
        request.lines.as_deref(),
    )?;
    let receipt = app.store.refund_preview(&caller, &payment, part, app.now()).await?;
    Ok(axum::Json(receipt.into()))
}

/// The check a return names (its payment's operation key, from the till that took it: the caller
/// by default) and what it gives back (an amount, lines, or all that is left), checked.
fn returned_part(
    caller: &Caller,
    payment_op_id: &str,
    payment_till: Option<&str>,
    amount: Option<&Amount>,
    lines: Option<&[wire::LineReturn]>,
) -> Result<(String, ReturnPart), ApiError> {
    let payment_op = op_id(payment_op_id)?;
    let till = payment_till.unwrap_or(&caller.till);
    if !valid_name(till) {
        return Err(ApiError::bad("bad_till", "payment_till is not a till name"));
    }
    let amount = amount.map(|amount| kopecks(amount, "amount")).transpose()?;
    if amount.is_some_and(|a| a <= Kopecks::ZERO) {
        return Err(LoyaltyError::NonPositiveAmount.into());
    }
    let part = match (amount, lines) {
        (Some(_), Some(_)) => return Err(ApiError::bad("bad_return", "give an amount or lines, not both")),
        (_, Some([])) => return Err(ApiError::bad("bad_return", "lines: at least one line")),
        (_, Some(lines)) if lines.len() > crate::domain::MAX_CHECK_LINES => {
            return Err(ApiError::bad("bad_return", "lines: too many"));
        }
        (_, Some(lines)) => ReturnPart::Lines(
            lines
                .iter()
                .map(|l| crate::domain::LineReturn {
                    line: l.line,
                    quantity: l.quantity,
                })
                .collect(),
        ),
        (amount, None) => ReturnPart::from(amount),
    };
    Ok((caller.op_of(till, payment_op), part))
}

/// The calling till's closed checks: today's, one by its number, or one guest's (by card code,
/// app QR or phone, looked up without counting a visit); newest first, at most 50
#[utoipa::path(post, path = "/api/v1/checks/search", tag = "payments", request_body = wire::CheckSearch,
    responses((status = 200, description = "checks", body = Vec<wire::CheckSummary>)))]
pub(super) async fn search_checks(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Vec<wire::CheckSummary>> {
    let caller = caller(&app, &headers).await?;
    let request: wire::CheckSearch = json_body(&headers, body).await?;
    let filter = crate::domain::CheckFilter {
        today: request.today,
        number: request.number,
        guest_code: request.guest_code,
        op_prefix: None,
    };
    let checks = app.store.checks(&caller, filter, app.now()).await?;
    Ok(axum::Json(checks.into_iter().map(Into::into).collect()))
}

/// The calling till's shift report for a local day of the programme's zone (today's up to now by
/// default): its checks with a guest, bonuses spent and accrued, gifts redeemed on its checks,
/// its returns and the guests enrolled at it; never another till's
#[utoipa::path(get, path = "/api/v1/shift-report", tag = "payments",
    params(("day" = Option<String>, Query, description = "the local day, YYYY-MM-DD (default today); not after today")),
    responses((status = 200, description = "the till's figures", body = wire::ShiftReportAnswer)))]
pub(super) async fn shift_report(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<ShiftReportQuery>, QueryRejection>,
) -> ApiResult<wire::ShiftReportAnswer> {
    use crate::loyalty::report::{self, Figures, Source};
    let caller = caller(&app, &headers).await?;
    let now = app.now();
    let program = app.store.run(&caller, Op::Program, now).await?.into_program()?;
    let offset = program.utc_offset_minutes;
    let today = report::day_of(now, offset);
    let bad_day = || ApiError::bad("bad_day", "day must be a date YYYY-MM-DD, not after today");
    let day = match query {
        Ok(Query(ShiftReportQuery { day: None })) => today,
        Ok(Query(ShiftReportQuery { day: Some(text) })) => parse_day(&text).ok_or_else(bad_day)?,
        Err(_) => return Err(bad_day()),
    };
    if day > today {
        return Err(bad_day());
    }
    let since = report::day_start(day, offset);
    // Exclusive: what is booked in this very second counts today.
    let until = report::day_start(day + 1, offset).min(now + 1);
    // The organisation's facts, through the statements the back office's report reads; this
    // till's share is picked by the source each fact names (the till in its operation key, the
    // till in the enrolment's actor), so the two reports add up the same facts the same way.
    let facts = crate::backoffice::read_facts(&app.store, &caller.org, since, until, offset).await?;
    let this_till = Source::Till(caller.till.clone());
    let mut sum = Figures::default();
    for ((_, source), figures) in report::per_day_and_source(&facts) {
        if source == this_till {
            sum.add(&figures);
        }
    }
    Ok(axum::Json(wire::ShiftReportAnswer {
        till: caller.till,
        day: date_of(day),
        since,
        until: until.min(now).max(since),
        utc_offset_minutes: offset,
        checks: sum.checks,
        revenue: sum.revenue.0,
        spent: sum.spent.0,
        accrued: sum.accrued.0,
        gifts_redeemed: sum.gifts_redeemed,
        returns: sum.returns,
        returned: sum.returned.0,
        spend_returned: sum.spend_returned.0,
        accrual_taken: sum.accrual_taken.0,
        new_guests: sum.new_guests,
    }))
}

/// A local day (days since 1970-01-01) from `YYYY-MM-DD`.
fn parse_day(text: &str) -> Option<i64> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .map(|d| d.signed_duration_since(epoch).num_days())
}

/// `YYYY-MM-DD` of a local day.
fn date_of(day: i64) -> String {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(day)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The guest's open holds
#[utoipa::path(get, path = "/api/v1/guests/{guest}/holds", tag = "guests",
    params(("guest" = i64, Path, description = "the guest's id")),
    responses((status = 200, description = "holds", body = Vec<wire::HoldReceipt>)))]
pub(super) async fn open_holds(
    State(app): State<App>,
    headers: HeaderMap,
    guest: Result<Path<String>, PathRejection>,
) -> ApiResult<Vec<wire::HoldReceipt>> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(guest, "guest")?;
    let holds = app.store.open_holds(&caller, guest, app.now()).await?;
    Ok(axum::Json(holds.into_iter().map(Into::into).collect()))
}

/// Void every open hold of the guest
#[utoipa::path(post, path = "/api/v1/guests/{guest}/holds/reset", tag = "guests",
    params(("guest" = i64, Path, description = "the guest's id")),
    responses((status = 200, description = "how many holds were released", body = wire::ResetAnswer)))]
pub(super) async fn reset_holds(
    State(app): State<App>,
    headers: HeaderMap,
    guest: Result<Path<String>, PathRejection>,
) -> ApiResult<wire::ResetAnswer> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(guest, "guest")?;
    let voided = app.store.reset_holds(&caller, guest, app.now()).await?;
    Ok(axum::Json(wire::ResetAnswer { voided: voided as u64 }))
}

/// The guest's operations, newest first
#[utoipa::path(get, path = "/api/v1/guests/{guest}/history", tag = "guests",
    params(
        ("guest" = i64, Path, description = "the guest's id"),
        ("limit" = Option<u32>, Query, description = "at most this many lines (default 50, at most 500)"),
    ),
    responses((status = 200, description = "history", body = Vec<wire::HistoryEntry>)))]
pub(super) async fn history(
    State(app): State<App>,
    headers: HeaderMap,
    guest: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Vec<wire::HistoryEntry>> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(guest, "guest")?;
    let Ok(Query(query)) = query else {
        return Err(ApiError::bad(
            "bad_limit",
            format!(
                "limit must be a whole number from 0; at most {} lines are sent",
                wire::MAX_HISTORY
            ),
        ));
    };
    let limit = query.limit.unwrap_or(wire::DEFAULT_HISTORY).min(wire::MAX_HISTORY);
    let history = app.store.history(&caller, guest, limit, app.now()).await?;
    Ok(axum::Json(history.into_iter().map(Into::into).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(response: Response) -> (StatusCode, Option<String>, String) {
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let runtime = tokio::runtime::Builder::new_current_thread().build();
        let bytes = runtime
            .ok()
            .and_then(|rt| rt.block_on(axum::body::to_bytes(response.into_body(), 1 << 20)).ok())
            .unwrap_or_default();
        (status, content_type, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn a_storage_failure_answers_a_generic_reason_without_the_databases_words() {
        for error in [
            LoyaltyError::Storage("22021: invalid byte sequence for encoding \"UTF8\": 0x00".to_string()),
            LoyaltyError::Unavailable("cannot connect to postgres://loyalty@db.local/loyalty".to_string()),
        ] {
            let (status, content_type, body) = answered(ApiError::from(error).into_response());
            assert!(status.is_server_error());
            assert_eq!(content_type.as_deref(), Some("application/json"));
            let body: ErrorBody = serde_json::from_str(&body).unwrap_or_else(|_| ErrorBody {
                error: String::new(),
                reason: String::new(),
                ledger: None,
            });
            assert!(!body.error.is_empty() && !body.reason.is_empty());
            assert_eq!(body.ledger, None, "no error text of the store");
            for word in ["22021", "UTF8", "postgres", "db.local"] {
                assert!(!body.reason.contains(word), "{}", body.reason);
            }
        }
    }

    #[test]
    fn a_plain_text_refusal_becomes_a_json_body_without_its_text() {
        let plain = (
            StatusCode::BAD_REQUEST,
            "Failed to deserialize query string: +79161234567",
        )
            .into_response();
        let runtime = tokio::runtime::Builder::new_current_thread().build();
        let json = runtime.ok().map(|rt| rt.block_on(errors_as_json(plain)));
        let (status, content_type, body) = answered(json.unwrap_or_default());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type.as_deref(), Some("application/json"));
        assert!(body.contains("\"error\":\"bad_request\""), "{body}");
        assert!(!body.contains("79161234567"), "{body}");
        // Our own JSON answers and successes pass unchanged.
        let ours = ApiError::bad("bad_id", "the guest id must be a positive integer").into_response();
        let runtime = tokio::runtime::Builder::new_current_thread().build();
        let passed = runtime.ok().map(|rt| rt.block_on(errors_as_json(ours)));
        let (_, _, body) = answered(passed.unwrap_or_default());
        assert!(body.contains("bad_id"), "{body}");
    }

    #[test]
    fn a_body_is_refused_without_quoting_it() {
        let error = serde_json::from_str::<wire::IdentifyRequest>(r#"{"kind": "manual", "payload": 79161234567}"#)
            .err()
            .map(|e| refused_body(&e));
        let reason = error.map(|e| (e.code, e.reason)).unwrap_or_default();
        assert_eq!(reason.0, "malformed_json");
        assert!(!reason.1.contains("79161234567"), "{}", reason.1);
        let missing = serde_json::from_str::<wire::VoidRequest>("{}")
            .err()
            .map(|e| refused_body(&e).reason)
            .unwrap_or_default();
        assert!(missing.contains("missing field `op_id`"), "{missing}");
    }
}
