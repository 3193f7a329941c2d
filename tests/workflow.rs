#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The workflow core, state by state and event by event, with backend answers made by hand.

use loyalty_till::backend::BackendKind;
use loyalty_till::domain::*;
use loyalty_till::money::Kopecks;
use loyalty_till::workflow::*;

fn rub(r: i64) -> Kopecks {
    Kopecks::from_roubles(r)
}

fn card(id: GuestId, name: &str, balance: Kopecks) -> GuestCard {
    GuestCard {
        guest_id: id,
        name: name.to_string(),
        phone_masked: "+7 *** ***-45-67".to_string(),
        balance,
        available: balance,
        group: GroupInfo {
            id: 1,
            name: "Гость".into(),
            discount_bp: 0,
            accrual_bp: 500,
        },
        stamps: vec![StampProgress {
            card_name: "Кофейная карта".into(),
            collected: 4,
            needed: 6,
            reward: "Кофе".into(),
        }],
        promotions: vec![],
        daily_visits: None,
        account: None,
    }
}

fn quote(due: Kopecks, max: Kopecks) -> SpendQuote {
    SpendQuote {
        amount_due: due,
        max_spend: max,
        limits: vec![
            SpendLimit {
                kind: SpendLimitKind::Available,
                amount: max,
            },
            SpendLimit {
                kind: SpendLimitKind::AmountDue,
                amount: due,
            },
        ],
        max_check_bp: 5000,
        spend_step: rub(1),
        accrual_bp: 500,
    }
}

fn gift() -> Gift {
    Gift {
        code: "G100001".into(),
        name: "Капучино".into(),
        points: rub(150),
        pos_code: None,
    }
}

fn ready_state() -> State {
    let mut state = State::new("till-test", true);
    update(
        &mut state,
        Event::BackendReady(Ok(BackendKind::Embedded {
            path: "/tmp/x.sqlite".into(),
        })),
    );
    state
}

/// Answers the single effect of `effects`, which must be an identify.
fn identify_request(effects: &[Effect]) -> (RequestId, ScanEvent) {
    match effects {
        [Effect::Identify { request, scan }] => (*request, scan.clone()),
        other => panic!("expected one identify effect, got {other:?}"),
    }
}

/// A state with Анна attached (with a gift when asked) and the demo order.
fn with_guest(with_gift: bool) -> State {
    let mut state = ready_state();
    update(&mut state, Event::UseDemoOrder);
    update(&mut state, Event::OpenPlugin);
    assert_eq!(state.screen, Screen::AddGuest);
    for d in [1, 0, 0, 0, 0, 1] {
        update(&mut state, Event::Keypad(KeypadKey::Digit(d)));
    }
    assert_eq!(state.fields.code, "100001");
    let effects = update(&mut state, Event::SubmitCode);
    let (request, scan) = identify_request(&effects);
    assert_eq!(scan.payload, "100001");
    assert_eq!(scan.kind, ScanKind::Manual);
    assert!(state.is_busy(), "the core waits for the lookup");
    let identification = Identification {
        card: card(1, "Анна", rub(350)),
        gift: with_gift.then(gift),
    };
    update(
        &mut state,
        Event::Identified {
            request,
            result: Ok(identification),
        },
    );
    assert_eq!(state.screen, Screen::Guest);
    assert!(!state.is_busy());
    assert!(state.fields.code.is_empty(), "the code field is cleared after a match");
    state
}

/// From the guest screen to the payment form of `mode`, with the given quote.
fn to_payment(state: &mut State, mode: PaymentMode, q: SpendQuote) {
    let effects = update(state, Event::StartPayment);
    let request = match effects.as_slice() {
        [Effect::Calculate { request, check, .. }] => {
            assert_eq!(check.subtotal, state.order.subtotal());
            *request
        }
        other => panic!("expected calculate, got {other:?}"),
    };
    update(
        state,
        Event::Calculated {
            request,
            result: Ok(q.clone()),
        },
    );
    assert_eq!(state.screen, Screen::PaymentChoice { quote: q.clone() });
    update(state, Event::ChoosePaymentMode(mode));
    assert_eq!(state.screen, Screen::Payment { mode, quote: q });
}

fn hold_effect(effects: &[Effect]) -> (RequestId, String, Kopecks) {
    match effects {
        [
            Effect::Hold {
                request, op_id, amount, ..
            },
        ] => (*request, op_id.clone(), *amount),
        other => panic!("expected one hold effect, got {other:?}"),
    }
}

fn notice_key(state: &State) -> Option<&'static str> {
    state.notice.as_ref().map(|n| n.key)
}

#[test]
fn brand_button_opens_add_guest_and_back_returns() {
    let mut state = ready_state();
    update(&mut state, Event::OpenPlugin);
    assert_eq!(state.screen, Screen::AddGuest);
    assert_eq!(state.active_field, Some(Field::Code));
    update(&mut state, Event::Back);
    assert_eq!(state.screen, Screen::Idle);
}

#[test]
fn keypad_edits_the_active_field() {
    let mut state = ready_state();
    update(&mut state, Event::OpenPlugin);
    update(&mut state, Event::Keypad(KeypadKey::Plus));
    update(&mut state, Event::Keypad(KeypadKey::Digit(7)));
    update(&mut state, Event::Keypad(KeypadKey::Plus));
    assert_eq!(state.fields.code, "+7", "a plus only leads");
    update(&mut state, Event::Keypad(KeypadKey::Backspace));
    assert_eq!(state.fields.code, "+");
    update(&mut state, Event::Keypad(KeypadKey::Clear));
    assert_eq!(state.fields.code, "");
    update(&mut state, Event::FieldEdited(Field::Code, "+7 916 123-45-67".into()));
    assert_eq!(state.fields.code, "+7 916 123-45-67");
}

#[test]
fn letter_keys_type_codes_and_nothing_else() {
    let mut state = ready_state();
    update(&mut state, Event::OpenPlugin);
    for key in [
        KeypadKey::Letter('G'),
        KeypadKey::Digit(1),
        KeypadKey::Letter('-'),
        KeypadKey::Letter('a'),
    ] {
        update(&mut state, Event::Keypad(key));
    }
    assert_eq!(state.fields.code, "G1-", "capitals and the hyphen; nothing else");
    // An amount field takes no letter.
    update(&mut state, Event::FocusField(Field::LinePrice));
    update(&mut state, Event::Keypad(KeypadKey::Letter('G')));
    assert_eq!(state.fields.line_price, "");
}

