//! The figures of the reports, defined once: the till's shift report (`Ledger::shift_report`)
//! and the back office's report per day and per till read the same facts with the same
//! statements and add them up here, so the two can never disagree about what a check, an
//! accrual or a new guest is.
//!
//! The statements read the ledger as it is recorded (payments, refunds, gift codes, guests and
//! the audit log of enrolments) in SQL both SQLite and PostgreSQL read: `$1` the organisation or
//! NULL (every organisation: the single cafe's own file), `$2` from (inclusive), `$3` until
//! (exclusive), both UTC seconds. Nothing here changes a balance.

use crate::domain::UnixSeconds;
use crate::money::Kopecks;
use std::collections::BTreeMap;

const SECONDS_PER_DAY: i64 = 86_400;

/// Checks closed with a guest: when, the operation key (its till), the amount due, the bonuses
/// spent and accrued.
/// A check paid with several cards is one check, its owner's payment: the other accounts'
/// shares add their bonuses to it.
pub const PAYMENTS_SQL: &str = "SELECT p.at, p.op_id, p.amount_due,
        p.spent + CAST(COALESCE((SELECT SUM(s.spent) FROM payments s WHERE s.owner_payment_id = p.id), 0) AS BIGINT),
        p.accrued
    FROM payments p JOIN guests g ON g.id = p.guest_id
    WHERE (CAST($1 AS TEXT) IS NULL OR g.org = $1) AND p.at >= $2 AND p.at < $3 AND p.owner_payment_id IS NULL";

/// Returns: when, the return's operation key (the till that took it back), the amount returned,
/// the bonuses given back to the guest and the accrual taken back.
/// A return of a check paid with several cards is one return: the shares it gave back to the
/// other accounts (their refunds' keys are the return's, `/guest-` and the guest) are added to it.
pub const REFUNDS_SQL: &str = "SELECT r.at, r.op_id, r.amount,
        r.spend_returned + CAST(COALESCE((SELECT SUM(x.spend_returned) FROM refunds x
                JOIN payments s ON s.id = x.payment_id
                WHERE s.owner_payment_id = p.id AND substr(x.op_id, 1, length(r.op_id) + 7) = r.op_id || '/guest-'), 0)
            AS BIGINT),
        r.accrual_taken
    FROM refunds r JOIN payments p ON p.id = r.payment_id JOIN guests g ON g.id = p.guest_id
    WHERE (CAST($1 AS TEXT) IS NULL OR g.org = $1) AND r.at >= $2 AND r.at < $3 AND p.owner_payment_id IS NULL";

/// Gifts redeemed: when, and the operation key of the check they were redeemed on (empty when
/// the check is not known).
pub const GIFTS_SQL: &str = "SELECT c.redeemed_at, COALESCE(p.op_id, '')
    FROM gift_codes c LEFT JOIN payments p ON p.id = c.payment_id
    WHERE (CAST($1 AS TEXT) IS NULL OR c.org = $1) AND c.redeemed_at >= $2 AND c.redeemed_at < $3";

/// New guests: when, and who enrolled them as the audit log recorded it (`till NAME` on the
/// server, `till` on a single cafe's till, a login in the back office; empty when no enrolment
/// was logged: the demo, `add_guest`, guests older than the audit log).
pub const NEW_GUESTS_SQL: &str = "SELECT g.created_at,
        COALESCE((SELECT a.actor FROM audit_log a WHERE a.guest_id = g.id AND a.action = 'enrol'
                  ORDER BY a.id LIMIT 1), '')
    FROM guests g
    WHERE (CAST($1 AS TEXT) IS NULL OR g.org = $1) AND g.created_at >= $2 AND g.created_at < $3";

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
    /// stores its own ids as they are.
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

/// A row of [`PAYMENTS_SQL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentFact {
    pub at: UnixSeconds,
    pub op_key: String,
    pub amount_due: Kopecks,
    pub spent: Kopecks,
    pub accrued: Kopecks,
}

/// A row of [`REFUNDS_SQL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundFact {
    pub at: UnixSeconds,
    pub op_key: String,
    pub amount: Kopecks,
    pub spend_returned: Kopecks,
    pub accrual_taken: Kopecks,
}

/// What the four statements read for a period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub payments: Vec<PaymentFact>,
    pub refunds: Vec<RefundFact>,
    /// When, and the check's operation key.
    pub gifts: Vec<(UnixSeconds, String)>,
    /// When, and the enrolment's actor.
    pub new_guests: Vec<(UnixSeconds, String)>,
}

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
pub fn per_day_and_source(facts: &Facts, utc_offset_minutes: i64) -> BTreeMap<(Day, Source), Figures> {
    let mut rows: BTreeMap<(Day, Source), Figures> = BTreeMap::new();
    fn at(rows: &mut BTreeMap<(Day, Source), Figures>, offset: i64, when: UnixSeconds, source: Source) -> &mut Figures {
        rows.entry((day_of(when, offset), source)).or_default()
    }
    for p in &facts.payments {
        let f = at(&mut rows, utc_offset_minutes, p.at, Source::of_op_key(&p.op_key));
        f.checks += 1;
        f.revenue = f.revenue + p.amount_due;
        f.spent = f.spent + p.spent;
        f.accrued = f.accrued + p.accrued;
    }
    for r in &facts.refunds {
        let f = at(&mut rows, utc_offset_minutes, r.at, Source::of_op_key(&r.op_key));
        f.returns += 1;
        f.returned = f.returned + r.amount;
        f.spend_returned = f.spend_returned + r.spend_returned;
        f.accrual_taken = f.accrual_taken + r.accrual_taken;
    }
    for (when, op_key) in &facts.gifts {
        at(&mut rows, utc_offset_minutes, *when, Source::of_op_key(op_key)).gifts_redeemed += 1;
    }
    for (when, actor) in &facts.new_guests {
        at(&mut rows, utc_offset_minutes, *when, Source::of_enrolment(actor)).new_guests += 1;
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
pub fn total(facts: &Facts) -> Figures {
    let mut sum = Figures::default();
    for figures in per_day_and_source(facts, 0).values() {
        sum.add(figures);
    }
    sum
}

/// The longest period a report covers: a year and a day, so that a year's report fits and a
/// typo («2062») does not read the whole ledger.
pub const MAX_DAYS: i64 = 367;

#[cfg(test)]
mod tests {
    use super::*;

    fn pay(at: UnixSeconds, op_key: &str, due: i64, spent: i64, accrued: i64) -> PaymentFact {
        PaymentFact {
            at,
            op_key: op_key.to_string(),
            amount_due: Kopecks(due),
            spent: Kopecks(spent),
            accrued: Kopecks(accrued),
        }
    }

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
    fn facts_add_up_per_day_and_till() {
        let day = 1_741_608_000; // 2025-03-10 12:00 UTC
        let facts = Facts {
            payments: vec![
                pay(day, "cafe/till-1:a", 100_000, 30_000, 3_500),
                pay(day + 60, "cafe/till-2:b", 50_000, 0, 2_500),
                pay(day + 86_400, "cafe/till-1:c", 20_000, 1_000, 950),
            ],
            refunds: vec![RefundFact {
                at: day + 86_400,
                op_key: "cafe/till-2:r".into(),
                amount: Kopecks(50_000),
                spend_returned: Kopecks(0),
                accrual_taken: Kopecks(2_500),
            }],
            gifts: vec![(day, "cafe/till-1:a".into())],
            new_guests: vec![(day, "till till-2".into()), (day, "anna".into())],
        };
        let rows = per_day_and_source(&facts, 0);
        let d0 = day_of(day, 0);
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
