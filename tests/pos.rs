#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The POS calls of the till's endpoint over real HTTP on loopback, on a real SQLite ledger
//! file (the demo programme): the order pushed, the cashier's hold, and what `paid`, `cancel`
//! and a repeated call id do to the guest's balance and history.

use loyalty_till::backend::{Clock, EmbeddedBackend, SystemClock};
use loyalty_till::config::ScanSettings;
use loyalty_till::domain::{GuestId, ScanKind};
use loyalty_till::handhelds::pos::{PosFeed, ResultState};
use loyalty_till::handhelds::{HandheldServer, HandheldSettings};
use loyalty_till::i18n::Lang;
use loyalty_till::ledger::Ledger;
use loyalty_till::money::Kopecks;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "pos-secret-7f3a";
const BONUS_TYPE: &str = "9b2f6a1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
const ORDER: &str = "6f1c2b1e-0d1a-4c53-9a44-3b7e2f9d0a11";

struct Till {
    _dir: tempfile::TempDir,
    ledger: PathBuf,
    orders: PathBuf,
    feed: Arc<PosFeed>,
    server: Option<HandheldServer>,
}

impl Till {
    fn new() -> Till {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("demo.sqlite");
        assert!(Ledger::open(&ledger).unwrap().seed_demo(SystemClock.now()).unwrap());
        let orders = dir.path().join("demo-handhelds.sqlite");
        let mut till = Till {
            _dir: dir,
            ledger,
            orders,
            feed: PosFeed::new(),
            server: None,
        };
        till.start();
        till
    }

    fn start(&mut self) {
        let settings = HandheldSettings {
            pos_token: TOKEN.to_string(),
            bonus_payment_type: BONUS_TYPE.to_string(),
            ..HandheldSettings::default()
        };
        let ledger = self.ledger.clone();
        self.feed = PosFeed::new();
        self.server = Some(
            HandheldServer::spawn_with_feed(
                settings,
                Lang::Ru,
                ScanSettings::default(),
                self.orders.clone(),
                Box::new(move || Ok(Box::new(EmbeddedBackend::open(ledger, Box::new(SystemClock))?))),
                Arc::clone(&self.feed),
            )
            .unwrap(),
        );
    }

    fn restart(&mut self) {
        self.server = None;
        self.start();
    }

