//! Faults between a till and the server, through a proxy that loses answers, resets connections
//! mid-request or is down: the till's journal resolves what is in doubt, and afterwards no
//! payment is lost or doubled, no hold is left open, and the ledger's invariants hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::backend::{BackendKind, Clock, LoyaltyBackend, ServerLink};
use loyalty_till::domain::{AwayReason, CheckInfo, IdentifierKind, LoyaltyError, ScanEvent, ScanKind, UnixSeconds};
use loyalty_till::ledger::NewGroup;
use loyalty_till::money::Kopecks;
use loyalty_till::remote::journal::OpState;
use loyalty_till::remote::{ServerBackend, ServerSettings};
use server_support::proxy::{Fault, Proxy};
use server_support::{ANNA_CARD, BORIS_CARD, ORG, START, Server, rub};
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
    server_down_at_start_up_cached_guest_kept_bonuses_sent_once_at_the_check_time,
    a_refused_token_is_told_apart_and_nothing_queued_is_lost,
    an_outage_across_midnight_books_each_check_on_its_own_day,
    a_check_older_than_the_bound_is_booked_now_and_the_server_says_so,
    the_till_killed_while_the_queue_drains_sends_each_once,
    enrolment_needs_the_server_and_a_lost_answer_makes_one_guest,
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
        lines: Vec::new(),
    }
}

fn card_scan(code: &str) -> ScanEvent {
    ScanEvent {
        source: "test".to_string(),
        kind: ScanKind::Barcode,
        payload: code.to_string(),
        symbology: None,
        received_at_ms: 0,
    }
}

fn identify(backend: &mut ServerBackend) -> i64 {
    backend.identify(&card_scan(ANNA_CARD)).unwrap().card.guest_id
}

/// The guest's history on the server, oldest first: (kind, amount, at).
fn history(s: &Server, guest: i64) -> Vec<(String, i64, i64)> {
    let mut rows: Vec<_> = s
        .get(&format!("/api/v1/guests/{guest}/history"))
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["amount"].as_i64().unwrap(),
                e["at"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.reverse();
    rows
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
    assert!(!backend.kind().is_online(), "the status line says offline");
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
    assert!(backend.kind().is_online());
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

fn server_down_at_start_up_cached_guest_kept_bonuses_sent_once_at_the_check_time(s: Server) {
    let till = Till::new(&s);
    // An earlier run identified Anna and saw the programme's rules.
    let anna = {
        let mut backend = till.open(&s);
        let anna = identify(&mut backend);
        backend.calculate(anna, &check(rub(600))).unwrap();
        anna
    };
    till.proxy.set(Fault::Down);
    let mut backend = till.open(&s);
    assert_eq!(
        backend.link(),
        ServerLink::Offline { since: START },
        "a till started while the server is down knows it at once"
    );
    // A recent guest is found in the till's cache (masked name), an unknown one is refused clearly.
    let found = backend.identify(&card_scan(ANNA_CARD)).unwrap();
    assert_eq!((found.card.guest_id, found.card.name.as_str()), (anna, "Anna"));
    assert_eq!(found.card.balance, Kopecks(rub(1_000)));
    assert_eq!(
        backend.identify(&card_scan(BORIS_CARD)).unwrap_err(),
        LoyaltyError::ServerAway(AwayReason::GuestNotCached)
    );
    // «Касса» works offline: no spending (caps at 0), the accrual by the group's 5 %.
    let quote = backend.calculate(anna, &check(rub(600))).unwrap();
    assert_eq!(quote.max_spend, Kopecks::ZERO);
    assert_eq!(quote.accrual_for(Kopecks::ZERO), Kopecks(rub(30)));
    // Spending is refused before anything is journalled: no hold to create and void later.
    assert_eq!(
        backend
            .hold("h1", anna, Kopecks(rub(100)), &check(rub(600)))
            .unwrap_err(),
        LoyaltyError::ServerAway(AwayReason::SpendingOff)
    );
    assert!(backend.journal().get("h1").unwrap().is_none());
    // «Копить бонусы»: a provisional receipt, queued.
    s.advance(60);
    let check_time = START + 60;
    let receipt = backend
        .commit_payment("keep-1", anna, None, Kopecks::ZERO, &check(rub(600)))
        .unwrap();
    assert_eq!(
        (receipt.accrued, receipt.balance_after),
        (Kopecks(rub(30)), Kopecks(rub(1_030)))
    );
    assert!(backend.is_provisional("keep-1"));
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)));
    // The server is back 90 s later: the probe sends the queue with no call from the cashier.
    s.advance(90);
    till.proxy.set(Fault::Pass);
    backend.probe();
    assert_eq!(backend.link(), ServerLink::Online);
    assert!(!backend.is_provisional("keep-1"));
    assert_eq!(s.balance(anna), (rub(1_030), rub(1_030)));
    let answer: serde_json::Value = serde_json::from_str(
        backend
            .journal()
            .get("keep-1")
            .unwrap()
            .unwrap()
            .response
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (answer["check_time"].as_str(), answer["booked_at"].as_i64()),
        (Some("used"), Some(check_time))
    );
    // Exactly once, at the check's time, through more probes and a restart.
    backend.probe();
    drop(backend);
    let _again = till.open(&s);
    assert_eq!(s.balance(anna), (rub(1_030), rub(1_030)));
    let accruals: Vec<_> = history(&s, anna).into_iter().filter(|(k, ..)| k == "accrual").collect();
    assert_eq!(accruals, [("accrual".to_string(), rub(30), check_time)]);
    assert_eq!(open_holds(&s, anna), 0);
}

