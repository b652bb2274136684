//! Fuzzes minutiae extraction on arbitrary small images: the first four bytes give width, height and a resolution
//! choice, the rest the pixels. Extraction must give a template or a typed error, never a panic, and every
//! minutia must have finite coordinates inside the image.
//!
//! Run: `cd matcher/fuzz && cargo +nightly fuzz run extract`.
#![no_main]

use hotspot_device_protocols::image::GrayImage;
use hotspot_matcher::extract::extract;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [w, h, ppi, fill, pixels @ ..] = data else {
        return;
    };
    let (width, height) = (u32::from(*w) + 1, u32::from(*h) + 1);
    let n = (width * height) as usize;
    let mut bytes: Vec<u8> = pixels.iter().copied().cycle().take(n).collect();
    bytes.resize(n, *fill);
    let ppi = [None, Some(500), Some(250), Some(1000), Some(100)][usize::from(*ppi % 5)];
    let image = GrayImage {
        width,
        height,
        ppi,
        pixels: bytes,
    };
    if let Ok(template) = extract(&image) {
        let scale = 500.0 / ppi.unwrap_or(500) as f32;
        for m in &template.minutiae {
            assert!(m.x.is_finite() && m.y.is_finite() && m.angle.is_finite());
            assert!(m.x >= 0.0 && m.y >= 0.0);
            assert!(m.x <= width as f32 * scale + 1.0 && m.y <= height as f32 * scale + 1.0);
        }
    }
});
