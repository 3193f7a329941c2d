//! Schema versions, one list for both databases. Each version is one step in SQLite's dialect
//! and one in PostgreSQL's; a store applies the steps after the version its database records, in
//! order, in one transaction, and records the new version (SQLite in `PRAGMA user_version`,
//! PostgreSQL in `schema_version`). A database newer than this build is refused.
//!
//! PostgreSQL's first step creates version 3's shape at once: the server came after the
//! embedded ledger's versions 2 and 3, so its steps 2 and 3 are empty.

/// The SQL dialect of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub struct Migration {
    pub version: i64,
    pub what: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl Migration {
    pub fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

pub const MIGRATIONS: [Migration; 21] = [
    Migration {
        version: 1,
        what: "guests, groups, identifiers, holds, payments, gifts, stamps, promotions",
        sqlite: include_str!("../ledger/schema.sql"),
        postgres: include_str!("../server/pg_schema.sql"),
    },
    Migration {
        version: 2,
        what: "organisations and refunds",
        sqlite: include_str!("../ledger/schema_v2.sql"),
        postgres: "",
    },
    Migration {
        version: 3,
        what: "payments taken offline",
        sqlite: include_str!("../ledger/schema_v3.sql"),
        postgres: "",
    },
    Migration {
        version: 4,
        what: "one idempotency record for every write",
        sqlite: include_str!("../ledger/schema_v4.sql"),
        postgres: include_str!("../server/pg_schema_v4.sql"),
    },
    Migration {
        version: 5,
        what: "identifiers, gift codes and the programme per organisation",
        sqlite: include_str!("../ledger/schema_v5.sql"),
        postgres: include_str!("../server/pg_schema_v5.sql"),
    },
    Migration {
        version: 6,
        what: "the accrual basis of each programme",
        sqlite: include_str!("../ledger/schema_v6.sql"),
        postgres: include_str!("../server/pg_schema_v6.sql"),
    },
    Migration {
        version: 7,
        what: "back-office accounts, blocked guests and the guest search index",
        sqlite: include_str!("../ledger/schema_v7.sql"),
        postgres: include_str!("../server/pg_schema_v7.sql"),
    },
    Migration {
        version: 8,
        what: "the idempotency record clustered on its key (SQLite; PostgreSQL's heap is unchanged)",
        sqlite: include_str!("../ledger/schema_v8.sql"),
        postgres: "",
    },
    Migration {
        version: 9,
        what: "two index pages fewer for every balance change (SQLite; PostgreSQL's are unchanged)",
        sqlite: include_str!("../ledger/schema_v9.sql"),
        postgres: "",
    },
    Migration {
        version: 10,
        what: "the welcome bonus and enrolment at the till, per programme",
        sqlite: include_str!("../ledger/schema_v10.sql"),
        postgres: include_str!("../server/pg_schema_v10.sql"),
    },
    Migration {
        version: 11,
        what: "when each till token was last used",
        sqlite: include_str!("../ledger/schema_v11.sql"),
        postgres: include_str!("../server/pg_schema_v11.sql"),
    },
    Migration {
        version: 12,
        what: "the audit log of manual changes",
        sqlite: include_str!("../ledger/schema_v12.sql"),
        postgres: include_str!("../server/pg_schema_v12.sql"),
    },
    Migration {
        version: 13,
        what: "checks paid from several accounts: each share linked to the owner's payment",
        sqlite: include_str!("../ledger/schema_v13.sql"),
        postgres: include_str!("../server/pg_schema_v13.sql"),
    },
    Migration {
        version: 14,
        what: "stamp cards, promotions (weekdays, hours) and the gift catalogue per organisation",
        sqlite: include_str!("../ledger/schema_v14.sql"),
        postgres: include_str!("../server/pg_schema_v14.sql"),
    },
    Migration {
        version: 15,
        what: "a guest's identifiers found by the guest",
        sqlite: include_str!("../ledger/schema_v15.sql"),
        postgres: include_str!("../server/pg_schema_v15.sql"),
    },
    Migration {
        version: 16,
        what: "the reports' periods found by time",
        sqlite: include_str!("../ledger/schema_v16.sql"),
        postgres: include_str!("../server/pg_schema_v16.sql"),
    },
    Migration {
        version: 17,
        what: "the checks' and returns' figures summed per quarter of an hour and till, for the reports",
        sqlite: concat!(include_str!("../ledger/schema_v17.sql"), crate::report_rebuild_sql!()),
        postgres: concat!(
            include_str!("../server/pg_schema_v17.sql"),
            crate::report_rebuild_sql!()
        ),
    },
    Migration {
        version: 18,
        what: "a check's lines kept with its payment, and the lines each return gave back",
        sqlite: include_str!("../ledger/schema_v18.sql"),
        postgres: include_str!("../server/pg_schema_v18.sql"),
    },
    Migration {
        version: 19,
        what: "a guest's further bonus accounts",
        sqlite: include_str!("../ledger/schema_v19.sql"),
        postgres: include_str!("../server/pg_schema_v19.sql"),
    },
    Migration {
        version: 20,
        what: "what each guest spent per day, for the group period's spending",
        sqlite: concat!(
            include_str!("../ledger/schema_v20.sql"),
            crate::spend_days_rebuild_sql!()
        ),
        postgres: concat!(
            include_str!("../server/pg_schema_v20.sql"),
            crate::spend_days_rebuild_sql!()
        ),
    },
    Migration {
        version: 21,
        what: "servers told of every change to the till tokens, which they keep in memory",
        sqlite: include_str!("../ledger/schema_v21.sql"),
        postgres: include_str!("../server/pg_schema_v21.sql"),
    },
];

/// The version this build brings a database to.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// The steps a database at `current` needs, or why it cannot be used.
pub fn pending(current: i64) -> Result<&'static [Migration], String> {
    match usize::try_from(current) {
        Ok(done) if done <= MIGRATIONS.len() => Ok(&MIGRATIONS[done..]),
        _ => Err(format!(
            "the database has schema version {current}, this build knows {LATEST}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_each_other() {
        for (index, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version, index as i64 + 1, "{}", step.what);
        }
        assert_eq!(pending(0).map(<[_]>::len), Ok(MIGRATIONS.len()));
        assert_eq!(pending(LATEST).map(<[_]>::len), Ok(0));
        assert!(pending(LATEST + 1).is_err());
        assert!(pending(-1).is_err());
    }
}
