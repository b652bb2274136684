//! Property tests: write-then-read is identity for raw and typed records; arbitrary bytes never panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

fn text_value() -> impl Strategy<Value = Vec<u8>> {
    // Any bytes but GS (the field separator); FS, RS, US and high bytes included.
    proptest::collection::vec(
        any::<u8>().prop_filter("GS ends a field", |b| *b != GS),
        0..24,
    )
}

fn tagged_record() -> impl Strategy<Value = Record> {
    (
        prop_oneof![Just(2u8), Just(10), Just(14), Just(16), Just(99)],
        0u8..100,
        proptest::collection::btree_map(3u16..999, text_value(), 0..6),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..64)),
    )
        .prop_map(|(record_type, idc, fields, image)| {
            let mut r = TaggedRecord::new(record_type);
            r.push(2, format!("{idc:02}"));
            for (number, value) in fields {
                r.push(number, value);
            }
            if let Some(mut data) = image {
                // Binary image data starts with a non-printable byte, as every image format does.
                data[0] = 0xff;
                r.push(999, data);
            }
            Record::Tagged(r)
        })
}

fn binary_record() -> impl Strategy<Value = Record> {
    (
        prop_oneof![Just(4u8), Just(8)],
        proptest::collection::vec(any::<u8>(), 14..80),
    )
        .prop_map(|(record_type, body)| {
            let mut bytes = u32::try_from(body.len() + 4)
                .unwrap()
                .to_be_bytes()
                .to_vec();
            bytes.extend_from_slice(&body);
            Record::Binary(BinaryRecord { record_type, bytes })
        })
}

fn header() -> impl Strategy<Value = Header> {
    let opt = || proptest::option::of("[A-Za-z0-9 ]{0,12}");
    (opt(), opt(), opt(), any::<bool>()).prop_map(|(tot, dai, tcn, utf8)| Header {
        version: "0502".into(),
        content: Vec::new(),
        transaction_type: tot,
        date: Some("20260101".into()),
        priority: None,
        destination: dai,
        originator: Some("ORI".into()),
        control_number: tcn,
        control_reference: None,
        native_resolution: Some("19.69".into()),
        nominal_resolution: Some("19.69".into()),
        domain: None,
        gmt: None,
        text_encoding: if utf8 {
            TextEncoding::Utf8
        } else {
            TextEncoding::Latin1
        },
    })
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (
        header(),
        proptest::collection::vec(prop_oneof![tagged_record(), binary_record()], 0..5),
    )
        .prop_map(|(h, records)| Transaction::build(&h, records))
}

