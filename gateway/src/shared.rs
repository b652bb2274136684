//! State shared by the gateway's tasks: counters, link states, station presence, disk use and alarms. Read by the
//! status topic, the console and `/healthz`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use hotspot_device_protocols::station::{LinkStats, StationPresence, UplinkState};
use serde::Serialize;

/// Counters and states.
#[derive(Debug)]
pub struct Shared {
    /// Site id.
    pub site_id: String,
    /// Connected to the MQTT broker and subscribed.
    pub mqtt_connected: AtomicBool,
    /// Bumped on every loss of the MQTT connection (results handed to MQTT before a loss are not trusted to
    /// have reached the broker).
    pub mqtt_epoch: std::sync::atomic::AtomicU64,
    uplink: Mutex<(UplinkState, Option<LinkStats>)>,
    /// Signalled when the uplink state changes (the status topic republishes at once).
    pub uplink_changed: tokio::sync::Notify,
    stations: Mutex<BTreeMap<String, StationPresence>>,
    /// Capture messages received (before decoding).
    pub captures_received: AtomicU64,
    /// Captures accepted (stored).
    pub captures_accepted: AtomicU64,
    /// Captures rejected at ingest (malformed, or storage full).
    pub captures_rejected: AtomicU64,
    /// Local results published.
    pub local_results: AtomicU64,
    /// Central results published.
    pub central_results: AtomicU64,
    /// Database bytes on disk (refreshed every few seconds).
    pub disk_used_bytes: AtomicU64,
    /// Disk quota, bytes.
    pub disk_quota_bytes: u64,
    /// A corrupt database was moved aside at start, or records were quarantined.
    pub storage_corruption: AtomicBool,
    /// When the MQTT event loop last returned from a poll, Unix ms (watchdog health).
    pub mqtt_last_poll_ms: AtomicI64,
    /// Event metrics (local results by decision, match latency, console logins) for `/metrics`.
    pub metrics: crate::metrics::Metrics,
}

/// A point-in-time copy, as served by `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Site id.
    pub site_id: String,
    /// MQTT connected.
    pub mqtt_connected: bool,
    /// Uplink state.
    pub uplink: UplinkState,
    /// Link quality while connected.
    pub link: Option<LinkStats>,
    /// Stations and their presence.
    pub stations: BTreeMap<String, &'static str>,
    /// Capture messages received.
    pub captures_received: u64,
    /// Captures accepted.
    pub captures_accepted: u64,
    /// Captures rejected.
    pub captures_rejected: u64,
    /// Local results published.
    pub local_results: u64,
    /// Central results published.
    pub central_results: u64,
    /// Database size on disk, bytes.
    pub disk_used_bytes: u64,
    /// Database size as a percentage of the quota.
    pub disk_used_percent: f64,
    /// Active alarms.
    pub alarms: Vec<String>,
}

/// Disk use at or above this fraction of the quota raises `disk_quota_80`.
pub const DISK_ALARM_FRACTION: f64 = 0.8;

impl Shared {
    /// New state for `site_id`.
    pub fn new(site_id: String, disk_quota_bytes: u64) -> Self {
        Self {
            site_id,
            mqtt_connected: AtomicBool::new(false),
            mqtt_epoch: std::sync::atomic::AtomicU64::new(0),
            uplink: Mutex::new((UplinkState::Down, None)),
            uplink_changed: tokio::sync::Notify::new(),
            stations: Mutex::new(BTreeMap::new()),
            captures_received: AtomicU64::new(0),
            captures_accepted: AtomicU64::new(0),
            captures_rejected: AtomicU64::new(0),
            local_results: AtomicU64::new(0),
            central_results: AtomicU64::new(0),
            disk_used_bytes: AtomicU64::new(0),
            disk_quota_bytes,
            storage_corruption: AtomicBool::new(false),
            mqtt_last_poll_ms: AtomicI64::new(crate::pipeline::now_ms()),
            metrics: crate::metrics::Metrics::new(),
        }
    }

