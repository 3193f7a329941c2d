//! The one loyalty engine: every operation is load, decide, apply. It reads what the rules need
//! through a store transaction ([`LedgerTx`]), asks [`super::rules`], and has the store write the
//! answer. The SQLite ledger (the embedded till and the server on SQLite) and the PostgreSQL
//! store implement [`LedgerTx`] and only read and write rows; neither decides anything.
//!
//! Every write carries an operation id and is remembered in one idempotency record (the id, the
//! kind, a fingerprint of the whole request, the answer): a repeat returns the stored answer, the
//! same id with other content is refused with [`LoyaltyError::OperationIdConflict`]. The store
//! runs each operation in one transaction, and [`LedgerTx::begin_guest_write`] takes the guest's
//! lock before the record is looked up, so two requests at once cannot both pass a limit or
//! both find no record.

use super::import::{self, ImportOutcome, ImportRow};
use super::report::{self, Figures};
use super::rewards::{self, GiftDef, PromotionDef, StampCardDef};
use super::rules::{
    self, CodeMatch, GiftCodeRow, Group, GuestSnapshot, HoldPlan, HoldRow, HoldStatus, NewGroup, OpKind, PaidCheck,
    ProgramSettings, RefundPlan,
};
use crate::domain::LoyaltyError::{UnknownCode, UnknownHold, UnknownPayment};
use crate::domain::{
    CardPayment, CardShare, CheckFilter, CheckInfo, CheckLine, CheckSummary, DailyVisits, Gift, GuestCard, GuestId,
    HistoryEntry, HoldId, HoldReceipt, Identification, IdentifierKind, LineReturn, LoyaltyError, PaymentReceipt,
    RefundReceipt, ReturnPart, ScanKind, SpendQuote, UnixSeconds,
};
use crate::money::Kopecks;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One remembered write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    pub key: String,
    pub kind: String,
    /// A digest of the whole request; `None` for operations made before records were kept
    /// (their content was not stored, so a repeat of one is taken as the same request).
    pub fingerprint: Option<String>,
    /// The answer, as JSON.
    pub answer: String,
}

/// What a balance change belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link<'a> {
    /// A manual change, by its operation id.
    Op(&'a str),
    Payment(i64),
    Refund(i64),
}

/// Whose programme a change sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramScope<'a> {
    /// What a new organisation starts with (`serve --hold-ttl` sets its hold time).
    Template,
    /// The template and every organisation's (the embedded till's one programme, the demo).
    Everyone,
    /// One organisation's (it gets one from the template first if it has none yet).
    Org(&'a str),
}

/// One balance change to record and apply.
#[derive(Clone, Debug)]
pub struct Posting<'a> {
    pub guest: GuestId,
    pub kind: OpKind,
    /// Positive; the kind decides the sign stored.
    pub amount: Kopecks,
    pub note: &'a str,
    pub at: UnixSeconds,
    pub link: Link<'a>,
}

/// A paid check to record.
#[derive(Clone, Debug)]
pub struct NewPayment<'a> {
    pub op_key: &'a str,
    pub guest: GuestId,
    pub hold: Option<HoldId>,
    pub subtotal: Kopecks,
    /// The check's gift codes as a JSON array.
    pub gift_codes: &'a str,
    pub plan: &'a rules::PaymentPlan,
    pub at: UnixSeconds,
    /// What a till that took the payment offline asked to debit.
    pub offline_requested: Option<Kopecks>,
    /// For another account's share of a check paid from several: the owner's payment.
    pub owner_payment: Option<i64>,
    /// The check's lines as JSON ([`rules::kept_lines`]), when the till sent them.
    pub lines: Option<&'a str>,
}

/// What a payment needs besides the guest's snapshot, read in one go (a prefetch: the store may
/// send the reads together).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentContext {
    /// The hold being paid from, if any.
    pub hold: Option<HoldRow>,
    /// The guest's spending in the group window (only when the guest's group moves by spend).
    pub window_spend: Kopecks,
    /// The groups that take part in moves (only when the guest's group moves by spend).
    pub groups: Vec<Group>,
    pub stamps: Vec<StampCount>,
}

/// What a write will do once its guest is locked, told to the store before the lock
/// ([`LedgerTx::read_ahead`]): a store may send what that step reads with the lock, in one round
/// trip, and keep the row it inserts back until the transaction ends. The operation then writes
/// nothing that refers to that row except through the store's deferred writes (a payment with gift
/// codes, whose redemption refers to it at once, is inserted at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ahead {
    /// A payment of a check, from the hold if any ([`commit`]).
    Payment { hold: Option<HoldId> },
    /// A hold ([`hold`]).
    Hold,
}

/// A stamp card as one guest has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StampCount {
    pub card_id: i64,
    pub collected: i64,
    pub needed: i64,
}

/// A guest to add in a batch ([`LedgerTx::insert_guests`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGuestRow {
    pub name: String,
    /// Normalised.
    pub phone: Option<String>,
    pub cards: Vec<(IdentifierKind, String)>,
    pub group_id: i64,
}

/// One entry of the audit log, as the engine writes it in the change's own transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub at: UnixSeconds,
    pub actor: String,
    pub action: String,
    pub guest: Option<GuestId>,
    /// Phones and codes masked.
    pub detail: String,
    pub reason: String,
    pub op_key: Option<String>,
}

/// The rows a store reads and writes for the engine, inside one transaction. Implementations
/// hold no rules: each method is a query or a statement.
#[allow(async_fn_in_trait)]
pub trait LedgerTx {
    type Error: From<LoyaltyError>;

    /// Locks the guest's row until the transaction ends, then reads the guest's snapshot at `now`
    /// and the record of `op_key` (in this order: the record is read under the lock).
    async fn begin_guest_write(
        &mut self,
        guest: GuestId,
        now: UnixSeconds,
        op_key: &str,
    ) -> Result<(Option<GuestSnapshot>, Option<OpRecord>), Self::Error>;
    /// The guest's snapshot without a lock (quotes and identification).
    async fn snapshot(&mut self, guest: GuestId, now: UnixSeconds) -> Result<Option<GuestSnapshot>, Self::Error>;
    async fn save_op_record(&mut self, record: &OpRecord) -> Result<(), Self::Error>;
    /// The record of `op_key` for a write that has no guest yet (an enrolment), read under a
    /// lock on the key until the transaction ends, so that a repeat sent at once waits for the
    /// first instead of racing it.
    async fn op_record(&mut self, op_key: &str) -> Result<Option<OpRecord>, Self::Error>;

