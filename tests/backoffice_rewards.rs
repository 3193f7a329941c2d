#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! «Бонусы и подарки» over HTTP, on SQLite and on PostgreSQL: a stamp card defined in the back
//! office shows on the till's guest card and counts a paid visit; a promotion shows only on its
//! weekdays and hours; a gift defined, issued to a guest by a manager, printed as a QR code that
//! the till's own decoder reads, whose token verifies and identifies the guest and the gift, then
//! redeemed at the till; bad definitions refused with their reason; the owner-only rule; every
//! change in «Журнал изменений».

mod server_support;

use loyalty_till::backoffice::QrKey;
use loyalty_till::backoffice::auth::hash_password;
use loyalty_till::backoffice::db::{Role, save_user};
use loyalty_till::backoffice::rewards::rasterise_qr_svg;
use loyalty_till::qr::{QrPass, decode_passes};
use loyalty_till::scan::payload::{Payload, parse_payload};
use loyalty_till::server::ServeOptions;
use serde_json::{Value, json};
use server_support::browser::{Browser, Reply, hidden};
use server_support::{ANNA_CARD, Db, ORG, START, Server, rub};
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery";
const SECRET: &str = "programme-key-for-tests";

fn add_user(server: &Server, login: &str, role: Role) {
    let store = Arc::clone(&server.handle.store);
    let login = login.to_string();
    let hash = hash_password(PASSWORD).unwrap();
    server
        .handle
        .block_on(async move { save_user(&store, ORG, &login, &hash, role, START).await })
        .unwrap();
}

fn start(db: Db) -> Option<Server> {
    let options = ServeOptions {
        qr: QrKey::new(SECRET, 600),
        ..ServeOptions::default()
    };
    let server = Server::start_with(db, options, 4)?;
    add_user(&server, "owner", Role::Owner);
    add_user(&server, "manager", Role::Manager);
    Some(server)
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap().to_string())
        .collect()
}

fn refused_with(reply: &Reply, status: u16, reason: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(
        reply.body.contains(reason),
        "the reason «{reason}» is shown: {}",
        reply.body
    );
}

/// The QR code of a printable page, read by the till's own decoder (rqrr through `qr.rs`) from
/// the page's SVG drawn to pixels, then verified as the till verifies it.
fn scan_printed_qr(html: &str, now: i64) -> Payload {
    let start = html.find("<svg").expect("the page has the QR code");
    let end = html[start..].find("</svg>").unwrap() + start + "</svg>".len();
    let img = rasterise_qr_svg(&html[start..end], 4).expect("an SVG the page wrote");
    let text = decode_passes(&img, &[QrPass::Rqrr]).expect("rqrr reads the printed code");
    assert_eq!(loyalty_till::qr::decode_luma(&img).as_deref(), Some(text.as_str()));
    parse_payload(&text, SECRET.as_bytes(), now, 600).expect("the till verifies the token")
}

