//! Tests on the shared ANSI/NIST-ITL samples (`../shared/data/ansi-nist`, `wsq`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::image::{decode_gray, decode_wsq};
use crate::station::{FaceFormat, FingerFormat};
use crate::template::parse_iso19794_2;
use std::path::{Path, PathBuf};

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/data not found");
        None
    }
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join("ansi-nist").join(name)).unwrap()
}

fn load(dir: &Path, name: &str) -> (Transaction, Vec<Warning>) {
    parse(&read(dir, name)).unwrap()
}

fn sample_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for set in ["nbis", "jnbis", "libbiomeval"] {
        for entry in std::fs::read_dir(dir.join("ansi-nist").join(set)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            files.push(format!("{set}/{name}"));
        }
    }
    files.sort();
    files
}

/// Files with a documented quirk (module doc); all others must read without warnings.
const QUIRKY: &[&str] = &[
    "nbis/valid1.11.an2",
    "nbis/valid1.16.an2",
    "nbis/valid1.5.an2",
    "nbis/valid1.6.an2",
    "nbis/valid1.7.an2",
    "nbis/valid1.8.an2",
    "jnbis/rec01_rec02_rec16.nst.an2",
    "libbiomeval/type9-15.an2k",
];
const REFUSED: &str = "libbiomeval/type9-13.an2k";

#[test]
fn every_sample_parses_and_re_encodes_byte_exact() {
    let Some(dir) = data_dir() else { return };
    let files = sample_files(&dir);
    assert!(
        files.len() >= 55,
        "expected the whole sample set, found {}",
        files.len()
    );
    for name in files.iter().filter(|n| n.as_str() != REFUSED) {
        let bytes = read(&dir, name);
        let (tx, warnings) = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            QUIRKY.contains(&name.as_str()),
            !warnings.is_empty(),
            "{name}: {warnings:?}"
        );
        let header = Header::from_transaction(&tx).unwrap();
        assert_eq!(header.content.len() + 1, tx.records.len(), "{name}");
        assert!(encode(&tx).unwrap() == bytes, "{name}: re-encoding differs");
        capture_parts(&tx).unwrap_or_else(|e| panic!("{name}: capture parts: {e}"));
    }
}

