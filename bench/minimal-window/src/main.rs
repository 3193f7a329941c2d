//! A minimal eframe window: a heading and a button. With `--trace-startup` it prints, as the
//! till does, the wall-clock time its first frame was laid out, so that `scripts/till-bench.sh`
//! measures both from launch the same way.

use std::time::{SystemTime, UNIX_EPOCH};

struct Minimal {
    trace: bool,
    first_frame_done: bool,
}

impl eframe::App for Minimal {
    fn ui(&mut self, ui: &mut eframe::egui::Ui, _frame: &mut eframe::Frame) {
        eframe::egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("GetMeBack");
            let _ = ui.button("OK");
        });
        if self.trace && !self.first_frame_done {
            self.first_frame_done = true;
            print_epoch("first frame laid out");
        }
    }
}

/// The line scripts/till-bench.sh reads, as the till prints it with `--trace-startup`.
fn print_epoch(what: &str) {
    let epoch_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    eprintln!("startup {what} at epoch {epoch_ms:.1} ms");
}

fn main() -> eframe::Result {
    let trace = std::env::args().any(|a| a == "--trace-startup");
    let size = std::env::args()
        .skip_while(|a| a != "--window-size")
        .nth(1)
        .and_then(|s| {
            let (w, h) = s.split_once('x')?;
            Some([w.parse().ok()?, h.parse().ok()?])
        })
        .unwrap_or([1024.0, 768.0]);
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default().with_inner_size(size),
        ..Default::default()
    };
    eframe::run_native(
        "minimal-window",
        options,
        Box::new(move |_| {
            if trace {
                print_epoch("window and GL context created");
            }
            Ok(Box::new(Minimal {
                trace,
                first_frame_done: false,
            }))
        }),
    )
}
