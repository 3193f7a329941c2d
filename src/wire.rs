//! The `/api/v1` wire: every request and answer body of the loyalty server, the one set of types
//! the server reads and writes (`server::api`) and the till's client sends and reads
//! (`remote`). The OpenAPI document is generated from them (`server::openapi`).
//!
//! They are kept apart from the domain types on purpose: the JSON stays what earlier tills send
//! and expect while the domain changes, and a change to the wire is a change to this file.
//! Amounts are integers in kopecks; what a request carries is checked by the server
//! ([`Amount::kopecks`]), so that a number out of range is refused as such.

use crate::domain;
use crate::money::Kopecks;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest amount JSON carries exactly everywhere (JavaScript's safe integers).
pub const MAX_AMOUNT: i64 = (1 << 53) - 1;
pub const MAX_OP_ID_LEN: usize = 64;
pub const MAX_GIFT_CODES: usize = 32;
/// The most history lines one request returns.
pub const MAX_HISTORY: usize = 500;
/// History lines returned when the request does not say.
pub const DEFAULT_HISTORY: usize = 50;

// ----- Requests -----

/// An amount in kopecks as a request carries it: any JSON number is read, and
/// [`Amount::kopecks`] tells whether it is a whole number from 0 to 2^53 − 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(serde_json::Number);

impl Amount {
    /// The amount, if it is a whole number of kopecks from 0 to [`MAX_AMOUNT`].
    pub fn kopecks(&self) -> Option<Kopecks> {
        self.0
            .as_u64()
            .filter(|n| *n <= MAX_AMOUNT as u64)
            .map(|n| Kopecks(n as i64))
    }
}

impl From<Kopecks> for Amount {
    fn from(amount: Kopecks) -> Amount {
        Amount(serde_json::Number::from(amount.0))
    }
}

impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(0))
            .maximum(Some(MAX_AMOUNT))
            .description(Some("kopecks, a whole number from 0 to 2^53 - 1"))
            .into()
    }
}

impl ToSchema for Amount {}

/// The check the cashier is closing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Sum of the order lines before the group discount.
    pub subtotal: Amount,
    /// Gift codes in the order, redeemed when the check is paid.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub gift_codes: Vec<String>,
    /// The order's priced lines, so that a return can name them; when given, their prices times
    /// quantities add up to the subtotal (otherwise the check is paid and kept without them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 200)]
    pub lines: Vec<CheckLine>,
}

/// One priced line of a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckLine {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(minimum = 1)]
    pub quantity: i64,
    /// Price of one unit.
    pub price: Amount,
    /// Units returned so far (in a check found for a return; absent on a check being paid).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returned: i64,
}

impl From<&domain::CheckLine> for CheckLine {
    fn from(line: &domain::CheckLine) -> CheckLine {
        CheckLine {
            name: line.name.clone(),
            quantity: line.quantity,
            price: line.price.into(),
            returned: line.returned,
        }
    }
}

impl CheckLine {
    /// The line as the ledger takes it; `None` when its price is not a whole number of kopecks.
    pub fn to_domain(&self) -> Option<domain::CheckLine> {
        Some(domain::CheckLine {
            name: self.name.clone(),
            quantity: self.quantity,
            price: self.price.kopecks()?,
            returned: self.returned,
        })
    }
}

/// Units of one line of a paid check returned; `line` counts from 0 in the check's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineReturn {
    pub line: usize,
    #[schema(minimum = 1)]
    pub quantity: i64,
}

impl From<&domain::CheckInfo> for Check {
    fn from(check: &domain::CheckInfo) -> Check {
        Check {
            subtotal: check.subtotal.into(),
            gift_codes: check.gift_codes.clone(),
            lines: check.lines.iter().map(CheckLine::from).collect(),
        }
    }
}

/// Where an identification came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanKind {
    Qr,
    Barcode,
    MagneticCard,
    Manual,
}

impl From<domain::ScanKind> for ScanKind {
    fn from(kind: domain::ScanKind) -> ScanKind {
        match kind {
            domain::ScanKind::Qr => ScanKind::Qr,
            domain::ScanKind::Barcode => ScanKind::Barcode,
            domain::ScanKind::MagneticCard => ScanKind::MagneticCard,
            domain::ScanKind::Manual => ScanKind::Manual,
        }
    }
}