fn finger_image() -> impl Strategy<Value = FingerImage> {
    (
        prop_oneof![Just(13u8), Just(14), Just(15)],
        (0u8..100, 0u8..30, proptest::collection::vec(0u8..40, 0..3)),
        (1u32..5000, 1u32..5000, 0u8..3, 0u32..2000),
        prop_oneof![
            Just(Compression::Wsq),
            Just(Compression::Png),
            Just(Compression::None),
            Just(Compression::Jpeg2000)
        ],
        proptest::collection::vec(any::<u8>(), 1..50),
    )
        .prop_map(
            |(
                record_type,
                (idc, impression, positions),
                (width, height, units, res),
                compression,
                mut data,
            )| {
                data[0] = 0xff;
                FingerImage {
                    record_type,
                    idc,
                    impression,
                    positions,
                    source_agency: Some("SRC".into()),
                    capture_date: None,
                    width,
                    height,
                    scale: Scale {
                        units,
                        horizontal: res,
                        vertical: res,
                    },
                    compression,
                    bits_per_pixel: 8,
                    data,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn write_then_read_is_identity(tx in transaction()) {
        let bytes = encode(&tx).unwrap();
        let (back, warnings) = parse(&bytes).unwrap();
        prop_assert!(warnings.is_empty(), "{:?}", warnings);
        prop_assert_eq!(back.records.len(), tx.records.len());
        for (read, written) in back.records.iter().zip(&tx.records) {
            match (read, written) {
                // Everything but the LEN value, which was a placeholder.
                (Record::Tagged(a), Record::Tagged(b)) => prop_assert_eq!(&a.fields[1..], &b.fields[1..]),
                (a, b) => prop_assert_eq!(a, b),
            }
        }
        // The LEN fields were placeholders: compare after one write, and the second write is the same bytes.
        prop_assert_eq!(encode(&back).unwrap(), bytes);
        let again = parse(&encode(&back).unwrap()).unwrap().0;
        prop_assert_eq!(again, back);
    }

    #[test]
    fn typed_header_round_trips(h in header(), records in proptest::collection::vec(tagged_record(), 0..3)) {
        let tx = Transaction::build(&h, records);
        let (back, _) = parse(&encode(&tx).unwrap()).unwrap();
        let read = Header::from_transaction(&back).unwrap();
        let mut expected = h.clone();
        expected.content = read.content.clone();
        prop_assert_eq!(read.content.len(), back.records.len() - 1);
        prop_assert_eq!(read, expected);
    }

    #[test]
    fn typed_finger_image_round_trips(image in finger_image()) {
        let h = Header::from_transaction(&Transaction::build(&header_fixed(), Vec::new())).unwrap();
        let tx = Transaction::build(&h, vec![image.to_record().unwrap()]);
        let (back, _) = parse(&encode(&tx).unwrap()).unwrap();
        prop_assert_eq!(FingerImage::from_record(&h, 1, &back.records[1]).unwrap(), image);
    }

    #[test]
    fn typed_type4_round_trips(idc in 0u8..100, positions in proptest::collection::vec(1u8..16, 1..6),
                               width in 1u32..65536, height in 1u32..65536, data in proptest::collection::vec(any::<u8>(), 0..40)) {
        let h = header_fixed();
        let image = FingerImage {
            record_type: 4, idc, impression: 1, positions, source_agency: None, capture_date: None, width, height,
            scale: Scale { units: 1, horizontal: 500, vertical: 500 }, compression: Compression::Wsq, bits_per_pixel: 8, data,
        };
        let tx = Transaction::build(&h, vec![image.to_record().unwrap()]);
        let (back, _) = parse(&encode(&tx).unwrap()).unwrap();
        let h = Header::from_transaction(&back).unwrap();
        prop_assert_eq!(FingerImage::from_record(&h, 1, &back.records[1]).unwrap(), image);
    }

    #[test]
    fn typed_face_image_round_trips(idc in 0u8..100, width in 1u32..9999, height in 1u32..9999, data in proptest::collection::vec(any::<u8>(), 1..40)) {
        let mut data = data;
        data[0] = 0xff;
        let face = FaceImage {
            idc, image_type: Some("FACE".into()), source_agency: None, capture_date: Some("20250101".into()), width, height,
            scale: Scale::default(), compression: Compression::JpegBaseline, colour_space: Some("SRGB".into()), data,
        };
        let h = header_fixed();
        let tx = Transaction::build(&h, vec![face.to_record()]);
        let (back, _) = parse(&encode(&tx).unwrap()).unwrap();
        prop_assert_eq!(FaceImage::from_record(&h, 1, &back.records[1]).unwrap(), face);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&bytes);
        let mut prefixed = b"1.001:".to_vec();
        prefixed.extend_from_slice(&bytes);
        if let Ok((tx, _)) = parse(&prefixed) {
            let _ = capture_parts(&tx);
        }
    }

    #[test]
    fn damaged_transactions_never_panic(tx in transaction(), at in any::<prop::sample::Index>(), value in any::<u8>()) {
        let mut bytes = encode(&tx).unwrap();
        let i = at.index(bytes.len());
        bytes[i] = value;
        if let Ok((tx, _)) = parse(&bytes) {
            let _ = capture_parts(&tx);
            // Whatever reads, writes, and reads back the same.
            let again = parse(&encode(&tx).unwrap()).unwrap().0;
            prop_assert_eq!(again, tx);
        }
        let _ = parse(&bytes[..i]);
    }
}

fn header_fixed() -> Header {
    Header {
        version: "0502".into(),
        content: Vec::new(),
        transaction_type: Some("CPS".into()),
        date: Some("20260101".into()),
        priority: None,
        destination: Some("DAI".into()),
        originator: Some("ORI".into()),
        control_number: Some("TCN-1".into()),
        control_reference: None,
        native_resolution: Some("19.69".into()),
        nominal_resolution: Some("19.69".into()),
        domain: None,
        gmt: None,
        text_encoding: TextEncoding::Latin1,
    }
}

#[test]
fn built_transaction_gets_lengths_and_content_list() {
    let image = FingerImage {
        record_type: 14,
        idc: 1,
        impression: 0,
        positions: vec![2],
        source_agency: Some("SRC".into()),
        capture_date: Some("20260101".into()),
        width: 10,
        height: 10,
        scale: Scale {
            units: 1,
            horizontal: 500,
            vertical: 500,
        },
        compression: Compression::None,
        bits_per_pixel: 8,
        data: (0..100).collect(),
    };
    let tx = Transaction::build(&header_fixed(), vec![image.to_record().unwrap()]);
    let bytes = encode(&tx).unwrap();
    assert!(looks_like_transaction(&bytes));
    let (back, warnings) = parse(&bytes).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let type1 = back.records[0].as_tagged().unwrap();
    let len = type1.field(1).unwrap().number().unwrap() as usize;
    assert_eq!(bytes[len - 1], FS);
    assert_eq!(
        type1.field(3).unwrap().value,
        [b"1".as_slice(), &[US], b"1", &[RS], b"14", &[US], b"01"].concat()
    );
    // Raw 8-bit grey becomes a PNG finger with the same pixels.
    let parts = capture_parts(&back).unwrap();
    assert_eq!(parts.fingers.len(), 1);
    let decoded = crate::image::decode_gray(&parts.fingers[0].data).unwrap();
    assert_eq!(decoded.pixels, image.data);
}

#[test]
fn writer_refuses_what_would_not_read_back() {
    let mut r = TaggedRecord::new(2);
    r.push(3, [b'a', GS, b'b']);
    let tx = Transaction::build(&header_fixed(), vec![Record::Tagged(r)]);
    assert!(matches!(
        encode(&tx),
        Err(AnsiNistError::Unwritable { record: 1, .. })
    ));
    let mut tx = Transaction::build(&header_fixed(), vec![Record::Tagged(TaggedRecord::new(2))]);
    tx.records.pop();
    assert!(matches!(
        encode(&tx),
        Err(AnsiNistError::Unwritable { record: 0, .. })
    ));
    let bad_binary = Record::Binary(BinaryRecord {
        record_type: 4,
        bytes: vec![0, 0, 0, 99, 1],
    });
    let tx = Transaction::build(&header_fixed(), vec![bad_binary]);
    assert!(matches!(
        encode(&tx),
        Err(AnsiNistError::Unwritable { record: 1, .. })
    ));
}

#[test]
fn oversized_input_and_content_lists_are_refused_first() {
    let big = vec![b'1'; MAX_TRANSACTION_BYTES + 1];
    assert!(matches!(parse(&big), Err(AnsiNistError::TooLarge { .. })));
    let mut cnt = format!("1{}{}", char::from(US), MAX_RECORDS + 1);
    for _ in 0..=MAX_RECORDS {
        cnt.push(char::from(RS));
        cnt.push_str("2\x1f00");
    }
    let mut type1 = TaggedRecord::new(1);
    type1.push(2, "0502");
    type1.push(3, cnt);
    let bytes = encode(&Transaction {
        records: vec![Record::Tagged(type1)],
    });
    // The writer itself refuses the inconsistent list; build the bytes by hand instead.
    assert!(bytes.is_err());
    let text = format!(
        "1.001:0\x1d1.002:0502\x1d1.003:1\x1f{}\x1c",
        MAX_RECORDS + 1
    );
    let len = text.len() - 1 + (text.len() + 3).to_string().len();
    let text = text.replacen("1.001:0", &format!("1.001:{len}"), 1);
    assert!(matches!(
        parse(text.as_bytes()),
        Err(AnsiNistError::TooManyRecords { .. })
    ));
}
