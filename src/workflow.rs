//! The pure workflow core of a guest's visit: `update(state, event) -> effects`.
//!
//! No egui, no threads, no clock, no I/O. Every screen is a [`Screen`], every button an
//! [`Event`]; whatever must touch the ledger leaves as an [`Effect`] and comes back later as a
//! result event carrying the same request number. Results for requests the cashier has since
//! abandoned are dropped, except a hold, which is voided so that nothing stays held.

use crate::domain::{AwayReason, BackendKind, IdentifierKind, ScanRefusal};
use crate::domain::{
    CardPayment, CardShare, CheckFilter, CheckInfo, CheckLine, CheckSummary, Gift, GuestCard, GuestId, HoldId,
    HoldReceipt, Identification, LineReturn, LooseEnd, LoyaltyError, MAX_CODE_LEN, PaymentReceipt, RefundReceipt,
    ReturnPart, ScanEvent, ShiftReport, SpendQuote,
};
use crate::money::{AmountError, Kopecks, amount_input_text, parse_amount};
use std::path::PathBuf;

/// Request numbers tie a result to the request that asked for it.
pub type RequestId = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderLine {
    pub name: String,
    pub quantity: i64,
    /// Price of one unit; zero for a gift.
    pub price: Kopecks,
    /// Set for a line that came from a gift code.
    pub gift: Option<Gift>,
}

impl OrderLine {
    pub fn total(&self) -> Kopecks {
        Kopecks(self.price.0 * self.quantity)
    }
}

/// The order the POS has open, as the till shows it instead of a typed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PosOrderShown {
    pub order_id: String,
    pub number: String,
    pub table: Option<String>,
    pub lines: Vec<OrderLine>,
    /// Bonuses held for this order, waiting for the POS to report it paid.
    pub held: Option<Kopecks>,
}

/// The check the cashier is closing: the POS's open order when a POS is connected, else typed
/// on the keypad.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Order {
    pub lines: Vec<OrderLine>,
}

impl Order {
    pub fn subtotal(&self) -> Kopecks {
        self.lines.iter().map(OrderLine::total).sum()
    }

    pub fn check_info(&self) -> CheckInfo {
        CheckInfo {
            subtotal: self.subtotal(),
            gift_codes: self
                .lines
                .iter()
                .filter_map(|l| l.gift.as_ref().map(|g| g.code.clone()))
                .collect(),
            // Gift lines cost nothing and are returned with the whole check, not one by one.
            lines: self
                .lines
                .iter()
                .filter(|l| l.gift.is_none() && l.price > Kopecks::ZERO && l.quantity > 0)
                .map(|l| CheckLine {
                    name: l.name.clone(),
                    quantity: l.quantity,
                    price: l.price,
                    returned: 0,
                })
                .collect(),
        }
    }

    fn has_gift(&self, code: &str) -> bool {
        self.lines
            .iter()
            .any(|l| l.gift.as_ref().is_some_and(|g| g.code == code))
    }

    fn remove_gifts(&mut self) {
        self.lines.retain(|l| l.gift.is_none());
    }
}

/// The text fields the keypad can type into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// A guest code or phone on the add-guest screen.
    Code,
    /// The price of an order line being added.
    LinePrice,
    /// Bonuses to spend.
    Spend,
    /// Cash handed over by the guest.
    Tendered,
    /// A new guest's phone («Новый гость»).
    Phone,
    /// A new guest's name, optional.
    Name,
    /// A check's number, or a guest's card code or phone, on the returns screen.
    ReturnQuery,
    /// The amount of a partial return.
    ReturnAmount,
    /// The amount of the card at this position on a check paid from several cards.
    CardAmount(usize),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    pub code: String,
    pub line_price: String,
    pub spend: String,
    pub tendered: String,
    pub phone: String,
    pub name: String,
    pub return_query: String,
    pub return_amount: String,
    /// The amount of each card on a check paid from several cards, in the cards' order.
    pub card_amounts: Vec<String>,
}

impl Fields {
    pub fn get(&self, field: Field) -> &str {
        match field {
            Field::Code => &self.code,
            Field::LinePrice => &self.line_price,
            Field::Spend => &self.spend,
            Field::Tendered => &self.tendered,
            Field::Phone => &self.phone,
            Field::Name => &self.name,
            Field::ReturnQuery => &self.return_query,
            Field::ReturnAmount => &self.return_amount,
            Field::CardAmount(index) => self.card_amounts.get(index).map_or("", String::as_str),
        }
    }

    fn get_mut(&mut self, field: Field) -> &mut String {
        match field {
            Field::Code => &mut self.code,
            Field::LinePrice => &mut self.line_price,
            Field::Spend => &mut self.spend,
            Field::Tendered => &mut self.tendered,
            Field::Phone => &mut self.phone,
            Field::Name => &mut self.name,
            Field::ReturnQuery => &mut self.return_query,
            Field::ReturnAmount => &mut self.return_amount,
            Field::CardAmount(index) => {
                if self.card_amounts.len() <= index {
                    self.card_amounts.resize(index + 1, String::new());
                }
                &mut self.card_amounts[index]
            }
        }
    }
}

/// A key of the on-screen keypad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeypadKey {
    Digit(u8),
    /// The decimal comma.
    Comma,
    /// The leading plus of a phone number.
    Plus,
    /// A Latin capital letter or a hyphen of a code (gift codes such as G100002); typed into
    /// the code field only.
    Letter(char),
    Backspace,
    Clear,
}

/// Longest text a field holds: codes up to the limit the backend accepts (so that an over-long
/// code gets its own message), amounts far shorter.
const MAX_FIELD_CHARS: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentMode {
    /// The guest keeps bonuses and pays the whole check; bonuses accrue.
    Keep,
    /// Part of the check is paid with bonuses.
    Spend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenderMethod {
    Cash,
    Card,
}

/// Where a payment stands once the cashier confirmed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentStage {
    /// Waiting for the hold on the bonuses.
    Holding,
    /// Waiting for the commit (debit + accrual). Cannot be cancelled any more.
    Committing,
    /// Cancelled: waiting for the hold to be released.
    Voiding,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentInProgress {
    pub mode: PaymentMode,
    pub spent: Kopecks,
    pub stage: PaymentStage,
    pub hold: Option<HoldId>,
    /// The cashier cancelled while the hold was on its way: void it when it arrives.
    pub cancel_requested: bool,
    /// Where to go once a cancelled payment has released its hold.
    pub then_remove_guest: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    /// The brand button and the order.
    Idle,
    /// Scan or type a code.
    AddGuest,
    /// Typing the order's lines.
    Order,
    /// The identified guest: card and actions.
    Guest,
    /// «Информация о штампах».
    Stamps,
    /// «Проверка акций».
    Promotions,
    /// «Новый гость»: the code that was not found becomes the card of a guest enrolled here.
    Enrol(Enrolment),
    /// Another guest was identified while one is attached: replace them with this one?
    ConfirmReplace { identification: Identification },
    /// Keep or spend bonuses.
    PaymentChoice { quote: SpendQuote },
    /// The payment form of the chosen mode.
    Payment { mode: PaymentMode, quote: SpendQuote },
    /// Confirmed; talking to the ledger.
    Processing {
        payment: PaymentInProgress,
        quote: SpendQuote,
    },
    /// The success message; `provisional` when the till closed the check without its server
    /// (the server books it later).
    Done {
        receipt: PaymentReceipt,
        mode: PaymentMode,
        provisional: bool,
    },
    /// «Возврат чека»: find a closed check, choose full or partial, see what changes, confirm.
    Returns(ReturnStep),
    /// «Закрыть смену»: what is left in doubt at this till, and the shift report.
    Shift(ShiftStep),
    /// «Добавить карту»: the check paid from several bonus accounts.
    Split(SplitPayment),
    /// A check paid from several accounts is closed: what each card paid.
    SplitDone { lines: Vec<SplitLine> },
}

/// Where «Закрыть смену» stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShiftStep {
    /// What is left in doubt (`None` while the list is on its way).
    List { ends: Option<Vec<LooseEnd>> },
    /// The shift report (`None` while it is on its way) and where it was last saved.
    Report {
        report: Option<ShiftReport>,
        saved: Option<PathBuf>,
    },
}

/// How much of a check goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnMode {
    /// Everything not yet returned.
    Full,
    /// The amount typed in «Сумма возврата».
    Partial,
    /// The units chosen of the check's lines ([`State::return_lines`]).
    Lines,
}

/// How the cashier looks for the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnSearch {
    /// Today's checks at this till.
    Today,
    /// The number typed in the search field.
    Number,
    /// The guest whose card code or phone is typed in the search field.
    Guest,
}

/// Where a return stands. Each step keeps what the next one needs, so «Назад» loses nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnStep {
    /// The search and what it found (`None` while the first search is on its way).
    Find { checks: Option<Vec<CheckSummary>> },
    /// A check chosen: full or partial.
    Choose { check: CheckSummary },
    /// What the return would change, from the ledger, before the cashier confirms. `op_id` is
    /// kept once a confirmation was sent and not answered, so that trying again repeats the
    /// same return instead of making a second one.
    Preview {
        check: CheckSummary,
        part: ReturnPart,
        preview: RefundReceipt,
        op_id: Option<String>,
    },
    /// Confirmed: the return is on its way.
    Sending {
        check: CheckSummary,
        part: ReturnPart,
        preview: RefundReceipt,
        op_id: String,
    },
    /// Done: what the return changed.
    Done {
        check: CheckSummary,
        receipt: RefundReceipt,
    },
}

/// A guest being enrolled at the till.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolment {
    /// The code that was not found: it becomes the guest's card.
    pub code: ScanEvent,
    /// What the programme credits the new guest.
    pub welcome_bonus: Kopecks,
    /// Kept across a retry whose answer may have been lost, so that the guest is made once.
    pub op_id: String,
}

