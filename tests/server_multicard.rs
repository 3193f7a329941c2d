//! One check paid from several cards through the loyalty server, on both of its stores: as the
//! till makes it (`ServerBackend` over the REST API with the till's token) and as raw requests:
//! two guests pay one check and a return gives both their share back; the same account twice, a
//! guest of another organisation and an amount over the maximum are refused naming the card, and
//! nothing is held; offline the till refuses with the reason; a commit whose answer was lost is
//! sent again under the same id and books once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::backend::{Clock, LoyaltyBackend};
use loyalty_till::backoffice::db::{self, Val};
use loyalty_till::domain::{
    AwayReason, CardPayment, CardShare, CheckInfo, HoldReceipt, LooseEndKind, LoyaltyError, ReturnPart, UnixSeconds,
};
use loyalty_till::loyalty::report;
use loyalty_till::money::Kopecks;
use loyalty_till::remote::{ServerBackend, ServerSettings};
use serde_json::json;
use server_support::proxy::{Fault, Proxy};
use server_support::{ORG, START, Server, rub};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

on_both_stores!(
    two_guests_pay_one_check_through_the_till_and_return_it,
    refusals_name_the_card_and_hold_nothing,
    offline_the_till_refuses_and_a_lost_commit_books_once,
    a_lost_answer_to_the_holds_is_listed_and_released,
    holds_a_stopped_till_left_are_listed_and_released,
);

struct TestClock(Arc<AtomicI64>);

impl Clock for TestClock {
    fn now(&self) -> UnixSeconds {
        self.0.load(Ordering::SeqCst)
    }
}

fn open(s: &Server, url: String) -> ServerBackend {
    let settings = ServerSettings {
        url,
        token: s.token.clone(),
        timeout_secs: 5,
        ..ServerSettings::default()
    };
    let journal = s.dir.path().join("till-1").join("journal.sqlite");
    ServerBackend::open(&settings, &journal, Box::new(TestClock(Arc::clone(&s.clock)))).unwrap()
}

fn check(subtotal: i64) -> CheckInfo {
    CheckInfo {
        subtotal: Kopecks(subtotal),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    }
}

/// Boris gets 400 ₽ (Anna has 1 000 ₽).
fn credit_boris(s: &Server) {
    let store = Arc::clone(&s.handle.store);
    let boris = s.ids.boris;
    s.handle.block_on(async move {
        store
            .credit("seed-boris", boris, Kopecks(rub(400)), START)
            .await
            .unwrap();
    });
}

fn shares(s: &Server, anna: i64, boris: i64) -> Vec<CardShare> {
    vec![
        CardShare {
            guest: s.ids.anna,
            amount: Kopecks(rub(anna)),
        },
        CardShare {
            guest: s.ids.boris,
            amount: Kopecks(rub(boris)),
        },
    ]
}

fn payments(shares: &[CardShare], holds: &[Option<HoldReceipt>]) -> Vec<CardPayment> {
    shares
        .iter()
        .zip(holds)
        .map(|(share, hold)| CardPayment {
            guest: share.guest,
            hold: hold.as_ref().map(|h| h.hold_id),
            spent: share.amount,
        })
        .collect()
}

fn two_guests_pay_one_check_through_the_till_and_return_it(s: Server) {
    credit_boris(&s);
    let (anna, boris) = (s.ids.anna, s.ids.boris);
    let mut till = open(&s, s.url(""));
    let shares = shares(&s, 200, 300);
    let holds = till.hold_shared("m1-hold", anna, &shares, &check(rub(1_000))).unwrap();
    assert_eq!(s.balance(anna), (rub(1_000), rub(800)));
    assert_eq!(s.balance(boris), (rub(400), rub(100)));
    let receipts = till
        .commit_shared("m1", anna, &payments(&shares, &holds), &check(rub(1_000)))
        .unwrap();
    // Anna owns the check: 5 % of the 500 ₽ paid with money.
    assert_eq!(
        receipts.iter().map(|r| (r.spent.0, r.accrued.0)).collect::<Vec<_>>(),
        [(rub(200), rub(25)), (rub(300), 0)]
    );
    assert_eq!(s.balance(anna), (rub(825), rub(825)));
    assert_eq!(s.balance(boris), (rub(100), rub(100)));
    let history = s.get(&format!("/api/v1/guests/{boris}/history"));
    assert_eq!(history.ok()[0]["kind"], "spend", "Boris's debit is in his history");

    // The till lists one check, its owner's.
    let found = till
        .find_checks(&loyalty_till::domain::CheckFilter {
            today: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].op_id.as_str(), found[0].guest), ("m1", anna));

    let half = till.refund("r1", "m1", &ReturnPart::Amount(Kopecks(rub(500)))).unwrap();
    assert_eq!(
        (half.spend_returned.0, half.accrual_taken.0, half.others_returned.0),
        (rub(100), 1_250, rub(150))
    );
    let rest = till.refund("r2", "m1", &ReturnPart::Rest).unwrap();
    assert!(rest.full);
    assert_eq!(s.balance(anna).0, rub(1_000));
    assert_eq!(s.balance(boris).0, rub(400));

    // The back office's report reads one check with every card's bonuses, and two returns.
    let store = Arc::clone(&s.handle.store);
    let rows = s.handle.block_on(async move {
        // The offset, the organisation, the whole of time (the quarters' bound stays in range).
        let params = vec![Val::Int(0), Val::from(ORG), Val::Int(0), Val::Int(i64::MAX / 2)];
        db::query(&store, report::CHECKS_SQL, params).await.unwrap()
    });
    // Each row: a day, a till, then the checks' four figures and the returns' four.
    let sums = rows.iter().fold([0i64; 8], |mut sum, r| {
        for (i, s) in sum.iter_mut().enumerate() {
            *s += r[2 + i].int();
        }
        sum
    });
    assert_eq!(sums[..4], [1, rub(1_000), rub(500), rub(25)], "{rows:?}");
    assert_eq!(sums[4], 2, "two returns: {rows:?}");
    assert_eq!(sums[6], rub(500), "every card's bonuses came back");
}

