//! «QR из буфера обмена» on the add-guest screen: the real app with a scripted clipboard (a QR
//! picture decoded, copied text, an empty clipboard, a picture without a QR), and the real X
//! clipboard under Xvfb through `loyalty-till decode-clipboard`, fed by `xclip`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.
#![cfg(unix)]

mod common;

use common::WAIT;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use loyalty_till::clipboard::{ClipboardError, ClipboardRead};
use loyalty_till::config::Config;
use loyalty_till::devices::hid::reader::ScriptedHidBus;
use loyalty_till::scan::payload::sign_guest_token;
use loyalty_till::ui::TillApp;
use loyalty_till::ui::paste::ClipboardSource;
use loyalty_till::workflow::Screen;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const PASTE: &str = "QR из буфера обмена";

/// The app with a clipboard whose next content the test sets.
fn till(
    dir: &Path,
) -> (
    Harness<'static, TillApp>,
    Arc<Mutex<Result<ClipboardRead, ClipboardError>>>,
) {
    let content = Arc::new(Mutex::new(Err(ClipboardError::Empty)));
    let shared = content.clone();
    let source: ClipboardSource = Arc::new(move || shared.lock().unwrap().clone());
    let harness = common::open_demo_app_with(
        dir,
        Config::default(),
        (1024.0, 1400.0),
        ScriptedHidBus::new(),
        Some(source),
    );
    (harness, content)
}

fn press(harness: &mut Harness<'static, TillApp>, label: &str) {
    harness.get_by_role_and_label(Role::Button, label).scroll_to_me();
    harness.step();
    harness.get_by_role_and_label(Role::Button, label).click();
    harness.step();
    harness.step();
}

fn sees(harness: &Harness<'static, TillApp>, text: &str) -> bool {
    harness.query_all_by_label_contains(text).next().is_some()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_pasted_qr_or_code_identifies_the_guest_and_bad_pastes_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, clipboard) = till(dir.path());
    press(&mut harness, "GetMeBack");
    assert_eq!(harness.state().state().screen, Screen::AddGuest);

    // Nothing on the clipboard: a message, no guest.
    press(&mut harness, PASTE);
    common::step_until(&mut harness, WAIT, "the empty-clipboard message", |s| {
        s.notice.is_some()
    });
    assert!(sees(&harness, "В буфере обмена нет ни картинки, ни текста"));
    assert!(harness.state().state().guest.is_none());

    // A picture without a QR code.
    *clipboard.lock().unwrap() = Err(ClipboardError::NoQr {
        width: 640,
        height: 480,
    });
    press(&mut harness, PASTE);
    common::step_until(&mut harness, WAIT, "the no-QR message", |s| {
        s.notice.as_ref().is_some_and(|n| n.key == "err-clipboard-no-qr")
    });
    assert!(sees(&harness, "не найден QR-код"));
    assert!(harness.state().state().guest.is_none());

    // A QR whose code no guest has: looked up like a scanner's read, and not found.
    *clipboard.lock().unwrap() = Ok(ClipboardRead::Qr("https://example.org/menu".into()));
    press(&mut harness, PASTE);
    common::step_until(&mut harness, WAIT, "the unknown-code message", |s| {
        s.notice.as_ref().is_some_and(|n| n.key == "err-unknown-code")
    });
    assert!(harness.state().state().guest.is_none());

    // The guest's app QR, signed with the demo programme's key.
    let token = sign_guest_token(b"demo-programme-secret", "GMB-00005678", now());
    *clipboard.lock().unwrap() = Ok(ClipboardRead::Qr(token));
    press(&mut harness, PASTE);
    common::step_until(&mut harness, WAIT, "Иван from the pasted QR", |s| s.guest.is_some());
    assert_eq!(harness.state().state().guest.as_ref().unwrap().name, "Иван Петров");
}

#[test]
fn copied_text_identifies_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, clipboard) = till(dir.path());
    press(&mut harness, "GetMeBack");
    *clipboard.lock().unwrap() = Ok(ClipboardRead::Text("2000000000015".into()));
    press(&mut harness, PASTE);
    common::step_until(&mut harness, WAIT, "Анна from the copied card number", |s| {
        s.guest.is_some()
    });
    assert_eq!(harness.state().state().guest.as_ref().unwrap().name, "Анна Смирнова");
}

/// The test's own X display, whose CLIPBOARD xclip serves and the till reads.
struct X(common::xvfb::Xvfb);