#[test]
fn the_name_keypad_writes_a_name_as_it_is_written() {
    let mut state = ready_state();
    update(&mut state, Event::FocusField(Field::Name));
    // Capitals from the keypad; a word starts capital and goes on small.
    for c in ['В', 'Е', 'Р', 'А', ' ', ' ', 'Ё', 'Л', 'К', 'И', 'Н', 'А', '-', 'Б'] {
        update(&mut state, Event::Keypad(KeypadKey::Letter(c)));
    }
    assert_eq!(state.fields.name, "Вера Ёлкина-Б", "one space between words");
    // Digits, signs and a space or hyphen first are not part of a name.
    update(&mut state, Event::Keypad(KeypadKey::Clear));
    for key in [
        KeypadKey::Letter(' '),
        KeypadKey::Letter('-'),
        KeypadKey::Digit(7),
        KeypadKey::Plus,
        KeypadKey::Letter('я'),
    ] {
        update(&mut state, Event::Keypad(key));
    }
    assert_eq!(state.fields.name, "Я");
    update(&mut state, Event::Keypad(KeypadKey::Backspace));
    assert_eq!(state.fields.name, "");
}

#[test]
fn guest_is_identified_and_shown() {
    let state = with_guest(false);
    assert_eq!(state.guest.as_ref().map(|g| g.name.as_str()), Some("Анна"));
    assert_eq!(state.order.lines.len(), 3, "the demo order, no gift");
}

#[test]
fn gift_code_adds_a_gift_line_once() {
    let mut state = with_guest(true);
    let gifts: Vec<_> = state.order.lines.iter().filter(|l| l.gift.is_some()).collect();
    assert_eq!(gifts.len(), 1);
    assert_eq!(gifts[0].price, Kopecks::ZERO, "a gift costs no money");
    assert_eq!(notice_key(&state), Some("info-gift-added"));
    assert_eq!(state.order.check_info().gift_codes, vec!["G100001".to_string()]);
    // The same guest's gift code scanned again: looked up, no replace question, not doubled.
    let effects = update(&mut state, Event::Scan(ScanEvent::manual("G100001", 1)));
    let (request, _) = identify_request(&effects);
    assert_eq!(
        state.screen,
        Screen::Guest,
        "the card stays while the code is looked up"
    );
    let identification = Identification {
        card: card(1, "Анна", rub(350)),
        gift: Some(gift()),
    };
    update(
        &mut state,
        Event::Identified {
            request,
            result: Ok(identification),
        },
    );
    assert_eq!(state.screen, Screen::Guest, "the guest's own gift asks nothing");
    assert_eq!(notice_key(&state), Some("info-gift-already-in-order"));
    assert_eq!(state.order.lines.iter().filter(|l| l.gift.is_some()).count(), 1);
}

/// The guest's own gift code, scanned while that guest is on the order, just adds the gift.
#[test]
fn the_attached_guests_own_gift_code_adds_the_gift_without_asking() {
    let mut state = with_guest(false);
    let effects = update(&mut state, Event::Scan(ScanEvent::manual("G100001", 1)));
    let (request, _) = identify_request(&effects);
    update(
        &mut state,
        Event::Identified {
            request,
            result: Ok(Identification {
                card: card(1, "Анна", rub(350)),
                gift: Some(gift()),
            }),
        },
    );
    assert_eq!(state.screen, Screen::Guest);
    assert_eq!(notice_key(&state), Some("info-gift-added"));
    assert_eq!(state.order.check_info().gift_codes, vec!["G100001".to_string()]);
}

#[test]
fn unknown_code_keeps_the_code_for_correction() {
    let mut state = ready_state();
    update(&mut state, Event::OpenPlugin);
    update(&mut state, Event::FieldEdited(Field::Code, "999999".into()));
    let effects = update(&mut state, Event::SubmitCode);
    let (request, _) = identify_request(&effects);
    update(
        &mut state,
        Event::Identified {
            request,
            result: Err(LoyaltyError::UnknownCode),
        },
    );
    assert_eq!(state.screen, Screen::AddGuest);
    assert_eq!(notice_key(&state), Some("err-unknown-code"));
    assert_eq!(state.fields.code, "999999");
    assert!(state.guest.is_none());
}

#[test]
fn empty_and_overlong_codes_are_refused_without_a_lookup() {
    let mut state = ready_state();
    update(&mut state, Event::OpenPlugin);
    let before = state.clone();
    assert!(update(&mut state, Event::SubmitCode).is_empty());
    assert_eq!(notice_key(&state), Some("err-code-empty"));
    update(&mut state, Event::FieldEdited(Field::Code, "   ".into()));
    assert!(update(&mut state, Event::SubmitCode).is_empty());
    assert_eq!(notice_key(&state), Some("err-code-empty"));
    let long = "7".repeat(500);
    assert!(update(&mut state, Event::Scan(ScanEvent::manual(long, 1))).is_empty());
    assert_eq!(notice_key(&state), Some("err-code-too-long"));
    assert_eq!(state.screen, before.screen);
    assert!(state.guest.is_none());
}

#[test]
fn daily_limit_refusal_is_shown() {
    let mut state = ready_state();
    let effects = update(&mut state, Event::Scan(ScanEvent::manual("100005", 1)));
    let (request, _) = identify_request(&effects);
    update(
        &mut state,
        Event::Identified {
            request,
            result: Err(LoyaltyError::DailyOperationsLimit { limit: 2 }),
        },
    );
    assert_eq!(notice_key(&state), Some("err-daily-ops-limit"));
    assert!(state.guest.is_none());
}

