//! Finger minutiae records as fingerprint stations send them: ISO/IEC 19794-2 (2005 and 2011 editions) and ANSI
//! INCITS 378 (2004 and 2009 editions), read and written. All decode to one [`MinutiaeRecord`] whose angles are in
//! ISO units (360/256 degrees).
//!
//! # Format
//! All integers big-endian.
//! - Header, ISO 19794-2:2005 (24 bytes): `"FMR\0"` | `" 20\0"` | record length `u32` | capture equipment `u16` |
//!   width `u16` | height `u16` | x resolution `u16` | y resolution `u16` (pixels/cm) | number of views `u8` |
//!   reserved `u8`.
//! - Header, ANSI INCITS 378-2004 (26 bytes, 30 with the long length): `"FMR\0"` | `" 20\0"` | record length
//!   `u16` (0: a `u32` length follows) | CBEFF product id `u32` | capture equipment `u16` | width, height, x and y
//!   resolution `u16` each | number of views `u8` | reserved `u8`.
//! - Each finger view (2005 / 2004): position `u8` | view number (4 bits) and impression type (4 bits) | quality
//!   `u8` | minutia count `u8` | per minutia 6 bytes: type (2 bits: 0 other, 1 ridge ending, 2 bifurcation) and x
//!   (14 bits) | reserved (2 bits) and y (14 bits) | angle `u8` | quality `u8` | then extended data length `u16`
//!   and that many bytes of extended data blocks.
//! - ISO 19794-2:2011 (`"FMR\0"` `"030\0"`): a 15-byte general header and one length-prefixed finger
//!   representation per view, each with its own capture date, device, quality blocks, image size and resolution,
//!   and 5- or 6-byte minutiae (see `iso2011.rs`).
//! - ANSI INCITS 378-2009 (`"FMR\0"` `"030\0"`, AM1-2010: `"035\0"`): a 21-byte header and finger views that each
//!   carry their quality algorithm, image size and resolution (see `ansi2009.rs`).
//! - Angles: ISO in 360/256 degrees (0..=255); ANSI in 2 degrees (0..=179), converted here to ISO units by
//!   rounding to nearest (and back, when writing ANSI).
//!
//! [`detect_format`] tells the formats apart: by the length field for `" 20\0"` (ISO 2005 and ANSI 2004 share it)
//! and by the chain of representation lengths for `"030\0"` (ISO 2011 and ANSI 2009 share it).
//!
//! # Writing
//! [`encode_iso19794_2`] (ISO 2005) is unchanged; [`encode_iso19794_2_as`] chooses the ISO edition
//! ([`IsoVersion`]), [`encode_ansi378`] / [`encode_ansi378_as`] write ANSI 2004 / 2009 ([`AnsiVersion`]), and
//! [`encode_minutiae_record`] writes any [`TemplateFormat`]. A record written and read back in the same format
//! gives the same record, except that a 2011 / 2009 record cannot be written without views.
//!
//! # Limits and tolerance
//! Input above [`MAX_TEMPLATE_BYTES`] is refused before parsing; every field read is bounds-checked and a failure
//! names the field and its byte offset ([`TemplateError`]). The declared record length must equal the input length.
//! Refused: a finger position above 10, the reserved minutia type 3, an ANSI angle above 179, an ISO 2011 minutia
//! field length other than 5 or 6, a certification flag other than 0 or 1, more than 255 ISO 2011
//! representations, a representation length that is too small or runs past the record, bytes between the last
//! ISO 2011 representation or ANSI 2009 view and the record end, and 2011 / 2009 views whose image size or
//! resolution differ ([`MinutiaeRecord`] keeps one). Extended data (ridge counts, core/delta, vendor blocks) is
//! bounds-checked as a whole and skipped without walking its blocks (writers disagree on whether a block length
//! counts its 4-byte header), in every edition. Tolerated, because real writers produce them: an extended data
//! area of the last view running past the end of the record (or, in ISO 2011, of its representation) (skipped),
//! bytes after the last 2005 / 2004 view (ignored), bytes inside an ISO 2011 representation after its extended
//! data (ignored), and the pre-standard 20-byte ANSI 2009 header. Coordinates are not checked against the image
//! size. `docs/formats.md` sums this up.

