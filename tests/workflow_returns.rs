#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The returns part of the workflow core, step by step, with the ledger's answers made by hand.

use loyalty_till::backend::BackendKind;
use loyalty_till::domain::*;
use loyalty_till::money::Kopecks;
use loyalty_till::workflow::*;

fn rub(r: i64) -> Kopecks {
    Kopecks::from_roubles(r)
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

fn check(number: i64, op_id: &str, amount: Kopecks, refunded: Kopecks) -> CheckSummary {
    CheckSummary {
        number,
        op_id: op_id.to_string(),
        guest: 1,
        guest_name: "Анна Смирнова".to_string(),
        at: 1_741_600_000,
        amount_due: amount,
        spent: rub(100),
        accrued: rub(25),
        refunded,
        lines: Vec::new(),
    }
}

fn receipt(amount: Kopecks, unrecovered: Kopecks) -> RefundReceipt {
    RefundReceipt {
        amount,
        spend_returned: rub(100),
        accrual_taken: rub(25) - unrecovered,
        unrecovered,
        balance_after: rub(500),
        full: true,
        gifts_restored: vec!["Капучино".to_string()],
        stamps_taken: 1,
        new_group: None,
        others_returned: Kopecks::ZERO,
    }
}

fn find_request(effects: &[Effect]) -> (RequestId, CheckFilter) {
    match effects {
        [Effect::FindChecks { request, filter }] => (*request, filter.clone()),
        other => panic!("expected one FindChecks, got {other:?}"),
    }
}

/// Opens the returns screen and answers its first search with `checks`.
fn opened_with(checks: Vec<CheckSummary>) -> State {
    let mut state = ready_state();
    let effects = update(&mut state, Event::OpenReturns { last_check: false });
    let (request, filter) = find_request(&effects);
    assert!(filter.today, "the screen opens on today's checks");
    assert_eq!(state.screen, Screen::Returns(ReturnStep::Find { checks: None }));
    assert_eq!(state.active_field, Some(Field::ReturnQuery));
    update(
        &mut state,
        Event::ChecksFound {
            request,
            result: Ok(checks),
        },
    );
    state
}

/// From the list to the preview of a full return of check 7.
fn previewed(preview: RefundReceipt) -> State {
    let mut state = opened_with(vec![check(7, "till-test-3", rub(600), Kopecks::ZERO)]);
    assert!(update(&mut state, Event::ChooseCheck(7)).is_empty());
    let effects = update(&mut state, Event::PreviewReturn(ReturnMode::Full));
    let request = match effects.as_slice() {
        [
            Effect::PreviewReturn {
                request,
                payment_op_id,
                part: ReturnPart::Rest,
            },
        ] if payment_op_id == "till-test-3" => *request,
        other => panic!("expected a full preview of till-test-3, got {other:?}"),
    };
    update(
        &mut state,
        Event::ReturnPreviewed {
            request,
            result: Ok(preview),
        },
    );
    state
}

#[test]
fn a_full_return_goes_list_choose_preview_confirm_done() {
    let preview = receipt(rub(600), Kopecks::ZERO);
    let mut state = previewed(preview.clone());
    let Screen::Returns(ReturnStep::Preview { check, part, op_id, .. }) = &state.screen else {
        panic!("expected the preview, got {:?}", state.screen);
    };
    assert_eq!((check.number, part.clone(), op_id.clone()), (7, ReturnPart::Rest, None));

    let effects = update(&mut state, Event::ConfirmReturn);
    let (request, op_id) = match effects.as_slice() {
        [
            Effect::Return {
                request,
                op_id,
                payment_op_id,
                part: ReturnPart::Rest,
            },
        ] if payment_op_id == "till-test-3" => (*request, op_id.clone()),
        other => panic!("expected one return, got {other:?}"),
    };
    assert!(matches!(state.screen, Screen::Returns(ReturnStep::Sending { .. })));
    assert!(
        update(&mut state, Event::Back).is_empty()
            && matches!(state.screen, Screen::Returns(ReturnStep::Sending { .. })),
        "a return on its way cannot be left"
    );
    assert!(!op_id.is_empty());
    update(
        &mut state,
        Event::Returned {
            request,
            result: Ok(preview.clone()),
        },
    );
    assert_eq!(
        state.screen,
        Screen::Returns(ReturnStep::Done {
            check: check_of(7),
            receipt: preview
        })
    );
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("returns-done"));
    update(&mut state, Event::Back);
    assert_eq!(state.screen, Screen::Idle);
}

