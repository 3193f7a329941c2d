#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The real app, driven by role and label through the AccessKit tree (no GPU), on a real SQLite
//! file; afterwards the ledger itself is checked.

mod common;

use common::till::{Till, assert_touch_sized, open_till};

use egui::accesskit::Role;
use egui_kittest::kittest::{AccessKitNode, NodeT as _, Queryable as _};
use loyalty_till::ledger::Ledger;
use loyalty_till::money::Kopecks;
use loyalty_till::workflow::Screen;

impl Till {
    /// Taps the text field that shows `value`.
    fn tap_field_showing(&mut self, value: &str) {
        let field = |value: String| {
            move |node: &AccessKitNode<'_>| {
                node.role() == Role::TextInput && node.value().as_deref() == Some(value.as_str())
            }
        };
        self.harness.get_by(field(value.to_string())).scroll_to_me();
        self.settle();
        self.harness.get_by(field(value.to_string())).click();
        self.harness.step();
        self.harness.step();
    }
}

fn add_guest_by_keypad(till: &mut Till, code: &str) {
    till.click("GetMeBack");
    assert_eq!(till.state().screen, Screen::AddGuest);
    till.type_on_keypad(code);
    assert_eq!(till.state().fields.code, code, "the keypad typed the code");
    till.click("Найти гостя");
    till.wait_for("the guest card", |s| s.guest.is_some() || s.notice.is_some());
}

#[test]
fn add_guest_see_card_stamps_promotions_and_remove() {
    let mut till = open_till((420.0, 1000.0));
    add_guest_by_keypad(&mut till, "100001");
    assert_eq!(till.state().screen, Screen::Guest, "notice: {:?}", till.state().notice);
    assert!(till.sees("Анна Смирнова"));
    assert!(till.sees("+7 *** ***-45-67"), "the phone is masked on screen");
    assert!(!till.sees("9161234567"), "the full phone never shows");
    assert!(till.sees("350,00"), "the balance is shown");

    till.click("Информация о штампах");
    assert_eq!(till.state().screen, Screen::Stamps);
    assert!(till.sees("Кофейная карта"));
    assert!(till.sees("4 из 6"));
    till.click("Назад");

    till.click("Проверка акций");
    assert_eq!(till.state().screen, Screen::Promotions);
    assert!(till.sees("Счастливые часы"));
    assert!(!till.sees("Новогоднее меню"), "an ended promotion is not offered");
    till.click("Назад");

    // «Удалить гостя» asks first, naming the guest; «Нет» keeps them.
    till.click("Удалить гостя");
    assert!(till.state().guest.is_some(), "one press removes no one");
    assert!(till.sees("Удалить гостя Анна Смирнова из заказа?"));
    till.click("Нет");
    assert!(till.state().guest.is_some());
    till.click("Удалить гостя");
    till.click("Да, удалить");
    assert!(till.state().guest.is_none());
    assert_eq!(till.state().screen, Screen::Idle);
    assert!(till.sees("Гость удалён из заказа"));
}

#[test]
fn pay_part_with_bonuses_using_exact_amount_then_check_the_ledger() {
    let mut till = open_till((1024.0, 1400.0));
    till.click("Демо-заказ");
    assert_eq!(till.state().order.subtotal(), Kopecks(107_000));
    add_guest_by_keypad(&mut till, "100001");
    assert_eq!(till.state().screen, Screen::Guest);

    till.click("Касса");
    till.wait_for("the payment choice", |s| {
        matches!(s.screen, Screen::PaymentChoice { .. })
    });
    // Анна: 350,00 available, 50 % of 1 070,00 is 535,00, daily limit 3 000,00: the balance decides.
    till.click_containing("Списать бонусы");
    assert!(matches!(till.state().screen, Screen::Payment { .. }));
    assert_eq!(till.state().fields.spend, "350", "the maximum is pre-filled");
    assert!(till.sees("Максимум к списанию: 350,00"));
    assert!(till.sees("Доступный баланс"), "the reasons are listed");

    // The guest spends only 200: the cashier lowers the amount.
    till.tap_field_showing("350");
    till.click("Очистить");
    till.type_on_keypad("200");
    assert_eq!(till.state().fields.spend, "200");
    assert!(till.sees("870,00"), "remainder 1 070 - 200 is shown");

    till.click("Точная сумма");
    assert_eq!(till.state().fields.tendered, "870");
    till.click("Провести оплату");
    till.wait_for("the success message", |s| {
        matches!(s.screen, Screen::Done { .. }) || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
    });
    assert!(
        matches!(till.state().screen, Screen::Done { .. }),
        "notice: {:?}",
        till.state().notice
    );
    // Accrual: 5 % of the 870,00 paid by money = 43,50.
    assert!(till.sees("Списано 200,00 бонусов, начислено 43,50"));

    let mut ledger = till.ledger();
    let guest = ledger_guest(&mut ledger);
    let card = ledger.guest_card(guest, now()).expect("card");
    assert_eq!(card.balance, Kopecks(35_000 - 20_000 + 4_350));
    assert_eq!(card.available, card.balance, "no open holds remain");
    assert!(ledger.open_holds(None).expect("holds").is_empty());
    let history = ledger.history(guest, 10).expect("history");
    let amounts: Vec<i64> = history.iter().map(|h| h.amount.0).collect();
    assert!(
        amounts.contains(&-20_000) && amounts.contains(&4_350),
        "history: {history:?}"
    );
    ledger.check_invariants().expect("ledger invariants");

    till.click("Новый заказ");
    assert_eq!(till.state().screen, Screen::Idle);
    assert!(till.state().order.lines.is_empty());
}