mod ansi;
mod ansi2009;
mod body;
mod cursor;
mod error;
mod iso;
mod iso2011;
mod write;

#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_samples;

pub use ansi::{ANSI_HEADER_BYTES, encode_ansi378, encode_ansi378_as, parse_ansi378};
pub use ansi2009::ANSI_2009_HEADER_BYTES;
pub use error::TemplateError;
pub use iso::{ISO_HEADER_BYTES, encode_iso19794_2, encode_iso19794_2_as, parse_iso19794_2};
pub use iso2011::ISO_2011_HEADER_BYTES;

use cursor::Cursor;

/// Largest record accepted by the parsers; larger input is refused before a byte is read.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

const MAGIC: &[u8; 4] = b"FMR\0";
const VERSION_20: &[u8; 4] = b" 20\0";
const VERSION_30: &[u8; 4] = b"030\0";
/// ANSI INCITS 378-2009/AM1-2010: the 2009 layout under a version of its own.
const VERSION_35: &[u8; 4] = b"035\0";

/// Which standard a record was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TemplateFormat {
    /// ISO/IEC 19794-2:2005.
    Iso19794_2_2005,
    /// ANSI INCITS 378-2004.
    Ansi378_2004,
    /// ISO/IEC 19794-2:2011.
    Iso19794_2_2011,
    /// ANSI INCITS 378-2009 (also read from 378-2009/AM1-2010 records, version `"035\0"`).
    Ansi378_2009,
}

/// Edition of ISO/IEC 19794-2 to write ([`encode_iso19794_2_as`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsoVersion {
    /// ISO/IEC 19794-2:2005 (`" 20\0"`), the default.
    #[default]
    V2005,
    /// ISO/IEC 19794-2:2011 (`"030\0"`).
    V2011,
}

/// Edition of ANSI INCITS 378 to write ([`encode_ansi378_as`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnsiVersion {
    /// ANSI INCITS 378-2004 (`" 20\0"`), the default.
    #[default]
    V2004,
    /// ANSI INCITS 378-2009 (`"030\0"`).
    V2009,
}

impl From<IsoVersion> for TemplateFormat {
    fn from(version: IsoVersion) -> Self {
        match version {
            IsoVersion::V2005 => TemplateFormat::Iso19794_2_2005,
            IsoVersion::V2011 => TemplateFormat::Iso19794_2_2011,
        }
    }
}

impl From<AnsiVersion> for TemplateFormat {
    fn from(version: AnsiVersion) -> Self {
        match version {
            AnsiVersion::V2004 => TemplateFormat::Ansi378_2004,
            AnsiVersion::V2009 => TemplateFormat::Ansi378_2009,
        }
    }
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
    /// ISO angle units: 360/256 degrees, counter-clockwise from the x axis as in the standard
    pub angle: u8,
    /// Minutia quality, 1..=100 (0 = not reported, and what a 5-byte ISO 2011 minutia reads as).
    pub quality: u8,
}

/// One finger view (one impression of one finger) and its minutiae.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerView {
    /// Finger position: 0 unknown, 1..=5 right thumb..little, 6..=10 left thumb..little.
    pub position: u8,
    /// View number (4 bits in 2005 / 2004; a byte in 2011 / 2009, where it is called representation number in ISO).
    pub view_number: u8,
    /// Impression type (4 bits in 2005 / 2004, a byte in 2011 / 2009): 0 live-scan plain, 1 live-scan rolled,
    /// 2 non-live plain, 3 non-live rolled, 8 swipe.
    pub impression_type: u8,
    /// Finger quality, 0..=100 (ISO 2011: the first quality block's score, 0 without one).
    pub quality: u8,
    /// The minutiae, in record order.
    pub minutiae: Vec<Minutia>,
}

/// A decoded finger minutiae record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinutiaeRecord {
    /// Standard the record was read from.
    pub format: TemplateFormat,
    /// Image width in pixels (2011 / 2009: per view in the record, the same in every view).
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

