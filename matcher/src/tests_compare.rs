//! Tests of one-to-one comparison: identity, rotation and translation invariance, rough symmetry, separation of
//! synthetic mates from non-mates, and bounds on arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rand::Rng;

use crate::tests_support::{impression, random_template, rng, rotate_shift};
use crate::{HIT_THRESHOLD, Minutia, MinutiaKind, PreparedTemplate, Template, compare};

fn score(a: &Template, b: &Template) -> f32 {
    compare(&PreparedTemplate::new(a), &PreparedTemplate::new(b))
}

#[test]
fn identical_templates_score_100() {
    let t = random_template(&mut rng(1), 40);
    let s = score(&t, &t);
    assert!((s - 100.0).abs() < 0.01, "{s}");
}

#[test]
fn too_few_minutiae_score_0() {
    let t = random_template(&mut rng(2), 30);
    let one = Template {
        minutiae: t.minutiae[..1].to_vec(),
    };
    let none = Template { minutiae: vec![] };
    assert_eq!(score(&t, &one), 0.0);
    assert_eq!(score(&none, &t), 0.0);
    assert_eq!(score(&none, &none), 0.0);
}

#[test]
fn rotation_and_translation_do_not_change_the_score() {
    let mut r = rng(3);
    let original = random_template(&mut r, 40);
    let third = impression(&mut r, &original, (8.0, 6.0, -10.0), 3.0, 0.2, 6);
    let moved = rotate_shift(&original, 30.0, 40.0, -25.0);
    let (before, after) = (score(&original, &third), score(&moved, &third));
    eprintln!("original vs third {before:.3}, moved vs third {after:.3}");
    assert!(before >= HIT_THRESHOLD, "{before}");
    assert!(
        (before - after).abs() <= 0.01 * before,
        "{before} vs {after}"
    );
    // And the moved copy still matches the original perfectly.
    assert!(score(&moved, &original) > 99.0);
}

#[test]
fn rotation_invariance_holds_on_real_templates() {
    let Some(samples) = crate::tests_fvc::load() else {
        return;
    };
    let mut worst = 0.0f32;
    for pair in samples.chunks_exact(8).step_by(3) {
        let (first, second) = (&pair[0].template, &pair[1].template);
        let (before, after) = (
            score(first, second),
            score(&rotate_shift(first, 30.0, 40.0, -25.0), second),
        );
        worst = worst.max((before - after).abs() / before.max(1.0));
    }
    eprintln!(
        "largest relative change after rotating by 30 degrees and shifting by (40, -25): {worst:.4}"
    );
    assert!(worst <= 0.02, "{worst}");
}

/// Largest `|s(a, b) - s(b, a)|` relative to the larger of the two, over mated pairs, and the largest absolute
/// difference over non-mated pairs.
fn asymmetry(mates: &[(Template, Template)], non_mates: &[(Template, Template)]) -> (f32, f32) {
    let relative = mates.iter().map(|(a, b)| {
        let (ab, ba) = (score(a, b), score(b, a));
        (ab - ba).abs() / ab.max(ba).max(1.0)
    });
    let absolute = non_mates
        .iter()
        .map(|(a, b)| (score(a, b) - score(b, a)).abs());
    (relative.fold(0.0, f32::max), absolute.fold(0.0, f32::max))
}

