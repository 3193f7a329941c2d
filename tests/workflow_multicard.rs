#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! «Добавить карту» in the workflow core, step by step, with the ledger's answers made by hand:
//! cards added one after another, the same account refused, the sum within the check, one hold
//! refused, a refused commit releasing every hold, and a commit without an answer sent again
//! under the same operation id.

use loyalty_till::backend::BackendKind;
use loyalty_till::domain::*;
use loyalty_till::money::Kopecks;
use loyalty_till::workflow::*;

const ANNA: GuestId = 1;
const IVAN: GuestId = 2;

fn rub(r: i64) -> Kopecks {
    Kopecks::from_roubles(r)
}

fn card(guest: GuestId, name: &str, available: Kopecks) -> GuestCard {
    GuestCard {
        guest_id: guest,
        name: name.to_string(),
        phone_masked: "+7 *** ***-00-00".to_string(),
        balance: available,
        available,
        group: GroupInfo {
            id: 1,
            name: "Гость".to_string(),
            discount_bp: 0,
            accrual_bp: 500,
        },
        stamps: Vec::new(),
        promotions: Vec::new(),
        daily_visits: None,
        account: None,
    }
}

/// A check of 1 000,00 that bonuses may pay half of, for a guest with `available`.
fn quote(available: Kopecks) -> SpendQuote {
    let limit = |kind, amount| SpendLimit { kind, amount };
    SpendQuote {
        amount_due: rub(1000),
        max_spend: available.min(rub(500)),
        limits: vec![
            limit(SpendLimitKind::Available, available),
            limit(SpendLimitKind::CheckPercent, rub(500)),
            limit(SpendLimitKind::AmountDue, rub(1000)),
        ],
        max_check_bp: 5000,
        spend_step: rub(1),
        accrual_bp: 500,
    }
}

fn one<T: std::fmt::Debug>(effects: Vec<T>) -> T {
    assert_eq!(effects.len(), 1, "expected one effect, got {effects:?}");
    effects.into_iter().next().unwrap()
}

/// Answers the lookup a code asked for with `card`.
fn identify(state: &mut State, code: &str, found: GuestCard) -> Vec<Effect> {
    update(state, Event::FieldEdited(Field::Code, code.to_string()));
    let Effect::Identify { request, .. } = one(update(state, Event::SubmitCode)) else {
        panic!("expected a lookup");
    };
    update(
        state,
        Event::Identified {
            request,
            result: Ok(Identification {
                card: found,
                gift: None,
            }),
        },
    )
}

/// Анна (500,00) on a check of 1 000,00 spending 200,00, then «Добавить карту» and Иван's card
/// (300,00) added.
fn two_cards() -> State {
    two_cards_on(|state| {
        update(state, Event::FieldEdited(Field::LinePrice, "1000".to_string()));
        update(state, Event::AddOrderLine);
    })
}

/// As [`two_cards`], on the order `order` makes.
fn two_cards_on(order: impl FnOnce(&mut State)) -> State {
    let mut state = State::new("till-test", true);
    update(
        &mut state,
        Event::BackendReady(Ok(BackendKind::Embedded {
            path: "/tmp/x.sqlite".into(),
        })),
    );
    order(&mut state);
    identify(&mut state, "100001", card(ANNA, "Анна", rub(500)));
    let Effect::Calculate { request, .. } = one(update(&mut state, Event::StartPayment)) else {
        panic!("expected a quote");
    };
    update(
        &mut state,
        Event::Calculated {
            request,
            result: Ok(quote(rub(500))),
        },
    );
    update(&mut state, Event::ChoosePaymentMode(PaymentMode::Spend));
    update(&mut state, Event::FieldEdited(Field::Spend, "200".to_string()));
    assert!(update(&mut state, Event::AddCard).is_empty());
    assert!(matches!(state.screen, Screen::Split(_)));
    assert_eq!(
        state.active_field,
        Some(Field::Code),
        "the next card is scanned or typed"
    );

    let effects = identify(&mut state, "100002", card(IVAN, "Иван", rub(300)));
    let Effect::Calculate { request, guest, .. } = one(effects) else {
        panic!("expected Иван's quote");
    };
    assert_eq!(guest, IVAN);
    update(
        &mut state,
        Event::Calculated {
            request,
            result: Ok(quote(rub(300))),
        },
    );
    state
}

fn split(state: &State) -> &SplitPayment {
    match &state.screen {
        Screen::Split(split) => split,
        other => panic!("expected the several-cards form, got {other:?}"),
    }
}

