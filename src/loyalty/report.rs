//! The figures of the reports, defined once: the till's shift report (`Ledger::shift_report`)
//! and the back office's report per day and per till read the same facts with the same
//! statements and add them up here, so the two can never disagree about what a check, an
//! accrual or a new guest is.
//!
//! The statements read the ledger as it is recorded (payments, refunds, gift codes, guests and
//! the audit log of enrolments) in SQL both SQLite and PostgreSQL read: `$1` the programme's
//! offset from UTC in seconds, `$2` the organisation or NULL (every organisation: the single
//! cafe's own file), `$3` from (inclusive), `$4` until (exclusive), both UTC seconds (numbered in
//! the order they first appear: SQLite binds them by position). They add up
//! in the database, per local day and per operation key's scope (its till): a month of a chain's
//! checks is a million rows, and carrying each of them out to be summed here took more than the
//! report's second. Each row they answer is a day, a key naming where it was booked, and the
//! figures the statement's [`Statement`] says. Nothing here changes a balance.
//!
//! The day is `(at + offset) / 86400` in SQL: integer division, which rounds towards zero and
//! equals [`day_of`]'s floor for every moment after 1970-01-01 12:00 UTC, which every ledger's
//! moments are. `strpos` is PostgreSQL's; the embedded ledger defines the same function on its
//! connections (`Ledger::init`).

use crate::domain::UnixSeconds;
use crate::loyalty::rows::{Rows, Val};
use crate::money::Kopecks;
use std::collections::BTreeMap;

const SECONDS_PER_DAY: i64 = 86_400;

/// How long a stretch of `report_quarters` sums: a quarter of an hour, so that a local day in
/// any real time zone (all are whole quarters from UTC) is a whole number of them.
pub const QUARTER: i64 = 900;

/// Adds a booking to its quarter's sums in `report_quarters`: the checks' and returns' figures
/// summed per organisation, quarter of an hour and operation key's scope as they are booked, in
/// the booking's own transaction (the engine's `book_checks`), so that a month of a chain's
/// checks is read as a few thousand sums, not a million rows; the invariant «report sums out of
/// step» proves them equal to the payments and refunds they sum. `$1` organisation, `$2`
/// quarter, `$3` scope, then the eight figures in [`CHECK_FIGURES`]' order.
pub const BOOK_SQL: &str = "INSERT INTO report_quarters (org, quarter, scope, checks, revenue, spent, accrued,
        returns, returned, spend_returned, accrual_taken)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (org, quarter, scope) DO UPDATE SET
        checks = report_quarters.checks + excluded.checks,
        revenue = report_quarters.revenue + excluded.revenue,
        spent = report_quarters.spent + excluded.spent,
        accrued = report_quarters.accrued + excluded.accrued,
        returns = report_quarters.returns + excluded.returns,
        returned = report_quarters.returned + excluded.returned,
        spend_returned = report_quarters.spend_returned + excluded.spend_returned,
        accrual_taken = report_quarters.accrual_taken + excluded.accrual_taken";

/// What each payment and refund adds to the sums, per organisation, quarter and scope, read from
/// the tables themselves: the rebuild of `report_quarters` (schema 17 fills it from the ledger
/// with this) and the invariant that proves the sums. A check paid with several cards is one
/// check, its owner's payment: the other accounts' shares add only their spend; a return of it is
/// one return, and the shares it gave back (their refunds' keys are the return's, `/guest-` and
/// the guest) add only the spend they returned.
#[doc(hidden)]
#[macro_export]
macro_rules! check_contributions_sql {
    () => {
        "SELECT g.org AS org, CAST(p.at / 900 AS BIGINT) AS quarter,
            CASE WHEN strpos(p.op_id, ':') > 0 THEN substr(p.op_id, 1, strpos(p.op_id, ':'))
                 WHEN p.op_id = '' THEN '' ELSE 'till' END AS scope,
            CASE WHEN p.owner_payment_id IS NULL THEN 1 ELSE 0 END AS checks,
            CASE WHEN p.owner_payment_id IS NULL THEN p.amount_due ELSE 0 END AS revenue,
            p.spent AS spent,
            CASE WHEN p.owner_payment_id IS NULL THEN p.accrued ELSE 0 END AS accrued,
            0 AS returns, 0 AS returned, 0 AS spend_returned, 0 AS accrual_taken
        FROM payments p JOIN guests g ON g.id = p.guest_id
        UNION ALL
        SELECT g.org, CAST(r.at / 900 AS BIGINT),
            CASE WHEN strpos(r.op_id, ':') > 0 THEN substr(r.op_id, 1, strpos(r.op_id, ':'))
                 WHEN r.op_id = '' THEN '' ELSE 'till' END,
            0, 0, 0, 0,
            CASE WHEN p.owner_payment_id IS NULL THEN 1 ELSE 0 END,
            CASE WHEN p.owner_payment_id IS NULL THEN r.amount ELSE 0 END,
            r.spend_returned,
            CASE WHEN p.owner_payment_id IS NULL THEN r.accrual_taken ELSE 0 END
        FROM refunds r JOIN payments p ON p.id = r.payment_id JOIN guests g ON g.id = p.guest_id"
    };
}

