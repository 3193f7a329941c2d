//! Point-of-sale reads out of HID input reports: the Bar Code Scanner page (0x8C) and the
//! Magnetic Stripe Reader page (0x8E) of the HID Point of Sale Usage Tables. Every position comes
//! from the device's report descriptor, found by usage; nothing is at a fixed offset.
//!
//! Pure: no I/O and no clock. Scanned codes and tracks may be card numbers, so the `Debug` of
//! every type here shows lengths, never the data.

use super::descriptor::{Field, InputReport, ReportDescriptor, Usage, read_bits};
use std::fmt;

/// Bar Code Scanner page.
pub const PAGE_BAR_CODE_SCANNER: u16 = 0x8C;
/// Magnetic Stripe Reader page.
pub const PAGE_MAGNETIC_STRIPE_READER: u16 = 0x8E;
/// Generic Desktop page, whose Byte Count (0x3B) scanners use for the data length.
pub const PAGE_GENERIC_DESKTOP: u16 = 0x01;

pub const USAGE_SCANNED_DATA_REPORT: Usage = Usage::new(PAGE_BAR_CODE_SCANNER, 0x12);
pub const USAGE_SYMBOLOGY_IDENTIFIER_1: Usage = Usage::new(PAGE_BAR_CODE_SCANNER, 0xFB);
pub const USAGE_SYMBOLOGY_IDENTIFIER_2: Usage = Usage::new(PAGE_BAR_CODE_SCANNER, 0xFC);
pub const USAGE_SYMBOLOGY_IDENTIFIER_3: Usage = Usage::new(PAGE_BAR_CODE_SCANNER, 0xFD);
pub const USAGE_DECODED_DATA: Usage = Usage::new(PAGE_BAR_CODE_SCANNER, 0xFE);
pub const USAGE_DECODED_DATA_CONTINUED: Usage = Usage::new(PAGE_BAR_CODE_SCANNER, 0xFF);
pub const USAGE_BYTE_COUNT: Usage = Usage::new(PAGE_GENERIC_DESKTOP, 0x3B);
pub const USAGE_TRACK_LENGTH: [Usage; 3] = [
    Usage::new(PAGE_MAGNETIC_STRIPE_READER, 0x11),
    Usage::new(PAGE_MAGNETIC_STRIPE_READER, 0x12),
    Usage::new(PAGE_MAGNETIC_STRIPE_READER, 0x13),
];
pub const USAGE_TRACK_DATA: [Usage; 3] = [
    Usage::new(PAGE_MAGNETIC_STRIPE_READER, 0x21),
    Usage::new(PAGE_MAGNETIC_STRIPE_READER, 0x22),
    Usage::new(PAGE_MAGNETIC_STRIPE_READER, 0x23),
];

/// Longest read joined from continued reports; the same bound as any other read
/// ([`crate::scan::MAX_SCAN_BYTES`]).
pub const MAX_READ_BYTES: usize = crate::scan::MAX_SCAN_BYTES;

/// Why a descriptor does not describe a scanner or card reader this module can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// No input field with this usage.
    Missing(Usage),
    /// The field is there but not as bytes (its elements are not 8 bits, or a length or flag
    /// field is wider than 32 bits).
    Unusable(Usage),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Missing(usage) => write!(f, "the descriptor has no input field {usage}"),
            LayoutError::Unusable(usage) => write!(f, "the input field {usage} is not laid out as bytes"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// Why an input report was refused. Carries lengths only, never data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportError {
    /// Shorter than the descriptor's layout (report ID byte included).
    TooShort { len: usize, need: usize },
    /// A length field says more than its data field holds.
    LengthBeyondData { length: u64, capacity: usize },
    /// Continued reports went past [`MAX_READ_BYTES`] without an end.
    TooLong { max: usize },
    /// An empty report where a report ID byte was expected.
    Empty,
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::TooShort { len, need } => write!(f, "report of {len} bytes, the layout needs {need}"),
            ReportError::LengthBeyondData { length, capacity } => {
                write!(f, "length field {length} beyond a data field of {capacity} bytes")
            }
            ReportError::TooLong { max } => write!(f, "a continued read went past {max} bytes"),
            ReportError::Empty => f.write_str("empty report"),
        }
    }
}

impl std::error::Error for ReportError {}

