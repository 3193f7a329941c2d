//! The loyalty ledger on PostgreSQL: the rows of the one loyalty engine
//! ([`crate::loyalty::engine`]) in PostgreSQL's dialect. Nothing here decides a rule: [`PgTx`]
//! reads and writes rows for the engine, exactly as the SQLite ledger's `SqliteTx` does.
//!
//! Concurrency: every write runs in a READ COMMITTED transaction that first locks the guest's
//! row (`SELECT … FOR UPDATE`). All writes that change a guest's balance or holds take that lock,
//! so the available balance a hold is checked against cannot change under it: no double spend.
//! The background expiry only releases holds and needs no guest lock. A repeated operation id
//! is found after the lock; two requests with one id at once meet at the unique index, and the
//! loser is retried and then sees the winner's result. Serialization failures, deadlocks and
//! unique violations are retried a few times.
//!
//! Driver: tokio-postgres with deadpool-postgres for the pool (no TLS: a reverse proxy or a
//! loopback/private network carries the connection).

use crate::domain::{
    CheckSummary, Gift, GuestCard, GuestId, HistoryEntry, HoldId, HoldReceipt, IdentifierKind, LoyaltyError,
    StampProgress, UnixSeconds,
};
use crate::loyalty::engine::{
    Ahead, Answer, AuditRow, ChecksQuery, LedgerTx, Link, NewGuestRow, NewPayment, Op, OpRecord, PaymentContext,
    Posting, ProgramScope, StampCount,
};
use crate::loyalty::migrate::{self, Dialect};
use crate::loyalty::rewards::{self, GiftDef, PromotionDef, StampCardDef};
use crate::loyalty::rows::{
    ACCOUNT_INSERT_SQL, CARD_GUEST_SQL, Columns, GIFT_COLUMNS, GROUP_COLUMNS, GUEST_PROMOTIONS_SQL,
    GUEST_STAMP_CARDS_SQL, PROGRAM_COLUMNS, SNAPSHOT_COLUMNS, gift_at, group_at, promotion_at, snapshot_at,
};
use crate::loyalty::rules::{
    GiftCodeRow, Group, GuestSnapshot, HoldPlan, HoldRow, HoldStatus, NewGroup, PaidCheck, ProgramSettings, RefundPlan,
};
use crate::loyalty::spend_days;
use crate::mask::mask_phone;
use crate::money::Kopecks;
use crate::server::store::{BoxFuture, Caller, Database};
use crate::server::token_cache::TokenCache;
use deadpool_postgres::ClientWrapper;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::{Arc, LazyLock};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Serialises schema creation when several servers start on a new database.
const SCHEMA_LOCK: i64 = 0x6c6f_7961_6c74;
const MAX_ATTEMPTS: u32 = 8;

/// What a transaction body fails with: a rule of the ledger, or the database.
pub enum TxError {
    Loyalty(LoyaltyError),
    Db(tokio_postgres::Error),
}

impl From<LoyaltyError> for TxError {
    fn from(error: LoyaltyError) -> Self {
        TxError::Loyalty(error)
    }
}

impl From<tokio_postgres::Error> for TxError {
    fn from(error: tokio_postgres::Error) -> Self {
        TxError::Db(error)
    }
}

type TxResult<T> = Result<T, TxError>;

/// PostgreSQL's messages name constraints and tables; bound values (phones, codes) are never in them.
fn storage(error: &tokio_postgres::Error) -> LoyaltyError {
    match error.as_db_error() {
        Some(db) => LoyaltyError::Storage(format!("{}: {}", db.code().code(), db.message())),
        None => LoyaltyError::Storage(error.to_string()),
    }
}

fn retryable(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::UNIQUE_VIOLATION
    )
}

/// Runs `$body` (an expression using `$t`, a [`PgTx`]) in a READ COMMITTED transaction,
/// committing on Ok and retrying when PostgreSQL asks for it.
macro_rules! in_tx {
    ($store:expr, $t:ident => $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = $store.client().await?;
            #[allow(unused_mut)]
            let mut $t = PgTx::begin(&client).await.map_err(|e| storage(&e))?;
            let outcome: TxResult<_> = $body;
            let outcome = match outcome {
                Ok(value) => $t.commit().await.map(|()| value).map_err(TxError::Db),
                Err(error) => {
                    $t.rollback().await;
                    Err(error)
                }
            };
            match outcome {
                Ok(value) => break Ok(value),
                Err(TxError::Loyalty(error)) => break Err(error),
                Err(TxError::Db(error)) if retryable(&error) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, "retrying a PostgreSQL transaction: {error}");
                    continue;
                }
                Err(TxError::Db(error)) => break Err(storage(&error)),
            }
        }
    }};
}

/// Runs `$body` (an expression using `&mut $t`, a [`PgTx`]) in a transaction and tells the
/// engine's transaction it is done.
macro_rules! on_engine {
    ($store:expr, $t:ident => $body:expr) => {
        in_tx!($store, $t => async {
            let value = $body.await?;
            $t.finish().await?;
            Ok(value)
        }.await)
    };
}

pub struct PgStore {
    pool: Pool,
    /// For the connection that listens for changes to the tokens ([`watch_token_changes`]).
    config: tokio_postgres::Config,
}

impl PgStore {
    /// Connects (a pool of `size`) and brings the schema up to date. With `schema`, everything
    /// lives in that PostgreSQL schema (one per test).
    pub async fn connect(url: &str, schema: Option<&str>, size: usize) -> Result<PgStore, LoyaltyError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| LoyaltyError::Storage(format!("bad PostgreSQL URL: {e}")))?;
        if let Some(schema) = schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(LoyaltyError::Storage("bad schema name".to_string()));
            }
            config.options(format!("-c search_path={schema}"));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size.max(1))
            .build()
            .map_err(|e| LoyaltyError::Storage(format!("PostgreSQL pool: {e}")))?;
        let store = PgStore { pool, config };
        store.migrate(schema).await?;
        Ok(store)
    }

    /// Applies the schema versions this database lacks, once, under an advisory lock (several
    /// servers may start on a new database at once). Nothing is created twice, so PostgreSQL has
    /// no NOTICE to print at start-up.
    async fn migrate(&self, schema: Option<&str>) -> Result<(), LoyaltyError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| storage(&e))?;
        let step = async {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await?;
            if let Some(schema) = schema {
                let exists = tx
                    .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
                    .await?
                    .is_some();
                if !exists {
                    tx.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
                }
            }
            let row = tx
                .query_one(
                    "SELECT to_regclass('schema_version') IS NOT NULL, to_regclass('guests') IS NOT NULL",
                    &[],
                )
                .await?;
            let (versioned, has_guests): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
            let current: i64 = if versioned {
                tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
                    .await?
                    .try_get(0)?
            } else {
                tx.batch_execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
                    .await?;
                // A database made before versions were recorded has version 3's shape.
                if has_guests { 3 } else { 0 }
            };
            Ok::<_, tokio_postgres::Error>(current)
        };
        let current = step.await.map_err(|e| storage(&e))?;
        let steps = migrate::pending(current).map_err(LoyaltyError::Storage)?;
        for step in steps {
            let sql = step.sql(Dialect::Postgres);
            if !sql.is_empty() {
                tx.batch_execute(sql).await.map_err(|e| storage(&e))?;
            }
            tracing::info!(version = step.version, "PostgreSQL schema: {}", step.what);
        }
        if !steps.is_empty() {
            tx.batch_execute(&format!(
                "DELETE FROM schema_version; INSERT INTO schema_version VALUES ({})",
                migrate::LATEST
            ))
            .await
            .map_err(|e| storage(&e))?;
        }
        tx.commit().await.map_err(|e| storage(&e))
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, LoyaltyError> {
        self.pool
            .get()
            .await
            .map_err(|e| LoyaltyError::Unavailable(format!("PostgreSQL: {e}")))
    }
    // ----- Tokens -----

    pub async fn save_token(&self, org: &str, till: &str, hash: &str, now: UnixSeconds) -> Result<(), LoyaltyError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO till_tokens (org, till, token_hash, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (org, till) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at",
                &[&org, &till, &hash, &now],
            )
            .await
            .map_err(|e| storage(&e))?;
        Ok(())
    }

    /// One prepared, indexed read: run for a request whose token the server does not keep
    /// ([`super::token_cache`]).
    pub async fn find_token(&self, hash: &str) -> Result<Option<super::store::KnownToken>, LoyaltyError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT org, till, last_seen_at FROM till_tokens WHERE token_hash = $1")
            .await
            .map_err(|e| storage(&e))?;
        let row = client.query_opt(&statement, &[&hash]).await.map_err(|e| storage(&e))?;
        Ok(row.map(|row| {
            (
                Caller {
                    org: row.get(0),
                    till: row.get(1),
                },
                row.get(2),
            )
        }))
    }

    // ----- Loyalty operations: the engine on a PostgreSQL transaction -----

    /// Runs a loyalty operation for a caller of `org` (`None`: every organisation).
    pub async fn run(&self, op: &Op, org: Option<&str>, now: UnixSeconds) -> Result<Answer, LoyaltyError> {
        in_tx!(self, t => op.run(&mut t, org, now).await)
    }

    /// [`PgStore::run`] with the change's audit row written in the same transaction.
    pub async fn run_audited(
        &self,
        op: &Op,
        org: Option<&str>,
        now: UnixSeconds,
        audit: &crate::backoffice::db::Audit,
    ) -> Result<Answer, LoyaltyError> {
        in_tx!(self, t => async {
            let answer = op.run(&mut t, org, now).await?;
            // On the transaction's connection, after the operation's statements: PostgreSQL runs
            // them in order, inside the transaction (its deferred writes follow with COMMIT).
            let client: &ClientWrapper = t.tx;
            crate::backoffice::db::pg_query(client, crate::loyalty::rows::AUDIT_INSERT, &audit.params(&answer)).await?;
            Ok(answer)
        }.await)
    }

    /// Statements in one transaction (see `Database::write_all`).
    pub async fn write_all(
        &self,
        statements: &[(&'static str, Vec<crate::backoffice::db::Val>)],
        first_must_match: bool,
    ) -> Result<Option<Vec<crate::backoffice::db::Rows>>, LoyaltyError> {
        let client = self.client().await?;
        client.batch_execute("BEGIN").await.map_err(|e| storage(&e))?;
        let outcome = async {
            let mut answers = Vec::with_capacity(statements.len());
            for (index, (sql, params)) in statements.iter().enumerate() {
                let rows = crate::backoffice::db::pg_query(&client, sql, params).await?;
                if index == 0 && first_must_match && rows.is_empty() {
                    return Ok(None);
                }
                answers.push(rows);
            }
            Ok(Some(answers))
        }
        .await;
        let end = if matches!(outcome, Ok(Some(_))) {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        client.batch_execute(end).await.map_err(|e| storage(&e))?;
        outcome
    }

    // ----- Reads -----

    /// True when there are no guests.
    pub async fn is_empty(&self) -> Result<bool, LoyaltyError> {
        in_tx!(self, t => async { Ok(!t.has_guests().await?) }.await)
    }

    /// An organisation's programme (one without guests yet: the template it will start with).
    pub async fn program(&self, org: &str) -> Result<ProgramSettings, LoyaltyError> {
        self.run(&Op::Program, Some(org), 0).await?.into_program()
    }

    // ----- Back office and tests -----

    /// Sets the programme of every organisation and the template for new ones.
    pub async fn set_program(&self, p: &ProgramSettings) -> Result<(), LoyaltyError> {
        self.run(&Op::SetProgram(p.clone()), None, 0).await?.into_done()
    }

    pub async fn add_stamp_card(&self, name: &str, needed: i64, reward: &str) -> Result<i64, LoyaltyError> {
        on_engine!(self, t => t.insert_stamp_card(name, needed, reward))
    }

    pub async fn set_stamps(&self, guest: GuestId, card_id: i64, collected: i64) -> Result<(), LoyaltyError> {
        on_engine!(self, t => t.set_stamps(guest, card_id, collected))
    }

    /// Creates the demo programme in `org` when there are no guests; true when it did.
    pub async fn seed_demo(&self, org: &str, now: UnixSeconds) -> Result<bool, LoyaltyError> {
        on_engine!(self, t => crate::loyalty::demo::seed(&mut t, org, now))
    }

    pub async fn add_promotion(
        &self,
        name: &str,
        description: &str,
        starts_at: UnixSeconds,
        ends_at: UnixSeconds,
    ) -> Result<i64, LoyaltyError> {
        on_engine!(self, t => t.insert_promotion(name, description, starts_at, ends_at))
    }

    /// The group a guest is in.
    pub async fn guest_group_id(&self, guest: GuestId) -> Result<i64, LoyaltyError> {
        in_tx!(self, t => async { Ok(guest_group(t.tx, guest).await?.id) }.await)
    }

    /// Proves the ledger is consistent, with the same invariants as the SQLite ledger.
    pub async fn check_invariants(&self) -> Result<(), String> {
        let client = self.client().await.map_err(|e| e.to_string())?;
        let mut violations = Vec::new();
        for (rule, sql) in crate::loyalty::INVARIANT_QUERIES {
            let rows = client.query(sql, &[]).await.map_err(|e| format!("{rule}: {e}"))?;
            if !rows.is_empty() {
                let found: Vec<String> = rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect();
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

impl Database for PgStore {
    fn run<'a>(
        &'a self,
        op: Op,
        org: Option<&'a str>,
        now: UnixSeconds,
    ) -> BoxFuture<'a, Result<Answer, LoyaltyError>> {
        Box::pin(async move { PgStore::run(self, &op, org, now).await })
    }

    fn run_audited<'a>(
        &'a self,
        op: Op,
        org: Option<&'a str>,
        now: UnixSeconds,
        audit: crate::backoffice::db::Audit,
    ) -> BoxFuture<'a, Result<Answer, LoyaltyError>> {
        Box::pin(async move { PgStore::run_audited(self, &op, org, now, &audit).await })
    }

    fn write_all(
        &self,
        statements: Vec<(&'static str, Vec<crate::backoffice::db::Val>)>,
        first_must_match: bool,
    ) -> BoxFuture<'_, Result<Option<Vec<crate::backoffice::db::Rows>>, LoyaltyError>> {
        Box::pin(async move { PgStore::write_all(self, &statements, first_must_match).await })
    }

    fn save_token<'a>(
        &'a self,
        org: &'a str,
        till: &'a str,
        hash: &'a str,
        now: UnixSeconds,
    ) -> BoxFuture<'a, Result<(), LoyaltyError>> {
        Box::pin(PgStore::save_token(self, org, till, hash, now))
    }

    fn find_token<'a>(
        &'a self,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<super::store::KnownToken>, LoyaltyError>> {
        Box::pin(PgStore::find_token(self, hash))
    }

    fn watch_tokens(&self, cache: Arc<TokenCache>) {
        tokio::spawn(watch_token_changes(self.config.clone(), cache));
    }

    fn check_invariants(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(PgStore::check_invariants(self))
    }

    fn query<'a>(
        &'a self,
        sql: &'static str,
        params: Vec<crate::backoffice::db::Val>,
        _write: bool,
    ) -> BoxFuture<'a, Result<crate::backoffice::db::Rows, LoyaltyError>> {
        Box::pin(async move {
            let client = self.client().await?;
            crate::backoffice::db::pg_query(&client, sql, &params).await
        })
    }
}

