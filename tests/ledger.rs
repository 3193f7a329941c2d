//! The ledger suite, on both stores the one engine runs on: the embedded ledger on a real SQLite
//! file and PostgreSQL (`sqlite::…` and `postgres::…`). Every test ends with the ledger's own
//! invariant check (see `Fixture`'s Drop).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ledger_model;
#[macro_use]
mod ledger_stores;
#[cfg(not(windows))]
mod server_support;

use common::Rng;
use ledger_model::{GroupRules, LedgerModel, Programme};
use ledger_stores::LedgerApi;
#[cfg(not(windows))]
use ledger_stores::PgLedger;
use loyalty_till::domain::{
    CheckInfo, DailyVisits, GuestCard, GuestId, HoldId, IdentifierKind, LoyaltyError, MAX_CODE_LEN, ScanKind,
    SpendLimitKind, SpendQuote, UnixSeconds,
};
use loyalty_till::ledger::{Ledger, NewGroup, ProgramSettings};
use loyalty_till::loyalty::rules::AccrualBasis;
use loyalty_till::money::Kopecks;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use tempfile::TempDir;

const DAY: i64 = 86_400;
/// 2025-03-10 00:00 UTC.
const MIDNIGHT_UTC: UnixSeconds = 1_741_564_800;
/// 2025-03-10 12:00 UTC, 15:00 in the demo cafe (UTC+3).
const NOW: UnixSeconds = MIDNIGHT_UTC + 12 * 3600;

// The demo guests, in the order the demo creates them.
const ANNA: GuestId = 1;
const IVAN: GuestId = 2;
const MARIA: GuestId = 3;
const OLEG: GuestId = 4;
const PETR: GuestId = 5;

fn rub(roubles: i64) -> Kopecks {
    Kopecks(roubles * 100)
}

fn check(subtotal: Kopecks) -> CheckInfo {
    CheckInfo {
        subtotal,
        gift_codes: Vec::new(),
        lines: Vec::new(),
    }
}

/// A store the suite runs on: the embedded ledger on a real SQLite file, or PostgreSQL.
trait Backing: LedgerApi + Sized {
    fn open_empty(dir: &Path) -> Self;
    /// Closes the store and opens it again.
    fn reopen(&mut self, dir: &Path);
}

fn ledger_path(dir: &Path) -> PathBuf {
    // A folder that does not exist yet: open creates it.
    dir.join("data").join("ledger.sqlite")
}

impl Backing for Ledger {
    fn open_empty(dir: &Path) -> Ledger {
        Ledger::open(&ledger_path(dir)).unwrap()
    }

    fn reopen(&mut self, dir: &Path) {
        *self = Ledger::open(&ledger_path(dir)).unwrap();
    }
}

#[cfg(not(windows))]
impl Backing for PgLedger {
    fn open_empty(_: &Path) -> PgLedger {
        let url = server_support::pg_url().expect("PostgreSQL for the ledger suite");
        PgLedger::empty(&url).expect("PostgreSQL for the ledger suite")
    }

    fn reopen(&mut self, _: &Path) {
        PgLedger::reopen(self);
    }
}

/// A ledger whose invariants are checked when the test ends.
struct Fixture<L: Backing> {
    ledger: L,
    dir: TempDir,
}

impl<L: Backing> Fixture<L> {
    fn empty() -> Fixture<L> {
        let dir = TempDir::new().unwrap();
        Fixture {
            ledger: L::open_empty(dir.path()),
            dir,
        }
    }

    fn demo() -> Fixture<L> {
        let mut fixture = Fixture::<L>::empty();
        assert!(fixture.ledger.seed_demo(NOW).unwrap());
        fixture
    }

    /// Closes the store and opens it again.
    fn reopen(&mut self) {
        self.ledger.reopen(self.dir.path());
    }

    fn card(&self, guest: GuestId, now: UnixSeconds) -> GuestCard {
        self.ledger.guest_card(guest, now).unwrap()
    }

    fn quote(&self, guest: GuestId, subtotal: Kopecks, now: UnixSeconds) -> SpendQuote {
        self.ledger.calculate(guest, &check(subtotal), now).unwrap()
    }

    fn identify(&mut self, payload: &str, kind: ScanKind, now: UnixSeconds) -> Result<GuestId, LoyaltyError> {
        self.ledger
            .identify(payload, kind, now)
            .map(|found| found.card.guest_id)
    }

    fn hold(&mut self, op_id: &str, guest: GuestId, amount: Kopecks, subtotal: Kopecks) -> HoldId {
        self.ledger
            .hold(op_id, guest, amount, &check(subtotal), NOW)
            .unwrap()
            .hold_id
    }

    fn assert_invariants(&self) {
        if let Err(violations) = self.ledger.check_invariants() {
            panic!("ledger invariants broken: {violations}");
        }
    }
}

impl<L: Backing> Drop for Fixture<L> {
    fn drop(&mut self) {
        // A failing test already panics; a second panic would abort and hide its message.
        if !std::thread::panicking() {
            self.assert_invariants();
        }
    }
}

/// A programme without demo data, with limits chosen by the test.
fn plain_program() -> ProgramSettings {
    ProgramSettings {
        name: "Test".to_string(),
        max_check_bp: 5000,
        spend_step: rub(1),
        hold_ttl_secs: 900,
        group_period_days: 365,
        utc_offset_minutes: 180,
        accrual_basis: AccrualBasis::PaidPart,
        welcome_bonus: Kopecks::ZERO,
        till_enrolment: false,
    }
}

fn plain_group(name: &str, daily_spend_limit: Kopecks) -> NewGroup {
    NewGroup {
        name: name.to_string(),
        rank: 1,
        discount_bp: 0,
        accrual_bp: 500,
        spend_threshold: Kopecks::ZERO,
        never_downgrade: false,
        daily_ops_limit: 0,
        daily_spend_limit,
    }
}

fn demo_is_seeded_once<L: Backing>() {
    let mut f = Fixture::<L>::empty();
    assert!(f.ledger.is_empty().unwrap());
    assert!(f.ledger.seed_demo(NOW).unwrap());
    assert!(!f.ledger.seed_demo(NOW + 10).unwrap());
    assert!(!f.ledger.is_empty().unwrap());

    let program = f.ledger.program().unwrap();
    assert_eq!(program.name, "GetMeBack");
    assert_eq!(
        (program.max_check_bp, program.spend_step, program.hold_ttl_secs),
        (5000, rub(1), 900)
    );

    let expected = [
        (ANNA, "Анна Смирнова", "Гость", rub(350)),
        (IVAN, "Иван Петров", "Постоянный", rub(1_250)),
        (MARIA, "Мария Козлова", "VIP", rub(5_000)),
        (OLEG, "Олег Новиков", "Гость", Kopecks::ZERO),
        (PETR, "Пётр Соколов", "Сотрудники", rub(800)),
    ];
    for (guest, name, group, balance) in expected {
        let card = f.card(guest, NOW);
        assert_eq!(
            (card.name.as_str(), card.group.name.as_str(), card.balance),
            (name, group, balance)
        );
        assert_eq!(card.available, balance);
    }

    let anna = f.card(ANNA, NOW);
    assert_eq!(anna.phone_masked, "+7 *** ***-45-67");
    let stamps: Vec<_> = anna
        .stamps
        .iter()
        .map(|s| (s.card_name.as_str(), s.collected, s.needed))
        .collect();
    assert_eq!(stamps, [("Кофейная карта", 4, 6), ("Десертная карта", 0, 5)]);
    // The ended New Year menu is not shown; the others come in the order they end.
    let promotions: Vec<_> = anna.promotions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(promotions, ["Счастливые часы", "Двойные бонусы по понедельникам"]);

    let history = f.ledger.history(ANNA, 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].kind.as_str(), history[0].amount),
        ("manual_credit", rub(350))
    );
    assert!(f.ledger.history(OLEG, 10).unwrap().is_empty());
}

