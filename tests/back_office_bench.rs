//! The back office measured over HTTP on a large ledger (ignored by default;
//! `bash scripts/back-office-bench.sh` runs it in release with PostgreSQL started). Nothing large is
//! kept: the databases are generated in temporary places and dropped.
//!
//! On SQLite and on PostgreSQL: 1 000 000 guests (a phone and a card each) and 10 000 000 balance
//! operations in the ledger's real shape (4 800 000 payments over 90 days on four tills, each with
//! its spend and its accrual; every 24th payment returned, the return giving the spend back and
//! taking the accrual back) are loaded in bulk straight into the tables. Then the real back
//! office (the server's router, signed in as an owner) is asked over HTTP with a real client:
//! the guests' search by phone, card and name prefix, a guest's page with its history, and the
//! report for the last 30 days; the times are printed against the goals (search p95 ≤ 50 ms,
//! guest page p95 ≤ 100 ms, the 30-day report ≤ 1 s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::backoffice::auth::hash_password;
use loyalty_till::backoffice::db::{self, Role, Val, save_user};
use loyalty_till::ledger::NewGroup;
use loyalty_till::money::Kopecks;
use loyalty_till::server::api::ServerClock;
use loyalty_till::server::store::Store;
use loyalty_till::server::{ServeOptions, ServerHandle};
use server_support::Db;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORG: &str = "bench";
const PASSWORD: &str = "bench password";
/// The bench's "now": 2025-03-10 12:00 UTC; the ledger's 90 days end here.
const NOW: i64 = 1_741_608_000;
const DAYS: i64 = 90;
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

fn env_or(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The statements that fill the ledger: `$1` the group, `$2` guests, `$3` payments (every payment
/// is two operations, every 24th one returned is two more). A guest is `1000000 + i`; payment `i`
/// belongs to guest `1000000 + (i * 7919) % guests + 1`, was taken on till `i % 4 + 1` at a
/// moment that grows with `i` over the 90 days (the ledger is appended to in time order), spends
/// 1..50 ₽ of bonuses and accrues 5 % of what was paid (always more than it spent, so no balance
/// goes below zero).
fn load(db: Db) -> Vec<String> {
    let sqlite = matches!(db, Db::Sqlite);
    let (series, pad, names) = if sqlite {
        (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {N})",
            "printf('%09d', {X})",
            "(SELECT s FROM s WHERE k = i % 20)",
        )
    } else {
        (
            "WITH n(i) AS (SELECT generate_series(1, {N}::BIGINT))",
            "lpad(({X})::TEXT, 9, '0')",
            "(ARRAY[{ARR}])[i % 20 + 1]",
        )
    };
    let arr = SURNAMES.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(",");
    let values = SURNAMES
        .iter()
        .enumerate()
        .map(|(k, s)| format!("({k},'{s}')"))
        .collect::<Vec<_>>()
        .join(",");
    let names = names.replace("{ARR}", &arr);
    let surnames_cte = if sqlite {
        format!(", s(k, s) AS (VALUES {values})")
    } else {
        String::new()
    };
    let guests = env_or("LOYALTY_BENCH_GUESTS", 1_000_000);
    let payments = env_or("LOYALTY_BENCH_OPS", 10_000_000) * 24 / 50;
    let span = DAYS * 86_400;
    let series = |n: i64| series.replace("{N}", &n.to_string());
    let pad = |x: &str| pad.replace("{X}", x);
    // Payment i's moment, amounts and guest, as SQL over `i`.
    let at = format!("({NOW} - {span} + i * {span} / {payments})");
    let spent = "(100 * (i % 50 + 1))";
    let subtotal = "(120000 + (i % 4000) * 100)";
    let due = format!("({subtotal} - {spent})");
    let accrued = format!("({due} / 20)");
    let guest = format!("(1000000 + (i * 7919) % {guests} + 1)");
    vec![
        // Guests joined over the last year: about a twelfth of them in the report's 30 days.
        format!(
            "{}{surnames_cte}
             INSERT INTO guests (id, org, name, phone, group_id, balance, created_at)
             SELECT 1000000 + i, '{ORG}', {names} || ' Гость ' || i, '+79' || {}, {}, (i % 1000) * 100,
                    {NOW} - (i * 37 % 365) * 86400 - i % 86400
             FROM n",
            series(guests),
            pad("i"),
            "$1",
        ),
        format!("INSERT INTO identifiers (org, kind, value, guest_id) SELECT '{ORG}', 'phone', phone, id FROM guests WHERE org = '{ORG}'"),
        format!(
            "INSERT INTO identifiers (org, kind, value, guest_id)
             SELECT '{ORG}', 'card_barcode', 'CARD' || {}, id FROM guests WHERE org = '{ORG}'",
            pad("id - 1000000")
        ),
        format!(
            "{}
             INSERT INTO payments (id, op_id, guest_id, spent, subtotal, gift_codes, amount_due, accrued, balance_after, at)
             SELECT i, '{ORG}/till-' || (i % 4 + 1) || ':pay-' || i, {guest}, {spent}, {subtotal}, '', {due}, {accrued},
                    (i % 1000) * 100, {at}
             FROM n",
            series(payments)
        ),
        format!(
            "INSERT INTO operations (id, guest_id, kind, amount, balance_after, note, at, payment_id)
             SELECT 2 * id - 1, guest_id, 'spend', -spent, balance_after + accrued, '', at, id FROM payments
             UNION ALL
             SELECT 2 * id, guest_id, 'accrual', accrued, balance_after, '', at, id FROM payments"
        ),
        format!(
            "INSERT INTO refunds (id, op_id, payment_id, amount, spend_returned, accrual_taken, unrecovered, balance_after, at)
             SELECT id / 24, '{ORG}/till-' || (id % 4 + 1) || ':ret-' || id, id, amount_due, spent, accrued, 0, balance_after, at + 3600
             FROM payments WHERE id % 24 = 0"
        ),
        format!(
            "INSERT INTO operations (id, guest_id, kind, amount, balance_after, note, at, refund_id)
             SELECT 2 * {payments} + 2 * r.id - 1, p.guest_id, 'refund_spend', r.spend_returned, r.balance_after + r.accrual_taken, '', r.at, r.id
             FROM refunds r JOIN payments p ON p.id = r.payment_id
             UNION ALL
             SELECT 2 * {payments} + 2 * r.id, p.guest_id, 'refund_accrual', -r.accrual_taken, r.balance_after, '', r.at, r.id
             FROM refunds r JOIN payments p ON p.id = r.payment_id"
        ),
        // The report's sums, as schema 17 fills them from a ledger loaded before it.
        loyalty_till::loyalty::report::REBUILD_SQL.to_string(),
        // The guests' spending per day, as schema 20 fills it.
        loyalty_till::loyalty::spend_days::REBUILD_SQL.to_string(),
        "ANALYZE".to_string(),
    ]
}

/// A client that keeps the session cookie and does not follow redirects.
struct Browser {
    http: reqwest::blocking::Client,
    base: String,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn keep(&mut self, response: reqwest::blocking::Response) -> (u16, String) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.insert(name.to_string(), value.to_string());
        }
        let status = response.status().as_u16();
        (status, response.text().unwrap())
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&mut self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .unwrap();
        self.keep(response)
    }

    fn login(&mut self) {
        let (_, html) = self.get("/admin/login");
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).expect("the login form") + marker.len();
        let csrf = html[start..].split('"').next().unwrap().to_string();
        let body = format!("csrf={csrf}&login=owner&password={}", PASSWORD.replace(' ', "+"));
        let response = self
            .http
            .post(format!("{}/admin/login", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap();
        let (status, body) = self.keep(response);
        assert_eq!(status, 303, "signed in: {body}");
    }
}