    /// One HTTP/1.1 exchange; waits for the endpoint to open its backend first.
    fn call(&self, method: &str, path: &str, key: Option<&str>, token: &str, body: Option<&Value>) -> (u16, Value) {
        let addr = self.server.as_ref().unwrap().addr;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut head = format!(
            "{method} /GetMeBack{path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            addr.port(),
            body.len()
        );
        if let Some(key) = key {
            head.push_str(&format!("Idempotency-Key: {key}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no answer: {text:?}"));
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    fn push(&self, key: &str, order: &Value) -> (u16, Value) {
        self.call("PUT", &format!("/pos/orders/{ORDER}"), Some(key), TOKEN, Some(order))
    }

    fn ledger(&self) -> Ledger {
        Ledger::open(&self.ledger).unwrap()
    }

    fn guest(&self) -> GuestId {
        self.ledger()
            .identify("100001", ScanKind::Manual, SystemClock.now())
            .unwrap()
            .card
            .guest_id
    }

    fn balance(&self, guest: GuestId) -> i64 {
        self.ledger().guest_card(guest, SystemClock.now()).unwrap().balance.0
    }

    fn debits(&self, guest: GuestId) -> usize {
        self.ledger()
            .history(guest, 100)
            .unwrap()
            .iter()
            .filter(|e| e.amount.0 < 0)
            .count()
    }

    fn open_holds(&self, guest: GuestId) -> usize {
        self.ledger().open_holds(Some(guest)).unwrap().len()
    }
}

fn order(revision: i64, lines: &[(&str, &str, i64)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(id, code, price)| {
            json!({"lineId": id, "itemCode": code, "name": format!("Блюдо {code}"), "quantity": 1000,
                   "price": price, "amount": price})
        })
        .collect();
    let total: i64 = lines.iter().map(|l| l["amount"].as_i64().unwrap()).sum();
    json!({"revision": revision, "number": "117", "table": "5", "status": "open", "lines": lines, "total": total})
}

/// Waits until the endpoint has opened its backend and answers.
fn ready(till: &Till) {
    for _ in 0..200 {
        if till.call("GET", "/pos/health", None, TOKEN, None).0 == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the endpoint never answered");
}

#[test]
fn pushed_order_held_then_paid_debits_exactly_once_and_repeats_change_nothing() {
    let mut till = Till::new();
    ready(&till);
    let guest = till.guest();
    let before = till.balance(guest);
    let debits_before = till.debits(guest);

    let (status, result) = till.push("c1", &order(1, &[("l1", "A1", 150_000), ("l2", "B7", 50_000)]));
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["state"], "none");
    let shown = till.feed.current().expect("the till shows the pushed order");
    assert_eq!(shown.order.total, 200_000);
    assert_eq!(shown.order.number, "117");

    // The cashier identifies the guest and confirms 100 roubles of bonuses on the till.
    let held = till
        .feed
        .confirm(ORDER, guest, Kopecks(10_000), "cashier-1")
        .unwrap()
        .unwrap();
    assert_eq!(held.state, ResultState::Held);
    assert_eq!(till.open_holds(guest), 1);
    let (_, result) = till.call("GET", &format!("/pos/orders/{ORDER}"), None, TOKEN, None);
    assert_eq!(result["state"], "held");
    assert_eq!(result["bonusPayment"]["amount"], 10_000);
    assert_eq!(result["bonusPayment"]["paymentTypeId"], BONUS_TYPE);
    assert!(result["guest"]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(result["guest"]["phoneMasked"].as_str().unwrap().contains('*'));

    // The hold survives a restart of the till.
    till.restart();
    ready(&till);
    let paid = json!({"orderRevision": 1, "total": 200_000,
        "payments": [{"paymentTypeId": BONUS_TYPE, "amount": 10_000},
                     {"paymentTypeId": "00000000-0000-0000-0000-000000000001", "amount": 190_000}]});
    let (status, receipt) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/paid"),
        Some("c2"),
        TOKEN,
        Some(&paid),
    );
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["spent"], 10_000);
    let after = till.balance(guest);
    assert_eq!(after, before - 10_000 + receipt["accrued"].as_i64().unwrap());
    assert_eq!(till.debits(guest), debits_before + 1);
    assert_eq!(till.open_holds(guest), 0);

    // The POS retries the same call: the first answer, nothing debited again.
    let (status, again) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/paid"),
        Some("c2"),
        TOKEN,
        Some(&paid),
    );
    assert_eq!((status, &again), (200, &receipt));
    assert_eq!(till.balance(guest), after);
    assert_eq!(till.debits(guest), debits_before + 1);
    // The same id with another body is a conflict; a new id for a paid order is refused.
    let other = json!({"orderRevision": 1, "total": 1, "payments": []});
    let (status, problem) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/paid"),
        Some("c2"),
        TOKEN,
        Some(&other),
    );
    assert_eq!((status, problem["error"].as_str()), (409, Some("idempotency_conflict")));
    let (status, problem) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/paid"),
        Some("c3"),
        TOKEN,
        Some(&paid),
    );
    assert_eq!((status, problem["error"].as_str()), (409, Some("already_paid")));
    assert_eq!(till.debits(guest), debits_before + 1);
    assert!(till.feed.current().is_none(), "a paid order is no longer shown");
}

