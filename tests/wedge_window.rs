//! A keyboard-mode scanner nobody configured, typing into the till's own window: its burst
//! identifies the guest whichever field has focus and never lands in the field, while a person's
//! typing, keys 60 ms or more apart, reaches the field unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use common::WAIT;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use loyalty_till::config::Config;
use loyalty_till::ui::TillApp;
use loyalty_till::workflow::{Event, Screen};
use std::time::Duration;

fn till(dir: &std::path::Path) -> Harness<'static, TillApp> {
    common::open_demo_app(dir, Config::default(), (1024.0, 1400.0))
}

fn key(harness: &mut Harness<'static, TillApp>, key: egui::Key) {
    for pressed in [true, false] {
        harness.input_mut().events.push(egui::Event::Key {
            key,
            physical_key: None,
            pressed,
            repeat: false,
            modifiers: egui::Modifiers::NONE,
        });
    }
}

/// One frame, its raw input passed first through the app's `eframe::App::raw_input_hook`, the
/// call eframe makes before each frame (so the hook's wiring is under test too). Events go
/// straight into the frame's raw input (not kittest's queue, which is added later).
fn step(harness: &mut Harness<'static, TillApp>) {
    let ctx = harness.ctx.clone();
    let mut raw_input = egui::RawInput {
        events: std::mem::take(&mut harness.input_mut().events),
        ..Default::default()
    };
    eframe::App::raw_input_hook(harness.state_mut(), &ctx, &mut raw_input);
    harness.input_mut().events = raw_input.events;
    harness.step();
}

/// A scanner: every character and the Enter within one frame.
fn burst(harness: &mut Harness<'static, TillApp>, text: &str) {
    for ch in text.chars() {
        harness.input_mut().events.push(egui::Event::Text(ch.to_string()));
    }
    key(harness, egui::Key::Enter);
    step(harness);
}

/// A person: one key a frame, `gap` apart in real time.
fn type_slowly(harness: &mut Harness<'static, TillApp>, text: &str, gap: Duration) {
    for ch in text.chars() {
        harness.input_mut().events.push(egui::Event::Text(ch.to_string()));
        step(harness);
        std::thread::sleep(gap);
    }
    // Long enough for anything held back to be released.
    std::thread::sleep(Duration::from_millis(150));
    step(harness);
    step(harness);
}

fn open_add_guest(harness: &mut Harness<'static, TillApp>) {
    harness.get_by_role_and_label(Role::Button, "GetMeBack").click();
    harness.step();
    harness.step();
    assert_eq!(harness.state().state().screen, Screen::AddGuest);
    harness.step();
}

#[test]
fn a_burst_in_the_code_field_is_a_scan_and_typing_stays_typing() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till(dir.path());
    open_add_guest(&mut harness);

    // A person types a code: it is in the field, nothing is identified until they submit.
    type_slowly(&mut harness, "100001", Duration::from_millis(70));
    assert_eq!(harness.state().state().fields.code, "100001");
    assert!(harness.state().state().guest.is_none());
    assert!(!harness.state().state().is_busy(), "typing identified nobody");

    // A scanner's burst of a card nobody has: it goes to identify (refused), and the field still
    // holds exactly what the person typed.
    burst(&mut harness, "2000000000992");
    common::step_until(&mut harness, WAIT, "the unknown card refused", |s| {
        !s.is_busy() && s.notice.is_some()
    });
    assert_eq!(harness.state().state().notice.as_ref().unwrap().key, "err-unknown-code");
    assert_eq!(
        harness.state().state().fields.code,
        "100001",
        "the field holds what the person typed, and nothing of the scan"
    );
    assert_eq!(harness.state().state().screen, Screen::AddGuest);

    // A known card's burst: the guest is identified (which empties the code field, by design).
    burst(&mut harness, "2000000000015");
    common::step_until(&mut harness, WAIT, "Анна from the scanner burst", |s| {
        s.guest.is_some()
    });
    assert_eq!(harness.state().state().guest.as_ref().unwrap().name, "Анна Смирнова");
}

#[test]
fn a_burst_with_a_guest_attached_asks_whether_to_replace_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till(dir.path());
    open_add_guest(&mut harness);
    burst(&mut harness, "100001");
    common::step_until(&mut harness, WAIT, "Анна", |s| s.screen == Screen::Guest);

    burst(&mut harness, "100002");
    common::step_until(&mut harness, WAIT, "the replace question", |s| {
        matches!(s.screen, Screen::ConfirmReplace { .. })
    });
    let Screen::ConfirmReplace { identification } = &harness.state().state().screen else {
        unreachable!()
    };
    assert_eq!(
        identification.card.name, "Иван Петров",
        "the question is about the card just scanned"
    );
    harness.step();
    assert!(
        harness
            .query_all_by_label_contains("Заменить его гостем Иван Петров?")
            .next()
            .is_some(),
        "the replace question, naming the new guest, is on the screen"
    );
    assert_eq!(harness.state().state().guest.as_ref().unwrap().name, "Анна Смирнова");
}

