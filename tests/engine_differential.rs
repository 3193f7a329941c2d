//! One engine, two stores: the same random sequence of loyalty operations against the SQLite
//! store and the PostgreSQL store gives the same answers and the same balances, step by step.
//! Groups with thresholds and moves (one that never downgrades), a daily spend limit, a daily
//! identification limit, gifts, holds that expire, refunds, offline payments, manual credits and
//! repeated operation ids (the same request, and other content under the same id) are all in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::domain::{CheckInfo, GuestId, IdentifierKind, ScanKind};
use loyalty_till::ledger::NewGroup;
use loyalty_till::money::Kopecks;
use loyalty_till::server::store::{Caller, Store};
use server_support::{Db, START, new_store};
use tempfile::TempDir;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn group(name: &str, rank: i64, threshold: i64, accrual_bp: i64, never_downgrade: bool) -> NewGroup {
    NewGroup {
        name: name.to_string(),
        rank,
        discount_bp: rank * 100,
        accrual_bp,
        spend_threshold: Kopecks(threshold),
        never_downgrade,
        daily_ops_limit: 0,
        daily_spend_limit: Kopecks(0),
    }
}

/// Both stores seeded alike; returns the guests' ids and their codes.
async fn seed(store: &Store) -> Vec<(GuestId, String)> {
    store.set_spend_rules(5_000, Kopecks(100)).await.unwrap();
    store.set_hold_ttl(600).await.unwrap();
    let mut base = group("Гость", 1, 0, 500, false);
    base.daily_spend_limit = Kopecks(40_000);
    base.daily_ops_limit = 6;
    let base = store.add_group(&base).await.unwrap();
    store
        .add_group(&group("Серебро", 2, 300_000, 700, false))
        .await
        .unwrap();
    store
        .add_group(&group("Золото", 3, 800_000, 1_000, true))
        .await
        .unwrap();
    let mut guests = Vec::new();
    for (n, phone) in ["+7 916 000-00-01", "+7 916 000-00-02", "+7 916 000-00-03"]
        .iter()
        .enumerate()
    {
        let guest = store
            .add_guest("cafe", &format!("Гость {n}"), Some(phone), base, START)
            .await
            .unwrap();
        let code = format!("10000{n}");
        store
            .add_identifier(guest, IdentifierKind::ManualCode, &code)
            .await
            .unwrap();
        store
            .credit(&format!("seed-{n}"), guest, Kopecks(50_000), START)
            .await
            .unwrap();
        for g in 0..3 {
            store
                .add_gift_code(&format!("G{n}{g}"), guest, "Кофе", Kopecks(15_000))
                .await
                .unwrap();
        }
        guests.push((guest, code));
    }
    guests
}

/// What one step answered, with store-specific ids left out.
fn outcome<T: std::fmt::Debug, E: std::fmt::Debug>(result: &Result<T, E>) -> String {
    format!("{result:?}")
}

