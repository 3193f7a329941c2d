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
//! - A background probe (a cheap authenticated request, see [`ServerBackend::probe`]) tells
//!   online, offline since when, or token refused, and sends the queue as soon as the server
//!   answers.
//! - Offline, a guest identified on this till recently is found in the guest cache
//!   ([`cache::GuestCache`]); a check closed without spending bonuses is queued (its accrual is
//!   sent later, exactly once, with the check's own time) and the cashier gets a provisional
//!   receipt computed by [`offline_quote`] (the server's rules); spending bonuses offline is refused before anything
//!   is journalled, unless the owner set caps.
//!
//! Plain HTTP: TLS is left to a reverse proxy. The token is never logged.

pub mod cache;
pub mod journal;

use crate::backend::{BackendKind, Clock, LoyaltyBackend, ServerLink};
use crate::domain::{
    AwayReason, CardPayment, CardShare, CheckFilter, CheckInfo, CheckSummary, GuestCard, GuestId, HistoryEntry, HoldId,
    HoldReceipt, Identification, LooseEnd, LooseEndKind, LoyaltyError, PaymentReceipt, RefundReceipt, ReturnPart,
    ScanEvent, ShiftReport, SpendQuote,
};
use crate::money::Kopecks;
use crate::wire::{self, ErrorBody};
use cache::{GuestCache, SpendRules};
use journal::{Entry, Journal, OpKind, OpState};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Where the till finds its server (`[server]` in config.toml).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Guests identified on this till within this many days can be identified again while the
    /// server is away (masked and sealed on disk); 0 keeps no cache.
    pub guest_cache_days: i64,
    /// Seconds between probes of the server while it answers (0: the default, 10).
    pub probe_secs: u64,
    /// While it does not answer the till probes after 1 s, then twice as long each time, up to
    /// this many seconds (0: the default, 5).
    pub retry_max_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            url: String::new(),
            token: String::new(),
            timeout_secs: 0,
            offline_spend_per_guest: 0,
            offline_spend_per_shift: 0,
            offline_shift_hours: 0,
            guest_cache_days: 30,
            probe_secs: 0,
            retry_max_secs: 0,
        }
    }
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
            .field("guest_cache_days", &self.guest_cache_days)
            .field("probe_secs", &self.probe_secs)
            .field("retry_max_secs", &self.retry_max_secs)
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

    fn probe_every(&self) -> Duration {
        Duration::from_secs(if self.probe_secs == 0 { 10 } else { self.probe_secs })
    }

    fn retry_max(&self) -> Duration {
        Duration::from_secs(if self.retry_max_secs == 0 {
            5
        } else {
            self.retry_max_secs
        })
    }
}

/// The cheap authenticated request of the probe.
pub const TILL_PATH: &str = "/api/v1/till";

/// What became of a request.
enum Sent<T> {
    /// The server answered with success.
    Ok(T),
    /// The server refused it (4xx): nothing was done.
    Refused(LoyaltyError),
    /// The server could not be used: see [`Trouble`].
    InDoubt(Trouble),
}

/// Why a request got no answer from the server.
enum Trouble {
    /// No answer, or the server failed (5xx): it may or may not have been done.
    Unreachable(String),
    /// The connection was never made: it was certainly not done.
    NotSent(String),
    /// 401: the server refuses the till's token; nothing was done.
    TokenRefused,
}

impl Trouble {
    /// The request certainly did nothing on the server.
    fn nothing_done(&self) -> bool {
        !matches!(self, Trouble::Unreachable(_))
    }
}

/// Whether an error means the server could not be used (the offline paths apply).
fn is_away(error: &LoyaltyError) -> bool {
    matches!(
        error,
        LoyaltyError::Unavailable(_) | LoyaltyError::ServerAway(AwayReason::TokenRefused)
    )
}

