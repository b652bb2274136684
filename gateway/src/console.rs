//! The local console: a status page, `/api/status` (JSON) and `/healthz`, over HTTP on `console.listen`.
//! (HTTPS, login and the full console come with the console issue; this page shows no biometric data.)

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::Serialize;

use crate::pipeline::Pipeline;
use crate::shared::Snapshot;

/// What `/api/status` returns.
#[derive(Debug, Serialize)]
pub struct ConsoleStatus {
    /// Counters and link states.
    #[serde(flatten)]
    pub shared: Snapshot,
    /// Installed watchlist version.
    pub watchlist_version: u64,
    /// Watchlist subjects.
    pub watchlist_subjects: usize,
    /// Captures waiting for central.
    pub backlog: u64,
    /// Today's data-contribution counters.
    pub contributions: hotspot_device_protocols::station::ContributionStats,
    /// Watchlist freshness.
    pub watchlist: hotspot_device_protocols::station::WatchlistFreshness,
    /// Active alarms (storage and `watchlist_stale`).
    pub alarms: Vec<String>,
    /// Alerts policy plugins routed to the console, newest last.
    pub alerts_recent: Vec<serde_json::Value>,
    /// Installed plugins.
    pub plugins: Vec<hotspot_device_protocols::uplink::PluginVersion>,
}

fn status(p: &Pipeline) -> ConsoleStatus {
    let w = p.watchlist.current();
    ConsoleStatus {
        shared: p.shared.snapshot(),
        watchlist_version: w.version,
        watchlist_subjects: w.subjects,
        backlog: p.store.backlog(),
        contributions: p.contribution_stats(),
        watchlist: crate::status::freshness(p),
        alarms: p.alarms(),
        alerts_recent: p
            .console_alerts
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default(),
        plugins: p.plugins.installed(),
    }
}

/// The console's routes.
pub fn router(pipeline: Arc<Pipeline>) -> axum::Router {
    axum::Router::new()
        .route("/", get(page))
        .route("/api/status", get(api_status))
        .route("/healthz", get(healthz))
        .with_state(pipeline)
}

async fn api_status(State(p): State<Arc<Pipeline>>) -> Json<ConsoleStatus> {
    Json(status(&p))
}

/// 200 when the gateway is connected to its broker (it can take captures) and healthy (see `systemd::healthy`),
/// 503 otherwise.
async fn healthz(State(p): State<Arc<Pipeline>>) -> impl IntoResponse {
    let ok = p.shared.mqtt_connected.load(Ordering::Relaxed)
        && crate::systemd::healthy(&p).await.is_ok();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "mqtt_connected": ok,
        "uplink": p.shared.uplink(),
    });
    (code, Json(body))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn page(State(p): State<Arc<Pipeline>>) -> Html<String> {
    let s = status(&p);
    let rows = [
        ("Site", escape(&s.shared.site_id)),
        ("Broker connected", s.shared.mqtt_connected.to_string()),
        ("Uplink", format!("{:?}", s.shared.uplink)),
        (
            "Link quality",
            s.shared.link.map_or("-".to_owned(), |l| {
                format!(
                    "RTT {} ms, loss {:.1}%, {} B/s",
                    l.rtt_ms, l.loss_percent, l.goodput_bytes_per_s
                )
            }),
        ),
        (
            "Disk use",
            format!("{:.1}% of quota", s.shared.disk_used_percent),
        ),
        (
            "Alarms",
            if s.alarms.is_empty() {
                "none".to_owned()
            } else {
                format!("<strong>{}</strong>", escape(&s.alarms.join(", ")))
            },
        ),
        (
            "Watchlist",
            format!(
                "version {} ({} subjects)",
                s.watchlist_version, s.watchlist_subjects
            ),
        ),
        (
            "Watchlist freshness",
            match s.watchlist.age_s {
                None => "<strong>never confirmed by central</strong>".to_owned(),
                Some(a) if s.watchlist.stale => format!(
                    "<strong>STALE: confirmed {} min ago (limit {} min)</strong>",
                    a / 60,
                    s.watchlist.max_age_s / 60
                ),
                Some(a) => format!("confirmed current {} min ago", a / 60),
            },
        ),
        ("Backlog to central", s.backlog.to_string()),
        (
            "Plugins",
            if s.plugins.is_empty() {
                "none".to_owned()
            } else {
                escape(
                    &s.plugins
                        .iter()
                        .map(|p| format!("{} v{}", p.name, p.version))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            },
        ),
        (
            "Recent alerts",
            match s.alerts_recent.last() {
                None => "none".to_owned(),
                Some(a) => format!(
                    "<strong>{}</strong> ({} in total)",
                    escape(a["message"].as_str().unwrap_or_default()),
                    s.alerts_recent.len()
                ),
            },
        ),
        (
            "Stations online",
            s.shared
                .stations
                .values()
                .filter(|v| **v == "online")
                .count()
                .to_string(),
        ),
        (
            "Captures accepted / rejected",
            format!(
                "{} / {}",
                s.shared.captures_accepted, s.shared.captures_rejected
            ),
        ),
        (
            "Results local / central",
            format!("{} / {}", s.shared.local_results, s.shared.central_results),
        ),
    ];
    let body: String = rows
        .iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>"))
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <meta http-equiv=refresh content=5><title>Hotspot Edge</title>\
         <style>body{{font-family:sans-serif;margin:2em}}th{{text-align:left;padding-right:2em}}</style></head>\
         <body><h1>Hotspot Edge gateway</h1><table>{body}</table></body></html>"
    ))
}
