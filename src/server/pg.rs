//! The loyalty ledger on PostgreSQL: the embedded ledger's operations and rules, statement by
//! statement, in PostgreSQL's dialect, sharing the ledger's pure helpers (codes, phones, quotes,
//! refund shares, group moves).
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
    CheckInfo, Gift, GuestCard, GuestId, HistoryEntry, HoldId, HoldReceipt, Identification, IdentifierKind,
    LoyaltyError, PaymentReceipt, Promotion, RefundReceipt, ScanKind, SpendQuote, StampProgress, UnixSeconds,
};
use crate::ledger::{
    Group, NewGroup, ProgramSettings, build_quote, ensure_step, expected_identifier, local_day_start, moves_to,
    normalize_phone, offline_take, refund_amount, refund_shares, valid_code,
};
use crate::mask::mask_phone;
use crate::money::Kopecks;
use crate::server::store::Caller;
use deadpool_postgres::Transaction;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};

const SCHEMA: &str = include_str!("pg_schema.sql");
/// Serialises schema creation when several servers start on a new database.
const SCHEMA_LOCK: i64 = 0x6c6f_7961_6c74;
const MAX_ATTEMPTS: u32 = 8;
const SECONDS_PER_DAY: i64 = 86_400;

/// What a transaction body fails with: a rule of the ledger, or the database.
enum TxError {
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

/// Runs `$body` (an expression using the transaction `$tx`) in a READ COMMITTED transaction,
/// committing on Ok and retrying when PostgreSQL asks for it.
macro_rules! in_tx {
    ($store:expr, $tx:ident => $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut client = $store.client().await?;
            let $tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .await
                .map_err(|e| storage(&e))?;
            let outcome: TxResult<_> = $body;
            let outcome = match outcome {
                Ok(value) => $tx.commit().await.map(|()| value).map_err(TxError::Db),
                Err(error) => Err(error),
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

pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects (a pool of `size`) and creates the schema if needed. With `schema`, everything
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
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size.max(1))
            .build()
            .map_err(|e| LoyaltyError::Storage(format!("PostgreSQL pool: {e}")))?;
        let store = PgStore { pool };
        let client = store.client().await?;
        let create_schema = schema
            .map(|s| format!("CREATE SCHEMA IF NOT EXISTS {s};"))
            .unwrap_or_default();
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_lock({SCHEMA_LOCK}); {create_schema} {SCHEMA} SELECT pg_advisory_unlock({SCHEMA_LOCK});"
            ))
            .await
            .map_err(|e| storage(&e))?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, LoyaltyError> {
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

    pub async fn find_token(&self, hash: &str) -> Result<Option<Caller>, LoyaltyError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT org, till FROM till_tokens WHERE token_hash = $1", &[&hash])
            .await
            .map_err(|e| storage(&e))?;
        Ok(row.map(|row| Caller {
            org: row.get(0),
            till: row.get(1),
        }))
    }

    // ----- Cashier operations -----

    pub async fn identify(
        &self,
        org: &str,
        payload: &str,
        kind: ScanKind,
        now: UnixSeconds,
    ) -> Result<Identification, LoyaltyError> {
        let code = valid_code(payload)?;
        in_tx!(self, tx => identify_tx(&tx, org, code, kind, now).await)
    }

    pub async fn guest_card(&self, org: &str, guest: GuestId, now: UnixSeconds) -> Result<GuestCard, LoyaltyError> {
        in_tx!(self, tx => async {
            own_guest(&tx, org, guest, false).await?;
            load_card(&tx, guest, now).await
        }.await)
    }