fn identifies_by_every_identifier_kind<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let cases = [
        ("100001", ScanKind::Manual, ANNA),
        ("2000000000015", ScanKind::Barcode, ANNA),
        ("7001000010", ScanKind::MagneticCard, ANNA),
        ("GMB-00001234", ScanKind::Qr, ANNA),
        ("GMB-00005678", ScanKind::Qr, IVAN),
        ("100003", ScanKind::Manual, MARIA),
        // A code from another kind of device still finds its guest.
        ("100002", ScanKind::Barcode, IVAN),
        ("  100004\n", ScanKind::Manual, OLEG),
    ];
    for (payload, kind, guest) in cases {
        let found = f.ledger.identify(payload, kind, NOW).unwrap();
        assert_eq!(found.card.guest_id, guest, "{payload:?}");
        assert_eq!(found.gift, None);
    }
}

fn identifies_phones_in_several_spellings<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    for phone in [
        "+79161234567",
        "89161234567",
        "8 916 123-45-67",
        "+7 (916) 123-45-67",
        "9161234567",
        "7-916-123-45-67",
    ] {
        assert_eq!(f.identify(phone, ScanKind::Manual, NOW), Ok(ANNA), "{phone}");
    }
    assert_eq!(f.identify("8 (903) 111-22-33", ScanKind::Manual, NOW), Ok(IVAN));
    assert_eq!(
        f.identify("+7 999 999-99-99", ScanKind::Manual, NOW),
        Err(LoyaltyError::UnknownCode)
    );
}

fn gift_codes_give_a_gift_once<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let found = f.ledger.identify("G100001", ScanKind::Qr, NOW).unwrap();
    assert_eq!(found.card.guest_id, ANNA);
    let gift = found.gift.unwrap();
    assert_eq!(
        (gift.code.as_str(), gift.name.as_str(), gift.points),
        ("G100001", "Капучино", rub(150))
    );
    // Codes are case-sensitive.
    assert_eq!(
        f.identify("g100001", ScanKind::Manual, NOW),
        Err(LoyaltyError::UnknownCode)
    );

    // Another guest's gift code on Anna's check: the whole payment is refused and rolled back.
    let foreign = CheckInfo {
        subtotal: rub(500),
        gift_codes: vec!["G100001".into(), "G100002".into()],
        lines: Vec::new(),
    };
    let refused = f
        .ledger
        .commit_payment("pay-foreign", ANNA, None, Kopecks::ZERO, &foreign, NOW);
    assert_eq!(refused, Err(LoyaltyError::GiftAlreadyUsed));
    assert_eq!(f.card(ANNA, NOW).balance, rub(350));
    assert_eq!(f.card(ANNA, NOW).stamps[0].collected, 4);
    assert!(f.ledger.identify("G100001", ScanKind::Qr, NOW).unwrap().gift.is_some());

    let paid = CheckInfo {
        subtotal: rub(500),
        gift_codes: vec!["G100001".into()],
        lines: Vec::new(),
    };
    let receipt = f
        .ledger
        .commit_payment("pay-1", ANNA, None, Kopecks::ZERO, &paid, NOW)
        .unwrap();
    assert_eq!((receipt.accrued, receipt.balance_after), (rub(25), rub(375)));
    assert_eq!(
        f.ledger.identify("G100001", ScanKind::Qr, NOW).err(),
        Some(LoyaltyError::GiftAlreadyUsed)
    );
    // Redeeming it again on another check fails the same way.
    let again = f.ledger.commit_payment("pay-2", ANNA, None, Kopecks::ZERO, &paid, NOW);
    assert_eq!(again, Err(LoyaltyError::GiftAlreadyUsed));
    // Anna's other gift is untouched.
    assert_eq!(
        f.ledger
            .identify("G100003", ScanKind::Qr, NOW)
            .unwrap()
            .gift
            .unwrap()
            .name,
        "Круассан"
    );
    // A check of nothing is refused; a check of only a gift (0,00) is closed, and redeems it.
    assert_eq!(
        f.ledger
            .commit_payment("pay-empty", ANNA, None, Kopecks::ZERO, &check(Kopecks::ZERO), NOW),
        Err(LoyaltyError::NonPositiveAmount)
    );
    let only_gift = CheckInfo {
        subtotal: Kopecks::ZERO,
        gift_codes: vec!["G100003".into()],
        lines: Vec::new(),
    };
    let free = f
        .ledger
        .commit_payment("pay-gift", ANNA, None, Kopecks::ZERO, &only_gift, NOW)
        .unwrap();
    assert_eq!(
        (free.spent, free.accrued, free.balance_after),
        (Kopecks::ZERO, Kopecks::ZERO, rub(375))
    );
    assert_eq!(
        f.ledger.identify("G100003", ScanKind::Qr, NOW).err(),
        Some(LoyaltyError::GiftAlreadyUsed)
    );
}

