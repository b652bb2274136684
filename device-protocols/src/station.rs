//! Station protocol v1: what capture stations and the gateway say to each other over MQTT.
//!
//! The normative description is `docs/station-protocol.md`; this module is its executable form.
//!
//! - Station -> gateway: `hotspot/v1/stations/{station_id}/captures`, QoS 1, never retained, a JSON [`Capture`].
//! - Gateway -> station: `hotspot/v1/stations/{station_id}/results`, QoS 1, a JSON [`CaptureResult`].
//! - Retained status: `hotspot/v1/stations/{station_id}/status` (`online` / `offline`, set by the station with a
//!   last will of `offline`) and `hotspot/v1/gateway/status` (a JSON [`GatewayStatus`]).
//!
//! [`decode_capture`] never panics: every problem becomes a [`CaptureRejection`] whose reason names the field.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of every topic of protocol v1.
pub const TOPIC_PREFIX: &str = "hotspot/v1";
/// Filter the gateway subscribes to for captures.
pub const CAPTURES_FILTER: &str = "hotspot/v1/stations/+/captures";
/// Filter the gateway subscribes to for station presence.
pub const STATION_STATUS_FILTER: &str = "hotspot/v1/stations/+/status";
/// Subscription filter for vendor payloads decoded by a plugin (v1.2): `.../{id}/vendor/{decoder}`.
pub const VENDOR_CAPTURES_FILTER: &str = "hotspot/v1/stations/+/vendor/+";
/// The gateway's own retained status topic.
pub const GATEWAY_STATUS_TOPIC: &str = "hotspot/v1/gateway/status";
/// Largest capture payload accepted, checked before parsing.
pub const MAX_CAPTURE_BYTES: usize = 16 * 1024 * 1024;
/// Largest decoded biometric item (one finger or the face).
pub const MAX_ITEM_BYTES: usize = 4 * 1024 * 1024;
/// Longest station id, operator id.
pub const MAX_ID_LEN: usize = 64;

/// Topic on which station `station_id` publishes captures.
pub fn captures_topic(station_id: &str) -> String {
    format!("{TOPIC_PREFIX}/stations/{station_id}/captures")
}

/// Topic on which station `station_id` publishes vendor payloads for decoder plugin `decoder` (v1.2).
pub fn vendor_topic(station_id: &str, decoder: &str) -> String {
    format!("{TOPIC_PREFIX}/stations/{station_id}/vendor/{decoder}")
}

/// Topic on which the gateway publishes results for station `station_id`.
pub fn results_topic(station_id: &str) -> String {
    format!("{TOPIC_PREFIX}/stations/{station_id}/results")
}

/// Retained presence topic of station `station_id`.
pub fn station_status_topic(station_id: &str) -> String {
    format!("{TOPIC_PREFIX}/stations/{station_id}/status")
}

/// Which per-station topic a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationTopic<'a> {
    /// `.../{id}/captures`
    Captures(&'a str),
    /// `.../{id}/status`
    Status(&'a str),
    /// `.../{id}/results`
    Results(&'a str),
    /// `.../{id}/vendor/{decoder}` (v1.2): a vendor payload for the named decoder plugin.
    Vendor(&'a str, &'a str),
}

/// Errors in a topic name or identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The topic is not one of protocol v1's station topics.
    #[error("topic {0:?} is not a hotspot/v1 station topic")]
    NotAStationTopic(String),
    /// The station id segment is empty, too long or has characters other than `A-Z a-z 0-9 - _ .`.
    #[error("station id {0:?} must be 1..=64 characters of A-Z a-z 0-9 - _ .")]
    BadStationId(String),
}

/// Checks a station (or site) identifier: 1..=64 characters of `A-Z a-z 0-9 - _ .`.
pub fn validate_id(id: &str) -> Result<(), TopicError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(TopicError::BadStationId(id.to_owned()))
    }
}

