//! The embedded loyalty ledger: one SQLite file on the till.
//!
//! Every balance change is a row in `operations`, and the guest's stored balance is updated in
//! the same transaction, so [`Ledger::check_invariants`] can prove that the two agree. Spending
//! is two-phase: [`Ledger::hold`] reserves bonuses, [`Ledger::commit_payment`] debits them
//! (possibly fewer) and accrues. Every write carries the till's operation id and returns the
//! first result when repeated. Writes run in IMMEDIATE transactions: the write lock is taken
//! before anything is read, so two tills sharing the file cannot both pass the same limit check.
//!
//! The engine never reads a clock: `now` comes with every call. Holds whose time is up count
//! as released in every query even before [`Ledger::expire_holds`] marks them.

mod demo;

use crate::domain::{
    BasisPoints, CheckInfo, Gift, GroupInfo, GuestCard, GuestId, HistoryEntry, HoldId, HoldReceipt, Identification,
    IdentifierKind, LoyaltyError, MAX_CODE_LEN, PaymentReceipt, Promotion, RefundReceipt, ScanKind, SpendLimit,
    SpendLimitKind, SpendQuote, StampProgress, UnixSeconds,
};
use crate::mask::mask_phone;
use crate::money::Kopecks;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = include_str!("schema.sql");
/// Organisations and refunds.
const SCHEMA_V2: &str = include_str!("schema_v2.sql");
/// Payments taken offline.
const SCHEMA_V3: &str = include_str!("schema_v3.sql");
const SCHEMA_VERSION: i64 = 3;
/// The organisation of guests created without one (the embedded till, the demo).
pub const DEFAULT_ORG: &str = "default";
/// Long enough to wait out another till's write, short enough to report a stuck file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const SECONDS_PER_DAY: i64 = 86_400;

/// SQLite's own messages name tables and constraints, never the bound values, so they carry no
/// phone numbers or codes and can be shown as they are.
impl From<rusqlite::Error> for LoyaltyError {
    fn from(error: rusqlite::Error) -> Self {
        LoyaltyError::Storage(error.to_string())
    }
}

/// The programme-wide rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSettings {
    pub name: String,
    /// The largest share of the amount due that may be paid with bonuses.
    pub max_check_bp: BasisPoints,
    /// Bonuses are spent in multiples of this.
    pub spend_step: Kopecks,
    pub hold_ttl_secs: i64,
    /// The window of spending that decides the guest's group.
    pub group_period_days: i64,
    /// The cafe's offset from UTC: daily limits reset at local midnight.
    pub utc_offset_minutes: i64,
}

/// A client group as the back office defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGroup {
    pub name: String,
    /// Higher ranks are better; groups of rank 0 or below are assigned by hand only.
    pub rank: i64,
    pub discount_bp: BasisPoints,
    pub accrual_bp: BasisPoints,
    /// Spending within the group period that qualifies for the group.
    pub spend_threshold: Kopecks,
    pub never_downgrade: bool,
    /// Identifications per local day; 0 = no limit.
    pub daily_ops_limit: i64,
    /// Bonuses spent per local day; 0 = no limit.
    pub daily_spend_limit: Kopecks,
}

/// A stored group with its id.
pub(crate) struct Group {
    pub(crate) id: i64,
    pub(crate) rules: NewGroup,
}

impl Group {
    pub(crate) fn info(&self) -> GroupInfo {
        GroupInfo {
            id: self.id,
            name: self.rules.name.clone(),
            discount_bp: self.rules.discount_bp,
            accrual_bp: self.rules.accrual_bp,
        }
    }

    /// The check total after the group discount.
    pub(crate) fn amount_due(&self, subtotal: Kopecks) -> Kopecks {
        subtotal - subtotal.percent_floor(self.rules.discount_bp)
    }
}

/// The kinds of balance change, as the history shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpKind {
    Accrual,
    Spend,
    ManualCredit,
    ManualDebit,
    /// Bonuses spent on a returned part of a check, given back.
    RefundSpend,
    /// The accrual on a returned part of a check, taken back.
    RefundAccrual,
}

impl OpKind {
    fn as_str(self) -> &'static str {
        match self {
            OpKind::Accrual => "accrual",
            OpKind::Spend => "spend",
            OpKind::ManualCredit => "manual_credit",
            OpKind::ManualDebit => "manual_debit",
            OpKind::RefundSpend => "refund_spend",
            OpKind::RefundAccrual => "refund_accrual",
        }
    }

    /// Callers pass positive amounts; the kind decides the sign stored in the ledger.
    fn signed(self, amount: Kopecks) -> Kopecks {
        match self {
            OpKind::Accrual | OpKind::ManualCredit | OpKind::RefundSpend => amount,
            OpKind::Spend | OpKind::ManualDebit | OpKind::RefundAccrual => Kopecks(-amount.0),
        }
    }
}

/// One balance change to record.
struct Posting<'a> {
    guest: GuestId,
    kind: OpKind,
    /// Positive; see [`OpKind::signed`].
    amount: Kopecks,
    note: &'a str,
    at: UnixSeconds,
    op_id: Option<&'a str>,
    payment_id: Option<i64>,
    refund_id: Option<i64>,
}

/// What identifies a payment request, compared when an op_id is repeated.
#[derive(PartialEq, Eq)]
struct PaymentRequest {
    guest: GuestId,
    hold: Option<HoldId>,
    spent: Kopecks,
    subtotal: Kopecks,
    /// JSON array, as stored.
    gift_codes: String,
}

/// A code resolved to its guest.
struct CodeMatch {
    guest: GuestId,
    gift: Option<Gift>,
    /// What matched, recorded with the identification.
    via: String,
}

pub struct Ledger {
    conn: Connection,
}

