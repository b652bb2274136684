//! Tests of the calibrated scale and of multi-finger fusion: the mapping is monotone and matches its definition,
//! and fused impostor scores exceed a threshold about as often as its FMR says, for one finger or several (by
//! simulation, and on real impostor comparisons).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rand::Rng;

use crate::calibration::{KNOTS, MAX_SCORE, best_of, calibrate, fmr_of, fuse, threshold_for_fmr};
use crate::tests_support::rng;
use crate::{DECISION_FPIR, HIT_THRESHOLD, Matcher, hit_threshold};

#[test]
fn knots_increase_and_are_reproduced() {
    assert!(KNOTS.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
    for &(raw, cal) in &KNOTS {
        assert!(
            (calibrate(raw) - cal).abs() < 1e-3,
            "{raw} -> {}",
            calibrate(raw)
        );
    }
    assert_eq!(calibrate(0.0), 0.0);
    assert_eq!(calibrate(-3.0), 0.0);
    assert_eq!(calibrate(f32::NAN), 0.0);
    assert_eq!(calibrate(1000.0), MAX_SCORE);
    let last = KNOTS[KNOTS.len() - 1];
    assert!(calibrate(last.0 + 5.0) > last.1);
}

#[test]
fn thresholds_and_fmr_are_inverse() {
    assert!((threshold_for_fmr(1e-3) - 30.0).abs() < 1e-4);
    assert!((threshold_for_fmr(1e-4) - 40.0).abs() < 1e-4);
    assert_eq!(threshold_for_fmr(0.0), MAX_SCORE);
    assert_eq!(threshold_for_fmr(2.0), 0.0);
    for s in [0.0f32, 12.5, 30.0, 55.0] {
        assert!((threshold_for_fmr(fmr_of(s)) - s).abs() < 1e-3);
    }
    assert_eq!(HIT_THRESHOLD, threshold_for_fmr(1e-4));
}

#[test]
fn the_hit_threshold_grows_with_the_watchlist() {
    assert_eq!(hit_threshold(0), HIT_THRESHOLD);
    assert_eq!(hit_threshold(50), HIT_THRESHOLD);
    let big = hit_threshold(10_000);
    assert!((big - threshold_for_fmr(DECISION_FPIR / 10_000.0)).abs() < 1e-4);
    assert!(big > hit_threshold(1_000) && hit_threshold(1_000) > HIT_THRESHOLD);
}

proptest! {
    #[test]
    fn calibration_is_monotone(a in 0.0f32..120.0, b in 0.0f32..120.0) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(calibrate(lo) <= calibrate(hi));
    }

    #[test]
    fn fusion_is_monotone_and_bounded(scores in prop::collection::vec(0.0f32..120.0, 1..10), k in 0usize..10, up in 0.0f32..20.0) {
        let fused = fuse(&scores);
        prop_assert!((0.0..=MAX_SCORE).contains(&fused));
        let mut raised = scores.clone();
        let k = k % raised.len();
        raised[k] += up;
        prop_assert!(fuse(&raised) >= fused);
        // A finger with no evidence never helps.
        let mut more = scores.clone();
        more.push(0.0);
        prop_assert!(fuse(&more) <= fused + 1e-3);
    }
}

#[test]
fn fusion_of_one_finger_is_the_identity_and_best_of_corrects_for_chances() {
    assert_eq!(fuse(&[]), 0.0);
    assert_eq!(fuse(&[37.5]), 37.5);
    assert_eq!(best_of([].into_iter()), 0.0);
    assert_eq!(best_of([31.0].into_iter()), 31.0);
    // Best of ten: ten chances, one decade of FMR.
    assert!(
        (best_of([40.0, 3.0, 0.0, 1.0, 2.0, 5.0, 8.0, 1.0, 0.0, 2.0].into_iter()) - 30.0).abs()
            < 1e-4
    );
}

/// Share of simulated impostor subjects (each finger's score the decibel value of a uniform p-value) whose fused
/// score reaches `t`.
fn simulated_exceedance(fingers: usize, t: f32, trials: usize) -> f64 {
    let mut r = rng(fingers as u64);
    let mut scores = vec![0.0f32; fingers];
    let mut hits = 0;
    for _ in 0..trials {
        for s in &mut scores {
            let p: f64 = r.random_range(f64::MIN_POSITIVE..1.0);
            *s = threshold_for_fmr(p);
        }
        hits += usize::from(fuse(&scores) >= t);
    }
    hits as f64 / trials as f64
}

#[test]
fn fused_scores_keep_their_false_match_rate_whatever_the_number_of_fingers() {
    // FMR 1e-2 at 20: 200 000 trials expect 2 000 exceedances; allow 15% either way.
    for fingers in [1, 2, 4, 10] {
        let measured = simulated_exceedance(fingers, 20.0, 200_000);
        eprintln!(
            "{fingers} fingers: fused >= 20 in {measured:.5} of impostor subjects (nominal 0.01)"
        );
        assert!(
            (0.0085..=0.0115).contains(&measured),
            "{fingers}: {measured}"
        );
    }
}

#[test]
fn fused_real_impostor_scores_stay_below_the_hit_threshold() {
    let Some(samples) = crate::tests_fvc::images() else {
        return;
    };
    // Real impostor finger scores (different fingers of one database), shuffled and fused four at a time as if a
    // four-finger probe had met a subject who is someone else.
    let mut impostor = Vec::new();
    for (k, a) in samples.iter().enumerate() {
        let m = Matcher::from_prepared(a.prepared.clone());
        for b in samples[k + 1..]
            .iter()
            .filter(|b| b.db == a.db && !a.same_finger(b))
        {
            impostor.push(m.score(&b.prepared));
        }
    }
    let mut top = impostor.clone();
    top.sort_by(|a, b| b.total_cmp(a));
    eprintln!("highest impostor finger scores: {:?}", &top[..8]);
    let mut r = rng(7);
    for k in (1..impostor.len()).rev() {
        impostor.swap(k, r.random_range(0..=k));
    }
    let subjects: Vec<f32> = impostor.chunks_exact(4).map(fuse).collect();
    let over_30 = subjects.iter().filter(|&&s| s >= 30.0).count();
    let over_hit = subjects.iter().filter(|&&s| s >= HIT_THRESHOLD).count();
    eprintln!(
        "{} fused 4-finger impostor subjects: {over_30} at or above 30 (nominal {:.2}), {over_hit} at or above {HIT_THRESHOLD}",
        subjects.len(),
        subjects.len() as f64 * 1e-3
    );
    // 720 subjects: at FMR 1e-3 about 0.7 expected (5 or more has a chance below 1e-3), at 1e-4 about 0.07; a
    // plain sum of the four scores would put about a hundred above 30.
    let summed = impostor
        .chunks_exact(4)
        .filter(|c| c.iter().sum::<f32>() >= 30.0)
        .count();
    eprintln!("plain sums at or above 30: {summed}");
    assert!(over_30 <= 4, "{over_30}");
    assert!(over_hit <= 1, "{over_hit}");
    assert!(summed > 10 * over_30.max(1), "{summed}");
}
