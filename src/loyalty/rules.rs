//! The loyalty programme's rules, written once: pure functions from what a store read (a
//! snapshot of the guest, the group, the programme, the holds and today's counters) to a
//! decision or a plan of what to write. No SQL, no clock, no I/O: the engine
//! ([`super::engine`]) loads the snapshot, asks these functions, and has the store apply the
//! answer, on SQLite and PostgreSQL alike.

use crate::domain::{
    BasisPoints, CheckInfo, CheckLine, Gift, GroupInfo, GuestId, HoldId, IdentifierKind, LineReturn, LoyaltyError,
    MAX_CODE_LEN, ReturnPart, ScanKind, SpendLimit, SpendLimitKind, SpendQuote, UnixSeconds,
};
use crate::money::Kopecks;

pub const SECONDS_PER_DAY: i64 = 86_400;

/// The programme-wide rules of one organisation.
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
    pub accrual_basis: AccrualBasis,
    /// Credited to a guest a cashier enrols at the till; zero for none.
    pub welcome_bonus: Kopecks,
    /// Whether a cashier may enrol a guest whose code is not found («Новый гость»).
    pub till_enrolment: bool,
}

/// What a group's accrual percentage is taken of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccrualBasis {
    /// The part of the amount due paid with money: bonuses spent earn nothing.
    #[default]
    PaidPart,
    /// The whole amount due, the part paid with bonuses included.
    AmountDue,
}

impl AccrualBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            AccrualBasis::PaidPart => "paid",
            AccrualBasis::AmountDue => "due",
        }
    }

    pub fn parse(text: &str) -> Option<AccrualBasis> {
        match text {
            "paid" => Some(AccrualBasis::PaidPart),
            "due" => Some(AccrualBasis::AmountDue),
            _ => None,
        }
    }
}

impl ProgramSettings {
    /// What an organisation starts with before its owner sets the programme.
    pub fn default_for_new_org(hold_ttl_secs: i64) -> ProgramSettings {
        ProgramSettings {
            name: "Loyalty".to_string(),
            max_check_bp: 10_000,
            spend_step: Kopecks(1),
            hold_ttl_secs,
            group_period_days: 365,
            utc_offset_minutes: 0,
            accrual_basis: AccrualBasis::PaidPart,
            welcome_bonus: Kopecks::ZERO,
            till_enrolment: false,
        }
    }
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    pub rules: NewGroup,
}

impl Group {
    pub fn info(&self) -> GroupInfo {
        GroupInfo {
            id: self.id,
            name: self.rules.name.clone(),
            discount_bp: self.rules.discount_bp,
            accrual_bp: self.rules.accrual_bp,
        }
    }

    /// The check total after the group discount.
    pub fn amount_due(&self, subtotal: Kopecks) -> Kopecks {
        subtotal - subtotal.percent_floor(self.rules.discount_bp)
    }
}

/// What every decision about one guest starts from, read in one go by the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestSnapshot {
    pub guest: GuestId,
    pub org: String,
    pub balance: Kopecks,
    /// Balance minus the holds still open at the time of the read (holds past their time are
    /// released whether or not the sweep marked them).
    pub available: Kopecks,
    pub group: Group,
    pub program: ProgramSettings,
    /// Blocked in the back office: not identified, no new holds.
    pub blocked: bool,
}

/// A blocked guest is refused before anything else is decided.
pub fn check_not_blocked(snapshot: &GuestSnapshot) -> Result<(), LoyaltyError> {
    if snapshot.blocked {
        Err(LoyaltyError::GuestBlocked)
    } else {
        Ok(())
    }
}

// ----- The programme and its groups -----

/// A programme the rules can work with: shares within 0..100 %, a positive step, hold time and
/// group period, a time zone within a day of UTC.
/// The largest welcome bonus a programme may give: 100 000 ₽, far above any real one, so that a
/// slip of the keyboard (an extra zero or three) is refused instead of handed out.
pub const MAX_WELCOME_BONUS: Kopecks = Kopecks(10_000_000);

/// A cashier may enrol a guest only where the programme allows it; the answer is the welcome
/// bonus to credit (zero: none).
pub fn till_enrolment(program: &ProgramSettings) -> Result<Kopecks, LoyaltyError> {
    if program.till_enrolment {
        Ok(program.welcome_bonus)
    } else {
        Err(LoyaltyError::EnrolmentOff)
    }
}

/// The group a guest enrolled at the till starts in: the ranked group with the lowest threshold
/// (where spending moves guests from), else the first group made. `None`: no group yet.
pub fn entry_group(groups: &[Group]) -> Option<i64> {
    groups
        .iter()
        .filter(|g| g.rules.rank >= 1)
        .min_by_key(|g| (g.rules.spend_threshold, g.rules.rank, g.id))
        .or_else(|| groups.iter().min_by_key(|g| g.id))
        .map(|g| g.id)
}

/// The longest group period: a century. Its start (`now` less the period) must stay a time both
/// databases can count in, for every payment reads it.
pub const MAX_GROUP_PERIOD_DAYS: i64 = 36_600;

pub fn check_program(program: &ProgramSettings) -> Result<(), LoyaltyError> {
    let fine = (0..=10_000).contains(&program.max_check_bp)
        && program.spend_step > Kopecks::ZERO
        && program.hold_ttl_secs > 0
        && (1..=MAX_GROUP_PERIOD_DAYS).contains(&program.group_period_days)
        && (-1_440..=1_440).contains(&program.utc_offset_minutes)
        // Whole quarters of an hour, as every real zone is: the reports sum per quarter
        // (`report::QUARTER`), so a local day must start on one.
        && program.utc_offset_minutes % 15 == 0
        && (Kopecks::ZERO..=MAX_WELCOME_BONUS).contains(&program.welcome_bonus);
    if fine {
        Ok(())
    } else {
        Err(LoyaltyError::OutOfRange("a programme setting".to_string()))
    }
}

/// A group the rules can work with: a discount within 0..100 %, no negative accrual, threshold or
/// limit.
pub fn check_group(group: &NewGroup) -> Result<(), LoyaltyError> {
    let fine = (0..=10_000).contains(&group.discount_bp)
        && group.accrual_bp >= 0
        && group.spend_threshold >= Kopecks::ZERO
        && group.daily_ops_limit >= 0
        && group.daily_spend_limit >= Kopecks::ZERO;
    if fine {
        Ok(())
    } else {
        Err(LoyaltyError::OutOfRange("a group setting".to_string()))
    }
}

/// A ranked group (rank >= 1, moved into by spending) must sit between the other ranked groups:
/// a higher rank needs a strictly higher threshold, so no two groups claim the same spending.
/// `existing` are the ranked groups stored; `replacing` is the id of the group being edited.
pub fn check_group_among(group: &NewGroup, existing: &[Group], replacing: Option<i64>) -> Result<(), LoyaltyError> {
    check_group(group)?;
    if group.rank < 1 {
        return Ok(());
    }
    for other in existing.iter().filter(|g| Some(g.id) != replacing && g.rules.rank >= 1) {
        let o = &other.rules;
        let clash = o.rank == group.rank
            || o.spend_threshold == group.spend_threshold
            || (o.rank < group.rank) != (o.spend_threshold < group.spend_threshold);
        if clash {
            return Err(LoyaltyError::GroupThresholdClash(o.name.clone()));
        }
    }
    Ok(())
}

// ----- Codes and identification -----

