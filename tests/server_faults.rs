//! Faults between a till and the server, through a proxy that loses answers, resets connections
//! mid-request or is down: the till's journal resolves what is in doubt, and afterwards no
//! payment is lost or doubled, no hold is left open, and the ledger's invariants hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::backend::{BackendKind, Clock, LoyaltyBackend};
use loyalty_till::domain::{CheckInfo, LoyaltyError, ScanEvent, ScanKind, UnixSeconds};
use loyalty_till::money::Kopecks;
use loyalty_till::remote::journal::OpState;
use loyalty_till::remote::{ServerBackend, ServerSettings};
use server_support::proxy::{Fault, Proxy};
use server_support::{ANNA_CARD, Server, rub};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

on_both_stores!(
    lost_commit_answer_then_cancel_is_refunded_in_full,
    lost_commit_answer_then_till_restart_finishes_it_once,
    reset_mid_hold_leaves_nothing_held,
    lost_hold_answer_is_found_and_voided,
    offline_accruals_are_queued_and_sent_exactly_once,
    holds_left_by_a_crashed_till_are_voided_at_start_up,
    holds_left_by_a_crashed_till_are_voided_once_the_server_answers,
    offline_spending_is_capped_and_sent_later_once,
);

struct TestClock(Arc<AtomicI64>);

impl Clock for TestClock {
    fn now(&self) -> UnixSeconds {
        self.0.load(Ordering::SeqCst)
    }
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
            ..ServerSettings::default()
        };
        Till {
            journal: s.dir.path().join("till").join("journal.sqlite"),
            proxy,
            settings,
        }
    }

    fn open(&self, s: &Server) -> ServerBackend {
        ServerBackend::open(&self.settings, &self.journal, Box::new(TestClock(Arc::clone(&s.clock)))).unwrap()
    }
}

fn check(subtotal: i64) -> CheckInfo {
    CheckInfo {
        subtotal: Kopecks(subtotal),
        gift_codes: Vec::new(),
    }
}

fn identify(backend: &mut ServerBackend) -> i64 {
    backend
        .identify(&ScanEvent {
            source: "test".to_string(),
            kind: ScanKind::Barcode,
            payload: ANNA_CARD.to_string(),
            symbology: None,
            received_at_ms: 0,
        })
        .unwrap()
        .card
        .guest_id
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, LoyaltyError>) {
    assert!(
        matches!(result, Err(LoyaltyError::Unavailable(_))),
        "expected the server to be unreachable, got {result:?}"
    );
}

fn open_holds(s: &Server, guest: i64) -> usize {
    s.get(&format!("/api/v1/guests/{guest}/holds"))
        .ok()
        .as_array()
        .unwrap()
        .len()
}