/// The sums `report_quarters` should hold, from the payments and refunds.
#[doc(hidden)]
#[macro_export]
macro_rules! check_sums_sql {
    () => {
        concat!(
            "SELECT org, quarter, scope, SUM(checks) AS checks, SUM(revenue) AS revenue, SUM(spent) AS spent,
                SUM(accrued) AS accrued, SUM(returns) AS returns, SUM(returned) AS returned,
                SUM(spend_returned) AS spend_returned, SUM(accrual_taken) AS accrual_taken
            FROM (",
            $crate::check_contributions_sql!(),
            ") c GROUP BY org, quarter, scope"
        )
    };
}

/// Fills an empty `report_quarters` from the payments and refunds (schema 17, a bulk load).
#[macro_export]
macro_rules! report_rebuild_sql {
    () => {
        concat!(
            "INSERT INTO report_quarters (org, quarter, scope, checks, revenue, spent, accrued, returns, returned,
                spend_returned, accrual_taken) ",
            $crate::check_sums_sql!(),
            ";\n"
        )
    };
}

/// See [`report_rebuild_sql`].
pub const REBUILD_SQL: &str = crate::report_rebuild_sql!();

/// The sums held that differ from the ledger's, both ways: one row per quarter out of step.
pub const CHECK_SUMS_DIFFER_SQL: &str = concat!(
    "SELECT 'report ' || d.org || ' ' || d.quarter || ' ' || d.scope FROM (
        SELECT org, quarter, scope, CAST(checks AS BIGINT) a, CAST(revenue AS BIGINT) b, CAST(spent AS BIGINT) c,
            CAST(accrued AS BIGINT) d, CAST(returns AS BIGINT) e, CAST(returned AS BIGINT) f,
            CAST(spend_returned AS BIGINT) g, CAST(accrual_taken AS BIGINT) h FROM (",
    crate::check_sums_sql!(),
    ") s
        EXCEPT
        SELECT org, quarter, scope, checks, revenue, spent, accrued, returns, returned, spend_returned, accrual_taken
        FROM report_quarters) d
    UNION ALL
    SELECT 'report ' || d.org || ' ' || d.quarter || ' ' || d.scope FROM (
        SELECT org, quarter, scope, checks, revenue, spent, accrued, returns, returned, spend_returned, accrual_taken
        FROM report_quarters
        EXCEPT
        SELECT org, quarter, scope, CAST(checks AS BIGINT), CAST(revenue AS BIGINT), CAST(spent AS BIGINT),
            CAST(accrued AS BIGINT), CAST(returns AS BIGINT), CAST(returned AS BIGINT),
            CAST(spend_returned AS BIGINT), CAST(accrual_taken AS BIGINT) FROM (",
    crate::check_sums_sql!(),
    ") s) d"
);

/// Checks closed with a guest and returns, per local day and scope, from `report_quarters`: the
/// checks' count, amounts due, bonuses spent and accrued, then the returns' count, the amount
/// returned, the bonuses given back and the accrual taken back. The period is whole quarters: a
/// local day's bounds are, and the shift report's end (now) rounds up to a quarter nothing
/// later is booked in yet.
pub const CHECKS_SQL: &str = "SELECT CAST((q.quarter * 900 + CAST($1 AS BIGINT)) / 86400 AS BIGINT) AS day, q.scope,
        CAST(SUM(q.checks) AS BIGINT), CAST(SUM(q.revenue) AS BIGINT), CAST(SUM(q.spent) AS BIGINT),
        CAST(SUM(q.accrued) AS BIGINT), CAST(SUM(q.returns) AS BIGINT), CAST(SUM(q.returned) AS BIGINT),
        CAST(SUM(q.spend_returned) AS BIGINT), CAST(SUM(q.accrual_taken) AS BIGINT)
    FROM report_quarters q
    WHERE (CAST($2 AS TEXT) IS NULL OR q.org = $2) AND q.quarter >= CAST($3 AS BIGINT) / 900 AND q.quarter < (CAST($4 AS BIGINT) + 899) / 900
    GROUP BY 1, 2";

/// The operation key's scope, as the statements write it: `org/till:` on the server, `till` for
/// a single cafe's own ids (which have no `:`), empty for none ([`Source::of_op_key`] reads it).
pub fn scope_of(op_key: &str) -> &str {
    match op_key.find(':') {
        Some(at) => &op_key[..=at],
        None if op_key.is_empty() => "",
        None => "till",
    }
}

/// The quarter `at` falls in.
pub fn quarter_of(at: UnixSeconds) -> i64 {
    at.div_euclid(QUARTER)
}

/// The figures of [`CHECKS_SQL`] and [`BOOK_SQL`], in their column order.
pub const CHECK_FIGURES: usize = 8;

/// What one booking adds to its quarter, in [`CHECK_FIGURES`]' order.
pub fn check_figures(f: &Figures) -> [i64; CHECK_FIGURES] {
    [
        f.checks,
        f.revenue.0,
        f.spent.0,
        f.accrued.0,
        f.returns,
        f.returned.0,
        f.spend_returned.0,
        f.accrual_taken.0,
    ]
}

/// Gifts redeemed, per day and the scope of the check they were redeemed on (empty when the
/// check is not known): their count.
pub const GIFTS_SQL: &str = "SELECT day, scope, COUNT(*)
    FROM (SELECT CAST((c.redeemed_at + $1) / 86400 AS BIGINT) AS day,
            CASE WHEN strpos(p.op_id, ':') > 0 THEN substr(p.op_id, 1, strpos(p.op_id, ':'))
                 WHEN COALESCE(p.op_id, '') = '' THEN '' ELSE 'till' END AS scope
        FROM gift_codes c LEFT JOIN payments p ON p.id = c.payment_id
        WHERE (CAST($2 AS TEXT) IS NULL OR c.org = $2) AND c.redeemed_at >= $3 AND c.redeemed_at < $4) x
    GROUP BY day, scope";

/// New guests, per day and who enrolled them as the audit log recorded it (`till NAME` on the
/// server, `till` on a single cafe's till, a login in the back office; empty when no enrolment
/// was logged: the demo, `add_guest`, guests older than the audit log): their count. A guest's
/// further accounts are not new guests.
pub const NEW_GUESTS_SQL: &str = "SELECT day, actor, COUNT(*)
    FROM (SELECT CAST((g.created_at + $1) / 86400 AS BIGINT) AS day,
            COALESCE((SELECT a.actor FROM audit_log a WHERE a.guest_id = g.id AND a.action = 'enrol'
                      ORDER BY a.id LIMIT 1), '') AS actor
        FROM guests g
        WHERE (CAST($2 AS TEXT) IS NULL OR g.org = $2) AND g.created_at >= $3 AND g.created_at < $4
            AND g.account_of IS NULL) x
    GROUP BY day, actor";

/// What a statement's rows are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statement {
    Checks,
    Gifts,
    NewGuests,
}

/// The three statements, in the order the readers run them.
pub const STATEMENTS: [(Statement, &str); 3] = [
    (Statement::Checks, CHECKS_SQL),
    (Statement::Gifts, GIFTS_SQL),
    (Statement::NewGuests, NEW_GUESTS_SQL),
];

/// Where a figure was booked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A till of the server, by its name.
    Till(String),
    /// The single cafe's own till (its operation ids carry no till name).
    ThisTill,
    /// Enrolled in the back office.
    BackOffice,
    /// Not recorded (guests added before the audit log, or by the demo or a script).
    Unknown,
}

