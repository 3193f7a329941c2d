//! QR codes in still images: the decoder behind `loyalty-till decode-image FILE...` and «QR из
//! буфера обмена».
//!
//! Two decoders, tried in turn: rxing (a port of ZXing) first, then rqrr. The text of a QR code
//! may be a loyalty token, so it is never logged: only its length is.

use image::GrayImage;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why an image file could not be decoded at all (as opposed to holding no QR code).
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a supported image (PNG or JPEG): {reason}")]
    Unsupported { path: String, reason: String },
    #[error("{path} is a damaged or unreadable image: {source}")]
    Image {
        path: String,
        #[source]
        source: image::ImageError,
    },
}

/// One way of reading a frame. [`decode_luma`] tries [`CHAIN`] in order; the others stay so that
/// the corpus benchmark (`scripts/qr-bench.sh`) measures each decoder alone in the same run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QrPass {
    /// rxing (ZXing's hybrid binariser), on a contrast-stretched copy when the frame is grey on
    /// grey: below ZXing's minimum dynamic range of 24 levels it sees a flat image.
    Rxing,
    /// rqrr on the frame as it is.
    Rqrr,
    /// rqrr on a copy downscaled 2x (box filter).
    RqrrDownscaled,
}

/// The passes [`decode_luma`] runs, in order, until one reads a code. Figures from one run of
/// `scripts/qr-bench.sh` (the generated corpus of `scripts/qr_corpus.py`: 20 frames per category,
/// 640x480, 160 frames with a code and 20 clutter frames without; release build, 2-core machine
/// with a build running beside it, so the times are high but comparable within the run):
///
/// | decoder                 | blur  | rotation | perspective | jpeg  | low contrast | all 160      | p50 / p95 ms |
/// |-------------------------|-------|----------|-------------|-------|--------------|--------------|--------------|
/// | rxing, then rqrr (ours) | 19/20 | 20/20    | 20/20       | 20/20 | 20/20        | 159 (99.4 %) | 1.3 / 16.0   |
/// | rqrr alone              | 9/20  | 18/20    | 18/20       | 18/20 | 20/20        | 142 (88.8 %) | 11.3 / 19.2  |
/// | rqrr, 2x retry (before) | 11/20 | 18/20    | 18/20       | 18/20 | 20/20        | 145 (90.6 %) | 11.2 / 22.9  |
/// | rxing alone             | 19/20 | 20/20    | 19/20       | 20/20 | 20/20        | 158 (98.8 %) | 1.3 / 8.1    |
/// | zxing-cpp (Debian)      | 19/20 | 20/20    | 19/20       | 20/20 | 2/20         | 140 (87.5 %) | 6.6 / 40.4   |
///
/// rqrr alone measurably loses to ZXing's binariser on blurred, rotated, skewed and JPEG frames,
/// so rxing comes first; it is also the faster on frames that hold a code. Without its stretch
/// rxing reads 7 of the 20 low-contrast frames (zxing-cpp, the same algorithm, 2). rqrr stays
/// second for the one perspective frame only it reads; its time is paid only on frames without a
/// code rxing can read, which is what lifts our p95 over rxing's alone. The 2x downscale retry,
/// rqrr's only help before, adds nothing once rxing has run. No decoder ever read a wrong text or
/// a code in the clutter frames.
pub const CHAIN: &[QrPass] = &[QrPass::Rxing, QrPass::Rqrr];

/// Decodes the first QR code in a grayscale image, or `None` if none decodes.
pub fn decode_luma(img: &GrayImage) -> Option<String> {
    decode_passes(img, CHAIN)
}

/// Runs `passes` in order and returns the first text read: [`decode_luma`] with another chain,
/// for measuring one decoder against another.
pub fn decode_passes(img: &GrayImage, passes: &[QrPass]) -> Option<String> {
    passes.iter().find_map(|pass| match pass {
        QrPass::Rxing => decode_rxing(img),
        QrPass::Rqrr => decode_once(img),
        QrPass::RqrrDownscaled => downscale_2x(img).as_ref().and_then(decode_once),
    })
}

/// ZXing's hybrid binariser treats an 8x8 block whose levels span less than 24 as flat; a frame
/// whose levels span less than this is stretched before rxing sees it.
const RXING_STRETCH_BELOW: u8 = 128;

/// One rxing pass, QR codes only. rxing is a large port with many internal `unwrap`s: a panic on
/// a strange frame is caught and taken as "no code", so a picture can never take the till down.
fn decode_rxing(img: &GrayImage) -> Option<String> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    let stretched = stretch_grey_on_grey(img);
    let frame = stretched.as_ref().unwrap_or(img);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rxing::helpers::detect_in_luma_slice(frame.as_raw(), w, h, Some(rxing::BarcodeFormat::QR_CODE))
    }));
    match outcome {
        Ok(Ok(result)) => {
            let text = result.getText().to_owned();
            tracing::debug!(len = text.len(), "QR code decoded (rxing)");
            Some(text)
        }
        // NotFound, checksum and format errors: no readable code in this frame.
        Ok(Err(err)) => {
            tracing::trace!(%err, "rxing found no QR code");
            None
        }
        Err(_) => {
            tracing::warn!(width = w, height = h, "rxing panicked on a frame; taken as no QR code");
            None
        }
    }
}

