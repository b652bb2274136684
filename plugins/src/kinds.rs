//! The three plugin kinds: their inputs and outputs in the station protocol's terms, and the conversions to and
//! from the WIT contract (with the checks that keep a plugin's answer inside the contract).

use std::fmt;

use base64::Engine as _;
use hotspot_device_protocols::station::{
    self, Capture, CaptureResult, Decision, FaceFormat, FingerFormat, Purpose, ResultCandidate,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::bindings::{decoder, policy, quality, types};
use crate::error::CallError;
use crate::host::{ExportIndices, Plugin};

/// Longest refusal reason passed on from a plugin (longer ones are cut).
pub const MAX_REASON_BYTES: usize = 1024;
/// Most warnings a quality report may carry.
pub const MAX_WARNINGS: usize = 32;
/// Most alerts a policy decision may carry.
pub const MAX_ALERTS: usize = 16;
/// Longest warning or alert message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 256;

/// Which contract world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `decoder-plugin`.
    Decoder,
    /// `quality-plugin`.
    Quality,
    /// `policy-plugin`.
    Policy,
}

impl Kind {
    /// The WIT world name.
    pub fn world(self) -> &'static str {
        match self {
            Self::Decoder => "decoder-plugin",
            Self::Quality => "quality-plugin",
            Self::Policy => "policy-plugin",
        }
    }

    /// The WIT interface the world exports.
    pub fn interface(self) -> &'static str {
        match self {
            Self::Decoder => "decoder",
            Self::Quality => "quality",
            Self::Policy => "policy",
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Decoder {}
    impl Sealed for super::Quality {}
    impl Sealed for super::Policy {}
}

/// A plugin kind: [`Decoder`], [`Quality`] or [`Policy`]. Sealed.
pub trait PluginKind: sealed::Sealed + Sized + Send + Sync + 'static {
    /// Which world.
    const KIND: Kind;
    /// What a call takes.
    type Input: Clone + fmt::Debug + Send + Sync;
    /// What a successful call gives.
    type Output: Clone + fmt::Debug + PartialEq + Send + Sync;
    /// Runs one call (fresh instance, limits applied). Use [`Plugin::call`].
    #[doc(hidden)]
    fn invoke(plugin: &Plugin<Self>, input: &Self::Input) -> Result<Self::Output, CallError>;
}

/// Decoder plugins: vendor payload -> [`Capture`] (validated with the station protocol's rules).
#[derive(Debug)]
pub enum Decoder {}

/// Quality plugins: [`Capture`] (its biometrics only) -> [`QualityReport`].
#[derive(Debug)]
pub enum Quality {}

/// Policy plugins: [`PolicyInput`] -> [`PolicyDecision`].
#[derive(Debug)]
pub enum Policy {}

/// Input of a decoder call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeInput {
    /// The vendor payload (at most [`station::MAX_CAPTURE_BYTES`]).
    pub payload: Vec<u8>,
    /// The station it came from.
    pub station_id: String,
    /// When the gateway received it (decoders use it when the vendor format has no capture time).
    pub received_at: OffsetDateTime,
}

/// Score of one finger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerScore {
    /// Finger position 1..=10 (one of the input's).
    pub position: u8,
    /// 0 (unusable) ..= 100 (excellent).
    pub score: u8,
}

/// A quality remark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityWarning {
    /// Machine-readable code (`a-z 0-9 -`, 1..=64).
    pub code: String,
    /// The finger concerned, if any.
    pub position: Option<u8>,
    /// Text for the station screen.
    pub message: String,
}

/// Answer of a quality plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QualityReport {
    /// Scores of the assessed fingers.
    pub fingers: Vec<FingerScore>,
    /// Face score, when there was a face and it was assessed.
    pub face: Option<u8>,
    /// Remarks (at most [`MAX_WARNINGS`]).
    pub warnings: Vec<QualityWarning>,
}

