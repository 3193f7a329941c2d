//! HID point-of-sale devices read through their HID reports rather than as a keyboard: barcode
//! scanners on the Bar Code Scanner page (0x8C) and magnetic stripe readers on the Magnetic
//! Stripe Reader page (0x8E) of the HID Point of Sale Usage Tables. Pure: [`descriptor`] parses
//! the device's report descriptor, [`pos`] finds the POS fields in it by usage and turns input
//! reports into reads. [`bus`] is the boundary to the system's HID stack (hidapi).
//!
//! Readers that put their tracks on a vendor-defined page (many MagTek models, page 0xFF00) are
//! not described by their descriptor and are not read by this module.

pub mod bus;
pub mod descriptor;
pub mod pos;
pub mod reader;

pub use descriptor::{DescriptorError, Field, InputReport, ReportDescriptor, Usage};
pub use pos::{LayoutError, MsrSwipe, PosMsrReader, PosScannerReader, ReportError, ScannerRead, aim_symbology_name};
