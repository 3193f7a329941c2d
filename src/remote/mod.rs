//! The till's side of the loyalty server: [`ServerBackend`] implements [`LoyaltyBackend`] over
//! the REST API (blocking HTTP on the worker thread), with a journal that makes every write
//! exact across lost answers, resets, server restarts and till restarts.
//!
//! - Every write is saved in the journal with its body before it is sent, and marked done or
//!   failed when the answer comes. No answer (timeout, reset, server down, 5xx) leaves it pending:
//!   in doubt.
//! - In doubt is resolved at start-up and before the next call once the server answers again,
//!   by sending the same body (the server answers a repeated op id with its first result):
//!   a commit is finished; a hold whose answer was lost is learnt and voided (the cashier never
//!   got it); a void is sent again, and if the server says the hold was committed after all,
//!   the commit is refunded in full, because the cashier was told it failed.
//! - At start-up, holds the server granted that no commit or void closed are voided.
//! - Offline, a check closed without spending bonuses is queued (its accrual is sent later,
//!   exactly once) and the cashier gets a provisional receipt; spending bonuses offline is refused.
//!
//! Plain HTTP: TLS is left to a reverse proxy. The token is never logged.

pub mod journal;

use crate::backend::{BackendKind, Clock, LoyaltyBackend};
use crate::domain::{
    CheckInfo, GuestCard, GuestId, HistoryEntry, HoldId, HoldReceipt, Identification, LoyaltyError, PaymentReceipt,
    ScanEvent, SpendQuote,
};
use crate::money::Kopecks;
use crate::wire::{self, ErrorBody};
use journal::{Entry, Journal, OpKind, OpState};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Where the till finds its server (`[server]` in config.toml).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// `http://host:port`; empty: the embedded ledger.
    pub url: String,
    /// The till's token from `loyalty-till till-token create` (a secret).
    pub token: String,
    /// Seconds to wait for an answer.
    pub timeout_secs: u64,
    /// Spending bonuses while the server is away, per guest within a shift, in kopecks; 0 (the
    /// default) keeps it off. The owner takes the risk: the server later debits what the guest
    /// still has.
    pub offline_spend_per_guest: i64,
    /// All offline spending of this till within a shift, in kopecks; 0: only the per-guest cap.
    pub offline_spend_per_shift: i64,
    /// How long a shift is for the caps, in hours (default 12).
    pub offline_shift_hours: i64,
}

/// The token is a secret: never in a log line.
impl std::fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSettings")
            .field("url", &self.url)
            .field("token", &if self.token.is_empty() { "" } else { "***" })
            .field("timeout_secs", &self.timeout_secs)
            .field("offline_spend_per_guest", &self.offline_spend_per_guest)
            .field("offline_spend_per_shift", &self.offline_spend_per_shift)
            .field("offline_shift_hours", &self.offline_shift_hours)
            .finish()
    }
}

/// Opens the server backend for the worker.
pub fn open_boxed(
    settings: &ServerSettings,
    journal: &Path,
    clock: Box<dyn Clock>,
) -> Result<Box<dyn LoyaltyBackend>, LoyaltyError> {
    Ok(Box::new(ServerBackend::open(settings, journal, clock)?))
}

impl ServerSettings {
    pub fn is_set(&self) -> bool {
        !self.url.trim().is_empty()
    }

    fn offline_spending(&self) -> bool {
        self.offline_spend_per_guest > 0
    }