/// A code was not found and the programme lets the cashier enrol its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolOffer {
    pub code: ScanEvent,
    pub welcome_bonus: Kopecks,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeArg {
    Text(String),
    Money(Kopecks),
    Number(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeLevel {
    Info,
    Success,
    Error,
}

/// A message for the cashier: a Fluent key and its arguments; the UI translates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub level: NoticeLevel,
    pub key: &'static str,
    pub args: Vec<(&'static str, NoticeArg)>,
}

impl Notice {
    pub fn error(key: &'static str) -> Notice {
        Notice {
            level: NoticeLevel::Error,
            key,
            args: Vec::new(),
        }
    }

    pub fn info(key: &'static str) -> Notice {
        Notice {
            level: NoticeLevel::Info,
            key,
            args: Vec::new(),
        }
    }

    pub fn success(key: &'static str) -> Notice {
        Notice {
            level: NoticeLevel::Success,
            key,
            args: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: NoticeArg) -> Notice {
        self.args.push((name, value));
        self
    }

    pub fn money(self, name: &'static str, value: Kopecks) -> Notice {
        self.with(name, NoticeArg::Money(value))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendStatus {
    Starting,
    Ready(BackendKind),
    Failed(LoyaltyError),
}

/// What the core is waiting for. One request at a time: the cashier waits for the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    Identify,
    Calculate,
    Hold,
    Commit,
    Void,
    Enrol,
    FindChecks,
    PreviewReturn,
    Return,
    LooseEnds,
    Settle,
    ShiftReport,
    SaveReport,
    SharedHold,
    SharedCommit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub screen: Screen,
    pub order: Order,
    pub guest: Option<GuestCard>,
    pub fields: Fields,
    /// The field the keypad types into.
    pub active_field: Option<Field>,
    pub tender: TenderMethod,
    pub notice: Option<Notice>,
    pub backend: BackendStatus,
    pub waiting: Option<(RequestId, Waiting)>,
    /// Demo mode offers a ready-made order.
    pub demo: bool,
    /// A field the till filled in itself (the maximum, the exact amount): the first keypad
    /// digit replaces its value instead of appending to it.
    pub prefilled: Option<Field>,
    /// «Удалить гостя» was pressed once: the guest card asks before removing.
    pub confirm_remove: bool,
    /// The last code was not found and may be enrolled: the not-found message offers
    /// «Новый гость».
    pub enrol_offer: Option<EnrolOffer>,
    /// The order the POS has open; while it is set, the order is the POS's, not typed.
    pub pos: Option<PosOrderShown>,
    /// The operation id of the last check this till paid (the success screen's «Возврат чека»
    /// opens the returns screen on it).
    pub last_payment_op: Option<String>,
    /// The returns screen was opened for this check: chosen as soon as the list shows it.
    return_target: Option<String>,
    /// The last list of checks found, kept while a check of it is being returned.
    pub found_checks: Option<Vec<CheckSummary>>,
    /// What the preview on its way returns.
    pending_return_part: ReturnPart,
    /// The units of each line of the chosen check picked for a return by lines.
    pub return_lines: Vec<i64>,
    /// Operation ids are `<prefix>-<n>`: unique per till and start, so a retry repeats one.
    op_prefix: String,
    next_seq: u64,
}

/// The quick bonus amounts of the spend form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendPreset {
    Max,
    /// Half the maximum, down to the spend step.
    Half,
    /// Nothing spent: the check is paid as when keeping bonuses.
    Zero,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The background worker opened (or failed to open) the backend.
    BackendReady(Result<BackendKind, LoyaltyError>),
    /// The POS's open order changed (`None`: no order open on the POS any more).
    PosOrder(Option<PosOrderShown>),
    /// The answer to `Effect::PosConfirm`: the bonuses held (zero when keeping them).
    PosConfirmed {
        request: RequestId,
        result: Result<Kopecks, Notice>,
    },
    /// The big brand button: the guest flow.
    OpenPlugin,
    /// Back to the previous screen (never loses the guest or the order).
    Back,
    ShowStamps,
    ShowPromotions,
    OpenOrder,
    FocusField(Field),
    Keypad(KeypadKey),
    /// The physical keyboard edited a field.
    FieldEdited(Field, String),
    /// «Найти гостя» on the add-guest screen.
    SubmitCode,
    /// Any identification input: keypad, scanner, card reader, camera.
    Scan(ScanEvent),
    /// A device read that could not be understood.
    ScanRefused(ScanRefusal),
    /// The answer to «replace the guest?».
    ReplaceGuest(bool),
    /// «Удалить гостя».
    RemoveGuest,
    /// Adds an order line with the typed price.
    AddOrderLine,
    UseDemoOrder,
    ClearOrder,
    /// «Касса»: start paying.
    StartPayment,
    ChoosePaymentMode(PaymentMode),
    SetTender(TenderMethod),
    /// «Точная сумма»: the tendered amount is the exact remainder.
    ExactAmount,
    /// «Удалить гостя» pressed (true: ask) or the question answered «Нет» (false).
    AskRemoveGuest(bool),
    /// The quick amounts beside the bonus amount: «Максимум», «Половина», «0».
    SpendPreset(SpendPreset),
    ConfirmPayment,
    CancelPayment,
    /// After the success message: a fresh order.
    NewOrder,
    /// «Возврат чека» from the menu (`false`) or the success screen (`true`: the check just paid).
    OpenReturns {
        last_check: bool,
    },
    /// Look for closed checks.
    FindChecks(ReturnSearch),
    /// A check of the list chosen, by its number.
    ChooseCheck(i64),
    /// One unit more (`true`) or fewer of a line of the chosen check in a return by lines.
    StepReturnLine {
        line: usize,
        more: bool,
    },
    /// «Вернуть полностью» / «Вернуть часть»: ask the ledger what it would change.
    PreviewReturn(ReturnMode),
    /// «Подтвердить возврат».
    ConfirmReturn,
    ChecksFound {
        request: RequestId,
        result: Result<Vec<CheckSummary>, LoyaltyError>,
    },
    ReturnPreviewed {
        request: RequestId,
        result: Result<RefundReceipt, LoyaltyError>,
    },
    Returned {
        request: RequestId,
        result: Result<RefundReceipt, LoyaltyError>,
    },
    DismissNotice,
    /// «Закрыть смену» from the menu: the list of what is left in doubt.
    OpenShift,
    /// Finish or release the entry at this index of the list.
    SettleLooseEnd(usize),
    /// «Отчёт за смену».
    ShowShiftReport,
    /// «Сохранить отчёт (CSV)»: the file's name and contents, made by the UI in its language, and
    /// the folder the log export saves into.
    SaveShiftReport {
        dir: PathBuf,
        file_name: String,
        contents: String,
    },
    LooseEndsFound {
        request: RequestId,
        result: Result<Vec<LooseEnd>, LoyaltyError>,
    },
    LooseEndSettled {
        request: RequestId,
        result: Result<(), LoyaltyError>,
    },
    ShiftReportReady {
        request: RequestId,
        result: Result<ShiftReport, LoyaltyError>,
    },
    /// The report's file was written (its path) or not (why).
    ShiftReportSaved {
        request: RequestId,
        result: Result<PathBuf, String>,
    },
    Identified {
        request: RequestId,
        result: Result<Identification, LoyaltyError>,
    },
    Calculated {
        request: RequestId,
        result: Result<SpendQuote, LoyaltyError>,
    },
    HoldPlaced {
        request: RequestId,
        result: Result<HoldReceipt, LoyaltyError>,
    },
    PaymentCommitted {
        request: RequestId,
        result: Result<PaymentReceipt, LoyaltyError>,
    },
    /// The check was closed by the till alone while its server was away: a provisional receipt.
    PaymentProvisional {
        request: RequestId,
        receipt: PaymentReceipt,
    },
    HoldVoided {
        request: RequestId,
        result: Result<(), LoyaltyError>,
    },
    /// No guest has the code; `enrolment` is the welcome bonus when the programme lets the
    /// cashier enrol one (`None`: it does not).
    NotFound {
        request: RequestId,
        code: ScanEvent,
        enrolment: Option<Kopecks>,
    },
    /// «Новый гость» on the not-found message.
    StartEnrol,
    /// «Зарегистрировать» on the enrolment form.
    SubmitEnrol,
    /// «Добавить карту» on the payment form.
    AddCard,
    /// Takes the card at this position off the check (not the first).
    RemoveCard(usize),
    /// The guest of the card at this position owns the check (gets the accrual).
    SetOwner(usize),
    SharedHoldsPlaced {
        request: RequestId,
        result: Result<Vec<Option<HoldReceipt>>, LoyaltyError>,
    },
    SharedPaymentCommitted {
        request: RequestId,
        result: Result<Vec<PaymentReceipt>, LoyaltyError>,
    },
    Enrolled {
        request: RequestId,
        result: Result<Identification, LoyaltyError>,
    },
}

/// Work for the background: each answers with the result event of the same request number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Resolve a code; answers `Identified`.
    Identify { request: RequestId, scan: ScanEvent },
    /// Maximum spendable and accrual rate for the check; answers `Calculated`.
    Calculate {
        request: RequestId,
        guest: GuestId,
        check: CheckInfo,
    },
    /// Reserve bonuses; answers `HoldPlaced`.
    Hold {
        request: RequestId,
        op_id: String,
        guest: GuestId,
        amount: Kopecks,
        check: CheckInfo,
    },
    /// Debit the hold, accrue, redeem gifts; answers `PaymentCommitted`.
    CommitPayment {
        request: RequestId,
        op_id: String,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: CheckInfo,
    },
    /// Release a hold; answers `HoldVoided`.
    VoidHold {
        request: RequestId,
        op_id: String,
        hold: HoldId,
    },
    /// Enrol a guest with the code as their card; answers `Enrolled`.
    Enrol {
        request: RequestId,
        op_id: String,
        code: ScanEvent,
        phone: String,
        name: String,
    },
    /// The cashier confirmed on a POS order: bind the check's owner to it and hold each card's
    /// amount (one card, or several with «Добавить карту») until the POS reports the check paid
    /// (the POS's `paid` commits, not the till); answers `PosConfirmed`.
    PosConfirm {
        request: RequestId,
        op_id: String,
        order_id: String,
        owner: GuestId,
        shares: Vec<CardShare>,
    },
    /// Hold on several accounts for one check, all or none; answers `SharedHoldsPlaced`.
    HoldShared {
        request: RequestId,
        op_id: String,
        owner: GuestId,
        shares: Vec<CardShare>,
        check: CheckInfo,
    },
    /// Close a check paid from several accounts; answers `SharedPaymentCommitted`.
    CommitShared {
        request: RequestId,
        op_id: String,
        owner: GuestId,
        payments: Vec<CardPayment>,
        check: CheckInfo,
    },
    /// This till's closed checks; answers `ChecksFound`.
    FindChecks { request: RequestId, filter: CheckFilter },
    /// What a return would change (nothing written); answers `ReturnPreviewed`.
    PreviewReturn {
        request: RequestId,
        payment_op_id: String,
        part: ReturnPart,
    },
    /// Return part or all of a check; answers `Returned`.
    Return {
        request: RequestId,
        op_id: String,
        payment_op_id: String,
        part: ReturnPart,
    },
    /// What this till left in doubt; answers `LooseEndsFound`.
    LoadLooseEnds { request: RequestId },
    /// Finish or release one of them (`op_id` for a release); answers `LooseEndSettled`.
    SettleLooseEnd {
        request: RequestId,
        op_id: String,
        end: LooseEnd,
    },
    /// The shift's figures; answers `ShiftReportReady`.
    ShiftReport { request: RequestId },
    /// Write a file into `dir`; answers `ShiftReportSaved`.
    SaveFile {
        request: RequestId,
        dir: PathBuf,
        file_name: String,
        contents: String,
    },
}

impl State {
    pub fn new(op_prefix: impl Into<String>, demo: bool) -> State {
        State {
            screen: Screen::Idle,
            order: Order::default(),
            guest: None,
            fields: Fields::default(),
            active_field: None,
            tender: TenderMethod::Cash,
            notice: None,
            backend: BackendStatus::Starting,
            waiting: None,
            demo,
            prefilled: None,
            confirm_remove: false,
            enrol_offer: None,
            pos: None,
            last_payment_op: None,
            return_target: None,
            found_checks: None,
            pending_return_part: ReturnPart::Rest,
            return_lines: Vec::new(),
            op_prefix: op_prefix.into(),
            next_seq: 1,
        }
    }

    pub fn is_busy(&self) -> bool {
        self.waiting.is_some()
    }

    /// The amount the cashier typed to spend, as the payment form reads it.
    pub fn spend_amount(&self) -> Result<Kopecks, AmountError> {
        parse_amount(&self.fields.spend)
    }

    /// What remains to pay by cash or card, once `spent` is paid with bonuses.
    pub fn remainder(quote: &SpendQuote, spent: Kopecks) -> Kopecks {
        quote.amount_due.saturating_sub(spent)
    }

    /// The amount paid with bonuses in the current form (zero when keeping bonuses).
    pub fn form_spent(&self, mode: PaymentMode) -> Result<Kopecks, AmountError> {
        match mode {
            PaymentMode::Keep => Ok(Kopecks::ZERO),
            PaymentMode::Spend => self.spend_amount(),
        }
    }

    /// Change for cash: tendered minus the remainder, when the tendered amount is readable.
    pub fn change(&self, quote: &SpendQuote, mode: PaymentMode) -> Option<Kopecks> {
        let spent = self.form_spent(mode).ok()?;
        let tendered = parse_amount(&self.fields.tendered).ok()?;
        let remainder = State::remainder(quote, spent);
        (tendered >= remainder).then(|| tendered - remainder)
    }

    /// Why the amount to spend cannot be paid, checked as the cashier types; `None` when it can.
    pub fn spend_problem(&self, quote: &SpendQuote, mode: PaymentMode) -> Option<Notice> {
        let spent = match self.form_spent(mode) {
            Ok(spent) => spent,
            Err(error) => return Some(amount_notice(error)),
        };
        if spent < Kopecks::ZERO {
            Some(Notice::error("err-amount-zero"))
        } else if spent > quote.max_spend {
            Some(Notice::error("err-over-max").money("max", quote.max_spend))
        } else if spent.floor_to_step(quote.spend_step) != spent {
            Some(Notice::error("err-spend-step").money("step", quote.spend_step))
        } else {
            None
        }
    }

    /// Why the cash received does not cover the remainder; `None` when it does, when paying by
    /// card, or while the amount to spend is itself wrong (the remainder is unknown then).
    pub fn tendered_problem(&self, quote: &SpendQuote, mode: PaymentMode) -> Option<Notice> {
        if self.tender != TenderMethod::Cash || self.spend_problem(quote, mode).is_some() {
            return None;
        }
        let remainder = State::remainder(quote, self.form_spent(mode).ok()?);
        if remainder <= Kopecks::ZERO {
            return None;
        }
        match parse_amount(&self.fields.tendered) {
            Ok(tendered) if tendered >= remainder => None,
            Ok(_) | Err(AmountError::Empty) => Some(Notice::error("err-tendered-short").money("remainder", remainder)),
            Err(error) => Some(amount_notice(error)),
        }
    }

    /// What keeps «Провести оплату» disabled, shown next to it; `None`: it can be pressed.
    pub fn payment_blocker(&self, quote: &SpendQuote, mode: PaymentMode) -> Option<Notice> {
        self.spend_problem(quote, mode)
            .or_else(|| self.tendered_problem(quote, mode))
    }

    /// What keeps «Касса» disabled on the guest card, shown above it; `None`: it can be pressed.
    /// An order with nothing on it has nothing to close. Which checks may be closed (a check of
    /// only a gift may) is the ledger's rule, asked with the quote; it is not repeated here.
    pub fn start_payment_blocker(&self) -> Option<Notice> {
        if self.guest.is_none() {
            Some(Notice::error("err-no-guest"))
        } else if self.order.lines.is_empty() {
            Some(Notice::error("err-order-empty"))
        } else {
            None
        }
    }

    /// The remainder of the payment form, when its amount to spend is right.
    fn form_remainder(&self) -> Option<Kopecks> {
        let Screen::Payment { mode, quote } = &self.screen else {
            return None;
        };
        if self.spend_problem(quote, *mode).is_some() {
            return None;
        }
        Some(State::remainder(quote, self.form_spent(*mode).ok()?))
    }

    fn next_request(&mut self, waiting: Waiting) -> RequestId {
        let id = self.next_seq;
        self.next_seq += 1;
        self.waiting = Some((id, waiting));
        id
    }

    /// A request number for work whose answer nobody waits for (a late hold being released).
    fn untracked_request(&mut self) -> RequestId {
        let id = self.next_seq;
        self.next_seq += 1;
        id
    }

    fn next_op_id(&mut self) -> String {
        let id = format!("{}-{}", self.op_prefix, self.next_seq);
        self.next_seq += 1;
        id
    }

    /// Accepts a result only if it answers the request the core is waiting for.
    fn take_waiting(&mut self, request: RequestId, kind: Waiting) -> bool {
        if self.waiting == Some((request, kind)) {
            self.waiting = None;
            true
        } else {
            false
        }
    }

    /// The screen to return to: the guest card while a guest is attached, else idle.
    fn home(&self) -> Screen {
        if self.guest.is_some() {
            Screen::Guest
        } else {
            Screen::Idle
        }
    }

    fn go(&mut self, screen: Screen) {
        self.confirm_remove = false;
        if !matches!(screen, Screen::AddGuest) {
            self.enrol_offer = None;
        }
        self.active_field = match &screen {
            Screen::AddGuest => Some(Field::Code),
            Screen::Enrol(_) => Some(Field::Phone),
            Screen::Order => Some(Field::LinePrice),
            Screen::Payment {
                mode: PaymentMode::Spend,
                ..
            } => Some(Field::Spend),
            Screen::Payment {
                mode: PaymentMode::Keep,
                ..
            } => Some(Field::Tendered),
            Screen::Returns(ReturnStep::Find { .. }) => Some(Field::ReturnQuery),
            Screen::Returns(ReturnStep::Choose { .. }) => Some(Field::ReturnAmount),
            Screen::Split(_) => Some(Field::Code),
            _ => None,
        };
        self.screen = screen;
    }

    fn in_payment(&self) -> bool {
        matches!(
            self.screen,
            Screen::PaymentChoice { .. } | Screen::Payment { .. } | Screen::Processing { .. } | Screen::Split(_)
        )
    }

    fn detach_guest(&mut self) {
        self.guest = None;
        self.order.remove_gifts();
    }
}

/// Applies one event to the state and returns the work it asks for.
pub fn update(state: &mut State, event: Event) -> Vec<Effect> {
    let mut effects = Vec::new();
    match event {
        Event::BackendReady(result) => {
            state.backend = match result {
                Ok(kind) => BackendStatus::Ready(kind),
                Err(error) => {
                    state.notice = Some(error_notice(&error));
                    BackendStatus::Failed(error)
                }
            };
        }
        Event::OpenPlugin => {
            if !state.in_payment() {
                state.notice = None;
                let next = if state.guest.is_some() {
                    Screen::Guest
                } else {
                    Screen::AddGuest
                };
                state.go(next);
            }
        }
        Event::Back => back(state, &mut effects),
        Event::ShowStamps if state.guest.is_some() => {
            state.notice = None;
            state.go(Screen::Stamps);
        }
        Event::ShowPromotions if state.guest.is_some() => {
            state.notice = None;
            state.go(Screen::Promotions);
        }
        Event::ShowStamps | Event::ShowPromotions => state.notice = Some(Notice::error("err-no-guest")),
        Event::PosOrder(shown) => pos_order(state, shown),
        Event::PosConfirmed { request, result } if matches!(state.screen, Screen::Split(_)) => {
            pos_split_confirmed(state, request, result);
        }
        Event::PosConfirmed { request, result } => {
            if state.take_waiting(request, Waiting::Hold)
                && let Screen::Processing { payment, quote } = state.screen.clone()
            {
                match result {
                    Ok(held) => pos_bound(state, held),
                    Err(notice) => {
                        state.notice = Some(notice);
                        state.go(Screen::Payment {
                            mode: payment.mode,
                            quote,
                        });
                    }
                }
            }
        }
        Event::OpenOrder if state.pos.is_some() => state.notice = Some(Notice::info("pos-connected-hint")),
        Event::OpenOrder => {
            if !state.in_payment() {
                state.go(Screen::Order);
            }
        }
        Event::FocusField(field) => state.active_field = Some(field),
        Event::Keypad(key) => {
            if let Some(field) = state.active_field {
                edit_field(state, field, |state| {
                    let text = state.fields.get_mut(field);
                    if state.prefilled == Some(field) && matches!(key, KeypadKey::Digit(_) | KeypadKey::Comma) {
                        // The first key replaces what the till filled in.
                        text.clear();
                    }
                    if field == Field::Name {
                        press_name_key(text, key);
                    } else if field == Field::Code || !matches!(key, KeypadKey::Letter(_)) {
                        press_key(text, key);
                    }
                });
            }
        }
        Event::FieldEdited(field, text) => {
            edit_field(state, field, |state| {
                *state.fields.get_mut(field) = text.chars().take(MAX_FIELD_CHARS).collect();
            });
        }
        Event::SpendPreset(preset) => {
            if let Screen::Payment {
                mode: PaymentMode::Spend,
                quote,
            } = state.screen.clone()
            {
                let amount = match preset {
                    SpendPreset::Max => quote.max_spend,
                    SpendPreset::Half => Kopecks(quote.max_spend.0 / 2).floor_to_step(quote.spend_step),
                    SpendPreset::Zero => Kopecks::ZERO,
                };
                edit_field(state, Field::Spend, |state| {
                    state.fields.spend = amount_input_text(amount);
                });
                state.prefilled = Some(Field::Spend);
                state.active_field = Some(Field::Spend);
            }
        }
        Event::SubmitCode => {
            let scan = ScanEvent::manual(state.fields.code.trim(), 0);
            submit_scan(state, scan, &mut effects);
        }
        Event::Scan(scan) => submit_scan(state, scan, &mut effects),
        Event::ScanRefused(refusal) => state.notice = Some(Notice::error(refusal_key(refusal))),
        Event::ReplaceGuest(replace) => {
            if let Screen::ConfirmReplace { identification } = state.screen.clone() {
                if replace {
                    state.detach_guest();
                    attach(state, identification);
                } else {
                    state.go(Screen::Guest);
                }
            }
        }
        Event::AskRemoveGuest(ask) => state.confirm_remove = ask && state.guest.is_some(),
        Event::RemoveGuest => remove_guest(state),
        Event::AddOrderLine => add_order_line(state),
        Event::UseDemoOrder => {
            if state.demo && !state.in_payment() {
                state.order.lines.retain(|l| l.gift.is_some());
                state.order.lines.extend(demo_order_lines());
                state.notice = None;
            }
        }
        Event::ClearOrder => {
            if !state.in_payment() {
                state.order.lines.retain(|l| l.gift.is_some());
            }
        }
        Event::StartPayment => start_payment(state, &mut effects),
        Event::ChoosePaymentMode(mode) => {
            if let Screen::PaymentChoice { quote } = state.screen.clone() {
                state.fields.spend = amount_input_text(quote.max_spend);
                state.fields.tendered.clear();
                state.prefilled = Some(Field::Spend);
                state.active_field = Some(Field::Spend);
                state.notice = None;
                state.go(Screen::Payment { mode, quote });
            }
        }
        Event::SetTender(method) => {
            state.tender = method;
            if method == TenderMethod::Cash {
                state.active_field = Some(Field::Tendered);
            }
        }
        Event::ExactAmount if matches!(state.screen, Screen::Split(_)) => split_exact_amount(state),
        Event::ExactAmount => {
            if let Screen::Payment { mode, quote } = &state.screen {
                match state.form_spent(*mode) {
                    Ok(spent) => {
                        state.fields.tendered = amount_input_text(State::remainder(quote, spent));
                        state.prefilled = Some(Field::Tendered);
                        state.notice = None;
                    }
                    Err(error) => state.notice = Some(amount_notice(error)),
                }
            }
        }
        Event::ConfirmPayment if matches!(state.screen, Screen::Split(_)) => split_confirm(state, &mut effects),
        Event::ConfirmPayment => confirm_payment(state, &mut effects),
        Event::CancelPayment if matches!(state.screen, Screen::Split(_)) => split_cancel(state),
        Event::CancelPayment => cancel_payment(state, false),
        Event::AddCard => add_card(state),
        Event::RemoveCard(index) => remove_card(state, index),
        Event::SetOwner(index) => {
            if let Screen::Split(split) = &mut state.screen
                && split.stage == SplitStage::Editing
                && index < split.cards.len()
            {
                split.owner = index;
            }
        }
        Event::SharedHoldsPlaced { request, result } => shared_holds_placed(state, request, result, &mut effects),
        Event::SharedPaymentCommitted { request, result } => {
            if state.take_waiting(request, Waiting::SharedCommit) {
                shared_payment_committed(state, result, &mut effects);
            }
        }
        Event::NewOrder => {
            if matches!(state.screen, Screen::Done { .. } | Screen::SplitDone { .. }) {
                state.guest = None;
                state.order = Order::default();
                state.fields = Fields::default();
                state.notice = None;
                state.go(Screen::Idle);
            }
        }
        Event::DismissNotice => state.notice = None,
        Event::OpenReturns { last_check } => open_returns(state, last_check, &mut effects),
        Event::FindChecks(search) => find_checks(state, search, &mut effects),
        Event::ChooseCheck(number) => choose_check(state, number),
        Event::StepReturnLine { line, more } => step_return_line(state, line, more),
        Event::PreviewReturn(mode) => preview_return(state, mode, &mut effects),
        Event::ConfirmReturn => confirm_return(state, &mut effects),
        Event::ChecksFound { request, result } => {
            if state.take_waiting(request, Waiting::FindChecks) {
                checks_found(state, result);
            }
        }
        Event::ReturnPreviewed { request, result } => {
            if state.take_waiting(request, Waiting::PreviewReturn) {
                return_previewed(state, result);
            }
        }
        Event::Returned { request, result } => {
            if state.take_waiting(request, Waiting::Return) {
                returned(state, result);
            }
        }
        Event::OpenShift => open_shift(state, &mut effects),
        Event::SettleLooseEnd(index) => settle_loose_end(state, index, &mut effects),
        Event::ShowShiftReport => show_shift_report(state, &mut effects),
        Event::SaveShiftReport {
            dir,
            file_name,
            contents,
        } => save_shift_report(state, dir, file_name, contents, &mut effects),
        Event::LooseEndsFound { request, result } => {
            if state.take_waiting(request, Waiting::LooseEnds) {
                match result {
                    Ok(ends) => state.screen = Screen::Shift(ShiftStep::List { ends: Some(ends) }),
                    Err(error) => state.notice = Some(error_notice(&error)),
                }
            }
        }
        Event::LooseEndSettled { request, result } => {
            if state.take_waiting(request, Waiting::Settle) {
                match result {
                    Ok(()) => {
                        state.notice = Some(Notice::success("shift-settled"));
                        // The list is read again: settling one entry may settle others.
                        load_loose_ends(state, &mut effects);
                    }
                    Err(error) => state.notice = Some(error_notice(&error)),
                }
            }
        }
        Event::ShiftReportReady { request, result } => {
            if state.take_waiting(request, Waiting::ShiftReport) {
                match result {
                    Ok(report) => {
                        state.screen = Screen::Shift(ShiftStep::Report {
                            report: Some(report),
                            saved: None,
                        })
                    }
                    Err(error) => {
                        // Back to the list, where the cashier was: a spinner that never ends
                        // would hide the reason.
                        if matches!(state.screen, Screen::Shift(ShiftStep::Report { report: None, .. })) {
                            state.go(Screen::Shift(ShiftStep::List { ends: None }));
                            load_loose_ends(state, &mut effects);
                        }
                        state.notice = Some(error_notice(&error));
                    }
                }
            }
        }
        Event::ShiftReportSaved { request, result } => {
            if state.take_waiting(request, Waiting::SaveReport) {
                match result {
                    Ok(path) => {
                        state.notice = Some(Notice::success("shift-report-saved"));
                        if let Screen::Shift(ShiftStep::Report { saved, .. }) = &mut state.screen {
                            *saved = Some(path);
                        }
                    }
                    Err(reason) => {
                        state.notice =
                            Some(Notice::error("shift-report-save-failed").with("reason", NoticeArg::Text(reason)))
                    }
                }
            }
        }
        Event::Identified { request, result } => {
            if state.take_waiting(request, Waiting::Identify) {
                if matches!(state.screen, Screen::Split(_)) {
                    split_identified(state, result, &mut effects);
                } else {
                    identified(state, result);
                }
            }
        }
        Event::Calculated { request, result } if matches!(state.screen, Screen::Split(_)) => {
            if state.take_waiting(request, Waiting::Calculate) {
                split_quoted(state, result);
            }
        }
        Event::Calculated { request, result } => {
            if state.take_waiting(request, Waiting::Calculate) {
                match result {
                    Ok(quote) => state.go(Screen::PaymentChoice { quote }),
                    Err(error) => state.notice = Some(error_notice(&error)),
                }
            }
        }
        Event::HoldPlaced { request, result } => hold_placed(state, request, result, &mut effects),
        Event::PaymentCommitted { request, result } => {
            if state.take_waiting(request, Waiting::Commit) {
                payment_committed(state, result, false, &mut effects);
            }
        }
        Event::PaymentProvisional { request, receipt } => {
            if state.take_waiting(request, Waiting::Commit) {
                payment_committed(state, Ok(receipt), true, &mut effects);
            }
        }
        Event::HoldVoided { request, result } => {
            if state.take_waiting(request, Waiting::Void) {
                hold_voided(state, result);
            }
        }
        Event::NotFound {
            request,
            code,
            enrolment,
        } => {
            if state.take_waiting(request, Waiting::Identify) {
                if matches!(state.screen, Screen::Split(_)) {
                    // Another card for the check is looked up, not enrolled.
                    state.notice = Some(error_notice(&LoyaltyError::UnknownCode));
                    return effects;
                }
                identified(state, Err(LoyaltyError::UnknownCode));
                // A guest on the order keeps the screen: enrolment starts from an empty order.
                if state.guest.is_none() {
                    state.enrol_offer = enrolment.map(|welcome_bonus| EnrolOffer { code, welcome_bonus });
                }
            }
        }
        Event::StartEnrol => start_enrol(state),
        Event::SubmitEnrol => submit_enrol(state, &mut effects),
        Event::Enrolled { request, result } => {
            if state.take_waiting(request, Waiting::Enrol) {
                enrolled(state, result);
            }
        }
    }
    effects
}

fn back(state: &mut State, effects: &mut Vec<Effect>) {
    // A message belongs to the screen it was shown on.
    state.notice = None;
    match state.screen {
        Screen::Stamps | Screen::Promotions | Screen::AddGuest | Screen::Order => {
            // Leaving the add-guest screen abandons a lookup still on its way; its answer is dropped.
            if matches!(state.waiting, Some((_, Waiting::Identify))) {
                state.waiting = None;
            }
            let home = state.home();
            state.go(home);
        }
        Screen::ConfirmReplace { .. } => state.go(Screen::Guest),
        // The form's answer, if it comes, is dropped; the code stays in the field.
        Screen::Enrol(_) => {
            if matches!(state.waiting, Some((_, Waiting::Enrol))) {
                state.waiting = None;
            }
            state.go(Screen::AddGuest);
        }
        Screen::PaymentChoice { .. } => state.go(Screen::Guest),
        Screen::Split(_) => split_cancel(state),
        Screen::Payment { .. } | Screen::Processing { .. } | Screen::SplitDone { .. } => {}
        Screen::Idle | Screen::Guest | Screen::Done { .. } => {}
        Screen::Returns(ref step) => match step.clone() {
            // A return on its way cannot be abandoned: its answer is what the cashier must see.
            ReturnStep::Sending { .. } => {}
            ReturnStep::Preview { check, .. } => state.go(Screen::Returns(ReturnStep::Choose { check })),
            ReturnStep::Choose { .. } => {
                let checks = state.found_checks.take();
                state.go(Screen::Returns(ReturnStep::Find { checks }));
            }
            ReturnStep::Find { .. } | ReturnStep::Done { .. } => {
                if matches!(state.waiting, Some((_, Waiting::FindChecks | Waiting::PreviewReturn))) {
                    state.waiting = None;
                }
                state.return_target = None;
                let home = state.home();
                state.go(home);
            }
        },
        Screen::Shift(ref step) => {
            // Reads may be abandoned; a release or a send on its way is waited for, so that
            // the cashier sees whether it went through.
            match state.waiting {
                Some((_, Waiting::Settle | Waiting::SaveReport)) => {}
                Some((_, Waiting::LooseEnds | Waiting::ShiftReport)) | None => {
                    state.waiting = None;
                    match step {
                        ShiftStep::Report { .. } => {
                            state.go(Screen::Shift(ShiftStep::List { ends: None }));
                            load_loose_ends(state, effects);
                        }
                        ShiftStep::List { .. } => {
                            let home = state.home();
                            state.go(home);
                        }
                    }
                }
                Some(_) => {}
            }
        }
    }
}

/// Applies an edit of a field. The cash received follows the amount to spend: an amount that was
/// the exact remainder becomes the new remainder, so it never keeps an old figure unnoticed
/// (any other amount stays, and is flagged when it falls short).
fn edit_field(state: &mut State, field: Field, edit: impl FnOnce(&mut State)) {
    let remainder_before = state.form_remainder();
    edit(state);
    state.prefilled = state.prefilled.filter(|f| *f != field);
    if field != Field::Spend {
        return;
    }
    let exact_before = remainder_before.is_some_and(|r| parse_amount(&state.fields.tendered) == Ok(r));
    if exact_before {
        match state.form_remainder() {
            Some(remainder) => state.fields.tendered = amount_input_text(remainder),
            None => state.fields.tendered.clear(),
        }
    }
}

/// A key of the name keypad: letters of any alphabet, a space or a hyphen between words; a
/// word starts with a capital and goes on in small letters, as a name is written, so the
/// cashier never needs a shift key. Digits and the rest are not part of a name.
fn press_name_key(text: &mut String, key: KeypadKey) {
    let room = text.chars().count() < MAX_FIELD_CHARS;
    let word_start = text.is_empty() || text.ends_with([' ', '-']);
    match key {
        KeypadKey::Letter(c) if c.is_alphabetic() && room && word_start => text.extend(c.to_uppercase()),
        KeypadKey::Letter(c) if c.is_alphabetic() && room => text.extend(c.to_lowercase()),
        KeypadKey::Letter(c @ (' ' | '-')) if room && !word_start => text.push(c),
        KeypadKey::Backspace | KeypadKey::Clear => press_key(text, key),
        _ => {}
    }
}

fn press_key(text: &mut String, key: KeypadKey) {
    match key {
        KeypadKey::Digit(d) if d <= 9 => {
            if text.chars().count() < MAX_FIELD_CHARS {
                text.push(char::from(b'0' + d));
            }
        }
        KeypadKey::Digit(_) => {}
        KeypadKey::Comma => {
            if !text.contains([',', '.']) {
                text.push(',');
            }
        }
        KeypadKey::Plus => {
            if text.is_empty() {
                text.push('+');
            }
        }
        KeypadKey::Letter(c) if c.is_ascii_uppercase() || c == '-' => {
            if text.chars().count() < MAX_FIELD_CHARS {
                text.push(c);
            }
        }
        KeypadKey::Letter(_) => {}
        KeypadKey::Backspace => {
            text.pop();
        }
        KeypadKey::Clear => text.clear(),
    }
}

fn submit_scan(state: &mut State, scan: ScanEvent, effects: &mut Vec<Effect>) {
    let payload = scan.payload.trim();
    if payload.is_empty() {
        state.notice = Some(Notice::error("err-code-empty"));
        return;
    }
    if payload.chars().count() > MAX_CODE_LEN {
        state.notice = Some(Notice::error("err-code-too-long").with("max", NoticeArg::Number(MAX_CODE_LEN as i64)));
        return;
    }
    if let Screen::Split(split) = &state.screen {
        // «Добавить карту»: the code is another card for the check.
        if split.stage != SplitStage::Editing || state.is_busy() {
            state.notice = Some(Notice::info("info-wait"));
        } else {
            request_identify(state, scan, effects);
        }
        return;
    }
    if state.in_payment() {
        state.notice = Some(Notice::error("err-finish-payment-first"));
        return;
    }
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    // With a guest attached the code is looked up first: the guest's own gift code only adds
    // the gift, and another guest's code asks to replace, naming them. The guest card stays on
    // screen meanwhile.
    if state.guest.is_none() {
        state.go(Screen::AddGuest);
    }
    request_identify(state, scan, effects);
}

fn request_identify(state: &mut State, mut scan: ScanEvent, effects: &mut Vec<Effect>) {
    scan.payload = scan.payload.trim().to_string();
    state.notice = None;
    state.enrol_offer = None;
    let request = state.next_request(Waiting::Identify);
    effects.push(Effect::Identify { request, scan });
}

fn identified(state: &mut State, result: Result<Identification, LoyaltyError>) {
    let attached = state.guest.as_ref().map(|g| g.guest_id);
    match result {
        Ok(identification) if attached.is_some_and(|id| id != identification.card.guest_id) => {
            state.fields.code.clear();
            state.notice = None;
            state.go(Screen::ConfirmReplace { identification });
        }
        Ok(identification) => attach(state, identification),
        Err(error) if attached.is_some() => {
            // The guest on the order stays; the refusal is said on their card.
            state.notice = Some(error_notice(&error));
            state.go(Screen::Guest);
        }
        Err(error) => {
            // The typed code stays in the field so the cashier can correct it.
            state.notice = Some(error_notice(&error));
            state.go(Screen::AddGuest);
        }
    }
}

/// Puts an identified guest (the same one again, or a new one) on the order, with the gift the
/// code carried.
fn attach(state: &mut State, identification: Identification) {
    state.fields.code.clear();
    state.notice = None;
    if let Some(gift) = identification.gift {
        if state.order.has_gift(&gift.code) {
            state.notice = Some(Notice::info("info-gift-already-in-order"));
        } else {
            state.notice = Some(Notice::success("info-gift-added").with("gift", NoticeArg::Text(gift.name.clone())));
            state.order.lines.push(OrderLine {
                name: gift.name.clone(),
                quantity: 1,
                price: Kopecks::ZERO,
                gift: Some(gift),
            });
        }
    }
    state.guest = Some(identification.card);
    state.go(Screen::Guest);
}

/// «Новый гость»: the form, with the code as the card and the phone filled in when the code was
/// one.
fn start_enrol(state: &mut State) {
    let Some(offer) = state.enrol_offer.take() else {
        return;
    };
    if state.guest.is_some() || state.is_busy() {
        return;
    }
    state.fields.phone = match crate::domain::normalize_phone(&offer.code.payload) {
        Some(_) => offer.code.payload.clone(),
        None => String::new(),
    };
    state.fields.name.clear();
    state.notice = None;
    let op_id = state.next_op_id();
    state.go(Screen::Enrol(Enrolment {
        code: offer.code,
        welcome_bonus: offer.welcome_bonus,
        op_id,
    }));
}

fn submit_enrol(state: &mut State, effects: &mut Vec<Effect>) {
    let Screen::Enrol(enrolment) = &state.screen else {
        return;
    };
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    let phone = state.fields.phone.trim();
    if phone.is_empty() {
        state.notice = Some(Notice::error("err-enrol-phone-empty"));
        state.active_field = Some(Field::Phone);
        return;
    }
    if crate::domain::normalize_phone(phone).is_none() {
        state.notice = Some(Notice::error("err-enrol-phone-bad"));
        state.active_field = Some(Field::Phone);
        return;
    }
    let Ok(name) = crate::domain::guest_name(&state.fields.name) else {
        state.notice = Some(
            Notice::error("err-enrol-name").with("max", NoticeArg::Number(crate::domain::MAX_GUEST_NAME_CHARS as i64)),
        );
        state.active_field = Some(Field::Name);
        return;
    };
    let (op_id, code, phone) = (enrolment.op_id.clone(), enrolment.code.clone(), phone.to_string());
    state.notice = None;
    let request = state.next_request(Waiting::Enrol);
    effects.push(Effect::Enrol {
        request,
        op_id,
        code,
        phone,
        name,
    });
}

fn enrolled(state: &mut State, result: Result<Identification, LoyaltyError>) {
    let Screen::Enrol(enrolment) = state.screen.clone() else {
        return;
    };
    match result {
        Ok(identification) => {
            state.fields.phone.clear();
            state.fields.name.clear();
            attach(state, identification);
            if state.notice.is_none() {
                state.notice = Some(Notice::success("info-guest-enrolled").money("bonus", enrolment.welcome_bonus));
            }
        }
        Err(error) => {
            // The answer may have been lost on the way: the same op id again makes no second
            // guest. A refusal is final, and the corrected form is a new request.
            let in_doubt = matches!(error, LoyaltyError::Unavailable(_) | LoyaltyError::ServerAway(_));
            if !in_doubt {
                let op_id = state.next_op_id();
                state.screen = Screen::Enrol(Enrolment { op_id, ..enrolment });
            }
            state.active_field = match error {
                LoyaltyError::IdentifierTaken(IdentifierKind::Phone) | LoyaltyError::BadCode { .. } => {
                    Some(Field::Phone)
                }
                _ => state.active_field,
            };
            state.notice = Some(enrol_error_notice(&error));
        }
    }
}

/// Why an enrolment was refused, in the cashier's words.
pub fn enrol_error_notice(error: &LoyaltyError) -> Notice {
    match error {
        LoyaltyError::IdentifierTaken(IdentifierKind::Phone) => Notice::error("err-enrol-phone-taken"),
        LoyaltyError::IdentifierTaken(_) => Notice::error("err-enrol-code-taken"),
        LoyaltyError::BadCode { .. } => Notice::error("err-enrol-phone-bad"),
        LoyaltyError::OutOfRange(_) => {
            Notice::error("err-enrol-name").with("max", NoticeArg::Number(crate::domain::MAX_GUEST_NAME_CHARS as i64))
        }
        LoyaltyError::Unavailable(_) | LoyaltyError::ServerAway(AwayReason::NoEnrolment) => {
            Notice::error("err-enrol-offline")
        }
        other => error_notice(other),
    }
}

fn remove_guest(state: &mut State) {
    if state.guest.is_none() {
        return;
    }
    if state.in_payment() {
        cancel_payment(state, true);
        return;
    }
    if matches!(state.waiting, Some((_, Waiting::Identify))) {
        state.waiting = None;
    }
    state.detach_guest();
    state.notice = Some(Notice::info("info-guest-removed"));
    state.go(Screen::Idle);
}

fn add_order_line(state: &mut State) {
    match parse_amount(&state.fields.line_price) {
        Ok(price) if price > Kopecks::ZERO => {
            let number = state.order.lines.iter().filter(|l| l.gift.is_none()).count() + 1;
            state.order.lines.push(OrderLine {
                name: format!("#{number}"),
                quantity: 1,
                price,
                gift: None,
            });
            state.fields.line_price.clear();
            state.notice = None;
        }
        Ok(_) => state.notice = Some(Notice::error("err-amount-zero")),
        Err(error) => state.notice = Some(amount_notice(error)),
    }
}

fn start_payment(state: &mut State, effects: &mut Vec<Effect>) {
    if let Some(problem) = state.start_payment_blocker() {
        state.notice = Some(problem);
        return;
    }
    let Some(guest) = &state.guest else {
        return;
    };
    if state.in_payment() || state.is_busy() {
        return;
    }
    let guest = guest.guest_id;
    let check = state.order.check_info();
    state.notice = None;
    let request = state.next_request(Waiting::Calculate);
    effects.push(Effect::Calculate { request, guest, check });
}

fn confirm_payment(state: &mut State, effects: &mut Vec<Effect>) {
    let Screen::Payment { mode, quote } = state.screen.clone() else {
        return;
    };
    let Some(guest) = state.guest.as_ref().map(|g| g.guest_id) else {
        return;
    };
    if state.is_busy() {
        return;
    }
    if let Some(problem) = state.payment_blocker(&quote, mode) {
        // The form shows this beside the disabled button already; a press that gets here
        // (keyboard, test) is told the same.
        state.notice = Some(problem);
        return;
    }
    let Ok(spent) = state.form_spent(mode) else {
        return;
    };
    state.notice = None;
    let check = state.order.check_info();
    let op_id = state.next_op_id();
    if let Some(pos) = &state.pos {
        // The POS closes the check: the till binds the guest and holds; the POS's `paid`
        // commits through the same engine, its `cancel` voids.
        let order_id = pos.order_id.clone();
        let amount = if mode == PaymentMode::Spend {
            spent
        } else {
            Kopecks::ZERO
        };
        let request = state.next_request(Waiting::Hold);
        effects.push(Effect::PosConfirm {
            request,
            op_id,
            order_id,
            owner: guest,
            shares: vec![CardShare { guest, amount }],
        });
        let payment = PaymentInProgress {
            mode,
            spent: amount,
            stage: PaymentStage::Holding,
            hold: None,
            cancel_requested: false,
            then_remove_guest: false,
        };
        state.go(Screen::Processing { payment, quote });
        return;
    }
    // Nothing to spend is paid as when keeping bonuses: no hold.
    let (stage, effect) = if mode == PaymentMode::Spend && spent > Kopecks::ZERO {
        let request = state.next_request(Waiting::Hold);
        (
            PaymentStage::Holding,
            Effect::Hold {
                request,
                op_id,
                guest,
                amount: spent,
                check,
            },
        )
    } else {
        let request = state.next_request(Waiting::Commit);
        state.last_payment_op = Some(op_id.clone());
        let effect = Effect::CommitPayment {
            request,
            op_id,
            guest,
            hold: None,
            spent,
            check,
        };
        (PaymentStage::Committing, effect)
    };
    effects.push(effect);
    let payment = PaymentInProgress {
        mode,
        spent,
        stage,
        hold: None,
        cancel_requested: false,
        then_remove_guest: false,
    };
    state.go(Screen::Processing { payment, quote });
}

/// The POS's order replaces the typed lines (gift lines stay: they come from gift codes). During
/// a payment the check being paid is not changed under the cashier; the POS's next push (or
/// the cashier's next order) brings it.
fn pos_order(state: &mut State, shown: Option<PosOrderShown>) {
    let had = state.pos.is_some();
    state.pos = shown;
    if state.in_payment() {
        return;
    }
    match &state.pos {
        Some(shown) => {
            state.order.lines.retain(|l| l.gift.is_some());
            state.order.lines.extend(shown.lines.iter().cloned());
            if state.screen == Screen::Order {
                state.go(Screen::Idle);
            }
        }
        // The POS closed its order (paid or cancelled): its lines and its guest leave the till.
        None if had => {
            state.order.lines.retain(|l| l.gift.is_some());
            if state.guest.is_some() {
                state.detach_guest();
                state.notice = Some(Notice::info("pos-order-closed-on-pos"));
                state.go(Screen::Idle);
            }
        }
        None => {}
    }
}

fn cancel_payment(state: &mut State, remove_guest: bool) {
    match state.screen.clone() {
        Screen::PaymentChoice { .. } | Screen::Payment { .. } => {
            // No hold exists before confirmation; a pending calculation is simply dropped.
            state.waiting = None;
            finish_cancel(state, remove_guest, false);
        }
        Screen::Processing { mut payment, quote } => match payment.stage {
            PaymentStage::Holding => {
                payment.cancel_requested = true;
                payment.then_remove_guest |= remove_guest;
                state.screen = Screen::Processing { payment, quote };
            }
            PaymentStage::Voiding => {
                payment.then_remove_guest |= remove_guest;
                state.screen = Screen::Processing { payment, quote };
            }
            PaymentStage::Committing => state.notice = Some(Notice::info("info-wait")),
        },
        // Only the payment screens reach here (`remove_guest` checks before calling).
        _ => {}
    }
}

/// Back from a cancelled payment; `released` when a hold existed and was voided (only then does
/// the message speak of a released reserve).
fn finish_cancel(state: &mut State, remove_guest: bool, released: bool) {
    state.fields.spend.clear();
    state.fields.tendered.clear();
    if remove_guest {
        state.detach_guest();
        state.notice = Some(Notice::info("info-guest-removed"));
        state.go(Screen::Idle);
    } else {
        state.notice = Some(Notice::info(if released {
            "info-payment-cancelled"
        } else {
            "info-payment-cancelled-nothing-held"
        }));
        state.go(Screen::Guest);
    }
}

fn hold_placed(
    state: &mut State,
    request: RequestId,
    result: Result<HoldReceipt, LoyaltyError>,
    effects: &mut Vec<Effect>,
) {
    if !state.take_waiting(request, Waiting::Hold) {
        // An answer nobody waits for any more: never leave its bonuses held.
        if let Ok(receipt) = result {
            let op_id = state.next_op_id();
            let request = state.untracked_request();
            effects.push(Effect::VoidHold {
                request,
                op_id,
                hold: receipt.hold_id,
            });
        }
        return;
    }
    let Screen::Processing { mut payment, quote } = state.screen.clone() else {
        return;
    };
    let Some(guest) = state.guest.as_ref().map(|g| g.guest_id) else {
        return;
    };
    match result {
        Ok(receipt) => {
            payment.hold = Some(receipt.hold_id);
            let op_id = state.next_op_id();
            if payment.cancel_requested {
                payment.stage = PaymentStage::Voiding;
                let request = state.next_request(Waiting::Void);
                effects.push(Effect::VoidHold {
                    request,
                    op_id,
                    hold: receipt.hold_id,
                });
            } else {
                payment.stage = PaymentStage::Committing;
                state.last_payment_op = Some(op_id.clone());
                let request = state.next_request(Waiting::Commit);
                effects.push(Effect::CommitPayment {
                    request,
                    op_id,
                    guest,
                    hold: Some(receipt.hold_id),
                    spent: payment.spent,
                    check: state.order.check_info(),
                });
            }
            state.screen = Screen::Processing { payment, quote };
        }
        Err(error) => {
            if payment.cancel_requested {
                finish_cancel(state, payment.then_remove_guest, false);
            } else {
                state.notice = Some(error_notice(&error));
                state.go(Screen::Payment {
                    mode: payment.mode,
                    quote,
                });
            }
        }
    }
}

fn payment_committed(
    state: &mut State,
    result: Result<PaymentReceipt, LoyaltyError>,
    provisional: bool,
    effects: &mut Vec<Effect>,
) {
    let Screen::Processing { mut payment, quote } = state.screen.clone() else {
        return;
    };
    match result {
        Ok(receipt) => {
            if let Some(card) = state.guest.as_mut() {
                card.balance = receipt.balance_after;
                card.available = receipt.balance_after;
            }
            let notice = match (payment.mode, provisional) {
                (PaymentMode::Spend, false) => Notice::success("done-spent-accrued")
                    .money("spent", receipt.spent)
                    .money("accrued", receipt.accrued),
                (PaymentMode::Keep, false) => Notice::success("done-accrued").money("accrued", receipt.accrued),
                (PaymentMode::Spend, true) => Notice::info("done-spent-accrued-provisional")
                    .money("spent", receipt.spent)
                    .money("accrued", receipt.accrued),
                (PaymentMode::Keep, true) => Notice::info("done-accrued-provisional").money("accrued", receipt.accrued),
            };
            state.notice = Some(notice);
            state.go(Screen::Done {
                receipt,
                mode: payment.mode,
                provisional,
            });
        }
        Err(error) => {
            state.notice = Some(error_notice(&error));
            match payment.hold {
                // The commit was refused: the hold is still there and must be released.
                Some(hold) => {
                    payment.stage = PaymentStage::Voiding;
                    let op_id = state.next_op_id();
                    let request = state.next_request(Waiting::Void);
                    effects.push(Effect::VoidHold { request, op_id, hold });
                    state.screen = Screen::Processing { payment, quote };
                }
                None => state.go(Screen::Payment {
                    mode: payment.mode,
                    quote,
                }),
            }
        }
    }
}

fn hold_voided(state: &mut State, result: Result<(), LoyaltyError>) {
    let Screen::Processing { payment, quote } = state.screen.clone() else {
        return;
    };
    match result {
        Ok(()) => {
            // The guest may have been removed while a failed commit's hold was being released.
            if payment.cancel_requested || payment.then_remove_guest {
                finish_cancel(state, payment.then_remove_guest, true);
            } else {
                // The commit failed and its hold is released: the cashier may try again.
                // The commit's error message stays on screen.
                state.go(Screen::Payment {
                    mode: payment.mode,
                    quote,
                });
            }
        }
        Err(error) => {
            state.notice = Some(error_notice(&error));
            state.go(Screen::Payment {
                mode: payment.mode,
                quote,
            });
        }
    }
}

fn demo_order_lines() -> Vec<OrderLine> {
    let line = |name: &str, quantity: i64, roubles: i64| OrderLine {
        name: name.to_string(),
        quantity,
        price: Kopecks::from_roubles(roubles),
        gift: None,
    };
    vec![
        line("Капучино", 2, 220),
        line("Круассан", 1, 180),
        line("Салат Цезарь", 1, 450),
    ]
}

/// The message key of a refused read (the devices screen shows it for reads it only tests).
pub fn refusal_key(refusal: ScanRefusal) -> &'static str {
    match refusal {
        ScanRefusal::Garbled => "err-scan-garbled",
        ScanRefusal::SwipeAgain => "err-swipe-again",
        ScanRefusal::QrForged => "err-qr-forged",
        ScanRefusal::QrExpired => "err-qr-expired",
        ScanRefusal::QrClock => "err-qr-clock",
        ScanRefusal::QrUnknown => "err-qr-unknown",
        ScanRefusal::ClipboardEmpty => "err-clipboard-empty",
        ScanRefusal::ClipboardNoQr => "err-clipboard-no-qr",
        ScanRefusal::QrNoKey => "err-qr-no-key",
    }
}

// ----- Closing the shift -----

fn open_shift(state: &mut State, effects: &mut Vec<Effect>) {
    if state.in_payment() {
        state.notice = Some(Notice::error("err-finish-payment-first"));
        return;
    }
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    if matches!(state.screen, Screen::Done { .. }) {
        // The check on the success screen is closed: the till starts afresh, as «Новый заказ».
        state.guest = None;
        state.order = Order::default();
    }
    state.notice = None;
    state.go(Screen::Shift(ShiftStep::List { ends: None }));
    load_loose_ends(state, effects);
}

fn load_loose_ends(state: &mut State, effects: &mut Vec<Effect>) {
    let request = state.next_request(Waiting::LooseEnds);
    effects.push(Effect::LoadLooseEnds { request });
}

fn settle_loose_end(state: &mut State, index: usize, effects: &mut Vec<Effect>) {
    let Screen::Shift(ShiftStep::List { ends: Some(ends) }) = &state.screen else {
        return;
    };
    let Some(end) = ends.get(index).cloned() else {
        return;
    };
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    state.notice = None;
    let op_id = state.next_op_id();
    let request = state.next_request(Waiting::Settle);
    effects.push(Effect::SettleLooseEnd { request, op_id, end });
}

fn show_shift_report(state: &mut State, effects: &mut Vec<Effect>) {
    if !matches!(state.screen, Screen::Shift(_)) {
        return;
    }
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    state.notice = None;
    state.go(Screen::Shift(ShiftStep::Report {
        report: None,
        saved: None,
    }));
    let request = state.next_request(Waiting::ShiftReport);
    effects.push(Effect::ShiftReport { request });
}

fn save_shift_report(state: &mut State, dir: PathBuf, file_name: String, contents: String, effects: &mut Vec<Effect>) {
    if !matches!(state.screen, Screen::Shift(ShiftStep::Report { report: Some(_), .. })) {
        return;
    }
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    if dir.as_os_str().is_empty() {
        state.notice = Some(Notice::error("shift-report-no-folder"));
        return;
    }
    state.notice = None;
    let request = state.next_request(Waiting::SaveReport);
    effects.push(Effect::SaveFile {
        request,
        dir,
        file_name,
        contents,
    });
}

// ----- Returns -----

fn open_returns(state: &mut State, last_check: bool, effects: &mut Vec<Effect>) {
    let from_done = matches!(state.screen, Screen::Done { .. } | Screen::SplitDone { .. });
    if state.in_payment() {
        state.notice = Some(Notice::error("err-finish-payment-first"));
        return;
    }
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    if from_done {
        // The check on the success screen is closed: the till starts afresh, as «Новый заказ».
        state.guest = None;
        state.order = Order::default();
    }
    state.fields.return_query.clear();
    state.fields.return_amount.clear();
    state.notice = None;
    state.found_checks = None;
    state.return_target = if last_check {
        state.last_payment_op.clone()
    } else {
        None
    };
    state.go(Screen::Returns(ReturnStep::Find { checks: None }));
    search(
        state,
        CheckFilter {
            today: true,
            ..CheckFilter::default()
        },
        effects,
    );
}

fn search(state: &mut State, filter: CheckFilter, effects: &mut Vec<Effect>) {
    let request = state.next_request(Waiting::FindChecks);
    effects.push(Effect::FindChecks { request, filter });
}

fn find_checks(state: &mut State, how: ReturnSearch, effects: &mut Vec<Effect>) {
    if !matches!(state.screen, Screen::Returns(ReturnStep::Find { .. })) {
        return;
    }
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    let query = state.fields.return_query.trim().to_string();
    let filter = match how {
        ReturnSearch::Today => CheckFilter {
            today: true,
            ..CheckFilter::default()
        },
        ReturnSearch::Number => match query.parse::<i64>() {
            Ok(number) if number > 0 => CheckFilter {
                number: Some(number),
                ..CheckFilter::default()
            },
            _ => {
                state.notice = Some(Notice::error("err-return-number"));
                return;
            }
        },
        ReturnSearch::Guest if query.is_empty() => {
            state.notice = Some(Notice::error("err-code-empty"));
            return;
        }
        ReturnSearch::Guest if query.chars().count() > MAX_CODE_LEN => {
            state.notice = Some(Notice::error("err-code-too-long").with("max", NoticeArg::Number(MAX_CODE_LEN as i64)));
            return;
        }
        ReturnSearch::Guest => CheckFilter {
            guest_code: Some(query),
            ..CheckFilter::default()
        },
    };
    state.notice = None;
    search(state, filter, effects);
}

fn checks_found(state: &mut State, result: Result<Vec<CheckSummary>, LoyaltyError>) {
    if !matches!(state.screen, Screen::Returns(ReturnStep::Find { .. })) {
        return;
    }
    match result {
        Ok(checks) => {
            state.notice = checks.is_empty().then(|| Notice::info("returns-none-found"));
            let target = state.return_target.take();
            let chosen = target.and_then(|op| checks.iter().find(|c| c.op_id == op).cloned());
            state.found_checks = Some(checks.clone());
            match chosen {
                Some(check) => {
                    state.return_lines = vec![0; check.lines.len()];
                    state.go(Screen::Returns(ReturnStep::Choose { check }));
                }
                None => state.screen = Screen::Returns(ReturnStep::Find { checks: Some(checks) }),
            }
        }
        Err(error) => {
            state.notice = Some(return_error_notice(&error));
            state.screen = Screen::Returns(ReturnStep::Find {
                checks: state.found_checks.clone(),
            });
        }
    }
}

fn choose_check(state: &mut State, number: i64) {
    let Screen::Returns(ReturnStep::Find { checks: Some(checks) }) = &state.screen else {
        return;
    };
    let Some(check) = checks.iter().find(|c| c.number == number).cloned() else {
        return;
    };
    if check.left() <= Kopecks::ZERO {
        state.notice = Some(Notice::error("err-return-already-full"));
        return;
    }
    state.notice = None;
    state.fields.return_amount.clear();
    state.return_lines = vec![0; check.lines.len()];
    state.go(Screen::Returns(ReturnStep::Choose { check }));
}

/// «+» / «−» on a line of the chosen check: within what is left of the line.
fn step_return_line(state: &mut State, line: usize, more: bool) {
    let Screen::Returns(ReturnStep::Choose { check }) = &state.screen else {
        return;
    };
    let Some(left) = check.lines.get(line).map(CheckLine::left) else {
        return;
    };
    if state.return_lines.len() != check.lines.len() {
        state.return_lines = vec![0; check.lines.len()];
    }
    let chosen = &mut state.return_lines[line];
    *chosen = if more {
        (*chosen + 1).min(left.max(0))
    } else {
        (*chosen - 1).max(0)
    };
    state.notice = None;
}

/// The units picked of each line as a return, or `None` when none is picked.
pub fn chosen_lines(picked: &[i64]) -> Option<Vec<LineReturn>> {
    let lines: Vec<LineReturn> = picked
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(line, n)| LineReturn { line, quantity: *n })
        .collect();
    (!lines.is_empty()).then_some(lines)
}