#[test]
fn second_guest_asks_before_replacing_and_no_keeps_the_first() {
    let mut state = with_guest(true);
    let effects = update(&mut state, Event::Scan(ScanEvent::manual("100002", 5)));
    let (request, _) = identify_request(&effects);
    update(
        &mut state,
        Event::Identified {
            request,
            result: Ok(Identification {
                card: card(2, "Иван", rub(1250)),
                gift: None,
            }),
        },
    );
    let Screen::ConfirmReplace { identification } = &state.screen else {
        panic!("no replace question: {:?}", state.screen)
    };
    assert_eq!(identification.card.name, "Иван", "the question names the new guest");
    assert_eq!(
        state.guest.as_ref().map(|g| g.guest_id),
        Some(1),
        "nothing replaced yet"
    );
    update(&mut state, Event::ReplaceGuest(false));
    assert_eq!(state.screen, Screen::Guest);
    assert_eq!(state.guest.as_ref().map(|g| g.guest_id), Some(1));
    assert_eq!(
        state.order.lines.iter().filter(|l| l.gift.is_some()).count(),
        1,
        "the gift stays"
    );
}

#[test]
fn second_guest_replaced_after_yes() {
    let mut state = with_guest(true);
    let effects = update(&mut state, Event::Scan(ScanEvent::manual("100002", 5)));
    let (request, scan) = identify_request(&effects);
    assert_eq!(scan.payload, "100002");
    update(
        &mut state,
        Event::Identified {
            request,
            result: Ok(Identification {
                card: card(2, "Иван", rub(1250)),
                gift: None,
            }),
        },
    );
    let effects = update(&mut state, Event::ReplaceGuest(true));
    assert!(effects.is_empty(), "the guest was already looked up");
    assert_eq!(state.guest.as_ref().map(|g| g.name.as_str()), Some("Иван"));
    assert!(
        state.order.lines.iter().all(|l| l.gift.is_none()),
        "replacing removes the old guest's gifts"
    );
}

#[test]
fn remove_guest_takes_gifts_out_of_the_order() {
    let mut state = with_guest(true);
    update(&mut state, Event::RemoveGuest);
    assert!(state.guest.is_none());
    assert_eq!(state.screen, Screen::Idle);
    assert!(state.order.lines.iter().all(|l| l.gift.is_none()));
    assert_eq!(state.order.lines.len(), 3, "the paid lines stay");
    assert_eq!(notice_key(&state), Some("info-guest-removed"));
}

#[test]
fn stamps_and_promotions_views_need_a_guest() {
    let mut state = ready_state();
    update(&mut state, Event::ShowStamps);
    assert_eq!(state.screen, Screen::Idle);
    assert_eq!(notice_key(&state), Some("err-no-guest"));
    let mut state = with_guest(false);
    update(&mut state, Event::ShowStamps);
    assert_eq!(state.screen, Screen::Stamps);
    update(&mut state, Event::Back);
    update(&mut state, Event::ShowPromotions);
    assert_eq!(state.screen, Screen::Promotions);
    update(&mut state, Event::Back);
    assert_eq!(state.screen, Screen::Guest);
}

#[test]
fn order_lines_typed_on_the_keypad() {
    let mut state = ready_state();
    update(&mut state, Event::OpenOrder);
    assert_eq!(state.active_field, Some(Field::LinePrice));
    for key in [
        KeypadKey::Digit(1),
        KeypadKey::Digit(5),
        KeypadKey::Comma,
        KeypadKey::Digit(5),
    ] {
        update(&mut state, Event::Keypad(key));
    }
    update(&mut state, Event::AddOrderLine);
    assert_eq!(state.order.subtotal(), Kopecks(1_550));
    update(&mut state, Event::FieldEdited(Field::LinePrice, "12abc".into()));
    update(&mut state, Event::AddOrderLine);
    assert_eq!(notice_key(&state), Some("err-amount-not-number"));
    assert_eq!(state.order.subtotal(), Kopecks(1_550), "a bad amount adds nothing");
    update(&mut state, Event::FieldEdited(Field::LinePrice, "1,234".into()));
    update(&mut state, Event::AddOrderLine);
    assert_eq!(notice_key(&state), Some("err-amount-decimals"));
    update(&mut state, Event::ClearOrder);
    assert_eq!(state.order.subtotal(), Kopecks::ZERO);
}

#[test]
fn payment_needs_a_guest_and_an_order() {
    let mut state = ready_state();
    assert!(update(&mut state, Event::StartPayment).is_empty());
    assert_eq!(notice_key(&state), Some("err-no-guest"));
    let mut state = with_guest(false);
    update(&mut state, Event::ClearOrder);
    assert!(update(&mut state, Event::StartPayment).is_empty());
    assert_eq!(notice_key(&state), Some("err-order-empty"));
}

#[test]
fn spend_payment_prefills_max_and_exact_amount_fills_the_remainder() {
    let mut state = with_guest(false);
    let due = state.order.subtotal(); // 1070,00
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    assert_eq!(state.fields.spend, "350", "the maximum is pre-filled");
    assert_eq!(state.active_field, Some(Field::Spend));
    update(&mut state, Event::ExactAmount);
    assert_eq!(state.fields.tendered, "720", "remainder = 1070 - 350");
    let Screen::Payment { quote: q, .. } = state.screen.clone() else {
        panic!()
    };
    assert_eq!(state.change(&q, PaymentMode::Spend), Some(Kopecks::ZERO));
    update(&mut state, Event::FieldEdited(Field::Tendered, "1000".into()));
    assert_eq!(state.change(&q, PaymentMode::Spend), Some(rub(280)));
}

#[test]
fn spend_over_the_maximum_is_refused() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::FieldEdited(Field::Spend, "351".into()));
    update(&mut state, Event::ExactAmount);
    let effects = update(&mut state, Event::ConfirmPayment);
    assert!(effects.is_empty(), "no hold is asked for");
    assert_eq!(notice_key(&state), Some("err-over-max"));
    assert!(matches!(state.screen, Screen::Payment { .. }));
}

#[test]
fn spend_with_kopecks_beyond_the_step_is_refused() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::FieldEdited(Field::Spend, "100,50".into()));
    update(&mut state, Event::ExactAmount);
    assert!(update(&mut state, Event::ConfirmPayment).is_empty());
    assert_eq!(notice_key(&state), Some("err-spend-step"));
}

