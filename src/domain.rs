//! The loyalty programme's vocabulary, shared by the workflow core, the backends and the UI.
//! Plain data: no I/O, no clock.

use crate::money::Kopecks;
use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch. The core never reads a clock: times come in with events.
pub type UnixSeconds = i64;

/// The UTC calendar date `(year, month, day)` of a Unix time, without a date library
/// (Howard Hinnant's civil-from-days algorithm).
pub fn civil_date(unix: UnixSeconds) -> (i64, i64, i64) {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Percentages are basis points: 500 = 5.00 %.
pub type BasisPoints = i64;

/// Where an identification came from. Devices (scanners, card readers, camera) arrive in a
/// later layer; they all deliver the same [`ScanEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanKind {
    /// An app QR code (guest token, or guest + gift token).
    Qr,
    /// A printed card barcode.
    Barcode,
    /// Magnetic stripe tracks.
    MagneticCard,
    /// Typed on the keypad or keyboard.
    Manual,
}

/// One identification input: what every input source delivers into `identify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanEvent {
    /// A human-readable device name ("keypad", "COM3", "Honeywell 1900 (HID)").
    pub source: String,
    pub kind: ScanKind,
    /// The raw text. Never logged unmasked.
    pub payload: String,
    /// Barcode symbology where the device reports it ("QR", "EAN-13", …).
    pub symbology: Option<String>,
    /// When the input was received, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
}

impl ScanEvent {
    pub fn manual(payload: impl Into<String>, received_at_ms: i64) -> Self {
        ScanEvent {
            source: "keypad".to_string(),
            kind: ScanKind::Manual,
            payload: payload.into(),
            symbology: None,
            received_at_ms,
        }
    }
}

/// How a guest identifier is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    AppQr,
    CardBarcode,
    MagneticStripe,
    ManualCode,
    Phone,
}

impl IdentifierKind {
    pub const ALL: [IdentifierKind; 5] = [
        IdentifierKind::AppQr,
        IdentifierKind::CardBarcode,
        IdentifierKind::MagneticStripe,
        IdentifierKind::ManualCode,
        IdentifierKind::Phone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::AppQr => "app_qr",
            IdentifierKind::CardBarcode => "card_barcode",
            IdentifierKind::MagneticStripe => "magnetic_stripe",
            IdentifierKind::ManualCode => "manual_code",
            IdentifierKind::Phone => "phone",
        }
    }

    pub fn parse(s: &str) -> Option<IdentifierKind> {
        IdentifierKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

pub type GuestId = i64;
pub type HoldId = i64;

/// A client group (Quick Resto's «группа клиентов»).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub id: i64,
    pub name: String,
    pub discount_bp: BasisPoints,
    pub accrual_bp: BasisPoints,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampProgress {
    pub card_name: String,
    pub collected: i64,
    pub needed: i64,
    pub reward: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub name: String,
    pub description: String,
    pub ends_at: UnixSeconds,
}

/// A gift from a gift code: goes into the order as a line marked as a gift.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gift {
    /// The gift code it came from; redeemed when the visit is paid.
    pub code: String,
    pub name: String,
    /// What the guest paid for it in the app, in points (minor units).
    pub points: Kopecks,
    /// The POS item code of the catalogue's gift the code was issued for (the back office's
    /// «Бонусы и подарки»); `None` for a code issued before the catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_code: Option<String>,
}

/// Everything the cashier sees about an identified guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestCard {
    pub guest_id: GuestId,
    pub name: String,
    /// Already masked by the backend: `+7 *** ***-12-34`.
    pub phone_masked: String,
    pub balance: Kopecks,
    /// Balance minus open holds.
    pub available: Kopecks,
    pub group: GroupInfo,
    pub stamps: Vec<StampProgress>,
    pub promotions: Vec<Promotion>,
    /// Today's paid visits against the group's daily limit, as of the identification; `None`
    /// when the group has no limit (or the card was not read by an identification).
    #[serde(default)]
    pub daily_visits: Option<DailyVisits>,
    /// The name of the bonus account this card pays from, for a guest's further account
    /// (a corporate one, say); `None` for the guest's main account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl GuestCard {
    /// The card as a list of several cards names it: the guest's name (the masked phone when
    /// there is none), and a further account's name, so that two accounts of one guest on a
    /// check are told apart.
    pub fn label(&self) -> String {
        let person = if self.name.is_empty() {
            self.phone_masked.clone()
        } else {
            self.name.clone()
        };
        match &self.account {
            Some(account) => format!("{person} · {account}"),
            None => person,
        }
    }
}