    /// The guest's gift codes not yet redeemed (codes masked).
    pub async fn gifts(&self, org: &str, guest: GuestId) -> Result<Vec<Gift>, LoyaltyError> {
        in_tx!(self, tx => async {
            own_guest(&tx, org, guest, false).await?;
            q_all(
                &tx,
                "SELECT code, gift_name, points FROM gift_codes WHERE guest_id = $1 AND redeemed_at IS NULL ORDER BY code",
                &[&guest],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(Gift {
                    code: crate::mask::mask_code(&row.try_get::<_, String>(0)?),
                    name: row.try_get(1)?,
                    points: Kopecks(row.try_get(2)?),
                })
            })
            .collect::<TxResult<Vec<_>>>()
        }.await)
    }

    pub async fn calculate(
        &self,
        org: &str,
        guest: GuestId,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<SpendQuote, LoyaltyError> {
        in_tx!(self, tx => async {
            let ctx = guest_context(&tx, org, guest, now).await?;
            quote(&tx, &ctx, guest, check, now).await
        }.await)
    }

    pub async fn hold(
        &self,
        org: &str,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<HoldReceipt, LoyaltyError> {
        in_tx!(self, tx => hold_tx(&tx, org, op_id, guest, amount, check, now).await)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn commit(
        &self,
        org: &str,
        op_id: &str,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        let gift_codes = serde_json::to_string(&check.gift_codes).map_err(|e| LoyaltyError::Storage(e.to_string()))?;
        in_tx!(self, tx => commit_tx(&tx, org, op_id, guest, hold, spent, check, &gift_codes, now).await)
    }

    /// See `Ledger::commit_offline_payment`.
    pub async fn commit_offline(
        &self,
        org: &str,
        op_id: &str,
        guest: GuestId,
        requested: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        let gift_codes = serde_json::to_string(&check.gift_codes).map_err(|e| LoyaltyError::Storage(e.to_string()))?;
        in_tx!(self, tx => offline_tx(&tx, org, op_id, guest, requested, check, &gift_codes, now).await)
    }

    pub async fn void(&self, org: &str, op_id: &str, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError> {
        in_tx!(self, tx => void_tx(&tx, org, op_id, hold, now).await)
    }

    pub async fn refund(
        &self,
        org: &str,
        op_id: &str,
        payment_op: &str,
        amount: Option<Kopecks>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        in_tx!(self, tx => refund_tx(&tx, org, op_id, payment_op, amount, now).await)
    }

    pub async fn open_holds(&self, org: &str, guest: GuestId) -> Result<Vec<HoldReceipt>, LoyaltyError> {
        in_tx!(self, tx => async {
            own_guest(&tx, org, guest, false).await?;
            let rows = q_all(&tx, "SELECT id, amount, expires_at FROM holds WHERE guest_id = $1 AND status = 'open' ORDER BY id",
                    &[&guest],
                )
                .await?;
            rows.iter().map(hold_receipt).collect::<TxResult<Vec<_>>>()
        }.await)
    }

    pub async fn reset_holds(&self, org: &str, guest: GuestId, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        in_tx!(self, tx => async {
            own_guest(&tx, org, guest, true).await?;
            expire_guest_holds(&tx, guest, now).await?;
            let voided = exec(&tx, "UPDATE holds SET status = 'voided', closed_at = $2 WHERE guest_id = $1 AND status = 'open'",
                    &[&guest, &now],
                )
                .await?;
            Ok(voided as usize)
        }.await)
    }

    pub async fn history(&self, org: &str, guest: GuestId, limit: usize) -> Result<Vec<HistoryEntry>, LoyaltyError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        in_tx!(self, tx => async {
            own_guest(&tx, org, guest, false).await?;
            let rows = q_all(&tx, "SELECT at, kind, amount, balance_after, note FROM operations
                     WHERE guest_id = $1 ORDER BY id DESC LIMIT $2",
                    &[&guest, &limit],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(HistoryEntry {
                        at: row.try_get(0)?,
                        kind: row.try_get(1)?,
                        amount: Kopecks(row.try_get(2)?),
                        balance_after: Kopecks(row.try_get(3)?),
                        note: row.try_get(4)?,
                    })
                })
                .collect::<TxResult<Vec<_>>>()
        }.await)
    }

    pub async fn expire_holds(&self, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        in_tx!(self, tx => async {
            let expired = exec(&tx, "UPDATE holds SET status = 'expired', closed_at = $1 WHERE status = 'open' AND expires_at <= $1",
                    &[&now],
                )
                .await?;
            Ok(expired as usize)
        }.await)
    }

    // ----- Back office and tests -----

    pub async fn set_hold_ttl(&self, secs: i64) -> Result<(), LoyaltyError> {
        self.execute("UPDATE program SET hold_ttl_secs = $1 WHERE id = 1", &[&secs])
            .await
    }

    pub async fn set_spend_rules(&self, max_check_bp: i64, spend_step: Kopecks) -> Result<(), LoyaltyError> {
        self.execute(
            "UPDATE program SET max_check_bp = $1, spend_step = $2 WHERE id = 1",
            &[&max_check_bp, &spend_step.0],
        )
        .await
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), LoyaltyError> {
        let client = self.client().await?;
        client.execute(sql, params).await.map_err(|e| storage(&e))?;
        Ok(())
    }

    pub async fn add_group(&self, g: &NewGroup) -> Result<i64, LoyaltyError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO guest_groups (name, rank, discount_bp, accrual_bp, spend_threshold, never_downgrade,
                                           daily_ops_limit, daily_spend_limit)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &g.name,
                    &g.rank,
                    &g.discount_bp,
                    &g.accrual_bp,
                    &g.spend_threshold.0,
                    &g.never_downgrade,
                    &g.daily_ops_limit,
                    &g.daily_spend_limit.0,
                ],
            )
            .await
            .map_err(|e| storage(&e))?;
        row.try_get(0).map_err(|e| storage(&e))
    }

    pub async fn add_guest(
        &self,
        org: &str,
        name: &str,
        phone: Option<&str>,
        group_id: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        let phone = phone
            .map(|p| {
                normalize_phone(p).ok_or(LoyaltyError::BadCode {
                    max: crate::domain::MAX_CODE_LEN,
                })
            })
            .transpose()?;
        in_tx!(self, tx => async {
            let guest: GuestId = q_one(&tx, "INSERT INTO guests (org, name, phone, group_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&org, &name, &phone, &group_id, &now],
                )
                .await?
                .try_get(0)?;
            if let Some(phone) = &phone {
                exec(&tx,
                    "INSERT INTO identifiers (kind, value, guest_id) VALUES ('phone', $1, $2)",
                    &[phone, &guest],
                )
                .await?;
            }
            Ok(guest)
        }.await)
    }

    pub async fn add_identifier(&self, guest: GuestId, kind: IdentifierKind, value: &str) -> Result<(), LoyaltyError> {
        let code = valid_code(value)?;
        let value = match kind {
            IdentifierKind::Phone => normalize_phone(code).ok_or(LoyaltyError::BadCode {
                max: crate::domain::MAX_CODE_LEN,
            })?,
            _ => code.to_string(),
        };
        self.execute(
            "INSERT INTO identifiers (kind, value, guest_id) VALUES ($1, $2, $3)",
            &[&kind.as_str(), &value, &guest],
        )
        .await
    }

    pub async fn add_gift_code(
        &self,
        code: &str,
        guest: GuestId,
        name: &str,
        points: Kopecks,
    ) -> Result<(), LoyaltyError> {
        let code = valid_code(code)?;
        self.execute(
            "INSERT INTO gift_codes (code, guest_id, gift_name, points) VALUES ($1, $2, $3, $4)",
            &[&code, &guest, &name, &points.0],
        )
        .await
    }

    pub async fn credit(
        &self,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        in_tx!(self, tx => async {
            lock_guest(&tx, guest).await?;
            let first = q_opt(&tx, "SELECT guest_id, amount, balance_after FROM operations WHERE op_id = $1", &[&op_id])
                .await?;
            if let Some(row) = first {
                let (g, a, b): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                return if g == guest && a == amount.0 {
                    Ok(Kopecks(b))
                } else {
                    Err(TxError::Loyalty(LoyaltyError::OperationIdConflict))
                };
            }
            if amount <= Kopecks::ZERO {
                return Err(LoyaltyError::NonPositiveAmount.into());
            }
            post(&tx, guest, "manual_credit", amount.0, "back office", now, Link::Op(op_id)).await
        }.await)
    }

    /// The same invariants as the embedded ledger's `check_invariants`.
    pub async fn check_invariants(&self) -> Result<(), String> {
        let client = self.client().await.map_err(|e| e.to_string())?;
        let mut violations = Vec::new();
        for (rule, sql) in INVARIANT_QUERIES {
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

const INVARIANT_QUERIES: [(&str, &str); 11] = [
    (
        "balance differs from the sum of operations",
        "SELECT 'guest ' || g.id FROM guests g
         WHERE g.balance <> COALESCE((SELECT SUM(o.amount) FROM operations o WHERE o.guest_id = g.id), 0)",
    ),
    (
        "negative balance",
        "SELECT 'guest ' || id FROM guests WHERE balance < 0",
    ),
    (
        "open holds exceed the balance",
        "SELECT 'guest ' || g.id FROM guests g
         WHERE g.balance < COALESCE((SELECT SUM(h.amount) FROM holds h
                                     WHERE h.guest_id = g.id AND h.status = 'open'), 0)",
    ),
    (
        "committed amount wrong",
        "SELECT 'hold ' || id FROM holds
         WHERE (status = 'committed') <> (committed_amount IS NOT NULL)
            OR committed_amount < 0 OR committed_amount > amount",
    ),
    (
        "payment on a hold that is not committed",
        "SELECT 'payment ' || p.id FROM payments p JOIN holds h ON h.id = p.hold_id
         WHERE h.status <> 'committed' OR h.committed_amount <> p.spent",
    ),
    (
        "void recorded for a committed hold",
        "SELECT 'hold ' || h.id FROM hold_voids v JOIN holds h ON h.id = v.hold_id WHERE h.status = 'committed'",
    ),
    (
        "committed hold without its payment",
        "SELECT 'hold ' || h.id FROM holds h WHERE h.status = 'committed'
         AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.hold_id = h.id)",
    ),
    (
        "refunds exceed the check",
        "SELECT 'payment ' || p.id FROM payments p
         WHERE p.amount_due < (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r WHERE r.payment_id = p.id)",
    ),
    (
        "hold op_id reused",
        "SELECT op_id FROM holds GROUP BY op_id HAVING COUNT(*) > 1",
    ),
    (
        "payment op_id reused",
        "SELECT op_id FROM payments GROUP BY op_id HAVING COUNT(*) > 1",
    ),
    (
        "spend without a payment",
        "SELECT 'operation ' || o.id FROM operations o WHERE o.kind = 'spend'
         AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = o.payment_id AND -o.amount = p.spent)",
    ),
];