    fn shift_secs(&self) -> i64 {
        if self.offline_shift_hours > 0 {
            self.offline_shift_hours * 3_600
        } else {
            12 * 3_600
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(if self.timeout_secs == 0 { 10 } else { self.timeout_secs })
    }
}

/// What became of a request.
enum Sent<T> {
    /// The server answered with success.
    Ok(T),
    /// The server refused it (4xx): nothing was done.
    Refused(LoyaltyError),
    /// No answer, or the server failed (5xx): it may or may not have been done.
    InDoubt(String),
}

pub struct ServerBackend {
    url: String,
    token: String,
    http: reqwest::blocking::Client,
    journal: Journal,
    clock: Box<dyn Clock>,
    /// Writes may be pending: resolve before the next call.
    in_doubt: bool,
    /// The last answer was a transport failure.
    offline: bool,
    /// Holds an earlier run left open were voided (done once the server answers after start-up).
    swept: bool,
    /// The last card and quote per guest, for a provisional receipt when offline.
    cards: HashMap<GuestId, GuestCard>,
    quotes: HashMap<GuestId, SpendQuote>,
    /// Numbering for the backend's own operations (voids and refunds made while resolving).
    own_ops: u64,
    settings: ServerSettings,
    /// Holds granted by the till itself while offline (negative ids): guest and amount.
    local_holds: HashMap<HoldId, (GuestId, Kopecks)>,
    next_local_hold: HoldId,
    stamp: String,
}

impl ServerBackend {
    /// Opens the journal and resolves whatever an earlier run left in doubt (if the server
    /// answers; otherwise the first call that reaches it does).
    pub fn open(settings: &ServerSettings, journal_path: &Path, clock: Box<dyn Clock>) -> Result<Self, LoyaltyError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(settings.timeout())
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| LoyaltyError::Storage(format!("HTTP client: {e}")))?;
        let journal = Journal::open(journal_path)?;
        let stamp = format!("{:x}", clock.now());
        let mut backend = ServerBackend {
            url: settings.url.trim().trim_end_matches('/').to_string(),
            token: settings.token.trim().to_string(),
            http,
            journal,
            clock,
            in_doubt: true,
            offline: false,
            swept: false,
            cards: HashMap::new(),
            quotes: HashMap::new(),
            own_ops: 0,
            settings: settings.clone(),
            local_holds: HashMap::new(),
            next_local_hold: -1,
            stamp,
        };
        match backend.resolve(true) {
            Ok(()) => {}
            Err(LoyaltyError::Unavailable(reason)) => {
                tracing::warn!(%reason, "loyalty server unreachable at start-up; the journal is resolved later");
            }
            Err(error) => return Err(error),
        }
        Ok(backend)
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// Resolves every write in doubt; with `startup`, also voids holds nothing closed.
    pub fn resolve(&mut self, startup: bool) -> Result<(), LoyaltyError> {
        for entry in self.journal.pending()? {
            // An earlier step of this loop may have settled it.
            let Some(entry) = self.journal.get(&entry.op_id)? else {
                continue;
            };
            if entry.state != OpState::Pending {
                continue;
            }
            self.resolve_entry(&entry)?;
        }
        if startup {
            for hold in self.journal.unclosed_holds()? {
                if let Some(id) = hold.hold_id {
                    tracing::info!(op = %hold.op_id, hold = id, "voiding a hold left open by an earlier run");
                    self.void_in_journal(id)?;
                }
            }
            self.swept = true;
        }
        self.in_doubt = false;
        Ok(())
    }

    fn resolve_entry(&mut self, entry: &Entry) -> Result<(), LoyaltyError> {
        match entry.kind {
            OpKind::Hold => {
                // The server has it, the cashier never got it: release it.
                if let Some(receipt) = self.resend::<wire::HoldReceipt>(entry)? {
                    self.journal.set_hold_id(&entry.op_id, receipt.hold_id)?;
                    tracing::info!(op = %entry.op_id, hold = receipt.hold_id, "hold in doubt found; voiding it");
                    self.void_in_journal(receipt.hold_id)?;
                }
            }
            OpKind::Commit => {
                if let Some(hold) = entry.hold_id
                    && let Some(void) = self.journal.later_void(hold, entry.seq)?
                {
                    // The cashier gave up on this payment: the void decides.
                    if void.state == OpState::Pending {
                        self.resolve_entry(&void)?;
                    }
                    if let Some(commit) = self.journal.get(&entry.op_id)?
                        && commit.state == OpState::Pending
                    {
                        self.journal
                            .settle(&entry.op_id, OpState::Cancelled, None, self.clock.now())?;
                    }
                    return Ok(());
                }
                if self.resend::<wire::PaymentReceipt>(entry)?.is_none()
                    && let Some(hold) = entry.hold_id
                {
                    // Refused (the hold expired meanwhile): make sure nothing stays held.
                    self.void_in_journal(hold)?;
                }
            }
            OpKind::Void => {
                let hold = entry.hold_id.unwrap_or_default();
                match self.send_entry::<wire::VoidAnswer>(entry)? {
                    Sent::Ok(_) => self
                        .journal
                        .settle(&entry.op_id, OpState::Done, None, self.clock.now())?,
                    Sent::Refused(LoyaltyError::HoldNotOpen { status }) if status == "committed" => {
                        // The commit went through after all, though the cashier was told it
                        // failed: take it back in full.
                        self.journal
                            .settle(&entry.op_id, OpState::Done, None, self.clock.now())?;
                        if let Some(commit) = self.journal.commit_of(hold)? {
                            self.reverse_commit(&commit)?;
                        }
                    }
                    Sent::Refused(error) => {
                        self.journal.settle(
                            &entry.op_id,
                            OpState::Failed,
                            Some(&error.to_string()),
                            self.clock.now(),
                        )?;
                    }
                    Sent::InDoubt(reason) => return Err(self.went_offline(reason)),
                }
            }
            OpKind::Refund => {
                self.resend::<wire::RefundReceipt>(entry)?;
            }
        }
        Ok(())
    }

