//! Ingest and local answer: decode -> probe -> (store + flush -> acknowledge) while (local match) -> result ->
//! outbox. The match starts as soon as the probe is ready, so the disk's sync time is not added to the officer's
//! wait; the result is recorded and published only after the capture is stored, and dropped when storing fails
//! (the station was told, and sends again).
//!
//! A screening capture with fingers and a face starts its finger search as soon as its fingers are ready, while
//! its face is analysed (about 60 ms of one core), when nothing but the face can still turn it away (no quality
//! plugins, not a re-sent capture, disk quota not reached): the face's analysis and the search share the cores
//! instead of following each other. The decision waits for the face; if the photo does not decode, the capture is
//! rejected as before and the search's result dropped.
//!
//! The local answer never waits for the uplink: it depends only on the store and the installed watchlist.
//! Matching runs on blocking threads, at most one per core at a time, so a burst cannot starve ingest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotspot_device_protocols::ansi_nist;
use hotspot_device_protocols::station::{
    Capture, CaptureRejection, CaptureResult, ContributionStats, Decision, Purpose, Source,
    decode_capture,
};
use hotspot_device_protocols::uplink::GatewayEvent;
use hotspot_matcher::face::FaceEngine;
use hotspot_matcher::probe::{
    FacePart, Probe, decide, decide_with, probe_face, probe_fingers, search_fingers,
};
use rumqttc::AsyncClient;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::audit::Audit;
use crate::mqtt::{Inbound, ack, publish_result};
use crate::shared::Shared;
use crate::store::{Inserted, Priority, Retention, Store};
use crate::watchlist::Watchlist;

/// The ingest and local-answer path.
#[derive(Debug)]
pub struct Pipeline {
    /// Durable state.
    pub store: Store,
    /// Installed watchlist.
    pub watchlist: Arc<Watchlist>,
    /// Face models (`None`: faces are not compared).
    pub faces: Option<Arc<FaceEngine>>,
    /// MQTT client (acks, results).
    pub client: AsyncClient,
    /// Counters.
    pub shared: Arc<Shared>,
    /// Woken whenever the outbox grows.
    pub outbox_notify: Arc<Notify>,
    /// Local matches in progress at once (one: each search uses every core).
    pub match_slots: Arc<Semaphore>,
    /// Retention policy.
    pub retention: Retention,
    /// Memory freed after answers is given back only while the process is larger than this, bytes (0: always;
    /// `memory.release_above_mib`, [`crate::memory::should_release`]).
    pub release_above_bytes: u64,
    /// Newly queued captures `(outbox key, id)`, for the uplink's unpaced lane (full: they wait in the outbox).
    pub fresh: mpsc::Sender<(Vec<u8>, Uuid)>,
    /// The audit log.
    pub audit: Audit,
    /// Serialises updates of the daily contribution counters.
    pub stats_lock: std::sync::Mutex<()>,
    /// WebAssembly plugins (decoders of vendor payloads).
    pub plugins: Arc<crate::plugins::Plugins>,
    /// Plugin rollbacks and alerts for central not yet reported.
    pub plugin_events: std::sync::Mutex<Vec<GatewayEvent>>,
    /// Alerts policy plugins routed to the console (newest last, at most [`CONSOLE_ALERTS`]).
    pub console_alerts: std::sync::Mutex<std::collections::VecDeque<serde_json::Value>>,
    /// Central's review counts of this gateway's contributions, per day (from its latest `Welcome`).
    pub reviewed: std::sync::Mutex<Vec<hotspot_device_protocols::uplink::ReviewedDay>>,
    /// `[plugins] enrol_min_finger_score` (0: quality plugins only warn).
    pub enrol_min_finger_score: u8,
    /// Results handed to MQTT and not yet marked published: `(capture, central, MQTT epoch, Unix ms)`.
    pub pending_marks: std::sync::Mutex<Vec<(Uuid, bool, u64, i64)>>,
}