fn check_of(number: i64) -> CheckSummary {
    check(number, "till-test-3", rub(600), Kopecks::ZERO)
}

#[test]
fn a_shortfall_is_said_after_the_return() {
    let preview = receipt(rub(600), rub(20));
    let mut state = previewed(preview.clone());
    let effects = update(&mut state, Event::ConfirmReturn);
    let [Effect::Return { request, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    update(
        &mut state,
        Event::Returned {
            request: *request,
            result: Ok(preview),
        },
    );
    let notice = state.notice.clone().unwrap();
    assert_eq!(notice.key, "returns-done-shortfall");
    assert_eq!(notice.args, vec![("unrecovered", NoticeArg::Money(rub(20)))]);
}

#[test]
fn a_return_without_an_answer_is_sent_again_under_the_same_id() {
    let mut state = previewed(receipt(rub(600), Kopecks::ZERO));
    let first = update(&mut state, Event::ConfirmReturn);
    let [Effect::Return { request, op_id, .. }] = first.as_slice() else {
        panic!("{first:?}");
    };
    update(
        &mut state,
        Event::Returned {
            request: *request,
            result: Err(LoyaltyError::Unavailable("timeout".into())),
        },
    );
    assert!(matches!(state.screen, Screen::Returns(ReturnStep::Preview { .. })));
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("err-backend-unavailable"));
    let again = update(&mut state, Event::ConfirmReturn);
    let [Effect::Return { op_id: again_id, .. }] = again.as_slice() else {
        panic!("{again:?}");
    };
    assert_eq!(again_id, op_id, "a retry repeats the return, never makes a second one");
}

#[test]
fn a_refused_return_keeps_the_preview_with_the_reason_and_a_fresh_id_next_time() {
    let mut state = previewed(receipt(rub(600), Kopecks::ZERO));
    let first = update(&mut state, Event::ConfirmReturn);
    let [Effect::Return { request, op_id, .. }] = first.as_slice() else {
        panic!("{first:?}");
    };
    update(
        &mut state,
        Event::Returned {
            request: *request,
            result: Err(LoyaltyError::RefundOverPayment {
                requested: Kopecks::ZERO,
                left: Kopecks::ZERO,
            }),
        },
    );
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("err-return-already-full"));
    let again = update(&mut state, Event::ConfirmReturn);
    let [Effect::Return { op_id: again_id, .. }] = again.as_slice() else {
        panic!("{again:?}");
    };
    assert_ne!(again_id, op_id);
}

#[test]
fn a_partial_amount_is_checked_before_asking_the_ledger() {
    let mut state = opened_with(vec![check(7, "till-test-3", rub(600), rub(200))]);
    update(&mut state, Event::ChooseCheck(7));
    assert_eq!(state.active_field, Some(Field::ReturnAmount));
    for (typed, key) in [
        ("", "err-amount-empty"),
        ("0", "err-amount-zero"),
        ("abc", "err-amount-not-number"),
        ("400,01", "err-return-over"),
    ] {
        update(&mut state, Event::FieldEdited(Field::ReturnAmount, typed.into()));
        assert!(update(&mut state, Event::PreviewReturn(ReturnMode::Partial)).is_empty());
        assert_eq!(state.notice.as_ref().map(|n| n.key), Some(key), "typed {typed:?}");
    }
    for key in [
        KeypadKey::Clear,
        KeypadKey::Digit(1),
        KeypadKey::Digit(5),
        KeypadKey::Comma,
        KeypadKey::Digit(5),
    ] {
        update(&mut state, Event::Keypad(key));
    }
    let effects = update(&mut state, Event::PreviewReturn(ReturnMode::Partial));
    assert!(
        matches!(effects.as_slice(), [Effect::PreviewReturn { part: ReturnPart::Amount(a), .. }] if *a == Kopecks(1_550)),
        "{effects:?}"
    );
}