    /// Refunds a commit the server did but the cashier abandoned; the commit is then cancelled.
    fn reverse_commit(&mut self, commit: &Entry) -> Result<(), LoyaltyError> {
        if commit.state == OpState::Pending {
            // Learn its receipt first (a repeat returns the first result).
            self.resend::<wire::PaymentReceipt>(commit)?;
        }
        let op_id = self.own_op("refund");
        let body = to_body(&wire::RefundRequest {
            op_id: op_id.clone(),
            payment_op_id: commit.op_id.clone(),
            payment_till: None,
            amount: None,
        })?;
        self.journal.record(
            &op_id,
            OpKind::Refund,
            "/api/v1/refunds",
            &body,
            commit.hold_id,
            self.clock.now(),
        )?;
        let entry = self.journal.get(&op_id)?.ok_or(LoyaltyError::UnknownPayment)?;
        if self.resend::<wire::RefundReceipt>(&entry)?.is_some() {
            tracing::warn!(op = %commit.op_id, "a payment the cashier abandoned was refunded in full");
            self.journal
                .settle(&commit.op_id, OpState::Cancelled, None, self.clock.now())?;
        }
        Ok(())
    }

    /// Journals and sends a void of `hold` made by the backend itself.
    fn void_in_journal(&mut self, hold: HoldId) -> Result<(), LoyaltyError> {
        let op_id = self.own_op("void");
        let path = format!("/api/v1/holds/{hold}/void");
        let body = to_body(&wire::VoidRequest { op_id: op_id.clone() })?;
        self.journal
            .record(&op_id, OpKind::Void, &path, &body, Some(hold), self.clock.now())?;
        let entry = self.journal.get(&op_id)?.ok_or(LoyaltyError::UnknownHold)?;
        self.resolve_entry(&entry)
    }

    fn own_op(&mut self, what: &str) -> String {
        loop {
            self.own_ops += 1;
            let id = format!("j{}-{what}-{}", self.stamp, self.own_ops);
            if !self.journal.knows(&id).unwrap_or(false) {
                return id;
            }
        }
    }

    /// Sends a journalled entry again and settles it; Some(result) when done, None when refused.
    fn resend<T: DeserializeOwned>(&mut self, entry: &Entry) -> Result<Option<T>, LoyaltyError> {
        match self.send_entry::<T>(entry)? {
            Sent::Ok(value) => Ok(Some(value)),
            Sent::Refused(error) => {
                tracing::info!(op = %entry.op_id, %error, "the server refused a journalled operation");
                Ok(None)
            }
            Sent::InDoubt(reason) => Err(self.went_offline(reason)),
        }
    }

