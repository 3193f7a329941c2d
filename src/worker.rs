//! The background side: a named thread owns the loyalty backend, runs effects in order and sends
//! their results back as events. [`Session`] joins it to the workflow core: the one place where
//! events are applied, effects dispatched and outcomes logged.

use crate::backend::LoyaltyBackend;
use crate::domain::LoyaltyError;
use crate::mask::mask_code;
use crate::support::exchanges::Started;
use crate::workflow::{self, Effect, Event, NoticeLevel, State};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

/// Opens the backend on the worker thread, so that opening a file or a connection never blocks
/// the UI.
pub type BackendFactory = Box<dyn FnOnce() -> Result<Box<dyn LoyaltyBackend>, LoyaltyError> + Send>;

/// Called after every result, so the UI wakes up and drains it (egui's `request_repaint`).
pub type Waker = Box<dyn Fn() + Send>;

/// Effects are few and small; a bounded queue still keeps a runaway producer from eating memory.
const QUEUE_DEPTH: usize = 64;

pub struct Worker {
    effects: SyncSender<Effect>,
    results: Receiver<Event>,
}

impl Worker {
    pub fn spawn(open_backend: BackendFactory, waker: Waker) -> std::io::Result<Worker> {
        let (effect_tx, effect_rx) = mpsc::sync_channel::<Effect>(QUEUE_DEPTH);
        let (result_tx, result_rx) = mpsc::sync_channel::<Event>(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("loyalty-backend".to_string())
            .spawn(move || {
                // A remote backend is probed whenever no effect came for the interval it asks for,
                // and once before it is reported ready.
                let mut next_probe = None;
                let mut backend = match open_backend() {
                    Ok(mut backend) => {
                        next_probe = backend.probe().map(|after| Instant::now() + after);
                        let kind = backend.kind();
                        tracing::info!(?kind, "loyalty backend ready");
                        let _ = result_tx.send(Event::BackendReady(Ok(kind)));
                        Some(backend)
                    }
                    Err(error) => {
                        tracing::error!(%error, "loyalty backend failed to open");
                        let _ = result_tx.send(Event::BackendReady(Err(error)));
                        None
                    }
                };
                waker();
                let mut shown = backend.as_deref().map(|b| b.kind());
                loop {
                    let wait = next_probe.map_or(Duration::from_secs(3_600), |at| {
                        at.saturating_duration_since(Instant::now())
                    });
                    let effect = match effect_rx.recv_timeout(wait) {
                        Ok(effect) => Some(effect),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    match (effect, backend.as_deref_mut()) {
                        (Some(effect), backend) => {
                            let event = match backend {
                                Some(backend) => run_effect(backend, effect),
                                None => unavailable(effect),
                            };
                            if result_tx.send(event).is_err() {
                                break; // The UI is gone: nothing left to answer.
                            }
                        }
                        (None, Some(backend)) => {
                            next_probe = backend.probe().map(|after| Instant::now() + after);
                        }
                        (None, None) => next_probe = None,
                    }
                    // A loyalty server that stopped answering, or answers again, shows on the status line.
                    if let Some(kind) = backend
                        .as_deref()
                        .map(|b| b.kind())
                        .filter(|k| shown.as_ref() != Some(k))
                    {
                        tracing::info!(?kind, "loyalty backend status changed");
                        shown = Some(kind.clone());
                        let _ = result_tx.send(Event::BackendReady(Ok(kind)));
                    }
                    waker();
                }
            })?;
        Ok(Worker {
            effects: effect_tx,
            results: result_rx,
        })
    }
}

/// Runs one effect against the backend. Errors are logged here, once, with their request number;
/// every log line of the call carries its request id, and its masked summary is kept for support.
pub fn run_effect(backend: &mut dyn LoyaltyBackend, effect: Effect) -> Event {
    let started = Started::new();
    let _span = tracing::info_span!("exchange", request_id = %started.request_id).entered();
    match effect {
        Effect::Identify { request, scan } => {
            let result = backend.identify(&scan);
            log_result(
                request,
                "identify",
                &result,
                &format!("{:?} {}", scan.kind, mask_code(&scan.payload)),
                started,
            );
            match result {
                // Whether the cashier may enrol the code's owner is the programme's to say.
                Err(LoyaltyError::UnknownCode) => {
                    let enrolment = backend.enrolment().unwrap_or_else(|error| {
                        tracing::warn!(request, %error, "the programme's enrolment setting could not be read");
                        None
                    });
                    Event::NotFound {
                        request,
                        code: scan,
                        enrolment,
                    }
                }
                result => Event::Identified { request, result },
            }
        }
        Effect::Enrol {
            request,
            op_id,
            code,
            phone,
            name,
        } => {
            let result = backend.enrol(&op_id, &code, &phone, &name);
            let what = format!(
                "op={op_id} {:?} {} phone={}",
                code.kind,
                mask_code(&code.payload),
                mask_code(&phone)
            );
            log_result(request, "enrol", &result, &what, started);
            Event::Enrolled { request, result }
        }
        Effect::Calculate { request, guest, check } => {
            let result = backend.calculate(guest, &check);
            log_result(
                request,
                "calculate",
                &result,
                &format!("guest={guest} subtotal={}", check.subtotal.0),
                started,
            );
            Event::Calculated { request, result }
        }
        Effect::Hold {
            request,
            op_id,
            guest,
            amount,
            check,
        } => {
            let result = backend.hold(&op_id, guest, amount, &check);
            log_result(
                request,
                "hold",
                &result,
                &format!("op={op_id} guest={guest} amount={}", amount.0),
                started,
            );
            Event::HoldPlaced { request, result }
        }
        Effect::HoldShared {
            request,
            op_id,
            owner,
            shares,
            check,
        } => {
            let result = backend.hold_shared(&op_id, owner, &shares, &check);
            let what: Vec<String> = shares.iter().map(|s| format!("{}:{}", s.guest, s.amount.0)).collect();
            log_result(
                request,
                "hold_shared",
                &result,
                &format!("op={op_id} owner={owner} shares={}", what.join(",")),
                started,
            );
            Event::SharedHoldsPlaced { request, result }
        }
        Effect::CommitShared {
            request,
            op_id,
            owner,
            payments,
            check,
        } => {
            let result = backend.commit_shared(&op_id, owner, &payments, &check);
            let what: Vec<String> = payments.iter().map(|p| format!("{}:{}", p.guest, p.spent.0)).collect();
            log_result(
                request,
                "commit_shared",
                &result,
                &format!("op={op_id} owner={owner} payments={}", what.join(",")),
                started,
            );
            Event::SharedPaymentCommitted { request, result }
        }
        Effect::CommitPayment {
            request,
            op_id,
            guest,
            hold,
            spent,
            check,
        } => {
            let result = backend.commit_payment(&op_id, guest, hold, spent, &check);
            let what = format!(
                "op={op_id} guest={guest} hold={hold:?} spent={} subtotal={}",
                spent.0, check.subtotal.0
            );
            log_result(request, "commit", &result, &what, started);
            match result {
                Ok(receipt) if backend.is_provisional(&op_id) => {
                    tracing::info!(request, op = %op_id, "the receipt is provisional: the server books it later");
                    Event::PaymentProvisional { request, receipt }
                }
                result => Event::PaymentCommitted { request, result },
            }
        }
        Effect::PosConfirm {
            request,
            op_id,
            order_id,
            owner,
            shares,
        } => {
            use crate::handhelds::pos::PosError;
            let answer = crate::handhelds::pos::shared_feed().confirm_shared(&order_id, owner, &shares, &op_id);
            let amounts: Vec<String> = shares.iter().map(|s| format!("{}:{}", s.guest, s.amount.0)).collect();
            let what = format!(
                "op={op_id} order={order_id} owner={owner} amounts={}",
                amounts.join(",")
            );
            let result = match answer {
                Some(Ok(result)) => {
                    tracing::info!(request, %what, "pos confirm ok");
                    Ok(result
                        .bonus_payment
                        .map(|b| crate::money::Kopecks(b.amount))
                        .unwrap_or(crate::money::Kopecks::ZERO))
                }
                Some(Err(PosError::Refused(refusal))) => {
                    tracing::warn!(request, %what, code = refusal.code(), "pos confirm refused");
                    Err(crate::workflow::Notice::error(refusal.message_key()))
                }
                Some(Err(PosError::Loyalty(error))) => {
                    tracing::warn!(request, %what, %error, "pos confirm refused by the engine");
                    Err(crate::workflow::error_notice(&error))
                }
                Some(Err(PosError::Storage(error))) => {
                    tracing::error!(request, %what, %error, "pos confirm failed");
                    Err(crate::workflow::Notice::error("err-storage"))
                }
                None => {
                    tracing::error!(request, %what, "pos confirm: the POS endpoint is not running");
                    Err(crate::workflow::Notice::error("pos-not-running"))
                }
            };
            Event::PosConfirmed { request, result }
        }
        Effect::VoidHold { request, op_id, hold } => {
            let result = backend.void_hold(&op_id, hold);
            log_result(request, "void", &result, &format!("op={op_id} hold={hold}"), started);
            Event::HoldVoided { request, result }
        }
        Effect::FindChecks { request, filter } => {
            let result = backend.find_checks(&filter);
            let what = format!(
                "today={} number={:?} guest={}",
                filter.today,
                filter.number,
                filter.guest_code.as_deref().map(mask_code).unwrap_or_default()
            );
            log_result(request, "find_checks", &result, &what, started);
            Event::ChecksFound { request, result }
        }
        Effect::PreviewReturn {
            request,
            payment_op_id,
            part,
        } => {
            let result = backend.preview_refund(&payment_op_id, &part);
            let what = format!("payment={payment_op_id} part={}", return_part_text(&part));
            log_result(request, "preview_refund", &result, &what, started);
            Event::ReturnPreviewed { request, result }
        }
        Effect::Return {
            request,
            op_id,
            payment_op_id,
            part,
        } => {
            let result = backend.refund(&op_id, &payment_op_id, &part);
            let what = format!("op={op_id} payment={payment_op_id} part={}", return_part_text(&part));
            log_result(request, "refund", &result, &what, started);
            if let Ok(receipt) = &result
                && receipt.unrecovered.0 > 0
            {
                tracing::warn!(request, op = %op_id, unrecovered = receipt.unrecovered.0,
                    "the return could not take back the whole accrual: the guest had spent it");
            }
            Event::Returned { request, result }
        }
        Effect::LoadLooseEnds { request } => {
            let result = backend.loose_ends();
            let what = match &result {
                Ok(ends) => format!("found={}", ends.len()),
                Err(_) => String::new(),
            };
            log_result(request, "loose_ends", &result, &what, started);
            Event::LooseEndsFound { request, result }
        }
        Effect::SettleLooseEnd { request, op_id, end } => {
            let result = backend.settle_loose_end(&op_id, &end);
            let what = format!("op={op_id} kind={:?} of={} hold={:?}", end.kind, end.op_id, end.hold);
            log_result(request, "settle_loose_end", &result, &what, started);
            Event::LooseEndSettled { request, result }
        }
        Effect::ShiftReport { request } => {
            let result = backend.shift_report();
            log_result(request, "shift_report", &result, "", started);
            Event::ShiftReportReady { request, result }
        }
        Effect::SaveFile {
            request,
            dir,
            file_name,
            contents,
        } => Event::ShiftReportSaved {
            request,
            result: save_file(&dir, &file_name, &contents),
        },
    }
}

/// Writes a report into `dir` (made if missing); a failure is logged and answered with its reason.
fn save_file(dir: &std::path::Path, file_name: &str, contents: &str) -> Result<std::path::PathBuf, String> {
    let path = dir.join(file_name);
    let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, contents));
    match written {
        Ok(()) => {
            tracing::info!(path = %path.display(), "shift report saved");
            Ok(path)
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "the shift report could not be saved");
            Err(error.to_string())
        }
    }
}

