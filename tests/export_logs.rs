#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! Support log export: a bundle made after a busy session (guests typed and swiped, app QR codes,
//! a payment) holds no unmasked phone, card number, track data, token or secret; the
//! `export-logs` command makes the same zip; a folder that cannot be written and an upload that
//! fails are reported and lose nothing.

mod common;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use loyalty_till::config::Config;
use loyalty_till::devices::serial::SerialSettings;
use loyalty_till::scan::payload::{sign_gift_token, sign_guest_token};
use loyalty_till::support::bundle::BundleInput;
use loyalty_till::support::export::{self, ExportRequest, Saved, Stage, Uploaded};
use loyalty_till::support::upload::UploadError;
use loyalty_till::workflow::{Event, Field, PaymentMode, Screen};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "test-programme-secret-7Q";
const SERVER_TOKEN: &str = "srv-token-Zx81";
const PASSWORD: &str = "pw-secret-551";
const PHONE: &str = "+79161234567";
const CARD: &str = "2000000000015";
const STRIPE: &str = "%B4111111111111111^SMITH/JOHN^2512101?;4111111111111111=2512101?";

/// A config file with every kind of secret, the programme key among them.
fn config_file(extra: &str) -> String {
    format!(
        "till_id = \"till-9\"\ndb_password = \"{PASSWORD}\"\n{extra}\n[scan]\ntoken_secret = \"{SECRET}\"\n\
         token_max_age_secs = 600\n\n[server]\nurl = \"http://10.1.1.1:8080\"\ntoken = \"{SERVER_TOKEN}\"\n"
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Everything in the zip, by entry name.
fn unzip(path: &Path) -> BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut entries = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        entries.insert(entry.name().unwrap().to_string(), text);
    }
    entries
}

/// What must never be in a bundle: the raw values, and the shapes of card numbers, tracks and
/// tokens whatever their values.
fn leaks(text: &str, raw: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = raw
        .iter()
        .filter(|secret| text.contains(**secret))
        .map(|secret| format!("raw value {secret:?}"))
        .collect();
    let bytes = text.as_bytes();
    let mut run = 0;
    for (i, b) in bytes.iter().enumerate() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run == 12 {
            found.push(format!("12+ digits at {:?}", &text[i.saturating_sub(20)..i + 1]));
        }
    }
    for (i, _) in text.match_indices("GMB1") {
        let rest = &text[i + 4..];
        let rest = rest.strip_prefix('G').unwrap_or(rest);
        if rest.starts_with('.') && !rest.starts_with(".[token masked]") {
            found.push(format!("token at {:?}", &rest[..rest.len().min(30)]));
        }
    }
    for pattern in ["%B4", ";4111", "^SMITH", "Bearer ey"] {
        if text.contains(pattern) {
            found.push(format!("track or bearer {pattern:?}"));
        }
    }
    found
}

fn assert_clean(entries: &BTreeMap<String, String>, raw: &[&str]) {
    for (name, text) in entries {
        let found = leaks(text, raw);
        assert!(found.is_empty(), "{name} leaks {found:?}:\n{text}");
    }
}

#[test]
fn the_leak_check_catches_what_it_looks_for() {
    let raw = [SECRET, CARD];
    assert!(!leaks(&format!("card {CARD}"), &raw).is_empty());
    assert!(!leaks("phone 79161234567 and 4111111111111111", &[]).is_empty());
    assert!(!leaks("qr GMB1.100001.1700000000.abcd", &[]).is_empty());
    assert!(!leaks("qr GMB1G.100001.G1.1700000000.abcd", &[]).is_empty());
    assert!(!leaks(STRIPE, &[]).is_empty());
    assert!(leaks("qr GMB1.[token masked] +7 *** ***-45-67 ****0015", &raw).is_empty());
}

/// Steps the app until the export panel has a result.
fn wait_for_export(harness: &mut egui_kittest::Harness<'static, loyalty_till::ui::TillApp>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness.state().export_panel().report().is_none() {
        assert!(Instant::now() < deadline, "the export did not finish");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.step();
}