/// An accepted capture on its way to its local answer.
struct ToMatch {
    id: Uuid,
    station: String,
    probe: Probe,
    capture: Arc<Capture>,
    /// Quality plugins' notes, appended to the answer's reason.
    notes: Vec<String>,
    received_ms: i64,
    /// How long making the probe took (templates, face); when `face` is `Some`, the fingers' part only (the
    /// whole probe's time comes with the face).
    probed: Duration,
    /// The face's side of the probe and the whole probe's time, when the finger search starts before the face is
    /// analysed; `None`: `probe` is whole. Closed without a value: the capture was rejected.
    face: Option<oneshot::Receiver<(FacePart, Duration)>>,
}

/// How long a result handed to MQTT waits before it is marked published (see [`Pipeline::confirm_published`]).
pub const PUBLISH_GRACE_MS: i64 = 3_000;

/// Console alerts kept.
pub const CONSOLE_ALERTS: usize = 50;

/// Today's date (UTC), `YYYY-MM-DD`.
fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn candidate_ids(r: &CaptureResult) -> Vec<&str> {
    r.candidates.iter().map(|c| c.subject_id.as_str()).collect()
}

/// Wall-clock Unix milliseconds.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `d` in whole milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn elapsed_ms(since_ms: i64) -> u64 {
    u64::try_from(now_ms().saturating_sub(since_ms)).unwrap_or(0)
}

/// Decodes a captures-topic payload: JSON (station protocol v1) or a raw ANSI/NIST-ITL transaction.
fn decode(station: &str, payload: &[u8]) -> Result<Capture, CaptureRejection> {
    if !ansi_nist::is_transaction(payload) {
        return decode_capture(payload);
    }
    let (capture, warnings) =
        ansi_nist::capture_from_transaction(station, payload, time::OffsetDateTime::now_utc())?;
    for w in warnings {
        warn!(capture_id = %capture.capture_id, station, warning = %w, "ANSI/NIST-ITL transaction");
    }
    Ok(capture)
}

impl Pipeline {
    /// Runs the decoder plugin named in a vendor topic (on a blocking thread: it is sandboxed, not cheap).
    async fn decode_vendor(
        &self,
        name: &str,
        inbound: &Inbound,
    ) -> Result<Capture, CaptureRejection> {
        let plugins = self.plugins.clone();
        let (name, payload, station) = (
            name.to_owned(),
            inbound.publish.payload.to_vec(),
            inbound.station_id.clone(),
        );
        let now = time::OffsetDateTime::now_utc();
        let joined = tokio::task::spawn_blocking(move || {
            let (result, rolled_back) = plugins.decode(&name, &payload, &station, now);
            (name, result, rolled_back)
        })
        .await;
        let (name, result, rolled_back) = match joined {
            Ok(r) => r,
            Err(e) => {
                return Err(CaptureRejection {
                    capture_id: None,
                    reason: format!("decoder task failed: {e}"),
                });
            }
        };
        self.rolled_back(rolled_back);
        result.map_err(|reason| CaptureRejection {
            capture_id: None,
            reason: format!("vendor payload for decoder {name:?}: {reason}"),
        })
    }

    /// Audits rollbacks and queues them for central.
    fn rolled_back(&self, rolled: impl IntoIterator<Item = crate::plugins::RolledBack>) {
        for r in rolled {
            warn!(plugin = %r.name, from = r.from_version, to = r.to_version, reason = %r.reason,
                  "plugin rolled back");
            self.audit.record(
                "system",
                "plugin.rolled_back",
                r.name.clone(),
                serde_json::json!({"from_version": r.from_version, "to_version": r.to_version, "reason": r.reason}),
            );
            self.queue_event(GatewayEvent::PluginRolledBack {
                name: r.name,
                from_version: r.from_version,
                to_version: r.to_version,
                reason: r.reason,
            });
        }
    }

    fn queue_event(&self, e: GatewayEvent) {
        if let Ok(mut pending) = self.plugin_events.lock() {
            pending.push(e);
        }
    }

