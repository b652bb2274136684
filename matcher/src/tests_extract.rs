//! Tests of minutiae extraction: synthetic ridge patterns with known minutiae, real images (determinism,
//! invariance to rotating the image, resolution handling), and malformed or degenerate input (typed errors, never
//! a panic).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::f32::consts::TAU;

use hotspot_device_protocols::image::{GrayImage, decode_gray};
use proptest::prelude::*;

use crate::extract::{ExtractError, extract};
use crate::tests_fvc::{data_dir, sample_path};
use crate::{HIT_THRESHOLD, PreparedTemplate, Template, compare};

fn image(
    width: u32,
    height: u32,
    ppi: Option<u32>,
    mut f: impl FnMut(f32, f32) -> f32,
) -> GrayImage {
    let mut pixels = Vec::with_capacity((width * height) as usize);
    for y in 0..height {
        for x in 0..width {
            pixels.push(f(x as f32, y as f32).clamp(0.0, 255.0) as u8);
        }
    }
    GrayImage {
        width,
        height,
        ppi,
        pixels,
    }
}

/// Ridges of period 9 px inside a disc of radius 130 around (150, 150), with one phase dislocation (a ridge
/// ending meeting a fork) at `(cx, cy)` when `minutia` is set.
fn grating(minutia: Option<(f32, f32)>) -> GrayImage {
    image(300, 300, None, |x, y| {
        if (x - 150.0).hypot(y - 150.0) > 130.0 {
            return 255.0;
        }
        let mut phase = y / 9.0 + 0.1 * (x / 40.0).sin();
        if let Some((cx, cy)) = minutia {
            phase += (y - cy).atan2(x - cx) / TAU;
        }
        128.0 + 100.0 * (TAU * phase).cos()
    })
}

#[test]
fn clean_parallel_ridges_give_no_minutiae_and_a_dislocation_gives_one_at_its_place() {
    let clean = extract(&grating(None)).unwrap();
    assert!(clean.minutiae.len() <= 1, "{:?}", clean.minutiae);
    let (cx, cy) = (140.0, 160.0);
    let one = extract(&grating(Some((cx, cy)))).unwrap();
    let near: Vec<_> = one
        .minutiae
        .iter()
        .filter(|m| (m.x - cx).hypot(m.y - cy) < 10.0)
        .collect();
    assert_eq!(near.len(), 1, "{:?}", one.minutiae);
    assert!(one.minutiae.len() <= 2, "{:?}", one.minutiae);
}

#[test]
fn degenerate_images_are_handled() {
    let blank = image(200, 200, None, |_, _| 255.0);
    assert!(extract(&blank).unwrap().minutiae.is_empty());
    let black = image(200, 200, None, |_, _| 0.0);
    assert!(extract(&black).unwrap().minutiae.is_empty());
    let tiny = image(20, 300, None, |_, _| 128.0);
    assert!(matches!(extract(&tiny), Err(ExtractError::Size { .. })));
    let wrong = GrayImage {
        width: 100,
        height: 100,
        ppi: None,
        pixels: vec![0; 99],
    };
    assert!(matches!(
        extract(&wrong),
        Err(ExtractError::PixelCount { .. })
    ));
    let coarse = image(200, 200, Some(100), |_, _| 0.0);
    assert!(matches!(
        extract(&coarse),
        Err(ExtractError::Resolution(100))
    ));
    // 250 ppi is accepted and upsampled; too small once upsampled is still refused by size, not a panic.
    assert!(extract(&image(100, 100, Some(250), |_, _| 0.0)).is_ok());
    assert!(matches!(
        extract(&image(20, 20, Some(250), |_, _| 0.0)),
        Err(ExtractError::Size { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn arbitrary_images_never_panic(
        width in 1u32..200,
        height in 1u32..200,
        seed in any::<u64>(),
        ppi in prop::option::of(200u32..1200),
    ) {
        let mut state = seed | 1;
        let noise = image(width, height, ppi, |_, _| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 256) as f32
        });
        if let Ok(t) = extract(&noise) {
            prop_assert!(t.minutiae.iter().all(|m| m.x.is_finite() && m.y.is_finite()));
        }
    }
}

fn fvc_image(db: u32, finger: u32, impression: u32) -> Option<GrayImage> {
    let dir = data_dir()?;
    Some(
        decode_gray(&std::fs::read(sample_path(&dir, db, finger, impression, "tif")).unwrap())
            .unwrap(),
    )
}

fn score(a: &Template, b: &Template) -> f32 {
    compare(&PreparedTemplate::new(a), &PreparedTemplate::new(b))
}

/// `image` turned by 90 degrees clockwise.
fn rotated(image: &GrayImage) -> GrayImage {
    let (w, h) = (image.width as usize, image.height as usize);
    let mut pixels = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            // (x, y) -> (h - 1 - y, x) in an image h wide.
            pixels[x * h + (h - 1 - y)] = image.pixels[y * w + x];
        }
    }
    GrayImage {
        width: h as u32,
        height: w as u32,
        ppi: image.ppi,
        pixels,
    }
}

/// `image` with every pixel doubled, stated at 1000 ppi.
fn doubled(image: &GrayImage) -> GrayImage {
    let (w, h) = (image.width as usize, image.height as usize);
    let pixels = (0..2 * h)
        .flat_map(|y| (0..2 * w).map(move |x| (x, y)))
        .map(|(x, y)| image.pixels[(y / 2) * w + x / 2])
        .collect();
    GrayImage {
        width: 2 * w as u32,
        height: 2 * h as u32,
        ppi: Some(1000),
        pixels,
    }
}

#[test]
fn real_images_give_the_same_template_every_time_and_after_rotation() {
    let Some(original) = fvc_image(1, 2, 1) else {
        return;
    };
    let first = extract(&original).unwrap();
    assert_eq!(first, extract(&original).unwrap());
    let turned = extract(&rotated(&original)).unwrap();
    let s = score(&first, &turned);
    eprintln!(
        "{} minutiae; rotated image: {} minutiae, score {s:.1}",
        first.minutiae.len(),
        turned.minutiae.len()
    );
    assert!(s >= HIT_THRESHOLD, "{s}");
    let ratio = turned.minutiae.len() as f32 / first.minutiae.len() as f32;
    assert!((0.75..1.33).contains(&ratio), "{ratio}");
}

#[test]
fn a_1000_ppi_image_gives_a_500_ppi_template() {
    let Some(original) = fvc_image(2, 5, 3) else {
        return;
    };
    let native = extract(&original).unwrap();
    let fine = extract(&doubled(&original)).unwrap();
    let s = score(&native, &fine);
    eprintln!("native vs 1000 ppi copy: score {s:.1}");
    assert!(s >= HIT_THRESHOLD, "{s}");
    // Coordinates are at 500 ppi: both templates cover the same area.
    let extent = |t: &Template| t.minutiae.iter().map(|m| m.x).fold(0.0, f32::max);
    assert!((extent(&fine) - extent(&native)).abs() < 30.0);
}

#[test]
fn mates_from_images_match_and_other_fingers_do_not() {
    let (Some(a), Some(b), Some(c)) = (fvc_image(4, 7, 1), fvc_image(4, 7, 2), fvc_image(4, 8, 1))
    else {
        return;
    };
    let (a, b, c) = (
        extract(&a).unwrap(),
        extract(&b).unwrap(),
        extract(&c).unwrap(),
    );
    let (mate, other) = (score(&a, &b), score(&a, &c));
    eprintln!("mate {mate:.1}, other finger {other:.1}");
    assert!(mate >= HIT_THRESHOLD && other < HIT_THRESHOLD / 2.0);
}