#[test]
fn a_bundle_after_a_busy_session_holds_nothing_unmasked() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("config.toml"), config_file("")).unwrap();
    // The only test in this binary that logs: the global subscriber writes to this till's folder.
    let _log_guard = loyalty_till::logging::init(&data.path().join("logs"));
    let socat = common::Socat::start(data.path());
    let config = Config {
        till_id: "till-9".to_string(),
        serial_devices: vec![SerialSettings {
            port: socat.a(),
            baud: 115_200,
            ..SerialSettings::default()
        }],
        scan: loyalty_till::config::ScanSettings {
            token_secret: SECRET.to_string(),
            ..Default::default()
        },
        ..Config::default()
    };
    let mut harness = common::open_demo_app(data.path(), config, (1024.0, 1400.0));
    let mut scanner = serialport::new(socat.b.to_string_lossy(), 115_200)
        .timeout(Duration::from_secs(2))
        .open()
        .unwrap();

    let answered = |s: &loyalty_till::workflow::State| !s.is_busy() && (s.guest.is_some() || s.notice.is_some());
    let reset = |harness: &mut egui_kittest::Harness<'static, loyalty_till::ui::TillApp>| {
        if harness.state().state().guest.is_some() {
            harness.state_mut().dispatch(Event::RemoveGuest);
        }
        harness.state_mut().dispatch(Event::DismissNotice);
        common::step_until(harness, common::WAIT, "the guest removed", |s| {
            s.guest.is_none() && s.notice.is_none() && !s.is_busy()
        });
    };

    // Guests typed: a phone, a card code, a code nobody has.
    for code in [PHONE, CARD, "100002", "999999999999"] {
        harness.state_mut().dispatch(Event::OpenPlugin);
        harness
            .state_mut()
            .dispatch(Event::FieldEdited(Field::Code, code.to_string()));
        harness.state_mut().dispatch(Event::SubmitCode);
        common::step_until(&mut harness, common::WAIT, "the typed code's answer", answered);
        reset(&mut harness);
    }
    // Reads from the card reader and the scanner: a bank card's stripe, app QR codes (guest,
    // gift, forged), the card code as a barcode.
    let guest_token = sign_guest_token(SECRET.as_bytes(), "100001", now() - 5);
    let gift_token = sign_gift_token(SECRET.as_bytes(), "100002", "G100002", now() - 5);
    let forged = sign_guest_token(b"another-key", "100003", now() - 5);
    for read in [STRIPE, &guest_token, &gift_token, &forged, CARD] {
        scanner.write_all(format!("{read}\r").as_bytes()).unwrap();
        scanner.flush().unwrap();
        common::step_until(&mut harness, common::WAIT, "the read's answer", answered);
        reset(&mut harness);
    }
    // A payment with bonuses: hold and commit exchanges.
    for event in [
        Event::UseDemoOrder,
        Event::OpenPlugin,
        Event::FieldEdited(Field::Code, PHONE.to_string()),
        Event::SubmitCode,
    ] {
        harness.state_mut().dispatch(event);
    }
    common::step_until(&mut harness, common::WAIT, "the guest", |s| {
        s.guest.is_some() && !s.is_busy()
    });
    harness.state_mut().dispatch(Event::StartPayment);
    common::step_until(&mut harness, common::WAIT, "the payment choice", |s| {
        matches!(s.screen, Screen::PaymentChoice { .. }) && !s.is_busy()
    });
    harness
        .state_mut()
        .dispatch(Event::ChoosePaymentMode(PaymentMode::Spend));
    harness.state_mut().dispatch(Event::ExactAmount);
    harness.state_mut().dispatch(Event::ConfirmPayment);
    common::step_until(&mut harness, common::WAIT, "the payment", |s| {
        matches!(s.screen, Screen::Done { .. })
    });
    harness.state_mut().dispatch(Event::NewOrder);

    // Every exchange is logged with its request id before the bundle is made.
    let log_file = || {
        std::fs::read_dir(data.path().join("logs"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect::<String>()
    };
    let deadline = Instant::now() + common::WAIT;
    while !log_file().contains("call=\"commit\"") {
        assert!(Instant::now() < deadline, "the commit was not logged:\n{}", log_file());
        std::thread::sleep(Duration::from_millis(20));
    }
    let exchange_lines = log_file()
        .lines()
        .filter(|l| l.contains("backend call") && l.contains("request_id="))
        .count();
    assert!(
        exchange_lines >= 12,
        "{exchange_lines} exchange lines with a request id"
    );

    // The cashier opens the menu, picks a folder and presses «Сохранить».
    let out = data.path().join("chosen");
    harness.get_by_role_and_label(Role::Button, "Меню").click();
    harness.run_steps(3);
    assert!(
        harness.query_by_label("Отправка логов").is_some(),
        "the export is in the menu"
    );
    let field = harness.get_by_role(Role::TextInput);
    assert!(!field.value().unwrap_or_default().is_empty(), "the folder is prefilled");
    field.set_text_value_accesskit(&out.display().to_string());
    harness.run_steps(3);
    harness.get_by_role_and_label(Role::Button, "Сохранить").click();
    harness.run_steps(2);
    wait_for_export(&mut harness);
    let report = harness.state().export_panel().report().unwrap().clone();
    let zip_path = report.local_path().expect("saved").to_path_buf();
    assert!(zip_path.starts_with(&out), "saved in the chosen folder: {report:?}");
    assert!(
        harness.query_by_label_contains("Архив сохранён").is_some(),
        "the result is shown"
    );
    assert!(
        harness
            .query_by_label_contains(&zip_path.display().to_string())
            .is_some()
    );

    let raw = [
        PHONE,
        "9161234567",
        CARD,
        "4111111111111111",
        "SMITH/JOHN",
        &guest_token,
        &gift_token,
        &forged,
        SECRET,
        SERVER_TOKEN,
        PASSWORD,
    ];
    let entries = unzip(&zip_path);
    for name in ["system.txt", "config.toml", "devices.txt", "last-exchanges.txt"] {
        assert!(entries.contains_key(name), "{name} missing: {:?}", entries.keys());
    }
    assert_clean(&entries, &raw);
    let logs: String = entries
        .iter()
        .filter(|(name, _)| name.starts_with("logs/"))
        .map(|(_, text)| text.as_str())
        .collect();
    assert!(logs.contains("device read"), "the swipes are in the logs");
    assert!(logs.contains("request_id="), "request ids are in the logs");
    let exchanges = &entries["last-exchanges.txt"];
    assert!(
        exchanges.lines().filter(|l| l.contains("request_id=")).count() >= 12,
        "{exchanges}"
    );
    assert!(exchanges.contains("call=commit"), "{exchanges}");
    assert!(entries["config.toml"].contains("token_secret = \"[removed]\""));
    assert!(
        entries["devices.txt"].contains(&socat.a()),
        "{}",
        entries["devices.txt"]
    );
    assert!(entries["system.txt"].contains(env!("CARGO_PKG_VERSION")));

    // The command line, a separate process, finds the exchanges in the log files.
    let cli_out = data.path().join("cli");
    let output = Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["export-logs", "--out"])
        .arg(&cli_out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let cli_zip = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    let cli_entries = unzip(&cli_zip);
    assert_clean(&cli_entries, &raw);
    let from_logs = &cli_entries["last-exchanges.txt"];
    assert!(from_logs.contains("found in the log files"), "{from_logs}");
    assert!(
        from_logs.lines().filter(|l| l.contains("request_id=")).count() >= 12,
        "{from_logs}"
    );
}

/// A till folder with a config full of secrets and a log file written before log-time masking
/// existed (raw phone, card, stripe and token), and one exchange line.
fn till_folder(extra_config: &str) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("config.toml"), config_file(extra_config)).unwrap();
    let logs = data.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let token = sign_guest_token(SECRET.as_bytes(), "100001", 1_700_000_000);
    std::fs::write(
        logs.join("loyalty-till.2025-01-01.log"),
        format!(
            "2025-01-01T10:00:00.000001Z  INFO starting\n\
             2025-01-01T10:00:01.000001Z  WARN old line phone={PHONE} card {CARD} read {STRIPE} qr {token}\n\
             2025-01-01T10:00:02.000001Z  INFO exchange{{request_id=abc-1}}: loyalty_till::worker: backend call succeeded request=1 call=\"identify\"\n\
             2025-01-01T10:00:03.000001Z  INFO header Authorization: Bearer eyJhbGciOi.secret-part\n"
        ),
    )
    .unwrap();
    std::fs::write(logs.join("unrelated.txt"), "not a log").unwrap();
    data
}

