//! The real `loyalty-till serve` process killed with SIGKILL and started again, three times, in
//! the middle of 1,000 bonus payments from a till: afterwards every payment is there exactly
//! once, no hold is left open, and the ledger's invariants hold. On SQLite and on PostgreSQL.
//! The till talks to the server through a pass-through proxy that sees each request go in and
//! its answer come back: each kill is made while a request is at the server unanswered, and the
//! test checks that it cut one (a kill between requests would prove much less). An answer can
//! still slip out between the look and the kill; that kill is then repeated, up to five times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use loyalty_till::backend::{Clock, LoyaltyBackend};
use loyalty_till::domain::{AwayReason, CheckInfo, IdentifierKind, LoyaltyError, UnixSeconds};
use loyalty_till::ledger::{Ledger, NewGroup};
use loyalty_till::money::Kopecks;
use loyalty_till::remote::journal::{OpKind, OpState};
use loyalty_till::remote::{ServerBackend, ServerSettings};
use loyalty_till::server::pg::PgStore;
use loyalty_till::server::store::{DbUrl, Store};
use server_support::{Db, pg_url};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PAYMENTS: usize = 1_000;
const KILLS_AT: [usize; 3] = [150, 480, 820];
const START_BALANCE: i64 = 10_000_000;

#[test]
fn sqlite_server_killed_during_1000_payments() {
    killed_during_payments(Db::Sqlite);
}

#[test]
fn postgres_server_killed_during_1000_payments() {
    killed_during_payments(Db::Postgres);
}

struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(db_url: &str, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--db",
            db_url,
            "--expire-every",
            "1",
        ])
        .env("LOYALTY_TILL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "the server did not start: {line:?}");
    child
}