/// A daily limit of visits: a visit is a paid check, so a guest added and removed without
/// buying uses none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyVisits {
    /// Checks paid today (local day), before this visit.
    pub used: i64,
    pub limit: i64,
}

impl DailyVisits {
    /// Visits still allowed today, this one included.
    pub fn left(&self) -> i64 {
        (self.limit - self.used).max(0)
    }
}

/// The result of `identify`: the seed's two actions, "authorise" and "authorise and give a gift".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identification {
    pub card: GuestCard,
    pub gift: Option<Gift>,
}

/// Which rule sets the maximum a guest may pay with bonuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendLimitKind {
    /// Balance minus holds.
    Available,
    /// The programme's maximum share of a check.
    CheckPercent,
    /// What is left of the guest group's daily bonus spending limit.
    DailyLimit,
    /// The amount due on the check.
    AmountDue,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendLimit {
    pub kind: SpendLimitKind,
    pub amount: Kopecks,
}

/// The answer of `calculate`: the maximum and every limit that went into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendQuote {
    /// The amount due after the group discount.
    pub amount_due: Kopecks,
    /// The smallest of `limits`, rounded down to `spend_step`.
    pub max_spend: Kopecks,
    /// Every limit considered, in a fixed order; the binding one equals `max_spend` before rounding.
    pub limits: Vec<SpendLimit>,
    /// The programme's programme check-percent limit, for the explanation ("50 % of the check").
    pub max_check_bp: BasisPoints,
    /// Bonuses are spent in multiples of this (100 = whole roubles only).
    pub spend_step: Kopecks,
    pub accrual_bp: BasisPoints,
}

impl SpendQuote {
    /// The limit that decides the maximum (the first of the smallest).
    pub fn binding_limit(&self) -> Option<&SpendLimit> {
        self.limits.iter().min_by_key(|l| l.amount)
    }

    /// Accrual on the part of the check not paid with bonuses.
    pub fn accrual_for(&self, spent: Kopecks) -> Kopecks {
        self.amount_due.saturating_sub(spent).percent_floor(self.accrual_bp)
    }

    /// The most all accounts together may pay on this check when several cards pay it: the
    /// check's own limits (the share bonuses may pay, the amount due), on the step; each
    /// account's own limits (available, daily) are in its own quote.
    pub fn check_max(&self) -> Kopecks {
        self.limits
            .iter()
            .filter(|l| matches!(l.kind, SpendLimitKind::CheckPercent | SpendLimitKind::AmountDue))
            .map(|l| l.amount)
            .fold(self.amount_due, Kopecks::min)
            .floor_to_step(self.spend_step)
            .max(Kopecks::ZERO)
    }
}

/// The check the cashier is closing, as the backend needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInfo {
    /// Sum of the order lines before the group discount (gift lines cost nothing).
    pub subtotal: Kopecks,
    /// Gift codes in the order, redeemed when the check is paid.
    pub gift_codes: Vec<String>,
    /// The order's priced lines, kept with the payment so that a return can name lines; empty
    /// when the till sent none (then only amounts can be returned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<CheckLine>,
}

/// One priced line of a paid check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckLine {
    pub name: String,
    pub quantity: i64,
    /// Price of one unit.
    pub price: Kopecks,
    /// Units given back by returns so far (none on a check being paid).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returned: i64,
}

impl CheckLine {
    pub fn total(&self) -> Kopecks {
        Kopecks(self.price.0.saturating_mul(self.quantity))
    }