impl X {
    /// Puts a file on the CLIPBOARD selection as `mime`; xclip serves it in the background.
    fn copy(&self, file: &Path, mime: &str) {
        let status = Command::new("xclip")
            .args(["-selection", "clipboard", "-t", mime, "-i"])
            .arg(file)
            .env("DISPLAY", &self.0.display)
            .stdout(Stdio::null())
            // Not inherited: xclip's serving child prints a line when the display goes away.
            .stderr(Stdio::null())
            .status()
            .expect("xclip is needed (scripts/deps.sh installs it)");
        assert!(
            status.success(),
            "xclip could not take the clipboard of {}",
            self.0.display
        );
        // xclip serves the selection from a child it forks; on a loaded machine that child may
        // not own the clipboard yet when xclip returns, and the reader would get the previous
        // owner's content. Wait until the clipboard offers this type.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let targets = Command::new("xclip")
                .args(["-selection", "clipboard", "-t", "TARGETS", "-o"])
                .env("DISPLAY", &self.0.display)
                .stderr(Stdio::null())
                .output()
                .expect("xclip");
            if String::from_utf8_lossy(&targets.stdout)
                .lines()
                .any(|line| line.trim() == mime)
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the clipboard never offered {mime}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn decode_clipboard(&self, data_dir: &Path) -> (bool, serde_json::Value) {
        let output = Command::new(env!("CARGO_BIN_EXE_loyalty-till"))
            .arg("--demo")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("decode-clipboard")
            .env("DISPLAY", &self.0.display)
            .output()
            .unwrap();
        let line = String::from_utf8(output.stdout).unwrap();
        (output.status.success(), serde_json::from_str(line.trim()).unwrap())
    }
}

#[test]
fn the_x_clipboard_is_read_for_a_qr_picture_and_for_text() {
    let dir = tempfile::tempdir().unwrap();
    let x = X(common::xvfb::Xvfb::start(640, 480));

    let png = dir.path().join("qr.png");
    let status = Command::new("qrencode")
        .args(["-s", "8", "-o"])
        .arg(&png)
        .arg("2000000000015")
        .status()
        .unwrap();
    assert!(status.success());
    x.copy(&png, "image/png");
    let (ok, line) = x.decode_clipboard(dir.path());
    assert!(ok, "{line}");
    assert_eq!(line["source"], "qr", "{line}");
    assert_eq!(line["kind"], "barcode", "{line}");
    assert!(!line.to_string().contains("2000000000015"), "masked: {line}");

    let text = dir.path().join("code.txt");
    std::fs::write(&text, "  4111111111111111\n").unwrap();
    x.copy(&text, "UTF8_STRING");
    let (ok, line) = x.decode_clipboard(dir.path());
    assert!(ok, "{line}");
    assert_eq!(line["source"], "text", "{line}");
    assert!(
        !line.to_string().contains("4111111111111111"),
        "a card number is masked: {line}"
    );

    // A picture with no QR code in it.
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(200, 100, image::Rgb([255, 255, 255]))
        .save(&blank)
        .unwrap();
    x.copy(&blank, "image/png");
    let (ok, line) = x.decode_clipboard(dir.path());
    assert!(!ok);
    assert_eq!(
        line["error"], "no QR code found in the clipboard's 200x100 image",
        "{line}"
    );
}

/// A QR picture of `text` from `qrencode`, the corpus generator's tool.
fn qr_png(text: &str) -> Option<image::RgbaImage> {
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("qr.png");
    let status = std::process::Command::new("qrencode")
        .args(["-s", "6", "-o"])
        .arg(&path)
        .arg(text)
        .status()
        .ok()?;
    status
        .success()
        .then(|| image::open(&path).ok().map(|i| i.to_rgba8()))?
}

#[test]
fn a_qr_image_decodes_and_transparency_is_paper() {
    let Some(image) = qr_png("GMB-00001234") else {
        panic!("qrencode is needed (scripts/deps.sh installs it)");
    };
    let (w, h) = image.dimensions();
    assert_eq!(
        loyalty_till::clipboard::decode_rgba(w, h, std::borrow::Cow::Owned(image.clone().into_raw())).as_deref(),
        Some("GMB-00001234")
    );
    // The same code with its white made transparent: black-on-nothing, as copied from a page.
    let mut transparent = image;
    for pixel in transparent.pixels_mut() {
        if pixel[0] > 128 {
            *pixel = image::Rgba([0, 0, 0, 0]);
        }
    }
    assert_eq!(
        loyalty_till::clipboard::decode_rgba(w, h, std::borrow::Cow::Owned(transparent.into_raw())).as_deref(),
        Some("GMB-00001234")
    );
    let blank = image::RgbaImage::from_pixel(64, 64, image::Rgba([255, 255, 255, 255]));
    assert_eq!(
        loyalty_till::clipboard::decode_rgba(64, 64, std::borrow::Cow::Owned(blank.into_raw())),
        None
    );
    assert_eq!(
        loyalty_till::clipboard::decode_rgba(64, 64, std::borrow::Cow::Owned(vec![0; 10])),
        None,
        "short buffer"
    );
}