#[test]
fn a_burst_while_typing_the_bonus_amount_does_not_touch_the_amount() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till(dir.path());
    harness.state_mut().dispatch(Event::UseDemoOrder);
    open_add_guest(&mut harness);
    burst(&mut harness, "100001");
    common::step_until(&mut harness, WAIT, "Анна", |s| s.guest.is_some());
    harness.state_mut().dispatch(Event::StartPayment);
    common::step_until(&mut harness, WAIT, "the payment choice", |s| {
        matches!(s.screen, Screen::PaymentChoice { .. })
    });
    harness
        .state_mut()
        .dispatch(Event::ChoosePaymentMode(loyalty_till::workflow::PaymentMode::Spend));
    common::step_until(&mut harness, WAIT, "the payment form", |s| {
        matches!(s.screen, Screen::Payment { .. })
    });
    let amount_before = harness.state().state().fields.spend.clone();

    // Another guest's card scanned while the amount field has focus: the payment form stays, with
    // the amount as it was, and the cashier is told to finish the payment first (no replace
    // question in the middle of a payment).
    burst(&mut harness, "100002");
    common::step_until(&mut harness, WAIT, "the scan handled", |s| s.notice.is_some());
    let state = harness.state().state();
    assert_eq!(state.notice.as_ref().unwrap().key, "err-finish-payment-first");
    assert!(matches!(state.screen, Screen::Payment { .. }), "{:?}", state.screen);
    assert_eq!(state.fields.spend, amount_before);
    assert_eq!(state.guest.as_ref().unwrap().name, "Анна Смирнова");
}

#[test]
fn short_fast_typing_is_given_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till(dir.path());
    open_add_guest(&mut harness);
    // Two keys rolled over within one frame, then more: too short for a scan.
    harness.input_mut().events.push(egui::Event::Text("1".into()));
    harness.input_mut().events.push(egui::Event::Text("0".into()));
    step(&mut harness);
    type_slowly(&mut harness, "03", Duration::from_millis(80));
    assert_eq!(harness.state().state().fields.code, "1003");
    // Backspace reaches the field after the typing before it.
    key(&mut harness, egui::Key::Backspace);
    step(&mut harness);
    step(&mut harness);
    assert_eq!(harness.state().state().fields.code, "100");
}

#[test]
fn a_burst_on_the_devices_screen_is_a_test_read_not_a_guest() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till(dir.path());
    for label in ["Меню", "Устройства: сканеры и ридеры"] {
        harness.get_by_role_and_label(Role::Button, label).click();
        harness.step();
        harness.step();
    }
    assert!(harness.state().device_screen().is_open());
    let before = harness.state().device_screen().reads().count();
    burst(&mut harness, "2000000000015");
    step(&mut harness);
    assert_eq!(harness.state().device_screen().reads().count(), before + 1);
    // The till's own input is named in the screen's language.
    assert!(harness.query_by_label_contains("клавиатура, 13 байт").is_some());
    assert!(harness.query_by_label_contains("keyboard").is_none());
    for _ in 0..20 {
        harness.step();
    }
    assert!(harness.state().state().guest.is_none(), "a test read identifies no one");
    assert!(!harness.state().state().is_busy());
}

/// Issue: a scanner without a suffix typing while the guest card is shown was held until the
/// next mouse or key event. The frame that holds keys must ask for the frame that releases them,
/// during its pass: a request made before the pass begins (eframe's `raw_input_hook`) is
/// forgotten when it begins.
#[test]
fn held_keys_ask_for_the_frame_that_releases_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till(dir.path());
    open_add_guest(&mut harness);
    burst(&mut harness, "100001");
    common::step_until(&mut harness, WAIT, "Анна", |s| s.screen == Screen::Guest);
    // Let the guest card settle: nothing on it asks for frames of its own.
    for _ in 0..5 {
        harness.step();
    }
    assert!(
        !harness.ctx.has_requested_repaint(),
        "the guest card repaints by itself"
    );

    // A pause-ended burst: no Enter. Its keys are held after the frame.
    for ch in "100002".chars() {
        harness.input_mut().events.push(egui::Event::Text(ch.to_string()));
    }
    step(&mut harness);
    assert!(
        harness.ctx.has_requested_repaint(),
        "keys are held and no frame is asked for: they wait for the next mouse move"
    );
    // Woken as asked, frames alone (no input) read Иван's card: the till asks to replace Анна.
    let deadline = std::time::Instant::now() + WAIT;
    while !matches!(harness.state().state().screen, Screen::ConfirmReplace { .. }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the pause-ended burst was never read"
        );
        assert!(
            harness.ctx.has_requested_repaint() || harness.state().state().is_busy(),
            "the chain of frames broke while keys were held"
        );
        std::thread::sleep(Duration::from_millis(10));
        step(&mut harness);
    }
}

/// A press of a button acts on everything typed before it: the last digit, still held while
/// the classifier judges it, is in the code «Найти гостя» searches.
#[test]
fn a_tap_right_after_the_last_digit_searches_with_that_digit() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till(dir.path());
    open_add_guest(&mut harness);
    type_slowly(&mut harness, "10000", Duration::from_millis(120));
    let find = harness
        .get_by_role_and_label(Role::Button, "Найти гостя")
        .rect()
        .center();
    // The last digit and the press of the button in one frame, as a quick cashier does.
    let events = &mut harness.input_mut().events;
    events.push(egui::Event::Text("2".into()));
    events.push(egui::Event::PointerMoved(find));
    events.push(egui::Event::PointerButton {
        pos: find,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    step(&mut harness);
    harness.input_mut().events.push(egui::Event::PointerButton {
        pos: find,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    step(&mut harness);
    common::step_until(&mut harness, WAIT, "a guest found", |s| s.guest.is_some());
    assert_eq!(harness.state().state().guest.as_ref().unwrap().name, "Иван Петров");
}

/// Enter in the code field submits it, as keypad Enter does (both are `Key::Enter` in egui).
#[test]
fn enter_in_the_code_field_submits() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till(dir.path());
    open_add_guest(&mut harness);
    type_slowly(&mut harness, "100003", Duration::from_millis(70));
    key(&mut harness, egui::Key::Enter);
    step(&mut harness);
    common::step_until(&mut harness, WAIT, "Мария from Enter", |s| s.guest.is_some());
    assert_eq!(harness.state().state().guest.as_ref().unwrap().name, "Мария Козлова");
}