fn refusals_name_the_card_and_hold_nothing(s: Server) {
    credit_boris(&s);
    let (anna, boris, olga) = (s.ids.anna, s.ids.boris, s.ids.other);
    let body = |op: &str, shares: serde_json::Value| json!({"op_id": op, "owner_id": anna, "shares": shares, "check": {"subtotal": rub(1_000)}});
    let refused = |answer: server_support::Answer, card: u64, reason: serde_json::Value| {
        answer.error(422, "card_refused");
        assert_eq!(answer.body["ledger"]["CardRefused"]["card"], card, "{}", answer.body);
        assert_eq!(
            answer.body["ledger"]["CardRefused"]["reason"], reason,
            "{}",
            answer.body
        );
    };
    refused(
        s.post(
            "/api/v1/shared-holds",
            body(
                "h1",
                json!([{"guest_id": anna, "amount": rub(100)}, {"guest_id": anna, "amount": rub(100)}]),
            ),
        ),
        2,
        json!("SameAccountOnCheck"),
    );
    // A guest of another organisation is unknown here, like one that does not exist.
    refused(
        s.post(
            "/api/v1/shared-holds",
            body(
                "h2",
                json!([{"guest_id": anna, "amount": rub(100)}, {"guest_id": olga, "amount": rub(100)}]),
            ),
        ),
        2,
        json!("UnknownCode"),
    );
    // Together over half the check.
    refused(
        s.post(
            "/api/v1/shared-holds",
            body(
                "h3",
                json!([{"guest_id": anna, "amount": rub(300)}, {"guest_id": boris, "amount": rub(300)}]),
            ),
        ),
        2,
        json!({"OverMaximum": {"requested": rub(300), "max": rub(200)}}),
    );
    s.post("/api/v1/shared-holds", body("h4", json!([])))
        .error(400, "bad_card_count");
    for guest in [anna, boris] {
        let open = s.get(&format!("/api/v1/guests/{guest}/holds"));
        assert_eq!(open.ok().as_array().map(Vec::len), Some(0), "nothing held for {guest}");
    }
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)));
    assert_eq!(s.balance(boris), (rub(400), rub(400)));
}

fn offline_the_till_refuses_and_a_lost_commit_books_once(s: Server) {
    credit_boris(&s);
    let (anna, boris) = (s.ids.anna, s.ids.boris);
    let proxy = Proxy::start(s.handle.addr);
    let mut till = open(&s, proxy.url());
    let shares = shares(&s, 100, 100);

    proxy.set(Fault::Down);
    assert_eq!(
        till.hold_shared("m1-hold", anna, &shares, &check(rub(1_000))),
        Err(LoyaltyError::ServerAway(AwayReason::NoSharedPayment))
    );
    assert_eq!(s.balance(anna).1, rub(1_000), "nothing held");

    proxy.set(Fault::Pass);
    s.advance(60);
    let holds = till.hold_shared("m2-hold", anna, &shares, &check(rub(1_000))).unwrap();
    proxy.set(Fault::LoseAnswer);
    let paid = payments(&shares, &holds);
    let lost = till.commit_shared("m2", anna, &paid, &check(rub(1_000)));
    assert!(matches!(lost, Err(LoyaltyError::Unavailable(_))), "{lost:?}");
    proxy.set(Fault::Pass);
    s.advance(60);
    let again = till.commit_shared("m2", anna, &paid, &check(rub(1_000))).unwrap();
    assert_eq!(again.len(), 2);
    // Booked once: 1 000 − 100 + 5 % of 800; 400 − 100.
    assert_eq!(s.balance(anna).0, rub(940));
    assert_eq!(s.balance(boris).0, rub(300));
}

