//! The demo programme a new till starts with, so the cashier screen can be tried at once, on
//! either store (the embedded till and `serve`'s tests alike). The README lists these guests and
//! codes: change both together.

use super::engine::{self, LedgerTx};
use super::rules::{AccrualBasis, NewGroup, OpKind, ProgramSettings};
use crate::domain::{IdentifierKind, UnixSeconds};
use crate::money::Kopecks;

const DAY: i64 = 86_400;

struct DemoGroup {
    name: &'static str,
    rank: i64,
    discount_bp: i64,
    accrual_bp: i64,
    spend_threshold: Kopecks,
    never_downgrade: bool,
    daily_ops_limit: i64,
    daily_spend_limit: Kopecks,
}

/// Staff are assigned by hand: a threshold no spend reaches, and rank 0 keeps the group out
/// of moves altogether.
const UNREACHABLE: Kopecks = Kopecks(i64::MAX / 4);

const GROUPS: [DemoGroup; 4] = [
    DemoGroup {
        name: "Гость",
        rank: 1,
        discount_bp: 0,
        accrual_bp: 500,
        spend_threshold: Kopecks(0),
        never_downgrade: false,
        daily_ops_limit: 20,
        daily_spend_limit: Kopecks(300_000),
    },
    DemoGroup {
        name: "Постоянный",
        rank: 2,
        discount_bp: 500,
        accrual_bp: 700,
        spend_threshold: Kopecks(1_000_000),
        never_downgrade: false,
        daily_ops_limit: 20,
        daily_spend_limit: Kopecks(0),
    },
    DemoGroup {
        name: "VIP",
        rank: 3,
        discount_bp: 1000,
        accrual_bp: 1000,
        spend_threshold: Kopecks(5_000_000),
        never_downgrade: true,
        daily_ops_limit: 0,
        daily_spend_limit: Kopecks(0),
    },
    DemoGroup {
        name: "Сотрудники",
        rank: 0,
        discount_bp: 2000,
        accrual_bp: 0,
        spend_threshold: UNREACHABLE,
        never_downgrade: false,
        daily_ops_limit: 2,
        daily_spend_limit: Kopecks(50_000),
    },
];

struct DemoGuest {
    name: &'static str,
    phone: &'static str,
    /// Index into [`GROUPS`].
    group: usize,
    balance: Kopecks,
    identifiers: &'static [(IdentifierKind, &'static str)],
}

const GUESTS: [DemoGuest; 5] = [
    DemoGuest {
        name: "Анна Смирнова",
        phone: "+79161234567",
        group: 0,
        balance: Kopecks(35_000),
        identifiers: &[
            (IdentifierKind::ManualCode, "100001"),
            (IdentifierKind::CardBarcode, "2000000000015"),
            (IdentifierKind::MagneticStripe, "7001000010"),
            (IdentifierKind::AppQr, "GMB-00001234"),
        ],
    },
    DemoGuest {
        name: "Иван Петров",
        phone: "+79031112233",
        group: 1,
        balance: Kopecks(125_000),
        identifiers: &[
            (IdentifierKind::ManualCode, "100002"),
            (IdentifierKind::AppQr, "GMB-00005678"),
        ],
    },
    DemoGuest {
        name: "Мария Козлова",
        phone: "+79265554433",
        group: 2,
        balance: Kopecks(500_000),
        identifiers: &[(IdentifierKind::ManualCode, "100003")],
    },
    DemoGuest {
        name: "Олег Новиков",
        phone: "+79857778899",
        group: 0,
        balance: Kopecks(0),
        identifiers: &[(IdentifierKind::ManualCode, "100004")],
    },
    DemoGuest {
        name: "Пётр Соколов",
        phone: "+79990001122",
        group: 3,
        balance: Kopecks(80_000),
        identifiers: &[(IdentifierKind::ManualCode, "100005")],
    },
];

/// Анна's further bonus account: its name, its card's code and its balance.
const ANNA_CORPORATE_ACCOUNT: (&str, &str, Kopecks) = ("Корпоративный", "700001", Kopecks(50_000));

/// (code, index into [`GUESTS`], gift, points).
const GIFT_CODES: [(&str, usize, &str, Kopecks); 3] = [
    ("G100001", 0, "Капучино", Kopecks(15_000)),
    ("G100002", 1, "Десерт дня", Kopecks(25_000)),
    ("G100003", 0, "Круассан", Kopecks(12_000)),
];

/// (name, description, starts, ends) in days from now.
const PROMOTIONS: [(&str, &str, i64, i64); 3] = [
    ("Счастливые часы", "Скидка 20% на напитки с 15:00 до 17:00", -1, 30),
    (
        "Двойные бонусы по понедельникам",
        "Начисление ×2 по понедельникам",
        -7,
        60,
    ),
    ("Новогоднее меню", "Праздничные блюда и напитки", -60, -30),
];

