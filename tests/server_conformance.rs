//! The server's conformance suite: the same requests against the SQLite store and a real
//! PostgreSQL server, through the HTTP API. Every test ends with the ledger's invariants
//! (balance = credits − debits, available = balance − open holds ≥ 0, no hold both committed
//! and voided, no payment on a hold that is not committed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use serde_json::{Value, json};
use server_support::{ANNA_CARD, ANNA_PHONE, GIFT, OTHER_CARD, Server, rub};
use std::sync::{Arc, Barrier};

on_both_stores!(
    identify_by_card_phone_and_gift,
    tokens_are_required_and_scoped_to_the_organisation,
    a_revoked_or_replaced_token_is_refused_by_the_next_payment,
    openapi_describes_every_route,
    calculate_gives_the_maximum_with_its_reasons,
    hold_then_commit_for_less,
    repeats_return_the_first_result_and_conflicts_are_refused,
    one_op_id_sent_at_once_executes_once,
    void_releases_and_committed_holds_cannot_be_voided,
    holds_expire_by_the_servers_clock,
    refunds_full_and_partial_reverse_spend_and_accrual,
    accrual_without_bonuses_is_counted_once,
    bad_input_is_refused_with_a_reason_and_changes_nothing,
    reset_of_holds_racing_a_commit,
    thirty_two_tills_cannot_double_spend,
    back_office_lists_and_history,
    mixed_operations_from_eight_tills_keep_the_books,
    offline_payments_debit_what_the_guest_still_has,
    control_characters_are_refused_with_our_own_reason,
    every_error_is_a_json_body,
    bodies_must_be_declared_json,
    out_of_range_numbers_are_invalid_amounts,
    enrolment_at_the_till_follows_the_programme,
    enrolment_refuses_a_taken_phone_or_code_and_adds_nothing,
    shift_report_is_the_calling_tills_own,
    the_tills_backend_reads_its_shift_report_and_offline_refuses,
);

fn check(subtotal: i64) -> Value {
    json!({ "subtotal": subtotal })
}

fn identify_by_card_phone_and_gift(s: Server) {
    let card = s.post("/api/v1/identify", json!({"kind": "barcode", "payload": ANNA_CARD}));
    let body = card.ok();
    assert_eq!(body["card"]["guest_id"], s.ids.anna);
    assert_eq!(body["card"]["balance"], rub(1_000));
    assert_eq!(body["card"]["available"], rub(1_000));
    assert_eq!(body["card"]["group"]["name"], "Guest");
    assert_eq!(body["card"]["phone_masked"], "+7 *** ***-45-67");
    assert!(body["gift"].is_null());
    let card = s.card(s.ids.anna);
    assert_eq!(
        card["gifts"],
        json!([{"code": "G1***01", "name": "Cappuccino", "points": 15_000}]),
        "the gift waiting, its code masked"
    );

    let phone = s.post("/api/v1/identify", json!({"kind": "manual", "payload": ANNA_PHONE}));
    assert_eq!(phone.ok()["card"]["guest_id"], s.ids.anna);

    let gift = s.post("/api/v1/identify", json!({"kind": "qr", "payload": GIFT}));
    let gift = gift.ok();
    assert_eq!(gift["card"]["guest_id"], s.ids.anna);
    assert_eq!(gift["gift"]["name"], "Cappuccino");
    assert_eq!(gift["gift"]["points"], 15_000);

    // Paying the check redeems the gift code; a second use is refused.
    let paid = s.post(
        "/api/v1/accruals",
        json!({"op_id": "gift-visit", "guest_id": s.ids.anna, "check": {"subtotal": rub(100), "gift_codes": [GIFT]}}),
    );
    paid.ok();
    s.post("/api/v1/identify", json!({"kind": "qr", "payload": GIFT}))
        .error(409, "gift_already_used");
    assert_eq!(s.card(s.ids.anna)["gifts"], json!([]));

    s.post("/api/v1/identify", json!({"kind": "manual", "payload": "999999"}))
        .error(404, "unknown_guest");
}

fn tokens_are_required_and_scoped_to_the_organisation(s: Server) {
    let path = format!("/api/v1/guests/{}", s.ids.anna);
    s.get_as(None, &path).error(401, "unauthorized");
    s.get_as(Some("lt_not-a-token"), &path).error(401, "unauthorized");
    s.post_raw("/api/v1/holds", None, "{}").error(401, "unauthorized");
    // Another organisation's till sees none of this organisation's guests, holds or payments.
    s.get_as(Some(&s.other_token), &path).error(404, "unknown_guest");
    s.post_as(
        &s.other_token,
        "/api/v1/identify",
        json!({"kind": "barcode", "payload": ANNA_CARD}),
    )
    .error(404, "unknown_guest");
    let hold = s.hold("h1", s.ids.anna, rub(10), rub(100));
    let hold_id = hold.ok()["hold_id"].as_i64().unwrap();
    s.post_as(
        &s.other_token,
        &format!("/api/v1/holds/{hold_id}/void"),
        json!({"op_id": "x"}),
    )
    .error(404, "unknown_hold");
    // And this organisation's till does not see the other's guest.
    s.post("/api/v1/identify", json!({"kind": "barcode", "payload": OTHER_CARD}))
        .error(404, "unknown_guest");
    s.get(&format!("/api/v1/guests/{}", s.ids.other))
        .error(404, "unknown_guest");
    // The other organisation's own guest is fine with its own token.
    let olga = s.get_as(Some(&s.other_token), &format!("/api/v1/guests/{}", s.ids.other));
    assert_eq!(olga.ok()["balance"], rub(500));
    // Operation ids belong to a till: the same id from another till is another operation.
    let till2 = s.token_for("till-2");
    let second = s.post_as(
        &till2,
        "/api/v1/holds",
        json!({"op_id": "h1", "guest_id": s.ids.anna, "amount": rub(20), "check": check(rub(100))}),
    );
    assert_ne!(second.ok()["hold_id"], hold_id, "another till's op id is its own");
    s.void("v1", hold_id).ok();
    s.post_as(
        &till2,
        &format!("/api/v1/holds/{}/void", second.body["hold_id"]),
        json!({"op_id": "v1"}),
    )
    .ok();
}

