//! `hotspot-central serve`: the reference central endpoint.
//!
//! Accepts gateways over QUIC (ALPN `hotspot/1`, TLS 1.3 with client certificates issued by the PKI's CA), answers
//! each submitted capture against the full gallery, idempotently on `capture_id`, serves the signed watchlist and
//! plugin bundles published in `DATA_DIR/bundles` ([`crate::bundles`]), announces new ones to every connected
//! gateway, and keeps the fleet view ([`crate::fleet`]) from what gateways report. With a signing key
//! (`serve --signing-key`) it also publishes a new watchlist version itself whenever the gallery changes.
//!
//! State in `DATA_DIR/db` (sled): tree `answers` (capture id -> postcard [`CentralAnswer`], written once with
//! compare-and-swap, flushed before the answer is sent), tree `submissions` (capture id -> postcard
//! [`SubmissionMeta`]: who sent it and when; no biometric data is kept), tree `meta` (counters).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use hotspot_device_protocols::bundle::SigningKey;
use hotspot_device_protocols::station::Decision;
use hotspot_device_protocols::uplink::{
    Announcement, CentralAnswer, MAX_FRAME_BYTES, Request, Response, Submission,
};
use hotspot_matcher::FingerprintIndex;
use hotspot_matcher::face::{FaceEngine, FaceIndex};
use hotspot_matcher::probe::{Gallery, Probe, decide, probe_from_capture};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::frames::{read_frame, write_frame};
use crate::gallery::{GALLERY_FILE, GalleryError, GalleryFile};
use crate::pki::{self, PkiError};
use crate::{bundles, contributions, fleet};

/// How often the gallery file is checked for a new version.
const GALLERY_POLL: Duration = Duration::from_millis(500);
/// Idle timeout on a gateway connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Data folder (gallery and state).
    pub data_dir: PathBuf,
    /// UDP address to listen on (port 0: any).
    pub listen: SocketAddr,
    /// PKI folder made by `pki init`.
    pub pki_dir: PathBuf,
    /// Face models (`None`: faces in captures are not compared, and answers say so).
    pub faces: Option<Arc<FaceEngine>>,
    /// Publish a new signed watchlist whenever the gallery changes (`None`: ops publish with `watchlist publish`).
    pub signing_key: Option<Arc<SigningKey>>,
}

/// Errors starting or running central.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// PKI material missing or bad.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The gallery cannot be read.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// The state database failed.
    #[error("state database {path}: {source}")]
    Db {
        /// Folder.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// Binding or socket trouble.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
}

/// Audit metadata of one submission (no biometric data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionMeta {
    /// Gateway (certificate name) that delivered it first.
    pub gateway: String,
    /// Station id.
    pub station_id: String,
    /// Unix ms when central first received it.
    pub received_at_ms: i64,
}

struct Loaded {
    version: u64,
    index: FingerprintIndex,
    faces: FaceIndex,
}

struct State {
    gallery: ArcSwap<Loaded>,
    answers: sled::Tree,
    submissions: sled::Tree,
    meta: sled::Tree,
    db: sled::Db,
    /// Newest published watchlist version.
    version_tx: watch::Sender<u64>,
    /// Newest published plugin versions.
    plugins_tx: watch::Sender<std::collections::BTreeMap<String, u64>>,
    pki_dir: PathBuf,
    data_dir: PathBuf,
    names: Mutex<Vec<(String, String)>>,
    faces: Option<Arc<FaceEngine>>,
    /// Probes of recently seen biometric content (see [`ProbeCache`]).
    probes: Mutex<ProbeCache>,
}

/// Probes made from recently seen biometric content, keyed by a SHA-256 of the fingers' and face's formats and
/// bytes: the same images (a capture re-sent under a new id by a station that got no answer, or a repeat capture
/// of the same images) are not decoded and extracted again. Bounded, oldest out first; only in memory.
#[derive(Default)]
struct ProbeCache {
    probes: std::collections::HashMap<[u8; 32], ProbeCell>,
    order: std::collections::VecDeque<[u8; 32]>,
}

/// One content's probe, made once: concurrent submissions of the same images wait for the first to finish
/// rather than all extracting at once.
type ProbeCell = Arc<std::sync::OnceLock<Result<Probe, String>>>;

impl ProbeCache {
    const CAPACITY: usize = 256;

