//! One check paid from several bonus accounts (cards presented one after another), on both stores
//! the one engine runs on (`sqlite::…`, `postgres::…`): two guests paying one check, several
//! cards of one account (refused as the same account), three accounts of one guest, one hold of three refused
//! (nothing held for the others), the sum over the check's maximum, the accrual going to the
//! check's owner, and full and partial returns afterwards. Every test ends with the invariant
//! check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod ledger_stores;
#[cfg(not(windows))]
mod server_support;

use ledger_stores::LedgerApi;
#[cfg(not(windows))]
use ledger_stores::PgLedger;
use loyalty_till::domain::{
    CardPayment, CardShare, CheckFilter, CheckInfo, GuestId, HoldReceipt, IdentifierKind, LoyaltyError, PaymentReceipt,
    ScanKind, UnixSeconds,
};
use loyalty_till::ledger::{Ledger, NewGroup, ProgramSettings};
use loyalty_till::loyalty::engine::{Op, share_key};
use loyalty_till::loyalty::rules::AccrualBasis;
use loyalty_till::money::Kopecks;

/// 2025-03-10 12:00 UTC, 15:00 in the cafe (UTC+3).
const NOW: UnixSeconds = 1_741_564_800 + 12 * 3600;

fn rub(roubles: i64) -> Kopecks {
    Kopecks(roubles * 100)
}

fn check(subtotal: Kopecks) -> CheckInfo {
    CheckInfo {
        subtotal,
        gift_codes: Vec::new(),
        lines: Vec::new(),
    }
}

trait Backing: LedgerApi + Sized {
    fn open() -> Self;
}

impl Backing for Ledger {
    fn open() -> Ledger {
        Ledger::open_in_memory().unwrap()
    }
}

#[cfg(not(windows))]
impl Backing for PgLedger {
    fn open() -> PgLedger {
        let url = server_support::pg_url().expect("PostgreSQL for the multi-card suite");
        PgLedger::empty(&url).expect("PostgreSQL for the multi-card suite")
    }
}

/// A programme paying at most half a check with bonuses, 5 % accrual on the part paid with
/// money; Анна with 500 ₽ (two cards and a phone), Иван with 300 ₽, Ольга with 200 ₽.
struct Cafe<L: Backing> {
    ledger: L,
    anna: GuestId,
    ivan: GuestId,
    olga: GuestId,
}

impl<L: Backing> Cafe<L> {
    fn new() -> Cafe<L> {
        let mut ledger = L::open();
        ledger
            .set_program(&ProgramSettings {
                name: "Test".to_string(),
                max_check_bp: 5000,
                spend_step: rub(1),
                hold_ttl_secs: 900,
                group_period_days: 365,
                utc_offset_minutes: 180,
                accrual_basis: AccrualBasis::PaidPart,
                welcome_bonus: Kopecks::ZERO,
                till_enrolment: false,
            })
            .unwrap();
        let group = ledger
            .add_group(&NewGroup {
                name: "Гость".to_string(),
                rank: 1,
                discount_bp: 0,
                accrual_bp: 500,
                spend_threshold: Kopecks::ZERO,
                never_downgrade: false,
                daily_ops_limit: 0,
                daily_spend_limit: Kopecks::ZERO,
            })
            .unwrap();
        let mut guest = |name: &str, phone: &str, card: &str, start: i64| {
            let guest = ledger.add_guest(name, Some(phone), group, NOW - 3600).unwrap();
            ledger.add_identifier(guest, IdentifierKind::CardBarcode, card).unwrap();
            ledger
                .credit(&format!("start-{card}"), guest, rub(start), "start", NOW - 3600)
                .unwrap();
            guest
        };
        let anna = guest("Анна", "+7 916 123-45-67", "2000000000015", 500);
        let ivan = guest("Иван", "+7 903 111-22-33", "2000000000022", 300);
        let olga = guest("Ольга", "+7 905 444-55-66", "2000000000039", 200);
        ledger
            .add_identifier(anna, IdentifierKind::CardBarcode, "2000000000046")
            .unwrap();
        Cafe {
            ledger,
            anna,
            ivan,
            olga,
        }
    }

