//! The till's journal: every write to the loyalty server is saved here (SQLite, `synchronous=FULL`)
//! before it is sent, with the exact body, and marked with its outcome when the answer comes.
//! What has no outcome is "in doubt" and is resolved by sending the same body again: the server
//! answers a repeated operation id with its first result.

use crate::domain::{HoldId, LoyaltyError, UnixSeconds};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    seq        INTEGER PRIMARY KEY,
    op_id      TEXT    NOT NULL UNIQUE,
    kind       TEXT    NOT NULL CHECK (kind IN ('hold', 'commit', 'void', 'refund', 'shared_hold', 'shared_commit')),
    path       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    -- hold: the server's id once known; commit and void: the hold they close. The holds of a
    -- check paid from several accounts ('shared_hold') are each recorded as a 'hold' once
    -- granted, and each as a 'commit' once the check is paid ('shared_commit'), so that what
    -- closes one hold closes it the same way.
    hold_id    INTEGER,
    -- pending: sent or about to be, no answer yet; done: the server did it; failed: the server
    -- refused it; cancelled: a commit that the cashier gave up on (never done, or refunded).
    state      TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'cancelled')),
    response   TEXT,
    created_at INTEGER NOT NULL,
    settled_at INTEGER
);
CREATE INDEX IF NOT EXISTS journal_pending ON journal (state, seq);
";

/// The journal's shape version (`PRAGMA user_version`): 1 added the kinds of a check paid from
/// several accounts. A journal of 0 is rebuilt with the wider CHECK (SQLite cannot alter one).
const VERSION: i64 = 1;

const REBUILD_V1: &str = "
ALTER TABLE journal RENAME TO journal_v0;
DROP INDEX IF EXISTS journal_pending;
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Hold,
    Commit,
    Void,
    Refund,
    /// The holds of a check paid from several accounts, asked for together.
    SharedHold,
    /// A check paid from several accounts.
    SharedCommit,
}

