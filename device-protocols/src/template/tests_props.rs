//! Property and unit tests of the record reader and writer on generated records and bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::body::{iso_to_two_degrees, two_degrees_to_iso};
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

/// A record in `format` with `views` views (any angle for ISO; for ANSI, angles that an ANSI record can carry).
fn record_in(
    format: TemplateFormat,
    views: std::ops::Range<usize>,
) -> impl Strategy<Value = MinutiaeRecord> {
    let wide = matches!(
        format,
        TemplateFormat::Iso19794_2_2011 | TemplateFormat::Ansi378_2009
    );
    let ansi = matches!(
        format,
        TemplateFormat::Ansi378_2004 | TemplateFormat::Ansi378_2009
    );
    let code_max = if wide { u8::MAX } else { 15 };
    let view = (
        0u8..=10,
        0u8..=code_max,
        0u8..=code_max,
        any::<u8>(),
        prop::collection::vec(minutia(), 0..40),
    )
        .prop_map(
            move |(position, view_number, impression_type, quality, mut minutiae)| {
                if ansi {
                    for m in &mut minutiae {
                        m.angle = two_degrees_to_iso(iso_to_two_degrees(m.angle)).unwrap();
                    }
                }
                FingerView {
                    position,
                    view_number,
                    impression_type,
                    quality,
                    minutiae,
                }
            },
        );
    (
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        prop::collection::vec(view, views),
    )
        .prop_map(
            move |(width, height, x_resolution_ppcm, y_resolution_ppcm, views)| MinutiaeRecord {
                format,
                width,
                height,
                x_resolution_ppcm,
                y_resolution_ppcm,
                views,
            },
        )
}

const NEW_EDITIONS: [TemplateFormat; 2] = [
    TemplateFormat::Iso19794_2_2011,
    TemplateFormat::Ansi378_2009,
];

/// Parses with every reader; none may panic.
fn parse_all_ways(bytes: &[u8]) {
    let _ = parse_iso19794_2(bytes);
    let _ = parse_ansi378(bytes);
    let _ = parse_minutiae_record(bytes);
    let _ = detect_format(bytes);
}

fn set_u32_length(bytes: &mut [u8]) {
    if bytes.len() >= 12 {
        let len = u32::try_from(bytes.len()).unwrap().to_be_bytes();
        bytes[8..12].copy_from_slice(&len);
    }
}

