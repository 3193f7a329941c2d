#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The waiters' handhelds endpoint over real HTTP on loopback, on a real SQLite ledger file
//! (the demo programme) and a real order-book file: what iikoWaiter's External Loyalty sends,
//! byte for byte, through a plain socket so that every header (Host, Content-Type, sizes) is the
//! test's to choose.

use loyalty_till::backend::{EmbeddedBackend, SystemClock};
use loyalty_till::config::ScanSettings;
use loyalty_till::domain::ScanKind;
use loyalty_till::handhelds::orders::OrderBook;
use loyalty_till::handhelds::{HandheldServer, HandheldSettings};
use loyalty_till::i18n::{I18n, Lang};
use loyalty_till::ledger::Ledger;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PIN: &str = "4921";
/// The programme's key for the guests' app QR tokens.
const SECRET: &str = "programme-key";
const ORDER: &str = "6f1c2b1e-0d1a-4c53-9a44-3b7e2f9d0a11";
const OTHER_ORDER: &str = "0b8e7d6c-5a4f-4e3d-8c2b-1a0f9e8d7c6b";

struct Till {
    _dir: tempfile::TempDir,
    ledger: PathBuf,
    orders: PathBuf,
    server: Option<HandheldServer>,
}

impl Till {
    fn new() -> Till {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("demo.sqlite");
        let now = SystemClock_now();
        assert!(Ledger::open(&ledger).unwrap().seed_demo(now).unwrap());
        let orders = dir.path().join("demo-handhelds.sqlite");
        let mut till = Till {
            _dir: dir,
            ledger,
            orders,
            server: None,
        };
        till.start();
        till
    }

    fn start(&mut self) {
        let settings = HandheldSettings {
            waiter_pins: vec!["7730".to_string(), PIN.to_string()],
            ..HandheldSettings::default()
        };
        let ledger = self.ledger.clone();
        let server = HandheldServer::spawn(
            settings,
            Lang::Ru,
            ScanSettings {
                token_secret: SECRET.to_string(),
                ..ScanSettings::default()
            },
            self.orders.clone(),
            Box::new(move || Ok(Box::new(EmbeddedBackend::open(ledger, Box::new(SystemClock))?))),
        )
        .unwrap();
        self.server = Some(server);
    }

    /// Drops the endpoint (its runtime and connections) and starts a new one on the same files.
    fn restart(&mut self) {
        self.server = None;
        self.start();
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addr
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr().port())
    }

    fn checkin(&self, order: &str, value: &str, pin: &str) -> Answer {
        let body = serde_json::json!({ "Value": value, "WaiterPin": pin }).to_string();
        self.send(
            "POST",
            &format!("/GetMeBack/orders/{order}/checkin"),
            &self.host(),
            Some("application/json"),
            body.as_bytes(),
        )
    }

    fn checkout(&self, order: &str, pin: &str) -> Answer {
        let body = serde_json::json!({ "WaiterPin": pin }).to_string();
        self.send(
            "DELETE",
            &format!("/GetMeBack/orders/{order}/checkin"),
            &self.host(),
            Some("application/json"),
            body.as_bytes(),
        )
    }

    fn send(&self, method: &str, path: &str, host: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
        send(self.addr(), method, path, host, content_type, body)
    }

    fn order(&self) -> Option<loyalty_till::handhelds::orders::OrderState> {
        OrderBook::open(&self.orders).unwrap().order(ORDER).unwrap()
    }
}

#[allow(non_snake_case)]
fn SystemClock_now() -> i64 {
    use loyalty_till::backend::Clock;
    SystemClock.now()
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn message(&self) -> String {
        let value: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body));
        value["WaiterMessage"].as_str().expect("a WaiterMessage").to_string()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    }
}

/// One HTTP/1.1 exchange on a fresh connection.
fn send(addr: SocketAddr, method: &str, path: &str, host: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // A server that answers before reading a large body may close the socket under the write.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    }
}

fn ru(key: &str) -> String {
    I18n::new(Lang::Ru).t(key)
}

fn gift_codes(state: &loyalty_till::handhelds::orders::OrderState) -> Vec<&str> {
    state.gifts.iter().map(|(_, gift)| gift.code.as_str()).collect()
}