fn a_refused_token_is_told_apart_and_nothing_queued_is_lost(s: Server) {
    let mut till = Till::new(&s);
    let anna = {
        let mut backend = till.open(&s);
        identify(&mut backend)
    };
    till.settings.token = "lt_not_a_token_of_this_server".to_string();
    let mut backend = till.open(&s);
    assert_eq!(backend.link(), ServerLink::TokenRefused);
    assert!(matches!(
        backend.kind(),
        BackendKind::Server {
            link: ServerLink::TokenRefused,
            ..
        }
    ));
    assert_eq!(
        backend.identify(&card_scan(BORIS_CARD)).unwrap_err(),
        LoyaltyError::ServerAway(AwayReason::TokenRefused)
    );
    // The cache was sealed with the other token: it cannot be read with this one.
    assert_eq!(
        backend.identify(&card_scan(ANNA_CARD)).unwrap_err(),
        LoyaltyError::ServerAway(AwayReason::TokenRefused)
    );
    assert!(
        backend.probe() <= std::time::Duration::from_secs(5),
        "probed again within seconds"
    );
    assert_eq!(backend.link(), ServerLink::TokenRefused);
    // An accrual closed meanwhile is queued, not dropped as refused.
    assert!(
        backend
            .commit_payment("keep-t", anna, None, Kopecks::ZERO, &check(rub(200)))
            .is_ok()
    );
    assert!(backend.is_provisional("keep-t"));
    drop(backend);
    // With the right token again it is sent once.
    till.settings.token = s.token.clone();
    let backend = till.open(&s);
    assert_eq!(backend.link(), ServerLink::Online);
    assert_eq!(s.balance(anna).0, rub(1_010));
}

/// A group with a daily spending limit of 300 and a guest in it with 1 000.
fn guest_with_daily_limit(s: &Server) -> i64 {
    let store = std::sync::Arc::clone(&s.handle.store);
    s.handle.block_on(async move {
        let group = store
            .add_group(&NewGroup {
                name: "Limited".to_string(),
                rank: 0,
                discount_bp: 0,
                accrual_bp: 500,
                spend_threshold: Kopecks(0),
                never_downgrade: false,
                daily_ops_limit: 0,
                daily_spend_limit: Kopecks(rub(300)),
            })
            .await
            .unwrap();
        let dina = store.add_guest(ORG, "Dina Petrova", None, group, START).await.unwrap();
        store
            .add_identifier(dina, IdentifierKind::CardBarcode, "2000000000039")
            .await
            .unwrap();
        store
            .credit("seed-dina", dina, Kopecks(rub(1_000)), START)
            .await
            .unwrap();
        dina
    })
}

