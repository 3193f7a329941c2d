#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The settings page at `{base}/settings` over real HTTP on loopback, saving to a real
//! config.toml written the way an owner writes one (comments, a key this version does not know):
//! the PIN and its lock-out, the CSRF token, the Host check, bad input refused with the file
//! unchanged, and a save read back from the file with the comments kept.

use loyalty_till::backend::{Clock, EmbeddedBackend, SystemClock};
use loyalty_till::config::{Config, ScanSettings};
use loyalty_till::handhelds::HandheldServer;
use loyalty_till::i18n::{I18n, Lang};
use loyalty_till::ledger::Ledger;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

const SETTINGS_PIN: &str = "2468";
const WAITER_PIN: &str = "4921";

const OWNER_CONFIG: &str = r#"# The till of the cafe on Lenina street.
program_name = "GetMeBack"   # the brand on the big button
till_id = "till-7"
future_key = "kept"          # a key this version does not know

[handhelds]
address = "127.0.0.1"        # loopback only until the handhelds are set up
port = 3000
path = "/GetMeBack"
waiter_pins = ["4921"]
settings_pin = "2468"
gift_item_codes = { "Капучино" = "00123" }

# The chain's server, not used yet.
[server]
url = ""

[unknown_section]
x = 1
"#;

struct Till {
    _dir: tempfile::TempDir,
    config: PathBuf,
    server: HandheldServer,
}

impl Till {
    fn new() -> Till {
        Till::with_config(OWNER_CONFIG)
    }

    fn with_config(text: &str) -> Till {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("demo.sqlite");
        assert!(Ledger::open(&ledger).unwrap().seed_demo(SystemClock.now()).unwrap());
        let config = dir.path().join("config.toml");
        std::fs::write(&config, text).unwrap();
        let settings = Config::load(&config).handhelds;
        assert_eq!(settings.settings_pin, SETTINGS_PIN, "the test's config reads");
        let server = HandheldServer::spawn_with_config(
            settings,
            Lang::Ru,
            ScanSettings::default(),
            dir.path().join("demo-handhelds.sqlite"),
            Box::new(move || Ok(Box::new(EmbeddedBackend::open(ledger, Box::new(SystemClock))?))),
            config.clone(),
        )
        .unwrap();
        Till {
            _dir: dir,
            config,
            server,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr().port())
    }

    fn get(&self, cookies: &str) -> Answer {
        send(self.addr(), "GET", "/GetMeBack/settings", &self.host(), cookies, None)
    }

    fn post(&self, path: &str, cookies: &str, form: &[(&str, &str)]) -> Answer {
        send(
            self.addr(),
            "POST",
            path,
            &self.host(),
            cookies,
            Some(&urlencoded(form)),
        )
    }

    /// The login form's CSRF cookie and field.
    fn login_form(&self) -> (String, String) {
        let page = self.get("");
        assert_eq!(page.status, 200, "{page:?}");
        (page.cookie("gmb_settings_login").unwrap(), page.hidden("csrf"))
    }

    fn login(&self, pin: &str) -> Answer {
        let (cookie, csrf) = self.login_form();
        self.post(
            "/GetMeBack/settings/login",
            &format!("gmb_settings_login={cookie}"),
            &[("csrf", &csrf), ("pin", pin)],
        )
    }