proptest! {
    #[test]
    fn iso2011_write_then_read_is_identity(record in record_in(TemplateFormat::Iso19794_2_2011, 1..4)) {
        let bytes = encode_iso19794_2_as(&record, IsoVersion::V2011).unwrap();
        prop_assert_eq!(detect_format(&bytes), Some(TemplateFormat::Iso19794_2_2011));
        prop_assert_eq!(parse_iso19794_2(&bytes).unwrap(), record.clone());
        prop_assert_eq!(&encode_minutiae_record(&record, record.format).unwrap(), &bytes);
        prop_assert_eq!(parse_minutiae_record(&bytes).unwrap(), record);
    }

    #[test]
    fn ansi2009_write_then_read_is_identity(record in record_in(TemplateFormat::Ansi378_2009, 1..4)) {
        let bytes = encode_ansi378_as(&record, AnsiVersion::V2009).unwrap();
        prop_assert_eq!(detect_format(&bytes), Some(TemplateFormat::Ansi378_2009));
        prop_assert_eq!(parse_ansi378(&bytes).unwrap(), record.clone());
        prop_assert_eq!(parse_minutiae_record(&bytes).unwrap(), record);
    }

    #[test]
    fn ansi2004_write_then_read_is_identity(record in record_in(TemplateFormat::Ansi378_2004, 0..4)) {
        let bytes = encode_ansi378(&record).unwrap();
        prop_assert_eq!(detect_format(&bytes), Some(TemplateFormat::Ansi378_2004));
        prop_assert_eq!(parse_ansi378(&bytes).unwrap(), record.clone());
        prop_assert_eq!(parse_minutiae_record(&bytes).unwrap(), record);
    }

    /// Any record converts to every format; what comes back differs only by the format and, through ANSI, by the
    /// angle quantisation (at most one ISO unit).
    #[test]
    fn any_record_converts_to_every_format(record in record_in(TemplateFormat::Iso19794_2_2005, 1..3)) {
        for format in [
            TemplateFormat::Iso19794_2_2005,
            TemplateFormat::Iso19794_2_2011,
            TemplateFormat::Ansi378_2004,
            TemplateFormat::Ansi378_2009,
        ] {
            let bytes = encode_minutiae_record(&record, format).unwrap();
            let back = parse_minutiae_record(&bytes).unwrap();
            prop_assert_eq!(back.format, format);
            prop_assert_eq!(
                (back.width, back.height, back.x_resolution_ppcm, back.y_resolution_ppcm),
                (record.width, record.height, record.x_resolution_ppcm, record.y_resolution_ppcm)
            );
            for (got, want) in back.views.iter().zip(&record.views) {
                prop_assert_eq!(
                    (got.position, got.view_number, got.impression_type, got.quality),
                    (want.position, want.view_number, want.impression_type, want.quality)
                );
                for (g, w) in got.minutiae.iter().zip(&want.minutiae) {
                    prop_assert_eq!((g.kind, g.x, g.y, g.quality), (w.kind, w.x, w.y, w.quality));
                    let diff = g.angle.wrapping_sub(w.angle).min(w.angle.wrapping_sub(g.angle));
                    prop_assert!(diff <= 1, "{:?}: {} vs {}", format, g.angle, w.angle);
                }
            }
        }
    }

    #[test]
    fn arbitrary_body_after_new_headers_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..400),
        version in prop::sample::select(vec![*b"030\0", *b"035\0"]),
    ) {
        let mut bytes = b"FMR\0".to_vec();
        bytes.extend_from_slice(&version);
        bytes.extend_from_slice(&body);
        parse_all_ways(&bytes);
        set_u32_length(&mut bytes);
        parse_all_ways(&bytes);
    }

    /// Arbitrary representations behind a valid ISO 2011 general header, with consistent lengths so the reader gets
    /// past them.
    #[test]
    fn arbitrary_iso2011_representations_never_panic(
        reps in prop::collection::vec(prop::collection::vec(any::<u8>(), 30..120), 1..4),
        flag in 0u8..2,
    ) {
        let mut bytes = b"FMR\x00030\x00\x00\x00\x00\x00".to_vec();
        bytes.extend_from_slice(&u16::try_from(reps.len()).unwrap().to_be_bytes());
        bytes.push(flag);
        for rep in &reps {
            bytes.extend_from_slice(&u32::try_from(rep.len() + 4).unwrap().to_be_bytes());
            bytes.extend_from_slice(rep);
        }
        set_u32_length(&mut bytes);
        parse_all_ways(&bytes);
    }

    #[test]
    fn corrupted_new_edition_records_never_panic(
        record in record_in(TemplateFormat::Iso19794_2_2011, 1..4),
        which in 0usize..2,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = encode_minutiae_record(&record, NEW_EDITIONS[which]).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        parse_all_ways(&bytes);
    }

    /// What the fuzz target checks: a record read from mutated bytes writes back in its own format to bytes that read
    /// as the same record.
    #[test]
    fn whatever_reads_writes_back_the_same(
        record in record_in(TemplateFormat::Iso19794_2_2011, 1..3),
        which in 0usize..4,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let formats = [
            TemplateFormat::Iso19794_2_2005,
            TemplateFormat::Iso19794_2_2011,
            TemplateFormat::Ansi378_2004,
            TemplateFormat::Ansi378_2009,
        ];
        let mut record = record;
        for view in &mut record.views {
            view.view_number &= 0x0f;
            view.impression_type &= 0x0f;
        }
        let mut bytes = encode_minutiae_record(&record, formats[which]).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let reads = [parse_iso19794_2(&bytes), parse_ansi378(&bytes), parse_minutiae_record(&bytes)];
        for read in reads.into_iter().flatten() {
            if let Ok(again) = encode_minutiae_record(&read, read.format) {
                prop_assert_eq!(parse_minutiae_record(&again).unwrap(), read);
            }
        }
    }

    #[test]
    fn truncated_new_edition_records_are_errors(
        record in record_in(TemplateFormat::Iso19794_2_2011, 1..4),
        which in 0usize..2,
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode_minutiae_record(&record, NEW_EDITIONS[which]).unwrap();
        let mut short = bytes[..cut.index(bytes.len())].to_vec();
        prop_assert!(parse_minutiae_record(&short).is_err());
        set_u32_length(&mut short);
        let err = match NEW_EDITIONS[which] {
            TemplateFormat::Iso19794_2_2011 => parse_iso19794_2(&short).unwrap_err(),
            _ => parse_ansi378(&short).unwrap_err(),
        };
        prop_assert!(!err.to_string().is_empty());
    }
}

