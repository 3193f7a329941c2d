//! Returns on both stores the one engine runs on (`sqlite::…`, `postgres::…`): one test for each
//! way a refund goes wrong elsewhere (points not reversed, deducted twice, a negative balance,
//! more returned than sold, two returns racing), the preview saying exactly what the return
//! does, and the closed checks the till finds. Every test ends with the invariant check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod ledger_stores;
#[cfg(not(windows))]
mod server_support;

use ledger_stores::LedgerApi;
#[cfg(not(windows))]
use ledger_stores::PgLedger;
use loyalty_till::domain::{
    CheckFilter, CheckInfo, CheckLine, GuestId, IdentifierKind, LineReturn, LoyaltyError, RefundReceipt, ReturnPart,
    ScanKind, UnixSeconds,
};
use loyalty_till::ledger::{Ledger, NewGroup, ProgramSettings};
use loyalty_till::loyalty::engine::Op;
use loyalty_till::loyalty::rules::AccrualBasis;
use loyalty_till::money::Kopecks;
use std::sync::{Arc, Barrier};
use tempfile::TempDir;

/// 2025-03-10 12:00 UTC, 15:00 in the cafe (UTC+3).
const NOW: UnixSeconds = 1_741_564_800 + 12 * 3600;

fn rub(roubles: i64) -> Kopecks {
    Kopecks(roubles * 100)
}

fn check(subtotal: Kopecks, gifts: &[&str]) -> CheckInfo {
    CheckInfo {
        subtotal,
        gift_codes: gifts.iter().map(|g| g.to_string()).collect(),
        lines: Vec::new(),
    }
}

/// A store, and what a race of two returns is on it.
trait Backing: LedgerApi + Sized {
    fn open(dir: &TempDir) -> Self;
    /// Two refunds of `payment` sent at the same moment under different operation ids.
    fn race_refunds(&mut self, dir: &TempDir, payment: &str) -> Vec<Result<RefundReceipt, LoyaltyError>>;
}

impl Backing for Ledger {
    fn open(dir: &TempDir) -> Ledger {
        Ledger::open(&dir.path().join("ledger.sqlite")).unwrap()
    }

    fn race_refunds(&mut self, dir: &TempDir, payment: &str) -> Vec<Result<RefundReceipt, LoyaltyError>> {
        let start = Arc::new(Barrier::new(2));
        let tills: Vec<_> = (0..2)
            .map(|till| {
                let path = dir.path().join("ledger.sqlite");
                let start = Arc::clone(&start);
                let payment = payment.to_string();
                std::thread::Builder::new()
                    .name(format!("till-{till}"))
                    .spawn(move || {
                        let mut ledger = Ledger::open(&path).unwrap();
                        start.wait();
                        ledger.refund(&format!("race-{till}"), &payment, None, NOW + 60)
                    })
                    .unwrap()
            })
            .collect();
        tills.into_iter().map(|t| t.join().unwrap()).collect()
    }
}

#[cfg(not(windows))]
impl Backing for PgLedger {
    fn open(_: &TempDir) -> PgLedger {
        let url = server_support::pg_url().expect("PostgreSQL for the returns suite");
        PgLedger::empty(&url).expect("PostgreSQL for the returns suite")
    }

    fn race_refunds(&mut self, _: &TempDir, payment: &str) -> Vec<Result<RefundReceipt, LoyaltyError>> {
        let ops: Vec<Op> = (0..2)
            .map(|till| Op::Refund {
                op_key: format!("race-{till}"),
                payment_op_key: payment.to_string(),
                part: ReturnPart::Rest,
            })
            .collect();
        self.run_together(&ops, NOW + 60)
            .into_iter()
            .map(|answer| answer.and_then(|a| a.into_refund()))
            .collect()
    }
}

/// A programme of three groups: «Гость» (5 %), «Постоянный» from 1 000 ₽ (7 %), «VIP» from
/// 5 000 ₽ (10 %, never downgraded); one guest with 500 ₽, a stamp card of 5 and a gift code.
struct Cafe<L: Backing> {
    ledger: L,
    dir: TempDir,
    guest: GuestId,
    stamp_card: i64,
    groups: [i64; 3],
}