    // Codes.
    async fn phone_owner(&mut self, org: Option<&str>, phone: &str) -> Result<Option<GuestId>, Self::Error>;
    async fn gift_code(&mut self, org: Option<&str>, code: &str) -> Result<Option<GiftCodeRow>, Self::Error>;
    async fn identifier_owners(
        &mut self,
        org: Option<&str>,
        value: &str,
    ) -> Result<Vec<(GuestId, IdentifierKind)>, Self::Error>;
    /// Locks the guest (for counting) and counts today's identifications.
    /// Checks the guest paid since `since`: the visits a daily limit counts.
    async fn visits_since(&mut self, guest: GuestId, since: UnixSeconds) -> Result<i64, Self::Error>;
    async fn record_identification(&mut self, guest: GuestId, via: &str, at: UnixSeconds) -> Result<(), Self::Error>;
    /// What the cashier sees about the guest.
    async fn card(&mut self, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, Self::Error>;

    // Spending counters.
    /// Bonus payments since `since` plus every hold still open at `now`.
    async fn spent_since(
        &mut self,
        guest: GuestId,
        since: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<Kopecks, Self::Error>;
    /// The amount due of the guest's checks after `since`, returns deducted.
    async fn window_spend(&mut self, guest: GuestId, since: UnixSeconds) -> Result<Kopecks, Self::Error>;
    /// The groups that take part in automatic moves (rank >= 1).
    async fn ranked_groups(&mut self) -> Result<Vec<Group>, Self::Error>;
    /// Every group.
    async fn groups(&mut self) -> Result<Vec<Group>, Self::Error>;

    /// Everything a payment reads after the guest's lock: the hold, the window's spending and the
    /// groups (when `window_since` is given), the stamp cards. Stores may override this to send
    /// the reads at once.
    async fn payment_context(
        &mut self,
        guest: GuestId,
        hold: Option<HoldId>,
        window_since: Option<UnixSeconds>,
    ) -> Result<PaymentContext, Self::Error> {
        let hold = match hold {
            Some(hold) => self.hold_row(hold).await?,
            None => None,
        };
        let (window_spend, groups) = match window_since {
            Some(since) => (self.window_spend(guest, since).await?, self.ranked_groups().await?),
            None => (Kopecks::ZERO, Vec::new()),
        };
        Ok(PaymentContext {
            hold,
            window_spend,
            groups,
            stamps: self.stamp_counts(guest).await?,
        })
    }

    /// What the write is about to do after the guest's lock; see [`Ahead`]. Stores that gain
    /// nothing by knowing ignore it.
    fn read_ahead(&mut self, ahead: Ahead) {
        let _ = ahead;
    }

    /// Called once an operation has decided and written everything: a store that deferred writes
    /// sends them now, before the transaction commits.
    async fn finish(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    // Holds.
    async fn insert_hold(
        &mut self,
        op_key: &str,
        guest: GuestId,
        plan: &HoldPlan,
        now: UnixSeconds,
    ) -> Result<HoldId, Self::Error>;
    /// The hold, locked until the transaction ends.
    async fn hold_row(&mut self, hold: HoldId) -> Result<Option<HoldRow>, Self::Error>;
    async fn close_hold(
        &mut self,
        hold: HoldId,
        status: HoldStatus,
        committed: Option<Kopecks>,
        now: UnixSeconds,
    ) -> Result<(), Self::Error>;
    async fn record_void(&mut self, op_key: &str, hold: HoldId, now: UnixSeconds) -> Result<(), Self::Error>;
    /// Voids every open hold of the guest; returns how many.
    async fn void_open_holds(&mut self, guest: GuestId, now: UnixSeconds) -> Result<u64, Self::Error>;

    // Payments and balance changes.
    async fn insert_payment(&mut self, payment: &NewPayment<'_>) -> Result<i64, Self::Error>;
    /// Adds `figures` ([`report::CHECK_FIGURES`]) to the organisation's sums of the quarter and
    /// scope ([`report::BOOK_SQL`]).
    async fn add_to_report(
        &mut self,
        org: &str,
        quarter: i64,
        scope: &str,
        figures: &[i64; report::CHECK_FIGURES],
    ) -> Result<(), Self::Error>;
    /// Applies and records a balance change; the balance after, or UnknownCode.
    async fn post(&mut self, posting: &Posting<'_>) -> Result<Kopecks, Self::Error>;
    /// [`post`](LedgerTx::post) when nothing reads the balance after it: a store may send it
    /// with the operation's last writes. A guest's row that is missing must still fail the
    /// operation.
    async fn post_unread(&mut self, posting: &Posting<'_>) -> Result<(), Self::Error> {
        self.post(posting).await.map(|_| ())
    }
    /// Marks the guest's unredeemed code redeemed by the payment; false when there is none.
    async fn redeem_gift(
        &mut self,
        code: &str,
        guest: GuestId,
        payment_id: i64,
        now: UnixSeconds,
    ) -> Result<bool, Self::Error>;
    async fn stamp_counts(&mut self, guest: GuestId) -> Result<Vec<StampCount>, Self::Error>;
    async fn set_stamps(&mut self, guest: GuestId, card_id: i64, collected: i64) -> Result<(), Self::Error>;
    async fn set_group(&mut self, guest: GuestId, group_id: i64) -> Result<(), Self::Error>;

    // Refunds.
    async fn paid_check(&mut self, payment_op_key: &str) -> Result<Option<PaidCheck>, Self::Error>;
    async fn insert_refund(
        &mut self,
        op_key: &str,
        check: &PaidCheck,
        requested: Option<Kopecks>,
        plan: &RefundPlan,
        now: UnixSeconds,
    ) -> Result<i64, Self::Error>;
    async fn set_refund_balance(&mut self, refund_id: i64, balance_after: Kopecks) -> Result<(), Self::Error>;
    /// A return that changed what is left of the check's lines: the refund records the units it
    /// gave back (`returned`, JSON of [`LineReturn`]s) and the payment its lines as they now
    /// stand (`lines`, JSON of [`CheckLine`]s with their returned units).
    async fn record_lines_returned(
        &mut self,
        refund_id: i64,
        returned: &str,
        payment_id: i64,
        lines: &str,
    ) -> Result<(), Self::Error>;
    /// The names of the gifts the payment redeemed.
    async fn check_gifts(&mut self, payment_id: i64) -> Result<Vec<String>, Self::Error>;
    /// The operation ids of the shares other accounts paid of the owner's payment `payment_id`
    /// (a check paid from several accounts), by guest id.
    async fn check_shares(&mut self, payment_id: i64) -> Result<Vec<String>, Self::Error>;
    /// Gives the gifts the payment redeemed back to their guest, unredeemed.
    async fn restore_gifts(&mut self, payment_id: i64) -> Result<(), Self::Error>;
    /// Paid checks of `org` (`None`: every organisation) as `query` selects them, newest first.
    async fn paid_checks(
        &mut self,
        org: Option<&str>,
        query: &ChecksQuery<'_>,
    ) -> Result<Vec<CheckSummary>, Self::Error>;

    // What the back office and the till read about a guest.
    /// The guest's gift codes not yet redeemed (codes masked), oldest first.
    async fn gifts(&mut self, guest: GuestId) -> Result<Vec<Gift>, Self::Error>;
    /// Open holds of one guest or of everyone, oldest first.
    async fn open_holds(&mut self, guest: Option<GuestId>) -> Result<Vec<HoldReceipt>, Self::Error>;
    /// The guest's balance changes, newest first.
    async fn history(&mut self, guest: GuestId, limit: i64) -> Result<Vec<HistoryEntry>, Self::Error>;
    /// Marks every open hold whose time is up expired; returns how many.
    async fn expire_holds(&mut self, now: UnixSeconds) -> Result<u64, Self::Error>;

    // The programme and its guests, as the back office and the demo set them up.
    async fn has_guests(&mut self) -> Result<bool, Self::Error>;
    /// An organisation's programme (`None`: the template new organisations start with).
    async fn program(&mut self, org: Option<&str>) -> Result<ProgramSettings, Self::Error>;
    async fn save_program(&mut self, scope: ProgramScope<'_>, program: &ProgramSettings) -> Result<(), Self::Error>;
    async fn insert_group(&mut self, group: &NewGroup) -> Result<i64, Self::Error>;
    async fn set_blocked(&mut self, guest: GuestId, blocked: bool) -> Result<(), Self::Error>;
    /// Sets the guest's name and phone (normalised, or none) and makes the phone identifier match:
    /// the old one goes, the new one (if any) is added.
    async fn set_contact(&mut self, guest: GuestId, name: &str, phone: Option<&str>) -> Result<(), Self::Error>;
    /// Replaces a group's rules; UnknownCode when there is no such group.
    async fn update_group(&mut self, id: i64, group: &NewGroup) -> Result<(), Self::Error>;
    /// A guest of `org` (which gets the template programme if it has none yet); `phone` normalised.
    async fn insert_guest(
        &mut self,
        org: &str,
        name: &str,
        phone: Option<&str>,
        group_id: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, Self::Error>;
    /// Another bonus account of the guest (or of the guest whose account `guest` is) named `name`
    /// ([`crate::loyalty::rows::ACCOUNT_INSERT_SQL`]); `None` when the guest already has an
    /// account of that name.
    async fn insert_account(
        &mut self,
        guest: GuestId,
        name: &str,
        now: UnixSeconds,
    ) -> Result<Option<GuestId>, Self::Error>;
    /// An identifier in the guest's organisation; `value` as [`rules::identifier_value`] made it.
    async fn insert_identifier(&mut self, guest: GuestId, kind: IdentifierKind, value: &str)
    -> Result<(), Self::Error>;
    async fn insert_gift_code(
        &mut self,
        guest: GuestId,
        code: &str,
        name: &str,
        points: Kopecks,
    ) -> Result<(), Self::Error>;
    async fn insert_stamp_card(&mut self, name: &str, needed: i64, reward: &str) -> Result<i64, Self::Error>;
    async fn insert_promotion(
        &mut self,
        name: &str,
        description: &str,
        starts_at: UnixSeconds,
        ends_at: UnixSeconds,
    ) -> Result<i64, Self::Error>;
    /// Which of `values` a guest of `org` has as an identifier (any kind). The default asks
    /// value by value; a store with round trips answers in one query.
    async fn taken_values(&mut self, org: &str, values: &[String]) -> Result<Vec<String>, Self::Error> {
        let mut taken = Vec::new();
        for value in values {
            let owned = !self.identifier_owners(Some(org), value).await?.is_empty()
                || self.phone_owner(Some(org), value).await?.is_some();
            if owned {
                taken.push(value.clone());
            }
        }
        Ok(taken)
    }
    /// Adds guests of `org` with their identifiers (a phone also as the phone identifier), as
    /// [`add_guest`] and `insert_identifier` would one by one; answers their ids in order.
    async fn insert_guests(
        &mut self,
        org: &str,
        guests: &[NewGuestRow],
        now: UnixSeconds,
    ) -> Result<Vec<GuestId>, Self::Error> {
        let mut ids = Vec::with_capacity(guests.len());
        for guest in guests {
            let id = self
                .insert_guest(org, &guest.name, guest.phone.as_deref(), guest.group_id, now)
                .await?;
            if let Some(phone) = &guest.phone {
                self.insert_identifier(id, IdentifierKind::Phone, phone).await?;
            }
            for (kind, value) in &guest.cards {
                self.insert_identifier(id, *kind, value).await?;
            }
            ids.push(id);
        }
        Ok(ids)
    }
    /// Applies postings, each to a different guest (the caller makes sure), their balances after
    /// unread.
    async fn post_many(&mut self, postings: &[Posting<'_>]) -> Result<(), Self::Error> {
        for posting in postings {
            self.post_unread(posting).await?;
        }
        Ok(())
    }
    /// Writes audit entries of `org` (the shared `AUDIT_INSERT`: a repeated operation key is
    /// written once).
    async fn insert_audit(&mut self, org: &str, entries: &[AuditRow]) -> Result<(), Self::Error>;
    /// Saves a stamp card of `org`: a new one when `id` is `None` (answers its id), else the
    /// organisation's card `id` (`UnknownCode` when the organisation has none such).
    async fn save_stamp_card(&mut self, org: &str, id: Option<i64>, card: &StampCardDef) -> Result<i64, Self::Error>;
    /// Saves a promotion of `org`, like [`save_stamp_card`](LedgerTx::save_stamp_card).
    async fn save_promotion(
        &mut self,
        org: &str,
        id: Option<i64>,
        promotion: &PromotionDef,
    ) -> Result<i64, Self::Error>;
    /// Saves a gift of `org`'s catalogue, like [`save_stamp_card`](LedgerTx::save_stamp_card).
    async fn save_gift(&mut self, org: &str, id: Option<i64>, gift: &GiftDef) -> Result<i64, Self::Error>;
    /// The gifts of `org`'s catalogue with their ids, by id.
    async fn gift_defs(&mut self, org: &str) -> Result<Vec<(i64, GiftDef)>, Self::Error>;
    /// A gift code of the guest for the catalogue's gift `gift_id`: the code carries the gift's
    /// name and cost as they are now (the till reads those when the code is scanned).
    async fn insert_issued_gift(
        &mut self,
        guest: GuestId,
        code: &str,
        gift_id: i64,
        gift: &GiftDef,
    ) -> Result<(), Self::Error>;
    /// A check paid before the guest's history was kept here (an import): it counts towards the
    /// group and changes no balance.
    async fn insert_past_visit(
        &mut self,
        op_key: &str,
        guest: GuestId,
        amount_due: Kopecks,
        at: UnixSeconds,
    ) -> Result<(), Self::Error>;
}

/// Whether a guest belongs to the caller's organisation (`None`: every guest is visible).
fn visible(snapshot: &GuestSnapshot, org: Option<&str>) -> bool {
    org.is_none_or(|org| snapshot.org == org)
}

/// The stable digest of a request: its JSON, hashed.
fn fingerprint(request: &impl Serialize) -> Result<String, LoyaltyError> {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(request).map_err(|e| LoyaltyError::Storage(e.to_string()))?;
    Ok(Sha256::digest(&json).iter().map(|b| format!("{b:02x}")).collect())
}

/// The stored answer when `first` is a repeat of this request, a conflict when it is another
/// request under the same id, or `None` when there was no first.
fn repeat<A: DeserializeOwned>(
    first: Option<OpRecord>,
    kind: &str,
    fingerprint: &str,
) -> Result<Option<A>, LoyaltyError> {
    let Some(first) = first else {
        return Ok(None);
    };
    let same = first.kind == kind && first.fingerprint.as_deref().is_none_or(|f| f == fingerprint);
    if !same {
        return Err(LoyaltyError::OperationIdConflict);
    }
    serde_json::from_str(&first.answer)
        .map(Some)
        .map_err(|e| LoyaltyError::Storage(format!("a stored answer does not read back: {e}")))
}

async fn remember<T: LedgerTx>(
    tx: &mut T,
    key: &str,
    kind: &str,
    fingerprint: String,
    answer: &impl Serialize,
) -> Result<(), T::Error> {
    let answer = serde_json::to_string(answer).map_err(|e| LoyaltyError::Storage(e.to_string()))?;
    tx.save_op_record(&OpRecord {
        key: key.to_string(),
        kind: kind.to_string(),
        fingerprint: Some(fingerprint),
        answer,
    })
    .await
}

/// Locks the guest and reads the snapshot and the first record of `op_key`; a guest of another
/// organisation is `unknown`, like one that does not exist.
async fn guest_write<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guest: GuestId,
    now: UnixSeconds,
    op_key: &str,
    unknown: LoyaltyError,
) -> Result<(GuestSnapshot, Option<OpRecord>), T::Error> {
    let (snapshot, first) = tx.begin_guest_write(guest, now, op_key).await?;
    match snapshot {
        Some(snapshot) if visible(&snapshot, org) => Ok((snapshot, first)),
        _ => Err(unknown.into()),
    }
}

/// Where a write stands once its guest is locked: done before under the same operation id (its
/// stored answer), or new, with the snapshot to decide on and the request's fingerprint.
#[allow(clippy::large_enum_variant)] // lives for one call on the stack, never stored
enum Begun<A> {
    Repeat(A),
    New { snapshot: GuestSnapshot, print: String },
}

/// The start every write about a guest shares: the guest locked and read, the request
/// fingerprinted and compared with what was first sent under `op_key` (other content under the
/// same id is a conflict).
#[allow(clippy::too_many_arguments)]
async fn begin_write<T: LedgerTx, A: DeserializeOwned>(
    tx: &mut T,
    org: Option<&str>,
    guest: GuestId,
    now: UnixSeconds,
    op_key: &str,
    kind: &str,
    request: &impl Serialize,
    unknown: LoyaltyError,
) -> Result<Begun<A>, T::Error> {
    let (snapshot, first) = guest_write(tx, org, guest, now, op_key, unknown).await?;
    let print = fingerprint(request)?;
    Ok(match repeat(first, kind, &print)? {
        Some(answer) => Begun::Repeat(answer),
        None => Begun::New { snapshot, print },
    })
}

// ----- Operations -----

/// Resolves a scanned or typed code to a guest card (and a gift for gift codes), within the
/// guest group's daily operations limit; the identification is recorded.
pub async fn identify<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    payload: &str,
    kind: ScanKind,
    now: UnixSeconds,
) -> Result<Identification, T::Error> {
    let code = rules::valid_code(payload)?;
    let phone_owner = match rules::normalize_phone(code) {
        Some(phone) => tx.phone_owner(org, &phone).await?,
        None => None,
    };
    let gift = match phone_owner {
        Some(_) => None,
        None => tx.gift_code(org, code).await?,
    };
    let identifiers = match (phone_owner, &gift) {
        (None, None) => tx.identifier_owners(org, code).await?,
        _ => Vec::new(),
    };
    let CodeMatch { guest, gift, via } = rules::resolve_code(phone_owner, gift, &identifiers, kind)?;
    let snapshot = tx
        .snapshot(guest, now)
        .await?
        .filter(|s| visible(s, org))
        .ok_or(LoyaltyError::UnknownCode)?;
    rules::check_not_blocked(&snapshot)?;
    let mut daily_visits = None;
    if let Some((limit, since)) = rules::daily_ops_window(&snapshot, now) {
        let used = tx.visits_since(guest, since).await?;
        rules::check_daily_ops(limit, used)?;
        daily_visits = Some(DailyVisits { used, limit });
    }
    tx.record_identification(guest, &via, now).await?;
    let mut card = tx.card(guest, now).await?;
    card.daily_visits = daily_visits;
    Ok(Identification { card, gift })
}

/// The guest card of a guest of the organisation.
pub async fn card<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guest: GuestId,
    now: UnixSeconds,
) -> Result<GuestCard, T::Error> {
    match tx.snapshot(guest, now).await? {
        Some(snapshot) if visible(&snapshot, org) => tx.card(guest, now).await,
        _ => Err(LoyaltyError::UnknownCode.into()),
    }
}

async fn quote_for<T: LedgerTx>(
    tx: &mut T,
    snapshot: &GuestSnapshot,
    check: &CheckInfo,
    now: UnixSeconds,
) -> Result<SpendQuote, T::Error> {
    let spent_today = match rules::daily_spend_window(snapshot, now) {
        Some(since) => Some(tx.spent_since(snapshot.guest, since, now).await?),
        None => None,
    };
    Ok(rules::quote(snapshot, check.subtotal, spent_today)?)
}

/// The most the guest may pay with bonuses on this check, with every limit considered.
pub async fn quote<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guest: GuestId,
    check: &CheckInfo,
    now: UnixSeconds,
) -> Result<SpendQuote, T::Error> {
    let snapshot = tx
        .snapshot(guest, now)
        .await?
        .filter(|s| visible(s, org))
        .ok_or(LoyaltyError::UnknownCode)?;
    quote_for(tx, &snapshot, check, now).await
}

#[derive(Serialize)]
struct HoldRequest<'a> {
    guest: GuestId,
    amount: Kopecks,
    check: &'a CheckInfo,
}

/// Reserves `amount` bonuses for the check.
pub async fn hold<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: &str,
    guest: GuestId,
    amount: Kopecks,
    check: &CheckInfo,
    now: UnixSeconds,
) -> Result<HoldReceipt, T::Error> {
    let request = HoldRequest { guest, amount, check };
    tx.read_ahead(Ahead::Hold);
    let (snapshot, print) = match begin_write(tx, org, guest, now, op_key, "hold", &request, UnknownCode).await? {
        Begun::Repeat(answer) => return Ok(answer),
        Begun::New { snapshot, print } => (snapshot, print),
    };
    rules::check_not_blocked(&snapshot)?;
    let quote = quote_for(tx, &snapshot, check, now).await?;
    let plan = rules::hold(&snapshot, amount, &quote, now)?;
    let hold_id = tx.insert_hold(op_key, guest, &plan, now).await?;
    let receipt = HoldReceipt {
        hold_id,
        amount: plan.amount,
        expires_at: plan.expires_at,
    };
    remember(tx, op_key, "hold", print, &receipt).await?;
    Ok(receipt)
}

#[derive(Serialize)]
struct CommitRequest<'a> {
    guest: GuestId,
    hold: Option<HoldId>,
    spent: Kopecks,
    check: &'a CheckInfo,
}

/// Closes a paid check: debits `spent` from the hold (releasing the rest), accrues on the part
/// not paid with bonuses, redeems the check's gift codes, adds stamps and moves the guest
/// between groups. All or nothing.
#[allow(clippy::too_many_arguments)]
pub async fn commit<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: &str,
    guest: GuestId,
    hold: Option<HoldId>,
    spent: Kopecks,
    check: &CheckInfo,
    now: UnixSeconds,
) -> Result<PaymentReceipt, T::Error> {
    let request = CommitRequest {
        guest,
        hold,
        spent,
        check,
    };
    tx.read_ahead(Ahead::Payment { hold });
    let (snapshot, print) = match begin_write(tx, org, guest, now, op_key, "commit", &request, UnknownCode).await? {
        Begun::Repeat(answer) => return Ok(answer),
        Begun::New { snapshot, print } => (snapshot, print),
    };
    if spent < Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount.into());
    }
    rules::check_closable(check)?;
    rules::ensure_step(spent, snapshot.program.spend_step)?;
    let context = payment_context(tx, &snapshot, hold, now).await?;
    match hold {
        Some(hold) => {
            let row = context.hold.as_ref().ok_or(LoyaltyError::UnknownHold)?;
            rules::settle(row, guest, spent, now)?;
            tx.close_hold(hold, HoldStatus::Committed, Some(spent), now).await?;
        }
        None if spent > Kopecks::ZERO => {
            return Err(LoyaltyError::OverMaximum {
                requested: spent,
                max: Kopecks::ZERO,
            }
            .into());
        }
        None => {}
    }
    let (receipt, _) = record_payment(
        tx,
        &snapshot,
        &context,
        op_key,
        hold,
        spent,
        Kopecks::ZERO,
        check,
        now,
        None,
    )
    .await?;
    remember(tx, op_key, "commit", print, &receipt).await?;
    Ok(receipt)
}

