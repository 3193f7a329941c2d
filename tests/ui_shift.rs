#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! «Закрыть смену» on the real app, driven by role and label through the AccessKit tree (no
//! GPU), on a real SQLite file: a hold left open by another till process is listed and released,
//! the shift report shows the day's check and is saved as CSV in the log export's folder;
//! afterwards the ledger itself is checked.

mod common;

use common::till::{Till, assert_touch_sized, open_till};

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use loyalty_till::domain::CheckInfo;
use loyalty_till::domain::ScanKind;
use loyalty_till::ledger::Ledger;
use loyalty_till::money::Kopecks;
use loyalty_till::workflow::{Screen, ShiftStep};

impl Till {
    fn wait_for_step(&mut self, what: &str, step: fn(&ShiftStep) -> bool) {
        self.wait_for(what, |s| {
            matches!(&s.screen, Screen::Shift(now) if step(now))
                || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
        });
        assert!(
            matches!(&self.state().screen, Screen::Shift(now) if step(now)),
            "{what}: screen {:?}, notice {:?}",
            self.state().screen,
            self.state().notice
        );
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn anna(ledger: &mut Ledger) -> loyalty_till::domain::GuestCard {
    ledger
        .identify("100001", ScanKind::Manual, now())
        .expect("demo guest 100001")
        .card
}

#[test]
fn a_hold_left_open_is_released_and_the_shift_report_is_saved() {
    let mut till = open_till((420.0, 2400.0));
    till.pay_demo_order(None);
    till.click("Новый заказ");
    // 350 + 5 % of 1 070 = 403,50.
    let mut ledger = till.ledger();
    assert_eq!(anna(&mut ledger).balance, Kopecks(40_350));
    // Another run of the till held 100,00 and was stopped before the payment.
    let guest = anna(&mut ledger).guest_id;
    let check = CheckInfo {
        subtotal: Kopecks(50_000),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    };
    ledger
        .hold("stopped-till-1", guest, Kopecks(10_000), &check, now())
        .expect("hold");
    drop(ledger);

    // The report goes where the logs are exported: set in the menu.
    let out = till.dir.path().join("exports");
    till.click("Меню");
    till.harness
        .get_by_role(Role::TextInput)
        .set_text_value_accesskit(&out.display().to_string());
    till.settle();
    till.click("Закрыть смену");
    till.wait_for_step("the list", |s| matches!(s, ShiftStep::List { ends: Some(_) }));
    assert!(till.sees("Бонусы удержаны, оплата не завершена: 100,00"));
    assert!(till.sees("Сервер не нужен"));
    assert_touch_sized(&till, "shift: list");
    till.click("Отменить холд (вернуть бонусы гостю)");
    till.wait_for_step(
        "the list read again",
        |s| matches!(s, ShiftStep::List { ends: Some(ends) } if ends.is_empty()),
    );
    assert!(till.sees("Всё завершено"));
    let mut ledger = till.ledger();
    assert!(ledger.open_holds(None).unwrap().is_empty(), "no hold stays open");
    assert_eq!(anna(&mut ledger).balance, Kopecks(40_350), "nothing debited");
    ledger.check_invariants().expect("ledger invariants");

    till.click("Отчёт за смену");
    till.wait_for_step("the report", |s| matches!(s, ShiftStep::Report { report: Some(_), .. }));
    let Screen::Shift(ShiftStep::Report {
        report: Some(report), ..
    }) = &till.state().screen
    else {
        unreachable!()
    };
    assert_eq!(
        (report.checks, report.spent, report.accrued),
        (1, Kopecks::ZERO, Kopecks(5_350))
    );
    assert!(till.sees("Чеков с гостем"));
    assert!(till.sees("53,50"), "the accrual is on screen");
    assert_touch_sized(&till, "shift: report");
    till.click("Сохранить отчёт (CSV)");
    till.wait_for_step("the report saved", |s| {
        matches!(s, ShiftStep::Report { saved: Some(_), .. })
    });
    let Screen::Shift(ShiftStep::Report { saved: Some(path), .. }) = &till.state().screen else {
        unreachable!()
    };
    assert!(path.starts_with(&out), "saved in the export folder: {path:?}");
    let csv = std::fs::read_to_string(path).expect("the file");
    assert!(csv.starts_with('\u{feff}'), "a BOM for Excel");
    assert!(csv.contains("\r\nЧеков с гостем;1\r\n"), "{csv}");
    assert!(csv.contains("\r\nНачислено бонусов;53,50\r\n"), "{csv}");
    assert!(
        !csv.contains("100001") && !csv.contains("Анна"),
        "no card, phone or name: {csv}"
    );
    assert!(till.sees("Сохранён:"));
}

/// A return the server has not confirmed is listed by what it gives back: the units of the
/// check's lines, or the rest of the check (their amounts are the server's to work out), never
/// as 0,00.
#[test]
fn an_unsent_return_by_lines_or_of_the_rest_says_what_it_returns() {
    use loyalty_till::domain::{LooseEnd, LooseEndKind};
    use loyalty_till::workflow::Event;
    let mut till = open_till((420.0, 900.0));
    till.harness.state_mut().dispatch(Event::OpenShift);
    let request = till.state().waiting.expect("the list asked for").0;
    let unsent = |op_id: &str, amount, units| LooseEnd {
        kind: LooseEndKind::UnsentReturn,
        op_id: op_id.to_string(),
        hold: None,
        amount: Kopecks(amount),
        units,
        needs_server: true,
    };
    till.harness.state_mut().dispatch(Event::LooseEndsFound {
        request,
        result: Ok(vec![unsent("r1", 0, 2), unsent("r2", 0, 0), unsent("r3", 40_000, 0)]),
    });
    till.settle();
    assert!(till.sees("Возврат по строкам чека не отправлен на сервер: 2 шт."));
    assert!(till.sees("Возврат всего остатка чека не отправлен на сервер"));
    assert!(till.sees("Возврат не отправлен на сервер: 400,00"));
    assert!(!till.sees("Возврат не отправлен на сервер: 0,00"));
}
