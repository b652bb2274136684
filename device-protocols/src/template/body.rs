//! The finger view records shared by ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004 (they differ only in the header
//! and in the angle unit), and the minutia and extended data parts that the 2011 / 2009 editions share with them.
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

/// Bytes per minutia in the 2005 / 2004 editions, in ANSI 378-2009 and in ISO 19794-2:2011 with minutia quality.
pub(crate) const MINUTIA_BYTES: usize = 6;
/// Bytes per minutia in ISO 19794-2:2011 without minutia quality.
pub(crate) const MINUTIA_BYTES_NO_QUALITY: usize = 5;

/// Largest finger position code (10 = left little finger).
pub(crate) const MAX_FINGER_POSITION: u8 = 10;
/// Largest value of a 14-bit coordinate.
pub(crate) const MAX_COORDINATE: u16 = 0x3fff;

/// How a record encodes minutia angles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AngleUnit {
    /// ISO 19794-2 (2005 and 2011): 360/256 degrees per unit, 0..=255.
    Iso256,
    /// ANSI 378 (2004 and 2009): 2 degrees per unit, 0..=179.
    TwoDegrees,
}

/// Reads `count` finger views (2005 / 2004 layout). Returns the views and whether a tolerance was used (the last
/// view's extended data ran past the end of the record).
pub(crate) fn read_views(
    cur: &mut Cursor<'_>,
    count: u8,
    unit: AngleUnit,
) -> Result<(Vec<FingerView>, bool), TemplateError> {
    let count = usize::from(count);
    let mut views = Vec::with_capacity(count);
    let mut tolerated = false;
    for index in 0..count {
        let (view, overrun) = read_view(cur, index, index + 1 == count, unit)?;
        tolerated |= overrun;
        views.push(view);
    }
    Ok((views, tolerated))
}

fn read_view(
    cur: &mut Cursor<'_>,
    index: usize,
    is_last: bool,
    unit: AngleUnit,
) -> Result<(FingerView, bool), TemplateError> {
    let position = read_position(cur, index)?;
    let view_and_impression = cur.u8("view number / impression type")?;
    let quality = cur.u8("finger quality")?;
    let count = cur.u8("number of minutiae")?;
    let minutiae = read_minutiae(cur, index, count, unit, MINUTIA_BYTES)?;
    let overrun = skip_extended_data(cur, index, is_last)?;
    let view = FingerView {
        position,
        view_number: view_and_impression >> 4,
        impression_type: view_and_impression & 0x0f,
        quality,
        minutiae,
    };
    Ok((view, overrun))
}

/// Reads a finger position byte, refusing codes above [`MAX_FINGER_POSITION`].
pub(crate) fn read_position(cur: &mut Cursor<'_>, view: usize) -> Result<u8, TemplateError> {
    let offset = cur.offset();
    let position = cur.u8("finger position")?;
    if position > MAX_FINGER_POSITION {
        return Err(TemplateError::InvalidFingerPosition {
            view,
            offset,
            value: position,
        });
    }
    Ok(position)
}

/// Reads `count` minutiae of `size` bytes each (6: with quality; 5: ISO 2011 without, quality read as 0).
pub(crate) fn read_minutiae(
    cur: &mut Cursor<'_>,
    view: usize,
    count: u8,
    unit: AngleUnit,
    size: usize,
) -> Result<Vec<Minutia>, TemplateError> {
    let count = usize::from(count);
    let mut minutiae = Vec::with_capacity(count);
    for m in 0..count {
        minutiae.push(read_minutia(cur, view, m, unit, size)?);
    }
    Ok(minutiae)
}

fn read_minutia(
    cur: &mut Cursor<'_>,
    view: usize,
    minutia: usize,
    unit: AngleUnit,
    size: usize,
) -> Result<Minutia, TemplateError> {
    let offset = cur.offset();
    let type_x = cur.u16("minutia type / x")?;
    let y = cur.u16("minutia y")? & MAX_COORDINATE;
    let angle_offset = cur.offset();
    let raw_angle = cur.u8("minutia angle")?;
    let quality = if size == MINUTIA_BYTES_NO_QUALITY {
        0
    } else {
        cur.u8("minutia quality")?
    };
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

/// Converts an ISO angle (360/256 degrees) to ANSI 378 2-degree units, rounding to nearest: 0..=255 maps onto
/// 0..=179 (255 = 358.6 degrees becomes 179), and `iso_to_two_degrees(two_degrees_to_iso(a)) == a` for every ANSI
/// angle `a`, so ANSI angles survive a read and a write unchanged.
pub(crate) fn iso_to_two_degrees(value: u8) -> u8 {
    // value * 360 / 256 / 2 = value * 360 / 512, rounded; at most (255 * 360 + 256) / 512 = 179.
    let ansi = (u32::from(value) * 360 + 256) / 512;
    u8::try_from(ansi).unwrap_or(179)
}

/// Reads the `u16` extended data length and skips that many bytes. Returns `true` if the tolerance was used: the
/// area of the last view (`is_last`) ran past the end of `cur` and the rest of `cur` was skipped instead.
pub(crate) fn skip_extended_data(
    cur: &mut Cursor<'_>,
    view: usize,
    is_last: bool,
) -> Result<bool, TemplateError> {
    let offset = cur.offset();
    let declared = usize::from(cur.u16("extended data length")?);
    let available = cur.remaining();
    if declared <= available {
        cur.take("extended data", declared)?;
        Ok(false)
    } else if is_last {
        cur.skip_to_end();
        Ok(true)
    } else {
        Err(TemplateError::ExtendedDataOverrun {
            view,
            offset,
            declared,
            available,
        })
    }
}

/// Image size and resolution as the 2011 / 2009 editions give them per view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) width: u16,
    pub(crate) height: u16,
    pub(crate) x_resolution_ppcm: u16,
    pub(crate) y_resolution_ppcm: u16,
}

/// A view's geometry and the offsets of its four fields (width, height, x and y resolution).
pub(crate) type PlacedGeometry = (Geometry, [usize; 4]);

/// The one geometry of a record whose views each carry one: the first view's (all zero without views); a view
/// that disagrees is refused with [`TemplateError::ViewGeometryMismatch`].
pub(crate) fn common_geometry(views: &[PlacedGeometry]) -> Result<Geometry, TemplateError> {
    let Some(((first, _), rest)) = views.split_first() else {
        return Ok(Geometry {
            width: 0,
            height: 0,
            x_resolution_ppcm: 0,
            y_resolution_ppcm: 0,
        });
    };
    const NAMES: [&str; 4] = [
        "image width",
        "image height",
        "x resolution",
        "y resolution",
    ];
    let values = |g: &Geometry| [g.width, g.height, g.x_resolution_ppcm, g.y_resolution_ppcm];
    let firsts = values(first);
    for (i, (geometry, offsets)) in rest.iter().enumerate() {
        for (((name, value), first), offset) in
            NAMES.iter().zip(values(geometry)).zip(firsts).zip(offsets)
        {
            if value != first {
                return Err(TemplateError::ViewGeometryMismatch {
                    view: i + 1,
                    offset: *offset,
                    field: name,
                    value,
                    first,
                });
            }
        }
    }
    Ok(*first)
}