#[derive(Serialize)]
struct OfflineRequest<'a> {
    guest: GuestId,
    requested: Kopecks,
    check: &'a CheckInfo,
}

/// A check a till closed while the server was away, paying `requested` with bonuses: the guest
/// is debited what they still have, at most the amount due. Accrues, redeems and moves groups
/// like [`commit`].
pub async fn commit_offline<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: &str,
    guest: GuestId,
    requested: Kopecks,
    check: &CheckInfo,
    now: UnixSeconds,
) -> Result<PaymentReceipt, T::Error> {
    let request = OfflineRequest {
        guest,
        requested,
        check,
    };
    let kind = "offline_payment";
    let (snapshot, print) = match begin_write(tx, org, guest, now, op_key, kind, &request, UnknownCode).await? {
        Begun::Repeat(answer) => return Ok(answer),
        Begun::New { snapshot, print } => (snapshot, print),
    };
    rules::check_closable(check)?;
    let spent = rules::offline_spend(&snapshot, requested, check.subtotal)?;
    let context = payment_context(tx, &snapshot, None, now).await?;
    let (receipt, _) = record_payment(
        tx,
        &snapshot,
        &context,
        op_key,
        None,
        spent,
        Kopecks::ZERO,
        check,
        now,
        Some(requested),
    )
    .await?;
    remember(tx, op_key, "offline_payment", print, &receipt).await?;
    Ok(receipt)
}

/// The payment's prefetch: the window's spending and the groups only for a guest whose group
/// moves by spend.
async fn payment_context<T: LedgerTx>(
    tx: &mut T,
    snapshot: &GuestSnapshot,
    hold: Option<HoldId>,
    now: UnixSeconds,
) -> Result<PaymentContext, T::Error> {
    let window_since =
        rules::moves_by_spend(&snapshot.group).then(|| rules::group_window_start(&snapshot.program, now));
    tx.payment_context(snapshot.guest, hold, window_since).await
}

/// Adds a payment's or refund's figures to the report's sums of its quarter and till, in its own
/// transaction ([`report::BOOK_SQL`]); the invariant «report sums out of step» proves every
/// booking made here.
pub(crate) async fn book_checks<T: LedgerTx>(
    tx: &mut T,
    org: &str,
    op_key: &str,
    at: UnixSeconds,
    figures: &Figures,
) -> Result<(), T::Error> {
    let sums = report::check_figures(figures);
    tx.add_to_report(org, report::quarter_of(at), report::scope_of(op_key), &sums)
        .await
}

/// Everything a paid check does once the hold is settled: the receipt, the debit and accrual,
/// gift codes, stamps and the group move. `others_spent` is what other accounts paid of the
/// check (several cards). Answers the receipt and the payment's id.
#[allow(clippy::too_many_arguments)]
async fn record_payment<T: LedgerTx>(
    tx: &mut T,
    snapshot: &GuestSnapshot,
    context: &PaymentContext,
    op_key: &str,
    hold: Option<HoldId>,
    spent: Kopecks,
    others_spent: Kopecks,
    check: &CheckInfo,
    now: UnixSeconds,
    offline_requested: Option<Kopecks>,
) -> Result<(PaymentReceipt, i64), T::Error> {
    let guest = snapshot.guest;
    let plan = rules::owner_payment(
        snapshot,
        spent,
        others_spent,
        check.subtotal,
        context.window_spend,
        &context.groups,
    )?;
    let gift_codes = rules::to_json(&check.gift_codes)?;
    let lines = rules::kept_lines(check)?;
    let payment_id = tx
        .insert_payment(&NewPayment {
            op_key,
            guest,
            hold,
            subtotal: check.subtotal,
            gift_codes: &gift_codes,
            plan: &plan,
            at: now,
            offline_requested,
            owner_payment: None,
            lines: lines.as_deref(),
        })
        .await?;
    let booked = Figures {
        checks: 1,
        revenue: plan.amount_due,
        spent: plan.spent,
        accrued: plan.accrued,
        ..Figures::default()
    };
    book_checks(tx, &snapshot.org, op_key, now, &booked).await?;
    let note = format!("check {}", plan.amount_due);
    for (kind, amount) in [(OpKind::Spend, plan.spent), (OpKind::Accrual, plan.accrued)] {
        if amount > Kopecks::ZERO {
            let posting = Posting {
                guest,
                kind,
                amount,
                note: &note,
                at: now,
                link: Link::Payment(payment_id),
            };
            tx.post_unread(&posting).await?;
        }
    }
    for code in &check.gift_codes {
        // Unknown, someone else's and used codes are all refused alike: the whole check rolls back.
        if !tx.redeem_gift(code, guest, payment_id, now).await? {
            return Err(LoyaltyError::GiftAlreadyUsed.into());
        }
    }
    for stamp in &context.stamps {
        let collected = rules::stamp_after_visit(stamp.collected, stamp.needed);
        if collected != stamp.collected {
            tx.set_stamps(guest, stamp.card_id, collected).await?;
        }
    }
    if let Some(target) = &plan.new_group {
        tx.set_group(guest, target.id).await?;
    }
    let receipt = PaymentReceipt {
        spent: plan.spent,
        accrued: plan.accrued,
        balance_after: plan.balance_after,
        new_group: plan.new_group.map(|g| g.rules.name),
    };
    Ok((receipt, payment_id))
}

