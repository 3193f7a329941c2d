//! The real till app (egui_kittest, no GPU) pointed at a loyalty server through a proxy: it
//! identifies a guest through the server, and its status line says when the server is away and
//! when it is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod server_support;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use loyalty_till::backend::{BackendKind, Clock, ServerLink};
use loyalty_till::config::Config;
use loyalty_till::domain::UnixSeconds;
use loyalty_till::domain::{ScanEvent, ScanKind};
use loyalty_till::money::Kopecks;
use loyalty_till::remote::ServerSettings;
use loyalty_till::ui::TillApp;
use loyalty_till::workflow::{BackendStatus, Event};
use loyalty_till::workflow::{Field, Screen};
use server_support::proxy::{Fault, Proxy};
use server_support::{ANNA_CARD, Db, Server, rub};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

fn scan() -> Event {
    Event::Scan(ScanEvent {
        source: "test".to_string(),
        kind: ScanKind::Barcode,
        payload: ANNA_CARD.to_string(),
        symbology: None,
        received_at_ms: 0,
    })
}

fn server_online(online: bool) -> impl Fn(&loyalty_till::workflow::State) -> bool {
    move |s| matches!(&s.backend, BackendStatus::Ready(kind @ BackendKind::Server { .. }) if kind.is_online() == online)
}

fn server_link(link: fn(&ServerLink) -> bool) -> impl Fn(&loyalty_till::workflow::State) -> bool {
    move |s| matches!(&s.backend, BackendStatus::Ready(BackendKind::Server { link: l, .. }) if link(l))
}

/// The till's clock is the server's: the test moves both.
struct SharedClock(Arc<AtomicI64>);

impl Clock for SharedClock {
    fn now(&self) -> UnixSeconds {
        self.0.load(Ordering::SeqCst)
    }
}

/// The real app pointed at `url`, probing every second (1 s while offline too).
fn till_on(server: &Server, url: String, token: String, dir: &std::path::Path) -> Harness<'static, TillApp> {
    let config = Config {
        server: ServerSettings {
            url,
            token,
            timeout_secs: 5,
            probe_secs: 1,
            retry_max_secs: 1,
            ..ServerSettings::default()
        },
        ..Config::default()
    };
    let options = loyalty_till::app::AppOptions {
        paths: loyalty_till::config::Paths::resolve(Some(dir)).unwrap(),
        demo: false,
        config,
        config_file: None,
        scenario: None,
        clock: Box::new(SharedClock(Arc::clone(&server.clock))),
        hid_bus: None,
        clipboard: None,
        after_ledger: None,
    };
    egui_kittest::Harness::builder()
        .with_size(egui::vec2(1024.0, 768.0))
        .with_max_steps(100_000)
        .build_eframe(move |cc| loyalty_till::app::start(&cc.egui_ctx, options).unwrap())
}

fn label_starting(harness: &Harness<'static, TillApp>, start: &str) -> String {
    harness
        .get_by(|n| n.role() == Role::Label && n.value().is_some_and(|l| l.starts_with(start)))
        .value()
        .unwrap()
}

fn click(harness: &mut Harness<'static, TillApp>, label_start: &str) {
    let button = |text: String| {
        move |node: &egui_kittest::kittest::AccessKitNode<'_>| {
            node.role() == Role::Button && node.label().is_some_and(|l| l.starts_with(&text))
        }
    };
    harness.get_by(button(label_start.to_string())).scroll_to_me();
    harness.run_steps(30);
    harness.get_by(button(label_start.to_string())).click();
    harness.run_steps(2);
}