fn identifiers_are_stored_as_identify_reads_them<L: Backing>() {
    let mut f = Fixture::<L>::empty();
    let group = f.ledger.add_group(&plain_group("Все", Kopecks::ZERO)).unwrap();
    let guest = f.ledger.add_guest("Без телефона", None, group, NOW).unwrap();
    assert_eq!(f.card(guest, NOW).phone_masked, "");
    f.ledger
        .add_identifier(guest, IdentifierKind::Phone, "8 (912) 000-00-07")
        .unwrap();
    f.ledger
        .add_identifier(guest, IdentifierKind::CardBarcode, " 4601234567890 ")
        .unwrap();
    assert_eq!(f.identify("+79120000007", ScanKind::Manual, NOW), Ok(guest));
    assert_eq!(f.identify("4601234567890", ScanKind::Barcode, NOW), Ok(guest));
    let bad = Err(LoyaltyError::BadCode { max: MAX_CODE_LEN });
    assert_eq!(f.ledger.add_identifier(guest, IdentifierKind::Phone, "12345"), bad);
    assert_eq!(f.ledger.add_identifier(guest, IdentifierKind::ManualCode, ""), bad);
    // One code, one guest within the organisation, whatever kind it is stored under (the till
    // looks codes up by value): the engine refuses it with the reason; so with a phone.
    let other = f.ledger.add_guest("Другой", None, group, NOW).unwrap();
    for kind in [IdentifierKind::CardBarcode, IdentifierKind::ManualCode] {
        assert_eq!(
            f.ledger.add_identifier(other, kind, "4601234567890"),
            Err(LoyaltyError::IdentifierTaken(kind))
        );
    }
    assert_eq!(
        f.ledger
            .add_identifier(other, IdentifierKind::Phone, "+7 912 000-00-07"),
        Err(LoyaltyError::IdentifierTaken(IdentifierKind::Phone))
    );
    // Nothing was added: the code still finds its first guest.
    assert_eq!(f.identify("4601234567890", ScanKind::Barcode, NOW), Ok(guest));
    assert_eq!(f.ledger.guest_card(99, NOW).err(), Some(LoyaltyError::UnknownCode));
}

fn refuses_unknown_empty_and_overlong_codes<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let bad = Err(LoyaltyError::BadCode { max: MAX_CODE_LEN });
    assert_eq!(
        f.identify("NOPE-1", ScanKind::Manual, NOW),
        Err(LoyaltyError::UnknownCode)
    );
    assert_eq!(f.identify("", ScanKind::Manual, NOW), bad);
    assert_eq!(f.identify("  \t ", ScanKind::Manual, NOW), bad);
    assert_eq!(f.identify(&"7".repeat(500), ScanKind::Barcode, NOW), bad);
    // The limit counts characters, not bytes.
    assert_eq!(
        f.identify(&"я".repeat(MAX_CODE_LEN), ScanKind::Manual, NOW),
        Err(LoyaltyError::UnknownCode)
    );
    assert_eq!(f.identify(&"я".repeat(MAX_CODE_LEN + 1), ScanKind::Manual, NOW), bad);
}

fn daily_operations_limit_resets_at_local_midnight<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    // 22:00 UTC is 01:00 of the next day in the cafe (UTC+3).
    let late = MIDNIGHT_UTC + 22 * 3600;
    let pay = |f: &mut Fixture<L>, op: &str, at: UnixSeconds| {
        f.ledger
            .commit_payment(op, PETR, None, Kopecks::ZERO, &check(rub(100)), at)
            .unwrap();
    };
    let visits = |f: &mut Fixture<L>, at: UnixSeconds| {
        f.ledger
            .identify("100005", ScanKind::Manual, at)
            .map(|found| found.card.daily_visits)
    };
    // Пётр's group allows two visits a day. A guest added and removed without buying uses
    // none: a visit is a paid check.
    for i in 0..5 {
        assert_eq!(
            f.identify("100005", ScanKind::Manual, late + i),
            Ok(PETR),
            "identification {i}"
        );
    }
    assert_eq!(visits(&mut f, late + 6), Ok(Some(DailyVisits { used: 0, limit: 2 })));
    pay(&mut f, "visit-1", late + 10);
    assert_eq!(visits(&mut f, late + 11), Ok(Some(DailyVisits { used: 1, limit: 2 })));
    pay(&mut f, "visit-2", late + 20);
    let limited = Err(LoyaltyError::DailyOperationsLimit { limit: 2 });
    assert_eq!(f.identify("+7 999 000-11-22", ScanKind::Manual, late + 120), limited);
    // A new UTC day, but still the same local day.
    assert_eq!(
        f.identify("100005", ScanKind::Manual, MIDNIGHT_UTC + DAY + 3600),
        limited
    );
    // Local midnight: 21:00 UTC.
    let next_local_day = MIDNIGHT_UTC + DAY + 21 * 3600;
    assert_eq!(f.identify("100005", ScanKind::Manual, next_local_day - 1), limited);
    assert_eq!(
        visits(&mut f, next_local_day),
        Ok(Some(DailyVisits { used: 0, limit: 2 }))
    );
    pay(&mut f, "visit-3", next_local_day + 1);
    pay(&mut f, "visit-4", next_local_day + 2);
    assert_eq!(f.identify("100005", ScanKind::Manual, next_local_day + 3), limited);
    // Other guests are not affected.
    assert_eq!(f.identify("100001", ScanKind::Manual, next_local_day + 4), Ok(ANNA));
    f.assert_invariants();
}

fn calculate_reports_each_binding_limit<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let kinds = |q: &SpendQuote| q.limits.iter().map(|l| l.kind).collect::<Vec<_>>();
    let binding = |q: &SpendQuote| q.binding_limit().unwrap().kind;

    // Balance 350, check 2 000: the balance decides.
    let q = f.quote(ANNA, rub(2_000), NOW);
    use SpendLimitKind::*;
    assert_eq!(kinds(&q), [Available, CheckPercent, DailyLimit, AmountDue]);
    let amounts: Vec<_> = q.limits.iter().map(|l| l.amount).collect();
    assert_eq!(amounts, [rub(350), rub(1_000), rub(3_000), rub(2_000)]);
    assert_eq!((q.max_spend, binding(&q)), (rub(350), Available));
    assert_eq!(
        (q.amount_due, q.accrual_bp, q.max_check_bp, q.spend_step),
        (rub(2_000), 500, 5000, rub(1))
    );

    // Check 500: half of it is less than the balance.
    let q = f.quote(ANNA, rub(500), NOW);
    assert_eq!((q.max_spend, binding(&q)), (rub(250), CheckPercent));

    // A big balance and a big check: the group's daily limit of 3 000 decides.
    f.ledger.credit("top-up", ANNA, rub(10_000), "test", NOW).unwrap();
    let q = f.quote(ANNA, rub(10_000), NOW);
    assert_eq!((q.max_spend, binding(&q)), (rub(3_000), DailyLimit));

    // Groups without a daily limit do not list one.
    let q = f.quote(IVAN, rub(1_000), NOW);
    assert_eq!(kinds(&q), [Available, CheckPercent, AmountDue]);
    assert_eq!((q.amount_due, q.max_spend), (rub(950), rub(475)));

    // With no check-percent cap the amount due decides (it ties with a 100 % cap).
    f.ledger
        .set_program(&ProgramSettings {
            max_check_bp: 10_000,
            ..f.ledger.program().unwrap()
        })
        .unwrap();
    let q = f.quote(IVAN, rub(1_000), NOW);
    assert_eq!(q.max_spend, rub(950));
    assert!(q.limits.iter().any(|l| l.kind == AmountDue && l.amount == q.max_spend));
    assert_eq!(q.limits[0].amount, rub(1_250));

    // Rounded down to whole roubles.
    f.ledger.credit("odd", OLEG, Kopecks(35_050), "test", NOW).unwrap();
    let q = f.quote(OLEG, rub(2_000), NOW);
    assert_eq!((q.limits[0].amount, q.max_spend), (Kopecks(35_050), rub(350)));
    assert_eq!(f.quote(OLEG, Kopecks::ZERO, NOW).max_spend, Kopecks::ZERO);
}