    pub fn left(&self) -> i64 {
        self.quantity - self.returned
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Units of one line of a paid check given back; `line` counts from 0 in the check's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineReturn {
    pub line: usize,
    pub quantity: i64,
}

/// What part of a paid check a return gives back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReturnPart {
    /// Everything not yet returned.
    #[default]
    Rest,
    /// This much of the amount due.
    Amount(Kopecks),
    /// These units of the check's lines.
    Lines(Vec<LineReturn>),
}

impl From<Option<Kopecks>> for ReturnPart {
    fn from(amount: Option<Kopecks>) -> ReturnPart {
        amount.map_or(ReturnPart::Rest, ReturnPart::Amount)
    }
}

/// The most lines a check keeps (a POS check longer than this is paid, but returned by amount).
pub const MAX_CHECK_LINES: usize = 200;

/// The part of `amount_due` that `returning` units of `lines` are worth when `lines` already
/// had their `returned` units given back. Valued on the running total, like the bonuses of a
/// return: the lines' prices share out the amount due (after the group's discount), and once
/// every unit is back the parts add up to exactly the amount due.
pub fn lines_value(
    lines: &[CheckLine],
    amount_due: Kopecks,
    returning: &[LineReturn],
) -> Result<Kopecks, LoyaltyError> {
    if returning.is_empty() {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    let mut asked = vec![0_i64; lines.len()];
    for part in returning {
        let Some(line) = lines.get(part.line) else {
            return Err(LoyaltyError::OutOfRange(format!("line {}", part.line + 1)));
        };
        if part.quantity <= 0 {
            return Err(LoyaltyError::NonPositiveAmount);
        }
        asked[part.line] += part.quantity;
        if asked[part.line] > line.left() {
            return Err(LoyaltyError::LineOverReturn {
                line: line.name.clone(),
                left: line.left().max(0),
            });
        }
    }
    let base: i128 = lines.iter().map(|l| i128::from(l.total().0)).sum();
    let before: i128 = lines
        .iter()
        .map(|l| i128::from(l.price.0) * i128::from(l.returned))
        .sum();
    let now: i128 = lines
        .iter()
        .zip(&asked)
        .map(|(l, n)| i128::from(l.price.0) * i128::from(*n))
        .sum();
    if base <= 0 {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    let share = |part: i128| i128::from(amount_due.0) * part / base;
    let value = share(before + now) - share(before);
    Ok(Kopecks(i64::try_from(value).unwrap_or(i64::MAX)))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldReceipt {
    pub hold_id: HoldId,
    pub amount: Kopecks,
    pub expires_at: UnixSeconds,
}

/// The result of finishing a paid check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReceipt {
    pub spent: Kopecks,
    pub accrued: Kopecks,
    pub balance_after: Kopecks,
    /// Set when the payment moved the guest to another group.
    pub new_group: Option<String>,
}

/// One account's part of a check paid from several accounts (seed 003: cards presented one
/// after another, an amount for each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardShare {
    pub guest: GuestId,
    /// Bonuses to pay from this account (zero: the card is on the check without paying).
    pub amount: Kopecks,
}

/// One account's part of a check paid from several accounts, as it is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardPayment {
    pub guest: GuestId,
    /// The hold placed for this account (none when it pays nothing).
    pub hold: Option<HoldId>,
    pub spent: Kopecks,
}

/// The result of returning part or all of a paid check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    /// The part of the check's amount due that was returned.
    pub amount: Kopecks,
    /// Bonuses spent on the returned part, given back to the guest.
    pub spend_returned: Kopecks,
    /// The accrual on the returned part, taken back.
    pub accrual_taken: Kopecks,
    /// Accrual that could not be taken back because the guest had already spent it.
    pub unrecovered: Kopecks,
    pub balance_after: Kopecks,
    /// Whether the check is now returned in full (gifts and stamps come back only then).
    #[serde(default)]
    pub full: bool,
    /// The names of the gifts redeemed on the check, back with the guest (a full return).
    #[serde(default)]
    pub gifts_restored: Vec<String>,
    /// Stamps taken back, one per stamp card the visit counted on (a full return).
    #[serde(default)]
    pub stamps_taken: i64,
    /// The group the guest falls back to, when the return takes them below its threshold.
    #[serde(default)]
    pub new_group: Option<String>,
    /// Bonuses given back to the other accounts that paid part of the check (several cards).
    #[serde(default)]
    pub others_returned: Kopecks,
}

