#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! «Закрыть смену» in the workflow core, with the backend's answers made by hand.

use loyalty_till::backend::{BackendKind, ServerLink};
use loyalty_till::domain::*;
use loyalty_till::money::Kopecks;
use loyalty_till::workflow::*;
use std::path::PathBuf;

fn state_with(kind: BackendKind) -> State {
    let mut state = State::new("till-test", true);
    update(&mut state, Event::BackendReady(Ok(kind)));
    state
}

fn embedded() -> State {
    state_with(BackendKind::Embedded {
        path: "/tmp/x.sqlite".into(),
    })
}

fn open_hold() -> LooseEnd {
    LooseEnd {
        kind: LooseEndKind::OpenHold,
        op_id: String::new(),
        hold: Some(7),
        amount: Kopecks(10_000),
        units: 0,
        needs_server: false,
    }
}

fn queued() -> LooseEnd {
    LooseEnd {
        kind: LooseEndKind::QueuedPayment,
        op_id: "till-1-5".to_string(),
        hold: None,
        amount: Kopecks(100_000),
        units: 0,
        needs_server: true,
    }
}

fn load_request(effects: &[Effect]) -> RequestId {
    match effects {
        [Effect::LoadLooseEnds { request }] => *request,
        other => panic!("expected one LoadLooseEnds, got {other:?}"),
    }
}

/// Opens «Закрыть смену» and answers the list with `ends`.
fn opened_with(ends: Vec<LooseEnd>) -> State {
    let mut state = embedded();
    let effects = update(&mut state, Event::OpenShift);
    assert_eq!(state.screen, Screen::Shift(ShiftStep::List { ends: None }));
    let request = load_request(&effects);
    update(
        &mut state,
        Event::LooseEndsFound {
            request,
            result: Ok(ends.clone()),
        },
    );
    assert_eq!(state.screen, Screen::Shift(ShiftStep::List { ends: Some(ends) }));
    state
}

#[test]
fn an_empty_list_is_shown_as_empty() {
    let state = opened_with(Vec::new());
    assert!(!state.is_busy());
    assert_eq!(state.notice, None);
}

#[test]
fn releasing_a_hold_sends_it_with_a_fresh_op_id_and_reads_the_list_again() {
    let mut state = opened_with(vec![queued(), open_hold()]);
    let effects = update(&mut state, Event::SettleLooseEnd(1));
    let (request, op_id) = match effects.as_slice() {
        [Effect::SettleLooseEnd { request, op_id, end }] => {
            assert_eq!(*end, open_hold());
            (*request, op_id.clone())
        }
        other => panic!("expected one SettleLooseEnd, got {other:?}"),
    };
    assert!(op_id.starts_with("till-test-"), "{op_id}");
    // Busy: a second tap waits instead of sending twice.
    assert!(update(&mut state, Event::SettleLooseEnd(1)).is_empty());
    assert_eq!(state.notice.as_ref().unwrap().key, "info-wait");

    let effects = update(
        &mut state,
        Event::LooseEndSettled {
            request,
            result: Ok(()),
        },
    );
    assert_eq!(state.notice.as_ref().unwrap().key, "shift-settled");
    let reload = load_request(&effects);
    update(
        &mut state,
        Event::LooseEndsFound {
            request: reload,
            result: Ok(vec![queued()]),
        },
    );
    assert_eq!(
        state.screen,
        Screen::Shift(ShiftStep::List {
            ends: Some(vec![queued()])
        })
    );
}