fn hold_receipt(row: &Row) -> TxResult<HoldReceipt> {
    Ok(HoldReceipt {
        hold_id: row.try_get(0)?,
        amount: Kopecks(row.try_get(1)?),
        expires_at: row.try_get(2)?,
    })
}

// ----- The engine's rows -----

/// One PostgreSQL transaction (READ COMMITTED) as the engine sees it. The guest's row lock taken
/// by [`LedgerTx::begin_guest_write`] serialises every write about a guest: the available balance
/// a hold is checked against cannot change under it, and the idempotency record is read after
/// the lock, so a repeat that waited sees the first request's record.
///
/// Its `BEGIN` travels with its first statements and its `COMMIT` with its deferred writes: a
/// payment's two transactions take 7 round trips to PostgreSQL instead of 13. PostgreSQL runs a
/// connection's requests in the order they were sent, so a statement sent after `BEGIN` is in
/// the transaction whether or not `BEGIN`'s answer has come back yet.
struct PgTx<'a> {
    tx: &'a ClientWrapper,
    /// `BEGIN`, sent, its answer not read yet (read with the next pipeline that waits).
    begin: Option<Pipelined<'a, u64>>,
    /// Writes whose answer nothing waits for, sent together with `COMMIT`.
    deferred: Vec<Deferred>,
    /// Neither committed nor rolled back: dropping it then rolls back.
    open: bool,
    /// What the operation said it does after the guest's lock ([`LedgerTx::read_ahead`]).
    ahead: Option<Ahead>,
    /// What was read with the guest's lock for a payment.
    read: Option<ReadAhead>,
    /// An id taken for the row the operation announced (a payment's or a hold's): its insert is
    /// then deferred.
    next_id: Option<i64>,
}

/// A payment's reads, sent with the guest's lock ([`Ahead::Payment`]).
struct ReadAhead {
    guest: GuestId,
    hold: Option<HoldId>,
    stamps: Vec<Row>,
    hold_rows: Vec<Row>,
    /// The window's start and spending at the group period of the guest's programme.
    window: Vec<Row>,
    groups: Vec<Row>,
}

impl<'a> PgTx<'a> {
    /// Sends `BEGIN` without waiting for its answer.
    async fn begin(tx: &'a ClientWrapper) -> Result<PgTx<'a>, tokio_postgres::Error> {
        let mut begin: Pipelined<'a, u64> = Box::pin(async move {
            tx.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                .await
                .map(|()| 0)
        });
        // tokio-postgres sends a request when its future is first polled.
        let sent = std::future::poll_fn(|cx| std::task::Poll::Ready(begin.as_mut().poll(cx))).await;
        let begin = match sent {
            std::task::Poll::Ready(answer) => {
                answer?;
                None
            }
            std::task::Poll::Pending => Some(begin),
        };
        Ok(PgTx {
            tx,
            begin,
            deferred: Vec::new(),
            open: true,
            ahead: None,
            read: None,
            next_id: None,
        })
    }

    /// Sends the deferred writes and `COMMIT` at once and waits for all their answers. After
    /// a failure the transaction is rolled back (a `COMMIT` that follows a failed write ends the
    /// transaction as a rollback anyway).
    async fn commit(mut self) -> Result<(), tokio_postgres::Error> {
        let outcome = self.send_with_commit().await;
        if outcome.is_err() {
            self.rollback().await;
        }
        self.open = false;
        outcome
    }

    async fn send_with_commit(&mut self) -> Result<(), tokio_postgres::Error> {
        let tx = self.tx;
        let deferred = std::mem::take(&mut self.deferred);
        let chains = chain(&deferred);
        let mut statements = Vec::with_capacity(chains.len());
        for chained in &chains {
            statements.push(tx.prepare_cached(&chained.sql()).await?);
        }
        let params: Vec<_> = chains.iter().map(Chained::params).collect();
        let mut pipeline: Vec<Pipelined<'_, u64>> = Vec::with_capacity(chains.len() + 2);
        if let Some(begin) = self.begin.take() {
            pipeline.push(begin);
        }
        pipeline.extend(
            statements
                .iter()
                .zip(&params)
                .map(|(statement, params)| Box::pin(tx.execute(statement, params)) as Pipelined<'_, u64>),
        );
        pipeline.push(Box::pin(async move { tx.batch_execute("COMMIT").await.map(|()| 0) }));
        all_in_order(pipeline).await?;
        Ok(())
    }

    /// Ends the transaction without keeping anything. A connection that cannot even roll back
    /// is broken, and the pool drops a closed connection when it is next taken.
    async fn rollback(&mut self) {
        self.begin = None;
        if let Err(error) = self.tx.batch_execute("ROLLBACK").await {
            tracing::warn!("PostgreSQL rollback failed: {error}");
        }
        self.open = false;
    }

    /// Waits for `BEGIN`'s answer with `query`'s (sent after it), so a failed `BEGIN` is seen
    /// before anything is read.
    async fn after_begin<T>(
        &mut self,
        query: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, tokio_postgres::Error> {
        match self.begin.take() {
            None => query.await,
            Some(begin) => {
                let (began, answer) = in_order(begin, query).await;
                began?;
                answer
            }
        }
    }
}

impl Drop for PgTx<'_> {
    /// A transaction abandoned half way (its request was cancelled) must not go back to the pool
    /// open: `ROLLBACK` is sent now, ahead of whatever the connection's next user sends.
    fn drop(&mut self) {
        if self.open {
            self.begin = None;
            let mut rollback = std::pin::pin!(self.tx.batch_execute("ROLLBACK"));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let _ = rollback.as_mut().poll(&mut cx);
        }
    }
}

/// A write the engine made that returns nothing it reads: kept until the operation is done, then
/// sent with the others in one pipeline (one round trip instead of one each).
enum Deferred {
    CloseHold {
        hold: HoldId,
        status: &'static str,
        committed: Option<i64>,
        at: UnixSeconds,
    },
    Void {
        op_key: String,
        hold: HoldId,
        at: UnixSeconds,
    },
    Stamps {
        guest: GuestId,
        card: i64,
        collected: i64,
    },
    Group {
        guest: GuestId,
        group: i64,
    },
    RefundBalance {
        refund: i64,
        balance: i64,
    },
    Post {
        guest: GuestId,
        delta: i64,
        kind: &'static str,
        note: String,
        at: UnixSeconds,
        op_id: Option<String>,
        payment_id: Option<i64>,
        refund_id: Option<i64>,
    },
    Record(OpRecord),
    Report {
        org: String,
        quarter: i64,
        scope: String,
        figures: [i64; crate::loyalty::report::CHECK_FIGURES],
    },
    /// A hold whose id was taken ahead.
    Hold {
        id: HoldId,
        op_key: String,
        guest: GuestId,
        amount: i64,
        created_at: UnixSeconds,
        expires_at: UnixSeconds,
    },
    /// A payment whose id was taken ahead, booked in its day's spending with it.
    Payment(Box<DeferredPayment>),
}

/// A payment's columns, as [`insert_payment_sql`] lists them after the id.
struct DeferredPayment {
    id: i64,
    op_key: String,
    guest: GuestId,
    hold: Option<HoldId>,
    spent: i64,
    subtotal: i64,
    gift_codes: String,
    amount_due: i64,
    accrued: i64,
    balance_after: i64,
    new_group: Option<String>,
    at: UnixSeconds,
    offline_requested: Option<i64>,
    owner_payment: Option<i64>,
    lines: Option<String>,
}

