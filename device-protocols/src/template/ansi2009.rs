//! ANSI INCITS 378-2009 finger minutiae record (and 378-2009/AM1-2010, same layout): reader and writer.
//!
//! All integers big-endian.
//! - Header (21 bytes): `"FMR\0"` | `"030\0"` (AM1: `"035\0"`) | record length `u32` | CBEFF product identifier
//!   `u32` (owner `u16`, type `u16`) | capture device certification `u8` (bit flags) | capture device type `u16` |
//!   number of finger views `u8` | reserved `u8`.
//! - Each finger view: position `u8` | view number `u8` | impression type `u8` | finger quality `u8` | quality
//!   algorithm vendor `u16` | quality algorithm `u16` | image width and height `u16` each | x and y resolution `u16`
//!   each (pixels/cm) | number of minutiae `u8` | 6 bytes per minutia as in 2004 (angle in 2-degree units,
//!   0..=179) | extended data length `u16` and that many bytes of blocks.
//!
//! Also read, for `"030\0"` only: the 20-byte header of the draft that preceded the standard (as NIST's libbiomeval
//! reads and writes "ANSI 2007" records): capture equipment compliance (4 bits) and id (12 bits) in one `u16`
//! instead of the certification byte and the device type. The draft layout is used only when the standard one does
//! not read the record exactly (it fails, or the last view's extended data area is cut short) and the draft one
//! does, with at least one view; otherwise the standard layout's result or error stands.
//!
//! The image size and resolution, per view here, must be the same in every view
//! ([`TemplateError::ViewGeometryMismatch`] otherwise); the quality algorithm, certification and device fields are
//! read and dropped. Bytes after the last view are refused ([`TemplateError::TrailingData`]).

use super::body::{self, AngleUnit, Geometry, MINUTIA_BYTES};
use super::cursor::Cursor;
use super::write::{self, EXTENDED_LENGTH_BYTES};
use super::{FingerView, MinutiaeRecord, TemplateError, TemplateFormat};

/// Bytes in the ANSI 378-2009 record header.
pub const ANSI_2009_HEADER_BYTES: usize = 21;
/// Bytes in the header of the pre-standard draft layout.
const DRAFT_HEADER_BYTES: usize = 20;
/// Bytes of a finger view header, up to and including the minutia count.
const VIEW_HEADER_BYTES: usize = 17;
/// CBEFF product identifier owner and quality algorithm vendor written: "vendor unknown" in the IBIA registry.
const UNKNOWN_VENDOR: u16 = 0x0103;
/// Quality algorithm written.
const UNKNOWN_QUALITY_ALGORITHM: u16 = 0x0001;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// INCITS 378-2009: certification byte and 16-bit device type.
    Standard,
    /// The pre-standard draft: one `u16` of compliance and equipment id.
    Draft,
}

/// Reads the rest of a 2009 record; `cur` is just after the version. `draft_allowed`: also try the draft layout.
pub(crate) fn parse(
    cur: Cursor<'_>,
    len: usize,
    draft_allowed: bool,
) -> Result<MinutiaeRecord, TemplateError> {
    let standard = read(cur.clone(), len, Layout::Standard);
    if let Ok((record, false)) = standard {
        return Ok(record);
    }
    if draft_allowed
        && let Ok((record, false)) = read(cur, len, Layout::Draft)
        && !record.views.is_empty()
    {
        return Ok(record);
    }
    standard.map(|(record, _)| record)
}

