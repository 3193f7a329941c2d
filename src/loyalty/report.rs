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
use crate::money::Kopecks;
use std::collections::BTreeMap;

const SECONDS_PER_DAY: i64 = 86_400;

/// Checks closed with a guest, per day and scope: their count, amounts due, the bonuses spent
/// and accrued. A check paid with several cards is one check, its owner's payment: the other
/// accounts' shares add their bonuses to it.
pub const PAYMENTS_SQL: &str = "SELECT day, scope, COUNT(*), CAST(SUM(amount_due) AS BIGINT),
        CAST(SUM(spent) AS BIGINT), CAST(SUM(accrued) AS BIGINT)
    FROM (SELECT CAST((p.at + $1) / 86400 AS BIGINT) AS day,
            CASE WHEN strpos(p.op_id, ':') > 0 THEN substr(p.op_id, 1, strpos(p.op_id, ':'))
                 WHEN p.op_id = '' THEN '' ELSE 'till' END AS scope,
            p.amount_due, p.spent + COALESCE(sh.spent, 0) AS spent, p.accrued
        FROM payments p JOIN guests g ON g.id = p.guest_id
        LEFT JOIN (SELECT owner_payment_id, SUM(spent) AS spent FROM payments
                   WHERE owner_payment_id IS NOT NULL GROUP BY owner_payment_id) sh
            ON sh.owner_payment_id = p.id
        WHERE (CAST($2 AS TEXT) IS NULL OR g.org = $2) AND p.at >= $3 AND p.at < $4
            AND p.owner_payment_id IS NULL) x
    GROUP BY day, scope";

/// Returns, per day and scope (the till that took them back): their count, the amount returned,
/// the bonuses given back to the guests and the accrual taken back.
/// A return of a check paid with several cards is one return: the shares it gave back to the
/// other accounts (their refunds' keys are the return's, `/guest-` and the guest) are added to it.
pub const REFUNDS_SQL: &str = "SELECT day, scope, COUNT(*), CAST(SUM(amount) AS BIGINT),
        CAST(SUM(spend_returned) AS BIGINT), CAST(SUM(accrual_taken) AS BIGINT)
    FROM (SELECT CAST((r.at + $1) / 86400 AS BIGINT) AS day,
            CASE WHEN strpos(r.op_id, ':') > 0 THEN substr(r.op_id, 1, strpos(r.op_id, ':'))
                 WHEN r.op_id = '' THEN '' ELSE 'till' END AS scope,
            r.amount,
            r.spend_returned + COALESCE((SELECT SUM(x.spend_returned) FROM refunds x
                JOIN payments s ON s.id = x.payment_id
                WHERE s.owner_payment_id = p.id AND substr(x.op_id, 1, length(r.op_id) + 7) = r.op_id || '/guest-'), 0)
                AS spend_returned,
            r.accrual_taken
        FROM refunds r JOIN payments p ON p.id = r.payment_id JOIN guests g ON g.id = p.guest_id
        WHERE (CAST($2 AS TEXT) IS NULL OR g.org = $2) AND r.at >= $3 AND r.at < $4
            AND p.owner_payment_id IS NULL) x
    GROUP BY day, scope";

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
/// was logged: the demo, `add_guest`, guests older than the audit log): their count.
pub const NEW_GUESTS_SQL: &str = "SELECT day, actor, COUNT(*)
    FROM (SELECT CAST((g.created_at + $1) / 86400 AS BIGINT) AS day,
            COALESCE((SELECT a.actor FROM audit_log a WHERE a.guest_id = g.id AND a.action = 'enrol'
                      ORDER BY a.id LIMIT 1), '') AS actor
        FROM guests g
        WHERE (CAST($2 AS TEXT) IS NULL OR g.org = $2) AND g.created_at >= $3 AND g.created_at < $4) x
    GROUP BY day, actor";

/// What a statement's rows are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statement {
    Payments,
    Refunds,
    Gifts,
    NewGuests,
}

/// The four statements, in the order the readers run them.
pub const STATEMENTS: [(Statement, &str); 4] = [
    (Statement::Payments, PAYMENTS_SQL),
    (Statement::Refunds, REFUNDS_SQL),
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
            Statement::Payments => {
                figures.checks = n(0);
                figures.revenue = Kopecks(n(1));
                figures.spent = Kopecks(n(2));
                figures.accrued = Kopecks(n(3));
                Source::of_op_key(key)
            }
            Statement::Refunds => {
                figures.returns = n(0);
                figures.returned = Kopecks(n(1));
                figures.spend_returned = Kopecks(n(2));
                figures.accrual_taken = Kopecks(n(3));
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

/// The offset the statements take as `$1`: the programme's, in seconds.
pub fn offset_seconds(utc_offset_minutes: i64) -> i64 {
    utc_offset_minutes * 60
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
            Booked::of_row(Statement::Payments, d0, "cafe/till-1:", &[1, 100_000, 30_000, 3_500]),
            Booked::of_row(Statement::Payments, d0, "cafe/till-2:", &[1, 50_000, 0, 2_500]),
            Booked::of_row(Statement::Payments, d0 + 1, "cafe/till-1:", &[1, 20_000, 1_000, 950]),
            Booked::of_row(Statement::Refunds, d0 + 1, "cafe/till-2:", &[1, 50_000, 0, 2_500]),
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