/// A bit region of byte data in a report: `len` bytes from `bit_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ByteRegion {
    bit_offset: u64,
    len: usize,
}

impl ByteRegion {
    /// A field whose elements are whole bytes (8 bits each, or one element of 8·n bits, as
    /// "buffered bytes" items are).
    fn of(field: &Field) -> Option<ByteRegion> {
        let bits = field.total_bits();
        if bits == 0 || !bits.is_multiple_of(8) || (!field.bit_size.is_multiple_of(8) && field.count != 1) {
            return None;
        }
        Some(ByteRegion {
            bit_offset: u64::from(field.bit_offset),
            len: (bits / 8) as usize,
        })
    }

    fn read(&self, body: &[u8], len: usize) -> Option<Vec<u8>> {
        (0..len.min(self.len))
            .map(|i| read_bits(body, self.bit_offset + 8 * i as u64, 8).map(|b| b as u8))
            .collect()
    }
}

/// A numeric field (length, flag): its first element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Number {
    bit_offset: u64,
    bit_size: u32,
}

impl Number {
    fn of(field: &Field) -> Option<Number> {
        (field.bit_size > 0 && field.bit_size <= 32).then_some(Number {
            bit_offset: u64::from(field.bit_offset),
            bit_size: field.bit_size,
        })
    }

    fn read(&self, body: &[u8]) -> Option<u64> {
        read_bits(body, self.bit_offset, self.bit_size)
    }
}

/// Where the scanner puts the parts of a Scanned Data Report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannerLayout {
    report_id: u8,
    uses_report_ids: bool,
    /// Bytes after the report ID byte the layout reaches.
    body_len: usize,
    symbology: Vec<ByteRegion>,
    data: ByteRegion,
    length: Option<Number>,
    continued: Option<Number>,
}

impl ScannerLayout {
    /// Finds the Decoded Data field (preferring one inside a Scanned Data Report collection) and
    /// the symbology identifier, byte count and continuation fields of the same report.
    pub fn from_descriptor(descriptor: &ReportDescriptor) -> Result<ScannerLayout, LayoutError> {
        let (report, data) = decoded_data_field(descriptor).ok_or(LayoutError::Missing(USAGE_DECODED_DATA))?;
        let data = ByteRegion::of(data).ok_or(LayoutError::Unusable(USAGE_DECODED_DATA))?;
        let mut symbology = Vec::new();
        for usage in [
            USAGE_SYMBOLOGY_IDENTIFIER_1,
            USAGE_SYMBOLOGY_IDENTIFIER_2,
            USAGE_SYMBOLOGY_IDENTIFIER_3,
        ] {
            if let Some(field) = report.fields_with(usage).next() {
                symbology.push(ByteRegion::of(field).ok_or(LayoutError::Unusable(usage))?);
            }
        }
        let number = |usage: Usage| -> Result<Option<Number>, LayoutError> {
            report
                .fields_with(usage)
                .find(|f| !f.constant)
                .map(|f| Number::of(f).ok_or(LayoutError::Unusable(usage)))
                .transpose()
        };
        Ok(ScannerLayout {
            report_id: report.report_id,
            uses_report_ids: descriptor.uses_report_ids(),
            body_len: report.byte_len(),
            symbology,
            data,
            length: number(USAGE_BYTE_COUNT)?,
            continued: number(USAGE_DECODED_DATA_CONTINUED)?,
        })
    }

    pub fn report_id(&self) -> u8 {
        self.report_id
    }

    /// How many data bytes one report carries at most.
    pub fn data_capacity(&self) -> usize {
        self.data.len
    }
}

fn decoded_data_field(descriptor: &ReportDescriptor) -> Option<(&InputReport, &Field)> {
    let in_scanned_data_report = descriptor.input_reports().iter().find_map(|report| {
        report
            .fields_with(USAGE_DECODED_DATA)
            .find(|f| f.collection == Some(USAGE_SCANNED_DATA_REPORT))
            .map(|f| (report, f))
    });
    in_scanned_data_report.or_else(|| descriptor.find_input(USAGE_DECODED_DATA))
}

/// Strips the report ID byte when the descriptor uses report IDs; `None` for another report.
fn report_body(report: &[u8], uses_report_ids: bool, wanted: u8) -> Result<Option<&[u8]>, ReportError> {
    if !uses_report_ids {
        return Ok(Some(report));
    }
    match report.split_first() {
        None => Err(ReportError::Empty),
        Some((id, body)) if *id == wanted => Ok(Some(body)),
        Some(_) => Ok(None),
    }
}