/// How the till looks for a closed check to return.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFilter {
    /// Only checks paid since the local midnight.
    pub today: bool,
    /// The check's number (as the till printed it).
    pub number: Option<i64>,
    /// A guest's card code, app QR or phone: only that guest's checks.
    pub guest_code: Option<String>,
    /// Only checks whose payment operation id starts with this (one till's checks on a server).
    pub op_prefix: Option<String>,
}

/// A closed check as the returns screen lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The check's number.
    pub number: i64,
    /// The operation id it was paid with (what a return names).
    pub op_id: String,
    pub guest: GuestId,
    pub guest_name: String,
    pub at: UnixSeconds,
    pub amount_due: Kopecks,
    pub spent: Kopecks,
    pub accrued: Kopecks,
    /// What earlier returns of the check took back already.
    pub refunded: Kopecks,
    /// The check's lines with what was returned of each (empty: the till sent none).
    #[serde(default)]
    pub lines: Vec<CheckLine>,
}

impl CheckSummary {
    /// What is left to return.
    pub fn left(&self) -> Kopecks {
        self.amount_due - self.refunded
    }
}

/// One line of a guest's operations history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: UnixSeconds,
    pub kind: String,
    /// Positive for credits, negative for debits.
    pub amount: Kopecks,
    pub balance_after: Kopecks,
    pub note: String,
}

/// What a backend call can fail with. Each variant is one message for the cashier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum LoyaltyError {
    #[error("no guest for this code")]
    UnknownCode,
    #[error("the code is empty or longer than {max} characters")]
    BadCode { max: usize },
    #[error("the gift code was already used")]
    GiftAlreadyUsed,
    #[error("the guest reached today's limit of {limit} operations")]
    DailyOperationsLimit { limit: i64 },
    #[error("the amount {requested} is over the maximum {max}")]
    OverMaximum { requested: Kopecks, max: Kopecks },
    #[error("the amount must be a multiple of {step}")]
    NotAMultipleOfStep { step: Kopecks },
    #[error("the amount must be positive")]
    NonPositiveAmount,
    #[error("the hold does not exist")]
    UnknownHold,
    #[error("the hold is {status} already")]
    HoldNotOpen { status: String },
    #[error("the commit of {requested} is more than the hold of {held}")]
    CommitOverHold { requested: Kopecks, held: Kopecks },
    #[error("no paid check with this operation id")]
    UnknownPayment,
    #[error("the refund of {requested} is more than the {left} left of the check")]
    RefundOverPayment { requested: Kopecks, left: Kopecks },
    /// A return names more units of a line than the check has left of it.
    #[error("{line}: only {left} left to return")]
    LineOverReturn { line: String, left: i64 },
    #[error("the same operation id was used for a different request")]
    OperationIdConflict,
    #[error("{0} is out of range")]
    OutOfRange(String),
    /// A phone or code another guest of the organisation already has.
    #[error("the {0:?} belongs to another guest")]
    IdentifierTaken(IdentifierKind),
    /// A group whose spend threshold is another ranked group's, or out of order with the ranks.
    #[error("the threshold clashes with the group {0}")]
    GroupThresholdClash(String),
    #[error("the guest is blocked")]
    GuestBlocked,
    /// A check paid from several accounts names one account twice (the same card, or another
    /// card of the same account).
    #[error("this account is already on the check")]
    SameAccountOnCheck,
    /// The guest already has a bonus account of this name.
    #[error("the guest already has an account named {0}")]
    AccountNameTaken(String),
    /// One card of a check paid from several accounts was refused, so nothing was held or paid
    /// for any of them; `card` counts from 1 in the order the cards were presented.
    #[error("card {card}: {reason}")]
    CardRefused { card: usize, reason: Box<LoyaltyError> },
    /// The programme does not let cashiers enrol guests (or there is no group to put them in).
    #[error("enrolment at the till is off in this programme")]
    EnrolmentOff,
    #[error("the loyalty backend is unreachable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Storage(String),
    /// The till could not use the loyalty server and did nothing: no operation was sent or
    /// queued for it.
    #[error("the loyalty server is away: {0}")]
    ServerAway(AwayReason),
    /// A stamp card, promotion, gift or gift code the back office was asked to save is refused.
    #[error("the definition is refused: {0:?}")]
    InvalidReward(RewardProblem),
}