    fn key(capture: &hotspot_device_protocols::station::Capture) -> [u8; 32] {
        let mut h = ring::digest::Context::new(&ring::digest::SHA256);
        for f in &capture.fingers {
            h.update(&[f.position]);
            h.update(format!("{:?}", f.format).as_bytes());
            h.update(&(f.data.len() as u64).to_le_bytes());
            h.update(&f.data);
        }
        if let Some(face) = &capture.face {
            h.update(b"face");
            h.update(format!("{:?}", face.format).as_bytes());
            h.update(&(face.data.len() as u64).to_le_bytes());
            h.update(&face.data);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(h.finish().as_ref());
        key
    }

    /// The cell for `key`, new (and the oldest dropped beyond [`Self::CAPACITY`]) if absent.
    fn cell(&mut self, key: [u8; 32]) -> ProbeCell {
        if let Some(c) = self.probes.get(&key) {
            return c.clone();
        }
        let c = ProbeCell::default();
        self.probes.insert(key, c.clone());
        self.order.push_back(key);
        while self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.probes.remove(&old);
            }
        }
        c
    }
}

/// Opens central's state database.
pub fn open_db(data_dir: &Path) -> Result<sled::Db, ServeError> {
    let path = data_dir.join("db");
    sled::open(&path).map_err(|source| ServeError::Db { path, source })
}

fn load_gallery(data_dir: &Path) -> Result<Loaded, ServeError> {
    let g = GalleryFile::load(data_dir)?;
    Ok(Loaded {
        version: g.version,
        index: g.index(),
        faces: g.faces(),
    })
}

fn server_config(pki_dir: &Path) -> Result<quinn::ServerConfig, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in pki::load_certs(&pki_dir.join("ca.pem"))? {
        roots
            .add(c)
            .map_err(|e| ServeError::Tls(format!("CA certificate: {e}")))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| ServeError::Tls(e.to_string()))?;
    let chain = pki::load_certs(&pki_dir.join("central.pem"))?;
    let key = pki::load_key(&pki_dir.join("central.key"))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![hotspot_device_protocols::uplink::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    // Receive windows sized for a 10 Mbit/s link with 1 s RTT and beyond; BBR keeps the answers flowing on lossy
    // links (measured: CUBIC collapses at 200 ms RTT and 1% loss).
    let window: u32 = 16 * 1024 * 1024;
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(IDLE_TIMEOUT.try_into().ok())
        .keep_alive_interval(Some(Duration::from_secs(10)))
        .stream_receive_window(window.into())
        .receive_window(window.into())
        .send_window(u64::from(window))
        .max_concurrent_bidi_streams(1024u32.into())
        .congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Runs central until `shutdown` resolves. `on_ready` gets the bound address once listening.
pub async fn serve(
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let db = open_db(&opts.data_dir)?;
    let tree = |name: &str| {
        db.open_tree(name).map_err(|source| ServeError::Db {
            path: opts.data_dir.join("db"),
            source,
        })
    };
    let loaded = load_gallery(&opts.data_dir)?;
    if let Some(key) = &opts.signing_key {
        publish(&opts.data_dir, key);
    }
    let (version_tx, _) = watch::channel(bundles::latest_watchlist(&opts.data_dir));
    let (plugins_tx, _) = watch::channel(bundles::latest_plugins(&opts.data_dir));
    let state = Arc::new(State {
        gallery: ArcSwap::from_pointee(loaded),
        answers: tree("answers")?,
        submissions: tree("submissions")?,
        meta: tree("meta")?,
        db: db.clone(),
        version_tx,
        plugins_tx,
        names: Mutex::new(pki::gateway_names(&opts.pki_dir)),
        pki_dir: opts.pki_dir.clone(),
        data_dir: opts.data_dir.clone(),
        faces: opts.faces.clone(),
        probes: Mutex::new(ProbeCache::default()),
    });
    let endpoint =
        quinn::Endpoint::server(server_config(&opts.pki_dir)?, opts.listen).map_err(|source| {
            ServeError::Listen {
                addr: opts.listen,
                source,
            }
        })?;
    let local = endpoint.local_addr().map_err(|source| ServeError::Listen {
        addr: opts.listen,
        source,
    })?;
    info!(%local, version = state.gallery.load().version, "central listening");
    on_ready(local);
    let watcher = tokio::spawn(watch_gallery(
        state.clone(),
        opts.data_dir.clone(),
        opts.signing_key.clone(),
    ));
    let accept = async {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(handle_connection(state.clone(), incoming));
        }
    };
    tokio::select! {
        () = accept => {}
        () = shutdown => info!("central shutting down"),
    }
    watcher.abort();
    endpoint.close(0u32.into(), b"central shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
    if let Err(e) = flush(&db).await {
        warn!(error = %e, "final flush failed");
    }
    Ok(())
}

/// Publishes the gallery's watchlist if it changed (online signing, `serve --signing-key`).
fn publish(data_dir: &Path, key: &SigningKey) {
    match bundles::publish_watchlist(data_dir, key, now_ms()) {
        Ok(Some(p)) => info!(
            version = p.version,
            subjects = p.subjects,
            delta_ops = p.delta_ops,
            "watchlist published"
        ),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "cannot publish the watchlist"),
    }
}