/// The trimmed code, or BadCode when it is empty, too long, or holds a control character (a
/// NUL or a line break is never part of a code: it is a device or a client sending garbage).
pub fn valid_code(payload: &str) -> Result<&str, LoyaltyError> {
    let code = payload.trim();
    if code.is_empty() || code.chars().count() > MAX_CODE_LEN || code.chars().any(char::is_control) {
        return Err(LoyaltyError::BadCode { max: MAX_CODE_LEN });
    }
    Ok(code)
}

// Phones and names are read alike by the workflow core and the rules.
pub use crate::domain::{MAX_GUEST_NAME_CHARS, account_name, guest_name, normalize_phone};

/// The value an identifier is stored (and looked up) as: trimmed, phones normalised.
pub fn identifier_value(kind: IdentifierKind, value: &str) -> Result<String, LoyaltyError> {
    let code = valid_code(value)?;
    match kind {
        IdentifierKind::Phone => normalize_phone(code).ok_or(LoyaltyError::BadCode { max: MAX_CODE_LEN }),
        _ => Ok(code.to_string()),
    }
}

/// The identifier kind a device normally delivers, tried before the others.
pub fn expected_identifier(kind: ScanKind) -> IdentifierKind {
    match kind {
        ScanKind::Qr => IdentifierKind::AppQr,
        ScanKind::Barcode => IdentifierKind::CardBarcode,
        ScanKind::MagneticCard => IdentifierKind::MagneticStripe,
        ScanKind::Manual => IdentifierKind::ManualCode,
    }
}

/// A gift code as the store found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GiftCodeRow {
    pub guest: GuestId,
    pub gift: Gift,
    pub redeemed: bool,
}

/// What a code resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeMatch {
    pub guest: GuestId,
    pub gift: Option<Gift>,
    /// What matched, recorded with the identification.
    pub via: String,
}

/// Phone first, then gift codes, then the other identifiers, the kind the device normally
/// delivers first. A phone-shaped code that is no guest's phone is still tried as a card
/// number, since card numbers can look like phones. `identifiers` are the non-phone identifiers
/// holding the code, any order.
pub fn resolve_code(
    phone_owner: Option<GuestId>,
    gift: Option<GiftCodeRow>,
    identifiers: &[(GuestId, IdentifierKind)],
    kind: ScanKind,
) -> Result<CodeMatch, LoyaltyError> {
    if let Some(guest) = phone_owner {
        return Ok(CodeMatch {
            guest,
            gift: None,
            via: IdentifierKind::Phone.as_str().to_string(),
        });
    }
    if let Some(row) = gift {
        if row.redeemed {
            return Err(LoyaltyError::GiftAlreadyUsed);
        }
        return Ok(CodeMatch {
            guest: row.guest,
            gift: Some(row.gift),
            via: "gift_code".to_string(),
        });
    }
    let preferred = expected_identifier(kind);
    identifiers
        .iter()
        .filter(|(_, k)| *k != IdentifierKind::Phone)
        .min_by_key(|(_, k)| (*k != preferred, k.as_str()))
        .map(|(guest, k)| CodeMatch {
            guest: *guest,
            gift: None,
            via: k.as_str().to_string(),
        })
        .ok_or(LoyaltyError::UnknownCode)
}

/// The UTC time of the local midnight that began the day containing `now`.
pub fn local_day_start(now: UnixSeconds, utc_offset_minutes: i64) -> UnixSeconds {
    let offset = utc_offset_minutes * 60;
    (now + offset).div_euclid(SECONDS_PER_DAY) * SECONDS_PER_DAY - offset
}

/// Whether the group limits daily visits, and from when today's count starts.
pub fn daily_ops_window(snapshot: &GuestSnapshot, now: UnixSeconds) -> Option<(i64, UnixSeconds)> {
    let limit = snapshot.group.rules.daily_ops_limit;
    (limit > 0).then(|| (limit, local_day_start(now, snapshot.program.utc_offset_minutes)))
}

/// An identification is refused once today's paid visits reached the group's limit. Visits are
/// paid checks, not identifications: a guest added and removed without buying uses none.
pub fn check_daily_ops(limit: i64, identified_today: i64) -> Result<(), LoyaltyError> {
    if identified_today >= limit {
        Err(LoyaltyError::DailyOperationsLimit { limit })
    } else {
        Ok(())
    }
}

// ----- The quote -----

/// From when today's bonus spending counts, when the group limits it.
pub fn daily_spend_window(snapshot: &GuestSnapshot, now: UnixSeconds) -> Option<UnixSeconds> {
    (snapshot.group.rules.daily_spend_limit > Kopecks::ZERO)
        .then(|| local_day_start(now, snapshot.program.utc_offset_minutes))
}

/// Whether a check can be paid at all: it has something to pay, or it redeems a gift. A guest
/// who comes only for the free coffee closes a check of 0,00 that redeems the gift; a check with
/// neither pays nothing and redeems nothing, and is refused.
pub fn check_closable(check: &CheckInfo) -> Result<(), LoyaltyError> {
    if check.subtotal < Kopecks::ZERO || (check.subtotal == Kopecks::ZERO && check.gift_codes.is_empty()) {
        Err(LoyaltyError::NonPositiveAmount)
    } else {
        Ok(())
    }
}

/// The quote: every limit in a fixed order, the smallest rounded down to the spend step.
/// `spent_today` is today's bonus payments plus every hold still open (an open hold, even one
/// placed before midnight, becomes a payment today); `None` when the group has no daily limit.
pub fn quote(
    snapshot: &GuestSnapshot,
    subtotal: Kopecks,
    spent_today: Option<Kopecks>,
) -> Result<SpendQuote, LoyaltyError> {
    if subtotal < Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    let program = &snapshot.program;
    let group = &snapshot.group;
    let amount_due = group.amount_due(subtotal);
    let limit = |kind, amount| SpendLimit { kind, amount };
    let mut limits = vec![
        limit(SpendLimitKind::Available, snapshot.available),
        limit(
            SpendLimitKind::CheckPercent,
            amount_due.percent_floor(program.max_check_bp),
        ),
    ];
    if let Some(used) = spent_today.filter(|_| group.rules.daily_spend_limit > Kopecks::ZERO) {
        limits.push(limit(
            SpendLimitKind::DailyLimit,
            group.rules.daily_spend_limit.saturating_sub(used),
        ));
    }
    limits.push(limit(SpendLimitKind::AmountDue, amount_due));
    let smallest = limits.iter().map(|l| l.amount).fold(amount_due, Kopecks::min);
    Ok(SpendQuote {
        amount_due,
        max_spend: smallest.floor_to_step(program.spend_step).max(Kopecks::ZERO),
        limits,
        max_check_bp: program.max_check_bp,
        spend_step: program.spend_step,
        accrual_bp: group.rules.accrual_bp,
    })
}

pub fn ensure_step(amount: Kopecks, step: Kopecks) -> Result<(), LoyaltyError> {
    if amount.floor_to_step(step) == amount {
        Ok(())
    } else {
        Err(LoyaltyError::NotAMultipleOfStep { step })
    }
}

// ----- Holds -----

/// A hold to place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldPlan {
    pub amount: Kopecks,
    pub expires_at: UnixSeconds,
}