/// The amount of a partial return as typed, checked against what is left of the check (the
/// ledger decides again; this only saves the cashier a round trip for a typing slip).
pub fn return_amount(text: &str, check: &CheckSummary) -> Result<Kopecks, Notice> {
    let amount = parse_amount(text).map_err(amount_notice)?;
    if amount <= Kopecks::ZERO {
        return Err(Notice::error("err-amount-zero"));
    }
    if amount > check.left() {
        return Err(Notice::error("err-return-over").money("left", check.left()));
    }
    Ok(amount)
}

fn preview_return(state: &mut State, mode: ReturnMode, effects: &mut Vec<Effect>) {
    let Screen::Returns(ReturnStep::Choose { check }) = &state.screen else {
        return;
    };
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    let part = match mode {
        ReturnMode::Full => ReturnPart::Rest,
        ReturnMode::Partial => match return_amount(&state.fields.return_amount, check) {
            Ok(amount) => ReturnPart::Amount(amount),
            Err(notice) => {
                state.notice = Some(notice);
                return;
            }
        },
        ReturnMode::Lines => match chosen_lines(&state.return_lines) {
            Some(lines) => ReturnPart::Lines(lines),
            None => {
                state.notice = Some(Notice::error("err-return-no-lines"));
                return;
            }
        },
    };
    let payment_op_id = check.op_id.clone();
    state.notice = None;
    state.pending_return_part = part.clone();
    let request = state.next_request(Waiting::PreviewReturn);
    effects.push(Effect::PreviewReturn {
        request,
        payment_op_id,
        part,
    });
}