fn log_result<T: std::fmt::Debug>(
    request: u64,
    call: &str,
    result: &Result<T, LoyaltyError>,
    what: &str,
    started: Started,
) {
    let ms = started.elapsed().as_millis();
    let refusal = result.as_ref().err().map(ToString::to_string);
    started.finish(call, request, what, refusal.as_deref());
    match result {
        Ok(_) => tracing::info!(request, call, what, ms, "backend call succeeded"),
        Err(error) => tracing::warn!(request, call, what, ms, %error, "backend call refused"),
    }
}

/// The answer to every effect when the backend could not be opened: the cashier sees why.
fn unavailable(effect: Effect) -> Event {
    fn error<T>() -> Result<T, LoyaltyError> {
        Err(LoyaltyError::Unavailable("backend not open".to_string()))
    }
    match effect {
        Effect::Identify { request, .. } => Event::Identified {
            request,
            result: error(),
        },
        Effect::Calculate { request, .. } => Event::Calculated {
            request,
            result: error(),
        },
        Effect::Hold { request, .. } => Event::HoldPlaced {
            request,
            result: error(),
        },
        Effect::CommitPayment { request, .. } => Event::PaymentCommitted {
            request,
            result: error(),
        },
        Effect::HoldShared { request, .. } => Event::SharedHoldsPlaced {
            request,
            result: error(),
        },
        Effect::CommitShared { request, .. } => Event::SharedPaymentCommitted {
            request,
            result: error(),
        },
        Effect::VoidHold { request, .. } => Event::HoldVoided {
            request,
            result: error(),
        },
        Effect::Enrol { request, .. } => Event::Enrolled {
            request,
            result: error(),
        },
        Effect::PosConfirm { request, .. } => Event::PosConfirmed {
            request,
            result: Err(crate::workflow::error_notice(&LoyaltyError::Unavailable(
                "backend not open".to_string(),
            ))),
        },
        Effect::FindChecks { request, .. } => Event::ChecksFound {
            request,
            result: error(),
        },
        Effect::PreviewReturn { request, .. } => Event::ReturnPreviewed {
            request,
            result: error(),
        },
        Effect::Return { request, .. } => Event::Returned {
            request,
            result: error(),
        },
        Effect::LoadLooseEnds { request } => Event::LooseEndsFound {
            request,
            result: error(),
        },
        Effect::SettleLooseEnd { request, .. } => Event::LooseEndSettled {
            request,
            result: error(),
        },
        Effect::ShiftReport { request } => Event::ShiftReportReady {
            request,
            result: error(),
        },
        // Writing a file needs no backend.
        Effect::SaveFile {
            request,
            dir,
            file_name,
            contents,
        } => Event::ShiftReportSaved {
            request,
            result: save_file(&dir, &file_name, &contents),
        },
    }
}