// ----- Statements, prepared once per connection -----

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

async fn q_all(tx: &Transaction<'_>, sql: &str, params: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query(&statement, params).await
}

async fn q_opt(tx: &Transaction<'_>, sql: &str, params: Params<'_>) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query_opt(&statement, params).await
}

async fn q_one(tx: &Transaction<'_>, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query_one(&statement, params).await
}

async fn exec(tx: &Transaction<'_>, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.execute(&statement, params).await
}

// ----- Transaction bodies -----

/// Checks that the guest exists and belongs to `org`; with `lock`, holds the guest's row until
/// the transaction ends.
async fn own_guest(tx: &Transaction<'_>, org: &str, guest: GuestId, lock: bool) -> TxResult<()> {
    let sql = if lock {
        "SELECT org FROM guests WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT org FROM guests WHERE id = $1"
    };
    let row = q_opt(tx, sql, &[&guest]).await?;
    match row {
        Some(row) if row.try_get::<_, String>(0)? == org => Ok(()),
        _ => Err(LoyaltyError::UnknownCode.into()),
    }
}

async fn lock_guest(tx: &Transaction<'_>, guest: GuestId) -> TxResult<()> {
    match q_opt(tx, "SELECT 1 FROM guests WHERE id = $1 FOR UPDATE", &[&guest]).await? {
        Some(_) => Ok(()),
        None => Err(LoyaltyError::UnknownCode.into()),
    }
}

async fn identify_tx(
    tx: &Transaction<'_>,
    org: &str,
    code: &str,
    kind: ScanKind,
    now: UnixSeconds,
) -> TxResult<Identification> {
    let (guest, gift, via) = resolve_code(tx, code, kind).await?;
    own_guest(tx, org, guest, false).await?;
    let group = guest_group(tx, guest).await?;
    let limit = group.rules.daily_ops_limit;
    if limit > 0 {
        // Counted under the guest's lock, so two tills at once cannot both pass the limit.
        lock_guest(tx, guest).await?;
        let program = load_program(tx).await?;
        let since = local_day_start(now, program.utc_offset_minutes);
        let count: i64 = q_one(
            tx,
            "SELECT COUNT(*) FROM identifications WHERE guest_id = $1 AND at >= $2",
            &[&guest, &since],
        )
        .await?
        .try_get(0)?;
        if count >= limit {
            return Err(LoyaltyError::DailyOperationsLimit { limit }.into());
        }
    }
    exec(
        tx,
        "INSERT INTO identifications (guest_id, via, at) VALUES ($1, $2, $3)",
        &[&guest, &via, &now],
    )
    .await?;
    Ok(Identification {
        card: load_card(tx, guest, now).await?,
        gift,
    })
}

