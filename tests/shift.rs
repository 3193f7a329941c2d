//! «Закрыть смену» below the UI: what the backends list as left in doubt, and how each entry is
//! finished or released. A till stopped between hold and commit (on its own SQLite file, and on
//! the loyalty server), a payment queued while the server was away, a return whose answer was
//! lost, and the shift report's figures and its day boundary. The ledger's invariants are checked after each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::backend::{Clock, EmbeddedBackend, LoyaltyBackend};
use loyalty_till::domain::{
    CheckInfo, CheckLine, GuestId, LineReturn, LooseEndKind, LoyaltyError, ReturnPart, ScanEvent, ScanKind, UnixSeconds,
};
use loyalty_till::money::Kopecks;
use loyalty_till::remote::{ServerBackend, ServerSettings};
use server_support::proxy::{Fault, Proxy};
use server_support::{ANNA_CARD, Db, Server, rub};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

struct TestClock(Arc<AtomicI64>);

impl Clock for TestClock {
    fn now(&self) -> UnixSeconds {
        self.0.load(Ordering::SeqCst)
    }
}

/// 10 March 2025, 12:00 UTC: the demo programme's day (UTC+3) began at 21:00 UTC the day before.
const NOON: UnixSeconds = 1_741_608_000;

fn scan(code: &str) -> ScanEvent {
    ScanEvent {
        source: "test".to_string(),
        kind: ScanKind::Manual,
        payload: code.to_string(),
        symbology: None,
        received_at_ms: 0,
    }
}

fn check(subtotal: i64) -> CheckInfo {
    CheckInfo {
        subtotal: Kopecks(subtotal),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    }
}

fn open_embedded(path: &Path, clock: &Arc<AtomicI64>) -> EmbeddedBackend {
    let mut backend = EmbeddedBackend::open(path.to_path_buf(), Box::new(TestClock(Arc::clone(clock)))).unwrap();
    backend.ledger().seed_demo(clock.load(Ordering::SeqCst)).unwrap();
    backend
}

#[test]
fn a_hold_left_by_a_stopped_till_is_listed_and_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("till.sqlite");
    let clock = Arc::new(AtomicI64::new(NOON));
    let (anna, before) = {
        let mut backend = open_embedded(&path, &clock);
        assert!(
            backend.loose_ends().unwrap().is_empty(),
            "a fresh till has nothing in doubt"
        );
        let anna = backend.identify(&scan("100001")).unwrap().card.guest_id;
        let before = backend.guest_card(anna).unwrap().balance;
        backend
            .hold("till-1-7", anna, Kopecks(rub(100)), &check(rub(1_070)))
            .unwrap();
        // The till stops here: no commit, no void. Every write is its own transaction, so the
        // file holds exactly what a killed process leaves.
        (anna, before)
    };

    // Started again a minute later, well inside the hold's time.
    clock.store(NOON + 60, Ordering::SeqCst);
    let mut backend = open_embedded(&path, &clock);
    let ends = backend.loose_ends().unwrap();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].kind, LooseEndKind::OpenHold);
    assert_eq!(ends[0].amount, Kopecks(rub(100)));
    assert!(!ends[0].needs_server, "the till's own file needs no server");
    let held = backend.guest_card(anna).unwrap();
    assert_eq!(held.available, held.balance - Kopecks(rub(100)), "the hold is still on");

    backend.settle_loose_end("till-2-1", &ends[0]).unwrap();
    assert!(backend.loose_ends().unwrap().is_empty());
    // Released with an op id: the same release again changes nothing.
    backend.settle_loose_end("till-2-1", &ends[0]).unwrap();
    let after = backend.guest_card(anna).unwrap();
    assert_eq!(after.balance, before, "nothing was debited");
    assert_eq!(after.available, before, "the guest can spend every bonus again");
    let ledger = backend.ledger();
    assert!(ledger.open_holds(None).unwrap().is_empty());
    ledger.check_invariants().unwrap();
}