/// What a policy plugin sees.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput {
    /// The capture.
    pub capture_id: Uuid,
    /// The station that sent it.
    pub station_id: String,
    /// Screening or enrolment.
    pub purpose: Purpose,
    /// Finger positions in the capture.
    pub finger_positions: Vec<u8>,
    /// Whether the capture has a face.
    pub has_face: bool,
    /// The local decision (`rejected` is not passed to policies).
    pub decision: Decision,
    /// Ranked candidates.
    pub candidates: Vec<ResultCandidate>,
    /// The local result's reason.
    pub reason: Option<String>,
    /// Watchlist version of the local result.
    pub watchlist_version: u64,
    /// The time the policy reasons with.
    pub now: OffsetDateTime,
}

impl PolicyInput {
    /// The policy input for a capture and its local result.
    pub fn new(
        station_id: &str,
        capture: &Capture,
        local: &CaptureResult,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            capture_id: capture.capture_id,
            station_id: station_id.to_owned(),
            purpose: capture.purpose,
            finger_positions: capture.fingers.iter().map(|f| f.position).collect(),
            has_face: capture.face.is_some(),
            decision: local.decision,
            candidates: local.candidates.clone(),
            reason: local.reason.clone(),
            watchlist_version: local.watchlist_version,
            now,
        }
    }
}

/// Where an alert goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertRoute {
    /// The station that sent the capture.
    Station,
    /// The local console.
    Console,
    /// Central.
    Central,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

/// One alert of a policy decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Where.
    pub route: AlertRoute,
    /// How urgent.
    pub severity: Severity,
    /// Text (at most [`MAX_MESSAGE_CHARS`]).
    pub message: String,
}

/// Answer of a policy plugin. Never turns a `hit` into something else (the host refuses such an answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDecision {
    /// `hit`, `no_hit` or `inconclusive`.
    pub decision: Decision,
    /// Why (shown at the station).
    pub reason: Option<String>,
    /// Alerts to route (at most [`MAX_ALERTS`]).
    pub alerts: Vec<Alert>,
}

fn wrong_kind() -> CallError {
    CallError::Trap {
        message: "internal: plugin loaded for another kind".into(),
        log: String::new(),
    }
}