/// One complete scan: the decoded bytes and the AIM symbology identifier the scanner sent.
#[derive(Clone, PartialEq, Eq)]
pub struct ScannerRead {
    /// The decoded data, joined over continued reports. Never log it unmasked.
    pub data: Vec<u8>,
    /// The AIM identifier (`]Q1`), when the scanner sent one.
    pub aim_id: Option<String>,
}

impl ScannerRead {
    /// The symbology's name ("QR Code", "EAN-13"), from the AIM identifier.
    pub fn symbology(&self) -> Option<&'static str> {
        self.aim_id.as_deref().and_then(aim_symbology_name)
    }
}

/// Shows the length and the symbology, never the data.
impl fmt::Debug for ScannerRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScannerRead")
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("aim_id", &self.aim_id)
            .finish()
    }
}

/// The name of a symbology from its AIM identifier (ISO/IEC 15424): `]` then the code character
/// then the modifier. `None` for an identifier this table does not know.
pub fn aim_symbology_name(aim_id: &str) -> Option<&'static str> {
    let mut chars = aim_id.chars();
    if chars.next() != Some(']') {
        return None;
    }
    let code = chars.next()?;
    let modifier = chars.next();
    let name = match (code, modifier) {
        ('A', _) => "Code 39",
        ('C', Some('1')) => "GS1-128",
        ('C', _) => "Code 128",
        ('E', Some('0')) => "EAN-13",
        ('E', Some('1')) => "UPC-E",
        ('E', Some('3')) => "EAN-13 with add-on",
        ('E', Some('4')) => "EAN-8",
        ('E', _) => "EAN/UPC",
        ('F', _) => "Codabar",
        ('G', _) => "Code 93",
        ('I', _) => "ITF",
        ('L', _) => "PDF417",
        ('Q', Some('3' | '4')) => "GS1 QR Code",
        ('Q', _) => "QR Code",
        ('U', _) => "MaxiCode",
        ('d', Some('2')) => "GS1 DataMatrix",
        ('d', _) => "Data Matrix",
        ('e', _) => "GS1 DataBar",
        ('z', _) => "Aztec",
        _ => return None,
    };
    Some(name)
}

/// Joins a HID POS scanner's input reports into reads.
#[derive(Clone)]
pub struct PosScannerReader {
    layout: ScannerLayout,
    pending: Vec<u8>,
    pending_aim: Option<String>,
    /// A continued read is under way.
    continuing: bool,
}

/// Shows the layout and how much is pending, never the pending bytes.
impl fmt::Debug for PosScannerReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PosScannerReader")
            .field("layout", &self.layout)
            .field("pending", &format_args!("<{} bytes>", self.pending.len()))
            .field("continuing", &self.continuing)
            .finish()
    }
}

impl PosScannerReader {
    pub fn new(descriptor: &ReportDescriptor) -> Result<PosScannerReader, LayoutError> {
        Ok(PosScannerReader::with_layout(ScannerLayout::from_descriptor(
            descriptor,
        )?))
    }

    pub fn with_layout(layout: ScannerLayout) -> PosScannerReader {
        PosScannerReader {
            layout,
            pending: Vec::new(),
            pending_aim: None,
            continuing: false,
        }
    }

    pub fn layout(&self) -> &ScannerLayout {
        &self.layout
    }

    /// One input report as the device sent it (with its report ID byte when the descriptor uses
    /// report IDs). `Ok(None)`: another report, or part of a read still continuing. An error
    /// drops whatever was pending.
    pub fn feed(&mut self, report: &[u8]) -> Result<Option<ScannerRead>, ReportError> {
        let result = self.take(report);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Drops a read still waiting for its continuation (the device went away, say).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.pending_aim = None;
        self.continuing = false;
    }