pub struct ServerBackend {
    url: String,
    token: String,
    http: reqwest::blocking::Client,
    journal: Journal,
    clock: Box<dyn Clock>,
    /// Writes may be pending: resolve before the next call.
    in_doubt: bool,
    /// What the last request or probe learnt.
    link: ServerLink,
    /// Probes failed in a row (for the backoff).
    failed_probes: u32,
    /// Holds an earlier run left open were voided (done once the server answers after start-up).
    swept: bool,
    /// The last card per guest this run, for the offline quote and receipt.
    cards: HashMap<GuestId, GuestCard>,
    /// Recently identified guests and the programme rules, kept across runs.
    cache: GuestCache,
    /// The programme's spending rules as last seen.
    rules: Option<SpendRules>,
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
        let token = settings.token.trim().to_string();
        let cache = GuestCache::open(journal_path, &token, settings.guest_cache_days)?;
        cache.forget_old(clock.now())?;
        let rules = cache.rules()?;
        let stamp = format!("{:x}", clock.now());
        let mut backend = ServerBackend {
            url: settings.url.trim().trim_end_matches('/').to_string(),
            token,
            http,
            journal,
            clock,
            in_doubt: true,
            link: ServerLink::Online,
            failed_probes: 0,
            swept: false,
            cards: HashMap::new(),
            cache,
            rules,
            own_ops: 0,
            settings: settings.clone(),
            local_holds: HashMap::new(),
            next_local_hold: -1,
            stamp,
        };
        backend.check_link();
        let resolved = match backend.link {
            ServerLink::Online => backend.resolve(true),
            _ => Err(backend.away_error()),
        };
        match resolved {
            Ok(()) => {}
            Err(error) if is_away(&error) => {
                tracing::warn!(%error, link = ?backend.link, "loyalty server not usable at start-up; the journal is resolved later");
            }
            Err(error) => return Err(error),
        }
        Ok(backend)
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn is_offline(&self) -> bool {
        self.link != ServerLink::Online
    }

    pub fn link(&self) -> ServerLink {
        self.link
    }

    /// The background probe: one cheap authenticated request; when the server answers, whatever
    /// is queued or in doubt is sent at once. Returns when to probe next: `probe_secs` while
    /// online, 1 s doubling up to `retry_max_secs` while not.
    pub fn probe(&mut self) -> Duration {
        self.check_link();
        if self.link == ServerLink::Online {
            let queued = self.journal.count_pending().unwrap_or(1) > 0;
            if (queued || self.in_doubt || !self.swept)
                && let Err(error) = self.resolve(!self.swept)
            {
                tracing::warn!(%error, "the journal could not be sent yet");
            }
        }
        match self.link {
            ServerLink::Online => self.settings.probe_every(),
            _ => {
                let backoff = Duration::from_secs(1u64 << self.failed_probes.saturating_sub(1).min(10));
                backoff.min(self.settings.retry_max())
            }
        }
    }

    /// Asks the server whether it answers and takes the token, and records the link.
    fn check_link(&mut self) {
        let request = self
            .http
            .get(format!("{}{TILL_PATH}", self.url))
            .bearer_auth(&self.token);
        match answer(request.send()) {
            // Any answer but 401 says the server is there (an older server without the path too).
            Sent::Ok(_) | Sent::Refused(_) => {
                if self.link != ServerLink::Online {
                    tracing::info!("the loyalty server answers again");
                }
                self.link = ServerLink::Online;
                self.failed_probes = 0;
            }
            Sent::InDoubt(trouble) => {
                self.failed_probes = self.failed_probes.saturating_add(1);
                self.went_offline(trouble);
            }
        }
    }

