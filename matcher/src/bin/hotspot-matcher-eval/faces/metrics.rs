//! Verification and identification rates from genuine and impostor scores (higher score = more alike).

/// Equal error rate: where the false-accept rate (impostors at or above the threshold) meets the false-reject rate
/// (genuine below it), interpolated between the two thresholds around the crossing.
pub fn eer(genuine: &[f32], impostor: &[f32]) -> Option<f64> {
    if genuine.is_empty() || impostor.is_empty() {
        return None;
    }
    let mut thresholds: Vec<f32> = genuine.iter().chain(impostor).copied().collect();
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup();
    let rates = |t: f32| (far(impostor, t), frr(genuine, t));
    let mut previous = (1.0, 0.0);
    for &t in &thresholds {
        let (fa, fr) = rates(t);
        if fr >= fa {
            // Crossed between `previous` and here: interpolate on the difference.
            let (pfa, pfr) = previous;
            let (d0, d1) = (pfa - pfr, fa - fr);
            let w = if d0 - d1 != 0.0 { d0 / (d0 - d1) } else { 0.5 };
            return Some(pfa + w * (fa - pfa));
        }
        previous = (fa, fr);
    }
    Some(previous.0.max(previous.1))
}

/// Genuine acceptance at the lowest threshold whose false-accept rate is at most `far_target`; and that threshold.
pub fn tar_at_far(genuine: &[f32], impostor: &[f32], far_target: f64) -> Option<(f64, f32)> {
    if genuine.is_empty() || impostor.is_empty() {
        return None;
    }
    let mut sorted = impostor.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // At most `allowed` impostors may score at or above the threshold.
    let allowed = (far_target * impostor.len() as f64).floor() as usize;
    let threshold = match sorted.get(allowed) {
        // Just above the first impostor that must be rejected.
        Some(&s) => next_up(s),
        None => f32::NEG_INFINITY,
    };
    Some((1.0 - frr(genuine, threshold), threshold))
}

/// Fraction of impostor scores at or above `t`.
pub fn far(impostor: &[f32], t: f32) -> f64 {
    impostor.iter().filter(|&&s| s >= t).count() as f64 / impostor.len() as f64
}

/// Fraction of genuine scores below `t`.
pub fn frr(genuine: &[f32], t: f32) -> f64 {
    genuine.iter().filter(|&&s| s < t).count() as f64 / genuine.len() as f64
}

/// The smallest `f32` above `x`.
fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    let next = if x == 0.0 {
        1
    } else if x > 0.0 {
        bits + 1
    } else {
        bits - 1
    };
    f32::from_bits(next)
}

/// Nearest-rank percentile of sorted values (`q` in 0..=1).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_scores_have_no_errors() {
        let (g, i) = ([0.8, 0.9, 0.7], [0.1, 0.2, 0.3]);
        assert_eq!(eer(&g, &i), Some(0.0));
        assert_eq!(tar_at_far(&g, &i, 1e-3).map(|r| r.0), Some(1.0));
    }

    #[test]
    fn overlapping_scores_give_the_expected_rates() {
        // One impostor (0.6) above one genuine (0.5): at t in (0.5, 0.6], FAR 1/4 and FRR 1/4.
        let (g, i) = ([0.5, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.6]);
        let e = eer(&g, &i).unwrap();
        assert!((e - 0.25).abs() < 1e-9, "{e}");
        let (tar, t) = tar_at_far(&g, &i, 1e-3).unwrap();
        assert!(t > 0.6 && (tar - 0.75).abs() < 1e-9, "{tar} {t}");
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), Some(2.0));
        assert_eq!(percentile(&v, 1.0), Some(4.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
