//! Returns through the loyalty server, as the till makes them (`ServerBackend` over the REST API
//! with the till's token), on both of the server's stores: the till finds its own checks, sees
//! the preview, and returns; a return whose answer was lost is sent again under the same id and
//! happens once; another till's checks are not its to find.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::backend::{Clock, LoyaltyBackend};
use loyalty_till::domain::{
    CheckFilter, CheckInfo, CheckLine, LineReturn, LoyaltyError, ReturnPart, ScanEvent, ScanKind, UnixSeconds,
};
use loyalty_till::money::Kopecks;
use loyalty_till::remote::{ServerBackend, ServerSettings};
use serde_json::json;
use server_support::proxy::{Fault, Proxy};
use server_support::{ANNA_CARD, Server, rub};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

on_both_stores!(
    the_till_finds_previews_and_returns_its_check,
    a_return_whose_answer_was_lost_happens_once,
    bad_searches_and_previews_are_refused_with_the_reason,
    a_line_of_the_check_is_returned_through_the_server,
);

struct TestClock(Arc<AtomicI64>);

impl Clock for TestClock {
    fn now(&self) -> UnixSeconds {
        self.0.load(Ordering::SeqCst)
    }
}

fn open(s: &Server, url: String, token: &str, name: &str) -> ServerBackend {
    let settings = ServerSettings {
        url,
        token: token.to_string(),
        timeout_secs: 5,
        ..ServerSettings::default()
    };
    let journal = s.dir.path().join(name).join("journal.sqlite");
    ServerBackend::open(&settings, &journal, Box::new(TestClock(Arc::clone(&s.clock)))).unwrap()
}

fn check(subtotal: i64) -> CheckInfo {
    CheckInfo {
        subtotal: Kopecks(subtotal),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    }
}

/// Анна (1 000 ₽, 5 %) pays 600 ₽ spending 100 ₽ through `backend`: 1 000 − 100 + 25 = 925.
fn pay(backend: &mut ServerBackend, op: &str) -> i64 {
    let scan = ScanEvent {
        source: "test".to_string(),
        kind: ScanKind::Barcode,
        payload: ANNA_CARD.to_string(),
        symbology: None,
        received_at_ms: 0,
    };
    let anna = backend.identify(&scan).unwrap().card.guest_id;
    let hold = backend
        .hold(&format!("{op}-hold"), anna, Kopecks(rub(100)), &check(rub(600)))
        .unwrap();
    backend
        .commit_payment(op, anna, Some(hold.hold_id), Kopecks(rub(100)), &check(rub(600)))
        .unwrap();
    anna
}

fn today() -> CheckFilter {
    CheckFilter {
        today: true,
        ..CheckFilter::default()
    }
}

fn the_till_finds_previews_and_returns_its_check(s: Server) {
    let mut till = open(&s, s.url(""), &s.token, "till-1");
    let anna = pay(&mut till, "pay-1");
    assert_eq!(s.balance(anna).0, rub(925));

    let found = till.find_checks(&today()).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].op_id, "pay-1",
        "the till's own id, without the server's prefix"
    );
    let by_card = CheckFilter {
        guest_code: Some(ANNA_CARD.to_string()),
        ..CheckFilter::default()
    };
    assert_eq!(till.find_checks(&by_card).unwrap(), found);
    let by_number = CheckFilter {
        number: Some(found[0].number),
        ..CheckFilter::default()
    };
    assert_eq!(till.find_checks(&by_number).unwrap(), found);

    // Another till of the same cafe does not list this till's checks.
    let other_token = s.token_for("till-2");
    let mut other = open(&s, s.url(""), &other_token, "till-2");
    assert!(other.find_checks(&today()).unwrap().is_empty());

    let preview = till
        .preview_refund("pay-1", &ReturnPart::Amount(Kopecks(rub(300))))
        .unwrap();
    assert_eq!(
        (preview.spend_returned, preview.accrual_taken, preview.full),
        (Kopecks(rub(50)), Kopecks(1_250), false)
    );
    assert_eq!(s.balance(anna).0, rub(925), "the preview writes nothing");
    let done = till
        .refund("ret-1", "pay-1", &ReturnPart::Amount(Kopecks(rub(300))))
        .unwrap();
    assert_eq!(done, preview);
    assert_eq!(s.balance(anna).0, rub(925) + rub(50) - 1_250);
    assert_eq!(
        till.refund("ret-2", "pay-1", &ReturnPart::Amount(Kopecks(rub(301)))),
        Err(LoyaltyError::RefundOverPayment {
            requested: Kopecks(rub(301)),
            left: Kopecks(rub(300))
        })
    );
    let rest = till.refund("ret-3", "pay-1", &ReturnPart::Rest).unwrap();
    assert!(rest.full);
    assert_eq!(s.balance(anna).0, rub(1_000), "everything the check did is undone");
    assert_eq!(till.find_checks(&today()).unwrap()[0].left(), Kopecks::ZERO);
}