/// Reloads the gallery when its file changes (publishing a new watchlist with a signing key), and announces newly
/// published watchlist and plugin bundles.
async fn watch_gallery(state: Arc<State>, data_dir: PathBuf, key: Option<Arc<SigningKey>>) {
    let path = data_dir.join(GALLERY_FILE);
    let mut last: Option<(SystemTime, u64)> = None;
    loop {
        tokio::time::sleep(GALLERY_POLL).await;
        if let Ok(m) = std::fs::metadata(&path) {
            let stamp = (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len());
            if last != Some(stamp) {
                last = Some(stamp);
                let dir = data_dir.clone();
                let key = key.clone();
                let reloaded = tokio::task::spawn_blocking(move || {
                    let loaded = load_gallery(&dir)?;
                    if let Some(key) = key {
                        publish(&dir, &key);
                    }
                    Ok::<_, ServeError>(loaded)
                })
                .await;
                match reloaded {
                    Ok(Ok(loaded)) if loaded.version != state.gallery.load().version => {
                        info!(version = loaded.version, "gallery reloaded");
                        state.gallery.store(Arc::new(loaded));
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        warn!(error = %e, "gallery reload failed; keeping the current one")
                    }
                    Err(e) => warn!(error = %e, "gallery reload task failed"),
                }
            }
        }
        let latest = bundles::latest_watchlist(&data_dir);
        if latest != *state.version_tx.borrow() {
            info!(
                version = latest,
                "new watchlist bundle; announcing to gateways"
            );
            state.version_tx.send_replace(latest);
        }
        let plugins = bundles::latest_plugins(&data_dir);
        if plugins != *state.plugins_tx.borrow() {
            info!(?plugins, "new plugin bundles; announcing to gateways");
            state.plugins_tx.send_replace(plugins);
        }
    }
}

fn peer_name(state: &State, conn: &quinn::Connection) -> String {
    let Some(fp) = conn
        .peer_identity()
        .and_then(|id| {
            id.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .and_then(|certs| certs.first().map(pki::fingerprint))
    else {
        return "unknown".into();
    };
    let Ok(mut names) = state.names.lock() else {
        return "unknown".into();
    };
    if !names.iter().any(|(f, _)| *f == fp) {
        *names = pki::gateway_names(&state.pki_dir);
    }
    names
        .iter()
        .find(|(f, _)| *f == fp)
        .map(|(_, n)| n.clone())
        .unwrap_or_else(|| format!("unregistered-{}", &fp[..12]))
}

async fn handle_connection(state: Arc<State>, incoming: quinn::Incoming) {
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            debug!(error = %e, "handshake failed");
            return;
        }
    };
    let gateway = peer_name(&state, &conn);
    info!(%gateway, remote = %conn.remote_address(), "gateway connected");
    let announcer = tokio::spawn(announce(
        conn.clone(),
        state.version_tx.subscribe(),
        state.plugins_tx.subscribe(),
    ));
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(handle_stream(state.clone(), gateway.clone(), send, recv));
            }
            Err(e) => {
                info!(%gateway, reason = %e, "gateway disconnected");
                break;
            }
        }
    }
    announcer.abort();
}