#[test]
fn guest_gift_second_gift_and_check_out_survive_a_restart() {
    let mut till = Till::new();
    // A guest code: the guest is bound, nothing else.
    let answer = till.checkin(ORDER, "100001", PIN);
    assert_eq!(answer.status, 204, "{answer:?}");
    assert!(answer.body.is_empty(), "204 carries no body: {answer:?}");
    let state = till.order().expect("the order has the guest");
    let (guest, name) = state.guest.clone().unwrap();
    assert!(!name.is_empty());
    assert!(state.gifts.is_empty());

    // A gift code of the same guest: bound, and the gift is on the order.
    assert_eq!(till.checkin(ORDER, "G100001", PIN).status, 204);
    let state = till.order().unwrap();
    assert_eq!(state.guest.as_ref().map(|g| g.0), Some(guest));
    assert_eq!(gift_codes(&state), ["G100001"]);
    assert_eq!(state.gifts[0].1.name, "Капучино");

    // The seed's «ещё один подарок»: check-out, then check-in with the next gift; both stay.
    let out = till.checkout(ORDER, PIN);
    assert_eq!(out.status, 204, "{out:?}");
    let state = till.order().unwrap();
    assert_eq!(state.guest, None, "checked out");
    assert_eq!(gift_codes(&state), ["G100001"], "the dish stays in the order");
    assert_eq!(till.checkin(ORDER, "G100003", PIN).status, 204);
    // The same gift scanned twice is on the order once.
    assert_eq!(till.checkin(ORDER, "G100003", PIN).status, 204);
    let state = till.order().unwrap();
    assert_eq!(gift_codes(&state), ["G100001", "G100003"]);
    assert_eq!(state.guest.as_ref().map(|g| g.0), Some(guest));

    // A gift already on this order cannot go on another one.
    let again = till.checkin(OTHER_ORDER, "G100001", PIN);
    assert_eq!((again.status, again.message()), (200, ru("waiter-gift-on-other-order")));
    // Another guest on an order that has one: refused until the check-out.
    let other = till.checkin(ORDER, "100002", PIN);
    assert_eq!((other.status, other.message()), (200, ru("waiter-other-guest")));
    // Check-out of an order with nobody on it.
    let nobody = till.checkout(OTHER_ORDER, PIN);
    assert_eq!((nobody.status, nobody.message()), (200, ru("waiter-not-checked-in")));

    // A restart of the till keeps what the handhelds did.
    till.restart();
    let state = till.order().unwrap();
    assert_eq!(state.guest.as_ref().map(|g| g.0), Some(guest));
    assert_eq!(gift_codes(&state), ["G100001", "G100003"]);
    let other = till.checkin(ORDER, "100002", PIN);
    assert_eq!(
        other.message(),
        ru("waiter-other-guest"),
        "still one guest after the restart"
    );
    assert_eq!(till.checkout(ORDER, PIN).status, 204);
    // Guest 2 after guest 1's check-out: guest 1's gifts are still on the order.
    let foreign = till.checkin(ORDER, "100002", PIN);
    assert_eq!(foreign.message(), ru("waiter-other-guests-gifts"));
}

