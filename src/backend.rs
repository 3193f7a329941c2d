//! The boundary between the till and whatever keeps the loyalty ledger.
//!
//! The workflow core and the UI know only this trait: the embedded SQLite engine is behind it,
//! and so is the HTTP client of the chain's loyalty server (`crate::remote`).
//! Calls are blocking and run on the background worker, never on the UI thread.

use crate::domain::{
    CardPayment, CardShare, CheckFilter, CheckInfo, CheckSummary, GuestCard, GuestId, HistoryEntry, HoldId,
    HoldReceipt, Identification, LooseEnd, LooseEndKind, LoyaltyError, PaymentReceipt, RefundReceipt, ReturnPart,
    ScanEvent, ShiftReport, SpendQuote, UnixSeconds,
};
use crate::ledger::Ledger;
use crate::loyalty::engine::Op;
use crate::money::Kopecks;
use std::path::PathBuf;

/// Kept here too for the backends and their callers; they live in `domain` so that the
/// workflow core names them without reaching the ledger.
pub use crate::domain::{BackendKind, ServerLink};

/// Every write carries an operation id made by the till (`op_id`): a repeat with the same id
/// returns the first result, so a retry after a lost answer never debits or accrues twice.
pub trait LoyaltyBackend: Send {
    fn kind(&self) -> BackendKind;

    /// Resolves any scanned or typed code: app QR, card barcode, magnetic stripe, manual code,
    /// phone, gift code. Counts towards the guest's daily operations limit.
    fn identify(&mut self, scan: &ScanEvent) -> Result<Identification, LoyaltyError>;

    fn guest_card(&mut self, guest: GuestId) -> Result<GuestCard, LoyaltyError>;

    /// The most the guest may pay with bonuses on this check, and why.
    fn calculate(&mut self, guest: GuestId, check: &CheckInfo) -> Result<SpendQuote, LoyaltyError>;

    /// Reserves bonuses for a payment (first phase).
    fn hold(
        &mut self,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
    ) -> Result<HoldReceipt, LoyaltyError>;

    /// Closes a paid check: debits the hold (possibly for less), accrues on the part not paid
    /// with bonuses, redeems the check's gift codes, adds stamps, moves the guest between groups.
    /// With `hold == None` the guest keeps bonuses and `spent` must be zero.
    fn commit_payment(
        &mut self,
        op_id: &str,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: &CheckInfo,
    ) -> Result<PaymentReceipt, LoyaltyError>;

    /// Holds bonuses on several accounts for one check (cards presented one after another), all
    /// or none: a refusal names its card (`LoyaltyError::CardRefused`) and nothing is held.
    /// Answers each account's hold in order (none for an account paying nothing).
    fn hold_shared(
        &mut self,
        op_id: &str,
        owner: GuestId,
        shares: &[CardShare],
        check: &CheckInfo,
    ) -> Result<Vec<Option<HoldReceipt>>, LoyaltyError>;

    /// Closes a check paid from several accounts, all or nothing: each account debited against
    /// the check, the accrual to `owner`. Answers each account's receipt in order.
    fn commit_shared(
        &mut self,
        op_id: &str,
        owner: GuestId,
        payments: &[CardPayment],
        check: &CheckInfo,
    ) -> Result<Vec<PaymentReceipt>, LoyaltyError>;

    /// Releases a hold. Voiding a hold that is already void or expired succeeds.
    fn void_hold(&mut self, op_id: &str, hold: HoldId) -> Result<(), LoyaltyError>;

    fn history(&mut self, guest: GuestId, limit: usize) -> Result<Vec<HistoryEntry>, LoyaltyError>;

    /// The welcome bonus when the programme lets this till enrol a guest whose code was not
    /// found (zero: no bonus), `None` when it does not.
    fn enrolment(&mut self) -> Result<Option<Kopecks>, LoyaltyError>;

