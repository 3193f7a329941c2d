//! The server's storage: the same operations on the embedded SQLite ledger or on PostgreSQL.
//!
//! Both stores keep the ledger's rules: SQLite by calling [`Ledger`] itself, PostgreSQL by the
//! same statements in its dialect (see `pg.rs`), sharing the ledger's pure helpers. One
//! conformance suite (`tests/server_conformance.rs`) runs the same requests against both.
//! Every call is scoped to the calling till's organisation: another organisation's guest, hold
//! or payment is reported as unknown, exactly like one that does not exist.

use super::pg::PgStore;
use crate::domain::{
    CheckInfo, GuestCard, GuestId, HistoryEntry, HoldId, HoldReceipt, Identification, IdentifierKind, LoyaltyError,
    PaymentReceipt, RefundReceipt, ScanKind, SpendQuote, UnixSeconds,
};
use crate::ledger::{Ledger, NewGroup, ProgramSettings};
use crate::loyalty::engine::{Answer, Op, unexpected};
use crate::money::Kopecks;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Who is calling: a till of an organisation, known by its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub org: String,
    pub till: String,
}

impl Caller {
    /// Operation ids are the till's own: stored with the organisation and till in front, so two
    /// tills can never collide and a till never sees another's operations.
    pub fn op(&self, op_id: &str) -> String {
        format!("{}/{}:{op_id}", self.org, self.till)
    }

    /// An operation of another till of the same organisation (a refund at another till).
    pub fn op_of(&self, till: &str, op_id: &str) -> String {
        format!("{}/{till}:{op_id}", self.org)
    }
}

/// Where the server keeps the ledger, from `--db`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path".to_string());
            }
            Ok(DbUrl::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DbUrl::Postgres(url.to_string()))
        } else {
            Err("the database URL must start with sqlite:// or postgres://".to_string())
        }
    }
}

/// Names of organisations and tills: short, and safe inside operation ids.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// A new till token: 32 random bytes, hex, with a prefix that says what it is.
pub fn new_token() -> Result<String, LoyaltyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| LoyaltyError::Storage(format!("no random numbers: {e}")))?;
    Ok(format!("lt_{}", hex(&bytes)))
}