impl From<ScanKind> for domain::ScanKind {
    fn from(kind: ScanKind) -> domain::ScanKind {
        match kind {
            ScanKind::Qr => domain::ScanKind::Qr,
            ScanKind::Barcode => domain::ScanKind::Barcode,
            ScanKind::MagneticCard => domain::ScanKind::MagneticCard,
            ScanKind::Manual => domain::ScanKind::Manual,
        }
    }
}

/// A scanned or typed code: card, phone, app QR or gift code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifyRequest {
    pub kind: ScanKind,
    #[schema(max_length = 128)]
    pub payload: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalculateRequest {
    pub check: Check,
}

/// Bonuses reserved for a payment (the first phase). Every write's `op_id` is made by the till:
/// 1 to 64 printable ASCII characters without '/' or ':'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub op_id: String,
    pub guest_id: i64,
    pub amount: Amount,
    pub check: Check,
}

/// A guest a cashier enrols at the till after their code was not found: the code becomes their
/// card, the phone is required, the name may be empty. A repeat of `op_id` answers the same guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub op_id: String,
    /// How the code came in (the card's identifier kind follows from it).
    pub kind: ScanKind,
    #[schema(max_length = 128)]
    pub code: String,
    /// A Russian mobile number in any usual spelling.
    #[schema(max_length = 32)]
    pub phone: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: String,
}

/// Whether the till may offer «Новый гость», and the welcome bonus it credits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentAnswer {
    pub allowed: bool,
    pub welcome_bonus: Amount,
}

/// A paid check: the hold committed (possibly for less), accrual on the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub op_id: String,
    pub guest_id: i64,
    /// Sent as null when no bonuses were held.
    pub hold_id: Option<i64>,
    pub spent: Amount,
    pub check: Check,
    /// When the till closed the check (Unix seconds). A payment without a hold is booked at this
    /// time if it is at most the server's `--max-check-age-hours` old (72 by default) and at most
    /// 5 minutes ahead of its clock; otherwise at the server's time (the receipt says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_time: Option<i64>,
}

/// One account's amount on a check paid from several accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardShare {
    pub guest_id: i64,
    /// Zero: the card is on the check without paying (no hold).
    pub amount: Amount,
}

/// Holds on several accounts for one check (cards presented one after another), all or none.
/// Every account is checked first; a refusal names its card (`ledger.CardRefused.card`, from 1)
/// and nothing is held. The same account twice is refused (`same_account_on_check`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedHoldRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub op_id: String,
    /// The guest who owns the check (their group sets its amount due and limits); one of the cards.
    pub owner_id: i64,
    #[schema(min_items = 1, max_items = 16)]
    pub shares: Vec<CardShare>,
    pub check: Check,
}

/// Each account's hold, in the order of the request (null for an account paying nothing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SharedHoldAnswer {
    pub holds: Vec<Option<HoldReceipt>>,
}

/// One account's part of a check paid from several accounts, as it is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardPayment {
    pub guest_id: i64,
    /// Null when the account pays nothing.
    pub hold_id: Option<i64>,
    pub spent: Amount,
}

/// Closes a check paid from several accounts, all or nothing: each account is debited against the
/// check (in its own history), the owner's payment (named by `op_id` in a return) accrues on the
/// part no account paid. A return of the check gives each account its share back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedPaymentRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub op_id: String,
    pub owner_id: i64,
    #[schema(min_items = 1, max_items = 16)]
    pub payments: Vec<CardPayment>,
    pub check: Check,
}

/// Each account's receipt, in the order of the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SharedPaymentAnswer {
    pub receipts: Vec<PaymentReceipt>,
}

/// A paid check without bonuses spent: the accrual only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccrualRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub op_id: String,
    pub guest_id: i64,
    pub check: Check,
    /// When the till closed the check (Unix seconds). A payment without a hold is booked at this
    /// time if it is at most the server's `--max-check-age-hours` old (72 by default) and at most
    /// 5 minutes ahead of its clock; otherwise at the server's time (the receipt says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_time: Option<i64>,
}

