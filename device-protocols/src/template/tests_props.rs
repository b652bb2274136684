//! Property and unit tests of the record reader and writer on generated records and bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::body::two_degrees_to_iso;
use super::*;

fn minutia() -> impl Strategy<Value = Minutia> {
    (0u8..3, 0u16..=0x3fff, 0u16..=0x3fff, any::<u8>(), 0u8..=100).prop_map(
        |(k, x, y, angle, quality)| Minutia {
            kind: [
                MinutiaKind::Other,
                MinutiaKind::RidgeEnding,
                MinutiaKind::Bifurcation,
            ][usize::from(k)],
            x,
            y,
            angle,
            quality,
        },
    )
}

fn view() -> impl Strategy<Value = FingerView> {
    (
        0u8..=10,
        0u8..16,
        0u8..16,
        0u8..=100,
        prop::collection::vec(minutia(), 0..60),
    )
        .prop_map(
            |(position, view_number, impression_type, quality, minutiae)| FingerView {
                position,
                view_number,
                impression_type,
                quality,
                minutiae,
            },
        )
}

fn record() -> impl Strategy<Value = MinutiaeRecord> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        prop::collection::vec(view(), 0..4),
    )
        .prop_map(
            |(width, height, x_resolution_ppcm, y_resolution_ppcm, views)| MinutiaeRecord {
                format: TemplateFormat::Iso19794_2_2005,
                width,
                height,
                x_resolution_ppcm,
                y_resolution_ppcm,
                views,
            },
        )
}

/// Test-only ANSI 378-2004 writer: the ISO body with ANSI header and angles given in 2-degree units.
fn ansi_bytes(record: &MinutiaeRecord, ansi_angles: &[Vec<u8>]) -> Vec<u8> {
    let iso = encode_iso19794_2(record).unwrap();
    let mut body = iso[ISO_HEADER_BYTES..].to_vec();
    let mut at = 0;
    for (view, angles) in record.views.iter().zip(ansi_angles) {
        at += 4;
        for angle in angles.iter().take(view.minutiae.len()) {
            body[at + 4] = *angle;
            at += 6;
        }
        at += 2;
    }
    let mut out = b"FMR\0 20\0".to_vec();
    out.extend_from_slice(
        &u16::try_from(ANSI_HEADER_BYTES + body.len())
            .unwrap()
            .to_be_bytes(),
    );
    out.extend_from_slice(&[0, 0x42, 0, 0x11]); // CBEFF product id
    out.extend_from_slice(&iso[12..ISO_HEADER_BYTES]);
    out.extend_from_slice(&body);
    out
}

fn set_iso_length(bytes: &mut [u8]) {
    let len = u32::try_from(bytes.len()).unwrap().to_be_bytes();
    bytes[8..12].copy_from_slice(&len);
}