fn hold_then_commit_for_less_releases_the_rest<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let receipt = f.ledger.hold("h1", ANNA, rub(300), &check(rub(1_000)), NOW).unwrap();
    assert_eq!((receipt.amount, receipt.expires_at), (rub(300), NOW + 900));
    let card = f.card(ANNA, NOW);
    assert_eq!((card.balance, card.available), (rub(350), rub(50)));
    assert_eq!(f.ledger.open_holds(Some(ANNA)).unwrap(), std::slice::from_ref(&receipt));
    assert!(f.ledger.open_holds(Some(IVAN)).unwrap().is_empty());

    let paid = f
        .ledger
        .commit_payment("p1", ANNA, Some(receipt.hold_id), rub(200), &check(rub(1_000)), NOW)
        .unwrap();
    // 5 % accrual on the 800 not paid with bonuses.
    assert_eq!(
        (paid.spent, paid.accrued, paid.balance_after, paid.new_group),
        (rub(200), rub(40), rub(190), None)
    );
    let card = f.card(ANNA, NOW);
    assert_eq!((card.balance, card.available), (rub(190), rub(190)));
    assert!(f.ledger.open_holds(None).unwrap().is_empty());

    let history = f.ledger.history(ANNA, 10).unwrap();
    let rows: Vec<_> = history
        .iter()
        .map(|h| (h.kind.as_str(), h.amount, h.balance_after))
        .collect();
    assert_eq!(
        rows,
        [
            ("accrual", rub(40), rub(190)),
            ("spend", rub(-200), rub(150)),
            ("manual_credit", rub(350), rub(350))
        ]
    );
    assert!(history[0].note.contains(&rub(1_000).to_string()));
    assert_eq!(f.ledger.history(ANNA, 1).unwrap().len(), 1);
}

fn commit_checks_the_hold<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let hold = f.hold("h1", ANNA, rub(100), rub(1_000));
    let bill = check(rub(1_000));
    let over = f.ledger.commit_payment("p1", ANNA, Some(hold), rub(101), &bill, NOW);
    assert_eq!(
        over,
        Err(LoyaltyError::CommitOverHold {
            requested: rub(101),
            held: rub(100)
        })
    );
    let odd = f
        .ledger
        .commit_payment("p1", ANNA, Some(hold), Kopecks(5_050), &bill, NOW);
    assert_eq!(odd, Err(LoyaltyError::NotAMultipleOfStep { step: rub(1) }));
    let foreign = f.ledger.commit_payment("p1", IVAN, Some(hold), rub(50), &bill, NOW);
    assert_eq!(foreign, Err(LoyaltyError::UnknownHold));
    let unknown = f.ledger.commit_payment("p1", ANNA, Some(9_999), rub(50), &bill, NOW);
    assert_eq!(unknown, Err(LoyaltyError::UnknownHold));
    let no_hold = f.ledger.commit_payment("p1", ANNA, None, rub(50), &bill, NOW);
    assert_eq!(
        no_hold,
        Err(LoyaltyError::OverMaximum {
            requested: rub(50),
            max: Kopecks::ZERO
        })
    );
    // Nothing of the refused attempts was kept: the op_id is still free and the hold open.
    assert_eq!(f.card(ANNA, NOW).balance, rub(350));
    let paid = f
        .ledger
        .commit_payment("p1", ANNA, Some(hold), Kopecks::ZERO, &bill, NOW)
        .unwrap();
    assert_eq!(
        (paid.spent, paid.accrued, paid.balance_after),
        (Kopecks::ZERO, rub(50), rub(400))
    );
}

fn hold_over_the_maximum_stores_nothing<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let refused = f.ledger.hold("h1", ANNA, rub(400), &check(rub(1_000)), NOW);
    assert_eq!(
        refused,
        Err(LoyaltyError::OverMaximum {
            requested: rub(400),
            max: rub(350)
        })
    );
    assert!(f.ledger.open_holds(None).unwrap().is_empty());
    assert_eq!(f.card(ANNA, NOW).available, rub(350));
    // The op_id was not used up.
    assert_eq!(
        f.ledger
            .hold("h1", ANNA, rub(350), &check(rub(1_000)), NOW)
            .unwrap()
            .amount,
        rub(350)
    );
    let nothing_left = f.ledger.hold("h2", ANNA, rub(1), &check(rub(1_000)), NOW);
    assert_eq!(
        nothing_left,
        Err(LoyaltyError::OverMaximum {
            requested: rub(1),
            max: Kopecks::ZERO
        })
    );
}

fn hold_refuses_bad_amounts<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let bill = check(rub(1_000));
    let odd = f.ledger.hold("h1", ANNA, Kopecks(10_050), &bill, NOW);
    assert_eq!(odd, Err(LoyaltyError::NotAMultipleOfStep { step: rub(1) }));
    assert_eq!(
        f.ledger.hold("h1", ANNA, Kopecks::ZERO, &bill, NOW),
        Err(LoyaltyError::NonPositiveAmount)
    );
    assert_eq!(
        f.ledger.hold("h1", ANNA, rub(-100), &bill, NOW),
        Err(LoyaltyError::NonPositiveAmount)
    );
    assert!(f.ledger.open_holds(None).unwrap().is_empty());
}

fn void_releases_once_and_never_after_commit<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let bill = check(rub(1_000));
    let hold = f.hold("h1", ANNA, rub(300), rub(1_000));
    assert_eq!(f.ledger.void_hold("v1", hold, NOW), Ok(()));
    assert_eq!(f.card(ANNA, NOW).available, rub(350));
    // Twice, with the same and with a new op_id.
    assert_eq!(f.ledger.void_hold("v1", hold, NOW), Ok(()));
    assert_eq!(f.ledger.void_hold("v2", hold, NOW), Ok(()));
    let after_void = f.ledger.commit_payment("p1", ANNA, Some(hold), rub(100), &bill, NOW);
    assert_eq!(
        after_void,
        Err(LoyaltyError::HoldNotOpen {
            status: "voided".into()
        })
    );
    assert_eq!(f.card(ANNA, NOW).balance, rub(350));

    let committed = f.hold("h2", ANNA, rub(100), rub(1_000));
    f.ledger
        .commit_payment("p2", ANNA, Some(committed), rub(100), &bill, NOW)
        .unwrap();
    let void_after_commit = f.ledger.void_hold("v3", committed, NOW);
    assert_eq!(
        void_after_commit,
        Err(LoyaltyError::HoldNotOpen {
            status: "committed".into()
        })
    );
    assert_eq!(
        f.ledger.void_hold("v1", committed, NOW),
        Err(LoyaltyError::OperationIdConflict)
    );
    assert_eq!(f.ledger.void_hold("v4", 9_999, NOW), Err(LoyaltyError::UnknownHold));
    // 350 - 100 spent + 5 % of 900.
    assert_eq!(f.card(ANNA, NOW).balance, rub(295));
}