/// A till that has just paid: once its token is revoked or replaced, its very next payment
/// request is refused, with nothing held, paid or accrued (a server that remembered the tills it
/// has seen, to save the token's lookup, would fail this).
fn a_revoked_or_replaced_token_is_refused_by_the_next_payment(s: Server) {
    let anna = s.ids.anna;
    let till2 = s.token_for("till-2");
    let hold = |token: &str, op: &str, amount: i64| {
        s.post_as(
            token,
            "/api/v1/holds",
            json!({"op_id": op, "guest_id": anna, "amount": amount, "check": check(rub(100))}),
        )
    };
    let commit = |token: &str, op: &str, hold: i64| {
        s.post_as(
            token,
            "/api/v1/payments",
            json!({"op_id": op, "guest_id": anna, "hold_id": hold, "spent": rub(10), "check": check(rub(100))}),
        )
    };
    let accrue = |token: &str, op: &str| {
        s.post_as(
            token,
            "/api/v1/accruals",
            json!({"op_id": op, "guest_id": anna, "check": check(rub(100))}),
        )
    };
    // The server has seen the till.
    let held = hold(&till2, "h1", rub(10));
    let hold_id = held.ok()["hold_id"].as_i64().unwrap();
    accrue(&till2, "a1").ok();
    let before = s.balance(anna);

    // Revoked, as the back office does it.
    let store = Arc::clone(&s.handle.store);
    let audit = loyalty_till::loyalty::audit::AuditEntry {
        at: 0,
        actor: "test".to_string(),
        action: "till_token_revoke".to_string(),
        guest_id: None,
        detail: "till-2".to_string(),
        reason: String::new(),
    };
    let revoked = s
        .handle
        .block_on(async move { store.revoke_token(server_support::ORG, "till-2", &audit).await })
        .unwrap();
    assert!(revoked);
    hold(&till2, "h2", rub(10)).error(401, "unauthorized");
    // Over the maximum too: the token is what is refused.
    hold(&till2, "h3", rub(100_000)).error(401, "unauthorized");
    commit(&till2, "p1", hold_id).error(401, "unauthorized");
    accrue(&till2, "a2").error(401, "unauthorized");
    assert_eq!(s.balance(anna), before, "nothing held, paid or accrued");

    // A new token works at once, and the open hold is still there to be paid.
    let renewed = s.token_for("till-2");
    let paid = commit(&renewed, "p1", hold_id);
    assert_eq!(paid.ok()["spent"], rub(10));
    let paid_balance = paid.ok()["balance_after"].as_i64().unwrap();
    assert_eq!(
        paid_balance,
        before.0 - rub(10) + paid.ok()["accrued"].as_i64().unwrap()
    );
    // Replaced by yet another: the one the server just used is refused on its next request.
    let _newest = s.token_for("till-2");
    hold(&renewed, "h4", rub(10)).error(401, "unauthorized");
    accrue(&renewed, "a3").error(401, "unauthorized");
    assert_eq!(
        s.balance(anna),
        (paid_balance, paid_balance),
        "only the payment made with a live token"
    );
}

fn openapi_describes_every_route(s: Server) {
    let doc = s.get_as(None, "/api/v1/openapi.json");
    let doc = doc.ok();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // The router's own list is compared with the document in the library's unit test; here each
    // documented operation is asked for over HTTP and must reach a handler (not the 404 of
    // unknown routes, not a 405).
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = path.replace("{guest}", &s.ids.anna.to_string()).replace("{hold}", "1");
            let answer = match method.as_str() {
                "get" => s.get(&url),
                "post" => s.post_raw(&url, Some(&s.token), "{"),
                other => panic!("{other} {path}: the API has only GET and POST"),
            };
            assert!(
                answer.status != 405 && answer.body["error"] != "not_found",
                "{method} {path} is documented but not served: {} {}",
                answer.status,
                answer.body
            );
            operations += 1;
        }
    }
    assert!(
        paths.contains_key("/api/v1/offline-payments"),
        "offline payments are documented"
    );
    assert!(operations > paths.len() / 2, "operations were found under the paths");
    s.get_as(None, "/api/v1/nowhere").error(404, "not_found");
}

fn calculate_gives_the_maximum_with_its_reasons(s: Server) {
    let quote = s.post(
        &format!("/api/v1/guests/{}/calculate", s.ids.anna),
        json!({"check": check(rub(800))}),
    );
    let q = quote.ok();
    assert_eq!(q["amount_due"], rub(800));
    // Half of the check (400) is less than the 1 000 available.
    assert_eq!(q["max_spend"], rub(400));
    let limits = q["limits"].as_array().unwrap();
    assert_eq!(limits[0], json!({"kind": "available", "amount": rub(1_000)}));
    assert_eq!(limits[1], json!({"kind": "check_percent", "amount": rub(400)}));
    assert_eq!(q["accrual_if_kept"], rub(40));
    assert_eq!(q["accrual_if_max_spent"], rub(20));

    // A check of 3 000: available (1 000) binds.
    let q = s.post(
        &format!("/api/v1/guests/{}/calculate", s.ids.anna),
        json!({"check": check(rub(3_000))}),
    );
    assert_eq!(q.ok()["max_spend"], rub(1_000));
}

fn hold_then_commit_for_less(s: Server) {
    let anna = s.ids.anna;
    let hold = s.hold("h1", anna, rub(300), rub(800));
    let hold = hold.ok().clone();
    assert_eq!(hold["amount"], rub(300));
    assert_eq!(hold["expires_at"], server_support::START + 900);
    assert_eq!(s.balance(anna), (rub(1_000), rub(700)));
    let receipt = s.commit("c1", anna, hold["hold_id"].as_i64(), rub(200), rub(800));
    let receipt = receipt.ok();
    assert_eq!(receipt["spent"], rub(200));
    // 5 % of the 600 not paid with bonuses.
    assert_eq!(receipt["accrued"], rub(30));
    assert_eq!(receipt["balance_after"], rub(830));
    assert_eq!(
        s.balance(anna),
        (rub(830), rub(830)),
        "the rest of the hold is released"
    );
    let history = s.get(&format!("/api/v1/guests/{anna}/history"));
    let kinds: Vec<&str> = history
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["accrual", "spend", "manual_credit"]);
}

fn repeats_return_the_first_result_and_conflicts_are_refused(s: Server) {
    let anna = s.ids.anna;
    let first = s.hold("h1", anna, rub(100), rub(500)).ok().clone();
    let again = s.hold("h1", anna, rub(100), rub(500)).ok().clone();
    assert_eq!(first, again, "a repeated hold returns the first hold");
    s.hold("h1", anna, rub(50), rub(500))
        .error(409, "operation_id_conflict");
    assert_eq!(s.balance(anna), (rub(1_000), rub(900)), "held once");

    let hold_id = first["hold_id"].as_i64();
    let paid = s.commit("c1", anna, hold_id, rub(100), rub(500)).ok().clone();
    let repeat = s.commit("c1", anna, hold_id, rub(100), rub(500)).ok().clone();
    assert_eq!(paid, repeat, "a repeated commit returns the first receipt");
    s.commit("c1", anna, hold_id, rub(90), rub(500))
        .error(409, "operation_id_conflict");
    // 1 000 - 100 + 5 % of 400.
    assert_eq!(s.balance(anna), (rub(920), rub(920)), "debited and accrued once");

    let accrual = json!({"op_id": "a1", "guest_id": s.ids.boris, "check": check(rub(200))});
    let first = s.post("/api/v1/accruals", accrual.clone()).ok().clone();
    assert_eq!(s.post("/api/v1/accruals", accrual).ok(), &first);
    s.post(
        "/api/v1/accruals",
        json!({"op_id": "a1", "guest_id": s.ids.boris, "check": check(rub(300))}),
    )
    .error(409, "operation_id_conflict");
    assert_eq!(s.balance(s.ids.boris), (rub(10), rub(10)));
}

