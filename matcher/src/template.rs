//! The matcher's own minutiae template: positions in 500 ppi pixels (origin top-left, y down as in the image),
//! directions in radians counter-clockwise from the x axis (the ISO 19794-2 convention), so templates from records of
//! any resolution compare directly. Templates come from images ([`crate::extract`]) or from ISO/IEC 19794-2 and
//! ANSI INCITS 378 records ([`Template::from_view`]), and go out as ISO/IEC 19794-2:2005 records
//! ([`Template::to_iso19794_2`]). The compact binary form is in [`crate::codec`].

use std::f32::consts::TAU;

pub use hotspot_device_protocols::template::MinutiaKind;
use hotspot_device_protocols::template::{
    FingerView, Minutia as RecordMinutia, MinutiaeRecord, TemplateError, TemplateFormat,
    encode_iso19794_2,
};

/// Resolution templates are normalised to: 197 pixels per centimetre (500 ppi).
pub const TARGET_PPCM: f32 = 197.0;
/// Most minutiae a template holds (the ISO record's count is one byte).
pub const MAX_MINUTIAE: usize = 255;

/// One minutia in normalised coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Minutia {
    /// Column in 500 ppi pixels.
    pub x: f32,
    /// Row in 500 ppi pixels (y grows downwards).
    pub y: f32,
    /// radians in [0, 2pi)
    pub angle: f32,
    /// Minutia type.
    pub kind: MinutiaKind,
    /// Quality 0..=100 as reported by the extractor (0 = not reported).
    pub quality: u8,
}

/// A finger's minutiae, coordinates normalised to 500 ppi pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The minutiae (at most [`MAX_MINUTIAE`] are encoded).
    pub minutiae: Vec<Minutia>,
}

impl Template {
    /// Converts one finger view of a decoded record: rescales x and y to 500 ppi (197 pixels/cm; a resolution of 0,
    /// meaning "not reported", is taken as 197) and converts ISO angle units (360/256 degrees) to radians.
    pub fn from_view(
        view: &FingerView,
        x_resolution_ppcm: u16,
        y_resolution_ppcm: u16,
    ) -> Template {
        let scale = |ppcm: u16| {
            if ppcm == 0 {
                1.0
            } else {
                TARGET_PPCM / f32::from(ppcm)
            }
        };
        let (sx, sy) = (scale(x_resolution_ppcm), scale(y_resolution_ppcm));
        let minutiae = view
            .minutiae
            .iter()
            .take(MAX_MINUTIAE)
            .map(|m| Minutia {
                x: f32::from(m.x) * sx,
                y: f32::from(m.y) * sy,
                angle: f32::from(m.angle) * std::f32::consts::TAU / 256.0,
                kind: m.kind,
                quality: m.quality,
            })
            .collect();
        Template { minutiae }
    }
}

impl Template {
    /// The template as one finger view of a 500 ppi record: coordinates rounded (and clamped to the record's
    /// `u16` range, at most 16383 as the standard's 14-bit fields allow), angles in the standard's 360/256-degree
    /// units, at most [`MAX_MINUTIAE`] minutiae.
    pub fn to_view(&self, position: u8) -> FingerView {
        let coordinate = |v: f32| v.round().clamp(0.0, 16383.0) as u16;
        let minutiae = self
            .minutiae
            .iter()
            .take(MAX_MINUTIAE)
            .map(|m| RecordMinutia {
                kind: m.kind,
                x: coordinate(m.x),
                y: coordinate(m.y),
                angle: ((m.angle.rem_euclid(TAU) / TAU * 256.0).round() as u32 % 256) as u8,
                quality: m.quality.min(100),
            })
            .collect();
        FingerView {
            position,
            view_number: 0,
            impression_type: 0,
            quality: 0,
            minutiae,
        }
    }

    /// Encodes the template as an ISO/IEC 19794-2:2005 record at 500 ppi for an image of `width` x `height`
    /// pixels (at 500 ppi) of the finger at `position`.
    pub fn to_iso19794_2(
        &self,
        position: u8,
        width: u16,
        height: u16,
    ) -> Result<Vec<u8>, TemplateError> {
        encode_iso19794_2(&MinutiaeRecord {
            format: TemplateFormat::Iso19794_2_2005,
            width,
            height,
            x_resolution_ppcm: TARGET_PPCM as u16,
            y_resolution_ppcm: TARGET_PPCM as u16,
            views: vec![self.to_view(position)],
        })
    }
}
