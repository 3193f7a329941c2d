#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
//! The shipped binary's diagnostics, run as support would run them.

use loyalty_till::scan::payload::sign_gift_token;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `parse-scan` on `input`, with the demo programme's key when `demo`.
fn parse_scan_as(demo: bool, input: &str, data_dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut args = vec!["--data-dir", data_dir.to_str().unwrap(), "parse-scan"];
    if demo {
        args.insert(0, "--demo");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(!text.contains("4111111111111111"), "a card number leaked: {text}");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn parse_scan(input: &str, data_dir: &std::path::Path) -> Vec<serde_json::Value> {
    parse_scan_as(true, input, data_dir)
}

#[test]
fn parse_scan_prints_masked_events_and_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let gift = sign_gift_token(b"demo-programme-secret", "100001", "G100001", now - 10);
    let forged = sign_gift_token(b"another-secret", "100001", "G100001", now - 10);
    let input = format!(
        "%B4111111111111111^SMIRNOVA/ANNA^3012101?;4111111111111111=30121010000000000000?\\r\n\
         %E?;7001000010?\\r\n\
         100001\n\
         {gift}\n\
         {forged}\n\
         \\x00\\x01\\x02\n\
         bad escape \\q\n\
         +79161234567\n\
         {}\n",
        "7".repeat(10_000)
    );
    let lines = parse_scan(&input, dir.path());
    assert_eq!(lines.len(), 9);
    assert_eq!(lines[0]["kind"], "magnetic_card");
    assert_eq!(lines[0]["identifier"], "411111******1111");
    assert_eq!(
        lines[1]["kind"], "magnetic_card",
        "track 1 failed, track 2 identifies: {}",
        lines[1]
    );
    assert_eq!(lines[2]["detail"]["payload"], "card_code");
    assert_eq!(lines[3]["detail"]["payload"], "gift_token");
    assert!(
        lines[4]["error"].as_str().unwrap().to_lowercase().contains("sign"),
        "{}",
        lines[4]
    );
    assert!(lines[5]["error"].is_string(), "control bytes are refused: {}", lines[5]);
    assert!(lines[6]["error"].as_str().unwrap().starts_with("bad escape"));
    assert_eq!(
        lines[7]["detail"]["payload"], "card_code",
        "a phone in a QR is a code, not a track 3"
    );
    assert!(lines[8]["error"].is_string(), "a 10,000-byte line is refused");
}

#[test]
fn decode_image_reports_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.png");
    let blank = dir.path().join("blank.png");
    image::GrayImage::from_pixel(640, 480, image::Luma([255]))
        .save(&blank)
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
        .arg("decode-image")
        .arg(&blank)
        .arg(&missing)
        .output()
        .unwrap();
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["text"].is_null(), "a blank frame has no code: {}", lines[0]);
    assert!(lines[0]["ms"].is_number());
    assert!(
        lines[1]["error"].is_string(),
        "a missing file is reported: {}",
        lines[1]
    );
}

#[test]
fn without_a_programme_key_app_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Signed with the demo key, which a real till (no --demo, no key set) must not trust.
    let token = loyalty_till::scan::payload::sign_guest_token(b"demo-programme-secret", "100001", now);
    let lines = parse_scan_as(false, &format!("{token}\n100001\n"), dir.path());
    assert!(
        lines[0]["error"].as_str().unwrap().contains("no programme key"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1]["detail"]["payload"], "card_code", "plain codes still work");
}