fn return_previewed(state: &mut State, result: Result<RefundReceipt, LoyaltyError>) {
    let Screen::Returns(ReturnStep::Choose { check }) = state.screen.clone() else {
        return;
    };
    match result {
        Ok(preview) => {
            let part = std::mem::take(&mut state.pending_return_part);
            state.go(Screen::Returns(ReturnStep::Preview {
                check,
                part,
                preview,
                op_id: None,
            }));
        }
        Err(error) => state.notice = Some(return_error_notice(&error)),
    }
}

fn confirm_return(state: &mut State, effects: &mut Vec<Effect>) {
    let Screen::Returns(ReturnStep::Preview {
        check,
        part,
        preview,
        op_id,
    }) = state.screen.clone()
    else {
        return;
    };
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    // A confirmation that got no answer is sent again under its first id: the ledger answers
    // the first result instead of returning the check twice.
    let op_id = op_id.unwrap_or_else(|| state.next_op_id());
    state.notice = None;
    let request = state.next_request(Waiting::Return);
    effects.push(Effect::Return {
        request,
        op_id: op_id.clone(),
        payment_op_id: check.op_id.clone(),
        part: part.clone(),
    });
    state.go(Screen::Returns(ReturnStep::Sending {
        check,
        part,
        preview,
        op_id,
    }));
}

