//! The HTTP side of the POS calls: token, call ids and the `Problem` answers. The decisions are
//! [`super::pos::PosCore`]'s.

use super::pos::{CancelledIn, MAX_POS_BODY_BYTES, PaidIn, PosError, PosOrder, PosRefusal, Replay, ReturnIn};
use super::{Handhelds, guard, unix_now, with_i18n};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Serialize)]
struct Problem {
    error: &'static str,
    message: String,
}

fn problem(app: &Handhelds, status: StatusCode, error: &'static str, key: &str) -> Response {
    let message = with_i18n(app.lang, |i| i.t(key));
    (status, axum::Json(Problem { error, message })).into_response()
}

pub(super) fn routes(base: &str) -> Router<Arc<Handhelds>> {
    Router::new()
        .route(&format!("{base}/pos/health"), get(health))
        .route(
            &format!("{base}/pos/orders/{{order_id}}"),
            get(get_order).put(push_order),
        )
        .route(&format!("{base}/pos/orders/{{order_id}}/paid"), post(paid))
        .route(&format!("{base}/pos/orders/{{order_id}}/cancel"), post(cancel))
        .route(&format!("{base}/pos/orders/{{order_id}}/returns"), post(returns))
}

/// Wires the cashier's confirmation into the feed and shows the order open at start.
pub(super) fn connect_feed(app: &Arc<Handhelds>) {
    let core = Arc::clone(&app.core);
    let live = Arc::clone(&app.pos_config);
    let feed = Arc::downgrade(&app.feed);
    app.feed.set_confirm(Box::new(move |order, owner, shares, call| {
        // Read per call: the settings page changes the bonus payment type and the gift codes.
        let config = live.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut core = core.lock().unwrap_or_else(|p| p.into_inner());
        let result = core.pos(&config, unix_now()).confirm_shared(order, owner, shares, call);
        if let Some(feed) = feed.upgrade() {
            feed.publish(core.pos.open_order().ok().flatten());
        }
        result
    }));
    let core = app.core.lock().unwrap_or_else(|p| p.into_inner());
    app.feed.publish(core.pos.open_order().ok().flatten());
}

/// The POS token, under the same brake on guessing as the waiters' PINs.
fn authorize(app: &Handhelds, ip: std::net::IpAddr, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let now = Instant::now();
    let mut gate = app.gate.lock().unwrap_or_else(|p| p.into_inner());
    if gate.locked(ip, now).is_some() {
        tracing::warn!(%ip, "POS: token attempts locked out");
        return Some(problem(
            app,
            StatusCode::TOO_MANY_REQUESTS,
            "unauthorized",
            "pos-locked",
        ));
    }
    match token {
        Some(token) if guard::pin_matches(token, std::slice::from_ref(&app.settings.pos_token)) => {
            gate.right(ip);
            None
        }
        _ => {
            gate.wrong(ip, now);
            tracing::warn!(%ip, "POS: wrong or missing token");
            Some(problem(
                app,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "pos-unauthorized",
            ))
        }
    }
}

fn valid_order_id(app: &Handhelds, raw: &str) -> Result<String, Box<Response>> {
    super::order_id(raw).ok_or_else(|| {
        Box::new(problem(
            app,
            StatusCode::NOT_FOUND,
            "unknown_order",
            "pos-unknown-order",
        ))
    })
}

async fn health(
    State(app): State<Arc<Handhelds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = authorize(&app, peer.ip(), &headers) {
        return refused;
    }
    let core = Arc::clone(&app.core);
    let backend = tokio::task::spawn_blocking(move || {
        let core = core.lock().unwrap_or_else(|p| p.into_inner());
        match core.backend.kind() {
            crate::domain::BackendKind::Embedded { .. } => "embedded",
            _ => "server",
        }
    })
    .await
    .unwrap_or("server");
    axum::Json(serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "backend": backend })).into_response()
}

/// The contract's most a long poll waits, in seconds.
const MAX_WAIT_SECONDS: u64 = 30;

/// `after` and `wait` of the long poll; anything else in the query is ignored.
#[derive(serde::Deserialize, Default)]
struct PollQuery {
    after: Option<String>,
    wait: Option<String>,
}

impl PollQuery {
    /// `(after, wait)`, or `None` when either is not a non-negative integer.
    fn parse(&self) -> Option<(Option<i64>, Duration)> {
        let after = match &self.after {
            Some(raw) => Some(raw.trim().parse::<i64>().ok().filter(|n| *n >= 0)?),
            None => None,
        };
        let wait = match &self.wait {
            Some(raw) => raw.trim().parse::<u64>().ok()?.min(MAX_WAIT_SECONDS),
            None => 0,
        };
        Some((after, Duration::from_secs(wait)))
    }
}

