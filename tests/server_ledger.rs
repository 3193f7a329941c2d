//! The ledger additions the server needs, on a real SQLite file: schema version 2 (organisations,
//! refunds) over a version 1 file, refunds that add up exactly, organisation-scoped identify.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Rng;
use loyalty_till::domain::{CheckInfo, IdentifierKind, LoyaltyError, ScanKind};
use loyalty_till::ledger::{Ledger, NewGroup};
use loyalty_till::money::Kopecks;
use tempfile::TempDir;

const NOW: i64 = 1_741_608_000;

fn group() -> NewGroup {
    NewGroup {
        name: "Guest".to_string(),
        rank: 1,
        discount_bp: 0,
        accrual_bp: 700,
        spend_threshold: Kopecks(0),
        never_downgrade: false,
        daily_ops_limit: 0,
        daily_spend_limit: Kopecks(0),
    }
}

fn check(subtotal: i64) -> CheckInfo {
    CheckInfo {
        subtotal: Kopecks(subtotal),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    }
}

#[test]
fn a_version_1_file_is_migrated_with_its_data() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("v1.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../src/ledger/schema.sql")).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO guest_groups VALUES (1, 'Guest', 1, 0, 500, 0, 0, 0, 0);
             INSERT INTO guests (id, name, phone, group_id, balance, created_at) VALUES (1, 'Anna', NULL, 1, 12345, 0);
             INSERT INTO identifiers VALUES ('manual_code', '100001', 1);
             INSERT INTO operations (guest_id, kind, amount, balance_after, note, at, op_id)
                 VALUES (1, 'manual_credit', 12345, 12345, 'old', 0, 'old-1');",
        )
        .unwrap();
    }
    let mut ledger = Ledger::open(&path).unwrap();
    ledger.check_invariants().unwrap();
    assert_eq!(ledger.guest_org(1).unwrap(), "default");
    let history = ledger.history(1, 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].amount, Kopecks(12345));
    // The new operation kinds work on the migrated file.
    ledger
        .commit_payment("pay", 1, None, Kopecks::ZERO, &check(10_000), NOW)
        .unwrap();
    let refund = ledger.refund("ref", "pay", None, NOW).unwrap();
    assert_eq!(refund.accrual_taken, Kopecks(500));
    assert_eq!(ledger.history(1, 1).unwrap()[0].kind, "refund_accrual");
    ledger.check_invariants().unwrap();
    drop(ledger);
    // Opening again leaves version 2 as it is.
    Ledger::open(&path).unwrap().check_invariants().unwrap();
}

#[test]
fn partial_refunds_add_up_to_exactly_what_was_spent_and_accrued() {
    let dir = TempDir::new().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let group = ledger.add_group(&group()).unwrap();
    let guest = ledger.add_guest("Anna", None, group, NOW).unwrap();
    ledger.credit("seed", guest, Kopecks(10_000_000), "seed", NOW).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for visit in 0..40 {
        let subtotal = 1 + rng.below(200_000u64) as i64;
        let max = ledger.calculate(guest, &check(subtotal), NOW).unwrap().max_spend;
        let spend = if max.0 > 0 {
            rng.below(max.0 as u64 + 1) as i64
        } else {
            0
        };
        let hold = (spend > 0).then(|| {
            ledger
                .hold(&format!("h{visit}"), guest, Kopecks(spend), &check(subtotal), NOW)
                .unwrap()
                .hold_id
        });
        let paid = ledger
            .commit_payment(&format!("p{visit}"), guest, hold, Kopecks(spend), &check(subtotal), NOW)
            .unwrap();
        let before = ledger.guest_card(guest, NOW).unwrap().balance;
        // Return the check in random parts, the last one "everything left".
        let mut left = subtotal;
        let (mut returned, mut taken, mut part) = (0, 0, 0);
        while left > 0 {
            let amount = if rng.below(3u64) == 0 {
                None
            } else {
                Some(1 + rng.below(left as u64) as i64)
            };
            let r = ledger
                .refund(
                    &format!("r{visit}-{part}"),
                    &format!("p{visit}"),
                    amount.map(Kopecks),
                    NOW,
                )
                .unwrap();
            assert!(r.amount.0 > 0 && r.amount.0 <= left);
            left -= r.amount.0;
            returned += r.spend_returned.0;
            taken += r.accrual_taken.0;
            assert_eq!(r.unrecovered, Kopecks::ZERO);
            part += 1;
        }
        assert_eq!(returned, spend, "visit {visit}: every spent bonus back");
        assert_eq!(taken, paid.accrued.0, "visit {visit}: every accrued bonus taken back");
        assert_eq!(
            ledger.guest_card(guest, NOW).unwrap().balance.0,
            before.0 + spend - paid.accrued.0
        );
        assert_eq!(
            ledger
                .refund(&format!("again{visit}"), &format!("p{visit}"), None, NOW)
                .unwrap_err(),
            LoyaltyError::RefundOverPayment {
                requested: Kopecks::ZERO,
                left: Kopecks::ZERO,
            }
        );
        ledger.check_invariants().unwrap();
    }
    assert_eq!(ledger.guest_card(guest, NOW).unwrap().balance, Kopecks(10_000_000));
}

#[test]
fn identify_in_an_organisation_sees_only_its_guests() {
    let dir = TempDir::new().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let group = ledger.add_group(&group()).unwrap();
    let anna = ledger.add_guest("Anna", Some("+79161234567"), group, NOW).unwrap();
    ledger
        .add_identifier(anna, IdentifierKind::ManualCode, "100001")
        .unwrap();
    ledger.set_guest_org(anna, "cafe").unwrap();
    let found = ledger
        .identify_in_org("100001", ScanKind::Manual, Some("cafe"), NOW)
        .unwrap();
    assert_eq!(found.card.guest_id, anna);
    assert_eq!(
        ledger
            .identify_in_org("100001", ScanKind::Manual, Some("bistro"), NOW)
            .unwrap_err(),
        LoyaltyError::UnknownCode
    );
    assert_eq!(
        ledger
            .identify_in_org("89161234567", ScanKind::Manual, Some("bistro"), NOW)
            .unwrap_err(),
        LoyaltyError::UnknownCode
    );
    // The embedded till (no organisation) sees everyone.
    assert_eq!(
        ledger.identify("100001", ScanKind::Manual, NOW).unwrap().card.guest_id,
        anna
    );
    assert_eq!(
        ledger.set_guest_org(999, "cafe").unwrap_err(),
        LoyaltyError::UnknownCode
    );
    ledger.check_invariants().unwrap();
}
