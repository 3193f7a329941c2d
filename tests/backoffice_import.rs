#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The guests' CSV import and export over HTTP, on SQLite and on PostgreSQL: each encoding
//! (UTF-8, UTF-8 with a BOM, Windows-1251) and separator, the preview, every reason a row is
//! refused, all or nothing (one bad row, or a clash that appears after the preview, imports
//! nothing), a repeated confirmation (no second credit), the same file again (refused), the
//! opening balance in the ledger and the audit log, the export's bytes, its round trip, the
//! owner-only pages and the size limit.

mod server_support;

use loyalty_till::backoffice::auth::hash_password;
use loyalty_till::backoffice::db::{self, Role, Val, save_user};
use loyalty_till::loyalty::import;
use server_support::browser::{Browser, Reply, hidden, pct};
use server_support::{ANNA_CARD, Db, ORG, OTHER_CARD, START, Server};
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery";

/// What the import pages add to the shared browser.
trait Import {
    fn upload(&mut self, name: &str, content: &[u8]) -> Reply;
    fn confirm(&mut self, preview: &str) -> Reply;
}

impl Import for Browser {
    /// Uploads a file on the import page as a browser does (multipart, the page's CSRF token).
    fn upload(&mut self, name: &str, content: &[u8]) -> Reply {
        let csrf = hidden(&self.get("/admin/guests/import").body, "csrf");
        let boundary = "----loyaltytestboundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n").as_bytes(),
        );
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .http
            .post(format!("{}/admin/guests/import", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .unwrap();
        self.keep(response)
    }

    /// Confirms the import a preview offers (its CSRF token, file token and operation id).
    fn confirm(&mut self, preview: &str) -> Reply {
        let fields = [
            ("csrf", hidden(preview, "csrf")),
            ("token", hidden(preview, "token")),
            ("op_id", hidden(preview, "op_id")),
            ("reason", "Перенос из прежней системы".to_string()),
        ];
        let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post("/admin/guests/import/confirm", &form)
    }
}

fn by_id(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no #{id} in {html}")) + marker.len();
    let start = html[start..].find('>').unwrap() + start + 1;
    html[start..].split('<').next().unwrap().to_string()
}

fn add_user(server: &Server, login: &str, role: Role) {
    let store = Arc::clone(&server.handle.store);
    let login = login.to_string();
    let hash = hash_password(PASSWORD).unwrap();
    server
        .handle
        .block_on(async move { save_user(&store, ORG, &login, &hash, role, START).await })
        .unwrap();
}

fn sql(server: &Server, sql: &'static str, params: Vec<Val>) -> Vec<Vec<Val>> {
    let store = Arc::clone(&server.handle.store);
    server
        .handle
        .block_on(async move { db::query(&store, sql, params).await })
        .unwrap()
}

fn guests_in_org(server: &Server) -> i64 {
    sql(server, "SELECT COUNT(*) FROM guests WHERE org = $1", vec![ORG.into()])[0][0].int()
}

/// The guest of ORG with this phone (normalised): name, balance, group.
fn guest_by_phone(server: &Server, phone: &str) -> Option<(i64, String, i64, String)> {
    sql(
        server,
        "SELECT g.id, g.name, g.balance, gg.name FROM identifiers i JOIN guests g ON g.id = i.guest_id
         JOIN guest_groups gg ON gg.id = g.group_id WHERE i.org = $1 AND i.value = $2",
        vec![ORG.into(), phone.into()],
    )
    .first()
    .map(|r| (r[0].int(), r[1].text(), r[2].int(), r[3].text()))
}

/// A file's rows with the separator between fields (fields holding it are quoted).
fn csv(separator: char, header: bool, rows: &[[&str; 6]]) -> String {
    let mut out = String::new();
    if header {
        out.push_str(&import::HEADER_RU.join(&separator.to_string()));
        out.push_str("\r\n");
    }
    for row in rows {
        // Quoted only where the separator needs it: a file as a person would write it.
        let fields: Vec<String> = row
            .iter()
            .map(|f| {
                if f.contains(separator) {
                    format!("\"{f}\"")
                } else {
                    f.to_string()
                }
            })
            .collect();
        out.push_str(&fields.join(&separator.to_string()));
        out.push_str("\r\n");
    }
    out
}