#[test]
fn ansi_angle_conversion_inverts_and_stays_in_range() {
    for a in 0..=179u8 {
        assert_eq!(iso_to_two_degrees(two_degrees_to_iso(a).unwrap()), a);
    }
    for iso in 0..=255u8 {
        let ansi = iso_to_two_degrees(iso);
        assert!(ansi <= 179, "{iso}");
        let exact = f64::from(iso) * 360.0 / 512.0;
        assert!((f64::from(ansi) - exact).abs() <= 0.5, "{iso}");
    }
}

fn two_view_record() -> MinutiaeRecord {
    let view = |position| FingerView {
        position,
        view_number: 0,
        impression_type: 0,
        quality: 70,
        minutiae: vec![Minutia {
            kind: MinutiaKind::RidgeEnding,
            x: 100,
            y: 200,
            angle: 64,
            quality: 50,
        }],
    };
    MinutiaeRecord {
        format: TemplateFormat::Iso19794_2_2011,
        width: 400,
        height: 500,
        x_resolution_ppcm: 197,
        y_resolution_ppcm: 197,
        views: vec![view(2), view(7)],
    }
}

/// Offsets in the writer's 2011 layout: 15-byte header, then per representation 4 length + 9 date + 5 device +
/// 1 + 5 quality; the finger fields start 24 bytes in, the width 6 bytes after that.
const ISO2011_FIRST_REP: usize = 15;
const ISO2011_REP_LEN: usize = 34 + 5 + 6;

