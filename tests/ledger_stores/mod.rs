#![allow(dead_code)] // Shared by the ledger suites.
//! The ledger's API on either store, for suites that run on SQLite and PostgreSQL alike: the
//! embedded [`Ledger`] as it is, and [`PgLedger`], the same calls on a PostgreSQL store (a schema
//! of its own per test) through the same engine.

use loyalty_till::domain::{
    CheckFilter, CheckInfo, CheckSummary, GuestCard, GuestId, HistoryEntry, HoldId, HoldReceipt, Identification,
    IdentifierKind, LoyaltyError, PaymentReceipt, RefundReceipt, ReturnPart, ScanKind, SpendQuote, UnixSeconds,
};
use loyalty_till::ledger::{DEFAULT_ORG, Ledger, NewGroup, ProgramSettings};
use loyalty_till::loyalty::engine::{Answer, Op};
#[cfg(not(windows))]
use loyalty_till::loyalty::rules::OpKind;
use loyalty_till::money::Kopecks;
#[cfg(not(windows))]
use loyalty_till::server::pg::PgStore;
#[cfg(not(windows))]
use std::sync::atomic::{AtomicU64, Ordering};

/// The calls the ledger suites make, with the embedded ledger's signatures.
pub trait LedgerApi {
    fn seed_demo(&mut self, now: UnixSeconds) -> Result<bool, LoyaltyError>;
    fn is_empty(&self) -> Result<bool, LoyaltyError>;
    fn program(&self) -> Result<ProgramSettings, LoyaltyError>;
    fn set_program(&mut self, program: &ProgramSettings) -> Result<(), LoyaltyError>;
    fn add_group(&mut self, group: &NewGroup) -> Result<i64, LoyaltyError>;
    fn add_guest(
        &mut self,
        name: &str,
        phone: Option<&str>,
        group: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError>;
    fn add_identifier(&mut self, guest: GuestId, kind: IdentifierKind, value: &str) -> Result<(), LoyaltyError>;
    fn add_gift_code(&mut self, code: &str, guest: GuestId, name: &str, points: Kopecks) -> Result<(), LoyaltyError>;
    fn add_stamp_card(&mut self, name: &str, needed: i64, reward: &str) -> Result<i64, LoyaltyError>;
    fn set_stamps(&mut self, guest: GuestId, card: i64, collected: i64) -> Result<(), LoyaltyError>;
    fn guest_group_id(&self, guest: GuestId) -> Result<i64, LoyaltyError>;
    fn identify(&mut self, payload: &str, kind: ScanKind, now: UnixSeconds) -> Result<Identification, LoyaltyError>;
    fn guest_card(&self, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, LoyaltyError>;
    fn calculate(&self, guest: GuestId, check: &CheckInfo, now: UnixSeconds) -> Result<SpendQuote, LoyaltyError>;
    fn hold(
        &mut self,
        op: &str,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<HoldReceipt, LoyaltyError>;
    #[allow(clippy::too_many_arguments)]
    fn commit_payment(
        &mut self,
        op: &str,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError>;
    fn void_hold(&mut self, op: &str, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError>;
    fn expire_holds(&mut self, now: UnixSeconds) -> Result<usize, LoyaltyError>;
    fn reset_holds(&mut self, guest: GuestId, now: UnixSeconds) -> Result<usize, LoyaltyError>;
    fn credit(
        &mut self,
        op: &str,
        guest: GuestId,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError>;
    fn debit(
        &mut self,
        op: &str,
        guest: GuestId,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError>;
    fn refund(
        &mut self,
        op: &str,
        payment: &str,
        part: impl Into<ReturnPart>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError>;
    fn refund_preview(
        &mut self,
        payment: &str,
        part: impl Into<ReturnPart>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError>;
    fn checks(&mut self, filter: &CheckFilter, now: UnixSeconds) -> Result<Vec<CheckSummary>, LoyaltyError>;
    fn open_holds(&self, guest: Option<GuestId>) -> Result<Vec<HoldReceipt>, LoyaltyError>;
    fn history(&self, guest: GuestId, limit: usize) -> Result<Vec<HistoryEntry>, LoyaltyError>;
    fn check_invariants(&self) -> Result<(), String>;
    /// Any engine operation, for a caller of the till's organisation.
    fn run_op(&mut self, op: Op, now: UnixSeconds) -> Result<Answer, LoyaltyError>;
}

impl LedgerApi for Ledger {
    fn run_op(&mut self, op: Op, now: UnixSeconds) -> Result<Answer, LoyaltyError> {
        Ledger::run(self, &op, Some(DEFAULT_ORG), now)
    }
    fn seed_demo(&mut self, now: UnixSeconds) -> Result<bool, LoyaltyError> {
        Ledger::seed_demo(self, now)
    }
    fn is_empty(&self) -> Result<bool, LoyaltyError> {
        Ledger::is_empty(self)
    }
    fn program(&self) -> Result<ProgramSettings, LoyaltyError> {
        Ledger::program(self)
    }
    fn set_program(&mut self, program: &ProgramSettings) -> Result<(), LoyaltyError> {
        Ledger::set_program(self, program)
    }
    fn add_group(&mut self, group: &NewGroup) -> Result<i64, LoyaltyError> {
        Ledger::add_group(self, group)
    }
    fn add_guest(
        &mut self,
        name: &str,
        phone: Option<&str>,
        group: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        Ledger::add_guest(self, name, phone, group, now)
    }
    fn add_identifier(&mut self, guest: GuestId, kind: IdentifierKind, value: &str) -> Result<(), LoyaltyError> {
        Ledger::add_identifier(self, guest, kind, value)
    }
    fn add_gift_code(&mut self, code: &str, guest: GuestId, name: &str, points: Kopecks) -> Result<(), LoyaltyError> {
        Ledger::add_gift_code(self, code, guest, name, points)
    }
    fn add_stamp_card(&mut self, name: &str, needed: i64, reward: &str) -> Result<i64, LoyaltyError> {
        Ledger::add_stamp_card(self, name, needed, reward)
    }
    fn set_stamps(&mut self, guest: GuestId, card: i64, collected: i64) -> Result<(), LoyaltyError> {
        Ledger::set_stamps(self, guest, card, collected)
    }
    fn guest_group_id(&self, guest: GuestId) -> Result<i64, LoyaltyError> {
        Ledger::guest_group_id(self, guest)
    }
    fn identify(&mut self, payload: &str, kind: ScanKind, now: UnixSeconds) -> Result<Identification, LoyaltyError> {
        Ledger::identify(self, payload, kind, now)
    }
    fn guest_card(&self, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, LoyaltyError> {
        Ledger::guest_card(self, guest, now)
    }
    fn calculate(&self, guest: GuestId, check: &CheckInfo, now: UnixSeconds) -> Result<SpendQuote, LoyaltyError> {
        Ledger::calculate(self, guest, check, now)
    }
    fn hold(
        &mut self,
        op: &str,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<HoldReceipt, LoyaltyError> {
        Ledger::hold(self, op, guest, amount, check, now)
    }
    fn commit_payment(
        &mut self,
        op: &str,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        Ledger::commit_payment(self, op, guest, hold, spent, check, now)
    }
    fn void_hold(&mut self, op: &str, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError> {
        Ledger::void_hold(self, op, hold, now)
    }
    fn expire_holds(&mut self, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        Ledger::expire_holds(self, now)
    }
    fn reset_holds(&mut self, guest: GuestId, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        Ledger::reset_holds(self, guest, now)
    }
    fn credit(
        &mut self,
        op: &str,
        guest: GuestId,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        Ledger::credit(self, op, guest, amount, note, now)
    }
    fn debit(
        &mut self,
        op: &str,
        guest: GuestId,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        Ledger::debit(self, op, guest, amount, note, now)
    }
    fn refund(
        &mut self,
        op: &str,
        payment: &str,
        part: impl Into<ReturnPart>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        Ledger::refund(self, op, payment, part, now)
    }
    fn refund_preview(
        &mut self,
        payment: &str,
        part: impl Into<ReturnPart>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        Ledger::refund_preview(self, payment, part, now)
    }
    fn checks(&mut self, filter: &CheckFilter, now: UnixSeconds) -> Result<Vec<CheckSummary>, LoyaltyError> {
        Ledger::checks(self, filter, now)
    }
    fn open_holds(&self, guest: Option<GuestId>) -> Result<Vec<HoldReceipt>, LoyaltyError> {
        Ledger::open_holds(self, guest)
    }
    fn history(&self, guest: GuestId, limit: usize) -> Result<Vec<HistoryEntry>, LoyaltyError> {
        Ledger::history(self, guest, limit)
    }
    fn check_invariants(&self) -> Result<(), String> {
        Ledger::check_invariants(self)
    }
}

#[cfg(not(windows))]
static SCHEMAS: AtomicU64 = AtomicU64::new(0);

/// The ledger's calls on PostgreSQL, in a schema of its own, every guest in the embedded till's
/// organisation. Not on Windows, where the till keeps the embedded ledger.
#[cfg(not(windows))]
pub struct PgLedger {
    runtime: tokio::runtime::Runtime,
    store: PgStore,
    url: String,
    schema: String,
}

#[cfg(not(windows))]
impl PgLedger {
    /// A new, empty ledger on the server at `url`.
    pub fn empty(url: &str) -> Option<PgLedger> {
        let url = url.to_string();
        let schema = format!(
            "l{}_{}_{}",
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let store = runtime.block_on(PgStore::connect(&url, Some(&schema), 2)).ok()?;
        Some(PgLedger {
            runtime,
            store,
            url,
            schema,
        })
    }

    /// A new, empty ledger whose pool holds one connection: every operation reuses it.
    pub fn empty_on_one_connection(url: &str) -> Option<PgLedger> {
        let mut ledger = PgLedger::empty(url)?;
        ledger.store = ledger
            .runtime
            .block_on(PgStore::connect(&ledger.url, Some(&ledger.schema), 1))
            .ok()?;
        Some(ledger)
    }

    /// Runs `op` but gives up after `polls` polls, as a server does with a request whose client
    /// went away: the operation's future is dropped wherever it is. True when it finished first.
    pub fn run_abandoned(&self, op: Op, polls: usize, now: UnixSeconds) -> bool {
        self.runtime.block_on(async {
            let mut run = std::pin::pin!(self.store.run(&op, Some(DEFAULT_ORG), now));
            for _ in 0..polls {
                let step = std::future::poll_fn(|cx| std::task::Poll::Ready(run.as_mut().poll(cx))).await;
                if step.is_ready() {
                    return true;
                }
                // Lets the connection's task send and receive.
                tokio::task::yield_now().await;
            }
            false
        })
    }

    /// Connects again to the same schema, as a restarted server would.
    pub fn reopen(&mut self) {
        self.store = self
            .runtime
            .block_on(PgStore::connect(&self.url, Some(&self.schema), 2))
            .expect("reconnect");
    }

    fn run(&self, op: Op, now: UnixSeconds) -> Result<Answer, LoyaltyError> {
        self.runtime.block_on(self.store.run(&op, Some(DEFAULT_ORG), now))
    }

    /// Runs the operations at once, each in its own transaction on its own connection of the
    /// pool: what two tills sending at the same moment do.
    pub fn run_together(&self, ops: &[Op], now: UnixSeconds) -> Vec<Result<Answer, LoyaltyError>> {
        let runs = ops.iter().map(|op| self.store.run(op, Some(DEFAULT_ORG), now));
        self.runtime.block_on(futures_join_all(runs))
    }

    #[allow(clippy::too_many_arguments)]
    fn manual(
        &self,
        op: &str,
        guest: GuestId,
        kind: OpKind,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        let op = Op::Manual {
            op_key: op.to_string(),
            guest,
            kind,
            amount,
            note: note.to_string(),
        };
        self.run(op, now)?.into_balance()
    }
}

#[cfg(not(windows))]
impl LedgerApi for PgLedger {
    fn run_op(&mut self, op: Op, now: UnixSeconds) -> Result<Answer, LoyaltyError> {
        self.run(op, now)
    }
    fn seed_demo(&mut self, now: UnixSeconds) -> Result<bool, LoyaltyError> {
        self.runtime.block_on(self.store.seed_demo(DEFAULT_ORG, now))
    }
    fn is_empty(&self) -> Result<bool, LoyaltyError> {
        self.runtime.block_on(self.store.is_empty())
    }
    fn program(&self) -> Result<ProgramSettings, LoyaltyError> {
        self.runtime.block_on(self.store.program(DEFAULT_ORG))
    }
    fn set_program(&mut self, program: &ProgramSettings) -> Result<(), LoyaltyError> {
        self.runtime.block_on(self.store.set_program(program))
    }
    fn add_group(&mut self, group: &NewGroup) -> Result<i64, LoyaltyError> {
        self.run(Op::AddGroup(group.clone()), 0)?.into_id()
    }
    fn add_guest(
        &mut self,
        name: &str,
        phone: Option<&str>,
        group: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        let op = Op::AddGuest {
            org: DEFAULT_ORG.to_string(),
            name: name.to_string(),
            phone: phone.map(str::to_string),
            group_id: group,
        };
        self.run(op, now)?.into_id()
    }
    fn add_identifier(&mut self, guest: GuestId, kind: IdentifierKind, value: &str) -> Result<(), LoyaltyError> {
        let value = value.to_string();
        self.run(Op::AddIdentifier { guest, kind, value }, 0)?.into_done()
    }
    fn add_gift_code(&mut self, code: &str, guest: GuestId, name: &str, points: Kopecks) -> Result<(), LoyaltyError> {
        let op = Op::AddGiftCode {
            guest,
            code: code.to_string(),
            name: name.to_string(),
            points,
        };
        self.run(op, 0)?.into_done()
    }
    fn add_stamp_card(&mut self, name: &str, needed: i64, reward: &str) -> Result<i64, LoyaltyError> {
        self.runtime.block_on(self.store.add_stamp_card(name, needed, reward))
    }
    fn set_stamps(&mut self, guest: GuestId, card: i64, collected: i64) -> Result<(), LoyaltyError> {
        self.runtime.block_on(self.store.set_stamps(guest, card, collected))
    }
    fn guest_group_id(&self, guest: GuestId) -> Result<i64, LoyaltyError> {
        self.runtime.block_on(self.store.guest_group_id(guest))
    }
    fn identify(&mut self, payload: &str, kind: ScanKind, now: UnixSeconds) -> Result<Identification, LoyaltyError> {
        let op = Op::Identify {
            payload: payload.to_string(),
            kind,
        };
        self.run(op, now)?.into_identification()
    }
    fn guest_card(&self, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, LoyaltyError> {
        self.run(Op::Card { guest }, now)?.into_card()
    }
    fn calculate(&self, guest: GuestId, check: &CheckInfo, now: UnixSeconds) -> Result<SpendQuote, LoyaltyError> {
        let op = Op::Quote {
            guest,
            check: check.clone(),
        };
        self.run(op, now)?.into_quote()
    }
    fn hold(
        &mut self,
        op: &str,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<HoldReceipt, LoyaltyError> {
        let op = Op::Hold {
            op_key: op.to_string(),
            guest,
            amount,
            check: check.clone(),
        };
        self.run(op, now)?.into_hold()
    }
    fn commit_payment(
        &mut self,
        op: &str,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        let op = Op::Commit {
            op_key: op.to_string(),
            guest,
            hold,
            spent,
            check: check.clone(),
        };
        self.run(op, now)?.into_payment()
    }
    fn void_hold(&mut self, op: &str, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError> {
        let op = Op::Void {
            op_key: op.to_string(),
            hold,
        };
        self.run(op, now)?.into_voided()
    }
    fn expire_holds(&mut self, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        let count = self
            .runtime
            .block_on(self.store.run(&Op::ExpireHolds, None, now))?
            .into_count()?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }
    fn reset_holds(&mut self, guest: GuestId, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        let count = self.run(Op::ResetHolds { op_key: None, guest }, now)?.into_count()?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }
    fn credit(
        &mut self,
        op: &str,
        guest: GuestId,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        self.manual(op, guest, OpKind::ManualCredit, amount, note, now)
    }
    fn debit(
        &mut self,
        op: &str,
        guest: GuestId,
        amount: Kopecks,
        note: &str,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        self.manual(op, guest, OpKind::ManualDebit, amount, note, now)
    }
    fn refund(
        &mut self,
        op: &str,
        payment: &str,
        part: impl Into<ReturnPart>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        let op = Op::Refund {
            op_key: op.to_string(),
            payment_op_key: payment.to_string(),
            part: part.into(),
        };
        self.run(op, now)?.into_refund()
    }
    fn refund_preview(
        &mut self,
        payment: &str,
        part: impl Into<ReturnPart>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        let op = Op::RefundPreview {
            payment_op_key: payment.to_string(),
            part: part.into(),
        };
        self.run(op, now)?.into_refund()
    }
    fn checks(&mut self, filter: &CheckFilter, now: UnixSeconds) -> Result<Vec<CheckSummary>, LoyaltyError> {
        self.run(Op::Checks(filter.clone()), now)?.into_checks()
    }
    fn open_holds(&self, guest: Option<GuestId>) -> Result<Vec<HoldReceipt>, LoyaltyError> {
        // Every organisation's holds when no guest is named: the operator's view.
        let op = Op::OpenHolds { guest };
        let org = guest.map(|_| DEFAULT_ORG);
        self.runtime.block_on(self.store.run(&op, org, 0))?.into_holds()
    }
    fn history(&self, guest: GuestId, limit: usize) -> Result<Vec<HistoryEntry>, LoyaltyError> {
        self.run(Op::History { guest, limit }, 0)?.into_history()
    }
    fn check_invariants(&self) -> Result<(), String> {
        self.runtime.block_on(self.store.check_invariants())
    }
}

#[cfg(not(windows))]
impl Drop for PgLedger {
    fn drop(&mut self) {
        // Each test's schema goes with it, so that repeated runs do not fill the server.
        let url = self.url.clone();
        let schema = self.schema.clone();
        self.runtime.block_on(async move {
            if let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                tokio::spawn(connection);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
            }
        });
    }
}

/// Polls every future until all are done (the runtime interleaves them at each await).
#[cfg(not(windows))]
async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *slot = Some(value),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// Each generic test named, once per store: `sqlite::name` on the embedded ledger and
/// `postgres::name` on `PgLedger` (run when the test PostgreSQL is there). The test file has
/// `server_support` and `PgLedger` in scope.
macro_rules! on_both_ledgers {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name::<loyalty_till::ledger::Ledger>();
            })*
        }

        #[cfg(not(windows))]
        mod postgres {
            $(#[test]
            fn $name() {
                if super::server_support::pg_url().is_some() {
                    super::$name::<super::PgLedger>();
                }
            })*
        }
    };
}