#[test]
fn letters_in_the_spend_amount_are_refused() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::FieldEdited(Field::Spend, "сто".into()));
    assert!(update(&mut state, Event::ExactAmount).is_empty());
    assert_eq!(notice_key(&state), Some("err-amount-not-number"));
    assert!(update(&mut state, Event::ConfirmPayment).is_empty());
    assert_eq!(notice_key(&state), Some("err-amount-not-number"));
}

#[test]
fn cash_tendered_short_of_the_remainder_is_refused_card_is_not() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::FieldEdited(Field::Tendered, "100".into()));
    assert!(update(&mut state, Event::ConfirmPayment).is_empty());
    assert_eq!(notice_key(&state), Some("err-tendered-short"));
    update(&mut state, Event::SetTender(TenderMethod::Card));
    assert_eq!(
        update(&mut state, Event::ConfirmPayment).len(),
        1,
        "card needs no tendered amount"
    );
}

#[test]
fn spend_payment_holds_commits_and_succeeds() {
    let mut state = with_guest(true);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::FieldEdited(Field::Spend, "200".into()));
    update(&mut state, Event::ExactAmount);
    let (request, op_id, amount) = hold_effect(&update(&mut state, Event::ConfirmPayment));
    assert_eq!(amount, rub(200));
    assert!(op_id.starts_with("till-test-"));
    assert!(matches!(state.screen, Screen::Processing { .. }));
    let receipt = HoldReceipt {
        hold_id: 7,
        amount,
        expires_at: 900,
    };
    let effects = update(
        &mut state,
        Event::HoldPlaced {
            request,
            result: Ok(receipt),
        },
    );
    let (request, commit_op) = match effects.as_slice() {
        [
            Effect::CommitPayment {
                request,
                op_id,
                hold: Some(7),
                spent,
                check,
                ..
            },
        ] => {
            assert_eq!(*spent, rub(200));
            assert_eq!(
                check.gift_codes,
                vec!["G100001".to_string()],
                "the gift is redeemed with the payment"
            );
            (*request, op_id.clone())
        }
        other => panic!("expected commit, got {other:?}"),
    };
    assert_ne!(commit_op, op_id, "each write has its own operation id");
    assert!(
        update(&mut state, Event::CancelPayment).is_empty(),
        "a commit on its way cannot be cancelled"
    );
    let paid = PaymentReceipt {
        spent: rub(200),
        accrued: Kopecks(4_350),
        balance_after: Kopecks(19_350),
        new_group: None,
    };
    update(
        &mut state,
        Event::PaymentCommitted {
            request,
            result: Ok(paid.clone()),
        },
    );
    assert_eq!(
        state.screen,
        Screen::Done {
            receipt: paid,
            mode: PaymentMode::Spend,
            provisional: false,
        }
    );
    let notice = state.notice.clone().expect("success message");
    assert_eq!(notice.key, "done-spent-accrued");
    assert_eq!(
        notice.args,
        vec![
            ("spent", NoticeArg::Money(rub(200))),
            ("accrued", NoticeArg::Money(Kopecks(4_350)))
        ]
    );
    update(&mut state, Event::NewOrder);
    assert_eq!(state.screen, Screen::Idle);
    assert!(state.guest.is_none() && state.order.lines.is_empty());
}

#[test]
fn keep_payment_commits_without_a_hold() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Keep, quote(due, rub(350)));
    assert_eq!(state.active_field, Some(Field::Tendered));
    update(&mut state, Event::ExactAmount);
    assert_eq!(state.fields.tendered, "1070");
    let effects = update(&mut state, Event::ConfirmPayment);
    let request = match effects.as_slice() {
        [
            Effect::CommitPayment {
                request,
                hold: None,
                spent,
                ..
            },
        ] if *spent == Kopecks::ZERO => *request,
        other => panic!("expected a commit without hold, got {other:?}"),
    };
    let paid = PaymentReceipt {
        spent: Kopecks::ZERO,
        accrued: Kopecks(5_350),
        balance_after: Kopecks(40_350),
        new_group: None,
    };
    update(
        &mut state,
        Event::PaymentCommitted {
            request,
            result: Ok(paid),
        },
    );
    assert_eq!(notice_key(&state), Some("done-accrued"));
}

#[test]
fn cancel_before_confirm_leaves_nothing_to_void() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    assert!(update(&mut state, Event::CancelPayment).is_empty());
    assert_eq!(state.screen, Screen::Guest);
    assert!(state.fields.spend.is_empty());
    // Nothing was held: the message must not speak of a released reserve.
    assert_eq!(notice_key(&state), Some("info-payment-cancelled-nothing-held"));
}

#[test]
fn an_offline_spend_refusal_says_so_and_keeping_bonuses_then_closes_the_check_provisionally() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(100)));
    update(&mut state, Event::ExactAmount);
    let (request, ..) = hold_effect(&update(&mut state, Event::ConfirmPayment));
    update(
        &mut state,
        Event::HoldPlaced {
            request,
            result: Err(LoyaltyError::ServerAway(AwayReason::SpendingOff)),
        },
    );
    assert_eq!(notice_key(&state), Some("err-offline-no-spending"));
    assert!(matches!(state.screen, Screen::Payment { .. }));
    update(&mut state, Event::CancelPayment);
    assert_eq!(notice_key(&state), Some("info-payment-cancelled-nothing-held"));
    // No dead end: «Касса» again, keep bonuses, a provisional receipt.
    to_payment(&mut state, PaymentMode::Keep, quote(due, Kopecks::ZERO));
    update(&mut state, Event::ExactAmount);
    let effects = update(&mut state, Event::ConfirmPayment);
    let request = match effects.as_slice() {
        [
            Effect::CommitPayment {
                request, hold: None, ..
            },
        ] => *request,
        other => panic!("expected a commit without a hold, got {other:?}"),
    };
    let receipt = PaymentReceipt {
        spent: Kopecks::ZERO,
        accrued: rub(10),
        balance_after: rub(360),
        new_group: None,
    };
    update(
        &mut state,
        Event::PaymentProvisional {
            request,
            receipt: receipt.clone(),
        },
    );
    assert_eq!(
        state.screen,
        Screen::Done {
            receipt,
            mode: PaymentMode::Keep,
            provisional: true,
        }
    );
    assert_eq!(notice_key(&state), Some("done-accrued-provisional"));
}

