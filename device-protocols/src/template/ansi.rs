//! ANSI INCITS 378-2004 finger minutiae record: reader and writer, and the entry points that also read and write
//! the 2009 edition (see `ansi2009.rs`).
//!
//! Header (26 bytes, or 30 with the long length form; big-endian): `"FMR\0"` | `" 20\0"` | record length `u16`
//! (if 0, a `u32` length follows) | CBEFF product identifier `u32` (owner `u16`, type `u16`) | capture equipment
//! `u16` | width `u16` | height `u16` | x resolution `u16` (pixels/cm) | y resolution `u16` | number of finger views
//! `u8` | reserved `u8`; then the finger views (see `body.rs`), whose angles are in 2-degree units (0..=179)
//! and are converted to ISO 2005 units (360/256 degrees), rounding to nearest.

use super::body::{self, AngleUnit};
use super::cursor::Cursor;
use super::{AnsiVersion, MinutiaeRecord, TemplateError, TemplateFormat, ansi2009, write};

/// Bytes in the ANSI 378-2004 record header with the short (2-byte) record length.
pub const ANSI_HEADER_BYTES: usize = 26;
/// Extra bytes taken by the long (6-byte) record length form.
const LONG_LENGTH_EXTRA: usize = 4;

/// Parses an ANSI INCITS 378 finger minutiae record: the 2004 edition (`"FMR\0"` + `" 20\0"`, 2- or 6-byte record
/// length) or the 2009 edition (`"FMR\0"` + `"030\0"`, or `"035\0"` for 378-2009/AM1-2010), chosen by the version
/// field. [`MinutiaeRecord::format`] says which one was read.
///
/// Refuses input above [`super::MAX_TEMPLATE_BYTES`] before reading it. The declared record length must equal the
/// input length. Angles above 179 are refused ([`TemplateError::AngleOutOfRange`]).
pub fn parse_ansi378(bytes: &[u8]) -> Result<MinutiaeRecord, TemplateError> {
    let (cur, version) = super::open(bytes)?;
    match &version {
        super::VERSION_20 => parse_2004(cur, bytes.len()),
        super::VERSION_30 => ansi2009::parse(cur, bytes.len(), true),
        super::VERSION_35 => ansi2009::parse(cur, bytes.len(), false),
        _ => Err(TemplateError::UnsupportedVersion { found: version }),
    }
}

fn parse_2004(mut cur: Cursor<'_>, len: usize) -> Result<MinutiaeRecord, TemplateError> {
    let length_offset = cur.offset();
    let short = cur.u16("record length")?;
    let (declared, header) = if short == 0 {
        let long = cur.u32("record length (long form)")?;
        (
            usize::try_from(long).unwrap_or(usize::MAX),
            ANSI_HEADER_BYTES + LONG_LENGTH_EXTRA,
        )
    } else {
        (usize::from(short), ANSI_HEADER_BYTES)
    };
    super::check_record_length(length_offset, declared, len, header)?;
    let _cbeff_product_id = cur.u32("CBEFF product identifier")?;
    let _capture_equipment = cur.u16("capture equipment")?;
    let width = cur.u16("image width")?;
    let height = cur.u16("image height")?;
    let x_resolution_ppcm = cur.u16("x resolution")?;
    let y_resolution_ppcm = cur.u16("y resolution")?;
    let view_count = cur.u8("number of finger views")?;
    let _reserved = cur.u8("reserved")?;
    let (views, _tolerated) = body::read_views(&mut cur, view_count, AngleUnit::TwoDegrees)?;
    Ok(MinutiaeRecord {
        format: TemplateFormat::Ansi378_2004,
        width,
        height,
        x_resolution_ppcm,
        y_resolution_ppcm,
        views,
    })
}

/// Writes `record` as an ANSI INCITS 378-2004 record (same as [`encode_ansi378_as`] with [`AnsiVersion::V2004`]).
pub fn encode_ansi378(record: &MinutiaeRecord) -> Result<Vec<u8>, TemplateError> {
    encode_ansi378_as(record, AnsiVersion::V2004)
}

/// Writes `record` as an ANSI INCITS 378 record of the chosen edition, whatever its [`MinutiaeRecord::format`].
/// Angles are converted from ISO units to 2-degree units, rounding to nearest (so an angle read from an ANSI record
/// is written back unchanged; an ISO angle moves by at most half a 2-degree step).
///
/// - [`AnsiVersion::V2004`]: 26-byte header (the 6-byte long length form only above 65 535 bytes), CBEFF product
///   identifier and capture equipment 0, no extended data.
/// - [`AnsiVersion::V2009`]: 21-byte header (`"030\0"`), CBEFF product identifier owner `0x0103` ("vendor
///   unknown") and type 0, no device certification, device type 0; each view carries the record's image size and
///   resolution and quality algorithm vendor `0x0103` / algorithm `0x0001`; no extended data. A record without
///   views is refused ([`TemplateError::EmptyRecord`]).
///
/// Fails with [`TemplateError::ValueOutOfRange`] if a count, code or coordinate does not fit its field, or if the
/// record would exceed [`super::MAX_TEMPLATE_BYTES`].
pub fn encode_ansi378_as(
    record: &MinutiaeRecord,
    version: AnsiVersion,
) -> Result<Vec<u8>, TemplateError> {
    match version {
        AnsiVersion::V2004 => encode_2004(record),
        AnsiVersion::V2009 => ansi2009::encode(record),
    }
}

fn encode_2004(record: &MinutiaeRecord) -> Result<Vec<u8>, TemplateError> {
    let view_count = write::view_count(record)?;
    let views: usize = record.views.iter().map(write::view_2005_len).sum();
    let short_length = ANSI_HEADER_BYTES + views;
    let short = u16::try_from(short_length).ok();
    let length = if short.is_some() {
        short_length
    } else {
        short_length + LONG_LENGTH_EXTRA
    };
    let total = write::record_length(length)?;
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(super::MAGIC);
    out.extend_from_slice(super::VERSION_20);
    match short {
        Some(short) => out.extend_from_slice(&short.to_be_bytes()),
        None => {
            out.extend_from_slice(&0u16.to_be_bytes());
            out.extend_from_slice(&total.to_be_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_be_bytes()); // CBEFF product identifier
    out.extend_from_slice(&0u16.to_be_bytes()); // capture equipment
    write::write_geometry(&mut out, record);
    out.extend_from_slice(&[view_count, 0]);
    for (index, view) in record.views.iter().enumerate() {
        write::write_view_2005(&mut out, index, view, AngleUnit::TwoDegrees)?;
    }
    Ok(out)
}
