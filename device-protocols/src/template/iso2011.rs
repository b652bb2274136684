//! ISO/IEC 19794-2:2011 finger minutiae record (the "off-card" format): reader and writer.
//!
//! All integers big-endian.
//! - General header (15 bytes): `"FMR\0"` | `"030\0"` | record length `u32` | number of finger representations
//!   `u16` | device certification block flag `u8` (0: no certification blocks, 1: each representation has them).
//! - Each finger representation: representation length `u32` (counting itself) | capture date and time (9 bytes:
//!   year `u16`, month, day, hour, minute, second `u8`, millisecond `u16`; `0xff` filled when absent) | capture
//!   device technology `u8` | capture device vendor `u16` | capture device type `u16` | number of quality blocks
//!   `u8`, then 5 bytes each (score `u8`, algorithm vendor `u16`, algorithm `u16`) | if the flag is set: number of
//!   certification blocks `u8`, then 3 bytes each (authority `u16`, scheme `u8`) | finger position `u8` |
//!   representation number `u8` | x and y spatial sampling rate `u16` each (pixels/cm) | impression type `u8` | image
//!   width and height `u16` each | minutia field length (high 4 bits: 5 or 6 bytes) and ridge ending type (low 4
//!   bits) `u8` | number of minutiae `u8` | the minutiae (type:2 x:14 | reserved:2 y:14 | angle `u8` in 360/256
//!   degrees | quality `u8` only in the 6-byte form) | extended data length `u16` and that many bytes of blocks.
//!
//! Mapping onto [`MinutiaeRecord`]: the finger quality is the first quality block's score (0 without blocks); the
//! representation number becomes the view number; minutia quality is 0 in the 5-byte form; the date, device,
//! certification and ridge ending type fields are read and dropped (ridge ending type 1, "ridge skeleton end
//! point", is not converted). The image size and resolution, per representation here, must be the same in every
//! representation ([`TemplateError::ViewGeometryMismatch`] otherwise).

use super::body::{
    self, AngleUnit, Geometry, MINUTIA_BYTES, MINUTIA_BYTES_NO_QUALITY, PlacedGeometry,
};
use super::cursor::Cursor;
use super::write;
use super::{FingerView, MinutiaeRecord, TemplateError, TemplateFormat};

/// Bytes in the ISO 19794-2:2011 general record header.
pub const ISO_2011_HEADER_BYTES: usize = 15;
/// Most finger representations accepted in one record (what the other formats' one-byte view count holds).
pub(crate) const MAX_REPRESENTATIONS: usize = 255;
/// Smallest representation without certification blocks: length, date, device fields, quality block count, the
/// 13 bytes of finger fields and the extended data length (no quality blocks, no minutiae).
pub(crate) const MIN_REPRESENTATION_BYTES: usize = 4 + 9 + 1 + 2 + 2 + 1 + 13 + 2;
/// Bytes of one quality block.
const QUALITY_BLOCK_BYTES: usize = 5;
/// Bytes of one certification block.
const CERTIFICATION_BLOCK_BYTES: usize = 3;
/// Capture date and time field.
const DATE_TIME_BYTES: usize = 9;
/// What the writer puts in its one quality block as algorithm vendor ("vendor unknown" in the IBIA registry) and
/// algorithm.
const UNKNOWN_QUALITY_VENDOR: u16 = 0x0103;
const UNKNOWN_QUALITY_ALGORITHM: u16 = 0x0001;

/// Reads the rest of a 2011 record; `cur` is just after the version.
pub(crate) fn parse(mut cur: Cursor<'_>, len: usize) -> Result<MinutiaeRecord, TemplateError> {
    let length_offset = cur.offset();
    let declared = usize::try_from(cur.u32("record length")?).unwrap_or(usize::MAX);
    super::check_record_length(length_offset, declared, len, ISO_2011_HEADER_BYTES)?;
    let count_offset = cur.offset();
    let count = usize::from(cur.u16("number of finger representations")?);
    if count > MAX_REPRESENTATIONS {
        return Err(TemplateError::CountOutOfRange {
            field: "number of finger representations",
            offset: count_offset,
            value: count,
            max: MAX_REPRESENTATIONS,
        });
    }
    let flag_offset = cur.offset();
    let certification = match cur.u8("device certification block flag")? {
        0 => false,
        1 => true,
        value => {
            return Err(TemplateError::InvalidCode {
                field: "device certification block flag",
                offset: flag_offset,
                value,
            });
        }
    };
    let min = MIN_REPRESENTATION_BYTES + usize::from(certification);
    // Each representation takes at least `min` bytes, so the input bounds the allocation whatever `count` says.
    let capacity = count.min(cur.remaining() / min);
    let mut views = Vec::with_capacity(capacity);
    let mut geometries = Vec::with_capacity(capacity);
    for index in 0..count {
        let offset = cur.offset();
        let declared = usize::try_from(cur.u32("representation length")?).unwrap_or(usize::MAX);
        let available = cur.remaining() + 4;
        if declared < min || declared > available {
            return Err(TemplateError::RepresentationLength {
                view: index,
                offset,
                declared,
                available,
                min,
            });
        }
        let mut rep = cur.split("finger representation", declared - 4)?;
        let (view, geometry) =
            read_representation(&mut rep, index, index + 1 == count, certification)?;
        views.push(view);
        geometries.push(geometry);
    }
    if cur.remaining() > 0 {
        return Err(TemplateError::TrailingData {
            offset: cur.offset(),
            len: cur.remaining(),
        });
    }
    let geometry = body::common_geometry(&geometries)?;
    Ok(MinutiaeRecord {
        format: TemplateFormat::Iso19794_2_2011,
        width: geometry.width,
        height: geometry.height,
        x_resolution_ppcm: geometry.x_resolution_ppcm,
        y_resolution_ppcm: geometry.y_resolution_ppcm,
        views,
    })
}