/// Past visits (index into [`GUESTS`], amount due, days ago): the regulars' spending within the
/// group period, so that they keep their groups until the period has passed instead of
/// dropping to the entry group on their first demo payment.
const PAST_VISITS: [(usize, Kopecks, i64); 2] = [(1, Kopecks(1_200_000), 30), (2, Kopecks(6_000_000), 30)];

/// Anna's progress on the coffee card, so the stamp display has something to show.
const ANNA_COFFEE_STAMPS: i64 = 4;

/// Creates the demo programme in organisation `org` when the store has no guests; true when it did.
pub async fn seed<T: LedgerTx>(tx: &mut T, org: &str, now: UnixSeconds) -> Result<bool, T::Error> {
    if tx.has_guests().await? {
        return Ok(false);
    }
    let program = ProgramSettings {
        name: "GetMeBack".to_string(),
        max_check_bp: 5000,
        spend_step: Kopecks(100),
        hold_ttl_secs: 900,
        group_period_days: 365,
        utc_offset_minutes: 180,
        accrual_basis: AccrualBasis::PaidPart,
        // The demo shows «Новый гость» with a welcome bonus; a real programme starts with both off.
        welcome_bonus: Kopecks(10_000),
        till_enrolment: true,
    };
    engine::set_program(tx, engine::ProgramScope::Everyone, &program).await?;
    let mut group_ids = Vec::with_capacity(GROUPS.len());
    for group in &GROUPS {
        group_ids.push(engine::add_group(tx, &new_group(group)).await?);
    }
    let mut guest_ids = Vec::with_capacity(GUESTS.len());
    for (number, demo) in (1..).zip(&GUESTS) {
        let guest = engine::add_guest(tx, org, demo.name, Some(demo.phone), group_ids[demo.group], now).await?;
        for &(kind, value) in demo.identifiers {
            engine::add_identifier(tx, guest, kind, value).await?;
        }
        // The starting balance is a manual credit so the ledger adds up like any other.
        if demo.balance > Kopecks::ZERO {
            let op_key = format!("demo-seed-{number}");
            engine::manual(
                tx,
                None,
                &op_key,
                guest,
                OpKind::ManualCredit,
                demo.balance,
                "demo balance",
                now,
            )
            .await?;
        }
        guest_ids.push(guest);
    }
    // Анна's corporate account: a second balance of hers, paid from with its own card.
    let (name, code, balance) = ANNA_CORPORATE_ACCOUNT;
    let corporate = engine::open_account(tx, None, guest_ids[0], name, now).await?;
    engine::add_identifier(tx, corporate, IdentifierKind::ManualCode, code).await?;
    engine::manual(
        tx,
        None,
        "demo-seed-account",
        corporate,
        OpKind::ManualCredit,
        balance,
        "demo balance",
        now,
    )
    .await?;
    for (number, (guest, amount_due, days_ago)) in (1..).zip(PAST_VISITS) {
        let op_key = format!("demo-visit-{number}");
        let at = now - days_ago * DAY;
        tx.insert_past_visit(&op_key, guest_ids[guest], amount_due, at).await?;
        let visit = super::report::Figures {
            checks: 1,
            revenue: amount_due,
            ..Default::default()
        };
        engine::book_checks(tx, org, &op_key, at, &visit).await?;
    }
    for (code, owner, gift, points) in GIFT_CODES {
        engine::add_gift_code(tx, guest_ids[owner], code, gift, points).await?;
    }
    let coffee = tx.insert_stamp_card("Кофейная карта", 6, "Кофе в подарок").await?;
    tx.insert_stamp_card("Десертная карта", 5, "Десерт в подарок").await?;
    tx.set_stamps(guest_ids[0], coffee, ANNA_COFFEE_STAMPS).await?;
    for (name, description, starts, ends) in PROMOTIONS {
        tx.insert_promotion(name, description, now + starts * DAY, now + ends * DAY)
            .await?;
    }
    tracing::info!("seeded the demo loyalty programme");
    Ok(true)
}

fn new_group(g: &DemoGroup) -> NewGroup {
    NewGroup {
        name: g.name.to_string(),
        rank: g.rank,
        discount_bp: g.discount_bp,
        accrual_bp: g.accrual_bp,
        spend_threshold: g.spend_threshold,
        never_downgrade: g.never_downgrade,
        daily_ops_limit: g.daily_ops_limit,
        daily_spend_limit: g.daily_spend_limit,
    }
}
