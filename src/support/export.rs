//! One export: build the zip, save it in the chosen folder (or, when that fails, in a fallback
//! folder, so nothing is lost), then upload it when a support URL is set. The same steps run in
//! the foreground for `export-logs` and on a named thread for the window.

use super::bundle::{self, BundleInput};
use super::upload::{self, Sent, UploadError};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};

pub struct ExportRequest {
    pub bundle: BundleInput,
    /// The folder the cashier chose.
    pub out_dir: PathBuf,
    /// Where the zip goes when the chosen folder cannot take it; `None`: nowhere else.
    pub fallback_dir: Option<PathBuf>,
    pub upload_url: Option<String>,
}

/// Where an export is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Collecting,
    Saving,
    Uploading { sent: u64, total: u64 },
}

/// Why the zip could not be written to a folder. Each says which folder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SaveError {
    #[error("no permission to write to {}", dir.display())]
    NoPermission { dir: PathBuf },
    #[error("not enough disk space in {}", dir.display())]
    DiskFull { dir: PathBuf },
    #[error("{} is not a folder (part of the path is a file)", dir.display())]
    NotAFolder { dir: PathBuf },
    #[error("could not write to {}: {detail}", dir.display())]
    Other { dir: PathBuf, detail: String },
}

impl SaveError {
    pub fn from_io(dir: &Path, error: &std::io::Error) -> SaveError {
        let dir = dir.to_path_buf();
        match error.kind() {
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => SaveError::NoPermission { dir },
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => SaveError::DiskFull { dir },
            ErrorKind::NotADirectory | ErrorKind::AlreadyExists | ErrorKind::IsADirectory => {
                SaveError::NotAFolder { dir }
            }
            _ => SaveError::Other {
                dir,
                detail: error.to_string(),
            },
        }
    }

    pub fn dir(&self) -> &Path {
        match self {
            SaveError::NoPermission { dir }
            | SaveError::DiskFull { dir }
            | SaveError::NotAFolder { dir }
            | SaveError::Other { dir, .. } => dir,
        }
    }
}

