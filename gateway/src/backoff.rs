//! Exponential backoff with full jitter, for every reconnect loop.

use std::time::Duration;

use rand::Rng as _;

/// Backoff state: the delay doubles after each failure up to `max`, and each wait is drawn uniformly from
/// `[delay/2, delay]` so that a fleet does not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    current_ms: u64,
}

impl Backoff {
    /// New backoff between `initial_ms` and `max_ms`.
    pub fn new(initial_ms: u64, max_ms: u64) -> Self {
        let initial_ms = initial_ms.max(1);
        Self {
            initial_ms,
            max_ms: max_ms.max(initial_ms),
            current_ms: initial_ms,
        }
    }

    /// The next wait; doubles the base for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current_ms;
        self.current_ms = (self.current_ms.saturating_mul(2)).min(self.max_ms);
        let jittered = rand::rng().random_range(base / 2..=base);
        Duration::from_millis(jittered.max(1))
    }

    /// Back to the initial delay (after a success).
    pub fn reset(&mut self) {
        self.current_ms = self.initial_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(100, 1000);
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert!((50..=100).contains(&delays[0]), "{delays:?}");
        assert!((100..=200).contains(&delays[1]), "{delays:?}");
        assert!(
            delays[5..].iter().all(|d| (500..=1000).contains(d)),
            "{delays:?}"
        );
        b.reset();
        assert!(b.next_delay().as_millis() <= 100);
    }
}