fn a_return_whose_answer_was_lost_happens_once(s: Server) {
    let proxy = Proxy::start(s.handle.addr);
    let mut till = open(&s, proxy.url(), &s.token, "till-1");
    let anna = pay(&mut till, "pay-1");
    proxy.set(Fault::LoseAnswer);
    let lost = till.refund("ret-1", "pay-1", &ReturnPart::Rest);
    assert!(matches!(lost, Err(LoyaltyError::Unavailable(_))), "{lost:?}");
    assert!(proxy.lost.load(Ordering::SeqCst) >= 1);
    // The server made it; the cashier was told nothing came back.
    assert_eq!(s.balance(anna).0, rub(1_000));
    proxy.set(Fault::Pass);
    // The workflow confirms again under the same id: the first answer, nothing done twice.
    let again = till.refund("ret-1", "pay-1", &ReturnPart::Rest).unwrap();
    assert_eq!(again.amount, Kopecks(rub(600)));
    assert_eq!(s.balance(anna).0, rub(1_000));
    assert_eq!(till.journal().count_pending().unwrap(), 0);
}

fn bad_searches_and_previews_are_refused_with_the_reason(s: Server) {
    let mut till = open(&s, s.url(""), &s.token, "till-1");
    pay(&mut till, "pay-1");
    s.post("/api/v1/checks/search", json!({"today": true, "till": "x"}))
        .error(400, "malformed_json");
    s.post("/api/v1/checks/search", json!({"guest_code": "999"}))
        .error(404, "unknown_guest");
    s.post(
        "/api/v1/refunds/preview",
        json!({"payment_op_id": "pay-1", "amount": -5}),
    )
    .error(400, "invalid_amount");
    s.post("/api/v1/refunds/preview", json!({"payment_op_id": "nope"}))
        .error(404, "unknown_payment");
    s.post(
        "/api/v1/refunds/preview",
        json!({"payment_op_id": "pay-1", "amount": rub(601)}),
    )
    .error(422, "refund_over_payment");
    // Another organisation's till neither finds nor previews this cafe's check.
    let other = s.post_as(&s.other_token, "/api/v1/checks/search", json!({"today": true}));
    assert_eq!(other.ok().as_array().map(Vec::len), Some(0), "{}", other.body);
    s.post_as(
        &s.other_token,
        "/api/v1/refunds/preview",
        json!({"payment_op_id": "pay-1", "payment_till": "till-1"}),
    )
    .error(404, "unknown_payment");
}

/// The lines travel with the payment and come back with the check found for a return; a return
/// by lines is previewed and made over the API, and a line over-returned is refused by name.
fn a_line_of_the_check_is_returned_through_the_server(s: Server) {
    let mut till = open(&s, s.url(""), &s.token, "till-1");
    let scan = ScanEvent {
        source: "test".to_string(),
        kind: ScanKind::Barcode,
        payload: ANNA_CARD.to_string(),
        symbology: None,
        received_at_ms: 0,
    };
    let anna = till.identify(&scan).unwrap().card.guest_id;
    let line = |name: &str, quantity: i64, price: i64| CheckLine {
        name: name.to_string(),
        quantity,
        price: Kopecks(rub(price)),
        returned: 0,
    };
    let check = CheckInfo {
        subtotal: Kopecks(rub(600)),
        gift_codes: Vec::new(),
        lines: vec![line("Капучино", 2, 200), line("Круассан", 1, 200)],
    };
    till.commit_payment("pay-1", anna, None, Kopecks::ZERO, &check).unwrap();
    // 1 000 + 5 % of 600 = 1 030.
    assert_eq!(s.balance(anna).0, rub(1_030));
    let found = till.find_checks(&today()).unwrap();
    assert_eq!(found[0].lines, check.lines);

    let one = ReturnPart::Lines(vec![LineReturn { line: 0, quantity: 1 }]);
    let preview = till.preview_refund("pay-1", &one).unwrap();
    assert_eq!(
        (preview.amount, preview.accrual_taken),
        (Kopecks(rub(200)), Kopecks(rub(10)))
    );
    assert_eq!(till.refund("ret-1", "pay-1", &one).unwrap(), preview);
    assert_eq!(s.balance(anna).0, rub(1_020));
    assert_eq!(till.find_checks(&today()).unwrap()[0].lines[0].returned, 1);
    assert_eq!(
        till.refund(
            "ret-2",
            "pay-1",
            &ReturnPart::Lines(vec![LineReturn { line: 0, quantity: 2 }])
        ),
        Err(LoyaltyError::LineOverReturn {
            line: "Капучино".to_string(),
            left: 1
        })
    );
    s.post(
        "/api/v1/refunds",
        json!({"op_id": "ret-3", "payment_op_id": "pay-1", "amount": rub(100), "lines": [{"line": 1, "quantity": 1}]}),
    )
    .error(400, "bad_return");
    s.post(
        "/api/v1/refunds/preview",
        json!({"payment_op_id": "pay-1", "lines": []}),
    )
    .error(400, "bad_return");
    s.post(
        "/api/v1/refunds/preview",
        json!({"payment_op_id": "pay-1", "lines": [{"line": 1, "quantity": 2}]}),
    )
    .error(422, "line_over_return");
}
