//! A guest's code from the clipboard: a screenshot of the app's QR sent by messenger and copied,
//! or a code copied as text. «QR из буфера» on the add-guest screen and
//! `loyalty-till decode-clipboard` read it; the read goes on like any scanner's.
//!
//! The clipboard's text may be a loyalty token or a card number: only its length is logged.

use image::{GrayImage, RgbaImage};
use std::borrow::Cow;

/// What the clipboard held that may identify a guest.
#[derive(Clone, PartialEq, Eq)]
pub enum ClipboardRead {
    /// The text of a QR code found in an image.
    Qr(String),
    /// Text copied as text, trimmed.
    Text(String),
}

impl ClipboardRead {
    pub fn text(&self) -> &str {
        match self {
            ClipboardRead::Qr(text) | ClipboardRead::Text(text) => text,
        }
    }

    /// The symbology to report with the read: known only for a decoded QR.
    pub fn symbology(&self) -> Option<&'static str> {
        match self {
            ClipboardRead::Qr(_) => Some("QR Code"),
            ClipboardRead::Text(_) => None,
        }
    }
}

/// Shows the kind and length only.
impl std::fmt::Debug for ClipboardRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClipboardRead::Qr(text) => write!(f, "Qr(<{} chars>)", text.chars().count()),
            ClipboardRead::Text(text) => write!(f, "Text(<{} chars>)", text.chars().count()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClipboardError {
    /// The system clipboard could not be opened (no display, another program holding it).
    #[error("the clipboard is not available: {0}")]
    Unavailable(String),
    /// Neither an image nor text.
    #[error("the clipboard holds no image and no text")]
    Empty,
    /// An image without a QR code that decodes.
    #[error("no QR code found in the clipboard's {width}x{height} image")]
    NoQr { width: u32, height: u32 },
}

/// Reads the system clipboard: an image first (decoded for a QR code), then text. Blocking:
/// call it off the UI thread.
pub fn read() -> Result<ClipboardRead, ClipboardError> {
    let mut clipboard = arboard::Clipboard::new().map_err(|e| ClipboardError::Unavailable(e.to_string()))?;
    // Some programs answer a request for a picture with their text, which arboard reports as an
    // unknown error: any failure to get a picture moves on to text, and is the reason given only
    // when there is no text either.
    // A spreadsheet cell is copied as a picture and as text: a picture without a QR code gives
    // way to the text, and is the reason only when there is none.
    let image_error = match clipboard.get_image() {
        Ok(image) => {
            let (width, height) = (image.width as u32, image.height as u32);
            match decode_rgba(width, height, image.bytes) {
                Some(text) => return Ok(ClipboardRead::Qr(text)),
                None => ClipboardError::NoQr { width, height },
            }
        }
        Err(arboard::Error::ContentNotAvailable | arboard::Error::ConversionFailure) => ClipboardError::Empty,
        Err(error) => ClipboardError::Unavailable(error.to_string()),
    };
    match clipboard.get_text().map(|text| read_text(&text)) {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(_)) | Err(arboard::Error::ContentNotAvailable | arboard::Error::ConversionFailure) => Err(image_error),
        Err(error) => match image_error {
            ClipboardError::Empty => Err(ClipboardError::Unavailable(error.to_string())),
            other => Err(other),
        },
    }
}

/// `decode-clipboard`'s line: where the read came from and what it identifies, masked, or why
/// nothing was read.
pub fn describe(
    result: &Result<ClipboardRead, ClipboardError>,
    config: &crate::scan::ScanParseConfig,
    now: crate::domain::UnixSeconds,
) -> serde_json::Value {
    use serde_json::json;
    match result {
        Err(error) => json!({ "error": error.to_string() }),
        Ok(read) => {
            let source = match read {
                ClipboardRead::Qr(_) => "qr",
                ClipboardRead::Text(_) => "text",
            };
            match crate::scan::classify(read.text().as_bytes(), config, now) {
                Ok(parsed) => json!({ "source": source, "kind": parsed.kind, "identifier": parsed.masked }),
                Err(error) => json!({ "source": source, "error": error.to_string() }),
            }
        }
    }
}

/// Copied text as a read: trimmed, and nothing when nothing is left.
pub fn read_text(text: &str) -> Result<ClipboardRead, ClipboardError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ClipboardError::Empty);
    }
    Ok(ClipboardRead::Text(trimmed.to_string()))
}

/// The first QR code in an RGBA image (as the clipboard gives it), or `None`.
pub fn decode_rgba(width: u32, height: u32, rgba: Cow<'_, [u8]>) -> Option<String> {
    let image = RgbaImage::from_raw(width, height, rgba.into_owned())?;
    let luma: GrayImage = image::DynamicImage::ImageRgba8(flatten_on_white(image)).to_luma8();
    crate::qr::decode_luma(&luma)
}

/// A screenshot's transparent pixels are white paper, not black: a QR copied from a web page often
/// has a transparent background, which would otherwise turn the light modules dark.
fn flatten_on_white(mut image: RgbaImage) -> RgbaImage {
    for pixel in image.pixels_mut() {
        let alpha = u16::from(pixel[3]);
        for channel in 0..3 {
            let value = u16::from(pixel[channel]);
            pixel[channel] = ((value * alpha + 255 * (255 - alpha)) / 255) as u8;
        }
        pixel[3] = 255;
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_never_shown_in_debug() {
        assert_eq!(read_text("  100001\r\n").unwrap(), ClipboardRead::Text("100001".into()));
        assert_eq!(read_text(" \n\t"), Err(ClipboardError::Empty));
        let read = ClipboardRead::Qr("4111111111111111".into());
        assert_eq!(format!("{read:?}"), "Qr(<16 chars>)");
        assert_eq!(read.symbology(), Some("QR Code"));
    }
}
