//! Station access to the broker: the embedded broker's TLS listener with per-station topic rights, and the
//! credentials the gateway itself uses on either broker.
//!
//! # Why a listener of our own in front of rumqttd
//! rumqttd 0.20 has no topic access control. Its only isolation is "tenants" (features `verify-client-cert` and
//! `validate-tenant-prefix`): the tenant is the Organization of the client certificate, and a tenant's client may
//! only use topics that *it* prefixes with `/tenants/{tenant}/`; rumqttd does not rewrite topics. Stations would
//! have to speak different topics to the embedded broker and to mosquitto, tenant ids must be alphanumeric (station
//! ids are not), its TLS verifier takes no revocation list, and its TLS handshake runs inside the accept loop with
//! no timeout (one silent client stops every new connection). So the embedded broker is two parts:
//! - rumqttd on `broker.listen`, which must be a loopback address, and which requires a random credential made at
//!   each start ([`BrokerLogin::random`]): only the gateway's own session and this listener have it;
//! - [`StationListener`] on `broker.tls_listen`: TLS with a client certificate from the station CA, checked
//!   against the registry of issued certificates (`crate::stations`; unknown or revoked ones fail the handshake),
//!   then an MQTT 3.1.1 relay to rumqttd that reads every packet the station sends and lets through only what
//!   [`may_publish`] and [`may_subscribe`] allow. A station's session on rumqttd is named [`session_client_id`], so
//!   no station can take over another's persistent session; its will must be its own presence topic.
//!
//! A refused publish is acknowledged and dropped, as mosquitto does (MQTT 3.1.1 has no negative acknowledgement
//! for a publish; closing instead would throw a client that re-sends it on reconnect into a loop); a refused
//! subscription gets the failure code 0x80 in its SUBACK; a will on another topic refuses the connection (CONNACK
//! "not authorized"). A revocation closes the station's open connections within about a second. Refusals and connections are in the audit log
//! (`station.connected`, `station.refused`, `station.denied`, `station.disconnected`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hotspot_central::pki;
use hotspot_device_protocols::station::{
    may_publish, may_subscribe, session_client_id, station_status_topic,
};
use rumqttc::mqttbytes::Protocol;
use rumqttc::{
    ConnAck, ConnectReturnCode, Login, Packet, PubAck, PubComp, PubRec, QoS, SubAck,
    SubscribeReasonCode,
};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::audit::Audit;
use crate::config::{BrokerMode, Config, parse_mqtt_url};
use crate::mqtt::{BrokerLogin, MqttParams};
use crate::stations::{RegistryWatch, StationCa, StationError};

/// Time a station has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a station has to send CONNECT after the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the registry file is checked for revocations.
const REGISTRY_POLL: Duration = Duration::from_secs(1);
/// Station connections at once.
const MAX_CONNECTIONS: usize = 4096;
/// The same refusal (same certificate, same address and reason, or same station and topic) is logged and audited
/// at most this often: a refused client typically retries every few hundred milliseconds.
const REFUSAL_QUIET: Duration = Duration::from_secs(60);

/// Remembers when each kind of refusal was last reported.
#[derive(Debug, Default)]
struct Throttle(std::sync::Mutex<HashMap<String, std::time::Instant>>);

impl Throttle {
    /// Whether a refusal of kind `key` should be reported now.
    fn allow(&self, key: String) -> bool {
        let now = std::time::Instant::now();
        let mut seen = match self.0.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.len() > 10_000 {
            seen.retain(|_, t| now.duration_since(*t) < REFUSAL_QUIET);
            if seen.len() > 10_000 {
                // A flood of distinct refusals: forget them all rather than grow (worst case: more reports).
                seen.clear();
            }
        }
        match seen.get(&key) {
            Some(t) if now.duration_since(*t) < REFUSAL_QUIET => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }
}

/// The names in the station listener's certificate: `broker.tls_server_names`, else localhost, 127.0.0.1, ::1 and
/// the `tls_listen` address when it is a specific one.
pub fn server_names(cfg: &Config) -> Vec<String> {
    if !cfg.broker.tls_server_names.is_empty() {
        return cfg.broker.tls_server_names.clone();
    }
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(addr) = cfg
        .broker
        .tls_listen
        .as_deref()
        .and_then(|l| l.parse::<SocketAddr>().ok())
        .filter(|a| !a.ip().is_unspecified() && !a.ip().is_loopback())
    {
        names.push(addr.ip().to_string());
    }
    names
}

/// Checks the client certificate chain (station CA) and then that the registry lists it as active; refusals of
/// listed certificates are audited under the station's name.
#[derive(Debug)]
struct StationVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    registry: Arc<RegistryWatch>,
    audit: Audit,
    throttle: Arc<Throttle>,
}

