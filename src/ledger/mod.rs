//! The embedded loyalty ledger: one SQLite file on the till, and the SQLite store of the server.
//!
//! This module only reads and writes rows: every rule is decided once, for SQLite and PostgreSQL
//! alike, by [`crate::loyalty::engine`] and [`crate::loyalty::rules`]; [`SqliteTx`] is the
//! engine's view of one SQLite transaction. Every balance change is a row in `operations`, and
//! the guest's stored balance is updated in the same transaction, so [`Ledger::check_invariants`]
//! can prove that the two agree. Writes run in IMMEDIATE transactions: the write lock is taken
//! before anything is read, so two tills sharing the file cannot both pass the same limit check.
//!
//! The ledger never reads a clock: `now` comes with every call. Holds whose time is up count
//! as released in every query even before [`Ledger::expire_holds`] marks them.

use crate::domain::{
    CheckFilter, CheckInfo, CheckSummary, Gift, GuestCard, GuestId, HistoryEntry, HoldId, HoldReceipt, Identification,
    IdentifierKind, LoyaltyError, PaymentReceipt, Promotion, RefundReceipt, ReturnPart, ScanKind, ShiftReport,
    SpendQuote, StampProgress, UnixSeconds,
};
use crate::loyalty::demo;
use crate::loyalty::engine::{
    self, Answer, AuditRow, ChecksQuery, LedgerTx, Link, NewPayment, Op, OpRecord, Posting, ProgramScope, StampCount,
    run_now,
};
use crate::loyalty::migrate::{self, Dialect};
use crate::loyalty::report;
use crate::loyalty::rewards::{self, GiftDef, PromotionDef, StampCardDef};
use crate::loyalty::rows::{
    ACCOUNT_INSERT_SQL, CARD_GUEST_SQL, Columns, GROUP_COLUMNS, PROGRAM_COLUMNS, SNAPSHOT_COLUMNS, group_at,
    program_at, snapshot_at,
};
use crate::loyalty::rows::{
    GIFT_COLUMNS, GUEST_PROMOTIONS_SQL, GUEST_STAMP_CARDS_SQL, Rows, Val, gift_at, promotion_at,
};
use crate::loyalty::rules::{
    GiftCodeRow, Group, GuestSnapshot, HoldPlan, HoldRow, HoldStatus, OpKind, PaidCheck, RefundPlan,
};
pub use crate::loyalty::rules::{NewGroup, ProgramSettings};
use crate::loyalty::spend_days;
use crate::mask::mask_phone;
use crate::money::Kopecks;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::path::Path;
use std::time::Duration;

/// The organisation of guests created without one (the embedded till, the demo).
pub const DEFAULT_ORG: &str = "default";
/// Long enough to wait out another till's write, short enough to report a stuck file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's own messages name tables and constraints, never the bound values, so they carry no
/// phone numbers or codes and can be shown as they are.
impl From<rusqlite::Error> for LoyaltyError {
    fn from(error: rusqlite::Error) -> Self {
        LoyaltyError::Storage(error.to_string())
    }
}

pub struct Ledger {
    conn: Connection,
}

