//! The fleet view: what central last heard from each gateway (`fleet status`).
//!
//! On disk: `DATA_DIR/fleet/<gateway>.json`, one [`GatewayRecord`] per gateway (its certificate name), replaced
//! atomically on every `Hello` (sent at connect and every 30 s) and on every reported event.

use std::path::{Path, PathBuf};

use hotspot_device_protocols::uplink::{GatewayEvent, Hello, PluginVersion};
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, FsError};

/// Refusals and rollbacks kept per gateway.
const KEEP_EVENTS: usize = 20;

/// What central knows about one gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRecord {
    /// Certificate name.
    pub gateway: String,
    /// Site id it reports.
    pub site_id: String,
    /// Software version.
    pub software_version: String,
    /// Installed watchlist version.
    pub watchlist_version: u64,
    /// When central made that watchlist (Unix ms).
    pub watchlist_created_at_ms: i64,
    /// Seconds since the gateway last confirmed its watchlist current, as of `last_contact_ms`.
    pub watchlist_age_s: Option<u64>,
    /// Captures queued.
    pub backlog: u64,
    /// Age of the oldest queued capture, seconds.
    pub oldest_backlog_s: Option<u64>,
    /// Installed plugins.
    pub plugins: Vec<PluginVersion>,
    /// Alarms raised on the gateway.
    pub alarms: Vec<String>,
    /// Last time central heard from it (Unix ms).
    pub last_contact_ms: i64,
    /// Refused bundles and rollbacks, newest last (at most 20).
    pub events: Vec<RecordedEvent>,
    /// Refusals ever reported.
    pub refusals_total: u64,
}

/// An event with the time central received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Unix ms.
    pub at_ms: i64,
    /// The event.
    pub event: GatewayEvent,
}

fn path(data_dir: &Path, gateway: &str) -> PathBuf {
    // Certificate names are checked at issue time ([a-zA-Z0-9._-]); anything else is mapped to '_' here too.
    let safe: String = gateway
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("fleet").join(format!("{safe}.json"))
}

fn load(data_dir: &Path, gateway: &str) -> GatewayRecord {
    fsutil::read(&path(data_dir, gateway), 1024 * 1024)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| GatewayRecord {
            gateway: gateway.to_owned(),
            ..GatewayRecord::default()
        })
}

fn save(data_dir: &Path, r: &GatewayRecord) -> Result<(), FsError> {
    let p = path(data_dir, &r.gateway);
    if let Some(dir) = p.parent() {
        fsutil::create_dir_private(dir)?;
    }
    let bytes = serde_json::to_vec_pretty(r).unwrap_or_default();
    fsutil::write_atomic(&p, &bytes)
}

/// Records a `Hello`.
pub fn record_hello(data_dir: &Path, gateway: &str, h: &Hello, now_ms: i64) -> Result<(), FsError> {
    let mut r = load(data_dir, gateway);
    r.site_id = h.site_id.clone();
    r.software_version = h.software_version.clone();
    r.watchlist_version = h.watchlist_version;
    r.watchlist_created_at_ms = h.watchlist_created_at_ms;
    r.watchlist_age_s = h.watchlist_age_s;
    r.backlog = h.backlog;
    r.oldest_backlog_s = h.oldest_backlog_s;
    r.plugins = h.plugins.clone();
    r.alarms = h.alarms.clone();
    r.last_contact_ms = now_ms;
    save(data_dir, &r)
}

/// Records a reported event.
pub fn record_event(
    data_dir: &Path,
    gateway: &str,
    event: &GatewayEvent,
    now_ms: i64,
) -> Result<(), FsError> {
    let mut r = load(data_dir, gateway);
    if matches!(event, GatewayEvent::BundleRefused { .. }) {
        r.refusals_total += 1;
    }
    r.events.push(RecordedEvent {
        at_ms: now_ms,
        event: event.clone(),
    });
    let excess = r.events.len().saturating_sub(KEEP_EVENTS);
    r.events.drain(..excess);
    r.last_contact_ms = now_ms;
    save(data_dir, &r)
}

/// Every gateway central has heard from, by name.
pub fn list(data_dir: &Path) -> Vec<GatewayRecord> {
    let Ok(rd) = std::fs::read_dir(data_dir.join("fleet")) else {
        return Vec::new();
    };
    let mut out: Vec<GatewayRecord> = rd
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "json" {
                return None;
            }
            serde_json::from_slice(&fsutil::read(&p, 1024 * 1024).ok()?).ok()
        })
        .collect();
    out.sort_by(|a, b| a.gateway.cmp(&b.gateway));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hello_and_events_are_recorded() {
        let d = tempfile::tempdir().unwrap();
        let hello = Hello {
            site_id: "post-1".into(),
            software_version: "0.1.0".into(),
            watchlist_version: 4,
            backlog: 7,
            oldest_backlog_s: Some(30),
            watchlist_created_at_ms: 5,
            watchlist_age_s: Some(12),
            plugins: vec![],
            alarms: vec!["watchlist_stale".into()],
        };
        record_hello(d.path(), "gw-1", &hello, 100).unwrap();
        for i in 0..25 {
            let e = GatewayEvent::BundleRefused {
                kind: "watchlist-delta".into(),
                version: i,
                reason: "x".into(),
            };
            record_event(d.path(), "gw-1", &e, 200 + i as i64).unwrap();
        }
        let all = list(d.path());
        assert_eq!(all.len(), 1);
        let r = &all[0];
        assert_eq!(
            (r.watchlist_version, r.backlog, r.refusals_total),
            (4, 7, 25)
        );
        assert_eq!(r.events.len(), KEEP_EVENTS);
        assert_eq!(r.last_contact_ms, 224);
        assert_eq!(r.alarms, vec!["watchlist_stale".to_owned()]);
    }
}
