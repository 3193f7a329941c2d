//! HID report descriptors (Device Class Definition for HID 1.11, section 6.2.2): the short items
//! (main, global, local; 0, 1, 2 or 4 data bytes), the global stack (Push/Pop), usage ranges,
//! extended 32-bit usages, collections and report IDs. Long items are skipped. Only the fields of
//! Input reports are kept: that is where a scanner or a card reader puts its reads.
//!
//! Pure and defensive: a descriptor comes from a device, so every length and count is checked and
//! a malformed one is a [`DescriptorError`], never a panic.

use std::fmt;

/// Most bits one report may hold: 64 KiB, far above any real device (USB full-speed interrupt
/// reports are at most 64 bytes; a descriptor asking for more than this is broken).
pub const MAX_REPORT_BITS: u64 = 8 * 65_536;
/// Most Push items in a row; the HID specification sets no limit, devices use one or two.
const MAX_PUSH_DEPTH: usize = 16;
/// Most nested collections.
const MAX_COLLECTION_DEPTH: usize = 32;
/// Most usages one main item may name.
const MAX_LOCAL_USAGES: usize = 1024;

/// A usage: its page and its ID within the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Usage {
    pub page: u16,
    pub id: u16,
}

impl Usage {
    pub const fn new(page: u16, id: u16) -> Usage {
        Usage { page, id }
    }

    fn from_extended(value: u32) -> Usage {
        Usage {
            page: (value >> 16) as u16,
            id: (value & 0xFFFF) as u16,
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06X}:{:#06X}", self.page, self.id)
    }
}

/// One field of an input report: `count` elements of `bit_size` bits each, starting at
/// `bit_offset` bits after the report ID byte (or the report's start without report IDs).
/// A Variable item naming several usages becomes one field per run of elements sharing a usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub usage: Usage,
    pub bit_offset: u32,
    pub bit_size: u32,
    pub count: u32,
    /// Constant (padding or fixed) data.
    pub constant: bool,
    /// Variable (each element its own usage); `false` for an Array item.
    pub variable: bool,
    /// The usage of the innermost collection around the field.
    pub collection: Option<Usage>,
    pub logical_minimum: i32,
    pub logical_maximum: i32,
}

impl Field {
    /// The number of bits of all its elements.
    pub fn total_bits(&self) -> u32 {
        self.bit_size.saturating_mul(self.count)
    }
}

/// The input report with one report ID (0 when the descriptor uses none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputReport {
    pub report_id: u8,
    /// Bits after the report ID byte.
    pub bit_len: u32,
    pub fields: Vec<Field>,
}

impl InputReport {
    /// Its length in bytes, without the report ID byte.
    pub fn byte_len(&self) -> usize {
        self.bit_len.div_ceil(8) as usize
    }

    pub fn fields_with(&self, usage: Usage) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(move |f| f.usage == usage)
    }
}

/// A parsed report descriptor: its input reports, in order of their first appearance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportDescriptor {
    uses_report_ids: bool,
    input_reports: Vec<InputReport>,
}