/// A check a till closed with bonuses while the server was away.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflinePaymentRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub op_id: String,
    pub guest_id: i64,
    /// What the till debited offline; the server takes what the guest still has.
    pub spent: Amount,
    pub check: Check,
    /// When the till closed the check (Unix seconds). A payment without a hold is booked at this
    /// time if it is at most the server's `--max-check-age-hours` old (72 by default) and at most
    /// 5 minutes ahead of its clock; otherwise at the server's time (the receipt says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_time: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub op_id: String,
}

/// Part or all of a paid check returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub op_id: String,
    /// The operation id the payment (or accrual) was made with.
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub payment_op_id: String,
    /// The till that made the payment; this till when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_till: Option<String>,
    /// The part of the amount due returned; everything not yet returned when absent (and no
    /// `lines` are given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// The units of the check's lines returned (instead of an amount): their share of the
    /// amount due goes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 200)]
    pub lines: Option<Vec<LineReturn>>,
}

/// What a return would change, asked before it is made (nothing is written).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundPreviewRequest {
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-.0-9;-~]+$")]
    pub payment_op_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_till: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 200)]
    pub lines: Option<Vec<LineReturn>>,
}

/// The wire's form of what a return gives back.
pub fn return_fields(part: &domain::ReturnPart) -> (Option<Amount>, Option<Vec<LineReturn>>) {
    match part {
        domain::ReturnPart::Rest => (None, None),
        domain::ReturnPart::Amount(amount) => (Some((*amount).into()), None),
        domain::ReturnPart::Lines(lines) => (
            None,
            Some(
                lines
                    .iter()
                    .map(|l| LineReturn {
                        line: l.line,
                        quantity: l.quantity,
                    })
                    .collect(),
            ),
        ),
    }
}

/// Which closed checks of the calling till to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSearch {
    /// Only today's (since the local midnight).
    #[serde(default)]
    pub today: bool,
    /// The check's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    /// A guest's card code, app QR or phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 512)]
    pub guest_code: Option<String>,
}

// ----- Answers -----

/// A client group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub id: i64,
    pub name: String,
    /// Basis points: 500 = 5 %.
    pub discount_bp: i64,
    pub accrual_bp: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StampProgress {
    pub card_name: String,
    pub collected: i64,
    pub needed: i64,
    pub reward: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Promotion {
    pub name: String,
    pub description: String,
    /// Unix seconds.
    pub ends_at: i64,
}

/// A gift from a gift code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Gift {
    /// The gift code (masked in a guest card's list of gifts waiting).
    pub code: String,
    pub name: String,
    /// Points, in kopecks.
    pub points: i64,
    /// The POS item code of the catalogue's gift, when the code was issued for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_code: Option<String>,
}

/// Everything the cashier sees about a guest. Amounts in kopecks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GuestCard {
    pub guest_id: i64,
    pub name: String,
    /// `+7 *** ***-45-67`.
    pub phone_masked: String,
    pub balance: i64,
    /// Balance minus open holds.
    pub available: i64,
    pub group: Group,
    pub stamps: Vec<StampProgress>,
    pub promotions: Vec<Promotion>,
    /// Today's paid visits and the group's daily limit, on an identification of a guest whose
    /// group has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_visits: Option<DailyVisits>,
    /// The name of the bonus account this card pays from, for a guest's further account
    /// (a corporate one, say); `None` for the guest's main account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// Paid visits today against the group's daily limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DailyVisits {
    pub used: i64,
    pub limit: i64,
}

/// The guest behind a code, and the gift when the code was a gift code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Identification {
    pub card: GuestCard,
    pub gift: Option<Gift>,
}

/// The guest card with the guest's gifts waiting (codes masked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CardAnswer {
    #[serde(flatten)]
    pub card: GuestCard,
    pub gifts: Vec<Gift>,
}

/// Which rule sets the maximum a guest may pay with bonuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpendLimitKind {
    Available,
    CheckPercent,
    DailyLimit,
    AmountDue,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpendLimit {
    pub kind: SpendLimitKind,
    pub amount: i64,
}

