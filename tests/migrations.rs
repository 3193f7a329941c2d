//! Schema versions, from every earlier released schema to this build's, on SQLite and on
//! PostgreSQL: the data stays, the ledger still proves consistent, an operation made before the
//! upgrade repeated after it gets its first answer, and organisations own their codes and
//! programme afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::domain::{CheckInfo, IdentifierKind, LoyaltyError, ScanKind};
use loyalty_till::ledger::{Ledger, NewGroup, ProgramSettings};
use loyalty_till::loyalty::engine::Op;
use loyalty_till::loyalty::migrate::{Dialect, LATEST, MIGRATIONS};
use loyalty_till::loyalty::rules::AccrualBasis;
use loyalty_till::money::Kopecks;
use loyalty_till::server::pg::PgStore;
use loyalty_till::server::store::{Caller, SqliteStore, Store};
use server_support::pg_url;
use tempfile::TempDir;

const NOW: i64 = 1_741_608_000;

fn check(subtotal: i64) -> CheckInfo {
    CheckInfo {
        subtotal: Kopecks(subtotal),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    }
}

/// The data an earlier till left, in the shape of versions 2 and 3 (the same rows in both
/// dialects): a guest with a card and a gift code, an open hold, a payment on a committed hold,
/// a manual credit and a void. The Windows proof upgrades the same file under Wine.
const OLD_ROWS: &str = include_str!("../installer/fixtures/previous-release/guests-v3.sql");

/// After the upgrade: the repeats of the old writes answer as the first time did, the codes
/// still find the guest, and new writes work.
async fn the_old_data_still_answers(store: &Store) {
    let till = Caller {
        org: "cafe".to_string(),
        till: "t".to_string(),
    };
    store.check_invariants().await.unwrap();
    let receipt = store
        .commit(&till, "pay-1", 1, Some(1), Kopecks(500), &check(20_000), NOW)
        .await
        .unwrap();
    assert_eq!(
        (receipt.spent, receipt.accrued, receipt.balance_after),
        (Kopecks(500), Kopecks(975), Kopecks(10_475))
    );
    let hold = store
        .hold(&till, "hold-3", 1, Kopecks(200), &check(1_000), NOW)
        .await
        .unwrap();
    assert_eq!((hold.hold_id, hold.amount), (3, Kopecks(200)));
    store.void(&till, "void-2", 2, NOW).await.unwrap();
    assert_eq!(
        store.credit("cafe/t:credit-1", 1, Kopecks(10_000), NOW).await.unwrap(),
        Kopecks(10_000)
    );
    // An old operation id with another kind of request is refused.
    assert_eq!(
        store.void(&till, "pay-1", 3, NOW).await,
        Err(LoyaltyError::OperationIdConflict)
    );
    let found = store.identify(&till, "0001", ScanKind::Barcode, NOW).await.unwrap();
    assert_eq!(found.card.name, "Anna");
    let found = store.identify(&till, "G1", ScanKind::Qr, NOW).await.unwrap();
    assert_eq!(found.gift.unwrap().name, "Coffee");
    store.void(&till, "void-3", 3, NOW).await.unwrap();
    let paid = store
        .commit(&till, "pay-2", 1, None, Kopecks::ZERO, &check(10_000), NOW)
        .await
        .unwrap();
    assert_eq!(paid.accrued, Kopecks(500));
    // Enrolment at the till (version 10) starts off, with no welcome bonus; once the owner
    // allows it, a cashier enrols a guest and the bonus is credited.
    let enrol = Op::EnrolAtTill {
        op_key: till.op("enrol-1"),
        name: "Vera".to_string(),
        phone: "+7 916 555-11-22".to_string(),
        code: "0009".to_string(),
        kind: ScanKind::Barcode,
    };
    assert_eq!(
        store.run(&till, enrol.clone(), NOW).await,
        Err(LoyaltyError::EnrolmentOff)
    );
    let mut program = store
        .run(&till, Op::Program, NOW)
        .await
        .unwrap()
        .into_program()
        .unwrap();
    assert_eq!((program.welcome_bonus, program.till_enrolment), (Kopecks::ZERO, false));
    program.till_enrolment = true;
    program.welcome_bonus = Kopecks(5_000);
    store.set_org_program("cafe", &program).await.unwrap();
    let vera = store.run(&till, enrol, NOW).await.unwrap().into_id().unwrap();
    assert_eq!(
        store.guest_card(&till, vera, NOW).await.unwrap().balance,
        Kopecks(5_000)
    );
    store.check_invariants().await.unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_earlier_sqlite_version_upgrades_with_its_data() {
    // Version 1 lacks organisations and refunds; versions 2 and 3 are what tills released.
    for from in [2, 3] {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            for step in &MIGRATIONS[..from as usize] {
                conn.execute_batch(step.sql(Dialect::Sqlite)).unwrap();
            }
            conn.execute_batch(&format!("PRAGMA user_version = {from};")).unwrap();
            conn.execute_batch(&OLD_ROWS.replace("false", "0")).unwrap();
        }
        let store = Store::new(SqliteStore::open(&path).unwrap());
        runtime().block_on(the_old_data_still_answers(&store));
        let version: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, LATEST, "from version {from}");
    }
}

