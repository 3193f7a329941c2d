//! «QR из буфера»: the clipboard read on a named background thread, its result taken up by
//! `logic` like a scanner's read.

use crate::clipboard::{ClipboardError, ClipboardRead};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};

/// Reads a clipboard: the system's, or a scripted one in tests.
pub type ClipboardSource = Arc<dyn Fn() -> Result<ClipboardRead, ClipboardError> + Send + Sync>;

pub struct ClipboardPaste {
    source: ClipboardSource,
    pending: Option<Receiver<Result<ClipboardRead, ClipboardError>>>,
}

impl ClipboardPaste {
    /// `None`: the system clipboard.
    pub fn new(source: Option<ClipboardSource>) -> ClipboardPaste {
        ClipboardPaste {
            source: source.unwrap_or_else(|| Arc::new(crate::clipboard::read)),
            pending: None,
        }
    }

    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Starts a read unless one is under way; the window is woken when it is done.
    pub fn start(&mut self, ctx: &egui::Context) {
        if self.pending.is_some() {
            return;
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let source = self.source.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("clipboard-read".to_string())
            .spawn(move || {
                let _ = tx.send(source());
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.pending = Some(rx),
            Err(error) => tracing::error!(%error, "clipboard read not started"),
        }
    }

    /// The finished read, once.
    pub fn poll(&mut self) -> Option<Result<ClipboardRead, ClipboardError>> {
        let rx = self.pending.as_ref()?;
        match rx.try_recv() {
            Ok(result) => {
                self.pending = None;
                Some(result)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.pending = None;
                Some(Err(ClipboardError::Unavailable(
                    "the clipboard read stopped".to_string(),
                )))
            }
        }
    }
}
