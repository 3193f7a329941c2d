//! The real till app (egui_kittest, no GPU) pointed at a loyalty server through a proxy: it
//! identifies a guest through the server, and its status line says when the server is away and
//! when it is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod server_support;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use loyalty_till::backend::BackendKind;
use loyalty_till::config::Config;
use loyalty_till::domain::{ScanEvent, ScanKind};
use loyalty_till::money::Kopecks;
use loyalty_till::remote::ServerSettings;
use loyalty_till::workflow::{BackendStatus, Event};
use server_support::proxy::{Fault, Proxy};
use server_support::{ANNA_CARD, Db, Server, rub};
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
    move |s| matches!(&s.backend, BackendStatus::Ready(BackendKind::Server { online: o, .. }) if *o == online)
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