#[test]
fn comparison_is_roughly_symmetric() {
    let mut r = rng(4);
    let (mut mates, mut non_mates) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let n = r.random_range(20..50);
        let a = random_template(&mut r, n);
        let degrees = r.random_range(-40.0..40.0);
        let b = impression(&mut r, &a, (degrees, 15.0, -5.0), 4.0, 0.25, 8);
        mates.push((a.clone(), b));
        non_mates.push((a, random_template(&mut r, 35)));
    }
    let (mates_relative, non_mates_absolute) = asymmetry(&mates, &non_mates);
    eprintln!(
        "synthetic: mates differ by up to {mates_relative:.3} (relative), non-mates by {non_mates_absolute:.2}"
    );
    assert!(mates_relative <= 0.15, "{mates_relative}");
    assert!(
        non_mates_absolute <= HIT_THRESHOLD / 2.0,
        "{non_mates_absolute}"
    );

    let Some(samples) = crate::tests_fvc::load() else {
        return;
    };
    let by_finger: Vec<&[crate::tests_fvc::Sample]> = samples.chunks_exact(8).collect();
    let mates: Vec<_> = by_finger
        .iter()
        .map(|f| (f[0].template.clone(), f[1].template.clone()))
        .collect();
    let non_mates: Vec<_> = by_finger
        .windows(2)
        .map(|w| (w[0][0].template.clone(), w[1][0].template.clone()))
        .collect();
    let (mates_relative, non_mates_absolute) = asymmetry(&mates, &non_mates);
    eprintln!(
        "FVC: mates differ by up to {mates_relative:.3} (relative), non-mates by {non_mates_absolute:.2}"
    );
    assert!(mates_relative <= 0.15, "{mates_relative}");
    assert!(
        non_mates_absolute <= HIT_THRESHOLD / 2.0,
        "{non_mates_absolute}"
    );
}

#[test]
fn synthetic_mates_score_above_the_threshold_and_non_mates_below() {
    let mut r = rng(5);
    let (mut mates, mut non_mates) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let a = random_template(&mut r, 35);
        let degrees = r.random_range(-30.0..30.0);
        let b = impression(&mut r, &a, (degrees, 20.0, 10.0), 4.0, 0.2, 5);
        mates.push(score(&a, &b));
        non_mates.push(score(&a, &random_template(&mut r, 35)));
    }
    let lowest_mate = mates.iter().copied().fold(f32::INFINITY, f32::min);
    let highest_non_mate = non_mates.iter().copied().fold(0.0, f32::max);
    eprintln!("lowest mate {lowest_mate:.2}, highest non-mate {highest_non_mate:.2}");
    assert!(lowest_mate >= HIT_THRESHOLD);
    assert!(highest_non_mate < HIT_THRESHOLD);
}

fn minutia_strategy() -> impl Strategy<Value = Minutia> {
    (0.0f32..60.0, 0.0f32..60.0, -10.0f32..10.0, any::<u8>()).prop_map(|(x, y, angle, quality)| {
        Minutia {
            x,
            y,
            angle,
            kind: MinutiaKind::RidgeEnding,
            quality,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    // Crowded, duplicated and out-of-range input (angles outside [0, 2 pi), coincident points) stays in bounds.
    #[test]
    fn scores_are_finite_and_within_0_to_100(
        a in prop::collection::vec(minutia_strategy(), 0..40),
        b in prop::collection::vec(minutia_strategy(), 0..40),
    ) {
        let (a, b) = (Template { minutiae: a }, Template { minutiae: b });
        let s = score(&a, &b);
        prop_assert!(s.is_finite() && (0.0..=100.0 + 1e-3).contains(&s), "{}", s);
    }
}

#[test]
fn non_finite_coordinates_and_angles_do_not_break_comparison() {
    let t = random_template(&mut rng(6), 30);
    let mut odd = t.clone();
    for (k, m) in odd.minutiae.iter_mut().enumerate().take(10) {
        match k % 3 {
            0 => m.x = f32::NAN,
            1 => m.y = f32::INFINITY,
            _ => m.angle = f32::NEG_INFINITY,
        }
    }
    for (a, b) in [(&odd, &t), (&t, &odd), (&odd, &odd)] {
        let s = score(a, b);
        assert!(s.is_finite() && (0.0..=100.0 + 1e-3).contains(&s), "{s}");
    }
    // The 20 untouched minutiae still match.
    assert!(score(&odd, &t) >= HIT_THRESHOLD);
}
