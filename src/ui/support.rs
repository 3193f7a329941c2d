//! «Отправка логов» in the menu: the folder to save in (the Desktop unless changed), one big
//! button, the export's progress and its result in plain words. The export itself runs on its
//! own thread (`support::export`); `logic` drains it.

use super::theme;
use crate::config::{Config, Paths};
use crate::i18n::{Arg, I18n};
use crate::support::bundle::BundleInput;
use crate::support::exchanges;
use crate::support::export::{ExportJob, ExportReport, ExportRequest, ExportUpdate, SaveError, Saved, Stage, Uploaded};
use crate::support::upload::UploadError;
use egui::RichText;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct ExportPanel {
    /// The folder field, as typed.
    folder: String,
    logs_dir: PathBuf,
    config_file: PathBuf,
    /// Where the zip goes when the chosen folder fails: the till's own data folder.
    fallback_dir: PathBuf,
    job: Option<ExportJob>,
    stage: Option<Stage>,
    report: Option<ExportReport>,
    start_error: Option<String>,
    /// Scroll the result into view once it arrives: the menu may be taller than the screen.
    reveal: bool,
}

impl ExportPanel {
    pub fn new(paths: &Paths) -> ExportPanel {
        let folder = crate::support::default_save_dir().unwrap_or_else(|| paths.data_dir.join("support"));
        ExportPanel {
            folder: folder.display().to_string(),
            logs_dir: paths.logs_dir.clone(),
            config_file: paths.config_file.clone(),
            fallback_dir: paths.data_dir.join("support"),
            job: None,
            stage: None,
            report: None,
            start_error: None,
            reveal: false,
        }
    }

    /// The folder the log export saves into, as typed: the shift report is saved there too.
    pub fn folder(&self) -> PathBuf {
        PathBuf::from(self.folder.trim())
    }

    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// The last finished export, if any.
    pub fn report(&self) -> Option<&ExportReport> {
        self.report.as_ref()
    }

    /// Starts an export into `folder` with the settings in force.
    pub fn start(&mut self, ctx: &egui::Context, folder: PathBuf, config: &Config) {
        if self.running() {
            return;
        }
        let request = ExportRequest {
            bundle: BundleInput {
                logs_dir: self.logs_dir.clone(),
                config_file: self.config_file.clone(),
                config: config.clone(),
                exchanges: Some(exchanges::recent()),
                ports: None,
                now_ms: now_ms(),
            },
            out_dir: folder,
            fallback_dir: Some(self.fallback_dir.clone()),
            upload_url: config.support.upload_url().map(str::to_string),
        };
        let repaint = ctx.clone();
        self.report = None;
        self.start_error = None;
        self.stage = Some(Stage::Collecting);
        match ExportJob::spawn(request, Arc::new(move || repaint.request_repaint())) {
            Ok(job) => self.job = Some(job),
            Err(error) => {
                tracing::error!(%error, "support export not started");
                self.stage = None;
                self.start_error = Some(error.to_string());
            }
        }
    }

    /// Takes the export thread's news; called from `logic`.
    pub fn poll(&mut self) {
        let Some(job) = &self.job else { return };
        for update in job.drain() {
            match update {
                ExportUpdate::Stage(stage) => self.stage = Some(stage),
                ExportUpdate::Done(report) => {
                    self.report = Some(*report);
                    self.reveal = true;
                    self.stage = None;
                    self.job = None;
                    break;
                }
            }
        }
    }

    /// Draws the export block; returns the folder to export to when «Сохранить» is pressed.
    pub fn show(&mut self, ui: &mut egui::Ui, i18n: &I18n, config: &Config) -> Option<PathBuf> {
        let mut start = None;
        ui.add_space(6.0);
        ui.label(RichText::new(i18n.t("menu-export-logs")).strong());
        ui.add(egui::Label::new(RichText::new(i18n.t("export-what")).color(theme::TEXT_MUTED).small()).wrap());
        ui.label(i18n.t("export-folder"));
        let running = self.running();
        // Styled like the keypad's fields: a grey box, white while it has the cursor.
        let id = ui.make_persistent_id("support_export_folder");
        let focused = ui.memory(|m| m.has_focus(id));
        let field = egui::TextEdit::singleline(&mut self.folder)
            .id(id)
            .font(egui::TextStyle::Body)
            .min_size(egui::vec2(ui.available_width(), theme::TOUCH_HEIGHT))
            .desired_width(ui.available_width())
            .margin(egui::vec2(12.0, 12.0))
            .background_color(if focused { theme::CARD_BG } else { theme::PANEL_BG });
        ui.add_enabled(!running, field);
        let uploads = config.support.upload_url().is_some();
        let label = i18n.t(if uploads { "export-save-upload" } else { "export-save" });
        let can_start = !self.running() && !self.folder.trim().is_empty();
        if theme::wide_button(ui, &label, theme::Tone::Primary, can_start).clicked() {
            start = Some(PathBuf::from(self.folder.trim()));
        }
        if let Some(stage) = self.stage {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(stage_text(i18n, stage));
            });
            let fraction = match stage {
                Stage::Uploading { sent, total } => sent as f32 / total.max(1) as f32,
                Stage::Collecting => 0.1,
                Stage::Saving => 0.3,
            };
            ui.add(egui::ProgressBar::new(fraction).show_percentage());
        }
        if let Some(error) = &self.start_error {
            result_box(
                ui,
                false,
                &[i18n.t_args("export-not-started", &[("reason", Arg::Text(error.clone()))])],
            );
        }
        if let Some(report) = &self.report {
            let (ok, lines) = report_lines(i18n, report, &self.logs_dir);
            let shown = result_box(ui, ok, &lines);
            if std::mem::take(&mut self.reveal) {
                ui.scroll_to_rect(shown.rect, Some(egui::Align::Center));
            }
        }
        start
    }
}