/// Tells the formats apart. `" 20\0"` is shared by ISO 19794-2:2005 and ANSI 378-2004 and told by the length field:
/// a first `u16` of 26 or more can only be an ANSI short length; a non-zero value below that can only be the high
/// half of an ISO length; zero is an ISO length (second `u16` >= 24) or an ANSI long length. `"030\0"` is shared by
/// ISO 19794-2:2011 and ANSI 378-2009: ISO if the representation lengths, each at least the smallest
/// representation, add up with the 15-byte header to exactly the record length; ANSI otherwise. `"035\0"` is ANSI
/// 378-2009/AM1-2010. `None` if the record does not start with `"FMR\0"` and one of these versions.
pub fn detect_format(bytes: &[u8]) -> Option<TemplateFormat> {
    if bytes.get(..4)? != MAGIC {
        return None;
    }
    let version = bytes.get(4..8)?;
    if version == VERSION_30 {
        return Some(if looks_like_iso2011(bytes) {
            TemplateFormat::Iso19794_2_2011
        } else {
            TemplateFormat::Ansi378_2009
        });
    }
    if version == VERSION_35 {
        return Some(TemplateFormat::Ansi378_2009);
    }
    if version != VERSION_20 {
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

/// Whether a `"030\0"` record's structure is ISO 19794-2:2011's: a certification flag of 0 or 1, and representation
/// lengths (each at least the smallest representation) that chain from offset 15 exactly to the declared record
/// length, which is the input length.
fn looks_like_iso2011(bytes: &[u8]) -> bool {
    let u32_at = |at: usize| {
        bytes
            .get(at..at.checked_add(4)?)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .and_then(|b| usize::try_from(u32::from_be_bytes(b)).ok())
    };
    let (Some(total), Some(count), Some(&flag)) = (
        u32_at(8),
        bytes
            .get(12..14)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
        bytes.get(14),
    ) else {
        return false;
    };
    if flag > 1 || total != bytes.len() {
        return false;
    }
    let min = iso2011::MIN_REPRESENTATION_BYTES + usize::from(flag);
    let mut at = ISO_2011_HEADER_BYTES;
    for _ in 0..count {
        match u32_at(at) {
            Some(len) if len >= min => match at.checked_add(len) {
                Some(next) if next <= total => at = next,
                _ => return false,
            },
            _ => return false,
        }
    }
    at == total
}

/// Parses a record in any supported format, chosen by [`detect_format`]. Input that is none fails like
/// [`parse_iso19794_2`] would (size limit, format id or version error).
pub fn parse_minutiae_record(bytes: &[u8]) -> Result<MinutiaeRecord, TemplateError> {
    match detect_format(bytes) {
        Some(TemplateFormat::Ansi378_2004 | TemplateFormat::Ansi378_2009) => parse_ansi378(bytes),
        Some(TemplateFormat::Iso19794_2_2005 | TemplateFormat::Iso19794_2_2011) | None => {
            parse_iso19794_2(bytes)
        }
    }
}

/// Writes `record` in `format`, whatever its [`MinutiaeRecord::format`]: [`encode_iso19794_2_as`] or
/// [`encode_ansi378_as`] with the matching edition. `encode_minutiae_record(&r, r.format)` writes a record back in
/// the format it was read from (ANSI 378-2009/AM1 records are written as 378-2009, version `"030\0"`).
pub fn encode_minutiae_record(
    record: &MinutiaeRecord,
    format: TemplateFormat,
) -> Result<Vec<u8>, TemplateError> {
    match format {
        TemplateFormat::Iso19794_2_2005 => encode_iso19794_2_as(record, IsoVersion::V2005),
        TemplateFormat::Iso19794_2_2011 => encode_iso19794_2_as(record, IsoVersion::V2011),
        TemplateFormat::Ansi378_2004 => encode_ansi378_as(record, AnsiVersion::V2004),
        TemplateFormat::Ansi378_2009 => encode_ansi378_as(record, AnsiVersion::V2009),
    }
}

/// Checks the size limit and format id; returns a cursor just after the version, and the version for the caller
/// to dispatch on (and refuse with [`TemplateError::UnsupportedVersion`] if it knows none).
fn open(bytes: &[u8]) -> Result<(Cursor<'_>, [u8; 4]), TemplateError> {
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
    Ok((cur, version))
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
