#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The till's layout under a cashier's finger: on the side panel (420x700) and full screen
//! (1024x768), every screen shows its main action inside the window without scrolling, and a
//! notice appearing moves nothing the cashier is about to tap.

mod common;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use loyalty_till::config::Config;
use loyalty_till::ui::TillApp;
use loyalty_till::workflow::{Event, PaymentMode, Screen, State};
use std::time::Duration;

const SIZES: [(f32, f32); 2] = [(420.0, 700.0), (1024.0, 768.0)];

fn settle(harness: &mut Harness<'static, TillApp>) {
    for _ in 0..10 {
        harness.step();
    }
}

fn wait_for(harness: &mut Harness<'static, TillApp>, what: &str, done: impl Fn(&State) -> bool) {
    common::step_until(harness, Duration::from_secs(10), what, done);
    settle(harness);
}

/// The button labelled `label` lies wholly inside the window, as drawn (no scrolling asked for).
fn assert_on_screen(harness: &Harness<'static, TillApp>, size: (f32, f32), screen: &str, label: &str) {
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(size.0, size.1));
    let rect = harness.get_by_role_and_label(Role::Button, label).rect();
    assert!(
        window.contains_rect(rect),
        "{screen} at {}x{}: «{label}» at {rect:?} is outside the window",
        size.0,
        size.1
    );
}

/// The button labelled `label` is inside the window and wholly above the pinned action bar
/// whose button is `bar_button`: nothing of it is hidden under the bar.
fn assert_clear_of_action_bar(
    harness: &Harness<'static, TillApp>,
    size: (f32, f32),
    screen: &str,
    label: &str,
    bar_button: &str,
) {
    assert_on_screen(harness, size, screen, label);
    let rect = harness.get_by_role_and_label(Role::Button, label).rect();
    let bar_top = harness.get_by_role_and_label(Role::Button, bar_button).rect().top() - 8.0;
    assert!(
        rect.bottom() <= bar_top,
        "{screen} at {}x{}: «{label}» at {rect:?} reaches under the action bar (its top at {bar_top})",
        size.0,
        size.1
    );
}

#[test]
fn every_screens_main_action_is_in_the_window() {
    for size in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let mut harness = common::open_demo_app(dir.path(), Config::default(), size);
        settle(&mut harness);
        assert_on_screen(&harness, size, "idle", "GetMeBack");

        harness.state_mut().dispatch(Event::UseDemoOrder);
        harness.state_mut().dispatch(Event::OpenOrder);
        settle(&mut harness);
        assert_eq!(harness.state().state().screen, Screen::Order);
        assert_on_screen(&harness, size, "order", "Готово");
        for label in ["3", "Стереть", "Очистить заказ", "Добавить позицию"] {
            let rect = harness.get_by_role_and_label(Role::Button, label).rect();
            assert!(
                rect.left() >= 0.0 && rect.right() <= size.0 - 4.0,
                "order at {}x{}: «{label}» at {rect:?} is cut at a side",
                size.0,
                size.1
            );
        }
        harness.state_mut().dispatch(Event::Back);

        harness.state_mut().dispatch(Event::OpenPlugin);
        settle(&mut harness);
        assert_on_screen(&harness, size, "add guest", "Найти гостя");

        harness.state_mut().dispatch(Event::OpenPlugin);
        harness
            .state_mut()
            .dispatch(Event::FieldEdited(loyalty_till::workflow::Field::Code, "100001".into()));
        harness.state_mut().dispatch(Event::SubmitCode);
        wait_for(&mut harness, "the guest card", |s| s.screen == Screen::Guest);
        assert_on_screen(&harness, size, "guest card", "Касса");
        // «Удалить гостя» is drawn whole, clear of the action bar that holds «Касса» (the bar
        // starts 8 px above it), not half under it; so are the answers to its question.
        assert_clear_of_action_bar(&harness, size, "guest card", "Удалить гостя", "Касса");
        harness.state_mut().dispatch(Event::AskRemoveGuest(true));
        settle(&mut harness);
        for answer in ["Да, удалить", "Нет"] {
            assert_clear_of_action_bar(&harness, size, "guest card", answer, "Касса");
        }
        harness.state_mut().dispatch(Event::AskRemoveGuest(false));
        settle(&mut harness);

        harness.state_mut().dispatch(Event::StartPayment);
        wait_for(&mut harness, "the payment choice", |s| {
            matches!(s.screen, Screen::PaymentChoice { .. })
        });
        harness
            .state_mut()
            .dispatch(Event::ChoosePaymentMode(PaymentMode::Spend));
        settle(&mut harness);
        assert_on_screen(&harness, size, "spend form", "Провести оплату");
        assert_on_screen(&harness, size, "spend form", "Отмена");
        // The keypad and the quick amounts scroll vertically but are never cut at the sides.
        for label in ["1", "3", "Стереть", "Максимум", "Точная сумма", "Карта"] {
            let rect = harness.get_by_role_and_label(Role::Button, label).rect();
            assert!(
                rect.left() >= 0.0 && rect.right() <= size.0 - 4.0,
                "spend form at {}x{}: «{label}» at {rect:?} is cut at a side",
                size.0,
                size.1
            );
        }
        // A wrong amount: the reason is in the window too, beside the disabled button.
        harness
            .state_mut()
            .dispatch(Event::FieldEdited(loyalty_till::workflow::Field::Spend, "600".into()));
        settle(&mut harness);
        let window = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(size.0, size.1));
        let reasons: Vec<egui::Rect> = harness
            .query_all_by_label_contains("Нельзя списать больше")
            .map(|node| node.rect())
            .collect();
        assert!(
            reasons.iter().any(|r| window.contains_rect(*r)),
            "the refusal is off screen: {reasons:?}"
        );

        harness
            .state_mut()
            .dispatch(Event::SpendPreset(loyalty_till::workflow::SpendPreset::Max));
        harness.state_mut().dispatch(Event::ExactAmount);
        harness.state_mut().dispatch(Event::ConfirmPayment);
        wait_for(&mut harness, "the success screen", |s| {
            matches!(s.screen, Screen::Done { .. })
        });
        assert_on_screen(&harness, size, "success", "Новый заказ");
    }
}

/// A notice appearing (here: an unknown code) moves nothing on the screen.
#[test]
fn a_notice_moves_nothing_under_the_finger() {
    for size in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let mut harness = common::open_demo_app(dir.path(), Config::default(), size);
        harness.state_mut().dispatch(Event::OpenPlugin);
        settle(&mut harness);
        let keys: Vec<egui::Rect> = ["1", "5", "Найти гостя"]
            .iter()
            .map(|label| harness.get_by_role_and_label(Role::Button, label).rect())
            .collect();
        harness
            .state_mut()
            .dispatch(Event::FieldEdited(loyalty_till::workflow::Field::Code, "999".into()));
        harness.state_mut().dispatch(Event::SubmitCode);
        wait_for(&mut harness, "the refusal", |s| s.notice.is_some());
        assert!(
            harness.query_by_label_contains("не найден").is_some(),
            "the notice is shown"
        );
        let after: Vec<egui::Rect> = ["1", "5", "Найти гостя"]
            .iter()
            .map(|label| harness.get_by_role_and_label(Role::Button, label).rect())
            .collect();
        assert_eq!(keys, after, "at {}x{} the notice moved the buttons", size.0, size.1);
    }
}