/// The most the guest may spend on a check, every limit considered, and the accrual preview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Quote {
    /// The amount due after the group discount.
    pub amount_due: i64,
    /// The smallest of `limits`, rounded down to `spend_step`.
    pub max_spend: i64,
    pub limits: Vec<SpendLimit>,
    pub max_check_bp: i64,
    pub spend_step: i64,
    pub accrual_bp: i64,
    pub accrual_if_kept: i64,
    pub accrual_if_max_spent: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldReceipt {
    pub hold_id: i64,
    pub amount: i64,
    /// Unix seconds, by the server's clock.
    pub expires_at: i64,
}

/// A paid check's receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentReceipt {
    pub spent: i64,
    pub accrued: i64,
    pub balance_after: i64,
    /// The guest's new group when the payment moved them.
    pub new_group: Option<String>,
    /// The time the payment was booked at (Unix seconds), when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booked_at: Option<i64>,
    /// What the server did with the request's `check_time`, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_time: Option<CheckTimeUse>,
}

/// What the server did with a payment's `check_time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckTimeUse {
    /// Booked at the check's time.
    Used,
    /// No check time sent: booked now.
    Absent,
    /// Older than the server's bound: booked at the server's time.
    TooOld,
    /// More than 5 minutes ahead of the server's clock: booked at the server's time.
    InFuture,
    /// A payment on a hold: booked when committed, whatever the check time says.
    OnHold,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundReceipt {
    /// The part of the check's amount due returned.
    pub amount: i64,
    pub spend_returned: i64,
    pub accrual_taken: i64,
    /// Accrual that could not be taken back because the guest had spent it.
    pub unrecovered: i64,
    pub balance_after: i64,
    // The fields below are left out when empty: a receipt of a partial return reads exactly as
    // servers before them wrote it.
    /// Whether the check is now returned in full.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// Names of the gifts redeemed on the check, given back (a full return).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gifts_restored: Vec<String>,
    /// Stamps taken back (a full return).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stamps_taken: i64,
    /// The group the guest falls back to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_group: Option<String>,
    /// Bonuses given back to the other accounts that paid part of the check (several cards).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub others_returned: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A closed check the till may return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckSummary {
    /// The check's number.
    pub number: i64,
    /// The operation id the till paid it with.
    pub op_id: String,
    pub guest: i64,
    pub guest_name: String,
    pub at: i64,
    pub amount_due: i64,
    pub spent: i64,
    pub accrued: i64,
    /// What earlier returns took back already.
    pub refunded: i64,
    /// The check's lines with what was returned of each (absent: the till sent none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<CheckLine>,
}

impl From<domain::CheckSummary> for CheckSummary {
    fn from(c: domain::CheckSummary) -> CheckSummary {
        CheckSummary {
            number: c.number,
            op_id: c.op_id,
            guest: c.guest,
            guest_name: c.guest_name,
            at: c.at,
            amount_due: c.amount_due.0,
            spent: c.spent.0,
            accrued: c.accrued.0,
            refunded: c.refunded.0,
            lines: c.lines.iter().map(CheckLine::from).collect(),
        }
    }
}

impl From<CheckSummary> for domain::CheckSummary {
    fn from(c: CheckSummary) -> domain::CheckSummary {
        domain::CheckSummary {
            number: c.number,
            op_id: c.op_id,
            guest: c.guest,
            guest_name: c.guest_name,
            at: c.at,
            amount_due: Kopecks(c.amount_due),
            spent: Kopecks(c.spent),
            accrued: Kopecks(c.accrued),
            refunded: Kopecks(c.refunded),
            lines: c.lines.iter().filter_map(CheckLine::to_domain).collect(),
        }
    }
}

/// One line of a guest's history, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    pub at: i64,
    pub kind: String,
    /// Positive for credits, negative for debits.
    pub amount: i64,
    pub balance_after: i64,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoidAnswer {
    /// The hold released.
    pub voided: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResetAnswer {
    /// How many holds were released.
    pub voided: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    /// The server's clock, Unix seconds.
    pub now: i64,
}

/// The calling till, as its token says (the tills' probe).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TillAnswer {
    pub org: String,
    pub till: String,
    /// The server's clock, Unix seconds.
    pub now: i64,
}