#[test]
fn valid1_11_repeats_image_tags_and_the_last_one_is_the_image() {
    let Some(dir) = data_dir() else { return };
    let (tx, warnings) = load(&dir, "nbis/valid1.11.an2");
    let repeated: Vec<(usize, &str, usize)> = warnings
        .iter()
        .map(|w| match w {
            Warning::RepeatedImageTag {
                record,
                tag,
                occurrences,
            } => (*record, tag.as_str(), *occurrences),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        repeated,
        [
            (3, "10.999", 2),
            (5, "14.999", 4),
            (6, "15.999", 2),
            (7, "16.999", 2)
        ]
    );
    let type14 = tx.records[5].as_tagged().unwrap();
    let values: Vec<&[u8]> = type14
        .fields
        .iter()
        .filter(|f| f.tag.field == 999)
        .map(|f| f.value.as_slice())
        .collect();
    assert_eq!(&values[..3], [b"011011".as_slice(), b"4732", b"9238"]);
    let header = Header::from_transaction(&tx).unwrap();
    let image = FingerImage::from_record(&header, 5, &tx.records[5]).unwrap();
    let decoded = decode_wsq(&image.data).unwrap();
    assert_eq!((decoded.width, decoded.height), (image.width, image.height));
}

#[test]
fn valid1_8_header_sizes_disagree_with_its_wsq() {
    let Some(dir) = data_dir() else { return };
    let (tx, warnings) = load(&dir, "nbis/valid1.8.an2");
    let header = Header::from_transaction(&tx).unwrap();
    assert_eq!(warnings.len(), 3);
    for warning in &warnings {
        let Warning::ImageSizeMismatch {
            record,
            record_type: 14,
            declared,
            actual,
        } = warning
        else {
            panic!("unexpected {warning}");
        };
        let image = FingerImage::from_record(&header, *record, &tx.records[*record]).unwrap();
        assert_eq!(*declared, (image.width, image.height));
        let decoded = decode_wsq(&image.data).unwrap();
        assert_eq!(*actual, (decoded.width, decoded.height));
        assert_ne!(declared, actual);
    }
}

#[test]
fn type9_13_repeating_field_2_034_is_refused() {
    let Some(dir) = data_dir() else { return };
    let bytes = read(&dir, REFUSED);
    let err = parse(&bytes).unwrap_err();
    let AnsiNistError::RepeatedField {
        record: 1,
        offset,
        ref tag,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(tag, "2.034");
    assert!(bytes[offset..].starts_with(b"2.034:"));
    assert!(
        bytes[..offset].windows(6).any(|w| w == b"2.034:"),
        "offset is the second occurrence"
    );
    assert!(err.to_string().contains("2.034") && err.to_string().contains(&offset.to_string()));
}

#[test]
fn binary_data_with_separators_is_cut_by_length() {
    let Some(dir) = data_dir() else { return };
    let (tx, warnings) = load(&dir, "jnbis/rec01_rec02_rec16.nst.an2");
    assert_eq!(
        warnings,
        [Warning::UnknownVersion {
            version: "0".into()
        }]
    );
    let type16 = tx.records[2].as_tagged().unwrap();
    let data = &type16.image_field().unwrap().value;
    assert!(
        data.iter().any(|b| [FS, GS, RS, US].contains(b)),
        "the sample's point: separators inside data"
    );
    let declared = type16.field(1).unwrap().number().unwrap() as usize;
    let encoded = encode(&tx).unwrap();
    let type16_start = encoded.len() - declared;
    assert!(encoded[type16_start..].starts_with(b"16.001:"));
    assert!(encoded.ends_with(&[data.as_slice(), &[FS]].concat()));
    let header = Header::from_transaction(&tx).unwrap();
    assert_eq!(header.domain.as_deref(), Some("INT-I"));
}

#[test]
fn tenprint_type14_images_are_the_wsq_set_and_decode_the_same() {
    let Some(dir) = data_dir() else { return };
    let (tx, _) = load(&dir, "jnbis/type-14-tpcard-nqm.an2");
    let header = Header::from_transaction(&tx).unwrap();
    let images: Vec<FingerImage> = (1..tx.records.len())
        .filter(|&i| tx.records[i].record_type() == 14)
        .map(|i| FingerImage::from_record(&header, i, &tx.records[i]).unwrap())
        .collect();
    assert_eq!(images.len(), 14);
    let mut matched = std::collections::BTreeSet::new();
    for n in 1..=14 {
        let wsq = std::fs::read(dir.join(format!("wsq/fp-{n}.wsq"))).unwrap();
        let at = images
            .iter()
            .position(|i| i.data == wsq)
            .unwrap_or_else(|| panic!("fp-{n} not in the transaction"));
        assert!(matched.insert(at));
        let image = &images[at];
        assert_eq!(image.compression, Compression::Wsq);
        let decoded = decode_wsq(&image.data).unwrap();
        let reference =
            decode_gray(&std::fs::read(dir.join(format!("wsq/fp-{n}.png"))).unwrap()).unwrap();
        assert_eq!((decoded.width, decoded.height), (image.width, image.height));
        assert!(decoded.pixels == reference.pixels, "fp-{n}");
        assert_eq!(image.ppi(), Some(500));
    }
}

fn finger_positions(parts: &CaptureParts) -> Vec<u8> {
    parts.fingers.iter().map(|f| f.position).collect()
}

#[test]
fn capture_parts_of_tenprint_cards_give_fingers_by_fgp() {
    let Some(dir) = data_dir() else { return };
    for name in ["jnbis/type-4-tpcard.an2", "jnbis/type-14-tpcard-nqm.an2"] {
        let (tx, _) = load(&dir, name);
        let header = Header::from_transaction(&tx).unwrap();
        let parts = capture_parts(&tx).unwrap();
        assert_eq!(
            finger_positions(&parts),
            (1..=10).collect::<Vec<u8>>(),
            "{name}"
        );
        for finger in &parts.fingers {
            assert_eq!(finger.format, FingerFormat::Wsq);
            let source = (1..tx.records.len())
                .filter_map(|i| FingerImage::from_record(&header, i, &tx.records[i]).ok())
                .find(|img| img.positions.first() == Some(&finger.position))
                .unwrap();
            assert_eq!(
                finger.data, source.data,
                "{name}: finger {}",
                finger.position
            );
        }
        // The four slap records (FGP 11-14) are skipped, each with a warning naming its position.
        for slap in 11..=14 {
            assert!(
                parts
                    .warnings
                    .iter()
                    .any(|w| w.contains(&format!("position {slap} "))),
                "{name}: {slap}"
            );
        }
        assert_eq!(parts.transaction_control_number, header.control_number);
        assert!(parts.face.is_none());
    }
}

#[test]
fn capture_parts_of_a_face_transaction_give_the_face() {
    let Some(dir) = data_dir() else { return };
    let (tx, _) = load(&dir, "jnbis/type-10-sap10.an2");
    let header = Header::from_transaction(&tx).unwrap();
    let record = FaceImage::from_record(&header, 2, &tx.records[2]).unwrap();
    let parts = capture_parts(&tx).unwrap();
    let face = parts.face.unwrap();
    assert_eq!(face.format, FaceFormat::Jpeg);
    assert_eq!(face.data, record.data);
    let decoded = decode_gray(&face.data).unwrap();
    assert_eq!(
        (decoded.width, decoded.height),
        (record.width, record.height)
    );
    // A tattoo is a Type-10 image but not a face.
    let (tx, _) = load(&dir, "jnbis/type-10-tattoo-zoom.an2");
    let parts = capture_parts(&tx).unwrap();
    assert!(parts.face.is_none());
    assert!(parts.warnings.iter().any(|w| w.contains("TATTOO")));
}

#[test]
fn capture_parts_of_an_incits_type9_give_an_iso_template() {
    let Some(dir) = data_dir() else { return };
    let (tx, _) = load(&dir, "jnbis/type-9-14-m1.an2");
    let record = tx.records[2].as_tagged().unwrap();
    let field = |n| record.field(n).unwrap().number().unwrap();
    let parts = capture_parts(&tx).unwrap();
    assert_eq!(finger_positions(&parts), [field(134) as u8]);
    let finger = &parts.fingers[0];
    assert_eq!(finger.format, FingerFormat::Iso19794_2);
    let iso = parse_iso19794_2(&finger.data).unwrap();
    assert_eq!(
        (u64::from(iso.width), u64::from(iso.height)),
        (field(128), field(129))
    );
    assert_eq!(u64::from(iso.x_resolution_ppcm), field(131));
    assert_eq!(iso.views.len(), 1);
    assert_eq!(iso.views[0].minutiae.len() as u64, field(136));
    assert!(
        parts
            .warnings
            .iter()
            .any(|w| w.contains("in favour of the Type-9 template"))
    );
}

#[test]
fn standard_and_incits_minutiae_of_the_same_finger_agree() {
    let Some(dir) = data_dir() else { return };
    let template = |name| {
        let (tx, _) = load(&dir, name);
        let finger = capture_parts(&tx).unwrap().fingers.remove(0);
        parse_iso19794_2(&finger.data).unwrap()
    };
    let standard = template("jnbis/type-9-14-std.an2");
    let incits = template("jnbis/type-9-14-m1.an2");
    let (a, b) = (&standard.views[0].minutiae, &incits.views[0].minutiae);
    assert_eq!(a.len(), b.len());
    for (i, (s, m)) in a.iter().zip(b).enumerate() {
        assert!(
            s.x.abs_diff(m.x) <= 1 && s.y.abs_diff(m.y) <= 1,
            "minutia {i}: {s:?} vs {m:?}"
        );
        let d = u16::from(s.angle.abs_diff(m.angle));
        assert!(
            d.min(256 - d) <= 2,
            "minutia {i}: angle {} vs {}",
            s.angle,
            m.angle
        );
    }
}

#[test]
fn utf8_text_is_decoded_where_declared() {
    let Some(dir) = data_dir() else { return };
    let (tx, _) = load(&dir, "jnbis/type-14-amp-nqm-utf8.an2");
    let header = Header::from_transaction(&tx).unwrap();
    assert_eq!(header.text_encoding, TextEncoding::Utf8);
    let text = tx.records[1]
        .as_tagged()
        .unwrap()
        .field(3)
        .unwrap()
        .text(header.text_encoding);
    assert!(text.starts_with("two chinese characters: "));
    assert_eq!(text.chars().filter(|c| !c.is_ascii()).count(), 2, "{text}");
    let (tx, _) = load(&dir, "jnbis/type-4-tpcard.an2");
    assert_eq!(
        Header::from_transaction(&tx).unwrap().text_encoding,
        TextEncoding::Latin1
    );
}

#[test]
fn damaged_transactions_give_errors_naming_record_and_offset() {
    let Some(dir) = data_dir() else { return };
    let bytes = read(&dir, "jnbis/type-4-tpcard.an2");
    let cut = &bytes[..bytes.len() - 10];
    match parse(cut).unwrap_err() {
        AnsiNistError::Truncated {
            record: 15,
            record_type: 4,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    let mut bad_len = bytes.clone();
    bad_len[6] = b'x';
    assert!(matches!(
        parse(&bad_len),
        Err(AnsiNistError::BadLength {
            record: 0,
            offset: 0,
            ..
        })
    ));
    assert!(matches!(
        parse(b"<xml/>"),
        Err(AnsiNistError::BadTag {
            record: 0,
            offset: 0,
            ..
        })
    ));
    let mut no_fs = bytes.clone();
    if let Some(end) = no_fs.iter().position(|&b| b == FS) {
        no_fs[end] = b' ';
        let err = parse(&no_fs).unwrap_err();
        assert!(
            matches!(err, AnsiNistError::MissingRecordSeparator { record: 0, offset, .. } if offset == end),
            "{err:?}"
        );
    }
}
