#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! Two `loyalty-till serve` processes on one database, as a chain runs them behind a load
//! balancer: a till token revoked in the back office of one is refused there on its next request
//! and by the other as soon as the database has told it (at once on SQLite, which keeps no token;
//! PostgreSQL's notification on PostgreSQL); the command line's changes (an account, till tokens made and revoked) are in
//! the audit log. On SQLite (one file) and on PostgreSQL (a database of its own).

mod server_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

const PASSWORD: &str = "correct horse battery";

fn till() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loyalty-till"));
    command.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    command
}

/// Runs a command line tool, with `stdin` on its standard input; its stdout on success.
fn cli(args: &[&str], stdin: &str) -> String {
    let mut child = till()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A `serve` process and its address; killed when dropped.
struct Process {
    child: Child,
    url: String,
}

impl Process {
    fn start(db: &str) -> Process {
        let mut child = till()
            .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("not started: {line:?}"))
            .to_string();
        Process { child, url }
    }

    /// Asks until the token is refused (at most 10 s): how long that took.
    fn refused_within(&self, token: &str) -> std::time::Duration {
        server_support::wait_until("the revoked token is refused", || self.till_status(token) == 401)
    }

    fn till_status(&self, token: &str) -> u16 {
        reqwest::blocking::Client::new()
            .get(format!("{}/api/v1/till", self.url))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-in back-office session on one process.
struct Owner {
    http: reqwest::blocking::Client,
    base: String,
    cookies: HashMap<String, String>,
}

impl Owner {
    fn login(process: &Process) -> Owner {
        let mut owner = Owner {
            http: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: process.url.clone(),
            cookies: HashMap::new(),
        };
        let csrf = hidden(&owner.get("/admin/login").1, "csrf");
        let (status, _) = owner.post(
            "/admin/login",
            &format!("csrf={csrf}&login=owner&password={}", PASSWORD.replace(' ', "+")),
        );
        assert_eq!(status, 303, "signed in");
        owner
    }

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

    fn cookie(&self) -> String {
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
            .header("cookie", self.cookie())
            .send()
            .unwrap();
        self.keep(response)
    }

    fn post(&mut self, path: &str, body: &str) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .unwrap();
        self.keep(response)
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The whole story on one database URL.
fn two_processes(db: &str) {
    let token = cli(
        &["till-token", "create", "--db", db, "--org", "cafe", "--till", "till-1"],
        "",
    )
    .trim()
    .to_string();
    cli(
        &["owner", "create", "--db", db, "--org", "cafe", "--login", "owner"],
        &format!("{PASSWORD}\n"),
    );
    let spare = cli(
        &["till-token", "create", "--db", db, "--org", "cafe", "--till", "till-2"],
        "",
    )
    .trim()
    .to_string();

    let a = Process::start(db);
    let b = Process::start(db);
    // Both know the token (a server that caches it has it cached now).
    assert_eq!(a.till_status(&token), 200);
    assert_eq!(b.till_status(&token), 200);
    assert_eq!(b.till_status(&spare), 200);

    let mut owner = Owner::login(&a);
    let csrf = hidden(&owner.get("/admin/tills").1, "csrf");
    let (status, body) = owner.post("/admin/tills/till-1/revoke", &format!("csrf={csrf}"));
    assert_eq!(status, 303, "{body}");
    assert_eq!(a.till_status(&token), 401, "refused where it was revoked");
    let took = b.refused_within(&token);
    println!("the other server refused the revoked token after {took:?}");
    assert_eq!(b.till_status(&spare), 200, "the other till is untouched");

    // The command line revokes too, and B refuses it.
    let out = cli(
        &["till-token", "revoke", "--db", db, "--org", "cafe", "--till", "till-2"],
        "",
    );
    assert!(out.contains("till-2"), "{out}");
    b.refused_within(&spare);
    let again = till()
        .args(["till-token", "revoke", "--db", db, "--org", "cafe", "--till", "till-2"])
        .output()
        .unwrap();
    assert!(!again.status.success(), "nothing left to revoke");
    assert!(String::from_utf8_lossy(&again.stderr).contains("no till till-2"));

    // Every change is in the log, the command line's as made by the command line.
    let (status, log) = owner.get("/admin/audit");
    assert_eq!(status, 200);
    let start = log.find("id=\"audit\"").unwrap();
    let log = &log[start..start + log[start..].find("</table>").unwrap()];
    let rows = |action: &str| log.matches(action).count();
    assert_eq!(
        rows("Токен кассы создан"),
        2,
        "till-1 and till-2 from the command line: {log}"
    );
    assert_eq!(
        rows("Токен кассы отозван"),
        2,
        "one on the page, one from the command line: {log}"
    );
    assert_eq!(rows("Учётная запись создана или изменена"), 1, "{log}");
    assert_eq!(rows("command line"), 4, "{log}");
    assert!(log.contains("owner (owner)"), "the login and role: {log}");
    assert!(!log.contains(&token) && !log.contains(&spare), "no secret in the log");
    assert!(!log.contains("horse"), "no password in the log");
}

#[test]
fn revoked_at_once_on_sqlite() {
    let dir = tempfile::TempDir::new().unwrap();
    two_processes(&format!("sqlite://{}", dir.path().join("ledger.sqlite").display()));
}

#[test]
fn revoked_at_once_on_postgres() {
    let Some(url) = server_support::pg_url() else { return };
    // A database of its own: `serve` keeps its tables in the database's default schema.
    let name = format!(
        "lt_procs_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let admin = |sql: String| {
        let url = url.clone();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                client.batch_execute(&sql).await.unwrap();
            });
    };
    admin(format!("CREATE DATABASE {name}"));
    let (base, query) = url.split_once('?').map_or((url.as_str(), ""), |(b, q)| (b, q));
    let db = format!(
        "{}/{name}{}{query}",
        &base[..base.rfind('/').unwrap()],
        if query.is_empty() { "" } else { "?" }
    );
    let outcome = std::panic::catch_unwind(|| two_processes(&db));
    admin(format!("DROP DATABASE {name} WITH (FORCE)"));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