/// PostgreSQL's `strpos(text, substring)` on an embedded ledger's connection: the position of the
/// first `substring` in `text` in characters from 1, 0 when it is not there (NULL for NULL), so
/// that the statements both databases run may use it ([`report`]).
fn define_strpos(conn: &Connection) -> Result<(), LoyaltyError> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "strpos",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text: Option<String> = ctx.get(0)?;
            let needle: Option<String> = ctx.get(1)?;
            Ok(text.zip(needle).map(|(text, needle)| match text.find(&needle) {
                Some(at) => text[..at].chars().count() as i64 + 1,
                None => 0,
            }))
        },
    )?;
    Ok(())
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
        // Room for every statement of the engine's operations (the default keeps 16, fewer than
        // a payment and an identification use together, and an LRU that small thrashes).
        conn.set_prepared_statement_cache_capacity(96);
        define_strpos(&conn)?;
        let mut ledger = Ledger { conn };
        ledger.migrate()?;
        Ok(ledger)
    }

    fn migrate(&mut self) -> Result<(), LoyaltyError> {
        self.transact(|tx| {
            // Read inside the write lock: two tills opening a new file create the schema once.
            let version: i64 = tx.conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            let steps = migrate::pending(version).map_err(LoyaltyError::Storage)?;
            for step in steps {
                tx.conn.execute_batch(step.sql(Dialect::Sqlite))?;
                tx.conn.pragma_update(None, "user_version", step.version)?;
            }
            Ok(())
        })
    }

    /// Runs `work` in an IMMEDIATE transaction: committed when it returns Ok, rolled back
    /// (by dropping the transaction) when it returns an error.
    pub fn transact<T>(
        &mut self,
        work: impl FnOnce(&mut SqliteTx<'_>) -> Result<T, LoyaltyError>,
    ) -> Result<T, LoyaltyError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&mut SqliteTx { conn: &tx })?;
        tx.commit()?;
        Ok(value)
    }

    /// The connection, for the back office's own reads (lists and pages; no rule is decided there).
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// True when there are no guests.
    pub fn is_empty(&self) -> Result<bool, LoyaltyError> {
        has_no_guests(&self.conn)
    }

    // ----- Cashier operations (every guest visible: the embedded till) -----

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
        self.transact(|tx| run_now(engine::identify(tx, org, payload, kind, now)))
    }

    pub fn guest_card(&self, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, LoyaltyError> {
        run_now(engine::card(&mut self.reader(), None, guest, now))
    }

    /// The most the guest may pay with bonuses on this check, with every limit considered.
    pub fn calculate(&self, guest: GuestId, check: &CheckInfo, now: UnixSeconds) -> Result<SpendQuote, LoyaltyError> {
        run_now(engine::quote(&mut self.reader(), None, guest, check, now))
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
        self.transact(|tx| run_now(engine::hold(tx, None, op_id, guest, amount, check, now)))
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
        self.transact(|tx| run_now(engine::commit(tx, None, op_id, guest, hold, spent, check, now)))
    }

    /// A check a till closed while the server was away, paying `requested` with bonuses (the owner
    /// allows it, with caps the till enforces). The guest is debited what they still have, at
    /// most the amount due: the receipt's `spent` may be less than `requested`. Idempotent by `op_id`.
    pub fn commit_offline_payment(
        &mut self,
        op_id: &str,
        guest: GuestId,
        requested: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        self.transact(|tx| run_now(engine::commit_offline(tx, None, op_id, guest, requested, check, now)))
    }

    /// Releases an open hold. Voiding a voided or expired hold succeeds; a committed one does not.
    pub fn void_hold(&mut self, op_id: &str, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError> {
        self.transact(|tx| run_now(engine::void(tx, None, op_id, hold, now)))
    }

    /// Marks open holds whose time is up as expired; returns how many.
    pub fn expire_holds(&mut self, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        let expired = self.run(&Op::ExpireHolds, None, now)?.into_count()?;
        Ok(usize::try_from(expired).unwrap_or(usize::MAX))
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
        self.manual(op_id, guest, OpKind::ManualCredit, amount, note, now)
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
        self.manual(op_id, guest, OpKind::ManualDebit, amount, note, now)
    }

    fn manual(
        &mut self,
        op_id: &str,
        guest: GuestId,
        kind: OpKind,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        self.transact(|tx| run_now(engine::manual(tx, None, op_id, guest, kind, amount, note, now)))
    }

    /// Returns part (`Some(amount)` of the amount due) or all that is left (`None`) of the check
    /// paid with `payment_op_id`. Idempotent by `op_id`.
    pub fn refund(
        &mut self,
        op_id: &str,
        payment_op_id: &str,
        part: impl Into<ReturnPart>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        let part = part.into();
        self.transact(|tx| run_now(engine::refund(tx, None, op_id, payment_op_id, &part, now)))
    }

    /// What [`Ledger::refund`] would change, written nowhere.
    pub fn refund_preview(
        &mut self,
        payment_op_id: &str,
        part: impl Into<ReturnPart>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        let op = Op::RefundPreview {
            payment_op_key: payment_op_id.to_string(),
            part: part.into(),
        };
        self.run(&op, None, now)?.into_refund()
    }

    /// The closed checks the filter names, newest first.
    pub fn checks(&mut self, filter: &CheckFilter, now: UnixSeconds) -> Result<Vec<CheckSummary>, LoyaltyError> {
        self.run(&Op::Checks(filter.clone()), None, now)?.into_checks()
    }

    /// Voids every open hold of the guest (Quick Resto's "reset holds"); returns how many.
    pub fn reset_holds(&mut self, guest: GuestId, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        let count = self.transact(|tx| run_now(engine::reset_holds(tx, None, None, guest, now)))?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    /// A cashier enrols a guest whose code was not found (see [`engine::enrol_at_till`]): the
    /// single cafe's guests are all of [`DEFAULT_ORG`].
    pub fn enrol_at_till(
        &mut self,
        op_id: &str,
        code: &str,
        kind: ScanKind,
        phone: &str,
        name: &str,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        let op = Op::EnrolAtTill {
            op_key: op_id.to_string(),
            name: name.to_string(),
            phone: phone.to_string(),
            code: code.to_string(),
            kind,
        };
        let detail = format!("{}, {}", crate::mask::mask_phone(phone), crate::mask::mask_code(code));
        let audit = crate::loyalty::audit::Audit {
            org: DEFAULT_ORG.to_string(),
            op_key: Some(op_id.to_string()),
            entry: Box::new(move |answer| crate::loyalty::audit::AuditEntry {
                at: now,
                actor: "till".to_string(),
                action: "enrol".to_string(),
                guest_id: match answer {
                    Answer::Id(id) => Some(*id),
                    _ => None,
                },
                detail: detail.clone(),
                reason: String::new(),
            }),
        };
        self.run_audited(&op, Some(DEFAULT_ORG), now, &audit)?.into_id()
    }

    /// Runs a change and writes its audit row in the same transaction (both kept, or neither).
    pub fn run_audited(
        &mut self,
        op: &Op,
        org: Option<&str>,
        now: UnixSeconds,
        audit: &crate::loyalty::audit::Audit,
    ) -> Result<Answer, LoyaltyError> {
        self.transact(|tx| {
            let answer = run_now(op.run(tx, org, now))?;
            sqlite_query(tx.conn, crate::loyalty::rows::AUDIT_INSERT, &audit.params(&answer))?;
            Ok(answer)
        })
    }

    /// Runs statements in one transaction (see `Database::write_all`): `None`, with nothing
    /// kept, when `first_must_match` and the first answers no row.
    pub(crate) fn write_all(
        &mut self,
        statements: &[(&'static str, Vec<Val>)],
        first_must_match: bool,
    ) -> Result<Option<Vec<Rows>>, LoyaltyError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut answers = Vec::with_capacity(statements.len());
        for (index, (sql, params)) in statements.iter().enumerate() {
            let rows = sqlite_query(&tx, sql, params)?;
            if index == 0 && first_must_match && rows.is_empty() {
                // Dropping the transaction rolls it back.
                return Ok(None);
            }
            answers.push(rows);
        }
        tx.commit()?;
        Ok(Some(answers))
    }

    /// Runs a loyalty operation for a caller of `org` (`None`: every organisation): reads on the
    /// connection as it is, writes in an IMMEDIATE transaction.
    pub fn run(&mut self, op: &Op, org: Option<&str>, now: UnixSeconds) -> Result<Answer, LoyaltyError> {
        if op.reads_only() {
            run_now(op.run(&mut self.reader(), org, now))
        } else {
            self.transact(|tx| run_now(op.run(tx, org, now)))
        }
    }

    /// A reader over the connection, for the engine's read-only operations.
    fn reader(&self) -> SqliteTx<'_> {
        SqliteTx { conn: &self.conn }
    }

    /// The guest's gift codes not yet redeemed (codes masked), oldest first.
    pub fn gifts(&self, guest: GuestId) -> Result<Vec<Gift>, LoyaltyError> {
        run_now(self.reader().gifts(guest))
    }

    /// The organisation the guest belongs to.
    pub fn guest_org(&self, guest: GuestId) -> Result<String, LoyaltyError> {
        guest_org_of(&self.conn, guest)
    }

    /// Moves a guest to an organisation (the back office of a chain).
    pub fn set_guest_org(&mut self, guest: GuestId, org: &str) -> Result<(), LoyaltyError> {
        self.transact(|tx| {
            let changed = tx
                .conn
                .execute("UPDATE guests SET org = ?2 WHERE id = ?1", params![guest, org])?;
            if changed != 1 {
                return Err(LoyaltyError::UnknownCode);
            }
            // The guest's codes go with them: they are unique within the new organisation.
            for table in ["identifiers", "gift_codes"] {
                tx.conn.execute(
                    &format!("UPDATE {table} SET org = ?2 WHERE guest_id = ?1"),
                    params![guest, org],
                )?;
            }
            ensure_org_program(tx.conn, org)
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
        run_now(self.reader().history(guest, i64::try_from(limit).unwrap_or(i64::MAX)))
    }

    /// Holds with status 'open', of one guest or of everyone, oldest first.
    pub fn open_holds(&self, guest: Option<GuestId>) -> Result<Vec<HoldReceipt>, LoyaltyError> {
        run_now(self.reader().open_holds(guest))
    }

    /// The shift's figures: everything booked since the local midnight before `now` (the
    /// programme's time zone). A report of what is recorded, not a rule: no balance changes here.
    /// The figures are the back office's report's ([`report`]): the same statements, added up
    /// by the same code.
    pub fn shift_report(&self, now: UnixSeconds) -> Result<ShiftReport, LoyaltyError> {
        let utc_offset_minutes = self.program()?.utc_offset_minutes;
        let since = crate::loyalty::rules::local_day_start(now, utc_offset_minutes);
        // `until` is exclusive: what is booked in this very second counts.
        let sum = report::total(&self.report_facts(None, since, now + 1, utc_offset_minutes)?);
        Ok(ShiftReport {
            since,
            until: now,
            utc_offset_minutes,
            till: None,
            checks: sum.checks,
            revenue: sum.revenue,
            spent: sum.spent,
            accrued: sum.accrued,
            gifts_redeemed: sum.gifts_redeemed,
            returns: sum.returns,
            returned: sum.returned,
            new_guests: sum.new_guests,
        })
    }

    /// What [`report`]'s statements book for `[since, until)`, of one organisation or of all,
    /// per local day `utc_offset_minutes` east of UTC.
    pub fn report_facts(
        &self,
        org: Option<&str>,
        since: UnixSeconds,
        until: UnixSeconds,
        utc_offset_minutes: i64,
    ) -> Result<report::Facts, LoyaltyError> {
        let params = report::params(org, since, until, utc_offset_minutes);
        let mut facts = report::Facts::new();
        for (statement, sql) in report::STATEMENTS {
            facts.extend(report::booked(statement, &sqlite_query(&self.conn, sql, &params)?));
        }
        Ok(facts)
    }

    // ----- Administration: the engine's, on this file -----

    /// Creates the demo programme when the ledger has no guests; true when it did. One
    /// transaction: two tills starting on a new file seed it once, and a failure leaves no
    /// half-made programme behind.
    pub fn seed_demo(&mut self, now: UnixSeconds) -> Result<bool, LoyaltyError> {
        self.transact(|tx| run_now(demo::seed(tx, DEFAULT_ORG, now)))
    }

    /// Sets the programme of every organisation and the template for new ones.
    pub fn set_program(&mut self, program: &ProgramSettings) -> Result<(), LoyaltyError> {
        self.transact(|tx| run_now(engine::set_program(tx, ProgramScope::Everyone, program)))
    }

    /// Sets one organisation's programme.
    pub fn set_org_program(&mut self, org: &str, program: &ProgramSettings) -> Result<(), LoyaltyError> {
        self.transact(|tx| run_now(engine::set_program(tx, ProgramScope::Org(org), program)))
    }

    /// Sets the hold time new organisations start with; existing ones keep theirs.
    pub fn set_default_hold_ttl(&mut self, secs: i64) -> Result<(), LoyaltyError> {
        self.transact(|tx| {
            let template = run_now(tx.program(None))?;
            let program = ProgramSettings {
                hold_ttl_secs: secs,
                ..template
            };
            run_now(engine::set_program(tx, ProgramScope::Template, &program))
        })
    }

    /// The embedded till's programme.
    pub fn program(&self) -> Result<ProgramSettings, LoyaltyError> {
        run_now(self.reader().program(Some(DEFAULT_ORG)))
    }

    pub fn add_group(&mut self, group: &NewGroup) -> Result<i64, LoyaltyError> {
        self.transact(|tx| run_now(engine::add_group(tx, group)))
    }

    /// Adds a guest; a phone is stored normalised (`+7XXXXXXXXXX`) and becomes an identifier.
    pub fn add_guest(
        &mut self,
        name: &str,
        phone: Option<&str>,
        group_id: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        self.add_guest_in(DEFAULT_ORG, name, phone, group_id, now)
    }

    /// Adds a guest to an organisation.
    pub fn add_guest_in(
        &mut self,
        org: &str,
        name: &str,
        phone: Option<&str>,
        group_id: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        self.transact(|tx| run_now(engine::add_guest(tx, org, name, phone, group_id, now)))
    }

    pub fn add_identifier(&mut self, guest: GuestId, kind: IdentifierKind, value: &str) -> Result<(), LoyaltyError> {
        self.transact(|tx| run_now(engine::add_identifier(tx, guest, kind, value)))
    }

    pub fn add_gift_code(
        &mut self,
        code: &str,
        guest: GuestId,
        gift_name: &str,
        points: Kopecks,
    ) -> Result<(), LoyaltyError> {
        self.transact(|tx| run_now(engine::add_gift_code(tx, guest, code, gift_name, points)))
    }

    pub fn add_stamp_card(&mut self, name: &str, needed: i64, reward: &str) -> Result<i64, LoyaltyError> {
        self.transact(|tx| run_now(tx.insert_stamp_card(name, needed, reward)))
    }

    pub fn set_stamps(&mut self, guest: GuestId, card_id: i64, collected: i64) -> Result<(), LoyaltyError> {
        self.transact(|tx| run_now(tx.set_stamps(guest, card_id, collected)))
    }

    pub fn add_promotion(
        &mut self,
        name: &str,
        description: &str,
        starts_at: UnixSeconds,
        ends_at: UnixSeconds,
    ) -> Result<i64, LoyaltyError> {
        self.transact(|tx| run_now(tx.insert_promotion(name, description, starts_at, ends_at)))
    }

    pub fn guest_group_id(&self, guest: GuestId) -> Result<i64, LoyaltyError> {
        Ok(guest_group(&self.conn, guest)?.id)
    }

    // ----- Self-check -----

    /// Proves the ledger is consistent; the error lists every violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut violations = Vec::new();
        for (rule, sql) in crate::loyalty::INVARIANT_QUERIES {
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

fn offending_rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    rows.collect()
}

// ----- The engine's rows -----

/// One SQLite transaction as the engine sees it. SQLite's calls never wait on anything but the
/// file, so the engine's futures are done when first polled ([`run_now`]).
pub struct SqliteTx<'c> {
    conn: &'c Connection,
}

/// Statements through the connection's cache: a payment runs about twenty, each parsed and
/// planned anew on the one writer connection without it.
impl SqliteTx<'_> {
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    fn one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(params, map)
    }
}

/// The sum of a guest's holds that still reserve bonuses at `?2`, for `guests g`. Holds past
/// their time count as released even before `expire_holds` marks them.
const HELD_SQL: &str = "COALESCE((SELECT SUM(h.amount) FROM holds h
    WHERE h.guest_id = g.id AND h.status = 'open' AND h.expires_at > ?2), 0)";