/// Where the zip ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Saved {
    /// In the chosen folder.
    At(PathBuf),
    /// The chosen folder failed; the zip is in the fallback folder.
    Elsewhere { path: PathBuf, chosen: SaveError },
    /// Neither folder took it (the upload may still have).
    Nowhere {
        chosen: SaveError,
        fallback: Option<SaveError>,
    },
    /// The zip could not be built at all.
    NotBuilt(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uploaded {
    /// No support URL in the config.
    NotConfigured,
    /// Nothing to send: the zip was not built.
    Skipped,
    Sent(Sent),
    Failed(UploadError),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    pub saved: Saved,
    pub uploaded: Uploaded,
    pub file_name: String,
    pub size: u64,
    pub entries: Vec<String>,
}

impl ExportReport {
    /// The zip on this computer, if it was saved.
    pub fn local_path(&self) -> Option<&Path> {
        match &self.saved {
            Saved::At(path) | Saved::Elsewhere { path, .. } => Some(path),
            Saved::Nowhere { .. } | Saved::NotBuilt(_) => None,
        }
    }

    /// Everything asked for was done: saved where chosen, and sent if a URL is set.
    pub fn succeeded(&self) -> bool {
        matches!(self.saved, Saved::At(_)) && matches!(self.uploaded, Uploaded::NotConfigured | Uploaded::Sent(_))
    }
}

/// Runs an export to the end, reporting its stages.
pub fn run(request: ExportRequest, stage: Arc<dyn Fn(Stage) + Send + Sync>) -> ExportReport {
    stage(Stage::Collecting);
    let bundle = match bundle::build(&request.bundle) {
        Ok(bundle) => bundle,
        Err(error) => {
            tracing::error!(%error, "support zip not built");
            return ExportReport {
                saved: Saved::NotBuilt(error.to_string()),
                uploaded: Uploaded::Skipped,
                file_name: String::new(),
                size: 0,
                entries: Vec::new(),
            };
        }
    };
    stage(Stage::Saving);
    let saved = match save(&request.out_dir, &bundle.file_name, &bundle.bytes) {
        Ok(path) => Saved::At(path),
        Err(chosen) => {
            tracing::warn!(error = %chosen, "support zip not saved in the chosen folder");
            match &request.fallback_dir {
                Some(fallback) => match save(fallback, &bundle.file_name, &bundle.bytes) {
                    Ok(path) => Saved::Elsewhere { path, chosen },
                    Err(error) => Saved::Nowhere {
                        chosen,
                        fallback: Some(error),
                    },
                },
                None => Saved::Nowhere { chosen, fallback: None },
            }
        }
    };
    if let Saved::At(path) | Saved::Elsewhere { path, .. } = &saved {
        tracing::info!(path = %path.display(), bytes = bundle.bytes.len(), "support zip saved");
    }
    let size = bundle.bytes.len() as u64;
    let uploaded = match request.upload_url.as_deref() {
        None => Uploaded::NotConfigured,
        Some(url) => {
            let progress_stage = Arc::clone(&stage);
            let progress: upload::Progress = Arc::new(move |sent, total| {
                progress_stage(Stage::Uploading { sent, total });
            });
            match upload::upload(url, &bundle.file_name, bundle.bytes, progress) {
                Ok(sent) => {
                    tracing::info!(status = sent.status, "support zip uploaded");
                    Uploaded::Sent(sent)
                }
                Err(error) => {
                    tracing::warn!(%error, "support zip not uploaded");
                    Uploaded::Failed(error)
                }
            }
        }
    };
    ExportReport {
        saved,
        uploaded,
        file_name: bundle.file_name,
        size,
        entries: bundle.entries,
    }
}

/// Writes the zip into `dir` (created if missing) under a temporary name, then renames it, so a
/// full disk never leaves half a zip that looks whole.
pub fn save(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, SaveError> {
    save_with(dir, name, bytes, |path, bytes| {
        let mut file = std::fs::File::create(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    })
}

fn save_with(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    write: impl FnOnce(&Path, &[u8]) -> std::io::Result<()>,
) -> Result<PathBuf, SaveError> {
    std::fs::create_dir_all(dir).map_err(|e| SaveError::from_io(dir, &e))?;
    if !dir.is_dir() {
        return Err(SaveError::NotAFolder { dir: dir.to_path_buf() });
    }
    let part = dir.join(format!("{name}.part"));
    let path = dir.join(name);
    if let Err(error) = write(&part, bytes).and_then(|()| std::fs::rename(&part, &path)) {
        let _ = std::fs::remove_file(&part);
        return Err(SaveError::from_io(dir, &error));
    }
    Ok(path)
}

/// What the export thread tells the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportUpdate {
    Stage(Stage),
    Done(Box<ExportReport>),
}

/// An export running on its own thread.
pub struct ExportJob {
    updates: Receiver<ExportUpdate>,
}

/// Stages are many during an upload; the window only needs the latest, so a full queue drops them.
const UPDATE_QUEUE: usize = 32;

impl ExportJob {
    /// Starts an export on a named thread; `waker` is called after every update (egui's
    /// `request_repaint`).
    pub fn spawn(request: ExportRequest, waker: Arc<dyn Fn() + Send + Sync>) -> std::io::Result<ExportJob> {
        let (tx, rx) = mpsc::sync_channel::<ExportUpdate>(UPDATE_QUEUE);
        std::thread::Builder::new()
            .name("support-export".to_string())
            .spawn(move || {
                let stage_tx: SyncSender<ExportUpdate> = tx.clone();
                let stage_waker = Arc::clone(&waker);
                let last_percent = std::sync::atomic::AtomicU64::new(u64::MAX);
                let stage = Arc::new(move |stage: Stage| {
                    if let Stage::Uploading { sent, total } = stage {
                        let percent = sent.saturating_mul(100) / total.max(1);
                        if last_percent.swap(percent, std::sync::atomic::Ordering::Relaxed) == percent {
                            return;
                        }
                    }
                    if stage_tx.try_send(ExportUpdate::Stage(stage)).is_ok() {
                        stage_waker();
                    }
                });
                let report = run(request, stage);
                if tx.send(ExportUpdate::Done(Box::new(report))).is_ok() {
                    waker();
                }
            })?;
        Ok(ExportJob { updates: rx })
    }

    /// The updates so far; a job whose thread died ends with a report saying so.
    pub fn drain(&self) -> Vec<ExportUpdate> {
        let mut updates = Vec::new();
        loop {
            match self.updates.try_recv() {
                Ok(update) => updates.push(update),
                Err(TryRecvError::Empty) => return updates,
                Err(TryRecvError::Disconnected) => {
                    if !updates.iter().any(|u| matches!(u, ExportUpdate::Done(_))) {
                        updates.push(ExportUpdate::Done(Box::new(ExportReport {
                            saved: Saved::NotBuilt("the export stopped unexpectedly".to_string()),
                            uploaded: Uploaded::Skipped,
                            file_name: String::new(),
                            size: 0,
                            entries: Vec::new(),
                        })));
                    }
                    return updates;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_become_plain_reasons() {
        let dir = Path::new("/x");
        let of = |kind: ErrorKind| SaveError::from_io(dir, &std::io::Error::from(kind));
        assert!(matches!(
            of(ErrorKind::PermissionDenied),
            SaveError::NoPermission { .. }
        ));
        assert!(matches!(of(ErrorKind::StorageFull), SaveError::DiskFull { .. }));
        assert!(matches!(of(ErrorKind::NotADirectory), SaveError::NotAFolder { .. }));
        assert!(matches!(of(ErrorKind::Interrupted), SaveError::Other { .. }));
        assert_eq!(of(ErrorKind::StorageFull).dir(), dir);
    }

    /// A disk that fills up half way: the error says so and no half zip is left behind.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_leaves_no_half_zip() {
        let dir = tempfile::tempdir().unwrap();
        let result = save_with(dir.path(), "a.zip", b"PK zip bytes", |path, bytes| {
            std::fs::write(path, &bytes[..2])?;
            // /dev/full answers every write with ENOSPC, as a full disk does.
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")?
                .write_all(bytes)
        });
        assert_eq!(
            result,
            Err(SaveError::DiskFull {
                dir: dir.path().to_path_buf()
            })
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "files left behind: {left:?}");
    }

    #[test]
    fn saving_under_a_file_says_it_is_not_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let under = file.join("logs");
        assert_eq!(
            save(&under, "a.zip", b"zip"),
            Err(SaveError::NotAFolder { dir: under.clone() })
        );
        assert_eq!(save(&file, "a.zip", b"zip"), Err(SaveError::NotAFolder { dir: file }));
        let saved = save(&dir.path().join("new"), "a.zip", b"zip").unwrap();
        assert_eq!(std::fs::read(saved).unwrap(), b"zip");
    }
}
