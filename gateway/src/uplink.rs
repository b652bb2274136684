//! The QUIC uplink to central: one connection with mutual TLS, a request per bidirectional stream, announcements
//! on unidirectional ones.
//!
//! A session: connect -> `Hello` -> fetch the watchlist if central has a newer one -> deliver the outbox through two
//! lanes sharing `max_in_flight` concurrent submissions:
//! - the **fresh** lane submits captures queued while the link is up at once, so new captures are never stuck
//!   behind a backlog;
//! - the **backlog** lane walks the outbox in priority order (hits, screening FIFO, enrolment), paced by a tower
//!   rate limit (`drain_per_s`), so a reconnect after a long outage neither starves new captures nor storms central.
//!
//! A capture stays in the outbox until central's answer is recorded; a lost answer means a re-submission, which
//! central de-duplicates on `capture_id`, and a duplicate answer on this side is dropped
//! ([`Store::record_central`](crate::store::Store::record_central) returns `false`). Any transport error ends the
//! session; [`Uplink::run`] reconnects after an exponential backoff with jitter. A link monitor samples the
//! connection every second and reports UP / DEGRADED (with hysteresis) and the link's quality.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotspot_central::frames::{StreamError, read_frame, write_frame};
use hotspot_central::pki;
use hotspot_device_protocols::station::{CaptureResult, Decision, Source, UplinkState};
use hotspot_device_protocols::uplink::{
    ALPN, Announcement, GatewayEvent, Hello, MAX_FRAME_BYTES, MAX_WATCHLIST_FRAME_BYTES, Request,
    Response, Submission,
};
use tokio::sync::{Notify, Semaphore, mpsc};
use tower::{Service as _, ServiceExt as _};
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::config::{Congestion, UplinkConfig};
use crate::link::{Counters, LinkMonitor};
use crate::pipeline::{Pipeline, now_ms};

/// How often `Hello` is re-sent on a live connection.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// Errors of one uplink session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UplinkError {
    /// TLS material or configuration.
    #[error("uplink TLS configuration: {0}")]
    Tls(String),
    /// Central's address does not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Socket trouble.
    #[error("uplink socket: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// A stream failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A request took too long.
    #[error("request timed out")]
    Timeout,
    /// Central answered something unexpected or a transient error.
    #[error("central: {0}")]
    Central(String),
    /// The local store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// The uplink worker.
#[derive(Debug)]
pub struct Uplink {
    cfg: UplinkConfig,
    site_id: String,
    pipeline: Arc<Pipeline>,
    outbox_notify: Arc<Notify>,
    client_config: quinn::ClientConfig,
    fresh: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, Uuid)>>,
}

/// The transport settings for long-RTT lossy links (shared with central's side).
pub fn transport_config(
    congestion: Congestion,
    window_bytes: u64,
    idle: Duration,
) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    let window = quinn::VarInt::from_u64(window_bytes).unwrap_or(quinn::VarInt::MAX);
    t.keep_alive_interval(Some(Duration::from_secs(5)))
        .max_idle_timeout(idle.try_into().ok())
        .stream_receive_window(window)
        .receive_window(window)
        .send_window(window_bytes)
        .max_concurrent_bidi_streams(1024u32.into());
    match congestion {
        Congestion::Bbr => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()))
        }
        Congestion::Cubic => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default()))
        }
        Congestion::Newreno => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::NewRenoConfig::default()))
        }
    };
    t
}

/// Builds the QUIC client configuration (mutual TLS 1.3, ALPN `hotspot/1`).
pub fn client_config(cfg: &UplinkConfig) -> Result<quinn::ClientConfig, UplinkError> {
    let tls_err = |e: &dyn std::fmt::Display| UplinkError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in pki::load_certs(&cfg.ca).map_err(|e| tls_err(&e))? {
        roots.add(c).map_err(|e| tls_err(&e))?;
    }
    let chain = pki::load_certs(&cfg.cert).map_err(|e| tls_err(&e))?;
    let key = pki::load_key(&cfg.key).map_err(|e| tls_err(&e))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(&e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| tls_err(&e))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| tls_err(&e))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    config.transport_config(Arc::new(transport_config(
        cfg.congestion,
        cfg.window_bytes,
        idle,
    )));
    Ok(config)
}

/// One connected session's shared state.
struct Session {
    uplink: Arc<Uplink>,
    conn: quinn::Connection,
    inflight: Mutex<HashSet<Vec<u8>>>,
    permits: Arc<Semaphore>,
    failures: mpsc::Sender<UplinkError>,
    /// When central last answered anything on this connection, Unix ms.
    last_answer_ms: std::sync::atomic::AtomicI64,
}