    fn hold(
        &mut self,
        op: &str,
        owner: GuestId,
        shares: &[(GuestId, i64)],
        subtotal: i64,
    ) -> Result<Vec<Option<HoldReceipt>>, LoyaltyError> {
        let shares = shares
            .iter()
            .map(|(guest, amount)| CardShare {
                guest: *guest,
                amount: rub(*amount),
            })
            .collect();
        self.ledger
            .run_op(
                Op::HoldShared {
                    op_key: op.to_string(),
                    owner,
                    shares,
                    check: check(rub(subtotal)),
                },
                NOW,
            )?
            .into_shared_holds()
    }

    fn commit(
        &mut self,
        op: &str,
        owner: GuestId,
        payments: Vec<CardPayment>,
        subtotal: i64,
    ) -> Result<Vec<PaymentReceipt>, LoyaltyError> {
        self.ledger
            .run_op(
                Op::CommitShared {
                    op_key: op.to_string(),
                    owner,
                    payments,
                    check: check(rub(subtotal)),
                },
                NOW + 30,
            )?
            .into_payments()
    }

    /// Holds and pays the check with each guest's amount, the owner getting the accrual.
    fn pay(&mut self, op: &str, owner: GuestId, shares: &[(GuestId, i64)], subtotal: i64) -> Vec<PaymentReceipt> {
        let holds = self.hold(&format!("{op}-hold"), owner, shares, subtotal).unwrap();
        let payments = shares
            .iter()
            .zip(holds)
            .map(|((guest, amount), hold)| CardPayment {
                guest: *guest,
                hold: hold.map(|h| h.hold_id),
                spent: rub(*amount),
            })
            .collect();
        self.commit(op, owner, payments, subtotal).unwrap()
    }

    fn balance(&self, guest: GuestId) -> Kopecks {
        self.ledger.guest_card(guest, NOW + 60).unwrap().balance
    }

    fn balances(&self) -> [Kopecks; 3] {
        [
            self.balance(self.anna),
            self.balance(self.ivan),
            self.balance(self.olga),
        ]
    }

    fn open_holds(&self) -> usize {
        self.ledger.open_holds(None).unwrap().len()
    }
}

impl<L: Backing> Drop for Cafe<L> {
    fn drop(&mut self) {
        if !std::thread::panicking()
            && let Err(violations) = self.ledger.check_invariants()
        {
            panic!("ledger invariants broken: {violations}");
        }
    }
}

fn refused(card: usize, reason: LoyaltyError) -> LoyaltyError {
    LoyaltyError::CardRefused {
        card,
        reason: Box::new(reason),
    }
}