fn returned(state: &mut State, result: Result<RefundReceipt, LoyaltyError>) {
    let Screen::Returns(ReturnStep::Sending {
        check,
        part,
        preview,
        op_id,
    }) = state.screen.clone()
    else {
        return;
    };
    match result {
        Ok(receipt) => {
            // A guest still on the order is this check's guest: their card shows the new balance.
            if let Some(card) = state.guest.as_mut().filter(|g| g.guest_id == check.guest) {
                card.available = card.available + receipt.spend_returned - receipt.accrual_taken;
                card.balance = receipt.balance_after;
            }
            state.notice = Some(if receipt.unrecovered > Kopecks::ZERO {
                Notice::info("returns-done-shortfall").money("unrecovered", receipt.unrecovered)
            } else {
                Notice::success("returns-done")
            });
            state.found_checks = None;
            state.go(Screen::Returns(ReturnStep::Done { check, receipt }));
        }
        Err(error) => {
            // Refused: the preview stays, with the reason. No answer: the same id is kept, so
            // «Подтвердить» again cannot return the check twice.
            let in_doubt = matches!(error, LoyaltyError::Unavailable(_) | LoyaltyError::ServerAway(_));
            state.notice = Some(return_error_notice(&error));
            state.go(Screen::Returns(ReturnStep::Preview {
                check,
                part,
                preview,
                op_id: in_doubt.then_some(op_id),
            }));
        }
    }
}

