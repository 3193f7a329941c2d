//! The back office's reads and its accounts, in SQL that SQLite and PostgreSQL both read (`$1`,
//! `$2`… numbered in the order they first appear, which SQLite binds by position). Every rule
//! stays in the engine: these are lists and pages, and the `users` table.

use crate::domain::{GuestId, LoyaltyError};
use crate::server::store::Store;

pub use crate::loyalty::rows::{Rows, Val};

/// Runs one read on either store.
pub async fn query(store: &Store, sql: &'static str, params: Vec<Val>) -> Result<Rows, LoyaltyError> {
    store.query(sql, params, false).await
}

/// Runs a statement that changes rows (SQLite: on the writer connection).
pub async fn execute(store: &Store, sql: &'static str, params: Vec<Val>) -> Result<Rows, LoyaltyError> {
    store.query(sql, params, true).await
}

pub(crate) use crate::ledger::sqlite_query;

pub(crate) async fn pg_query(client: &tokio_postgres::Client, sql: &str, params: &[Val]) -> Result<Rows, LoyaltyError> {
    use tokio_postgres::types::{ToSql, Type};
    let storage = |e: tokio_postgres::Error| LoyaltyError::Storage(e.to_string());
    let stmt = client.prepare(sql).await.map_err(storage)?;
    // Parameters take the type PostgreSQL inferred for their place.
    let mut owned: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(params.len());
    for (param, ty) in params.iter().zip(stmt.params()) {
        owned.push(match (param, ty) {
            (Val::Int(v), &Type::INT4) => Box::new(i32::try_from(*v).unwrap_or(i32::MAX)),
            (Val::Int(v), &Type::BOOL) => Box::new(*v != 0),
            (Val::Int(v), &Type::TEXT | &Type::VARCHAR) => Box::new(v.to_string()),
            (Val::Int(v), _) => Box::new(*v),
            (Val::Text(v), _) => Box::new(v.clone()),
            (Val::Null, &Type::INT8) => Box::new(None::<i64>),
            (Val::Null, _) => Box::new(None::<String>),
        });
    }
    let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
    let rows = client.query(&stmt, &refs).await.map_err(storage)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut values = Vec::with_capacity(row.len());
        for (i, column) in row.columns().iter().enumerate() {
            let value = match *column.type_() {
                Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Val::Int)),
                Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(|v| Val::Int(v.into()))),
                Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map(|v| Val::Int(v.into()))),
                Type::BOOL => row.try_get::<_, Option<bool>>(i).map(|v| v.map(|v| Val::Int(v.into()))),
                _ => row.try_get::<_, Option<String>>(i).map(|v| v.map(Val::Text)),
            }
            .map_err(|e| LoyaltyError::Storage(e.to_string()))?;
            values.push(value.unwrap_or(Val::Null));
        }
        out.push(values);
    }
    Ok(out)
}

// ----- Accounts -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub org: String,
    pub login: String,
    pub password_hash: String,
    pub role: Role,
}

pub async fn find_user(store: &Store, login: &str) -> Result<Option<User>, LoyaltyError> {
    let rows = query(
        store,
        "SELECT id, org, login, password_hash, role FROM users WHERE login = $1",
        vec![login.into()],
    )
    .await?;
    Ok(rows.into_iter().next().and_then(|r| {
        Some(User {
            id: r[0].int(),
            org: r[1].text(),
            login: r[2].text(),
            password_hash: r[3].text(),
            role: Role::parse(&r[4].text())?,
        })
    }))
}

/// Creates an account, or sets a new password (and role, organisation) on an existing login.
pub async fn save_user(
    store: &Store,
    org: &str,
    login: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> Result<(), LoyaltyError> {
    save_user_logged(store, org, login, password_hash, role, now, None).await
}

const SAVE_USER: &str = "INSERT INTO users (org, login, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (login) DO UPDATE SET org = excluded.org, password_hash = excluded.password_hash,
                                       role = excluded.role";

/// [`save_user`], with its audit row (if any) in the same transaction.
pub async fn save_user_logged(
    store: &Store,
    org: &str,
    login: &str,
    password_hash: &str,
    role: Role,
    now: i64,
    audit: Option<&AuditEntry>,
) -> Result<(), LoyaltyError> {
    let mut statements = vec![(
        SAVE_USER,
        vec![
            org.into(),
            login.into(),
            password_hash.into(),
            role.as_str().into(),
            now.into(),
        ],
    )];
    if let Some(entry) = audit {
        statements.push((AUDIT_INSERT, audit_params(org, entry, None)));
    }
    store.write_all(statements, false).await.map(drop)
}

// ----- Guests -----

#[derive(Clone, Debug)]
pub struct GuestRow {
    pub id: GuestId,
    pub name: String,
    pub phone: Option<String>,
    pub balance: i64,
    pub group: String,
    /// The name of a guest's further bonus account (the row is that account); `None` for the
    /// guest's main account.
    pub account: Option<String>,
}

fn guest_rows(rows: Rows) -> Vec<GuestRow> {
    rows.into_iter()
        .map(|r| GuestRow {
            id: r[0].int(),
            name: r[1].text(),
            phone: r[2].opt_text(),
            balance: r[3].int(),
            group: r[4].text(),
            account: r[5].opt_text(),
        })
        .collect()
}

/// Where a page of the guests list starts: at the first guest, or just after or before a guest
/// (by name, then id). A guest rather than a row number, so a page deep in a million guests is
/// read from the index where it starts, not counted up to (OFFSET).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor {
    First,
    After(GuestId),
    Before(GuestId),
}