#[test]
fn iso2011_faults_are_typed_errors() {
    let record = two_view_record();
    let good = encode_iso19794_2_as(&record, IsoVersion::V2011).unwrap();
    assert_eq!(good.len(), ISO_2011_HEADER_BYTES + 2 * ISO2011_REP_LEN);
    assert_eq!(parse_iso19794_2(&good).unwrap(), record);

    // Second representation's width differs from the first's.
    let width_at = ISO2011_FIRST_REP + ISO2011_REP_LEN + 24 + 7;
    let mut bad = good.clone();
    bad[width_at..width_at + 2].copy_from_slice(&401u16.to_be_bytes());
    assert_eq!(
        parse_iso19794_2(&bad).unwrap_err(),
        TemplateError::ViewGeometryMismatch {
            view: 1,
            offset: width_at,
            field: "image width",
            value: 401,
            first: 400
        }
    );

    // Minutia field length 7.
    let field_at = ISO2011_FIRST_REP + 24 + 11;
    let mut bad = good.clone();
    bad[field_at] = 0x70;
    assert_eq!(
        parse_iso19794_2(&bad).unwrap_err(),
        TemplateError::InvalidCode {
            field: "minutia field length",
            offset: field_at,
            value: 7
        }
    );

    // Certification flag 2.
    let mut bad = good.clone();
    bad[14] = 2;
    assert!(matches!(
        parse_iso19794_2(&bad),
        Err(TemplateError::InvalidCode {
            offset: 14,
            value: 2,
            ..
        })
    ));

    // A representation length below the minimum, and one past the end.
    for declared in [10u32, 1000] {
        let mut bad = good.clone();
        bad[15..19].copy_from_slice(&declared.to_be_bytes());
        assert!(
            matches!(
                parse_iso19794_2(&bad),
                Err(TemplateError::RepresentationLength {
                    view: 0,
                    offset: 15,
                    min: 34,
                    ..
                })
            ),
            "{declared}"
        );
    }

    // Bytes after the last representation.
    let mut bad = good.clone();
    bad.extend_from_slice(&[0, 0, 0]);
    set_iso_length(&mut bad);
    assert_eq!(
        parse_iso19794_2(&bad).unwrap_err(),
        TemplateError::TrailingData {
            offset: good.len(),
            len: 3
        }
    );

    // More representations than the limit.
    let mut bad = good.clone();
    bad[12..14].copy_from_slice(&256u16.to_be_bytes());
    assert!(matches!(
        parse_iso19794_2(&bad),
        Err(TemplateError::CountOutOfRange {
            offset: 12,
            value: 256,
            max: 255,
            ..
        })
    ));

    // Finger position above 10.
    let position_at = ISO2011_FIRST_REP + 24;
    let mut bad = good.clone();
    bad[position_at] = 11;
    assert_eq!(
        parse_iso19794_2(&bad).unwrap_err(),
        TemplateError::InvalidFingerPosition {
            view: 0,
            offset: position_at,
            value: 11
        }
    );
}

/// A hand-built 2011 record with what the writer never produces: certification blocks, two quality blocks, 5-byte
/// minutiae, ridge ending type 1, and extended data whose block length counts its 4-byte header or does not.
#[test]
fn iso2011_optional_parts_are_read_or_skipped() {
    for block_length in [7u16, 3] {
        let mut rep = Vec::new();
        rep.extend_from_slice(&[0x07, 0xe8, 6, 30, 12, 0, 0, 0, 0]); // 2024-06-30 12:00:00.000
        rep.push(2); // technology
        rep.extend_from_slice(&[0x12, 0x34, 0x00, 0x07]); // vendor, type
        rep.push(2); // two quality blocks: the first one's score counts
        rep.extend_from_slice(&[77, 0x00, 0x0f, 0x37, 0x7d, 40, 0x01, 0x03, 0x00, 0x01]);
        rep.push(1); // one certification block
        rep.extend_from_slice(&[0x00, 0x0f, 0x01]);
        rep.extend_from_slice(&[3, 2]); // position, representation number
        rep.extend_from_slice(&[0, 197, 0, 196]); // resolution
        rep.push(1); // impression
        rep.extend_from_slice(&[0x01, 0x90, 0x01, 0xf4]); // 400 x 500
        rep.extend_from_slice(&[0x51, 2]); // 5-byte minutiae, ridge ending type 1; two minutiae
        rep.extend_from_slice(&[0x40, 10, 0, 20, 30]);
        rep.extend_from_slice(&[0x80, 11, 0x00, 21, 31]);
        let data = [1u8, 0, 1, 5];
        let ext_len = 4 + data.len() - 1; // type, length, 3 data bytes
        rep.extend_from_slice(&u16::try_from(ext_len).unwrap().to_be_bytes());
        rep.extend_from_slice(&[0x00, 0x01]);
        rep.extend_from_slice(&block_length.to_be_bytes());
        rep.extend_from_slice(&data[..3]);
        let mut bytes = b"FMR\x00030\x00\x00\x00\x00\x00\x00\x01\x01".to_vec();
        bytes.extend_from_slice(&u32::try_from(rep.len() + 4).unwrap().to_be_bytes());
        bytes.extend_from_slice(&rep);
        set_iso_length(&mut bytes);
        assert_eq!(detect_format(&bytes), Some(TemplateFormat::Iso19794_2_2011));
        let record = parse_minutiae_record(&bytes).unwrap();
        assert_eq!(
            record,
            MinutiaeRecord {
                format: TemplateFormat::Iso19794_2_2011,
                width: 400,
                height: 500,
                x_resolution_ppcm: 197,
                y_resolution_ppcm: 196,
                views: vec![FingerView {
                    position: 3,
                    view_number: 2,
                    impression_type: 1,
                    quality: 77,
                    minutiae: vec![
                        Minutia {
                            kind: MinutiaKind::RidgeEnding,
                            x: 10,
                            y: 20,
                            angle: 30,
                            quality: 0
                        },
                        Minutia {
                            kind: MinutiaKind::Bifurcation,
                            x: 11,
                            y: 21,
                            angle: 31,
                            quality: 0
                        },
                    ],
                }],
            },
            "block length {block_length}"
        );
        // The last representation's extended data may claim more than the representation holds: skipped.
        let ext_at = bytes.len() - ext_len - 2;
        let mut tolerated = bytes.clone();
        tolerated[ext_at..ext_at + 2].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(parse_iso19794_2(&tolerated).unwrap(), record);
    }
}