#[test]
fn a_refused_send_keeps_the_list_and_says_why() {
    let mut state = opened_with(vec![queued()]);
    let effects = update(&mut state, Event::SettleLooseEnd(0));
    let [Effect::SettleLooseEnd { request, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let effects = update(
        &mut state,
        Event::LooseEndSettled {
            request: *request,
            result: Err(LoyaltyError::Unavailable("down".to_string())),
        },
    );
    assert!(effects.is_empty());
    assert_eq!(state.notice.as_ref().unwrap().level, NoticeLevel::Error);
    assert_eq!(
        state.screen,
        Screen::Shift(ShiftStep::List {
            ends: Some(vec![queued()])
        })
    );
    // An index past the list does nothing.
    assert!(update(&mut state, Event::SettleLooseEnd(5)).is_empty());
}

#[test]
fn the_report_is_asked_for_shown_and_saved_where_the_logs_go() {
    let mut state = opened_with(Vec::new());
    let effects = update(&mut state, Event::ShowShiftReport);
    let [Effect::ShiftReport { request }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let report = ShiftReport {
        checks: 2,
        spent: Kopecks(10_000),
        ..ShiftReport::default()
    };
    update(
        &mut state,
        Event::ShiftReportReady {
            request: *request,
            result: Ok(report.clone()),
        },
    );
    assert_eq!(
        state.screen,
        Screen::Shift(ShiftStep::Report {
            report: Some(report.clone()),
            saved: None
        })
    );
    // No folder: a clear message, nothing written.
    let none = update(
        &mut state,
        Event::SaveShiftReport {
            dir: PathBuf::new(),
            file_name: "r.csv".to_string(),
            contents: "x".to_string(),
        },
    );
    assert!(none.is_empty());
    assert_eq!(state.notice.as_ref().unwrap().key, "shift-report-no-folder");

    let effects = update(
        &mut state,
        Event::SaveShiftReport {
            dir: PathBuf::from("/tmp/exports"),
            file_name: "r.csv".to_string(),
            contents: "x".to_string(),
        },
    );
    let [Effect::SaveFile { request, dir, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(dir, &PathBuf::from("/tmp/exports"));
    let path = PathBuf::from("/tmp/exports/r.csv");
    update(
        &mut state,
        Event::ShiftReportSaved {
            request: *request,
            result: Ok(path.clone()),
        },
    );
    assert_eq!(state.notice.as_ref().unwrap().key, "shift-report-saved");
    assert_eq!(
        state.screen,
        Screen::Shift(ShiftStep::Report {
            report: Some(report),
            saved: Some(path)
        })
    );
    // «Назад» goes back to the list, read afresh; again, home.
    let effects = update(&mut state, Event::Back);
    load_request(&effects);
    assert_eq!(state.screen, Screen::Shift(ShiftStep::List { ends: None }));
    update(&mut state, Event::Back);
    assert_eq!(state.screen, Screen::Idle);
    assert!(!state.is_busy(), "the abandoned read is dropped");
}

#[test]
fn a_server_till_asks_its_server_and_offline_is_told_the_report_needs_it() {
    let mut state = state_with(BackendKind::Server {
        url: "http://x".to_string(),
        link: ServerLink::Online,
    });
    let effects = update(&mut state, Event::OpenShift);
    let request = load_request(&effects);
    update(
        &mut state,
        Event::LooseEndsFound {
            request,
            result: Ok(vec![queued()]),
        },
    );
    // Asked like the embedded ledger's: the backend (the server's endpoint) answers.
    let effects = update(&mut state, Event::ShowShiftReport);
    let [Effect::ShiftReport { request }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let request = *request;
    // Offline: the reason, back on the list read again (its queued payment still there), and
    // no figures.
    let effects = update(
        &mut state,
        Event::ShiftReportReady {
            request,
            result: Err(LoyaltyError::ServerAway(AwayReason::NoShiftReport)),
        },
    );
    assert_eq!(state.notice.as_ref().unwrap().key, "err-shift-report-offline");
    assert_eq!(state.screen, Screen::Shift(ShiftStep::List { ends: None }));
    let request = load_request(&effects);
    update(
        &mut state,
        Event::LooseEndsFound {
            request,
            result: Ok(vec![queued()]),
        },
    );
    assert_eq!(
        state.screen,
        Screen::Shift(ShiftStep::List {
            ends: Some(vec![queued()])
        })
    );
    assert_eq!(
        state.notice.as_ref().unwrap().key,
        "err-shift-report-offline",
        "the reason stays while the list comes back"
    );

    // Online again: the server's report, with its till, is shown.
    let effects = update(&mut state, Event::ShowShiftReport);
    let [Effect::ShiftReport { request }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let report = ShiftReport {
        till: Some("till-1".to_string()),
        checks: 3,
        ..ShiftReport::default()
    };
    update(
        &mut state,
        Event::ShiftReportReady {
            request: *request,
            result: Ok(report.clone()),
        },
    );
    assert_eq!(
        state.screen,
        Screen::Shift(ShiftStep::Report {
            report: Some(report),
            saved: None
        })
    );
    assert!(state.notice.is_none());
}

#[test]
fn the_shift_cannot_be_closed_in_the_middle_of_a_payment() {
    let mut state = embedded();
    let quote = SpendQuote {
        amount_due: Kopecks(100_000),
        max_spend: Kopecks(50_000),
        limits: Vec::new(),
        max_check_bp: 5_000,
        spend_step: Kopecks(100),
        accrual_bp: 500,
    };
    state.screen = Screen::PaymentChoice { quote };
    let before = state.screen.clone();
    assert!(update(&mut state, Event::OpenShift).is_empty());
    assert_eq!(state.screen, before);
    assert_eq!(state.notice.as_ref().unwrap().key, "err-finish-payment-first");
}