#[test]
fn an_unknown_guest_offline_gets_its_own_message() {
    let mut state = ready_state();
    update(&mut state, Event::OpenPlugin);
    let effects = update(&mut state, Event::Scan(ScanEvent::manual("2000000000022", 0)));
    let (request, _) = identify_request(&effects);
    update(
        &mut state,
        Event::Identified {
            request,
            result: Err(LoyaltyError::ServerAway(AwayReason::GuestNotCached)),
        },
    );
    assert_eq!(notice_key(&state), Some("err-offline-unknown-guest"));
    assert!(state.guest.is_none());
}

#[test]
fn cancel_while_the_hold_is_on_its_way_voids_it_when_it_arrives() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::ExactAmount);
    let (request, _, amount) = hold_effect(&update(&mut state, Event::ConfirmPayment));
    assert!(update(&mut state, Event::CancelPayment).is_empty());
    let effects = update(
        &mut state,
        Event::HoldPlaced {
            request,
            result: Ok(HoldReceipt {
                hold_id: 9,
                amount,
                expires_at: 900,
            }),
        },
    );
    let request = match effects.as_slice() {
        [Effect::VoidHold { request, hold: 9, .. }] => *request,
        other => panic!("expected the hold to be voided, got {other:?}"),
    };
    update(
        &mut state,
        Event::HoldVoided {
            request,
            result: Ok(()),
        },
    );
    assert_eq!(state.screen, Screen::Guest);
    assert_eq!(notice_key(&state), Some("info-payment-cancelled"));
}

#[test]
fn guest_removed_mid_payment_voids_the_hold_and_leaves() {
    let mut state = with_guest(true);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::ExactAmount);
    let (request, _, amount) = hold_effect(&update(&mut state, Event::ConfirmPayment));
    assert!(update(&mut state, Event::RemoveGuest).is_empty());
    assert!(state.guest.is_some(), "the guest stays until the hold is released");
    let effects = update(
        &mut state,
        Event::HoldPlaced {
            request,
            result: Ok(HoldReceipt {
                hold_id: 3,
                amount,
                expires_at: 900,
            }),
        },
    );
    let request = match effects.as_slice() {
        [Effect::VoidHold { request, hold: 3, .. }] => *request,
        other => panic!("expected void, got {other:?}"),
    };
    update(
        &mut state,
        Event::HoldVoided {
            request,
            result: Ok(()),
        },
    );
    assert!(state.guest.is_none());
    assert_eq!(state.screen, Screen::Idle);
    assert!(state.order.lines.iter().all(|l| l.gift.is_none()));
}

#[test]
fn guest_removed_on_the_payment_form_leaves_without_any_effect() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    assert!(update(&mut state, Event::RemoveGuest).is_empty());
    assert!(state.guest.is_none());
    assert_eq!(state.screen, Screen::Idle);
}

/// Confirms the pre-filled spend, places hold `hold_id`, and has its commit refused with
/// `refusal`. Returns the request number of the void the core asks for.
fn failed_commit(state: &mut State, hold_id: HoldId, refusal: LoyaltyError) -> RequestId {
    update(state, Event::ExactAmount);
    let (request, _, amount) = hold_effect(&update(state, Event::ConfirmPayment));
    let receipt = HoldReceipt {
        hold_id,
        amount,
        expires_at: 900,
    };
    let effects = update(
        state,
        Event::HoldPlaced {
            request,
            result: Ok(receipt),
        },
    );
    let [Effect::CommitPayment { request, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let effects = update(
        state,
        Event::PaymentCommitted {
            request: *request,
            result: Err(refusal),
        },
    );
    match effects.as_slice() {
        [Effect::VoidHold { request, hold, .. }] if *hold == hold_id => *request,
        other => panic!("expected the hold to be voided, got {other:?}"),
    }
}

#[test]
fn a_failed_commit_releases_its_hold() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    let request = failed_commit(&mut state, 5, LoyaltyError::Storage("disk".into()));
    update(
        &mut state,
        Event::HoldVoided {
            request,
            result: Ok(()),
        },
    );
    assert!(
        matches!(state.screen, Screen::Payment { .. }),
        "the cashier may try again"
    );
    assert_eq!(notice_key(&state), Some("err-storage"));
}

#[test]
fn a_refused_hold_returns_to_the_form_with_the_reason() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::ExactAmount);
    let (request, _, _) = hold_effect(&update(&mut state, Event::ConfirmPayment));
    let refusal = LoyaltyError::OverMaximum {
        requested: rub(350),
        max: rub(100),
    };
    assert!(
        update(
            &mut state,
            Event::HoldPlaced {
                request,
                result: Err(refusal)
            }
        )
        .is_empty()
    );
    assert!(matches!(state.screen, Screen::Payment { .. }));
    assert_eq!(notice_key(&state), Some("err-over-max"));
}

#[test]
fn a_stale_hold_answer_is_voided_not_kept() {
    let mut state = with_guest(false);
    let effects = update(
        &mut state,
        Event::HoldPlaced {
            request: 999,
            result: Ok(HoldReceipt {
                hold_id: 11,
                amount: rub(5),
                expires_at: 1,
            }),
        },
    );
    assert!(matches!(effects.as_slice(), [Effect::VoidHold { hold: 11, .. }]));
    assert_eq!(state.screen, Screen::Guest, "nothing else changes");
}

#[test]
fn stale_identify_answers_are_dropped() {
    let mut state = ready_state();
    let effects = update(&mut state, Event::Scan(ScanEvent::manual("100001", 1)));
    let (request, _) = identify_request(&effects);
    update(&mut state, Event::Back);
    assert_eq!(state.screen, Screen::Idle);
    update(
        &mut state,
        Event::Identified {
            request,
            result: Ok(Identification {
                card: card(1, "Анна", rub(1)),
                gift: None,
            }),
        },
    );
    assert!(
        state.guest.is_none(),
        "the cashier left; the late answer attaches nobody"
    );
}