/// Releases an open hold. Voiding a voided or expired hold succeeds; a committed one does not.
pub async fn void<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: &str,
    hold: HoldId,
    now: UnixSeconds,
) -> Result<(), T::Error> {
    let guest = tx.hold_row(hold).await?.ok_or(LoyaltyError::UnknownHold)?.guest;
    let print = match begin_write(tx, org, guest, now, op_key, "void", &hold, UnknownHold).await? {
        Begun::Repeat(()) => return Ok(()),
        Begun::New { print, .. } => print,
    };
    // Read again under the guest's lock: a commit may have closed it meanwhile.
    let row = tx.hold_row(hold).await?.ok_or(LoyaltyError::UnknownHold)?;
    if rules::void(&row, now)? {
        tx.close_hold(hold, HoldStatus::Voided, None, now).await?;
    } else if row.status == HoldStatus::Open {
        tx.close_hold(hold, HoldStatus::Expired, None, now).await?;
    }
    tx.record_void(op_key, hold, now).await?;
    remember(tx, op_key, "void", print, &()).await
}

/// A return's request as its operation id remembers it: a return by lines adds its lines, so
/// that returns recorded before lines existed keep their fingerprint.
#[derive(Serialize)]
struct RefundRequest<'a> {
    payment: &'a str,
    requested: Option<Kopecks>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lines: Option<&'a [LineReturn]>,
}

impl<'a> RefundRequest<'a> {
    fn of(payment: &'a str, part: &'a ReturnPart) -> RefundRequest<'a> {
        let (requested, lines) = match part {
            ReturnPart::Rest => (None, None),
            ReturnPart::Amount(amount) => (Some(*amount), None),
            ReturnPart::Lines(lines) => (None, Some(lines.as_slice())),
        };
        RefundRequest {
            payment,
            requested,
            lines,
        }
    }
}

/// Everything a return changes, decided before anything is written: the balance plan, and on a
/// full return the gifts and stamps of the visit; the group the guest falls back to.
struct ReturnPlan {
    plan: RefundPlan,
    full: bool,
    gifts: Vec<String>,
    stamps: Vec<(i64, i64, i64)>,
    new_group: Option<Group>,
    /// The amount asked for (`None`: the rest), as the refund row records it.
    requested: Option<Kopecks>,
    /// The check's lines after the return, when it changes what is left of them.
    lines_after: Option<Vec<CheckLine>>,
}

/// Decides a return of `part` of `check` for the guest of `snapshot`; reads only, so that the
/// preview and the return itself are one decision.
async fn plan_return<T: LedgerTx>(
    tx: &mut T,
    snapshot: &GuestSnapshot,
    check: &PaidCheck,
    part: &ReturnPart,
    now: UnixSeconds,
) -> Result<ReturnPlan, T::Error> {
    let requested = match part {
        ReturnPart::Rest => None,
        ReturnPart::Amount(amount) => Some(*amount),
        ReturnPart::Lines(lines) if check.lines.is_empty() => {
            tracing::warn!(
                payment = check.payment_id,
                asked = lines.len(),
                "a return by lines of a check without lines"
            );
            return Err(LoyaltyError::OutOfRange("lines".to_string()).into());
        }
        ReturnPart::Lines(lines) => Some(crate::domain::lines_value(&check.lines, check.amount_due, lines)?),
    };
    let plan = rules::refund(check, requested, snapshot.available)?;
    let full = rules::refund_is_full(check, &plan);
    let lines_after = rules::lines_after_return(&check.lines, part, full);
    let (gifts, stamps) = if full {
        let gifts = tx.check_gifts(check.payment_id).await?;
        let stamps = tx
            .stamp_counts(check.guest)
            .await?
            .into_iter()
            .map(|s| (s.card_id, s.collected, rules::stamp_after_return(s.collected)))
            .filter(|(_, before, after)| before != after)
            .collect();
        (gifts, stamps)
    } else {
        (Vec::new(), Vec::new())
    };
    let new_group = if rules::moves_by_spend(&snapshot.group) {
        let since = rules::group_window_start(&snapshot.program, now);
        let spend = tx.window_spend(check.guest, since).await?;
        let spend = rules::window_spend_after_refund(spend, check, plan.amount, since);
        let groups = tx.ranked_groups().await?;
        rules::group_after_refund(&snapshot.group, spend, &groups)
    } else {
        None
    };
    Ok(ReturnPlan {
        plan,
        full,
        gifts,
        stamps,
        new_group,
        requested,
        lines_after,
    })
}

fn return_receipt(decided: &ReturnPlan, balance_after: Kopecks, others_returned: Kopecks) -> RefundReceipt {
    RefundReceipt {
        amount: decided.plan.amount,
        spend_returned: decided.plan.spend_returned,
        accrual_taken: decided.plan.accrual_taken,
        unrecovered: decided.plan.unrecovered,
        balance_after,
        full: decided.full,
        gifts_restored: decided.gifts.clone(),
        stamps_taken: i64::try_from(decided.stamps.len()).unwrap_or(i64::MAX),
        new_group: decided.new_group.as_ref().map(|g| g.rules.name.clone()),
        others_returned,
    }
}

/// The check paid with `payment_op_key`, when it belongs to the caller's organisation.
async fn visible_check<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    payment_op_key: &str,
    now: UnixSeconds,
) -> Result<(PaidCheck, GuestSnapshot), T::Error> {
    let check = tx
        .paid_check(payment_op_key)
        .await?
        .ok_or(LoyaltyError::UnknownPayment)?;
    let snapshot = tx
        .snapshot(check.guest, now)
        .await?
        .filter(|s| visible(s, org))
        .ok_or(LoyaltyError::UnknownPayment)?;
    Ok((check, snapshot))
}

/// What [`refund`] would change, written nowhere: the till shows it before the cashier confirms.
/// `balance_after` is the balance the guest would have.
pub async fn refund_preview<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    payment_op_key: &str,
    part: &ReturnPart,
    now: UnixSeconds,
) -> Result<RefundReceipt, T::Error> {
    let (check, snapshot) = visible_check(tx, org, payment_op_key, now).await?;
    if check.owner_payment.is_some() {
        return Err(UnknownPayment.into());
    }
    let decided = plan_return(tx, &snapshot, &check, part, now).await?;
    let balance_after = snapshot.balance + decided.plan.spend_returned - decided.plan.accrual_taken;
    let mut others_returned = Kopecks::ZERO;
    for key in tx.check_shares(check.payment_id).await? {
        let share = tx.paid_check(&key).await?.ok_or(UnknownPayment)?;
        let available = tx.snapshot(share.guest, now).await?.ok_or(UnknownPayment)?.available;
        others_returned = others_returned + rules::refund(&share, Some(decided.plan.amount), available)?.spend_returned;
    }
    Ok(return_receipt(&decided, balance_after, others_returned))
}

/// Returns part (an amount of the amount due, or units of its lines) or all that is left of the
/// check paid with `payment_op_key`: the bonuses spent on the returned part come back, its accrual is
/// taken back (never below zero available: the rest is reported as unrecovered), and a return
/// of the whole check gives back its gifts and takes back its stamps. A guest whose spending
/// falls below their group's threshold goes back down (unless the group never downgrades).
pub async fn refund<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: &str,
    payment_op_key: &str,
    part: &ReturnPart,
    now: UnixSeconds,
) -> Result<RefundReceipt, T::Error> {
    let guest = tx
        .paid_check(payment_op_key)
        .await?
        .ok_or(LoyaltyError::UnknownPayment)?
        .guest;
    let request = RefundRequest::of(payment_op_key, part);
    let (snapshot, print) = match begin_write(tx, org, guest, now, op_key, "refund", &request, UnknownPayment).await? {
        Begun::Repeat(answer) => return Ok(answer),
        Begun::New { snapshot, print } => (snapshot, print),
    };
    // Read again under the guest's lock: another refund of the check may have been first.
    let check = tx
        .paid_check(payment_op_key)
        .await?
        .ok_or(LoyaltyError::UnknownPayment)?;
    // Another account's share is returned with its check, never alone.
    if check.owner_payment.is_some() {
        return Err(UnknownPayment.into());
    }
    let decided = plan_return(tx, &snapshot, &check, part, now).await?;
    let plan = &decided.plan;
    let refund_id = tx.insert_refund(op_key, &check, decided.requested, plan, now).await?;
    if let Some(lines) = &decided.lines_after {
        let returned = match part {
            ReturnPart::Lines(asked) => rules::to_json(asked)?,
            ReturnPart::Rest | ReturnPart::Amount(_) => rules::to_json(&rules::left_of(&check.lines))?,
        };
        tx.record_lines_returned(refund_id, &returned, check.payment_id, &rules::to_json(lines)?)
            .await?;
    }
    let note = format!("refund {}", plan.amount);
    let mut balance_after = snapshot.balance;
    for (kind, amount) in [
        (OpKind::RefundSpend, plan.spend_returned),
        (OpKind::RefundAccrual, plan.accrual_taken),
    ] {
        if amount > Kopecks::ZERO {
            let posting = Posting {
                guest,
                kind,
                amount,
                note: &note,
                at: now,
                link: Link::Refund(refund_id),
            };
            balance_after = tx.post(&posting).await?;
        }
    }
    tx.set_refund_balance(refund_id, balance_after).await?;
    if decided.full {
        tx.restore_gifts(check.payment_id).await?;
        for (card, _, collected) in &decided.stamps {
            tx.set_stamps(guest, *card, *collected).await?;
        }
    }
    if let Some(target) = &decided.new_group {
        tx.set_group(guest, target.id).await?;
    }
    if plan.unrecovered > Kopecks::ZERO {
        // The guest spent the accrual before the return: it stays with them, and the back
        // office needs to know how much.
        tracing::warn!(
            guest,
            payment = check.payment_id,
            unrecovered = plan.unrecovered.0,
            "refund could not take back the whole accrual: already spent"
        );
    }
    let others_returned = refund_shares(tx, op_key, check.payment_id, plan.amount, now).await?;
    // Booked after every guest's lock is taken (the other accounts' too): the report's row is
    // always the last lock, so two returns at one till cannot wait on each other in a circle.
    let booked = Figures {
        returns: 1,
        returned: plan.amount,
        spend_returned: plan.spend_returned,
        accrual_taken: plan.accrual_taken,
        ..Figures::default()
    };
    book_checks(tx, &snapshot.org, op_key, now, &booked).await?;
    let receipt = return_receipt(&decided, balance_after, others_returned);
    remember(tx, op_key, "refund", print, &receipt).await?;
    Ok(receipt)
}

// ----- Several cards on one check -----

/// The operation id of one account's part of a write about a check paid from several accounts:
/// the write's id and the guest, so that each part has its own record and row.
pub fn share_key(op_key: &str, guest: GuestId) -> String {
    format!("{op_key}/guest-{guest}")
}

/// The positions of the accounts in the order their locks are taken: by guest id, so that two
/// writes about the same guests never wait on each other crosswise.
fn lock_order(guests: &[GuestId]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..guests.len()).collect();
    order.sort_by_key(|&index| guests[index]);
    order
}

/// Locks every account of a shared write (in lock order) and reads their snapshots, in the
/// order of `guests`. An account the caller may not see is refused as its card.
async fn lock_accounts<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guests: &[GuestId],
    op_key: &str,
    now: UnixSeconds,
) -> Result<Vec<GuestSnapshot>, T::Error> {
    let mut snapshots: Vec<Option<GuestSnapshot>> = vec![None; guests.len()];
    for index in lock_order(guests) {
        let (snapshot, first) = tx
            .begin_guest_write(guests[index], now, &share_key(op_key, guests[index]))
            .await?;
        let snapshot = snapshot
            .filter(|s| visible(s, org))
            .ok_or_else(|| rules::card_refused(index, UnknownCode))?;
        // The whole write was not done before (its own record says so): a part's id in use is
        // another request's.
        if first.is_some() {
            return Err(LoyaltyError::OperationIdConflict.into());
        }
        snapshots[index] = Some(snapshot);
    }
    Ok(snapshots.into_iter().flatten().collect())
}