#[test]
fn the_shift_report_counts_the_local_day_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(NOON));
    let mut backend = open_embedded(&dir.path().join("till.sqlite"), &clock);
    let seeded = backend.shift_report().unwrap();
    assert_eq!(
        (seeded.checks, seeded.returns, seeded.gifts_redeemed),
        (0, 0, 0),
        "{seeded:?}"
    );
    assert_eq!(
        seeded.new_guests, 5,
        "the five demo guests were made today; Анна's second account is not a guest: {seeded:?}"
    );
    assert!(seeded.since <= NOON && NOON - seeded.since < 86_400);
    assert_eq!(
        (seeded.since + seeded.utc_offset_minutes * 60).rem_euclid(86_400),
        0,
        "the shift starts at the programme's local midnight"
    );

    let anna = backend.identify(&scan("100001")).unwrap().card.guest_id;
    let hold = backend
        .hold("op-hold", anna, Kopecks(rub(100)), &check(rub(1_070)))
        .unwrap();
    let paid = backend
        .commit_payment(
            "op-pay",
            anna,
            Some(hold.hold_id),
            Kopecks(rub(100)),
            &check(rub(1_070)),
        )
        .unwrap();
    let kept = backend
        .commit_payment("op-keep", anna, None, Kopecks::ZERO, &check(rub(500)))
        .unwrap();
    let returned = backend
        .refund("op-ret", "op-keep", &ReturnPart::Amount(Kopecks(rub(200))))
        .unwrap();

    let report = backend.shift_report().unwrap();
    assert_eq!(report.checks, 2);
    assert_eq!(report.spent, paid.spent);
    assert_eq!(report.accrued, paid.accrued + kept.accrued);
    assert_eq!(report.returns, 1);
    assert_eq!(report.returned, returned.amount);
    assert_eq!(report.new_guests, seeded.new_guests);
    assert_eq!(report.until, NOON);

    // The next local day is a new shift: nothing of yesterday in it.
    clock.store(NOON + 86_400, Ordering::SeqCst);
    let next = backend.shift_report().unwrap();
    assert_eq!(
        (next.checks, next.spent, next.accrued, next.returns, next.new_guests),
        (0, Kopecks::ZERO, Kopecks::ZERO, 0, 0),
        "{next:?}"
    );
    backend.ledger().check_invariants().unwrap();
}

struct ServerTill {
    proxy: Proxy,
    settings: ServerSettings,
    journal: std::path::PathBuf,
}

impl ServerTill {
    fn new(s: &Server) -> ServerTill {
        let proxy = Proxy::start(s.handle.addr);
        let settings = ServerSettings {
            url: proxy.url(),
            token: s.token.clone(),
            timeout_secs: 5,
            ..ServerSettings::default()
        };
        ServerTill {
            journal: s.dir.path().join("till").join("journal.sqlite"),
            proxy,
            settings,
        }
    }

    fn open(&self, s: &Server) -> ServerBackend {
        ServerBackend::open(&self.settings, &self.journal, Box::new(TestClock(Arc::clone(&s.clock)))).unwrap()
    }
}

fn meet_anna(backend: &mut ServerBackend) -> GuestId {
    let found = backend
        .identify(&ScanEvent {
            kind: ScanKind::Barcode,
            ..scan(ANNA_CARD)
        })
        .unwrap();
    backend.calculate(found.card.guest_id, &check(rub(1_000))).unwrap();
    found.card.guest_id
}