/// The workflow state and its worker: what the UI drives.
pub struct Session {
    pub state: State,
    worker: Worker,
}

impl Session {
    pub fn new(state: State, worker: Worker) -> Session {
        Session { state, worker }
    }

    /// Applies an event and sends its effects to the worker.
    pub fn dispatch(&mut self, event: Event) {
        let before = self.state.notice.clone();
        tracing::debug!(event = event_name(&event), "event");
        for effect in workflow::update(&mut self.state, event) {
            if let Err(error) = self.worker.effects.try_send(effect) {
                // Only a dead or flooded worker gets here; the cashier must know the ledger
                // was not reached.
                tracing::error!(%error, "the background worker did not take an effect");
                self.state.notice = Some(workflow::error_notice(&LoyaltyError::Unavailable(error.to_string())));
            }
        }
        if self.state.notice != before
            && let Some(notice) = &self.state.notice
        {
            match notice.level {
                NoticeLevel::Error => {
                    tracing::warn!(key = notice.key, "refused: shown to the cashier")
                }
                NoticeLevel::Info | NoticeLevel::Success => {
                    tracing::info!(key = notice.key, "notice")
                }
            }
        }
    }

    /// Drains the worker's results into the core. Returns how many were applied.
    pub fn poll(&mut self) -> usize {
        let mut applied = 0;
        loop {
            match self.worker.results.try_recv() {
                Ok(event) => {
                    self.dispatch(event);
                    applied += 1;
                }
                Err(TryRecvError::Empty) => return applied,
                Err(TryRecvError::Disconnected) => {
                    if !matches!(self.state.backend, workflow::BackendStatus::Failed(_)) {
                        tracing::error!("the background worker stopped");
                        self.dispatch(Event::BackendReady(Err(LoyaltyError::Unavailable(
                            "worker stopped".to_string(),
                        ))));
                    }
                    return applied;
                }
            }
        }
    }
}