impl Deferred {
    /// The part this write is in a joined statement, its parameters [`Deferred::params`]; `None`
    /// for a posting, which [`post_run`] joins with the guest's other postings.
    fn sql(&self) -> Option<&'static str> {
        Some(match self {
            Deferred::CloseHold { .. } => {
                "UPDATE holds SET status = $2, committed_amount = $3, closed_at = $4 WHERE id = $1"
            }
            Deferred::Void { .. } => "INSERT INTO hold_voids (op_id, hold_id, at) VALUES ($1, $2, $3)",
            Deferred::Stamps { .. } => {
                "INSERT INTO stamps (guest_id, card_id, collected) VALUES ($1, $2, $3)
                 ON CONFLICT (guest_id, card_id) DO UPDATE SET collected = excluded.collected"
            }
            Deferred::Group { .. } => "UPDATE guests SET group_id = $2 WHERE id = $1",
            Deferred::RefundBalance { .. } => "UPDATE refunds SET balance_after = $2 WHERE id = $1",
            Deferred::Post { .. } => return None,
            Deferred::Record(_) => "INSERT INTO op_log (op_key, kind, fingerprint, answer) VALUES ($1, $2, $3, $4)",
            Deferred::Report { .. } => crate::loyalty::report::BOOK_SQL,
            Deferred::Hold { .. } => HOLD_INSERT_SQL,
            Deferred::Payment(_) => PAYMENT_INSERT_WITH_ID_SQL,
        })
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        match self {
            Deferred::CloseHold {
                hold,
                status,
                committed,
                at,
            } => vec![hold, status, committed, at],
            Deferred::Void { op_key, hold, at } => vec![op_key, hold, at],
            Deferred::Stamps { guest, card, collected } => vec![guest, card, collected],
            Deferred::Group { guest, group } => vec![guest, group],
            Deferred::RefundBalance { refund, balance } => vec![refund, balance],
            // Bound by post_run, with the run's sums.
            Deferred::Post { .. } => Vec::new(),
            Deferred::Record(r) => vec![&r.key, &r.kind, &r.fingerprint, &r.answer],
            Deferred::Report {
                org,
                quarter,
                scope,
                figures,
            } => {
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![org, quarter, scope];
                params.extend(figures.iter().map(|f| f as &(dyn ToSql + Sync)));
                params
            }
            Deferred::Hold {
                id,
                op_key,
                guest,
                amount,
                created_at,
                expires_at,
            } => vec![id, op_key, guest, amount, created_at, expires_at],
            Deferred::Payment(p) => vec![
                &p.id,
                &p.op_key,
                &p.guest,
                &p.hold,
                &p.spent,
                &p.subtotal,
                &p.gift_codes,
                &p.amount_due,
                &p.accrued,
                &p.balance_after,
                &p.new_group,
                &p.at,
                &p.offline_requested,
                &p.owner_payment,
                &p.lines,
            ],
        }
    }

    /// The row this write changes, where two writes of one statement could meet (PostgreSQL
    /// changes a row at most once per statement): a guest's row, a stamp count, a hold, a refund,
    /// a report's quarter, an operation's record.
    fn row(&self) -> Option<String> {
        match self {
            Deferred::CloseHold { hold, .. } => Some(format!("hold {hold}")),
            Deferred::Void { .. } => None,
            // A later write to the row (none is made today) must not share its statement: it
            // could not see the row a sibling part inserts.
            Deferred::Hold { id, .. } => Some(format!("hold {id}")),
            Deferred::Payment(p) => Some(format!("payment {}", p.id)),
            Deferred::Stamps { guest, card, .. } => Some(format!("stamps {guest} {card}")),
            Deferred::Group { guest, .. } | Deferred::Post { guest, .. } => Some(format!("guest {guest}")),
            Deferred::RefundBalance { refund, .. } => Some(format!("refund {refund}")),
            Deferred::Record(record) => Some(format!("record {}", record.key)),
            Deferred::Report {
                org, quarter, scope, ..
            } => Some(format!("report {org} {quarter} {scope}")),
        }
    }
}

/// Deferred writes joined into as few statements as PostgreSQL allows (each a `WITH` of
/// data-modifying parts): a statement costs the server a bind, an execution, and its own locks
/// and snapshot, whatever it writes.
#[derive(Default)]
struct Chained<'a> {
    parts: Vec<String>,
    params: Vec<Param<'a>>,
    /// Values the statement computed (a run of postings' sums), bound by [`Param::Computed`].
    computed: Vec<i64>,
    rows: std::collections::HashSet<String>,
}

/// A parameter of a joined statement.
enum Param<'a> {
    Write(&'a (dyn ToSql + Sync)),
    Computed(usize),
}

impl<'a> Chained<'a> {
    fn sql(&self) -> String {
        format!("WITH {} SELECT 1", self.parts.join(", "))
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| match p {
                Param::Write(value) => *value,
                Param::Computed(at) => &self.computed[*at] as &(dyn ToSql + Sync),
            })
            .collect()
    }

    /// Adds `sql` (its parameters numbered from `$1`) as a part named `name`.
    fn part(&mut self, name: &str, sql: &str, params: impl IntoIterator<Item = Param<'a>>) {
        self.parts
            .push(format!("{name} AS ({})", renumber(sql, self.params.len())));
        self.params.extend(params);
    }

    fn value(&mut self, value: i64) -> Param<'a> {
        self.computed.push(value);
        Param::Computed(self.computed.len() - 1)
    }
}

/// `sql` with each `$n` made `$(n + by)`.
fn renumber(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' {
            let mut digits = String::new();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                digits.push(d);
            }
            match digits.parse::<usize>() {
                Ok(n) => out.push_str(&(n + by).to_string()),
                Err(_) => out.push_str(&digits),
            }
        }
    }
    out
}

/// One operation's deferred writes as statements, in their order. The postings of one guest that
/// follow each other change the guest's row once (each posting still recorded with the balance
/// after it); a write to a row the statement already changes starts the next statement, since
/// PostgreSQL changes a row at most once per statement.
fn chain(deferred: &[Deferred]) -> Vec<Chained<'_>> {
    let mut out = Vec::new();
    let mut current = Chained::default();
    let mut at = 0;
    while at < deferred.len() {
        let write = &deferred[at];
        let run = match write {
            Deferred::Post { guest, .. } => deferred[at..]
                .iter()
                .take_while(|w| matches!(w, Deferred::Post { guest: g, .. } if g == guest))
                .count(),
            _ => 1,
        };
        if let Some(row) = write.row()
            && current.rows.contains(&row)
        {
            out.push(std::mem::take(&mut current));
        }
        current.rows.extend(write.row());
        let name = format!("w{}", current.parts.len());
        let params = || write.params().into_iter().map(Param::Write).collect::<Vec<_>>();
        match (write, write.sql()) {
            (Deferred::Post { guest, .. }, _) => post_run(&mut current, &name, guest, &deferred[at..at + run]),
            (Deferred::Payment(_), Some(sql)) => {
                current.part(&name, sql, params());
                current.part(&format!("{name}b"), &spend_days::pg_book_inserted_payment(&name), []);
            }
            (_, Some(sql)) => current.part(&name, sql, params()),
            // Only a posting has no part of its own, and it was joined above: a write is never
            // dropped in silence (a panic rolls the transaction back).
            (_, None) => unreachable!("a deferred write without a statement"),
        }
        at += run;
    }
    if !current.parts.is_empty() {
        out.push(current);
    }
    out
}

/// The postings `run` (all of `guest`) as two parts: the guest's balance changed once by their
/// sum, and each posting's operation with the balance after it (the new balance less the
/// postings after it). A guest's row that is missing leaves the balance after NULL, which the
/// NOT NULL column refuses, so the transaction fails rather than losing the postings.
fn post_run<'a>(chained: &mut Chained<'a>, name: &str, guest: &'a GuestId, run: &'a [Deferred]) {
    let total: i64 = run
        .iter()
        .map(|w| match w {
            Deferred::Post { delta, .. } => *delta,
            _ => 0,
        })
        .sum();
    let changed = format!("{name}b");
    let total = chained.value(total);
    chained.part(
        &changed,
        "UPDATE guests SET balance = balance + $2 WHERE id = $1 RETURNING balance",
        [Param::Write(guest), total],
    );
    let mut rows = Vec::with_capacity(run.len());
    let mut params = Vec::with_capacity(run.len() * 9);
    for (index, write) in run.iter().enumerate() {
        let Deferred::Post {
            delta,
            kind,
            note,
            at,
            op_id,
            payment_id,
            refund_id,
            ..
        } = write
        else {
            continue;
        };
        let later: i64 = run[index + 1..]
            .iter()
            .map(|w| match w {
                Deferred::Post { delta, .. } => *delta,
                _ => 0,
            })
            .sum();
        let n = index * 9;
        rows.push(format!(
            "(${}, ${}, ${}, (SELECT balance FROM {changed}) - ${}, ${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6,
            n + 7,
            n + 8,
            n + 9
        ));
        let later = chained.value(later);
        params.extend([
            Param::Write(guest),
            Param::Write(kind),
            Param::Write(delta),
            later,
            Param::Write(note),
            Param::Write(at),
            Param::Write(op_id),
            Param::Write(payment_id),
            Param::Write(refund_id),
        ]);
    }
    chained.part(
        name,
        &format!(
            "INSERT INTO operations (guest_id, kind, amount, balance_after, note, at, op_id, payment_id, refund_id)
             VALUES {}",
            rows.join(", ")
        ),
        params,
    );
}

/// One request of a pipeline.
type Pipelined<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

/// Sends every query at once, in this order (tokio-postgres sends a request when its future is
/// first polled), and waits for all of them: one round trip.
async fn all_in_order<T>(mut queries: Vec<Pipelined<'_, T>>) -> Result<Vec<T>, tokio_postgres::Error> {
    use std::task::Poll;
    let mut done: Vec<Option<T>> = queries.iter().map(|_| None).collect();
    let mut failed = None;
    std::future::poll_fn(|cx| {
        for (query, slot) in queries.iter_mut().zip(done.iter_mut()) {
            if slot.is_none()
                && let Poll::Ready(answer) = query.as_mut().poll(cx)
            {
                match answer {
                    Ok(value) => *slot = Some(value),
                    Err(error) => {
                        failed.get_or_insert(error);
                        return Poll::Ready(());
                    }
                }
            }
        }
        if done.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    match failed {
        Some(error) => Err(error),
        None => Ok(done.into_iter().flatten().collect()),
    }
}

/// The channel the trigger on `till_tokens` notifies, naming the tokens' schema, when a token is
/// replaced or revoked (schema version 21, `pg_schema_v21.sql`).
const TOKEN_CHANGES: &str = "loyalty_till_tokens";

/// How soon a lost listening connection is made again; tokens are looked up meanwhile.
const LISTEN_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Listens for changes to the tills' tokens on a connection of its own and tells `cache`,
/// which keeps tokens only while this listens; a lost connection is made again.
async fn watch_token_changes(mut config: tokio_postgres::Config, cache: Arc<TokenCache>) {
    // A connection cut without a word (a dead link) is noticed in about 25 s, not TCP's 2 hours:
    // until then changes could be missed, so the cache would be trusted too long.
    config
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(10))
        .keepalives_interval(std::time::Duration::from_secs(5))
        .keepalives_retries(3);
    loop {
        let ended = listen_for_token_changes(&config, &cache).await;
        let was_watching = cache.is_watching();
        cache.set_watching(false);
        match ended {
            Err(error) if was_watching => {
                tracing::warn!(%error, "stopped listening for changes to till tokens; each request looks its token up")
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for changes to till tokens; each request looks its token up")
            }
            Ok(()) => tracing::info!("stopped listening for changes to till tokens; each request looks its token up"),
        }
        tokio::time::sleep(LISTEN_AGAIN_AFTER).await;
    }
}

async fn listen_for_token_changes(config: &tokio_postgres::Config, cache: &Arc<TokenCache>) -> Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let told = Arc::clone(cache);
    // The schema this server's tokens live in. NOTIFY reaches every listener on the database, and
    // the trigger names the schema of the tokens it changed: another schema's change (another
    // deployment, or another test) is no change of ours. Known before LISTEN, so before any word.
    let own_schema = Arc::new(std::sync::OnceLock::<String>::new());
    let schema_of_word = Arc::clone(&own_schema);
    // The connection's messages are read here while the statements below wait for their answers.
    let reader = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(word))) => {
                    if schema_of_word.get().is_none_or(|own| own == word.payload()) {
                        told.forget_all();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.to_string()),
                None => return Ok(()),
            }
        }
    });
    let schema: String = client
        .query_one(
            "SELECT n.nspname::TEXT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = 'till_tokens'::regclass",
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| e.to_string())?;
    let _ = own_schema.set(schema);
    client
        .batch_execute(&format!("LISTEN {TOKEN_CHANGES}"))
        .await
        .map_err(|e| e.to_string())?;
    // Only now: a change committed from here on is told; one before is in what a lookup reads.
    cache.set_watching(true);
    tracing::info!("till tokens kept in memory: the database tells this server of every change");
    let ended = reader.await;
    drop(client);
    ended.map_err(|e| e.to_string())?
}