impl Source {
    /// The till of a stored operation key: `org/till:op` on the server; a single cafe's till
    /// stores its own ids as they are. The statements answer the key's scope (`org/till:`, or
    /// `till` for a key without one), which this reads the same way.
    pub fn of_op_key(op_key: &str) -> Source {
        match op_key.split_once(':').and_then(|(scope, _)| scope.split_once('/')) {
            Some((_, till)) if !till.is_empty() => Source::Till(till.to_string()),
            _ if op_key.is_empty() => Source::Unknown,
            _ => Source::ThisTill,
        }
    }

    /// Who enrolled a guest, from the audit log's actor (see [`NEW_GUESTS_SQL`]).
    pub fn of_enrolment(actor: &str) -> Source {
        match actor {
            "" => Source::Unknown,
            "till" => Source::ThisTill,
            _ => match actor.strip_prefix("till ") {
                Some(till) => Source::Till(till.to_string()),
                None => Source::BackOffice,
            },
        }
    }
}

/// What a statement booked on a day at a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booked {
    pub day: Day,
    pub source: Source,
    pub figures: Figures,
}

impl Booked {
    /// One row of `statement`: its day, its key (a scope, or an enrolment's actor) and its
    /// numbers in the statement's column order. Missing numbers read as zero.
    pub fn of_row(statement: Statement, day: Day, key: &str, numbers: &[i64]) -> Booked {
        let n = |i: usize| numbers.get(i).copied().unwrap_or(0);
        let mut figures = Figures::default();
        let source = match statement {
            Statement::Checks => {
                figures.checks = n(0);
                figures.revenue = Kopecks(n(1));
                figures.spent = Kopecks(n(2));
                figures.accrued = Kopecks(n(3));
                figures.returns = n(4);
                figures.returned = Kopecks(n(5));
                figures.spend_returned = Kopecks(n(6));
                figures.accrual_taken = Kopecks(n(7));
                Source::of_op_key(key)
            }
            Statement::Gifts => {
                figures.gifts_redeemed = n(0);
                Source::of_op_key(key)
            }
            Statement::NewGuests => {
                figures.new_guests = n(0);
                Source::of_enrolment(key)
            }
        };
        Booked { day, source, figures }
    }
}

