//! The gateway's retained status on `hotspot/v1/gateway/status`, refreshed every few seconds.

use std::sync::Arc;
use std::time::Duration;

use hotspot_device_protocols::station::{
    GATEWAY_STATUS_TOPIC, GatewayStatus, UplinkState, WatchlistFreshness,
};
use rumqttc::{AsyncClient, QoS};

use crate::pipeline::{Pipeline, now_ms};

/// How often the status is republished.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// The current status.
pub fn current(pipeline: &Pipeline, state: &str) -> GatewayStatus {
    let installed = pipeline.watchlist.current();
    let store = &pipeline.store;
    GatewayStatus {
        site_id: pipeline.shared.site_id.clone(),
        state: state.to_owned(),
        uplink: pipeline.shared.uplink(),
        watchlist_version: installed.version,
        watchlist_subjects: installed.subjects as u64,
        backlog: store.backlog(),
        oldest_backlog_age_s: store
            .oldest_backlog_ms()
            .map(|t| u64::try_from(now_ms().saturating_sub(t) / 1000).unwrap_or(0)),
        stations_online: pipeline.shared.stations_online(),
        updated_at: time::OffsetDateTime::now_utc(),
        link: pipeline.shared.link(),
        disk_used_percent: pipeline.shared.disk_fraction() * 100.0,
        alarms: pipeline.alarms(),
        contributions: pipeline.contribution_stats(),
        watchlist: freshness(pipeline),
    }
}

/// The watchlist's freshness, as on the status topic and the console.
pub fn freshness(pipeline: &Pipeline) -> WatchlistFreshness {
    let now = now_ms();
    let w = &pipeline.watchlist;
    let created = w.current().created_at_ms;
    WatchlistFreshness {
        created_at: (created > 0)
            .then(|| {
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(created) * 1_000_000)
                    .ok()
            })
            .flatten(),
        age_s: w.age_ms(now).map(|a| u64::try_from(a / 1000).unwrap_or(0)),
        max_age_s: u64::try_from(w.max_age_ms() / 1000).unwrap_or(0),
        stale: w.stale(now),
    }
}

/// The payload published as the gateway's last will.
pub fn last_will(site_id: &str) -> Vec<u8> {
    let s = GatewayStatus {
        site_id: site_id.to_owned(),
        state: "offline".into(),
        uplink: UplinkState::Down,
        watchlist_version: 0,
        watchlist_subjects: 0,
        backlog: 0,
        oldest_backlog_age_s: None,
        stations_online: 0,
        updated_at: time::OffsetDateTime::now_utc(),
        link: None,
        disk_used_percent: 0.0,
        alarms: Vec::new(),
        contributions: Default::default(),
        watchlist: WatchlistFreshness::default(),
    };
    serde_json::to_vec(&s).unwrap_or_default()
}

/// Publishes the status (retained).
pub async fn publish(client: &AsyncClient, pipeline: &Pipeline, state: &str) {
    if let Ok(payload) = serde_json::to_vec(&current(pipeline, state)) {
        let _ = client
            .publish(GATEWAY_STATUS_TOPIC, QoS::AtLeastOnce, true, payload)
            .await;
    }
}

/// Republishes the status forever: every [`STATUS_INTERVAL`], and at once when the uplink state changes (so that
/// a station showing "central reachable" does not lag the link by up to the interval).
pub async fn run(client: AsyncClient, pipeline: Arc<Pipeline>) {
    let mut tick = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = pipeline.shared.uplink_changed.notified() => tick.reset(),
        }
        publish(&client, &pipeline, "online").await;
    }
}
