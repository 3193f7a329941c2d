//! QR codes in still images: the decoder behind `loyalty-till decode-image FILE...`.
//!
//! Decoding uses rqrr. The text of a QR code may be a loyalty token, so it is never logged: only
//! its length is.

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

/// Which retries [`decode_luma`] tries after a plain pass found nothing. Private: the choice is
/// fixed by the corpus figures in `decode_luma`'s documentation; the ignored test
/// `tests::retry_figures` measures every combination again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Retries {
    downscale: bool,
    stretch: bool,
}

const CHOSEN: Retries = Retries {
    downscale: true,
    stretch: false,
};

/// Decodes the first QR code in a grayscale image, or `None` if none decodes.
///
/// A plain rqrr pass comes first; if it finds nothing, one retry runs on a copy downscaled 2x
/// (box filter). Figures on the generated corpus (`scripts/qr_corpus.py`, 20 frames per category,
/// 640x480; release build, 2-core machine) that decided it:
///
/// | retry after a miss      | blur  | noise | other 6 QR categories | all 160 QR frames | clutter false reads | p50 / p95 ms |
/// |-------------------------|-------|-------|-----------------------|-------------------|---------------------|--------------|
/// | none                    | 9/20  | 19/20 | 114/120               | 142 (88.8%)       | 0/20                | 6.5 / 7.1    |
/// | 2x downscale (chosen)   | 11/20 | 20/20 | 114/120               | 145 (90.6%)       | 0/20                | 6.8 / 10.4   |
/// | contrast stretch        | 10/20 | 19/20 | 114/120               | 143 (89.4%)       | 0/20                | 6.9 / 14.5   |
/// | downscale, then stretch | 11/20 | 20/20 | 114/120               | 145 (90.6%)       | 0/20                | 6.7 / 16.3   |
///
/// The downscale recovers three frames (two blurred, one noisy) for about 3 ms more at p95, paid
/// only on frames without a readable code; the stretch adds nothing once the downscale has run
/// (its one gain, a blurred frame, the downscale also reads) and costs the most, so it is kept
/// only as a measured, unused option. Low-contrast frames already read 20/20 without it, because
/// rqrr thresholds locally.
///
/// No retry ever produced a wrong text or a read on the clutter frames.
pub fn decode_luma(img: &GrayImage) -> Option<String> {
    decode_with(img, CHOSEN)
}

fn decode_with(img: &GrayImage, retries: Retries) -> Option<String> {
    if let Some(text) = decode_once(img) {
        return Some(text);
    }
    if retries.downscale
        && let Some(text) = downscale_2x(img).as_ref().and_then(decode_once)
    {
        return Some(text);
    }
    if retries.stretch {
        return contrast_stretch(img).as_ref().and_then(decode_once);
    }
    None
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

/// Maps the 1st..99th percentile of luminance onto 0..255, for grey-on-grey prints. `None` when
/// the image is flat (nothing to stretch).
fn contrast_stretch(img: &GrayImage) -> Option<GrayImage> {
    let mut histogram = [0u64; 256];
    for p in img.as_raw() {
        histogram[usize::from(*p)] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let percentile = |fraction: f64| -> u8 {
        let target = (total as f64 * fraction) as u64;
        let mut seen = 0;
        for (value, count) in histogram.iter().enumerate() {
            seen += count;
            if seen > target {
                return u8::try_from(value).unwrap_or(u8::MAX);
            }
        }
        u8::MAX
    };
    let (lo, hi) = (percentile(0.01), percentile(0.99));
    if hi <= lo.saturating_add(8) {
        return None;
    }
    let span = f32::from(hi - lo);
    let mut out = img.clone();
    for p in out.iter_mut() {
        let v = (f32::from(p.saturating_sub(lo)) * 255.0 / span).min(255.0);
        *p = v as u8;
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
        assert_eq!(contrast_stretch(&GrayImage::from_pixel(8, 8, image::Luma([128]))), None);
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
    fn qr_contrast_stretch_spans_full_range() {
        let img = GrayImage::from_fn(100, 100, |x, _| image::Luma([if x < 50 { 100 } else { 150 }]));
        let out = contrast_stretch(&img).unwrap();
        assert_eq!(out.get_pixel(0, 0).0[0], 0);
        assert_eq!(out.get_pixel(99, 0).0[0], 255);
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

    /// Measures every retry combination on a corpus made by `scripts/qr_corpus.py`:
    /// `QR_CORPUS_DIR=/tmp/qrc cargo test --release --lib qr::tests::retry_figures -- --ignored --nocapture`
    #[test]
    #[ignore = "needs a generated corpus in QR_CORPUS_DIR"]
    fn retry_figures() {
        let Some(dir) = std::env::var_os("QR_CORPUS_DIR").map(PathBuf::from) else {
            eprintln!("QR_CORPUS_DIR not set");
            return;
        };
        let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
        let rows: Vec<(String, String, String)> = manifest
            .lines()
            .skip(1)
            .map(|l| {
                let mut f = l.split('\t');
                let (a, b, c) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap_or(""));
                (a.to_owned(), b.to_owned(), c.to_owned())
            })
            .collect();
        let images: Vec<GrayImage> = rows
            .iter()
            .map(|(f, _, _)| image::open(dir.join(f)).unwrap().to_luma8())
            .collect();
        for retries in [
            Retries {
                downscale: false,
                stretch: false,
            },
            Retries {
                downscale: true,
                stretch: false,
            },
            Retries {
                downscale: false,
                stretch: true,
            },
            Retries {
                downscale: true,
                stretch: true,
            },
        ] {
            let mut per_cat: std::collections::BTreeMap<&str, (u32, u32)> = Default::default();
            let (mut wrong, mut ms) = (0, Vec::new());
            for ((_, cat, expected), img) in rows.iter().zip(&images) {
                let start = Instant::now();
                let got = decode_with(img, retries);
                ms.push(start.elapsed().as_secs_f64() * 1e3);
                let entry = per_cat.entry(cat.as_str()).or_default();
                entry.1 += 1;
                match got {
                    Some(t) if &t == expected => entry.0 += 1,
                    Some(_) => wrong += 1,
                    None if expected.is_empty() => entry.0 += 1,
                    None => {}
                }
            }
            ms.sort_by(f64::total_cmp);
            let p = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
            let cats: Vec<String> = per_cat.iter().map(|(c, (ok, n))| format!("{c} {ok}/{n}")).collect();
            println!(
                "{retries:?}: {} | wrong {wrong} | p50 {:.1} ms p95 {:.1} ms",
                cats.join(", "),
                p(0.5),
                p(0.95)
            );
        }
    }
}