/// One page of the organisation's guests (at most `limit`, in name order): by identifier value
/// (a phone or a card, exact) when `code` is given and someone has it, else by name prefix, else
/// everyone by name, from `cursor`. Every branch reads an index in its order
/// (guests_by_org_name, identifiers_by_value).
pub async fn search_guests(
    store: &Store,
    org: &str,
    code: Option<&str>,
    name_prefix: &str,
    cursor: Cursor,
    limit: i64,
) -> Result<Vec<GuestRow>, LoyaltyError> {
    if let Some(code) = code.filter(|_| cursor == Cursor::First) {
        let rows = query(
            store,
            // CROSS JOIN: SQLite then starts from the identifier (by value), not from every guest of
            // the organisation; PostgreSQL plans it like any join.
            "SELECT DISTINCT g.id, g.name, g.phone, g.balance, gg.name, g.account_name
             FROM identifiers i CROSS JOIN guests g CROSS JOIN guest_groups gg
             WHERE i.value = $1 AND i.org = $2 AND g.id = i.guest_id AND g.org = $2 AND gg.id = g.group_id
             ORDER BY g.id LIMIT $3",
            vec![code.into(), org.into(), limit.into()],
        )
        .await?;
        if !rows.is_empty() || name_prefix.is_empty() {
            return Ok(guest_rows(rows));
        }
    }
    // The guest the page starts after (or before): its name, within the organisation.
    let (mark_name, mark_id, forward) = match cursor {
        Cursor::First => (None, 0, true),
        Cursor::After(id) | Cursor::Before(id) => {
            let rows = query(
                store,
                "SELECT name FROM guests WHERE id = $1 AND org = $2",
                vec![id.into(), org.into()],
            )
            .await?;
            let Some(row) = rows.first() else {
                return Ok(Vec::new());
            };
            (Some(row[0].text()), id, matches!(cursor, Cursor::After(_)))
        }
    };
    // A range rather than LIKE: both databases answer it from (org, name). The statements differ
    // (rather than one with optional conditions) so each one's index range is plain to the planner.
    macro_rules! page_sql {
        ($range:literal, $mark:literal, $order:literal) => {
            concat!(
                "SELECT g.id, g.name, g.phone, g.balance, gg.name, g.account_name
                 FROM guests g JOIN guest_groups gg ON gg.id = g.group_id
                 WHERE g.org = $1 ",
                $range,
                $mark,
                " ORDER BY ",
                $order,
                " LIMIT $"
            )
        };
    }
    let mut params: Vec<Val> = vec![org.into()];
    if !name_prefix.is_empty() {
        params.push(name_prefix.into());
        params.push(format!("{name_prefix}\u{10FFFF}").into());
    }
    if let Some(mark) = mark_name {
        params.push(mark.into());
        params.push(mark_id.into());
    }
    params.push(limit.into());
    // `name >= mark` (or `<=`) first, so the index range starts at the mark; the id orders equal
    // names. Parameters are numbered in the order they appear (SQLite binds them by position).
    let sql: &'static str = match (name_prefix.is_empty(), cursor, forward) {
        (true, Cursor::First, _) => concat!(page_sql!("", "", "g.name, g.id"), "2"),
        (false, Cursor::First, _) => concat!(page_sql!("AND g.name >= $2 AND g.name < $3", "", "g.name, g.id"), "4"),
        (true, _, true) => concat!(
            page_sql!("", "AND g.name >= $2 AND (g.name > $2 OR g.id > $3)", "g.name, g.id"),
            "4"
        ),
        (false, _, true) => concat!(
            page_sql!(
                "AND g.name >= $2 AND g.name < $3 ",
                "AND g.name >= $4 AND (g.name > $4 OR g.id > $5)",
                "g.name, g.id"
            ),
            "6"
        ),
        (true, _, false) => concat!(
            page_sql!(
                "",
                "AND g.name <= $2 AND (g.name < $2 OR g.id < $3)",
                "g.name DESC, g.id DESC"
            ),
            "4"
        ),
        (false, _, false) => concat!(
            page_sql!(
                "AND g.name >= $2 AND g.name < $3 ",
                "AND g.name <= $4 AND (g.name < $4 OR g.id < $5)",
                "g.name DESC, g.id DESC"
            ),
            "6"
        ),
    };
    let mut rows = query(store, sql, params).await?;
    if !forward {
        rows.reverse();
    }
    Ok(guest_rows(rows))
}