#[test]
fn the_till_notices_its_server_going_and_coming_back_and_closes_a_check_in_between() {
    let server = Server::start(Db::Sqlite).unwrap();
    let proxy = Proxy::start(server.handle.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till_on(&server, proxy.url(), server.token.clone(), dir.path());
    let wait = Duration::from_secs(10);
    common::step_until(&mut harness, wait, "the server backend", server_online(true));
    harness.state_mut().dispatch(scan());
    common::step_until(&mut harness, wait, "the guest from the server", |s| s.guest.is_some());
    let anna = harness.state().state().guest.as_ref().unwrap().guest_id;

    // The server goes away while the till is idle: the probe notices, nobody touches the till.
    proxy.set(Fault::Down);
    common::step_until(
        &mut harness,
        Duration::from_secs(4),
        "the status line to say offline within the probe interval",
        server_link(|l| matches!(l, ServerLink::Offline { .. })),
    );
    harness.run_steps(2);
    let status = label_starting(&harness, "Нет связи с сервером лояльности с ");
    assert!(status.contains(&proxy.url()), "{status}");

    // A check is closed offline, keeping bonuses: a provisional receipt.
    harness
        .state_mut()
        .dispatch(Event::FieldEdited(Field::LinePrice, "600".to_string()));
    harness.state_mut().dispatch(Event::AddOrderLine);
    harness.run_steps(2);
    click(&mut harness, "Касса");
    common::step_until(&mut harness, wait, "the payment choice offline", |s| {
        matches!(s.screen, Screen::PaymentChoice { .. })
    });
    harness.run_steps(2);
    click(&mut harness, "Копить бонусы");
    click(&mut harness, "Точная сумма");
    click(&mut harness, "Провести оплату");
    common::step_until(&mut harness, wait, "the provisional receipt", |s| {
        matches!(s.screen, Screen::Done { .. }) || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
    });
    assert!(
        matches!(harness.state().state().screen, Screen::Done { provisional: true, .. }),
        "{:?}",
        harness.state().state().notice
    );
    harness.run_steps(2);
    label_starting(&harness, "Чек закрыт без связи с сервером");
    label_starting(&harness, "Начисление 30,00 бонусов сохранено на кассе");
    label_starting(&harness, "Предварительно:");
    assert_eq!(server.balance(anna).0, rub(1_000), "nothing reached the server yet");

    // The server comes back: the status line says so and the queue is sent, with no cashier action.
    proxy.set(Fault::Pass);
    common::step_until(
        &mut harness,
        Duration::from_secs(4),
        "online again",
        server_online(true),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while server.balance(anna).0 != rub(1_030) {
        assert!(std::time::Instant::now() < deadline, "the queued accrual was not sent");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run_steps(2);
    label_starting(&harness, "Сервер лояльности: ");
}

#[test]
fn a_till_started_with_the_server_down_or_with_a_wrong_token_says_which() {
    let server = Server::start(Db::Sqlite).unwrap();
    let proxy = Proxy::start(server.handle.addr);
    proxy.set(Fault::Down);
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till_on(&server, proxy.url(), server.token.clone(), dir.path());
    common::step_until(
        &mut harness,
        Duration::from_secs(10),
        "offline from the start",
        server_link(|l| matches!(l, ServerLink::Offline { .. })),
    );
    harness.run_steps(2);
    label_starting(&harness, "Нет связи с сервером лояльности с ");
    // A guest never identified on this till: a clear message, no loyalty for this check.
    harness.state_mut().dispatch(Event::OpenPlugin);
    harness.state_mut().dispatch(scan());
    common::step_until(&mut harness, Duration::from_secs(10), "the refusal", |s| {
        s.notice.is_some()
    });
    assert_eq!(
        harness.state().state().notice.as_ref().map(|n| n.key),
        Some("err-offline-unknown-guest")
    );
    harness.run_steps(2);
    label_starting(&harness, "Нет связи с сервером лояльности, и этого гостя не находили");

    let dir = tempfile::tempdir().unwrap();
    let mut harness = till_on(&server, server.handle.url(), "lt_wrong".to_string(), dir.path());
    common::step_until(
        &mut harness,
        Duration::from_secs(10),
        "token refused",
        server_link(|l| *l == ServerLink::TokenRefused),
    );
    harness.run_steps(2);
    let status = label_starting(&harness, "Сервер лояльности (");
    assert!(status.contains("не принимает токен кассы"), "{status}");
    assert!(status.contains("till-token create"), "what to do: {status}");
}

#[test]
fn the_till_on_a_server_says_when_it_is_away() {
    let server = Server::start(Db::Sqlite).unwrap();
    let proxy = Proxy::start(server.handle.addr);
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        server: ServerSettings {
            url: proxy.url(),
            token: server.token.clone(),
            timeout_secs: 5,
            ..ServerSettings::default()
        },
        ..Config::default()
    };
    let options = loyalty_till::app::AppOptions {
        paths: loyalty_till::config::Paths::resolve(Some(dir.path())).unwrap(),
        demo: false,
        config,
        config_file: None,
        scenario: None,
        clock: Box::new(loyalty_till::backend::SystemClock),
        hid_bus: None,
        clipboard: None,
        after_ledger: None,
    };
    let mut harness = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1024.0, 768.0))
        .with_max_steps(100_000)
        .build_eframe(move |cc| loyalty_till::app::start(&cc.egui_ctx, options).unwrap());
    let wait = Duration::from_secs(10);
    common::step_until(&mut harness, wait, "the server backend", server_online(true));
    let online_text = format!("Сервер лояльности: {}", proxy.url());
    harness.run_steps(2);
    // egui puts a label's text in its value.
    harness.get_by(|n| n.role() == Role::Label && n.value().as_deref() == Some(online_text.as_str()));

    harness.state_mut().dispatch(scan());
    common::step_until(&mut harness, wait, "the guest from the server", |s| {
        s.guest.as_ref().is_some_and(|g| g.balance == Kopecks(rub(1_000)))
    });

    proxy.set(Fault::Down);
    harness.state_mut().dispatch(Event::RemoveGuest);
    harness.run_steps(2);
    harness.state_mut().dispatch(scan());
    common::step_until(
        &mut harness,
        wait,
        "the status line to say offline",
        server_online(false),
    );
    harness.run_steps(2);
    harness.get_by(|n| {
        n.role() == Role::Label
            && n.value()
                .is_some_and(|l| l.starts_with("Нет связи с сервером лояльности") && l.contains(&proxy.url()))
    });

    proxy.set(Fault::Pass);
    harness.state_mut().dispatch(scan());
    common::step_until(
        &mut harness,
        wait,
        "the status line to say online again",
        server_online(true),
    );
}

