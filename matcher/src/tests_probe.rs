//! Tests of the capture-to-decision path: fingers as ISO records and as PNG, WSQ and TIFF images, malformed data
//! (an error naming the field, never a panic), inconclusive captures, and multi-finger decisions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hotspot_device_protocols::image::{GrayImage, decode_gray, encode_png, encode_wsq};
use hotspot_device_protocols::station::{
    Capture, Decision, Face, FaceFormat, Finger, FingerFormat, Purpose,
};

use crate::extract::extract;
use crate::face::FaceIndex;
use crate::probe::{
    Gallery, Outcome, Probe, decide, decide_with, probe_face, probe_fingers, probe_from_capture,
    search_fingers,
};
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

/// Decides against fingerprints only.
fn decide_fingers(index: &FingerprintIndex, probe: &Probe) -> Outcome {
    let faces = FaceIndex::build(Vec::new());
    decide(
        Gallery {
            fingers: index,
            faces: &faces,
        },
        probe,
    )
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
        let probe = probe_from_capture(&capture(vec![finger(2, format, data)]), None).unwrap();
        assert_eq!(probe.fingers.len(), 1, "{format:?}: {:?}", probe.notes);
        let outcome = decide_fingers(&index, &probe);
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
    let probe =
        probe_from_capture(&capture(vec![finger(2, FingerFormat::Tiff, tiff)]), None).unwrap();
    assert_eq!(decide_fingers(&index, &probe).decision, Decision::NoHit);
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
        let err = probe_from_capture(&c, None).unwrap_err();
        assert!(
            err.contains("fingers[1].data") && err.contains("finger 2"),
            "{err}"
        );
    }
    // A readable image without ridges is not malformed: it is noted and the capture is inconclusive.
    let probe = probe_from_capture(
        &capture(vec![finger(4, FingerFormat::Png, blank_png)]),
        None,
    )
    .unwrap();
    assert!(probe.fingers.is_empty());
    assert!(probe.notes[0].contains("finger 4"), "{:?}", probe.notes);
    let outcome = decide_fingers(&FingerprintIndex::default(), &probe);
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
    let probe = probe_from_capture(&c, None).unwrap();
    let outcome = decide_fingers(&FingerprintIndex::default(), &probe);
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
    let one = probe_from_capture(
        &capture(vec![finger(1, FingerFormat::Iso19794_2, iso.clone())]),
        None,
    )
    .unwrap();
    let both = probe_from_capture(
        &capture(vec![
            finger(1, FingerFormat::Iso19794_2, iso),
            finger(6, FingerFormat::Tiff, t1),
        ]),
        None,
    )
    .unwrap();
    let (a, b) = (decide_fingers(&index, &one), decide_fingers(&index, &both));
    eprintln!(
        "one finger {:?}, two fingers {:?}",
        a.candidates, b.candidates
    );
    assert_eq!(b.decision, Decision::Hit);
    assert_eq!(b.candidates[0].subject_id, "two");
    assert!(b.candidates[0].score >= a.candidates[0].score);
}

/// Face photo bytes from the shared data, or `None` (the face tests say why they skip).
fn face_photo(rel: &str) -> Option<Vec<u8>> {
    let dir = crate::face::tests_support::faces_dir()?;
    Some(crate::face::tests_support::photo(&dir, rel))
}

fn with_face(mut c: Capture, data: Vec<u8>) -> Capture {
    c.face = Some(Face {
        format: FaceFormat::Png,
        data,
    });
    c
}

/// The face tests' gallery: [`watchlist`]'s fingers, and faces of four people ("s0", fingers of DB1 finger 0, has
/// amy's face; s1..s3 the others'), with the face engine and amy's third photo (not enrolled).
struct FaceFixture {
    engine: &'static crate::face::FaceEngine,
    fingers: FingerprintIndex,
    faces: FaceIndex,
    amy: Vec<u8>,
}