fn run_cli(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
        .arg("--data-dir")
        .arg(data)
        .arg("export-logs")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_command_line_makes_a_masked_zip_with_every_entry() {
    let data = till_folder("");
    let out = data.path().join("out");
    let output = run_cli(data.path(), &["--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let path = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    assert_eq!(path.parent(), Some(out.as_path()));
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("loyalty-till-logs-till-9-") && name.ends_with(".zip"),
        "{name}"
    );
    let entries = unzip(&path);
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "config.toml",
            "devices.txt",
            "last-exchanges.txt",
            "logs/loyalty-till.2025-01-01.log",
            "system.txt"
        ]
    );
    assert_clean(&entries, &[PHONE, CARD, SECRET, SERVER_TOKEN, PASSWORD, "eyJhbGciOi"]);
    assert!(entries["last-exchanges.txt"].contains("request_id=abc-1"));
    let config = &entries["config.toml"];
    assert!(config.contains("token_max_age_secs = 600"), "{config}");
    assert!(config.contains("url = \"http://10.1.1.1:8080\""), "{config}");
    assert!(config.contains("[removed]"), "{config}");
    let log = &entries["logs/loyalty-till.2025-01-01.log"];
    assert!(log.contains("+7 *** ***-45-67") && log.contains("****0015"), "{log}");
    assert!(
        log.contains("[track 1 masked]") && log.contains("GMB1.[token masked]"),
        "{log}"
    );
    let system = &entries["system.txt"];
    assert!(
        system.contains(std::env::consts::OS) && system.contains("till_id: till-9"),
        "{system}"
    );
}