#[derive(Serialize)]
struct SharedHoldRequest<'a> {
    owner: GuestId,
    shares: &'a [CardShare],
    check: &'a CheckInfo,
}

/// Holds bonuses on several accounts for one check (cards presented one after another): one
/// hold per account that pays something, all placed or none. Every account is checked first (its
/// guest known and not blocked, its amount within its own limits, no account twice) and the sum
/// within the check's maximum as the owner's quote sets it; the first refusal names its card and
/// nothing is written. Answers each account's hold in the order given (none for a zero amount).
pub async fn hold_shared<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: &str,
    owner: GuestId,
    shares: &[CardShare],
    check: &CheckInfo,
    now: UnixSeconds,
) -> Result<Vec<Option<HoldReceipt>>, T::Error> {
    let request = SharedHoldRequest { owner, shares, check };
    let print = fingerprint(&request)?;
    if let Some(answer) = repeat(tx.op_record(op_key).await?, "hold_shared", &print)? {
        return Ok(answer);
    }
    let guests: Vec<GuestId> = shares.iter().map(|s| s.guest).collect();
    let owner_at = rules::shared_accounts(&guests, owner)?;
    let snapshots = lock_accounts(tx, org, &guests, op_key, now).await?;
    let mut plans = Vec::with_capacity(shares.len());
    let mut check_max = Kopecks::ZERO;
    for (index, (share, snapshot)) in shares.iter().zip(&snapshots).enumerate() {
        let refused = |error| rules::card_refused(index, error);
        rules::check_not_blocked(snapshot).map_err(refused)?;
        let spent_today = match rules::daily_spend_window(snapshot, now) {
            Some(since) => Some(tx.spent_since(snapshot.guest, since, now).await?),
            None => None,
        };
        let quote = rules::quote(snapshot, check.subtotal, spent_today).map_err(refused)?;
        if index == owner_at {
            check_max = rules::shared_check_max(&quote);
        }
        plans.push(match share.amount {
            amount if amount == Kopecks::ZERO => None,
            amount => Some(rules::hold(snapshot, amount, &quote, now).map_err(refused)?),
        });
    }
    let amounts: Vec<Kopecks> = shares.iter().map(|s| s.amount).collect();
    rules::check_shared_total(&amounts, check_max)?;
    let mut receipts = Vec::with_capacity(shares.len());
    for (share, plan) in shares.iter().zip(plans) {
        let Some(plan) = plan else {
            receipts.push(None);
            continue;
        };
        // Each hold is an ordinary one under its own id: the till voids it like any other.
        let key = share_key(op_key, share.guest);
        let hold_id = tx.insert_hold(&key, share.guest, &plan, now).await?;
        let receipt = HoldReceipt {
            hold_id,
            amount: plan.amount,
            expires_at: plan.expires_at,
        };
        let part = HoldRequest {
            guest: share.guest,
            amount: share.amount,
            check,
        };
        remember(tx, &key, "hold", fingerprint(&part)?, &receipt).await?;
        receipts.push(Some(receipt));
    }
    remember(tx, op_key, "hold_shared", print, &receipts).await?;
    Ok(receipts)
}

#[derive(Serialize)]
struct SharedCommitRequest<'a> {
    owner: GuestId,
    payments: &'a [CardPayment],
    check: &'a CheckInfo,
}

/// Closes a check paid from several accounts, all or nothing: each account's hold is debited
/// with its amount and recorded as its own payment linked to the owner's (in its guest's
/// history); the owner's payment (under `op_key`, what a return names) accrues on the part no
/// account paid, redeems the gift codes, adds stamps and moves the owner's group. A refusal names
/// its card; nothing is written then. Answers each account's receipt in the order given.
pub async fn commit_shared<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: &str,
    owner: GuestId,
    payments: &[CardPayment],
    check: &CheckInfo,
    now: UnixSeconds,
) -> Result<Vec<PaymentReceipt>, T::Error> {
    let request = SharedCommitRequest { owner, payments, check };
    let print = fingerprint(&request)?;
    if let Some(answer) = repeat(tx.op_record(op_key).await?, "commit_shared", &print)? {
        return Ok(answer);
    }
    let guests: Vec<GuestId> = payments.iter().map(|p| p.guest).collect();
    let owner_at = rules::shared_accounts(&guests, owner)?;
    rules::check_closable(check)?;
    let snapshots = lock_accounts(tx, org, &guests, op_key, now).await?;
    for (index, (part, snapshot)) in payments.iter().zip(&snapshots).enumerate() {
        let refused = |error| rules::card_refused(index, error);
        if part.spent < Kopecks::ZERO {
            return Err(refused(LoyaltyError::NonPositiveAmount).into());
        }
        rules::ensure_step(part.spent, snapshot.program.spend_step).map_err(refused)?;
        match part.hold {
            Some(hold) => {
                let row = tx.hold_row(hold).await?.ok_or_else(|| refused(UnknownHold))?;
                rules::settle(&row, part.guest, part.spent, now).map_err(refused)?;
            }
            None if part.spent > Kopecks::ZERO => {
                return Err(refused(LoyaltyError::OverMaximum {
                    requested: part.spent,
                    max: Kopecks::ZERO,
                })
                .into());
            }
            None => {}
        }
    }
    let owner_snapshot = &snapshots[owner_at];
    let owner_quote = rules::quote(owner_snapshot, check.subtotal, None)?;
    let spents: Vec<Kopecks> = payments.iter().map(|p| p.spent).collect();
    rules::check_shared_total(&spents, rules::shared_check_max(&owner_quote))?;
    let owner_part = &payments[owner_at];
    let others_spent = spents.iter().fold(Kopecks::ZERO, |sum, s| sum + *s) - owner_part.spent;

    let context = payment_context(tx, owner_snapshot, owner_part.hold, now).await?;
    if let Some(hold) = owner_part.hold {
        tx.close_hold(hold, HoldStatus::Committed, Some(owner_part.spent), now)
            .await?;
    }
    let (owner_receipt, owner_payment) = record_payment(
        tx,
        owner_snapshot,
        &context,
        op_key,
        owner_part.hold,
        owner_part.spent,
        others_spent,
        check,
        now,
        None,
    )
    .await?;
    let note = format!("check {}", owner_quote.amount_due);
    let mut receipts = Vec::with_capacity(payments.len());
    for (index, (part, snapshot)) in payments.iter().zip(&snapshots).enumerate() {
        if index == owner_at {
            receipts.push(owner_receipt.clone());
            continue;
        }
        if part.spent == Kopecks::ZERO {
            // On the check without paying: its hold (if any) is released, nothing is recorded.
            if let Some(hold) = part.hold {
                tx.close_hold(hold, HoldStatus::Voided, None, now).await?;
            }
            receipts.push(PaymentReceipt {
                spent: Kopecks::ZERO,
                accrued: Kopecks::ZERO,
                balance_after: snapshot.balance,
                new_group: None,
            });
            continue;
        }
        let key = share_key(op_key, part.guest);
        let plan = rules::share_payment(snapshot, part.spent, owner_quote.amount_due);
        if let Some(hold) = part.hold {
            tx.close_hold(hold, HoldStatus::Committed, Some(part.spent), now)
                .await?;
        }
        let payment_id = tx
            .insert_payment(&NewPayment {
                op_key: &key,
                guest: part.guest,
                hold: part.hold,
                subtotal: check.subtotal,
                gift_codes: "[]",
                plan: &plan,
                at: now,
                offline_requested: None,
                owner_payment: Some(owner_payment),
                lines: None,
            })
            .await?;
        // A share adds its spend to the owner's check (the same moment and till).
        let booked = Figures {
            spent: plan.spent,
            ..Figures::default()
        };
        book_checks(tx, &snapshot.org, &key, now, &booked).await?;
        tx.post_unread(&Posting {
            guest: part.guest,
            kind: OpKind::Spend,
            amount: part.spent,
            note: &note,
            at: now,
            link: Link::Payment(payment_id),
        })
        .await?;
        let receipt = PaymentReceipt {
            spent: plan.spent,
            accrued: plan.accrued,
            balance_after: plan.balance_after,
            new_group: None,
        };
        remember(tx, &key, "commit_share", fingerprint(part)?, &receipt).await?;
        receipts.push(receipt);
    }
    remember(tx, op_key, "commit_shared", print, &receipts).await?;
    Ok(receipts)
}

/// Returns `amount` of each share other accounts paid of the owner's payment `payment_id`, in
/// the same proportion as the owner's part (the shares carry the check's amount due): their
/// bonuses on the returned part come back. Answers how much came back to them together.
async fn refund_shares<T: LedgerTx>(
    tx: &mut T,
    op_key: &str,
    payment_id: i64,
    amount: Kopecks,
    now: UnixSeconds,
) -> Result<Kopecks, T::Error> {
    let mut returned = Kopecks::ZERO;
    let mut bookings = Vec::new();
    for share_op in tx.check_shares(payment_id).await? {
        let guest = tx.paid_check(&share_op).await?.ok_or(UnknownPayment)?.guest;
        let key = share_key(op_key, guest);
        let (snapshot, first) = tx.begin_guest_write(guest, now, &key).await?;
        let snapshot = snapshot.ok_or(UnknownPayment)?;
        if first.is_some() {
            return Err(LoyaltyError::OperationIdConflict.into());
        }
        let share = tx.paid_check(&share_op).await?.ok_or(UnknownPayment)?;
        let plan = rules::refund(&share, Some(amount), snapshot.available)?;
        let refund_id = tx.insert_refund(&key, &share, Some(amount), &plan, now).await?;
        // A share's return adds the spend it gave back to the owner's return; booked once
        // every share's guest is locked (see `refund`).
        let booked = Figures {
            spend_returned: plan.spend_returned,
            ..Figures::default()
        };
        bookings.push((snapshot.org.clone(), key.clone(), booked));
        let mut balance_after = snapshot.balance;
        if plan.spend_returned > Kopecks::ZERO {
            balance_after = tx
                .post(&Posting {
                    guest,
                    kind: OpKind::RefundSpend,
                    amount: plan.spend_returned,
                    note: &format!("refund {}", plan.amount),
                    at: now,
                    link: Link::Refund(refund_id),
                })
                .await?;
        }
        tx.set_refund_balance(refund_id, balance_after).await?;
        let part = RefundRequest {
            payment: &share_op,
            requested: Some(amount),
            lines: None,
        };
        remember(tx, &key, "refund_share", fingerprint(&part)?, &plan.spend_returned).await?;
        returned = returned + plan.spend_returned;
    }
    for (org, key, booked) in &bookings {
        book_checks(tx, org, key, now, booked).await?;
    }
    Ok(returned)
}

/// The closed checks of the caller's organisation that `filter` names, newest first (at most
/// [`CHECKS_LIMIT`]). A guest code is looked up as identification does it, but nothing is
/// recorded and no daily limit applies: looking for a check is not a visit.
pub async fn checks<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    filter: &CheckFilter,
    now: UnixSeconds,
) -> Result<Vec<CheckSummary>, T::Error> {
    let guest = match filter.guest_code.as_deref() {
        Some(code) => {
            let code = rules::valid_code(code)?;
            let phone_owner = match rules::normalize_phone(code) {
                Some(phone) => tx.phone_owner(org, &phone).await?,
                None => None,
            };
            let identifiers = match phone_owner {
                Some(_) => Vec::new(),
                None => tx.identifier_owners(org, code).await?,
            };
            let found = rules::resolve_code(phone_owner, None, &identifiers, ScanKind::Manual)?;
            Some(found.guest)
        }
        None => None,
    };
    let since = if filter.today {
        rules::local_day_start(now, tx.program(org).await?.utc_offset_minutes)
    } else {
        0
    };
    let query = ChecksQuery {
        since,
        number: filter.number,
        guest,
        op_prefix: filter.op_prefix.as_deref(),
        limit: CHECKS_LIMIT,
    };
    tx.paid_checks(org, &query).await
}