impl ClientCertVerifier for StationVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let fingerprint = pki::fingerprint(end_entity);
        let registry = self.registry.current();
        match registry.lookup(&fingerprint) {
            Some(c) if registry.active_station(&fingerprint).is_some() => {
                debug!(station = %c.station_id, "station certificate accepted");
                Ok(ClientCertVerified::assertion())
            }
            Some(c) => {
                let reason = if c.revoked_at.is_some() {
                    "certificate revoked"
                } else {
                    "certificate expired"
                };
                if self.throttle.allow(fingerprint.clone()) {
                    warn!(station = %c.station_id, serial = %c.serial, reason, "station refused");
                    self.audit.record(
                        format!("station:{}", c.station_id),
                        "station.refused",
                        c.serial.clone(),
                        serde_json::json!({"reason": reason, "fingerprint": fingerprint}),
                    );
                }
                Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
            }
            None => {
                if self.throttle.allow(fingerprint.clone()) {
                    warn!(%fingerprint, "station refused: certificate not in the station registry");
                    self.audit.record(
                        "unknown",
                        "station.refused",
                        "",
                        serde_json::json!({"reason": "certificate not issued to a station", "fingerprint": fingerprint}),
                    );
                }
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS configuration of the station listener: a fresh server certificate for `names`, client certificates
/// required and checked by [`StationVerifier`].
fn server_config(
    ca: &StationCa,
    names: &[String],
    registry: Arc<RegistryWatch>,
    audit: Audit,
    throttle: Arc<Throttle>,
) -> Result<Arc<rustls::ServerConfig>, StationError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.ca_der()?)
        .map_err(|e| StationError::Tls(format!("station CA: {e}")))?;
    let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| StationError::Tls(e.to_string()))?;
    let verifier = Arc::new(StationVerifier {
        inner,
        registry,
        audit,
        throttle,
    });
    let identity = ca.server_identity(names)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StationError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| StationError::Tls(e.to_string()))?;
    // No session resumption: a resumed session skips the client certificate check, so a station revoked since
    // its last handshake would get back in through its cached session.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// How the gateway reaches its broker and lets stations in, prepared at start from `[broker]`.
#[derive(Debug, Default)]
pub struct BrokerAccess {
    /// The station CA (absent only with anonymous stations and no TLS anywhere).
    pub ca: Option<Arc<StationCa>>,
    /// Embedded: the credential rumqttd requires on `broker.listen` (`None`: anonymous stations, rumqttd open).
    pub internal_login: Option<BrokerLogin>,
    /// External `mqtts://`: the gateway's TLS client configuration (its own certificate from the station CA).
    pub client_tls: Option<Arc<rustls::ClientConfig>>,
}

impl BrokerAccess {
    /// Opens (or makes) the station CA and the credentials `cfg` calls for; logs the configuration's warnings.
    pub fn prepare(cfg: &Config) -> Result<Self, StationError> {
        for w in cfg.warnings() {
            warn!("{w}");
        }
        let b = &cfg.broker;
        let external_tls = b.mode == BrokerMode::External
            && b.url
                .as_deref()
                .and_then(|u| parse_mqtt_url(u).ok())
                .is_some_and(|a| a.tls);
        let needs_ca = !b.allow_anonymous_stations || b.tls_listen.is_some() || external_tls;
        let ca = if needs_ca {
            Some(Arc::new(StationCa::open_or_create(&StationCa::dir_for(
                &cfg.storage.dir,
            ))?))
        } else {
            None
        };
        let internal_login = if b.mode == BrokerMode::Embedded && !b.allow_anonymous_stations {
            Some(BrokerLogin::random().map_err(StationError::Tls)?)
        } else {
            None
        };
        let client_tls = match (&ca, external_tls) {
            (Some(ca), true) => Some(crate::stations::client_config(
                vec![ca.ca_der()?],
                Some(ca.gateway_identity()?),
            )?),
            _ => None,
        };
        if b.allow_anonymous_stations {
            warn!(
                "STATION AUTHENTICATION IS OFF (broker.allow_anonymous_stations = true): any device on the site \
                 network can publish captures as any station and read every station's results"
            );
        }
        Ok(Self {
            ca,
            internal_login,
            client_tls,
        })
    }