impl OpKind {
    fn as_str(self) -> &'static str {
        match self {
            OpKind::Hold => "hold",
            OpKind::Commit => "commit",
            OpKind::Void => "void",
            OpKind::Refund => "refund",
            OpKind::SharedHold => "shared_hold",
            OpKind::SharedCommit => "shared_commit",
        }
    }

    fn parse(text: &str) -> Option<OpKind> {
        [
            OpKind::Hold,
            OpKind::Commit,
            OpKind::Void,
            OpKind::Refund,
            OpKind::SharedHold,
            OpKind::SharedCommit,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpState {
    Pending,
    Done,
    Failed,
    Cancelled,
}

impl OpState {
    fn as_str(self) -> &'static str {
        match self {
            OpState::Pending => "pending",
            OpState::Done => "done",
            OpState::Failed => "failed",
            OpState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<OpState> {
        [OpState::Pending, OpState::Done, OpState::Failed, OpState::Cancelled]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One journalled write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub op_id: String,
    pub kind: OpKind,
    pub path: String,
    pub body: String,
    pub hold_id: Option<HoldId>,
    pub state: OpState,
    pub response: Option<String>,
}

pub struct Journal {
    conn: Connection,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal, LoyaltyError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LoyaltyError::Storage(format!("cannot create the journal folder: {e}")))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        // FULL: an operation the till sent must still be known after a power cut.
        conn.pragma_update(None, "synchronous", "FULL")?;
        upgrade(&conn)?;
        Ok(Journal { conn })
    }

    /// Saves a part of a several-accounts write the server already did (a hold it granted, a
    /// hold a paid check closed): done from the start, and saved once however often the
    /// answer is read.
    pub fn record_done(
        &self,
        op_id: &str,
        kind: OpKind,
        path: &str,
        body: &str,
        hold_id: Option<HoldId>,
        now: UnixSeconds,
    ) -> Result<(), LoyaltyError> {
        self.conn.execute(
            "INSERT INTO journal (op_id, kind, path, body, hold_id, state, created_at, settled_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'done', ?6, ?6) ON CONFLICT (op_id) DO NOTHING",
            params![op_id, kind.as_str(), path, body, hold_id, now],
        )?;
        Ok(())
    }

    /// Saves an operation before it is sent.
    pub fn record(
        &self,
        op_id: &str,
        kind: OpKind,
        path: &str,
        body: &str,
        hold_id: Option<HoldId>,
        now: UnixSeconds,
    ) -> Result<(), LoyaltyError> {
        self.conn.execute(
            "INSERT INTO journal (op_id, kind, path, body, hold_id, state, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
            params![op_id, kind.as_str(), path, body, hold_id, now],
        )?;
        Ok(())
    }

    pub fn settle(
        &self,
        op_id: &str,
        state: OpState,
        response: Option<&str>,
        now: UnixSeconds,
    ) -> Result<(), LoyaltyError> {
        self.conn.execute(
            "UPDATE journal SET state = ?2, response = COALESCE(?3, response), settled_at = ?4 WHERE op_id = ?1",
            params![op_id, state.as_str(), response, now],
        )?;
        Ok(())
    }

    pub fn set_hold_id(&self, op_id: &str, hold: HoldId) -> Result<(), LoyaltyError> {
        self.conn
            .execute("UPDATE journal SET hold_id = ?2 WHERE op_id = ?1", params![op_id, hold])?;
        Ok(())
    }

    pub fn pending(&self) -> Result<Vec<Entry>, LoyaltyError> {
        self.select("WHERE state = 'pending' ORDER BY seq", params![])
    }

    pub fn all(&self) -> Result<Vec<Entry>, LoyaltyError> {
        self.select("ORDER BY seq", params![])
    }

    pub fn get(&self, op_id: &str) -> Result<Option<Entry>, LoyaltyError> {
        Ok(self.select("WHERE op_id = ?1", params![op_id])?.into_iter().next())
    }

    /// The void of `hold` recorded after `seq` that is not refused, if any.
    pub fn later_void(&self, hold: HoldId, seq: i64) -> Result<Option<Entry>, LoyaltyError> {
        Ok(self
            .select(
                "WHERE kind = 'void' AND hold_id = ?1 AND seq > ?2 AND state <> 'failed' ORDER BY seq",
                params![hold, seq],
            )?
            .into_iter()
            .next())
    }

    /// The commit of `hold` that the server did or may have done.
    pub fn commit_of(&self, hold: HoldId) -> Result<Option<Entry>, LoyaltyError> {
        Ok(self
            .select(
                "WHERE kind = 'commit' AND hold_id = ?1 AND state IN ('pending', 'done') ORDER BY seq",
                params![hold],
            )?
            .into_iter()
            .next())
    }

    /// Holds the server granted that no commit or void closed: left open by a crash.
    pub fn unclosed_holds(&self) -> Result<Vec<Entry>, LoyaltyError> {
        self.select(
            "WHERE kind = 'hold' AND state = 'done' AND hold_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM journal c WHERE c.kind IN ('commit', 'void')
                               AND c.hold_id = journal.hold_id AND c.state IN ('done', 'pending'))
             ORDER BY seq",
            params![],
        )
    }

    pub fn count_pending(&self) -> Result<i64, LoyaltyError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM journal WHERE state = 'pending'", [], |row| {
                row.get(0)
            })?)
    }

    fn select(&self, tail: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Entry>, LoyaltyError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT seq, op_id, kind, path, body, hold_id, state, response FROM journal {tail}"
        ))?;
        let rows = stmt.query_map(params, |row| {
            let kind: String = row.get(2)?;
            let state: String = row.get(6)?;
            Ok(Entry {
                seq: row.get(0)?,
                op_id: row.get(1)?,
                kind: OpKind::parse(&kind).unwrap_or(OpKind::Hold),
                path: row.get(3)?,
                body: row.get(4)?,
                hold_id: row.get(5)?,
                state: OpState::parse(&state).unwrap_or(OpState::Pending),
                response: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Bonuses spent offline since `since`, per guest, from the journalled offline payments.
    pub fn offline_spends_since(&self, since: UnixSeconds) -> Result<Vec<(i64, crate::money::Kopecks)>, LoyaltyError> {
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM journal WHERE path = ?1 AND created_at >= ?2 AND state <> 'failed'")?;
        let bodies = stmt.query_map(rusqlite::params![super::OFFLINE_PATH, since], |row| {
            row.get::<_, String>(0)
        })?;
        let mut spends = Vec::new();
        for body in bodies {
            let body: serde_json::Value = serde_json::from_str(&body?)
                .map_err(|e| LoyaltyError::Storage(format!("a journal entry is unreadable: {e}")))?;
            let guest = body["guest_id"].as_i64().unwrap_or_default();
            let spent = body["spent"].as_i64().unwrap_or_default();
            spends.push((guest, crate::money::Kopecks(spent)));
        }
        Ok(spends)
    }

    /// Whether `op_id` was ever recorded (the id generator must never repeat one).
    pub fn knows(&self, op_id: &str) -> Result<bool, LoyaltyError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM journal WHERE op_id = ?1", [op_id], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

/// Creates the journal, or brings an older one to [`VERSION`] keeping every entry, in one
/// transaction.
fn upgrade(conn: &Connection) -> Result<(), LoyaltyError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version >= VERSION {
        return Ok(());
    }
    let existing: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal')",
        [],
        |row| row.get(0),
    )?;
    let mut steps = String::from("BEGIN IMMEDIATE;");
    if existing {
        steps.push_str(REBUILD_V1);
    }
    steps.push_str(SCHEMA);
    if existing {
        steps.push_str(
            "INSERT INTO journal (seq, op_id, kind, path, body, hold_id, state, response, created_at, settled_at)
             SELECT seq, op_id, kind, path, body, hold_id, state, response, created_at, settled_at FROM journal_v0;
             DROP TABLE journal_v0;",
        );
    }
    steps.push_str(&format!("PRAGMA user_version = {VERSION}; COMMIT;"));
    if let Err(error) = conn.execute_batch(&steps) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(error.into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A journal made before the several-accounts kinds keeps its entries and takes the new kinds.
    #[test]
    fn an_older_journal_is_upgraded_with_its_entries() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("journal.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&SCHEMA.replace(", 'shared_hold', 'shared_commit'", ""))
                .unwrap();
            conn.execute(
                "INSERT INTO journal (op_id, kind, path, body, hold_id, state, created_at)
                 VALUES ('a-1', 'hold', '/api/v1/holds', '{}', 7, 'pending', 100)",
                [],
            )
            .unwrap();
            assert!(
                conn.execute(
                    "INSERT INTO journal (op_id, kind, path, body, state, created_at)
                     VALUES ('a-2', 'shared_hold', '/x', '{}', 'pending', 100)",
                    [],
                )
                .is_err(),
                "the old shape refuses the new kinds"
            );
        }
        let journal = Journal::open(&path).unwrap();
        let kept = journal.get("a-1").unwrap().unwrap();
        assert_eq!(
            (kept.kind, kept.hold_id, kept.state),
            (OpKind::Hold, Some(7), OpState::Pending)
        );
        journal
            .record("a-2", OpKind::SharedHold, "/api/v1/shared-holds", "{}", None, 200)
            .unwrap();
        assert_eq!(journal.pending().unwrap().len(), 2);
        drop(journal);
        // Opening again changes nothing.
        assert_eq!(Journal::open(&path).unwrap().all().unwrap().len(), 2);
    }
}