    /// Sends a journalled entry and records the outcome (done or failed); in doubt stays pending.
    fn send_entry<T: DeserializeOwned>(&mut self, entry: &Entry) -> Result<Sent<T>, LoyaltyError> {
        let now = self.clock.now();
        match self.post_raw(&entry.path, &entry.body) {
            Sent::Ok(text) => {
                let value: T = serde_json::from_str(&text)
                    .map_err(|e| LoyaltyError::Storage(format!("the server's answer is not understood: {e}")))?;
                if entry.kind == OpKind::Hold
                    && let Ok(receipt) = serde_json::from_str::<wire::HoldReceipt>(&text)
                {
                    self.journal.set_hold_id(&entry.op_id, receipt.hold_id)?;
                }
                self.journal.settle(&entry.op_id, OpState::Done, Some(&text), now)?;
                self.offline = false;
                Ok(Sent::Ok(value))
            }
            Sent::Refused(error) => {
                self.journal
                    .settle(&entry.op_id, OpState::Failed, Some(&error.to_string()), now)?;
                self.offline = false;
                Ok(Sent::Refused(error))
            }
            Sent::InDoubt(reason) => {
                self.in_doubt = true;
                Ok(Sent::InDoubt(reason))
            }
        }
    }

    fn went_offline(&mut self, reason: String) -> LoyaltyError {
        self.offline = true;
        self.in_doubt = true;
        LoyaltyError::Unavailable(reason)
    }

    /// Before any call: settle what is in doubt, if the server answers.
    fn ready(&mut self) -> Result<(), LoyaltyError> {
        if self.in_doubt || !self.swept {
            self.resolve(!self.swept)?;
        }
        Ok(())
    }

    /// A journalled write: recorded, sent, settled.
    fn write<T: DeserializeOwned>(
        &mut self,
        op_id: &str,
        kind: OpKind,
        path: &str,
        body: &impl Serialize,
        hold: Option<HoldId>,
    ) -> Result<Sent<T>, LoyaltyError> {
        let body = to_body(body)?;
        if let Some(first) = self.journal.get(op_id)? {
            // The workflow repeated an operation: send what was first recorded.
            if first.body != body {
                return Err(LoyaltyError::OperationIdConflict);
            }
        } else {
            self.journal.record(op_id, kind, path, &body, hold, self.clock.now())?;
        }
        let entry = self.journal.get(op_id)?.ok_or(LoyaltyError::OperationIdConflict)?;
        self.send_entry(&entry)
    }

    fn post_raw(&self, path: &str, body: &str) -> Sent<String> {
        let request = self
            .http
            .post(format!("{}{path}", self.url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .bearer_auth(&self.token)
            .body(body.to_string());
        answer(request.send())
    }

    fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, LoyaltyError> {
        let request = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.token);
        self.read(answer(request.send()))
    }

    fn post_read<T: DeserializeOwned>(&mut self, path: &str, body: &impl Serialize) -> Result<T, LoyaltyError> {
        let sent = self.post_raw(path, &to_body(body)?);
        self.read(sent)
    }

    fn read<T: DeserializeOwned>(&mut self, sent: Sent<String>) -> Result<T, LoyaltyError> {
        match sent {
            Sent::Ok(text) => {
                self.offline = false;
                serde_json::from_str(&text)
                    .map_err(|e| LoyaltyError::Storage(format!("the server's answer is not understood: {e}")))
            }
            Sent::Refused(error) => {
                self.offline = false;
                Err(error)
            }
            Sent::InDoubt(reason) => Err(self.went_offline(reason)),
        }
    }

    fn done<T>(&mut self, sent: Sent<T>) -> Result<T, LoyaltyError> {
        match sent {
            Sent::Ok(value) => Ok(value),
            Sent::Refused(error) => Err(error),
            Sent::InDoubt(reason) => Err(self.went_offline(reason)),
        }
    }
}

impl ServerBackend {
    /// What the caps still allow this guest to spend offline (holds granted offline count).
    fn offline_room(&self, guest: GuestId) -> Result<Kopecks, LoyaltyError> {
        let since = self.clock.now() - self.settings.shift_secs();
        let spends = self.journal.offline_spends_since(since)?;
        let local_guest: i64 = self
            .local_holds
            .values()
            .filter(|(g, _)| *g == guest)
            .map(|(_, a)| a.0)
            .sum();
        let local_all: i64 = self.local_holds.values().map(|(_, a)| a.0).sum();
        let guest_used: i64 = spends
            .iter()
            .filter(|(g, _)| *g == guest)
            .map(|(_, a)| a.0)
            .sum::<i64>()
            + local_guest;
        let mut room = Kopecks(self.settings.offline_spend_per_guest - guest_used);
        if self.settings.offline_spend_per_shift > 0 {
            let all_used: i64 = spends.iter().map(|(_, a)| a.0).sum::<i64>() + local_all;
            room = room.min(Kopecks(self.settings.offline_spend_per_shift - all_used));
        }
        // Never more than the guest had when last seen.
        let known = self.cards.get(&guest).map(|c| c.available).unwrap_or(Kopecks::ZERO);
        Ok(room.min(known - Kopecks(local_guest)).max(Kopecks::ZERO))
    }