/// What the four statements booked for a period.
pub type Facts = Vec<Booked>;

/// The figures of a day and till, of a day, or of a whole period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Checks closed with a guest attached.
    pub checks: i64,
    /// Their amounts due (after the group discount, the part paid with bonuses included).
    pub revenue: Kopecks,
    /// Bonuses spent on those checks (as booked at payment; a return gives some back, see
    /// `spend_returned`).
    pub spent: Kopecks,
    /// Bonuses accrued for those checks (a return takes some back, see `accrual_taken`).
    pub accrued: Kopecks,
    pub gifts_redeemed: i64,
    pub returns: i64,
    pub returned: Kopecks,
    pub spend_returned: Kopecks,
    pub accrual_taken: Kopecks,
    pub new_guests: i64,
}

impl Figures {
    pub fn add(&mut self, other: &Figures) {
        self.checks += other.checks;
        self.revenue = self.revenue + other.revenue;
        self.spent = self.spent + other.spent;
        self.accrued = self.accrued + other.accrued;
        self.gifts_redeemed += other.gifts_redeemed;
        self.returns += other.returns;
        self.returned = self.returned + other.returned;
        self.spend_returned = self.spend_returned + other.spend_returned;
        self.accrual_taken = self.accrual_taken + other.accrual_taken;
        self.new_guests += other.new_guests;
    }
}

/// A local day: days since 1970-01-01 in the programme's time zone.
pub type Day = i64;

/// The local day `at` falls on, `utc_offset_minutes` east of UTC.
pub fn day_of(at: UnixSeconds, utc_offset_minutes: i64) -> Day {
    (at + utc_offset_minutes * 60).div_euclid(SECONDS_PER_DAY)
}

/// When a local day starts, in UTC seconds.
pub fn day_start(day: Day, utc_offset_minutes: i64) -> UnixSeconds {
    day * SECONDS_PER_DAY - utc_offset_minutes * 60
}

/// The figures per local day and source, in day then source order. Every fact counts once, in
/// the day and at the till where it was booked.
pub fn per_day_and_source(facts: &[Booked]) -> BTreeMap<(Day, Source), Figures> {
    let mut rows: BTreeMap<(Day, Source), Figures> = BTreeMap::new();
    for booked in facts {
        rows.entry((booked.day, booked.source.clone()))
            .or_default()
            .add(&booked.figures);
    }
    rows
}

/// The figures per local day (every source together), for the chart.
pub fn per_day(rows: &BTreeMap<(Day, Source), Figures>) -> BTreeMap<Day, Figures> {
    let mut days: BTreeMap<Day, Figures> = BTreeMap::new();
    for ((day, _), figures) in rows {
        days.entry(*day).or_default().add(figures);
    }
    days
}

/// The whole period's figures.
pub fn total(facts: &[Booked]) -> Figures {
    let mut sum = Figures::default();
    for booked in facts {
        sum.add(&booked.figures);
    }
    sum
}

/// The statements' parameters, in their order: the programme's offset in seconds, the
/// organisation (`None`: every one, the single cafe's own file), from and until.
pub fn params(org: Option<&str>, since: UnixSeconds, until: UnixSeconds, utc_offset_minutes: i64) -> Vec<Val> {
    vec![
        Val::Int(utc_offset_minutes * 60),
        org.map_or(Val::Null, Val::from),
        Val::Int(since),
        Val::Int(until),
    ]
}