/// Seed 003: two guests pay one check of 1 000 ₽, 200 ₽ and 300 ₽; each debit is in its guest's
/// history against the check, the accrual (5 % of the 500 ₽ paid with money) goes to the owner
/// only, and the check is listed once, as the owner's.
fn two_guests_pay_one_check<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let (anna, ivan) = (cafe.anna, cafe.ivan);
    let receipts = cafe.pay("p1", anna, &[(anna, 200), (ivan, 300)], 1_000);
    assert_eq!(
        receipts,
        vec![
            PaymentReceipt {
                spent: rub(200),
                accrued: rub(25),
                balance_after: rub(325),
                new_group: None,
            },
            PaymentReceipt {
                spent: rub(300),
                accrued: Kopecks::ZERO,
                balance_after: Kopecks::ZERO,
                new_group: None,
            },
        ]
    );
    assert_eq!(cafe.balances(), [rub(325), Kopecks::ZERO, rub(200)]);
    assert_eq!(cafe.open_holds(), 0);

    let anna_history = cafe.ledger.history(anna, 10).unwrap();
    let ivan_history = cafe.ledger.history(ivan, 10).unwrap();
    let kinds = |h: &[loyalty_till::domain::HistoryEntry]| -> Vec<(String, Kopecks)> {
        h.iter().map(|e| (e.kind.clone(), e.amount)).collect()
    };
    assert_eq!(
        kinds(&anna_history[..2]),
        [("accrual".to_string(), rub(25)), ("spend".to_string(), rub(-200))]
    );
    assert_eq!(kinds(&ivan_history[..1]), [("spend".to_string(), rub(-300))]);
    assert_eq!(
        anna_history[1].note, ivan_history[0].note,
        "both debits name the same check"
    );

    let today = CheckFilter {
        today: true,
        ..CheckFilter::default()
    };
    let checks = cafe.ledger.checks(&today, NOW + 60).unwrap();
    assert_eq!(checks.len(), 1, "one check, listed as its owner's: {checks:?}");
    assert_eq!((checks[0].op_id.as_str(), checks[0].guest), ("p1", anna));

    // The same payment sent again answers the same and changes nothing.
    let again = cafe.commit("p1", anna, Vec::new(), 1_000);
    assert_eq!(
        again,
        Err(LoyaltyError::OperationIdConflict),
        "other content under the same id"
    );
    let holds_again = cafe.hold("p1-hold", anna, &[(anna, 200), (ivan, 300)], 1_000).unwrap();
    assert_eq!(holds_again.len(), 2);
    assert_eq!(cafe.open_holds(), 0, "a repeat of the holds places none");
    assert_eq!(cafe.balances(), [rub(325), Kopecks::ZERO, rub(200)]);
}

/// The owner chosen is the one who gets the accrual, whatever the order the cards came in.
fn the_accrual_goes_to_the_owner_chosen<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let (anna, ivan) = (cafe.anna, cafe.ivan);
    let receipts = cafe.pay("p1", ivan, &[(anna, 100), (ivan, 100)], 600);
    // 5 % of the 400 ₽ paid with money, to Иван.
    assert_eq!((receipts[0].accrued, receipts[1].accrued), (Kopecks::ZERO, rub(20)));
    assert_eq!(cafe.balances(), [rub(400), rub(220), rub(200)]);
    let owner_elsewhere = cafe.hold("p2-hold", cafe.olga, &[(anna, 10)], 600);
    assert!(
        matches!(owner_elsewhere, Err(LoyaltyError::OutOfRange(_))),
        "the owner must be one of the cards: {owner_elsewhere:?}"
    );
}

/// The same card twice, or another card of the same account: both name the same account and the
/// second is refused with the reason; nothing is held.
fn cards_of_one_guest_are_one_account<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let (anna, ivan) = (cafe.anna, cafe.ivan);
    // Three ways to present Анна: two cards and the phone.
    let found: Vec<GuestId> = ["2000000000015", "2000000000046", "+7 916 123-45-67"]
        .iter()
        .map(|code| cafe.ledger.identify(code, ScanKind::Manual, NOW).unwrap().card.guest_id)
        .collect();
    assert_eq!(found, [anna, anna, anna]);
    let shares: Vec<(GuestId, i64)> = found.iter().map(|g| (*g, 50)).collect();
    assert_eq!(
        cafe.hold("h1", anna, &shares, 1_000),
        Err(refused(2, LoyaltyError::SameAccountOnCheck))
    );
    assert_eq!(
        cafe.hold("h2", anna, &[(anna, 50), (ivan, 50), (anna, 0)], 1_000),
        Err(refused(3, LoyaltyError::SameAccountOnCheck))
    );
    assert_eq!(cafe.open_holds(), 0);
    assert_eq!(cafe.balances(), [rub(500), rub(300), rub(200)]);
}