    fn take(&mut self, report: &[u8]) -> Result<Option<ScannerRead>, ReportError> {
        let layout = &self.layout;
        let Some(body) = report_body(report, layout.uses_report_ids, layout.report_id)? else {
            return Ok(None);
        };
        let id_len = usize::from(layout.uses_report_ids);
        if body.len() < layout.body_len {
            return Err(ReportError::TooShort {
                len: report.len(),
                need: layout.body_len + id_len,
            });
        }
        let too_short = || ReportError::TooShort {
            len: report.len(),
            need: layout.body_len + id_len,
        };
        let mut piece = match layout.length {
            Some(length) => {
                let length = length.read(body).ok_or_else(too_short)?;
                if length > layout.data.len as u64 {
                    return Err(ReportError::LengthBeyondData {
                        length,
                        capacity: layout.data.len,
                    });
                }
                layout.data.read(body, length as usize).ok_or_else(too_short)?
            }
            None => {
                let mut all = layout.data.read(body, layout.data.len).ok_or_else(too_short)?;
                let kept = all.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                all.truncate(kept);
                all
            }
        };
        let continued = match layout.continued {
            Some(flag) => flag.read(body).ok_or_else(too_short)? != 0,
            None => false,
        };
        if !self.continuing {
            self.pending_aim = read_aim(&layout.symbology, body);
        }
        if self.pending.len() + piece.len() > MAX_READ_BYTES {
            return Err(ReportError::TooLong { max: MAX_READ_BYTES });
        }
        self.pending.append(&mut piece);
        if continued {
            self.continuing = true;
            return Ok(None);
        }
        let read = ScannerRead {
            data: std::mem::take(&mut self.pending),
            aim_id: self.pending_aim.take(),
        };
        self.continuing = false;
        Ok(Some(read))
    }
}

/// The three symbology identifier bytes as text; `None` when they are absent, all zero or not
/// printable ASCII.
fn read_aim(regions: &[ByteRegion], body: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(3);
    for region in regions {
        bytes.extend(region.read(body, 3 - bytes.len().min(3))?);
    }
    bytes.truncate(3);
    let kept = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    bytes.truncate(kept);
    if bytes.is_empty() || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// Where a magnetic stripe reader puts its tracks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsrLayout {
    report_id: u8,
    uses_report_ids: bool,
    body_len: usize,
    /// Per track: its data field and its length field, when the report has them.
    tracks: [Option<(ByteRegion, Option<Number>)>; 3],
}

impl MsrLayout {
    /// Finds the Track 1/2/3 Data fields (and Track 1/2/3 Length) in the input report holding the
    /// most of them.
    pub fn from_descriptor(descriptor: &ReportDescriptor) -> Result<MsrLayout, LayoutError> {
        let report = descriptor
            .input_reports()
            .iter()
            .max_by_key(|r| {
                USAGE_TRACK_DATA
                    .iter()
                    .filter(|u| r.fields_with(**u).next().is_some())
                    .count()
            })
            .filter(|r| USAGE_TRACK_DATA.iter().any(|u| r.fields_with(*u).next().is_some()))
            .ok_or(LayoutError::Missing(USAGE_TRACK_DATA[0]))?;
        let mut tracks = [None, None, None];
        for (i, slot) in tracks.iter_mut().enumerate() {
            let Some(field) = report.fields_with(USAGE_TRACK_DATA[i]).next() else {
                continue;
            };
            let data = ByteRegion::of(field).ok_or(LayoutError::Unusable(USAGE_TRACK_DATA[i]))?;
            let length = report
                .fields_with(USAGE_TRACK_LENGTH[i])
                .next()
                .map(|f| Number::of(f).ok_or(LayoutError::Unusable(USAGE_TRACK_LENGTH[i])))
                .transpose()?;
            *slot = Some((data, length));
        }
        Ok(MsrLayout {
            report_id: report.report_id,
            uses_report_ids: descriptor.uses_report_ids(),
            body_len: report.byte_len(),
            tracks,
        })
    }

    pub fn report_id(&self) -> u8 {
        self.report_id
    }
}

/// One swipe: the text of each track as the reader sent it (`None`: not read or not reported).
#[derive(Clone, PartialEq, Eq)]
pub struct MsrSwipe {
    pub tracks: [Option<String>; 3],
}

/// Shows each track's length, never its data.
impl fmt::Debug for MsrSwipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .tracks
            .iter()
            .map(|t| t.as_ref().map_or("-".to_string(), |t| format!("<{} chars>", t.len())))
            .collect();
        f.debug_struct("MsrSwipe").field("tracks", &shown).finish()
    }
}