/// The calling till's shift report: its own figures for one local day of the programme's time
/// zone (today's up to now). Only what this till booked: its checks with a guest, their returns,
/// the gifts redeemed on its checks and the guests enrolled at it. Amounts in kopecks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShiftReportAnswer {
    /// The till the token belongs to: the report is never another till's.
    pub till: String,
    /// The local day, `YYYY-MM-DD`.
    pub day: String,
    /// When the day began, Unix seconds (the local midnight).
    pub since: i64,
    /// The end of the period, Unix seconds: the server's clock for today, the next midnight for
    /// an earlier day.
    pub until: i64,
    /// The programme's offset from UTC, minutes east.
    pub utc_offset_minutes: i64,
    /// Checks closed with a guest attached.
    pub checks: i64,
    /// Their amounts due (after the group discount, the part paid with bonuses included).
    pub revenue: i64,
    /// Bonuses spent on those checks, as booked at payment.
    pub spent: i64,
    /// Bonuses accrued for those checks, as booked at payment.
    pub accrued: i64,
    pub gifts_redeemed: i64,
    /// Returns this till took back.
    pub returns: i64,
    /// The amount they returned.
    pub returned: i64,
    /// Bonuses the returns gave back to the guests.
    pub spend_returned: i64,
    /// Accrual the returns took back.
    pub accrual_taken: i64,
    /// Guests enrolled at this till.
    pub new_guests: i64,
}

impl From<ShiftReportAnswer> for domain::ShiftReport {
    fn from(r: ShiftReportAnswer) -> domain::ShiftReport {
        domain::ShiftReport {
            since: r.since,
            until: r.until,
            utc_offset_minutes: r.utc_offset_minutes,
            till: Some(r.till),
            checks: r.checks,
            revenue: Kopecks(r.revenue),
            spent: Kopecks(r.spent),
            accrued: Kopecks(r.accrued),
            gifts_redeemed: r.gifts_redeemed,
            returns: r.returns,
            returned: Kopecks(r.returned),
            new_guests: r.new_guests,
        }
    }
}

/// Every refusal: a machine-readable code, a reason for people, and for a rule of the ledger
/// the ledger's error itself, so that a till shows the same message as with its own ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// e.g. over_maximum, operation_id_conflict, malformed_json, invalid_amount.
    pub error: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub ledger: Option<domain::LoyaltyError>,
}

// ----- Domain to wire (the server) and back (the till) -----

impl From<domain::GroupInfo> for Group {
    fn from(g: domain::GroupInfo) -> Group {
        Group {
            id: g.id,
            name: g.name,
            discount_bp: g.discount_bp,
            accrual_bp: g.accrual_bp,
        }
    }
}

impl From<Group> for domain::GroupInfo {
    fn from(g: Group) -> domain::GroupInfo {
        domain::GroupInfo {
            id: g.id,
            name: g.name,
            discount_bp: g.discount_bp,
            accrual_bp: g.accrual_bp,
        }
    }
}

impl From<domain::StampProgress> for StampProgress {
    fn from(s: domain::StampProgress) -> StampProgress {
        StampProgress {
            card_name: s.card_name,
            collected: s.collected,
            needed: s.needed,
            reward: s.reward,
        }
    }
}

impl From<StampProgress> for domain::StampProgress {
    fn from(s: StampProgress) -> domain::StampProgress {
        domain::StampProgress {
            card_name: s.card_name,
            collected: s.collected,
            needed: s.needed,
            reward: s.reward,
        }
    }
}

impl From<domain::Promotion> for Promotion {
    fn from(p: domain::Promotion) -> Promotion {
        Promotion {
            name: p.name,
            description: p.description,
            ends_at: p.ends_at,
        }
    }
}

impl From<Promotion> for domain::Promotion {
    fn from(p: Promotion) -> domain::Promotion {
        domain::Promotion {
            name: p.name,
            description: p.description,
            ends_at: p.ends_at,
        }
    }
}

impl From<domain::Gift> for Gift {
    fn from(g: domain::Gift) -> Gift {
        Gift {
            code: g.code,
            name: g.name,
            points: g.points.0,
            pos_code: g.pos_code,
        }
    }
}

impl From<Gift> for domain::Gift {
    fn from(g: Gift) -> domain::Gift {
        domain::Gift {
            code: g.code,
            name: g.name,
            points: Kopecks(g.points),
            pos_code: g.pos_code,
        }
    }
}