#[test]
fn searches_by_number_and_by_guest_and_refuses_what_cannot_be_searched() {
    let mut state = opened_with(Vec::new());
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("returns-none-found"));
    update(&mut state, Event::FieldEdited(Field::ReturnQuery, "12a".into()));
    assert!(update(&mut state, Event::FindChecks(ReturnSearch::Number)).is_empty());
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("err-return-number"));
    update(&mut state, Event::FieldEdited(Field::ReturnQuery, " 12 ".into()));
    let (request, filter) = find_request(&update(&mut state, Event::FindChecks(ReturnSearch::Number)));
    assert_eq!((filter.number, filter.today), (Some(12), false));
    update(
        &mut state,
        Event::ChecksFound {
            request,
            result: Err(LoyaltyError::Unavailable("down".into())),
        },
    );
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("err-backend-unavailable"));
    update(
        &mut state,
        Event::FieldEdited(Field::ReturnQuery, "+79161234567".into()),
    );
    let (_, filter) = find_request(&update(&mut state, Event::FindChecks(ReturnSearch::Guest)));
    assert_eq!(filter.guest_code.as_deref(), Some("+79161234567"));
}

#[test]
fn a_check_returned_in_full_cannot_be_chosen_and_back_keeps_the_list() {
    let list = vec![
        check(8, "till-test-5", rub(300), rub(300)),
        check(7, "till-test-3", rub(600), Kopecks::ZERO),
    ];
    let mut state = opened_with(list.clone());
    update(&mut state, Event::ChooseCheck(8));
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("err-return-already-full"));
    assert!(matches!(state.screen, Screen::Returns(ReturnStep::Find { .. })));
    update(&mut state, Event::ChooseCheck(7));
    assert!(matches!(state.screen, Screen::Returns(ReturnStep::Choose { .. })));
    update(&mut state, Event::Back);
    assert_eq!(state.screen, Screen::Returns(ReturnStep::Find { checks: Some(list) }));
}

