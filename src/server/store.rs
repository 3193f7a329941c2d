//! The server's storage: the loyalty engine's operations on the embedded SQLite ledger or on
//! PostgreSQL, behind one [`Database`] trait.
//!
//! The rules live once, in `loyalty::rules`, and the engine (`loyalty::engine`) applies them on
//! either store; a store only reads and writes rows. One conformance suite
//! (`tests/server_conformance.rs`) runs the same requests against both.
//! Every call is scoped to the calling till's organisation: another organisation's guest, hold
//! or payment is reported as unknown, exactly like one that does not exist.

use super::pg::PgStore;
use super::token_cache::TokenCache;
use crate::backoffice::db::{AUDIT_INSERT, Audit, AuditEntry, Rows, Val, audit_params};
use crate::domain::{
    CheckFilter, CheckInfo, CheckSummary, Gift, GuestCard, GuestId, HistoryEntry, HoldId, HoldReceipt, Identification,
    IdentifierKind, LoyaltyError, PaymentReceipt, RefundReceipt, ReturnPart, ScanKind, SpendQuote, UnixSeconds,
};
use crate::ledger::{Ledger, NewGroup, ProgramSettings};
use crate::loyalty::engine::{Answer, Op};
use crate::loyalty::rules::OpKind;
use crate::money::Kopecks;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
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

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the server needs of a database: the engine's operations, each in one transaction, the
/// tills' tokens, and the invariants. SQLite ([`SqliteStore`]) and PostgreSQL
/// ([`PgStore`](super::pg::PgStore)) each implement it; nothing else differs between them.
pub trait Database: Send + Sync {
    /// Runs `op` for a caller of `org` (`None`: the server's operator, every organisation).
    fn run<'a>(&'a self, op: Op, org: Option<&'a str>, now: UnixSeconds)
    -> BoxFuture<'a, Result<Answer, LoyaltyError>>;
    /// Runs a change and writes its audit row in the same transaction.
    fn run_audited<'a>(
        &'a self,
        op: Op,
        org: Option<&'a str>,
        now: UnixSeconds,
        audit: Audit,
    ) -> BoxFuture<'a, Result<Answer, LoyaltyError>>;
    /// Runs `statements` (SQL as for [`Database::query`]) in one transaction and answers each
    /// one's rows. With `first_must_match`, a first statement that answers no row ends it with
    /// nothing kept, and `None` (a revocation of a token that is not there logs nothing).
    fn write_all(
        &self,
        statements: Vec<(&'static str, Vec<Val>)>,
        first_must_match: bool,
    ) -> BoxFuture<'_, Result<Option<Vec<Rows>>, LoyaltyError>>;
    /// Stores a till's token (its hash); a till has one, a new one replaces the old.
    fn save_token<'a>(
        &'a self,
        org: &'a str,
        till: &'a str,
        hash: &'a str,
        now: UnixSeconds,
    ) -> BoxFuture<'a, Result<(), LoyaltyError>>;
    /// The till a token's hash belongs to, if any, and when it was last seen.
    fn find_token<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<KnownToken>, LoyaltyError>>;
    /// Starts telling `cache` of every change to the tokens, on the current tokio runtime, if
    /// this database can: while it does, the cache keeps the tokens found. Without it (SQLite,
    /// whose other writers cannot tell), every request looks its token up.
    fn watch_tokens(&self, _cache: Arc<TokenCache>) {}
    /// The ledger's invariants; the error lists every violation.
    fn check_invariants(&self) -> BoxFuture<'_, Result<(), String>>;
    /// One statement of the back office's own (its lists and pages, and its accounts), in SQL
    /// both dialects read (`crate::backoffice::db`); `write` runs it on the writer connection.
    fn query<'a>(
        &'a self,
        sql: &'static str,
        params: Vec<Val>,
        write: bool,
    ) -> BoxFuture<'a, Result<Rows, LoyaltyError>>;
}

/// The server's ledger: typed calls over whichever [`Database`] `--db` named.
pub struct Store {
    db: Box<dyn Database>,
    /// The tokens found, kept while the database tells of every change ([`Store::watch_tokens`]).
    tokens: Arc<TokenCache>,
}

/// The till a token belongs to, and when the token was last used (if ever).
pub type KnownToken = (Caller, Option<UnixSeconds>);