    /// A quote made by the till while offline: the last programme rules it saw, the caps as the
    /// available limit. None without a card and rules seen earlier.
    fn offline_quote(&self, guest: GuestId, check: &CheckInfo) -> Result<Option<SpendQuote>, LoyaltyError> {
        let (Some(card), Some(seen)) = (
            self.cards.get(&guest),
            self.quotes.get(&guest).or_else(|| self.quotes.values().next()),
        ) else {
            return Ok(None);
        };
        let room = self.offline_room(guest)?;
        let amount_due = check.subtotal - check.subtotal.percent_floor(card.group.discount_bp);
        let limits = vec![
            crate::domain::SpendLimit {
                kind: crate::domain::SpendLimitKind::Available,
                amount: room,
            },
            crate::domain::SpendLimit {
                kind: crate::domain::SpendLimitKind::CheckPercent,
                amount: amount_due.percent_floor(seen.max_check_bp),
            },
            crate::domain::SpendLimit {
                kind: crate::domain::SpendLimitKind::AmountDue,
                amount: amount_due,
            },
        ];
        let smallest = limits.iter().map(|l| l.amount).fold(amount_due, Kopecks::min);
        Ok(Some(SpendQuote {
            amount_due,
            max_spend: smallest.floor_to_step(seen.spend_step).max(Kopecks::ZERO),
            limits,
            max_check_bp: seen.max_check_bp,
            spend_step: seen.spend_step,
            accrual_bp: card.group.accrual_bp,
        }))
    }

    /// A hold granted by the till itself, within the offline caps.
    fn offline_hold(
        &mut self,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
    ) -> Result<HoldReceipt, LoyaltyError> {
        let max = self
            .offline_quote(guest, check)?
            .map(|q| q.max_spend)
            .unwrap_or(Kopecks::ZERO);
        if amount <= Kopecks::ZERO {
            return Err(LoyaltyError::NonPositiveAmount);
        }
        if amount > max {
            return Err(LoyaltyError::OverMaximum { requested: amount, max });
        }
        let hold_id = self.next_local_hold;
        self.next_local_hold -= 1;
        self.local_holds.insert(hold_id, (guest, amount));
        tracing::warn!(
            guest,
            amount = amount.0,
            "offline: bonuses spent without the server, within the caps"
        );
        Ok(HoldReceipt {
            hold_id,
            amount,
            expires_at: self.clock.now() + 900,
        })
    }

