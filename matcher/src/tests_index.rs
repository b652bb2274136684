//! Tests of the 1:N index: ranking, finger-position rules, fusion, truncation, and a real-data search.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::tests_support::{impression, random_template, rng};
use crate::{FingerprintIndex, HIT_THRESHOLD, PreparedTemplate, Subject, Template, compare};

const SUBJECTS: usize = 25;

/// `t` as a watchlist stores it (through the template codec).
fn stored(t: Template) -> Template {
    Template::decode(&t.encode()).unwrap()
}

/// `SUBJECTS` subjects with a right index (2) and left index (7) finger each, as stored.
fn watchlist(seed: u64) -> Vec<Subject> {
    let mut r = rng(seed);
    (0..SUBJECTS)
        .map(|k| Subject {
            subject_id: format!("subject-{k:02}"),
            fingers: vec![
                (2, stored(random_template(&mut r, 35))),
                (7, stored(random_template(&mut r, 30))),
            ],
        })
        .collect()
}

fn new_impression(seed: u64, t: &Template) -> Template {
    impression(&mut rng(seed), t, (12.0, -15.0, 20.0), 3.0, 0.2, 5)
}

#[test]
fn probe_from_subject_k_ranks_k_first() {
    let subjects = watchlist(10);
    let index = FingerprintIndex::build(subjects.clone());
    assert_eq!((index.len(), index.is_empty()), (SUBJECTS, false));
    for k in [0, 7, 13, 24] {
        let probe = [(2, new_impression(100 + k as u64, &subjects[k].fingers[0].1))];
        let found = index.search(&probe, 5);
        assert_eq!(found[0].subject_id, subjects[k].subject_id);
        assert!(found[0].score >= HIT_THRESHOLD, "{found:?}");
        assert!(
            found.iter().skip(1).all(|c| c.score < HIT_THRESHOLD),
            "{found:?}"
        );
        assert!(
            found.windows(2).all(|w| w[0].score >= w[1].score),
            "{found:?}"
        );
        assert!(found.len() <= 5);
    }
}

#[test]
fn fingers_are_compared_only_at_the_same_or_unknown_position() {
    let subjects = watchlist(11);
    let index = FingerprintIndex::build(subjects.clone());
    let finger = new_impression(200, &subjects[3].fingers[0].1);
    // Right index probed as right middle (3): no subject has that finger, so nothing is compared.
    assert!(index.search(&[(3, finger.clone())], 5).is_empty());
    // Probed as left index (7): compared with the other finger only; subject 3 does not come out on top.
    let as_left = index.search(&[(7, finger.clone())], 5);
    assert!(
        as_left.first().is_none_or(|c| c.score < HIT_THRESHOLD),
        "{as_left:?}"
    );
    // Unknown position (0) is compared with every finger and finds subject 3.
    let unknown = index.search(&[(0, finger)], 5);
    assert_eq!(unknown[0].subject_id, "subject-03");
}

#[test]
fn scores_of_several_probe_fingers_are_fused() {
    let subjects = watchlist(12);
    let index = FingerprintIndex::build(subjects.clone());
    let right = new_impression(300, &subjects[5].fingers[0].1);
    let left = new_impression(301, &subjects[5].fingers[1].1);
    let alone = |pos: u8, t: &Template| {
        let found = index.search(&[(pos, t.clone())], 1);
        assert_eq!(found[0].subject_id, "subject-05");
        found[0].score
    };
    let (r, l) = (alone(2, &right), alone(7, &left));
    let both = index.search(&[(2, right.clone()), (7, left.clone())], 1);
    assert_eq!(both[0].subject_id, "subject-05");
    let fused = crate::calibration::fuse(&[r, l]);
    assert!(
        (both[0].score - fused).abs() < 1e-3,
        "{} vs fuse({r}, {l}) = {fused}",
        both[0].score
    );
    // Two agreeing fingers are stronger evidence than either alone.
    assert!(fused > r.max(l) || fused == crate::calibration::MAX_SCORE);
    let direct = compare(
        &PreparedTemplate::new(&right),
        &PreparedTemplate::new(&subjects[5].fingers[0].1),
    );
    assert!((direct - r).abs() < 1e-6);
}

#[test]
fn empty_index_and_zero_candidates_give_nothing() {
    let empty = FingerprintIndex::build(Vec::new());
    assert!(empty.is_empty());
    assert_eq!(empty.len(), 0);
    let t = random_template(&mut rng(13), 30);
    assert!(empty.search(&[(1, t.clone())], 5).is_empty());
    let index = FingerprintIndex::build(watchlist(14));
    assert!(index.search(&[(2, t.clone())], 0).is_empty());
    assert!(index.search(&[], 5).is_empty());
    assert!(index.search(&[(2, t)], 3).len() <= 3);
}

