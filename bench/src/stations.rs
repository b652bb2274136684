//! Simulated stations (one rumqttc connection each, in this process), the echo client of the bus-floor baseline,
//! and the tracker that times every capture from just before its PUBLISH to the arrival of its answer.
//!
//! Stations speak station protocol v1 to the gateway (`hotspot/v1/stations/{id}/captures`, results on
//! `.../results`). For the bus floor they publish the same payloads on `bench/v1/stations/{id}/captures`, which
//! the gateway does not subscribe to; the echo client answers each on `bench/v1/stations/{id}/results` at once,
//! with a payload the size of a gateway result. Same broker, same connections, same payloads: the difference is
//! the gateway.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hotspot_device_protocols::station::{
    CaptureResult, Decision, Source, StationPresence, captures_topic, results_topic,
    station_status_topic,
};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, SubscribeFilter};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

/// Topic prefix of the bus-floor baseline.
const ECHO_PREFIX: &str = "bench/v1/stations";

fn echo_captures_topic(station: &str) -> String {
    format!("{ECHO_PREFIX}/{station}/captures")
}

fn echo_results_topic(station: &str) -> String {
    format!("{ECHO_PREFIX}/{station}/results")
}

/// Where stations connect.
#[derive(Debug, Clone)]
pub struct BrokerAccess {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TCP_NODELAY on the benchmark's own connections (stations, echo client); rumqttc's default is off, as in
    /// the gateway's own client and `SimStation`.
    pub nodelay: bool,
}

fn client(
    client_id: &str,
    broker: &BrokerAccess,
    cap: usize,
    will: Option<LastWill>,
) -> (AsyncClient, rumqttc::EventLoop) {
    let mut o = options(client_id, broker);
    if let Some(w) = will {
        o.set_last_will(w);
    }
    let (client, mut eventloop) = AsyncClient::new(o, cap);
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(broker.nodelay);
    eventloop.set_network_options(net);
    (client, eventloop)
}

/// Who answers the captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The gateway (station protocol topics).
    Gateway,
    /// The echo client (bus floor; with delays set, the ideal gateway).
    Echo,
}

/// A capture sent.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    /// The capture's id.
    pub id: Uuid,
    /// Just before the PUBLISH was handed to the station's MQTT client.
    pub at: Instant,
    /// Index in its pool (to pair it with the matcher-alone measurement of the same capture).
    pub pool_index: usize,
    /// Payload bytes.
    pub bytes: usize,
}

/// The first answer to a capture.
#[derive(Debug, Clone)]
pub struct Answer {
    /// When it arrived at the station.
    pub at: Instant,
    /// Decision (gateway answers only).
    pub decision: Option<Decision>,
    /// Best candidate's subject id.
    pub top: Option<String>,
    /// The gateway's own `latency_ms` (receipt to result).
    pub gateway_ms: Option<u64>,
    /// Payload bytes.
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    sent: HashMap<Uuid, Sent>,
    answers: HashMap<Uuid, Answer>,
    central: HashSet<Uuid>,
    repeats: usize,
    stray: usize,
}

/// What the stations sent and got, for the current measurement.
#[derive(Debug, Default)]
pub struct Tracker {
    inner: Mutex<Inner>,
    progress: Notify,
}

/// A finished measurement: every capture sent, with its answer if it came.
#[derive(Debug, Default)]
pub struct Record {
    /// `(sent, answer)` per capture.
    pub captures: Vec<(Sent, Option<Answer>)>,
    /// Central answers received for these captures.
    pub central: usize,
    /// Answers received twice.
    pub repeats: usize,
}

impl Tracker {
    /// Forgets everything (start of a measurement).
    pub fn begin(&self) {
        if let Ok(mut i) = self.inner.lock() {
            *i = Inner::default();
        }
    }

    fn sent(&self, id: Uuid, s: Sent) {
        if let Ok(mut i) = self.inner.lock() {
            i.sent.insert(id, s);
        }
    }