#[test]
fn cancel_and_reopen_void_the_hold_and_debit_nothing() {
    let till = Till::new();
    ready(&till);
    let guest = till.guest();
    let before = till.balance(guest);
    let debits_before = till.debits(guest);

    assert_eq!(till.push("p1", &order(1, &[("l1", "A1", 100_000)])).0, 200);
    till.feed
        .confirm(ORDER, guest, Kopecks(5_000), "cashier-1")
        .unwrap()
        .unwrap();
    assert_eq!(till.open_holds(guest), 1);
    // Reopened with other lines: the hold is voided; the same lines again would keep it.
    let (status, result) = till.push("p2", &order(2, &[("l1", "A1", 100_000), ("l2", "C3", 30_000)]));
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["state"], "voided");
    assert_eq!(till.open_holds(guest), 0);
    // A paid with a bonus payment after the void: refused, nothing debited.
    let paid =
        json!({"orderRevision": 2, "total": 130_000, "payments": [{"paymentTypeId": BONUS_TYPE, "amount": 5_000}]});
    let (status, problem) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/paid"),
        Some("p3"),
        TOKEN,
        Some(&paid),
    );
    assert_eq!(
        (status, problem["error"].as_str()),
        (409, Some("hold_void")),
        "{problem}"
    );

    // Held again, then the POS cancels: voided, nothing debited, no open hold.
    till.feed
        .confirm(ORDER, guest, Kopecks(5_000), "cashier-2")
        .unwrap()
        .unwrap();
    assert_eq!(till.open_holds(guest), 1);
    let cancel = json!({"orderRevision": 2});
    let (status, result) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/cancel"),
        Some("p4"),
        TOKEN,
        Some(&cancel),
    );
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["state"], "cancelled");
    assert_eq!(till.open_holds(guest), 0);
    let (status, again) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/cancel"),
        Some("p4"),
        TOKEN,
        Some(&cancel),
    );
    assert_eq!((status, &again), (200, &result));
    assert_eq!(till.balance(guest), before);
    assert_eq!(till.debits(guest), debits_before);
    assert!(till.feed.current().is_none());
}

#[test]
fn token_call_id_and_bad_orders_are_refused_and_returns_of_unpaid_orders_too() {
    let till = Till::new();
    ready(&till);
    let good = order(1, &[("l1", "A1", 100_000)]);
    let (status, problem) = till.call("PUT", &format!("/pos/orders/{ORDER}"), Some("k1"), "wrong", Some(&good));
    assert_eq!((status, problem["error"].as_str()), (401, Some("unauthorized")));
    let (status, problem) = till.call("PUT", &format!("/pos/orders/{ORDER}"), None, TOKEN, Some(&good));
    assert_eq!((status, problem["error"].as_str()), (400, Some("bad_request")));
    assert!(problem["message"].as_str().unwrap().contains("Idempotency-Key"));
    let mut wrong_total = good.clone();
    wrong_total["total"] = json!(1);
    let (status, _) = till.push("k2", &wrong_total);
    assert_eq!(status, 400);
    assert!(till.feed.current().is_none(), "a refused order is not shown");
    let (status, problem) = till.call(
        "GET",
        "/pos/orders/0b8e7d6c-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
        None,
        TOKEN,
        None,
    );
    assert_eq!((status, problem["error"].as_str()), (404, Some("unknown_order")));
    let ret = json!({"returnId": "r1", "lines": [{"lineId": "l1", "quantity": 1000, "amount": 100_000}]});
    let (status, problem) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/returns"),
        Some("k3"),
        TOKEN,
        Some(&ret),
    );
    assert_eq!((status, problem["error"].as_str()), (404, Some("unknown_order")));
    // An older revision changes nothing.
    assert_eq!(till.push("k4", &order(3, &[("l1", "A1", 70_000)])).0, 200);
    let (status, problem) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/returns"),
        Some("k6"),
        TOKEN,
        Some(&ret),
    );
    assert_eq!(
        (status, problem["error"].as_str()),
        (404, Some("not_paid")),
        "an open order has nothing to return"
    );
    let (_, result) = till.push("k5", &order(2, &[("l1", "A1", 90_000)]));
    assert_eq!(result["orderRevision"], 3);
    assert_eq!(till.feed.current().unwrap().order.total, 70_000);
}