#[test]
fn a_payment_queued_offline_is_listed_and_sent_when_the_server_answers() {
    let s = Server::start(Db::Sqlite).unwrap();
    let till = ServerTill::new(&s);
    let mut backend = till.open(&s);
    let anna = meet_anna(&mut backend);
    let before = s.balance(anna).0;
    assert!(backend.loose_ends().unwrap().is_empty());

    till.proxy.set(Fault::Down);
    backend
        .commit_payment("till-1-5", anna, None, Kopecks::ZERO, &check(rub(1_000)))
        .unwrap();
    assert!(backend.is_provisional("till-1-5"));
    let ends = backend.loose_ends().unwrap();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].kind, LooseEndKind::QueuedPayment);
    assert_eq!(ends[0].op_id, "till-1-5");
    assert_eq!(ends[0].amount, Kopecks(rub(1_000)));
    assert!(ends[0].needs_server);

    // «Отправить сейчас» while the server is still away: refused, and nothing is lost.
    let refused = backend.settle_loose_end("till-1-6", &ends[0]).unwrap_err();
    assert!(
        matches!(refused, LoyaltyError::Unavailable(_) | LoyaltyError::ServerAway(_)),
        "{refused:?}"
    );
    assert_eq!(backend.loose_ends().unwrap(), ends);
    assert_eq!(s.balance(anna).0, before, "nothing reached the server yet");

    till.proxy.set(Fault::Pass);
    backend.settle_loose_end("till-1-7", &ends[0]).unwrap();
    assert!(backend.loose_ends().unwrap().is_empty());
    assert_eq!(backend.journal().count_pending().unwrap(), 0);
    // 5 % of the check accrued, once.
    assert_eq!(s.balance(anna).0, before + rub(50));
}

#[test]
fn a_server_hold_left_by_a_stopped_till_is_listed_and_released() {
    let s = Server::start(Db::Sqlite).unwrap();
    let till = ServerTill::new(&s);
    let anna = {
        let mut backend = till.open(&s);
        let anna = meet_anna(&mut backend);
        backend
            .hold("till-1-3", anna, Kopecks(rub(100)), &check(rub(1_000)))
            .unwrap();
        anna
        // Stopped between hold and commit.
    };
    let (before, available) = s.balance(anna);
    assert_eq!(available, before - rub(100), "the hold is on the server");

    // Started again while the server is away: the hold it left is listed, needing the server.
    till.proxy.set(Fault::Down);
    let mut backend = till.open(&s);
    let ends = backend.loose_ends().unwrap();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].kind, LooseEndKind::OpenHold);
    assert_eq!(ends[0].amount, Kopecks(rub(100)));
    assert!(ends[0].needs_server);

    till.proxy.set(Fault::Pass);
    backend.settle_loose_end("till-2-1", &ends[0]).unwrap();
    assert!(backend.loose_ends().unwrap().is_empty(), "{:?}", backend.loose_ends());
    assert_eq!(s.balance(anna).0, before, "a released hold debits nothing");
    let (balance, available) = s.balance(anna);
    assert_eq!(available, balance, "no bonuses stay held on the server");
}

#[test]
fn a_return_whose_answer_was_lost_is_listed_and_sent_once() {
    let s = Server::start(Db::Sqlite).unwrap();
    let till = ServerTill::new(&s);
    let mut backend = till.open(&s);
    let anna = meet_anna(&mut backend);
    backend
        .commit_payment("till-1-1", anna, None, Kopecks::ZERO, &check(rub(1_000)))
        .unwrap();
    let paid = s.balance(anna).0;

    // The return reaches the server; its answer does not reach the till.
    till.proxy.set(Fault::LoseAnswer);
    assert!(
        backend
            .refund("till-1-2", "till-1-1", &ReturnPart::Amount(Kopecks(rub(400))))
            .is_err()
    );
    till.proxy.set(Fault::Down);
    let ends = backend.loose_ends().unwrap();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].kind, LooseEndKind::UnsentReturn);
    assert_eq!(ends[0].op_id, "till-1-2");
    assert_eq!((ends[0].amount, ends[0].units), (Kopecks(rub(400)), 0));
    assert!(ends[0].needs_server);

    till.proxy.set(Fault::Pass);
    backend.settle_loose_end("till-1-3", &ends[0]).unwrap();
    assert!(backend.loose_ends().unwrap().is_empty());
    // 5 % of the 400 returned is taken back, once, though the return went out twice.
    assert_eq!(s.balance(anna).0, paid - rub(20));
}