/// Parses a station topic into its kind and station id.
pub fn parse_station_topic(topic: &str) -> Result<StationTopic<'_>, TopicError> {
    let not_ours = || TopicError::NotAStationTopic(topic.to_owned());
    let rest = topic
        .strip_prefix(TOPIC_PREFIX)
        .and_then(|r| r.strip_prefix("/stations/"))
        .ok_or_else(not_ours)?;
    let (id, kind) = rest.split_once('/').ok_or_else(not_ours)?;
    validate_id(id)?;
    match kind {
        "captures" => Ok(StationTopic::Captures(id)),
        "status" => Ok(StationTopic::Status(id)),
        "results" => Ok(StationTopic::Results(id)),
        other => match other.strip_prefix("vendor/") {
            Some(decoder) => {
                validate_id(decoder)?;
                Ok(StationTopic::Vendor(id, decoder))
            }
            None => Err(not_ours()),
        },
    }
}

/// Topic rights, enforced by the gateway's station listener in front of the embedded broker (mosquitto's ACL file
/// says the same): whether station `id` may publish on `topic`: its captures, its vendor payloads and its presence,
/// nothing else.
pub fn may_publish(id: &str, topic: &str) -> bool {
    matches!(
        parse_station_topic(topic),
        Ok(StationTopic::Captures(s) | StationTopic::Vendor(s, _) | StationTopic::Status(s)) if s == id
    )
}

/// Whether station `id` may subscribe to `filter`: exactly its results topic or the gateway status (no wildcards).
pub fn may_subscribe(id: &str, filter: &str) -> bool {
    filter == results_topic(id) || filter == GATEWAY_STATUS_TOPIC
}

/// The client id a station's session has on rumqttd: `STATION:CLIENT`. Station ids cannot contain `:`, so two
/// stations never share a session whatever client ids they choose. An empty client id stays empty (rumqttd then
/// assigns a random one to the clean session).
pub fn session_client_id(id: &str, client_id: &str) -> String {
    if client_id.is_empty() {
        String::new()
    } else {
        format!("{id}:{client_id}")
    }
}

/// Why the capture was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Check against the watchlist.
    Screen,
    /// Check, then contribute to the central databases.
    Enrol,
}

/// Encoding of one finger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FingerFormat {
    /// ISO/IEC 19794-2:2005 minutiae record.
    #[serde(rename = "iso19794-2")]
    Iso19794_2,
    /// ANSI INCITS 378-2004 minutiae record.
    #[serde(rename = "ansi378")]
    Ansi378,
    /// WSQ-compressed 500 ppi grey-scale image.
    #[serde(rename = "wsq")]
    Wsq,
    /// PNG grey-scale image.
    #[serde(rename = "png")]
    Png,
    /// TIFF grey-scale image.
    #[serde(rename = "tiff")]
    Tiff,
}

impl FingerFormat {
    /// Whether this is a minutiae template (as opposed to an image).
    pub fn is_template(self) -> bool {
        matches!(self, Self::Iso19794_2 | Self::Ansi378)
    }

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iso19794_2 => "iso19794-2",
            Self::Ansi378 => "ansi378",
            Self::Wsq => "wsq",
            Self::Png => "png",
            Self::Tiff => "tiff",
        }
    }
}

/// Encoding of the face photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaceFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
}

/// One captured finger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finger {
    /// Finger position, 1 (right thumb) ..= 10 (left little), as in ISO/IEC 19794-2.
    pub position: u8,
    /// How `data` is encoded.
    pub format: FingerFormat,
    /// The record or image bytes (base64 on the wire).
    #[serde(with = "b64")]
    pub data: Vec<u8>,
}

/// The face photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Face {
    /// How `data` is encoded.
    pub format: FaceFormat,
    /// The image bytes (base64 on the wire).
    #[serde(with = "b64")]
    pub data: Vec<u8>,
}

/// A capture as published by a station (protocol v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// Station-chosen unique id; the idempotency key all the way to central.
    pub capture_id: Uuid,
    /// When the station captured it.
    #[serde(with = "time::serde::rfc3339")]
    pub captured_at: OffsetDateTime,
    /// The officer operating the station.
    pub operator: String,
    /// Screening or enrolment.
    pub purpose: Purpose,
    /// Zero to ten fingers (at least one finger or a face).
    #[serde(default)]
    pub fingers: Vec<Finger>,
    /// Optional face photo.
    #[serde(default)]
    pub face: Option<Face>,
    /// The officer's declarations; required for `enrol`, refused for `screen` (v1 extension, see
    /// [`crate::enrolment`]).
    #[serde(default)]
    pub enrolment: Option<crate::enrolment::Enrolment>,
}