/// Phone first, then gift codes, then the other identifiers (as the embedded ledger).
async fn resolve_code(tx: &Transaction<'_>, code: &str, kind: ScanKind) -> TxResult<(GuestId, Option<Gift>, String)> {
    if let Some(phone) = normalize_phone(code) {
        let row = q_opt(
            tx,
            "SELECT guest_id FROM identifiers WHERE kind = 'phone' AND value = $1",
            &[&phone],
        )
        .await?;
        if let Some(row) = row {
            return Ok((row.try_get(0)?, None, IdentifierKind::Phone.as_str().to_string()));
        }
    }
    let gift = q_opt(
        tx,
        "SELECT guest_id, gift_name, points, redeemed_at IS NOT NULL FROM gift_codes WHERE code = $1",
        &[&code],
    )
    .await?;
    if let Some(row) = gift {
        if row.try_get::<_, bool>(3)? {
            return Err(LoyaltyError::GiftAlreadyUsed.into());
        }
        let gift = Gift {
            code: code.to_string(),
            name: row.try_get(1)?,
            points: Kopecks(row.try_get(2)?),
        };
        return Ok((row.try_get(0)?, Some(gift), "gift_code".to_string()));
    }
    let preferred = expected_identifier(kind).as_str();
    let row = q_opt(
        tx,
        "SELECT guest_id, kind FROM identifiers WHERE value = $1 AND kind <> 'phone'
             ORDER BY kind = $2 DESC, kind LIMIT 1",
        &[&code, &preferred],
    )
    .await?
    .ok_or(LoyaltyError::UnknownCode)?;
    Ok((row.try_get(0)?, None, row.try_get(1)?))
}

async fn load_program(tx: &Transaction<'_>) -> TxResult<ProgramSettings> {
    let row = q_one(
        tx,
        "SELECT name, max_check_bp, spend_step, hold_ttl_secs, group_period_days, utc_offset_minutes
             FROM program WHERE id = 1",
        &[],
    )
    .await?;
    Ok(ProgramSettings {
        name: row.try_get(0)?,
        max_check_bp: row.try_get(1)?,
        spend_step: Kopecks(row.try_get(2)?),
        hold_ttl_secs: row.try_get(3)?,
        group_period_days: row.try_get(4)?,
        utc_offset_minutes: row.try_get(5)?,
    })
}

const GROUP_COLUMNS: &str = "gg.id, gg.name, gg.rank, gg.discount_bp, gg.accrual_bp, gg.spend_threshold,
    gg.never_downgrade, gg.daily_ops_limit, gg.daily_spend_limit";

fn group_from_row(row: &Row) -> TxResult<Group> {
    Ok(Group {
        id: row.try_get(0)?,
        rules: NewGroup {
            name: row.try_get(1)?,
            rank: row.try_get(2)?,
            discount_bp: row.try_get(3)?,
            accrual_bp: row.try_get(4)?,
            spend_threshold: Kopecks(row.try_get(5)?),
            never_downgrade: row.try_get(6)?,
            daily_ops_limit: row.try_get(7)?,
            daily_spend_limit: Kopecks(row.try_get(8)?),
        },
    })
}

async fn guest_group(tx: &Transaction<'_>, guest: GuestId) -> TxResult<Group> {
    let row = q_opt(
        tx,
        &format!("SELECT {GROUP_COLUMNS} FROM guests g JOIN guest_groups gg ON gg.id = g.group_id WHERE g.id = $1"),
        &[&guest],
    )
    .await?
    .ok_or(LoyaltyError::UnknownCode)?;
    group_from_row(&row)
}

/// The sum of a guest's holds still reserving bonuses at `$2` (past their time: released).
const HELD_SQL: &str = "COALESCE((SELECT SUM(h.amount) FROM holds h
    WHERE h.guest_id = g.id AND h.status = 'open' AND h.expires_at > $2), 0)::BIGINT";

async fn load_card(tx: &Transaction<'_>, guest: GuestId, now: UnixSeconds) -> TxResult<GuestCard> {
    let row = q_opt(
        tx,
        &format!("SELECT g.name, g.phone, g.balance, g.balance - {HELD_SQL} FROM guests g WHERE g.id = $1"),
        &[&guest, &now],
    )
    .await?
    .ok_or(LoyaltyError::UnknownCode)?;
    let phone: Option<String> = row.try_get(1)?;
    let stamps = q_all(
        tx,
        "SELECT c.name, COALESCE(s.collected, 0), c.needed, c.reward FROM stamp_cards c
             LEFT JOIN stamps s ON s.card_id = c.id AND s.guest_id = $1 ORDER BY c.id",
        &[&guest],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(StampProgress {
            card_name: r.try_get(0)?,
            collected: r.try_get(1)?,
            needed: r.try_get(2)?,
            reward: r.try_get(3)?,
        })
    })
    .collect::<TxResult<Vec<_>>>()?;
    let promotions = q_all(
        tx,
        "SELECT name, description, ends_at FROM promotions
             WHERE starts_at <= $1 AND $1 < ends_at ORDER BY ends_at, id",
        &[&now],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Promotion {
            name: r.try_get(0)?,
            description: r.try_get(1)?,
            ends_at: r.try_get(2)?,
        })
    })
    .collect::<TxResult<Vec<_>>>()?;
    Ok(GuestCard {
        guest_id: guest,
        name: row.try_get(0)?,
        phone_masked: phone.as_deref().map(mask_phone).unwrap_or_default(),
        balance: Kopecks(row.try_get(2)?),
        available: Kopecks(row.try_get(3)?),
        group: guest_group(tx, guest).await?.info(),
        stamps,
        promotions,
    })
}

async fn available(tx: &Transaction<'_>, guest: GuestId, now: UnixSeconds) -> TxResult<Kopecks> {
    let row = q_opt(
        tx,
        &format!("SELECT g.balance - {HELD_SQL} FROM guests g WHERE g.id = $1"),
        &[&guest, &now],
    )
    .await?
    .ok_or(LoyaltyError::UnknownCode)?;
    Ok(Kopecks(row.try_get(0)?))
}

/// What every write about a guest needs, read in one statement: the guest's balance and
/// available bonuses, the programme and the guest's group, after checking the organisation.
/// With `lock`, the guest's row stays locked until the transaction ends.
struct GuestContext {
    balance: Kopecks,
    available: Kopecks,
    program: ProgramSettings,
    group: Group,
}

/// The columns [`context_from_row`] reads, for the guest in `$1` at the time in `$2`.
fn context_sql() -> String {
    format!(
        "SELECT g.org, g.balance, (g.balance - {HELD_SQL})::BIGINT,
                p.name, p.max_check_bp, p.spend_step, p.hold_ttl_secs, p.group_period_days, p.utc_offset_minutes,
                {GROUP_COLUMNS}
         FROM guests g JOIN guest_groups gg ON gg.id = g.group_id CROSS JOIN program p
         WHERE g.id = $1 AND p.id = 1"
    )
}