fn definitions_reach_the_till(db: Db) {
    let Some(server) = start(db) else { return };
    let anna = server.ids.anna;
    let mut owner = Browser::signed_in(&server, "owner", PASSWORD);

    // A stamp card: shown on the card of this organisation's guests, not another's.
    let made = owner.submit(
        "/admin/rewards",
        "/admin/rewards/stamp-cards",
        &[("name", "Кофе"), ("needed", "6"), ("reward", "Кофе в подарок")],
    );
    assert_eq!(
        (made.status, made.location.as_str()),
        (303, "/admin/rewards?done=1"),
        "{}",
        made.body
    );
    let card = server.card(anna);
    assert_eq!(names(&card["stamps"], "card_name"), ["Кофе"]);
    assert_eq!(
        (
            card["stamps"][0]["collected"].as_i64(),
            card["stamps"][0]["needed"].as_i64()
        ),
        (Some(0), Some(6))
    );
    let other = server.get_as(
        Some(&server.other_token),
        &format!("/api/v1/guests/{}", server.ids.other),
    );
    assert_eq!(
        other.ok()["stamps"],
        json!([]),
        "another organisation's guests do not see it"
    );
    // A paid visit adds a stamp on it.
    server.commit("rw-pay-1", anna, None, 0, rub(300)).ok();
    assert_eq!(server.card(anna)["stamps"][0]["collected"], 1);

    // Bad stamp cards are refused with the reason, and none is added.
    for needed in ["0", "-2", "abc"] {
        let bad = owner.submit(
            "/admin/rewards",
            "/admin/rewards/stamp-cards",
            &[("name", "Чай"), ("needed", needed), ("reward", "Чай")],
        );
        refused_with(&bad, 422, "Штампов до награды");
        assert!(
            bad.body.contains(&format!("value=\"{needed}\"")) && bad.body.contains("value=\"Чай\""),
            "the form comes back as typed: {}",
            bad.body
        );
    }
    assert_eq!(names(&server.card(anna)["stamps"], "card_name"), ["Кофе"]);
    // An edit is seen by the till at once.
    let page = owner.get("/admin/rewards").body;
    let edit = page
        .split("/admin/rewards/stamp-cards/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let edited = owner.submit(
        &format!("/admin/rewards/stamp-cards/{edit}"),
        &format!("/admin/rewards/stamp-cards/{edit}"),
        &[("name", "Кофе"), ("needed", "5"), ("reward", "Капучино")],
    );
    assert_eq!(edited.status, 303, "{}", edited.body);
    assert_eq!(server.card(anna)["stamps"][0]["needed"], 5);

    // A promotion on Mondays 12:00–15:00 (the programme's time is UTC here; START is a Monday noon).
    fn promotion(
        name: &str,
        starts: &str,
        ends: &str,
        days: &[&'static str],
        from: &str,
        to: &str,
    ) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("name", name.to_string()),
            ("description", "Суп в подарок".to_string()),
            ("starts", starts.to_string()),
            ("ends", ends.to_string()),
            ("from", from.to_string()),
            ("to", to.to_string()),
        ];
        fields.extend(days.iter().map(|d| (*d, "1".to_string())));
        fields
    }
    let lunch = promotion(
        "Ланч",
        "2025-03-01T00:00",
        "2025-04-01T00:00",
        &["wd0"],
        "12:00",
        "15:00",
    );
    let form: Vec<(&str, &str)> = lunch.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let made = owner.submit("/admin/rewards", "/admin/rewards/promotions", &form);
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(
        names(&server.card(anna)["promotions"], "name"),
        ["Ланч"],
        "Monday 12:00"
    );
    server.advance(3 * 3600);
    assert!(
        server.card(anna)["promotions"].as_array().unwrap().is_empty(),
        "Monday 15:00: over"
    );
    server.advance(21 * 3600);
    assert!(
        server.card(anna)["promotions"].as_array().unwrap().is_empty(),
        "Tuesday noon: not its day"
    );
    server.advance(6 * 86_400 + 1_800);
    assert_eq!(
        names(&server.card(anna)["promotions"], "name"),
        ["Ланч"],
        "next Monday 12:30"
    );
    server.advance(-(7 * 86_400 + 1_800));

    for (fields, reason) in [
        (
            promotion("Назад", "2025-03-10T00:00", "2025-03-09T00:00", &["wd0"], "", ""),
            "Конец акции должен быть позже",
        ),
        (
            promotion("Никогда", "2025-03-01T00:00", "2025-04-01T00:00", &[], "", ""),
            "хотя бы один день недели",
        ),
        (
            promotion(
                "Часы",
                "2025-03-01T00:00",
                "2025-04-01T00:00",
                &["wd0"],
                "15:00",
                "12:00",
            ),
            "конец позже начала",
        ),
        (
            promotion("Дата", "10.03.2025", "2025-04-01T00:00", &["wd0"], "", ""),
            "ГГГГ-ММ-ДД",
        ),
    ] {
        let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let bad = owner.submit("/admin/rewards", "/admin/rewards/promotions", &form);
        refused_with(&bad, 422, reason);
    }
    assert_eq!(
        names(&server.card(anna)["promotions"], "name"),
        ["Ланч"],
        "no bad promotion was kept"
    );

    // Gifts: a negative cost and a POS item code taken twice are refused.
    let gift = |owner: &mut Browser, name: &str, pos: &str, points: &str| {
        owner.submit(
            "/admin/rewards",
            "/admin/rewards/gifts",
            &[("name", name), ("pos_code", pos), ("points", points), ("active", "1")],
        )
    };
    assert_eq!(gift(&mut owner, "Капучино", "1001", "150").status, 303);
    refused_with(&gift(&mut owner, "Латте", "1001", "200"), 422, "уже у другого подарка");
    refused_with(&gift(&mut owner, "Латте", "1002", "-5"), 422, "не отрицательное");
    let page = owner.get("/admin/rewards").body;
    assert!(page.contains("Капучино") && !page.contains("Латте"), "{page}");
    let gift_id = page
        .split("/admin/rewards/gifts/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();

    // The manager may not define anything, but gives Anna the gift.
    let mut manager = Browser::signed_in(&server, "manager", PASSWORD);
    assert_eq!(manager.get("/admin/rewards").status, 403);
    let html = manager.get(&format!("/admin/guests/{anna}/rewards")).body;
    let csrf = hidden(&html, "csrf");
    let forbidden = manager.post(
        "/admin/rewards/gifts",
        &[("csrf", &csrf), ("name", "Чай"), ("pos_code", "1003"), ("points", "1")],
    );
    assert_eq!(forbidden.status, 403);
    let code = hidden(&html, "code");
    let form = [
        ("csrf", csrf.as_str()),
        ("code", code.as_str()),
        ("gift", gift_id.as_str()),
    ];
    let issued = manager.post(&format!("/admin/guests/{anna}/gift-codes"), &form);
    assert_eq!(issued.status, 303, "{}", issued.body);
    // The same form posted again issues nothing more.
    assert_eq!(
        manager.post(&format!("/admin/guests/{anna}/gift-codes"), &form).status,
        303
    );
    let listed = manager.get(&format!("/admin/guests/{anna}/rewards")).body;
    assert_eq!(listed.matches(&code).count(), 1, "one code: {listed}");

    // The printable gift QR: the till reads it, the token verifies and names the gift code.
    let print = listed
        .split("/admin/gift-codes/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let ticket = manager.get(&format!("/admin/gift-codes/{print}")).body;
    assert!(
        ticket.contains("Капучино") && ticket.contains("Anna") && ticket.contains("+7 *** ***-45-67"),
        "{ticket}"
    );
    assert!(!ticket.contains("916 123"), "the phone is masked");
    let Payload::GiftToken { gift_code, .. } = scan_printed_qr(&ticket, START) else {
        panic!("a gift token");
    };
    assert_eq!(gift_code, code);
    let found = server.post("/api/v1/identify", json!({"kind": "qr", "payload": gift_code}));
    assert_eq!(found.ok()["card"]["guest_id"], anna);
    assert_eq!(found.ok()["gift"]["name"], "Капучино");
    assert_eq!(found.ok()["gift"]["points"], 15_000);
    assert_eq!(
        found.ok()["gift"]["pos_code"],
        "1001",
        "the POS rings it up by the catalogue's code"
    );
    // Redeemed at the till with a check of only the gift; then used.
    server
        .post(
            "/api/v1/payments",
            json!({"op_id": "rw-pay-gift", "guest_id": anna, "hold_id": null, "spent": 0,
                   "check": {"subtotal": 0, "gift_codes": [code]}}),
        )
        .ok();
    server
        .post("/api/v1/identify", json!({"kind": "qr", "payload": code}))
        .error(409, "gift_already_used");
    assert!(
        manager
            .get(&format!("/admin/guests/{anna}/rewards"))
            .body
            .contains("получен ")
    );

    // The guest's printable QR names Anna's card, and identifies her.
    let ticket = manager.get(&format!("/admin/guests/{anna}/qr")).body;
    let Payload::GuestToken { guest_code, .. } = scan_printed_qr(&ticket, START + 599) else {
        panic!("a guest token");
    };
    assert_eq!(guest_code, ANNA_CARD);
    let found = server.post("/api/v1/identify", json!({"kind": "qr", "payload": guest_code}));
    assert_eq!(found.ok()["card"]["guest_id"], anna);
    // Boris has a card too; a guest with no printable code is offered an app code first.
    let boris = server.ids.boris;
    assert!(manager.get(&format!("/admin/guests/{boris}/qr")).body.contains("<svg"));

    // Every change is in the audit log, with who made it.
    let log = owner.get("/admin/audit").body;
    for what in [
        "Новая штамп-карта",
        "Штамп-карта изменена",
        "Новая акция",
        "Новый подарок",
        "Выдан код подарка",
    ] {
        assert!(log.contains(what), "{what} in the log: {log}");
    }
    assert!(log.contains("manager"));
    assert_eq!(
        log.matches("Выдан код подарка").count(),
        1,
        "a form posted twice is logged once"
    );
    assert!(!log.contains(&code), "gift codes are masked in the log");
}

#[test]
fn definitions_reach_the_till_on_sqlite() {
    definitions_reach_the_till(Db::Sqlite);
}

#[test]
fn definitions_reach_the_till_on_postgres() {
    definitions_reach_the_till(Db::Postgres);
}

/// Without the programme's key the QR pages say so instead of printing a code no till takes.
#[test]
fn no_key_no_qr() {
    let Some(server) = Server::start(Db::Sqlite) else {
        return;
    };
    add_user(&server, "owner", Role::Owner);
    let mut owner = Browser::signed_in(&server, "owner", PASSWORD);
    let page = owner.get(&format!("/admin/guests/{}/qr", server.ids.anna));
    refused_with(&page, 409, "LOYALTY_TOKEN_SECRET");
    assert!(!page.body.contains("<svg"));
}