fn reset_holds_voids_every_open_hold_of_the_guest<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    f.hold("h1", ANNA, rub(100), rub(1_000));
    f.hold("h2", ANNA, rub(50), rub(1_000));
    f.hold("h3", IVAN, rub(100), rub(1_000));
    assert_eq!(f.ledger.reset_holds(ANNA, NOW).unwrap(), 2);
    assert_eq!(f.card(ANNA, NOW).available, rub(350));
    assert_eq!(f.ledger.open_holds(None).unwrap().len(), 1);
    assert_eq!(f.ledger.reset_holds(ANNA, NOW).unwrap(), 0);
}

fn holds_expire_and_cannot_be_committed<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let bill = check(rub(1_000));
    let hold = f.hold("h1", ANNA, rub(300), rub(1_000));
    assert_eq!(f.quote(ANNA, rub(1_000), NOW + 899).limits[0].amount, rub(50));
    // Past its time the hold no longer counts, even before it is marked.
    assert_eq!(f.quote(ANNA, rub(1_000), NOW + 900).limits[0].amount, rub(350));
    assert_eq!(f.card(ANNA, NOW + 900).available, rub(350));
    assert_eq!(f.ledger.expire_holds(NOW + 899).unwrap(), 0);
    assert_eq!(f.ledger.expire_holds(NOW + 900).unwrap(), 1);
    assert_eq!(f.ledger.expire_holds(NOW + 900).unwrap(), 0);
    assert!(f.ledger.open_holds(None).unwrap().is_empty());
    let late = f
        .ledger
        .commit_payment("p1", ANNA, Some(hold), rub(100), &bill, NOW + 900);
    assert_eq!(
        late,
        Err(LoyaltyError::HoldNotOpen {
            status: "expired".into()
        })
    );
    assert_eq!(f.ledger.void_hold("v1", hold, NOW + 900), Ok(()));

    // A commit after the time is up is refused even when nobody ran expire_holds.
    let second = f.ledger.hold("h2", ANNA, rub(300), &bill, NOW + 1_000).unwrap().hold_id;
    let late = f
        .ledger
        .commit_payment("p2", ANNA, Some(second), rub(100), &bill, NOW + 1_900);
    assert_eq!(
        late,
        Err(LoyaltyError::HoldNotOpen {
            status: "expired".into()
        })
    );
    assert_eq!(f.card(ANNA, NOW + 1_900).balance, rub(350));
}

fn repeated_operation_ids_return_the_first_result<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let bill = check(rub(1_000));
    let first = f.ledger.hold("h1", ANNA, rub(300), &bill, NOW).unwrap();
    assert_eq!(f.ledger.hold("h1", ANNA, rub(300), &bill, NOW + 5), Ok(first.clone()));
    assert_eq!(f.ledger.open_holds(None).unwrap().len(), 1);
    assert_eq!(
        f.ledger.hold("h1", ANNA, rub(200), &bill, NOW),
        Err(LoyaltyError::OperationIdConflict)
    );
    assert_eq!(
        f.ledger.hold("h1", IVAN, rub(300), &bill, NOW),
        Err(LoyaltyError::OperationIdConflict)
    );

    let paid = f
        .ledger
        .commit_payment("p1", ANNA, Some(first.hold_id), rub(300), &bill, NOW)
        .unwrap();
    assert_eq!((paid.accrued, paid.balance_after), (rub(35), rub(85)));
    assert_eq!(
        f.ledger
            .commit_payment("p1", ANNA, Some(first.hold_id), rub(300), &bill, NOW + 60),
        Ok(paid)
    );
    assert_eq!(f.card(ANNA, NOW).balance, rub(85));
    assert_eq!(f.ledger.history(ANNA, 10).unwrap().len(), 3);
    let conflict = Some(LoyaltyError::OperationIdConflict);
    assert_eq!(
        f.ledger
            .commit_payment("p1", ANNA, Some(first.hold_id), rub(200), &bill, NOW)
            .err(),
        conflict
    );
    let other_check = f
        .ledger
        .commit_payment("p1", ANNA, Some(first.hold_id), rub(300), &check(rub(900)), NOW);
    assert_eq!(other_check.err(), conflict);
    // The hold is still found committed after the repeat, not re-used.
    assert_eq!(f.ledger.hold("h1", ANNA, rub(300), &bill, NOW), Ok(first));

    assert_eq!(f.ledger.credit("c1", ANNA, rub(100), "gift", NOW), Ok(rub(185)));
    assert_eq!(f.ledger.credit("c1", ANNA, rub(100), "gift", NOW + 1), Ok(rub(185)));
    assert_eq!(f.ledger.debit("c1", ANNA, rub(100), "gift", NOW).err(), conflict);
    assert_eq!(f.ledger.credit("c1", ANNA, rub(50), "gift", NOW).err(), conflict);
    assert_eq!(f.card(ANNA, NOW).balance, rub(185));
}

fn manual_debit_never_takes_held_bonuses<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    f.hold("h1", ANNA, rub(300), rub(1_000));
    let refused = f.ledger.debit("d1", ANNA, rub(100), "correction", NOW);
    assert_eq!(
        refused,
        Err(LoyaltyError::OverMaximum {
            requested: rub(100),
            max: rub(50)
        })
    );
    assert_eq!(f.ledger.debit("d1", ANNA, rub(50), "correction", NOW), Ok(rub(300)));
    assert_eq!(
        f.ledger.credit("c1", ANNA, Kopecks::ZERO, "x", NOW),
        Err(LoyaltyError::NonPositiveAmount)
    );
    let last = &f.ledger.history(ANNA, 1).unwrap()[0];
    assert_eq!(
        (last.kind.as_str(), last.amount, last.note.as_str()),
        ("manual_debit", rub(-50), "correction")
    );
}