/// Whether `amount` may be held: positive, on the step, within the quote's maximum.
pub fn hold(
    snapshot: &GuestSnapshot,
    amount: Kopecks,
    quote: &SpendQuote,
    now: UnixSeconds,
) -> Result<HoldPlan, LoyaltyError> {
    if amount <= Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    ensure_step(amount, snapshot.program.spend_step)?;
    if amount > quote.max_spend {
        return Err(LoyaltyError::OverMaximum {
            requested: amount,
            max: quote.max_spend,
        });
    }
    Ok(HoldPlan {
        amount,
        expires_at: now + snapshot.program.hold_ttl_secs,
    })
}

/// The lifecycle of a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldStatus {
    Open,
    Committed,
    Voided,
    Expired,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Open => "open",
            HoldStatus::Committed => "committed",
            HoldStatus::Voided => "voided",
            HoldStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Result<HoldStatus, LoyaltyError> {
        match text {
            "open" => Ok(HoldStatus::Open),
            "committed" => Ok(HoldStatus::Committed),
            "voided" => Ok(HoldStatus::Voided),
            "expired" => Ok(HoldStatus::Expired),
            other => Err(LoyaltyError::Storage(format!("a hold has the unknown status {other}"))),
        }
    }
}

/// A hold as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRow {
    pub id: HoldId,
    pub guest: GuestId,
    pub amount: Kopecks,
    pub status: HoldStatus,
    pub expires_at: UnixSeconds,
}

impl HoldRow {
    /// The status at `now`: an open hold past its time is expired, marked or not.
    pub fn status_at(&self, now: UnixSeconds) -> HoldStatus {
        if self.status == HoldStatus::Open && self.expires_at <= now {
            HoldStatus::Expired
        } else {
            self.status
        }
    }
}

/// Whether the guest's hold can pay `spent`: it must be theirs (another guest's hold is reported
/// as unknown, so a till learns nothing of it), open at `now`, and at least `spent`.
pub fn settle(hold: &HoldRow, guest: GuestId, spent: Kopecks, now: UnixSeconds) -> Result<(), LoyaltyError> {
    if hold.guest != guest {
        return Err(LoyaltyError::UnknownHold);
    }
    let status = hold.status_at(now);
    if status != HoldStatus::Open {
        return Err(LoyaltyError::HoldNotOpen {
            status: status.as_str().to_string(),
        });
    }
    if spent > hold.amount {
        return Err(LoyaltyError::CommitOverHold {
            requested: spent,
            held: hold.amount,
        });
    }
    Ok(())
}

/// What voiding a hold does: an open hold is released; voiding one that is voided or expired
/// already changes nothing and succeeds; a committed hold cannot be voided.
pub fn void(hold: &HoldRow, now: UnixSeconds) -> Result<bool, LoyaltyError> {
    match hold.status_at(now) {
        HoldStatus::Open => Ok(true),
        HoldStatus::Voided | HoldStatus::Expired => Ok(false),
        HoldStatus::Committed => Err(LoyaltyError::HoldNotOpen {
            status: HoldStatus::Committed.as_str().to_string(),
        }),
    }
}

// ----- Payments -----

/// What a paid check changes, for the store to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentPlan {
    pub amount_due: Kopecks,
    pub spent: Kopecks,
    pub accrued: Kopecks,
    pub balance_after: Kopecks,
    /// The group the guest moves to, if the visit moves them.
    pub new_group: Option<Group>,
}

/// A paid check: the debit, the accrual on the part not paid with bonuses (at the group the
/// visit began in), and the group the spending in the window (this visit included) reaches.
/// `window_spend` is the amount due of the guest's earlier checks in the group period, returns
/// deducted; `groups` are the groups that take part in automatic moves.
pub fn payment(
    snapshot: &GuestSnapshot,
    spent: Kopecks,
    subtotal: Kopecks,
    window_spend: Kopecks,
    groups: &[Group],
) -> Result<PaymentPlan, LoyaltyError> {
    owner_payment(snapshot, spent, Kopecks::ZERO, subtotal, window_spend, groups)
}

/// [`payment`] for the guest who owns a check that other accounts paid `others_spent` of: the
/// part not paid with bonuses is what no account paid, so the accrual is on that.
pub fn owner_payment(
    snapshot: &GuestSnapshot,
    spent: Kopecks,
    others_spent: Kopecks,
    subtotal: Kopecks,
    window_spend: Kopecks,
    groups: &[Group],
) -> Result<PaymentPlan, LoyaltyError> {
    if spent < Kopecks::ZERO || others_spent < Kopecks::ZERO || subtotal < Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    let group = &snapshot.group;
    let amount_due = group.amount_due(subtotal);
    let basis = match snapshot.program.accrual_basis {
        AccrualBasis::PaidPart => amount_due.saturating_sub(spent + others_spent),
        AccrualBasis::AmountDue => amount_due,
    };
    let accrued = basis.percent_floor(group.rules.accrual_bp);
    let new_group = group_after_visit(group, window_spend + amount_due, groups);
    Ok(PaymentPlan {
        amount_due,
        spent,
        accrued,
        balance_after: snapshot.balance + accrued - spent,
        new_group,
    })
}

/// What another account's share of a check debits: its bonuses, against the check's amount due
/// (the owner's), with no accrual and no group move: the visit is the owner's.
pub fn share_payment(snapshot: &GuestSnapshot, spent: Kopecks, amount_due: Kopecks) -> PaymentPlan {
    PaymentPlan {
        amount_due,
        spent,
        accrued: Kopecks::ZERO,
        balance_after: snapshot.balance - spent,
        new_group: None,
    }
}

// ----- Several cards on one check -----

/// Wraps the refusal of one card of a check paid from several (`index` from 0) so that the
/// cashier is told which card it was.
pub fn card_refused(index: usize, reason: LoyaltyError) -> LoyaltyError {
    match reason {
        // Already about a card (or not about any): kept as it is.
        LoyaltyError::CardRefused { .. } | LoyaltyError::Storage(_) | LoyaltyError::Unavailable(_) => reason,
        reason => LoyaltyError::CardRefused {
            card: index + 1,
            reason: Box::new(reason),
        },
    }
}