impl From<domain::GuestCard> for GuestCard {
    fn from(c: domain::GuestCard) -> GuestCard {
        GuestCard {
            guest_id: c.guest_id,
            name: c.name,
            phone_masked: c.phone_masked,
            balance: c.balance.0,
            available: c.available.0,
            group: c.group.into(),
            stamps: c.stamps.into_iter().map(Into::into).collect(),
            promotions: c.promotions.into_iter().map(Into::into).collect(),
            daily_visits: c.daily_visits.map(|v| DailyVisits {
                used: v.used,
                limit: v.limit,
            }),
            account: c.account,
        }
    }
}

impl From<GuestCard> for domain::GuestCard {
    fn from(c: GuestCard) -> domain::GuestCard {
        domain::GuestCard {
            guest_id: c.guest_id,
            name: c.name,
            phone_masked: c.phone_masked,
            balance: Kopecks(c.balance),
            available: Kopecks(c.available),
            group: c.group.into(),
            stamps: c.stamps.into_iter().map(Into::into).collect(),
            promotions: c.promotions.into_iter().map(Into::into).collect(),
            daily_visits: c.daily_visits.map(|v| domain::DailyVisits {
                used: v.used,
                limit: v.limit,
            }),
            account: c.account,
        }
    }
}

impl From<domain::Identification> for Identification {
    fn from(i: domain::Identification) -> Identification {
        Identification {
            card: i.card.into(),
            gift: i.gift.map(Into::into),
        }
    }
}

impl From<Identification> for domain::Identification {
    fn from(i: Identification) -> domain::Identification {
        domain::Identification {
            card: i.card.into(),
            gift: i.gift.map(Into::into),
        }
    }
}

impl From<domain::SpendLimitKind> for SpendLimitKind {
    fn from(kind: domain::SpendLimitKind) -> SpendLimitKind {
        match kind {
            domain::SpendLimitKind::Available => SpendLimitKind::Available,
            domain::SpendLimitKind::CheckPercent => SpendLimitKind::CheckPercent,
            domain::SpendLimitKind::DailyLimit => SpendLimitKind::DailyLimit,
            domain::SpendLimitKind::AmountDue => SpendLimitKind::AmountDue,
        }
    }
}

impl From<SpendLimitKind> for domain::SpendLimitKind {
    fn from(kind: SpendLimitKind) -> domain::SpendLimitKind {
        match kind {
            SpendLimitKind::Available => domain::SpendLimitKind::Available,
            SpendLimitKind::CheckPercent => domain::SpendLimitKind::CheckPercent,
            SpendLimitKind::DailyLimit => domain::SpendLimitKind::DailyLimit,
            SpendLimitKind::AmountDue => domain::SpendLimitKind::AmountDue,
        }
    }
}

impl From<domain::SpendQuote> for Quote {
    fn from(q: domain::SpendQuote) -> Quote {
        Quote {
            accrual_if_kept: q.accrual_for(Kopecks::ZERO).0,
            accrual_if_max_spent: q.accrual_for(q.max_spend).0,
            amount_due: q.amount_due.0,
            max_spend: q.max_spend.0,
            limits: q
                .limits
                .into_iter()
                .map(|l| SpendLimit {
                    kind: l.kind.into(),
                    amount: l.amount.0,
                })
                .collect(),
            max_check_bp: q.max_check_bp,
            spend_step: q.spend_step.0,
            accrual_bp: q.accrual_bp,
        }
    }
}

impl From<Quote> for domain::SpendQuote {
    fn from(q: Quote) -> domain::SpendQuote {
        domain::SpendQuote {
            amount_due: Kopecks(q.amount_due),
            max_spend: Kopecks(q.max_spend),
            limits: q
                .limits
                .into_iter()
                .map(|l| domain::SpendLimit {
                    kind: l.kind.into(),
                    amount: Kopecks(l.amount),
                })
                .collect(),
            max_check_bp: q.max_check_bp,
            spend_step: Kopecks(q.spend_step),
            accrual_bp: q.accrual_bp,
        }
    }
}

impl From<domain::HoldReceipt> for HoldReceipt {
    fn from(h: domain::HoldReceipt) -> HoldReceipt {
        HoldReceipt {
            hold_id: h.hold_id,
            amount: h.amount.0,
            expires_at: h.expires_at,
        }
    }
}

