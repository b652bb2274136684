//! The gateway's MQTT session with the broker (embedded rumqttd or external mosquitto).
//!
//! A persistent session (`clean_session = false`, a fixed client id per site) with manual acknowledgements: the
//! broker keeps every capture the gateway has not acknowledged and redelivers it after a reconnect or a restart,
//! and the ingest path acknowledges only after the capture is flushed to disk.
//!
//! rumqttc neither backs off nor re-subscribes by itself: [`run_event_loop`] sleeps with exponential backoff and
//! jitter after a connection error and subscribes again on every CONNACK.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hotspot_device_protocols::station::{
    CAPTURES_FILTER, CaptureResult, GATEWAY_STATUS_TOPIC, STATION_STATUS_FILTER, StationPresence,
    StationTopic, VENDOR_CAPTURES_FILTER, parse_station_topic, results_topic,
};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::shared::Shared;

/// A capture PUBLISH handed to ingest, with the station id from its topic.
#[derive(Debug)]
pub struct Inbound {
    /// Station id from the topic.
    pub station_id: String,
    /// For a vendor payload, the decoder plugin named in the topic.
    pub decoder: Option<String>,
    /// The PUBLISH, to be acknowledged once stored.
    pub publish: Publish,
}

/// Connection parameters.
#[derive(Debug, Clone)]
pub struct MqttParams {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id (fixed per site, so the broker keeps the session).
    pub client_id: String,
    /// Largest packet, bytes.
    pub max_packet_bytes: usize,
    /// Backoff bounds, ms.
    pub retry_initial_ms: u64,
    /// Backoff bound, ms.
    pub retry_max_ms: u64,
    /// Retained payload set as last will on the gateway status topic.
    pub last_will: Vec<u8>,
    /// TLS (`mqtts://` to an external broker): the station CA and the gateway's own certificate.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// User name and password (the embedded broker's internal credential).
    pub login: Option<BrokerLogin>,
}

/// A broker user name and password; the password never appears in `Debug` output.
#[derive(Clone)]
pub struct BrokerLogin {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for BrokerLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl BrokerLogin {
    /// The embedded broker's internal credential: a fixed user and 32 random bytes (base64), new at each start.
    pub fn random() -> Result<Self, String> {
        use base64::Engine as _;
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| "no system randomness".to_owned())?;
        Ok(Self {
            username: "hotspot-gateway-internal".into(),
            password: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }
}

/// Makes the client and its event loop.
pub fn connect(p: &MqttParams) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(p.client_id.clone(), p.host.clone(), p.port);
    o.set_keep_alive(Duration::from_secs(15))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(100)
        .set_max_packet_size(p.max_packet_bytes + 4096, p.max_packet_bytes + 4096)
        .set_last_will(LastWill::new(
            GATEWAY_STATUS_TOPIC,
            p.last_will.clone(),
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(tls) = &p.tls {
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    if let Some(login) = &p.login {
        o.set_credentials(login.username.clone(), login.password.clone());
    }
    let (client, mut eventloop) = AsyncClient::new(o, 256);
    // Results are small and wanted at once: with Nagle's algorithm on (rumqttc's default) a result published
    // right after an acknowledgement waits for the broker's delayed ACK, about 40 ms (measured by hotspot-bench).
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    (client, eventloop)
}

/// Polls the event loop forever: hands captures to `ingest`, tracks station presence, re-subscribes on every
/// connect, backs off on errors.
pub async fn run_event_loop(
    client: AsyncClient,
    mut eventloop: EventLoop,
    params: MqttParams,
    shared: Arc<Shared>,
    ingest: mpsc::Sender<Inbound>,
) {
    let mut backoff = Backoff::new(params.retry_initial_ms, params.retry_max_ms);
    loop {
        let polled = eventloop.poll().await;
        shared
            .mqtt_last_poll_ms
            .store(crate::pipeline::now_ms(), Ordering::Relaxed);
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                info!(
                    session_present = ack.session_present,
                    "connected to MQTT broker"
                );
                backoff.reset();
                for filter in [
                    CAPTURES_FILTER,
                    VENDOR_CAPTURES_FILTER,
                    STATION_STATUS_FILTER,
                ] {
                    if let Err(e) = client.try_subscribe(filter, QoS::AtLeastOnce) {
                        warn!(error = %e, filter, "subscribe request failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                shared.mqtt_connected.store(true, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => dispatch(&client, &shared, &ingest, p).await,
            Ok(_) => {}
            Err(e) => {
                shared.mqtt_connected.store(false, Ordering::Relaxed);
                shared.mqtt_epoch.fetch_add(1, Ordering::Relaxed);
                let delay = backoff.next_delay();
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "MQTT connection lost");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn dispatch(
    client: &AsyncClient,
    shared: &Shared,
    ingest: &mpsc::Sender<Inbound>,
    p: Publish,
) {
    match parse_station_topic(&p.topic) {
        Ok(StationTopic::Captures(id)) | Ok(StationTopic::Vendor(id, _)) => {
            let decoder = match parse_station_topic(&p.topic) {
                Ok(StationTopic::Vendor(_, d)) => Some(d.to_owned()),
                _ => None,
            };
            let inbound = Inbound {
                station_id: id.to_owned(),
                decoder,
                publish: p,
            };
            if ingest.send(inbound).await.is_err() {
                warn!("ingest stopped; capture left unacknowledged for redelivery");
            }
        }
        Ok(StationTopic::Status(id)) => {
            match StationPresence::parse(&p.payload) {
                Some(presence) => shared.set_station(id, presence),
                None => debug!(
                    station = id,
                    "ignoring status payload that is not online/offline"
                ),
            }
            ack(client, &p).await;
        }
        Ok(StationTopic::Results(_)) | Err(_) => {
            debug!(topic = %p.topic, "ignoring message on unexpected topic");
            ack(client, &p).await;
        }
    }
}

/// Acknowledges a PUBLISH (logs on failure: the broker will redeliver).
pub async fn ack(client: &AsyncClient, p: &Publish) {
    if let Err(e) = client.ack(p).await {
        warn!(error = %e, "MQTT ack failed; the broker will redeliver");
    }
}

/// Publishes a result to a station (QoS 1, not retained).
pub async fn publish_result(
    client: &AsyncClient,
    station_id: &str,
    result: &CaptureResult,
) -> bool {
    let Ok(payload) = serde_json::to_vec(result) else {
        return false;
    };
    match client
        .publish(results_topic(station_id), QoS::AtLeastOnce, false, payload)
        .await
    {
        Ok(()) => true,
        Err(e) => {
            warn!(error = %e, station = station_id, "cannot publish result");
            false
        }
    }
}