    /// `params` with the gateway's TLS configuration and login added.
    pub fn apply(&self, mut params: MqttParams) -> MqttParams {
        params.tls = self.client_tls.clone();
        params.login = self.internal_login.clone();
        params
    }

    /// Binds the station listener when `broker.tls_listen` is set (embedded mode).
    pub async fn station_listener(
        &self,
        cfg: &Config,
        audit: &Audit,
    ) -> Result<Option<StationListener>, StationError> {
        let (Some(ca), BrokerMode::Embedded, Some(tls_listen), Some(listen)) = (
            &self.ca,
            cfg.broker.mode,
            cfg.broker.tls_listen.as_deref(),
            cfg.broker.listen.as_deref(),
        ) else {
            return Ok(None);
        };
        let bad = |key: &str| StationError::Tls(format!("broker.{key} is not an address"));
        let addr: SocketAddr = tls_listen.parse().map_err(|_| bad("tls_listen"))?;
        let mut broker: SocketAddr = listen.parse().map_err(|_| bad("listen"))?;
        if broker.ip().is_unspecified() {
            broker.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let registry = Arc::new(RegistryWatch::new(ca.registry_path()));
        let names = server_names(cfg);
        let throttle = Arc::new(Throttle::default());
        let tls = server_config(
            ca,
            &names,
            registry.clone(),
            audit.clone(),
            throttle.clone(),
        )?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StationError::Listen { addr, source })?;
        info!(listen = %addr, names = ?names, "station TLS listener ready (client certificates required)");
        Ok(Some(StationListener {
            listener,
            ctx: Arc::new(Ctx {
                acceptor: tokio_rustls::TlsAcceptor::from(tls),
                registry,
                broker,
                login: self.internal_login.clone(),
                max_packet: cfg.broker.max_payload_bytes + 4096,
                audit: audit.clone(),
                throttle,
            }),
        }))
    }
}

struct Ctx {
    acceptor: tokio_rustls::TlsAcceptor,
    registry: Arc<RegistryWatch>,
    broker: SocketAddr,
    login: Option<BrokerLogin>,
    max_packet: usize,
    audit: Audit,
    throttle: Arc<Throttle>,
}

/// The embedded broker's station listener (see the module documentation).
pub struct StationListener {
    listener: TcpListener,
    ctx: Arc<Ctx>,
}

impl std::fmt::Debug for StationListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationListener")
            .field("listen", &self.listener.local_addr().ok())
            .field("broker", &self.ctx.broker)
            .finish_non_exhaustive()
    }
}

impl StationListener {
    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts stations forever; re-reads the registry every second so revocations close open connections.
    pub async fn run(self) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut poll = tokio::time::interval(REGISTRY_POLL);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            warn!(%peer, "too many station connections; refusing one");
                            continue;
                        };
                        let ctx = self.ctx.clone();
                        tokio::spawn(async move {
                            handle(&ctx, tcp, peer).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        warn!(error = %e, "station listener cannot accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = poll.tick() => {
                    self.ctx.registry.current();
                }
            }
        }
    }
}

fn refused(ctx: &Ctx, peer: SocketAddr, e: &std::io::Error) {
    let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let reason = match tls {
        // Already audited, under the station's name, by the verifier.
        Some(rustls::Error::InvalidCertificate(
            CertificateError::Revoked | CertificateError::ApplicationVerificationFailure,
        )) => {
            debug!(%peer, error = %e, "station refused");
            return;
        }
        Some(rustls::Error::NoCertificatesPresented) => "no client certificate".to_owned(),
        Some(rustls::Error::InvalidCertificate(c)) => format!("invalid certificate: {c:?}"),
        _ => {
            info!(%peer, error = %e, "station listener: TLS handshake failed (not TLS, or no common parameters)");
            return;
        }
    };
    if !ctx.throttle.allow(format!("{}|{reason}", peer.ip())) {
        debug!(%peer, %reason, "station refused (again)");
        return;
    }
    warn!(%peer, %reason, "station refused");
    ctx.audit.record(
        "unknown",
        "station.refused",
        "",
        serde_json::json!({"reason": reason, "peer": peer.to_string()}),
    );
}