fn stage_text(i18n: &I18n, stage: Stage) -> String {
    match stage {
        Stage::Collecting => i18n.t("export-collecting"),
        Stage::Saving => i18n.t("export-saving"),
        Stage::Uploading { sent, total } if sent >= total => i18n.t("export-waiting"),
        Stage::Uploading { sent, total } => i18n.t_args(
            "export-uploading",
            &[("sent", Arg::Number(kib(sent))), ("total", Arg::Number(kib(total)))],
        ),
    }
}

fn kib(bytes: u64) -> i64 {
    i64::try_from(bytes.div_ceil(1024)).unwrap_or(i64::MAX)
}

fn result_box(ui: &mut egui::Ui, ok: bool, lines: &[String]) -> egui::Response {
    egui::Frame::new()
        .fill(if ok { theme::SUCCESS_BG } else { theme::ERROR_BG })
        .corner_radius(8.0)
        .inner_margin(10.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            for line in lines {
                ui.add(egui::Label::new(RichText::new(line).color(theme::TEXT_STRONG)).wrap());
            }
        })
        .response
}

/// The result in the cashier's words: where the zip is, whether support has it, and what to do
/// when something failed.
pub fn report_lines(i18n: &I18n, report: &ExportReport, logs_dir: &Path) -> (bool, Vec<String>) {
    let path_arg = |path: &Path| ("path", Arg::Text(path.display().to_string()));
    let mut lines = Vec::new();
    match &report.saved {
        // A failed upload names the kept zip itself.
        Saved::At(_) if matches!(report.uploaded, Uploaded::Failed(_)) => {}
        Saved::At(path) => lines.push(i18n.t_args("export-saved", &[path_arg(path)])),
        Saved::Elsewhere { path, chosen } => lines.push(i18n.t_args(
            "export-saved-elsewhere",
            &[("reason", Arg::Text(save_reason(i18n, chosen))), path_arg(path)],
        )),
        Saved::Nowhere { chosen, fallback } => {
            lines.push(i18n.t_args("export-not-saved", &[("reason", Arg::Text(save_reason(i18n, chosen)))]));
            if let Some(fallback) = fallback {
                lines.push(i18n.t_args(
                    "export-not-saved-fallback",
                    &[("reason", Arg::Text(save_reason(i18n, fallback)))],
                ));
            }
        }
        Saved::NotBuilt(reason) => {
            lines.push(i18n.t_args("export-not-built", &[("reason", Arg::Text(reason.clone()))]))
        }
    }
    match &report.uploaded {
        Uploaded::NotConfigured | Uploaded::Skipped => {}
        Uploaded::Sent(sent) => {
            lines.push(i18n.t("export-sent"));
            if !sent.reply.is_empty() {
                lines.push(i18n.t_args("export-sent-reply", &[("reply", Arg::Text(sent.reply.clone()))]));
            }
        }
        Uploaded::Failed(error) => {
            let reason = Arg::Text(upload_reason(i18n, error));
            match report.local_path() {
                Some(path) => {
                    lines.push(i18n.t_args("export-upload-failed-kept", &[("reason", reason), path_arg(path)]))
                }
                None => lines.push(i18n.t_args("export-upload-failed", &[("reason", reason)])),
            }
        }
    }
    if report.local_path().is_none() && !matches!(report.uploaded, Uploaded::Sent(_)) {
        lines.push(i18n.t_args(
            "export-logs-untouched",
            &[("dir", Arg::Text(logs_dir.display().to_string()))],
        ));
    }
    (report.succeeded(), lines)
}

fn save_reason(i18n: &I18n, error: &SaveError) -> String {
    let dir = ("dir", Arg::Text(error.dir().display().to_string()));
    match error {
        SaveError::NoPermission { .. } => i18n.t_args("export-error-no-permission", &[dir]),
        SaveError::DiskFull { .. } => i18n.t_args("export-error-disk-full", &[dir]),
        SaveError::NotAFolder { .. } => i18n.t_args("export-error-not-a-folder", &[dir]),
        SaveError::Other { detail, .. } => {
            i18n.t_args("export-error-other", &[dir, ("detail", Arg::Text(detail.clone()))])
        }
    }
}

fn upload_reason(i18n: &I18n, error: &UploadError) -> String {
    match error {
        UploadError::BadUrl(detail) => i18n.t_args("export-upload-bad-url", &[("detail", Arg::Text(detail.clone()))]),
        UploadError::NoTls => i18n.t("export-upload-no-tls"),
        // The client's error chain is for the log; the cashier gets the server's name.
        UploadError::Unreachable { host, .. } => {
            i18n.t_args("export-upload-unreachable", &[("host", Arg::Text(host.clone()))])
        }
        UploadError::TimedOut => i18n.t("export-upload-timeout"),
        UploadError::Rejected { status, .. } => {
            i18n.t_args("export-upload-rejected", &[("status", Arg::Number(i64::from(*status)))])
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
