#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The back office over HTTP, on SQLite and on PostgreSQL: sign-in and its throttle, CSRF,
//! roles, a group pair and a guest made through the pages, a credit, the guest identified and
//! paying through /api/v1, the history, «Сбросить холды», escaping, duplicate identifiers.

mod server_support;

use loyalty_till::backoffice::auth::hash_password;
use loyalty_till::backoffice::db::{Role, save_user};
use loyalty_till::domain::{ReturnPart, UnixSeconds};
use loyalty_till::money::Kopecks;
use serde_json::json;
use server_support::browser::{Browser, Reply, hidden};
use server_support::{ANNA_CARD, Db, ORG, OTHER_ORG, START, Server, rub};
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery";

/// The text of the element with this id.
fn by_id(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no #{id} in {html}")) + marker.len();
    html[start..].split('<').next().unwrap().to_string()
}

fn add_user(server: &Server, org: &str, login: &str, role: Role) {
    let store = Arc::clone(&server.handle.store);
    let (org, login) = (org.to_string(), login.to_string());
    let hash = hash_password(PASSWORD).unwrap();
    server
        .handle
        .block_on(async move { save_user(&store, &org, &login, &hash, role, START).await })
        .unwrap();
}

/// A server on `db` with its owner signed in; `None` when that database is not available here.
fn owner_signed_in(db: Db) -> Option<(Server, Browser)> {
    let server = Server::start(db)?;
    add_user(&server, ORG, "owner", Role::Owner);
    let mut owner = Browser::new(&server);
    assert_eq!(owner.login("owner", PASSWORD).status, 303);
    Some((server, owner))
}

/// The guest id a page redirected to.
fn guest_id(reply: &Reply) -> i64 {
    assert_eq!(reply.status, 303, "{}", reply.body);
    reply
        .location
        .trim_start_matches("/admin/guests/")
        .parse()
        .unwrap_or_else(|_| panic!("not a guest page: {}", reply.location))
}

