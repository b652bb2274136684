//! ISO/IEC 19794-2:2005 finger minutiae record: reader and writer, and the entry points that also read and write
//! the 2011 edition (see `iso2011.rs`).
//!
//! Header (24 bytes, big-endian): `"FMR\0"` | `" 20\0"` | record length `u32` | capture equipment `u16` (4 bits
//! compliance, 12 bits id) | width `u16` | height `u16` | x resolution `u16` (pixels/cm) | y resolution `u16` |
//! number of finger views `u8` | reserved `u8`; then the finger views (see `body.rs`).

use super::body::{self, AngleUnit};
use super::cursor::Cursor;
use super::{IsoVersion, MinutiaeRecord, TemplateError, TemplateFormat, iso2011, write};

/// Bytes in the ISO 19794-2:2005 record header.
pub const ISO_HEADER_BYTES: usize = 24;

/// Parses an ISO/IEC 19794-2 finger minutiae record: the 2005 edition (`"FMR\0"` + `" 20\0"`, 4-byte record
/// length) or the 2011 edition (`"FMR\0"` + `"030\0"`), chosen by the version field. [`MinutiaeRecord::format`]
/// says which one was read.
///
/// Refuses input above [`super::MAX_TEMPLATE_BYTES`] before reading it. The declared record length must equal the
/// input length. Extended data is bounds-checked and skipped (see the [module docs](super) for the tolerated quirks).
pub fn parse_iso19794_2(bytes: &[u8]) -> Result<MinutiaeRecord, TemplateError> {
    let (cur, version) = super::open(bytes)?;
    match &version {
        super::VERSION_20 => parse_2005(cur, bytes.len()),
        super::VERSION_30 => iso2011::parse(cur, bytes.len()),
        _ => Err(TemplateError::UnsupportedVersion { found: version }),
    }
}

fn parse_2005(mut cur: Cursor<'_>, len: usize) -> Result<MinutiaeRecord, TemplateError> {
    let length_offset = cur.offset();
    let declared = usize::try_from(cur.u32("record length")?).unwrap_or(usize::MAX);
    super::check_record_length(length_offset, declared, len, ISO_HEADER_BYTES)?;
    let _capture_equipment = cur.u16("capture equipment")?;
    let width = cur.u16("image width")?;
    let height = cur.u16("image height")?;
    let x_resolution_ppcm = cur.u16("x resolution")?;
    let y_resolution_ppcm = cur.u16("y resolution")?;
    let view_count = cur.u8("number of finger views")?;
    let _reserved = cur.u8("reserved")?;
    let (views, _tolerated) = body::read_views(&mut cur, view_count, AngleUnit::Iso256)?;
    Ok(MinutiaeRecord {
        format: TemplateFormat::Iso19794_2_2005,
        width,
        height,
        x_resolution_ppcm,
        y_resolution_ppcm,
        views,
    })
}

/// Writes `record` as an ISO/IEC 19794-2:2005 finger minutiae record, whatever its [`MinutiaeRecord::format`]
/// (angles are already in ISO units). Capture equipment is written as 0 (unknown) and no extended data is written.
/// Same as [`encode_iso19794_2_as`] with [`IsoVersion::V2005`].
///
/// Fails with [`TemplateError::ValueOutOfRange`] if a count, code or coordinate does not fit its field, or if the
/// record would exceed [`super::MAX_TEMPLATE_BYTES`].
pub fn encode_iso19794_2(record: &MinutiaeRecord) -> Result<Vec<u8>, TemplateError> {
    encode_iso19794_2_as(record, IsoVersion::V2005)
}

/// Writes `record` as an ISO/IEC 19794-2 record of the chosen edition, whatever its [`MinutiaeRecord::format`].
///
/// - [`IsoVersion::V2005`]: as [`encode_iso19794_2`].
/// - [`IsoVersion::V2011`]: one finger representation per view, each carrying the record's image size and
///   resolution; no capture date (all `0xff`), capture device technology, vendor and type 0 (unknown), one
///   quality block (the view's quality, vendor `0x0103` "unknown", algorithm `0x0001`), no certification blocks,
///   6-byte minutiae (with quality), ridge ending type 0, no extended data. A record without views is refused
///   ([`TemplateError::EmptyRecord`]): the 2011 edition has nowhere to keep its geometry.
///
/// Fails with [`TemplateError::ValueOutOfRange`] if a count, code or coordinate does not fit its field, or if the
/// record would exceed [`super::MAX_TEMPLATE_BYTES`].
pub fn encode_iso19794_2_as(
    record: &MinutiaeRecord,
    version: IsoVersion,
) -> Result<Vec<u8>, TemplateError> {
    match version {
        IsoVersion::V2005 => encode_2005(record),
        IsoVersion::V2011 => iso2011::encode(record),
    }
}

fn encode_2005(record: &MinutiaeRecord) -> Result<Vec<u8>, TemplateError> {
    let view_count = write::view_count(record)?;
    let length = ISO_HEADER_BYTES + record.views.iter().map(write::view_2005_len).sum::<usize>();
    let total = write::record_length(length)?;
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(super::MAGIC);
    out.extend_from_slice(super::VERSION_20);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    write::write_geometry(&mut out, record);
    out.extend_from_slice(&[view_count, 0]);
    for (index, view) in record.views.iter().enumerate() {
        write::write_view_2005(&mut out, index, view, AngleUnit::Iso256)?;
    }
    Ok(out)
}