fn sees(harness: &Harness<'static, TillApp>, text: &str) -> bool {
    harness
        .query_all_by(|n| {
            [n.value(), n.label()]
                .into_iter()
                .flatten()
                .any(|shown| shown.contains(text))
        })
        .next()
        .is_some()
}

/// Closes a check of 600 ₽ for Anna keeping bonuses, on the real screens; ends on the success
/// screen (provisional offline).
fn close_check_keeping_bonuses(harness: &mut Harness<'static, TillApp>) {
    let wait = Duration::from_secs(10);
    harness.state_mut().dispatch(scan());
    common::step_until(harness, wait, "the guest", |s| s.guest.is_some());
    harness
        .state_mut()
        .dispatch(Event::FieldEdited(Field::LinePrice, "600".to_string()));
    harness.state_mut().dispatch(Event::AddOrderLine);
    harness.run_steps(2);
    click(harness, "Касса");
    common::step_until(harness, wait, "the payment choice", |s| {
        matches!(s.screen, Screen::PaymentChoice { .. })
    });
    harness.run_steps(2);
    click(harness, "Копить бонусы");
    click(harness, "Точная сумма");
    click(harness, "Провести оплату");
    common::step_until(harness, wait, "the receipt", |s| {
        matches!(s.screen, Screen::Done { .. }) || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
    });
    assert!(
        matches!(harness.state().state().screen, Screen::Done { .. }),
        "{:?}",
        harness.state().state().notice
    );
    harness.run_steps(2);
}

fn the_report(harness: &Harness<'static, TillApp>) -> Option<loyalty_till::domain::ShiftReport> {
    match &harness.state().state().screen {
        Screen::Shift(loyalty_till::workflow::ShiftStep::Report { report, .. }) => report.clone(),
        _ => None,
    }
}