/// The accounts of a check paid from several: at least one, none twice, and the owner (who gets
/// the accrual) among them. Answers the owner's position.
pub fn shared_accounts(guests: &[GuestId], owner: GuestId) -> Result<usize, LoyaltyError> {
    if guests.is_empty() {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    for (index, guest) in guests.iter().enumerate() {
        if guests[..index].contains(guest) {
            return Err(card_refused(index, LoyaltyError::SameAccountOnCheck));
        }
    }
    guests
        .iter()
        .position(|g| *g == owner)
        .ok_or_else(|| LoyaltyError::OutOfRange("the check's owner".to_string()))
}

/// The most all accounts together may pay on the check, as the owner's quote sets it (see
/// [`SpendQuote::check_max`]).
pub fn shared_check_max(owner_quote: &SpendQuote) -> Kopecks {
    owner_quote.check_max()
}

/// Whether the amounts (in the order the cards were presented) together stay within the
/// check's maximum; the card that takes the sum over it is the one refused.
pub fn check_shared_total(amounts: &[Kopecks], max: Kopecks) -> Result<(), LoyaltyError> {
    let mut total = Kopecks::ZERO;
    for (index, amount) in amounts.iter().enumerate() {
        total = total + *amount;
        if total > max {
            let left = max - (total - *amount);
            return Err(card_refused(
                index,
                LoyaltyError::OverMaximum {
                    requested: *amount,
                    max: left.max(Kopecks::ZERO),
                },
            ));
        }
    }
    Ok(())
}

/// Whether a payment needs the window spend and the groups (only guests in ranked groups move).
pub fn moves_by_spend(group: &Group) -> bool {
    group.rules.rank >= 1
}

/// The start of the window of spending that decides the group.
pub fn group_window_start(program: &ProgramSettings, now: UnixSeconds) -> UnixSeconds {
    now - program.group_period_days * SECONDS_PER_DAY
}

/// The group a guest in `current` belongs in once their spending in the window is `spend`, if
/// it differs: the best ranked group whose threshold the spending reaches. Only groups of rank
/// one or more take part: staff-like groups are neither left nor entered by spend. A group that
/// never downgrades is not left for a lower one.
pub fn group_after_visit(current: &Group, spend: Kopecks, groups: &[Group]) -> Option<Group> {
    if !moves_by_spend(current) {
        return None;
    }
    let target = groups
        .iter()
        .filter(|g| g.rules.rank >= 1 && g.rules.spend_threshold <= spend)
        .min_by_key(|g| (std::cmp::Reverse(g.rules.rank), g.id))?;
    moves_to(current, target).then(|| target.clone())
}

/// Whether a guest in `current` moves to `target`, the best group their spending qualifies for.
pub fn moves_to(current: &Group, target: &Group) -> bool {
    target.rules.rank > current.rules.rank || (target.rules.rank < current.rules.rank && !current.rules.never_downgrade)
}

/// What an offline payment debits: what was asked, never more than the guest still has nor the
/// amount due.
pub fn offline_take(requested: Kopecks, available: Kopecks, amount_due: Kopecks) -> Kopecks {
    requested.min(available).min(amount_due).max(Kopecks::ZERO)
}

/// The amount an offline payment debits, checked.
pub fn offline_spend(snapshot: &GuestSnapshot, requested: Kopecks, subtotal: Kopecks) -> Result<Kopecks, LoyaltyError> {
    if requested < Kopecks::ZERO || subtotal < Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    Ok(offline_take(
        requested,
        snapshot.available,
        snapshot.group.amount_due(subtotal),
    ))
}

// ----- Manual changes -----

/// A back-office credit or debit: positive, and a debit never takes more than is available.
pub fn manual(snapshot: &GuestSnapshot, amount: Kopecks, debit: bool) -> Result<(), LoyaltyError> {
    if amount <= Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount);
    }
    if debit && amount > snapshot.available {
        return Err(LoyaltyError::OverMaximum {
            requested: amount,
            max: snapshot.available,
        });
    }
    Ok(())
}

// ----- Refunds -----

/// A paid check as a refund needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidCheck {
    pub payment_id: i64,
    pub guest: GuestId,
    pub amount_due: Kopecks,
    pub spent: Kopecks,
    pub accrued: Kopecks,
    /// What earlier refunds of this check returned.
    pub refunded_before: Kopecks,
    /// When the check was paid (whether it still counts towards the guest's group).
    pub paid_at: UnixSeconds,
    /// Set on another account's share of a check paid from several: the owner's payment.
    pub owner_payment: Option<i64>,
    /// The check's lines with what was returned of each (empty: the till sent none).
    pub lines: Vec<CheckLine>,
}

/// A check's lines as a store keeps them (JSON), or why they cannot be kept: `None` when the
/// till sent none or they do not add up to the check's subtotal (then the check is still paid,
/// and returned by amount). Gift lines cost nothing and are not kept.
pub fn kept_lines(check: &CheckInfo) -> Result<Option<String>, LoyaltyError> {
    if check.lines.is_empty() {
        return Ok(None);
    }
    let sum: i128 = check
        .lines
        .iter()
        .map(|l| i128::from(l.price.0) * i128::from(l.quantity))
        .sum();
    let sound = check.lines.len() <= crate::domain::MAX_CHECK_LINES
        && check.lines.iter().all(|l| {
            l.quantity > 0
                && l.price > Kopecks::ZERO
                && l.returned == 0
                && !l.name.trim().is_empty()
                && l.name.chars().count() <= MAX_LINE_NAME
                && !l.name.chars().any(char::is_control)
        })
        && sum == i128::from(check.subtotal.0);
    if !sound {
        tracing::warn!(
            lines = check.lines.len(),
            sum = i64::try_from(sum).unwrap_or(i64::MAX),
            subtotal = check.subtotal.0,
            "the check's lines are not kept (they do not add up to its subtotal, or one is malformed): it can be returned by amount only"
        );
        return Ok(None);
    }
    to_json(&check.lines).map(Some)
}

/// The longest line name a check keeps, in characters.
pub const MAX_LINE_NAME: usize = 200;

/// JSON of what a store keeps as text.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, LoyaltyError> {
    serde_json::to_string(value).map_err(|e| LoyaltyError::Storage(e.to_string()))
}

/// The lines a store kept with a payment (none when it kept none).
pub fn parse_lines(text: Option<&str>) -> Result<Vec<CheckLine>, LoyaltyError> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| LoyaltyError::Storage(format!("a check's lines are unreadable: {e}"))),
    }
}

/// Every unit still left of `lines`, as a return of them.
pub fn left_of(lines: &[CheckLine]) -> Vec<LineReturn> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.left() > 0)
        .map(|(line, l)| LineReturn {
            line,
            quantity: l.left(),
        })
        .collect()
}

/// The check's lines once `part` is returned, when that changes them: a return by lines takes
/// its units, a return that empties the check takes every unit left; a partial return by amount
/// names no line and leaves them as they are.
pub fn lines_after_return(lines: &[CheckLine], part: &ReturnPart, full: bool) -> Option<Vec<CheckLine>> {
    if lines.is_empty() {
        return None;
    }
    let taken = match part {
        ReturnPart::Lines(asked) => asked.clone(),
        ReturnPart::Rest | ReturnPart::Amount(_) if full => left_of(lines),
        ReturnPart::Rest | ReturnPart::Amount(_) => return None,
    };
    if taken.is_empty() {
        return None;
    }
    let mut after = lines.to_vec();
    for part in taken {
        if let Some(line) = after.get_mut(part.line) {
            line.returned = (line.returned + part.quantity).min(line.quantity);
        }
    }
    Some(after)
}

/// What a refund changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundPlan {
    pub amount: Kopecks,
    pub spend_returned: Kopecks,
    pub accrual_taken: Kopecks,
    pub unrecovered: Kopecks,
}

/// The bonuses to give back and the accrual to take back when `amount` more of a check is
/// returned, `refunded_before` having been returned already. Computed on the running total, so
/// that partial refunds adding up to the whole check give back exactly what was spent and take
/// back exactly what was accrued.
pub fn refund_shares(
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
        // Both factors fit in i64, their product in i128, and the quotient is at most `total`.
        i64::try_from((i128::from(total.0) * i128::from(part.0)) / i128::from(amount_due.0)).unwrap_or(total.0)
    };
    let after = refunded_before + amount;
    (
        Kopecks(share(spent, after) - share(spent, refunded_before)),
        Kopecks(share(accrued, after) - share(accrued, refunded_before)),
    )
}