fn one_op_id_sent_at_once_executes_once(s: Server) {
    let s = Arc::new(s);
    let anna = s.ids.anna;
    let barrier = Arc::new(Barrier::new(16));
    let answers: Vec<Value> = (0..16)
        .map(|_| {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            std::thread::Builder::new()
                .name("same-op".to_string())
                .spawn(move || {
                    barrier.wait();
                    s.hold("same", anna, rub(100), rub(1_000)).ok().clone()
                })
                .unwrap()
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "every caller gets the one hold: {answers:?}"
    );
    assert_eq!(s.balance(anna), (rub(1_000), rub(900)), "held once");

    let hold_id = answers[0]["hold_id"].as_i64();
    let barrier = Arc::new(Barrier::new(16));
    let receipts: Vec<Value> = (0..16)
        .map(|_| {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            std::thread::Builder::new()
                .name("same-commit".to_string())
                .spawn(move || {
                    barrier.wait();
                    s.commit("pay", anna, hold_id, rub(100), rub(1_000)).ok().clone()
                })
                .unwrap()
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(receipts.iter().all(|r| r == &receipts[0]));
    assert_eq!(s.balance(anna), (rub(945), rub(945)), "1 000 - 100 + 5 % of 900, once");
}

fn void_releases_and_committed_holds_cannot_be_voided(s: Server) {
    let anna = s.ids.anna;
    let h1 = s.hold("h1", anna, rub(100), rub(500)).ok()["hold_id"].as_i64().unwrap();
    s.void("v1", h1).ok();
    s.void("v1", h1).ok();
    s.void("v2", h1).ok(); // a voided hold voids again
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)));
    s.commit("c1", anna, Some(h1), rub(100), rub(500))
        .error(409, "hold_not_open");

    let h2 = s.hold("h2", anna, rub(100), rub(500)).ok()["hold_id"].as_i64().unwrap();
    s.commit("c2", anna, Some(h2), rub(150), rub(500))
        .error(422, "commit_over_hold");
    s.commit("c2", anna, Some(h2), rub(100), rub(500)).ok();
    s.void("v3", h2).error(409, "hold_not_open");
    s.void("v4", 999_999).error(404, "unknown_hold");
    assert_eq!(s.balance(anna), (rub(920), rub(920)));
}

fn holds_expire_by_the_servers_clock(s: Server) {
    let anna = s.ids.anna;
    let hold = s.hold("h1", anna, rub(100), rub(500)).ok()["hold_id"].as_i64().unwrap();
    s.advance(899);
    assert_eq!(s.balance(anna).1, rub(900), "still held one second before");
    s.advance(1);
    assert_eq!(
        s.balance(anna).1,
        rub(1_000),
        "released at its time, even before the sweep"
    );
    // The server's own sweep marks it (ServeOptions' interval in tests is the default 5 s; the
    // list below reads status, so wait for the sweep).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let open = s.get(&format!("/api/v1/guests/{anna}/holds"));
        if open.ok().as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not release the hold"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    s.commit("c1", anna, Some(hold), rub(100), rub(500))
        .error(409, "hold_not_open");
    s.void("v1", hold).ok();
}

fn refunds_full_and_partial_reverse_spend_and_accrual(s: Server) {
    let anna = s.ids.anna;
    let hold = s.hold("h1", anna, rub(300), rub(1_000)).ok()["hold_id"].as_i64();
    let paid = s.commit("pay-1", anna, hold, rub(300), rub(1_000)).ok().clone();
    assert_eq!(paid["accrued"], rub(35));
    assert_eq!(s.balance(anna).0, rub(735));

    // A quarter of the check back: 75 of the spend returned, 8.75 of the accrual taken.
    let part = s.post(
        "/api/v1/refunds",
        json!({"op_id": "r1", "payment_op_id": "pay-1", "amount": rub(250)}),
    );
    let part = part.ok().clone();
    assert_eq!(part["amount"], rub(250));
    assert_eq!(part["spend_returned"], rub(75));
    assert_eq!(part["accrual_taken"], 875);
    assert_eq!(part["balance_after"], rub(735) + rub(75) - 875);
    // Repeat: the first result; other content with the id: refused.
    assert_eq!(
        s.post(
            "/api/v1/refunds",
            json!({"op_id": "r1", "payment_op_id": "pay-1", "amount": rub(250)})
        )
        .ok(),
        &part
    );
    s.post(
        "/api/v1/refunds",
        json!({"op_id": "r1", "payment_op_id": "pay-1", "amount": rub(100)}),
    )
    .error(409, "operation_id_conflict");
    s.post(
        "/api/v1/refunds",
        json!({"op_id": "r2", "payment_op_id": "pay-1", "amount": rub(800)}),
    )
    .error(422, "refund_over_payment");
    s.post("/api/v1/refunds", json!({"op_id": "r2", "payment_op_id": "nope"}))
        .error(404, "unknown_payment");
    // The rest: the totals come back exactly.
    let rest = s.post("/api/v1/refunds", json!({"op_id": "r3", "payment_op_id": "pay-1"}));
    let rest = rest.ok().clone();
    assert_eq!(rest["amount"], rub(750));
    assert_eq!(rest["spend_returned"].as_i64().unwrap() + rub(75), rub(300));
    assert_eq!(rest["accrual_taken"].as_i64().unwrap() + 875, rub(35));
    assert_eq!(
        s.balance(anna),
        (rub(1_000), rub(1_000)),
        "a full return leaves the guest as before"
    );
    s.post("/api/v1/refunds", json!({"op_id": "r4", "payment_op_id": "pay-1"}))
        .error(422, "refund_over_payment");
    // Another organisation cannot refund this payment.
    s.post_as(
        &s.other_token,
        "/api/v1/refunds",
        json!({"op_id": "r5", "payment_op_id": "pay-1", "payment_till": "till-1"}),
    )
    .error(404, "unknown_payment");

    // An accrual already spent cannot be taken back below zero: the rest is unrecovered.
    let boris = s.ids.boris;
    s.post(
        "/api/v1/accruals",
        json!({"op_id": "b-pay", "guest_id": boris, "check": check(rub(1_000))}),
    )
    .ok();
    let h = s.hold("b-h", boris, rub(40), rub(100)).ok()["hold_id"].as_i64();
    s.commit("b-spend", boris, h, rub(40), rub(100)).ok();
    let (balance, _) = s.balance(boris);
    let back = s.post("/api/v1/refunds", json!({"op_id": "b-r", "payment_op_id": "b-pay"}));
    let back = back.ok();
    assert_eq!(back["accrual_taken"], balance);
    assert_eq!(back["unrecovered"].as_i64().unwrap(), rub(50) - balance);
    assert_eq!(s.balance(boris), (0, 0));
}

fn accrual_without_bonuses_is_counted_once(s: Server) {
    let boris = s.ids.boris;
    for _ in 0..3 {
        let receipt = s.post(
            "/api/v1/accruals",
            json!({"op_id": "visit-7", "guest_id": boris, "check": check(rub(640))}),
        );
        assert_eq!(receipt.ok()["accrued"], rub(32));
    }
    assert_eq!(s.balance(boris), (rub(32), rub(32)));
    // A commit with no hold and no spend is the same operation.
    s.commit("visit-8", boris, None, 0, rub(100)).ok();
    s.commit("visit-9", boris, None, rub(1), rub(100))
        .error(422, "over_maximum");
    assert_eq!(s.balance(boris), (rub(37), rub(37)));
}

