//! Prometheus metrics, and the plain-HTTP listener that serves them (`[metrics]`, `docs/metrics.md`).
//!
//! The listener answers `/metrics` (OpenMetrics text), `/healthz` and `/api/status` (the same JSON as the console's,
//! which holds no biometric data), without login: it is meant for loopback or a management network.
//!
//! Most values are read from the gateway's state at scrape time ([`StateCollector`]); the few that only exist as
//! events (local results by decision, match latency, console logins) are kept in [`Metrics`], which lives in
//! [`crate::shared::Shared`] so that the pipeline and the console can record into it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hotspot_device_protocols::station::{Decision, UplinkState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing::warn;

use crate::pipeline::{Pipeline, now_ms};

type Labels = Vec<(String, String)>;

/// Upper bounds of the local match latency histogram, seconds.
pub const LATENCY_BUCKETS_S: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The stages of `hotspot_local_stage_seconds`: the capture's templates and face embedding (`probe`), the wait
/// for the matcher while earlier captures are matched (`queue`), and the 1:N searches and fusion (`match`).
pub const STAGES: [&str; 3] = ["probe", "queue", "match"];

fn stage_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

/// Event metrics: recorded as things happen, read at scrape time.
#[derive(Debug, Clone)]
pub struct Metrics {
    local_results: Family<Labels, Counter>,
    local_latency: Histogram,
    local_stages: Family<Labels, Histogram, fn() -> Histogram>,
    logins: Family<Labels, Counter>,
    logins_total: Arc<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self {
            local_results: Family::default(),
            local_latency: Histogram::new(LATENCY_BUCKETS_S),
            local_stages: Family::new_with_constructor(stage_histogram),
            logins: Family::default(),
            logins_total: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A local result was recorded: its decision and the time from receiving the capture to the result.
    pub fn local_result(&self, decision: Decision, latency_ms: u64) {
        self.local_results
            .get_or_create(&vec![("decision".into(), decision.as_str().into())])
            .inc();
        self.local_latency.observe(latency_ms as f64 / 1000.0);
    }

    /// How long one stage of a capture's way to its local result took ([`STAGES`]).
    pub fn local_stage(&self, stage: &'static str, ms: u64) {
        self.local_stages
            .get_or_create(&vec![("stage".into(), stage.into())])
            .observe(ms as f64 / 1000.0);
    }

    /// A console login attempt: `ok`, `failed` or `locked`.
    pub fn login(&self, outcome: &'static str) {
        self.logins
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
        self.logins_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Login attempts of one outcome so far.
    pub fn logins(&self, outcome: &'static str) -> u64 {
        self.logins
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .get()
    }

    /// Local results of one decision so far.
    pub fn local_results(&self, decision: Decision) -> u64 {
        self.local_results
            .get_or_create(&vec![("decision".into(), decision.as_str().into())])
            .get()
    }
}

/// The registry served at `/metrics`.
pub fn registry(pipeline: Arc<Pipeline>) -> Registry {
    let mut r = Registry::default();
    let m = pipeline.shared.metrics.clone();
    // Every decision is present from the start, so rates work from the first scrape.
    for d in [
        Decision::Hit,
        Decision::NoHit,
        Decision::Inconclusive,
        Decision::Rejected,
    ] {
        let _ = m
            .local_results
            .get_or_create(&vec![("decision".into(), d.as_str().into())]);
    }
    for stage in STAGES {
        let _ = m
            .local_stages
            .get_or_create(&vec![("stage".into(), stage.into())]);
    }
    for o in ["ok", "failed", "locked"] {
        let _ = m.logins.get_or_create(&vec![("outcome".into(), o.into())]);
    }
    r.register(
        "hotspot_local_results",
        "Local results recorded, by decision",
        m.local_results,
    );
    r.register(
        "hotspot_local_match_latency_seconds",
        "Time from receiving a capture to its local result",
        m.local_latency,
    );
    r.register(
        "hotspot_local_stage_seconds",
        "Time of each stage of a capture's way to its local result (probe, queue, match)",
        m.local_stages,
    );
    r.register(
        "hotspot_console_logins",
        "Console login attempts, by outcome (ok, failed, locked)",
        m.logins,
    );
    r.register_collector(Box::new(StateCollector { pipeline }));
    r
}

/// Reads the gateway's state at each scrape.
#[derive(Debug)]
pub struct StateCollector {
    pipeline: Arc<Pipeline>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

struct Enc<'a, 'b> {
    e: &'a mut DescriptorEncoder<'b>,
}

impl Enc<'_, '_> {
    fn counter(&mut self, name: &str, help: &str, v: u64) -> Result<(), std::fmt::Error> {
        let c = ConstCounter::new(v);
        let me = self
            .e
            .encode_descriptor(name, help, None, c.metric_type())?;
        c.encode(me)
    }

    fn gauge_i(&mut self, name: &str, help: &str, v: i64) -> Result<(), std::fmt::Error> {
        let g = ConstGauge::new(v);
        let me = self
            .e
            .encode_descriptor(name, help, None, g.metric_type())?;
        g.encode(me)
    }

    fn gauge_f(&mut self, name: &str, help: &str, v: f64) -> Result<(), std::fmt::Error> {
        let g = ConstGauge::new(v);
        let me = self
            .e
            .encode_descriptor(name, help, None, g.metric_type())?;
        g.encode(me)
    }

    fn gauge_family(
        &mut self,
        name: &str,
        help: &str,
        rows: &[(Labels, i64)],
    ) -> Result<(), std::fmt::Error> {
        let probe = ConstGauge::new(0i64);
        let mut me = self
            .e
            .encode_descriptor(name, help, None, probe.metric_type())?;
        for (l, v) in rows {
            ConstGauge::new(*v).encode(me.encode_family(l)?)?;
        }
        Ok(())
    }

    fn counter_family(
        &mut self,
        name: &str,
        help: &str,
        rows: &[(Labels, u64)],
    ) -> Result<(), std::fmt::Error> {
        let probe = ConstCounter::new(0u64);
        let mut me = self
            .e
            .encode_descriptor(name, help, None, probe.metric_type())?;
        for (l, v) in rows {
            ConstCounter::new(*v).encode(me.encode_family(l)?)?;
        }
        Ok(())
    }
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let p = &self.pipeline;
        let s = &p.shared;
        let mut e = Enc { e: &mut encoder };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        e.counter(
            "hotspot_captures_received",
            "Capture messages received from stations (every topic, before decoding)",
            load(&s.captures_received),
        )?;
        e.counter(
            "hotspot_captures_stored",
            "Captures accepted: stored durably and acknowledged",
            load(&s.captures_accepted),
        )?;
        e.counter(
            "hotspot_captures_rejected",
            "Captures rejected at ingest (unreadable, refused by a check, or storage full)",
            load(&s.captures_rejected),
        )?;
        e.counter(
            "hotspot_local_results_published",
            "Local results handed to the broker",
            load(&s.local_results),
        )?;
        e.counter(
            "hotspot_central_results",
            "Central results handed to the broker",
            load(&s.central_results),
        )?;
        let store = &p.store;
        e.gauge_i(
            "hotspot_backlog_captures",
            "Captures waiting for central",
            i64::try_from(store.backlog()).unwrap_or(i64::MAX),
        )?;
        let oldest = store
            .oldest_backlog_ms()
            .map_or(0, |t| now_ms().saturating_sub(t).max(0) / 1000);
        e.gauge_i(
            "hotspot_backlog_oldest_age_seconds",
            "Age of the oldest capture waiting for central (0 when none waits)",
            oldest,
        )?;
        let state = s.uplink();
        let rows: Vec<(Labels, i64)> = [
            (UplinkState::Up, "up"),
            (UplinkState::Degraded, "degraded"),
            (UplinkState::Down, "down"),
        ]
        .into_iter()
        .map(|(st, name)| (labels(&[("state", name)]), i64::from(st == state)))
        .collect();
        e.gauge_family(
            "hotspot_uplink_state",
            "Uplink state: 1 for the current state, 0 for the others",
            &rows,
        )?;
        if let Some(l) = s.link() {
            e.gauge_f(
                "hotspot_link_rtt_seconds",
                "Smoothed round-trip time to central (only while connected)",
                l.rtt_ms as f64 / 1000.0,
            )?;
            e.gauge_f(
                "hotspot_link_loss_ratio",
                "Packets lost over the last second, 0..1 (only while connected)",
                l.loss_percent / 100.0,
            )?;
            e.gauge_i(
                "hotspot_link_goodput_bytes_per_second",
                "UDP bytes per second over the last second, both directions (only while connected)",
                i64::try_from(l.goodput_bytes_per_s).unwrap_or(i64::MAX),
            )?;
        }
        e.gauge_i(
            "hotspot_mqtt_connected",
            "1 while the gateway is connected and subscribed to its broker",
            i64::from(s.mqtt_connected.load(Ordering::Relaxed)),
        )?;
        let w = p.watchlist.current();
        e.gauge_i(
            "hotspot_watchlist_version",
            "Installed watchlist version (0: none)",
            i64::try_from(w.version).unwrap_or(i64::MAX),
        )?;
        e.gauge_i(
            "hotspot_watchlist_subjects",
            "Subjects in the installed watchlist",
            i64::try_from(w.subjects).unwrap_or(i64::MAX),
        )?;
        e.gauge_i(
            "hotspot_watchlist_index_bytes",
            "Memory held by the installed fingerprint 1:N index (minutiae and edges of every enrolled finger)",
            i64::try_from(w.index.heap_bytes()).unwrap_or(i64::MAX),
        )?;
        let now = now_ms();
        if let Some(age) = p.watchlist.age_ms(now) {
            e.gauge_i(
                "hotspot_watchlist_age_seconds",
                "Time since central last confirmed the installed watchlist current (absent: never)",
                age.max(0) / 1000,
            )?;
        }
        e.gauge_i(
            "hotspot_watchlist_stale",
            "1 when the watchlist is older than watchlist.max_age_hours",
            i64::from(p.watchlist.stale(now)),
        )?;
        e.gauge_f(
            "hotspot_disk_used_ratio",
            "Database size as a fraction of storage.quota_bytes",
            s.disk_fraction(),
        )?;
        e.gauge_i(
            "hotspot_disk_used_bytes",
            "Database size on disk",
            i64::try_from(load(&s.disk_used_bytes)).unwrap_or(i64::MAX),
        )?;
        e.gauge_i(
            "hotspot_stations_online",
            "Stations whose presence is online",
            i64::try_from(s.stations_online()).unwrap_or(i64::MAX),
        )?;
        let alarms: Vec<(Labels, i64)> = p
            .alarms()
            .iter()
            .map(|a| (labels(&[("alarm", a)]), 1))
            .collect();
        e.gauge_family(
            "hotspot_alarm",
            "Active alarms (1 per active alarm; none: no series)",
            &alarms,
        )?;
        let plugins = p.plugins.stats();
        let calls: Vec<(Labels, u64)> = plugins
            .iter()
            .map(|x| (labels(&[("plugin", &x.name), ("world", x.world)]), x.calls))
            .collect();
        let faults: Vec<(Labels, u64)> = plugins
            .iter()
            .map(|x| (labels(&[("plugin", &x.name), ("world", x.world)]), x.faults))
            .collect();
        let versions: Vec<(Labels, i64)> = plugins
            .iter()
            .map(|x| {
                (
                    labels(&[("plugin", &x.name), ("world", x.world)]),
                    i64::try_from(x.version).unwrap_or(i64::MAX),
                )
            })
            .collect();
        e.counter_family(
            "hotspot_plugin_calls",
            "Plugin calls since start, per installed plugin",
            &calls,
        )?;
        e.counter_family(
            "hotspot_plugin_faults",
            "Plugin calls that faulted (trap, deadline, fuel, memory, contract), per installed plugin",
            &faults,
        )?;
        e.gauge_family(
            "hotspot_plugin_version",
            "Installed bundle version, per plugin",
            &versions,
        )?;
        let contrib = serde_json::to_value(p.contribution_stats()).unwrap_or_default();
        let rows: Vec<(Labels, i64)> = contrib
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| {
                        v.as_u64()
                            .map(|n| (labels(&[("kind", k)]), i64::try_from(n).unwrap_or(0)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        e.gauge_family(
            "hotspot_contributions_today",
            "Today's (UTC) data-contribution counters: enrolled, forwarded, rejected_quality, pending, ...",
            &rows,
        )?;
        Ok(())
    }
}

/// Encodes the registry as OpenMetrics text.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        warn!(error = %e, "cannot encode metrics");
    }
    out
}

struct MetricsState {
    pipeline: Arc<Pipeline>,
    registry: Registry,
}

/// The metrics listener's routes: `/metrics`, `/healthz`, `/api/status`.
pub fn router(pipeline: Arc<Pipeline>) -> axum::Router {
    let state = Arc::new(MetricsState {
        registry: registry(pipeline.clone()),
        pipeline,
    });
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/api/status", get(status))
        .with_state(state)
}

async fn metrics(State(s): State<Arc<MetricsState>>) -> impl IntoResponse {
    let st = s.clone();
    let body = tokio::task::spawn_blocking(move || encode(&st.registry))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

async fn healthz(State(s): State<Arc<MetricsState>>) -> impl IntoResponse {
    crate::console::health(&s.pipeline).await
}

async fn status(State(s): State<Arc<MetricsState>>) -> impl IntoResponse {
    let p = s.pipeline.clone();
    match tokio::task::spawn_blocking(move || crate::console::status(&p)).await {
        Ok(st) => Json(st).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A bound metrics listener, not yet serving.
#[derive(Debug)]
pub struct MetricsServer {
    listener: tokio::net::TcpListener,
    /// The address actually bound.
    pub addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `[metrics] listen`; `None` when the listener is disabled.
    pub async fn bind(cfg: &crate::config::MetricsConfig) -> std::io::Result<Option<Self>> {
        if !cfg.enabled {
            return Ok(None);
        }
        let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
        let addr = listener.local_addr()?;
        Ok(Some(Self { listener, addr }))
    }

    /// Serves until the task is aborted.
    pub async fn serve(self, pipeline: Arc<Pipeline>) {
        if let Err(e) = axum::serve(self.listener, router(pipeline)).await {
            warn!(error = %e, "metrics listener stopped");
        }
    }
}