    /// Files a message received by a station on one of its result topics.
    fn received(&self, echo: bool, payload: &[u8], at: Instant) {
        let parsed = if echo {
            serde_json::from_slice::<EchoResult>(payload)
                .ok()
                .map(|r| (r.capture_id, true, None))
        } else {
            serde_json::from_slice::<CaptureResult>(payload)
                .ok()
                .and_then(|r| Some((r.capture_id?, r.source == Source::Local, Some(r))))
        };
        let Ok(mut i) = self.inner.lock() else {
            return;
        };
        let Some((id, first_answer, result)) = parsed else {
            i.stray += 1;
            return;
        };
        if !i.sent.contains_key(&id) {
            i.stray += 1;
            return;
        }
        if !first_answer {
            i.central.insert(id);
        } else if let std::collections::hash_map::Entry::Vacant(slot) = i.answers.entry(id) {
            slot.insert(Answer {
                at,
                decision: result.as_ref().map(|r| r.decision),
                top: result
                    .as_ref()
                    .and_then(|r| r.candidates.first().map(|c| c.subject_id.clone())),
                gateway_ms: result.as_ref().map(|r| r.latency_ms),
                bytes: payload.len(),
            });
        } else {
            i.repeats += 1;
        }
        drop(i);
        self.progress.notify_waiters();
    }

    /// `(sent, answered, central answers)` so far.
    pub fn counts(&self) -> (usize, usize, usize) {
        self.inner
            .lock()
            .map(|i| (i.sent.len(), i.answers.len(), i.central.len()))
            .unwrap_or_default()
    }

    /// Waits until every capture sent has its first answer (or, with `central`, its central answer too), or until
    /// nothing new arrived for `idle`. Returns whether everything arrived.
    pub async fn wait_all(&self, central: bool, idle: Duration) -> bool {
        let mut last = self.counts();
        let mut since = Instant::now();
        loop {
            let (sent, answered, central_n) = self.counts();
            if answered >= sent && (!central || central_n >= sent) {
                return true;
            }
            if (sent, answered, central_n) != last {
                last = (sent, answered, central_n);
                since = Instant::now();
            } else if since.elapsed() >= idle {
                return false;
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(200), self.progress.notified()).await;
        }
    }

    /// The measurement so far.
    pub fn record(&self) -> Record {
        let Ok(i) = self.inner.lock() else {
            return Record::default();
        };
        let mut captures: Vec<(Sent, Option<Answer>)> = i
            .sent
            .iter()
            .map(|(id, s)| (*s, i.answers.get(id).cloned()))
            .collect();
        captures.sort_by_key(|(s, _)| s.at);
        Record {
            captures,
            central: i.central.len(),
            repeats: i.repeats,
        }
    }
}

#[derive(serde::Deserialize)]
struct EchoResult {
    capture_id: Uuid,
}

/// A connected station.
#[derive(Debug)]
struct Station {
    id: String,
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

/// N stations, one MQTT connection each.
#[derive(Debug)]
pub struct Fleet {
    stations: Vec<Station>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for s in &self.stations {
            s.task.abort();
        }
    }
}

fn options(client_id: &str, broker: &BrokerAccess) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(32 * 1024 * 1024, 32 * 1024 * 1024);
    o
}