#[test]
fn refusals_carry_a_russian_waiter_message_and_change_nothing() {
    let till = Till::new();
    // Unknown code: the engine's refusal, in Russian, with the protocol's 200.
    let unknown = till.checkin(ORDER, "999999", PIN);
    assert_eq!(unknown.status, 200, "{unknown:?}");
    let text = unknown.message();
    assert_eq!(text, ru("err-unknown-code"));
    assert!(text.contains("не найден"), "{text}");
    assert_eq!(till.order(), None);

    // A 1 MB Value: refused by size before anything is parsed; the endpoint keeps answering.
    let huge = serde_json::json!({ "Value": "7".repeat(1024 * 1024), "WaiterPin": PIN }).to_string();
    let path = format!("/GetMeBack/orders/{ORDER}/checkin");
    let big = till.send("POST", &path, &till.host(), Some("application/json"), huge.as_bytes());
    assert_eq!(big.status, 413, "{big:?}");
    assert_eq!(big.message(), ru("waiter-too-large"));
    // A Value over the scan limit but under the body limit: the scan parser's refusal.
    let long = till.checkin(ORDER, &"7".repeat(5_000), PIN);
    assert_eq!((long.status, long.message()), (200, ru("err-scan-garbled")));

    // Not JSON, JSON of another shape, and no JSON content type.
    let garbage = till.send(
        "POST",
        &path,
        &till.host(),
        Some("application/json"),
        b"Value=100001&WaiterPin=4921",
    );
    assert_eq!((garbage.status, garbage.message()), (400, ru("waiter-bad-request")));
    let shape = till.send("POST", &path, &till.host(), Some("application/json"), br#"{"value":1}"#);
    assert_eq!(shape.status, 400, "{shape:?}");
    let form = till.send(
        "POST",
        &path,
        &till.host(),
        Some("application/x-www-form-urlencoded"),
        br#"{"Value":"100001","WaiterPin":"4921"}"#,
    );
    assert_eq!(form.status, 415, "a browser form never checks a guest in: {form:?}");

    // Unknown orders and paths.
    let bad_order = till.checkin("12345", "100001", PIN);
    assert_eq!((bad_order.status, bad_order.message()), (404, ru("waiter-bad-order")));
    let bad_checkout = till.checkout("not-an-order", PIN);
    assert_eq!(bad_checkout.status, 404, "{bad_checkout:?}");
    let elsewhere = till.send(
        "POST",
        &format!("/Other/orders/{ORDER}/checkin"),
        &till.host(),
        Some("application/json"),
        b"{}",
    );
    assert_eq!((elsewhere.status, elsewhere.message()), (404, ru("waiter-not-found")));

    // A foreign Host (DNS rebinding from a web page) is refused before anything else.
    let rebound = till.send(
        "POST",
        &path,
        "evil.example:3000",
        Some("application/json"),
        br#"{"Value":"100001","WaiterPin":"4921"}"#,
    );
    assert_eq!((rebound.status, rebound.message()), (421, ru("waiter-wrong-host")));
    // No CORS: a browser's preflight gets no Access-Control-Allow-Origin, nor does any answer.
    let preflight = till.send("OPTIONS", &path, &till.host(), None, b"");
    assert!(preflight.status >= 400, "{preflight:?}");
    for answer in [&unknown, &big, &garbage, &preflight, &rebound] {
        assert_eq!(answer.header("access-control-allow-origin"), None, "{answer:?}");
    }
    assert_eq!(till.order(), None, "no refusal left anything on the order");
    // After all that, a good check-in still works.
    assert_eq!(till.checkin(ORDER, "100001", PIN).status, 204);
}

#[test]
fn app_qr_tokens_check_in_like_at_the_till() {
    use loyalty_till::scan::payload::{sign_gift_token, sign_guest_token};
    let till = Till::new();
    let now = SystemClock_now();
    // The guest's app shows a gift QR: the guest and the gift go on the order.
    let gift = sign_gift_token(SECRET.as_bytes(), "100001", "G100003", now);
    let answer = till.checkin(ORDER, &gift, PIN);
    assert_eq!(answer.status, 204, "{answer:?}");
    let state = till.order().unwrap();
    assert_eq!(gift_codes(&state), ["G100003"]);
    assert!(state.guest.is_some());
    // A token signed with another key, and one issued long ago, are the scan parser's refusals.
    let forged = sign_guest_token(b"another-key", "100001", now);
    let forged = till.checkin(OTHER_ORDER, &forged, PIN);
    assert_eq!((forged.status, forged.message()), (200, ru("err-qr-forged")));
    let old = sign_guest_token(SECRET.as_bytes(), "100001", now - 3_600);
    let old = till.checkin(OTHER_ORDER, &old, PIN);
    assert_eq!((old.status, old.message()), (200, ru("err-qr-expired")));
    assert_eq!(OrderBook::open(&till.orders).unwrap().order(OTHER_ORDER).unwrap(), None);
}

#[test]
fn wrong_pins_are_refused_and_guessing_is_locked_out() {
    let till = Till::new();
    let wrong = till.checkin(ORDER, "100001", "0000");
    assert_eq!((wrong.status, wrong.message()), (200, ru("waiter-wrong-pin")));
    let none = till.send(
        "POST",
        &format!("/GetMeBack/orders/{ORDER}/checkin"),
        &till.host(),
        Some("application/json"),
        br#"{"Value":"100001"}"#,
    );
    assert_eq!((none.status, none.message()), (200, ru("waiter-no-pin")));
    assert_eq!(till.order(), None);
    // A wrong PIN on the check-out is refused the same way.
    let out = till.checkout(ORDER, "1111");
    assert_eq!(out.message(), ru("waiter-wrong-pin"));
    // Two more wrong PINs make five (the missing one counts): locked out, with Retry-After.
    assert_eq!(till.checkin(ORDER, "100001", "4922").status, 200);
    let locked = till.checkin(ORDER, "100001", "4920");
    assert_eq!(locked.status, 429, "{locked:?}");
    assert!(locked.message().contains("мин"), "{locked:?}");
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    // Even the right PIN is refused while locked out, so a lucky guess teaches nothing.
    let right = till.checkin(ORDER, "100001", PIN);
    assert_eq!(right.status, 429, "{right:?}");
    assert_eq!(till.order(), None, "nothing was checked in");
}

#[test]
fn concurrent_check_ins_on_one_order_leave_one_guest_and_only_their_gifts() {
    let till = Till::new();
    let addr = till.addr();
    let host = till.host();
    // Two guests' codes and gifts, four times each, from 20 handhelds at once.
    let codes = ["100001", "G100001", "G100003", "100002", "G100002"];
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let code = codes[i % codes.len()].to_string();
            let host = host.clone();
            std::thread::Builder::new()
                .name(format!("handheld-{i}"))
                .spawn(move || {
                    let body = serde_json::json!({ "Value": code, "WaiterPin": PIN }).to_string();
                    let answer = send(
                        addr,
                        "POST",
                        &format!("/GetMeBack/orders/{ORDER}/checkin"),
                        &host,
                        Some("application/json"),
                        body.as_bytes(),
                    );
                    (code, answer)
                })
                .unwrap()
        })
        .collect();
    let answers: Vec<(String, Answer)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let state = till.order().expect("someone was checked in");
    let (guest, _) = state.guest.clone().unwrap();
    // Which guest "100001" is, asked of the ledger itself.
    let first_guest = Ledger::open(&till.ledger)
        .unwrap()
        .identify("100001", ScanKind::Barcode, SystemClock_now())
        .unwrap()
        .card
        .guest_id;
    let first_guest_won = guest == first_guest;
    let winners: &[&str] = if first_guest_won {
        &["100001", "G100001", "G100003"]
    } else {
        &["100002", "G100002"]
    };
    for (code, answer) in &answers {
        if winners.contains(&code.as_str()) {
            assert_eq!(answer.status, 204, "{code}: {answer:?}");
        } else {
            assert_eq!(answer.status, 200, "{code}: {answer:?}");
            let text = answer.message();
            assert!(
                text == ru("waiter-other-guest") || text == ru("waiter-other-guests-gifts"),
                "{code}: {text}"
            );
        }
    }
    let mut expected: Vec<&str> = winners.iter().copied().filter(|c| c.starts_with('G')).collect();
    let mut got = gift_codes(&state);
    expected.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, expected, "each of the winner's gifts once, no other guest's");
    assert!(state.gifts.iter().all(|(owner, _)| *owner == guest));
}