#[test]
fn scans_during_payment_are_refused() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    assert!(update(&mut state, Event::Scan(ScanEvent::manual("100002", 1))).is_empty());
    assert_eq!(notice_key(&state), Some("err-finish-payment-first"));
    assert!(matches!(state.screen, Screen::Payment { .. }));
}

#[test]
fn backend_failure_is_reported() {
    let mut state = State::new("t", false);
    update(
        &mut state,
        Event::BackendReady(Err(LoyaltyError::Storage("locked".into()))),
    );
    assert!(matches!(state.backend, BackendStatus::Failed(_)));
    assert_eq!(notice_key(&state), Some("err-storage"));
}

#[test]
fn notices_can_be_dismissed_and_fields_focused() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::FocusField(Field::Tendered));
    update(&mut state, Event::Keypad(KeypadKey::Digit(5)));
    assert_eq!(state.fields.tendered, "5");
    assert_eq!(
        state.fields.spend, "350",
        "the keypad typed into the focused field only"
    );
    update(&mut state, Event::FieldEdited(Field::Spend, "x".into()));
    update(&mut state, Event::ConfirmPayment);
    assert!(state.notice.is_some());
    update(&mut state, Event::DismissNotice);
    assert!(state.notice.is_none());
}

#[test]
fn guest_removed_while_a_failed_commit_is_released_leaves_after_the_release() {
    let mut state = with_guest(true);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    let expired = LoyaltyError::HoldNotOpen {
        status: "expired".into(),
    };
    let request = failed_commit(&mut state, 8, expired);
    assert!(
        update(&mut state, Event::RemoveGuest).is_empty(),
        "the release is already on its way"
    );
    update(
        &mut state,
        Event::HoldVoided {
            request,
            result: Ok(()),
        },
    );
    assert!(state.guest.is_none(), "the guest leaves once the hold is released");
    assert_eq!(state.screen, Screen::Idle);
    assert!(state.order.lines.iter().all(|l| l.gift.is_none()));
}

fn payment_quote(state: &State) -> (PaymentMode, SpendQuote) {
    let Screen::Payment { mode, quote } = state.screen.clone() else {
        panic!("not on the payment form: {:?}", state.screen)
    };
    (mode, quote)
}

/// Every refusal of «Провести оплату» is known as the cashier types, so the form shows it at
/// once and keeps the button disabled, instead of a message at the top after the press.
#[test]
fn the_spend_form_knows_its_refusals_before_the_press() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    let (mode, q) = payment_quote(&state);
    update(&mut state, Event::ExactAmount);
    assert_eq!(state.payment_blocker(&q, mode), None);

    update(&mut state, Event::FieldEdited(Field::Spend, "600".into()));
    let problem = state.spend_problem(&q, mode).expect("over the maximum");
    assert_eq!(problem.key, "err-over-max");
    assert_eq!(state.payment_blocker(&q, mode), Some(problem));
    assert_eq!(
        state.tendered_problem(&q, mode),
        None,
        "no remainder from a wrong amount"
    );

    update(&mut state, Event::FieldEdited(Field::Spend, "100,50".into()));
    assert_eq!(state.spend_problem(&q, mode).map(|n| n.key), Some("err-spend-step"));

    update(&mut state, Event::FieldEdited(Field::Spend, "100".into()));
    update(&mut state, Event::FieldEdited(Field::Tendered, "5".into()));
    assert_eq!(state.spend_problem(&q, mode), None);
    assert_eq!(
        state.payment_blocker(&q, mode).map(|n| n.key),
        Some("err-tendered-short")
    );
    update(&mut state, Event::SetTender(TenderMethod::Card));
    assert_eq!(state.payment_blocker(&q, mode), None, "card needs no cash");
}

/// «Получено от гостя» follows the amount to spend: the exact remainder stays exact.
#[test]
fn the_cash_received_follows_the_amount_to_spend() {
    let mut state = with_guest(false);
    let due = state.order.subtotal(); // 1070,00
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(350)));
    update(&mut state, Event::ExactAmount);
    assert_eq!(state.fields.tendered, "720");
    update(&mut state, Event::FieldEdited(Field::Spend, "100".into()));
    assert_eq!(state.fields.tendered, "970", "the remainder of the new amount");
    update(&mut state, Event::FieldEdited(Field::Spend, "600".into()));
    assert_eq!(
        state.fields.tendered, "",
        "no remainder for a wrong amount: cleared, not kept"
    );
    // Cash the cashier typed is kept, and flagged when it falls short.
    update(&mut state, Event::FieldEdited(Field::Spend, "300".into()));
    update(&mut state, Event::FieldEdited(Field::Tendered, "1000".into()));
    update(&mut state, Event::FieldEdited(Field::Spend, "0".into()));
    assert_eq!(state.fields.tendered, "1000");
    let (mode, q) = payment_quote(&state);
    assert_eq!(
        state.tendered_problem(&q, mode).map(|n| n.key),
        Some("err-tendered-short")
    );
}

/// The keypad's first digit replaces the pre-filled maximum (481 does not become 4811); the
/// quick amounts set the maximum, half of it down to the step, or nothing.
#[test]
fn the_keypad_replaces_a_prefilled_amount_and_quick_amounts_set_it() {
    let mut state = with_guest(false);
    let due = state.order.subtotal();
    to_payment(&mut state, PaymentMode::Spend, quote(due, rub(481)));
    assert_eq!(state.fields.spend, "481");
    update(&mut state, Event::Keypad(KeypadKey::Digit(1)));
    assert_eq!(state.fields.spend, "1", "the first key replaces the maximum");
    update(&mut state, Event::Keypad(KeypadKey::Digit(2)));
    assert_eq!(state.fields.spend, "12", "later keys append");

    update(&mut state, Event::SpendPreset(SpendPreset::Half));
    assert_eq!(state.fields.spend, "240", "half of 481 down to the whole-rouble step");
    update(&mut state, Event::SpendPreset(SpendPreset::Max));
    assert_eq!(state.fields.spend, "481");
    update(&mut state, Event::Keypad(KeypadKey::Digit(5)));
    assert_eq!(state.fields.spend, "5");
    update(&mut state, Event::SpendPreset(SpendPreset::Zero));
    assert_eq!(state.fields.spend, "0");

    // Nothing to spend pays as when keeping bonuses: no hold.
    update(&mut state, Event::SetTender(TenderMethod::Card));
    let effects = update(&mut state, Event::ConfirmPayment);
    assert!(
        matches!(effects.as_slice(), [Effect::CommitPayment { hold: None, spent, .. }] if *spent == Kopecks::ZERO),
        "{effects:?}"
    );
}