    /// Current uplink state.
    pub fn uplink(&self) -> UplinkState {
        self.uplink.lock().map(|g| g.0).unwrap_or(UplinkState::Down)
    }

    /// Current link quality (while connected).
    pub fn link(&self) -> Option<LinkStats> {
        self.uplink.lock().ok().and_then(|g| g.1)
    }

    /// Sets the uplink state and quality; returns whether the state changed (and then signals
    /// [`Self::uplink_changed`]).
    pub fn set_uplink(&self, s: UplinkState, link: Option<LinkStats>) -> bool {
        let changed = self
            .uplink
            .lock()
            .map(|mut g| std::mem::replace(&mut *g, (s, link)).0 != s)
            .unwrap_or(false);
        if changed {
            self.uplink_changed.notify_one();
        }
        changed
    }

    /// Records a station's presence.
    pub fn set_station(&self, id: &str, p: StationPresence) {
        if let Ok(mut m) = self.stations.lock() {
            m.insert(id.to_owned(), p);
        }
    }

    /// Stations currently online.
    pub fn stations_online(&self) -> u64 {
        self.stations
            .lock()
            .map(|m| {
                m.values()
                    .filter(|p| **p == StationPresence::Online)
                    .count() as u64
            })
            .unwrap_or(0)
    }

    /// Bumps a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Database size as a fraction of the quota.
    pub fn disk_fraction(&self) -> f64 {
        self.disk_used_bytes.load(Ordering::Relaxed) as f64 / self.disk_quota_bytes.max(1) as f64
    }

    /// Whether new captures must be refused (quota reached).
    pub fn disk_full(&self) -> bool {
        self.disk_fraction() >= 1.0
    }

    /// Active alarms.
    pub fn alarms(&self) -> Vec<String> {
        let mut a = Vec::new();
        let f = self.disk_fraction();
        if f >= 1.0 {
            a.push("disk_quota_full".to_owned());
        } else if f >= DISK_ALARM_FRACTION {
            a.push("disk_quota_80".to_owned());
        }
        if self.storage_corruption.load(Ordering::Relaxed) {
            a.push("storage_corruption".to_owned());
        }
        a
    }

    /// A copy for the console.
    pub fn snapshot(&self) -> Snapshot {
        let stations = self
            .stations
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let s = if *v == StationPresence::Online {
                            "online"
                        } else {
                            "offline"
                        };
                        (k.clone(), s)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Snapshot {
            site_id: self.site_id.clone(),
            mqtt_connected: self.mqtt_connected.load(Ordering::Relaxed),
            uplink: self.uplink(),
            link: self.link(),
            stations,
            captures_received: self.captures_received.load(Ordering::Relaxed),
            captures_accepted: self.captures_accepted.load(Ordering::Relaxed),
            captures_rejected: self.captures_rejected.load(Ordering::Relaxed),
            local_results: self.local_results.load(Ordering::Relaxed),
            central_results: self.central_results.load(Ordering::Relaxed),
            disk_used_bytes: self.disk_used_bytes.load(Ordering::Relaxed),
            disk_used_percent: self.disk_fraction() * 100.0,
            alarms: self.alarms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The status task waits on `uplink_changed`: a change must wake it (even if it was not waiting yet), a
    /// repeat of the same state must not.
    #[tokio::test]
    async fn an_uplink_change_is_signalled_and_a_repeat_is_not() {
        let s = Shared::new("site".into(), 1);
        assert!(!s.set_uplink(UplinkState::Down, None));
        let quiet = tokio::time::timeout(Duration::from_millis(50), s.uplink_changed.notified());
        assert!(quiet.await.is_err(), "signalled without a change");
        assert!(s.set_uplink(UplinkState::Up, None));
        let woke = tokio::time::timeout(Duration::from_secs(5), s.uplink_changed.notified());
        assert!(woke.await.is_ok(), "a change was not signalled");
        assert_eq!(s.uplink(), UplinkState::Up);
    }
}
