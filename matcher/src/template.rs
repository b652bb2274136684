//! The matcher's own minutiae template: positions in 500 ppi pixels (origin top-left, y down as in the image),
//! directions in radians counter-clockwise from the x axis (the ISO 19794-2 convention), so templates from records of
//! any resolution compare directly. The compact binary form is in [`crate::codec`].

use hotspot_device_protocols::template::FingerView;
pub use hotspot_device_protocols::template::MinutiaKind;

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