/// The most checks one search lists.
pub const CHECKS_LIMIT: i64 = 50;

/// What [`LedgerTx::paid_checks`] selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChecksQuery<'a> {
    pub since: UnixSeconds,
    pub number: Option<i64>,
    pub guest: Option<GuestId>,
    pub op_prefix: Option<&'a str>,
    pub limit: i64,
}

#[derive(Serialize)]
struct ManualRequest<'a> {
    guest: GuestId,
    kind: &'a str,
    amount: Kopecks,
    note: &'a str,
}

/// A back-office credit or debit (never more than is available); the balance after.
#[allow(clippy::too_many_arguments)]
pub async fn manual<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: &str,
    guest: GuestId,
    kind: OpKind,
    amount: Kopecks,
    note: &str,
    now: UnixSeconds,
) -> Result<Kopecks, T::Error> {
    let request = ManualRequest {
        guest,
        kind: kind.as_str(),
        amount,
        note,
    };
    let (snapshot, print) = match begin_write(tx, org, guest, now, op_key, kind.as_str(), &request, UnknownCode).await?
    {
        Begun::Repeat(answer) => return Ok(answer),
        Begun::New { snapshot, print } => (snapshot, print),
    };
    rules::manual(&snapshot, amount, kind == OpKind::ManualDebit)?;
    let balance = tx
        .post(&Posting {
            guest,
            kind,
            amount,
            note,
            at: now,
            link: Link::Op(op_key),
        })
        .await?;
    remember(tx, op_key, kind.as_str(), print, &balance).await?;
    Ok(balance)
}

/// Voids every open hold of the guest (Quick Resto's «Сбросить холды»); returns how many. With
/// an operation id (a back-office form carries one) a repeat answers the first count instead of
/// voiding holds opened since; without one (the API's reset) it is simply done again.
pub async fn reset_holds<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: Option<&str>,
    guest: GuestId,
    now: UnixSeconds,
) -> Result<u64, T::Error> {
    let Some(op_key) = op_key else {
        guest_write(tx, org, guest, now, "", UnknownCode).await?;
        return tx.void_open_holds(guest, now).await;
    };
    let print = match begin_write(tx, org, guest, now, op_key, "reset_holds", &guest, UnknownCode).await? {
        Begun::Repeat(count) => return Ok(count),
        Begun::New { print, .. } => print,
    };
    let count = tx.void_open_holds(guest, now).await?;
    remember(tx, op_key, "reset_holds", print, &count).await?;
    Ok(count)
}

// ----- What is read about a guest -----

/// Fails with `UnknownCode` unless the guest exists and belongs to the caller's organisation.
async fn own_guest<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guest: GuestId,
    now: UnixSeconds,
) -> Result<(), T::Error> {
    match tx.snapshot(guest, now).await? {
        Some(snapshot) if visible(&snapshot, org) => Ok(()),
        _ => Err(UnknownCode.into()),
    }
}

/// The guest's gift codes not yet redeemed.
pub async fn gifts<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guest: GuestId,
    now: UnixSeconds,
) -> Result<Vec<Gift>, T::Error> {
    own_guest(tx, org, guest, now).await?;
    tx.gifts(guest).await
}

/// The guest's open holds (the back office's «Сбросить холды» shows them first); without a
/// guest, every open hold, for the server's operator only.
pub async fn open_holds<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guest: Option<GuestId>,
    now: UnixSeconds,
) -> Result<Vec<HoldReceipt>, T::Error> {
    match guest {
        Some(guest) => own_guest(tx, org, guest, now).await?,
        None if org.is_some() => return Err(UnknownCode.into()),
        None => {}
    }
    tx.open_holds(guest).await
}

/// The guest's newest `limit` balance changes.
pub async fn history<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guest: GuestId,
    limit: usize,
    now: UnixSeconds,
) -> Result<Vec<HistoryEntry>, T::Error> {
    own_guest(tx, org, guest, now).await?;
    tx.history(guest, i64::try_from(limit).unwrap_or(i64::MAX)).await
}

// ----- The programme and its guests -----

/// Sets a programme, checked by the rules first.
pub async fn set_program<T: LedgerTx>(
    tx: &mut T,
    scope: ProgramScope<'_>,
    program: &ProgramSettings,
) -> Result<(), T::Error> {
    rules::check_program(program)?;
    tx.save_program(scope, program).await
}

pub async fn add_group<T: LedgerTx>(tx: &mut T, group: &NewGroup) -> Result<i64, T::Error> {
    let existing = tx.ranked_groups().await?;
    rules::check_group_among(group, &existing, None)?;
    tx.insert_group(group).await
}

/// Changes a group's rules, refused like [`add_group`] when the threshold clashes.
pub async fn edit_group<T: LedgerTx>(tx: &mut T, id: i64, group: &NewGroup) -> Result<(), T::Error> {
    let existing = tx.ranked_groups().await?;
    rules::check_group_among(group, &existing, Some(id))?;
    tx.update_group(id, group).await
}

/// Refuses a phone or code another guest of `org` already has (under any kind: the till looks
/// codes up by value).
async fn ensure_free<T: LedgerTx>(
    tx: &mut T,
    org: &str,
    kind: IdentifierKind,
    value: &str,
    owner: Option<GuestId>,
) -> Result<(), T::Error> {
    let mut owners: Vec<GuestId> = tx
        .identifier_owners(Some(org), value)
        .await?
        .into_iter()
        .map(|(guest, _)| guest)
        .collect();
    owners.extend(tx.phone_owner(Some(org), value).await?);
    let taken = owners.into_iter().any(|guest| Some(guest) != owner);
    if taken {
        return Err(LoyaltyError::IdentifierTaken(kind).into());
    }
    Ok(())
}

/// Enrols a guest in one go: the guest, the phone and a card (any may clash with another guest
/// of the organisation: then nothing is added).
#[allow(clippy::too_many_arguments)]
pub async fn enrol<T: LedgerTx>(
    tx: &mut T,
    org: &str,
    name: &str,
    phone: Option<&str>,
    card: Option<(IdentifierKind, &str)>,
    group_id: i64,
    now: UnixSeconds,
) -> Result<GuestId, T::Error> {
    let phone = phone
        .map(|p| rules::identifier_value(IdentifierKind::Phone, p))
        .transpose()?;
    let card = card
        .map(|(kind, value)| rules::identifier_value(kind, value).map(|value| (kind, value)))
        .transpose()?;
    if let Some(phone) = &phone {
        ensure_free(tx, org, IdentifierKind::Phone, phone, None).await?;
    }
    if let Some((kind, value)) = &card {
        ensure_free(tx, org, *kind, value, None).await?;
    }
    let guest = add_guest(tx, org, name, phone.as_deref(), group_id, now).await?;
    if let Some((kind, value)) = &card {
        tx.insert_identifier(guest, *kind, value).await?;
    }
    Ok(guest)
}

#[derive(Serialize)]
struct TillEnrolRequest<'a> {
    name: &'a str,
    phone: &'a str,
    code: &'a str,
}

/// The note of a welcome bonus in the guest's history.
pub const WELCOME_NOTE: &str = "welcome bonus";

/// A cashier enrols the guest whose code was not found: the phone (required) and the code become
/// the guest's identifiers, the guest starts in the entry group, and the programme's welcome
/// bonus is credited, all in one transaction. Refused unless the programme allows it; a phone or
/// code another guest has is refused with which one. A repeat of `op_key` answers the first
/// guest again (no second bonus).
#[allow(clippy::too_many_arguments)]
pub async fn enrol_at_till<T: LedgerTx>(
    tx: &mut T,
    org: &str,
    op_key: &str,
    name: &str,
    phone: &str,
    code: &str,
    kind: ScanKind,
    now: UnixSeconds,
) -> Result<GuestId, T::Error> {
    let request = TillEnrolRequest { name, phone, code };
    let print = fingerprint(&request)?;
    let first = tx.op_record(op_key).await?;
    if let Some(guest) = repeat(first, "enrol", &print)? {
        return Ok(guest);
    }
    let program = tx.program(Some(org)).await?;
    let bonus = rules::till_enrolment(&program)?;
    let group_id = rules::entry_group(&tx.groups().await?).ok_or(LoyaltyError::EnrolmentOff)?;
    let name = rules::guest_name(name)?;
    let phone = rules::identifier_value(IdentifierKind::Phone, phone)?;
    // A phone typed as the code is the phone identifier already, not a card besides it.
    let card = (rules::normalize_phone(rules::valid_code(code)?) != Some(phone.clone()))
        .then_some((rules::expected_identifier(kind), code));
    let guest = enrol(tx, org, &name, Some(&phone), card, group_id, now).await?;
    if bonus > Kopecks::ZERO {
        tx.post(&Posting {
            guest,
            kind: OpKind::ManualCredit,
            amount: bonus,
            note: WELCOME_NOTE,
            at: now,
            link: Link::Op(op_key),
        })
        .await?;
    }
    remember(tx, op_key, "enrol", print, &guest).await?;
    Ok(guest)
}

/// Adds a guest to an organisation; a phone is stored normalised (`+7XXXXXXXXXX`) and becomes an
/// identifier.
pub async fn add_guest<T: LedgerTx>(
    tx: &mut T,
    org: &str,
    name: &str,
    phone: Option<&str>,
    group_id: i64,
    now: UnixSeconds,
) -> Result<GuestId, T::Error> {
    let phone = phone
        .map(|p| rules::identifier_value(IdentifierKind::Phone, p))
        .transpose()?;
    let guest = tx.insert_guest(org, name, phone.as_deref(), group_id, now).await?;
    if let Some(phone) = &phone {
        tx.insert_identifier(guest, IdentifierKind::Phone, phone).await?;
    }
    Ok(guest)
}

/// Changes a guest's contact data: the name (as [`rules::guest_name`] allows) and the phone
/// (normalised; empty removes it). A phone another guest of the organisation has is refused with
/// the reason, and nothing changes.
pub async fn edit_contact<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guest: GuestId,
    name: &str,
    phone: Option<&str>,
    now: UnixSeconds,
) -> Result<(), T::Error> {
    let snapshot = match tx.snapshot(guest, now).await? {
        Some(snapshot) if visible(&snapshot, org) => snapshot,
        _ => return Err(UnknownCode.into()),
    };
    let name = rules::guest_name(name)?;
    let phone = phone
        .map(|p| rules::identifier_value(IdentifierKind::Phone, p))
        .transpose()?;
    if let Some(phone) = &phone {
        ensure_free(tx, &snapshot.org, IdentifierKind::Phone, phone, Some(guest)).await?;
    }
    tx.set_contact(guest, &name, phone.as_deref()).await
}

/// Opens another bonus account of a guest (a corporate account beside the personal one, say):
/// a balance, holds, cards and history of its own, paid from with its own card, on the same check
/// as the guest's other accounts if the cashier adds both. Opened on an account, it is the
/// person's. Answers the new account's id; a name the guest's accounts already have is refused.
pub async fn open_account<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    guest: GuestId,
    name: &str,
    now: UnixSeconds,
) -> Result<GuestId, T::Error> {
    let name = rules::account_name(name)?;
    own_guest(tx, org, guest, now).await?;
    match tx.insert_account(guest, &name, now).await? {
        Some(account) => Ok(account),
        None => Err(LoyaltyError::AccountNameTaken(name).into()),
    }
}

