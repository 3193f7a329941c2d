#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! «Добавить карту» on the real app, driven by role and label through the AccessKit tree (no
//! GPU), on a real SQLite file: two guests pay the demo check, the same account presented twice
//! is refused with the reason, a refused card names itself and holds nothing, and a return of
//! the check gives every card its share back. Afterwards the ledger itself is checked.

mod common;

use common::till::{Till, assert_touch_sized, open_till};

use loyalty_till::domain::{GuestId, ScanKind};
use loyalty_till::ledger::{DEFAULT_ORG, Ledger};
use loyalty_till::loyalty::engine::Op;
use loyalty_till::money::Kopecks;
use loyalty_till::workflow::{ReturnStep, Screen};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn guest(ledger: &mut Ledger, code: &str) -> (GuestId, Kopecks) {
    let card = ledger.identify(code, ScanKind::Manual, now()).expect("demo guest").card;
    (card.guest_id, card.balance)
}

impl Till {
    /// Анна (100001, 350,00) on the demo order of 1 070,00, `spend` typed on the spend form,
    /// then «Добавить карту».
    fn open_several_cards(&mut self, spend: &str) {
        self.click("Демо-заказ");
        self.click("GetMeBack");
        self.type_on_keypad("100001");
        self.several_cards_for_the_guest(spend);
    }

    /// As [`open_several_cards`], the guest found by her gift code G100001 (the gift goes on
    /// the order).
    fn open_several_cards_with_a_gift(&mut self, spend: &str) {
        self.click("Демо-заказ");
        self.click("GetMeBack");
        self.click("Буквы A–Z");
        self.click("G");
        self.click("Цифры 0–9");
        self.type_on_keypad("100001");
        self.several_cards_for_the_guest(spend);
    }

    fn several_cards_for_the_guest(&mut self, spend: &str) {
        self.click("Найти гостя");
        self.wait_for("the guest card", |s| s.guest.is_some() || s.notice.is_some());
        self.click("Касса");
        self.wait_for("the payment choice", |s| {
            matches!(s.screen, Screen::PaymentChoice { .. })
        });
        self.click_containing("Списать бонусы");
        self.click("Очистить");
        self.type_on_keypad(spend);
        self.click("Добавить карту");
        assert!(
            matches!(self.state().screen, Screen::Split(_)),
            "screen {:?}",
            self.state().screen
        );
    }

    /// «Провести оплату» on the several-cards form; waits for the success screen.
    fn pay_with_every_card(&mut self) {
        self.click("Провести оплату");
        self.wait_for("the check paid", |s| {
            matches!(s.screen, Screen::SplitDone { .. }) || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
        });
        assert!(
            matches!(self.state().screen, Screen::SplitDone { .. }),
            "notice {:?}",
            self.state().notice
        );
    }

    fn cards_on_check(&self) -> usize {
        match &self.state().screen {
            Screen::Split(split) => split.cards.len(),
            _ => 0,
        }
    }

    /// Types a card's code on the keypad and presses «Добавить»; waits for the answer.
    fn add_card(&mut self, code: &str) {
        let before = self.cards_on_check();
        self.type_on_keypad(code);
        self.click("Добавить");
        self.wait_for("the card added or refused", |s| {
            !s.is_busy()
                && (matches!(&s.screen, Screen::Split(split) if split.cards.len() > before) || s.notice.is_some())
        });
    }
}