async fn get_order(
    State(app): State<Arc<Handhelds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(raw): UrlPath<String>,
    query: Result<axum::extract::Query<PollQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = authorize(&app, peer.ip(), &headers) {
        return refused;
    }
    let order = match valid_order_id(&app, &raw) {
        Ok(order) => order,
        Err(refused) => return *refused,
    };
    let Some((after, wait)) = query.ok().and_then(|q| q.parse()) else {
        return problem(&app, StatusCode::BAD_REQUEST, "bad_request", "pos-bad-request");
    };
    // Subscribed before the first read, so a change between the read and the wait still wakes it.
    let mut changes = app.feed.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        changes.mark_unchanged();
        let done = read_result(&app, &order).await;
        // Answered now: no `after`, a newer result, an error, or the time is up (the same
        // `resultRevision`: unchanged). Otherwise it sleeps until the book changes: a POS call
        // or the cashier's confirmation wakes it, never a timer of its own.
        let settled = match &done {
            Ok(result) => after.is_none_or(|a| result.result_revision > a) || tokio::time::Instant::now() >= deadline,
            Err(_) => true,
        };
        if settled || !matches!(tokio::time::timeout_at(deadline, changes.changed()).await, Ok(Ok(()))) {
            // On a timeout (or the endpoint stopping) the result is read once more: a hold that
            // ran out of time during the wait is answered voided.
            let done = if settled { done } else { read_result(&app, &order).await };
            return answer(&app, done.map(|r| serde_json::to_string(&r).unwrap_or_default()));
        }
    }
}

async fn read_result(app: &Arc<Handhelds>, order: &str) -> Result<super::pos::LoyaltyResult, PosError> {
    let worker = Arc::clone(app);
    let order = order.to_string();
    tokio::task::spawn_blocking(move || {
        let mut core = worker.core.lock().unwrap_or_else(|p| p.into_inner());
        let config = worker.pos_config();
        core.pos(&config, unix_now()).get(&order)
    })
    .await
    .unwrap_or_else(|e| Err(PosError::Loyalty(crate::domain::LoyaltyError::Storage(e.to_string()))))
}

