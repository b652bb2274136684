//! systemd integration: `READY=1` once the gateway serves, `STOPPING=1` on shutdown, and the watchdog fed only
//! while the gateway is healthy, so systemd restarts a gateway that is wedged rather than merely alive.
//!
//! Healthy means, at each watchdog tick (half of `WatchdogSec=`): the async runtime runs this task; the MQTT event
//! loop has polled within [`MQTT_STALL`] (it returns at least once per keep-alive, 15 s); and the store
//! flushes within [`FLUSH_STALL`]. Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

use crate::pipeline::{Pipeline, now_ms};

/// Longest tolerated gap since the MQTT event loop last returned.
pub const MQTT_STALL: Duration = Duration::from_secs(60);
/// Longest tolerated store flush.
pub const FLUSH_STALL: Duration = Duration::from_secs(10);

/// Tells systemd the gateway is ready.
pub fn ready() {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready]) {
        debug!(error = %e, "sd_notify READY failed");
    }
}

/// Tells systemd the gateway is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

/// Whether the gateway is healthy right now (see the module doc).
pub async fn healthy(pipeline: &Pipeline) -> Result<(), String> {
    let last = pipeline.shared.mqtt_last_poll_ms.load(Ordering::Relaxed);
    let gap = now_ms().saturating_sub(last);
    if gap > MQTT_STALL.as_millis() as i64 {
        return Err(format!("MQTT event loop silent for {gap} ms"));
    }
    match tokio::time::timeout(FLUSH_STALL, pipeline.store.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("store flush failed: {e}")),
        Err(_) => Err("store flush stalled".to_owned()),
    }
}

/// Feeds the watchdog while healthy; runs forever (returns at once when the watchdog is not enabled).
pub async fn feed_watchdog(pipeline: Arc<Pipeline>) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tick.tick().await;
        match healthy(&pipeline).await {
            Ok(()) => {
                let _ = sd_notify::notify(&[NotifyState::Watchdog]);
            }
            Err(why) => warn!(%why, "unhealthy: not feeding the systemd watchdog"),
        }
    }
}