impl From<HoldReceipt> for domain::HoldReceipt {
    fn from(h: HoldReceipt) -> domain::HoldReceipt {
        domain::HoldReceipt {
            hold_id: h.hold_id,
            amount: Kopecks(h.amount),
            expires_at: h.expires_at,
        }
    }
}

impl From<domain::PaymentReceipt> for PaymentReceipt {
    fn from(p: domain::PaymentReceipt) -> PaymentReceipt {
        PaymentReceipt {
            spent: p.spent.0,
            accrued: p.accrued.0,
            balance_after: p.balance_after.0,
            new_group: p.new_group,
            booked_at: None,
            check_time: None,
        }
    }
}

impl From<PaymentReceipt> for domain::PaymentReceipt {
    fn from(p: PaymentReceipt) -> domain::PaymentReceipt {
        domain::PaymentReceipt {
            spent: Kopecks(p.spent),
            accrued: Kopecks(p.accrued),
            balance_after: Kopecks(p.balance_after),
            new_group: p.new_group,
        }
    }
}

impl From<domain::RefundReceipt> for RefundReceipt {
    fn from(r: domain::RefundReceipt) -> RefundReceipt {
        RefundReceipt {
            amount: r.amount.0,
            spend_returned: r.spend_returned.0,
            accrual_taken: r.accrual_taken.0,
            unrecovered: r.unrecovered.0,
            balance_after: r.balance_after.0,
            full: r.full,
            gifts_restored: r.gifts_restored,
            stamps_taken: r.stamps_taken,
            new_group: r.new_group,
            others_returned: r.others_returned.0,
        }
    }
}

impl From<RefundReceipt> for domain::RefundReceipt {
    fn from(r: RefundReceipt) -> domain::RefundReceipt {
        domain::RefundReceipt {
            amount: Kopecks(r.amount),
            spend_returned: Kopecks(r.spend_returned),
            accrual_taken: Kopecks(r.accrual_taken),
            unrecovered: Kopecks(r.unrecovered),
            balance_after: Kopecks(r.balance_after),
            full: r.full,
            gifts_restored: r.gifts_restored,
            stamps_taken: r.stamps_taken,
            new_group: r.new_group,
            others_returned: Kopecks(r.others_returned),
        }
    }
}

impl From<domain::HistoryEntry> for HistoryEntry {
    fn from(h: domain::HistoryEntry) -> HistoryEntry {
        HistoryEntry {
            at: h.at,
            kind: h.kind,
            amount: h.amount.0,
            balance_after: h.balance_after.0,
            note: h.note,
        }
    }
}