fn daily_spend_limit_counts_holds_and_debits<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let bill = check(rub(10_000));
    f.ledger.credit("top-up", ANNA, rub(10_000), "test", NOW).unwrap();
    // A check under the regulars' threshold, so Anna stays in the group with the daily limit.
    let small = check(rub(5_000));
    let first = f.hold("h1", ANNA, rub(1_000), rub(5_000));
    f.ledger
        .commit_payment("p1", ANNA, Some(first), rub(1_000), &small, NOW)
        .unwrap();
    let daily = |q: &SpendQuote| {
        q.limits
            .iter()
            .find(|l| l.kind == SpendLimitKind::DailyLimit)
            .unwrap()
            .amount
    };
    assert_eq!(daily(&f.quote(ANNA, rub(10_000), NOW)), rub(2_000));

    f.hold("h2", ANNA, rub(1_500), rub(10_000));
    let q = f.quote(ANNA, rub(10_000), NOW);
    assert_eq!((daily(&q), q.max_spend), (rub(500), rub(500)));
    let over = f.ledger.hold("h3", ANNA, rub(600), &bill, NOW);
    assert_eq!(
        over,
        Err(LoyaltyError::OverMaximum {
            requested: rub(600),
            max: rub(500)
        })
    );
    f.hold("h3", ANNA, rub(500), rub(10_000));
    assert_eq!(f.quote(ANNA, rub(10_000), NOW).max_spend, Kopecks::ZERO);

    // Local midnight (21:00 UTC): the day's spending is forgotten, the holds have expired.
    let next_day = MIDNIGHT_UTC + 21 * 3600;
    assert_eq!(daily(&f.quote(ANNA, rub(10_000), next_day - 1)), rub(2_000));
    assert_eq!(f.quote(ANNA, rub(10_000), next_day).max_spend, rub(3_000));
}

fn accrual_is_on_the_part_not_paid_with_bonuses_after_the_discount<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let bill = check(rub(1_000));
    let q = f.quote(IVAN, rub(1_000), NOW);
    assert_eq!((q.amount_due, q.accrual_bp), (rub(950), 700));
    let hold = f.hold("h1", IVAN, rub(100), rub(1_000));
    let paid = f
        .ledger
        .commit_payment("p1", IVAN, Some(hold), rub(100), &bill, NOW)
        .unwrap();
    // 7 % of (950 - 100) = 59.50.
    assert_eq!(paid.accrued, Kopecks(5_950));
    assert_eq!(paid.accrued, q.accrual_for(rub(100)));
    assert_eq!(paid.balance_after, Kopecks(120_950));
    // The demo's earlier visits keep Ivan a regular.
    assert_eq!(paid.new_group, None);
    // Small checks keep their kopecks.
    let hold = f
        .ledger
        .hold("h2", IVAN, rub(10), &check(rub(40)), NOW)
        .unwrap()
        .hold_id;
    let paid = f
        .ledger
        .commit_payment("p2", IVAN, Some(hold), rub(10), &check(rub(40)), NOW)
        .unwrap();
    // 7 % of (38 - 10) = 1.96.
    assert_eq!(paid.accrued, Kopecks(196));
}

fn accrual_on_the_whole_amount_due_when_the_programme_says_so<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let program = f.ledger.program().unwrap();
    assert_eq!(program.accrual_basis, AccrualBasis::PaidPart, "the default basis");
    f.ledger
        .set_program(&ProgramSettings {
            accrual_basis: AccrualBasis::AmountDue,
            ..program
        })
        .unwrap();
    assert_eq!(f.ledger.program().unwrap().accrual_basis, AccrualBasis::AmountDue);
    let hold = f.hold("h1", IVAN, rub(100), rub(1_000));
    let paid = f
        .ledger
        .commit_payment("p1", IVAN, Some(hold), rub(100), &check(rub(1_000)), NOW)
        .unwrap();
    // 7 % of the whole 950 due, the 100 paid with bonuses included.
    assert_eq!(paid.accrued, Kopecks(6_650));
    assert_eq!(paid.balance_after, Kopecks(121_650));
}

fn guests_move_up_at_the_threshold<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let pay = |f: &mut Fixture<L>, op: &str, guest: GuestId, subtotal: Kopecks| {
        f.ledger
            .commit_payment(op, guest, None, Kopecks::ZERO, &check(subtotal), NOW)
            .unwrap()
    };
    assert_eq!(pay(&mut f, "p1", OLEG, Kopecks(999_999)).new_group, None);
    let moved = pay(&mut f, "p2", OLEG, Kopecks(1));
    assert_eq!(moved.new_group.as_deref(), Some("Постоянный"));
    assert_eq!(f.card(OLEG, NOW).group.name, "Постоянный");
    // Now with the regulars' 5 % discount: 42 000 -> 39 900 due (49 900 in the period), then
    // 200 -> 190 due (50 090).
    assert_eq!(pay(&mut f, "p3", OLEG, rub(42_000)).new_group, None);
    assert_eq!(pay(&mut f, "p4", OLEG, rub(200)).new_group.as_deref(), Some("VIP"));
    assert_eq!(f.card(OLEG, NOW).group.discount_bp, 1000);

    // Staff are never moved by spend.
    let staff_group = f.ledger.guest_group_id(PETR).unwrap();
    assert_eq!(pay(&mut f, "p5", PETR, rub(100_000)).new_group, None);
    assert_eq!(f.ledger.guest_group_id(PETR).unwrap(), staff_group);
}

fn vip_is_never_downgraded_but_regulars_are_after_the_period<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let pay = |f: &mut Fixture<L>, op: &str, guest: GuestId, now: UnixSeconds| {
        f.ledger
            .commit_payment(op, guest, None, Kopecks::ZERO, &check(rub(100)), now)
            .unwrap()
    };
    let vip = f.ledger.guest_group_id(MARIA).unwrap();
    let regular = f.ledger.guest_group_id(IVAN).unwrap();
    // Within the period the demo's earlier visits keep both where they are.
    assert_eq!(pay(&mut f, "p1", IVAN, NOW).new_group, None);
    assert_eq!(pay(&mut f, "p2", MARIA, NOW).new_group, None);

    let later = NOW + 400 * DAY;
    assert_eq!(pay(&mut f, "p3", MARIA, later).new_group, None);
    assert_eq!(f.ledger.guest_group_id(MARIA).unwrap(), vip);
    assert_eq!(pay(&mut f, "p4", IVAN, later).new_group.as_deref(), Some("Гость"));
    assert_ne!(f.ledger.guest_group_id(IVAN).unwrap(), regular);
    assert_eq!(f.card(IVAN, later).group.name, "Гость");
}

fn stamps_increment_and_stop_at_the_reward<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let collected = |f: &Fixture<L>| f.card(ANNA, NOW).stamps.iter().map(|s| s.collected).collect::<Vec<_>>();
    let mut seen = Vec::new();
    for n in 0..3 {
        f.ledger
            .commit_payment(&format!("p{n}"), ANNA, None, Kopecks::ZERO, &check(rub(100)), NOW)
            .unwrap();
        seen.push(collected(&f));
    }
    assert_eq!(seen, [vec![5, 1], vec![6, 2], vec![6, 3]]);
    // A repeated payment adds nothing.
    f.ledger
        .commit_payment("p2", ANNA, None, Kopecks::ZERO, &check(rub(100)), NOW)
        .unwrap();
    assert_eq!(collected(&f), [6, 3]);
}