async fn announce(
    conn: quinn::Connection,
    mut watchlist: watch::Receiver<u64>,
    mut plugins: watch::Receiver<std::collections::BTreeMap<String, u64>>,
) {
    loop {
        let msg = tokio::select! {
            r = watchlist.changed() => {
                if r.is_err() {
                    return;
                }
                Announcement::WatchlistVersion { version: *watchlist.borrow_and_update() }
            }
            r = plugins.changed() => {
                if r.is_err() {
                    return;
                }
                plugins.borrow_and_update();
                Announcement::PluginsChanged
            }
        };
        let Ok(mut send) = conn.open_uni().await else {
            return;
        };
        if let Err(e) = write_frame(&mut send, &msg).await {
            debug!(error = %e, "announcement failed");
            return;
        }
    }
}

async fn handle_stream(
    state: Arc<State>,
    gateway: String,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let req: Request = match read_frame(&mut recv, MAX_FRAME_BYTES).await {
        Ok(r) => r,
        Err(e) => {
            warn!(%gateway, error = %e, "bad request");
            let resp = Response::Error {
                permanent: true,
                message: format!("bad request: {e}"),
            };
            let _ = write_frame(&mut send, &resp).await;
            return;
        }
    };
    let result = match req {
        Request::Hello(h) => {
            debug!(%gateway, site = %h.site_id, version = %h.software_version,
                  watchlist = h.watchlist_version, backlog = h.backlog, "hello");
            let (dir, gw) = (state.data_dir.clone(), gateway.clone());
            let recorded =
                tokio::task::spawn_blocking(move || fleet::record_hello(&dir, &gw, &h, now_ms()))
                    .await;
            if let Ok(Err(e)) = recorded {
                warn!(%gateway, error = %e, "cannot record the fleet view");
            }
            let (dir, gw) = (state.data_dir.clone(), gateway.clone());
            let reviewed =
                tokio::task::spawn_blocking(move || contributions::reviewed(&dir, &gw, 7))
                    .await
                    .ok()
                    .and_then(|r| {
                        r.map_err(|e| warn!(error = %e, "cannot count contributions"))
                            .ok()
                    })
                    .unwrap_or_default();
            let resp = Response::Welcome {
                central_id: "central".into(),
                watchlist_version: *state.version_tx.borrow(),
                reviewed,
            };
            write_frame(&mut send, &resp).await
        }
        Request::FetchWatchlist { have_version } => {
            let dir = state.data_dir.clone();
            let resp = match tokio::task::spawn_blocking(move || {
                bundles::watchlist_bundles_for(&dir, have_version)
            })
            .await
            {
                Ok(Ok(b)) if b.is_empty() => Response::WatchlistUnchanged {
                    version: have_version,
                },
                Ok(Ok(b)) => Response::Bundles(b),
                Ok(Err(e)) => transient(e.to_string()),
                Err(e) => transient(e.to_string()),
            };
            write_frame(&mut send, &resp).await
        }
        Request::FetchPlugins { have } => {
            let dir = state.data_dir.clone();
            let resp =
                match tokio::task::spawn_blocking(move || bundles::plugin_bundles_for(&dir, &have))
                    .await
                {
                    Ok(Ok(b)) => Response::Bundles(b),
                    Ok(Err(e)) => transient(e.to_string()),
                    Err(e) => transient(e.to_string()),
                };
            write_frame(&mut send, &resp).await
        }
        Request::Report(event) => {
            warn!(%gateway, ?event, "gateway reports");
            let (dir, gw) = (state.data_dir.clone(), gateway.clone());
            let recorded = tokio::task::spawn_blocking(move || {
                fleet::record_event(&dir, &gw, &event, now_ms())
            })
            .await;
            if let Ok(Err(e)) = recorded {
                warn!(%gateway, error = %e, "cannot record the fleet view");
            }
            write_frame(&mut send, &Response::Noted).await
        }
        Request::Submit(sub) => {
            let resp = answer(&state, &gateway, *sub).await;
            write_frame(&mut send, &resp).await
        }
        _ => {
            let resp = Response::Error {
                permanent: true,
                message: "request kind not supported by this central".into(),
            };
            write_frame(&mut send, &resp).await
        }
    };
    if let Err(e) = result {
        debug!(%gateway, error = %e, "response not delivered");
    }
}

fn transient(message: String) -> Response {
    warn!(error = %message, "cannot serve bundles");
    Response::Error {
        permanent: false,
        message,
    }
}