/// The part of a check a refund returns: the request, or all that is left; refused when it is
/// not positive or more than is left.
pub fn refund_amount(requested: Option<Kopecks>, left: Kopecks) -> Result<Kopecks, LoyaltyError> {
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

/// A refund of `requested` (or all that is left) of `check`, for a guest with `available`
/// bonuses: the spend on the returned part comes back, the accrual on it is taken back but never
/// below zero available (the rest is reported as unrecovered; open holds keep their bonuses).
pub fn refund(check: &PaidCheck, requested: Option<Kopecks>, available: Kopecks) -> Result<RefundPlan, LoyaltyError> {
    let amount = refund_amount(requested, check.amount_due - check.refunded_before)?;
    let (spend_returned, accrual_due) = refund_shares(
        check.amount_due,
        check.spent,
        check.accrued,
        check.refunded_before,
        amount,
    );
    let can_take = (available + spend_returned).max(Kopecks::ZERO);
    let accrual_taken = accrual_due.min(can_take);
    Ok(RefundPlan {
        amount,
        spend_returned,
        accrual_taken,
        unrecovered: accrual_due - accrual_taken,
    })
}

/// Whether the refund returns the rest of the check, so that the visit itself is undone: its
/// gifts come back and its stamps are taken back.
pub fn refund_is_full(check: &PaidCheck, plan: &RefundPlan) -> bool {
    check.refunded_before + plan.amount == check.amount_due
}

/// A stamp card after the visit it counted on was returned: one stamp fewer, never below none.
pub fn stamp_after_return(collected: i64) -> i64 {
    (collected - 1).max(0)
}

/// The guest's spending in the group window once `amount` of `check` is returned: the return
/// only lowers it when the check itself is inside the window.
pub fn window_spend_after_refund(
    window_spend: Kopecks,
    check: &PaidCheck,
    amount: Kopecks,
    window_start: UnixSeconds,
) -> Kopecks {
    if check.paid_at >= window_start {
        (window_spend - amount).max(Kopecks::ZERO)
    } else {
        window_spend
    }
}

/// The group a guest in `current` falls back to once a return brings their spending in the
/// window down to `spend`: only ever a lower one (a return never promotes), and never out of a
/// group that never downgrades.
pub fn group_after_refund(current: &Group, spend: Kopecks, groups: &[Group]) -> Option<Group> {
    group_after_visit(current, spend, groups).filter(|target| target.rules.rank < current.rules.rank)
}

// ----- Balance changes -----

/// The kinds of balance change, as the history shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
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
    pub fn as_str(self) -> &'static str {
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
    pub fn signed(self, amount: Kopecks) -> Kopecks {
        match self {
            OpKind::Accrual | OpKind::ManualCredit | OpKind::RefundSpend => amount,
            OpKind::Spend | OpKind::ManualDebit | OpKind::RefundAccrual => Kopecks(-amount.0),
        }
    }
}

// ----- Stamps -----

