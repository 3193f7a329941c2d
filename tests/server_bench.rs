//! Benchmark of the loyalty server (ignored by default; `bash scripts/server-bench.sh` runs it in
//! release with PostgreSQL started): bonus payments per second (hold + commit through the HTTP
//! API, durable: SQLite `synchronous=FULL`, PostgreSQL with fsync and synchronous_commit on) at
//! 8 and 32 concurrent clients with p50/p99, identify/calculate requests per second with p99, and
//! PostgreSQL's own pgbench TPC-B on the same server as the denominator of the ratio.
//!
//! The real `loyalty-till serve` process is measured; the clients run in this process on the
//! same machine, so they share its cores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::domain::IdentifierKind;
use loyalty_till::ledger::NewGroup;
use loyalty_till::money::Kopecks;
use loyalty_till::server::store::{DbUrl, Store};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GUESTS: usize = 64;

fn seconds() -> u64 {
    std::env::var("LOYALTY_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

struct Stats {
    count: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn stats(mut micros: Vec<u64>, elapsed: Duration) -> Stats {
    micros.sort_unstable();
    let at = |q: f64| {
        if micros.is_empty() {
            return f64::NAN;
        }
        micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)] as f64 / 1000.0
    };
    Stats {
        count: micros.len(),
        per_sec: micros.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    }
}

fn start_server(db_url: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db", db_url])
        .env("LOYALTY_TILL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the server's address")
        .to_string();
    (child, url)
}

/// Seeds GUESTS guests with plenty of bonuses and 32 till tokens; returns (guest ids, tokens).
fn seed(db_url: &str) -> (Vec<i64>, Vec<String>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&DbUrl::parse(db_url).unwrap()).await.unwrap();
        let group = store
            .add_group(&NewGroup {
                name: "Guest".to_string(),
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
        let mut guests = Vec::new();
        for i in 0..GUESTS {
            let guest = store
                .add_guest("cafe", &format!("Guest {i}"), None, group, 0)
                .await
                .unwrap();
            store
                .add_identifier(guest, IdentifierKind::CardBarcode, &format!("BENCH{i:06}"))
                .await
                .unwrap();
            store
                .credit(&format!("seed-{i}"), guest, Kopecks(1_000_000_000), 0)
                .await
                .unwrap();
            guests.push(guest);
        }
        let mut tokens = Vec::new();
        for i in 0..32 {
            tokens.push(store.create_token("cafe", &format!("bench-{i}"), 0).await.unwrap());
        }
        (guests, tokens)
    })
}

