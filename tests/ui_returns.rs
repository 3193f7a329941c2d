#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! «Возврат чека» on the real app, driven by role and label through the AccessKit tree (no
//! GPU), on a real SQLite file: from the success screen and from the menu, in full and in part;
//! afterwards the ledger itself is checked.

mod common;

use common::till::{Till, assert_touch_sized, open_till};

use loyalty_till::domain::ScanKind;
use loyalty_till::ledger::Ledger;
use loyalty_till::money::Kopecks;
use loyalty_till::workflow::{ReturnStep, Screen};

impl Till {
    fn wait_for_step(&mut self, what: &str, step: fn(&ReturnStep) -> bool) {
        self.wait_for(what, |s| {
            matches!(&s.screen, Screen::Returns(now) if step(now))
                || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
        });
        assert!(
            matches!(&self.state().screen, Screen::Returns(now) if step(now)),
            "{what}: screen {:?}, notice {:?}",
            self.state().screen,
            self.state().notice
        );
    }
}

fn anna_balance(ledger: &mut Ledger) -> Kopecks {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    ledger
        .identify("100001", ScanKind::Manual, now)
        .expect("demo guest 100001")
        .card
        .balance
}

#[test]
fn the_check_just_paid_is_returned_in_full_from_the_success_screen() {
    let mut till = open_till((420.0, 2400.0));
    till.pay_demo_order(Some("200"));
    // 350 − 200 + 5 % of 870 = 193,50.
    assert_eq!(anna_balance(&mut till.ledger()), Kopecks(19_350));

    till.click("Возврат этого чека");
    till.wait_for_step("the paid check chosen", |s| matches!(s, ReturnStep::Choose { .. }));
    assert!(till.sees("Анна Смирнова"));
    assert_touch_sized(&till, "returns: choose");
    till.click("Вернуть полностью: 1\u{a0}070,00");
    till.wait_for_step("the preview", |s| matches!(s, ReturnStep::Preview { .. }));
    assert!(till.sees("+200,00"), "the bonuses spent come back");
    assert!(till.sees("−43,50"), "the accrual is taken back");
    assert!(till.sees("Группа гостя не меняется"));
    assert_eq!(
        anna_balance(&mut till.ledger()),
        Kopecks(19_350),
        "the preview changes nothing"
    );
    assert_touch_sized(&till, "returns: preview");

    till.click("Подтвердить возврат");
    till.wait_for_step("the return made", |s| matches!(s, ReturnStep::Done { .. }));
    assert!(till.sees("возвращён"));
    assert!(till.sees("Возврат проведён"));

    let mut ledger = till.ledger();
    assert_eq!(
        anna_balance(&mut ledger),
        Kopecks(35_000),
        "everything is back as before"
    );
    ledger.check_invariants().expect("ledger invariants");
    till.click("Готово");
    assert_eq!(till.state().screen, Screen::Idle);
}

#[test]
fn a_part_of_today_s_check_is_returned_from_the_menu() {
    let mut till = open_till((1024.0, 2400.0));
    till.pay_demo_order(None);
    // 350 + 5 % of 1 070 = 403,50.
    assert_eq!(anna_balance(&mut till.ledger()), Kopecks(40_350));
    till.click("Новый заказ");

    till.click("Меню");
    till.click("Возврат чека");
    till.wait_for("today's checks", |s| {
        matches!(&s.screen, Screen::Returns(ReturnStep::Find { checks: Some(_) }))
    });
    assert_touch_sized(&till, "returns: find");
    till.click_containing("Анна Смирнова · 1\u{a0}070,00");
    till.wait_for_step("the check chosen", |s| matches!(s, ReturnStep::Choose { .. }));

    // More than the check: refused on screen, nothing asked of the ledger.
    till.type_on_keypad("2000");
    till.click("Вернуть часть");
    assert!(till.sees("Можно вернуть не больше 1\u{a0}070,00"));
    till.click("Очистить");
    till.type_on_keypad("535");
    till.click("Вернуть часть");
    till.wait_for_step("the preview", |s| matches!(s, ReturnStep::Preview { .. }));
    assert!(till.sees("−26,75"), "half the accrual is taken back");
    assert!(till.sees("Подарки и штампы возвращаются только с возвратом всего чека."));
    till.click("Подтвердить возврат");
    till.wait_for_step("the return made", |s| matches!(s, ReturnStep::Done { .. }));

    let mut ledger = till.ledger();
    assert_eq!(anna_balance(&mut ledger), Kopecks(40_350 - 2_675));
    ledger.check_invariants().expect("ledger invariants");

    // The rest of the check is what is left; the list says what was returned already.
    till.click("Готово");
    till.click("Меню");
    till.click("Возврат чека");
    till.wait_for("today's checks", |s| {
        matches!(&s.screen, Screen::Returns(ReturnStep::Find { checks: Some(_) }))
    });
    assert!(till.sees("уже возвращено 535,00"));
}