/// Confirms and answers the holds with `holds` (ids 11, 12…); the commit asked for next.
fn confirmed(state: &mut State) -> Effect {
    let Effect::HoldShared {
        request, owner, shares, ..
    } = one(update(state, Event::ConfirmPayment))
    else {
        panic!("expected the holds");
    };
    assert_eq!(owner, ANNA, "the first card owns the check by default");
    let holds = shares
        .iter()
        .zip(11..)
        .map(|(share, id)| {
            Some(HoldReceipt {
                hold_id: id,
                amount: share.amount,
                expires_at: 0,
            })
        })
        .collect();
    one(update(
        state,
        Event::SharedHoldsPlaced {
            request,
            result: Ok(holds),
        },
    ))
}

#[test]
fn two_cards_pay_one_check_with_the_remainder_and_exact_amount_as_for_one() {
    let mut state = two_cards();
    let form = split(&state);
    assert_eq!(form.cards.len(), 2);
    // Иван is offered what the check has left for bonuses: 500,00 − 200,00.
    assert_eq!(state.fields.card_amounts, ["200", "300"]);
    assert_eq!(state.split_total(form), Some(rub(500)));
    assert_eq!(state.active_field, Some(Field::CardAmount(1)));

    update(&mut state, Event::ExactAmount);
    assert_eq!(state.fields.tendered, "500");
    assert_eq!(state.split_blocker(split(&state)), None);

    let Effect::CommitShared {
        request,
        op_id,
        owner,
        payments,
        ..
    } = confirmed(&mut state)
    else {
        panic!("expected the commit");
    };
    assert_eq!(owner, ANNA);
    assert_eq!(
        payments,
        vec![
            CardPayment {
                guest: ANNA,
                hold: Some(11),
                spent: rub(200),
            },
            CardPayment {
                guest: IVAN,
                hold: Some(12),
                spent: rub(300),
            },
        ]
    );
    let receipt = |spent, accrued, balance_after| PaymentReceipt {
        spent,
        accrued,
        balance_after,
        new_group: None,
    };
    update(
        &mut state,
        Event::SharedPaymentCommitted {
            request,
            result: Ok(vec![
                receipt(rub(200), rub(25), rub(325)),
                receipt(rub(300), rub(0), rub(0)),
            ]),
        },
    );
    let Screen::SplitDone { lines } = &state.screen else {
        panic!("expected the result, got {:?}", state.screen);
    };
    assert_eq!(lines.len(), 2);
    assert!(lines[0].owner && !lines[1].owner);
    assert_eq!(
        state.last_payment_op.as_deref(),
        Some(op_id.as_str()),
        "returned by the owner's payment"
    );
    assert_eq!(state.guest.as_ref().unwrap().balance, rub(325));
}

#[test]
fn the_same_account_again_is_refused_with_its_card_number() {
    let mut state = two_cards();
    let effects = identify(&mut state, "2000000000015", card(ANNA, "Анна", rub(500)));
    assert!(effects.is_empty(), "nothing asked of the ledger: {effects:?}");
    assert_eq!(split(&state).cards.len(), 2);
    let notice = state.notice.clone().unwrap();
    assert_eq!(notice.key, "err-same-account");
    assert!(notice.args.contains(&("card", NoticeArg::Number(3))));
}

#[test]
fn the_sum_over_the_checks_maximum_keeps_the_payment_disabled() {
    let mut state = two_cards();
    update(&mut state, Event::FieldEdited(Field::CardAmount(1), "301".to_string()));
    // Over Иван's own maximum first.
    let own = state.split_blocker(split(&state)).unwrap();
    assert_eq!(
        (own.key, own.args.last().cloned()),
        ("err-over-max", Some(("card", NoticeArg::Number(2))))
    );
    update(&mut state, Event::FieldEdited(Field::CardAmount(0), "250".to_string()));
    update(&mut state, Event::FieldEdited(Field::CardAmount(1), "300".to_string()));
    let over = state.split_blocker(split(&state)).unwrap();
    assert_eq!(over.key, "split-over-check");
    assert!(update(&mut state, Event::ConfirmPayment).is_empty());
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("split-over-check"));
}

#[test]
fn one_refused_hold_marks_its_card_and_the_form_stays() {
    let mut state = two_cards();
    update(&mut state, Event::ExactAmount);
    let Effect::HoldShared { request, .. } = one(update(&mut state, Event::ConfirmPayment)) else {
        panic!("expected the holds");
    };
    let effects = update(
        &mut state,
        Event::SharedHoldsPlaced {
            request,
            result: Err(LoyaltyError::CardRefused {
                card: 2,
                reason: Box::new(LoyaltyError::GuestBlocked),
            }),
        },
    );
    assert!(effects.is_empty(), "nothing was held, nothing to release");
    let form = split(&state);
    assert_eq!(form.stage, SplitStage::Editing);
    assert_eq!(form.cards[0].refused, None);
    assert_eq!(form.cards[1].refused.as_ref().map(|n| n.key), Some("err-guest-blocked"));
    let notice = state.notice.clone().unwrap();
    assert_eq!(notice.key, "err-guest-blocked");
    assert!(notice.args.contains(&("card", NoticeArg::Number(2))));
    // Without the refused card the first pays alone.
    update(&mut state, Event::RemoveCard(1));
    assert_eq!(split(&state).cards.len(), 1);
    assert_eq!(state.fields.card_amounts, ["200"]);
}