impl Ledger {
    /// Opens or creates the ledger file (and its folder).
    pub fn open(path: &Path) -> Result<Ledger, LoyaltyError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LoyaltyError::Storage(format!("cannot create the ledger folder: {e}")))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: the UI keeps reading while another till writes, and a crash mid-write loses nothing.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LoyaltyError::Storage(format!(
                "the ledger file refused WAL mode ({mode})"
            )));
        }
        Self::init(conn)
    }

    /// A throw-away ledger for unit tests.
    pub fn open_in_memory() -> Result<Ledger, LoyaltyError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Ledger, LoyaltyError> {
        // FULL: a payment the cashier saw confirmed must survive a power cut.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let mut ledger = Ledger { conn };
        ledger.migrate()?;
        Ok(ledger)
    }

    fn migrate(&mut self) -> Result<(), LoyaltyError> {
        self.write(|tx| {
            // Read inside the write lock: two tills opening a new file create the schema once.
            let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            match version {
                0..=2 => {
                    // Each step once, in order, in this one transaction.
                    let steps = [SCHEMA, SCHEMA_V2, SCHEMA_V3];
                    for step in &steps[usize::try_from(version).unwrap_or(0)..] {
                        tx.execute_batch(step)?;
                    }
                    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                    Ok(())
                }
                SCHEMA_VERSION => Ok(()),
                other => Err(LoyaltyError::Storage(format!(
                    "the ledger file has schema version {other}, this till knows {SCHEMA_VERSION}"
                ))),
            }
        })
    }

    /// Runs `work` in an IMMEDIATE transaction: committed when it returns Ok, rolled back
    /// (by dropping the transaction) when it returns an error.
    fn write<T>(&mut self, work: impl FnOnce(&Transaction<'_>) -> Result<T, LoyaltyError>) -> Result<T, LoyaltyError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// True when there are no guests.
    pub fn is_empty(&self) -> Result<bool, LoyaltyError> {
        has_no_guests(&self.conn)
    }

    // ----- Cashier operations -----

    /// Resolves a scanned or typed code to a guest card (and a gift for gift codes), within the
    /// guest group's daily operations limit.
    pub fn identify(
        &mut self,
        payload: &str,
        kind: ScanKind,
        now: UnixSeconds,
    ) -> Result<Identification, LoyaltyError> {
        self.identify_in_org(payload, kind, None, now)
    }

    /// [`Ledger::identify`] seen from one organisation (`None`: every guest): another
    /// organisation's guest is an unknown code, and is not counted.
    pub fn identify_in_org(
        &mut self,
        payload: &str,
        kind: ScanKind,
        org: Option<&str>,
        now: UnixSeconds,
    ) -> Result<Identification, LoyaltyError> {
        let code = valid_code(payload)?;
        self.write(|tx| {
            let found = resolve_code(tx, code, kind)?;
            if let Some(org) = org
                && guest_org_of(tx, found.guest)? != org
            {
                return Err(LoyaltyError::UnknownCode);
            }
            enforce_daily_ops(tx, found.guest, now)?;
            tx.execute(
                "INSERT INTO identifications (guest_id, via, at) VALUES (?1, ?2, ?3)",
                params![found.guest, found.via, now],
            )?;
            Ok(Identification {
                card: load_card(tx, found.guest, now)?,
                gift: found.gift,
            })
        })
    }

    pub fn guest_card(&self, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, LoyaltyError> {
        load_card(&self.conn, guest, now)
    }

    /// The most the guest may pay with bonuses on this check, with every limit considered.
    pub fn calculate(&self, guest: GuestId, check: &CheckInfo, now: UnixSeconds) -> Result<SpendQuote, LoyaltyError> {
        quote(&self.conn, guest, check, now)
    }

    /// Reserves `amount` bonuses for the check. Idempotent by `op_id`.
    pub fn hold(
        &mut self,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<HoldReceipt, LoyaltyError> {
        self.write(|tx| {
            if let Some((first_guest, receipt)) = hold_by_op_id(tx, op_id)? {
                return if first_guest == guest && receipt.amount == amount {
                    Ok(receipt)
                } else {
                    Err(LoyaltyError::OperationIdConflict)
                };
            }
            if amount <= Kopecks::ZERO {
                return Err(LoyaltyError::NonPositiveAmount);
            }
            let program = load_program(tx)?;
            ensure_step(amount, program.spend_step)?;
            expire_open_holds(tx, now)?;
            let max = quote(tx, guest, check, now)?.max_spend;
            if amount > max {
                return Err(LoyaltyError::OverMaximum { requested: amount, max });
            }
            let expires_at = now + program.hold_ttl_secs;
            tx.execute(
                "INSERT INTO holds (op_id, guest_id, amount, status, created_at, expires_at)
                 VALUES (?1, ?2, ?3, 'open', ?4, ?5)",
                params![op_id, guest, amount.0, now, expires_at],
            )?;
            Ok(HoldReceipt {
                hold_id: tx.last_insert_rowid(),
                amount,
                expires_at,
            })
        })
    }

    /// Closes a paid check: debits `spent` from the hold (releasing the rest), accrues on the
    /// part not paid with bonuses, redeems the check's gift codes, adds stamps, records the
    /// visit and moves the guest between groups. All or nothing; idempotent by `op_id`.
    pub fn commit_payment(
        &mut self,
        op_id: &str,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        let request = PaymentRequest {
            guest,
            hold,
            spent,
            subtotal: check.subtotal,
            gift_codes: serde_json::to_string(&check.gift_codes).map_err(|e| LoyaltyError::Storage(e.to_string()))?,
        };
        self.write(|tx| {
            if let Some((first, receipt)) = payment_by_op_id(tx, op_id)? {
                return if first == request {
                    Ok(receipt)
                } else {
                    Err(LoyaltyError::OperationIdConflict)
                };
            }
            if spent < Kopecks::ZERO || check.subtotal < Kopecks::ZERO {
                return Err(LoyaltyError::NonPositiveAmount);
            }
            let program = load_program(tx)?;
            ensure_step(spent, program.spend_step)?;
            expire_open_holds(tx, now)?;
            match hold {
                Some(hold) => settle_hold(tx, hold, guest, spent, now)?,
                None if spent > Kopecks::ZERO => {
                    return Err(LoyaltyError::OverMaximum {
                        requested: spent,
                        max: Kopecks::ZERO,
                    });
                }
                None => {}
            }
            record_payment(tx, op_id, &request, &check.gift_codes, &program, now)
        })
    }

    /// A check a till closed while the server was away, paying `requested` with bonuses (the owner
    /// allows it, with caps the till enforces). The guest is debited what they still have, at
    /// most the amount due: the receipt's `spent` may be less than `requested`. Accrues, redeems
    /// and moves groups like [`Ledger::commit_payment`]. Idempotent by `op_id`.
    pub fn commit_offline_payment(
        &mut self,
        op_id: &str,
        guest: GuestId,
        requested: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        let gift_codes = serde_json::to_string(&check.gift_codes).map_err(|e| LoyaltyError::Storage(e.to_string()))?;
        self.write(|tx| {
            if let Some((first, receipt)) = payment_by_op_id(tx, op_id)? {
                let first_requested: Option<i64> = tx.query_row(
                    "SELECT offline_requested FROM payments WHERE op_id = ?1",
                    [op_id],
                    |row| row.get(0),
                )?;
                let same = first.guest == guest
                    && first.hold.is_none()
                    && first.subtotal == check.subtotal
                    && first.gift_codes == gift_codes
                    && first_requested == Some(requested.0);
                return if same {
                    Ok(receipt)
                } else {
                    Err(LoyaltyError::OperationIdConflict)
                };
            }
            if requested < Kopecks::ZERO || check.subtotal < Kopecks::ZERO {
                return Err(LoyaltyError::NonPositiveAmount);
            }
            let program = load_program(tx)?;
            expire_open_holds(tx, now)?;
            let due = guest_group(tx, guest)?.amount_due(check.subtotal);
            let spent = offline_take(requested, available(tx, guest, now)?, due);
            let request = PaymentRequest {
                guest,
                hold: None,
                spent,
                subtotal: check.subtotal,
                gift_codes: gift_codes.clone(),
            };
            let receipt = record_payment(tx, op_id, &request, &check.gift_codes, &program, now)?;
            tx.execute(
                "UPDATE payments SET offline_requested = ?2 WHERE op_id = ?1",
                params![op_id, requested.0],
            )?;
            Ok(receipt)
        })
    }

    /// Releases an open hold. Voiding a voided or expired hold succeeds; a committed one does not.
    pub fn void_hold(&mut self, op_id: &str, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError> {
        self.write(|tx| {
            let voided: Option<HoldId> = tx
                .query_row("SELECT hold_id FROM hold_voids WHERE op_id = ?1", [op_id], |row| {
                    row.get(0)
                })
                .optional()?;
            match voided {
                Some(first) if first == hold => return Ok(()),
                Some(_) => return Err(LoyaltyError::OperationIdConflict),
                None => {}
            }
            expire_open_holds(tx, now)?;
            match hold_status(tx, hold)?.as_str() {
                "open" => {
                    tx.execute(
                        "UPDATE holds SET status = 'voided', closed_at = ?2 WHERE id = ?1",
                        params![hold, now],
                    )?;
                }
                "voided" | "expired" => {}
                other => {
                    return Err(LoyaltyError::HoldNotOpen {
                        status: other.to_string(),
                    });
                }
            }
            tx.execute(
                "INSERT INTO hold_voids (op_id, hold_id, at) VALUES (?1, ?2, ?3)",
                params![op_id, hold, now],
            )?;
            Ok(())
        })
    }

    /// Marks open holds whose time is up as expired; returns how many.
    pub fn expire_holds(&mut self, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        self.write(|tx| expire_open_holds(tx, now))
    }

    // ----- Back office -----

    /// Adds bonuses by hand; returns the balance after. Idempotent by `op_id`.
    pub fn credit(
        &mut self,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        self.write(|tx| manual_operation(tx, op_id, guest, OpKind::ManualCredit, amount, note, now))
    }

    /// Removes bonuses by hand, never more than are available; returns the balance after.
    pub fn debit(
        &mut self,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        self.write(|tx| manual_operation(tx, op_id, guest, OpKind::ManualDebit, amount, note, now))
    }

    /// Returns part (`Some(amount)` of the amount due) or all that is left (`None`) of the check
    /// paid with `payment_op_id`: the bonuses spent on the returned part come back and the
    /// accrual on it is taken back, never below what is available (the rest is reported as
    /// unrecovered). Idempotent by `op_id`.
    pub fn refund(
        &mut self,
        op_id: &str,
        payment_op_id: &str,
        amount: Option<Kopecks>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        self.write(|tx| refund_payment(tx, op_id, payment_op_id, amount, now))
    }

    /// The guest's gift codes not yet redeemed (codes masked), oldest first.
    pub fn gifts(&self, guest: GuestId) -> Result<Vec<Gift>, LoyaltyError> {
        let mut stmt = self.conn.prepare(
            "SELECT code, gift_name, points FROM gift_codes WHERE guest_id = ?1 AND redeemed_at IS NULL ORDER BY rowid",
        )?;
        let rows = stmt.query_map([guest], |row| {
            Ok(Gift {
                code: crate::mask::mask_code(&row.get::<_, String>(0)?),
                name: row.get(1)?,
                points: Kopecks(row.get(2)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The organisation the guest belongs to.
    pub fn guest_org(&self, guest: GuestId) -> Result<String, LoyaltyError> {
        guest_org_of(&self.conn, guest)
    }

    /// Moves a guest to an organisation (the back office of a chain).
    pub fn set_guest_org(&mut self, guest: GuestId, org: &str) -> Result<(), LoyaltyError> {
        self.write(|tx| {
            let changed = tx.execute("UPDATE guests SET org = ?2 WHERE id = ?1", params![guest, org])?;
            if changed == 1 {
                Ok(())
            } else {
                Err(LoyaltyError::UnknownCode)
            }
        })
    }

    /// The guest a hold belongs to.
    pub fn hold_guest(&self, hold: HoldId) -> Result<GuestId, LoyaltyError> {
        self.conn
            .query_row("SELECT guest_id FROM holds WHERE id = ?1", [hold], |row| row.get(0))
            .optional()?
            .ok_or(LoyaltyError::UnknownHold)
    }

    /// The guest of the payment made with `op_id`.
    pub fn payment_guest(&self, op_id: &str) -> Result<GuestId, LoyaltyError> {
        self.conn
            .query_row("SELECT guest_id FROM payments WHERE op_id = ?1", [op_id], |row| {
                row.get(0)
            })
            .optional()?
            .ok_or(LoyaltyError::UnknownPayment)
    }

    /// The guest's operations, newest first.
    pub fn history(&self, guest: GuestId, limit: usize) -> Result<Vec<HistoryEntry>, LoyaltyError> {
        let mut stmt = self.conn.prepare(
            "SELECT at, kind, amount, balance_after, note FROM operations
             WHERE guest_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![guest, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok(HistoryEntry {
                at: row.get(0)?,
                kind: row.get(1)?,
                amount: Kopecks(row.get(2)?),
                balance_after: Kopecks(row.get(3)?),
                note: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Holds with status 'open', of one guest or of everyone, oldest first.
    pub fn open_holds(&self, guest: Option<GuestId>) -> Result<Vec<HoldReceipt>, LoyaltyError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, amount, expires_at FROM holds
             WHERE status = 'open' AND (?1 IS NULL OR guest_id = ?1) ORDER BY id",
        )?;
        let rows = stmt.query_map([guest], |row| {
            Ok(HoldReceipt {
                hold_id: row.get(0)?,
                amount: Kopecks(row.get(1)?),
                expires_at: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Voids every open hold of the guest (Quick Resto's "reset holds"); returns how many.
    pub fn reset_holds(&mut self, guest: GuestId, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        self.write(|tx| {
            expire_open_holds(tx, now)?;
            Ok(tx.execute(
                "UPDATE holds SET status = 'voided', closed_at = ?2 WHERE guest_id = ?1 AND status = 'open'",
                params![guest, now],
            )?)
        })
    }

    // ----- Administration -----

    pub fn set_program(&mut self, program: &ProgramSettings) -> Result<(), LoyaltyError> {
        self.write(|tx| save_program(tx, program))
    }

    pub fn program(&self) -> Result<ProgramSettings, LoyaltyError> {
        load_program(&self.conn)
    }

    pub fn add_group(&mut self, group: &NewGroup) -> Result<i64, LoyaltyError> {
        self.write(|tx| insert_group(tx, group))
    }

    /// Adds a guest; a phone is stored normalised (`+7XXXXXXXXXX`) and becomes an identifier.
    pub fn add_guest(
        &mut self,
        name: &str,
        phone: Option<&str>,
        group_id: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        self.write(|tx| insert_guest(tx, name, phone, group_id, now))
    }

    pub fn add_identifier(&mut self, guest: GuestId, kind: IdentifierKind, value: &str) -> Result<(), LoyaltyError> {
        self.write(|tx| insert_identifier(tx, guest, kind, value))
    }

    pub fn add_gift_code(
        &mut self,
        code: &str,
        guest: GuestId,
        gift_name: &str,
        points: Kopecks,
    ) -> Result<(), LoyaltyError> {
        self.write(|tx| insert_gift_code(tx, code, guest, gift_name, points))
    }

    pub fn add_stamp_card(&mut self, name: &str, needed: i64, reward: &str) -> Result<i64, LoyaltyError> {
        self.write(|tx| insert_stamp_card(tx, name, needed, reward))
    }

    pub fn set_stamps(&mut self, guest: GuestId, card_id: i64, collected: i64) -> Result<(), LoyaltyError> {
        self.write(|tx| save_stamps(tx, guest, card_id, collected))
    }

    pub fn add_promotion(
        &mut self,
        name: &str,
        description: &str,
        starts_at: UnixSeconds,
        ends_at: UnixSeconds,
    ) -> Result<i64, LoyaltyError> {
        self.write(|tx| insert_promotion(tx, name, description, starts_at, ends_at))
    }

    pub fn guest_group_id(&self, guest: GuestId) -> Result<i64, LoyaltyError> {
        Ok(guest_group(&self.conn, guest)?.id)
    }

    // ----- Self-check -----

    /// Proves the ledger is consistent; the error lists every violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut violations = Vec::new();
        for (rule, sql) in INVARIANT_QUERIES {
            let found = offending_rows(&self.conn, sql).map_err(|e| format!("{rule}: {e}"))?;
            if !found.is_empty() {
                violations.push(format!("{rule}: {}", found.join(", ")));
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations.join("; "))
        }
    }
}

/// Each query returns one text row per violation.
const INVARIANT_QUERIES: [(&str, &str); 12] = [
    (
        "payment on a hold that is not committed",
        "SELECT 'payment ' || p.id FROM payments p JOIN holds h ON h.id = p.hold_id
         WHERE h.status <> 'committed' OR h.committed_amount <> p.spent",
    ),
    (
        "void recorded for a committed hold",
        "SELECT 'hold ' || h.id FROM hold_voids v JOIN holds h ON h.id = v.hold_id WHERE h.status = 'committed'",
    ),
    (
        "committed hold without its payment",
        "SELECT 'hold ' || h.id FROM holds h WHERE h.status = 'committed'
         AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.hold_id = h.id)",
    ),
    (
        "refunds exceed the check",
        "SELECT 'payment ' || p.id FROM payments p
         WHERE p.amount_due < (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = p.id)",
    ),
    (
        "balance differs from the sum of operations",
        "SELECT 'guest ' || g.id FROM guests g
         WHERE g.balance <> COALESCE((SELECT SUM(o.amount) FROM operations o WHERE o.guest_id = g.id), 0)",
    ),
    (
        "negative balance",
        "SELECT 'guest ' || id FROM guests WHERE balance < 0",
    ),
    (
        "open holds exceed the balance",
        "SELECT 'guest ' || g.id FROM guests g
         WHERE g.balance < COALESCE((SELECT SUM(h.amount) FROM holds h
                                     WHERE h.guest_id = g.id AND h.status = 'open'), 0)",
    ),
    (
        "hold with an unknown status",
        "SELECT 'hold ' || id FROM holds WHERE status NOT IN ('open', 'committed', 'voided', 'expired')",
    ),
    (
        "committed amount wrong",
        "SELECT 'hold ' || id FROM holds
         WHERE (status = 'committed') <> (committed_amount IS NOT NULL)
            OR committed_amount < 0 OR committed_amount > amount",
    ),
    (
        "hold op_id reused",
        "SELECT op_id FROM holds GROUP BY op_id HAVING COUNT(*) > 1",
    ),
    (
        "payment op_id reused",
        "SELECT op_id FROM payments GROUP BY op_id HAVING COUNT(*) > 1",
    ),
    (
        "manual operation op_id reused",
        "SELECT op_id FROM operations WHERE op_id IS NOT NULL GROUP BY op_id HAVING COUNT(*) > 1",
    ),
];

fn offending_rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    rows.collect()
}

// ----- Codes and identification -----

/// The trimmed code, or BadCode when it is empty or too long.
pub(crate) fn valid_code(payload: &str) -> Result<&str, LoyaltyError> {
    let code = payload.trim();
    if code.is_empty() || code.chars().count() > MAX_CODE_LEN {
        return Err(LoyaltyError::BadCode { max: MAX_CODE_LEN });
    }
    Ok(code)
}

/// `+7XXXXXXXXXX` when the text is a Russian phone number in any usual spelling
/// (`8 916 123-45-67`, `+7 (916) 123-45-67`, `9161234567`).
pub(crate) fn normalize_phone(text: &str) -> Option<String> {
    let body = text.strip_prefix('+').unwrap_or(text);
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')'))
    {
        return None;
    }
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    let national = match (digits.len(), digits.as_bytes().first()) {
        (11, Some(b'7' | b'8')) => &digits[1..],
        (10, Some(b'9')) => digits.as_str(),
        _ => return None,
    };
    Some(format!("+7{national}"))
}

/// The identifier kind a device normally delivers, tried before the others.
pub(crate) fn expected_identifier(kind: ScanKind) -> IdentifierKind {
    match kind {
        ScanKind::Qr => IdentifierKind::AppQr,
        ScanKind::Barcode => IdentifierKind::CardBarcode,
        ScanKind::MagneticCard => IdentifierKind::MagneticStripe,
        ScanKind::Manual => IdentifierKind::ManualCode,
    }
}

/// Phone first, then gift codes, then the other identifiers. A phone-shaped code that is no
/// guest's phone is still tried as a card number, since card numbers can look like phones.
fn resolve_code(conn: &Connection, code: &str, kind: ScanKind) -> Result<CodeMatch, LoyaltyError> {
    if let Some(phone) = normalize_phone(code) {
        let guest: Option<GuestId> = conn
            .query_row(
                "SELECT guest_id FROM identifiers WHERE kind = 'phone' AND value = ?1",
                [&phone],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(guest) = guest {
            return Ok(CodeMatch {
                guest,
                gift: None,
                via: IdentifierKind::Phone.as_str().to_string(),
            });
        }
    }
    if let Some((guest, gift, redeemed)) = find_gift_code(conn, code)? {
        if redeemed {
            return Err(LoyaltyError::GiftAlreadyUsed);
        }
        return Ok(CodeMatch {
            guest,
            gift: Some(gift),
            via: "gift_code".to_string(),
        });
    }
    let preferred = expected_identifier(kind).as_str();
    let found: Option<(GuestId, String)> = conn
        .query_row(
            "SELECT guest_id, kind FROM identifiers WHERE value = ?1 AND kind <> 'phone'
             ORDER BY kind = ?2 DESC, kind LIMIT 1",
            params![code, preferred],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (guest, via) = found.ok_or(LoyaltyError::UnknownCode)?;
    Ok(CodeMatch { guest, gift: None, via })
}

/// The gift code's owner, gift and whether it was redeemed.
fn find_gift_code(conn: &Connection, code: &str) -> Result<Option<(GuestId, Gift, bool)>, LoyaltyError> {
    Ok(conn
        .query_row(
            "SELECT guest_id, gift_name, points, redeemed_at IS NOT NULL FROM gift_codes WHERE code = ?1",
            [code],
            |row| {
                let gift = Gift {
                    code: code.to_string(),
                    name: row.get(1)?,
                    points: Kopecks(row.get(2)?),
                };
                Ok((row.get(0)?, gift, row.get(3)?))
            },
        )
        .optional()?)
}

fn enforce_daily_ops(conn: &Connection, guest: GuestId, now: UnixSeconds) -> Result<(), LoyaltyError> {
    let limit = guest_group(conn, guest)?.rules.daily_ops_limit;
    if limit <= 0 {
        return Ok(());
    }
    let since = local_day_start(now, load_program(conn)?.utc_offset_minutes);
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM identifications WHERE guest_id = ?1 AND at >= ?2",
        params![guest, since],
        |row| row.get(0),
    )?;
    if count >= limit {
        return Err(LoyaltyError::DailyOperationsLimit { limit });
    }
    Ok(())
}

/// The UTC time of the local midnight that began the day containing `now`.
pub(crate) fn local_day_start(now: UnixSeconds, utc_offset_minutes: i64) -> UnixSeconds {
    let offset = utc_offset_minutes * 60;
    (now + offset).div_euclid(SECONDS_PER_DAY) * SECONDS_PER_DAY - offset
}

// ----- Guest card and quote -----

/// The sum of a guest's holds that still reserve bonuses at `?2`, for `guests g`. Holds past
/// their time count as released even before `expire_holds` marks them.
const HELD_SQL: &str = "COALESCE((SELECT SUM(h.amount) FROM holds h
    WHERE h.guest_id = g.id AND h.status = 'open' AND h.expires_at > ?2), 0)";

fn load_card(conn: &Connection, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, LoyaltyError> {
    // One statement, so the balance and the holds come from the same snapshot.
    let (name, phone, balance, available): (String, Option<String>, i64, i64) = conn
        .query_row(
            &format!("SELECT g.name, g.phone, g.balance, g.balance - {HELD_SQL} FROM guests g WHERE g.id = ?1"),
            params![guest, now],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?
        .ok_or(LoyaltyError::UnknownCode)?;
    Ok(GuestCard {
        guest_id: guest,
        name,
        phone_masked: phone.as_deref().map(mask_phone).unwrap_or_default(),
        balance: Kopecks(balance),
        available: Kopecks(available),
        group: guest_group(conn, guest)?.info(),
        stamps: load_stamps(conn, guest)?,
        promotions: current_promotions(conn, now)?,
    })
}

fn load_stamps(conn: &Connection, guest: GuestId) -> Result<Vec<StampProgress>, LoyaltyError> {
    let mut stmt = conn.prepare(
        "SELECT c.name, COALESCE(s.collected, 0), c.needed, c.reward FROM stamp_cards c
         LEFT JOIN stamps s ON s.card_id = c.id AND s.guest_id = ?1 ORDER BY c.id",
    )?;
    let rows = stmt.query_map([guest], |row| {
        Ok(StampProgress {
            card_name: row.get(0)?,
            collected: row.get(1)?,
            needed: row.get(2)?,
            reward: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn current_promotions(conn: &Connection, now: UnixSeconds) -> Result<Vec<Promotion>, LoyaltyError> {
    let mut stmt = conn.prepare(
        "SELECT name, description, ends_at FROM promotions
         WHERE starts_at <= ?1 AND ?1 < ends_at ORDER BY ends_at, id",
    )?;
    let rows = stmt.query_map([now], |row| {
        Ok(Promotion {
            name: row.get(0)?,
            description: row.get(1)?,
            ends_at: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Balance minus the holds still open at `now`.
fn available(conn: &Connection, guest: GuestId, now: UnixSeconds) -> Result<Kopecks, LoyaltyError> {
    conn.query_row(
        &format!("SELECT g.balance - {HELD_SQL} FROM guests g WHERE g.id = ?1"),
        params![guest, now],
        |row| Ok(Kopecks(row.get(0)?)),
    )
    .optional()?
    .ok_or(LoyaltyError::UnknownCode)
}

fn quote(conn: &Connection, guest: GuestId, check: &CheckInfo, now: UnixSeconds) -> Result<SpendQuote, LoyaltyError> {
    if check.subtotal < Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    let program = load_program(conn)?;
    let group = guest_group(conn, guest)?;
    let daily_left = if group.rules.daily_spend_limit > Kopecks::ZERO {
        Some(daily_spend_left(conn, guest, &group, &program, now)?)
    } else {
        None
    };
    Ok(build_quote(
        &program,
        &group,
        check.subtotal,
        available(conn, guest, now)?,
        daily_left,
    ))
}

/// The quote from what the store read: every limit in a fixed order, the smallest rounded down
/// to the spend step. Shared by both server stores.
pub(crate) fn build_quote(
    program: &ProgramSettings,
    group: &Group,
    subtotal: Kopecks,
    available: Kopecks,
    daily_left: Option<Kopecks>,
) -> SpendQuote {
    let amount_due = group.amount_due(subtotal);
    let limit = |kind, amount| SpendLimit { kind, amount };
    let mut limits = vec![
        limit(SpendLimitKind::Available, available),
        limit(
            SpendLimitKind::CheckPercent,
            amount_due.percent_floor(program.max_check_bp),
        ),
    ];
    if let Some(left) = daily_left {
        limits.push(limit(SpendLimitKind::DailyLimit, left));
    }
    limits.push(limit(SpendLimitKind::AmountDue, amount_due));
    let smallest = limits.iter().map(|l| l.amount).fold(amount_due, Kopecks::min);
    SpendQuote {
        amount_due,
        max_spend: smallest.floor_to_step(program.spend_step).max(Kopecks::ZERO),
        limits,
        max_check_bp: program.max_check_bp,
        spend_step: program.spend_step,
        accrual_bp: group.rules.accrual_bp,
    }
}

/// The group's daily limit minus today's bonus payments and every hold still open: an open
/// hold, even one placed before midnight, becomes a payment today.
fn daily_spend_left(
    conn: &Connection,
    guest: GuestId,
    group: &Group,
    program: &ProgramSettings,
    now: UnixSeconds,
) -> Result<Kopecks, LoyaltyError> {
    let since = local_day_start(now, program.utc_offset_minutes);
    let used: i64 = conn.query_row(
        &format!(
            "SELECT COALESCE((SELECT -SUM(o.amount) FROM operations o
                              WHERE o.guest_id = g.id AND o.kind = 'spend' AND o.at >= ?3), 0)
                    + {HELD_SQL}
             FROM guests g WHERE g.id = ?1"
        ),
        params![guest, now, since],
        |row| row.get(0),
    )?;
    Ok(group.rules.daily_spend_limit.saturating_sub(Kopecks(used)))
}

// ----- Holds and payments -----

pub(crate) fn ensure_step(amount: Kopecks, step: Kopecks) -> Result<(), LoyaltyError> {
    if amount.floor_to_step(step) == amount {
        Ok(())
    } else {
        Err(LoyaltyError::NotAMultipleOfStep { step })
    }
}

fn expire_open_holds(conn: &Connection, now: UnixSeconds) -> Result<usize, LoyaltyError> {
    let expired = conn.execute(
        "UPDATE holds SET status = 'expired', closed_at = ?1 WHERE status = 'open' AND expires_at <= ?1",
        [now],
    )?;
    if expired > 0 {
        tracing::info!(expired, "released holds whose time was up");
    }
    Ok(expired)
}

/// The guest and receipt of the hold first placed with `op_id`.
fn hold_by_op_id(conn: &Connection, op_id: &str) -> Result<Option<(GuestId, HoldReceipt)>, LoyaltyError> {
    Ok(conn
        .query_row(
            "SELECT guest_id, id, amount, expires_at FROM holds WHERE op_id = ?1",
            [op_id],
            |row| {
                let receipt = HoldReceipt {
                    hold_id: row.get(1)?,
                    amount: Kopecks(row.get(2)?),
                    expires_at: row.get(3)?,
                };
                Ok((row.get(0)?, receipt))
            },
        )
        .optional()?)
}

fn hold_status(conn: &Connection, hold: HoldId) -> Result<String, LoyaltyError> {
    conn.query_row("SELECT status FROM holds WHERE id = ?1", [hold], |row| row.get(0))
        .optional()?
        .ok_or(LoyaltyError::UnknownHold)
}

/// Marks the guest's open hold committed for `spent`; the rest of it is released.
fn settle_hold(
    conn: &Connection,
    hold: HoldId,
    guest: GuestId,
    spent: Kopecks,
    now: UnixSeconds,
) -> Result<(), LoyaltyError> {
    let (owner, amount, status): (GuestId, i64, String) = conn
        .query_row(
            "SELECT guest_id, amount, status FROM holds WHERE id = ?1",
            [hold],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?
        .ok_or(LoyaltyError::UnknownHold)?;
    // Another guest's hold is reported as unknown: a till must not learn about it.
    if owner != guest {
        return Err(LoyaltyError::UnknownHold);
    }
    // Expired holds were marked by the caller, so 'open' here means open at `now`.
    if status != "open" {
        return Err(LoyaltyError::HoldNotOpen { status });
    }
    if spent > Kopecks(amount) {
        return Err(LoyaltyError::CommitOverHold {
            requested: spent,
            held: Kopecks(amount),
        });
    }
    conn.execute(
        "UPDATE holds SET status = 'committed', committed_amount = ?2, closed_at = ?3 WHERE id = ?1",
        params![hold, spent.0, now],
    )?;
    Ok(())
}

/// The request and receipt of the payment first made with `op_id`.
fn payment_by_op_id(conn: &Connection, op_id: &str) -> Result<Option<(PaymentRequest, PaymentReceipt)>, LoyaltyError> {
    Ok(conn
        .query_row(
            "SELECT guest_id, hold_id, spent, subtotal, gift_codes, accrued, balance_after, new_group
             FROM payments WHERE op_id = ?1",
            [op_id],
            |row| {
                let request = PaymentRequest {
                    guest: row.get(0)?,
                    hold: row.get(1)?,
                    spent: Kopecks(row.get(2)?),
                    subtotal: Kopecks(row.get(3)?),
                    gift_codes: row.get(4)?,
                };
                let receipt = PaymentReceipt {
                    spent: request.spent,
                    accrued: Kopecks(row.get(5)?),
                    balance_after: Kopecks(row.get(6)?),
                    new_group: row.get(7)?,
                };
                Ok((request, receipt))
            },
        )
        .optional()?)
}

/// Everything a paid check does after the hold is settled: the visit and receipt, the debit
/// and accrual, gift codes, stamps and the group move.
fn record_payment(
    conn: &Connection,
    op_id: &str,
    request: &PaymentRequest,
    gift_codes: &[String],
    program: &ProgramSettings,
    now: UnixSeconds,
) -> Result<PaymentReceipt, LoyaltyError> {
    let guest = request.guest;
    let group = guest_group(conn, guest)?;
    let amount_due = group.amount_due(request.subtotal);
    // The visit is priced by the group the guest was in when it began.
    let accrued = amount_due
        .saturating_sub(request.spent)
        .percent_floor(group.rules.accrual_bp);
    let new_group = group_after_visit(conn, guest, &group, amount_due, program, now)?;
    let balance_after = guest_balance(conn, guest)? + accrued - request.spent;
    conn.execute(
        "INSERT INTO payments (op_id, guest_id, hold_id, spent, subtotal, gift_codes, amount_due,
                               accrued, balance_after, new_group, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            op_id,
            guest,
            request.hold,
            request.spent.0,
            request.subtotal.0,
            request.gift_codes,
            amount_due.0,
            accrued.0,
            balance_after.0,
            new_group.as_ref().map(|g| &g.rules.name),
            now
        ],
    )?;
    let payment_id = conn.last_insert_rowid();
    let note = format!("check {amount_due}");
    for (kind, amount) in [(OpKind::Spend, request.spent), (OpKind::Accrual, accrued)] {
        if amount > Kopecks::ZERO {
            let posting = Posting {
                guest,
                kind,
                amount,
                note: &note,
                at: now,
                op_id: None,
                payment_id: Some(payment_id),
                refund_id: None,
            };
            post_operation(conn, &posting)?;
        }
    }
    redeem_gift_codes(conn, guest, gift_codes, payment_id, now)?;
    add_stamp_to_every_card(conn, guest)?;
    if let Some(target) = &new_group {
        conn.execute(
            "UPDATE guests SET group_id = ?2 WHERE id = ?1",
            params![guest, target.id],
        )?;
    }
    Ok(PaymentReceipt {
        spent: request.spent,
        accrued,
        balance_after,
        new_group: new_group.map(|g| g.rules.name),
    })
}

/// The group the guest belongs in after a visit of `visit_due`, if it differs from `current`.
/// Only groups of rank >= 1 take part: staff-like groups are neither left nor entered by spend.
fn group_after_visit(
    conn: &Connection,
    guest: GuestId,
    current: &Group,
    visit_due: Kopecks,
    program: &ProgramSettings,
    now: UnixSeconds,
) -> Result<Option<Group>, LoyaltyError> {
    if current.rules.rank < 1 {
        return Ok(None);
    }
    let window_start = now - program.group_period_days * SECONDS_PER_DAY;
    let earlier: i64 = conn.query_row(
        "SELECT COALESCE(SUM(p.amount_due), 0)
                - COALESCE((SELECT SUM(r.amount) FROM refunds r JOIN payments q ON q.id = r.payment_id
                            WHERE q.guest_id = ?1 AND q.at > ?2), 0)
         FROM payments p WHERE p.guest_id = ?1 AND p.at > ?2",
        params![guest, window_start],
        |row| row.get(0),
    )?;
    let spend = Kopecks(earlier) + visit_due;
    let target = conn
        .query_row(
            &format!(
                "SELECT {GROUP_COLUMNS} FROM guest_groups gg
                 WHERE gg.rank >= 1 AND gg.spend_threshold <= ?1 ORDER BY gg.rank DESC, gg.id LIMIT 1"
            ),
            [spend.0],
            group_from_row,
        )
        .optional()?;
    Ok(target.filter(|target| moves_to(current, target)))
}

/// Whether a guest in `current` moves to `target`, the best group their spending qualifies for.
pub(crate) fn moves_to(current: &Group, target: &Group) -> bool {
    target.rules.rank > current.rules.rank || (target.rules.rank < current.rules.rank && !current.rules.never_downgrade)
}

fn redeem_gift_codes(
    conn: &Connection,
    guest: GuestId,
    codes: &[String],
    payment_id: i64,
    now: UnixSeconds,
) -> Result<(), LoyaltyError> {
    for code in codes {
        let redeemed = conn.execute(
            "UPDATE gift_codes SET redeemed_at = ?3, payment_id = ?4
             WHERE code = ?1 AND guest_id = ?2 AND redeemed_at IS NULL",
            params![code, guest, now, payment_id],
        )?;
        // Unknown, someone else's and used codes are all refused alike: the whole check rolls back.
        if redeemed != 1 {
            return Err(LoyaltyError::GiftAlreadyUsed);
        }
    }
    Ok(())
}

fn add_stamp_to_every_card(conn: &Connection, guest: GuestId) -> Result<(), LoyaltyError> {
    // `WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT.
    conn.execute(
        "INSERT INTO stamps (guest_id, card_id, collected) SELECT ?1, id, 1 FROM stamp_cards WHERE true
         ON CONFLICT (guest_id, card_id) DO UPDATE SET collected =
             MIN(stamps.collected + 1, (SELECT needed FROM stamp_cards WHERE id = excluded.card_id))",
        [guest],
    )?;
    Ok(())
}

// ----- Balance changes -----

fn guest_balance(conn: &Connection, guest: GuestId) -> Result<Kopecks, LoyaltyError> {
    conn.query_row("SELECT balance FROM guests WHERE id = ?1", [guest], |row| {
        Ok(Kopecks(row.get(0)?))
    })
    .optional()?
    .ok_or(LoyaltyError::UnknownCode)
}

/// Records a balance change and applies it to the stored balance; returns the balance after.
fn post_operation(conn: &Connection, posting: &Posting<'_>) -> Result<Kopecks, LoyaltyError> {
    let delta = posting.kind.signed(posting.amount);
    let balance_after: i64 = conn
        .query_row(
            "UPDATE guests SET balance = balance + ?2 WHERE id = ?1 RETURNING balance",
            params![posting.guest, delta.0],
            |row| row.get(0),
        )
        .optional()?
        .ok_or(LoyaltyError::UnknownCode)?;
    conn.execute(
        "INSERT INTO operations (guest_id, kind, amount, balance_after, note, at, op_id, payment_id, refund_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            posting.guest,
            posting.kind.as_str(),
            delta.0,
            balance_after,
            posting.note,
            posting.at,
            posting.op_id,
            posting.payment_id,
            posting.refund_id
        ],
    )?;
    Ok(Kopecks(balance_after))
}

/// A back-office credit or debit, idempotent by `op_id`.
fn manual_operation(
    conn: &Connection,
    op_id: &str,
    guest: GuestId,
    kind: OpKind,
    amount: Kopecks,
    note: &str,
    now: UnixSeconds,
) -> Result<Kopecks, LoyaltyError> {
    let first: Option<(GuestId, String, i64, i64)> = conn
        .query_row(
            "SELECT guest_id, kind, amount, balance_after FROM operations WHERE op_id = ?1",
            [op_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    if let Some((first_guest, first_kind, first_amount, balance_after)) = first {
        let same = first_guest == guest && first_kind == kind.as_str() && first_amount == kind.signed(amount).0;
        return if same {
            Ok(Kopecks(balance_after))
        } else {
            Err(LoyaltyError::OperationIdConflict)
        };
    }
    if amount <= Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    if kind == OpKind::ManualDebit {
        expire_open_holds(conn, now)?;
        let max = available(conn, guest, now)?;
        if amount > max {
            return Err(LoyaltyError::OverMaximum { requested: amount, max });
        }
    }
    post_operation(
        conn,
        &Posting {
            guest,
            kind,
            amount,
            note,
            at: now,
            op_id: Some(op_id),
            payment_id: None,
            refund_id: None,
        },
    )
}

/// What an offline payment debits: what was asked, never more than the guest still has nor the
/// amount due.
pub(crate) fn offline_take(requested: Kopecks, available: Kopecks, amount_due: Kopecks) -> Kopecks {
    requested.min(available).min(amount_due).max(Kopecks::ZERO)
}

// ----- Refunds -----

/// The bonuses to give back and the accrual to take back when `amount` more of a check is
/// returned, `refunded_before` having been returned already. Computed on the running total, so
/// that partial refunds adding up to the whole check give back exactly what was spent and take
/// back exactly what was accrued.
pub(crate) fn refund_shares(
    amount_due: Kopecks,
    spent: Kopecks,
    accrued: Kopecks,
    refunded_before: Kopecks,
    amount: Kopecks,
) -> (Kopecks, Kopecks) {
    let share = |total: Kopecks, part: Kopecks| -> i64 {
        if amount_due.0 <= 0 {
            return 0;
        }
        ((total.0 as i128 * part.0 as i128) / amount_due.0 as i128) as i64
    };
    let after = refunded_before + amount;
    (
        Kopecks(share(spent, after) - share(spent, refunded_before)),
        Kopecks(share(accrued, after) - share(accrued, refunded_before)),
    )
}

/// The part of a check a refund returns: the request, or all that is left; refused when it is
/// not positive or more than is left.
pub(crate) fn refund_amount(requested: Option<Kopecks>, left: Kopecks) -> Result<Kopecks, LoyaltyError> {
    let amount = match requested {
        Some(amount) if amount <= Kopecks::ZERO => return Err(LoyaltyError::NonPositiveAmount),
        Some(amount) => amount,
        None => left,
    };
    if amount <= Kopecks::ZERO || amount > left {
        return Err(LoyaltyError::RefundOverPayment {
            requested: amount,
            left,
        });
    }
    Ok(amount)
}

fn refund_payment(
    conn: &Connection,
    op_id: &str,
    payment_op_id: &str,
    requested: Option<Kopecks>,
    now: UnixSeconds,
) -> Result<RefundReceipt, LoyaltyError> {
    let first = conn
        .query_row(
            "SELECT p.op_id, r.requested, r.amount, r.spend_returned, r.accrual_taken, r.unrecovered, r.balance_after
             FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.op_id = ?1",
            [op_id],
            |row| {
                let first: (String, Option<i64>) = (row.get(0)?, row.get(1)?);
                let receipt = RefundReceipt {
                    amount: Kopecks(row.get(2)?),
                    spend_returned: Kopecks(row.get(3)?),
                    accrual_taken: Kopecks(row.get(4)?),
                    unrecovered: Kopecks(row.get(5)?),
                    balance_after: Kopecks(row.get(6)?),
                };
                Ok((first, receipt))
            },
        )
        .optional()?;
    if let Some(((first_payment, first_requested), receipt)) = first {
        return if first_payment == payment_op_id && first_requested == requested.map(|a| a.0) {
            Ok(receipt)
        } else {
            Err(LoyaltyError::OperationIdConflict)
        };
    }
    let (payment_id, guest, amount_due, spent, accrued): (i64, GuestId, i64, i64, i64) = conn
        .query_row(
            "SELECT id, guest_id, amount_due, spent, accrued FROM payments WHERE op_id = ?1",
            [payment_op_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
        )
        .optional()?
        .ok_or(LoyaltyError::UnknownPayment)?;
    let before: i64 = conn.query_row(
        "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE payment_id = ?1",
        [payment_id],
        |row| row.get(0),
    )?;
    let amount = refund_amount(requested, Kopecks(amount_due - before))?;
    let (spend_back, accrual_due) = refund_shares(
        Kopecks(amount_due),
        Kopecks(spent),
        Kopecks(accrued),
        Kopecks(before),
        amount,
    );
    expire_open_holds(conn, now)?;
    // What the guest has once the spend is back; open holds keep their bonuses.
    let can_take = (available(conn, guest, now)? + spend_back).max(Kopecks::ZERO);
    let accrual_taken = accrual_due.min(can_take);
    let unrecovered = accrual_due - accrual_taken;
    conn.execute(
        "INSERT INTO refunds (op_id, payment_id, requested, amount, spend_returned, accrual_taken, unrecovered,
                              balance_after, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)",
        params![
            op_id,
            payment_id,
            requested.map(|a| a.0),
            amount.0,
            spend_back.0,
            accrual_taken.0,
            unrecovered.0,
            now
        ],
    )?;
    let refund_id = conn.last_insert_rowid();
    let note = format!("refund {amount}");
    let mut balance_after = guest_balance(conn, guest)?;
    for (kind, value) in [
        (OpKind::RefundSpend, spend_back),
        (OpKind::RefundAccrual, accrual_taken),
    ] {
        if value > Kopecks::ZERO {
            let posting = Posting {
                guest,
                kind,
                amount: value,
                note: &note,
                at: now,
                op_id: None,
                payment_id: None,
                refund_id: Some(refund_id),
            };
            balance_after = post_operation(conn, &posting)?;
        }
    }
    conn.execute(
        "UPDATE refunds SET balance_after = ?2 WHERE id = ?1",
        params![refund_id, balance_after.0],
    )?;
    Ok(RefundReceipt {
        amount,
        spend_returned: spend_back,
        accrual_taken,
        unrecovered,
        balance_after,
    })
}

fn guest_org_of(conn: &Connection, guest: GuestId) -> Result<String, LoyaltyError> {
    conn.query_row("SELECT org FROM guests WHERE id = ?1", [guest], |row| row.get(0))
        .optional()?
        .ok_or(LoyaltyError::UnknownCode)
}

// ----- Programme, groups and guests -----

fn has_no_guests(conn: &Connection) -> Result<bool, LoyaltyError> {
    Ok(conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM guests)", [], |row| row.get(0))?)
}

fn load_program(conn: &Connection) -> Result<ProgramSettings, LoyaltyError> {
    Ok(conn.query_row(
        "SELECT name, max_check_bp, spend_step, hold_ttl_secs, group_period_days, utc_offset_minutes
         FROM program WHERE id = 1",
        [],
        |row| {
            Ok(ProgramSettings {
                name: row.get(0)?,
                max_check_bp: row.get(1)?,
                spend_step: Kopecks(row.get(2)?),
                hold_ttl_secs: row.get(3)?,
                group_period_days: row.get(4)?,
                utc_offset_minutes: row.get(5)?,
            })
        },
    )?)
}

fn save_program(conn: &Connection, p: &ProgramSettings) -> Result<(), LoyaltyError> {
    conn.execute(
        "UPDATE program SET name = ?1, max_check_bp = ?2, spend_step = ?3, hold_ttl_secs = ?4,
                            group_period_days = ?5, utc_offset_minutes = ?6 WHERE id = 1",
        params![
            p.name,
            p.max_check_bp,
            p.spend_step.0,
            p.hold_ttl_secs,
            p.group_period_days,
            p.utc_offset_minutes
        ],
    )?;
    Ok(())
}

/// The columns [`group_from_row`] reads, from `guest_groups gg`.
const GROUP_COLUMNS: &str = "gg.id, gg.name, gg.rank, gg.discount_bp, gg.accrual_bp, gg.spend_threshold,
    gg.never_downgrade, gg.daily_ops_limit, gg.daily_spend_limit";

fn group_from_row(row: &Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        id: row.get(0)?,
        rules: NewGroup {
            name: row.get(1)?,
            rank: row.get(2)?,
            discount_bp: row.get(3)?,
            accrual_bp: row.get(4)?,
            spend_threshold: Kopecks(row.get(5)?),
            never_downgrade: row.get(6)?,
            daily_ops_limit: row.get(7)?,
            daily_spend_limit: Kopecks(row.get(8)?),
        },
    })
}

fn guest_group(conn: &Connection, guest: GuestId) -> Result<Group, LoyaltyError> {
    conn.query_row(
        &format!("SELECT {GROUP_COLUMNS} FROM guests g JOIN guest_groups gg ON gg.id = g.group_id WHERE g.id = ?1"),
        [guest],
        group_from_row,
    )
    .optional()?
    .ok_or(LoyaltyError::UnknownCode)
}

fn insert_group(conn: &Connection, g: &NewGroup) -> Result<i64, LoyaltyError> {
    conn.execute(
        "INSERT INTO guest_groups (name, rank, discount_bp, accrual_bp, spend_threshold, never_downgrade,
                                   daily_ops_limit, daily_spend_limit)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            g.name,
            g.rank,
            g.discount_bp,
            g.accrual_bp,
            g.spend_threshold.0,
            g.never_downgrade,
            g.daily_ops_limit,
            g.daily_spend_limit.0
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

fn insert_guest(
    conn: &Connection,
    name: &str,
    phone: Option<&str>,
    group_id: i64,
    now: UnixSeconds,
) -> Result<GuestId, LoyaltyError> {
    let phone = phone
        .map(|p| normalize_phone(p).ok_or(LoyaltyError::BadCode { max: MAX_CODE_LEN }))
        .transpose()?;
    conn.execute(
        "INSERT INTO guests (name, phone, group_id, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, phone, group_id, now],
    )?;
    let guest = conn.last_insert_rowid();
    if let Some(phone) = &phone {
        insert_identifier(conn, guest, IdentifierKind::Phone, phone)?;
    }
    Ok(guest)
}

/// Stores the identifier as `identify` will look it up: trimmed, phones normalised.
fn insert_identifier(conn: &Connection, guest: GuestId, kind: IdentifierKind, value: &str) -> Result<(), LoyaltyError> {
    let code = valid_code(value)?;
    let value = match kind {
        IdentifierKind::Phone => normalize_phone(code).ok_or(LoyaltyError::BadCode { max: MAX_CODE_LEN })?,
        _ => code.to_string(),
    };
    conn.execute(
        "INSERT INTO identifiers (kind, value, guest_id) VALUES (?1, ?2, ?3)",
        params![kind.as_str(), value, guest],
    )?;
    Ok(())
}

fn insert_gift_code(
    conn: &Connection,
    code: &str,
    guest: GuestId,
    gift_name: &str,
    points: Kopecks,
) -> Result<(), LoyaltyError> {
    conn.execute(
        "INSERT INTO gift_codes (code, guest_id, gift_name, points) VALUES (?1, ?2, ?3, ?4)",
        params![valid_code(code)?, guest, gift_name, points.0],
    )?;
    Ok(())
}

fn insert_stamp_card(conn: &Connection, name: &str, needed: i64, reward: &str) -> Result<i64, LoyaltyError> {
    conn.execute(
        "INSERT INTO stamp_cards (name, needed, reward) VALUES (?1, ?2, ?3)",
        params![name, needed, reward],
    )?;
    Ok(conn.last_insert_rowid())
}

fn save_stamps(conn: &Connection, guest: GuestId, card_id: i64, collected: i64) -> Result<(), LoyaltyError> {
    conn.execute(
        "INSERT INTO stamps (guest_id, card_id, collected) VALUES (?1, ?2, ?3)
         ON CONFLICT (guest_id, card_id) DO UPDATE SET collected = excluded.collected",
        params![guest, card_id, collected],
    )?;
    Ok(())
}

fn insert_promotion(
    conn: &Connection,
    name: &str,
    description: &str,
    starts_at: UnixSeconds,
    ends_at: UnixSeconds,
) -> Result<i64, LoyaltyError> {
    conn.execute(
        "INSERT INTO promotions (name, description, starts_at, ends_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, description, starts_at, ends_at],
    )?;
    Ok(conn.last_insert_rowid())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalises_phone_spellings() {
        for text in [
            "+79161234567",
            "89161234567",
            "8 916 123-45-67",
            "+7 (916) 123-45-67",
            "9161234567",
        ] {
            assert_eq!(normalize_phone(text).as_deref(), Some("+79161234567"), "{text}");
        }
        for text in [
            "100001",
            "2000000000015",
            "7001000010",
            "+7 916 abc",
            "GMB-00001234",
            "8+9161234567",
        ] {
            assert_eq!(normalize_phone(text), None, "{text}");
        }
    }

    #[test]
    fn local_day_starts_at_local_midnight() {
        // 2025-03-10 22:00 UTC is 01:00 on the 11th in Moscow (UTC+3): the day began at 21:00 UTC.
        let now = 1_741_564_800 + 22 * 3600;
        assert_eq!(local_day_start(now, 180), 1_741_564_800 + 21 * 3600);
        assert_eq!(local_day_start(now, 0), 1_741_564_800);
        assert_eq!(local_day_start(now, -300), 1_741_564_800 + 5 * 3600);
    }

    #[test]
    fn in_memory_demo_is_consistent() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        assert!(ledger.is_empty().unwrap());
        assert!(ledger.seed_demo(1_741_608_000).unwrap());
        assert!(!ledger.is_empty().unwrap());
        ledger.check_invariants().unwrap();
    }
}