/// Why a descriptor could not be parsed; `at` is the offset of the item in the descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DescriptorError {
    /// An item's data runs past the end of the descriptor.
    Truncated {
        at: usize,
    },
    PopWithoutPush {
        at: usize,
    },
    PushTooDeep {
        at: usize,
    },
    EndCollectionWithoutStart {
        at: usize,
    },
    CollectionTooDeep {
        at: usize,
    },
    /// A collection is still open at the end of the descriptor.
    UnclosedCollection,
    /// Report Count × Report Size, or the report as a whole, is beyond [`MAX_REPORT_BITS`].
    ReportTooLarge {
        at: usize,
    },
    /// Report ID 0 is reserved; a report ID above 255 cannot be sent.
    BadReportId {
        at: usize,
        id: u32,
    },
    /// A usage range whose minimum is above its maximum, or one missing its other end.
    BadUsageRange {
        at: usize,
    },
    TooManyUsages {
        at: usize,
    },
    /// Report IDs declared after a main item that had none.
    ReportIdAfterUnnumberedReport {
        at: usize,
    },
    /// A main item without a report ID after report IDs were declared (a Pop can restore the
    /// state from before the first Report ID item).
    UnnumberedReportAfterReportIds {
        at: usize,
    },
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescriptorError::Truncated { at } => write!(f, "the item at byte {at} runs past the end of the descriptor"),
            DescriptorError::PopWithoutPush { at } => write!(f, "Pop without Push at byte {at}"),
            DescriptorError::PushTooDeep { at } => write!(f, "too many nested Push items at byte {at}"),
            DescriptorError::EndCollectionWithoutStart { at } => {
                write!(f, "End Collection without a collection at byte {at}")
            }
            DescriptorError::CollectionTooDeep { at } => write!(f, "collections nested too deep at byte {at}"),
            DescriptorError::UnclosedCollection => f.write_str("a collection is never ended"),
            DescriptorError::ReportTooLarge { at } => write!(f, "the report grows too large at byte {at}"),
            DescriptorError::BadReportId { at, id } => write!(f, "report ID {id} at byte {at} is not allowed"),
            DescriptorError::BadUsageRange { at } => write!(f, "bad usage range before byte {at}"),
            DescriptorError::TooManyUsages { at } => write!(f, "too many usages before byte {at}"),
            DescriptorError::ReportIdAfterUnnumberedReport { at } => {
                write!(f, "report ID at byte {at} after a report without one")
            }
            DescriptorError::UnnumberedReportAfterReportIds { at } => {
                write!(f, "report without a report ID at byte {at} after reports with one")
            }
        }
    }
}

impl std::error::Error for DescriptorError {}

/// The global state that Push saves and Pop restores.
#[derive(Clone, Copy, Debug, Default)]
struct Globals {
    usage_page: u16,
    logical_minimum: i32,
    logical_maximum: i32,
    report_size: u32,
    report_count: u32,
    report_id: u8,
}

/// A Usage item as written: a 4-byte usage carries its own page; a shorter one takes the page in
/// force when its main item comes (HID 1.11, 6.2.2.8).
#[derive(Clone, Copy, Debug)]
enum LocalUsage {
    Extended(Usage),
    Short(u16),
}

impl LocalUsage {
    fn resolve(self, page: u16) -> Usage {
        match self {
            LocalUsage::Extended(usage) => usage,
            LocalUsage::Short(id) => Usage::new(page, id),
        }
    }

    fn from_item(size: usize, value: u32) -> LocalUsage {
        if size == 4 {
            LocalUsage::Extended(Usage::from_extended(value))
        } else {
            LocalUsage::Short(value as u16)
        }
    }
}

#[derive(Default)]
struct Locals {
    usages: Vec<LocalUsage>,
    minimum: Option<LocalUsage>,
}

/// Bit positions reached so far, per report ID and main item kind.
#[derive(Default)]
struct Cursor {
    input: Vec<(u8, u64)>,
    other: Vec<(u8, u8, u64)>,
}

impl Cursor {
    fn input_mut(&mut self, id: u8) -> &mut u64 {
        let index = match self.input.iter().position(|(i, _)| *i == id) {
            Some(index) => index,
            None => {
                self.input.push((id, 0));
                self.input.len() - 1
            }
        };
        &mut self.input[index].1
    }

    fn other_mut(&mut self, kind: u8, id: u8) -> &mut u64 {
        let index = match self.other.iter().position(|(k, i, _)| *k == kind && *i == id) {
            Some(index) => index,
            None => {
                self.other.push((kind, id, 0));
                self.other.len() - 1
            }
        };
        &mut self.other[index].2
    }
}

impl ReportDescriptor {
    /// Parses a report descriptor as a device returns it.
    pub fn parse(bytes: &[u8]) -> Result<ReportDescriptor, DescriptorError> {
        Parser::default().run(bytes)
    }

    /// Whether every report starts with a report ID byte.
    pub fn uses_report_ids(&self) -> bool {
        self.uses_report_ids
    }

