//! The versioned REST API: JSON in and out, one handler per operation, every error a JSON body
//! with a reason. Amounts are integers in kopecks, at most 2^53 − 1 so that every JSON reader
//! keeps them exact.

use super::store::{Caller, Store, token_hash, valid_name};
use crate::domain::{CheckInfo, GuestId, HoldId, LoyaltyError, MAX_CODE_LEN, ScanKind, UnixSeconds};
use crate::mask::mask_code;
use crate::money::Kopecks;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Requests are small; anything bigger is refused before it is read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much of a too-large body is read and dropped before answering.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;
/// The largest amount JSON carries exactly everywhere (JavaScript's safe integers).
pub const MAX_AMOUNT: i64 = (1 << 53) - 1;
pub const MAX_OP_ID_LEN: usize = 64;
const MAX_GIFT_CODES: usize = 32;
const MAX_HISTORY: usize = 500;
/// How long a looked-up token is trusted without asking the store again.
const TOKEN_CACHE: Duration = Duration::from_secs(30);

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
    /// Token hashes already looked up, kept for [`TOKEN_CACHE`]: a replaced token stops working
    /// within that time.
    callers: Arc<RwLock<HashMap<String, (Caller, Instant)>>>,
}

impl App {
    pub fn new(store: Arc<Store>, clock: ServerClock) -> App {
        App {
            store,
            clock,
            max_check_age_secs: DEFAULT_MAX_CHECK_AGE_SECS,
            callers: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The time a payment is booked at: the check's own time within the bounds, else now.
    fn booking_time(&self, check_time: Option<UnixSeconds>) -> (UnixSeconds, CheckTimeUse) {
        let now = self.now();
        match check_time {
            None => (now, CheckTimeUse::Absent),
            Some(at) if at > now + CHECK_TIME_AHEAD_SECS => (now, CheckTimeUse::InFuture),
            Some(at) if at < now - self.max_check_age_secs => (now, CheckTimeUse::TooOld),
            Some(at) => (at.min(now), CheckTimeUse::Used),
        }
    }

    fn now(&self) -> UnixSeconds {
        (self.clock)()
    }
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/health", get(health))
        .route("/api/v1/till", get(till))
        .route("/api/v1/identify", post(identify))
        .route("/api/v1/guests/{guest}", get(guest_card))
        .route("/api/v1/guests/{guest}/calculate", post(calculate))
        .route("/api/v1/guests/{guest}/holds", get(open_holds))
        .route("/api/v1/guests/{guest}/holds/reset", post(reset_holds))
        .route("/api/v1/guests/{guest}/history", get(history))
        .route("/api/v1/holds", post(hold))
        .route("/api/v1/holds/{hold}/void", post(void))
        .route("/api/v1/payments", post(commit))
        .route("/api/v1/accruals", post(accrue))
        .route("/api/v1/offline-payments", post(offline_payment))
        .route("/api/v1/refunds", post(refund))
        .fallback(not_found)
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

#[derive(Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LoyaltyError>,
}

impl ApiError {
    fn bad(code: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            reason: reason.into(),
            ledger: None,
        }
    }

    fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            reason: "a till token is required: Authorization: Bearer <token>".to_string(),
            ledger: None,
        }
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
            LoyaltyError::OperationIdConflict => (StatusCode::CONFLICT, "operation_id_conflict"),
            LoyaltyError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            LoyaltyError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
            // Made by a till about its server; the server never returns it.
            LoyaltyError::ServerAway(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        if status.is_server_error() {
            tracing::error!(%error, "request failed");
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
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        reason: "no such endpoint; see /api/v1/openapi.json".to_string(),
        ledger: None,
    }
}

// ----- Input -----

/// An amount in kopecks as JSON carries it: a whole number from 0 to 2^53 − 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Amount(pub Kopecks);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        let value = serde_json::Number::deserialize(deserializer)?;
        let refuse = || serde::de::Error::custom("amounts are whole kopecks from 0 to 9007199254740991");
        let n = value.as_u64().ok_or_else(refuse)?;
        if n > MAX_AMOUNT as u64 {
            return Err(refuse());
        }
        Ok(Amount(Kopecks(n as i64)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    pub subtotal: Amount,
    #[serde(default)]
    pub gift_codes: Vec<String>,
}

impl CheckBody {
    fn check(&self) -> Result<CheckInfo, ApiError> {
        if self.gift_codes.len() > MAX_GIFT_CODES {
            return Err(ApiError::bad(
                "too_many_gift_codes",
                format!("at most {MAX_GIFT_CODES} gift codes"),
            ));
        }
        if self
            .gift_codes
            .iter()
            .any(|c| c.is_empty() || c.chars().count() > MAX_CODE_LEN)
        {
            return Err(ApiError::bad(
                "bad_gift_code",
                format!("gift codes are 1 to {MAX_CODE_LEN} characters"),
            ));
        }
        Ok(CheckInfo {
            subtotal: self.subtotal.0,
            gift_codes: self.gift_codes.clone(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifyBody {
    kind: ScanKind,
    payload: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalculateBody {
    check: CheckBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    op_id: String,
    guest_id: GuestId,
    amount: Amount,
    check: CheckBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitBody {
    op_id: String,
    guest_id: GuestId,
    hold_id: Option<HoldId>,
    spent: Amount,
    check: CheckBody,
    /// When the till closed the check (Unix seconds); see [`App::booking_time`].
    #[serde(default)]
    check_time: Option<UnixSeconds>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccrueBody {
    op_id: String,
    guest_id: GuestId,
    check: CheckBody,
    #[serde(default)]
    check_time: Option<UnixSeconds>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfflineBody {
    op_id: String,
    guest_id: GuestId,
    /// What the till debited offline; the server takes what the guest still has.
    spent: Amount,
    check: CheckBody,
    #[serde(default)]
    check_time: Option<UnixSeconds>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoidBody {
    op_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    op_id: String,
    /// The operation id the payment (or accrual) was made with.
    payment_op_id: String,
    /// The till that made the payment; this till when absent.
    #[serde(default)]
    payment_till: Option<String>,
    /// The part of the amount due returned; everything not yet returned when absent.
    #[serde(default)]
    amount: Option<Amount>,
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

/// Reads the body (at most [`MAX_BODY_BYTES`]) and parses it as `T`. A body that is too large is
/// read on and dropped (up to [`DRAIN_BYTES`]) before the 413, so that the client, still
/// sending, gets the answer instead of a reset connection.
async fn json_body<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad("bad_body", format!("the body could not be read: {e}")))?;
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
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "body_too_large",
            reason: format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            ledger: None,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        // serde_json names the field and position, never the values.
        ApiError::bad("malformed_json", format!("the body is not a valid request: {e}"))
    })
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

fn path_id(text: &str, what: &'static str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
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
    let cached = app.callers.read().ok().and_then(|m| m.get(&hash).cloned());
    if let Some((caller, at)) = cached
        && at.elapsed() < TOKEN_CACHE
    {
        return Ok(caller);
    }
    let caller = app.store.caller_for(&hash).await?.ok_or_else(ApiError::unauthorized)?;
    if let Ok(mut known) = app.callers.write() {
        if known.len() > 10_000 {
            known.clear();
        }
        known.insert(hash, (caller.clone(), Instant::now()));
    }
    Ok(caller)
}

// ----- Handlers -----

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi::DOCUMENT).into_response()
}

async fn health(State(app): State<App>) -> ApiResult<serde_json::Value> {
    Ok(axum::Json(serde_json::json!({ "status": "ok", "now": app.now() })))
}

/// What the server did with a payment's `check_time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckTimeUse {
    /// Booked at the check's time.
    Used,
    /// No check time sent: booked now.
    Absent,
    /// Older than the bound: booked at the server's time.
    TooOld,
    /// Ahead of the server's clock by more than the tolerance: booked at the server's time.
    InFuture,
    /// A payment on a hold: booked when committed, whatever the check time says.
    OnHold,
}

/// A payment's receipt, with the time it was booked at and why.
#[derive(Serialize)]
pub struct PaidAnswer {
    #[serde(flatten)]
    pub receipt: crate::domain::PaymentReceipt,
    pub booked_at: UnixSeconds,
    pub check_time: CheckTimeUse,
}

fn paid(
    caller: &Caller,
    op: &str,
    receipt: crate::domain::PaymentReceipt,
    (booked_at, check_time): (UnixSeconds, CheckTimeUse),
) -> ApiResult<PaidAnswer> {
    if matches!(check_time, CheckTimeUse::TooOld | CheckTimeUse::InFuture) {
        tracing::warn!(till = %caller.till, op = %op, ?check_time, booked_at,
            "a payment's check time is out of bounds: booked at the server's time");
    }
    Ok(axum::Json(PaidAnswer {
        receipt,
        booked_at,
        check_time,
    }))
}

/// The till's probe: a cheap request that proves the token (401 without a known one).
async fn till(State(app): State<App>, headers: HeaderMap) -> ApiResult<serde_json::Value> {
    let caller = caller(&app, &headers).await?;
    Ok(axum::Json(
        serde_json::json!({ "org": caller.org, "till": caller.till, "now": app.now() }),
    ))
}

async fn identify(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<crate::domain::Identification> {
    let caller = caller(&app, &headers).await?;
    let request: IdentifyBody = json_body(body).await?;
    let result = app
        .store
        .identify(&caller, &request.payload, request.kind, app.now())
        .await;
    if let Err(error) = &result {
        tracing::info!(till = %caller.till, code = %mask_code(&request.payload), %error, "identify refused");
    }
    Ok(axum::Json(result?))
}

/// The guest card with the guest's gifts waiting (gift codes masked).
#[derive(Serialize, Deserialize)]
pub struct CardAnswer {
    #[serde(flatten)]
    pub card: crate::domain::GuestCard,
    pub gifts: Vec<crate::domain::Gift>,
}

async fn guest_card(State(app): State<App>, headers: HeaderMap, Path(guest): Path<String>) -> ApiResult<CardAnswer> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(&guest, "guest")?;
    let card = app.store.guest_card(&caller, guest, app.now()).await?;
    let gifts = app.store.gifts(&caller, guest).await?;
    Ok(axum::Json(CardAnswer { card, gifts }))
}

/// The quote and what the guest would earn: keeping every bonus, or spending the maximum.
#[derive(Serialize, Deserialize)]
pub struct CalculateAnswer {
    #[serde(flatten)]
    pub quote: crate::domain::SpendQuote,
    pub accrual_if_kept: Kopecks,
    pub accrual_if_max_spent: Kopecks,
}

async fn calculate(
    State(app): State<App>,
    headers: HeaderMap,
    Path(guest): Path<String>,
    body: Body,
) -> ApiResult<CalculateAnswer> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(&guest, "guest")?;
    let request: CalculateBody = json_body(body).await?;
    let quote = app
        .store
        .calculate(&caller, guest, &request.check.check()?, app.now())
        .await?;
    Ok(axum::Json(CalculateAnswer {
        accrual_if_kept: quote.accrual_for(Kopecks::ZERO),
        accrual_if_max_spent: quote.accrual_for(quote.max_spend),
        quote,
    }))
}

async fn hold(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<crate::domain::HoldReceipt> {
    let caller = caller(&app, &headers).await?;
    let request: HoldBody = json_body(body).await?;
    let op = op_id(&request.op_id)?;
    let check = request.check.check()?;
    let receipt = app
        .store
        .hold(&caller, op, request.guest_id, request.amount.0, &check, app.now())
        .await?;
    Ok(axum::Json(receipt))
}

async fn commit(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<PaidAnswer> {
    let caller = caller(&app, &headers).await?;
    let request: CommitBody = json_body(body).await?;
    let op = op_id(&request.op_id)?;
    let check = request.check.check()?;
    // A payment on a hold is booked when it is committed: the hold is the server's own record
    // of the moment. A payment without one (an accrual, possibly queued offline) at its check time.
    let booking = match request.hold_id {
        Some(_) => (app.now(), CheckTimeUse::OnHold),
        None => app.booking_time(request.check_time),
    };
    let receipt = app
        .store
        .commit(
            &caller,
            op,
            request.guest_id,
            request.hold_id,
            request.spent.0,
            &check,
            booking.0,
        )
        .await?;
    paid(&caller, op, receipt, booking)
}

/// A paid check without bonuses: the accrual (also what an offline till sends later).
async fn accrue(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<PaidAnswer> {
    let caller = caller(&app, &headers).await?;
    let request: AccrueBody = json_body(body).await?;
    let op = op_id(&request.op_id)?;
    let check = request.check.check()?;
    let booking = app.booking_time(request.check_time);
    let receipt = app
        .store
        .commit(&caller, op, request.guest_id, None, Kopecks::ZERO, &check, booking.0)
        .await?;
    paid(&caller, op, receipt, booking)
}

/// A check a till closed with bonuses while the server was away (only where the owner allows it).
async fn offline_payment(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<PaidAnswer> {
    let caller = caller(&app, &headers).await?;
    let request: OfflineBody = json_body(body).await?;
    let op = op_id(&request.op_id)?;
    let check = request.check.check()?;
    let booking = app.booking_time(request.check_time);
    let receipt = app
        .store
        .commit_offline(&caller, op, request.guest_id, request.spent.0, &check, booking.0)
        .await?;
    if receipt.spent < request.spent.0 {
        tracing::warn!(till = %caller.till, op = %op, requested = request.spent.0.0, debited = receipt.spent.0,
            "an offline payment found fewer bonuses than it spent");
    }
    paid(&caller, op, receipt, booking)
}

async fn void(
    State(app): State<App>,
    headers: HeaderMap,
    Path(hold): Path<String>,
    body: Body,
) -> ApiResult<serde_json::Value> {
    let caller = caller(&app, &headers).await?;
    let hold = path_id(&hold, "hold")?;
    let request: VoidBody = json_body(body).await?;
    let op = op_id(&request.op_id)?;
    app.store.void(&caller, op, hold, app.now()).await?;
    Ok(axum::Json(serde_json::json!({ "voided": hold })))
}

async fn refund(State(app): State<App>, headers: HeaderMap, body: Body) -> ApiResult<crate::domain::RefundReceipt> {
    let caller = caller(&app, &headers).await?;
    let request: RefundBody = json_body(body).await?;
    let op = op_id(&request.op_id)?;
    let payment_op = op_id(&request.payment_op_id)?;
    let till = request.payment_till.as_deref().unwrap_or(&caller.till);
    if !valid_name(till) {
        return Err(ApiError::bad("bad_till", "payment_till is not a till name"));
    }
    if request.amount.is_some_and(|a| a.0 <= Kopecks::ZERO) {
        return Err(LoyaltyError::NonPositiveAmount.into());
    }
    let receipt = app
        .store
        .refund(
            &caller,
            op,
            &caller.op_of(till, payment_op),
            request.amount.map(|a| a.0),
            app.now(),
        )
        .await?;
    Ok(axum::Json(receipt))
}

async fn open_holds(
    State(app): State<App>,
    headers: HeaderMap,
    Path(guest): Path<String>,
) -> ApiResult<Vec<crate::domain::HoldReceipt>> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(&guest, "guest")?;
    Ok(axum::Json(app.store.open_holds(&caller, guest).await?))
}

async fn reset_holds(
    State(app): State<App>,
    headers: HeaderMap,
    Path(guest): Path<String>,
) -> ApiResult<serde_json::Value> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(&guest, "guest")?;
    let voided = app.store.reset_holds(&caller, guest, app.now()).await?;
    Ok(axum::Json(serde_json::json!({ "voided": voided })))
}

async fn history(
    State(app): State<App>,
    headers: HeaderMap,
    Path(guest): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Vec<crate::domain::HistoryEntry>> {
    let caller = caller(&app, &headers).await?;
    let guest = path_id(&guest, "guest")?;
    let limit = query.limit.unwrap_or(50).min(MAX_HISTORY);
    Ok(axum::Json(app.store.history(&caller, guest, limit).await?))
}
