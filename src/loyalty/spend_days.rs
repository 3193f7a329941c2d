//! What a guest spent per UTC day (`guest_spend_days`), so that the spending a group move counts
//! over the group period (a year by default) is read as at most one sum per day instead of every
//! check of the period: a payment's cost no longer grows with the guest's history (a corporate
//! account paying for a hundred lunches a day gathers tens of thousands of checks a year).
//!
//! A day's sum is the amount due of the guest's own checks paid that day (not the shares other
//! accounts paid of a check), less what was returned of them. Each store books it in the transaction that inserts the payment or the refund; schema 20
//! fills it from the ledger ([`REBUILD_SQL`]) and an invariant proves it equal to the ledger's.
//! The window's first day is partial (it starts at a second of that day): its checks are read
//! from the payments themselves.

use super::rules::SECONDS_PER_DAY;
use crate::domain::UnixSeconds;

/// The UTC day of a time column, as `i64::div_euclid` counts it ([`day_of`]), in SQL both
/// databases read.
#[doc(hidden)]
#[macro_export]
macro_rules! spend_day_sql {
    ($column:literal) => {
        concat!("((", $column, " - ((", $column, " % 86400) + 86400) % 86400) / 86400)")
    };
}

/// The UTC day `at` falls in.
pub fn day_of(at: UnixSeconds) -> i64 {
    at.div_euclid(SECONDS_PER_DAY)
}

/// Each guest's sums per day from the payments and refunds themselves: `guest_id, day, amount`.
#[doc(hidden)]
#[macro_export]
macro_rules! spend_days_from_ledger_sql {
    () => {
        concat!(
            "SELECT guest_id, day, SUM(amount) AS amount FROM (
                SELECT p.guest_id AS guest_id, ",
            $crate::spend_day_sql!("p.at"),
            " AS day, p.amount_due AS amount
                FROM payments p WHERE p.owner_payment_id IS NULL
                UNION ALL
                SELECT q.guest_id, ",
            $crate::spend_day_sql!("q.at"),
            ", -r.amount FROM refunds r JOIN payments q ON q.id = r.payment_id
                WHERE q.owner_payment_id IS NULL) x
            GROUP BY guest_id, day"
        )
    };
}

/// Fills an empty `guest_spend_days` from the ledger (schema 20).
#[doc(hidden)]
#[macro_export]
macro_rules! spend_days_rebuild_sql {
    () => {
        concat!(
            "INSERT INTO guest_spend_days (guest_id, day, amount) ",
            $crate::spend_days_from_ledger_sql!(),
            ";\n"
        )
    };
}

/// See [`spend_days_rebuild_sql`].
pub const REBUILD_SQL: &str = crate::spend_days_rebuild_sql!();

/// Adds to a day's sum, making the day's row when there is none. Follows a `SELECT` of
/// `guest_id, day, amount`.
macro_rules! upsert_tail {
    () => {
        " ON CONFLICT (guest_id, day) DO UPDATE SET amount = guest_spend_days.amount + excluded.amount"
    };
}

/// Books the payment whose operation id is `$1` in its day, unless it is another account's share
/// of a check.
pub const BOOK_PAYMENT_SQL: &str = concat!(
    "INSERT INTO guest_spend_days (guest_id, day, amount)
     SELECT p.guest_id, ",
    crate::spend_day_sql!("p.at"),
    ", p.amount_due FROM payments p WHERE p.op_id = $1 AND p.owner_payment_id IS NULL",
    upsert_tail!()
);

/// Takes the refund `$1` off its check's day, unless the check is another account's share.
pub const BOOK_REFUND_SQL: &str = concat!(
    "INSERT INTO guest_spend_days (guest_id, day, amount)
     SELECT q.guest_id, ",
    crate::spend_day_sql!("q.at"),
    ", -r.amount FROM refunds r JOIN payments q ON q.id = r.payment_id
     WHERE r.id = $1 AND q.owner_payment_id IS NULL",
    upsert_tail!()
);

/// PostgreSQL's booking of a payment a statement inserts, as a part of that statement: `source`
/// names the part that inserted it (`RETURNING guest_id, at, amount_due, owner_payment_id`).
pub fn pg_book_inserted_payment(source: &str) -> String {
    format!(
        "INSERT INTO guest_spend_days (guest_id, day, amount)
         SELECT guest_id, {}, amount_due FROM {source} WHERE owner_payment_id IS NULL{}",
        crate::spend_day_sql!("at"),
        upsert_tail!()
    )
}