fn count(state: &State, key: &str) {
    let r = state.meta.fetch_and_update(key, |old| {
        let n = old
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Some((n + 1).to_be_bytes().to_vec())
    });
    if let Err(e) = r {
        warn!(error = %e, key, "counter update failed");
    }
}

fn stored_answer(state: &State, key: &[u8]) -> Option<CentralAnswer> {
    let bytes = state.answers.get(key).ok().flatten()?;
    let mut a: CentralAnswer = postcard::from_bytes(&bytes).ok()?;
    a.duplicate = true;
    Some(a)
}

async fn answer(state: &Arc<State>, gateway: &str, sub: Submission) -> Response {
    let id = sub.capture.capture_id;
    count(state, "submits_received");
    if let Some(a) = stored_answer(state, id.as_bytes()) {
        // The stored answer may be from a request whose flush has not finished: answer only once it is durable.
        if let Err(e) = flush(&state.db).await {
            return Response::Error {
                permanent: false,
                message: format!("state database flush: {e}"),
            };
        }
        count(state, "duplicates_received");
        info!(%gateway, capture_id = %id, "duplicate submission; returning the stored answer");
        return Response::Answer(a);
    }
    let loaded = state.gallery.load_full();
    let capture = sub.capture.clone();
    let engine = state.faces.clone();
    let state2 = state.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let key = ProbeCache::key(&capture);
        let make = || probe_from_capture(&capture, engine.as_deref());
        let probe = match state2.probes.lock().map(|mut c| c.cell(key)) {
            Ok(cell) => cell.get_or_init(make).clone(),
            Err(_) => make(),
        };
        match probe {
            Ok(probe) => {
                let templates: Vec<(u8, Vec<u8>)> = probe
                    .fingers
                    .iter()
                    .map(|(p, t)| (*p, t.encode()))
                    .collect();
                let face = probe.face.as_ref().map(|f| f.embedding.encode());
                let gallery = Gallery {
                    fingers: &loaded.index,
                    faces: &loaded.faces,
                };
                (decide(gallery, &probe), (templates, face))
            }
            Err(reason) => {
                let outcome = hotspot_matcher::probe::Outcome {
                    decision: Decision::Rejected,
                    candidates: Vec::new(),
                    reason: Some(reason),
                };
                (outcome, (Vec::new(), None))
            }
        }
    })
    .await;
    let Ok((outcome, (templates, face))) = outcome else {
        return Response::Error {
            permanent: false,
            message: "matching task failed".into(),
        };
    };
    let contribution_id = match (&sub.capture.enrolment, outcome.decision) {
        (Some(enrolment), d) if d != Decision::Rejected => {
            let delivered = contributions::Delivered {
                capture_id: id,
                gateway,
                station_id: &sub.station_id,
                enrolment,
                fingers: templates,
                has_face: sub.capture.face.is_some(),
                face,
                screening: d,
            };
            match contributions::record(&state.data_dir, delivered) {
                Ok(cid) => Some(cid),
                Err(e) => {
                    return Response::Error {
                        permanent: false,
                        message: format!("cannot record the contribution: {e}"),
                    };
                }
            }
        }
        _ => None,
    };
    let answer = CentralAnswer {
        capture_id: id,
        decision: outcome.decision,
        candidates: outcome.candidates,
        reason: outcome.reason,
        gallery_version: state.gallery.load().version,
        duplicate: false,
        contribution_id,
    };
    store_answer(state, gateway, &sub, answer).await
}

async fn store_answer(
    state: &Arc<State>,
    gateway: &str,
    sub: &Submission,
    answer: CentralAnswer,
) -> Response {
    let id = sub.capture.capture_id;
    let transient = |what: String| Response::Error {
        permanent: false,
        message: what,
    };
    let Ok(bytes) = postcard::to_stdvec(&answer) else {
        return transient("cannot encode answer".into());
    };
    let meta = SubmissionMeta {
        gateway: gateway.to_owned(),
        station_id: sub.station_id.clone(),
        received_at_ms: now_ms(),
    };
    match state
        .answers
        .compare_and_swap(id.as_bytes(), None::<&[u8]>, Some(bytes))
    {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            count(state, "duplicates_received");
            return stored_answer(state, id.as_bytes())
                .map(Response::Answer)
                .unwrap_or_else(|| transient("answer vanished".into()));
        }
        Err(e) => return transient(format!("state database: {e}")),
    }
    if let Ok(m) = postcard::to_stdvec(&meta) {
        let _ = state.submissions.insert(id.as_bytes(), m);
    }
    if let Err(e) = flush(&state.db).await {
        return transient(format!("state database flush: {e}"));
    }
    info!(%gateway, capture_id = %id, station = %sub.station_id, decision = ?answer.decision, "answered");
    Response::Answer(answer)
}