fn refused(mut reason: String) -> CallError {
    if reason.len() > MAX_REASON_BYTES {
        let mut cut = MAX_REASON_BYTES;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    CallError::Refused(reason)
}

impl PluginKind for Decoder {
    const KIND: Kind = Kind::Decoder;
    type Input = DecodeInput;
    type Output = Capture;

    fn invoke(plugin: &Plugin<Self>, input: &DecodeInput) -> Result<Capture, CallError> {
        let ExportIndices::Decoder(indices) = plugin.indices() else {
            return Err(wrong_kind());
        };
        if input.payload.len() > station::MAX_CAPTURE_BYTES {
            return Err(CallError::InvalidInput(format!(
                "payload is {} bytes, more than the limit of {}",
                input.payload.len(),
                station::MAX_CAPTURE_BYTES
            )));
        }
        let context = decoder::DecodeContext {
            station_id: input.station_id.clone(),
            received_at: datetime_to_wit(input.received_at),
        };
        let answer = plugin.run(|store, instance| {
            let guest = indices.load(&mut *store, instance)?;
            guest.call_decode(&mut *store, &input.payload, &context)
        })?;
        let capture = answer.map_err(refused)?;
        capture_from_wit(&capture).map_err(CallError::InvalidOutput)
    }
}

impl PluginKind for Quality {
    const KIND: Kind = Kind::Quality;
    type Input = Capture;
    type Output = QualityReport;

    fn invoke(plugin: &Plugin<Self>, input: &Capture) -> Result<QualityReport, CallError> {
        let ExportIndices::Quality(indices) = plugin.indices() else {
            return Err(wrong_kind());
        };
        let wit_input = quality::QualityInput {
            purpose: purpose_to_wit(input.purpose),
            fingers: input
                .fingers
                .iter()
                .map(|f| types::Finger {
                    position: f.position,
                    format: finger_format_to_wit(f.format),
                    data: f.data.clone(),
                })
                .collect(),
            face: input.face.as_ref().map(|f| types::Face {
                format: match f.format {
                    FaceFormat::Jpeg => types::FaceFormat::Jpeg,
                    FaceFormat::Png => types::FaceFormat::Png,
                },
                data: f.data.clone(),
            }),
        };
        let answer = plugin.run(|store, instance| {
            let guest = indices.load(&mut *store, instance)?;
            guest.call_assess(&mut *store, &wit_input)
        })?;
        let report = answer.map_err(refused)?;
        quality_from_wit(input, report).map_err(CallError::InvalidOutput)
    }
}

impl PluginKind for Policy {
    const KIND: Kind = Kind::Policy;
    type Input = PolicyInput;
    type Output = PolicyDecision;

    fn invoke(plugin: &Plugin<Self>, input: &PolicyInput) -> Result<PolicyDecision, CallError> {
        let ExportIndices::Policy(indices) = plugin.indices() else {
            return Err(wrong_kind());
        };
        let decision = decision_to_wit(input.decision).ok_or_else(|| {
            CallError::InvalidInput("rejected captures are not passed to policies".into())
        })?;
        let wit_input = policy::PolicyInput {
            capture_id: input.capture_id.hyphenated().to_string(),
            station_id: input.station_id.clone(),
            purpose: purpose_to_wit(input.purpose),
            finger_positions: input.finger_positions.clone(),
            has_face: input.has_face,
            local: types::LocalResult {
                decision,
                candidates: input
                    .candidates
                    .iter()
                    .map(|c| types::Candidate {
                        subject_id: c.subject_id.clone(),
                        score: c.score,
                    })
                    .collect(),
                reason: input.reason.clone(),
                watchlist_version: input.watchlist_version,
            },
            now: datetime_to_wit(input.now),
        };
        let answer = plugin.run(|store, instance| {
            let guest = indices.load(&mut *store, instance)?;
            guest.call_decide(&mut *store, &wit_input)
        })?;
        let decision = answer.map_err(refused)?;
        policy_from_wit(input, decision).map_err(CallError::InvalidOutput)
    }
}

fn datetime_to_wit(t: OffsetDateTime) -> types::Datetime {
    types::Datetime {
        seconds: t.unix_timestamp(),
        nanoseconds: t.nanosecond(),
    }
}

fn datetime_from_wit(d: types::Datetime) -> Result<OffsetDateTime, String> {
    if d.nanoseconds > 999_999_999 {
        return Err(format!(
            "field `captured-at.nanoseconds` is {}, must be below 10^9",
            d.nanoseconds
        ));
    }
    let nanos = i128::from(d.seconds) * 1_000_000_000 + i128::from(d.nanoseconds);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|e| format!("field `captured-at` is out of range: {e}"))
}

fn purpose_to_wit(p: Purpose) -> types::Purpose {
    match p {
        Purpose::Screen => types::Purpose::Screen,
        Purpose::Enrol => types::Purpose::Enrol,
    }
}

fn finger_format_to_wit(f: FingerFormat) -> types::FingerFormat {
    match f {
        FingerFormat::Iso19794_2 => types::FingerFormat::Iso19794,
        FingerFormat::Ansi378 => types::FingerFormat::Ansi378,
        FingerFormat::Wsq => types::FingerFormat::Wsq,
        FingerFormat::Png => types::FingerFormat::Png,
        FingerFormat::Tiff => types::FingerFormat::Tiff,
    }
}

/// Station-protocol names of the WIT enums (the JSON the station protocol decoder reads).
fn finger_format_name(f: types::FingerFormat) -> &'static str {
    let station = match f {
        types::FingerFormat::Iso19794 => FingerFormat::Iso19794_2,
        types::FingerFormat::Ansi378 => FingerFormat::Ansi378,
        types::FingerFormat::Wsq => FingerFormat::Wsq,
        types::FingerFormat::Png => FingerFormat::Png,
        types::FingerFormat::Tiff => FingerFormat::Tiff,
    };
    station.as_str()
}

fn decision_to_wit(d: Decision) -> Option<types::Decision> {
    match d {
        Decision::Hit => Some(types::Decision::Hit),
        Decision::NoHit => Some(types::Decision::NoHit),
        Decision::Inconclusive => Some(types::Decision::Inconclusive),
        Decision::Rejected => None,
    }
}