/// Why a stamp card, promotion or gift definition (or an issued gift code) is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardProblem {
    /// Empty, too long, or with control characters.
    Name,
    /// A stamp card needs at least one stamp (and not absurdly many).
    StampsNeeded,
    /// A stamp card's reward text is empty or too long.
    Reward,
    /// A gift's cost in points is negative or absurdly large.
    Cost,
    /// A promotion ends before (or when) it starts.
    EndBeforeStart,
    /// A promotion runs on no weekday.
    NoWeekday,
    /// A promotion's hours are out of the day or end before they start.
    Hours,
    /// A POS item code that is empty, too long or not printable ASCII.
    PosCode,
    /// Another gift of the organisation has this POS item code.
    PosCodeTaken,
    /// The gift is switched off: no new codes are issued for it.
    GiftOff,
    /// The gift code is another guest's, another gift's, or a guest's card code.
    CodeTaken,
}

/// Why a call was refused by the till itself while its loyalty server is away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwayReason {
    /// Offline, and this guest was not identified on this till recently (no cached card).
    GuestNotCached,
    /// Offline, and the owner allows no spending of bonuses without the server.
    SpendingOff,
    /// The server answers but refuses the till's token.
    TokenRefused,
    /// Offline: a new guest is enrolled only by the server (the till never makes guests the
    /// server has not heard of). An enrolment whose answer was lost is repeated with its op id.
    NoEnrolment,
    /// Offline: a check is paid from several cards only while the server answers (each
    /// account's hold is the server's; the till cannot hold several accounts together).
    NoSharedPayment,
    /// Offline: a till on a server has no shift report of its own (its checks are booked by the
    /// server, and a queued one is not booked yet); the report is asked for when it answers.
    NoShiftReport,
}

impl std::fmt::Display for AwayReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AwayReason::GuestNotCached => "the guest is not among the cards cached on this till",
            AwayReason::SpendingOff => "spending bonuses offline is off",
            AwayReason::TokenRefused => "the server refuses the till's token",
            AwayReason::NoEnrolment => "a guest is enrolled only while the server answers",
            AwayReason::NoSharedPayment => "several cards pay one check only while the server answers",
            AwayReason::NoShiftReport => "the shift report is read from the server only while it answers",
        })
    }
}

/// Bounds on an identification input, checked by the core and again by every backend.
pub const MAX_CODE_LEN: usize = 128;

/// Why a read from a scanner or card reader could not become an identification. Each is one
/// message for the cashier; the device layer logs the details (masked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanRefusal {
    /// Not text, empty, or far too long: a device sending something else, or line noise.
    Garbled,
    /// A magnetic stripe read that failed or holds no usable track.
    SwipeAgain,
    /// A loyalty QR token whose signature is wrong.
    QrForged,
    /// A loyalty QR token that is too old: the guest should refresh the code in the app.
    QrExpired,
    /// A token issued in the future: this till's clock is wrong.
    QrClock,
    /// A QR code or barcode that is not one of ours.
    QrUnknown,
    /// An app token, but the till has no programme key to check it with.
    QrNoKey,
    /// «QR из буфера» found neither an image nor text in the clipboard, or could not open it.
    ClipboardEmpty,
    /// «QR из буфера» found an image without a readable QR code.
    ClipboardNoQr,
}