impl<L: Backing> Cafe<L> {
    fn new() -> Cafe<L> {
        let dir = TempDir::new().unwrap();
        let mut ledger = L::open(&dir);
        ledger
            .set_program(&ProgramSettings {
                name: "Test".to_string(),
                max_check_bp: 5000,
                spend_step: rub(1),
                hold_ttl_secs: 900,
                group_period_days: 365,
                utc_offset_minutes: 180,
                accrual_basis: AccrualBasis::PaidPart,
                welcome_bonus: Kopecks::ZERO,
                till_enrolment: false,
            })
            .unwrap();
        let group = |name: &str, rank: i64, threshold: i64, accrual_bp: i64, never_downgrade: bool| NewGroup {
            name: name.to_string(),
            rank,
            discount_bp: 0,
            accrual_bp,
            spend_threshold: rub(threshold),
            never_downgrade,
            daily_ops_limit: 0,
            daily_spend_limit: Kopecks::ZERO,
        };
        let groups = [
            ledger.add_group(&group("Гость", 1, 0, 500, false)).unwrap(),
            ledger.add_group(&group("Постоянный", 2, 1_000, 700, false)).unwrap(),
            ledger.add_group(&group("VIP", 3, 5_000, 1_000, true)).unwrap(),
        ];
        let guest = ledger
            .add_guest("Анна", Some("+7 916 123-45-67"), groups[0], NOW - 3600)
            .unwrap();
        ledger
            .add_identifier(guest, IdentifierKind::CardBarcode, "2000000000015")
            .unwrap();
        ledger.credit("start", guest, rub(500), "start", NOW - 3600).unwrap();
        let stamp_card = ledger.add_stamp_card("Кофе", 5, "Кофе в подарок").unwrap();
        ledger.add_gift_code("G1", guest, "Капучино", rub(150)).unwrap();
        Cafe {
            ledger,
            dir,
            guest,
            stamp_card,
            groups,
        }
    }

    /// Pays a check, spending `spent` bonuses through a hold.
    fn pay(&mut self, op: &str, subtotal: Kopecks, spent: Kopecks, gifts: &[&str]) {
        let check = check(subtotal, gifts);
        let hold = (spent > Kopecks::ZERO).then(|| {
            self.ledger
                .hold(&format!("{op}-hold"), self.guest, spent, &check, NOW)
                .unwrap()
                .hold_id
        });
        self.ledger
            .commit_payment(op, self.guest, hold, spent, &check, NOW)
            .unwrap();
    }

    fn balance(&self) -> Kopecks {
        self.ledger.guest_card(self.guest, NOW).unwrap().balance
    }

    fn stamps(&self) -> i64 {
        let card = self.ledger.guest_card(self.guest, NOW).unwrap();
        card.stamps.iter().map(|s| s.collected).sum()
    }

    fn history_len(&self) -> usize {
        self.ledger.history(self.guest, 1_000).unwrap().len()
    }
}

impl<L: Backing> Drop for Cafe<L> {
    fn drop(&mut self) {
        if !std::thread::panicking()
            && let Err(violations) = self.ledger.check_invariants()
        {
            panic!("ledger invariants broken: {violations}");
        }
    }
}

/// Points not reversed: a full return gives back every bonus spent, takes back the whole
/// accrual, gives the gift back and takes the stamp back, exactly as its preview said.
fn full_return_reverses_everything_the_check_did<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    cafe.pay("p1", rub(600), rub(100), &["G1"]);
    // 500 − 100 spent + 5 % of the 500 paid with money.
    assert_eq!(cafe.balance(), rub(425));
    assert_eq!(cafe.stamps(), 1);
    assert_eq!(
        cafe.ledger.identify("G1", ScanKind::Manual, NOW),
        Err(LoyaltyError::GiftAlreadyUsed)
    );

    let lines = cafe.history_len();
    let preview = cafe.ledger.refund_preview("p1", None, NOW + 60).unwrap();
    assert_eq!(
        (
            preview.amount,
            preview.spend_returned,
            preview.accrual_taken,
            preview.unrecovered
        ),
        (rub(600), rub(100), rub(25), Kopecks::ZERO)
    );
    assert!(preview.full);
    assert_eq!(preview.gifts_restored, vec!["Капучино".to_string()]);
    assert_eq!((preview.stamps_taken, preview.balance_after), (1, rub(500)));
    assert_eq!(
        (cafe.balance(), cafe.stamps(), cafe.history_len()),
        (rub(425), 1, lines),
        "the preview writes nothing"
    );

    let done = cafe.ledger.refund("r1", "p1", None, NOW + 60).unwrap();
    assert_eq!(done, preview, "the return does exactly what the preview said");
    assert_eq!((cafe.balance(), cafe.stamps()), (rub(500), 0));
    let gift = cafe.ledger.identify("G1", ScanKind::Manual, NOW + 120).unwrap().gift;
    assert_eq!(gift.map(|g| g.name), Some("Капучино".to_string()), "the gift is back");
    let history = cafe.ledger.history(cafe.guest, 2).unwrap();
    let kinds: Vec<(&str, Kopecks)> = history.iter().map(|h| (h.kind.as_str(), h.amount)).collect();
    assert!(kinds.contains(&("refund_spend", rub(100))), "{kinds:?}");
    assert!(kinds.contains(&("refund_accrual", Kopecks(-rub(25).0))), "{kinds:?}");
    let _ = cafe.stamp_card;
}