    /// Closes a check paid with an offline hold: journalled for the server, a provisional receipt.
    fn offline_commit(
        &mut self,
        op_id: &str,
        guest: GuestId,
        hold: HoldId,
        spent: Kopecks,
        check: &CheckInfo,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        let (owner, held) = self.local_holds.get(&hold).copied().ok_or(LoyaltyError::UnknownHold)?;
        if owner != guest {
            return Err(LoyaltyError::UnknownHold);
        }
        if spent > held {
            return Err(LoyaltyError::CommitOverHold { requested: spent, held });
        }
        let body = wire::OfflinePaymentRequest {
            op_id: op_id.to_string(),
            guest_id: guest,
            spent: spent.into(),
            check: check.into(),
        };
        // Recorded before the hold is forgotten: the caps count it from the journal from now on.
        let sent = self.write::<wire::PaymentReceipt>(op_id, OpKind::Commit, OFFLINE_PATH, &body, None);
        self.local_holds.remove(&hold);
        match sent? {
            Sent::Ok(receipt) => Ok(receipt.into()),
            Sent::Refused(error) => Err(error),
            Sent::InDoubt(reason) => {
                self.went_offline(reason);
                let accrual_bp = self.cards.get(&guest).map(|c| c.group.accrual_bp).unwrap_or(0);
                let due = check.subtotal
                    - check
                        .subtotal
                        .percent_floor(self.cards.get(&guest).map(|c| c.group.discount_bp).unwrap_or(0));
                let accrued = due.saturating_sub(spent).percent_floor(accrual_bp);
                let card = self.cards.get_mut(&guest);
                let balance_after = match card {
                    Some(card) => {
                        card.balance = card.balance - spent + accrued;
                        card.available = card.available - spent + accrued;
                        card.balance
                    }
                    None => Kopecks::ZERO,
                };
                Ok(PaymentReceipt {
                    spent,
                    accrued,
                    balance_after,
                    new_group: None,
                })
            }
        }
    }
}

/// Where a payment taken offline is sent.
pub const OFFLINE_PATH: &str = "/api/v1/offline-payments";

/// Sorts an HTTP outcome: success, a refusal the server explained, or in doubt.
fn answer(result: reqwest::Result<reqwest::blocking::Response>) -> Sent<String> {
    let response = match result {
        Ok(response) => response,
        // reqwest's errors name the URL, never the token or the body.
        Err(error) => return Sent::InDoubt(error.to_string()),
    };
    let status = response.status();
    let text = match response.text() {
        Ok(text) => text,
        Err(error) => return Sent::InDoubt(error.to_string()),
    };
    if status.is_success() {
        return Sent::Ok(text);
    }
    if status.is_server_error() {
        return Sent::InDoubt(format!("the server failed: {status}"));
    }
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(ErrorBody {
            ledger: Some(error), ..
        }) => Sent::Refused(error),
        Ok(body) => Sent::Refused(LoyaltyError::Storage(format!("the server refused: {}", body.reason))),
        Err(_) => Sent::Refused(LoyaltyError::Storage(format!("the server refused: {status}"))),
    }
}

/// A request body as sent and journalled.
fn to_body(body: &impl Serialize) -> Result<String, LoyaltyError> {
    serde_json::to_string(body).map_err(|e| LoyaltyError::Storage(format!("the request could not be written: {e}")))
}

