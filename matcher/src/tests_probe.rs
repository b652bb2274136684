//! Tests of the capture-to-decision path: fingers as ISO records and as PNG, WSQ and TIFF images, malformed data
//! (an error naming the field, never a panic), inconclusive captures, and multi-finger decisions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hotspot_device_protocols::image::{GrayImage, decode_gray, encode_png, encode_wsq};
use hotspot_device_protocols::station::{
    Capture, Decision, Face, FaceFormat, Finger, FingerFormat, Purpose,
};

use crate::extract::extract;
use crate::probe::{decide, probe_from_capture};
use crate::tests_fvc::{data_dir, sample_path};
use crate::{FingerprintIndex, Subject, Template};

/// A screening capture holding `fingers`, built through the wire format (so that fields added to `Capture`
/// later keep their defaults).
fn capture(fingers: Vec<Finger>) -> Capture {
    use base64::Engine as _;
    let fingers: Vec<serde_json::Value> = fingers
        .iter()
        .map(|f| {
            serde_json::json!({
                "position": f.position,
                "format": f.format.as_str(),
                "data": base64::engine::general_purpose::STANDARD.encode(&f.data),
            })
        })
        .collect();
    let c: Capture = serde_json::from_value(serde_json::json!({
        "capture_id": "00000000-0000-0000-0000-000000000001",
        "captured_at": "2025-01-01T00:00:00Z",
        "operator": "officer",
        "purpose": "screen",
        "fingers": fingers,
    }))
    .unwrap();
    assert_eq!(c.purpose, Purpose::Screen);
    c
}

fn finger(position: u8, format: FingerFormat, data: Vec<u8>) -> Finger {
    Finger {
        position,
        format,
        data,
    }
}

/// The TIFF bytes and decoded image of one FVC2002 sample.
fn fvc(db: u32, finger: u32, impression: u32) -> Option<(Vec<u8>, GrayImage)> {
    let bytes = std::fs::read(sample_path(&data_dir()?, db, finger, impression, "tif")).unwrap();
    let image = decode_gray(&bytes).unwrap();
    Some((bytes, image))
}