#[test]
fn ansi2009_faults_are_typed_errors() {
    let mut record = two_view_record();
    record.format = TemplateFormat::Ansi378_2009;
    let good = encode_ansi378_as(&record, AnsiVersion::V2009).unwrap();
    assert_eq!(parse_ansi378(&good).unwrap(), record);
    let view_len = 17 + 6 + 2;
    assert_eq!(good.len(), ANSI_2009_HEADER_BYTES + 2 * view_len);

    // Second view's y resolution differs.
    let y_res_at = ANSI_2009_HEADER_BYTES + view_len + 14;
    let mut bad = good.clone();
    bad[y_res_at..y_res_at + 2].copy_from_slice(&394u16.to_be_bytes());
    assert_eq!(
        parse_ansi378(&bad).unwrap_err(),
        TemplateError::ViewGeometryMismatch {
            view: 1,
            offset: y_res_at,
            field: "y resolution",
            value: 394,
            first: 197
        }
    );

    // An angle above 179.
    let angle_at = ANSI_2009_HEADER_BYTES + 17 + 4;
    let mut bad = good.clone();
    bad[angle_at] = 180;
    assert_eq!(
        parse_ansi378(&bad).unwrap_err(),
        TemplateError::AngleOutOfRange {
            view: 0,
            minutia: 0,
            offset: angle_at,
            value: 180
        }
    );

    // First view's extended data overruns: an error; the last view's: tolerated.
    let first_ext = ANSI_2009_HEADER_BYTES + view_len - 2;
    let mut bad = good.clone();
    bad[first_ext..first_ext + 2].copy_from_slice(&100u16.to_be_bytes());
    assert!(matches!(
        parse_ansi378(&bad),
        Err(TemplateError::ExtendedDataOverrun {
            view: 0,
            declared: 100,
            ..
        })
    ));
    let mut tolerated = good.clone();
    let last = tolerated.len() - 2;
    tolerated[last..].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(parse_ansi378(&tolerated).unwrap(), record);

    // Bytes after the last view: refused (unlike 2004).
    let mut bad = good.clone();
    bad.extend_from_slice(&[0, 0]);
    set_iso_length(&mut bad);
    assert_eq!(
        parse_ansi378(&bad).unwrap_err(),
        TemplateError::TrailingData {
            offset: good.len(),
            len: 2
        }
    );

    // The ISO reader refuses it with a typed error (the CBEFF owner reads as a representation count).
    assert!(parse_iso19794_2(&good).is_err());
}

