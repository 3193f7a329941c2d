//! The real till app in a kittest harness on a demo database, driven by role and label through
//! the AccessKit tree, with the demo payment most till flows start from.

use super::{open_demo_app, step_until};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{AccessKitNode, NodeT as _, Queryable as _};
use loyalty_till::config::Config;
use loyalty_till::i18n::Lang;
use loyalty_till::ledger::Ledger;
use loyalty_till::ui::TillApp;
use loyalty_till::workflow::{Screen, State};
use std::time::Duration;

pub struct Till {
    pub harness: Harness<'static, TillApp>,
    pub dir: tempfile::TempDir,
}

pub fn open_till(size: (f32, f32)) -> Till {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        language: Lang::Ru,
        ..Config::default()
    };
    let harness = open_demo_app(dir.path(), config, size);
    Till { harness, dir }
}

impl Till {
    pub fn state(&self) -> &State {
        self.harness.state().state()
    }

    pub fn wait_for(&mut self, what: &str, done: impl Fn(&State) -> bool) {
        step_until(&mut self.harness, Duration::from_secs(10), what, done);
    }

    pub fn settle(&mut self) {
        for _ in 0..30 {
            self.harness.step();
        }
    }

    pub fn click(&mut self, label: &str) {
        self.harness.get_by_role_and_label(Role::Button, label).scroll_to_me();
        self.settle();
        self.harness.get_by_role_and_label(Role::Button, label).click();
        self.harness.step();
        self.harness.step();
    }

    pub fn click_containing(&mut self, text: &str) {
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

    pub fn sees(&self, text: &str) -> bool {
        self.harness.query_all_by_label_contains(text).next().is_some()
    }

    pub fn type_on_keypad(&mut self, digits: &str) {
        for d in digits.chars() {
            self.click(&d.to_string());
        }
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::open(&self.dir.path().join("demo.sqlite")).expect("ledger opens")
    }

    /// Анна (100001, 350,00) pays the demo order of 1 070,00; `spend` bonuses or keeps them.
    pub fn pay_demo_order(&mut self, spend: Option<&str>) {
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
}

/// Every button and text field on the screen is at least 56 logical pixels tall.
pub fn assert_touch_sized(till: &Till, screen: &str) {
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