fn history_kinds(s: &Server, guest: i64) -> Vec<String> {
    s.get(&format!("/api/v1/guests/{guest}/history"))
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

fn lost_commit_answer_then_cancel_is_refunded_in_full(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    let hold = backend.hold("h1", anna, Kopecks(rub(100)), &check(rub(500))).unwrap();
    till.proxy.set(Fault::LoseAnswer);
    unavailable(backend.commit_payment("c1", anna, Some(hold.hold_id), Kopecks(rub(100)), &check(rub(500))));
    assert!(till.proxy.lost.load(Ordering::SeqCst) >= 1);
    // The server did it: 1 000 - 100 + 5 % of 400.
    assert_eq!(s.balance(anna), (rub(920), rub(920)));
    // The cashier was told it failed, so the workflow releases the hold; still no answers.
    unavailable(backend.void_hold("v1", hold.hold_id));
    till.proxy.set(Fault::Pass);
    // The next call resolves: the void finds the hold committed, and the commit is refunded.
    let card = backend.guest_card(anna).unwrap();
    assert_eq!(
        (card.balance, card.available),
        (Kopecks(rub(1_000)), Kopecks(rub(1_000)))
    );
    assert_eq!(
        history_kinds(&s, anna),
        ["refund_accrual", "refund_spend", "accrual", "spend", "manual_credit"]
    );
    let journal = backend.journal();
    assert_eq!(journal.get("c1").unwrap().unwrap().state, OpState::Cancelled);
    assert_eq!(journal.get("v1").unwrap().unwrap().state, OpState::Done);
    assert_eq!(journal.count_pending().unwrap(), 0);
    assert_eq!(open_holds(&s, anna), 0);
}

fn lost_commit_answer_then_till_restart_finishes_it_once(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    let hold = backend.hold("h1", anna, Kopecks(rub(100)), &check(rub(500))).unwrap();
    till.proxy.set(Fault::LoseAnswer);
    unavailable(backend.commit_payment("c1", anna, Some(hold.hold_id), Kopecks(rub(100)), &check(rub(500))));
    // The till dies before anything else.
    drop(backend);
    till.proxy.set(Fault::Pass);
    let backend = till.open(&s);
    let commit = backend.journal().get("c1").unwrap().unwrap();
    assert_eq!(commit.state, OpState::Done, "the commit in doubt was finished");
    let receipt: serde_json::Value = serde_json::from_str(commit.response.as_deref().unwrap()).unwrap();
    assert_eq!(receipt["balance_after"], rub(920));
    assert_eq!(s.balance(anna), (rub(920), rub(920)), "paid once");
    assert_eq!(history_kinds(&s, anna), ["accrual", "spend", "manual_credit"]);
    assert_eq!(open_holds(&s, anna), 0);
}

fn reset_mid_hold_leaves_nothing_held(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    till.proxy.set(Fault::ResetMidRequest);
    unavailable(backend.hold("h1", anna, Kopecks(rub(100)), &check(rub(500))));
    till.proxy.set(Fault::Pass);
    // Resolving sends the hold again (the server never saw it), learns it and releases it.
    backend.guest_card(anna).unwrap();
    let entry = backend.journal().get("h1").unwrap().unwrap();
    assert_eq!(entry.state, OpState::Done);
    assert_eq!(open_holds(&s, anna), 0);
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)));
    // The cashier's next attempt works as usual.
    let hold = backend.hold("h2", anna, Kopecks(rub(100)), &check(rub(500))).unwrap();
    backend
        .commit_payment("c2", anna, Some(hold.hold_id), Kopecks(rub(50)), &check(rub(500)))
        .unwrap();
    assert_eq!(s.balance(anna), (rub(972) + 50, rub(972) + 50));
}

fn lost_hold_answer_is_found_and_voided(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    till.proxy.set(Fault::LoseAnswer);
    unavailable(backend.hold("h1", anna, Kopecks(rub(100)), &check(rub(500))));
    assert_eq!(open_holds(&s, anna), 1, "the server granted it");
    till.proxy.set(Fault::Pass);
    backend.guest_card(anna).unwrap();
    assert_eq!(open_holds(&s, anna), 0, "found and released");
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)));
    assert_eq!(backend.journal().count_pending().unwrap(), 0);
}

fn offline_accruals_are_queued_and_sent_exactly_once(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    let quote = backend.calculate(anna, &check(rub(600))).unwrap();
    till.proxy.set(Fault::Down);
    // Spending offline is off.
    unavailable(backend.hold("h1", anna, Kopecks(rub(100)), &check(rub(600))));
    unavailable(backend.guest_card(anna));
    assert!(backend.is_offline());
    assert!(
        matches!(backend.kind(), BackendKind::Server { online: false, .. }),
        "the status line says offline"
    );
    for visit in 0..3 {
        let receipt = backend
            .commit_payment(&format!("keep-{visit}"), anna, None, Kopecks::ZERO, &check(rub(600)))
            .unwrap();
        assert_eq!(
            receipt.accrued,
            quote.accrual_for(Kopecks::ZERO),
            "a provisional receipt"
        );
    }
    assert_eq!(
        s.balance(anna),
        (rub(1_000), rub(1_000)),
        "nothing reached the server yet"
    );
    drop(backend);
    // Back online, after a till restart too: each accrual once.
    till.proxy.set(Fault::Pass);
    let mut backend = till.open(&s);
    assert!(matches!(backend.kind(), BackendKind::Server { online: true, .. }));
    assert_eq!(backend.journal().count_pending().unwrap(), 0);
    assert_eq!(s.balance(anna), (rub(1_090), rub(1_090)));
    backend.resolve(true).unwrap();
    drop(backend);
    let _again = till.open(&s);
    assert_eq!(s.balance(anna), (rub(1_090), rub(1_090)), "sent exactly once");
    assert_eq!(history_kinds(&s, anna).iter().filter(|k| *k == "accrual").count(), 3);
    // The hold refused offline was never sent... or, if it was, it was voided.
    assert_eq!(open_holds(&s, anna), 0);
}