fn bad_input_is_refused_with_a_reason_and_changes_nothing(s: Server) {
    let anna = s.ids.anna;
    let before = (
        s.card(anna),
        s.get(&format!("/api/v1/guests/{anna}/history")).ok().clone(),
    );
    let hold = |amount: Value| {
        json!({"op_id": "bad", "guest_id": anna, "amount": amount, "check": check(rub(500))}).to_string()
    };
    let token = Some(s.token.as_str());
    s.post_raw("/api/v1/holds", token, "{\"op_id\": ")
        .error(400, "malformed_json");
    s.post_raw("/api/v1/holds", token, "not json at all")
        .error(400, "malformed_json");
    s.post_raw("/api/v1/holds", token, hold(json!(-100)))
        .error(400, "invalid_amount");
    s.post_raw("/api/v1/holds", token, hold(json!(10.5)))
        .error(400, "invalid_amount");
    s.post_raw("/api/v1/holds", token, hold(json!(9_007_199_254_740_992u64)))
        .error(400, "invalid_amount");
    s.post_raw("/api/v1/holds", token, hold(json!("100")))
        .error(400, "malformed_json");
    s.post_raw("/api/v1/holds", token, hold(json!(0)))
        .error(422, "non_positive_amount");
    s.post_raw(
        "/api/v1/holds",
        token,
        json!({"op_id": "bad", "guest_id": anna, "amount": 100, "check": check(500), "extra": 1}).to_string(),
    )
    .error(400, "malformed_json");
    s.post_raw(
        "/api/v1/holds",
        token,
        json!({"op_id": "", "guest_id": anna, "amount": 100, "check": check(500)}).to_string(),
    )
    .error(400, "bad_op_id");
    s.post_raw(
        "/api/v1/holds",
        token,
        json!({"op_id": "x".repeat(65), "guest_id": anna, "amount": 100, "check": check(500)}).to_string(),
    )
    .error(400, "bad_op_id");
    s.hold("bad", 424_242, 100, 500).error(404, "unknown_guest");
    s.hold("bad", s.ids.other, 100, 500).error(404, "unknown_guest");
    s.hold("bad", anna, rub(400), rub(500)).error(422, "over_maximum");
    s.get("/api/v1/guests/abc").error(400, "bad_id");
    s.get("/api/v1/guests/-1").error(400, "bad_id");
    s.post(
        "/api/v1/identify",
        json!({"kind": "manual", "payload": "x".repeat(200)}),
    )
    .error(422, "bad_code");
    s.post("/api/v1/identify", json!({"kind": "telepathy", "payload": "1"}))
        .error(400, "malformed_json");
    // 10 MB: refused before it is read.
    let big = format!("{{\"op_id\":\"big\",\"pad\":\"{}\"}}", "x".repeat(10 * 1024 * 1024));
    s.post_raw("/api/v1/holds", token, big).error(413, "body_too_large");
    // Commit for more than the hold, void of a committed hold.
    let h = s.hold("h", anna, rub(10), rub(500)).ok()["hold_id"].as_i64();
    s.commit("c", anna, h, rub(11), rub(500)).error(422, "commit_over_hold");
    s.void("v", h.unwrap()).ok();

    let after = (
        s.card(anna),
        s.get(&format!("/api/v1/guests/{anna}/history")).ok().clone(),
    );
    assert_eq!(before, after, "refused requests change nothing");
}

fn reset_of_holds_racing_a_commit(s: Server) {
    let s = Arc::new(s);
    let anna = s.ids.anna;
    let mut committed = 0;
    for round in 0..20 {
        let hold = s.hold(&format!("h{round}"), anna, rub(10), rub(100)).ok()["hold_id"].as_i64();
        let barrier = Arc::new(Barrier::new(2));
        let reset = {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            std::thread::Builder::new()
                .name("reset".to_string())
                .spawn(move || {
                    barrier.wait();
                    s.post(&format!("/api/v1/guests/{anna}/holds/reset"), json!({})).ok()["voided"]
                        .as_i64()
                        .unwrap()
                })
                .unwrap()
        };
        barrier.wait();
        let commit = s.commit(&format!("c{round}"), anna, hold, rub(10), rub(100));
        let voided = reset.join().unwrap();
        match commit.status {
            200 => {
                committed += 1;
                assert_eq!(voided, 0, "a committed hold is not also voided");
            }
            _ => {
                commit.error(409, "hold_not_open");
                assert_eq!(voided, 1);
            }
        }
        s.invariants().unwrap();
    }
    let (balance, available) = s.balance(anna);
    assert_eq!(balance, available, "no hold left open");
    // Each commit spent 10 and accrued 5 % of 90.
    assert_eq!(balance, rub(1_000) - committed * (rub(10) - 450));
}

fn thirty_two_tills_cannot_double_spend(s: Server) {
    let boris = s.ids.boris;
    let store = Arc::clone(&s.handle.store);
    s.handle
        .block_on(async move {
            store
                .credit(
                    "seed-100",
                    boris,
                    loyalty_till::money::Kopecks(100),
                    server_support::START,
                )
                .await
        })
        .unwrap();
    let tokens: Vec<String> = (0..32).map(|i| s.token_for(&format!("lane-{i}"))).collect();
    let s = Arc::new(s);
    let barrier = Arc::new(Barrier::new(32));
    let threads: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            std::thread::Builder::new()
                .name("till".to_string())
                .spawn(move || {
                    let body = json!({"op_id": "hold-1", "guest_id": boris, "amount": 10, "check": check(1_000)});
                    barrier.wait();
                    s.post_as(&token, "/api/v1/holds", body)
                })
                .unwrap()
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let won = answers.iter().filter(|a| a.status == 200).count();
    for refused in answers.iter().filter(|a| a.status != 200) {
        refused.error(422, "over_maximum");
    }
    assert_eq!(won, 10, "exactly ten holds of 10 fit in a balance of 100");
    assert_eq!(s.balance(boris), (100, 0));
}

fn back_office_lists_and_history(s: Server) {
    let anna = s.ids.anna;
    let a = s.hold("h1", anna, rub(10), rub(100)).ok()["hold_id"].as_i64().unwrap();
    let b = s.hold("h2", anna, rub(20), rub(100)).ok()["hold_id"].as_i64().unwrap();
    let open = s.get(&format!("/api/v1/guests/{anna}/holds"));
    let ids: Vec<i64> = open
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hold_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [a, b]);
    let reset = s.post(&format!("/api/v1/guests/{anna}/holds/reset"), json!({}));
    assert_eq!(reset.ok()["voided"], 2);
    assert!(
        s.get(&format!("/api/v1/guests/{anna}/holds"))
            .ok()
            .as_array()
            .unwrap()
            .is_empty()
    );
    let history = s.get(&format!("/api/v1/guests/{anna}/history?limit=1"));
    assert_eq!(history.ok().as_array().unwrap().len(), 1);
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)));
}