#[derive(Clone, Debug)]
pub struct GuestPage {
    pub guest: GuestRow,
    pub group_id: i64,
    pub created_at: i64,
    /// Bonuses held by open holds that are still in time.
    pub held: i64,
    pub holds: Vec<HoldLine>,
    pub identifiers: Vec<(String, String)>,
    pub blocked: bool,
    /// The guest's main account when this page is one of its further accounts.
    pub account_of: Option<GuestId>,
    /// Every account of the person, the main one first.
    pub accounts: Vec<GuestRow>,
}

#[derive(Clone, Debug)]
pub struct HoldLine {
    pub id: i64,
    pub amount: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// The till the hold came from (from its operation id), if known.
    pub till: String,
}

/// The guest of `org`, or None (another organisation's guest is not found, like a missing one).
pub async fn guest_page(store: &Store, org: &str, guest: GuestId, now: i64) -> Result<Option<GuestPage>, LoyaltyError> {
    let rows = query(
        store,
        // An account shows its person's phone (kept on the main account, which it finds).
        "SELECT g.id, g.name, COALESCE(g.phone, m.phone), g.balance, gg.name, g.account_name, g.group_id,
                g.created_at, g.blocked, g.account_of
         FROM guests g JOIN guest_groups gg ON gg.id = g.group_id LEFT JOIN guests m ON m.id = g.account_of
         WHERE g.org = $1 AND g.id = $2",
        vec![org.into(), guest.into()],
    )
    .await?;
    let Some(r) = rows.into_iter().next() else {
        return Ok(None);
    };
    let (group_id, created_at, blocked) = (r[6].int(), r[7].int(), r[8].int() != 0);
    let account_of = r[9].opt_int();
    let row = guest_rows(vec![r]).remove(0);
    // The person's accounts: the main one's further accounts, or, on an account, its siblings
    // and the main one, so that each page links to the others.
    let main = account_of.unwrap_or(guest);
    let accounts = guest_rows(
        query(
            store,
            "SELECT g.id, g.name, g.phone, g.balance, gg.name, g.account_name
             FROM guests g JOIN guest_groups gg ON gg.id = g.group_id
             WHERE g.org = $1 AND (g.id = $2 OR g.account_of = $2) ORDER BY g.id",
            vec![org.into(), main.into()],
        )
        .await?,
    );
    let holds: Vec<HoldLine> = query(
        store,
        "SELECT id, amount, created_at, expires_at, op_id FROM holds
         WHERE guest_id = $1 AND status = 'open' AND expires_at > $2 ORDER BY id",
        vec![guest.into(), now.into()],
    )
    .await?
    .into_iter()
    .map(|r| HoldLine {
        id: r[0].int(),
        amount: r[1].int(),
        created_at: r[2].int(),
        expires_at: r[3].int(),
        till: till_of(&r[4].text()),
    })
    .collect();
    let identifiers = query(
        store,
        "SELECT kind, value FROM identifiers WHERE org = $1 AND guest_id = $2 ORDER BY kind, value",
        vec![org.into(), guest.into()],
    )
    .await?
    .into_iter()
    .map(|r| (r[0].text(), r[1].text()))
    .collect();
    Ok(Some(GuestPage {
        held: holds.iter().map(|h| h.amount).sum(),
        guest: row,
        group_id,
        created_at,
        holds,
        identifiers,
        blocked,
        account_of,
        accounts,
    }))
}

/// `org/till:op` → `till`.
fn till_of(op_key: &str) -> String {
    op_key
        .split_once(':')
        .and_then(|(scope, _)| scope.split_once('/'))
        .map(|(_, till)| till.to_string())
        .unwrap_or_default()
}