    /// Enrols a guest whose code was not found: `code` becomes their card, `phone` is required,
    /// `name` may be empty; the welcome bonus is credited. Answers the new guest as identified.
    /// A repeat of `op_id` answers the same guest (one bonus).
    fn enrol(&mut self, op_id: &str, code: &ScanEvent, phone: &str, name: &str)
    -> Result<Identification, LoyaltyError>;

    /// This till's closed checks the filter names (today's, by number, by guest), newest first.
    fn find_checks(&mut self, filter: &CheckFilter) -> Result<Vec<CheckSummary>, LoyaltyError>;

    /// What returning `amount` (or the rest) of the check paid with `payment_op_id` would change;
    /// nothing is written.
    fn preview_refund(&mut self, payment_op_id: &str, part: &ReturnPart) -> Result<RefundReceipt, LoyaltyError>;

    /// Returns `part` (an amount, lines, or the rest) of the check paid with `payment_op_id`; a
    /// repeat of `op_id` answers the first result and changes nothing.
    fn refund(&mut self, op_id: &str, payment_op_id: &str, part: &ReturnPart) -> Result<RefundReceipt, LoyaltyError>;

    /// A cheap check of a remote backend, run by the worker while no call is waiting: it learns
    /// whether the server answers, and sends what the till queued as soon as it does. Returns
    /// when to check again; None for a backend with nothing to check.
    fn probe(&mut self) -> Option<std::time::Duration> {
        None
    }

    /// What this till left in doubt: open holds, writes queued or unanswered (for «Закрыть смену»).
    fn loose_ends(&mut self) -> Result<Vec<LooseEnd>, LoyaltyError>;

    /// Finishes or releases one entry of [`LoyaltyBackend::loose_ends`]: an open hold is voided
    /// with `op_id`; a queued or unanswered write is sent again (it keeps its own op id).
    fn settle_loose_end(&mut self, op_id: &str, end: &LooseEnd) -> Result<(), LoyaltyError>;

    /// The shift's figures (see [`ShiftReport`]).
    fn shift_report(&mut self) -> Result<ShiftReport, LoyaltyError>;

    /// Whether the receipt of the payment `op_id` was made by the till itself, while its server
    /// was away (the server's own answer comes later).
    fn is_provisional(&self, _op_id: &str) -> bool {
        false
    }
}

/// Where "now" comes from, so that hold expiry and daily limits can be tested.
pub trait Clock: Send {
    fn now(&self) -> UnixSeconds;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// The single-cafe set-up: the ledger in a SQLite file on this till.
pub struct EmbeddedBackend {
    ledger: Ledger,
    path: PathBuf,
    clock: Box<dyn Clock>,
}

impl EmbeddedBackend {
    pub fn open(path: PathBuf, clock: Box<dyn Clock>) -> Result<Self, LoyaltyError> {
        let mut ledger = Ledger::open(&path)?;
        // Holds left open by a crash or power cut are released once their time is up.
        ledger.expire_holds(clock.now())?;
        Ok(EmbeddedBackend { ledger, path, clock })
    }

    pub fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }
}