/// A partial return moves its share of the bonuses only; the gift and the stamp stay until the
/// rest comes back, and the pieces add up to exactly what the check did.
fn partial_returns_add_up_and_keep_the_gift_until_the_last<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    cafe.pay("p1", rub(1_000), rub(200), &["G1"]);
    // Accrual: 5 % of 800 = 40; balance 500 − 200 + 40 = 340.
    assert_eq!(cafe.balance(), rub(340));
    let part = cafe.ledger.refund("r1", "p1", Some(rub(300)), NOW + 60).unwrap();
    assert_eq!(
        (part.spend_returned, part.accrual_taken, part.full, part.stamps_taken),
        (rub(60), rub(12), false, 0)
    );
    assert!(part.gifts_restored.is_empty());
    assert_eq!(cafe.stamps(), 1);
    assert_eq!(
        cafe.ledger.identify("G1", ScanKind::Manual, NOW),
        Err(LoyaltyError::GiftAlreadyUsed)
    );
    let rest = cafe.ledger.refund("r2", "p1", None, NOW + 120).unwrap();
    assert_eq!(
        (rest.amount, rest.spend_returned, rest.accrual_taken, rest.full),
        (rub(700), rub(140), rub(28), true)
    );
    assert_eq!((cafe.balance(), cafe.stamps()), (rub(500), 0));
    assert!(cafe.ledger.identify("G1", ScanKind::Manual, NOW + 180).is_ok());
}

/// Deducted twice: the same return sent again answers the first result and changes nothing;
/// the same id with other content is refused.
fn the_same_return_sent_again_changes_nothing<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    cafe.pay("p1", rub(1_000), Kopecks::ZERO, &[]);
    let first = cafe.ledger.refund("r1", "p1", Some(rub(400)), NOW + 60).unwrap();
    let (balance, lines) = (cafe.balance(), cafe.history_len());
    let again = cafe.ledger.refund("r1", "p1", Some(rub(400)), NOW + 90).unwrap();
    assert_eq!(again, first);
    assert_eq!((cafe.balance(), cafe.history_len()), (balance, lines));
    assert_eq!(
        cafe.ledger.refund("r1", "p1", Some(rub(500)), NOW + 90),
        Err(LoyaltyError::OperationIdConflict)
    );
}

/// More returned than sold, or a check returned twice: refused with the reason, nothing moves.
fn over_return_and_second_full_return_are_refused<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    cafe.pay("p1", rub(1_000), Kopecks::ZERO, &[]);
    let (balance, lines) = (cafe.balance(), cafe.history_len());
    assert_eq!(
        cafe.ledger.refund("r1", "p1", Some(rub(1_001)), NOW + 60),
        Err(LoyaltyError::RefundOverPayment {
            requested: rub(1_001),
            left: rub(1_000)
        })
    );
    assert_eq!(
        cafe.ledger.refund_preview("p1", Some(rub(1_001)), NOW + 60),
        Err(LoyaltyError::RefundOverPayment {
            requested: rub(1_001),
            left: rub(1_000)
        }),
        "the preview refuses what the return would"
    );
    assert_eq!((cafe.balance(), cafe.history_len()), (balance, lines));
    cafe.ledger.refund("r2", "p1", None, NOW + 60).unwrap();
    assert_eq!(
        cafe.ledger.refund("r3", "p1", None, NOW + 90),
        Err(LoyaltyError::RefundOverPayment {
            requested: Kopecks::ZERO,
            left: Kopecks::ZERO
        }),
        "a check already returned in full"
    );
    assert_eq!(
        cafe.ledger.refund("r4", "nope", None, NOW + 90),
        Err(LoyaltyError::UnknownPayment)
    );
}