/// Stores the identifier as `identify` will look it up: trimmed, phones normalised.
pub async fn add_identifier<T: LedgerTx>(
    tx: &mut T,
    guest: GuestId,
    kind: IdentifierKind,
    value: &str,
) -> Result<(), T::Error> {
    let value = rules::identifier_value(kind, value)?;
    let Some(snapshot) = tx.snapshot(guest, 0).await? else {
        return Err(LoyaltyError::UnknownCode.into());
    };
    ensure_free(tx, &snapshot.org, kind, &value, Some(guest)).await?;
    tx.insert_identifier(guest, kind, &value).await
}

pub async fn add_gift_code<T: LedgerTx>(
    tx: &mut T,
    guest: GuestId,
    code: &str,
    name: &str,
    points: Kopecks,
) -> Result<(), T::Error> {
    let code = rules::valid_code(code)?;
    if points < Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount.into());
    }
    tx.insert_gift_code(guest, code, name, points).await
}

/// What an import is asked for (its fingerprint: the same file imported twice under one
/// operation id is one import).
#[derive(Serialize)]
struct ImportRequest<'a> {
    actor: &'a str,
    reason: &'a str,
    rows: &'a [ImportRow],
}

/// The audit action of an imported guest.
pub const IMPORT_ACTION: &str = "import";

/// Imports guests all or nothing: every row is checked ([`import::check_rows`]: groups, phones
/// and cards unique in the file and in `org`); if any is refused nothing is written and every
/// refusal is answered. Otherwise each guest is added with its identifiers, an opening balance is
/// a manual credit posted to the ledger under `op_key#line` with `actor: reason` as its note,
/// and each guest gets an audit entry (who, the masked phone and cards, the balance, the reason),
/// all in the store's one transaction. `dry_run` checks and writes nothing (the preview). A
/// repeat of `op_key` answers the first import again.
#[allow(clippy::too_many_arguments)]
pub async fn import_guests<T: LedgerTx>(
    tx: &mut T,
    org: &str,
    op_key: &str,
    actor: &str,
    reason: &str,
    rows: &[ImportRow],
    dry_run: bool,
    now: UnixSeconds,
) -> Result<ImportOutcome, T::Error> {
    let print = fingerprint(&ImportRequest { actor, reason, rows })?;
    if !dry_run {
        let first = tx.op_record(op_key).await?;
        if let Some(outcome) = repeat(first, IMPORT_ACTION, &print)? {
            return Ok(outcome);
        }
    }
    if !dry_run && reason.trim().is_empty() {
        return Err(LoyaltyError::OutOfRange("the reason".to_string()).into());
    }
    let groups: std::collections::HashMap<String, i64> =
        tx.groups().await?.into_iter().map(|g| (g.rules.name, g.id)).collect();
    let taken: std::collections::HashSet<String> = tx
        .taken_values(org, &import::identifier_values(rows))
        .await?
        .into_iter()
        .collect();
    let credited = Kopecks(rows.iter().map(|r| r.balance.0).sum());
    let group_ids = match import::check_rows(rows, &groups, &taken) {
        Ok(ids) => ids,
        Err(rejected) => {
            return Ok(ImportOutcome {
                imported: 0,
                accepted: rows.len() - rejected.len(),
                credited: Kopecks::ZERO,
                rejected,
            });
        }
    };
    if dry_run {
        return Ok(ImportOutcome {
            imported: 0,
            accepted: rows.len(),
            credited,
            rejected: Vec::new(),
        });
    }
    let new: Vec<NewGuestRow> = rows
        .iter()
        .zip(&group_ids)
        .map(|(row, group_id)| NewGuestRow {
            name: row.name.clone(),
            phone: row.phone.clone(),
            cards: row.cards.clone(),
            group_id: *group_id,
        })
        .collect();
    let ids = tx.insert_guests(org, &new, now).await?;
    if ids.len() != rows.len() {
        return Err(LoyaltyError::Storage("the store added another number of guests".to_string()).into());
    }
    let note = format!("{actor}: {reason}");
    let keys: Vec<String> = rows.iter().map(|r| format!("{op_key}#{}", r.line)).collect();
    let postings: Vec<Posting<'_>> = rows
        .iter()
        .zip(&ids)
        .zip(&keys)
        .filter(|((row, _), _)| row.balance > Kopecks::ZERO)
        .map(|((row, guest), key)| Posting {
            guest: *guest,
            kind: OpKind::ManualCredit,
            amount: row.balance,
            note: &note,
            at: now,
            link: Link::Op(key),
        })
        .collect();
    tx.post_many(&postings).await?;
    for (_, guest) in rows.iter().zip(&ids).filter(|(row, _)| row.blocked) {
        tx.set_blocked(*guest, true).await?;
    }
    let audit: Vec<AuditRow> = rows
        .iter()
        .zip(&ids)
        .zip(keys)
        .map(|((row, guest), key)| AuditRow {
            at: now,
            actor: actor.to_string(),
            action: IMPORT_ACTION.to_string(),
            guest: Some(*guest),
            detail: import_detail(row),
            reason: reason.to_string(),
            op_key: Some(key),
        })
        .collect();
    tx.insert_audit(org, &audit).await?;
    let outcome = ImportOutcome {
        imported: rows.len(),
        accepted: rows.len(),
        credited,
        rejected: Vec::new(),
    };
    remember(tx, op_key, IMPORT_ACTION, print, &outcome).await?;
    Ok(outcome)
}

/// An imported guest in the audit log: phone and cards masked, the opening balance.
fn import_detail(row: &ImportRow) -> String {
    let mut parts: Vec<String> = row.phone.iter().map(|p| crate::mask::mask_phone(p)).collect();
    parts.extend(row.cards.iter().map(|(_, code)| crate::mask::mask_code(code)));
    parts.push(row.balance.to_string());
    if row.blocked {
        parts.push(import::BLOCKED_MARK.to_string());
    }
    parts.join(", ")
}

// ----- Stamp cards, promotions and gifts -----

fn org_needed(org: Option<&str>) -> Result<&str, LoyaltyError> {
    org.ok_or_else(|| LoyaltyError::OutOfRange("the organisation".to_string()))
}

/// Defines or changes a stamp card of the organisation, checked by the rules first.
pub async fn save_stamp_card<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    id: Option<i64>,
    card: &StampCardDef,
) -> Result<i64, T::Error> {
    let org = org_needed(org)?;
    let card = rewards::check_stamp_card(card)?;
    tx.save_stamp_card(org, id, &card).await
}

/// Defines or changes a promotion of the organisation, checked by the rules first.
pub async fn save_promotion<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    id: Option<i64>,
    promotion: &PromotionDef,
) -> Result<i64, T::Error> {
    let org = org_needed(org)?;
    let promotion = rewards::check_promotion(promotion)?;
    tx.save_promotion(org, id, &promotion).await
}

/// Defines or changes a gift of the organisation's catalogue; its POS item code must be the
/// only one of its kind in the catalogue.
pub async fn save_gift<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    id: Option<i64>,
    gift: &GiftDef,
) -> Result<i64, T::Error> {
    let org = org_needed(org)?;
    let others = tx.gift_defs(org).await?;
    if id.is_some_and(|id| !others.iter().any(|(other, _)| *other == id)) {
        return Err(UnknownCode.into());
    }
    let gift = rewards::check_gift(gift, &others, id)?;
    tx.save_gift(org, id, &gift).await
}

#[derive(Serialize)]
struct IssueGiftRequest<'a> {
    guest: GuestId,
    gift_id: i64,
    code: &'a str,
}

/// Gives a guest of the organisation a gift code for a gift of its catalogue. The code must be
/// free: no other gift code, card code or phone of the organisation (the till looks a code up
/// as a phone, then a gift code, then a card). A repeat of `op_key` (a form posted twice)
/// issues nothing more.
pub async fn issue_gift<T: LedgerTx>(
    tx: &mut T,
    org: Option<&str>,
    op_key: &str,
    guest: GuestId,
    gift_id: i64,
    code: &str,
    now: UnixSeconds,
) -> Result<(), T::Error> {
    let org = org_needed(org)?;
    let request = IssueGiftRequest { guest, gift_id, code };
    let print = fingerprint(&request)?;
    let first = tx.op_record(op_key).await?;
    if let Some(()) = repeat(first, "issue_gift", &print)? {
        return Ok(());
    }
    own_guest(tx, Some(org), guest, now).await?;
    let gifts = tx.gift_defs(org).await?;
    let (_, gift) = gifts.iter().find(|(id, _)| *id == gift_id).ok_or(UnknownCode)?;
    if !gift.active {
        return Err(LoyaltyError::InvalidReward(crate::domain::RewardProblem::GiftOff).into());
    }
    let code = rules::valid_code(code)?;
    let taken = tx.gift_code(Some(org), code).await?.is_some()
        || !tx.identifier_owners(Some(org), code).await?.is_empty()
        || tx.phone_owner(Some(org), code).await?.is_some();
    if taken {
        return Err(LoyaltyError::InvalidReward(crate::domain::RewardProblem::CodeTaken).into());
    }
    tx.insert_issued_gift(guest, code, gift_id, gift).await?;
    remember(tx, op_key, "issue_gift", print, &()).await
}

/// Runs an engine operation on a store whose calls never wait (SQLite's are synchronous): the
/// future is polled once and must be done.
pub fn run_now<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
        // Unreachable with a synchronous store: nothing in the engine awaits anything else.
        std::thread::yield_now();
    }
}

/// Every loyalty operation a store runs, as data: a store has one way to run any of them
/// ([`Op::run`] inside its transaction) instead of a method per operation and per store.
#[derive(Clone, Debug)]
pub enum Op {
    /// See [`identify`].
    Identify { payload: String, kind: ScanKind },
    /// See [`card`].
    Card { guest: GuestId },
    /// See [`quote`].
    Quote { guest: GuestId, check: CheckInfo },
    /// See [`hold`].
    Hold {
        op_key: String,
        guest: GuestId,
        amount: Kopecks,
        check: CheckInfo,
    },
    /// See [`commit`].
    Commit {
        op_key: String,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: CheckInfo,
    },
    /// See [`commit_offline`].
    CommitOffline {
        op_key: String,
        guest: GuestId,
        requested: Kopecks,
        check: CheckInfo,
    },
    /// See [`void`].
    Void { op_key: String, hold: HoldId },
    /// See [`hold_shared`].
    HoldShared {
        op_key: String,
        owner: GuestId,
        shares: Vec<CardShare>,
        check: CheckInfo,
    },
    /// See [`commit_shared`].
    CommitShared {
        op_key: String,
        owner: GuestId,
        payments: Vec<CardPayment>,
        check: CheckInfo,
    },
    /// See [`refund`].
    Refund {
        op_key: String,
        payment_op_key: String,
        part: ReturnPart,
    },
    /// See [`refund_preview`].
    RefundPreview { payment_op_key: String, part: ReturnPart },
    /// See [`checks`].
    Checks(CheckFilter),
    /// See [`reset_holds`].
    ResetHolds { op_key: Option<String>, guest: GuestId },
    /// See [`manual`].
    Manual {
        op_key: String,
        guest: GuestId,
        kind: OpKind,
        amount: Kopecks,
        note: String,
    },
    /// See [`enrol`]; needs an organisation.
    Enrol {
        name: String,
        phone: Option<String>,
        card: Option<(IdentifierKind, String)>,
        group_id: i64,
    },
    /// See [`enrol_at_till`]; needs an organisation.
    EnrolAtTill {
        op_key: String,
        name: String,
        phone: String,
        code: String,
        kind: ScanKind,
    },
    /// See [`gifts`].
    Gifts { guest: GuestId },
    /// See [`open_holds`].
    OpenHolds { guest: Option<GuestId> },
    /// See [`history`].
    History { guest: GuestId, limit: usize },
    /// Releases every hold whose time is up, in every organisation; answers how many.
    ExpireHolds,
    /// The caller's organisation's programme (no organisation: the template).
    Program,
    /// See [`set_program`]: the caller's organisation's programme (no organisation: the template
    /// and every organisation's).
    SetProgram(ProgramSettings),
    /// See [`set_program`]: what new organisations start with.
    SetTemplate(ProgramSettings),
    /// See [`add_group`].
    AddGroup(NewGroup),
    /// See [`add_guest`].
    AddGuest {
        org: String,
        name: String,
        phone: Option<String>,
        group_id: i64,
    },
    /// See [`open_account`].
    OpenAccount { guest: GuestId, name: String },
    /// See [`add_identifier`].
    AddIdentifier {
        guest: GuestId,
        kind: IdentifierKind,
        value: String,
    },
    /// See [`add_gift_code`].
    AddGiftCode {
        guest: GuestId,
        code: String,
        name: String,
        points: Kopecks,
    },
    /// See [`edit_group`].
    EditGroup { id: i64, group: NewGroup },
    /// Blocks or unblocks a guest of the caller's organisation.
    SetBlocked { guest: GuestId, blocked: bool },
    /// See [`import_guests`]; needs an organisation.
    ImportGuests {
        op_key: String,
        actor: String,
        reason: String,
        rows: Vec<ImportRow>,
        dry_run: bool,
    },
    /// See [`save_stamp_card`]; answers the card's id.
    SaveStampCard { id: Option<i64>, card: StampCardDef },
    /// See [`save_promotion`]; answers the promotion's id.
    SavePromotion { id: Option<i64>, promotion: PromotionDef },
    /// See [`save_gift`]; answers the gift's id.
    SaveGift { id: Option<i64>, gift: GiftDef },
    /// See [`issue_gift`].
    IssueGift {
        op_key: String,
        guest: GuestId,
        gift_id: i64,
        code: String,
    },
    /// See [`edit_contact`].
    EditContact {
        guest: GuestId,
        name: String,
        phone: Option<String>,
    },
}