fn mixed_operations_from_eight_tills_keep_the_books(s: Server) {
    let guests = [s.ids.anna, s.ids.boris];
    let store = Arc::clone(&s.handle.store);
    s.handle
        .block_on(async move {
            store
                .credit(
                    "seed-boris",
                    guests[1],
                    loyalty_till::money::Kopecks(rub(300)),
                    server_support::START,
                )
                .await
        })
        .unwrap();
    let tokens: Vec<String> = (0..8).map(|i| s.token_for(&format!("mix-{i}"))).collect();
    let s = Arc::new(s);
    let threads: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(t, token)| {
            let s = Arc::clone(&s);
            std::thread::Builder::new()
                .name(format!("mix-{t}"))
                .spawn(move || {
                    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
                    let mut next = move |n: u64| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed % n
                    };
                    let mut paid: Vec<String> = Vec::new();
                    for i in 0..40 {
                        let guest = guests[next(2) as usize];
                        let subtotal = rub(50 + next(500) as i64);
                        let amount = rub(1 + next(60) as i64);
                        let hold = s.post_as(
                            &token,
                            "/api/v1/holds",
                            json!({"op_id": format!("h{i}"), "guest_id": guest, "amount": amount, "check": check(subtotal)}),
                        );
                        if hold.status != 200 {
                            hold.error(422, "over_maximum");
                            continue;
                        }
                        let hold_id = hold.body["hold_id"].as_i64().unwrap();
                        match next(4) {
                            0 => {
                                s.post_as(&token, &format!("/api/v1/holds/{hold_id}/void"), json!({"op_id": format!("v{i}")}))
                                    .ok();
                            }
                            1 if !paid.is_empty() => {
                                let payment = paid[next(paid.len() as u64) as usize].clone();
                                let refund = s.post_as(
                                    &token,
                                    "/api/v1/refunds",
                                    json!({"op_id": format!("r{i}"), "payment_op_id": payment, "amount": rub(1 + next(30) as i64)}),
                                );
                                if refund.status != 200 {
                                    refund.error(422, "refund_over_payment");
                                }
                                s.post_as(&token, &format!("/api/v1/holds/{hold_id}/void"), json!({"op_id": format!("v{i}")}))
                                    .ok();
                            }
                            _ => {
                                let spent = amount - rub(next(2) as i64).min(amount);
                                s.post_as(
                                    &token,
                                    "/api/v1/payments",
                                    json!({"op_id": format!("c{i}"), "guest_id": guest, "hold_id": hold_id, "spent": spent, "check": check(subtotal)}),
                                )
                                .ok();
                                paid.push(format!("c{i}"));
                            }
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    s.invariants().unwrap();
    for guest in guests {
        let (balance, available) = s.balance(guest);
        assert_eq!(balance, available, "every hold was closed");
    }
}

fn offline_payments_debit_what_the_guest_still_has(s: Server) {
    let anna = s.ids.anna;
    let pay = |op: &str, guest: i64, spent: i64, subtotal: i64| {
        s.post(
            "/api/v1/offline-payments",
            json!({"op_id": op, "guest_id": guest, "spent": spent, "check": check(subtotal)}),
        )
    };
    let first = pay("off-1", anna, rub(300), rub(1_000)).ok().clone();
    assert_eq!(first["spent"], rub(300));
    assert_eq!(first["accrued"], rub(35));
    assert_eq!(
        pay("off-1", anna, rub(300), rub(1_000)).ok(),
        &first,
        "a repeat returns the first result"
    );
    pay("off-1", anna, rub(200), rub(1_000)).error(409, "operation_id_conflict");
    assert_eq!(s.balance(anna), (rub(735), rub(735)));
    // Meanwhile another till holds most of the balance: only what is left is debited.
    s.hold("h", anna, rub(500), rub(1_000)).ok();
    let short = pay("off-2", anna, rub(400), rub(1_000)).ok().clone();
    assert_eq!(short["spent"], rub(235));
    assert_eq!(
        s.balance(anna).1,
        rub(500) - rub(500) + short["accrued"].as_i64().unwrap()
    );
    // A guest with nothing: nothing debited, the accrual still comes.
    let boris = pay("off-3", s.ids.boris, rub(100), rub(200)).ok().clone();
    assert_eq!(
        (boris["spent"].as_i64(), boris["accrued"].as_i64()),
        (Some(0), Some(rub(10)))
    );
    pay("off-4", s.ids.other, rub(1), rub(10)).error(404, "unknown_guest");
    // The payment can be refunded like any other.
    s.post("/api/v1/refunds", json!({"op_id": "r", "payment_op_id": "off-1"}))
        .ok();
}

/// `LOYALTY_TEST_SKIP_PG=1` skips the PostgreSQL half only outside CI; in CI, or with nothing
/// set, the PostgreSQL tests fail instead of passing without running.
#[test]
fn skipping_postgres_is_refused_in_ci() {
    use server_support::pg_choice;
    let some = |s: &str| Some(s.to_string());
    let url = "postgres://postgres@127.0.0.1:5432/loyalty_test";
    assert_eq!(pg_choice(some(url), None, None), Ok(some(url)));
    assert_eq!(pg_choice(some(url), some("1"), some("true")), Ok(some(url)));
    assert_eq!(
        pg_choice(None, some("1"), None),
        Ok(None),
        "skipped when asked, outside CI"
    );
    assert_eq!(pg_choice(None, some("1"), some("false")), Ok(None));
    for ci in ["true", "1", "yes"] {
        let refused = pg_choice(None, some("1"), some(ci)).unwrap_err();
        assert!(refused.contains("not honoured in CI"), "{refused}");
    }
    assert!(pg_choice(None, None, None).is_err(), "no URL and no skip: a failure");
    assert!(pg_choice(some(""), some("0"), None).is_err());
}

/// What a refused request may never show: the database's own words.
fn assert_no_database_text(answer: &server_support::Answer) {
    let text = answer.body.to_string().to_lowercase();
    for word in [
        "postgres",
        "sqlite",
        "byte sequence",
        "0x00",
        "sql",
        "constraint",
        "relation",
        "utf8",
    ] {
        assert!(
            !text.contains(word),
            "the answer shows the database's text ({word}): {text}"
        );
    }
}

fn control_characters_are_refused_with_our_own_reason(s: Server) {
    let anna = s.ids.anna;
    let before = (
        s.card(anna),
        s.get(&format!("/api/v1/guests/{anna}/history")).ok().clone(),
    );
    for payload in [
        "2000\u{0}000000015",
        "\u{0}",
        "G100001\u{7}",
        "1000\r\n01",
        "\u{7f}100001",
        "10\u{9b}0001",
    ] {
        let answer = s.post("/api/v1/identify", json!({"kind": "manual", "payload": payload}));
        answer.error(400, "control_character");
        assert_no_database_text(&answer);
    }
    let with_gift = |code: &str| json!({"subtotal": rub(500), "gift_codes": [GIFT, code]});
    let bad_gift = "G10\u{0}0001";
    let answers = [
        s.post(
            &format!("/api/v1/guests/{anna}/calculate"),
            json!({"check": with_gift(bad_gift)}),
        ),
        s.post(
            "/api/v1/holds",
            json!({"op_id": "nul-h", "guest_id": anna, "amount": rub(10), "check": with_gift(bad_gift)}),
        ),
        s.post(
            "/api/v1/payments",
            json!({"op_id": "nul-c", "guest_id": anna, "hold_id": null, "spent": 0, "check": with_gift(bad_gift)}),
        ),
        s.post(
            "/api/v1/accruals",
            json!({"op_id": "nul-a", "guest_id": anna, "check": with_gift(bad_gift)}),
        ),
        s.post(
            "/api/v1/offline-payments",
            json!({"op_id": "nul-o", "guest_id": anna, "spent": rub(10), "check": with_gift(bad_gift)}),
        ),
    ];
    for answer in &answers {
        answer.error(400, "control_character");
        assert_no_database_text(answer);
    }
    // The gift code itself still works afterwards.
    let gift = s.post("/api/v1/identify", json!({"kind": "qr", "payload": GIFT}));
    assert_eq!(gift.ok()["gift"]["name"], "Cappuccino");
    let after = (
        s.card(anna),
        s.get(&format!("/api/v1/guests/{anna}/history")).ok().clone(),
    );
    assert_eq!(before, after, "refused requests change nothing");
}

fn every_error_is_a_json_body(s: Server) {
    let anna = s.ids.anna;
    // `answer` in the test support fails on any body that is not JSON; `error` wants a code and
    // a reason.
    s.get("/api/v1/holds").error(405, "method_not_allowed");
    s.post(&format!("/api/v1/guests/{anna}"), json!({}))
        .error(405, "method_not_allowed");
    s.get_as(None, "/api/v1/payments").error(405, "method_not_allowed");
    for limit in ["abc", "-1", "1.5", "99999999999999999999999"] {
        s.get(&format!("/api/v1/guests/{anna}/history?limit={limit}"))
            .error(400, "bad_limit");
    }
    s.get(&format!("/api/v1/guests/{anna}/history?limit=2")).ok();
    s.get("/api/v1/guests/%FF").error(400, "bad_id");
    s.get("/api/v1/guests/%C3%28/history").error(400, "bad_id");
    s.post("/api/v1/holds/%FF/void", json!({"op_id": "v"}))
        .error(400, "bad_id");
    s.get("/api/v1/nowhere").error(404, "not_found");
    s.post("/api/v2/holds", json!({})).error(404, "not_found");
    let big = format!("{{\"op_id\":\"big\",\"pad\":\"{}\"}}", "x".repeat(100 * 1024));
    s.post_raw("/api/v1/holds", Some(&s.token), big)
        .error(413, "body_too_large");
}

fn bodies_must_be_declared_json(s: Server) {
    let anna = s.ids.anna;
    let body = json!({"op_id": "ct", "guest_id": anna, "amount": rub(10), "check": check(rub(500))}).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        None,
    ] {
        let mut request = s
            .http
            .post(s.url("/api/v1/holds"))
            .bearer_auth(&s.token)
            .body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        server_support::answer(request.send().unwrap()).error(415, "unsupported_media_type");
    }
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)), "nothing was held");
    let request = s
        .http
        .post(s.url("/api/v1/holds"))
        .bearer_auth(&s.token)
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(body);
    let hold = server_support::answer(request.send().unwrap());
    let hold_id = hold.ok()["hold_id"].as_i64().unwrap();
    s.void("ct-void", hold_id).ok();
}