#[derive(Clone, Debug)]
pub struct HistoryLine {
    pub at: i64,
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub note: String,
    /// For a check: its amount due and the till.
    pub check: Option<i64>,
    pub till: String,
}

/// One page of the guest's operations, newest first (the caller has checked the organisation).
pub async fn history(store: &Store, guest: GuestId, limit: i64, offset: i64) -> Result<Vec<HistoryLine>, LoyaltyError> {
    Ok(query(
        store,
        "SELECT o.at, o.kind, o.amount, o.balance_after, o.note, p.amount_due, COALESCE(p.op_id, o.op_id, '')
         FROM operations o LEFT JOIN payments p ON p.id = o.payment_id
         WHERE o.guest_id = $1 ORDER BY o.at DESC, o.id DESC LIMIT $2 OFFSET $3",
        vec![guest.into(), limit.into(), offset.into()],
    )
    .await?
    .into_iter()
    .map(|r| HistoryLine {
        at: r[0].int(),
        kind: r[1].text(),
        amount: r[2].int(),
        balance_after: r[3].int(),
        note: r[4].text(),
        check: match r[5] {
            Val::Null => None,
            ref v => Some(v.int()),
        },
        till: till_of(&r[6].text()),
    })
    .collect())
}

// ----- Groups and the programme -----

pub async fn groups(store: &Store) -> Result<Vec<crate::loyalty::rules::Group>, LoyaltyError> {
    use crate::loyalty::rules::{Group, NewGroup};
    use crate::money::Kopecks;
    Ok(query(
        store,
        "SELECT id, name, rank, discount_bp, accrual_bp, spend_threshold, never_downgrade, daily_ops_limit,
                daily_spend_limit FROM guest_groups ORDER BY rank, spend_threshold, id",
        vec![],
    )
    .await?
    .into_iter()
    .map(|r| Group {
        id: r[0].int(),
        rules: NewGroup {
            name: r[1].text(),
            rank: r[2].int(),
            discount_bp: r[3].int(),
            accrual_bp: r[4].int(),
            spend_threshold: Kopecks(r[5].int()),
            never_downgrade: r[6].int() != 0,
            daily_ops_limit: r[7].int(),
            daily_spend_limit: Kopecks(r[8].int()),
        },
    })
    .collect())
}

// ----- The audit log -----

pub use crate::loyalty::audit::{Audit, AuditEntry, audit_params};
pub use crate::loyalty::rows::AUDIT_INSERT;

/// Logs a change that has no transaction of its own to join (a page only opened, not changed):
/// a failure to log is reported, and what it records stands. Changes log with [`Audit`] instead.
pub async fn record_audit(store: &Store, org: &str, entry: &AuditEntry, op_key: Option<&str>) {
    if let Err(error) = execute(store, AUDIT_INSERT, audit_params(org, entry, op_key)).await {
        tracing::error!(%error, action = %entry.action, "a change could not be written to the audit log");
    }
}

/// Who the command line's changes are logged as: the system account that ran it.
pub fn command_line_actor() -> String {
    let user = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    match user {
        Some(user) => format!("command line ({user})"),
        None => "command line".to_string(),
    }
}

fn audit_row(row: &[Val]) -> AuditEntry {
    AuditEntry {
        at: row[0].int(),
        actor: row[1].text(),
        action: row[2].text(),
        guest_id: match row[3] {
            Val::Null => None,
            ref id => Some(id.int()),
        },
        detail: row[4].text(),
        reason: row[5].text(),
    }
}

/// The organisation's changes, newest first.
pub async fn audit(store: &Store, org: &str, limit: i64, offset: i64) -> Result<Vec<AuditEntry>, LoyaltyError> {
    let rows = query(
        store,
        "SELECT at, actor, action, guest_id, detail, reason FROM audit_log WHERE org = $1
         ORDER BY id DESC LIMIT $2 OFFSET $3",
        vec![Val::from(org), Val::Int(limit), Val::Int(offset)],
    )
    .await?;
    Ok(rows.iter().map(|r| audit_row(r)).collect())
}

/// The changes that touched one guest of the organisation, newest first.
pub async fn guest_audit(store: &Store, org: &str, guest: GuestId) -> Result<Vec<AuditEntry>, LoyaltyError> {
    let rows = query(
        store,
        "SELECT at, actor, action, guest_id, detail, reason FROM audit_log WHERE org = $1 AND guest_id = $2
         ORDER BY id DESC LIMIT 200",
        vec![Val::from(org), Val::Int(guest)],
    )
    .await?;
    Ok(rows.iter().map(|r| audit_row(r)).collect())
}