impl From<HistoryEntry> for domain::HistoryEntry {
    fn from(h: HistoryEntry) -> domain::HistoryEntry {
        domain::HistoryEntry {
            at: h.at,
            kind: h.kind,
            amount: Kopecks(h.amount),
            balance_after: Kopecks(h.balance_after),
            note: h.note,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_whole_kopecks_up_to_two_to_the_53rd() {
        let read = |text: &str| serde_json::from_str::<Amount>(text).ok().and_then(|a| a.kopecks());
        assert_eq!(read("0"), Some(Kopecks(0)));
        assert_eq!(read("9007199254740991"), Some(Kopecks(MAX_AMOUNT)));
        for refused in ["9007199254740992", "-1", "0.5", "1e3", "-0.0", "18446744073709551616"] {
            assert_eq!(read(refused), None, "{refused}");
        }
        assert_eq!(
            serde_json::to_string(&Amount::from(Kopecks(12_345))).ok().as_deref(),
            Some("12345")
        );
    }

    /// A body as tills before these types wrote it (by hand, keys sorted) reads as the wire type
    /// and the wire type writes the same JSON.
    fn same_json<T: Serialize + serde::de::DeserializeOwned>(earlier: &str) {
        let earlier: serde_json::Value = serde_json::from_str(earlier).unwrap_or_default();
        let read: Option<T> = serde_json::from_value(earlier.clone()).ok();
        let written = read.and_then(|r| serde_json::to_value(r).ok());
        assert_eq!(written, Some(earlier));
    }

    #[test]
    fn requests_are_the_json_earlier_tills_send() {
        same_json::<IdentifyRequest>(r#"{"kind":"magnetic_card","payload":";7001000010?"}"#);
        same_json::<CalculateRequest>(r#"{"check":{"gift_codes":["G100001"],"subtotal":80000}}"#);
        same_json::<HoldRequest>(
            r#"{"amount":30000,"check":{"gift_codes":[],"subtotal":80000},"guest_id":1,"op_id":"h1"}"#,
        );
        same_json::<PaymentRequest>(
            r#"{"check":{"gift_codes":[],"subtotal":80000},"guest_id":1,"hold_id":null,"op_id":"c1","spent":0}"#,
        );
        same_json::<PaymentRequest>(
            r#"{"check":{"gift_codes":[],"subtotal":80000},"guest_id":1,"hold_id":7,"op_id":"c1","spent":20000}"#,
        );
        same_json::<OfflinePaymentRequest>(
            r#"{"check":{"gift_codes":[],"subtotal":80000},"guest_id":1,"op_id":"o1","spent":20000}"#,
        );
        same_json::<VoidRequest>(r#"{"op_id":"v1"}"#);
        same_json::<RefundRequest>(r#"{"op_id":"r1","payment_op_id":"c1"}"#);
    }

    #[test]
    fn answers_are_the_json_earlier_servers_send() {
        let card = r#""guest_id":1,"name":"Anna","phone_masked":"+7 *** ***-45-67","balance":100000,"available":70000,"group":{"id":1,"name":"Guest","discount_bp":0,"accrual_bp":500},"stamps":[{"card_name":"Coffee","collected":2,"needed":6,"reward":"Cup"}],"promotions":[{"name":"Happy hour","description":"x","ends_at":1741608900}]"#;
        same_json::<Identification>(&format!(
            r#"{{"card":{{{card}}},"gift":{{"code":"G100001","name":"Cappuccino","points":15000}}}}"#
        ));
        same_json::<Identification>(&format!(r#"{{"card":{{{card}}},"gift":null}}"#));
        same_json::<CardAnswer>(&format!(
            r#"{{{card},"gifts":[{{"code":"G1***01","name":"Cappuccino","points":15000}}]}}"#
        ));
        same_json::<Quote>(
            r#"{"amount_due":80000,"max_spend":40000,"limits":[{"kind":"available","amount":100000},{"kind":"check_percent","amount":40000}],"max_check_bp":5000,"spend_step":1,"accrual_bp":500,"accrual_if_kept":4000,"accrual_if_max_spent":2000}"#,
        );
        same_json::<HoldReceipt>(r#"{"hold_id":1,"amount":30000,"expires_at":1741608900}"#);
        same_json::<PaymentReceipt>(r#"{"spent":20000,"accrued":3000,"balance_after":83000,"new_group":null}"#);
        same_json::<RefundReceipt>(
            r#"{"amount":100,"spend_returned":50,"accrual_taken":5,"unrecovered":0,"balance_after":1000}"#,
        );
        same_json::<Vec<HistoryEntry>>(r#"[{"at":1,"kind":"spend","amount":-20000,"balance_after":80000,"note":""}]"#);
        same_json::<VoidAnswer>(r#"{"voided":7}"#);
        same_json::<ResetAnswer>(r#"{"voided":2}"#);
        same_json::<ErrorBody>(
            r#"{"error":"over_maximum","reason":"x","ledger":{"OverMaximum":{"requested":500,"max":400}}}"#,
        );
    }

    #[test]
    fn a_quote_goes_over_the_wire_and_back_unchanged() {
        let quote = domain::SpendQuote {
            amount_due: Kopecks(80_000),
            max_spend: Kopecks(40_000),
            limits: vec![domain::SpendLimit {
                kind: domain::SpendLimitKind::DailyLimit,
                amount: Kopecks(40_000),
            }],
            max_check_bp: 5_000,
            spend_step: Kopecks(100),
            accrual_bp: 500,
        };
        let wire = Quote::from(quote.clone());
        assert_eq!((wire.accrual_if_kept, wire.accrual_if_max_spent), (4_000, 2_000));
        assert_eq!(domain::SpendQuote::from(wire), quote);
    }
}