/// Tokens are stored as their SHA-256, never as they are.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    pub async fn open(url: &DbUrl) -> Result<Store, LoyaltyError> {
        match url {
            DbUrl::Sqlite(path) => Ok(Store::Sqlite(SqliteStore::open(path)?)),
            DbUrl::Postgres(url) => Ok(Store::Postgres(PgStore::connect(url, None, 16).await?)),
        }
    }

    pub async fn create_token(&self, org: &str, till: &str, now: UnixSeconds) -> Result<String, LoyaltyError> {
        if !valid_name(org) || !valid_name(till) {
            return Err(LoyaltyError::BadCode { max: 32 });
        }
        let token = new_token()?;
        let hash = token_hash(&token);
        match self {
            Store::Sqlite(s) => {
                let (org, till) = (org.to_string(), till.to_string());
                s.blocking(move |_, t| t.save_token(&org, &till, &hash, now)).await?
            }
            Store::Postgres(p) => p.save_token(org, till, &hash, now).await?,
        }
        Ok(token)
    }

    /// The till a token belongs to, if any.
    pub async fn caller_for(&self, hash: &str) -> Result<Option<Caller>, LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let hash = hash.to_string();
                s.read(move |_, t| t.find_token(&hash)).await
            }
            Store::Postgres(p) => p.find_token(hash).await,
        }
    }

    /// Runs a loyalty operation for `caller`: the one place where the two stores part.
    pub async fn run(&self, caller: &Caller, op: Op, now: UnixSeconds) -> Result<Answer, LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let org = caller.org.clone();
                let reads_only = op.reads_only();
                let work = move |l: &mut Ledger, _: &TokenTable| l.run(&op, Some(&org), now);
                if reads_only {
                    s.read(work).await
                } else {
                    s.blocking(work).await
                }
            }
            Store::Postgres(p) => p.run(&op, Some(&caller.org), now).await,
        }
    }

    pub async fn identify(
        &self,
        caller: &Caller,
        payload: &str,
        kind: ScanKind,
        now: UnixSeconds,
    ) -> Result<Identification, LoyaltyError> {
        let op = Op::Identify {
            payload: payload.to_string(),
            kind,
        };
        match self.run(caller, op, now).await? {
            Answer::Identification(found) => Ok(found),
            other => Err(unexpected(other)),
        }
    }

    pub async fn guest_card(
        &self,
        caller: &Caller,
        guest: GuestId,
        now: UnixSeconds,
    ) -> Result<GuestCard, LoyaltyError> {
        match self.run(caller, Op::Card { guest }, now).await? {
            Answer::Card(card) => Ok(card),
            other => Err(unexpected(other)),
        }
    }

    pub async fn gifts(&self, caller: &Caller, guest: GuestId) -> Result<Vec<crate::domain::Gift>, LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let org = caller.org.clone();
                s.read(move |l, _| {
                    own_guest(l, &org, guest)?;
                    l.gifts(guest)
                })
                .await
            }
            Store::Postgres(p) => p.gifts(&caller.org, guest).await,
        }
    }

    pub async fn calculate(
        &self,
        caller: &Caller,
        guest: GuestId,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<SpendQuote, LoyaltyError> {
        let op = Op::Quote {
            guest,
            check: check.clone(),
        };
        match self.run(caller, op, now).await? {
            Answer::Quote(quote) => Ok(quote),
            other => Err(unexpected(other)),
        }
    }

    pub async fn hold(
        &self,
        caller: &Caller,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<HoldReceipt, LoyaltyError> {
        let op = Op::Hold {
            op_key: caller.op(op_id),
            guest,
            amount,
            check: check.clone(),
        };
        match self.run(caller, op, now).await? {
            Answer::Hold(receipt) => Ok(receipt),
            other => Err(unexpected(other)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn commit(
        &self,
        caller: &Caller,
        op_id: &str,
        guest: GuestId,
        hold: Option<HoldId>,
        spent: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        let op = Op::Commit {
            op_key: caller.op(op_id),
            guest,
            hold,
            spent,
            check: check.clone(),
        };
        match self.run(caller, op, now).await? {
            Answer::Payment(receipt) => Ok(receipt),
            other => Err(unexpected(other)),
        }
    }

    /// A check a till closed offline with bonuses; see `Ledger::commit_offline_payment`.
    pub async fn commit_offline(
        &self,
        caller: &Caller,
        op_id: &str,
        guest: GuestId,
        requested: Kopecks,
        check: &CheckInfo,
        now: UnixSeconds,
    ) -> Result<PaymentReceipt, LoyaltyError> {
        let op = Op::CommitOffline {
            op_key: caller.op(op_id),
            guest,
            requested,
            check: check.clone(),
        };
        match self.run(caller, op, now).await? {
            Answer::Payment(receipt) => Ok(receipt),
            other => Err(unexpected(other)),
        }
    }

    pub async fn void(&self, caller: &Caller, op_id: &str, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError> {
        let op = Op::Void {
            op_key: caller.op(op_id),
            hold,
        };
        match self.run(caller, op, now).await? {
            Answer::Voided => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn refund(
        &self,
        caller: &Caller,
        op_id: &str,
        payment_op: &str,
        amount: Option<Kopecks>,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        let op = Op::Refund {
            op_key: caller.op(op_id),
            payment_op_key: payment_op.to_string(),
            requested: amount,
        };
        match self.run(caller, op, now).await? {
            Answer::Refund(receipt) => Ok(receipt),
            other => Err(unexpected(other)),
        }
    }

    pub async fn reset_holds(&self, caller: &Caller, guest: GuestId, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        match self.run(caller, Op::ResetHolds { guest }, now).await? {
            Answer::Count(count) => Ok(usize::try_from(count).unwrap_or(usize::MAX)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn open_holds(&self, caller: &Caller, guest: GuestId) -> Result<Vec<HoldReceipt>, LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let org = caller.org.clone();
                s.read(move |l, _| {
                    own_guest(l, &org, guest)?;
                    l.open_holds(Some(guest))
                })
                .await
            }
            Store::Postgres(p) => p.open_holds(&caller.org, guest).await,
        }
    }

    pub async fn history(
        &self,
        caller: &Caller,
        guest: GuestId,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let org = caller.org.clone();
                s.read(move |l, _| {
                    own_guest(l, &org, guest)?;
                    l.history(guest, limit)
                })
                .await
            }
            Store::Postgres(p) => p.history(&caller.org, guest, limit).await,
        }
    }

    /// Releases every hold whose time is up; returns how many.
    pub async fn expire_holds(&self, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        match self {
            Store::Sqlite(s) => s.blocking(move |l, _| l.expire_holds(now)).await,
            Store::Postgres(p) => p.expire_holds(now).await,
        }
    }

    // ----- Back office and tests -----

    pub async fn set_hold_ttl(&self, secs: i64) -> Result<(), LoyaltyError> {
        match self {
            Store::Sqlite(s) => s.blocking(move |l, _| l.set_default_hold_ttl(secs)).await,
            Store::Postgres(p) => p.set_hold_ttl(secs).await,
        }
    }

    /// Sets the programme's check share limit and spend step.
    pub async fn set_spend_rules(&self, max_check_bp: i64, spend_step: Kopecks) -> Result<(), LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                s.blocking(move |l, _| {
                    let mut program = l.program()?;
                    program.max_check_bp = max_check_bp;
                    program.spend_step = spend_step;
                    l.set_program(&program)
                })
                .await
            }
            Store::Postgres(p) => p.set_spend_rules(max_check_bp, spend_step).await,
        }
    }

    /// Sets one organisation's programme.
    pub async fn set_org_program(&self, org: &str, program: &ProgramSettings) -> Result<(), LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let (org, program) = (org.to_string(), program.clone());
                s.blocking(move |l, _| l.set_org_program(&org, &program)).await
            }
            Store::Postgres(p) => p.set_org_program(org, program).await,
        }
    }

    pub async fn add_group(&self, group: &NewGroup) -> Result<i64, LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let group = group.clone();
                s.blocking(move |l, _| l.add_group(&group)).await
            }
            Store::Postgres(p) => p.add_group(group).await,
        }
    }

    pub async fn add_guest(
        &self,
        org: &str,
        name: &str,
        phone: Option<&str>,
        group_id: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let (org, name, phone) = (org.to_string(), name.to_string(), phone.map(str::to_string));
                s.blocking(move |l, _| l.add_guest_in(&org, &name, phone.as_deref(), group_id, now))
                    .await
            }
            Store::Postgres(p) => p.add_guest(org, name, phone, group_id, now).await,
        }
    }

    pub async fn add_identifier(&self, guest: GuestId, kind: IdentifierKind, value: &str) -> Result<(), LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let value = value.to_string();
                s.blocking(move |l, _| l.add_identifier(guest, kind, &value)).await
            }
            Store::Postgres(p) => p.add_identifier(guest, kind, value).await,
        }
    }

    pub async fn add_gift_code(
        &self,
        code: &str,
        guest: GuestId,
        name: &str,
        points: Kopecks,
    ) -> Result<(), LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let (code, name) = (code.to_string(), name.to_string());
                s.blocking(move |l, _| l.add_gift_code(&code, guest, &name, points))
                    .await
            }
            Store::Postgres(p) => p.add_gift_code(code, guest, name, points).await,
        }
    }

    /// A back-office credit, idempotent by `op_id`; returns the balance after.
    pub async fn credit(
        &self,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        match self {
            Store::Sqlite(s) => {
                let op_id = op_id.to_string();
                s.blocking(move |l, _| l.credit(&op_id, guest, amount, "back office", now))
                    .await
            }
            Store::Postgres(p) => p.credit(op_id, guest, amount, now).await,
        }
    }

    /// The ledger's invariants; the error lists every violation.
    pub async fn check_invariants(&self) -> Result<(), String> {
        match self {
            Store::Sqlite(s) => s
                .blocking(|l, _| Ok(l.check_invariants()))
                .await
                .map_err(|e| e.to_string())?,
            Store::Postgres(p) => p.check_invariants().await,
        }
    }
}

