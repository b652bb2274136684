//! Finger minutiae records as fingerprint stations send them: ISO/IEC 19794-2:2005 (read and write) and ANSI INCITS
//! 378-2004 (read). Both decode to one [`MinutiaeRecord`] whose angles are in ISO 2005 units.
//!
//! # Format
//! All integers big-endian.
//! - Header, ISO 19794-2:2005 (24 bytes): `"FMR\0"` | `" 20\0"` | record length `u32` | capture equipment `u16` |
//!   width `u16` | height `u16` | x resolution `u16` | y resolution `u16` (pixels/cm) | number of views `u8` |
//!   reserved `u8`.
//! - Header, ANSI INCITS 378-2004 (26 bytes, 30 with the long length): `"FMR\0"` | `" 20\0"` | record length
//!   `u16` (0: a `u32` length follows) | CBEFF product id `u32` | capture equipment `u16` | width, height, x and y
//!   resolution `u16` each | number of views `u8` | reserved `u8`.
//! - Each finger view: position `u8` | view number (4 bits) and impression type (4 bits) | quality `u8` | minutia
//!   count `u8` | per minutia 6 bytes: type (2 bits: 0 other, 1 ridge ending, 2 bifurcation) and x (14 bits) |
//!   reserved (2 bits) and y (14 bits) | angle `u8` | quality `u8` | then extended data length `u16` and that many
//!   bytes of extended data blocks.
//! - Angles: ISO in 360/256 degrees (0..=255); ANSI in 2 degrees (0..=179), converted here to ISO units by
//!   rounding to nearest.
//!
//! [`detect_format`] tells the two apart by the length field.
//!
//! # Limits and tolerance
//! Input above [`MAX_TEMPLATE_BYTES`] is refused before parsing; every field read is bounds-checked and a failure
//! names the field and its byte offset ([`TemplateError`]). The declared record length must equal the input length.
//! Refused: a finger position above 10, the reserved minutia type 3, an ANSI angle above 179. Extended data (ridge
//! counts, core/delta, vendor blocks) is bounds-checked as a whole and skipped without walking its blocks (writers
//! disagree on whether a block length counts its 4-byte header). Tolerated, because real writers produce them: an
//! extended data area of the last view running past the end of the record (skipped), and bytes after the last view
//! (ignored). Coordinates are not checked against the image size.

mod ansi;
mod body;
mod cursor;
mod error;
mod iso;

#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_samples;

pub use ansi::{ANSI_HEADER_BYTES, parse_ansi378};
pub use error::TemplateError;
pub use iso::{ISO_HEADER_BYTES, encode_iso19794_2, parse_iso19794_2};

use cursor::Cursor;

/// Largest record accepted by the parsers; larger input is refused before a byte is read.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

const MAGIC: &[u8; 4] = b"FMR\0";
const VERSION_20: &[u8; 4] = b" 20\0";

/// Which standard a record was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TemplateFormat {
    /// ISO/IEC 19794-2:2005.
    Iso19794_2_2005,
    /// ANSI INCITS 378-2004.
    Ansi378_2004,
}

/// Minutia type as coded in both standards (`0b00`, `0b01`, `0b10`; `0b11` is reserved and refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinutiaKind {
    /// Type not reported.
    Other,
    /// Ridge ending.
    RidgeEnding,
    /// Ridge bifurcation.
    Bifurcation,
}

/// One minutia, in the record's pixel coordinates (origin top-left, y down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minutia {
    /// Minutia type.
    pub kind: MinutiaKind,
    /// Column in pixels (14 bits).
    pub x: u16,
    /// Row in pixels (14 bits).
    pub y: u16,
    /// ISO 2005 angle units: 360/256 degrees, counter-clockwise from the x axis as in the standard
    pub angle: u8,
    /// Minutia quality, 1..=100 (0 = not reported).
    pub quality: u8,
}

/// One finger view (one impression of one finger) and its minutiae.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerView {
    /// Finger position: 0 unknown, 1..=5 right thumb..little, 6..=10 left thumb..little.
    pub position: u8,
    /// View number (4 bits).
    pub view_number: u8,
    /// Impression type (4 bits): 0 live-scan plain, 1 live-scan rolled, 2 non-live plain, 3 non-live rolled, 8 swipe.
    pub impression_type: u8,
    /// Finger quality, 0..=100.
    pub quality: u8,
    /// The minutiae, in record order.
    pub minutiae: Vec<Minutia>,
}

/// A decoded finger minutiae record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinutiaeRecord {
    /// Standard the record was read from.
    pub format: TemplateFormat,
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Horizontal resolution in pixels per centimetre (197 = 500 ppi; 0 = not reported).
    pub x_resolution_ppcm: u16,
    /// Vertical resolution in pixels per centimetre.
    pub y_resolution_ppcm: u16,
    /// Finger views in record order.
    pub views: Vec<FingerView>,
}

/// Tells ISO 19794-2:2005 from ANSI 378-2004 by the length field (both share `"FMR\0" " 20\0"`): a first `u16`
/// of 26 or more can only be an ANSI short length; a non-zero value below that can only be the high half of an
/// ISO length; zero is an ISO length (second `u16` >= 24) or an ANSI long length. `None` if the record does not
/// start with that format id and version.
pub fn detect_format(bytes: &[u8]) -> Option<TemplateFormat> {
    if bytes.get(..4)? != MAGIC || bytes.get(4..8)? != VERSION_20 {
        return None;
    }
    let word = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let first = word(8)?;
    let format = match first {
        0 if usize::from(word(10)?) >= ISO_HEADER_BYTES => TemplateFormat::Iso19794_2_2005,
        0 => TemplateFormat::Ansi378_2004,
        n if usize::from(n) >= ANSI_HEADER_BYTES => TemplateFormat::Ansi378_2004,
        _ => TemplateFormat::Iso19794_2_2005,
    };
    Some(format)
}

/// Parses a record in either supported format, chosen by [`detect_format`]. Input that is neither fails like
/// [`parse_iso19794_2`] would (size limit, format id or version error).
pub fn parse_minutiae_record(bytes: &[u8]) -> Result<MinutiaeRecord, TemplateError> {
    match detect_format(bytes) {
        Some(TemplateFormat::Ansi378_2004) => parse_ansi378(bytes),
        Some(TemplateFormat::Iso19794_2_2005) | None => parse_iso19794_2(bytes),
    }
}

/// Checks the size limit, format id and version; returns a cursor just after the version.
fn open(bytes: &[u8]) -> Result<Cursor<'_>, TemplateError> {
    if bytes.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::TooLarge {
            len: bytes.len(),
            max: MAX_TEMPLATE_BYTES,
        });
    }
    let mut cur = Cursor::new(bytes);
    let magic = cur.array::<4>("format identifier")?;
    if &magic != MAGIC {
        return Err(TemplateError::BadMagic { found: magic });
    }
    let version = cur.array::<4>("version")?;
    if &version != VERSION_20 {
        return Err(TemplateError::UnsupportedVersion { found: version });
    }
    Ok(cur)
}

/// The declared record length must equal the input length and hold at least the header.
fn check_record_length(
    offset: usize,
    declared: usize,
    actual: usize,
    header: usize,
) -> Result<(), TemplateError> {
    if declared != actual || declared < header {
        return Err(TemplateError::RecordLength {
            offset,
            declared,
            actual,
            header,
        });
    }
    Ok(())
}