fn out_of_range_numbers_are_invalid_amounts(s: Server) {
    let anna = s.ids.anna;
    let token = Some(s.token.as_str());
    let hold = |amount: &str| {
        format!(r#"{{"op_id": "oor", "guest_id": {anna}, "amount": {amount}, "check": {{"subtotal": 50000}}}}"#)
    };
    for amount in [
        "-1",
        "0.5",
        "1e3",
        "9007199254740992",
        "18446744073709551616",
        "1e400",
        "-0.0",
    ] {
        s.post_raw("/api/v1/holds", token, hold(amount))
            .error(400, "invalid_amount");
    }
    for subtotal in ["-5", "1.25", "1e400"] {
        s.post_raw(
            &format!("/api/v1/guests/{anna}/calculate"),
            token,
            format!(r#"{{"check": {{"subtotal": {subtotal}}}}}"#),
        )
        .error(400, "invalid_amount");
    }
    s.post(
        "/api/v1/refunds",
        json!({"op_id": "r", "payment_op_id": "p", "amount": -3}),
    )
    .error(400, "invalid_amount");
    // A string is not a number at all: malformed.
    s.post_raw("/api/v1/holds", token, hold("\"100\""))
        .error(400, "malformed_json");
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)), "nothing was held");
}

fn identify_code(s: &Server, code: &str) -> server_support::Answer {
    s.post("/api/v1/identify", json!({"kind": "manual", "payload": code}))
}

fn enrolment_at_the_till_follows_the_programme(s: Server) {
    // Off by default: the till is told so, and a request is refused with a reason.
    let off = s.get("/api/v1/enrolment");
    assert_eq!(off.ok()["allowed"], false, "enrolment is off until the owner allows it");
    s.enrol("e1", "NEW-CARD-1", "8 916 555-11-22", "Vera")
        .error(403, "enrolment_off");
    identify_code(&s, "NEW-CARD-1").error(404, "unknown_guest");

    s.set_enrolment(true, rub(100));
    let on = s.get("/api/v1/enrolment");
    assert_eq!(on.ok()["allowed"], true);
    assert_eq!(on.ok()["welcome_bonus"], rub(100));

    let first = s.enrol("e1", "NEW-CARD-1", "8 916 555-11-22", "  Vera ");
    let vera = first.ok()["card"]["guest_id"].as_i64().unwrap();
    assert_eq!(first.ok()["card"]["name"], "Vera", "the name is trimmed");
    assert_eq!(first.ok()["card"]["balance"], rub(100), "the welcome bonus is credited");
    assert_eq!(first.ok()["card"]["group"]["name"], "Guest", "the entry group");

    // The same op id again (a till retrying a lost answer): the same guest, one bonus.
    let again = s.enrol("e1", "NEW-CARD-1", "8 916 555-11-22", "  Vera ");
    assert_eq!(again.ok()["card"]["guest_id"], vera);
    assert_eq!(s.balance(vera), (rub(100), rub(100)), "no second welcome bonus");
    let history = s.get(&format!("/api/v1/guests/{vera}/history")).ok().clone();
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 1, "one balance change: {history:?}");
    assert_eq!(history[0]["amount"], rub(100));
    assert_eq!(history[0]["note"], "welcome bonus");
    // The same op id with other content is another request: refused.
    s.enrol("e1", "NEW-CARD-9", "8 916 555-11-99", "Vera")
        .error(409, "operation_id_conflict");

    // The code and the phone both find her now, at this till and at no other organisation's.
    assert_eq!(identify_code(&s, "NEW-CARD-1").ok()["card"]["guest_id"], vera);
    assert_eq!(identify_code(&s, "+79165551122").ok()["card"]["guest_id"], vera);
    s.post_as(
        &s.other_token,
        "/api/v1/identify",
        json!({"kind": "manual", "payload": "NEW-CARD-1"}),
    )
    .error(404, "unknown_guest");

    // Without a welcome bonus a guest starts at zero, with no balance change recorded.
    s.set_enrolment(true, 0);
    let plain = s.enrol("e2", "NEW-CARD-2", "+7 916 555-22-33", "");
    let plain_id = plain.ok()["card"]["guest_id"].as_i64().unwrap();
    assert_eq!(s.balance(plain_id), (0, 0));
    let history = s.get(&format!("/api/v1/guests/{plain_id}/history")).ok().clone();
    assert_eq!(history, json!([]));

    // A phone typed as the code is the phone identifier, not a card besides it.
    let by_phone = s.enrol("e3", "8 916 555-33-44", "8 916 555-33-44", "");
    let by_phone = by_phone.ok()["card"]["guest_id"].as_i64().unwrap();
    assert_eq!(identify_code(&s, "+7 916 555-33-44").ok()["card"]["guest_id"], by_phone);

    // Turned off again: refused, nothing added.
    s.set_enrolment(false, rub(100));
    s.enrol("e4", "NEW-CARD-4", "+7 916 555-44-55", "")
        .error(403, "enrolment_off");
    identify_code(&s, "NEW-CARD-4").error(404, "unknown_guest");
}