#[test]
fn a_postgres_database_of_the_released_shape_upgrades_with_its_data() {
    let Some(url) = pg_url() else {
        return;
    };
    let runtime = runtime();
    let schema = format!("mig_{}", std::process::id());
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        // What a server released before versions were recorded created at every start.
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema};
                 {} {OLD_ROWS}
                 SELECT setval(pg_get_serial_sequence(t, 'id'), 100)
                 FROM unnest(ARRAY['guest_groups', 'guests', 'holds', 'payments', 'operations']) AS t;",
                MIGRATIONS[0].sql(Dialect::Postgres)
            ))
            .await
            .unwrap();
        let store = Store::new(PgStore::connect(&url, Some(&schema), 2).await.unwrap());
        the_old_data_still_answers(&store).await;
        // A second start finds nothing to do.
        drop(store);
        let again = PgStore::connect(&url, Some(&schema), 1).await.unwrap();
        again.check_invariants().await.unwrap();
        let version: i64 = client
            .query_one(&format!("SELECT MAX(version) FROM {schema}.schema_version"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(version, LATEST);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    });
}

fn guest_group() -> NewGroup {
    NewGroup {
        name: "Guest".to_string(),
        rank: 1,
        discount_bp: 0,
        accrual_bp: 500,
        spend_threshold: Kopecks(0),
        never_downgrade: false,
        daily_ops_limit: 0,
        daily_spend_limit: Kopecks(0),
    }
}