    pub fn input_reports(&self) -> &[InputReport] {
        &self.input_reports
    }

    pub fn input_report(&self, report_id: u8) -> Option<&InputReport> {
        self.input_reports.iter().find(|r| r.report_id == report_id)
    }

    /// The first input field with this usage and the report it belongs to.
    pub fn find_input(&self, usage: Usage) -> Option<(&InputReport, &Field)> {
        self.input_reports
            .iter()
            .find_map(|report| report.fields_with(usage).next().map(|field| (report, field)))
    }
}

#[derive(Default)]
struct Parser {
    globals: Globals,
    stack: Vec<Globals>,
    locals: Locals,
    collections: Vec<Option<Usage>>,
    cursor: Cursor,
    uses_report_ids: bool,
    /// A main item has been seen without a report ID in force.
    unnumbered_main: bool,
    reports: Vec<InputReport>,
}

impl Parser {
    fn run(mut self, bytes: &[u8]) -> Result<ReportDescriptor, DescriptorError> {
        let mut at = 0;
        while at < bytes.len() {
            let prefix = bytes[at];
            if prefix == 0xFE {
                // Long item: data size, long tag, data. None is defined; skip it.
                let size = *bytes.get(at + 1).ok_or(DescriptorError::Truncated { at })?;
                let end = at + 3 + usize::from(size);
                if end > bytes.len() {
                    return Err(DescriptorError::Truncated { at });
                }
                at = end;
                continue;
            }
            let size = match prefix & 0x03 {
                3 => 4,
                n => usize::from(n),
            };
            let data = bytes
                .get(at + 1..at + 1 + size)
                .ok_or(DescriptorError::Truncated { at })?;
            let unsigned = data.iter().rev().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
            let signed = match size {
                1 => i32::from(data[0] as i8),
                2 => i32::from(unsigned as u16 as i16),
                _ => unsigned as i32,
            };
            let tag = prefix >> 4;
            match (prefix >> 2) & 0x03 {
                0 => self.main(tag, unsigned, at)?,
                1 => self.global(tag, unsigned, signed, at)?,
                2 => self.local(tag, size, unsigned, at)?,
                _ => {} // Reserved item type: skipped like a long item.
            }
            at += 1 + size;
        }
        if !self.collections.is_empty() {
            return Err(DescriptorError::UnclosedCollection);
        }
        Ok(ReportDescriptor {
            uses_report_ids: self.uses_report_ids,
            input_reports: self.reports,
        })
    }

    fn main(&mut self, tag: u8, flags: u32, at: usize) -> Result<(), DescriptorError> {
        match tag {
            0x8 => self.data_item(Kind::Input, flags, at)?,
            0x9 => self.data_item(Kind::Output, flags, at)?,
            0xB => self.data_item(Kind::Feature, flags, at)?,
            0xA => {
                if self.collections.len() >= MAX_COLLECTION_DEPTH {
                    return Err(DescriptorError::CollectionTooDeep { at });
                }
                let page = self.globals.usage_page;
                let usage = self.locals.usages.first().map(|u| u.resolve(page));
                self.collections.push(usage);
            }
            0xC if self.collections.pop().is_none() => {
                return Err(DescriptorError::EndCollectionWithoutStart { at });
            }
            _ => {}
        }
        self.locals = Locals::default();
        Ok(())
    }