/// A return by lines whose answer was lost is listed with the units it gives back (its amount is
/// the server's to work out), and sent once.
#[test]
fn a_lost_return_by_lines_is_listed_with_its_units() {
    let s = Server::start(Db::Sqlite).unwrap();
    let till = ServerTill::new(&s);
    let mut backend = till.open(&s);
    let anna = meet_anna(&mut backend);
    let line = |name: &str, quantity, price| CheckLine {
        name: name.to_string(),
        quantity,
        price: Kopecks(rub(price)),
        returned: 0,
    };
    let lined = CheckInfo {
        lines: vec![line("Капучино", 2, 250), line("Круассан", 1, 500)],
        ..check(rub(1_000))
    };
    backend
        .commit_payment("till-1-1", anna, None, Kopecks::ZERO, &lined)
        .unwrap();
    let paid = s.balance(anna).0;

    till.proxy.set(Fault::LoseAnswer);
    let cappuccinos = ReturnPart::Lines(vec![LineReturn { line: 0, quantity: 2 }]);
    assert!(backend.refund("till-1-2", "till-1-1", &cappuccinos).is_err());
    till.proxy.set(Fault::Down);
    let ends = backend.loose_ends().unwrap();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].kind, LooseEndKind::UnsentReturn);
    assert_eq!((ends[0].amount, ends[0].units), (Kopecks::ZERO, 2));

    till.proxy.set(Fault::Pass);
    backend.settle_loose_end("till-1-3", &ends[0]).unwrap();
    assert!(backend.loose_ends().unwrap().is_empty());
    // 5 % of the two cappuccinos' 500 is taken back, once.
    assert_eq!(s.balance(anna).0, paid - rub(25));
}

/// The child side of [`a_till_process_killed_between_hold_and_commit`]: holds, says so, and
/// waits to be killed. Does nothing when run on its own.
#[test]
fn child_holds_and_waits_to_be_killed() {
    let Some(path) = std::env::var_os("SHIFT_TEST_KILLED_TILL_DB") else {
        return;
    };
    let clock = Arc::new(AtomicI64::new(NOON));
    let mut backend = open_embedded(Path::new(&path), &clock);
    let anna = backend.identify(&scan("100001")).unwrap().card.guest_id;
    backend
        .hold("killed-till-1", anna, Kopecks(rub(150)), &check(rub(1_070)))
        .unwrap();
    println!("HELD");
    use std::io::Write as _;
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(60));
    panic!("the parent was to kill this process");
}

#[test]
fn a_till_process_killed_between_hold_and_commit() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("till.sqlite");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_and_waits_to_be_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHIFT_TEST_KILLED_TILL_DB", &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let held = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("HELD"));
    assert!(held, "the child held bonuses");
    child.kill().unwrap(); // SIGKILL: nothing runs after the hold.
    child.wait().unwrap();

    let clock = Arc::new(AtomicI64::new(NOON + 60));
    let mut backend = open_embedded(&path, &clock);
    let anna = backend.identify(&scan("100001")).unwrap().card;
    assert_eq!(
        anna.available,
        anna.balance - Kopecks(rub(150)),
        "the killed till's hold is on"
    );
    let ends = backend.loose_ends().unwrap();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(
        (ends[0].kind, ends[0].amount),
        (LooseEndKind::OpenHold, Kopecks(rub(150)))
    );
    backend.settle_loose_end("till-2-1", &ends[0]).unwrap();
    assert!(backend.loose_ends().unwrap().is_empty());
    let after = backend.guest_card(anna.guest_id).unwrap();
    assert_eq!((after.balance, after.available), (anna.balance, anna.balance));
    backend.ledger().check_invariants().unwrap();
}