fn daily_left(s: &Server, guest: i64) -> i64 {
    let quote = s.post(
        &format!("/api/v1/guests/{guest}/calculate"),
        serde_json::json!({ "check": { "subtotal": rub(10_000) } }),
    );
    let limits = quote.ok()["limits"].as_array().unwrap().clone();
    limits.iter().find(|l| l["kind"] == "daily_limit").unwrap()["amount"]
        .as_i64()
        .unwrap()
}

fn an_outage_across_midnight_books_each_check_on_its_own_day(s: Server) {
    let dina = guest_with_daily_limit(&s);
    let mut till = Till::new(&s);
    till.settings.offline_spend_per_guest = rub(1_000);
    // 23:57 UTC (the programme's day is UTC here).
    let midnight = START + 12 * 3_600;
    s.advance(12 * 3_600 - 180);
    let mut backend = till.open(&s);
    assert_eq!(
        backend.identify(&card_scan("2000000000039")).unwrap().card.guest_id,
        dina
    );
    backend.calculate(dina, &check(rub(1_000))).unwrap();
    till.proxy.set(Fault::Down);
    backend.probe();
    assert!(backend.is_offline());
    // 23:58: 300 spent offline; 23:59: a check closed keeping bonuses.
    s.advance(60);
    let hold = backend.hold("h1", dina, Kopecks(rub(300)), &check(rub(1_000))).unwrap();
    backend
        .commit_payment("c1", dina, Some(hold.hold_id), Kopecks(rub(300)), &check(rub(1_000)))
        .unwrap();
    s.advance(60);
    backend
        .commit_payment("k1", dina, None, Kopecks::ZERO, &check(rub(200)))
        .unwrap();
    // Back at 00:09 the next day: both are booked yesterday, today's limit is untouched.
    s.advance(600);
    till.proxy.set(Fault::Pass);
    backend.probe();
    assert_eq!(backend.journal().count_pending().unwrap(), 0);
    let booked: Vec<_> = history(&s, dina).into_iter().map(|(kind, _, at)| (kind, at)).collect();
    assert_eq!(
        booked,
        [
            ("manual_credit".to_string(), START),
            ("spend".to_string(), midnight - 120),
            ("accrual".to_string(), midnight - 120),
            ("accrual".to_string(), midnight - 60),
        ]
    );
    assert_eq!(daily_left(&s, dina), rub(300), "today's daily spending limit is whole");
}

fn a_check_older_than_the_bound_is_booked_now_and_the_server_says_so(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    till.proxy.set(Fault::Down);
    backend.probe();
    backend
        .commit_payment("k-old", anna, None, Kopecks::ZERO, &check(rub(100)))
        .unwrap();
    // Four days later (the server's bound is 72 hours).
    s.advance(96 * 3_600);
    till.proxy.set(Fault::Pass);
    backend.probe();
    let answer: serde_json::Value = serde_json::from_str(
        backend
            .journal()
            .get("k-old")
            .unwrap()
            .unwrap()
            .response
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer["check_time"], "too_old");
    assert_eq!(answer["booked_at"], START + 96 * 3_600);
    assert_eq!(history(&s, anna).last().unwrap().2, START + 96 * 3_600);
    assert_eq!(s.balance(anna).0, rub(1_005));
}