/// Negative balance: an accrual already spent is taken back only as far as the guest has
/// bonuses; the rest is reported, and the balance stays at zero or above.
fn an_accrual_already_spent_never_takes_the_balance_below_zero<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    cafe.pay("p1", rub(1_000), Kopecks::ZERO, &[]);
    assert_eq!(cafe.balance(), rub(550));
    cafe.ledger
        .debit("spend-all", cafe.guest, rub(530), "spent", NOW + 10)
        .unwrap();
    let preview = cafe.ledger.refund_preview("p1", None, NOW + 60).unwrap();
    assert_eq!(
        (preview.accrual_taken, preview.unrecovered, preview.balance_after),
        (rub(20), rub(30), Kopecks::ZERO)
    );
    let done = cafe.ledger.refund("r1", "p1", None, NOW + 60).unwrap();
    assert_eq!(done, preview);
    assert_eq!(cafe.balance(), Kopecks::ZERO);
}

/// A return that takes the guest's spending back below the group's threshold undoes the move;
/// a group that never downgrades keeps the guest.
fn a_return_undoes_the_group_move_unless_the_group_never_downgrades<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    cafe.pay("p1", rub(1_200), Kopecks::ZERO, &[]);
    assert_eq!(cafe.ledger.guest_group_id(cafe.guest).unwrap(), cafe.groups[1]);
    let small = cafe.ledger.refund_preview("p1", Some(rub(100)), NOW + 60).unwrap();
    assert_eq!(small.new_group, None, "1 100 ₽ still reaches the threshold");
    let preview = cafe.ledger.refund_preview("p1", Some(rub(500)), NOW + 60).unwrap();
    assert_eq!(preview.new_group.as_deref(), Some("Гость"));
    cafe.ledger.refund("r1", "p1", Some(rub(500)), NOW + 60).unwrap();
    assert_eq!(cafe.ledger.guest_group_id(cafe.guest).unwrap(), cafe.groups[0]);

    cafe.pay("p2", rub(6_000), Kopecks::ZERO, &[]);
    assert_eq!(cafe.ledger.guest_group_id(cafe.guest).unwrap(), cafe.groups[2]);
    let done = cafe.ledger.refund("r2", "p2", None, NOW + 120).unwrap();
    assert_eq!(done.new_group, None);
    assert_eq!(
        cafe.ledger.guest_group_id(cafe.guest).unwrap(),
        cafe.groups[2],
        "VIP never downgrades"
    );
}

/// Two returns of the same check at the same moment: exactly one wins, the other is refused,
/// and the bonuses move once.
fn two_returns_racing_for_one_check_only_one_wins<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    cafe.pay("p1", rub(1_000), rub(100), &[]);
    // 500 − 100 + 5 % of 900 = 445.
    assert_eq!(cafe.balance(), rub(445));
    let results = cafe.ledger.race_refunds(&cafe.dir, "p1");
    let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(LoyaltyError::RefundOverPayment { left, .. }) if *left == Kopecks::ZERO)),
        "{results:?}"
    );
    assert_eq!(cafe.balance(), rub(500));
}

/// The till finds closed checks: today's, by number, by the guest's card or phone.
fn closed_checks_are_found_today_by_number_and_by_guest<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    cafe.pay("p1", rub(300), Kopecks::ZERO, &[]);
    cafe.pay("p2", rub(700), Kopecks::ZERO, &[]);
    let other = cafe
        .ledger
        .add_guest("Иван", Some("+7 903 111-22-33"), cafe.groups[0], NOW)
        .unwrap();
    cafe.ledger
        .commit_payment("p3", other, None, Kopecks::ZERO, &check(rub(150), &[]), NOW)
        .unwrap();
    cafe.ledger.refund("r1", "p2", Some(rub(200)), NOW).unwrap();

    let today = CheckFilter {
        today: true,
        ..CheckFilter::default()
    };
    let all = cafe.ledger.checks(&today, NOW + 60).unwrap();
    let ops: Vec<&str> = all.iter().map(|c| c.op_id.as_str()).collect();
    assert_eq!(ops, ["p3", "p2", "p1"], "newest first");
    let p2 = &all[1];
    assert_eq!((p2.amount_due, p2.refunded, p2.left()), (rub(700), rub(200), rub(500)));
    assert_eq!(p2.guest_name, "Анна");
    assert!(
        cafe.ledger.checks(&today, NOW + 86_400).unwrap().is_empty(),
        "yesterday's checks are not today's"
    );

    let by_number = CheckFilter {
        number: Some(p2.number),
        ..CheckFilter::default()
    };
    assert_eq!(cafe.ledger.checks(&by_number, NOW).unwrap(), vec![p2.clone()]);
    for code in ["2000000000015", "+7 916 123-45-67"] {
        let by_guest = CheckFilter {
            guest_code: Some(code.to_string()),
            ..CheckFilter::default()
        };
        let found: Vec<String> = cafe
            .ledger
            .checks(&by_guest, NOW)
            .unwrap()
            .into_iter()
            .map(|c| c.op_id)
            .collect();
        assert_eq!(found, ["p2", "p1"], "by {code}");
    }
    let unknown = CheckFilter {
        guest_code: Some("999".to_string()),
        ..CheckFilter::default()
    };
    assert_eq!(cafe.ledger.checks(&unknown, NOW), Err(LoyaltyError::UnknownCode));
}