fn snapshot_sql() -> String {
    format!(
        "SELECT {}, {GROUP_COLUMNS}
         FROM guests g JOIN guest_groups gg ON gg.id = g.group_id JOIN programs p ON p.org = g.org
         WHERE g.id = ?1",
        SNAPSHOT_COLUMNS.replace("{held}", HELD_SQL)
    )
}

impl Columns for Row<'_> {
    type Error = rusqlite::Error;

    fn int(&self, index: usize) -> rusqlite::Result<i64> {
        self.get(index)
    }

    fn text(&self, index: usize) -> rusqlite::Result<String> {
        self.get(index)
    }

    fn flag(&self, index: usize) -> rusqlite::Result<bool> {
        self.get(index)
    }

    fn opt_text(&self, index: usize) -> rusqlite::Result<Option<String>> {
        self.get(index)
    }
}

fn group_from_row(row: &Row<'_>) -> rusqlite::Result<Group> {
    group_at(row, 0)
}

fn hold_from_row(row: &Row<'_>) -> rusqlite::Result<(GuestId, Kopecks, String, UnixSeconds)> {
    Ok((row.get(0)?, Kopecks(row.get(1)?), row.get(2)?, row.get(3)?))
}

impl LedgerTx for SqliteTx<'_> {
    type Error = LoyaltyError;

    async fn begin_guest_write(
        &mut self,
        guest: GuestId,
        now: UnixSeconds,
        op_key: &str,
    ) -> Result<(Option<GuestSnapshot>, Option<OpRecord>), LoyaltyError> {
        // The IMMEDIATE transaction holds the file's write lock already.
        let snapshot = self.snapshot(guest, now).await?;
        let first = self
            .one(
                "SELECT op_key, kind, fingerprint, answer FROM op_log WHERE op_key = ?1",
                [op_key],
                |row| {
                    Ok(OpRecord {
                        key: row.get(0)?,
                        kind: row.get(1)?,
                        fingerprint: row.get(2)?,
                        answer: row.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok((snapshot, first))
    }

    async fn snapshot(&mut self, guest: GuestId, now: UnixSeconds) -> Result<Option<GuestSnapshot>, LoyaltyError> {
        Ok(self
            .one(&snapshot_sql(), params![guest, now], |row| snapshot_at(row))
            .optional()?)
    }

    async fn save_op_record(&mut self, record: &OpRecord) -> Result<(), LoyaltyError> {
        self.exec(
            "INSERT INTO op_log (op_key, kind, fingerprint, answer) VALUES (?1, ?2, ?3, ?4)",
            params![record.key, record.kind, record.fingerprint, record.answer],
        )?;
        Ok(())
    }

    async fn op_record(&mut self, op_key: &str) -> Result<Option<OpRecord>, LoyaltyError> {
        // The IMMEDIATE transaction holds the file's write lock: no other write runs meanwhile.
        Ok(self
            .one(
                "SELECT op_key, kind, fingerprint, answer FROM op_log WHERE op_key = ?1",
                [op_key],
                |row| {
                    Ok(OpRecord {
                        key: row.get(0)?,
                        kind: row.get(1)?,
                        fingerprint: row.get(2)?,
                        answer: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    async fn phone_owner(&mut self, org: Option<&str>, phone: &str) -> Result<Option<GuestId>, LoyaltyError> {
        Ok(self
            .one(
                "SELECT guest_id FROM identifiers WHERE kind = 'phone' AND value = ?1 AND (?2 IS NULL OR org = ?2)",
                params![phone, org],
                |row| row.get(0),
            )
            .optional()?)
    }

    async fn gift_code(&mut self, org: Option<&str>, code: &str) -> Result<Option<GiftCodeRow>, LoyaltyError> {
        Ok(self
            .one(
                "SELECT c.guest_id, c.gift_name, c.points, c.redeemed_at IS NOT NULL, g.pos_code
                 FROM gift_codes c LEFT JOIN gifts g ON g.id = c.gift_id
                 WHERE c.code = ?1 AND (?2 IS NULL OR c.org = ?2)",
                params![code, org],
                |row| {
                    Ok(GiftCodeRow {
                        guest: row.get(0)?,
                        gift: Gift {
                            code: code.to_string(),
                            name: row.get(1)?,
                            points: Kopecks(row.get(2)?),
                            pos_code: row.get(4)?,
                        },
                        redeemed: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    async fn identifier_owners(
        &mut self,
        org: Option<&str>,
        value: &str,
    ) -> Result<Vec<(GuestId, IdentifierKind)>, LoyaltyError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT guest_id, kind FROM identifiers WHERE value = ?1 AND kind <> 'phone' AND (?2 IS NULL OR org = ?2)",
        )?;
        let rows = stmt.query_map(params![value, org], |row| {
            Ok((row.get::<_, GuestId>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (guest, kind) = row?;
            if let Some(kind) = IdentifierKind::parse(&kind) {
                found.push((guest, kind));
            }
        }
        Ok(found)
    }

    async fn visits_since(&mut self, guest: GuestId, since: UnixSeconds) -> Result<i64, LoyaltyError> {
        Ok(self.one(
            "SELECT COUNT(*) FROM payments WHERE guest_id = ?1 AND at >= ?2",
            params![guest, since],
            |row| row.get(0),
        )?)
    }

    async fn record_identification(&mut self, guest: GuestId, via: &str, at: UnixSeconds) -> Result<(), LoyaltyError> {
        self.exec(
            "INSERT INTO identifications (guest_id, via, at) VALUES (?1, ?2, ?3)",
            params![guest, via, at],
        )?;
        Ok(())
    }

    async fn card(&mut self, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, LoyaltyError> {
        load_card(self.conn, guest, now)
    }

    async fn spent_since(
        &mut self,
        guest: GuestId,
        since: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        let used: i64 = self.one(
            &format!(
                "SELECT COALESCE((SELECT -SUM(o.amount) FROM operations o
                                  WHERE o.guest_id = g.id AND o.kind = 'spend' AND o.at >= ?3), 0)
                        + {HELD_SQL}
                 FROM guests g WHERE g.id = ?1"
            ),
            params![guest, now, since],
            |row| row.get(0),
        )?;
        Ok(Kopecks(used))
    }

    async fn window_spend(&mut self, guest: GuestId, since: UnixSeconds) -> Result<Kopecks, LoyaltyError> {
        let spend: i64 = self.one(
            spend_days::WINDOW_SPEND_SQL,
            params![guest, since, spend_days::first_whole_day(since)],
            |row| row.get(1),
        )?;
        Ok(Kopecks(spend))
    }

    async fn ranked_groups(&mut self) -> Result<Vec<Group>, LoyaltyError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {GROUP_COLUMNS} FROM guest_groups gg WHERE gg.rank >= 1"
        ))?;
        let rows = stmt.query_map([], group_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn groups(&mut self) -> Result<Vec<Group>, LoyaltyError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {GROUP_COLUMNS} FROM guest_groups gg"))?;
        let rows = stmt.query_map([], group_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn insert_hold(
        &mut self,
        op_key: &str,
        guest: GuestId,
        plan: &HoldPlan,
        now: UnixSeconds,
    ) -> Result<HoldId, LoyaltyError> {
        self.exec(
            "INSERT INTO holds (op_id, guest_id, amount, status, created_at, expires_at)
             VALUES (?1, ?2, ?3, 'open', ?4, ?5)",
            params![op_key, guest, plan.amount.0, now, plan.expires_at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    async fn hold_row(&mut self, hold: HoldId) -> Result<Option<HoldRow>, LoyaltyError> {
        let row = self
            .one(
                "SELECT guest_id, amount, status, expires_at FROM holds WHERE id = ?1",
                [hold],
                hold_from_row,
            )
            .optional()?;
        row.map(|(guest, amount, status, expires_at)| {
            Ok(HoldRow {
                id: hold,
                guest,
                amount,
                status: HoldStatus::parse(&status)?,
                expires_at,
            })
        })
        .transpose()
    }

    async fn close_hold(
        &mut self,
        hold: HoldId,
        status: HoldStatus,
        committed: Option<Kopecks>,
        now: UnixSeconds,
    ) -> Result<(), LoyaltyError> {
        self.exec(
            "UPDATE holds SET status = ?2, committed_amount = ?3, closed_at = ?4 WHERE id = ?1",
            params![hold, status.as_str(), committed.map(|k| k.0), now],
        )?;
        Ok(())
    }

    async fn record_void(&mut self, op_key: &str, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError> {
        self.exec(
            "INSERT INTO hold_voids (op_id, hold_id, at) VALUES (?1, ?2, ?3)",
            params![op_key, hold, now],
        )?;
        Ok(())
    }

    async fn void_open_holds(&mut self, guest: GuestId, now: UnixSeconds) -> Result<u64, LoyaltyError> {
        let voided = self.exec(
            "UPDATE holds SET status = CASE WHEN expires_at <= ?2 THEN 'expired' ELSE 'voided' END, closed_at = ?2
             WHERE guest_id = ?1 AND status = 'open'",
            params![guest, now],
        )?;
        Ok(voided as u64)
    }

    async fn insert_payment(&mut self, p: &NewPayment<'_>) -> Result<i64, LoyaltyError> {
        self.exec(
            "INSERT INTO payments (op_id, guest_id, hold_id, spent, subtotal, gift_codes, amount_due,
                                   accrued, balance_after, new_group, at, offline_requested, owner_payment_id, lines)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                p.op_key,
                p.guest,
                p.hold,
                p.plan.spent.0,
                p.subtotal.0,
                p.gift_codes,
                p.plan.amount_due.0,
                p.plan.accrued.0,
                p.plan.balance_after.0,
                p.plan.new_group.as_ref().map(|g| &g.rules.name),
                p.at,
                p.offline_requested.map(|k| k.0),
                p.owner_payment,
                p.lines,
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        self.exec(spend_days::BOOK_PAYMENT_SQL, params![p.op_key])?;
        Ok(id)
    }

    async fn add_to_report(
        &mut self,
        org: &str,
        quarter: i64,
        scope: &str,
        figures: &[i64; report::CHECK_FIGURES],
    ) -> Result<(), LoyaltyError> {
        let [a, b, c, d, e, f, g, h] = *figures;
        self.exec(report::BOOK_SQL, params![org, quarter, scope, a, b, c, d, e, f, g, h])?;
        Ok(())
    }

    async fn post(&mut self, posting: &Posting<'_>) -> Result<Kopecks, LoyaltyError> {
        post_operation(self.conn, posting)
    }

    async fn redeem_gift(
        &mut self,
        code: &str,
        guest: GuestId,
        payment_id: i64,
        now: UnixSeconds,
    ) -> Result<bool, LoyaltyError> {
        let redeemed = self.exec(
            "UPDATE gift_codes SET redeemed_at = ?3, payment_id = ?4
             WHERE code = ?1 AND guest_id = ?2 AND redeemed_at IS NULL
               AND org = (SELECT org FROM guests WHERE id = ?2)",
            params![code, guest, now, payment_id],
        )?;
        Ok(redeemed == 1)
    }

    async fn stamp_counts(&mut self, guest: GuestId) -> Result<Vec<StampCount>, LoyaltyError> {
        let mut stmt = self.conn.prepare_cached(GUEST_STAMP_CARDS_SQL)?;
        let rows = stmt.query_map([guest], |row| {
            Ok(StampCount {
                card_id: row.get(0)?,
                collected: row.get(1)?,
                needed: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn set_stamps(&mut self, guest: GuestId, card_id: i64, collected: i64) -> Result<(), LoyaltyError> {
        self.exec(
            "INSERT INTO stamps (guest_id, card_id, collected) VALUES (?1, ?2, ?3)
             ON CONFLICT (guest_id, card_id) DO UPDATE SET collected = excluded.collected",
            params![guest, card_id, collected],
        )?;
        Ok(())
    }

    async fn set_group(&mut self, guest: GuestId, group_id: i64) -> Result<(), LoyaltyError> {
        self.exec(
            "UPDATE guests SET group_id = ?2 WHERE id = ?1",
            params![guest, group_id],
        )?;
        Ok(())
    }

    async fn paid_check(&mut self, payment_op_key: &str) -> Result<Option<PaidCheck>, LoyaltyError> {
        self.one(
            "SELECT p.id, p.guest_id, p.amount_due, p.spent, p.accrued,
                        (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = p.id), p.at,
                        p.owner_payment_id, p.lines
                 FROM payments p WHERE p.op_id = ?1",
            [payment_op_key],
            |row| {
                Ok((
                    PaidCheck {
                        payment_id: row.get(0)?,
                        guest: row.get(1)?,
                        amount_due: Kopecks(row.get(2)?),
                        spent: Kopecks(row.get(3)?),
                        accrued: Kopecks(row.get(4)?),
                        refunded_before: Kopecks(row.get(5)?),
                        paid_at: row.get(6)?,
                        owner_payment: row.get(7)?,
                        lines: Vec::new(),
                    },
                    row.get::<_, Option<String>>(8)?,
                ))
            },
        )
        .optional()?
        .map(|(check, lines)| {
            Ok(PaidCheck {
                lines: crate::loyalty::rules::parse_lines(lines.as_deref())?,
                ..check
            })
        })
        .transpose()
    }

    async fn insert_refund(
        &mut self,
        op_key: &str,
        check: &PaidCheck,
        requested: Option<Kopecks>,
        plan: &RefundPlan,
        now: UnixSeconds,
    ) -> Result<i64, LoyaltyError> {
        self.exec(
            "INSERT INTO refunds (op_id, payment_id, requested, amount, spend_returned, accrual_taken, unrecovered,
                                  balance_after, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)",
            params![
                op_key,
                check.payment_id,
                requested.map(|a| a.0),
                plan.amount.0,
                plan.spend_returned.0,
                plan.accrual_taken.0,
                plan.unrecovered.0,
                now
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        self.exec(spend_days::BOOK_REFUND_SQL, params![id])?;
        Ok(id)
    }

    async fn record_lines_returned(
        &mut self,
        refund_id: i64,
        returned: &str,
        payment_id: i64,
        lines: &str,
    ) -> Result<(), LoyaltyError> {
        self.exec(
            "UPDATE refunds SET lines = ?2 WHERE id = ?1",
            params![refund_id, returned],
        )?;
        self.exec(
            "UPDATE payments SET lines = ?2 WHERE id = ?1",
            params![payment_id, lines],
        )?;
        Ok(())
    }

    async fn set_refund_balance(&mut self, refund_id: i64, balance_after: Kopecks) -> Result<(), LoyaltyError> {
        self.exec(
            "UPDATE refunds SET balance_after = ?2 WHERE id = ?1",
            params![refund_id, balance_after.0],
        )?;
        Ok(())
    }

    async fn check_gifts(&mut self, payment_id: i64) -> Result<Vec<String>, LoyaltyError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT gift_name FROM gift_codes WHERE payment_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([payment_id], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn check_shares(&mut self, payment_id: i64) -> Result<Vec<String>, LoyaltyError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT op_id FROM payments WHERE owner_payment_id = ?1 ORDER BY guest_id")?;
        let rows = stmt.query_map([payment_id], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn restore_gifts(&mut self, payment_id: i64) -> Result<(), LoyaltyError> {
        self.exec(
            "UPDATE gift_codes SET redeemed_at = NULL, payment_id = NULL WHERE payment_id = ?1",
            [payment_id],
        )?;
        Ok(())
    }

    async fn paid_checks(
        &mut self,
        org: Option<&str>,
        query: &ChecksQuery<'_>,
    ) -> Result<Vec<CheckSummary>, LoyaltyError> {
        let sql = crate::loyalty::rows::PAID_CHECKS_SQL.replace('$', "?");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                org,
                query.since,
                query.number,
                query.guest,
                query.op_prefix,
                query.limit
            ],
            |row| crate::loyalty::rows::check_summary_at(row),
        )?;
        rows.map(|row| {
            let (check, lines) = row?;
            Ok(CheckSummary {
                lines: crate::loyalty::rules::parse_lines(lines.as_deref())?,
                ..check
            })
        })
        .collect()
    }

    async fn gifts(&mut self, guest: GuestId) -> Result<Vec<Gift>, LoyaltyError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT code, gift_name, points FROM gift_codes WHERE guest_id = ?1 AND redeemed_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([guest], |row| {
            Ok(Gift {
                code: crate::mask::mask_code(&row.get::<_, String>(0)?),
                name: row.get(1)?,
                points: Kopecks(row.get(2)?),
                pos_code: None,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn open_holds(&mut self, guest: Option<GuestId>) -> Result<Vec<HoldReceipt>, LoyaltyError> {
        let mut stmt = self.conn.prepare_cached(
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

    async fn history(&mut self, guest: GuestId, limit: i64) -> Result<Vec<HistoryEntry>, LoyaltyError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, kind, amount, balance_after, note FROM operations
             WHERE guest_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![guest, limit], |row| {
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

    async fn expire_holds(&mut self, now: UnixSeconds) -> Result<u64, LoyaltyError> {
        let expired = self.exec(
            "UPDATE holds SET status = 'expired', closed_at = ?1 WHERE status = 'open' AND expires_at <= ?1",
            [now],
        )?;
        if expired > 0 {
            tracing::info!(expired, "released holds whose time was up");
        }
        Ok(expired as u64)
    }

    async fn has_guests(&mut self) -> Result<bool, LoyaltyError> {
        Ok(!has_no_guests(self.conn)?)
    }

    async fn program(&mut self, org: Option<&str>) -> Result<ProgramSettings, LoyaltyError> {
        if let Some(org) = org {
            let sql = format!("SELECT {PROGRAM_COLUMNS} FROM programs WHERE org = ?1");
            if let Some(program) = self.one(&sql, [org], |row| program_at(row, 0)).optional()? {
                return Ok(program);
            }
        }
        // The template, which an organisation without guests yet will start with.
        let sql = format!("SELECT {PROGRAM_COLUMNS} FROM program WHERE id = 1");
        Ok(self.one(&sql, [], |row| program_at(row, 0))?)
    }

    async fn save_program(&mut self, scope: ProgramScope<'_>, p: &ProgramSettings) -> Result<(), LoyaltyError> {
        let set = "SET name = ?1, max_check_bp = ?2, spend_step = ?3, hold_ttl_secs = ?4, group_period_days = ?5,
                       utc_offset_minutes = ?6, accrual_basis = ?7, welcome_bonus = ?8, till_enrolment = ?9";
        let values = params![
            p.name,
            p.max_check_bp,
            p.spend_step.0,
            p.hold_ttl_secs,
            p.group_period_days,
            p.utc_offset_minutes,
            p.accrual_basis.as_str(),
            p.welcome_bonus.0,
            p.till_enrolment
        ];
        match scope {
            ProgramScope::Template => {
                self.exec(&format!("UPDATE program {set} WHERE id = 1"), values)?;
            }
            ProgramScope::Everyone => {
                self.exec(&format!("UPDATE program {set} WHERE id = 1"), values)?;
                self.exec(&format!("UPDATE programs {set}"), values)?;
            }
            ProgramScope::Org(org) => {
                ensure_org_program(self.conn, org)?;
                self.exec(
                    &format!("UPDATE programs {set} WHERE org = ?10"),
                    params![
                        p.name,
                        p.max_check_bp,
                        p.spend_step.0,
                        p.hold_ttl_secs,
                        p.group_period_days,
                        p.utc_offset_minutes,
                        p.accrual_basis.as_str(),
                        p.welcome_bonus.0,
                        p.till_enrolment,
                        org
                    ],
                )?;
            }
        }
        Ok(())
    }

    async fn insert_group(&mut self, g: &NewGroup) -> Result<i64, LoyaltyError> {
        self.exec(
            "INSERT INTO guest_groups (name, rank, discount_bp, accrual_bp, spend_threshold, never_downgrade,
                                       daily_ops_limit, daily_spend_limit)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            group_values(g).as_slice(),
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    async fn set_blocked(&mut self, guest: GuestId, blocked: bool) -> Result<(), LoyaltyError> {
        // A guest's block is the person's: set on the main account, it reaches every account.
        self.exec(
            "UPDATE guests SET blocked = ?1 WHERE id = ?2 OR account_of = ?2",
            params![blocked, guest],
        )?;
        Ok(())
    }

    async fn set_contact(&mut self, guest: GuestId, name: &str, phone: Option<&str>) -> Result<(), LoyaltyError> {
        let changed = self.exec(
            "UPDATE guests SET name = ?1, phone = ?2 WHERE id = ?3 AND account_of IS NULL",
            params![name, phone, guest],
        )?;
        if changed != 1 {
            return Err(LoyaltyError::UnknownCode);
        }
        self.exec(
            "UPDATE guests SET name = ?1 WHERE account_of = ?2",
            params![name, guest],
        )?;
        self.exec(
            "DELETE FROM identifiers WHERE guest_id = ?1 AND kind = 'phone'",
            params![guest],
        )?;
        match phone {
            Some(phone) => self.insert_identifier(guest, IdentifierKind::Phone, phone).await,
            None => Ok(()),
        }
    }

    async fn update_group(&mut self, id: i64, g: &NewGroup) -> Result<(), LoyaltyError> {
        let mut values = group_values(g).to_vec();
        values.push(&id);
        let changed = self.exec(
            "UPDATE guest_groups SET name = ?1, rank = ?2, discount_bp = ?3, accrual_bp = ?4, spend_threshold = ?5,
                    never_downgrade = ?6, daily_ops_limit = ?7, daily_spend_limit = ?8
             WHERE id = ?9",
            values.as_slice(),
        )?;
        if changed == 1 {
            Ok(())
        } else {
            Err(LoyaltyError::UnknownCode)
        }
    }

    async fn insert_guest(
        &mut self,
        org: &str,
        name: &str,
        phone: Option<&str>,
        group_id: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        ensure_org_program(self.conn, org)?;
        self.exec(
            "INSERT INTO guests (org, name, phone, group_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![org, name, phone, group_id, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    async fn insert_account(
        &mut self,
        guest: GuestId,
        name: &str,
        now: UnixSeconds,
    ) -> Result<Option<GuestId>, LoyaltyError> {
        let added = self.exec(ACCOUNT_INSERT_SQL, params![guest, name, now])?;
        Ok((added == 1).then(|| self.conn.last_insert_rowid()))
    }

    async fn insert_identifier(
        &mut self,
        guest: GuestId,
        kind: IdentifierKind,
        value: &str,
    ) -> Result<(), LoyaltyError> {
        let added = self.exec(
            "INSERT INTO identifiers (org, kind, value, guest_id) SELECT org, ?1, ?2, id FROM guests WHERE id = ?3",
            params![kind.as_str(), value, guest],
        )?;
        if added == 1 {
            Ok(())
        } else {
            Err(LoyaltyError::UnknownCode)
        }
    }

    async fn insert_gift_code(
        &mut self,
        guest: GuestId,
        code: &str,
        name: &str,
        points: Kopecks,
    ) -> Result<(), LoyaltyError> {
        let added = self.exec(
            "INSERT INTO gift_codes (org, code, guest_id, gift_name, points)
             SELECT org, ?1, id, ?3, ?4 FROM guests WHERE id = ?2",
            params![code, guest, name, points.0],
        )?;
        if added == 1 {
            Ok(())
        } else {
            Err(LoyaltyError::UnknownCode)
        }
    }

    async fn insert_stamp_card(&mut self, name: &str, needed: i64, reward: &str) -> Result<i64, LoyaltyError> {
        self.exec(
            "INSERT INTO stamp_cards (name, needed, reward) VALUES (?1, ?2, ?3)",
            params![name, needed, reward],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    async fn insert_promotion(
        &mut self,
        name: &str,
        description: &str,
        starts_at: UnixSeconds,
        ends_at: UnixSeconds,
    ) -> Result<i64, LoyaltyError> {
        self.exec(
            "INSERT INTO promotions (name, description, starts_at, ends_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, description, starts_at, ends_at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    async fn insert_audit(&mut self, org: &str, entries: &[AuditRow]) -> Result<(), LoyaltyError> {
        let mut stmt = self.conn.prepare_cached(crate::loyalty::rows::AUDIT_INSERT)?;
        for e in entries {
            stmt.execute(params![
                org, e.at, e.actor, e.action, e.guest, e.detail, e.reason, e.op_key
            ])?;
        }
        Ok(())
    }

    async fn save_stamp_card(&mut self, org: &str, id: Option<i64>, card: &StampCardDef) -> Result<i64, LoyaltyError> {
        match id {
            None => {
                self.exec(
                    "INSERT INTO stamp_cards (org, name, needed, reward) VALUES (?1, ?2, ?3, ?4)",
                    params![org, card.name, card.needed, card.reward],
                )?;
                Ok(self.conn.last_insert_rowid())
            }
            Some(id) => {
                let changed = self.exec(
                    "UPDATE stamp_cards SET name = ?3, needed = ?4, reward = ?5 WHERE id = ?1 AND org = ?2",
                    params![id, org, card.name, card.needed, card.reward],
                )?;
                if changed == 1 {
                    Ok(id)
                } else {
                    Err(LoyaltyError::UnknownCode)
                }
            }
        }
    }

    async fn save_promotion(&mut self, org: &str, id: Option<i64>, p: &PromotionDef) -> Result<i64, LoyaltyError> {
        match id {
            None => {
                self.exec(
                    "INSERT INTO promotions (org, name, description, starts_at, ends_at, weekdays, day_start_min, day_end_min)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![org, p.name, p.description, p.starts_at, p.ends_at, p.weekdays, p.day_start_min, p.day_end_min],
                )?;
                Ok(self.conn.last_insert_rowid())
            }
            Some(id) => {
                let changed = self.exec(
                    "UPDATE promotions SET name = ?3, description = ?4, starts_at = ?5, ends_at = ?6, weekdays = ?7,
                            day_start_min = ?8, day_end_min = ?9
                     WHERE id = ?1 AND org = ?2",
                    params![
                        id,
                        org,
                        p.name,
                        p.description,
                        p.starts_at,
                        p.ends_at,
                        p.weekdays,
                        p.day_start_min,
                        p.day_end_min
                    ],
                )?;
                if changed == 1 {
                    Ok(id)
                } else {
                    Err(LoyaltyError::UnknownCode)
                }
            }
        }
    }

    async fn save_gift(&mut self, org: &str, id: Option<i64>, g: &GiftDef) -> Result<i64, LoyaltyError> {
        match id {
            None => {
                self.exec(
                    "INSERT INTO gifts (org, name, pos_code, points, active) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![org, g.name, g.pos_code, g.points.0, g.active],
                )?;
                Ok(self.conn.last_insert_rowid())
            }
            Some(id) => {
                let changed = self.exec(
                    "UPDATE gifts SET name = ?3, pos_code = ?4, points = ?5, active = ?6 WHERE id = ?1 AND org = ?2",
                    params![id, org, g.name, g.pos_code, g.points.0, g.active],
                )?;
                if changed == 1 {
                    Ok(id)
                } else {
                    Err(LoyaltyError::UnknownCode)
                }
            }
        }
    }

    async fn gift_defs(&mut self, org: &str) -> Result<Vec<(i64, GiftDef)>, LoyaltyError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {GIFT_COLUMNS} FROM gifts WHERE org = ?1 ORDER BY id"))?;
        let rows = stmt.query_map([org], |row| gift_at(row))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn insert_issued_gift(
        &mut self,
        guest: GuestId,
        code: &str,
        gift_id: i64,
        gift: &GiftDef,
    ) -> Result<(), LoyaltyError> {
        let added = self.exec(
            "INSERT INTO gift_codes (org, code, guest_id, gift_name, points, gift_id)
             SELECT org, ?1, id, ?3, ?4, ?5 FROM guests WHERE id = ?2",
            params![code, guest, gift.name, gift.points.0, gift_id],
        )?;
        if added == 1 {
            Ok(())
        } else {
            Err(LoyaltyError::UnknownCode)
        }
    }

    async fn insert_past_visit(
        &mut self,
        op_key: &str,
        guest: GuestId,
        amount_due: Kopecks,
        at: UnixSeconds,
    ) -> Result<(), LoyaltyError> {
        self.exec(
            "INSERT INTO payments (op_id, guest_id, spent, subtotal, gift_codes, amount_due, accrued, balance_after, at)
             SELECT ?1, id, 0, ?3, '[]', ?3, 0, balance, ?4 FROM guests WHERE id = ?2",
            params![op_key, guest, amount_due.0, at],
        )?;
        // Recorded like a write from before idempotency records were kept: no request to compare.
        self.exec(
            "INSERT INTO op_log (op_key, kind, fingerprint, answer)
             SELECT op_id, 'commit', NULL, json_object('spent', 0, 'accrued', 0, 'balance_after', balance_after,
                                                       'new_group', NULL)
             FROM payments WHERE op_id = ?1",
            [op_key],
        )?;
        self.exec(spend_days::BOOK_PAYMENT_SQL, [op_key])?;
        Ok(())
    }
}

/// Records a balance change and applies it to the stored balance; returns the balance after.
/// A group's columns in the order the insert and the update list them.
fn group_values(g: &NewGroup) -> [&dyn rusqlite::ToSql; 8] {
    [
        &g.name,
        &g.rank,
        &g.discount_bp,
        &g.accrual_bp,
        &g.spend_threshold.0,
        &g.never_downgrade,
        &g.daily_ops_limit,
        &g.daily_spend_limit.0,
    ]
}

fn post_operation(conn: &Connection, posting: &Posting<'_>) -> Result<Kopecks, LoyaltyError> {
    let delta = posting.kind.signed(posting.amount);
    let balance_after: i64 = conn
        .prepare_cached("UPDATE guests SET balance = balance + ?2 WHERE id = ?1 RETURNING balance")?
        .query_row(params![posting.guest, delta.0], |row| row.get(0))
        .optional()?
        .ok_or(LoyaltyError::UnknownCode)?;
    let (op_id, payment_id, refund_id) = match posting.link {
        Link::Op(op) => (Some(op), None, None),
        Link::Payment(id) => (None, Some(id), None),
        Link::Refund(id) => (None, None, Some(id)),
    };
    conn.prepare_cached(
        "INSERT INTO operations (guest_id, kind, amount, balance_after, note, at, op_id, payment_id, refund_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        posting.guest,
        posting.kind.as_str(),
        delta.0,
        balance_after,
        posting.note,
        posting.at,
        op_id,
        payment_id,
        refund_id
    ])?;
    Ok(Kopecks(balance_after))
}

// ----- Read models, programme, groups and guests -----

fn load_card(conn: &Connection, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, LoyaltyError> {
    // One statement, so the balance and the holds come from the same snapshot.
    let (name, phone, balance, available, account): (String, Option<String>, i64, i64, Option<String>) = conn
        .prepare_cached(&format!("{CARD_GUEST_SQL} WHERE g.id = ?1").replace("{held}", HELD_SQL))?
        .query_row(params![guest, now], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
        })
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
        promotions: current_promotions(conn, guest, now)?,
        daily_visits: None,
        account,
    })
}

fn load_stamps(conn: &Connection, guest: GuestId) -> Result<Vec<StampProgress>, LoyaltyError> {
    let mut stmt = conn.prepare_cached(GUEST_STAMP_CARDS_SQL)?;
    let rows = stmt.query_map([guest], |row| {
        Ok(StampProgress {
            card_name: row.get(3)?,
            collected: row.get(1)?,
            needed: row.get(2)?,
            reward: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn current_promotions(conn: &Connection, guest: GuestId, now: UnixSeconds) -> Result<Vec<Promotion>, LoyaltyError> {
    let mut stmt = conn.prepare_cached(GUEST_PROMOTIONS_SQL)?;
    let rows = stmt.query_map([guest], |row| promotion_at(row))?;
    Ok(rewards::current_promotions(rows.collect::<Result<_, _>>()?, now))
}

/// A new organisation starts with the template programme (`program`, whose hold time
/// `serve --hold-ttl` sets); an existing one keeps its own.
fn ensure_org_program(conn: &Connection, org: &str) -> Result<(), LoyaltyError> {
    conn.execute(
        "INSERT OR IGNORE INTO programs
             SELECT ?1, name, max_check_bp, spend_step, hold_ttl_secs, group_period_days, utc_offset_minutes,
                    accrual_basis, welcome_bonus, till_enrolment
             FROM program WHERE id = 1",
        [org],
    )?;
    Ok(())
}

fn guest_group(conn: &Connection, guest: GuestId) -> Result<Group, LoyaltyError> {
    conn.prepare_cached(&format!(
        "SELECT {GROUP_COLUMNS} FROM guests g JOIN guest_groups gg ON gg.id = g.group_id WHERE g.id = ?1"
    ))?
    .query_row([guest], group_from_row)
    .optional()?
    .ok_or(LoyaltyError::UnknownCode)
}

fn has_no_guests(conn: &Connection) -> Result<bool, LoyaltyError> {
    Ok(conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM guests)", [], |row| row.get(0))?)
}

fn guest_org_of(conn: &Connection, guest: GuestId) -> Result<String, LoyaltyError> {
    conn.query_row("SELECT org FROM guests WHERE id = ?1", [guest], |row| row.get(0))
        .optional()?
        .ok_or(LoyaltyError::UnknownCode)
}

/// Runs one statement of the shared SQL (`$1`… bound by position) on a SQLite connection.
pub(crate) fn sqlite_query(conn: &rusqlite::Connection, sql: &str, params: &[Val]) -> Result<Rows, LoyaltyError> {
    use rusqlite::types::{ToSqlOutput, Value, ValueRef};
    let mut stmt = conn.prepare(sql)?;
    let bound: Vec<ToSqlOutput<'_>> = params
        .iter()
        .map(|p| match p {
            Val::Int(v) => ToSqlOutput::Owned(Value::Integer(*v)),
            Val::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Val::Null => ToSqlOutput::Owned(Value::Null),
        })
        .collect();
    let columns = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(bound.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(match row.get_ref(i)? {
                ValueRef::Integer(v) => Val::Int(v),
                ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Real(r) => Val::Int(r as i64),
                ValueRef::Null | ValueRef::Blob(_) => Val::Null,
            });
        }
        out.push(values);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_demo_is_consistent() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        assert!(ledger.is_empty().unwrap());
        assert!(ledger.seed_demo(1_741_608_000).unwrap());
        assert!(!ledger.is_empty().unwrap());
        ledger.check_invariants().unwrap();
    }

    /// The group period's spending read from the day sums equals the plain sum over every check
    /// of the period (the statement the day sums replaced), for windows starting anywhere:
    /// before, between and at the checks, at midnight and a second either side of it.
    #[test]
    fn the_window_from_day_sums_is_the_sum_of_its_checks() {
        use crate::loyalty::rules::SECONDS_PER_DAY;
        const SCAN_SQL: &str = "SELECT COALESCE(SUM(p.amount_due), 0)
                - COALESCE((SELECT SUM(r.amount) FROM refunds r JOIN payments q ON q.id = r.payment_id
                            WHERE q.guest_id = ?1 AND q.at > ?2 AND q.owner_payment_id IS NULL), 0)
            FROM payments p WHERE p.guest_id = ?1 AND p.at > ?2 AND p.owner_payment_id IS NULL";
        let mut ledger = Ledger::open_in_memory().unwrap();
        let group = ledger
            .add_group(&NewGroup {
                name: "Гость".to_string(),
                rank: 1,
                discount_bp: 0,
                accrual_bp: 500,
                spend_threshold: Kopecks(0),
                never_downgrade: false,
                daily_ops_limit: 0,
                daily_spend_limit: Kopecks(0),
            })
            .unwrap();
        let start = 1_741_608_000 - 1_741_608_000 % SECONDS_PER_DAY;
        let guest = ledger.add_guest("Анна", None, group, start).unwrap();
        // Checks over five days: two on one second, one at midnight, one a second before it;
        // some returned in part, one in full.
        let times = [
            start + 600,
            start + 600,
            start + SECONDS_PER_DAY - 1,
            start + SECONDS_PER_DAY,
            start + SECONDS_PER_DAY + 7_200,
            start + 3 * SECONDS_PER_DAY + 50_000,
            start + 4 * SECONDS_PER_DAY + 86_000,
        ];
        for (n, at) in times.iter().enumerate() {
            let check = CheckInfo {
                subtotal: Kopecks(10_000 * (n as i64 + 1)),
                gift_codes: Vec::new(),
                lines: Vec::new(),
            };
            ledger
                .commit_payment(&format!("pay-{n}"), guest, None, Kopecks::ZERO, &check, *at)
                .unwrap();
            match n % 3 {
                0 => {
                    ledger
                        .refund(
                            &format!("ret-{n}"),
                            &format!("pay-{n}"),
                            ReturnPart::Amount(Kopecks(2_500)),
                            at + 60,
                        )
                        .unwrap();
                }
                1 if n == 4 => {
                    ledger
                        .refund(&format!("ret-{n}"), &format!("pay-{n}"), ReturnPart::Rest, at + 60)
                        .unwrap();
                }
                _ => {}
            }
        }
        ledger.check_invariants().unwrap();
        let mut starts: Vec<UnixSeconds> = (-2..7).map(|d| start + d * SECONDS_PER_DAY).collect();
        for at in times {
            starts.extend([at - 1, at, at + 1]);
        }
        starts.extend((0..60).map(|n| start - SECONDS_PER_DAY + n * 9_173));
        let mut nonzero = 0;
        for since in starts {
            let scanned: i64 = ledger
                .conn
                .query_row(SCAN_SQL, params![guest, since], |row| row.get(0))
                .unwrap();
            let summed = run_now(ledger.reader().window_spend(guest, since)).unwrap();
            assert_eq!(summed, Kopecks(scanned), "a window after {since} (start {start})");
            nonzero += usize::from(scanned > 0);
        }
        assert!(nonzero > 40, "the windows must hold checks: {nonzero}");
    }
}
