//! The POS side of the till's local endpoint (`docs/pos-contract.openapi.json`): the POS pushes
//! its open order, the till answers with the loyalty result, and a bonus hold the cashier
//! confirmed on the till is committed only when the POS reports the check paid.
//!
//! Every loyalty decision (the guest, the discount, the maximum, the hold, the debit and the
//! accrual) is the engine's, through the same [`LoyaltyBackend`] the check-ins use; this module
//! keeps the orders, the holds made for them and the answers to repeated calls, in the order
//! book's SQLite file so that a restart of the till loses none of them.
//!
//! A line returned on the POS after payment (`.../returns`) goes to the engine's refund of that
//! payment for the returned amount, which gives back its share of the bonuses spent and takes
//! back its share of the accrual.
//!
//! Not built: the long poll of `GET .../orders/{id}` (`after`/`wait` are ignored: the answer is
//! immediate).

use crate::backend::LoyaltyBackend;
use crate::domain::{CardPayment, CardShare, CheckInfo, GuestCard, GuestId, HoldId, LoyaltyError, UnixSeconds};
use crate::money::Kopecks;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Largest POS request body: 500 lines of an order fit well within it.
pub const MAX_POS_BODY_BYTES: usize = 256 * 1024;
/// Answers to calls are kept this long for the POS's retries.
const CALL_TTL_SECS: i64 = 7 * 24 * 3_600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PosLine {
    pub line_id: String,
    pub item_code: String,
    pub name: String,
    /// Thousandths of a unit.
    pub quantity: i64,
    pub price: i64,
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_code: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PosStatus {
    Open,
    Precheck,
    Closing,
}

/// The order as the POS pushed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PosOrder {
    pub revision: i64,
    pub number: String,
    #[serde(default)]
    pub table: Option<String>,
    pub status: PosStatus,
    pub lines: Vec<PosLine>,
    pub total: i64,
}