impl FaceFixture {
    /// `None` (the test is skipped) without the face models or the data.
    fn new() -> Option<Self> {
        let engine = crate::face::tests_support::engine()?;
        face_photo("faceapi-bbt/amy/amy1.png")?;
        let fingers = watchlist()?;
        let faces = FaceIndex::build(
            ["amy", "leonard", "penny", "sheldon"]
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let photo = face_photo(&format!("faceapi-bbt/{n}/{n}1.png")).unwrap();
                    (format!("s{i}"), engine.analyze(&photo).unwrap().embedding)
                })
                .collect(),
        );
        let amy = face_photo("faceapi-bbt/amy/amy3.png").unwrap();
        Some(Self {
            engine,
            fingers,
            faces,
            amy,
        })
    }

    fn gallery(&self) -> Gallery<'_> {
        Gallery {
            fingers: &self.fingers,
            faces: &self.faces,
        }
    }
}

#[test]
fn face_and_fingers_are_fused_per_subject() {
    let Some(fx) = FaceFixture::new() else {
        return;
    };
    let (engine, gallery, amy) = (fx.engine, fx.gallery(), fx.amy.clone());
    let (own_finger, _) = fvc(1, 0, 3).unwrap();
    let (stranger_finger, _) = fvc(2, 5, 1).unwrap();

    // The face alone finds amy's subject.
    let face_only =
        probe_from_capture(&with_face(capture(Vec::new()), amy.clone()), Some(engine)).unwrap();
    assert!(face_only.face.is_some());
    let alone = decide(gallery, &face_only);
    assert_eq!(alone.candidates[0].subject_id, "s0", "{alone:?}");

    // Face and the same subject's finger agree: a hit, scored above either alone.
    let own = vec![finger(2, FingerFormat::Tiff, own_finger)];
    let finger_only = decide(
        gallery,
        &probe_from_capture(&capture(own.clone()), None).unwrap(),
    );
    let both = decide(
        gallery,
        &probe_from_capture(&with_face(capture(own), amy.clone()), Some(engine)).unwrap(),
    );
    assert_eq!(both.decision, Decision::Hit, "{both:?}");
    assert_eq!(both.candidates[0].subject_id, "s0");
    eprintln!("face {alone:?}\nfinger {finger_only:?}\nboth {both:?}");
    assert!(both.candidates[0].score > alone.candidates[0].score);
    assert!(both.candidates[0].score >= finger_only.candidates[0].score);

    // Amy's face with a finger of nobody on the list: when the face alone would be a hit, the disagreement is
    // reported as inconclusive; never a plain hit.
    let mixed = decide(
        gallery,
        &probe_from_capture(
            &with_face(
                capture(vec![finger(2, FingerFormat::Tiff, stranger_finger)]),
                amy,
            ),
            Some(engine),
        )
        .unwrap(),
    );
    if alone.decision == Decision::Hit {
        assert_eq!(mixed.decision, Decision::Inconclusive, "{mixed:?}");
        assert!(mixed.reason.unwrap().contains("disagree"));
    } else {
        assert_ne!(mixed.decision, Decision::Hit, "{mixed:?}");
    }
}

#[test]
fn a_face_that_cannot_be_compared_is_noted_and_the_fingers_still_decide() {
    let Some(engine) = crate::face::tests_support::engine() else {
        return;
    };
    let (Some(index), Some((own, _))) = (watchlist(), fvc(1, 3, 2)) else {
        return;
    };
    // A plain grey picture: a valid PNG without a face.
    let grey = GrayImage {
        width: 200,
        height: 200,
        ppi: None,
        pixels: vec![128; 200 * 200],
    };
    let c = with_face(
        capture(vec![finger(2, FingerFormat::Tiff, own)]),
        encode_png(&grey).unwrap(),
    );
    let probe = probe_from_capture(&c, Some(engine)).unwrap();
    assert!(probe.face.is_none());
    assert!(
        probe
            .face_problem
            .as_deref()
            .unwrap()
            .contains("no face found")
    );
    let outcome = decide_fingers(&index, &probe);
    assert_eq!(outcome.decision, Decision::Hit, "{outcome:?}");
    assert!(outcome.reason.unwrap().contains("no face found"));
    // Without models, a face is noted as not compared; bytes that are no photo reject the capture.
    let probe = probe_from_capture(&c, None).unwrap();
    assert!(probe.face_problem.unwrap().contains("not installed"));
    let bad = with_face(capture(Vec::new()), b"not a photo".to_vec());
    assert!(
        probe_from_capture(&bad, Some(engine))
            .unwrap_err()
            .contains("face.data")
    );
}