impl LoyaltyBackend for EmbeddedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Embedded {
            path: self.path.clone(),
        }
    }

    fn identify(&mut self, scan: &ScanEvent) -> Result<Identification, LoyaltyError> {
        self.ledger.identify(&scan.payload, scan.kind, self.clock.now())
    }

    fn guest_card(&mut self, guest: GuestId) -> Result<GuestCard, LoyaltyError> {
        self.ledger.guest_card(guest, self.clock.now())
    }

    fn calculate(&mut self, guest: GuestId, check: &CheckInfo) -> Result<SpendQuote, LoyaltyError> {
        self.ledger.calculate(guest, check, self.clock.now())
    }

    fn hold(
        &mut self,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
    ) -> Result<HoldReceipt, LoyaltyError> {
        self.ledger.hold(op_id, guest, amount, check, self.clock.now())
    }

    fn commit_payment(
        &mut self,
        op_id: &str,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: &CheckInfo,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        self.ledger
            .commit_payment(op_id, guest, hold, spent, check, self.clock.now())
    }

    fn hold_shared(
        &mut self,
        op_id: &str,
        owner: GuestId,
        shares: &[CardShare],
        check: &CheckInfo,
    ) -> Result<Vec<Option<HoldReceipt>>, LoyaltyError> {
        let op = Op::HoldShared {
            op_key: op_id.to_string(),
            owner,
            shares: shares.to_vec(),
            check: check.clone(),
        };
        self.ledger.run(&op, None, self.clock.now())?.into_shared_holds()
    }

    fn commit_shared(
        &mut self,
        op_id: &str,
        owner: GuestId,
        payments: &[CardPayment],
        check: &CheckInfo,
    ) -> Result<Vec<PaymentReceipt>, LoyaltyError> {
        let op = Op::CommitShared {
            op_key: op_id.to_string(),
            owner,
            payments: payments.to_vec(),
            check: check.clone(),
        };
        self.ledger.run(&op, None, self.clock.now())?.into_payments()
    }

    fn void_hold(&mut self, op_id: &str, hold: HoldId) -> Result<(), LoyaltyError> {
        self.ledger.void_hold(op_id, hold, self.clock.now())
    }

    fn history(&mut self, guest: GuestId, limit: usize) -> Result<Vec<HistoryEntry>, LoyaltyError> {
        self.ledger.history(guest, limit)
    }

    fn enrolment(&mut self) -> Result<Option<Kopecks>, LoyaltyError> {
        let program = self.ledger.program()?;
        Ok(program.till_enrolment.then_some(program.welcome_bonus))
    }

    fn enrol(
        &mut self,
        op_id: &str,
        code: &ScanEvent,
        phone: &str,
        name: &str,
    ) -> Result<Identification, LoyaltyError> {
        let now = self.clock.now();
        let guest = self
            .ledger
            .enrol_at_till(op_id, &code.payload, code.kind, phone, name, now)?;
        let card = self.ledger.guest_card(guest, now)?;
        Ok(Identification { card, gift: None })
    }

    fn find_checks(&mut self, filter: &CheckFilter) -> Result<Vec<CheckSummary>, LoyaltyError> {
        self.ledger.checks(filter, self.clock.now())
    }

    fn preview_refund(&mut self, payment_op_id: &str, part: &ReturnPart) -> Result<RefundReceipt, LoyaltyError> {
        self.ledger
            .refund_preview(payment_op_id, part.clone(), self.clock.now())
    }

    fn refund(&mut self, op_id: &str, payment_op_id: &str, part: &ReturnPart) -> Result<RefundReceipt, LoyaltyError> {
        self.ledger.refund(op_id, payment_op_id, part.clone(), self.clock.now())
    }

    /// On its own file every open hold is this till's.
    fn loose_ends(&mut self) -> Result<Vec<LooseEnd>, LoyaltyError> {
        let holds = self.ledger.open_holds(None)?;
        Ok(holds
            .into_iter()
            .map(|hold| LooseEnd {
                kind: LooseEndKind::OpenHold,
                op_id: String::new(),
                hold: Some(hold.hold_id),
                amount: hold.amount,
                units: 0,
                needs_server: false,
            })
            .collect())
    }

    fn settle_loose_end(&mut self, op_id: &str, end: &LooseEnd) -> Result<(), LoyaltyError> {
        match (end.kind, end.hold) {
            (LooseEndKind::OpenHold, Some(hold)) => self.ledger.void_hold(op_id, hold, self.clock.now()),
            // Nothing is ever queued on the till's own file.
            _ => Err(LoyaltyError::UnknownHold),
        }
    }

    fn shift_report(&mut self) -> Result<ShiftReport, LoyaltyError> {
        self.ledger.shift_report(self.clock.now())
    }
}