impl MsrSwipe {
    /// The tracks as a keyboard-mode reader types them, which
    /// [`crate::scan::magstripe::parse_swipe`] reads: `%…?;…?;…?`. Sentinels are added to a
    /// track that came without them; track 3 opens with `+` when track 2 is missing, so that it
    /// is not taken for track 2.
    pub fn to_swipe_text(&self) -> String {
        let mut text = String::new();
        for (i, track) in self.tracks.iter().enumerate() {
            let Some(track) = track.as_deref().filter(|t| !t.is_empty()) else {
                continue;
            };
            if track.starts_with(['%', ';', '+']) {
                text.push_str(track);
                continue;
            }
            let start = match i {
                0 => '%',
                1 => ';',
                _ if self.tracks[1].as_deref().is_some_and(|t| !t.is_empty()) => ';',
                _ => '+',
            };
            text.push(start);
            text.push_str(track);
            if !track.contains('?') {
                text.push('?');
            }
        }
        text
    }
}

/// Reads a HID POS magnetic stripe reader's input reports. A swipe fits in one report.
#[derive(Clone, Debug)]
pub struct PosMsrReader {
    layout: MsrLayout,
}

impl PosMsrReader {
    pub fn new(descriptor: &ReportDescriptor) -> Result<PosMsrReader, LayoutError> {
        Ok(PosMsrReader {
            layout: MsrLayout::from_descriptor(descriptor)?,
        })
    }

    pub fn layout(&self) -> &MsrLayout {
        &self.layout
    }

    /// One input report; `Ok(None)` for another report ID. Track bytes outside printable ASCII
    /// end the track (readers pad with NUL).
    pub fn feed(&self, report: &[u8]) -> Result<Option<MsrSwipe>, ReportError> {
        let layout = &self.layout;
        let Some(body) = report_body(report, layout.uses_report_ids, layout.report_id)? else {
            return Ok(None);
        };
        let need = layout.body_len + usize::from(layout.uses_report_ids);
        let too_short = || ReportError::TooShort {
            len: report.len(),
            need,
        };
        if body.len() < layout.body_len {
            return Err(too_short());
        }
        let mut tracks = [None, None, None];
        for (slot, track) in tracks.iter_mut().zip(&layout.tracks) {
            let Some((data, length)) = track else { continue };
            let bytes = match length {
                Some(length) => {
                    let length = length.read(body).ok_or_else(too_short)?;
                    if length > data.len as u64 {
                        return Err(ReportError::LengthBeyondData {
                            length,
                            capacity: data.len,
                        });
                    }
                    data.read(body, length as usize).ok_or_else(too_short)?
                }
                None => data.read(body, data.len).ok_or_else(too_short)?,
            };
            let text: String = bytes
                .iter()
                .take_while(|b| (0x20..0x7F).contains(*b))
                .map(|b| char::from(*b))
                .collect();
            *slot = (!text.is_empty()).then_some(text);
        }
        Ok(Some(MsrSwipe { tracks }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aim_names() {
        assert_eq!(aim_symbology_name("]E0"), Some("EAN-13"));
        assert_eq!(aim_symbology_name("]E4"), Some("EAN-8"));
        assert_eq!(aim_symbology_name("]C1"), Some("GS1-128"));
        assert_eq!(aim_symbology_name("]C0"), Some("Code 128"));
        assert_eq!(aim_symbology_name("]Q1"), Some("QR Code"));
        assert_eq!(aim_symbology_name("Q1"), None);
        assert_eq!(aim_symbology_name("]"), None);
        assert_eq!(aim_symbology_name("]#0"), None);
    }

    #[test]
    fn swipe_text_adds_sentinels_and_debug_hides_tracks() {
        let swipe = MsrSwipe {
            tracks: [None, None, Some("0123".to_string())],
        };
        assert_eq!(swipe.to_swipe_text(), "+0123?");
        let swipe = MsrSwipe {
            tracks: [
                Some("B4276380012345678^GUEST/A^2812".to_string()),
                Some("4276380012345678=2812".to_string()),
                None,
            ],
        };
        assert_eq!(
            swipe.to_swipe_text(),
            "%B4276380012345678^GUEST/A^2812?;4276380012345678=2812?"
        );
        let shown = format!("{swipe:?}");
        assert!(!shown.contains("0012345"), "{shown}");
    }
}