    /// Signs in; the session cookie and the form page's fields.
    fn session(&self) -> (String, Answer) {
        let answer = self.login(SETTINGS_PIN);
        assert_eq!(answer.status, 303, "{answer:?}");
        let set_cookie = answer.header("set-cookie").unwrap();
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
            "{set_cookie}"
        );
        assert!(set_cookie.contains("Path=/GetMeBack/settings"), "{set_cookie}");
        let cookie = format!("gmb_settings={}", answer.cookie("gmb_settings").unwrap());
        let page = self.get(&cookie);
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains(&ru("st-section-iiko")),
            "the iiko note is on the page"
        );
        (cookie, page)
    }

    /// The form as the page shows it, with `changes` typed over it.
    fn save(&self, cookie: &str, page: &Answer, changes: &[(&str, &str)]) -> Answer {
        let mut form: Vec<(String, String)> = page.inputs();
        for (name, value) in changes {
            match form.iter_mut().find(|(n, _)| n == name) {
                Some(field) => field.1 = value.to_string(),
                None => form.push((name.to_string(), value.to_string())),
            }
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        self.post("/GetMeBack/settings", cookie, &pairs)
    }

    fn file(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap()
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            if !key.trim().eq_ignore_ascii_case("set-cookie") {
                return None;
            }
            let pair = value.trim().split(';').next()?;
            let (cookie, value) = pair.split_once('=')?;
            (cookie == name).then(|| value.to_string())
        })
    }

    /// The value of the first input named `name`.
    fn hidden(&self, name: &str) -> String {
        self.inputs()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no input {name}"))
    }

    /// Every text, hidden and number input of the page, the checked radio and the selected
    /// option: what a browser would post untouched.
    fn inputs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for tag in self.body.split('<').skip(1) {
            let attr = |name: &str| {
                let key = format!(" {name}=\"");
                let start = tag.find(&key)? + key.len();
                let end = tag[start..].find('"')?;
                Some(unescape(&tag[start..start + end]))
            };
            if tag.starts_with("input ") {
                let kind = attr("type").unwrap_or_else(|| "text".into());
                let Some(name) = attr("name") else { continue };
                let checked = tag.contains(" checked");
                match kind.as_str() {
                    "radio" | "checkbox" if !checked => {}
                    "checkbox" => out.push((name, "on".into())),
                    _ => out.push((name, attr("value").unwrap_or_default())),
                }
            } else if tag.starts_with("select ") {
                let name = attr("name").unwrap();
                let after = &self.body[self.body.find(&format!("<select name=\"{name}\"")).unwrap()..];
                let option = after.split("<option").find(|o| o.contains(" selected")).unwrap();
                let start = option.find("value=\"").unwrap() + 7;
                let end = option[start..].find('"').unwrap();
                out.push((name, option[start..start + end].to_string()));
            }
        }
        out
    }
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn urlencoded(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn send(addr: SocketAddr, method: &str, path: &str, host: &str, cookies: &str, form: Option<&str>) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = form.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if form.is_some() {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    if !cookies.is_empty() {
        head.push_str(&format!("Cookie: {cookies}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    Answer {
        status: head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        headers: head.to_string(),
        body: body.to_string(),
    }
}

fn ru(key: &str) -> String {
    I18n::new(Lang::Ru).t(key)
}

#[test]
fn wrong_pins_lock_the_address_out_but_not_the_waiters() {
    let till = Till::new();
    let page = till.get("");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"pin\""), "no session: the login form");
    assert!(!page.body.contains("name=\"port\""), "no settings before the PIN");
    for attempt in 1..=4 {
        let answer = till.login("1111");
        assert_eq!(answer.status, 401, "wrong PIN {attempt}");
        assert!(answer.body.contains(&ru("st-err-pin")), "{}", answer.body);
        assert!(answer.cookie("gmb_settings").is_none());
    }
    let fifth = till.login("1111");
    assert_eq!(fifth.status, 429, "the fifth wrong PIN locks out");
    assert!(
        fifth
            .header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() > 200)
    );
    let right = till.login(SETTINGS_PIN);
    assert_eq!(right.status, 429, "the right PIN during the lock-out teaches nothing");
    assert!(right.cookie("gmb_settings").is_none());
    // The waiters' PINs have a count of their own: their check-ins from this address go on.
    let checkin = send(
        till.addr(),
        "POST",
        "/GetMeBack/orders/6f1c2b1e-0d1a-4c53-9a44-3b7e2f9d0a11/checkin",
        &till.host(),
        "",
        None,
    );
    assert_eq!(checkin.status, 415, "reached the check-in, not the settings' lock-out");
    let body = serde_json::json!({ "Value": "100001", "WaiterPin": WAITER_PIN }).to_string();
    let mut stream = TcpStream::connect(till.addr()).unwrap();
    write!(
        stream,
        "POST /GetMeBack/orders/6f1c2b1e-0d1a-4c53-9a44-3b7e2f9d0a11/checkin HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        till.host(),
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 204"), "the waiter checks in: {raw}");
    assert_eq!(till.file(), OWNER_CONFIG);
}

#[test]
fn csrf_is_required_to_sign_in_and_to_save() {
    let till = Till::new();
    // A login without the login form's cookie (a cross-site post carries none).
    let (_, csrf) = till.login_form();
    let answer = till.post(
        "/GetMeBack/settings/login",
        "",
        &[("csrf", &csrf), ("pin", SETTINGS_PIN)],
    );
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(answer.cookie("gmb_settings").is_none());

    let (cookie, page) = till.session();
    let without: Vec<(String, String)> = page.inputs().into_iter().filter(|(n, _)| n != "csrf").collect();
    let mut form: Vec<(&str, &str)> = without.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    form.retain(|(n, _)| *n != "port");
    form.push(("port", "3100"));
    let missing = till.post("/GetMeBack/settings", &cookie, &form);
    assert_eq!(missing.status, 403, "no CSRF token");
    assert!(missing.body.contains(&ru("st-err-csrf")));
    form.push(("csrf", "0000"));
    let wrong = till.post("/GetMeBack/settings", &cookie, &form);
    assert_eq!(wrong.status, 403, "another CSRF token");
    assert_eq!(till.file(), OWNER_CONFIG, "nothing written");

    // Without a session the save goes back to the login, and writes nothing.
    let stranger = till.save("", &page, &[("port", "3100")]);
    assert_eq!(stranger.status, 303);
    assert_eq!(till.file(), OWNER_CONFIG);
}

#[test]
fn bad_input_is_named_next_to_its_field_and_the_file_is_unchanged() {
    let till = Till::new();
    let (cookie, page) = till.session();
    let answer = till.save(
        &cookie,
        &page,
        &[
            ("port", "70000"),
            ("path", "GetMeBack"),
            ("address", "till.local"),
            ("backend", "server"),
            ("server_url", "ftp://loyalty.example"),
            ("bonus_payment_type", "cash"),
            ("gift_name_1", "Десерт дня"),
            ("program_name", "Кофейня"),
        ],
    );
    assert_eq!(answer.status, 422, "{}", answer.body);
    for (field, key) in [
        ("port", "st-err-port"),
        ("path", "st-err-path"),
        ("address", "st-err-address"),
        ("server_url", "st-err-url"),
        ("bonus_payment_type", "st-err-bonus-type"),
        ("gift_1", "st-err-gift"),
    ] {
        let marker = format!("id=\"invalid_{field}\" role=\"alert\">{}", ru(key));
        assert!(answer.body.contains(&marker), "{field}: {marker} not in the page");
    }
    assert!(answer.body.contains(&ru("st-not-saved")));
    // What was typed is still in the form, to correct.
    assert_eq!(answer.hidden("port"), "70000");
    assert_eq!(answer.hidden("program_name"), "Кофейня");
    assert_eq!(till.file(), OWNER_CONFIG, "nothing written, not even the good fields");
    // The gift rows shown back: the configured one, the one typed, and three blank ones.
    assert_eq!(answer.hidden("gift_rows"), "5");
    assert_eq!(answer.hidden("gift_name_1"), "Десерт дня");
}

#[test]
fn a_save_is_in_the_file_with_the_comments_and_says_what_needs_a_restart() {
    let till = Till::new();
    let (cookie, page) = till.session();
    assert_eq!(page.hidden("port"), "3000");
    assert!(page.body.contains(&ru("st-token-unset")));
    let answer = till.save(
        &cookie,
        &page,
        &[
            ("port", "3100"),
            ("program_name", "Кофейня «Ромашка»"),
            ("bonus_payment_type", "9B2F6A1E-3C4D-4E5F-8A9B-0C1D2E3F4A5B"),
            ("gift_name_1", "Десерт дня"),
            ("gift_code_1", "00456"),
            ("log_level", "debug"),
        ],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains(&ru("st-saved")));
    assert!(
        answer.body.contains(&ru("st-what-endpoint")) && answer.body.contains("id=\"restart\""),
        "the port waits for a restart, and the page says so"
    );
    assert!(answer.body.contains("http://127.0.0.1:3100/GetMeBack/settings"));

    let text = till.file();
    let config = Config::load(&till.config);
    assert_eq!(config.handhelds.port, 3100);
    assert_eq!(config.program_name, "Кофейня «Ромашка»");
    assert_eq!(
        config.handhelds.bonus_payment_type,
        "9b2f6a1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    );
    assert_eq!(
        config
            .handhelds
            .gift_item_codes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        [("Десерт дня", "00456"), ("Капучино", "00123")]
    );
    assert_eq!(config.log_level, "debug");
    assert_eq!(
        config.handhelds.waiter_pins,
        ["4921"],
        "what the page does not show is kept"
    );
    for kept in [
        "# The till of the cafe on Lenina street.",
        "program_name = \"Кофейня «Ромашка»\"   # the brand on the big button",
        "future_key = \"kept\"          # a key this version does not know",
        "address = \"127.0.0.1\"        # loopback only until the handhelds are set up",
        "port = 3100\n",
        "# The chain's server, not used yet.",
        "[unknown_section]\nx = 1",
    ] {
        assert!(text.contains(kept), "{kept:?} lost from:\n{text}");
    }
    assert!(
        text.contains("gift_item_codes = {"),
        "the inline table stays inline:\n{text}"
    );
    assert!(
        !text.contains("token") && !text.contains("timeout_secs"),
        "a key left unchanged is not written with its default:\n{text}"
    );
    assert!(
        !till.config.with_extension("toml.tmp").exists(),
        "no temporary file left"
    );

    // Read back through the page too; the same form saved again changes nothing.
    let again = till.get(&cookie);
    assert_eq!(again.hidden("port"), "3100");
    let same = till.save(&cookie, &again, &[]);
    assert_eq!(same.status, 200);
    assert!(same.body.contains(&ru("st-saved-nothing")), "{}", same.body);
    assert_eq!(till.file(), text, "an unchanged form leaves the file byte for byte");

    // A gift row cleared removes its mapping.
    let cleared = till.save(&cookie, &again, &[("gift_name_0", ""), ("gift_code_0", "")]);
    assert_eq!(cleared.status, 200);
    let config = Config::load(&till.config);
    assert_eq!(config.handhelds.gift_item_codes.len(), 1);
    assert!(config.handhelds.gift_item_codes.contains_key("Капучино"));
}

#[test]
fn the_server_token_is_write_only() {
    let till = Till::new();
    let (cookie, page) = till.session();
    let no_token = till.save(
        &cookie,
        &page,
        &[("backend", "server"), ("server_url", "http://loyalty.example:8080")],
    );
    assert_eq!(no_token.status, 422, "a server needs a token");
    assert!(no_token.body.contains(&ru("st-err-token-needed")));
    assert_eq!(till.file(), OWNER_CONFIG);

    let saved = till.save(
        &cookie,
        &page,
        &[
            ("backend", "server"),
            ("server_url", "http://loyalty.example:8080/"),
            ("server_token", "till-token-secret-1"),
        ],
    );
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(!saved.body.contains("till-token-secret-1"), "the token is never shown");
    assert!(saved.body.contains(&ru("st-token-set")));
    assert!(
        saved.body.contains(&ru("st-what-backend")),
        "a new backend waits for a restart"
    );
    let config = Config::load(&till.config);
    assert_eq!(config.server.url, "http://loyalty.example:8080");
    assert_eq!(config.server.token, "till-token-secret-1");
    // Saved again with the token field empty: the token stays.
    let page = till.get(&cookie);
    assert_eq!(page.hidden("server_token"), "");
    let kept = till.save(&cookie, &page, &[("program_name", "Кофейня")]);
    assert_eq!(kept.status, 200);
    assert_eq!(Config::load(&till.config).server.token, "till-token-secret-1");
    // Back to the embedded ledger.
    let page = till.get(&cookie);
    let embedded = till.save(&cookie, &page, &[("backend", "embedded")]);
    assert_eq!(embedded.status, 200);
    assert!(!Config::load(&till.config).server.is_set());
}

#[test]
fn only_configured_host_headers_are_answered() {
    let till = Till::new();
    let port = till.addr().port();
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        String::new(),
    ] {
        let answer = send(till.addr(), "GET", "/GetMeBack/settings", &host, "", None);
        assert_eq!(answer.status, 421, "Host {host:?}");
    }
    let answer = send(
        till.addr(),
        "GET",
        "/GetMeBack/settings",
        &format!("localhost:{port}"),
        "",
        None,
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(
        answer
            .header("content-security-policy")
            .is_some_and(|c| c.contains("frame-ancestors 'none'"))
    );
    assert!(answer.header("access-control-allow-origin").is_none(), "no CORS");
}

#[test]
fn the_page_is_not_served_without_a_settings_pin() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("demo.sqlite");
    assert!(Ledger::open(&ledger).unwrap().seed_demo(SystemClock.now()).unwrap());
    let config = dir.path().join("config.toml");
    std::fs::write(&config, OWNER_CONFIG.replace("settings_pin = \"2468\"\n", "")).unwrap();
    let server = HandheldServer::spawn_with_config(
        Config::load(&config).handhelds,
        Lang::Ru,
        ScanSettings::default(),
        dir.path().join("demo-handhelds.sqlite"),
        Box::new(move || Ok(Box::new(EmbeddedBackend::open(ledger, Box::new(SystemClock))?))),
        config,
    )
    .unwrap();
    let host = format!("127.0.0.1:{}", server.addr.port());
    let answer = send(server.addr, "GET", "/GetMeBack/settings", &host, "", None);
    assert_eq!(answer.status, 404);
}

/// One JSON exchange with the endpoint (a check-in, a POS call).
fn json_call(
    till: &Till,
    method: &str,
    path: &str,
    headers: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = body.to_string();
    let mut stream = TcpStream::connect(till.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "{method} /GetMeBack{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        till.host(),
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer: {raw:?}"));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// The gift item codes saved on the page are what the POS gets next, without a restart.
#[test]
fn gift_item_codes_reach_the_pos_at_once() {
    const ORDER: &str = "6f1c2b1e-0d1a-4c53-9a44-3b7e2f9d0a11";
    let till = Till::with_config(&OWNER_CONFIG.replace(
        "settings_pin = \"2468\"\n",
        "settings_pin = \"2468\"\npos_token = \"pos-secret-7f3a\"\n",
    ));
    let auth = "Authorization: Bearer pos-secret-7f3a\r\n";
    // The endpoint opens its backend on its own thread: wait for it.
    let mut answered = false;
    for _ in 0..200 {
        let (status, _) = json_call(&till, "GET", "/pos/health", auth, &serde_json::Value::Null);
        if status == 200 {
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(answered, "the endpoint never answered");
    let checkin = serde_json::json!({ "Value": "G100001", "WaiterPin": WAITER_PIN });
    let (status, _) = json_call(&till, "POST", &format!("/orders/{ORDER}/checkin"), "", &checkin);
    assert_eq!(status, 204, "the waiter checks the gift in");
    let order = serde_json::json!({"revision": 1, "number": "117", "table": "5", "status": "open", "total": 35_000,
        "lines": [{"lineId": "l1", "itemCode": "1001", "name": "Борщ", "quantity": 1000, "price": 35_000, "amount": 35_000}]});
    let (status, _) = json_call(
        &till,
        "PUT",
        &format!("/pos/orders/{ORDER}"),
        &format!("{auth}Idempotency-Key: p1\r\n"),
        &order,
    );
    assert_eq!(status, 200);
    let item_code = || {
        let (status, result) = json_call(
            &till,
            "GET",
            &format!("/pos/orders/{ORDER}"),
            auth,
            &serde_json::Value::Null,
        );
        assert_eq!(status, 200, "{result}");
        result["gifts"][0]["itemCode"].as_str().map(str::to_string)
    };
    assert_eq!(
        item_code().as_deref(),
        Some("00123"),
        "the code from config.toml at start"
    );
    let (cookie, page) = till.session();
    assert_eq!(page.hidden("gift_name_0"), "Капучино");
    let saved = till.save(&cookie, &page, &[("gift_code_0", "00999")]);
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains(&ru("st-what-pos")));
    assert!(!saved.body.contains("id=\"restart\""), "nothing waits for a restart");
    assert_eq!(
        item_code().as_deref(),
        Some("00999"),
        "the POS gets the new code at once"
    );
}
