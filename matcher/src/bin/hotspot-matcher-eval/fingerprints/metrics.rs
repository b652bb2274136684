//! Error rates from score lists: equal error rate and false non-match rate at a given false match rate.
//! A comparison "matches" at threshold `t` when its score is `>= t`.

/// Scores of one evaluation.
#[derive(Debug, Default, Clone)]
pub struct Scores {
    /// Pairs of impressions of one finger.
    pub genuine: Vec<f32>,
    /// FVC impostors: first impressions of different fingers.
    pub impostor: Vec<f32>,
    /// Every pair of impressions of different fingers.
    pub extended: Vec<f32>,
}

/// The rates reported.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub eer: f64,
    pub eer_extended: f64,
    pub fnmr_at_1e2: f64,
    pub fnmr_at_1e3: f64,
}

impl Scores {
    pub fn extend(&mut self, other: &Scores) {
        self.genuine.extend(&other.genuine);
        self.impostor.extend(&other.impostor);
        self.extended.extend(&other.extended);
    }

    pub fn rates(&self) -> Rates {
        Rates {
            eer: eer(&self.genuine, &self.impostor),
            eer_extended: eer(&self.genuine, &self.extended),
            fnmr_at_1e2: fnmr_at_fmr(&self.genuine, &self.extended, 1e-2),
            fnmr_at_1e3: fnmr_at_fmr(&self.genuine, &self.extended, 1e-3),
        }
    }
}

/// Equal error rate: over every threshold at a score, the point where FMR and FNMR are closest, averaged there
/// (FVC's convention when the curves do not cross at a score).
pub fn eer(genuine: &[f32], impostor: &[f32]) -> f64 {
    if genuine.is_empty() || impostor.is_empty() {
        return f64::NAN;
    }
    let mut g = genuine.to_vec();
    let mut i = impostor.to_vec();
    g.sort_by(f32::total_cmp);
    i.sort_by(f32::total_cmp);
    let mut thresholds: Vec<f32> = g.iter().chain(&i).copied().collect();
    thresholds.push(f32::INFINITY);
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup();
    let mut best = (f64::INFINITY, f64::NAN);
    for t in thresholds {
        // Matches at t: scores >= t.
        let fmr = (i.len() - i.partition_point(|&s| s < t)) as f64 / i.len() as f64;
        let fnmr = g.partition_point(|&s| s < t) as f64 / g.len() as f64;
        let gap = (fmr - fnmr).abs();
        if gap < best.0 {
            best = (gap, 0.5 * (fmr + fnmr));
        }
    }
    best.1
}

/// FNMR at the lowest threshold whose FMR is at most `fmr`.
pub fn fnmr_at_fmr(genuine: &[f32], impostor: &[f32], fmr: f64) -> f64 {
    if genuine.is_empty() || impostor.is_empty() {
        return f64::NAN;
    }
    let mut sorted = impostor.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let allowed = (fmr * sorted.len() as f64).floor() as usize;
    let Some(&limit) = sorted.get(allowed) else {
        return 0.0;
    };
    // Threshold just above the first impostor score that must be rejected.
    genuine.iter().filter(|&&s| s <= limit).count() as f64 / genuine.len() as f64
}

/// The `q` quantile of sorted values (nearest rank), `None` when empty.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some((sorted[rank - 1] * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_scores_have_no_errors() {
        let genuine = [50.0, 60.0, 70.0];
        let impostor = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(eer(&genuine, &impostor), 0.0);
        assert_eq!(fnmr_at_fmr(&genuine, &impostor, 1e-3), 0.0);
    }

    #[test]
    fn overlapping_scores_give_the_expected_rates() {
        // Threshold 5: impostor 6 accepted (FMR 1/4), genuine 4 rejected (FNMR 1/4).
        let genuine = [4.0, 7.0, 8.0, 9.0];
        let impostor = [1.0, 2.0, 3.0, 6.0];
        assert!((eer(&genuine, &impostor) - 0.25).abs() < 1e-9);
        // FMR 0: above 6, genuine 4 rejected.
        assert!((fnmr_at_fmr(&genuine, &impostor, 0.1) - 0.25).abs() < 1e-9);
        // FMR 1/4 allowed: threshold just above 3, nothing rejected.
        assert!((fnmr_at_fmr(&genuine, &impostor, 0.25) - 0.0).abs() < 1e-9);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), Some(2.0));
        assert_eq!(percentile(&v, 0.95), Some(4.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
