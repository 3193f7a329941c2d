//! A browser for the back office's pages, over HTTP: it keeps its cookies, follows no redirect
//! (so each answer is seen), and posts forms as a browser does, with the page's CSRF token. Every
//! cookie it is given must be SameSite=Strict, and the session's and the login's HttpOnly.

use super::Server;
use std::collections::HashMap;

pub struct Browser {
    pub http: reqwest::blocking::Client,
    pub base: String,
    cookies: HashMap<String, String>,
}

pub struct Reply {
    pub status: u16,
    /// The `Location` header, empty when there is none.
    pub location: String,
    pub body: String,
    pub bytes: Vec<u8>,
    pub headers: reqwest::header::HeaderMap,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser {
            http: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .unwrap(),
            base: server.url(""),
            cookies: HashMap::new(),
        }
    }

    /// A browser of its own client (another address, a client that sends a Host header).
    pub fn at(http: reqwest::blocking::Client, base: String) -> Browser {
        Browser {
            http,
            base,
            cookies: HashMap::new(),
        }
    }

    pub fn keep(&mut self, response: reqwest::blocking::Response) -> Reply {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            assert!(
                text.contains("SameSite=Strict"),
                "every cookie is SameSite=Strict: {text}"
            );
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if name.starts_with("lt_session") || name.starts_with("lt_login") {
                assert!(text.contains("HttpOnly"), "{text}");
            }
            self.cookies.insert(name.to_string(), value.to_string());
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.bytes().unwrap().to_vec();
        Reply {
            status,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            headers,
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn get(&mut self, path: &str) -> Reply {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .unwrap();
        self.keep(response)
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .unwrap();
        self.keep(response)
    }

    /// Posts a form with the CSRF token (and the operation id, when the page has one) of the
    /// page it is on.
    pub fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Reply {
        let html = self.get(page).body;
        let csrf = hidden(&html, "csrf");
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        let op_id;
        if html.contains("name=\"op_id\"") && !fields.iter().any(|(k, _)| *k == "op_id") {
            op_id = hidden(&html, "op_id");
            form.push(("op_id", &op_id));
        }
        form.extend_from_slice(fields);
        self.post(action, &form)
    }

    /// The sign-in form posted; the answer as it is (a refusal is for the test to see).
    pub fn login(&mut self, login: &str, password: &str) -> Reply {
        let html = self.get("/admin/login").body;
        let csrf = hidden(&html, "csrf");
        self.post(
            "/admin/login",
            &[("csrf", &csrf), ("login", login), ("password", password)],
        )
    }

    /// A browser signed in as `login`; the sign-in must succeed.
    pub fn signed_in(server: &Server, login: &str, password: &str) -> Browser {
        let mut browser = Browser::new(server);
        let reply = browser.login(login, password);
        assert_eq!(reply.status, 303, "signed in as {login}: {}", reply.body);
        browser
    }
}

pub fn encode(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first hidden input named `name`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}
