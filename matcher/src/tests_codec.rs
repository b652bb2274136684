//! Tests of the template conversion from ISO views and of the compact binary form.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::f32::consts::{PI, TAU};

use hotspot_device_protocols::template::{FingerView, Minutia as IsoMinutia};
use proptest::prelude::*;

use crate::codec::{HEADER_BYTES, MAX_ENCODED_BYTES, TemplateDecodeError};
use crate::template::{MAX_MINUTIAE, Minutia, MinutiaKind, Template};

fn kind_strategy() -> impl Strategy<Value = MinutiaKind> {
    prop_oneof![
        Just(MinutiaKind::Other),
        Just(MinutiaKind::RidgeEnding),
        Just(MinutiaKind::Bifurcation)
    ]
}

fn minutia_strategy() -> impl Strategy<Value = Minutia> {
    (
        0.0f32..16000.0,
        0.0f32..16000.0,
        0.0f32..TAU,
        kind_strategy(),
        any::<u8>(),
    )
        .prop_map(|(x, y, angle, kind, quality)| Minutia {
            x,
            y,
            angle,
            kind,
            quality,
        })
}

/// Smallest difference between two angles, wrapping at 2 pi.
fn angle_gap(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    d.min(TAU - d)
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity_up_to_quantisation(minutiae in prop::collection::vec(minutia_strategy(), 0..80)) {
        let t = Template { minutiae };
        let bytes = t.encode();
        prop_assert_eq!(bytes.len(), HEADER_BYTES + 8 * t.minutiae.len());
        let back = Template::decode(&bytes).unwrap();
        prop_assert_eq!(back.minutiae.len(), t.minutiae.len());
        for (a, b) in t.minutiae.iter().zip(&back.minutiae) {
            prop_assert!((a.x - b.x).abs() <= 0.125 + 1e-3, "x {} -> {}", a.x, b.x);
            prop_assert!((a.y - b.y).abs() <= 0.125 + 1e-3, "y {} -> {}", a.y, b.y);
            prop_assert!(angle_gap(a.angle, b.angle) <= PI / 65536.0 + 1e-5, "angle {} -> {}", a.angle, b.angle);
            prop_assert!((0.0..TAU).contains(&b.angle));
            prop_assert_eq!((a.kind, a.quality), (b.kind, b.quality));
        }
        // A decoded template re-encodes to the same bytes.
        prop_assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn decode_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Template::decode(&bytes);
    }

    #[test]
    fn decode_after_a_valid_header_never_panics(count in 0u16..300, body in prop::collection::vec(any::<u8>(), 0..2100)) {
        let mut bytes = b"HST\x01".to_vec();
        bytes.extend_from_slice(&count.to_be_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(t) = Template::decode(&bytes) {
            prop_assert_eq!(t.minutiae.len(), usize::from(count));
        }
    }
}

#[test]
fn decode_errors_name_the_fault() {
    let good = Template {
        minutiae: vec![Minutia {
            x: 10.0,
            y: 20.0,
            angle: 1.0,
            kind: MinutiaKind::Bifurcation,
            quality: 70,
        }],
    }
    .encode();
    assert_eq!(
        Template::decode(&good[..5]),
        Err(TemplateDecodeError::TooShort { len: 5 })
    );
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(
        Template::decode(&bad),
        Err(TemplateDecodeError::BadMagic { found: *b"XST" })
    );
    let mut bad = good.clone();
    bad[3] = 2;
    assert_eq!(
        Template::decode(&bad),
        Err(TemplateDecodeError::UnsupportedVersion { found: 2 })
    );
    let mut bad = good.clone();
    bad[4..6].copy_from_slice(&256u16.to_be_bytes());
    assert_eq!(
        Template::decode(&bad),
        Err(TemplateDecodeError::TooManyMinutiae { count: 256 })
    );
    assert_eq!(
        Template::decode(&good[..good.len() - 1]),
        Err(TemplateDecodeError::Length {
            count: 1,
            expected: 14,
            actual: 13
        })
    );
    let mut bad = good.clone();
    bad[12] = 3;
    let err = Template::decode(&bad).unwrap_err();
    assert_eq!(
        err,
        TemplateDecodeError::InvalidKind {
            index: 0,
            offset: 12,
            value: 3
        }
    );
    assert!(err.to_string().contains("offset 12"));
    let huge = vec![0u8; MAX_ENCODED_BYTES + 1];
    assert!(matches!(
        Template::decode(&huge),
        Err(TemplateDecodeError::TooLarge { .. })
    ));
}

#[test]
fn encode_saturates_and_wraps_out_of_range_values() {
    let m = |x: f32, y: f32, angle: f32| Minutia {
        x,
        y,
        angle,
        kind: MinutiaKind::Other,
        quality: 0,
    };
    let t = Template {
        minutiae: vec![
            m(f32::NAN, -5.0, -0.5 * PI),
            m(1e9, f32::INFINITY, f32::NAN),
            m(1.0, 2.0, TAU),
        ],
    };
    let back = Template::decode(&t.encode()).unwrap();
    let got: Vec<(f32, f32)> = back.minutiae.iter().map(|m| (m.x, m.y)).collect();
    assert_eq!(got, [(0.0, 0.0), (16383.75, 16383.75), (1.0, 2.0)]);
    assert!(angle_gap(back.minutiae[0].angle, 1.5 * PI) < 1e-4);
    assert_eq!(back.minutiae[1].angle, 0.0);
    assert_eq!(back.minutiae[2].angle, 0.0);

    let many = Template {
        minutiae: vec![m(1.0, 1.0, 0.0); 300],
    };
    assert_eq!(
        Template::decode(&many.encode()).unwrap().minutiae.len(),
        MAX_MINUTIAE
    );
    assert_eq!(
        Template::decode(&Template { minutiae: vec![] }.encode())
            .unwrap()
            .minutiae,
        []
    );
}

#[test]
fn from_view_rescales_to_500_ppi_and_converts_angles() {
    let iso = |x, y, angle| IsoMinutia {
        kind: MinutiaKind::RidgeEnding,
        x,
        y,
        angle,
        quality: 80,
    };
    let view = FingerView {
        position: 2,
        view_number: 0,
        impression_type: 0,
        quality: 70,
        minutiae: vec![iso(100, 50, 64), iso(0, 200, 0), iso(30, 30, 192)],
    };
    let native = Template::from_view(&view, 197, 197);
    assert_eq!((native.minutiae[0].x, native.minutiae[0].y), (100.0, 50.0));
    assert!((native.minutiae[0].angle - PI / 2.0).abs() < 1e-6);
    assert!((native.minutiae[2].angle - 1.5 * PI).abs() < 1e-6);
    assert_eq!(native.minutiae[0].kind, MinutiaKind::RidgeEnding);
    assert_eq!(native.minutiae[0].quality, 80);
    // 0 = not reported: taken as 500 ppi.
    assert_eq!(Template::from_view(&view, 0, 0), native);
    // 250 ppi (98.5 ppcm written as 98 or 99) roughly doubles; x and y scale independently.
    let coarse = Template::from_view(&view, 98, 394);
    assert!((coarse.minutiae[0].x - 100.0 * 197.0 / 98.0).abs() < 1e-3);
    assert!((coarse.minutiae[0].y - 25.0).abs() < 1e-3);
}
