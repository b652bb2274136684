//! Calibrated scores and the fusion of several fingers.
//!
//! # Scale
//! A calibrated score `s` states how rare it is among impostors: `s = -10 * log10(FMR)`, where FMR is the share of
//! comparisons of different fingers scoring at least as high. So 30 means "one impostor comparison in a thousand
//! scores this high", 40 one in ten thousand; [`threshold_for_fmr`] is this formula turned around.
//!
//! The raw comparison score (0..=100, see [`crate::compare`](mod@crate::compare)) is mapped to this scale by
//! [`calibrate`], a piecewise-linear interpolation through [`KNOTS`]: raw scores measured at FMR 10^-0.5 ..
//! 10^-4 on impostor comparisons. Past the last knot the impostor tail is extrapolated exponentially (the measured
//! tail is close to exponential: each further decade of FMR costs about the same raw score), and results are
//! capped at [`MAX_SCORE`]. How the knots were measured: [`KNOTS`].
//!
//! # Several fingers
//! For a probe of `k` fingers, each finger's calibrated score is a p-value on the decibel scale. If the subject is
//! not the traveller, the `k` comparisons are independent impostor comparisons, and the sum of their scores,
//! `x = sum(s_i) * ln(10) / 10`, is the sum of `k` standard exponential variables (Fisher's method). The chance of
//! an impostor subject reaching `x` is `P(Gamma(k) >= x) = exp(-x) * sum_{n<k} x^n / n!`, and [`fuse`] returns
//! that chance back on the decibel scale. So a fused score means the same FMR whatever the number of fingers, and
//! one threshold serves probes of one to ten fingers.
//!
//! A probe finger of unknown position is compared with every finger of the subject and keeps the best: its score
//! is reduced by `10 * log10(m)` for `m` fingers compared ([`best_of`]), since the best of `m` impostor
//! comparisons reaches any FMR `m` times as often.

/// Calibrated scores are capped here (FMR 1e-10): beyond, the extrapolation means nothing.
pub const MAX_SCORE: f32 = 100.0;

/// `(raw score, calibrated score)` knots, raw increasing.
///
/// # How they were measured
/// `cargo test --release -p hotspot-matcher fvc_calibration -- --ignored --nocapture` (`tests_fvc.rs`) extracts
/// the 320 FVC2002 DB1-DB4 set B images, compares every pair and prints these knots: the raw score reached by a
/// share 10^-1, 10^-1.5, ..., 10^-4 of the impostor comparisons (pairs of different fingers, within and across
/// databases: 49 920 pairs). About 70% of impostor comparisons score exactly 0 (no pairing grew), so the shares
/// 10^-0.5 and above sit at raw 0; the first knot maps raw 0 to calibrated 0 (no evidence), and scores between 0
/// and the 10^-1 knot are interpolated, which understates them (errs towards a higher FMR).
pub const KNOTS: [(f32, f32); 8] = [
    (0.0, 0.0),
    (7.54, 10.0),
    (11.13, 15.0),
    (14.41, 20.0),
    (17.63, 25.0),
    (20.60, 30.0),
    (24.22, 35.0),
    (27.32, 40.0),
];

/// Extrapolation slope (calibrated per raw point) past the last knot: the average slope of the last four
/// segments, steadier than the last segment alone (few impostors are that high).
fn tail_slope() -> f32 {
    let (last, earlier) = (KNOTS[KNOTS.len() - 1], KNOTS[KNOTS.len() - 5]);
    (last.1 - earlier.1) / (last.0 - earlier.0)
}

/// The calibrated score of a raw comparison score.
pub fn calibrate(raw: f32) -> f32 {
    if raw.is_nan() || raw <= KNOTS[0].0 {
        return 0.0;
    }
    let at = KNOTS.partition_point(|k| k.0 <= raw);
    let score = match (KNOTS.get(at - 1), KNOTS.get(at)) {
        (Some(a), Some(b)) => a.1 + (raw - a.0) * (b.1 - a.1) / (b.0 - a.0),
        (Some(last), None) => last.1 + (raw - last.0) * tail_slope(),
        _ => 0.0,
    };
    score.clamp(0.0, MAX_SCORE)
}

/// The calibrated score at which impostor comparisons match at the false match rate `fmr` (in (0, 1]).
pub fn threshold_for_fmr(fmr: f64) -> f32 {
    if fmr.is_nan() || fmr <= 0.0 {
        return MAX_SCORE;
    }
    (-10.0 * fmr.min(1.0).log10()) as f32
}

/// The false match rate a calibrated score stands for.
pub fn fmr_of(score: f32) -> f64 {
    10f64.powf(-f64::from(score) / 10.0)
}

/// The best of `m` calibrated scores of one probe finger against `m` fingers of a subject, corrected for having
/// had `m` chances (see the module docs); 0 when `m` is 0.
pub fn best_of(scores: impl Iterator<Item = f32>) -> f32 {
    let (mut best, mut m) = (0.0f32, 0usize);
    for s in scores {
        best = best.max(s);
        m += 1;
    }
    if m == 0 {
        return 0.0;
    }
    (best - 10.0 * (m as f32).log10()).max(0.0)
}

/// The fused calibrated score of independent per-finger calibrated scores (see the module docs). One score is
/// returned as it is; no score fuses to 0.
pub fn fuse(scores: &[f32]) -> f32 {
    match scores {
        [] => 0.0,
        [one] => one.clamp(0.0, MAX_SCORE),
        _ => {
            let x = f64::from(scores.iter().map(|s| s.clamp(0.0, MAX_SCORE)).sum::<f32>())
                * std::f64::consts::LN_10
                / 10.0;
            // ln P(Gamma(k) >= x) = -x + ln(sum_{n<k} x^n / n!), the sum built term by term.
            let (mut term, mut sum) = (1.0f64, 1.0f64);
            for n in 1..scores.len() {
                term *= x / n as f64;
                sum += term;
            }
            let log10_fmr = (-x + sum.ln()) / std::f64::consts::LN_10;
            ((-10.0 * log10_fmr) as f32).clamp(0.0, MAX_SCORE)
        }
    }
}
