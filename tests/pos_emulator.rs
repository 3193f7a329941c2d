//! `scripts/pos-emulator` against the real till binary under Xvfb: the POS side of the contract
//! from the command line, as the README's walk-through runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
#![cfg(unix)]

mod common;

use serde_json::Value;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "pos-token-e2e";
const BONUS_TYPE: &str = "9b2f6a1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
const WAITER_PIN: &str = "4921";

/// A process killed on drop: the virtual display or the till.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Emulator {
    url: String,
    state: std::path::PathBuf,
}

impl Emulator {
    /// Runs one emulator command: its exit success and the answer it printed.
    fn run(&self, args: &[&str]) -> (bool, Value) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pos-emulator");
        let output = Command::new("python3")
            .arg(script)
            .args([
                "--url",
                &self.url,
                "--token",
                TOKEN,
                "--bonus-type",
                BONUS_TYPE,
                "--state",
            ])
            .arg(&self.state)
            .args(args)
            .output()
            .expect("python3 is needed");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (output.status.success(), value)
    }
}

#[test]
fn the_emulator_opens_pays_cancels_and_returns_against_the_till_binary() {
    let xvfb = common::xvfb::Xvfb::start(1024, 768);
    let display = xvfb.display.clone();
    let dir = tempfile::tempdir().unwrap();
    // A free port for the till's endpoint.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[handhelds]\nport = {port}\npos_token = \"{TOKEN}\"\nbonus_payment_type = \"{BONUS_TYPE}\"\nwaiter_pins = [\"{WAITER_PIN}\"]\n"
        ),
    )
    .unwrap();
    let _till = Killed(
        Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
            .args(["--demo", "--data-dir"])
            .arg(dir.path())
            .args(["--layout", "side-panel", "--window-size", "420x700"])
            .env("DISPLAY", &display)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pos = Emulator {
        url: format!("http://127.0.0.1:{port}/GetMeBack"),
        state: dir.path().join("pos.json"),
    };
    let started = Instant::now();
    while !pos.run(&["health"]).0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the till's endpoint never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let holds = || -> i64 {
        let conn = rusqlite::Connection::open(dir.path().join("demo.sqlite")).unwrap();
        conn.query_row("SELECT COUNT(*) FROM holds", [], |r| r.get(0)).unwrap()
    };
    let holds_before = holds();

    let (ok, opened) = pos.run(&["open", "--number", "117", "--table", "5"]);
    assert!(ok, "{opened}");
    assert_eq!(opened["answer"]["state"], "none");
    let (ok, added) = pos.run(&["add", "1001", "Борщ", "350,50", "--qty", "2"]);
    assert!(ok, "{added}");
    assert_eq!(added["answer"]["orderRevision"], 2);
    let (ok, result) = pos.run(&["result"]);
    assert!(ok && result["answer"]["bonusPayment"].is_null(), "{result}");
    // A bonus payment nobody held is refused: nothing debited.
    let (ok, refused) = pos.run(&["pay", "--bonus", "100"]);
    assert!(!ok);
    assert_eq!(refused["answer"]["error"], "hold_void", "{refused}");
    // Paid without a guest: closed; the same call id again answers the same.
    let (ok, paid) = pos.run(&["--call-id", "e2e-pay-1", "pay"]);
    assert!(ok, "{paid}");
    let (ok, again) = pos.run(&["--call-id", "e2e-pay-1", "pay"]);
    assert!(ok);
    assert_eq!(again, paid);
    let (ok, late) = pos.run(&["cancel"]);
    assert!(!ok);
    assert_eq!(late["answer"]["error"], "already_paid");

    assert!(pos.run(&["open", "--number", "118"]).0);
    assert!(pos.run(&["add", "2002", "Морс", "180"]).0);
    let (ok, cancelled) = pos.run(&["cancel"]);
    assert!(ok);
    assert_eq!(cancelled["answer"]["state"], "cancelled");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&pos.state).unwrap()).unwrap();
    let line = state["lines"][0]["lineId"].as_str().unwrap().to_string();
    let (ok, returned) = pos.run(&["return-line", &line]);
    assert!(!ok);
    assert_eq!(
        returned["answer"]["error"], "not_paid",
        "a cancelled order has nothing to return"
    );

    // A guest on the order (checked in by a waiter), paid: the accrual on a returned line comes
    // back, once.
    assert!(pos.run(&["open", "--number", "119"]).0);
    assert!(pos.run(&["add", "1001", "Борщ", "350", "--qty", "2"]).0);
    assert!(pos.run(&["add", "2002", "Морс", "180"]).0);
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&pos.state).unwrap()).unwrap();
    let order_id = state["id"].as_str().unwrap().to_string();
    let drink = state["lines"][1]["lineId"].as_str().unwrap().to_string();
    let checkin = format!("{{\"Value\": \"100001\", \"WaiterPin\": \"{WAITER_PIN}\"}}");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "POST /GetMeBack/orders/{order_id}/checkin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{checkin}",
        checkin.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 204"),
        "the waiter checks the guest in: {answer}"
    );
    let (ok, paid) = pos.run(&["pay"]);
    assert!(ok, "{paid}");
    let accrued = paid["answer"]["accrued"].as_i64().unwrap();
    let balance = paid["answer"]["balance"].as_i64().unwrap();
    assert!(accrued > 0, "the guest's group accrues: {paid}");
    let (ok, back) = pos.run(&["--call-id", "e2e-return-1", "return-line", &drink]);
    assert!(ok, "{back}");
    // The drink is 18 000 of the 88 000 paid.
    let taken = back["answer"]["accrualTakenBack"].as_i64().unwrap();
    assert!(
        (taken - accrued * 18_000 / 88_000).abs() <= 1,
        "the drink's share of {accrued} taken back: {back}"
    );
    assert_eq!(back["answer"]["bonusesBack"], 0);
    assert_eq!(back["answer"]["balance"], balance - taken);
    let (ok, again) = pos.run(&["--call-id", "e2e-return-1", "return-line", &drink]);
    assert!(ok);
    assert_eq!(again, back, "the same call again reverses nothing more");
    let (ok, over) = pos.run(&["return-line", &drink]);
    assert!(!ok);
    assert_eq!(over["answer"]["error"], "over_return", "{over}");
    let (ok, wrong) = Emulator { ..pos }.run_with_token("wrong");
    assert!(!ok);
    assert_eq!(wrong["status"], 401);
    assert_eq!(holds(), holds_before, "no hold was made by any of these calls");
}

impl Emulator {
    fn run_with_token(&self, token: &str) -> (bool, Value) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pos-emulator");
        let output = Command::new("python3")
            .arg(script)
            .args(["--url", &self.url, "--token", token, "health"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        (
            output.status.success(),
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }
}