/// Two cafes on one server both issue card 0001 and gift code G1, each till finds its own
/// guest, and each cafe has its own programme.
async fn organisations_own_codes_and_programmes(store: &Store) {
    let group = store.add_group(&guest_group()).await.unwrap();
    let mut guests = Vec::new();
    for org in ["cafe", "bistro"] {
        let guest = store.add_guest(org, org, None, group, NOW).await.unwrap();
        store
            .add_identifier(guest, IdentifierKind::CardBarcode, "0001")
            .await
            .unwrap();
        store.add_gift_code("G1", guest, org, Kopecks(100)).await.unwrap();
        store
            .credit(&format!("{org}-seed"), guest, Kopecks(100_000), NOW)
            .await
            .unwrap();
        guests.push(guest);
    }
    // The same card twice in one organisation is still refused.
    assert!(
        store
            .add_identifier(guests[0], IdentifierKind::CardBarcode, "0001")
            .await
            .is_err()
    );
    for (org, guest) in ["cafe", "bistro"].into_iter().zip(&guests) {
        let till = Caller {
            org: org.to_string(),
            till: "t".to_string(),
        };
        let found = store.identify(&till, "0001", ScanKind::Barcode, NOW).await.unwrap();
        assert_eq!((found.card.guest_id, found.card.name.as_str()), (*guest, org));
        let gift = store.identify(&till, "G1", ScanKind::Qr, NOW).await.unwrap();
        assert_eq!(gift.card.guest_id, *guest);
        let paid = store
            .commit(
                &till,
                "pay",
                *guest,
                None,
                Kopecks::ZERO,
                &CheckInfo {
                    subtotal: Kopecks(10_000),
                    gift_codes: vec!["G1".to_string()],
                    lines: Vec::new(),
                },
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(paid.accrued, Kopecks(500));
    }
    // The serve flag's hold time is for organisations to come; one cafe changes its programme.
    store.set_hold_ttl(60).await.unwrap();
    let bistro = Caller {
        org: "bistro".to_string(),
        till: "t".to_string(),
    };
    let cafe = Caller {
        org: "cafe".to_string(),
        till: "t".to_string(),
    };
    let held = store
        .hold(&cafe, "h", guests[0], Kopecks(100), &check(10_000), NOW)
        .await
        .unwrap();
    assert_eq!(
        held.expires_at,
        NOW + 900,
        "an existing organisation keeps its hold time"
    );
    let tight = ProgramSettings {
        name: "Bistro".to_string(),
        max_check_bp: 1_000,
        spend_step: Kopecks(100),
        hold_ttl_secs: 120,
        group_period_days: 30,
        utc_offset_minutes: 180,
        accrual_basis: AccrualBasis::PaidPart,
        welcome_bonus: Kopecks::ZERO,
        till_enrolment: false,
    };
    store.set_org_program("bistro", &tight).await.unwrap();
    let quote = store.calculate(&bistro, guests[1], &check(50_000), NOW).await.unwrap();
    assert_eq!(quote.max_spend, Kopecks(5_000), "10 % of the bistro's check");
    let quote = store.calculate(&cafe, guests[0], &check(50_000), NOW).await.unwrap();
    assert_eq!(quote.max_spend, Kopecks(50_000), "the cafe's programme is unchanged");
    let held = store
        .hold(&bistro, "h", guests[1], Kopecks(100), &check(10_000), NOW)
        .await
        .unwrap();
    assert_eq!(held.expires_at, NOW + 120);
    let newcomer = store.add_guest("bar", "bar", None, group, NOW).await.unwrap();
    store.credit("bar-seed", newcomer, Kopecks(1_000), NOW).await.unwrap();
    let bar = Caller {
        org: "bar".to_string(),
        till: "t".to_string(),
    };
    let held = store
        .hold(&bar, "h", newcomer, Kopecks(100), &check(10_000), NOW)
        .await
        .unwrap();
    assert_eq!(
        held.expires_at,
        NOW + 60,
        "a new organisation starts with the serve flag's hold time"
    );
    store.check_invariants().await.unwrap();
}

#[test]
fn organisations_own_their_codes_and_programme_on_sqlite() {
    let dir = TempDir::new().unwrap();
    let store = Store::new(SqliteStore::open(&dir.path().join("orgs.sqlite")).unwrap());
    runtime().block_on(organisations_own_codes_and_programmes(&store));
    // The embedded till's ledger API agrees.
    let ledger = Ledger::open(&dir.path().join("orgs.sqlite")).unwrap();
    ledger.check_invariants().unwrap();
}

#[test]
fn organisations_own_their_codes_and_programme_on_postgres() {
    let dir = TempDir::new().unwrap();
    let Some(store) = server_support::new_store(server_support::Db::Postgres, &dir, 2) else {
        return;
    };
    let runtime = runtime();
    runtime.block_on(async {
        let store = store.await.unwrap();
        organisations_own_codes_and_programmes(&store).await;
    });
}

/// The guest page, a contact edit and the export read a guest's identifiers by guest id: on a
/// million guests that must be an index search, not a scan of every identifier.
#[test]
fn a_guests_identifiers_are_found_through_an_index() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("ledger.sqlite");
    drop(Ledger::open(&path).unwrap());
    let db = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "EXPLAIN QUERY PLAN SELECT kind, value FROM identifiers WHERE org = 'cafe' AND guest_id = 7",
        "EXPLAIN QUERY PLAN DELETE FROM identifiers WHERE guest_id = 7 AND kind = 'phone'",
    ] {
        let plan: Vec<String> = db
            .prepare(sql)
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX identifiers_by_guest")),
            "{sql}: {plan:?}"
        );
    }
}