/// `clients` concurrent tills, each paying with bonuses for its own guests for `secs`.
fn payments(url: &str, guests: &[i64], tokens: &[String], clients: usize, secs: u64, run: &str) -> Stats {
    let run = run.to_string();
    load(url, guests, tokens, clients, secs, move |http, url, token, guest, n| {
        let run = run.clone();
        async move {
            let check = json!({ "subtotal": 10_000 });
            let hold = http
                .post(format!("{url}/api/v1/holds"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(
                    json!({"op_id": format!("{run}-h{n}"), "guest_id": guest, "amount": 1_000, "check": check})
                        .to_string(),
                )
                .send()
                .await
                .unwrap();
            assert!(hold.status().is_success(), "hold: {}", hold.status());
            let hold: serde_json::Value = serde_json::from_str(&hold.text().await.unwrap()).unwrap();
            let commit = http
                .post(format!("{url}/api/v1/payments"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(
                    json!({"op_id": format!("{run}-c{n}"), "guest_id": guest, "hold_id": hold["hold_id"], "spent": 1_000, "check": check})
                        .to_string(),
                )
                .send()
                .await
                .unwrap();
            assert!(commit.status().is_success(), "commit: {}", commit.status());
            commit.text().await.unwrap();
        }
    })
}

/// Identify by card, then calculate, alternately; each request timed on its own.
fn reads(url: &str, guests: &[i64], tokens: &[String], clients: usize, secs: u64) -> Stats {
    load(
        url,
        guests,
        tokens,
        clients,
        secs,
        |http, url, token, guest, n| async move {
            let request = if n % 2 == 0 {
                http.post(format!("{url}/api/v1/identify")).body(
                    json!({"kind": "barcode", "payload": format!("BENCH{:06}", (guest - 1) as usize % GUESTS)})
                        .to_string(),
                )
            } else {
                http.post(format!("{url}/api/v1/guests/{guest}/calculate"))
                    .body(json!({"check": {"subtotal": 123_456}}).to_string())
            };
            let answer = request
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .send()
                .await
                .unwrap();
            assert!(answer.status().is_success(), "read: {}", answer.status());
            answer.text().await.unwrap();
        },
    )
}

fn load<F, Fut>(url: &str, guests: &[i64], tokens: &[String], clients: usize, secs: u64, op: F) -> Stats
where
    F: Fn(reqwest::Client, String, String, i64, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let micros: Vec<u64> = runtime.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (op, url, token) = (Arc::clone(&op), url.to_string(), tokens[client % tokens.len()].clone());
            let my_guests: Vec<i64> = guests.iter().copied().skip(client).step_by(clients).collect();
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut times = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let guest = my_guests[n as usize % my_guests.len()];
                    let t = Instant::now();
                    op(
                        http.clone(),
                        url.clone(),
                        token.clone(),
                        guest,
                        n * 1000 + client as u64,
                    )
                    .await;
                    times.push(t.elapsed().as_micros() as u64);
                    n += 1;
                }
                times
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    stats(micros, start.elapsed())
}

/// pgbench's TPC-B database (scale 10) on the test server, made once before anything is
/// measured, so that its making (a million rows copied, indexed and vacuumed) burdens neither
/// side of the ratio.
struct PgBench {
    bin: String,
    port: String,
}

impl PgBench {
    /// None without `PG_BIN` and `PG_TEST_PORT` (from `scripts/pg-test-server.sh --env`).
    fn prepare() -> Option<PgBench> {
        let bench = PgBench {
            bin: std::env::var("PG_BIN").ok()?,
            port: std::env::var("PG_TEST_PORT").ok()?,
        };
        bench.psql(&["DROP DATABASE IF EXISTS pgbench_tpcb", "CREATE DATABASE pgbench_tpcb"]);
        let init = Command::new(format!("{}/pgbench", bench.bin))
            .args(bench.connection())
            .args(["-i", "-q", "-s", "10", "pgbench_tpcb"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("pgbench could not be started from {}: {e}", bench.bin));
        assert!(init.success(), "pgbench -i failed");
        Some(bench)
    }

    fn connection(&self) -> [&str; 6] {
        ["-h", "127.0.0.1", "-p", self.port.as_str(), "-U", "postgres"]
    }

    fn psql(&self, commands: &[&str]) {
        let status = Command::new(format!("{}/psql", self.bin))
            .args(self.connection())
            .args(["-X", "-q", "-d", "postgres"])
            .args(commands.iter().flat_map(|c| ["-c", c]))
            .status()
            .unwrap_or_else(|e| panic!("psql could not be started from {}: {e}", self.bin));
        assert!(status.success(), "psql failed: {commands:?}");
    }

    /// Writes every dirty page out now: each measurement then starts from the same state and
    /// pays for its own writes only, not for the one before it.
    fn checkpoint(&self) {
        self.psql(&["CHECKPOINT"]);
    }

    /// TPC-B at `clients` clients and 2 threads for `secs`: transactions per second.
    fn run(&self, clients: usize, secs: u64) -> f64 {
        let out = Command::new(format!("{}/pgbench", self.bin))
            .args(self.connection())
            .args([
                "-c",
                &clients.to_string(),
                "-j",
                "2",
                "-T",
                &secs.to_string(),
                "-n",
                "pgbench_tpcb",
            ])
            .output()
            .unwrap_or_else(|e| panic!("pgbench could not be started from {}: {e}", self.bin));
        pgbench_tps(&out).unwrap_or_else(|reason| panic!("{reason}"))
    }
}

fn rounds() -> usize {
    std::env::var("LOYALTY_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The `tps = …` figure of a pgbench run, or why there is none: a run that failed (its exit
/// status) is never read, whatever it printed before failing.
fn pgbench_tps(out: &std::process::Output) -> Result<f64, String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench failed ({}): {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("pgbench printed no tps figure: {}", stdout.trim()))
}

/// A failed pgbench run is a failure, not a figure, even when it printed one.
#[test]
fn a_failed_pgbench_run_gives_no_figure() {
    let run = |script: &str| Command::new("sh").args(["-c", script]).output().unwrap();
    let ok = run("echo 'tps = 1234.5 (without initial connection time)'");
    assert_eq!(pgbench_tps(&ok), Ok(1234.5));
    let failed = run("echo 'tps = 1234.5 (without initial connection time)'; echo 'aborted' >&2; exit 2");
    let reason = pgbench_tps(&failed).unwrap_err();
    assert!(
        reason.contains("pgbench failed") && reason.contains("aborted"),
        "{reason}"
    );
    assert!(pgbench_tps(&run("echo nothing")).is_err());
}

/// The ratio reported is the middle round's, or the mean of the middle two.
#[test]
fn the_ratio_is_the_median_of_the_rounds() {
    assert_eq!(median(vec![0.41, 0.30, 0.38]), 0.38);
    assert_eq!(median(vec![0.40, 0.30, 0.36, 0.50]), 0.38);
    assert!(median(Vec::new()).is_nan());
}

#[test]
#[ignore = "benchmark: bash scripts/server-bench.sh"]
fn server_benchmark() {
    let secs = seconds();
    let dir = tempfile::TempDir::new().unwrap();
    let mut stores = vec![(
        "sqlite",
        format!("sqlite://{}", dir.path().join("bench.sqlite").display()),
    )];
    let pg = std::env::var("LOYALTY_TEST_PG_URL").ok().filter(|u| !u.is_empty());
    if let Some(url) = &pg {
        let schema = format!("bench_{}", std::process::id());
        let separator = if url.contains('?') { '&' } else { '?' };
        // The schema is created by a store opened with it, then the server uses it by search_path.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(loyalty_till::server::pg::PgStore::connect(url, Some(&schema), 1))
            .unwrap();
        stores.push((
            "postgres",
            format!("{url}{separator}options=-c%20search_path%3D{schema}"),
        ));
    } else {
        eprintln!("LOYALTY_TEST_PG_URL is not set: PostgreSQL is not measured");
    }
    // `LOYALTY_BENCH_STORES=postgres`: one store only, for alternating two builds quickly.
    if let Ok(only) = std::env::var("LOYALTY_BENCH_STORES") {
        stores.retain(|(name, _)| only.split(',').any(|wanted| wanted.trim() == *name));
    }
    println!(
        "server benchmark: {secs} s per measurement, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    // Made before anything is measured; without it PostgreSQL's payments are measured alone.
    let tpcb = if pg.is_some() { PgBench::prepare() } else { None };
    if pg.is_some() && tpcb.is_none() {
        println!("pgbench not run: PG_BIN and PG_TEST_PORT come from scripts/pg-test-server.sh --env");
    }
    let mut ratios = Vec::new();
    for (name, db_url) in &stores {
        let (guests, tokens) = seed(db_url);
        let (mut server, url) = start_server(db_url);
        // Warm-up: connections, caches.
        payments(&url, &guests, &tokens, 8, 1, &format!("{name}-warm"));
        let print = |clients: usize, s: &Stats| {
            println!(
                "{name:8} payments (hold+commit) {clients:2} clients: {:7.0} payments/s  p50 {:6.2} ms  p99 {:6.2} ms  ({} payments)",
                s.per_sec, s.p50_ms, s.p99_ms, s.count
            );
        };
        match (&tpcb, *name) {
            // The ratio's two sides alternate, a checkpoint before each, so that both meet the
            // machine as it is at that moment: on a shared machine either side alone moves by a
            // quarter from one minute to the next.
            (Some(tpcb), "postgres") => {
                for round in 1..=rounds() {
                    tpcb.checkpoint();
                    let s = payments(&url, &guests, &tokens, 8, secs, &format!("{name}-8-{round}"));
                    print(8, &s);
                    tpcb.checkpoint();
                    let tps = tpcb.run(8, secs);
                    println!(
                        "pgbench TPC-B (scale 10, 8 clients, 2 threads): {tps:.0} tps; round {round}: ratio {:.2}",
                        s.per_sec / tps
                    );
                    ratios.push(s.per_sec / tps);
                }
            }
            _ => print(8, &payments(&url, &guests, &tokens, 8, secs, &format!("{name}-8"))),
        }
        print(32, &payments(&url, &guests, &tokens, 32, secs, &format!("{name}-32")));
        let r = reads(&url, &guests, &tokens, 8, secs);
        println!(
            "{name:8} identify/calculate      8 clients: {:7.0} requests/s  p50 {:6.2} ms  p99 {:6.2} ms  ({} requests)",
            r.per_sec, r.p50_ms, r.p99_ms, r.count
        );
        server.kill().unwrap();
        server.wait().unwrap();
    }
    if !ratios.is_empty() {
        let rounds = ratios.len();
        println!(
            "ratio: PostgreSQL payments/s at 8 clients / pgbench tps = {:.2} (median of {rounds} alternating rounds)",
            median(ratios)
        );
    }
}