fn the_till_killed_while_the_queue_drains_sends_each_once(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let anna = identify(&mut backend);
    till.proxy.set(Fault::Down);
    backend.probe();
    for visit in 0..3 {
        backend
            .commit_payment(&format!("q-{visit}"), anna, None, Kopecks::ZERO, &check(rub(200)))
            .unwrap();
    }
    // The server comes back; the probe and the first accrual get their answers, the second
    // reaches the server but its answer is lost, and the till dies there.
    till.proxy.lose_answers_after(2);
    backend.probe();
    assert!(
        till.proxy.lost.load(Ordering::SeqCst) >= 1,
        "an answer was lost mid-drain"
    );
    let states: Vec<_> = (0..3)
        .map(|v| backend.journal().get(&format!("q-{v}")).unwrap().unwrap().state)
        .collect();
    assert_eq!(states, [OpState::Done, OpState::Pending, OpState::Pending]);
    assert_eq!(s.balance(anna).0, rub(1_020), "two reached the server");
    drop(backend);
    till.proxy.set(Fault::Pass);
    let backend = till.open(&s);
    assert_eq!(backend.journal().count_pending().unwrap(), 0);
    assert_eq!(s.balance(anna), (rub(1_030), rub(1_030)), "each accrual once");
    assert_eq!(history_kinds(&s, anna).iter().filter(|k| *k == "accrual").count(), 3);
}

/// Enrolment from a till on a server: offered when the programme allows it; refused at once while
/// the server is away (no guest the server never heard of); an answer lost on the way is learnt
/// by the same op id, and the guest and their welcome bonus are made once.
fn enrolment_needs_the_server_and_a_lost_answer_makes_one_guest(s: Server) {
    let till = Till::new(&s);
    let mut backend = till.open(&s);
    let code = card_scan("NEW-CARD-1");
    assert_eq!(backend.identify(&code).unwrap_err(), LoyaltyError::UnknownCode);
    assert_eq!(backend.enrolment().unwrap(), None, "off in the programme");
    assert_eq!(
        backend.enrol("e0", &code, "+7 916 555-11-22", "Vera").unwrap_err(),
        LoyaltyError::EnrolmentOff
    );
    s.set_enrolment(true, rub(100));
    assert_eq!(backend.enrolment().unwrap(), Some(Kopecks(rub(100))));

    till.proxy.set(Fault::Down);
    assert_eq!(
        backend.enrol("e1", &code, "+7 916 555-11-22", "Vera").unwrap_err(),
        LoyaltyError::ServerAway(AwayReason::NoEnrolment)
    );
    s.post(
        "/api/v1/identify",
        serde_json::json!({"kind": "barcode", "payload": "NEW-CARD-1"}),
    )
    .error(404, "unknown_guest");
    assert_eq!(
        backend.journal().count_pending().unwrap(),
        0,
        "nothing queued for later"
    );
    till.proxy.set(Fault::Pass);
    assert_eq!(backend.enrolment().unwrap(), Some(Kopecks(rub(100))), "back online");

    till.proxy.set(Fault::LoseAnswer);
    assert_eq!(
        backend.enrol("e2", &code, "+7 916 555-11-22", "Vera").unwrap_err(),
        LoyaltyError::ServerAway(AwayReason::NoEnrolment)
    );
    let made = s.post(
        "/api/v1/identify",
        serde_json::json!({"kind": "barcode", "payload": "NEW-CARD-1"}),
    );
    let vera = made.ok()["card"]["guest_id"].as_i64().unwrap();
    till.proxy.set(Fault::Pass);
    let again = backend.enrol("e2", &code, "+7 916 555-11-22", "Vera").unwrap();
    assert_eq!(again.card.guest_id, vera, "the same guest, learnt by the op id");
    assert_eq!(again.card.balance, Kopecks(rub(100)));
    assert_eq!(
        history_kinds(&s, vera),
        vec!["manual_credit".to_string()],
        "one welcome bonus"
    );
    assert_eq!(backend.identify(&code).unwrap().card.guest_id, vera);
    // Another code with her phone: refused with the reason the till shows.
    assert_eq!(
        backend
            .enrol("e3", &card_scan("NEW-CARD-2"), "8 916 555 11 22", "")
            .unwrap_err(),
        LoyaltyError::IdentifierTaken(IdentifierKind::Phone)
    );
}