#[test]
fn an_accrual_already_spent_is_shown_as_not_recovered_and_the_balance_stays_at_zero() {
    let mut till = open_till((420.0, 2400.0));
    till.pay_demo_order(None);
    till.click("Новый заказ");
    // Анна spends almost everything elsewhere: 403,50 − 400,00 leaves 3,50 of the 53,50 accrued.
    let mut ledger = till.ledger();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let anna = ledger
        .identify("100001", ScanKind::Manual, now)
        .expect("Анна")
        .card
        .guest_id;
    ledger
        .debit("spent-elsewhere", anna, Kopecks(40_000), "test", now)
        .expect("debit");
    drop(ledger);

    till.click("Меню");
    till.click("Возврат чека");
    till.wait_for("today's checks", |s| {
        matches!(&s.screen, Screen::Returns(ReturnStep::Find { checks: Some(_) }))
    });
    till.click_containing("Анна Смирнова");
    till.wait_for_step("the check chosen", |s| matches!(s, ReturnStep::Choose { .. }));
    till.click("Вернуть полностью: 1\u{a0}070,00");
    till.wait_for_step("the preview", |s| matches!(s, ReturnStep::Preview { .. }));
    assert!(till.sees("−3,50"), "only what is there is taken back");
    assert!(
        till.sees("Не удалось списать 50,00"),
        "the shortfall is shown before confirming"
    );
    till.click("Подтвердить возврат");
    till.wait_for_step("the return made", |s| matches!(s, ReturnStep::Done { .. }));
    assert!(till.sees("Возврат проведён; не удалось списать 50,00"));

    let mut ledger = till.ledger();
    assert_eq!(anna_balance(&mut ledger), Kopecks::ZERO, "never below zero");
    ledger.check_invariants().expect("ledger invariants");
}

#[test]
fn one_line_of_the_check_is_returned_with_its_share_of_the_bonuses() {
    let mut till = open_till((420.0, 2400.0));
    till.pay_demo_order(Some("200"));
    assert_eq!(anna_balance(&mut till.ledger()), Kopecks(19_350));

    till.click("Возврат этого чека");
    till.wait_for_step("the paid check chosen", |s| matches!(s, ReturnStep::Choose { .. }));
    assert!(till.sees("Позиции чека: что возвращается"));
    assert!(till.sees("Выберите позиции: «+» у строки"));
    till.click("«Капучино»: вернуть ещё одну");
    till.click("«Круассан»: вернуть ещё одну");
    // One croissant was sold: a second «+» is refused on the spot.
    till.click("«Круассан»: вернуть ещё одну");
    assert_eq!(till.state().return_lines, vec![1, 1, 0]);
    till.click("«Круассан»: на одну меньше");
    assert_eq!(till.state().return_lines, vec![1, 0, 0]);
    assert_touch_sized(&till, "returns: lines");
    // One cappuccino of the 1 070,00 check: 220,00; of the 200,00 spent, 41,12 comes back and
    // of the 43,50 accrued, 8,94 is taken back.
    till.click("Вернуть выбранное: 220,00");
    till.wait_for_step("the preview", |s| matches!(s, ReturnStep::Preview { .. }));
    assert!(till.sees("Возвращаются позиции: Капучино × 1"));
    assert!(till.sees("+41,12"), "the bonuses spent on the line come back");
    assert!(till.sees("−8,94"), "the line's accrual is taken back");
    till.click("Подтвердить возврат");
    till.wait_for_step("the return made", |s| matches!(s, ReturnStep::Done { .. }));

    let mut ledger = till.ledger();
    assert_eq!(anna_balance(&mut ledger), Kopecks(19_350 + 4_112 - 894));
    ledger.check_invariants().expect("ledger invariants");

    // The check again: the cappuccino line says one is back, and only one more can go.
    till.click("Готово");
    till.click("Меню");
    till.click("Возврат чека");
    till.wait_for("today's checks", |s| {
        matches!(&s.screen, Screen::Returns(ReturnStep::Find { checks: Some(_) }))
    });
    till.click_containing("Анна Смирнова");
    till.wait_for_step("the check chosen", |s| matches!(s, ReturnStep::Choose { .. }));
    assert!(till.sees("2 × 220,00 · возвращено 1"));
    till.click("«Капучино»: вернуть ещё одну");
    till.click("«Капучино»: вернуть ещё одну");
    assert_eq!(till.state().return_lines, vec![1, 0, 0], "one cappuccino is left");
}