/// The sum of a guest's holds still reserving bonuses at `$2` (past their time: released).
const HELD_SQL: &str = "COALESCE((SELECT SUM(h.amount) FROM holds h
    WHERE h.guest_id = g.id AND h.status = 'open' AND h.expires_at > $2), 0)::BIGINT";

/// The columns of an operation's record that [`snapshot_with_record_sql`] adds at the end.
const RECORD_COLUMNS: usize = 4;

/// [`snapshot_sql`] with the record of the operation id in `$3` (NULLs when there is none):
/// one statement where a write's start would take two.
fn snapshot_with_record_sql() -> &'static str {
    // Made once: a write's start sends it on every request, and the statement cache finds it by
    // its text.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, {GROUP_COLUMNS}, o.op_key, o.kind, o.fingerprint, o.answer
         FROM guests g JOIN guest_groups gg ON gg.id = g.group_id JOIN programs p ON p.org = g.org
         LEFT JOIN op_log o ON o.op_key = $3
         WHERE g.id = $1",
            SNAPSHOT_COLUMNS.replace("{held}", HELD_SQL)
        )
    });
    &SQL
}

/// The guest, the programme and the group, for the guest in `$1` at the time in `$2`.
fn snapshot_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, {GROUP_COLUMNS}
             FROM guests g JOIN guest_groups gg ON gg.id = g.group_id JOIN programs p ON p.org = g.org
             WHERE g.id = $1",
            SNAPSHOT_COLUMNS.replace("{held}", HELD_SQL)
        )
    });
    &SQL
}

impl Columns for Row {
    type Error = TxError;

    fn int(&self, index: usize) -> TxResult<i64> {
        Ok(self.try_get(index)?)
    }

    fn text(&self, index: usize) -> TxResult<String> {
        Ok(self.try_get(index)?)
    }

    fn flag(&self, index: usize) -> TxResult<bool> {
        Ok(self.try_get(index)?)
    }

    fn opt_text(&self, index: usize) -> TxResult<Option<String>> {
        Ok(self.try_get(index)?)
    }
}

fn guest_group_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {GROUP_COLUMNS} FROM guests g JOIN guest_groups gg ON gg.id = g.group_id WHERE g.id = $1")
    });
    &SQL
}

async fn guest_group(tx: &ClientWrapper, guest: GuestId) -> TxResult<Group> {
    let row = q_opt(tx, guest_group_sql(), &[&guest])
        .await?
        .ok_or(LoyaltyError::UnknownCode)?;
    group_at(&row, 0)
}

fn op_record(row: &Row) -> TxResult<OpRecord> {
    Ok(OpRecord {
        key: row.try_get(0)?,
        kind: row.try_get(1)?,
        fingerprint: row.try_get(2)?,
        answer: row.try_get(3)?,
    })
}