/// What the status line says about the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// SQLite file on this till.
    Embedded { path: std::path::PathBuf },
    /// The chain's loyalty server and whether the till can use it now.
    Server { url: String, link: ServerLink },
}

/// What the till last learnt about its loyalty server (from a call or its background probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerLink {
    Online,
    /// No answer since `since` (the till's clock).
    Offline {
        since: UnixSeconds,
    },
    /// The server answers but refuses the till's token: only a new token in config.toml helps.
    TokenRefused,
}

impl BackendKind {
    /// False only for a loyalty server the till cannot use now.
    pub fn is_online(&self) -> bool {
        !matches!(
            self,
            BackendKind::Server {
                link: ServerLink::Offline { .. } | ServerLink::TokenRefused,
                ..
            }
        )
    }
}

/// What a till may leave in doubt at the end of a shift («Закрыть смену»).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LooseEndKind {
    /// Bonuses held and neither debited nor released (a till stopped between hold and commit);
    /// released by voiding the hold.
    OpenHold,
    /// A check closed while the server was away, waiting in the journal to be sent.
    QueuedPayment,
    /// A return journalled and not yet confirmed by the server.
    UnsentReturn,
    /// A hold or a release sent without an answer: the journal sends it again.
    InDoubt,
}

/// One entry of the «Закрыть смену» list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LooseEnd {
    pub kind: LooseEndKind,
    /// The operation id of the write concerned (the hold's, the payment's, the return's).
    pub op_id: String,
    pub hold: Option<HoldId>,
    /// The amount concerned; zero for a return of the rest of a check or of lines, whose amount
    /// only the server can work out.
    pub amount: Kopecks,
    /// The units of a check's lines a return gives back (a return by lines); zero otherwise.
    #[serde(default)]
    pub units: i64,
    /// Only the loyalty server can finish it.
    pub needs_server: bool,
}

/// The shift's figures. A shift is the local day (since the local midnight of the programme's
/// time zone, the same day the returns screen's «Сегодня» lists).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftReport {
    /// When the shift began (UTC).
    pub since: UnixSeconds,
    pub until: UnixSeconds,
    /// The programme's offset from UTC: the report's times are shown in it, so that the shift
    /// starts at 00:00 whatever the till's own clock zone.
    pub utc_offset_minutes: i64,
    /// The till the report is limited to, as the loyalty server knows it; `None` on the embedded
    /// ledger, whose file is this till's alone.
    #[serde(default)]
    pub till: Option<String>,
    /// Checks closed with a guest attached.
    pub checks: i64,
    /// The checks' amounts due (after the group discount; the part paid with bonuses included).
    pub revenue: Kopecks,
    pub spent: Kopecks,
    pub accrued: Kopecks,
    pub gifts_redeemed: i64,
    pub returns: i64,
    pub returned: Kopecks,
    pub new_guests: i64,
}

/// `+7XXXXXXXXXX` when the text is a Russian phone number in any usual spelling
/// (`8 916 123-45-67`, `+7 (916) 123-45-67`, `9161234567`).
pub fn normalize_phone(text: &str) -> Option<String> {
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

/// The longest guest name kept.
pub const MAX_GUEST_NAME_CHARS: usize = 200;

/// A guest's name as stored: trimmed, at most [`MAX_GUEST_NAME_CHARS`], no control characters;
/// empty is allowed (a guest known by phone only).
/// The longest name of a guest's further bonus account.
pub const MAX_ACCOUNT_NAME_CHARS: usize = 60;

/// A further account's name as stored: trimmed, not empty (it tells the accounts apart), bounded.
pub fn account_name(name: &str) -> Result<String, LoyaltyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_ACCOUNT_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(LoyaltyError::OutOfRange("the account's name".to_string()));
    }
    Ok(name.to_string())
}

pub fn guest_name(name: &str) -> Result<String, LoyaltyError> {
    let name = name.trim();
    if name.chars().count() > MAX_GUEST_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(LoyaltyError::OutOfRange("the name".to_string()));
    }
    Ok(name.to_string())
}
