//! The owner's caps on bonuses spent while the server is away (`[server]` in config.toml):
//! `offline_spend_per_shift` reached across several guests, holds not yet paid counted too;
//! the shift window (`offline_shift_hours`) rolling over on the till's clock; and a till
//! restarted in the middle of a shift still counting what the shift spent before. Every
//! expected figure follows from the caps and the programme (half of a check, 5 % accrual).
//! The till's caps do not depend on the server's store: SQLite only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::backend::{Clock, LoyaltyBackend};
use loyalty_till::domain::{CheckInfo, GuestId, IdentifierKind, LoyaltyError, ScanEvent, ScanKind, UnixSeconds};
use loyalty_till::money::Kopecks;
use loyalty_till::remote::{ServerBackend, ServerSettings};
use server_support::proxy::{Fault, Proxy};
use server_support::{ANNA_CARD, BORIS_CARD, Db, ORG, START, Server, rub};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const VERA_CARD: &str = "2000000000039";
/// The owner's caps for these tests.
const PER_GUEST: i64 = 30_000; // 300 ₽
const PER_SHIFT: i64 = 50_000; // 500 ₽
const SHIFT_HOURS: i64 = 8;
/// A check of 1 000 ₽: half of it (500 ₽) may be paid with bonuses, above both caps.
const SUBTOTAL: i64 = 100_000; // 1 000 ₽

struct TillClock(Arc<AtomicI64>);

impl Clock for TillClock {
    fn now(&self) -> UnixSeconds {
        self.0.load(Ordering::SeqCst)
    }
}

struct Guests {
    anna: GuestId,
    boris: GuestId,
    vera: GuestId,
}

/// The seeded server with Boris given 1 000 ₽ and a third guest, Vera, with 1 000 ₽: three
/// guests who could each spend more than the shift's cap.
fn server() -> (Server, Guests) {
    let s = Server::start(Db::Sqlite).unwrap();
    let store = Arc::clone(&s.handle.store);
    let (anna, boris, group) = (s.ids.anna, s.ids.boris, s.ids.group);
    let vera = s.handle.block_on(async move {
        store
            .credit("seed-boris", boris, Kopecks(rub(1_000)), START)
            .await
            .unwrap();
        let vera = store.add_guest(ORG, "Vera", None, group, START).await.unwrap();
        store
            .add_identifier(vera, IdentifierKind::CardBarcode, VERA_CARD)
            .await
            .unwrap();
        store
            .credit("seed-vera", vera, Kopecks(rub(1_000)), START)
            .await
            .unwrap();
        vera
    });
    (s, Guests { anna, boris, vera })
}

struct Till {
    proxy: Proxy,
    journal: PathBuf,
    settings: ServerSettings,
}

impl Till {
    fn new(s: &Server) -> Till {
        let proxy = Proxy::start(s.handle.addr);
        let settings = ServerSettings {
            url: proxy.url(),
            token: s.token.clone(),
            timeout_secs: 5,
            offline_spend_per_guest: PER_GUEST,
            offline_spend_per_shift: PER_SHIFT,
            offline_shift_hours: SHIFT_HOURS,
            ..ServerSettings::default()
        };
        Till {
            journal: s.dir.path().join("till").join("journal.sqlite"),
            proxy,
            settings,
        }
    }

    fn open(&self, s: &Server) -> ServerBackend {
        ServerBackend::open(&self.settings, &self.journal, Box::new(TillClock(Arc::clone(&s.clock)))).unwrap()
    }
}

fn check() -> CheckInfo {
    CheckInfo {
        subtotal: Kopecks(SUBTOTAL),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    }
}

/// Online: the guests' cards and the programme's rules seen, as a till sees them in a shift.
fn meet_guests(backend: &mut ServerBackend) {
    for card in [ANNA_CARD, BORIS_CARD, VERA_CARD] {
        let scan = ScanEvent {
            source: "test".to_string(),
            kind: ScanKind::Barcode,
            payload: card.to_string(),
            symbology: None,
            received_at_ms: 0,
        };
        let guest = backend.identify(&scan).unwrap().card.guest_id;
        backend.calculate(guest, &check()).unwrap();
    }
}

/// The most the till lets this guest spend now, from its own quote (the server is away).
fn offline_max(backend: &mut ServerBackend, guest: GuestId) -> i64 {
    backend.calculate(guest, &check()).unwrap().max_spend.0
}

/// A check paid offline with `amount` of bonuses: a hold the till grants itself, then the payment.
fn spend(backend: &mut ServerBackend, op: &str, guest: GuestId, amount: i64) {
    let hold = backend
        .hold(&format!("{op}-hold"), guest, Kopecks(amount), &check())
        .unwrap();
    assert!(hold.hold_id < 0, "a hold granted by the till itself");
    let receipt = backend
        .commit_payment(
            &format!("{op}-pay"),
            guest,
            Some(hold.hold_id),
            Kopecks(amount),
            &check(),
        )
        .unwrap();
    assert_eq!(receipt.spent, Kopecks(amount));
}

fn refused_over(backend: &mut ServerBackend, op: &str, guest: GuestId, amount: i64, max: i64) {
    assert_eq!(
        backend.hold(op, guest, Kopecks(amount), &check()).unwrap_err(),
        LoyaltyError::OverMaximum {
            requested: Kopecks(amount),
            max: Kopecks(max)
        }
    );
}

/// What a guest has after paying a 1 000 ₽ check with `spent` of bonuses: 5 % accrues on the rest.
fn after_payment(before: i64, spent: i64) -> i64 {
    before - spent + (SUBTOTAL - spent) * 5 / 100
}