/// Why a capture was refused. `capture_id` is set whenever the payload had a readable one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct CaptureRejection {
    /// The capture id, if it could be read.
    pub capture_id: Option<Uuid>,
    /// Human-readable reason naming the offending field.
    pub reason: String,
}

/// Decodes and validates a capture payload.
pub fn decode_capture(payload: &[u8]) -> Result<Capture, CaptureRejection> {
    let reject = |capture_id, reason: String| CaptureRejection { capture_id, reason };
    if payload.len() > MAX_CAPTURE_BYTES {
        return Err(reject(
            None,
            format!(
                "payload is {} bytes, more than the limit of {MAX_CAPTURE_BYTES}",
                payload.len()
            ),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| reject(None, format!("payload is not valid JSON: {e}")))?;
    let capture_id = value
        .get("capture_id")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok());
    let capture: Capture = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        reject(capture_id, format!("field `{path}`: {}", e.into_inner()))
    })?;
    validate_capture(&capture).map_err(|reason| reject(Some(capture.capture_id), reason))?;
    Ok(capture)
}

/// Checks the rules JSON typing cannot express.
fn validate_capture(c: &Capture) -> Result<(), String> {
    match (c.purpose, &c.enrolment) {
        (Purpose::Enrol, None) => {
            return Err("field `enrolment` is required when `purpose` is `enrol`".into());
        }
        (Purpose::Screen, Some(_)) => {
            return Err("field `enrolment` is only allowed when `purpose` is `enrol`".into());
        }
        (Purpose::Enrol, Some(e)) => e.validate(c.captured_at.date())?,
        (Purpose::Screen, None) => {}
    }
    if c.operator.is_empty() || c.operator.len() > MAX_ID_LEN {
        return Err(format!(
            "field `operator` must be 1..={MAX_ID_LEN} characters"
        ));
    }
    if c.fingers.is_empty() && c.face.is_none() {
        return Err("a capture needs at least one finger or a face".into());
    }
    if c.fingers.len() > 10 {
        return Err(format!(
            "field `fingers` has {} entries, at most 10 allowed",
            c.fingers.len()
        ));
    }
    let mut seen = [false; 11];
    for (i, f) in c.fingers.iter().enumerate() {
        if !(1..=10).contains(&f.position) {
            return Err(format!(
                "field `fingers[{i}].position` is {}, must be 1..=10",
                f.position
            ));
        }
        if std::mem::replace(&mut seen[usize::from(f.position)], true) {
            return Err(format!(
                "field `fingers[{i}].position` {} appears twice",
                f.position
            ));
        }
        check_item(&format!("fingers[{i}].data"), &f.data)?;
    }
    if let Some(face) = &c.face {
        check_item("face.data", &face.data)?;
    }
    Ok(())
}

fn check_item(field: &str, data: &[u8]) -> Result<(), String> {
    if data.is_empty() {
        return Err(format!("field `{field}` is empty"));
    }
    if data.len() > MAX_ITEM_BYTES {
        return Err(format!(
            "field `{field}` is {} bytes, more than the limit of {MAX_ITEM_BYTES}",
            data.len()
        ));
    }
    Ok(())
}

/// Where a result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The gateway's own watchlist, answered in milliseconds.
    Local,
    /// The central system, answered when the uplink allows.
    Central,
}

/// The answer to a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// At least one candidate at or above the hit threshold.
    Hit,
    /// Compared, nothing at or above the threshold.
    NoHit,
    /// Could not decide (e.g. nothing matchable, no watchlist yet); `reason` says why.
    Inconclusive,
    /// The capture was refused; `reason` names the problem.
    Rejected,
}

impl Decision {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::NoHit => "no_hit",
            Self::Inconclusive => "inconclusive",
            Self::Rejected => "rejected",
        }
    }
}