/// Event names for the log: never the payload, which may hold a phone or card number.
fn event_name(event: &Event) -> &'static str {
    match event {
        Event::BackendReady(_) => "backend_ready",
        Event::PosOrder(_) => "pos_order",
        Event::PosConfirmed { .. } => "pos_confirmed",
        Event::OpenPlugin => "open_plugin",
        Event::Back => "back",
        Event::ShowStamps => "show_stamps",
        Event::ShowPromotions => "show_promotions",
        Event::OpenOrder => "open_order",
        Event::FocusField(_) => "focus_field",
        Event::Keypad(_) => "keypad",
        Event::FieldEdited(..) => "field_edited",
        Event::SubmitCode => "submit_code",
        Event::Scan(_) => "scan",
        Event::ScanRefused(_) => "scan_refused",
        Event::ReplaceGuest(_) => "replace_guest",
        Event::AskRemoveGuest(_) => "ask_remove_guest",
        Event::RemoveGuest => "remove_guest",
        Event::AddOrderLine => "add_order_line",
        Event::UseDemoOrder => "use_demo_order",
        Event::ClearOrder => "clear_order",
        Event::StartPayment => "start_payment",
        Event::ChoosePaymentMode(_) => "choose_payment_mode",
        Event::SetTender(_) => "set_tender",
        Event::ExactAmount => "exact_amount",
        Event::SpendPreset(_) => "spend_preset",
        Event::ConfirmPayment => "confirm_payment",
        Event::CancelPayment => "cancel_payment",
        Event::NewOrder => "new_order",
        Event::DismissNotice => "dismiss_notice",
        Event::Identified { .. } => "identified",
        Event::Calculated { .. } => "calculated",
        Event::HoldPlaced { .. } => "hold_placed",
        Event::PaymentCommitted { .. } => "payment_committed",
        Event::PaymentProvisional { .. } => "payment_provisional",
        Event::HoldVoided { .. } => "hold_voided",
        Event::NotFound { .. } => "not_found",
        Event::StartEnrol => "start_enrol",
        Event::SubmitEnrol => "submit_enrol",
        Event::Enrolled { .. } => "enrolled",
        Event::AddCard => "add_card",
        Event::RemoveCard(_) => "remove_card",
        Event::SetOwner(_) => "set_owner",
        Event::SharedHoldsPlaced { .. } => "shared_holds_placed",
        Event::SharedPaymentCommitted { .. } => "shared_payment_committed",
        Event::OpenReturns { .. } => "open_returns",
        Event::FindChecks(_) => "find_checks",
        Event::ChooseCheck(_) => "choose_check",
        Event::StepReturnLine { .. } => "step_return_line",
        Event::PreviewReturn(_) => "preview_return",
        Event::ConfirmReturn => "confirm_return",
        Event::ChecksFound { .. } => "checks_found",
        Event::ReturnPreviewed { .. } => "return_previewed",
        Event::Returned { .. } => "returned",
        Event::OpenShift => "open_shift",
        Event::SettleLooseEnd(_) => "settle_loose_end",
        Event::ShowShiftReport => "show_shift_report",
        Event::SaveShiftReport { .. } => "save_shift_report",
        Event::LooseEndsFound { .. } => "loose_ends_found",
        Event::LooseEndSettled { .. } => "loose_end_settled",
        Event::ShiftReportReady { .. } => "shift_report_ready",
        Event::ShiftReportSaved { .. } => "shift_report_saved",
    }
}

/// What a return gives back, for the log: `rest`, the amount in kopecks, or `line:units` pairs.
fn return_part_text(part: &crate::domain::ReturnPart) -> String {
    match part {
        crate::domain::ReturnPart::Rest => "rest".to_string(),
        crate::domain::ReturnPart::Amount(amount) => amount.0.to_string(),
        crate::domain::ReturnPart::Lines(lines) => lines
            .iter()
            .map(|l| format!("{}:{}", l.line + 1, l.quantity))
            .collect::<Vec<_>>()
            .join(","),
    }
}
