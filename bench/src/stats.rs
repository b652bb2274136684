//! Percentiles, summaries and the ramp's stepping rule: plain functions, unit-tested.

use serde::Serialize;

/// The `p`-quantile (0 < p <= 1) of `sorted` (ascending) by the nearest-rank method: the smallest value with at
/// least `p` of the values at or below it. With fewer than 100 values, p99 is the maximum. `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || p.is_nan() || p <= 0.0 || p > 1.0 {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// p50 / p99 / max / mean of a set of measurements (milliseconds unless said otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Values.
    pub n: usize,
    /// Median (nearest rank).
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// The summary of `values` (any order; NaNs are dropped); `None` when nothing is left.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        Some(Self {
            n: v.len(),
            p50: percentile(&v, 0.50)?,
            p99: percentile(&v, 0.99)?,
            max: *v.last()?,
            mean: v.iter().sum::<f64>() / v.len() as f64,
        })
    }
}

/// Rates of the ramp ladder: `2^(k/2)` captures per second (0.25, 0.35, 0.5, 0.71, 1, 1.41, 2, ...), so that
/// steps are comparable between runs and each is about 41% above the one before.
pub fn ladder_rate(k: i32) -> f64 {
    2f64.powf(f64::from(k) / 2.0)
}

/// The highest ladder step whose rate is at most `rate` (rates below `2^-5` give step -10).
pub fn ladder_step_at_or_below(rate: f64) -> i32 {
    if rate.is_nan() || rate <= 0.0 {
        return -10;
    }
    let k = (2.0 * rate.log2()).floor() as i32;
    // Guard against rounding at exact ladder values.
    let k = if ladder_rate(k + 1) <= rate * (1.0 + 1e-9) {
        k + 1
    } else {
        k
    };
    k.max(-10)
}

/// How far a ramp goes.
#[derive(Debug, Clone, Copy)]
pub struct RampPlan {
    /// First ladder step.
    pub start: i32,
    /// Most steps upwards (including the first).
    pub max_steps: usize,
    /// Most steps downwards when the first step already fails (each halves the rate).
    pub max_down: usize,
}

/// What a ramp does next, given the steps run so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RampNext {
    /// Run this ladder step.
    Run(i32),
    /// Stop: the highest rate that held (`None`: none did).
    Done(Option<f64>),
}

/// The ramp rule: start at `plan.start`; while steps hold (p99 at most the limit, every capture answered) go one
/// step up; at the first step that does not hold, stop and report the highest step that held. When the very first
/// step fails, halve the rate (two ladder steps down) up to `plan.max_down` times, stopping at the first that holds.
/// `steps` are `(ladder step, held)` in the order they ran.
pub fn ramp_next(plan: RampPlan, steps: &[(i32, bool)]) -> RampNext {
    let best = steps
        .iter()
        .filter(|(_, held)| *held)
        .map(|(k, _)| *k)
        .max()
        .map(ladder_rate);
    let Some(&(last, held)) = steps.last() else {
        return RampNext::Run(plan.start);
    };
    if held {
        let going_down = steps.iter().any(|(_, h)| !h);
        if going_down || steps.len() >= plan.max_steps {
            return RampNext::Done(best);
        }
        return RampNext::Run(last + 1);
    }
    if best.is_some() {
        return RampNext::Done(best);
    }
    if steps.len() <= plan.max_down {
        return RampNext::Run(last - 2);
    }
    RampNext::Done(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        // With fewer than 100 values, p99 is the maximum.
        let few: Vec<f64> = (1..=60).map(f64::from).collect();
        assert_eq!(percentile(&few, 0.99), Some(60.0));
        assert_eq!(percentile(&few, 0.5), Some(30.0));
        assert_eq!(percentile(&[7.0], 0.5), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&v, 0.0), None);
    }

    #[test]
    fn summary_sorts_and_skips_nan() {
        let s = Summary::of(&[5.0, f64::NAN, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(s.n, 5);
        assert_eq!(s.p50, 3.0);
        assert_eq!(s.p99, 5.0);
        assert_eq!(s.max, 5.0);
        assert!((s.mean - 3.0).abs() < 1e-12);
        assert!(Summary::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn ladder_rates_round_trip() {
        assert_eq!(ladder_rate(0), 1.0);
        assert_eq!(ladder_rate(2), 2.0);
        assert_eq!(ladder_rate(-4), 0.25);
        for k in -8..14 {
            assert_eq!(ladder_step_at_or_below(ladder_rate(k)), k, "step {k}");
            assert_eq!(ladder_step_at_or_below(ladder_rate(k) * 1.2), k, "step {k}");
        }
        assert_eq!(ladder_step_at_or_below(0.0), -10);
        assert_eq!(ladder_step_at_or_below(1e-9), -10);
    }

    #[test]
    fn ramp_goes_up_until_a_step_fails() {
        let plan = RampPlan {
            start: 2,
            max_steps: 5,
            max_down: 2,
        };
        assert_eq!(ramp_next(plan, &[]), RampNext::Run(2));
        assert_eq!(ramp_next(plan, &[(2, true)]), RampNext::Run(3));
        assert_eq!(
            ramp_next(plan, &[(2, true), (3, true), (4, false)]),
            RampNext::Done(Some(ladder_rate(3)))
        );
        // The step limit stops a ramp that never fails, at the last rate.
        let all: Vec<(i32, bool)> = (2..7).map(|k| (k, true)).collect();
        assert_eq!(ramp_next(plan, &all), RampNext::Done(Some(ladder_rate(6))));
    }

    #[test]
    fn ramp_goes_down_when_the_first_step_fails() {
        let plan = RampPlan {
            start: 0,
            max_steps: 8,
            max_down: 2,
        };
        assert_eq!(ramp_next(plan, &[(0, false)]), RampNext::Run(-2));
        assert_eq!(
            ramp_next(plan, &[(0, false), (-2, true)]),
            RampNext::Done(Some(0.5))
        );
        assert_eq!(
            ramp_next(plan, &[(0, false), (-2, false)]),
            RampNext::Run(-4)
        );
        assert_eq!(
            ramp_next(plan, &[(0, false), (-2, false), (-4, false)]),
            RampNext::Done(None)
        );
    }
}
