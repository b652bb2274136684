//! ISO/IEC 19794-2:2005 finger minutiae record: reader and writer.
//!
//! Header (24 bytes, big-endian): `"FMR\0"` | `" 20\0"` | record length `u32` | capture equipment `u16` (4 bits
//! compliance, 12 bits id) | width `u16` | height `u16` | x resolution `u16` (pixels/cm) | y resolution `u16` |
//! number of finger views `u8` | reserved `u8`; then the finger views (see `body.rs`).

use super::body::{self, AngleUnit, MAX_COORDINATE, MAX_FINGER_POSITION};
use super::{
    FingerView, MAX_TEMPLATE_BYTES, MinutiaKind, MinutiaeRecord, TemplateError, TemplateFormat,
};

/// Bytes in the ISO 19794-2:2005 record header.
pub const ISO_HEADER_BYTES: usize = 24;
const VIEW_HEADER_BYTES: usize = 4;
const MINUTIA_BYTES: usize = 6;
const EXTENDED_LENGTH_BYTES: usize = 2;

/// Parses an ISO/IEC 19794-2:2005 finger minutiae record (`"FMR\0"` + `" 20\0"`, 4-byte record length).
///
/// Refuses input above [`MAX_TEMPLATE_BYTES`] before reading it. The declared record length must equal the input
/// length. Extended data is bounds-checked and skipped (see the [module docs](super) for the tolerated quirks).
pub fn parse_iso19794_2(bytes: &[u8]) -> Result<MinutiaeRecord, TemplateError> {
    let mut cur = super::open(bytes)?;
    let length_offset = cur.offset();
    let declared = usize::try_from(cur.u32("record length")?).unwrap_or(usize::MAX);
    super::check_record_length(length_offset, declared, bytes.len(), ISO_HEADER_BYTES)?;
    let _capture_equipment = cur.u16("capture equipment")?;
    let width = cur.u16("image width")?;
    let height = cur.u16("image height")?;
    let x_resolution_ppcm = cur.u16("x resolution")?;
    let y_resolution_ppcm = cur.u16("y resolution")?;
    let view_count = cur.u8("number of finger views")?;
    let _reserved = cur.u8("reserved")?;
    let views = body::read_views(&mut cur, view_count, AngleUnit::Iso256)?;
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
///
/// Fails with [`TemplateError::ValueOutOfRange`] if a count, code or coordinate does not fit its field, or if the
/// record would exceed [`MAX_TEMPLATE_BYTES`].
pub fn encode_iso19794_2(record: &MinutiaeRecord) -> Result<Vec<u8>, TemplateError> {
    let view_count = fit_u8(
        "number of finger views".to_owned(),
        record.views.len(),
        usize::from(u8::MAX),
    )?;
    let length = encoded_length(record);
    if length > MAX_TEMPLATE_BYTES {
        return Err(out_of_range(
            "record length".to_owned(),
            length,
            MAX_TEMPLATE_BYTES,
        ));
    }
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(super::MAGIC);
    out.extend_from_slice(super::VERSION_20);
    // length <= MAX_TEMPLATE_BYTES, so it fits a u32.
    out.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for value in [
        record.width,
        record.height,
        record.x_resolution_ppcm,
        record.y_resolution_ppcm,
    ] {
        out.extend_from_slice(&value.to_be_bytes());
    }
    out.extend_from_slice(&[view_count, 0]);
    for (index, view) in record.views.iter().enumerate() {
        write_view(&mut out, index, view)?;
    }
    Ok(out)
}

fn encoded_length(record: &MinutiaeRecord) -> usize {
    let views: usize = record
        .views
        .iter()
        .map(|v| VIEW_HEADER_BYTES + MINUTIA_BYTES * v.minutiae.len() + EXTENDED_LENGTH_BYTES)
        .sum();
    ISO_HEADER_BYTES + views
}

fn write_view(out: &mut Vec<u8>, index: usize, view: &FingerView) -> Result<(), TemplateError> {
    let field = |name: &str| format!("view {index} {name}");
    let position = fit_u8(
        field("finger position"),
        usize::from(view.position),
        usize::from(MAX_FINGER_POSITION),
    )?;
    let number = fit_u8(field("view number"), usize::from(view.view_number), 15)?;
    let impression = fit_u8(
        field("impression type"),
        usize::from(view.impression_type),
        15,
    )?;
    let count = fit_u8(
        field("number of minutiae"),
        view.minutiae.len(),
        usize::from(u8::MAX),
    )?;
    out.extend_from_slice(&[position, (number << 4) | impression, view.quality, count]);
    for (m, minutia) in view.minutiae.iter().enumerate() {
        let coordinate = |name: &str, value: u16| {
            if value > MAX_COORDINATE {
                Err(out_of_range(
                    format!("view {index} minutia {m} {name}"),
                    usize::from(value),
                    usize::from(MAX_COORDINATE),
                ))
            } else {
                Ok(value)
            }
        };
        let x = coordinate("x", minutia.x)?;
        let y = coordinate("y", minutia.y)?;
        let kind: u16 = match minutia.kind {
            MinutiaKind::Other => 0,
            MinutiaKind::RidgeEnding => 1,
            MinutiaKind::Bifurcation => 2,
        };
        out.extend_from_slice(&((kind << 14) | x).to_be_bytes());
        out.extend_from_slice(&y.to_be_bytes());
        out.extend_from_slice(&[minutia.angle, minutia.quality]);
    }
    out.extend_from_slice(&0u16.to_be_bytes());
    Ok(())
}

fn fit_u8(field: String, value: usize, max: usize) -> Result<u8, TemplateError> {
    if value > max {
        return Err(out_of_range(field, value, max));
    }
    u8::try_from(value).map_err(|_| out_of_range(field, value, max))
}

fn out_of_range(field: String, value: usize, max: usize) -> TemplateError {
    TemplateError::ValueOutOfRange { field, value, max }
}
