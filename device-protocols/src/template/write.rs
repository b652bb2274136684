//! Helpers shared by the record writers: range checks that name the field, the minutia encoding and the 2005 / 2004
//! finger view body.

use super::body::{
    AngleUnit, MAX_COORDINATE, MAX_FINGER_POSITION, MINUTIA_BYTES, iso_to_two_degrees,
};
use super::{FingerView, MAX_TEMPLATE_BYTES, MinutiaKind, MinutiaeRecord, TemplateError};

/// Bytes of a 2005 / 2004 finger view header (position, view / impression, quality, minutia count).
const VIEW_HEADER_BYTES: usize = 4;
/// Bytes of the extended data length field.
pub(crate) const EXTENDED_LENGTH_BYTES: usize = 2;

pub(crate) fn fit_u8(field: String, value: usize, max: usize) -> Result<u8, TemplateError> {
    if value > max {
        return Err(out_of_range(field, value, max));
    }
    u8::try_from(value).map_err(|_| out_of_range(field, value, max))
}

pub(crate) fn out_of_range(field: String, value: usize, max: usize) -> TemplateError {
    TemplateError::ValueOutOfRange { field, value, max }
}

/// Refuses a record longer than [`MAX_TEMPLATE_BYTES`]; returns the length as the `u32` to write.
pub(crate) fn record_length(length: usize) -> Result<u32, TemplateError> {
    if length > MAX_TEMPLATE_BYTES {
        return Err(out_of_range(
            "record length".to_owned(),
            length,
            MAX_TEMPLATE_BYTES,
        ));
    }
    u32::try_from(length)
        .map_err(|_| out_of_range("record length".to_owned(), length, MAX_TEMPLATE_BYTES))
}

/// Writes image width, height and x / y resolution (pixels per cm), each a big-endian `u16`: the same four
/// fields, in this order, in every edition's record or view header.
pub(crate) fn write_geometry(out: &mut Vec<u8>, record: &MinutiaeRecord) {
    for value in [
        record.width,
        record.height,
        record.x_resolution_ppcm,
        record.y_resolution_ppcm,
    ] {
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// The number of views as a `u8`.
pub(crate) fn view_count(record: &MinutiaeRecord) -> Result<u8, TemplateError> {
    fit_u8(
        "number of finger views".to_owned(),
        record.views.len(),
        usize::from(u8::MAX),
    )
}

/// The finger position code (0..=10).
pub(crate) fn position(index: usize, view: &FingerView) -> Result<u8, TemplateError> {
    fit_u8(
        format!("view {index} finger position"),
        usize::from(view.position),
        usize::from(MAX_FINGER_POSITION),
    )
}

/// The minutia count as a `u8`.
pub(crate) fn minutia_count(index: usize, view: &FingerView) -> Result<u8, TemplateError> {
    fit_u8(
        format!("view {index} number of minutiae"),
        view.minutiae.len(),
        usize::from(u8::MAX),
    )
}

/// Writes the view's minutiae, 6 bytes each: type and x, y, angle (in `unit`), quality.
pub(crate) fn write_minutiae(
    out: &mut Vec<u8>,
    index: usize,
    view: &FingerView,
    unit: AngleUnit,
) -> Result<(), TemplateError> {
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
        let angle = match unit {
            AngleUnit::Iso256 => minutia.angle,
            AngleUnit::TwoDegrees => iso_to_two_degrees(minutia.angle),
        };
        out.extend_from_slice(&((kind << 14) | x).to_be_bytes());
        out.extend_from_slice(&y.to_be_bytes());
        out.extend_from_slice(&[angle, minutia.quality]);
    }
    Ok(())
}

/// Bytes a view takes in the 2005 / 2004 layout (no extended data).
pub(crate) fn view_2005_len(view: &FingerView) -> usize {
    VIEW_HEADER_BYTES + MINUTIA_BYTES * view.minutiae.len() + EXTENDED_LENGTH_BYTES
}

/// Writes a view in the 2005 / 2004 layout with an empty extended data area.
pub(crate) fn write_view_2005(
    out: &mut Vec<u8>,
    index: usize,
    view: &FingerView,
    unit: AngleUnit,
) -> Result<(), TemplateError> {
    let position = position(index, view)?;
    let number = fit_u8(
        format!("view {index} view number"),
        usize::from(view.view_number),
        15,
    )?;
    let impression = fit_u8(
        format!("view {index} impression type"),
        usize::from(view.impression_type),
        15,
    )?;
    let count = minutia_count(index, view)?;
    out.extend_from_slice(&[position, (number << 4) | impression, view.quality, count]);
    write_minutiae(out, index, view, unit)?;
    out.extend_from_slice(&0u16.to_be_bytes());
    Ok(())
}