/// One rqrr pass: prepare, detect grids, return the first grid that decodes.
fn decode_once(img: &GrayImage) -> Option<String> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return None;
    }
    let raw = img.as_raw();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        // In range by construction; white keeps the code panic-free if it ever were not.
        raw.get(y * w + x).copied().unwrap_or(u8::MAX)
    });
    for grid in prepared.detect_grids() {
        match grid.decode() {
            Ok((_, text)) => {
                tracing::debug!(len = text.len(), "QR code decoded");
                return Some(text);
            }
            // A grid that fails error correction is a lookalike or a damaged code: try the next.
            Err(err) => tracing::trace!(%err, "QR grid did not decode"),
        }
    }
    None
}

/// Averages 2x2 blocks: halves module size and smooths noise and JPEG blocks, which is where
/// rqrr's fixed-size binarisation struggles. `None` for images too small to halve.
fn downscale_2x(img: &GrayImage) -> Option<GrayImage> {
    let (w, h) = (img.width() / 2, img.height() / 2);
    if w < 21 || h < 21 {
        return None;
    }
    Some(GrayImage::from_fn(w, h, |x, y| {
        let sum: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
            .iter()
            .map(|&(dx, dy)| u32::from(img.get_pixel(2 * x + dx, 2 * y + dy).0[0]))
            .sum();
        image::Luma([u8::try_from((sum + 2) / 4).unwrap_or(u8::MAX)])
    }))
}

/// Maps the darkest..lightest level of a grey-on-grey frame linearly onto 0..255. `None` when
/// the frame already spans [`RXING_STRETCH_BELOW`] levels or more (nothing to gain), or is flat or
/// empty (nothing to stretch). Linear over the whole range, not clipped at percentiles: clipping
/// cost three JPEG frames of the corpus, whose ringing it saturated.
fn stretch_grey_on_grey(img: &GrayImage) -> Option<GrayImage> {
    let raw = img.as_raw();
    let lo = *raw.iter().min()?;
    let hi = *raw.iter().max()?;
    let span = hi - lo;
    if !(8..RXING_STRETCH_BELOW).contains(&span) {
        return None;
    }
    let (span, half) = (u32::from(span), u32::from(span) / 2);
    let mut out = img.clone();
    for p in out.iter_mut() {
        *p = u8::try_from((u32::from(*p - lo) * 255 + half) / span).unwrap_or(u8::MAX);
    }
    Some(out)
}

/// Loads a PNG or JPEG file and decodes it. The format is sniffed from the content, not the name,
/// so that a text file called `code.png` is reported as unsupported rather than as a broken PNG.
pub fn decode_file(path: &Path) -> Result<Option<String>, QrError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| QrError::Read {
        path: shown.clone(),
        source,
    })?;
    let format = match image::guess_format(&bytes) {
        Ok(format @ (image::ImageFormat::Png | image::ImageFormat::Jpeg)) => format,
        Ok(other) => {
            return Err(QrError::Unsupported {
                path: shown,
                reason: format!("{other:?} images are not supported"),
            });
        }
        Err(_) => {
            return Err(QrError::Unsupported {
                path: shown,
                reason: "not an image file".to_owned(),
            });
        }
    };
    let img = image::load_from_memory_with_format(&bytes, format).map_err(|source| match source {
        image::ImageError::Unsupported(err) => QrError::Unsupported {
            path: shown.clone(),
            reason: err.to_string(),
        },
        source => QrError::Image {
            path: shown.clone(),
            source,
        },
    })?;
    Ok(decode_luma(&img.to_luma8()))
}

/// One file's outcome, as printed by [`decode_files_json`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecodeReport {
    pub file: String,
    /// The decoded text, `null` if no QR code decoded. May be a loyalty token: never log it.
    pub text: Option<String>,
    /// Wall time for loading and decoding the file, in milliseconds.
    pub ms: f64,
    /// Why the file could not be read; absent from the JSON when it could.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Decodes one file into a report; unreadable files give a report with `error` set.