#[test]
fn unknown_code_and_over_maximum_are_refused_on_screen() {
    let mut till = open_till((1024.0, 1400.0));
    add_guest_by_keypad(&mut till, "999");
    assert!(till.sees("Гость с таким кодом не найден"));
    assert!(till.state().guest.is_none());
    till.click("Очистить");
    till.type_on_keypad("100001");
    till.click("Найти гостя");
    till.wait_for("the guest", |s| s.guest.is_some());
    till.click("Демо-заказ");
    till.click("Касса");
    till.wait_for("the payment choice", |s| {
        matches!(s.screen, Screen::PaymentChoice { .. })
    });
    till.click_containing("Списать бонусы");
    till.tap_field_showing("350");
    till.click("Очистить");
    till.type_on_keypad("400");
    // Said as the cashier types, where they look, with no remainder or change from the wrong
    // amount, and «Провести оплату» disabled.
    assert!(till.sees("Нельзя списать больше 350,00 бонусов"));
    assert!(!till.sees("Остаток к оплате") && !till.sees("Сдача"));
    assert!(
        till.harness
            .get_by_role_and_label(Role::Button, "Провести оплату")
            .accesskit_node()
            .is_disabled(),
        "the confirm button is disabled while the amount is wrong"
    );
    till.click("Точная сумма");
    assert!(!till.sees("Сдача"));
    till.click("Провести оплату");
    assert!(till.sees("Нельзя списать больше 350,00 бонусов"));
    assert!(matches!(till.state().screen, Screen::Payment { .. }));
    till.click("Отмена");
    assert_eq!(till.state().screen, Screen::Guest);
    let mut ledger = till.ledger();
    assert!(ledger.open_holds(None).expect("holds").is_empty());
    let guest = ledger_guest(&mut ledger);
    assert_eq!(ledger.guest_card(guest, now()).expect("card").balance, Kopecks(35_000));
    ledger.check_invariants().expect("ledger invariants");
}

/// A guest who comes only for the free coffee: the check is the gift alone (0,00), it can be
/// closed, and the payment and success screens name the gift; the ledger marks it used.
#[test]
fn a_check_of_only_a_gift_is_closed_and_the_gift_is_listed() {
    let mut till = open_till((420.0, 1000.0));
    till.click("GetMeBack");
    till.harness
        .state_mut()
        .dispatch(loyalty_till::workflow::Event::FieldEdited(
            loyalty_till::workflow::Field::Code,
            "G100001".into(),
        ));
    till.click("Найти гостя");
    till.wait_for("the guest card", |s| s.guest.is_some() || s.notice.is_some());
    assert_eq!(till.state().screen, Screen::Guest, "notice: {:?}", till.state().notice);
    assert_eq!(
        till.state().order.subtotal(),
        Kopecks::ZERO,
        "only the gift is on the order"
    );
    assert!(
        !till
            .harness
            .get_by_role_and_label(Role::Button, "Касса")
            .accesskit_node()
            .is_disabled(),
        "a check of only a gift can be closed"
    );

    till.click("Касса");
    till.wait_for("the payment choice", |s| {
        matches!(s.screen, Screen::PaymentChoice { .. }) || s.notice.is_some()
    });
    assert!(
        matches!(till.state().screen, Screen::PaymentChoice { .. }),
        "notice: {:?}",
        till.state().notice
    );
    assert!(till.sees("Подарок: Капучино"), "the payment choice lists the gift");
    till.click_containing("Копить бонусы");
    assert!(till.sees("Подарок: Капучино"), "the payment form lists the gift");
    till.click("Провести оплату");
    till.wait_for("the success message", |s| {
        matches!(s.screen, Screen::Done { .. }) || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
    });
    assert!(
        matches!(till.state().screen, Screen::Done { .. }),
        "notice: {:?}",
        till.state().notice
    );
    assert!(till.sees("Подарок выдан: Капучино"), "the receipt lists the gift");

    let mut ledger = till.ledger();
    assert_eq!(
        ledger
            .identify("G100001", loyalty_till::domain::ScanKind::Manual, now())
            .map(|_| ()),
        Err(loyalty_till::domain::LoyaltyError::GiftAlreadyUsed),
        "the gift was redeemed"
    );
    ledger.check_invariants().expect("ledger invariants");
}