#[test]
fn the_shift_report_of_a_till_on_a_server_is_the_servers_and_offline_it_says_so() {
    use loyalty_till::workflow::ShiftStep;
    let server = Server::start(Db::Sqlite).unwrap();
    let proxy = Proxy::start(server.handle.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut harness = till_on(&server, proxy.url(), server.token.clone(), dir.path());
    let wait = Duration::from_secs(10);
    common::step_until(&mut harness, wait, "the server backend", server_online(true));

    // A check at this till, through the screens; another till's check through the API.
    close_check_keeping_bonuses(&mut harness);
    click(&mut harness, "Новый заказ");
    let till2 = server.token_for("till-2");
    server
        .post_as(
            &till2,
            "/api/v1/accruals",
            serde_json::json!({"op_id": "t2-1", "guest_id": server.ids.boris, "check": {"subtotal": rub(400)}}),
        )
        .ok();

    // The report goes where the logs are exported, set in the menu.
    let out = dir.path().join("exports");
    click(&mut harness, "Меню");
    harness
        .get_by_role(Role::TextInput)
        .set_text_value_accesskit(&out.display().to_string());
    harness.run_steps(30);
    click(&mut harness, "Закрыть смену");
    common::step_until(&mut harness, wait, "the list", |s| {
        matches!(s.screen, Screen::Shift(ShiftStep::List { ends: Some(_) }))
    });
    click(&mut harness, "Отчёт за смену");
    common::step_until(&mut harness, wait, "the server's report", |s| {
        matches!(&s.screen, Screen::Shift(ShiftStep::Report { report: Some(_), .. }))
            || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
    });
    let report = the_report(&harness).unwrap_or_else(|| panic!("{:?}", harness.state().state().notice));
    assert_eq!(report.till.as_deref(), Some("till-1"));
    assert_eq!(
        (
            report.checks,
            report.revenue,
            report.spent,
            report.accrued,
            report.returns
        ),
        (1, Kopecks(rub(600)), Kopecks::ZERO, Kopecks(rub(30)), 0),
        "this till's check alone, not till-2's"
    );
    assert_eq!(
        report.since,
        server_support::START - 12 * 3_600,
        "the server's day, in its zone"
    );
    harness.run_steps(2);
    assert!(sees(&harness, "till-1"), "the till is named");
    assert!(sees(&harness, "30,00"), "the accrual is on screen");
    assert!(sees(&harness, "как их провёл сервер лояльности"));
    click(&mut harness, "Сохранить отчёт (CSV)");
    common::step_until(&mut harness, wait, "the report saved", |s| {
        matches!(&s.screen, Screen::Shift(ShiftStep::Report { saved: Some(_), .. }))
            || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
    });
    let Screen::Shift(ShiftStep::Report { saved: Some(path), .. }) = &harness.state().state().screen else {
        panic!("not saved: {:?}", harness.state().state().notice);
    };
    assert!(path.starts_with(&out), "{path:?}");
    assert!(
        path.ends_with("shift-report-2025-03-10.csv"),
        "the server's day: {path:?}"
    );
    let csv = std::fs::read_to_string(path).unwrap();
    assert!(csv.starts_with('\u{feff}'));
    for row in [
        "\r\nКасса;till-1\r\n",
        "\r\nЧеков с гостем;1\r\n",
        "\r\nНачислено бонусов;30,00\r\n",
    ] {
        assert!(csv.contains(row), "{row:?} in {csv}");
    }
    assert!(
        !csv.contains(ANNA_CARD) && !csv.contains("Anna"),
        "no card or name: {csv}"
    );

    // The server goes away; a check is closed offline and waits in the journal.
    click(&mut harness, "Назад");
    click(&mut harness, "Назад");
    proxy.set(Fault::Down);
    common::step_until(
        &mut harness,
        Duration::from_secs(4),
        "offline",
        server_link(|l| matches!(l, ServerLink::Offline { .. })),
    );
    close_check_keeping_bonuses(&mut harness);
    assert!(matches!(
        harness.state().state().screen,
        Screen::Done { provisional: true, .. }
    ));
    click(&mut harness, "Новый заказ");
    click(&mut harness, "Меню");
    click(&mut harness, "Закрыть смену");
    common::step_until(
        &mut harness,
        wait,
        "the list offline",
        |s| matches!(&s.screen, Screen::Shift(ShiftStep::List { ends: Some(ends) }) if ends.len() == 1),
    );
    // Offline: refused with the reason, back on the list, the queued payment still there.
    click(&mut harness, "Отчёт за смену");
    common::step_until(&mut harness, wait, "the refusal", |s| s.notice.is_some());
    assert_eq!(
        harness.state().state().notice.as_ref().map(|n| n.key),
        Some("err-shift-report-offline")
    );
    common::step_until(
        &mut harness,
        wait,
        "the list again",
        |s| matches!(&s.screen, Screen::Shift(ShiftStep::List { ends: Some(ends) }) if ends.len() == 1),
    );
    harness.run_steps(2);
    assert!(sees(&harness, "Отчёт за смену берётся с сервера лояльности"));
    assert!(sees(&harness, "600,00"), "the queued payment is listed");
    assert!(the_report(&harness).is_none(), "no figures made up offline");
    assert_eq!(
        server.balance(server.ids.anna).0,
        rub(1_030),
        "the offline check is not sent yet"
    );

    // Back online: the queued check is sent first, then counted.
    proxy.set(Fault::Pass);
    common::step_until(
        &mut harness,
        Duration::from_secs(4),
        "online again",
        server_online(true),
    );
    click(&mut harness, "Отчёт за смену");
    common::step_until(&mut harness, wait, "the report online", |s| {
        matches!(&s.screen, Screen::Shift(ShiftStep::Report { report: Some(_), .. }))
            || s.notice.as_ref().is_some_and(|n| n.key.starts_with("err"))
    });
    let report = the_report(&harness).unwrap_or_else(|| panic!("{:?}", harness.state().state().notice));
    assert_eq!(
        (report.checks, report.accrued),
        (2, Kopecks(rub(60))),
        "the check closed offline is counted"
    );
    assert_eq!(server.balance(server.ids.anna).0, rub(1_060));
}