fn holds_left_by_a_crashed_till_are_voided_at_start_up(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    backend.hold("h1", anna, Kopecks(rub(100)), &check(rub(500))).unwrap();
    backend.hold("h2", anna, Kopecks(rub(50)), &check(rub(500))).unwrap();
    assert_eq!(s.balance(anna), (rub(1_000), rub(850)));
    // The till dies mid-visit (no void sent) and starts again.
    drop(backend);
    let backend = till.open(&s);
    assert_eq!(open_holds(&s, anna), 0);
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)));
    assert_eq!(backend.journal().count_pending().unwrap(), 0);
}

fn holds_left_by_a_crashed_till_are_voided_once_the_server_answers(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    backend.hold("h1", anna, Kopecks(rub(100)), &check(rub(500))).unwrap();
    drop(backend);
    // The till starts again while the server is away.
    till.proxy.set(Fault::Down);
    let mut backend = till.open(&s);
    assert!(backend.is_offline());
    assert_eq!(open_holds(&s, anna), 1);
    till.proxy.set(Fault::Pass);
    let card = backend.guest_card(anna).unwrap();
    assert_eq!(card.available, Kopecks(rub(1_000)), "released before the first answer");
    assert_eq!(open_holds(&s, anna), 0);
}

fn offline_spending_is_capped_and_sent_later_once(s: Server) {
    let mut till = Till::new(&s);
    till.settings.offline_spend_per_guest = rub(200);
    till.settings.offline_spend_per_shift = rub(1_000);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    backend.calculate(anna, &check(rub(1_000))).unwrap();
    till.proxy.set(Fault::Down);
    // The till's own quote: the per-guest cap binds (half of the check would be 500).
    let quote = backend.calculate(anna, &check(rub(1_000))).unwrap();
    assert_eq!(quote.max_spend, Kopecks(rub(200)));
    let hold = backend.hold("h1", anna, Kopecks(rub(150)), &check(rub(1_000))).unwrap();
    assert!(hold.hold_id < 0, "a hold granted by the till");
    // What is left under the cap: 50.
    assert_eq!(
        backend
            .hold("h2", anna, Kopecks(rub(100),), &check(rub(1_000)))
            .unwrap_err(),
        LoyaltyError::OverMaximum {
            requested: Kopecks(rub(100)),
            max: Kopecks(rub(50))
        }
    );
    let receipt = backend
        .commit_payment("c1", anna, Some(hold.hold_id), Kopecks(rub(150)), &check(rub(1_000)))
        .unwrap();
    assert_eq!(
        (receipt.spent, receipt.accrued),
        (Kopecks(rub(150)), Kopecks(rub(4250) / 100))
    );
    // The cap counts the journalled payment: 50 left.
    assert_eq!(
        backend.calculate(anna, &check(rub(1_000))).unwrap().max_spend,
        Kopecks(rub(50))
    );
    let small = backend.hold("h3", anna, Kopecks(rub(30)), &check(rub(1_000))).unwrap();
    backend.void_hold("v3", small.hold_id).unwrap();
    assert_eq!(
        s.balance(anna),
        (rub(1_000), rub(1_000)),
        "nothing reached the server yet"
    );
    drop(backend);
    till.proxy.set(Fault::Pass);
    let backend = till.open(&s);
    assert_eq!(backend.journal().count_pending().unwrap(), 0);
    // 1 000 - 150 + 5 % of 850.
    assert_eq!(
        s.balance(anna),
        (rub(1_000) - rub(150) + 4_250, rub(1_000) - rub(150) + 4_250)
    );
    drop(backend);
    let _again = till.open(&s);
    assert_eq!(s.balance(anna).0, rub(1_000) - rub(150) + 4_250, "sent exactly once");
    assert_eq!(open_holds(&s, anna), 0);
}