fn enrolment_refuses_a_taken_phone_or_code_and_adds_nothing(s: Server) {
    s.set_enrolment(true, rub(50));
    // Anna's phone with a new code: refused as a phone, and the code stays unknown.
    let taken = s.enrol("t1", "NEW-CARD-5", ANNA_PHONE, "Eve");
    taken.error(409, "identifier_taken");
    assert_eq!(taken.body["ledger"]["IdentifierTaken"], "phone", "{}", taken.body);
    identify_code(&s, "NEW-CARD-5").error(404, "unknown_guest");
    // Anna's card with a new phone: refused as a code, and the phone stays unknown.
    let taken = s.enrol("t2", ANNA_CARD, "+7 916 555-55-66", "Eve");
    taken.error(409, "identifier_taken");
    assert_eq!(
        taken.body["ledger"]["IdentifierTaken"], "card_barcode",
        "{}",
        taken.body
    );
    identify_code(&s, "+7 916 555-55-66").error(404, "unknown_guest");
    // A phone that is no phone, an empty one, a name too long: refused.
    s.enrol("t3", "NEW-CARD-6", "12345", "").error(422, "bad_code");
    s.enrol("t4", "NEW-CARD-6", "", "").error(422, "bad_code");
    s.enrol("t5", "NEW-CARD-6", "+7 916 555-66-77", &"я".repeat(201))
        .error(422, "out_of_range");
    identify_code(&s, "NEW-CARD-6").error(404, "unknown_guest");
    // Anna's balance is untouched by all of it.
    assert_eq!(s.balance(s.ids.anna), (rub(1_000), rub(1_000)));
}

/// `/api/v1/shift-report` as `token` sees it (`query` after `?`, empty for today).
fn shift_report(s: &Server, token: &str, query: &str) -> server_support::Answer {
    let path = if query.is_empty() {
        "/api/v1/shift-report".to_string()
    } else {
        format!("/api/v1/shift-report?{query}")
    };
    s.get_as(Some(token), &path)
}

/// The figures of a report, in a fixed order, for comparing.
fn figures(report: &Value) -> [i64; 11] {
    [
        "checks",
        "revenue",
        "spent",
        "accrued",
        "gifts_redeemed",
        "returns",
        "returned",
        "spend_returned",
        "accrual_taken",
        "new_guests",
        "utc_offset_minutes",
    ]
    .map(|key| report[key].as_i64().unwrap_or_else(|| panic!("{key} in {report}")))
}

fn shift_report_is_the_calling_tills_own(s: Server) {
    let (anna, boris) = (s.ids.anna, s.ids.boris);
    let till2 = s.token_for("till-2");
    // Nothing booked yet: zeros, today (START is 2025-03-10 12:00 UTC; the zone is UTC).
    let empty = shift_report(&s, &s.token, "").ok().clone();
    assert_eq!(empty["till"], "till-1");
    assert_eq!(empty["day"], "2025-03-10");
    assert_eq!(
        empty["since"],
        server_support::START - 12 * 3_600,
        "since the local midnight"
    );
    assert_eq!(empty["until"], server_support::START);
    assert_eq!(figures(&empty), [0; 11]);

    // till-1: Anna pays 300 ₽ of a 1 000 ₽ check in bonuses and redeems her gift; Boris's
    // 500 ₽ check only accrues.
    let hold = s.hold("sr-h1", anna, rub(300), rub(1_000)).ok()["hold_id"].as_i64();
    let paid_anna = s.post(
        "/api/v1/payments",
        json!({"op_id": "sr-p1", "guest_id": anna, "hold_id": hold, "spent": rub(300),
               "check": {"subtotal": rub(1_000), "gift_codes": [GIFT]}}),
    );
    let anna_accrued = paid_anna.ok()["accrued"].as_i64().unwrap();
    let paid_boris = s.post(
        "/api/v1/accruals",
        json!({"op_id": "sr-p2", "guest_id": boris, "check": check(rub(500))}),
    );
    let boris_accrued = paid_boris.ok()["accrued"].as_i64().unwrap();
    // till-2: enrols Vera, who pays 200 ₽ in money; it also takes back 250 ₽ of till-1's check
    // (the return is till-2's: it was made there).
    s.set_enrolment(true, rub(100));
    let vera = s.post_as(
        &till2,
        "/api/v1/guests",
        json!({"op_id": "sr-e1", "kind": "barcode", "code": "4600000000031", "phone": "+7 905 222-33-44", "name": "Vera"}),
    );
    let vera = vera.ok()["card"]["guest_id"].as_i64().unwrap();
    let paid_vera = s.post_as(
        &till2,
        "/api/v1/payments",
        json!({"op_id": "sr-p3", "guest_id": vera, "hold_id": null, "spent": 0, "check": check(rub(200))}),
    );
    let vera_accrued = paid_vera.ok()["accrued"].as_i64().unwrap();
    let back = s.post_as(
        &till2,
        "/api/v1/refunds",
        json!({"op_id": "sr-r1", "payment_op_id": "sr-p1", "payment_till": "till-1", "amount": rub(250)}),
    );
    let back = back.ok().clone();
    // till-1 takes back 100 ₽ of Boris's check.
    let back_boris = s.post(
        "/api/v1/refunds",
        json!({"op_id": "sr-r2", "payment_op_id": "sr-p2", "amount": rub(100)}),
    );
    let back_boris = back_boris.ok().clone();
    // The other organisation's till of the same name pays too: never in this report.
    s.post_as(
        &s.other_token,
        "/api/v1/accruals",
        json!({"op_id": "sr-o1", "guest_id": s.ids.other, "check": check(rub(700))}),
    )
    .ok();

    let one = shift_report(&s, &s.token, "").ok().clone();
    assert_eq!(one["till"], "till-1");
    assert_eq!(
        figures(&one),
        [
            2,
            rub(1_500),
            rub(300),
            anna_accrued + boris_accrued,
            1,
            1,
            rub(100),
            back_boris["spend_returned"].as_i64().unwrap(),
            back_boris["accrual_taken"].as_i64().unwrap(),
            0,
            0,
        ],
        "till-1: its two checks, its gift, its own return only: {one}"
    );
    let two = shift_report(&s, &till2, "").ok().clone();
    assert_eq!(two["till"], "till-2");
    assert_eq!(
        figures(&two),
        [
            1,
            rub(200),
            0,
            vera_accrued,
            0,
            1,
            rub(250),
            back["spend_returned"].as_i64().unwrap(),
            back["accrual_taken"].as_i64().unwrap(),
            1,
            0,
        ],
        "till-2: Vera's check and enrolment, the return it made of till-1's check: {two}"
    );
    assert!(
        back["spend_returned"].as_i64().unwrap() > 0,
        "the return gave bonuses back: {back}"
    );
    let other = shift_report(&s, &s.other_token, "").ok().clone();
    assert_eq!(other["till"], "till-1");
    assert_eq!(
        (
            other["checks"].as_i64(),
            other["revenue"].as_i64(),
            other["returns"].as_i64()
        ),
        (Some(1), Some(rub(700)), Some(0)),
        "the other organisation's till-1 sees its own check alone: {other}"
    );

    // The next day: today is empty, the day before is asked for by its date and has not moved.
    s.advance(86_400);
    let today = shift_report(&s, &s.token, "").ok().clone();
    assert_eq!(today["day"], "2025-03-11");
    assert_eq!(figures(&today), [0; 11]);
    let yesterday = shift_report(&s, &s.token, "day=2025-03-10").ok().clone();
    assert_eq!(figures(&yesterday), figures(&one));
    assert_eq!(
        yesterday["until"],
        server_support::START + 12 * 3_600,
        "a past day ends at midnight"
    );

    // Bad input: a reason, never another day's figures; no token, no report.
    for query in ["day=2025-13-01", "day=10.03.2025", "day=", "day=2025-03-12", "day=%00"] {
        shift_report(&s, &s.token, query).error(400, "bad_day");
    }
    s.get_as(None, "/api/v1/shift-report").error(401, "unauthorized");
}