// ----- Several cards on one check (seed 003) -----

/// One card on a check paid from several bonus accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitCard {
    pub card: GuestCard,
    /// This account's own quote on the check: its available balance and every limit of it.
    pub quote: SpendQuote,
    /// Why the ledger refused this card at the last attempt, shown on its row.
    pub refused: Option<Notice>,
}

/// Where a check paid from several accounts stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitStage {
    /// The cashier adds cards and types amounts.
    Editing,
    /// Waiting for the holds (all placed or none).
    Holding,
    /// Waiting for the commit of these holds, sent with `op_id`.
    Committing { op_id: String, holds: Vec<Option<HoldId>> },
    /// The commit got no answer: it may have been booked. «Провести оплату» sends the same
    /// commit again (its operation id makes a repeat harmless); nothing is released meanwhile.
    InDoubt { op_id: String, holds: Vec<Option<HoldId>> },
}

/// «Добавить карту»: the cards presented one after another, each with its own amount (in
/// `Fields::card_amounts`, same order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitPayment {
    pub cards: Vec<SplitCard>,
    /// The card whose guest owns the check and gets the accrual: the first by default.
    pub owner: usize,
    pub stage: SplitStage,
    /// A card identified and waiting for its quote.
    pub pending: Option<GuestCard>,
}