/// Reads with one header layout; the flag says whether a tolerance was needed (the last view's extended data area
/// running past the end of the record). Bytes after the last view are refused: unlike 2004 records, no 2009
/// writer is known to leave them, and refusing them keeps an ISO 2011 record (same version field) that reached
/// this reader from reading as an empty ANSI one.
fn read(
    mut cur: Cursor<'_>,
    len: usize,
    layout: Layout,
) -> Result<(MinutiaeRecord, bool), TemplateError> {
    let header = match layout {
        Layout::Standard => ANSI_2009_HEADER_BYTES,
        Layout::Draft => DRAFT_HEADER_BYTES,
    };
    let length_offset = cur.offset();
    let declared = usize::try_from(cur.u32("record length")?).unwrap_or(usize::MAX);
    super::check_record_length(length_offset, declared, len, header)?;
    let _cbeff_product_id = cur.u32("CBEFF product identifier")?;
    match layout {
        Layout::Standard => {
            let _certification = cur.u8("capture device certification")?;
            let _device_type = cur.u16("capture device type")?;
        }
        Layout::Draft => {
            let _equipment = cur.u16("capture equipment")?;
        }
    }
    let count = usize::from(cur.u8("number of finger views")?);
    let _reserved = cur.u8("reserved")?;
    let mut views = Vec::with_capacity(count);
    let mut geometries = Vec::with_capacity(count);
    let mut tolerated = false;
    for index in 0..count {
        let position = body::read_position(&mut cur, index)?;
        let view_number = cur.u8("view number")?;
        let impression_type = cur.u8("impression type")?;
        let quality = cur.u8("finger quality")?;
        let _quality_vendor = cur.u16("quality algorithm vendor")?;
        let _quality_algorithm = cur.u16("quality algorithm")?;
        let width_offset = cur.offset();
        let width = cur.u16("image width")?;
        let height_offset = cur.offset();
        let height = cur.u16("image height")?;
        let x_res_offset = cur.offset();
        let x_resolution_ppcm = cur.u16("x resolution")?;
        let y_res_offset = cur.offset();
        let y_resolution_ppcm = cur.u16("y resolution")?;
        let minutia_count = cur.u8("number of minutiae")?;
        let minutiae = body::read_minutiae(
            &mut cur,
            index,
            minutia_count,
            AngleUnit::TwoDegrees,
            MINUTIA_BYTES,
        )?;
        tolerated |= body::skip_extended_data(&mut cur, index, index + 1 == count)?;
        views.push(FingerView {
            position,
            view_number,
            impression_type,
            quality,
            minutiae,
        });
        geometries.push((
            Geometry {
                width,
                height,
                x_resolution_ppcm,
                y_resolution_ppcm,
            },
            [width_offset, height_offset, x_res_offset, y_res_offset],
        ));
    }
    if cur.remaining() > 0 {
        return Err(TemplateError::TrailingData {
            offset: cur.offset(),
            len: cur.remaining(),
        });
    }
    let geometry = body::common_geometry(&geometries)?;
    let record = MinutiaeRecord {
        format: TemplateFormat::Ansi378_2009,
        width: geometry.width,
        height: geometry.height,
        x_resolution_ppcm: geometry.x_resolution_ppcm,
        y_resolution_ppcm: geometry.y_resolution_ppcm,
        views,
    };
    Ok((record, tolerated))
}

fn view_len(view: &FingerView) -> usize {
    VIEW_HEADER_BYTES + MINUTIA_BYTES * view.minutiae.len() + EXTENDED_LENGTH_BYTES
}

/// Writes `record` as a 2009 record (see [`super::encode_ansi378_as`]).
pub(crate) fn encode(record: &MinutiaeRecord) -> Result<Vec<u8>, TemplateError> {
    if record.views.is_empty() {
        return Err(TemplateError::EmptyRecord {
            format: TemplateFormat::Ansi378_2009,
        });
    }
    let count = write::view_count(record)?;
    let length = ANSI_2009_HEADER_BYTES + record.views.iter().map(view_len).sum::<usize>();
    let total = write::record_length(length)?;
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(super::MAGIC);
    out.extend_from_slice(super::VERSION_30);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&UNKNOWN_VENDOR.to_be_bytes()); // CBEFF product identifier owner
    out.extend_from_slice(&0u16.to_be_bytes()); // and type
    out.push(0); // no device certification
    out.extend_from_slice(&0u16.to_be_bytes()); // capture device type: unknown
    out.extend_from_slice(&[count, 0]);
    for (index, view) in record.views.iter().enumerate() {
        let position = write::position(index, view)?;
        let minutia_count = write::minutia_count(index, view)?;
        out.extend_from_slice(&[
            position,
            view.view_number,
            view.impression_type,
            view.quality,
        ]);
        out.extend_from_slice(&UNKNOWN_VENDOR.to_be_bytes());
        out.extend_from_slice(&UNKNOWN_QUALITY_ALGORITHM.to_be_bytes());
        write::write_geometry(&mut out, record);
        out.push(minutia_count);
        write::write_minutiae(&mut out, index, view, AngleUnit::TwoDegrees)?;
        out.extend_from_slice(&0u16.to_be_bytes());
    }
    Ok(out)
}