/// Reads one representation after its length field; `rep` ends where the representation ends. Bytes left in the
/// representation after its extended data are ignored.
fn read_representation(
    rep: &mut Cursor<'_>,
    index: usize,
    is_last: bool,
    certification: bool,
) -> Result<(FingerView, PlacedGeometry), TemplateError> {
    let _date_time = rep.take("capture date and time", DATE_TIME_BYTES)?;
    let _technology = rep.u8("capture device technology")?;
    let _vendor = rep.u16("capture device vendor")?;
    let _device_type = rep.u16("capture device type")?;
    let quality_blocks = rep.u8("number of quality blocks")?;
    let mut quality = None;
    for _ in 0..quality_blocks {
        let block = rep.array::<QUALITY_BLOCK_BYTES>("quality block")?;
        quality = quality.or(Some(block[0]));
    }
    if certification {
        let blocks = rep.u8("number of certification blocks")?;
        for _ in 0..blocks {
            rep.take("certification block", CERTIFICATION_BLOCK_BYTES)?;
        }
    }
    let position = body::read_position(rep, index)?;
    let view_number = rep.u8("representation number")?;
    let x_res_offset = rep.offset();
    let x_resolution_ppcm = rep.u16("x resolution")?;
    let y_res_offset = rep.offset();
    let y_resolution_ppcm = rep.u16("y resolution")?;
    let impression_type = rep.u8("impression type")?;
    let width_offset = rep.offset();
    let width = rep.u16("image width")?;
    let height_offset = rep.offset();
    let height = rep.u16("image height")?;
    let field_offset = rep.offset();
    let field = rep.u8("minutia field length / ridge ending type")?;
    let size = usize::from(field >> 4);
    if size != MINUTIA_BYTES && size != MINUTIA_BYTES_NO_QUALITY {
        return Err(TemplateError::InvalidCode {
            field: "minutia field length",
            offset: field_offset,
            value: field >> 4,
        });
    }
    let count = rep.u8("number of minutiae")?;
    let minutiae = body::read_minutiae(rep, index, count, AngleUnit::Iso256, size)?;
    let _tolerated = body::skip_extended_data(rep, index, is_last)?;
    let view = FingerView {
        position,
        view_number,
        impression_type,
        quality: quality.unwrap_or(0),
        minutiae,
    };
    let geometry = Geometry {
        width,
        height,
        x_resolution_ppcm,
        y_resolution_ppcm,
    };
    Ok((
        view,
        (
            geometry,
            [width_offset, height_offset, x_res_offset, y_res_offset],
        ),
    ))
}

/// Bytes of a representation as the writer lays it out (one quality block, no certification blocks, 6-byte
/// minutiae, no extended data).
fn representation_len(view: &FingerView) -> usize {
    MIN_REPRESENTATION_BYTES + QUALITY_BLOCK_BYTES + MINUTIA_BYTES * view.minutiae.len()
}

/// Writes `record` as a 2011 record (see [`super::encode_iso19794_2_as`]).
pub(crate) fn encode(record: &MinutiaeRecord) -> Result<Vec<u8>, TemplateError> {
    if record.views.is_empty() {
        return Err(TemplateError::EmptyRecord {
            format: TemplateFormat::Iso19794_2_2011,
        });
    }
    let count = write::view_count(record)?;
    let length = ISO_2011_HEADER_BYTES + record.views.iter().map(representation_len).sum::<usize>();
    let total = write::record_length(length)?;
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(super::MAGIC);
    out.extend_from_slice(super::VERSION_30);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&u16::from(count).to_be_bytes());
    out.push(0); // no certification blocks
    for (index, view) in record.views.iter().enumerate() {
        write_representation(&mut out, index, view, record)?;
    }
    Ok(out)
}

fn write_representation(
    out: &mut Vec<u8>,
    index: usize,
    view: &FingerView,
    record: &MinutiaeRecord,
) -> Result<(), TemplateError> {
    let position = write::position(index, view)?;
    let count = write::minutia_count(index, view)?;
    // Below the record length, which fits a u32.
    let length = write::record_length(representation_len(view))?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&[0xff; DATE_TIME_BYTES]); // no capture date and time
    out.push(0); // capture device technology: unknown
    out.extend_from_slice(&0u16.to_be_bytes()); // capture device vendor: unknown
    out.extend_from_slice(&0u16.to_be_bytes()); // capture device type: unknown
    out.push(1); // one quality block
    out.push(view.quality);
    out.extend_from_slice(&UNKNOWN_QUALITY_VENDOR.to_be_bytes());
    out.extend_from_slice(&UNKNOWN_QUALITY_ALGORITHM.to_be_bytes());
    out.extend_from_slice(&[position, view.view_number]);
    out.extend_from_slice(&record.x_resolution_ppcm.to_be_bytes());
    out.extend_from_slice(&record.y_resolution_ppcm.to_be_bytes());
    out.push(view.impression_type);
    out.extend_from_slice(&record.width.to_be_bytes());
    out.extend_from_slice(&record.height.to_be_bytes());
    // 6-byte minutiae (with quality), ridge ending type 0 (valley skeleton bifurcation, as in the 2005 edition).
    let field = u8::try_from(MINUTIA_BYTES << 4).unwrap_or(0x60);
    out.extend_from_slice(&[field, count]);
    write::write_minutiae(out, index, view, AngleUnit::Iso256)?;
    out.extend_from_slice(&0u16.to_be_bytes());
    Ok(())
}