/// A gift code has a letter: the code keypad types it by touch, letters and digits alike.
#[test]
fn a_gift_code_is_typed_by_touch() {
    let mut till = open_till((420.0, 700.0));
    till.click("GetMeBack");
    till.click("Буквы A–Z");
    // Every letter key is whole inside the side panel, none cut at its right edge.
    for letter in ["A", "G", "N", "U", "Z", "-", "‹"] {
        let rect = till.harness.get_by_role_and_label(Role::Button, letter).rect();
        assert!(
            rect.left() >= 0.0 && rect.right() <= 420.0 - 4.0,
            "«{letter}» at {rect:?} is cut at a side"
        );
    }
    till.click("G");
    till.click("Цифры 0–9");
    till.type_on_keypad("100002");
    assert_eq!(till.state().fields.code, "G100002");
    till.click("Найти гостя");
    till.wait_for("the guest card", |s| s.guest.is_some() || s.notice.is_some());
    assert_eq!(till.state().screen, Screen::Guest, "notice: {:?}", till.state().notice);
    assert!(
        till.state()
            .order
            .lines
            .iter()
            .any(|l| l.gift.as_ref().is_some_and(|g| g.code == "G100002")),
        "the gift is on the order: {:?}",
        till.state().order
    );
}

#[test]
fn english_is_a_setting_away() {
    let mut till = open_till((420.0, 1000.0));
    till.click("Меню");
    till.click("English");
    assert!(till.sees("Check total"), "the order buttons are in English now");
    till.click("Close menu");
    till.click("GetMeBack");
    assert!(till.sees("Find guest"));
}

#[test]
fn every_pressable_control_is_touch_sized() {
    let mut till = open_till((420.0, 3000.0));
    assert_touch_sized(&till, "idle");
    till.click("Демо-заказ");
    add_guest_by_keypad(&mut till, "100001");
    assert_touch_sized(&till, "guest");
    till.click("Касса");
    till.wait_for("the payment choice", |s| {
        matches!(s.screen, Screen::PaymentChoice { .. })
    });
    assert_touch_sized(&till, "payment choice");
    till.click_containing("Списать бонусы");
    assert_touch_sized(&till, "payment");
    till.click("Отмена");
    till.click("Удалить гостя");
    assert_touch_sized(&till, "remove question");
    till.click("Да, удалить");
    till.click("GetMeBack");
    assert_touch_sized(&till, "add guest");
}