proptest! {
    #[test]
    fn iso_write_then_read_is_identity(record in record()) {
        let bytes = encode_iso19794_2(&record).unwrap();
        prop_assert_eq!(detect_format(&bytes), Some(TemplateFormat::Iso19794_2_2005));
        prop_assert_eq!(parse_iso19794_2(&bytes).unwrap(), record.clone());
        prop_assert_eq!(parse_minutiae_record(&bytes).unwrap(), record);
    }

    #[test]
    fn ansi_angles_convert_to_iso_units(record in record(), seed in any::<u64>()) {
        let angles: Vec<Vec<u8>> = record
            .views
            .iter()
            .enumerate()
            .map(|(v, view)| (0..view.minutiae.len()).map(|m| ((seed as usize + 7 * v + 13 * m) % 180) as u8).collect())
            .collect();
        let parsed = parse_ansi378(&ansi_bytes(&record, &angles)).unwrap();
        prop_assert_eq!(parsed.format, TemplateFormat::Ansi378_2004);
        prop_assert_eq!(parsed.views.len(), record.views.len());
        for ((got, want), angles) in parsed.views.iter().zip(&record.views).zip(&angles) {
            prop_assert_eq!(got.minutiae.len(), want.minutiae.len());
            for ((g, w), a) in got.minutiae.iter().zip(&want.minutiae).zip(angles) {
                prop_assert_eq!((g.kind, g.x, g.y, g.quality), (w.kind, w.x, w.y, w.quality));
                prop_assert_eq!(Some(g.angle), two_degrees_to_iso(*a));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_iso19794_2(&bytes);
        let _ = parse_ansi378(&bytes);
        let _ = parse_minutiae_record(&bytes);
    }

    #[test]
    fn arbitrary_body_after_valid_header_never_panics(body in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = b"FMR\0 20\0\0\0\0\0\0\0\x01\x2c\x01\x90\0\xc5\0\xc5".to_vec();
        bytes.extend_from_slice(&body);
        set_iso_length(&mut bytes);
        let _ = parse_iso19794_2(&bytes);
    }

    #[test]
    fn truncated_records_are_errors(record in record(), cut in any::<prop::sample::Index>()) {
        let bytes = encode_iso19794_2(&record).unwrap();
        let mut short = bytes[..cut.index(bytes.len())].to_vec();
        let err = parse_iso19794_2(&short).unwrap_err();
        prop_assert!(!err.to_string().is_empty());
        // Even with the length field repaired, a record cut anywhere before its end is refused.
        if short.len() >= 12 {
            set_iso_length(&mut short);
            prop_assert!(parse_iso19794_2(&short).is_err());
        }
    }

    #[test]
    fn corrupted_records_never_panic(record in record(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = encode_iso19794_2(&record).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = parse_iso19794_2(&bytes);
        let _ = parse_ansi378(&bytes);
    }
}

#[test]
fn two_degree_angles_round_to_nearest_iso_unit() {
    assert_eq!(two_degrees_to_iso(0), Some(0));
    assert_eq!(two_degrees_to_iso(45), Some(64)); // 90 degrees
    assert_eq!(two_degrees_to_iso(90), Some(128)); // 180 degrees
    assert_eq!(two_degrees_to_iso(179), Some(255)); // 358 degrees = 254.58 units
    assert_eq!(two_degrees_to_iso(180), None);
    for a in 0..=179u8 {
        let exact = f64::from(a) * 2.0 * 256.0 / 360.0;
        let got = f64::from(two_degrees_to_iso(a).unwrap());
        assert!((got - exact).abs() <= 0.5, "{a}");
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let bytes = vec![0u8; MAX_TEMPLATE_BYTES + 1];
    let err = parse_iso19794_2(&bytes).unwrap_err();
    assert_eq!(
        err,
        TemplateError::TooLarge {
            len: MAX_TEMPLATE_BYTES + 1,
            max: MAX_TEMPLATE_BYTES
        }
    );
    assert!(matches!(
        parse_ansi378(&bytes),
        Err(TemplateError::TooLarge { .. })
    ));
}

#[test]
fn header_faults_name_their_field() {
    let record = MinutiaeRecord {
        format: TemplateFormat::Iso19794_2_2005,
        width: 300,
        height: 400,
        x_resolution_ppcm: 197,
        y_resolution_ppcm: 197,
        views: vec![FingerView {
            position: 1,
            view_number: 0,
            impression_type: 0,
            quality: 60,
            minutiae: vec![],
        }],
    };
    let good = encode_iso19794_2(&record).unwrap();
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(
        parse_iso19794_2(&bad),
        Err(TemplateError::BadMagic { .. })
    ));
    let mut bad = good.clone();
    bad[24] = 11; // finger position
    assert_eq!(
        parse_iso19794_2(&bad).unwrap_err(),
        TemplateError::InvalidFingerPosition {
            view: 0,
            offset: 24,
            value: 11
        }
    );
    let err = parse_iso19794_2(&good[..10]).unwrap_err();
    assert_eq!(
        err,
        TemplateError::Truncated {
            field: "record length",
            offset: 8,
            needed: 4,
            available: 2
        }
    );
    assert!(err.to_string().contains("record length at offset 8"));
}

#[test]
fn reserved_type_and_overrun_are_refused() {
    let minutia = Minutia {
        kind: MinutiaKind::Bifurcation,
        x: 10,
        y: 20,
        angle: 30,
        quality: 40,
    };
    let view = FingerView {
        position: 2,
        view_number: 0,
        impression_type: 0,
        quality: 80,
        minutiae: vec![minutia],
    };
    let record = MinutiaeRecord {
        format: TemplateFormat::Iso19794_2_2005,
        width: 300,
        height: 400,
        x_resolution_ppcm: 197,
        y_resolution_ppcm: 197,
        views: vec![view.clone(), view],
    };
    let good = encode_iso19794_2(&record).unwrap();
    let mut bad = good.clone();
    bad[28] |= 0xc0;
    assert_eq!(
        parse_iso19794_2(&bad).unwrap_err(),
        TemplateError::ReservedMinutiaType {
            view: 0,
            minutia: 0,
            offset: 28
        }
    );
    // First view's extended data length (offset 34) claims more than remains: an error, not skipped.
    let mut bad = good.clone();
    bad[34..36].copy_from_slice(&100u16.to_be_bytes());
    assert!(matches!(
        parse_iso19794_2(&bad),
        Err(TemplateError::ExtendedDataOverrun {
            view: 0,
            offset: 34,
            declared: 100,
            ..
        })
    ));
    // The last view's may run past the end: tolerated.
    let mut tolerated = good.clone();
    let last = tolerated.len() - 2;
    tolerated[last..].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(parse_iso19794_2(&tolerated).unwrap(), record);
}

#[test]
fn values_that_do_not_fit_are_refused_by_the_writer() {
    let minutia = Minutia {
        kind: MinutiaKind::Other,
        x: 0x4000,
        y: 0,
        angle: 0,
        quality: 0,
    };
    let view = FingerView {
        position: 1,
        view_number: 0,
        impression_type: 0,
        quality: 0,
        minutiae: vec![minutia],
    };
    let mut record = MinutiaeRecord {
        format: TemplateFormat::Ansi378_2004,
        width: 1,
        height: 1,
        x_resolution_ppcm: 197,
        y_resolution_ppcm: 197,
        views: vec![view],
    };
    let err = encode_iso19794_2(&record).unwrap_err();
    assert!(
        matches!(&err, TemplateError::ValueOutOfRange { field, value: 0x4000, max: 0x3fff } if field == "view 0 minutia 0 x")
    );
    record.views[0].minutiae.clear();
    record.views[0].position = 11;
    assert!(matches!(
        encode_iso19794_2(&record),
        Err(TemplateError::ValueOutOfRange {
            value: 11,
            max: 10,
            ..
        })
    ));
}