#[test]
fn the_finger_search_made_before_the_face_is_known_decides_the_same() {
    let Some(fx) = FaceFixture::new() else {
        return;
    };
    let (engine, gallery, amy) = (fx.engine, fx.gallery(), fx.amy.clone());
    let (own, _) = fvc(1, 0, 3).unwrap();
    let (stranger, _) = fvc(2, 5, 1).unwrap();
    let (low, _) = fvc(1, 4, 2).unwrap();
    let captures = [
        // The same subject on both sides; a stranger's finger with a listed face (the face's candidate scores 0
        // on its fingers, so it is not among the finger search's best and is scored afterwards); two fingers; a
        // face alone; fingers alone.
        with_face(
            capture(vec![finger(2, FingerFormat::Tiff, own.clone())]),
            amy.clone(),
        ),
        with_face(
            capture(vec![finger(2, FingerFormat::Tiff, stranger.clone())]),
            amy.clone(),
        ),
        with_face(
            capture(vec![
                finger(2, FingerFormat::Tiff, own.clone()),
                finger(7, FingerFormat::Tiff, low),
            ]),
            amy.clone(),
        ),
        with_face(capture(Vec::new()), amy),
        capture(vec![finger(2, FingerFormat::Tiff, stranger)]),
    ];
    let mut scored_afterwards = 0;
    for c in &captures {
        let whole = decide(gallery, &probe_from_capture(c, Some(engine)).unwrap());
        let mut probe = probe_fingers(c).unwrap();
        let found = search_fingers(gallery, &probe.fingers);
        let part = probe_face(c, Some(engine)).unwrap();
        assert_eq!(part.is_comparable(), c.face.is_some());
        if part.is_comparable()
            && !probe.fingers.is_empty()
            && !found.0.iter().any(|f| f.subject_id == "s0")
        {
            scored_afterwards += 1;
        }
        probe.add_face(part);
        assert_eq!(decide_with(gallery, &probe, found), whole, "{c:?}");
    }
    assert!(
        scored_afterwards > 0,
        "no capture had a face candidate missing from the finger search's best"
    );
}

#[test]
fn fingers_with_nothing_comparable_in_a_subject_give_no_evidence_against_its_face() {
    let Some(fx) = FaceFixture::new() else {
        return;
    };
    let (engine, gallery, amy) = (fx.engine, fx.gallery(), fx.amy.clone());
    let alone = decide(
        gallery,
        &probe_from_capture(&with_face(capture(Vec::new()), amy.clone()), Some(engine)).unwrap(),
    );
    // The watchlist's fingers are all at position 2: a finger at position 7 has nothing to compare with in s0
    // (nor in anyone), so the face decides as if the finger were not there, and no disagreement is reported.
    let (other_finger, _) = fvc(1, 0, 3).unwrap();
    let with_finger = decide(
        gallery,
        &probe_from_capture(
            &with_face(
                capture(vec![finger(7, FingerFormat::Tiff, other_finger)]),
                amy,
            ),
            Some(engine),
        )
        .unwrap(),
    );
    assert_eq!(alone.candidates[0].subject_id, "s0", "{alone:?}");
    assert_eq!(with_finger.decision, alone.decision, "{with_finger:?}");
    assert_eq!(with_finger.candidates, alone.candidates, "{with_finger:?}");
    assert!(
        !with_finger
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("disagree"),
        "{with_finger:?}"
    );
}