impl PosOrder {
    /// What is wrong with the order, if anything: the till refuses it whole rather than show
    /// the cashier a total that is not the sum of the lines.
    pub fn problem(&self) -> Option<&'static str> {
        if self.revision < 1 {
            return Some("revision");
        }
        if self.lines.len() > 500 {
            return Some("lines");
        }
        let mut sum: i64 = 0;
        for line in &self.lines {
            if line.quantity < 1 || line.price < 0 || line.amount < 0 {
                return Some("line");
            }
            sum = sum.checked_add(line.amount)?;
        }
        (sum != self.total || self.total < 0).then_some("total")
    }

    /// The lines as the engine compares them: a reopened order with other lines voids a hold.
    fn lines_key(&self) -> String {
        serde_json::to_string(&self.lines).unwrap_or_default()
    }

    fn check_info(&self) -> CheckInfo {
        CheckInfo {
            subtotal: Kopecks(self.total),
            gift_codes: self.lines.iter().filter_map(|l| l.gift_code.clone()).collect(),
            // The POS returns its own lines (its return call names them, and this module keeps
            // what each line gave back): the ledger keeps the check's total only.
            lines: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultState {
    None,
    Identified,
    Held,
    Paid,
    Voided,
    Cancelled,
}

impl ResultState {
    fn as_str(self) -> &'static str {
        match self {
            ResultState::None => "none",
            ResultState::Identified => "identified",
            ResultState::Held => "held",
            ResultState::Paid => "paid",
            ResultState::Voided => "voided",
            ResultState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> ResultState {
        match text {
            "identified" => ResultState::Identified,
            "held" => ResultState::Held,
            "paid" => ResultState::Paid,
            "voided" => ResultState::Voided,
            "cancelled" => ResultState::Cancelled,
            _ => ResultState::None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestOut {
    pub name: String,
    pub phone_masked: String,
    pub balance: i64,
    pub available: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GiftOut {
    pub gift_code: String,
    pub name: String,
    pub item_code: String,
    pub points: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BonusPaymentOut {
    pub payment_type_id: String,
    pub amount: i64,
    pub maximum: i64,
    pub hold_expires_at: i64,
}

/// The loyalty result, as the contract's `LoyaltyResult`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoyaltyResult {
    pub order_revision: i64,
    pub result_revision: i64,
    pub state: ResultState,
    pub guest: Option<GuestOut>,
    pub discount: i64,
    pub gifts: Vec<GiftOut>,
    pub bonus_payment: Option<BonusPaymentOut>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentIn {
    pub payment_type_id: String,
    pub amount: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaidIn {
    pub order_revision: i64,
    pub total: i64,
    pub payments: Vec<PaymentIn>,
    #[serde(default)]
    pub receipt_number: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelledIn {
    pub order_revision: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaidOut {
    pub spent: i64,
    pub accrued: i64,
    pub balance: i64,
    pub gifts_redeemed: Vec<String>,
}

/// `POST .../returns`: lines of a paid check returned on the POS.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnIn {
    pub return_id: String,
    pub lines: Vec<ReturnedLineIn>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnedLineIn {
    pub line_id: String,
    /// Thousandths of a unit.
    pub quantity: i64,
    /// What the guest got back for the line, in kopecks.
    pub amount: i64,
}

impl ReturnIn {
    /// What makes the body unusable, before anything is looked up.
    pub fn problem(&self) -> Option<&'static str> {
        if self.return_id.trim().is_empty() || self.return_id.len() > 64 {
            return Some("returnId empty or longer than 64");
        }
        if self.lines.is_empty() || self.lines.len() > 500 {
            return Some("no lines, or more than 500");
        }
        if self.lines.iter().any(|l| l.quantity < 1 || l.amount < 0) {
            return Some("a quantity below 1 or a negative amount");
        }
        None
    }
}

/// What a return reversed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnOut {
    /// Bonuses spent on the returned part, given back to the guest.
    pub bonuses_back: i64,
    /// The accrual on the returned part, taken back.
    pub accrual_taken_back: i64,
    /// Accrual that could not be taken back: the guest had spent it already.
    pub not_recovered: i64,
    pub balance: i64,
    /// The whole check is now returned (its gifts and stamps came back too).
    pub fully_returned: bool,
}

/// What the till shows of the order the POS has open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PosView {
    pub order_id: String,
    pub order: PosOrder,
    pub state: ResultState,
    pub held: Option<Kopecks>,
}

impl PosView {
    /// As the till's workflow shows it: a line of whole units keeps its quantity; a line of
    /// parts (0.25 kg) is one line of its amount, so the total is always the POS's.
    pub fn shown(&self) -> crate::workflow::PosOrderShown {
        let lines = self
            .order
            .lines
            .iter()
            .map(|line| {
                let whole = line.quantity % 1_000 == 0 && line.price * (line.quantity / 1_000) == line.amount;
                let (quantity, price) = if whole {
                    (line.quantity / 1_000, line.price)
                } else {
                    (1, line.amount)
                };
                crate::workflow::OrderLine {
                    name: line.name.clone(),
                    quantity,
                    price: Kopecks(price),
                    gift: None,
                }
            })
            .collect();
        crate::workflow::PosOrderShown {
            order_id: self.order_id.clone(),
            number: self.order.number.clone(),
            table: self.order.table.clone(),
            lines,
            held: self.held,
        }
    }
}

/// Why a POS call changes nothing: the contract's `Problem.error` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosRefusal {
    UnknownOrder,
    HoldVoid,
    RevisionMismatch,
    AlreadyPaid,
    OrderClosed,
    NoGuest,
    OverHold,
    /// A return for an order never reported paid.
    NotPaid,
    /// A return of more than was paid on a line, or on the check.
    OverReturn,
    /// A return for a check paid before the till kept its payment (an older version).
    PaymentNotRecorded,
}

impl PosRefusal {
    pub fn code(self) -> &'static str {
        match self {
            PosRefusal::UnknownOrder => "unknown_order",
            PosRefusal::HoldVoid => "hold_void",
            PosRefusal::RevisionMismatch => "revision_mismatch",
            PosRefusal::AlreadyPaid => "already_paid",
            PosRefusal::OrderClosed => "order_closed",
            PosRefusal::NoGuest => "no_guest",
            PosRefusal::OverHold => "over_hold",
            PosRefusal::NotPaid => "not_paid",
            PosRefusal::OverReturn => "over_return",
            PosRefusal::PaymentNotRecorded => "payment_not_recorded",
        }
    }

    /// The locale key of the cashier's message.
    pub fn message_key(self) -> &'static str {
        match self {
            PosRefusal::UnknownOrder => "pos-unknown-order",
            PosRefusal::HoldVoid => "pos-hold-void",
            PosRefusal::RevisionMismatch => "pos-revision-mismatch",
            PosRefusal::AlreadyPaid => "pos-already-paid",
            PosRefusal::OrderClosed => "pos-order-closed",
            PosRefusal::NoGuest => "pos-no-guest",
            PosRefusal::OverHold => "pos-over-hold",
            PosRefusal::NotPaid => "pos-not-paid",
            PosRefusal::OverReturn => "pos-over-return",
            PosRefusal::PaymentNotRecorded => "pos-payment-not-recorded",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PosError {
    #[error("{0:?}")]
    Refused(PosRefusal),
    #[error("{0}")]
    Loyalty(#[from] LoyaltyError),
    #[error("POS book: {0}")]
    Storage(#[from] rusqlite::Error),
}

/// A bonus hold made for an order: one per account that pays (a check paid with several cards
/// has several).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PosHold {
    guest: GuestId,
    hold: HoldId,
    amount: Kopecks,
    expires: UnixSeconds,
}

/// One order's row.
#[derive(Clone, Debug)]
struct Row {
    order: PosOrder,
    state: ResultState,
    /// The guest who owns the check (gets the accrual).
    guest: Option<GuestId>,
    holds: Vec<PosHold>,
    /// The order's lines the holds were made on ([`PosOrder::lines_key`]).
    hold_lines: Option<String>,
    result_revision: i64,
}

impl Row {
    /// What the holds reserve together; `None` when there is none.
    fn held(&self) -> Option<Kopecks> {
        (!self.holds.is_empty()).then(|| self.holds.iter().fold(Kopecks::ZERO, |sum, h| sum + h.amount))
    }

    /// When the first of the holds runs out.
    fn expires(&self) -> Option<UnixSeconds> {
        self.holds.iter().map(|h| h.expires).min()
    }
}

/// What a call id was used for before.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay {
    /// The same request: its first status and answer.
    Same(u16, String),
    /// Another request under the same id.
    Conflict,
}

/// The POS orders, their holds and the answers to their calls.
pub struct PosBook {
    conn: Connection,
    /// The order saved last: `at` is in whole seconds, and of two orders changed within one
    /// second this one is the one the POS has open.
    last_saved: std::sync::Mutex<String>,
}

impl PosBook {
    pub fn open(path: &Path) -> Result<PosBook, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS pos_order (
                 order_id TEXT PRIMARY KEY,
                 body TEXT NOT NULL,
                 state TEXT NOT NULL,
                 guest_id INTEGER,
                 hold_id INTEGER,
                 hold_amount INTEGER,
                 hold_expires INTEGER,
                 hold_lines TEXT,
                 result_revision INTEGER NOT NULL,
                 at INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS pos_paid (
                 order_id TEXT PRIMARY KEY,
                 payment_op TEXT,
                 at INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS pos_returned (
                 order_id TEXT NOT NULL,
                 line_id TEXT NOT NULL,
                 quantity INTEGER NOT NULL,
                 amount INTEGER NOT NULL,
                 PRIMARY KEY (order_id, line_id)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS pos_call (
                 key TEXT PRIMARY KEY,
                 request TEXT NOT NULL,
                 status INTEGER NOT NULL,
                 answer TEXT NOT NULL,
                 at INTEGER NOT NULL
             ) WITHOUT ROWID;",
        )?;
        // The holds of several cards (a JSON list), added to a book made before them; its single
        // hold's columns are still read from orders saved then.
        let has_holds: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('pos_order') WHERE name = 'holds')",
            [],
            |r| r.get(0),
        )?;
        if !has_holds {
            conn.execute_batch("ALTER TABLE pos_order ADD COLUMN holds TEXT")?;
        }
        Ok(PosBook {
            conn,
            last_saved: std::sync::Mutex::new(String::new()),
        })
    }

    /// The stored answer to a call id: `Ok(Some)` for a repeat of the same request, `Err` for
    /// the same id with another request.
    pub fn replay(&self, key: &str, request: &str) -> Result<Option<Replay>, rusqlite::Error> {
        let found: Option<(String, u16, String)> = self
            .conn
            .query_row(
                "SELECT request, status, answer FROM pos_call WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(found.map(|(stored, status, answer)| {
            if stored == request {
                Replay::Same(status, answer)
            } else {
                Replay::Conflict
            }
        }))
    }

    pub fn remember(
        &self,
        key: &str,
        request: &str,
        status: u16,
        answer: &str,
        now: UnixSeconds,
    ) -> Result<(), rusqlite::Error> {
        self.conn
            .execute("DELETE FROM pos_call WHERE at < ?1", [now - CALL_TTL_SECS])?;
        self.conn.execute(
            "INSERT OR IGNORE INTO pos_call (key, request, status, answer, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key, request, status, answer, now],
        )?;
        Ok(())
    }

    fn row(&self, order_id: &str) -> Result<Option<Row>, PosError> {
        type Raw = (
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            i64,
            Option<String>,
        );
        let raw: Option<Raw> = self
            .conn
            .query_row(
                "SELECT body, state, guest_id, hold_id, hold_amount, hold_expires, hold_lines, result_revision, holds
                 FROM pos_order WHERE order_id = ?1",
                [order_id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .optional()?;
        let Some((body, state, guest, hold_id, amount, expires, hold_lines, result_revision, holds)) = raw else {
            return Ok(None);
        };
        let stored = |what: &str, e: serde_json::Error| LoyaltyError::Storage(format!("stored POS {what}: {e}"));
        let order: PosOrder = serde_json::from_str(&body).map_err(|e| stored("order", e))?;
        let holds = match (holds, hold_id, amount, expires, guest) {
            (Some(holds), ..) => serde_json::from_str(&holds).map_err(|e| stored("holds", e))?,
            // An order saved before the holds' list: its one hold, the guest's.
            (None, Some(hold), Some(amount), Some(expires), Some(guest)) => vec![PosHold {
                guest,
                hold,
                amount: Kopecks(amount),
                expires,
            }],
            _ => Vec::new(),
        };
        Ok(Some(Row {
            order,
            state: ResultState::parse(&state),
            guest,
            holds,
            hold_lines,
            result_revision,
        }))
    }

    fn save(&self, order_id: &str, row: &Row, now: UnixSeconds) -> Result<(), rusqlite::Error> {
        order_id.clone_into(&mut self.last_saved.lock().unwrap_or_else(|p| p.into_inner()));
        let body = serde_json::to_string(&row.order).unwrap_or_default();
        let holds = serde_json::to_string(&row.holds).unwrap_or_default();
        // The single hold's columns are no longer written: the list replaces them.
        self.conn.execute(
            "INSERT INTO pos_order (order_id, body, state, guest_id, hold_id, hold_amount, hold_expires, hold_lines,
                                    result_revision, at, holds)
             VALUES (?1, ?2, ?3, ?4, NULL, NULL, NULL, ?5, ?6, ?7, ?8)
             ON CONFLICT(order_id) DO UPDATE SET body = ?2, state = ?3, guest_id = ?4, hold_id = NULL,
                 hold_amount = NULL, hold_expires = NULL, hold_lines = ?5, result_revision = ?6, at = ?7, holds = ?8",
            params![
                order_id,
                body,
                row.state.as_str(),
                row.guest,
                row.hold_lines,
                row.result_revision,
                now,
                holds
            ],
        )?;
        Ok(())
    }

    /// Keeps the engine's operation id of an order's payment (none: paid without a guest), so a
    /// later return refunds that payment.
    fn record_paid(&self, order_id: &str, payment_op: Option<&str>, now: UnixSeconds) -> Result<(), rusqlite::Error> {
        self.conn.execute(
            "INSERT OR REPLACE INTO pos_paid (order_id, payment_op, at) VALUES (?1, ?2, ?3)",
            params![order_id, payment_op, now],
        )?;
        Ok(())
    }

    /// `None`: no payment kept for the order; `Some(None)`: paid without a guest.
    fn paid_op(&self, order_id: &str) -> Result<Option<Option<String>>, rusqlite::Error> {
        self.conn
            .query_row("SELECT payment_op FROM pos_paid WHERE order_id = ?1", [order_id], |r| {
                r.get(0)
            })
            .optional()
    }

    /// What was returned of each line so far: line id → (quantity, amount).
    fn returned(&self, order_id: &str) -> Result<std::collections::HashMap<String, (i64, i64)>, rusqlite::Error> {
        let mut statement = self
            .conn
            .prepare("SELECT line_id, quantity, amount FROM pos_returned WHERE order_id = ?1")?;
        let rows = statement.query_map([order_id], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
        rows.collect()
    }

    /// Adds a return's lines to what was returned, all or none.
    fn add_returned(&self, order_id: &str, lines: &[(String, i64, i64)]) -> Result<(), rusqlite::Error> {
        // The book is used one call at a time (under the endpoint's lock), so no other
        // transaction can be open on this connection.
        let tx = self.conn.unchecked_transaction()?;
        for (line, quantity, amount) in lines {
            tx.execute(
                "INSERT INTO pos_returned (order_id, line_id, quantity, amount) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(order_id, line_id) DO UPDATE SET quantity = quantity + ?3, amount = amount + ?4",
                params![order_id, line, quantity, amount],
            )?;
        }
        tx.commit()
    }

    /// The order most recently pushed and still open (not paid, not cancelled): what the till
    /// shows.
    pub fn open_order(&self) -> Result<Option<PosView>, PosError> {
        let last = self.last_saved.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT order_id FROM pos_order WHERE state NOT IN ('paid', 'cancelled')
                 ORDER BY at DESC, order_id = ?1 DESC LIMIT 1",
                [&last],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else { return Ok(None) };
        Ok(self.row(&id)?.map(|row| PosView {
            order_id: id,
            held: row.held(),
            order: row.order,
            state: row.state,
        }))
    }
}

/// The POS settings the calls need.
#[derive(Clone, Debug, Default)]
pub struct PosConfig {
    pub bonus_payment_type: String,
    /// Gift name → POS item code.
    pub gift_item_codes: std::collections::BTreeMap<String, String>,
}

/// The engine and the books behind the POS calls, one call at a time.
pub struct PosCore<'a> {
    pub backend: &'a mut dyn LoyaltyBackend,
    pub book: &'a PosBook,
    pub orders: &'a super::orders::OrderBook,
    pub config: &'a PosConfig,
    pub op_prefix: &'a str,
    pub now: UnixSeconds,
}

impl PosCore<'_> {
    fn op(&self, call: &str, what: &str) -> String {
        format!("{}-{what}-{call}", self.op_prefix)
    }

    /// Voids every hold of the order, each under its own operation id (the first keeps the
    /// id a single hold has always had).
    fn void_holds(&mut self, row: &mut Row, call: &str, what: &str) -> Result<(), PosError> {
        for (index, hold) in row.holds.iter().enumerate() {
            let op = if index == 0 {
                self.op(call, what)
            } else {
                self.op(call, &format!("{what}{index}"))
            };
            self.backend.void_hold(&op, hold.hold)?;
        }
        row.holds.clear();
        row.hold_lines = None;
        Ok(())
    }

    /// Holds whose time is over are voided (all of them: the check is paid with all its cards or
    /// none) before anything else looks at the order.
    fn expire(&mut self, row: &mut Row, call: &str) -> Result<(), PosError> {
        if row.state == ResultState::Held
            && let Some(expires) = row.expires()
            && expires <= self.now
        {
            self.void_holds(row, call, "expire")?;
            row.state = ResultState::Voided;
            row.result_revision += 1;
        }
        Ok(())
    }

    /// `PUT /pos/orders/{id}`.
    pub fn push(&mut self, order_id: &str, order: PosOrder, call: &str) -> Result<LoyaltyResult, PosError> {
        let mut row = match self.book.row(order_id)? {
            Some(row) => row,
            None => Row {
                order: order.clone(),
                state: ResultState::None,
                guest: None,
                holds: Vec::new(),
                hold_lines: None,
                result_revision: 0,
            },
        };
        if matches!(row.state, ResultState::Paid | ResultState::Cancelled) {
            return Err(PosError::Refused(if row.state == ResultState::Paid {
                PosRefusal::AlreadyPaid
            } else {
                PosRefusal::OrderClosed
            }));
        }
        self.expire(&mut row, call)?;
        if order.revision < row.order.revision {
            // An older revision changes nothing: the till's current state is the answer.
            return self.result(order_id, &row);
        }
        let changed = order != row.order || row.result_revision == 0;
        if row.state == ResultState::Held && row.hold_lines.as_deref() != Some(order.lines_key().as_str()) {
            self.void_holds(&mut row, call, "reopen")?;
            tracing::info!(order = %order_id, "POS: order reopened with other lines, holds voided");
            row.state = ResultState::Voided;
        }
        row.order = order;
        if changed {
            row.result_revision += 1;
        }
        self.book.save(order_id, &row, self.now)?;
        self.result(order_id, &row)
    }

    /// The guest on the order: the cashier's, else the one a waiter checked in.
    fn guest(&mut self, order_id: &str, row: &Row) -> Result<Option<GuestCard>, PosError> {
        let id = match row.guest {
            Some(id) => Some(id),
            None => self
                .orders
                .order(order_id)
                .map_err(LoyaltyError::from)?
                .and_then(|o| o.guest.map(|g| g.0)),
        };
        match id {
            Some(id) => Ok(Some(self.backend.guest_card(id)?)),
            None => Ok(None),
        }
    }

    fn result(&mut self, order_id: &str, row: &Row) -> Result<LoyaltyResult, PosError> {
        let card = self.guest(order_id, row)?;
        let gifts: Vec<GiftOut> = self
            .orders
            .order(order_id)
            .map_err(LoyaltyError::from)?
            .map(|o| o.gifts)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, gift)| match gift_item_code(&gift, &self.config.gift_item_codes) {
                Some(item) => Some(GiftOut {
                    gift_code: gift.code,
                    name: gift.name,
                    item_code: item,
                    points: gift.points.0,
                }),
                None => {
                    tracing::warn!(gift = %gift.name, "POS: no item code configured for this gift; it is left off the result");
                    None
                }
            })
            .collect();
        let (discount, bonus) = match &card {
            Some(card) => {
                let quote = self.backend.calculate(card.guest_id, &row.order.check_info())?;
                let discount = row.order.total.saturating_sub(quote.amount_due.0).max(0);
                // Several cards' holds are one bonus payment on the POS: their sum, until the
                // first of them runs out.
                let bonus = row.held().zip(row.expires()).map(|(amount, expires)| BonusPaymentOut {
                    payment_type_id: self.config.bonus_payment_type.clone(),
                    amount: amount.0,
                    maximum: quote.max_spend.0.max(amount.0),
                    hold_expires_at: expires,
                });
                (discount, bonus)
            }
            None => (0, None),
        };
        let state = match (row.state, &card) {
            (ResultState::None, Some(_)) => ResultState::Identified,
            (state, _) => state,
        };
        Ok(LoyaltyResult {
            order_revision: row.order.revision,
            result_revision: row.result_revision,
            state,
            guest: card.map(|c| GuestOut {
                name: c.name,
                phone_masked: c.phone_masked,
                balance: c.balance.0,
                available: c.available.0,
            }),
            discount,
            gifts,
            bonus_payment: bonus,
        })
    }

    /// `GET /pos/orders/{id}`.
    pub fn get(&mut self, order_id: &str) -> Result<LoyaltyResult, PosError> {
        let mut row = self
            .book
            .row(order_id)?
            .ok_or(PosError::Refused(PosRefusal::UnknownOrder))?;
        let before = row.result_revision;
        self.expire(&mut row, "get")?;
        if row.result_revision != before {
            self.book.save(order_id, &row, self.now)?;
        }
        self.result(order_id, &row)
    }

    /// The cashier confirmed on the till: the guest is bound to the POS order and, with an
    /// amount, bonuses are held for it until the POS reports the check paid.
    pub fn confirm(
        &mut self,
        order_id: &str,
        guest: GuestId,
        amount: Kopecks,
        call: &str,
    ) -> Result<LoyaltyResult, PosError> {
        self.confirm_shared(order_id, guest, &[CardShare { guest, amount }], call)
    }

    /// The cashier confirmed on the till with one card or several («Добавить карту»): the owner
    /// is bound to the POS order and each card's amount is held on its account, all or none,
    /// until the POS reports the check paid (one bonus payment for their sum).
    pub fn confirm_shared(
        &mut self,
        order_id: &str,
        owner: GuestId,
        shares: &[CardShare],
        call: &str,
    ) -> Result<LoyaltyResult, PosError> {
        let mut row = self
            .book
            .row(order_id)?
            .ok_or(PosError::Refused(PosRefusal::UnknownOrder))?;
        match row.state {
            ResultState::Paid => return Err(PosError::Refused(PosRefusal::AlreadyPaid)),
            ResultState::Cancelled => return Err(PosError::Refused(PosRefusal::OrderClosed)),
            _ => {}
        }
        self.void_holds(&mut row, call, "replace")?;
        row.guest = Some(owner);
        row.state = ResultState::Identified;
        let check = row.order.check_info();
        let op = self.op(call, "hold");
        let receipts = match shares {
            // One card: an ordinary hold, under the id it has always had.
            [only] if only.guest == owner => match only.amount {
                amount if amount > Kopecks::ZERO => vec![Some(self.backend.hold(&op, owner, amount, &check)?)],
                _ => Vec::new(),
            },
            _ => self.backend.hold_shared(&op, owner, shares, &check)?,
        };
        row.holds = shares
            .iter()
            .zip(receipts)
            .filter_map(|(share, receipt)| {
                receipt.map(|r| PosHold {
                    guest: share.guest,
                    hold: r.hold_id,
                    amount: r.amount,
                    expires: r.expires_at,
                })
            })
            .collect();
        if !row.holds.is_empty() {
            row.hold_lines = Some(row.order.lines_key());
            row.state = ResultState::Held;
        }
        row.result_revision += 1;
        self.book.save(order_id, &row, self.now)?;
        self.result(order_id, &row)
    }

    /// `POST /pos/orders/{id}/paid`: commits the hold (for the bonus payment's amount, never
    /// more) and accrues on the rest, through the engine.
    pub fn paid(&mut self, order_id: &str, paid: &PaidIn, call: &str) -> Result<PaidOut, PosError> {
        let mut row = self
            .book
            .row(order_id)?
            .ok_or(PosError::Refused(PosRefusal::UnknownOrder))?;
        match row.state {
            ResultState::Paid => return Err(PosError::Refused(PosRefusal::AlreadyPaid)),
            ResultState::Cancelled => return Err(PosError::Refused(PosRefusal::OrderClosed)),
            _ => {}
        }
        self.expire(&mut row, call)?;
        let bonus: i64 = paid
            .payments
            .iter()
            .filter(|p| p.payment_type_id.eq_ignore_ascii_case(&self.config.bonus_payment_type))
            .map(|p| p.amount)
            .sum();
        if row.state == ResultState::Voided && bonus > 0 {
            self.book.save(order_id, &row, self.now)?;
            return Err(PosError::Refused(PosRefusal::HoldVoid));
        }
        if paid.order_revision != row.order.revision {
            return Err(PosError::Refused(PosRefusal::RevisionMismatch));
        }
        match row.held() {
            Some(held) if bonus > held.0 => return Err(PosError::Refused(PosRefusal::OverHold)),
            None if bonus > 0 => return Err(PosError::Refused(PosRefusal::HoldVoid)),
            _ => {}
        }
        let Some(card) = self.guest(order_id, &row)? else {
            if bonus > 0 {
                return Err(PosError::Refused(PosRefusal::NoGuest));
            }
            // A check without a loyalty guest: closed, nothing for the engine to do.
            row.state = ResultState::Paid;
            row.result_revision += 1;
            self.book.save(order_id, &row, self.now)?;
            self.book.record_paid(order_id, None, self.now)?;
            return Ok(PaidOut {
                spent: 0,
                accrued: 0,
                balance: 0,
                gifts_redeemed: Vec::new(),
            });
        };
        let check = row.order.check_info();
        let payment_op = self.op(call, "paid");
        let owner = card.guest_id;
        let (spent, accrued, balance) = match row.holds.as_slice() {
            // No hold, or the owner's one: an ordinary payment.
            holds if holds.len() <= 1 && holds.iter().all(|h| h.guest == owner) => {
                let hold = row.holds.first().map(|h| h.hold);
                let receipt = self
                    .backend
                    .commit_payment(&payment_op, owner, hold, Kopecks(bonus), &check)?;
                (receipt.spent, receipt.accrued, receipt.balance_after)
            }
            holds => {
                let payments = shared_payments(owner, holds, Kopecks(bonus));
                let receipts = self.backend.commit_shared(&payment_op, owner, &payments, &check)?;
                let owner_at = payments.iter().position(|p| p.guest == owner).unwrap_or(0);
                let sum = |of: fn(&crate::domain::PaymentReceipt) -> Kopecks| {
                    receipts.iter().fold(Kopecks::ZERO, |total, r| total + of(r))
                };
                let balance = receipts.get(owner_at).map_or(Kopecks::ZERO, |r| r.balance_after);
                (sum(|r| r.spent), sum(|r| r.accrued), balance)
            }
        };
        row.state = ResultState::Paid;
        row.result_revision += 1;
        self.book.save(order_id, &row, self.now)?;
        self.book.record_paid(order_id, Some(&payment_op), self.now)?;
        Ok(PaidOut {
            spent: spent.0,
            accrued: accrued.0,
            balance: balance.0,
            gifts_redeemed: check.gift_codes,
        })
    }

    /// `POST /pos/orders/{id}/returns`: lines of the paid check returned on the POS. Each line
    /// may come back in parts, never more than its quantity and amount on the check; the sum of
    /// the returned amounts is refunded through the engine on the order's payment, which gives
    /// back that share of the bonuses spent and takes back that share of the accrual. The
    /// engine's operation id is made from the order and the call id alone, so a repeat after a
    /// restart (or after an answer that was lost) refunds nothing twice.
    pub fn returned(&mut self, order_id: &str, returned: &ReturnIn, call: &str) -> Result<ReturnOut, PosError> {
        let row = self
            .book
            .row(order_id)?
            .ok_or(PosError::Refused(PosRefusal::UnknownOrder))?;
        if row.state != ResultState::Paid {
            return Err(PosError::Refused(PosRefusal::NotPaid));
        }
        let payment_op = self
            .book
            .paid_op(order_id)?
            .ok_or(PosError::Refused(PosRefusal::PaymentNotRecorded))?;
        // This return's lines, one entry per line, checked against the check and what was
        // returned of it before.
        let mut lines: Vec<(String, i64, i64)> = Vec::new();
        for line in &returned.lines {
            match lines.iter_mut().find(|(id, ..)| *id == line.line_id) {
                Some(entry) => {
                    entry.1 = entry.1.saturating_add(line.quantity);
                    entry.2 = entry.2.saturating_add(line.amount);
                }
                None => lines.push((line.line_id.clone(), line.quantity, line.amount)),
            }
        }
        let before = self.book.returned(order_id)?;
        for (id, quantity, amount) in &lines {
            let Some(paid) = row.order.lines.iter().find(|l| l.line_id == *id) else {
                return Err(PosError::Refused(PosRefusal::OverReturn));
            };
            let (q0, a0) = before.get(id).copied().unwrap_or((0, 0));
            if q0.saturating_add(*quantity) > paid.quantity || a0.saturating_add(*amount) > paid.amount {
                return Err(PosError::Refused(PosRefusal::OverReturn));
            }
        }
        let requested: i64 = lines.iter().map(|(_, _, amount)| *amount).sum();
        let out = match payment_op {
            Some(payment_op) if requested > 0 => {
                let op = return_op_id(order_id, call);
                match self
                    .backend
                    .refund(&op, &payment_op, &crate::domain::ReturnPart::Amount(Kopecks(requested)))
                {
                    Ok(receipt) => ReturnOut {
                        bonuses_back: receipt.spend_returned.0,
                        accrual_taken_back: receipt.accrual_taken.0,
                        not_recovered: receipt.unrecovered.0,
                        balance: receipt.balance_after.0,
                        fully_returned: receipt.full,
                    },
                    Err(LoyaltyError::RefundOverPayment { .. }) => {
                        return Err(PosError::Refused(PosRefusal::OverReturn));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            // Nothing to reverse: a check without a loyalty guest, or lines returned for free.
            _ => ReturnOut {
                bonuses_back: 0,
                accrual_taken_back: 0,
                not_recovered: 0,
                balance: self.guest(order_id, &row)?.map(|card| card.balance.0).unwrap_or(0),
                fully_returned: false,
            },
        };
        self.book.add_returned(order_id, &lines)?;
        Ok(out)
    }

    /// `POST /pos/orders/{id}/cancel`: voids any hold.
    pub fn cancel(&mut self, order_id: &str, call: &str) -> Result<LoyaltyResult, PosError> {
        let mut row = self
            .book
            .row(order_id)?
            .ok_or(PosError::Refused(PosRefusal::UnknownOrder))?;
        if row.state == ResultState::Paid {
            return Err(PosError::Refused(PosRefusal::AlreadyPaid));
        }
        self.void_holds(&mut row, call, "cancel")?;
        if row.state != ResultState::Cancelled {
            row.state = ResultState::Cancelled;
            row.result_revision += 1;
        }
        self.book.save(order_id, &row, self.now)?;
        self.result(order_id, &row)
    }
}

/// Each card's part of a check paid with several cards: the POS pays one bonus amount, at most
/// their holds' sum; it is taken from the holds in the order the cards were presented (a POS
/// paying less than was held leaves the last cards' bonuses). The owner takes part even with
/// nothing held, as the accrual's account.
fn shared_payments(owner: GuestId, holds: &[PosHold], bonus: Kopecks) -> Vec<CardPayment> {
    let mut left = bonus;
    let mut payments: Vec<CardPayment> = holds
        .iter()
        .map(|h| {
            let spent = h.amount.min(left);
            left = left - spent;
            CardPayment {
                guest: h.guest,
                hold: Some(h.hold),
                spent,
            }
        })
        .collect();
    if !payments.iter().any(|p| p.guest == owner) {
        payments.insert(
            0,
            CardPayment {
                guest: owner,
                hold: None,
                spent: Kopecks::ZERO,
            },
        );
    }
    payments
}

/// The engine's operation id of a POS return: the same for the same order and call id in every
/// run of the till, and short enough for the loyalty server's limit (64).
fn return_op_id(order_id: &str, call: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{order_id}\n{call}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("pos-return-{hex}")
}

/// What the till's screen learns of the POS: the endpoint writes the open order here and wakes
/// the UI only when it changed, so an idle till stays idle.
/// The cashier's confirmation on the till, carried out by the endpoint on its engine:
/// `(order id, the check's owner, each card's bonuses to hold, call id)`.
pub type ConfirmFn = Box<dyn Fn(&str, GuestId, &[CardShare], &str) -> Result<LoyaltyResult, PosError> + Send>;

#[derive(Default)]
pub struct PosFeed {
    current: Mutex<Option<PosView>>,
    waker: Mutex<Option<Box<dyn Fn() + Send>>>,
    confirm: Mutex<Option<ConfirmFn>>,
    /// Counts the changes of the POS book (a POS call, the cashier's confirmation): a long poll
    /// of the loyalty result sleeps on it instead of polling the book.
    changes: tokio::sync::watch::Sender<u64>,
}

impl PosFeed {
    pub fn new() -> Arc<PosFeed> {
        Arc::new(PosFeed::default())
    }

    pub fn set_waker(&self, waker: Box<dyn Fn() + Send>) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker);
    }

    /// A receiver that sees every change of the POS book from now on.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Publishes the open order after the POS book may have changed: wakes the long polls of
    /// the loyalty result always, the UI only when the open order changed.
    pub fn publish(&self, view: Option<PosView>) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if *current == view {
            return;
        }
        *current = view;
        drop(current);
        if let Some(wake) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            wake();
        }
    }

    pub fn set_confirm(&self, confirm: ConfirmFn) {
        *self.confirm.lock().unwrap_or_else(|p| p.into_inner()) = Some(confirm);
    }

    /// The cashier confirmed a guest (and bonuses to hold) for the POS order: see
    /// [`PosFeed::confirm_shared`].
    pub fn confirm(
        &self,
        order_id: &str,
        guest: GuestId,
        amount: Kopecks,
        call: &str,
    ) -> Option<Result<LoyaltyResult, PosError>> {
        self.confirm_shared(order_id, guest, &[CardShare { guest, amount }], call)
    }

    /// The cashier confirmed a guest, or several cards with the check's owner, and the bonuses
    /// to hold on each, for the POS order. Blocking: call it from the worker, never from the UI
    /// thread. `None` when no POS endpoint runs.
    pub fn confirm_shared(
        &self,
        order_id: &str,
        owner: GuestId,
        shares: &[CardShare],
        call: &str,
    ) -> Option<Result<LoyaltyResult, PosError>> {
        let confirm = self.confirm.lock().unwrap_or_else(|p| p.into_inner());
        confirm.as_ref().map(|f| f(order_id, owner, shares, call))
    }

    pub fn current(&self) -> Option<PosView> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The till's one feed: the endpoint (started before the window) and the screen (built with the
/// window) both reach it here.
pub fn shared_feed() -> Arc<PosFeed> {
    static FEED: std::sync::OnceLock<Arc<PosFeed>> = std::sync::OnceLock::new();
    Arc::clone(FEED.get_or_init(PosFeed::new))
}

/// The POS item a gift is rung up as: the one the back office's gift catalogue names for the
/// code's gift, else (a code issued before the catalogue) the one `[handhelds] gift_item_codes`
/// configures for its name.
fn gift_item_code(
    gift: &crate::domain::Gift,
    configured: &std::collections::BTreeMap<String, String>,
) -> Option<String> {
    gift.pos_code.clone().or_else(|| configured.get(&gift.name).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A book written before the holds' list keeps its order's one hold: read as the guest's,
    /// and saved again in the list.
    #[test]
    fn an_order_held_before_the_holds_list_keeps_its_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handhelds.sqlite");
        let order = PosOrder {
            revision: 1,
            number: "7".to_string(),
            table: None,
            status: PosStatus::Open,
            lines: Vec::new(),
            total: 100_000,
        };
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE pos_order (order_id TEXT PRIMARY KEY, body TEXT NOT NULL, state TEXT NOT NULL,
                 guest_id INTEGER, hold_id INTEGER, hold_amount INTEGER, hold_expires INTEGER, hold_lines TEXT,
                 result_revision INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID",
        )
        .unwrap();
        old.execute(
            "INSERT INTO pos_order VALUES ('o1', ?1, 'held', 5, 41, 10000, 2000, '[]', 2, 1000)",
            [serde_json::to_string(&order).unwrap()],
        )
        .unwrap();
        drop(old);

        let book = PosBook::open(&path).unwrap();
        let row = book.row("o1").unwrap().unwrap();
        let held = PosHold {
            guest: 5,
            hold: 41,
            amount: Kopecks(10_000),
            expires: 2_000,
        };
        assert_eq!(row.holds, std::slice::from_ref(&held));
        assert_eq!((row.held(), row.expires()), (Some(Kopecks(10_000)), Some(2_000)));
        book.save("o1", &row, 1_500).unwrap();
        assert_eq!(book.row("o1").unwrap().unwrap().holds, [held]);
    }

    #[test]
    fn a_gift_is_rung_up_by_its_catalogue_code_else_the_configured_one() {
        let configured = std::collections::BTreeMap::from([("Капучино".to_string(), "cfg-1".to_string())]);
        let gift = |pos_code: Option<&str>| crate::domain::Gift {
            code: "G1".to_string(),
            name: "Капучино".to_string(),
            points: crate::money::Kopecks(15_000),
            pos_code: pos_code.map(str::to_string),
        };
        assert_eq!(
            gift_item_code(&gift(Some("1001")), &configured).as_deref(),
            Some("1001")
        );
        assert_eq!(gift_item_code(&gift(None), &configured).as_deref(), Some("cfg-1"));
        assert_eq!(gift_item_code(&gift(None), &Default::default()), None);
    }
}
