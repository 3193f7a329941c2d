//! Benchmarks of the guests' CSV import and of the guests page's search (ignored by default;
//! `bash scripts/import-bench.sh` runs them in release with PostgreSQL started). Nothing large
//! is kept: the files and databases are generated in temporary places and dropped.
//!
//! - `import_100k`: 100 000 generated rows (a phone, a card, a balance each) read, checked (the
//!   preview) and imported through the engine, on SQLite and on PostgreSQL; the times printed.
//! - `search_1m`: 1 000 000 guests (a phone and a card each) loaded in bulk straight into the
//!   tables, then the guests page's search as the page runs it (`db::search_guests`): by name
//!   prefix, phone, card, and the list paged deep (a page starts after the guest the page before
//!   ended on, as its «Дальше» link says); p50/p95 printed per store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::backoffice::db::{self, Val};
use loyalty_till::domain::IdentifierKind;
use loyalty_till::ledger::NewGroup;
use loyalty_till::loyalty::engine::Op;
use loyalty_till::loyalty::import;
use loyalty_till::loyalty::rules;
use loyalty_till::money::Kopecks;
use loyalty_till::server::pg::PgStore;
use loyalty_till::server::store::{Caller, SqliteStore, Store};
use std::time::{Duration, Instant};

const ORG: &str = "bench";
const SURNAMES: [&str; 20] = [
    "Иванов",
    "Петров",
    "Сидоров",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The stores to measure: a fresh SQLite file, and a fresh schema on `LOYALTY_TEST_PG_URL`.
async fn stores(dir: &tempfile::TempDir, bench: &str) -> Vec<(&'static str, Store)> {
    let mut out = vec![(
        "SQLite",
        Store::new(SqliteStore::open(&dir.path().join("bench.sqlite")).unwrap()),
    )];
    if let Some(url) = server_support::pg_url() {
        let schema = format!("bench_{bench}_{}", std::process::id());
        out.push((
            "PostgreSQL",
            Store::new(PgStore::connect(&url, Some(&schema), 4).await.unwrap()),
        ));
    }
    out
}

/// Leaves nothing behind on a PostgreSQL that outlives the bench (the SQLite file goes with its
/// temporary folder).
async fn drop_bench_schema(name: &str, store: &Store) {
    if name == "PostgreSQL" {
        db::execute(
            store,
            "DO $$ BEGIN EXECUTE 'DROP SCHEMA ' || current_schema() || ' CASCADE'; END $$",
            vec![],
        )
        .await
        .unwrap();
    }
}

async fn group(store: &Store) -> i64 {
    store
        .add_group(&NewGroup {
            name: "Гость".to_string(),
            rank: 1,
            discount_bp: 0,
            accrual_bp: 500,
            spend_threshold: Kopecks(0),
            never_downgrade: false,
            daily_ops_limit: 0,
            daily_spend_limit: Kopecks(0),
        })
        .await
        .unwrap()
}

/// 100 000 rows as an owner's file would have them: `;`, a header, Russian names, phones in
/// several spellings, a card each, balances in roubles and kopecks (every 3rd row zero).
fn generated_file(rows: usize) -> Vec<u8> {
    let mut text = import::HEADER_RU.join(";");
    text.push_str("\r\n");
    for i in 0..rows {
        let phone = if i % 2 == 0 {
            format!(
                "+7 9{:02} {:03}-{:02}-{:02}",
                i / 10_000_000 % 100,
                i / 10_000 % 1000,
                i / 100 % 100,
                i % 100
            )
        } else {
            format!("89{:02}{:07}", i / 10_000_000 % 100, i % 10_000_000)
        };
        let balance = if i % 3 == 0 {
            String::new()
        } else {
            format!("{},{:02}", i % 5000, i % 100)
        };
        text.push_str(&format!(
            "{} Гость {i};{phone};CARD{i:09};card_barcode;Гость;{balance}\r\n",
            SURNAMES[i % SURNAMES.len()]
        ));
    }
    text.into_bytes()
}

#[test]
#[ignore = "a benchmark: bash scripts/import-bench.sh"]
fn import_100k() {
    const BENCH: &str = "import";
    let rows = std::env::var("LOYALTY_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let file = generated_file(rows);
    println!("import: {rows} rows, {:.1} MB", file.len() as f64 / 1e6);
    let started = Instant::now();
    let read = import::read_file(&file);
    let parse = started.elapsed();
    assert!(
        read.rejected.is_empty(),
        "{:?}",
        &read.rejected[..read.rejected.len().min(5)]
    );
    assert_eq!(read.rows.len(), rows);
    println!("  read and checked row by row: {:.2} s", parse.as_secs_f64());
    let dir = tempfile::TempDir::new().unwrap();
    let rt = runtime();
    rt.block_on(async {
        for (name, store) in stores(&dir, BENCH).await {
            group(&store).await;
            let caller = Caller {
                org: ORG.to_string(),
                till: "backoffice".to_string(),
            };
            let op = |dry_run| Op::ImportGuests {
                op_key: caller.op("bench-import"),
                actor: "owner".to_string(),
                reason: "bench".to_string(),
                rows: read.rows.clone(),
                dry_run,
            };
            let started = Instant::now();
            let preview = store.run(&caller, op(true), 0).await.unwrap().into_import().unwrap();
            let checked = started.elapsed();
            assert!(preview.rejected.is_empty());
            let started = Instant::now();
            let done = store.run(&caller, op(false), 0).await.unwrap().into_import().unwrap();
            let imported = started.elapsed();
            assert_eq!(done.imported, rows);
            println!(
                "  {name}: preview check {:.2} s, import {:.2} s; with the file's reading {:.2} s in all (goal: under 30 s)",
                checked.as_secs_f64(),
                imported.as_secs_f64(),
                (parse + checked + imported).as_secs_f64()
            );
            let count = db::query(&store, "SELECT COUNT(*) FROM guests WHERE org = $1", vec![ORG.into()])
                .await
                .unwrap()[0][0]
                .int();
            assert_eq!(count as usize, rows);
            store.check_invariants().await.unwrap();
            drop_bench_schema(name, &store).await;
        }
    });
}

/// 1 000 000 guests straight into the tables (a phone and a card each), in one statement per
/// table: the bench measures the search, not the loading.
const LOAD_SQLITE: [&str; 3] = [
    // SQLite numbers `$n` in the order they first appear: the group ($1) is named first.
    "WITH RECURSIVE g(id) AS (SELECT $1), n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2),
          s(k, s) AS (VALUES (0,'Иванов'),(1,'Петров'),(2,'Сидоров'),(3,'Смирнов'),(4,'Кузнецов'),(5,'Попов'),
                             (6,'Васильев'),(7,'Соколов'),(8,'Михайлов'),(9,'Новиков'),(10,'Фёдоров'),(11,'Морозов'),
                             (12,'Волков'),(13,'Алексеев'),(14,'Лебедев'),(15,'Семёнов'),(16,'Егоров'),(17,'Павлов'),
                             (18,'Козлов'),(19,'Степанов'))
     INSERT INTO guests (id, org, name, phone, group_id, created_at)
     SELECT 1000000 + i, 'bench', (SELECT s FROM s WHERE k = i % 20) || ' Гость ' || i, '+79' || printf('%09d', i), (SELECT id FROM g), 0 FROM n",
    "INSERT INTO identifiers (org, kind, value, guest_id) SELECT 'bench', 'phone', phone, id FROM guests WHERE org = 'bench'",
    "INSERT INTO identifiers (org, kind, value, guest_id)
     SELECT 'bench', 'card_barcode', 'CARD' || printf('%09d', id - 1000000), id FROM guests WHERE org = 'bench'",
];

const LOAD_PG: [&str; 3] = [
    "INSERT INTO guests (id, org, name, phone, group_id, created_at)
     SELECT 1000000 + i, 'bench',
            (ARRAY['Иванов','Петров','Сидоров','Смирнов','Кузнецов','Попов','Васильев','Соколов','Михайлов','Новиков',
                   'Фёдоров','Морозов','Волков','Алексеев','Лебедев','Семёнов','Егоров','Павлов','Козлов','Степанов'])[i % 20 + 1]
            || ' Гость ' || i, '+79' || lpad(i::TEXT, 9, '0'), $1, 0
     FROM generate_series(1, $2::BIGINT) AS i",
    "INSERT INTO identifiers (org, kind, value, guest_id) SELECT 'bench', 'phone', phone, id FROM guests WHERE org = 'bench'",
    "INSERT INTO identifiers (org, kind, value, guest_id)
     SELECT 'bench', 'card_barcode', 'CARD' || lpad((id - 1000000)::TEXT, 9, '0'), id FROM guests WHERE org = 'bench'",
];

fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort_unstable();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1000.0;
    (at(0.50), at(0.95))
}

/// One search as the guests page runs it for the text typed `q`, starting after the guest `after`
/// (the «Дальше» link of the page before).
async fn page_search(store: &Store, q: &str, after: Option<i64>) -> usize {
    let code =
        (!q.is_empty()).then(|| rules::identifier_value(IdentifierKind::Phone, q).unwrap_or_else(|_| q.to_string()));
    let cursor = after.map_or(db::Cursor::First, db::Cursor::After);
    db::search_guests(store, ORG, code.as_deref(), q, cursor, 51)
        .await
        .unwrap()
        .len()
}

/// The guest a page `page` (of 50, in name order, names starting with `prefix`) starts after:
/// read once with OFFSET outside the measurement, as the «Дальше» links would have led there.
async fn start_of_page(store: &Store, prefix: &str, page: i64) -> Option<i64> {
    if page == 0 {
        return None;
    }
    let upper = format!("{prefix}\u{10FFFF}");
    let rows = db::query(
        store,
        "SELECT id FROM guests WHERE org = $1 AND name >= $2 AND name < $3 ORDER BY name, id LIMIT 1 OFFSET $4",
        vec![ORG.into(), prefix.into(), upper.into(), Val::Int(page * 50 - 1)],
    )
    .await
    .unwrap();
    Some(rows[0][0].int())
}

#[test]
#[ignore = "a benchmark: bash scripts/import-bench.sh"]
fn search_1m() {
    const BENCH: &str = "search";
    let guests: i64 = std::env::var("LOYALTY_BENCH_GUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let samples = 200;
    let dir = tempfile::TempDir::new().unwrap();
    let rt = runtime();
    rt.block_on(async {
        for (name, store) in stores(&dir, BENCH).await {
            let group = group(&store).await;
            let started = Instant::now();
            let load = if name == "SQLite" { LOAD_SQLITE } else { LOAD_PG };
            db::execute(&store, load[0], vec![Val::Int(group), Val::Int(guests)])
                .await
                .unwrap();
            db::execute(&store, load[1], vec![]).await.unwrap();
            db::execute(&store, load[2], vec![]).await.unwrap();
            db::execute(&store, "ANALYZE", vec![]).await.unwrap();
            println!(
                "search, {name}: {guests} guests loaded in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            let pick = move |k: i64| (k * 7919) % guests + 1;
            type Case = (&'static str, Box<dyn Fn(i64) -> (String, i64)>);
            let cases: Vec<Case> = vec![
                (
                    "name prefix (4 letters)",
                    Box::new(|k| (SURNAMES[(k % 20) as usize].chars().take(4).collect(), 0)),
                ),
                (
                    "name prefix (whole name)",
                    Box::new(move |k| {
                        let i = pick(k);
                        (format!("{} Гость {i}", SURNAMES[(i % 20) as usize]), 0)
                    }),
                ),
                (
                    "phone (+7 9XX XXX-XX-XX)",
                    Box::new(move |k| {
                        let d = format!("{:09}", pick(k));
                        (format!("+7 9{} {}-{}-{}", &d[..2], &d[2..5], &d[5..7], &d[7..]), 0)
                    }),
                ),
                ("card", Box::new(move |k| (format!("CARD{:09}", pick(k)), 0))),
                ("no match", Box::new(|k| (format!("Нет такого {k}"), 0))),
                ("list, page 1", Box::new(|_| (String::new(), 0))),
                ("list, page 1 000", Box::new(|_| (String::new(), 1_000))),
                (
                    "list, page 10 000 (500 000th guest)",
                    Box::new(|_| (String::new(), 10_000)),
                ),
                (
                    "name prefix, page 100",
                    Box::new(|k| (SURNAMES[(k % 20) as usize].to_string(), 100)),
                ),
            ];
            for (label, case) in &cases {
                let mut times = Vec::with_capacity(samples);
                let mut found = 0;
                let runs = if label.contains("10 000") {
                    samples / 10
                } else {
                    samples
                };
                for k in 0..runs as i64 {
                    let (q, page) = case(k);
                    let after = start_of_page(&store, &q, page).await;
                    let started = Instant::now();
                    found += page_search(&store, &q, after).await;
                    times.push(started.elapsed());
                }
                let (p50, p95) = percentiles(times);
                println!(
                    "  {name} {label:<38} p50 {p50:>8.2} ms  p95 {p95:>8.2} ms  ({runs} runs, {:.1} rows each)",
                    found as f64 / runs as f64
                );
            }
            drop_bench_schema(name, &store).await;
        }
    });
}