impl LedgerTx for PgTx<'_> {
    type Error = TxError;

    async fn begin_guest_write(
        &mut self,
        guest: GuestId,
        now: UnixSeconds,
        op_key: &str,
    ) -> TxResult<(Option<GuestSnapshot>, Option<OpRecord>)> {
        let tx = self.tx;
        // Prepared first (once per connection), so that the two queries below go out as one
        // pipeline: PostgreSQL runs them in this order. The lock is a statement of its own
        // because a statement that waited for a lock still reads other tables (the holds) as
        // they were when it started, while the statement after it sees everything the
        // transaction that held the lock committed: the guest and the operation's record.
        // The row to be inserted takes its id with the lock: the insert can then wait for
        // `COMMIT` (see [`Deferred`]), and the id costs no statement of its own.
        let ahead = self.ahead;
        let (hold, lock_sql) = match ahead {
            Some(Ahead::Payment { hold }) => (hold, LOCK_NEXT_PAYMENT_SQL),
            Some(Ahead::Hold) => (None, LOCK_NEXT_HOLD_SQL),
            None => (None, LOCK_SQL),
        };
        let lock = tx.prepare_cached(lock_sql).await?;
        let read = tx.prepare_cached(snapshot_with_record_sql()).await?;
        // What the operation reads next goes out with the lock (after it, so read under it).
        let stamps = tx.prepare_cached(STAMP_COUNTS_SQL).await?;
        let hold_row = tx.prepare_cached(HOLD_ROW_SQL).await?;
        let window = tx.prepare_cached(spend_days::WINDOW_SPEND_AT_SQL).await?;
        let groups = tx.prepare_cached(ranked_groups_sql()).await?;
        let hold_id = hold.unwrap_or_default();
        let guest_params: [&(dyn ToSql + Sync); 1] = [&guest];
        let read_params: [&(dyn ToSql + Sync); 3] = [&guest, &now, &op_key];
        let hold_params: [&(dyn ToSql + Sync); 1] = [&hold_id];
        let window_params: [&(dyn ToSql + Sync); 2] = [&guest, &now];
        let mut queries: Vec<Pipelined<'_, Vec<Row>>> = vec![
            Box::pin(tx.query(&lock, &guest_params)),
            Box::pin(tx.query(&read, &read_params)),
        ];
        if let Some(Ahead::Payment { .. }) = ahead {
            queries.push(Box::pin(tx.query(&stamps, &guest_params)));
            queries.push(Box::pin(tx.query(&hold_row, &hold_params)));
            queries.push(Box::pin(tx.query(&window, &window_params)));
            queries.push(Box::pin(tx.query(&groups, &[])));
        }
        let mut answers = self.after_begin(all_in_order(queries)).await?.into_iter();
        let mut next = || answers.next().unwrap_or_default();
        let (locked, rows) = (next(), next());
        if let Some(Ahead::Payment { hold }) = ahead {
            self.read = Some(ReadAhead {
                guest,
                hold,
                stamps: next(),
                hold_rows: next(),
                window: next(),
                groups: next(),
            });
        }
        if ahead.is_some() {
            self.next_id = locked.first().map(|row| row.try_get(0)).transpose()?;
        }
        if locked.is_empty() {
            return Ok((None, None));
        }
        let Some(row) = rows.first() else {
            return Ok((None, None));
        };
        let snapshot = snapshot_at(row)?;
        let at = row.len() - RECORD_COLUMNS;
        let record = match row.try_get::<_, Option<String>>(at)? {
            Some(key) => Some(OpRecord {
                key,
                kind: row.try_get(at + 1)?,
                fingerprint: row.try_get(at + 2)?,
                answer: row.try_get(at + 3)?,
            }),
            None => None,
        };
        Ok((Some(snapshot), record))
    }

    async fn op_record(&mut self, op_key: &str) -> TxResult<Option<OpRecord>> {
        // A lock on the key's hash until the transaction ends: a repeat sent at once waits for
        // the first to commit, then finds its record.
        exec(
            self.tx,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&op_key],
        )
        .await?;
        q_opt(
            self.tx,
            "SELECT op_key, kind, fingerprint, answer FROM op_log WHERE op_key = $1",
            &[&op_key],
        )
        .await?
        .as_ref()
        .map(op_record)
        .transpose()
    }

    async fn snapshot(&mut self, guest: GuestId, now: UnixSeconds) -> TxResult<Option<GuestSnapshot>> {
        q_opt(self.tx, snapshot_sql(), &[&guest, &now])
            .await?
            .as_ref()
            .map(snapshot_at)
            .transpose()
    }

    async fn save_op_record(&mut self, record: &OpRecord) -> TxResult<()> {
        self.deferred.push(Deferred::Record(record.clone()));
        Ok(())
    }

    async fn phone_owner(&mut self, org: Option<&str>, phone: &str) -> TxResult<Option<GuestId>> {
        let row = q_opt(
            self.tx,
            "SELECT guest_id FROM identifiers WHERE kind = 'phone' AND value = $1 AND ($2::TEXT IS NULL OR org = $2)",
            &[&phone, &org],
        )
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn gift_code(&mut self, org: Option<&str>, code: &str) -> TxResult<Option<GiftCodeRow>> {
        let row = q_opt(
            self.tx,
            "SELECT c.guest_id, c.gift_name, c.points, c.redeemed_at IS NOT NULL, g.pos_code
             FROM gift_codes c LEFT JOIN gifts g ON g.id = c.gift_id
             WHERE c.code = $1 AND ($2::TEXT IS NULL OR c.org = $2)",
            &[&code, &org],
        )
        .await?;
        row.map(|row| {
            Ok(GiftCodeRow {
                guest: row.try_get(0)?,
                gift: Gift {
                    code: code.to_string(),
                    name: row.try_get(1)?,
                    points: Kopecks(row.try_get(2)?),
                    pos_code: row.try_get(4)?,
                },
                redeemed: row.try_get(3)?,
            })
        })
        .transpose()
    }

    async fn identifier_owners(&mut self, org: Option<&str>, value: &str) -> TxResult<Vec<(GuestId, IdentifierKind)>> {
        let rows = q_all(
            self.tx,
            "SELECT guest_id, kind FROM identifiers WHERE value = $1 AND kind <> 'phone' AND ($2::TEXT IS NULL OR org = $2)",
            &[&value, &org],
        )
        .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(kind) = IdentifierKind::parse(row.try_get(1)?) {
                found.push((row.try_get(0)?, kind));
            }
        }
        Ok(found)
    }

    async fn visits_since(&mut self, guest: GuestId, since: UnixSeconds) -> TxResult<i64> {
        // Counted under the guest's lock, so two tills at once cannot both pass the limit.
        exec(self.tx, LOCK_SQL, &[&guest]).await?;
        Ok(q_one(
            self.tx,
            "SELECT COUNT(*) FROM payments WHERE guest_id = $1 AND at >= $2",
            &[&guest, &since],
        )
        .await?
        .try_get(0)?)
    }

    async fn record_identification(&mut self, guest: GuestId, via: &str, at: UnixSeconds) -> TxResult<()> {
        exec(
            self.tx,
            "INSERT INTO identifications (guest_id, via, at) VALUES ($1, $2, $3)",
            &[&guest, &via, &at],
        )
        .await?;
        Ok(())
    }

    async fn card(&mut self, guest: GuestId, now: UnixSeconds) -> TxResult<GuestCard> {
        load_card(self.tx, guest, now).await
    }

    async fn spent_since(&mut self, guest: GuestId, since: UnixSeconds, now: UnixSeconds) -> TxResult<Kopecks> {
        let used: i64 = q_one(
            self.tx,
            &format!(
                "SELECT (COALESCE((SELECT -SUM(o.amount) FROM operations o
                                   WHERE o.guest_id = g.id AND o.kind = 'spend' AND o.at >= $3), 0)
                         + {HELD_SQL})::BIGINT
                 FROM guests g WHERE g.id = $1"
            ),
            &[&guest, &now, &since],
        )
        .await?
        .try_get(0)?;
        Ok(Kopecks(used))
    }

    async fn window_spend(&mut self, guest: GuestId, since: UnixSeconds) -> TxResult<Kopecks> {
        let first_day = spend_days::first_whole_day(since);
        let spend: i64 = q_one(self.tx, spend_days::WINDOW_SPEND_SQL, &[&guest, &since, &first_day])
            .await?
            .try_get(1)?;
        Ok(Kopecks(spend))
    }

    async fn ranked_groups(&mut self) -> TxResult<Vec<Group>> {
        q_all(self.tx, ranked_groups_sql(), &[])
            .await?
            .iter()
            .map(|row| group_at(row, 0))
            .collect()
    }

    async fn groups(&mut self) -> TxResult<Vec<Group>> {
        q_all(self.tx, &format!("SELECT {GROUP_COLUMNS} FROM guest_groups gg"), &[])
            .await?
            .iter()
            .map(|row| group_at(row, 0))
            .collect()
    }

    async fn insert_hold(
        &mut self,
        op_key: &str,
        guest: GuestId,
        plan: &HoldPlan,
        now: UnixSeconds,
    ) -> TxResult<HoldId> {
        if self.ahead == Some(Ahead::Hold)
            && let Some(id) = self.next_id.take()
        {
            self.deferred.push(Deferred::Hold {
                id,
                op_key: op_key.to_string(),
                guest,
                amount: plan.amount.0,
                created_at: now,
                expires_at: plan.expires_at,
            });
            return Ok(id);
        }
        Ok(q_one(
            self.tx,
            "INSERT INTO holds (op_id, guest_id, amount, status, created_at, expires_at)
             VALUES ($1, $2, $3, 'open', $4, $5) RETURNING id",
            &[&op_key, &guest, &plan.amount.0, &now, &plan.expires_at],
        )
        .await?
        .try_get(0)?)
    }

    async fn hold_row(&mut self, hold: HoldId) -> TxResult<Option<HoldRow>> {
        let row = q_opt(
            self.tx,
            "SELECT guest_id, amount, status, expires_at FROM holds WHERE id = $1",
            &[&hold],
        )
        .await?;
        row.map(|row| {
            Ok(HoldRow {
                id: hold,
                guest: row.try_get(0)?,
                amount: Kopecks(row.try_get(1)?),
                status: HoldStatus::parse(row.try_get(2)?)?,
                expires_at: row.try_get(3)?,
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
    ) -> TxResult<()> {
        self.deferred.push(Deferred::CloseHold {
            hold,
            status: status.as_str(),
            committed: committed.map(|k| k.0),
            at: now,
        });
        Ok(())
    }

    async fn record_void(&mut self, op_key: &str, hold: HoldId, now: UnixSeconds) -> TxResult<()> {
        self.deferred.push(Deferred::Void {
            op_key: op_key.to_string(),
            hold,
            at: now,
        });
        Ok(())
    }

    async fn void_open_holds(&mut self, guest: GuestId, now: UnixSeconds) -> TxResult<u64> {
        Ok(exec(
            self.tx,
            "UPDATE holds SET status = CASE WHEN expires_at <= $2 THEN 'expired' ELSE 'voided' END, closed_at = $2
             WHERE guest_id = $1 AND status = 'open'",
            &[&guest, &now],
        )
        .await?)
    }

    async fn insert_payment(&mut self, p: &NewPayment<'_>) -> TxResult<i64> {
        let new_group = p.plan.new_group.as_ref().map(|g| g.rules.name.as_str());
        // A check with gift codes is inserted at once: their redemption refers to it.
        if matches!(self.ahead, Some(Ahead::Payment { .. }))
            && p.gift_codes == "[]"
            && let Some(id) = self.next_id.take()
        {
            self.deferred.push(Deferred::Payment(Box::new(DeferredPayment {
                id,
                op_key: p.op_key.to_string(),
                guest: p.guest,
                hold: p.hold,
                spent: p.plan.spent.0,
                subtotal: p.subtotal.0,
                gift_codes: p.gift_codes.to_string(),
                amount_due: p.plan.amount_due.0,
                accrued: p.plan.accrued.0,
                balance_after: p.plan.balance_after.0,
                new_group: new_group.map(str::to_string),
                at: p.at,
                offline_requested: p.offline_requested.map(|k| k.0),
                owner_payment: p.owner_payment,
                lines: p.lines.map(str::to_string),
            })));
            return Ok(id);
        }
        Ok(q_one(
            self.tx,
            &insert_payment_sql(),
            &[
                &p.op_key,
                &p.guest,
                &p.hold,
                &p.plan.spent.0,
                &p.subtotal.0,
                &p.gift_codes,
                &p.plan.amount_due.0,
                &p.plan.accrued.0,
                &p.plan.balance_after.0,
                &new_group,
                &p.at,
                &p.offline_requested.map(|k| k.0),
                &p.owner_payment,
                &p.lines,
            ],
        )
        .await?
        .try_get(0)?)
    }

    async fn post(&mut self, posting: &Posting<'_>) -> TxResult<Kopecks> {
        let delta = posting.kind.signed(posting.amount).0;
        let (op_id, payment_id, refund_id) = match posting.link {
            Link::Op(op) => (Some(op), None, None),
            Link::Payment(id) => (None, Some(id), None),
            Link::Refund(id) => (None, None, Some(id)),
        };
        let row = q_opt(
            self.tx,
            POST_SQL,
            &[
                &posting.guest,
                &delta,
                &posting.kind.as_str(),
                &posting.note,
                &posting.at,
                &op_id,
                &payment_id,
                &refund_id,
            ],
        )
        .await?
        .ok_or(LoyaltyError::UnknownCode)?;
        Ok(Kopecks(row.try_get(0)?))
    }

    async fn post_unread(&mut self, posting: &Posting<'_>) -> TxResult<()> {
        let (op_id, payment_id, refund_id) = match posting.link {
            Link::Op(op) => (Some(op.to_string()), None, None),
            Link::Payment(id) => (None, Some(id), None),
            Link::Refund(id) => (None, None, Some(id)),
        };
        self.deferred.push(Deferred::Post {
            guest: posting.guest,
            delta: posting.kind.signed(posting.amount).0,
            kind: posting.kind.as_str(),
            note: posting.note.to_string(),
            at: posting.at,
            op_id,
            payment_id,
            refund_id,
        });
        Ok(())
    }

    async fn redeem_gift(&mut self, code: &str, guest: GuestId, payment_id: i64, now: UnixSeconds) -> TxResult<bool> {
        let redeemed = exec(
            self.tx,
            "UPDATE gift_codes SET redeemed_at = $3, payment_id = $4
             WHERE code = $1 AND guest_id = $2 AND redeemed_at IS NULL
               AND org = (SELECT org FROM guests WHERE id = $2)",
            &[&code, &guest, &now, &payment_id],
        )
        .await?;
        Ok(redeemed == 1)
    }

    async fn stamp_counts(&mut self, guest: GuestId) -> TxResult<Vec<StampCount>> {
        q_all(self.tx, STAMP_COUNTS_SQL, &[&guest])
            .await?
            .iter()
            .map(stamp_count)
            .collect()
    }

    async fn set_stamps(&mut self, guest: GuestId, card_id: i64, collected: i64) -> TxResult<()> {
        self.deferred.push(Deferred::Stamps {
            guest,
            card: card_id,
            collected,
        });
        Ok(())
    }

    async fn set_group(&mut self, guest: GuestId, group_id: i64) -> TxResult<()> {
        self.deferred.push(Deferred::Group { guest, group: group_id });
        Ok(())
    }

    async fn paid_check(&mut self, payment_op_key: &str) -> TxResult<Option<PaidCheck>> {
        let row = q_opt(
            self.tx,
            "SELECT p.id, p.guest_id, p.amount_due, p.spent, p.accrued,
                    (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = p.id)::BIGINT, p.at,
                    p.owner_payment_id, p.lines
             FROM payments p WHERE p.op_id = $1",
            &[&payment_op_key],
        )
        .await?;
        row.map(|row| {
            Ok(PaidCheck {
                payment_id: row.try_get(0)?,
                guest: row.try_get(1)?,
                amount_due: Kopecks(row.try_get(2)?),
                spent: Kopecks(row.try_get(3)?),
                accrued: Kopecks(row.try_get(4)?),
                refunded_before: Kopecks(row.try_get(5)?),
                paid_at: row.try_get(6)?,
                owner_payment: row.try_get(7)?,
                lines: crate::loyalty::rules::parse_lines(row.try_get::<_, Option<&str>>(8)?)?,
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
    ) -> TxResult<i64> {
        Ok(q_one(
            self.tx,
            &insert_refund_sql(),
            &[
                &op_key,
                &check.payment_id,
                &requested.map(|a| a.0),
                &plan.amount.0,
                &plan.spend_returned.0,
                &plan.accrual_taken.0,
                &plan.unrecovered.0,
                &now,
            ],
        )
        .await?
        .try_get(0)?)
    }

    async fn record_lines_returned(
        &mut self,
        refund_id: i64,
        returned: &str,
        payment_id: i64,
        lines: &str,
    ) -> TxResult<()> {
        exec(
            self.tx,
            "UPDATE refunds SET lines = $2 WHERE id = $1",
            &[&refund_id, &returned],
        )
        .await?;
        exec(
            self.tx,
            "UPDATE payments SET lines = $2 WHERE id = $1",
            &[&payment_id, &lines],
        )
        .await?;
        Ok(())
    }

    async fn set_refund_balance(&mut self, refund_id: i64, balance_after: Kopecks) -> TxResult<()> {
        self.deferred.push(Deferred::RefundBalance {
            refund: refund_id,
            balance: balance_after.0,
        });
        Ok(())
    }

    async fn payment_context(
        &mut self,
        guest: GuestId,
        hold: Option<HoldId>,
        window_since: Option<UnixSeconds>,
    ) -> TxResult<PaymentContext> {
        if let Some(read) = self.read.take()
            && read.guest == guest
            && read.hold == hold
        {
            let window_start: Option<UnixSeconds> = read.window.first().map(|r| r.try_get(0)).transpose()?;
            if window_since.is_none() || window_since == window_start {
                return payment_context_of(
                    hold,
                    &read.hold_rows,
                    &read.stamps,
                    window_since.map(|_| (&read.window, &read.groups)),
                );
            }
        }
        let tx = self.tx;
        let hold_statement = tx.prepare_cached(HOLD_ROW_SQL).await?;
        let window_statement = tx.prepare_cached(spend_days::WINDOW_SPEND_SQL).await?;
        let groups_statement = tx.prepare_cached(ranked_groups_sql()).await?;
        let stamps_statement = tx.prepare_cached(STAMP_COUNTS_SQL).await?;
        let hold_id = hold.unwrap_or_default();
        let since = window_since.unwrap_or_default();
        let first_day = spend_days::first_whole_day(since);
        // Only what this payment needs: no hold row without a hold, no window or groups for a
        // guest whose group does not move by spend.
        let stamps_params: [&(dyn ToSql + Sync); 1] = [&guest];
        let hold_params: [&(dyn ToSql + Sync); 1] = [&hold_id];
        let window_params: [&(dyn ToSql + Sync); 3] = [&guest, &since, &first_day];
        let mut queries: Vec<Pipelined<'_, Vec<Row>>> = vec![Box::pin(tx.query(&stamps_statement, &stamps_params))];
        if hold.is_some() {
            queries.push(Box::pin(tx.query(&hold_statement, &hold_params)));
        }
        if window_since.is_some() {
            queries.push(Box::pin(tx.query(&window_statement, &window_params)));
            queries.push(Box::pin(tx.query(&groups_statement, &[])));
        }
        let mut answers = self.after_begin(all_in_order(queries)).await?.into_iter();
        let mut next = || {
            answers
                .next()
                .ok_or_else(|| LoyaltyError::Storage("a pipeline lost an answer".to_string()))
        };
        let stamp_rows = next()?;
        let hold_rows = if hold.is_some() { next()? } else { Vec::new() };
        let (window_rows, group_rows) = if window_since.is_some() {
            (next()?, next()?)
        } else {
            (Vec::new(), Vec::new())
        };
        payment_context_of(
            hold,
            &hold_rows,
            &stamp_rows,
            window_since.map(|_| (&window_rows, &group_rows)),
        )
    }

    fn read_ahead(&mut self, ahead: Ahead) {
        self.ahead = Some(ahead);
    }

    /// The deferred writes go out with `COMMIT` ([`PgTx::commit`]), in one round trip.
    async fn finish(&mut self) -> TxResult<()> {
        Ok(())
    }

    async fn check_gifts(&mut self, payment_id: i64) -> TxResult<Vec<String>> {
        q_all(
            self.tx,
            "SELECT gift_name FROM gift_codes WHERE payment_id = $1 ORDER BY id",
            &[&payment_id],
        )
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
    }

    async fn check_shares(&mut self, payment_id: i64) -> TxResult<Vec<String>> {
        q_all(
            self.tx,
            "SELECT op_id FROM payments WHERE owner_payment_id = $1 ORDER BY guest_id",
            &[&payment_id],
        )
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
    }

    async fn restore_gifts(&mut self, payment_id: i64) -> TxResult<()> {
        exec(
            self.tx,
            "UPDATE gift_codes SET redeemed_at = NULL, payment_id = NULL WHERE payment_id = $1",
            &[&payment_id],
        )
        .await?;
        Ok(())
    }

    async fn paid_checks(&mut self, org: Option<&str>, query: &ChecksQuery<'_>) -> TxResult<Vec<CheckSummary>> {
        q_all(
            self.tx,
            crate::loyalty::rows::PAID_CHECKS_SQL,
            &[
                &org,
                &query.since,
                &query.number,
                &query.guest,
                &query.op_prefix,
                &query.limit,
            ],
        )
        .await?
        .iter()
        .map(|row| {
            let (check, lines) = crate::loyalty::rows::check_summary_at(row)?;
            Ok(CheckSummary {
                lines: crate::loyalty::rules::parse_lines(lines.as_deref())?,
                ..check
            })
        })
        .collect()
    }

    async fn gifts(&mut self, guest: GuestId) -> TxResult<Vec<Gift>> {
        q_all(
            self.tx,
            "SELECT code, gift_name, points FROM gift_codes WHERE guest_id = $1 AND redeemed_at IS NULL ORDER BY id",
            &[&guest],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(Gift {
                code: crate::mask::mask_code(&row.try_get::<_, String>(0)?),
                name: row.try_get(1)?,
                points: Kopecks(row.try_get(2)?),
                pos_code: None,
            })
        })
        .collect()
    }

    async fn open_holds(&mut self, guest: Option<GuestId>) -> TxResult<Vec<HoldReceipt>> {
        q_all(
            self.tx,
            "SELECT id, amount, expires_at FROM holds
             WHERE status = 'open' AND ($1::BIGINT IS NULL OR guest_id = $1) ORDER BY id",
            &[&guest],
        )
        .await?
        .iter()
        .map(hold_receipt)
        .collect()
    }

    async fn history(&mut self, guest: GuestId, limit: i64) -> TxResult<Vec<HistoryEntry>> {
        q_all(
            self.tx,
            "SELECT at, kind, amount, balance_after, note FROM operations WHERE guest_id = $1 ORDER BY id DESC LIMIT $2",
            &[&guest, &limit],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(HistoryEntry {
                at: row.try_get(0)?,
                kind: row.try_get(1)?,
                amount: Kopecks(row.try_get(2)?),
                balance_after: Kopecks(row.try_get(3)?),
                note: row.try_get(4)?,
            })
        })
        .collect()
    }

    async fn expire_holds(&mut self, now: UnixSeconds) -> TxResult<u64> {
        Ok(exec(
            self.tx,
            "UPDATE holds SET status = 'expired', closed_at = $1 WHERE status = 'open' AND expires_at <= $1",
            &[&now],
        )
        .await?)
    }

    async fn has_guests(&mut self) -> TxResult<bool> {
        Ok(q_opt(self.tx, "SELECT 1 FROM guests LIMIT 1", &[]).await?.is_some())
    }

    async fn program(&mut self, org: Option<&str>) -> TxResult<ProgramSettings> {
        if let Some(org) = org {
            let sql = format!("SELECT {PROGRAM_COLUMNS} FROM programs WHERE org = $1");
            if let Some(row) = q_opt(self.tx, &sql, &[&org]).await? {
                return crate::loyalty::rows::program_at(&row, 0);
            }
        }
        // The template, which an organisation without guests yet will start with.
        let row = q_one(
            self.tx,
            &format!("SELECT {PROGRAM_COLUMNS} FROM program WHERE id = 1"),
            &[],
        )
        .await?;
        crate::loyalty::rows::program_at(&row, 0)
    }

    async fn save_program(&mut self, scope: ProgramScope<'_>, p: &ProgramSettings) -> TxResult<()> {
        let basis = p.accrual_basis.as_str();
        let values: Params<'_> = &[
            &p.name,
            &p.max_check_bp,
            &p.spend_step.0,
            &p.hold_ttl_secs,
            &p.group_period_days,
            &p.utc_offset_minutes,
            &basis,
            &p.welcome_bonus.0,
            &p.till_enrolment,
        ];
        let set = "SET name = $1, max_check_bp = $2, spend_step = $3, hold_ttl_secs = $4,
                       group_period_days = $5, utc_offset_minutes = $6, accrual_basis = $7,
                       welcome_bonus = $8, till_enrolment = $9";
        match scope {
            ProgramScope::Template => {
                exec(self.tx, &format!("UPDATE program {set} WHERE id = 1"), values).await?;
            }
            ProgramScope::Everyone => {
                exec(self.tx, &format!("UPDATE program {set} WHERE id = 1"), values).await?;
                exec(self.tx, &format!("UPDATE programs {set}"), values).await?;
            }
            ProgramScope::Org(org) => {
                exec(self.tx, ENSURE_PROGRAM_SQL, &[&org]).await?;
                let mut with_org = values.to_vec();
                with_org.push(&org);
                exec(self.tx, &format!("UPDATE programs {set} WHERE org = $10"), &with_org).await?;
            }
        }
        Ok(())
    }

    async fn insert_group(&mut self, g: &NewGroup) -> TxResult<i64> {
        Ok(q_one(
            self.tx,
            "INSERT INTO guest_groups (name, rank, discount_bp, accrual_bp, spend_threshold, never_downgrade,
                                       daily_ops_limit, daily_spend_limit)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &group_values(g),
        )
        .await?
        .try_get(0)?)
    }

    async fn add_to_report(
        &mut self,
        org: &str,
        quarter: i64,
        scope: &str,
        figures: &[i64; crate::loyalty::report::CHECK_FIGURES],
    ) -> TxResult<()> {
        // Nothing reads the sums back: sent with the operation's last writes.
        self.deferred.push(Deferred::Report {
            org: org.to_string(),
            quarter,
            scope: scope.to_string(),
            figures: *figures,
        });
        Ok(())
    }

    async fn set_blocked(&mut self, guest: GuestId, blocked: bool) -> TxResult<()> {
        exec(
            self.tx,
            // A guest's block is the person's: set on the main account, it reaches every account.
            "UPDATE guests SET blocked = $1 WHERE id = $2 OR account_of = $2",
            &[&blocked, &guest],
        )
        .await?;
        Ok(())
    }

    async fn set_contact(&mut self, guest: GuestId, name: &str, phone: Option<&str>) -> TxResult<()> {
        let changed = exec(
            self.tx,
            "UPDATE guests SET name = $1, phone = $2 WHERE id = $3 AND account_of IS NULL",
            &[&name, &phone, &guest],
        )
        .await?;
        if changed != 1 {
            return Err(LoyaltyError::UnknownCode.into());
        }
        exec(
            self.tx,
            "UPDATE guests SET name = $1 WHERE account_of = $2",
            &[&name, &guest],
        )
        .await?;
        exec(
            self.tx,
            "DELETE FROM identifiers WHERE guest_id = $1 AND kind = 'phone'",
            &[&guest],
        )
        .await?;
        match phone {
            Some(phone) => self.insert_identifier(guest, IdentifierKind::Phone, phone).await,
            None => Ok(()),
        }
    }

    async fn update_group(&mut self, id: i64, g: &NewGroup) -> TxResult<()> {
        let mut values = group_values(g).to_vec();
        values.push(&id);
        let changed = exec(
            self.tx,
            "UPDATE guest_groups SET name = $1, rank = $2, discount_bp = $3, accrual_bp = $4, spend_threshold = $5,
                    never_downgrade = $6, daily_ops_limit = $7, daily_spend_limit = $8
             WHERE id = $9",
            &values,
        )
        .await?;
        if changed == 1 {
            Ok(())
        } else {
            Err(LoyaltyError::UnknownCode.into())
        }
    }

    async fn insert_guest(
        &mut self,
        org: &str,
        name: &str,
        phone: Option<&str>,
        group_id: i64,
        now: UnixSeconds,
    ) -> TxResult<GuestId> {
        exec(self.tx, ENSURE_PROGRAM_SQL, &[&org]).await?;
        Ok(q_one(
            self.tx,
            "INSERT INTO guests (org, name, phone, group_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&org, &name, &phone, &group_id, &now],
        )
        .await?
        .try_get(0)?)
    }

    async fn insert_account(&mut self, guest: GuestId, name: &str, now: UnixSeconds) -> TxResult<Option<GuestId>> {
        let row = q_opt(
            self.tx,
            &format!("{ACCOUNT_INSERT_SQL} RETURNING id"),
            &[&guest, &name, &now],
        )
        .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    async fn insert_identifier(&mut self, guest: GuestId, kind: IdentifierKind, value: &str) -> TxResult<()> {
        let added = exec(
            self.tx,
            "INSERT INTO identifiers (org, kind, value, guest_id) SELECT org, $1, $2, id FROM guests WHERE id = $3",
            &[&kind.as_str(), &value, &guest],
        )
        .await?;
        if added == 1 {
            Ok(())
        } else {
            Err(LoyaltyError::UnknownCode.into())
        }
    }

    async fn insert_gift_code(&mut self, guest: GuestId, code: &str, name: &str, points: Kopecks) -> TxResult<()> {
        let added = exec(
            self.tx,
            "INSERT INTO gift_codes (org, code, guest_id, gift_name, points)
             SELECT org, $1, id, $3, $4 FROM guests WHERE id = $2",
            &[&code, &guest, &name, &points.0],
        )
        .await?;
        if added == 1 {
            Ok(())
        } else {
            Err(LoyaltyError::UnknownCode.into())
        }
    }

    async fn insert_stamp_card(&mut self, name: &str, needed: i64, reward: &str) -> TxResult<i64> {
        Ok(q_one(
            self.tx,
            "INSERT INTO stamp_cards (name, needed, reward) VALUES ($1, $2, $3) RETURNING id",
            &[&name, &needed, &reward],
        )
        .await?
        .try_get(0)?)
    }

    async fn insert_promotion(
        &mut self,
        name: &str,
        description: &str,
        starts_at: UnixSeconds,
        ends_at: UnixSeconds,
    ) -> TxResult<i64> {
        Ok(q_one(
            self.tx,
            "INSERT INTO promotions (name, description, starts_at, ends_at) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&name, &description, &starts_at, &ends_at],
        )
        .await?
        .try_get(0)?)
    }

    async fn taken_values(&mut self, org: &str, values: &[String]) -> TxResult<Vec<String>> {
        let mut taken = Vec::new();
        // In slices, so one statement's array stays a reasonable size.
        for chunk in values.chunks(BATCH) {
            let rows = q_all(
                self.tx,
                "SELECT DISTINCT value FROM identifiers WHERE org = $1 AND value = ANY($2::TEXT[])",
                &[&org, &chunk],
            )
            .await?;
            for row in rows {
                taken.push(row.try_get(0)?);
            }
        }
        Ok(taken)
    }

    async fn insert_guests(&mut self, org: &str, guests: &[NewGuestRow], now: UnixSeconds) -> TxResult<Vec<GuestId>> {
        exec(self.tx, ENSURE_PROGRAM_SQL, &[&org]).await?;
        let mut ids: Vec<GuestId> = Vec::with_capacity(guests.len());
        for chunk in guests.chunks(BATCH) {
            // The ids first, so each guest's identifiers know their guest without relying on the
            // order INSERT … RETURNING answers in.
            let count = i64::try_from(chunk.len()).unwrap_or(i64::MAX);
            let chunk_ids: Vec<i64> = q_all(
                self.tx,
                "SELECT nextval(pg_get_serial_sequence('guests', 'id')) FROM generate_series(1, $1::BIGINT)",
                &[&count],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
            let names: Vec<&str> = chunk.iter().map(|g| g.name.as_str()).collect();
            let phones: Vec<Option<&str>> = chunk.iter().map(|g| g.phone.as_deref()).collect();
            let groups: Vec<i64> = chunk.iter().map(|g| g.group_id).collect();
            exec(
                self.tx,
                "INSERT INTO guests (id, org, name, phone, group_id, created_at)
                 SELECT u.id, $1, u.name, u.phone, u.group_id, $2
                 FROM unnest($3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[]) AS u(id, name, phone, group_id)",
                &[&org, &now, &chunk_ids, &names, &phones, &groups],
            )
            .await?;
            let (mut kinds, mut values, mut owners) = (Vec::new(), Vec::new(), Vec::new());
            for (guest, id) in chunk.iter().zip(&chunk_ids) {
                for (kind, value) in guest
                    .phone
                    .iter()
                    .map(|p| (IdentifierKind::Phone, p.as_str()))
                    .chain(guest.cards.iter().map(|(k, v)| (*k, v.as_str())))
                {
                    kinds.push(kind.as_str());
                    values.push(value);
                    owners.push(*id);
                }
            }
            exec(
                self.tx,
                "INSERT INTO identifiers (org, kind, value, guest_id)
                 SELECT $1, u.kind, u.value, u.guest_id FROM unnest($2::TEXT[], $3::TEXT[], $4::BIGINT[]) AS u(kind, value, guest_id)",
                &[&org, &kinds, &values, &owners],
            )
            .await?;
            ids.extend(chunk_ids);
        }
        Ok(ids)
    }

    async fn post_many(&mut self, postings: &[Posting<'_>]) -> TxResult<()> {
        let distinct: std::collections::HashSet<GuestId> = postings.iter().map(|p| p.guest).collect();
        let all_ops = postings.iter().all(|p| matches!(p.link, Link::Op(_)));
        if distinct.len() != postings.len() || !all_ops {
            for posting in postings {
                self.post_unread(posting).await?;
            }
            return Ok(());
        }
        for chunk in postings.chunks(BATCH) {
            let guests: Vec<i64> = chunk.iter().map(|p| p.guest).collect();
            let deltas: Vec<i64> = chunk.iter().map(|p| p.kind.signed(p.amount).0).collect();
            let kinds: Vec<&str> = chunk.iter().map(|p| p.kind.as_str()).collect();
            let notes: Vec<&str> = chunk.iter().map(|p| p.note).collect();
            let ats: Vec<i64> = chunk.iter().map(|p| p.at).collect();
            let ops: Vec<&str> = chunk
                .iter()
                .map(|p| match p.link {
                    Link::Op(op) => op,
                    _ => "",
                })
                .collect();
            let added = exec(self.tx, POST_MANY_SQL, &[&guests, &deltas, &kinds, &notes, &ats, &ops]).await?;
            if added != chunk.len() as u64 {
                return Err(LoyaltyError::UnknownCode.into());
            }
        }
        Ok(())
    }

    async fn insert_audit(&mut self, org: &str, entries: &[AuditRow]) -> TxResult<()> {
        for chunk in entries.chunks(BATCH) {
            let ats: Vec<i64> = chunk.iter().map(|e| e.at).collect();
            let actors: Vec<&str> = chunk.iter().map(|e| e.actor.as_str()).collect();
            let actions: Vec<&str> = chunk.iter().map(|e| e.action.as_str()).collect();
            let guests: Vec<Option<i64>> = chunk.iter().map(|e| e.guest).collect();
            let details: Vec<&str> = chunk.iter().map(|e| e.detail.as_str()).collect();
            let reasons: Vec<&str> = chunk.iter().map(|e| e.reason.as_str()).collect();
            let keys: Vec<Option<&str>> = chunk.iter().map(|e| e.op_key.as_deref()).collect();
            exec(
                self.tx,
                "INSERT INTO audit_log (org, at, actor, action, guest_id, detail, reason, op_key)
                 SELECT $1, u.at, u.actor, u.action, u.guest_id, u.detail, u.reason, u.op_key
                 FROM unnest($2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[])
                      AS u(at, actor, action, guest_id, detail, reason, op_key)
                 ON CONFLICT (op_key) DO NOTHING",
                &[&org, &ats, &actors, &actions, &guests, &details, &reasons, &keys],
            )
            .await?;
        }
        Ok(())
    }

    async fn save_stamp_card(&mut self, org: &str, id: Option<i64>, card: &StampCardDef) -> TxResult<i64> {
        let row = match id {
            None => {
                q_opt(
                    self.tx,
                    "INSERT INTO stamp_cards (org, name, needed, reward) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&org, &card.name, &card.needed, &card.reward],
                )
                .await?
            }
            Some(id) => q_opt(
                self.tx,
                "UPDATE stamp_cards SET name = $3, needed = $4, reward = $5 WHERE id = $1 AND org = $2 RETURNING id",
                &[&id, &org, &card.name, &card.needed, &card.reward],
            )
            .await?,
        };
        Ok(row.ok_or(LoyaltyError::UnknownCode)?.try_get(0)?)
    }

    async fn save_promotion(&mut self, org: &str, id: Option<i64>, p: &PromotionDef) -> TxResult<i64> {
        let row = match id {
            None => {
                q_opt(
                    self.tx,
                    "INSERT INTO promotions (org, name, description, starts_at, ends_at, weekdays, day_start_min, day_end_min)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    &[
                        &org,
                        &p.name,
                        &p.description,
                        &p.starts_at,
                        &p.ends_at,
                        &p.weekdays,
                        &p.day_start_min,
                        &p.day_end_min,
                    ],
                )
                .await?
            }
            Some(id) => {
                q_opt(
                    self.tx,
                    "UPDATE promotions SET name = $3, description = $4, starts_at = $5, ends_at = $6, weekdays = $7,
                            day_start_min = $8, day_end_min = $9
                     WHERE id = $1 AND org = $2 RETURNING id",
                    &[
                        &id,
                        &org,
                        &p.name,
                        &p.description,
                        &p.starts_at,
                        &p.ends_at,
                        &p.weekdays,
                        &p.day_start_min,
                        &p.day_end_min,
                    ],
                )
                .await?
            }
        };
        Ok(row.ok_or(LoyaltyError::UnknownCode)?.try_get(0)?)
    }

    async fn save_gift(&mut self, org: &str, id: Option<i64>, g: &GiftDef) -> TxResult<i64> {
        let row =
            match id {
                None => q_opt(
                    self.tx,
                    "INSERT INTO gifts (org, name, pos_code, points, active) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&org, &g.name, &g.pos_code, &g.points.0, &g.active],
                )
                .await?,
                Some(id) => {
                    q_opt(
                        self.tx,
                        "UPDATE gifts SET name = $3, pos_code = $4, points = $5, active = $6 WHERE id = $1 AND org = $2
                     RETURNING id",
                        &[&id, &org, &g.name, &g.pos_code, &g.points.0, &g.active],
                    )
                    .await?
                }
            };
        Ok(row.ok_or(LoyaltyError::UnknownCode)?.try_get(0)?)
    }

    async fn gift_defs(&mut self, org: &str) -> TxResult<Vec<(i64, GiftDef)>> {
        q_all(
            self.tx,
            &format!("SELECT {GIFT_COLUMNS} FROM gifts WHERE org = $1 ORDER BY id"),
            &[&org],
        )
        .await?
        .iter()
        .map(gift_at)
        .collect()
    }

    async fn insert_issued_gift(&mut self, guest: GuestId, code: &str, gift_id: i64, gift: &GiftDef) -> TxResult<()> {
        let added = exec(
            self.tx,
            "INSERT INTO gift_codes (org, code, guest_id, gift_name, points, gift_id)
             SELECT org, $1, id, $3, $4, $5 FROM guests WHERE id = $2",
            &[&code, &guest, &gift.name, &gift.points.0, &gift_id],
        )
        .await?;
        if added == 1 {
            Ok(())
        } else {
            Err(LoyaltyError::UnknownCode.into())
        }
    }

    async fn insert_past_visit(
        &mut self,
        op_key: &str,
        guest: GuestId,
        amount_due: Kopecks,
        at: UnixSeconds,
    ) -> TxResult<()> {
        exec(
            self.tx,
            "INSERT INTO payments (op_id, guest_id, spent, subtotal, gift_codes, amount_due, accrued, balance_after, at)
             SELECT $1, id, 0, $3, '[]', $3, 0, balance, $4 FROM guests WHERE id = $2",
            &[&op_key, &guest, &amount_due.0, &at],
        )
        .await?;
        // Recorded like a write from before idempotency records were kept: no request to compare.
        exec(
            self.tx,
            "INSERT INTO op_log (op_key, kind, fingerprint, answer)
             SELECT op_id, 'commit', NULL,
                    json_build_object('spent', 0, 'accrued', 0, 'balance_after', balance_after, 'new_group', NULL)::TEXT
             FROM payments WHERE op_id = $1",
            &[&op_key],
        )
        .await?;
        exec(self.tx, spend_days::BOOK_PAYMENT_SQL, &[&op_key]).await?;
        Ok(())
    }
}

/// A payment's context from its rows: the hold's (when there is a hold), the stamp cards', and
/// the window's spending (its second column) and the ranked groups when the group moves by spend.
fn payment_context_of(
    hold: Option<HoldId>,
    hold_rows: &[Row],
    stamp_rows: &[Row],
    window: Option<(&Vec<Row>, &Vec<Row>)>,
) -> TxResult<PaymentContext> {
    let hold = match (hold, hold_rows.first()) {
        (Some(id), Some(row)) => Some(HoldRow {
            id,
            guest: row.try_get(0)?,
            amount: Kopecks(row.try_get(1)?),
            status: HoldStatus::parse(row.try_get(2)?)?,
            expires_at: row.try_get(3)?,
        }),
        _ => None,
    };
    let (window_spend, groups) = match window {
        Some((window_rows, group_rows)) => {
            let spend: i64 = window_rows.first().map(|r| r.try_get(1)).transpose()?.unwrap_or(0);
            let groups = group_rows.iter().map(|row| group_at(row, 0)).collect::<TxResult<_>>()?;
            (Kopecks(spend), groups)
        }
        None => (Kopecks::ZERO, Vec::new()),
    };
    let stamps = stamp_rows.iter().map(stamp_count).collect::<TxResult<_>>()?;
    Ok(PaymentContext {
        hold,
        window_spend,
        groups,
        stamps,
    })
}

/// A hold's row as [`payment_context_of`] reads it.
const HOLD_ROW_SQL: &str = "SELECT guest_id, amount, status, expires_at FROM holds WHERE id = $1";

/// The guest's row lock, which every write to a guest's balance or holds takes first.
const LOCK_SQL: &str = "SELECT 1 FROM guests WHERE id = $1 FOR UPDATE";

/// The lock, and the next id of the hold to be inserted (its identity column's sequence). A
/// guest that is not there takes no id. When the guest's row changed while the lock was waited
/// for, PostgreSQL evaluates the row again and takes another id: ids may have gaps, as a
/// rolled-back insert leaves anyway.
const LOCK_NEXT_HOLD_SQL: &str =
    "SELECT nextval(pg_get_serial_sequence('holds', 'id')) FROM guests WHERE id = $1 FOR UPDATE";

/// The lock, and the next id of the payment to be inserted ([`LOCK_NEXT_HOLD_SQL`]).
const LOCK_NEXT_PAYMENT_SQL: &str =
    "SELECT nextval(pg_get_serial_sequence('payments', 'id')) FROM guests WHERE id = $1 FOR UPDATE";

/// A hold with the id taken for it ([`Deferred::Hold`]).
const HOLD_INSERT_SQL: &str = "INSERT INTO holds (id, op_id, guest_id, amount, status, created_at, expires_at)
     VALUES ($1, $2, $3, $4, 'open', $5, $6)";

/// A payment with the id taken for it, returning what its day's booking reads
/// ([`Deferred::Payment`]).
const PAYMENT_INSERT_WITH_ID_SQL: &str = "INSERT INTO payments (id, op_id, guest_id, hold_id, spent, subtotal,
        gift_codes, amount_due, accrued, balance_after, new_group, at, offline_requested, owner_payment_id, lines)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     RETURNING guest_id, at, amount_due, owner_payment_id";

/// A payment's row and its day's spending, one statement (the day's sum is booked from the row
/// the insert returns: the statement's other parts cannot see the new row in the table).
fn insert_payment_sql() -> String {
    format!(
        "WITH inserted AS (
            INSERT INTO payments (op_id, guest_id, hold_id, spent, subtotal, gift_codes, amount_due, accrued,
                                  balance_after, new_group, at, offline_requested, owner_payment_id, lines)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            RETURNING id, guest_id, at, amount_due, owner_payment_id),
         booked AS ({})
         SELECT id FROM inserted",
        spend_days::pg_book_inserted_payment("inserted")
    )
}

/// A refund's row, taken off its check's day, one statement.
fn insert_refund_sql() -> String {
    format!(
        "WITH inserted AS (
            INSERT INTO refunds (op_id, payment_id, requested, amount, spend_returned, accrual_taken, unrecovered,
                                 balance_after, at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)
            RETURNING id, payment_id, amount),
         booked AS ({})
         SELECT id FROM inserted",
        spend_days::pg_book_inserted_refund("inserted")
    )
}

/// Every stamp card with the guest's (`$1`) count.
const STAMP_COUNTS_SQL: &str = GUEST_STAMP_CARDS_SQL;

fn ranked_groups_sql() -> &'static str {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {GROUP_COLUMNS} FROM guest_groups gg WHERE gg.rank >= 1"));
    &SQL
}

/// A group's columns in the order the insert and the update list them.
fn group_values(g: &NewGroup) -> [&(dyn ToSql + Sync); 8] {
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

fn stamp_count(row: &Row) -> TxResult<StampCount> {
    Ok(StampCount {
        card_id: row.try_get(0)?,
        collected: row.try_get(1)?,
        needed: row.try_get(2)?,
    })
}

/// A new organisation starts with the template programme (`program`, whose hold time
/// `serve --hold-ttl` sets); an existing one keeps its own.
const ENSURE_PROGRAM_SQL: &str = "INSERT INTO programs
     SELECT $1::TEXT, name, max_check_bp, spend_step, hold_ttl_secs, group_period_days, utc_offset_minutes,
            accrual_basis, welcome_bonus, till_enrolment
     FROM program WHERE id = 1
     ON CONFLICT (org) DO NOTHING";

/// One balance change, applied and recorded in one statement: guest, signed amount, kind, note,
/// time, and what it belongs to (operation id, payment or refund).
const POST_SQL: &str = "WITH changed AS (UPDATE guests SET balance = balance + $2 WHERE id = $1 RETURNING balance)
     INSERT INTO operations (guest_id, kind, amount, balance_after, note, at, op_id, payment_id, refund_id)
     SELECT $1::BIGINT, $3::TEXT, $2::BIGINT, changed.balance, $4::TEXT, $5::BIGINT, $6::TEXT, $7::BIGINT, $8::BIGINT
     FROM changed RETURNING balance_after";

/// Rows sent in one statement by the batch writes (an import).
const BATCH: usize = 5_000;

/// [`POST_SQL`] for many guests at once, each once (an `UPDATE … FROM` changes a row once however
/// many rows it joins): every balance changed and its operation recorded with the balance after.
const POST_MANY_SQL: &str = "WITH d AS (SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[])
                   AS d(guest, delta, kind, note, at, op_id)),
          changed AS (UPDATE guests g SET balance = g.balance + d.delta FROM d WHERE g.id = d.guest
                      RETURNING g.id, g.balance)
     INSERT INTO operations (guest_id, kind, amount, balance_after, note, at, op_id)
     SELECT d.guest, d.kind, d.delta, changed.balance, d.note, d.at, d.op_id FROM d JOIN changed ON changed.id = d.guest";

// ----- Statements, prepared once per connection -----

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

async fn q_all(tx: &ClientWrapper, sql: &str, params: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query(&statement, params).await
}

async fn q_opt(tx: &ClientWrapper, sql: &str, params: Params<'_>) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query_opt(&statement, params).await
}

async fn q_one(tx: &ClientWrapper, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query_one(&statement, params).await
}

async fn exec(tx: &ClientWrapper, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.execute(&statement, params).await
}

async fn in_order<A: std::future::Future, B: std::future::Future>(first: A, second: B) -> (A::Output, B::Output) {
    use std::task::Poll;
    let mut first = std::pin::pin!(first);
    let mut second = std::pin::pin!(second);
    let mut a = None;
    let mut b = None;
    std::future::poll_fn(move |cx| {
        if a.is_none()
            && let Poll::Ready(value) = first.as_mut().poll(cx)
        {
            a = Some(value);
        }
        if b.is_none()
            && let Poll::Ready(value) = second.as_mut().poll(cx)
        {
            b = Some(value);
        }
        match (a.take(), b.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                a = x;
                b = y;
                Poll::Pending
            }
        }
    })
    .await
}