/// The guest's context without a lock (quotes).
async fn guest_context(tx: &Transaction<'_>, org: &str, guest: GuestId, now: UnixSeconds) -> TxResult<GuestContext> {
    let row = q_opt(tx, &context_sql(), &[&guest, &now]).await?;
    context_from_row(row, org)
}

/// Locks the guest's row, then reads the guest's context and runs `then_sql` (the request's
/// idempotency lookup), as one pipeline: the three statements are sent together and PostgreSQL
/// runs them in this order. The lock is a statement of its own because a statement that waited
/// for a lock still reads other tables (the holds) as they were when it started, while the
/// statements after it see everything the transaction that held the lock committed.
async fn locked_context(
    tx: &Transaction<'_>,
    org: &str,
    guest: GuestId,
    now: UnixSeconds,
    then_sql: &str,
    then_params: Params<'_>,
) -> TxResult<(GuestContext, Option<Row>)> {
    // Prepared first (once per connection), so that each query below is sent when first polled.
    let lock = tx
        .prepare_cached("SELECT 1 FROM guests WHERE id = $1 FOR UPDATE")
        .await?;
    let read = tx.prepare_cached(&context_sql()).await?;
    let then = tx.prepare_cached(then_sql).await?;
    let ((locked, row), first) = in_order(
        in_order(tx.query_opt(&lock, &[&guest]), tx.query_opt(&read, &[&guest, &now])),
        tx.query_opt(&then, then_params),
    )
    .await;
    if locked?.is_none() {
        return Err(LoyaltyError::UnknownCode.into());
    }
    let ctx = context_from_row(row?, org)?;
    Ok((ctx, first?))
}

/// Polls `first`, then `second`, every time, until both are done: two tokio-postgres requests
/// are sent in this order (a request is sent when its future is first polled).
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

fn context_from_row(row: Option<Row>, org: &str) -> TxResult<GuestContext> {
    let row = row.ok_or(LoyaltyError::UnknownCode)?;
    if row.try_get::<_, String>(0)? != org {
        return Err(LoyaltyError::UnknownCode.into());
    }
    // The group's columns follow the guest's three and the programme's six.
    const G: usize = 9;
    Ok(GuestContext {
        balance: Kopecks(row.try_get(1)?),
        available: Kopecks(row.try_get(2)?),
        program: ProgramSettings {
            name: row.try_get(3)?,
            max_check_bp: row.try_get(4)?,
            spend_step: Kopecks(row.try_get(5)?),
            hold_ttl_secs: row.try_get(6)?,
            group_period_days: row.try_get(7)?,
            utc_offset_minutes: row.try_get(8)?,
        },
        group: Group {
            id: row.try_get(G)?,
            rules: NewGroup {
                name: row.try_get(G + 1)?,
                rank: row.try_get(G + 2)?,
                discount_bp: row.try_get(G + 3)?,
                accrual_bp: row.try_get(G + 4)?,
                spend_threshold: Kopecks(row.try_get(G + 5)?),
                never_downgrade: row.try_get(G + 6)?,
                daily_ops_limit: row.try_get(G + 7)?,
                daily_spend_limit: Kopecks(row.try_get(G + 8)?),
            },
        },
    })
}

async fn quote(
    tx: &Transaction<'_>,
    ctx: &GuestContext,
    guest: GuestId,
    check: &CheckInfo,
    now: UnixSeconds,
) -> TxResult<SpendQuote> {
    if check.subtotal < Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount.into());
    }
    let daily_left = if ctx.group.rules.daily_spend_limit > Kopecks::ZERO {
        let since = local_day_start(now, ctx.program.utc_offset_minutes);
        let used: i64 = q_one(
            tx,
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
        Some(ctx.group.rules.daily_spend_limit.saturating_sub(Kopecks(used)))
    } else {
        None
    };
    Ok(build_quote(
        &ctx.program,
        &ctx.group,
        check.subtotal,
        ctx.available,
        daily_left,
    ))
}

async fn expire_guest_holds(tx: &Transaction<'_>, guest: GuestId, now: UnixSeconds) -> TxResult<u64> {
    Ok(exec(
        tx,
        "UPDATE holds SET status = 'expired', closed_at = $2
             WHERE guest_id = $1 AND status = 'open' AND expires_at <= $2",
        &[&guest, &now],
    )
    .await?)
}

fn hold_receipt(row: &Row) -> TxResult<HoldReceipt> {
    Ok(HoldReceipt {
        hold_id: row.try_get(0)?,
        amount: Kopecks(row.try_get(1)?),
        expires_at: row.try_get(2)?,
    })
}

async fn hold_tx(
    tx: &Transaction<'_>,
    org: &str,
    op_id: &str,
    guest: GuestId,
    amount: Kopecks,
    check: &CheckInfo,
    now: UnixSeconds,
) -> TxResult<HoldReceipt> {
    let (ctx, first) = locked_context(
        tx,
        org,
        guest,
        now,
        "SELECT id, amount, expires_at, guest_id FROM holds WHERE op_id = $1",
        &[&op_id],
    )
    .await?;
    if let Some(row) = first {
        let receipt = hold_receipt(&row)?;
        let first_guest: GuestId = row.try_get(3)?;
        return if first_guest == guest && receipt.amount == amount {
            Ok(receipt)
        } else {
            Err(LoyaltyError::OperationIdConflict.into())
        };
    }
    if amount <= Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount.into());
    }
    ensure_step(amount, ctx.program.spend_step)?;
    // Holds past their time count as released in `available`; the sweep marks them.
    let max = quote(tx, &ctx, guest, check, now).await?.max_spend;
    if amount > max {
        return Err(LoyaltyError::OverMaximum { requested: amount, max }.into());
    }
    let expires_at = now + ctx.program.hold_ttl_secs;
    let hold_id: HoldId = q_one(
        tx,
        "INSERT INTO holds (op_id, guest_id, amount, status, created_at, expires_at)
             VALUES ($1, $2, $3, 'open', $4, $5) RETURNING id",
        &[&op_id, &guest, &amount.0, &now, &expires_at],
    )
    .await?
    .try_get(0)?;
    Ok(HoldReceipt {
        hold_id,
        amount,
        expires_at,
    })
}