    fn data_item(&mut self, kind: Kind, flags: u32, at: usize) -> Result<(), DescriptorError> {
        let g = self.globals;
        let bits = u64::from(g.report_size) * u64::from(g.report_count);
        if bits > MAX_REPORT_BITS {
            return Err(DescriptorError::ReportTooLarge { at });
        }
        if g.report_id == 0 {
            // With report IDs every report starts with its own, and 0 is reserved for "none":
            // such a report could not be told from the others.
            if self.uses_report_ids {
                return Err(DescriptorError::UnnumberedReportAfterReportIds { at });
            }
            self.unnumbered_main = true;
        }
        let position = match kind {
            Kind::Input => self.cursor.input_mut(g.report_id),
            Kind::Output => self.cursor.other_mut(0, g.report_id),
            Kind::Feature => self.cursor.other_mut(1, g.report_id),
        };
        let start = *position;
        let end = start + bits;
        if end > MAX_REPORT_BITS {
            return Err(DescriptorError::ReportTooLarge { at });
        }
        *position = end;
        if kind != Kind::Input {
            return Ok(());
        }
        let report = match self.reports.iter().position(|r| r.report_id == g.report_id) {
            Some(index) => &mut self.reports[index],
            None => {
                self.reports.push(InputReport {
                    report_id: g.report_id,
                    bit_len: 0,
                    fields: Vec::new(),
                });
                let last = self.reports.len() - 1;
                &mut self.reports[last]
            }
        };
        // Both fit in u32: they are at most MAX_REPORT_BITS.
        report.bit_len = end as u32;
        if bits == 0 {
            return Ok(());
        }
        let constant = flags & 0x01 != 0;
        let variable = flags & 0x02 != 0;
        let collection = self.collections.last().copied().flatten();
        let usages: Vec<Usage> = self.locals.usages.iter().map(|u| u.resolve(g.usage_page)).collect();
        let field = |usage: Usage, first: u32, count: u32| Field {
            usage,
            bit_offset: start as u32 + first * g.report_size,
            bit_size: g.report_size,
            count,
            constant,
            variable,
            collection,
            logical_minimum: g.logical_minimum,
            logical_maximum: g.logical_maximum,
        };
        if !variable || usages.len() <= 1 {
            // An Array item (its usages are the values it may hold), or one usage for all.
            let usage = usages.first().copied().unwrap_or(Usage::new(g.usage_page, 0));
            report.fields.push(field(usage, 0, g.report_count));
            return Ok(());
        }
        // A Variable item: element i has usage i; the last usage repeats for the rest.
        let mut first = 0u32;
        while first < g.report_count {
            let index = (first as usize).min(usages.len() - 1);
            let usage = usages[index];
            let mut count = 1;
            while first + count < g.report_count && usages[((first + count) as usize).min(usages.len() - 1)] == usage {
                count += 1;
            }
            report.fields.push(field(usage, first, count));
            first += count;
        }
        Ok(())
    }

    fn global(&mut self, tag: u8, unsigned: u32, signed: i32, at: usize) -> Result<(), DescriptorError> {
        let g = &mut self.globals;
        match tag {
            0x0 => g.usage_page = unsigned as u16,
            0x1 => g.logical_minimum = signed,
            0x2 => g.logical_maximum = signed,
            0x7 => {
                if u64::from(unsigned) > MAX_REPORT_BITS {
                    return Err(DescriptorError::ReportTooLarge { at });
                }
                g.report_size = unsigned;
            }
            0x8 => {
                if unsigned == 0 || unsigned > 255 {
                    return Err(DescriptorError::BadReportId { at, id: unsigned });
                }
                if self.unnumbered_main {
                    return Err(DescriptorError::ReportIdAfterUnnumberedReport { at });
                }
                g.report_id = unsigned as u8;
                self.uses_report_ids = true;
            }
            0x9 => {
                if u64::from(unsigned) > MAX_REPORT_BITS {
                    return Err(DescriptorError::ReportTooLarge { at });
                }
                g.report_count = unsigned;
            }
            0xA => {
                if self.stack.len() >= MAX_PUSH_DEPTH {
                    return Err(DescriptorError::PushTooDeep { at });
                }
                self.stack.push(*g);
            }
            0xB => *g = self.stack.pop().ok_or(DescriptorError::PopWithoutPush { at })?,
            // Physical extent, unit exponent, unit: not needed for byte data.
            _ => {}
        }
        Ok(())
    }

    fn local(&mut self, tag: u8, size: usize, value: u32, at: usize) -> Result<(), DescriptorError> {
        match tag {
            0x0 => self.push_usage(LocalUsage::from_item(size, value), at)?,
            0x1 => self.locals.minimum = Some(LocalUsage::from_item(size, value)),
            0x2 => {
                let minimum = self
                    .locals
                    .minimum
                    .take()
                    .ok_or(DescriptorError::BadUsageRange { at })?;
                let maximum = LocalUsage::from_item(size, value);
                self.push_range(minimum, maximum, at)?;
            }
            // Designators, strings and delimiters name no data.
            _ => {}
        }
        Ok(())
    }