/// The check of the lines tests: 2 × «Ролл Бонито» at 410 ₽, 1 × «Поке с лососем» at 650 ₽,
/// 3 × «Морс» at 120 ₽ (seed 003's kind of order), 1 830 ₽ in all.
fn lined_check() -> CheckInfo {
    let line = |name: &str, quantity: i64, price: i64| CheckLine {
        name: name.to_string(),
        quantity,
        price: rub(price),
        returned: 0,
    };
    CheckInfo {
        subtotal: rub(2 * 410 + 650 + 3 * 120),
        gift_codes: Vec::new(),
        lines: vec![
            line("Ролл Бонито", 2, 410),
            line("Поке с лососем", 1, 650),
            line("Морс", 3, 120),
        ],
    }
}

fn lines(pairs: &[(usize, i64)]) -> ReturnPart {
    ReturnPart::Lines(
        pairs
            .iter()
            .map(|&(line, quantity)| LineReturn { line, quantity })
            .collect(),
    )
}

/// Returns by lines: each returns its lines' share of the check, the bonuses move with it, the
/// check found for a return shows what is left of each line, a line returned twice (or more
/// units than sold) is refused with the line's name, and the lines returned one by one add up
/// to exactly the whole check.
fn returns_by_lines_add_up_to_the_check<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let check = lined_check();
    let hold = cafe
        .ledger
        .hold("p1-hold", cafe.guest, rub(183), &check, NOW)
        .unwrap()
        .hold_id;
    cafe.ledger
        .commit_payment("p1", cafe.guest, Some(hold), rub(183), &check, NOW)
        .unwrap();
    // 500 − 183 + 5 % of the 1 647 paid with money (82.35).
    let paid_balance = cafe.balance();
    assert_eq!(paid_balance, Kopecks(rub(317).0 + 8_235));

    let today = CheckFilter {
        today: true,
        ..CheckFilter::default()
    };
    let found = cafe.ledger.checks(&today, NOW).unwrap();
    assert_eq!(found[0].lines, check.lines, "the check keeps its lines");

    // One roll: 410 of 1 830, so a tenth of the bonuses spent (18.30 of 183) comes back.
    let one_roll = lines(&[(0, 1)]);
    let preview = cafe.ledger.refund_preview("p1", one_roll.clone(), NOW + 60).unwrap();
    assert_eq!(preview.amount, rub(410));
    let done = cafe.ledger.refund("r1", "p1", one_roll.clone(), NOW + 60).unwrap();
    assert_eq!(done, preview, "the return does what the preview said");
    assert_eq!(
        (done.spend_returned, done.accrual_taken, done.full),
        (Kopecks(4_100), Kopecks(1_845), false)
    );
    assert_eq!(
        cafe.ledger.refund("r1", "p1", one_roll, NOW + 90).unwrap(),
        done,
        "the same return sent again changes nothing"
    );
    let found = cafe.ledger.checks(&today, NOW).unwrap();
    assert_eq!(found[0].lines.iter().map(|l| l.returned).collect::<Vec<_>>(), [1, 0, 0]);
    assert_eq!(found[0].refunded, rub(410));

    // The same line again for more than is left, by name; nothing moves.
    let (balance, history) = (cafe.balance(), cafe.history_len());
    assert_eq!(
        cafe.ledger.refund("r2", "p1", lines(&[(0, 2)]), NOW + 120),
        Err(LoyaltyError::LineOverReturn {
            line: "Ролл Бонито".to_string(),
            left: 1
        })
    );
    assert_eq!(
        cafe.ledger.refund("r2", "p1", lines(&[(1, 1), (1, 1)]), NOW + 120),
        Err(LoyaltyError::LineOverReturn {
            line: "Поке с лососем".to_string(),
            left: 1
        }),
        "one line named twice in one return counts twice"
    );
    assert!(matches!(
        cafe.ledger.refund("r2", "p1", lines(&[(7, 1)]), NOW + 120),
        Err(LoyaltyError::OutOfRange(_))
    ));
    assert_eq!(
        cafe.ledger.refund("r2", "p1", lines(&[(2, 0)]), NOW + 120),
        Err(LoyaltyError::NonPositiveAmount)
    );
    assert_eq!((cafe.balance(), cafe.history_len()), (balance, history));

    // The rest line by line: 1 morse (a third of 360 = 120), then everything else.
    let morse = cafe.ledger.refund("r3", "p1", lines(&[(2, 1)]), NOW + 180).unwrap();
    assert_eq!(morse.amount, rub(120));
    let rest = cafe
        .ledger
        .refund("r4", "p1", lines(&[(0, 1), (1, 1), (2, 2)]), NOW + 240)
        .unwrap();
    assert!(rest.full, "every line back is the whole check back");
    assert_eq!(done.amount + morse.amount + rest.amount, check.subtotal);
    assert_eq!(
        done.spend_returned + morse.spend_returned + rest.spend_returned,
        rub(183),
        "every bonus spent is back, to the kopeck"
    );
    assert_eq!(
        cafe.balance(),
        rub(500),
        "the guest is where they were before the check"
    );
    assert_eq!(
        cafe.ledger.refund("r5", "p1", lines(&[(2, 1)]), NOW + 300),
        Err(LoyaltyError::LineOverReturn {
            line: "Морс".to_string(),
            left: 0
        })
    );
}