/// The add-guest screen after `code` was looked up and not found; `enrolment` is what the
/// worker learnt of the programme.
fn not_found(code: &str, enrolment: Option<Kopecks>) -> State {
    let mut state = ready_state();
    update(&mut state, Event::UseDemoOrder);
    update(&mut state, Event::OpenPlugin);
    update(&mut state, Event::FieldEdited(Field::Code, code.into()));
    let effects = update(&mut state, Event::SubmitCode);
    let (request, scan) = identify_request(&effects);
    update(
        &mut state,
        Event::NotFound {
            request,
            code: scan,
            enrolment,
        },
    );
    assert_eq!(state.screen, Screen::AddGuest);
    assert_eq!(notice_key(&state), Some("err-unknown-code"));
    state
}

fn enrol_effect(effects: &[Effect]) -> (RequestId, String, ScanEvent, String, String) {
    match effects {
        [
            Effect::Enrol {
                request,
                op_id,
                code,
                phone,
                name,
            },
        ] => (*request, op_id.clone(), code.clone(), phone.clone(), name.clone()),
        other => panic!("expected one enrol effect, got {other:?}"),
    }
}

#[test]
fn a_code_not_found_offers_enrolment_only_when_the_programme_allows_it() {
    let mut state = not_found("CARD-77", None);
    assert!(state.enrol_offer.is_none(), "the programme does not allow it");
    assert!(update(&mut state, Event::StartEnrol).is_empty());
    assert_eq!(state.screen, Screen::AddGuest, "nothing to start");

    let mut state = not_found("CARD-77", Some(rub(100)));
    let offer = state.enrol_offer.clone().expect("«Новый гость» is offered");
    assert_eq!(offer.code.payload, "CARD-77");
    assert_eq!(offer.welcome_bonus, rub(100));
    // Typing another code withdraws the offer: it belongs to the code that was not found.
    update(&mut state, Event::FieldEdited(Field::Code, "CARD-78".into()));
    let effects = update(&mut state, Event::SubmitCode);
    assert!(state.enrol_offer.is_none());
    identify_request(&effects);
}

#[test]
fn enrolment_checks_the_phone_then_puts_the_new_guest_on_the_order() {
    let mut state = not_found("CARD-77", Some(rub(100)));
    update(&mut state, Event::StartEnrol);
    let Screen::Enrol(enrolment) = state.screen.clone() else {
        panic!("the enrolment form, got {:?}", state.screen);
    };
    assert_eq!(enrolment.code.payload, "CARD-77", "the scanned code becomes the card");
    assert_eq!(enrolment.welcome_bonus, rub(100));
    assert_eq!(state.active_field, Some(Field::Phone), "the keypad types the phone");
    assert!(state.fields.phone.is_empty());

    // No phone, then a phone that is none: refused on the till, nothing sent.
    assert!(update(&mut state, Event::SubmitEnrol).is_empty());
    assert_eq!(notice_key(&state), Some("err-enrol-phone-empty"));
    update(&mut state, Event::FieldEdited(Field::Phone, "12345".into()));
    assert!(update(&mut state, Event::SubmitEnrol).is_empty());
    assert_eq!(notice_key(&state), Some("err-enrol-phone-bad"));
    update(&mut state, Event::FieldEdited(Field::Name, "я".repeat(201)));
    update(&mut state, Event::FieldEdited(Field::Phone, String::new()));
    for key in [8, 9, 1, 6, 5, 5, 5, 1, 1, 2, 2] {
        update(&mut state, Event::Keypad(KeypadKey::Digit(key)));
    }
    assert_eq!(state.fields.phone, "89165551122");
    assert!(update(&mut state, Event::SubmitEnrol).is_empty());
    assert_eq!(notice_key(&state), Some("err-enrol-name"));
    assert_eq!(state.active_field, Some(Field::Name));
    update(&mut state, Event::FieldEdited(Field::Name, " Вера ".into()));

    let effects = update(&mut state, Event::SubmitEnrol);
    let (request, op_id, code, phone, name) = enrol_effect(&effects);
    assert_eq!(
        (code.payload.as_str(), phone.as_str(), name.as_str()),
        ("CARD-77", "89165551122", "Вера")
    );
    assert!(state.is_busy());

    // A taken phone: said as such, the form stays for a correction, which is a new request.
    update(
        &mut state,
        Event::Enrolled {
            request,
            result: Err(LoyaltyError::IdentifierTaken(IdentifierKind::Phone)),
        },
    );
    assert_eq!(notice_key(&state), Some("err-enrol-phone-taken"));
    assert!(matches!(state.screen, Screen::Enrol(_)));
    let effects = update(&mut state, Event::SubmitEnrol);
    let (request, second_op, ..) = enrol_effect(&effects);
    assert_ne!(second_op, op_id, "a refused request is not repeated under its id");

    // The server away: refused with its own message, and the retry repeats the same op id
    // (the first may have been made, its answer lost).
    update(
        &mut state,
        Event::Enrolled {
            request,
            result: Err(LoyaltyError::ServerAway(AwayReason::NoEnrolment)),
        },
    );
    assert_eq!(notice_key(&state), Some("err-enrol-offline"));
    let effects = update(&mut state, Event::SubmitEnrol);
    let (request, retry_op, ..) = enrol_effect(&effects);
    assert_eq!(retry_op, second_op, "the retry is the same request");

    update(
        &mut state,
        Event::Enrolled {
            request,
            result: Ok(Identification {
                card: card(7, "Вера", rub(100)),
                gift: None,
            }),
        },
    );
    assert_eq!(state.screen, Screen::Guest, "the new guest is on the order at once");
    assert_eq!(state.guest.as_ref().map(|g| g.guest_id), Some(7));
    assert_eq!(notice_key(&state), Some("info-guest-enrolled"));
    assert!(state.fields.phone.is_empty() && state.fields.name.is_empty());
    assert!(!state.order.lines.is_empty(), "the order is kept");
}