fn own_guest(ledger: &Ledger, org: &str, guest: GuestId) -> Result<(), LoyaltyError> {
    if ledger.guest_org(guest)? == org {
        Ok(())
    } else {
        Err(LoyaltyError::UnknownCode)
    }
}

/// How many SQLite connections serve requests: one writer, the rest readers side by side (WAL).
const SQLITE_CONNECTIONS: usize = 4;

/// The embedded ledger behind the server: a few connections to one file, used on tokio's
/// blocking threads.
pub struct SqliteStore {
    connections: Arc<Vec<Mutex<(Ledger, TokenTable)>>>,
    next: AtomicUsize,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, LoyaltyError> {
        let mut connections = Vec::with_capacity(SQLITE_CONNECTIONS);
        for _ in 0..SQLITE_CONNECTIONS {
            let ledger = Ledger::open(path)?;
            let tokens = TokenTable::open(path)?;
            connections.push(Mutex::new((ledger, tokens)));
        }
        Ok(SqliteStore {
            connections: Arc::new(connections),
            next: AtomicUsize::new(0),
        })
    }

    /// Runs a write on a blocking thread with the writer connection. Writes take turns here, in
    /// the process, instead of in SQLite's busy handler (which sleeps and retries).
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Ledger, &TokenTable) -> Result<T, LoyaltyError> + Send + 'static,
    ) -> Result<T, LoyaltyError> {
        self.on(0, work).await
    }

    /// Runs a read on one of the reader connections (WAL: readers never wait for the writer).
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Ledger, &TokenTable) -> Result<T, LoyaltyError> + Send + 'static,
    ) -> Result<T, LoyaltyError> {
        let index = 1 + self.next.fetch_add(1, Ordering::Relaxed) % (SQLITE_CONNECTIONS - 1);
        self.on(index, work).await
    }

    async fn on<T: Send + 'static>(
        &self,
        index: usize,
        work: impl FnOnce(&mut Ledger, &TokenTable) -> Result<T, LoyaltyError> + Send + 'static,
    ) -> Result<T, LoyaltyError> {
        let connections = Arc::clone(&self.connections);
        tokio::task::spawn_blocking(move || {
            let mut guard = connections[index]
                .lock()
                .map_err(|_| LoyaltyError::Storage("a ledger connection was poisoned".to_string()))?;
            let (ledger, tokens) = &mut *guard;
            work(ledger, tokens)
        })
        .await
        .map_err(|e| LoyaltyError::Storage(format!("a ledger task failed: {e}")))?
    }
}

/// Till tokens in the ledger file, beside the ledger's own tables.
pub(crate) struct TokenTable {
    conn: Connection,
}

impl TokenTable {
    fn open(path: &Path) -> Result<TokenTable, LoyaltyError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS till_tokens (
                 org        TEXT    NOT NULL,
                 till       TEXT    NOT NULL,
                 token_hash TEXT    NOT NULL UNIQUE,
                 created_at INTEGER NOT NULL,
                 PRIMARY KEY (org, till)
             )",
        )?;
        Ok(TokenTable { conn })
    }

    /// A till has one token: a new one replaces the old.
    fn save_token(&self, org: &str, till: &str, hash: &str, now: UnixSeconds) -> Result<(), LoyaltyError> {
        self.conn.execute(
            "INSERT INTO till_tokens (org, till, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (org, till) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at",
            params![org, till, hash, now],
        )?;
        Ok(())
    }

    fn find_token(&self, hash: &str) -> Result<Option<Caller>, LoyaltyError> {
        Ok(self
            .conn
            .query_row(
                "SELECT org, till FROM till_tokens WHERE token_hash = ?1",
                [hash],
                |row| {
                    Ok(Caller {
                        org: row.get(0)?,
                        till: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }
}