#[test]
fn a_refused_commit_releases_every_hold() {
    let mut state = two_cards();
    update(&mut state, Event::ExactAmount);
    let Effect::CommitShared { request, .. } = confirmed(&mut state) else {
        panic!("expected the commit");
    };
    let effects = update(
        &mut state,
        Event::SharedPaymentCommitted {
            request,
            result: Err(LoyaltyError::CardRefused {
                card: 1,
                reason: Box::new(LoyaltyError::HoldNotOpen {
                    status: "expired".to_string(),
                }),
            }),
        },
    );
    let voided: Vec<HoldId> = effects
        .iter()
        .map(|e| match e {
            Effect::VoidHold { hold, .. } => *hold,
            other => panic!("expected releases only, got {other:?}"),
        })
        .collect();
    assert_eq!(voided, [11, 12]);
    assert_eq!(split(&state).stage, SplitStage::Editing);
    assert_eq!(
        split(&state).cards[0].refused.as_ref().map(|n| n.key),
        Some("err-hold-lost")
    );
}

#[test]
fn a_commit_without_an_answer_is_sent_again_under_the_same_id() {
    let mut state = two_cards();
    update(&mut state, Event::ExactAmount);
    let Effect::CommitShared { request, op_id, .. } = confirmed(&mut state) else {
        panic!("expected the commit");
    };
    let effects = update(
        &mut state,
        Event::SharedPaymentCommitted {
            request,
            result: Err(LoyaltyError::Unavailable("timeout".to_string())),
        },
    );
    assert!(effects.is_empty(), "nothing released: the payment may have been booked");
    assert!(matches!(split(&state).stage, SplitStage::InDoubt { .. }));
    let Effect::CommitShared { op_id: again, .. } = one(update(&mut state, Event::ConfirmPayment)) else {
        panic!("expected the commit again");
    };
    assert_eq!(again, op_id);
}

/// An order from the POS: the till holds every card through the POS (one confirmation naming the
/// owner and each card's amount, no hold or commit of its own), then shows the guest with what
/// the POS will take; a refusal keeps the form with the reason.
#[test]
fn a_pos_order_is_held_on_every_card_through_the_pos() {
    let mut state = two_cards_on(|state| {
        let shown = PosOrderShown {
            order_id: "order-7".to_string(),
            number: "7".to_string(),
            table: None,
            lines: vec![OrderLine {
                name: "Обед".to_string(),
                quantity: 1,
                price: rub(1000),
                gift: None,
            }],
            held: None,
        };
        update(state, Event::PosOrder(Some(shown)));
    });
    assert_eq!(state.fields.card_amounts, ["200", "300"]);
    update(&mut state, Event::ExactAmount);
    let confirm = |state: &mut State| match one(update(state, Event::ConfirmPayment)) {
        Effect::PosConfirm {
            request,
            order_id,
            owner,
            shares,
            ..
        } => {
            assert_eq!((order_id.as_str(), owner), ("order-7", ANNA));
            assert_eq!(
                shares,
                [
                    CardShare {
                        guest: ANNA,
                        amount: rub(200)
                    },
                    CardShare {
                        guest: IVAN,
                        amount: rub(300)
                    }
                ]
            );
            request
        }
        other => panic!("expected the POS confirmation, got {other:?}"),
    };
    let request = confirm(&mut state);
    update(
        &mut state,
        Event::PosConfirmed {
            request,
            result: Err(Notice::error("pos-order-closed")),
        },
    );
    assert!(matches!(split(&state).stage, SplitStage::Editing));
    assert_eq!(state.notice.as_ref().map(|n| n.key), Some("pos-order-closed"));

    let request = confirm(&mut state);
    let effects = update(
        &mut state,
        Event::PosConfirmed {
            request,
            result: Ok(rub(500)),
        },
    );
    assert!(
        effects.is_empty(),
        "the POS's payment commits, not the till: {effects:?}"
    );
    assert_eq!(state.screen, Screen::Guest);
    let notice = state.notice.as_ref().unwrap();
    assert_eq!(notice.key, "pos-held-wait");
    assert!(state.fields.card_amounts.is_empty());
}