/// A check paid without lines (or with lines that do not add up to it) is paid all the same and
/// returned by amount; a return by lines of it is refused. A full return marks every line back.
fn lines_that_do_not_add_up_are_not_kept_and_a_full_return_takes_every_line<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let mut wrong = lined_check();
    wrong.subtotal = wrong.subtotal + rub(1);
    cafe.ledger
        .commit_payment("p1", cafe.guest, None, Kopecks::ZERO, &wrong, NOW)
        .unwrap();
    cafe.ledger
        .commit_payment("p2", cafe.guest, None, Kopecks::ZERO, &lined_check(), NOW)
        .unwrap();
    let today = CheckFilter {
        today: true,
        ..CheckFilter::default()
    };
    let found = cafe.ledger.checks(&today, NOW).unwrap();
    assert!(found[1].lines.is_empty(), "lines that do not add up are not kept");
    assert!(matches!(
        cafe.ledger.refund("r1", "p1", lines(&[(0, 1)]), NOW + 60),
        Err(LoyaltyError::OutOfRange(_))
    ));
    cafe.ledger.refund("r2", "p1", Some(rub(100)), NOW + 60).unwrap();

    // An amount returned first, then the rest: every line is marked back.
    cafe.ledger.refund("r3", "p2", Some(rub(100)), NOW + 60).unwrap();
    let found = cafe.ledger.checks(&today, NOW).unwrap();
    assert!(
        found[0].lines.iter().all(|l| l.returned == 0),
        "an amount names no line"
    );
    cafe.ledger.refund("r4", "p2", None, NOW + 120).unwrap();
    let found = cafe.ledger.checks(&today, NOW).unwrap();
    assert!(found[0].lines.iter().all(|l| l.left() == 0), "{:?}", found[0].lines);
}

on_both_ledgers!(
    returns_by_lines_add_up_to_the_check,
    lines_that_do_not_add_up_are_not_kept_and_a_full_return_takes_every_line,
    full_return_reverses_everything_the_check_did,
    partial_returns_add_up_and_keep_the_gift_until_the_last,
    the_same_return_sent_again_changes_nothing,
    over_return_and_second_full_return_are_refused,
    an_accrual_already_spent_never_takes_the_balance_below_zero,
    a_return_undoes_the_group_move_unless_the_group_never_downgrades,
    two_returns_racing_for_one_check_only_one_wins,
    closed_checks_are_found_today_by_number_and_by_guest,
);
