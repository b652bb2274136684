//! A simulated capture station: what the demo and the end-to-end tests use to talk to the gateway exactly as a
//! real station would (MQTT, protocol v1, retained presence with a last will, TLS with its client certificate).
//! It also records everything the broker sent it ([`SimLog`]), which the access-control tests read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotspot_device_protocols::station::{
    Capture, CaptureResult, Finger, Purpose, StationPresence, captures_topic, results_topic,
    station_status_topic,
};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, LastWill, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use tokio::sync::{mpsc, watch};

/// A connected station.
#[derive(Debug)]
pub struct SimStation {
    /// Station id.
    pub id: String,
    client: AsyncClient,
    results: mpsc::UnboundedReceiver<CaptureResult>,
    subscribed: watch::Receiver<bool>,
    log: Arc<Mutex<SimLog>>,
    task: tokio::task::JoinHandle<()>,
}

/// What a simulated station received from the broker.
#[derive(Debug, Clone, Default)]
pub struct SimLog {
    /// Every PUBLISH, in order: topic and payload.
    pub received: Vec<(String, Vec<u8>)>,
    /// The return codes of every SUBACK.
    pub subacks: Vec<Vec<SubscribeReasonCode>>,
    /// Connections the broker accepted (CONNACK with success).
    pub connections: u32,
    /// The last connection error or refusal.
    pub last_error: Option<String>,
}

impl Drop for SimStation {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Errors of the simulated station.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// MQTT client error.
    #[error("MQTT: {0}")]
    Client(#[from] rumqttc::ClientError),
    /// Not subscribed in time.
    #[error("station {0} did not get its subscription acknowledged in time")]
    NotReady(String),
    /// Encoding a capture failed.
    #[error("cannot encode capture: {0}")]
    Encode(#[from] serde_json::Error),
}

impl SimStation {
    /// Connects station `id` to the broker at `host:port` without TLS (a broker with anonymous stations);
    /// reconnects by itself.
    pub fn connect(host: &str, port: u16, id: &str) -> Self {
        Self::connect_with(host, port, id, None)
    }

    /// Connects station `id` to the broker at `host:port`, over TLS when `tls` is given (its client certificate:
    /// `crate::stations::station_client_config`); `host` must be a name in the broker's certificate. Reconnects
    /// by itself.
    pub fn connect_with(
        host: &str,
        port: u16,
        id: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        let mut o = MqttOptions::new(format!("station-{id}"), host, port);
        if let Some(tls) = tls {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(tls),
            ));
        }
        // A persistent session: results published while the station is briefly offline wait at the broker.
        o.set_keep_alive(Duration::from_secs(10))
            .set_clean_session(false)
            .set_max_packet_size(32 * 1024 * 1024, 32 * 1024 * 1024)
            .set_last_will(LastWill::new(
                station_status_topic(id),
                StationPresence::Offline.as_bytes().to_vec(),
                QoS::AtLeastOnce,
                true,
            ));
        let (client, mut eventloop) = AsyncClient::new(o, 64);
        let (tx, results) = mpsc::unbounded_channel();
        let (sub_tx, subscribed) = watch::channel(false);
        let log = Arc::new(Mutex::new(SimLog::default()));
        let (c, sid, record) = (client.clone(), id.to_owned(), log.clone());
        let note = move |f: &dyn Fn(&mut SimLog)| {
            if let Ok(mut l) = record.lock() {
                f(&mut l);
            }
        };
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        if ack.code != ConnectReturnCode::Success {
                            note(&|l| l.last_error = Some(format!("refused: {:?}", ack.code)));
                            continue;
                        }
                        note(&|l| l.connections += 1);
                        let _ = c.try_subscribe(results_topic(&sid), QoS::AtLeastOnce);
                        let _ = c.try_publish(
                            station_status_topic(&sid),
                            QoS::AtLeastOnce,
                            true,
                            StationPresence::Online.as_bytes().to_vec(),
                        );
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        note(&|l| l.subacks.push(ack.return_codes.clone()));
                        let _ = sub_tx.send(true);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        note(&|l| l.received.push((p.topic.clone(), p.payload.to_vec())));
                        if p.topic == results_topic(&sid)
                            && let Ok(r) = serde_json::from_slice::<CaptureResult>(&p.payload)
                        {
                            let _ = tx.send(r);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        note(&|l| l.last_error = Some(e.to_string()));
                        let _ = sub_tx.send(false);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Self {
            id: id.to_owned(),
            client,
            results,
            subscribed,
            log,
            task,
        }
    }

    /// What the broker sent this station so far.
    pub fn log(&self) -> SimLog {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Publishes `payload` on any `topic` (QoS 1): for tests of what the broker lets a station do.
    pub async fn publish_raw(&self, topic: &str, payload: Vec<u8>) -> Result<(), SimError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await?;
        Ok(())
    }

    /// Subscribes to any `filter` (QoS 1); the SUBACK lands in [`SimLog::subacks`].
    pub async fn subscribe_raw(&self, filter: &str) -> Result<(), SimError> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        Ok(())
    }

    /// Waits until the results subscription is acknowledged.
    pub async fn ready(&mut self, timeout: Duration) -> Result<(), SimError> {
        let wait = self.subscribed.wait_for(|s| *s);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(SimError::NotReady(self.id.clone())),
        }
    }

    /// Publishes a capture (QoS 1).
    pub async fn send(&self, capture: &Capture) -> Result<(), SimError> {
        self.send_raw(serde_json::to_vec(capture)?).await
    }

    /// Publishes raw bytes on the captures topic (QoS 1).
    pub async fn send_raw(&self, payload: Vec<u8>) -> Result<(), SimError> {
        self.client
            .publish(captures_topic(&self.id), QoS::AtLeastOnce, false, payload)
            .await?;
        Ok(())
    }

    /// Publishes a vendor payload for decoder plugin `decoder` (QoS 1).
    pub async fn send_vendor(&self, decoder: &str, payload: Vec<u8>) -> Result<(), SimError> {
        self.client
            .publish(
                hotspot_device_protocols::station::vendor_topic(&self.id, decoder),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await?;
        Ok(())
    }

    /// The next result, if one arrives within `timeout`.
    pub async fn next_result(&mut self, timeout: Duration) -> Option<CaptureResult> {
        tokio::time::timeout(timeout, self.results.recv())
            .await
            .ok()
            .flatten()
    }
}

/// A new capture with a fresh id, taken now.
pub fn new_capture(fingers: Vec<Finger>, purpose: Purpose) -> Capture {
    Capture {
        capture_id: uuid::Uuid::new_v4(),
        captured_at: time::OffsetDateTime::now_utc(),
        operator: "officer-1".into(),
        purpose,
        fingers,
        face: None,
        enrolment: None,
    }
}