#[test]
fn the_success_screen_opens_the_returns_on_the_check_just_paid() {
    let mut state = ready_state();
    // Pay a check keeping bonuses, as the cashier does.
    update(&mut state, Event::UseDemoOrder);
    let effects = update(&mut state, Event::OpenPlugin);
    assert!(effects.is_empty());
    update(&mut state, Event::FieldEdited(Field::Code, "100001".into()));
    let effects = update(&mut state, Event::SubmitCode);
    let [Effect::Identify { request, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let card = GuestCard {
        guest_id: 1,
        name: "Анна".into(),
        phone_masked: String::new(),
        balance: rub(350),
        available: rub(350),
        group: GroupInfo {
            id: 1,
            name: "Гость".into(),
            discount_bp: 0,
            accrual_bp: 500,
        },
        stamps: vec![],
        promotions: vec![],
        daily_visits: None,
        account: None,
    };
    update(
        &mut state,
        Event::Identified {
            request: *request,
            result: Ok(Identification { card, gift: None }),
        },
    );
    let effects = update(&mut state, Event::StartPayment);
    let [
        Effect::Calculate {
            request, check: info, ..
        },
    ] = effects.as_slice()
    else {
        panic!("{effects:?}");
    };
    let due = info.subtotal;
    let quote = SpendQuote {
        amount_due: due,
        max_spend: Kopecks::ZERO,
        limits: vec![],
        max_check_bp: 5000,
        spend_step: rub(1),
        accrual_bp: 500,
    };
    update(
        &mut state,
        Event::Calculated {
            request: *request,
            result: Ok(quote),
        },
    );
    update(&mut state, Event::ChoosePaymentMode(PaymentMode::Keep));
    update(&mut state, Event::SetTender(TenderMethod::Card));
    let effects = update(&mut state, Event::ConfirmPayment);
    let [Effect::CommitPayment { request, op_id, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let paid_op = op_id.clone();
    update(
        &mut state,
        Event::PaymentCommitted {
            request: *request,
            result: Ok(PaymentReceipt {
                spent: Kopecks::ZERO,
                accrued: rub(50),
                balance_after: rub(400),
                new_group: None,
            }),
        },
    );
    assert!(matches!(state.screen, Screen::Done { .. }));

    let effects = update(&mut state, Event::OpenReturns { last_check: true });
    let (request, _) = find_request(&effects);
    assert!(
        state.guest.is_none() && state.order.lines.is_empty(),
        "the paid check is closed"
    );
    let list = vec![
        check(9, "other", rub(100), Kopecks::ZERO),
        check(8, &paid_op, due, Kopecks::ZERO),
    ];
    update(
        &mut state,
        Event::ChecksFound {
            request,
            result: Ok(list),
        },
    );
    let Screen::Returns(ReturnStep::Choose { check }) = &state.screen else {
        panic!("expected the paid check chosen, got {:?}", state.screen);
    };
    assert_eq!(check.op_id, paid_op);
}

#[test]
fn returns_cannot_open_in_the_middle_of_a_payment() {
    let mut state = ready_state();
    state.screen = Screen::PaymentChoice {
        quote: SpendQuote {
            amount_due: rub(100),
            max_spend: Kopecks::ZERO,
            limits: vec![],
            max_check_bp: 5000,
            spend_step: rub(1),
            accrual_bp: 500,
        },
    };
    assert!(update(&mut state, Event::OpenReturns { last_check: false }).is_empty());
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("err-finish-payment-first"));
}

#[test]
fn the_guest_on_the_order_shows_the_balance_after_their_return() {
    let mut state = ready_state();
    let guest = |id: GuestId| GuestCard {
        guest_id: id,
        name: "Анна".into(),
        phone_masked: String::new(),
        balance: rub(425),
        available: rub(425),
        group: GroupInfo {
            id: 1,
            name: "Гость".into(),
            discount_bp: 0,
            accrual_bp: 500,
        },
        stamps: vec![],
        promotions: vec![],
        daily_visits: None,
        account: None,
    };
    for (attached, expected) in [(1, rub(500)), (2, rub(425))] {
        state.guest = Some(guest(attached));
        state.screen = Screen::Returns(ReturnStep::Preview {
            check: check(7, "till-test-3", rub(600), Kopecks::ZERO),
            part: ReturnPart::Rest,
            preview: receipt(rub(600), Kopecks::ZERO),
            op_id: None,
        });
        let effects = update(&mut state, Event::ConfirmReturn);
        let [Effect::Return { request, .. }] = effects.as_slice() else {
            panic!("{effects:?}");
        };
        update(
            &mut state,
            Event::Returned {
                request: *request,
                result: Ok(receipt(rub(600), Kopecks::ZERO)),
            },
        );
        let card = state.guest.clone().unwrap();
        assert_eq!((card.balance, card.available), (expected, expected), "guest {attached}");
        update(&mut state, Event::Back);
        assert_eq!(state.screen, Screen::Guest, "back to the guest on the order");
    }
}

#[test]
fn lines_are_picked_within_what_is_left_and_sent_as_lines() {
    let line = |name: &str, quantity: i64, returned: i64| CheckLine {
        name: name.to_string(),
        quantity,
        price: rub(100),
        returned,
    };
    let mut lined = check(7, "till-test-3", rub(400), rub(100));
    lined.lines = vec![line("Морс", 3, 1), line("Хлеб", 1, 0)];
    let mut state = opened_with(vec![lined]);
    assert!(update(&mut state, Event::ChooseCheck(7)).is_empty());
    assert_eq!(state.return_lines, vec![0, 0]);
    // Nothing picked: refused on the spot, nothing asked of the ledger.
    assert!(update(&mut state, Event::PreviewReturn(ReturnMode::Lines)).is_empty());
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("err-return-no-lines"));
    for _ in 0..3 {
        update(&mut state, Event::StepReturnLine { line: 0, more: true });
    }
    update(&mut state, Event::StepReturnLine { line: 1, more: true });
    update(&mut state, Event::StepReturnLine { line: 1, more: false });
    update(&mut state, Event::StepReturnLine { line: 1, more: false });
    update(&mut state, Event::StepReturnLine { line: 9, more: true });
    assert_eq!(state.return_lines, vec![2, 0], "two morses are left; none below zero");
    let effects = update(&mut state, Event::PreviewReturn(ReturnMode::Lines));
    let expected = ReturnPart::Lines(vec![LineReturn { line: 0, quantity: 2 }]);
    assert!(
        matches!(effects.as_slice(), [Effect::PreviewReturn { part, .. }] if *part == expected),
        "{effects:?}"
    );
}