/// What an [`Op`] answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Identification(Identification),
    Card(GuestCard),
    Quote(SpendQuote),
    Hold(HoldReceipt),
    Payment(PaymentReceipt),
    /// Each account's hold of a check paid from several (none for an account paying nothing).
    SharedHolds(Vec<Option<HoldReceipt>>),
    /// Each account's receipt of a check paid from several.
    Payments(Vec<PaymentReceipt>),
    Voided,
    Refund(RefundReceipt),
    Checks(Vec<CheckSummary>),
    Count(u64),
    Balance(Kopecks),
    Gifts(Vec<Gift>),
    Holds(Vec<HoldReceipt>),
    History(Vec<HistoryEntry>),
    Program(ProgramSettings),
    /// The id of what was added (a group, a guest).
    Id(i64),
    Import(ImportOutcome),
    Done,
}

impl Op {
    /// Runs the operation in the store's transaction, for a caller of `org` (`None`: every
    /// organisation) at `now`.
    pub async fn run<T: LedgerTx>(&self, tx: &mut T, org: Option<&str>, now: UnixSeconds) -> Result<Answer, T::Error> {
        let answer = self.decide_and_write(tx, org, now).await?;
        tx.finish().await?;
        Ok(answer)
    }

    async fn decide_and_write<T: LedgerTx>(
        &self,
        tx: &mut T,
        org: Option<&str>,
        now: UnixSeconds,
    ) -> Result<Answer, T::Error> {
        Ok(match self {
            Op::Identify { payload, kind } => Answer::Identification(identify(tx, org, payload, *kind, now).await?),
            Op::Card { guest } => Answer::Card(card(tx, org, *guest, now).await?),
            Op::Quote { guest, check } => Answer::Quote(quote(tx, org, *guest, check, now).await?),
            Op::Hold {
                op_key,
                guest,
                amount,
                check,
            } => Answer::Hold(hold(tx, org, op_key, *guest, *amount, check, now).await?),
            Op::Commit {
                op_key,
                guest,
                hold,
                spent,
                check,
            } => Answer::Payment(commit(tx, org, op_key, *guest, *hold, *spent, check, now).await?),
            Op::CommitOffline {
                op_key,
                guest,
                requested,
                check,
            } => Answer::Payment(commit_offline(tx, org, op_key, *guest, *requested, check, now).await?),
            Op::Void { op_key, hold } => {
                void(tx, org, op_key, *hold, now).await?;
                Answer::Voided
            }
            Op::HoldShared {
                op_key,
                owner,
                shares,
                check,
            } => Answer::SharedHolds(hold_shared(tx, org, op_key, *owner, shares, check, now).await?),
            Op::CommitShared {
                op_key,
                owner,
                payments,
                check,
            } => Answer::Payments(commit_shared(tx, org, op_key, *owner, payments, check, now).await?),
            Op::Refund {
                op_key,
                payment_op_key,
                part,
            } => Answer::Refund(refund(tx, org, op_key, payment_op_key, part, now).await?),
            Op::RefundPreview { payment_op_key, part } => {
                Answer::Refund(refund_preview(tx, org, payment_op_key, part, now).await?)
            }
            Op::Checks(filter) => Answer::Checks(checks(tx, org, filter, now).await?),
            Op::ResetHolds { op_key, guest } => {
                Answer::Count(reset_holds(tx, org, op_key.as_deref(), *guest, now).await?)
            }
            Op::Manual {
                op_key,
                guest,
                kind,
                amount,
                note,
            } => Answer::Balance(manual(tx, org, op_key, *guest, *kind, *amount, note, now).await?),
            Op::Enrol {
                name,
                phone,
                card,
                group_id,
            } => {
                let org = org.ok_or_else(|| LoyaltyError::OutOfRange("the organisation".to_string()))?;
                let card = card.as_ref().map(|(kind, value)| (*kind, value.as_str()));
                Answer::Id(enrol(tx, org, name, phone.as_deref(), card, *group_id, now).await?)
            }
            Op::EnrolAtTill {
                op_key,
                name,
                phone,
                code,
                kind,
            } => {
                let org = org.ok_or_else(|| LoyaltyError::OutOfRange("the organisation".to_string()))?;
                Answer::Id(enrol_at_till(tx, org, op_key, name, phone, code, *kind, now).await?)
            }
            Op::EditGroup { id, group } => {
                edit_group(tx, *id, group).await?;
                Answer::Done
            }
            Op::ImportGuests {
                op_key,
                actor,
                reason,
                rows,
                dry_run,
            } => {
                let org = org.ok_or_else(|| LoyaltyError::OutOfRange("the organisation".to_string()))?;
                Answer::Import(import_guests(tx, org, op_key, actor, reason, rows, *dry_run, now).await?)
            }
            Op::EditContact { guest, name, phone } => {
                edit_contact(tx, org, *guest, name, phone.as_deref(), now).await?;
                Answer::Done
            }
            Op::SetBlocked { guest, blocked } => {
                own_guest(tx, org, *guest, now).await?;
                tx.set_blocked(*guest, *blocked).await?;
                Answer::Done
            }
            Op::Gifts { guest } => Answer::Gifts(gifts(tx, org, *guest, now).await?),
            Op::OpenHolds { guest } => Answer::Holds(open_holds(tx, org, *guest, now).await?),
            Op::History { guest, limit } => Answer::History(history(tx, org, *guest, *limit, now).await?),
            Op::ExpireHolds => Answer::Count(tx.expire_holds(now).await?),
            Op::Program => Answer::Program(tx.program(org).await?),
            Op::SetProgram(program) => {
                let scope = org.map_or(ProgramScope::Everyone, ProgramScope::Org);
                set_program(tx, scope, program).await?;
                Answer::Done
            }
            Op::SetTemplate(program) => {
                set_program(tx, ProgramScope::Template, program).await?;
                Answer::Done
            }
            Op::AddGroup(group) => Answer::Id(add_group(tx, group).await?),
            Op::AddGuest {
                org: guest_org,
                name,
                phone,
                group_id,
            } => {
                if org.is_some_and(|org| org != guest_org) {
                    return Err(UnknownCode.into());
                }
                Answer::Id(add_guest(tx, guest_org, name, phone.as_deref(), *group_id, now).await?)
            }
            Op::OpenAccount { guest, name } => Answer::Id(open_account(tx, org, *guest, name, now).await?),
            Op::AddIdentifier { guest, kind, value } => {
                own_guest(tx, org, *guest, now).await?;
                add_identifier(tx, *guest, *kind, value).await?;
                Answer::Done
            }
            Op::AddGiftCode {
                guest,
                code,
                name,
                points,
            } => {
                own_guest(tx, org, *guest, now).await?;
                add_gift_code(tx, *guest, code, name, *points).await?;
                Answer::Done
            }
            Op::SaveStampCard { id, card } => Answer::Id(save_stamp_card(tx, org, *id, card).await?),
            Op::SavePromotion { id, promotion } => Answer::Id(save_promotion(tx, org, *id, promotion).await?),
            Op::SaveGift { id, gift } => Answer::Id(save_gift(tx, org, *id, gift).await?),
            Op::IssueGift {
                op_key,
                guest,
                gift_id,
                code,
            } => {
                issue_gift(tx, org, op_key, *guest, *gift_id, code, now).await?;
                Answer::Done
            }
        })
    }

    /// Whether the operation only reads (the SQLite store runs those on a reader connection).
    pub fn reads_only(&self) -> bool {
        matches!(
            self,
            Op::Card { .. }
                | Op::Quote { .. }
                | Op::Gifts { .. }
                | Op::OpenHolds { .. }
                | Op::History { .. }
                | Op::Program
                | Op::RefundPreview { .. }
                | Op::Checks(_)
        )
    }
}

/// The typed answer of each kind of [`Op`]: `Op::Hold { .. }` answers `into_hold()`, and an
/// answer of another kind (a bug in the caller) is an error, not a panic.
macro_rules! answer_accessors {
    ($($accessor:ident: $variant:ident($value:ty);)*) => {
        impl Answer {
            $(
                pub fn $accessor(self) -> Result<$value, LoyaltyError> {
                    match self {
                        Answer::$variant(value) => Ok(value),
                        other => Err(unexpected(other)),
                    }
                }
            )*

            pub fn into_voided(self) -> Result<(), LoyaltyError> {
                match self {
                    Answer::Voided => Ok(()),
                    other => Err(unexpected(other)),
                }
            }

            pub fn into_done(self) -> Result<(), LoyaltyError> {
                match self {
                    Answer::Done => Ok(()),
                    other => Err(unexpected(other)),
                }
            }
        }
    };
}

answer_accessors! {
    into_identification: Identification(Identification);
    into_card: Card(GuestCard);
    into_quote: Quote(SpendQuote);
    into_hold: Hold(HoldReceipt);
    into_payment: Payment(PaymentReceipt);
    into_shared_holds: SharedHolds(Vec<Option<HoldReceipt>>);
    into_payments: Payments(Vec<PaymentReceipt>);
    into_refund: Refund(RefundReceipt);
    into_checks: Checks(Vec<CheckSummary>);
    into_count: Count(u64);
    into_balance: Balance(Kopecks);
    into_gifts: Gifts(Vec<Gift>);
    into_holds: Holds(Vec<HoldReceipt>);
    into_history: History(Vec<HistoryEntry>);
    into_program: Program(ProgramSettings);
    into_id: Id(i64);
    into_import: Import(ImportOutcome);
}

/// An answer of the wrong kind: a bug in the caller's match, reported instead of a panic.
pub fn unexpected(answer: Answer) -> LoyaltyError {
    LoyaltyError::Storage(format!("the ledger answered an unexpected {answer:?}"))
}