#[allow(clippy::too_many_arguments)]
async fn commit_tx(
    tx: &Transaction<'_>,
    org: &str,
    op_id: &str,
    guest: GuestId,
    hold: Option<HoldId>,
    spent: Kopecks,
    check: &CheckInfo,
    gift_codes: &str,
    now: UnixSeconds,
) -> TxResult<PaymentReceipt> {
    let (ctx, first) = locked_context(
        tx,
        org,
        guest,
        now,
        "SELECT guest_id, hold_id, spent, subtotal, gift_codes, accrued, balance_after, new_group
             FROM payments WHERE op_id = $1",
        &[&op_id],
    )
    .await?;
    if let Some(row) = first {
        let same = row.try_get::<_, GuestId>(0)? == guest
            && row.try_get::<_, Option<HoldId>>(1)? == hold
            && row.try_get::<_, i64>(2)? == spent.0
            && row.try_get::<_, i64>(3)? == check.subtotal.0
            && row.try_get::<_, String>(4)? == gift_codes;
        return if same {
            Ok(PaymentReceipt {
                spent,
                accrued: Kopecks(row.try_get(5)?),
                balance_after: Kopecks(row.try_get(6)?),
                new_group: row.try_get(7)?,
            })
        } else {
            Err(LoyaltyError::OperationIdConflict.into())
        };
    }
    if spent < Kopecks::ZERO || check.subtotal < Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount.into());
    }
    ensure_step(spent, ctx.program.spend_step)?;
    match hold {
        Some(hold) => settle_hold(tx, hold, guest, spent, now).await?,
        None if spent > Kopecks::ZERO => {
            return Err(LoyaltyError::OverMaximum {
                requested: spent,
                max: Kopecks::ZERO,
            }
            .into());
        }
        None => {}
    }
    record_payment(tx, &ctx, op_id, guest, hold, spent, check, gift_codes, now).await
}

/// A payment a till took offline: debits what the guest still has (see `offline_take`).
#[allow(clippy::too_many_arguments)]
async fn offline_tx(
    tx: &Transaction<'_>,
    org: &str,
    op_id: &str,
    guest: GuestId,
    requested: Kopecks,
    check: &CheckInfo,
    gift_codes: &str,
    now: UnixSeconds,
) -> TxResult<PaymentReceipt> {
    let (ctx, first) = locked_context(
        tx,
        org,
        guest,
        now,
        "SELECT guest_id, hold_id, subtotal, gift_codes, offline_requested, spent, accrued, balance_after, new_group
         FROM payments WHERE op_id = $1",
        &[&op_id],
    )
    .await?;
    if let Some(row) = first {
        let same = row.try_get::<_, GuestId>(0)? == guest
            && row.try_get::<_, Option<HoldId>>(1)?.is_none()
            && row.try_get::<_, i64>(2)? == check.subtotal.0
            && row.try_get::<_, String>(3)? == gift_codes
            && row.try_get::<_, Option<i64>>(4)? == Some(requested.0);
        return if same {
            Ok(PaymentReceipt {
                spent: Kopecks(row.try_get(5)?),
                accrued: Kopecks(row.try_get(6)?),
                balance_after: Kopecks(row.try_get(7)?),
                new_group: row.try_get(8)?,
            })
        } else {
            Err(LoyaltyError::OperationIdConflict.into())
        };
    }
    if requested < Kopecks::ZERO || check.subtotal < Kopecks::ZERO {
        return Err(LoyaltyError::NonPositiveAmount.into());
    }
    let spent = offline_take(requested, ctx.available, ctx.group.amount_due(check.subtotal));
    let receipt = record_payment(tx, &ctx, op_id, guest, None, spent, check, gift_codes, now).await?;
    exec(
        tx,
        "UPDATE payments SET offline_requested = $2 WHERE op_id = $1",
        &[&op_id, &requested.0],
    )
    .await?;
    Ok(receipt)
}