impl Fleet {
    /// Connects `n` stations (`bench-0001` ...), each subscribed to its gateway and echo result topics and with
    /// its retained presence set, as a station does; waits until all are subscribed.
    pub async fn connect(
        broker: &BrokerAccess,
        n: usize,
        tracker: Arc<Tracker>,
    ) -> anyhow::Result<Self> {
        let ready = Arc::new(AtomicUsize::new(0));
        let ready_notify = Arc::new(Notify::new());
        let mut stations = Vec::with_capacity(n);
        for k in 0..n {
            let id = format!("bench-{:04}", k + 1);
            let will = LastWill::new(
                station_status_topic(&id),
                StationPresence::Offline.as_bytes().to_vec(),
                QoS::AtLeastOnce,
                true,
            );
            let (client, mut eventloop) = client(&format!("station-{id}"), broker, 256, Some(will));
            let (c, sid, tr, rd, rn) = (
                client.clone(),
                id.clone(),
                tracker.clone(),
                ready.clone(),
                ready_notify.clone(),
            );
            let results = results_topic(&id);
            let echo_results = echo_results_topic(&id);
            let task = tokio::spawn(async move {
                let mut subscribed = false;
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = c.try_subscribe_many([
                                SubscribeFilter::new(results.clone(), QoS::AtLeastOnce),
                                SubscribeFilter::new(echo_results.clone(), QoS::AtLeastOnce),
                            ]);
                            let _ = c.try_publish(
                                station_status_topic(&sid),
                                QoS::AtLeastOnce,
                                true,
                                StationPresence::Online.as_bytes().to_vec(),
                            );
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            // Counted once, not again after a reconnection.
                            if !subscribed {
                                subscribed = true;
                                rd.fetch_add(1, Ordering::SeqCst);
                                rn.notify_waiters();
                            }
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let at = Instant::now();
                            tr.received(p.topic.starts_with(ECHO_PREFIX), &p.payload, at);
                        }
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(station = %sid, error = %e, "station connection error; reconnecting");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            });
            stations.push(Station { id, client, task });
        }
        let fleet = Self { stations };
        let deadline = Instant::now() + Duration::from_secs(30 + n as u64 / 10);
        while ready.load(Ordering::SeqCst) < n {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} stations got their subscriptions acknowledged",
                    ready.load(Ordering::SeqCst)
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), ready_notify.notified()).await;
        }
        Ok(fleet)
    }

    /// Stations.
    pub fn len(&self) -> usize {
        self.stations.len()
    }

    /// Disconnects every station cleanly.
    pub async fn disconnect(self) {
        for s in &self.stations {
            let _ = s.client.disconnect().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// Station `k` (modulo the fleet size) publishes `payload` (capture id `id`) to `target`.
    pub async fn send(
        &self,
        tracker: &Tracker,
        k: usize,
        target: Target,
        id: Uuid,
        pool_index: usize,
        payload: Vec<u8>,
    ) -> anyhow::Result<()> {
        let s = &self.stations[k % self.stations.len()];
        let topic = match target {
            Target::Gateway => captures_topic(&s.id),
            Target::Echo => echo_captures_topic(&s.id),
        };
        let bytes = payload.len();
        tracker.sent(
            id,
            Sent {
                id,
                at: Instant::now(),
                pool_index,
                bytes,
            },
        );
        s.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .with_context(|| format!("station {} cannot publish", s.id))
    }
}

/// The echo client: answers captures on the bench topics one at a time, in arrival order. A capture with no
/// delay set is answered at once (the bus floor); one with a delay `d` is answered `d` after the echo is free to
/// take it (the previous answer is out) and it has arrived: a server with zero overhead whose service time is the
/// matcher's, through the same broker (the ideal gateway).
#[derive(Debug)]
pub struct Echo {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    delays: Arc<Mutex<HashMap<Uuid, Duration>>>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The capture id in a station-protocol JSON payload, found without parsing the whole (large) payload.
pub fn capture_id_of(payload: &[u8]) -> Option<Uuid> {
    const KEY: &[u8] = b"\"capture_id\":\"";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let text = std::str::from_utf8(payload.get(at..at + 36)?).ok()?;
    Uuid::parse_str(text).ok()
}

/// An echo answer for `id`, padded to `size` bytes (at least what the id takes).
pub fn echo_payload(id: Uuid, size: usize) -> Vec<u8> {
    let head = format!("{{\"capture_id\":\"{id}\",\"pad\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    let mut out = Vec::with_capacity(head.len() + pad + 2);
    out.extend_from_slice(head.as_bytes());
    out.resize(head.len() + pad, b'x');
    out.extend_from_slice(b"\"}");
    out
}

impl Echo {
    /// Answer capture `id` after `delay` (set before sending it).
    pub fn set_delay(&self, id: Uuid, delay: Duration) {
        if let Ok(mut m) = self.delays.lock() {
            m.insert(id, delay);
        }
    }

    /// Connects the echo client; answers are `result_bytes` long (read at each answer, so the caller can match
    /// each pattern's result size). Waits for its subscription.
    pub async fn start(
        broker: &BrokerAccess,
        result_bytes: Arc<AtomicUsize>,
    ) -> anyhow::Result<Self> {
        let (client, mut eventloop) = client("bench-echo", broker, 1024, None);
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, Uuid, Instant)>();
        let delays: Arc<Mutex<HashMap<Uuid, Duration>>> = Arc::default();
        let (sub_tx, mut sub_rx) = mpsc::channel::<()>(1);
        let c = client.clone();
        let poll = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ =
                            c.try_subscribe(format!("{ECHO_PREFIX}/+/captures"), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.try_send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let station = p
                            .topic
                            .strip_prefix(&format!("{ECHO_PREFIX}/"))
                            .and_then(|t| t.strip_suffix("/captures"))
                            .map(str::to_owned);
                        if let (Some(station), Some(id)) = (station, capture_id_of(&p.payload)) {
                            let _ = tx.send((station, id, Instant::now()));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "echo client connection error; reconnecting");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        // Publishing from its own task keeps the event loop polling while the request channel is full.
        let d = delays.clone();
        let answer = tokio::spawn(async move {
            let mut free_at = Instant::now();
            while let Some((station, id, arrived)) = rx.recv().await {
                let delay = d
                    .lock()
                    .ok()
                    .and_then(|mut m| m.remove(&id))
                    .unwrap_or_default();
                if !delay.is_zero() {
                    free_at = arrived.max(free_at) + delay;
                    tokio::time::sleep_until(free_at.into()).await;
                }
                let _ = client
                    .publish(
                        echo_results_topic(&station),
                        QoS::AtLeastOnce,
                        false,
                        echo_payload(id, result_bytes.load(Ordering::Relaxed)),
                    )
                    .await;
            }
        });
        let echo = Self {
            tasks: vec![poll, answer],
            delays,
        };
        match tokio::time::timeout(Duration::from_secs(20), sub_rx.recv()).await {
            Ok(Some(())) => Ok(echo),
            _ => bail!("the echo client did not get its subscription acknowledged"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn echo_payloads_carry_the_id_at_the_requested_size() {
        let id = Uuid::new_v4();
        let p = echo_payload(id, 420);
        assert_eq!(p.len(), 420);
        let back: EchoResult = serde_json::from_slice(&p).unwrap();
        assert_eq!(back.capture_id, id);
        // Too small a size still gives a valid answer.
        let small = echo_payload(id, 10);
        assert_eq!(
            serde_json::from_slice::<EchoResult>(&small)
                .unwrap()
                .capture_id,
            id
        );
        assert_eq!(capture_id_of(&p), Some(id));
        assert_eq!(capture_id_of(b"{\"capture_id\":\"nope\"}"), None);
    }

    #[test]
    fn tracker_keeps_first_local_answers_and_counts_central_ones() {
        let t = Tracker::default();
        let id = Uuid::new_v4();
        t.sent(
            id,
            Sent {
                id,
                at: Instant::now(),
                pool_index: 3,
                bytes: 100,
            },
        );
        let local = serde_json::json!({"capture_id": id, "source": "local", "decision": "hit",
            "candidates": [{"subject_id": "S0000050", "score": 80.0}], "reason": null,
            "watchlist_version": 1, "latency_ms": 12});
        let central = serde_json::json!({"capture_id": id, "source": "central", "decision": "no_hit",
            "candidates": [], "reason": null, "watchlist_version": 1, "latency_ms": 40});
        let bytes = serde_json::to_vec(&local).unwrap();
        t.received(false, &bytes, Instant::now());
        t.received(false, &bytes, Instant::now());
        t.received(
            false,
            &serde_json::to_vec(&central).unwrap(),
            Instant::now(),
        );
        // Not ours, and not JSON: counted as stray, not as answers.
        t.received(false, b"garbage", Instant::now());
        let r = t.record();
        assert_eq!(r.captures.len(), 1);
        let a = r.captures[0].1.as_ref().unwrap();
        assert_eq!(a.decision, Some(Decision::Hit));
        assert_eq!(a.top.as_deref(), Some("S0000050"));
        assert_eq!(a.gateway_ms, Some(12));
        assert_eq!((r.central, r.repeats), (1, 1));
        assert_eq!(t.counts(), (1, 1, 1));
        t.begin();
        assert_eq!(t.counts(), (0, 0, 0));
    }
}