/// Makes the database durable. sled's blocking `flush` on a blocking thread: concurrent `flush_async` calls were
/// seen to never complete under load (sled 0.34), which left answers unacknowledged and undurable.
async fn flush(db: &sled::Db) -> Result<(), String> {
    let db = db.clone();
    match tokio::task::spawn_blocking(move || db.flush()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Wall-clock Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// What `report` prints: central's view of what it received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Distinct captures answered.
    pub answered: u64,
    /// Submissions received, re-submissions included.
    pub submits_received: u64,
    /// Re-submissions of an already answered capture.
    pub duplicates_received: u64,
    /// Capture ids answered, with the station each came from.
    pub captures: Vec<(String, String)>,
}

/// Reads the report from a stopped central's data folder.
pub fn report(data_dir: &Path) -> Result<Report, ServeError> {
    let db = open_db(data_dir)?;
    let err = |source| ServeError::Db {
        path: data_dir.join("db"),
        source,
    };
    let meta = db.open_tree("meta").map_err(err)?;
    let get = |k: &str| -> u64 {
        meta.get(k)
            .ok()
            .flatten()
            .and_then(|b| b.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    };
    let subs = db.open_tree("submissions").map_err(err)?;
    let answers = db.open_tree("answers").map_err(err)?;
    let mut captures = Vec::new();
    for item in answers.iter() {
        let (k, _) = item.map_err(err)?;
        let id = uuid::Uuid::from_slice(&k)
            .map(|u| u.to_string())
            .unwrap_or_default();
        let station = subs
            .get(&k)
            .ok()
            .flatten()
            .and_then(|m| postcard::from_bytes::<SubmissionMeta>(&m).ok())
            .map(|m| m.station_id)
            .unwrap_or_default();
        captures.push((id, station));
    }
    Ok(Report {
        answered: captures.len() as u64,
        submits_received: get("submits_received"),
        duplicates_received: get("duplicates_received"),
        captures,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hotspot_device_protocols::station::{Finger, FingerFormat, Purpose};

    fn capture(position: u8, data: &[u8]) -> hotspot_device_protocols::station::Capture {
        hotspot_device_protocols::station::Capture {
            capture_id: uuid::Uuid::new_v4(),
            captured_at: time::OffsetDateTime::UNIX_EPOCH,
            operator: "officer-1".into(),
            purpose: Purpose::Screen,
            fingers: vec![Finger {
                position,
                format: FingerFormat::Wsq,
                data: data.to_vec(),
            }],
            face: None,
            enrolment: None,
        }
    }

    #[test]
    fn probe_cache_keys_on_content_not_capture_id_and_stays_bounded() {
        let a = capture(1, b"image a");
        let a_again = capture(1, b"image a");
        assert_ne!(a.capture_id, a_again.capture_id);
        assert_eq!(ProbeCache::key(&a), ProbeCache::key(&a_again));
        assert_ne!(
            ProbeCache::key(&a),
            ProbeCache::key(&capture(2, b"image a"))
        );
        assert_ne!(
            ProbeCache::key(&a),
            ProbeCache::key(&capture(1, b"image b"))
        );
        let mut cache = ProbeCache::default();
        let made = cache.cell(ProbeCache::key(&a));
        made.get_or_init(|| {
            Ok(Probe {
                notes: vec!["first".into()],
                ..Probe::default()
            })
        });
        let again = cache.cell(ProbeCache::key(&a_again));
        let probe = again.get_or_init(|| Err("made twice".into()));
        assert_eq!(probe.as_ref().unwrap().notes, ["first"]);
        for i in 0..ProbeCache::CAPACITY as u32 {
            cache.cell(ProbeCache::key(&capture(3, &i.to_le_bytes())));
        }
        assert_eq!(cache.probes.len(), ProbeCache::CAPACITY);
        assert_eq!(cache.order.len(), ProbeCache::CAPACITY);
        let first = cache.cell(ProbeCache::key(&a));
        assert!(first.get().is_none(), "oldest out first");
    }
}