fn import_journey(db: Db) {
    let Some(server) = Server::start(db) else { return };
    add_user(&server, "owner", Role::Owner);
    add_user(&server, "manager", Role::Manager);
    let mut owner = Browser::signed_in(&server, "owner", PASSWORD);
    let guests_page = owner.get("/admin/guests").body;
    assert!(
        guests_page.contains("href=\"/admin/guests/import\""),
        "the guests page links the import"
    );
    let before = guests_in_org(&server);

    // Each encoding and separator, with and without a header and a BOM.
    let utf8 = csv(
        ';',
        true,
        &[
            ["Вера Иванова", "+7 900 111-22-01", "IMP-0001", "", "Guest", "1500,50"],
            ["Пётр", "8 900 111 22 02", "", "", "Guest", ""],
        ],
    );
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(
        csv(
            ',',
            true,
            &[[
                "Ёлка, ООО",
                "",
                "IMP-0003|IMP-0004",
                "manual_code|app_qr",
                "Guest",
                "0.05",
            ]],
        )
        .as_bytes(),
    );
    let zhanna_text = csv(';', false, &[["Жанна Щукина", "9001112205", "", "", "Guest", "12"]]);
    let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(&zhanna_text);
    let mut expected = before;
    for (file, bytes, encoding, separator, rows) in [
        ("utf8.csv", utf8.into_bytes(), "UTF-8,", ';', 2),
        ("bom.csv", bom, "UTF-8 (BOM)", ',', 1),
        ("cp1251.csv", cp1251.into_owned(), "Windows-1251", ';', 1),
    ] {
        let preview = owner.upload(file, &bytes);
        assert_eq!(preview.status, 200, "{}", preview.body);
        let read_as = preview.body.split("Прочитан как ").nth(1).unwrap_or_default();
        assert!(
            read_as.starts_with(encoding),
            "{file} read as {encoding}: {read_as:.40}"
        );
        assert!(
            read_as.contains(&format!("разделитель «{separator}»")),
            "{file}: {read_as:.60}"
        );
        assert_eq!(by_id(&preview.body, "rows"), format!("Строк с гостями: {rows}"));
        assert_eq!(by_id(&preview.body, "rejected-count"), "Не подходят: 0");
        assert!(preview.body.contains("id=\"first-rows\""), "the first rows are shown");
        let count = guests_in_org(&server);
        assert_eq!(count, expected, "a preview writes nothing");
        let done = owner.confirm(&preview.body);
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(
            by_id(&done.body, "imported").starts_with(&format!("Импортировано гостей: {rows}.")),
            "{file}: {}",
            by_id(&done.body, "imported")
        );
        expected += rows;
    }
    assert_eq!(guests_in_org(&server), before + 4);
    let vera = guest_by_phone(&server, "+79001112201").expect("Вера imported");
    assert_eq!(
        (vera.1.as_str(), vera.2, vera.3.as_str()),
        ("Вера Иванова", 150_050, "Guest")
    );
    assert_eq!(
        guest_by_phone(&server, "IMP-0001").unwrap().0,
        vera.0,
        "the card is Вера's"
    );
    assert_eq!(
        guest_by_phone(&server, "+79001112202").unwrap().2,
        0,
        "an empty balance is zero"
    );
    let elka = guest_by_phone(&server, "IMP-0004").expect("the BOM file's guest");
    assert_eq!((elka.1.as_str(), elka.2), ("Ёлка, ООО", 5));
    let kinds = sql(
        &server,
        "SELECT kind FROM identifiers WHERE guest_id = $1 ORDER BY kind",
        vec![elka.0.into()],
    );
    assert_eq!(kinds, vec![vec![Val::from("app_qr")], vec![Val::from("manual_code")]]);
    let zhanna = guest_by_phone(&server, "+79001112205").expect("the Windows-1251 guest");
    assert_eq!((zhanna.1.as_str(), zhanna.2), ("Жанна Щукина", 1_200));

    // The opening balance is a manual credit in the ledger with the reason, and audited.
    let ops = sql(
        &server,
        "SELECT kind, amount, balance_after, note FROM operations WHERE guest_id = $1",
        vec![vera.0.into()],
    );
    assert_eq!(ops.len(), 1);
    assert_eq!(
        (ops[0][0].text().as_str(), ops[0][1].int(), ops[0][2].int()),
        ("manual_credit", 150_050, 150_050)
    );
    assert_eq!(ops[0][3].text(), "owner: Перенос из прежней системы");
    assert!(
        sql(
            &server,
            "SELECT 1 FROM operations WHERE guest_id = $1",
            vec![guest_by_phone(&server, "+79001112202").unwrap().0.into()]
        )
        .is_empty(),
        "no posting for a zero balance"
    );
    let audit = owner.get(&format!("/admin/guests/{}", vera.0)).body;
    let changes = audit.split("id=\"changes\"").nth(1).unwrap();
    assert!(
        changes.contains("Импорт гостя") && changes.contains("Перенос из прежней системы"),
        "{changes}"
    );
    assert!(
        changes.contains("+7 *** ***-22-01"),
        "the phone masked in the audit log: {changes}"
    );
    assert!(!changes.contains("9001112201"), "never in full in the audit log");

    // Every reason a row is refused, each with its line; nothing is imported.
    let bad = csv(
        ';',
        true,
        &[
            ["Ок", "+7 900 222-00-01", "", "", "Guest", "1"],
            ["Плохой телефон", "12345", "", "", "Guest", "1"],
            ["Минус", "+7 900 222-00-03", "", "", "Guest", "-10"],
            ["Дробь", "+7 900 222-00-04", "", "", "Guest", "10,005"],
            ["Текст", "+7 900 222-00-05", "", "", "Guest", "сто"],
            ["Нет группы", "+7 900 222-00-06", "", "", "Золото", "1"],
            ["Дубль", "8 (900) 222-00-01", "", "", "Guest", "1"],
            ["Занят", "", ANNA_CARD, "", "Guest", "1"],
            ["Без всего", "", "", "", "Guest", "1"],
            ["Тип", "", "X-1", "phone", "Guest", "1"],
        ],
    ) + "Мало;столбцов\r\n"
        + "Чужая;;"
        + OTHER_CARD
        + ";;Guest;1\r\n";
    let preview = owner.upload("bad.csv", bad.as_bytes());
    assert_eq!(preview.status, 200);
    let rejected = preview.body.split("id=\"rejected\"").nth(1).expect("the refused rows");
    for (line, why) in [
        (3, "Телефон не похож"),
        (4, "Баланс отрицательный"),
        (5, "не число рублей"),
        (6, "не число рублей"),
        (7, "Такой группы нет"),
        (8, "уже есть в строке 2 файла"),
        (9, "уже есть у гостя организации"),
        (10, "Нет ни телефона, ни карты"),
        (11, "Неизвестный тип карты"),
        (12, "Столбцов 2, а нужно 6"),
    ] {
        let row = format!("<td class=\"num\">{line}</td><td>");
        let at = rejected
            .find(&row)
            .unwrap_or_else(|| panic!("line {line} refused: {rejected:.3000}"));
        let cell = rejected[at + row.len()..].split("</td>").next().unwrap();
        assert!(cell.contains(why), "line {line}: {why}, not {cell}");
    }
    assert_eq!(by_id(&preview.body, "rejected-count"), "Не подходят: 10");
    assert!(
        !rejected.contains("<td class=\"num\">2</td>"),
        "the good row is not refused"
    );
    assert!(
        !rejected.contains("<td class=\"num\">13</td>"),
        "another organisation's card is free here"
    );
    assert!(
        !preview.body.contains("name=\"token\""),
        "no import is offered while a row is wrong"
    );
    let table = rejected.split("</table>").next().unwrap();
    assert!(!table.contains("900 222-00"), "refusals name lines, not phones");
    assert!(guest_by_phone(&server, "+79002220001").is_none(), "nothing imported");
    // Every refused row, as a file: the lines and reasons the page shows.
    let list = owner.get("/admin/guests/import/rejected.csv");
    assert_eq!(list.status, 200);
    let lines: Vec<&str> = list.body.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 1 + 10, "{}", list.body);
    assert!(
        lines[1].starts_with("3;") && lines[1].contains("Телефон не похож"),
        "{}",
        lines[1]
    );
    assert!(
        lines[10].starts_with("12;") && lines[10].contains("Столбцов 2"),
        "{}",
        lines[10]
    );
    assert!(!list.body.contains("900 222-00"), "refusals name lines, not phones");

    // More refused rows than a page lists: the page counts the rest, the file has them all.
    let mut many = String::new();
    for i in 0..1_200 {
        many.push_str(&format!("Гость {i};12{i};;;Guest;1\r\n"));
    }
    let preview = owner.upload("many.csv", many.as_bytes());
    assert_eq!(by_id(&preview.body, "rejected-count"), "Не подходят: 1200");
    assert!(preview.body.contains("ещё 200 строк"), "the rest is counted");
    assert!(preview.body.contains("id=\"rejected-csv\""));
    let list = owner.get("/admin/guests/import/rejected.csv");
    assert_eq!(list.body.lines().count(), 1 + 1_200, "every refused row is listed");
    assert!(list.body.contains("\r\n1200;\"Телефон не похож"), "the last row too");

    // All or nothing after the preview too: a clash that appears before the confirmation.
    let late = csv(
        ';',
        false,
        &[
            ["Первый", "+7 900 333-00-01", "", "", "Guest", "5"],
            ["Второй", "+7 900 333-00-02", "", "", "Guest", "5"],
        ],
    );
    let preview = owner.upload("late.csv", late.as_bytes());
    assert!(preview.body.contains("name=\"token\""), "{}", preview.body);
    let store = Arc::clone(&server.handle.store);
    let group = server.ids.group;
    server
        .handle
        .block_on(async move {
            store
                .add_guest(ORG, "Конкурент", Some("+79003330002"), group, START)
                .await
        })
        .unwrap();
    let count = guests_in_org(&server);
    let done = owner.confirm(&preview.body);
    assert_eq!(done.status, 200);
    assert!(done.body.contains("id=\"not-imported\""), "{}", done.body);
    assert!(done.body.contains("уже есть у гостя организации"));
    assert_eq!(guests_in_org(&server), count, "one refused row: nothing imported");
    assert!(guest_by_phone(&server, "+79003330001").is_none());

    // A confirmation posted twice imports once; the same file again is refused.
    let again = csv(';', false, &[["Раз", "+7 900 444-00-01", "", "", "Guest", "7"]]);
    let preview = owner.upload("again.csv", again.as_bytes());
    let first = owner.confirm(&preview.body);
    let second = owner.confirm(&preview.body);
    assert_eq!(by_id(&first.body, "imported"), by_id(&second.body, "imported"));
    let once = guest_by_phone(&server, "+79004440001").unwrap();
    assert_eq!(once.2, 700, "credited once");
    assert_eq!(
        sql(
            &server,
            "SELECT COUNT(*) FROM guests WHERE name = $1",
            vec!["Раз".into()]
        )[0][0]
            .int(),
        1
    );
    let repeat = owner.upload("again.csv", again.as_bytes());
    assert!(
        repeat.body.contains("уже есть у гостя организации"),
        "a re-import is refused"
    );
    assert!(!repeat.body.contains("name=\"token\""));

    // The seventh column: a guest imported blocked is not identified at the till; a mark that is
    // neither a yes nor a no is refused with the reason.
    let blocked = format!(
        "{}\r\nЗаблок;+7 900 555-00-01;;;Guest;3;да\r\nОткрыт;+7 900 555-00-02;;;Guest;0;нет\r\n",
        import::HEADER_RU.join(";")
    );
    let preview = owner.upload("blocked.csv", blocked.as_bytes());
    assert_eq!(owner.confirm(&preview.body).status, 200, "{}", preview.body);
    let locked = sql(
        &server,
        "SELECT CASE WHEN blocked THEN 1 ELSE 0 END FROM guests WHERE name = $1",
        vec!["Заблок".into()],
    );
    assert_eq!(locked[0][0].int(), 1, "imported blocked");
    let open = sql(
        &server,
        "SELECT CASE WHEN blocked THEN 1 ELSE 0 END FROM guests WHERE name = $1",
        vec!["Открыт".into()],
    );
    assert_eq!(open[0][0].int(), 0);
    let refused = server.post(
        "/api/v1/identify",
        serde_json::json!({"kind": "manual", "payload": "+79005550001"}),
    );
    assert_ne!(
        refused.status, 200,
        "a blocked guest is not identified: {}",
        refused.body
    );
    let unsure = format!(
        "{}\r\nМожет;+7 900 555-00-03;;;Guest;0;может быть\r\n",
        import::HEADER_RU.join(";")
    );
    let preview = owner.upload("unsure.csv", unsure.as_bytes());
    assert!(preview.body.contains("В столбце «заблокирован»"), "{}", preview.body);

    // The export: UTF-8 with a BOM, `;`, every guest of the organisation in full, read back the same.
    let export = owner.get("/admin/guests/export.csv");
    assert_eq!(export.status, 200);
    assert!(export.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(
        export.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert!(export.bytes.starts_with(b"\xEF\xBB\xBF"), "a BOM for Excel");
    let read = import::read_file(&export.bytes);
    assert!(
        read.header && read.separator == ';' && read.rejected.is_empty(),
        "{:?}",
        read.rejected
    );
    assert_eq!(read.rows.len() as i64, guests_in_org(&server));
    let anna = read.rows.iter().find(|r| r.name == "Anna").unwrap();
    assert_eq!(
        anna.phone.as_deref(),
        Some("+79161234567"),
        "the owner's file holds phones in full"
    );
    assert_eq!(anna.cards[0].1, ANNA_CARD);
    assert_eq!(anna.balance.0, 100_000);
    assert!(
        read.rows.iter().find(|r| r.name == "Заблок").unwrap().blocked,
        "blocked is exported"
    );
    assert!(!anna.blocked);
    let elka_row = read.rows.iter().find(|r| r.name == "Ёлка, ООО").unwrap();
    assert_eq!(elka_row.cards.len(), 2, "several cards kept");
    assert!(
        !read.rows.iter().any(|r| r.name == "Olga"),
        "another organisation's guest is not exported"
    );

    // Owner only; a file over the limit is refused with a message.
    let mut manager = Browser::signed_in(&server, "manager", PASSWORD);
    assert_eq!(manager.get("/admin/guests/import").status, 403);
    assert_eq!(manager.get("/admin/guests/export.csv").status, 403);
    assert!(!manager.get("/admin/guests").body.contains("/admin/guests/import"));
    let huge = vec![b'x'; loyalty_till::backoffice::IMPORT_MAX_UPLOAD + 100_000];
    let refused = owner.upload("huge.csv", &huge);
    assert_eq!(refused.status, 413);
    assert!(refused.body.contains("больше 20 МБ"), "{}", refused.body);
}

/// The names of the guests a list page shows, and its «Назад» and «Дальше» links.
fn list_page(browser: &mut Browser, path: &str) -> (Vec<String>, Option<String>, Option<String>) {
    let html = browser.get(path).body;
    let names = html
        .split("<td><a href=\"/admin/guests/")
        .skip(1)
        .map(|cell| cell.split('>').nth(1).unwrap().split('<').next().unwrap().to_string())
        .collect();
    let pager = html.split("class=\"pager\"").nth(1).unwrap_or_default();
    let link = |arrow: &str| {
        pager
            .split("<a href=\"")
            .skip(1)
            .find(|a| a.contains(arrow))
            .map(|a| a.split('"').next().unwrap().replace("&amp;", "&"))
    };
    (names, link("←"), link("→"))
}

/// The guests list pages by the guest a page ends (or starts) on, forward and back, with and
/// without a name prefix; 120 guests made by an import.
fn guests_pages(db: Db) {
    let Some(server) = Server::start(db) else { return };
    add_user(&server, "owner", Role::Owner);
    let mut owner = Browser::signed_in(&server, "owner", PASSWORD);
    let rows: Vec<String> = (0..120).map(|i| format!("Гость {i:03};;P-{i:03};;Guest;")).collect();
    let preview = owner.upload("many.csv", rows.join("\n").as_bytes());
    assert!(by_id(&owner.confirm(&preview.body).body, "imported").contains("120"));
    let names =
        |range: std::ops::Range<usize>| -> Vec<String> { range.map(|i| format!("Гость {i:03}")).collect() };

    let (first, prev, next) = list_page(&mut owner, "/admin/guests");
    let mut expected = vec!["Anna".to_string(), "Boris".to_string()];
    expected.extend(names(0..48));
    assert_eq!(first, expected);
    assert!(prev.is_none());
    let (second, prev, next) = list_page(&mut owner, &next.expect("a next page"));
    assert_eq!(second, names(48..98));
    let (third, _, last_next) = list_page(&mut owner, &next.expect("a third page"));
    assert_eq!(third, names(98..120));
    assert!(last_next.is_none(), "the last page has no next");
    let (back, back_prev, _) = list_page(&mut owner, &prev.expect("back from the second page"));
    assert_eq!(back, expected, "back to the first page");
    assert!(back_prev.is_none(), "the first page has no previous");

    let (prefixed, _, next) = list_page(&mut owner, &format!("/admin/guests?q={}", pct("Гость")));
    assert_eq!(prefixed, names(0..50));
    let (prefixed, prev, _) = list_page(&mut owner, &next.unwrap());
    assert_eq!(prefixed, names(50..100));
    let (prefixed, _, _) = list_page(&mut owner, &prev.unwrap());
    assert_eq!(prefixed, names(0..50));
    let (narrow, prev, next) = list_page(&mut owner, &format!("/admin/guests?q={}", pct("Гость 11")));
    assert_eq!((narrow, prev, next), (names(110..120), None, None));
}

#[test]
fn guests_pages_on_sqlite() {
    guests_pages(Db::Sqlite);
}

#[test]
fn guests_pages_on_postgres() {
    guests_pages(Db::Postgres);
}

#[test]
fn import_journey_on_sqlite() {
    import_journey(Db::Sqlite);
}

#[test]
fn import_journey_on_postgres() {
    import_journey(Db::Postgres);
}
