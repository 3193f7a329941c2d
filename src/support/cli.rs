//! `loyalty-till export-logs [--out DIR] [--no-upload]`: the same zip as the menu's
//! «Отправка логов», made by a separate process, so the last exchanges come from the log files.

use super::bundle::BundleInput;
use super::export::{self, ExportReport, ExportRequest, Saved, Stage, Uploaded};
use crate::config::{Config, Paths};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Runs the export and prints where the zip is (stdout) and anything that failed (stderr).
pub fn run(data_dir: Option<&Path>, out: Option<&Path>, no_upload: bool) -> ExitCode {
    let Some(paths) = Paths::resolve(data_dir) else {
        eprintln!("loyalty-till export-logs: no home folder: pass --data-dir");
        return ExitCode::FAILURE;
    };
    let Some(out_dir) = out.map(Path::to_path_buf).or_else(super::default_save_dir) else {
        eprintln!("loyalty-till export-logs: no Desktop or home folder: pass --out DIR");
        return ExitCode::FAILURE;
    };
    let config = Config::load(&paths.config_file);
    let upload_url = if no_upload {
        None
    } else {
        config.support.upload_url().map(str::to_string)
    };
    let request = ExportRequest {
        bundle: BundleInput {
            logs_dir: paths.logs_dir.clone(),
            config_file: paths.config_file.clone(),
            config,
            exchanges: None,
            ports: None,
            now_ms: now_ms(),
        },
        out_dir,
        fallback_dir: None,
        upload_url,
    };
    let last_tenth = AtomicU64::new(u64::MAX);
    let report = export::run(
        request,
        Arc::new(move |stage| {
            if let Stage::Uploading { sent, total } = stage {
                let tenth = sent.saturating_mul(10) / total.max(1);
                if last_tenth.swap(tenth, Ordering::Relaxed) != tenth {
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(err, "uploading: {sent} of {total} bytes");
                }
            }
        }),
    );
    print_report(&report);
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_report(report: &ExportReport) {
    match &report.saved {
        Saved::At(path) => println!("{}", path.display()),
        Saved::Elsewhere { path, chosen } => {
            eprintln!("loyalty-till export-logs: {chosen}; the zip was saved elsewhere");
            println!("{}", path.display());
        }
        Saved::Nowhere { chosen, fallback } => {
            eprintln!("loyalty-till export-logs: the zip was not saved: {chosen}");
            if let Some(fallback) = fallback {
                eprintln!("loyalty-till export-logs: nor in the fallback folder: {fallback}");
            }
            eprintln!("loyalty-till export-logs: the log files are untouched; choose another folder with --out");
        }
        Saved::NotBuilt(reason) => eprintln!("loyalty-till export-logs: {reason}"),
    }
    match &report.uploaded {
        Uploaded::NotConfigured | Uploaded::Skipped => {}
        Uploaded::Sent(sent) => {
            eprintln!("uploaded to support (HTTP {}) {}", sent.status, sent.reply);
        }
        Uploaded::Failed(error) => {
            let kept = report
                .local_path()
                .map(|p| format!("; the zip is kept at {}", p.display()))
                .unwrap_or_default();
            eprintln!("loyalty-till export-logs: not uploaded: {error}{kept}");
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