pub fn decode_report(path: &Path) -> DecodeReport {
    let start = Instant::now();
    let result = decode_file(path);
    // Rounded to microseconds: finer digits are timer noise and only lengthen the line.
    let ms = (start.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let file = path.display().to_string();
    match result {
        Ok(text) => DecodeReport {
            file,
            text,
            ms,
            error: None,
        },
        Err(err) => DecodeReport {
            file,
            text: None,
            ms,
            error: Some(err.to_string()),
        },
    }
}

/// Decodes each file and writes one JSON object per line:
/// `{"file":"a.png","text":"…" or null,"ms":1.234}`, plus `"error":"…"` for unreadable files.
/// Carries on past unreadable files; fails only if writing to `out` fails.
pub fn decode_files_json(paths: &[PathBuf], mut out: impl Write) -> std::io::Result<()> {
    for path in paths {
        let report = decode_report(path);
        match (&report.text, &report.error) {
            (_, Some(err)) => tracing::warn!(file = %report.file, %err, "image not decoded"),
            (Some(text), None) => tracing::info!(file = %report.file, len = text.len(), ms = report.ms, "QR read"),
            (None, None) => tracing::info!(file = %report.file, ms = report.ms, "no QR code found"),
        }
        serde_json::to_writer(&mut out, &report)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real QR frames are covered by tests/qr_corpus.rs; here only the edges: nothing to find in
    /// flat images, and no panic on an empty one.
    #[test]
    fn qr_flat_and_empty_images_decode_to_none() {
        assert_eq!(decode_luma(&GrayImage::new(0, 0)), None);
        assert_eq!(decode_luma(&GrayImage::from_pixel(64, 48, image::Luma([255]))), None);
        assert_eq!(decode_luma(&GrayImage::from_pixel(64, 48, image::Luma([0]))), None);
        assert_eq!(
            stretch_grey_on_grey(&GrayImage::from_pixel(8, 8, image::Luma([128]))),
            None
        );
    }

    #[test]
    fn qr_downscale_averages_blocks() {
        let img = GrayImage::from_fn(64, 64, |x, _| image::Luma([if x % 2 == 0 { 0 } else { 255 }]));
        let half = downscale_2x(&img).unwrap();
        assert_eq!(half.dimensions(), (32, 32));
        assert!(half.pixels().all(|p| p.0[0] == 128));
        assert!(downscale_2x(&GrayImage::new(30, 30)).is_none());
    }

    #[test]
    fn qr_grey_on_grey_is_stretched_to_full_range() {
        let img = GrayImage::from_fn(100, 100, |x, _| image::Luma([100 + (x / 2) as u8]));
        let out = stretch_grey_on_grey(&img).unwrap();
        assert_eq!(out.get_pixel(0, 0).0[0], 0);
        assert_eq!(out.get_pixel(50, 0).0[0], 130);
        assert_eq!(out.get_pixel(99, 0).0[0], 255);
        // Already contrasty, or flat: left alone.
        let contrasty = GrayImage::from_fn(100, 100, |x, _| image::Luma([if x < 50 { 20 } else { 200 }]));
        assert_eq!(stretch_grey_on_grey(&contrasty), None);
        assert_eq!(stretch_grey_on_grey(&GrayImage::new(0, 0)), None);
    }

    #[test]
    fn qr_decode_file_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.png");
        let err = decode_file(&missing).unwrap_err();
        assert!(matches!(err, QrError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing.png"));

        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"not an image at all").unwrap();
        let err = decode_file(&text).unwrap_err();
        assert!(matches!(err, QrError::Unsupported { .. }), "{err}");

        // A PNG signature followed by garbage: recognised, but damaged.
        let broken = dir.path().join("broken.png");
        std::fs::write(&broken, b"\x89PNG\r\n\x1a\n garbage garbage").unwrap();
        let err = decode_file(&broken).unwrap_err();
        assert!(matches!(err, QrError::Image { .. }), "{err}");

        // Recognised, but not a format this build decodes.
        let gif = dir.path().join("anim.gif");
        std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();
        let err = decode_file(&gif).unwrap_err();
        assert!(matches!(err, QrError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("Gif"), "{err}");
    }

    #[test]
    fn qr_json_lines_for_mixed_files() {
        let dir = tempfile::tempdir().unwrap();
        let blank = dir.path().join("blank.png");
        GrayImage::from_pixel(64, 48, image::Luma([255])).save(&blank).unwrap();
        let missing = dir.path().join("missing.png");
        let mut out = Vec::new();
        decode_files_json(&[blank, missing], &mut out).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0]["file"].as_str().unwrap().ends_with("blank.png"));
        assert!(lines[0]["text"].is_null());
        assert!(lines[0]["ms"].as_f64().unwrap() >= 0.0);
        assert!(lines[0].get("error").is_none());
        assert!(lines[1]["text"].is_null());
        assert!(lines[1]["error"].as_str().unwrap().contains("missing.png"));
    }

    #[test]
    fn qr_rxing_takes_a_flat_or_tiny_frame_without_panicking() {
        for (w, h) in [(1, 1), (3, 200), (200, 3), (21, 21)] {
            assert_eq!(decode_passes(&GrayImage::new(w, h), &[QrPass::Rxing]), None);
        }
    }
}