fn decision_from_wit(d: types::Decision) -> Decision {
    match d {
        types::Decision::Hit => Decision::Hit,
        types::Decision::NoHit => Decision::NoHit,
        types::Decision::Inconclusive => Decision::Inconclusive,
    }
}

/// A decoder's capture, checked by the station protocol's own decoder: the plugin's answer passes exactly the
/// rules a station's JSON passes (ids, sizes, positions, enrolment declarations).
fn capture_from_wit(c: &types::Capture) -> Result<Capture, String> {
    let b64 = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(data);
    let captured_at = datetime_from_wit(c.captured_at)?
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("field `captured-at` cannot be written as RFC 3339: {e}"))?;
    let mut json = serde_json::json!({
        "capture_id": c.capture_id,
        "captured_at": captured_at,
        "operator": c.operator,
        "purpose": match c.purpose {
            types::Purpose::Screen => "screen",
            types::Purpose::Enrol => "enrol",
        },
        "fingers": c.fingers.iter().map(|f| serde_json::json!({
            "position": f.position,
            "format": finger_format_name(f.format),
            "data": b64(&f.data),
        })).collect::<Vec<_>>(),
    });
    if let Some(face) = &c.face {
        json["face"] = serde_json::json!({
            "format": match face.format {
                types::FaceFormat::Jpeg => "jpeg",
                types::FaceFormat::Png => "png",
            },
            "data": b64(&face.data),
        });
    }
    if let Some(e) = &c.enrolment {
        let mut enrolment = serde_json::json!({
            "family_name": e.family_name,
            "given_names": e.given_names,
            "date_of_birth": e.date_of_birth,
            "sex": e.sex,
            "nationality": e.nationality,
            "encounter": {
                "place": e.encounter.place,
                "reason": match e.encounter.reason {
                    types::EncounterReason::BorderCheck => "border_check",
                    types::EncounterReason::EntryRefused => "entry_refused",
                    types::EncounterReason::IrregularCrossing => "irregular_crossing",
                    types::EncounterReason::AsylumRequest => "asylum_request",
                    types::EncounterReason::DocumentFraud => "document_fraud",
                    types::EncounterReason::Other => "other",
                },
            },
            "legal_basis": e.legal_basis,
        });
        if let Some(d) = &e.document {
            enrolment["document"] = serde_json::json!({
                "type": d.kind,
                "number": d.number,
                "issuer": d.issuer,
            });
        }
        json["enrolment"] = enrolment;
    }
    let bytes = serde_json::to_vec(&json).map_err(|e| e.to_string())?;
    station::decode_capture(&bytes).map_err(|rejection| rejection.reason)
}

fn check_message(what: &str, text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if chars > MAX_MESSAGE_CHARS || text.chars().any(char::is_control) {
        return Err(format!(
            "{what} must be at most {MAX_MESSAGE_CHARS} characters without control characters ({chars} given)"
        ));
    }
    Ok(())
}

fn quality_from_wit(input: &Capture, r: types::QualityReport) -> Result<QualityReport, String> {
    let positions: Vec<u8> = input.fingers.iter().map(|f| f.position).collect();
    let mut seen = Vec::with_capacity(r.fingers.len());
    for s in &r.fingers {
        if !positions.contains(&s.position) {
            return Err(format!(
                "score for finger {} which is not in the capture",
                s.position
            ));
        }
        if seen.contains(&s.position) {
            return Err(format!("finger {} scored twice", s.position));
        }
        seen.push(s.position);
        if s.score > 100 {
            return Err(format!(
                "finger {} score {} is above 100",
                s.position, s.score
            ));
        }
    }
    match r.face {
        Some(_) if input.face.is_none() => {
            return Err("face score for a capture without a face".into());
        }
        Some(score) if score > 100 => return Err(format!("face score {score} is above 100")),
        _ => {}
    }
    if r.warnings.len() > MAX_WARNINGS {
        return Err(format!(
            "{} warnings, at most {MAX_WARNINGS} allowed",
            r.warnings.len()
        ));
    }
    for (i, w) in r.warnings.iter().enumerate() {
        let code_ok = (1..=64).contains(&w.code.len())
            && w.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !code_ok {
            return Err(format!(
                "warning {i} code {:?} must be 1..=64 characters of a-z 0-9 -",
                w.code
            ));
        }
        if let Some(p) = w.position.filter(|p| !positions.contains(p)) {
            return Err(format!(
                "warning {i} names finger {p} which is not in the capture"
            ));
        }
        check_message(&format!("warning {i} message"), &w.message)?;
    }
    Ok(QualityReport {
        fingers: r
            .fingers
            .iter()
            .map(|s| FingerScore {
                position: s.position,
                score: s.score,
            })
            .collect(),
        face: r.face,
        warnings: r
            .warnings
            .into_iter()
            .map(|w| QualityWarning {
                code: w.code,
                position: w.position,
                message: w.message,
            })
            .collect(),
    })
}