/// PostgreSQL's booking of a refund a statement inserts (`source`: `RETURNING payment_id, amount`).
pub fn pg_book_inserted_refund(source: &str) -> String {
    format!(
        "INSERT INTO guest_spend_days (guest_id, day, amount)
         SELECT q.guest_id, {}, -i.amount FROM {source} i JOIN payments q ON q.id = i.payment_id
         WHERE q.owner_payment_id IS NULL{}",
        crate::spend_day_sql!("q.at"),
        upsert_tail!()
    )
}

/// The window's spending from its bounds `d` (`guest`, `since`, `first_day`: the first whole day
/// after `since`): the checks of the partial day before it from the payments, returns deducted,
/// every later day from its sum. Answers `since` and the spending.
macro_rules! window_from_bounds {
    () => {
        "SELECT d.since, CAST(
            COALESCE((SELECT SUM(p.amount_due) FROM payments p
                      WHERE p.guest_id = d.guest AND p.at > d.since AND p.at < d.first_day * 86400
                        AND p.owner_payment_id IS NULL), 0)
          - COALESCE((SELECT SUM(r.amount) FROM payments q JOIN refunds r ON r.payment_id = q.id
                      WHERE q.guest_id = d.guest AND q.at > d.since AND q.at < d.first_day * 86400
                        AND q.owner_payment_id IS NULL), 0)
          + COALESCE((SELECT SUM(s.amount) FROM guest_spend_days s
                      WHERE s.guest_id = d.guest AND s.day >= d.first_day), 0)
        AS BIGINT) FROM d"
    };
}

/// The amount due of the guest's (`$1`) checks after `$2`, returns deducted; `$3` is the first
/// whole day after `$2` ([`first_whole_day`]). Answers `$2` and the spending.
pub const WINDOW_SPEND_SQL: &str = concat!(
    "WITH d AS (SELECT CAST($1 AS BIGINT) AS guest, CAST($2 AS BIGINT) AS since, CAST($3 AS BIGINT) AS first_day) ",
    window_from_bounds!()
);

/// [`WINDOW_SPEND_SQL`] for the guest `$1`'s group period at `$2` (now), read from the guest's
/// programme: the window a payment at `$2` counts ([`rules::group_window_start`]), answered with
/// its start.
///
/// [`rules::group_window_start`]: super::rules::group_window_start
pub const WINDOW_SPEND_AT_SQL: &str = concat!(
    "WITH b AS (SELECT g.id AS guest, CAST($2 AS BIGINT) - p.group_period_days * 86400 AS since
                FROM guests g JOIN programs p ON p.org = g.org WHERE g.id = $1),
          d AS (SELECT guest, since, ",
    crate::spend_day_sql!("since"),
    " + 1 AS first_day FROM b) ",
    window_from_bounds!()
);

/// [`WINDOW_SPEND_SQL`]'s `$3` for a window after `since`: the first whole day after it.
pub fn first_whole_day(since: UnixSeconds) -> i64 {
    day_of(since) + 1
}

/// The guests' day sums that differ from the ledger's, both ways: one row per day out of step.
pub const DIFFER_SQL: &str = concat!(
    "SELECT 'guest ' || d.guest_id || ' day ' || d.day FROM (
        SELECT guest_id, day, CAST(amount AS BIGINT) AS amount FROM (",
    crate::spend_days_from_ledger_sql!(),
    ") s
        EXCEPT
        SELECT guest_id, day, amount FROM guest_spend_days) d
    UNION ALL
    SELECT 'guest ' || d.guest_id || ' day ' || d.day FROM (
        SELECT guest_id, day, amount FROM guest_spend_days
        EXCEPT
        SELECT guest_id, day, CAST(amount AS BIGINT) FROM (",
    crate::spend_days_from_ledger_sql!(),
    ") s) d"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_starts_its_whole_days_after_the_partial_one() {
        assert_eq!(first_whole_day(0), 1);
        assert_eq!(first_whole_day(86_399), 1);
        assert_eq!(first_whole_day(86_400), 2);
        // Before 1970 too: the partial day is the one `since` falls in.
        assert_eq!(first_whole_day(-1), 0);
        assert_eq!(first_whole_day(-86_400), 0);
        assert_eq!(first_whole_day(-86_401), -1);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(1_700_000_000), 19_675);
    }
}
