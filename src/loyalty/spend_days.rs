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

/// PostgreSQL's payment insert with its booking, one statement: follows `WITH inserted AS (INSERT
/// INTO payments … RETURNING id, guest_id, at, amount_due, owner_payment_id)`.
pub const PG_BOOK_INSERTED_PAYMENT: &str = concat!(
    ", booked AS (INSERT INTO guest_spend_days (guest_id, day, amount)
        SELECT guest_id, ",
    crate::spend_day_sql!("at"),
    ", amount_due FROM inserted WHERE owner_payment_id IS NULL",
    upsert_tail!(),
    ") SELECT id FROM inserted"
);

/// PostgreSQL's refund insert with its booking: follows `WITH inserted AS (INSERT INTO refunds …
/// RETURNING id, payment_id, amount)`.
pub const PG_BOOK_INSERTED_REFUND: &str = concat!(
    ", booked AS (INSERT INTO guest_spend_days (guest_id, day, amount)
        SELECT q.guest_id, ",
    crate::spend_day_sql!("q.at"),
    ", -i.amount FROM inserted i JOIN payments q ON q.id = i.payment_id WHERE q.owner_payment_id IS NULL",
    upsert_tail!(),
    ") SELECT id FROM inserted"
);

/// The amount due of the guest's (`$1`) checks after `$2`, returns deducted: the checks of the
/// window's first, partial day (before `$3`, the start of day `$4`) from the payments, every
/// later day from its sum. Bind with [`window_params`].
pub const WINDOW_SPEND_SQL: &str = "SELECT CAST(
        COALESCE((SELECT SUM(p.amount_due) FROM payments p
                  WHERE p.guest_id = $1 AND p.at > $2 AND p.at < $3 AND p.owner_payment_id IS NULL), 0)
      - COALESCE((SELECT SUM(r.amount) FROM payments q JOIN refunds r ON r.payment_id = q.id
                  WHERE q.guest_id = $1 AND q.at > $2 AND q.at < $3 AND q.owner_payment_id IS NULL), 0)
      + COALESCE((SELECT SUM(d.amount) FROM guest_spend_days d WHERE d.guest_id = $1 AND d.day >= $4), 0)
    AS BIGINT)";

/// [`WINDOW_SPEND_SQL`]'s `$3` and `$4` for a window after `since`: the start of the first whole
/// day after it, and that day.
pub fn window_params(since: UnixSeconds) -> (UnixSeconds, i64) {
    let first_whole_day = day_of(since) + 1;
    (first_whole_day * SECONDS_PER_DAY, first_whole_day)
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
        assert_eq!(window_params(0), (86_400, 1));
        assert_eq!(window_params(86_399), (86_400, 1));
        assert_eq!(window_params(86_400), (172_800, 2));
        // Before 1970 too: the partial day is the one `since` falls in.
        assert_eq!(window_params(-1), (0, 0));
        assert_eq!(window_params(-86_400), (0, 0));
        assert_eq!(window_params(-86_401), (-86_400, -1));
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(1_700_000_000), 19_675);
    }
}