/// A watchlist of the first impressions of fingers 0..10 of DB1 (position 2), subject ids `s0`..`s9`.
fn watchlist() -> Option<FingerprintIndex> {
    let subjects = (0..10)
        .map(|f| {
            let (_, image) = fvc(1, f, 1)?;
            Some(Subject {
                subject_id: format!("s{f}"),
                fingers: vec![(2, extract(&image).unwrap())],
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(FingerprintIndex::build(subjects))
}

#[test]
fn images_in_every_format_are_extracted_and_decided() {
    let (Some(index), Some((tiff, image))) = (watchlist(), fvc(1, 3, 2)) else {
        return;
    };
    let png = encode_png(&image).unwrap();
    // WSQ needs sides of at least 81 px; FVC images qualify.
    let wsq = encode_wsq(&image, 2.25).unwrap();
    for (format, data) in [
        (FingerFormat::Tiff, tiff),
        (FingerFormat::Png, png),
        (FingerFormat::Wsq, wsq),
    ] {
        let probe = probe_from_capture(&capture(vec![finger(2, format, data)])).unwrap();
        assert_eq!(probe.fingers.len(), 1, "{format:?}: {:?}", probe.notes);
        let outcome = decide(&index, &probe);
        eprintln!(
            "{format:?}: {:?} {:?}",
            outcome.decision, outcome.candidates
        );
        assert_eq!(outcome.decision, Decision::Hit, "{format:?}");
        assert_eq!(outcome.candidates[0].subject_id, "s3");
    }
}

#[test]
fn an_unknown_finger_is_no_hit() {
    let (Some(index), Some((tiff, _))) = (watchlist(), fvc(2, 3, 1)) else {
        return;
    };
    let probe = probe_from_capture(&capture(vec![finger(2, FingerFormat::Tiff, tiff)])).unwrap();
    assert_eq!(decide(&index, &probe).decision, Decision::NoHit);
}

#[test]
fn malformed_images_are_refused_naming_the_field() {
    let good = Template {
        minutiae: Vec::new(),
    }
    .to_iso19794_2(1, 300, 300)
    .unwrap();
    let blank_png = encode_png(&GrayImage {
        width: 100,
        height: 100,
        ppi: None,
        pixels: vec![200; 100 * 100],
    })
    .unwrap();
    let cases = [
        (FingerFormat::Png, b"\x89PNG\r\n\x1a\nnot really".to_vec()),
        (FingerFormat::Wsq, vec![0xff, 0xa0, 0xff, 0xa8, 0, 1, 2]),
        (FingerFormat::Tiff, b"II*\x00garbage".to_vec()),
        (FingerFormat::Png, Vec::new()),
        (FingerFormat::Iso19794_2, b"FMR\x00 20\x00".to_vec()),
    ];
    for (format, data) in cases {
        let c = capture(vec![
            finger(1, FingerFormat::Iso19794_2, good.clone()),
            finger(2, format, data),
        ]);
        let err = probe_from_capture(&c).unwrap_err();
        assert!(
            err.contains("fingers[1].data") && err.contains("finger 2"),
            "{err}"
        );
    }
    // A readable image without ridges is not malformed: it is noted and the capture is inconclusive.
    let probe =
        probe_from_capture(&capture(vec![finger(4, FingerFormat::Png, blank_png)])).unwrap();
    assert!(probe.fingers.is_empty());
    assert!(probe.notes[0].contains("finger 4"), "{:?}", probe.notes);
    let outcome = decide(&FingerprintIndex::default(), &probe);
    assert_eq!(outcome.decision, Decision::Inconclusive);
    assert!(outcome.reason.unwrap().contains("finger 4"));
}

#[test]
fn a_face_alone_is_inconclusive_with_a_note() {
    let mut c = capture(Vec::new());
    c.face = Some(Face {
        format: FaceFormat::Jpeg,
        data: vec![0xff, 0xd8],
    });
    let probe = probe_from_capture(&c).unwrap();
    let outcome = decide(&FingerprintIndex::default(), &probe);
    assert_eq!(outcome.decision, Decision::Inconclusive);
    assert!(outcome.reason.unwrap().contains("face"));
}

#[test]
fn two_fingers_of_a_subject_beat_one_and_iso_records_work_alongside_images() {
    let samples = (fvc(3, 0, 1), fvc(3, 1, 1), fvc(3, 0, 3), fvc(3, 1, 3));
    let (Some((_, e0)), Some((_, e1)), Some((_, p0)), Some((t1, _))) = samples else {
        return;
    };
    let mut subjects = vec![Subject {
        subject_id: "two".to_owned(),
        fingers: vec![(1, extract(&e0).unwrap()), (6, extract(&e1).unwrap())],
    }];
    for f in 2..8 {
        let (_, image) = fvc(3, f, 1).unwrap();
        subjects.push(Subject {
            subject_id: format!("other{f}"),
            fingers: vec![(1, extract(&image).unwrap()), (6, extract(&image).unwrap())],
        });
    }
    let index = FingerprintIndex::build(subjects);
    let iso = extract(&p0).unwrap().to_iso19794_2(1, 300, 300).unwrap();
    let one = probe_from_capture(&capture(vec![finger(
        1,
        FingerFormat::Iso19794_2,
        iso.clone(),
    )]))
    .unwrap();
    let both = probe_from_capture(&capture(vec![
        finger(1, FingerFormat::Iso19794_2, iso),
        finger(6, FingerFormat::Tiff, t1),
    ]))
    .unwrap();
    let (a, b) = (decide(&index, &one), decide(&index, &both));
    eprintln!(
        "one finger {:?}, two fingers {:?}",
        a.candidates, b.candidates
    );
    assert_eq!(b.decision, Decision::Hit);
    assert_eq!(b.candidates[0].subject_id, "two");
    assert!(b.candidates[0].score >= a.candidates[0].score);
}