fn the_ledger_survives_reopening<L: Backing>() {
    let mut f = Fixture::<L>::demo();
    let hold = f.hold("h1", ANNA, rub(200), rub(1_000));
    f.ledger.credit("c1", IVAN, rub(100), "test", NOW).unwrap();
    let history = f.ledger.history(IVAN, 10).unwrap();
    f.reopen();
    let anna = f.card(ANNA, NOW);
    assert_eq!((anna.balance, anna.available), (rub(350), rub(150)));
    assert_eq!(f.card(IVAN, NOW).balance, rub(1_350));
    assert_eq!(f.ledger.history(IVAN, 10).unwrap(), history);
    assert_eq!(f.ledger.program().unwrap().name, "GetMeBack");
    assert!(!f.ledger.seed_demo(NOW).unwrap());
    let paid = f
        .ledger
        .commit_payment("p1", ANNA, Some(hold), rub(200), &check(rub(1_000)), NOW)
        .unwrap();
    assert_eq!(paid.balance_after, rub(190));
    f.reopen();
    assert_eq!(f.card(ANNA, NOW).balance, rub(190));
}

#[test]
fn concurrent_tills_cannot_overspend() {
    let mut f = Fixture::<Ledger>::empty();
    f.ledger.set_program(&plain_program()).unwrap();
    let group = f.ledger.add_group(&plain_group("Без лимитов", Kopecks::ZERO)).unwrap();
    let guest = f
        .ledger
        .add_guest("Тест", Some("+7 900 000-00-01"), group, NOW)
        .unwrap();
    f.ledger.credit("c1", guest, rub(100), "test", NOW).unwrap();

    const TILLS: usize = 8;
    const ATTEMPTS: usize = 3;
    let start = Arc::new(Barrier::new(TILLS));
    let tills: Vec<_> = (0..TILLS)
        .map(|till| {
            let path = ledger_path(f.dir.path());
            let start = Arc::clone(&start);
            std::thread::Builder::new()
                .name(format!("till-{till}"))
                .spawn(move || {
                    let mut ledger = Ledger::open(&path).unwrap();
                    start.wait();
                    let mut placed = 0;
                    for attempt in 0..ATTEMPTS {
                        let op_id = format!("till{till}-hold{attempt}");
                        match ledger.hold(&op_id, guest, rub(10), &check(rub(1_000_000)), NOW) {
                            Ok(_) => placed += 1,
                            Err(LoyaltyError::OverMaximum { .. }) => {}
                            Err(other) => panic!("unexpected error: {other}"),
                        }
                    }
                    placed
                })
                .unwrap()
        })
        .collect();
    let placed: usize = tills.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(placed, 10);
    assert_eq!(f.ledger.open_holds(Some(guest)).unwrap().len(), 10);
    assert_eq!(f.card(guest, NOW).available, Kopecks::ZERO);
}

/// What the model remembers of a placed hold.
struct PlacedHold {
    id: HoldId,
    guest: GuestId,
    amount: Kopecks,
}

/// One of the last few holds (most are still open), or now and then none.
fn recent<'a>(holds: &'a [PlacedHold], rng: &mut Rng) -> Option<&'a PlacedHold> {
    holds.iter().rev().nth(rng.below(5) as usize)
}