fn owner_journey(db: Db) {
    let Some(server) = Server::start(db) else { return };
    add_user(&server, ORG, "owner", Role::Owner);
    let mut owner = Browser::new(&server);

    // Pages need a session; a wrong password is refused.
    assert_eq!(owner.get("/admin/guests").location, "/admin/login");
    let wrong = owner.login("owner", "wrong password");
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Неверный логин или пароль"), "{}", wrong.body);
    // A login post without the login page's token is refused.
    let forged = owner.post(
        "/admin/login",
        &[("csrf", "forged"), ("login", "owner"), ("password", PASSWORD)],
    );
    assert_eq!(forged.status, 403);
    let signed_in = owner.login("owner", PASSWORD);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location, "/admin/guests");
    let list = owner.get("/admin/guests");
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains("Anna") && !list.body.contains("Olga"),
        "own organisation only"
    );

    // CSRF: a form without the session's token changes nothing.
    let anna = server.ids.anna;
    let before = server.balance(anna).0;
    let no_csrf = owner.post(
        &format!("/admin/guests/{anna}/manual"),
        &[
            ("csrf", "x"),
            ("op_id", "aaaaaaaaaaaaaaaaaaaa"),
            ("kind", "credit"),
            ("amount", "100"),
            ("reason", "r"),
        ],
    );
    assert_eq!(no_csrf.status, 403);
    assert_eq!(server.balance(anna).0, before);

    // The seed's group pair: 5 % at 500 ₽ and 10 % at 1 000 ₽, never downgrade.
    for (name, rank, threshold, accrual) in [("Silver", "2", "500", "5"), ("Gold", "3", "1000", "10")] {
        let made = owner.submit(
            "/admin/groups",
            "/admin/groups",
            &[
                ("name", name),
                ("rank", rank),
                ("threshold", threshold),
                ("discount", "0"),
                ("accrual", accrual),
                ("never_downgrade", "1"),
                ("daily_ops", "0"),
                ("daily_spend", "0"),
            ],
        );
        assert_eq!(made.status, 303, "{}", made.body);
    }
    let clash = owner.submit(
        "/admin/groups",
        "/admin/groups",
        &[
            ("name", "Platinum"),
            ("rank", "4"),
            ("threshold", "1000"),
            ("discount", "0"),
            ("accrual", "15"),
        ],
    );
    assert_eq!(clash.status, 409, "{}", clash.body);
    assert!(
        clash.body.contains("Gold"),
        "the clash names the other group: {}",
        clash.body
    );
    let groups = owner.get("/admin/groups").body;
    assert!(groups.contains("Silver") && groups.contains("Gold") && !groups.contains("Platinum"));

    // A guest with a phone and a card, named like a script: shown as text.
    let xss = "<script>alert(1)</script>";
    let made = owner.submit(
        "/admin/guests/new",
        "/admin/guests",
        &[
            ("name", xss),
            ("phone", "+7 903 555-01-02"),
            ("kind", "card_barcode"),
            ("card", "4600000000017"),
            ("group", &server.ids.group.to_string()),
        ],
    );
    let guest = guest_id(&made);
    let page = owner.get(&format!("/admin/guests/{guest}")).body;
    assert!(!page.contains(xss), "the name is escaped");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let found = owner.get("/admin/guests?q=4600000000017").body;
    assert!(found.contains(&format!("/admin/guests/{guest}")), "search by card");
    let found = owner.get("/admin/guests?q=8%20903%205550102").body;
    assert!(
        found.contains(&format!("/admin/guests/{guest}")),
        "search by phone in another spelling"
    );
    let found = owner.get("/admin/guests?q=Ann").body;
    assert!(
        found.contains("Anna") && !found.contains("&lt;script"),
        "search by name prefix"
    );

    // Duplicates are refused with the reason, and nothing is half-made.
    let dup = owner.submit(
        "/admin/guests/new",
        "/admin/guests",
        &[
            ("name", "Copy"),
            ("phone", "+7 900 111-22-33"),
            ("kind", "manual_code"),
            ("card", "4600000000017"),
            ("group", &server.ids.group.to_string()),
        ],
    );
    assert_eq!(dup.status, 409, "{}", dup.body);
    assert!(dup.body.contains("уже принадлежит другому гостю"), "{}", dup.body);
    assert!(
        dup.body.contains(r#"value="Copy""#)
            && dup.body.contains(r#"value="4600000000017""#)
            && dup.body.contains(r#"<option value="manual_code" selected>"#),
        "the refused form comes back with what was typed: {}",
        dup.body
    );
    assert!(
        owner.get("/admin/guests?q=Copy").body.contains("Гостей не найдено"),
        "no half-made guest"
    );
    assert!(
        owner
            .get("/admin/guests?q=%2B79001112233")
            .body
            .contains("Гостей не найдено"),
        "its phone was not kept"
    );
    let dup_phone = owner.submit(
        &format!("/admin/guests/{guest}"),
        &format!("/admin/guests/{guest}/identifiers"),
        &[("kind", "manual_code"), ("value", server_support::ANNA_CARD)],
    );
    assert_eq!(dup_phone.status, 409);

    // A credit of 800 ₽; the same form posted twice credits once.
    let page = format!("/admin/guests/{guest}");
    let html = owner.get(&page).body;
    let (csrf, op_id) = (hidden(&html, "csrf"), hidden(&html, "op_id"));
    let form = [
        ("csrf", csrf.as_str()),
        ("op_id", op_id.as_str()),
        ("kind", "credit"),
        ("amount", "800"),
        ("reason", "welcome"),
    ];
    let action = format!("/admin/guests/{guest}/manual");
    assert_eq!(owner.post(&action, &form).status, 303);
    assert_eq!(owner.post(&action, &form).status, 303);
    assert_eq!(server.balance(guest), (rub(800), rub(800)));
    assert_eq!(by_id(&owner.get(&page).body, "balance"), "800,00");
    // A debit over what is available is refused.
    let over = owner.submit(
        &page,
        &action,
        &[("kind", "debit"), ("amount", "900"), ("reason", "typo")],
    );
    assert_eq!(over.status, 422, "{}", over.body);
    // A missing reason is refused.
    let no_reason = owner.submit(&page, &action, &[("kind", "credit"), ("amount", "10"), ("reason", "")]);
    assert_eq!(no_reason.status, 422);

    // The till identifies the guest by the new card and pays 300 ₽ of a 1 000 ₽ check.
    let card = server.post(
        "/api/v1/identify",
        json!({"kind": "barcode", "payload": "4600000000017"}),
    );
    assert_eq!(card.ok()["card"]["guest_id"], guest, "{}", card.body);
    let hold = server.hold("bo-h1", guest, rub(300), rub(1_000));
    let hold_id = hold.ok()["hold_id"].as_i64().unwrap();
    server.commit("bo-c1", guest, Some(hold_id), rub(300), rub(1_000)).ok();
    let html = owner.get(&page).body;
    let (paid_balance, _) = server.balance(guest);
    assert!(
        paid_balance > rub(500) && paid_balance < rub(600),
        "800 - 300 + the accrual: {paid_balance}"
    );
    assert_eq!(by_id(&html, "balance"), Kopecks(paid_balance).to_string());
    let history = by_id_section(&html);
    assert!(
        history.contains("Оплата бонусами") && history.contains("Начисление за чек"),
        "{history}"
    );
    assert!(history.contains("till-1"), "the till is shown: {history}");
    assert!(
        history.contains("owner: welcome"),
        "the manual credit names who and why"
    );

    // Blocked: the till does not find the guest, and no bonuses are held; unblocked: found again.
    let blocked = owner.submit(&page, &format!("/admin/guests/{guest}/block"), &[("blocked", "1")]);
    assert_eq!(blocked.status, 303, "{}", blocked.body);
    assert!(owner.get(&page).body.contains("id=\"blocked\""));
    server
        .post(
            "/api/v1/identify",
            json!({"kind": "barcode", "payload": "4600000000017"}),
        )
        .error(422, "guest_blocked");
    server
        .hold("bo-hb", guest, rub(10), rub(1_000))
        .error(422, "guest_blocked");
    owner.submit(&page, &format!("/admin/guests/{guest}/block"), &[("blocked", "0")]);
    assert!(!owner.get(&page).body.contains("id=\"blocked\""));
    server
        .post(
            "/api/v1/identify",
            json!({"kind": "barcode", "payload": "4600000000017"}),
        )
        .ok();

    // A hold whose cancellation was lost: «Сбросить холды» releases it.
    server.hold("bo-h2", guest, rub(100), rub(1_000)).ok();
    let html = owner.get(&page).body;
    assert_eq!(by_id(&html, "available"), Kopecks(paid_balance - rub(100)).to_string());
    let reset = owner.submit(&page, &format!("/admin/guests/{guest}/reset-holds"), &[]);
    assert_eq!(reset.status, 303);
    assert_eq!(
        by_id(&owner.get(&page).body, "available"),
        Kopecks(paid_balance).to_string()
    );
    assert_eq!(server.balance(guest), (paid_balance, paid_balance));

    // The programme: bonuses pay at most 30 % of a check from now on.
    let saved = owner.submit(
        "/admin/programme",
        "/admin/programme",
        &[
            ("name", "Cafe"),
            ("max_check", "30"),
            ("spend_step", "1"),
            ("hold_minutes", "15"),
            ("group_days", "365"),
            ("utc_offset", "180"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.body);
    let too_much = server.hold("bo-h3", guest, rub(400), rub(1_000));
    too_much.error(422, "over_maximum");
    let bad = owner.submit(
        "/admin/programme",
        "/admin/programme",
        &[("name", "Cafe"), ("max_check", "150")],
    );
    assert_eq!(bad.status, 422);

    // Enrolment at the till: off until the owner allows it, with a welcome bonus.
    assert_eq!(server.get("/api/v1/enrolment").ok()["allowed"], false);
    let mut programme = vec![
        ("name", "Cafe"),
        ("max_check", "30"),
        ("spend_step", "1"),
        ("hold_minutes", "15"),
        ("group_days", "365"),
        ("utc_offset", "180"),
    ];
    for bad_bonus in ["-5", "abc", "100000,01"] {
        let mut fields = programme.clone();
        fields.push(("welcome_bonus", bad_bonus));
        fields.push(("till_enrolment", "1"));
        let refused = owner.submit("/admin/programme", "/admin/programme", &fields);
        assert_eq!(refused.status, 422, "welcome bonus {bad_bonus}");
        assert!(refused.body.contains("сумма от 0 до 100 000"), "{}", refused.body);
    }
    assert_eq!(
        server.get("/api/v1/enrolment").ok()["allowed"],
        false,
        "a refused form changes nothing"
    );
    programme.push(("welcome_bonus", "150,50"));
    programme.push(("till_enrolment", "1"));
    let saved = owner.submit("/admin/programme", "/admin/programme", &programme);
    assert_eq!(saved.status, 303, "{}", saved.body);
    let enrolment = server.get("/api/v1/enrolment");
    assert_eq!(enrolment.ok()["allowed"], true);
    assert_eq!(enrolment.ok()["welcome_bonus"], 15_050);
    let page_now = owner.get("/admin/programme").body;
    assert!(page_now.contains(r#"value="150,50""#), "the bonus is shown as saved");
    assert!(page_now.contains("checked"), "the switch is shown on");
    let enrolled = server.enrol("bo-e1", "NEW-CARD-BO", "+7 916 555-77-88", "Zoya");
    assert_eq!(enrolled.ok()["card"]["balance"], 15_050);
    // Unticked: off again (a browser sends no field for an unticked box).
    programme.retain(|(key, _)| *key != "till_enrolment");
    let saved = owner.submit("/admin/programme", "/admin/programme", &programme);
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(server.get("/api/v1/enrolment").ok()["allowed"], false);

    // Another organisation's guest is not found.
    assert_eq!(owner.get(&format!("/admin/guests/{}", server.ids.other)).status, 404);

    // A manager: guests yes, programme and groups no.
    add_user(&server, ORG, "manager", Role::Manager);
    let mut manager = Browser::new(&server);
    assert_eq!(manager.login("manager", PASSWORD).status, 303);
    assert_eq!(manager.get("/admin/guests").status, 200);
    assert_eq!(manager.get("/admin/programme").status, 403);
    assert_eq!(manager.get("/admin/groups").status, 403);
    let csrf = hidden(&manager.get("/admin/guests").body, "csrf");
    let refused = manager.post(
        "/admin/programme",
        &[
            ("csrf", &csrf),
            ("name", "X"),
            ("max_check", "100"),
            ("spend_step", "1"),
            ("hold_minutes", "15"),
            ("group_days", "365"),
            ("utc_offset", "0"),
        ],
    );
    assert_eq!(refused.status, 403);
    assert!(
        server.hold("bo-h4", guest, rub(400), rub(1_000)).status != 200,
        "the programme is unchanged"
    );

    // The audit log: every manual change with who, when, what and why; a guest's own changes
    // on their page too.
    let log = owner.get("/admin/audit");
    assert_eq!(log.status, 200);
    let log = log.body[log.body.find("id=\"audit\"").expect("an audit table")..].to_string();
    for action in [
        "Гость зарегистрирован",
        "Начисление вручную",
        "Сброс холдов",
        "Блокировка",
        "Разблокировка",
        "Программа изменена",
    ] {
        assert!(log.contains(action), "{action} is logged: {log}");
    }
    assert_eq!(
        log.matches("Начисление вручную").count(),
        1,
        "a form posted twice is logged once"
    );
    assert!(log.contains("800,00") && log.contains("welcome"), "what and why: {log}");
    assert!(log.contains("<td>owner</td>"), "who: {log}");
    assert!(
        log.contains("till till-1"),
        "the till's enrolment names the till: {log}"
    );
    assert!(
        log.contains("приветственный бонус 150,50 ₽, регистрация на кассе: да"),
        "the programme as saved: {log}"
    );
    assert!(
        !log.contains("555-77-88") && log.contains("***-77-88"),
        "phones are masked: {log}"
    );
    let guest_page = owner.get(&page).body;
    let changes = &guest_page[guest_page.find("id=\"changes\"").expect("the guest's changes")..];
    assert!(
        changes.contains("Начисление вручную") && changes.contains("welcome"),
        "{changes}"
    );
    assert!(
        !changes.contains("Программа изменена"),
        "only this guest's changes: {changes}"
    );
    assert_eq!(manager.get("/admin/audit").status, 403, "owner only");

    // English pages.
    owner.get("/admin/lang/en");
    assert!(owner.get("/admin/guests").body.contains("Guests"));

    // An owner of another organisation sees none of this one's guests.
    add_user(&server, OTHER_ORG, "bistro", Role::Owner);
    let mut other = Browser::new(&server);
    other.login("bistro", PASSWORD);
    assert_eq!(other.get(&page).status, 404);
    assert!(other.get("/admin/guests").body.contains("Olga"));
}

/// The history table of a guest page.
/// «Бонусные счета»: the owner opens a corporate account for Anna, gives it a card, and the till
/// finds that account by it (with Anna's name and the account's); the same name twice is refused
/// with the name; a block of Anna reaches the account; the list and both pages show the accounts.
fn guest_accounts(db: Db) {
    let Some((server, mut owner)) = owner_signed_in(db) else {
        return;
    };
    let anna = server.ids.anna;
    let page = format!("/admin/guests/{anna}");
    assert!(owner.get(&page).body.contains("У гостя один бонусный счёт"));

    let action = format!("/admin/guests/{anna}/accounts");
    let opened = owner.submit(&page, &action, &[("name", " Корпоративный ")]);
    assert_eq!(opened.status, 303, "{}", opened.body);
    let account: i64 = opened
        .location
        .trim_start_matches("/admin/guests/")
        .trim_end_matches("?done=account")
        .parse()
        .unwrap_or_else(|_| panic!("not an account page: {}", opened.location));
    assert_ne!(account, anna);
    let account_page = owner.get(&opened.location).body;
    assert!(account_page.contains("Счёт открыт"), "{account_page}");
    assert!(account_page.contains("Anna · Корпоративный"), "the title names both");
    assert!(
        account_page.contains(&format!("href=\"/admin/guests/{anna}\">Основной")),
        "the account links to the main one: {account_page}"
    );
    assert!(
        !account_page.contains("/contact\""),
        "the name and phone are changed on the main account only"
    );
    let again = owner.submit(&page, &action, &[("name", "Корпоративный")]);
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("уже есть счёт «Корпоративный»"), "{}", again.body);
    let empty = owner.submit(&page, &action, &[("name", "   ")]);
    assert_eq!(empty.status, 422, "{}", empty.body);

    let card = owner.submit(
        &format!("/admin/guests/{account}"),
        &format!("/admin/guests/{account}/identifiers"),
        &[("kind", "card_barcode"), ("value", "4600000000024")],
    );
    assert_eq!(card.status, 303, "{}", card.body);
    let identify = || {
        server.post(
            "/api/v1/identify",
            json!({"kind": "barcode", "payload": "4600000000024"}),
        )
    };
    let found = identify();
    let found = found.ok();
    assert_eq!(found["card"]["guest_id"], account);
    assert_eq!(found["card"]["account"], "Корпоративный");
    let main_card = server.post("/api/v1/identify", json!({"kind": "barcode", "payload": ANNA_CARD}));
    let main_card = main_card.ok();
    assert_eq!(found["card"]["name"], main_card["card"]["name"]);
    assert_eq!(found["card"]["phone_masked"], main_card["card"]["phone_masked"]);
    assert!(
        main_card["card"].get("account").is_none(),
        "the main account has no name"
    );

    let main_page = owner.get(&page).body;
    assert!(
        main_page.contains(&format!("href=\"/admin/guests/{account}\">Корпоративный")),
        "the main account lists the other: {main_page}"
    );
    let list = owner.get("/admin/guests?q=Anna").body;
    assert!(
        list.contains("Корпоративный"),
        "the list tells the account apart: {list}"
    );
    // The name is the person's: renamed on the main account, the account follows.
    let renamed = owner.submit(
        &page,
        &format!("/admin/guests/{anna}/contact"),
        &[("name", "Anna K."), ("phone", server_support::ANNA_PHONE)],
    );
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    let list = owner.get("/admin/guests?q=Anna%20K").body;
    assert!(
        list.contains(&format!("/admin/guests/{account}\"")) && list.contains("Корпоративный"),
        "the account is found by the new name: {list}"
    );

    owner.submit(&page, &format!("/admin/guests/{anna}/block"), &[("blocked", "1")]);
    identify().error(422, "guest_blocked");
    owner.submit(&page, &format!("/admin/guests/{anna}/block"), &[("blocked", "0")]);
    identify().ok();
}

fn by_id_section(html: &str) -> String {
    let start = html.find("id=\"history\"").expect("a history table");
    html[start..].split("</table>").next().unwrap().to_string()
}

fn login_throttle(db: Db) {
    let Some(server) = Server::start(db) else { return };
    add_user(&server, ORG, "owner", Role::Owner);
    let mut browser = Browser::new(&server);
    for _ in 0..5 {
        assert_eq!(browser.login("owner", "nope nope").status, 401);
    }
    let locked = browser.login("owner", PASSWORD);
    assert_eq!(locked.status, 429, "the right password waits out the lock");
    assert!(browser.get("/admin/guests").location.ends_with("/admin/login"));
}

/// «Кассы»: the owner lists the tokens, makes one (its secret shown once, working at once) and
/// revokes one, which the API refuses on its very next request (no 30 s grace); a manager and
/// another organisation's owner cannot touch them.
fn tills_page(db: Db) {
    let Some(server) = Server::start(db) else { return };
    add_user(&server, ORG, "owner", Role::Owner);
    let mut owner = Browser::new(&server);
    assert_eq!(owner.login("owner", PASSWORD).status, 303);

    // The seeded till has been used (by this request): it is listed with its last use.
    server.get("/api/v1/till").ok();
    let list = owner.get("/admin/tills");
    assert_eq!(list.status, 200);
    let table = list.body[list.body.find("id=\"tills\"").unwrap()..].to_string();
    assert!(table.contains("till-1"), "{table}");
    assert!(table.contains("2025-03-10 12:00 UTC"), "created and last seen: {table}");
    assert!(!list.body.contains("lt_"), "no secret on the list");

    let created = owner.submit("/admin/tills", "/admin/tills", &[("till", "till-9")]);
    assert_eq!(created.status, 200, "{}", created.body);
    let token = by_id(&created.body, "token");
    assert!(
        token.starts_with("lt_") && token.len() > 40,
        "the secret, once: {token}"
    );
    assert!(!owner.get("/admin/tills").body.contains(&token), "shown only once");
    let answer = server.get_as(Some(&token), "/api/v1/till");
    assert_eq!(answer.ok()["till"], "till-9", "the new token works at once");
    assert!(
        !owner.get("/admin/tills").body.contains("ещё не обращалась"),
        "both tills have been seen"
    );
    // A till name twice, or a bad one: refused with the reason, nothing replaced.
    let twice = owner.submit("/admin/tills", "/admin/tills", &[("till", "till-9")]);
    assert_eq!(twice.status, 409);
    assert!(twice.body.contains("уже есть"), "{}", twice.body);
    let bad = owner.submit("/admin/tills", "/admin/tills", &[("till", "касса 1")]);
    assert_eq!(bad.status, 422);
    server.get_as(Some(&token), "/api/v1/till").ok();

    // Revoked: refused on the next request, though the API had just looked the token up.
    let revoked = owner.submit("/admin/tills", "/admin/tills/till-9/revoke", &[]);
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    server.get_as(Some(&token), "/api/v1/till").error(401, "unauthorized");
    server
        .post_as(
            &token,
            "/api/v1/identify",
            json!({"kind": "barcode", "payload": ANNA_CARD}),
        )
        .error(401, "unauthorized");
    assert!(!owner.get("/admin/tills").body.contains("till-9"));
    let log = owner.get("/admin/audit").body;
    assert!(
        log.contains("Токен кассы создан") && log.contains("Токен кассы отозван"),
        "{log}"
    );
    assert!(!log.contains(&token), "the secret is never logged");
    server.get("/api/v1/till").ok(); // the other till is untouched
    let again = owner.submit("/admin/tills", "/admin/tills/till-9/revoke", &[]);
    assert_eq!(again.status, 404, "nothing left to revoke");

    // A manager is refused; another organisation's owner cannot revoke this one's till.
    add_user(&server, ORG, "manager", Role::Manager);
    let mut manager = Browser::new(&server);
    manager.login("manager", PASSWORD);
    assert_eq!(manager.get("/admin/tills").status, 403);
    let csrf = hidden(&manager.get("/admin/guests").body, "csrf");
    assert_eq!(
        manager.post("/admin/tills/till-1/revoke", &[("csrf", &csrf)]).status,
        403
    );
    add_user(&server, OTHER_ORG, "bistro", Role::Owner);
    let mut other = Browser::new(&server);
    other.login("bistro", PASSWORD);
    let seven = owner.submit("/admin/tills", "/admin/tills", &[("till", "till-7")]);
    let seven = by_id(&seven.body, "token");
    assert!(
        !other.get("/admin/tills").body.contains("till-7"),
        "another organisation's till is not listed"
    );
    let refused = other.submit("/admin/tills", "/admin/tills/till-7/revoke", &[]);
    assert_eq!(refused.status, 404);
    server.get_as(Some(&seven), "/api/v1/till").ok();
    server.get("/api/v1/till").ok();
}

#[test]
fn tills_page_on_sqlite() {
    tills_page(Db::Sqlite);
}

#[test]
fn tills_page_on_postgres() {
    tills_page(Db::Postgres);
}

#[test]
fn guest_accounts_on_sqlite() {
    guest_accounts(Db::Sqlite);
}

#[test]
fn guest_accounts_on_postgres() {
    guest_accounts(Db::Postgres);
}

#[test]
fn owner_journey_on_sqlite() {
    owner_journey(Db::Sqlite);
}

#[test]
fn owner_journey_on_postgres() {
    owner_journey(Db::Postgres);
}

#[test]
fn login_is_throttled_on_sqlite() {
    login_throttle(Db::Sqlite);
}

#[test]
fn login_is_throttled_on_postgres() {
    login_throttle(Db::Postgres);
}

/// A single cafe: `owner create` on the till's data folder (password from stdin), then the
/// till's own back office on 127.0.0.1, which answers only to its own Host.
#[test]
fn the_tills_back_office_and_owner_create() {
    use std::io::Write as _;
    let dir = tempfile::TempDir::new().unwrap();
    let run = |password: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "owner",
                "create",
                "--login",
                "anna",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let short = run("short\n");
    assert!(!short.status.success(), "a short password is refused");
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    let made = run(&format!("{PASSWORD}\n"));
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    loyalty_till::backoffice::local::start(dir.path().join("loyalty.sqlite"), port, None);
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/admin/login");
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(response) = http.get(&url).send() {
            answered = Some(response);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(answered.expect("the back office listens").status(), 200);
    let foreign = http.get(&url).header("host", "evil.example").send().unwrap();
    assert_eq!(foreign.status(), 421, "a foreign Host is refused");
    let foreign = http
        .get(&url)
        .header("host", format!("evil.example:{port}"))
        .send()
        .unwrap();
    assert_eq!(foreign.status(), 421);

    // The account made by the command signs in.
    let mut browser = Browser::at(http, format!("http://127.0.0.1:{port}"));
    let signed_in = browser.login("anna", PASSWORD);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let programme = browser.get("/admin/programme");
    assert_eq!(programme.status, 200);
    assert!(
        programme.body.contains("anna (default, владелец)"),
        "{}",
        programme.body
    );
}

// ----- Reports, the first-run page, the password change and contact data -----

/// The text of each cell of the report row whose first two cells are `day` and `till`.
fn report_row(html: &str, day: &str, till: &str) -> Vec<String> {
    let table = html.split("id=\"report\"").nth(1).expect("a report table");
    let table = table.split("</table>").next().unwrap();
    for row in table.split("<tr").skip(1) {
        let cells: Vec<String> = row
            .split("<t")
            .skip(1)
            .filter(|c| c.starts_with('d') || c.starts_with('h'))
            .map(|c| c.split_once('>').unwrap().1.split('<').next().unwrap().to_string())
            .collect();
        if cells.len() > 2 && cells[0] == day && cells[1] == till {
            return cells;
        }
    }
    panic!("no row {day} / {till} in {table}");
}

/// Money as the pages show it.
fn shown(kopecks: i64) -> String {
    Kopecks(kopecks).to_string()
}

/// The report's figures against a ledger built by real payments, a return, an enrolment at a
/// till and a gift, through /api/v1 from two tills over two days; the CSV carries the same rows.
fn reports_follow_the_ledger(db: Db) {
    let Some(server) = Server::start(db) else { return };
    add_user(&server, ORG, "owner", Role::Owner);
    add_user(&server, ORG, "manager", Role::Manager);
    let (anna, boris) = (server.ids.anna, server.ids.boris);
    let till2 = server.token_for("till-2");
    // START is 2025-03-10 12:00 UTC; the programme's zone is UTC (the default).
    let day1 = "2025-03-10";
    let day2 = "2025-03-11";

    // Day 1, till-1: a guest enrolled at the till (a welcome bonus of 100 ₽, not an accrual),
    // Anna pays 300 ₽ of a 1 000 ₽ check in bonuses and redeems her gift, Boris pays 400 ₽ in money.
    server.set_enrolment(true, rub(100));
    let vera = server.enrol("r-e1", "4600000000024", "+7 905 111-22-33", "Vera");
    let vera = vera.ok()["card"]["guest_id"].as_i64().expect("the enrolled guest's id");
    let hold = server.hold("r-h1", anna, rub(300), rub(1_000));
    let hold_id = hold.ok()["hold_id"].as_i64().unwrap();
    let paid_anna = server.post(
        "/api/v1/payments",
        json!({"op_id": "r-p1", "guest_id": anna, "hold_id": hold_id, "spent": rub(300),
               "check": {"subtotal": rub(1_000), "gift_codes": [server_support::GIFT]}}),
    );
    let anna_accrued = paid_anna.ok()["accrued"].as_i64().unwrap();
    let paid_boris = server.commit("r-p2", boris, None, 0, rub(400));
    let boris_accrued = paid_boris.ok()["accrued"].as_i64().unwrap();
    // Day 1, till-2: Vera pays 200 ₽ in money.
    let paid_vera = server.post_as(
        &till2,
        "/api/v1/payments",
        json!({"op_id": "r-p3", "guest_id": vera, "hold_id": null, "spent": 0, "check": {"subtotal": rub(200)}}),
    );
    let vera_accrued = paid_vera.ok()["accrued"].as_i64().unwrap();
    // Day 2, till-2: Boris's check comes back whole.
    server.advance(86_400);
    let returned = server.post_as(
        &till2,
        "/api/v1/refunds",
        json!({"op_id": "r-r1", "payment_op_id": "r-p2", "payment_till": "till-1"}),
    );
    let returned = returned.ok().clone();
    assert_eq!(returned["amount"].as_i64(), Some(rub(400)), "{returned}");

    let mut owner = Browser::new(&server);
    owner.login("owner", PASSWORD);
    let page = owner.get(&format!("/admin/reports?from={day1}&to={day2}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let html = page.body;
    assert!(html.contains("UTC+00:00"), "the zone is stated");
    assert!(
        html.contains("<svg") && html.contains("class=\"accrued\""),
        "the chart is drawn"
    );

    // Columns: day, till, checks, revenue, accrued, spent, gifts, new guests, returns, returned,
    // accrual taken back, spend given back.
    let row = report_row(&html, day1, "till-1");
    assert_eq!(row[2], "2", "two checks at till-1: {row:?}");
    assert_eq!(row[3], shown(rub(1_000) + rub(400)));
    assert_eq!(row[4], shown(anna_accrued + boris_accrued));
    assert_eq!(row[5], shown(rub(300)));
    assert_eq!(row[6], "1", "Anna's gift");
    assert_eq!(row[7], "1", "Vera, enrolled at till-1");
    let row = report_row(&html, day1, "till-2");
    assert_eq!(
        (row[2].as_str(), row[4].clone(), row[7].as_str()),
        ("1", shown(vera_accrued), "0")
    );
    let row = report_row(&html, day1, "не записано");
    assert_eq!(row[7], "2", "Anna and Boris were added without an enrolment record");
    let row = report_row(&html, day2, "till-2");
    assert_eq!(row[2], "0");
    assert_eq!(row[8], "1", "the return is counted where and when it was taken");
    assert_eq!(row[9], shown(rub(400)));
    assert_eq!(row[10], shown(returned["accrual_taken"].as_i64().unwrap()));
    assert_eq!(
        row[10],
        shown(boris_accrued),
        "a whole return takes the whole accrual back"
    );
    let total = report_row(&html, "Итого", "");
    assert_eq!(total[2], "3");
    assert_eq!(total[4], shown(anna_accrued + boris_accrued + vera_accrued));
    assert_eq!(total[7], "3");
    assert!(
        !html.contains("Olga"),
        "another organisation's guests are not in this one's report"
    );

    // Only day 2: the first day's figures are gone.
    let html = owner.get(&format!("/admin/reports?from={day2}&to={day2}")).body;
    assert_eq!(report_row(&html, "Итого", "")[2], "0");
    // The CSV: the same rows, for Excel.
    let csv = owner.get(&format!("/admin/reports.csv?from={day1}&to={day2}"));
    assert_eq!(csv.status, 200);
    assert!(csv.body.starts_with('\u{feff}'));
    let line = csv
        .body
        .lines()
        .find(|l| l.starts_with(&format!("{day1};till-1;")))
        .expect("till-1's first day in the CSV");
    let money = |k: i64| format!("{},{:02}", k / 100, k % 100);
    assert_eq!(
        line,
        format!(
            "{day1};till-1;2;{};{};{};1;1;0;0,00;0,00;0,00",
            money(rub(1_400)),
            money(anna_accrued + boris_accrued),
            money(rub(300))
        )
    );
    assert!(!csv.body.contains("+7"), "no phone in the file");
    // Bad periods are refused with the reason.
    let bad = owner.get("/admin/reports?from=2025-03-12&to=2025-03-10");
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("Начало периода позже конца"), "{}", bad.body);
    assert_eq!(owner.get("/admin/reports?from=10.03.2025").status, 422);
    assert_eq!(owner.get("/admin/reports?from=2020-01-01&to=2025-03-10").status, 422);
    // A manager sees the reports (totals, nothing personal); without a session there is none.
    let mut manager = Browser::new(&server);
    manager.login("manager", PASSWORD);
    assert_eq!(
        manager.get(&format!("/admin/reports?from={day1}&to={day2}")).status,
        200
    );
    assert_eq!(Browser::new(&server).get("/admin/reports").location, "/admin/login");
}

#[test]
fn reports_follow_the_ledger_on_sqlite() {
    reports_follow_the_ledger(Db::Sqlite);
}

#[test]
fn reports_follow_the_ledger_on_postgres() {
    reports_follow_the_ledger(Db::Postgres);
}

/// An address of this machine that is not loopback (the one it would reach the network from),
/// if it has one.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route and the local address.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// The first-run page: shown while there is no owner, to a loopback peer only (a header cannot
/// pretend otherwise), creates the owner (password twice, hashed with argon2id) and is gone.
fn first_run(db: Db) {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(store) = server_support::new_store(db, &dir, 4) else {
        return;
    };
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(server_support::START));
    let now = Arc::clone(&clock);
    let server_clock: loyalty_till::server::api::ServerClock =
        Arc::new(move || now.load(std::sync::atomic::Ordering::SeqCst));
    // On every interface, so that a peer that is not loopback can reach it.
    let handle = loyalty_till::server::ServerHandle::start(
        store,
        server_clock,
        "0.0.0.0:0".parse().unwrap(),
        loyalty_till::server::ServeOptions::default(),
    )
    .unwrap();
    let port = handle.addr.port();
    let local = format!("http://127.0.0.1:{port}");
    let mut browser = Browser::at(
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        local.clone(),
    );
    assert_eq!(browser.get("/admin").location, "/admin/setup");
    assert!(
        browser.get("/admin/login").body.contains("/admin/setup"),
        "the sign-in page points to the first-run page"
    );

    match non_loopback_address() {
        Some(ip) => {
            let remote = reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let url = format!("http://{ip}:{port}/admin/setup");
            let refused = remote.get(&url).header("x-forwarded-for", "127.0.0.1").send().unwrap();
            assert_eq!(refused.status(), 403, "a peer at {ip} is refused");
            assert!(refused.text().unwrap().contains("id=\"not-local\""));
            let posted = remote
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", "lt_setup=t")
                .body("csrf=t&org=default&login=mallory&password=mallory123&password2=mallory123")
                .send()
                .unwrap();
            assert_eq!(posted.status(), 403, "nor can it post the form");
        }
        None => panic!("this machine has no address but loopback: the non-loopback refusal cannot be checked"),
    }

    // Bad input: a short password, two that differ, a form without its token.
    let html = browser.get("/admin/setup").body;
    let csrf = hidden(&html, "csrf");
    let short = browser.post(
        "/admin/setup",
        &[
            ("csrf", &csrf),
            ("org", "cafe"),
            ("login", "anna"),
            ("password", "short"),
            ("password2", "short"),
        ],
    );
    assert_eq!(short.status, 422);
    assert!(short.body.contains("короче 8"), "{}", short.body);
    let csrf = hidden(&short.body, "csrf");
    let differ = browser.post(
        "/admin/setup",
        &[
            ("csrf", &csrf),
            ("org", "cafe"),
            ("login", "anna"),
            ("password", PASSWORD),
            ("password2", "another password"),
        ],
    );
    assert_eq!(differ.status, 422);
    assert!(differ.body.contains("не совпадают"));
    let forged = browser.post(
        "/admin/setup",
        &[
            ("csrf", "forged"),
            ("org", "cafe"),
            ("login", "anna"),
            ("password", PASSWORD),
            ("password2", PASSWORD),
        ],
    );
    assert_eq!(forged.status, 403);
    let csrf = hidden(&forged.body, "csrf");
    let made = browser.post(
        "/admin/setup",
        &[
            ("csrf", &csrf),
            ("org", "cafe"),
            ("login", "anna"),
            ("password", PASSWORD),
            ("password2", PASSWORD),
        ],
    );
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(made.location, "/admin/guests");
    let guests = browser.get("/admin/guests");
    assert_eq!(guests.status, 200, "signed in at once");
    assert!(guests.body.contains("anna (cafe, владелец)"), "{}", guests.body);
    let store = Arc::clone(&handle.store);
    let user = handle
        .block_on(async move { loyalty_till::backoffice::db::find_user(&store, "anna").await })
        .unwrap()
        .expect("the owner exists");
    assert!(user.password_hash.starts_with("$argon2id$"), "hashed like owner create");
    assert_eq!(user.role, Role::Owner);

    // Gone: the page and its form now lead to the sign-in.
    let mut stranger = Browser::at(
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        local,
    );
    assert_eq!(stranger.get("/admin/setup").location, "/admin/login");
    assert_eq!(stranger.get("/admin").location, "/admin/guests");
    let again = stranger.post(
        "/admin/setup",
        &[
            ("csrf", "x"),
            ("org", "cafe"),
            ("login", "eve"),
            ("password", PASSWORD),
            ("password2", PASSWORD),
        ],
    );
    assert_eq!(again.location, "/admin/login");
    assert_eq!(stranger.login("anna", PASSWORD).status, 303);
    assert_eq!(stranger.login("eve", PASSWORD).status, 401, "no second owner was made");
}

#[test]
fn first_run_on_sqlite() {
    first_run(Db::Sqlite);
}

#[test]
fn first_run_on_postgres() {
    first_run(Db::Postgres);
}

/// A user's own password change, and a guest's contact edit: a phone another guest has is refused
/// with the reason and nothing changes; a good change is found by the new phone and audited.
fn password_and_contact(db: Db) {
    let Some(server) = Server::start(db) else { return };
    add_user(&server, ORG, "manager", Role::Manager);
    let mut manager = Browser::new(&server);
    manager.login("manager", PASSWORD);
    // The same user signed in elsewhere with the old password: signed out by the change.
    let mut elsewhere = Browser::new(&server);
    elsewhere.login("manager", PASSWORD);
    assert_eq!(elsewhere.get("/admin/guests").status, 200);
    let new_password = "a much longer secret";
    let wrong = manager.submit(
        "/admin/account",
        "/admin/account",
        &[
            ("old", "not the password"),
            ("password", new_password),
            ("password2", new_password),
        ],
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Текущий пароль неверен"));
    let differ = manager.submit(
        "/admin/account",
        "/admin/account",
        &[
            ("old", PASSWORD),
            ("password", new_password),
            ("password2", "a much longer secreT"),
        ],
    );
    assert_eq!(differ.status, 422);
    let no_csrf = manager.post(
        "/admin/account",
        &[
            ("csrf", "x"),
            ("old", PASSWORD),
            ("password", new_password),
            ("password2", new_password),
        ],
    );
    assert_eq!(no_csrf.status, 403);
    let changed = manager.submit(
        "/admin/account",
        "/admin/account",
        &[
            ("old", PASSWORD),
            ("password", new_password),
            ("password2", new_password),
        ],
    );
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert!(manager.get(&changed.location).body.contains("id=\"changed\""));
    assert_eq!(
        elsewhere.get("/admin/guests").location,
        "/admin/login",
        "the other session is closed"
    );
    assert_eq!(manager.get("/admin/guests").status, 200, "the changing session stays");
    assert_eq!(
        Browser::new(&server).login("manager", PASSWORD).status,
        401,
        "the old password is gone"
    );
    assert_eq!(Browser::new(&server).login("manager", new_password).status, 303);

    // Boris takes Anna's phone: refused, and nothing changes.
    let boris = server.ids.boris;
    let page = format!("/admin/guests/{boris}");
    let action = format!("/admin/guests/{boris}/contact");
    let taken = manager.submit(&page, &action, &[("name", "Boris B."), ("phone", "8 (916) 123-45-67")]);
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert!(taken.body.contains("уже принадлежит другому гостю"), "{}", taken.body);
    let html = manager.get(&page).body;
    assert!(
        html.contains("Boris") && !html.contains("Boris B."),
        "the name is unchanged"
    );
    // A bad phone is refused too.
    assert_eq!(
        manager
            .submit(&page, &action, &[("name", "Boris"), ("phone", "12")])
            .status,
        422
    );
    // A good change: the new phone finds him, the till identifies him by it, the log says so.
    let done = manager.submit(&page, &action, &[("name", "Boris B."), ("phone", "+7 926 000-11-22")]);
    assert_eq!(done.status, 303, "{}", done.body);
    let html = manager.get(&page).body;
    assert!(html.contains("Boris B."));
    let found = manager.get("/admin/guests?q=89260001122").body;
    assert!(
        found.contains(&format!("/admin/guests/{boris}")),
        "found by the new phone"
    );
    let card = server.post("/api/v1/identify", json!({"kind": "manual", "payload": "+79260001122"}));
    assert_eq!(card.ok()["card"]["guest_id"], boris, "{}", card.body);
    let changes = html.split("id=\"changes\"").nth(1).unwrap();
    assert!(changes.contains("Изменены контактные данные"), "{changes}");
    assert!(changes.contains("было «Boris», стало «Boris B.»"), "{changes}");
    assert!(!changes.contains("+79260001122"), "the phone is masked in the log");
    assert!(
        !changes.contains("Name: was"),
        "the Russian page shows the Russian detail"
    );
    // Made in Russian, read in English: the detail is in the reader's language.
    manager.get("/admin/lang/en");
    let english = manager.get(&page).body;
    let changes = english.split("id=\"changes\"").nth(1).unwrap();
    assert!(changes.contains("Name: was «Boris», now «Boris B.»"), "{changes}");
    assert!(!changes.contains("было «Boris»"), "{changes}");
    manager.get("/admin/lang/ru");
    // A new phone replaces the old one: the old no longer finds him.
    manager.submit(&page, &action, &[("name", "Boris B."), ("phone", "+7 926 000-33-44")]);
    assert!(
        manager
            .get("/admin/guests?q=89260001122")
            .body
            .contains("Гостей не найдено")
    );
    // Another organisation's guest cannot be edited.
    let other = server.ids.other;
    let refused = manager.submit(
        &page,
        &format!("/admin/guests/{other}/contact"),
        &[("name", "Hacked"), ("phone", "")],
    );
    assert_eq!(refused.status, 404);
}

#[test]
fn password_and_contact_on_sqlite() {
    password_and_contact(Db::Sqlite);
}

#[test]
fn password_and_contact_on_postgres() {
    password_and_contact(Db::Postgres);
}

struct FixedClock(UnixSeconds);

impl loyalty_till::backend::Clock for FixedClock {
    fn now(&self) -> UnixSeconds {
        self.0
    }
}

/// The till's «Закрыть смену» report and the back office's report of the same local day, over
/// one ledger file with payments, a return and the demo's guests: the same figures.
#[test]
fn the_shift_report_and_the_back_office_report_agree() {
    use loyalty_till::backend::{EmbeddedBackend, LoyaltyBackend};
    use loyalty_till::domain::{CheckInfo, ScanEvent, ScanKind};
    // 2025-03-10 12:00 UTC; the demo programme is at UTC+3.
    const NOON: UnixSeconds = 1_741_608_000;
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("till.sqlite");
    let mut backend = EmbeddedBackend::open(path.clone(), Box::new(FixedClock(NOON))).unwrap();
    backend.ledger().seed_demo(NOON).unwrap();
    let scan = ScanEvent {
        source: "test".to_string(),
        kind: ScanKind::Manual,
        payload: "100001".to_string(),
        symbology: None,
        received_at_ms: 0,
    };
    let check = |subtotal: i64| CheckInfo {
        subtotal: Kopecks(subtotal),
        gift_codes: Vec::new(),
        lines: Vec::new(),
    };
    let anna = backend.identify(&scan).unwrap().card.guest_id;
    let hold = backend
        .hold("op-hold", anna, Kopecks(rub(100)), &check(rub(1_070)))
        .unwrap();
    backend
        .commit_payment(
            "op-pay",
            anna,
            Some(hold.hold_id),
            Kopecks(rub(100)),
            &check(rub(1_070)),
        )
        .unwrap();
    backend
        .commit_payment("op-keep", anna, None, Kopecks::ZERO, &check(rub(500)))
        .unwrap();
    backend
        .refund("op-ret", "op-keep", &ReturnPart::Amount(Kopecks(rub(200))))
        .unwrap();
    let shift = backend.shift_report().unwrap();
    assert_eq!(shift.checks, 2, "{shift:?}");
    drop(backend);

    // The back office over the same file, at the same moment.
    let clock: loyalty_till::server::api::ServerClock = Arc::new(|| NOON);
    let open = async move {
        Ok(loyalty_till::server::store::Store::new(
            loyalty_till::server::store::SqliteStore::open(&path)?,
        ))
    };
    let handle = loyalty_till::server::ServerHandle::start(
        open,
        clock,
        "127.0.0.1:0".parse().unwrap(),
        loyalty_till::server::ServeOptions::default(),
    )
    .unwrap();
    let store = Arc::clone(&handle.store);
    let hash = hash_password(PASSWORD).unwrap();
    handle
        .block_on(async move { save_user(&store, "default", "owner", &hash, Role::Owner, NOON).await })
        .unwrap();
    let mut owner = Browser::at(
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        handle.url(),
    );
    owner.login("owner", PASSWORD);
    let html = owner.get("/admin/reports?from=2025-03-10&to=2025-03-10").body;
    assert!(html.contains("UTC+03:00"), "the demo programme's zone");
    let total = report_row(&html, "Итого", "");
    let money = |k: Kopecks| shown(k.0);
    assert_eq!(total[2], shift.checks.to_string());
    assert_eq!(total[3], money(shift.revenue));
    assert_eq!(total[4], money(shift.accrued));
    assert_eq!(total[5], money(shift.spent));
    assert_eq!(total[6], shift.gifts_redeemed.to_string());
    assert_eq!(total[7], shift.new_guests.to_string());
    assert_eq!(total[8], shift.returns.to_string());
    assert_eq!(total[9], money(shift.returned));
    // The till's own operations carry no till name: «эта касса».
    assert_eq!(report_row(&html, "2025-03-10", "эта касса")[2], "2");
}

/// A single cafe's till with no account: its own back office opens on the first-run page, with no
/// organisation to choose (the till's is the only one), and the owner made there signs in.
#[test]
fn the_tills_back_office_first_run() {
    let dir = tempfile::TempDir::new().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    loyalty_till::backoffice::local::start(dir.path().join("loyalty.sqlite"), port, None);
    let mut browser = Browser::at(
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        format!("http://127.0.0.1:{port}"),
    );
    let mut first = None;
    for _ in 0..100 {
        if let Ok(response) = browser.http.get(format!("{}/admin", browser.base)).send() {
            first = Some(browser.keep(response));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(first.expect("the back office listens").location, "/admin/setup");
    let html = browser.get("/admin/setup").body;
    assert!(!html.contains("name=\"org\""), "the till has one organisation: {html}");
    let csrf = hidden(&html, "csrf");
    let made = browser.post(
        "/admin/setup",
        &[
            ("csrf", &csrf),
            ("org", "elsewhere"),
            ("login", "anna"),
            ("password", PASSWORD),
            ("password2", PASSWORD),
        ],
    );
    assert_eq!(made.status, 303, "{}", made.body);
    assert!(browser.get("/admin/guests").body.contains("anna (default, владелец)"));
    assert_eq!(browser.get("/admin/setup").location, "/admin/login");
}

/// The audit table of a page (the log, or a guest's history).
fn audit_rows(html: &str) -> String {
    let start = html
        .find("id=\"audit\"")
        .unwrap_or_else(|| panic!("no audit table in {html}"));
    let end = start + html[start..].find("</table>").unwrap();
    html[start..end].to_string()
}

/// «Журнал изменений»: an identifier added on the guest's page is logged, its value masked, in
/// the log and in the guest's history. Every change writes its row in its own transaction: while
/// the log cannot be written, a credit, an identifier, a till token made or revoked are refused
/// and nothing of them is kept; the same credit form posted again once the log is back credits
/// once and is logged once.
fn audit_in_the_change(db: Db) {
    let Some((server, mut owner)) = owner_signed_in(db) else {
        return;
    };
    let anna = server.ids.anna;
    let page = format!("/admin/guests/{anna}");
    let identifiers = format!("/admin/guests/{anna}/identifiers");
    let code = "7700123456789";
    let added = owner.submit(&page, &identifiers, &[("kind", "manual_code"), ("value", code)]);
    assert_eq!(added.status, 303, "{}", added.body);
    let masked = loyalty_till::mask::mask_code(code);
    for html in [owner.get("/admin/audit").body, owner.get(&page).body] {
        let table = audit_rows(&html);
        assert!(table.contains("Добавлен идентификатор"), "{table}");
        assert!(table.contains(&masked), "{table}");
        assert!(!table.contains(code), "the code is masked in the log: {table}");
        assert!(table.contains("owner"), "who: {table}");
    }

    // The log cannot be written (its table is away for a moment).
    let store = Arc::clone(&server.handle.store);
    let ddl = |sql: &'static str| {
        let store = Arc::clone(&store);
        server
            .handle
            .block_on(async move { store.query(sql, vec![], true).await })
            .unwrap();
    };
    let html = owner.get(&page).body;
    let (csrf, op_id) = (hidden(&html, "csrf"), hidden(&html, "op_id"));
    let credit = [
        ("csrf", csrf.as_str()),
        ("op_id", op_id.as_str()),
        ("kind", "credit"),
        ("amount", "100"),
        ("reason", "goodwill"),
    ];
    let before = server.balance(anna);
    ddl("ALTER TABLE audit_log RENAME TO audit_log_away");
    let refused = owner.post(&format!("/admin/guests/{anna}/manual"), &credit);
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert_eq!(server.balance(anna), before, "no credit without its audit row");
    let other = "7700999999990";
    let refused = owner.post(
        &identifiers,
        &[("csrf", &csrf), ("kind", "manual_code"), ("value", other)],
    );
    assert_eq!(refused.status, 500, "{}", refused.body);
    let refused = owner.post("/admin/tills", &[("csrf", &csrf), ("till", "till-5")]);
    assert_eq!(refused.status, 500, "{}", refused.body);
    let refused = owner.post("/admin/tills/till-1/revoke", &[("csrf", &csrf)]);
    assert_eq!(refused.status, 500, "{}", refused.body);
    let tills = owner.get("/admin/tills").body;
    assert!(!tills.contains("till-5"), "no token without its audit row: {tills}");
    server.get("/api/v1/till").ok(); // till-1 was not revoked
    ddl("ALTER TABLE audit_log_away RENAME TO audit_log");

    assert!(
        !owner.get(&page).body.contains(other),
        "no identifier without its audit row"
    );
    // The form posted again once the log is back: credited and logged, once each.
    assert_eq!(owner.post(&format!("/admin/guests/{anna}/manual"), &credit).status, 303);
    assert_eq!(owner.post(&format!("/admin/guests/{anna}/manual"), &credit).status, 303);
    assert_eq!(server.balance(anna).0, before.0 + rub(100));
    let log = audit_rows(&owner.get("/admin/audit").body);
    assert_eq!(log.matches("goodwill").count(), 1, "{log}");
    assert!(!log.contains("till-5") && !log.contains("Токен кассы отозван"), "{log}");
}

#[test]
fn audit_in_the_change_on_sqlite() {
    audit_in_the_change(Db::Sqlite);
}

#[test]
fn audit_in_the_change_on_postgres() {
    audit_in_the_change(Db::Postgres);
}
