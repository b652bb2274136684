//! Tests of one-to-one comparison: identity, rotation and translation invariance (also as property tests),
//! symmetry, separation of synthetic mates from non-mates, and bounds on arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rand::Rng;

use crate::tests_support::{impression, random_template, rng, rotate_shift};
use crate::{HIT_THRESHOLD, Matcher, Minutia, MinutiaKind, PreparedTemplate, Template, compare};

/// Calibrated score.
fn score(a: &Template, b: &Template) -> f32 {
    compare(&PreparedTemplate::new(a), &PreparedTemplate::new(b))
}

fn raw(a: &Template, b: &Template) -> f32 {
    Matcher::new(a).raw_score(&PreparedTemplate::new(b))
}

#[test]
fn identical_templates_score_raw_100() {
    let t = random_template(&mut rng(1), 40);
    let s = raw(&t, &t);
    assert!((s - 100.0).abs() < 0.01, "{s}");
    assert!(score(&t, &t) >= HIT_THRESHOLD);
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
    let (before, after) = (raw(&original, &third), raw(&moved, &third));
    eprintln!("original vs third {before:.3}, moved vs third {after:.3}");
    assert!(score(&original, &third) >= HIT_THRESHOLD, "{before}");
    assert!(
        (before - after).abs() <= 0.01 * before,
        "{before} vs {after}"
    );
    // And the moved copy still matches the original perfectly.
    assert!(raw(&moved, &original) > 99.0);
}

#[test]
fn rotation_invariance_holds_on_real_templates() {
    let Some(samples) = crate::tests_fvc::images() else {
        return;
    };
    let mut worst = 0.0f32;
    for pair in samples.chunks_exact(4).step_by(3) {
        let (first, second) = (&pair[0].template, &pair[1].template);
        let (before, after) = (
            raw(first, second),
            raw(&rotate_shift(first, 30.0, 40.0, -25.0), second),
        );
        worst = worst.max((before - after).abs() / before.max(1.0));
    }
    eprintln!(
        "largest relative change after rotating by 30 degrees and shifting by (40, -25): {worst:.4}"
    );
    // Edge shapes are quantised to 1/65536 turn and 1/16 px: rotation may move a few borderline links.
    assert!(worst <= 0.05, "{worst}");
}

/// Largest `|s(a, b) - s(b, a)|` relative to the larger of the two (calibrated), over mated pairs, and the largest
/// absolute difference over non-mated pairs.
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
    assert!(mates_relative <= 0.2, "{mates_relative}");
    assert!(
        non_mates_absolute <= HIT_THRESHOLD / 2.0,
        "{non_mates_absolute}"
    );

    let Some(samples) = crate::tests_fvc::images() else {
        return;
    };
    let by_finger: Vec<&[crate::tests_fvc::Sample]> = samples.chunks_exact(4).collect();
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
    assert!(mates_relative <= 0.35, "{mates_relative}");
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
    fn scores_are_finite_and_within_bounds(
        a in prop::collection::vec(minutia_strategy(), 0..40),
        b in prop::collection::vec(minutia_strategy(), 0..40),
    ) {
        let (a, b) = (Template { minutiae: a }, Template { minutiae: b });
        let (r, s) = (raw(&a, &b), score(&a, &b));
        prop_assert!(r.is_finite() && (0.0..=100.0 + 1e-3).contains(&r), "{}", r);
        prop_assert!(s.is_finite() && (0.0..=crate::calibration::MAX_SCORE).contains(&s), "{}", s);
    }

    // Moving a whole template (any rotation, any shift) changes its scores against a mate very little.
    #[test]
    fn scores_are_invariant_to_rotation_and_translation(
        seed in 0u64..1000,
        degrees in -180.0f32..180.0,
        dx in -150.0f32..150.0,
        dy in -150.0f32..150.0,
    ) {
        let mut r = rng(seed);
        let a = random_template(&mut r, 35);
        let b = impression(&mut r, &a, (10.0, 5.0, -5.0), 3.0, 0.2, 5);
        let (before, after) = (raw(&a, &b), raw(&rotate_shift(&a, degrees, dx, dy), &b));
        prop_assert!((before - after).abs() <= 0.05 * before.max(10.0), "{} vs {}", before, after);
    }

    // Swapping probe and candidate changes a mate's calibrated score little, and a non-mate's stays low.
    #[test]
    fn scores_are_nearly_symmetric(seed in 0u64..1000, degrees in -45.0f32..45.0) {
        let mut r = rng(seed);
        let a = random_template(&mut r, 40);
        let b = impression(&mut r, &a, (degrees, 12.0, 7.0), 3.0, 0.2, 6);
        let (ab, ba) = (score(&a, &b), score(&b, &a));
        prop_assert!((ab - ba).abs() <= 0.2 * ab.max(ba), "{} vs {}", ab, ba);
        let c = random_template(&mut r, 40);
        prop_assert!(score(&a, &c).max(score(&c, &a)) < HIT_THRESHOLD);
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
        let s = raw(a, b);
        assert!(s.is_finite() && (0.0..=100.0 + 1e-3).contains(&s), "{s}");
    }
    // The 20 untouched minutiae still match.
    assert!(score(&odd, &t) >= HIT_THRESHOLD);
}

#[test]
fn crowded_templates_are_compared_without_trouble() {
    let mut r = rng(8);
    // More minutiae than a template holds (255), closely packed: every minutia has many close neighbours.
    let crowded = random_template(&mut r, 400);
    let other = impression(&mut r, &crowded, (5.0, 3.0, -2.0), 2.0, 0.1, 20);
    for (a, b) in [(&crowded, &other), (&other, &crowded), (&crowded, &crowded)] {
        let s = raw(a, b);
        assert!(s.is_finite() && (0.0..=100.0 + 1e-3).contains(&s), "{s}");
    }
    assert!(score(&crowded, &other) >= HIT_THRESHOLD);
}
