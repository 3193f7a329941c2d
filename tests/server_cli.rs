//! `loyalty-till till-token create` and `loyalty-till serve` as an owner runs them: headless, the
//! token printed once and stored only as its hash, the API answering with it and refusing without.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn till() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loyalty-till"));
    // No display: the server must not need one.
    command.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    command
}

#[test]
fn token_then_serve_headless() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ledger.sqlite").display());
    let out = till()
        .args(["till-token", "create", "--db", &db, "--org", "cafe", "--till", "till-1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        token.starts_with("lt_") && token.len() == 67,
        "a 32-byte token: {token}"
    );
    let file = std::fs::read(dir.path().join("ledger.sqlite")).unwrap();
    let wal = std::fs::read(dir.path().join("ledger.sqlite-wal")).unwrap_or_default();
    let secret = &token.as_bytes()[3..];
    for bytes in [&file, &wal] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "the token is stored hashed only"
        );
    }

    let bad = till()
        .args(["till-token", "create", "--db", &db, "--org", "a/b", "--till", "t"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "names with '/' are refused");
    let bad = till().args(["serve", "--db", "mysql://x"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sqlite:// or postgres://"));

    let mut server = till()
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap().to_string();
    let http = reqwest::blocking::Client::new();
    let health = http.get(format!("{url}/api/v1/health")).send().unwrap();
    assert_eq!(health.status(), 200);
    let doc = http.get(format!("{url}/api/v1/openapi.json")).send().unwrap();
    assert_eq!(doc.status(), 200);
    let unknown = http
        .get(format!("{url}/api/v1/guests/1"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404, "authorised, but there is no guest 1");
    let refused = http.get(format!("{url}/api/v1/guests/1")).send().unwrap();
    assert_eq!(refused.status(), 401);
    // A new token for the same till replaces the old one.
    let out = till()
        .args(["till-token", "create", "--db", &db, "--org", "cafe", "--till", "till-1"])
        .output()
        .unwrap();
    let second = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_ne!(second, token);
    let answer = http
        .get(format!("{url}/api/v1/guests/1"))
        .bearer_auth(&second)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 404);
    server.kill().unwrap();
    server.wait().unwrap();
}