#[test]
fn two_guests_pay_one_check_and_a_return_gives_both_their_share_back() {
    let mut till = open_till((420.0, 3000.0));
    let (anna, _) = guest(&mut till.ledger(), "100001");
    let (ivan, ivan_before) = guest(&mut till.ledger(), "100002");
    till.open_several_cards("200");
    assert!(till.sees("Карта 1: Анна Смирнова"));

    // Анна's other card is the same account: refused with the reason, nothing added.
    till.add_card("2000000000015");
    assert_eq!(till.cards_on_check(), 1);
    assert!(
        till.sees("Карта 2: Этот счёт уже на чеке"),
        "notice {:?}",
        till.state().notice
    );

    // Иван's card: his available balance, his own maximum, and what the check has left (the
    // check allows 535,00 with bonuses, 200,00 are Анна's) offered as his amount.
    till.add_card("100002");
    assert_eq!(till.cards_on_check(), 2, "notice {:?}", till.state().notice);
    assert!(till.sees("Карта 2: Иван Петров"));
    assert!(till.sees("1\u{a0}250,00"), "his available balance");
    assert_eq!(till.state().fields.card_amounts, ["200", "335"]);
    assert_touch_sized(&till, "several cards");

    // Over the check's maximum together: said beside the disabled button.
    till.click("Очистить");
    till.type_on_keypad("400");
    assert!(till.sees("Вместе карты могут списать не больше 535,00"));
    till.click("Очистить");
    till.type_on_keypad("335");
    till.click("Точная сумма");
    assert_eq!(till.state().fields.tendered, "535", "1 070,00 − 200,00 − 335,00");
    till.pay_with_every_card();
    assert!(till.sees("Списано 535,00 бонусов с 2 карт, начислено 26,75"));

    let mut ledger = till.ledger();
    // Анна: 350 − 200 + 5 % of the 535,00 paid with money; Иван: only his debit.
    assert_eq!(guest(&mut ledger, "100001").1, Kopecks(17_675));
    assert_eq!(guest(&mut ledger, "100002").1, ivan_before - Kopecks(33_500));
    let ivan_spend = &ledger.history(ivan, 1).unwrap()[0];
    let anna_spend = ledger
        .history(anna, 5)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "spend")
        .expect("Анна's debit");
    assert_eq!(
        (ivan_spend.kind.as_str(), ivan_spend.amount),
        ("spend", Kopecks(-33_500))
    );
    assert_eq!(
        ivan_spend.note, anna_spend.note,
        "both debits are against the same check"
    );
    assert!(ledger.open_holds(None).unwrap().is_empty());
    ledger.check_invariants().expect("ledger invariants");
    // The shift counts one check, and every card's bonuses.
    let report = ledger.shift_report(now()).unwrap();
    assert_eq!(
        (report.checks, report.revenue, report.spent, report.accrued),
        (1, Kopecks(107_000), Kopecks(53_500), Kopecks(2_675))
    );

    // The whole check returned: each card gets its bonuses back, the accrual is taken back.
    till.click("Возврат этого чека");
    till.wait_for("the paid check chosen", |s| {
        matches!(&s.screen, Screen::Returns(ReturnStep::Choose { .. }))
    });
    till.click("Вернуть полностью: 1\u{a0}070,00");
    till.wait_for("the preview", |s| {
        matches!(&s.screen, Screen::Returns(ReturnStep::Preview { .. }))
    });
    assert!(till.sees("Вернётся на другие карты чека"));
    assert!(till.sees("+335,00"));
    till.click("Подтвердить возврат");
    till.wait_for("the return made", |s| {
        matches!(&s.screen, Screen::Returns(ReturnStep::Done { .. }))
    });
    let mut ledger = till.ledger();
    assert_eq!(guest(&mut ledger, "100001").1, Kopecks(35_000));
    assert_eq!(guest(&mut ledger, "100002").1, ivan_before);
    let report = ledger.shift_report(now()).unwrap();
    assert_eq!(
        (report.returns, report.returned),
        (1, Kopecks(107_000)),
        "one return of one check"
    );
    ledger.check_invariants().expect("ledger invariants");
}