/// One ranked candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultCandidate {
    /// Watchlist or gallery subject id.
    pub subject_id: String,
    /// Fused comparison score (higher is more similar).
    pub score: f32,
}

/// A result published to a station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureResult {
    /// The capture this answers, `null` if it could not be read.
    pub capture_id: Option<Uuid>,
    /// `local` or `central`.
    pub source: Source,
    /// The decision.
    pub decision: Decision,
    /// Ranked candidates, best first.
    pub candidates: Vec<ResultCandidate>,
    /// Why, for `inconclusive` and `rejected` (and notes on other decisions).
    pub reason: Option<String>,
    /// Watchlist (local) or gallery (central) version the answer was computed against.
    pub watchlist_version: u64,
    /// Milliseconds from the gateway receiving the capture to this result.
    pub latency_ms: u64,
}

impl CaptureResult {
    /// A `rejected` local result.
    pub fn rejected(capture_id: Option<Uuid>, reason: String, watchlist_version: u64) -> Self {
        Self {
            capture_id,
            source: Source::Local,
            decision: Decision::Rejected,
            candidates: Vec::new(),
            reason: Some(reason),
            watchlist_version,
            latency_ms: 0,
        }
    }
}

/// Presence a station sets on its retained status topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationPresence {
    /// Payload `online`.
    Online,
    /// Payload `offline` (also the station's last will).
    Offline,
}

impl StationPresence {
    /// Parses `online` / `offline` (surrounding whitespace ignored).
    pub fn parse(payload: &[u8]) -> Option<Self> {
        match std::str::from_utf8(payload).ok()?.trim() {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Online => b"online",
            Self::Offline => b"offline",
        }
    }
}

/// State of the gateway's link to central.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UplinkState {
    /// Connected, healthy.
    Up,
    /// Connected, but slow or lossy.
    Degraded,
    /// Not connected.
    Down,
}

/// Uplink quality measured by the gateway's link monitor.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkStats {
    /// Smoothed round-trip time, ms.
    pub rtt_ms: u64,
    /// Packets lost over the last second, percent.
    pub loss_percent: f64,
    /// UDP bytes per second over the last second, both directions.
    pub goodput_bytes_per_s: u64,
}

/// Data-contribution counters of one gateway for one day (v1.1).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributionStats {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Enrolments accepted by the gateway (stored, to be delivered).
    pub enrolled: u64,
    /// Enrolments central has received and acknowledged with a record id.
    pub forwarded: u64,
    /// Enrolments refused at the desk by the quality gate.
    pub rejected_quality: u64,
    /// Enrolments waiting in the outbox now.
    pub pending: u64,
    /// Of the enrolments central received from this gateway that day, how many central ops accepted into the
    /// central database so far (v1.3; central's count, refreshed at every heartbeat, about every 30 s).
    #[serde(default)]
    pub accepted: u64,
    /// ... and how many they rejected at review (v1.3).
    #[serde(default)]
    pub rejected_review: u64,
}

/// The gateway's retained status (`hotspot/v1/gateway/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayStatus {
    /// Site id from the gateway's config.
    pub site_id: String,
    /// `online`, or `offline` (the gateway's last will).
    pub state: String,
    /// Link to central.
    pub uplink: UplinkState,
    /// Installed watchlist version (0: none yet).
    pub watchlist_version: u64,
    /// Watchlist subjects.
    pub watchlist_subjects: u64,
    /// Captures waiting to be delivered to central.
    pub backlog: u64,
    /// Age in seconds of the oldest capture waiting, if any.
    pub oldest_backlog_age_s: Option<u64>,
    /// Stations whose presence is `online`.
    pub stations_online: u64,
    /// When this status was published (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Link quality while connected (added in v1.1; absent when down).
    #[serde(default)]
    pub link: Option<LinkStats>,
    /// Database size as a percentage of the disk quota (v1.1).
    #[serde(default)]
    pub disk_used_percent: f64,
    /// Active alarms, e.g. `disk_quota_80`, `disk_quota_full`, `storage_corruption` (v1.1).
    #[serde(default)]
    pub alarms: Vec<String>,
    /// Today's data-contribution counters (v1.1).
    #[serde(default)]
    pub contributions: ContributionStats,
    /// Watchlist freshness (v1.2): when central made the installed watchlist, and how long ago the gateway last
    /// confirmed with central that it is current. Past the configured limit the `watchlist_stale` alarm is raised.
    #[serde(default)]
    pub watchlist: WatchlistFreshness,
}