    fn plugin_failed(&self, id: Uuid, plugin: &str, error: &str) {
        warn!(capture_id = %id, plugin, error, "plugin call failed; the built-in answer stands");
        self.audit.record(
            "system",
            "plugin.failed",
            id.to_string(),
            serde_json::json!({ "plugin": plugin, "error": error }),
        );
    }

    /// Quality plugins: warnings to add to the local result, or the reason to refuse an enrolment.
    async fn plugin_quality(&self, capture: &Arc<Capture>) -> Result<Vec<String>, String> {
        let (plugins, c) = (self.plugins.clone(), capture.clone());
        let Ok((reports, rolled)) = tokio::task::spawn_blocking(move || plugins.quality(&c)).await
        else {
            return Ok(Vec::new());
        };
        self.rolled_back(rolled);
        let mut notes = Vec::new();
        for (name, report) in reports {
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    self.plugin_failed(capture.capture_id, &name, &e);
                    continue;
                }
            };
            if capture.purpose == Purpose::Enrol && self.enrol_min_finger_score > 0 {
                let low: Vec<String> = report
                    .fingers
                    .iter()
                    .filter(|f| f.score < self.enrol_min_finger_score)
                    .map(|f| format!("finger {} scored {}", f.position, f.score))
                    .collect();
                if !low.is_empty() {
                    return Err(format!(
                        "enrolment refused by quality check {name}: {} (minimum {}); recapture those fingers",
                        low.join(", "),
                        self.enrol_min_finger_score
                    ));
                }
            }
            notes.extend(
                report
                    .warnings
                    .iter()
                    .map(|w| format!("quality ({name}): {}", w.message)),
            );
        }
        Ok(notes)
    }

    /// Policy plugins, in name order: each may change the decision (never away from a hit), replace the reason and
    /// route alerts (station: into the result's reason; console: the console's alert list; central: reported).
    async fn plugin_policy(&self, station: &str, capture: &Capture, result: &mut CaptureResult) {
        let input = hotspot_plugins::PolicyInput::new(
            station,
            capture,
            result,
            time::OffsetDateTime::now_utc(),
        );
        let plugins = self.plugins.clone();
        let Ok((decisions, rolled)) =
            tokio::task::spawn_blocking(move || plugins.policy(&input)).await
        else {
            return;
        };
        self.rolled_back(rolled);
        let id = capture.capture_id;
        for (name, d) in decisions {
            let d = match d {
                Ok(d) => d,
                Err(e) => {
                    self.plugin_failed(id, &name, &e);
                    continue;
                }
            };
            if result.decision != Decision::Hit {
                result.decision = d.decision;
            }
            if d.reason.is_some() {
                result.reason = d.reason;
            }
            for a in d.alerts {
                let severity = serde_json::to_value(a.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                self.audit.record(
                    format!("plugin:{name}"),
                    "plugin.alert",
                    id.to_string(),
                    serde_json::json!({"route": a.route, "severity": severity, "message": a.message}),
                );
                match a.route {
                    hotspot_plugins::AlertRoute::Station => {
                        let alert = format!("ALERT ({severity}): {}", a.message);
                        result.reason = Some(match result.reason.take() {
                            Some(r) => format!("{r}; {alert}"),
                            None => alert,
                        });
                    }
                    hotspot_plugins::AlertRoute::Console => {
                        if let Ok(mut q) = self.console_alerts.lock() {
                            q.push_back(serde_json::json!({
                                "at": time::OffsetDateTime::now_utc().unix_timestamp(),
                                "station": station, "capture_id": id, "severity": severity,
                                "message": a.message, "plugin": name,
                            }));
                            while q.len() > CONSOLE_ALERTS {
                                q.pop_front();
                            }
                        }
                    }
                    hotspot_plugins::AlertRoute::Central => self.queue_event(GatewayEvent::Alert {
                        station_id: station.to_owned(),
                        capture_id: id,
                        severity,
                        message: a.message,
                        plugin: name.clone(),
                    }),
                }
            }
        }
    }

    /// Processes captures in arrival order until the channel closes.
    pub async fn run_ingest(self: Arc<Self>, mut rx: mpsc::Receiver<Inbound>) {
        while let Some(inbound) = rx.recv().await {
            self.ingest(inbound).await;
        }
    }

    async fn ingest(self: &Arc<Self>, inbound: Inbound) {
        let received_ms = now_ms();
        Shared::bump(&self.shared.captures_received);
        let station = inbound.station_id.clone();
        let decoded = match &inbound.decoder {
            None => decode(&station, &inbound.publish.payload),
            Some(name) => self.decode_vendor(name, &inbound).await,
        };
        let capture = match decoded {
            Ok(c) => c,
            Err(rej) => return self.reject(&inbound, rej.capture_id, rej.reason).await,
        };
        let id = capture.capture_id;
        // Extraction and the face networks are CPU-heavy: off the async threads.
        let capture = Arc::new(capture);
        let started = Instant::now();
        let fingers = match self.blocking(capture.clone(), probe_fingers).await {
            Ok(p) => p,
            Err(reason) => return self.reject(&inbound, Some(id), reason).await,
        };
        let known = matches!(self.store.capture_record(id), Ok(Some(_)));
        let full = self.shared.disk_full() && !known;
        // The local match starts before the capture is stored and flushed: the officer's answer does not wait for
        // the disk. It is recorded and published only once the capture is stored (`stored`), and dropped if
        // storing fails. A capture already stored (re-sent) is answered from the store instead, so no match.
        let (stored, stored_rx) = oneshot::channel::<bool>();
        let mut stored_rx = Some(stored_rx);
        let job = |probe, notes, probed: Duration, face| ToMatch {
            id,
            station: station.clone(),
            probe,
            capture: capture.clone(),
            notes,
            received_ms,
            probed,
            face,
        };
        // Only the face can still turn this capture away: its finger search starts now, while the face is analysed.
        let early = capture.purpose == Purpose::Screen
            && capture.face.is_some()
            && !fingers.fingers.is_empty()
            && self.faces.is_some()
            && !self.plugins.has_checks().0
            && !known
            && !full;
        let (probe, face_tx) = if early {
            let (tx, rx) = oneshot::channel();
            let (this, job) = (
                self.clone(),
                job(fingers, Vec::new(), started.elapsed(), Some(rx)),
            );
            let stored_rx = stored_rx.take();
            tokio::spawn(async move { this.local_match(job, stored_rx).await });
            (None, Some(tx))
        } else {
            (Some(fingers), None)
        };
        let faces = self.faces.clone();
        let face = self
            .blocking(capture.clone(), move |c| probe_face(c, faces.as_deref()))
            .await;
        let probed = started.elapsed();
        let face = match face {
            Ok(f) => f,
            // Dropping `face_tx` (and `stored`) tells an early match to give up.
            Err(reason) => return self.reject(&inbound, Some(id), reason).await,
        };
        if let Some(tx) = face_tx {
            let _ = tx.send((face, probed));
        } else if let Some(mut probe) = probe {
            probe.add_face(face);
            if capture.purpose == Purpose::Enrol
                && let Err(reason) = crate::quality::enrolment_gate(&capture, &probe)
            {
                self.count_contribution(|s| s.rejected_quality += 1);
                return self.reject(&inbound, Some(id), reason).await;
            }
            let notes = if self.plugins.has_checks().0 {
                match self.plugin_quality(&capture).await {
                    Ok(n) => n,
                    Err(reason) => {
                        if capture.purpose == Purpose::Enrol {
                            self.count_contribution(|s| s.rejected_quality += 1);
                        }
                        return self.reject(&inbound, Some(id), reason).await;
                    }
                }
            } else {
                Vec::new()
            };
            if full {
                return self.refuse_storage_full(&inbound, id, probe).await;
            }
            if let (false, Some(stored_rx)) = (known, stored_rx.take()) {
                let (this, job) = (self.clone(), job(probe, notes, probed, None));
                tokio::spawn(async move { this.local_match(job, Some(stored_rx)).await });
            }
        }
        match self
            .store
            .insert_capture_async(station.clone(), received_ms, capture.clone())
            .await
        {
            Ok(Inserted::New) => {}
            Ok(Inserted::Existing) => {
                ack(&self.client, &inbound.publish).await;
                info!(capture_id = %id, station, "capture re-sent; answering with the stored results");
                return self.resend_results(id, &station).await;
            }
            Err(e) => {
                error!(capture_id = %id, error = %e, "cannot store capture");
                let reason = format!(
                    "gateway storage failure ({e}); the capture was not accepted, send it again"
                );
                return self.reject(&inbound, Some(id), reason).await;
            }
        }
        match self.store.flush().await {
            // Durable: now, and only now, the broker may forget it.
            Ok(()) => ack(&self.client, &inbound.publish).await,
            Err(e) => {
                error!(capture_id = %id, error = %e, "flush failed; leaving the capture unacknowledged")
            }
        }
        // The capture is stored (as before this change, a failed flush still answers: the record is written and
        // the next flush makes it durable; the missing acknowledgement makes the station send it again).
        let _ = stored.send(true);
        Shared::bump(&self.shared.captures_accepted);
        if capture.purpose == Purpose::Enrol {
            self.count_contribution(|s| s.enrolled += 1);
        }
        info!(capture_id = %id, station, purpose = ?capture.purpose, "capture accepted");
        self.audit.record(
            format!("station:{station}"),
            "capture.accepted",
            id.to_string(),
            serde_json::json!({
                "purpose": capture.purpose, "operator": capture.operator,
                "fingers": capture.fingers.len(), "face": capture.face.is_some(),
            }),
        );
    }

    /// `f(capture)` on a blocking thread: probing is CPU-heavy (extraction, the face networks).
    async fn blocking<T: Send + 'static>(
        &self,
        capture: Arc<Capture>,
        f: impl FnOnce(&Capture) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let id = capture.capture_id;
        tokio::task::spawn_blocking(move || f(&capture))
            .await
            .unwrap_or_else(|e| {
                error!(capture_id = %id, error = %e, "probe task failed");
                Err(format!(
                    "gateway failure while reading the capture ({e}); send it again"
                ))
            })
    }

    /// The capture's whole probe (fingers, then face), computed on blocking threads, and how long that took (the
    /// `probe` stage).
    async fn probe(&self, capture: Arc<Capture>) -> Result<(Probe, Duration), String> {
        let started = Instant::now();
        let mut probe = self.blocking(capture.clone(), probe_fingers).await?;
        let faces = self.faces.clone();
        let face = self
            .blocking(capture, move |c| probe_face(c, faces.as_deref()))
            .await?;
        probe.add_face(face);
        Ok((probe, started.elapsed()))
    }

    async fn reject(&self, inbound: &Inbound, capture_id: Option<Uuid>, reason: String) {
        ack(&self.client, &inbound.publish).await;
        Shared::bump(&self.shared.captures_rejected);
        warn!(station = %inbound.station_id, capture_id = ?capture_id, %reason, "capture rejected");
        self.audit.record(
            format!("station:{}", inbound.station_id),
            "capture.rejected",
            capture_id.map(|u| u.to_string()).unwrap_or_default(),
            serde_json::json!({ "reason": reason }),
        );
        let version = self.watchlist.current().version;
        let result = CaptureResult::rejected(capture_id, reason, version);
        publish_result(&self.client, &inbound.station_id, &result).await;
    }

    /// Quota reached: the capture is not stored or forwarded, but the officer still gets the watchlist answer.
    async fn refuse_storage_full(&self, inbound: &Inbound, id: Uuid, probe: Probe) {
        ack(&self.client, &inbound.publish).await;
        Shared::bump(&self.shared.captures_rejected);
        let installed = self.watchlist.current();
        let version = installed.version;
        let outcome = tokio::task::spawn_blocking(move || decide(installed.gallery(), &probe))
            .await
            .ok();
        let local = outcome.as_ref().map_or("not available".to_owned(), |o| {
            let top = o
                .candidates
                .first()
                .map(|c| format!(" ({} {:.1})", c.subject_id, c.score));
            format!("{}{}", o.decision.as_str(), top.unwrap_or_default())
        });
        warn!(capture_id = %id, station = %inbound.station_id, "disk quota full; capture refused");
        self.audit.record(
            format!("station:{}", inbound.station_id),
            "capture.refused_storage_full",
            id.to_string(),
            serde_json::json!({ "local": local }),
        );
        let result = CaptureResult {
            capture_id: Some(id),
            source: Source::Local,
            decision: Decision::Rejected,
            candidates: outcome.map(|o| o.candidates).unwrap_or_default(),
            reason: Some(format!(
                "storage full: the gateway's disk quota is reached, so this capture was not stored and will not be \
                 forwarded to central; local watchlist answer: {local}"
            )),
            watchlist_version: version,
            latency_ms: 0,
        };
        publish_result(&self.client, &inbound.station_id, &result).await;
    }

    /// Matches `job` and answers it; `stored` says when ingest has stored the capture (`None`: stored already).
    async fn local_match(&self, job: ToMatch, stored: Option<oneshot::Receiver<bool>>) {
        let ToMatch {
            id,
            station,
            probe,
            capture,
            notes,
            received_ms,
            probed,
            face,
        } = job;
        // The whole probe's time (the `probe` stage): `probed`, or with the face analysed meanwhile, the face's.
        let mut probe_ms = millis(probed);
        let purpose = capture.purpose;
        let queued = Instant::now();
        let Ok(slot) = self.match_slots.acquire().await else {
            return;
        };
        let queue_ms = millis(queued.elapsed());
        let installed = self.watchlist.current();
        let version = installed.version;
        let matching = Instant::now();
        // The 1:N finger search, the heavy part: one at a time (`match_slots`), every core.
        let searched = tokio::task::spawn_blocking(move || {
            let found = search_fingers(installed.gallery(), &probe.fingers);
            (installed, probe, found)
        })
        .await;
        // The next capture may search while this one waits for its face or its storage.
        drop(slot);
        let (installed, mut probe, found) = match searched {
            Ok(s) => s,
            Err(e) => {
                error!(capture_id = %id, error = %e, "matching task failed; will retry at next start");
                return;
            }
        };
        let searching = matching.elapsed();
        let mut match_ms = millis(searching);
        let waited = Instant::now();
        if let Some(face) = face {
            let Ok((part, whole)) = face.await else {
                // Rejected while its face was analysed: the station was told.
                return;
            };
            probe.add_face(part);
            probe_ms = millis(whole);
        }
        let face_waiting = waited.elapsed();
        let face_wait_ms = millis(face_waiting);
        let fusing = Instant::now();
        let outcome = match tokio::task::spawn_blocking(move || {
            decide_with(installed.gallery(), &probe, found)
        })
        .await
        {
            Ok(o) => o,
            Err(e) => {
                error!(capture_id = %id, error = %e, "matching task failed; will retry at next start");
                return;
            }
        };
        let fusion = fusing.elapsed();
        match_ms += millis(fusion);
        // The matcher's own time for this capture, on its critical path and without the queue: the probe made
        // before the search (with the face analysed meanwhile, the fingers' part), the search, the wait for the
        // face, the fusion. In ms to 0.1 (whole-ms parts would undercount it by about half a ms each).
        let matcher = probed + searching + face_waiting + fusion;
        let matcher_ms = (matcher.as_secs_f64() * 10_000.0).round() / 10.0;
        if let Some(stored) = stored
            && !matches!(stored.await, Ok(true))
        {
            // Not stored: the station was told (rejected or answered from the store); the answer is dropped.
            return;
        }
        let mut result = CaptureResult {
            capture_id: Some(id),
            source: Source::Local,
            decision: outcome.decision,
            candidates: outcome.candidates,
            reason: outcome.reason,
            watchlist_version: version,
            latency_ms: elapsed_ms(received_ms),
        };
        if !notes.is_empty() {
            let notes = notes.join("; ");
            result.reason = Some(match result.reason.take() {
                Some(r) => format!("{r}; {notes}"),
                None => notes,
            });
        }
        if self.plugins.has_checks().1 {
            self.plugin_policy(&station, &capture, &mut result).await;
            result.latency_ms = elapsed_ms(received_ms);
        }
        let priority = match (result.decision, purpose) {
            (Decision::Hit, _) => Priority::Hit,
            (_, Purpose::Screen) => Priority::Screen,
            (_, Purpose::Enrol) => Priority::Enrol,
        };
        match self.store.record_local(id, &result, priority) {
            Ok(Some(key)) => {
                // A full channel is fine: the capture waits in the outbox for the paced lane.
                let _ = self.fresh.try_send((key, id));
                self.outbox_notify.notify_one();
            }
            Ok(None) => {}
            Err(e) => {
                error!(capture_id = %id, error = %e, "cannot record local result; will retry at next start");
                return;
            }
        }
        info!(
            capture_id = %id, station, decision = ?result.decision, latency_ms = result.latency_ms, probe_ms,
            queue_ms, match_ms, face_wait_ms, matcher_ms, "local result"
        );
        let metrics = &self.shared.metrics;
        metrics.local_result(result.decision, result.latency_ms);
        for (stage, ms) in crate::metrics::STAGES
            .into_iter()
            .zip([probe_ms, queue_ms, match_ms])
        {
            metrics.local_stage(stage, ms);
        }
        self.audit.record(
            "system",
            "result.local",
            id.to_string(),
            serde_json::json!({
                "decision": result.decision, "candidates": candidate_ids(&result),
                "watchlist_version": version,
            }),
        );
        self.publish_and_mark(id, &station, &result).await;
        if crate::memory::trim_due(Instant::now()) {
            // Off the answer's path: the officer already has it.
            let above = self.release_above_bytes;
            tokio::task::spawn_blocking(move || crate::memory::release_after_answer(above));
        }
    }

    /// Central confirmed (or just delivered) the installed watchlist: records it in memory and in `meta`.
    pub fn confirm_watchlist(&self, now_ms: i64) {
        self.watchlist.confirm(now_ms);
        if let Err(e) = self
            .store
            .meta_set(crate::watchlist::CONFIRMED_META_KEY, &now_ms)
        {
            warn!(error = %e, "cannot persist the watchlist confirmation time");
        }
    }

    /// Active alarms: storage ([`Shared::alarms`]) and `watchlist_stale`.
    pub fn alarms(&self) -> Vec<String> {
        let mut a = self.shared.alarms();
        if self.watchlist.stale(now_ms()) {
            a.push("watchlist_stale".to_owned());
        }
        a
    }

    /// Today's contribution counters (persisted per day in the `meta` tree) and the enrolments queued now.
    pub fn contribution_stats(&self) -> ContributionStats {
        let day = today();
        let key = format!("contributions:{day}");
        let mut s: ContributionStats = self.store.meta_get(&key).ok().flatten().unwrap_or_default();
        s.pending = self.store.outbox_count(Priority::Enrol);
        if let Ok(reviewed) = self.reviewed.lock()
            && let Some(r) = reviewed.iter().find(|r| r.day == day)
        {
            s.accepted = r.accepted;
            s.rejected_review = r.rejected;
        }
        s.day = day;
        s
    }

    /// Keeps central's latest review counts of this gateway's contributions (from its `Welcome`).
    pub fn set_reviewed(&self, reviewed: Vec<hotspot_device_protocols::uplink::ReviewedDay>) {
        if let Ok(mut r) = self.reviewed.lock() {
            *r = reviewed;
        }
    }

    /// Bumps one of today's contribution counters.
    pub fn count_contribution(&self, bump: impl FnOnce(&mut ContributionStats)) {
        let Ok(_guard) = self.stats_lock.lock() else {
            return;
        };
        let key = format!("contributions:{}", today());
        let mut s: ContributionStats = self.store.meta_get(&key).ok().flatten().unwrap_or_default();
        bump(&mut s);
        if let Err(e) = self.store.meta_set(&key, &s) {
            warn!(error = %e, "cannot update contribution counters");
        }
    }

    /// Records central's answer in the audit log.
    pub fn audit_central(&self, id: Uuid, result: &CaptureResult) {
        self.audit.record(
            "central",
            "result.central",
            id.to_string(),
            serde_json::json!({
                "decision": result.decision, "candidates": candidate_ids(result),
                "gallery_version": result.watchlist_version,
            }),
        );
    }

    /// Publishes a stored result and marks it published.
    pub async fn publish_and_mark(&self, id: Uuid, station: &str, result: &CaptureResult) {
        let central = result.source == Source::Central;
        if publish_result(&self.client, station, result).await {
            let counter = if central {
                &self.shared.central_results
            } else {
                &self.shared.local_results
            };
            Shared::bump(counter);
            let epoch = self
                .shared
                .mqtt_epoch
                .load(std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut q) = self.pending_marks.lock() {
                q.push((id, central, epoch, now_ms()));
            }
        }
    }

    /// Marks results published once they are unlikely to be lost, forever (every second).
    ///
    /// rumqttc's `publish` only queues the message in memory: a kill -9 right after it loses the message, and a
    /// result marked published at that point would never be sent again (the chaos test caught this). A result is
    /// therefore marked only after [`PUBLISH_GRACE_MS`] with the broker connection up the whole time (same
    /// connection epoch); otherwise it stays unmarked and is re-sent after the next start (stations de-duplicate
    /// on `capture_id` + `source`).
    pub async fn confirm_published(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = now_ms();
            let epoch = self
                .shared
                .mqtt_epoch
                .load(std::sync::atomic::Ordering::Relaxed);
            let connected = self
                .shared
                .mqtt_connected
                .load(std::sync::atomic::Ordering::Relaxed);
            let due: Vec<(Uuid, bool, u64, i64)> = match self.pending_marks.lock() {
                Ok(mut q) => {
                    let (due, keep) = q
                        .drain(..)
                        .partition(|(_, _, _, at)| now - *at >= PUBLISH_GRACE_MS);
                    *q = keep;
                    due
                }
                Err(_) => continue,
            };
            for (id, central, e, _) in due {
                if e != epoch || !connected {
                    continue;
                }
                if let Err(err) = self.store.mark_published(id, central) {
                    warn!(capture_id = %id, error = %err, "cannot mark result published; it may be sent twice");
                }
            }
        }
    }

    async fn resend_results(&self, id: Uuid, station: &str) {
        for central in [false, true] {
            if let Ok(Some(r)) = self.store.result(id, central) {
                publish_result(&self.client, station, &r.result).await;
            }
        }
    }

    /// After a restart: match captures stored but never answered, and publish results never handed to MQTT.
    pub async fn recover(self: &Arc<Self>) {
        let pending = self.store.pending_local().unwrap_or_else(|e| {
            error!(error = %e, "cannot scan for unanswered captures");
            Vec::new()
        });
        if !pending.is_empty() {
            info!(
                count = pending.len(),
                "re-matching captures stored before the last stop"
            );
        }
        for id in pending {
            match self.store.capture_async(id).await {
                Ok(Some((rec, capture))) => {
                    let capture = Arc::new(capture);
                    match self.probe(capture.clone()).await {
                        Ok((probe, probed)) => {
                            let job = ToMatch {
                                id,
                                station: rec.station_id,
                                probe,
                                capture,
                                notes: Vec::new(),
                                received_ms: rec.received_at_ms,
                                probed,
                                face: None,
                            };
                            self.local_match(job, None).await;
                        }
                        Err(reason) => {
                            warn!(capture_id = %id, %reason, "stored capture no longer parses")
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    error!(capture_id = %id, error = %e, "stored capture unreadable; skipped")
                }
            }
        }
        let unpublished = self.store.unpublished().unwrap_or_else(|e| {
            error!(error = %e, "cannot scan for unpublished results");
            Vec::new()
        });
        for (id, station, result) in unpublished {
            self.publish_and_mark(id, &station, &result).await;
        }
        // Give the client a moment to hand the re-sent results to the broker before new work piles up.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