/// What one card paid of a check paid from several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitLine {
    pub name: String,
    pub owner: bool,
    pub receipt: PaymentReceipt,
}

impl SplitPayment {
    /// The check's quote: the owner's (their group sets the amount due and the check's limits).
    pub fn check_quote(&self) -> &SpendQuote {
        &self.cards[self.owner.min(self.cards.len() - 1)].quote
    }
}

impl State {
    /// Each card's amount as typed, or the first card whose amount is wrong, with why.
    pub fn split_amounts(&self, split: &SplitPayment) -> Result<Vec<Kopecks>, Notice> {
        let card_notice = |index: usize, notice: Notice| notice.with("card", NoticeArg::Number(index as i64 + 1));
        let mut amounts = Vec::with_capacity(split.cards.len());
        for (index, card) in split.cards.iter().enumerate() {
            let text = self.fields.get(Field::CardAmount(index));
            let amount = match parse_amount(text) {
                Ok(amount) => amount,
                Err(AmountError::Empty) => Kopecks::ZERO,
                Err(error) => return Err(card_notice(index, amount_notice(error))),
            };
            if amount < Kopecks::ZERO {
                return Err(card_notice(index, Notice::error("err-amount-zero")));
            }
            if amount > card.quote.max_spend {
                return Err(card_notice(
                    index,
                    Notice::error("err-over-max").money("max", card.quote.max_spend),
                ));
            }
            if amount.floor_to_step(card.quote.spend_step) != amount {
                return Err(card_notice(
                    index,
                    Notice::error("err-spend-step").money("step", card.quote.spend_step),
                ));
            }
            amounts.push(amount);
        }
        Ok(amounts)
    }

    /// The sum of the cards' amounts, when every amount is right.
    pub fn split_total(&self, split: &SplitPayment) -> Option<Kopecks> {
        let amounts = self.split_amounts(split).ok()?;
        Some(amounts.iter().fold(Kopecks::ZERO, |sum, a| sum + *a))
    }

    /// What keeps «Провести оплату» disabled on the several-cards form; `None`: it can be pressed.
    pub fn split_blocker(&self, split: &SplitPayment) -> Option<Notice> {
        let total = match self.split_amounts(split) {
            Ok(amounts) => amounts.iter().fold(Kopecks::ZERO, |sum, a| sum + *a),
            Err(notice) => return Some(notice),
        };
        let check_max = split.check_quote().check_max();
        if total > check_max {
            return Some(Notice::error("split-over-check").money("max", check_max));
        }
        let remainder = State::remainder(split.check_quote(), total);
        if self.tender != TenderMethod::Cash || remainder <= Kopecks::ZERO {
            return None;
        }
        match parse_amount(&self.fields.tendered) {
            Ok(tendered) if tendered >= remainder => None,
            Ok(_) | Err(AmountError::Empty) => Some(Notice::error("err-tendered-short").money("remainder", remainder)),
            Err(error) => Some(amount_notice(error)),
        }
    }
}

