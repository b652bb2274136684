//! Tests of the image codecs on the shared WSQ set and on generated images.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;
use std::path::PathBuf;

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/data not found");
        None
    }
}

fn gradient(width: u32, height: u32) -> GrayImage {
    let pixels = (0..width * height)
        .map(|i| ((i % width) * 3 + (i / width) * 5) as u8)
        .collect();
    GrayImage {
        width,
        height,
        ppi: Some(500),
        pixels,
    }
}

#[test]
fn wsq_set_decodes_pixel_identical_to_reference_pngs() {
    let Some(dir) = data_dir() else { return };
    let mut names: Vec<String> = (1..=14).map(|n| format!("fp-{n}")).collect();
    names.push("sample".into());
    for name in names {
        let wsq = std::fs::read(dir.join(format!("wsq/{name}.wsq"))).unwrap();
        let png = std::fs::read(dir.join(format!("wsq/{name}.png"))).unwrap();
        let decoded = decode_wsq(&wsq).unwrap();
        let reference = decode_gray(&png).unwrap();
        assert_eq!(
            (decoded.width, decoded.height),
            (reference.width, reference.height),
            "{name}"
        );
        assert_eq!(
            decoded.pixels.len(),
            (decoded.width * decoded.height) as usize
        );
        assert!(
            decoded.pixels == reference.pixels,
            "{name}: pixels differ from the reference PNG"
        );
        assert_eq!(
            encoded_dimensions(&wsq),
            Some((decoded.width, decoded.height))
        );
    }
}

#[test]
fn libbiomeval_wsq_is_256_square() {
    let Some(dir) = data_dir() else { return };
    let wsq = std::fs::read(dir.join("wsq/libbiomeval-img.wsq")).unwrap();
    let image = decode_finger_image(FingerFormat::Wsq, &wsq).unwrap();
    assert_eq!((image.width, image.height), (256, 256));
}

#[test]
fn fvc_tiff_decodes_through_the_finger_entry_point() {
    let Some(dir) = data_dir() else { return };
    let tif = std::fs::read(dir.join("fingerprints/fvc2002/DB1_B/101_1.tif")).unwrap();
    let image = decode_finger_image(FingerFormat::Tiff, &tif).unwrap();
    assert!(image.width > 100 && image.height > 100);
    assert_eq!(image.pixels.len(), (image.width * image.height) as usize);
    assert_eq!(image.ppi, None, "TIFF density is not trusted");
    assert!(image.pixels.iter().any(|&p| p < 128) && image.pixels.iter().any(|&p| p > 128));
}

#[test]
fn templates_are_not_images() {
    assert_eq!(
        decode_finger_image(FingerFormat::Iso19794_2, b"FMR\0"),
        Err(ImageError::NotAnImage("iso19794-2"))
    );
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![0u8; MAX_ENCODED_BYTES + 1];
    for result in [
        decode_wsq(&big),
        decode_finger_image(FingerFormat::Png, &big),
    ] {
        assert!(
            matches!(result, Err(ImageError::TooLarge { .. })),
            "{result:?}"
        );
    }
}

#[test]
fn wsq_header_above_the_dimension_limit_is_refused() {
    let wsq = encode_wsq(&gradient(128, 96), 0.75).unwrap();
    // Frame header SOF (FF A2): length u16, black u8, white u8, height u16, width u16.
    let sof = wsq.windows(2).position(|w| w == [0xff, 0xa2]).unwrap();
    let mut patched = wsq.clone();
    patched[sof + 6..sof + 8].copy_from_slice(&5000u16.to_be_bytes());
    let err = decode_wsq(&patched).unwrap_err();
    assert!(
        matches!(err, ImageError::BadDimensions { height: 5000, .. }),
        "{err:?}"
    );
}

#[test]
fn png_header_above_the_dimension_limit_is_refused() {
    let mut png = encode_png(&gradient(8, 8)).unwrap();
    // IHDR data starts at 16: width u32, height u32; its CRC covers bytes 12..29 and sits at 29..33.
    png[16..20].copy_from_slice(&5000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let err = decode_finger_image(FingerFormat::Png, &png).unwrap_err();
    assert!(
        matches!(err, ImageError::BadDimensions { width: 5000, .. }),
        "{err:?}"
    );
}

#[test]
fn wrong_signature_names_the_format() {
    let err = decode_wsq(b"\x89PNG....").unwrap_err();
    assert!(
        matches!(err, ImageError::BadSignature { format: "WSQ", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("offset 0"));
}

#[test]
fn pixel_count_mismatch_is_refused_by_encoders() {
    let mut image = gradient(100, 100);
    image.pixels.pop();
    assert!(matches!(
        encode_png(&image),
        Err(ImageError::PixelCount { .. })
    ));
    assert!(matches!(
        encode_wsq(&image, 0.75),
        Err(ImageError::PixelCount { .. })
    ));
}

#[test]
fn wsq_round_trip_keeps_size_and_ppi_and_stays_close() {
    let image = gradient(200, 150);
    let wsq = encode_wsq(&image, 2.25).unwrap();
    let back = decode_wsq(&wsq).unwrap();
    assert_eq!((back.width, back.height, back.ppi), (200, 150, Some(500)));
    let mean_error: f64 = image
        .pixels
        .iter()
        .zip(&back.pixels)
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / image.pixels.len() as f64;
    assert!(mean_error < 4.0, "mean error {mean_error}");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn png_write_then_read_is_identity(width in 1u32..40, height in 1u32..40, seed in any::<u8>()) {
        let pixels = (0..width * height).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let image = GrayImage { width, height, ppi: None, pixels };
        let back = decode_finger_image(FingerFormat::Png, &encode_png(&image).unwrap()).unwrap();
        prop_assert_eq!(back, image);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_wsq(&bytes);
        let _ = decode_gray(&bytes);
        let _ = encoded_dimensions(&bytes);
        for format in [FingerFormat::Wsq, FingerFormat::Png, FingerFormat::Tiff] {
            let _ = decode_finger_image(format, &bytes);
        }
    }

    #[test]
    fn corrupted_wsq_never_panics(position in 0usize..4000, value in any::<u8>()) {
        let wsq = encode_wsq(&gradient(96, 96), 0.75).unwrap();
        let mut bad = wsq.clone();
        let at = position % bad.len();
        bad[at] = value;
        let _ = decode_wsq(&bad);
    }
}