async fn handle(ctx: &Ctx, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, ctx.acceptor.accept(tcp)).await {
        Err(_) => {
            debug!(%peer, "station TLS handshake timed out");
            return;
        }
        Ok(Err(e)) => {
            refused(ctx, peer, &e);
            return;
        }
        Ok(Ok(s)) => s,
    };
    let Some(fingerprint) = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(pki::fingerprint)
    else {
        return;
    };
    let Some(id) = ctx
        .registry
        .current()
        .active_station(&fingerprint)
        .map(str::to_owned)
    else {
        // Revoked between the certificate check and here (the verifier lets only active ones through).
        if ctx.throttle.allow(fingerprint.clone()) {
            warn!(%peer, %fingerprint, "station refused: certificate no longer active");
            ctx.audit.record(
                "unknown",
                "station.refused",
                "",
                serde_json::json!({"reason": "certificate no longer active", "fingerprint": fingerprint, "peer": peer.to_string()}),
            );
        }
        return;
    };
    let end = session(ctx, tls, peer, &id, &fingerprint).await;
    match end {
        End::Closed(why) => debug!(station = %id, %peer, why, "station session ended"),
        End::Io(e) => info!(station = %id, %peer, error = %e, "station session ended"),
        End::Protocol(why) => {
            warn!(station = %id, %peer, %why, "station disconnected: protocol error")
        }
        End::Denied(what) => {
            warn!(station = %id, %peer, %what, "station disconnected: not allowed")
        }
        End::Revoked => warn!(station = %id, %peer, "station disconnected: certificate revoked"),
    }
}

/// Why a station's session ended.
#[derive(Debug)]
enum End {
    Closed(&'static str),
    Io(std::io::Error),
    Protocol(String),
    Denied(String),
    Revoked,
}

impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads one packet (`None` at a clean end of stream). Cancel-safe: bytes read stay in `buf`.
async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Packet>, End> {
    loop {
        match Packet::read(buf, max) {
            Ok(p) => return Ok(Some(p)),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(n)) => buf.reserve(n.max(4096)),
            Err(e) => return Err(End::Protocol(format!("bad packet: {e}"))),
        }
        if r.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(End::Protocol("connection closed inside a packet".into()))
            };
        }
    }
}

async fn write_packet<W: AsyncWrite + Unpin>(w: &mut W, p: &Packet, max: usize) -> Result<(), End> {
    let mut out = BytesMut::with_capacity(p.size());
    p.write(&mut out, max)
        .map_err(|e| End::Protocol(format!("cannot encode packet: {e}")))?;
    w.write_all(&out).await?;
    Ok(())
}

/// A SUBACK for a subscription of which some filters were refused: the broker's codes for the filters it saw,
/// failure (0x80) for the others, in the station's order.
fn merge_suback(ack: SubAck, allowed: &[bool]) -> SubAck {
    let mut codes = ack.return_codes.into_iter();
    let merged = allowed
        .iter()
        .map(|a| {
            if *a {
                codes.next().unwrap_or(SubscribeReasonCode::Failure)
            } else {
                SubscribeReasonCode::Failure
            }
        })
        .collect();
    SubAck::new(ack.pkid, merged)
}

fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    stream: S,
    peer: SocketAddr,
    id: &str,
    fingerprint: &str,
) -> End {
    match relay(ctx, stream, peer, id, fingerprint).await {
        Ok(end) | Err(end) => end,
    }
}

