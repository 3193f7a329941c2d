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