/// Kills the server when the test ends, passed or failed: none is left running.
struct KillOnDrop(Arc<Mutex<Child>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(mut child) = self.0.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn killed_during_payments(db: Db) {
    let dir = tempfile::TempDir::new().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The server's database, seeded: one guest with plenty of bonuses and a till token.
    let (server_url, schema) = match db {
        Db::Sqlite => (format!("sqlite://{}", dir.path().join("server.sqlite").display()), None),
        Db::Postgres => {
            let Some(url) = pg_url() else { return };
            let schema = format!("kill_{}_{}", std::process::id(), SystemClock.now());
            let separator = if url.contains('?') { '&' } else { '?' };
            (
                format!("{url}{separator}options=-c%20search_path%3D{schema}"),
                Some((url, schema)),
            )
        }
    };
    let (guest, token) = runtime.block_on(async {
        let store = match &schema {
            None => Store::open(&DbUrl::parse(&server_url).unwrap()).await.unwrap(),
            Some((url, schema)) => Store::new(PgStore::connect(url, Some(schema), 2).await.unwrap()),
        };
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
        let guest = store.add_guest("cafe", "Anna", None, group, 0).await.unwrap();
        store
            .add_identifier(guest, IdentifierKind::CardBarcode, "2000000000015")
            .await
            .unwrap();
        store.credit("seed", guest, Kopecks(START_BALANCE), 0).await.unwrap();
        (guest, store.create_token("cafe", "till-1", 0).await.unwrap())
    });

    let port = free_port();
    let server = Arc::new(Mutex::new(start_server(&server_url, port)));
    let _server_guard = KillOnDrop(Arc::clone(&server));
    let proxy = server_support::proxy::Proxy::start(([127, 0, 0, 1], port).into());
    let (awaiting, cut) = (Arc::clone(&proxy.awaiting), Arc::clone(&proxy.cut));
    // Kills that cut a request in flight.
    let cutting_kills = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (server, progress, finished, kills, server_url) = (
            Arc::clone(&server),
            Arc::clone(&progress),
            Arc::clone(&finished),
            Arc::clone(&kills),
            server_url.clone(),
        );
        let cutting_kills = Arc::clone(&cutting_kills);
        std::thread::Builder::new()
            .name("killer".to_string())
            .spawn(move || {
                for at in KILLS_AT {
                    while progress.load(Ordering::SeqCst) < at {
                        if finished.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    for _attempt in 0..5 {
                        // Killed while a request is at the server and its answer has not come back.
                        let patience = Instant::now() + Duration::from_secs(10);
                        while awaiting.load(Ordering::SeqCst) == 0 && Instant::now() < patience {
                            std::thread::yield_now();
                        }
                        let cut_before = cut.load(Ordering::SeqCst);
                        let mut child = server.lock().unwrap();
                        child.kill().unwrap(); // SIGKILL
                        child.wait().unwrap();
                        kills.fetch_add(1, Ordering::SeqCst);
                        // The proxy sees the connection close well within this.
                        std::thread::sleep(Duration::from_millis(300));
                        *child = start_server(&server_url, port);
                        if cut.load(Ordering::SeqCst) > cut_before {
                            cutting_kills.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            })
            .unwrap()
    };

    let settings = ServerSettings {
        url: proxy.url(),
        token,
        timeout_secs: 5,
        ..ServerSettings::default()
    };
    let journal = dir.path().join("till").join("journal.sqlite");
    let mut till = ServerBackend::open(&settings, &journal, Box::new(SystemClock)).unwrap();
    let check = CheckInfo {
        subtotal: Kopecks(1_000),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut failures = 0;
    for payment in 0..PAYMENTS {
        // A hold whose answer is lost is released by the journal; the till tries with a new one.
        let mut attempt = 0;
        let hold = loop {
            assert!(Instant::now() < deadline, "payments stalled");
            match till.hold(&format!("h{payment}-{attempt}"), guest, Kopecks(100), &check) {
                Ok(hold) => break hold,
                // No answer, or the server known to be away (refused before anything was sent).
                Err(LoyaltyError::Unavailable(_) | LoyaltyError::ServerAway(AwayReason::SpendingOff)) => {
                    failures += 1;
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(other) => panic!("payment {payment}: hold refused: {other}"),
            }
        };
        // A commit whose answer is lost is finished: the same operation until it is answered.
        loop {
            assert!(Instant::now() < deadline, "payments stalled");
            match till.commit_payment(&format!("c{payment}"), guest, Some(hold.hold_id), Kopecks(100), &check) {
                Ok(receipt) => {
                    assert_eq!(receipt.spent, Kopecks(100));
                    assert_eq!(receipt.accrued, Kopecks(45));
                    break;
                }
                Err(LoyaltyError::Unavailable(_)) => {
                    failures += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(other) => panic!("payment {payment}: commit refused: {other}"),
            }
        }
        progress.store(payment + 1, Ordering::SeqCst);
    }
    finished.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    let (kills, cutting_kills) = (kills.load(Ordering::SeqCst), cutting_kills.load(Ordering::SeqCst));
    eprintln!(
        "{db:?}: {PAYMENTS} payments, {kills} kills, {cutting_kills} of them with a request at the server \
         unanswered ({} requests cut in all), {failures} calls without an answer",
        proxy.cut.load(Ordering::SeqCst)
    );
    assert_eq!(
        cutting_kills,
        KILLS_AT.len(),
        "at each of {KILLS_AT:?} payments the server is killed with a request in flight"
    );
    // Whatever is still in doubt is resolved; then nothing is.
    till.resolve(true).unwrap();
    let entries = till.journal().all().unwrap();
    assert!(
        entries.iter().all(|e| e.state != OpState::Pending),
        "nothing left in doubt"
    );
    let commits = entries
        .iter()
        .filter(|e| e.kind == OpKind::Commit && e.state == OpState::Done)
        .count();
    assert_eq!(commits, PAYMENTS);
    drop(till);

    {
        let mut child = server.lock().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // The server's ledger: every payment once (100 spent, 45 accrued), no hold open.
    let expected = START_BALANCE - PAYMENTS as i64 * (100 - 45);
    match &schema {
        None => {
            let path = dir.path().join("server.sqlite");
            let ledger = Ledger::open(&path).unwrap();
            ledger.check_invariants().unwrap();
            let card = ledger.guest_card(guest, SystemClock.now() + 3_600).unwrap();
            assert_eq!(card.balance, Kopecks(expected));
            assert!(ledger.open_holds(Some(guest)).unwrap().is_empty(), "no hold left open");
            let conn = rusqlite::Connection::open(&path).unwrap();
            let payments: i64 = conn
                .query_row("SELECT COUNT(*) FROM payments WHERE spent = 100", [], |r| r.get(0))
                .unwrap();
            assert_eq!(payments, PAYMENTS as i64, "no payment lost or doubled");
        }
        Some((url, schema)) => runtime.block_on(async {
            let store = PgStore::connect(url, Some(schema), 1).await.unwrap();
            store.check_invariants().await.unwrap();
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            let row = client
                .query_one(
                    &format!(
                        "SELECT (SELECT balance FROM {schema}.guests WHERE id = $1),
                                (SELECT COUNT(*) FROM {schema}.payments WHERE spent = 100),
                                (SELECT COUNT(*) FROM {schema}.holds WHERE status = 'open')"
                    ),
                    &[&guest],
                )
                .await
                .unwrap();
            assert_eq!(row.get::<_, i64>(0), expected);
            assert_eq!(row.get::<_, i64>(1), PAYMENTS as i64, "no payment lost or doubled");
            assert_eq!(row.get::<_, i64>(2), 0, "no hold left open");
        }),
    }
}