struct ServerClockForTill(Arc<std::sync::atomic::AtomicI64>);

impl loyalty_till::backend::Clock for ServerClockForTill {
    fn now(&self) -> loyalty_till::domain::UnixSeconds {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn the_tills_backend_reads_its_shift_report_and_offline_refuses(s: Server) {
    use loyalty_till::backend::LoyaltyBackend as _;
    use loyalty_till::domain::{AwayReason, CheckInfo, LoyaltyError};
    use loyalty_till::money::Kopecks;
    use server_support::proxy::{Fault, Proxy};
    let proxy = Proxy::start(s.handle.addr);
    let settings = loyalty_till::remote::ServerSettings {
        url: proxy.url(),
        token: s.token.clone(),
        timeout_secs: 5,
        ..loyalty_till::remote::ServerSettings::default()
    };
    let journal = s.dir.path().join("till-1").join("journal.sqlite");
    let mut till = loyalty_till::remote::ServerBackend::open(
        &settings,
        &journal,
        Box::new(ServerClockForTill(Arc::clone(&s.clock))),
    )
    .unwrap();
    let check = CheckInfo {
        subtotal: Kopecks(rub(800)),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    };
    let paid = till
        .commit_payment("b-p1", s.ids.anna, None, Kopecks::ZERO, &check)
        .unwrap();
    let report = till.shift_report().unwrap();
    assert_eq!(report.till.as_deref(), Some("till-1"));
    assert_eq!(
        (report.checks, report.revenue, report.accrued),
        (1, Kopecks(rub(800)), paid.accrued)
    );
    assert_eq!(
        (report.since, report.until),
        (server_support::START - 12 * 3_600, server_support::START)
    );

    // Offline: the reason, nothing made up, and the journal as it was.
    proxy.set(Fault::Down);
    let pending_before = till.journal().pending().unwrap().len();
    assert_eq!(
        till.shift_report(),
        Err(LoyaltyError::ServerAway(AwayReason::NoShiftReport))
    );
    assert_eq!(till.journal().pending().unwrap().len(), pending_before);
    proxy.set(Fault::Pass);
    s.advance(1);
    assert_eq!(
        till.shift_report().unwrap().checks,
        1,
        "asked again once the server answers"
    );
}

/// On PostgreSQL a server keeps the tokens it found, trusting them only while the database tells
/// it of every change: a token removed behind the trigger's back is still taken (so the kept
/// one is what answers), one removed in the open is refused once the word arrives, and a lost
/// listening connection forgets everything kept.
#[test]
fn postgres_tells_the_server_of_every_change_to_the_tokens() {
    use loyalty_till::backoffice::db::Val;
    let Some(s) = Server::start(server_support::Db::Postgres) else {
        return;
    };
    let store = Arc::clone(&s.handle.store);
    let sql = |statements: Vec<(&'static str, Vec<Val>)>| {
        let store = Arc::clone(&store);
        s.handle
            .block_on(async move { store.write_all(statements, false).await })
            .unwrap();
    };
    let status = |token: &str| s.get_as(Some(token), "/api/v1/till").status;
    let hash = loyalty_till::server::store::token_hash(&s.token);
    server_support::wait_until("the server listens for changes to the tokens", || {
        s.handle.store.keeps_tokens()
    });
    assert_eq!(status(&s.token), 200, "found, and kept");

    // Removed with the trigger off, in one transaction: nobody is told, and the kept token still
    // answers. (Only a test does this: it shows that no lookup happens.)
    sql(vec![
        ("ALTER TABLE till_tokens DISABLE TRIGGER till_tokens_changed", vec![]),
        (
            "DELETE FROM till_tokens WHERE token_hash = $1",
            vec![Val::from(hash.as_str())],
        ),
        ("ALTER TABLE till_tokens ENABLE TRIGGER till_tokens_changed", vec![]),
    ]);
    assert_eq!(status(&s.token), 200, "the kept token answered, not the table");

    // A statement that replaces a token, as another server's back office or the command line
    // would: every kept token is forgotten, so the removed one is refused.
    sql(vec![(
        "UPDATE till_tokens SET token_hash = token_hash WHERE till = 'no-such-till'",
        vec![],
    )]);
    let took = server_support::wait_until("the removed token is refused", || status(&s.token) == 401);
    println!("refused {took:?} after the change was committed");
    let till2 = s.token_for("till-2");
    assert_eq!(status(&till2), 200);

    // The listening connection is lost: nothing is trusted until it listens again, and what was
    // kept before is forgotten.
    sql(vec![
        ("ALTER TABLE till_tokens DISABLE TRIGGER till_tokens_changed", vec![]),
        ("DELETE FROM till_tokens WHERE till = 'till-2'", vec![]),
        ("ALTER TABLE till_tokens ENABLE TRIGGER till_tokens_changed", vec![]),
    ]);
    assert_eq!(status(&till2), 200, "kept");
    // NOTIFY reaches every listener on the database: a word naming another schema's tokens (another
    // deployment's, or another test's) is no change of this server's, and what it keeps stays.
    sql(vec![(
        "SELECT 1 FROM pg_notify('loyalty_till_tokens', 'another_deployment')",
        vec![],
    )]);
    let word_delivered = std::time::Duration::from_millis(200);
    std::thread::sleep(word_delivered);
    assert_eq!(status(&till2), 200, "another schema's change forgets nothing here");
    // Every listener on this database is cut (other tests' servers look tokens up meanwhile).
    sql(vec![(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query = 'LISTEN loyalty_till_tokens' AND pid <> pg_backend_pid()",
        vec![],
    )]);
    server_support::wait_until("the server notices the lost connection", || {
        !s.handle.store.keeps_tokens()
    });
    assert_eq!(status(&till2), 401, "looked up while nobody listens");
    server_support::wait_until("the server listens again", || s.handle.store.keeps_tokens());
    assert_eq!(status(&till2), 401, "nothing kept from before");
    assert_eq!(status(&s.other_token), 200, "the other tokens are found again");
}