async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    stream: S,
    peer: SocketAddr,
    id: &str,
    fingerprint: &str,
) -> Result<End, End> {
    let max = ctx.max_packet;
    let actor = format!("station:{id}");
    let (mut sr, mut sw) = tokio::io::split(stream);
    let mut sbuf = BytesMut::with_capacity(4096);
    let first = tokio::time::timeout(CONNECT_TIMEOUT, read_packet(&mut sr, &mut sbuf, max))
        .await
        .map_err(|_| End::Protocol("no CONNECT in time".into()))??;
    let mut connect = match first {
        None => return Ok(End::Closed("closed before CONNECT")),
        Some(Packet::Connect(c)) => c,
        Some(other) => {
            return Err(End::Protocol(format!(
                "first packet is {} instead of CONNECT",
                packet_name(&other)
            )));
        }
    };
    let refuse = |code| Packet::ConnAck(ConnAck::new(code, false));
    if connect.protocol != Protocol::V4 {
        write_packet(
            &mut sw,
            &refuse(ConnectReturnCode::RefusedProtocolVersion),
            max,
        )
        .await?;
        return Err(End::Protocol("only MQTT 3.1.1 is supported".into()));
    }
    if let Some(will) = &connect.last_will
        && will.topic != station_status_topic(id)
    {
        ctx.audit.record(
            actor.clone(),
            "station.denied",
            will.topic.clone(),
            serde_json::json!({"what": "last will", "peer": peer.to_string()}),
        );
        write_packet(&mut sw, &refuse(ConnectReturnCode::NotAuthorized), max).await?;
        return Err(End::Denied(format!("last will on {}", will.topic)));
    }
    let client_id = connect.client_id.clone();
    connect.client_id = session_client_id(id, &connect.client_id);
    connect.login = ctx.login.as_ref().map(|l| Login {
        username: l.username.clone(),
        password: l.password.clone(),
    });
    let broker = match TcpStream::connect(ctx.broker).await {
        Ok(b) => b,
        Err(e) => {
            write_packet(&mut sw, &refuse(ConnectReturnCode::ServiceUnavailable), max).await?;
            return Err(End::Io(e));
        }
    };
    let _ = broker.set_nodelay(true);
    let (mut br, mut bw) = broker.into_split();
    write_packet(&mut bw, &Packet::Connect(connect), max).await?;
    info!(station = %id, %peer, client_id = %client_id, "station connected");
    ctx.audit.record(
        actor.clone(),
        "station.connected",
        client_id,
        serde_json::json!({"peer": peer.to_string()}),
    );

    let mut bbuf = BytesMut::with_capacity(4096);
    let mut pending: HashMap<u16, Vec<bool>> = HashMap::new();
    let mut dropped: HashSet<u16> = HashSet::new();
    let mut revocations = ctx.registry.subscribe();
    let mut watching = true;
    loop {
        tokio::select! {
            p = read_packet(&mut sr, &mut sbuf, max) => {
                let Some(p) = p? else {
                    return Ok(End::Closed("station closed the connection"));
                };
                match p {
                    Packet::Publish(publish) => {
                        if may_publish(id, &publish.topic) {
                            write_packet(&mut bw, &Packet::Publish(publish), max).await?;
                            continue;
                        }
                        // Acknowledged and dropped, as mosquitto does: a station that keeps re-sending it
                        // (rumqttc and most clients re-send unacknowledged publishes on every reconnect) is not
                        // thrown into a disconnect loop, and nothing reaches the broker.
                        if ctx.throttle.allow(format!("{id}|publish|{}", publish.topic)) {
                            warn!(station = %id, topic = %publish.topic, "station publish refused and dropped");
                            ctx.audit.record(
                                actor.clone(),
                                "station.denied",
                                publish.topic.clone(),
                                serde_json::json!({"what": "publish", "peer": peer.to_string()}),
                            );
                        }
                        let ack = match publish.qos {
                            QoS::AtMostOnce => None,
                            QoS::AtLeastOnce => Some(Packet::PubAck(PubAck::new(publish.pkid))),
                            QoS::ExactlyOnce => {
                                dropped.insert(publish.pkid);
                                Some(Packet::PubRec(PubRec::new(publish.pkid)))
                            }
                        };
                        if let Some(ack) = ack {
                            write_packet(&mut sw, &ack, max).await?;
                        }
                    }
                    Packet::PubRel(rel) if dropped.remove(&rel.pkid) => {
                        write_packet(&mut sw, &Packet::PubComp(PubComp::new(rel.pkid)), max).await?;
                    }
                    Packet::Subscribe(mut sub) => {
                        let allowed: Vec<bool> =
                            sub.filters.iter().map(|f| may_subscribe(id, &f.path)).collect();
                        for (f, _) in sub.filters.iter().zip(&allowed).filter(|(_, a)| !**a) {
                            if !ctx.throttle.allow(format!("{id}|subscribe|{}", f.path)) {
                                continue;
                            }
                            warn!(station = %id, filter = %f.path, "station subscription refused");
                            ctx.audit.record(
                                actor.clone(),
                                "station.denied",
                                f.path.clone(),
                                serde_json::json!({"what": "subscribe", "peer": peer.to_string()}),
                            );
                        }
                        if allowed.iter().all(|a| *a) {
                            write_packet(&mut bw, &Packet::Subscribe(sub), max).await?;
                        } else if !allowed.iter().any(|a| *a) {
                            let ack = SubAck::new(sub.pkid, vec![SubscribeReasonCode::Failure; allowed.len()]);
                            write_packet(&mut sw, &Packet::SubAck(ack), max).await?;
                        } else {
                            sub.filters = sub
                                .filters
                                .into_iter()
                                .zip(&allowed)
                                .filter_map(|(f, a)| a.then_some(f))
                                .collect();
                            pending.insert(sub.pkid, allowed);
                            write_packet(&mut bw, &Packet::Subscribe(sub), max).await?;
                        }
                    }
                    Packet::Disconnect => {
                        write_packet(&mut bw, &Packet::Disconnect, max).await?;
                        return Ok(End::Closed("station sent DISCONNECT"));
                    }
                    p @ (Packet::Connect(_)
                    | Packet::ConnAck(_)
                    | Packet::SubAck(_)
                    | Packet::UnsubAck(_)
                    | Packet::PingResp) => {
                        return Err(End::Protocol(format!("station sent {}", packet_name(&p))));
                    }
                    p => write_packet(&mut bw, &p, max).await?,
                }
            }
            p = read_packet(&mut br, &mut bbuf, max) => {
                let p = match p? {
                    None => return Ok(End::Closed("broker closed the connection")),
                    Some(Packet::SubAck(ack)) => match pending.remove(&ack.pkid) {
                        Some(allowed) => Packet::SubAck(merge_suback(ack, &allowed)),
                        None => Packet::SubAck(ack),
                    },
                    Some(p) => p,
                };
                write_packet(&mut sw, &p, max).await?;
            }
            changed = revocations.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                } else if ctx.registry.current().active_station(fingerprint) != Some(id) {
                    ctx.audit.record(
                        actor.clone(),
                        "station.disconnected",
                        "",
                        serde_json::json!({"reason": "certificate revoked", "peer": peer.to_string()}),
                    );
                    return Err(End::Revoked);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_refusal_is_reported_once_a_minute() {
        let t = Throttle::default();
        assert!(t.allow("fp-1".into()));
        assert!(!t.allow("fp-1".into()));
        assert!(t.allow("fp-2".into()));
        // An old report no longer holds the next one back.
        if let Ok(mut seen) = t.0.lock() {
            seen.insert(
                "fp-1".into(),
                std::time::Instant::now() - REFUSAL_QUIET - Duration::from_secs(1),
            );
        }
        assert!(t.allow("fp-1".into()));
    }

    #[test]
    fn refused_filters_get_failure_codes_in_the_stations_order() {
        let ack = SubAck::new(
            7,
            vec![SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce)],
        );
        let merged = merge_suback(ack, &[false, true, false]);
        assert_eq!(merged.pkid, 7);
        assert_eq!(
            merged.return_codes,
            vec![
                SubscribeReasonCode::Failure,
                SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce),
                SubscribeReasonCode::Failure
            ]
        );
    }

    proptest::proptest! {
        /// Whatever bytes a station sends, the reader returns packets or an error, never panics, and never
        /// accepts a packet above the limit.
        #[test]
        fn arbitrary_bytes_from_a_station_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut reader: &[u8] = &bytes;
                let mut buf = BytesMut::new();
                for _ in 0..64 {
                    match read_packet(&mut reader, &mut buf, 256).await {
                        Ok(Some(p)) => proptest::prop_assert!(p.size() <= 256 + 5),
                        Ok(None) | Err(_) => break,
                    }
                }
                Ok(())
            })?;
        }

        /// No topic or filter naming another station, and no wildcard, is ever allowed.
        #[test]
        fn another_stations_topics_are_never_allowed(
            a in "[a-z0-9][a-z0-9-]{0,12}",
            b in "[a-z0-9][a-z0-9-]{0,12}",
            tail in "(captures|results|status|vendor/[a-z]{1,6}|#|\\+)",
            wild in "[#+]",
        ) {
            proptest::prop_assume!(a != b);
            let other = format!("hotspot/v1/stations/{b}/{tail}");
            proptest::prop_assert!(!may_publish(&a, &other), "{a} publishes {other}");
            proptest::prop_assert!(!may_subscribe(&a, &other), "{a} subscribes {other}");
            let wildcard = format!("hotspot/v1/stations/{a}/{wild}");
            proptest::prop_assert!(!may_subscribe(&a, &wildcard), "{a} subscribes {wildcard}");
            proptest::prop_assert!(!may_publish(&a, &wildcard), "{a} publishes {wildcard}");
        }
    }
}