/// What one statement's rows booked, whichever database answered them.
pub fn booked(statement: Statement, rows: &Rows) -> impl Iterator<Item = Booked> + '_ {
    rows.iter().map(move |row| {
        let numbers: Vec<i64> = row.iter().skip(2).map(Val::int).collect();
        Booked::of_row(statement, row[0].int(), &row[1].text(), &numbers)
    })
}

/// The longest period a report covers: a year and a day, so that a year's report fits and a
/// typo («2062») does not read the whole ledger.
pub const MAX_DAYS: i64 = 367;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_come_from_the_operation_key_and_the_enrolment() {
        assert_eq!(Source::of_op_key("cafe/till-1:p1"), Source::Till("till-1".into()));
        assert_eq!(Source::of_op_key("till-1-1700000000-7"), Source::ThisTill);
        assert_eq!(Source::of_op_key(""), Source::Unknown);
        assert_eq!(Source::of_enrolment("till till-2"), Source::Till("till-2".into()));
        assert_eq!(Source::of_enrolment("till"), Source::ThisTill);
        assert_eq!(Source::of_enrolment("anna"), Source::BackOffice);
        assert_eq!(Source::of_enrolment(""), Source::Unknown);
    }

    #[test]
    fn local_days_follow_the_programmes_zone() {
        // 2025-03-10 21:30 UTC is the 11th in Moscow (UTC+3) and the 10th in UTC.
        let at = 1_741_642_200;
        assert_eq!(day_of(at, 0) + 1, day_of(at, 180));
        assert_eq!(day_start(day_of(at, 180), 180), 1_741_640_400);
        assert_eq!(day_of(-1, 0), -1, "before 1970 rounds down, not towards zero");
    }

    #[test]
    fn scopes_are_cut_as_the_statements_cut_them() {
        assert_eq!(scope_of("cafe/till-1:p1/guest-7"), "cafe/till-1:");
        assert_eq!(scope_of("till-1-1700000000-7"), "till");
        assert_eq!(scope_of(""), "");
        assert_eq!(quarter_of(899), 0);
        assert_eq!(quarter_of(900), 1);
    }

    #[test]
    fn scopes_name_the_till_like_whole_keys() {
        // What the statements answer for `cafe/till-1:p1`, `till-1-1700000000-7` and ''.
        assert_eq!(Source::of_op_key("cafe/till-1:"), Source::of_op_key("cafe/till-1:p1"));
        assert_eq!(Source::of_op_key("till"), Source::of_op_key("till-1-1700000000-7"));
        assert_eq!(Source::of_op_key(""), Source::Unknown);
    }

    #[test]
    fn rows_add_up_per_day_and_till() {
        let d0: Day = 20_157; // 2025-03-10
        let facts = vec![
            Booked::of_row(Statement::Checks, d0, "cafe/till-1:", &[1, 100_000, 30_000, 3_500]),
            Booked::of_row(Statement::Checks, d0, "cafe/till-2:", &[1, 50_000, 0, 2_500]),
            Booked::of_row(Statement::Checks, d0 + 1, "cafe/till-1:", &[1, 20_000, 1_000, 950]),
            Booked::of_row(
                Statement::Checks,
                d0 + 1,
                "cafe/till-2:",
                &[0, 0, 0, 0, 1, 50_000, 0, 2_500],
            ),
            Booked::of_row(Statement::Gifts, d0, "cafe/till-1:", &[1]),
            Booked::of_row(Statement::NewGuests, d0, "till till-2", &[1]),
            Booked::of_row(Statement::NewGuests, d0, "anna", &[1]),
        ];
        let rows = per_day_and_source(&facts);
        let till1 = rows[&(d0, Source::Till("till-1".into()))];
        assert_eq!(
            (till1.checks, till1.spent, till1.accrued, till1.gifts_redeemed),
            (1, Kopecks(30_000), Kopecks(3_500), 1)
        );
        let till2 = rows[&(d0, Source::Till("till-2".into()))];
        assert_eq!((till2.checks, till2.new_guests), (1, 1));
        assert_eq!(rows[&(d0, Source::BackOffice)].new_guests, 1);
        let next = rows[&(d0 + 1, Source::Till("till-2".into()))];
        assert_eq!((next.checks, next.returns, next.accrual_taken), (0, 1, Kopecks(2_500)));
        let days = per_day(&rows);
        assert_eq!(days[&d0].accrued, Kopecks(6_000));
        assert_eq!(days[&(d0 + 1)].accrued, Kopecks(950));
        let sum = total(&facts);
        assert_eq!(
            (sum.checks, sum.revenue, sum.new_guests, sum.returned),
            (3, Kopecks(170_000), 2, Kopecks(50_000))
        );
    }
}