impl Uplink {
    /// Prepares the worker; fails on unusable TLS material.
    pub fn new(
        cfg: UplinkConfig,
        site_id: String,
        pipeline: Arc<Pipeline>,
        outbox_notify: Arc<Notify>,
        fresh: mpsc::Receiver<(Vec<u8>, Uuid)>,
    ) -> Result<Self, UplinkError> {
        let client_config = client_config(&cfg)?;
        Ok(Self {
            cfg,
            site_id,
            pipeline,
            outbox_notify,
            client_config,
            fresh: tokio::sync::Mutex::new(fresh),
        })
    }

    fn set_state(&self, s: UplinkState, link: Option<crate::link::LinkQuality>) {
        if self.pipeline.shared.set_uplink(s, link) {
            info!(state = ?s, "uplink state changed");
        }
    }

    /// Runs sessions forever.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = Backoff::new(self.cfg.retry_initial_ms, self.cfg.retry_max_ms);
        loop {
            if let Err(e) = self.clone().session(&mut backoff).await {
                warn!(error = %e, "uplink session ended");
            }
            self.set_state(UplinkState::Down, None);
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn resolve(&self) -> Result<SocketAddr, UplinkError> {
        tokio::net::lookup_host(&self.cfg.central)
            .await
            .map_err(|_| UplinkError::Resolve(self.cfg.central.clone()))?
            .next()
            .ok_or_else(|| UplinkError::Resolve(self.cfg.central.clone()))
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.request_timeout_ms)
    }

    async fn session(self: Arc<Self>, backoff: &mut Backoff) -> Result<(), UplinkError> {
        let addr = self.resolve().await?;
        let bind: SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let mut endpoint = quinn::Endpoint::client(bind)?;
        endpoint.set_default_client_config(self.client_config.clone());
        let connecting = endpoint.connect(addr, &self.cfg.server_name)?;
        let conn = tokio::time::timeout(
            Duration::from_millis(self.cfg.connect_timeout_ms),
            connecting,
        )
        .await
        .map_err(|_| UplinkError::Timeout)??;
        info!(central = %addr, "uplink connected");
        backoff.reset();
        self.set_state(UplinkState::Up, None);
        let result = self.clone().serve_connection(conn.clone()).await;
        conn.close(0u32.into(), b"session ended");
        endpoint.close(0u32.into(), b"session ended");
        result
    }

    fn hello(&self) -> Request {
        let now = now_ms();
        let installed = self.pipeline.watchlist.current();
        Request::Hello(Hello {
            site_id: self.site_id.clone(),
            software_version: env!("CARGO_PKG_VERSION").to_owned(),
            watchlist_version: installed.version,
            backlog: self.pipeline.store.backlog(),
            oldest_backlog_s: self
                .pipeline
                .store
                .oldest_backlog_ms()
                .map(|t| u64::try_from(now.saturating_sub(t) / 1000).unwrap_or(0)),
            watchlist_created_at_ms: installed.created_at_ms,
            watchlist_age_s: self
                .pipeline
                .watchlist
                .age_ms(now)
                .map(|a| u64::try_from(a / 1000).unwrap_or(0)),
            plugins: self.pipeline.plugins.installed(),
            alarms: self.pipeline.alarms(),
        })
    }