    fn push_usage(&mut self, usage: LocalUsage, at: usize) -> Result<(), DescriptorError> {
        if self.locals.usages.len() >= MAX_LOCAL_USAGES {
            return Err(DescriptorError::TooManyUsages { at });
        }
        self.locals.usages.push(usage);
        Ok(())
    }

    fn push_range(&mut self, minimum: LocalUsage, maximum: LocalUsage, at: usize) -> Result<(), DescriptorError> {
        let page = self.globals.usage_page;
        let (low, high) = (minimum.resolve(page), maximum.resolve(page));
        if low.page != high.page || low.id > high.id {
            return Err(DescriptorError::BadUsageRange { at });
        }
        if usize::from(high.id - low.id) >= MAX_LOCAL_USAGES {
            return Err(DescriptorError::TooManyUsages { at });
        }
        let extended = matches!(minimum, LocalUsage::Extended(_)) || matches!(maximum, LocalUsage::Extended(_));
        for id in low.id..=high.id {
            let usage = if extended {
                LocalUsage::Extended(Usage::new(low.page, id))
            } else {
                LocalUsage::Short(id)
            };
            self.push_usage(usage, at)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Input,
    Output,
    Feature,
}

/// Reads `bit_size` bits (at most 64) starting `bit_offset` bits into `data`, least significant
/// bit first as HID lays them out. `None` when the bits are not all in `data`.
pub fn read_bits(data: &[u8], bit_offset: u64, bit_size: u32) -> Option<u64> {
    if bit_size > 64 {
        return None;
    }
    let end = bit_offset.checked_add(u64::from(bit_size))?;
    if end > (data.len() as u64) * 8 {
        return None;
    }
    let mut value = 0u64;
    for i in 0..u64::from(bit_size) {
        let bit = bit_offset + i;
        let byte = data[usize::try_from(bit / 8).ok()?];
        if (byte >> (bit % 8)) & 1 == 1 {
            value |= 1 << i;
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_signs_of_item_data() {
        // Logical Minimum (-127) in one byte, Logical Maximum (32767) in two, a 4-byte usage.
        let d = [
            0x05, 0x01, 0x0B, 0xFE, 0x00, 0x8C, 0x00, 0xA1, 0x01, 0x15, 0x81, 0x26, 0xFF, 0x7F, 0x75, 0x10, 0x95, 0x01,
            0x09, 0x30, 0x81, 0x02, 0xC0,
        ];
        let parsed = ReportDescriptor::parse(&d).unwrap();
        let report = &parsed.input_reports()[0];
        assert_eq!(report.fields[0].usage, Usage::new(0x01, 0x30));
        assert_eq!(report.fields[0].logical_minimum, -127);
        assert_eq!(report.fields[0].logical_maximum, 32767);
        assert_eq!(report.bit_len, 16);
        // The application collection took its extended usage's own page.
        assert_eq!(report.fields[0].collection, Some(Usage::new(0x8C, 0xFE)));
    }

    #[test]
    fn a_report_without_id_after_report_ids_is_refused() {
        // Found by fuzzing: Push, Report ID 3, Pop (back to no report ID), Input.
        assert_eq!(
            ReportDescriptor::parse(&[0xA4, 0x85, 0x03, 0xB4, 0x80]),
            Err(DescriptorError::UnnumberedReportAfterReportIds { at: 4 })
        );
    }

    #[test]
    fn read_bits_is_lsb_first_and_bounded() {
        assert_eq!(read_bits(&[0b1010_0000, 0x01], 5, 4), Some(0b1101));
        assert_eq!(read_bits(&[0xFF], 4, 5), None);
        assert_eq!(read_bits(&[0xFF], u64::MAX, 2), None);
    }
}
