//! Synthetic fingerprints as ISO/IEC 19794-2 minutiae records, for the demo, tests and benchmarks.
//!
//! A "finger" is a random, evenly spread set of minutiae; an "impression" of it is what a second capture of the
//! same finger looks like to a matcher: rotated, shifted, jittered, with some minutiae missed and a few spurious
//! ones added. Nothing here claims to look like a real fingerprint image; it exercises the template path.

use std::f32::consts::TAU;

use hotspot_device_protocols::template::{
    FingerView, Minutia, MinutiaKind, MinutiaeRecord, TemplateError, TemplateFormat,
    encode_iso19794_2,
};
use rand::Rng;

/// Record width and height in pixels (500 ppi).
const WIDTH: u16 = 500;
const HEIGHT: u16 = 550;

/// A synthetic finger: `(x, y, angle in radians, bifurcation?)`.
#[derive(Debug, Clone)]
pub struct SynthFinger {
    /// Minutiae.
    pub minutiae: Vec<(f32, f32, f32, bool)>,
}

/// A random finger with about 45 minutiae at least 16 px apart.
pub fn random_finger(rng: &mut impl Rng) -> SynthFinger {
    let mut m: Vec<(f32, f32, f32, bool)> = Vec::new();
    let mut attempts = 0;
    while m.len() < 45 && attempts < 5000 {
        attempts += 1;
        let x = rng.random_range(80.0..420.0);
        let y = rng.random_range(80.0..470.0);
        if m.iter().all(|&(a, b, _, _)| (a - x).hypot(b - y) >= 16.0) {
            m.push((x, y, rng.random_range(0.0..TAU), rng.random_bool(0.5)));
        }
    }
    SynthFinger { minutiae: m }
}

/// Another impression of `f`: rotation up to ±12°, shift up to ±20 px, jitter, 20% missed, 4 spurious.
pub fn impression(f: &SynthFinger, rng: &mut impl Rng) -> SynthFinger {
    let rot: f32 = rng.random_range(-12f32..12.0).to_radians();
    let (dx, dy) = (rng.random_range(-20.0..20.0), rng.random_range(-20.0..20.0));
    let (cx, cy) = (250.0, 275.0);
    let (s, c) = rot.sin_cos();
    let mut out: Vec<(f32, f32, f32, bool)> = Vec::with_capacity(f.minutiae.len() + 4);
    for &(x, y, a, k) in &f.minutiae {
        if !rng.random_bool(0.8) {
            continue;
        }
        let (rx, ry) = (x - cx, y - cy);
        let nx = cx + rx * c - ry * s + dx + rng.random_range(-3.0..3.0);
        let ny = cy + rx * s + ry * c + dy + rng.random_range(-3.0..3.0);
        let na = (a + rot + rng.random_range(-0.12..0.12)).rem_euclid(TAU);
        out.push((nx, ny, na, k));
    }
    for _ in 0..4 {
        out.push((
            rng.random_range(80.0..420.0),
            rng.random_range(80.0..470.0),
            rng.random_range(0.0..TAU),
            rng.random_bool(0.5),
        ));
    }
    SynthFinger { minutiae: out }
}

/// Encodes a finger as an ISO/IEC 19794-2:2005 record at 500 ppi. Synthetic angles are measured in pixel
/// coordinates (y down); the standard counts counter-clockwise as seen on the image (y up), hence the negation.
pub fn to_iso(f: &SynthFinger, position: u8) -> Result<Vec<u8>, TemplateError> {
    let minutiae = f
        .minutiae
        .iter()
        .map(|&(x, y, a, bif)| Minutia {
            kind: if bif {
                MinutiaKind::Bifurcation
            } else {
                MinutiaKind::RidgeEnding
            },
            x: x.clamp(0.0, f32::from(WIDTH - 1)) as u16,
            y: y.clamp(0.0, f32::from(HEIGHT - 1)) as u16,
            angle: ((-a / TAU * 256.0).round() as i32).rem_euclid(256) as u8,
            quality: 60,
        })
        .collect();
    encode_iso19794_2(&MinutiaeRecord {
        format: TemplateFormat::Iso19794_2_2005,
        width: WIDTH,
        height: HEIGHT,
        x_resolution_ppcm: 197,
        y_resolution_ppcm: 197,
        views: vec![FingerView {
            position,
            view_number: 0,
            impression_type: 0,
            quality: 60,
            minutiae,
        }],
    })
}