    /// The error for a call made while the server cannot be used.
    fn away_error(&self) -> LoyaltyError {
        match self.link {
            ServerLink::TokenRefused => LoyaltyError::ServerAway(AwayReason::TokenRefused),
            _ => LoyaltyError::Unavailable("the loyalty server does not answer".to_string()),
        }
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
            OpKind::SharedHold => {
                // As a hold in doubt: what the server granted, the cashier never got; release it.
                if let Some(answer) = self.resend::<wire::SharedHoldAnswer>(entry)? {
                    let request: wire::SharedHoldRequest = from_body(&entry.body)?;
                    self.journal_shared_holds(&entry.op_id, &request.shares, &answer)?;
                    for hold in answer.holds.iter().flatten() {
                        tracing::info!(op = %entry.op_id, hold = hold.hold_id, "a hold of several cards in doubt found; voiding it");
                        self.void_in_journal(hold.hold_id)?;
                    }
                }
            }
            OpKind::SharedCommit => {
                let request: wire::SharedPaymentRequest = from_body(&entry.body)?;
                if self.resend::<wire::SharedPaymentAnswer>(entry)?.is_some() {
                    self.journal_shared_commit(&entry.op_id, &request.payments)?;
                } else {
                    // Refused (a hold ran out meanwhile): nothing was paid; release the rest.
                    for hold in request.payments.iter().filter_map(|p| p.hold_id) {
                        if self.journal.commit_of(hold)?.is_none() {
                            self.void_in_journal(hold)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Journals each hold a several-accounts hold granted as a hold of its own (done), under
    /// [`engine::share_key`]'s name for the account's part.
    fn journal_shared_holds(
        &mut self,
        op_id: &str,
        shares: &[wire::CardShare],
        answer: &wire::SharedHoldAnswer,
    ) -> Result<(), LoyaltyError> {
        let now = self.clock.now();
        for (share, hold) in shares.iter().zip(&answer.holds) {
            if let Some(hold) = hold {
                let body = to_body(&serde_json::json!({ "guest_id": share.guest_id, "amount": hold.amount }))?;
                let part = crate::loyalty::engine::share_key(op_id, share.guest_id);
                self.journal
                    .record_done(&part, OpKind::Hold, SHARED_HOLDS_PATH, &body, Some(hold.hold_id), now)?;
            }
        }
        Ok(())
    }

    /// Journals each hold a check paid from several accounts closed, as that hold's commit.
    fn journal_shared_commit(&mut self, op_id: &str, payments: &[wire::CardPayment]) -> Result<(), LoyaltyError> {
        let now = self.clock.now();
        for payment in payments {
            if let Some(hold) = payment.hold_id {
                let body = to_body(&serde_json::json!({ "guest_id": payment.guest_id, "spent": payment.spent }))?;
                let part = crate::loyalty::engine::share_key(op_id, payment.guest_id);
                self.journal
                    .record_done(&part, OpKind::Commit, SHARED_PAYMENTS_PATH, &body, Some(hold), now)?;
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
            lines: None,
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
                    && let Ok(receipt) = serde_json::from_str::<HoldReceipt>(&text)
                {
                    self.journal.set_hold_id(&entry.op_id, receipt.hold_id)?;
                }
                if let Ok(note) = serde_json::from_str::<CheckTimeNote>(&text)
                    && let Some(check_time) = note.check_time.filter(|t| t != "used" && t != "on_hold")
                {
                    tracing::warn!(op = %entry.op_id, %check_time, booked_at = ?note.booked_at,
                        "the server did not book the check at its own time");
                }
                self.journal.settle(&entry.op_id, OpState::Done, Some(&text), now)?;
                self.link = ServerLink::Online;
                Ok(Sent::Ok(value))
            }
            Sent::Refused(error) => {
                self.journal
                    .settle(&entry.op_id, OpState::Failed, Some(&error.to_string()), now)?;
                self.link = ServerLink::Online;
                Ok(Sent::Refused(error))
            }
            Sent::InDoubt(trouble) => {
                self.in_doubt = true;
                Ok(Sent::InDoubt(trouble))
            }
        }
    }

    /// Records that the server could not be used and returns the error for the call.
    fn went_offline(&mut self, trouble: Trouble) -> LoyaltyError {
        self.in_doubt = true;
        match trouble {
            Trouble::TokenRefused => {
                if self.link != ServerLink::TokenRefused {
                    tracing::error!("the loyalty server refuses this till's token");
                }
                self.link = ServerLink::TokenRefused;
                LoyaltyError::ServerAway(AwayReason::TokenRefused)
            }
            Trouble::Unreachable(reason) | Trouble::NotSent(reason) => {
                if !matches!(self.link, ServerLink::Offline { .. }) {
                    tracing::warn!(%reason, "the loyalty server does not answer");
                    self.link = ServerLink::Offline {
                        since: self.clock.now(),
                    };
                }
                LoyaltyError::Unavailable(reason)
            }
        }
    }

    /// Before any call: if the server was away, ask whether it is back (refusing the call at
    /// once if not); then settle what is in doubt.
    fn ready(&mut self) -> Result<(), LoyaltyError> {
        if self.link != ServerLink::Online {
            self.check_link();
            if self.link != ServerLink::Online {
                return Err(self.away_error());
            }
        }
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
        let first_send = match self.journal.get(op_id)? {
            // The workflow repeated an operation: send what was first recorded.
            Some(first) if first.body != body => return Err(LoyaltyError::OperationIdConflict),
            Some(_) => false,
            None => {
                self.journal.record(op_id, kind, path, &body, hold, self.clock.now())?;
                true
            }
        };
        let entry = self.journal.get(op_id)?.ok_or(LoyaltyError::OperationIdConflict)?;
        let sent = self.send_entry(&entry)?;
        let holds = matches!(kind, OpKind::Hold | OpKind::SharedHold);
        if first_send && holds && matches!(&sent, Sent::InDoubt(trouble) if trouble.nothing_done()) {
            // Never reached the server: there is nothing to find and void later.
            self.journal.settle(
                op_id,
                OpState::Failed,
                Some("not sent: the server was away"),
                self.clock.now(),
            )?;
        }
        Ok(sent)
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
                self.link = ServerLink::Online;
                serde_json::from_str(&text)
                    .map_err(|e| LoyaltyError::Storage(format!("the server's answer is not understood: {e}")))
            }
            Sent::Refused(error) => {
                self.link = ServerLink::Online;
                Err(error)
            }
            Sent::InDoubt(trouble) => Err(self.went_offline(trouble)),
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
    fn offline_room(&self, guest: GuestId, card: &GuestCard) -> Result<Kopecks, LoyaltyError> {
        if !self.settings.offline_spending() {
            return Ok(Kopecks::ZERO);
        }
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
        Ok(room.min(card.available - Kopecks(local_guest)).max(Kopecks::ZERO))
    }

    /// The guest's card as last seen: this run's, else the cache's.
    fn known_card(&self, guest: GuestId) -> Result<Option<GuestCard>, LoyaltyError> {
        match self.cards.get(&guest) {
            Some(card) => Ok(Some(card.clone())),
            None => self.cache.card(guest, self.clock.now()),
        }
    }

    /// The till's quote while offline; None without a card seen earlier.
    fn quote_offline(&self, guest: GuestId, check: &CheckInfo) -> Result<Option<SpendQuote>, LoyaltyError> {
        let Some(card) = self.known_card(guest)? else {
            return Ok(None);
        };
        let room = self.offline_room(guest, &card)?;
        Ok(Some(offline_quote(&card, self.rules, room, check, Kopecks::ZERO)?.0))
    }

    /// A card the server just gave: kept for the offline paths.
    fn remember_card(&mut self, card: &GuestCard, scan: Option<&ScanEvent>) {
        if let Err(error) = self.cache.remember(card, scan, self.clock.now()) {
            tracing::warn!(%error, "the guest cache could not be written");
        }
        self.cards.insert(card.guest_id, card.clone());
    }

    /// A provisional receipt for a check the till closed without the server: the offline quote's
    /// accrual, and the balance the guest will have once the server books it.
    fn provisional_receipt(
        &mut self,
        guest: GuestId,
        spent: Kopecks,
        check: &CheckInfo,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        let accrued = match self.known_card(guest)? {
            Some(card) => offline_quote(&card, self.rules, Kopecks::ZERO, check, spent)?.1,
            None => Kopecks::ZERO,
        };
        let balance_after = match self.cards.get_mut(&guest) {
            Some(card) => {
                card.balance = card.balance - spent + accrued;
                card.available = card.available - spent + accrued;
                card.balance
            }
            None => Kopecks::ZERO,
        };
        if let Some(card) = self.cards.get(&guest).cloned() {
            self.remember_card(&card, None);
        }
        Ok(PaymentReceipt {
            spent,
            accrued,
            balance_after,
            new_group: None,
        })
    }

    /// A hold granted by the till itself, within the offline caps.
    fn offline_hold(
        &mut self,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
    ) -> Result<HoldReceipt, LoyaltyError> {
        let max = self
            .quote_offline(guest, check)?
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
            check_time: Some(self.check_time_of(op_id)?),
        };
        // Recorded before the hold is forgotten: the caps count it from the journal from now on.
        if self.link != ServerLink::Online {
            let queued = self.queue(op_id, OFFLINE_PATH, &body);
            self.local_holds.remove(&hold);
            queued?;
            return self.provisional_receipt(guest, spent, check);
        }
        let sent = self.write::<wire::PaymentReceipt>(op_id, OpKind::Commit, OFFLINE_PATH, &body, None);
        self.local_holds.remove(&hold);
        match sent? {
            Sent::Ok(receipt) => Ok(receipt.into()),
            Sent::Refused(error) => Err(error),
            Sent::InDoubt(trouble) => {
                self.went_offline(trouble);
                self.provisional_receipt(guest, spent, check)
            }
        }
    }

    /// The check's time of payment `op_id`: now, or the time first journalled when the workflow
    /// repeats the payment (the same operation must carry the same body).
    fn check_time_of(&self, op_id: &str) -> Result<crate::domain::UnixSeconds, LoyaltyError> {
        let first = self.journal.get(op_id)?.and_then(|entry| {
            serde_json::from_str::<serde_json::Value>(&entry.body)
                .ok()
                .and_then(|body| body["check_time"].as_i64())
        });
        Ok(first.unwrap_or_else(|| self.clock.now()))
    }

    /// Journals a payment without sending it (the server is away): the probe sends it later.
    fn queue(&mut self, op_id: &str, path: &str, body: &impl Serialize) -> Result<(), LoyaltyError> {
        let body = to_body(body)?;
        match self.journal.get(op_id)? {
            Some(first) if first.body != body => return Err(LoyaltyError::OperationIdConflict),
            Some(_) => {}
            None => self
                .journal
                .record(op_id, OpKind::Commit, path, &body, None, self.clock.now())?,
        }
        self.in_doubt = true;
        tracing::info!(op = %op_id, "offline: the payment is queued and sent once the server answers");
        Ok(())
    }
}

/// Where a payment taken offline is sent.
pub const OFFLINE_PATH: &str = "/api/v1/offline-payments";
const SHARED_HOLDS_PATH: &str = "/api/v1/shared-holds";
const SHARED_PAYMENTS_PATH: &str = "/api/v1/shared-payments";

/// Sorts an HTTP outcome: success, a refusal the server explained, or in doubt.
fn answer(result: reqwest::Result<reqwest::blocking::Response>) -> Sent<String> {
    let response = match result {
        Ok(response) => response,
        // reqwest's errors name the URL, never the token or the body.
        Err(error) if error.is_connect() => return Sent::InDoubt(Trouble::NotSent(error.to_string())),
        Err(error) => return Sent::InDoubt(Trouble::Unreachable(error.to_string())),
    };
    let status = response.status();
    let text = match response.text() {
        Ok(text) => text,
        Err(error) => return Sent::InDoubt(Trouble::Unreachable(error.to_string())),
    };
    if status.is_success() {
        return Sent::Ok(text);
    }
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Sent::InDoubt(Trouble::TokenRefused);
    }
    if status.is_server_error() {
        return Sent::InDoubt(Trouble::Unreachable(format!("the server failed: {status}")));
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

/// A journalled request read back.
fn from_body<T: DeserializeOwned>(body: &str) -> Result<T, LoyaltyError> {
    serde_json::from_str(body).map_err(|e| LoyaltyError::Storage(format!("a journal entry is unreadable: {e}")))
}

/// What the server says about the check time a payment carried (see `check_time` in the API).
#[derive(serde::Deserialize)]
struct CheckTimeNote {
    check_time: Option<String>,
    booked_at: Option<crate::domain::UnixSeconds>,
}

/// The till's own figures while the server is away, by the server's own rules
/// ([`crate::loyalty::rules`]) applied to the cached group and programme: the quote, with `room`
/// (what the owner's offline caps still allow, never more than the guest last had) as the
/// available balance, and the accrual of a check paying `spent` with bonuses. Without the
/// programme rules seen once, nothing may be spent.
pub fn offline_quote(
    card: &GuestCard,
    rules: Option<SpendRules>,
    room: Kopecks,
    check: &CheckInfo,
    spent: Kopecks,
) -> Result<(SpendQuote, Kopecks), LoyaltyError> {
    use crate::loyalty::rules::{self, Group, GuestSnapshot, NewGroup, ProgramSettings};
    let spend_rules = rules.unwrap_or(SpendRules {
        max_check_bp: 0,
        spend_step: Kopecks(1),
    });
    let snapshot = GuestSnapshot {
        guest: card.guest_id,
        org: String::new(),
        balance: card.balance,
        available: room.max(Kopecks::ZERO),
        group: Group {
            id: card.group.id,
            rules: NewGroup {
                name: card.group.name.clone(),
                rank: 0,
                discount_bp: card.group.discount_bp,
                accrual_bp: card.group.accrual_bp,
                spend_threshold: Kopecks::ZERO,
                never_downgrade: false,
                daily_ops_limit: 0,
                daily_spend_limit: Kopecks::ZERO,
            },
        },
        program: ProgramSettings {
            name: String::new(),
            max_check_bp: spend_rules.max_check_bp,
            spend_step: spend_rules.spend_step,
            hold_ttl_secs: 0,
            group_period_days: 0,
            utc_offset_minutes: 0,
            accrual_basis: crate::loyalty::rules::AccrualBasis::PaidPart,
            welcome_bonus: Kopecks::ZERO,
            till_enrolment: false,
        },
        blocked: false,
    };
    let quote = rules::quote(&snapshot, check.subtotal, None)?;
    let accrued = rules::payment(&snapshot, spent, check.subtotal, Kopecks::ZERO, &[])?.accrued;
    Ok((quote, accrued))
}

impl LoyaltyBackend for ServerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Server {
            url: self.url.clone(),
            link: self.link,
        }
    }

    fn identify(&mut self, scan: &ScanEvent) -> Result<Identification, LoyaltyError> {
        let answer = self.ready().and_then(|()| {
            self.post_read::<wire::Identification>(
                "/api/v1/identify",
                &wire::IdentifyRequest {
                    kind: scan.kind.into(),
                    payload: scan.payload.clone(),
                },
            )
            .map(Identification::from)
        });
        match answer {
            Ok(found) => {
                self.remember_card(&found.card, Some(scan));
                Ok(found)
            }
            // Offline: a guest identified here recently is found again; a gift needs the server.
            Err(error) if is_away(&error) => match self.cache.find(scan, self.clock.now())? {
                Some(card) => {
                    tracing::info!(
                        guest = card.guest_id,
                        "offline: the guest is identified from the till's cache"
                    );
                    self.cards.insert(card.guest_id, card.clone());
                    Ok(Identification { card, gift: None })
                }
                None if self.link == ServerLink::TokenRefused => Err(error),
                None => Err(LoyaltyError::ServerAway(AwayReason::GuestNotCached)),
            },
            Err(error) => Err(error),
        }
    }

    fn guest_card(&mut self, guest: GuestId) -> Result<GuestCard, LoyaltyError> {
        self.ready()?;
        let card: GuestCard = self
            .get::<wire::CardAnswer>(&format!("/api/v1/guests/{guest}"))?
            .card
            .into();
        self.remember_card(&card, None);
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
                let rules = SpendRules {
                    max_check_bp: quote.max_check_bp,
                    spend_step: quote.spend_step,
                };
                if self.rules != Some(rules) {
                    self.rules = Some(rules);
                    if let Err(error) = self.cache.remember_rules(rules, self.clock.now()) {
                        tracing::warn!(%error, "the programme rules could not be cached");
                    }
                }
                Ok(quote)
            }
            // Offline: the till's own quote (spending only within the owner's caps).
            Err(error) if is_away(&error) => self.quote_offline(guest, check)?.ok_or(error),
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
        // Without the server there is no hold, unless the owner allows offline spending (capped);
        // refused here, before anything is journalled.
        let offline = self.settings.offline_spending();
        match self.ready() {
            Ok(()) => {}
            Err(error) if is_away(&error) && offline => return self.offline_hold(guest, amount, check),
            Err(error) if is_away(&error) => return Err(LoyaltyError::ServerAway(AwayReason::SpendingOff)),
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
            Sent::InDoubt(trouble) if offline => {
                self.went_offline(trouble);
                self.offline_hold(guest, amount, check)
            }
            // It never reached the server: nothing is held, nothing is journalled to undo.
            Sent::InDoubt(trouble) if trouble.nothing_done() => {
                let error = self.went_offline(trouble);
                Err(match error {
                    LoyaltyError::Unavailable(_) => LoyaltyError::ServerAway(AwayReason::SpendingOff),
                    other => other,
                })
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
        // The check's own time travels with it: a queued accrual is booked when the check was
        // closed, not when the server comes back.
        let body = wire::PaymentRequest {
            op_id: op_id.to_string(),
            guest_id: guest,
            hold_id: hold,
            spent: spent.into(),
            check: check.into(),
            check_time: Some(self.check_time_of(op_id)?),
        };
        let sent = match self.ready() {
            Ok(()) => self.write::<wire::PaymentReceipt>(op_id, OpKind::Commit, "/api/v1/payments", &body, hold)?,
            Err(error) if is_away(&error) && queueable => {
                self.queue(op_id, "/api/v1/payments", &body)?;
                return self.provisional_receipt(guest, Kopecks::ZERO, check);
            }
            Err(error) => return Err(error),
        };
        match sent {
            Sent::Ok(receipt) => Ok(receipt.into()),
            Sent::Refused(error) => Err(error),
            Sent::InDoubt(trouble) if queueable => {
                self.went_offline(trouble);
                tracing::info!(op = %op_id, "offline: the accrual is queued and sent later");
                self.provisional_receipt(guest, Kopecks::ZERO, check)
            }
            Sent::InDoubt(trouble) => Err(self.went_offline(trouble)),
        }
    }

    /// Only while the server answers: offline the till cannot hold several accounts together.
    /// Journalled like a hold: a request whose answer was lost stays in doubt and, once the
    /// server answers, the holds it made are released; each hold granted is journalled as a
    /// hold of its own, so that one left open by a stopped till is listed by «Закрыть смену»
    /// and released at the next start.
    fn hold_shared(
        &mut self,
        op_id: &str,
        owner: GuestId,
        shares: &[CardShare],
        check: &CheckInfo,
    ) -> Result<Vec<Option<HoldReceipt>>, LoyaltyError> {
        match self.ready() {
            Ok(()) => {}
            Err(error) if is_away(&error) => return Err(LoyaltyError::ServerAway(AwayReason::NoSharedPayment)),
            Err(error) => return Err(error),
        }
        let body = wire::SharedHoldRequest {
            op_id: op_id.to_string(),
            owner_id: owner,
            shares: shares
                .iter()
                .map(|s| wire::CardShare {
                    guest_id: s.guest,
                    amount: s.amount.into(),
                })
                .collect(),
            check: check.into(),
        };
        let sent = self.write::<wire::SharedHoldAnswer>(op_id, OpKind::SharedHold, SHARED_HOLDS_PATH, &body, None)?;
        let answer = match sent {
            // No answer: the cashier is told the server is away; the journal releases the
            // holds if the server made them.
            Sent::InDoubt(trouble) => {
                self.went_offline(trouble);
                return Err(LoyaltyError::ServerAway(AwayReason::NoSharedPayment));
            }
            sent => self.done(sent)?,
        };
        self.journal_shared_holds(op_id, &body.shares, &answer)?;
        Ok(answer.holds.into_iter().map(|h| h.map(HoldReceipt::from)).collect())
    }

    /// Only while the server answers. Journalled: a lost answer is reported as the server being
    /// away and the workflow sends the same `op_id` again, which the server answers without
    /// booking twice (the journal sends it too, once the server answers). Once paid, each hold
    /// is journalled closed by it.
    fn commit_shared(
        &mut self,
        op_id: &str,
        owner: GuestId,
        payments: &[CardPayment],
        check: &CheckInfo,
    ) -> Result<Vec<PaymentReceipt>, LoyaltyError> {
        self.ready()?;
        let body = wire::SharedPaymentRequest {
            op_id: op_id.to_string(),
            owner_id: owner,
            payments: payments
                .iter()
                .map(|p| wire::CardPayment {
                    guest_id: p.guest,
                    hold_id: p.hold,
                    spent: p.spent.into(),
                })
                .collect(),
            check: check.into(),
        };
        let sent =
            self.write::<wire::SharedPaymentAnswer>(op_id, OpKind::SharedCommit, SHARED_PAYMENTS_PATH, &body, None)?;
        let answer = self.done(sent)?;
        self.journal_shared_commit(op_id, &body.payments)?;
        Ok(answer.receipts.into_iter().map(PaymentReceipt::from).collect())
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

    fn enrolment(&mut self) -> Result<Option<Kopecks>, LoyaltyError> {
        self.ready()?;
        let answer: wire::EnrolmentAnswer = self.get("/api/v1/enrolment")?;
        let bonus = answer.welcome_bonus.kopecks().unwrap_or(Kopecks::ZERO);
        Ok(answer.allowed.then_some(bonus))
    }

    /// Never journalled nor queued: offline the till refuses at once, and an answer lost on the
    /// way is learnt by sending the same op id again (the server answers the same guest).
    fn enrol(
        &mut self,
        op_id: &str,
        code: &ScanEvent,
        phone: &str,
        name: &str,
    ) -> Result<Identification, LoyaltyError> {
        let request = wire::EnrolRequest {
            op_id: op_id.to_string(),
            kind: code.kind.into(),
            code: code.payload.clone(),
            phone: phone.to_string(),
            name: name.to_string(),
        };
        let answer = self
            .ready()
            .and_then(|()| self.post_read::<wire::Identification>("/api/v1/guests", &request));
        match answer {
            Ok(found) => {
                let found = Identification::from(found);
                self.remember_card(&found.card, Some(code));
                Ok(found)
            }
            Err(error) if is_away(&error) && self.link != ServerLink::TokenRefused => {
                Err(LoyaltyError::ServerAway(AwayReason::NoEnrolment))
            }
            Err(error) => Err(error),
        }
    }

    fn find_checks(&mut self, filter: &CheckFilter) -> Result<Vec<CheckSummary>, LoyaltyError> {
        self.ready()?;
        let search = wire::CheckSearch {
            today: filter.today,
            number: filter.number,
            guest_code: filter.guest_code.clone(),
        };
        let checks: Vec<wire::CheckSummary> = self.post_read("/api/v1/checks/search", &search)?;
        Ok(checks.into_iter().map(Into::into).collect())
    }

    fn preview_refund(&mut self, payment_op_id: &str, part: &ReturnPart) -> Result<RefundReceipt, LoyaltyError> {
        self.ready()?;
        let (amount, lines) = wire::return_fields(part);
        let body = wire::RefundPreviewRequest {
            payment_op_id: payment_op_id.to_string(),
            payment_till: None,
            amount,
            lines,
        };
        let receipt: wire::RefundReceipt = self.post_read("/api/v1/refunds/preview", &body)?;
        Ok(receipt.into())
    }

    /// Journalled like every write: a return whose answer was lost stays in doubt and is sent
    /// again (same op id, so at most once) when the server answers.
    fn refund(&mut self, op_id: &str, payment_op_id: &str, part: &ReturnPart) -> Result<RefundReceipt, LoyaltyError> {
        self.ready()?;
        let (amount, lines) = wire::return_fields(part);
        let body = wire::RefundRequest {
            op_id: op_id.to_string(),
            payment_op_id: payment_op_id.to_string(),
            payment_till: None,
            amount,
            lines,
        };
        let sent = self.write::<wire::RefundReceipt>(op_id, OpKind::Refund, "/api/v1/refunds", &body, None)?;
        self.done(sent).map(Into::into)
    }

    fn probe(&mut self) -> Option<Duration> {
        Some(ServerBackend::probe(self))
    }

    /// The journal's entries without an outcome, and holds the server granted that nothing
    /// closed. All of them need the server.
    fn loose_ends(&mut self) -> Result<Vec<LooseEnd>, LoyaltyError> {
        let mut ends = Vec::new();
        for entry in self.journal.pending()? {
            let body: serde_json::Value = serde_json::from_str(&entry.body).unwrap_or_default();
            let kind = match entry.kind {
                OpKind::Commit | OpKind::SharedCommit => LooseEndKind::QueuedPayment,
                OpKind::Refund => LooseEndKind::UnsentReturn,
                OpKind::Hold | OpKind::Void | OpKind::SharedHold => LooseEndKind::InDoubt,
            };
            // A payment shows what the check came to; a hold or return its own amount, the holds
            // of several cards what they hold together.
            let shared: Option<i64> = body["shares"]
                .as_array()
                .map(|shares| shares.iter().filter_map(|s| s["amount"].as_i64()).sum());
            let amount = body["amount"]
                .as_i64()
                .or(shared)
                .or_else(|| body["check"]["subtotal"].as_i64())
                .unwrap_or_default();
            let units = body["lines"]
                .as_array()
                .map_or(0, |lines| lines.iter().filter_map(|l| l["quantity"].as_i64()).sum());
            ends.push(LooseEnd {
                kind,
                op_id: entry.op_id,
                hold: entry.hold_id,
                amount: Kopecks(amount),
                units,
                needs_server: true,
            });
        }
        for entry in self.journal.unclosed_holds()? {
            let body: serde_json::Value = serde_json::from_str(&entry.body).unwrap_or_default();
            ends.push(LooseEnd {
                kind: LooseEndKind::OpenHold,
                op_id: entry.op_id,
                hold: entry.hold_id,
                amount: Kopecks(body["amount"].as_i64().unwrap_or_default()),
                units: 0,
                needs_server: true,
            });
        }
        Ok(ends)
    }

    fn settle_loose_end(&mut self, op_id: &str, end: &LooseEnd) -> Result<(), LoyaltyError> {
        if let (LooseEndKind::OpenHold, Some(hold)) = (end.kind, end.hold) {
            return self.void_hold(op_id, hold);
        }
        // Sending what is in doubt is what `ready` does first; the entry is then checked.
        self.ready()?;
        if let Some(entry) = self.journal.get(&end.op_id)?
            && entry.state == OpState::Pending
        {
            self.resolve_entry(&entry)?;
        }
        match self.journal.get(&end.op_id)? {
            Some(entry) if entry.state == OpState::Pending => Err(self.away_error()),
            _ => Ok(()),
        }
    }

    /// This till's figures for the server's current day, as the server booked them. Never made
    /// up on the till: offline it says the report needs the server. What is in doubt is sent
    /// first (`ready`), so that payments queued while the server was away are counted.
    fn shift_report(&mut self) -> Result<ShiftReport, LoyaltyError> {
        let answer = self
            .ready()
            .and_then(|()| self.get::<wire::ShiftReportAnswer>("/api/v1/shift-report"));
        match answer {
            Ok(report) => Ok(report.into()),
            Err(error) if is_away(&error) && self.link != ServerLink::TokenRefused => {
                Err(LoyaltyError::ServerAway(AwayReason::NoShiftReport))
            }
            Err(error) => Err(error),
        }
    }

    /// Still pending in the journal: the server has not booked it yet.
    fn is_provisional(&self, op_id: &str) -> bool {
        matches!(self.journal.get(op_id), Ok(Some(entry)) if entry.state == OpState::Pending)
    }
}