fn random_operations_keep_the_ledger_consistent<L: Backing>() {
    let mut f = Fixture::<L>::empty();
    let program = plain_program();
    f.ledger.set_program(&program).unwrap();
    let open = f.ledger.add_group(&plain_group("Открытая", Kopecks::ZERO)).unwrap();
    // Assigned by hand (rank 0): two ranked groups may not share a threshold.
    let limited = f
        .ledger
        .add_group(&NewGroup {
            rank: 0,
            ..plain_group("С лимитом", rub(300))
        })
        .unwrap();
    // Every expected figure comes from the model, which knows the programme's rules alone.
    let mut model = LedgerModel::new(Programme {
        max_check_bp: program.max_check_bp,
        spend_step: program.spend_step.0,
        hold_ttl_secs: program.hold_ttl_secs,
        utc_offset_minutes: program.utc_offset_minutes,
    });
    let rules = |daily_spend_limit: Kopecks| GroupRules {
        discount_bp: 0,
        accrual_bp: 500,
        daily_spend_limit: daily_spend_limit.0,
    };
    let mut guests: Vec<GuestId> = Vec::new();
    for (n, (group, limit)) in [(open, Kopecks::ZERO), (limited, rub(300)), (open, Kopecks::ZERO)]
        .into_iter()
        .enumerate()
    {
        let guest = f.ledger.add_guest(&format!("Гость {n}"), None, group, NOW).unwrap();
        model.add_guest(guest, rules(limit));
        let expected = model.credit(guest, rub(500));
        assert_eq!(
            f.ledger.credit(&format!("seed{n}"), guest, rub(500), "seed", NOW),
            expected
        );
        guests.push(guest);
    }

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut now = NOW;
    let mut holds: Vec<PlacedHold> = Vec::new();
    // How often each outcome came up: a sequence that never reaches a refusal or a limit would
    // check little.
    let mut outcomes: BTreeMap<&'static str, u32> = BTreeMap::new();
    for step in 0..400 {
        let op_id = format!("op{step}");
        let guest = guests[rng.below(guests.len() as i64) as usize];
        let bill = check(rub(rng.below(2_000)));
        match rng.below(7) {
            0 | 1 => {
                // Mostly whole roubles; now and then an amount off the step.
                let amount = Kopecks(rng.below(400) * 100 + if rng.below(10) == 0 { 50 } else { 0 });
                let expected = model.hold(guest, amount, bill.subtotal, now);
                let got = f.ledger.hold(&op_id, guest, amount, &bill, now);
                match (&got, expected) {
                    (Ok(receipt), Ok(terms)) => {
                        assert_eq!((receipt.amount, receipt.expires_at), (terms.amount, terms.expires_at));
                        model.placed(receipt.hold_id, guest, terms);
                        holds.push(PlacedHold {
                            id: receipt.hold_id,
                            guest,
                            amount,
                        });
                        // A retry returns the same receipt.
                        assert_eq!(f.ledger.hold(&op_id, guest, amount, &bill, now), got, "step {step}");
                        *outcomes.entry("hold").or_default() += 1;
                    }
                    (got, expected) => {
                        assert_eq!(got.clone().map(|_| ()), expected.map(|_| ()), "step {step}: hold");
                        *outcomes.entry(refusal(got)).or_default() += 1;
                    }
                }
            }
            2 => {
                let (hold, guest, spent) = match recent(&holds, &mut rng) {
                    Some(h) => (Some(h.id), h.guest, Kopecks(rng.below(h.amount.0 / 100 + 2) * 100)),
                    None => (None, guest, Kopecks::ZERO),
                };
                let expected = model.pay(guest, hold, spent, bill.subtotal, now);
                let got = f.ledger.commit_payment(&op_id, guest, hold, spent, &bill, now);
                assert_eq!(
                    got.clone().map(|r| (r.spent, r.accrued, r.balance_after, r.new_group)),
                    expected.map(|p| (p.spent, p.accrued, p.balance_after, None)),
                    "step {step}: payment"
                );
                match &got {
                    Ok(_) => {
                        let again = f.ledger.commit_payment(&op_id, guest, hold, spent, &bill, now);
                        assert_eq!(again, got, "step {step}");
                        *outcomes.entry("payment").or_default() += 1;
                    }
                    Err(_) => *outcomes.entry(refusal(&got)).or_default() += 1,
                }
            }
            3 => {
                if let Some(h) = recent(&holds, &mut rng) {
                    let expected = model.void(h.id, now);
                    let got = f.ledger.void_hold(&op_id, h.id, now);
                    assert_eq!(got, expected, "step {step}: void");
                    *outcomes
                        .entry(if got.is_ok() { "void" } else { refusal(&got) })
                        .or_default() += 1;
                }
            }
            4 => {
                now += rng.below(600);
                if rng.below(2) == 0 {
                    f.ledger.expire_holds(now).unwrap();
                    model.lapse(now);
                }
            }
            5 => {
                let amount = rub(rng.below(300) + 1);
                let expected = model.credit(guest, amount);
                assert_eq!(
                    f.ledger.credit(&op_id, guest, amount, "random", now),
                    expected,
                    "step {step}: credit"
                );
            }
            _ => {
                let amount = rub(rng.below(300) + 1);
                let expected = model.debit(guest, amount, now);
                let got = f.ledger.debit(&op_id, guest, amount, "random", now);
                assert_eq!(got, expected, "step {step}: debit");
                *outcomes
                    .entry(if got.is_ok() { "debit" } else { refusal(&got) })
                    .or_default() += 1;
            }
        }
        f.assert_invariants();
        for &guest in &guests {
            let card = f.card(guest, now);
            assert_eq!(
                (card.balance, card.available),
                (model.balance(guest), model.available(guest, now)),
                "step {step}: guest {guest}"
            );
            assert_eq!(
                f.quote(guest, rub(1_500), now).max_spend,
                model.max_spend(guest, rub(1_500), now),
                "step {step}: guest {guest}"
            );
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    for outcome in [
        "hold",
        "payment",
        "void",
        "debit",
        "over the maximum",
        "not a multiple of the step",
        "hold not open",
        "commit over the hold",
    ] {
        assert!(outcomes.contains_key(outcome), "{outcome} never came up: {outcomes:?}");
    }
}

/// A refusal's kind, for the tally.
fn refusal<T>(result: &Result<T, LoyaltyError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(LoyaltyError::OverMaximum { .. }) => "over the maximum",
        Err(LoyaltyError::NotAMultipleOfStep { .. }) => "not a multiple of the step",
        Err(LoyaltyError::NonPositiveAmount) => "not positive",
        Err(LoyaltyError::HoldNotOpen { .. }) => "hold not open",
        Err(LoyaltyError::CommitOverHold { .. }) => "commit over the hold",
        Err(_) => "other",
    }
}

on_both_ledgers!(
    demo_is_seeded_once,
    identifies_by_every_identifier_kind,
    identifies_phones_in_several_spellings,
    gift_codes_give_a_gift_once,
    identifiers_are_stored_as_identify_reads_them,
    refuses_unknown_empty_and_overlong_codes,
    daily_operations_limit_resets_at_local_midnight,
    calculate_reports_each_binding_limit,
    hold_then_commit_for_less_releases_the_rest,
    commit_checks_the_hold,
    hold_over_the_maximum_stores_nothing,
    hold_refuses_bad_amounts,
    void_releases_once_and_never_after_commit,
    reset_holds_voids_every_open_hold_of_the_guest,
    holds_expire_and_cannot_be_committed,
    repeated_operation_ids_return_the_first_result,
    manual_debit_never_takes_held_bonuses,
    daily_spend_limit_counts_holds_and_debits,
    accrual_is_on_the_part_not_paid_with_bonuses_after_the_discount,
    accrual_on_the_whole_amount_due_when_the_programme_says_so,
    guests_move_up_at_the_threshold,
    vip_is_never_downgraded_but_regulars_are_after_the_period,
    stamps_increment_and_stop_at_the_reward,
    the_ledger_survives_reopening,
    random_operations_keep_the_ledger_consistent,
);

/// A payment abandoned at every point of its two transactions (the request's future dropped, as
/// when a till's connection breaks mid-request) leaves nothing half done: on the one pooled
/// connection, another guest's write commits nothing of it, the same hold and commit asked again
/// are answered exactly once, and the balance is what the payments make it.
#[cfg(not(windows))]
#[test]
fn postgres_a_payment_abandoned_at_any_point_is_all_or_nothing() {
    use loyalty_till::loyalty::engine::Op;
    let Some(url) = server_support::pg_url() else {
        return;
    };
    let mut ledger = PgLedger::empty_on_one_connection(&url).expect("PostgreSQL for the ledger suite");
    assert!(ledger.seed_demo(NOW).unwrap());
    let mut expected = ledger.guest_card(ANNA, NOW).unwrap().balance;
    let payments = 30;
    let mut abandoned = 0;
    for polls in 0..payments {
        let (hold_key, pay_key) = (format!("h{polls}"), format!("p{polls}"));
        let hold = Op::Hold {
            op_key: hold_key.clone(),
            guest: ANNA,
            amount: rub(10),
            check: check(rub(1_000)),
        };
        abandoned += usize::from(!ledger.run_abandoned(hold, polls, NOW));
        // Another guest's write next on the connection: it must not carry anything of the
        // abandoned transaction into its own commit.
        ledger.credit(&format!("c{polls}"), IVAN, rub(1), "test", NOW).unwrap();
        let hold = ledger.hold(&hold_key, ANNA, rub(10), &check(rub(1_000)), NOW).unwrap();
        let commit = Op::Commit {
            op_key: pay_key.clone(),
            guest: ANNA,
            hold: Some(hold.hold_id),
            spent: rub(10),
            check: check(rub(1_000)),
        };
        abandoned += usize::from(!ledger.run_abandoned(commit, polls, NOW));
        ledger.credit(&format!("d{polls}"), IVAN, rub(1), "test", NOW).unwrap();
        let paid = ledger
            .commit_payment(&pay_key, ANNA, Some(hold.hold_id), rub(10), &check(rub(1_000)), NOW)
            .unwrap();
        expected = expected - rub(10) + paid.accrued;
        assert_eq!(paid.balance_after, expected, "payment {polls}");
    }
    assert!(abandoned >= 10, "only {abandoned} operations were abandoned half way");
    assert_eq!(ledger.guest_card(ANNA, NOW).unwrap().balance, expected);
    assert!(ledger.open_holds(None).unwrap().is_empty());
    let history = ledger.history(ANNA, 1_000).unwrap();
    for kind in ["spend", "accrual"] {
        let count = history.iter().filter(|h| h.kind.as_str() == kind).count();
        assert_eq!(count, payments, "{kind} postings");
    }
    if let Err(violations) = ledger.check_invariants() {
        panic!("ledger invariants broken: {violations}");
    }
}