/// Check-in round trips from 20 handhelds at once, each on its own order: the p99 is printed
/// (`--nocapture`) for the README's figure; the test fails only on a refused or slow-beyond-
/// reason answer.
#[test]
fn twenty_handhelds_at_once_round_trip() {
    let till = Till::new();
    let addr = till.addr();
    let host = till.host();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let host = host.clone();
            std::thread::Builder::new()
                .name(format!("handheld-{i}"))
                .spawn(move || {
                    let mut times = Vec::new();
                    for round in 0..10 {
                        let order = format!("00000000-0000-4000-8000-{:06}{:06}", i, round);
                        let code = if i % 2 == 0 { "100001" } else { "100002" };
                        let body = serde_json::json!({ "Value": code, "WaiterPin": PIN }).to_string();
                        let started = Instant::now();
                        let answer = send(
                            addr,
                            "POST",
                            &format!("/GetMeBack/orders/{order}/checkin"),
                            &host,
                            Some("application/json"),
                            body.as_bytes(),
                        );
                        times.push(started.elapsed());
                        assert_eq!(answer.status, 204, "{answer:?}");
                    }
                    times
                })
                .unwrap()
        })
        .collect();
    let mut times: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    times.sort_unstable();
    let p99 = times[times.len() * 99 / 100 - 1];
    let p50 = times[times.len() / 2];
    println!(
        "handhelds check-in round trip, 20 at once, {} calls: p50 {p50:?}, p99 {p99:?}",
        times.len()
    );
    assert!(p99 < Duration::from_secs(2), "p99 {p99:?}");
}