/// What `docs/pos-contract.openapi.json` names is what the till serves: every path and method
/// of the contract is answered by the POS routes (200 or a `Problem` with a code the contract
/// lists), never by the endpoint's fallback.
#[test]
fn every_operation_of_the_contract_is_served() {
    let contract: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/pos-contract.openapi.json")).unwrap(),
    )
    .unwrap();
    let codes = contract["components"]["schemas"]["Problem"]["properties"]["error"]["description"]
        .as_str()
        .unwrap()
        .to_string();
    let till = Till::new();
    ready(&till);
    let mut served = 0;
    for (path, item) in contract["paths"].as_object().unwrap() {
        for method in ["get", "put", "post"] {
            if item.get(method).is_none() {
                continue;
            }
            let path = path.replace("{orderId}", ORDER);
            let key = format!("contract-{served}");
            let body = json!({});
            let (status, answer) = if method == "get" {
                till.call("GET", &path, None, TOKEN, None)
            } else {
                till.call(&method.to_uppercase(), &path, Some(&key), TOKEN, Some(&body))
            };
            if status != 200 {
                let code = answer["error"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path}: {status} {answer}"));
                assert!(
                    codes.contains(code),
                    "{method} {path}: code {code} is not in the contract"
                );
                assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
            served += 1;
        }
    }
    assert!(served >= 6, "only {served} operations");
}

/// A line returned on the POS after payment gives back its share of the bonuses spent and takes
/// back its share of the accrual, once per call id, never more than was paid.
#[test]
fn returned_lines_reverse_their_share_once() {
    let mut till = Till::new();
    ready(&till);
    let guest = till.guest();
    let ret = |till: &Till, key: &str, lines: Value| {
        let body = json!({"returnId": format!("ret-{key}"), "lines": lines});
        till.call(
            "POST",
            &format!("/pos/orders/{ORDER}/returns"),
            Some(key),
            TOKEN,
            Some(&body),
        )
    };
    assert_eq!(
        till.push("o1", &order(1, &[("l1", "A1", 150_000), ("l2", "B7", 50_000)]))
            .0,
        200
    );
    till.feed
        .confirm(ORDER, guest, Kopecks(10_000), "cashier-1")
        .unwrap()
        .unwrap();
    let paid = json!({"orderRevision": 1, "total": 200_000,
        "payments": [{"paymentTypeId": BONUS_TYPE, "amount": 10_000},
                     {"paymentTypeId": "00000000-0000-0000-0000-000000000001", "amount": 190_000}]});
    let (status, receipt) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/paid"),
        Some("o2"),
        TOKEN,
        Some(&paid),
    );
    assert_eq!(status, 200, "{receipt}");
    let accrued = receipt["accrued"].as_i64().unwrap();
    assert!(accrued > 0, "the guest's group accrues: {receipt}");
    let paid_balance = till.balance(guest);

    // Line l2 (50 000 of the 200 000 paid) comes back: a quarter of the spend and the accrual.
    let (status, back) = ret(
        &till,
        "r1",
        json!([{"lineId": "l2", "quantity": 1000, "amount": 50_000}]),
    );
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["bonusesBack"], 2_500, "{back}");
    let taken = back["accrualTakenBack"].as_i64().unwrap();
    assert!(
        (taken - accrued / 4).abs() <= 1,
        "a quarter of {accrued} taken back: {back}"
    );
    assert_eq!(back["fullyReturned"], false);
    let after_first = paid_balance + 2_500 - taken;
    assert_eq!(back["balance"], after_first);
    assert_eq!(till.balance(guest), after_first);

    // The POS retries the call, also after a restart of the till: nothing reversed twice.
    let (status, again) = ret(
        &till,
        "r1",
        json!([{"lineId": "l2", "quantity": 1000, "amount": 50_000}]),
    );
    assert_eq!((status, &again), (200, &back));
    till.restart();
    ready(&till);
    let (status, again) = ret(
        &till,
        "r1",
        json!([{"lineId": "l2", "quantity": 1000, "amount": 50_000}]),
    );
    assert_eq!((status, &again), (200, &back));
    assert_eq!(till.balance(guest), after_first);

    // More than was paid on a line, or a line the check never had: refused, nothing reversed.
    for (key, lines) in [
        ("r2", json!([{"lineId": "l2", "quantity": 1, "amount": 1}])),
        ("r3", json!([{"lineId": "l1", "quantity": 1000, "amount": 150_001}])),
        ("r4", json!([{"lineId": "nope", "quantity": 1000, "amount": 1}])),
    ] {
        let (status, problem) = ret(&till, key, lines);
        assert_eq!(
            (status, problem["error"].as_str()),
            (409, Some("over_return")),
            "{key}: {problem}"
        );
    }
    let (status, problem) = ret(&till, "r5", json!([]));
    assert_eq!((status, problem["error"].as_str()), (400, Some("bad_request")));
    assert_eq!(till.balance(guest), after_first);

    // The rest of l1 in two parts: the check is then returned in full, spend and accrual all back.
    let (status, half) = ret(
        &till,
        "r6",
        json!([{"lineId": "l1", "quantity": 500, "amount": 75_000}]),
    );
    assert_eq!(status, 200, "{half}");
    assert_eq!(half["fullyReturned"], false);
    let (status, rest) = ret(
        &till,
        "r7",
        json!([{"lineId": "l1", "quantity": 500, "amount": 75_000}]),
    );
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["fullyReturned"], true, "{rest}");
    let spent_back = [&back, &half, &rest]
        .iter()
        .map(|r| r["bonusesBack"].as_i64().unwrap())
        .sum::<i64>();
    let accrual_back = [&back, &half, &rest]
        .iter()
        .map(|r| r["accrualTakenBack"].as_i64().unwrap() + r["notRecovered"].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(spent_back, 10_000, "all the spend came back");
    assert_eq!(accrual_back, accrued, "all the accrual was taken back");
    assert_eq!(till.balance(guest), paid_balance + 10_000 - accrued);
}