#[test]
fn the_shift_cap_bites_across_several_guests() {
    let (s, g) = server();
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    meet_guests(&mut backend);
    till.proxy.set(Fault::Down);

    // Anna: her own cap (300) is the smallest limit.
    assert_eq!(offline_max(&mut backend, g.anna), PER_GUEST);
    spend(&mut backend, "anna", g.anna, PER_GUEST);
    assert_eq!(offline_max(&mut backend, g.anna), 0);
    // Boris: 200 of the shift's 500 are left, under his own 300.
    assert_eq!(offline_max(&mut backend, g.boris), PER_SHIFT - PER_GUEST);
    refused_over(&mut backend, "boris-too-much", g.boris, rub(250), PER_SHIFT - PER_GUEST);
    // A hold not yet paid counts against the shift: Vera gets nothing while Boris's is open...
    let boris_hold = backend
        .hold("boris-hold", g.boris, Kopecks(rub(200)), &check())
        .unwrap();
    assert_eq!(offline_max(&mut backend, g.vera), 0);
    refused_over(&mut backend, "vera-1", g.vera, rub(1), 0);
    // ...and 200 once it is released.
    backend.void_hold("boris-void", boris_hold.hold_id).unwrap();
    assert_eq!(offline_max(&mut backend, g.vera), PER_SHIFT - PER_GUEST);
    spend(&mut backend, "vera", g.vera, rub(200));
    // The shift's 500 are spent: nobody gets more, whatever their own cap leaves.
    for guest in [g.anna, g.boris, g.vera] {
        assert_eq!(offline_max(&mut backend, guest), 0, "guest {guest}");
        refused_over(&mut backend, &format!("late-{guest}"), guest, rub(1), 0);
    }
    assert_eq!(s.balance(g.anna).0, rub(1_000), "nothing reached the server yet");
    drop(backend);

    // Back online: the two payments are debited once, as the till took them.
    till.proxy.set(Fault::Pass);
    let backend = till.open(&s);
    assert_eq!(backend.journal().count_pending().unwrap(), 0);
    assert_eq!(s.balance(g.anna).0, after_payment(rub(1_000), PER_GUEST));
    assert_eq!(s.balance(g.boris).0, rub(1_000));
    assert_eq!(s.balance(g.vera).0, after_payment(rub(1_000), rub(200)));
}

#[test]
fn the_shift_window_rolls_over_on_the_tills_clock() {
    let (s, g) = server();
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    meet_guests(&mut backend);
    till.proxy.set(Fault::Down);
    let shift_start = s.clock.load(Ordering::SeqCst);
    spend(&mut backend, "anna", g.anna, PER_GUEST);
    spend(&mut backend, "boris", g.boris, PER_SHIFT - PER_GUEST);
    assert_eq!(offline_max(&mut backend, g.vera), 0);

    // Still within the 8 hours (the spends count up to and including the shift's last second).
    s.clock.store(shift_start + SHIFT_HOURS * 3_600, Ordering::SeqCst);
    assert_eq!(offline_max(&mut backend, g.vera), 0);
    assert_eq!(offline_max(&mut backend, g.anna), 0);
    // One second later the window has moved past them: each guest's own cap again.
    s.clock.store(shift_start + SHIFT_HOURS * 3_600 + 1, Ordering::SeqCst);
    assert_eq!(offline_max(&mut backend, g.vera), PER_GUEST);
    assert_eq!(offline_max(&mut backend, g.anna), PER_GUEST);
    spend(&mut backend, "vera", g.vera, PER_GUEST);
    assert_eq!(offline_max(&mut backend, g.boris), PER_SHIFT - PER_GUEST);
}

#[test]
fn a_restart_in_the_middle_of_a_shift_keeps_the_cap() {
    let (s, g) = server();
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    meet_guests(&mut backend);
    till.proxy.set(Fault::Down);
    let shift_start = s.clock.load(Ordering::SeqCst);
    spend(&mut backend, "anna", g.anna, PER_GUEST);
    spend(&mut backend, "boris", g.boris, PER_SHIFT - PER_GUEST);
    drop(backend);

    // The till starts again an hour later; the server answers for a while (the payments are
    // sent), then is away again within the same shift.
    s.advance(3_600);
    till.proxy.set(Fault::Pass);
    let mut backend = till.open(&s);
    assert_eq!(backend.journal().count_pending().unwrap(), 0);
    meet_guests(&mut backend);
    till.proxy.set(Fault::Down);
    assert_eq!(
        offline_max(&mut backend, g.vera),
        0,
        "the shift's 500 were spent before the restart"
    );
    refused_over(&mut backend, "vera-1", g.vera, rub(1), 0);
    assert_eq!(offline_max(&mut backend, g.anna), 0);

    // Restarted again while the server is away, later in the same shift: still nothing.
    drop(backend);
    s.advance(3_600);
    let mut backend = till.open(&s);
    assert!(backend.is_offline());
    refused_over(&mut backend, "vera-2", g.vera, rub(1), 0);
    drop(backend);

    // The next shift: the caps start again.
    s.clock.store(shift_start + SHIFT_HOURS * 3_600 + 1, Ordering::SeqCst);
    till.proxy.set(Fault::Pass);
    let mut backend = till.open(&s);
    meet_guests(&mut backend);
    till.proxy.set(Fault::Down);
    assert_eq!(offline_max(&mut backend, g.vera), PER_GUEST);
    assert_eq!(
        s.balance(g.boris).0,
        after_payment(rub(1_000), PER_SHIFT - PER_GUEST),
        "Boris's offline payment reached the server once"
    );
}