/// «Добавить карту» on the spend form: the check goes on the several-cards form, the first
/// guest's card with the amount typed so far.
fn add_card(state: &mut State) {
    let Screen::Payment { quote, .. } = state.screen.clone() else {
        return;
    };
    let Some(card) = state.guest.clone() else {
        return;
    };
    if state.is_busy() {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    state.fields.card_amounts = vec![state.fields.spend.clone()];
    state.fields.code.clear();
    state.notice = Some(Notice::info("split-scan-next"));
    state.go(Screen::Split(SplitPayment {
        cards: vec![SplitCard {
            card,
            quote,
            refused: None,
        }],
        owner: 0,
        stage: SplitStage::Editing,
        pending: None,
    }));
}

/// Another card was read: the same account twice is refused here with the reason (the ledger
/// refuses it too); a new one is quoted on the check before it joins.
fn split_identified(state: &mut State, result: Result<Identification, LoyaltyError>, effects: &mut Vec<Effect>) {
    let Screen::Split(split) = &mut state.screen else {
        return;
    };
    let identification = match result {
        Ok(identification) => identification,
        Err(error) => {
            state.notice = Some(error_notice(&error));
            return;
        }
    };
    state.fields.code.clear();
    let guest = identification.card.guest_id;
    if split.cards.iter().any(|c| c.card.guest_id == guest) {
        let card = split.cards.len() + 1;
        state.notice = Some(error_notice(&LoyaltyError::CardRefused {
            card,
            reason: Box::new(LoyaltyError::SameAccountOnCheck),
        }));
        return;
    }
    split.pending = Some(identification.card);
    let check = state.order.check_info();
    let request = state.next_request(Waiting::Calculate);
    effects.push(Effect::Calculate { request, guest, check });
}

fn split_quoted(state: &mut State, result: Result<SpendQuote, LoyaltyError>) {
    let Screen::Split(split) = &mut state.screen else {
        return;
    };
    let Some(card) = split.pending.take() else {
        return;
    };
    match result {
        Ok(quote) => {
            // The new card offers what it can still pay: its own maximum, within what the
            // check has left.
            let amounts = state
                .fields
                .card_amounts
                .iter()
                .map(|t| parse_amount(t).unwrap_or(Kopecks::ZERO));
            let used = amounts.fold(Kopecks::ZERO, |sum, a| sum + a);
            let room = split.check_quote().check_max().saturating_sub(used);
            let offer = quote
                .max_spend
                .min(room)
                .floor_to_step(quote.spend_step)
                .max(Kopecks::ZERO);
            let index = split.cards.len();
            split.cards.push(SplitCard {
                card,
                quote,
                refused: None,
            });
            state.fields.card_amounts.resize(index, String::new());
            state.fields.card_amounts.push(amount_input_text(offer));
            state.notice = None;
            state.prefilled = Some(Field::CardAmount(index));
            state.active_field = Some(Field::CardAmount(index));
        }
        Err(error) => {
            let card = split.cards.len() + 1;
            state.notice = Some(error_notice(&LoyaltyError::CardRefused {
                card,
                reason: Box::new(error),
            }));
        }
    }
}

fn remove_card(state: &mut State, index: usize) {
    let Screen::Split(split) = &mut state.screen else {
        return;
    };
    if split.stage != SplitStage::Editing || index == 0 || index >= split.cards.len() {
        return;
    }
    split.cards.remove(index);
    if index < state.fields.card_amounts.len() {
        state.fields.card_amounts.remove(index);
    }
    split.owner = match split.owner {
        owner if owner == index => 0,
        owner if owner > index => owner - 1,
        owner => owner,
    };
    state.notice = None;
    state.active_field = Some(Field::Code);
}

fn split_exact_amount(state: &mut State) {
    let Screen::Split(split) = &state.screen else {
        return;
    };
    match state.split_amounts(split) {
        Ok(amounts) => {
            let total = amounts.iter().fold(Kopecks::ZERO, |sum, a| sum + *a);
            state.fields.tendered = amount_input_text(State::remainder(split.check_quote(), total));
            state.prefilled = Some(Field::Tendered);
            state.notice = None;
        }
        Err(notice) => state.notice = Some(notice),
    }
}

/// Back to one card: the first card's amount returns to the spend form.
fn split_cancel(state: &mut State) {
    let Screen::Split(split) = state.screen.clone() else {
        return;
    };
    if split.stage != SplitStage::Editing {
        state.notice = Some(Notice::info("info-wait"));
        return;
    }
    if matches!(state.waiting, Some((_, Waiting::Identify | Waiting::Calculate))) {
        state.waiting = None;
    }
    state.fields.spend = state.fields.card_amounts.first().cloned().unwrap_or_default();
    state.fields.card_amounts.clear();
    state.notice = None;
    let quote = split.cards[0].quote.clone();
    state.go(Screen::Payment {
        mode: PaymentMode::Spend,
        quote,
    });
}

fn split_confirm(state: &mut State, effects: &mut Vec<Effect>) {
    let Screen::Split(mut split) = state.screen.clone() else {
        return;
    };
    if state.is_busy() {
        return;
    }
    let owner = split.cards[split.owner].card.guest_id;
    let check = state.order.check_info();
    if let SplitStage::InDoubt { op_id, holds } = split.stage.clone() {
        // The same commit again: booked once whatever happened to the first.
        let payments = split_payments(state, &split, &holds);
        let request = state.next_request(Waiting::SharedCommit);
        state.last_payment_op = Some(op_id.clone());
        effects.push(Effect::CommitShared {
            request,
            op_id: op_id.clone(),
            owner,
            payments,
            check,
        });
        state.notice = None;
        split.stage = SplitStage::Committing { op_id, holds };
        state.screen = Screen::Split(split);
        return;
    }
    if split.stage != SplitStage::Editing {
        return;
    }
    if let Some(problem) = state.split_blocker(&split) {
        state.notice = Some(problem);
        return;
    }
    let Ok(amounts) = state.split_amounts(&split) else {
        return;
    };
    for card in &mut split.cards {
        card.refused = None;
    }
    let shares = split
        .cards
        .iter()
        .zip(&amounts)
        .map(|(card, amount)| CardShare {
            guest: card.card.guest_id,
            amount: *amount,
        })
        .collect();
    let op_id = state.next_op_id();
    let request = state.next_request(Waiting::SharedHold);
    if let Some(pos) = &state.pos {
        // The POS closes the check: the till holds on every card, the POS's `paid` commits
        // them together (its `cancel` voids them).
        effects.push(Effect::PosConfirm {
            request,
            op_id,
            order_id: pos.order_id.clone(),
            owner,
            shares,
        });
    } else {
        effects.push(Effect::HoldShared {
            request,
            op_id,
            owner,
            shares,
            check,
        });
    }
    state.notice = None;
    split.stage = SplitStage::Holding;
    state.screen = Screen::Split(split);
}

/// The POS took the guest (and `held` bonuses, if any) for its order: the guest's card shows
/// again, with what the POS will take as the bonus payment.
fn pos_bound(state: &mut State, held: Kopecks) {
    state.fields.spend.clear();
    state.fields.tendered.clear();
    state.notice = Some(if held > Kopecks::ZERO {
        Notice::success("pos-held-wait").money("amount", held)
    } else {
        Notice::success("pos-guest-bound")
    });
    state.go(Screen::Guest);
}

/// The POS order's holds on several cards were placed (or refused, nothing held): placed, the
/// guest's card shows again with what the POS will take as the bonus payment.
fn pos_split_confirmed(state: &mut State, request: RequestId, result: Result<Kopecks, Notice>) {
    if !state.take_waiting(request, Waiting::SharedHold) {
        return;
    }
    let Screen::Split(mut split) = state.screen.clone() else {
        return;
    };
    match result {
        Ok(held) => {
            state.fields.card_amounts.clear();
            pos_bound(state, held);
        }
        Err(notice) => {
            split.stage = SplitStage::Editing;
            state.notice = Some(notice);
            state.screen = Screen::Split(split);
        }
    }
}

/// Each card's part of the commit: its hold and its amount as typed.
fn split_payments(state: &State, split: &SplitPayment, holds: &[Option<HoldId>]) -> Vec<CardPayment> {
    let amounts = state.split_amounts(split).unwrap_or_default();
    split
        .cards
        .iter()
        .enumerate()
        .map(|(index, card)| CardPayment {
            guest: card.card.guest_id,
            hold: holds.get(index).copied().flatten(),
            spent: amounts.get(index).copied().unwrap_or(Kopecks::ZERO),
        })
        .collect()
}

/// Marks the card a refusal names (the ledger counts cards from 1) and says why.
fn split_refused(state: &mut State, split: &mut SplitPayment, error: &LoyaltyError) {
    if let LoyaltyError::CardRefused { card, reason } = error
        && let Some(row) = split.cards.get_mut(card.saturating_sub(1))
    {
        row.refused = Some(error_notice(reason));
    }
    state.notice = Some(error_notice(error));
}

fn shared_holds_placed(
    state: &mut State,
    request: RequestId,
    result: Result<Vec<Option<HoldReceipt>>, LoyaltyError>,
    effects: &mut Vec<Effect>,
) {
    if !state.take_waiting(request, Waiting::SharedHold) {
        // An answer nobody waits for any more: never leave its bonuses held.
        for receipt in result.into_iter().flatten().flatten() {
            let op_id = state.next_op_id();
            let request = state.untracked_request();
            effects.push(Effect::VoidHold {
                request,
                op_id,
                hold: receipt.hold_id,
            });
        }
        return;
    }
    let Screen::Split(mut split) = state.screen.clone() else {
        return;
    };
    match result {
        Ok(receipts) => {
            let holds: Vec<Option<HoldId>> = receipts.iter().map(|r| r.as_ref().map(|r| r.hold_id)).collect();
            let payments = split_payments(state, &split, &holds);
            let owner = split.cards[split.owner].card.guest_id;
            let op_id = state.next_op_id();
            state.last_payment_op = Some(op_id.clone());
            let request = state.next_request(Waiting::SharedCommit);
            effects.push(Effect::CommitShared {
                request,
                op_id: op_id.clone(),
                owner,
                payments,
                check: state.order.check_info(),
            });
            split.stage = SplitStage::Committing { op_id, holds };
        }
        Err(error) => {
            // Nothing was held for any card: the cashier corrects the one named and tries again.
            split.stage = SplitStage::Editing;
            split_refused(state, &mut split, &error);
        }
    }
    state.screen = Screen::Split(split);
}

fn shared_payment_committed(
    state: &mut State,
    result: Result<Vec<PaymentReceipt>, LoyaltyError>,
    effects: &mut Vec<Effect>,
) {
    let Screen::Split(mut split) = state.screen.clone() else {
        return;
    };
    let SplitStage::Committing { op_id, holds } = split.stage.clone() else {
        return;
    };
    match result {
        Ok(receipts) => {
            let lines: Vec<SplitLine> = split
                .cards
                .iter()
                .zip(receipts)
                .enumerate()
                .map(|(index, (card, receipt))| SplitLine {
                    name: card.card.label(),
                    owner: index == split.owner,
                    receipt,
                })
                .collect();
            // The guest on the order is the first card's: their card shows the new balance.
            if let (Some(guest), Some(first)) = (state.guest.as_mut(), lines.first()) {
                guest.balance = first.receipt.balance_after;
                guest.available = first.receipt.balance_after;
            }
            let spent = lines.iter().fold(Kopecks::ZERO, |sum, l| sum + l.receipt.spent);
            let accrued = lines.iter().fold(Kopecks::ZERO, |sum, l| sum + l.receipt.accrued);
            state.notice = Some(
                Notice::success("split-done")
                    .money("spent", spent)
                    .money("accrued", accrued)
                    .with("cards", NoticeArg::Number(lines.len() as i64)),
            );
            state.fields.card_amounts.clear();
            state.go(Screen::SplitDone { lines });
        }
        Err(LoyaltyError::Unavailable(_) | LoyaltyError::ServerAway(_)) => {
            state.notice = Some(Notice::error("split-in-doubt"));
            split.stage = SplitStage::InDoubt { op_id, holds };
            state.screen = Screen::Split(split);
        }
        Err(error) => {
            // Refused, so nothing was debited: every hold is released, and the cashier sees
            // which card and why.
            for hold in holds.into_iter().flatten() {
                let op_id = state.next_op_id();
                let request = state.untracked_request();
                effects.push(Effect::VoidHold { request, op_id, hold });
            }
            split.stage = SplitStage::Editing;
            split_refused(state, &mut split, &error);
            state.screen = Screen::Split(split);
        }
    }
}

/// The refusals a return meets, each in its own words; the rest as any backend refusal.
pub fn return_error_notice(error: &LoyaltyError) -> Notice {
    match error {
        LoyaltyError::RefundOverPayment { left, .. } if *left <= Kopecks::ZERO => {
            Notice::error("err-return-already-full")
        }
        LoyaltyError::RefundOverPayment { left, .. } => Notice::error("err-return-over").money("left", *left),
        LoyaltyError::LineOverReturn { line, left } => Notice::error("err-return-line-over")
            .with("line", NoticeArg::Text(line.clone()))
            .with("left", NoticeArg::Number(*left)),
        LoyaltyError::UnknownPayment => Notice::error("err-return-unknown-check"),
        other => error_notice(other),
    }
}

/// One message key per amount refusal.
pub fn amount_notice(error: AmountError) -> Notice {
    Notice::error(match error {
        AmountError::Empty => "err-amount-empty",
        AmountError::NotANumber => "err-amount-not-number",
        AmountError::TooManyDecimals => "err-amount-decimals",
        AmountError::TooLarge => "err-amount-too-large",
    })
}

/// One message key per backend refusal; amounts travel as arguments.
pub fn error_notice(error: &LoyaltyError) -> Notice {
    match error {
        LoyaltyError::UnknownCode => Notice::error("err-unknown-code"),
        LoyaltyError::BadCode { max } => Notice::error("err-code-too-long").with("max", NoticeArg::Number(*max as i64)),
        LoyaltyError::GiftAlreadyUsed => Notice::error("err-gift-used"),
        LoyaltyError::GuestBlocked => Notice::error("err-guest-blocked"),
        LoyaltyError::SameAccountOnCheck => Notice::error("err-same-account"),
        LoyaltyError::CardRefused { card, reason } => {
            error_notice(reason).with("card", NoticeArg::Number(i64::try_from(*card).unwrap_or(i64::MAX)))
        }
        LoyaltyError::EnrolmentOff => Notice::error("err-enrol-off"),
        LoyaltyError::DailyOperationsLimit { limit } => {
            Notice::error("err-daily-ops-limit").with("limit", NoticeArg::Number(*limit))
        }
        LoyaltyError::OverMaximum { max, .. } => Notice::error("err-over-max").money("max", *max),
        LoyaltyError::NotAMultipleOfStep { step } => Notice::error("err-spend-step").money("step", *step),
        LoyaltyError::NonPositiveAmount => Notice::error("err-amount-zero"),
        LoyaltyError::UnknownHold | LoyaltyError::HoldNotOpen { .. } => Notice::error("err-hold-lost"),
        LoyaltyError::CommitOverHold { .. }
        | LoyaltyError::OperationIdConflict
        | LoyaltyError::OutOfRange(_)
        | LoyaltyError::IdentifierTaken(_)
        | LoyaltyError::GroupThresholdClash(_)
        | LoyaltyError::AccountNameTaken(_)
        | LoyaltyError::UnknownPayment
        | LoyaltyError::RefundOverPayment { .. }
        | LoyaltyError::LineOverReturn { .. }
        | LoyaltyError::InvalidReward(_) => Notice::error("err-ledger-refused"),
        LoyaltyError::Unavailable(_) => Notice::error("err-backend-unavailable"),
        LoyaltyError::Storage(_) => Notice::error("err-storage"),
        LoyaltyError::ServerAway(AwayReason::GuestNotCached) => Notice::error("err-offline-unknown-guest"),
        LoyaltyError::ServerAway(AwayReason::SpendingOff) => Notice::error("err-offline-no-spending"),
        LoyaltyError::ServerAway(AwayReason::TokenRefused) => Notice::error("err-token-refused"),
        LoyaltyError::ServerAway(AwayReason::NoEnrolment) => Notice::error("err-enrol-offline"),
        LoyaltyError::ServerAway(AwayReason::NoSharedPayment) => Notice::error("err-split-offline"),
        LoyaltyError::ServerAway(AwayReason::NoShiftReport) => Notice::error("err-shift-report-offline"),
    }
}