#[test]
fn sqlite_and_postgres_answer_alike_step_by_step() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dirs = [TempDir::new().unwrap(), TempDir::new().unwrap()];
    let Some(pg) = new_store(Db::Postgres, &dirs[1], 2) else {
        return;
    };
    let stores = runtime.block_on(async {
        let sqlite = new_store(Db::Sqlite, &dirs[0], 2).unwrap().await.unwrap();
        [sqlite, pg.await.unwrap()]
    });
    let caller = Caller {
        org: "cafe".to_string(),
        till: "till-1".to_string(),
    };
    let guests = runtime.block_on(async {
        let a = seed(&stores[0]).await;
        let b = seed(&stores[1]).await;
        assert_eq!(a, b, "the seeds differ");
        a
    });
    let mut rng = Rng(0x51_7CC1_B727_220A);
    let mut now = START;
    // Per store: the holds placed (by step) and the payments made, by op id.
    let mut holds: Vec<[Option<i64>; 2]> = Vec::new();
    let mut payments: Vec<String> = Vec::new();
    let mut ops: Vec<(String, i64)> = Vec::new();
    // How often each action succeeded and was refused: the sequence must exercise both.
    let mut tally = [[0u32; 2]; 11];
    for step in 0..400 {
        now += rng.below(3 * 3600) as i64;
        let (guest, code) = guests[rng.below(guests.len() as u64) as usize].clone();
        let subtotal = 100 * (1 + rng.below(3_000) as i64);
        let gift = format!("G{}{}", guest - guests[0].0, rng.below(3));
        let check = CheckInfo {
            subtotal: Kopecks(subtotal),
            gift_codes: if rng.below(6) == 0 {
                vec![gift.clone()]
            } else {
                Vec::new()
            },
            lines: Vec::new(),
        };
        let op = format!("op-{step}");
        let action = rng.below(11);
        // Every random choice is drawn once, before either store runs the step.
        let scan_gift = rng.below(2) == 0;
        let hold_back = 1 + rng.below(3) as usize;
        let spent_units = rng.below(4) as i64;
        let refund_amount = (rng.below(2) == 0).then(|| Kopecks(100 * (1 + rng.below(500) as i64)));
        let requested = Kopecks(100 * rng.below(400) as i64);
        let repeat_index = rng.below(ops.len().max(1) as u64) as usize;
        let repeat_same = rng.below(2) == 0;
        let mut answers = Vec::new();
        let mut new_holds = [None, None];
        for (i, store) in stores.iter().enumerate() {
            let answer = runtime.block_on(async {
                match action {
                    0 => {
                        let scan = if scan_gift { gift.as_str() } else { code.as_str() };
                        outcome(&store.identify(&caller, scan, ScanKind::Manual, now).await)
                    }
                    1 => outcome(&store.calculate(&caller, guest, &check, now).await),
                    2 | 3 => {
                        let amount = Kopecks(100 * (1 + (subtotal / 100) % 300));
                        let result = store.hold(&caller, &op, guest, amount, &check, now).await;
                        new_holds[i] = result.as_ref().ok().map(|r| r.hold_id);
                        // Hold ids are each store's own: compare the rest.
                        outcome(&result.map(|r| (r.amount, r.expires_at)))
                    }
                    4 | 5 => {
                        let pick = holds.len().checked_sub(hold_back);
                        let hold = pick.and_then(|p| holds[p][i]);
                        let spent = if hold.is_some() {
                            Kopecks(100 * spent_units)
                        } else {
                            Kopecks::ZERO
                        };
                        outcome(&store.commit(&caller, &op, guest, hold, spent, &check, now).await)
                    }
                    6 => match holds.last().and_then(|h| h[i]) {
                        Some(hold) => outcome(&store.void(&caller, &op, hold, now).await),
                        None => "no hold".to_string(),
                    },
                    7 => match payments.last() {
                        Some(paid) => outcome(&store.refund(&caller, &op, paid, refund_amount.into(), now).await),
                        None => "no payment".to_string(),
                    },
                    8 => outcome(&store.commit_offline(&caller, &op, guest, requested, &check, now).await),
                    9 => outcome(&store.reset_holds(&caller, guest, now).await),
                    _ => {
                        // A repeat of an earlier write: the same request, or other content.
                        match ops.get(repeat_index) {
                            Some((earlier, amount)) => {
                                let other = if repeat_same { *amount } else { amount + 7 };
                                outcome(&store.credit(earlier, guest, Kopecks(other), now).await)
                            }
                            None => "nothing to repeat".to_string(),
                        }
                    }
                }
            });
            answers.push(answer);
        }
        assert_eq!(
            answers[0], answers[1],
            "step {step} (action {action}) answered differently"
        );
        tally[action as usize][usize::from(!answers[0].starts_with("Ok"))] += 1;
        match action {
            2 | 3 => holds.push(new_holds),
            4 | 5 | 8 if answers[0].starts_with("Ok") => payments.push(caller.op(&op)),
            _ => {}
        }
        if rng.below(8) == 0 {
            let credit_op = format!("credit-{step}");
            let amount = 100 * (1 + rng.below(50) as i64);
            let credited: Vec<String> = stores
                .iter()
                .map(|store| outcome(&runtime.block_on(store.credit(&credit_op, guest, Kopecks(amount), now))))
                .collect();
            assert_eq!(credited[0], credited[1], "credit at step {step}");
            ops.push((credit_op, amount));
        }
        let balances: Vec<String> = stores
            .iter()
            .map(|store| {
                let cards: Vec<_> = guests
                    .iter()
                    .map(|(g, _)| {
                        runtime
                            .block_on(store.guest_card(&caller, *g, now))
                            .map(|c| (c.balance, c.available, c.group.name, c.stamps))
                    })
                    .collect();
                format!("{cards:?}")
            })
            .collect();
        assert_eq!(balances[0], balances[1], "balances after step {step}");
    }
    for store in &stores {
        runtime.block_on(store.check_invariants()).unwrap();
    }
    eprintln!("ok / refused per action: {tally:?}");
    for (action, [ok, refused]) in tally.iter().enumerate() {
        assert!(*ok > 0, "action {action} never succeeded: {tally:?}");
        // Reads and resets rarely fail; every write must also have been refused at least once.
        if matches!(action, 2..=8 | 10) {
            assert!(*refused > 0, "action {action} was never refused: {tally:?}");
        }
    }
}