#[test]
fn a_folder_that_cannot_be_written_is_a_clear_error() {
    let data = till_folder("");
    let file = data.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("logs");
    let output = run_cli(data.path(), &["--out", under_file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a folder"), "{stderr}");
    assert!(stderr.contains("the log files are untouched"), "{stderr}");
    assert!(output.stdout.is_empty());

    // In the window, the fallback folder keeps the zip and the message says where.
    let fallback = data.path().join("support");
    let report = export::run(
        request(data.path(), &under_file, Some(fallback.clone()), None),
        Arc::new(|_| {}),
    );
    match &report.saved {
        Saved::Elsewhere { path, chosen } => {
            assert!(path.starts_with(&fallback) && path.exists());
            assert_eq!(chosen.dir(), under_file);
        }
        other => panic!("expected the fallback folder: {other:?}"),
    }
    let i18n = loyalty_till::i18n::I18n::new(loyalty_till::i18n::Lang::Ru);
    let (ok, lines) = loyalty_till::ui::support::report_lines(&i18n, &report, data.path());
    assert!(!ok);
    let text = lines.join(" ");
    assert!(
        text.contains("не папка") && text.contains("Архив сохранён здесь"),
        "{text}"
    );
}

fn request(data: &Path, out: &Path, fallback: Option<PathBuf>, url: Option<String>) -> ExportRequest {
    let paths = loyalty_till::config::Paths::resolve(Some(data)).unwrap();
    ExportRequest {
        bundle: BundleInput {
            config: Config::load(&paths.config_file),
            logs_dir: paths.logs_dir,
            config_file: paths.config_file,
            exchanges: None,
            ports: Some(Vec::new()),
            now_ms: now() * 1000,
        },
        out_dir: out.to_path_buf(),
        fallback_dir: fallback,
        upload_url: url,
    }
}

/// A one-request HTTP server on loopback: answers `status` and hands back the body it got.
fn serve_once(status: &'static str, reply: &'static str) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/upload", listener.local_addr().unwrap());
    let server = std::thread::Builder::new()
        .name("test-support-server".to_string())
        .spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            let header_end = loop {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed before its headers ended");
                data.extend_from_slice(&buf[..n]);
                if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end + 4;
                }
            };
            let headers = String::from_utf8_lossy(&data[..header_end]).to_ascii_lowercase();
            assert!(headers.starts_with("post /upload "), "{headers}");
            assert!(headers.contains("content-type: application/zip"), "{headers}");
            let length: usize = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .expect("a content length")
                .trim()
                .parse()
                .unwrap();
            while data.len() < header_end + length {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the body ended early");
                data.extend_from_slice(&buf[..n]);
            }
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            )
            .unwrap();
            data[header_end..].to_vec()
        })
        .unwrap();
    (url, server)
}

#[test]
fn the_zip_is_uploaded_with_progress() {
    let data = till_folder("");
    let out = data.path().join("out");
    let (url, server) = serve_once("200 OK", "ticket 42");
    let stages = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&stages);
    let report = export::run(
        request(data.path(), &out, None, Some(url)),
        Arc::new(move |stage| seen.lock().unwrap().push(stage)),
    );
    assert!(report.succeeded(), "{report:?}");
    match &report.uploaded {
        Uploaded::Sent(sent) => {
            assert_eq!(sent.status, 200);
            assert_eq!(sent.reply, "ticket 42");
        }
        other => panic!("not sent: {other:?}"),
    }
    let received = server.join().unwrap();
    let saved = std::fs::read(report.local_path().unwrap()).unwrap();
    assert_eq!(received, saved, "the server got the saved zip");
    let stages = stages.lock().unwrap();
    assert_eq!(stages[0], Stage::Collecting);
    let total = saved.len() as u64;
    assert!(stages.contains(&Stage::Uploading { sent: 0, total }), "{stages:?}");
    assert_eq!(
        stages.last(),
        Some(&Stage::Uploading { sent: total, total }),
        "{stages:?}"
    );
}