/// An ISO 2011 record spoilt by trailing bytes is sent to the ANSI reader by `detect_format` (its lengths no
/// longer chain to the record end). With a capture year below 256, the byte where an ANSI 2009 header keeps the
/// view count (offset 19) is 0; the record must still not read as an empty ANSI record.
#[test]
fn spoilt_iso2011_record_does_not_read_as_ansi() {
    let mut record = two_view_record();
    record.views.truncate(1);
    let mut bytes = encode_iso19794_2_as(&record, IsoVersion::V2011).unwrap();
    bytes[19] = 0;
    assert_eq!(parse_iso19794_2(&bytes).unwrap(), record);
    bytes.extend_from_slice(&[0; 5]);
    set_iso_length(&mut bytes);
    assert_eq!(detect_format(&bytes), Some(TemplateFormat::Ansi378_2009));
    // The ANSI reader finds no view and refuses the rest as trailing data.
    assert!(matches!(
        parse_minutiae_record(&bytes),
        Err(TemplateError::TrailingData { offset: 21, .. })
    ));
    assert!(matches!(
        parse_iso19794_2(&bytes),
        Err(TemplateError::TrailingData { len: 5, .. })
    ));
}

#[test]
fn writers_refuse_what_the_new_editions_cannot_hold() {
    let mut record = two_view_record();
    record.views.clear();
    assert_eq!(
        encode_iso19794_2_as(&record, IsoVersion::V2011).unwrap_err(),
        TemplateError::EmptyRecord {
            format: TemplateFormat::Iso19794_2_2011
        }
    );
    assert_eq!(
        encode_ansi378_as(&record, AnsiVersion::V2009).unwrap_err(),
        TemplateError::EmptyRecord {
            format: TemplateFormat::Ansi378_2009
        }
    );
    // The older editions write an empty record.
    assert!(encode_iso19794_2(&record).is_ok());
    assert!(encode_ansi378(&record).is_ok());
    // A view number that does not fit 4 bits is refused by the 2005 / 2004 writers, written by 2011 / 2009.
    let mut record = two_view_record();
    record.views[0].view_number = 16;
    assert!(matches!(
        encode_iso19794_2(&record),
        Err(TemplateError::ValueOutOfRange {
            value: 16,
            max: 15,
            ..
        })
    ));
    assert!(matches!(
        encode_ansi378(&record),
        Err(TemplateError::ValueOutOfRange {
            value: 16,
            max: 15,
            ..
        })
    ));
    let bytes = encode_iso19794_2_as(&record, IsoVersion::V2011).unwrap();
    assert_eq!(parse_iso19794_2(&bytes).unwrap().views[0].view_number, 16);
    // Too many minutiae for a view.
    record.views[0].minutiae = vec![record.views[0].minutiae[0].clone(); 256];
    for format in NEW_EDITIONS {
        assert!(matches!(
            encode_minutiae_record(&record, format),
            Err(TemplateError::ValueOutOfRange {
                value: 256,
                max: 255,
                ..
            })
        ));
    }
    assert_eq!(IsoVersion::default(), IsoVersion::V2005);
    assert_eq!(AnsiVersion::default(), AnsiVersion::V2004);
}

#[test]
fn unknown_versions_are_refused_by_name() {
    let mut bytes = encode_iso19794_2(&two_view_record()).unwrap();
    bytes[4..8].copy_from_slice(b"040\0");
    assert_eq!(detect_format(&bytes), None);
    assert_eq!(
        parse_minutiae_record(&bytes).unwrap_err(),
        TemplateError::UnsupportedVersion { found: *b"040\0" }
    );
    assert!(matches!(
        parse_ansi378(&bytes),
        Err(TemplateError::UnsupportedVersion { .. })
    ));
}