/// The holds of several cards asked for, and the answer lost on the way back: the cashier is
/// told the server is away, «Закрыть смену» lists the request as in doubt (what it would hold),
/// and once the server answers the journal releases what the server held.
fn a_lost_answer_to_the_holds_is_listed_and_released(s: Server) {
    credit_boris(&s);
    let (anna, boris) = (s.ids.anna, s.ids.boris);
    let proxy = Proxy::start(s.handle.addr);
    let mut till = open(&s, proxy.url());
    let shares = shares(&s, 200, 300);
    proxy.set(Fault::LoseAnswer);
    assert_eq!(
        till.hold_shared("m1-hold", anna, &shares, &check(rub(1_000))),
        Err(LoyaltyError::ServerAway(AwayReason::NoSharedPayment))
    );
    assert_eq!(s.balance(anna), (rub(1_000), rub(800)), "the server did hold");
    assert_eq!(s.balance(boris), (rub(400), rub(100)));
    let ends = till.loose_ends().unwrap();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(
        (
            ends[0].kind,
            ends[0].op_id.as_str(),
            ends[0].amount,
            ends[0].needs_server
        ),
        (LooseEndKind::InDoubt, "m1-hold", Kopecks(rub(500)), true)
    );

    proxy.set(Fault::Pass);
    till.settle_loose_end("release-1", &ends[0]).unwrap();
    assert_eq!(s.balance(anna), (rub(1_000), rub(1_000)), "released");
    assert_eq!(s.balance(boris), (rub(400), rub(400)));
    assert!(till.loose_ends().unwrap().is_empty());
}

/// A till stopped between the holds of several cards and the payment, started again while the
/// server is away: it lists each card's hold as open (its amount), needing the server; releasing
/// one once the server answers releases it, and the start-up sweep the rest. A paid check leaves
/// nothing listed.
fn holds_a_stopped_till_left_are_listed_and_released(s: Server) {
    credit_boris(&s);
    let (anna, boris) = (s.ids.anna, s.ids.boris);
    let proxy = Proxy::start(s.handle.addr);
    {
        let mut till = open(&s, proxy.url());
        let paid_shares = shares(&s, 100, 100);
        let holds = till
            .hold_shared("m0-hold", anna, &paid_shares, &check(rub(1_000)))
            .unwrap();
        till.commit_shared("m0", anna, &payments(&paid_shares, &holds), &check(rub(1_000)))
            .unwrap();
        assert!(
            till.loose_ends().unwrap().is_empty(),
            "a paid check leaves nothing open"
        );
        let shares = shares(&s, 200, 150);
        till.hold_shared("m1-hold", anna, &shares, &check(rub(1_000))).unwrap();
        // The till stops here: its journal is all that is left of the check.
    }
    // Anna: 1 000 − 100 + 5 % of 800 = 940, 200 held; Boris: 400 − 100 = 300, 150 held.
    assert_eq!(s.balance(anna), (rub(940), rub(740)));
    assert_eq!(s.balance(boris), (rub(300), rub(150)));

    s.advance(60);
    proxy.set(Fault::Down);
    let mut till = open(&s, proxy.url());
    let ends = till.loose_ends().unwrap();
    let listed: Vec<(LooseEndKind, Kopecks, bool)> = ends.iter().map(|e| (e.kind, e.amount, e.needs_server)).collect();
    assert_eq!(
        listed,
        [
            (LooseEndKind::OpenHold, Kopecks(rub(200)), true),
            (LooseEndKind::OpenHold, Kopecks(rub(150)), true)
        ]
    );
    assert!(
        till.settle_loose_end("release-1", &ends[1]).is_err(),
        "the server is away"
    );
    assert_eq!(s.balance(boris), (rub(300), rub(150)), "still held");

    proxy.set(Fault::Pass);
    s.advance(60);
    till.settle_loose_end("release-2", &ends[1]).unwrap();
    assert_eq!(
        s.balance(boris),
        (rub(300), rub(300)),
        "Boris's hold released from the list"
    );
    assert_eq!(
        s.balance(anna),
        (rub(940), rub(940)),
        "Anna's by the sweep of what the stop left"
    );
    assert!(till.loose_ends().unwrap().is_empty());
}