impl LoyaltyBackend for ServerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Server {
            url: self.url.clone(),
            online: !self.offline,
        }
    }

    fn identify(&mut self, scan: &ScanEvent) -> Result<Identification, LoyaltyError> {
        self.ready()?;
        let found: Identification = self
            .post_read::<wire::Identification>(
                "/api/v1/identify",
                &wire::IdentifyRequest {
                    kind: scan.kind.into(),
                    payload: scan.payload.clone(),
                },
            )?
            .into();
        self.cards.insert(found.card.guest_id, found.card.clone());
        Ok(found)
    }

    fn guest_card(&mut self, guest: GuestId) -> Result<GuestCard, LoyaltyError> {
        self.ready()?;
        let card: GuestCard = self
            .get::<wire::CardAnswer>(&format!("/api/v1/guests/{guest}"))?
            .card
            .into();
        self.cards.insert(guest, card.clone());
        Ok(card)
    }

    fn calculate(&mut self, guest: GuestId, check: &CheckInfo) -> Result<SpendQuote, LoyaltyError> {
        let answer = self.ready().and_then(|()| {
            self.post_read::<wire::Quote>(
                &format!("/api/v1/guests/{guest}/calculate"),
                &wire::CalculateRequest { check: check.into() },
            )
            .map(SpendQuote::from)
        });
        match answer {
            Ok(quote) => {
                self.quotes.insert(guest, quote.clone());
                Ok(quote)
            }
            // Offline with the owner's permission: the till's own quote within the caps.
            Err(LoyaltyError::Unavailable(reason)) if self.settings.offline_spending() => self
                .offline_quote(guest, check)?
                .ok_or(LoyaltyError::Unavailable(reason)),
            Err(error) => Err(error),
        }
    }

    fn hold(
        &mut self,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
    ) -> Result<HoldReceipt, LoyaltyError> {
        // Without the server there is no hold, unless the owner allows offline spending (capped).
        let offline = self.settings.offline_spending();
        match self.ready() {
            Ok(()) => {}
            Err(LoyaltyError::Unavailable(_)) if offline => return self.offline_hold(guest, amount, check),
            Err(error) => return Err(error),
        }
        let body = wire::HoldRequest {
            op_id: op_id.to_string(),
            guest_id: guest,
            amount: amount.into(),
            check: check.into(),
        };
        match self.write::<wire::HoldReceipt>(op_id, OpKind::Hold, "/api/v1/holds", &body, None)? {
            // The hold sent is in doubt (the journal voids it later); the till grants its own.
            Sent::InDoubt(reason) if offline => {
                self.went_offline(reason);
                self.offline_hold(guest, amount, check)
            }
            sent => self.done(sent).map(HoldReceipt::from),
        }
    }

    fn commit_payment(
        &mut self,
        op_id: &str,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: &CheckInfo,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        if let Some(local) = hold.filter(|h| self.local_holds.contains_key(h)) {
            // Best effort to reach the server first; the payment is journalled either way.
            let _ = self.ready();
            return self.offline_commit(op_id, guest, local, spent, check);
        }
        let queueable = hold.is_none() && spent == Kopecks::ZERO;
        match self.ready() {
            Ok(()) => {}
            Err(LoyaltyError::Unavailable(_)) if queueable => {}
            Err(error) => return Err(error),
        }
        let body = wire::PaymentRequest {
            op_id: op_id.to_string(),
            guest_id: guest,
            hold_id: hold,
            spent: spent.into(),
            check: check.into(),
        };
        match self.write::<wire::PaymentReceipt>(op_id, OpKind::Commit, "/api/v1/payments", &body, hold)? {
            Sent::Ok(receipt) => Ok(receipt.into()),
            Sent::Refused(error) => Err(error),
            Sent::InDoubt(reason) if queueable => {
                self.went_offline(reason);
                tracing::info!(op = %op_id, "offline: the accrual is queued and sent later");
                // A provisional receipt from the last quote; the server's is in the journal later.
                let accrued = self
                    .quotes
                    .get(&guest)
                    .filter(|q| q.amount_due <= check.subtotal)
                    .map(|q| q.accrual_for(Kopecks::ZERO))
                    .unwrap_or(Kopecks::ZERO);
                let balance = self.cards.get(&guest).map(|c| c.balance).unwrap_or(Kopecks::ZERO);
                Ok(PaymentReceipt {
                    spent: Kopecks::ZERO,
                    accrued,
                    balance_after: balance + accrued,
                    new_group: None,
                })
            }
            Sent::InDoubt(reason) => Err(self.went_offline(reason)),
        }
    }

    fn void_hold(&mut self, op_id: &str, hold: HoldId) -> Result<(), LoyaltyError> {
        if self.local_holds.remove(&hold).is_some() {
            return Ok(()); // The till's own offline hold: nothing reached the server.
        }
        // Recorded even when the server is away: the journal finishes the release later.
        let body = wire::VoidRequest {
            op_id: op_id.to_string(),
        };
        let path = format!("/api/v1/holds/{hold}/void");
        if self.in_doubt {
            self.journal.record(
                op_id,
                OpKind::Void,
                &path,
                &to_body(&body)?,
                Some(hold),
                self.clock.now(),
            )?;
            return self.resolve(!self.swept);
        }
        let sent = self.write::<wire::VoidAnswer>(op_id, OpKind::Void, &path, &body, Some(hold))?;
        match sent {
            Sent::Refused(LoyaltyError::HoldNotOpen { status }) if status == "committed" => {
                // Settled by the void path of the journal (refund of a commit in doubt).
                let entry = self.journal.get(op_id)?.ok_or(LoyaltyError::UnknownHold)?;
                if let Some(commit) = self.journal.commit_of(hold)?
                    && commit.seq < entry.seq
                {
                    self.reverse_commit(&commit)?;
                    return Ok(());
                }
                Err(LoyaltyError::HoldNotOpen { status })
            }
            other => self.done(other).map(|_| ()),
        }
    }

    fn history(&mut self, guest: GuestId, limit: usize) -> Result<Vec<HistoryEntry>, LoyaltyError> {
        self.ready()?;
        let history: Vec<wire::HistoryEntry> = self.get(&format!("/api/v1/guests/{guest}/history?limit={limit}"))?;
        Ok(history.into_iter().map(Into::into).collect())
    }
}