/// Анна's id, looked up the way a till would (it counts as one identification).
fn ledger_guest(ledger: &mut Ledger) -> i64 {
    ledger
        .identify("100001", loyalty_till::domain::ScanKind::Manual, now())
        .expect("demo guest 100001")
        .card
        .guest_id
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// «Новый гость»: a code no guest has is enrolled at the till where the programme allows it,
/// with the phone typed on the keypad; the new guest is on the order with the welcome bonus,
/// and the ledger finds them by the code and by the phone.
#[test]
fn a_new_guest_is_enrolled_from_the_not_found_message() {
    let mut till = open_till((420.0, 1000.0));
    let mut ledger = till.ledger();
    let program = ledger.program().expect("programme");
    assert!(program.till_enrolment, "the demo programme allows enrolment");
    let set = |ledger: &mut Ledger, on: bool| {
        ledger
            .set_program(&loyalty_till::ledger::ProgramSettings {
                till_enrolment: on,
                welcome_bonus: Kopecks(10_000),
                ..program.clone()
            })
            .expect("programme saved");
    };
    // Off in the programme: the message offers nothing.
    set(&mut ledger, false);
    add_guest_by_keypad(&mut till, "777001");
    assert!(till.sees("Гость с таким кодом не найден"));
    assert!(!till.sees("Новый гость"), "enrolment is off in the programme");

    set(&mut ledger, true);
    till.click("Найти гостя");
    till.wait_for("the offer", |s| s.enrol_offer.is_some());
    till.click("Новый гость");
    assert!(
        matches!(till.state().screen, Screen::Enrol(_)),
        "{:?}",
        till.state().screen
    );
    assert!(till.sees("777001"), "the code that becomes the card is shown");
    assert!(till.sees("100,00"), "the welcome bonus is shown");
    till.click("Зарегистрировать");
    assert!(till.sees("Введите телефон гостя"), "the phone is required");
    till.type_on_keypad("89165551122");
    // The name field: its keypad has the Russian letters (no keyboard on a touch till).
    till.harness
        .query_all_by_role(Role::TextInput)
        .nth(1)
        .expect("the name field")
        .click();
    till.settle();
    for letter in ["В", "Е", "Р", "А"] {
        till.click(letter);
    }
    assert_eq!(till.state().fields.name, "Вера");
    till.click("Зарегистрировать");
    till.wait_for("the new guest", |s| {
        s.guest.is_some() || s.notice.as_ref().is_some_and(|n| n.key != "err-enrol-phone-empty")
    });
    assert_eq!(till.state().screen, Screen::Guest, "notice: {:?}", till.state().notice);
    assert!(till.sees("Гость зарегистрирован"));
    assert!(till.sees("+7 *** ***-11-22"), "the phone is masked on the card");

    let mut ledger = till.ledger();
    let found = ledger
        .identify("777001", loyalty_till::domain::ScanKind::Manual, now())
        .expect("the code is the new guest's card");
    assert_eq!(found.card.balance, Kopecks(10_000), "the welcome bonus once");
    assert_eq!(found.card.name, "Вера", "the name typed on the letters");
    let by_phone = ledger
        .identify("+7 916 555-11-22", loyalty_till::domain::ScanKind::Manual, now())
        .expect("the phone finds the guest");
    assert_eq!(by_phone.card.guest_id, found.card.guest_id);
    assert_eq!(ledger.history(found.card.guest_id, 10).expect("history").len(), 1);
    // The enrolment is in the audit log, the phone and code masked.
    let audit: (String, String, i64, String) = rusqlite::Connection::open(till.dir.path().join("demo.sqlite"))
        .expect("ledger file")
        .query_row("SELECT actor, action, guest_id, detail FROM audit_log", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .expect("one audit row");
    assert_eq!(
        audit,
        (
            "till".to_string(),
            "enrol".to_string(),
            found.card.guest_id,
            "+7 *** ***-11-22, ******".to_string()
        )
    );
    ledger.check_invariants().expect("ledger invariants");

    // The same phone for another code: refused with the reason, on the form.
    till.click("Удалить гостя");
    till.click("Да, удалить");
    add_guest_by_keypad(&mut till, "777002");
    till.click("Новый гость");
    till.type_on_keypad("89165551122");
    till.click("Зарегистрировать");
    till.wait_for("the refusal", |s| s.notice.is_some());
    assert!(till.sees("Этот телефон уже есть у другого гостя"));
    assert!(till.state().guest.is_none());
}

/// The back office and the handhelds' endpoint open the till's ledger file too. They start
/// (`AppOptions::after_ledger`) only once the till has made and seeded it: two connections making
/// a new SQLite file at once can be refused at once with "database is locked".
#[test]
fn what_shares_the_ledger_file_starts_once_it_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let paths = loyalty_till::config::Paths::resolve(Some(dir.path())).unwrap();
    let database = paths.database(true);
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let options = loyalty_till::app::AppOptions {
        paths,
        demo: true,
        config: loyalty_till::config::Config::default(),
        config_file: None,
        scenario: None,
        clock: Box::new(loyalty_till::backend::SystemClock),
        hid_bus: None,
        clipboard: None,
        after_ledger: Some(Box::new(move || {
            let guests = rusqlite::Connection::open(&database)
                .and_then(|conn| conn.query_row("SELECT COUNT(*) FROM guests", [], |row| row.get::<_, i64>(0)));
            let _ = seen_tx.send(guests.map_err(|e| e.to_string()));
        })),
    };
    let _harness = egui_kittest::Harness::builder()
        .with_size(egui::vec2(420.0, 700.0))
        .build_eframe(move |cc| loyalty_till::app::start(&cc.egui_ctx, options).expect("app starts"));
    let guests = seen
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("started once the ledger was opened");
    assert!(
        guests.as_ref().is_ok_and(|count| *count > 0),
        "the demo ledger was made and seeded first: {guests:?}"
    );
}