/// The long poll: `GET …?after=R&wait=S` sleeps until the result changes and answers the change
/// at once (woken by the change, whether a POS call or the cashier's confirmation); with nothing
/// changing it answers the same `resultRevision` when the wait is over.
#[test]
fn the_long_poll_is_woken_by_a_change_and_answers_unchanged_when_the_wait_is_over() {
    let till = Arc::new(Till::new());
    ready(&till);
    let guest = till.guest();
    let (status, first) = till.push("lp-1", &order(1, &[("l1", "A1", 150_000)]));
    assert_eq!(status, 200, "{first}");
    let seen = first["resultRevision"].as_i64().unwrap();
    let path = format!("/pos/orders/{ORDER}?after={seen}&wait=15");

    // Nothing changes: answered after the wait, unchanged.
    let started = std::time::Instant::now();
    let (status, same) = till.call(
        "GET",
        &format!("/pos/orders/{ORDER}?after={seen}&wait=1"),
        None,
        TOKEN,
        None,
    );
    let waited = started.elapsed();
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["resultRevision"], seen, "unchanged: the same resultRevision");
    assert!(waited >= Duration::from_millis(950), "it waited the second: {waited:?}");

    // Without `after` the answer is immediate, as before.
    let started = std::time::Instant::now();
    let (status, _) = till.call("GET", &format!("/pos/orders/{ORDER}?wait=15"), None, TOKEN, None);
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));

    // The cashier confirms while the POS waits: the waiting call answers the hold.
    let waiting = {
        let till = Arc::clone(&till);
        let path = path.clone();
        std::thread::Builder::new()
            .name("long-poll-confirm".into())
            .spawn(move || {
                let (status, result) = till.call("GET", &path, None, TOKEN, None);
                (status, result, std::time::Instant::now())
            })
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(!waiting.is_finished(), "nothing changed yet: it waits");
    let confirmed_at = std::time::Instant::now();
    let held = till
        .feed
        .confirm(ORDER, guest, Kopecks(10_000), "lp-cashier")
        .unwrap()
        .unwrap();
    let (status, woken, answered_at) = waiting.join().unwrap();
    assert_eq!(status, 200, "{woken}");
    assert_eq!(woken["state"], "held", "{woken}");
    assert_eq!(woken["resultRevision"], held.result_revision);
    assert!(held.result_revision > seen);
    // Woken by the change, long before the 15 s wait was over.
    assert!(
        answered_at.duration_since(confirmed_at) < Duration::from_secs(5),
        "{:?}",
        answered_at.duration_since(confirmed_at)
    );

    // A POS call (the order reopened with other lines voids the hold) wakes a waiting call too.
    let path = format!("/pos/orders/{ORDER}?after={}&wait=15", held.result_revision);
    let waiting = {
        let till = Arc::clone(&till);
        std::thread::Builder::new()
            .name("long-poll-push".into())
            .spawn(move || till.call("GET", &path, None, TOKEN, None))
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(!waiting.is_finished());
    let pushed_at = std::time::Instant::now();
    let (status, reopened) = till.push("lp-2", &order(2, &[("l1", "A1", 150_000), ("l2", "B7", 50_000)]));
    assert_eq!(status, 200, "{reopened}");
    let (status, woken) = waiting.join().unwrap();
    assert!(pushed_at.elapsed() < Duration::from_secs(5));
    assert_eq!(status, 200);
    assert_eq!(woken["orderRevision"], 2, "{woken}");
    assert!(woken["resultRevision"].as_i64().unwrap() > held.result_revision);
    assert_eq!(till.open_holds(guest), 0, "the reopened order's hold is voided");

    // A wait that is not a number is refused.
    let (status, refused) = till.call(
        "GET",
        &format!("/pos/orders/{ORDER}?after=1&wait=soon"),
        None,
        TOKEN,
        None,
    );
    assert_eq!(status, 400, "{refused}");
}

/// Two POS orders pushed within one second: the till shows the one pushed last (the measurement
/// of push-to-screen latency found the earlier one shown when both carried the same second).
#[test]
fn of_two_orders_pushed_in_one_second_the_later_is_shown() {
    let till = Till::new();
    ready(&till);
    for round in 0..5 {
        // The later order's id sorts after the earlier's: a tie left to the table's order would
        // show the earlier.
        let first = format!("0a000000-0d1a-4c53-9a44-3b7e2f9d{round:04}");
        let second = format!("6f1c2b1e-0d1a-4c53-9a44-3b7e2f9d{round:04}");
        for (id, number) in [(&first, "1"), (&second, "2")] {
            let mut body = order(1, &[("l1", "A1", 150_000)]);
            body["number"] = json!(format!("{round}-{number}"));
            let (status, answer) = till.call(
                "PUT",
                &format!("/pos/orders/{id}"),
                Some(&format!("two-{round}-{number}")),
                TOKEN,
                Some(&body),
            );
            assert_eq!(status, 200, "{answer}");
        }
        let shown = till.feed.current().expect("an order is shown");
        assert_eq!(shown.order.number, format!("{round}-2"), "round {round}");
    }
}

/// A POS order paid with several cards («Добавить карту» on the till): Анна owns the check and
/// pays 100,00, Иван 200,00 and her corporate account 150,00. Each card's hold is placed on its
/// account (all or none: a card over its balance refuses them all, naming it), the POS sees one
/// bonus payment of their sum, a reopened order voids every hold, the holds survive a restart,
/// the POS's `paid` debits each account once and accrues to Анна only, and the POS's return of
/// the check gives every account its bonuses back.
#[test]
fn a_pos_order_paid_with_several_cards_debits_each_account_once() {
    use loyalty_till::domain::{CardShare, LoyaltyError};
    use loyalty_till::handhelds::pos::PosError;
    let mut till = Till::new();
    ready(&till);
    let find = |code: &str| {
        till.ledger()
            .identify(code, ScanKind::Manual, SystemClock.now())
            .unwrap()
            .card
            .guest_id
    };
    let (anna, ivan, corporate) = (find("100001"), find("100002"), find("700001"));
    let accounts = [anna, ivan, corporate];
    let balances = |till: &Till| accounts.map(|guest| till.balance(guest));
    let holds = |till: &Till| accounts.map(|guest| till.open_holds(guest));
    let before = balances(&till);
    let shares = |corporate_amount: i64| {
        vec![
            CardShare {
                guest: anna,
                amount: Kopecks(10_000),
            },
            CardShare {
                guest: ivan,
                amount: Kopecks(20_000),
            },
            CardShare {
                guest: corporate,
                amount: Kopecks(corporate_amount),
            },
        ]
    };
    assert_eq!(till.push("s1", &order(1, &[("l1", "A1", 200_000)])).0, 200);

    // The corporate account has 500,00: 600,00 on it refuses every hold, naming the card.
    let refused = till
        .feed
        .confirm_shared(ORDER, anna, &shares(60_000), "cashier-1")
        .unwrap();
    assert!(
        matches!(
            refused,
            Err(PosError::Loyalty(LoyaltyError::CardRefused { card: 3, .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(holds(&till), [0, 0, 0], "nothing held for the cards that were fine");

    let held = till
        .feed
        .confirm_shared(ORDER, anna, &shares(15_000), "cashier-2")
        .unwrap()
        .unwrap();
    assert_eq!(held.state, ResultState::Held);
    assert_eq!(holds(&till), [1, 1, 1]);
    let (_, result) = till.call("GET", &format!("/pos/orders/{ORDER}"), None, TOKEN, None);
    assert_eq!(result["state"], "held");
    assert_eq!(
        result["bonusPayment"]["amount"], 45_000,
        "one bonus payment for the three cards"
    );
    assert_eq!(till.feed.current().and_then(|view| view.held), Some(Kopecks(45_000)));

    // Reopened with other lines: every hold is voided.
    let (_, reopened) = till.push("s2", &order(2, &[("l1", "A1", 200_000), ("l2", "B7", 30_000)]));
    assert_eq!(reopened["state"], "voided", "{reopened}");
    assert_eq!(holds(&till), [0, 0, 0]);
    assert_eq!(till.push("s3", &order(3, &[("l1", "A1", 200_000)])).0, 200);
    till.feed
        .confirm_shared(ORDER, anna, &shares(15_000), "cashier-3")
        .unwrap()
        .unwrap();
    assert_eq!(holds(&till), [1, 1, 1]);

    // The holds survive a restart of the till; the POS pays 450,00 with bonuses.
    till.restart();
    ready(&till);
    let paid = json!({"orderRevision": 3, "total": 200_000,
        "payments": [{"paymentTypeId": BONUS_TYPE, "amount": 45_000},
                     {"paymentTypeId": "00000000-0000-0000-0000-000000000001", "amount": 155_000}]});
    let (status, receipt) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/paid"),
        Some("s4"),
        TOKEN,
        Some(&paid),
    );
    assert_eq!(status, 200, "{receipt}");
    // Анна's group accrues 5 % of the 1 550,00 paid with money.
    assert_eq!(
        (receipt["spent"].as_i64(), receipt["accrued"].as_i64()),
        (Some(45_000), Some(7_750))
    );
    assert_eq!(
        balances(&till),
        [before[0] - 10_000 + 7_750, before[1] - 20_000, before[2] - 15_000]
    );
    assert_eq!(receipt["balance"], before[0] - 10_000 + 7_750, "the owner's balance");
    assert_eq!(holds(&till), [0, 0, 0]);
    let (status, again) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/paid"),
        Some("s4"),
        TOKEN,
        Some(&paid),
    );
    assert_eq!((status, &again), (200, &receipt), "a repeat debits nothing");
    assert_eq!(balances(&till)[1], before[1] - 20_000);

    // The whole check returned on the POS: every account whole again.
    let body = json!({"returnId": "ret-s5", "lines": [{"lineId": "l1", "quantity": 1000, "amount": 200_000}]});
    let (status, back) = till.call(
        "POST",
        &format!("/pos/orders/{ORDER}/returns"),
        Some("s5"),
        TOKEN,
        Some(&body),
    );
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["fullyReturned"], true, "{back}");
    assert_eq!(balances(&till), before);
    till.ledger().check_invariants().unwrap();
}