/// Everything a paid check does once the guest is locked, the request checked and the hold
/// settled: the visit and receipt, the debit and accrual, gift codes, stamps, the group move.
#[allow(clippy::too_many_arguments)]
async fn record_payment(
    tx: &Transaction<'_>,
    ctx: &GuestContext,
    op_id: &str,
    guest: GuestId,
    hold: Option<HoldId>,
    spent: Kopecks,
    check: &CheckInfo,
    gift_codes: &str,
    now: UnixSeconds,
) -> TxResult<PaymentReceipt> {
    let group = &ctx.group;
    let amount_due = group.amount_due(check.subtotal);
    let accrued = amount_due.saturating_sub(spent).percent_floor(group.rules.accrual_bp);
    let new_group = group_after_visit(tx, guest, group, amount_due, &ctx.program, now).await?;
    let balance_after = ctx.balance + accrued - spent;
    let new_group_name = new_group.as_ref().map(|g| g.rules.name.clone());
    let payment_id: i64 = q_one(
        tx,
        "INSERT INTO payments (op_id, guest_id, hold_id, spent, subtotal, gift_codes, amount_due, accrued,
                                   balance_after, new_group, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        &[
            &op_id,
            &guest,
            &hold,
            &spent.0,
            &check.subtotal.0,
            &gift_codes,
            &amount_due.0,
            &accrued.0,
            &balance_after.0,
            &new_group_name,
            &now,
        ],
    )
    .await?
    .try_get(0)?;
    let note = format!("check {amount_due}");
    // The debit, the accrual and the stamps go out as one pipeline, in this order.
    let post_statement = tx.prepare_cached(POST_SQL).await?;
    let stamps_statement = tx.prepare_cached(STAMPS_SQL).await?;
    let (no_op, no_refund, payment): (Option<&str>, Option<i64>, Option<i64>) = (None, None, Some(payment_id));
    let spend_delta = -spent.0;
    let spend = async {
        if spent > Kopecks::ZERO {
            let params: Params<'_> = &[
                &guest,
                &spend_delta,
                &"spend",
                &note,
                &now,
                &no_op,
                &payment,
                &no_refund,
            ];
            tx.query_opt(&post_statement, params).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let accrual = async {
        if accrued > Kopecks::ZERO {
            let params: Params<'_> = &[
                &guest, &accrued.0, &"accrual", &note, &now, &no_op, &payment, &no_refund,
            ];
            tx.query_opt(&post_statement, params).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let ((spend, accrual), stamps) = in_order(in_order(spend, accrual), tx.execute(&stamps_statement, &[&guest])).await;
    for posted in [spend?, accrual?] {
        if let Some(None) = posted {
            return Err(LoyaltyError::UnknownCode.into());
        }
    }
    stamps?;
    for code in &check.gift_codes {
        let redeemed = exec(
            tx,
            "UPDATE gift_codes SET redeemed_at = $3, payment_id = $4
                 WHERE code = $1 AND guest_id = $2 AND redeemed_at IS NULL",
            &[code, &guest, &now, &payment_id],
        )
        .await?;
        if redeemed != 1 {
            return Err(LoyaltyError::GiftAlreadyUsed.into());
        }
    }
    if let Some(target) = &new_group {
        exec(
            tx,
            "UPDATE guests SET group_id = $2 WHERE id = $1",
            &[&guest, &target.id],
        )
        .await?;
    }
    Ok(PaymentReceipt {
        spent,
        accrued,
        balance_after,
        new_group: new_group_name,
    })
}

async fn settle_hold(
    tx: &Transaction<'_>,
    hold: HoldId,
    guest: GuestId,
    spent: Kopecks,
    now: UnixSeconds,
) -> TxResult<()> {
    let row = q_opt(
        tx,
        "SELECT guest_id, amount, status, expires_at FROM holds WHERE id = $1 FOR UPDATE",
        &[&hold],
    )
    .await?
    .ok_or(LoyaltyError::UnknownHold)?;
    let (owner, amount, mut status): (GuestId, i64, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if owner != guest {
        return Err(LoyaltyError::UnknownHold.into());
    }
    // An open hold past its time is expired, whether or not the sweep marked it yet.
    if status == "open" && row.try_get::<_, i64>(3)? <= now {
        status = "expired".to_string();
    }
    if status != "open" {
        return Err(LoyaltyError::HoldNotOpen { status }.into());
    }
    if spent > Kopecks(amount) {
        return Err(LoyaltyError::CommitOverHold {
            requested: spent,
            held: Kopecks(amount),
        }
        .into());
    }
    exec(
        tx,
        "UPDATE holds SET status = 'committed', committed_amount = $2, closed_at = $3 WHERE id = $1",
        &[&hold, &spent.0, &now],
    )
    .await?;
    Ok(())
}

async fn group_after_visit(
    tx: &Transaction<'_>,
    guest: GuestId,
    current: &Group,
    visit_due: Kopecks,
    program: &ProgramSettings,
    now: UnixSeconds,
) -> TxResult<Option<Group>> {
    if current.rules.rank < 1 {
        return Ok(None);
    }
    let window_start = now - program.group_period_days * SECONDS_PER_DAY;
    // The best group the spending in the window (this visit included, returns deducted) reaches.
    let target = q_opt(
        tx,
        &format!(
            "SELECT {GROUP_COLUMNS} FROM guest_groups gg
             WHERE gg.rank >= 1 AND gg.spend_threshold <= $3::BIGINT +
                 (SELECT COALESCE(SUM(p.amount_due), 0)
                         - COALESCE((SELECT SUM(r.amount) FROM refunds r JOIN payments q ON q.id = r.payment_id
                                     WHERE q.guest_id = $1 AND q.at > $2), 0)
                  FROM payments p WHERE p.guest_id = $1 AND p.at > $2)::BIGINT
             ORDER BY gg.rank DESC, gg.id LIMIT 1"
        ),
        &[&guest, &window_start, &visit_due.0],
    )
    .await?;
    match target {
        Some(row) => {
            let target = group_from_row(&row)?;
            Ok(moves_to(current, &target).then_some(target))
        }
        None => Ok(None),
    }
}

/// One balance change, applied and recorded in one statement: guest, signed amount, kind, note,
/// time, and what it belongs to (operation id, payment or refund).
const POST_SQL: &str = "WITH changed AS (UPDATE guests SET balance = balance + $2 WHERE id = $1 RETURNING balance)
     INSERT INTO operations (guest_id, kind, amount, balance_after, note, at, op_id, payment_id, refund_id)
     SELECT $1::BIGINT, $3::TEXT, $2::BIGINT, changed.balance, $4::TEXT, $5::BIGINT, $6::TEXT, $7::BIGINT, $8::BIGINT
     FROM changed RETURNING balance_after";

/// A stamp on every stamp card of the guest, up to each card's need.
const STAMPS_SQL: &str = "INSERT INTO stamps (guest_id, card_id, collected) SELECT $1, id, 1 FROM stamp_cards
     ON CONFLICT (guest_id, card_id) DO UPDATE SET collected =
         LEAST(stamps.collected + 1, (SELECT needed FROM stamp_cards WHERE id = excluded.card_id))";

/// What a balance change belongs to.
enum Link<'a> {
    Op(&'a str),
    Refund(i64),
}

/// Records a signed balance change and applies it, in one statement; returns the balance after.
async fn post(
    tx: &Transaction<'_>,
    guest: GuestId,
    kind: &str,
    delta: i64,
    note: &str,
    at: UnixSeconds,
    link: Link<'_>,
) -> TxResult<Kopecks> {
    // Payments post their own changes (see `record_payment`).
    let payment_id: Option<i64> = None;
    let (op_id, refund_id) = match link {
        Link::Op(op) => (Some(op), None),
        Link::Refund(id) => (None, Some(id)),
    };
    let row = q_opt(
        tx,
        POST_SQL,
        &[&guest, &delta, &kind, &note, &at, &op_id, &payment_id, &refund_id],
    )
    .await?
    .ok_or(LoyaltyError::UnknownCode)?;
    Ok(Kopecks(row.try_get(0)?))
}

async fn void_tx(tx: &Transaction<'_>, org: &str, op_id: &str, hold: HoldId, now: UnixSeconds) -> TxResult<()> {
    let guest: GuestId = q_opt(tx, "SELECT guest_id FROM holds WHERE id = $1", &[&hold])
        .await?
        .ok_or(LoyaltyError::UnknownHold)?
        .try_get(0)?;
    if own_guest(tx, org, guest, true).await.is_err() {
        return Err(LoyaltyError::UnknownHold.into());
    }
    let voided = q_opt(tx, "SELECT hold_id FROM hold_voids WHERE op_id = $1", &[&op_id]).await?;
    if let Some(row) = voided {
        return if row.try_get::<_, HoldId>(0)? == hold {
            Ok(())
        } else {
            Err(LoyaltyError::OperationIdConflict.into())
        };
    }
    expire_guest_holds(tx, guest, now).await?;
    let status: String = q_one(tx, "SELECT status FROM holds WHERE id = $1 FOR UPDATE", &[&hold])
        .await?
        .try_get(0)?;
    match status.as_str() {
        "open" => {
            exec(
                tx,
                "UPDATE holds SET status = 'voided', closed_at = $2 WHERE id = $1",
                &[&hold, &now],
            )
            .await?;
        }
        "voided" | "expired" => {}
        _ => return Err(LoyaltyError::HoldNotOpen { status }.into()),
    }
    exec(
        tx,
        "INSERT INTO hold_voids (op_id, hold_id, at) VALUES ($1, $2, $3)",
        &[&op_id, &hold, &now],
    )
    .await?;
    Ok(())
}

async fn refund_tx(
    tx: &Transaction<'_>,
    org: &str,
    op_id: &str,
    payment_op: &str,
    requested: Option<Kopecks>,
    now: UnixSeconds,
) -> TxResult<RefundReceipt> {
    let payment = q_opt(
        tx,
        "SELECT id, guest_id, amount_due, spent, accrued FROM payments WHERE op_id = $1",
        &[&payment_op],
    )
    .await?
    .ok_or(LoyaltyError::UnknownPayment)?;
    let (payment_id, guest, amount_due, spent, accrued): (i64, GuestId, i64, i64, i64) = (
        payment.try_get(0)?,
        payment.try_get(1)?,
        payment.try_get(2)?,
        payment.try_get(3)?,
        payment.try_get(4)?,
    );
    if own_guest(tx, org, guest, true).await.is_err() {
        return Err(LoyaltyError::UnknownPayment.into());
    }
    let first = q_opt(
        tx,
        "SELECT p.op_id, r.requested, r.amount, r.spend_returned, r.accrual_taken, r.unrecovered, r.balance_after
             FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.op_id = $1",
        &[&op_id],
    )
    .await?;
    if let Some(row) = first {
        let same =
            row.try_get::<_, String>(0)? == payment_op && row.try_get::<_, Option<i64>>(1)? == requested.map(|a| a.0);
        return if same {
            Ok(RefundReceipt {
                amount: Kopecks(row.try_get(2)?),
                spend_returned: Kopecks(row.try_get(3)?),
                accrual_taken: Kopecks(row.try_get(4)?),
                unrecovered: Kopecks(row.try_get(5)?),
                balance_after: Kopecks(row.try_get(6)?),
            })
        } else {
            Err(LoyaltyError::OperationIdConflict.into())
        };
    }
    let before: i64 = q_one(
        tx,
        "SELECT COALESCE(SUM(amount), 0)::BIGINT FROM refunds WHERE payment_id = $1",
        &[&payment_id],
    )
    .await?
    .try_get(0)?;
    let amount = refund_amount(requested, Kopecks(amount_due - before))?;
    let (spend_back, accrual_due) = refund_shares(
        Kopecks(amount_due),
        Kopecks(spent),
        Kopecks(accrued),
        Kopecks(before),
        amount,
    );
    expire_guest_holds(tx, guest, now).await?;
    let can_take = (available(tx, guest, now).await? + spend_back).max(Kopecks::ZERO);
    let accrual_taken = accrual_due.min(can_take);
    let unrecovered = accrual_due - accrual_taken;
    let refund_id: i64 = q_one(
        tx,
        "INSERT INTO refunds (op_id, payment_id, requested, amount, spend_returned, accrual_taken, unrecovered,
                                  balance_after, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) RETURNING id",
        &[
            &op_id,
            &payment_id,
            &requested.map(|a| a.0),
            &amount.0,
            &spend_back.0,
            &accrual_taken.0,
            &unrecovered.0,
            &now,
        ],
    )
    .await?
    .try_get(0)?;
    let note = format!("refund {amount}");
    let mut balance_after = Kopecks(
        q_one(tx, "SELECT balance FROM guests WHERE id = $1", &[&guest])
            .await?
            .try_get(0)?,
    );
    if spend_back > Kopecks::ZERO {
        balance_after = post(
            tx,
            guest,
            "refund_spend",
            spend_back.0,
            &note,
            now,
            Link::Refund(refund_id),
        )
        .await?;
    }
    if accrual_taken > Kopecks::ZERO {
        balance_after = post(
            tx,
            guest,
            "refund_accrual",
            -accrual_taken.0,
            &note,
            now,
            Link::Refund(refund_id),
        )
        .await?;
    }
    exec(
        tx,
        "UPDATE refunds SET balance_after = $2 WHERE id = $1",
        &[&refund_id, &balance_after.0],
    )
    .await?;
    Ok(RefundReceipt {
        amount,
        spend_returned: spend_back,
        accrual_taken,
        unrecovered,
        balance_after,
    })
}