/// Watchlist freshness on the status topic (v1.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchlistFreshness {
    /// When central made the installed version (RFC 3339; absent when none is installed).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// Seconds since central last confirmed the installed version is current (absent: never).
    #[serde(default)]
    pub age_s: Option<u64>,
    /// The configured limit, seconds.
    #[serde(default)]
    pub max_age_s: u64,
    /// `age_s` is past `max_age_s`, or nothing was ever confirmed.
    #[serde(default)]
    pub stale: bool,
}

/// Serde adapter: bytes as standard base64 strings.
mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            super::decode_base64(&s).map_err(serde::de::Error::custom)
        } else {
            serde_bytes_vec(d)
        }
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    if s.len() > MAX_ITEM_BYTES / 3 * 4 + 4 {
        return Err(format!(
            "base64 text of {} characters exceeds the item limit",
            s.len()
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("invalid base64: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_station_publishes_only_on_its_own_topics() {
        for ok in [
            "hotspot/v1/stations/desk-a/captures",
            "hotspot/v1/stations/desk-a/vendor/acme",
            "hotspot/v1/stations/desk-a/status",
        ] {
            assert!(may_publish("desk-a", ok), "{ok}");
        }
        for bad in [
            "hotspot/v1/stations/desk-b/captures",
            "hotspot/v1/stations/desk-b/vendor/acme",
            "hotspot/v1/stations/desk-b/status",
            "hotspot/v1/stations/desk-a/results",
            "hotspot/v1/stations/desk-a/captures/x",
            "hotspot/v1/stations/desk-a/vendor/+",
            "hotspot/v1/stations/+/captures",
            "hotspot/v1/gateway/status",
            "/tenants/desk-a/hotspot/v1/stations/desk-a/captures",
            "hotspot/v1/stations/desk-a",
            "",
        ] {
            assert!(!may_publish("desk-a", bad), "{bad}");
        }
    }

    #[test]
    fn a_station_subscribes_only_to_its_results_and_the_gateway_status() {
        assert!(may_subscribe(
            "desk-a",
            "hotspot/v1/stations/desk-a/results"
        ));
        assert!(may_subscribe("desk-a", GATEWAY_STATUS_TOPIC));
        for bad in [
            "#",
            "+/#",
            "hotspot/#",
            "hotspot/v1/stations/+/results",
            "hotspot/v1/stations/desk-b/results",
            "hotspot/v1/stations/desk-a/#",
            "hotspot/v1/stations/desk-a/+",
            "hotspot/v1/stations/desk-a/captures",
            "$SYS/#",
            "$share/g/hotspot/v1/stations/desk-a/results",
        ] {
            assert!(!may_subscribe("desk-a", bad), "{bad}");
        }
    }

    #[test]
    fn session_ids_keep_stations_apart() {
        assert_eq!(
            session_client_id("desk-a", "station-desk-a"),
            "desk-a:station-desk-a"
        );
        assert_eq!(session_client_id("desk-a", ""), "");
        // Station ids cannot contain ':', so the session id always names its station first, whatever client id
        // the station picks: no station can reach another's session.
        assert!(validate_id("a:b").is_err());
        for (id, client) in [
            ("a", "b:c"),
            ("a.b", "c"),
            ("a", "b.c"),
            ("desk-a", "desk-b:x"),
        ] {
            let session = session_client_id(id, client);
            assert_eq!(session.split_once(':').map(|(s, _)| s), Some(id));
        }
        assert_ne!(session_client_id("a.b", "c"), session_client_id("a", "b.c"));
        assert!(!session_client_id("desk-a", "x").starts_with("hotspot-gateway"));
    }

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "capture_id": "6f1c2f0e-8a53-4a57-9a36-0b7f3f1d9c11",
            "captured_at": "2026-11-29T10:00:00Z",
            "operator": "officer-7",
            "purpose": "screen",
            "fingers": [{"position": 2, "format": "iso19794-2", "data": "AAEC"}],
        })
    }

    fn decode(v: &serde_json::Value) -> Result<Capture, CaptureRejection> {
        decode_capture(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn decodes_a_valid_capture() {
        let c = decode(&sample()).unwrap();
        assert_eq!(c.fingers[0].data, vec![0, 1, 2]);
        assert_eq!(c.fingers[0].format, FingerFormat::Iso19794_2);
        assert_eq!(c.purpose, Purpose::Screen);
        assert!(c.face.is_none());
    }

    #[test]
    fn rejections_name_the_field_and_keep_the_id() {
        let mut v = sample();
        v["fingers"][0]["position"] = serde_json::json!(11);
        let e = decode(&v).unwrap_err();
        assert!(e.reason.contains("fingers[0].position"), "{}", e.reason);
        assert!(e.capture_id.is_some());

        let mut v = sample();
        v["fingers"][0]["data"] = serde_json::json!("not base64!");
        let e = decode(&v).unwrap_err();
        assert!(e.reason.contains("fingers[0].data"), "{}", e.reason);

        let mut v = sample();
        v["purpose"] = serde_json::json!("shop");
        assert!(decode(&v).unwrap_err().reason.contains("purpose"));

        let mut v = sample();
        v["fingers"] = serde_json::json!([]);
        assert!(
            decode(&v)
                .unwrap_err()
                .reason
                .contains("at least one finger or a face")
        );

        let mut v = sample();
        v["extra"] = serde_json::json!(1);
        assert!(decode(&v).unwrap_err().reason.contains("extra"));

        let mut v = sample();
        v["captured_at"] = serde_json::json!("yesterday");
        assert!(decode(&v).unwrap_err().reason.contains("captured_at"));
    }

    #[test]
    fn unreadable_id_gives_none() {
        let e = decode_capture(b"{not json").unwrap_err();
        assert_eq!(e.capture_id, None);
        assert!(e.reason.contains("not valid JSON"));
        let mut v = sample();
        v["capture_id"] = serde_json::json!("123");
        assert_eq!(decode(&v).unwrap_err().capture_id, None);
    }

    #[test]
    fn duplicate_positions_are_refused() {
        let mut v = sample();
        let f = v["fingers"][0].clone();
        v["fingers"] = serde_json::json!([f.clone(), f]);
        assert!(decode(&v).unwrap_err().reason.contains("appears twice"));
    }

    #[test]
    fn oversized_payload_is_refused_before_parsing() {
        let big = vec![b' '; MAX_CAPTURE_BYTES + 1];
        assert!(decode_capture(&big).unwrap_err().reason.contains("limit"));
    }

    #[test]
    fn topics_round_trip() {
        assert_eq!(
            parse_station_topic(&captures_topic("st-1")),
            Ok(StationTopic::Captures("st-1"))
        );
        assert_eq!(
            parse_station_topic(&results_topic("a")),
            Ok(StationTopic::Results("a"))
        );
        assert_eq!(
            parse_station_topic(&station_status_topic("b")),
            Ok(StationTopic::Status("b"))
        );
        assert!(parse_station_topic("hotspot/v1/stations/x y/captures").is_err());
        assert!(parse_station_topic("hotspot/v1/stations/x/other").is_err());
        assert_eq!(
            parse_station_topic(&vendor_topic("st-2", "acme-fs200")),
            Ok(StationTopic::Vendor("st-2", "acme-fs200"))
        );
        assert!(parse_station_topic("hotspot/v1/stations/x/vendor/").is_err());
        assert!(parse_station_topic("hotspot/v1/stations/x/vendor/a/b").is_err());
        assert!(parse_station_topic("other/topic").is_err());
    }

    #[test]
    fn capture_survives_json_and_postcard() {
        let c = decode(&sample()).unwrap();
        let json = serde_json::to_vec(&c).unwrap();
        assert_eq!(decode_capture(&json).unwrap(), c);
        let bin = postcard::to_stdvec(&c).unwrap();
        assert_eq!(postcard::from_bytes::<Capture>(&bin).unwrap(), c);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_capture(&bytes);
        }
    }
}