/// Opens another account of `guest` named `name` with a card of its own and `start` roubles.
fn open_account<L: Backing>(cafe: &mut Cafe<L>, guest: GuestId, name: &str, card: &str, start: i64) -> GuestId {
    let account = cafe
        .ledger
        .run_op(
            Op::OpenAccount {
                guest,
                name: name.to_string(),
            },
            NOW - 1800,
        )
        .unwrap()
        .into_id()
        .unwrap();
    cafe.ledger
        .add_identifier(account, IdentifierKind::CardBarcode, card)
        .unwrap();
    cafe.ledger
        .credit(&format!("start-{card}"), account, rub(start), "start", NOW - 1800)
        .unwrap();
    account
}

/// Three accounts of one guest (her own, a corporate and a family one, each with its card) pay
/// one check: each card finds its account, with the guest's name and phone and the account's
/// name; each debit is in its account's history; the accrual goes to the owner's account. The
/// same account twice is still refused, one hold of the three refused holds nothing, and a block
/// of the guest reaches every account.
fn three_accounts_of_one_guest<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let anna = cafe.anna;
    let corporate = open_account(&mut cafe, anna, "Корпоративный", "2000000000053", 300);
    // Opened from an account's page, an account is still the person's.
    let family = open_account(&mut cafe, corporate, "Семейный", "2000000000060", 100);
    assert_eq!(
        cafe.ledger.run_op(
            Op::OpenAccount {
                guest: anna,
                name: " Семейный ".to_string(),
            },
            NOW
        ),
        Err(LoyaltyError::AccountNameTaken("Семейный".to_string())),
        "a name the guest's accounts already have"
    );
    assert!(matches!(
        cafe.ledger.run_op(
            Op::OpenAccount {
                guest: anna,
                name: "  ".to_string(),
            },
            NOW
        ),
        Err(LoyaltyError::OutOfRange(_))
    ));

    let mut found = |code: &str| cafe.ledger.identify(code, ScanKind::Manual, NOW).unwrap().card;
    let (own, corp, fam, by_phone) = (
        found("2000000000015"),
        found("2000000000053"),
        found("2000000000060"),
        found("+7 916 123-45-67"),
    );
    assert_eq!(
        [own.guest_id, corp.guest_id, fam.guest_id, by_phone.guest_id],
        [anna, corporate, family, anna],
        "each card its account; the phone finds the main one"
    );
    assert_eq!(
        [own.account.as_deref(), corp.account.as_deref(), fam.account.as_deref()],
        [None, Some("Корпоративный"), Some("Семейный")]
    );
    assert_eq!((corp.name.as_str(), fam.name.as_str()), ("Анна", "Анна"));
    assert_eq!(corp.phone_masked, own.phone_masked);
    assert_eq!((corp.balance, fam.balance), (rub(300), rub(100)));

    // One hold of three refused: the family account has 100 ₽.
    assert_eq!(
        cafe.hold("h1", anna, &[(anna, 100), (corporate, 200), (family, 150)], 1_000),
        Err(refused(
            3,
            LoyaltyError::OverMaximum {
                requested: rub(150),
                max: rub(100),
            }
        ))
    );
    assert_eq!(
        cafe.hold("h2", anna, &[(corporate, 100), (family, 50), (corporate, 50)], 1_000),
        Err(refused(3, LoyaltyError::SameAccountOnCheck))
    );
    assert_eq!(cafe.open_holds(), 0, "nothing held for the accounts that were fine");

    let receipts = cafe.pay("p1", anna, &[(anna, 100), (corporate, 200), (family, 100)], 1_000);
    // 5 % of the 600 ₽ paid with money, to her own account.
    let after: Vec<(Kopecks, Kopecks)> = receipts.iter().map(|r| (r.spent, r.accrued)).collect();
    assert_eq!(
        after,
        [
            (rub(100), rub(30)),
            (rub(200), Kopecks::ZERO),
            (rub(100), Kopecks::ZERO)
        ]
    );
    assert_eq!(
        [cafe.balance(anna), cafe.balance(corporate), cafe.balance(family)],
        [rub(430), rub(100), Kopecks::ZERO]
    );
    for (account, spent) in [(anna, 100), (corporate, 200), (family, 100)] {
        let history = cafe.ledger.history(account, 10).unwrap();
        assert!(
            history.iter().any(|e| e.kind == "spend" && e.amount == rub(-spent)),
            "the debit is in account {account}'s history: {history:?}"
        );
    }

    // A block of the guest blocks every account; lifted, every account pays again.
    let block = |blocked| Op::SetBlocked { guest: anna, blocked };
    cafe.ledger.run_op(block(true), NOW + 60).unwrap();
    for card in ["2000000000015", "2000000000053", "2000000000060"] {
        assert_eq!(
            cafe.ledger
                .identify(card, ScanKind::Manual, NOW + 60)
                .map(|i| i.card.guest_id),
            Err(LoyaltyError::GuestBlocked),
            "{card}"
        );
    }
    cafe.ledger.run_op(block(false), NOW + 60).unwrap();
    assert_eq!(
        cafe.ledger
            .identify("2000000000053", ScanKind::Manual, NOW + 60)
            .unwrap()
            .card
            .guest_id,
        corporate
    );

    // The whole check returned: every account whole again, the accrual taken back.
    cafe.ledger.refund("r1", "p1", None, NOW + 120).unwrap();
    assert_eq!(
        [cafe.balance(anna), cafe.balance(corporate), cafe.balance(family)],
        [rub(500), rub(300), rub(100)]
    );
}