fn policy_from_wit(
    input: &PolicyInput,
    d: policy::PolicyDecision,
) -> Result<PolicyDecision, String> {
    let decision = decision_from_wit(d.decision);
    if input.decision == Decision::Hit && decision != Decision::Hit {
        return Err(format!(
            "a policy may not turn a hit into {}",
            decision.as_str()
        ));
    }
    if let Some(reason) = &d.reason {
        check_message("reason", reason)?;
    }
    if d.alerts.len() > MAX_ALERTS {
        return Err(format!(
            "{} alerts, at most {MAX_ALERTS} allowed",
            d.alerts.len()
        ));
    }
    let mut alerts = Vec::with_capacity(d.alerts.len());
    for (i, a) in d.alerts.into_iter().enumerate() {
        check_message(&format!("alert {i} message"), &a.message)?;
        alerts.push(Alert {
            route: match a.route {
                policy::Route::Station => AlertRoute::Station,
                policy::Route::Console => AlertRoute::Console,
                policy::Route::Central => AlertRoute::Central,
            },
            severity: match a.severity {
                policy::Severity::Info => Severity::Info,
                policy::Severity::Warning => Severity::Warning,
                policy::Severity::Critical => Severity::Critical,
            },
            message: a.message,
        });
    }
    Ok(PolicyDecision {
        decision,
        reason: d.reason,
        alerts,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn wit_capture() -> types::Capture {
        types::Capture {
            capture_id: "6f1c2f0e-8a53-4a57-9a36-0b7f3f1d9c11".into(),
            captured_at: types::Datetime {
                seconds: 1_795_946_400,
                nanoseconds: 5,
            },
            operator: "officer-7".into(),
            purpose: types::Purpose::Screen,
            fingers: vec![types::Finger {
                position: 2,
                format: types::FingerFormat::Iso19794,
                data: vec![1, 2, 3],
            }],
            face: Some(types::Face {
                format: types::FaceFormat::Jpeg,
                data: vec![0xFF, 0xD8],
            }),
            enrolment: None,
        }
    }

    #[test]
    fn decoder_output_goes_through_station_validation() {
        let c = capture_from_wit(&wit_capture()).unwrap();
        assert_eq!(c.fingers[0].format, FingerFormat::Iso19794_2);
        assert_eq!(c.fingers[0].data, vec![1, 2, 3]);
        assert_eq!(c.captured_at.unix_timestamp(), 1_795_946_400);
        assert_eq!(c.captured_at.nanosecond(), 5);
        assert_eq!(c.face.unwrap().format, FaceFormat::Jpeg);

        let mut bad = wit_capture();
        bad.fingers[0].position = 11;
        assert!(capture_from_wit(&bad).unwrap_err().contains("position"));
        let mut bad = wit_capture();
        bad.capture_id = "not-a-uuid".into();
        assert!(capture_from_wit(&bad).unwrap_err().contains("capture_id"));
        let mut bad = wit_capture();
        bad.purpose = types::Purpose::Enrol;
        assert!(capture_from_wit(&bad).unwrap_err().contains("enrolment"));
        let mut bad = wit_capture();
        bad.captured_at.nanoseconds = 1_000_000_000;
        assert!(capture_from_wit(&bad).is_err());
        let mut bad = wit_capture();
        bad.captured_at.seconds = i64::MAX;
        assert!(capture_from_wit(&bad).is_err());
    }

    #[test]
    fn enrolment_declarations_convert() {
        let mut c = wit_capture();
        c.purpose = types::Purpose::Enrol;
        c.enrolment = Some(types::Enrolment {
            family_name: "DOE".into(),
            given_names: "JANE".into(),
            date_of_birth: "1990-04-17".into(),
            sex: "F".into(),
            nationality: "KEN".into(),
            document: Some(types::Document {
                kind: "P".into(),
                number: "A1234567".into(),
                issuer: "KEN".into(),
            }),
            encounter: types::Encounter {
                place: "Namanga".into(),
                reason: types::EncounterReason::EntryRefused,
            },
            legal_basis: "Immigration Act s.12(3)".into(),
        });
        let e = capture_from_wit(&c).unwrap().enrolment.unwrap();
        assert_eq!(e.family_name, "DOE");
        assert_eq!(
            e.encounter.reason,
            hotspot_device_protocols::enrolment::EncounterReason::EntryRefused
        );
        assert_eq!(e.document.unwrap().kind, "P");
    }

    fn capture() -> Capture {
        capture_from_wit(&wit_capture()).unwrap()
    }

    #[test]
    fn quality_answers_are_bounded_by_the_input() {
        let ok = types::QualityReport {
            fingers: vec![types::FingerScore {
                position: 2,
                score: 80,
            }],
            face: Some(70),
            warnings: vec![types::QualityWarning {
                code: "few-minutiae".into(),
                position: Some(2),
                message: "finger 2: 9 minutiae".into(),
            }],
        };
        assert_eq!(
            quality_from_wit(&capture(), ok.clone()).unwrap().fingers[0].score,
            80
        );
        let mut bad = ok.clone();
        bad.fingers[0].position = 3;
        assert!(quality_from_wit(&capture(), bad).is_err());
        let mut bad = ok.clone();
        bad.fingers.push(bad.fingers[0]);
        assert!(quality_from_wit(&capture(), bad).is_err());
        let mut bad = ok.clone();
        bad.fingers[0].score = 101;
        assert!(quality_from_wit(&capture(), bad).is_err());
        let mut bad = ok.clone();
        bad.warnings[0].code = "Bad Code".into();
        assert!(quality_from_wit(&capture(), bad).is_err());
        let mut bad = ok.clone();
        bad.warnings[0].message = "x".repeat(MAX_MESSAGE_CHARS + 1);
        assert!(quality_from_wit(&capture(), bad).is_err());
        let mut no_face = capture();
        no_face.face = None;
        assert!(quality_from_wit(&no_face, ok).is_err());
    }

    #[test]
    fn policies_cannot_clear_a_hit() {
        let local = CaptureResult {
            capture_id: Some(capture().capture_id),
            source: station::Source::Local,
            decision: Decision::Hit,
            candidates: vec![ResultCandidate {
                subject_id: "S-1".into(),
                score: 91.0,
            }],
            reason: None,
            watchlist_version: 3,
            latency_ms: 4,
        };
        let input = PolicyInput::new("st-1", &capture(), &local, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(input.finger_positions, vec![2]);
        assert!(input.has_face);
        let answer = |decision| policy::PolicyDecision {
            decision,
            reason: None,
            alerts: vec![policy::Alert {
                route: policy::Route::Console,
                severity: policy::Severity::Critical,
                message: "HIT".into(),
            }],
        };
        let ok = policy_from_wit(&input, answer(types::Decision::Hit)).unwrap();
        assert_eq!(ok.alerts[0].route, AlertRoute::Console);
        assert!(
            policy_from_wit(&input, answer(types::Decision::NoHit))
                .unwrap_err()
                .contains("hit")
        );
        let mut many = answer(types::Decision::Hit);
        many.alerts = vec![many.alerts[0].clone(); MAX_ALERTS + 1];
        assert!(policy_from_wit(&input, many).is_err());
    }

    #[test]
    fn long_refusals_are_cut_on_a_char_boundary() {
        let CallError::Refused(text) = refused("é".repeat(MAX_REASON_BYTES)) else {
            panic!("not a refusal");
        };
        assert!(text.len() <= MAX_REASON_BYTES + '…'.len_utf8());
        assert!(text.ends_with('…'));
    }
}