/// The guest card's four reads, sent as one pipeline.
async fn load_card(tx: &ClientWrapper, guest: GuestId, now: UnixSeconds) -> TxResult<GuestCard> {
    let guest_statement = tx
        .prepare_cached(&format!("{CARD_GUEST_SQL} WHERE g.id = $1").replace("{held}", HELD_SQL))
        .await?;
    let stamps_statement = tx.prepare_cached(GUEST_STAMP_CARDS_SQL).await?;
    let promotions_statement = tx.prepare_cached(GUEST_PROMOTIONS_SQL).await?;
    let group_statement = tx.prepare_cached(guest_group_sql()).await?;
    let guest_params: [&(dyn ToSql + Sync); 2] = [&guest, &now];
    let one_guest: [&(dyn ToSql + Sync); 1] = [&guest];
    let [guest_rows, stamp_rows, promotion_rows, group_rows]: [Vec<Row>; 4] = all_in_order(vec![
        Box::pin(tx.query(&guest_statement, &guest_params)),
        Box::pin(tx.query(&stamps_statement, &one_guest)),
        Box::pin(tx.query(&promotions_statement, &one_guest)),
        Box::pin(tx.query(&group_statement, &one_guest)),
    ])
    .await?
    .try_into()
    .map_err(|_| LoyaltyError::Storage("a pipeline lost an answer".to_string()))?;
    let row = guest_rows.first().ok_or(LoyaltyError::UnknownCode)?;
    let group = group_at(group_rows.first().ok_or(LoyaltyError::UnknownCode)?, 0)?;
    let phone: Option<String> = row.try_get(1)?;
    let stamps = stamp_rows
        .iter()
        .map(|r| {
            Ok(StampProgress {
                card_name: r.try_get(3)?,
                collected: r.try_get(1)?,
                needed: r.try_get(2)?,
                reward: r.try_get(4)?,
            })
        })
        .collect::<TxResult<Vec<_>>>()?;
    let promotions = rewards::current_promotions(
        promotion_rows.iter().map(promotion_at).collect::<TxResult<Vec<_>>>()?,
        now,
    );
    Ok(GuestCard {
        guest_id: guest,
        name: row.try_get(0)?,
        phone_masked: phone.as_deref().map(mask_phone).unwrap_or_default(),
        balance: Kopecks(row.try_get(2)?),
        available: Kopecks(row.try_get(3)?),
        group: group.info(),
        stamps,
        promotions,
        daily_visits: None,
        account: row.try_get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(guest: GuestId, delta: i64) -> Deferred {
        Deferred::Post {
            guest,
            delta,
            kind: if delta < 0 { "spend" } else { "accrual" },
            note: "check".to_string(),
            at: 100,
            op_id: None,
            payment_id: Some(7),
            refund_id: None,
        }
    }

    #[test]
    fn parameters_are_numbered_after_the_parts_before() {
        assert_eq!(
            renumber("UPDATE t SET a = $2 WHERE id = $1 AND b = $10", 3),
            "UPDATE t SET a = $5 WHERE id = $4 AND b = $13"
        );
        assert_eq!(renumber("SELECT '$' || $1", 0), "SELECT '$' || $1");
    }

    #[test]
    fn a_guests_postings_change_the_row_once_and_keep_each_balance_after() {
        let writes = [
            Deferred::CloseHold {
                hold: 5,
                status: "committed",
                committed: Some(100),
                at: 100,
            },
            post(1, -100),
            post(1, 40),
            post(2, -30),
        ];
        let chains = chain(&writes);
        assert_eq!(chains.len(), 1, "no row is changed twice: one statement");
        let sql = chains[0].sql();
        assert_eq!(sql.matches("UPDATE guests").count(), 2, "{sql}");
        // The spend's balance after is the new balance less the accrual after it.
        assert_eq!(chains[0].computed, vec![-60, 40, 0, -30, 0]);
        assert_eq!(chains[0].params().len(), 4 + 2 + 18 + 2 + 9);
        let highest = (1..=40).rev().find(|n| sql.contains(&format!("${n}"))).unwrap();
        assert_eq!(highest, chains[0].params().len(), "{sql}");
    }

    #[test]
    fn a_row_changed_again_starts_the_next_statement() {
        let writes = [
            post(1, -100),
            Deferred::Group { guest: 1, group: 2 },
            Deferred::CloseHold {
                hold: 5,
                status: "committed",
                committed: Some(100),
                at: 100,
            },
            Deferred::CloseHold {
                hold: 5,
                status: "voided",
                committed: None,
                at: 100,
            },
        ];
        let chains = chain(&writes);
        assert_eq!(chains.len(), 3);
        assert!(chains[0].sql().contains("balance + $2"));
        assert!(chains[1].sql().contains("group_id") && chains[1].sql().contains("UPDATE holds"));
        assert!(chains[2].sql().contains("UPDATE holds"));
    }
}