#[test]
fn enrolment_refusals_and_back_keep_the_code() {
    let mut state = not_found("CARD-77", Some(Kopecks::ZERO));
    update(&mut state, Event::StartEnrol);
    update(&mut state, Event::FieldEdited(Field::Phone, "+7 916 555-11-22".into()));
    for (refusal, key) in [
        (
            LoyaltyError::IdentifierTaken(IdentifierKind::CardBarcode),
            "err-enrol-code-taken",
        ),
        (LoyaltyError::EnrolmentOff, "err-enrol-off"),
        (LoyaltyError::Unavailable("down".into()), "err-enrol-offline"),
    ] {
        let (request, ..) = enrol_effect(&update(&mut state, Event::SubmitEnrol));
        update(
            &mut state,
            Event::Enrolled {
                request,
                result: Err(refusal),
            },
        );
        assert_eq!(notice_key(&state), Some(key));
        assert!(state.guest.is_none());
    }
    // Back while a request is on its way: its answer is dropped, the code is still there.
    let (request, ..) = enrol_effect(&update(&mut state, Event::SubmitEnrol));
    update(&mut state, Event::Back);
    assert_eq!(state.screen, Screen::AddGuest);
    assert_eq!(state.fields.code, "CARD-77");
    update(
        &mut state,
        Event::Enrolled {
            request,
            result: Ok(Identification {
                card: card(7, "Вера", rub(0)),
                gift: None,
            }),
        },
    );
    assert!(state.guest.is_none(), "a late answer is dropped");
    assert_eq!(state.screen, Screen::AddGuest);
}

#[test]
fn a_phone_typed_as_the_code_fills_the_phone_field() {
    let mut state = not_found("8 916 555-11-22", Some(Kopecks::ZERO));
    update(&mut state, Event::StartEnrol);
    assert_eq!(state.fields.phone, "8 916 555-11-22");
}

#[test]
fn the_pos_order_replaces_typed_lines_and_typing_is_the_fallback() {
    use loyalty_till::workflow::{OrderLine, PosOrderShown};
    let mut state = State::new("t", false);
    update(&mut state, Event::OpenOrder);
    assert_eq!(state.screen, Screen::Order, "no POS: the order is typed");
    update(&mut state, Event::FieldEdited(Field::LinePrice, "500".into()));
    update(&mut state, Event::AddOrderLine);
    assert_eq!(state.order.subtotal(), Kopecks(50_000));
    let shown = PosOrderShown {
        order_id: "6f1c2b1e-0d1a-4c53-9a44-3b7e2f9d0a11".into(),
        number: "117".into(),
        table: Some("5".into()),
        lines: vec![OrderLine {
            name: "Борщ".into(),
            quantity: 2,
            price: Kopecks(35_000),
            gift: None,
        }],
        held: None,
    };
    update(&mut state, Event::PosOrder(Some(shown.clone())));
    assert_eq!(
        state.screen,
        Screen::Idle,
        "the typing screen closes: the POS's order is the check"
    );
    assert_eq!(state.order.subtotal(), Kopecks(70_000));
    assert_eq!(state.order.lines.len(), 1);
    update(&mut state, Event::OpenOrder);
    assert_eq!(state.screen, Screen::Idle);
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("pos-connected-hint"));
    // The POS closed its order: its lines leave, typing is back.
    update(&mut state, Event::PosOrder(None));
    assert!(state.order.lines.is_empty());
    update(&mut state, Event::OpenOrder);
    assert_eq!(state.screen, Screen::Order);
}

#[test]
fn on_a_pos_order_the_confirmation_holds_for_the_pos_and_never_commits() {
    use loyalty_till::workflow::{OrderLine, PosOrderShown};
    let mut state = with_guest(false);
    let order_id = "6f1c2b1e-0d1a-4c53-9a44-3b7e2f9d0a11".to_string();
    let shown = PosOrderShown {
        order_id: order_id.clone(),
        number: "117".into(),
        table: None,
        lines: vec![OrderLine {
            name: "Борщ".into(),
            quantity: 1,
            price: rub(1_000),
            gift: None,
        }],
        held: None,
    };
    update(&mut state, Event::PosOrder(Some(shown)));
    assert_eq!(state.order.subtotal(), rub(1_000));
    to_payment(&mut state, PaymentMode::Spend, quote(rub(1_000), rub(300)));
    update(&mut state, Event::ExactAmount);
    let effects = update(&mut state, Event::ConfirmPayment);
    let request = match effects.as_slice() {
        [
            Effect::PosConfirm {
                request,
                order_id: id,
                owner,
                shares,
                ..
            },
        ] => {
            assert_eq!((id, *owner), (&order_id, 1));
            assert_eq!(
                shares,
                &[CardShare {
                    guest: 1,
                    amount: rub(300)
                }]
            );
            *request
        }
        other => panic!("expected one POS confirm and no hold or commit of the till's own, got {other:?}"),
    };
    // The POS order's engine refused: back to the form with the reason.
    update(
        &mut state,
        Event::PosConfirmed {
            request,
            result: Err(Notice::error("pos-order-closed")),
        },
    );
    assert!(matches!(state.screen, Screen::Payment { .. }));
    assert_eq!(notice_key(&state), Some("pos-order-closed"));
    let effects = update(&mut state, Event::ConfirmPayment);
    let [Effect::PosConfirm { request, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let effects = update(
        &mut state,
        Event::PosConfirmed {
            request: *request,
            result: Ok(rub(300)),
        },
    );
    assert!(
        effects.is_empty(),
        "nothing is committed by the till: the POS's paid commits"
    );
    assert_eq!(state.screen, Screen::Guest);
    assert_eq!(notice_key(&state), Some("pos-held-wait"));
    // The POS paid (or cancelled): the order and its guest leave the till.
    update(&mut state, Event::PosOrder(None));
    assert!(state.guest.is_none());
    assert!(state.order.lines.is_empty());
    assert_eq!(state.screen, Screen::Idle);
}
