//! Link monitor: turns samples of the QUIC connection's statistics into UP / DEGRADED / DOWN, with hysteresis so
//! that one slow round trip does not flap the state an officer or a central operator sees.
//!
//! Pure logic: [`LinkMonitor::sample`] takes cumulative counters and the sample's duration and returns the state;
//! the uplink feeds it once a second from `quinn::Connection::stats()`.

use std::time::Duration;

pub use hotspot_device_protocols::station::LinkStats as LinkQuality;
use hotspot_device_protocols::station::UplinkState;

/// Consecutive bad samples before UP becomes DEGRADED.
const BAD_TO_DEGRADE: u32 = 3;
/// Consecutive good samples before DEGRADED becomes UP.
const GOOD_TO_RECOVER: u32 = 5;
/// A sample is good again only below this fraction of the thresholds.
const RECOVER_FRACTION: f64 = 0.8;

/// Cumulative counters read from the connection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Smoothed RTT.
    pub rtt: Duration,
    /// Packets sent.
    pub sent_packets: u64,
    /// Packets declared lost.
    pub lost_packets: u64,
    /// UDP bytes received + sent.
    pub bytes: u64,
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct LinkMonitor {
    degraded_rtt: Duration,
    degraded_loss_percent: f64,
    state: UplinkState,
    bad_streak: u32,
    good_streak: u32,
    last: Option<Counters>,
    quality: LinkQuality,
}

impl LinkMonitor {
    /// A monitor for a fresh connection (state UP).
    pub fn new(degraded_rtt: Duration, degraded_loss_percent: f64) -> Self {
        Self {
            degraded_rtt,
            degraded_loss_percent,
            state: UplinkState::Up,
            bad_streak: 0,
            good_streak: 0,
            last: None,
            quality: LinkQuality::default(),
        }
    }

    /// Current quality figures.
    pub fn quality(&self) -> LinkQuality {
        self.quality
    }

    /// Feeds one sample taken `elapsed` after the previous one; returns the state.
    pub fn sample(&mut self, now: Counters, elapsed: Duration) -> UplinkState {
        let prev = self.last.replace(now).unwrap_or_default();
        let sent = now.sent_packets.saturating_sub(prev.sent_packets);
        let lost = now.lost_packets.saturating_sub(prev.lost_packets);
        let loss_percent = if sent == 0 {
            0.0
        } else {
            100.0 * lost as f64 / sent as f64
        };
        let secs = elapsed.as_secs_f64().max(1e-3);
        self.quality = LinkQuality {
            rtt_ms: now.rtt.as_millis() as u64,
            loss_percent,
            goodput_bytes_per_s: (now.bytes.saturating_sub(prev.bytes) as f64 / secs) as u64,
        };
        let bad = now.rtt > self.degraded_rtt || loss_percent > self.degraded_loss_percent;
        let good = now.rtt.as_secs_f64() < self.degraded_rtt.as_secs_f64() * RECOVER_FRACTION
            && loss_percent < self.degraded_loss_percent * RECOVER_FRACTION;
        self.bad_streak = if bad { self.bad_streak + 1 } else { 0 };
        self.good_streak = if good { self.good_streak + 1 } else { 0 };
        self.state = match self.state {
            UplinkState::Up if self.bad_streak >= BAD_TO_DEGRADE => UplinkState::Degraded,
            UplinkState::Degraded if self.good_streak >= GOOD_TO_RECOVER => UplinkState::Up,
            UplinkState::Down => UplinkState::Up,
            s => s,
        };
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(rtt_ms: u64, sent: u64, lost: u64) -> Counters {
        Counters {
            rtt: Duration::from_millis(rtt_ms),
            sent_packets: sent,
            lost_packets: lost,
            bytes: sent * 1000,
        }
    }

    #[test]
    fn degrades_after_a_streak_and_recovers_with_hysteresis() {
        let mut m = LinkMonitor::new(Duration::from_millis(500), 5.0);
        let s = Duration::from_secs(1);
        let mut sent = 0;
        let mut step = |m: &mut LinkMonitor, rtt, lost| {
            sent += 100;
            m.sample(c(rtt, sent, lost), s)
        };
        assert_eq!(step(&mut m, 50, 0), UplinkState::Up);
        // One bad sample, then good: no flap.
        assert_eq!(step(&mut m, 900, 0), UplinkState::Up);
        assert_eq!(step(&mut m, 50, 0), UplinkState::Up);
        // Three bad samples in a row: degraded.
        for _ in 0..2 {
            assert_eq!(step(&mut m, 900, 0), UplinkState::Up);
        }
        assert_eq!(step(&mut m, 900, 0), UplinkState::Degraded);
        // Just under the threshold is not good enough to recover (hysteresis band).
        for _ in 0..10 {
            assert_eq!(step(&mut m, 450, 0), UplinkState::Degraded);
        }
        for _ in 0..4 {
            assert_eq!(step(&mut m, 100, 0), UplinkState::Degraded);
        }
        assert_eq!(step(&mut m, 100, 0), UplinkState::Up);
    }

    #[test]
    fn loss_counts_per_sample_and_goodput_is_a_rate() {
        let mut m = LinkMonitor::new(Duration::from_millis(500), 5.0);
        m.sample(c(10, 100, 0), Duration::from_secs(1));
        for i in 2..5 {
            // 10% loss in each sample.
            m.sample(c(10, 100 * i, 10 * (i - 1)), Duration::from_secs(2));
        }
        let q = m.quality();
        assert!((q.loss_percent - 10.0).abs() < 1e-9, "{q:?}");
        assert_eq!(q.goodput_bytes_per_s, 50_000);
        assert_eq!(
            m.sample(c(10, 500, 40), Duration::from_secs(1)),
            UplinkState::Degraded
        );
    }
}