/// A till's token as the back office lists it (never the token itself, which is not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TillToken {
    pub till: String,
    pub created_at: UnixSeconds,
    pub last_seen_at: Option<UnixSeconds>,
}

impl Store {
    pub fn new(db: impl Database + 'static) -> Store {
        Store {
            db: Box::new(db),
            tokens: Arc::new(TokenCache::new()),
        }
    }

    /// Keeps the tokens found in memory while the database tells this server of every change
    /// to them (PostgreSQL); a serving process calls it once, on its runtime. Without it, or
    /// while the database cannot tell, every request looks its token up.
    pub fn watch_tokens(&self) {
        self.db.watch_tokens(Arc::clone(&self.tokens));
    }

    /// Whether tokens are kept now (the database tells of every change): for tests.
    pub fn keeps_tokens(&self) -> bool {
        self.tokens.is_watching()
    }

    /// The organisation's till tokens, by till name.
    pub async fn tokens(&self, org: &str) -> Result<Vec<TillToken>, LoyaltyError> {
        let rows = self
            .db
            .query(
                "SELECT till, created_at, last_seen_at FROM till_tokens WHERE org = $1 ORDER BY till",
                vec![Val::from(org)],
                false,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| TillToken {
                till: row[0].text(),
                created_at: row[1].int(),
                last_seen_at: match row[2] {
                    Val::Null => None,
                    ref at => Some(at.int()),
                },
            })
            .collect())
    }

    /// Deletes the till's token, with its audit row in the same transaction: refused on its next
    /// request here, and by every other server on this database once the database has told it
    /// (PostgreSQL's notification, within a millisecond; see [`TokenCache`]). False (and nothing
    /// logged) when the organisation has no such till.
    pub async fn revoke_token(&self, org: &str, till: &str, audit: &AuditEntry) -> Result<bool, LoyaltyError> {
        let done = self
            .db
            .write_all(
                vec![
                    (
                        "DELETE FROM till_tokens WHERE org = $1 AND till = $2 RETURNING till",
                        vec![Val::from(org), Val::from(till)],
                    ),
                    (AUDIT_INSERT, audit_params(org, audit, None)),
                ],
                true,
            )
            .await?;
        self.tokens.forget_all();
        Ok(done.is_some())
    }

    /// Notes that a token was used (the API calls it when the last note is older than
    /// [`TOUCH_EVERY`](super::api) seconds, not on every request: a read per request, a write
    /// per till every half minute).
    pub async fn touch_token(&self, hash: &str, now: UnixSeconds) -> Result<(), LoyaltyError> {
        self.db
            .query(
                // SQLite numbers `$n` in the order they first appear: $1 comes first.
                "UPDATE till_tokens SET last_seen_at = $1 WHERE token_hash = $2",
                vec![Val::Int(now), Val::from(hash)],
                true,
            )
            .await?;
        self.tokens.touched(hash, now);
        Ok(())
    }

    pub async fn open(url: &DbUrl) -> Result<Store, LoyaltyError> {
        match url {
            DbUrl::Sqlite(path) => Ok(Store::new(SqliteStore::open(path)?)),
            DbUrl::Postgres(url) => Ok(Store::new(PgStore::connect(url, None, 16).await?)),
        }
    }

    pub async fn create_token(&self, org: &str, till: &str, now: UnixSeconds) -> Result<String, LoyaltyError> {
        self.create_token_logged(org, till, now, None).await
    }

    /// A new token for the till (replacing its old one, which then stops working as a revoked one
    /// does), with its audit row, if any, in the same transaction.
    pub async fn create_token_logged(
        &self,
        org: &str,
        till: &str,
        now: UnixSeconds,
        audit: Option<&AuditEntry>,
    ) -> Result<String, LoyaltyError> {
        if !valid_name(org) || !valid_name(till) {
            return Err(LoyaltyError::BadCode { max: 32 });
        }
        let token = new_token()?;
        let hash = token_hash(&token);
        match audit {
            None => self.db.save_token(org, till, &hash, now).await?,
            Some(entry) => {
                self.db
                    .write_all(
                        vec![
                            (
                                "INSERT INTO till_tokens (org, till, token_hash, created_at) VALUES ($1, $2, $3, $4)
                                 ON CONFLICT (org, till) DO UPDATE SET token_hash = excluded.token_hash,
                                                                       created_at = excluded.created_at",
                                vec![Val::from(org), Val::from(till), Val::from(hash), Val::Int(now)],
                            ),
                            (AUDIT_INSERT, audit_params(org, entry, None)),
                        ],
                        false,
                    )
                    .await?;
            }
        }
        self.tokens.forget_all();
        Ok(token)
    }

    /// The till a token belongs to, if any, and when it was last seen.
    pub async fn caller_for(&self, hash: &str) -> Result<Option<KnownToken>, LoyaltyError> {
        if let Some(found) = self.tokens.get(hash) {
            return Ok(Some(found));
        }
        // Read before the lookup: a change that arrives while it runs keeps its answer out.
        let generation = self.tokens.generation();
        let found = self.db.find_token(hash).await?;
        if let Some(found) = &found {
            self.tokens.keep(generation, hash, found.clone());
        }
        Ok(found)
    }

    pub async fn run(&self, caller: &Caller, op: Op, now: UnixSeconds) -> Result<Answer, LoyaltyError> {
        self.db.run(op, Some(&caller.org), now).await
    }

    /// A change by a caller of its organisation, with its audit row in the same transaction.
    pub async fn run_audited(
        &self,
        caller: &Caller,
        op: Op,
        now: UnixSeconds,
        audit: Audit,
    ) -> Result<Answer, LoyaltyError> {
        self.db.run_audited(op, Some(&caller.org), now, audit).await
    }

    /// See [`Database::write_all`].
    pub async fn write_all(
        &self,
        statements: Vec<(&'static str, Vec<Val>)>,
        first_must_match: bool,
    ) -> Result<Option<Vec<Rows>>, LoyaltyError> {
        self.db.write_all(statements, first_must_match).await
    }

    /// See [`Database::query`].
    pub async fn query(&self, sql: &'static str, params: Vec<Val>, write: bool) -> Result<Rows, LoyaltyError> {
        self.db.query(sql, params, write).await
    }

    /// An operation of the server's operator (tests, the command line): every organisation's
    /// guests.
    async fn run_as_operator(&self, op: Op, now: UnixSeconds) -> Result<Answer, LoyaltyError> {
        self.db.run(op, None, now).await
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
        self.run(caller, op, now).await?.into_identification()
    }

    pub async fn guest_card(
        &self,
        caller: &Caller,
        guest: GuestId,
        now: UnixSeconds,
    ) -> Result<GuestCard, LoyaltyError> {
        self.run(caller, Op::Card { guest }, now).await?.into_card()
    }

    pub async fn gifts(&self, caller: &Caller, guest: GuestId, now: UnixSeconds) -> Result<Vec<Gift>, LoyaltyError> {
        self.run(caller, Op::Gifts { guest }, now).await?.into_gifts()
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
        self.run(caller, op, now).await?.into_quote()
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
        self.run(caller, op, now).await?.into_hold()
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
        self.run(caller, op, now).await?.into_payment()
    }

    /// A check a till closed offline with bonuses; see `engine::commit_offline`.
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
        self.run(caller, op, now).await?.into_payment()
    }

    pub async fn void(&self, caller: &Caller, op_id: &str, hold: HoldId, now: UnixSeconds) -> Result<(), LoyaltyError> {
        let op = Op::Void {
            op_key: caller.op(op_id),
            hold,
        };
        self.run(caller, op, now).await?.into_voided()
    }

    pub async fn refund(
        &self,
        caller: &Caller,
        op_id: &str,
        payment_op: &str,
        part: ReturnPart,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        let op = Op::Refund {
            op_key: caller.op(op_id),
            payment_op_key: payment_op.to_string(),
            part,
        };
        self.run(caller, op, now).await?.into_refund()
    }

    /// What a return of the check would change (nothing is written).
    pub async fn refund_preview(
        &self,
        caller: &Caller,
        payment_op: &str,
        part: ReturnPart,
        now: UnixSeconds,
    ) -> Result<RefundReceipt, LoyaltyError> {
        let op = Op::RefundPreview {
            payment_op_key: payment_op.to_string(),
            part,
        };
        self.run(caller, op, now).await?.into_refund()
    }

    /// The caller till's closed checks the filter names; their operation ids as the till made
    /// them (without the organisation and till in front).
    pub async fn checks(
        &self,
        caller: &Caller,
        mut filter: CheckFilter,
        now: UnixSeconds,
    ) -> Result<Vec<CheckSummary>, LoyaltyError> {
        let prefix = caller.op("");
        filter.op_prefix = Some(prefix.clone());
        let checks = self.run(caller, Op::Checks(filter), now).await?.into_checks()?;
        Ok(checks
            .into_iter()
            .map(|mut check| {
                if let Some(own) = check.op_id.strip_prefix(&prefix) {
                    check.op_id = own.to_string();
                }
                check
            })
            .collect())
    }

    pub async fn reset_holds(&self, caller: &Caller, guest: GuestId, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        let op = Op::ResetHolds { op_key: None, guest };
        let count = self.run(caller, op, now).await?.into_count()?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    pub async fn open_holds(
        &self,
        caller: &Caller,
        guest: GuestId,
        now: UnixSeconds,
    ) -> Result<Vec<HoldReceipt>, LoyaltyError> {
        self.run(caller, Op::OpenHolds { guest: Some(guest) }, now)
            .await?
            .into_holds()
    }

    pub async fn history(
        &self,
        caller: &Caller,
        guest: GuestId,
        limit: usize,
        now: UnixSeconds,
    ) -> Result<Vec<HistoryEntry>, LoyaltyError> {
        self.run(caller, Op::History { guest, limit }, now)
            .await?
            .into_history()
    }

    /// Releases every hold whose time is up; returns how many.
    pub async fn expire_holds(&self, now: UnixSeconds) -> Result<usize, LoyaltyError> {
        let count = self.run_as_operator(Op::ExpireHolds, now).await?.into_count()?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    // ----- Back office and tests -----

    /// Sets the hold time new organisations start with (`serve --hold-ttl`); existing ones keep
    /// theirs.
    pub async fn set_hold_ttl(&self, secs: i64) -> Result<(), LoyaltyError> {
        let template = self.run_as_operator(Op::Program, 0).await?.into_program()?;
        let program = ProgramSettings {
            hold_ttl_secs: secs,
            ..template
        };
        self.run_as_operator(Op::SetTemplate(program), 0).await?.into_done()
    }

    /// Sets the check share limit and spend step of the template and every organisation.
    pub async fn set_spend_rules(&self, max_check_bp: i64, spend_step: Kopecks) -> Result<(), LoyaltyError> {
        let template = self.run_as_operator(Op::Program, 0).await?.into_program()?;
        let program = ProgramSettings {
            max_check_bp,
            spend_step,
            ..template
        };
        self.run_as_operator(Op::SetProgram(program), 0).await?.into_done()
    }

    /// Sets one organisation's programme.
    pub async fn set_org_program(&self, org: &str, program: &ProgramSettings) -> Result<(), LoyaltyError> {
        self.db
            .run(Op::SetProgram(program.clone()), Some(org), 0)
            .await?
            .into_done()
    }

    pub async fn add_group(&self, group: &NewGroup) -> Result<i64, LoyaltyError> {
        self.run_as_operator(Op::AddGroup(group.clone()), 0).await?.into_id()
    }

    pub async fn add_guest(
        &self,
        org: &str,
        name: &str,
        phone: Option<&str>,
        group_id: i64,
        now: UnixSeconds,
    ) -> Result<GuestId, LoyaltyError> {
        let op = Op::AddGuest {
            org: org.to_string(),
            name: name.to_string(),
            phone: phone.map(str::to_string),
            group_id,
        };
        self.run_as_operator(op, now).await?.into_id()
    }

    pub async fn add_identifier(&self, guest: GuestId, kind: IdentifierKind, value: &str) -> Result<(), LoyaltyError> {
        let op = Op::AddIdentifier {
            guest,
            kind,
            value: value.to_string(),
        };
        self.run_as_operator(op, 0).await?.into_done()
    }

    pub async fn add_gift_code(
        &self,
        code: &str,
        guest: GuestId,
        name: &str,
        points: Kopecks,
    ) -> Result<(), LoyaltyError> {
        let op = Op::AddGiftCode {
            guest,
            code: code.to_string(),
            name: name.to_string(),
            points,
        };
        self.run_as_operator(op, 0).await?.into_done()
    }

    /// A back-office credit, idempotent by `op_id`; returns the balance after.
    pub async fn credit(
        &self,
        op_id: &str,
        guest: GuestId,
        amount: Kopecks,
        now: UnixSeconds,
    ) -> Result<Kopecks, LoyaltyError> {
        let op = Op::Manual {
            op_key: op_id.to_string(),
            guest,
            kind: OpKind::ManualCredit,
            amount,
            note: "back office".to_string(),
        };
        self.run_as_operator(op, now).await?.into_balance()
    }

    /// The ledger's invariants; the error lists every violation.
    pub async fn check_invariants(&self) -> Result<(), String> {
        self.db.check_invariants().await
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
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Ledger, &TokenTable) -> Result<T, LoyaltyError> + Send + 'static,
    ) -> Result<T, LoyaltyError> {
        self.on(0, work).await
    }

    /// Runs a read on one of the reader connections (WAL: readers never wait for the writer).
    async fn read<T: Send + 'static>(
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

impl Database for SqliteStore {
    fn run<'a>(
        &'a self,
        op: Op,
        org: Option<&'a str>,
        now: UnixSeconds,
    ) -> BoxFuture<'a, Result<Answer, LoyaltyError>> {
        let org = org.map(str::to_string);
        Box::pin(async move {
            let reads_only = op.reads_only();
            let work = move |l: &mut Ledger, _: &TokenTable| l.run(&op, org.as_deref(), now);
            if reads_only {
                self.read(work).await
            } else {
                self.blocking(work).await
            }
        })
    }

    fn run_audited<'a>(
        &'a self,
        op: Op,
        org: Option<&'a str>,
        now: UnixSeconds,
        audit: Audit,
    ) -> BoxFuture<'a, Result<Answer, LoyaltyError>> {
        let org = org.map(str::to_string);
        Box::pin(self.blocking(move |l, _| l.run_audited(&op, org.as_deref(), now, &audit)))
    }

    fn write_all(
        &self,
        statements: Vec<(&'static str, Vec<Val>)>,
        first_must_match: bool,
    ) -> BoxFuture<'_, Result<Option<Vec<Rows>>, LoyaltyError>> {
        Box::pin(self.blocking(move |l, _| l.write_all(&statements, first_must_match)))
    }

    fn save_token<'a>(
        &'a self,
        org: &'a str,
        till: &'a str,
        hash: &'a str,
        now: UnixSeconds,
    ) -> BoxFuture<'a, Result<(), LoyaltyError>> {
        let (org, till, hash) = (org.to_string(), till.to_string(), hash.to_string());
        Box::pin(self.blocking(move |_, t| t.save_token(&org, &till, &hash, now)))
    }

    fn find_token<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<KnownToken>, LoyaltyError>> {
        let hash = hash.to_string();
        Box::pin(self.read(move |_, t| t.find_token(&hash)))
    }

    fn check_invariants(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.blocking(|l, _| Ok(l.check_invariants()))
                .await
                .map_err(|e| e.to_string())?
        })
    }

    fn query<'a>(
        &'a self,
        sql: &'static str,
        params: Vec<Val>,
        write: bool,
    ) -> BoxFuture<'a, Result<Rows, LoyaltyError>> {
        let work =
            move |l: &mut Ledger, _: &TokenTable| crate::backoffice::db::sqlite_query(l.connection(), sql, &params);
        if write {
            Box::pin(self.blocking(work))
        } else {
            Box::pin(self.read(work))
        }
    }
}

/// Till tokens in the ledger file, beside the ledger's own tables.
struct TokenTable {
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

    fn find_token(&self, hash: &str) -> Result<Option<KnownToken>, LoyaltyError> {
        Ok(self
            .conn
            .prepare_cached("SELECT org, till, last_seen_at FROM till_tokens WHERE token_hash = ?1")?
            .query_row([hash], |row| {
                Ok((
                    Caller {
                        org: row.get(0)?,
                        till: row.get(1)?,
                    },
                    row.get(2)?,
                ))
            })
            .optional()?)
    }
}
