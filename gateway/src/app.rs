//! Wiring: opens the store, starts the broker (embedded mode), the MQTT session, ingest, the uplink, the status
//! publisher and the console, then runs until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tracing::{info, warn};

use crate::audit::Audit;
use crate::config::{BrokerMode, Config, parse_mqtt_url};
use crate::crypto::{CryptoError, PayloadKey};
use crate::mqtt::{self, MqttParams};
use crate::pipeline::Pipeline;
use crate::shared::Shared;
use crate::store::{Store, StoreError};
use crate::uplink::{Uplink, UplinkError};
use crate::watchlist::Watchlist;
use crate::{broker, console, status};

/// Errors that stop the gateway from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Payload key.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Embedded broker.
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    /// Uplink TLS material.
    #[error(transparent)]
    Uplink(#[from] UplinkError),
    /// Metrics listener.
    #[error("metrics listener cannot listen on {addr}: {source}")]
    Metrics {
        /// Address.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Console listener (or its certificate).
    #[error("console cannot listen on {addr}: {source}")]
    Console {
        /// Address.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The face models do not load.
    #[error(transparent)]
    Face(#[from] hotspot_central::models::ModelError),
    /// A config value that validation should have caught.
    #[error("configuration: {0}")]
    Config(String),
    /// Station credentials or the station TLS listener.
    #[error(transparent)]
    Stations(#[from] crate::stations::StationError),
}

/// Where the running gateway can be reached.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Console address actually bound (HTTPS).
    pub console: SocketAddr,
    /// Metrics listener address actually bound (plain HTTP: `/metrics`, `/healthz`, `/api/status`), if enabled.
    pub metrics: Option<SocketAddr>,
    /// Broker `host:port` the gateway uses.
    pub broker: String,
}

fn mqtt_params(cfg: &Config) -> Result<MqttParams, StartError> {
    let (host, port) = match cfg.broker.mode {
        BrokerMode::Embedded => {
            let addr: SocketAddr = cfg
                .broker
                .listen
                .as_deref()
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| StartError::Config("broker.listen".into()))?;
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                addr.ip().to_string()
            };
            (host, addr.port())
        }
        BrokerMode::External => {
            let url = cfg.broker.url.as_deref().unwrap_or_default();
            let a = parse_mqtt_url(url).map_err(StartError::Config)?;
            (a.host, a.port)
        }
    };
    Ok(MqttParams {
        host,
        port,
        client_id: format!("hotspot-gateway-{}", cfg.site.id),
        max_packet_bytes: cfg.broker.max_payload_bytes,
        retry_initial_ms: cfg.broker.retry_initial_ms,
        retry_max_ms: cfg.broker.retry_max_ms,
        last_will: status::last_will(&cfg.site.id),
        tls: None,
        login: None,
    })
}

/// Installs the persisted watchlist and its freshness; on failure starts empty and waits for central's snapshot.
async fn restore_watchlist(watchlist: &Arc<Watchlist>, store: &Store, audit: &Audit) {
    if let Ok(Some(ms)) = store.meta_get::<i64>(crate::watchlist::CONFIRMED_META_KEY) {
        watchlist.set_confirmed_at(ms);
    }
    let w = watchlist.clone();
    match tokio::task::spawn_blocking(move || w.restore(crate::pipeline::now_ms())).await {
        Ok(Ok(0)) => info!("no watchlist installed yet; waiting for central"),
        Ok(Ok(version)) => {
            let c = watchlist.current();
            info!(
                version,
                subjects = c.subjects,
                expired = c.expired,
                "watchlist restored"
            );
        }
        Ok(Err(e)) => {
            warn!(error = %e, "stored watchlist unusable; waiting for central's snapshot");
            audit.record(
                "system",
                "watchlist.unreadable",
                "",
                serde_json::json!({ "reason": e.to_string() }),
            );
        }
        Err(e) => warn!(error = %e, "watchlist restore task failed"),
    }
}

/// How often disk use is measured.
const DISK_POLL: Duration = Duration::from_secs(2);
/// How often the retention policy is applied.
const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Keeps `shared.disk_used_bytes` current and logs alarm transitions.
async fn watch_disk(store: Store, shared: Arc<Shared>, audit: Audit) {
    let mut last_alarms = Vec::new();
    let mut quarantined = 0;
    loop {
        let s = store.clone();
        if let Ok(used) = tokio::task::spawn_blocking(move || s.size_on_disk()).await {
            shared.disk_used_bytes.store(used, Ordering::Relaxed);
        }
        if store.quarantined() > quarantined {
            quarantined = store.quarantined();
            shared.storage_corruption.store(true, Ordering::Relaxed);
            audit.record(
                "system",
                "storage.quarantined",
                "",
                serde_json::json!({ "total": quarantined }),
            );
        }
        let alarms = shared.alarms();
        if alarms != last_alarms {
            if alarms.is_empty() {
                info!("storage alarms cleared");
            } else {
                warn!(
                    ?alarms,
                    used_percent = shared.disk_fraction() * 100.0,
                    "storage alarm"
                );
            }
            last_alarms = alarms;
        }
        tokio::time::sleep(DISK_POLL).await;
    }
}

/// How often purged payload files waiting for a flush are looked at ([`delete_purged_files`]).
const PURGED_FILES_POLL: Duration = Duration::from_secs(1);

/// Flushes the store within about a second when purged payload files wait for it (they are deleted only once their
/// purge is durable, `store` invariant 3), so that biometric data is not kept until the next capture's flush.
async fn delete_purged_files(store: Store) {
    loop {
        tokio::time::sleep(PURGED_FILES_POLL).await;
        if store.purges_pending() > 0
            && let Err(e) = store.flush().await
        {
            warn!(error = %e, "store flush for purged payload files failed");
        }
    }
}

/// Applies the retention policy periodically.
async fn purge_periodically(store: Store, retention: crate::store::Retention) {
    loop {
        let s = store.clone();
        let now = crate::pipeline::now_ms();
        match tokio::task::spawn_blocking(move || s.purge_expired(now, retention)).await {
            Ok(Ok(p)) if p.payloads + p.records + p.quarantined_payloads > 0 => {
                info!(
                    payloads = p.payloads,
                    records = p.records,
                    quarantined_payloads = p.quarantined_payloads,
                    "retention purge"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "retention purge failed"),
            Err(e) => warn!(error = %e, "retention purge task failed"),
        }
        tokio::time::sleep(PURGE_INTERVAL).await;
    }
}

/// Runs the gateway until `shutdown` resolves. `on_ready` is called once everything listens.
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()>,
    on_ready: impl FnOnce(Ready),
) -> Result<(), StartError> {
    let key = PayloadKey::load_or_create(&cfg.key_file())?;
    let store = Store::open(&cfg.storage.dir, key)?;
    let faces = match &cfg.face {
        Some(face) => {
            let dir = face.models_dir.clone();
            let engine = tokio::task::spawn_blocking(move || {
                hotspot_central::models::load_face_engine(&dir)
            })
            .await
            .map_err(|e| StartError::Config(format!("face model loading task: {e}")))??;
            info!(models_dir = %face.models_dir.display(), "face matching on");
            Some(Arc::new(engine))
        }
        None => {
            warn!("no [face] section in the configuration: faces in captures are not compared");
            None
        }
    };
    let access = crate::station_listener::BrokerAccess::prepare(&cfg)?;
    if let (BrokerMode::Embedded, Some(listen)) = (cfg.broker.mode, &cfg.broker.listen) {
        let addr = listen
            .parse()
            .map_err(|_| StartError::Config("broker.listen".into()))?;
        broker::start(
            addr,
            cfg.broker.max_payload_bytes,
            access.internal_login.clone(),
        )?;
    }
    let params = access.apply(mqtt_params(&cfg)?);
    let (client, eventloop) = mqtt::connect(&params);
    let audit = Audit::start(&cfg.audit_file()).map_err(|e| StartError::Config(e.to_string()))?;
    audit.record(
        "system",
        "gateway.started",
        cfg.site.id.clone(),
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
        }),
    );
    let shared = Arc::new(Shared::new(cfg.site.id.clone(), cfg.storage.quota_bytes));
    if let Some(aside) = &store.moved_aside {
        shared.storage_corruption.store(true, Ordering::Relaxed);
        let detail = serde_json::json!({ "moved_to": aside.display().to_string() });
        audit.record("system", "storage.moved_aside", "", detail);
    }
    shared
        .disk_used_bytes
        .store(store.size_on_disk(), Ordering::Relaxed);
    let outbox_notify = Arc::new(Notify::new());
    let (fresh_tx, fresh_rx) = mpsc::channel(1024);
    let max_age_ms = i64::try_from(cfg.watchlist.max_age_hours * 3_600_000).unwrap_or(i64::MAX);
    let watchlist = Arc::new(Watchlist::new(
        cfg.watchlist.trusted(),
        &cfg.storage.dir,
        store.payload_key(),
        max_age_ms,
    ));
    restore_watchlist(&watchlist, &store, &audit).await;
    let plugins = Arc::new(
        crate::plugins::Plugins::new(
            cfg.plugins.as_ref(),
            cfg.watchlist.trusted(),
            &cfg.storage.dir,
        )
        .map_err(|e| StartError::Config(format!("plugins: {e}")))?,
    );
    {
        let p = plugins.clone();
        let refused = tokio::task::spawn_blocking(move || p.restore())
            .await
            .unwrap_or_default();
        for r in refused {
            warn!(reason = %r.reason, "stored plugin not installed");
        }
        let installed = plugins.installed();
        if !installed.is_empty() {
            info!(?installed, "plugins restored");
        }
    }
    let pipeline = Arc::new(Pipeline {
        store: store.clone(),
        watchlist: watchlist.clone(),
        faces,
        client: client.clone(),
        shared: shared.clone(),
        outbox_notify: outbox_notify.clone(),
        // One match at a time, first come first served: each 1:N search already uses every core (rayon), and two
        // at once only shared them, finishing both late (hotspot-bench, docs/benchmark.md).
        match_slots: Arc::new(Semaphore::new(1)),
        retention: cfg.retention(),
        release_above_bytes: cfg.memory.release_above_mib.saturating_mul(1024 * 1024),
        fresh: fresh_tx,
        audit: audit.clone(),
        stats_lock: std::sync::Mutex::new(()),
        plugins,
        plugin_events: std::sync::Mutex::new(Vec::new()),
        console_alerts: std::sync::Mutex::new(std::collections::VecDeque::new()),
        reviewed: std::sync::Mutex::new(Vec::new()),
        enrol_min_finger_score: cfg.plugins.as_ref().map_or(0, |p| p.enrol_min_finger_score),
        pending_marks: std::sync::Mutex::new(Vec::new()),
    });
    let uplink = Arc::new(Uplink::new(
        cfg.uplink.clone(),
        cfg.site.id.clone(),
        pipeline.clone(),
        outbox_notify,
        fresh_rx,
    )?);
    let console_server = console::ConsoleServer::bind(&cfg, pipeline.clone())
        .await
        .map_err(|source| StartError::Console {
            addr: cfg.console.listen.clone(),
            source,
        })?;
    let console_addr = console_server.addr;
    let metrics_server = crate::metrics::MetricsServer::bind(&cfg.metrics)
        .await
        .map_err(|source| StartError::Metrics {
            addr: cfg.metrics.listen.clone(),
            source,
        })?;
    let metrics_addr = metrics_server.as_ref().map(|m| m.addr);

    let (ingest_tx, ingest_rx) = mpsc::channel(256);
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(stations) = access.station_listener(&cfg, &audit).await? {
        tasks.spawn(stations.run());
    }
    tasks.spawn(mqtt::run_event_loop(
        client.clone(),
        eventloop,
        params.clone(),
        shared.clone(),
        ingest_tx,
    ));
    pipeline.recover().await;
    tasks.spawn(pipeline.clone().run_ingest(ingest_rx));
    tasks.spawn(pipeline.clone().confirm_published());
    tasks.spawn(uplink.run());
    tasks.spawn(status::run(client.clone(), pipeline.clone()));
    tasks.spawn(watch_disk(
        store.clone(),
        pipeline.shared.clone(),
        audit.clone(),
    ));
    tasks.spawn(purge_periodically(store.clone(), cfg.retention()));
    tasks.spawn(delete_purged_files(store.clone()));
    let expiry_audit = audit.clone();
    tasks.spawn(
        watchlist
            .clone()
            .run_expiry(crate::pipeline::now_ms, move |version, expired| {
                expiry_audit.record(
                    "system",
                    "watchlist.expired",
                    version.to_string(),
                    serde_json::json!({ "entries": expired }),
                );
            }),
    );
    console_server.spawn(&mut tasks);
    if let Some(m) = metrics_server {
        tasks.spawn(m.serve(pipeline.clone()));
    }
    info!(console = %console_addr, broker = %format!("{}:{}", params.host, params.port), "gateway ready");
    tasks.spawn(crate::systemd::feed_watchdog(pipeline.clone()));
    on_ready(Ready {
        console: console_addr,
        metrics: metrics_addr,
        broker: format!("{}:{}", params.host, params.port),
    });
    crate::systemd::ready();
    shutdown.await;
    info!("gateway stopping");
    crate::systemd::stopping();
    audit.record(
        "system",
        "gateway.stopped",
        cfg.site.id.clone(),
        serde_json::json!({}),
    );
    status::publish(&client, &pipeline, "offline").await;
    if let Err(e) = store.flush().await {
        warn!(error = %e, "final flush failed");
    }
    let _ = client.disconnect().await;
    // Lets the audit writer sync its last batch.
    tokio::time::sleep(crate::audit::SYNC_INTERVAL * 2).await;
    tasks.abort_all();
    Ok(())
}