#[test]
fn fvc_fingers_are_found_among_40_subjects() {
    let Some(samples) = crate::tests_fvc::images() else {
        return;
    };
    let enrolled = samples.iter().filter(|s| s.impression == 1);
    let subjects = enrolled
        .map(|s| Subject {
            subject_id: format!("DB{}-{}", s.db, 101 + s.finger),
            fingers: vec![(0, s.template.clone())],
        })
        .collect();
    let index = FingerprintIndex::build(subjects);
    let probes: Vec<_> = samples
        .iter()
        .filter(|s| s.impression == 2 || s.impression == 4)
        .collect();
    let mut first = 0;
    for p in &probes {
        let found = index.search(&[(0, p.template.clone())], 3);
        first += usize::from(
            found
                .first()
                .is_some_and(|c| c.subject_id == format!("DB{}-{}", p.db, 101 + p.finger)),
        );
    }
    eprintln!(
        "1:40 search: {first}/{} probes rank their own finger first",
        probes.len()
    );
    assert!(first * 100 >= probes.len() * 95, "{first}/{}", probes.len());
}

/// The index keeps every finger in shared arrays (minutiae at the codec's precision, edges without their cell)
/// and makes each candidate's grid and area during the search, with one scratch reused across candidates of
/// different sizes: for templates from the codec, as watchlists are stored, every subject's score must be exactly
/// what comparing its own prepared templates one by one gives, whatever templates were compared before it.
#[test]
fn index_scores_equal_one_to_one_comparisons() {
    let mut r = rng(15);
    let enrolled: Vec<Vec<Template>> = (0..40)
        .map(|k| {
            // Sizes from 3 to 80 minutiae, and one subject with no finger in common with the probes.
            let n = 3 + (k * 37) % 78;
            vec![
                stored(random_template(&mut r, n)),
                stored(random_template(&mut r, 45)),
            ]
        })
        .collect();
    let subjects: Vec<Subject> = enrolled
        .iter()
        .enumerate()
        .map(|(k, f)| Subject {
            subject_id: format!("s{k:02}"),
            fingers: if k == 7 {
                vec![(9, f[0].clone())]
            } else {
                vec![(2, f[0].clone()), (2, f[1].clone())]
            },
        })
        .collect();
    let index = FingerprintIndex::build(subjects.clone());
    for k in [5, 11, 23, 39] {
        let probe = new_impression(400 + k as u64, &enrolled[k][0]);
        let matcher = crate::Matcher::new(&probe);
        let found = index.search(&[(2, probe.clone())], usize::MAX);
        for s in &subjects {
            let expected = if s.fingers[0].0 == 2 {
                crate::calibration::fuse(&[crate::calibration::best_of(
                    s.fingers
                        .iter()
                        .map(|(_, t)| matcher.score(&PreparedTemplate::new(t))),
                )])
            } else {
                0.0
            };
            let got = found
                .iter()
                .find(|c| c.subject_id == s.subject_id)
                .map_or(0.0, |c| c.score);
            assert_eq!(
                got.to_bits(),
                expected.to_bits(),
                "{}: {got} vs {expected}",
                s.subject_id
            );
        }
        assert_eq!(found[0].subject_id, format!("s{k:02}"), "{found:?}");
    }
}

/// The index holds each finger as its minutiae (6 bytes) and candidate edges (6 bytes) only: about 1.1 KB for 45
/// minutiae (a bound that fails if per-finger areas, grids or probe-only edges come back, each several hundred
/// bytes, or if minutiae or edges grow back to a larger size: 8-byte edges made about 1.4 KB).
#[test]
fn index_memory_per_finger_is_bounded() {
    let mut r = rng(16);
    let subjects: Vec<Subject> = (0..200)
        .map(|k| Subject {
            subject_id: format!("subject-{k:04}"),
            fingers: (1..=10).map(|p| (p, random_template(&mut r, 45))).collect(),
        })
        .collect();
    let one: usize = subjects[0]
        .fingers
        .iter()
        .map(|(_, t)| PreparedTemplate::new(t).heap_bytes())
        .sum();
    let index = FingerprintIndex::build(subjects);
    let per_finger = index.heap_bytes() / 2000;
    eprintln!(
        "index: {per_finger} bytes per finger of 45 minutiae (one subject alone: {one} bytes)"
    );
    assert!(per_finger < 1250, "{per_finger} bytes per finger");
    assert!(per_finger * 10 >= one / 2, "{per_finger} vs {one}");
}