    /// Sends `Hello`; returns central's newest watchlist version.
    async fn say_hello(&self, conn: &quinn::Connection) -> Result<u64, UplinkError> {
        match request(conn, &self.hello(), MAX_FRAME_BYTES, self.timeout()).await? {
            Response::Welcome {
                watchlist_version,
                reviewed,
                ..
            } => {
                self.pipeline.set_reviewed(reviewed);
                Ok(watchlist_version)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Fetches when central has another version, otherwise records that central confirmed ours.
    async fn sync_watchlist(
        &self,
        conn: &quinn::Connection,
        central_version: u64,
    ) -> Result<(), UplinkError> {
        if central_version != self.pipeline.watchlist.current().version {
            self.fetch_watchlist(conn).await
        } else {
            self.pipeline.confirm_watchlist(now_ms());
            Ok(())
        }
    }

    /// Re-sends `Hello` every [`HEARTBEAT`] (central's fleet view: backlog, freshness, alarms); a newer watchlist
    /// version in the answer is handed to the session like an announcement.
    async fn heartbeat(self: Arc<Self>, conn: quinn::Connection, news: mpsc::Sender<News>) {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            self.report_plugin_events(&conn).await;
            match self.say_hello(&conn).await {
                Ok(v) if v != self.pipeline.watchlist.current().version => {
                    if news.send(News::Watchlist(v)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => self.pipeline.confirm_watchlist(now_ms()),
                Err(e) => warn!(error = %e, "heartbeat failed"),
            }
        }
    }

    /// Reports an event to central (logged when central cannot take it: the audit log has it anyway).
    async fn report(&self, conn: &quinn::Connection, event: GatewayEvent) {
        match request(
            conn,
            &Request::Report(event),
            MAX_FRAME_BYTES,
            self.timeout(),
        )
        .await
        {
            Ok(Response::Noted) => {}
            Ok(other) => warn!(response = ?other, "central did not note the report"),
            Err(e) => warn!(error = %e, "cannot report to central"),
        }
    }

    /// Reports plugin rollbacks and alerts for central queued since the last call.
    async fn report_plugin_events(&self, conn: &quinn::Connection) {
        let events = match self.pipeline.plugin_events.lock() {
            Ok(mut e) => std::mem::take(&mut *e),
            Err(_) => return,
        };
        for event in events {
            self.report(conn, event).await;
        }
    }

    /// Fetches and installs plugin bundles newer than the installed ones; refusals are audited and reported.
    async fn fetch_plugins(&self, conn: &quinn::Connection) -> Result<(), UplinkError> {
        let req = Request::FetchPlugins {
            have: self.pipeline.plugins.installed(),
        };
        let bundles = match request(conn, &req, MAX_WATCHLIST_FRAME_BYTES, self.timeout()).await? {
            Response::Bundles(b) => b,
            other => return Err(unexpected(&other)),
        };
        if bundles.is_empty() {
            return Ok(());
        }
        for b in bundles {
            let plugins = self.pipeline.plugins.clone();
            let result = tokio::task::spawn_blocking(move || plugins.install_bundle(&b))
                .await
                .map_err(|e| UplinkError::Central(format!("plugin install task: {e}")))?;
            match result {
                Ok((name, version)) => {
                    info!(plugin = %name, version, "plugin installed");
                    self.pipeline.audit.record(
                        "central",
                        "plugin.installed",
                        name,
                        serde_json::json!({ "version": version }),
                    );
                }
                Err(r) => {
                    warn!(kind = %r.kind, version = r.version, reason = %r.reason, "plugin refused");
                    self.pipeline.audit.record(
                        "central",
                        "plugin.refused",
                        r.version.to_string(),
                        serde_json::json!({ "kind": r.kind, "reason": r.reason }),
                    );
                    self.report(conn, r.into()).await;
                }
            }
        }
        self.say_hello(conn).await?;
        Ok(())
    }

    async fn serve_connection(self: Arc<Self>, conn: quinn::Connection) -> Result<(), UplinkError> {
        let central_version = self.say_hello(&conn).await?;
        self.sync_watchlist(&conn, central_version).await?;
        self.fetch_plugins(&conn).await?;
        let (failures, mut failed) = mpsc::channel(4);
        let session = Arc::new(Session {
            uplink: self.clone(),
            conn: conn.clone(),
            inflight: Mutex::new(HashSet::new()),
            permits: Arc::new(Semaphore::new(self.cfg.max_in_flight)),
            failures,
            last_answer_ms: std::sync::atomic::AtomicI64::new(now_ms()),
        });
        let (ann_tx, mut ann_rx) = mpsc::channel(8);
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(listen_announcements(conn.clone(), ann_tx.clone()));
        tasks.spawn(session.clone().fresh_lane());
        tasks.spawn(session.clone().backlog_lane());
        tasks.spawn(self.clone().monitor(conn.clone()));
        tasks.spawn(self.clone().heartbeat(conn.clone(), ann_tx.clone()));
        let result = loop {
            tokio::select! {
                Some(e) = failed.recv() => break Err(e),
                e = conn.closed() => break Err(UplinkError::Connection(e)),
                Some(news) = ann_rx.recv() => {
                    let done = match news {
                        News::Watchlist(v) => {
                            info!(version = v, "central has a new watchlist");
                            self.sync_watchlist(&conn, v).await
                        }
                        News::Plugins => {
                            info!("central has new plugins");
                            self.fetch_plugins(&conn).await
                        }
                    };
                    if let Err(e) = done {
                        break Err(e);
                    }
                }
            }
        };
        tasks.abort_all();
        result
    }

    async fn monitor(self: Arc<Self>, conn: quinn::Connection) {
        let rtt = Duration::from_millis(self.cfg.degraded_rtt_ms);
        let mut m = LinkMonitor::new(rtt, self.cfg.degraded_loss_percent);
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let s = conn.stats();
            let counters = Counters {
                rtt: s.path.rtt,
                sent_packets: s.path.sent_packets,
                lost_packets: s.path.lost_packets,
                bytes: s.udp_rx.bytes + s.udp_tx.bytes,
            };
            let state = m.sample(counters, last.elapsed());
            last = Instant::now();
            self.set_state(state, Some(m.quality()));
        }
    }

    async fn fetch_watchlist(&self, conn: &quinn::Connection) -> Result<(), UplinkError> {
        let have_version = self.pipeline.watchlist.current().version;
        let req = Request::FetchWatchlist { have_version };
        match request(conn, &req, MAX_WATCHLIST_FRAME_BYTES, self.timeout()).await? {
            Response::Bundles(bundles) => {
                if let Some(refusal) = install_bundles(&self.pipeline, bundles).await {
                    self.report(conn, refusal.into()).await;
                }
                // Central's fleet view learns the new version now rather than at the next heartbeat.
                self.say_hello(conn).await?;
                Ok(())
            }
            Response::WatchlistUnchanged { .. } => {
                self.pipeline.confirm_watchlist(now_ms());
                Ok(())
            }
            other => Err(unexpected(&other)),
        }
    }
}

impl Session {
    /// Claims an outbox entry for submission; `false` if it is already in flight.
    fn claim(&self, key: &[u8]) -> bool {
        self.inflight
            .lock()
            .map(|mut s| s.insert(key.to_vec()))
            .unwrap_or(false)
    }

    fn release(&self, key: &[u8]) {
        if let Ok(mut s) = self.inflight.lock() {
            s.remove(key);
        }
    }

    /// Submits captures queued while the link is up, without pacing.
    async fn fresh_lane(self: Arc<Self>) {
        let mut fresh = self.uplink.fresh.lock().await;
        while let Some((key, id)) = fresh.recv().await {
            self.clone().dispatch(key, id).await;
        }
    }

    /// Walks the outbox in priority order, paced by a tower rate limit.
    async fn backlog_lane(self: Arc<Self>) {
        let per_s = self.uplink.cfg.drain_per_s;
        let mut gate = tower::ServiceBuilder::new()
            .rate_limit(per_s, Duration::from_secs(1))
            .service(tower::service_fn(|()| async { Ok::<(), Infallible>(()) }));
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = match self
                .uplink
                .pipeline
                .store
                .outbox_after(after.as_deref(), 64)
            {
                Ok(b) => b,
                Err(e) => {
                    let _ = self.failures.send(e.into()).await;
                    return;
                }
            };
            if batch.is_empty() {
                after = None;
                tokio::select! {
                    () = self.uplink.outbox_notify.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            for (key, id) in batch {
                after = Some(key.clone());
                let busy = self
                    .inflight
                    .lock()
                    .map(|s| s.contains(&key))
                    .unwrap_or(true);
                if busy {
                    continue;
                }
                let Ok(g) = gate.ready().await;
                let Ok(()) = g.call(()).await;
                self.clone().dispatch(key, id).await;
            }
        }
    }

    /// Waits for a free slot and submits in the background.
    async fn dispatch(self: Arc<Self>, key: Vec<u8>, id: Uuid) {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        if !self.claim(&key) {
            return;
        }
        tokio::spawn(async move {
            let outcome = self.submit(&key, id).await;
            self.release(&key);
            drop(permit);
            match outcome {
                Ok(()) => {}
                // A slow answer while other answers still arrive is a slow link, not a dead one: the
                // capture stays queued and is retried when the backlog lane comes round again. Silence
                // for a whole request timeout is a dead link (or central): end the session, reconnect.
                Err(UplinkError::Timeout) if !self.silent_for(self.uplink.timeout()) => {
                    warn!(capture_id = %id, "central did not answer in time; will retry");
                }
                Err(e) => {
                    let _ = self.failures.try_send(e);
                }
            }
        });
    }

    /// Whether central has answered nothing for `d`.
    fn silent_for(&self, d: Duration) -> bool {
        let last = self
            .last_answer_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        now_ms().saturating_sub(last) >= d.as_millis() as i64
    }

    /// Delivers one capture and records central's answer.
    async fn submit(&self, key: &[u8], id: Uuid) -> Result<(), UplinkError> {
        let pipeline = &self.uplink.pipeline;
        let store = &pipeline.store;
        if !store.in_outbox(key)? {
            return Ok(()); // answered meanwhile (by the other lane)
        }
        let Some((rec, capture)) = store.capture_async(id).await? else {
            error!(capture_id = %id, "outbox entry has no readable capture; quarantining it");
            store.quarantine_outbox(key)?;
            return Ok(());
        };
        let local_decision = store
            .result(id, false)?
            .map_or(Decision::Inconclusive, |r| r.result.decision);
        let req = Request::Submit(Box::new(Submission {
            station_id: rec.station_id.clone(),
            received_at_ms: rec.received_at_ms,
            capture,
            local_decision,
        }));
        let latency = u64::try_from(now_ms().saturating_sub(rec.received_at_ms)).unwrap_or(0);
        let result = match request(&self.conn, &req, MAX_FRAME_BYTES, self.uplink.timeout()).await?
        {
            Response::Answer(a) if a.capture_id == id => a.to_result(latency),
            Response::Error {
                permanent: true,
                message,
            } => CaptureResult {
                capture_id: Some(id),
                source: Source::Central,
                decision: Decision::Rejected,
                candidates: Vec::new(),
                reason: Some(format!("central refused the capture: {message}")),
                watchlist_version: 0,
                latency_ms: latency,
            },
            other => return Err(unexpected(&other)),
        };
        if !store.record_central(key, id, &result, pipeline.retention)? {
            return Ok(()); // a duplicate answer: already recorded and published
        }
        info!(capture_id = %id, decision = ?result.decision, latency_ms = result.latency_ms, "central result");
        pipeline.audit_central(id, &result);
        if rec.purpose == hotspot_device_protocols::station::Purpose::Enrol
            && result.decision != Decision::Rejected
        {
            pipeline.count_contribution(|s| s.forwarded += 1);
        }
        pipeline
            .publish_and_mark(id, &rec.station_id, &result)
            .await;
        Ok(())
    }
}

async fn request(
    conn: &quinn::Connection,
    req: &Request,
    limit: usize,
    timeout: Duration,
) -> Result<Response, UplinkError> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        write_frame(&mut send, req).await?;
        Ok::<Response, UplinkError>(read_frame(&mut recv, limit).await?)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| UplinkError::Timeout)?
}

fn unexpected(resp: &Response) -> UplinkError {
    match resp {
        Response::Error { message, .. } => UplinkError::Central(message.clone()),
        other => UplinkError::Central(format!("unexpected response {other:?}")),
    }
}

/// What the session hears about from central (announcements, heartbeat answers).
#[derive(Debug, Clone, Copy)]
enum News {
    /// Central's newest watchlist version.
    Watchlist(u64),
    /// New plugin bundles.
    Plugins,
}

async fn listen_announcements(conn: quinn::Connection, tx: mpsc::Sender<News>) {
    while let Ok(mut recv) = conn.accept_uni().await {
        let news = match read_frame::<Announcement>(&mut recv, 4096).await {
            Ok(Announcement::WatchlistVersion { version }) => News::Watchlist(version),
            Ok(Announcement::PluginsChanged) => News::Plugins,
            Ok(_) => continue,
            Err(e) => {
                warn!(error = %e, "bad announcement from central");
                continue;
            }
        };
        if tx.send(news).await.is_err() {
            return;
        }
    }
}

/// Verifies, applies, persists and swaps in watchlist bundles; on any failure the installed watchlist stays and
/// the refusal is logged and audited, and returned so that it can be reported to central.
pub async fn install_bundles(
    pipeline: &Arc<Pipeline>,
    bundles: Vec<Vec<u8>>,
) -> Option<crate::watchlist::Refusal> {
    let wl = pipeline.watchlist.clone();
    let result =
        match tokio::task::spawn_blocking(move || wl.apply_bundles(&bundles, now_ms())).await {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "watchlist install task failed");
                return None;
            }
        };
    match result {
        Ok(a) => {
            info!(
                from = a.from_version,
                version = a.version,
                subjects = a.subjects,
                expired = a.expired,
                bundles = ?a.kinds,
                took_ms = a.took_ms,
                "watchlist installed"
            );
            let detail = serde_json::json!({
                "from_version": a.from_version, "subjects": a.subjects, "expired": a.expired,
                "bundles": a.kinds, "signed_by": a.key_ids, "took_ms": a.took_ms,
            });
            pipeline.audit.record(
                "central",
                "watchlist.installed",
                a.version.to_string(),
                detail,
            );
            pipeline.confirm_watchlist(now_ms());
            None
        }
        Err(r) => {
            warn!(kind = %r.kind, version = r.version, reason = %r.reason,
                  "watchlist update refused; keeping the installed one");
            let detail = serde_json::json!({ "kind": r.kind, "reason": r.reason });
            pipeline.audit.record(
                "central",
                "watchlist.refused",
                r.version.to_string(),
                detail,
            );
            Some(r)
        }
    }
}