/// A stamp on a card after a paid visit, never past what the card needs.
pub fn stamp_after_visit(collected: i64, needed: i64) -> i64 {
    (collected + 1).min(needed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Lines returned one unit at a time, in any order, add up to exactly the amount due of a
    /// discounted check whose prices do not divide evenly; what is kept is what adds up.
    #[test]
    fn lines_share_out_the_amount_due_exactly() {
        let line = |name: &str, quantity: i64, price: i64| CheckLine {
            name: name.to_string(),
            quantity,
            price: Kopecks(price),
            returned: 0,
        };
        let mut lines = vec![line("a", 3, 333), line("b", 1, 1), line("c", 2, 7_777)];
        let due = Kopecks(14_000); // after a discount on the 16 554 of the lines
        let mut returned = Kopecks::ZERO;
        for index in [2, 0, 1, 0, 2, 0] {
            let one = [LineReturn {
                line: index,
                quantity: 1,
            }];
            let value = crate::domain::lines_value(&lines, due, &one).unwrap();
            assert!(value >= Kopecks::ZERO);
            returned = returned + value;
            lines = lines_after_return(&lines, &ReturnPart::Lines(one.to_vec()), false).unwrap();
        }
        assert_eq!(returned, due);
        assert_eq!(
            crate::domain::lines_value(&lines, due, &[LineReturn { line: 1, quantity: 1 }]),
            Err(LoyaltyError::LineOverReturn {
                line: "b".to_string(),
                left: 0
            })
        );

        let check = |subtotal: i64, lines: Vec<CheckLine>| CheckInfo {
            subtotal: Kopecks(subtotal),
            gift_codes: Vec::new(),
            lines,
        };
        assert!(kept_lines(&check(1_000, vec![line("a", 1, 1_000)])).unwrap().is_some());
        assert_eq!(
            kept_lines(&check(999, vec![line("a", 1, 1_000)])),
            Ok(None),
            "does not add up"
        );
        assert_eq!(kept_lines(&check(0, vec![line("a", 1, 0)])), Ok(None), "no price");
        assert_eq!(
            kept_lines(&check(1_000, vec![line("\u{7}", 1, 1_000)])),
            Ok(None),
            "a control character"
        );
        assert_eq!(kept_lines(&check(1_000, Vec::new())), Ok(None));
    }

    #[test]
    fn several_accounts_on_one_check() {
        let refused = |card, reason| LoyaltyError::CardRefused {
            card,
            reason: Box::new(reason),
        };
        assert_eq!(shared_accounts(&[7, 8, 9], 8), Ok(1));
        assert_eq!(
            shared_accounts(&[7, 8, 7], 7),
            Err(refused(3, LoyaltyError::SameAccountOnCheck))
        );
        assert!(matches!(shared_accounts(&[7, 8], 9), Err(LoyaltyError::OutOfRange(_))));
        assert_eq!(shared_accounts(&[], 9), Err(LoyaltyError::NonPositiveAmount));
        // A refusal already about a card, or about no card at all, is kept as it is.
        assert_eq!(
            card_refused(0, refused(2, LoyaltyError::GuestBlocked)),
            refused(2, LoyaltyError::GuestBlocked)
        );
        assert_eq!(
            card_refused(0, LoyaltyError::Storage("x".to_string())),
            LoyaltyError::Storage("x".to_string())
        );

        let rub = |r: i64| Kopecks(r * 100);
        assert_eq!(check_shared_total(&[rub(200), rub(300)], rub(500)), Ok(()));
        assert_eq!(
            check_shared_total(&[rub(200), rub(250), rub(100)], rub(500)),
            Err(refused(
                3,
                LoyaltyError::OverMaximum {
                    requested: rub(100),
                    max: rub(50),
                }
            ))
        );
    }

    #[test]
    fn the_owner_accrues_on_what_no_account_paid_and_a_share_accrues_nothing() {
        let snapshot = GuestSnapshot {
            guest: 1,
            org: "cafe".to_string(),
            balance: Kopecks(50_000),
            available: Kopecks(50_000),
            group: group(1, 1, 0, 500, false),
            program: ProgramSettings::default_for_new_org(900),
            blocked: false,
        };
        let alone = payment(&snapshot, Kopecks(20_000), Kopecks(100_000), Kopecks::ZERO, &[]).unwrap();
        let shared = owner_payment(
            &snapshot,
            Kopecks(20_000),
            Kopecks(30_000),
            Kopecks(100_000),
            Kopecks::ZERO,
            &[],
        )
        .unwrap();
        assert_eq!(alone.accrued, Kopecks(4_000), "5 % of 800");
        assert_eq!(shared.accrued, Kopecks(2_500), "5 % of the 500 no account paid");
        assert_eq!(shared.balance_after, Kopecks(50_000 - 20_000 + 2_500));
        let share = share_payment(&snapshot, Kopecks(30_000), shared.amount_due);
        assert_eq!(
            (share.accrued, share.balance_after, share.amount_due, share.new_group),
            (Kopecks::ZERO, Kopecks(20_000), Kopecks(100_000), None)
        );
    }

    #[test]
    fn till_enrolment_follows_the_programme_and_the_bonus_is_bounded() {
        let mut program = ProgramSettings::default_for_new_org(900);
        assert_eq!(
            till_enrolment(&program),
            Err(LoyaltyError::EnrolmentOff),
            "off by default"
        );
        program.till_enrolment = true;
        assert_eq!(till_enrolment(&program), Ok(Kopecks::ZERO));
        program.welcome_bonus = Kopecks(10_000);
        assert_eq!(till_enrolment(&program), Ok(Kopecks(10_000)));
        assert_eq!(check_program(&program), Ok(()));
        for bad in [Kopecks(-1), Kopecks(MAX_WELCOME_BONUS.0 + 1)] {
            program.welcome_bonus = bad;
            assert!(check_program(&program).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_group_period_is_a_day_to_a_century() {
        let mut program = ProgramSettings::default_for_new_org(900);
        for good in [1, 365, MAX_GROUP_PERIOD_DAYS] {
            program.group_period_days = good;
            assert_eq!(check_program(&program), Ok(()), "{good}");
        }
        // A period whose start cannot be counted would fail every payment's read of its window.
        for bad in [0, -1, MAX_GROUP_PERIOD_DAYS + 1, i64::MAX / 86_400 + 1] {
            program.group_period_days = bad;
            assert!(check_program(&program).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_zone_is_whole_quarters_of_an_hour_within_a_day() {
        let mut program = ProgramSettings::default_for_new_org(900);
        for good in [0, 180, 330, 345, -210, 1_440] {
            program.utc_offset_minutes = good;
            assert_eq!(check_program(&program), Ok(()), "{good}");
        }
        for bad in [7, 181, -1_455, 1_500] {
            program.utc_offset_minutes = bad;
            assert!(check_program(&program).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_guest_starts_in_the_lowest_ranked_group_else_the_first() {
        let manual = |id| group(id, 0, 0, 0, false);
        assert_eq!(entry_group(&[]), None);
        assert_eq!(
            entry_group(&[manual(4), manual(2)]),
            Some(2),
            "no ranked group: the first made"
        );
        let groups = [manual(1), group(5, 2, 100_000, 0, false), group(3, 1, 0, 0, false)];
        assert_eq!(entry_group(&groups), Some(3), "the ranked group spending starts from");
    }

    #[test]
    fn guest_names_are_trimmed_and_bounded() {
        assert_eq!(guest_name("  Вера ").as_deref(), Ok("Вера"));
        assert_eq!(guest_name("").as_deref(), Ok(""));
        assert!(guest_name(&"я".repeat(MAX_GUEST_NAME_CHARS + 1)).is_err());
        assert!(guest_name("a\u{0}b").is_err());
    }

    #[test]
    fn account_names_are_trimmed_bounded_and_never_empty() {
        assert_eq!(account_name("  Корпоративный ").as_deref(), Ok("Корпоративный"));
        assert!(account_name("   ").is_err());
        assert!(account_name(&"я".repeat(crate::domain::MAX_ACCOUNT_NAME_CHARS + 1)).is_err());
        assert!(account_name("a\nb").is_err());
    }

    #[test]
    fn group_thresholds_follow_the_ranks() {
        // The seed's pair over a base group: 0 ₽, 5 % at 500 ₽, 10 % at 1 000 ₽.
        let existing = [
            group(1, 1, 0, 300, false),
            group(2, 2, 50_000, 500, true),
            group(3, 3, 100_000, 1_000, true),
        ];
        let new = |rank: i64, threshold: i64| group(9, rank, threshold, 1_500, true).rules;
        assert_eq!(check_group_among(&new(4, 200_000), &existing, None), Ok(()));
        let clash = |name: &str| Err(LoyaltyError::GroupThresholdClash(name.to_string()));
        assert_eq!(
            check_group_among(&new(4, 100_000), &existing, None),
            clash("g3"),
            "same threshold"
        );
        assert_eq!(
            check_group_among(&new(3, 200_000), &existing, None),
            clash("g3"),
            "same rank"
        );
        assert_eq!(
            check_group_among(&new(4, 70_000), &existing, None),
            clash("g3"),
            "higher rank, lower threshold"
        );
        // Hand-assigned groups (rank 0) take no part.
        assert_eq!(check_group_among(&new(0, 100_000), &existing, None), Ok(()));
        // Editing a group does not clash with itself.
        assert_eq!(check_group_among(&new(3, 120_000), &existing, Some(3)), Ok(()));
        // A bad percentage is refused before any comparison.
        let mut bad = new(4, 200_000);
        bad.discount_bp = 10_001;
        assert!(matches!(
            check_group_among(&bad, &existing, None),
            Err(LoyaltyError::OutOfRange(_))
        ));
    }

    fn group(id: i64, rank: i64, threshold: i64, accrual_bp: i64, never_downgrade: bool) -> Group {
        Group {
            id,
            rules: NewGroup {
                name: format!("g{id}"),
                rank,
                discount_bp: 0,
                accrual_bp,
                spend_threshold: Kopecks(threshold),
                never_downgrade,
                daily_ops_limit: 0,
                daily_spend_limit: Kopecks::ZERO,
            },
        }
    }

    fn snapshot(balance: i64, available: i64, group: Group) -> GuestSnapshot {
        GuestSnapshot {
            guest: 1,
            org: "default".to_string(),
            balance: Kopecks(balance),
            available: Kopecks(available),
            group,
            program: ProgramSettings {
                name: "p".to_string(),
                max_check_bp: 5_000,
                spend_step: Kopecks(100),
                hold_ttl_secs: 900,
                group_period_days: 365,
                utc_offset_minutes: 180,
                accrual_basis: AccrualBasis::PaidPart,
                welcome_bonus: Kopecks::ZERO,
                till_enrolment: false,
            },
            blocked: false,
        }
    }

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
    fn control_characters_are_no_code() {
        for bad in ["", "   ", "G10\u{0}0001", "1000\n01", "abc\u{7f}"] {
            assert!(matches!(valid_code(bad), Err(LoyaltyError::BadCode { .. })), "{bad:?}");
        }
        assert_eq!(valid_code("  100001 ").unwrap(), "100001");
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
    fn phone_then_gift_then_the_device_kind() {
        let gift = GiftCodeRow {
            guest: 7,
            gift: Gift {
                code: "G1".to_string(),
                name: "Кофе".to_string(),
                points: Kopecks(100),
                pos_code: None,
            },
            redeemed: false,
        };
        let ids = [(3, IdentifierKind::ManualCode), (4, IdentifierKind::CardBarcode)];
        assert_eq!(
            resolve_code(Some(9), Some(gift.clone()), &ids, ScanKind::Manual)
                .unwrap()
                .guest,
            9
        );
        assert_eq!(
            resolve_code(None, Some(gift.clone()), &ids, ScanKind::Manual)
                .unwrap()
                .guest,
            7
        );
        assert_eq!(resolve_code(None, None, &ids, ScanKind::Barcode).unwrap().guest, 4);
        assert_eq!(resolve_code(None, None, &ids, ScanKind::Manual).unwrap().guest, 3);
        // No preferred kind: the first by name, whatever order the store gave.
        let reversed = [(4, IdentifierKind::CardBarcode), (3, IdentifierKind::ManualCode)];
        assert_eq!(
            resolve_code(None, None, &reversed, ScanKind::Qr).unwrap().via,
            "card_barcode"
        );
        let used = GiftCodeRow { redeemed: true, ..gift };
        assert_eq!(
            resolve_code(None, Some(used), &[], ScanKind::Qr),
            Err(LoyaltyError::GiftAlreadyUsed)
        );
        assert_eq!(
            resolve_code(None, None, &[], ScanKind::Qr),
            Err(LoyaltyError::UnknownCode)
        );
    }

    #[test]
    fn a_check_of_only_a_gift_can_be_closed_an_empty_one_cannot() {
        let check = |subtotal: i64, gifts: &[&str]| CheckInfo {
            subtotal: Kopecks(subtotal),
            gift_codes: gifts.iter().map(|g| g.to_string()).collect(),
            lines: Vec::new(),
        };
        assert_eq!(check_closable(&check(0, &["G100002"])), Ok(()));
        assert_eq!(check_closable(&check(18_500, &[])), Ok(()));
        assert_eq!(check_closable(&check(18_500, &["G100002"])), Ok(()));
        assert_eq!(check_closable(&check(0, &[])), Err(LoyaltyError::NonPositiveAmount));
        assert_eq!(
            check_closable(&check(-100, &["G100002"])),
            Err(LoyaltyError::NonPositiveAmount)
        );
        // The free check's quote: nothing due, nothing to spend, nothing accrued.
        let q = quote(
            &snapshot(10_000, 10_000, group(1, 0, 0, 500, false)),
            Kopecks::ZERO,
            None,
        )
        .unwrap();
        assert_eq!(
            (q.amount_due, q.max_spend, q.accrual_for(Kopecks::ZERO)),
            (Kopecks::ZERO, Kopecks::ZERO, Kopecks::ZERO)
        );
    }

    #[test]
    fn the_smallest_limit_decides_rounded_to_the_step() {
        let mut g = group(1, 1, 0, 500, false);
        g.rules.daily_spend_limit = Kopecks(30_000);
        let snap = snapshot(100_000, 35_050, g);
        // 1 000,00 at 50 %: 500,00; available 350,50; daily 300,00 - 120,00 used = 180,00.
        let q = quote(&snap, Kopecks(100_000), Some(Kopecks(12_000))).unwrap();
        assert_eq!(q.max_spend, Kopecks(18_000));
        assert_eq!(q.binding_limit().unwrap().kind, SpendLimitKind::DailyLimit);
        let q = quote(&snap, Kopecks(100_000), None).unwrap();
        assert_eq!(
            q.max_spend,
            Kopecks(35_000),
            "available 350,50 rounded down to whole roubles"
        );
        assert!(quote(&snap, Kopecks(-1), None).is_err());
    }

    #[test]
    fn holds_are_positive_on_the_step_and_within_the_maximum() {
        let snap = snapshot(50_000, 50_000, group(1, 1, 0, 500, false));
        let q = quote(&snap, Kopecks(60_000), None).unwrap();
        assert_eq!(hold(&snap, Kopecks(30_000), &q, 10).unwrap().expires_at, 910);
        assert_eq!(hold(&snap, Kopecks(0), &q, 10), Err(LoyaltyError::NonPositiveAmount));
        assert!(matches!(
            hold(&snap, Kopecks(150), &q, 10),
            Err(LoyaltyError::NotAMultipleOfStep { .. })
        ));
        assert!(matches!(
            hold(&snap, Kopecks(30_100), &q, 10),
            Err(LoyaltyError::OverMaximum { .. })
        ));
    }

    #[test]
    fn settle_and_void_follow_the_hold_lifecycle() {
        let open = HoldRow {
            id: 1,
            guest: 5,
            amount: Kopecks(1_000),
            status: HoldStatus::Open,
            expires_at: 100,
        };
        assert!(settle(&open, 5, Kopecks(1_000), 99).is_ok());
        assert_eq!(settle(&open, 6, Kopecks(10), 99), Err(LoyaltyError::UnknownHold));
        assert!(matches!(
            settle(&open, 5, Kopecks(1_001), 99),
            Err(LoyaltyError::CommitOverHold { .. })
        ));
        assert_eq!(
            settle(&open, 5, Kopecks(10), 100),
            Err(LoyaltyError::HoldNotOpen {
                status: "expired".to_string()
            })
        );
        assert_eq!(void(&open, 99), Ok(true));
        assert_eq!(void(&open, 100), Ok(false));
        let committed = HoldRow {
            status: HoldStatus::Committed,
            ..open
        };
        assert!(void(&committed, 99).is_err());
    }

    /// Quick Resto's example (seed 004): 5 % from 500, 10 % from 1 000, and a group that never
    /// downgrades keeps its guests when their spending falls.
    #[test]
    fn the_seed_groups_move_up_and_never_down() {
        let base = group(1, 1, 0, 300, false);
        let five = group(2, 2, 50_000, 500, false);
        let ten = group(3, 3, 100_000, 1_000, true);
        let groups = [base.clone(), five.clone(), ten.clone()];
        assert_eq!(group_after_visit(&base, Kopecks(49_999), &groups), None);
        assert_eq!(group_after_visit(&base, Kopecks(50_000), &groups), Some(five.clone()));
        assert_eq!(group_after_visit(&base, Kopecks(100_000), &groups), Some(ten.clone()));
        assert_eq!(group_after_visit(&five, Kopecks(10), &groups), Some(base.clone()));
        assert_eq!(group_after_visit(&ten, Kopecks(10), &groups), None, "never downgrade");
        let staff = group(4, 0, 0, 0, false);
        assert_eq!(group_after_visit(&staff, Kopecks(1_000_000), &groups), None);
        // A payment of 600,00 in the base group: accrual 3 % on what was not paid with bonuses.
        let snap = snapshot(10_000, 10_000, base);
        let plan = payment(&snap, Kopecks(10_000), Kopecks(60_000), Kopecks::ZERO, &groups).unwrap();
        assert_eq!(plan.accrued, Kopecks(1_500));
        assert_eq!(plan.balance_after, Kopecks(1_500));
        assert_eq!(plan.new_group, Some(five));
        // A programme that accrues on the whole amount due: 3 % of 600,00.
        let mut snap = snap;
        snap.program.accrual_basis = AccrualBasis::AmountDue;
        let plan = payment(&snap, Kopecks(10_000), Kopecks(60_000), Kopecks::ZERO, &groups).unwrap();
        assert_eq!(plan.accrued, Kopecks(1_800));
        assert_eq!(plan.balance_after, Kopecks(1_800));
    }

    #[test]
    fn refunds_never_take_back_more_than_there_is() {
        let check = PaidCheck {
            payment_id: 1,
            guest: 1,
            amount_due: Kopecks(100_000),
            spent: Kopecks(20_000),
            accrued: Kopecks(4_000),
            refunded_before: Kopecks::ZERO,
            paid_at: 0,
            owner_payment: None,
            lines: Vec::new(),
        };
        let plan = refund(&check, Some(Kopecks(50_000)), Kopecks(1_000)).unwrap();
        assert_eq!(plan.spend_returned, Kopecks(10_000));
        assert_eq!(plan.accrual_taken, Kopecks(2_000));
        let plan = refund(&check, None, Kopecks(-15_000)).unwrap();
        assert_eq!(plan.spend_returned, Kopecks(20_000));
        assert_eq!(plan.accrual_taken, Kopecks(4_000).min(Kopecks(5_000)));
        let broke = refund(&check, None, Kopecks(-19_000)).unwrap();
        assert_eq!(
            (broke.accrual_taken, broke.unrecovered),
            (Kopecks(1_000), Kopecks(3_000))
        );
        assert!(refund(&check, Some(Kopecks(100_001)), Kopecks::ZERO).is_err());
        let done = PaidCheck {
            refunded_before: Kopecks(100_000),
            ..check
        };
        assert!(refund(&done, None, Kopecks::ZERO).is_err());
    }

    #[test]
    fn a_return_undoes_the_visit_only_when_it_is_full() {
        let check = PaidCheck {
            payment_id: 1,
            guest: 1,
            amount_due: Kopecks(100_000),
            spent: Kopecks::ZERO,
            accrued: Kopecks(5_000),
            refunded_before: Kopecks(40_000),
            paid_at: 1_000,
            owner_payment: None,
            lines: Vec::new(),
        };
        let part = refund(&check, Some(Kopecks(30_000)), Kopecks(10_000)).unwrap();
        assert!(!refund_is_full(&check, &part));
        let rest = refund(&check, None, Kopecks(10_000)).unwrap();
        assert!(refund_is_full(&check, &rest), "the rest of the check is a full return");
        assert_eq!((stamp_after_return(3), stamp_after_return(0)), (2, 0));
        assert_eq!(
            window_spend_after_refund(Kopecks(150_000), &check, Kopecks(60_000), 500),
            Kopecks(90_000)
        );
        assert_eq!(
            window_spend_after_refund(Kopecks(150_000), &check, Kopecks(60_000), 2_000),
            Kopecks(150_000),
            "a check outside the window does not count towards the group"
        );
    }

    #[test]
    fn a_return_moves_the_guest_down_never_up_and_never_out_of_a_sticky_group() {
        let groups = [
            group(1, 1, 0, 300, false),
            group(2, 2, 50_000, 500, false),
            group(3, 3, 100_000, 1_000, true),
        ];
        assert_eq!(
            group_after_refund(&groups[1], Kopecks(20_000), &groups).map(|g| g.id),
            Some(1)
        );
        assert_eq!(group_after_refund(&groups[1], Kopecks(60_000), &groups), None);
        assert_eq!(
            group_after_refund(&groups[0], Kopecks(200_000), &groups),
            None,
            "a return never promotes"
        );
        assert_eq!(
            group_after_refund(&groups[2], Kopecks::ZERO, &groups),
            None,
            "a group that never downgrades"
        );
        let staff = group(4, 0, 0, 0, false);
        assert_eq!(group_after_refund(&staff, Kopecks::ZERO, &groups), None);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4_000, failure_persistence: None, ..ProptestConfig::default() })]

        /// The quote over random guests, groups and checks: the maximum is never over any limit,
        /// is on the step, is never negative, and equals the smallest limit rounded down; a hold
        /// of the maximum is accepted and one step more is not.
        #[test]
        fn the_maximum_respects_every_limit(
            accrual_bp in 0..2_000i64,
            discount_bp in 0..=10_000i64,
            daily_spend_limit in prop_oneof![Just(0i64), 1..300_000i64],
            available in -20_000..180_000i64,
            max_check_bp in 0..=10_000i64,
            step in prop_oneof![Just(1i64), Just(100), Just(199)],
            subtotal in 0..500_000i64,
            used in 0..120_000i64,
        ) {
            let mut g = group(1, 1, 0, accrual_bp, false);
            g.rules.discount_bp = discount_bp;
            g.rules.daily_spend_limit = Kopecks(daily_spend_limit);
            let mut snap = snapshot(available.max(0), available, g);
            snap.program.max_check_bp = max_check_bp;
            snap.program.spend_step = Kopecks(step);
            let q = quote(&snap, Kopecks(subtotal), Some(Kopecks(used))).unwrap();
            prop_assert!(q.max_spend >= Kopecks::ZERO);
            prop_assert_eq!(q.max_spend.floor_to_step(snap.program.spend_step), q.max_spend);
            for limit in &q.limits {
                prop_assert!(q.max_spend <= limit.amount.max(Kopecks::ZERO), "{:?}", q);
            }
            let smallest = q.binding_limit().unwrap().amount;
            prop_assert_eq!(q.max_spend, smallest.floor_to_step(snap.program.spend_step).max(Kopecks::ZERO));
            if q.max_spend > Kopecks::ZERO {
                prop_assert!(hold(&snap, q.max_spend, &q, 0).is_ok());
            }
            prop_assert!(hold(&snap, q.max_spend + snap.program.spend_step, &q, 0).is_err());
        }

        /// Partial refunds adding up to the whole check give back exactly what was spent and take
        /// back exactly what was accrued, whatever the pieces.
        #[test]
        fn partial_refunds_add_up_exactly(
            due in 1..=1_000_000i64,
            spent_share in 0..=1_000i64,
            accrued_share in 0..=200i64,
            pieces in prop::collection::vec((0..3u8, 1..=1_000_000i64), 1..24),
        ) {
            let spent = due * spent_share / 1_000;
            let accrued = due * accrued_share / 1_000;
            let mut check = PaidCheck {
                payment_id: 1,
                guest: 1,
                amount_due: Kopecks(due),
                spent: Kopecks(spent),
                accrued: Kopecks(accrued),
                refunded_before: Kopecks::ZERO,
                paid_at: 0,
                owner_payment: None,
                lines: Vec::new(),
            };
            let (mut back, mut taken) = (0, 0);
            let mut next = pieces.iter().cycle();
            while check.refunded_before < check.amount_due {
                let left = (check.amount_due - check.refunded_before).0;
                let (kind, size) = next.next().copied().unwrap_or((0, 1));
                // One piece in three is "all that is left"; the others are any part of it.
                let piece = (kind != 0).then(|| Kopecks(1 + (size - 1) % left));
                let plan = refund(&check, piece, Kopecks(i64::MAX / 4)).unwrap();
                prop_assert_eq!(plan.unrecovered, Kopecks::ZERO);
                back += plan.spend_returned.0;
                taken += plan.accrual_taken.0;
                check.refunded_before = check.refunded_before + plan.amount;
            }
            prop_assert_eq!((back, taken), (spent, accrued));
        }

        /// Seed 004's groups (and random others): a guest moves to the best ranked group whose
        /// threshold the spending reaches, and never leaves a never-downgrade group for a lower one.
        #[test]
        fn group_moves_follow_the_thresholds(
            thresholds in prop::collection::vec(0..2_000_000i64, 1..5),
            current in 0..5usize,
            never_downgrade in any::<bool>(),
            spend in 0..3_000_000i64,
        ) {
            let mut sorted = thresholds.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let groups: Vec<Group> = sorted
                .iter()
                .enumerate()
                .map(|(i, t)| group(i as i64 + 1, i as i64 + 1, *t, 100 * (i as i64 + 1), never_downgrade))
                .collect();
            let now = &groups[current % groups.len()];
            let reached = groups.iter().rev().find(|g| g.rules.spend_threshold <= Kopecks(spend));
            let moved = group_after_visit(now, Kopecks(spend), &groups);
            let after = moved.as_ref().unwrap_or(now);
            match reached {
                Some(best) if best.rules.rank >= now.rules.rank => prop_assert_eq!(after, best),
                Some(_) | None if never_downgrade => prop_assert_eq!(after, now),
                Some(best) => prop_assert_eq!(after, best),
                None => prop_assert!(after.rules.rank <= now.rules.rank),
            }
            prop_assert!(moved.as_ref() != Some(now), "a move is to another group");
        }
    }
}