/// One hold of three refused (a blocked guest, an amount over what the account has): the
/// cashier learns which card and why, and no hold is left for the other two.
fn one_hold_of_three_refused_holds_nothing<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let (anna, ivan, olga) = (cafe.anna, cafe.ivan, cafe.olga);
    assert_eq!(
        cafe.hold("h1", anna, &[(anna, 100), (ivan, 100), (olga, 250)], 1_000),
        Err(refused(
            3,
            LoyaltyError::OverMaximum {
                requested: rub(250),
                max: rub(200),
            }
        ))
    );
    cafe.ledger
        .run_op(
            Op::SetBlocked {
                guest: ivan,
                blocked: true,
            },
            NOW,
        )
        .unwrap();
    assert_eq!(
        cafe.hold("h2", anna, &[(anna, 100), (ivan, 100), (olga, 100)], 1_000),
        Err(refused(2, LoyaltyError::GuestBlocked))
    );
    assert_eq!(cafe.open_holds(), 0, "nothing held for the cards that were fine");
    assert_eq!(cafe.balances(), [rub(500), rub(300), rub(200)]);
    // Once the refused card is taken off, the others pay.
    cafe.pay("p1", anna, &[(anna, 100), (olga, 100)], 1_000);
    assert_eq!(cafe.balances(), [rub(440), rub(300), rub(100)]);
}

/// The sum of the amounts never exceeds the check's maximum (half of it here), though each
/// account alone could pay its part; the card that goes over is named with what is left.
fn the_sum_stays_within_the_checks_maximum<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let (anna, ivan, olga) = (cafe.anna, cafe.ivan, cafe.olga);
    assert_eq!(
        cafe.hold("h1", anna, &[(anna, 300), (ivan, 150), (olga, 100)], 1_000),
        Err(refused(
            3,
            LoyaltyError::OverMaximum {
                requested: rub(100),
                max: rub(50),
            }
        ))
    );
    assert_eq!(cafe.open_holds(), 0);
    // Exactly the maximum is fine.
    let receipts = cafe.pay("p1", anna, &[(anna, 300), (ivan, 150), (olga, 50)], 1_000);
    let spent: Vec<Kopecks> = receipts.iter().map(|r| r.spent).collect();
    assert_eq!(spent, [rub(300), rub(150), rub(50)]);
}

