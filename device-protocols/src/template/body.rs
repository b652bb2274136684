//! The finger view records shared by ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004 (they differ only in the header
//! and in the angle unit).
//!
//! Finger view: `position u8 | view_number:4 impression_type:4 | quality u8 | minutia count u8`, then `count` x 6
//! bytes `type:2 x:14 | reserved:2 y:14 | angle u8 | quality u8` (big-endian), then a `u16` extended data length and
//! that many bytes of extended data blocks (ridge counts, core/delta, vendor data).
//!
//! Extended data is skipped as a whole once its length is bounds-checked; the blocks inside are not walked because
//! writers disagree on whether a block's length counts its own 4-byte header (libbiomeval and ANSI 378 count it,
//! fingerprintio's ISO 2005 writer does not), and nothing here uses their content. Tolerance: an extended data area
//! of the **last** view that runs past the end of the record is skipped without error (seen in the wild: a
//! core/delta area declaring 42 bytes with 41 present). Bytes left after the last view are ignored.

use super::cursor::Cursor;
use super::{FingerView, Minutia, MinutiaKind, TemplateError};

/// Largest finger position code (10 = left little finger).
pub(crate) const MAX_FINGER_POSITION: u8 = 10;
/// Largest value of a 14-bit coordinate.
pub(crate) const MAX_COORDINATE: u16 = 0x3fff;

/// How a record encodes minutia angles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AngleUnit {
    /// ISO 19794-2:2005: 360/256 degrees per unit, 0..=255.
    Iso256,
    /// ANSI 378-2004: 2 degrees per unit, 0..=179.
    TwoDegrees,
}

/// Reads `count` finger views.
pub(crate) fn read_views(
    cur: &mut Cursor<'_>,
    count: u8,
    unit: AngleUnit,
) -> Result<Vec<FingerView>, TemplateError> {
    let count = usize::from(count);
    let mut views = Vec::with_capacity(count);
    for index in 0..count {
        views.push(read_view(cur, index, index + 1 == count, unit)?);
    }
    Ok(views)
}

fn read_view(
    cur: &mut Cursor<'_>,
    index: usize,
    is_last: bool,
    unit: AngleUnit,
) -> Result<FingerView, TemplateError> {
    let position_offset = cur.offset();
    let position = cur.u8("finger position")?;
    if position > MAX_FINGER_POSITION {
        return Err(TemplateError::InvalidFingerPosition {
            view: index,
            offset: position_offset,
            value: position,
        });
    }
    let view_and_impression = cur.u8("view number / impression type")?;
    let quality = cur.u8("finger quality")?;
    let count = usize::from(cur.u8("number of minutiae")?);
    let mut minutiae = Vec::with_capacity(count);
    for m in 0..count {
        minutiae.push(read_minutia(cur, index, m, unit)?);
    }
    skip_extended_data(cur, index, is_last)?;
    Ok(FingerView {
        position,
        view_number: view_and_impression >> 4,
        impression_type: view_and_impression & 0x0f,
        quality,
        minutiae,
    })
}

fn read_minutia(
    cur: &mut Cursor<'_>,
    view: usize,
    minutia: usize,
    unit: AngleUnit,
) -> Result<Minutia, TemplateError> {
    let offset = cur.offset();
    let type_x = cur.u16("minutia type / x")?;
    let y = cur.u16("minutia y")? & MAX_COORDINATE;
    let angle_offset = cur.offset();
    let raw_angle = cur.u8("minutia angle")?;
    let quality = cur.u8("minutia quality")?;
    let kind = match type_x >> 14 {
        0 => MinutiaKind::Other,
        1 => MinutiaKind::RidgeEnding,
        2 => MinutiaKind::Bifurcation,
        _ => {
            return Err(TemplateError::ReservedMinutiaType {
                view,
                minutia,
                offset,
            });
        }
    };
    let angle = match unit {
        AngleUnit::Iso256 => raw_angle,
        AngleUnit::TwoDegrees => {
            two_degrees_to_iso(raw_angle).ok_or(TemplateError::AngleOutOfRange {
                view,
                minutia,
                offset: angle_offset,
                value: raw_angle,
            })?
        }
    };
    Ok(Minutia {
        kind,
        x: type_x & MAX_COORDINATE,
        y,
        angle,
        quality,
    })
}

/// Converts an ANSI 378 angle (2-degree units, 0..=179) to ISO 2005 units (360/256 degrees), rounding to nearest.
pub(crate) fn two_degrees_to_iso(value: u8) -> Option<u8> {
    if value > 179 {
        return None;
    }
    // value * 2 degrees * 256 / 360 degrees, rounded; 179 maps to 255, so the result always fits.
    let iso = (u32::from(value) * 512 + 180) / 360;
    u8::try_from(iso % 256).ok()
}

fn skip_extended_data(
    cur: &mut Cursor<'_>,
    view: usize,
    is_last: bool,
) -> Result<(), TemplateError> {
    let offset = cur.offset();
    let declared = usize::from(cur.u16("extended data length")?);
    let available = cur.remaining();
    if declared <= available {
        cur.take("extended data", declared)?;
    } else if is_last {
        cur.skip_to_end();
    } else {
        return Err(TemplateError::ExtendedDataOverrun {
            view,
            offset,
            declared,
            available,
        });
    }
    Ok(())
}