/// `+`, spaces and Cyrillic in a query string.
fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percentiles(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort_unstable();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1000.0;
    (at(0.50), at(0.95), at(1.0))
}

fn verdict(value: f64, goal: f64) -> &'static str {
    if value <= goal { "met" } else { "NOT MET" }
}

fn bench(db: Db, name: &str) {
    let guests = env_or("LOYALTY_BENCH_GUESTS", 1_000_000);
    let samples = env_or("LOYALTY_BENCH_SAMPLES", 200);
    let dir = tempfile::TempDir::new().unwrap();
    let Some(open) = server_support::new_store(db, &dir, 8) else {
        println!("{name}: skipped (no LOYALTY_TEST_PG_URL)");
        return;
    };
    let clock: ServerClock = Arc::new(|| NOW);
    let handle = ServerHandle::start(open, clock, "127.0.0.1:0".parse().unwrap(), ServeOptions::default()).unwrap();
    let store: Arc<Store> = Arc::clone(&handle.store);
    let started = Instant::now();
    handle.block_on(async {
        let group = store
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
            .unwrap();
        let hash = hash_password(PASSWORD).unwrap();
        save_user(&store, ORG, "owner", &hash, Role::Owner, NOW).await.unwrap();
        for statement in load(db) {
            // The store's statements are `'static` (prepared and cached); the bench's few are kept.
            let statement: &'static str = Box::leak(statement.into_boxed_str());
            let step = Instant::now();
            let params = if statement.contains("$1") {
                vec![Val::Int(group)]
            } else {
                vec![]
            };
            db::execute(&store, statement, params).await.unwrap();
            println!(
                "  {name}: {:<60} {:>6.1} s",
                statement
                    .split_whitespace()
                    .skip_while(|w| *w != "INSERT" && *w != "ANALYZE")
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" "),
                step.elapsed().as_secs_f64()
            );
        }
        let count = |table: &'static str| {
            let store = Arc::clone(&store);
            async move {
                db::query(
                    &store,
                    Box::leak(format!("SELECT COUNT(*) FROM {table}").into_boxed_str()),
                    vec![],
                )
                .await
                .unwrap()[0][0]
                    .int()
            }
        };
        println!(
            "back office, {name}: {} guests, {} payments, {} refunds, {} operations loaded in {:.0} s",
            count("guests").await,
            count("payments").await,
            count("refunds").await,
            count("operations").await,
            started.elapsed().as_secs_f64()
        );
    });

    let mut owner = Browser {
        http: reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap(),
        base: handle.url(),
        cookies: HashMap::new(),
    };
    owner.login();
    let pick = move |k: i64| (k * 104_729 + 17) % guests + 1;
    type Case = (&'static str, Box<dyn Fn(i64) -> (String, String)>);
    let cases: Vec<Case> = vec![
        (
            "search: phone (+7 9XX XXX-XX-XX)",
            Box::new(move |k| {
                let i = pick(k);
                let d = format!("{i:09}");
                let q = format!("+7 9{} {}-{}-{}", &d[..2], &d[2..5], &d[5..7], &d[7..]);
                (format!("/admin/guests?q={}", pct(&q)), format!("Гость {i}<"))
            }),
        ),
        (
            "search: card",
            Box::new(move |k| {
                let i = pick(k);
                (format!("/admin/guests?q=CARD{i:09}"), format!("Гость {i}<"))
            }),
        ),
        (
            "search: name prefix (4 letters)",
            Box::new(|k| {
                let q: String = SURNAMES[(k % 20) as usize].chars().take(4).collect();
                (format!("/admin/guests?q={}", pct(&q)), " Гость ".to_string())
            }),
        ),
        (
            "search: name prefix (whole name)",
            Box::new(move |k| {
                let i = pick(k);
                let q = format!("{} Гость {i}", SURNAMES[(i % 20) as usize]);
                (format!("/admin/guests?q={}", pct(&q)), format!("Гость {i}<"))
            }),
        ),
        (
            "guest page with history",
            Box::new(move |k| {
                let i = pick(k);
                (format!("/admin/guests/{}", 1_000_000 + i), format!("Гость {i}"))
            }),
        ),
    ];
    let mut lines = Vec::new();
    for (label, case) in &cases {
        let mut times = Vec::new();
        for k in 0..samples {
            let (path, expect) = case(k);
            let started = Instant::now();
            let (status, body) = owner.get(&path);
            times.push(started.elapsed());
            assert_eq!(status, 200, "{path}");
            assert!(body.contains(&expect), "{path}: no {expect:?} on the page");
        }
        let (p50, p95, max) = percentiles(times);
        let goal = if label.starts_with("search") { 50.0 } else { 100.0 };
        lines.push(format!(
            "  {name} {label:<36} p50 {p50:>8.1} ms  p95 {p95:>8.1} ms  max {max:>8.1} ms  (goal p95 ≤ {goal} ms: {})",
            verdict(p95, goal)
        ));
    }
    // The last 30 days, today included, in the programme's zone (UTC by default).
    let today = NOW.div_euclid(86_400);
    let day = |d: i64| {
        chrono::DateTime::from_timestamp(d * 86_400, 0)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let path = format!("/admin/reports?from={}&to={}", day(today - 29), day(today));
    let runs = env_or("LOYALTY_BENCH_REPORT_RUNS", 5);
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let (status, body) = owner.get(&path);
        times.push(started.elapsed());
        assert_eq!(status, 200, "{path}: {}", &body[..body.len().min(500)]);
        assert!(body.contains("till-4"), "the report shows the tills");
    }
    let (median, _, max) = percentiles(times);
    lines.push(format!(
        "  {name} {:<36} median {median:>6.0} ms  max {max:>6.0} ms  ({runs} runs; goal ≤ 1000 ms: {})",
        "report: last 30 days",
        verdict(max, 1000.0)
    ));
    println!("back office, {name}, over HTTP ({samples} requests per line):");
    for line in lines {
        println!("{line}");
    }
    if let Db::Postgres = db {
        handle
            .block_on(db::execute(
                &store,
                "DO $$ BEGIN EXECUTE 'DROP SCHEMA ' || current_schema() || ' CASCADE'; END $$",
                vec![],
            ))
            .unwrap();
    }
}

#[test]
#[ignore = "a benchmark: bash scripts/back-office-bench.sh"]
fn back_office_sqlite() {
    bench(Db::Sqlite, "SQLite");
}

#[test]
#[ignore = "a benchmark: bash scripts/back-office-bench.sh"]
fn back_office_postgres() {
    bench(Db::Postgres, "PostgreSQL");
}