/// A commit refused for one card (more than its hold) writes nothing: every hold stays open
/// for the till to void, and no account is debited.
fn a_commit_refused_for_one_card_debits_no_one<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let (anna, ivan) = (cafe.anna, cafe.ivan);
    let holds = cafe.hold("h1", anna, &[(anna, 100), (ivan, 100)], 1_000).unwrap();
    let ids: Vec<i64> = holds.iter().map(|h| h.as_ref().unwrap().hold_id).collect();
    let payments = vec![
        CardPayment {
            guest: anna,
            hold: Some(ids[0]),
            spent: rub(100),
        },
        CardPayment {
            guest: ivan,
            hold: Some(ids[1]),
            spent: rub(150),
        },
    ];
    assert_eq!(
        cafe.commit("p1", anna, payments, 1_000),
        Err(refused(
            2,
            LoyaltyError::CommitOverHold {
                requested: rub(150),
                held: rub(100),
            }
        ))
    );
    assert_eq!(cafe.open_holds(), 2);
    assert_eq!(cafe.balances(), [rub(500), rub(300), rub(200)]);
    for (index, id) in ids.iter().enumerate() {
        cafe.ledger.void_hold(&format!("v{index}"), *id, NOW + 60).unwrap();
    }
    assert_eq!(cafe.open_holds(), 0);
}

/// Returns after a multi-card payment: a partial return gives each account back its share of
/// the bonuses on the returned part and takes back the owner's accrual on it; the rest, returned
/// after, restores every balance exactly; the preview says the same; a third return, and a
/// return of one account's share alone, are refused.
fn returns_after_a_multi_card_payment<L: Backing>() {
    let mut cafe = Cafe::<L>::new();
    let (anna, ivan, olga) = (cafe.anna, cafe.ivan, cafe.olga);
    cafe.pay("p1", anna, &[(anna, 200), (ivan, 200), (olga, 100)], 1_000);
    // 500 ₽ paid with money: 25 ₽ to Анна.
    assert_eq!(cafe.balances(), [rub(325), rub(100), rub(100)]);

    let preview = cafe.ledger.refund_preview("p1", Some(rub(400)), NOW + 60).unwrap();
    let partial = cafe.ledger.refund("r1", "p1", Some(rub(400)), NOW + 60).unwrap();
    assert_eq!(preview, partial, "the preview says what the return does");
    assert_eq!(
        (partial.spend_returned, partial.accrual_taken, partial.others_returned),
        (rub(80), rub(10), rub(120))
    );
    assert_eq!(cafe.balances(), [rub(395), rub(180), rub(140)]);
    let again = cafe.ledger.refund("r1", "p1", Some(rub(400)), NOW + 60).unwrap();
    assert_eq!(again, partial, "a repeat of the return changes nothing");
    assert_eq!(cafe.balances(), [rub(395), rub(180), rub(140)]);

    let share = share_key("p1", ivan);
    assert_eq!(
        cafe.ledger.refund("r-share", &share, None, NOW + 60),
        Err(LoyaltyError::UnknownPayment),
        "an account's share is returned with its check, not alone"
    );

    let rest = cafe.ledger.refund("r2", "p1", None, NOW + 120).unwrap();
    assert!(rest.full);
    assert_eq!(rest.others_returned, rub(180));
    assert_eq!(
        cafe.balances(),
        [rub(500), rub(300), rub(200)],
        "every account whole again"
    );
    assert!(matches!(
        cafe.ledger.refund("r3", "p1", None, NOW + 180),
        Err(LoyaltyError::RefundOverPayment { .. })
    ));
    let checks = cafe
        .ledger
        .checks(
            &CheckFilter {
                today: true,
                ..CheckFilter::default()
            },
            NOW + 180,
        )
        .unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].left(), Kopecks::ZERO);
}

on_both_ledgers!(
    two_guests_pay_one_check,
    the_accrual_goes_to_the_owner_chosen,
    cards_of_one_guest_are_one_account,
    three_accounts_of_one_guest,
    one_hold_of_three_refused_holds_nothing,
    the_sum_stays_within_the_checks_maximum,
    a_commit_refused_for_one_card_debits_no_one,
    returns_after_a_multi_card_payment,
);
