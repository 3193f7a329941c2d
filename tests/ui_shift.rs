#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! «Закрыть смену» on the real app, driven by role and label through the AccessKit tree (no
//! GPU), on a real SQLite file: a hold left open by another till process is listed and released,
//! the shift report shows the day's check and is saved as CSV in the log export's folder;
//! afterwards the ledger itself is checked.

mod common;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{AccessKitNode, NodeT as _, Queryable as _};
use loyalty_till::config::Config;
use loyalty_till::domain::CheckInfo;
use loyalty_till::domain::ScanKind;
use loyalty_till::i18n::Lang;
use loyalty_till::ledger::Ledger;
use loyalty_till::money::Kopecks;
use loyalty_till::ui::TillApp;
use loyalty_till::workflow::{Screen, ShiftStep, State};
use std::time::Duration;

struct Till {
    harness: Harness<'static, TillApp>,
    dir: tempfile::TempDir,
}

fn open_till(size: (f32, f32)) -> Till {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        language: Lang::Ru,
        ..Config::default()
    };
    let harness = common::open_demo_app(dir.path(), config, size);
    Till { harness, dir }
}

impl Till {
    fn state(&self) -> &State {
        self.harness.state().state()
    }

    fn wait_for(&mut self, what: &str, done: impl Fn(&State) -> bool) {
        common::step_until(&mut self.harness, Duration::from_secs(10), what, done);
    }

    fn settle(&mut self) {
        for _ in 0..30 {
            self.harness.step();
        }
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_role_and_label(Role::Button, label).scroll_to_me();
        self.settle();
        self.harness.get_by_role_and_label(Role::Button, label).click();
        self.harness.step();
        self.harness.step();
    }

    fn click_containing(&mut self, text: &str) {
        let button = |text: String| {
            move |node: &AccessKitNode<'_>| {
                node.role() == Role::Button && node.label().is_some_and(|l| l.contains(&text))
            }
        };
        self.harness.get_by(button(text.to_string())).scroll_to_me();
        self.settle();
        self.harness.get_by(button(text.to_string())).click();
        self.harness.step();
        self.harness.step();
    }

    fn sees(&self, text: &str) -> bool {
        self.harness.query_all_by_label_contains(text).next().is_some()
    }

    fn type_on_keypad(&mut self, digits: &str) {
        for d in digits.chars() {
            self.click(&d.to_string());
        }
    }

    fn ledger(&self) -> Ledger {
        Ledger::open(&self.dir.path().join("demo.sqlite")).expect("ledger opens")
    }

    /// Анна (100001, 350,00) pays the demo order of 1 070,00; `spend` bonuses or keeps them.
    fn pay_demo_order(&mut self, spend: Option<&str>) {
        self.click("Демо-заказ");
        self.click("GetMeBack");
        self.type_on_keypad("100001");
        self.click("Найти гостя");
        self.wait_for("the guest card", |s| s.guest.is_some() || s.notice.is_some());
        self.click("Касса");
        self.wait_for("the payment choice", |s| {
            matches!(s.screen, Screen::PaymentChoice { .. })
        });
        match spend {
            Some(amount) => {
                self.click_containing("Списать бонусы");
                self.click("Очистить");
                self.type_on_keypad(amount);
            }
            None => self.click_containing("Копить бонусы"),
        }
        self.click("Точная сумма");
        self.click("Провести оплату");
        self.wait_for("the success message", |s| {
            matches!(s.screen, Screen::Done { .. }) || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
        });
        assert!(
            matches!(self.state().screen, Screen::Done { .. }),
            "notice: {:?}",
            self.state().notice
        );
    }

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

/// Every button and text field on the screen is at least 56 logical pixels tall.
fn assert_touch_sized(till: &Till, screen: &str) {
    let mut checked = 0;
    for role in [Role::Button, Role::TextInput] {
        for node in till.harness.query_all_by_role(role) {
            let rect = node.rect();
            assert!(
                rect.height() >= 55.9,
                "{screen}: {role:?} {:?} is {} px tall",
                node.accesskit_node().label(),
                rect.height()
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "{screen}: only {checked} controls found");
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