#[test]
fn an_unreachable_server_keeps_the_zip_and_says_so() {
    let data = till_folder("");
    let out = data.path().join("out");
    // A port that was just free: nothing listens there, so the connection is refused.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let report = export::run(
        request(data.path(), &out, None, Some(format!("http://127.0.0.1:{port}/upload"))),
        Arc::new(|_| {}),
    );
    assert!(!report.succeeded());
    assert!(
        matches!(&report.uploaded, Uploaded::Failed(UploadError::Unreachable { .. })),
        "{report:?}"
    );
    let kept = report.local_path().expect("kept locally");
    assert!(kept.exists() && kept.starts_with(&out));
    let i18n = loyalty_till::i18n::I18n::new(loyalty_till::i18n::Lang::Ru);
    let (ok, lines) = loyalty_till::ui::support::report_lines(&i18n, &report, data.path());
    let text = lines.join(" ");
    assert!(!ok);
    assert!(
        text.contains(&format!("сервер поддержки 127.0.0.1:{port} недоступен"))
            && text.contains("Архив остался на компьютере"),
        "{text}"
    );
    assert!(text.contains(&kept.display().to_string()), "{text}");
}

#[test]
fn a_server_error_from_the_command_line_keeps_the_zip() {
    let (url, server) = serve_once("500 Internal Server Error", "boom");
    let data = till_folder(&format!("[support]\nurl = \"{url}\"\n"));
    let out = data.path().join("out");
    let output = run_cli(data.path(), &["--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("HTTP 500") && stderr.contains("the zip is kept at"),
        "{stderr}"
    );
    assert!(stderr.contains("uploading:"), "progress is shown: {stderr}");
    let path = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    assert!(path.exists(), "{path:?}");
    assert_eq!(server.join().unwrap(), std::fs::read(&path).unwrap());
    // The URL itself is in the config part of the bundle only as the host.
    let entries = unzip(&path);
    assert!(entries["system.txt"].contains("support upload: configured (127.0.0.1)"));
}

#[test]
fn the_menu_says_when_the_folder_cannot_be_written_and_where_the_zip_went() {
    let data = tempfile::tempdir().unwrap();
    let mut harness = common::open_demo_app(data.path(), Config::default(), (420.0, 1200.0));
    harness.get_by_role_and_label(Role::Button, "Меню").click();
    harness.run_steps(3);
    let file = data.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let chosen = file.join("logs");
    harness
        .get_by_role(Role::TextInput)
        .set_text_value_accesskit(&chosen.display().to_string());
    harness.run_steps(3);
    harness.get_by_role_and_label(Role::Button, "Сохранить").click();
    harness.run_steps(2);
    wait_for_export(&mut harness);
    let report = harness.state().export_panel().report().unwrap().clone();
    let kept = report.local_path().expect("kept in the fallback folder").to_path_buf();
    assert!(kept.starts_with(data.path().join("support")), "{kept:?}");
    assert!(
        harness
            .query_by_label_contains(&format!("{} — не папка", chosen.display()))
            .is_some()
    );
    assert!(
        harness
            .query_by_label_contains(&format!("Архив сохранён здесь: {}", kept.display()))
            .is_some()
    );
    // The button is big enough for a finger.
    let button = harness.get_by_role_and_label(Role::Button, "Сохранить");
    assert!(button.rect().height() >= 56.0, "{:?}", button.rect());
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (the proleptic Gregorian calendar, as the log
/// file names are in UTC).
fn utc_date(days_since_epoch: i64) -> String {
    let z = days_since_epoch + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Two weeks of daily log files are kept: with 20 earlier days on disk, opening the log leaves
/// today's file and the 13 days before it, and touches no other file in the folder.
#[test]
fn log_files_are_kept_for_fourteen_days() {
    assert_eq!(utc_date(0), "1970-01-01");
    assert_eq!(utc_date(20_157), "2025-03-10");
    let dir = tempfile::tempdir().unwrap();
    let today = now().div_euclid(86_400);
    // Oldest first, a few milliseconds apart: the appender removes by creation time.
    for back in (1..=20).rev() {
        let name = format!("loyalty-till.{}.log", utc_date(today - back));
        std::fs::write(dir.path().join(name), "a day of log\n").unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(dir.path().join("notes.txt"), "not a log file\n").unwrap();

    let appender = loyalty_till::logging::file_appender(dir.path()).unwrap();
    drop(appender);

    let mut logs: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("loyalty-till."))
        .collect();
    logs.sort();
    let expected: Vec<String> = (0..14)
        .rev()
        .map(|back| format!("loyalty-till.{}.log", utc_date(today - back)))
        .collect();
    assert_eq!(logs, expected, "today's file and the 13 days before it");
    assert!(dir.path().join("notes.txt").exists());
}