#[test]
fn a_refused_card_is_named_and_nothing_is_held_for_the_others() {
    let mut till = open_till((1024.0, 2400.0));
    let (_, anna_before) = guest(&mut till.ledger(), "100001");
    let (ivan, ivan_before) = guest(&mut till.ledger(), "100002");
    till.open_several_cards("100");
    till.add_card("100002");
    assert_eq!(till.cards_on_check(), 2);
    // Иван is blocked in the back office while the cashier is typing.
    till.ledger()
        .run(
            &Op::SetBlocked {
                guest: ivan,
                blocked: true,
            },
            Some(DEFAULT_ORG),
            now(),
        )
        .unwrap();
    till.click("Точная сумма");
    till.click("Провести оплату");
    till.wait_for("the refusal", |s| !s.is_busy() && s.notice.is_some());
    assert!(
        till.sees("Карта 2: Гость заблокирован"),
        "notice {:?}",
        till.state().notice
    );
    assert!(
        matches!(till.state().screen, Screen::Split(_)),
        "the cards stay on screen"
    );

    let mut ledger = till.ledger();
    assert!(ledger.open_holds(None).unwrap().is_empty(), "no hold left for Анна");
    assert_eq!(guest(&mut ledger, "100001").1, anna_before);
    assert_eq!(ledger.guest_card(ivan, now()).unwrap().balance, ivan_before);
    ledger.check_invariants().expect("ledger invariants");

    // Without the refused card, the first pays alone.
    till.click("Убрать карту");
    assert_eq!(till.cards_on_check(), 1);
    till.click("Точная сумма");
    till.click("Провести оплату");
    till.wait_for("the check paid", |s| matches!(s.screen, Screen::SplitDone { .. }));
    let mut ledger = till.ledger();
    assert_eq!(
        guest(&mut ledger, "100001").1,
        anna_before - Kopecks(10_000) + Kopecks(4_850)
    );
    ledger.check_invariants().expect("ledger invariants");
}

/// Анна's corporate account of the demo (the card 700001 and 500,00) is found by its card with her name
/// and the account's, and pays one check beside her own account: the two are told apart by the
/// account's name, each pays its amount, the accrual goes to her own account.
#[test]
fn two_accounts_of_one_guest_pay_one_check() {
    let mut till = open_till((420.0, 3000.0));
    let (corporate, _) = guest(&mut till.ledger(), "700001");

    till.click("GetMeBack");
    till.type_on_keypad("700001");
    till.click("Найти гостя");
    till.wait_for("the guest card", |s| s.guest.is_some() || s.notice.is_some());
    assert!(till.sees("Анна Смирнова"), "notice {:?}", till.state().notice);
    assert!(till.sees("Счёт «Корпоративный»"));
    assert!(till.sees("500,00"), "the account's own balance");
    till.click("Удалить гостя");
    till.click("Да, удалить");

    till.open_several_cards("200");
    till.add_card("700001");
    assert_eq!(till.cards_on_check(), 2, "notice {:?}", till.state().notice);
    assert!(till.sees("Карта 1: Анна Смирнова"));
    assert!(till.sees("Карта 2: Анна Смирнова · Корпоративный"));
    assert_eq!(till.state().fields.card_amounts, ["200", "335"]);
    till.click("Точная сумма");
    till.pay_with_every_card();
    assert!(till.sees("Списано 535,00 бонусов с 2 карт, начислено 26,75"));
    assert!(
        till.sees("Карта 2: Анна Смирнова · Корпоративный"),
        "the result names the account it debited"
    );

    let mut ledger = till.ledger();
    assert_eq!(guest(&mut ledger, "100001").1, Kopecks(35_000 - 20_000 + 2_675));
    let corporate_card = ledger.identify("700001", ScanKind::Manual, now()).unwrap().card;
    assert_eq!(
        (corporate_card.guest_id, corporate_card.balance),
        (corporate, Kopecks(50_000 - 33_500))
    );
    ledger.check_invariants().expect("ledger invariants");
}

#[test]
fn the_gift_of_a_check_paid_with_several_cards_is_given_and_said() {
    let mut till = open_till((420.0, 2400.0));
    till.open_several_cards_with_a_gift("100");
    till.add_card("100002");
    assert_eq!(till.cards_on_check(), 2, "notice {:?}", till.state().notice);
    till.click("Точная сумма");
    till.pay_with_every_card();
    assert!(till.sees("Подарок выдан: Капучино"));
    let mut ledger = till.ledger();
    assert_eq!(
        ledger.identify("G100001", ScanKind::Manual, now()).map(|_| ()),
        Err(loyalty_till::domain::LoyaltyError::GiftAlreadyUsed),
        "the gift was redeemed with the check"
    );
    ledger.check_invariants().expect("ledger invariants");
}
