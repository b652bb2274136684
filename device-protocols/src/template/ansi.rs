//! ANSI INCITS 378-2004 finger minutiae record: reader.
//!
//! Header (26 bytes, or 30 with the long length form; big-endian): `"FMR\0"` | `" 20\0"` | record length `u16`
//! (if 0, a `u32` length follows) | CBEFF product identifier `u32` (owner `u16`, type `u16`) | capture equipment
//! `u16` | width `u16` | height `u16` | x resolution `u16` (pixels/cm) | y resolution `u16` | number of finger views
//! `u8` | reserved `u8`; then the finger views (see `body.rs`), whose angles are in 2-degree units (0..=179)
//! and are converted to ISO 2005 units (360/256 degrees), rounding to nearest.

use super::body::{self, AngleUnit};
use super::{MinutiaeRecord, TemplateError, TemplateFormat};

/// Bytes in the ANSI 378-2004 record header with the short (2-byte) record length.
pub const ANSI_HEADER_BYTES: usize = 26;
/// Extra bytes taken by the long (6-byte) record length form.
const LONG_LENGTH_EXTRA: usize = 4;

/// Parses an ANSI INCITS 378-2004 finger minutiae record (`"FMR\0"` + `" 20\0"`, 2- or 6-byte record length).
///
/// Refuses input above [`super::MAX_TEMPLATE_BYTES`] before reading it. The declared record length must equal the
/// input length. Angles above 179 are refused ([`TemplateError::AngleOutOfRange`]).
pub fn parse_ansi378(bytes: &[u8]) -> Result<MinutiaeRecord, TemplateError> {
    let mut cur = super::open(bytes)?;
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
    super::check_record_length(length_offset, declared, bytes.len(), header)?;
    let _cbeff_product_id = cur.u32("CBEFF product identifier")?;
    let _capture_equipment = cur.u16("capture equipment")?;
    let width = cur.u16("image width")?;
    let height = cur.u16("image height")?;
    let x_resolution_ppcm = cur.u16("x resolution")?;
    let y_resolution_ppcm = cur.u16("y resolution")?;
    let view_count = cur.u8("number of finger views")?;
    let _reserved = cur.u8("reserved")?;
    let views = body::read_views(&mut cur, view_count, AngleUnit::TwoDegrees)?;
    Ok(MinutiaeRecord {
        format: TemplateFormat::Ansi378_2004,
        width,
        height,
        x_resolution_ppcm,
        y_resolution_ppcm,
        views,
    })
}