fn answer(app: &Handhelds, result: Result<String, PosError>) -> Response {
    let (status, body) = settle(app, result);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The status and body of an answer, as stored for a repeat of the call.
fn settle(app: &Handhelds, result: Result<String, PosError>) -> (StatusCode, String) {
    let (status, error, key) = match result {
        Ok(body) => return (StatusCode::OK, body),
        Err(PosError::Refused(refusal)) => {
            let status = if matches!(refusal, PosRefusal::UnknownOrder | PosRefusal::NotPaid) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::CONFLICT
            };
            (status, refusal.code(), refusal.message_key())
        }
        Err(PosError::Loyalty(error)) => {
            tracing::error!(%error, "POS: the engine refused or failed");
            let notice = crate::workflow::error_notice(&error);
            let message = with_i18n(app.lang, |i| i.notice(&notice));
            let status = match error {
                crate::domain::LoyaltyError::Storage(_) | crate::domain::LoyaltyError::Unavailable(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::CONFLICT,
            };
            let error = if status == StatusCode::SERVICE_UNAVAILABLE {
                "ledger_unavailable"
            } else {
                "refused"
            };
            return (
                status,
                serde_json::to_string(&Problem { error, message }).unwrap_or_default(),
            );
        }
        Err(PosError::Storage(error)) => {
            tracing::error!(%error, "POS: book failed");
            (StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", "err-storage")
        }
    };
    let message = with_i18n(app.lang, |i| i.t(key));
    (
        status,
        serde_json::to_string(&Problem { error, message }).unwrap_or_default(),
    )
}

/// A call that changes something: token, JSON body within its limit, call id; a repeat of the
/// same call id answers as the first time and does nothing again.
async fn changing(
    app: Arc<Handhelds>,
    peer: SocketAddr,
    method: Method,
    raw_order: String,
    what: &'static str,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refused) = authorize(&app, peer.ip(), &headers) {
        return refused;
    }
    let order = match valid_order_id(&app, &raw_order) {
        Ok(order) => order,
        Err(refused) => return *refused,
    };
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .map(str::to_string)
    else {
        return problem(&app, StatusCode::BAD_REQUEST, "bad_request", "pos-no-call-id");
    };
    if !super::is_json(&headers) {
        return problem(
            &app,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_request",
            "pos-bad-request",
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_POS_BODY_BYTES as u64) {
        return problem(&app, StatusCode::PAYLOAD_TOO_LARGE, "bad_request", "pos-too-large");
    }
    let bytes =
        match tokio::time::timeout(Duration::from_secs(10), axum::body::to_bytes(body, MAX_POS_BODY_BYTES)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => return problem(&app, StatusCode::PAYLOAD_TOO_LARGE, "bad_request", "pos-too-large"),
            Err(_) => return problem(&app, StatusCode::REQUEST_TIMEOUT, "bad_request", "pos-bad-request"),
        };
    let request = format!("{method} {order} {what} {}", String::from_utf8_lossy(&bytes));
    let worker = Arc::clone(&app);
    let done = tokio::task::spawn_blocking(
        move || -> Result<(StatusCode, String), (StatusCode, &'static str, &'static str)> {
            let config = worker.pos_config();
            let mut core = worker.core.lock().unwrap_or_else(|p| p.into_inner());
            let now = unix_now();
            match core.pos.replay(&key, &request) {
                Ok(Some(Replay::Same(status, answer))) => {
                    tracing::info!(order = %order, call = %key, "POS: repeated call answered as the first time");
                    return Ok((StatusCode::from_u16(status).unwrap_or(StatusCode::OK), answer));
                }
                Ok(Some(Replay::Conflict)) => {
                    return Err((StatusCode::CONFLICT, "idempotency_conflict", "pos-call-id-reused"));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, "POS: call book failed");
                    return Err((StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", "err-storage"));
                }
            }
            let result = match what {
                "push" => match serde_json::from_slice::<PosOrder>(&bytes) {
                    Ok(pushed) => {
                        if let Some(problem) = pushed.problem() {
                            tracing::warn!(order = %order, problem, "POS: order refused");
                            return Err((StatusCode::BAD_REQUEST, "bad_request", "pos-bad-order"));
                        }
                        core.pos(&config, now)
                            .push(&order, pushed, &key)
                            .map(|r| serde_json::to_string(&r).unwrap_or_default())
                    }
                    Err(error) => {
                        tracing::warn!(%error, "POS: order body is not the contract's JSON");
                        return Err((StatusCode::BAD_REQUEST, "bad_request", "pos-bad-request"));
                    }
                },
                "paid" => match serde_json::from_slice::<PaidIn>(&bytes) {
                    Ok(paid) => core
                        .pos(&config, now)
                        .paid(&order, &paid, &key)
                        .map(|r| serde_json::to_string(&r).unwrap_or_default()),
                    Err(_) => return Err((StatusCode::BAD_REQUEST, "bad_request", "pos-bad-request")),
                },
                "return" => match serde_json::from_slice::<ReturnIn>(&bytes) {
                    Ok(returned) => {
                        if let Some(problem) = returned.problem() {
                            tracing::warn!(order = %order, problem, "POS: return refused");
                            return Err((StatusCode::BAD_REQUEST, "bad_request", "pos-bad-return"));
                        }
                        core.pos(&config, now)
                            .returned(&order, &returned, &key)
                            .map(|r| serde_json::to_string(&r).unwrap_or_default())
                    }
                    Err(_) => return Err((StatusCode::BAD_REQUEST, "bad_request", "pos-bad-request")),
                },
                _ => match serde_json::from_slice::<CancelledIn>(&bytes) {
                    Ok(_) => core
                        .pos(&config, now)
                        .cancel(&order, &key)
                        .map(|r| serde_json::to_string(&r).unwrap_or_default()),
                    Err(_) => return Err((StatusCode::BAD_REQUEST, "bad_request", "pos-bad-request")),
                },
            };
            let transient = matches!(
                &result,
                Err(PosError::Storage(_))
                    | Err(PosError::Loyalty(crate::domain::LoyaltyError::Storage(_)))
                    | Err(PosError::Loyalty(crate::domain::LoyaltyError::Unavailable(_)))
            );
            let (status, body) = settle(&worker, result);
            // A failure of storage or of the link may pass: the retry must be tried again, not
            // answered with the failure.
            if !transient && let Err(error) = core.pos.remember(&key, &request, status.as_u16(), &body, now) {
                tracing::error!(%error, "POS: the answer could not be kept for a repeat");
            }
            tracing::info!(order = %order, call = %key, what, status = status.as_u16(), "POS: call");
            worker.feed.publish(core.pos.open_order().ok().flatten());
            Ok((status, body))
        },
    )
    .await;
    match done {
        Ok(Ok((status, body))) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(Err((status, error, key))) => problem(&app, status, error, key),
        Err(error) => {
            tracing::error!(%error, "POS: call task failed");
            problem(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger_unavailable",
                "err-storage",
            )
        }
    }
}

async fn push_order(
    State(app): State<Arc<Handhelds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    changing(app, peer, Method::PUT, raw, "push", headers, body).await
}

async fn paid(
    State(app): State<Arc<Handhelds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    changing(app, peer, Method::POST, raw, "paid", headers, body).await
}

async fn cancel(
    State(app): State<Arc<Handhelds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    changing(app, peer, Method::POST, raw, "cancel", headers, body).await
}

async fn returns(
    State(app): State<Arc<Handhelds>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    changing(app, peer, Method::POST, raw, "return", headers, body).await
}
